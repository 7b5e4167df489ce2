/*
 * The registry client over libcurl: one shared CURLSH (connections, DNS, TLS sessions)
 * for every thread, one easy handle per request, and the policy every request follows:
 *
 *   - TLS: system CAs plus the host's source_authorities, in one X509 store per host built
 *     once and handed to every connection through CURLOPT_SSL_CTX_FUNCTION (no CA file
 *     parsed per connection); an insecure_sources host is tried over HTTPS, then
 *     HTTPS without verification, then plain HTTP, and the first that answers is kept.
 *   - Auth: anonymous first; on a 401 the WWW-Authenticate challenge decides: Basic ->
 *     resend with the host's credentials; Bearer -> ask the realm for a token (with the
 *     credentials when we have some) for the scope, cache it per (registry, scope) until it
 *     expires, resend. Credentials and tokens go only into Authorization headers, never into
 *     a log line or an error message.
 *   - Robustness: connect and total timeouts, a low-speed abort, bounded retries with
 *     exponential backoff (honouring Retry-After up to a bound) on 5xx, 429 and network
 *     errors; never on another 4xx.
 * HTTP/2 is used over TLS when the server offers it, so headers are matched
 * case-insensitively.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "oci/internal.h"

enum { SCHEME_UNKNOWN = 0, SCHEME_HTTPS, SCHEME_HTTPS_NOVERIFY, SCHEME_HTTP };

enum {
	MAX_REDIRECTS = 5,
	LOW_SPEED_BYTES_PER_S = 1024,  /* below this for low_speed_time seconds: abort */
	MAX_AUTH_ROUNDS = 2,           /* a 401 answered at most twice per request */
	MAX_TOKEN_ANSWER = 1 << 20,
	MAX_SCHEMES = 3,
};
#define MAX_BACKOFF_S 10.0         /* also the bound on an honoured Retry-After */
#define DEFAULT_TOKEN_TTL_S 60.0   /* a token answer without expires_in */

typedef struct host_state {
	struct host_state *next;
	char *host;
	int scheme;
	bool basic;          /* the host asked for Basic auth: send it up front */
} host_state;

typedef struct trust {
	struct trust *next;
	char *host;
	X509_STORE *store;
} trust;

typedef struct token {
	struct token *next;
	char *host, *scope, *value;
	double expires;      /* monotonic */
	bool with_creds;
} token;

