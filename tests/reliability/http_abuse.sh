#!/usr/bin/env bash
# HTTP under abuse (src/server/http.c), against the real `prewarm serve` on the waPC fixture;
# tests/reliability/abuse.py does the abuse while a prober sends well-formed AdmissionReviews,
# each of which must get the right answer:
#   1. 10,000 idle connections (slowloris: half a request line, then nothing), held while probing;
#   2. malformed requests at once (1 MiB header, 10,000 headers, a 64 KiB request line, binary
#      garbage, garbage chunked encodings): each answered 4xx or closed within the connection
#      timeout (60 s, so this case takes a minute);
#   3. bodies sent one byte at a time;
#   4. requests throughout 3 reloads (SIGHUP, each to a new module digest: a compile) and the
#      tier-ups they start, until the current set runs optimized code (the tier-up of the first
#      module runs during cases 1-3).
# Asserted: every probe answered right, the server's RSS stays bounded (< RSS_BOUND_KB while
# 10,000 connections are open), the server never restarts. The latencies and RSS figures are
# printed (docs/reliability.md), not asserted.
. "$PREWARM_SOURCE_DIR/tests/server/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
command -v tcc >/dev/null || { echo "SKIP: tcc not installed (the quick tier)"; exit 77; }
ABUSE="python3 $PREWARM_SOURCE_DIR/tests/reliability/abuse.py"
IDLE_WANTED=10000
RSS_BOUND_KB=$((512 * 1024))
FD_MARGIN=512

# the client holds one fd per idle connection, the server too: raise the soft limit
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((IDLE_WANTED + FD_MARGIN)) ]; then
	IDLE=$((hard - FD_MARGIN))
	echo "note: open-file hard limit $hard: $IDLE idle connections instead of $IDLE_WANTED"
else
	IDLE=$IDLE_WANTED
	ulimit -n $((IDLE_WANTED + FD_MARGIN)) 2>/dev/null || true
fi
[ "$IDLE" -gt 0 ] || { echo "SKIP: open-file limit $hard too low for idle connections"; exit 77; }

W=$PREWARM_FIXTURES/host_wapc.wasm
export PREWARM_NO_PROBE_CACHE=1
policies() { # MODULE
	printf 'pol:\n  module: file://%s\n  allowedToMutate: true\n' "$1" >"$T/policies.yml"
}
policies "$W"
# the first tier-up (gcc) runs in the background during cases 1-3
start_server "$T/log" --policies "$T/policies.yml" --cache-dir "$T/cache" --no-watch --workers 2
wait_ready
figures() { grep '^abuse=' <<<"$1"; }
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# 1. slowloris
out=$($ABUSE "$PORT" "$SRV_PID" pol idle "$IDLE") || fail "idle connections: $out"
figures "$out"
[ "$(field "$out" idle_open)" = "$IDLE" ] || fail "not all idle connections were accepted: $out"
[ "$(field "$out" rss_kb_peak)" -lt $RSS_BOUND_KB ] || fail "RSS unbounded with $IDLE idle connections: $out"
ok "$IDLE idle connections held, every probe answered"

# 2. malformed requests
out=$($ABUSE "$PORT" "$SRV_PID" pol malformed) || fail "malformed requests: $out"
grep '^case ' <<<"$out"
figures "$out"
ok "malformed requests refused or closed, every probe answered"

# 3. byte by byte
out=$($ABUSE "$PORT" "$SRV_PID" pol bytewise 20) || fail "bodies byte by byte: $out"
figures "$out"
[ "$(field "$out" bytewise_ok)" = 20 ] || fail "byte-by-byte requests: $out"
ok "20 requests sent byte by byte answered"

# 4. reloads and tier-ups while probing
$ABUSE "$PORT" "$SRV_PID" pol load 600 --stop-file "$T/stop" >"$T/load.out" 2>&1 &
LOAD=$!
for i in 1 2 3; do
	variant "$W" "$T/v$i.wasm" "reload-$i"
	policies "$T/v$i.wasm"
	kill -HUP "$SRV_PID"
	wait_metric 'prewarm_reloads_total{result="ok"}' "$i"
done
for i in $(seq 1 6000); do   # the current set's tier-up (earlier sets' may count too); a loaded machine takes minutes
	[ "$(metric_value 'prewarm_policy_tier{policy="pol",tier="optimized"}')" = 1 ] && break
	sleep 0.1
done
[ "$(metric_value 'prewarm_policy_tier{policy="pol",tier="optimized"}')" = 1 ] || fail "no tier-up after the reloads"
touch "$T/stop"
wait "$LOAD" || fail "requests during reloads and tier-ups: $(cat "$T/load.out")"
figures "$(cat "$T/load.out")"
kill -0 "$SRV_PID" || fail "the server died"
[ "$(metric_value 'prewarm_reloads_total{result="refused"}')" = 0 ] || fail "a reload was refused"
ok "3 reloads and their tier-ups while probing: every probe answered"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE after SIGTERM"
echo "http_abuse: all passed"
