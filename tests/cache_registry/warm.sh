#!/usr/bin/env bash
# `prewarm cache warm policies.yml` against a real HTTPS + htpasswd registry (CA and
# credentials given the way a cluster mounts them): fetches the policies (one from the
# registry, one file://, one duplicate), compiles and pushes what no tier holds; a second
# run and a run with an empty local dir find both in the registry; a warm local dir with an
# EMPTY registry pushes its entries (nothing compiled); a wrong password or an unreachable
# registry makes the Job fail visibly (exit 1, naming the registry). push/pull --help.
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
	grep -q "0 already in the registry, 0 pushed from the local directory, 2 compiled and pushed, 0 failed" "$tmp/out1" &&
	grep -q "from-file: compiled in .*, pushed to the registry" "$tmp/out1" &&
	ok "first warm: 2 modules compiled and pushed" || bad "first warm: rc=$rc $(cat "$tmp/out1" "$tmp/err1")"
warm --cache-dir "$tmp/c1" "${copts[@]}" >"$tmp/out2" 2>"$tmp/err2"
[ $? = 0 ] && grep -q "2 already in the registry, 0 pushed from the local directory, 0 compiled and pushed, 0 failed" "$tmp/out2" &&
	grep -q "from-registry: already in the registry" "$tmp/out2" &&
	ok "second warm: both already in the registry" || bad "second warm: $(cat "$tmp/out2" "$tmp/err2")"
warm --cache-dir "$tmp/c2" "${copts[@]}" >"$tmp/out3" 2>"$tmp/err3"
[ $? = 0 ] && grep -q "2 already in the registry, 0 pushed from the local directory, 0 compiled" "$tmp/out3" &&
	ok "a fresh local dir: both already in the registry" || bad "fresh warm: $(cat "$tmp/out3" "$tmp/err3")"
# wrong password: the Job fails visibly, the modules are still compiled locally
mkdir -p "$tmp/wrong"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$H" "$(printf '%s:nope' "$PW_REGISTRY_USER" | base64 -w0)" >"$tmp/wrong/config.json"
warm --cache-dir "$tmp/c4" --cache-registry "$H/prewarm-cache" --cache-registry-credentials "$tmp/wrong/config.json" \
	--cache-registry-ca "$PW_REGISTRY_CA" >"$tmp/out5" 2>"$tmp/err5"
rc=$?
[ $rc = 1 ] && grep -q -F "the registry $H/prewarm-cache FAILED" "$tmp/out5" && grep -q "401" "$tmp/err5" && ! grep -q -F "$PW_REGISTRY_PASSWORD" "$tmp/out5" "$tmp/err5" &&
	ok "wrong registry password: exit 1 with a 401 warning" || bad "wrong password: rc=$rc $(cat "$tmp/out5" "$tmp/err5")"
# a warm local dir and an EMPTY registry (another repository): the local entries are pushed,
# nothing is compiled, and the registry then lists them (--policies FILE form)
warm --cache-dir "$tmp/c1" --cache-registry "$H/empty-cache" --cache-registry-credentials "$PW_REGISTRY_DOCKER_CONFIG" \
	--cache-registry-ca "$PW_REGISTRY_CA" >"$tmp/out9" 2>"$tmp/err9"
rc=$?
[ $rc = 0 ] && grep -q "0 already in the registry, 2 pushed from the local directory, 0 compiled and pushed, 0 failed" "$tmp/out9" &&
	grep -q "from-file: pushed from the local directory to the registry" "$tmp/out9" &&
	ok "warm local dir + empty registry: 2 pushed from the local directory" || bad "local -> empty registry: rc=$rc $(cat "$tmp/out9" "$tmp/err9")"
"$bin" cache ls --registry --cache-registry "$H/empty-cache" --cache-registry-credentials "$PW_REGISTRY_DOCKER_CONFIG" \
	--cache-registry-ca "$PW_REGISTRY_CA" >"$tmp/ls9" 2>&1
[ $? = 0 ] && grep -q "^2 entries" "$tmp/ls9" && ok "cache ls --registry: the pushed 2 entries" || bad "ls after push: $(cat "$tmp/ls9")"
"$bin" cache warm --policies "$tmp/policies.yml" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
	--sources-path "$PW_REGISTRY_SOURCES" --cache-dir "$tmp/c9" --cache-registry "$H/empty-cache" \
	--cache-registry-credentials "$PW_REGISTRY_DOCKER_CONFIG" --cache-registry-ca "$PW_REGISTRY_CA" >"$tmp/out10" 2>"$tmp/err10"
[ $? = 0 ] && grep -q "2 already in the registry" "$tmp/out10" &&
	ok "--policies FILE; the once-empty registry now holds both" || bad "--policies: $(cat "$tmp/out10" "$tmp/err10")"
# an unreachable registry (a closed port): exit 1 naming it, nothing compiled
dead=127.0.0.1:$(_pw_reg_free_port)/prewarm-cache
warm --cache-dir "$tmp/c1" --cache-registry "$dead" >"$tmp/out11" 2>"$tmp/err11"
rc=$?
[ $rc = 1 ] && grep -q -F "registry $dead" "$tmp/err11" && grep -q -F "the registry $dead FAILED" "$tmp/out11" &&
	ok "unreachable registry: exit 1 naming it" || bad "unreachable registry: rc=$rc $(cat "$tmp/out11" "$tmp/err11")"
for sub in push pull; do
	"$bin" cache $sub --help >"$tmp/help" 2>&1
	[ $? = 0 ] && grep -q "usage: prewarm cache $sub KEY-or-MODULE" "$tmp/help" && ok "cache $sub --help" ||
		bad "cache $sub --help: $(cat "$tmp/help")"
done
"$bin" cache warm --help >"$tmp/help" 2>&1
[ $? = 0 ] && grep -q -- "--policies POLICIES.yml" "$tmp/help" && ok "cache warm --help" || bad "warm --help: $(cat "$tmp/help")"
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
