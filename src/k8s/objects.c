/*
 * Answering Kubernetes host calls from a file of objects instead of an API server
 * (`prewarm eval --allow-context-aware FILE`), so policy authors can run context-aware
 * policies on their machine. The file is YAML (several documents allowed, as `kubectl get
 * -o yaml` or a manifest directory concatenated) or JSON: objects, list objects
 * ({"kind": "PodList", "items": [...]}, `kubectl get pods -A -o json`) or arrays of them.
 * Items of a list take the list's apiVersion when they have none (and the kind without
 * "List"), as `kubectl get -o json` items carry theirs.
 *
 * list answers filter by apiVersion, kind, namespace and the selectors (select.c) and are
 * shaped exactly as against a cluster; get answers the object or Kubewarden's "Cannot find"
 * error. A kind is namespaced when its objects have a metadata.namespace. SubjectAccessReview
 * objects (authorization.k8s.io/v1, with spec and status: what `kubectl create -o json` of a
 * review prints) answer can_i for a request with the same spec; other can_i calls get an error
 * naming the file.
 */
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

#define OBJECTS_MAX_FILE (256u << 20)

static int add_object(pw_k8s *k, json_t *o, const char *list_av, const char *list_kind,
                      const char *path, size_t *index)
{
	(*index)++;
	if (!json_is_object(o))
		return pw_error_set(PW_EINVALID, "%s: object %zu is not a mapping", path, *index);
	const char *kind = json_string_value(json_object_get(o, "kind"));
	json_t *items = json_object_get(o, "items");
	if (kind && strlen(kind) >= 4 && !strcmp(kind + strlen(kind) - 4, "List") && json_is_array(items)) {
		const char *av = json_string_value(json_object_get(o, "apiVersion"));
		pw_buf ik = PW_BUF_INIT;
		if (strcmp(kind, "List") != 0)
			pw_buf_printf(&ik, "%.*s", (int)(strlen(kind) - 4), kind);
		size_t i;
		json_t *it;
		int rc = 0;
		json_array_foreach(items, i, it) {
			if ((rc = add_object(k, it, av, ik.data ? (const char *)ik.data : NULL, path, index)) < 0)
				break;
		}
		pw_buf_free(&ik);
		return rc;
	}
	if (!json_object_get(o, "apiVersion") && list_av && list_kind)
		json_object_set_new(o, "apiVersion", json_string(list_av));
	if (!json_object_get(o, "kind") && list_kind)
		json_object_set_new(o, "kind", json_string(list_kind));
	const char *av = json_string_value(json_object_get(o, "apiVersion"));
	kind = json_string_value(json_object_get(o, "kind"));
	if (!av || !kind)
		return pw_error_set(PW_EINVALID, "%s: object %zu has no apiVersion and kind", path, *index);
	if (!strcmp(kind, "SubjectAccessReview")) {
		if (!json_is_object(json_object_get(o, "spec")) || !json_is_object(json_object_get(o, "status")))
			return pw_error_set(PW_EINVALID, "%s: SubjectAccessReview %zu needs a spec and a status", path, *index);
		return json_array_append(k->reviews, o);
	}
	char *key = NULL;
	if (k8s_object_key(o, &key) < 0)
		return pw_error_set(PW_EINVALID, "%s: object %zu (%s/%s) has no metadata.name", path, *index, av, kind);
	free(key);
	k8s_object_trim(o, NULL, true);
	return json_array_append(k->objects, o);
}

int pw_k8s_new_from_file(pw_k8s **out, const char *path)
{
	*out = NULL;
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(path, OBJECTS_MAX_FILE, &b);
	if (rc < 0)
		return pw_error_prefix("--allow-context-aware");
	json_t *docs = NULL;
	json_error_t e;
	json_t *j = json_loadb(b.data ? (const char *)b.data : "", b.len, 0, &e);
	if (j) {
		docs = json_array();
		json_array_append_new(docs, j);
	} else {
		void *y = NULL;
		rc = pw_yaml_to_json_all(&y, b.data ? (const char *)b.data : "", b.len, path);
		docs = y;
	}
	pw_buf_free(&b);
	if (rc < 0)
		return pw_error_prefix("--allow-context-aware");
	pw_k8s *k = calloc(1, sizeof *k);
	if (!k) {
		json_decref(docs);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	k->file_mode = true;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->answers_lock, NULL);
	k->objects = json_array();
	k->reviews = json_array();
	size_t i, index = 0;
	json_t *d;
	json_array_foreach(docs, i, d) {
		if (json_is_null(d))
			continue;
		if (json_is_array(d)) {
			size_t j2;
			json_t *o;
			json_array_foreach(d, j2, o)
				if ((rc = add_object(k, o, NULL, NULL, path, &index)) < 0)
					break;
		} else {
			rc = add_object(k, d, NULL, NULL, path, &index);
		}
		if (rc < 0)
			break;
	}
	json_decref(docs);
	if (rc < 0) {
		pw_k8s_free(k);
		return pw_error_prefix("--allow-context-aware");
	}
	pw_info("kubernetes", "answering from %s: %zu objects, %zu SubjectAccessReviews", path,
	        json_array_size(k->objects), json_array_size(k->reviews));
	*out = k;
	return 0;
}

