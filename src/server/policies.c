/*
 * policies.yml: Kubewarden's map of policy id -> policy or policy group, as
 * kubewarden-controller writes it (one line of JSON, which is YAML) or as people write it.
 *
 * The YAML is first turned into JSON (yaml_json.c, bounded), then every entry is checked.
 * A single policy (an entry with `module`) reads module, settings, policyMode,
 * allowedToMutate, message, timeoutEvalSeconds, contextAwareResources and hostCapabilities
 * with strict types; other keys (the controller's `namespacedName`) are ignored with a debug
 * line, as Kubewarden's serde does. A policy group (an entry with `policies`) reads
 * policyMode, expression, message and its members, whose keys are checked strictly (module,
 * settings, contextAwareResources, timeoutEvalSeconds, hostCapabilities: Kubewarden's
 * deny_unknown_fields). The group's expression is parsed here, once (expr.c), so a bad one
 * fails the load with its position. hostCapabilities patterns are trimmed and checked
 * against Kubewarden's capability tree. Module URLs are normalised (a bare OCI reference
 * means registry://) and checked for a supported scheme.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prewarm/policy.h"
#include "prewarm/server.h"
#include "prewarm/util.h"
#include "server/expr.h"

/* The keys Prewarm reads on a single policy, a group and a group member (executionMode is
 * Prewarm's: Kubewarden takes it from the module's metadata only; docs/rego.md). Kubewarden ignores
 * other keys on policies and groups (its serde variants have no deny_unknown_fields) but
 * refuses them on members (deny_unknown_fields), and so does Prewarm. */
#define POLICY_KEYS "module, settings, policyMode, allowedToMutate, message, timeoutEvalSeconds, contextAwareResources, hostCapabilities, executionMode"
#define GROUP_KEYS "policies, expression, message, policyMode"
#define MEMBER_KEYS "module, settings, contextAwareResources, timeoutEvalSeconds, hostCapabilities, executionMode"

