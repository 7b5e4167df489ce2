/*
 * The OPA WebAssembly ABI (OPA's docs, "WebAssembly": exports, imports, ABI 1.0-1.3): what
 * a module compiled with `opa build -t wasm` imports from the host (env.memory, provided
 * per instance by the engine; env.opa_abort, env.opa_println, env.opa_builtin0..4), and
 * the driver of one evaluation on an instance.
 *
 * A pw_opa describes a loaded Rego module: its ABI version (the exported globals
 * opa_wasm_abi_version / opa_wasm_abi_minor_version), the builtin ids its `builtins` export
 * maps to names (every one must be a builtin Prewarm implements, else the module is refused
 * naming them) and its `entrypoints`. One evaluation, as OPA's SDKs do it:
 *   data  = opa_malloc + copy + opa_json_parse of the data JSON   (after the {} the SDKs load)
 *   heap  = opa_heap_ptr_get()                (the per-request heap restore point)
 *   ABI >= 1.2 with opa_eval: input copied into an opa_malloc'd block, then
 *     opa_eval(0, entrypoint, data, input, input_len, heap_ptr_get(), 0) -> result JSON text
 *   else: opa_heap_ptr_set(heap), input parsed like data, opa_eval_ctx_new, _set_input,
 *     _set_data, _set_entrypoint, eval(ctx), opa_json_dump(opa_eval_ctx_get_result(ctx)).
 * The result set is the JSON text the SDKs return: `[{"result": ...}]`, `[]` when undefined.
 *
 * Builtin calls (opa_builtinN) dump each argument with opa_json_dump, call the builtin
 * (opa_builtins.c), and load the result back with opa_malloc + opa_json_parse; an error or
 * an undefined result answers 0 (the expression is undefined). opa_abort stops the
 * evaluation with the module's message (PW_EABORT-like: PW_EINVALID with "opa_abort: MSG").
 * Guest memory is outside input: every address is checked against the current memory, and
 * strings read from it are bounded.
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"
#include "host/opa_internal.h"

/* Upper bound on a string the guest hands over (a dumped result, an abort message). */
#define MAX_GUEST_STRING (64u << 20)
/* Initial pages of the memory each instance gets as env.memory (OPA's SDKs and burrego: 5). */
#define OPA_MEMORY_PAGES 5
#define OPA_ABORT_PREFIX "opa_abort: "

struct pw_opa {
	pw_artifact *artifact;
	char *what;
	uint32_t abi_major, abi_minor;
	bool fast;                        /* opa_eval (ABI 1.2+) */
	const pw_opa_builtin **builtins;  /* by id; NULL where the module has no builtin */
	size_t nbuiltins;
	json_t *entrypoints;              /* {"name": id} */
};

/* ---- guest memory and calls -------------------------------------------------------------- */

static pw_host_call *call_of(pw_instance *inst)
{
	pw_host_call *c = pw_instance_host_data(inst);
	if (!c || !c->opa)
		pw_instance_trap(inst, "OPA import called on an instance without an OPA host");
	return c;
}

/* The NUL-terminated string at addr, copied into b (with its NUL). PW_EINVALID when it runs
 * past the memory or MAX_GUEST_STRING. */
static int read_cstring(pw_instance *inst, uint32_t addr, pw_buf *b)
{
	uint64_t size;
	const uint8_t *m = pw_instance_memory(inst, &size);
	pw_buf_clear(b);
	if (!m || addr >= size)
		return pw_error_set(PW_EINVALID, "OPA: string address %u out of bounds", addr);
	uint64_t avail = size - addr;
	if (avail > MAX_GUEST_STRING)
		avail = MAX_GUEST_STRING;
	const uint8_t *nul = memchr(m + addr, 0, (size_t)avail);
	if (!nul)
		return pw_error_set(PW_EINVALID, "OPA: string at %u is not terminated within bounds", addr);
	size_t len = (size_t)(nul - (m + addr));
	if (pw_buf_append(b, m + addr, len) < 0 || pw_buf_append(b, "", 1) < 0)
		return pw_error_set(PW_ENOMEM, "OPA: out of memory");
	b->len--;   /* keep the NUL out of the length */
	return 0;
}

static int call_u32(pw_instance *inst, const char *fn, const pw_val *args, size_t n, uint32_t *ret)
{
	pw_val r = 0;
	int rc = pw_instance_call(inst, fn, args, n, ret ? &r : NULL, ret ? 1 : 0);
	if (rc < 0)
		return rc;
	if (ret)
		*ret = (uint32_t)r;
	return 0;
}

