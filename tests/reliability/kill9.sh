#!/usr/bin/env bash
# kill -9 at random instants (tests/cache/crash.sh does the cache's writer alone; this is the
# whole server): RUNS_* kills in all (>= 100), each after a random delay, of
#   start    `prewarm serve` starting on a module never seen (quick compile, cache write,
#            load, ready, the tier-up starting), in one shared cache directory;
#   reload   a running server right after SIGHUP to a new module digest (a compile);
#   tier-up  a server whose optimized compile runs in the background (wasm2c, gcc, publish);
#   publish  `prewarm compile` pushing a new entry to a real registry (tests/lib/registry.sh).
# After each group: `prewarm cache verify` passes on the local directory, `cache ls --registry`
# and a verified pull from the registry work, the next start succeeds and answers, and no
# temp file stays: the cache's .tmp-* of killed writers go with `cache gc` once stale, and
# the compilers' temp directories of killed servers are swept by the next server start.
. "$PREWARM_SOURCE_DIR/tests/server/lib.sh"
. "$PREWARM_SOURCE_DIR/tests/lib/registry.sh"
command -v tcc >/dev/null || { echo "SKIP: tcc not installed (the quick tier)"; exit 77; }
RUNS_START=50 RUNS_RELOAD=25 RUNS_TIERUP=15 RUNS_PUBLISH=25
W=$PREWARM_FIXTURES/host_wapc.wasm
CACHE=$T/cache
export TMPDIR=$T/tmp PREWARM_NO_PROBE_CACHE=1
mkdir -p "$TMPDIR"
policies() { printf 'pol:\n  module: file://%s\n  allowedToMutate: true\n' "$1" >"$T/policies.yml"; }
# random_sleep MAX_MS
random_sleep() { sleep "$(printf '%d.%03d' $((RANDOM % $1 / 1000)) $((RANDOM % $1 % 1000)))"; }
# kill9: SIGKILL; counts the compile directories the killed process left (ORPHANS)
ORPHANS=0
kill9() {
	kill -KILL "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
	ORPHANS=$((ORPHANS + $(compile_dirs)))
}
serve_bg() { # LOG: the server in the background, no waiting
	LOG=$1
	: >"$LOG"
	"$PREWARM_BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port 0 --policies "$T/policies.yml" \
		--cache-dir "$CACHE" --no-watch "${SERVE_ARGS[@]}" >"$LOG" 2>&1 &
	SRV_PID=$!
}
SERVE_ARGS=()
temp_files() { find "$CACHE" -name '.tmp-*' 2>/dev/null | wc -l; }
compile_dirs() { find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'prewarm-compile-*' 2>/dev/null | wc -l; }

# after_kills WHAT: verify, start again (answers right), temp files accounted for
after_kills() {
	"$PREWARM_BIN" cache verify --cache-dir "$CACHE" >"$T/verify" 2>&1 || fail "$1: cache verify: $(cat "$T/verify")"
	policies "$W"
	serve_bg "$T/after-$1.log"
	wait_listening
	wait_ready
	post /validate/pol "$(review u1 accept)"
	[ "$CODE" = 200 ] && grep -q <<<"$BODY_OUT" '"allowed":true' || fail "$1: next start answered $CODE $BODY_OUT"
	kill -TERM "$SRV_PID"; wait_exit
	[ "$EXIT_CODE" = 0 ] || fail "$1: exit $EXIT_CODE"
	[ "$(compile_dirs)" = 0 ] || fail "$1: $(compile_dirs) compiler temp dirs left after the next start"
	local tmp; tmp=$(temp_files)
	if [ "$tmp" != 0 ]; then   # a killed writer's: stale after the age limit, then gc removes it
		find "$CACHE" -name '.tmp-*' -exec touch -d '2 hours ago' {} +
		"$PREWARM_BIN" cache gc --cache-dir "$CACHE" >/dev/null || fail "$1: cache gc"
		[ "$(temp_files)" = 0 ] || fail "$1: gc left stale temp files"
	fi
	ok "$1: verify passes, next start answers; compile dirs left by the killed: $ORPHANS, swept by the next starts; cache temp files: $tmp (removed by gc once stale)"
	ORPHANS=0
}

