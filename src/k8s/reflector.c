/*
 * The informer-like cache behind list_resources_by_namespace and list_resources_all: one
 * reflector per distinct query (apiVersion, kind, namespace, label selector, field
 * selector, field masks: Kubewarden's Reflector::compute_id), made on first use and kept
 * for the client's life. Its thread lists the collection (in pages of K8S_LIST_PAGE, each
 * item trimmed as Kubewarden's modify_object does), then watches it from the list's
 * resourceVersion with bookmarks, applying ADDED / MODIFIED / DELETED to the store and
 * moving the resourceVersion on with every event and bookmark. When the server ends the
 * stream (timeoutSeconds) it watches again from there; a 410 Gone (as the watch's HTTP
 * status or an ERROR event) means the version is too old: it lists again and replaces the
 * store. Failures back off exponentially (K8S_BACKOFF_FIRST doubling to K8S_BACKOFF_MAX)
 * and the store keeps answering with what it last saw.
 *
 * A host call waits for the first list at most K8S_READY_WAIT seconds; when the first list
 * failed it answers the failure at once rather than holding the evaluation. The answer text
 * is built once per change of the store (a generation counter) and copied to each caller.
 * More than K8S_MAX_REFLECTORS distinct queries: the extra ones are listed directly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/k8s_int.h"

struct k8s_reflector {
	pw_k8s *k;
	char *id;
	const k8s_resource *res;
	char *ns, *label_sel, *field_sel;
	json_t *masks;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	json_t *objects;          /* "ns/name" -> object */
	char *rv;
	bool ready;
	unsigned failures;        /* consecutive */
	char *error;              /* the last failure */
	uint64_t gen, answer_gen;
	pw_buf answer;
	/* the watch in progress (reflector thread only) */
	bool gone;
	char *stream_error;
	int stream_code;
	uint64_t stream_events;
	unsigned seed;
};

static void set_error(k8s_reflector *r, const char *msg)
{
	pthread_mutex_lock(&r->lock);
	free(r->error);
	r->error = strdup(msg);
	r->failures++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_add(&r->k->n_errors, 1);
}

static void describe(pw_buf *b, const k8s_reflector *r)
{
	pw_buf_printf(b, "%s/%s", r->res->api_version, r->res->kind);
	if (r->ns)
		pw_buf_printf(b, " in namespace %s", r->ns);
	if (r->label_sel)
		pw_buf_printf(b, " labelSelector=%s", r->label_sel);
	if (r->field_sel)
		pw_buf_printf(b, " fieldSelector=%s", r->field_sel);
}

static char *query_path(const k8s_reflector *r, const char *rv, const char *cont, bool watch)
{
	char *coll = k8s_collection_path(r->res, r->ns);
	pw_buf b = PW_BUF_INIT;
	pw_buf_puts(&b, coll);
	free(coll);
	if (r->label_sel)
		k8s_query_add(&b, "labelSelector", r->label_sel);
	if (r->field_sel)
		k8s_query_add(&b, "fieldSelector", r->field_sel);
	if (watch) {
		k8s_query_add(&b, "watch", "1");
		k8s_query_add(&b, "allowWatchBookmarks", "true");
		if (rv && *rv)
			k8s_query_add(&b, "resourceVersion", rv);
		char t[16];
		snprintf(t, sizeof t, "%d", K8S_WATCH_SECONDS);
		k8s_query_add(&b, "timeoutSeconds", t);
	} else {
		char l[16];
		snprintf(l, sizeof l, "%d", K8S_LIST_PAGE);
		k8s_query_add(&b, "limit", l);
		if (cont)
			k8s_query_add(&b, "continue", cont);
	}
	return (char *)pw_buf_detach(&b, NULL);
}

/* Kubewarden's modify_object, and apiVersion/kind set (list items come without them). */
static void prepare(const k8s_reflector *r, json_t *obj)
{
	if (!json_object_get(obj, "apiVersion"))
		json_object_set_new(obj, "apiVersion", json_string(r->res->api_version));
	if (!json_object_get(obj, "kind"))
		json_object_set_new(obj, "kind", json_string(r->res->kind));
	k8s_object_trim(obj, r->masks, true);
}

