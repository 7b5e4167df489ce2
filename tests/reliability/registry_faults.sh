#!/usr/bin/env bash
# Registry faults under `prewarm serve --cache-registry` (the real server, a real
# docker-registry from tests/lib/registry.sh, and tests/reliability/fault_proxy.py for a hung
# or erroring one). Each start below begins with an empty local directory, must become ready
# (falling back to compiling), answer right, log a warning, and count the fault in /metrics:
#   down (nothing listens)          prewarm_cache_errors_total{tier="registry"}
#   slow (accepts, never answers)   the same, after the client's timeout
#   401 (no credentials)            the same
#   5xx (503 to everything)         the same
#   tampered layer (a byte flipped in the registry's storage)   prewarm_cache_rejected_total{tier="registry"}
#   tampered annotations (the manifest re-put naming another engine)   the same
#   bad signature (published with one HMAC key, read with another)      the same
#   full disk under the local tier (a 64 KiB tmpfs; needs root and mount, else skipped):
#                                   a warning, and the start serves from a registry hit
# Takes about a minute (the slow case waits for the client's timeout).
if [ "$(id -u)" = 0 ] && [ -z "${PW_RELIAB_NS:-}" ] && command -v unshare > /dev/null &&
   unshare -m --propagation private true 2> /dev/null; then
	PW_RELIAB_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$PREWARM_SOURCE_DIR/tests/server/lib.sh"
. "$PREWARM_SOURCE_DIR/tests/lib/registry.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
command -v tcc >/dev/null || { echo "SKIP: tcc not installed (the quick tier)"; exit 77; }
W=$PREWARM_FIXTURES/host_wapc.wasm
# the optimized compiler behind a closed gate: tier-ups wait and are canceled at SIGTERM,
# so only the quick tier's entries matter here
export PREWARM_GATE=$T/gate-closed PREWARM_CC="$PREWARM_SOURCE_DIR/tests/server/gate-cc.sh"
export PREWARM_NO_PROBE_CACHE=1
PROXIES=()
pw_registry_start "$T/reg" >/dev/null || { echo "SKIP: could not start docker-registry"; exit 77; }
trap 'for p in "${PROXIES[@]}"; do kill "$p" 2>/dev/null || true; done; pw_registry_stop "$T/reg"; cleanup' EXIT
REPO=$PW_REGISTRY_HOST/prewarm/faults

proxy() { # MODE -> sets PROXY_PORT
	rm -f "$T/proxy.port"
	python3 "$PREWARM_SOURCE_DIR/tests/reliability/fault_proxy.py" "$1" "$T/proxy.port" &
	PROXIES+=($!)
	local i
	for i in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
	PROXY_PORT=$(cat "$T/proxy.port")
}

# start_case NAME MODULE ARGS...: an empty local dir, the server ready and answering
n=0
start_case() {
	local name=$1 module=$2; shift 2
	n=$((n + 1))
	printf 'pol:\n  module: file://%s\n  allowedToMutate: true\n' "$module" >"$T/policies.yml"
	local t0; t0=$(date +%s%N)
	start_server "$T/$n.log" --policies "$T/policies.yml" --no-watch "$@"
	wait_ready
	READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
	post /validate/pol "$(review u1 accept)"
	[ "$CODE" = 200 ] && grep -q <<<"$BODY_OUT" '"allowed":true' || fail "$name: answered $CODE $BODY_OUT"
}
stop_case() {
	kill -TERM "$SRV_PID"; wait_exit
	[ "$EXIT_CODE" = 0 ] || fail "$1: exit $EXIT_CODE"
}
# expect_count NAME METRIC: the metric of the registry tier is >= 1, and a warning was logged
expect_count() {
	local v; v=$(metric_value "$2{tier=\"registry\"}")
	[ -n "$v" ] && [ "$v" -ge 1 ] || fail "$1: $2{tier=\"registry\"} is '${v}'"
	grep -q 'WARN' "$LOG" || fail "$1: no warning logged"
	ok "$1: ready in $READY_MS ms, answered, $2{tier=\"registry\"} = $v"
}

# ---- the registry unreachable or failing ---------------------------------------------------
port=$(_pw_reg_free_port)
start_case down "$W" --cache-dir "$T/l-down" --cache-registry "127.0.0.1:$port/x" --cache-registry-insecure
expect_count "registry down" prewarm_cache_errors_total
stop_case down

proxy stall
start_case slow "$W" --cache-dir "$T/l-slow" --cache-registry "127.0.0.1:$PROXY_PORT/x" --cache-registry-insecure
expect_count "registry hung (accepts, never answers)" prewarm_cache_errors_total
stop_case slow

proxy status:401
start_case 401 "$W" --cache-dir "$T/l-401" --cache-registry "127.0.0.1:$PROXY_PORT/x" --cache-registry-insecure
expect_count "registry 401" prewarm_cache_errors_total
stop_case 401