struct pw_oci_client {
	pw_oci_client_opts o;
	pw_oci_sources *sources;
	pw_oci_creds *creds;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock;
	host_state *hosts;
	token *tokens;
	trust *stores;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	pw_oci_client *c = u;
	pthread_mutex_lock(&c->share_lock[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	pw_oci_client *c = u;
	pthread_mutex_unlock(&c->share_lock[d]);
}

int pw_oci_client_new(pw_oci_client **out, const pw_oci_client_opts *opts)
{
	pw_oci_client *c;
	*out = NULL;
	pthread_once(&g_curl_once, curl_init_once);
	c = calloc(1, sizeof *c);
	if (!c)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (opts)
		c->o = *opts;
	c->o.sources = NULL;
	c->o.creds = NULL;
	if (c->o.connect_timeout <= 0)
		c->o.connect_timeout = 10;
	if (c->o.timeout <= 0)
		c->o.timeout = 300;
	if (c->o.low_speed_time <= 0)
		c->o.low_speed_time = 30;
	if (c->o.no_retry)
		c->o.retries = 0;
	else if (c->o.retries == 0)
		c->o.retries = 3;
	if (c->o.backoff <= 0)
		c->o.backoff = 0.25;
	if (c->o.max_manifest == 0)
		c->o.max_manifest = 4u << 20;
	if (c->o.max_blob == 0)
		c->o.max_blob = 1ull << 30;
	pthread_mutex_init(&c->lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_lock[i], NULL);
	if (pw_oci_sources_new(&c->sources) < 0 || pw_oci_creds_new(&c->creds) < 0 ||
	    (opts && pw_oci__sources_merge(c->sources, opts->sources) < 0) ||
	    (opts && pw_oci__creds_merge(c->creds, opts->creds) < 0)) {
		pw_oci_client_free(c);
		return pw_error_last_code() ? pw_error_last_code() : PW_ENOMEM;
	}
	c->share = curl_share_init();
	if (!c->share) {
		pw_oci_client_free(c);
		return pw_error_set(PW_ENOMEM, "curl_share_init failed");
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*out = c;
	return 0;
}

void pw_oci_client_free(pw_oci_client *c)
{
	if (!c)
		return;
	if (c->share)
		curl_share_cleanup(c->share);
	for (host_state *h = c->hosts, *n; h; h = n) {
		n = h->next;
		free(h->host);
		free(h);
	}
	for (trust *t = c->stores, *n; t; t = n) {
		n = t->next;
		free(t->host);
		X509_STORE_free(t->store);
		free(t);
	}
	for (token *t = c->tokens, *n; t; t = n) {
		n = t->next;
		free(t->host);
		free(t->scope);
		if (t->value) {
			explicit_bzero(t->value, strlen(t->value));
			free(t->value);
		}
		free(t);
	}
	pw_oci_sources_free(c->sources);
	pw_oci_creds_free(c->creds);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_lock[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Needs c->lock held. */
static host_state *host_get(pw_oci_client *c, const char *host)
{
	for (host_state *h = c->hosts; h; h = h->next)
		if (!strcasecmp(h->host, host))
			return h;
	host_state *h = calloc(1, sizeof *h);
	if (!h || !(h->host = strdup(host))) {
		free(h);
		return NULL;
	}
	h->next = c->hosts;
	c->hosts = h;
	return h;
}

/* Copies the cached token for (host, scope) into buf; false when none is valid. */
static bool token_find(pw_oci_client *c, const char *host, const char *scope, pw_buf *hdr, bool *with_creds)
{
	bool found = false;
	double now = pw_now();
	pthread_mutex_lock(&c->lock);
	for (token *t = c->tokens; t; t = t->next) {
		if (!strcmp(t->host, host) && !strcmp(t->scope, scope) && t->expires > now) {
			pw_buf_clear(hdr);
			pw_buf_printf(hdr, "Authorization: Bearer %s", t->value);
			if (with_creds)
				*with_creds = t->with_creds;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void token_store(pw_oci_client *c, const char *host, const char *scope, const char *value,
                        double ttl, bool with_creds)
{
	token *t = calloc(1, sizeof *t);
	if (!t)
		return;
	t->host = strdup(host);
	t->scope = strdup(scope);
	t->value = strdup(value);
	t->expires = pw_now() + (ttl > 30 ? ttl - 10 : ttl * 0.8);
	t->with_creds = with_creds;
	if (!t->host || !t->scope || !t->value) {
		free(t->host);
		free(t->scope);
		free(t->value);
		free(t);
		return;
	}
	pthread_mutex_lock(&c->lock);
	t->next = c->tokens;
	c->tokens = t;
	pthread_mutex_unlock(&c->lock);
}

/* ---- one transfer -------------------------------------------------------------------- */

typedef struct xfer {
	const pw_oci_req *req;
	pw_oci_resp *resp;
	pw_sha256_ctx *sha;
	bool too_big;
	bool io_error;
	int io_errno;
} xfer;

void pw_oci__resp_clear(pw_oci_resp *r)
{
	pw_buf_free(&r->err);
	memset(r, 0, sizeof *r);
}

static void copy_hval(char *dst, size_t n, const char *v, size_t len)
{
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *u)
{
	xfer *x = u;
	size_t n = size * nitems;
	pw_oci_resp *r = x->resp;
	if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
		/* a new response (after a redirect or 100-continue): start over */
		const char *sp = memchr(buf, ' ', n);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->content_type[0] = r->location[0] = r->digest[0] = r->www_auth[0] = 0;
		r->has_content_length = false;
		r->content_length = 0;
		return n;
	}
	const char *colon = memchr(buf, ':', n);
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - buf), vl = n - kl - 1;
	const char *v = colon + 1;
	if (kl == 12 && !strncasecmp(buf, "content-type", 12))
		copy_hval(r->content_type, sizeof r->content_type, v, vl);
	else if (kl == 8 && !strncasecmp(buf, "location", 8))
		copy_hval(r->location, sizeof r->location, v, vl);
	else if (kl == 21 && !strncasecmp(buf, "docker-content-digest", 21))
		copy_hval(r->digest, sizeof r->digest, v, vl);
	else if (kl == 14 && !strncasecmp(buf, "content-length", 14)) {
		char tmp[32];
		copy_hval(tmp, sizeof tmp, v, vl);
		r->content_length = strtoull(tmp, NULL, 10);
		r->has_content_length = true;
	} else if (kl == 16 && !strncasecmp(buf, "www-authenticate", 16)) {
		copy_hval(r->www_auth, sizeof r->www_auth, v, vl);
	} else if (kl == 11 && !strncasecmp(buf, "retry-after", 11)) {
		char tmp[32];
		copy_hval(tmp, sizeof tmp, v, vl);
		r->retry_after = strtod(tmp, NULL);
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *u)
{
	xfer *x = u;
	size_t n = size * nmemb;
	pw_oci_resp *r = x->resp;
	const pw_oci_req *q = x->req;
	if (r->status < 200 || r->status >= 300) {
		if (r->err.len < 8192)
			pw_buf_append(&r->err, data, n < 8192 - r->err.len ? n : 8192 - r->err.len);
		return n;
	}
	if (q->max && r->written + n > q->max) {
		x->too_big = true;
		return 0;
	}
	if (q->fd >= 0) {
		if (pw_write_all(q->fd, data, n) < 0) {
			x->io_error = true;
			x->io_errno = errno;
			return 0;
		}
		if (x->sha)
			pw_sha256_update(x->sha, data, n);
	} else if (q->out) {
		if (pw_buf_append(q->out, data, n) < 0)
			return 0;
	}
	r->written += n;
	return n;
}

/* Swaps curl's per-connection store for the host's shared one (no CA file parsed per
 * connection: with parallel pulls that parsing dominated the TLS set-up). */
static CURLcode on_ssl_ctx(CURL *h, void *sslctx, void *parm)
{
	SSL_CTX_set1_cert_store((SSL_CTX *)sslctx, (X509_STORE *)parm);
	return CURLE_OK;
}

/* The system CAs: the hashed directory, looked up lazily (parsing the whole bundle file
 * costs ~100 ms on a busy machine), else the bundle file; SSL_CERT_FILE / SSL_CERT_DIR
 * are honoured as OpenSSL does. */
static int load_system_cas(X509_STORE *st)
{
	const char *file = getenv(X509_get_default_cert_file_env());
	const char *dir = getenv(X509_get_default_cert_dir_env());
	struct stat sb;
	if (!dir)
		dir = X509_get_default_cert_dir();
	if (file && X509_STORE_load_file(st, file) != 1)
		return -1;
	if (dir && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		return X509_STORE_load_path(st, dir) == 1 ? 0 : -1;
	if (!file)
		return X509_STORE_load_file(st, X509_get_default_cert_file()) == 1 ? 0 : -1;
	return 0;
}

/* The trust store for a host: OpenSSL's default paths (the system CAs, looked up lazily by
 * hash) plus the host's source_authorities. Built once per host, shared by every handle. */
static X509_STORE *host_store(pw_oci_client *c, const char *host)
{
	X509_STORE *st = NULL;
	pthread_mutex_lock(&c->lock);
	for (trust *t = c->stores; t; t = t->next)
		if (!strcasecmp(t->host, host)) {
			st = t->store;
			break;
		}
	if (!st) {
		trust *t = calloc(1, sizeof *t);
		st = X509_STORE_new();
		if (!t || !st || !(t->host = strdup(host)) || load_system_cas(st) < 0) {
			if (t)
				free(t->host);
			free(t);
			X509_STORE_free(st);
			st = NULL;
		} else {
			const char *pem = pw_oci_sources_ca_pem(c->sources, host);
			if (pem) {
				BIO *bio = BIO_new_mem_buf(pem, -1);
				X509 *x;
				while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
					X509_STORE_add_cert(st, x);
					X509_free(x);
				}
				BIO_free(bio);
			}
			t->store = st;
			t->next = c->stores;
			c->stores = t;
		}
		ERR_clear_error();
	}
	pthread_mutex_unlock(&c->lock);
	return st;
}

static void set_trust(pw_oci_client *c, CURL *h, const char *host)
{
	X509_STORE *st = host_store(c, host);
	if (!st)
		return;  /* curl's defaults then */
	curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, st);
}

static int sink_reset(const pw_oci_req *q, xfer *x)
{
	if (q->fd >= 0) {
		if (ftruncate(q->fd, 0) < 0 || lseek(q->fd, 0, SEEK_SET) < 0)
			return pw_error_set_errno(PW_EIO, "truncating the download file");
		if (x->sha) {
			uint8_t junk[PW_SHA256_LEN];
			pw_sha256_final(x->sha, junk);
		}
		x->sha = pw_sha256_new();
		if (!x->sha)
			return pw_error_set(PW_ENOMEM, "out of memory");
	} else if (q->out) {
		pw_buf_clear(q->out);
	}
	return 0;
}

/* The host part of an URL ("https://h:p/x" -> "h:p") into out. */
static void url_host(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t l = strcspn(p, "/?#");
	snprintf(out, n, "%.*s", (int)(l < n ? l : n - 1), p);
}

/* The settings every easy handle of this client gets: the shared pool, timeouts, the
 * protocols allowed, and where curl writes its error text. */
static void easy_common(pw_oci_client *c, CURL *h, const char *url, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "prewarm/" PREWARM_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->o.connect_timeout * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->o.timeout * 1000));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
}

/* TLS trust for one handle: none at all for an unverified insecure source, else the host's
 * store (system CAs plus its source_authorities) when the URL is HTTPS. */
static void easy_trust(pw_oci_client *c, CURL *h, const char *url, const char *host, bool verify)
{
	if (!verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (!strncmp(url, "https://", 8)) {
		set_trust(c, h, host);
	}
}

/* Performs one HTTP exchange with the given full URL and TLS mode. */
static CURLcode perform(pw_oci_client *c, const pw_oci_req *q, xfer *x, const char *url, int scheme,
                        const char *auth_header, char *errbuf)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char hostbuf[512], tmp[512];
	CURLcode cc;
	if (!h)
		return CURLE_OUT_OF_MEMORY;
	url_host(url, hostbuf, sizeof hostbuf);
	easy_common(c, h, url, errbuf);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES_PER_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(c->o.low_speed_time + 0.5));
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD")) ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	easy_trust(c, h, url, hostbuf, scheme != SCHEME_HTTPS_NOVERIFY);
	if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (q->has_body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body_len ? q->body : "");
		if (strcmp(q->method, "POST"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
	}
	if (q->accept) {
		snprintf(tmp, sizeof tmp, "Accept: %s", q->accept);
		hdrs = curl_slist_append(hdrs, tmp);
	}
	if (q->has_body) {
		snprintf(tmp, sizeof tmp, "Content-Type: %s", q->content_type ? q->content_type : "application/octet-stream");
		hdrs = curl_slist_append(hdrs, tmp);
		hdrs = curl_slist_append(hdrs, "Expect:");
	}
	if (auth_header)
		hdrs = curl_slist_append(hdrs, auth_header);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		long st = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		x->resp->status = st;
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return cc;
}

static bool retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* Errors after which an insecure host moves on to the next scheme. */
static bool fallback_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_HTTP2:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return true;
	default:
		return false;
	}
}

static void backoff_sleep(pw_oci_client *c, unsigned attempt, double retry_after)
{
	double d = c->o.backoff * (double)(1u << (attempt < 10 ? attempt : 10));
	if (retry_after > 0)
		d = retry_after;
	if (d > MAX_BACKOFF_S)
		d = MAX_BACKOFF_S;
	/* jitter: +-25% */
	d *= 0.75 + 0.5 * ((double)(rand() % 1000) / 1000.0);
	struct timespec ts = pw_timespec_of(d);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *scheme_prefix(int s)
{
	return s == SCHEME_HTTP ? "http://" : "https://";
}

/* Fetches a Bearer token for the challenge; stores it under (host, scope). */
static int fetch_token(pw_oci_client *c, const char *host, const pw_oci_challenge *ch, const char *scope,
                       bool *creds_sent)
{
	const char *user = NULL, *pass = NULL;
	CURL *h;
	pw_buf url = PW_BUF_INIT, body = PW_BUF_INIT, auth = PW_BUF_INIT;
	char errbuf[CURL_ERROR_SIZE] = "", realm_host[512];
	long st = 0;
	int rc = 0;
	bool have = pw_oci_creds_find(c->creds, host, &user, &pass) == 0;
	*creds_sent = have;
	h = curl_easy_init();
	if (!h)
		return pw_error_set(PW_ENOMEM, "curl_easy_init failed");
	pw_buf_puts(&url, ch->realm);
	char sep = strchr(ch->realm, '?') ? '&' : '?';
	if (ch->service) {
		char *e = curl_easy_escape(h, ch->service, 0);
		pw_buf_printf(&url, "%cservice=%s", sep, e ? e : "");
		curl_free(e);
		sep = '&';
	}
	const char *sc = ch->scope && *ch->scope ? ch->scope : scope;
	if (sc && *sc) {
		char *e = curl_easy_escape(h, sc, 0);
		pw_buf_printf(&url, "%cscope=%s", sep, e ? e : "");
		curl_free(e);
	}
	url_host(ch->realm, realm_host, sizeof realm_host);
	easy_common(c, h, (const char *)url.data, errbuf);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	pw_oci_req q = { .method = "GET", .out = &body, .max = MAX_TOKEN_ANSWER, .fd = -1 };
	pw_oci_resp r;
	memset(&r, 0, sizeof r);
	r.status = 200;
	xfer x = { .req = &q, .resp = &r };
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	easy_trust(c, h, ch->realm, realm_host, !pw_oci_sources_is_insecure(c->sources, realm_host));
	if (have) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		rc = pw_error_set(cc == CURLE_OPERATION_TIMEDOUT ? PW_ETIMEOUT : PW_ENETWORK,
		                  "registry %s: token endpoint %s: %s", host, realm_host,
		                  *errbuf ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (st == 401 || st == 403) {
		rc = pw_error_set(PW_EAUTH, "registry %s: token endpoint %s refused %s (HTTP %ld)", host, realm_host,
		                  have ? "the credentials" : "anonymous access (no credentials configured)", st);
		goto out;
	}
	if (st != 200) {
		rc = pw_error_set(PW_ERROR, "registry %s: token endpoint %s answered HTTP %ld", host, realm_host, st);
		goto out;
	}
	json_t *j = json_loadb((const char *)body.data, body.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok || strpbrk(tok, "\r\n")) {
		json_decref(j);
		rc = pw_error_set(PW_ERROR, "registry %s: token endpoint %s gave no usable token", host, realm_host);
		goto out;
	}
	json_t *ei = json_object_get(j, "expires_in");
	double ttl = json_is_integer(ei) && json_integer_value(ei) > 0 ? (double)json_integer_value(ei) : DEFAULT_TOKEN_TTL_S;
	token_store(c, host, scope, tok, ttl, have);
	json_decref(j);
out:
	pw_buf_free(&url);
	if (body.data)
		explicit_bzero(body.data, body.len);
	pw_buf_free(&body);
	pw_buf_free(&auth);
	return rc;
}

static void basic_header(pw_oci_client *c, const char *host, pw_buf *hdr, bool *sent)
{
	const char *user, *pass;
	*sent = false;
	if (pw_oci_creds_find(c->creds, host, &user, &pass) != 0)
		return;
	pw_buf up = PW_BUF_INIT;
	pw_buf_printf(&up, "%s:%s", user, pass);
	char *b64 = pw_base64_encode(up.data, up.len);
	explicit_bzero(up.data, up.len);
	pw_buf_free(&up);
	if (!b64)
		return;
	pw_buf_clear(hdr);
	pw_buf_printf(hdr, "Authorization: Basic %s", b64);
	explicit_bzero(b64, strlen(b64));
	free(b64);
	*sent = true;
}

/* One request's state across its retries, schemes and authentication rounds. */
typedef struct {
	pw_oci_client *c;
	const pw_oci_req *q;
	pw_oci_resp *resp;
	host_state *hs;
	xfer x;
	pw_buf auth;          /* the Authorization header line to send, or empty */
	pw_buf url;
	char scope[600];
	char errbuf[CURL_ERROR_SIZE];
	unsigned attempt;     /* retries spent */
	int auth_round;       /* 401s answered */
	bool creds_sent;
} request;

static const char *req_what(const pw_oci_req *q)
{
	return q->what ? q->what : q->path;
}

/* The schemes to try, in order: the absolute URL's, the one this host answered on before, or
 * for a new host HTTPS (and for an insecure source then unverified HTTPS, then plain HTTP). */
static int schemes_to_try(const request *r, int schemes[MAX_SCHEMES])
{
	const pw_oci_req *q = r->q;
	pthread_mutex_lock(&r->c->lock);
	int known = r->hs->scheme;
	pthread_mutex_unlock(&r->c->lock);
	if (q->abs_url) {
		schemes[0] = !strncmp(q->abs_url, "http://", 7) ? SCHEME_HTTP :
		             (known == SCHEME_HTTPS_NOVERIFY ? SCHEME_HTTPS_NOVERIFY : SCHEME_HTTPS);
		return 1;
	}
	if (known) {
		schemes[0] = known;
		return 1;
	}
	if (pw_oci_sources_is_insecure(r->c->sources, q->host)) {
		schemes[0] = SCHEME_HTTPS;
		schemes[1] = SCHEME_HTTPS_NOVERIFY;
		schemes[2] = SCHEME_HTTP;
		return 3;
	}
	schemes[0] = SCHEME_HTTPS;
	return 1;
}

/* One exchange: the schemes in order until one answers (or fails in a way another scheme
 * would not fix). *cc is curl's result, *used the scheme it came from. */
static int exchange(request *r, CURLcode *cc, int *used)
{
	const pw_oci_req *q = r->q;
	int schemes[MAX_SCHEMES], rc;
	int ns = schemes_to_try(r, schemes);
	*cc = CURLE_OK;
	*used = SCHEME_UNKNOWN;
	for (int i = 0; i < ns; i++) {
		pw_buf_clear(&r->url);
		if (q->abs_url)
			pw_buf_puts(&r->url, q->abs_url);
		else
			pw_buf_printf(&r->url, "%s%s%s", scheme_prefix(schemes[i]), pw_oci__api_host(q->host), q->path);
		if ((rc = sink_reset(q, &r->x)) < 0)
			return rc;
		pw_buf_free(&r->resp->err);
		r->resp->status = 0;
		r->resp->written = 0;
		r->resp->retry_after = 0;
		r->errbuf[0] = 0;
		r->x.too_big = r->x.io_error = false;
		*cc = perform(r->c, q, &r->x, (const char *)r->url.data, schemes[i],
		              r->auth.len ? (const char *)r->auth.data : NULL, r->errbuf);
		*used = schemes[i];
		if (*cc == CURLE_OK || !fallback_curl(*cc) || q->abs_url)
			break;
		if (i + 1 < ns)
			pw_debug("oci", "registry %s: %s%s failed (%s), trying %s", q->host, scheme_prefix(schemes[i]),
			         schemes[i] == SCHEME_HTTPS_NOVERIFY ? " (unverified)" : "",
			         *r->errbuf ? r->errbuf : curl_easy_strerror(*cc),
			         schemes[i + 1] == SCHEME_HTTP ? "plain HTTP" : "HTTPS without verification");
	}
	snprintf(r->resp->url, sizeof r->resp->url, "%s", (const char *)r->url.data);
	return 0;
}

/* What went wrong on our side of the transfer: an answer over its bound, a failed write. */
static int sink_error(const request *r)
{
	const pw_oci_req *q = r->q;
	if (r->x.too_big)
		return pw_error_set(PW_EINVALID, "registry %s: %s: %s is larger than %llu bytes", q->host, req_what(q),
		                    q->fd >= 0 ? "blob" : "answer", (unsigned long long)q->max);
	if (r->x.io_error) {
		errno = r->x.io_errno;
		return pw_error_set_errno(PW_EIO, "registry %s: %s: writing the download", q->host, req_what(q));
	}
	return 0;
}

/* The first scheme a new host answers on is kept for every later request to it. */
static void remember_scheme(request *r, int used)
{
	if (r->q->abs_url || used == SCHEME_UNKNOWN)
		return;
	pthread_mutex_lock(&r->c->lock);
	if (!r->hs->scheme) {
		r->hs->scheme = used;
		if (used != SCHEME_HTTPS)
			pw_info("oci", "registry %s: using %s", r->q->host,
			        used == SCHEME_HTTP ? "plain HTTP (insecure source)" :
			                              "HTTPS without certificate verification (insecure source)");
	}
	pthread_mutex_unlock(&r->c->lock);
}

/* Answers a 401's challenge: Basic -> our credentials (once), Bearer -> a token for the
 * scope. Returns 1 to send the request again, 0 to give the 401 to the caller, <0 on error. */
static int answer_challenge(request *r)
{
	const pw_oci_req *q = r->q;
	pw_oci_challenge ch;
	int rc;
	if (!*r->resp->www_auth)
		return 0;
	if (pw_oci_challenge_parse(&ch, r->resp->www_auth) < 0) {
		pw_debug("oci", "registry %s: unusable challenge: %s", q->host, pw_error_last());
		return 0;
	}
	r->auth_round++;
	if (!strcasecmp(ch.scheme, "Basic")) {
		bool sent = false;
		pw_oci_challenge_clear(&ch);
		if (r->creds_sent && r->auth.len && !strncmp((const char *)r->auth.data, "Authorization: Basic", 20))
			return 0;  /* our credentials were refused */
		basic_header(r->c, q->host, &r->auth, &sent);
		if (!sent)
			return 0;  /* nothing to send */
		r->creds_sent = true;
		pthread_mutex_lock(&r->c->lock);
		r->hs->basic = true;
		pthread_mutex_unlock(&r->c->lock);
		return 1;
	}
	bool with = false;
	rc = fetch_token(r->c, q->host, &ch, r->scope, &with);
	pw_oci_challenge_clear(&ch);
	if (rc < 0)
		return rc;
	r->creds_sent = with;
	return token_find(r->c, q->host, r->scope, &r->auth, NULL) ? 1 : 0;
}

/* Sleeps before the next attempt when one is left. */
static bool retry_left(request *r, const char *why, double retry_after)
{
	const pw_oci_req *q = r->q;
	if (r->attempt >= r->c->o.retries)
		return false;
	pw_debug("oci", "registry %s: %s %s: %s; retry %u of %u", q->host, q->method, req_what(q), why,
	         r->attempt + 1, r->c->o.retries);
	backoff_sleep(r->c, r->attempt++, retry_after);
	return true;
}

int pw_oci__request(pw_oci_client *c, const pw_oci_req *q, pw_oci_resp *resp)
{
	request r = { .c = c, .q = q, .resp = resp, .x = { .req = q, .resp = resp },
	              .auth = PW_BUF_INIT, .url = PW_BUF_INIT };
	int rc = 0;

	snprintf(r.scope, sizeof r.scope, "repository:%s:%s", q->repo ? q->repo : "", q->push ? "pull,push" : "pull");
	pthread_mutex_lock(&c->lock);
	r.hs = host_get(c, q->host);
	bool basic = r.hs && r.hs->basic;
	pthread_mutex_unlock(&c->lock);
	if (!r.hs)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (!token_find(c, q->host, r.scope, &r.auth, &r.creds_sent) && basic)
		basic_header(c, q->host, &r.auth, &r.creds_sent);

	for (;;) {
		CURLcode cc;
		int used;
		if ((rc = exchange(&r, &cc, &used)) < 0 || (rc = sink_error(&r)) < 0)
			goto out;
		if (cc != CURLE_OK) {
			const char *why = *r.errbuf ? r.errbuf : curl_easy_strerror(cc);
			if (retryable_curl(cc) && retry_left(&r, why, 0))
				continue;
			rc = pw_error_set(cc == CURLE_OPERATION_TIMEDOUT ? PW_ETIMEOUT : PW_ENETWORK,
			                  "registry %s: %s %s: %s%s", q->host, q->method, req_what(q), why,
			                  r.attempt ? " (after retries)" : "");
			goto out;
		}
		remember_scheme(&r, used);
		pw_debug("oci", "registry %s: %s %s -> %ld", q->host, q->method, req_what(q), resp->status);
		if (resp->status == 401 && !q->no_auth_retry && r.auth_round < MAX_AUTH_ROUNDS) {
			if ((rc = answer_challenge(&r)) < 0)
				goto out;
			if (rc > 0)
				continue;
			break;
		}
		if (resp->status >= 500 || resp->status == 429) {
			char why[32];
			snprintf(why, sizeof why, "HTTP %ld", resp->status);
			if (retry_left(&r, why, resp->retry_after))
				continue;
		}
		break;
	}
	resp->creds_sent = r.creds_sent;
	if (q->fd >= 0 && r.x.sha) {
		pw_sha256_final(r.x.sha, resp->sha256);
		r.x.sha = NULL;
	}
	rc = 0;
out:
	if (r.x.sha) {
		uint8_t junk[PW_SHA256_LEN];
		pw_sha256_final(r.x.sha, junk);
	}
	if (r.auth.data)
		explicit_bzero(r.auth.data, r.auth.len);
	pw_buf_free(&r.auth);
	pw_buf_free(&r.url);
	return rc;
}

int pw_oci__status_error(const pw_oci_req *q, const pw_oci_resp *r)
{
	char detail[300] = "";
	const char *what = q->what ? q->what : q->path;
	if (r->err.len) {
		json_t *j = json_loadb((const char *)r->err.data, r->err.len, 0, NULL);
		json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
		const char *code = json_string_value(json_object_get(e0, "code"));
		const char *msg = json_string_value(json_object_get(e0, "message"));
		if (code || msg)
			snprintf(detail, sizeof detail, " (%s%s%s)", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
		json_decref(j);
	}
	switch (r->status) {
	case 404:
		return pw_error_set(PW_ENOTFOUND, "registry %s: %s not found (HTTP 404%s)", q->host, what, detail);
	case 401:
		return pw_error_set(PW_EAUTH, "registry %s: %s: unauthorized (HTTP 401%s); %s", q->host, what, detail,
		                    r->creds_sent ? "the credentials sent were refused"
		                                  : "no credentials were sent (none configured for this registry)");
	case 403:
		return pw_error_set(PW_EAUTH, "registry %s: %s: forbidden (HTTP 403%s); %s", q->host, what, detail,
		                    r->creds_sent ? "credentials were sent" : "no credentials were sent");
	default:
		return pw_error_set(r->status == 429 || r->status >= 500 ? PW_ENETWORK : PW_ERROR,
		                    "registry %s: %s %s: HTTP %ld%s", q->host, q->method, what, r->status, detail);
	}
}

void pw_oci__digest_of(const void *data, size_t len, char out[PW_OCI_DIGEST_LEN])
{
	memcpy(out, "sha256:", 7);
	pw_sha256_hex(data, len, out + 7);
}

uint64_t pw_oci__client_max_blob(const pw_oci_client *c)
{
	return c->o.max_blob;
}

size_t pw_oci__client_max_manifest(const pw_oci_client *c)
{
	return c->o.max_manifest;
}

int pw_oci_client_from_paths(pw_oci_client **out, const char *docker_config_path, const char *sources_path,
                             const pw_oci_client_opts *base)
{
	pw_oci_client_opts o;
	pw_oci_sources *s = NULL;
	pw_oci_creds *cr = NULL;
	int rc;
	*out = NULL;
	memset(&o, 0, sizeof o);
	if (base)
		o = *base;
	if (sources_path && (rc = pw_oci_sources_load(&s, sources_path)) < 0)
		return rc;
	if (docker_config_path) {
		if ((rc = pw_oci_creds_new(&cr)) < 0 || (rc = pw_oci_creds_load_docker_config(cr, docker_config_path)) < 0) {
			pw_oci_sources_free(s);
			pw_oci_creds_free(cr);
			return rc;
		}
	}
	o.sources = s;
	o.creds = cr;
	rc = pw_oci_client_new(out, &o);
	pw_oci_sources_free(s);
	pw_oci_creds_free(cr);
	return rc;
}
