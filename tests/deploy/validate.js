// Validates rendered Kubernetes manifests (multi-document YAML files, one per deploy/
// variant) the way the API server would, then checks that the objects of one file fit
// together. Used by tests/deploy/kustomize.sh; run with NODE_PATH pointing at the npm
// packages that script installs into the build tree:
//   node validate.js --crd SCHEMA.json --external KIND/NAME,... FILE.yaml...
// Exit 0 when every object of every file passes; 1 with one line per problem otherwise.
//
// 1. Schema: each built-in kind against the Kubernetes API's openAPI schema as the
//    kubernetes-models package compiles it (types, required fields, enums, formats), plus
//    unknown fields, which kubectl's strict field validation refuses and the schemas alone
//    do not: a Proxy records which keys of each object the schema's validator reads, and a
//    key of a typed object that it never read is not in the schema. PolicyServer against
//    the openAPI schema of kubewarden-controller's CRD (--crd, a vendored fixture, see
//    fixtures/README.md) with ajv, objects closed as the API server's pruning closes them.
// 2. Fit: every ConfigMap, Secret and PersistentVolumeClaim a pod uses is in the file or
//    named in --external (what the user or the controller creates); every volumeMount names
//    a volume; every absolute path a container gets in its env or args lies under one of its
//    mounts (the root file system is read-only); Services, PodDisruptionBudgets and
//    NetworkPolicies select pods of the file; only cache clients reach the cache registry;
//    cluster-scoped objects carry no namespace.
"use strict";
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");
const Ajv = require("ajv");

const args = process.argv.slice(2);
let crdFile = null;
let external = new Set();
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--crd") crdFile = args[++i];
  else if (args[i] === "--external") external = new Set(args[++i].split(",").filter(Boolean));
  else files.push(args[i]);
}
if (!crdFile || files.length === 0) {
  console.error("usage: node validate.js --crd SCHEMA.json [--external KIND/NAME,...] FILE.yaml...");
  process.exit(2);
}

const CLUSTER_SCOPED = new Set(["Namespace", "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding", "PolicyServer",
  "CustomResourceDefinition", "PersistentVolume", "StorageClass"]);

