#!/usr/bin/env bash
# End-to-end test of `prewarm serve` with a real registry (Debian's CNCF distribution over
# HTTPS with htpasswd, tests/lib/registry.sh): the policy module itself comes from the registry
# (registry:// in policies.yml, credentials from --docker-config-json-path, CA from
# --sources-path) and the registry is also the shared cache tier.
#   1. cold: the module is pulled, compiled once (a second policy with the same bytes by
#      file:// shares it) and published to the registry tier;
#   2. a new pod (empty local cache directory): the artifact comes from the registry
#      ("registry hit" in the log, zero compiles in the counters), and the policies answer.
. "$(dirname "$0")/lib.sh"
# These tests count the optimized compiles of a cold start; tiering (quick code first, the
# optimized compile in the background) has its own test, serve_tiering.sh.
export PREWARM_TIERING=off
. "$PREWARM_SOURCE_DIR/tests/lib/registry.sh"
REG=$T/registry
pw_registry_start "$REG" --tls --auth >/dev/null || { echo "SKIP: could not start docker-registry"; exit 77; }
trap 'pw_registry_stop "$REG" >/dev/null 2>&1 || true; cleanup' EXIT

W=$PREWARM_FIXTURES/host_wapc.wasm
"$PREWARM_BIN" push "$W" "registry://$PW_REGISTRY_HOST/policies/host-wapc:v1" \
	--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES" >"$T/push.out" 2>&1 \
	|| fail "prewarm push: $(cat "$T/push.out")"
{
	echo "from-registry:"
	echo "  module: registry://$PW_REGISTRY_HOST/policies/host-wapc:v1"
	echo "  settings: {greeting: registry}"
	echo "same-bytes-by-file:"
	echo "  module: file://$W"
} >"$T/policies.yml"
args=(--policies "$T/policies.yml" --no-watch
      --sources-path "$PW_REGISTRY_SOURCES" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG"
      --cache-registry "$PW_REGISTRY_HOST/prewarm/artifacts"
      --cache-registry-credentials "$PW_REGISTRY_DOCKER_CONFIG/config.json" --cache-registry-ca "$PW_REGISTRY_CA")

start_server "$T/log1" "${args[@]}" --cache-dir "$T/cache1"
wait_ready
[ "$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")" = 1 ] || fail "cold: expected 1 compile (two URLs, one digest), got $(metric_value "prewarm_compiles_total{tier=\"optimized\"}")"
grep -q 'policy:from-registry.*compiled in' "$LOG" || fail "cold: no compile line for from-registry"
grep -q 'policy:same-bytes-by-file.*shared with policy from-registry' "$LOG" || fail "same bytes by another URL were not shared"
post /validate/from-registry "$(review g1 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=registry" || fail "registry policy answer: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE"
ok "cold start from a registry module: 1 compile for 2 policies sharing the bytes"

start_server "$T/log2" "${args[@]}" --cache-dir "$T/cache2-empty"
wait_ready
[ "$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")" = 0 ] || fail "new pod compiled: $(metric_value "prewarm_compiles_total{tier=\"optimized\"}")"
[ "$(metric_value 'prewarm_cache_hits_total{tier="registry"}')" = 1 ] || fail "no registry hit: $(metrics | grep '^prewarm_cache_')"
grep -q 'policy:from-registry.*registry hit' "$LOG" || fail "log lacks the registry hit"
post /validate/same-bytes-by-file "$(review g2 reject)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "answer after a registry hit: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE"
ok "new pod with an empty local cache: registry hit, zero compiles"
if grep -F -q "$PW_REGISTRY_PASSWORD" "$T/log1" "$T/log2"; then fail "a log contains the registry password"; fi
echo "all registry serve tests passed"
