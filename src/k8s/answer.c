/*
 * The kubernetes host calls as Kubewarden answers them (policy-evaluator
 * runtimes/callback.rs, callback_handler.rs, callback_handler/kubernetes*.rs; request types
 * from policy-sdk-rust src/host_capabilities/kubernetes.rs):
 *
 *   list_resources_by_namespace {api_version, kind, namespace, label_selector?,
 *                                field_selector?, field_masks?}  -> ObjectList
 *   list_resources_all          {api_version, kind, label_selector?, field_selector?,
 *                                field_masks?}                   -> ObjectList
 *   get_resource                {api_version, kind, name, namespace?, disable_cache,
 *                                field_masks?}                   -> the object
 *   can_i                       {subject_access_review: {groups?, resource_attributes:
 *                                {group?, name?, namespace?, resource, subresource?, verb,
 *                                version?}, user}, disable_cache} -> SubjectAccessReviewStatus
 *
 * The request is decoded first (a bad one answers serde's kind of message, "missing field
 * `kind`"), then the three list/get operations are gated on the policy's
 * contextAwareResources, then the work runs and a failure answers "Callback evaluation
 * failure: ..." with Kubewarden's texts where it has them. get_resource and can_i answers
 * are kept K8S_ANSWER_TTL seconds unless disable_cache (Kubewarden's #[cached(time = 5)]);
 * field masks are applied to get_resource's object after the cache, as there.
 */
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

/* Kubewarden's cache of get_resource and can_i answers: 5 seconds; bounded here. */
#define K8S_ANSWER_TTL 5.0
#define K8S_ANSWER_ENTRIES 1024

/* ---- the answer cache: bounded, time-limited, per client -------------------------------- */

static char *cache_get(pw_k8s *k, const char *key)
{
	char *out = NULL;
	pthread_mutex_lock(&k->answers_lock);
	double now = pw_now();
	for (size_t i = 0; i < k->nanswers && !out; i++)
		if (!strcmp(k->answers[i].key, key) && k->answers[i].expires > now)
			out = strdup(k->answers[i].text);
	pthread_mutex_unlock(&k->answers_lock);
	return out;
}

static void cache_put(pw_k8s *k, const char *key, const char *text)
{
	char *kc = strdup(key), *tc = strdup(text);
	if (!kc || !tc) {
		free(kc);
		free(tc);
		return;
	}
	pthread_mutex_lock(&k->answers_lock);
	if (!k->answers)
		k->answers = calloc(K8S_ANSWER_ENTRIES, sizeof *k->answers);
	if (!k->answers) {
		pthread_mutex_unlock(&k->answers_lock);
		free(kc);
		free(tc);
		return;
	}
	double now = pw_now();
	size_t slot = SIZE_MAX;
	for (size_t i = 0; i < k->nanswers && slot == SIZE_MAX; i++)
		if (!strcmp(k->answers[i].key, key) || k->answers[i].expires <= now)
			slot = i;
	if (slot == SIZE_MAX && k->nanswers < K8S_ANSWER_ENTRIES) {
		slot = k->nanswers++;
	} else if (slot == SIZE_MAX) {   /* full: the entry closest to expiry goes */
		slot = 0;
		for (size_t i = 1; i < k->nanswers; i++)
			if (k->answers[i].expires < k->answers[slot].expires)
				slot = i;
	}
	free(k->answers[slot].key);
	free(k->answers[slot].text);
	k->answers[slot] = (k8s_answer_entry){ kc, tc, now + K8S_ANSWER_TTL };
	pthread_mutex_unlock(&k->answers_lock);
}

void k8s_answers_free(pw_k8s *k)
{
	for (size_t i = 0; i < k->nanswers; i++) {
		free(k->answers[i].key);
		free(k->answers[i].text);
	}
	free(k->answers);
	k->answers = NULL;
	k->nanswers = 0;
}

/* ---- request decoding (serde's messages) ------------------------------------------------ */

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "map";
	case JSON_ARRAY: return "sequence";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "floating point";
	case JSON_TRUE: case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

typedef struct dec {
	pw_buf *err;
	bool failed;
} dec;

static void dec_fail(dec *d, const char *fmt, const char *a, const char *b)
{
	if (d->failed)
		return;
	d->failed = true;
	pw_buf_printf(d->err, fmt, a, b);
}

