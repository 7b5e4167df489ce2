#!/usr/bin/env bash
# Runs the Prewarm container image the way kubewarden-controller runs a policy server, with
# buildah (no daemon; podman cannot start containers on these machines), for tests/image and
# bench/image. Sourced:
#   . tests/lib/image.sh
#   pw_image_storage DIR            a buildah storage of the caller's own under DIR (overlay,
#                                   else vfs); exports CONTAINERS_STORAGE_CONF; 1 and
#                                   PW_IMAGE_WHY when neither works
#   pw_image_controller_files DIR REGISTRY_HOST CA_FILE DOCKER_CONFIG_DIR MODULE_REF
#                                   what the controller mounts, under DIR: pki/ (a certificate
#                                   for 127.0.0.1), config/policies.yml (one policy
#                                   "privileged" = MODULE_REF, written as the controller
#                                   writes it), docker/config.json, sources/sources.yml (the
#                                   registry's CA as sourceAuthorities)
#   pw_image_serve IMAGE DIR TMPDIR [ENV=VALUE...]
#                                   the image's default command (its entrypoint + cmd) in a
#                                   fresh container as user 65532, with the controller's
#                                   environment and mounts from DIR and TMPDIR as /tmp; sets
#                                   PW_IMAGE_PGID, PW_IMAGE_PORT, PW_IMAGE_RPORT; the log in
#                                   TMPDIR.log. Returns at once: poll pw_image_ready.
#   pw_image_ready                  0 when /readiness answers 200; 2 when the server is gone
#   pw_image_stop                   SIGTERM to the server's process group, then SIGKILL
#   pw_image_cleanup                stops the server, removes the containers made here
# Safe under `set -euo pipefail`.

PW_IMAGE_PGID=""
PW_IMAGE_CTRS=()

pw_image_storage() {
	local dir=$1 driver c
	PW_IMAGE_WHY=""
	mkdir -p "$dir"
	export CONTAINERS_STORAGE_CONF=$dir/storage.conf
	for driver in overlay vfs; do
		printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' \
			"$driver" "$dir/storage-$driver" "$dir/run-$driver" >"$CONTAINERS_STORAGE_CONF"
		if c=$(buildah from --quiet scratch 2>"$dir/from.err") && buildah rm "$c" >/dev/null 2>&1; then
			PW_IMAGE_WHY=""
			return 0
		fi
		PW_IMAGE_WHY="$PW_IMAGE_WHY $driver: $(tr '\n' ' ' <"$dir/from.err")"
	done
	return 1
}

pw_image_controller_files() {
	local dir=$1 host=$2 ca=$3 docker=$4 module=$5
	mkdir -p "$dir/pki" "$dir/config" "$dir/docker" "$dir/sources"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=policy-server-prewarm" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$dir/pki/tls.key" -out "$dir/pki/tls.crt" >/dev/null 2>&1 || return 1
	cp "$docker/config.json" "$dir/docker/config.json"
	chmod 644 "$dir/pki/tls.key" "$dir/docker/config.json"   # a Secret volume's default mode
	# Go's json.Marshal output, as the controller writes policies.yml and sources.yml
	printf '{"privileged":{"namespacedName":{"Namespace":"","Name":"privileged"},"module":"%s","policyMode":"protect","allowedToMutate":false,"settings":null,"hostCapabilities":["*"]}}' \
		"$module" >"$dir/config/policies.yml"
	python3 -c 'import json, sys; print(json.dumps({"source_authorities": {sys.argv[1]: [{"type": "Data", "data": open(sys.argv[2]).read()}]}}))' \
		"$host" "$ca" >"$dir/sources/sources.yml"
}

_pw_image_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pw_image_serve() {
	local image=$1 dir=$2 tmp=$3 c cmdline
	shift 3
	c=$(buildah from --quiet --pull=false "$image") || return 1
	PW_IMAGE_CTRS+=("$c")
	cmdline=$(buildah inspect --type image "$image" | python3 -c 'import json, sys; c = json.load(sys.stdin)["OCIv1"]["config"]; print(" ".join((c.get("Entrypoint") or []) + (c.get("Cmd") or [])))') || return 1
	PW_IMAGE_PORT=$(_pw_image_free_port)
	PW_IMAGE_RPORT=$(_pw_image_free_port)
	mkdir -p "$tmp"
	chmod 1777 "$tmp"   # an emptyDir: writable by the image's user
	local envs=() e
	for e in "$@"; do envs+=(-e "$e"); done
	# shellcheck disable=SC2086  # the command line is the image's words
	setsid buildah run --isolation chroot --user 65532:65532 \
		-v "$dir/pki:/pki:ro" -v "$dir/config:/config:ro" -v "$tmp:/tmp" \
		-v "$dir/docker:/home/kubewarden/.docker:ro" -v "$dir/sources:/sources:ro" \
		-e KUBEWARDEN_CERT_FILE=/pki/tls.crt -e KUBEWARDEN_KEY_FILE=/pki/tls.key \
		-e KUBEWARDEN_PORT="$PW_IMAGE_PORT" -e KUBEWARDEN_READINESS_PROBE_PORT="$PW_IMAGE_RPORT" \
		-e KUBEWARDEN_POLICIES_DOWNLOAD_DIR=/tmp -e KUBEWARDEN_POLICIES=/config/policies.yml \
		-e KUBEWARDEN_SIGSTORE_CACHE_DIR=/tmp/sigstore-data \
		-e KUBEWARDEN_DOCKER_CONFIG_JSON_PATH=/home/kubewarden/.docker \
		-e KUBEWARDEN_SOURCES_PATH=/sources/sources.yml \
		-e KUBEWARDEN_BIND_ADDRESS=127.0.0.1 "${envs[@]}" \
		"$c" -- $cmdline >"$tmp.log" 2>&1 </dev/null &
	PW_IMAGE_PGID=$!
}

pw_image_ready() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PW_IMAGE_RPORT/readiness" 2>/dev/null || true)
	[ "$code" = 200 ] && return 0
	kill -0 "$PW_IMAGE_PGID" 2>/dev/null || return 2
	return 1
}

pw_image_stop() {
	[ -n "$PW_IMAGE_PGID" ] || return 0
	kill -TERM -- "-$PW_IMAGE_PGID" 2>/dev/null || true
	local i
	for i in $(seq 1 100); do kill -0 "$PW_IMAGE_PGID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$PW_IMAGE_PGID" 2>/dev/null || true
	wait "$PW_IMAGE_PGID" 2>/dev/null || true
	PW_IMAGE_PGID=""
}

pw_image_cleanup() {
	pw_image_stop
	local c
	for c in "${PW_IMAGE_CTRS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
	PW_IMAGE_CTRS=()
}
