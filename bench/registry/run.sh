#!/usr/bin/env bash
# bench/registry: start-to-loaded per corpus module from the registry tier (empty local dir)
# vs the local tier vs compiling, side by side (bench_registry.c). The floor of the registry
# path is download (loopback) + verify + dlopen.
#
#   PREWARM_CORPUS=DIR bash bench/registry/run.sh [BUILD_DIR]
#   settings: MAX_KIB=400 (skip bigger modules: compiles cost ~30 s per MB of code), ROUNDS=5
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
corpus=${PREWARM_CORPUS:-}
[ -n "$corpus" ] && [ -d "$corpus" ] || { echo "set PREWARM_CORPUS to a folder of .wasm modules" >&2; exit 2; }
max=${MAX_KIB:-400} rounds=${ROUNDS:-5}
cmake --build "$build" --target bench_registry >/dev/null
. "$top/tests/lib/registry.sh"
tmp=$(mktemp -d)
trap 'pw_registry_stop "$tmp/r"; rm -rf "$tmp"' EXIT
pw_registry_start "$tmp/r"
mods=()
while IFS= read -r f; do mods+=("$f"); done < <(find "$corpus" -name '*.wasm' -size -"$((max + 1))"k | sort)
echo "registry: docker-registry over loopback HTTP; $rounds rounds (medians); $(nproc) cores; modules <= $max KiB"
nice -n 5 "$build/bench_registry" "$PW_REGISTRY_HOST/bench-cache" "$rounds" "${mods[@]}"
