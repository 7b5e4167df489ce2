/*
 * Tests of the host part's pure JSON logic, without any wasm: the RFC 6902 differ (checked
 * by applying its output and comparing), RFC 6901 escaping, and the shaping of policy
 * answers into AdmissionReview / validate_raw bodies with Kubewarden's rules (uid, status,
 * patch, warnings, auditAnnotations, monitor mode, allowedToMutate, custom message, bad
 * answers).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/host_internal.h"
#include "prewarm/policy.h"

/* diff(from, to) applied to from must give to */
static int roundtrip(const char *from, const char *to)
{
	char *patch = NULL;
	if (pw_policy_json_patch(from, to, &patch) < 0)
		return 0;
	json_t *p = json_loads(patch, 0, NULL);
	json_t *doc = json_loads(from, JSON_DECODE_ANY, NULL);
	json_t *want = json_loads(to, JSON_DECODE_ANY, NULL);
	int ok = p && doc && want && pw_host_json_patch_apply(&doc, p) == 0 && json_equal(doc, want);
	json_decref(p);
	json_decref(doc);
	json_decref(want);
	free(patch);
	return ok;
}

static void test_patch_roundtrips(void)
{
	static const char *cases[][2] = {
		{ "{}", "{}" },
		{ "{\"a\":1}", "{\"a\":2}" },
		{ "{\"a\":1,\"b\":2}", "{\"b\":2,\"c\":[1,2]}" },
		{ "{\"m\":{\"labels\":{}}}", "{\"m\":{\"labels\":{\"a/b~c\":\"x\"}}}" },
		{ "[1,2,3,4]", "[1,5]" },
		{ "[1]", "[1,2,3,{\"x\":null}]" },
		{ "{\"a\":[{\"b\":1},{\"c\":2}]}", "{\"a\":[{\"b\":2}]}" },
		{ "{\"a\":\"s\"}", "{\"a\":{\"x\":1}}" },
		{ "1", "\"s\"" },
		{ "{\"~\":{\"/\":1}}", "{\"~\":{\"/\":2,\"~1\":3}}" },
		{ "{\"a\":1.5,\"b\":true}", "{\"a\":1,\"b\":false}" },
		{ "{\"\":1}", "{\"\":[]}" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK_MSG(roundtrip(cases[i][0], cases[i][1]), "case %zu: %s -> %s", i, cases[i][0], cases[i][1]);
}

static void test_patch_exact(void)
{
	char *p = NULL;
	CHECK_OK(pw_policy_json_patch("{\"metadata\":{\"labels\":{}}}",
	                              "{\"metadata\":{\"labels\":{\"a/b~c\":\"x\"}}}", &p));
	CHECK_STR(p, "[{\"op\":\"add\",\"path\":\"/metadata/labels/a~1b~0c\",\"value\":\"x\"}]");
	free(p);
	CHECK_OK(pw_policy_json_patch("{\"a\":[1,2,3]}", "{\"a\":[1]}", &p));
	CHECK_STR(p, "[{\"op\":\"remove\",\"path\":\"/a/2\"},{\"op\":\"remove\",\"path\":\"/a/1\"}]");
	free(p);
	CHECK_OK(pw_policy_json_patch("{\"x\":1}", "{\"x\":1}", &p));
	CHECK_STR(p, "[]");
	free(p);
	CHECK_INT(pw_policy_json_patch("{", "{}", &p), PW_EINVALID);
	CHECK(p == NULL);
	CHECK(strstr(pw_error_last(), "'from'") != NULL);
}

static void test_patch_apply_rejects(void)
{
	json_t *doc = json_loads("{\"a\":[1]}", 0, NULL);
	const char *bad[] = {
		"[{\"op\":\"remove\",\"path\":\"/b\"}]",
		"[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":1}]",
		"[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":1}]",
		"[{\"op\":\"test\",\"path\":\"/a/0\",\"value\":2}]",
		"[{\"op\":\"frob\",\"path\":\"/a\"}]",
		"[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/0\"}]",
		"[{\"op\":\"add\",\"path\":\"/a/~2\",\"value\":1}]",
		"{}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *p = json_loads(bad[i], 0, NULL);
		CHECK(p);
		CHECK_MSG(pw_host_json_patch_apply(&doc, p) == PW_EINVALID, "patch %s applied", bad[i]);
		json_decref(p);
	}
	json_decref(doc);
}

