#!/usr/bin/env bash
# End to end: Rego policies served by `prewarm serve`, on the generated OPA-ABI fixtures
# (tests/host/opa/): an OPA policy whose mode comes from policies.yml's executionMode, the
# same module in a group member, a Gatekeeper policy whose mode comes from its
# io.kubewarden.metadata (settings as input.parameters), monitor mode and a custom message
# on a Rego rejection, a Rego module without a mode refused at start, and one needing
# builtins Prewarm lacks refused at start naming them.
. "$(dirname "$0")/lib.sh"
export PREWARM_TIERING=off

O=$PREWARM_FIXTURES/opa_policy.wasm
G=$PREWARM_FIXTURES/opa_gatekeeper.wasm
M=$PREWARM_FIXTURES/opa_missing_builtins.wasm
for f in "$O" "$G" "$M"; do [ -f "$f" ] || fail "fixture $f missing"; done

cat >"$T/policies.yml" <<YAML
opa:
  module: "file://$O"
  executionMode: opa
  settings: {limit: 3}
opa-monitor:
  module: "file://$O"
  executionMode: opa
  policyMode: monitor
opa-message:
  module: "file://$O"
  executionMode: opa
  message: "Rejected by the platform team"
gk:
  module: "file://$G"
  settings: {labels: [team]}
grp:
  policyMode: protect
  expression: "rego() && true"
  message: "the group rejected it"
  policies:
    rego: {module: "file://$O", executionMode: opa}
YAML

pod() { # UID PRIVILEGED
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{"username":"u"},"object":{"metadata":{"name":"p"},"spec":{"privileged":%s}}}}' "$1" "$2"
}

start_server "$T/log" --policies "$T/policies.yml" --no-cache --no-watch --workers 2
wait_ready
ok "OPA and Gatekeeper policies loaded"

post /validate/opa "$(pod u1 true)"
[ "$CODE" = 200 ] || fail "opa: HTTP $CODE: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "opa allowed a privileged pod: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["uid"]')" = u1 ] || fail "opa uid: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["message"]')" = "privileged containers are not allowed" ] ||
	fail "opa message: $BODY_OUT"
post /validate/opa "$(pod u2 false)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "opa rejected an ordinary pod: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["warnings"]')" = "['checked by rego']" ] || fail "opa warnings: $BODY_OUT"
ok "OPA mode: the policy's AdmissionResponse, with the request's uid"

post /validate/opa-monitor "$(pod u3 true)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "monitor mode rejected: $BODY_OUT"
post /validate/opa-message "$(pod u4 true)"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["message"]')" = "Rejected by the platform team" ] ||
	fail "custom message: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["details"]["causes"][0]["message"]')" = "privileged containers are not allowed" ] ||
	fail "custom message cause: $BODY_OUT"
ok "monitor mode and a custom message apply to Rego verdicts"

post /validate/gk "$(pod u5 true)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "gatekeeper allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["message"]')" = "privileged containers are not allowed, container c1 is privileged" ] ||
	fail "gatekeeper message: $BODY_OUT"
post /validate/gk "$(pod u6 false)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "gatekeeper rejected: $BODY_OUT"
post /validate_raw/gk '{"request":{"uid":"r1"}}'
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["message"]')" = "internal server error: Gatekeeper does not support raw validation requests" ] ||
	fail "gatekeeper raw: $BODY_OUT"
ok "Gatekeeper mode from the metadata: violations joined; no raw requests"

post /validate/grp "$(pod u7 true)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "group allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["details"]["causes"][0]["message"]')" = "privileged containers are not allowed" ] ||
	fail "group cause: $BODY_OUT"
ok "a Rego policy as a group member"
kill -TERM "$SRV_PID"; wait_exit

refused_at_start() { # POLICIES.yml GREP-PATTERN WHAT
	local rc=0
	"$PREWARM_BIN" serve --policies "$1" --no-cache --no-watch --port 0 --readiness-probe-port 0 >"$1.log" 2>&1 || rc=$?
	[ "$rc" != 0 ] || fail "$3 started"
	grep -q "$2" "$1.log" || fail "$3: $(tail -n 5 "$1.log")"
}
printf 'nomode:\n  module: "file://%s"\n' "$O" >"$T/nomode.yml"
refused_at_start "$T/nomode.yml" 'set executionMode opa or gatekeeper' "a Rego module without executionMode"
printf 'missing:\n  module: "file://%s"\n  executionMode: opa\n' "$M" >"$T/missing.yml"
refused_at_start "$T/missing.yml" 'builtins Prewarm does not implement: .*crypto.x509.parse_certificates' \
	"a module needing missing builtins"
ok "refused at start: a Rego module without a mode, and one needing builtins Prewarm lacks (named)"
