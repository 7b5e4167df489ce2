/*
 * The Kubernetes client: configuration, discovery (apiVersion + kind -> plural resource name
 * and scope, from GET /api/v1 or /apis/GROUP/VERSION, remembered for the client's life as
 * Kubewarden's Client::build_kube_resource does), and the two calls that go to the API
 * server every time: GET of one object and the SubjectAccessReview POST behind can_i.
 * Lists go through the watched cache of reflector.c.
 */
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

int pw_k8s_new(pw_k8s **out, const pw_k8s_opts *opts)
{
	static const pw_k8s_opts none;
	*out = NULL;
	pw_k8s *k = calloc(1, sizeof *k);
	if (!k)
		return pw_error_set(PW_ENOMEM, "out of memory");
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->answers_lock, NULL);
	int rc = k8s_config_load(&k->conn, opts ? opts : &none);
	if (rc < 0) {
		pw_k8s_free(k);
		return rc;
	}
	pw_info("kubernetes", "API server %s from %s", k->conn.server, k->conn.origin);
	*out = k;
	return 0;
}

void pw_k8s_free(pw_k8s *k)
{
	if (!k)
		return;
	k8s_reflectors_free(k);
	k8s_answers_free(k);
	pthread_mutex_destroy(&k->answers_lock);
	for (size_t i = 0; i < k->nresources; i++) {
		free(k->resources[i]->api_version);
		free(k->resources[i]->kind);
		free(k->resources[i]->plural);
		free(k->resources[i]);
	}
	free(k->resources);
	json_decref(k->objects);
	json_decref(k->reviews);
	if (!k->file_mode)
		k8s_conn_free(&k->conn);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void pw_k8s_get_stats(pw_k8s *k, pw_k8s_stats *s)
{
	memset(s, 0, sizeof *s);
	if (!k)
		return;
	s->lists = atomic_load(&k->n_lists);
	s->watches = atomic_load(&k->n_watches);
	s->gets = atomic_load(&k->n_gets);
	s->reviews = atomic_load(&k->n_reviews);
	s->discoveries = atomic_load(&k->n_discoveries);
	s->relists = atomic_load(&k->n_relists);
	s->events = atomic_load(&k->n_events);
	s->errors = atomic_load(&k->n_errors);
}

const char *pw_k8s_server(const pw_k8s *k)
{
	return k && !k->file_mode ? k->conn.server : NULL;
}

int k8s_query_add(pw_buf *b, const char *name, const char *value)
{
	pw_buf_puts(b, (b->data && memchr(b->data, '?', b->len)) ? "&" : "?");
	pw_buf_puts(b, name);
	pw_buf_puts(b, "=");
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			pw_buf_append(b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			pw_buf_append(b, e, 3);
		}
	}
	return b->data ? 0 : PW_ENOMEM;
}

/* A path segment from the guest (namespace, name): nothing that changes the path. */
static bool safe_segment(const char *s)
{
	return *s && strcmp(s, ".") && strcmp(s, "..") && !strpbrk(s, "/?#%\\ \t\r\n");
}

char *k8s_collection_path(const k8s_resource *r, const char *ns)
{
	pw_buf b = PW_BUF_INIT;
	if (!strcmp(r->api_version, "v1"))
		pw_buf_puts(&b, "/api/v1");
	else
		pw_buf_printf(&b, "/apis/%s", r->api_version);
	if (ns)
		pw_buf_printf(&b, "/namespaces/%s", ns);
	pw_buf_printf(&b, "/%s", r->plural);
	return (char *)pw_buf_detach(&b, NULL);
}

static bool safe_api_version(const char *v)
{
	/* "v1" or "group/version": DNS-ish group, one '/' */
	if (!*v || strlen(v) > 253)
		return false;
	int slashes = 0;
	for (const char *p = v; *p; p++) {
		if (*p == '/')
			slashes++;
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		           (*p >= 'A' && *p <= 'Z')))
			return false;
	}
	return slashes <= 1 && v[0] != '/' && v[strlen(v) - 1] != '/';
}

