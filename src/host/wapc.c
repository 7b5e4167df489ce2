/*
 * The waPC host: the functions a waPC guest imports from module "wapc" (plus "host.call"
 * for WASI policies), and the driver of one guest call.
 *
 * One call: the host keeps the operation name and the payload, calls
 * __guest_call(op_len, payload_len); the guest calls __guest_request(op_ptr, ptr) to get
 * them copied into its memory, may call __host_call and read the answer back with
 * __host_response_len/__host_response (or __host_error_len/__host_error), and ends with
 * __guest_response or __guest_error and a return value of 1 (ok) or 0 (error).
 *
 * Guest memory is outside input: every pointer and length is checked against the
 * instance's current memory before any byte moves, and a bad one traps the instance (an
 * error answer for that request, a fresh instance for the next), never a host crash. The
 * memory base is fetched again on every access because memory.grow may move it.
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

/* Upper bound on anything the guest hands us (responses, log lines, host call payloads). */
#define MAX_GUEST_BLOB (64u << 20)
/* Upper bound on a host call's binding, namespace and operation names. */
#define MAX_NAME 4096u

static pw_host_call *call_of(pw_instance *inst)
{
	pw_host_call *c = pw_instance_host_data(inst);
	if (!c)
		pw_instance_trap(inst, "waPC import called on an instance without a policy host");
	return c;
}

/* A checked view of guest memory [ptr, ptr+len); traps with `what` when out of bounds. */
static uint8_t *guest_mem(pw_instance *inst, uint32_t ptr, uint32_t len, const char *what)
{
	if (!pw_instance_mem_ok(inst, ptr, len))
		pw_instance_trap(inst, what);
	uint64_t size;
	uint8_t *m = pw_instance_memory(inst, &size);
	if (!m && len)
		pw_instance_trap(inst, what);
	return m ? m + ptr : NULL;
}

static void copy_from_guest(pw_instance *inst, pw_buf *dst, uint32_t ptr, uint32_t len,
                            const char *what)
{
	if (len > MAX_GUEST_BLOB)
		pw_instance_trap(inst, "waPC: guest handed a buffer larger than 64 MiB");
	const uint8_t *src = guest_mem(inst, ptr, len, what);
	pw_buf_clear(dst);
	if (pw_buf_append(dst, src, len) < 0 || pw_buf_append(dst, "", 0) < 0)
		pw_instance_trap(inst, "waPC: host out of memory");
}

static void h_guest_request(pw_instance *inst, uint32_t op_ptr, uint32_t ptr)
{
	pw_host_call *c = call_of(inst);
	if (!c->op)
		pw_instance_trap(inst, "waPC __guest_request called outside a guest call");
	uint8_t *op = guest_mem(inst, op_ptr, (uint32_t)c->op_len,
	                        "waPC __guest_request: operation pointer out of bounds");
	memcpy(op, c->op, c->op_len);
	uint8_t *pl = guest_mem(inst, ptr, (uint32_t)c->payload_len,
	                        "waPC __guest_request: payload pointer out of bounds");
	if (c->payload_len)
		memcpy(pl, c->payload, c->payload_len);
}

static void h_guest_response(pw_instance *inst, uint32_t ptr, uint32_t len)
{
	pw_host_call *c = call_of(inst);
	copy_from_guest(inst, &c->response, ptr, len, "waPC __guest_response: pointer out of bounds");
	c->has_response = true;
}

static void h_guest_error(pw_instance *inst, uint32_t ptr, uint32_t len)
{
	pw_host_call *c = call_of(inst);
	copy_from_guest(inst, &c->guest_error, ptr, len, "waPC __guest_error: pointer out of bounds");
	c->has_guest_error = true;
}

static void h_console_log(pw_instance *inst, uint32_t ptr, uint32_t len)
{
	pw_host_call *c = call_of(inst);
	if (len > MAX_GUEST_BLOB)
		pw_instance_trap(inst, "waPC __console_log: message larger than 64 MiB");
	const uint8_t *m = guest_mem(inst, ptr, len, "waPC __console_log: pointer out of bounds");
	pw_info(c->log_tag, "%.*s", (int)len, (const char *)m);
}

