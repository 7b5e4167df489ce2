#!/usr/bin/env bash
# `prewarm pull` / `prewarm push` against real registries, and interop with an independent
# client (skopeo): a module pushed by prewarm is read by `skopeo inspect --raw` with the
# Kubewarden media types, and a module pushed by skopeo (copied from an OCI layout written
# here) is pulled by prewarm. Also the CLI's errors: 401, 404, a bad reference, and that no
# credential ever shows up in the output, even at trace level.
set -u
src=${PREWARM_SOURCE_DIR:?}
bin=${PREWARM_BIN:?}
fix=${PREWARM_FIXTURES:?}/oci_policy.wasm
. "$src/tests/lib/registry.sh"
command -v skopeo >/dev/null || { echo "SKIP: skopeo not installed"; exit 77; }
tmp=$(mktemp -d)
cleanup() { pw_registry_stop "$tmp/plain"; pw_registry_stop "$tmp/tls"; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0 pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

pw_registry_start "$tmp/plain" || { echo "SKIP: no registry"; exit 77; }
PLAIN_HOST=$PW_REGISTRY_HOST PLAIN_SOURCES=$PW_REGISTRY_SOURCES
pw_registry_start "$tmp/tls" --tls --auth || { echo "SKIP: no registry"; exit 77; }
TLS_HOST=$PW_REGISTRY_HOST

# push over HTTPS + basic auth, credentials from config.json, CA from sources.yml
out=$("$bin" push "$fix" "registry://$TLS_HOST/cli/policy:v1" --annotation io.prewarm.test=yes \
	--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES" 2>"$tmp/err")
rc=$?
digest=${out%% *}
[ $rc = 0 ] && [[ $digest == sha256:* ]] && ok "push over TLS+auth ($digest)" || bad "push: rc=$rc $out $(cat "$tmp/err")"

# skopeo reads it: media types as Kubewarden's
raw=$(skopeo inspect --raw --cert-dir "$PW_REGISTRY_CERT_DIR" --creds "$PW_REGISTRY_USER:$PW_REGISTRY_PASSWORD" \
	"docker://$TLS_HOST/cli/policy:v1" 2>&1)
echo "$raw" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
assert m["config"]["mediaType"] == "application/vnd.wasm.config.v1+json", m
assert [l["mediaType"] for l in m["layers"]] == ["application/vnd.wasm.content.layer.v1+wasm"], m
assert m["annotations"]["io.prewarm.test"] == "yes", m
assert m["annotations"]["org.opencontainers.image.title"] == "oci_policy.wasm", m
' && ok "skopeo inspect --raw shows the wasm media types and annotations" || bad "skopeo inspect: $raw"
[ "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" = "$digest" ] && ok "manifest digest matches skopeo's bytes" || bad "digest differs from skopeo's manifest"

# pull it back, by tag and by digest
"$bin" pull "$TLS_HOST/cli/policy:v1" -o "$tmp/a.wasm" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" >"$tmp/out" 2>"$tmp/err" && cmp -s "$fix" "$tmp/a.wasm" &&
	ok "pull by tag: same bytes" || bad "pull by tag: $(cat "$tmp/out" "$tmp/err")"
"$bin" pull "registry://$TLS_HOST/cli/policy@$digest" -o "$tmp/b.wasm" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" >"$tmp/out" 2>"$tmp/err" && cmp -s "$fix" "$tmp/b.wasm" &&
	ok "pull by digest: same bytes" || bad "pull by digest: $(cat "$tmp/out" "$tmp/err")"

# a wrong password: a clear 401, exit 1, no secret printed (even at trace level)
mkdir -p "$tmp/wrong"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$TLS_HOST" "$(printf '%s:%s' "$PW_REGISTRY_USER" "WrongSecret123" | base64 -w0)" >"$tmp/wrong/config.json"
"$bin" pull "$TLS_HOST/cli/policy:v1" -o "$tmp/c.wasm" --docker-config-json-path "$tmp/wrong" \
	--sources-path "$PW_REGISTRY_SOURCES" --log-level trace >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -q "401" "$tmp/err" && grep -q "refused" "$tmp/err" && grep -q "$TLS_HOST" "$tmp/err" && [ ! -e "$tmp/c.wasm" ]; then
	ok "wrong password: exit 1, 401 naming the registry"
else
	bad "wrong password: rc=$rc $(cat "$tmp/err")"
fi
if grep -q -e WrongSecret123 -e "$(printf '%s:%s' "$PW_REGISTRY_USER" WrongSecret123 | base64 -w0)" "$tmp/out" "$tmp/err"; then
	bad "the password appeared in the output"
else
	ok "no credential in the output"
fi
"$bin" pull "$TLS_HOST/cli/policy:v1" -o "$tmp/d.wasm" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" --log-level trace >"$tmp/out" 2>"$tmp/err"
grep -q -F "$PW_REGISTRY_PASSWORD" "$tmp/out" "$tmp/err" && bad "the real password appeared at trace level" || ok "no real credential at trace level"

# unknown tag: 404 naming the reference
"$bin" pull "$PLAIN_HOST/cli/none:nope" -o "$tmp/e.wasm" --sources-path "$PLAIN_SOURCES" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && grep -q "cli/none:nope" "$tmp/err" && grep -q 404 "$tmp/err" && ok "unknown tag: 404 naming it" || bad "404: rc=$rc $(cat "$tmp/err")"
# a bad reference
"$bin" pull "registry://$PLAIN_HOST/Bad/Name" -o "$tmp/f.wasm" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && grep -q "invalid policy reference" "$tmp/err" && ok "bad reference rejected" || bad "bad ref: rc=$rc $(cat "$tmp/err")"
# usage errors
"$bin" pull >/dev/null 2>&1; [ $? = 2 ] && ok "pull without REF: exit 2" || bad "pull without REF"
"$bin" push "$tmp/nonexistent.wasm" "$PLAIN_HOST/x/y:1" --sources-path "$PLAIN_SOURCES" >/dev/null 2>"$tmp/err"
[ $? = 1 ] && grep -q nonexistent "$tmp/err" && ok "push of a missing file: exit 1 naming it" || bad "push missing: $(cat "$tmp/err")"

# skopeo pushes a module from an OCI layout written here; prewarm pulls it
lay=$tmp/layout
mkdir -p "$lay/blobs/sha256"
cfg='{}'
printf '%s' "$cfg" >"$tmp/cfg"
cfg_d=$(sha256sum "$tmp/cfg" | cut -d' ' -f1)
cp "$tmp/cfg" "$lay/blobs/sha256/$cfg_d"
wasm_d=$(sha256sum "$fix" | cut -d' ' -f1)
cp "$fix" "$lay/blobs/sha256/$wasm_d"
man=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v1+json","digest":"sha256:%s","size":2},"layers":[{"mediaType":"application/vnd.wasm.content.layer.v1+wasm","digest":"sha256:%s","size":%d}]}' \
	"$cfg_d" "$wasm_d" "$(stat -c %s "$fix")")
printf '%s' "$man" >"$tmp/man"
man_d=$(sha256sum "$tmp/man" | cut -d' ' -f1)
cp "$tmp/man" "$lay/blobs/sha256/$man_d"
printf '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v2"}}]}' \
	"$man_d" "$(stat -c %s "$tmp/man")" >"$lay/index.json"
if skopeo copy --preserve-digests --dest-tls-verify=false "oci:$lay:v2" "docker://$PLAIN_HOST/skopeo/policy:v2" >"$tmp/out" 2>&1; then
	ok "skopeo copy from an OCI layout"
	"$bin" pull "registry://$PLAIN_HOST/skopeo/policy:v2" -o "$tmp/g.wasm" --sources-path "$PLAIN_SOURCES" >"$tmp/out" 2>"$tmp/err" &&
		cmp -s "$fix" "$tmp/g.wasm" && grep -q "sha256:$wasm_d" "$tmp/out" &&
		ok "prewarm pulls what skopeo pushed" || bad "pull of skopeo's push: $(cat "$tmp/out" "$tmp/err")"
else
	bad "skopeo copy: $(cat "$tmp/out")"
fi

# file:// and re-pull (already present)
"$bin" pull "file://$fix" -o "$tmp/h.wasm" >/dev/null 2>&1 && cmp -s "$fix" "$tmp/h.wasm" && ok "file:// pull" || bad "file:// pull"
"$bin" pull "registry://$PLAIN_HOST/skopeo/policy:v2" -o "$tmp/g.wasm" --sources-path "$PLAIN_SOURCES" 2>/dev/null | grep -q "already present" &&
	ok "re-pull keeps the present file" || bad "re-pull downloaded again"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
