/*
 * Rego policies end to end on the real engine, through the OPA WebAssembly ABI: the
 * generated fixtures of tests/host/opa/ (modules that import env.memory and the env.opa_*
 * functions and export what OPA's SDKs call), compiled with wasm2c + cc and run through
 * pw_policy_*: both ABI paths (opa_eval for 1.2+, the eval context for 1.1), input and data
 * plumbing, opa_abort, entrypoint names, the OPA and Gatekeeper modes shaped as Kubewarden's
 * rego runtime does, the executionMode rules, a module needing builtins Prewarm lacks, every
 * builtin case through opa_builtinN, heap restore under instance reuse, and (with
 * PREWARM_CORPUS) the Rego modules of the third-party corpus.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/host_internal.h"
#include "host/opa_internal.h"
#include "prewarm/engine.h"
#include "prewarm/policy.h"

static pw_engine *g_engine;

static pw_artifact *load(const char *path)
{
	static struct { char path[1024]; pw_artifact *a; } loaded[32];
	static int nloaded;
	for (int i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i].path, path))
			return loaded[i].a;
	if (!g_engine && pw_engine_new(&g_engine, NULL) < 0)
		return NULL;
	pw_buf wasm = PW_BUF_INIT, so = PW_BUF_INIT;
	pw_artifact *a = NULL;
	const pw_imports *im = pw_policy_host_imports();
	if (pw_file_read(path, 0, &wasm) == 0 && pw_engine_compile(g_engine, wasm.data, wasm.len, im, &so, NULL) == 0)
		pw_artifact_load(&a, so.data, so.len, NULL, im);
	pw_buf_free(&wasm);
	pw_buf_free(&so);
	if (a && nloaded < 32) {
		snprintf(loaded[nloaded].path, sizeof loaded[nloaded].path, "%s", path);
		loaded[nloaded++].a = a;
	}
	return a;
}

static pw_policy *make(const char *fixture, const char *mode, const char *settings)
{
	pw_artifact *a = load(pw_test_fixture(fixture));
	if (!a)
		return NULL;
	pw_policy_spec spec = { .id = "rego", .execution_mode = mode, .settings_json = settings };
	pw_policy *p = NULL;
	if (pw_policy_new(&p, &spec, a) < 0)
		return NULL;
	return p;
}

/* The raw result set of `entrypoint` on input/data. */
static char *raw(pw_policy *p, const char *entrypoint, const char *input, const char *data)
{
	char *rs = NULL;
	if (pw_policy_rego_eval(p, 0, entrypoint, input, input ? strlen(input) : 0, data,
	                        data ? strlen(data) : 0, &rs) < 0)
		return NULL;
	return rs;
}

static json_t *review(pw_policy *p, const char *object, pw_eval_kind kind, json_t **root)
{
	char *body = NULL;
	int n = kind == PW_EVAL_VALIDATE_RAW
	        ? asprintf(&body, "{\"request\":{\"uid\":\"raw-1\",\"object\":%s}}", object)
	        : asprintf(&body, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	                   "\"request\":{\"uid\":\"req-7\",\"operation\":\"CREATE\",\"object\":%s}}", object);
	if (n < 0)
		return NULL;
	char *answer = NULL;
	pw_eval_result r;
	int rc = pw_policy_evaluate(p, 0, body, strlen(body), kind, &answer, &r);
	free(body);
	if (rc < 0)
		return NULL;
	*root = json_loads(answer, 0, NULL);
	free(answer);
	return json_object_get(*root, "response");
}

static const char *status_msg(const json_t *r)
{
	const char *m = json_string_value(json_object_get(json_object_get(r, "status"), "message"));
	return m ? m : "";
}

