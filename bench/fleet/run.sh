#!/usr/bin/env bash
# bench/fleet: a fleet of pods starting at once with empty local caches, every one needing the
# same cold modules: how many optimized compiles the fleet runs per module, and how long until
# every pod has them all, against one pod's compile and one pod's warm-registry start.
#
# A "pod" is a process that runs `prewarm compile` for each module (the optimized tier) and
# exits; all N start at once. Scenarios, each REPS times, interleaved, medians reported:
#   one-compile     one pod, nothing cached anywhere (the reference: one compile per module)
#   warm-registry   one pod, empty local directory, the registry already holding the modules
#   registry        N pods, each its own empty local directory, one shared registry (cold)
#   shared-dir      N pods, one shared cache directory (a ReadWriteMany volume; cold)
#   no-single-flight  N pods, one registry, --cache-peer-wait off (every pod compiles: before)
#
#   bash bench/fleet/run.sh [BUILD_DIR]
#   settings: PODS=16, REPS=3, MODULES="a.wasm b.wasm" (default: the C test policy fixture and
#   a variant of it with another digest), NO_SF=1 to also run no-single-flight
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
pw=$build/prewarm
pods=${PODS:-16} reps=${REPS:-3}
[ -x "$pw" ] || { echo "build prewarm first (scripts/build.sh)" >&2; exit 2; }
. "$top/tests/lib/registry.sh"
tmp=$(mktemp -d)
trap 'pw_registry_stop "$tmp/r"; rm -rf "$tmp"' EXIT
pw_registry_start "$tmp/r" >/dev/null

if [ -n "${MODULES:-}" ]; then
	read -r -a mods <<<"$MODULES"
else
	cmake --build "$build" --target pw_fixtures >/dev/null
	cp "$build/fixtures/host_wapc.wasm" "$tmp/policy-a.wasm"
	cp "$build/fixtures/host_wapc.wasm" "$tmp/policy-b.wasm"
	printf '\x00\x06\x05fleet' >>"$tmp/policy-b.wasm"   # same code, another digest: another key
	mods=("$tmp/policy-a.wasm" "$tmp/policy-b.wasm")
fi

# pod NAME ARGS...: compiles every module (cache options in ARGS), one report line each
pod() {
	local name=$1 m
	shift
	for m in "${mods[@]}"; do
		nice -n 10 "$pw" compile "$m" "$@" >>"$tmp/$name.out" 2>>"$tmp/$name.err" || echo "FAILED $m" >>"$tmp/$name.out"
	done
}
now() { date +%s.%N; }
# fleet SCENARIO REP N ARGS-MAKER: starts N pods at once; prints seconds until the last exits
fleet() {
	local scen=$1 rep=$2 n=$3 i t0 t1 pids=()
	shift 3
	rm -f "$tmp/$scen-$rep".*.out "$tmp/$scen-$rep".*.err
	t0=$(now)
	for i in $(seq 1 "$n"); do
		pod "$scen-$rep.$i" $("$@" "$rep" "$i") &
		pids+=($!)
	done
	wait "${pids[@]}"   # the pods only: a bare wait would also wait for the registry
	t1=$(now)
	python3 -c "print(f'{$t1 - $t0:.2f}')"
}
reg() { echo --cache-registry "$PW_REGISTRY_HOST/$1" --cache-registry-insecure; }
args_one() { echo --cache-dir "$tmp/one-$1" --no-cache; }
args_warmup() { echo --cache-dir "$tmp/warmup-$1" $(reg "warm-$1"); }
args_warm() { echo --cache-dir "$tmp/warm-$1-$2" $(reg "warm-$1"); }
args_registry() { echo --cache-dir "$tmp/reg-$1-$2" $(reg "fleet-$1"); }
args_shared() { echo --cache-dir "$tmp/shared-$1"; }
args_nosf() { echo --cache-dir "$tmp/nosf-$1-$2" $(reg "nosf-$1") --cache-peer-wait off; }
compiles() { cat "$tmp/$1-$2".*.out | grep -c '^compiled' || true; }
# the seconds the compiles of SCENARIO REP took as they ran (their mean x the modules: the
# compile time on the fleet's critical path, slowed by whatever else the machine ran)
compile_secs() {
	cat "$tmp/$1-$2".*.out | python3 -c '
import re, sys
t = [float(m.group(1)) * (0.001 if m.group(2) == "ms" else 1)
     for m in (re.match(r"compiled in ([0-9.]+) (ms|s)", l) for l in sys.stdin) if m]
print(f"{sum(t) / len(t) * int(sys.argv[1]):.2f}" if t else 0)' "${#mods[@]}"
}
failures() { cat "$tmp/$1-$2".*.out | grep -c '^FAILED' || true; }

