/*
 * HTTP to the Kubernetes API server over libcurl: one easy handle per request, TLS with the
 * configured CA bundle (in memory), client certificate and key (in memory), the bearer token
 * (a fixed one, or the token file re-read when it changed: projected service-account tokens
 * are rotated by the kubelet), bounded in time and size. Streams (watch) hand complete lines
 * to a callback as they arrive and can be stopped from another thread.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

/* The token file's largest size. */
#define TOKEN_MAX (64u << 10)

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The bearer token to send now (malloc'd, NULL = none). */
static int current_token(k8s_conn *c, char **out)
{
	*out = NULL;
	if (c->token) {
		*out = strdup(c->token);
		return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
	}
	if (!c->token_file)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	double now = pw_now();
	if (!c->file_token || now - c->token_checked >= K8S_TOKEN_RECHECK) {
		struct stat st;
		c->token_checked = now;
		if (stat(c->token_file, &st) < 0) {
			if (!c->file_token)
				rc = pw_error_set_errno(PW_EAUTH, "Kubernetes token file %s", c->token_file);
		} else if (!c->file_token || st.st_ino != c->token_st.st_ino || st.st_size != c->token_st.st_size ||
		           st.st_mtim.tv_sec != c->token_st.st_mtim.tv_sec ||
		           st.st_mtim.tv_nsec != c->token_st.st_mtim.tv_nsec) {
			pw_buf b = PW_BUF_INIT;
			if (pw_file_read(c->token_file, TOKEN_MAX, &b) < 0) {
				if (!c->file_token)
					rc = pw_error_prefix("Kubernetes token");
			} else {
				while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
				                 b.data[b.len - 1] == ' '))
					b.data[--b.len] = '\0';
				free(c->file_token);
				c->file_token = (char *)pw_buf_detach(&b, NULL);
				if (!c->file_token)
					c->file_token = strdup("");
				c->token_st = st;
			}
			pw_buf_free(&b);
		}
	}
	if (rc == 0 && c->file_token && *c->file_token)
		*out = strdup(c->file_token);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

typedef struct xfer {
	const k8s_req *r;
	pw_buf *out;
	pw_buf line;
	bool too_large;
	bool cb_stopped;
} xfer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	if (!x->r->on_line) {
		if (x->out->len + n > K8S_MAX_BODY) {
			x->too_large = true;
			return 0;
		}
		return pw_buf_append(x->out, ptr, n) < 0 ? 0 : n;
	}
	for (size_t i = 0; i < n; i++) {
		if (ptr[i] == '\n') {
			if (x->line.len && x->r->on_line(x->r->arg, x->line.data ? (char *)x->line.data : "", x->line.len)) {
				x->cb_stopped = true;
				return 0;
			}
			pw_buf_clear(&x->line);
			continue;
		}
		if (x->line.len >= K8S_MAX_EVENT) {
			x->too_large = true;
			return 0;
		}
		if (pw_buf_append(&x->line, &ptr[i], 1) < 0)
			return 0;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	xfer *x = ud;
	return x->r->stop && atomic_load(x->r->stop) ? 1 : 0;
}

int k8s_http(k8s_conn *c, const k8s_req *r, long *status, pw_buf *out)
{
	pthread_once(&g_curl_once, curl_init_once);
	*status = 0;
	char *token = NULL;
	int rc = current_token(c, &token);
	if (rc < 0)
		return rc;
	CURL *h = curl_easy_init();
	if (!h) {
		free(token);
		return pw_error_set(PW_ENOMEM, "curl_easy_init failed");
	}
	pw_buf url = PW_BUF_INIT, auth = PW_BUF_INIT;
	pw_buf_printf(&url, "%s%s", c->server, r->path);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (token) {
		pw_buf_printf(&auth, "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, (const char *)auth.data);
	}
	if (r->body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	xfer x = { .r = r, .out = out };
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, (const char *)url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "prewarm/" PREWARM_VERSION);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout * 1000));
	double timeout = r->timeout ? r->timeout : c->timeout;
	if (timeout > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	if (r->low_speed_time > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)r->low_speed_time);
	}
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	if (c->ca.len) {
		struct curl_blob blob = { c->ca.data, c->ca.len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->cert.len) {
		struct curl_blob cb = { c->cert.data, c->cert.len, CURL_BLOB_COPY };
		struct curl_blob kb = { c->key.data, c->key.len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (c->basic && !token) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, c->basic);
	}
	if (r->method && !strcmp(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
	}
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	const char *method = r->method ? r->method : "GET";
	if (cc == CURLE_OK && r->on_line && x.line.len)   /* a last line without newline */
		r->on_line(r->arg, (const char *)x.line.data, x.line.len);
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && x.cb_stopped)) {
		rc = 0;
	} else if (x.too_large) {
		rc = pw_error_set(PW_EINVALID, "Kubernetes API %s %s%s: %s larger than %u MiB", method, c->server,
		                  r->path, r->on_line ? "watch event" : "response",
		                  (r->on_line ? K8S_MAX_EVENT : K8S_MAX_BODY) >> 20);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = pw_error_set(PW_ECANCELED, "Kubernetes API %s %s%s: stopped", method, c->server, r->path);
	} else {
		rc = pw_error_set(cc == CURLE_OPERATION_TIMEDOUT ? PW_ETIMEOUT : PW_ENETWORK,
		                  "Kubernetes API %s %s%s: %s", method, c->server, r->path,
		                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	pw_buf_free(&url);
	if (auth.data)
		memset(auth.data, 0, auth.len);
	pw_buf_free(&auth);
	pw_buf_free(&x.line);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	return rc;
}
