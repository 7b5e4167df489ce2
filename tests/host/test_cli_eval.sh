#!/bin/bash
# `prewarm eval` through the real binary: verdicts and exit codes (0 whatever the verdict),
# the JSON Patch of a mutation, cache reuse on the second run, settings inline / JSON file /
# YAML file and invalid settings (exit 1), --raw, --audit, --mode monitor, --message, a
# timed-out endless loop answering 500, an artifact from `prewarm compile`, usage errors
# (exit 2), a policy pulled from a real registry (tests/lib/registry.sh), and Rego modules
# (-e opa|gatekeeper, the raw mode's result sets, aborts, unknown entrypoints).
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
SRC=${PREWARM_SOURCE_DIR:?PREWARM_SOURCE_DIR not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-eval-cli.XXXXXX")
REG=""
cleanup() {
	[ -n "$REG" ] && bash "$SRC/tests/lib/registry.sh" stop "$REG" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
WAPC=$FIX/host_wapc.wasm
WASI=$FIX/host_wasi.wasm
C="--cache-dir $T/cache"

review() {  # review SCENARIO > file
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-%s","operation":"CREATE","object":{"scenario":"%s","metadata":{"labels":{"keep":"1"}},"spec":[1,2,3]}}}\n' "$1" "$1"
}
for s in accept reject mutate loop settings; do review $s > "$T/$s.json"; done

# run NAME EXPECTED-EXIT ARGS...: stdout in $T/NAME.out, stderr in $T/NAME.err
run() {
	local name=$1 want=$2; shift 2
	"$BIN" eval "$@" > "$T/$name.out" 2> "$T/$name.err"
	local rc=$?
	[ "$rc" = "$want" ] || bad "$name: exit $rc, expected $want: $(head -c 600 "$T/$name.err")"
}
has() { grep -q -- "$2" "$T/$1.out" || bad "$1: output lacks '$2': $(head -c 800 "$T/$1.out")"; }
err_has() { grep -q -- "$2" "$T/$1.err" || bad "$1: stderr lacks '$2': $(head -c 600 "$T/$1.err")"; }

for abi in WAPC WASI; do
	m=${!abi}
	run "$abi-accept" 0 "$m" --request "$T/accept.json" $C
	has "$abi-accept" '"allowed": true'
	has "$abi-accept" '"uid": "uid-accept"'
	has "$abi-accept" '"kind": "AdmissionReview"'
	run "$abi-reject" 0 "$m" --request "$T/reject.json" $C
	has "$abi-reject" '"allowed": false'
	has "$abi-reject" '"code": 403'
	has "$abi-reject" '"message": "rejected by the host test policy"'
	run "$abi-mutate" 0 "$m" --request "$T/mutate.json" --allowed-to-mutate $C
	patch=$(sed -n 's/.*"patch": "\(.*\)".*/\1/p' "$T/$abi-mutate.out" | base64 -d 2>/dev/null)
	[ "$patch" = '[{"op":"add","path":"/metadata/labels/a~1b~0c","value":"x"},{"op":"replace","path":"/spec/1","value":3},{"op":"remove","path":"/spec/2"}]' ] ||
		bad "$abi-mutate: patch is '$patch'"
	run "$abi-mutate-denied" 0 "$m" --request "$T/mutate.json" $C
	has "$abi-mutate-denied" 'attempted to mutate the request'
	run "$abi-loop" 0 "$m" --request "$T/loop.json" --timeout 1 $C
	has "$abi-loop" '"code": 500'
	has "$abi-loop" 'timed out'
	run "$abi-monitor" 0 "$m" --request "$T/reject.json" --mode monitor $C
	has "$abi-monitor" '"allowed": true'
	run "$abi-audit" 0 "$m" --request "$T/reject.json" --mode monitor --audit $C
	has "$abi-audit" '"allowed": false'
	run "$abi-message" 0 "$m" --request "$T/reject.json" --message "ask the admins" $C
	has "$abi-message" '"message": "ask the admins"'
	has "$abi-message" '"causes"'
	run "$abi-settings-inline" 0 "$m" --request "$T/settings.json" --settings '{"greeting":"hi"}' $C
	has "$abi-settings-inline" 'greeting=hi'
	run "$abi-settings-invalid" 1 "$m" --request "$T/accept.json" --settings '{"invalid":true}' $C
	err_has "$abi-settings-invalid" 'settings are not valid: settings say invalid'
done

# the second eval of a module loads it from the cache
run cached 0 "$WAPC" --request "$T/accept.json" $C --log-level info
err_has cached 'artifact from local'

# settings files: JSON and YAML
printf '{"greeting": "json-file"}\n' > "$T/s.json"
printf 'greeting: yaml-file\n' > "$T/s.yml"
run settings-json 0 "$WAPC" --request "$T/settings.json" --settings "$T/s.json" $C
has settings-json 'greeting=json-file'
run settings-yaml 0 "$WAPC" --request "$T/settings.json" --settings "$T/s.yml" $C
has settings-yaml 'greeting=yaml-file'

# validate_raw
printf '{"request":{"uid":"r-1","scenario":"reject"}}\n' > "$T/raw.json"
run raw 0 "$WAPC" --request "$T/raw.json" --raw $C
has raw '"response"'
has raw '"uid": "r-1"'
grep -q '"kind"' "$T/raw.out" && bad "raw: answer has a kind"

# request from stdin
"$BIN" eval "$WAPC" --request - $C < "$T/accept.json" > "$T/stdin.out" 2> "$T/stdin.err" || bad "stdin: exit $?"
has stdin '"allowed": true'

# an artifact made by prewarm compile
if "$BIN" compile "$WAPC" -o "$T/wapc.so" -q 2> "$T/compile.err"; then
	run artifact 0 "$T/wapc.so" --request "$T/reject.json"
	has artifact '"code": 403'
else
	bad "prewarm compile failed: $(cat "$T/compile.err")"
fi

# Rego modules (the generated OPA-ABI fixture): -e, the raw mode, aborts
OPA=$FIX/opa_policy.wasm
printf '{"request":{"uid":"r-1","object":{"spec":{"privileged":true}}}}\n' > "$T/rego-in.json"
printf '{"limit": 3}\n' > "$T/rego-data.json"
run rego-raw 0 -e opa "$OPA" --entrypoint echo --input "$T/rego-in.json" --data "$T/rego-data.json" $C
[ "$(cat "$T/rego-raw.out")" = '[{"result":{"input":{"request":{"uid":"r-1","object":{"spec":{"privileged":true}}}},"data":{"limit":3}}}]' ] ||
	bad "rego-raw: $(cat "$T/rego-raw.out")"
run rego-undefined 0 -e opa "$OPA" --entrypoint echo $C
[ "$(cat "$T/rego-undefined.out")" = '[]' ] || bad "rego-undefined: $(cat "$T/rego-undefined.out")"
run rego-main 0 -e opa "$OPA" --entrypoint policy/main --input "$T/rego-in.json" $C
has rego-main '"allowed":false'
run rego-abort 1 -e opa "$OPA" --entrypoint boom --input "$T/rego-in.json" $C
err_has rego-abort 'opa_abort: policy.rego:7: eval_conflict_error: complete rules must not produce multiple outputs'
[ -s "$T/rego-abort.out" ] && bad "rego-abort printed a result: $(cat "$T/rego-abort.out")"
run rego-noep 1 -e opa "$OPA" --entrypoint nope --input "$T/rego-in.json" $C
err_has rego-noep "no entrypoint 'nope'"
run rego-review 0 -e opa "$OPA" --request "$T/accept.json" $C
has rego-review '"uid": "uid-accept"'
has rego-review '"allowed": true'
run rego-gk 0 -e gatekeeper "$OPA" --request "$T/accept.json" $C
run rego-nomode 1 "$OPA" --request "$T/accept.json" $C
err_has rego-nomode 'set executionMode opa or gatekeeper'
run rego-wapc-as-opa 1 -e opa "$WAPC" --request "$T/accept.json" $C
err_has rego-wapc-as-opa 'not built from Rego'
run rego-badjson 1 -e opa "$OPA" --entrypoint echo --input "$T/accept.json.missing" $C
printf '{not json' > "$T/bad.json"
run rego-badinput 1 -e opa "$OPA" --entrypoint echo --input "$T/bad.json" $C
err_has rego-badinput '--input'
run usage-e 2 -e rego "$OPA" --entrypoint echo
run usage-e-request 2 -e opa "$OPA" --entrypoint echo --request "$T/accept.json"

# failures: exit 1 with a message; usage: exit 2
run notwasm 1 /etc/hostname --request "$T/accept.json" --no-cache
err_has notwasm 'neither a WebAssembly module nor a Prewarm artifact'
printf '{nope' > "$T/badreq.json"
run badreq 1 "$WAPC" --request "$T/badreq.json" $C
err_has badreq 'not JSON'
run missing-request 1 "$WAPC" --request "$T/none.json" $C
run missing-policy 1 "$T/nope.wasm" --request "$T/accept.json" $C
err_has missing-policy 'nope.wasm: No such file'

run bad-settings 1 "$WAPC" --request "$T/accept.json" --settings '{"a":' $C
err_has bad-settings '--settings'
run usage 2
run usage-mode 2 "$WAPC" --request "$T/accept.json" --mode strict
run usage-opt 2 "$WAPC" --request "$T/accept.json" --frobnicate
run nofile 1 registry://127.0.0.1:1/nothing/here:v1 --request "$T/accept.json" $C

# a policy from a real registry over HTTPS + basic auth (skips when docker-registry cannot be started)
REG="$T/reg"
if bash "$SRC/tests/lib/registry.sh" start "$REG" --tls --auth > "$T/reg.log" 2>&1; then
	. "$REG/env"
	auth=(--sources-path "$PW_REGISTRY_SOURCES" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG")
	if "$BIN" push "$WAPC" "registry://$PW_REGISTRY_HOST/host/wapc:v1" "${auth[@]}" \
		> "$T/push.out" 2> "$T/push.err"; then
		run registry 0 "registry://$PW_REGISTRY_HOST/host/wapc:v1" --request "$T/reject.json" "${auth[@]}" $C
		has registry '"code": 403'
		run registry-noauth 1 "registry://$PW_REGISTRY_HOST/host/wapc:v1" --request "$T/reject.json" \
			--sources-path "$PW_REGISTRY_SOURCES" $C
	else
		bad "prewarm push failed: $(cat "$T/push.err")"
	fi
else
	echo "note: no registry ($(tail -1 "$T/reg.log")): registry eval not tested"
	REG=""
fi

[ $fail = 0 ] && echo "test_cli_eval: ok"
exit $fail
