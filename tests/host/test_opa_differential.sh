#!/usr/bin/env bash
# Differential test of the OPA host: OPA's JavaScript SDK (npm @open-policy-agent/opa-wasm,
# installed by this test into the build tree, run with node) and `prewarm eval -e opa ...
# --entrypoint` evaluate the same modules on the same inputs; the result sets must be equal
# (as JSON values), and an evaluation the SDK aborts must abort in Prewarm with the same
# message.
#  - every builtin case of tests/host/opa/builtin_cases.json, through the generated OPA-ABI
#    fixtures opa_builtins.wasm (ABI 1.2, opa_eval) and opa_builtins_classic.wasm (1.1, the
#    eval context); builtins the SDK lacks come from tests/host/opa/reference_builtins.js.
#    Cases marked "sdk" are where the SDK itself departs from OPA (its sprintf is sprintf-js,
#    its YAML is YAML 1.2, JavaScript numbers are doubles): Prewarm follows OPA there (checked
#    by test_opa_builtins / test_opa_policy), and they are counted, not compared;
#  - the generated policy fixture's entrypoints (echo, abort, match, builtin calls);
#  - with the third-party corpus (PREWARM_CORPUS): every Rego-built module its MANIFEST.tsv
#    lists (category *opa*), every entrypoint, on AdmissionReview-, Gatekeeper- and
#    free-form inputs, with and without data.
# Skips (77) when node/npm are missing or npm cannot install the SDK (offline).
set -euo pipefail
src=${PREWARM_SOURCE_DIR:?}
bin=${PREWARM_BIN:?}
fx=${PREWARM_FIXTURES:?}
build=${PREWARM_BUILD_DIR:?}
SDK_VERSION=1.10.0

