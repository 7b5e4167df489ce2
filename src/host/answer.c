/*
 * Kubewarden request and answer shaping: what the policy receives, and how its validation
 * response becomes the AdmissionReview (or validate_raw) answer the API server gets.
 *
 * This is pure JSON (jansson) with no wasm in it, so the fuzz target drives it directly
 * with hostile request bodies and policy answers. The rules follow Kubewarden's
 * policy-server (see docs/policies.md): uid echoed; allowed = accepted; status present when
 * the policy gave a message or a code; mutated_object diffed against the request's object
 * into a base64 JSON Patch (no patch when equal; a mutation of a null object is a
 * rejection); warnings and auditAnnotations copied (null when absent); then, for /validate
 * and /validate_raw but not /audit: monitor mode (allowed, no patch, no status), the
 * allowedToMutate constraint, and a custom rejection message with the policy's own message
 * moved to status.details.causes.
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

#define MAX_BODY (64u << 20)

int pw_host_req_parse(pw_host_req *r, const char *body, size_t len, pw_eval_kind kind)
{
	memset(r, 0, sizeof *r);
	r->uid = "";
	if (len > MAX_BODY)
		return pw_error_set(PW_EINVALID, "request body of %zu bytes exceeds %u MiB", len, MAX_BODY >> 20);
	json_error_t e;
	r->root = json_loadb(body, len, 0, &e);  /* duplicates: the last wins, like serde_json */
	if (!r->root)
		return pw_error_set(PW_EINVALID, "request body is not JSON: %s at line %d column %d",
		                    e.text, e.line, e.column);
	if (!json_is_object(r->root)) {
		pw_host_req_free(r);
		return pw_error_set(PW_EINVALID, "request body is not a JSON object");
	}
	r->request = json_object_get(r->root, "request");
	if (!r->request) {
		pw_host_req_free(r);
		return pw_error_set(PW_EINVALID, "request body has no \"request\" member");
	}
	const char *uid = json_string_value(json_object_get(r->request, "uid"));
	if (kind == PW_EVAL_VALIDATE_RAW) {
		r->object = r->request;
		r->uid = uid ? uid : "";
		return 0;
	}
	if (!json_is_object(r->request)) {
		pw_host_req_free(r);
		return pw_error_set(PW_EINVALID, "AdmissionReview \"request\" is not an object");
	}
	json_t *juid = json_object_get(r->request, "uid");
	if (juid && !json_is_string(juid)) {
		pw_host_req_free(r);
		return pw_error_set(PW_EINVALID, "AdmissionReview request.uid is not a string");
	}
	r->uid = uid ? uid : "";
	json_t *obj = json_object_get(r->request, "object");
	r->object = json_is_null(obj) ? NULL : obj;
	return 0;
}

void pw_host_req_free(pw_host_req *r)
{
	if (!r)
		return;
	json_decref(r->root);
	memset(r, 0, sizeof *r);
	r->uid = "";
}

/* {"request": ..., "settings": ...} as text. The policy's settings are shared by every
 * worker thread: they are only read (dumped), never put into another object, whose
 * json_incref would race with the other workers' (jansson's refcount check is not atomic). */
