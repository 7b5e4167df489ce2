#!/usr/bin/env bash
# `prewarm cache warm policies.yml` against a real HTTPS + htpasswd registry (CA and
# credentials given the way a cluster mounts them): fetches the policies (one from the
# registry, one file://, one duplicate), compiles and publishes what no tier holds; a second
# run compiles nothing; a fresh replica (empty local dir) then gets the module from the
# registry without compiling. A wrong password makes the Job fail visibly (exit 1).
set -u
src=${PREWARM_SOURCE_DIR:?}
bin=${PREWARM_BIN:?}
fix=${PREWARM_FIXTURES:?}/oci_policy.wasm
. "$src/tests/lib/registry.sh"
tmp=$(mktemp -d)
cleanup() { pw_registry_stop "$tmp/r"; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0 pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
pw_registry_start "$tmp/r" --tls --auth || { echo "SKIP: no registry"; exit 77; }
H=$PW_REGISTRY_HOST

cp "$fix" "$tmp/local.wasm"
printf '\x00\x06\x05local' >>"$tmp/local.wasm"
"$bin" push "$fix" "$H/policies/answer:v1" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" >/dev/null || bad "push of the policy"
cat >"$tmp/policies.yml" <<YML
from-registry:
  module: registry://$H/policies/answer:v1
same-module-again:
  module: registry://$H/policies/answer:v1
  policyMode: monitor
from-file:
  module: file://$tmp/local.wasm
YML
copts=(--cache-registry "$H/prewarm-cache" --cache-registry-credentials "$PW_REGISTRY_DOCKER_CONFIG"
	--cache-registry-ca "$PW_REGISTRY_CA")
warm() { "$bin" cache warm "$tmp/policies.yml" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" "$@"; }

warm --cache-dir "$tmp/c1" "${copts[@]}" >"$tmp/out1" 2>"$tmp/err1"
rc=$?
cat "$tmp/out1"
[ $rc = 0 ] && grep -q "from-registry: fetched" "$tmp/out1" && grep -q "from-file: fetched" "$tmp/out1" &&
	grep -q "2 compiled and published, 0 already cached, 0 failed" "$tmp/out1" &&
	ok "first warm: 2 modules compiled and published" || bad "first warm: rc=$rc $(cat "$tmp/out1" "$tmp/err1")"
warm --cache-dir "$tmp/c1" "${copts[@]}" >"$tmp/out2" 2>"$tmp/err2"
[ $? = 0 ] && grep -q "0 compiled and published, 2 already cached" "$tmp/out2" && grep -q "already in the local tier" "$tmp/out2" &&
	ok "second warm: nothing compiled" || bad "second warm: $(cat "$tmp/out2" "$tmp/err2")"
warm --cache-dir "$tmp/c2" "${copts[@]}" >"$tmp/out3" 2>"$tmp/err3"
[ $? = 0 ] && grep -q "0 compiled and published, 2 already cached" "$tmp/out3" && grep -q "already in the registry tier" "$tmp/out3" &&
	ok "a fresh local dir: both from the registry" || bad "fresh warm: $(cat "$tmp/out3" "$tmp/err3")"
# wrong password: the Job fails visibly, the modules are still compiled locally
mkdir -p "$tmp/wrong"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$H" "$(printf '%s:nope' "$PW_REGISTRY_USER" | base64 -w0)" >"$tmp/wrong/config.json"
warm --cache-dir "$tmp/c4" --cache-registry "$H/prewarm-cache" --cache-registry-credentials "$tmp/wrong/config.json" \
	--cache-registry-ca "$PW_REGISTRY_CA" >"$tmp/out5" 2>"$tmp/err5"
rc=$?
[ $rc = 1 ] && grep -q "registry tier FAILED" "$tmp/out5" && grep -q "401" "$tmp/err5" && ! grep -q -F "$PW_REGISTRY_PASSWORD" "$tmp/out5" "$tmp/err5" &&
	ok "wrong registry password: exit 1 with a 401 warning" || bad "wrong password: rc=$rc $(cat "$tmp/out5" "$tmp/err5")"
# cache push / pull / ls --registry (through cache_registry_cli: the same functions that
# `prewarm cache push|pull|ls --registry` run)
cli=${PREWARM_BUILD_DIR:-}/cache_registry_cli
if [ -x "$cli" ]; then
	"$cli" ls --registry "${copts[@]}" >"$tmp/ls" 2>&1
	[ $? = 0 ] && grep -q "^2 entries" "$tmp/ls" && ok "ls --registry: 2 entries" || bad "ls --registry: $(cat "$tmp/ls")"
	cp "$fix" "$tmp/pp.wasm"
	printf '\x00\x03\x02pp' >>"$tmp/pp.wasm"
	printf 'pp:\n  module: file://%s\n' "$tmp/pp.wasm" >"$tmp/pp.yml"
	"$cli" warm "$tmp/pp.yml" --cache-dir "$tmp/c6" >/dev/null 2>&1 || bad "local-only warm"
	"$cli" push "$tmp/pp.wasm" --cache-dir "$tmp/c6" "${copts[@]}" >"$tmp/push" 2>&1
	[ $? = 0 ] && grep -q "^pushed " "$tmp/push" && ok "cache push MODULE: local entry -> registry" || bad "cache push: $(cat "$tmp/push")"
	key=$(awk '/^pushed/ {print $2}' "$tmp/push")
	"$cli" pull "$key" --cache-dir "$tmp/c7" "${copts[@]}" >"$tmp/pull" 2>&1
	[ $? = 0 ] && grep -q "^pulled $key" "$tmp/pull" && ls "$tmp"/c7/v1/*/"$key".pwa >/dev/null 2>&1 &&
		ok "cache pull KEY: registry entry -> local" || bad "cache pull: $(cat "$tmp/pull")"
	"$cli" pull "$tmp/local.wasm" --cache-dir "$tmp/c8" --cache-registry "$H/prewarm-cache" >"$tmp/pull2" 2>&1
	[ $? = 1 ] && ok "cache pull without credentials/CA fails with exit 1" || bad "pull without creds: $(cat "$tmp/pull2")"
	"$cli" ls --cache-dir "$tmp/c8" >/dev/null 2>&1; [ $? = 2 ] && ok "ls without --cache-registry: usage error" || bad "ls usage"
fi
"$bin" cache warm "$tmp/nonexistent.yml" --cache-dir "$tmp/c5" >/dev/null 2>"$tmp/err6"
[ $? = 1 ] && grep -q nonexistent.yml "$tmp/err6" && ok "missing policies.yml: exit 1 naming it" || bad "missing file: $(cat "$tmp/err6")"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