/* Shapes `policy_out` for a request and returns the parsed answer's "response". */
static json_t *shape(const pw_shape_opts *o, const char *body, const char *policy_out,
                     pw_eval_result *res, json_t **root)
{
	pw_host_req r;
	if (pw_host_req_parse(&r, body, strlen(body), o->kind) < 0)
		return NULL;
	char *answer = NULL;
	int rc = pw_host_shape_answer(o, &r, (const uint8_t *)policy_out, strlen(policy_out), &answer, res);
	pw_host_req_free(&r);
	if (rc < 0)
		return NULL;
	*root = json_loads(answer, 0, NULL);
	free(answer);
	return json_object_get(*root, "response");
}

#define REVIEW "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":" \
	"{\"uid\":\"u-123\",\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"name\":\"p\",\"labels\":{}}}}}"

static void test_answer_accept_reject(void)
{
	pw_shape_opts o = { .policy_id = "pol", .kind = PW_EVAL_VALIDATE };
	pw_eval_result res = { 0 };
	json_t *root = NULL;
	json_t *r = shape(&o, REVIEW, "{\"accepted\":true}", &res, &root);
	CHECK(r);
	CHECK_STR(json_string_value(json_object_get(root, "kind")), "AdmissionReview");
	CHECK_STR(json_string_value(json_object_get(root, "apiVersion")), "admission.k8s.io/v1");
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "u-123");
	CHECK(json_is_true(json_object_get(r, "allowed")));
	CHECK(json_object_get(r, "status") == NULL);
	CHECK(json_is_null(json_object_get(r, "warnings")));
	CHECK(json_is_null(json_object_get(r, "auditAnnotations")));
	CHECK(res.allowed && res.policy_allowed && !res.mutated);
	json_decref(root);

	r = shape(&o, REVIEW, "{\"accepted\":false,\"message\":\"no\",\"code\":403,"
	          "\"warnings\":[\"w\"],\"audit_annotations\":{\"k\":\"v\"}}", &res, &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "status"), "message")), "no");
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "status"), "code")), 403);
	CHECK_STR(json_string_value(json_array_get(json_object_get(r, "warnings"), 0)), "w");
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "auditAnnotations"), "k")), "v");
	CHECK(!res.allowed && res.status_code == 403);
	json_decref(root);
}

static char *decode_patch(json_t *r)
{
	const char *b64 = json_string_value(json_object_get(r, "patch"));
	uint8_t *raw = NULL;
	size_t n = 0;
	if (!b64 || pw_base64_decode(b64, &raw, &n) < 0)
		return NULL;
	char *s = malloc(n + 1);
	memcpy(s, raw, n);
	s[n] = '\0';
	free(raw);
	return s;
}

