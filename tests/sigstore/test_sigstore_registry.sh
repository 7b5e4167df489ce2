#!/usr/bin/env bash
# cosign signature verification against a real registry (HTTPS + htpasswd, the CA from
# sources.yml, credentials from a docker config.json): a policy is pushed with `prewarm
# push`, keys are made and payloads signed with the openssl command, the signature
# manifest is attached under sha256-HEX.sig by cosign_tool (the project's OCI push code),
# and `prewarm pull --verification-path` is run for each case: good signature, wrong key,
# tampered payload, a payload for another digest, no signature tag, annotations,
# anyOf/minimumMatches, allOf + anyOf, and a keyless kind refused before any download.
# Then the oci/v1/verify and oci/v2/verify host capability handler (pw_cosign_host_verify,
# through cosign_tool hostcall) on the same images: Kubewarden's payloads and answer byte for
# byte, host errors, keyless request types, the 60 s answer cache; and the same calls made by
# the repo's C test policies (tests/fixtures/c/host_wapc.c, host_wasi.c, scenario hostcall)
# through waPC's __host_call and WASI's host.call under `prewarm eval`, with the
# hostCapabilities gate.
set -u
src=${PREWARM_SOURCE_DIR:?}
bin=${PREWARM_BIN:?}
tool=${COSIGN_TOOL:?}
fix=${PREWARM_FIXTURES:?}/oci_policy.wasm
. "$src/tests/lib/registry.sh"
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
tmp=$(mktemp -d)
cleanup() { pw_registry_stop "$tmp/reg"; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0 pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

pw_registry_start "$tmp/reg" --tls --auth || { echo "SKIP: no registry"; exit 77; }
H=$PW_REGISTRY_HOST
auth=(--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES")

for k in a b c; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$k.key" 2>/dev/null &&
		openssl pkey -in "$tmp/$k.key" -pubout -out "$tmp/$k.pub" 2>/dev/null || { echo "SKIP: openssl cannot make EC keys"; exit 77; }
done

# push NAME -> the manifest digest
push() {
	local out
	out=$("$bin" push "$fix" "registry://$H/sig/$1:v1" "${auth[@]}" 2>"$tmp/err") || { echo "push failed: $(cat "$tmp/err")" >&2; return 1; }
	echo "${out%% *}"
}
# sign KEY PAYLOAD_FILE -> PAYLOAD_FILE.sig (base64 DER ECDSA over the payload, SHA-256)
sign() { openssl dgst -sha256 -sign "$tmp/$1.key" "$2" | base64 -w0 >"$2.sig"; }
# payload NAME DIGEST OPTIONAL_JSON -> file name
payload() { "$tool" payload "$H/sig/$1" "$2" "${3:-null}" >"$tmp/$1.$4.json"; echo "$tmp/$1.$4.json"; }
attach() { local name=$1 dg=$2; shift 2; "$tool" attach "registry://$H/sig/$name:v1" "$dg" "$@" "${auth[@]}"; }
# config FILE: one pubKey entry per key, annotations optional: entry KEY [ANNOTATIONS_YAML]
entry() {
	printf '  - kind: pubKey\n    owner: %s\n    key: |\n' "$1"
	sed 's/^/      /' "$tmp/$1.pub"
	[ -n "${2:-}" ] && printf '    annotations:\n%s\n' "$2"
	return 0
}
# pull NAME CONFIG -> rc, output in $tmp/out + $tmp/err
pull() { rm -f "$tmp/p.wasm"; "$bin" pull "registry://$H/sig/$1:v1" -o "$tmp/p.wasm" --verification-path "$2" "${auth[@]}" >"$tmp/out" 2>"$tmp/err"; }

{ echo "apiVersion: v1"; echo "allOf:"; entry a; } >"$tmp/only-a.yml"
{ echo "apiVersion: v1"; echo "allOf:"; entry b; } >"$tmp/only-b.yml"

# good signature
dg=$(push good) || exit 1
p=$(payload good "$dg" null 1); sign a "$p"; attach good "$dg" "$p:$p.sig"
if pull good "$tmp/only-a.yml" && cmp -s "$fix" "$tmp/p.wasm" && grep -q "signatures verified, manifest $dg" "$tmp/out"; then
	ok "good signature: pulled, pinned to $dg"
else bad "good signature: $(cat "$tmp/out" "$tmp/err")"; fi
# the same image with another key's config
if ! pull good "$tmp/only-b.yml" && grep -q "Image verification failed: missing signatures" "$tmp/err" &&
	grep -q "allOf\[0\] (pubKey sha256:[0-9a-f]\{16\}, owner b)" "$tmp/err" && grep -q "sig/good" "$tmp/err" && [ ! -e "$tmp/p.wasm" ]; then
	ok "wrong key: refused, constraint named, nothing written"
else bad "wrong key: $(cat "$tmp/out" "$tmp/err")"; fi

# tampered payload: signed, then one byte changed before it is pushed
dg=$(push tampered) || exit 1
p=$(payload tampered "$dg" '{"env":"prod"}' 1); sign a "$p"; sed -i 's/prod/prud/' "$p"; attach tampered "$dg" "$p:$p.sig"
if ! pull tampered "$tmp/only-a.yml" && grep -q "missing signatures" "$tmp/err"; then ok "tampered payload: refused"
else bad "tampered payload: $(cat "$tmp/out" "$tmp/err")"; fi

# a well-signed payload for another digest (a signature copied from another image)
dg=$(push mismatch) || exit 1
p=$(payload mismatch "sha256:$(printf other | sha256sum | cut -d' ' -f1)" null 1); sign a "$p"; attach mismatch "$dg" "$p:$p.sig"
if ! pull mismatch "$tmp/only-a.yml" && grep -q "missing signatures" "$tmp/err" && grep -q "1 signature layer skipped" "$tmp/err"; then
	ok "payload for another digest: refused (layer skipped)"
else bad "digest mismatch: $(cat "$tmp/out" "$tmp/err")"; fi
"$bin" pull "registry://$H/sig/mismatch:v1" -o "$tmp/p.wasm" --verification-path "$tmp/only-a.yml" "${auth[@]}" --log-level debug >/dev/null 2>"$tmp/err"
grep -q "Simple signing image digest mismatch" "$tmp/err" && ok "debug log says why the layer was skipped" || bad "no reason logged: $(cat "$tmp/err")"

# no signature tag at all
dg=$(push unsigned) || exit 1
if ! pull unsigned "$tmp/only-a.yml" && grep -q "no signatures found for image" "$tmp/err" && grep -q "sha256-${dg#sha256:}.sig" "$tmp/err"; then
	ok "unsigned: no signatures found, tag named"
else bad "unsigned: $(cat "$tmp/out" "$tmp/err")"; fi

# annotations: signed with env=prod, build=42
dg=$(push annotated) || exit 1
p=$(payload annotated "$dg" '{"env":"prod","build":42}' 1); sign a "$p"; attach annotated "$dg" "$p:$p.sig"
{ echo "apiVersion: v1"; echo "allOf:"; entry a '      env: prod
      build: "42"'; } >"$tmp/ann-ok.yml"
{ echo "apiVersion: v1"; echo "allOf:"; entry a '      env: staging'; } >"$tmp/ann-bad.yml"
pull annotated "$tmp/ann-ok.yml" && ok "annotations present: verified" || bad "annotations ok: $(cat "$tmp/err")"
if ! pull annotated "$tmp/ann-bad.yml" && grep -q "annotations {env: staging}" "$tmp/err"; then ok "annotations mismatch: refused, named"
else bad "annotations mismatch: $(cat "$tmp/out" "$tmp/err")"; fi

# two signatures (a and b) on one image; anyOf over a, b, c
dg=$(push multi) || exit 1
p1=$(payload multi "$dg" null 1); sign a "$p1"
p2=$(payload multi "$dg" '{"signer":"b"}' 2); sign b "$p2"
attach multi "$dg" "$p1:$p1.sig" "$p2:$p2.sig"
anyof() { echo "apiVersion: v1"; echo "anyOf:"; echo "  minimumMatches: $1"; echo "  signatures:"; for k in a b c; do entry $k | sed 's/^/  /'; done; }
anyof 2 >"$tmp/any2.yml"; anyof 3 >"$tmp/any3.yml"
pull multi "$tmp/any2.yml" && ok "anyOf minimumMatches 2 of 3: verified" || bad "anyOf 2: $(cat "$tmp/err")"
if ! pull multi "$tmp/any3.yml" && grep -q "minimum number of signatures not reached: needed 3, got 2" "$tmp/err" &&
	grep -q "anyOf.signatures\[2\] (pubKey sha256:[0-9a-f]*, owner c)" "$tmp/err"; then ok "anyOf minimumMatches 3: refused, c named"
else bad "anyOf 3: $(cat "$tmp/out" "$tmp/err")"; fi
{ echo "apiVersion: v1"; echo "allOf:"; entry a; entry b; } >"$tmp/all-ab.yml"
{ echo "apiVersion: v1"; echo "allOf:"; entry a; entry c; } >"$tmp/all-ac.yml"
pull multi "$tmp/all-ab.yml" && ok "allOf a+b: verified" || bad "allOf a+b: $(cat "$tmp/err")"
if ! pull multi "$tmp/all-ac.yml" && grep -q "allOf\[1\] (pubKey" "$tmp/err" && ! grep -q "allOf\[0\]" "$tmp/err"; then
	ok "allOf a+c: refused naming allOf[1] only"
else bad "allOf a+c: $(cat "$tmp/out" "$tmp/err")"; fi
{ echo "apiVersion: v1"; echo "allOf:"; entry a; echo "anyOf:"; echo "  signatures:"; entry c | sed 's/^/  /'; } >"$tmp/mixed.yml"
if ! pull multi "$tmp/mixed.yml" && grep -q "needed 1, got 0" "$tmp/err"; then ok "allOf ok + anyOf unmet: refused"
else bad "allOf+anyOf: $(cat "$tmp/out" "$tmp/err")"; fi

# by digest: the digest given is the one verified
if "$bin" pull "registry://$H/sig/good@$(push good)" -o "$tmp/p.wasm" --verification-path "$tmp/only-a.yml" "${auth[@]}" >"$tmp/out" 2>"$tmp/err"; then
	ok "reference by digest: verified"
else bad "by digest: $(cat "$tmp/err")"; fi

# keyless kinds: refused before anything is fetched, naming the kind and the file
printf 'apiVersion: v1\nallOf:\n  - kind: githubAction\n    owner: kubewarden\n' >"$tmp/keyless.yml"
pull good "$tmp/keyless.yml"; rc=$?
if [ $rc = 1 ] && grep -q "keyless.yml: allOf\[0\]: kind githubAction" "$tmp/err" && grep -q "not supported" "$tmp/err"; then
	ok "keyless kind refused with the file and kind named"
else bad "keyless: rc=$rc $(cat "$tmp/err")"; fi
# not a registry module
"$bin" pull "file://$fix" -o "$tmp/p.wasm" --verification-path "$tmp/only-a.yml" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "only works with policies from OCI registries" "$tmp/err" && ok "file:// module cannot be verified" ||
	bad "file: rc=$rc $(cat "$tmp/err")"

# ---- the host capability handler ----
# req FILE V2? IMAGE KEYS... [-- ANNOTATIONS_JSON]: Kubewarden's request JSON
req() {
	python3 - "$@" <<'PY'
import json, sys
out, v2, image, rest = sys.argv[1], sys.argv[2] == "v2", sys.argv[3], sys.argv[4:]
ann = None
if "--" in rest:
    ann = json.loads(rest[rest.index("--") + 1]); rest = rest[:rest.index("--")]
keys = [open(k).read() for k in rest]
body = {"image": image, "pub_keys": keys, "annotations": ann}
open(out, "w").write(json.dumps(dict(type="SigstorePubKeyVerify", **body) if v2 else {"SigstorePubKeyVerify": body}))
PY
}
hc() { "$tool" hostcall "$1" "$2" "${auth[@]}" "${@:3}" >"$tmp/hc.out" 2>"$tmp/hc.err"; }
dg_good=$(push good)
req "$tmp/r1.json" v1 "$H/sig/good:v1" "$tmp/a.pub"
if hc v1/verify "$tmp/r1.json" && [ "$(cat "$tmp/hc.out")" = "{\"is_trusted\":true,\"digest\":\"$dg_good\"}" ]; then
	ok "oci/v1/verify: Kubewarden's answer byte for byte"
else bad "v1 good: $(cat "$tmp/hc.out" "$tmp/hc.err")"; fi
req "$tmp/r2.json" v2 "registry://$H/sig/annotated:v1" "$tmp/a.pub" -- '{"env":"prod","build":"42"}'
hc v2/verify "$tmp/r2.json" && grep -q '^{"is_trusted":true,"digest":"sha256:[0-9a-f]\{64\}"}$' "$tmp/hc.out" &&
	ok "oci/v2/verify with annotations: trusted" || bad "v2 annotations: $(cat "$tmp/hc.out" "$tmp/hc.err")"
req "$tmp/r3.json" v2 "$H/sig/annotated:v1" "$tmp/a.pub" -- '{"env":"staging"}'
hc v2/verify "$tmp/r3.json"; rc=$?
[ $rc = 1 ] && grep -q "^error: Image verification failed: missing signatures.*pub_keys\[0\].*annotations {env: staging}" "$tmp/hc.out" &&
	ok "oci/v2/verify annotations mismatch: host error naming the constraint" || bad "v2 annotations mismatch: $(cat "$tmp/hc.out")"
req "$tmp/r4.json" v2 "$H/sig/multi:v1" "$tmp/a.pub" "$tmp/b.pub"
hc v2/verify "$tmp/r4.json" && ok "oci/v2/verify: every key signed" || bad "v2 two keys: $(cat "$tmp/hc.out")"
req "$tmp/r5.json" v2 "$H/sig/multi:v1" "$tmp/a.pub" "$tmp/c.pub"
hc v2/verify "$tmp/r5.json"; rc=$?
[ $rc = 1 ] && grep -q "pub_keys\[1\] (pubKey" "$tmp/hc.out" && ! grep -q "pub_keys\[0\]" "$tmp/hc.out" &&
	ok "oci/v2/verify: a key that did not sign is named" || bad "v2 a+c: $(cat "$tmp/hc.out")"
req "$tmp/r6.json" v1 "$H/sig/unsigned:v1" "$tmp/a.pub"
hc v1/verify "$tmp/r6.json"; grep -q "^error: no signatures found for image: $H/sig/unsigned:v1" "$tmp/hc.out" &&
	ok "oci/v1/verify unsigned image: host error" || bad "v1 unsigned: $(cat "$tmp/hc.out")"
req "$tmp/r7.json" v2 "$H/sig/good:v1"
hc v2/verify "$tmp/r7.json"; grep -q "Must provide at least one pub key" "$tmp/hc.out" && ok "no keys: host error" || bad "no keys: $(cat "$tmp/hc.out")"
for t in SigstoreKeylessVerify SigstoreKeylessPrefixVerify SigstoreGithubActionsVerify SigstoreCertificateVerify; do
	printf '{"type":"%s","image":"%s/sig/good:v1","keyless":[],"annotations":null}' "$t" "$H" >"$tmp/k.json"
	hc v2/verify "$tmp/k.json"; grep -q "^error: oci/v2/verify: $t: keyless signature verification .*not supported" "$tmp/hc.out" ||
		bad "v2 $t: $(cat "$tmp/hc.out")"
done
printf '{"SigstoreKeylessVerify":{"image":"%s/sig/good:v1","keyless":[{"issuer":"i","subject":"s"}],"annotations":null}}' "$H" >"$tmp/k.json"
hc v1/verify "$tmp/k.json"; grep -q "SigstoreKeylessVerify: keyless signature verification .*not supported" "$tmp/hc.out" &&
	ok "keyless request types (v1 and the four of v2): host error \"not supported\"" || bad "v1 keyless: $(cat "$tmp/hc.out")"
printf '{"type":"SigstorePubKeyVerify"' >"$tmp/bad.json"
hc v2/verify "$tmp/bad.json"; grep -q "^error: oci/v2/verify: the request is not JSON" "$tmp/hc.out" && ok "bad JSON: host error" ||
	bad "bad json: $(cat "$tmp/hc.out")"
printf '{"SigstorePubKeyVerify":{"image":"x"},"other":{}}' >"$tmp/bad.json"
hc v1/verify "$tmp/bad.json"; grep -q "one key" "$tmp/hc.out" && ok "v1 with two variants: host error" || bad "v1 two keys: $(cat "$tmp/hc.out")"
hc v1/verify "$tmp/r1.json" --twice --debug
[ "$(grep -c is_trusted "$tmp/hc.out")" = 2 ] && grep -q "answered from the cache" "$tmp/hc.err" &&
	ok "a second identical call is answered from the cache" || bad "cache: $(cat "$tmp/hc.out" "$tmp/hc.err")"

# ---- from inside a policy: prewarm eval with the C test policies (waPC and WASI) ----
# pcall WASM OP PAYLOAD_FILE [CAPS...] -> "ok:<answer>" or "err:<host error>" in $tmp/pc.out
pcall() {
	local wasm=$1 op=$2 payload=$3; shift 3
	local caps=() c
	for c in "$@"; do caps+=(--host-capability "$c"); done
	python3 - "$op" "$payload" >"$tmp/pc.req" <<'PY'
import json, sys
op, payload = sys.argv[1], open(sys.argv[2], "rb").read()
obj = {"scenario": "hostcall", "hc_bd": "kubewarden", "hc_ns": "oci", "hc_op": op, "hc_payload": payload.hex()}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u1", "operation": "CREATE", "object": obj}}))
PY
	"$bin" eval "$fix_dir/$wasm" --request "$tmp/pc.req" "${caps[@]}" "${auth[@]}" >"$tmp/pc.json" 2>"$tmp/pc.err"
	python3 - "$tmp/pc.json" >"$tmp/pc.out" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["response"]["status"]["message"]
kind, _, hexed = m.partition(":")
print(kind + ":" + bytes.fromhex(hexed).decode())
PY
}
fix_dir=$(dirname "$fix")
printf '{"type":"SigstoreKeylessVerify","image":"%s/sig/good:v1","keyless":[{"issuer":"i","subject":"s"}],"annotations":null}' "$H" >"$tmp/k2.json"
for abi in host_wapc host_wasi; do
	pcall $abi.wasm v1/verify "$tmp/r1.json"
	[ "$(cat "$tmp/pc.out")" = "ok:{\"is_trusted\":true,\"digest\":\"$dg_good\"}" ] &&
		ok "$abi: oci/v1/verify from the policy: answer byte for byte" || bad "$abi v1: $(cat "$tmp/pc.out" "$tmp/pc.err")"
	pcall $abi.wasm v2/verify "$tmp/r2.json" "oci/v2/verify"
	grep -q '^ok:{"is_trusted":true,"digest":"sha256:' "$tmp/pc.out" && ok "$abi: oci/v2/verify granted exactly: trusted" ||
		bad "$abi v2: $(cat "$tmp/pc.out" "$tmp/pc.err")"
	pcall $abi.wasm v2/verify "$tmp/r5.json" "oci/*"
	grep -q '^err:Callback evaluation failure: Image verification failed: missing signatures.*pub_keys\[1\]' "$tmp/pc.out" &&
		ok "$abi: a key that did not sign: host error" || bad "$abi v2 a+c: $(cat "$tmp/pc.out" "$tmp/pc.err")"
	pcall $abi.wasm v2/verify "$tmp/k2.json" "oci/v2/verify"
	grep -q '^err:Callback evaluation failure: .*keyless signature verification .*not supported' "$tmp/pc.out" &&
		ok "$abi: keyless: host error not supported" || bad "$abi keyless: $(cat "$tmp/pc.out" "$tmp/pc.err")"
	pcall $abi.wasm v2/verify "$tmp/bad.json" "oci/v2/verify"
	grep -q '^err:' "$tmp/pc.out" && ! grep -q "Callback evaluation failure" "$tmp/pc.out" &&
		ok "$abi: a payload that does not decode: serde-style error, no callback prefix" || bad "$abi bad payload: $(cat "$tmp/pc.out")"
	pcall $abi.wasm v1/verify "$tmp/r1.json" "oci/v2/verify" "net/*"
	grep -q "^err:Policy has not been granted access to the 'oci/v1/verify' host capability" "$tmp/pc.out" &&
		ok "$abi: oci/v1/verify not granted: denied by the gate" || bad "$abi gate: $(cat "$tmp/pc.out")"
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