/* The field `key` when it has the JSON type `type` (JSON_STRING, or JSON_TRUE for a
 * boolean); NULL when absent or null and optional; else serde's message and NULL. */
static json_t *field(dec *d, const json_t *o, const char *key, json_type type, bool required)
{
	json_t *v = json_object_get(o, key);
	if (!v || (!required && json_is_null(v))) {
		if (required)
			dec_fail(d, "missing field `%s`%s", key, "");
		return NULL;
	}
	bool ok = type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == type;
	if (!ok) {
		dec_fail(d, type == JSON_TRUE ? "invalid type: %s, expected a boolean (field `%s`)"
		                              : "invalid type: %s, expected a string (field `%s`)", json_kind(v), key);
		return NULL;
	}
	return v;
}

static const char *req_str(dec *d, const json_t *o, const char *key)
{
	return json_string_value(field(d, o, key, JSON_STRING, true));
}

static const char *opt_str(dec *d, const json_t *o, const char *key)
{
	return json_string_value(field(d, o, key, JSON_STRING, false));
}

static bool req_bool(dec *d, const json_t *o, const char *key)
{
	return json_is_true(field(d, o, key, JSON_TRUE, true));
}

/* Option<Vec<String>> / Option<BTreeSet<String>>: NULL or the array (borrowed). */
static json_t *opt_str_array(dec *d, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_array(v)) {
		dec_fail(d, "invalid type: %s, expected a sequence (field `%s`)", json_kind(v), key);
		return NULL;
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e)) {
			dec_fail(d, "invalid type: %s, expected a string (field `%s`)", json_kind(e), key);
			return NULL;
		}
	}
	return v;
}

static bool is_struct(dec *d, const json_t *o, const char *name)
{
	if (json_is_object(o))
		return true;
	dec_fail(d, "invalid type: %s, expected struct %s", json_kind(o), name);
	return false;
}

/* ---- the operations --------------------------------------------------------------------- */

static int fail(pw_buf *answer, int code, const char *msg)
{
	pw_buf_printf(answer, "Callback evaluation failure: %s", msg);
	return code < 0 ? code : PW_ERROR;
}

static int denied(pw_buf *answer, const char *api_version, const char *kind)
{
	pw_warn("kubernetes", "policy asked for Kubernetes %s/%s, not in its contextAwareResources",
	        api_version, kind);
	pw_buf_printf(answer, "Policy has not been granted access to Kubernetes %s/%s resources. "
	              "The violation has been reported.", api_version, kind);
	return PW_EAUTH;
}

/* After the request is decoded, in Kubewarden's order: the decoding failure, the
 * contextAwareResources gate, a missing client (PW_ENOTFOUND, worded by pw_k8s_answer). */
static int admit(const dec *d, const pw_k8s *k, pw_k8s_allowed_fn allowed, void *arg, const char *av,
                 const char *kind, pw_buf *answer)
{
	if (d->failed)
		return PW_EINVALID;
	if (!allowed || !allowed(arg, av, kind))
		return denied(answer, av, kind);
	return k ? 0 : PW_ENOTFOUND;
}

static int dump_answer(pw_buf *answer, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!t)
		return fail(answer, PW_ENOMEM, "host out of memory");
	pw_buf_puts(answer, t);
	free(t);
	return 0;
}

static int op_list(pw_k8s *k, bool by_ns, const json_t *j, pw_k8s_allowed_fn allowed, void *arg,
                   pw_buf *answer)
{
	dec d = { answer, false };
	const char *name = by_ns ? "ListResourcesByNamespaceRequest" : "ListAllResourcesRequest";
	if (!is_struct(&d, j, name))
		return PW_EINVALID;
	const char *av = req_str(&d, j, "api_version");
	const char *kind = req_str(&d, j, "kind");
	const char *ns = by_ns ? req_str(&d, j, "namespace") : NULL;
	const char *ls = opt_str(&d, j, "label_selector");
	const char *fs = opt_str(&d, j, "field_selector");
	json_t *masks = opt_str_array(&d, j, "field_masks");
	int gate = admit(&d, k, allowed, arg, av, kind, answer);
	if (gate < 0)
		return gate;
	json_t *tree = k8s_masks_tree(masks);
	int rc;
	pw_buf out = PW_BUF_INIT;
	if (k->file_mode) {
		rc = k8s_file_list(k, av, kind, ns, ls, fs, tree, &out);
	} else {
		const k8s_resource *r = NULL;
		rc = k8s_resource_find(k, av, kind, &r);
		if (rc == 0 && by_ns && !r->namespaced)
			rc = pw_error_set(PW_EINVALID, "resource %s/%s is cluster wide. Cannot search for it inside of a namespace",
			                  av, kind);
		if (rc == 0)
			rc = k8s_list(k, r, ns, ls, fs, tree, &out);
	}
	json_decref(tree);
	if (rc < 0)
		rc = fail(answer, rc, pw_error_last());
	else
		pw_buf_append(answer, out.data, out.len);
	pw_buf_free(&out);
	return rc;
}

