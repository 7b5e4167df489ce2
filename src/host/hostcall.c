/*
 * Host callbacks: what a policy may ask the host through waPC's __host_call or WASI's
 * host.call, and the per-call state shared by the waPC and WASI hosts (stdio to the log,
 * captured stdout).
 *
 * Kubewarden's callbacks are addressed by (binding, namespace, operation). The dispatcher
 * follows Kubewarden's runtimes/callback.rs step by step: a binding other than "kubewarden"
 * is "unknown binding: B"; namespace "tracing" (the SDKs' structured logging) is never
 * gated; every other call must be granted by the policy's hostCapabilities (patterns end
 * in '*' to match the rest of a path; the capability is "NAMESPACE/OPERATION", e.g.
 * "oci/v1/manifest_digest", and a pattern may carry the "kubewarden/" binding too), else
 * the guest gets Kubewarden's denial text; then the payload is parsed as JSON and handed
 * to the operation's handler, found in the families' tables (src/host/hostcap.h,
 * docs/host-capabilities.md). A capability Kubewarden knows that no family serves answers
 * "capability not available"; an unknown one "unknown namespace" / "unknown operation".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/hostcap.h"

#define MAX_CAPTURE (64u << 20)

/* The SDKs send {"level": "info", "message": "...", <fields>...}: logged at that level with
 * the other fields as key=value; anything else is logged as it is, at info. */
static void trace_log(pw_host_call *c, const uint8_t *payload, size_t len)
{
	json_t *j = json_loadb((const char *)payload, len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (!msg) {
		pw_info(c->log_tag, "%.*s", (int)(len > 65536 ? 65536 : len), (const char *)payload);
		json_decref(j);
		return;
	}
	int level = pw_log_level_parse(json_string_value(json_object_get(j, "level")) ?: "info");
	pw_buf extra = PW_BUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		if (!strcmp(k, "message") || !strcmp(k, "level"))
			continue;
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		pw_buf_printf(&extra, " %s=%s", k, t ? t : "?");
		free(t);
	}
	pw_log(level < 0 ? PW_LOG_INFO : (pw_log_level)level, c->log_tag, "%s%s", msg,
	       extra.data ? (const char *)extra.data : "");
	pw_buf_free(&extra);
	json_decref(j);
}

/* Every capability Kubewarden knows (host_capabilities.rs CAPABILITY_TREE): a call to one
 * no family serves answers "capability not available" rather than "unknown operation". */
static const char *const kubewarden_caps[] = {
	"oci/v1/verify", "oci/v1/manifest_digest", "oci/v1/oci_manifest", "oci/v1/oci_manifest_config",
	"oci/v2/verify", "net/v1/dns_lookup_host", "crypto/v1/is_certificate_trusted",
	"kubernetes/list_resources_by_namespace", "kubernetes/list_resources_all",
	"kubernetes/get_resource", "kubernetes/can_i",
};

/* The families (src/host/hostcap.h): add a table here to serve its operations. */
static const pw_hostcap_op *const families[] = {
	pw_hostcap_oci_ops,
	pw_hostcap_net_ops,
	pw_hostcap_sigstore_ops,
	pw_hostcap_crypto_ops,
	pw_hostcap_kubernetes_ops,
};

static bool known_capability(const char *ns, const char *op)
{
	size_t n = strlen(ns);
	for (size_t i = 0; i < sizeof kubewarden_caps / sizeof kubewarden_caps[0]; i++)
		if (!strncmp(kubewarden_caps[i], ns, n) && kubewarden_caps[i][n] == '/' &&
		    !strcmp(kubewarden_caps[i] + n + 1, op))
			return true;
	return false;
}

