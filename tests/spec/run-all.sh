#!/usr/bin/env bash
# Runs the spec-test files of issues 2 and 16 (or those named) through the engine and prints one
# line per file plus the totals and the wall time of the whole run: the figure quoted in
# docs/spec-tests.md. Files run JOBS at a time (default: number of CPUs), like ctest -j.
# Usage: PREWARM_TESTSUITE=DIR tests/spec/run-all.sh BUILD_DIR [FILE...]
# Env: JOBS, PREWARM_SPEC_OPT (default -O0), KEEP_LOGS=DIR (keep every file's output there),
#      SPEC_ARGS (extra runner arguments, e.g. --allow-unsupported to explore SIMD files).
set -u
build=${1:?usage: run-all.sh BUILD_DIR [FILE...]}; shift
runner=$build/spec_runner
[ -x "$runner" ] || { echo "run-all: $runner not built (cmake --build $build --target spec_runner)"; exit 2; }
[ -n "${PREWARM_TESTSUITE:-}" ] || { echo "run-all: PREWARM_TESTSUITE is not set"; exit 77; }
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(address align block br br_if br_table call call_indirect conversions endianness f32 f64
    fac float_exprs forward func global i32 i64 if int_exprs labels left-to-right load local_get
    local_set local_tee loop memory memory_grow memory_size memory_trap nop return select stack
    store switch traps unreachable unwind data elem exports imports linking)
fi
logs=${KEEP_LOGS:-$(mktemp -d)}
mkdir -p "$logs"
[ -n "${KEEP_LOGS:-}" ] || trap 'rm -rf "$logs"' EXIT
start=$(date +%s.%N)
printf '%s\n' "${files[@]}" | xargs -P "${JOBS:-$(nproc)}" -I{} \
  sh -c '"$0" $3 --name "$1" >"$2/$1.log" 2>&1; echo $? >"$2/$1.rc"' "$runner" {} "$logs" "${SPEC_ARGS:-}"
end=$(date +%s.%N)
p=0; f=0; s=0; bad=0
for n in "${files[@]}"; do
  line=$(grep -E "^$n\.wast: [0-9]+ passed" "$logs/$n.log" | tail -1)
  if [ -z "$line" ]; then
    echo "$n.wast: no summary (exit $(cat "$logs/$n.rc")):"; tail -5 "$logs/$n.log"; bad=$((bad + 1)); continue
  fi
  echo "$line"
  grep -E '^FAIL ' "$logs/$n.log" | head -20
  read -r a b c < <(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')
  p=$((p + a)); f=$((f + b)); s=$((s + c))
  [ "$(cat "$logs/$n.rc")" = 0 ] || bad=$((bad + 1))
done
printf 'total: %d files, %d passed, %d failed, %d skipped, %d files not passing; wall %.1f s (JOBS=%s, %s)\n' \
  "${#files[@]}" "$p" "$f" "$s" "$bad" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "${JOBS:-$(nproc)}" "${PREWARM_SPEC_OPT:--O0}"
[ "$bad" -eq 0 ]