/* opa_malloc(len) + copy + opa_json_parse: the value's address. */
static int load_json(pw_instance *inst, const char *text, size_t len, uint32_t *value)
{
	if (len > UINT32_MAX / 2)
		return pw_error_set(PW_EINVALID, "OPA: JSON of %zu bytes is too large", len);
	uint32_t addr;
	pw_val a = len;
	int rc = call_u32(inst, "opa_malloc", &a, 1, &addr);
	if (rc < 0)
		return rc;
	if (!pw_instance_mem_ok(inst, addr, len))
		return pw_error_set(PW_EINVALID, "OPA: opa_malloc returned %u, out of bounds for %zu bytes", addr, len);
	uint64_t size;
	uint8_t *m = pw_instance_memory(inst, &size);
	if (len)
		memcpy(m + addr, text, len);
	pw_val pa[2] = { addr, len };
	if ((rc = call_u32(inst, "opa_json_parse", pa, 2, value)) < 0)
		return rc;
	if (*value == 0)
		return pw_error_set(PW_EINVALID, "OPA: opa_json_parse failed to parse the JSON value");
	return 0;
}

/* opa_json_dump(value) read back into b. */
static int dump_json(pw_instance *inst, uint32_t value, pw_buf *b)
{
	uint32_t s;
	pw_val a = value;
	int rc = call_u32(inst, "opa_json_dump", &a, 1, &s);
	if (rc < 0)
		return rc;
	return read_cstring(inst, s, b);
}

static int dump_parsed(pw_instance *inst, uint32_t value, json_t **out)
{
	pw_buf b = PW_BUF_INIT;
	int rc = dump_json(inst, value, &b);
	if (rc == 0) {
		json_error_t e;
		*out = json_loadb(b.data ? (const char *)b.data : "", b.len, JSON_DECODE_ANY, &e);
		if (!*out)
			rc = pw_error_set(PW_EINVALID, "OPA: the module dumped a value that is not JSON: %s", e.text);
	}
	pw_buf_free(&b);
	return rc;
}

/* ---- the imports --------------------------------------------------------------------------- */

static void h_opa_abort(pw_instance *inst, uint32_t addr)
{
	pw_host_call *c = call_of(inst);
	pw_buf msg = PW_BUF_INIT;
	if (read_cstring(inst, addr, &msg) < 0)
		pw_buf_puts(&msg, "(unreadable message)");
	pw_buf_clear(&c->opa->abort_message);
	pw_buf_append(&c->opa->abort_message, msg.data, msg.len);
	pw_buf_append(&c->opa->abort_message, "", 1);
	c->opa->aborted = true;
	pw_buf_free(&msg);
	pw_instance_trap(inst, "opa_abort");
}

static void h_opa_println(pw_instance *inst, uint32_t addr)
{
	pw_host_call *c = call_of(inst);
	pw_buf msg = PW_BUF_INIT;
	if (read_cstring(inst, addr, &msg) == 0)
		pw_info(c->log_tag, "%s", (const char *)msg.data);
	pw_buf_free(&msg);
}

static uint32_t builtin_call(pw_instance *inst, uint32_t id, const uint32_t *argv, size_t nargs)
{
	pw_host_call *c = call_of(inst);
	const pw_opa *o = c->opa->opa;
	const pw_opa_builtin *b = id < o->nbuiltins ? o->builtins[id] : NULL;
	if (!b)
		pw_instance_trap(inst, "opa_builtin: unknown builtin id");
	json_t *args[4] = { 0 };
	int rc = 0;
	for (size_t i = 0; i < nargs && rc == 0; i++)
		rc = dump_parsed(inst, argv[i], &args[i]);
	json_t *res = NULL;
	if (rc == 0) {
		rc = pw_opa_builtin_call(b, &c->opa->bctx, args, nargs, &res);
		if (rc < 0)
			pw_debug(c->log_tag, "builtin %s: %s (the expression is undefined)", b->name, pw_error_last());
	} else if (pw_error_last_code() == PW_ETRAP || pw_error_last_code() == PW_ETIMEOUT) {
		for (size_t i = 0; i < nargs; i++)
			json_decref(args[i]);
		pw_instance_trap(inst, "opa_builtin: the module trapped while dumping an argument");
	}
	for (size_t i = 0; i < nargs; i++)
		json_decref(args[i]);
	if (rc < 0 || !res) {
		json_decref(res);
		return 0;
	}
	char *text = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(res);
	if (!text)
		pw_instance_trap(inst, "opa_builtin: host out of memory");
	uint32_t value = 0;
	rc = load_json(inst, text, strlen(text), &value);
	free(text);
	if (rc < 0)
		pw_instance_trap(inst, "opa_builtin: could not load the builtin's result into the module");
	return value;
}