static void test_raw_both_abi_paths(void)
{
	static const char *const fixtures[] = { "opa_policy.wasm", "opa_policy_classic.wasm" };
	for (int i = 0; i < 2; i++) {
		pw_policy *p = make(fixtures[i], "opa", NULL);
		CHECK_MSG(p, "%s: %s", fixtures[i], pw_error_last());
		CHECK_INT(pw_policy_get_abi(p), PW_POLICY_ABI_OPA);
		char *rs = raw(p, "echo", "{\"a\":[1,\"x\"]}", "{\"k\":true}");
		CHECK_MSG(rs, "%s", pw_error_last());
		CHECK_STR(rs, "[{\"result\":{\"input\":{\"a\":[1,\"x\"]},\"data\":{\"k\":true}}}]");
		free(rs);
		rs = raw(p, "echo", "{}", NULL);   /* no --data: {} as the SDKs do */
		CHECK_STR(rs, "[{\"result\":{\"input\":{},\"data\":{}}}]");
		free(rs);
		rs = raw(p, "echo", NULL, NULL);   /* undefined input */
		CHECK_STR(rs, "[]");
		free(rs);
		rs = raw(p, "fmt", "{}", NULL);
		CHECK_STR(rs, "[{\"result\":\"pod-a has 3 containers\"}]");
		free(rs);
		rs = raw(p, "now", "{}", NULL);
		json_t *j = rs ? json_loads(rs, 0, NULL) : NULL;
		CHECK(json_integer_value(json_object_get(json_array_get(j, 0), "result")) > 1600000000000000000LL);
		json_decref(j);
		free(rs);
		CHECK(raw(p, "boom", "{}", NULL) == NULL);
		CHECK_INT(pw_error_last_code(), PW_EINVALID);
		CHECK_MSG(strstr(pw_error_last(), "opa_abort: policy.rego:7: eval_conflict_error"), "%s", pw_error_last());
		CHECK(raw(p, "nope", "{}", NULL) == NULL);
		CHECK_INT(pw_error_last_code(), PW_ENOTFOUND);
		CHECK(strstr(pw_error_last(), "\"policy/main\""));
		/* the instance is not poisoned by the abort */
		rs = raw(p, NULL, "{\"privileged\":true}", NULL);
		CHECK(rs && strstr(rs, "\"allowed\":false"));
		free(rs);
		pw_policy_free(p);
	}
}

static void test_opa_mode(void)
{
	pw_policy *p = make("opa_policy_meta.wasm", NULL, "{\"limit\":3}");
	CHECK_MSG(p, "%s", pw_error_last());
	CHECK_INT(pw_policy_get_abi(p), PW_POLICY_ABI_OPA);
	CHECK_OK(pw_policy_validate_settings(p, 0, NULL));
	json_t *root = NULL;
	json_t *r = review(p, "{\"spec\":{\"privileged\":true}}", PW_EVAL_VALIDATE, &root);
	CHECK_MSG(r, "%s", pw_error_last());
	CHECK_STR(json_string_value(json_object_get(root, "kind")), "AdmissionReview");
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "req-7");   /* the request's, not the policy's */
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(status_msg(r), "privileged containers are not allowed");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "status"), "code")), 403);
	json_decref(root);
	r = review(p, "{\"spec\":{}}", PW_EVAL_VALIDATE, &root);
	CHECK(r && json_is_true(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_array_get(json_object_get(r, "warnings"), 0)), "checked by rego");
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "auditAnnotations"), "rego")), "yes");
	json_decref(root);
	/* validate_raw: the raw request is the input's request */
	r = review(p, "{\"privileged\":true}", PW_EVAL_VALIDATE_RAW, &root);
	CHECK(r && json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "raw-1");
	json_decref(root);
	/* the settings are the data */
	char *rs = raw(p, "echo", "{}", NULL);
	CHECK(rs);
	free(rs);
	pw_policy_free(p);
}

static void test_opa_mode_input_and_data(void)
{
	/* what Kubewarden passes: input {"request": ...}, data = settings */
	pw_policy *p = make("opa_policy.wasm", "opa", "{\"limit\":3}");
	CHECK_MSG(p, "%s", pw_error_last());
	char *rs = raw(p, "echo", "{\"request\":{\"uid\":\"x\"}}", "{\"limit\":3}");
	CHECK_STR(rs, "[{\"result\":{\"input\":{\"request\":{\"uid\":\"x\"}},\"data\":{\"limit\":3}}}]");
	free(rs);
	pw_policy_free(p);
}

