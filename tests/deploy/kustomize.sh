#!/usr/bin/env bash
# deploy/ renders and validates: `kubectl kustomize` (kubectl's built-in kustomize) renders
# every variant in deploy/variants/; every rendered object validates against the Kubernetes
# API schema (npm kubernetes-models, unknown fields refused as kubectl's strict validation
# does) or, for the PolicyServer, against kubewarden-controller's CRD schema
# (tests/deploy/fixtures/policyserver-v1-schema.json, with ajv); the objects of each variant
# fit together (validate.js, point 2); and the wiring each component promises is there (the
# checks below). validate.js must also refuse fixtures/broken.yaml, one mistake per object.
# Skips with a message when kubectl, its kustomize (components need kustomize >= 3.7, i.e.
# kubectl >= 1.21), node/npm or the npm registry are missing. The npm packages are installed
# into the build tree (PREWARM_BUILD_DIR/deploy-npm), once.
set -euo pipefail
: "${PREWARM_SOURCE_DIR:?PREWARM_SOURCE_DIR not set (run through ctest)}"
: "${PREWARM_BUILD_DIR:?PREWARM_BUILD_DIR not set (run through ctest)}"
src=$PREWARM_SOURCE_DIR
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
ok() { echo "ok: $*"; }
command -v kubectl >/dev/null || skip "kubectl not installed (Debian: kubernetes-client)"
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not installed"

out=$PREWARM_BUILD_DIR/deploy-test
rm -rf "$out"
mkdir -p "$out"

