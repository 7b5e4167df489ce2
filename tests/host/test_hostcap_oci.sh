#!/bin/bash
# The oci host capabilities (oci/v1/manifest_digest, oci_manifest, oci_manifest_config)
# through `prewarm eval --host-capability` against a real registry (tests/lib/registry.sh:
# HTTPS with a throwaway CA given by sources.yml, htpasswd credentials from a docker
# config.json), for both ABIs (the repo's host test policy, scenario "hostcall", makes the
# call through __host_call or host.call). Images: an OCI layout written by
# hostcap/oci_layout.py (an image and a two-platform index) pushed with skopeo; the answers
# are compared byte for byte with what Kubewarden's oci-client serialisation gives. Also:
# the gate (no --host-capability for oci: Kubewarden's denial), a missing image, missing
# credentials, a bad reference, a payload of the wrong type.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
SRC=${PREWARM_SOURCE_DIR:?PREWARM_SOURCE_DIR not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-hostcap-oci.XXXXXX")
REG=$T/reg
cleanup() {
	bash "$SRC/tests/lib/registry.sh" stop "$REG" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }

command -v skopeo >/dev/null || { echo "SKIP: skopeo is not installed (scripts/install-deps.sh)"; exit 77; }
if ! bash "$SRC/tests/lib/registry.sh" start "$REG" --tls --auth >/dev/null; then
	echo "SKIP: docker-registry could not be started (tests/lib/registry.sh)"; exit 77
fi
. "$REG/env"

case $(uname -m) in
	x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;;
esac
python3 "$SRC/tests/host/hostcap/oci_layout.py" "$T/img" "$ARCH" || { echo "FAIL: oci_layout.py"; exit 1; }
E=$T/img/expect
for tag in image multi; do
	skopeo copy --all --preserve-digests --dest-cert-dir "$PW_REGISTRY_CERT_DIR" \
		--dest-creds "$PW_REGISTRY_USER:$PW_REGISTRY_PASSWORD" \
		"oci:$T/img/layout:$tag" "docker://$PW_REGISTRY_HOST/hostcap/$tag:1" >"$T/skopeo.log" 2>&1 ||
		{ echo "FAIL: skopeo copy $tag: $(tail -3 "$T/skopeo.log")"; exit 1; }
done
IMG=$PW_REGISTRY_HOST/hostcap/image:1
MULTI=$PW_REGISTRY_HOST/hostcap/multi:1
REGOPTS=(--sources-path "$PW_REGISTRY_SOURCES" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG"
         --cache-dir "$T/cache")

# call NAME WASM OP PAYLOAD [eval options...]: the host's answer in $T/NAME.answer, "ok" or
# "err" in $T/NAME.kind
call() {
	local name=$1 wasm=$2 op=$3 payload=$4; shift 4
	local hex
	hex=$(printf '%s' "$payload" | xxd -p | tr -d '\n')
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","object":{"scenario":"hostcall","hc_bd":"kubewarden","hc_ns":"oci","hc_op":"%s","hc_payload":"%s"}}}' \
		"$op" "$hex" >"$T/$name.req"
	"$BIN" eval "$wasm" --request "$T/$name.req" "$@" >"$T/$name.out" 2>"$T/$name.err"
	local rc=$? msg
	[ "$rc" = 0 ] || { bad "$name: prewarm eval exited $rc: $(head -c 600 "$T/$name.err")"; return; }
	msg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["response"]["status"]["message"])' "$T/$name.out")
	printf '%s' "${msg%%:*}" >"$T/$name.kind"
	printf '%s' "${msg#*:}" | xxd -r -p >"$T/$name.answer"
}
# expect NAME ok|err FILE-OR-TEXT [contains]
expect() {
	local name=$1 kind=$2 want=$3 mode=${4:-exact} got
	got=$(cat "$T/$name.answer" 2>/dev/null)
	[ -f "$want" ] && want=$(cat "$want")
	if [ "$(cat "$T/$name.kind" 2>/dev/null)" != "$kind" ]; then
		bad "$name: $(cat "$T/$name.kind" 2>/dev/null) '$got', expected $kind '$want'"
	elif [ "$mode" = contains ] && [[ "$got" != *"$want"* ]]; then
		bad "$name: '$got' does not contain '$want'"
	elif [ "$mode" = exact ] && [ "$got" != "$want" ]; then
		bad "$name: got '$got', expected '$want'"
	elif [ "$kind" = err ]; then
		ok "$name: ${got:0:200}"
	else
		ok "$name"
	fi
}

