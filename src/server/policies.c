/*
 * policies.yml: Kubewarden's map of policy id -> policy, checked strictly.
 *
 * The YAML is first turned into JSON (yaml_json.c, bounded), then every entry is checked
 * against the keys Kubewarden defines (module, settings, policyMode, allowedToMutate, message,
 * timeoutEvalSeconds, contextAwareResources, hostCapabilities). A typo in a key must not
 * silently drop a setting of an admission policy, so unknown keys are errors naming the
 * policy and the key. Policy groups (entries with `policies`/`expression`) are refused with a
 * clear message until they are implemented. Module URLs are normalised (a bare OCI reference
 * means registry://) and checked for a supported scheme.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prewarm/server.h"
#include "prewarm/util.h"

static const char *const known_keys[] = {
	"module", "settings", "policyMode", "allowedToMutate", "message",
	"timeoutEvalSeconds", "contextAwareResources", "hostCapabilities",
};
#define KNOWN_KEYS_LIST "module, settings, policyMode, allowedToMutate, message, timeoutEvalSeconds, contextAwareResources, hostCapabilities"

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "a mapping";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static void conf_clear(pw_policy_conf *c)
{
	free(c->id);
	free(c->module);
	free(c->settings_json);
	free(c->message);
	for (size_t i = 0; i < c->ncontext_resources; i++) {
		free((char *)c->context_resources[i].api_version);
		free((char *)c->context_resources[i].kind);
	}
	free(c->context_resources);
	for (size_t i = 0; i < c->nhost_capabilities; i++)
		free(c->host_capabilities[i]);
	free(c->host_capabilities);
	memset(c, 0, sizeof *c);
}

void pw_policies_free(pw_policies *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		conf_clear(&p->items[i]);
	free(p->items);
	free(p);
}

static int check_id(const char *origin, const char *id)
{
	size_t n = strlen(id);
	if (n == 0)
		return pw_error_set(PW_EINVALID, "%s: a policy id is empty", origin);
	if (n > PW_POLICY_ID_MAX)
		return pw_error_set(PW_EINVALID, "%s: policy id \"%.40s...\" is longer than %d characters",
		                    origin, id, PW_POLICY_ID_MAX);
	if (strchr(id, '/'))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": ids may not contain '/'", origin, id);
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ' || *p == '?' || *p == '#' || *p == '%')
			return pw_error_set(PW_EINVALID,
			                    "%s: policy \"%s\": ids may not contain spaces, control characters, '?', '#' or '%%'",
			                    origin, id);
	return 0;
}

/* host[:port] then a path: enough to catch typos; the OCI client checks the reference fully. */
static int check_module(const char *origin, const char *id, const char *url, char **norm,
                        pw_module_scheme *scheme)
{
	const char *sep = strstr(url, "://");
	const char *rest;

	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"module\": \"%s\" contains spaces or control characters",
			                    origin, id, url);
	if (!*url)
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"module\" is empty", origin, id);
	if (!sep) {
		/* a bare OCI reference: ghcr.io/kubewarden/policies/x:v1 */
		const char *slash = strchr(url, '/');
		if (!slash || slash == url || !slash[1])
			return pw_error_set(PW_EINVALID,
			                    "%s: policy \"%s\": key \"module\": \"%s\" is not a URL (registry://, https://, http://, file://) "
			                    "nor an OCI reference host/repository[:tag]", origin, id, url);
		*scheme = PW_MODULE_REGISTRY;
		size_t n = strlen(url) + sizeof "registry://";
		*norm = malloc(n);
		if (!*norm)
			return pw_error_set(PW_ENOMEM, "out of memory");
		snprintf(*norm, n, "registry://%s", url);
		return 0;
	}
	rest = sep + 3;
	if (!strncmp(url, "file://", 7)) {
		if (rest[0] != '/' || !rest[1])
			return pw_error_set(PW_EINVALID,
			                    "%s: policy \"%s\": key \"module\": \"%s\": file:// URLs need an absolute path (file:///abs/policy.wasm)",
			                    origin, id, url);
		*scheme = PW_MODULE_FILE;
	} else if (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)) {
		if (!*rest || *rest == '/')
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"module\": \"%s\" has no host", origin, id, url);
		*scheme = PW_MODULE_HTTP;
	} else if (!strncmp(url, "registry://", 11)) {
		const char *slash = strchr(rest, '/');
		if (!*rest || *rest == '/' || !slash || !slash[1])
			return pw_error_set(PW_EINVALID,
			                    "%s: policy \"%s\": key \"module\": \"%s\" is not registry://host[:port]/repository[:tag|@digest]",
			                    origin, id, url);
		*scheme = PW_MODULE_REGISTRY;
	} else {
		return pw_error_set(PW_EUNSUPPORTED,
		                    "%s: policy \"%s\": key \"module\": unsupported URL scheme in \"%s\" (use registry://, https://, http:// or file://)",
		                    origin, id, url);
	}
	*norm = strdup(url);
	return *norm ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}