int k8s_resource_find(pw_k8s *k, const char *api_version, const char *kind, const k8s_resource **out)
{
	*out = NULL;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nresources; i++) {
		if (!strcmp(k->resources[i]->api_version, api_version) && !strcmp(k->resources[i]->kind, kind)) {
			*out = k->resources[i];
			pthread_mutex_unlock(&k->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (!safe_api_version(api_version))
		return pw_error_set(PW_EINVALID, "cannot determine group and version for %s", api_version);
	pw_buf path = PW_BUF_INIT, body = PW_BUF_INIT;
	if (!strcmp(api_version, "v1"))
		pw_buf_puts(&path, "/api/v1");
	else
		pw_buf_printf(&path, "/apis/%s", api_version);
	k8s_req req = { .path = (const char *)path.data };
	long status = 0;
	atomic_fetch_add(&k->n_discoveries, 1);
	int rc = k8s_http(&k->conn, &req, &status, &body);
	char *plural = NULL;
	bool namespaced = false;
	if (rc == 0 && status != 200) {
		char *m = k8s_status_text(body.data ? (const char *)body.data : "", body.len);
		rc = pw_error_set(status == 401 || status == 403 ? PW_EAUTH : PW_ERROR,
		                  "Kubernetes API GET %s%s: HTTP %ld%s%s", k->conn.server, path.data, status,
		                  m && *m ? ": " : "", m ? m : "");
		free(m);
	}
	if (rc == 0) {
		rc = k8s_decode_discovery(body.data ? (const char *)body.data : "", body.len, kind, &plural, &namespaced);
		if (rc == PW_ENOTFOUND)
			rc = pw_error_set(PW_ERROR, "Cannot find resource %s/%s", api_version, kind);
		else if (rc < 0)
			pw_error_prefix("error finding resource %s / %s", api_version, kind);
	} else {
		atomic_fetch_add(&k->n_errors, 1);
		pw_error_prefix("error finding resource %s / %s", api_version, kind);
	}
	pw_buf_free(&path);
	pw_buf_free(&body);
	if (rc < 0)
		return rc;
	k8s_resource *r = calloc(1, sizeof *r);
	if (!r || !(r->api_version = strdup(api_version)) || !(r->kind = strdup(kind))) {
		if (r)
			free(r->api_version);
		free(r);
		free(plural);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	r->plural = plural;
	r->namespaced = namespaced;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nresources; i++) {   /* another thread was quicker */
		if (!strcmp(k->resources[i]->api_version, api_version) && !strcmp(k->resources[i]->kind, kind)) {
			*out = k->resources[i];
			break;
		}
	}
	if (!*out) {
		k8s_resource **nr = realloc(k->resources, (k->nresources + 1) * sizeof *nr);
		if (nr) {
			k->resources = nr;
			k->resources[k->nresources++] = r;
			*out = r;
			r = NULL;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (r) {
		free(r->api_version);
		free(r->kind);
		free(r->plural);
		free(r);
	}
	return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}

int k8s_get_object(pw_k8s *k, const k8s_resource *r, const char *name, const char *ns, json_t **obj)
{
	*obj = NULL;
	if (!safe_segment(name) || (ns && !safe_segment(ns)))
		return PW_ENOTFOUND;   /* no object can have that name */
	char *coll = k8s_collection_path(r, r->namespaced ? ns : NULL);
	pw_buf path = PW_BUF_INIT, body = PW_BUF_INIT;
	pw_buf_printf(&path, "%s/%s", coll, name);
	free(coll);
	k8s_req req = { .path = (const char *)path.data };
	long status = 0;
	atomic_fetch_add(&k->n_gets, 1);
	int rc = k8s_http(&k->conn, &req, &status, &body);
	if (rc == 0 && status == 404) {
		rc = PW_ENOTFOUND;
	} else if (rc == 0 && status != 200) {
		char *m = k8s_status_text(body.data ? (const char *)body.data : "", body.len);
		rc = pw_error_set(status == 401 || status == 403 ? PW_EAUTH : PW_ERROR,
		                  "Kubernetes API GET %s%s: HTTP %ld%s%s", k->conn.server, path.data, status,
		                  m && *m ? ": " : "", m ? m : "");
		free(m);
	} else if (rc == 0) {
		json_error_t e;
		*obj = json_loadb(body.data ? (const char *)body.data : "", body.len, 0, &e);
		if (!json_is_object(*obj)) {
			json_decref(*obj);
			*obj = NULL;
			rc = pw_error_set(PW_EINVALID, "Kubernetes API GET %s%s: the answer is not a JSON object",
			                  k->conn.server, path.data);
		}
	}
	if (rc < 0 && rc != PW_ENOTFOUND)
		atomic_fetch_add(&k->n_errors, 1);
	pw_buf_free(&path);
	pw_buf_free(&body);
	return rc;
}

int k8s_review(pw_k8s *k, const json_t *spec, json_t **status_out)
{
	*status_out = NULL;
	json_t *sar = json_pack("{s:s, s:s, s:{}, s:O}", "apiVersion", "authorization.k8s.io/v1", "kind",
	                        "SubjectAccessReview", "metadata", "spec", spec);
	char *text = sar ? json_dumps(sar, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(sar);
	if (!text)
		return pw_error_set(PW_ENOMEM, "out of memory");
	static const char path[] = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
	k8s_req req = { .method = "POST", .path = path, .body = text };
	pw_buf body = PW_BUF_INIT;
	long status = 0;
	atomic_fetch_add(&k->n_reviews, 1);
	int rc = k8s_http(&k->conn, &req, &status, &body);
	free(text);
	json_t *j = NULL;
	if (rc == 0 && status != 200 && status != 201) {
		char *m = k8s_status_text(body.data ? (const char *)body.data : "", body.len);
		rc = pw_error_set(status == 401 || status == 403 ? PW_EAUTH : PW_ERROR,
		                  "Kubernetes API POST %s%s: HTTP %ld%s%s", k->conn.server, path, status,
		                  m && *m ? ": " : "", m ? m : "");
		free(m);
	} else if (rc == 0) {
		j = json_loadb(body.data ? (const char *)body.data : "", body.len, 0, NULL);
		json_t *st = json_object_get(j, "status");
		if (!json_is_object(st) || !json_is_boolean(json_object_get(st, "allowed")))
			rc = pw_error_set(PW_ERROR, "SubjectAccessReview did not return a response");
		else
			*status_out = json_incref(st);
	}
	if (rc < 0)
		atomic_fetch_add(&k->n_errors, 1);
	json_decref(j);
	pw_buf_free(&body);
	return rc;
}
