/*
 * Policy evaluation end to end on the real engine: the repo's own C test policies (a waPC
 * guest and a WASI policy, tests/fixtures/c/host_*.c) compiled with wasm2c + cc, loaded, and
 * evaluated through pw_policy_* for every behaviour issue 6 lists (accept, reject with
 * message and code, mutation -> patch, warnings, settings, host calls, guest error, trap,
 * endless loop, out-of-bounds pointers, state reset between requests, parallel workers);
 * and, when PREWARM_CORPUS is set, the real Kubewarden safe-labels policy and the wapc-rs
 * guests.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/host_internal.h"
#include "prewarm/engine.h"
#include "prewarm/policy.h"

static pw_engine *g_engine;
static struct { char path[1024]; pw_artifact *a; } g_loaded[16];
static int g_nloaded;

/* Compiles and loads a wasm file once per process (by path). */
static pw_artifact *load(const char *path)
{
	for (int i = 0; i < g_nloaded; i++)
		if (!strcmp(g_loaded[i].path, path))
			return g_loaded[i].a;
	if (!g_engine && pw_engine_new(&g_engine, NULL) < 0)
		return NULL;
	pw_buf wasm = PW_BUF_INIT, so = PW_BUF_INIT;
	pw_artifact *a = NULL;
	const pw_imports *im = pw_policy_host_imports();
	if (pw_file_read(path, 0, &wasm) == 0 &&
	    pw_engine_compile(g_engine, wasm.data, wasm.len, im, &so, NULL) == 0)
		pw_artifact_load(&a, so.data, so.len, NULL, im);
	pw_buf_free(&wasm);
	pw_buf_free(&so);
	if (a && g_nloaded < 16) {
		snprintf(g_loaded[g_nloaded].path, sizeof g_loaded[g_nloaded].path, "%s", path);
		g_loaded[g_nloaded++].a = a;
	}
	return a;
}

static const char *abi_fixture(int wasi) { return pw_test_fixture(wasi ? "host_wasi.wasm" : "host_wapc.wasm"); }

static pw_policy *make(int wasi, pw_policy_spec *spec)
{
	pw_artifact *a = load(abi_fixture(wasi));
	if (!a)
		return NULL;
	pw_policy_spec dflt = { .id = wasi ? "wasi-test" : "wapc-test" };
	if (!spec)
		spec = &dflt;
	if (!spec->id)
		spec->id = dflt.id;
	pw_policy *p = NULL;
	if (pw_policy_new(&p, spec, a) < 0)
		return NULL;
	return p;
}

/* Evaluates {"scenario": sc} and returns the answer's "response" (root in *root). */
static json_t *eval(pw_policy *p, unsigned worker, const char *sc, pw_eval_kind kind, json_t **root,
                    pw_eval_result *res)
{
	char body[1024];
	if (kind == PW_EVAL_VALIDATE_RAW)
		snprintf(body, sizeof body, "{\"request\":{\"uid\":\"raw-1\",\"scenario\":\"%s\"}}", sc);
	else
		snprintf(body, sizeof body, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
		         "\"request\":{\"uid\":\"uid-%s\",\"operation\":\"CREATE\",\"object\":{\"scenario\":\"%s\","
		         "\"metadata\":{\"labels\":{\"keep\":\"1\"}},\"spec\":[1,2,3]}}}", sc, sc);
	char *answer = NULL;
	pw_eval_result r;
	if (pw_policy_evaluate(p, worker, body, strlen(body), kind, &answer, res ? res : &r) < 0)
		return NULL;
	*root = json_loads(answer, 0, NULL);
	free(answer);
	return json_object_get(*root, "response");
}

static const char *status_msg(json_t *r)
{
	const char *m = json_string_value(json_object_get(json_object_get(r, "status"), "message"));
	return m ? m : "";
}

static int status_code(json_t *r)
{
	return (int)json_integer_value(json_object_get(json_object_get(r, "status"), "code"));
}

