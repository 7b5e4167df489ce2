// Evaluates compiled Rego modules with OPA's JavaScript SDK (@open-policy-agent/opa-wasm), the
// reference of the differential tests (tests/host/test_opa_differential.sh).
//   node sdk_eval.js MODULE.wasm CASES.json [REFERENCE_BUILTINS.js]
//   node sdk_eval.js MODULE.wasm --entrypoints      (prints the module's entrypoints)
// CASES.json: [{"entrypoint": name (optional: 0), "input": any (absent: undefined),
// "data": any (absent: {})}, ...]. Prints one line per case: the result set as the SDK
// returns it, compact JSON, or {"error": message} when the evaluation threw (opa_abort, or
// a builtin the SDK lacks). REFERENCE_BUILTINS.js, when given, supplies the builtins the
// SDK does not implement (customBuiltins).
const fs = require("fs");
const { loadPolicy } = require("@open-policy-agent/opa-wasm");

(async () => {
  const [wasm, casesFile, refFile] = process.argv.slice(2);
  const custom = refFile ? require(require("path").resolve(refFile)) : {};
  const policy = await loadPolicy(fs.readFileSync(wasm), undefined, custom);
  if (casesFile === "--entrypoints") {
    process.stdout.write(JSON.stringify(policy.entrypoints) + "\n");
    return;
  }
  const cases = JSON.parse(fs.readFileSync(casesFile, "utf8"));
  const out = [];
  for (const c of cases) {
    try {
      policy.setData("data" in c ? c.data : {});
      out.push(JSON.stringify(policy.evaluate(c.input, c.entrypoint === undefined ? 0 : c.entrypoint)));
    } catch (e) {
      out.push(JSON.stringify({ error: String(e && e.message !== undefined ? e.message : e) }));
    }
  }
  process.stdout.write(out.join("\n") + "\n");
})().catch((e) => {
  console.error("sdk_eval: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
