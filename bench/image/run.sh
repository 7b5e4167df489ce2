#!/usr/bin/env bash
# bench/image: the two image variants side by side (Containerfile targets `full`, with gcc,
# and `quick`, wasm2c + tcc only): their sizes and their start times when run as
# kubewarden-controller runs a policy server (tests/lib/image.sh: the image's default command
# through `buildah run --isolation chroot`, the controller's environment and mounts, one
# policy pulled from a local registry over TLS + auth), each measured RUNS times (median):
#   cold          empty /tmp (a new pod), empty registry tier: fetch + quick compile
#   to-optimized  the same start until the policy runs on optimized code (full: gcc in the
#                 background; quick: never, n/a)
#   warm-local    /tmp kept from the cold run (a restarted container): local cache hit
#   warm-registry empty /tmp, the registry tier holding the optimized artifact the full
#                 variant published (a new pod of a warm cluster)
# Time to ready: from the start of `buildah from` + `buildah run` to the first 200 of GET
# /readiness (polled every 10 ms); in brackets from the server's own start (its
# prewarm_start_time_seconds: after the toolchain probes) to ready; floor: the same container
# running /bin/true (buildah's share, which a kubelet's container start replaces). Sizes: compressed (the sum of the
# pushed layers: what a node pulls) and uncompressed (buildah's image size).
#
# usage: bench/image/run.sh     env: RUNS (default 3), BENCH_MODULE (default the build's
#   fixtures/server_privileged.wasm; e.g. a corpus policy), PREWARM_BIN (default build/prewarm,
#   used to push the policy). Needs root, buildah, debootstrap, skopeo; builds the variants
#   with scripts/build-image.sh into build/image-test (the image test's storage and base
#   cache). Output: a Markdown table on stdout (for BENCHMARKS.md); run it with `nice`.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREWARM_BIN:-$top/build/prewarm}
MOD=${BENCH_MODULE:-$(dirname "$BIN")/fixtures/server_privileged.wasm}
RUNS=${RUNS:-3}
[ -x "$BIN" ] || { echo "no $BIN: build first (scripts/build.sh)" >&2; exit 1; }
[ -f "$MOD" ] || { echo "no module $MOD" >&2; exit 1; }
. "$top/tests/lib/image.sh"
. "$top/tests/lib/registry.sh"
W=$(mktemp -d "$top/build/pw-bench-image.XXXXXX")
REG=$W/registry
cleanup() { pw_image_cleanup; pw_registry_stop "$REG"; rm -rf "$W"; }
trap cleanup EXIT
pw_image_storage "$top/build/image-test" || { echo "buildah storage:$PW_IMAGE_WHY" >&2; exit 1; }
export PREWARM_IMAGE_CACHE=$top/build/image-cache
for v in full quick; do
	PREWARM_IMAGE_VARIANT=$v bash "$top/scripts/build-image.sh" "localhost/prewarm-bench:$v" >&2
done
pw_registry_start "$REG" --tls --auth >/dev/null
creds=(--cert-dir "$PW_REGISTRY_CERT_DIR" --creds "$PW_REGISTRY_USER:$PW_REGISTRY_PASSWORD")
"$BIN" push "$MOD" "registry://$PW_REGISTRY_HOST/policies/bench:v1" \
	--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES" >/dev/null
pw_image_controller_files "$W" "$PW_REGISTRY_HOST" "$PW_REGISTRY_CA" "$PW_REGISTRY_DOCKER_CONFIG" \
	"registry://$PW_REGISTRY_HOST/policies/bench:v1"

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