/* Lists every page into a fresh store. Used by the reflector thread and for direct lists
 * (r not registered). 0 with *store and *rv, or an error. */
static int list_all(k8s_reflector *r, json_t **store, char **rv_out)
{
	*store = json_object();
	*rv_out = NULL;
	char *cont = NULL;
	int rc = 0;
	do {
		char *path = query_path(r, NULL, cont, false);
		pw_buf body = PW_BUF_INIT;
		long status = 0;
		k8s_req req = { .path = path, .stop = &r->stop };
		atomic_fetch_add(&r->k->n_lists, 1);
		rc = k8s_http(&r->k->conn, &req, &status, &body);
		if (rc == 0 && status == 410 && cont) {
			/* the continue token expired: start over */
			free(cont);
			cont = NULL;
			json_object_clear(*store);
			free(path);
			pw_buf_free(&body);
			continue;
		}
		if (rc == 0 && status != 200) {
			char *m = k8s_status_text(body.data ? (const char *)body.data : "", body.len);
			rc = pw_error_set(status == 401 || status == 403 ? PW_EAUTH : PW_ERROR,
			                  "Kubernetes API GET %s%s: HTTP %ld%s%s", r->k->conn.server, path, status,
			                  m && *m ? ": " : "", m ? m : "");
			free(m);
		}
		json_t *items = NULL;
		char *rv = NULL, *next = NULL;
		if (rc == 0 && (rc = k8s_decode_list(body.data ? (const char *)body.data : "", body.len, &items,
		                                     &rv, &next)) < 0)
			pw_error_prefix("Kubernetes API GET %s%s", r->k->conn.server, path);
		free(path);
		pw_buf_free(&body);
		free(cont);
		cont = next;
		if (rc < 0) {
			free(rv);
			break;
		}
		size_t i;
		json_t *o;
		json_array_foreach(items, i, o) {
			char *key = NULL;
			if (k8s_object_key(o, &key) < 0)
				continue;
			prepare(r, o);
			json_object_set(*store, key, o);
			free(key);
		}
		json_decref(items);
		free(*rv_out);
		*rv_out = rv;
		if (json_object_size(*store) > K8S_MAX_OBJECTS) {
			pw_buf d = PW_BUF_INIT;
			describe(&d, r);
			rc = pw_error_set(PW_EINVALID, "Kubernetes %s: more than %u objects", (const char *)d.data,
			                  K8S_MAX_OBJECTS);
			pw_buf_free(&d);
			break;
		}
	} while (cont);
	free(cont);
	if (rc < 0) {
		json_decref(*store);
		*store = NULL;
		free(*rv_out);
		*rv_out = NULL;
	}
	return rc;
}

