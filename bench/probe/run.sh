#!/usr/bin/env bash
# bench/probe: the engine's toolchain probe, the part of every start that computes the
# engine hash. Runs `prewarm engine --hash` RUNS times in each of two modes, interleaved
# (so machine load hits both alike), and prints the medians as a Markdown table row:
#   spawn   PREWARM_NO_PROBE_CACHE=1: wasm2c --version, cc --version, cc -dumpmachine
#   cached  the probe cache answers (one warm-up run fills it first)
# A second row does the same for `prewarm serve` with an empty policies.yml, from exec to
# the first 200 of GET /readiness (polled every 5 ms): the floor every start pays.
# The probe cache lives in a temp XDG_CACHE_HOME, removed at exit.
# usage: bench/probe/run.sh   env: PREWARM_BIN (default build/prewarm), RUNS (default 21),
#   SERVE_RUNS (default 11; 0 skips the serve row)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREWARM_BIN:-$top/build/prewarm}
RUNS=${RUNS:-21}
[ -x "$BIN" ] || { echo "no $BIN: build first" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench-probe.XXXXXX")
trap 'rm -rf "$W"' EXIT
export XDG_CACHE_HOME=$W/xdg
h1=$("$BIN" engine --hash)
h2=$(PREWARM_NO_PROBE_CACHE=1 "$BIN" engine --hash)
[ "$h1" = "$h2" ] || { echo "hash differs: cached $h1, spawned $h2" >&2; exit 1; }
t() { local a=${EPOCHREALTIME/./} b; "$@" >/dev/null; b=${EPOCHREALTIME/./}; echo $((b - a)); }
for i in $(seq "$RUNS"); do
	t env PREWARM_NO_PROBE_CACHE=1 "$BIN" engine --hash >>"$W/spawn"
	t "$BIN" engine --hash >>"$W/cached"
done
SERVE_RUNS=${SERVE_RUNS:-11}
SRV=""
trap '[ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null; rm -rf "$W"' EXIT
echo '{}' >"$W/empty.yml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
serve_ready() { # [ENV...] -> microseconds from exec to ready
	local rp a b
	rp=$(free_port)
	a=${EPOCHREALTIME/./}
	env "$@" "$BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port "$rp" --policies "$W/empty.yml" \
		--cache-dir "$W/cache" --no-watch >"$W/log" 2>&1 &
	SRV=$!
	until curl -sf -o /dev/null "http://127.0.0.1:$rp/readiness"; do
		kill -0 "$SRV" 2>/dev/null || { echo "server failed:" >&2; tail -5 "$W/log" >&2; exit 1; }
		sleep 0.005
	done
	b=${EPOCHREALTIME/./}
	kill -TERM "$SRV"; wait "$SRV" || true; SRV=""
	echo $((b - a))
}
for i in $(seq "$SERVE_RUNS"); do
	serve_ready PREWARM_NO_PROBE_CACHE=1 >>"$W/serve-spawn"
	serve_ready PREWARM_NO_PROBE_CACHE=0 >>"$W/serve-cached"
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
s=$(med "$W/spawn"); c=$(med "$W/cached")
echo "| what | runs | spawn ms (median) | cached ms (median) | spawn/cached |"
echo "|---|---|---|---|---|"
awk -v r="$RUNS" -v s="$s" -v c="$c" 'BEGIN {printf "| engine --hash | %d | %s | %s | %.1fx |\n", r, s, c, s / c}'
if [ "$SERVE_RUNS" -gt 0 ]; then
	s=$(med "$W/serve-spawn"); c=$(med "$W/serve-cached")
	awk -v r="$SERVE_RUNS" -v s="$s" -v c="$c" 'BEGIN {printf "| serve, empty policies, to ready | %d | %s | %s | %.1fx |\n", r, s, c, s / c}'
fi