/* Copies a guest string into a NUL-terminated heap copy (bounded). */
static char *guest_str(pw_instance *inst, uint32_t ptr, uint32_t len, const char *what)
{
	if (len > MAX_NAME)
		pw_instance_trap(inst, "host call: binding/namespace/operation longer than 4096 bytes");
	const uint8_t *s = guest_mem(inst, ptr, len, what);
	char *r = malloc((size_t)len + 1);
	if (!r)
		pw_instance_trap(inst, "waPC: host out of memory");
	if (len)
		memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* Reads binding, namespace, operation and payload of a host call from guest memory and
 * dispatches it. Returns the dispatcher's code; *answer holds the answer or the error. */
static int host_call_dispatch(pw_instance *inst, pw_host_call *c, uint32_t bd_ptr, uint32_t bd_len,
                              uint32_t ns_ptr, uint32_t ns_len, uint32_t op_ptr, uint32_t op_len,
                              uint32_t ptr, uint32_t len, pw_buf *answer, const char *who)
{
	/* Check every range before allocating, so a trap leaks nothing. */
	if (!pw_instance_mem_ok(inst, bd_ptr, bd_len) || !pw_instance_mem_ok(inst, ns_ptr, ns_len) ||
	    !pw_instance_mem_ok(inst, op_ptr, op_len) || !pw_instance_mem_ok(inst, ptr, len))
		pw_instance_trap(inst, who[0] == 'w' ? "waPC __host_call: pointer out of bounds"
		                                      : "WASI host.call: pointer out of bounds");
	if (bd_len > MAX_NAME || ns_len > MAX_NAME || op_len > MAX_NAME || len > MAX_GUEST_BLOB)
		pw_instance_trap(inst, who[0] == 'w' ? "waPC __host_call: argument too large"
		                                      : "WASI host.call: argument too large");
	char *bd = guest_str(inst, bd_ptr, bd_len, "host call: binding pointer out of bounds");
	char *ns = guest_str(inst, ns_ptr, ns_len, "host call: namespace pointer out of bounds");
	char *op = guest_str(inst, op_ptr, op_len, "host call: operation pointer out of bounds");
	pw_buf payload = PW_BUF_INIT;
	const uint8_t *p = guest_mem(inst, ptr, len, "host call: payload pointer out of bounds");
	int rc = pw_buf_append(&payload, p, len);
	if (rc == 0)
		rc = pw_host_dispatch(c, bd, ns, op, payload.data ? payload.data : (const uint8_t *)"",
		                      payload.len, answer);
	else
		pw_buf_puts(answer, "host out of memory");
	free(bd);
	free(ns);
	free(op);
	pw_buf_free(&payload);
	return rc;
}

/* waPC: the answer for __host_response, or the error text for __host_error. */
static void deliver_wapc(pw_host_call *c, int rc, const pw_buf *answer)
{
	pw_buf_clear(&c->host_response);
	pw_buf_clear(&c->host_error);
	pw_buf_append(rc == 0 ? &c->host_response : &c->host_error, answer->data, answer->len);
}

/* WASI (Kubewarden's wasi_cli/stack_pre.rs): the answer or the error text is written to the
 * guest's stdin, after what it has not read yet, for the guest to read next. */
static void deliver_wasi(pw_instance *inst, pw_host_call *c, pw_buf *answer)
{
	pw_wasi_ctx *w = c->wasi;
	size_t unread = w->stdin_data && w->stdin_pos < w->stdin_len ? w->stdin_len - w->stdin_pos : 0;
	pw_buf in = PW_BUF_INIT;
	if (unread + answer->len > MAX_GUEST_BLOB ||
	    pw_buf_append(&in, unread ? w->stdin_data + w->stdin_pos : (const uint8_t *)"", unread) < 0 ||
	    pw_buf_append(&in, answer->data ? answer->data : (const uint8_t *)"", answer->len) < 0 ||
	    pw_buf_append(&in, "", 1) < 0) {
		pw_buf_free(&in);
		pw_buf_free(answer);
		pw_instance_trap(inst, "WASI host.call: host out of memory for the answer");
	}
	pw_buf_free(&c->stdin_buf);
	c->stdin_buf = in;
	w->stdin_data = c->stdin_buf.data;
	w->stdin_len = c->stdin_buf.len - 1;
	w->stdin_pos = 0;
}

/* waPC's __host_call returns 1 on success, 0 on a host error; WASI's host.call 0 on
 * success, 1 on a host error. */
static uint32_t host_call(pw_instance *inst, uint32_t bd_ptr, uint32_t bd_len, uint32_t ns_ptr,
                          uint32_t ns_len, uint32_t op_ptr, uint32_t op_len, uint32_t ptr,
                          uint32_t len, bool wasi)
{
	pw_host_call *c = call_of(inst);
	pw_buf answer = PW_BUF_INIT;
	int rc = host_call_dispatch(inst, c, bd_ptr, bd_len, ns_ptr, ns_len, op_ptr, op_len, ptr, len,
	                            &answer, wasi ? "wasi" : "wapc");
	if (wasi)
		deliver_wasi(inst, c, &answer);
	else
		deliver_wapc(c, rc, &answer);
	pw_buf_free(&answer);
	return wasi ? rc != 0 : rc == 0;
}

static uint32_t h_host_call(pw_instance *inst, uint32_t a, uint32_t b, uint32_t d, uint32_t e,
                            uint32_t f, uint32_t g, uint32_t h, uint32_t i)
{
	return host_call(inst, a, b, d, e, f, g, h, i, false);
}

static uint32_t h_wasi_host_call(pw_instance *inst, uint32_t a, uint32_t b, uint32_t d, uint32_t e,
                                 uint32_t f, uint32_t g, uint32_t h, uint32_t i)
{
	return host_call(inst, a, b, d, e, f, g, h, i, true);
}

static void h_host_response(pw_instance *inst, uint32_t ptr)
{
	pw_host_call *c = call_of(inst);
	uint8_t *d = guest_mem(inst, ptr, (uint32_t)c->host_response.len,
	                       "waPC __host_response: pointer out of bounds");
	if (c->host_response.len)
		memcpy(d, c->host_response.data, c->host_response.len);
}

static uint32_t h_host_response_len(pw_instance *inst)
{
	return (uint32_t)call_of(inst)->host_response.len;
}

static void h_host_error(pw_instance *inst, uint32_t ptr)
{
	pw_host_call *c = call_of(inst);
	uint8_t *d = guest_mem(inst, ptr, (uint32_t)c->host_error.len,
	                       "waPC __host_error: pointer out of bounds");
	if (c->host_error.len)
		memcpy(d, c->host_error.data, c->host_error.len);
}

static uint32_t h_host_error_len(pw_instance *inst)
{
	return (uint32_t)call_of(inst)->host_error.len;
}

#define F(m, n, s, f) { m, n, s, (void (*)(void))(f) }
const pw_host_func pw_host_wapc_funcs[] = {
	F("wapc", "__guest_request", "ii:", h_guest_request),
	F("wapc", "__guest_response", "ii:", h_guest_response),
	F("wapc", "__guest_error", "ii:", h_guest_error),
	F("wapc", "__console_log", "ii:", h_console_log),
	F("wapc", "__host_call", "iiiiiiii:i", h_host_call),
	F("wapc", "__host_response", "i:", h_host_response),
	F("wapc", "__host_response_len", ":i", h_host_response_len),
	F("wapc", "__host_error", "i:", h_host_error),
	F("wapc", "__host_error_len", ":i", h_host_error_len),
	/* WASI policies: host callbacks through host.call (and kubewarden:javy/host.call for
	 * Javy JS policies), same arguments as __host_call, the answer on stdin */
	F("host", "call", "iiiiiiii:i", h_wasi_host_call),
	F("kubewarden:javy/host", "call", "iiiiiiii:i", h_wasi_host_call),
};
#undef F
const size_t pw_host_wapc_nfuncs = sizeof pw_host_wapc_funcs / sizeof pw_host_wapc_funcs[0];

/* The policy id from the log tag "policy:<id>". */
static const char *policy_id(const pw_host_call *c)
{
	return strncmp(c->log_tag, "policy:", 7) ? c->log_tag : c->log_tag + 7;
}

int pw_host_wapc_call(pw_instance *inst, pw_host_call *c, const char *op,
                      const uint8_t *payload, size_t len)
{
	if (len > UINT32_MAX)
		return pw_error_set(PW_EINVALID, "policy %s: payload of %zu bytes is too large", policy_id(c), len);
	c->op = op;
	c->op_len = strlen(op);
	c->payload = payload;
	c->payload_len = len;
	c->has_response = c->has_guest_error = false;
	pw_buf_clear(&c->response);
	pw_buf_clear(&c->guest_error);
	pw_buf_clear(&c->host_response);
	pw_buf_clear(&c->host_error);
	pw_val args[2] = { (pw_val)c->op_len, (pw_val)len };
	pw_val res = 0;
	int rc = pw_instance_call(inst, "__guest_call", args, 2, &res, 1);
	c->op = NULL;
	c->payload = NULL;
	pw_host_call_flush_logs(c);
	if (rc < 0)
		return pw_error_prefix("policy %s: waPC operation %s", policy_id(c), op);
	if ((uint32_t)res != 1) {
		const char *msg = c->has_guest_error ? (const char *)c->guest_error.data
		                                     : "no error message set for call failure";
		return pw_error_set(PW_ERROR, "policy %s: waPC operation %s failed: guest error: %s",
		                    policy_id(c), op, msg);
	}
	if (!c->has_response)
		pw_buf_clear(&c->response);
	return 0;
}

int pw_host_wapc_start(pw_instance *inst, pw_host_call *c)
{
	pw_artifact *a = pw_instance_artifact(inst);
	if (pw_artifact_find_func(a, "_start")) {
		int code = 0;
		int rc = pw_wasi_run_start(inst, &code);
		pw_host_call_flush_logs(c);
		if (rc < 0)
			return pw_error_prefix("policy %s: _start", policy_id(c));
		if (code != 0)
			return pw_error_set(PW_EEXIT, "policy %s: _start exited with code %d", policy_id(c), code);
	}
	if (pw_artifact_find_func(a, "wapc_init")) {
		int rc = pw_instance_call(inst, "wapc_init", NULL, 0, NULL, 0);
		pw_host_call_flush_logs(c);
		if (rc < 0)
			return pw_error_prefix("policy %s: wapc_init", policy_id(c));
	}
	return 0;
}