int pw_host_capability_pattern_check(const char *pat)
{
	size_t n = strlen(pat);
	const char *star = strchr(pat, '*');
	size_t ncaps = sizeof kubewarden_caps / sizeof kubewarden_caps[0];

	if (!strcmp(pat, "*"))
		return 0;
	if (star) {
		if (star != pat + n - 1 || n < 3 || pat[n - 2] != '/')
			return pw_error_set(PW_EINVALID, "\"%s\": a '*' must be the whole last segment (like "
			                    "\"oci/*\" or \"oci/v1/*\")", pat);
		for (size_t i = 0; i < ncaps; i++)
			if (!strncmp(kubewarden_caps[i], pat, n - 1))
				return 0;
		return pw_error_set(PW_EINVALID, "\"%s\": \"%.*s\" is not a group of host capabilities",
		                    pat, (int)(n - 2), pat);
	}
	for (size_t i = 0; i < ncaps; i++)
		if (!strcmp(kubewarden_caps[i], pat))
			return 0;
	for (size_t i = 0; i < ncaps; i++)
		if (!strncmp(kubewarden_caps[i], pat, n) && kubewarden_caps[i][n] == '/')
			return pw_error_set(PW_EINVALID, "\"%s\" is a group of capabilities, not one: use \"%s/*\"",
			                    pat, pat);
	return pw_error_set(PW_EINVALID, "\"%s\" is not a host capability (known: "
	                    "oci/v1/{verify,manifest_digest,oci_manifest,oci_manifest_config}, oci/v2/verify, "
	                    "net/v1/dns_lookup_host, crypto/v1/is_certificate_trusted, "
	                    "kubernetes/{list_resources_by_namespace,list_resources_all,get_resource,can_i})", pat);
}

static bool known_namespace(const char *ns)
{
	size_t n = strlen(ns);
	for (size_t i = 0; i < sizeof kubewarden_caps / sizeof kubewarden_caps[0]; i++)
		if (!strncmp(kubewarden_caps[i], ns, n) && kubewarden_caps[i][n] == '/')
			return true;
	return false;
}

static const pw_hostcap_op *find_op(const char *ns, const char *op)
{
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
		for (const pw_hostcap_op *o = families[f]; o->ns; o++)
			if (!strcmp(o->ns, ns) && !strcmp(o->op, op))
				return o;
	return NULL;
}

int pw_host_dispatch(pw_host_call *c, const char *binding, const char *ns, const char *op,
                     const uint8_t *payload, size_t len, pw_buf *answer)
{
	/* Kubewarden's runtimes/callback.rs, in its order: the binding, then the gate (every
	 * namespace but tracing, known or not), then the namespace and the operation */
	if (strcmp(binding, "kubewarden") != 0) {
		pw_debug(c->log_tag, "host call %s/%s/%s: unknown binding", binding, ns, op);
		pw_buf_printf(answer, "unknown binding: %s", binding);
		return PW_EUNSUPPORTED;
	}
	if (!strcmp(ns, "tracing")) {
		if (!strcmp(op, "log")) {
			trace_log(c, payload, len);
			return 0;
		}
		pw_buf_printf(answer, "unknown operation: %s", op);
		return PW_EUNSUPPORTED;
	}
	if (!pw_policy__capability_allowed(c->policy, binding, ns, op)) {
		pw_warn(c->log_tag, "host call %s/%s refused: not granted by the policy's hostCapabilities", ns, op);
		pw_buf_printf(answer, "Policy has not been granted access to the '%s/%s' host capability. "
		              "The violation has been reported.", ns, op);
		return PW_EAUTH;
	}
	return pw_hostcap_run(c, c->policy, pw_policy__host_env(c->policy), ns, op, payload, len, answer);
}

int pw_hostcap_run(pw_host_call *c, const struct pw_policy *policy, pw_host_env *env, const char *ns,
                   const char *op, const uint8_t *payload, size_t len, pw_buf *answer)
{
	const pw_hostcap_op *o = find_op(ns, op);
	if (!o) {
		if (known_capability(ns, op)) {
			pw_debug(c->log_tag, "host call kubewarden/%s/%s: capability not available", ns, op);
			pw_buf_printf(answer, "host capability kubewarden/%s/%s: capability not available", ns, op);
		} else if (known_namespace(ns)) {
			pw_buf_printf(answer, "unknown operation: %s", op);
		} else {
			pw_buf_printf(answer, "unknown namespace: %s", ns);
		}
		return PW_EUNSUPPORTED;
	}
	json_error_t e;
	json_t *j = json_loadb((const char *)payload, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!j) {
		pw_buf_printf(answer, "%s at line %d column %d", e.text, e.line, e.column);
		return PW_EINVALID;
	}
	pw_hostcap_call hc = {
		.call = c, .policy = policy, .env = env,
		.ns = ns, .op = op, .payload = payload, .len = len, .json = j,
	};
	double t0 = pw_now();
	size_t before = answer->len;
	int rc = o->fn(&hc, answer);
	json_decref(j);
	if (rc < 0 && answer->len == before)
		pw_buf_printf(answer, "Callback evaluation failure: %s/%s failed", ns, op);
	if (pw_log_enabled(PW_LOG_DEBUG)) {
		char d[32];
		pw_debug(c->log_tag, "host call %s/%s: %s in %s", ns, op, rc < 0 ? "host error" : "answered",
		         pw_fmt_duration(pw_now() - t0, d, sizeof d));
	}
	return rc;
}