#define BOTH_ABIS for (int wasi = 0; wasi < 2 && !pw_test_stopped(); wasi++)

static void test_accept_reject(void)
{
	BOTH_ABIS {
		pw_policy *p = make(wasi, NULL);
		CHECK_MSG(p, "policy: %s", pw_error_last());
		CHECK_INT(pw_policy_get_abi(p), wasi ? PW_POLICY_ABI_WASI : PW_POLICY_ABI_WAPC);
		json_t *root = NULL;
		pw_eval_result res;
		json_t *r = eval(p, 0, "accept", PW_EVAL_VALIDATE, &root, &res);
		CHECK_MSG(r, "%s", pw_error_last());
		CHECK_STR(json_string_value(json_object_get(root, "kind")), "AdmissionReview");
		CHECK_STR(json_string_value(json_object_get(r, "uid")), "uid-accept");
		CHECK_MSG(json_is_true(json_object_get(r, "allowed")), "%s: %s", wasi ? "wasi" : "wapc", status_msg(r));
		CHECK(res.allowed && res.error == 0);
		json_decref(root);

		r = eval(p, 0, "reject", PW_EVAL_VALIDATE, &root, &res);
		CHECK(r);
		CHECK(json_is_false(json_object_get(r, "allowed")));
		CHECK_STR(status_msg(r), "rejected by the host test policy");
		CHECK_INT(status_code(r), 403);
		json_decref(root);
		pw_policy_free(p);
	}
}

static char *patch_of(json_t *r)
{
	const char *b64 = json_string_value(json_object_get(r, "patch"));
	uint8_t *raw;
	size_t n;
	if (!b64 || pw_base64_decode(b64, &raw, &n) < 0)
		return NULL;
	char *s = strndup((char *)raw, n);
	free(raw);
	return s;
}

