#!/usr/bin/env python3
"""HTTP abuse of a running `prewarm serve` (tests/reliability/http_abuse.sh), from one process.

While one abuse runs, a prober thread sends well-formed AdmissionReviews on fresh connections
(as the API server does) and checks each answer; at the end one line of figures is printed:
    abuse=NAME probes=N ok=N bad=N p50_ms=X p99_ms=X max_ms=X rss_kb_before=N rss_kb_peak=N rss_kb_after=N ...
Exit 1 when any probe got a wrong answer or no answer (the shell test fails on that); the
latencies are reported, never asserted (tests assert correctness, bench/ measures).

Abuses:
  idle N         N connections that send half a request line and then nothing (slowloris)
  malformed      at once, each on its own connection: a 1 MiB header, 10,000 headers, a 64 KiB
                 request line, binary garbage, garbage chunked encodings (bad, huge, negative
                 sizes, missing CRLF, garbage trailers...): each answered 4xx or closed
  bytewise N     N well-formed requests sent one byte at a time (all answered right)
  load SECONDS   nothing but the prober, for SECONDS or until the file STOPFILE exists
Usage: abuse.py PORT SERVER_PID POLICY ABUSE [ARG] [--stop-file FILE]
"""
import json
import os
import socket
import sys
import threading
import time


def review(uid, scenario):
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "default", "operation": "CREATE", "userInfo": {"username": "test"},
                    "object": {"scenario": scenario, "metadata": {"name": "p", "labels": {"keep": "1"}},
                               "spec": [1, 2]}}}).encode()


def request_bytes(policy, body):
    return (b"POST /validate/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (policy.encode(), len(body))) + body


def read_response(s, timeout):
    """Status code and body of one response (Connection: close), or (None, reason)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return None, "timeout after %d bytes" % len(data)
    except OSError as e:
        if not data:
            return None, str(e)
    if not data.startswith(b"HTTP/1."):
        return None, "no HTTP answer (%d bytes)" % len(data)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1


def fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


class Prober:
    """Well-formed requests, one after another, each on a new connection."""

    def __init__(self, port, policy, pid):
        self.port, self.policy, self.pid = port, policy, pid
        self.lat, self.bad, self.stop = [], [], threading.Event()
        self.rss_peak = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def one(self, i):
        scenario = ("accept", "reject")[i % 2]
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.sendall(request_bytes(self.policy, review("probe-%d" % i, scenario)))
            code, body = read_response(s, 30)
            s.close()
        except OSError as e:
            code, body = None, str(e)
        dt = (time.monotonic() - t0) * 1000
        want = b'"allowed":true' if scenario == "accept" else b'"allowed":false'
        if code == 200 and want in body.replace(b" ", b"") and (b'"probe-%d"' % i) in body:
            self.lat.append(dt)
        else:
            self.bad.append("probe %d: %s %r" % (i, code, body[:200] if isinstance(body, bytes) else body))

    def run(self):
        i = 0
        while not self.stop.is_set():
            self.one(i)
            i += 1
            self.rss_peak = max(self.rss_peak, rss_kb(self.pid))
            time.sleep(0.02)

    def start(self):
        self.thread.start()

    def finish(self, min_probes=20):
        # at least a few probes, even when the abuse was quick
        while len(self.lat) + len(self.bad) < min_probes and self.thread.is_alive():
            time.sleep(0.05)
        self.stop.set()
        self.thread.join()


def pct(v, p):
    if not v:
        return -1
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def abuse_idle(port, n, pid, extra):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /validate/pol HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    time.sleep(2)
    extra["idle_open"] = n
    extra["server_fds"] = fds(pid)
    extra["rss_kb_idle"] = rss_kb(pid)
    return socks


# The server closes a connection without traffic after this long (CONNECTION_TIMEOUT_S in
# src/server/http.c); a malformed request must be refused or closed before this bound.
CLOSE_BOUND_S = 75


def refused(port, payload, what, bad, outcomes):
    """Sends PAYLOAD; the server must answer 4xx or close the connection (within CLOSE_BOUND_S)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=CLOSE_BOUND_S)
        s.sendall(payload)
        code, body = read_response(s, CLOSE_BOUND_S)
        s.close()
    except OSError as e:
        code, body = None, "closed (%s)" % e.__class__.__name__
    ms = (time.monotonic() - t0) * 1000
    if code is None and isinstance(body, str) and body.startswith("timeout"):
        bad.append("%s: neither answered nor closed in %d s" % (what, CLOSE_BOUND_S))
        return
    if code is not None and not 400 <= code < 500:
        bad.append("%s: answered %d" % (what, code))
    outcomes.append("%s: %s in %.0f ms" % (what, code if code is not None else "closed", ms))