char *pw_host_validate_input(const pw_host_req *r, const json_t *settings)
{
	char *req = r->request ? json_dumps(r->request, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *set = settings ? json_dumps(settings, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *s = NULL;
	if ((!r->request || req) && (!settings || set) &&
	    asprintf(&s, "{%s%s%s\"settings\":%s}", req ? "\"request\":" : "", req ? req : "", req ? "," : "",
	             set ? set : "{}") < 0)
		s = NULL;
	free(req);
	free(set);
	return s;
}

/* A response object: {"uid": uid, "allowed": allowed}. */
static json_t *new_response(const char *uid, bool allowed)
{
	json_t *resp = json_object();
	if (!resp)
		return NULL;
	json_object_set_new(resp, "uid", json_string(uid));
	json_object_set_new(resp, "allowed", json_boolean(allowed));
	return resp;
}

static void set_status(json_t *resp, const char *message, json_t *code)
{
	json_t *st = json_object();
	if (message)
		json_object_set_new(st, "message", json_string(message));
	if (code)
		json_object_set(st, "code", code);
	json_object_set_new(resp, "status", st);
}

/* Monitor mode, the mutation constraint and the custom message (not for /audit). */
static void post_process(const pw_shape_opts *o, json_t *resp, bool policy_allowed, pw_eval_result *res)
{
	if (res) {
		res->policy_mutated = json_object_get(resp, "patch") != NULL;
		res->policy_status_code = (int)json_integer_value(json_object_get(json_object_get(resp, "status"), "code"));
	}
	if (o->kind == PW_EVAL_AUDIT)
		return;
	if (o->mode == PW_POLICY_MONITOR) {
		char tag[160];
		snprintf(tag, sizeof tag, "policy:%s", o->policy_id);
		pw_info(tag, "policy evaluation (monitor mode): allowed %s, mutated %s, message %s",
		        policy_allowed ? "true" : "false",
		        json_object_get(resp, "patch") ? "true" : "false",
		        json_string_value(json_object_get(json_object_get(resp, "status"), "message"))
		                ?: "(none)");
		json_object_set_new(resp, "allowed", json_true());
		json_object_del(resp, "patchType");
		json_object_del(resp, "patch");
		json_object_del(resp, "status");
		return;
	}
	if (!o->allowed_to_mutate && json_object_get(resp, "patch")) {
		char msg[512];
		snprintf(msg, sizeof msg, "Request rejected by policy %s. The policy attempted to mutate "
		         "the request, but it is currently configured to not allow mutations.", o->policy_id);
		json_object_set_new(resp, "allowed", json_false());
		json_object_del(resp, "patchType");
		json_object_del(resp, "patch");
		set_status(resp, msg, NULL);
	}
	if (o->message && !json_is_true(json_object_get(resp, "allowed"))) {
		json_t *st = json_object_get(resp, "status");
		if (!st) {
			st = json_object();
			json_object_set_new(resp, "status", st);
		}
		const char *orig = json_string_value(json_object_get(st, "message"));
		json_t *cause = json_pack("{s:n, s:s, s:n}", "reason", "message", orig ? orig : "", "field");
		json_t *details = json_object_get(st, "details");
		if (!json_is_object(details)) {
			details = json_object();
			json_object_set_new(st, "details", details);
		}
		json_t *causes = json_object_get(details, "causes");
		if (!json_is_array(causes)) {
			causes = json_array();
			json_object_set_new(details, "causes", causes);
		}
		json_array_append_new(causes, cause);
		json_object_set_new(st, "message", json_string(o->message));
	}
}

static int finish(const pw_shape_opts *o, json_t *resp, char **response, pw_eval_result *res)
{
	if (res) {
		res->allowed = json_is_true(json_object_get(resp, "allowed"));
		res->mutated = json_object_get(resp, "patch") != NULL;
		res->status_code = (int)json_integer_value(json_object_get(json_object_get(resp, "status"), "code"));
	}
	json_t *root;
	if (o->kind == PW_EVAL_VALIDATE_RAW) {
		root = json_pack("{s:o}", "response", resp);
	} else {
		root = json_pack("{s:s, s:s, s:o}", "apiVersion", "admission.k8s.io/v1",
		                 "kind", "AdmissionReview", "response", resp);
	}
	if (!root)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory shaping the answer", o->policy_id);
	*response = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!*response)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory shaping the answer", o->policy_id);
	return 0;
}

int pw_host_error_answer(const pw_shape_opts *o, const pw_host_req *r, const char *msg,
                         int error, char **response, pw_eval_result *res)
{
	json_t *resp = new_response(r->uid, false);
	if (!resp)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", o->policy_id);
	char buf[1024];
	snprintf(buf, sizeof buf, "internal server error: %s", msg);
	json_t *code = json_integer(500);
	set_status(resp, buf, code);
	json_decref(code);
	json_object_set_new(resp, "auditAnnotations", json_null());
	json_object_set_new(resp, "warnings", json_null());
	post_process(o, resp, false, res);
	if (res) {
		res->policy_allowed = false;
		res->error = error ? error : PW_ERROR;
	}
	return finish(o, resp, response, res);
}

/* A string -> string map, or NULL when `v` is not one. */
static bool is_string_map(const json_t *v)
{
	if (!json_is_object(v))
		return false;
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x)
		if (!json_is_string(x))
			return false;
	return true;
}