# start VARIANT TMP ENV... -> T_READY; the server keeps running
start() {
	local v=$1 tmp=$2 t0 rc
	shift 2
	t0=$(now)
	pw_image_serve "localhost/prewarm-bench:$v" "$W" "$tmp" "$@"
	T0=$t0
	while :; do
		rc=0; pw_image_ready || rc=$?
		[ $rc = 0 ] && break
		[ $rc = 2 ] && { echo "server failed:" >&2; tail -5 "$tmp.log" >&2; exit 1; }
		sleep 0.01
	done
	local t1 started
	t1=$(now)
	# the server's own part: from its process start (the metric) to ready
	started=$(curl -s "http://127.0.0.1:$PW_IMAGE_RPORT/metrics" | awk '/^prewarm_start_time_seconds/ {print $2}')
	T_READY=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
	T_PROC=$(awk -v a="$started" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
}
# to_optimized -> T_OPT: seconds from the start until the policy runs on optimized code
to_optimized() {
	local i
	for i in $(seq 1 60000); do
		curl -s "http://127.0.0.1:$PW_IMAGE_RPORT/metrics" | grep -q 'prewarm_policy_tier{policy="privileged",tier="optimized"} 1' && break
		sleep 0.01
	done
	T_OPT=$(since "$T0")
}

# the warm cluster's registry tier: the full variant publishes the optimized artifact once
start full "$W/prepare" "PREWARM_CACHE_REGISTRY=$PW_REGISTRY_HOST/bench/cache-shared"
to_optimized
for i in $(seq 1 500); do
	curl -s "http://127.0.0.1:$PW_IMAGE_RPORT/metrics" | grep -q 'prewarm_cache_puts_total{tier="registry"} [1-9]' && break
	sleep 0.01
done
pw_image_stop

# floor VARIANT -> T_FLOOR: a container of the image running /bin/true (buildah's part of a start)
floor() {
	local t0 c
	t0=$(now)
	c=$(buildah from --quiet --pull=false "localhost/prewarm-bench:$1")
	buildah run --isolation chroot --user 65532:65532 "$c" -- /bin/true
	T_FLOOR=$(since "$t0")
	buildah rm "$c" >/dev/null
}

echo "module: $(basename "$MOD") ($(stat -c %s "$MOD") bytes), runs: $RUNS, cpus: $(nproc)"
echo
echo "Each start: seconds from the start of \`buildah from\` + \`buildah run\` to ready (in brackets: from"
echo "the server's own start, its prewarm_start_time_seconds, to ready); floor: the same container"
echo "running /bin/true."
echo
echo "| variant | compressed MiB | uncompressed MiB | floor s | cold s | cold to optimized s | warm local s | warm registry s |"
echo "|---|---|---|---|---|---|---|---|"
for v in full quick; do
	buildah push --quiet "${creds[@]}" "localhost/prewarm-bench:$v" "docker://$PW_REGISTRY_HOST/prewarm:$v" >/dev/null
	comp=$(skopeo inspect "${creds[@]}" --raw "docker://$PW_REGISTRY_HOST/prewarm:$v" |
		python3 -c 'import json, sys; print("%.1f" % (sum(l["size"] for l in json.load(sys.stdin)["layers"]) / 1048576))')
	c=$(buildah from --quiet --pull=false "localhost/prewarm-bench:$v")
	unc=$(du -sb "$(buildah mount "$c")" | awk '{printf "%.1f", $1 / 1048576}')
	buildah umount "$c" >/dev/null; buildah rm "$c" >/dev/null
	cold=(); opt=(); wl=(); wr=(); coldc=(); wlc=(); wrc=(); fl=()
	for r in $(seq 1 "$RUNS"); do
		reg_repo=bench/cache-$v-$r-$RANDOM
		tmp=$W/$v-$r
		start "$v" "$tmp" "PREWARM_CACHE_REGISTRY=$PW_REGISTRY_HOST/$reg_repo"; cold+=("$T_PROC"); coldc+=("$T_READY")
		if [ "$v" = full ]; then to_optimized; opt+=("$T_OPT"); fi
		pw_image_stop
		start "$v" "$tmp" "PREWARM_CACHE_REGISTRY=$PW_REGISTRY_HOST/$reg_repo"; wl+=("$T_PROC"); wlc+=("$T_READY"); pw_image_stop
		# a new pod of a cluster whose registry holds the optimized artifact (published by full)
		start "$v" "$W/$v-$r-new" "PREWARM_CACHE_REGISTRY=$PW_REGISTRY_HOST/bench/cache-shared"; wr+=("$T_PROC"); wrc+=("$T_READY"); pw_image_stop
		echo "  $v run $r: cold ${cold[-1]} s (${coldc[-1]}), ${opt:+to optimized ${opt[-1]} s, }warm local ${wl[-1]} s (${wlc[-1]}), warm registry ${wr[-1]} s (${wrc[-1]})" >&2
		floor "$v"; fl+=("$T_FLOOR")
		rm -rf "$tmp" "$tmp.log" "$W/$v-$r-new" "$W/$v-$r-new.log"
	done
	mo="n/a"; [ ${#opt[@]} -gt 0 ] && mo=$(median "${opt[@]}")
	echo "| $v | $comp | $unc | $(median "${fl[@]}") | $(median "${coldc[@]}") ($(median "${cold[@]}")) | $mo | $(median "${wlc[@]}") ($(median "${wl[@]}")) | $(median "${wrc[@]}") ($(median "${wr[@]}")) |"
done
