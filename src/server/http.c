/*
 * The HTTP(S) front end, on libmicrohttpd: the main port (POST /validate/{id},
 * /validate_raw/{id}, /audit/{id}; TLS with --cert-file/--key-file, mutual TLS with
 * --client-ca-file) and the readiness port (GET /readiness: 200 only when ready; GET
 * /metrics: Prometheus text).
 *
 * TLS files are polled every second; on a change a new main daemon with the new material
 * takes over the listening socket of the old one, which drains its requests in flight and
 * stops (the readiness port is untouched; docs/server.md, TLS). The main daemon runs a pool
 * of `workers` threads; an evaluation takes one of the `workers` instance slots of its policy
 * from a free list (threads of an old and a new daemon overlap during a TLS reload). Bodies are collected up
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
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>

#include "server/server_int.h"

#define DEFAULT_MAX_BODY (8u << 20)
/* A connection without traffic for this long is closed (slowloris connections included). */
#define CONNECTION_TIMEOUT_S 60
/* Per-connection memory of libmicrohttpd (request line, headers, and the read buffer). */
#define CONNECTION_MEMORY (64 * 1024)
/* File descriptors kept out of the connection limits: cache files, compilers' pipes,
 * registry connections, the policies file. */
#define FDS_RESERVED 256
/* The readiness port gets this fraction (1/N) of the connections the main port gets. */
#define READY_CONNECTIONS_DIVISOR 4
/* At most this many libmicrohttpd messages are logged per window, the rest counted: one
 * message per bad connection would let a client flood the log. */
#define MHD_LOG_BURST 10
#define MHD_LOG_WINDOW_S 10

/* One generation of the main listener: its daemon and the TLS material it was started with. */
typedef struct pw_lsn {
	pw_http *h;
	struct MHD_Daemon *d;
	atomic_int inflight;          /* requests of this daemon not completed yet */
	pw_buf cert, key, ca;         /* NUL-terminated PEM; ca empty = no client certificates */
} pw_lsn;

struct pw_http {
	pw_server *srv;
	struct MHD_Daemon *main, *ready;
	pw_lsn *lsn;                  /* the main listener now (its d is `main`) */
	_Atomic(pw_lsn *) retiring;   /* the previous one while it drains after a TLS reload */
	const char *addr;
	unsigned port, ready_port;
	atomic_int inflight;
	unsigned workers;
	size_t max_body;
	bool stopped;
	/* instance slots, taken per evaluation (threads of two generations may overlap) */
	pthread_mutex_t smu;
	pthread_cond_t scv;
	unsigned *free_slots, nfree;
	/* the TLS file watcher */
	bool watching;
	atomic_bool wstop;            /* also read by tls_swap's drain loop without wmu */
	pthread_t watcher;
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	uint64_t tls_sig;
};

typedef struct req_ctx {
	pw_buf body;
	bool too_big;
	bool answered;   /* a response was queued early */
	struct pw_lsn *lsn;   /* the main listener generation it came through (NULL: readiness) */
	double t0;
} req_ctx;

static unsigned slot_acquire(pw_http *h)
{
	pthread_mutex_lock(&h->smu);
	while (!h->nfree)
		pthread_cond_wait(&h->scv, &h->smu);
	unsigned s = h->free_slots[--h->nfree];
	pthread_mutex_unlock(&h->smu);
	return s;
}

static void slot_release(pw_http *h, unsigned s)
{
	pthread_mutex_lock(&h->smu);
	h->free_slots[h->nfree++] = s;
	pthread_cond_signal(&h->scv);
	pthread_mutex_unlock(&h->smu);
}

