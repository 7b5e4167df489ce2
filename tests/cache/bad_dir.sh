#!/usr/bin/env bash
# Bad cache directories never fail a run: an unwritable directory, a read-only volume that
# still holds entries, and a full file system (a 64 KiB tmpfs) each give a warning and the
# module is compiled and runs. Mount cases need root (mount -t tmpfs) and skip otherwise;
# they run in a private mount namespace so nothing leaks if the test dies.
if [ "$(id -u)" = 0 ] && [ -z "${PW_CACHE_TEST_NS:-}" ] && command -v unshare > /dev/null &&
   unshare -m --propagation private true 2> /dev/null; then
  PW_CACHE_TEST_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
ran=0

# 1. a directory that cannot be created (its parent is a file)
touch "$work/file"
out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$work/file/cache" 2> "$work/err") ||
  fail "run failed with an uncreatable cache dir: $(cat "$work/err")"
grep -q <<<"$out"x 'answer=42' || fail "no answer: $out"
grep -q 'local cache unavailable' "$work/err" || fail "no warning: $(cat "$work/err")"
ok "uncreatable directory: warned, compiled, ran"; ran=1

if [ "$(id -u)" != 0 ]; then
  # 2. (non-root) an unwritable directory
  mkdir -p "$work/ro/cache" && chmod 555 "$work/ro/cache"
  out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$work/ro/cache" 2> "$work/err") ||
    fail "run failed with an unwritable cache dir: $(cat "$work/err")"
  grep -q <<<"$out"x 'answer=42' || fail "no answer: $out"
  grep -q 'WARN' "$work/err" || fail "no warning: $(cat "$work/err")"
  chmod 755 "$work/ro/cache"
  ok "unwritable directory: warned, compiled, ran"
  echo "SKIP: read-only and full tmpfs cases need root (mount -t tmpfs)"
  exit 0
fi

mnt=$work/mnt
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2> "$work/err"; then
  echo "SKIP: mount -t tmpfs not permitted here: $(cat "$work/err")"
  exit 0
fi
cleanup_hooks+=("umount '$mnt'")

# 2. a read-only volume holding an entry: hits still served, puts warn once, runs succeed
"$tool" get "$fix/cache_small.wasm" --cache-dir "$mnt/cache" > /dev/null
mount -o remount,ro "$mnt"
out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$mnt/cache" 2> "$work/err") || fail "ro hit: $(cat "$work/err")"
grep -q <<<"$out"x 'hit local' || fail "read-only volume: expected a hit: $out"
out=$("$tool" get "$fix/cache_other.wasm" --cache-dir "$mnt/cache" 2> "$work/err") ||
  fail "run failed on a read-only cache: $(cat "$work/err")"
grep -q <<<"$out"x 'answer=7' || fail "no answer: $out"
grep -q 'writing to tier local failed' "$work/err" || fail "no warning: $(cat "$work/err")"
ok "read-only volume: hit served; miss warned, compiled, ran"

# 3. an unwritable directory (read-only mount, nothing there yet)
umount "$mnt"
mount -t tmpfs -o ro,size=64k tmpfs "$mnt"
out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$mnt/cache" 2> "$work/err") ||
  fail "run failed with an unwritable cache dir: $(cat "$work/err")"
grep -q <<<"$out"x 'answer=42' || fail "no answer: $out"
grep -q 'local cache unavailable' "$work/err" || fail "no warning: $(cat "$work/err")"
ok "unwritable directory: warned, compiled, ran"

# 4. a full file system: the put fails with ENOSPC, leaves no partial file, the run succeeds
umount "$mnt"
mount -t tmpfs -o size=64k tmpfs "$mnt"
mkdir -p "$mnt/cache"
dd if=/dev/zero of="$mnt/fill" bs=4k 2> /dev/null || true
out=$("$tool" get "$fix/cache_small.wasm" --cache-dir "$mnt/cache" 2> "$work/err") ||
  fail "run failed with a full cache volume: $(cat "$work/err")"
grep -q <<<"$out"x 'answer=42' || fail "no answer: $out"
grep -q 'No space left on device' "$work/err" || fail "no ENOSPC warning: $(cat "$work/err")"
[ "$(count_files "$mnt" '.tmp-*')" = 0 ] || fail "a partial temp file was left"
[ "$(count_files "$mnt" '*.pwa')" = 0 ] || fail "an entry appeared on a full volume"
ok "full volume: warned, compiled, ran, nothing partial left"
