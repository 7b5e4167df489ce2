/*
 * The HTTP(S) front end, on libmicrohttpd: the main port (POST /validate/{id},
 * /validate_raw/{id}, /audit/{id}; TLS with --cert-file/--key-file) and the readiness port
 * (GET /readiness: 200 only when ready; GET /metrics: Prometheus text).
 *
 * The main daemon runs a pool of `workers` threads; each thread owns one instance slot of
 * every policy (a thread-local index), so evaluations need no lock. Bodies are collected up
 * to the size limit (413 beyond it, decided from Content-Length before reading when it is
 * given). The body is checked before the policy is looked up, in Kubewarden's (axum's)
 * order and with its codes and texts: 415 without a JSON Content-Type, 400 bad JSON, 422 a
 * body of the wrong shape (JSON {"message", "status"} on /validate, text/plain on /audit and
 * /validate_raw); then 404 unknown policy or path, 405 wrong method, 503 not ready. A broken
 * policy (--continue-on-errors) answers HTTP 200 with an AdmissionReview allowed false,
 * status code 500, as Kubewarden does. /readiness and /metrics are only on the readiness
 * port. Shutdown quiesces the listeners (no new connections), waits for the requests in
 * flight, then stops.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "server/server_int.h"

#define DEFAULT_MAX_BODY (8u << 20)

struct pw_http {
	pw_server *srv;
	struct MHD_Daemon *main, *ready;
	unsigned port, ready_port;
	atomic_int inflight;
	atomic_uint next_worker;
	unsigned workers;
	size_t max_body;
	pw_buf cert, key;
	bool stopped;
};

typedef struct req_ctx {
	pw_buf body;
	bool too_big;
	bool answered;   /* a response was queued early */
	double t0;
} req_ctx;

static _Thread_local int t_worker = -1;
static _Thread_local pw_http *t_worker_owner;

static enum MHD_Result send_body(struct MHD_Connection *c, pw_http *h, int status, const char *ctype,
                                 const char *body, size_t len, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	pw_metrics_http(pw_server__metrics(h->srv), status);
	return ret;
}

/* An error answer: JSON {"message", "status"} (Kubewarden's ApiError), or the message as
 * plain text when !json. */
