#!/usr/bin/env bash
# 8 processes putting the same key and 8 putting different keys into one cache directory at
# once: all succeed, one valid entry per key, no temp file left, `prewarm cache verify`
# passes; then the CLI (ls, stats across runs, rm) on the result.
. "$(dirname "$0")/lib.sh"
cache=$work/cache
for i in 0 1 2 3 4 5 6 7; do make_module "$work/m$i.wasm" $((100 + i)); done

pids=()
for i in 0 1 2 3 4 5 6 7; do
  "$tool" get "$fix/cache_small.wasm" --cache-dir "$cache" > "$work/same.$i" 2>&1 & pids+=($!)
  "$tool" get "$work/m$i.wasm" --cache-dir "$cache" > "$work/diff.$i" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a writer failed: $(cat "$work"/same.* "$work"/diff.*)"; done
for i in 0 1 2 3 4 5 6 7; do
  grep -qx 'answer=42' "$work/same.$i" || fail "same-key process $i: $(cat "$work/same.$i")"
  grep -qx "answer=$((100 + i))" "$work/diff.$i" || fail "process $i: $(cat "$work/diff.$i")"
done
ok "16 concurrent processes succeeded"

n=$(count_files "$cache/v1" '*.pwa')
[ "$n" = 9 ] || fail "expected 9 entries, found $n"
n=$(count_files "$cache" '.tmp-*')
[ "$n" = 0 ] || fail "$n temp files left"
"$pw" cache verify --cache-dir "$cache" > "$work/verify" || fail "verify: $(cat "$work/verify")"
grep -q '^9 ok, 0 bad' "$work/verify" || fail "verify output: $(cat "$work/verify")"
ok "9 entries, no temp file, verify passes"

out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$cache")
grep -q <<<"$out"x 'hit local' || fail "expected a hit: $out"
grep -q <<<"$out"x 'answer=42' || fail "hit did not run: $out"
ok "next lookup hits"

# stats: persisted across the 17 runs
"$pw" cache stats --json --cache-dir "$cache" > "$work/stats.json"
python3 - "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["runs"] == 17, s
assert s["lookups"] == 17, s
assert s["entries"] == 9, s
assert s["hits"] >= 1 and s["hits_local"] == s["hits"], s
assert 9 <= s["compiles"] <= 16, s
assert s["hits"] + s["misses"] == 17, s
assert s["compile_seconds_saved"] > 0, s
assert s["bytes_written"] > 0 and s["bytes_read"] > 0, s
PY
"$pw" cache stats --cache-dir "$cache" | grep -q 'compile seconds saved' || fail "stats text"
ok "stats: $(cat "$work/stats.json")"

"$pw" cache ls --cache-dir "$cache" > "$work/ls"
[ "$(grep -c '^[0-9a-f]\{64\}-[0-9a-f]\{64\} ' "$work/ls")" = 9 ] || fail "ls: $(cat "$work/ls")"
key=$(grep -m1 -o '^[0-9a-f]\{64\}-[0-9a-f]\{64\}' "$work/ls")
"$pw" cache rm "$key" --cache-dir "$cache" | grep -q 'removed 1 entries' || fail "rm"
[ "$(count_files "$cache/v1" '*.pwa')" = 8 ] || fail "rm left the entry"
if "$pw" cache rm not-a-key --cache-dir "$cache" 2> "$work/err"; then fail "rm of a bad key succeeded"; fi
grep -q 'invalid cache key' "$work/err" || fail "rm message: $(cat "$work/err")"
"$pw" cache rm --all --cache-dir "$cache" | grep -q 'removed 8 entries' || fail "rm --all"
[ "$(count_files "$cache/v1" '*.pwa')" = 0 ] || fail "rm --all left entries"
ok "ls and rm"
