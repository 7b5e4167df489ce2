#!/usr/bin/env bash
# Real OCI registries for tests and benchmarks: Debian's CNCF distribution (docker-registry)
# on loopback, each with its own free port and data directory, installed if missing.
#
# Command use:
#   registry.sh start DIR [--tls] [--auth] [--silly]   start one instance, data in DIR
#   registry.sh stop DIR                                stop it (and its token server)
#   . DIR/env                                           then read the settings below
# Sourced use (functions; the settings are exported into the caller):
#   . tests/lib/registry.sh
#   pw_registry_start DIR [--tls] [--auth] [--silly]
#   trap 'pw_registry_stop DIR' EXIT
#
# Options:
#   --tls    HTTPS with a throwaway CA made here (server cert for localhost and 127.0.0.1)
#   --auth   htpasswd (bcrypt) with a random throwaway user/password
#   --silly  `auth: silly` with a Bearer challenge whose realm is a small static token
#            server started here (python3; each request logged in DIR/token.log as
#            "GET <path> auth=none|basic|other", credentials never logged)
#
# Settings written to DIR/env (sourced by callers; `start` prints only the non-secret ones):
#   PW_REGISTRY_HOST           127.0.0.1:PORT
#   PW_REGISTRY_URL            http(s)://127.0.0.1:PORT
#   PW_REGISTRY_PID            the registry's pid
#   PW_REGISTRY_STORAGE        its storage root (DIR/storage/docker/registry/v2)
#   PW_REGISTRY_CA             the CA file (--tls), else empty
#   PW_REGISTRY_CERT_DIR       a directory holding ca.crt, for skopeo --cert-dir (--tls)
#   PW_REGISTRY_USER / PW_REGISTRY_PASSWORD   (--auth), else empty
#   PW_REGISTRY_DOCKER_CONFIG  a directory with config.json holding the credentials
#   PW_REGISTRY_SOURCES        a sources.yml giving the CA for the host (--tls)
#   PW_REGISTRY_TOKEN_LOG      the token server's request log (--silly)
# Startup is bounded (10 s); a port taken meanwhile is retried on another port. Safe to
# source from scripts running under `set -euo pipefail`.

_pw_reg_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_pw_reg_install() {
	command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1 &&
		command -v openssl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 &&
		command -v curl >/dev/null 2>&1 && return 0
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "registry.sh: installing docker-registry apache2-utils openssl python3 curl" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		docker-registry apache2-utils openssl python3 curl >/dev/null
}

_pw_reg_make_tls() {
	local d=$1/tls
	mkdir -p "$d" "$1/certs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=prewarm test CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		>/dev/null 2>&1 || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
		-keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" >/dev/null 2>&1 || return 1
	cp "$d/ca.crt" "$1/certs/ca.crt"
}

