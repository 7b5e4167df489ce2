#!/usr/bin/env bash
# bench/enforce/peers.sh: how long until a new policy can be enforced, per compiler, side by
# side in ONE run on the same modules: Prewarm's own steps (wasm2c alone, then tcc -- the
# "quick" tier -- and gcc -O1 -- the "optimized" tier -- on the same C) against independent
# engines compiling the same module: wasmtime/Cranelift (the wasmtime inside
# @bytecodealliance/wizer@10.0.0 from npm) and V8 (node's, TurboFan and Liftoff).
#
# What each column times (wall seconds, the MEDIAN of REPS runs):
#   wasm2c      `wasm2c -n m module.wasm -o w.c`
#   tcc         `tcc -shared -w -DNDEBUG m.c shim.c -o a.so -lm` on the C that
#               `prewarm compile --keep-tmp` leaves (m.c as the project patches it, shim.c,
#               wasm-rt.h)
#   gcc -O1     `gcc -O1 <the project's fixed flags> m.c shim.c -o a.so -lm`, same C
#   Cranelift   `wizer --allow-wasi --init-func F module.wasm -o out.wasm` with F an exported
#               () -> () function, a fresh XDG_CACHE_HOME each run (wasmtime caches code):
#               parse + Cranelift compile + instantiate (+ F, + snapshot). A `*` marks modules
#               whose F trapped (e.g. `_start` of a benchmark wanting its input file): wasmtime
#               had compiled and instantiated the module by then, so the time still is that.
#   V8 TurboFan node --no-liftoff --no-wasm-lazy-compilation: `new WebAssembly.Module(bytes)`
#   V8 Liftoff  node --liftoff --no-wasm-tier-up --no-wasm-lazy-compilation: same
#               (in-process performance.now() around the constructor, see v8compile.js; one
#               node process per measurement)
# The runs are interleaved: for each repetition, every module, every engine, in turn.
#
# usage: bench/enforce/peers.sh [MODULE.wasm ...]
#   default modules: a set of corpus modules of 0.1 to 3 MB under $PREWARM_CORPUS
#   env: REPS (5), PREWARM_BIN (build/prewarm, else build-bench/prewarm),
#        PREWARM_CORPUS (../shared/corpus/wasm beside the repo),
#        PREWARM_PEERS_DIR (npm prefix for wizer, default ${TMPDIR:-/tmp}/prewarm-peers;
#        installed there when missing), WASM2C, TCC, GCC, NODE (tool commands)
# exit: 0 done, 1 a needed tool is missing or failed to install, 77 corpus absent (skip)
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/enforce
REPS=${REPS:-5}
CORPUS=${PREWARM_CORPUS:-$top/../shared/corpus/wasm}
PEERS=${PREWARM_PEERS_DIR:-${TMPDIR:-/tmp}/prewarm-peers}
WIZER_VERSION=10.0.0
WASM2C=${WASM2C:-wasm2c}
TCC=${TCC:-tcc}
GCC=${GCC:-gcc}
NODE=${NODE:-node}
if [ -n "${PREWARM_BIN:-}" ]; then BIN=$PREWARM_BIN
elif [ -x "$top/build/prewarm" ]; then BIN=$top/build/prewarm
else BIN=$top/build-bench/prewarm; fi
# the flags src/engine/engine.c always passes to the C compiler, plus its default -O1
GCC_FLAGS=(-O1 -shared -fPIC -fvisibility=hidden -fno-strict-aliasing -DNDEBUG -w
	-Wl,--build-id=none -Wl,-z,noexecstack)
TCC_FLAGS=(-shared -w -DNDEBUG)
V8_TURBOFAN=(--no-liftoff --no-wasm-lazy-compilation)
V8_LIFTOFF=(--liftoff --no-wasm-tier-up --no-wasm-lazy-compilation)

die() { echo "peers.sh: $*" >&2; exit 1; }
case $REPS in '' | *[!0-9]* | 0) die "REPS must be a positive integer (got '$REPS')" ;; esac

# --- tools -------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool: $1 ($2)"; }
need "$WASM2C" "Debian package wabt"
need wasm-objdump "Debian package wabt"
need "$TCC" "Debian package tcc"
need "$GCC" "Debian package gcc"
need "$NODE" "Debian package nodejs"
need npm "Debian package npm"
need python3 "Debian package python3"
[ -x "$BIN" ] || die "missing prewarm binary: $BIN (build one: cmake -S $top -B $top/build-bench && cmake --build $top/build-bench --target prewarm; or set PREWARM_BIN)"
[ -f "$here/v8compile.js" ] || die "missing $here/v8compile.js"
for f in liftoff wasm-tier-up wasm-lazy-compilation; do
	"$NODE" --v8-options | grep -q -- "^ *--$f " || die "this node's V8 has no --$f flag (node $("$NODE" --version))"
