#!/usr/bin/env bash
# End-to-end tests of `prewarm serve` over real HTTP(S) with curl, on policies built from the
# project's own C fixtures (host_wapc.wasm: behaviour chosen by the request's "scenario").
#   1. cold start: ready, validate accept/reject/mutate, allowedToMutate, monitor mode,
#      validate_raw, audit, unknown policy, bad JSON, wrong method, oversize body, metrics;
#      SIGTERM while a request is in flight: the request completes, exit 0.
#   2. restart on the warm local cache: zero compiles (log and counters), over HTTPS with a
#      test certificate, and a reload triggered by editing policies.yml (watch).
#   3. reload on SIGHUP: one policy's settings and one policy's module change; only the new
#      module is compiled, requests sent throughout all succeed, the new answers follow; a
#      broken policies.yml is refused and the old set keeps serving.
#   4. start failures: a broken policy stops the start naming it; --continue-on-errors serves
#      the rest and answers 500 for it.
. "$(dirname "$0")/lib.sh"
# These tests count the optimized compiles of a cold start; tiering (quick code first, the
# optimized compile in the background) has its own test, serve_tiering.sh.
export PREWARM_TIERING=off

W=$PREWARM_FIXTURES/host_wapc.wasm
[ -f "$W" ] || fail "fixture $W missing"
CACHE=$T/cache
mkdir -p "$CACHE"
variant "$W" "$T/wapc_b.wasm" "b"

cat >"$T/policies.yml" <<EOF
accept-pol:
  module: file://$W
settings-pol:
  module: file://$W
  settings:
    greeting: hello
monitor-pol:
  module: file://$W
  policyMode: monitor
mutate-pol:
  module: file://$W
  allowedToMutate: true
nomutate-pol:
  module: file://$W
slow-pol:
  module: file://$W
  timeoutEvalSeconds: 5
EOF

# ---- 1. cold start ------------------------------------------------------------------------
start_server "$T/log1" --policies "$T/policies.yml" --cache-dir "$CACHE" --max-body-size 65536 --no-watch --workers 2 \
	--always-accept-admission-reviews-on-namespace trusted-ns
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/readiness" || true)
[ "$code" = 200 ] || [ "$code" = 503 ] || fail "readiness answered $code before ready (want 503 or 200)"
wait_ready
ok "cold start ready"
grep -q 'policy:accept-pol.*compiled in' "$LOG" || fail "log lacks the compile line of accept-pol"
[ "$(grep -c 'compiled in' "$LOG")" -ge 1 ] || fail "no compile logged"
grep -q 'policy set built in' "$LOG" || fail "no summary line"
[ "$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")" = 1 ] || fail "one module, expected 1 compile, got $(metric_value "prewarm_compiles_total{tier=\"optimized\"}")"

post /validate/accept-pol "$(review u1 accept)"
[ "$CODE" = 200 ] || fail "validate accept: HTTP $CODE $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "accept not allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["uid"]')" = u1 ] || fail "uid not echoed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["kind"]')" = AdmissionReview ] || fail "not an AdmissionReview: $BODY_OUT"
ok "validate accept"

post /validate/accept-pol "$(review u2 reject)"
[ "$CODE" = 200 ] || fail "validate reject: HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "reject allowed: $BODY_OUT"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "rejected by the host test policy" || fail "reject message: $BODY_OUT"
ok "validate reject"

post /validate/mutate-pol "$(review u3 mutate)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "mutate not allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["patchType"]')" = JSONPatch ] || fail "no JSONPatch: $BODY_OUT"
patch=$(json_get "$BODY_OUT" '__import__("base64").b64decode(d["response"]["patch"]).decode()')
echo "$patch" | grep -q '"op"' || fail "patch is not a JSON Patch: $patch"
ok "validate mutate (patch $patch)"

post /validate/nomutate-pol "$(review u4 mutate)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "mutation by a policy not allowed to mutate was accepted: $BODY_OUT"
ok "allowedToMutate false rejects a mutation"

post /validate/accept-pol "$(review u4b reject trusted-ns)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "always-accept namespace was evaluated: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["uid"]')" = u4b ] || fail "always-accept answer lacks the uid: $BODY_OUT"
ok "--always-accept-admission-reviews-on-namespace"

post /validate/monitor-pol "$(review u5 reject)"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "monitor mode rejected: $BODY_OUT"
ok "monitor mode allows"

post /validate/settings-pol "$(review u6 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=hello" || fail "settings not passed: $BODY_OUT"
ok "settings reach the policy"

