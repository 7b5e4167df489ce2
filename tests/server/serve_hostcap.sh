#!/usr/bin/env bash
# Host capabilities under `prewarm serve`: policies.yml's hostCapabilities is the gate (a
# policy granted net/v1/dns_lookup_host gets the answer, through waPC and WASI; a policy
# without the key, or granted another family only, is denied with Kubewarden's text), the
# answer reaches the policy byte for byte, and concurrent requests making host calls on
# several workers all succeed.
. "$(dirname "$0")/lib.sh"
export PREWARM_TIERING=off

cat >"$T/policies.yml" <<YML
net-wapc:
  module: file://$PREWARM_FIXTURES/host_wapc.wasm
  hostCapabilities: [net/v1/dns_lookup_host]
net-wasi:
  module: file://$PREWARM_FIXTURES/host_wasi.wasm
  hostCapabilities: ["net/*"]
no-caps:
  module: file://$PREWARM_FIXTURES/host_wapc.wasm
crypto-only:
  module: file://$PREWARM_FIXTURES/host_wasi.wasm
  hostCapabilities: ["crypto/*"]
YML

# hostcall NS OP PAYLOAD: an AdmissionReview for the test policy's "hostcall" scenario
hostcall() {
	local hex
	hex=$(printf '%s' "$3" | xxd -p | tr -d '\n')
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},"namespace":"default","operation":"CREATE","userInfo":{"username":"test"},"object":{"scenario":"hostcall","hc_bd":"kubewarden","hc_ns":"%s","hc_op":"%s","hc_payload":"%s"}}}' \
		"$1" "$2" "$hex"
}
# answer_of BODY: "ok:TEXT" / "err:TEXT", the host's answer as the policy reported it
answer_of() {
	python3 -c 'import json,sys; m=json.loads(sys.argv[1])["response"]["status"]["message"]; k,_,h=m.partition(":"); print(k+":"+bytes.fromhex(h).decode())' "$1"
}

start_server "$T/log" --policies "$T/policies.yml" --cache-dir "$T/cache" --no-watch --workers 2
wait_ready

REQ=$(hostcall net v1/dns_lookup_host '"127.0.0.1"')
for p in net-wapc net-wasi; do
	post "/validate/$p" "$REQ"
	[ "$CODE" = 200 ] || fail "$p: HTTP $CODE: $BODY_OUT"
	got=$(answer_of "$BODY_OUT")
	[ "$got" = 'ok:{"ips":["127.0.0.1"]}' ] || fail "$p: got $got"
	ok "$p: net/v1/dns_lookup_host answered through the policy"
done
for p in no-caps crypto-only; do
	post "/validate/$p" "$REQ"
	[ "$CODE" = 200 ] || fail "$p: HTTP $CODE: $BODY_OUT"
	got=$(answer_of "$BODY_OUT")
	[ "$got" = "err:Policy has not been granted access to the 'net/v1/dns_lookup_host' host capability. The violation has been reported." ] ||
		fail "$p: got $got"
	ok "$p: denied by hostCapabilities"
done
grep -q "host call net/v1/dns_lookup_host refused" "$T/log" || fail "the refusal is not logged"
ok "refusals are logged"

# concurrent requests with host calls, on both workers
pids=()
for i in $(seq 1 16); do
	p=net-wapc
	[ $((i % 2)) = 0 ] && p=net-wasi
	curl -s -H 'Content-Type: application/json' --data-binary "$REQ" "http://127.0.0.1:$PORT/validate/$p" \
		>"$T/par.$i" &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent request failed"; done
for i in $(seq 1 16); do
	got=$(answer_of "$(cat "$T/par.$i")")
	[ "$got" = 'ok:{"ips":["127.0.0.1"]}' ] || fail "concurrent request $i: got $got"
done
ok "16 concurrent requests with host calls answered"
kill -TERM "$SRV_PID"
wait_exit
[ "$EXIT_CODE" = 0 ] || fail "server exited $EXIT_CODE"
ok "stopped"