static void test_answer_mutation(void)
{
	pw_shape_opts o = { .policy_id = "pol", .kind = PW_EVAL_VALIDATE, .allowed_to_mutate = true };
	pw_eval_result res = { 0 };
	json_t *root = NULL;
	const char *out = "{\"accepted\":true,\"mutated_object\":{\"metadata\":{\"name\":\"p\",\"labels\":{\"x\":\"y\"}}}}";
	json_t *r = shape(&o, REVIEW, out, &res, &root);
	CHECK(r);
	CHECK(json_is_true(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_object_get(r, "patchType")), "JSONPatch");
	char *patch = decode_patch(r);
	CHECK_STR(patch, "[{\"op\":\"add\",\"path\":\"/metadata/labels/x\",\"value\":\"y\"}]");
	free(patch);
	CHECK(res.mutated);
	json_decref(root);

	/* the same object back: no patch */
	r = shape(&o, REVIEW, "{\"accepted\":true,\"mutated_object\":{\"metadata\":{\"name\":\"p\",\"labels\":{}}}}",
	          &res, &root);
	CHECK(r && !json_object_get(r, "patch") && !json_object_get(r, "patchType"));
	json_decref(root);

	/* not allowed to mutate: a rejection naming the policy, no patch */
	o.allowed_to_mutate = false;
	r = shape(&o, REVIEW, out, &res, &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK(!json_object_get(r, "patch"));
	CHECK(strstr(json_string_value(json_object_get(json_object_get(r, "status"), "message")),
	             "Request rejected by policy pol. The policy attempted to mutate") != NULL);
	json_decref(root);

	/* mutation of a DELETE (no object) */
	o.allowed_to_mutate = true;
	r = shape(&o, "{\"request\":{\"uid\":\"d\",\"operation\":\"DELETE\",\"object\":null}}", out, &res, &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK(strstr(json_string_value(json_object_get(json_object_get(r, "status"), "message")),
	             "Incoming object is null") != NULL);
	json_decref(root);
}

static void test_answer_monitor_and_custom_message(void)
{
	pw_shape_opts o = { .policy_id = "pol", .kind = PW_EVAL_VALIDATE, .mode = PW_POLICY_MONITOR };
	pw_eval_result res = { 0 };
	json_t *root = NULL;
	json_t *r = shape(&o, REVIEW, "{\"accepted\":false,\"message\":\"no\",\"code\":400,\"warnings\":[\"w\"]}",
	                  &res, &root);
	CHECK(r);
	CHECK(json_is_true(json_object_get(r, "allowed")));
	CHECK(!json_object_get(r, "status"));
	CHECK_INT(json_array_size(json_object_get(r, "warnings")), 1);
	CHECK(res.allowed && !res.policy_allowed);
	json_decref(root);

	/* audit ignores monitor mode */
	o.kind = PW_EVAL_AUDIT;
	r = shape(&o, REVIEW, "{\"accepted\":false,\"message\":\"no\"}", &res, &root);
	CHECK(r && json_is_false(json_object_get(r, "allowed")));
	json_decref(root);

	pw_shape_opts c = { .policy_id = "pol", .kind = PW_EVAL_VALIDATE, .message = "custom says no" };
	r = shape(&c, REVIEW, "{\"accepted\":false,\"message\":\"original\",\"code\":418}", &res, &root);
	CHECK(r);
	json_t *st = json_object_get(r, "status");
	CHECK_STR(json_string_value(json_object_get(st, "message")), "custom says no");
	CHECK_INT(json_integer_value(json_object_get(st, "code")), 418);
	json_t *cause = json_array_get(json_object_get(json_object_get(st, "details"), "causes"), 0);
	CHECK_STR(json_string_value(json_object_get(cause, "message")), "original");
	json_decref(root);

	/* custom message does not touch accepted answers */
	r = shape(&c, REVIEW, "{\"accepted\":true}", &res, &root);
	CHECK(r && !json_object_get(r, "status"));
	json_decref(root);
}

static void test_answer_raw(void)
{
	pw_shape_opts o = { .policy_id = "raw", .kind = PW_EVAL_VALIDATE_RAW, .allowed_to_mutate = true };
	pw_eval_result res = { 0 };
	json_t *root = NULL;
	json_t *r = shape(&o, "{\"request\":{\"uid\":\"r1\",\"user\":\"tonio\",\"resource\":\"banana\"}}",
	                  "{\"accepted\":true,\"mutated_object\":{\"uid\":\"r1\",\"user\":\"tonio\",\"resource\":\"apple\"}}",
	                  &res, &root);
	CHECK(r);
	CHECK(!json_object_get(root, "kind"));
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "r1");
	char *patch = decode_patch(r);
	CHECK_STR(patch, "[{\"op\":\"replace\",\"path\":\"/resource\",\"value\":\"apple\"}]");
	free(patch);
	json_decref(root);
	/* raw request may be any JSON */
	r = shape(&o, "{\"request\":[1,2]}", "{\"accepted\":true}", &res, &root);
	CHECK(r && json_is_true(json_object_get(r, "allowed")));
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "");
	json_decref(root);
}