echo "fleet: $pods pods, ${#mods[@]} modules ($(for m in "${mods[@]}"; do printf '%s %s KB; ' "$(basename "$m")" $(( $(stat -c %s "$m") / 1024 )); done))"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); pods at nice 10; registry: docker-registry on loopback"
declare -A T C K
for rep in $(seq 1 "$reps"); do
	T[one,$rep]=$(fleet one "$rep" 1 args_one); C[one,$rep]=$(compiles one "$rep"); K[one,$rep]=$(compile_secs one "$rep")
	fleet warmup "$rep" 1 args_warmup >/dev/null   # fills the registry repository warm-REP
	T[warm,$rep]=$(fleet warm "$rep" 1 args_warm); C[warm,$rep]=$(compiles warm "$rep")
	T[registry,$rep]=$(fleet registry "$rep" "$pods" args_registry); C[registry,$rep]=$(compiles registry "$rep")
	K[registry,$rep]=$(compile_secs registry "$rep")
	T[shared,$rep]=$(fleet shared "$rep" "$pods" args_shared); C[shared,$rep]=$(compiles shared "$rep")
	K[shared,$rep]=$(compile_secs shared "$rep")
	if [ "${NO_SF:-0}" = 1 ]; then
		T[nosf,$rep]=$(fleet nosf "$rep" "$pods" args_nosf); C[nosf,$rep]=$(compiles nosf "$rep")
	fi
	for s in one warm registry shared nosf; do
		[ -n "${T[$s,$rep]:-}" ] || continue
		f=$(failures "$s" "$rep")
		echo "rep $rep: $s ${T[$s,$rep]} s, ${C[$s,$rep]} compiles (${K[$s,$rep]:-0} s of compiling on the critical path), $f failed"
	done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$reps" "${#mods[@]}" "$pods" <<PY
import statistics, sys
reps, nmods, pods = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
T = {}
C = {}
$(for k in "${!T[@]}"; do echo "T['$k'] = ${T[$k]}"; done)
$(for k in "${!C[@]}"; do echo "C['$k'] = ${C[$k]}"; done)
K = {}
$(for k in "${!K[@]}"; do echo "K['$k'] = ${K[$k]}"; done)
def med(s, d): return statistics.median(d[f"{s},{r}"] for r in range(1, reps + 1) if f"{s},{r}" in d)
one = med("one", T)
print()
print("| scenario | pods | all ready (s, median) | / one compile | compiles per module (median) | compiling on the critical path (s) | the rest: protocol, start, download (s) |")
print("|---|---|---|---|---|---|---|")
names = {"one": "one pod, nothing cached (one compile)", "warm": "one pod, warm registry",
         "registry": "fleet, one registry", "shared": "fleet, one shared directory",
         "nosf": "fleet, one registry, --cache-peer-wait off"}
for s in ["one", "warm", "registry", "shared", "nosf"]:
    if not any(k.startswith(s + ",") for k in T): continue
    n = 1 if s in ("one", "warm") else pods
    k = med(s, K) if any(k.startswith(s + ",") for k in K) else 0
    rest = statistics.median(T[f"{s},{r}"] - K.get(f"{s},{r}", 0) for r in range(1, reps + 1) if f"{s},{r}" in T)
    print(f"| {names[s]} | {n} | {med(s, T):.2f} | {med(s, T) / one:.2f}x | {med(s, C) / nmods:g} | {k:.2f} | {rest:.2f} |")
PY
