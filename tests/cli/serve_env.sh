#!/usr/bin/env bash
# `prewarm serve` configured the way kubewarden-controller configures a policy-server: only
# through environment variables (docs/kubewarden.md, "What the controller sets on the
# Deployment"), plus the PREWARM_CACHE_* variables of the cache options.
#   1. the controller's environment alone (bind address, ports 0, log format otlp, OTLP
#      endpoint, metrics on, sigstore dir, download dir) and PREWARM_CACHE_DIR: ready, answers,
#      one warning naming the OTLP settings seen, Prometheus /metrics, entries in the cache dir;
#   2. KUBEWARDEN_VERIFICATION_CONFIG_PATH naming a missing file: exit 1 naming it (verification
#      itself is tested in tests/server/serve_verify.sh);
#   3. each accepted Kubewarden flag/variable Prewarm does not act on: the server starts;
#   4. a flag wins over its variable (--cache-dir over PREWARM_CACHE_DIR, --addr over
#      KUBEWARDEN_BIND_ADDRESS, which wins over the older KUBEWARDEN_ADDR);
#   5. PREWARM_NO_CACHE, usage errors (--daemon, --client-ca-file without a certificate),
#      and --help naming every variable.
. "$PREWARM_SOURCE_DIR/tests/server/lib.sh"
export PREWARM_TIERING=off   # compile counts below assume one optimized compile per module

W=$PREWARM_FIXTURES/host_wapc.wasm
[ -f "$W" ] || fail "fixture $W missing"
cat >"$T/policies.yml" <<EOF2
pol:
  module: file://$W
EOF2
mkdir -p "$T/home" "$T/dl"