# 1. render every variant
variants=()
for d in "$src"/deploy/variants/*/; do variants+=("$(basename "$d")"); done
[ ${#variants[@]} -ge 8 ] || fail "expected the 8 variants of docs/deploy.md, found ${#variants[@]}"
for v in "${variants[@]}"; do
	if ! kubectl kustomize "$src/deploy/variants/$v" >"$out/$v.yaml" 2>"$out/$v.err"; then
		if grep -q -i "components" "$out/$v.err" && ! grep -q "Kustomize Version: v[3-9]" <<<"$(kubectl version --client 2>/dev/null)"; then
			skip "kubectl's kustomize is too old for components ($(kubectl version --client 2>&1 | tr '\n' ' '))"
		fi
		cat "$out/$v.err" >&2
		fail "kubectl kustomize deploy/variants/$v"
	fi
done
ok "kubectl kustomize renders ${#variants[@]} variants"

# 2. the validator (npm packages into the build tree)
npmdir=$PREWARM_BUILD_DIR/deploy-npm
pkgs=(kubernetes-models@4.5.1 ajv@8.20.0 yaml@2.9.1)
if [ "$(cat "$npmdir/installed" 2>/dev/null || true)" != "${pkgs[*]}" ]; then
	rm -rf "$npmdir"
	mkdir -p "$npmdir"
	(cd "$npmdir" && echo '{"name":"prewarm-deploy-test","private":true}' >package.json &&
		npm install --no-audit --no-fund --loglevel=error "${pkgs[@]}" >"$npmdir/npm.log" 2>&1) ||
		skip "npm install ${pkgs[*]} failed (no npm registry?): $(tail -n 3 "$npmdir/npm.log" | tr '\n' ' ')"
	echo "${pkgs[*]}" >"$npmdir/installed"
fi
export NODE_PATH=$npmdir/node_modules
schema=$src/tests/deploy/fixtures/policyserver-v1-schema.json
# made by the user (docs/deploy.md) or by kubewarden-controller (its policies ConfigMap)
external=Secret/prewarm-tls,Secret/prewarm-cache-registry-tls,Secret/prewarm-cache-registry-htpasswd
external+=,Secret/prewarm-cache-registry-auth,ConfigMap/policy-server-prewarm
validate=(node "$src/tests/deploy/validate.js" --crd "$schema" --external "$external")

# the validator can fail: each mistake of broken.yaml is reported
if "${validate[@]}" "$src/tests/deploy/fixtures/broken.yaml" >"$out/broken.out" 2>&1; then
	cat "$out/broken.out" >&2; fail "validate.js accepted fixtures/broken.yaml"
fi
B=$(cat "$out/broken.out")
for want in "Deployment/wrong-type: data/spec/replicas must be integer" \
	"Deployment/typo-field: unknown field /spec/template/spec/containers/0/volumeMount" \
	"PolicyServer/bad-ps: /spec must have required property 'replicas'" \
	"PolicyServer/bad-ps: /spec must NOT have additional properties (imagePullSecrets)" \
	"PolicyServer/bad-ps: cluster-scoped, but has namespace kubewarden" \
	"uses Secret/no-such-secret" "mounts unknown volume missing" \
	"env PREWARM_CACHE_DIR is outside every mount" "NetworkPolicy/open: admits more than pods of this namespace"; do
	grep -q -F "$want" <<<"$B" || { echo "$B" >&2; fail "validate.js did not report: $want"; }
done
ok "validate.js reports each of the 9 mistakes of fixtures/broken.yaml"

files=()
for v in "${variants[@]}"; do files+=("$out/$v.yaml"); done
if ! "${validate[@]}" "${files[@]}" >"$out/validate.out" 2>&1; then
	cat "$out/validate.out" >&2; fail "rendered objects do not validate"
fi
total=$(awk '/objects checked/ {n += $2} END {print n}' "$out/validate.out")
[ "$total" -gt 0 ] || fail "no object checked"
ok "$total rendered objects validate (Kubernetes API schema, PolicyServer CRD schema, fit)"

# 3. what each component promises, read from the rendered objects: each `expect VARIANT JS
# WANT` is one line of checks.tsv, evaluated by one node process over that variant's objects
checks=$out/checks.tsv
: >"$checks"
expect() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$checks"; }
img='"ghcr.io/example/prewarm:0.1.0"'
ps_env='env(get("PolicyServer").spec)'
dep='get("Deployment","prewarm").spec.template.spec'
job='get("Job","prewarm-cache-warm").spec.template.spec'
reg='get("Deployment","prewarm-cache-registry").spec.template.spec'
for v in standalone standalone-registry standalone-registry-pvc standalone-shared-volume standalone-shared-volume-registry; do
	expect $v "$dep.containers[0].image" "$img"
	expect $v "$job.containers[0].image" "$img"
	expect $v 'objs.filter((o) => o.kind !== "Namespace" && !/Webhook/.test(o.kind)).every((o) => o.metadata.namespace === "prewarm")' true
	expect $v "get(\"ValidatingWebhookConfiguration\").webhooks[0].clientConfig.service.namespace" '"prewarm"'
	expect $v "$dep.containers[0].command === undefined && $dep.containers[0].args === undefined" true
	expect $v "env($dep.containers[0]).KUBEWARDEN_POLICIES" '"/config/policies.yml"'
done
for v in kubewarden kubewarden-registry kubewarden-registry-pvc; do
	expect $v 'get("PolicyServer").spec.image' "$img"
	expect $v "$job.containers[0].image" "$img"
	expect $v 'objs.every((o) => o.metadata.namespace === undefined)' true
	expect $v 'get("PolicyServer").spec.labels["prewarm.io/cache-client"]' '"true"'
	expect $v "$job.volumes.find((x) => x.name === \"policies\").configMap.name" '"policy-server-prewarm"'
done
expect standalone 'objs.some((o) => /cache-registry|PersistentVolumeClaim/.test(o.metadata.name + o.kind))' false
expect kubewarden 'get("PolicyServer").spec.imagePullSecret === undefined && get("Deployment") === undefined' true
registry='"prewarm-cache-registry:5000/prewarm/artifacts"'
for v in standalone-registry standalone-registry-pvc standalone-shared-volume-registry; do
	expect $v "env($dep.containers[0]).PREWARM_CACHE_REGISTRY" "$registry"
	expect $v "env($dep.containers[0]).PREWARM_CACHE_REGISTRY_CA" '"/secrets/cache-registry-ca/ca.crt"'
	expect $v "$dep.volumes.find((x) => x.name === \"cache-registry-ca\").secret.secretName" '"prewarm-cache-registry-tls"'
done
for v in kubewarden-registry kubewarden-registry-pvc; do
	expect $v "$ps_env.PREWARM_CACHE_REGISTRY" "$registry"
	expect $v 'get("PolicyServer").spec.imagePullSecret' '"prewarm-cache-registry-auth"'
	expect $v 'Object.keys(get("PolicyServer").spec.sourceAuthorities)' '["prewarm-cache-registry:5000"]'
done
for v in standalone-registry standalone-registry-pvc standalone-shared-volume-registry kubewarden-registry kubewarden-registry-pvc; do
	expect $v "env($job.containers[0]).PREWARM_CACHE_REGISTRY" "$registry"
	expect $v "$job.containers[0].args.includes(\"--docker-config-json-path=/secrets/cache-registry\")" true
	expect $v 'get("ConfigMap","prewarm-cache-registry").data["config.yml"].includes("htpasswd")' true
	expect $v "$reg.volumes.find((x) => x.name === \"tls\").secret.secretName" '"prewarm-cache-registry-tls"'
	expect $v 'get("NetworkPolicy").spec.ingress[0].from' '[{"podSelector":{"matchLabels":{"prewarm.io/cache-client":"true"}}}]'
	expect $v 'get("Service","prewarm-cache-registry").spec.type' '"ClusterIP"'
done
for v in standalone-registry kubewarden-registry; do
	expect $v "Object.keys($reg.volumes.find((x) => x.name === \"storage\")).sort()" '["emptyDir","name"]'
done
for v in standalone-registry-pvc standalone-shared-volume-registry kubewarden-registry-pvc; do
	expect $v "$reg.volumes.find((x) => x.name === \"storage\")" '{"name":"storage","persistentVolumeClaim":{"claimName":"prewarm-cache-registry"}}'
	expect $v 'get("PersistentVolumeClaim","prewarm-cache-registry").spec.accessModes' '["ReadWriteOnce"]'
done
for v in standalone-shared-volume standalone-shared-volume-registry; do
	expect $v 'get("PersistentVolumeClaim","prewarm-shared-cache").spec.accessModes' '["ReadWriteMany"]'
	for w in "$dep" "$job"; do
		expect $v "env($w.containers[0]).PREWARM_CACHE_DIR" '"/var/cache/prewarm/artifacts"'
		expect $v "$w.volumes.find((x) => x.name === \"shared-cache\").persistentVolumeClaim.claimName" '"prewarm-shared-cache"'
	done
done
n=$(wc -l <"$checks")
if ! node -e '
	const YAML = require("yaml"), fs = require("fs");
	const [checks, dir] = process.argv.slice(1);
	let bad = 0;
	for (const line of fs.readFileSync(checks, "utf8").split("\n").filter(Boolean)) {
		const [variant, expr, want] = line.split("\t");
		const objs = YAML.parseAllDocuments(fs.readFileSync(`${dir}/${variant}.yaml`, "utf8")).map((d) => d.toJS()).filter(Boolean);
		const get = (kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
		const env = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
		let got;
		try { got = JSON.stringify(eval(expr)); } catch (e) { got = `error: ${e.message}`; }
		if (got !== want) { console.log(`FAIL: ${variant}: ${expr} is ${got}, expected ${want}`); bad++; }
	}
	process.exit(bad ? 1 : 0);' "$checks" "$out" >&2; then
	fail "the rendered variants miss wiring (above)"
fi
ok "each component's wiring is in the rendered variants ($n checks)"
echo "deploy: ${#variants[@]} variants rendered, $total objects valid"
