#!/usr/bin/env bash
# bench/load: requests/s and latency (p50, p99) of `prewarm serve` on loopback with wrk
# (Debian's `wrk`), for a small policy (the project's server_privileged.wasm) and a larger one
# (BENCH_LARGE_MODULE, default the corpus' Kubewarden safe-labels policy when PREWARM_CORPUS is
# set), plus the server's RSS after the run. The server is warmed (one request) and started
# on a warm cache so compiles do not count.
#
# usage: bench/load/run.sh     env: PREWARM_BIN, DURATION (10s), CONNECTIONS (8), THREADS (2),
#   WORKERS (server --workers, default CPUs). Output: a Markdown table (for BENCHMARKS.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREWARM_BIN:-$top/build/prewarm}
DURATION=${DURATION:-10s}
CONN=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench-load.XXXXXX")
SRV=""
trap '[ -n "$SRV" ] && kill -KILL $SRV 2>/dev/null; rm -rf "$W"' EXIT

small=${BENCH_SMALL_MODULE:-$(dirname "$BIN")/fixtures/server_privileged.wasm}
large=${BENCH_LARGE_MODULE:-}
if [ -z "$large" ] && [ -n "${PREWARM_CORPUS:-}" ] && [ -f "$PREWARM_CORPUS/fabriziosestito_policy-server__safe_labels_policy.wasm" ]; then
	large=$PREWARM_CORPUS/fabriziosestito_policy-server__safe_labels_policy.wasm
fi
{
	printf 'small:\n  module: file://%s\n' "$small"
	[ -n "$large" ] && printf 'large:\n  module: file://%s\n  settings:\n    denied_labels: [owner]\n' "$large"
} >"$W/policies.yml"
body='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"bench"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx","labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}'
cat >"$W/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$body]]
LUA
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$BIN" serve --addr 127.0.0.1 --port "$port" --readiness-probe-port "$rport" --policies "$W/policies.yml" \
	--cache-dir "$W/cache" --no-watch ${WORKERS:+--workers $WORKERS} --log-level warn >"$W/log" 2>&1 &
SRV=$!
until curl -sf -o /dev/null "http://127.0.0.1:$rport/readiness"; do
	kill -0 $SRV 2>/dev/null || { cat "$W/log" >&2; exit 1; }
	sleep 0.05
done
echo "server: --workers ${WORKERS:-$(nproc)}, wrk: -t$THREADS -c$CONN -d$DURATION, cpus: $(nproc) (shared by wrk and the server)"
echo
echo "| policy | module bytes | requests/s | p50 ms | p99 ms | non-2xx | RSS after MiB |"
echo "|---|---|---|---|---|---|---|"
for p in small ${large:+large}; do
	m=$small; [ "$p" = large ] && m=$large
	curl -sf -o /dev/null -H 'Content-Type: application/json' --data "$body" "http://127.0.0.1:$port/validate/$p" ||
		{ echo "warm-up request to $p failed" >&2; exit 1; }
	out=$(wrk -t"$THREADS" -c"$CONN" -d"$DURATION" --latency -s "$W/post.lua" "http://127.0.0.1:$port/validate/$p")
	rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }'); non2xx=${non2xx:-0}
	rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/$SRV/status)
	to_ms() { python3 -c "import re,sys; s=sys.argv[1]; v=float(re.match(r'[0-9.]+', s).group()); u=s[len(re.match(r'[0-9.]+', s).group()):]; print(f'{v * {\"us\": 0.001, \"ms\": 1, \"s\": 1000}[u]:.2f}')" "$1"; }
	echo "| $p | $(stat -c %s "$m") | $rps | $(to_ms "$p50") | $(to_ms "$p99") | $non2xx | $rss |"
done
kill -TERM $SRV; wait $SRV || true; SRV=""
