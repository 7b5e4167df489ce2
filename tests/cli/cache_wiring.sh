#!/usr/bin/env bash
# The cache options on `prewarm compile` and `prewarm run`: the first call compiles and
# stores, the second is a local hit and gives the same artifact bytes; `cache stats`
# counts both; a corrupted entry is refused, recompiled and replaced, the run succeeds.
set -euo pipefail
pw=${PREWARM_BIN:?run through ctest}
fix=${PREWARM_FIXTURES:?run through ctest}
work=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-cli-cache.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mod=$fix/wasi_args.wasm
[ -f "$mod" ] || fail "fixture $mod missing"

out=$("$pw" compile "$mod" --host run --cache-dir "$work/c" -o "$work/a1.so")
grep -q <<<"$out" '^compiled in' || fail "first compile: $out"
out=$("$pw" compile "$mod" --host run --cache-dir "$work/c" -o "$work/a2.so")
grep -q <<<"$out" '^cache hit (local)' || fail "second compile: $out"
cmp "$work/a1.so" "$work/a2.so" || fail "cached artifact differs from the compiled one"
"$pw" cache stats --cache-dir "$work/c" > "$work/stats"
grep -Eq '^hits: +1 ' "$work/stats" || fail "stats: $(cat "$work/stats")"
grep -Eq '^compiles: +1 ' "$work/stats" || fail "stats: $(cat "$work/stats")"
echo "ok: compile --cache-dir compiles once, then hits"

# without -o and without a cache option: a usage error naming what is missing
set +e
"$pw" compile "$mod" > "$work/err" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "compile without output: exit $rc"
grep -q -- '--cache-dir' "$work/err" || fail "compile without output: $(cat "$work/err")"

# a flipped byte in the entry: refused before loading, recompiled, replaced
entry=$(find "$work/c" -name '*.pwa' | head -1)
[ -n "$entry" ] || fail "no cache entry file"
size=$(stat -c %s "$entry")
printf '\xff' | dd of="$entry" bs=1 seek=$((size - 100)) conv=notrunc status=none
out=$("$pw" compile "$mod" --host run --cache-dir "$work/c" 2>"$work/warn")
grep -q <<<"$out" '^compiled in' || fail "after corruption: $out"
grep -qi 'mismatch\|refus\|reject' "$work/warn" || fail "no warning about the bad entry: $(cat "$work/warn")"
"$pw" cache verify --cache-dir "$work/c" > /dev/null || fail "verify after replacement"
echo "ok: a corrupt entry is refused, recompiled and replaced"

# A Rego module (it imports its memory) without metadata needs an execution mode, as in kwctl
echo '{"request":{"uid":"u1"}}' > "$work/req.json"
set +e
"$pw" eval "$fix/opa_policy.wasm" --request "$work/req.json" > "$work/out" 2> "$work/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "eval of a Rego module without -e: exit $rc"
grep -q 'set executionMode opa or gatekeeper' "$work/err" || fail "eval of a Rego module: $(cat "$work/err")"
"$pw" eval -e opa "$fix/opa_policy.wasm" --request "$work/req.json" > "$work/out" 2> "$work/err" ||
  fail "eval -e opa: $(cat "$work/err")"
grep -q '"allowed": true' "$work/out" || fail "eval -e opa: $(cat "$work/out")"
echo "ok: a Rego module needs -e opa|gatekeeper, and runs with it"

# run --cache-dir: the first run compiles and stores, the second is a hit; same output
"$pw" run -v --cache-dir "$work/r" "$mod" x y > "$work/o1" 2> "$work/e1"
"$pw" run -v --cache-dir "$work/r" "$mod" x y > "$work/o2" 2> "$work/e2"
grep -q 'compiled (stored in the cache)' "$work/e1" || fail "first run: $(cat "$work/e1")"
grep -q 'cache hit' "$work/e2" || fail "second run: $(cat "$work/e2")"
cmp -s "$work/o1" "$work/o2" || fail "the cached run printed something else"
grep -q 'argv\[2\]=y' "$work/o2" || fail "run output: $(cat "$work/o2")"
echo "ok: run --cache-dir compiles once, then hits"