/* ---- helpers for handlers (hostcap.h) ------------------------------------------------- */

int pw_hostcap_fail(pw_buf *answer, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pw_buf_printf(answer, "Callback evaluation failure: %s", msg);
	return PW_ERROR;
}

int pw_hostcap_bad_payload(pw_buf *answer, const char *msg)
{
	pw_buf_puts(answer, msg);
	return PW_EINVALID;
}

int pw_hostcap_answer_json(pw_buf *answer, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!t || pw_buf_puts(answer, t) < 0) {
		free(t);
		pw_buf_clear(answer);
		pw_buf_puts(answer, "host out of memory");
		return PW_ENOMEM;
	}
	free(t);
	return 0;
}

/* serde_json's word for a JSON value's type, as in its "invalid type" messages. */
static const char *serde_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "map";
	case JSON_ARRAY: return "sequence";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "floating point";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	default: return "string";
	}
}

const char *pw_hostcap_payload_string(const pw_hostcap_call *c, pw_buf *answer)
{
	if (json_is_string(c->json))
		return json_string_value(c->json);
	char msg[128];
	snprintf(msg, sizeof msg, "invalid type: %s, expected a string", serde_type(c->json));
	pw_hostcap_bad_payload(answer, msg);
	return NULL;
}

/* ---- the call state --------------------------------------------------------------------- */

static void log_lines(pw_host_call *c, pw_buf *line, const uint8_t *data, size_t len, bool flush)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			pw_info(c->log_tag, "%.*s", (int)line->len, line->data ? (char *)line->data : "");
			pw_buf_clear(line);
		} else if (line->len < 16384) {
			pw_buf_append(line, &data[i], 1);
		}
	}
	if (flush && line->len) {
		pw_info(c->log_tag, "%.*s", (int)line->len, (char *)line->data);
		pw_buf_clear(line);
	}
}

static void on_write(void *cb_data, int fd, const uint8_t *data, size_t len)
{
	pw_host_call *c = cb_data;
	if (fd == 1 && c->capture_stdout) {
		if (c->out.len + len <= MAX_CAPTURE)
			pw_buf_append(&c->out, data, len);
		return;
	}
	log_lines(c, fd == 1 ? &c->out_line : &c->err_line, data, len, false);
}

void pw_host_call_init(pw_host_call *c, struct pw_policy *policy, const char *id)
{
	memset(c, 0, sizeof *c);
	c->wasi = &c->wasi_ctx;
	c->policy = policy;
	snprintf(c->log_tag, sizeof c->log_tag, "policy:%s", id);
	pw_wasi_ctx_init(&c->wasi_ctx);
	c->wasi_ctx.write_cb = on_write;
	c->wasi_ctx.cb_data = c;
	c->wasi_ctx.stdin_fd = -1;
	static const uint8_t empty[1];
	c->wasi_ctx.stdin_data = empty;
	c->wasi_ctx.stdin_len = 0;
}

void pw_host_call_reset(pw_host_call *c)
{
	pw_buf_clear(&c->response);
	pw_buf_clear(&c->guest_error);
	pw_buf_clear(&c->host_response);
	pw_buf_clear(&c->host_error);
	pw_buf_clear(&c->out);
	pw_buf_clear(&c->err_line);
	pw_buf_clear(&c->out_line);
	pw_buf_clear(&c->stdin_buf);
	c->has_response = c->has_guest_error = false;
	c->op = NULL;
	c->payload = NULL;
	c->wasi_ctx.exit_code = 0;
	c->wasi_ctx.stdin_pos = 0;
}

void pw_host_call_flush_logs(pw_host_call *c)
{
	log_lines(c, &c->err_line, NULL, 0, true);
	log_lines(c, &c->out_line, NULL, 0, true);
}

void pw_host_call_free(pw_host_call *c)
{
	if (!c)
		return;
	pw_buf_free(&c->response);
	pw_buf_free(&c->guest_error);
	pw_buf_free(&c->host_response);
	pw_buf_free(&c->host_error);
	pw_buf_free(&c->out);
	pw_buf_free(&c->err_line);
	pw_buf_free(&c->out_line);
	pw_buf_free(&c->stdin_buf);
}