static bool same(const json_t *o, const char *av, const char *kind)
{
	const char *a = json_string_value(json_object_get(o, "apiVersion"));
	const char *kd = json_string_value(json_object_get(o, "kind"));
	return a && kd && !strcmp(a, av) && !strcmp(kd, kind);
}

static const char *ns_of(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "namespace"));
}

static const char *name_of(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

static bool namespaced(pw_k8s *k, const char *av, const char *kind, bool *known)
{
	size_t i;
	json_t *o;
	*known = false;
	json_array_foreach(k->objects, i, o) {
		if (same(o, av, kind)) {
			*known = true;
			if (ns_of(o))
				return true;
		}
	}
	return false;
}

static int cmp_key(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	int c = strcmp(ns_of(x) ? ns_of(x) : "", ns_of(y) ? ns_of(y) : "");
	return c ? c : strcmp(name_of(x), name_of(y));
}

int k8s_file_list(pw_k8s *k, const char *av, const char *kind, const char *ns, const char *label_sel,
                  const char *field_sel, const json_t *masks, pw_buf *answer)
{
	bool known;
	if (ns && !namespaced(k, av, kind, &known) && known)
		return pw_error_set(PW_EINVALID, "resource %s/%s is cluster wide. Cannot search for it inside of a namespace",
		                    av, kind);
	k8s_selector *ls = NULL, *fs = NULL;
	int rc = k8s_label_selector_parse(&ls, label_sel);
	if (rc == 0)
		rc = k8s_field_selector_parse(&fs, field_sel);
	if (rc < 0) {
		k8s_selector_free(ls);
		return rc;
	}
	size_t n = 0, i;
	json_t *o;
	const json_t **sel = calloc(json_array_size(k->objects) + 1, sizeof *sel);
	if (!sel) {
		k8s_selector_free(ls);
		k8s_selector_free(fs);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	json_array_foreach(k->objects, i, o) {
		if (!same(o, av, kind))
			continue;
		if (ns && (!ns_of(o) || strcmp(ns_of(o), ns) != 0))
			continue;
		if (!k8s_selector_matches(ls, o) || !k8s_selector_matches(fs, o))
			continue;
		sel[n++] = o;
	}
	qsort(sel, n, sizeof *sel, cmp_key);
	pw_buf lk = PW_BUF_INIT;
	pw_buf_printf(&lk, "%sList", kind);
	json_t *list = json_pack("{s:s, s:s}", "apiVersion", av, "kind", lk.data ? (const char *)lk.data : "");
	pw_buf_free(&lk);
	json_t *items = json_array();
	for (i = 0; i < n; i++) {
		json_t *c = json_deep_copy(sel[i]);
		k8s_object_trim(c, masks, true);
		json_array_append_new(items, c);
	}
	free(sel);
	k8s_selector_free(ls);
	k8s_selector_free(fs);
	/* the wrapper in Kubewarden's field order, the items with sorted keys as serde_json's maps */
	char *text = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
	char *avs = json_dumps(json_object_get(list, "apiVersion"), JSON_ENCODE_ANY);
	char *kvs = json_dumps(json_object_get(list, "kind"), JSON_ENCODE_ANY);
	if (text && avs && kvs)
		pw_buf_printf(answer, "{\"apiVersion\":%s,\"kind\":%s,\"metadata\":{},\"items\":%s}", avs, kvs, text);
	else
		rc = pw_error_set(PW_ENOMEM, "out of memory");
	free(text);
	free(avs);
	free(kvs);
	json_decref(items);
	json_decref(list);
	return rc;
}

int k8s_file_get(pw_k8s *k, const char *av, const char *kind, const char *name, const char *ns,
                 json_t **out)
{
	*out = NULL;
	bool known;
	if (namespaced(k, av, kind, &known) && !ns)
		return pw_error_set(PW_EINVALID, "Resource %s/%s is namespaced, but no namespace was provided", av, kind);
	size_t i;
	json_t *o;
	json_array_foreach(k->objects, i, o) {
		if (!same(o, av, kind) || strcmp(name_of(o), name) != 0)
			continue;
		const char *ons = ns_of(o);
		if (ns && ons && strcmp(ns, ons) != 0)
			continue;
		if (ns && !ons && known)
			continue;
		*out = json_deep_copy(o);
		return 0;
	}
	return PW_ENOTFOUND;
}

int k8s_file_can_i(pw_k8s *k, const json_t *spec, json_t **status)
{
	*status = NULL;
	size_t i;
	json_t *r;
	json_array_foreach(k->reviews, i, r) {
		json_t *s = json_object_get(r, "spec");
		/* compare the fields the request sets: user, groups, resourceAttributes */
		json_t *want = json_deep_copy(spec);
		json_t *have = json_object();
		static const char *const keys[] = { "user", "groups", "resourceAttributes" };
		for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
			if (json_object_get(s, keys[j]))
				json_object_set(have, keys[j], json_object_get(s, keys[j]));
		bool eq = json_equal(want, have);
		json_decref(want);
		json_decref(have);
		if (eq) {
			*status = json_incref(json_object_get(r, "status"));
			return 0;
		}
	}
	char *t = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = pw_error_set(PW_ENOTFOUND, "no SubjectAccessReview in the --allow-context-aware file has the spec %s",
	                      t ? t : "?");
	free(t);
	return rc;
}
