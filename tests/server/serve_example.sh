#!/usr/bin/env bash
# The README's example, checked: `prewarm serve` on examples/policies.yml (modules from the
# build's fixtures, as scripts/serve-example.sh writes it) gives every answer that
# serve-example.sh prints next to its curl lines.
. "$(dirname "$0")/lib.sh"
src=$PREWARM_SOURCE_DIR
R=$src/examples/requests
sed "s|@WASM_DIR@|$PREWARM_FIXTURES|g" "$src/examples/policies.yml" >"$T/policies.yml"
start_server "$T/log" --policies "$T/policies.yml" --cache-dir "$T/cache" --no-watch
wait_ready
ask() { post "/validate/$1" "$(cat "$R/$2")"; [ "$CODE" = 200 ] || fail "$1 $2: HTTP $CODE $BODY_OUT"; }
ask no-privileged-pods pod-privileged.json
grep -q <<<"$BODY_OUT" '"allowed":false' && grep -q <<<"$BODY_OUT" 'privileged containers are not allowed' \
	|| fail "privileged Pod: $BODY_OUT"
ask no-privileged-pods pod-ok.json
grep -q <<<"$BODY_OUT" '"allowed":true' || fail "ordinary Pod: $BODY_OUT"
ask no-privileged-pods pod-privileged-kube-system.json
grep -q <<<"$BODY_OUT" '"allowed":true' || fail "exempt namespace: $BODY_OUT"
ask no-privileged-pods-monitor pod-privileged.json
grep -q <<<"$BODY_OUT" '"allowed":true' || fail "monitor mode: $BODY_OUT"
ask default-team-label pod-no-team.json
patch=$(sed -n 's/.*"patch":"\([^"]*\)".*/\1/p' <<<"$BODY_OUT" | base64 -d)
[ "$patch" = '[{"op":"add","path":"/metadata/labels/team","value":"platform"}]' ] \
	|| fail "default team label: patch $patch ($BODY_OUT)"
post /validate/default-team-label "$(sed 's/"app":"web"/"app":"web","team":"data"/' "$R/pod-no-team.json")"
grep -q <<<"$BODY_OUT" '"allowed":true' && ! grep -q <<<"$BODY_OUT" '"patch"' || fail "labelled Pod: $BODY_OUT"
ask test-policy mutate.json
grep -q <<<"$BODY_OUT" '"patchType":"JSONPatch"' || fail "test-policy mutation: $BODY_OUT"
kill -TERM "$SRV_PID"; wait_exit
[ "$EXIT_CODE" = 0 ] || fail "exit $EXIT_CODE after SIGTERM"
echo "serve_example: every documented answer given"