// ---- 1. schema ---------------------------------------------------------------------------
const crd = JSON.parse(fs.readFileSync(crdFile, "utf8"));
// The API server prunes fields a structural schema does not declare, and strict field
// validation reports them: close every object schema that lists properties.
function closeSchema(s) {
  if (Array.isArray(s)) return s.map(closeSchema);
  if (!s || typeof s !== "object") return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === "properties"
    ? Object.fromEntries(Object.entries(v).map(([p, ps]) => [p, closeSchema(ps)])) : closeSchema(v);
  if (out.properties && out.additionalProperties === undefined &&
      !out["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  return out;
}
// strictTypes off: int-or-string fields put `pattern` beside an anyOf of integer and string
const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
for (const kw of ["x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource"])
  ajv.addKeyword(kw);
for (const f of ["int32", "int64", "date-time", "byte", "double", "float"]) ajv.addFormat(f, true);
const crdSchema = closeSchema(crd.openAPIV3Schema);
// metadata is `type: object` in a CRD's schema; the API server checks it as ObjectMeta
crdSchema.properties.metadata = { type: "object" };
const validateCrd = ajv.compile(crdSchema);
const crdApiVersion = `${crd.group}/${crd.version}`;

function modelFor(apiVersion, kind) {
  const dir = apiVersion.includes("/") ? apiVersion : `v1`;   // core "v1" lives at the top
  const mod = `kubernetes-models/${dir}/${kind}`;
  try {
    return require(mod)[kind];
  } catch (e) {
    return null;
  }
}

// strictValidate(Model, obj): the model's schema check, then the unknown keys it never read
function strictValidate(Model, obj) {
  const seen = new Map();
  const wrap = (v, p) => {
    if (v === null || typeof v !== "object") return v;
    const rec = { path: p, keys: new Set() };
    seen.set(v, rec);
    return new Proxy(v, {
      get(t, k, r) {
        if (typeof k === "string") rec.keys.add(k);
        const x = Reflect.get(t, k, r);
        return typeof k === "string" && Object.prototype.hasOwnProperty.call(t, k) ? wrap(x, `${p}/${k}`) : x;
      },
      has(t, k) { if (typeof k === "string") rec.keys.add(k); return Reflect.has(t, k); },
      ownKeys(t) { for (const k of Reflect.ownKeys(t)) if (typeof k === "string") rec.keys.add(k); return Reflect.ownKeys(t); },
      getOwnPropertyDescriptor(t, k) { if (typeof k === "string") rec.keys.add(k); return Reflect.getOwnPropertyDescriptor(t, k); },
    });
  };
  const problems = [];
  try {
    Model.prototype.validate.call(wrap(obj, ""));
  } catch (e) {
    problems.push(e.message);
  }
  for (const [t, rec] of seen) {
    if (Array.isArray(t) || rec.keys.size === 0) continue;   // untyped (open) objects read nothing
    for (const k of Object.keys(t)) if (!rec.keys.has(k)) problems.push(`unknown field ${rec.path}/${k}`);
  }
  return problems;
}

function schemaProblems(o) {
  if (!o || typeof o !== "object" || !o.apiVersion || !o.kind) return ["not a Kubernetes object (no apiVersion/kind)"];
  if (!o.metadata || !o.metadata.name) return ["no metadata.name"];
  if (o.apiVersion === crdApiVersion && o.kind === crd.kind) {
    if (validateCrd(o)) return [];
    return validateCrd.errors.map((e) => `${e.instancePath || "/"} ${e.message}` +
      (e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""));
  }
  const Model = modelFor(o.apiVersion, o.kind);
  if (!Model) return [`no schema for ${o.apiVersion} ${o.kind}`];
  return strictValidate(Model, o);
}

// ---- 2. fit ------------------------------------------------------------------------------
// pods(objs): every pod template of the file, with the labels its pods get
function pods(objs) {
  const out = [];
  for (const o of objs) {
    const tmpl = o.spec && o.spec.template;
    if (["Deployment", "Job", "StatefulSet", "DaemonSet"].includes(o.kind) && tmpl)
      out.push({ owner: `${o.kind}/${o.metadata.name}`, labels: (tmpl.metadata || {}).labels || {}, spec: tmpl.spec });
    if (o.kind === "PolicyServer")   // the controller's pods: spec.labels plus its own
      out.push({ owner: `PolicyServer/${o.metadata.name}`, controllerMade: true,
        labels: Object.assign({}, o.spec.labels || {}, { "app.kubernetes.io/component": "policy-server",
          "kubewarden/policy-server": o.metadata.name }) });
  }
  return out;
}
const matches = (sel, labels) => Object.entries(sel || {}).every(([k, v]) => labels[k] === v);
const under = (p, dir) => p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

function fitProblems(objs) {
  const problems = [];
  const have = new Set(objs.map((o) => `${o.kind}/${o.metadata.name}`));
  const need = (kind, name, who) => {
    if (!have.has(`${kind}/${name}`) && !external.has(`${kind}/${name}`))
      problems.push(`${who}: uses ${kind}/${name}, which is neither in the file nor created outside (--external)`);
  };
  const ps = pods(objs);
  for (const p of ps) {
    if (p.controllerMade) continue;
    const vols = new Set((p.spec.volumes || []).map((v) => v.name));
    for (const v of p.spec.volumes || []) {
      if (v.configMap) need("ConfigMap", v.configMap.name, p.owner);
      if (v.secret) need("Secret", v.secret.secretName, p.owner);
      if (v.persistentVolumeClaim) need("PersistentVolumeClaim", v.persistentVolumeClaim.claimName, p.owner);
      const sources = ["configMap", "secret", "persistentVolumeClaim", "emptyDir"].filter((s) => v[s] !== undefined);
      if (sources.length !== 1) problems.push(`${p.owner}: volume ${v.name} has ${sources.length} sources (${sources.join(", ")})`);
    }
    for (const c of p.spec.containers || []) {
      const mounts = c.volumeMounts || [];
      for (const m of mounts) if (!vols.has(m.name)) problems.push(`${p.owner}: container ${c.name} mounts unknown volume ${m.name}`);
      const names = (c.env || []).map((e) => e.name);
      for (const n of names) if (names.indexOf(n) !== names.lastIndexOf(n)) problems.push(`${p.owner}: env ${n} twice`);
      const paths = (c.env || []).filter((e) => typeof e.value === "string" && e.value.startsWith("/"))
        .map((e) => [`env ${e.name}`, e.value])
        .concat((c.args || []).map((a) => /^--[a-z-]+=(\/.*)$/.exec(a)).filter(Boolean).map((m) => [`arg ${m[0]}`, m[1]]))
        .concat((c.args || []).filter((a) => a.startsWith("/")).map((a) => [`arg ${a}`, a]));
      for (const [what, p0] of paths)
        if (!mounts.some((m) => under(p0, m.mountPath)))
          problems.push(`${p.owner}: ${what} is outside every mount of container ${c.name}`);
    }
  }
  for (const o of objs) {
    const who = `${o.kind}/${o.metadata.name}`;
    if (CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace) problems.push(`${who}: cluster-scoped, but has namespace ${o.metadata.namespace}`);
    let sel = null;
    if (o.kind === "Service") sel = o.spec.selector;
    if (o.kind === "PodDisruptionBudget" || o.kind === "NetworkPolicy")
      sel = (o.kind === "NetworkPolicy" ? o.spec.podSelector : o.spec.selector).matchLabels;
    if (sel && !ps.some((p) => matches(sel, p.labels))) problems.push(`${who}: selects no pod of the file`);
    if (o.kind === "NetworkPolicy") {
      const from = [].concat(...(o.spec.ingress || []).map((r) => r.from || []));
      const allowed = (p) => from.some((f) => f.podSelector && !f.namespaceSelector && !f.ipBlock && matches(f.podSelector.matchLabels, p.labels));
      if (from.length === 0 || from.some((f) => f.ipBlock || f.namespaceSelector || !f.podSelector)) problems.push(`${who}: admits more than pods of this namespace`);
      for (const p of ps) {
        const target = matches(sel, p.labels);
        const client = /prewarm|PolicyServer/.test(p.owner) && !target;
        if (client && !allowed(p)) problems.push(`${who}: ${p.owner} is a cache client but is not admitted`);
        if (!client && !target && allowed(p)) problems.push(`${who}: admits ${p.owner}, which is no cache client`);
      }
    }
  }
  return problems;
}

let failed = 0;
for (const f of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(f, "utf8"));
  const objs = [];
  for (const d of docs) {
    if (d.errors.length) { console.log(`${f}: YAML error: ${d.errors[0].message}`); failed++; continue; }
    const o = d.toJS();
    if (o === null) continue;
    objs.push(o);
  }
  const base = path.basename(f);
  let n = 0;
  for (const o of objs) {
    const who = `${o.kind || "?"}/${(o.metadata && o.metadata.name) || "?"}`;
    for (const p of schemaProblems(o)) { console.log(`${base}: ${who}: ${p}`); failed++; }
    n++;
  }
  for (const p of fitProblems(objs.filter((o) => o && o.kind && o.metadata))) { console.log(`${base}: ${p}`); failed++; }
  console.log(`${base}: ${n} objects checked`);
}
process.exit(failed ? 1 : 0);
