/*
 * Internals of the OPA (Rego) host: the builtin functions that compiled Rego calls back to
 * the host for (opa_builtins.c, opa_regex.c, opa_sprintf.c, opa_yaml.c, opa_time.c), and
 * the OPA WebAssembly ABI driver (opa.c).
 *
 * Builtins take and return jansson values: the ABI driver dumps each argument with the
 * module's opa_json_dump, parses it, calls the builtin and loads the result back with
 * opa_malloc + opa_json_parse. A builtin answers 0 with *out set, or 0 with *out NULL when
 * its result is undefined, or an error (pw_error_set, message "NAME: reason"). As in OPA's
 * own SDKs without strict builtin errors, the driver turns an error into an undefined
 * result (logged at debug level): the Rego expression that called it is undefined.
 */
#ifndef PW_HOST_OPA_INTERNAL_H
#define PW_HOST_OPA_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "prewarm/engine.h"
#include "prewarm/util.h"

/* What one evaluation's builtins share. */
typedef struct pw_opa_bctx {
	const char *log_tag;       /* trace() notes go to the log under this tag */
	int64_t now_ns;            /* time.now_ns: fixed for one evaluation, as OPA does; 0 = unset */
} pw_opa_bctx;

typedef int (*pw_opa_builtin_fn)(pw_opa_bctx *ctx, json_t *const *args, json_t **out);

typedef struct pw_opa_builtin {
	const char *name;          /* OPA's name, e.g. "regex.split" */
	unsigned arity;
	pw_opa_builtin_fn fn;
} pw_opa_builtin;

/* Every builtin Prewarm implements, sorted by name; *n set to their count. */
const pw_opa_builtin *pw_opa_builtins(size_t *n);
/* The builtin called `name`, or NULL. */
const pw_opa_builtin *pw_opa_builtin_find(const char *name);
/* Calls `b` with `nargs` arguments (PW_EINVALID when nargs differs from its arity). */
int pw_opa_builtin_call(const pw_opa_builtin *b, pw_opa_bctx *ctx, json_t *const *args,
                        size_t nargs, json_t **out);
/* Convenience for tests and the fuzz target: arguments as a JSON array text, the result as
 * compact JSON text (*out NULL when undefined). PW_EINVALID for bad JSON or an unknown name. */
int pw_opa_builtin_call_json(const char *name, const char *args_json, char **out);

/* ---- helpers shared by the builtin files (opa_builtins.c) --------------------------- */

/* pw_error_set(PW_EINVALID, "NAME: operand N must be TYPE") */
int pw_opa_type_error(const char *name, int operand, const char *type);
/* A jansson string from bytes (NULL on out of memory or invalid UTF-8). */
json_t *pw_opa_string(const char *s, size_t len);

/* The keys of a JSON object sorted with cmp (NULL: byte order, pw_opa_cmp_strings), in a
 * malloc'd array of borrowed strings; NULL on out of memory (error names `name`). */
const char **pw_opa_sorted_keys(const json_t *obj, int (*cmp)(const void *, const void *),
                                const char *name, size_t *n);
int pw_opa_cmp_strings(const void *a, const void *b);
/* Ends a builtin that built its string result in b: frees b; returns rc when it is an error,
 * else sets *out to b's text (PW_EINVALID when it is not UTF-8). */
int pw_opa_buf_result(pw_buf *b, int rc, const char *name, json_t **out);

/* The builtin implementations, one family per file. */
int pw_opa_regex_split(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_regex_find_n(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_regex_template_match(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_sprintf(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_yaml_marshal(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_yaml_unmarshal(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_yaml_is_valid(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_time_now_ns(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_time_parse_rfc3339_ns(pw_opa_bctx *ctx, json_t *const *args, json_t **out);
int pw_opa_time_date(pw_opa_bctx *ctx, json_t *const *args, json_t **out);

/* ---- the OPA ABI driver (opa.c) ------------------------------------------------------ */

typedef struct pw_opa pw_opa;   /* a loaded Rego module: ABI version, builtins, entrypoints */

/* The state of evaluations on one instance, reached by the imports through the instance's
 * pw_host_call (its `opa` member). */
typedef struct pw_opa_call {
	const pw_opa *opa;
	pw_opa_bctx bctx;
	bool prepared;            /* data loaded (pw_opa_prepare) */
	uint32_t data_addr;       /* the data value */
	uint32_t data_heap_ptr;   /* heap pointer after the data: restored before every evaluation */
	bool aborted;             /* opa_abort was called */
	pw_buf abort_message;
} pw_opa_call;

/* The env.* functions and env.memory an OPA module imports. */
extern const pw_host_func pw_host_opa_funcs[];
extern const size_t pw_host_opa_nfuncs;
int pw_host_opa_add_imports(pw_imports *im);

/* True when the artifact exports the OPA ABI (opa_eval_ctx_new, builtins, entrypoints). */
bool pw_opa_is_rego(const pw_artifact *a);
/* Reads the module's ABI version, builtins and entrypoints on a first instance. PW_EINVALID
 * when it is not an OPA module, PW_EUNSUPPORTED for an ABI major version other than 1 or
 * builtins Prewarm lacks (every one named). `what` names the module in messages. */
int pw_opa_new(pw_opa **out, pw_artifact *a, const char *what);
void pw_opa_free(pw_opa *o);
void pw_opa_abi_version(const pw_opa *o, uint32_t *major, uint32_t *minor);
const json_t *pw_opa_entrypoints(const pw_opa *o);
/* PW_ENOTFOUND naming the entrypoints the module has. */
int pw_opa_entrypoint_id(const pw_opa *o, const char *name, int32_t *id);

void pw_opa_call_init(pw_opa_call *oc, const pw_opa *o, const char *log_tag);
void pw_opa_call_free(pw_opa_call *oc);
/* Loads `data` (JSON text; NULL = {}) into a fresh instance whose host_data is a
 * pw_host_call with .opa = oc, and records the heap restore point. */
int pw_opa_prepare(pw_opa_call *oc, pw_instance *inst, const char *data, size_t data_len);
/* One evaluation of `entrypoint` on `input` (JSON text; NULL = undefined) on a prepared
 * instance: the result set JSON text in *result. The heap is reset first, so a prepared
 * instance serves any number of evaluations. PW_EINVALID "opa_abort: MSG" when the module
 * aborted; PW_ETRAP / PW_ETIMEOUT from the engine (the instance must then be discarded). */
int pw_opa_evaluate(pw_opa_call *oc, pw_instance *inst, int32_t entrypoint, const char *input,
                    size_t input_len, pw_buf *result);

/* Go's strconv.FormatFloat(v, 'g', -1, 64) (1.5, 1e+06) appended to b. */
void pw_opa_format_float(pw_buf *b, double v);
/* Go's strconv.Quote of s (what OPA prints for a string inside a composite value). */
int pw_opa_go_quote(pw_buf *b, const char *s, size_t len);

#endif