post /validate_raw/accept-pol '{"request":{"scenario":"reject","anything":[1,2]}}'
[ "$CODE" = 200 ] || fail "validate_raw: HTTP $CODE $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "validate_raw answer: $BODY_OUT"
ok "validate_raw"

post /audit/monitor-pol "$(review u7 reject)"
[ "$CODE" = 200 ] || fail "audit: HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "audit must not apply monitor mode: $BODY_OUT"
ok "audit"

post /validate/no-such-policy "$(review u8 accept)"
[ "$CODE" = 404 ] || fail "unknown policy: HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["status"]')" = 404 ] || fail "404 body: $BODY_OUT"
json_get "$BODY_OUT" 'd["message"]' | grep -q no-such-policy || fail "404 message does not name the policy: $BODY_OUT"
ok "unknown policy 404"

post /validate/accept-pol '{"apiVersion": '
[ "$CODE" = 400 ] || fail "bad JSON: HTTP $CODE $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["status"]')" = 400 ] || fail "400 body: $BODY_OUT"
ok "bad JSON 400"

post /validate/accept-pol '{}'
[ "$CODE" = 422 ] || fail "wrong shape: HTTP $CODE $BODY_OUT"
json_get "$BODY_OUT" 'd["message"]' | grep -q 'missing field `request`' || fail "422 body: $BODY_OUT"
post /audit/accept-pol '{"request":{"uid":"x"}}'
[ "$CODE" = 422 ] || fail "wrong shape on /audit: HTTP $CODE $BODY_OUT"
case $BODY_OUT in "Failed to deserialize the JSON body into the target type: "*) ;; *) fail "422 text on /audit: $BODY_OUT";; esac
post /validate_raw/accept-pol '{"nothing":1}'
[ "$CODE" = 422 ] || fail "validate_raw without request: HTTP $CODE $BODY_OUT"
CODE=$(curl -s -o "$T/out" -w '%{http_code}' --data-binary "$(review u9 accept)" "http://127.0.0.1:$PORT/validate/accept-pol")
[ "$CODE" = 415 ] || fail "no JSON content type: HTTP $CODE"
grep -q 'Expected request with `Content-Type: application/json`' "$T/out" || fail "415 body: $(cat "$T/out")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/merge-patch+json; charset=utf-8' \
	--data-binary "$(review u9 accept)" "http://127.0.0.1:$PORT/validate/monitor-pol")
[ "$CODE" = 200 ] || fail "application/*+json refused: HTTP $CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$CODE" = 404 ] || fail "/metrics on the main port: HTTP $CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readiness")
[ "$CODE" = 404 ] || fail "/readiness on the main port: HTTP $CODE"
ok "415 without a JSON content type, 422 wrong shape, /metrics and /readiness only on the readiness port"

CODE=$(curl -s -o "$T/out" -w '%{http_code}' "http://127.0.0.1:$PORT/validate/accept-pol")
[ "$CODE" = 405 ] || fail "GET /validate: HTTP $CODE"
grep -q '"status":405' "$T/out" || fail "405 body: $(cat "$T/out")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nothing/here")
[ "$CODE" = 404 ] || fail "unknown path: HTTP $CODE"
ok "wrong method 405, unknown path 404"

head -c 100000 /dev/zero | tr '\0' 'x' >"$T/big"
CODE=$(curl -s -o "$T/out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$T/big" "http://127.0.0.1:$PORT/validate/accept-pol" || true)
[ "$CODE" = 413 ] || fail "oversize body: HTTP $CODE"
grep -q '"status":413' "$T/out" || fail "413 body: $(cat "$T/out")"
# without Content-Length (chunked): the limit still holds
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"$T/big" "http://127.0.0.1:$PORT/validate/accept-pol" || true)
[ "$CODE" = 413 ] || fail "oversize chunked body: HTTP $CODE"
ok "oversize body 413"

