/*
 * Fuzz target for the policy host's JSON handling: request bodies (AdmissionReview and
 * validate_raw), policy validation responses, settings answers and the JSON Patch differ.
 *
 * Input: one flag byte (bits 0-1 endpoint kind, bit 2 monitor mode, bit 3 allowedToMutate,
 * bit 4 custom message), then the request body, a NUL byte, and the policy's answer. Any
 * answer must come out as valid JSON with a boolean "allowed"; when the answer carries a
 * patch, applying it to the request's object must give back exactly the policy's
 * mutated_object (checked with the applier), otherwise the target aborts.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_patch(const pw_host_req *r, const uint8_t *out, size_t out_len, json_t *resp)
{
	const char *b64 = json_string_value(json_object_get(resp, "patch"));
	if (!b64)
		return;
	json_t *vr = json_loadb((const char *)out, out_len, 0, NULL);
	json_t *want = json_object_get(vr, "mutated_object");
	uint8_t *raw = NULL;
	size_t n = 0;
	if (!want || !r->object || pw_base64_decode(b64, &raw, &n) < 0)
		abort();
	json_t *patch = json_loadb((const char *)raw, n, 0, NULL);
	json_t *doc = json_deep_copy(r->object);
	if (!patch || pw_host_json_patch_apply(&doc, patch) < 0 || !json_equal(doc, want))
		abort();
	json_decref(doc);
	json_decref(patch);
	json_decref(vr);
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet++)
		pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);  /* monitor mode logs every verdict */
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;
	const uint8_t *nul = memchr(data, 0, size);
	size_t body_len = nul ? (size_t)(nul - data) : size;
	const uint8_t *out = nul ? nul + 1 : (const uint8_t *)"";
	size_t out_len = nul ? size - body_len - 1 : 0;

	pw_shape_opts o = {
		.policy_id = "fuzz",
		.kind = (pw_eval_kind)((flags & 3) % 3),
		.mode = (flags & 4) ? PW_POLICY_MONITOR : PW_POLICY_PROTECT,
		.allowed_to_mutate = (flags & 8) != 0,
		.message = (flags & 16) ? "custom message" : NULL,
	};
	pw_host_req r;
	if (pw_host_req_parse(&r, (const char *)data, body_len, o.kind) == 0) {
		char *in = pw_host_validate_input(&r, NULL);
		free(in);
		char *answer = NULL;
		pw_eval_result res;
		if (pw_host_shape_answer(&o, &r, out, out_len, &answer, &res) == 0) {
			json_t *a = json_loads(answer, 0, NULL);
			json_t *resp = json_object_get(a, "response");
			if (!json_is_boolean(json_object_get(resp, "allowed")))
				abort();
			if (o.mode == PW_POLICY_PROTECT && o.kind != PW_EVAL_AUDIT)
				check_patch(&r, out, out_len, resp);
			json_decref(a);
			free(answer);
		}
		pw_host_req_free(&r);
	}
	char *msg = NULL;
	pw_host_settings_answer(out, out_len, &msg);
	free(msg);
	return 0;
}
