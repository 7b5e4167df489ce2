/*
 * Host callbacks: what a policy may ask the host through __host_call / host.call, and the
 * per-call state shared by the waPC and WASI hosts (stdio to the log, captured stdout).
 *
 * Kubewarden's callbacks are addressed by (binding, namespace, operation). Prewarm serves
 * binding "kubewarden", namespace "tracing", operation "log" (the SDKs' structured logging:
 * the payload is logged with the policy's tag). The other namespaces (oci, kubernetes, net,
 * crypto) answer a host error "capability not available" for now, so a policy that needs
 * them fails its request cleanly instead of getting a wrong answer. Before anything runs,
 * the policy's hostCapabilities must allow "binding/namespace/operation" (patterns end in
 * '*' to match the rest, like "*" or "oci/" followed by a star; the binding "kubewarden" may be omitted from a
 * pattern, as Kubewarden's capability names are "namespace/version/operation").
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

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

int pw_host_dispatch(pw_host_call *c, const char *binding, const char *ns, const char *op,
                     const uint8_t *payload, size_t len, pw_buf *answer)
{
	/* Kubewarden's callback.rs: only the "kubewarden" binding exists; tracing is never gated;
	 * everything else needs a hostCapabilities pattern matching "NAMESPACE/OPERATION" */
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
		pw_buf_printf(answer, "host capability %s/%s/%s: capability not available", binding, ns, op);
		return PW_EUNSUPPORTED;
	}
	if (!pw_policy__capability_allowed(c->policy, binding, ns, op)) {
		pw_warn(c->log_tag, "host call %s/%s refused: not granted by the policy's hostCapabilities", ns, op);
		pw_buf_printf(answer, "Policy has not been granted access to the '%s/%s' host capability. "
		              "The violation has been reported.", ns, op);
		return PW_EAUTH;
	}
	pw_debug(c->log_tag, "host call %s/%s/%s: capability not available", binding, ns, op);
	pw_buf_printf(answer, "host capability %s/%s/%s: capability not available", binding, ns, op);
	return PW_EUNSUPPORTED;
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
}