# ---- start -----------------------------------------------------------------------------
for i in $(seq 1 $RUNS_START); do
	variant "$W" "$T/s$i.wasm" "start-$i"
	policies "$T/s$i.wasm"
	serve_bg "$T/start.log"
	random_sleep 1500
	kill9
done
after_kills "start ($RUNS_START kills)"

# ---- reload ----------------------------------------------------------------------------
for i in $(seq 1 $RUNS_RELOAD); do
	policies "$W"
	serve_bg "$T/reload.log"
	wait_listening
	wait_ready
	variant "$W" "$T/r$i.wasm" "reload-$i"
	policies "$T/r$i.wasm"
	kill -HUP "$SRV_PID"
	random_sleep 800
	kill9
done
after_kills "reload ($RUNS_RELOAD kills)"

# ---- tier-up ---------------------------------------------------------------------------
# how long one tier-up takes here, so the kills spread over all of it (publish included)
variant "$W" "$T/t0.wasm" "tierup-0"
policies "$T/t0.wasm"
t0=$(date +%s%N)
serve_bg "$T/tierup0.log"
wait_listening
wait_ready
wait_metric prewarm_tier_ups_total 1
span_ms=$(( ($(date +%s%N) - t0) / 1000000 + 500 ))
# a loaded machine can make one tier-up take minutes: the kills then spread over its first
# TIERUP_SPAN_MAX_MS only (wasm2c and gcc running; the publish is reached on a normal machine)
TIERUP_SPAN_MAX_MS=30000
[ "$span_ms" -le $TIERUP_SPAN_MAX_MS ] || span_ms=$TIERUP_SPAN_MAX_MS
kill -TERM "$SRV_PID"; wait_exit
for i in $(seq 1 $RUNS_TIERUP); do
	variant "$W" "$T/t$i.wasm" "tierup-$i"
	policies "$T/t$i.wasm"
	serve_bg "$T/tierup.log"
	random_sleep "$span_ms"
	kill9
done
after_kills "tier-up ($RUNS_TIERUP kills over ${span_ms} ms)"

# ---- registry publish ------------------------------------------------------------------
pw_registry_start "$T/reg" >/dev/null || { echo "SKIP (publish): could not start docker-registry"; exit 77; }
trap 'pw_registry_stop "$T/reg"; cleanup' EXIT
REGARGS=(--cache-registry "$PW_REGISTRY_HOST/prewarm/cache" --cache-registry-insecure)
for i in $(seq 1 $RUNS_PUBLISH); do
	variant "$W" "$T/p$i.wasm" "publish-$i"
	"$PREWARM_BIN" compile "$T/p$i.wasm" --tier quick --cache-dir "$CACHE" "${REGARGS[@]}" >/dev/null 2>&1 &
	SRV_PID=$!
	random_sleep 3000   # the compile takes about a second: the kills spread over it and the push
	kill -KILL "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
done
ORPHANS=$(compile_dirs)   # `prewarm compile` does not sweep: they add up until the next serve start
"$PREWARM_BIN" cache ls --registry --cache-dir "$CACHE" "${REGARGS[@]}" >"$T/regls" 2>&1 || fail "publish: registry ls: $(cat "$T/regls")"
n=$(grep -c '^[0-9a-f]\{64\}-' "$T/regls" || true)
# every entry the registry lists must come back verified (a fresh local dir pulls it)
for i in $(seq 1 $RUNS_PUBLISH); do
	out=$("$PREWARM_BIN" compile "$T/p$i.wasm" --tier quick --cache-dir "$T/fresh$i" "${REGARGS[@]}" 2>&1) ||
		fail "publish: compile after the kills: $out"
	grep -Eq <<<"$out" 'registry|compiled' || fail "publish: $out"
done
SERVE_ARGS=("${REGARGS[@]}")
after_kills "registry publish ($RUNS_PUBLISH kills, $n entries listed)"
echo "kill9: $((RUNS_START + RUNS_RELOAD + RUNS_TIERUP + RUNS_PUBLISH)) kills, all passed"