M=$(metrics)
grep -q '^prewarm_evaluations_total{policy="accept-pol",outcome="accepted"} 1$' <<<"$M" || fail "metrics: accepted count"
grep -q '^prewarm_evaluations_total{policy="accept-pol",outcome="rejected"} 2$' <<<"$M" || fail "metrics: rejected count (validate + validate_raw)"
grep -q '^prewarm_evaluations_total{policy="mutate-pol",outcome="mutated"} 1$' <<<"$M" || fail "metrics: mutated count"
grep -q '^prewarm_evaluation_duration_seconds_count{policy="accept-pol"} 3$' <<<"$M" || fail "metrics: histogram count"
grep -q '^prewarm_evaluation_duration_seconds_bucket{policy="accept-pol",le="+Inf"} 3$' <<<"$M" || fail "metrics: +Inf bucket"
grep -q '^prewarm_ready 1$' <<<"$M" || fail "metrics: ready"
grep -q '^prewarm_policies_loaded 6$' <<<"$M" || fail "metrics: policies loaded"
grep -q '^prewarm_startup_phase_seconds{phase="cache"} ' <<<"$M" || fail "metrics: phase"
grep -q '^prewarm_cache_misses_total{tier="local"} 1$' <<<"$M" || fail "metrics: local miss"
grep -q '^prewarm_http_responses_total{code="404"} 4$' <<<"$M" || fail "metrics: 404 count"
grep -q '^# TYPE prewarm_evaluation_duration_seconds histogram$' <<<"$M" || fail "metrics: TYPE line"
# Kubewarden's metrics and labels (resource_namespace only when the request has one,
# error_code only when the answer has a status code; no origin/kind/namespace/operation on raw)
KW='policy_name="accept-pol",policy_mode="protect",resource_kind="Pod",resource_namespace="default",resource_request_operation="CREATE"'
grep -q "^kubewarden_policy_evaluations_total{$KW,accepted=\"true\",mutated=\"false\",request_origin=\"validate\"} 1\$" <<<"$M" \
	|| fail "kubewarden counter (accepted): $(grep '^kubewarden_policy_evaluations_total' <<<"$M")"
grep -q "^kubewarden_policy_evaluations_total{$KW,accepted=\"false\",mutated=\"false\",request_origin=\"validate\"[^}]*} 1\$" <<<"$M" \
	|| fail "kubewarden counter (rejected)"
grep -q '^kubewarden_policy_evaluations_total{policy_name="accept-pol",policy_mode="protect",resource_kind="Pod",resource_namespace="trusted-ns",resource_request_operation="CREATE",accepted="true",mutated="false",request_origin="validate"} 1$' <<<"$M" \
	|| fail "kubewarden counter (always-accept namespace)"
grep -q '^kubewarden_policy_evaluations_total{policy_name="accept-pol",policy_mode="protect",accepted="false",mutated="false"[^}]*} 1$' <<<"$M" \
	|| fail "kubewarden counter (validate_raw labels)"
grep -q '^kubewarden_policy_evaluations_total{policy_name="mutate-pol",policy_mode="protect",[^}]*,mutated="true",request_origin="validate"} 1$' <<<"$M" \
	|| fail "kubewarden counter (mutated)"
grep -q '^kubewarden_policy_evaluations_total{policy_name="monitor-pol",policy_mode="monitor",[^}]*accepted="false"[^}]*request_origin="audit"' <<<"$M" \
	|| fail "kubewarden counter (monitor mode, audit origin)"
grep -q "^kubewarden_policy_evaluation_latency_milliseconds_bucket{$KW,accepted=\"true\",mutated=\"false\",request_origin=\"validate\",le=\"+Inf\"} 1\$" <<<"$M" \
	|| fail "kubewarden histogram +Inf"
grep -q "^kubewarden_policy_evaluation_latency_milliseconds_count{$KW,accepted=\"true\",mutated=\"false\",request_origin=\"validate\"} 1\$" <<<"$M" \
	|| fail "kubewarden histogram count"
grep -q '^# TYPE kubewarden_policy_evaluation_latency_milliseconds histogram$' <<<"$M" || fail "kubewarden TYPE line"
ok "metrics content"

# SIGTERM drains: a slow request (a guest loop stopped by the 5 s policy timeout) in flight
( curl -s -o "$T/slow.out" -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "$(review u9 loop)" "http://127.0.0.1:$PORT/validate/slow-pol" >"$T/slow.code" ) &
CURL_PID=$!
wait_metric prewarm_evaluations_in_flight 1
kill -TERM "$SRV_PID"
wait "$CURL_PID" || true
wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit code after SIGTERM: $EXIT_CODE"
[ "$(cat "$T/slow.code")" = 200 ] || fail "in-flight request not finished: HTTP $(cat "$T/slow.code")"
grep -q '"allowed":false' "$T/slow.out" || fail "timed-out request answer: $(cat "$T/slow.out")"
ok "SIGTERM drained the request in flight, exit 0"