static int do_list(k8s_reflector *r)
{
	json_t *store = NULL;
	char *rv = NULL;
	int rc = list_all(r, &store, &rv);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	json_decref(r->objects);
	r->objects = store;
	free(r->rv);
	r->rv = rv;
	r->ready = true;
	r->failures = 0;
	r->gen++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int on_event(void *arg, const char *line, size_t len)
{
	k8s_reflector *r = arg;
	k8s_event ev;
	if (k8s_decode_event(line, len, &ev) < 0) {
		/* a Status instead of events: the watch's HTTP error body */
		json_t *j = json_loadb(line, len, 0, NULL);
		const char *kind = json_string_value(json_object_get(j, "kind"));
		if (kind && !strcmp(kind, "Status")) {
			const char *m = json_string_value(json_object_get(j, "message"));
			free(r->stream_error);
			r->stream_error = strdup(m ? m : "Status without message");
			json_t *code = json_object_get(j, "code");
			r->stream_code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
		} else {
			free(r->stream_error);
			r->stream_error = strdup(pw_error_last());
		}
		json_decref(j);
		return 1;
	}
	int stop = 0;
	if (ev.type == K8S_EV_ERROR) {
		if (ev.code == 410) {
			r->gone = true;
		} else {
			free(r->stream_error);
			pw_buf b = PW_BUF_INIT;
			pw_buf_printf(&b, "watch ERROR event: %s (code %d)", ev.message ? ev.message : "no message", ev.code);
			r->stream_error = (char *)pw_buf_detach(&b, NULL);
		}
		stop = 1;
	} else if (ev.type == K8S_EV_BOOKMARK) {
		if (ev.rv) {
			pthread_mutex_lock(&r->lock);
			free(r->rv);
			r->rv = strdup(ev.rv);
			pthread_mutex_unlock(&r->lock);
		}
	} else {
		char *key = NULL;
		if (k8s_object_key(ev.object, &key) == 0) {
			if (ev.type != K8S_EV_DELETED)
				prepare(r, ev.object);
			pthread_mutex_lock(&r->lock);
			if (ev.type == K8S_EV_DELETED) {
				json_object_del(r->objects, key);
			} else if (json_object_size(r->objects) < K8S_MAX_OBJECTS || json_object_get(r->objects, key)) {
				json_object_set(r->objects, key, ev.object);
			} else {
				pw_warn("kubernetes", "watch %s: more than %u objects, object %s dropped", r->id,
				        K8S_MAX_OBJECTS, key);
			}
			if (ev.rv) {
				free(r->rv);
				r->rv = strdup(ev.rv);
			}
			r->gen++;
			pthread_mutex_unlock(&r->lock);
			atomic_fetch_add(&r->k->n_events, 1);
			r->stream_events++;
		}
		free(key);
	}
	k8s_event_free(&ev);
	return stop;
}

/* One watch stream: 0 when it ended normally or with 410 (r->gone), an error otherwise. */
static int do_watch(k8s_reflector *r)
{
	pthread_mutex_lock(&r->lock);
	char *path = query_path(r, r->rv, NULL, true);
	pthread_mutex_unlock(&r->lock);
	r->gone = false;
	free(r->stream_error);
	r->stream_error = NULL;
	r->stream_code = 0;
	r->stream_events = 0;
	k8s_req req = { .path = path, .on_line = on_event, .arg = r, .stop = &r->stop,
	                .timeout = K8S_WATCH_SECONDS + K8S_WATCH_SLACK };
	long status = 0;
	pw_buf unused = PW_BUF_INIT;
	atomic_fetch_add(&r->k->n_watches, 1);
	int rc = k8s_http(&r->k->conn, &req, &status, &unused);
	pw_buf_free(&unused);
	if (rc == 0 && (status == 410 || r->stream_code == 410))
		r->gone = true;
	else if (rc == 0 && status != 200)
		rc = pw_error_set(status == 401 || status == 403 ? PW_EAUTH : PW_ERROR,
		                  "Kubernetes API GET %s%s: HTTP %ld%s%s", r->k->conn.server, path, status,
		                  r->stream_error ? ": " : "", r->stream_error ? r->stream_error : "");
	else if (rc == 0 && r->stream_error)
		rc = pw_error_set(PW_ERROR, "Kubernetes API watch %s%s: %s", r->k->conn.server, path, r->stream_error);
	free(path);
	return rc;
}

/* Sleeps `seconds` unless stopped first. */
static void pause_for(k8s_reflector *r, double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double end = (double)ts.tv_sec + ts.tv_nsec / 1e9 + seconds;
	ts.tv_sec = (time_t)end;
	ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&r->lock);
	while (!atomic_load(&r->stop)) {
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&r->lock);
}

static double next_backoff(k8s_reflector *r, double *backoff)
{
	double b = *backoff;
	*backoff = b * 2 > K8S_BACKOFF_MAX ? K8S_BACKOFF_MAX : b * 2;
	/* up to a quarter more, so many reflectors do not retry in step */
	return b * (1.0 + (double)(rand_r(&r->seed) % 256) / 1024.0);
}