static char *dup_str(const json_t *v)
{
	return strndup(json_string_value(v), json_string_length(v));
}

static bool has_nul(const json_t *v)
{
	return strlen(json_string_value(v)) != json_string_length(v);
}

static int parse_entry(const char *origin, const char *id, json_t *e, pw_policy_conf *c)
{
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(e))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": expected a mapping with at least \"module\", got %s",
		                    origin, id, json_kind(e));
	if (json_object_get(e, "policies") || json_object_get(e, "expression"))
		return pw_error_set(PW_EUNSUPPORTED,
		                    "%s: policy \"%s\" is a policy group (keys \"policies\"/\"expression\"): policy groups are not supported yet",
		                    origin, id);
	json_object_foreach(e, key, v) {
		bool known = false;
		for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++)
			known |= !strcmp(key, known_keys[i]);
		if (!known)
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": unknown key \"%s\" (known keys: %s)",
			                    origin, id, key, KNOWN_KEYS_LIST);
	}
	if (!(c->id = strdup(id)))
		return pw_error_set(PW_ENOMEM, "out of memory");

	v = json_object_get(e, "module");
	if (!v)
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": missing key \"module\"", origin, id);
	if (!json_is_string(v) || has_nul(v))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"module\" must be a string, got %s",
		                    origin, id, json_kind(v));
	if ((rc = check_module(origin, id, json_string_value(v), &c->module, &c->scheme)) < 0)
		return rc;

	v = json_object_get(e, "settings");
	if (v && !json_is_null(v) && !json_is_object(v))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"settings\" must be a mapping, got %s",
		                    origin, id, json_kind(v));
	if (v && json_is_object(v))
		c->settings_json = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	else
		c->settings_json = strdup("{}");
	if (!c->settings_json)
		return pw_error_set(PW_ENOMEM, "out of memory");

	v = json_object_get(e, "policyMode");
	if (v) {
		if (!json_is_string(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"policyMode\" must be \"protect\" or \"monitor\", got %s",
			                    origin, id, json_kind(v));
		if (!strcmp(json_string_value(v), "protect"))
			c->mode = PW_POLICY_PROTECT;
		else if (!strcmp(json_string_value(v), "monitor"))
			c->mode = PW_POLICY_MONITOR;
		else
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"policyMode\" must be \"protect\" or \"monitor\", got \"%s\"",
			                    origin, id, json_string_value(v));
	}

	v = json_object_get(e, "allowedToMutate");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"allowedToMutate\" must be true or false, got %s",
			                    origin, id, json_kind(v));
		c->allowed_to_mutate = json_is_true(v);
	}

	v = json_object_get(e, "message");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || has_nul(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"message\" must be a string, got %s",
			                    origin, id, json_kind(v));
		if (!(c->message = dup_str(v)))
			return pw_error_set(PW_ENOMEM, "out of memory");
	}

	v = json_object_get(e, "timeoutEvalSeconds");
	if (v && !json_is_null(v)) {
		double t = json_is_number(v) ? json_number_value(v) : -1;
		if (!json_is_number(v) || !(t > 0) || t > 3600 || !isfinite(t))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"timeoutEvalSeconds\" must be a number of seconds in (0, 3600]",
			                    origin, id);
		c->timeout_seconds = t;
	}

	v = json_object_get(e, "contextAwareResources");
	if (v && !json_is_null(v)) {
		size_t i;
		json_t *r;
		if (!json_is_array(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"contextAwareResources\" must be a list of {apiVersion, kind}, got %s",
			                    origin, id, json_kind(v));
		c->context_resources = calloc(json_array_size(v) + 1, sizeof *c->context_resources);
		if (!c->context_resources)
			return pw_error_set(PW_ENOMEM, "out of memory");
		json_array_foreach(v, i, r) {
			json_t *av = json_object_get(r, "apiVersion"), *kd = json_object_get(r, "kind");
			if (!json_is_object(r) || !json_is_string(av) || !json_is_string(kd) || json_object_size(r) != 2 ||
			    has_nul(av) || has_nul(kd))
				return pw_error_set(PW_EINVALID,
				                    "%s: policy \"%s\": key \"contextAwareResources\" item %zu must be {apiVersion: string, kind: string} and nothing else",
				                    origin, id, i);
			pw_policy_resource *res = &c->context_resources[c->ncontext_resources++];
			res->api_version = dup_str(av);
			res->kind = dup_str(kd);
			if (!res->api_version || !res->kind)
				return pw_error_set(PW_ENOMEM, "out of memory");
		}
	}

	v = json_object_get(e, "hostCapabilities");
	if (v && !json_is_null(v)) {
		size_t i;
		json_t *s;
		if (!json_is_array(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"hostCapabilities\" must be a list of strings, got %s",
			                    origin, id, json_kind(v));
		c->host_capabilities = calloc(json_array_size(v) + 1, sizeof *c->host_capabilities);
		if (!c->host_capabilities)
			return pw_error_set(PW_ENOMEM, "out of memory");
		json_array_foreach(v, i, s) {
			if (!json_is_string(s) || has_nul(s) || !json_string_length(s))
				return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"hostCapabilities\" item %zu must be a non-empty string",
				                    origin, id, i);
			if (!(c->host_capabilities[c->nhost_capabilities++] = dup_str(s)))
				return pw_error_set(PW_ENOMEM, "out of memory");
		}
	}
	return 0;
}