def malformed_cases(policy):
    body = review("h", "accept")
    head = b"POST /validate/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        policy.encode(), len(body))
    chead = (b"POST /validate/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % policy.encode())
    return {
        "1 MiB header": head + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n" + body,
        "10,000 headers": head + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n" + body,
        "64 KiB request line": b"POST /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "binary garbage": b"\x00\xff\x16\x03\x01garbage\r\n\r\n",
        "no HTTP version": b"POST /validate/pol\r\n\r\n",
        "chunked: non-hex size": chead + b"zz\r\n{}\r\n0\r\n\r\n",
        "chunked: huge size": chead + b"ffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        "chunked: size overflow": chead + b"1" + b"0" * 40 + b"\r\n{}\r\n0\r\n\r\n",
        "chunked: negative size": chead + b"-5\r\n{}\r\n0\r\n\r\n",
        "chunked: size beyond the body limit": chead + b"7fffffff\r\n" + b"a" * 4096,
        "chunked: missing CRLF": chead + b"2{}0\r\n\r\n",
        "chunked: data longer than its size": chead + b"2\r\n{}{}{}{}\r\n0\r\n\r\n",
        "chunked: garbage trailer": chead + b"2\r\n{}\r\n0\r\n\x00\x01\x02: \xff\r\n\r\n",
        "chunked: extension garbage": chead + b"2;" + b";" * 10000 + b"\r\n{}\r\n0\r\n\r\n",
        "chunked: no last chunk": chead + b"2\r\n{}\r\n",
        "chunked and Content-Length": chead.replace(b"Connection", b"Content-Length: 5\r\nConnection") + b"2\r\n{}\r\n0\r\n\r\n",
    }


def abuse_malformed(port, policy, bad, extra):
    """Every malformed request at once, each on its own connection."""
    outcomes = []
    threads = [threading.Thread(target=refused, args=(port, p, w, bad, outcomes))
               for w, p in malformed_cases(policy).items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    extra["malformed"] = len(threads)
    for o in sorted(outcomes):
        print("case " + o)
    # a well-formed chunked body sent in small chunks is still answered
    body = review("chunk", "accept")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /validate/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % policy.encode() + chunks + b"0\r\n\r\n")
    code, out = read_response(s, 30)
    s.close()
    if code != 200 or b'"allowed":true' not in out.replace(b" ", b""):
        bad.append("well-formed chunked body: %s %r" % (code, out[:200] if isinstance(out, bytes) else out))


def abuse_bytewise(port, policy, n, bad, extra):
    done = 0
    for i in range(n):
        body = review("b%d" % i, "accept")
        req = request_bytes(policy, body)
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        for k in range(len(req)):
            s.sendall(req[k:k + 1])
            time.sleep(0.0005)
        code, out = read_response(s, 30)
        s.close()
        if code != 200 or b'"allowed":true' not in out.replace(b" ", b""):
            bad.append("bytewise %d: %s %r" % (i, code, out[:200] if isinstance(out, bytes) else out))
        else:
            done += 1
    extra["bytewise_ok"] = done


def main():
    args = sys.argv[1:]
    stop_file = None
    if "--stop-file" in args:
        i = args.index("--stop-file")
        stop_file = args[i + 1]
        del args[i:i + 2]
    port, pid, policy, name = int(args[0]), int(args[1]), args[2], args[3]
    arg = args[4] if len(args) > 4 else None
    bad, extra = [], {}
    before = rss_kb(pid)
    prober = Prober(port, policy, pid)
    prober.start()
    held = []
    t0 = time.monotonic()
    if name == "idle":
        held = abuse_idle(port, int(arg), pid, extra)
        prober.finish(min_probes=100)
    elif name == "malformed":
        abuse_malformed(port, policy, bad, extra)
        prober.finish()
    elif name == "bytewise":
        abuse_bytewise(port, policy, int(arg), bad, extra)
        prober.finish()
    elif name == "load":
        end = t0 + float(arg)
        while time.monotonic() < end and not (stop_file and os.path.exists(stop_file)):
            time.sleep(0.05)
        prober.finish()
    else:
        sys.exit("abuse.py: unknown abuse %s" % name)
    extra["seconds"] = "%.1f" % (time.monotonic() - t0)
    peak = max(prober.rss_peak, extra.get("rss_kb_idle", 0))
    for s in held:
        s.close()
    time.sleep(1)
    after = rss_kb(pid)
    bad += prober.bad
    fields = ["abuse=%s" % name, "probes=%d" % (len(prober.lat) + len(prober.bad)), "ok=%d" % len(prober.lat),
              "bad=%d" % len(bad), "p50_ms=%.1f" % pct(prober.lat, 50), "p99_ms=%.1f" % pct(prober.lat, 99),
              "max_ms=%.1f" % (max(prober.lat) if prober.lat else -1), "rss_kb_before=%d" % before,
              "rss_kb_peak=%d" % peak, "rss_kb_after=%d" % after]
    fields += ["%s=%s" % kv for kv in extra.items()]
    print(" ".join(fields))
    for b in bad[:20]:
        print("BAD: " + b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