fail() { echo "FAIL: $*" >&2; exit 1; }
for t in node npm python3; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (the differential test needs OPA's JavaScript SDK)"; exit 77; }
done
npmdir=$build/npm-opa-wasm
if [ ! -f "$npmdir/node_modules/@open-policy-agent/opa-wasm/package.json" ] ||
   ! grep -q "\"version\": \"$SDK_VERSION\"" "$npmdir/node_modules/@open-policy-agent/opa-wasm/package.json"; then
  mkdir -p "$npmdir"
  if ! npm install --prefix "$npmdir" --no-audit --no-fund --no-save --loglevel=error \
         "@open-policy-agent/opa-wasm@$SDK_VERSION" >"$build/npm-opa-wasm.log" 2>&1; then
    echo "SKIP: npm could not install @open-policy-agent/opa-wasm@$SDK_VERSION (offline?): $(tail -n 3 "$build/npm-opa-wasm.log")"
    exit 77
  fi
fi
export NODE_PATH=$npmdir/node_modules

work=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-opa-diff.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache=$work/cache
compared=0
noted=0

# run_both MODULE CASES.json LABEL [REFERENCE]: evaluates every case with the SDK and with
# prewarm, compares; cases with an "sdk" note are only counted.
run_both() {
  local module=$1 cases=$2 label=$3 ref=${4:-}
  node "$src/tests/host/opa/sdk_eval.js" "$module" "$cases" $ref >"$work/sdk.out" ||
    fail "$label: the SDK could not evaluate $module"
  : >"$work/pw.out"
  rm -rf "$work/c" && mkdir "$work/c"
  # one file of arguments per case: --entrypoint, --input FILE, --data FILE
  python3 - "$cases" "$work/c" <<'EOF'
import json, sys
d = sys.argv[2]
for i, c in enumerate(json.load(open(sys.argv[1]))):
    args = []
    if "entrypoint" in c: args += ["--entrypoint", str(c["entrypoint"])]
    if "input" in c:
        json.dump(c["input"], open("%s/%d.input" % (d, i), "w")); args += ["--input", "%s/%d.input" % (d, i)]
    if "data" in c:
        json.dump(c["data"], open("%s/%d.data" % (d, i), "w")); args += ["--data", "%s/%d.data" % (d, i)]
    open("%s/%d.args" % (d, i), "w").write("\n".join(args) + "\n")
EOF
  local n i
  n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$cases")
  for ((i = 0; i < n; i++)); do
    mapfile -t args <"$work/c/$i.args"
    local out rc=0
    out=$("$bin" eval -e opa "$module" "${args[@]}" --cache-dir "$cache" 2>"$work/err") || rc=$?
    if [ "$rc" = 0 ]; then
      printf '%s\n' "$out" >>"$work/pw.out"
    else
      python3 -c 'import json,sys; m=open(sys.argv[1]).read().strip(); k=m.find("opa_abort: "); print(json.dumps({"error": m[k+11:] if k >= 0 else m}))' \
        "$work/err" >>"$work/pw.out"
    fi
  done
  python3 - "$cases" "$work/sdk.out" "$work/pw.out" "$label" >"$work/cmp" <<'EOF'
import json, sys
cases = json.load(open(sys.argv[1]))
sdk = open(sys.argv[2]).read().splitlines()
pw = open(sys.argv[3]).read().splitlines()
label = sys.argv[4]
assert len(sdk) == len(cases) == len(pw), (len(sdk), len(cases), len(pw))
bad = compared = noted = 0
for i, (c, s, p) in enumerate(zip(cases, sdk, pw)):
    if c.get("sdk"):
        noted += 1
        continue
    compared += 1
    if json.loads(s) != json.loads(p):
        bad += 1
        print("DIFF %s case %d (%s): SDK %s, Prewarm %s" % (label, i, c.get("what", c.get("entrypoint")), s, p), file=sys.stderr)
print(compared, noted, bad)
EOF
  local c nn b
  read -r c nn b <"$work/cmp"
  [ "$b" = 0 ] || fail "$label: $b of $c cases differ from OPA's JavaScript SDK"
  compared=$((compared + c))
  noted=$((noted + nn))
  if [ "$nn" != 0 ]; then
    echo "ok: $label: $c cases equal to the SDK's, $nn where the SDK departs from OPA (counted, not compared)"
  else
    echo "ok: $label: $c cases equal to the SDK's"
  fi
}

# 1. every builtin case, through both ABI paths
python3 - "$src/tests/host/opa/builtin_cases.json" >"$work/builtins.json" <<'EOF'
import json, sys
cases = json.load(open(sys.argv[1]))
print(json.dumps([{"entrypoint": "case/%d" % i, "input": {}, "what": c["b"], **({"sdk": c["sdk"]} if "sdk" in c else {})}
                  for i, c in enumerate(cases)]))
EOF
for f in opa_builtins opa_builtins_classic; do
  run_both "$fx/$f.wasm" "$work/builtins.json" "builtins ($f)" "$src/tests/host/opa/reference_builtins.js"
done

# 2. the policy fixture: input/data plumbing, aborts, matches
cat >"$work/policy.json" <<'EOF'
[{"entrypoint": "echo", "input": {"a": [1, "x", {"b": null}]}, "data": {"k": true}},
 {"entrypoint": "echo", "input": {}},
 {"entrypoint": "echo"},
 {"entrypoint": "echo", "input": "just a string", "data": [1, 2]},
 {"entrypoint": "boom", "input": {}},
 {"entrypoint": "policy/main", "input": {"request": {"object": {"spec": {"privileged": true}}}}},
 {"entrypoint": "policy/main", "input": {"request": {"object": {"spec": {}}}}},
 {"entrypoint": "fmt", "input": {}},
 {"entrypoint": "undefined", "input": {}},
 {"entrypoint": "bad_response", "input": {}}]
EOF
for f in opa_policy opa_policy_classic; do
  run_both "$fx/$f.wasm" "$work/policy.json" "policy fixture ($f)"
done

# 3. the corpus's Rego-built modules
corpus=${PREWARM_CORPUS:-}   # the corpus's wasm/ folder; MANIFEST.tsv is beside it
if [ -z "$corpus" ] || [ ! -f "$corpus/../MANIFEST.tsv" ]; then
  echo "skip: the third-party corpus is absent (PREWARM_CORPUS): its Rego modules are not compared"
else
  mods=$(awk -F'\t' 'NR > 1 && $2 ~ /opa/ { print $1 }' "$corpus/../MANIFEST.tsv")
  [ -n "$mods" ] || fail "the corpus MANIFEST.tsv lists no Rego-built module"
  for m in $mods; do
    wasm=$corpus/$m.wasm
    [ -f "$wasm" ] || fail "corpus module $m is listed but missing"
    eps=$(node "$src/tests/host/opa/sdk_eval.js" "$wasm" --entrypoints)
    python3 - "$eps" >"$work/corpus.json" <<'EOF'
import json, sys
eps = list(json.loads(sys.argv[1]).keys())
review = lambda ns, priv: {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                           "operation": "CREATE", "namespace": ns,
                           "object": {"metadata": {"name": "p", "namespace": ns, "labels": {"team": "a"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx",
                                               "securityContext": {"privileged": priv}}]}}}
inputs = [{"request": review("default", False)}, {"request": review("prod", True)},
          {"review": review("default", True), "parameters": {}},
          {"review": review("team-a", False), "parameters": {"labels": ["team"]}},
          {}, {"x": 1, "user": "alice"}, [1, 2], "text"]   # (null: the SDK treats a falsy input as undefined)
datas = [None, {}, {"kubernetes": {"namespaces": {"default": {}}}, "settings": {"a": 1}}]
cases = []
for ep in eps:
    for inp in inputs:
        for d in datas:
            c = {"entrypoint": ep, "input": inp}
            if d is not None:
                c["data"] = d
            cases.append(c)
print(json.dumps(cases))
EOF
    run_both "$wasm" "$work/corpus.json" "corpus $m"
  done
fi
echo "differential: $compared cases equal to OPA's JavaScript SDK, $noted where the SDK departs from OPA"
