#!/bin/bash
# `prewarm inspect` through the real binary: size, sha256 (against sha256sum),
# ABI, imports and exports with signatures, features, memory limits, the
# io.kubewarden.metadata section (appended to a fixture here), --json, and
# clear errors for bad files (exit 1) and bad usage (exit 2).
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-inspect.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
has() {  # FILE LINE-REGEX
	grep -qE -- "$2" "$1" || bad "output lacks /$2/: $(cat "$1")"
}

m="$FIX/wasm_mvp.wasm"
"$BIN" inspect "$m" > "$T/out" || bad "inspect exit $?"
sum=$(sha256sum "$m" | cut -d' ' -f1)
size=$(stat -c %s "$m")
has "$T/out" "^sha256: +$sum\$"
has "$T/out" "^size: +$size bytes"
has "$T/out" '^abi: +WASI command$'
has "$T/out" '^features: +none \(MVP\)$'
has "$T/out" '^memory: +min 2 pages, max 16 pages'
has "$T/out" '^code: +[0-9]+ bytes, 3 functions, has a start function$'
has "$T/out" '^imports \(3\):$'
has "$T/out" '^  func +env\.log \(i32, i32\) -> \(\)$'
has "$T/out" '^  func +env\.mix \(i32, i64, f32, f64\) -> i32$'
has "$T/out" '^  global +env\.g i32$'
has "$T/out" '^exports \(5\):$'
has "$T/out" '^  func +add \(i32, i32\) -> i32$'
has "$T/out" '^  memory +memory'
has "$T/out" '^kubewarden metadata: none$'

"$BIN" inspect "$FIX/wasm_feat_simd.wasm" > "$T/out" || bad "inspect simd exit $?"
has "$T/out" '^features: +simd$'
"$BIN" inspect "$FIX/wasm_feat_threads.wasm" > "$T/out" || bad "inspect threads exit $?"
has "$T/out" '^features: +threads$'

# a waPC-looking module with Kubewarden metadata appended as a custom section
meta='{"protocolVersion":"v1","rules":[],"mutating":false}'
name=io.kubewarden.metadata
cp "$m" "$T/kw.wasm"
secsize=$(( 1 + ${#name} + ${#meta} ))
printf "\\x00\\x$(printf %02x $secsize)\\x$(printf %02x ${#name})%s%s" "$name" "$meta" >> "$T/kw.wasm"
"$BIN" inspect "$T/kw.wasm" > "$T/out" || bad "inspect kw exit $?"
has "$T/out" "^kubewarden metadata \\(${#meta} bytes\\):\$"
has "$T/out" '^  "protocolVersion": "v1",$'
has "$T/out" '^  "mutating": false$'

"$BIN" inspect --json "$T/kw.wasm" > "$T/json" || bad "inspect --json exit $?"
has "$T/json" "\"sha256\": \"$(sha256sum "$T/kw.wasm" | cut -d' ' -f1)\""
has "$T/json" '"abi": "WASI command"'
has "$T/json" '"signature": "iIfF:i"'
has "$T/json" '"protocolVersion": "v1"'
has "$T/json" '"features": \[\]'
has "$T/json" '"min_pages": 2'
if command -v python3 > /dev/null; then
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["imports"][0] == {"module": "env", "name": "log", "kind": "func", "signature": "ii:", "params": ["i32", "i32"], "results": []}, d["imports"][0]
assert [e["name"] for e in d["exports"]] == ["memory", "table", "answer", "add", "_start"], d["exports"]
assert d["kubewarden_metadata"]["mutating"] is False
assert d["memory"] == {"min_pages": 2, "max_pages": 16}
' "$T/json" || bad "--json content"
fi

# bad files: exit 1 and a reason; bad usage: exit 2
expect_fail() {  # CODE MESSAGE ARGS...
	local code=$1 msg=$2; shift 2
	"$BIN" inspect "$@" > "$T/out" 2> "$T/err"
	local rc=$?
	[[ $rc == "$code" ]] || bad "inspect $*: exit $rc, expected $code ($(cat "$T/err"))"
	grep -qF -- "$msg" "$T/err" || bad "inspect $*: message lacks '$msg': $(cat "$T/err")"
	[[ $code == 2 || ! -s "$T/out" ]] || bad "inspect $*: printed a partial report"
}
printf 'not wasm at all' > "$T/text.wasm"
printf '\0asm\r\0\1\0' > "$T/component.wasm"
head -c 100 "$m" > "$T/trunc.wasm"
: > "$T/empty.wasm"
expect_fail 1 "No such file" "$T/missing.wasm"
expect_fail 1 "bad magic" "$T/text.wasm"
expect_fail 1 "bad magic" "$T/empty.wasm"
expect_fail 1 "component-model binary" "$T/component.wasm"
expect_fail 1 "offset 0x" "$T/trunc.wasm"
expect_fail 2 "usage" 
expect_fail 2 "unknown option" --yaml "$m"
expect_fail 2 "one module at a time" "$m" "$m"

# every corpus module inspects (components refused with the reason)
if [[ -n ${PREWARM_CORPUS:-} && -d $PREWARM_CORPUS ]]; then
	for f in "$PREWARM_CORPUS"/*.wasm; do
		"$BIN" inspect --json "$f" > "$T/out" 2> "$T/err"
		rc=$?
		if [[ $rc != 0 ]]; then
			grep -q 'component-model binary' "$T/err" || bad "corpus $(basename "$f"): exit $rc: $(cat "$T/err")"
		fi
	done
fi
exit $fail