static void *reflector_main(void *arg)
{
	k8s_reflector *r = arg;
	double backoff = K8S_BACKOFF_FIRST;
	bool need_list = true;
	while (!atomic_load(&r->stop)) {
		if (need_list) {
			if (do_list(r) < 0) {
				if (atomic_load(&r->stop))
					break;
				pw_warn("kubernetes", "list %s: %s", r->id, pw_error_last());
				set_error(r, pw_error_last());
				pause_for(r, next_backoff(r, &backoff));
				continue;
			}
			need_list = false;
			backoff = K8S_BACKOFF_FIRST;
		}
		double started = pw_now();
		int rc = do_watch(r);
		if (atomic_load(&r->stop))
			break;
		if (r->gone) {
			pw_info("kubernetes", "watch %s: resourceVersion too old (410 Gone), listing again", r->id);
			atomic_fetch_add(&r->k->n_relists, 1);
			need_list = true;
			continue;
		}
		if (rc < 0) {
			pw_warn("kubernetes", "watch %s: %s (the cache keeps its last state)", r->id, pw_error_last());
			set_error(r, pw_error_last());
			pause_for(r, next_backoff(r, &backoff));
			continue;
		}
		if (r->stream_events > 0 || pw_now() - started > K8S_BACKOFF_MAX)
			backoff = K8S_BACKOFF_FIRST;
		else   /* a stream that ends at once without events: do not spin */
			pause_for(r, next_backoff(r, &backoff));
	}
	return NULL;
}

static void reflector_free(k8s_reflector *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		atomic_store(&r->stop, true);
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	free(r->id);
	free(r->ns);
	free(r->label_sel);
	free(r->field_sel);
	json_decref(r->masks);
	json_decref(r->objects);
	free(r->rv);
	free(r->error);
	free(r->stream_error);
	pw_buf_free(&r->answer);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

void k8s_reflectors_free(pw_k8s *k)
{
	for (size_t i = 0; i < k->nreflectors; i++)
		reflector_free(k->reflectors[i]);
	free(k->reflectors);
	k->reflectors = NULL;
	k->nreflectors = 0;
}

static char *opt_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static k8s_reflector *reflector_new(pw_k8s *k, const char *id, const k8s_resource *res, const char *ns,
                                    const char *label_sel, const char *field_sel, const json_t *masks)
{
	k8s_reflector *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->k = k;
	r->res = res;
	r->id = strdup(id);
	r->ns = opt_dup(ns);
	r->label_sel = opt_dup(label_sel && *label_sel ? label_sel : NULL);
	r->field_sel = opt_dup(field_sel && *field_sel ? field_sel : NULL);
	r->masks = masks ? json_deep_copy(masks) : NULL;
	r->objects = json_object();
	r->seed = (unsigned)(uintptr_t)r ^ (unsigned)time(NULL);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	atomic_init(&r->stop, false);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The list answer for a store: Kubewarden's ObjectList (apiVersion, kind KIND"List", empty
 * metadata, items), the items sorted by namespace/name (Kubewarden's order is its hash map's). */
static int build_answer(const k8s_resource *res, json_t *store, pw_buf *out)
{
	size_t n = json_object_size(store);
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	if (!keys)
		return pw_error_set(PW_ENOMEM, "out of memory");
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(store, key, v)
		keys[i++] = key;
	qsort(keys, n, sizeof *keys, cmp_str);
	json_t *av = json_string(res->api_version);
	pw_buf kind = PW_BUF_INIT;
	pw_buf_printf(&kind, "%sList", res->kind);
	json_t *kv = json_string((const char *)kind.data);
	char *avs = json_dumps(av, JSON_ENCODE_ANY), *kvs = json_dumps(kv, JSON_ENCODE_ANY);
	pw_buf_printf(out, "{\"apiVersion\":%s,\"kind\":%s,\"metadata\":{},\"items\":[", avs ? avs : "\"\"",
	              kvs ? kvs : "\"\"");
	free(avs);
	free(kvs);
	json_decref(av);
	json_decref(kv);
	pw_buf_free(&kind);
	int rc = 0;
	for (i = 0; i < n && rc == 0; i++) {
		char *t = json_dumps(json_object_get(store, keys[i]), JSON_COMPACT | JSON_SORT_KEYS);
		if (!t) {
			rc = pw_error_set(PW_ENOMEM, "out of memory");
			break;
		}
		if (i)
			pw_buf_puts(out, ",");
		rc = pw_buf_puts(out, t);
		free(t);
	}
	pw_buf_puts(out, "]}");
	free(keys);
	return out->data ? rc : PW_ENOMEM;
}

static int reflector_answer(k8s_reflector *r, pw_buf *answer)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)K8S_READY_WAIT;
	int rc = 0;
	pthread_mutex_lock(&r->lock);
	while (!r->ready && r->failures == 0) {
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
			break;
	}
	pw_buf d = PW_BUF_INIT;
	describe(&d, r);
	if (!r->ready) {
		if (r->failures)
			rc = pw_error_set(PW_ENETWORK, "cannot list Kubernetes %s: %s", (const char *)d.data,
			                  r->error ? r->error : "unknown error");
		else
			rc = pw_error_set(PW_ETIMEOUT, "cannot list Kubernetes %s: no answer from %s within %.0f s",
			                  (const char *)d.data, r->k->conn.server, K8S_READY_WAIT);
	} else {
		if (r->answer_gen != r->gen || !r->answer.data) {
			pw_buf_clear(&r->answer);
			rc = build_answer(r->res, r->objects, &r->answer);
			r->answer_gen = r->gen;
			if (rc < 0)
				pw_buf_clear(&r->answer);
		}
		if (rc == 0)
			rc = pw_buf_append(answer, r->answer.data, r->answer.len);
	}
	pthread_mutex_unlock(&r->lock);
	pw_buf_free(&d);
	return rc;
}