static enum MHD_Result vsend_error(struct MHD_Connection *c, pw_http *h, int status, const char *allow, bool json,
                                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static enum MHD_Result vsend_error(struct MHD_Connection *c, pw_http *h, int status, const char *allow, bool json,
                                   const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (!json)
		return send_body(c, h, status, "text/plain; charset=utf-8", msg, strlen(msg), allow);
	json_t *o = json_pack("{s:s, s:i}", "message", msg, "status", status);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	enum MHD_Result ret = send_body(c, h, status, "application/json", s ? s : "{}", s ? strlen(s) : 2, allow);
	free(s);
	json_decref(o);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, pw_http *h, int status, const char *allow,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_error(struct MHD_Connection *c, pw_http *h, int status, const char *allow,
                                  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum MHD_Result ret = vsend_error(c, h, status, allow, true, fmt, ap);
	va_end(ap);
	return ret;
}

typedef enum route_kind { R_NONE, R_VALIDATE, R_VALIDATE_RAW, R_AUDIT, R_READINESS, R_METRICS } route_kind;

/* axum's json_content_type: application/json or application/<anything>+json, parameters
 * (charset) allowed, case-insensitive. */
static bool json_content_type(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	if (n < 12 || strncasecmp(ct, "application/", 12) != 0)
		return false;
	const char *sub = ct + 12;
	size_t sn = n - 12;
	if (sn == 4 && !strncasecmp(sub, "json", 4))
		return true;
	return sn > 5 && !strncasecmp(sub + sn - 5, "+json", 5);
}

/* A body rejection as axum words it: the ApiError JSON on /validate, plain text on /audit and
 * /validate_raw (plain axum::Json there). */
static enum MHD_Result send_reject(struct MHD_Connection *c, pw_http *h, route_kind k, int status,
                                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_reject(struct MHD_Connection *c, pw_http *h, route_kind k, int status,
                                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum MHD_Result ret = vsend_error(c, h, status, NULL, k == R_VALIDATE, fmt, ap);
	va_end(ap);
	return ret;
}

static route_kind route(const char *url, const char **id)
{
	static const struct { const char *prefix; route_kind k; } eval[] = {
		{ "/validate/", R_VALIDATE }, { "/validate_raw/", R_VALIDATE_RAW }, { "/audit/", R_AUDIT },
	};
	*id = NULL;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(eval[i].prefix);
		if (!strncmp(url, eval[i].prefix, n)) {
			*id = url + n;
			return eval[i].k;
		}
	}
	if (!strcmp(url, "/readiness"))
		return R_READINESS;
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	return R_NONE;
}

/* Checks the body's shape as Kubewarden's serde types do (AdmissionReview with the required
 * AdmissionRequest fields; {"request": any} for /validate_raw). False with `why` set. */
static bool check_shape(const json_t *doc, route_kind k, char *why, size_t n)
{
	static const struct { const char *key, *sub[3]; json_type t; } req_fields[] = {
		{ "uid", { NULL }, JSON_STRING },
		{ "kind", { "group", "version", "kind" }, JSON_OBJECT },
		{ "resource", { "group", "version", "resource" }, JSON_OBJECT },
		{ "operation", { NULL }, JSON_STRING },
		{ "userInfo", { NULL }, JSON_OBJECT },
	};
	if (!json_is_object(doc)) {
		snprintf(why, n, "invalid type: expected a JSON object");
		return false;
	}
	json_t *req = json_object_get(doc, "request");
	if (!req) {
		snprintf(why, n, "missing field `request`");
		return false;
	}
	if (k == R_VALIDATE_RAW)
		return true;
	if (!json_is_object(req)) {
		snprintf(why, n, "request: invalid type: expected struct AdmissionRequest");
		return false;
	}
	for (size_t i = 0; i < sizeof req_fields / sizeof req_fields[0]; i++) {
		json_t *v = json_object_get(req, req_fields[i].key);
		if (!v) {
			snprintf(why, n, "request: missing field `%s`", req_fields[i].key);
			return false;
		}
		if (json_typeof(v) != req_fields[i].t) {
			snprintf(why, n, "request.%s: invalid type: expected %s", req_fields[i].key,
			         req_fields[i].t == JSON_STRING ? "a string" : "a map");
			return false;
		}
		for (int j = 0; j < 3 && req_fields[i].sub[j]; j++) {
			json_t *f = json_object_get(v, req_fields[i].sub[j]);
			if (!json_is_string(f)) {
				snprintf(why, n, f ? "request.%s.%s: invalid type: expected a string"
				                   : "request.%s: missing field `%s`", req_fields[i].key, req_fields[i].sub[j]);
				return false;
			}
		}
	}
	return true;
}

/* The answer for a request that is not evaluated: allowed (always-accept namespace, msg NULL)
 * or a broken policy (allowed false, status {msg, 500}). malloc'd, or NULL. */
static char *fixed_answer(const json_t *req, route_kind k, const char *msg)
{
	json_t *uid = json_object_get(req, "uid");
	json_t *resp = json_pack("{s:o, s:b, s:n, s:n}", "uid", json_is_string(uid) ? json_incref(uid) : json_string(""),
	                         "allowed", !msg, "auditAnnotations", "warnings");
	if (resp && msg)
		json_object_set_new(resp, "status", json_pack("{s:s, s:i}", "message", msg, "code", 500));
	json_t *root = !resp ? NULL
	             : k == R_VALIDATE_RAW ? json_pack("{s:o}", "response", resp)
	             : json_pack("{s:s, s:s, s:o}", "apiVersion", "admission.k8s.io/v1", "kind", "AdmissionReview",
	                         "response", resp);
	char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return s;
}

static enum MHD_Result evaluate(struct MHD_Connection *c, pw_http *h, route_kind k, const char *id, req_ctx *rc)
{
	pw_server *srv = h->srv;
	pw_metrics *m = pw_server__metrics(srv);
	enum MHD_Result ret;
	json_error_t je;
	char why[512];

	json_t *doc = json_loadb(rc->body.data ? (const char *)rc->body.data : "", rc->body.len, 0, &je);
	if (!doc)
		return send_reject(c, h, k, 400, "Failed to parse the request body as JSON: %s at line %d column %d",
		                   je.text, je.line, je.column);
	if (!check_shape(doc, k, why, sizeof why)) {
		json_decref(doc);
		return send_reject(c, h, k, 422, "Failed to deserialize the JSON body into the target type: %s", why);
	}
	json_t *req = json_object_get(doc, "request");
	pw_kw_eval kw = { .policy_name = id, .origin = k == R_VALIDATE ? "validate" : k == R_AUDIT ? "audit" : NULL };
	if (kw.origin) {
		kw.kind = json_string_value(json_object_get(json_object_get(req, "requestKind"), "kind"));
		kw.kind = kw.kind ? kw.kind : "";
		kw.ns = json_string_value(json_object_get(req, "namespace"));
		kw.op = json_string_value(json_object_get(req, "operation"));
	}

	pw_pset *set = pw_server__acquire(srv);
	if (!set) {
		json_decref(doc);
		return send_error(c, h, 503, NULL, "the server is not ready: policies are still loading");
	}
	pw_pset_entry *e = pw_pset_find(set, id);
	if (!e) {
		ret = send_error(c, h, 404, NULL, "unknown policy: %s", id);
		goto out;
	}
	kw.mode = e->conf->mode;
	if (!pw_pset_entry_ok(e)) {
		const char *why_broken = e->error ? e->error : "policy not loaded";
		pw_metrics_eval(m, id, PW_OUT_ERROR, 0);
		pw_metrics_kw_init_error(m, id, why_broken);
		char *ans = fixed_answer(req, k, why_broken);
		ret = ans ? send_body(c, h, 200, "application/json", ans, strlen(ans), NULL)
		          : send_error(c, h, 500, NULL, "out of memory");
		free(ans);
		goto out;
	}
	const char *aa = pw_server__opts(srv)->always_accept_namespace;
	if (k != R_VALIDATE_RAW && aa && kw.ns && !strcmp(kw.ns, aa)) {
		char *ans = fixed_answer(req, k, NULL);
		kw.accepted = true;
		pw_metrics_kw_eval(m, &kw, 0);
		ret = ans ? send_body(c, h, 200, "application/json", ans, strlen(ans), NULL)
		          : send_error(c, h, 500, NULL, "out of memory");
		free(ans);
		goto out;
	}
	if (t_worker < 0 || t_worker_owner != h) {
		t_worker = (int)atomic_fetch_add(&h->next_worker, 1);
		t_worker_owner = h;
	}
	if ((unsigned)t_worker >= h->workers) {
		ret = send_error(c, h, 500, NULL, "internal error: no instance slot for this thread");
		goto out;
	}
	char *resp = NULL;
	pw_eval_result res = { 0 };
	pw_eval_kind ek = k == R_VALIDATE ? PW_EVAL_VALIDATE : k == R_AUDIT ? PW_EVAL_AUDIT : PW_EVAL_VALIDATE_RAW;
	double t0 = pw_now();
	pw_metrics_in_flight(m, 1);
	int erc = pw_pset_evaluate(set, e, (unsigned)t_worker, rc->body.data ? (const char *)rc->body.data : "",
	                           rc->body.len, ek, &resp, &res);
	pw_metrics_in_flight(m, -1);
	double dt = pw_now() - t0;
	if (erc == PW_EINVALID) {
		ret = send_reject(c, h, k, 422, "Failed to deserialize the JSON body into the target type: %s",
		                  pw_error_last());
	} else if (erc < 0) {
		pw_metrics_eval(m, id, PW_OUT_ERROR, dt);
		ret = send_error(c, h, 500, NULL, "policy %s: evaluation failed: %s", id, pw_error_last());
	} else {
		enum pw_outcome o = res.error ? PW_OUT_ERROR : res.mutated ? PW_OUT_MUTATED
		                  : res.policy_allowed ? PW_OUT_ACCEPTED : PW_OUT_REJECTED;
		pw_metrics_eval(m, id, o, dt);
		kw.accepted = res.policy_allowed;
		kw.mutated = res.policy_mutated;
		kw.error_code = res.policy_status_code;
		pw_metrics_kw_eval(m, &kw, dt);
		if (pw_log_enabled(PW_LOG_DEBUG)) {
			char comp[300];
			snprintf(comp, sizeof comp, "policy:%s", id);
			pw_debug(comp, "%s: allowed=%d policy_allowed=%d mutated=%d error=%d in %.3f ms", 
			         k == R_VALIDATE ? "validate" : k == R_AUDIT ? "audit" : "validate_raw",
			         res.allowed, res.policy_allowed, res.mutated, res.error, dt * 1e3);
		}
		ret = send_body(c, h, 200, "application/json", resp, strlen(resp), NULL);
	}
	free(resp);
out:
	pw_pset_unref(set);
	json_decref(doc);
	return ret;
}

static enum MHD_Result handle(pw_http *h, bool is_main, struct MHD_Connection *c, const char *url,
                              const char *method, const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
	req_ctx *rc = *req_cls;
	const char *id;
	route_kind k = route(url, &id);
	bool eval = k == R_VALIDATE || k == R_VALIDATE_RAW || k == R_AUDIT;

	if (!rc) {
		if (!(rc = calloc(1, sizeof *rc)))
			return MHD_NO;
		rc->t0 = pw_now();
		*req_cls = rc;
		atomic_fetch_add(&h->inflight, 1);
		if (k == R_NONE || eval != is_main || (eval && !*id)) {
			rc->answered = true;
			return send_error(c, h, 404, NULL, "not found: %s %s", method, url);
		}
		if (eval && strcmp(method, "POST") != 0) {
			rc->answered = true;
			return send_error(c, h, 405, "POST", "method %s not allowed on %s (use POST)", method, url);
		}
		if (!eval && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			rc->answered = true;
			return send_error(c, h, 405, "GET", "method %s not allowed on %s (use GET)", method, url);
		}
		if (eval && !json_content_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                                           MHD_HTTP_HEADER_CONTENT_TYPE))) {
			rc->answered = true;
			return send_reject(c, h, k, 415, "Expected request with `Content-Type: application/json`");
		}
		if (eval) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl && strtoull(cl, NULL, 10) > h->max_body) {
				rc->answered = true;
				return send_reject(c, h, k, 413, "Failed to buffer the request body: length limit exceeded "
				                   "(%s bytes, limit %zu)", cl, h->max_body);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rc->answered && !rc->too_big) {
			if (rc->body.len + *upload_data_size > h->max_body) {
				rc->too_big = true;
				pw_buf_free(&rc->body);
			} else if (pw_buf_append(&rc->body, upload_data, *upload_data_size) < 0) {
				return MHD_NO;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rc->answered)
		return MHD_YES;
	rc->answered = true;
	if (rc->too_big)
		return send_reject(c, h, k, 413, "Failed to buffer the request body: length limit exceeded (limit %zu)",
		                   h->max_body);
	if (k == R_READINESS) {
		bool ok = pw_server__ready(h->srv);
		return ok ? send_body(c, h, 200, "text/plain", "ready\n", 6, NULL)
		          : send_error(c, h, 503, NULL, "not ready");
	}
	if (k == R_METRICS) {
		pw_buf b = PW_BUF_INIT;
		enum MHD_Result ret;
		if (pw_server__render_metrics(h->srv, &b) < 0)
			ret = send_error(c, h, 500, NULL, "metrics: %s", pw_error_last());
		else
			ret = send_body(c, h, 200, "text/plain; version=0.0.4; charset=utf-8", (const char *)b.data, b.len, NULL);
		pw_buf_free(&b);
		return ret;
	}
	return evaluate(c, h, k, id, rc);
}

static enum MHD_Result handler_main(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	return handle(cls, true, c, url, method, upload_data, upload_data_size, req_cls);
}

static enum MHD_Result handler_ready(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                     const char *version, const char *upload_data, size_t *upload_data_size,
                                     void **req_cls)
{
	return handle(cls, false, c, url, method, upload_data, upload_data_size, req_cls);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	pw_http *h = cls;
	req_ctx *rc = *req_cls;
	if (!rc)
		return;
	pw_buf_free(&rc->body);
	free(rc);
	*req_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pw_warn("http", "%s", msg);
}

static int make_addr(const char *addr, unsigned port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char ps[16];
	snprintf(ps, sizeof ps, "%u", port);
	int e = getaddrinfo(addr, ps, &hints, &ai);
	if (e != 0 || !ai)
		return pw_error_set(PW_EINVALID, "--addr %s: not a numeric IPv4/IPv6 address (%s)", addr, gai_strerror(e));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

static struct MHD_Daemon *start_daemon(pw_http *h, bool main_port, const char *addr, unsigned port,
                                       unsigned threads, bool tls, unsigned *bound, const char *what)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	if (make_addr(addr, port, &ss) < 0)
		return NULL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL },
		{ MHD_OPTION_SOCK_ADDR, 0, &ss },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, h },
		{ MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL },
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, tls ? h->cert.data : NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, tls ? h->key.data : NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* options after an END are ignored: keep the optional ones (TLS, pool) last */
	struct MHD_OptionItem packed[sizeof opts / sizeof opts[0]];
	size_t np = 0;
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (opts[i].option != MHD_OPTION_END)
			packed[np++] = opts[i];
	packed[np] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, main_port ? handler_main : handler_ready, h,
	                     MHD_OPTION_ARRAY, packed, MHD_OPTION_END);
	if (!d) {
		pw_error_set(PW_ERROR, "cannot listen on %s port %u for the %s%s (address in use, or no permission)",
		             addr, port, what, tls ? " with TLS (check --cert-file/--key-file)" : "");
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*bound = info ? info->port : port;
	return d;
}

