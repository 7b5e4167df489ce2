#!/usr/bin/env bash
# The container image, built and run as kubewarden-controller runs a policy server:
#   1. scripts/build-image.sh builds both variants (full: with gcc; quick: wasm2c + tcc
#      only) on a debootstrapped Debian 12 base (its tarball cached in the build tree:
#      PREWARM_BUILD_DIR/image-cache) into a buildah storage of the test's own;
#   2. buildah pushes them to the test registry (TLS + htpasswd) and skopeo inspects them:
#      OCI labels (source, version, revision, licenses), a numeric non-root user, entrypoint
#      and command `prewarm serve`, the environment keeping every write under /tmp, and the
#      size of each (printed; the quick variant is the smaller);
#   3. the image's default command (its entrypoint + cmd, read from the pushed config) runs
#      inside the image's file system (`buildah run --isolation chroot`, as user 65532) with
#      the controller's environment and mounts: /pki (the certificate), /config/policies.yml
#      as the controller writes it, /tmp an empty dir, /home/kubewarden/.docker (its
#      imagePullSecret), /sources/sources.yml (sourceAuthorities): it pulls the policy from the
#      test registry, compiles it inside the image on the quick tier, answers AdmissionReviews
#      over HTTPS (a privileged Pod rejected, an ordinary one accepted), and the full variant
#      moves the policy to optimized code compiled by its gcc and publishes it to the registry
#      cache tier; the quick variant, with a fresh /tmp and the same registry tier, then loads
#      that optimized artifact (its pinned engine description is the full image's) and
#      compiles nothing.
# Slow (debootstrap, apt in the build): ctest label `image`, out of the ASan pass. Skips with
# a message where buildah cannot work (not root, no buildah/debootstrap, no usable storage
# driver, no chroot run) or the apt mirror cannot be reached.
set -euo pipefail
: "${PREWARM_SOURCE_DIR:?PREWARM_SOURCE_DIR not set (run through ctest)}"
: "${PREWARM_BUILD_DIR:?PREWARM_BUILD_DIR not set (run through ctest)}"
: "${PREWARM_BIN:?}" "${PREWARM_FIXTURES:?}"
src=$PREWARM_SOURCE_DIR
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; [ -n "${LOG:-}" ] && [ -f "$LOG" ] && { echo "--- log ($LOG):" >&2; tail -n 30 "$LOG" >&2; }; exit 1; }
ok() { echo "ok: $*"; }
[ "$(id -u)" -eq 0 ] || skip "the image test needs root (debootstrap, buildah's chroot isolation)"
for t in buildah debootstrap skopeo openssl curl python3; do
	command -v $t >/dev/null || skip "$t not installed (scripts/install-deps.sh --test)"