static int not_found(pw_buf *answer, const char *av, const char *kind, const char *name, const char *ns)
{
	pw_buf m = PW_BUF_INIT;
	pw_buf_printf(&m, "Cannot find %s/%s named '%s' inside of namespace '", av, kind, name);
	k8s_rust_option(&m, ns);
	pw_buf_puts(&m, "'");
	int rc = fail(answer, PW_ENOTFOUND, m.data ? (const char *)m.data : "not found");
	pw_buf_free(&m);
	return rc;
}

static int op_get(pw_k8s *k, const json_t *j, pw_k8s_allowed_fn allowed, void *arg, pw_buf *answer)
{
	dec d = { answer, false };
	if (!is_struct(&d, j, "GetResourceRequest"))
		return PW_EINVALID;
	const char *av = req_str(&d, j, "api_version");
	const char *kind = req_str(&d, j, "kind");
	const char *name = req_str(&d, j, "name");
	const char *ns = opt_str(&d, j, "namespace");
	bool no_cache = req_bool(&d, j, "disable_cache");
	json_t *masks = opt_str_array(&d, j, "field_masks");
	int gate = admit(&d, k, allowed, arg, av, kind, answer);
	if (gate < 0)
		return gate;
	json_t *obj = NULL;
	int rc = 0;
	pw_buf key = PW_BUF_INIT;
	pw_buf_printf(&key, "get_resource_cached(%s,%s),%s,", av, kind, name);
	k8s_rust_option(&key, ns);
	char *cached = (!no_cache && !k->file_mode && key.data) ? cache_get(k, (const char *)key.data) : NULL;
	if (cached) {
		obj = json_loads(cached, 0, NULL);
		free(cached);
	}
	if (!obj && k->file_mode) {
		rc = k8s_file_get(k, av, kind, name, ns, &obj);
	} else if (!obj) {
		const k8s_resource *r = NULL;
		rc = k8s_resource_find(k, av, kind, &r);
		if (rc == 0 && r->namespaced && !ns)
			rc = pw_error_set(PW_EINVALID, "Resource %s/%s is namespaced, but no namespace was provided", av, kind);
		if (rc == 0)
			rc = k8s_get_object(k, r, name, ns, &obj);
		if (rc == 0 && !no_cache) {
			char *t = json_dumps(obj, JSON_COMPACT);
			if (t && key.data)
				cache_put(k, (const char *)key.data, t);
			free(t);
		}
	}
	pw_buf_free(&key);
	if (rc == PW_ENOTFOUND)
		return not_found(answer, av, kind, name, ns);
	if (rc < 0)
		return fail(answer, rc, pw_error_last());
	json_t *tree = k8s_masks_tree(masks);
	k8s_object_trim(obj, tree, false);
	json_decref(tree);
	rc = dump_answer(answer, obj);
	json_decref(obj);
	return rc;
}