static void test_gatekeeper_mode(void)
{
	pw_policy *p = make("opa_gatekeeper.wasm", NULL, "{\"labels\":[\"team\"]}");
	CHECK_MSG(p, "%s", pw_error_last());
	CHECK_INT(pw_policy_get_abi(p), PW_POLICY_ABI_GATEKEEPER);
	json_t *root = NULL;
	json_t *r = review(p, "{\"privileged\":true}", PW_EVAL_VALIDATE, &root);
	CHECK_MSG(r, "%s", pw_error_last());
	CHECK(json_is_false(json_object_get(r, "allowed")));
	/* violations without msg are skipped; no code, as Kubewarden */
	CHECK_STR(status_msg(r), "privileged containers are not allowed, container c1 is privileged");
	CHECK(!json_object_get(json_object_get(r, "status"), "code"));
	json_decref(root);
	r = review(p, "{\"privileged\":false}", PW_EVAL_VALIDATE, &root);
	CHECK(r && json_is_true(json_object_get(r, "allowed")));
	json_decref(root);
	r = review(p, "{}", PW_EVAL_VALIDATE_RAW, &root);
	CHECK(r && json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(status_msg(r), "internal server error: Gatekeeper does not support raw validation requests");
	json_decref(root);
	pw_policy_free(p);
}

/* pw_host_shape_rego_answer on result sets no fixture needs to produce */
static const char *shape(bool gk, const char *rs, json_t **root)
{
	static const char body[] = "{\"request\":{\"uid\":\"u9\",\"object\":{}}}";
	pw_host_req r;
	if (pw_host_req_parse(&r, body, strlen(body), PW_EVAL_VALIDATE) < 0)
		return NULL;
	pw_shape_opts o = { .policy_id = "p", .kind = PW_EVAL_VALIDATE };
	char *answer = NULL;
	int rc = pw_host_shape_rego_answer(&o, &r, gk, rs, strlen(rs), &answer, NULL);
	pw_host_req_free(&r);
	if (rc < 0)
		return NULL;
	*root = json_loads(answer, 0, NULL);
	free(answer);
	json_t *resp = json_object_get(*root, "response");
	return json_is_true(json_object_get(resp, "allowed")) ? "allowed" : status_msg(resp);
}

static void test_bad_rego_answers(void)
{
	static const struct { bool gk; const char *rs, *want; } cases[] = {
		{ false, "[]", "internal server error: cannot interpret OPA policy result" },
		{ false, "[{\"result\":{\"x\":1}}]", "internal server error: cannot interpret OPA policy result" },
		{ false, "[{\"result\":{\"response\":{\"uid\":\"a\",\"allowed\":\"yes\"}}}]",
		  "internal server error: invalid type for `allowed`: expected a boolean" },
		{ false, "[{\"result\":{\"response\":{\"allowed\":true}}}]", "internal server error: missing field `uid`" },
		{ false, "[{\"result\":{\"response\":{\"uid\":\"\",\"allowed\":true,\"patchType\":\"Merge\"}}}]",
		  "internal server error: unknown variant for `patchType`, expected `JSONPatch`" },
		{ false, "{}", "internal server error: policy p: the result set is not a JSON array" },
		{ false, "[{\"result\":{\"response\":{\"uid\":\"\",\"allowed\":true}}}]", "allowed" },
		/* Gatekeeper: what does not read as violations counts as none (unwrap_or_default) */
		{ true, "[]", "allowed" },
		{ true, "[{\"result\":[]}]", "allowed" },
		{ true, "[{\"result\":[{\"msg\":1}]}]", "allowed" },
		{ true, "[{\"result\":{\"msg\":\"x\"}}]", "allowed" },
		{ true, "[{\"result\":[{\"msg\":\"a\"},{\"msg\":null},{\"msg\":\"b\"}]}]", "a, b" },
		{ true, "[{\"result\":[{}]}]", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *root = NULL;
		const char *got = shape(cases[i].gk, cases[i].rs, &root);
		CHECK_MSG(got && !strcmp(got, cases[i].want), "case %zu %s: got '%s', expected '%s'", i, cases[i].rs,
		          got ? got : pw_error_last(), cases[i].want);
		CHECK_STR(json_string_value(json_object_get(json_object_get(root, "response"), "uid")), "u9");
		json_decref(root);
	}
}

static void test_execution_mode_rules(void)
{
	pw_artifact *a = load(pw_test_fixture("opa_policy.wasm"));
	CHECK(a);
	pw_policy *p = NULL;
	pw_policy_spec spec = { .id = "nomode" };
	CHECK(pw_policy_new(&p, &spec, a) == PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "set executionMode opa or gatekeeper"), "%s", pw_error_last());
	spec.execution_mode = "wasi";
	CHECK(pw_policy_new(&p, &spec, a) == PW_EINVALID);
	spec.execution_mode = "rego";
	CHECK(pw_policy_new(&p, &spec, a) == PW_EINVALID);
	CHECK(strstr(pw_error_last(), "unknown executionMode 'rego'"));
	/* -e overrides the metadata */
	pw_artifact *g = load(pw_test_fixture("opa_gatekeeper.wasm"));
	CHECK(g);
	spec.execution_mode = "opa";
	CHECK_OK(pw_policy_new(&p, &spec, g));
	CHECK_INT(pw_policy_get_abi(p), PW_POLICY_ABI_OPA);
	pw_policy_free(p);
	/* opa on a waPC module */
	pw_artifact *w = load(pw_test_fixture("host_wapc.wasm"));
	CHECK(w);
	CHECK(pw_policy_new(&p, &spec, w) == PW_EINVALID);
	CHECK(strstr(pw_error_last(), "not built from Rego"));
}

static void test_missing_builtins_refused(void)
{
	pw_artifact *a = load(pw_test_fixture("opa_missing_builtins.wasm"));
	CHECK(a);
	pw_policy *p = NULL;
	pw_policy_spec spec = { .id = "mb", .execution_mode = "opa" };
	CHECK(pw_policy_new(&p, &spec, a) == PW_EUNSUPPORTED);
	CHECK_MSG(strstr(pw_error_last(), "crypto.x509.parse_certificates") && strstr(pw_error_last(), "http.send") &&
	          !strstr(pw_error_last(), "sprintf"), "%s", pw_error_last());
}

/* Every case of builtin_cases.json through opa_builtinN: [{"result": want}], or [] where
 * the builtin fails (an error makes the expression undefined). */
static void test_builtin_cases_through_the_abi(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/host/opa/builtin_cases.json", pw_test_env("PREWARM_SOURCE_DIR", "."));
	json_t *cases = json_load_file(path, 0, NULL);
	CHECK(json_is_array(cases));
	static const char *const fixtures[] = { "opa_builtins.wasm", "opa_builtins_classic.wasm" };
	for (int f = 0; f < 2; f++) {
		pw_policy *p = make(fixtures[f], "opa", NULL);
		CHECK_MSG(p, "%s", pw_error_last());
		size_t i;
		json_t *c;
		json_array_foreach(cases, i, c) {
			char ep[32];
			snprintf(ep, sizeof ep, "case/%zu", i);
			char *rs = raw(p, ep, "{}", NULL);
			CHECK_MSG(rs, "%s %s: %s", fixtures[f], ep, pw_error_last());
			json_t *got = json_loads(rs, 0, NULL);
			json_t *want = json_object_get(c, "error") ? json_array()
			               : json_pack("[{s:O}]", "result", json_object_get(c, "want"));
			CHECK_MSG(json_equal(got, want), "%s %s (%s): %s", fixtures[f], ep,
			          json_string_value(json_object_get(c, "b")), rs);
			json_decref(got);
			json_decref(want);
			free(rs);
		}
		pw_policy_free(p);
	}
	json_decref(cases);
}

/* pw_opa_evaluate resets the heap to the point after the data before every evaluation: 300
 * evaluations of a 64 KiB input on one instance leave its memory where one left it. */
static void test_heap_restored_per_evaluation(void)
{
	static const char *const fixtures[] = { "opa_policy.wasm", "opa_policy_classic.wasm" };
	for (int f = 0; f < 2; f++) {
		pw_artifact *a = load(pw_test_fixture(fixtures[f]));
		CHECK(a);
		pw_opa *o = NULL;
		CHECK_OK(pw_opa_new(&o, a, fixtures[f]));
		pw_host_call c;
		pw_host_call_init(&c, NULL, "heap");
		pw_opa_call oc;
		pw_opa_call_init(&oc, o, c.log_tag);
		c.opa = &oc;
		pw_instance_opts io = { .host_data = &c };
		pw_instance *inst = NULL;
		CHECK_OK(pw_instance_new(&inst, a, &io));
		CHECK_OK(pw_opa_prepare(&oc, inst, "{\"k\":1}", 7));
		pw_buf in = PW_BUF_INIT, out = PW_BUF_INIT;
		pw_buf_puts(&in, "{\"pad\":\"");
		for (int i = 0; i < 65536; i++)
			pw_buf_append(&in, "x", 1);
		pw_buf_puts(&in, "\"}");
		uint64_t first = 0, now = 0;
		int32_t echo;
		CHECK_OK(pw_opa_entrypoint_id(o, "echo", &echo));
		for (int i = 0; i < 300 && !pw_test_stopped(); i++) {
			CHECK_OK(pw_opa_evaluate(&oc, inst, echo, (const char *)in.data, in.len, &out));
			CHECK(out.len > in.len);
			pw_instance_memory(inst, i ? &now : &first);
		}
		CHECK_MSG(now == first, "%s: memory grew from %llu to %llu bytes", fixtures[f],
		          (unsigned long long)first, (unsigned long long)now);
		pw_buf_free(&in);
		pw_buf_free(&out);
		pw_instance_free(inst);
		pw_opa_call_free(&oc);
		pw_host_call_free(&c);
		pw_opa_free(o);
	}
}

static void test_corpus_modules(void)
{
	const char *corpus = getenv("PREWARM_CORPUS");
	if (!corpus || !*corpus) {
		pw_test_skip("PREWARM_CORPUS not set (the third-party corpus is absent)");
		return;
	}
	char path[1024];
	snprintf(path, sizeof path, "%s/kubewarden_kubewarden-controller__no_default_namespace_rego.wasm", corpus);
	pw_artifact *a = load(path);
	CHECK_MSG(a, "%s: %s", path, pw_error_last());
	pw_policy_spec spec = { .id = "no-default-ns", .execution_mode = "opa" };
	pw_policy *p = NULL;
	CHECK_OK(pw_policy_new(&p, &spec, a));
	json_t *root = NULL;
	char body[] = "{\"request\":{\"uid\":\"u1\",\"namespace\":\"default\",\"object\":{\"metadata\":"
	              "{\"namespace\":\"default\"}}}}";
	char *answer = NULL;
	CHECK_OK(pw_policy_evaluate(p, 0, body, strlen(body), PW_EVAL_VALIDATE, &answer, NULL));
	root = json_loads(answer, 0, NULL);
	json_t *r = json_object_get(root, "response");
	CHECK_MSG(json_is_false(json_object_get(r, "allowed")), "%s", answer);
	CHECK_STR(status_msg(r), "you cannot use the default namespace");
	json_decref(root);
	free(answer);
	pw_policy_free(p);
	snprintf(path, sizeof path, "%s/kubewarden_kubewarden-controller__gatekeeper_always_happy.wasm", corpus);
	a = load(path);
	CHECK_MSG(a, "%s: %s", path, pw_error_last());
	spec.execution_mode = "gatekeeper";
	CHECK_OK(pw_policy_new(&p, &spec, a));
	CHECK_OK(pw_policy_evaluate(p, 0, body, strlen(body), PW_EVAL_VALIDATE, &answer, NULL));
	CHECK_MSG(strstr(answer, "\"allowed\":true"), "%s", answer);
	free(answer);
	pw_policy_free(p);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_raw_both_abi_paths),
		PW_TEST(test_opa_mode),
		PW_TEST(test_opa_mode_input_and_data),
		PW_TEST(test_gatekeeper_mode),
		PW_TEST(test_bad_rego_answers),
		PW_TEST(test_execution_mode_rules),
		PW_TEST(test_missing_builtins_refused),
		PW_TEST(test_builtin_cases_through_the_abi),
		PW_TEST(test_heap_restored_per_evaluation),
		PW_TEST(test_corpus_modules),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
