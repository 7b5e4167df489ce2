# Helpers for the end-to-end tests of `prewarm serve`: start the real binary on free ports
# (port 0, the bound ports read from its log), wait for readiness (bounded polling, no timed
# assertions), talk to it with curl, and stop it. Sourced by tests/server/*.sh.

set -euo pipefail
: "${PREWARM_BIN:?PREWARM_BIN not set (run through ctest)}"
: "${PREWARM_FIXTURES:?PREWARM_FIXTURES not set (run through ctest)}"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/pw-serve-test.XXXXXX")
SRV_PID=""
cleanup() {
	if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then kill -KILL "$SRV_PID" 2>/dev/null || true; fi
	[ "${PREWARM_KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -n "${LOG:-}" ] && [ -f "$LOG" ] && { echo "--- server log ($LOG):" >&2; tail -n 40 "$LOG" >&2; }; exit 1; }
ok() { echo "ok: $*"; }

# A module with the same code as $1 but another digest: appends a custom section.
variant() { # SRC DEST TEXT
	local name="prewarm-variant" payload="$3"
	local body_len=$(( 1 + ${#name} + ${#payload} ))
	[ "$body_len" -lt 128 ] || fail "variant text too long"
	cp "$1" "$2"
	printf "\\x00\\x$(printf %02x "$body_len")\\x$(printf %02x ${#name})%s%s" "$name" "$payload" >>"$2"
}

# start_server LOGFILE ARGS...: runs prewarm serve on free ports; sets SRV_PID PORT RPORT
start_server() {
	LOG=$1; shift
	: >"$LOG"
	"$PREWARM_BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port 0 "$@" >>"$LOG" 2>&1 &
	SRV_PID=$!
	wait_listening
}

# wait_listening: after a server was started in the background (SRV_PID, LOG), waits for its
# "listening on" line; sets PORT RPORT.
wait_listening() {
	local i
	PORT=""; RPORT=""
	for i in $(seq 1 600); do
		if grep -q "listening on" "$LOG"; then
			PORT=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\) .*/\1/p' "$LOG" | head -1)
			RPORT=$(sed -n 's/.*readiness and metrics on [^ ]*:\([0-9]*\).*/\1/p' "$LOG" | head -1)
			break
		fi
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$PORT" ] && [ -n "$RPORT" ] || fail "server did not start listening"
}

# wait_ready: polls /readiness until 200 (bounded: compiles under ASan can be slow); fails if the server exits.
wait_ready() {
	local i code
	for i in $(seq 1 3000); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/readiness" || true)
		[ "$code" = 200 ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || fail "server exited before ready"
		sleep 0.2
	done
	fail "server not ready after a long wait"
}

# wait_exit: waits for the server to exit and sets EXIT_CODE.
wait_exit() {
	set +e
	wait "$SRV_PID"
	EXIT_CODE=$?
	set -e
	SRV_PID=""
}

# post PATH BODY -> sets CODE and BODY_OUT
post() {
	local scheme=${SCHEME:-http}
	BODY_OUT=$(curl -s ${CURL_TLS:-} -o - -w '\n%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$2" "$scheme://127.0.0.1:$PORT$1") || fail "curl POST $1 failed"
	CODE=${BODY_OUT##*$'\n'}
	BODY_OUT=${BODY_OUT%$'\n'*}
}

metrics() { curl -sf "http://127.0.0.1:$RPORT/metrics" || fail "GET /metrics failed"; }
# metric_value NAME_WITH_LABELS: the value of one sample (empty if absent)
metric_value() { metrics | awk -v n="$1" '$1 == n { print $2 }'; }

# wait_metric NAME VALUE: polls until the sample equals VALUE (bounded)
wait_metric() {
	local i
	for i in $(seq 1 3000); do
		[ "$(metric_value "$1")" = "$2" ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || fail "server exited while waiting for $1 = $2"
		sleep 0.1
	done
	fail "$1 never became $2 (is $(metric_value "$1"))"
}

# An AdmissionReview whose object carries the test policy's scenario.
review() { # UID SCENARIO [NAMESPACE]
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},"namespace":"%s","operation":"CREATE","userInfo":{"username":"test"},"object":{"scenario":"%s","metadata":{"name":"p","labels":{"keep":"1"}},"spec":[1,2]}}}' \
		"$1" "${3:-default}" "$2"
}

json_get() { # JSON PYTHON_EXPR (on variable d)
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