# ---- 2. warm restart over HTTPS, reload by watching the file -------------------------------------
command -v openssl >/dev/null || fail "openssl needed for the TLS test"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null \
	|| fail "openssl could not make a test certificate"
start_server "$T/log2" --policies "$T/policies.yml" --cache-dir "$CACHE" --cert-file "$T/cert.pem" --key-file "$T/key.pem" --watch-interval 0.2
wait_ready
! grep -q 'compiled in' "$LOG" || fail "warm restart compiled: $(grep 'compiled in' "$LOG")"
grep -q 'policy:accept-pol.*local hit' "$LOG" || fail "warm restart: no local hit logged"
[ "$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")" = 0 ] || fail "warm restart: compiles_total $(metric_value "prewarm_compiles_total{tier=\"optimized\"}")"
[ "$(metric_value 'prewarm_cache_hits_total{tier="local"}')" = 1 ] || fail "warm restart: local hits"
ok "warm restart: zero compiles, one local hit"
SCHEME=https CURL_TLS="--cacert $T/cert.pem" post /validate/accept-pol "$(review t1 accept)"
[ "$CODE" = 200 ] || fail "HTTPS validate: HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = True ] || fail "HTTPS answer: $BODY_OUT"
curl -s -o /dev/null "http://127.0.0.1:$PORT/validate/accept-pol" -d '{}' && fail "plain HTTP accepted on the TLS port"
ok "HTTPS with a test certificate"
sed 's/greeting: hello/greeting: watched/' "$T/policies.yml" >"$T/p.tmp" && mv "$T/p.tmp" "$T/policies.yml"
wait_metric 'prewarm_reloads_total{result="ok"}' 1
SCHEME=https CURL_TLS="--cacert $T/cert.pem" post /validate/settings-pol "$(review t2 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=watched" || fail "watch reload: $BODY_OUT"
ok "policies.yml change reloads"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit code $EXIT_CODE"

# ---- 3. reload on SIGHUP ----------------------------------------------------------------------
start_server "$T/log3" --policies "$T/policies.yml" --cache-dir "$CACHE" --no-watch
wait_ready
c0=$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")
# requests throughout the reload
( fails=0; n=0
  while [ ! -f "$T/stop" ]; do
	c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$(review l accept)" \
		"http://127.0.0.1:$PORT/validate/accept-pol" || echo 000)
	n=$((n + 1)); [ "$c" = 200 ] || fails=$((fails + 1))
  done
  echo "$n $fails" >"$T/loop.result" ) &
LOOP_PID=$!
sed -e 's/greeting: watched/greeting: reloaded/' "$T/policies.yml" >"$T/p.tmp"
python3 - "$T/p.tmp" "$T/wapc_b.wasm" <<'PY'
import sys
p, b = sys.argv[1], sys.argv[2]
lines = open(p).read().split("\n")
out, cur = [], None
for l in lines:
    if l and not l.startswith(" "):
        cur = l.rstrip(":")
    if cur == "mutate-pol" and l.strip().startswith("module:"):
        l = "  module: file://" + b
    out.append(l)
open(p, "w").write("\n".join(out))
PY
mv "$T/p.tmp" "$T/policies.yml"
kill -HUP "$SRV_PID"
wait_metric 'prewarm_reloads_total{result="ok"}' 1
touch "$T/stop"; wait "$LOOP_PID"
read -r n fails <"$T/loop.result"
[ "$fails" = 0 ] || fail "$fails of $n requests failed during the reload"
[ "$n" -ge 1 ] || fail "no request sent during the reload"
c1=$(metric_value "prewarm_compiles_total{tier=\"optimized\"}")
[ $((c1 - c0)) = 1 ] || fail "reload compiled $((c1 - c0)) modules, expected 1 (the changed one)"
[ "$(metric_value 'prewarm_module_sources{source="reused"}')" = 1 ] || fail "the unchanged module was not reused"
grep -q 'policy:mutate-pol.*compiled in' "$LOG" || fail "the changed module's compile is not logged"
post /validate/settings-pol "$(review r1 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=reloaded" || fail "new settings not used: $BODY_OUT"
post /validate/mutate-pol "$(review r2 mutate)"
[ "$(json_get "$BODY_OUT" 'd["response"]["patchType"]')" = JSONPatch ] || fail "new module for mutate-pol does not answer: $BODY_OUT"
ok "SIGHUP reload: 1 compile, $n requests during the reload all answered, new settings and module serve"

