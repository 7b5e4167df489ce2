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
. "$(dirname "$0")/../lib/single_flight.sh"
cleanup_hooks+=(sf_cleanup)
cache=$work/shared
lease_of() { find "$cache/v1" -name '*.lease' 2>/dev/null | head -1; }
has_lease() { [ -n "$(lease_of)" ]; }
no_lease() { [ -z "$(lease_of)" ]; }
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
  rm -rf "$work/keyprobe"; gate_reset
}
plant_lease() { # KEY JSON: writes a lease file as another process would
  local d=$cache/v1/${1:65:2}
  mkdir -p "$d"
  printf '%s' "$2" >"$d/$1.lease"
}

# 1. six concurrent compiles of one cold module
make_module "$work/m1.wasm" 1
gate_reset
for i in 0 1 2 3 4 5; do compile_bg "$work/c1.$i.out" "$work/c1.$i.err" "$work/m1.wasm"; done
sf_one_compile "$work/c1" local 6
no_lease || fail "case 1: a lease was left: $(lease_of)"
[ "$(count_files "$cache" '.tmp-*')" = 0 ] || fail "case 1: temp files left"
"$pw" cache verify --cache-dir "$cache" >"$work/verify" || fail "verify: $(cat "$work/verify")"
ok "6 concurrent compiles of one module: 1 compiled, 5 waited for it and hit the local tier"

# 2. the holder is killed with SIGKILL while it compiles
make_module "$work/m2.wasm" 2
gate_reset
compile_bg "$work/c2.h.out" "$work/c2.h.err" "$work/m2.wasm"
holder=$LAST
wait_until 60 "the holder's compile" at_least "$gate.pids" 1
has_lease || fail "case 2: no lease while compiling"
grep -q "\"pid\":$holder," "$(lease_of)" || fail "case 2: the lease does not name the holder: $(cat "$(lease_of)")"
compile_bg "$work/c2.a.out" "$work/c2.a.err" "$work/m2.wasm"
compile_bg "$work/c2.b.out" "$work/c2.b.err" "$work/m2.wasm"
sf_kill_holder "$holder" "$work/c2" local
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
    "$nonce" "$2" "$PLANT_TTL" "$1"
}

# 3. a stale lease of a dead owner elsewhere: its deadline is an hour ago
gate_reset; touch "$gate"
plant_lease "$k3" "$(foreign $((now - 3600)) 7)"
"$pw" compile "$work/m3.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c3.out" 2>"$work/c3.err" ||
  fail "case 3: $(cat "$work/c3.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*past its deadline' "$work/c3.err" || fail "case 3: $(cat "$work/c3.err")"
grep -q '^compiled .*whose claim expired' "$work/c3.out" || fail "case 3: $(cat "$work/c3.out")"
no_lease || fail "case 3: lease left"
ok "a stale lease of a dead owner on another host (deadline passed) is taken over at once"

# 4. clock skew: a lease whose owner's clock is an hour ahead, never renewed
gate_reset; touch "$gate"
plant_lease "$k4" "$(foreign $((now + 3600)) 1)"
"$pw" compile "$work/m4.wasm" --cache-dir "$cache" --cache-claim-ttl $TTL --cache-peer-wait $WAIT >"$work/c4.out" 2>"$work/c4.err" ||
  fail "case 4: $(cat "$work/c4.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*not renewed within its ttl' "$work/c4.err" || fail "case 4: $(cat "$work/c4.err")"
grep -q '^compiled .*after having waited' "$work/c4.out" || fail "case 4: $(cat "$work/c4.out")"
ok "a lease from a clock an hour ahead that is not renewed is taken over after its ttl (waiter's own clock)"

# 5. an unreadable lease, then a released one
gate_reset; touch "$gate"
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
gate_reset
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
gate_reset; touch "$gate"
plant_lease "$k7" "$(foreign $((now + 3600)) 1)"
"$pw" compile "$work/m7.wasm" --cache-dir "$cache" --cache-peer-wait off >"$work/c7.out" 2>"$work/c7.err" ||
  fail "case 7: $(cat "$work/c7.err")"
grep -q '^compiled in' "$work/c7.out" && ! grep -q 'for a peer' "$work/c7.out" && ! grep -q waiting "$work/c7.err" ||
  fail "case 7: $(cat "$work/c7.out" "$work/c7.err")"
ok "--cache-peer-wait off compiles at once beside a live lease"
