#!/usr/bin/env bash
# The README's main-job command: installs the Debian packages (scripts/install-deps.sh), builds
# Prewarm and its example policies (scripts/build.sh: the policies are C files compiled to
# wasm32-wasi), writes examples/policies.yml with the built modules' paths, starts
# `prewarm serve` on it with a local cache directory, and prints curl lines to try it.
# The first start compiles the modules; the next ones load them from the cache.
# Ctrl-C (or SIGTERM) stops the server gracefully.
#
# Settings (environment): PREWARM_PORT (3000), PREWARM_READINESS_PORT (8081),
# PREWARM_EXAMPLE_DIR (where the cache and the generated policies.yml go; default
# build/example in the repository), PREWARM_SKIP_APT=1 (no apt-get).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PREWARM_PORT:-3000}
rport=${PREWARM_READINESS_PORT:-8081}
run=${PREWARM_EXAMPLE_DIR:-$top/build/example}

"$top/scripts/install-deps.sh"
echo "serve-example: building (first time: a minute or two)" >&2
"$top/scripts/build.sh" "$top/build" >/dev/null
wasm_dir="$top/build/fixtures"
for m in server_privileged host_wapc; do
  [ -f "$wasm_dir/$m.wasm" ] || { echo "serve-example: $wasm_dir/$m.wasm was not built" >&2; exit 1; }
done
mkdir -p "$run/cache"
sed "s|@WASM_DIR@|$wasm_dir|g" "$top/examples/policies.yml" >"$run/policies.yml"

"$top/build/prewarm" serve --policies "$run/policies.yml" --cache-dir "$run/cache" \
  --addr 127.0.0.1 --port "$port" --readiness-probe-port "$rport" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' INT TERM
for _ in $(seq 1 1500); do
  curl -sf -o /dev/null "http://127.0.0.1:$rport/readiness" && break
  kill -0 $pid 2>/dev/null || { wait $pid; exit 1; }
  sleep 0.2
done
req="$top/examples/requests"
cat <<MSG

Prewarm is serving the policies of $run/policies.yml on http://127.0.0.1:$port
Try (the answer is an AdmissionReview):

  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged.json http://127.0.0.1:$port/validate/no-privileged-pods
  curl -s -H 'Content-Type: application/json' --data @$req/pod-ok.json http://127.0.0.1:$port/validate/no-privileged-pods
  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged-kube-system.json http://127.0.0.1:$port/validate/no-privileged-pods
  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged.json http://127.0.0.1:$port/validate/no-privileged-pods-monitor
  curl -s -H 'Content-Type: application/json' --data @$req/mutate.json http://127.0.0.1:$port/validate/test-policy
  curl -s http://127.0.0.1:$rport/metrics

Edit $run/policies.yml (or send SIGHUP to $pid) to reload without a restart. Ctrl-C stops.
MSG
wait $pid
