/*
 * The WebAssembly core spec-test runner: drives one .wast file of the official testsuite
 * through the Prewarm engine, so the engine (wasm2c + cc + our runtime + the artifact
 * loader) is held to the same semantics as every other WebAssembly implementation.
 *
 * The .wast script is first turned into JSON plus one .wasm per module by wabt's
 * `wast2json`; this program then reads the JSON (jansson) and runs its commands in order:
 *   module                 pw_engine_compile, pw_artifact_load, pw_instance_new
 *   register               the module's functions become importable under that name
 *   assert_return, action  pw_instance_call, results compared bit-exactly (nan:canonical and
 *                          nan:arithmetic by their bit patterns)
 *   assert_trap/exhaustion PW_ETRAP with a reason of the expected family
 *   (a trap is checked by family, not text: see trap_family_of)
 *   assert_invalid, assert_malformed
 *                          the module must be refused by pw_engine_check, wasm-validate,
 *                          pw_engine_compile, pw_artifact_load or pw_instance_new
 *   assert_unlinkable      refused for its imports (PW_EUNSUPPORTED / PW_ENOTFOUND)
 *   assert_uninstantiable  compiled and loaded, then refused by pw_instance_new
 * Modules are compiled up front (optionally on several threads, --jobs) at -O0 by default:
 * the spec modules are tiny and numerous, so compile time dominates.
 *
 * Every command is counted exactly once as passed, failed or skipped; a skip always carries
 * a written reason (printed in the summary), a failure its line in the .wast file. The
 * spectest module's functions, globals, table and memory are real host objects (one of
 * each for the whole script, as one spectest instance). Functions imported from a
 * registered module are bound to static trampolines that forward to the exporting
 * instance (see link_imports); its memories, tables and globals are bound directly, from
 * the exporting instance's exports (see bind_linked_externs), when the importing module
 * is loaded. When a skipped command could have changed a module's state, later failures
 * on it say so.
 *
 * Usage: spec_runner [--opt LEVEL] [--jobs N] [--allow-unsupported] [--keep] [-v]
 *                    (--name NAME | FILE.wast | FILE.json)
 * A module the engine refuses as unsupported is a failure, unless --allow-unsupported (then a
 * skip with the engine's reason), which is for exploring files beyond the required ones.
 * --name NAME runs $PREWARM_TESTSUITE/NAME.wast and exits 77 (skipped) when PREWARM_TESTSUITE
 * is unset. Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prewarm/common.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"
#include "prewarm/wasm.h"

extern char **environ;

/* ---- options and counters ------------------------------------------------------------- */

static struct {
	const char *opt_level;
	unsigned jobs;
	bool keep;
	bool verbose;
	bool allow_unsupported;
} g_opt = { "-O0", 1, false, false, false };

static const char *g_file = "";   /* the .wast name used in messages */
static unsigned g_passed, g_failed, g_skipped;

#define MAX_REASONS 64
static struct {
	char *reason;
	unsigned count;
} g_reasons[MAX_REASONS];
static unsigned g_nreasons, g_other_reasons;

/* Refusals of invalid/malformed/unlinkable/uninstantiable modules, by the stage that refused. */
enum { ST_CHECK, ST_VALIDATE, ST_COMPILE, ST_LOAD, ST_INSTANTIATE, ST_N };
static const char *const stage_names[ST_N] = {
	"pw_engine_check", "wasm-validate", "pw_engine_compile", "pw_artifact_load", "pw_instance_new",
};
static unsigned g_refused_by[ST_N];

static double g_compile_seconds;   /* summed over modules (wall time of the compile phase apart) */
static unsigned g_compiled;

static void pass(void)
{
	g_passed++;
}

static void fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appended to failures while set: why a result may be off for reasons of the harness. */
static char g_fail_note[320];

