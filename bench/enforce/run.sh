#!/usr/bin/env bash
# bench/enforce: how long after a policies.yml change a NEW policy is enforced by a running
# `prewarm serve`, with tiering on and off, measured side by side (interleaved repetitions).
#
# Per repetition and mode: a server runs three policies whose artifacts are in its local
# cache (they stay untouched), a load loop sends requests to one of them the whole time;
# policies.yml gets the new policy (written atomically) and SIGHUP is sent; then
# /validate/<new> is polled (every ~5 ms) until it gives the policy's own verdict. The time
# from the write to that answer is "enforce"; with tiering, the time until the policy runs
# on optimized code is "tier-up" (polled from /metrics). The new module is a cache miss in
# every repetition (each repetition starts from a copy of a cache holding only the three
# old policies). Requests of the load loop that did not get HTTP 200 are counted ("dropped").
#
# Policies: the repo's C test policy (host_wapc.wasm, ~100 KB) and, with PREWARM_CORPUS,
# Kubewarden's safe-labels (TinyGo, 652 KB), the only Kubewarden waPC policy of the corpus.
# For the size sweep over other corpus modules (0.1-3 MB) see peers.sh, which times the
# compilers themselves (ours and independent engines) on the same modules.
#
# usage: bench/enforce/run.sh          env: PREWARM_BIN (default build/prewarm), REPS (5)
# Output: one line per repetition, then a Markdown table of medians (for BENCHMARKS.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREWARM_BIN:-$top/build/prewarm}
FIX=$(dirname "$BIN")/fixtures
REPS=${REPS:-5}
CORPUS=${PREWARM_CORPUS:-$top/../shared/corpus/wasm}
[ -x "$BIN" ] || { echo "enforce: no $BIN (scripts/build.sh)" >&2; exit 1; }
for t in curl tcc gcc; do command -v $t >/dev/null || { echo "enforce: $t not installed" >&2; exit 1; }; done
W=$(mktemp -d "${TMPDIR:-/tmp}/pw-bench-enforce.XXXXXX")
SRV=""; LOADER=""
cleanup() {
	[ -n "$LOADER" ] && kill "$LOADER" 2>/dev/null || true
	[ -n "$SRV" ] && kill -KILL "$SRV" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }

# the policies that are already there (each its own module)
cat >"$W/base.yml" <<EOF
privileged:
  module: file://$FIX/server_privileged.wasm
wapc:
  module: file://$FIX/host_wapc.wasm
wasi:
  module: file://$FIX/host_wasi.wasm
EOF
# name|module|settings (YAML flow)|request file|jq-free check: a substring of the right answer
cases=()
cp "$FIX/host_wapc.wasm" "$W/new-c.wasm"
printf '\x00\x08\x07new-c-x' >>"$W/new-c.wasm"   # another digest: a miss
cases+=("c-wapc|$W/new-c.wasm|{}|reject|\"allowed\":false")
SL=$CORPUS/fabriziosestito_policy-server__safe_labels_policy.wasm
if [ -f "$SL" ]; then
	cases+=("safe-labels|$SL|{denied_labels: [foo]}|labels|The following labels are denied: foo")
else
	echo "enforce: $SL absent (set PREWARM_CORPUS): only the C policy is measured" >&2
fi
printf '%s' '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"bench"},"object":{"scenario":"reject","apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"foo":"1"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}' >"$W/req.json"

# a cache holding the three old policies, optimized and quick (filled once)
"$BIN" serve --policies "$W/base.yml" --cache-dir "$W/base-cache" --port 0 --readiness-probe-port 0 \
	--tiering off --no-watch >"$W/fill.log" 2>&1 &
SRV=$!
for i in $(seq 1 3000); do grep -q "ready:" "$W/fill.log" && break; sleep 0.1; done
kill -TERM $SRV; wait $SRV || true; SRV=""

