#!/usr/bin/env bash
# Single flight across pods that share only the registry (claim manifests, docs/cache.md):
# real `prewarm compile` processes, each with its own empty local directory, against the
# real registry (tests/lib/registry.sh), and gcc behind a gate (tests/server/gate-cc.sh) so
# the test decides when the compile may finish; every wait is a bounded poll for a state.
#   1. 6 concurrent compiles of one cold module: the claim race has one winner, one compile,
#      5 waited and hit the registry tier; the claim is then released or left to expire
#   2. the claim holder killed with SIGKILL: a waiter takes over and compiles
#   3. a stale claim of a dead owner on another host: taken over at once; a claim from a
#      clock an hour ahead that is never renewed: taken over after its ttl
set -euo pipefail
src=${PREWARM_SOURCE_DIR:?}
pw=${PREWARM_BIN:?}
. "$src/tests/lib/registry.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-claims.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
. "$src/tests/lib/single_flight.sh"
cleanup() {
	sf_cleanup
	pw_registry_stop "$work/reg"
	rm -rf "$work"
}
trap cleanup EXIT
pw_registry_start "$work/reg" >/dev/null || { echo "SKIP: no registry"; exit 77; }
REPO=$PW_REGISTRY_HOST/prewarm-cache
# Registry claims are exact when every claimer's read-then-write takes less than the settle
# time (docs/cache.md); on a loaded test machine six processes starting at once can take
# over a second for it, so the test gives them 4 s.
SETTLE=4

pod() { # NAME MODULE ARGS...: one pod: its own empty local dir, the shared registry
	local name=$1 mod=$2 run=
	shift 2
	[ "$BASHPID" != $$ ] && run=exec   # in the background: $! is then the pod's pid
	$run "$pw" compile "$mod" --cache-dir "$work/local-$name" --cache-registry "$REPO" --cache-registry-insecure \
		--cache-claim-ttl $TTL --cache-peer-wait $WAIT --cache-claim-settle $SETTLE "$@" >"$work/$name.out" 2>"$work/$name.err"
}
claim_tag() { # MODULE: the claim tag of its optimized key
	local wasm_sha
	wasm_sha=$(sha256sum "$1" | cut -c1-64)
	curl -s "$PW_REGISTRY_URL/v2/prewarm-cache/tags/list" | python3 -c '
import json, sys
print(" ".join(t for t in json.load(sys.stdin).get("tags") or [] if t.startswith("pw1c-") and t.endswith(sys.argv[1])))' "$wasm_sha"
}
claim_json() { # TAG: the claim JSON in its manifest
	curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PW_REGISTRY_URL/v2/prewarm-cache/manifests/$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["annotations"]["io.prewarm.claim"])'
}
plant_claim() { # TAG JSON: publishes a claim manifest as another pod would (skopeo-free: curl)
	local body
	body=$(python3 -c '
import json, sys
print(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.prewarm.claim.v1",
  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
  "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}],
  "annotations": {"io.prewarm.claim": sys.argv[1]}}))' "$2")
	curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$body" \
		"$PW_REGISTRY_URL/v2/prewarm-cache/manifests/$1" >/dev/null || fail "planting claim $1"
}

# 1. six pods at once, one cold module
make_module "$work/m1.wasm" 1
gate_reset
for i in 0 1 2 3 4 5; do pod "c1.$i" "$work/m1.wasm" & bgpids+=($!); done
sf_one_compile "$work/c1" registry 6
ok "6 pods sharing a registry, one cold module: 1 compiled, 5 waited and hit the registry"

# 2. the claim holder killed with SIGKILL
make_module "$work/m2.wasm" 2
gate_reset
pod c2.h "$work/m2.wasm" & holder=$!; bgpids+=($holder)
wait_until 60 "the holder's compile" at_least "$gate.pids" 1
tag=$(claim_tag "$work/m2.wasm")
[ -n "$tag" ] || fail "case 2: no claim tag in the registry"
grep -q "\"pid\":$holder," <<<"$(claim_json "$tag")" || fail "case 2: the claim does not name the holder: $(claim_json "$tag")"
pod c2.a "$work/m2.wasm" & bgpids+=($!)
pod c2.b "$work/m2.wasm" & bgpids+=($!)
sf_kill_holder "$holder" "$work/c2" registry
ok "claim holder killed with SIGKILL: one pod took over and compiled, the other hit its entry"

# 3. planted claims of a pod elsewhere: the tag of an optimized key is pw1c-<engine[0:32]>-<wasm>
eng=${tag:5:32}
now=$(date +%s)
foreign() { # DEADLINE
	printf '{"format":1,"nonce":"0123456789abcdef0123456789abcdef","host":"elsewhere","pid":1,"boot_id":"other-boot","pidns":4026531836,"seq":1,"ttl":%s,"deadline":%s,"state":"building"}' "$PLANT_TTL" "$1"
}
gate_reset; touch "$gate"
make_module "$work/m3.wasm" 3
plant_claim "pw1c-$eng-$(sha256sum "$work/m3.wasm" | cut -c1-64)" "$(foreign $((now - 3600)))"
pod c3 "$work/m3.wasm" || fail "case 3: $(cat "$work/c3.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*past its deadline' "$work/c3.err" || fail "case 3: $(cat "$work/c3.err")"
grep -q '^compiled' "$work/c3.out" || fail "case 3: $(cat "$work/c3.out")"
make_module "$work/m4.wasm" 4
plant_claim "pw1c-$eng-$(sha256sum "$work/m4.wasm" | cut -c1-64)" "$(foreign $((now + 3600)))"
pod c4 "$work/m4.wasm" || fail "case 4: $(cat "$work/c4.err")"
grep -q 'taking over the claim of elsewhere pid 1 .*not renewed within its ttl' "$work/c4.err" || fail "case 4: $(cat "$work/c4.err")"
ok "registry claims of a dead pod elsewhere: past deadline taken at once; from a clock ahead, after the ttl"