static bool is_string_array(const json_t *v)
{
	if (!json_is_array(v))
		return false;
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return false;
	return true;
}

int pw_host_shape_answer(const pw_shape_opts *o, const pw_host_req *r, const uint8_t *out,
                         size_t out_len, char **response, pw_eval_result *res)
{
	char why[512];
	json_error_t e;
	json_t *vr = json_loadb((const char *)out, out_len, 0, &e);
	if (!vr) {
		snprintf(why, sizeof why, "policy %s: validation response is not JSON: %s", o->policy_id, e.text);
		return pw_host_error_answer(o, r, why, PW_EINVALID, response, res);
	}
	json_t *accepted = json_object_get(vr, "accepted");
	json_t *message = json_object_get(vr, "message");
	json_t *code = json_object_get(vr, "code");
	json_t *mutated = json_object_get(vr, "mutated_object");
	json_t *annotations = json_object_get(vr, "audit_annotations");
	json_t *warnings = json_object_get(vr, "warnings");
	const char *bad = NULL;
	if (!json_is_object(vr))
		bad = "not an object";
	else if (!json_is_boolean(accepted))
		bad = "\"accepted\" is missing or not a boolean";
	else if (message && !json_is_null(message) && !json_is_string(message))
		bad = "\"message\" is not a string";
	else if (code && !json_is_null(code) &&
	         (!json_is_integer(code) || json_integer_value(code) < 0 || json_integer_value(code) > 65535))
		bad = "\"code\" is not an integer in 0..65535";
	else if (annotations && !json_is_null(annotations) && !is_string_map(annotations))
		bad = "\"audit_annotations\" is not a map of strings";
	else if (warnings && !json_is_null(warnings) && !is_string_array(warnings))
		bad = "\"warnings\" is not a list of strings";
	if (bad) {
		snprintf(why, sizeof why, "policy %s: invalid validation response: %s", o->policy_id, bad);
		json_decref(vr);
		return pw_host_error_answer(o, r, why, PW_EINVALID, response, res);
	}
	if (json_is_null(message))
		message = NULL;
	if (json_is_null(code))
		code = NULL;
	if (json_is_null(mutated))
		mutated = NULL;
	bool allowed = json_is_true(accepted);
	if (res)
		res->policy_allowed = allowed;

	json_t *resp = new_response(r->uid, allowed);
	if (!resp) {
		json_decref(vr);
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", o->policy_id);
	}
	if (mutated && !r->object) {
		json_object_set_new(resp, "allowed", json_false());
		set_status(resp, "Incoming object is null, which happens only with DELETE operations, "
		           "but the policy is attempting a mutation. This is not allowed", NULL);
		json_object_set_new(resp, "auditAnnotations", json_null());
		json_object_set_new(resp, "warnings", json_null());
		json_decref(vr);
		post_process(o, resp, allowed, res);
		return finish(o, resp, response, res);
	}
	if (mutated) {
		json_t *ops = json_array();
		int rc = ops ? pw_host_json_diff(ops, "", r->object, mutated) : PW_ENOMEM;
		char *text = rc == 0 ? json_dumps(ops, JSON_COMPACT) : NULL;
		json_decref(ops);
		if (!text) {
			json_decref(vr);
			json_decref(resp);
			return pw_error_set(PW_ENOMEM, "policy %s: out of memory diffing the mutation", o->policy_id);
		}
		if (strcmp(text, "[]") != 0) {
			char *b64 = pw_base64_encode(text, strlen(text));
			if (!b64) {
				free(text);
				json_decref(vr);
				json_decref(resp);
				return pw_error_set(PW_ENOMEM, "policy %s: out of memory", o->policy_id);
			}
			json_object_set_new(resp, "patchType", json_string("JSONPatch"));
			json_object_set_new(resp, "patch", json_string(b64));
			free(b64);
		}
		free(text);
	}
	if (message || code)
		set_status(resp, json_string_value(message), code);
	json_object_set(resp, "auditAnnotations", annotations ? annotations : json_null());
	json_object_set(resp, "warnings", warnings ? warnings : json_null());
	json_decref(vr);
	post_process(o, resp, allowed, res);
	return finish(o, resp, response, res);
}