run_one() { # MODE(on|off) CASE -> prints "enforce tierup dropped"
	local mode=$1 name mod settings _r expect
	IFS='|' read -r name mod settings _r expect <<<"$2"
	rm -rf "$W/cache" "$W/log"; cp -a "$W/base-cache" "$W/cache"
	cp "$W/base.yml" "$W/policies.yml"
	"$BIN" serve --policies "$W/policies.yml" --cache-dir "$W/cache" --addr 127.0.0.1 --port 0 \
		--readiness-probe-port 0 --no-watch --tiering "$mode" >"$W/log" 2>&1 &
	SRV=$!
	local port="" rport="" i
	for i in $(seq 1 3000); do
		port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\) .*/\1/p' "$W/log" | head -1)
		rport=$(sed -n 's/.*readiness and metrics on [^ ]*:\([0-9]*\).*/\1/p' "$W/log" | head -1)
		[ -n "$port" ] && grep -q "ready:" "$W/log" && break
		sleep 0.05
	done
	# load on an old policy during the change
	( n=0; bad=0; while [ ! -e "$W/stop-load" ]; do
		c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$W/req.json" \
			"http://127.0.0.1:$port/validate/privileged" || echo 000)
		n=$((n + 1)); [ "$c" = 200 ] || bad=$((bad + 1))
	  done; echo "$n $bad" >"$W/load.out" ) &
	LOADER=$!
	sleep 0.3
	{ cat "$W/base.yml"; printf '%s:\n  module: file://%s\n  settings: %s\n' new "$mod" "$settings"; } >"$W/p.tmp"
	local t0 t1 t2=""
	t0=$(now)
	mv "$W/p.tmp" "$W/policies.yml"
	kill -HUP $SRV
	for i in $(seq 1 100000); do
		if curl -s -H 'Content-Type: application/json' --data-binary @"$W/req.json" \
			"http://127.0.0.1:$port/validate/new" 2>/dev/null | grep -qF "$expect"; then break; fi
		sleep 0.005
	done
	t1=$(now)
	if [ "$mode" = on ]; then
		for i in $(seq 1 20000); do
			curl -s "http://127.0.0.1:$rport/metrics" | grep -q '^prewarm_policy_tier{policy="new",tier="optimized"} 1' && break
			sleep 0.05
		done
		t2=$(now)
	fi
	touch "$W/stop-load"; wait $LOADER || true; LOADER=""; rm -f "$W/stop-load"
	kill -TERM $SRV; wait $SRV || true; SRV=""
	read -r nreq nbad <"$W/load.out"
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') \
$([ -n "$t2" ] && awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.2f", b-a}' || echo -) $nbad/$nreq"
}

echo "# enforce: $(uptime)"
declare -A res
for r in $(seq 1 "$REPS"); do
	for c in "${cases[@]}"; do
		for mode in on off; do
			out=$(run_one "$mode" "$c")
			name=${c%%|*}
			echo "rep $r $name tiering=$mode: enforce ${out%% *} s, tier-up $(echo "$out" | cut -d' ' -f2) s, dropped $(echo "$out" | cut -d' ' -f3)"
			res[$name,$mode]+="$out"$'\n'
		done
	done
done
echo "# end: $(uptime)"
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
echo
echo "| policy | enforce, tiering on (s) | enforce, tiering off (s) | off / on | tier-up after (s) | requests dropped |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
	name=${c%%|*}
	on=$(printf '%s' "${res[$name,on]}" | awk 'NF{print $1}' | median)
	off=$(printf '%s' "${res[$name,off]}" | awk 'NF{print $1}' | median)
	tu=$(printf '%s' "${res[$name,on]}" | awk 'NF{print $2}' | median)
	dropped=$(printf '%s%s' "${res[$name,on]}" "${res[$name,off]}" | awk 'NF{split($3,a,"/"); b+=a[1]; n+=a[2]} END{print b "/" n}')
	echo "| $name | $on | $off | $(awk -v a="$off" -v b="$on" 'BEGIN{printf "%.1fx", a/b}') | $tu | $dropped |"
done
