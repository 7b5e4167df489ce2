#!/usr/bin/env bash
# The test command: installs what the build and tests need (Debian packages), builds
# Prewarm twice (normal, and ASan+UBSan), runs the whole test suite on both, and ends with a
# summary: passed / failed / skipped per build, why tests skipped (one line per reason), and
# the closing line "test: N passed, N failed, N skipped". Exit 0 only when nothing failed.
#
# Settings (environment):
#   PREWARM_SHARED   folder with corpus/ and testsuite/ (default: ../shared next to the
#                    repository when present); tests that need it skip with a message.
#   PREWARM_SKIP_ASAN=1   skip the sanitizer build.
#   CTEST_ARGS       extra ctest arguments (e.g. "-R cache").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
step() { echo "== $* ($(date +%H:%M:%S))"; }
step "Debian packages"
"$top/scripts/install-deps.sh" --test
if [ -z "${PREWARM_SHARED:-}" ] && [ -d "$top/../shared/corpus" ]; then
  PREWARM_SHARED=$(cd "$top/../shared" && pwd)
fi
if [ -n "${PREWARM_SHARED:-}" ]; then
  export PREWARM_CORPUS=${PREWARM_CORPUS:-$PREWARM_SHARED/corpus/wasm}
  export PREWARM_TESTSUITE=${PREWARM_TESTSUITE:-$PREWARM_SHARED/testsuite}
  echo "test: shared materials from $PREWARM_SHARED"
else
  echo "test: no shared corpus/testsuite (set PREWARM_SHARED): those tests will skip"
fi
jobs=$(nproc)
results=()
status=0

# build DIR LOG ARGS...: a quiet build; the log is shown when it fails
build() {
  local dir=$1 log=$2; shift 2
  if ! "$top/scripts/build.sh" "$dir" "$@" >"$log" 2>&1; then
    tail -n 40 "$log"; echo "test: the build failed (log: $log)"; exit 1
  fi
}

step "build (RelWithDebInfo, -Werror)"
mkdir -p "$top/build"
build "$top/build" "$top/build/build.log" -DPREWARM_WERROR=ON
step "tests"
(cd "$top/build" && ctest --output-on-failure -j"$jobs" --output-junit "$top/build/junit.xml" ${CTEST_ARGS:-}) || status=1
results+=("normal=$top/build/junit.xml")

if [ "${PREWARM_SKIP_ASAN:-0}" != 1 ]; then
  step "build (ASan+UBSan, guard pages off)"
  mkdir -p "$top/build-asan"
  PREWARM_BUILD_TYPE=Debug build "$top/build-asan" "$top/build-asan/build.log" \
    -DPREWARM_SANITIZE=address,undefined -DPREWARM_WERROR=ON
  step "tests under ASan+UBSan"
  (cd "$top/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PREWARM_SANITIZED=1 \
     ctest --output-on-failure -j"$jobs" -LE no-asan --output-junit "$top/build-asan/junit.xml" ${CTEST_ARGS:-}) || status=1
  results+=("asan=$top/build-asan/junit.xml")
fi
step "summary"
python3 "$top/scripts/test-summary.py" "${results[@]}" || status=1
exit $status
