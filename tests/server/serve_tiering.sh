#!/usr/bin/env bash
# End-to-end tests of tiering in `prewarm serve` (real binary, real tcc and gcc, real HTTP).
# The optimized compiler is gcc behind a gate (tests/server/gate-cc.sh: it waits for a file
# before running gcc), so the test decides when the background compile may finish and can
# look at the quick state first without any timing assumption.
#   1. cold start, tiering on: ready on quick code, right answers, metrics say quick; the gate
#      opens: the tier-up swaps optimized code in, the same answers, one tier-up counted.
#   2. restart on that cache: optimized from the local tier, no compile of any tier.
#   3. restart before the swap: the quick artifact is a local hit (no compile), then the
#      background compile runs again when the gate opens.
#   4. no optimizing compiler: quick code only, said in the log; a pinned optimized engine
#      (--optimized-engine, the text of `prewarm engine --tier optimized`) loads the
#      optimized artifacts that the cache holds without compiling.
#   5. --tiering off: the start waits for the optimized compile; nothing quick.
#   6. SIGTERM while a background compile runs: the compiler is killed, exit 0, nothing left.
#   7. SIGHUP while starting, after the start read a policies file that then changed: the
#      reload runs once the server is ready, and the new policy serves.
. "$(dirname "$0")/lib.sh"
command -v tcc >/dev/null || { echo "SKIP: tcc not installed (the quick tier)"; exit 77; }

W=$PREWARM_FIXTURES/host_wapc.wasm
GATE=$T/gate
export PREWARM_GATE=$GATE
export PREWARM_CC="$(dirname "$0")/gate-cc.sh"
export PREWARM_NO_PROBE_CACHE=1
cat >"$T/policies.yml" <<EOF
pol:
  module: file://$W
  allowedToMutate: true
EOF
quick_m='prewarm_policy_tier{policy="pol",tier="quick"}'
opt_m='prewarm_policy_tier{policy="pol",tier="optimized"}'
cq='prewarm_compiles_total{tier="quick"}'
co='prewarm_compiles_total{tier="optimized"}'

check_answers() { # WHAT
	post /validate/pol "$(review u1 accept)"
	[ "$CODE" = 200 ] && grep -q <<<"$BODY_OUT" '"allowed":true' || fail "$1: accept answered $CODE $BODY_OUT"
	post /validate/pol "$(review u2 reject)"
	grep -q <<<"$BODY_OUT" '"allowed":false' || fail "$1: reject answered $BODY_OUT"
	post /validate/pol "$(review u3 mutate)"
	grep -q <<<"$BODY_OUT" '"patch"' || fail "$1: mutate answered $BODY_OUT"
}

# 1. cold start on quick code, then the tier-up
CACHE=$T/cache
start_server "$T/log1" --policies "$T/policies.yml" --cache-dir "$CACHE" --no-watch --workers 2
wait_ready
[ "$(metric_value "$quick_m")" = 1 ] || fail "cold start not on quick code: $(metric_value "$quick_m")"
[ "$(metric_value "$opt_m")" = 0 ] || fail "cold start: optimized gauge $(metric_value "$opt_m")"
[ "$(metric_value "$cq")" = 1 ] || fail "cold start: expected 1 quick compile, got $(metric_value "$cq")"
grep -q 'policy:pol: ready: .*compiled in .*, quick tier, optimized compile in the background' "$LOG" \
	|| fail "no quick-tier ready line"
grep -q 'tier-up:.*optimized compile started' "$LOG" || fail "no background compile started"
check_answers "quick code"
ok "cold start: ready on quick code, right answers"
touch "$GATE"
wait_metric prewarm_tier_ups_total 1
[ "$(metric_value "$opt_m")" = 1 ] && [ "$(metric_value "$quick_m")" = 0 ] || fail "after tier-up: gauges"
[ "$(metric_value "$co")" = 1 ] || fail "tier-up: expected 1 optimized compile, got $(metric_value "$co")"
grep -q 'policy:pol: tier-up: now on optimized code' "$LOG" || fail "no tier-up log line"
check_answers "optimized code"
ok "tier-up: optimized code swapped in, same answers"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE after SIGTERM"

# 2. restart after the swap: optimized from the local tier, nothing compiled
start_server "$T/log2" --policies "$T/policies.yml" --cache-dir "$CACHE" --no-watch
wait_ready
[ "$(metric_value "$opt_m")" = 1 ] || fail "warm restart not on optimized code"
[ "$(metric_value "$cq")" = 0 ] && [ "$(metric_value "$co")" = 0 ] || fail "warm restart compiled"
grep -q 'policy:pol: ready: .*local hit.*optimized tier' "$LOG" || fail "warm restart: no local optimized hit"
! grep -q 'tier-up:' "$LOG" || fail "warm restart started a tier-up"
check_answers "warm restart"
kill -TERM "$SRV_PID"; wait_exit
ok "restart after the swap: optimized local hit, no compile"

# 3. restart before the swap: quick local hit, then the tier-up again
rm -f "$GATE"
C3=$T/cache3
start_server "$T/log3" --policies "$T/policies.yml" --cache-dir "$C3" --no-watch
wait_ready
[ "$(metric_value "$cq")" = 1 ] || fail "case 3: no quick compile"
kill -KILL "$SRV_PID"; wait_exit
start_server "$T/log3b" --policies "$T/policies.yml" --cache-dir "$C3" --no-watch
wait_ready
[ "$(metric_value "$quick_m")" = 1 ] || fail "restart before the swap: not on quick code"
[ "$(metric_value "$cq")" = 0 ] || fail "restart before the swap: quick compiled again"
grep -q 'policy:pol: ready: .*local hit.*quick tier' "$LOG" || fail "restart before the swap: no quick local hit"
touch "$GATE"
wait_metric prewarm_tier_ups_total 1
check_answers "after a late tier-up"
kill -TERM "$SRV_PID"; wait_exit
ok "restart before the swap: quick local hit, tier-up after"