static bool in_list(const char *key, const char *list)
{
	size_t n = strlen(key);
	if (n == 0)
		return false;   /* strstr finds "" everywhere: the loop below would not advance */
	for (const char *p = list; (p = strstr(p, key)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

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
	free(c->execution_mode);
	for (size_t i = 0; i < c->ncontext_resources; i++) {
		free((char *)c->context_resources[i].api_version);
		free((char *)c->context_resources[i].kind);
	}
	free(c->context_resources);
	for (size_t i = 0; i < c->nhost_capabilities; i++)
		free(c->host_capabilities[i]);
	free(c->host_capabilities);
	free(c->expression);
	pw_expr_free(c->expr);
	for (size_t i = 0; i < c->nmembers; i++)
		conf_clear(&c->members[i]);
	free(c->members);
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

/* ---- hostCapabilities: Kubewarden's patterns (host_capabilities.rs) ---------------------- */

/* 0 when `pat` (trimmed, non-empty, not "*") is a valid pattern, else PW_EINVALID; the
 * patterns are checked by the host, which knows Kubewarden's capability tree. */
static int check_capability(const char *origin, const char *id, const char *pat)
{
	int rc = pw_host_capability_pattern_check(pat);
	if (rc < 0)
		return pw_error_prefix("%s: invalid hostCapabilities pattern for policy %s", origin, id);
	return 0;
}

static int parse_capabilities(const char *origin, pw_policy_conf *c, json_t *v)
{
	size_t i;
	json_t *s;
	bool all = false;

	if (!v || json_is_null(v)) {
		/* Kubewarden: absent = [] = nothing allowed; null does not even deserialize there */
		if (v)
			pw_warn("policies", "%s: policy \"%s\": key \"hostCapabilities\" is null: no host capability is "
			        "granted (like [])", origin, c->id);
		return 0;
	}
	if (!json_is_array(v))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"hostCapabilities\" must be a list of strings, got %s",
		                    origin, c->id, json_kind(v));
	c->host_capabilities = calloc(json_array_size(v) + 1, sizeof *c->host_capabilities);
	if (!c->host_capabilities)
		return pw_error_set(PW_ENOMEM, "out of memory");
	json_array_foreach(v, i, s) {
		if (!json_is_string(s) || has_nul(s))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"hostCapabilities\" item %zu must be a string, got %s",
			                    origin, c->id, i, json_kind(s));
		const char *t = json_string_value(s);
		size_t n = json_string_length(s);
		while (n && isspace((unsigned char)*t))
			t++, n--;
		while (n && isspace((unsigned char)t[n - 1]))
			n--;
		if (!n)
			return pw_error_set(PW_EINVALID, "%s: invalid hostCapabilities pattern for policy %s: item %zu is empty",
			                    origin, c->id, i);
		char *pat = strndup(t, n);
		if (!pat)
			return pw_error_set(PW_ENOMEM, "out of memory");
		c->host_capabilities[c->nhost_capabilities++] = pat;
		all |= !strcmp(pat, "*");
	}
	/* "*" anywhere allows everything and the other patterns are not looked at (AllowAll) */
	for (size_t k = 0; !all && k < c->nhost_capabilities; k++) {
		int rc = check_capability(origin, c->id, c->host_capabilities[k]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- entries ------------------------------------------------------------------------------ */

static int parse_mode(const char *origin, pw_policy_conf *c, json_t *v)
{
	if (!v)
		return 0;
	if (!json_is_string(v))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"policyMode\" must be \"protect\" or \"monitor\", got %s",
		                    origin, c->id, json_kind(v));
	if (!strcmp(json_string_value(v), "protect"))
		c->mode = PW_POLICY_PROTECT;
	else if (!strcmp(json_string_value(v), "monitor"))
		c->mode = PW_POLICY_MONITOR;
	else
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"policyMode\" must be \"protect\" or \"monitor\", got \"%s\"",
		                    origin, c->id, json_string_value(v));
	return 0;
}

/* The keys of `keys` (POLICY_KEYS or MEMBER_KEYS) that `e` has, into c (c->id set). */
static int parse_policy_keys(const char *origin, json_t *e, pw_policy_conf *c, const char *keys)
{
	const char *id = c->id;
	json_t *v;
	int rc;

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

	if (in_list("policyMode", keys) && (rc = parse_mode(origin, c, json_object_get(e, "policyMode"))) < 0)
		return rc;

	v = in_list("allowedToMutate", keys) ? json_object_get(e, "allowedToMutate") : NULL;
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"allowedToMutate\" must be true or false, got %s",
			                    origin, id, json_kind(v));
		c->allowed_to_mutate = json_is_true(v);
	}

	v = in_list("message", keys) ? json_object_get(e, "message") : NULL;
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || has_nul(v))
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"message\" must be a string, got %s",
			                    origin, id, json_kind(v));
		if (!(c->message = dup_str(v)))
			return pw_error_set(PW_ENOMEM, "out of memory");
	}

	v = json_object_get(e, "executionMode");
	if (v && !json_is_null(v)) {
		pw_policy_abi abi;
		if (!json_is_string(v) || has_nul(v) || pw_policy_abi_parse(json_string_value(v), &abi) < 0)
			return pw_error_set(PW_EINVALID, "%s: policy \"%s\": key \"executionMode\" must be one of "
			                    "kubewarden-wapc, wasi, opa, gatekeeper", origin, id);
		if (!(c->execution_mode = dup_str(v)))
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
	return parse_capabilities(origin, c, json_object_get(e, "hostCapabilities"));
}

/* A member name is called from the expression, so it must be an identifier (the controller's
 * webhook allows ^[_a-zA-Z][_a-zA-Z0-9]*$; Kubewarden's policy-server refuses '/'). */
static int check_member_name(const char *origin, const char *group, const char *name)
{
	if (strchr(name, '/'))
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\" contains policies with invalid names: [\"%s\"]: "
		                    "names may not contain '/'", origin, group, name);
	bool ok = (name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_';
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (!ok || !strcmp(name, "true") || !strcmp(name, "false"))
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": member \"%s\": a member name must be an identifier "
		                    "([_a-zA-Z][_a-zA-Z0-9]*, not true or false) to be called from the expression",
		                    origin, group, name);
	if (strlen(group) + 1 + strlen(name) > PW_POLICY_ID_MAX)
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": member \"%s\": \"GROUP/MEMBER\" is longer than %d characters",
		                    origin, group, name, PW_POLICY_ID_MAX);
	return 0;
}

static void ignore_keys(const char *origin, const char *id, json_t *e, const char *keys)
{
	const char *key;
	json_t *v;
	json_object_foreach(e, key, v) {
		if (!in_list(key, keys))
			pw_debug("policies", "%s: policy \"%s\": ignoring key \"%s\" (Kubewarden ignores it; Prewarm reads %s)",
			         origin, id, key, keys);
	}
}

