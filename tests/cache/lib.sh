# Shared setup of the cache's shell tests: paths to the real binaries, a work directory
# removed on exit, and small assertion helpers. Sourced, not run.
set -euo pipefail
pw=${PREWARM_BIN:?PREWARM_BIN not set (run through ctest)}
tool=${PREWARM_BUILD_DIR:?PREWARM_BUILD_DIR not set}/cache_tool
fix=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
work=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-cache-test.XXXXXX")
cleanup_hooks=()
cleanup() {
  local h
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# count_files DIR PATTERN
count_files() { { find "$1" -name "$2" 2>/dev/null || true; } | wc -l; }  # 0 when DIR does not exist yet
# make_module FILE N: a tiny module whose answer() returns N
make_module() {
  printf '(module (func (export "answer") (result i32) (i32.const %d)))\n' "$2" > "$1.wat"
  wat2wasm "$1.wat" -o "$1"
}
