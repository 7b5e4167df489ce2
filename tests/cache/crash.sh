#!/usr/bin/env bash
# Crash safety: 60 times, start a writer that puts a big entry (a real artifact padded to
# 8 MiB) again and again, and SIGKILL it after a random delay, so kills land before, during
# and after writes, fsyncs and renames. Afterwards `prewarm cache verify` passes, there is
# no entry or one whole entry, and the next lookup hits it or recompiles. Temp files of the
# killed writers are removed by `cache gc` once old.
. "$(dirname "$0")/lib.sh"
cache=$work/cache
"$tool" compile "$fix/cache_small.wasm" "$work/art.so"
for i in $(seq 1 60); do
  "$tool" put-loop "$work/art.so" 8 --cache-dir "$cache" > /dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % 400)))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  n=$(count_files "$cache/v1" '*.pwa')
  [ "$n" -le 1 ] || fail "iteration $i: $n entries for one key"
done
tmp=$(count_files "$cache" '.tmp-*')
ok "60 kills; $(count_files "$cache/v1" '*.pwa') entry, $tmp temp files left by killed writers"

"$pw" cache verify --cache-dir "$cache" > "$work/verify" || fail "verify after crashes: $(cat "$work/verify")"
cat "$work/verify"
out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$cache")
grep -q <<<"$out"x 'answer=42' || fail "lookup after crashes: $out"
echo "$out" | grep -Eqx 'hit local|compiled' || fail "lookup after crashes: $out"
ok "lookup after crashes: $(echo "$out" | head -1)"

# stale temp files go away with gc once older than the limit (1 h)
find "$cache" -name '.tmp-*' -exec touch -d '2 hours ago' {} +
"$pw" cache gc --cache-dir "$cache" > /dev/null
[ "$(count_files "$cache" '.tmp-*')" = 0 ] || fail "gc left stale temp files"
"$pw" cache verify --cache-dir "$cache" > /dev/null || fail "verify after gc"
ok "gc removed stale temp files"
