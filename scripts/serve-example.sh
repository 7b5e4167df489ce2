#!/usr/bin/env bash
# The README's main-job command: installs the Debian packages it needs (scripts/install-deps.sh),
# builds Prewarm and its example policies (C files compiled to wasm32-wasi), writes
# examples/policies.yml with the built modules' paths, and runs `prewarm serve` on it in the
# foreground with a local cache directory, after printing curl lines to try it.
# The first start compiles the modules (quick code at once, optimized code in the background);
# the next ones load them from the cache. Ctrl-C (or SIGTERM) stops the server gracefully and
# the script exits 0; if the server cannot start or never becomes ready, the script says why
# (the server's last log lines) and exits 1.
#
# Settings (environment): PREWARM_PORT (3000), PREWARM_READINESS_PORT (8081),
# PREWARM_EXAMPLE_DIR (where the cache, the generated policies.yml and the server log go;
# default build/example in the repository), PREWARM_SKIP_APT=1 (no apt-get).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PREWARM_PORT:-3000}
rport=${PREWARM_READINESS_PORT:-8081}
run=${PREWARM_EXAMPLE_DIR:-$top/build/example}
t_start=$(date +%s)
step() { echo "serve-example: $* (+$(( $(date +%s) - t_start )) s)" >&2; }

step "checking the Debian packages"
"$top/scripts/install-deps.sh"
step "building Prewarm and the example policies"
mkdir -p "$top/build"
if ! "$top/scripts/build.sh" "$top/build" >"$top/build/build.log" 2>&1; then
  tail -n 30 "$top/build/build.log" >&2
  echo "serve-example: the build failed (full log: $top/build/build.log)" >&2
  exit 1
fi
wasm_dir="$top/build/fixtures"
for m in server_privileged host_wapc example_default_label; do
  [ -f "$wasm_dir/$m.wasm" ] || { echo "serve-example: $wasm_dir/$m.wasm was not built" >&2; exit 1; }
done
mkdir -p "$run/cache"
sed "s|@WASM_DIR@|$wasm_dir|g" "$top/examples/policies.yml" >"$run/policies.yml"

step "starting prewarm serve (log: $run/serve.log)"
"$top/build/prewarm" serve --policies "$run/policies.yml" --cache-dir "$run/cache" \
  --addr 127.0.0.1 --port "$port" --readiness-probe-port "$rport" >"$run/serve.log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  tail -n 2 "$run/serve.log" >&2
  [ "$rc" = 0 ] && { echo "serve-example: stopped" >&2; exit 0; }
  echo "serve-example: the server exited with status $rc" >&2; exit 1
}
trap stop INT TERM
not_ready() {
  echo "serve-example: the server is not ready: $1. Its last log lines ($run/serve.log):" >&2
  tail -n 15 "$run/serve.log" >&2
  kill -TERM "$pid" 2>/dev/null || true
  exit 1
}
# first our own server must listen (a port held by another process makes it exit: then the
# readiness port may answer for someone else), then it must report ready
for _ in $(seq 1 300); do
  grep -q "listening on" "$run/serve.log" && break
  kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; not_ready "it exited"; }
  sleep 0.1
done
ready=0
for _ in $(seq 1 1500); do
  kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; not_ready "it exited"; }
  if curl -sf -o /dev/null "http://127.0.0.1:$rport/readiness"; then ready=1; break; fi
  sleep 0.2
done
kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; not_ready "it exited"; }
[ "$ready" = 1 ] || not_ready "no 200 from /readiness after 5 minutes"
step "ready"
grep -E 'policy:.*ready:' "$run/serve.log" | sed 's/^[^ ]* [A-Z]* *//; s/ (file:.*//' >&2 || true
req="$top/examples/requests"
cat <<MSG

Prewarm is serving the policies of $run/policies.yml on http://127.0.0.1:$port
(admission requests) and http://127.0.0.1:$rport (/readiness, /metrics), in the foreground:
Ctrl-C stops it. The server's log: $run/serve.log. Try, in another terminal:

  # a privileged Pod: rejected ("allowed":false, message "privileged containers are not allowed")
  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged.json http://127.0.0.1:$port/validate/no-privileged-pods
  # an unprivileged Pod: accepted ("allowed":true)
  curl -s -H 'Content-Type: application/json' --data @$req/pod-ok.json http://127.0.0.1:$port/validate/no-privileged-pods
  # a privileged Pod in kube-system, an exempt namespace in the settings: accepted
  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged-kube-system.json http://127.0.0.1:$port/validate/no-privileged-pods
  # the same policy in monitor mode: accepted, the rejection only logged and counted
  curl -s -H 'Content-Type: application/json' --data @$req/pod-privileged.json http://127.0.0.1:$port/validate/no-privileged-pods-monitor
  # a Pod without a team label: accepted with a JSONPatch (base64 "patch") adding the label
  # team=platform: [{"op":"add","path":"/metadata/labels/team","value":"platform"}]
  curl -s -H 'Content-Type: application/json' --data @$req/pod-no-team.json http://127.0.0.1:$port/validate/default-team-label
  # Prometheus metrics (evaluations per policy and outcome, cache, tiers, compiles)
  curl -s http://127.0.0.1:$rport/metrics

Edit $run/policies.yml (or send SIGHUP to $pid) to reload without a restart.
MSG
set +e
wait "$pid"
rc=$?
set -e
# here only when the server stopped by itself
echo "serve-example: the server exited with status $rc" >&2
exit 1