/* The SubjectAccessReviewSpec Kubewarden builds from the SDK's SubjectAccessReview. */
static json_t *review_spec(dec *d, const json_t *sar)
{
	if (!is_struct(d, sar, "SubjectAccessReview"))
		return NULL;
	json_t *groups = opt_str_array(d, sar, "groups");
	const char *user = req_str(d, sar, "user");
	json_t *ra = json_object_get(sar, "resource_attributes");
	if (!ra && !d->failed)
		dec_fail(d, "missing field `%s`%s", "resource_attributes", "");
	if (d->failed || !is_struct(d, ra, "ResourceAttributes"))
		return NULL;
	static const char *const opt[][2] = {
		{ "group", "group" }, { "name", "name" }, { "namespace", "namespace" },
		{ "subresource", "subresource" }, { "version", "version" },
	};
	json_t *attrs = json_object();
	for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
		const char *v = opt_str(d, ra, opt[i][0]);
		if (v)
			json_object_set_new(attrs, opt[i][1], json_string(v));
	}
	const char *resource = req_str(d, ra, "resource");
	const char *verb = req_str(d, ra, "verb");
	if (d->failed) {
		json_decref(attrs);
		return NULL;
	}
	json_object_set_new(attrs, "resource", json_string(resource));
	json_object_set_new(attrs, "verb", json_string(verb));
	json_t *spec = json_object();
	if (groups)
		json_object_set(spec, "groups", groups);
	json_object_set_new(spec, "resourceAttributes", attrs);
	json_object_set_new(spec, "user", json_string(user));
	return spec;
}

static int op_can_i(pw_k8s *k, const json_t *j, pw_buf *answer)
{
	dec d = { answer, false };
	if (!is_struct(&d, j, "CanIRequest"))
		return PW_EINVALID;
	json_t *sar = json_object_get(j, "subject_access_review");
	if (!sar) {
		dec_fail(&d, "missing field `%s`%s", "subject_access_review", "");
		return PW_EINVALID;
	}
	json_t *spec = review_spec(&d, sar);
	bool no_cache = req_bool(&d, j, "disable_cache");
	if (d.failed) {
		json_decref(spec);
		return PW_EINVALID;
	}
	if (!k) {
		json_decref(spec);
		return PW_ENOTFOUND;
	}
	char *key = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	char *cached = (!no_cache && key && !k->file_mode) ? cache_get(k, key) : NULL;
	int rc = 0;
	if (cached) {
		pw_buf_puts(answer, cached);
		free(cached);
	} else {
		json_t *status = NULL;
		rc = k->file_mode ? k8s_file_can_i(k, spec, &status) : k8s_review(k, spec, &status);
		if (rc < 0) {
			rc = fail(answer, rc, pw_error_last());
		} else {
			/* SubjectAccessReviewStatus: allowed, denied?, evaluationError?, reason? */
			json_t *out = json_object();
			static const char *const keys[] = { "allowed", "denied", "evaluationError", "reason" };
			for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
				json_t *v = json_object_get(status, keys[i]);
				if (v && !json_is_null(v))
					json_object_set(out, keys[i], v);
			}
			pw_buf text = PW_BUF_INIT;
			rc = dump_answer(&text, out);
			if (rc == 0) {
				if (!no_cache && key && !k->file_mode)
					cache_put(k, key, (const char *)text.data);
				pw_buf_append(answer, text.data, text.len);
			} else {
				pw_buf_append(answer, text.data, text.len);
			}
			pw_buf_free(&text);
			json_decref(out);
		}
		json_decref(status);
	}
	free(key);
	json_decref(spec);
	return rc;
}

int pw_k8s_answer(pw_k8s *k, const char *why, const char *op, const uint8_t *payload, size_t len,
                  pw_k8s_allowed_fn allowed, void *arg, pw_buf *answer)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)payload, len, JSON_DECODE_ANY, &e);
	if (!j) {
		pw_buf_printf(answer, "%s at line %d column %d", e.text, e.line, e.column);
		return PW_EINVALID;
	}
	int rc;
	if (!strcmp(op, "list_resources_by_namespace"))
		rc = op_list(k, true, j, allowed, arg, answer);
	else if (!strcmp(op, "list_resources_all"))
		rc = op_list(k, false, j, allowed, arg, answer);
	else if (!strcmp(op, "get_resource"))
		rc = op_get(k, j, allowed, arg, answer);
	else if (!strcmp(op, "can_i"))
		rc = op_can_i(k, j, answer);
	else {
		pw_buf_printf(answer, "unknown operation: %s", op);
		rc = PW_EUNSUPPORTED;
	}
	if (rc == PW_ENOTFOUND && !k) {
		pw_buf_clear(answer);
		pw_buf_printf(answer, "Callback evaluation failure: kube::Client was not initialized properly%s%s",
		              why && *why ? ": " : "", why ? why : "");
		rc = PW_EUNSUPPORTED;
	}
	json_decref(j);
	return rc;
}
