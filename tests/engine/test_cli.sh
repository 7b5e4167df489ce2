#!/bin/bash
# `prewarm engine` and `prewarm compile` through the real binary: the hash output,
# every refusal (exit 1, the reason in the message, no file left behind), usage
# errors (exit 2), and byte-identical artifacts from two compiles.
set -u
BIN=${PREWARM_BIN:?PREWARM_BIN not set}
FIX=${PREWARM_FIXTURES:?PREWARM_FIXTURES not set}
T=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-engine-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

h=$("$BIN" engine --hash) || bad "engine --hash exited $?"
[[ $h =~ ^[0-9a-f]{64}$ ]] || bad "engine --hash printed '$h'"
"$BIN" engine > "$T/desc" || bad "engine exited $?"
grep -q '^translator: wasm2c ' "$T/desc" || bad "no translator line"
grep -q '^compiler-target: ' "$T/desc" || bad "no compiler-target line"
grep -qx "hash: $h" "$T/desc" || bad "engine output lacks 'hash: $h'"
h2=$("$BIN" engine --hash --opt -O2) || bad "engine --opt -O2 exited $?"
[[ $h2 != "$h" && $h2 =~ ^[0-9a-f]{64}$ ]] || bad "--opt -O2 gave hash '$h2' (default $h)"
h3=$(PREWARM_OPT=-O2 "$BIN" engine --hash)
[[ $h3 == "$h2" ]] || bad "PREWARM_OPT=-O2 gave '$h3', --opt -O2 gave '$h2'"
"$BIN" engine --bogus 2>/dev/null; [[ $? == 2 ]] || bad "engine --bogus is not a usage error"

# refuse NAME FILE EXPECTED-MESSAGE...
refuse() {
	local name=$1 in=$2; shift 2
	local out="$T/out/$name.so"
	mkdir -p "$T/out"
	"$BIN" compile "$in" -o "$out" 2> "$T/err"
	local rc=$?
	[[ $rc == 1 ]] || bad "$name: exit $rc, expected 1 ($(cat "$T/err"))"
	for m in "$@"; do
		grep -qF -- "$m" "$T/err" || bad "$name: message lacks '$m': $(cat "$T/err")"
	done
	[[ -z $(ls -A "$T/out") ]] || bad "$name: left files: $(ls -A "$T/out")"
}

printf '\177ELF\001\001\001\000garbage' > "$T/elf.wasm"
refuse bad-magic "$T/elf.wasm" "magic"
head -c 100 "$FIX/engine_basic.wasm" > "$T/trunc.wasm"
refuse truncated "$T/trunc.wasm" "trunc.wasm"
{ printf '\000asm\001\000\000\000'; head -c 200 /dev/urandom; } > "$T/garbage.wasm"
refuse garbage "$T/garbage.wasm" "garbage.wasm"
printf '\000asm\015\000\001\000' > "$T/component.wasm"
refuse component "$T/component.wasm" "component"
refuse simd "$FIX/engine_simd.wasm" "SIMD"
refuse unknown-import "$FIX/engine_unknown_import.wasm" "env.no_such_function (i:i)" "mystery.thing (:)"
refuse memory-import "$FIX/engine_memimport.wasm" "env.memory"
refuse missing "$T/does-not-exist.wasm" "does-not-exist.wasm"
"$BIN" compile --cc /nonexistent-cc "$FIX/engine_basic.wasm" -o "$T/out/x.so" --no-import-check 2> "$T/err"
[[ $? == 1 ]] && grep -q nonexistent-cc "$T/err" || bad "a missing compiler is not a clear error: $(cat "$T/err")"
[[ ! -e $T/out/x.so ]] || bad "a failed compile left its output"

# --host run: WASI + bench only, so a waPC import is unknown there
"$BIN" compile --host run "$FIX/engine_unknown_import.wasm" -o "$T/out/z.so" 2> "$T/err"
[[ $? == 1 ]] && grep -qF "env.no_such_function (i:i)" "$T/err" || bad "--host run: $(cat "$T/err")"
[[ ! -e $T/out/z.so ]] || bad "--host run: a refused compile left its output"
"$BIN" compile --host bogus "$FIX/engine_basic.wasm" -o "$T/out/y.so" 2>/dev/null; [[ $? == 2 ]] || bad "--host bogus is not a usage error"

"$BIN" compile 2>/dev/null; [[ $? == 2 ]] || bad "compile without arguments is not a usage error"
"$BIN" compile "$FIX/engine_basic.wasm" 2>/dev/null; [[ $? == 2 ]] || bad "compile without -o is not a usage error"

# success, twice: byte-identical
"$BIN" compile -q --no-import-check "$FIX/engine_basic.wasm" -o "$T/a1.so" || bad "compile failed"
"$BIN" compile -q --no-import-check "$FIX/engine_basic.wasm" -o "$T/a2.so" || bad "second compile failed"
cmp -s "$T/a1.so" "$T/a2.so" || bad "two compiles differ"
# libm calls (f64.ceil -> ceil) must resolve in any host binary: the artifact needs libm itself
if command -v readelf > /dev/null; then
	readelf -d "$T/a1.so" | grep -q 'NEEDED.*libm\.so' || bad "the artifact does not link libm"
fi
grep -qa "engine=$h" "$T/a1.so" || bad "the artifact does not embed engine=$h"

[[ $fail == 0 ]] && echo "ok"
exit $fail
