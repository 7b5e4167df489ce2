#!/usr/bin/env bash
# Builds the Prewarm container image of this tree with buildah (no Docker daemon) from
# Containerfile, and prints the image reference and its size:
#   scripts/build-image.sh IMAGE_REF            e.g. localhost/prewarm:0.1.0
# The base is debian:bookworm-slim when a registry serves it. Where none can be reached (a
# machine with only a Debian mirror), the script makes the base itself: a debootstrapped
# Debian 12 minbase from the apt mirror this machine is configured with (read from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list now, never stored in the repo),
# with this machine's apt sources inside, imported into buildah as localhost/prewarm-base.
# The debootstrapped tree is kept as a tarball (PREWARM_IMAGE_CACHE) so the next build skips
# the debootstrap.
#
# Settings (environment):
#   PREWARM_IMAGE_VARIANT   full (default: with gcc, the optimized tier compiles in the
#                           background) | quick (wasm2c + tcc only; optimized code from the
#                           cache). BENCHMARKS.md "Image" compares the two.
#   PREWARM_IMAGE_BASE      the base image to build on (skips the registry probe and the
#                           debootstrap), e.g. a mirror's debian:bookworm-slim
#   PREWARM_IMAGE_CACHE     where the base tarball is kept (default: build/image-cache)
#   PREWARM_IMAGE_SOURCE    label org.opencontainers.image.source (default: git's origin URL)
#   CONTAINERS_STORAGE_CONF buildah's storage.conf (the tests use a storage of their own)
# Needs root (debootstrap, buildah's chroot isolation) and the packages buildah and
# debootstrap (scripts/install-deps.sh --test installs them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: scripts/build-image.sh IMAGE_REF   (e.g. localhost/prewarm:0.1.0)" >&2; exit 2; }
[ $# -eq 1 ] && [ -n "$1" ] && [ "${1#-}" = "$1" ] || usage
ref=$1
variant=${PREWARM_IMAGE_VARIANT:-full}
case $variant in full | quick) ;; *) echo "build-image: PREWARM_IMAGE_VARIANT must be full or quick, not '$variant'" >&2; exit 2 ;; esac
cache=${PREWARM_IMAGE_CACHE:-$top/build/image-cache}
suite=bookworm
slim=docker.io/library/debian:bookworm-slim
local_base=localhost/prewarm-base:$suite-minbase
pull_timeout=120   # seconds for the base image's pull: a registry that answers slowly counts as none
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool not found (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image: needs root (debootstrap and buildah's chroot isolation)" >&2; exit 1; }
step() { echo "build-image: $*"; }

# apt_mirror: the first Debian archive URI of this machine's apt configuration
apt_mirror() {
  local m=""
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {print $i; exit}}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  printf '%s' "$m"
}

# make_base_tarball TAR: debootstraps a Debian 12 minbase, trims it like the slim image
# (no docs but copyright files, no man pages, no locales, empty apt lists) and gives it this
# machine's apt sources, then tars it (numeric owners) into TAR.
make_base_tarball() {
  local tar=$1 mirror root log
  mirror=$(apt_mirror)
  [ -n "$mirror" ] || { echo "build-image: no apt mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2; return 1; }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  log=$cache/debootstrap.log
  step "debootstrapping Debian 12 minbase (log: $log)"
  if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "build-image: debootstrap failed (log: $log)" >&2
    rm -rf "$root"
    return 1
  fi
  # the same trimming as the slim image, also for packages installed later in the build
  cat >"$root/etc/dpkg/dpkg.cfg.d/prewarm-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$root/etc/apt/apt.conf.d/prewarm-slim" <<'EOF'
APT::Install-Recommends "false";
Acquire::Languages "none";
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  # this machine's apt sources replace debootstrap's one-line sources.list
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
  chroot "$root" apt-get clean >/dev/null 2>&1 || true
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* \
    "$root"/var/cache/debconf/*-old "$root"/etc/hostname "$root"/etc/resolv.conf
  tar -C "$root" --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
    -cf "$tar.part" .
  mv "$tar.part" "$tar"
  rm -rf "$root"
}

# pick_base: prints the base image to build FROM
pick_base() {
  if [ -n "${PREWARM_IMAGE_BASE:-}" ]; then printf '%s' "$PREWARM_IMAGE_BASE"; return; fi
  if buildah inspect --type image "$slim" >/dev/null 2>&1 || timeout "$pull_timeout" buildah pull -q "$slim" >/dev/null 2>&1; then
    printf '%s' "$slim"; return
  fi
  step "no registry serves $slim: building the base from this machine's Debian mirror" >&2
  mkdir -p "$cache"
  local tar arch
  arch=$(dpkg --print-architecture)
  tar=$cache/debian-$suite-minbase-$arch.tar
  [ -f "$tar" ] || make_base_tarball "$tar" >&2
  local sum
  sum=$(sha256sum "$tar" | cut -c1-16)
  # the imported base is reused while the tarball is the same
  if [ "$(buildah inspect --type image --format '{{index .ImageAnnotations "prewarm.base.tarball"}}' "$local_base" 2>/dev/null || true)" != "$sum" ]; then
    step "importing $(basename "$tar") as $local_base" >&2
    local ctr
    ctr=$(buildah from --quiet scratch)
    buildah add --quiet "$ctr" "$tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd /bin/bash --annotation "prewarm.base.tarball=$sum" \
      --label "org.opencontainers.image.description=Debian 12 minbase (debootstrap)" "$ctr"
    buildah commit --quiet --rm "$ctr" "$local_base" >/dev/null
  fi
  printf '%s' "$local_base"
}

base=$(pick_base)
version=$(sed -n 's/^project(prewarm VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
revision=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
source=${PREWARM_IMAGE_SOURCE:-$(git -C "$top" remote get-url origin 2>/dev/null || true)}
case $source in *://*) ;; *) source=unknown ;; esac
step "building $ref ($variant variant) on $base"
t0=$(date +%s)
log=$(mktemp "${TMPDIR:-/tmp}/prewarm-image.XXXXXX.log")
if ! buildah bud --isolation chroot --pull=false --layers \
  -f "$top/Containerfile" --target "$variant" \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
  --build-arg "SOURCE=$source" --build-arg "REVISION=$revision" \
  -t "$ref" "$top" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "build-image: buildah bud failed (log: $log)" >&2
  exit 1
fi
rm -f "$log"
# the labels again on the result: buildah's layer cache (--layers) reuses a LABEL step whose
# build args changed, so a cached build would keep an older revision
ctr=$(buildah from --quiet --pull=false "$ref")
buildah config --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.source=$source" \
  --label "org.opencontainers.image.revision=$revision" "$ctr"
buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
step "built $ref in $(($(date +%s) - t0)) s, $(buildah images --format '{{.Size}}' "$ref" 2>/dev/null || echo "?") uncompressed"
