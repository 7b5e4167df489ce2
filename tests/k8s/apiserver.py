#!/usr/bin/env python3
"""An HTTPS server that answers like a kube-apiserver from recorded responses, for the tests of
Prewarm's Kubernetes client (no API server can be installed where the tests run).

It serves what a scenario file (JSON) says, nothing else:

    {"routes": {
        "GET /api/v1": [{"file": "api-v1.json"}],
        "GET /api/v1/namespaces/default/pods": [{"file": "pods-list.json"}, {"file": "pods-list-2.json"}],
        "GET /api/v1/namespaces/default/pods?watch": [
            {"stream": "pods-watch.ndjson", "wait_file": "go", "hold": 30}],
        "POST /apis/authorization.k8s.io/v1/subjectaccessreviews": [{"file": "sar.json", "status": 201}]}}

The key is the method and the path; "?watch" is appended when the query has watch=1/true. The
n-th request to a key gets the n-th response (the last one repeats). A response is a file sent
whole (Content-Length) with its status (default 200), or a stream: the file's lines sent one
chunk each (Transfer-Encoding: chunked, like a watch), optionally after `wait_file` exists in
the fixtures' run directory, then the stream is held open `hold` seconds. A path with no route
answers a 404 Status object, as the API server does.

Every request is appended to the log file as one JSON line: method, path with query,
Authorization header, the subject of the client certificate, the body.
"""
import argparse
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit, parse_qs

NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": "the server could not find the requested resource", "reason": "NotFound",
             "details": {}, "code": 404}


class State:
    def __init__(self, args):
        self.args = args
        with open(args.scenario) as f:
            self.routes = json.load(f)["routes"]
        self.counts = {}
        self.lock = threading.Lock()

    def next_response(self, key):
        with self.lock:
            rs = self.routes.get(key)
            if not rs:
                return None
            n = self.counts.get(key, 0)
            self.counts[key] = n + 1
            return rs[min(n, len(rs) - 1)]

    def log(self, entry):
        with self.lock:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def handle_any(self, method):
        st = self.server.state
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        watch = q.get("watch", [""])[0] in ("1", "true")
        body = b""
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            body = self.rfile.read(n)
        subject = ""
        try:
            cert = self.connection.getpeercert()
            if cert:
                subject = ",".join("%s=%s" % kv for rdn in cert.get("subject", ()) for kv in rdn)
        except Exception:
            pass
        st.log({"method": method, "path": self.path, "authorization": self.headers.get("Authorization"),
                "client_subject": subject, "body": body.decode("utf-8", "replace")})
        key = "%s %s%s" % (method, url.path, "?watch" if watch else "")
        r = st.next_response(key)
        if r is None:
            return self.send_json(404, json.dumps(NOT_FOUND).encode())
        status = r.get("status", 200)
        path = os.path.join(st.args.dir, r.get("file") or r.get("stream"))
        with open(path, "rb") as f:
            data = f.read()
        if "file" in r:
            return self.send_json(status, data)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        wait = r.get("wait_file")
        if wait:
            deadline = time.time() + 60
            while not os.path.exists(os.path.join(st.args.run_dir, wait)) and time.time() < deadline:
                time.sleep(0.05)
        try:
            for line in data.splitlines():
                if not line.strip():
                    continue
                chunk = line + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            end = time.time() + r.get("hold", 0)
            while time.time() < end:
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        self.close_connection = True

    def send_json(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="fixtures directory")
    p.add_argument("--run-dir", required=True, help="where wait_file triggers appear")
    p.add_argument("--scenario", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="ask for client certificates signed by this CA")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = State(a)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.load_verify_locations(a.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
