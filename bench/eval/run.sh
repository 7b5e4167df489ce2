#!/bin/bash
# bench/eval: in-process evaluation figures (evaluations/s, p50/p99, instance reset cost,
# resident memory per instance) for a small policy (the repo's C waPC test policy) and,
# when PREWARM_CORPUS is set, a large one (Kubewarden's safe-labels, TinyGo, 650 KB).
#   bash bench/eval/run.sh [BUILD_DIR] [N]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
n=${2:-500}
[ -f "$build/CMakeCache.txt" ] || nice cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$build" --target bench_eval pw_fixtures >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/small.json" <<'J'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b1","operation":"CREATE","object":{"scenario":"accept","metadata":{"name":"x"}}}}
J
echo "### small: tests/fixtures/c/host_wapc.c (C, waPC)"
nice "$build/bench_eval" "$build/fixtures/host_wapc.wasm" "$tmp/small.json" - "$n"
echo
echo "### small: tests/fixtures/c/host_wasi.c (C, WASI)"
nice "$build/bench_eval" "$build/fixtures/host_wasi.wasm" "$tmp/small.json" - "$n"
if [ -n "${PREWARM_CORPUS:-}" ] && [ -f "$PREWARM_CORPUS/fabriziosestito_policy-server__safe_labels_policy.wasm" ]; then
  cat > "$tmp/large.json" <<'J'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b2","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx","labels":{"cost-center":"cc-123","app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}
J
  echo '{"denied_labels":["foo","bar"],"mandatory_labels":["cost-center"],"constrained_labels":{"cost-center":"^cc-\\d+$"}}' > "$tmp/settings.json"
  echo
  echo "### large: safe-labels (TinyGo, waPC, 650 KB)"
  nice "$build/bench_eval" "$PREWARM_CORPUS/fabriziosestito_policy-server__safe_labels_policy.wasm" "$tmp/large.json" "$tmp/settings.json" "$n"
else
  echo "(PREWARM_CORPUS unset: the large policy is skipped)"
fi
