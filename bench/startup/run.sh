#!/usr/bin/env bash
# bench/startup: time to ready of `prewarm serve` for N policies (default 1 10 30), each a
# distinct module (the same code made distinct by a custom section: another digest, another
# cache key, the same compile cost), in five situations, each measured RUNS times (median):
#   cold      empty local cache, empty registry tier (compiles everything, publishes)
#   warm-local    the local cache holds every artifact
#   warm-registry empty local directory, the registry tier holds every artifact
#   one-changed   warm local cache, one of the N modules changed (one compile)
#   floor     an empty policies.yml: process start, engine probe, listeners (what any start pays)
# Time to ready is measured from the exec to the first 200 of GET /readiness (polled every
# 10 ms). The server's own phase times (fetch, cache, load, settings) are printed beside.
#
# usage: bench/startup/run.sh [N...]     env: PREWARM_BIN (default build/prewarm),
#   BENCH_MODULE (default build/fixtures/server_privileged.wasm; e.g. a corpus policy),
#   BENCH_SETTINGS (YAML flow map, default {}), RUNS (default 3), BENCH_NO_REGISTRY=1.
# Output: a Markdown table on stdout (for BENCHMARKS.md); run it with `nice`.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREWARM_BIN:-$top/build/prewarm}
MOD=${BENCH_MODULE:-$(dirname "$BIN")/fixtures/server_privileged.wasm}
SETTINGS=${BENCH_SETTINGS:-"{}"}
RUNS=${RUNS:-3}
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(1 10 30)
[ -x "$BIN" ] || { echo "no $BIN: build first (scripts/build.sh)" >&2; exit 1; }
[ -f "$MOD" ] || { echo "no module $MOD" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench-startup.XXXXXX")
SRV=""
REG=""
cleanup() {
	[ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null || true
	[ -n "$REG" ] && bash "$top/tests/lib/registry.sh" stop "$REG" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT

registry_args=()
if [ "${BENCH_NO_REGISTRY:-0}" != 1 ]; then
	REG=$W/registry
	bash "$top/tests/lib/registry.sh" start "$REG" >/dev/null
	. "$REG/env"
	registry_args=(--cache-registry "$PW_REGISTRY_HOST/bench/artifacts" --cache-registry-insecure)
fi

variant() { # SRC DEST TEXT: same code, another digest (a custom section)
	local name="prewarm-variant" payload="$3" n
	n=$(( 1 + ${#name} + ${#payload} ))
	cp "$1" "$2"
	printf "\\x00\\x$(printf %02x "$n")\\x$(printf %02x ${#name})%s%s" "$name" "$payload" >>"$2"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_ready POLICIES CACHE_DIR LOG -> sets T_READY (seconds to ready), PHASES, COMPILES; stops the server
start_ready() {
	local rp t0 t1
	rp=$(free_port)
	t0=$(date +%s.%N)
	"$BIN" serve --addr 127.0.0.1 --port 0 --readiness-probe-port "$rp" --policies "$1" --cache-dir "$2" \
		--no-watch "${registry_args[@]}" >"$3" 2>&1 &
	SRV=$!
	until curl -sf -o /dev/null "http://127.0.0.1:$rp/readiness"; do
		kill -0 "$SRV" 2>/dev/null || { echo "server failed, log:" >&2; tail -5 "$3" >&2; exit 1; }
		sleep 0.01
	done
	t1=$(date +%s.%N)
	PHASES=$(curl -sf "http://127.0.0.1:$rp/metrics" | awk -F'[{}" ]' '/^prewarm_startup_phase_seconds/ { printf "%s=%.3f ", $3, $NF }')
	COMPILES=$(curl -sf "http://127.0.0.1:$rp/metrics" | awk '/^prewarm_compiles_total/ { print $2 }')
	kill -TERM "$SRV"; wait "$SRV" || true; SRV=""
	T_READY=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# write_policies N DIR TAG -> DIR/policies.yml with N distinct modules
write_policies() {
	local n=$1 d=$2 tag=$3 i
	mkdir -p "$d"
	: >"$d/policies.yml"
	for i in $(seq 1 "$n"); do
		variant "$MOD" "$d/m$i.wasm" "$tag-$i"
		printf 'p%s:\n  module: file://%s/m%s.wasm\n  settings: %s\n' "$i" "$d" "$i" "$SETTINGS" >>"$d/policies.yml"
	done
}

echo "module: $(basename "$MOD") ($(stat -c %s "$MOD") bytes), runs: $RUNS, registry tier: $([ -n "$REG" ] && echo yes || echo no), cpus: $(nproc)"
echo
echo "| N | cold s | warm local s | warm registry s | one changed s | floor s | cold/warm-local | warm-local - floor s |"
echo "|---|---|---|---|---|---|---|---|"
echo '{}' >"$W/empty.yml"
for n in "${NS[@]}"; do
	cold=(); wl=(); wr=(); one=(); fl=()
	for r in $(seq 1 "$RUNS"); do
		tag="r$r-$RANDOM$RANDOM"
		d=$W/n$n-$tag
		write_policies "$n" "$d" "$tag"
		cache=$d/cache
		start_ready "$d/policies.yml" "$cache" "$d/cold.log"; cold+=("$T_READY"); echo "  N=$n run $r cold: ${cold[-1]} s ($PHASES compiles=$COMPILES)" >&2
		start_ready "$d/policies.yml" "$cache" "$d/wl.log"; wl+=("$T_READY"); echo "  N=$n run $r warm-local: ${wl[-1]} s ($PHASES compiles=$COMPILES)" >&2
		if [ -n "$REG" ]; then
			start_ready "$d/policies.yml" "$d/cache-empty" "$d/wr.log"; wr+=("$T_READY"); echo "  N=$n run $r warm-registry: ${wr[-1]} s ($PHASES compiles=$COMPILES)" >&2
		fi
		variant "$MOD" "$d/m1.wasm" "$tag-changed"
		start_ready "$d/policies.yml" "$cache" "$d/one.log"; one+=("$T_READY"); echo "  N=$n run $r one-changed: ${one[-1]} s ($PHASES compiles=$COMPILES)" >&2
		start_ready "$W/empty.yml" "$cache" "$d/floor.log"; fl+=("$T_READY")
		rm -rf "$d"
	done
	mc=$(median "${cold[@]}"); ml=$(median "${wl[@]}"); mo=$(median "${one[@]}"); mf=$(median "${fl[@]}")
	mr="n/a"; [ ${#wr[@]} -gt 0 ] && mr=$(median "${wr[@]}")
	ratio=$(python3 -c "print(f'{$mc / $ml:.1f}x')")
	over=$(python3 -c "print(f'{$ml - $mf:.3f}')")
	echo "| $n | $mc | $ml | $mr | $mo | $mf | $ratio | $over |"
done
