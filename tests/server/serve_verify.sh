#!/usr/bin/env bash
# `prewarm serve --verification-path` against a real registry (HTTPS + htpasswd): policies
# are pushed with `prewarm push`, one is signed with an EC P-256 key made by openssl (the
# payload signed by `openssl dgst -sha256 -sign`, attached by cosign_tool), the other is not.
#   1. the signed policy alone: verified ("signatures verified" in the log), ready, answers;
#   2. signed + unsigned: the start fails (exit 1, as Kubewarden's policy-server does when a
#      policy cannot be verified) naming the policy, the image and "no signatures found";
#   3. the same with --continue-on-errors: ready, the signed policy answers, the unsigned one
#      answers allowed false with code 500 and the reason;
#   4. signed with another key than the config's: refused naming the constraint;
#   5. a file:// module under verification: refused (only registry modules can be verified);
#   6. a keyless kind in the config: exit 1 before anything is fetched, kind and file named;
#   7. reload (SIGHUP) with an unsigned policy added: it is verified too, and refused.
. "$(dirname "$0")/lib.sh"
export PREWARM_TIERING=off
: "${COSIGN_TOOL:?COSIGN_TOOL not set (run through ctest)}"
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
. "$PREWARM_SOURCE_DIR/tests/lib/registry.sh"
REG=$T/registry
pw_registry_start "$REG" --tls --auth >/dev/null || { echo "SKIP: could not start docker-registry"; exit 77; }
trap 'pw_registry_stop "$REG" >/dev/null 2>&1 || true; cleanup' EXIT
H=$PW_REGISTRY_HOST
auth=(--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES")

W=$PREWARM_FIXTURES/host_wapc.wasm
variant "$W" "$T/other.wasm" unsigned
push() { # FILE NAME -> digest
	local out
	out=$("$PREWARM_BIN" push "$1" "registry://$H/policies/$2:v1" "${auth[@]}" 2>"$T/push.err") || fail "push $2: $(cat "$T/push.err")"
	echo "${out%% *}"
}
sign_attach() { # NAME DIGEST KEY
	"$COSIGN_TOOL" payload "$H/policies/$1" "$2" >"$T/$1.payload"
	openssl dgst -sha256 -sign "$T/$3.key" "$T/$1.payload" | base64 -w0 >"$T/$1.sig"
	"$COSIGN_TOOL" attach "registry://$H/policies/$1:v1" "$2" "$T/$1.payload:$T/$1.sig" "${auth[@]}" || fail "attach $1"
}
for k in signer stranger; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$k.key" 2>/dev/null &&
		openssl pkey -in "$T/$k.key" -pubout -out "$T/$k.pub" 2>/dev/null || { echo "SKIP: openssl cannot make EC keys"; exit 77; }
done
sign_attach signed "$(push "$W" signed)" signer
push "$T/other.wasm" unsigned >/dev/null
sign_attach stranger "$(push "$T/other.wasm" stranger)" stranger
{ echo "apiVersion: v1"; echo "allOf:"; echo "  - kind: pubKey"; echo "    owner: release"; echo "    key: |"
  sed 's/^/      /' "$T/signer.pub"; } >"$T/verification.yml"

# run_to_exit LOG ARGS...: a start that must fail, run in the foreground; sets EXIT_CODE
run_to_exit() {
	LOG=$1; shift
	set +e
	"$PREWARM_BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port 0 "$@" >"$LOG" 2>&1
	EXIT_CODE=$?
	set -e
}
pol() { printf '%s:\n  module: %s\n  settings: {greeting: %s}\n' "$1" "$2" "$1"; }
args=(--no-watch --no-cache --verification-path "$T/verification.yml" "${auth[@]}")

# 1. signed alone
pol signed "registry://$H/policies/signed:v1" >"$T/p1.yml"
start_server "$T/log1" --policies "$T/p1.yml" "${args[@]}"
wait_ready
grep -q "policies/signed:v1: signatures verified (sha256:" "$LOG" || fail "no verification line"
post /validate/signed "$(review u1 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=signed" || fail "signed policy answer: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
ok "a signed policy is verified, loads and answers"

# 2. signed + unsigned: the start fails
{ pol signed "registry://$H/policies/signed:v1"; pol unsigned "registry://$H/policies/unsigned:v1"; } >"$T/p2.yml"
run_to_exit "$T/log2" --policies "$T/p2.yml" "${args[@]}"
[ "$EXIT_CODE" = 1 ] || fail "start with an unsigned policy: exit $EXIT_CODE (want 1)"
grep -q 'policy "unsigned": signature verification: .*no signatures found for image: registry://'"$H"'/policies/unsigned:v1' "$LOG" ||
	fail "the refusal does not name the policy, the stage and the image"
ok "an unsigned policy stops the start (exit 1), naming policy, image and reason"

# 3. --continue-on-errors: the unsigned policy is broken, the signed one serves
start_server "$T/log3" --policies "$T/p2.yml" "${args[@]}" --continue-on-errors
wait_ready
post /validate/signed "$(review u2 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=signed" || fail "signed policy answer: $BODY_OUT"
post /validate/unsigned "$(review u3 settings)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "unsigned policy allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["code"]')" = 500 ] || fail "unsigned policy code: $BODY_OUT"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "no signatures found" || fail "unsigned policy reason: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
ok "--continue-on-errors: the unsigned policy answers 500 with the reason, the signed one serves"

# 4. signed by a key the config does not trust; 5. a file:// module
{ pol stranger "registry://$H/policies/stranger:v1"; } >"$T/p4.yml"
run_to_exit "$T/log4" --policies "$T/p4.yml" "${args[@]}"
[ "$EXIT_CODE" = 1 ] && grep -q 'policy "stranger": signature verification: .*missing signatures.*allOf\[0\] (pubKey sha256:[0-9a-f]*, owner release)' "$LOG" ||
	fail "wrong key: exit $EXIT_CODE"
ok "a policy signed by another key is refused, the constraint named"
pol local "file://$W" >"$T/p5.yml"
run_to_exit "$T/log5" --policies "$T/p5.yml" "${args[@]}"
[ "$EXIT_CODE" = 1 ] && grep -q 'policy "local": signature verification: .*only works with policies from OCI registries' "$LOG" ||
	fail "file:// under verification: exit $EXIT_CODE"
ok "a file:// module under verification is refused"

# 6. keyless kinds: refused at start, before any fetch
printf 'apiVersion: v1\nanyOf:\n  signatures:\n    - kind: genericIssuer\n      issuer: https://token.actions.githubusercontent.com\n      subject:\n        equal: x\n' >"$T/keyless.yml"
run_to_exit "$T/log6" --policies "$T/p1.yml" --verification-path "$T/keyless.yml" "${auth[@]}"
[ "$EXIT_CODE" = 1 ] || fail "keyless: exit $EXIT_CODE"
grep -q "keyless.yml: anyOf.signatures\[0\]: kind genericIssuer" "$LOG" && grep -q "not supported" "$LOG" || fail "keyless: reason"
grep -q "listening on" "$LOG" && fail "keyless: listened before refusing"
ok "a keyless kind is refused at start, kind and file named"

# 7. reload: a new unsigned policy is verified too (the old set keeps serving)
cp "$T/p1.yml" "$T/p7.yml"
start_server "$T/log7" --policies "$T/p7.yml" "${args[@]}"
wait_ready
pol unsigned "registry://$H/policies/unsigned:v1" >>"$T/p7.yml"
n=$(grep -c "signatures verified" "$LOG")
kill -HUP "$SRV_PID"
for i in $(seq 1 3000); do grep -q 'policy "unsigned": signature verification' "$LOG" && break; sleep 0.1; done
grep -q 'policy "unsigned": signature verification: .*no signatures found' "$LOG" || fail "reload: unsigned policy not refused"
[ "$(grep -c "signatures verified" "$LOG")" -gt "$n" ] || fail "reload: the signed policy was not verified again"
post /validate/signed "$(review u4 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=signed" || fail "after the refused reload: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
ok "reload: every policy verified again, an unsigned one refused, the old set keeps serving"
if grep -F -q "$PW_REGISTRY_PASSWORD" "$T"/log*; then fail "a log contains the registry password"; fi
echo "all verification serve tests passed"