static uint32_t h_builtin0(pw_instance *inst, uint32_t id, uint32_t ctx)
{
	return builtin_call(inst, id, NULL, 0);
}

static uint32_t h_builtin1(pw_instance *inst, uint32_t id, uint32_t ctx, uint32_t a)
{
	uint32_t v[] = { a };
	return builtin_call(inst, id, v, 1);
}

static uint32_t h_builtin2(pw_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b)
{
	uint32_t v[] = { a, b };
	return builtin_call(inst, id, v, 2);
}

static uint32_t h_builtin3(pw_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t v[] = { a, b, c };
	return builtin_call(inst, id, v, 3);
}

static uint32_t h_builtin4(pw_instance *inst, uint32_t id, uint32_t ctx, uint32_t a, uint32_t b, uint32_t c,
                           uint32_t d)
{
	uint32_t v[] = { a, b, c, d };
	return builtin_call(inst, id, v, 4);
}

#define F(m, n, s, f) { m, n, s, (void (*)(void))(f) }
const pw_host_func pw_host_opa_funcs[] = {
	F("env", "opa_abort", "i:", h_opa_abort),
	F("env", "opa_println", "i:", h_opa_println),
	F("env", "opa_builtin0", "ii:i", h_builtin0),
	F("env", "opa_builtin1", "iii:i", h_builtin1),
	F("env", "opa_builtin2", "iiii:i", h_builtin2),
	F("env", "opa_builtin3", "iiiii:i", h_builtin3),
	F("env", "opa_builtin4", "iiiiii:i", h_builtin4),
};
#undef F
const size_t pw_host_opa_nfuncs = sizeof pw_host_opa_funcs / sizeof pw_host_opa_funcs[0];

int pw_host_opa_add_imports(pw_imports *im)
{
	if (pw_imports_add_all(im, pw_host_opa_funcs, pw_host_opa_nfuncs) < 0)
		return PW_ENOMEM;
	return pw_imports_add_memory(im, "env", "memory", OPA_MEMORY_PAGES, PW_NO_MAX);
}

/* ---- describing a module ------------------------------------------------------------------- */

bool pw_opa_is_rego(const pw_artifact *a)
{
	return pw_artifact_find_func(a, "opa_eval_ctx_new") && pw_artifact_find_func(a, "builtins") &&
	       pw_artifact_find_func(a, "entrypoints");
}

static const char *const required_exports[] = {
	"opa_malloc", "opa_json_parse", "opa_json_dump", "opa_heap_ptr_get", "opa_heap_ptr_set",
	"opa_eval_ctx_new", "opa_eval_ctx_set_input", "opa_eval_ctx_set_data",
	"opa_eval_ctx_set_entrypoint", "opa_eval_ctx_get_result", "eval", "builtins", "entrypoints",
};

static int read_abi_version(pw_opa *o, pw_instance *inst)
{
	pw_global *maj = pw_instance_export_global(inst, "opa_wasm_abi_version");
	pw_global *min = pw_instance_export_global(inst, "opa_wasm_abi_minor_version");
	/* OPA's SDKs accept modules without the globals (ABI 1.0 before they existed) */
	o->abi_major = maj ? (uint32_t)pw_global_get(maj) : 1;
	o->abi_minor = min ? (uint32_t)pw_global_get(min) : 0;
	if (o->abi_major != 1)
		return pw_error_set(PW_EUNSUPPORTED, "%s: OPA wasm ABI version %u is not supported (only 1.x)",
		                    o->what, o->abi_major);
	o->fast = o->abi_minor >= 2 && pw_artifact_find_func(o->artifact, "opa_eval");
	return 0;
}