static int parse_group(const char *origin, const char *id, json_t *e, pw_policy_conf *c)
{
	json_t *pol = json_object_get(e, "policies"), *ex = json_object_get(e, "expression");
	json_t *msg = json_object_get(e, "message"), *m;
	const char *name, **names = NULL;
	char what[PW_POLICY_ID_MAX + 600];
	int rc;

	c->is_group = true;
	ignore_keys(origin, id, e, GROUP_KEYS);
	if ((rc = parse_mode(origin, c, json_object_get(e, "policyMode"))) < 0)
		return rc;
	if (!ex)
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": missing key \"expression\"", origin, id);
	if (!json_is_string(ex) || has_nul(ex))
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": key \"expression\" must be a string, got %s",
		                    origin, id, json_kind(ex));
	if (!msg)
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": missing key \"message\"", origin, id);
	if (!json_is_string(msg) || has_nul(msg))
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": key \"message\" must be a string, got %s",
		                    origin, id, json_kind(msg));
	if (!json_is_object(pol) || !json_object_size(pol))
		return pw_error_set(PW_EINVALID, "%s: policy group \"%s\": key \"policies\" must be a non-empty mapping of "
		                    "member name -> policy, got %s", origin, id,
		                    json_is_object(pol) ? "an empty mapping" : json_kind(pol));
	if (!(c->expression = dup_str(ex)) || !(c->message = dup_str(msg)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	c->members = calloc(json_object_size(pol) + 1, sizeof *c->members);
	names = calloc(json_object_size(pol) + 1, sizeof *names);
	if (!c->members || !names) {
		free(names);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	json_object_foreach(pol, name, m) {
		pw_policy_conf *mc = &c->members[c->nmembers];
		const char *key;
		json_t *v;
		if ((rc = check_member_name(origin, id, name)) < 0)
			goto out;
		c->nmembers++;
		size_t n = strlen(id) + strlen(name) + 2;
		if (!(mc->id = malloc(n))) {
			rc = pw_error_set(PW_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(mc->id, n, "%s/%s", id, name);
		mc->member_name = mc->id + strlen(id) + 1;
		names[c->nmembers - 1] = mc->member_name;
		if (!json_is_object(m)) {
			rc = pw_error_set(PW_EINVALID, "%s: policy \"%s\": expected a mapping with at least \"module\", got %s",
			                  origin, mc->id, json_kind(m));
			goto out;
		}
		json_object_foreach(m, key, v) {
			if (!in_list(key, MEMBER_KEYS)) {
				rc = pw_error_set(PW_EINVALID, "%s: policy \"%s\": unknown key \"%s\" (group members accept: %s)",
				                  origin, mc->id, key, MEMBER_KEYS);
				goto out;
			}
		}
		if ((rc = parse_policy_keys(origin, m, mc, MEMBER_KEYS)) < 0)
			goto out;
	}
	snprintf(what, sizeof what, "%s: policy group \"%s\"", origin, id);
	rc = pw_expr_parse(&c->expr, c->expression, names, c->nmembers, what);
out:
	free(names);
	return rc;
}

static int parse_entry(const char *origin, const char *id, json_t *e, pw_policy_conf *c)
{
	bool has_module, has_policies;

	if (!json_is_object(e))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\": expected a mapping with at least \"module\", got %s",
		                    origin, id, json_kind(e));
	if (!(c->id = strdup(id)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	has_module = json_object_get(e, "module") != NULL;
	has_policies = json_object_get(e, "policies") != NULL;
	if (has_module && has_policies)
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\" has both \"module\" (a policy) and \"policies\" (a policy "
		                    "group): use one", origin, id);
	if (has_policies)
		return parse_group(origin, id, e, c);
	if (json_object_get(e, "expression"))
		return pw_error_set(PW_EINVALID, "%s: policy \"%s\" has \"expression\" but no \"policies\": a policy group "
		                    "needs its members under \"policies\"", origin, id);
	ignore_keys(origin, id, e, POLICY_KEYS);
	return parse_policy_keys(origin, e, c, POLICY_KEYS);
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
	    !str_eq(a->execution_mode, b->execution_mode) ||
	    a->timeout_seconds != b->timeout_seconds || a->ncontext_resources != b->ncontext_resources ||
	    a->nhost_capabilities != b->nhost_capabilities || (a->host_capabilities == NULL) != (b->host_capabilities == NULL) ||
	    a->is_group != b->is_group || !str_eq(a->expression, b->expression) || a->nmembers != b->nmembers)
		return false;
	for (size_t i = 0; i < a->nmembers; i++)
		if (!pw_policy_conf_equal(&a->members[i], &b->members[i]))
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