static enum MHD_Result send_body(struct MHD_Connection *c, pw_http *h, int status, const char *ctype,
                                 const char *body, size_t len, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	pw_lsn *old = atomic_load(&h->retiring);
	if (old) {   /* a draining listener: no keep-alive, the client reconnects to the new one */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
		if (ci && ci->daemon == old->d)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	}
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
	char *resp = NULL;
	pw_eval_result res = { 0 };
	pw_eval_kind ek = k == R_VALIDATE ? PW_EVAL_VALIDATE : k == R_AUDIT ? PW_EVAL_AUDIT : PW_EVAL_VALIDATE_RAW;
	double t0 = pw_now();
	pw_metrics_in_flight(m, 1);
	unsigned slot = slot_acquire(h);
	int erc = pw_pset_evaluate(set, e, slot, rc->body.data ? (const char *)rc->body.data : "",
	                           rc->body.len, ek, &resp, &res);
	slot_release(h, slot);
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

/* mTLS: the client certificate of this connection verifies against the listener's CAs (the
 * trust list libmicrohttpd loaded from MHD_OPTION_HTTPS_MEM_TRUST; with it set, it asks every
 * client for a certificate). */
static bool client_cert_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned status = 0;
	if (!ci || !ci->tls_session)
		return false;
	int r = gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status);
	if (r < 0 || status != 0) {
		gnutls_datum_t why = { 0 };
		if (r >= 0)
			gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
		pw_warn("http", "client certificate refused: %s", r < 0 ? gnutls_strerror(r) : (const char *)why.data);
		gnutls_free(why.data);
		return false;
	}
	return true;
}

/* mTLS at the TLS layer: a new connection's GnuTLS session requires a client certificate
 * and verifies it during the handshake (Kubewarden's rustls refuses there too). The socket
 * context (a flag per connection) lets handler_main check the certificate once more on the
 * connection's first request, the check of record should the handshake not have done it. */
static void tls_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
		return;
	}
	*socket_context = calloc(1, sizeof(bool));
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	gnutls_certificate_server_set_request((gnutls_session_t)ci->tls_session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert((gnutls_session_t)ci->tls_session, NULL, 0);
}

/* True once client_cert_ok passed on this connection. */
static bool *conn_verified(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static enum MHD_Result handler_main(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	pw_lsn *l = cls;
	bool first = !*req_cls;
	if (first && l->ca.len) {
		bool *ok = conn_verified(c);
		if (!ok || !*ok) {
			if (!client_cert_ok(c))
				return MHD_NO;   /* closes the connection, never an answer */
			if (ok)
				*ok = true;
		}
	}
	enum MHD_Result ret = handle(l->h, true, c, url, method, upload_data, upload_data_size, req_cls);
	if (first && *req_cls) {
		((req_ctx *)*req_cls)->lsn = l;
		atomic_fetch_add(&l->inflight, 1);
	}
	return ret;
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
	if (rc->lsn)
		atomic_fetch_sub(&rc->lsn->inflight, 1);
	pw_buf_free(&rc->body);
	free(rc);
	*req_cls = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

static pthread_mutex_t g_mhd_log_mu = PTHREAD_MUTEX_INITIALIZER;
static time_t g_mhd_log_window;
static unsigned g_mhd_log_count, g_mhd_log_dropped;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	unsigned dropped = 0;
	bool log_it;
	time_t now = time(NULL);

	pthread_mutex_lock(&g_mhd_log_mu);
	if (now - g_mhd_log_window >= MHD_LOG_WINDOW_S) {
		dropped = g_mhd_log_dropped;
		g_mhd_log_window = now;
		g_mhd_log_count = g_mhd_log_dropped = 0;
	}
	log_it = g_mhd_log_count < MHD_LOG_BURST;
	if (log_it)
		g_mhd_log_count++;
	else
		g_mhd_log_dropped++;
	pthread_mutex_unlock(&g_mhd_log_mu);
	if (dropped)
		pw_warn("http", "%u more libmicrohttpd messages in the last %d s not logged", dropped, MHD_LOG_WINDOW_S);
	if (!log_it)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pw_warn("http", "%s", msg);
}

/* How many connections the main port may hold: the open-file limit (its soft limit raised to
 * the hard one first) less FDS_RESERVED. libmicrohttpd's default (FD_SETSIZE - 4, about 1000)
 * let a thousand idle connections (slowloris) lock every client out. */
static unsigned connection_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return FD_SETSIZE - 4;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)INT32_MAX)
		rl.rlim_cur = INT32_MAX;
	if (rl.rlim_cur <= 2 * FDS_RESERVED)
		return (unsigned)rl.rlim_cur / 2;
	return (unsigned)(rl.rlim_cur - FDS_RESERVED);
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

/* Starts a daemon: the main port when `l` is given (TLS when l has a certificate, client
 * certificates when it has CAs), else the readiness port. `fd` is a listening socket to take
 * over (a TLS reload), or MHD_INVALID_SOCKET to bind addr:port. */