cp "$T/policies.yml" "$T/good.yml"
printf 'broken:\n  module: file://%s\n  policyMode: enforce\n' "$W" >>"$T/policies.yml"
kill -HUP "$SRV_PID"
wait_metric 'prewarm_reloads_total{result="refused"}' 1
grep -q 'reload refused.*policyMode' "$LOG" || fail "refused reload not logged with its reason"
post /validate/settings-pol "$(review r3 settings)"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q "greeting=reloaded" || fail "old set not serving after a refused reload"
printf 'bad-settings:\n  module: file://%s\n  settings: {invalid: true}\n' "$W" >"$T/policies.yml"
kill -HUP "$SRV_PID"
wait_metric 'prewarm_reloads_total{result="refused"}' 2
post /validate/accept-pol "$(review r4 accept)"
[ "$CODE" = 200 ] || fail "old set not serving after a refused reload (invalid settings): HTTP $CODE"
ok "broken reloads refused, the old set keeps serving"
kill -TERM "$SRV_PID"; wait_exit

# ---- 4. start failures ------------------------------------------------------------------------
printf 'good:\n  module: file://%s\nmissing:\n  module: file://%s/nope.wasm\n' "$W" "$T" >"$T/bad.yml"
start_server "$T/log4" --policies "$T/bad.yml" --cache-dir "$CACHE" --no-watch
wait_exit
[ "$EXIT_CODE" = 1 ] || fail "start with a missing module: exit $EXIT_CODE, expected 1"
grep -q 'start failed: policy "missing"' "$LOG" || fail "start failure does not name the policy"
printf 'good:\n  module: file://%s\nbadset:\n  module: file://%s\n  settings: {invalid: true}\n' "$W" "$W" >"$T/bad2.yml"
start_server "$T/log5" --policies "$T/bad2.yml" --cache-dir "$CACHE" --no-watch
wait_exit
[ "$EXIT_CODE" = 1 ] || fail "start with invalid settings: exit $EXIT_CODE"
grep -q 'policy "badset": invalid settings: settings say invalid' "$LOG" || fail "invalid settings not named"
ok "a broken policy stops the start, naming it"

start_server "$T/log6" --policies "$T/bad.yml" --cache-dir "$CACHE" --no-watch --continue-on-errors
wait_ready
post /validate/good "$(review c1 accept)"
[ "$CODE" = 200 ] || fail "continue-on-errors: good policy HTTP $CODE"
post /validate/missing "$(review c2 accept)"
# Kubewarden: HTTP 200, an AdmissionReview allowed false with status code 500 (an HTTP 500
# would let a webhook with failurePolicy Ignore admit the request)
[ "$CODE" = 200 ] || fail "continue-on-errors: broken policy HTTP $CODE"
[ "$(json_get "$BODY_OUT" 'd["response"]["allowed"]')" = False ] || fail "broken policy allowed: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["status"]["code"]')" = 500 ] || fail "broken policy status code: $BODY_OUT"
[ "$(json_get "$BODY_OUT" 'd["response"]["uid"]')" = c2 ] || fail "broken policy uid: $BODY_OUT"
json_get "$BODY_OUT" 'd["response"]["status"]["message"]' | grep -q 'nope.wasm' || fail "the answer does not say why: $BODY_OUT"
M=$(metrics)
grep -q '^kubewarden_policy_evaluations_total{policy_name="missing",initialization_error="[^}]*nope.wasm[^}]*"} 1$' <<<"$M" \
	|| fail "initialization_error metric: $(grep '^kubewarden_policy_evaluations_total' <<<"$M")"
[ "$(metric_value prewarm_policies_failed)" = 1 ] || fail "policies_failed metric"
kill -TERM "$SRV_PID"; wait_exit
ok "--continue-on-errors serves the rest, HTTP 200 allowed false code 500 for the broken one"
# SIGTERM while the start is still compiling: exit 0 at once, without waiting for the compile
variant "$W" "$T/wapc_c.wasm" "c"
printf 'cold:\n  module: file://%s\n' "$T/wapc_c.wasm" >"$T/cold.yml"
start_server "$T/log7" --policies "$T/cold.yml" --cache-dir "$CACHE" --no-watch
kill -TERM "$SRV_PID"
wait_exit
[ "$EXIT_CODE" = 0 ] || fail "SIGTERM during the start: exit $EXIT_CODE"
grep -q 'SIGTERM received while starting' "$LOG" || grep -q 'ready: 1 policies served' "$LOG" || fail "SIGTERM during start not handled"
ok "SIGTERM during the start stops the server"
echo "all serve tests passed"
