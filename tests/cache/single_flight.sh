#!/usr/bin/env bash
# Single flight across processes in one shared cache directory (lease files, docs/cache.md):
# real `prewarm compile` processes, the real gcc behind a gate (tests/server/gate-cc.sh: a
# compile waits for a file the test creates, and appends its pid to $PREWARM_GATE.pids), so
# the test decides when a compile may finish and counts the compiles that started, with no
# timing assumption (every wait is a bounded poll for a state).
#   1. 6 concurrent compiles of one cold module: one compile, 5 waited and hit the local tier
#   2. the lease holder killed with SIGKILL: a waiter takes over (owner gone) and compiles
#   3. a stale lease of a dead owner on another host (deadline long past): taken at once
#   4. a lease from another host whose clock runs ahead (deadline far in the future) that is
#      never renewed: taken over after its ttl, measured on the waiter's own clock
#   5. an unreadable lease (garbage): taken over after the ttl; a released lease: at once
#   6. a live holder and --cache-peer-wait 1: the waiter compiles too after 1 s
#   7. --cache-peer-wait off: compile at once beside a live lease
. "$(dirname "$0")/lib.sh"
export PREWARM_CC="$(cd "$(dirname "$0")/../server" && pwd)/gate-cc.sh"
export PREWARM_NO_PROBE_CACHE=1
cache=$work/shared
gate=$work/gate
export PREWARM_GATE=$gate
TTL=2
WAIT=600   # waiters never give up in these tests, but in case 6 (no timing assumption)
bgpids=()
cleanup_hooks+=('for p in "${bgpids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; [ -f "$gate.pids" ] && while read -r g; do kill -KILL "$g" 2>/dev/null || true; done <"$gate.pids"')

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s, fails after SECONDS
wait_until() {
  local limit=$1 what=$2; shift 2
  local n=$((limit * 10))
  while ! "$@"; do
    n=$((n - 1))
    [ $n -gt 0 ] || fail "timed out waiting for: $what; state: $(tail -n 3 "$work"/*.err 2>/dev/null | tail -n 30)"
    sleep 0.1
  done
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
at_least() { [ "$(lines "$1")" -ge "$2" ]; }
count_in() { local pat=$1; shift; cat "$@" 2>/dev/null | grep -c -- "$pat" || true; }
# waiting_in GLOB: at least $n_wait of the files GLOB names (expanded at each look: a
# background process creates its file when it starts) say they wait for a peer
waiting_in() { local files; files=$(compgen -G "$1" || true); [ -n "$files" ] && [ "$(count_in 'waiting for its entry' $files)" -ge "$n_wait" ]; }
lease_of() { find "$cache/v1" -name '*.lease' 2>/dev/null | head -1; }
has_lease() { [ -n "$(lease_of)" ]; }
no_lease() { [ -z "$(lease_of)" ]; }
reset() { rm -f "$gate" "$gate.pids"; }
compile_bg() { # OUT ERR MODULE ARGS...
  local out=$1 err=$2 mod=$3; shift 3
  "$pw" compile "$mod" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT "$@" >"$out" 2>"$err" &
  bgpids+=($!)
  LAST=$!
}
key_of() { # MODULE: the optimized key text of a module
  "$pw" compile "$1" --cache-dir "$work/keyprobe" --cache-peer-wait off >/dev/null 2>&1 &
  local p=$!
  wait_until 60 "probe compile started" at_least "$gate.pids" 1
  touch "$gate"; wait $p
  "$pw" cache ls --cache-dir "$work/keyprobe" | grep -o -m1 '^[0-9a-f]\{64\}-[0-9a-f]\{64\}'
  rm -rf "$work/keyprobe"; reset
}
plant_lease() { # KEY JSON: writes a lease file as another process would
  local d=$cache/v1/${1:65:2}
  mkdir -p "$d"
  printf '%s' "$2" >"$d/$1.lease"
}

# 1. six concurrent compiles of one cold module
make_module "$work/m1.wasm" 1
reset
for i in 0 1 2 3 4 5; do compile_bg "$work/c1.$i.out" "$work/c1.$i.err" "$work/m1.wasm"; done
n_wait=5
wait_until 120 "5 processes waiting for the lease holder" waiting_in "$work/c1.*.err"
[ "$(lines "$gate.pids")" = 1 ] || fail "case 1: $(lines "$gate.pids") compiles started, want 1"
touch "$gate"
for p in "${bgpids[@]}"; do wait "$p" || fail "case 1: a compile failed: $(cat "$work"/c1.*)"; done
bgpids=()
compiled=$(count_in '^compiled' "$work"/c1.*.out)
waited=$(count_in '^cache hit (local) .*after waiting .* for a peer' "$work"/c1.*.out)
[ "$compiled" = 1 ] && [ "$waited" = 5 ] || fail "case 1: compiled=$compiled waited=$waited: $(cat "$work"/c1.*.out)"
[ "$(lines "$gate.pids")" = 1 ] || fail "case 1: $(lines "$gate.pids") compiles in all"
no_lease || fail "case 1: a lease was left: $(lease_of)"
[ "$(count_files "$cache" '.tmp-*')" = 0 ] || fail "case 1: temp files left"
"$pw" cache verify --cache-dir "$cache" >"$work/verify" || fail "verify: $(cat "$work/verify")"
ok "6 concurrent compiles of one module: 1 compiled, 5 waited for it and hit the local tier"

# 2. the holder is killed with SIGKILL while it compiles
make_module "$work/m2.wasm" 2
reset
compile_bg "$work/c2.h.out" "$work/c2.h.err" "$work/m2.wasm"
holder=$LAST
wait_until 60 "the holder's compile" at_least "$gate.pids" 1
has_lease || fail "case 2: no lease while compiling"
grep -q "\"pid\":$holder," "$(lease_of)" || fail "case 2: the lease does not name the holder: $(cat "$(lease_of)")"
compile_bg "$work/c2.a.out" "$work/c2.a.err" "$work/m2.wasm"
compile_bg "$work/c2.b.out" "$work/c2.b.err" "$work/m2.wasm"
n_wait=2
wait_until 60 "2 waiters" waiting_in "$work/c2.[ab].err"
kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
kill -KILL "$(head -1 "$gate.pids")" 2>/dev/null || true   # its compiler, orphaned
wait_until 60 "a takeover compile" at_least "$gate.pids" 2
touch "$gate"
wait "${bgpids[1]}" && wait "${bgpids[2]}" || fail "case 2: a waiter failed: $(cat "$work"/c2.[ab].*)"
bgpids=()
[ "$(count_in "taking over the claim of .* pid $holder .*its owner's process is gone" "$work"/c2.[ab].err)" -ge 1 ] ||
  fail "case 2: no takeover logged: $(cat "$work"/c2.[ab].err)"
[ "$(count_in '^compiled .*whose claim expired' "$work"/c2.[ab].out)" = 1 ] &&
  [ "$(count_in '^cache hit (local)' "$work"/c2.[ab].out)" = 1 ] || fail "case 2: $(cat "$work"/c2.[ab].out)"
[ "$(lines "$gate.pids")" = 2 ] || fail "case 2: $(lines "$gate.pids") compiles"
no_lease || fail "case 2: a lease was left"
ok "lease holder killed with SIGKILL: one waiter took over and compiled, the other hit its entry"

# keys of the modules planted below (one probe compile each, in a private directory)
make_module "$work/m3.wasm" 3; k3=$(key_of "$work/m3.wasm")
make_module "$work/m4.wasm" 4; k4=$(key_of "$work/m4.wasm")
make_module "$work/m5.wasm" 5; k5=$(key_of "$work/m5.wasm")
make_module "$work/m6.wasm" 6; k6=$(key_of "$work/m6.wasm")
nonce=0123456789abcdef0123456789abcdef
now=$(date +%s)
foreign() { # DEADLINE SEQ: a lease of a process on another host
  printf '{"format":1,"nonce":"%s","host":"elsewhere","pid":1,"boot_id":"other-boot","pidns":4026531836,"seq":%s,"ttl":%s,"deadline":%s,"state":"building"}' \
    "$nonce" "$2" "$TTL" "$1"
}

# 3. a stale lease of a dead owner elsewhere: its deadline is an hour ago
reset; touch "$gate"
plant_lease "$k3" "$(foreign $((now - 3600)) 7)"
"$pw" compile "$work/m3.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c3.out" 2>"$work/c3.err" ||
  fail "case 3: $(cat "$work/c3.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*past its deadline' "$work/c3.err" || fail "case 3: $(cat "$work/c3.err")"
grep -q '^compiled .*whose claim expired' "$work/c3.out" || fail "case 3: $(cat "$work/c3.out")"
no_lease || fail "case 3: lease left"
ok "a stale lease of a dead owner on another host (deadline passed) is taken over at once"

# 4. clock skew: a lease whose owner's clock is an hour ahead, never renewed
reset; touch "$gate"
plant_lease "$k4" "$(foreign $((now + 3600)) 1)"
"$pw" compile "$work/m4.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c4.out" 2>"$work/c4.err" ||
  fail "case 4: $(cat "$work/c4.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*not renewed within its ttl' "$work/c4.err" || fail "case 4: $(cat "$work/c4.err")"
grep -q '^compiled .*after having waited' "$work/c4.out" || fail "case 4: $(cat "$work/c4.out")"
ok "a lease from a clock an hour ahead that is not renewed is taken over after its ttl (waiter's own clock)"

# 5. an unreadable lease, then a released one
reset; touch "$gate"
plant_lease "$k5" 'garbage, not a claim'
"$pw" compile "$work/m5.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c5.out" 2>"$work/c5.err" ||
  fail "case 5: $(cat "$work/c5.err")"
grep -q 'taking over the claim of an unreadable claim .*not renewed within its ttl' "$work/c5.err" || fail "case 5: $(cat "$work/c5.err")"
"$pw" cache rm --all --cache-dir "$cache" >/dev/null
plant_lease "$k5" "$(foreign $((now + 3600)) 3 | sed 's/"building"/"released"/')"
"$pw" compile "$work/m5.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c5b.out" 2>"$work/c5b.err" ||
  fail "case 5b: $(cat "$work/c5b.err")"
grep -q '^compiled in' "$work/c5b.out" && ! grep -q 'for a peer' "$work/c5b.out" || fail "case 5b: waited for a released lease: $(cat "$work/c5b.out")"
ok "an unreadable lease is taken over after the ttl, a released one at once"

# 6. a live holder, a waiter with --cache-peer-wait 1: compiles too
reset
compile_bg "$work/c6.h.out" "$work/c6.h.err" "$work/m6.wasm"
wait_until 60 "the holder's compile" at_least "$gate.pids" 1
"$pw" compile "$work/m6.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait 1 \
  >"$work/c6.out" 2>"$work/c6.err" &
w=$!
wait_until 60 "the impatient waiter's own compile" at_least "$gate.pids" 2
touch "$gate"
wait "$w" || fail "case 6: $(cat "$work/c6.err")"
wait "${bgpids[0]}" || fail "case 6 holder: $(cat "$work/c6.h.err")"
bgpids=()
grep -q '^compiled .*longer than a compile takes' "$work/c6.out" || fail "case 6: $(cat "$work/c6.out")"
grep -q 'as long as a build takes; building it here too' "$work/c6.err" || fail "case 6: $(cat "$work/c6.err")"
ok "a waiter that waited as long as a compile takes compiles itself"

# 7. --cache-peer-wait off ignores a live lease (the quick tier never claims: test_cache_claims)
make_module "$work/m7.wasm" 7; k7=$(key_of "$work/m7.wasm")
reset; touch "$gate"
plant_lease "$k7" "$(foreign $((now + 3600)) 1)"
"$pw" compile "$work/m7.wasm" --cache-dir "$cache" --cache-peer-wait off >"$work/c7.out" 2>"$work/c7.err" ||
  fail "case 7: $(cat "$work/c7.err")"
grep -q '^compiled in' "$work/c7.out" && ! grep -q 'for a peer' "$work/c7.out" && ! grep -q waiting "$work/c7.err" ||
  fail "case 7: $(cat "$work/c7.out" "$work/c7.err")"
ok "--cache-peer-wait off compiles at once beside a live lease"