static void test_answer_bad_policy_output(void)
{
	pw_shape_opts o = { .policy_id = "pol", .kind = PW_EVAL_VALIDATE };
	const char *bad[] = { "", "nope", "[]", "{}", "{\"accepted\":1}", "{\"accepted\":true,\"code\":\"x\"}",
	                      "{\"accepted\":true,\"warnings\":[1]}", "{\"accepted\":true,\"audit_annotations\":{\"a\":1}}",
	                      "{\"accepted\":true,\"message\":{}}", "{\"accepted\":true,\"code\":70000}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pw_eval_result res = { 0 };
		json_t *root = NULL;
		json_t *r = shape(&o, REVIEW, bad[i], &res, &root);
		CHECK_MSG(r, "no answer for %s", bad[i]);
		CHECK_MSG(json_is_false(json_object_get(r, "allowed")), "allowed for %s", bad[i]);
		CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "status"), "code")), 500);
		CHECK(strstr(json_string_value(json_object_get(json_object_get(r, "status"), "message")),
		             "internal server error: policy pol") != NULL);
		CHECK(res.error != 0);
		json_decref(root);
	}
}

static void test_request_parse_errors(void)
{
	const char *bad[] = { "", "{", "[]", "{}", "{\"request\":1}", "{\"request\":{\"uid\":5}}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pw_host_req r;
		CHECK_MSG(pw_host_req_parse(&r, bad[i], strlen(bad[i]), PW_EVAL_VALIDATE) == PW_EINVALID,
		          "accepted body %s", bad[i]);
		CHECK(pw_error_last()[0] != '\0');
	}
	pw_host_req r;
	CHECK_OK(pw_host_req_parse(&r, "{\"request\":1}", 13, PW_EVAL_VALIDATE_RAW));
	pw_host_req_free(&r);
}

static void test_settings_answer(void)
{
	char *m = NULL;
	CHECK_OK(pw_host_settings_answer((const uint8_t *)"{\"valid\":true}", 14, &m));
	CHECK(m == NULL);
	const char *inv = "{\"valid\":false,\"message\":\"bad key\"}";
	CHECK_INT(pw_host_settings_answer((const uint8_t *)inv, strlen(inv), &m), PW_EINVALID);
	CHECK_STR(m, "bad key");
	free(m);
	CHECK_INT(pw_host_settings_answer((const uint8_t *)"{}", 2, &m), PW_ERROR);
	CHECK_INT(pw_host_settings_answer((const uint8_t *)"x", 1, &m), PW_ERROR);
}

static void test_capabilities(void)
{
	const char *caps[] = { "oci/*", "kubewarden/net/v1/dns_lookup_host" };
	CHECK(pw_host_capability_allowed(caps, 2, false, "kubewarden", "oci", "v1/verify"));
	CHECK(pw_host_capability_allowed(caps, 2, false, "kubewarden", "net", "v1/dns_lookup_host"));
	CHECK(!pw_host_capability_allowed(caps, 2, false, "kubewarden", "net", "v1/other"));
	CHECK(!pw_host_capability_allowed(caps, 2, false, "kubewarden", "kubernetes", "list"));
	CHECK(!pw_host_capability_allowed(caps, 2, false, "other", "oci", "x"));
	CHECK(!pw_host_capability_allowed(caps, 0, false, "kubewarden", "oci", "x"));
	CHECK(pw_host_capability_allowed(NULL, 0, true, "kubewarden", "oci", "x"));
	const char *all[] = { "*" };
	CHECK(pw_host_capability_allowed(all, 1, false, "anything", "at", "all"));
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_patch_roundtrips),
		PW_TEST(test_patch_exact),
		PW_TEST(test_patch_apply_rejects),
		PW_TEST(test_answer_accept_reject),
		PW_TEST(test_answer_mutation),
		PW_TEST(test_answer_monitor_and_custom_message),
		PW_TEST(test_answer_raw),
		PW_TEST(test_answer_bad_policy_output),
		PW_TEST(test_request_parse_errors),
		PW_TEST(test_settings_answer),
		PW_TEST(test_capabilities),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