int pw_policies_parse(pw_policies **out, const char *yaml, size_t len, const char *origin)
{
	void *doc = NULL;
	json_t *root;
	pw_policies *p;
	const char *id;
	json_t *e;
	int rc;

	*out = NULL;
	origin = origin ? origin : "policies.yml";
	rc = pw_yaml_to_json(&doc, yaml, len, origin);
	if (rc == PW_ENOTFOUND)
		return pw_error_set(PW_EINVALID, "%s: empty file: expected a mapping of policy id -> policy ({} for none)", origin);
	if (rc < 0)
		return rc;
	root = doc;
	if (!json_is_object(root)) {
		rc = pw_error_set(PW_EINVALID, "%s: expected a mapping of policy id -> policy, got %s", origin, json_kind(root));
		json_decref(root);
		return rc;
	}
	p = calloc(1, sizeof *p);
	if (p)
		p->items = calloc(json_object_size(root) + 1, sizeof *p->items);
	if (!p || !p->items) {
		free(p);
		json_decref(root);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	/* jansson keeps insertion order, so this is file order */
	json_object_foreach(root, id, e) {
		if ((rc = check_id(origin, id)) < 0)
			break;
		rc = parse_entry(origin, id, e, &p->items[p->n]);
		p->n++;   /* counted even on failure so that free releases it */
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc < 0) {
		pw_policies_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int pw_policies_load(pw_policies **out, const char *path)
{
	pw_buf b = PW_BUF_INIT;
	int rc;

	*out = NULL;
	if ((rc = pw_file_read(path, PW_POLICIES_MAX_BYTES, &b)) < 0)
		return pw_error_prefix("policies file");
	rc = pw_policies_parse(out, b.data ? (const char *)b.data : "", b.len, path);
	pw_buf_free(&b);
	return rc;
}

const pw_policy_conf *pw_policies_find(const pw_policies *p, const char *id)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (!strcmp(p->items[i].id, id))
			return &p->items[i];
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

bool pw_policy_conf_equal(const pw_policy_conf *a, const pw_policy_conf *b)
{
	if (!str_eq(a->id, b->id) || !str_eq(a->module, b->module) || !str_eq(a->settings_json, b->settings_json) ||
	    a->mode != b->mode || a->allowed_to_mutate != b->allowed_to_mutate || !str_eq(a->message, b->message) ||
	    a->timeout_seconds != b->timeout_seconds || a->ncontext_resources != b->ncontext_resources ||
	    a->nhost_capabilities != b->nhost_capabilities)
		return false;
	for (size_t i = 0; i < a->ncontext_resources; i++)
		if (!str_eq(a->context_resources[i].api_version, b->context_resources[i].api_version) ||
		    !str_eq(a->context_resources[i].kind, b->context_resources[i].kind))
			return false;
	for (size_t i = 0; i < a->nhost_capabilities; i++)
		if (!str_eq(a->host_capabilities[i], b->host_capabilities[i]))
			return false;
	return true;
}
