#!/usr/bin/env bash
# The test command: installs what the build and tests need (Debian packages), builds
# Prewarm three times (normal, ASan+UBSan, TSan), runs the whole test suite on the first two
# and the threaded tests (TSAN_TESTS) on the third, and ends with a summary: passed / failed / skipped per build, why tests skipped (one line per reason), and
# the closing line "test: N passed, N failed, N skipped". Exit 0 only when nothing failed.
#
# Settings (environment):
#   PREWARM_SHARED   folder with corpus/ and testsuite/ (default: ../shared next to the
#                    repository when present); tests that need it skip with a message.
#   PREWARM_SKIP_ASAN=1   skip the ASan+UBSan build.
#   PREWARM_SKIP_TSAN=1   skip the TSan build.
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
# TSan: the tests that run threads (worker pools, the interrupter, concurrent lookups, the
# HTTP thread pool with reloads and tier-ups, async registry publishing). The whole suite
# under TSan takes several times the normal run's time, beyond CI's budget; these are where
# threads meet. Every report goes to a file (servers' stderr is a log the tests only grep):
# any file there fails the run. Suppressions: tests/tsan.supp (each one explained).
TSAN_TESTS='^(test_util|test_engine|test_cache_tiers|test_cache_local|test_host_policy|test_cache_registry|test_server_serve|test_server_tiering)$'
if [ "${PREWARM_SKIP_TSAN:-0}" != 1 ]; then
  step "build (TSan, guard pages off)"
  mkdir -p "$top/build-tsan"
  PREWARM_BUILD_TYPE=Debug build "$top/build-tsan" "$top/build-tsan/build.log" \
    -DPREWARM_SANITIZE=thread -DPREWARM_WERROR=ON
  step "threaded tests under TSan"
  tsan_logs=$top/build-tsan/tsan-reports
  rm -rf "$tsan_logs"; mkdir -p "$tsan_logs"
  (cd "$top/build-tsan" && TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$tsan_logs/report suppressions=$top/tests/tsan.supp" \
     PREWARM_SANITIZED=1 ctest --output-on-failure -j"$jobs" -R "$TSAN_TESTS" --output-junit "$top/build-tsan/junit.xml" ${CTEST_ARGS:-}) || status=1
  results+=("tsan=$top/build-tsan/junit.xml")
  if [ -n "$(ls -A "$tsan_logs")" ]; then
    echo "test: ThreadSanitizer reports ($tsan_logs):"; head -n 60 "$tsan_logs"/*; status=1
  fi
fi

step "summary"
python3 "$top/scripts/test-summary.py" "${results[@]}" || status=1
exit $status