static struct MHD_Daemon *start_daemon(pw_http *h, pw_lsn *l, const char *addr, unsigned port, unsigned threads,
                                       MHD_socket fd, unsigned *bound, const char *what)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	bool tls = l && l->cert.len, mtls = tls && l->ca.len;
	struct MHD_Daemon *d;
	unsigned limit = connection_limit() / (l ? 1 : READY_CONNECTIONS_DIVISOR);

	if (fd == MHD_INVALID_SOCKET && make_addr(addr, port, &ss) < 0)
		return NULL;
	if (fd == MHD_INVALID_SOCKET && ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL },
		{ fd == MHD_INVALID_SOCKET ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_LISTEN_SOCKET, fd, &ss },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, h },
		{ MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, limit, NULL },
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, tls ? l->cert.data : NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, tls ? l->key.data : NULL },
		{ mtls ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, mtls ? l->ca.data : NULL },
		{ mtls ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END, mtls ? (intptr_t)tls_connection : 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* options after an END are ignored: keep the optional ones (TLS, pool) last */
	struct MHD_OptionItem packed[sizeof opts / sizeof opts[0]];
	size_t np = 0;
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (opts[i].option != MHD_OPTION_END)
			packed[np++] = opts[i];
	packed[np] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, l ? handler_main : handler_ready, l ? (void *)l : (void *)h,
	                     MHD_OPTION_ARRAY, packed, MHD_OPTION_END);
	if (!d) {
		pw_error_set(PW_ERROR, "cannot listen on %s port %u for the %s%s (address in use, or no permission)",
		             addr, port, what, tls ? " with TLS (check --cert-file/--key-file/--client-ca-file)" : "");
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*bound = info ? info->port : port;
	return d;
}

static void lsn_free(pw_lsn *l)
{
	if (!l)
		return;
	pw_buf_free(&l->cert);
	pw_buf_free(&l->key);
	pw_buf_free(&l->ca);
	free(l);
}

/* Appends a PEM file and a NUL-free newline to `out`. */
static int read_pem(const char *path, pw_buf *out)
{
	pw_buf b = PW_BUF_INIT;
	int frc = pw_file_read(path, 1 << 20, &b);
	if (frc < 0)
		return frc;
	int rc = pw_buf_append(out, b.data, b.len) < 0 || pw_buf_append(out, "\n", 1) < 0 ? PW_ENOMEM : 0;
	pw_buf_free(&b);
	return rc ? pw_error_set(rc, "out of memory") : 0;
}

/* Calls fn on each non-empty, trimmed name of a comma-separated list (--client-ca-file). */
static int each_ca(const char *list, int (*fn)(const char *path, void *arg), void *arg)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		char path[4096];
		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		size_t m = n;
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		if (m >= sizeof path)
			return pw_error_set(PW_EINVALID, "--client-ca-file: path too long");
		memcpy(path, p, m);
		path[m] = '\0';
		int rc = m ? fn(path, arg) : 0;
		if (rc < 0)
			return rc;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int ca_read(const char *path, void *arg) { return read_pem(path, arg); }

/* Reads the certificate, key and client CAs and checks them with GnuTLS (the key matches the
 * certificate, the CA files hold certificates) before a daemon is started on them. */
static int lsn_load(pw_lsn **out, pw_http *h, const pw_server_opts *o)
{
	pw_lsn *l = calloc(1, sizeof *l);
	gnutls_certificate_credentials_t cred = NULL;
	int rc = 0, g;
	*out = NULL;
	if (!l)
		return pw_error_set(PW_ENOMEM, "out of memory");
	l->h = h;
	atomic_init(&l->inflight, 0);
	if (!o->cert_file)
		goto done;
	if ((rc = read_pem(o->cert_file, &l->cert)) < 0 || (rc = read_pem(o->key_file, &l->key)) < 0 ||
	    (rc = each_ca(o->client_ca_file, ca_read, &l->ca)) < 0)
		goto done;
	if (pw_buf_append(&l->cert, "", 1) < 0 || pw_buf_append(&l->key, "", 1) < 0 ||
	    (l->ca.len && pw_buf_append(&l->ca, "", 1) < 0)) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto done;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto done;
	}
	gnutls_datum_t c = { l->cert.data, (unsigned)l->cert.len - 1 }, k = { l->key.data, (unsigned)l->key.len - 1 };
	if ((g = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM)) < 0) {
		rc = pw_error_set(PW_EINVALID, "%s, %s: not a PEM certificate and its key (%s)", o->cert_file, o->key_file,
		                  gnutls_strerror(g));
		goto done;
	}
	if (l->ca.len) {
		gnutls_datum_t ca = { l->ca.data, (unsigned)l->ca.len - 1 };
		if ((g = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM)) <= 0) {
			rc = pw_error_set(PW_EINVALID, "--client-ca-file %s: no PEM CA certificate (%s)", o->client_ca_file,
			                  g < 0 ? gnutls_strerror(g) : "none found");
			goto done;
		}
	}
