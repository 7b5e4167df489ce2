#!/usr/bin/env bash
# The test command: installs what the build and tests need (Debian packages), builds
# Prewarm twice (normal, and ASan+UBSan), and runs the whole test suite on both.
#
# Settings (environment):
#   PREWARM_SHARED   folder with corpus/ and testsuite/ (default: ../shared next to the
#                    repository when present); tests that need it skip with a message.
#   PREWARM_SKIP_ASAN=1   skip the sanitizer build.
#   CTEST_ARGS       extra ctest arguments (e.g. "-R cache").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
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

echo "== build (RelWithDebInfo, -Werror) =="
"$top/scripts/build.sh" "$top/build" -DPREWARM_WERROR=ON
echo "== tests =="
(cd "$top/build" && ctest --output-on-failure -j"$jobs" ${CTEST_ARGS:-})

if [ "${PREWARM_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build (ASan+UBSan, guard pages off) =="
  PREWARM_BUILD_TYPE=Debug "$top/scripts/build.sh" "$top/build-asan" \
    -DPREWARM_SANITIZE=address,undefined -DPREWARM_WERROR=ON
  echo "== tests under ASan+UBSan =="
  (cd "$top/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PREWARM_SANITIZED=1 \
     ctest --output-on-failure -j"$jobs" -LE no-asan ${CTEST_ARGS:-})
fi
echo "test: all passed"
