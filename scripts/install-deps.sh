#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing Prewarm need.
# Idempotent; uses sudo when not root. Set PREWARM_SKIP_APT=1 to skip (offline machines).
set -euo pipefail
[ "${PREWARM_SKIP_APT:-0}" = 1 ] && exit 0
pkgs=(
  # build
  build-essential cmake pkg-config ca-certificates
  libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libzstd-dev libmicrohttpd-dev
  # the engine: translator + compilers (gcc: the optimized tier; tcc + binutils ld: the quick tier)
  wabt gcc clang lld tcc
  # test policies written in C: clang's wasm32 target
  wasi-libc libclang-rt-14-dev-wasm32 libclang-rt-14-dev
  # tests: the real registry, an independent OCI client, htpasswd, certificates, HTTP client
  docker-registry skopeo apache2-utils openssl curl git python3
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "prewarm: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