/* ---- Rego policies (policy-evaluator's runtimes/rego/runtime.rs) ---------------------------- */

static bool opt_type(const json_t *v, bool (*is)(const json_t *))
{
	return !v || json_is_null(v) || is(v);
}

static bool is_string(const json_t *v) { return json_is_string(v); }
static bool is_object(const json_t *v) { return json_is_object(v); }
static bool is_code(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 65535;
}

/* The AdmissionResponse an OPA policy answers in result[0].result.response, read as
 * Kubewarden's serde struct reads it: uid and allowed required, the rest optional and typed.
 * NULL with *why set when it does not deserialize. */
static json_t *opa_admission_response(const json_t *v, const char *uid, char *why, size_t whylen)
{
	const json_t *st = json_object_get(v, "status");
	const json_t *ann = json_object_get(v, "auditAnnotations"), *warn = json_object_get(v, "warnings");
	const json_t *pt = json_object_get(v, "patchType"), *patch = json_object_get(v, "patch");
	const char *bad = NULL;
	if (!json_is_object(v))
		bad = "invalid type: expected struct AdmissionResponse";
	else if (!json_object_get(v, "uid"))
		bad = "missing field `uid`";
	else if (!json_is_string(json_object_get(v, "uid")))
		bad = "invalid type for `uid`: expected a string";
	else if (!json_object_get(v, "allowed"))
		bad = "missing field `allowed`";
	else if (!json_is_boolean(json_object_get(v, "allowed")))
		bad = "invalid type for `allowed`: expected a boolean";
	else if (pt && !json_is_null(pt) && !(json_is_string(pt) && !strcmp(json_string_value(pt), "JSONPatch")))
		bad = "unknown variant for `patchType`, expected `JSONPatch`";
	else if (!opt_type(patch, is_string))
		bad = "invalid type for `patch`: expected a string";
	else if (!opt_type(st, is_object))
		bad = "invalid type for `status`: expected struct AdmissionResponseStatus";
	else if (!opt_type(ann, is_string_map))
		bad = "invalid type for `auditAnnotations`: expected a map of strings";
	else if (!opt_type(warn, is_string_array))
		bad = "invalid type for `warnings`: expected a sequence of strings";
	else if (json_is_object(st) &&
	         (!opt_type(json_object_get(st, "message"), is_string) ||
	          !opt_type(json_object_get(st, "code"), is_code) ||
	          !opt_type(json_object_get(st, "reason"), is_string) ||
	          !opt_type(json_object_get(st, "details"), is_object) ||
	          !(opt_type(json_object_get(st, "status"), is_string))))
		bad = "invalid type in `status`";
	if (bad) {
		snprintf(why, whylen, "%s", bad);
		return NULL;
	}
	json_t *resp = new_response(uid, json_is_true(json_object_get(v, "allowed")));
	if (!resp)
		return NULL;
	if (pt && !json_is_null(pt))
		json_object_set_new(resp, "patchType", json_string("JSONPatch"));
	if (patch && !json_is_null(patch))
		json_object_set(resp, "patch", (json_t *)patch);
	if (json_is_object(st)) {
		json_t *s = json_object();
		static const char *const keys[] = { "status", "message", "reason", "details", "code" };
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			json_t *x = json_object_get(st, keys[i]);
			if (x && !json_is_null(x))
				json_object_set(s, keys[i], x);
		}
		json_object_set_new(resp, "status", s);
	}
	json_object_set(resp, "auditAnnotations", ann ? (json_t *)ann : json_null());
	json_object_set(resp, "warnings", warn ? (json_t *)warn : json_null());
	return resp;
}

/* Gatekeeper: result[0] as {"result": [{"msg": string?}...]}; anything that does not read so
 * counts as no violations (Kubewarden's unwrap_or_default). */
