#!/usr/bin/env bash
# Builds Prewarm into build/ (or $1) with CMake. Extra args go to cmake's configure step.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}; shift || true
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=${PREWARM_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
