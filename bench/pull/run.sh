#!/usr/bin/env bash
# bench/pull: OCI pull throughput of a large blob over loopback HTTP and HTTPS (+ basic auth),
# prewarm pull vs the raw curl floor (curl to /dev/null, no hashing), side by side; and the
# time to pull N policies in parallel vs one by one (pw_oci_pull_many).
#
#   bash bench/pull/run.sh [BUILD_DIR]     (default build/; SIZE_MIB=64 ROUNDS=5 N=16 PAR=8)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
size=${SIZE_MIB:-64} rounds=${ROUNDS:-5} n=${N:-16} par=${PAR:-8}
cmake --build "$build" --target prewarm bench_pull >/dev/null
bin=$build/prewarm
. "$top/tests/lib/registry.sh"
tmp=$(mktemp -d)
trap 'pw_registry_stop "$tmp/http"; pw_registry_stop "$tmp/https"; rm -rf "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

{ printf '\0asm\1\0\0\0'; head -c $((size * 1024 * 1024 - 8)) /dev/urandom; } >"$tmp/big.wasm"
digest=sha256:$(sha256sum "$tmp/big.wasm" | cut -d' ' -f1)
echo "blob: $size MiB, $rounds rounds, medians; $(nproc) cores"
for mode in http https; do
	if [ $mode = http ]; then pw_registry_start "$tmp/$mode"; else pw_registry_start "$tmp/$mode" --tls --auth; fi
	auth=(); [ $mode = https ] && auth=(-u "$PW_REGISTRY_USER:$PW_REGISTRY_PASSWORD" --cacert "$PW_REGISTRY_CA")
	"$bin" push "$tmp/big.wasm" "$PW_REGISTRY_HOST/bench/big:v1" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
		--sources-path "$PW_REGISTRY_SOURCES" >/dev/null 2>&1
	url=$PW_REGISTRY_URL/v2/bench/big/blobs/$digest
	: >"$tmp/curl.t"; : >"$tmp/pw.t"; : >"$tmp/curlsha.t"
	for r in $(seq "$rounds"); do
		curl -s -o /dev/null -w '%{time_total}\n' "${auth[@]}" "$url" >>"$tmp/curl.t"
		s=$(date +%s.%N)
		curl -s -o "$tmp/c.bin" "${auth[@]}" "$url" && sha256sum "$tmp/c.bin" >/dev/null && sync "$tmp/c.bin"
		e=$(date +%s.%N)
		awk -v a="$e" -v b="$s" 'BEGIN { print a - b }' >>"$tmp/curlsha.t"
		rm -f "$tmp/c.bin"
		rm -f "$tmp/out.wasm"
		s=$(date +%s.%N)
		"$bin" pull "$PW_REGISTRY_HOST/bench/big:v1" -o "$tmp/out.wasm" --docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" \
			--sources-path "$PW_REGISTRY_SOURCES" >/dev/null 2>&1
		e=$(date +%s.%N)
		awk -v a="$e" -v b="$s" 'BEGIN { print a - b }' >>"$tmp/pw.t"
	done
	tc=$(median <"$tmp/curl.t"); tp=$(median <"$tmp/pw.t"); ts=$(median <"$tmp/curlsha.t")
	awk -v m=$mode -v s="$size" -v c="$ts" 'BEGIN { printf "%-5s curl to a file + sha256sum + sync: %.3f s (%.0f MB/s)\n", m, c, s * 1.048576 / c }' 
	awk -v m=$mode -v s="$size" -v c="$tc" -v p="$tp" 'BEGIN { printf "%-5s curl floor %.3f s (%.0f MB/s)   prewarm pull %.3f s (%.0f MB/s: manifest + blob + sha256 + fsync + rename, process start included)   ratio %.2f\n", m, c, s * 1.048576 / c, p, s * 1.048576 / p, p / c }' 
	"$build/bench_pull" "$PW_REGISTRY_HOST" "$PW_REGISTRY_SOURCES" "$PW_REGISTRY_DOCKER_CONFIG" "$n" 256 "$rounds" "$par" |
		sed "s/^/$mode  /"
done