# 4. no optimizing compiler; then a pinned optimized engine on the cache of case 1
"$PREWARM_BIN" engine --tier optimized >"$T/optimized.engine" || fail "prewarm engine --tier optimized"
PREWARM_CC=/nonexistent/gcc start_server "$T/log4" --policies "$T/policies.yml" --cache-dir "$T/cache4" --no-watch
wait_ready
grep -q 'optimized tier unavailable' "$LOG" || fail "no 'optimized tier unavailable' warning"
[ "$(metric_value "$quick_m")" = 1 ] || fail "no optimizer: not on quick code"
check_answers "quick only"
kill -TERM "$SRV_PID"; wait_exit
ok "no optimizing compiler: quick code, said in the log"
PREWARM_CC=/nonexistent/gcc start_server "$T/log4b" --policies "$T/policies.yml" --cache-dir "$CACHE" --no-watch \
	--optimized-engine "$T/optimized.engine"
wait_ready
grep -q 'optimized engine pinned from' "$LOG" || fail "pinned engine not logged"
[ "$(metric_value "$opt_m")" = 1 ] || fail "pinned engine: not on optimized code"
[ "$(metric_value "$cq")" = 0 ] && [ "$(metric_value "$co")" = 0 ] || fail "pinned engine compiled"
check_answers "pinned optimized engine"
kill -TERM "$SRV_PID"; wait_exit
sed 's/^cflags: -O1/cflags: -O3/' "$T/optimized.engine" >"$T/edited.engine"
LOG=$T/log4c
set +e
PREWARM_CC=/nonexistent/gcc "$PREWARM_BIN" serve --port 0 --readiness-probe-port 0 --policies "$T/policies.yml" \
	--cache-dir "$CACHE" --optimized-engine "$T/edited.engine" >"$LOG" 2>&1
EXIT_CODE=$?
set -e
[ "$EXIT_CODE" = 1 ] || fail "edited engine description: exit $EXIT_CODE"
grep -q 'edited' "$LOG" || fail "edited engine description: no reason given"
ok "pinned optimized engine: cached optimized artifacts without a compiler; an edited one is refused"

# 5. tiering off
start_server "$T/log5" --policies "$T/policies.yml" --cache-dir "$T/cache5" --no-watch --tiering off
wait_ready
[ "$(metric_value "$opt_m")" = 1 ] && [ "$(metric_value "$cq")" = 0 ] && [ "$(metric_value "$co")" = 1 ] \
	|| fail "tiering off: gauges or compiles"
kill -TERM "$SRV_PID"; wait_exit
ok "--tiering off: the start waits for the optimized compile"

# 6. SIGTERM during a background compile
rm -f "$GATE" "$GATE.pids"
start_server "$T/log6" --policies "$T/policies.yml" --cache-dir "$T/cache6" --no-watch
wait_ready
grep -q 'tier-up:.*optimized compile started' "$LOG" || fail "case 6: no background compile"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "SIGTERM during a tier-up: exit $EXIT_CODE"
grep -q 'tier-up:.*canceled' "$LOG" || fail "case 6: the compile was not canceled"
# killed processes may take a moment to be reaped by init: poll (bounded)
for pid in $(cat "$GATE.pids"); do
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null || break
		sleep 0.1
	done
	! kill -0 "$pid" 2>/dev/null || fail "case 6: compiler $pid outlived the server"
	! pgrep -g "$pid" >/dev/null || fail "case 6: a child of compiler $pid outlived the server: $(pgrep -g "$pid" -a)"
done
n=$(find "$T/cache6/v1" -name '*.pwa' | wc -l)
[ "$n" = 1 ] || fail "case 6: expected only the quick entry in the cache, found $n entries"
ok "SIGTERM during a tier-up: compiler killed, exit 0"

# 7. SIGHUP during the start (the compile held at the gate, so the start has read the file)
rm -f "$GATE" "$GATE.pids"
cp "$T/policies.yml" "$T/p7.yml"
start_server "$T/log7" --policies "$T/p7.yml" --cache-dir "$T/cache7" --no-watch --tiering off
for i in $(seq 1 600); do [ -s "$GATE.pids" ] && break; sleep 0.1; done
[ -s "$GATE.pids" ] || fail "case 7: the start's compile never began"
printf 'pol2:\n  module: file://%s\n' "$W" >>"$T/p7.yml"
kill -HUP "$SRV_PID"
for i in $(seq 1 300); do grep -q 'SIGHUP received while starting' "$LOG" && break; sleep 0.1; done
grep -q 'SIGHUP received while starting: reloading once ready' "$LOG" || fail "case 7: SIGHUP not taken"
touch "$GATE"
wait_ready
for i in $(seq 1 600); do
	post /validate/pol2 "$(review u7 accept)"
	[ "$CODE" = 200 ] && break
	sleep 0.1
done
[ "$CODE" = 200 ] && grep -q <<<"$BODY_OUT" '"allowed":true' || fail "case 7: pol2 not served after the start: $CODE $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "case 7: exit $EXIT_CODE"
ok "SIGHUP while starting: the reload runs once ready, the new policy serves"
echo "serve_tiering: all passed"