# start_env LOGFILE ENV... -- ARGS...: prewarm serve with exactly the environment given (plus
# PATH, HOME and PREWARM_TIERING); sets SRV_PID PORT RPORT like start_server (lib.sh).
start_env() {
	LOG=$1; shift
	local envs=() args=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	args=("$@")
	: >"$LOG"
	env -i PATH="$PATH" HOME="$T/home" PREWARM_TIERING=off "${envs[@]}" \
		"$PREWARM_BIN" serve "${args[@]}" >>"$LOG" 2>&1 &
	SRV_PID=$!
	wait_listening
}
stop() {
	kill -TERM "$SRV_PID"
	wait_exit
	[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE after SIGTERM (want 0)"
}
entries() { find "$1" -name '*.pwa' 2>/dev/null | wc -l; }

# The variables the controller sets, with loopback and free ports for the test.
CTRL=(KUBEWARDEN_POLICIES="$T/policies.yml" KUBEWARDEN_POLICIES_DOWNLOAD_DIR="$T/dl"
	KUBEWARDEN_SIGSTORE_CACHE_DIR="$T/sigstore-data" KUBEWARDEN_BIND_ADDRESS=127.0.0.1
	KUBEWARDEN_PORT=0 KUBEWARDEN_READINESS_PROBE_PORT=0)

# ---- 1. the controller's environment only --------------------------------------------------
start_env "$T/log1" "${CTRL[@]}" KUBEWARDEN_LOG_FMT=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
	OTEL_EXPORTER_OTLP_TIMEOUT=5000 KUBEWARDEN_ENABLE_METRICS=true PREWARM_CACHE_DIR="$T/c1" --
wait_ready
grep -q 'listening on 127.0.0.1:' "$LOG" || fail "KUBEWARDEN_BIND_ADDRESS not used"
post /validate/pol "$(review u1 accept)"
[ "$CODE" = 200 ] || fail "validate: HTTP $CODE $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "not allowed: $BODY_OUT"
post /validate/pol "$(review u2 reject)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "reject allowed: $BODY_OUT"
[ "$(grep -c 'no OTLP exporter' "$LOG")" = 1 ] || fail "want exactly one OTLP warning"
grep 'no OTLP exporter' "$LOG" | grep -q 'OTEL_EXPORTER_OTLP_ENDPOINT.*OTEL_EXPORTER_OTLP_TIMEOUT\|OTEL_EXPORTER_OTLP_TIMEOUT.*OTEL_EXPORTER_OTLP_ENDPOINT' \
	|| fail "the OTLP warning does not name the settings seen"
grep 'no OTLP exporter' "$LOG" | grep -q 'localhost:4317' && fail "the OTLP warning prints a value (it may hold credentials)"
head -1 "$LOG" | python3 -c 'import json,sys; json.loads(sys.stdin.readline())' || fail "otlp: log is not JSON lines"
m=$(metrics)
grep -q '^prewarm_ready 1' <<<"$m" || fail "/metrics not served with metrics on"
[ "$(entries "$T/c1")" -ge 1 ] || fail "PREWARM_CACHE_DIR got no entries"
grep -q 'policy:pol.*compiled in' "$LOG" || fail "first start did not compile"
stop
ok "the controller's environment alone: ready, answers, one OTLP warning, Prometheus, cache in PREWARM_CACHE_DIR"

# the same again: a local hit from PREWARM_CACHE_DIR, no compile
start_env "$T/log1b" "${CTRL[@]}" PREWARM_CACHE_DIR="$T/c1" --
wait_ready
grep -q 'policy:pol.*local hit' "$LOG" || fail "restart did not hit PREWARM_CACHE_DIR"
stop
ok "restart: local hit from PREWARM_CACHE_DIR"

# ---- 2. a verification config that cannot be read: exit 1 before listening --------------
set +e
env -i PATH="$PATH" HOME="$T/home" "${CTRL[@]}" PREWARM_CACHE_DIR="$T/c1" \
	KUBEWARDEN_VERIFICATION_CONFIG_PATH=/verification/verification.yml "$PREWARM_BIN" serve >"$T/log2" 2>&1
rc=$?
"$PREWARM_BIN" serve --policies "$T/policies.yml" --verification-path "$T/v.yml" >"$T/log2b" 2>&1
rc2=$?
set -e
[ "$rc" = 1 ] || { LOG=$T/log2; fail "verification via env: exit $rc (want 1)"; }
grep -q -e '--verification-path: verification config' "$T/log2" || { LOG=$T/log2; fail "no reason given"; }
grep -q 'verification.yml' "$T/log2" || { LOG=$T/log2; fail "the file is not named"; }
grep -q 'listening on' "$T/log2" && fail "listened before refusing"
[ "$rc2" = 1 ] || { LOG=$T/log2b; fail "--verification-path: exit $rc2 (want 1)"; }
ok "KUBEWARDEN_VERIFICATION_CONFIG_PATH / --verification-path: exit 1 with the reason"

# ---- 3. accepted flags and variables Prewarm does not act on -------------------------------
accepted() { # LABEL ENV... -- ARGS...
	local label=$1; shift
	start_env "$T/log3" "${CTRL[@]}" PREWARM_CACHE_DIR="$T/c1" "$@"
	wait_ready
	stop
	ok "accepted: $label"
}
accepted "--log-no-color" -- --log-no-color
accepted "NO_COLOR=1" NO_COLOR=1 --
accepted "--sigstore-cache-dir" -- --sigstore-cache-dir "$T/sig"
accepted "--sigstore-trust-config" -- --sigstore-trust-config "$T/trust.json"
grep -q 'sigstore-trust-config.*unused' "$T/log3" || { LOG=$T/log3; fail "--sigstore-trust-config not logged"; }
accepted "KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH" KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH=/sigstore-trust/x.json --
accepted "--ignore-kubernetes-connection-failure" -- --ignore-kubernetes-connection-failure
accepted "--enable-pprof" -- --enable-pprof
grep -q 'enable-pprof' "$T/log3" || { LOG=$T/log3; fail "--enable-pprof not logged"; }
accepted "--enable-metrics (text log)" -- --enable-metrics
grep -q 'no OTLP exporter' "$T/log3" || { LOG=$T/log3; fail "--enable-metrics: no warning"; }
accepted "--log-fmt otlp" -- --log-fmt otlp
accepted "--daemon-pid-file without --daemon" -- --daemon-pid-file "$T/pid" --daemon-stdout-file "$T/o"

# ---- 4. flags win over variables -----------------------------------------------------------
start_env "$T/log4" "${CTRL[@]}" PREWARM_CACHE_DIR="$T/env-cache" KUBEWARDEN_BIND_ADDRESS=0.0.0.0 -- \
	--cache-dir "$T/flag-cache" --addr 127.0.0.1
wait_ready
grep -q 'listening on 127.0.0.1:' "$LOG" || fail "--addr did not win over KUBEWARDEN_BIND_ADDRESS"
[ "$(entries "$T/flag-cache")" -ge 1 ] || fail "--cache-dir got no entries"
[ "$(entries "$T/env-cache")" = 0 ] || fail "PREWARM_CACHE_DIR used although --cache-dir was given"
stop
env_no_bind=()
for e in "${CTRL[@]}"; do case $e in KUBEWARDEN_BIND_ADDRESS=*) ;; *) env_no_bind+=("$e") ;; esac; done
start_env "$T/log4b" "${env_no_bind[@]}" KUBEWARDEN_ADDR=127.0.0.1 PREWARM_CACHE_DIR="$T/c1" --
grep -q 'listening on 127.0.0.1:' "$LOG" || fail "KUBEWARDEN_ADDR (old name) not used"
stop
start_env "$T/log4c" "${env_no_bind[@]}" KUBEWARDEN_ADDR=0.0.0.0 KUBEWARDEN_BIND_ADDRESS=127.0.0.1 PREWARM_CACHE_DIR="$T/c1" --
grep -q 'listening on 127.0.0.1:' "$LOG" || fail "KUBEWARDEN_BIND_ADDRESS did not win over KUBEWARDEN_ADDR"
stop
ok "flags win over variables; KUBEWARDEN_BIND_ADDRESS over KUBEWARDEN_ADDR"

