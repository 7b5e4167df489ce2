# Shared steps of the single-flight tests (tests/cache/single_flight.sh: a shared directory,
# tests/cache_registry/single_flight.sh: a shared registry). Sourced after the caller set
# `work` (a temp dir), `fail` and `ok`. gcc runs behind the gate of tests/server/gate-cc.sh:
# a compile waits until $gate exists and appends its pid to $gate.pids, so a test counts the
# compiles that started and decides when they finish; every wait is a bounded poll.
gate=$work/gate
export PREWARM_GATE=$gate PREWARM_NO_PROBE_CACHE=1
export PREWARM_CC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../server" && pwd)/gate-cc.sh"
TTL=10     # claims live 10 s without renewal (renewals on a loaded machine under ASan can lag seconds)
PLANT_TTL=2   # the ttl of claims a test plants as another process
WAIT=600   # waiters never give up on a live peer, but where a test says otherwise
bgpids=()

# Kills what the test started: background compiles, and compilers left behind the gate.
sf_cleanup() {
	local p g
	for p in "${bgpids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [ -f "$gate.pids" ]; then while read -r g; do kill -KILL "$g" 2>/dev/null || true; done <"$gate.pids"; fi
}

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s, fails after SECONDS
wait_until() {
	local limit=$1 what=$2; shift 2
	local n=$((limit * 10))
	while ! "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "timed out waiting for: $what; compiles started: $(lines "$gate.pids"); reports: $(cat "$work"/*.out 2>/dev/null | tail -n 10); $(tail -n 3 "$work"/*.err 2>/dev/null | tail -n 30)"
		sleep 0.1
	done
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
at_least() { [ "$(lines "$1")" -ge "$2" ]; }
count_in() { local pat=$1; shift; cat "$@" 2>/dev/null | grep -c -- "$pat" || true; }
# waiting_in GLOB N: at least N of the files GLOB names (expanded at each look: a background
# process creates its file when it starts) say they wait for a peer
waiting_in() {
	local files
	files=$(compgen -G "$1" || true)
	[ -n "$files" ] && [ "$(count_in 'waiting for its entry' $files)" -ge "$2" ]
}
gate_reset() { rm -f "$gate" "$gate.pids"; }
make_module() { printf '(module (func (export "answer") (result i32) (i32.const %d)))\n' "$2" >"$1.wat"; wat2wasm "$1.wat" -o "$1"; }

# sf_one_compile PREFIX TIER N: N compiles started in the background (bgpids, output in
# PREFIX.I.out/err) of one cold module: once N-1 wait for the first, exactly one compile has
# started; the gate opens; all succeed, one says "compiled", N-1 hit TIER after waiting.
sf_one_compile() {
	local prefix=$1 tier=$2 n=$3 p compiled waited
	wait_until 120 "$((n - 1)) processes waiting for the claim holder" waiting_in "$prefix.*.err" $((n - 1))
	wait_until 120 "the holder's compiler (after wasm2c)" at_least "$gate.pids" 1
	[ "$(lines "$gate.pids")" = 1 ] || fail "$(lines "$gate.pids") compiles started, want 1"
	touch "$gate"
	for p in "${bgpids[@]}"; do wait "$p" || fail "a compile failed: $(cat "$prefix".*)"; done
	bgpids=()
	compiled=$(count_in '^compiled' "$prefix".*.out)
	waited=$(count_in "^cache hit ($tier) .*after waiting .* for a peer" "$prefix".*.out)
	[ "$compiled" = 1 ] && [ "$waited" = $((n - 1)) ] ||
		fail "compiled=$compiled waited=$waited: $(cat "$prefix".*.out)"
	[ "$(lines "$gate.pids")" = 1 ] || fail "$(lines "$gate.pids") compiles in all"
}

# sf_kill_holder HOLDER_PID PREFIX TIER: two waiters started in the background (bgpids[1],
# bgpids[2], output in PREFIX.a/b.out/err) on HOLDER's claim; the holder is killed with
# SIGKILL (and its compiler behind the gate); one waiter takes over and compiles, the other
# hits its entry in TIER.
sf_kill_holder() {
	local holder=$1 prefix=$2 tier=$3
	wait_until 60 "2 waiters" waiting_in "$prefix.[ab].err" 2
	kill -KILL "$holder"
	wait "$holder" 2>/dev/null || true
	kill -KILL "$(head -1 "$gate.pids")" 2>/dev/null || true   # its compiler, orphaned
	wait_until 60 "a takeover compile" at_least "$gate.pids" 2
	touch "$gate"
	wait "${bgpids[1]}" && wait "${bgpids[2]}" || fail "a waiter failed: $(cat "$prefix".[ab].*)"
	bgpids=()
	[ "$(count_in "taking over the claim of .* pid $holder .*its owner's process is gone" "$prefix".[ab].err)" -ge 1 ] ||
		fail "no takeover logged: $(cat "$prefix".[ab].err)"
	[ "$(count_in '^compiled .*whose claim expired' "$prefix".[ab].out)" = 1 ] &&
		[ "$(count_in "^cache hit ($tier)" "$prefix".[ab].out)" = 1 ] || fail "after the takeover: $(cat "$prefix".[ab].out)"
	[ "$(lines "$gate.pids")" = 2 ] || fail "$(lines "$gate.pids") compiles, want 2"
}
