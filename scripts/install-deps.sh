#!/usr/bin/env bash
# Installs the Debian 12 packages that Prewarm needs. Idempotent; uses sudo when not root.
#   scripts/install-deps.sh          build + run: compilers, libraries, wabt, tcc, the wasm32
#                                    target that builds the example policies
#   scripts/install-deps.sh --test   the above and what only the tests use: the CNCF registry,
#                                    skopeo, htpasswd, openssl, curl, git, python3, buildah,
#                                    debootstrap, kubectl, node + npm
#   scripts/install-deps.sh --binary what building the binary alone needs (the container
#                                    image's build stage: no tests, no quick compiler)
# Prints one line saying what it installs (nothing when all is there); apt's own output goes
# to a log file that is shown only if apt fails. Set PREWARM_SKIP_APT=1 to skip (offline).
set -euo pipefail
[ "${PREWARM_SKIP_APT:-0}" = 1 ] && exit 0
pkgs=(
  # build
  build-essential cmake pkg-config ca-certificates
  libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libzstd-dev libmicrohttpd-dev
  libpcre2-dev   # the Rego regex builtins (RE2 syntax checked on top of PCRE2)
  wabt           # wasm2c (the engine's translator; `prewarm engine` describes it)
)
if [ "${1:-}" != --binary ]; then
  pkgs+=(
    # the engine's compilers (gcc: the optimized tier; tcc + binutils ld: the quick tier)
    gcc clang lld tcc
    # the example and test policies written in C: clang's wasm32 target
    wasi-libc libclang-rt-14-dev-wasm32 libclang-rt-14-dev
    # talking to the example server
    curl
  )
fi
if [ "${1:-}" = --test ]; then
  # tests: the real registry, an independent OCI client, htpasswd, certificates
  pkgs+=(docker-registry skopeo apache2-utils openssl git python3)
  # the container image (scripts/build-image.sh, tests/image): buildah builds and runs it,
  # debootstrap makes its base where no registry serves debian:bookworm-slim
  pkgs+=(buildah debootstrap)
  # deploy/ (tests/deploy): kubectl's kustomize and node + npm for the schema validators; only
  # when none is there (another vendor's kubectl or nodejs package would conflict with Debian's)
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
  command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log=$(mktemp "${TMPDIR:-/tmp}/prewarm-apt.XXXXXX.log")
t0=$(date +%s)
echo "prewarm: installing ${#missing[@]} Debian packages (${missing[*]}), log in $log" >&2
# DEBIAN_FRONTEND + no apt-utils: debconf's "delaying package configuration" lines go to the log
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "prewarm: apt-get failed; its last lines:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
echo "prewarm: packages installed in $(( $(date +%s) - t0 )) s" >&2
rm -f "$log"
