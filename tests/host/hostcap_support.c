/*
 * Test support for host capabilities (hostcap_support.h): compiles the host test policies
 * once, and runs one "hostcall" scenario evaluation per call.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/hostcap_support.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"

static pw_engine *g_engine;
static pw_artifact *g_art[2];

static pw_artifact *artifact(int wasi)
{
	if (g_art[wasi])
		return g_art[wasi];
	if (!g_engine && pw_engine_new(&g_engine, NULL) < 0)
		return NULL;
	pw_buf wasm = PW_BUF_INIT, so = PW_BUF_INIT;
	const pw_imports *im = pw_policy_host_imports();
	if (pw_file_read(pw_test_fixture(wasi ? "host_wasi.wasm" : "host_wapc.wasm"), 0, &wasm) == 0 &&
	    pw_engine_compile(g_engine, wasm.data, wasm.len, im, &so, NULL) == 0)
		pw_artifact_load(&g_art[wasi], so.data, so.len, NULL, im);
	pw_buf_free(&wasm);
	pw_buf_free(&so);
	return g_art[wasi];
}

const char *hc_abi_name(int wasi) { return wasi ? "WASI" : "waPC"; }

pw_policy *hc_policy(int wasi, const char *const *caps, size_t ncaps, pw_host_env *env)
{
	return hc_policy_resources(wasi, caps, ncaps, env, NULL, 0);
}

pw_policy *hc_policy_resources(int wasi, const char *const *caps, size_t ncaps, pw_host_env *env,
                               const pw_policy_resource *resources, size_t nresources)
{
	pw_artifact *a = artifact(wasi);
	if (!a)
		return NULL;
	pw_policy_spec spec = {
		.id = wasi ? "hostcap-wasi" : "hostcap-wapc",
		.host_capabilities = caps,
		.nhost_capabilities = ncaps,
		.host_env = env,
		.context_aware = resources,
		.ncontext_aware = nresources,
		.timeout_seconds = 60,
	};
	pw_policy *p = NULL;
	return pw_policy_new(&p, &spec, a) < 0 ? NULL : p;
}

static int unhex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *hc_call(pw_policy *p, const char *binding, const char *ns, const char *op,
              const char *payload, int *ok)
{
	size_t n = strlen(payload);
	char *hex = malloc(2 * n + 1);
	if (!hex)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)payload[i]);
	hex[2 * n] = '\0';
	json_t *obj = json_pack("{s:s,s:s,s:s,s:s,s:s}", "scenario", "hostcall", "hc_bd", binding,
	                        "hc_ns", ns, "hc_op", op, "hc_payload", hex);
	free(hex);
	json_t *review = json_pack("{s:s,s:s,s:{s:s,s:s,s:o}}", "apiVersion", "admission.k8s.io/v1",
	                           "kind", "AdmissionReview", "request", "uid", "hostcap",
	                           "operation", "CREATE", "object", obj);
	char *body = json_dumps(review, JSON_COMPACT);
	json_decref(review);
	char *answer = NULL;
	pw_eval_result res;
	int rc = body ? pw_policy_evaluate(p, 0, body, strlen(body), PW_EVAL_VALIDATE, &answer, &res) : PW_ENOMEM;
	free(body);
	if (rc < 0)
		return NULL;
	json_t *root = json_loads(answer, 0, NULL);
	free(answer);
	const char *msg = json_string_value(json_object_get(json_object_get(json_object_get(root, "response"),
	                                                                    "status"), "message"));
	char *out = NULL;
	if (msg && (!strncmp(msg, "ok:", 3) || !strncmp(msg, "err:", 4))) {
		*ok = msg[0] == 'o';
		const char *h = msg + (*ok ? 3 : 4);
		size_t hl = strlen(h);
		out = malloc(hl / 2 + 1);
		size_t k = 0;
		for (size_t i = 0; out && i + 1 < hl; i += 2)
			out[k++] = (char)(unhex(h[i]) << 4 | unhex(h[i + 1]));
		if (out)
			out[k] = '\0';
	} else {
		pw_error_set(PW_ERROR, "the host test policy did not answer a host call: %s", msg ? msg : "(no message)");
	}
	json_decref(root);
	return out;
}