done

case $(uname -m) in
x86_64) warch=x64 ;; aarch64 | arm64) warch=arm64 ;; s390x) warch=s390x ;; *) warch=$(uname -m) ;;
esac
WIZER=$PEERS/node_modules/@bytecodealliance/wizer-linux-$warch/wizer
if ! [ -x "$WIZER" ] || ! "$WIZER" --version 2>/dev/null | grep -q "$WIZER_VERSION"; then
	echo "peers.sh: installing @bytecodealliance/wizer@$WIZER_VERSION with npm into $PEERS (outside the repo)" >&2
	mkdir -p "$PEERS" || die "cannot create $PEERS"
	npm install --prefix "$PEERS" --no-audit --no-fund --loglevel=error -E \
		"@bytecodealliance/wizer@$WIZER_VERSION" >&2 || die "npm install of @bytecodealliance/wizer@$WIZER_VERSION failed"
	[ -x "$WIZER" ] || die "missing tool: wizer (npm installed @bytecodealliance/wizer but $WIZER is not there)"
fi
# the native binary, not node_modules/.bin/wizer (a node wrapper that would add node's start-up)

# --- modules -----------------------------------------------------------------------------
DEFAULT_MODULES=(
	wapc_wapc-rs__wapc_guest_test
	fabriziosestito_policy-server__safe_labels_policy
	bytecodealliance_sightglass__rust_json
	bytecodealliance_sightglass__sqlite3
	bytecodealliance_sightglass__tinygo_json
	bytecodealliance_sightglass__rust_compression
	wasm3_wasm3__brotli
)
mods=()
if [ $# -gt 0 ]; then
	for m in "$@"; do
		if [ -f "$m" ]; then mods+=("$m"); else echo "peers.sh: skip $m: no such file" >&2; fi
	done
else
	[ -d "$CORPUS" ] || { echo "peers.sh: skip: corpus $CORPUS is absent (set PREWARM_CORPUS)"; exit 77; }
	for m in "${DEFAULT_MODULES[@]}"; do
		if [ -f "$CORPUS/$m.wasm" ]; then mods+=("$CORPUS/$m.wasm")
		else echo "peers.sh: skip $m: not in $CORPUS" >&2; fi
	done
fi
[ ${#mods[@]} -gt 0 ] || { echo "peers.sh: skip: no module to measure"; exit 77; }

W=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench-enforce.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$W"' EXIT
RES=$W/results.tsv   # module-index engine seconds status
: >"$RES"

elapsed() { python3 -c "import sys; print('%.6f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

# the () -> () export to give wizer, by preference: waPC's and WASI reactors' init functions,
# C constructors, then a command's _start, then any other
pick_init() {
	wasm-objdump -x "$1" 2>/dev/null | python3 -c '
import re, sys
types, sig, exports = {}, {}, []
for line in sys.stdin:
    m = re.match(r"^ - type\[(\d+)\] (.*)$", line)
    if m: types[int(m.group(1))] = m.group(2).strip()
    m = re.match(r"^ - func\[(\d+)\] sig=(\d+)", line)
    if m: sig[int(m.group(1))] = int(m.group(2))
    m = re.match(r"^ - func\[(\d+)\] .*-> \"(.*)\"$", line)
    if m: exports.append((m.group(2), int(m.group(1))))
nullary = [n for n, f in exports if types.get(sig.get(f, -1)) == "() -> nil"]
for p in ("wapc_init", "_initialize", "__wasm_call_ctors", "_start"):
    if p in nullary:
        print(p); sys.exit(0)
if nullary: print(nullary[0])
'
}

uptime_start=$(uptime)
echo "# bench/enforce/peers.sh: REPS=$REPS, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# load at start: $uptime_start"
echo "# tools: $("$WASM2C" --version 2>&1 | head -1) (wasm2c); $("$TCC" -v 2>&1 | head -1); $("$GCC" --version | head -1);"
echo "#        $("$WIZER" --version 2>&1 | head -1) (wasmtime/Cranelift); node $("$NODE" --version) (V8 $("$NODE" -p process.versions.v8)); prewarm: $BIN"
echo

# --- preparation: C sources, init functions, refusals (each peer run once, untimed) ---------
declare -a NAME KB CODEKB CKB DIR INIT ST_PW ST_TCC ST_WZ ST_TF ST_LO
i=0
for m in "${mods[@]}"; do
	NAME[i]=$(basename "$m" .wasm)
	KB[i]=$(( ($(stat -c %s "$m") + 512) / 1024 ))
	cs=$(wasm-objdump -h "$m" 2>/dev/null | sed -n 's/^ *Code .*(size=0x\([0-9a-f]*\)).*/\1/p')
	CODEKB[i]=$([ -n "$cs" ] && echo $(( (16#$cs + 512) / 1024 )) || echo "?")
	echo "prep ${NAME[i]} (${KB[i]} KB)" >&2
	# Prewarm: its own compile leaves m.c (patched as the engine does), shim.c, wasm-rt.h
	mkdir -p "$W/k$i"
	if "$BIN" compile "$m" -o "$W/k$i.so" --tier quick --keep-tmp --tmp-dir "$W/k$i" --host none -q >"$W/k$i.log" 2>&1; then
		DIR[i]=$(ls -d "$W/k$i"/*/ | head -1)
		DIR[i]=${DIR[i]%/}
		CKB[i]=$(( ($(stat -c %s "${DIR[i]}/m.c") + 512) / 1024 ))
		ST_PW[i]=ok
		if (cd "${DIR[i]}" && "$TCC" "${TCC_FLAGS[@]}" m.c shim.c -o t.so -lm) >"$W/tcc$i.log" 2>&1; then
			ST_TCC[i]=ok
		else
			ST_TCC[i]="failed ($(grep -m1 -i 'error' "$W/tcc$i.log" || head -1 "$W/tcc$i.log"))"
		fi
	else
		DIR[i]=""; CKB[i]="-"
		ST_PW[i]="refused by prewarm ($(grep -m1 -iv '^$' "$W/k$i.log" | cut -c1-160))"
		ST_TCC[i]=${ST_PW[i]}
	fi
	INIT[i]=$(pick_init "$m")
	if [ -z "${INIT[i]}" ]; then
		ST_WZ[i]="skipped: no () -> () export to use as --init-func"
	else
		rm -rf "$W/xdg"
		XDG_CACHE_HOME=$W/xdg "$WIZER" --allow-wasi --init-func "${INIT[i]}" "$m" -o "$W/wz.wasm" >"$W/wz$i.log" 2>&1
		if [ $? -eq 0 ]; then ST_WZ[i]=ok
		elif grep -q 'function trapped' "$W/wz$i.log"; then
			ST_WZ[i]="trap"   # compiled and instantiated; the init function trapped
		else
			ST_WZ[i]="refused by wizer ($(grep -m1 -i 'error' "$W/wz$i.log" | cut -c1-160))"
		fi
	fi
	for t in TF LO; do
		if [ $t = TF ]; then fl=("${V8_TURBOFAN[@]}"); else fl=("${V8_LIFTOFF[@]}"); fi
		if "$NODE" "${fl[@]}" "$here/v8compile.js" "$m" >/dev/null 2>"$W/v8$t$i.log"; then s=ok
		else s="refused by V8 ($(head -1 "$W/v8$t$i.log" | cut -c1-160))"; fi
		if [ $t = TF ]; then ST_TF[i]=$s; else ST_LO[i]=$s; fi
	done
	i=$((i + 1))
done
n=$i

# --- measurement, interleaved --------------------------------------------------------------
trap_reason() {
	{ grep -m1 -E 'unknown imported function|unable to|Error reading|Exited with' "$1" || head -1 "$1"; } |
		sed 's/^ *//; s/^[0-9]*: //' | cut -c1-140
}
record() { echo "$1	$2	$3	$4" >>"$RES"; }
for rep in $(seq 1 "$REPS"); do
	echo "rep $rep/$REPS" >&2
	for ((i = 0; i < n; i++)); do
		m=${mods[i]}
		if [ "${ST_PW[i]}" = ok ]; then
			d=${DIR[i]}
			t0=${EPOCHREALTIME/,/.}; "$WASM2C" -n m "$m" -o "$d/w.c" >/dev/null 2>&1; rc=$?; t1=${EPOCHREALTIME/,/.}
			[ $rc -eq 0 ] && record "$i" wasm2c "$(elapsed "$t0" "$t1")" ok
			if [ "${ST_TCC[i]}" = ok ]; then
				t0=${EPOCHREALTIME/,/.}; (cd "$d" && "$TCC" "${TCC_FLAGS[@]}" m.c shim.c -o t.so -lm) >/dev/null 2>&1; rc=$?; t1=${EPOCHREALTIME/,/.}
				[ $rc -eq 0 ] && record "$i" tcc "$(elapsed "$t0" "$t1")" ok
			fi
			# the whole quick tier as the server runs it: parse, checks, wasm2c, patch, tcc -r, ld
			t0=${EPOCHREALTIME/,/.}; "$BIN" compile "$m" -o "$d/q.so" --tier quick --host none -q >/dev/null 2>&1; rc=$?; t1=${EPOCHREALTIME/,/.}
			[ $rc -eq 0 ] && record "$i" pwquick "$(elapsed "$t0" "$t1")" ok
			if [ "${PEERS_NO_GCC:-0}" != 1 ]; then
				t0=${EPOCHREALTIME/,/.}; (cd "$d" && "$GCC" "${GCC_FLAGS[@]}" m.c shim.c -o g.so -lm) >/dev/null 2>&1; rc=$?; t1=${EPOCHREALTIME/,/.}
				[ $rc -eq 0 ] && record "$i" gcc "$(elapsed "$t0" "$t1")" ok
			fi
		fi
		if [ "${ST_WZ[i]}" = ok ] || [ "${ST_WZ[i]}" = trap ]; then
			rm -rf "$W/xdg"
			t0=${EPOCHREALTIME/,/.}
			XDG_CACHE_HOME=$W/xdg "$WIZER" --allow-wasi --init-func "${INIT[i]}" "$m" -o "$W/wz.wasm" >/dev/null 2>&1
			t1=${EPOCHREALTIME/,/.}
			record "$i" wizer "$(elapsed "$t0" "$t1")" "${ST_WZ[i]}"
		fi
		[ "${ST_TF[i]}" = ok ] && s=$("$NODE" "${V8_TURBOFAN[@]}" "$here/v8compile.js" "$m" 2>/dev/null) && record "$i" v8tf "$s" ok
		[ "${ST_LO[i]}" = ok ] && s=$("$NODE" "${V8_LIFTOFF[@]}" "$here/v8compile.js" "$m" 2>/dev/null) && record "$i" v8lo "$s" ok
	done
done

# --- table ---------------------------------------------------------------------------------
meta=$W/meta.tsv
: >"$meta"
for ((i = 0; i < n; i++)); do
	printf '%s\t%s\t%s\t%s\t%s\n' "$i" "${NAME[i]}" "${KB[i]}" "${CODEKB[i]}" "${CKB[i]}" >>"$meta"
done
echo
echo "Median wall seconds of $REPS interleaved runs (- : not measured, see notes):"
echo
python3 - "$meta" "$RES" <<'PY'
import sys, statistics
meta = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
res = {}
trap = set()
for l in open(sys.argv[2]):
    i, eng, s, st = l.rstrip("\n").split("\t")
    res.setdefault((i, eng), []).append(float(s))
    if st == "trap": trap.add(i)
med = lambda i, e: statistics.median(res[(i, e)]) if (i, e) in res else None
f = lambda v: "-" if v is None else "%.3f" % v
print("| module | wasm KB | code KB | C KB | wasm2c | tcc | prewarm quick | gcc -O1 | wizer (Cranelift) | V8 TurboFan | V8 Liftoff | prewarm quick/Cranelift | (wasm2c+gcc)/Cranelift |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for i, name, kb, ckb, cckb in meta:
    w2c, tcc, gcc, wz = med(i, "wasm2c"), med(i, "tcc"), med(i, "gcc"), med(i, "wizer")
    pq = med(i, "pwquick")
    r1 = "-" if None in (pq, wz) else "%.2f" % (pq / wz)
    r2 = "-" if None in (w2c, gcc, wz) else "%.1f" % ((w2c + gcc) / wz)
    wzs = f(wz) + (" *" if i in trap and wz is not None else "")
    print(f"| {name} | {kb} | {ckb} | {cckb} | {f(w2c)} | {f(tcc)} | {f(pq)} | {f(gcc)} | {wzs} | {f(med(i, 'v8tf'))} | {f(med(i, 'v8lo'))} | {r1} | {r2} |")
PY
echo
echo "code KB: the module's Code section; C KB: m.c as Prewarm compiles it (wasm2c output, patched)."
echo "tcc (tcc -shared), gcc -O1: without wasm2c. prewarm quick: \`prewarm compile --tier quick\`, the whole quick"
echo "tier as the server runs it (parse, checks, wasm2c, patch, tcc -r, ld with libtcc1.a, reading the artifact)."
echo "* wizer's --init-func trapped after wasmtime had compiled and instantiated the module."
echo
echo "Notes:"
for ((i = 0; i < n; i++)); do
	notes="wizer --init-func ${INIT[i]:-(none)}"
	[ "${ST_WZ[i]}" = trap ] && notes="$notes (trapped: $(trap_reason "$W/wz$i.log"))"
	[ "${ST_PW[i]}" != ok ] && notes="$notes; prewarm: ${ST_PW[i]}"
	[ "${ST_PW[i]}" = ok ] && [ "${ST_TCC[i]}" != ok ] && notes="$notes; tcc: ${ST_TCC[i]}"
	case ${ST_WZ[i]} in ok | trap) ;; *) notes="$notes; wizer: ${ST_WZ[i]}" ;; esac
	[ "${ST_TF[i]}" != ok ] && notes="$notes; V8 TurboFan: ${ST_TF[i]}"
	[ "${ST_LO[i]}" != ok ] && notes="$notes; V8 Liftoff: ${ST_LO[i]}"
	echo "- ${NAME[i]}: $notes"
done
echo
echo "# load at start: $uptime_start"
echo "# load at end:   $(uptime)"
