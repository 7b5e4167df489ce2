/*
 * Internals of the policy host shared by its files: the JSON Patch differ and applier
 * (patch.c), the Kubewarden request/answer shaping (answer.c, pure JSON, fuzzed by
 * fuzz/fuzz_admission.c), the per-call state the waPC and WASI host functions reach through
 * the instance's host_data (wapc.c, wasi_policy.c) and the host-callback dispatcher
 * (hostcall.c; the capability families plug in through hostcap.h).
 */
#ifndef PW_HOST_INTERNAL_H
#define PW_HOST_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "prewarm/policy.h"
#include "prewarm/util.h"
#include "prewarm/wasi.h"

/* ---- JSON Patch (patch.c) ------------------------------------------------------------ */

/* Appends to `ops` (a JSON array) the RFC 6902 operations turning `from` into `to`, paths
 * below `prefix` (an RFC 6901 pointer, "" for the root). 0 or PW_ENOMEM. */
int pw_host_json_diff(json_t *ops, const char *prefix, const json_t *from, const json_t *to);
/* Applies an RFC 6902 patch (add/remove/replace/move/copy/test) to *doc (replaced in place;
 * *doc may be swapped for a new root). PW_EINVALID naming the failing operation. */
int pw_host_json_patch_apply(json_t **doc, const json_t *patch);
/* Appends `token` escaped per RFC 6901 (~ -> ~0, / -> ~1) after a '/' to `b`. */
int pw_host_pointer_append(pw_buf *b, const char *token);

/* ---- answers (answer.c) -------------------------------------------------------------- */

typedef struct pw_shape_opts {
	const char *policy_id;
	pw_policy_mode mode;
	bool allowed_to_mutate;
	const char *message;      /* custom rejection message or NULL */
	pw_eval_kind kind;
} pw_shape_opts;

/* A parsed request body. */
typedef struct pw_host_req {
	json_t *root;             /* owned */
	json_t *request;          /* borrowed from root: what the policy gets as "request" */
	json_t *object;           /* borrowed: what a mutated_object is diffed against (NULL if none) */
	const char *uid;          /* borrowed, "" if none */
} pw_host_req;

/* Parses an AdmissionReview (VALIDATE/AUDIT) or {"request": ...} (VALIDATE_RAW) body.
 * PW_EINVALID naming what is wrong. */
int pw_host_req_parse(pw_host_req *r, const char *body, size_t len, pw_eval_kind kind);
void pw_host_req_free(pw_host_req *r);
/* {"request": request, "settings": settings} as compact JSON text (malloc'd), NULL on ENOMEM. */
char *pw_host_validate_input(const pw_host_req *r, const json_t *settings);

/* Turns the policy's validation response (JSON bytes) into the answer body. A policy answer
 * that is not a valid validation response becomes an error answer. Never fails except on
 * out of memory (PW_ENOMEM). */
int pw_host_shape_answer(const pw_shape_opts *o, const pw_host_req *r, const uint8_t *out,
                         size_t out_len, char **response, pw_eval_result *res);
/* The answer of a Rego policy from its result set (JSON text), as Kubewarden's rego runtime
 * shapes it: OPA mode, result[0].result.response is the AdmissionResponse (uid replaced by
 * the request's; one that does not deserialize is an error answer); Gatekeeper mode,
 * result[0].result is the list of violations, rejected with their `msg`s joined by ", "
 * when non-empty. Then the same post-processing as pw_host_shape_answer. */
int pw_host_shape_rego_answer(const pw_shape_opts *o, const pw_host_req *r, bool gatekeeper,
                              const char *result_set, size_t len, char **response, pw_eval_result *res);
/* The answer for a failed evaluation: "internal server error: <msg>", code 500 (allowed in
 * monitor mode). */
int pw_host_error_answer(const pw_shape_opts *o, const pw_host_req *r, const char *msg,
                         int error, char **response, pw_eval_result *res);
/* Reads a validate_settings answer {"valid": bool, "message"?: str}: 0 valid, PW_EINVALID
 * invalid (*message set, may be NULL), PW_ERROR when the answer is malformed. */
int pw_host_settings_answer(const uint8_t *out, size_t out_len, char **message);

/* ---- per-call state (policy.c, wapc.c, wasi_policy.c, hostcall.c) ---------------------- */

typedef struct pw_host_call {
	pw_wasi_ctx *wasi;        /* FIRST member: the WASI host reaches its ctx through host_data */
	pw_wasi_ctx wasi_ctx;
	struct pw_policy *policy;
	char log_tag[160];        /* "policy:<id>" */
	/* waPC: the current guest call */
	const char *op;
	size_t op_len;
	const uint8_t *payload;
	size_t payload_len;
	pw_buf response;          /* __guest_response */
	bool has_response;
	pw_buf guest_error;       /* __guest_error */
	bool has_guest_error;
	pw_buf host_response;     /* last __host_call answer */
	pw_buf host_error;        /* last __host_call error */
	/* WASI: stdout captured, stderr line-buffered to the log */
	pw_buf out;
	pw_buf err_line;
	pw_buf out_line;          /* waPC guests' stdout, line-buffered to the log */
	pw_buf stdin_buf;         /* WASI: unread stdin + the last host.call answer */
	bool capture_stdout;
	/* OPA / Gatekeeper policies: the evaluation state the env.* imports use (opa.c) */
	struct pw_opa_call *opa;
	/* argv for WASI policies */
	char *argv[3];
} pw_host_call;

/* Initialises a call state for `policy` (log tag, WASI ctx with stdio to the log). */
void pw_host_call_init(pw_host_call *c, struct pw_policy *policy, const char *id);
/* Resets per-request buffers (keeps memory). */
void pw_host_call_reset(pw_host_call *c);
void pw_host_call_free(pw_host_call *c);
/* Flushes partial stderr/stdout log lines. */
void pw_host_call_flush_logs(pw_host_call *c);

/* Dispatches a host callback: 0 with *answer filled, or an error with *answer holding the
 * error text for the guest. */
int pw_host_dispatch(pw_host_call *c, const char *binding, const char *ns, const char *op,
                     const uint8_t *payload, size_t len, pw_buf *answer);
/* True when the capability "binding/ns/op" is allowed by the policy's hostCapabilities. */
bool pw_host_capability_allowed(const char *const *caps, size_t ncaps, bool all,
                                const char *binding, const char *ns, const char *op);

/* The waPC / host.call host function list (wapc.c). */
extern const pw_host_func pw_host_wapc_funcs[];
extern const size_t pw_host_wapc_nfuncs;

/* Runs one waPC operation on a started instance: PW_ETRAP/PW_ETIMEOUT/... from the call,
 * PW_ERROR with the guest's error message when __guest_call returned 0. On 0 the answer is
 * in c->response. */
int pw_host_wapc_call(pw_instance *inst, pw_host_call *c, const char *op,
                      const uint8_t *payload, size_t len);
/* _start (a WASI exit 0 is fine) then wapc_init, when exported. */
int pw_host_wapc_start(pw_instance *inst, pw_host_call *c);

/* Policy internals used by the host functions. */
bool pw_policy__capability_allowed(const struct pw_policy *p, const char *binding,
                                   const char *ns, const char *op);
/* The host-capability environment the policy was created with (NULL = none). */
pw_host_env *pw_policy__host_env(const struct pw_policy *p);
/* Is apiVersion/kind among the policy's contextAwareResources? */
bool pw_policy__resource_allowed(const struct pw_policy *p, const char *api_version, const char *kind);

#endif