proxy status:503
start_case 5xx "$W" --cache-dir "$T/l-5xx" --cache-registry "127.0.0.1:$PROXY_PORT/x" --cache-registry-insecure
expect_count "registry 503" prewarm_cache_errors_total
stop_case 5xx

# ---- entries the registry serves but must not be trusted -----------------------------------
REG=(--cache-registry "$REPO" --cache-registry-insecure)
# publish MODULE [ARGS]: compile on the quick tier into a throwaway local dir and the registry
publish() {
	local m=$1; shift
	"$PREWARM_BIN" compile "$m" --tier quick --cache-dir "$T/pub-$RANDOM" "${REG[@]}" "$@" >"$T/pub.out" 2>&1 ||
		fail "publishing $m: $(cat "$T/pub.out")"
}
# tag MODULE: the registry tag of the module's quick entry
tag() {
	local e; e=$("$PREWARM_BIN" engine --tier quick --hash)
	echo "pw1-${e:0:32}-$(sha256sum "$1" | cut -d' ' -f1)"
}

# a good entry first: a fresh start takes it from the registry without compiling
variant "$W" "$T/good.wasm" good
publish "$T/good.wasm"
start_case "registry hit" "$T/good.wasm" --cache-dir "$T/l-good" "${REG[@]}"
[ "$(metric_value 'prewarm_cache_hits_total{tier="registry"}')" -ge 1 ] || fail "no registry hit for a published entry"
[ "$(metric_value 'prewarm_compiles_total{tier="quick"}')" = 0 ] || fail "compiled though the registry held the entry"
stop_case "registry hit"
ok "a good entry: registry hit, no compile"

# tampered layer: flip a byte of the layer blob in the registry's storage
variant "$W" "$T/layer.wasm" layer
publish "$T/layer.wasm"
t=$(tag "$T/layer.wasm")
man=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PW_REGISTRY_URL/v2/prewarm/faults/manifests/$t") ||
	fail "no manifest for tag $t"
layer=$(json_get "$man" 'd["layers"][0]["digest"]')
blob=$PW_REGISTRY_STORAGE/blobs/sha256/${layer:7:2}/${layer:7}/data
[ -f "$blob" ] || fail "layer blob $blob not found"
python3 - "$blob" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(b)
PY
start_case "tampered layer" "$T/layer.wasm" --cache-dir "$T/l-layer" "${REG[@]}"
expect_count "tampered layer" prewarm_cache_rejected_total
stop_case "tampered layer"

# tampered annotations: the manifest put again with the engine hash of another engine
variant "$W" "$T/ann.wasm" annotations
publish "$T/ann.wasm"
t=$(tag "$T/ann.wasm")
python3 - "$PW_REGISTRY_URL/v2/prewarm/faults/manifests/$t" <<'PY' || fail "editing the manifest"
import json, sys, urllib.request
url = sys.argv[1]
mt = "application/vnd.oci.image.manifest.v1+json"
m = json.load(urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": mt})))
m["annotations"]["io.prewarm.engine.hash"] = "0" * 64
req = urllib.request.Request(url, data=json.dumps(m).encode(), method="PUT", headers={"Content-Type": mt})
urllib.request.urlopen(req)
PY
start_case "tampered annotations" "$T/ann.wasm" --cache-dir "$T/l-ann" "${REG[@]}"
expect_count "tampered annotations" prewarm_cache_rejected_total
stop_case "tampered annotations"

# bad signature: published signed with one key, read with another
printf 'the publisher key\n' >"$T/key-a"
printf 'the reader key\n' >"$T/key-b"
chmod 600 "$T/key-a" "$T/key-b"
variant "$W" "$T/sig.wasm" signature
publish "$T/sig.wasm" --cache-signing-key "$T/key-a"
start_case "bad signature" "$T/sig.wasm" --cache-dir "$T/l-sig" "${REG[@]}" --cache-signing-key "$T/key-b"
expect_count "bad signature" prewarm_cache_rejected_total
stop_case "bad signature"

# ---- full disk under the local tier ------------------------------------------------------
mnt=$T/full
mkdir -p "$mnt"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2>"$T/mount.err"; then
	echo "SKIP (full disk case only): mount -t tmpfs not permitted here: $(cat "$T/mount.err" 2>/dev/null)"
else
	head -c 60000 /dev/zero >"$mnt/filler" 2>/dev/null || true
	variant "$W" "$T/full.wasm" full
	publish "$T/full.wasm"
	start_case "full disk" "$T/full.wasm" --cache-dir "$mnt/cache" "${REG[@]}"
	grep -q 'writing to tier local failed\|local cache unavailable' "$LOG" || fail "full disk: no warning: $(grep WARN "$LOG")"
	[ "$(metric_value 'prewarm_cache_hits_total{tier="registry"}')" -ge 1 ] || fail "full disk: not served from the registry"
	ok "full local disk: ready in $READY_MS ms from a registry hit, the local write failure warned"
	stop_case "full disk"
	umount "$mnt"
fi
echo "registry_faults: all passed"