static json_t *gatekeeper_response(const json_t *rs, const char *uid)
{
	const json_t *viol = json_object_get(json_array_get(rs, 0), "result");
	bool ok = json_is_array(viol);
	for (size_t i = 0; ok && i < json_array_size(viol); i++) {
		const json_t *v = json_array_get(viol, i);
		ok = json_is_object(v) && opt_type(json_object_get(v, "msg"), is_string);
	}
	if (!ok || json_array_size(viol) == 0) {
		json_t *resp = new_response(uid, true);
		if (resp) {
			json_object_set_new(resp, "auditAnnotations", json_null());
			json_object_set_new(resp, "warnings", json_null());
		}
		return resp;
	}
	pw_buf msg = PW_BUF_INIT;
	for (size_t i = 0; i < json_array_size(viol); i++) {
		const char *m = json_string_value(json_object_get(json_array_get(viol, i), "msg"));
		if (m)
			pw_buf_printf(&msg, "%s%s", msg.len ? ", " : "", m);
	}
	pw_buf_append(&msg, "", 1);
	json_t *resp = new_response(uid, false);
	if (resp) {
		json_object_set_new(resp, "status", json_pack("{s:s}", "message", (const char *)msg.data));
		json_object_set_new(resp, "auditAnnotations", json_null());
		json_object_set_new(resp, "warnings", json_null());
	}
	pw_buf_free(&msg);
	return resp;
}

int pw_host_shape_rego_answer(const pw_shape_opts *o, const pw_host_req *r, bool gatekeeper,
                              const char *result_set, size_t len, char **response, pw_eval_result *res)
{
	char why[512];
	json_error_t e;
	json_t *rs = json_loadb(result_set, len, 0, &e);
	if (!json_is_array(rs)) {
		json_decref(rs);
		snprintf(why, sizeof why, "policy %s: the result set is not a JSON array", o->policy_id);
		return pw_host_error_answer(o, r, why, PW_EINVALID, response, res);
	}
	json_t *resp;
	if (gatekeeper) {
		resp = gatekeeper_response(rs, r->uid);
	} else {
		const json_t *v = json_object_get(json_object_get(json_array_get(rs, 0), "result"), "response");
		if (!v) {
			json_decref(rs);
			return pw_host_error_answer(o, r, "cannot interpret OPA policy result", PW_EINVALID, response, res);
		}
		resp = opa_admission_response(v, r->uid, why, sizeof why);
		if (!resp && why[0]) {
			json_decref(rs);
			return pw_host_error_answer(o, r, why, PW_EINVALID, response, res);
		}
	}
	json_decref(rs);
	if (!resp)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", o->policy_id);
	bool allowed = json_is_true(json_object_get(resp, "allowed"));
	if (res)
		res->policy_allowed = allowed;
	post_process(o, resp, allowed, res);
	return finish(o, resp, response, res);
}

int pw_host_settings_answer(const uint8_t *out, size_t out_len, char **message)
{
	if (message)
		*message = NULL;
	json_error_t e;
	json_t *v = json_loadb((const char *)out, out_len, 0, &e);
	if (!v)
		return pw_error_set(PW_ERROR, "settings validation answer is not JSON: %s", e.text);
	json_t *valid = json_object_get(v, "valid");
	if (!json_is_boolean(valid)) {
		json_decref(v);
		return pw_error_set(PW_ERROR, "settings validation answer lacks a boolean \"valid\"");
	}
	int rc = 0;
	if (!json_is_true(valid)) {
		const char *m = json_string_value(json_object_get(v, "message"));
		if (message && m)
			*message = strdup(m);
		rc = pw_error_set(PW_EINVALID, "settings are not valid: %s", m ? m : "(no message)");
	}
	json_decref(v);
	return rc;
}

/* ---- hostCapabilities patterns (pure logic, tested without wasm) ---- */

static bool pattern_match(const char *pat, const char *s)
{
	size_t pl = strlen(pat);
	if (pl && pat[pl - 1] == '*')
		return strncmp(pat, s, pl - 1) == 0;
	return strcmp(pat, s) == 0;
}

bool pw_host_capability_allowed(const char *const *caps, size_t ncaps, bool all,
                                const char *binding, const char *ns, const char *op)
{
	if (all)
		return true;
	char full[8192], short_[8192];
	snprintf(full, sizeof full, "%s/%s/%s", binding, ns, op);
	snprintf(short_, sizeof short_, "%s/%s", ns, op);
	for (size_t i = 0; i < ncaps; i++) {
		if (!caps[i])
			continue;
		if (pattern_match(caps[i], full))
			return true;
		if (!strcmp(binding, "kubewarden") && pattern_match(caps[i], short_))
			return true;
	}
	return false;
}
