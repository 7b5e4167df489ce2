#!/bin/bash
# `prewarm eval --allow-context-aware FILE` through the real binary: the repo's host test
# policy (waPC and WASI) makes kubernetes host calls answered from a file of objects;
# --context-aware-resource grants kinds (the test policy has no metadata to take them from);
# a kind not granted gets Kubewarden's refusal; context-aware Rego policies (OPA and
# Gatekeeper) read the file's objects as their data; a bad file or bad flags exit 1 / 2.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-eval-k8s.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
C="--cache-dir $T/cache"

cat > "$T/cluster.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: web-1, namespace: default, labels: {app: web}}
- apiVersion: v1
  kind: Secret
  metadata: {name: token, namespace: default}
---
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {team: blue}}
YAML

# call OP PAYLOAD > request file: the host test policy's "hostcall" scenario
call() {
	python3 - "$1" "$2" <<'PY'
import json, sys
op, payload = sys.argv[1], sys.argv[2]
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u1", "operation": "CREATE",
                              "object": {"scenario": "hostcall", "hc_bd": "kubewarden", "hc_ns": "kubernetes",
                                         "hc_op": op, "hc_payload": payload.encode().hex()}}}))
PY
}
# answer FILE: what the guest got back ("ok:..." / "err:..." decoded)
answer() {
	python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["response"]["status"]["message"]
tag, _, h = m.partition(":")
print(tag + ":" + bytes.fromhex(h).decode())
PY
}

call list_resources_by_namespace '{"api_version":"v1","kind":"Pod","namespace":"default","label_selector":"app=web","field_selector":null,"field_masks":null}' > "$T/list.json"
call get_resource '{"api_version":"v1","kind":"Namespace","name":"default","namespace":null,"disable_cache":false}' > "$T/get.json"
call list_resources_all '{"api_version":"v1","kind":"Secret","label_selector":null,"field_selector":null,"field_masks":null}' > "$T/secret.json"

for m in "$FIX/host_wapc.wasm" "$FIX/host_wasi.wasm"; do
	n=$(basename "$m" .wasm)
	"$BIN" eval "$m" --request "$T/list.json" $C --allow-context-aware "$T/cluster.yaml" \
		--context-aware-resource v1/Pod --context-aware-resource v1/Namespace > "$T/$n-list.out" 2> "$T/$n-list.err" ||
		bad "$n list: exit $?: $(head -c 400 "$T/$n-list.err")"
	A=$(answer "$T/$n-list.out")
	grep -q '^ok:{"apiVersion":"v1","kind":"PodList","metadata":{},"items":\[{"apiVersion":"v1","kind":"Pod"' <<<"$A" ||
		bad "$n list answer: $A"
	grep -q '"name":"web-1"' <<<"$A" || bad "$n list lacks web-1: $A"
	"$BIN" eval "$m" --request "$T/get.json" $C --allow-context-aware "$T/cluster.yaml" \
		--context-aware-resource v1/Namespace > "$T/$n-get.out" 2> "$T/$n-get.err" || bad "$n get: exit $?"
	A=$(answer "$T/$n-get.out")
	grep -q '^ok:.*"team":"blue"' <<<"$A" || bad "$n get answer: $A"
	"$BIN" eval "$m" --request "$T/secret.json" $C --allow-context-aware "$T/cluster.yaml" \
		--context-aware-resource v1/Pod > "$T/$n-secret.out" 2> "$T/$n-secret.err" || bad "$n secret: exit $?"
	A=$(answer "$T/$n-secret.out")
	[ "$A" = "err:Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported." ] ||
		bad "$n secret answer: $A"
	# the hostCapabilities gate still applies
	"$BIN" eval "$m" --request "$T/list.json" $C --allow-context-aware "$T/cluster.yaml" --host-capability 'net/*' \
		--context-aware-resource v1/Pod > "$T/$n-gate.out" 2>/dev/null || bad "$n gate: exit $?"
	A=$(answer "$T/$n-gate.out")
	grep -q "^err:Policy has not been granted access to the 'kubernetes/list_resources_by_namespace' host capability" <<<"$A" ||
		bad "$n gate answer: $A"
done

# Rego policies (generated fixtures, contextAwareResources v1/Namespace in their metadata, as
# kwctl grants them): OPA reads data.kubernetes.namespaces.default, Gatekeeper
# data.inventory.cluster.v1.Namespace.default; both reject a Pod of a namespace without a
# team label and allow it once the namespace has one (cluster.yaml labels it team: blue).
cat > "$T/noteam.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: default, creationTimestamp: "2026-11-01T08:00:00Z", labels: {kubernetes.io/metadata.name: default}}
YAML
cat > "$T/pod.json" <<'JSON'
{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u2", "operation": "CREATE",
 "namespace": "default", "kind": {"group": "", "version": "v1", "kind": "Pod"},
 "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}}}}
JSON
verdict() {
	python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["response"]
print(r["allowed"], (r.get("status") or {}).get("message"))
PY
}
for m in opa_context opa_gatekeeper_context; do
	[ $m = opa_context ] && where=data.kubernetes.namespaces || where=data.inventory
	"$BIN" eval "$FIX/$m.wasm" --request "$T/pod.json" $C --allow-context-aware "$T/noteam.yaml" > "$T/$m-no.out" 2> "$T/$m-no.err" ||
		bad "$m noteam: exit $?: $(head -c 400 "$T/$m-no.err")"
	V=$(verdict "$T/$m-no.out")
	[ "$V" = "False namespace default has no team label ($where)" ] || bad "$m noteam verdict: $V"
	"$BIN" eval "$FIX/$m.wasm" --request "$T/pod.json" $C --allow-context-aware "$T/cluster.yaml" > "$T/$m-yes.out" 2> "$T/$m-yes.err" ||
		bad "$m team: exit $?"
	V=$(verdict "$T/$m-yes.out")
	[ "$V" = "True None" ] || bad "$m team verdict: $V"
done

# bad input: the file is named, exit 1; bad flags exit 2
printf 'kind: Pod\n' > "$T/bad.yaml"
"$BIN" eval "$FIX/host_wapc.wasm" --request "$T/list.json" $C --allow-context-aware "$T/bad.yaml" > /dev/null 2> "$T/bad.err"
rc=$?
[ $rc = 1 ] || bad "bad file: exit $rc"
grep -q 'bad.yaml: object 1 has no apiVersion and kind' "$T/bad.err" || bad "bad file message: $(cat "$T/bad.err")"
"$BIN" eval "$FIX/host_wapc.wasm" --request "$T/list.json" $C --allow-context-aware "$T/nope.yaml" > /dev/null 2> "$T/nope.err"
rc=$?
[ $rc = 1 ] || bad "missing file: exit $rc"
grep -q 'nope.yaml' "$T/nope.err" || bad "missing file message: $(cat "$T/nope.err")"
"$BIN" eval "$FIX/host_wapc.wasm" --request "$T/list.json" --context-aware-resource Pod > /dev/null 2> "$T/flag.err"
rc=$?
[ $rc = 2 ] || bad "--context-aware-resource Pod: exit $rc"
exit $fail
