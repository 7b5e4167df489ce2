#!/usr/bin/env bash
# bench/cache: per corpus module, compile time vs load from the local cache (verify + memfd +
# dlopen + instantiate) vs the floor (read the artifact's bytes + dlopen), medians of RUNS
# rounds measured side by side. Prints a Markdown table for BENCHMARKS.md.
#
# usage: PREWARM_CORPUS=DIR bench/cache/run.sh [MODULE.wasm...]
#   env: BUILD (build dir, default build), RUNS (default 11),
#        BENCH_CACHE_DIR (default $BUILD/bench-cache: compiles are kept there, so a second
#        run reuses them and reads the compile time each entry recorded).
# Compiling the whole corpus takes many minutes on 2 cores: run it niced, alone, once.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
RUNS=${RUNS:-11}
CACHE=${BENCH_CACHE_DIR:-$BUILD/bench-cache}
if [ $# -eq 0 ]; then
  [ -n "${PREWARM_CORPUS:-}" ] || { echo "set PREWARM_CORPUS (a folder of .wasm files) or give modules" >&2; exit 77; }
  set -- "$PREWARM_CORPUS"/*.wasm
fi
cmake --build "$BUILD" --target bench_cache > /dev/null
echo "cc ${PREWARM_CC:-default} ${PREWARM_OPT:-default}; cpus: $(nproc); runs: $RUNS; $(date -u +%Y-%m-%d)"
nice "$BUILD/bench_cache" "$CACHE" "$RUNS" "$@"