done:
	if (cred)
		gnutls_certificate_free_credentials(cred);
	if (rc < 0) {
		lsn_free(l);
		return pw_error_prefix("TLS");
	}
	*out = l;
	return 0;
}

static uint64_t sig_mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 1099511628211ull;
}

static int sig_file(const char *path, void *arg)
{
	uint64_t *h = arg;
	struct stat st;
	if (stat(path, &st) < 0) {   /* stat follows the ..data symlink Kubernetes swaps */
		*h = sig_mix(*h, (uint64_t)errno);
		return 0;
	}
	*h = sig_mix(*h, (uint64_t)st.st_dev);
	*h = sig_mix(*h, (uint64_t)st.st_ino);
	*h = sig_mix(*h, (uint64_t)st.st_size);
	*h = sig_mix(*h, (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec);
	return 0;
}

/* Device, inode, size and mtime of the certificate, key and CA files, hashed. */
static uint64_t tls_signature(const pw_server_opts *o)
{
	uint64_t h = 14695981039346656037ull;
	sig_file(o->cert_file, &h);
	sig_file(o->key_file, &h);
	each_ca(o->client_ca_file, sig_file, &h);
	return h;
}

/* A TLS reload: the current daemon stops accepting (quiesce), a new one with the new material
 * takes over its listening socket (connections that arrive meanwhile wait in the backlog),
 * and the old one finishes its requests in flight (answering with Connection: close) before
 * it is stopped. The readiness port is not touched. */
static void tls_swap(pw_http *h, pw_lsn *nl)
{
	pw_lsn *old = h->lsn;
	unsigned bound;
	atomic_store(&h->retiring, old);
	MHD_socket fd = MHD_quiesce_daemon(old->d);
	if (fd == MHD_INVALID_SOCKET) {
		pw_warn("http", "TLS reload: cannot take the listening socket over; keeping the old certificate");
		atomic_store(&h->retiring, NULL);
		lsn_free(nl);
		return;
	}
	nl->d = start_daemon(h, nl, h->addr, h->port, h->workers, fd, &bound, "policy server");
	if (!nl->d) {
		/* the material was checked: this is unexpected; serve the old one again */
		pw_warn("http", "TLS reload: %s; keeping the old certificate", pw_error_last());
		pw_buf_free(&nl->cert), pw_buf_free(&nl->key), pw_buf_free(&nl->ca);
		pw_buf_append(&nl->cert, old->cert.data, old->cert.len);
		pw_buf_append(&nl->key, old->key.data, old->key.len);
		pw_buf_append(&nl->ca, old->ca.data, old->ca.len);
		if (!(nl->d = start_daemon(h, nl, h->addr, h->port, h->workers, fd, &bound, "policy server"))) {
			pw_err("http", "TLS reload: the main port could not be restarted: %s", pw_error_last());
			close(fd);
			lsn_free(nl);
			return;   /* old stays quiesced: readiness still answers, the main port is gone */
		}
	}
	h->lsn = nl;
	h->main = nl->d;
	pw_info("http", "TLS reloaded: new connections use the new certificate%s; %d requests in flight finish on the old one",
	        nl->ca.len ? " and client CAs" : "", atomic_load(&old->inflight));
	/* drain: no request of the old daemon for 0.5 s in a row (at most 30 s) */
	double deadline = pw_now() + 30, idle_since = 0;
	while (pw_now() < deadline && !h->wstop) {
		if (atomic_load(&old->inflight) > 0)
			idle_since = 0;
		else if (!idle_since)
			idle_since = pw_now();
		else if (pw_now() - idle_since > 0.5)
			break;
		usleep(20000);
	}
	MHD_stop_daemon(old->d);
	atomic_store(&h->retiring, NULL);
	lsn_free(old);
}

#define TLS_POLL_SECONDS 1

static void *tls_watch(void *arg)
{
	pw_http *h = arg;
	const pw_server_opts *o = pw_server__opts(h->srv);
	pthread_mutex_lock(&h->wmu);
	while (!h->wstop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += TLS_POLL_SECONDS;
		pthread_cond_timedwait(&h->wcv, &h->wmu, &ts);
		if (h->wstop)
			break;
		uint64_t sig = tls_signature(o);
		if (sig == h->tls_sig)
			continue;
		h->tls_sig = sig;
		pthread_mutex_unlock(&h->wmu);
		pw_lsn *nl;
		if (lsn_load(&nl, h, o) < 0)
			pw_warn("http", "TLS files changed but cannot be used yet (kept the old ones): %s", pw_error_last());
		else
			tls_swap(h, nl);
		pthread_mutex_lock(&h->wmu);
	}
	pthread_mutex_unlock(&h->wmu);
	return NULL;
}

static void http_free(pw_http *h)
{
	lsn_free(h->lsn);
	free(h->free_slots);
	pthread_mutex_destroy(&h->smu);
	pthread_cond_destroy(&h->scv);
	pthread_mutex_destroy(&h->wmu);
	pthread_cond_destroy(&h->wcv);
	free(h);
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
	h->addr = addr;
	h->workers = o->workers ? o->workers : 1;
	h->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	atomic_init(&h->inflight, 0);
	atomic_init(&h->retiring, NULL);
	pthread_mutex_init(&h->smu, NULL);
	pthread_cond_init(&h->scv, NULL);
	pthread_mutex_init(&h->wmu, NULL);
	pthread_cond_init(&h->wcv, NULL);
	if (!(h->free_slots = malloc(h->workers * sizeof *h->free_slots))) {
		http_free(h);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < h->workers; i++)
		h->free_slots[h->nfree++] = h->workers - 1 - i;
	if (tls && (!o->cert_file || !o->key_file)) {
		http_free(h);
		return pw_error_set(PW_EINVALID, "TLS needs both --cert-file and --key-file");
	}
	if (o->client_ca_file && *o->client_ca_file && !tls) {
		http_free(h);
		return pw_error_set(PW_EINVALID, "--client-ca-file needs --cert-file and --key-file");
	}
	if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		http_free(h);
		return pw_error_set(PW_EUNSUPPORTED, "this libmicrohttpd was built without TLS support");
	}
	if (tls)
		h->tls_sig = tls_signature(o);
	int rc = lsn_load(&h->lsn, h, o);
	if (rc < 0) {
		http_free(h);
		return rc;
	}
	h->main = h->lsn->d = start_daemon(h, h->lsn, addr, o->port, h->workers, MHD_INVALID_SOCKET, &h->port,
	                                   "policy server");
	if (h->main)
		h->ready = start_daemon(h, NULL, addr, o->readiness_port, 1, MHD_INVALID_SOCKET, &h->ready_port,
		                        "readiness probe");
	if (!h->main || !h->ready) {
		rc = pw_error_last_code() ? pw_error_last_code() : PW_ERROR;
		if (h->main)
			MHD_stop_daemon(h->main);
		http_free(h);
		return rc;
	}
	if (tls) {
		if (pthread_create(&h->watcher, NULL, tls_watch, h) == 0)
			h->watching = true;
		else
			pw_warn("http", "no TLS file watcher thread: certificate changes need a restart");
	}
	pw_info("http", "listening on %s:%u (%s, %u workers), readiness and metrics on %s:%u", addr, h->port,
	        !tls ? "HTTP" : h->lsn->ca.len ? "HTTPS, client certificates required" : "HTTPS", h->workers, addr,
	        h->ready_port);
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
	if (h->watching) {
		pthread_mutex_lock(&h->wmu);
		h->wstop = true;
		pthread_cond_signal(&h->wcv);
		pthread_mutex_unlock(&h->wmu);
		pthread_join(h->watcher, NULL);
		h->watching = false;
	}
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
	http_free(h);
}