done
W=$PREWARM_BUILD_DIR/image-test
mkdir -p "$W"
T=$(mktemp -d "$W/run.XXXXXX")
REG=""
. "$src/tests/lib/image.sh"
. "$src/tests/lib/registry.sh"
cleanup() {
	pw_image_cleanup
	[ -n "$REG" ] && pw_registry_stop "$REG"
	[ "${PREWARM_KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
pw_image_storage "$W" || skip "buildah has no usable storage driver here:$PW_IMAGE_WHY"
# and it can run a command in a chroot container (a rootfs of /bin/true and its libraries)
mkdir -p "$T/probe/bin"
cp /bin/true "$T/probe/bin/true"
for lib in $(ldd /bin/true | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}'); do
	mkdir -p "$T/probe$(dirname "$lib")"
	cp -L "$lib" "$T/probe$lib"
done
c=$(buildah from --quiet scratch)
PW_IMAGE_CTRS+=("$c")
buildah copy --quiet "$c" "$T/probe" / >/dev/null
buildah run --isolation chroot "$c" -- /bin/true 2>"$T/run.err" ||
	skip "buildah run --isolation chroot does not work here: $(tr '\n' ' ' <"$T/run.err")"

# 1. build both variants
export PREWARM_IMAGE_CACHE=$PREWARM_BUILD_DIR/image-cache
export PREWARM_IMAGE_SOURCE=https://prewarm.invalid/source   # what the label must then say
for v in full quick; do
	LOG=$T/build-$v.log
	if ! PREWARM_IMAGE_VARIANT=$v bash "$src/scripts/build-image.sh" "localhost/prewarm-test:$v" >"$LOG" 2>&1; then
		if grep -q "debootstrap failed" "$LOG" &&
			grep -q -i "couldn't download\|failed to download\|could not resolve\|temporary failure" "$PREWARM_IMAGE_CACHE/debootstrap.log" 2>/dev/null; then
			skip "the apt mirror cannot be reached: $(grep -i -m1 "download\|resolve\|temporary" "$PREWARM_IMAGE_CACHE/debootstrap.log")"
		fi
		cat "$LOG" >&2
		fail "scripts/build-image.sh ($v)"
	fi
	grep "build-image:" "$LOG"
done
ok "scripts/build-image.sh built both variants"

# 2. push to the test registry, inspect with skopeo
REG=$T/registry
pw_registry_start "$REG" --tls --auth >/dev/null || skip "no test registry (docker-registry)"
creds=(--cert-dir "$PW_REGISTRY_CERT_DIR" --creds "$PW_REGISTRY_USER:$PW_REGISTRY_PASSWORD")
version=$(sed -n 's/^project(prewarm VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
declare -A SIZE
for v in full quick; do
	buildah push --quiet "${creds[@]}" "localhost/prewarm-test:$v" "docker://$PW_REGISTRY_HOST/prewarm:$v" >/dev/null ||
		fail "buildah push $v"
	skopeo inspect "${creds[@]}" --config "docker://$PW_REGISTRY_HOST/prewarm:$v" >"$T/config-$v.json" ||
		fail "skopeo inspect --config $v"
	skopeo inspect "${creds[@]}" --raw "docker://$PW_REGISTRY_HOST/prewarm:$v" >"$T/manifest-$v.json" ||
		fail "skopeo inspect --raw $v"
	python3 - "$T/config-$v.json" "$T/manifest-$v.json" "$v" "$version" "$PREWARM_IMAGE_SOURCE" \
		"$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)" >"$T/check-$v.out" <<'PY' || { cat "$T/check-$v.out" >&2; fail "image config of $v"; }
import json, sys
cfg_file, man_file, variant, version, source, revision = sys.argv[1:]
c = json.load(open(cfg_file))["config"]
m = json.load(open(man_file))
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append(f"{what} is {got!r}, expected {exp!r}")
labels = c.get("Labels") or {}
want("label version", labels.get("org.opencontainers.image.version"), version)
want("label source", labels.get("org.opencontainers.image.source"), source)
want("label revision", labels.get("org.opencontainers.image.revision"), revision)
want("label licenses", labels.get("org.opencontainers.image.licenses"), "NOASSERTION")
user = c.get("User", "")
uid = user.split(":")[0]
if not uid.isdigit() or int(uid) == 0:
    bad.append(f"user {user!r} is not a numeric non-root uid (runAsNonRoot needs one)")
want("entrypoint", c.get("Entrypoint"), ["/usr/bin/prewarm"])
want("cmd", c.get("Cmd"), ["serve"])
env = dict(e.split("=", 1) for e in c.get("Env", []))
want("XDG_CACHE_HOME", env.get("XDG_CACHE_HOME"), "/tmp/cache")
want("TMPDIR", env.get("TMPDIR"), "/tmp")
want("PREWARM_OPTIMIZED_ENGINE", env.get("PREWARM_OPTIMIZED_ENGINE"),
     "/usr/share/prewarm/optimized-engine" if variant == "quick" else None)
size = sum(l["size"] for l in m["layers"])
if size <= 0:
    bad.append("no layers")
print("\n".join(bad) if bad else f"{size} {user}")
sys.exit(1 if bad else 0)
PY
	read -r SIZE[$v] user <"$T/check-$v.out"
	echo "image $v: $((SIZE[$v] / 1048576)) MiB compressed ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["layers"]))' "$T/manifest-$v.json") layers), user $user"
done
[ "${SIZE[quick]}" -lt "${SIZE[full]}" ] || fail "the quick variant (${SIZE[quick]} B) is not smaller than the full one (${SIZE[full]} B)"
ok "pushed and inspected: labels, user, entrypoint/cmd, environment, sizes"

# the quick image's pinned optimized engine is the full image's optimized engine
in_image() { # VARIANT COMMAND...: runs COMMAND inside a fresh container of the image
	local c
	c=$(buildah from --quiet --pull=false "localhost/prewarm-test:$1") || fail "buildah from $1"
	PW_IMAGE_CTRS+=("$c")
	shift
	buildah run --isolation chroot --user 65532:65532 "$c" -- "$@"
}
full_hash=$(in_image full /usr/bin/prewarm engine --tier optimized | sed -n 's/^hash: //p')
pinned_hash=$(in_image quick cat /usr/share/prewarm/optimized-engine | sed -n 's/^hash: //p')
[ -n "$full_hash" ] && [ "$full_hash" = "$pinned_hash" ] ||
	fail "the quick image's PREWARM_OPTIMIZED_ENGINE hash ($pinned_hash) is not the full image's gcc engine ($full_hash)"
ok "quick image pins the full image's optimized engine ($full_hash)"

# 3. the default command, with the controller's environment and mounts
"$PREWARM_BIN" push "$PREWARM_FIXTURES/server_privileged.wasm" "registry://$PW_REGISTRY_HOST/policies/privileged:v1" \
	--docker-config-json-path "$PW_REGISTRY_DOCKER_CONFIG" --sources-path "$PW_REGISTRY_SOURCES" >"$T/push.out" 2>&1 ||
	fail "prewarm push: $(cat "$T/push.out")"
pw_image_controller_files "$T" "$PW_REGISTRY_HOST" "$PW_REGISTRY_CA" "$PW_REGISTRY_DOCKER_CONFIG" \
	"registry://$PW_REGISTRY_HOST/policies/privileged:v1" || fail "making the controller's files"

# serve VARIANT NAME [ENV...]: the image's default command with an empty /tmp ($T/NAME-tmp),
# until ready (bounded); PORT RPORT LOG for the checks
serve() {
	local v=$1 name=$2 i rc
	shift 2
	LOG=$T/$name-tmp.log
	pw_image_serve "localhost/prewarm-test:$v" "$T" "$T/$name-tmp" KUBEWARDEN_LOG_FMT=text "$@" ||
		fail "$name: buildah from/inspect"
	PORT=$PW_IMAGE_PORT RPORT=$PW_IMAGE_RPORT
	for i in $(seq 1 1200); do
		rc=0; pw_image_ready || rc=$?
		[ $rc = 0 ] && return 0
		[ $rc = 2 ] && fail "$name: the server exited before it was ready"
		sleep 0.1
	done
	fail "$name: not ready"
}
review() { # review REQUEST.json: the AdmissionReview answer over HTTPS
	curl -s --cacert "$T/pki/tls.crt" -H 'Content-Type: application/json' \
		--data-binary "@$src/examples/requests/$1" "https://127.0.0.1:$PORT/validate/privileged"
}
answers() { # answers NAME: a privileged Pod rejected, an ordinary one accepted
	local out
	out=$(review pod-privileged.json)
	grep -q '"allowed":false' <<<"$out" && grep -q 'privileged containers are not allowed' <<<"$out" ||
		fail "$1: privileged Pod: $out"
	out=$(review pod-ok.json)
	grep -q '"allowed":true' <<<"$out" || fail "$1: ordinary Pod: $out"
}

cache_env=("PREWARM_CACHE_REGISTRY=$PW_REGISTRY_HOST/prewarm/cache")
serve full full "${cache_env[@]}"
grep -q "0 registry hits, 1 compiled, 0 reused; 1 on the quick tier" "$LOG" ||
	fail "full: the policy was not compiled on the quick tier inside the image"
grep -q "ready: module sha256:[0-9a-f]* compiled in .*quick tier" "$LOG" || fail "full: no quick compile line"
answers full
ok "full image: pulled the policy from the registry, compiled it on the quick tier, answers AdmissionReviews"
for i in $(seq 1 1200); do grep -q "tier-up: now on optimized code" "$LOG" && break; sleep 0.1; done
grep -q "tier-up: now on optimized code" "$LOG" || fail "full: no tier-up to optimized code (gcc inside the image)"
answers full-optimized
m=$(curl -s "http://127.0.0.1:$RPORT/metrics")
grep -q 'prewarm_policy_tier{policy="privileged",tier="optimized"} 1' <<<"$m" || fail "full: metrics do not say optimized: $(grep policy_tier <<<"$m")"
for i in $(seq 1 100); do grep -q 'prewarm_cache_puts_total{tier="registry"} [1-9]' <<<"$m" && break; sleep 0.1; m=$(curl -s "http://127.0.0.1:$RPORT/metrics"); done
grep -q 'prewarm_cache_puts_total{tier="registry"} [1-9]' <<<"$m" || fail "full: the optimized artifact was not published to the registry tier: $(grep cache_puts <<<"$m")"
ls "$T/full-tmp/cache/prewarm" >/dev/null 2>&1 || fail "full: no local cache under /tmp/cache/prewarm"
pw_image_stop
ok "full image: gcc inside moved the policy to optimized code and published it; its local cache is under /tmp"

serve quick quick "${cache_env[@]}"
grep -q "1 registry hits, 0 compiled, 0 reused; 0 on the quick tier" "$LOG" ||
	fail "quick: did not load the full image's optimized artifact from the registry: $(grep 'policy set built' "$LOG")"
answers quick
pw_image_stop
serve quick quick-cold
grep -q "0 registry hits, 1 compiled, 0 reused; 1 on the quick tier" "$LOG" ||
	fail "quick, no registry: not compiled on the quick tier: $(grep 'policy set built' "$LOG")"
answers quick-cold
pw_image_stop
ok "quick image: loads optimized code published by the full image; alone, serves from quick code"
echo "image: 2 variants built, pushed, inspected and run (full $((SIZE[full] / 1048576)) MiB, quick $((SIZE[quick] / 1048576)) MiB compressed)"