# pw_registry_start DIR [--tls] [--auth] [--silly]
pw_registry_start() {
	local dir=$1; shift
	[ -n "$dir" ] || { echo "registry.sh: start needs a directory" >&2; return 2; }
	local tls=0 auth=0 silly=0
	while [ $# -gt 0 ]; do
		case $1 in
		--tls) tls=1 ;;
		--auth) auth=1 ;;
		--silly) silly=1 ;;
		*) echo "registry.sh: unknown option $1" >&2; return 2 ;;
		esac
		shift
	done
	_pw_reg_install || return 1
	mkdir -p "$dir/storage" || return 1
	dir=$(cd "$dir" && pwd)
	local scheme=http user="" pass="" ca="" certdir="" tokenlog="" tokenport="" tokenpid=""
	if [ $tls = 1 ]; then
		_pw_reg_make_tls "$dir" || { echo "registry.sh: making the test CA failed" >&2; return 1; }
		scheme=https ca=$dir/tls/ca.crt certdir=$dir/certs
	fi
	if [ $auth = 1 ]; then
		user=pwtest
		pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
		htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" 2>/dev/null || return 1
	fi
	if [ $silly = 1 ]; then
		mkdir -p "$dir/token-root"
		tokenlog=$dir/token.log
		tokenport=$(_pw_reg_free_port)
		# A static token endpoint: answers every GET with a token, and logs the request line
		# and whether Basic credentials came with it (never the credentials themselves).
		cat >"$dir/token-root/server.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        a = self.headers.get("Authorization", "")
        kind = "basic" if a.startswith("Basic ") else ("other" if a else "none")
        sys.stdout.write("GET %s auth=%s\n" % (self.path, kind)); sys.stdout.flush()
        body = b'{"token":"prewarm-silly-token","expires_in":300}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
		(exec env -i PATH="$PATH" python3 "$dir/token-root/server.py" "$tokenport" >"$tokenlog" 2>&1 </dev/null) &
		tokenpid=$!
		echo "$tokenpid" >"$dir/token.pid"
		local i
		for i in $(seq 1 200); do
			if curl -s -o /dev/null "http://127.0.0.1:$tokenport/token"; then break; fi
			sleep 0.05
		done
	fi
	local attempt port rpid ok=0
	for attempt in 1 2 3 4 5; do
		port=$(_pw_reg_free_port)
		{
			echo "version: 0.1"
			echo "log: {level: info, formatter: text}"
			echo "storage:"
			echo "  filesystem: {rootdirectory: $dir/storage}"
			echo "  delete: {enabled: true}"
			echo "  maintenance: {uploadpurging: {enabled: false}}"
			echo "http:"
			echo "  addr: 127.0.0.1:$port"
			echo "  secret: prewarm-test-$RANDOM$RANDOM"
			[ $tls = 1 ] && echo "  tls: {certificate: $dir/tls/server.crt, key: $dir/tls/server.key}"
			if [ $auth = 1 ]; then
				echo "auth:"
				echo "  htpasswd: {realm: prewarm-test, path: $dir/htpasswd}"
			elif [ $silly = 1 ]; then
				echo "auth:"
				echo "  silly: {realm: \"http://127.0.0.1:$tokenport/token\", service: prewarm-test}"
			fi
		} >"$dir/config.yml"
		env -i PATH="$PATH" docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
		rpid=$!
		local i code
		for i in $(seq 1 200); do
			if ! kill -0 "$rpid" 2>/dev/null; then break; fi
			code=$(curl -s -o /dev/null -w '%{http_code}' ${ca:+--cacert "$ca"} "$scheme://127.0.0.1:$port/v2/" 2>/dev/null || true)
			if [ "$code" = 200 ] || [ "$code" = 401 ]; then ok=1; break; fi
			sleep 0.05
		done
		[ $ok = 1 ] && break
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	done
	if [ $ok != 1 ]; then
		echo "registry.sh: docker-registry did not become ready (log: $dir/registry.log)" >&2
		[ -z "$tokenpid" ] || kill "$tokenpid" 2>/dev/null || true
		return 1
	fi
	echo "$rpid" >"$dir/registry.pid"
	mkdir -p "$dir/docker"
	if [ $auth = 1 ]; then
		printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$port" \
			"$(printf '%s:%s' "$user" "$pass" | base64 -w0)" >"$dir/docker/config.json"
	else
		printf '{"auths":{}}\n' >"$dir/docker/config.json"
	fi
	chmod 600 "$dir/docker/config.json"
	if [ $tls = 1 ]; then
		printf 'source_authorities:\n  "127.0.0.1:%s":\n    - type: Path\n      path: "%s"\n' "$port" "$ca" >"$dir/sources.yml"
	else
		printf 'insecure_sources: ["127.0.0.1:%s"]\n' "$port" >"$dir/sources.yml"
	fi
	{
		echo "PW_REGISTRY_HOST=127.0.0.1:$port"
		echo "PW_REGISTRY_URL=$scheme://127.0.0.1:$port"
		echo "PW_REGISTRY_PID=$rpid"
		echo "PW_REGISTRY_STORAGE=$dir/storage/docker/registry/v2"
		echo "PW_REGISTRY_CA=$ca"
		echo "PW_REGISTRY_CERT_DIR=$certdir"
		echo "PW_REGISTRY_DOCKER_CONFIG=$dir/docker"
		echo "PW_REGISTRY_SOURCES=$dir/sources.yml"
		echo "PW_REGISTRY_TOKEN_LOG=$tokenlog"
	} >"$dir/env.public"
	{
		sed 's/^/export /' "$dir/env.public"
		echo "export PW_REGISTRY_USER=$user"
		echo "export PW_REGISTRY_PASSWORD=$pass"
	} >"$dir/env"
	chmod 600 "$dir/env"
	# shellcheck disable=SC1091
	. "$dir/env"
}

# pw_registry_stop DIR: stops the registry and the token server started in DIR (idempotent).
pw_registry_stop() {
	local dir=$1 f pid
	[ -n "$dir" ] || return 0
	for f in registry.pid token.pid; do
		[ -f "$dir/$f" ] || continue
		pid=$(cat "$dir/$f")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			local i
			for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
			if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
		fi
		rm -f "$dir/$f"
	done
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	shift || true
	case $cmd in
	start)
		pw_registry_start "$@" || exit 1
		cat "${1%/}/env.public"
		;;
	stop) pw_registry_stop "${1:-}" ;;
	*) echo "usage: registry.sh start DIR [--tls] [--auth] [--silly] | stop DIR" >&2; exit 2 ;;
	esac
fi
