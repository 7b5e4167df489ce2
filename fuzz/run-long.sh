#!/usr/bin/env bash
# Long fuzzing runs: each named libFuzzer target (fuzz-NAME in the build dir, built with
# -DPREWARM_FUZZ=ON and clang, see fuzz/fuzz.cmake) for MINUTES minutes, niced, over a scratch
# copy of its corpus (the committed corpus stays small: only inputs that found bugs are added
# to it by hand). One line per target in OUT/summary.tsv: target, minutes, execs, crashes, and
# crash inputs kept in OUT/NAME/crash-*.
#   fuzz/run-long.sh BUILD_DIR OUT MINUTES NAME...
# Targets that need fixtures (fuzz-wasi) find them in $PREWARM_FIXTURES (default
# BUILD_DIR/fixtures: build the pw_fixtures target there too).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd) out=$2 minutes=$3; shift 3
mkdir -p "$out"
export PREWARM_FIXTURES=${PREWARM_FIXTURES:-$build/fixtures}
for n in "$@"; do
  d=$out/$n
  mkdir -p "$d/corpus"
  cp -r "$top/fuzz/corpus/$n/." "$d/corpus/" 2>/dev/null || true
  set +e
  (cd "$d" && nice -n 19 "$build/fuzz-$n" -max_total_time=$((minutes * 60)) -print_final_stats=1 \
     -timeout=10 -rss_limit_mb=1024 -artifact_prefix="$d/" -fork=0 corpus >"$d/log" 2>&1)
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -1)
  crashes=$(find "$d" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$minutes" "${execs:-?}" "$crashes" "$rc" >>"$out/summary.tsv"
done
