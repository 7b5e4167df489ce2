#!/usr/bin/env bash
# End to end: policy groups served by `prewarm serve` on the C fixture host_wapc.wasm. Its
# verdict follows the "scenario" it finds first in its input; the requests here carry none,
# so each member's settings pick its behaviour (accept, reject, mutate, hostlog). Checks: a
# group accepting (no status), rejecting with the group message and one cause per member
# that rejected (no code), short-circuit (the right side of || does not run: its log line is
# absent), a mutating member counted as a rejection, monitor mode on /validate but not on
# /audit, /validate_raw, members sharing one compiled module, and a bad expression refused
# at start with its position.
. "$(dirname "$0")/lib.sh"
export PREWARM_TIERING=off

W=$PREWARM_FIXTURES/host_wapc.wasm
[ -f "$W" ] || fail "fixture $W missing"

member() { printf '      %s: {module: "file://%s", settings: {scenario: %s}, hostCapabilities: []}\n' "$1" "$W" "$2"; }
group() { # ID EXPRESSION [MODE]
	printf '%s:\n  namespacedName: {Namespace: "", Name: %s}\n  policyMode: %s\n  message: "The group policy rejected your request"\n  expression: "%s"\n  policies:\n' \
		"$1" "$1" "${3:-protect}" "$2"
	member acc accept; member rej reject; member rej2 reject; member mut mutate; member logger hostlog
}
{
	printf 'single:\n  module: "file://%s"\n  namespacedName: {Namespace: "", Name: single}\n' "$W"
	group g-accept "acc() && !rej()"
	group g-reject "acc() && rej()"
	group g-two "rej() || (acc() && rej2())"
	group g-short "acc() || logger()"
	group g-short2 "rej() || logger()"
	group g-mutate "mut() && true"
	group g-monitor "rej()" monitor
	group g-false "false"
} >"$T/policies.yml"

req() { # UID
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{"username":"u"},"object":{"metadata":{"name":"p"}}}}' "$1"
}

start_server "$T/log" --policies "$T/policies.yml" --no-cache --no-watch --workers 1 --log-level debug
wait_ready
ok "groups loaded"
[ "$(metric_value 'prewarm_compiles_total{tier="optimized"}')" = 1 ] ||
	fail "40 members and a policy on one module: want 1 compile, got $(metric_value 'prewarm_compiles_total{tier="optimized"}')"
grep -q 'ignoring key "namespacedName"' "$LOG" || fail "namespacedName not logged as ignored"
ok "members share the module (1 compile)"

post /validate/g-accept "$(req u1)"
[ "$CODE" = 200 ] || fail "g-accept: HTTP $CODE: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "g-accept not allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" '"status" in d["response"]')" = False ] || fail "g-accept has a status: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["uid"]')" = u1 ] || fail "g-accept uid: $BODY_OUT"
ok "a group accepts"

post /validate/g-reject "$(req u2)"
[ "$CODE" = 200 ] || fail "g-reject: HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "g-reject allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["message"]')" = "The group policy rejected your request" ] ||
	fail "g-reject message: $BODY_OUT"
[ "$(json_get "$BODY_OUT" '"code" in d["response"]["status"]')" = False ] || fail "g-reject has a code: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["details"]["causes"]')" = \
	"[{'reason': None, 'message': 'rejected by the host test policy', 'field': 'spec.policies.rej'}]" ] ||
	fail "g-reject causes: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["warnings"]')" = None ] || fail "g-reject warnings: $BODY_OUT"
ok "a group rejects with its message and the rejecting member's cause"

post /validate/g-two "$(req u3)"
[ "$(json_get "$BODY_OUT" '[c["field"] for c in d["response"]["status"]["details"]["causes"]]')" = \
	"['spec.policies.rej', 'spec.policies.rej2']" ] || fail "g-two causes: $BODY_OUT"
ok "one cause per member that ran and rejected, in call order"

post /validate/g-short "$(req u4)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "g-short: $BODY_OUT"
post /validate/g-short2 "$(req u5)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "g-short2: $BODY_OUT"
grep -q 'policy:g-short2/logger.*hello from the host test policy' "$LOG" || fail "g-short2: logger did not run"
! grep -q 'policy:g-short/logger.*hello from the host test policy' "$LOG" || fail "g-short: the right side of || ran"
ok "short-circuit: the right side of || runs only when needed"

post /validate/g-mutate "$(req u6)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "g-mutate allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" '"patch" in d["response"]')" = False ] || fail "g-mutate has a patch: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["details"]["causes"][0]["message"]')" = \
	"mutation is not allowed inside of policy group" ] || fail "g-mutate cause: $BODY_OUT"
post /validate_raw/g-mutate '{"request":{"uid":"raw1","object":{"metadata":{"name":"p"}}}}'
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "raw g-mutate: $BODY_OUT"
[ "$(json_get "$BODY_OUT" '"kind" in d')" = False ] || fail "raw answer is an AdmissionReview: $BODY_OUT"
ok "a mutating member counts as a rejection (validate and validate_raw)"

post /validate/g-monitor "$(req u7)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "g-monitor on validate: $BODY_OUT"
[ "$(json_get "$BODY_OUT" '"status" in d["response"]')" = False ] || fail "g-monitor status: $BODY_OUT"
post /audit/g-monitor "$(req u8)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "g-monitor on audit: $BODY_OUT"
ok "monitor mode on /validate, not on /audit"

post /validate/g-false "$(req u9)"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["details"]')" = "{}" ] || fail "g-false details: $BODY_OUT"
post /validate/g-reject/rej "$(req u10)"
[ "$CODE" = 404 ] || fail "a member served alone: HTTP $CODE"
post /validate/g-accept '{"request": 3}'
[ "$CODE" -ge 400 ] && [ "$CODE" -lt 500 ] || fail "bad body on a group: HTTP $CODE"
post /validate/single "$(req u11)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "single policy beside groups: $BODY_OUT"
ok "no member rejected: empty details; members are not served alone; bad bodies refused"

kill -TERM "$SRV_PID"; wait_exit

printf 'g:\n  message: m\n  expression: "acc() + 1"\n  policies:\n    acc: {module: "file://%s"}\n' "$W" >"$T/bad.yml"
set +e
"$PREWARM_BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port 0 --policies "$T/bad.yml" --no-cache >"$T/bad.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || fail "a bad expression was accepted"
grep -q 'policy group "g": expression: at position 7: expected an operator' "$T/bad.log" ||
	{ cat "$T/bad.log" >&2; fail "bad expression message"; }
ok "a bad expression is refused at start with its position"