static void test_mutation(void)
{
	BOTH_ABIS {
		pw_policy_spec spec = { .allowed_to_mutate = true };
		pw_policy *p = make(wasi, &spec);
		CHECK(p);
		json_t *root = NULL;
		json_t *r = eval(p, 0, "mutate", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK(json_is_true(json_object_get(r, "allowed")));
		CHECK_STR(json_string_value(json_object_get(r, "patchType")), "JSONPatch");
		char *patch = patch_of(r);
		CHECK_STR(patch, "[{\"op\":\"add\",\"path\":\"/metadata/labels/a~1b~0c\",\"value\":\"x\"},"
		                 "{\"op\":\"replace\",\"path\":\"/spec/1\",\"value\":3},"
		                 "{\"op\":\"remove\",\"path\":\"/spec/2\"}]");
		free(patch);
		json_decref(root);
		pw_policy_free(p);

		p = make(wasi, NULL);   /* not allowed to mutate */
		r = eval(p, 0, "mutate", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK(json_is_false(json_object_get(r, "allowed")));
		CHECK(!json_object_get(r, "patch"));
		CHECK(strstr(status_msg(r), "attempted to mutate the request") != NULL);
		json_decref(root);
		pw_policy_free(p);
	}
}

static void test_warnings_and_raw(void)
{
	BOTH_ABIS {
		pw_policy *p = make(wasi, NULL);
		CHECK(p);
		json_t *root = NULL;
		json_t *r = eval(p, 0, "warn", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_INT(json_array_size(json_object_get(r, "warnings")), 2);
		CHECK_STR(json_string_value(json_array_get(json_object_get(r, "warnings"), 1)), "second warning");
		CHECK_STR(json_string_value(json_object_get(json_object_get(r, "auditAnnotations"), "prewarm.test/audit")), "yes");
		json_decref(root);

		r = eval(p, 0, "reject", PW_EVAL_VALIDATE_RAW, &root, NULL);
		CHECK(r);
		CHECK(!json_object_get(root, "kind"));
		CHECK_STR(json_string_value(json_object_get(r, "uid")), "raw-1");
		CHECK(json_is_false(json_object_get(r, "allowed")));
		json_decref(root);
		pw_policy_free(p);
	}
}

static void test_settings(void)
{
	BOTH_ABIS {
		pw_policy_spec spec = { .settings_json = "{\"greeting\":\"bonjour\"}" };
		pw_policy *p = make(wasi, &spec);
		CHECK(p);
		char *msg = NULL;
		CHECK_OK(pw_policy_validate_settings(p, 0, &msg));
		CHECK(msg == NULL);
		json_t *root = NULL;
		json_t *r = eval(p, 0, "settings", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_STR(status_msg(r), "greeting=bonjour");
		json_decref(root);
		pw_policy_free(p);

		pw_policy_spec bad = { .settings_json = "{\"invalid\":true}" };
		p = make(wasi, &bad);
		CHECK(p);
		CHECK_INT(pw_policy_validate_settings(p, 0, &msg), PW_EINVALID);
		CHECK_STR(msg, "settings say invalid");
		CHECK(strstr(pw_error_last(), "settings say invalid") != NULL);
		free(msg);
		pw_policy_free(p);
	}
	pw_policy_spec notjson = { .id = "x", .settings_json = "[1]" };
	pw_policy *p = NULL;
	CHECK_INT(pw_policy_new(&p, &notjson, load(abi_fixture(0))), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "policy x") != NULL);
}

static void test_host_calls(void)
{
	BOTH_ABIS {
		pw_policy *p = make(wasi, NULL);
		CHECK(p);
		json_t *root = NULL;
		json_t *r = eval(p, 0, "hostlog", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_STR(status_msg(r), "tracing log ok");
		json_decref(root);
		r = eval(p, 0, "hostoci", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		/* served by the oci family, but this policy has no registry client (no pw_host_env) */
		CHECK_MSG(strstr(status_msg(r), "host call failed: Callback evaluation failure: ghcr.io/x/y:1: no registry "
		                 "client in this host"), "%s", status_msg(r));
		json_decref(root);
		pw_policy_free(p);

		/* hostCapabilities honoured: tracing allowed, oci refused by the list */
		const char *caps[] = { "kubewarden/tracing/*" };
		pw_policy_spec spec = { .host_capabilities = caps, .nhost_capabilities = 1 };
		p = make(wasi, &spec);
		CHECK(p);
		r = eval(p, 0, "hostoci", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_MSG(strstr(status_msg(r), "Policy has not been granted access to the 'oci/v1/manifest_digest' host "
		                 "capability. The violation has been reported."), "%s", status_msg(r));
		json_decref(root);
		r = eval(p, 0, "hostlog", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_STR(status_msg(r), "tracing log ok");
		json_decref(root);
		pw_policy_free(p);

		/* an empty list allows nothing, but tracing is never gated (Kubewarden's callback.rs) */
		pw_policy_spec none = { .host_capabilities = caps, .nhost_capabilities = 0 };
		p = make(wasi, &none);
		CHECK(p);
		r = eval(p, 0, "hostlog", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_STR(status_msg(r), "tracing log ok");
		json_decref(root);
		r = eval(p, 0, "hostoci", PW_EVAL_VALIDATE, &root, NULL);
		CHECK(r);
		CHECK_MSG(strstr(status_msg(r), "has not been granted access"), "%s", status_msg(r));
		json_decref(root);
		pw_policy_free(p);
	}
}

/* A failing request answers 500 naming the failure; the next request is served normally. */
static void expect_error_then_ok(pw_policy *p, const char *sc, const char *want)
{
	json_t *root = NULL;
	pw_eval_result res;
	json_t *r = eval(p, 0, sc, PW_EVAL_VALIDATE, &root, &res);
	CHECK_MSG(r, "%s: no answer: %s", sc, pw_error_last());
	CHECK_MSG(json_is_false(json_object_get(r, "allowed")), "%s allowed", sc);
	CHECK_INT(status_code(r), 500);
	CHECK_MSG(strstr(status_msg(r), want) != NULL, "%s: message '%s' lacks '%s'", sc, status_msg(r), want);
	CHECK(res.error != 0);
	json_decref(root);
	r = eval(p, 0, "accept", PW_EVAL_VALIDATE, &root, &res);
	CHECK_MSG(r && json_is_true(json_object_get(r, "allowed")), "after %s: %s", sc, r ? status_msg(r) : pw_error_last());
	json_decref(root);
}

static void test_guest_failures(void)
{
	BOTH_ABIS {
		pw_policy *p = make(wasi, NULL);
		CHECK(p);
		expect_error_then_ok(p, "guesterror", wasi ? "exited with code 2" : "the host test policy failed on purpose");
		expect_error_then_ok(p, "trap", "trap");
		expect_error_then_ok(p, "oob", "out of bounds");
		expect_error_then_ok(p, "badjson", "validation response is not JSON");
		if (wasi)
			expect_error_then_ok(p, "exit3", "exited with code 3");
		pw_policy_free(p);
	}
}

static void test_endless_loop_times_out(void)
{
	BOTH_ABIS {
		pw_policy_spec spec = { .timeout_seconds = 1.0 };
		pw_policy *p = make(wasi, &spec);
		CHECK(p);
		expect_error_then_ok(p, "loop", "timed out");
		/* and once more: a second loop in a fresh instance is interrupted too */
		expect_error_then_ok(p, "loop", "timed out");
		pw_policy_free(p);
	}
}

static void test_state_reset(void)
{
	BOTH_ABIS {
		pw_policy *p = make(wasi, NULL);
		CHECK(p);
		for (int i = 0; i < 3; i++) {
			json_t *root = NULL;
			json_t *r = eval(p, 0, i == 1 ? "grow" : "counter", PW_EVAL_VALIDATE, &root, NULL);
			CHECK(r);
			if (i != 1)
				CHECK_STR(status_msg(r), "counter=1");
			json_decref(root);
		}
		pw_policy_free(p);
	}
	/* REUSE keeps the waPC instance: the guest's counter goes on */
	pw_policy_spec spec = { .instances = PW_POLICY_REUSE };
	pw_policy *p = make(0, &spec);
	CHECK(p);
	json_t *root = NULL;
	json_t *r = eval(p, 0, "counter", PW_EVAL_VALIDATE, &root, NULL);
	CHECK(r);
	CHECK_STR(status_msg(r), "counter=1");
	json_decref(root);
	r = eval(p, 0, "counter", PW_EVAL_VALIDATE, &root, NULL);
	CHECK(r);
	CHECK_STR(status_msg(r), "counter=2");
	json_decref(root);
	/* a trap discards it */
	expect_error_then_ok(p, "trap", "trap");
	r = eval(p, 0, "counter", PW_EVAL_VALIDATE, &root, NULL);
	CHECK(r);
	CHECK_STR(status_msg(r), "counter=2");  /* the accept in expect_error_then_ok was 1 */
	json_decref(root);
	pw_policy_free(p);
}

static void test_wapc_init_and_modes(void)
{
	pw_policy *p = make(0, NULL);
	CHECK(p);
	json_t *root = NULL;
	json_t *r = eval(p, 0, "init", PW_EVAL_VALIDATE, &root, NULL);
	CHECK(r);
	CHECK_STR(status_msg(r), "wapc_init ran");
	json_decref(root);
	pw_policy_free(p);

	BOTH_ABIS {
		pw_policy_spec mon = { .mode = PW_POLICY_MONITOR };
		p = make(wasi, &mon);
		CHECK(p);
		pw_eval_result res;
		r = eval(p, 0, "reject", PW_EVAL_VALIDATE, &root, &res);
		CHECK(r && json_is_true(json_object_get(r, "allowed")) && !json_object_get(r, "status"));
		CHECK(!res.policy_allowed);
		json_decref(root);
		r = eval(p, 0, "reject", PW_EVAL_AUDIT, &root, &res);
		CHECK(r && json_is_false(json_object_get(r, "allowed")));
		json_decref(root);
		pw_policy_free(p);

		pw_policy_spec custom = { .message = "denied by the cluster admins" };
		p = make(wasi, &custom);
		CHECK(p);
		r = eval(p, 0, "reject", PW_EVAL_VALIDATE, &root, &res);
		CHECK(r);
		CHECK_STR(status_msg(r), "denied by the cluster admins");
		json_t *cause = json_array_get(json_object_get(json_object_get(json_object_get(r, "status"), "details"), "causes"), 0);
		CHECK_STR(json_string_value(json_object_get(cause, "message")), "rejected by the host test policy");
		json_decref(root);
		pw_policy_free(p);
	}
}

static void test_bad_request_body(void)
{
	pw_policy *p = make(0, NULL);
	CHECK(p);
	char *answer = NULL;
	CHECK_INT(pw_policy_evaluate(p, 0, "{nope", 5, PW_EVAL_VALIDATE, &answer, NULL), PW_EINVALID);
	CHECK(answer == NULL);
	CHECK(strstr(pw_error_last(), "policy wapc-test") != NULL);
	CHECK_INT(pw_policy_evaluate(p, 7, "{}", 2, PW_EVAL_VALIDATE, &answer, NULL), PW_EINVALID);
	pw_policy_free(p);
}

typedef struct worker_arg {
	pw_policy *p;
	unsigned worker;
	int ok;
} worker_arg;

static void *worker_main(void *v)
{
	worker_arg *w = v;
	static const char *scs[] = { "accept", "reject", "trap", "counter", "mutate" };
	for (int i = 0; i < 20; i++) {
		json_t *root = NULL;
		const char *sc = scs[(i + w->worker) % 5];
		json_t *r = eval(w->p, w->worker, sc, PW_EVAL_VALIDATE, &root, NULL);
		bool allowed = json_is_true(json_object_get(r, "allowed"));
		bool want = !strcmp(sc, "accept") || !strcmp(sc, "counter");
		if (!r || allowed != want)
			w->ok = 0;
		json_decref(root);
	}
	return NULL;
}

static void test_parallel_workers(void)
{
	BOTH_ABIS {
		pw_policy_spec spec = { .workers = 3 };
		pw_policy *p = make(wasi, &spec);
		CHECK(p);
		pthread_t t[3];
		worker_arg a[3];
		for (unsigned i = 0; i < 3; i++) {
			a[i] = (worker_arg){ p, i, 1 };
			CHECK(pthread_create(&t[i], NULL, worker_main, &a[i]) == 0);
		}
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < 3; i++)
			CHECK_MSG(a[i].ok, "worker %d got a wrong answer", i);
		pw_policy_free(p);
	}
}

/* The libc-free waPC guest (tests/fixtures/wat/host_wapc_min.wat) through the raw driver:
 * exact pointer/length semantics and every bad pointer a trap, never a crash. */
static void test_wapc_min_guest(void)
{
	pw_artifact *a = load(pw_test_fixture("host_wapc_min.wasm"));
	CHECK_MSG(a, "%s", pw_error_last());
	pw_policy_spec spec = { .id = "wapc-min" };
	pw_policy *p = NULL;
	CHECK_OK(pw_policy_new(&p, &spec, a));
	pw_host_call c;
	pw_host_call_init(&c, p, "wapc-min");
	pw_instance_opts o = { .host_data = &c };
	pw_instance *inst = NULL;
	CHECK_OK(pw_instance_new(&inst, a, &o));
	CHECK_OK(pw_host_wapc_start(inst, &c));
	CHECK_OK(pw_host_wapc_call(inst, &c, "echo", (const uint8_t *)"ping", 4));
	CHECK_INT(c.response.len, 4);
	CHECK(!memcmp(c.response.data, "ping", 4));
	CHECK_OK(pw_host_wapc_call(inst, &c, "echo", (const uint8_t *)"", 0));
	CHECK_INT(c.response.len, 0);
	CHECK_INT(pw_host_wapc_call(inst, &c, "x", (const uint8_t *)"", 0) < 0, 1);
	CHECK_INT(pw_host_wapc_call(inst, &c, "xfail", (const uint8_t *)"", 0), PW_ERROR);
	CHECK(strstr(pw_error_last(), "guest error: failed on purpose") != NULL);
	pw_instance_free(inst);

	static const struct { const char *op; const char *want; } bad[] = {
		{ "oob", "__guest_response: pointer out of bounds" },
		{ "host", "__host_call: pointer out of bounds" },
		{ "r", "__guest_request: payload pointer out of bounds" },
		{ "trap", "unreachable" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_OK(pw_instance_new(&inst, a, &o));
		int rc = pw_host_wapc_call(inst, &c, bad[i].op, (const uint8_t *)"abc", 3);
		CHECK_MSG(rc == PW_ETRAP, "%s: rc %d: %s", bad[i].op, rc, pw_error_last());
		CHECK_MSG(strstr(pw_error_last(), bad[i].want) != NULL, "%s: '%s' lacks '%s'", bad[i].op,
		          pw_error_last(), bad[i].want);
		pw_instance_free(inst);
	}
	/* an endless loop is interrupted at its deadline */
	CHECK_OK(pw_instance_new(&inst, a, &o));
	pw_instance_set_deadline(inst, pw_now() + 0.2);
	CHECK_INT(pw_host_wapc_call(inst, &c, "loop", (const uint8_t *)"", 0), PW_ETIMEOUT);
	pw_instance_free(inst);
	pw_host_call_free(&c);
	pw_policy_free(p);

	/* through pw_policy: an answer that is not a validation response is a 500 */
	pw_policy_spec s2 = { .id = "wapc-min", .timeout_seconds = 30 };
	CHECK_OK(pw_policy_new(&p, &s2, a));
	json_t *root = NULL;
	pw_eval_result res;
	const char *body = "{\"request\":{\"uid\":\"m\"}}";
	char *answer = NULL;
	/* the guest answers the policy input itself: not a validation response */
	CHECK_OK(pw_policy_evaluate(p, 0, body, strlen(body), PW_EVAL_VALIDATE_RAW, &answer, &res));
	root = json_loads(answer, 0, NULL);
	free(answer);
	CHECK(strstr(status_msg(json_object_get(root, "response")), "invalid validation response") != NULL);
	json_decref(root);
	pw_policy_free(p);
}

/* ABI choice: metadata first, then exports; a mode the module cannot serve is refused (the
 * Rego modes themselves: tests/host/test_opa_policy.c). */
static void test_abi_choice(void)
{
	static const struct { const char *fixture; int rc; const char *want; } cases[] = {
		{ "host_gatekeeper.wasm", PW_EINVALID, "executionMode Gatekeeper, but the module was not built from Rego" },
		{ "host_opa.wasm", PW_EINVALID, "nor a Rego module (no opa_eval_ctx_new export)" },
		{ "host_noabi.wasm", PW_EINVALID, "neither a waPC guest" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pw_artifact *a = load(pw_test_fixture(cases[i].fixture));
		CHECK_MSG(a, "%s: %s", cases[i].fixture, pw_error_last());
		pw_policy_spec spec = { .id = "abi" };
		pw_policy *p = NULL;
		CHECK_INT(pw_policy_new(&p, &spec, a), cases[i].rc);
		CHECK(p == NULL);
		CHECK_MSG(strstr(pw_error_last(), cases[i].want) && strstr(pw_error_last(), "policy abi"),
		          "%s: '%s'", cases[i].fixture, pw_error_last());
	}
	pw_policy *p = make(0, NULL);
	CHECK(p);
	CHECK(pw_policy_metadata(p) == NULL);
	CHECK_STR(pw_policy_abi_name(pw_policy_get_abi(p)), "waPC");
	pw_policy_free(p);
}

/* ---- the third-party corpus --------------------------------------------------------------- */

static const char *corpus(const char *name)
{
	static char path[4096];
	const char *dir = getenv("PREWARM_CORPUS");
	if (!dir || !*dir)
		return NULL;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return pw_path_exists(path) ? path : NULL;
}

static json_t *eval_labels(pw_policy *p, const char *labels_json, json_t **root)
{
	char body[2048];
	snprintf(body, sizeof body,
	         "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
	         "\"uid\":\"sl-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
	         "\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"
	         "\"operation\":\"CREATE\",\"userInfo\":{\"username\":\"alice\"},"
	         "\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"nginx\","
	         "\"labels\":%s},\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx\"}]}}}}",
	         labels_json);
	char *answer = NULL;
	if (pw_policy_evaluate(p, 0, body, strlen(body), PW_EVAL_VALIDATE, &answer, NULL) < 0)
		return NULL;
	*root = json_loads(answer, 0, NULL);
	free(answer);
	return json_object_get(*root, "response");
}

static void test_corpus_safe_labels(void)
{
	const char *path = corpus("fabriziosestito_policy-server__safe_labels_policy.wasm");
	if (!path) {
		pw_test_skip("PREWARM_CORPUS unset or without the safe-labels policy");
		return;
	}
	pw_artifact *a = load(path);
	CHECK_MSG(a, "safe-labels: %s", pw_error_last());
	pw_policy_spec spec = {
		.id = "safe-labels",
		.settings_json = "{\"denied_labels\":[\"foo\",\"bar\"],\"mandatory_labels\":[\"cost-center\"],"
		                 "\"constrained_labels\":{\"cost-center\":\"^cc-\\\\d+$\"}}",
	};
	pw_policy *p = NULL;
	CHECK_OK(pw_policy_new(&p, &spec, a));
	CHECK_INT(pw_policy_get_abi(p), PW_POLICY_ABI_WAPC);
	CHECK(pw_policy_metadata(p) && strstr(pw_policy_metadata(p), "kubewarden-wapc"));
	char *msg = NULL;
	CHECK_MSG(pw_policy_validate_settings(p, 0, &msg) == 0, "settings: %s", pw_error_last());

	json_t *root = NULL;
	json_t *r = eval_labels(p, "{\"cost-center\":\"cc-123\",\"app\":\"web\"}", &root);
	CHECK_MSG(r, "%s", pw_error_last());
	CHECK_MSG(json_is_true(json_object_get(r, "allowed")), "good labels rejected: %s", status_msg(r));
	CHECK_STR(json_string_value(json_object_get(r, "uid")), "sl-1");
	json_decref(root);

	r = eval_labels(p, "{\"cost-center\":\"cc-123\",\"foo\":\"hello world\"}", &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_MSG(strstr(status_msg(r), "foo"), "denied label message: %s", status_msg(r));
	json_decref(root);

	r = eval_labels(p, "{\"app\":\"web\"}", &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	CHECK_MSG(strstr(status_msg(r), "cost-center"), "mandatory label message: %s", status_msg(r));
	json_decref(root);

	r = eval_labels(p, "{\"cost-center\":\"marketing\"}", &root);
	CHECK(r);
	CHECK(json_is_false(json_object_get(r, "allowed")));
	json_decref(root);
	pw_policy_free(p);

	/* a label both denied and mandatory: the policy says the settings are invalid */
	pw_policy_spec bad = { .id = "safe-labels-bad",
	                       .settings_json = "{\"denied_labels\":[\"a\"],\"mandatory_labels\":[\"a\"]}" };
	CHECK_OK(pw_policy_new(&p, &bad, a));
	CHECK_INT(pw_policy_validate_settings(p, 0, &msg), PW_EINVALID);
	CHECK(msg && *msg);
	free(msg);
	pw_policy_free(p);
}

static void test_corpus_wapc_rs(void)
{
	const char *p1 = corpus("wapc_wapc-rs__wapc_guest_test.wasm");
	if (!p1) {
		pw_test_skip("PREWARM_CORPUS unset or without the wapc-rs guests");
		return;
	}
	char path1[4096];
	snprintf(path1, sizeof path1, "%s", p1);
	const char *p2 = corpus("wapc_wapc-rs__hello_tinygo.wasm");
	CHECK(p2);
	char path2[4096];
	snprintf(path2, sizeof path2, "%s", p2);

	/* wapc_guest_test: wapc_init registers "echo", which echoes a MessagePack string */
	pw_artifact *a = load(path1);
	CHECK_MSG(a, "%s", pw_error_last());
	pw_policy_spec spec = { .id = "wapc-guest-test" };
	pw_policy *p = NULL;
	CHECK_OK(pw_policy_new(&p, &spec, a));
	pw_instance *inst = NULL;
	pw_host_call c;
	pw_host_call_init(&c, p, "wapc-guest-test");
	pw_instance_opts o = { .host_data = &c };
	CHECK_OK(pw_instance_new(&inst, a, &o));
	CHECK_OK(pw_host_wapc_start(inst, &c));
	const uint8_t msg[] = { 0xa5, 'h', 'e', 'l', 'l', 'o' };
	CHECK_OK(pw_host_wapc_call(inst, &c, "echo", msg, sizeof msg));
	CHECK_INT(c.response.len, sizeof msg);
	CHECK(!memcmp(c.response.data, msg, sizeof msg));
	/* an unknown operation is a guest error, not a crash */
	CHECK(pw_host_wapc_call(inst, &c, "nope", msg, sizeof msg) < 0);
	CHECK(strstr(pw_error_last(), "guest error") != NULL);
	pw_instance_free(inst);
	pw_host_call_free(&c);
	pw_policy_free(p);

	/* hello_tinygo: "hello" makes a host call myBinding/sample/hello (refused) and answers "Hello" */
	a = load(path2);
	CHECK_MSG(a, "%s", pw_error_last());
	spec.id = "hello-tinygo";
	CHECK_OK(pw_policy_new(&p, &spec, a));
	pw_host_call_init(&c, p, "hello-tinygo");
	o.host_data = &c;
	CHECK_OK(pw_instance_new(&inst, a, &o));
	CHECK_OK(pw_host_wapc_start(inst, &c));
	CHECK_OK(pw_host_wapc_call(inst, &c, "hello", (const uint8_t *)"this is a test", 14));
	CHECK_INT(c.response.len, 5);
	CHECK(!memcmp(c.response.data, "Hello", 5));
	pw_instance_free(inst);
	pw_host_call_free(&c);
	pw_policy_free(p);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_wapc_min_guest),
		PW_TEST(test_abi_choice),
		PW_TEST(test_accept_reject),
		PW_TEST(test_mutation),
		PW_TEST(test_warnings_and_raw),
		PW_TEST(test_settings),
		PW_TEST(test_host_calls),
		PW_TEST(test_guest_failures),
		PW_TEST(test_endless_loop_times_out),
		PW_TEST(test_state_reset),
		PW_TEST(test_wapc_init_and_modes),
		PW_TEST(test_bad_request_body),
		PW_TEST(test_parallel_workers),
		PW_TEST(test_corpus_safe_labels),
		PW_TEST(test_corpus_wapc_rs),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	for (int i = 0; i < g_nloaded; i++)
		pw_artifact_free(g_loaded[i].a);
	pw_engine_free(g_engine);
	return rc;
}
