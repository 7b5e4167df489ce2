#!/usr/bin/env python3
"""A misbehaving registry on loopback, for tests/reliability/registry_faults.sh.

    fault_proxy.py MODE PORTFILE
MODE:
  stall        accepts connections, reads the request, never answers (a hung registry)
  status:CODE  answers every request with CODE (401 with a Basic challenge, 500, 503...)
Both speak plain HTTP: a TLS handshake (the client's first try with --cache-registry-insecure)
is closed at once in status mode, as a plain registry would refuse it. The port it listens on is written to PORTFILE once it accepts connections. Runs until killed.
"""
import socket
import sys
import threading


def serve_stall(conn):
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def serve_status(conn, code):
    reason = {401: "Unauthorized", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable"}.get(code, "Error")
    try:
        conn.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
            if data[:1] == b"\x16":
                return  # a TLS handshake: a plain HTTP server would refuse it at once
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"fault injected"}]}'
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n" % (
            code, reason, len(body))
        if code == 401:
            head += 'WWW-Authenticate: Basic realm="prewarm-fault"\r\n'
        conn.sendall(head.encode() + b"\r\n" + body)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    mode, portfile = sys.argv[1], sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    held = []
    while True:
        conn, _ = s.accept()
        if mode == "stall":
            held.append(conn)
            threading.Thread(target=serve_stall, args=(conn,), daemon=True).start()
        elif mode.startswith("status:"):
            threading.Thread(target=serve_status, args=(conn, int(mode[7:])), daemon=True).start()
        else:
            sys.exit("fault_proxy.py: unknown mode " + mode)


if __name__ == "__main__":
    main()
