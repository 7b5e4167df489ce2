#!/usr/bin/env bash
# TLS of `prewarm serve` as Kubewarden's policy-server does it (docs/kubewarden.md, flags and
# TLS rows), with certificates made here by openssl:
#   1. mutual TLS (--client-ca-file with two CA files): a client certificate signed by one of
#      them is served (200); no client certificate, or one signed by another CA, is refused;
#      the readiness port stays plain HTTP.
#   2. rotation while serving: the server certificate and key are replaced atomically (rename,
#      as a Kubernetes Secret's symlink swap) by ones from another CA; within a bounded poll
#      curl sees the new certificate, requests sent throughout all succeed, and the client
#      CA file is reloaded as well (a newly trusted CA is accepted).
. "$(dirname "$0")/lib.sh"
export PREWARM_TIERING=off
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }

W=$PREWARM_FIXTURES/host_wapc.wasm
[ -f "$W" ] || fail "fixture $W missing"
printf 'pol:\n  module: file://%s\n' "$W" >"$T/policies.yml"

# ca NAME: a CA key and self-signed certificate $T/NAME.{key,crt}
ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" -keyout "$T/$1.key" -out "$T/$1.crt" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
		|| fail "openssl: CA $1"
}
# leaf NAME CA KIND(server|client): a certificate signed by CA
leaf() {
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null || fail "openssl: csr $1"
	if [ "$3" = server ]; then
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/$1.ext"
	else
		printf 'extendedKeyUsage=clientAuth\n' >"$T/$1.ext"
	fi
	openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.crt" -CAkey "$T/$2.key" -CAcreateserial -days 2 \
		-extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null || fail "openssl: sign $1"
}
ca ca1; ca ca2; ca other; ca ca3
leaf server1 ca1 server
leaf server2 ca2 server
leaf client1 ca1 client
leaf client3 ca3 client
leaf intruder other client
mkdir -p "$T/pki"
cp "$T/server1.crt" "$T/pki/tls.crt"; cp "$T/server1.key" "$T/pki/tls.key"
cp "$T/ca1.crt" "$T/pki/client-ca.crt"
# a second CA file, as the controller sets two (/ca/ca.crt,/client-ca/client-ca.crt)
cp "$T/ca2.crt" "$T/pki/ca.crt"

start_server "$T/log" --policies "$T/policies.yml" --cache-dir "$T/cache" --no-watch \
	--cert-file "$T/pki/tls.crt" --key-file "$T/pki/tls.key" --client-ca-file "$T/pki/ca.crt, $T/pki/client-ca.crt"
wait_ready
grep -q 'client certificates required' "$LOG" || fail "log does not say mTLS is on"

# req CACERT [curl args]: POSTs a review over HTTPS; sets CODE ("000" when refused)
req() {
	local cacert=$1; shift
	CODE=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$cacert" "$@" -H 'Content-Type: application/json' \
		--data-binary "$(review m1 accept)" "https://127.0.0.1:$PORT/validate/pol" || true)
}
GOOD=(--cert "$T/client1.crt" --key "$T/client1.key")

# ---- 1. mutual TLS -----------------------------------------------------------------------------
req "$T/ca1.crt" "${GOOD[@]}"
[ "$CODE" = 200 ] || fail "good client certificate: HTTP $CODE $(cat "$T/out")"
grep -q '"allowed":true' "$T/out" || fail "answer: $(cat "$T/out")"
req "$T/ca1.crt"
[ "$CODE" = 000 ] || fail "no client certificate: HTTP $CODE (expected refused)"
req "$T/ca1.crt" --cert "$T/intruder.crt" --key "$T/intruder.key"
[ "$CODE" = 000 ] || fail "client certificate of another CA: HTTP $CODE (expected refused)"
grep -q -E 'client certificate refused|handshake' "$LOG" || fail "refusals not logged"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/readiness")
[ "$CODE" = 200 ] || fail "readiness (plain HTTP) with mTLS on: HTTP $CODE"
ok "mTLS: good client certificate 200, none or another CA's refused; readiness plain HTTP"

# ---- 2. rotation while serving ------------------------------------------------------------------
# a background client sends requests throughout; every one must succeed
cat "$T/ca1.crt" "$T/ca2.crt" >"$T/ca12.crt"   # curl keeps only the last --cacert
( n=0; bad=0
  while [ ! -f "$T/stop" ]; do
	c=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca12.crt" "${GOOD[@]}" \
		-H 'Content-Type: application/json' --data-binary "$(review l accept)" "https://127.0.0.1:$PORT/validate/pol" || true)
	n=$((n + 1)); [ "$c" = 200 ] || bad=$((bad + 1))
  done
  echo "$n $bad" >"$T/load.out" ) &
LOAD=$!
sleep 0.5
# atomic replacement: write beside, rename over (the key first is not needed: both renamed)
cp "$T/server2.crt" "$T/pki/tls.crt.new"; cp "$T/server2.key" "$T/pki/tls.key.new"
mv "$T/pki/tls.key.new" "$T/pki/tls.key"; mv "$T/pki/tls.crt.new" "$T/pki/tls.crt"
seen=""
for i in $(seq 1 150); do
	CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca2.crt" "${GOOD[@]}" -H 'Content-Type: application/json' \
		--data-binary "$(review r1 accept)" "https://127.0.0.1:$PORT/validate/pol" || true)
	if [ "$CODE" = 200 ]; then seen=$i; break; fi
	sleep 0.1
done
[ -n "$seen" ] || fail "the new server certificate (of ca2) never served"
# and the old one is gone: trusting only ca1 fails now
req "$T/ca1.crt" "${GOOD[@]}"
[ "$CODE" = 000 ] || fail "the old server certificate still served: HTTP $CODE"
sleep 1
touch "$T/stop"; wait "$LOAD"
read -r n bad <"$T/load.out"
[ "$n" -gt 0 ] || fail "the load loop sent nothing"
[ "$bad" = 0 ] || fail "$bad of $n requests failed during the certificate rotation"
grep -q 'TLS reloaded' "$LOG" || fail "rotation not logged"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/readiness")
[ "$CODE" = 200 ] || fail "readiness after the rotation: HTTP $CODE"
ok "rotation: new certificate served after $seen polls, $n requests during it all answered"

# the client CAs are reloaded too: trust ca3 instead of ca1
req "$T/ca2.crt" --cert "$T/client3.crt" --key "$T/client3.key"
[ "$CODE" = 000 ] || fail "client of ca3 accepted before it is trusted: HTTP $CODE"
cp "$T/ca3.crt" "$T/pki/client-ca.crt.new"; mv "$T/pki/client-ca.crt.new" "$T/pki/client-ca.crt"
for i in $(seq 1 150); do
	req "$T/ca2.crt" --cert "$T/client3.crt" --key "$T/client3.key"
	[ "$CODE" = 200 ] && break
	sleep 0.1
done
[ "$CODE" = 200 ] || fail "a client of the newly trusted CA is still refused: HTTP $CODE"
req "$T/ca2.crt" "${GOOD[@]}"
[ "$CODE" = 000 ] || fail "a client of the no longer trusted CA is accepted: HTTP $CODE"
ok "client CA file reloaded"

kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE after SIGTERM"
echo "all TLS tests passed"