int k8s_list(pw_k8s *k, const k8s_resource *res, const char *ns, const char *label_sel,
             const char *field_sel, const json_t *masks, pw_buf *answer)
{
	/* Reflector::compute_id: api_version|kind|ns|labels|fields|masks */
	pw_buf id = PW_BUF_INIT;
	char *mt = masks ? json_dumps(masks, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	pw_buf_printf(&id, "%s|%s|", res->api_version, res->kind);
	k8s_rust_option(&id, ns);
	pw_buf_puts(&id, "|");
	k8s_rust_option(&id, label_sel && *label_sel ? label_sel : NULL);
	pw_buf_puts(&id, "|");
	k8s_rust_option(&id, field_sel && *field_sel ? field_sel : NULL);
	pw_buf_puts(&id, "|");
	pw_buf_puts(&id, mt ? mt : "None");
	free(mt);
	if (!id.data)
		return pw_error_set(PW_ENOMEM, "out of memory");
	k8s_reflector *r = NULL;
	bool direct = false;
	int rc = 0;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nreflectors && !r; i++)
		if (!strcmp(k->reflectors[i]->id, (const char *)id.data))
			r = k->reflectors[i];
	if (!r && k->nreflectors >= K8S_MAX_REFLECTORS) {
		direct = true;
	} else if (!r) {
		k8s_reflector **nr = realloc(k->reflectors, (k->nreflectors + 1) * sizeof *nr);
		if (nr)
			k->reflectors = nr;
		r = nr ? reflector_new(k, (const char *)id.data, res, ns, label_sel, field_sel, masks) : NULL;
		if (r && pthread_create(&r->thread, NULL, reflector_main, r) == 0) {
			r->started = true;
			k->reflectors[k->nreflectors++] = r;
			pw_info("kubernetes", "watching %s", r->id);
		} else {
			reflector_free(r);
			r = NULL;
			rc = pw_error_set(PW_ENOMEM, "cannot start a Kubernetes watch: out of memory or threads");
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (rc == 0 && direct) {
		/* past the reflector bound: one uncached list */
		k8s_reflector *tmp = reflector_new(k, (const char *)id.data, res, ns, label_sel, field_sel, masks);
		json_t *store = NULL;
		char *rv = NULL;
		rc = tmp ? list_all(tmp, &store, &rv) : pw_error_set(PW_ENOMEM, "out of memory");
		if (rc == 0)
			rc = build_answer(res, store, answer);
		json_decref(store);
		free(rv);
		reflector_free(tmp);
	} else if (rc == 0) {
		rc = reflector_answer(r, answer);
	}
	pw_buf_free(&id);
	return rc;
}
