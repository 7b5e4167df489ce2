#!/usr/bin/env bash
# The registry tier with several real processes (tests/cache's cache_tool: the commands'
# cache code + engine): 8 processes publishing the same entry at once, then 8 different
# entries at once; every process succeeds, and afterwards every entry verifies: a fresh
# process with an empty local directory gets it from the registry without compiling.
# Interop: skopeo reads an entry's manifest (artifactType, annotations), and `skopeo sync`
# of the whole cache repository to a second registry keeps the entries usable from there.
set -u
src=${PREWARM_SOURCE_DIR:?}
build=${PREWARM_BUILD_DIR:?}
tool=$build/cache_tool
fix=${PREWARM_FIXTURES:?}/oci_policy.wasm
[ -x "$tool" ] || { echo "SKIP: $tool not built"; exit 77; }
. "$src/tests/lib/registry.sh"
tmp=$(mktemp -d)
cleanup() { pw_registry_stop "$tmp/r1"; pw_registry_stop "$tmp/r2"; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0 pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

pw_registry_start "$tmp/r1" || { echo "SKIP: no registry"; exit 77; }
R1=$PW_REGISTRY_HOST
pw_registry_start "$tmp/r2" || { echo "SKIP: no registry"; exit 77; }
R2=$PW_REGISTRY_HOST
reg() { echo --cache-registry "$1/prewarm-cache" --cache-registry-insecure; }

# distinct modules: the fixture + a custom section naming it (answer() stays 42)
for i in 0 1 2 3 4 5 6 7; do
	cp "$fix" "$tmp/m$i.wasm"
	printf '\x00\x03\x02c%d' "$i" >>"$tmp/m$i.wasm"
done
cp "$fix" "$tmp/same.wasm"
printf '\x00\x05\x04same' >>"$tmp/same.wasm"

# 8 processes, same entry, each with its own empty local dir
pids=()
for i in 0 1 2 3 4 5 6 7; do
	"$tool" get "$tmp/same.wasm" --cache-dir "$tmp/same-local$i" $(reg "$R1") >"$tmp/same$i.out" 2>&1 &
	pids+=($!)
done
n=0
for i in 0 1 2 3 4 5 6 7; do wait "${pids[$i]}" && grep -q answer=42 "$tmp/same$i.out" && n=$((n + 1)); done
[ $n = 8 ] && ok "8 concurrent publishers of one entry all succeeded" || { bad "same entry: $n/8"; cat "$tmp"/same*.out; }

# 8 processes, 8 different entries
pids=()
for i in 0 1 2 3 4 5 6 7; do
	"$tool" get "$tmp/m$i.wasm" --cache-dir "$tmp/diff-local$i" $(reg "$R1") >"$tmp/diff$i.out" 2>&1 &
	pids+=($!)
done
n=0
for i in 0 1 2 3 4 5 6 7; do wait "${pids[$i]}" && grep -q answer=42 "$tmp/diff$i.out" && n=$((n + 1)); done
[ $n = 8 ] && ok "8 concurrent publishers of different entries all succeeded" || { bad "different entries: $n/8"; cat "$tmp"/diff*.out; }

# every entry verifies: fresh local dir -> hit from the registry, no compile, no warning
check_all() {
	local host=$1 label=$2 good=0 f
	for f in same m0 m1 m2 m3 m4 m5 m6 m7; do
		rm -rf "$tmp/verify"
		if "$tool" get "$tmp/$f.wasm" --cache-dir "$tmp/verify" $(reg "$host") >"$tmp/v.out" 2>&1 &&
			grep -q "^hit registry" "$tmp/v.out" && grep -q answer=42 "$tmp/v.out" && ! grep -q WARN "$tmp/v.out"; then
			good=$((good + 1))
		else
			echo "  $f: $(cat "$tmp/v.out")"
		fi
	done
	[ $good = 9 ] && ok "$label: all 9 entries hit from the registry and verify" || bad "$label: $good/9 entries verified"
}
check_all "$R1" "registry 1"
# entries are tagged pw1-..., the claims of single flight across processes pw1c-...
tags=$(curl -s "http://$R1/v2/prewarm-cache/tags/list" | python3 -c 'import json,sys; print(len([t for t in json.load(sys.stdin)["tags"] if t.startswith("pw1-")]))')
[ "$tags" = 9 ] && ok "the registry holds exactly 9 entries" || bad "tags: $tags"

# skopeo reads an entry's manifest
tag=$(curl -s "http://$R1/v2/prewarm-cache/tags/list" | python3 -c 'import json,sys; print(sorted(t for t in json.load(sys.stdin)["tags"] if t.startswith("pw1-"))[0])')
raw=$(skopeo inspect --raw --tls-verify=false "docker://$R1/prewarm-cache:$tag" 2>&1)
echo "$raw" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["artifactType"] == "application/vnd.prewarm.artifact.v1", m
assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json" and m["config"]["size"] == 2, m
assert [l["mediaType"] for l in m["layers"]] == ["application/vnd.prewarm.artifact.v1+zstd"], m
a = m["annotations"]
tag = sys.argv[1]
assert tag == "pw1-" + a["io.prewarm.engine.hash"][:32] + "-" + a["io.prewarm.wasm.digest"][7:], (tag, a)
assert len(a["io.prewarm.artifact.sha256"]) == 64 and "engine-hash" in a["io.prewarm.engine.description"], a
json.loads(a["io.prewarm.cache.meta"])
' "$tag" && ok "skopeo inspect --raw shows the entry's artifactType and annotations" || bad "skopeo inspect: $raw"

# skopeo sync the whole repository to a second registry: entries usable from there
if skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
	"$R1/prewarm-cache" "$R2/copied" >"$tmp/sync.out" 2>&1; then
	ok "skopeo sync of the cache repository"
	# skopeo sync puts it under $R2/copied/prewarm-cache
	check_all "$R2/copied" "registry 2 (copied by skopeo)"
else
	bad "skopeo sync: $(tail -5 "$tmp/sync.out")"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