int pw_http_start(pw_http **out, pw_server *s)
{
	const pw_server_opts *o = pw_server__opts(s);
	const char *addr = o->addr ? o->addr : "0.0.0.0";
	pw_http *h = calloc(1, sizeof *h);
	bool tls = o->cert_file || o->key_file;

	*out = NULL;
	if (!h)
		return pw_error_set(PW_ENOMEM, "out of memory");
	h->srv = s;
	h->workers = o->workers ? o->workers : 1;
	h->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	atomic_init(&h->inflight, 0);
	atomic_init(&h->next_worker, 0);
	if (tls) {
		if (!o->cert_file || !o->key_file) {
			free(h);
			return pw_error_set(PW_EINVALID, "TLS needs both --cert-file and --key-file");
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			free(h);
			return pw_error_set(PW_EUNSUPPORTED, "this libmicrohttpd was built without TLS support");
		}
		if (pw_file_read(o->cert_file, 1 << 20, &h->cert) < 0 || pw_file_read(o->key_file, 1 << 20, &h->key) < 0) {
			pw_error_prefix("TLS");
			pw_buf_free(&h->cert);
			pw_buf_free(&h->key);
			free(h);
			return PW_EIO;
		}
	}
	h->main = start_daemon(h, true, addr, o->port, h->workers, tls, &h->port, "policy server");
	if (h->main)
		h->ready = start_daemon(h, false, addr, o->readiness_port, 1, false, &h->ready_port, "readiness probe");
	if (!h->main || !h->ready) {
		int rc = pw_error_last_code() ? pw_error_last_code() : PW_ERROR;
		if (h->main)
			MHD_stop_daemon(h->main);
		pw_buf_free(&h->cert);
		pw_buf_free(&h->key);
		free(h);
		return rc;
	}
	pw_info("http", "listening on %s:%u (%s, %u workers), readiness and metrics on %s:%u", addr, h->port,
	        tls ? "HTTPS" : "HTTP", h->workers, addr, h->ready_port);
	*out = h;
	return 0;
}

static void stop_one(struct MHD_Daemon *d)
{
	MHD_socket fd = MHD_quiesce_daemon(d);
	MHD_stop_daemon(d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void pw_http_stop(pw_http *h, double drain)
{
	if (!h)
		return;
	if (!h->stopped) {
		h->stopped = true;
		MHD_socket fd = MHD_quiesce_daemon(h->main);   /* no new connections */
		double deadline = pw_now() + drain;
		int n;
		while ((n = atomic_load(&h->inflight)) > 0 && pw_now() < deadline)
			usleep(10000);
		if (n > 0)
			pw_warn("http", "shutdown: %d requests still in flight after %.1f s, closing", n, drain);
		MHD_stop_daemon(h->main);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		stop_one(h->ready);
	}
	pw_buf_free(&h->cert);
	pw_buf_free(&h->key);
	free(h);
}

unsigned pw_http_port(const pw_http *h) { return h->port; }
unsigned pw_http_readiness_port(const pw_http *h) { return h->ready_port; }