# ---- 5. PREWARM_NO_CACHE, usage errors, --help -----------------------------------------------
start_env "$T/log5" "${CTRL[@]}" PREWARM_CACHE_DIR="$T/nc" PREWARM_NO_CACHE=true --
wait_ready
grep -q 'policy:pol.*compiled in' "$LOG" || fail "PREWARM_NO_CACHE: not compiled"
[ "$(entries "$T/nc")" = 0 ] || fail "PREWARM_NO_CACHE: the cache got entries"
stop
ok "PREWARM_NO_CACHE: no cache"

usage_error() { # WHAT ARGS...
	local what=$1; shift
	set +e
	env -i PATH="$PATH" HOME="$T/home" "${CTRL[@]}" "$PREWARM_BIN" serve "$@" >"$T/log6" 2>&1
	local rc=$?
	set -e
	[ "$rc" = 2 ] || { LOG=$T/log6; fail "$what: exit $rc (want 2)"; }
	grep -q -e "$what" "$T/log6" || { LOG=$T/log6; fail "$what: not named in the error"; }
}
usage_error --daemon --daemon
usage_error --client-ca-file --client-ca-file "$T/ca.crt"
usage_error --client-ca-file --cert-file "$T/c.crt" --key-file "$T/c.key" --client-ca-file "$T/a.crt,,$T/b.crt"

ok "usage errors: --daemon, --client-ca-file without a certificate or with an empty name"

"$PREWARM_BIN" serve --help >"$T/help"
for v in KUBEWARDEN_BIND_ADDRESS KUBEWARDEN_ADDR KUBEWARDEN_PORT KUBEWARDEN_READINESS_PROBE_PORT KUBEWARDEN_LOG_FMT \
	KUBEWARDEN_LOG_LEVEL NO_COLOR KUBEWARDEN_ENABLE_METRICS KUBEWARDEN_CLIENT_CA_FILE KUBEWARDEN_CERT_FILE \
	KUBEWARDEN_VERIFICATION_CONFIG_PATH KUBEWARDEN_SIGSTORE_TRUST_CONFIG_PATH KUBEWARDEN_SIGSTORE_CACHE_DIR \
	KUBEWARDEN_IGNORE_KUBERNETES_CONNECTION_FAILURE KUBEWARDEN_ENABLE_PPROF KUBEWARDEN_DAEMON \
	KUBEWARDEN_DOCKER_CONFIG_JSON_PATH KUBEWARDEN_SOURCES_PATH KUBEWARDEN_POLICIES OTEL_EXPORTER_OTLP \
	PREWARM_CACHE_DIR PREWARM_CACHE_MAX_SIZE PREWARM_CACHE_SIGNING_KEY PREWARM_NO_CACHE PREWARM_CACHE_REGISTRY \
	PREWARM_CACHE_REGISTRY_CREDENTIALS PREWARM_CACHE_REGISTRY_CA PREWARM_CACHE_REGISTRY_INSECURE \
	PREWARM_CACHE_REGISTRY_READ_ONLY PREWARM_TIERING PREWARM_OPTIMIZED_ENGINE; do
	grep -q "$v" "$T/help" || fail "--help does not mention $v"
done
ok "--help names every variable"