for abi in wapc wasi; do
	W=$FIX/host_$abi.wasm
	call "$abi-digest" "$W" v1/manifest_digest "\"$IMG\"" --host-capability 'oci/*' "${REGOPTS[@]}"
	expect "$abi-digest" ok "{\"digest\":\"$(cat "$E/image.digest")\"}"
	call "$abi-digest-index" "$W" v1/manifest_digest "\"$MULTI\"" --host-capability oci/v1/manifest_digest "${REGOPTS[@]}"
	expect "$abi-digest-index" ok "{\"digest\":\"$(cat "$E/multi.digest")\"}"
	call "$abi-digest-by-digest" "$W" v1/manifest_digest "\"$PW_REGISTRY_HOST/hostcap/image@$(cat "$E/image.digest")\"" "${REGOPTS[@]}"
	expect "$abi-digest-by-digest" ok "{\"digest\":\"$(cat "$E/image.digest")\"}"
	call "$abi-manifest" "$W" v1/oci_manifest "\"$IMG\"" --host-capability 'oci/v1/*' "${REGOPTS[@]}"
	expect "$abi-manifest" ok "$E/image.manifest"
	call "$abi-manifest-index" "$W" v1/oci_manifest "\"$MULTI\"" --host-capability '*' "${REGOPTS[@]}"
	expect "$abi-manifest-index" ok "$E/multi.manifest"
	call "$abi-config" "$W" v1/oci_manifest_config "\"$IMG\"" --host-capability oci/v1/oci_manifest_config "${REGOPTS[@]}"
	expect "$abi-config" ok "$E/image.config"
	call "$abi-config-index" "$W" v1/oci_manifest_config "\"$MULTI\"" "${REGOPTS[@]}"
	expect "$abi-config-index" ok "$E/multi.config"

	# the gate: oci not granted
	call "$abi-denied" "$W" v1/manifest_digest "\"$IMG\"" --host-capability net/v1/dns_lookup_host "${REGOPTS[@]}"
	expect "$abi-denied" err "Policy has not been granted access to the 'oci/v1/manifest_digest' host capability. The violation has been reported."
	# failures are host errors naming what is wrong
	call "$abi-missing" "$W" v1/oci_manifest "\"$PW_REGISTRY_HOST/hostcap/nosuch:1\"" "${REGOPTS[@]}"
	expect "$abi-missing" err "Callback evaluation failure: " contains
	grep -q "hostcap/nosuch" "$T/$abi-missing.answer" || bad "$abi-missing: the error does not name the image: $(cat "$T/$abi-missing.answer")"
	call "$abi-nocreds" "$W" v1/manifest_digest "\"$IMG\"" --sources-path "$PW_REGISTRY_SOURCES" --cache-dir "$T/cache"
	expect "$abi-nocreds" err "Callback evaluation failure: " contains
	grep -q -i "auth\|401\|credentials" "$T/$abi-nocreds.answer" || bad "$abi-nocreds: not an auth error: $(cat "$T/$abi-nocreds.answer")"
	call "$abi-notls" "$W" v1/manifest_digest "\"$IMG\"" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --cache-dir "$T/cache"
	expect "$abi-notls" err "Callback evaluation failure: " contains
	call "$abi-badref" "$W" v1/manifest_digest '"Not A Reference"' "${REGOPTS[@]}"
	expect "$abi-badref" err "Callback evaluation failure: " contains
	call "$abi-https-ref" "$W" v1/manifest_digest '"https://example.com/x.wasm"' "${REGOPTS[@]}"
	expect "$abi-https-ref" err "not an image reference in a registry" contains
	call "$abi-notstring" "$W" v1/oci_manifest_config '["x"]' "${REGOPTS[@]}"
	expect "$abi-notstring" err "invalid type: sequence, expected a string"
done

# --host-capability takes policies.yml's patterns, and refuses the others
"$BIN" eval "$FIX/host_wapc.wasm" --request "$T/wapc-digest.req" --host-capability 'oci*' >"$T/pat.out" 2>"$T/pat.err"
rc=$?
[ "$rc" = 2 ] && grep -q "whole last segment" "$T/pat.err" && ok "--host-capability 'oci*' refused" ||
	bad "--host-capability 'oci*': exit $rc: $(cat "$T/pat.err")"
"$BIN" eval "$FIX/host_wapc.wasm" --request "$T/wapc-digest.req" --host-capability oci/v1 >"$T/pat.out" 2>"$T/pat.err"
rc=$?
[ "$rc" = 2 ] && grep -q 'use "oci/v1/\*"' "$T/pat.err" && ok "--host-capability oci/v1 refused" ||
	bad "--host-capability oci/v1: exit $rc: $(cat "$T/pat.err")"
exit $fail