static int read_builtins(pw_opa *o, pw_instance *inst)
{
	uint32_t addr;
	json_t *map = NULL;
	int rc = call_u32(inst, "builtins", NULL, 0, &addr);
	if (rc == 0)
		rc = dump_parsed(inst, addr, &map);
	if (rc < 0)
		return pw_error_prefix("%s: reading the builtins table", o->what);
	if (!json_is_object(map)) {
		json_decref(map);
		return pw_error_set(PW_EINVALID, "%s: the builtins table is not a JSON object", o->what);
	}
	size_t max = 0;
	const char *name;
	json_t *id;
	json_object_foreach(map, name, id) {
		if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > 65535) {
			json_decref(map);
			return pw_error_set(PW_EINVALID, "%s: builtin %s has no valid id", o->what, name);
		}
		if ((size_t)json_integer_value(id) + 1 > max)
			max = (size_t)json_integer_value(id) + 1;
	}
	o->builtins = calloc(max ? max : 1, sizeof *o->builtins);
	o->nbuiltins = max;
	pw_buf missing = PW_BUF_INIT;
	json_object_foreach(map, name, id) {
		const pw_opa_builtin *b = pw_opa_builtin_find(name);
		if (!b)
			pw_buf_printf(&missing, "%s%s", missing.len ? ", " : "", name);
		else if (o->builtins)
			o->builtins[json_integer_value(id)] = b;
	}
	json_decref(map);
	if (!o->builtins) {
		pw_buf_free(&missing);
		return pw_error_set(PW_ENOMEM, "%s: out of memory", o->what);
	}
	if (missing.len) {
		rc = pw_error_set(PW_EUNSUPPORTED, "%s: the module calls builtins Prewarm does not implement: %.*s",
		                  o->what, (int)missing.len, (const char *)missing.data);
		pw_buf_free(&missing);
		return rc;
	}
	return 0;
}

int pw_opa_new(pw_opa **out, pw_artifact *a, const char *what)
{
	*out = NULL;
	for (size_t i = 0; i < sizeof required_exports / sizeof required_exports[0]; i++)
		if (!pw_artifact_find_func(a, required_exports[i]))
			return pw_error_set(PW_EINVALID, "%s: not an OPA module: no %s export", what,
			                    required_exports[i]);
	pw_opa *o = calloc(1, sizeof *o);
	if (!o || !(o->what = strdup(what))) {
		free(o);
		return pw_error_set(PW_ENOMEM, "%s: out of memory", what);
	}
	o->artifact = a;
	pw_host_call c;
	pw_host_call_init(&c, NULL, what);
	pw_opa_call oc = { .opa = o, .bctx = { .log_tag = c.log_tag } };
	c.opa = &oc;
	pw_instance *inst = NULL;
	pw_instance_opts io = { .host_data = &c };
	int rc = pw_instance_new(&inst, a, &io);
	if (rc < 0)
		rc = pw_error_prefix("%s: instantiate", what);
	if (rc == 0)
		rc = read_abi_version(o, inst);
	if (rc == 0)
		rc = read_builtins(o, inst);
	if (rc == 0) {
		uint32_t addr;
		rc = call_u32(inst, "entrypoints", NULL, 0, &addr);
		if (rc == 0)
			rc = dump_parsed(inst, addr, &o->entrypoints);
		if (rc < 0)
			rc = pw_error_prefix("%s: reading the entrypoints", what);
		else if (!json_is_object(o->entrypoints))
			rc = pw_error_set(PW_EINVALID, "%s: the entrypoints table is not a JSON object", what);
	}
	pw_instance_free(inst);
	pw_buf_free(&oc.abort_message);
	pw_host_call_free(&c);
	if (rc < 0) {
		pw_opa_free(o);
		return rc;
	}
	pw_debug("host", "%s: OPA ABI %u.%u (%s), %zu builtin ids, %zu entrypoints", what, o->abi_major,
	         o->abi_minor, o->fast ? "opa_eval" : "eval context", o->nbuiltins,
	         json_object_size(o->entrypoints));
	*out = o;
	return 0;
}

void pw_opa_free(pw_opa *o)
{
	if (!o)
		return;
	free(o->builtins);
	json_decref(o->entrypoints);
	free(o->what);
	free(o);
}

void pw_opa_abi_version(const pw_opa *o, uint32_t *major, uint32_t *minor)
{
	*major = o->abi_major;
	*minor = o->abi_minor;
}

const json_t *pw_opa_entrypoints(const pw_opa *o) { return o->entrypoints; }

int pw_opa_entrypoint_id(const pw_opa *o, const char *name, int32_t *id)
{
	const json_t *v = json_object_get(o->entrypoints, name);
	if (!json_is_integer(v)) {
		char *all = json_dumps(o->entrypoints, JSON_COMPACT | JSON_SORT_KEYS);
		int rc = pw_error_set(PW_ENOTFOUND, "%s: no entrypoint '%s' (the module has %s)", o->what, name,
		                      all ? all : "?");
		free(all);
		return rc;
	}
	*id = (int32_t)json_integer_value(v);
	return 0;
}

/* ---- evaluating ------------------------------------------------------------------------------- */