static void fail(int line, const char *fmt, ...)
{
	va_list ap;
	g_failed++;
	fprintf(stdout, "FAIL %s:%d: ", g_file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fprintf(stdout, "%s\n", g_fail_note);
}

/* Counts a skip under its reason (reasons are aggregated for the summary). */
static void skip(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(int line, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	g_skipped++;
	if (g_opt.verbose)
		printf("skip %s:%d: %s\n", g_file, line, why);
	for (unsigned i = 0; i < g_nreasons; i++) {
		if (strcmp(g_reasons[i].reason, why) == 0) {
			g_reasons[i].count++;
			return;
		}
	}
	if (g_nreasons == MAX_REASONS) {
		g_other_reasons++;
		return;
	}
	g_reasons[g_nreasons].reason = strdup(why);
	g_reasons[g_nreasons].count = 1;
	if (g_reasons[g_nreasons].reason)
		g_nreasons++;
	else
		g_other_reasons++;
}

/* ---- subprocesses --------------------------------------------------------------------- */

/* Runs argv (PATH lookup); quiet sends stdout/stderr to /dev/null. Returns the exit status,
 * 128+signal when killed, or -1 when it could not be started (message set). */
static int run_tool(char *const argv[], bool quiet)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;

	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return pw_error_set_errno(PW_ERROR, "posix_spawnp %s", argv[0]), -1;
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return pw_error_set_errno(PW_ERROR, "waitpid %s", argv[0]), -1;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- values --------------------------------------------------------------------------- */

typedef enum { NAN_NONE = 0, NAN_CANONICAL, NAN_ARITHMETIC } nan_kind;

typedef struct spec_val {
	uint8_t type;      /* PW_WASM_I32.. F64 */
	nan_kind nan;
	uint64_t bits;
} spec_val;

static uint8_t type_code(const char *t)
{
	if (strcmp(t, "i32") == 0) return PW_WASM_I32;
	if (strcmp(t, "i64") == 0) return PW_WASM_I64;
	if (strcmp(t, "f32") == 0) return PW_WASM_F32;
	if (strcmp(t, "f64") == 0) return PW_WASM_F64;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/*
 * Parses one {"type": .., "value": ..} of the JSON. Returns 0; 1 when the value is of a
 * kind the harness skips (v128, references: *what says which); -1 when the JSON is bad.
 */
static int parse_val(json_t *jv, spec_val *out, const char **what)
{
	const char *t = json_string_value(json_object_get(jv, "type"));
	json_t *jval = json_object_get(jv, "value");
	const char *v = json_string_value(jval);

	memset(out, 0, sizeof *out);
	if (!t)
		return -1;
	out->type = type_code(t);
	if (!out->type) {
		*what = strcmp(t, "v128") == 0 ? "v128" : "reference";
		return 1;
	}
	if (!v)
		return -1;
	if (strcmp(v, "nan:canonical") == 0 && (out->type == PW_WASM_F32 || out->type == PW_WASM_F64)) {
		out->nan = NAN_CANONICAL;
		return 0;
	}
	if (strcmp(v, "nan:arithmetic") == 0 && (out->type == PW_WASM_F32 || out->type == PW_WASM_F64)) {
		out->nan = NAN_ARITHMETIC;
		return 0;
	}
	if (parse_u64(v, &out->bits) != 0)
		return -1;
	if ((out->type == PW_WASM_I32 || out->type == PW_WASM_F32) && out->bits > UINT32_MAX)
		return -1;
	return 0;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return "i32";
	case PW_WASM_I64: return "i64";
	case PW_WASM_F32: return "f32";
	case PW_WASM_F64: return "f64";
	default: return "?";
	}
}

/* "i32:0x0000002a (42)", "f32:0x3f800000 (1)" into buf. */
static const char *fmt_val(uint8_t type, uint64_t bits, char *buf, size_t n)
{
	switch (type) {
	case PW_WASM_I32:
		snprintf(buf, n, "i32:0x%08" PRIx32 " (%" PRId32 ")", (uint32_t)bits, (int32_t)(uint32_t)bits);
		break;
	case PW_WASM_I64:
		snprintf(buf, n, "i64:0x%016" PRIx64 " (%" PRId64 ")", bits, (int64_t)bits);
		break;
	case PW_WASM_F32: {
		uint32_t b = (uint32_t)bits;
		float f;
		memcpy(&f, &b, sizeof f);
		snprintf(buf, n, "f32:0x%08" PRIx32 " (%.9g)", b, (double)f);
		break;
	}
	case PW_WASM_F64: {
		double d;
		memcpy(&d, &bits, sizeof d);
		snprintf(buf, n, "f64:0x%016" PRIx64 " (%.17g)", bits, d);
		break;
	}
	default:
		snprintf(buf, n, "?:0x%" PRIx64, bits);
	}
	return buf;
}

static const char *fmt_expected(const spec_val *v, char *buf, size_t n)
{
	if (v->nan == NAN_CANONICAL)
		snprintf(buf, n, "%s:nan:canonical", type_name(v->type));
	else if (v->nan == NAN_ARITHMETIC)
		snprintf(buf, n, "%s:nan:arithmetic", type_name(v->type));
	else
		fmt_val(v->type, v->bits, buf, n);
	return buf;
}

/* Bit-exact comparison; NaN classes by the spec's definitions (canonical: only the top
 * payload bit set; arithmetic: the top payload bit set, any sign). */
static bool val_matches(const spec_val *want, pw_val got)
{
	switch (want->type) {
	case PW_WASM_I32:
		return (uint32_t)got == (uint32_t)want->bits;
	case PW_WASM_I64:
		return got == want->bits;
	case PW_WASM_F32: {
		uint32_t b = (uint32_t)got;
		if (want->nan == NAN_CANONICAL)
			return (b & 0x7fffffffu) == 0x7fc00000u;
		if (want->nan == NAN_ARITHMETIC)
			return (b & 0x7fc00000u) == 0x7fc00000u;
		return b == (uint32_t)want->bits;
	}
	case PW_WASM_F64:
		if (want->nan == NAN_CANONICAL)
			return (got & 0x7fffffffffffffffull) == 0x7ff8000000000000ull;
		if (want->nan == NAN_ARITHMETIC)
			return (got & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
		return got == want->bits;
	}
	return false;
}

/* ---- trap families -------------------------------------------------------------------- */

/*
 * Reason texts differ between implementations ("integer divide by zero" in the testsuite,
 * whatever the runtime says), so both sides are mapped to a family. The three call_indirect
 * failures (index outside the table, null entry, signature mismatch) are told apart: the
 * engine patches wasm2c's single WASM_RT_TRAP_CALL_INDIRECT into the spec's three reasons.
 * wasm2c's WASM_RT_TRAP_OOB covers linear memory and tables alike, so "out of bounds table
 * access" and "out of bounds memory access" are one family.
 */
typedef enum {
	TF_UNKNOWN = 0, TF_UNREACHABLE, TF_MEMORY_OOB, TF_DIV_ZERO, TF_INT_OVERFLOW,
	TF_CONVERSION, TF_UNDEFINED_ELEMENT, TF_UNINITIALIZED_ELEMENT, TF_INDIRECT_MISMATCH,
	TF_EXHAUSTION,
} trap_family;

static const char *const family_names[] = {
	"unknown", "unreachable", "out of bounds memory or table access", "integer divide by zero",
	"integer overflow", "invalid conversion to integer", "undefined element",
	"uninitialized element", "indirect call type mismatch", "call stack exhausted",
};

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static trap_family trap_family_of(const char *text)
{
	char low[256];
	size_t i;
	for (i = 0; text[i] && i + 1 < sizeof low; i++)
		low[i] = (char)tolower((unsigned char)text[i]);
	low[i] = 0;
	if (has(low, "exhaust") || has(low, "stack overflow"))
		return TF_EXHAUSTION;
	if (has(low, "unreachable"))
		return TF_UNREACHABLE;
	if (has(low, "undefined element"))
		return TF_UNDEFINED_ELEMENT;
	if (has(low, "uninitialized element") || has(low, "null element"))
		return TF_UNINITIALIZED_ELEMENT;
	if (has(low, "indirect call") || has(low, "signature mismatch"))
		return TF_INDIRECT_MISMATCH;
	if (has(low, "out of bounds") || has(low, "out-of-bounds") || has(low, "memory access"))
		return TF_MEMORY_OOB;
	if (has(low, "divide by zero") || has(low, "division by zero"))
		return TF_DIV_ZERO;
	if (has(low, "overflow"))
		return TF_INT_OVERFLOW;
	if (has(low, "conversion"))
		return TF_CONVERSION;
	return TF_UNKNOWN;
}

/* ---- the spectest host module --------------------------------------------------------- */

static void st_print(pw_instance *inst)
{
	printf("spectest.print()\n");
}

static void st_print_i32(pw_instance *inst, uint32_t a)
{
	printf("spectest.print_i32(%" PRId32 ")\n", (int32_t)a);
}

static void st_print_i64(pw_instance *inst, uint64_t a)
{
	printf("spectest.print_i64(%" PRId64 ")\n", (int64_t)a);
}

static void st_print_f32(pw_instance *inst, float a)
{
	printf("spectest.print_f32(%.9g)\n", (double)a);
}

static void st_print_f64(pw_instance *inst, double a)
{
	printf("spectest.print_f64(%.17g)\n", a);
}

static void st_print_i32_f32(pw_instance *inst, uint32_t a, float b)
{
	printf("spectest.print_i32_f32(%" PRId32 ", %.9g)\n", (int32_t)a, (double)b);
}

static void st_print_f64_f64(pw_instance *inst, double a, double b)
{
	printf("spectest.print_f64_f64(%.17g, %.17g)\n", a, b);
}

/* The spectest module's memory, table and globals (the values of the reference
 * interpreter's spectest: 666 and 666.6), made once (spectest_objects_new). */
static struct {
	pw_memory *memory;
	pw_table *table;
	pw_global *g_i32, *g_i64, *g_f32, *g_f64;
} g_st;

static int spectest_objects_new(void)
{
	float f = 666.6f;
	double d = 666.6;
	uint32_t fb;
	uint64_t db;
	memcpy(&fb, &f, sizeof fb);
	memcpy(&db, &d, sizeof db);
	int rc;
	if ((rc = pw_memory_new(&g_st.memory, 1, 2)) < 0 || (rc = pw_table_new(&g_st.table, 10, 20)) < 0 ||
	    (rc = pw_global_new(&g_st.g_i32, PW_WASM_I32, false, 666)) < 0 ||
	    (rc = pw_global_new(&g_st.g_i64, PW_WASM_I64, false, 666)) < 0 ||
	    (rc = pw_global_new(&g_st.g_f32, PW_WASM_F32, false, fb)) < 0 ||
	    (rc = pw_global_new(&g_st.g_f64, PW_WASM_F64, false, db)) < 0)
		return rc;
	return 0;
}

static void spectest_objects_free(void)
{
	pw_memory_free(g_st.memory);
	pw_table_free(g_st.table);
	pw_global_free(g_st.g_i32);
	pw_global_free(g_st.g_i64);
	pw_global_free(g_st.g_f32);
	pw_global_free(g_st.g_f64);
}

static int spectest_add(pw_imports *im)
{
	int rc;
	if ((rc = pw_imports_bind_memory(im, "spectest", "memory", g_st.memory)) < 0 ||
	    (rc = pw_imports_bind_table(im, "spectest", "table", g_st.table)) < 0 ||
	    (rc = pw_imports_bind_global(im, "spectest", "global_i32", g_st.g_i32)) < 0 ||
	    (rc = pw_imports_bind_global(im, "spectest", "global_i64", g_st.g_i64)) < 0 ||
	    (rc = pw_imports_bind_global(im, "spectest", "global_f32", g_st.g_f32)) < 0 ||
	    (rc = pw_imports_bind_global(im, "spectest", "global_f64", g_st.g_f64)) < 0)
		return rc;
	const pw_host_func funcs[] = {
		{ "spectest", "print", ":", (void (*)(void))st_print },
		{ "spectest", "print_i32", "i:", (void (*)(void))st_print_i32 },
		{ "spectest", "print_i64", "I:", (void (*)(void))st_print_i64 },
		{ "spectest", "print_f32", "f:", (void (*)(void))st_print_f32 },
		{ "spectest", "print_f64", "F:", (void (*)(void))st_print_f64 },
		{ "spectest", "print_i32_f32", "if:", (void (*)(void))st_print_i32_f32 },
		{ "spectest", "print_f64_f64", "FF:", (void (*)(void))st_print_f64_f64 },
	};
	return pw_imports_add_all(im, funcs, sizeof funcs / sizeof funcs[0]);
}

static int spectest_imports(pw_imports **out)
{
	int rc = pw_imports_new(out);
	if (rc < 0)
		return rc;
	if ((rc = spectest_add(*out)) < 0) {
		pw_imports_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- modules -------------------------------------------------------------------------- */

typedef enum { MS_PENDING = 0, MS_READY, MS_SKIPPED, MS_FAILED } mod_state;

typedef struct runner runner;

typedef struct mod_slot {
	runner *r;
	int line;
	const char *name;        /* "$M" or NULL (borrowed from the JSON) */
	char *path;              /* the .wasm file */
	pw_buf wasm;
	mod_state state;
	char *why;               /* skip/fail reason */
	/* compile phase */
	int compile_rc;
	char *compile_err;
	pw_buf artifact;
	double compile_seconds;
	/* run phase */
	pw_artifact *art;
	pw_instance *inst;
	char taint[120];         /* why its state may differ from the script's ("" if not) */
	struct mod_slot *linked[8]; /* modules whose functions it imports (first 8) */
	unsigned nlinked;
	bool registered;         /* under a `register` name: kept until the end */
	pw_imports *imports;     /* own imports (spectest + linked functions), or NULL */
	bool shares_table;       /* imports a table: its functions may be called through it
	                          * from other modules, so it is kept until the end */
	bool late;               /* imports a memory/table/global of a registered module: bound
	                          * at load (bind_linked_externs), compiled without import check */
} mod_slot;

/* A `register` of a module under a name other modules import from. */
typedef struct reg {
	const char *as;
	mod_slot *slot;
} reg;

struct runner {
	pw_engine *engine;
	pw_imports *imports;
	char *dir;               /* where the JSON and .wasm files are */
	mod_slot *mods;
	size_t nmods;
	size_t nseen;            /* module commands run so far */
	mod_slot *current;
	reg *regs;               /* registrations so far, in order */
	size_t nregs;
	char **names;            /* import names bound into import tables (kept until the end) */
	size_t nnames;
	/* modules that failed to instantiate after writing into an imported table: kept until
	 * the end, as the spec keeps the functions they stored */
	pw_instance **kept;
	pw_artifact **kept_arts;
	size_t nkept;
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p) {
		fprintf(stderr, "spec_runner: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "spec_runner: out of memory\n");
		exit(1);
	}
	return s;
}

/*
 * Looks at a module's imports: returns a malloc'd skip reason when the module imports what
 * the engine does not offer (a table of externref, a global of a reference type), NULL
 * when it can be tried. Parse errors are not judged here.
 */
static char *unsupported_imports(const uint8_t *wasm, size_t len)
{
	pw_wasm_module *m = NULL;
	char *why = NULL;

	if (pw_wasm_parse(&m, wasm, len) < 0) {
		pw_error_clear();
		return NULL;
	}
	for (uint32_t i = 0; i < m->nimports && !why; i++) {
		const pw_wasm_import *im = &m->imports[i];
		bool ref = im->valtype == PW_WASM_FUNCREF || im->valtype == PW_WASM_EXTERNREF;
		if (im->kind == PW_WASM_TABLE && im->valtype != PW_WASM_FUNCREF)
			why = xasprintf("imports a table of %s (%s.%s): the engine imports funcref tables only",
			                pw_wasm_valtype_name(im->valtype), im->module, im->name);
		else if (im->kind == PW_WASM_GLOBAL && ref)
			why = xasprintf("imports a %s global (%s.%s): the engine imports numeric globals only",
			                pw_wasm_valtype_name(im->valtype), im->module, im->name);
	}
	pw_wasm_module_free(m);
	return why;
}

/* The parsed module, or NULL when it does not parse (not judged here: the engine will). */
static pw_wasm_module *parse_quiet(const pw_buf *wasm)
{
	pw_wasm_module *m = NULL;
	if (!wasm->data || pw_wasm_parse(&m, wasm->data, wasm->len) < 0) {
		pw_error_clear();
		return NULL;
	}
	return m;
}

/* True when the module imports a table. */
static bool imports_table(const pw_buf *wasm)
{
	pw_wasm_module *m = parse_quiet(wasm);
	bool found = false;
	if (!m)
		return false;
	for (uint32_t i = 0; i < m->nimports && !found; i++)
		found = m->imports[i].kind == PW_WASM_TABLE;
	pw_wasm_module_free(m);
	return found;
}

static int read_wasm(runner *r, const char *file, pw_buf *out, char **path_out)
{
	char *path = xasprintf("%s/%s", r->dir, file);
	int rc = pw_file_read(path, 0, out);
	if (path_out)
		*path_out = path;
	else
		free(path);
	return rc;
}

/* ---- cross-module function imports (register) ------------------------------------------ */

/*
 * Host functions are plain C functions without a closure, so a function imported from a
 * registered module is bound to a trampoline: a static function that knows its own
 * (signature, slot) and forwards the call to the target instance's export through
 * pw_instance_call (a trap there becomes a trap of the caller, with the same reason).
 * There is one set of LINK_SLOTS trampolines per signature the testsuite's linked imports
 * use; a module needing another signature or more slots is skipped with that reason.
 */
#define LINK_SLOTS 16
static const char *const link_sigs[] = {
	":", ":i", ":I", ":f", ":F", "i:", "I:", "f:", "F:", "i:i", "I:I", "ii:", "ii:i",
};
#define NLINK_SIGS (sizeof link_sigs / sizeof link_sigs[0])

typedef struct link_entry {
	mod_slot *target;
	char *as, *field;        /* the import's module (registered name) and field */
} link_entry;
static link_entry g_links[NLINK_SIGS][LINK_SLOTS];
static unsigned g_nlinks[NLINK_SIGS];

static pw_val link_call(unsigned sig, unsigned k, pw_instance *caller, const pw_val *args,
                        size_t nargs, size_t nres)
{
	link_entry *l = &g_links[sig][k];
	pw_val res = 0;
	if (!l->target || !l->target->inst)
		pw_instance_trap(caller, "spec_runner: the linked module is not instantiated");
	int rc = pw_instance_call(l->target->inst, l->field, args, nargs, &res, nres);
	if (rc == PW_ETRAP)
		pw_instance_trap(caller, pw_instance_trap_reason(l->target->inst));
	if (rc < 0)
		pw_instance_trap(caller, pw_error_last());
	return res;
}

static pw_val f32_val(float f)
{
	uint32_t b;
	memcpy(&b, &f, sizeof b);
	return b;
}

static pw_val f64_val(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof b);
	return b;
}

static float val_f32(pw_val v)
{
	uint32_t b = (uint32_t)v;
	float f;
	memcpy(&f, &b, sizeof f);
	return f;
}

static double val_f64(pw_val v)
{
	double d;
	memcpy(&d, &v, sizeof d);
	return d;
}

/* One trampoline per (signature index, slot K); the order follows link_sigs. */
#define T0(K) static void t0_##K(pw_instance *i) { link_call(0, K, i, NULL, 0, 0); }
#define T1(K) static uint32_t t1_##K(pw_instance *i) { return (uint32_t)link_call(1, K, i, NULL, 0, 1); }
#define T2(K) static uint64_t t2_##K(pw_instance *i) { return link_call(2, K, i, NULL, 0, 1); }
#define T3(K) static float t3_##K(pw_instance *i) { return val_f32(link_call(3, K, i, NULL, 0, 1)); }
#define T4(K) static double t4_##K(pw_instance *i) { return val_f64(link_call(4, K, i, NULL, 0, 1)); }
#define T5(K) static void t5_##K(pw_instance *i, uint32_t a) \
	{ pw_val v[1] = { a }; link_call(5, K, i, v, 1, 0); }
#define T6(K) static void t6_##K(pw_instance *i, uint64_t a) \
	{ pw_val v[1] = { a }; link_call(6, K, i, v, 1, 0); }
#define T7(K) static void t7_##K(pw_instance *i, float a) \
	{ pw_val v[1] = { f32_val(a) }; link_call(7, K, i, v, 1, 0); }
#define T8(K) static void t8_##K(pw_instance *i, double a) \
	{ pw_val v[1] = { f64_val(a) }; link_call(8, K, i, v, 1, 0); }
#define T9(K) static uint32_t t9_##K(pw_instance *i, uint32_t a) \
	{ pw_val v[1] = { a }; return (uint32_t)link_call(9, K, i, v, 1, 1); }
#define T10(K) static uint64_t t10_##K(pw_instance *i, uint64_t a) \
	{ pw_val v[1] = { a }; return link_call(10, K, i, v, 1, 1); }
#define T11(K) static void t11_##K(pw_instance *i, uint32_t a, uint32_t b) \
	{ pw_val v[2] = { a, b }; link_call(11, K, i, v, 2, 0); }
#define T12(K) static uint32_t t12_##K(pw_instance *i, uint32_t a, uint32_t b) \
	{ pw_val v[2] = { a, b }; return (uint32_t)link_call(12, K, i, v, 2, 1); }
#define FOR_SLOTS(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) \
	M(13) M(14) M(15)
FOR_SLOTS(T0) FOR_SLOTS(T1) FOR_SLOTS(T2) FOR_SLOTS(T3) FOR_SLOTS(T4) FOR_SLOTS(T5)
FOR_SLOTS(T6) FOR_SLOTS(T7) FOR_SLOTS(T8) FOR_SLOTS(T9) FOR_SLOTS(T10) FOR_SLOTS(T11)
FOR_SLOTS(T12)
#define TP(n, K) (void (*)(void))t##n##_##K,
#define TROW(n) { TP(n, 0) TP(n, 1) TP(n, 2) TP(n, 3) TP(n, 4) TP(n, 5) TP(n, 6) TP(n, 7) \
	TP(n, 8) TP(n, 9) TP(n, 10) TP(n, 11) TP(n, 12) TP(n, 13) TP(n, 14) TP(n, 15) }
static void (*const link_tramps[NLINK_SIGS][LINK_SLOTS])(void) = {
	TROW(0), TROW(1), TROW(2), TROW(3), TROW(4), TROW(5), TROW(6), TROW(7), TROW(8), TROW(9),
	TROW(10), TROW(11), TROW(12),
};

static mod_slot *reg_lookup(runner *r, const char *as)
{
	for (size_t i = r->nregs; i-- > 0;) {
		if (strcmp(r->regs[i].as, as) == 0)
			return r->regs[i].slot;
	}
	return NULL;
}

static void reg_add(runner *r, const char *as, mod_slot *s)
{
	reg *n = realloc(r->regs, (r->nregs + 1) * sizeof *n);
	if (!n) {
		fprintf(stderr, "spec_runner: out of memory\n");
		exit(1);
	}
	r->regs = n;
	r->regs[r->nregs].as = as;
	r->regs[r->nregs].slot = s;
	r->nregs++;
}

/* The trampoline slot for (sig, target, as, field), allocated on first use; -1 when full. */
static int link_slot(unsigned sig, mod_slot *target, const char *as, const char *field)
{
	for (unsigned k = 0; k < g_nlinks[sig]; k++) {
		link_entry *l = &g_links[sig][k];
		if (l->target == target && strcmp(l->as, as) == 0 && strcmp(l->field, field) == 0)
			return (int)k;
	}
	if (g_nlinks[sig] == LINK_SLOTS)
		return -1;
	link_entry *l = &g_links[sig][g_nlinks[sig]];
	l->target = target;
	l->as = xstrdup(as);
	l->field = xstrdup(field);
	return (int)g_nlinks[sig]++;
}

/* Signature of the function `field` exported by `wasm` into sig; false if none. */
static bool export_sig(const pw_buf *wasm, const char *field, char *sig, size_t n)
{
	pw_wasm_module *m = NULL;
	bool found = false;

	if (!wasm->data || pw_wasm_parse(&m, wasm->data, wasm->len) < 0) {
		pw_error_clear();
		return false;
	}
	const pw_wasm_export *ex = pw_wasm_find_export(m, field, PW_WASM_FUNC);
	const pw_wasm_functype *t = ex ? pw_wasm_func_type(m, ex->index) : NULL;
	if (t) {
		pw_wasm_sig_string(t, sig, n);
		found = true;
	}
	pw_wasm_module_free(m);
	return found;
}

/*
 * The imports a module gets: NULL in *out when it imports nothing from registered modules
 * (then the shared spectest table serves), else a new table with spectest plus one
 * trampoline per function imported from a registered module, resolved against the
 * registrations made so far. An import that does not resolve (no such registration or
 * export, or another signature) is left out, so the engine refuses it as it should.
 * Returns a malloc'd skip reason when the module cannot be linked by the runner.
 */
static char *link_imports(runner *r, const pw_buf *wasm, pw_imports **out, mod_slot *self, bool *late)
{
	pw_wasm_module *m = parse_quiet(wasm);
	pw_imports *im = NULL;
	char *why = NULL;

	*out = NULL;
	*late = false;
	if (!m)
		return NULL;
	for (uint32_t i = 0; i < m->nimports && !why; i++) {
		const pw_wasm_import *imp = &m->imports[i];
		char isig[64], esig[64];
		if (strcmp(imp->module, "spectest") == 0)
			continue;
		mod_slot *t = reg_lookup(r, imp->module);
		if (!t)
			continue;
		if (t->state == MS_SKIPPED) {
			why = xasprintf("imports %s.%s from a module that was skipped", imp->module, imp->name);
			break;
		}
		if (imp->kind != PW_WASM_FUNC) {
			*late = true;
			if (self && self->nlinked < 8)
				self->linked[self->nlinked++] = t;
			continue;
		}
		if (imp->type_index >= m->ntypes)
			continue;
		pw_wasm_sig_string(&m->types[imp->type_index], isig, sizeof isig);
		if (!export_sig(&t->wasm, imp->name, esig, sizeof esig) || strcmp(isig, esig) != 0)
			continue;
		unsigned sig;
		for (sig = 0; sig < NLINK_SIGS && strcmp(link_sigs[sig], isig) != 0; sig++)
			;
		if (sig == NLINK_SIGS) {
			why = xasprintf("imports %s.%s with signature %s: the runner has no linking "
			                "trampoline of that signature", imp->module, imp->name, isig);
			break;
		}
		int k = link_slot(sig, t, imp->module, imp->name);
		if (k < 0) {
			why = xasprintf("imports %s.%s: more than %d linked imports of signature %s",
			                imp->module, imp->name, LINK_SLOTS, isig);
			break;
		}
		if (!im && (pw_imports_new(&im) < 0 || spectest_add(im) < 0)) {
			why = xasprintf("imports: %s", pw_error_last());
			break;
		}
		if (self && self->nlinked < 8)
			self->linked[self->nlinked++] = t;
		const link_entry *l = &g_links[sig][k];
		if (!pw_imports_find(im, l->as, l->field) &&
		    pw_imports_add(im, l->as, l->field, link_sigs[sig], link_tramps[sig][k]) < 0) {
			why = xasprintf("imports: %s", pw_error_last());
			break;
		}
	}
	pw_wasm_module_free(m);
	if (why) {
		pw_imports_free(im);
		return why;
	}
	*out = im;
	return NULL;
}

/* A copy of `s` that lives until the end of the run (import names in import tables). */
static const char *keep_name(runner *r, const char *s)
{
	char **n = realloc(r->names, (r->nnames + 1) * sizeof *n);
	if (!n) {
		fprintf(stderr, "spec_runner: out of memory\n");
		exit(1);
	}
	r->names = n;
	return r->names[r->nnames++] = xstrdup(s);
}

/*
 * Binds every memory, table and global a module imports from a registered module to that
 * module's export, into *im (made with spectest when NULL). An import whose export does not
 * exist (or is of another kind) is left out, so that the loader refuses it, as
 * assert_unlinkable expects; a type mismatch is the loader's to find. Run when the module
 * is loaded: the exporting instance exists only then.
 */
static char *bind_linked_externs(runner *r, const pw_buf *wasm, pw_imports **im)
{
	pw_wasm_module *m = parse_quiet(wasm);
	char *why = NULL;

	if (!m)
		return NULL;
	for (uint32_t i = 0; i < m->nimports && !why; i++) {
		const pw_wasm_import *imp = &m->imports[i];
		mod_slot *t = imp->kind == PW_WASM_FUNC || !strcmp(imp->module, "spectest") ? NULL :
		              reg_lookup(r, imp->module);
		if (!t || !t->inst)
			continue;
		if (!*im && (pw_imports_new(im) < 0 || spectest_add(*im) < 0)) {
			why = xasprintf("imports: %s", pw_error_last());
			break;
		}
		const char *mod = keep_name(r, imp->module), *name = keep_name(r, imp->name);
		int rc = 0;
		if (imp->kind == PW_WASM_MEMORY) {
			pw_memory *x = pw_instance_export_memory(t->inst, imp->name);
			rc = x ? pw_imports_bind_memory(*im, mod, name, x) : 0;
		} else if (imp->kind == PW_WASM_TABLE) {
			pw_table *x = pw_instance_export_table(t->inst, imp->name);
			rc = x ? pw_imports_bind_table(*im, mod, name, x) : 0;
		} else if (imp->kind == PW_WASM_GLOBAL) {
			pw_global *x = pw_instance_export_global(t->inst, imp->name);
			rc = x ? pw_imports_bind_global(*im, mod, name, x) : 0;
		}
		if (rc < 0)
			why = xasprintf("imports: %s", pw_error_last());
	}
	pw_wasm_module_free(m);
	return why;
}

static void compile_slot(void *arg)
{
	mod_slot *s = arg;
	double t0 = pw_now();
	/* a late module's imports are checked when it is loaded (they are bound then) */
	s->compile_rc = pw_engine_compile(s->r->engine, s->wasm.data, s->wasm.len,
	                                  s->late ? NULL : s->imports ? s->imports : s->r->imports,
	                                  &s->artifact, NULL);
	s->compile_seconds = pw_now() - t0;
	if (s->compile_rc < 0)
		s->compile_err = xstrdup(pw_error_last());
}

/* The expected description of the artifact of `wasm` under this engine. */
static void expected_info(runner *r, const pw_buf *wasm, pw_artifact_info *info)
{
	memset(info, 0, sizeof *info);
	info->abi_version = PW_ARTIFACT_ABI_VERSION;
	snprintf(info->engine_hash, sizeof info->engine_hash, "%s", pw_engine_hash(r->engine));
	pw_sha256_hex(wasm->data, wasm->len, info->wasm_sha256);
}

/*
 * Phase 1: reads every module of the script, decides which ones cannot run here (with the
 * engine's own refusal as proof) and compiles the others, on g_opt.jobs threads.
 */
static int prepare_modules(runner *r, json_t *cmds)
{
	size_t i, n = 0;
	json_t *c;

	json_array_foreach(cmds, i, c) {
		if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", "module") == 0)
			n++;
	}
	r->mods = calloc(n ? n : 1, sizeof *r->mods);
	if (!r->mods)
		return pw_error_set(PW_ENOMEM, "spec_runner: out of memory");
	mod_slot *cur = NULL;
	json_array_foreach(cmds, i, c) {
		const char *type = json_string_value(json_object_get(c, "type")) ?: "";
		if (strcmp(type, "register") == 0) {
			/* replay registrations so linked imports resolve as they will at run time */
			const char *nm = json_string_value(json_object_get(c, "name"));
			mod_slot *t = cur;
			if (nm) {
				t = NULL;
				for (size_t k = r->nmods; k-- > 0 && !t;) {
					if (r->mods[k].name && strcmp(r->mods[k].name, nm) == 0)
						t = &r->mods[k];
				}
			}
			const char *as = json_string_value(json_object_get(c, "as"));
			if (t && as)
				reg_add(r, as, t);
			continue;
		}
		if (strcmp(type, "module") != 0)
			continue;
		mod_slot *s = &r->mods[r->nmods++];
		const char *file = json_string_value(json_object_get(c, "filename"));
		cur = s;
		s->r = r;
		s->line = (int)json_integer_value(json_object_get(c, "line"));
		s->name = json_string_value(json_object_get(c, "name"));
		if (!file) {
			s->state = MS_FAILED;
			s->why = xstrdup("module command without a filename in the JSON");
			continue;
		}
		if (read_wasm(r, file, &s->wasm, &s->path) < 0) {
			s->state = MS_FAILED;
			s->why = xstrdup(pw_error_last());
			continue;
		}
		s->shares_table = imports_table(&s->wasm);
		char *why = link_imports(r, &s->wasm, &s->imports, s, &s->late);
		if (why) {
			s->state = MS_SKIPPED;
			s->why = why;
			continue;
		}
		why = unsupported_imports(s->wasm.data, s->wasm.len);
		if (why) {
			int rc = pw_engine_check(r->engine, s->wasm.data, s->wasm.len,
			                         s->late ? NULL : s->imports ? s->imports : r->imports);
			if (rc == PW_EUNSUPPORTED) {
				s->state = MS_SKIPPED;
				s->why = why;
				if (g_opt.verbose)
					printf("module %s:%d refused by the engine: %s\n", g_file, s->line,
					       pw_error_last());
				continue;
			}
			free(why);
		}
	}
	r->nregs = 0;  /* run_commands registers again, in order */

	double t0 = pw_now();
	if (g_opt.jobs > 1) {
		pw_pool *pool = NULL;
		int rc = pw_pool_new(&pool, g_opt.jobs, 0);
		if (rc < 0)
			return rc;
		for (i = 0; i < r->nmods; i++) {
			if (r->mods[i].state == MS_PENDING && (rc = pw_pool_submit(pool, compile_slot, &r->mods[i])) < 0)
				break;
		}
		pw_pool_free(pool);
		if (rc < 0)
			return rc;
	} else {
		for (i = 0; i < r->nmods; i++) {
			if (r->mods[i].state == MS_PENDING)
				compile_slot(&r->mods[i]);
		}
	}
	for (i = 0; i < r->nmods; i++) {
		if (r->mods[i].state == MS_PENDING) {
			g_compiled++;
			g_compile_seconds += r->mods[i].compile_seconds;
		}
	}
	if (g_opt.verbose)
		printf("%s: compiled %u modules in %.2f s (wall)\n", g_file, g_compiled, pw_now() - t0);
	return 0;
}

static void release_slot(mod_slot *s)
{
	pw_instance_free(s->inst);
	s->inst = NULL;
	pw_artifact_free(s->art);
	s->art = NULL;
	pw_imports_free(s->imports);
	s->imports = NULL;
	pw_buf_free(&s->artifact);
	pw_buf_free(&s->wasm);
}

/* A skipped module that imports from registered modules might have changed their state
 * (data/elem segments into an imported memory/table, a start function): mark them. */
static void taint_exporters(runner *r, const pw_buf *wasm, int line)
{
	pw_wasm_module *m = NULL;
	if (!wasm->data || pw_wasm_parse(&m, wasm->data, wasm->len) < 0) {
		pw_error_clear();
		return;
	}
	for (uint32_t i = 0; i < m->nimports; i++) {
		mod_slot *t = reg_lookup(r, m->imports[i].module);
		if (t && !t->taint[0])
			snprintf(t->taint, sizeof t->taint, "the module of line %d, which imports from "
			         "it, was skipped", line);
	}
	pw_wasm_module_free(m);
}

/* A `module` command: loads and instantiates the precompiled artifact; it becomes current. */
static void cmd_module(runner *r)
{
	mod_slot *s = &r->mods[r->nseen++];
	pw_artifact_info expect;
	int rc;

	if (r->current && !r->current->name && !r->current->registered && !r->current->shares_table)
		release_slot(r->current);  /* an unnamed module can no longer be referred to */
	r->current = s;
	switch (s->state) {
	case MS_SKIPPED:
		skip(s->line, "module %s", s->why);
		taint_exporters(r, &s->wasm, s->line);
		return;
	case MS_FAILED:
		fail(s->line, "module: %s", s->why);
		return;
	default:
		break;
	}
	if (s->compile_rc == PW_EUNSUPPORTED && g_opt.allow_unsupported) {
		s->state = MS_SKIPPED;
		s->why = xasprintf("uses what the engine refuses as unsupported (%s)", s->compile_err);
		skip(s->line, "module %s", s->why);
		return;
	}
	if (s->compile_rc < 0) {
		s->state = MS_FAILED;
		s->why = xasprintf("pw_engine_compile refused it: %s", s->compile_err);
		fail(s->line, "module %s: %s", s->path, s->why);
		return;
	}
	char *lwhy = s->late ? bind_linked_externs(r, &s->wasm, &s->imports) : NULL;
	if (lwhy) {
		s->state = MS_FAILED;
		s->why = lwhy;
		fail(s->line, "module %s: %s", s->path, s->why);
		return;
	}
	expected_info(r, &s->wasm, &expect);
	rc = pw_artifact_load(&s->art, s->artifact.data, s->artifact.len, &expect,
	                      s->imports ? s->imports : r->imports);
	pw_buf_free(&s->artifact);
	if (rc < 0) {
		s->state = MS_FAILED;
		s->why = xasprintf("pw_artifact_load: %s", pw_error_last());
		fail(s->line, "module %s: %s", s->path, s->why);
		return;
	}
	pw_instance_opts io = { 0 };
	rc = pw_instance_new(&s->inst, s->art, &io);
	if (rc < 0) {
		s->state = MS_FAILED;
		s->why = xasprintf("pw_instance_new: %s", pw_error_last());
		fail(s->line, "module %s: %s", s->path, s->why);
		return;
	}
	s->state = MS_READY;
	pass();
}

/* The module an action refers to; NULL after counting the command (skip/fail) when there is
 * none usable. */
static mod_slot *find_slot(runner *r, json_t *action)
{
	const char *name = json_string_value(json_object_get(action, "module"));
	if (!name)
		return r->current;
	for (size_t i = r->nseen; i-- > 0;) {
		if (r->mods[i].name && strcmp(r->mods[i].name, name) == 0)
			return &r->mods[i];
	}
	return NULL;
}

static mod_slot *action_module(runner *r, json_t *action, int line)
{
	const char *name = json_string_value(json_object_get(action, "module"));
	mod_slot *s = NULL;

	if (name) {
		s = find_slot(r, action);
		if (!s) {
			fail(line, "no module named %s before this command", name);
			return NULL;
		}
	} else {
		s = r->current;
		if (!s) {
			fail(line, "no module before this command");
			return NULL;
		}
	}
	if (s->state == MS_SKIPPED) {
		skip(line, "uses a skipped module that %s", s->why);
		return NULL;
	}
	if (s->state != MS_READY || !s->inst) {
		fail(line, "the module of line %d is not available (it failed to load)", s->line);
		return NULL;
	}
	return s;
}

static char sig_char(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return 'i';
	case PW_WASM_I64: return 'I';
	case PW_WASM_F32: return 'f';
	case PW_WASM_F64: return 'F';
	default: return '?';
	}
}

/* Parses an array of values; returns 0, 1 (skip: *what set) or -1 (bad JSON). */
static int parse_vals(json_t *arr, spec_val **out, size_t *n, const char **what)
{
	size_t i;
	json_t *v;

	*n = json_array_size(arr);
	*out = calloc(*n ? *n : 1, sizeof **out);
	if (!*out)
		return -1;
	json_array_foreach(arr, i, v) {
		int rc = parse_val(v, &(*out)[i], what);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* True when `wasm` exports a function `field` whose signature has a non-numeric type
 * (the engine leaves those out of the artifact's export table); its signature into sig. */
static bool nonnumeric_export(const pw_buf *wasm, const char *field, char *sig, size_t n)
{
	pw_wasm_module *m = NULL;
	bool found = false;

	if (!wasm->data || pw_wasm_parse(&m, wasm->data, wasm->len) < 0) {
		pw_error_clear();
		return false;
	}
	const pw_wasm_export *ex = pw_wasm_find_export(m, field, PW_WASM_FUNC);
	const pw_wasm_functype *t = ex ? pw_wasm_func_type(m, ex->index) : NULL;
	if (t) {
		pw_wasm_sig_string(t, sig, n);
		found = strpbrk(sig, "rev") != NULL;
	}
	pw_wasm_module_free(m);
	return found;
}

enum { K_RETURN, K_ACTION, K_TRAP, K_EXHAUSTION };

/* assert_return, action, assert_trap and assert_exhaustion. */
/* A `get` action (assert_return or action): the exported global's value, through
 * pw_instance_export_global, compared like a call's result. */
static void cmd_get(runner *r, json_t *cmd, json_t *action, const char *field, int kind, int line)
{
	spec_val *exp = NULL;
	size_t nexp = 0;
	const char *what = NULL;
	char b1[96], b2[96];

	if (kind != K_RETURN && kind != K_ACTION) {
		fail(line, "a get action in an assertion other than assert_return");
		return;
	}
	int rc = kind == K_RETURN ? parse_vals(json_object_get(cmd, "expected"), &exp, &nexp, &what) : 0;
	if (rc < 0 || (kind == K_RETURN && nexp != 1)) {
		fail(line, "bad expected value of a get in the JSON");
		goto out;
	}
	if (rc > 0) {
		skip(line, "%s values: the engine API passes i32/i64/f32/f64 only", what);
		goto out;
	}
	mod_slot *s = action_module(r, action, line);
	if (!s)
		goto out;
	pw_global *g = pw_instance_export_global(s->inst, field);
	if (!g) {
		fail(line, "no exported numeric global \"%s\" in the module of line %d", field, s->line);
		goto out;
	}
	uint64_t v = pw_global_get(g);
	if (kind == K_RETURN && (exp[0].type != pw_global_valtype(g) || !val_matches(&exp[0], v))) {
		fail(line, "assert_return (get \"%s\"): expected %s, got %s %s", field,
		     fmt_expected(&exp[0], b1, sizeof b1), type_name(pw_global_valtype(g)),
		     fmt_val(pw_global_valtype(g), v, b2, sizeof b2));
		goto out;
	}
	pass();
out:
	free(exp);
}

static void cmd_invoke(runner *r, json_t *cmd, int kind, int line)
{
	json_t *action = json_object_get(cmd, "action");
	const char *atype = json_string_value(json_object_get(action, "type"));
	json_t *jfield = json_object_get(action, "field");
	const char *field = json_string_value(jfield);
	const char *text = json_string_value(json_object_get(cmd, "text"));
	spec_val *args = NULL, *exp = NULL;
	size_t nargs = 0, nexp = 0;
	pw_val *argv = NULL, *res = NULL;
	const char *what = NULL;
	char b1[96], b2[96];
	int rc;

	if (!atype || !field) {
		fail(line, "malformed command in the JSON (no action type or field)");
		return;
	}
	if (strcmp(atype, "get") == 0) {
		cmd_get(r, cmd, action, field, kind, line);
		return;
	}
	if (strcmp(atype, "invoke") != 0) {
		fail(line, "unknown action type \"%s\"", atype);
		return;
	}
	if (strlen(field) != json_string_length(jfield)) {
		skip(line, "export name with a NUL byte: the engine looks exports up by C string");
		return;
	}
	rc = parse_vals(json_object_get(action, "args"), &args, &nargs, &what);
	if (rc == 0 && kind == K_RETURN)
		rc = parse_vals(json_object_get(cmd, "expected"), &exp, &nexp, &what);
	if (rc < 0) {
		fail(line, "bad value in the JSON");
		goto out;
	}
	if (rc > 0) {
		skip(line, "%s values: the engine API passes i32/i64/f32/f64 only", what);
		mod_slot *t = find_slot(r, action);
		if (t && !t->taint[0])  /* any call may change the module's state */
			snprintf(t->taint, sizeof t->taint, "the call of line %d on this module was "
			         "skipped", line);
		goto out;
	}
	mod_slot *s = action_module(r, action, line);
	if (!s)
		goto out;
	if (s->taint[0])
		snprintf(g_fail_note, sizeof g_fail_note, " (note: %s, so its state may differ from "
		         "the script's)", s->taint);
	for (unsigned k = 0; k < s->nlinked && !g_fail_note[0]; k++) {
		if (s->linked[k]->taint[0])
			snprintf(g_fail_note, sizeof g_fail_note, " (note: it calls the module of line %d: "
			         "%s, so its state may differ from the script's)", s->linked[k]->line,
			         s->linked[k]->taint);
	}
	const pw_func_info *fi = pw_artifact_find_func(s->art, field);
	if (!fi) {
		char sig[64];
		if (nonnumeric_export(&s->wasm, field, sig, sizeof sig))
			skip(line, "calls a function with v128/reference types in its signature: the "
			     "engine exports numeric-typed functions only");
		else
			fail(line, "no exported function \"%s\" in the module of line %d", field, s->line);
		goto out;
	}
	if (fi->nparams != nargs || (kind == K_RETURN && fi->nresults != nexp)) {
		fail(line, "\"%s\" has signature %s, the command passes %zu args and expects %zu results",
		     field, fi->sig, nargs, nexp);
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		if (!fi->sig || fi->sig[i] != sig_char(args[i].type)) {
			fail(line, "\"%s\" has signature %s: argument %zu is %s", field,
			     fi->sig ? fi->sig : "?", i, type_name(args[i].type));
			goto out;
		}
	}
	argv = calloc(nargs ? nargs : 1, sizeof *argv);
	res = calloc(fi->nresults ? fi->nresults : 1, sizeof *res);
	if (!argv || !res) {
		fail(line, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nargs; i++)
		argv[i] = args[i].bits;
	rc = pw_instance_call(s->inst, field, argv, nargs, res, fi->nresults);

	if (kind == K_RETURN || kind == K_ACTION) {
		if (rc < 0) {
			fail(line, "%s \"%s\": %s (%s)", kind == K_RETURN ? "assert_return" : "action",
			     field, pw_error_last(), pw_error_code_str(rc));
			goto out;
		}
		for (size_t i = 0; i < nexp; i++) {
			if (!val_matches(&exp[i], res[i])) {
				fail(line, "assert_return \"%s\": result %zu: expected %s, got %s", field, i,
				     fmt_expected(&exp[i], b1, sizeof b1), fmt_val(exp[i].type, res[i], b2, sizeof b2));
				goto out;
			}
		}
		pass();
		goto out;
	}

	/* assert_trap / assert_exhaustion */
	if (rc == 0) {
		fail(line, "%s \"%s\": expected trap \"%s\", but it returned", kind == K_TRAP ?
		     "assert_trap" : "assert_exhaustion", field, text ? text : "");
		goto out;
	}
	if (rc != PW_ETRAP) {
		fail(line, "\"%s\": expected trap \"%s\", got %s: %s", field, text ? text : "",
		     pw_error_code_str(rc), pw_error_last());
		goto out;
	}
	const char *reason = pw_instance_trap_reason(s->inst);
	trap_family want = trap_family_of(text ? text : ""), got = trap_family_of(reason ? reason : "");
	if (want == TF_UNKNOWN) {
		fail(line, "the harness does not know the trap family of \"%s\" (got \"%s\")",
		     text ? text : "", reason ? reason : "");
		goto out;
	}
	if (want != got) {
		fail(line, "\"%s\": expected trap \"%s\" (%s), got trap \"%s\" (%s)", field, text,
		     family_names[want], reason ? reason : "", family_names[got]);
		goto out;
	}
	pass();
out:
	g_fail_note[0] = 0;
	free(args);
	free(exp);
	free(argv);
	free(res);
}

/* assert_invalid / assert_malformed / assert_unlinkable / assert_uninstantiable: the
 * module must be refused by some stage of the pipeline. */
static void cmd_refused(runner *r, json_t *cmd, const char *type, int line)
{
	const char *mtype = json_string_value(json_object_get(cmd, "module_type"));
	const char *file = json_string_value(json_object_get(cmd, "filename"));
	const char *text = json_string_value(json_object_get(cmd, "text"));
	bool linking = strcmp(type, "assert_unlinkable") == 0 || strcmp(type, "assert_uninstantiable") == 0;
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	pw_imports *own = NULL;
	char *path = NULL, *msg = NULL;
	int stage = -1, rc;

	if (mtype && strcmp(mtype, "text") == 0) {
		skip(line, "%s of a text module: wast2json writes no binary for it", type);
		return;
	}
	if (!file) {
		fail(line, "%s without a filename in the JSON", type);
		return;
	}
	if (read_wasm(r, file, &wasm, &path) < 0) {
		fail(line, "%s: %s", type, pw_error_last());
		goto out;
	}
	bool late = false;
	char *lwhy = link_imports(r, &wasm, &own, NULL, &late);
	if (!lwhy && late)
		lwhy = bind_linked_externs(r, &wasm, &own);
	if (lwhy) {
		skip(line, "%s of a module that %s", type, lwhy);
		free(lwhy);
		goto out;
	}
	const pw_imports *imps = own ? own : r->imports;
	if (linking) {
		char *why = unsupported_imports(wasm.data, wasm.len);
		if (why) {
			rc = pw_engine_check(r->engine, wasm.data, wasm.len, imps);
			if (rc == PW_EUNSUPPORTED) {
				/* refused, but for lack of support: proves nothing about linking */
				skip(line, "%s of a module that %s", type, why);
				taint_exporters(r, &wasm, line);
				free(why);
				goto out;
			}
			free(why);
		}
	}
	if ((rc = pw_engine_check(r->engine, wasm.data, wasm.len, imps)) < 0) {
		stage = ST_CHECK;
		goto refused;
	}
	if (!linking) {
		char *argv[] = { "wasm-validate", path, NULL };
		rc = run_tool(argv, !g_opt.verbose);
		if (rc < 0) {
			fail(line, "%s: %s", type, pw_error_last());
			goto out;
		}
		if (rc == 127) {
			fail(line, "%s: wasm-validate could not be run (not installed?)", type);
			goto out;
		}
		if (rc != 0) {
			stage = ST_VALIDATE;
			rc = pw_error_set(PW_EINVALID, "wasm-validate exited %d", rc);
			goto refused;
		}
	}
	if ((rc = pw_engine_compile(r->engine, wasm.data, wasm.len, imps, &art, NULL)) < 0) {
		stage = ST_COMPILE;
		goto refused;
	}
	pw_artifact_info expect;
	expected_info(r, &wasm, &expect);
	if ((rc = pw_artifact_load(&a, art.data, art.len, &expect, imps)) < 0) {
		stage = ST_LOAD;
		goto refused;
	}
	pw_instance_opts io = { .keep_failed = imports_table(&wasm) };
	if ((rc = pw_instance_new(&inst, a, &io)) < 0) {
		stage = ST_INSTANTIATE;
		if (inst) {
			pw_instance **ki = realloc(r->kept, (r->nkept + 1) * sizeof *ki);
			if (ki)
				r->kept = ki;
			pw_artifact **ka = ki ? realloc(r->kept_arts, (r->nkept + 1) * sizeof *ka) : NULL;
			if (!ka) {
				fprintf(stderr, "spec_runner: out of memory\n");
				exit(1);
			}
			r->kept_arts = ka;
			r->kept[r->nkept] = inst;
			r->kept_arts[r->nkept++] = a;
			inst = NULL;
			a = NULL;
		}
		goto refused;
	}
	fail(line, "%s: module %s (expected \"%s\") was accepted by every stage", type, file,
	     text ? text : "");
	goto out;
refused:
	msg = xstrdup(pw_error_last());
	/* A valid module refused for an unrelated reason proves nothing: assert_uninstantiable
	 * must fail when instantiated, assert_unlinkable on its imports. */
	if (strcmp(type, "assert_uninstantiable") == 0 && stage != ST_INSTANTIATE) {
		fail(line, "%s: expected a failure when instantiated (\"%s\"), but %s refused the "
		     "module: %s", type, text ? text : "", stage_names[stage], msg);
		goto out;
	}
	if (strcmp(type, "assert_unlinkable") == 0 && rc != PW_EUNSUPPORTED && rc != PW_ENOTFOUND) {
		fail(line, "%s: expected an import to be refused (\"%s\"), but %s failed with %s: %s",
		     type, text ? text : "", stage_names[stage], pw_error_code_str(rc), msg);
		goto out;
	}
	g_refused_by[stage]++;
	if (g_opt.verbose)
		printf("ok %s:%d: %s \"%s\" refused by %s: %s\n", g_file, line, type, text ? text : "",
		       stage_names[stage], msg);
	pass();
out:
	pw_instance_free(inst);
	pw_artifact_free(a);
	pw_imports_free(own);
	pw_buf_free(&art);
	pw_buf_free(&wasm);
	free(path);
	free(msg);
}

/* `register`: later modules may import the module's functions under the name `as`. */
static void cmd_register(runner *r, json_t *cmd, int line)
{
	const char *as = json_string_value(json_object_get(cmd, "as"));
	json_t *fake = json_object_get(cmd, "name") ? json_object() : NULL;
	mod_slot *s;

	if (fake)
		json_object_set(fake, "module", json_object_get(cmd, "name"));
	s = find_slot(r, fake);
	json_decref(fake);
	if (!as || !s) {
		fail(line, "register: no such module, or no name in the JSON");
		return;
	}
	reg_add(r, as, s);
	s->registered = true;
	if (s->state == MS_SKIPPED)
		skip(line, "register of a module that %s", s->why);
	else if (s->state != MS_READY)
		fail(line, "register of the module of line %d, which did not load", s->line);
	else
		pass();
}

static void run_commands(runner *r, json_t *cmds)
{
	size_t i;
	json_t *c;

	json_array_foreach(cmds, i, c) {
		const char *type = json_string_value(json_object_get(c, "type"));
		int line = (int)json_integer_value(json_object_get(c, "line"));
		if (!type) {
			fail(line, "command without a type in the JSON");
			continue;
		}
		if (strcmp(type, "module") == 0)
			cmd_module(r);
		else if (strcmp(type, "assert_return") == 0)
			cmd_invoke(r, c, K_RETURN, line);
		else if (strcmp(type, "action") == 0)
			cmd_invoke(r, c, K_ACTION, line);
		else if (strcmp(type, "assert_trap") == 0)
			cmd_invoke(r, c, K_TRAP, line);
		else if (strcmp(type, "assert_exhaustion") == 0)
			cmd_invoke(r, c, K_EXHAUSTION, line);
		else if (strcmp(type, "assert_invalid") == 0 || strcmp(type, "assert_malformed") == 0
		         || strcmp(type, "assert_unlinkable") == 0
		         || strcmp(type, "assert_uninstantiable") == 0)
			cmd_refused(r, c, type, line);
		else if (strcmp(type, "register") == 0)
			cmd_register(r, c, line);
		else
			skip(line, "command type %s is not handled by the harness", type);
	}
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: spec_runner [--opt LEVEL] [--jobs N] [--allow-unsupported] [--keep] [-v] (--name NAME | FILE.wast | FILE.json)\n"
	        "  --name NAME  run $PREWARM_TESTSUITE/NAME.wast (exit 77 when PREWARM_TESTSUITE is unset)\n"
	        "  --opt LEVEL  C optimization level for the artifacts (default -O0; env PREWARM_SPEC_OPT)\n"
	        "  --jobs N     compile modules on N threads (default 1; env PREWARM_SPEC_JOBS)\n"
	        "  --allow-unsupported  skip (instead of fail) modules the engine refuses as\n"
	        "               unsupported (SIMD, ...): for exploring files beyond the required ones\n"
	        "  --keep       keep the wast2json output directory\n"
	        "  -v           print every skip and refusal\n");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *input = NULL;
	char *wast = NULL, *json_path = NULL, *tmp = NULL;
	runner r = { 0 };
	json_t *root = NULL;
	int status = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("PREWARM_SPEC_OPT") && *getenv("PREWARM_SPEC_OPT"))
		g_opt.opt_level = getenv("PREWARM_SPEC_OPT");
	if (getenv("PREWARM_SPEC_JOBS"))
		g_opt.jobs = (unsigned)atoi(getenv("PREWARM_SPEC_JOBS"));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--opt") == 0 && i + 1 < argc)
			g_opt.opt_level = argv[++i];
		else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
			g_opt.jobs = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--allow-unsupported") == 0)
			g_opt.allow_unsupported = true;
		else if (strcmp(argv[i], "--keep") == 0)
			g_opt.keep = true;
		else if (strcmp(argv[i], "-v") == 0)
			g_opt.verbose = true;
		else if (argv[i][0] != '-' && !input)
			input = argv[i];
		else {
			usage();
			return 2;
		}
	}
	if (g_opt.jobs < 1)
		g_opt.jobs = 1;
	if (!!name == !!input) {
		usage();
		return 2;
	}
	if (name) {
		const char *ts = getenv("PREWARM_TESTSUITE");
		if (!ts || !*ts) {
			printf("SKIP spec test %s: PREWARM_TESTSUITE is not set (the folder of the "
			       "WebAssembly testsuite's .wast files; scripts/test.sh sets it from "
			       "PREWARM_SHARED)\n", name);
			return 77;
		}
		wast = xasprintf("%s/%s.wast", ts, name);
	} else {
		wast = xstrdup(input);
	}
	g_file = strrchr(wast, '/') ? strrchr(wast, '/') + 1 : wast;
	double t_start = pw_now();

	if (ends_with(wast, ".json")) {
		json_path = xstrdup(wast);
		r.dir = xstrdup(wast);
		char *slash = strrchr(r.dir, '/');
		if (slash)
			*slash = 0;
		else
			strcpy(r.dir, ".");
	} else {
		if (!pw_path_exists(wast)) {
			fprintf(stderr, "spec_runner: %s: no such file\n", wast);
			goto out;
		}
		if (pw_mkdtemp(&tmp, "prewarm-spec") < 0) {
			fprintf(stderr, "spec_runner: %s\n", pw_error_last());
			goto out;
		}
		r.dir = xstrdup(tmp);
		json_path = xasprintf("%s/spec.json", tmp);
		char *targv[] = { "wast2json", wast, "-o", json_path, NULL };
		int rc = run_tool(targv, false);
		if (rc != 0) {
			fprintf(stderr, "spec_runner: wast2json %s failed (%s)\n", wast,
			        rc < 0 ? pw_error_last() : rc == 127 ? "not installed?" : "see above");
			goto out;
		}
	}

	json_error_t jerr;
	root = json_load_file(json_path, JSON_ALLOW_NUL, &jerr);
	if (!root) {
		fprintf(stderr, "spec_runner: %s:%d: %s\n", json_path, jerr.line, jerr.text);
		goto out;
	}
	json_t *cmds = json_object_get(root, "commands");
	if (!json_is_array(cmds)) {
		fprintf(stderr, "spec_runner: %s: no \"commands\" array\n", json_path);
		goto out;
	}

	pw_engine_opts eo = { 0 };
	eo.opt_level = g_opt.opt_level;
	if (pw_engine_new(&r.engine, &eo) < 0) {
		fprintf(stderr, "spec_runner: pw_engine_new: %s\n", pw_error_last());
		goto out;
	}
	if (spectest_objects_new() < 0 || spectest_imports(&r.imports) < 0) {
		fprintf(stderr, "spec_runner: spectest imports: %s\n", pw_error_last());
		goto out;
	}
	if (prepare_modules(&r, cmds) < 0) {
		fprintf(stderr, "spec_runner: %s\n", pw_error_last());
		goto out;
	}
	run_commands(&r, cmds);

	printf("%s: %u passed, %u failed, %u skipped (%u modules compiled at %s in %.2f s; "
	       "wall %.2f s)\n", g_file, g_passed, g_failed, g_skipped, g_compiled,
	       pw_engine_get_tier(r.engine) == PW_TIER_QUICK ? "the quick tier (tcc)" : g_opt.opt_level,
	       g_compile_seconds, pw_now() - t_start);
	for (unsigned i = 0; i < g_nreasons; i++)
		printf("  skipped %u: %s\n", g_reasons[i].count, g_reasons[i].reason);
	if (g_other_reasons)
		printf("  skipped %u: (other reasons, run with -v)\n", g_other_reasons);
	unsigned nref = 0;
	for (int i = 0; i < ST_N; i++)
		nref += g_refused_by[i];
	if (nref) {
		printf("  refused modules by stage:");
		for (int i = 0; i < ST_N; i++)
			if (g_refused_by[i])
				printf(" %s %u", stage_names[i], g_refused_by[i]);
		printf("\n");
	}
	status = g_failed ? 1 : 0;
out:
	for (size_t i = 0; i < r.nmods; i++) {
		release_slot(&r.mods[i]);
		free(r.mods[i].path);
		free(r.mods[i].why);
		free(r.mods[i].compile_err);
	}
	for (size_t i = 0; i < r.nkept; i++) {
		pw_instance_free(r.kept[i]);
		pw_artifact_free(r.kept_arts[i]);
	}
	free(r.kept);
	free(r.kept_arts);
	free(r.mods);
	free(r.regs);
	for (unsigned i = 0; i < NLINK_SIGS; i++) {
		for (unsigned k = 0; k < g_nlinks[i]; k++) {
			free(g_links[i][k].as);
			free(g_links[i][k].field);
		}
	}
	pw_imports_free(r.imports);
	spectest_objects_free();
	for (size_t i = 0; i < r.nnames; i++)
		free(r.names[i]);
	free(r.names);
	pw_engine_free(r.engine);
	json_decref(root);
	if (tmp) {
		if (g_opt.keep)
			fprintf(stderr, "spec_runner: kept %s\n", tmp);
		else
			pw_rmtree(tmp);
	}
	free(tmp);
	free(r.dir);
	free(json_path);
	free(wast);
	for (unsigned i = 0; i < g_nreasons; i++)
		free(g_reasons[i].reason);
	return status;
}
