/*
 * The data document of context-aware Rego policies (pw_k8s_inventory): every object of each
 * kind in the policy's contextAwareResources, listed as list_resources_all lists it (the
 * watched cache, or the file of objects), arranged the way Kubewarden's rego runtime hands
 * it to the policy (kubewarden-controller crates/policy-evaluator/src/runtimes/rego/:
 * opa_inventory.rs, gatekeeper_inventory.rs, context_aware.rs, stack.rs):
 *
 *   OPA (kube-mgmt's layout, read as data.kubernetes):
 *     {PLURAL: {NAMESPACE: {NAME: object}}}     namespaced kinds
 *     {PLURAL: {NAME: object}}                  cluster-wide kinds
 *   Gatekeeper (its sync layout, read as data.inventory):
 *     {"cluster": {APIVERSION: {KIND: {NAME: object}}},
 *      "namespace": {NAMESPACE: {APIVERSION: {KIND: {NAME: object}}}}}
 *
 * As in Kubewarden an object's scope is whether it has metadata.namespace, the kinds are
 * taken in (apiVersion, kind) order and the first that cannot be listed fails the whole
 * document; two kinds with the same plural name share its map. PLURAL comes from discovery
 * (the client's resource table); a file of objects has no discovery, so there it is the
 * lowercased kind made plural by kube-rs's rule (-es after s, x, z, ch, sh; consonant + y ->
 * -ies; else -s; endpoints stays). docs/rego.md.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

/* The lowercase plural of `kind` without discovery (malloc'd). */
static char *guess_plural(const char *kind)
{
	size_t n = strlen(kind);
	char *w = malloc(n + 4);
	if (!w)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		w[i] = (char)tolower((unsigned char)kind[i]);
	if (!strcmp(w, "endpoints") || !strcmp(w, "endpointslices"))
		return w;
	bool es = n && (w[n - 1] == 's' || w[n - 1] == 'x' || w[n - 1] == 'z');
	if (n >= 2 && (w[n - 1] == 'h') && (w[n - 2] == 'c' || w[n - 2] == 's'))
		es = true;
	if (es)
		strcpy(w + n, "es");
	else if (n >= 2 && w[n - 1] == 'y' && !strchr("aeiou", w[n - 2]))
		strcpy(w + n - 1, "ies");
	else
		strcpy(w + n, "s");
	return w;
}

/* Every object of av/kind (a new reference to the list's items) and the kind's plural. */
static int list_all(pw_k8s *k, const char *av, const char *kind, json_t **items, char **plural)
{
	*items = NULL;
	*plural = NULL;
	pw_buf text = PW_BUF_INIT;
	int rc;
	if (k->file_mode) {
		rc = k8s_file_list(k, av, kind, NULL, NULL, NULL, NULL, &text);
		if (rc == 0 && !(*plural = guess_plural(kind)))
			rc = pw_error_set(PW_ENOMEM, "out of memory");
	} else {
		const k8s_resource *r = NULL;
		rc = k8s_resource_find(k, av, kind, &r);
		if (rc == 0)
			rc = k8s_list(k, r, NULL, NULL, NULL, NULL, &text);
		if (rc == 0 && !(*plural = strdup(r->plural)))
			rc = pw_error_set(PW_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		json_error_t e;
		json_t *list = json_loadb(text.data ? (const char *)text.data : "", text.len, 0, &e);
		json_t *it = json_object_get(list, "items");
		if (json_is_array(it))
			*items = json_incref(it);
		else
			rc = pw_error_set(PW_EINVALID, "the list of %s/%s is not a list object", av, kind);
		json_decref(list);
	}
	pw_buf_free(&text);
	if (rc < 0) {
		free(*plural);
		*plural = NULL;
	}
	return rc;
}

/* parent[key], made an empty object when absent. NULL on out of memory or a non-object. */
static json_t *child(json_t *parent, const char *key)
{
	json_t *c = json_object_get(parent, key);
	if (!c && json_object_set_new(parent, key, c = json_object()) < 0)
		return NULL;
	return json_is_object(c) ? c : NULL;
}

/* Files one object: OPA under plural (scopes remembers each plural's scope), Gatekeeper
 * under cluster / namespace. */
static int add_object(json_t *inv, json_t *scopes, bool gatekeeper, const char *av, const char *kind,
                      const char *plural, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (!name)
		return pw_error_set(PW_EINVALID, "a %s/%s object has no metadata.name", av, kind);
	json_t *m;
	if (gatekeeper) {
		m = ns ? child(child(child(child(inv, "namespace"), ns), av), kind)
		       : child(child(child(inv, "cluster"), av), kind);
	} else {
		json_t *scope = json_object_get(scopes, plural);
		if (scope && json_is_true(scope) != (ns != NULL))
			return pw_error_set(PW_EINVALID, "trying to add a %s resource to a list of %s resources (%s)",
			                    ns ? "namespaced" : "clusterwide", ns ? "clusterwide" : "namespaced", plural);
		if (!scope)
			json_object_set_new(scopes, plural, json_boolean(ns != NULL));
		m = ns ? child(child(inv, plural), ns) : child(inv, plural);
	}
	if (!m || json_object_set(m, name, obj) < 0)
		return pw_error_set(PW_ENOMEM, "out of memory");
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	int c = strcmp(x[0], y[0]);
	return c ? c : strcmp(x[1], y[1]);
}

int pw_k8s_inventory(pw_k8s *k, const char *why, bool gatekeeper, const char *const *resources, size_t n,
                     pw_buf *out)
{
	if (!k) {
		pw_buf_printf(out, "cannot build the Kubernetes context of the policy: kube::Client was not "
		              "initialized properly%s%s", why && *why ? ": " : "", why ? why : "");
		return PW_EUNSUPPORTED;
	}
	const char **sorted = calloc(2 * n + 2, sizeof *sorted);
	json_t *inv = gatekeeper ? json_pack("{s:{}, s:{}}", "cluster", "namespace") : json_object();
	json_t *scopes = json_object();
	int rc = sorted && inv && scopes ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
	if (rc == 0) {
		memcpy(sorted, resources, 2 * n * sizeof *sorted);
		qsort(sorted, n, 2 * sizeof *sorted, cmp_pair);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *av = sorted[2 * i], *kind = sorted[2 * i + 1];
		if (i && !cmp_pair(&sorted[2 * i - 2], &sorted[2 * i]))
			continue;   /* listed twice in contextAwareResources */
		json_t *items = NULL, *obj;
		char *plural = NULL;
		size_t j;
		rc = list_all(k, av, kind, &items, &plural);
		json_array_foreach(items, j, obj) {
			if (rc == 0)
				rc = add_object(inv, scopes, gatekeeper, av, kind, plural, obj);
		}
		json_decref(items);
		free(plural);
		if (rc < 0)
			pw_buf_printf(out, "cannot build the Kubernetes context of the policy: listing %s/%s: %s", av,
			              kind, pw_error_last());
	}
	if (rc == 0) {
		char *t = json_dumps(inv, JSON_COMPACT | JSON_SORT_KEYS);
		if (t)
			pw_buf_puts(out, t);
		else
			rc = pw_error_set(PW_ENOMEM, "out of memory");
		free(t);
	} else if (rc == PW_ENOMEM && !out->len) {
		pw_buf_puts(out, "cannot build the Kubernetes context of the policy: out of memory");
	}
	json_decref(scopes);
	json_decref(inv);
	free(sorted);
	return rc;
}