/* The error of a failed call into the module: the abort message when it aborted. */
static int eval_error(pw_opa_call *oc, int rc)
{
	if (oc->aborted)
		return pw_error_set(PW_EINVALID, OPA_ABORT_PREFIX "%s", (const char *)oc->abort_message.data);
	return rc;
}

int pw_opa_prepare(pw_opa_call *oc, pw_instance *inst, const char *data, size_t data_len)
{
	uint32_t empty, heap;
	int rc = load_json(inst, "{}", 2, &empty);   /* what the SDKs load first */
	if (rc == 0)
		rc = call_u32(inst, "opa_heap_ptr_get", NULL, 0, &heap);
	if (rc == 0) {
		pw_val h = heap;
		rc = call_u32(inst, "opa_heap_ptr_set", &h, 1, NULL);
	}
	if (rc == 0)
		rc = load_json(inst, data && data_len ? data : "{}", data && data_len ? data_len : 2, &oc->data_addr);
	if (rc == 0)
		rc = call_u32(inst, "opa_heap_ptr_get", NULL, 0, &oc->data_heap_ptr);
	if (rc < 0)
		return pw_error_prefix("%s: loading data", oc->opa->what);
	oc->prepared = true;
	return 0;
}

int pw_opa_evaluate(pw_opa_call *oc, pw_instance *inst, int32_t entrypoint, const char *input,
                    size_t input_len, pw_buf *result)
{
	const pw_opa *o = oc->opa;
	pw_buf_clear(result);
	oc->aborted = false;
	oc->bctx.now_ns = 0;
	pw_val h = oc->data_heap_ptr;
	int rc = call_u32(inst, "opa_heap_ptr_set", &h, 1, NULL);   /* the per-request restore */
	if (rc < 0)
		return eval_error(oc, rc);
	if (o->fast) {
		uint32_t in_addr = 0, heap, res;
		if (input_len > UINT32_MAX / 2)
			return pw_error_set(PW_EINVALID, "%s: input of %zu bytes is too large", o->what, input_len);
		if (input_len) {
			pw_val n = input_len;
			if ((rc = call_u32(inst, "opa_malloc", &n, 1, &in_addr)) < 0)
				return eval_error(oc, rc);
			if (!pw_instance_mem_ok(inst, in_addr, input_len))
				return pw_error_set(PW_EINVALID, "%s: opa_malloc returned an out-of-bounds block", o->what);
			uint64_t size;
			memcpy(pw_instance_memory(inst, &size) + in_addr, input, input_len);
		}
		if ((rc = call_u32(inst, "opa_heap_ptr_get", NULL, 0, &heap)) < 0)
			return eval_error(oc, rc);
		pw_val args[7] = { 0, (uint32_t)entrypoint, oc->data_addr, in_addr, input_len, heap, 0 };
		if ((rc = call_u32(inst, "opa_eval", args, 7, &res)) < 0)
			return eval_error(oc, rc);
		if ((rc = read_cstring(inst, res, result)) < 0)
			return rc;
	} else {
		uint32_t in_addr = 0, ctx, res;
		if (input && (rc = load_json(inst, input, input_len, &in_addr)) < 0)
			return eval_error(oc, rc);
		if ((rc = call_u32(inst, "opa_eval_ctx_new", NULL, 0, &ctx)) < 0)
			return eval_error(oc, rc);
		pw_val a_in[2] = { ctx, in_addr }, a_data[2] = { ctx, oc->data_addr },
		       a_ep[2] = { ctx, (uint32_t)entrypoint }, a_ctx = ctx;
		if ((input && (rc = call_u32(inst, "opa_eval_ctx_set_input", a_in, 2, NULL)) < 0) ||
		    (rc = call_u32(inst, "opa_eval_ctx_set_data", a_data, 2, NULL)) < 0 ||
		    (rc = call_u32(inst, "opa_eval_ctx_set_entrypoint", a_ep, 2, NULL)) < 0 ||
		    (rc = call_u32(inst, "eval", &a_ctx, 1, NULL)) < 0 ||
		    (rc = call_u32(inst, "opa_eval_ctx_get_result", &a_ctx, 1, &res)) < 0)
			return eval_error(oc, rc);
		if ((rc = dump_json(inst, res, result)) < 0)
			return eval_error(oc, rc);
	}
	return 0;
}

void pw_opa_call_init(pw_opa_call *oc, const pw_opa *o, const char *log_tag)
{
	memset(oc, 0, sizeof *oc);
	oc->opa = o;
	oc->bctx.log_tag = log_tag;
}

void pw_opa_call_free(pw_opa_call *oc)
{
	pw_buf_free(&oc->abort_message);
}
