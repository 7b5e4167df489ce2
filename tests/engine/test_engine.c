/*
 * Engine tests through the C API, on real compiles (wasm2c + the default C
 * compiler) of the project's own WAT fixtures: the toolchain probe and hash,
 * every refusal, every trap kind with its reason, host imports (including
 * exit and trap from a host function), memory growth limits, interrupts by
 * deadline and from another thread, 8 threads with their own instances,
 * reproducible artifacts, the artifact description, name mangling, imported
 * memories (one per instance and shared), globals and tables with the spec's
 * matching rules and their refusals.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "engine/engine_int.h"
#include "prewarm/engine.h"

static pw_engine *g_engine;
static pw_imports *g_host;
static pw_buf g_basic_wasm, g_basic_art;

/* ---- host functions ---- */

static uint32_t host_add(pw_instance *inst, uint32_t a, uint32_t b)
{
	int *bias = pw_instance_host_data(inst);
	return a + b + (uint32_t)(bias ? *bias : 0);
}

static void host_exit(pw_instance *inst, uint32_t code)
{
	pw_instance_exit(inst, (int)code);
}

static void host_trap(pw_instance *inst)
{
	pw_instance_trap(inst, "host says no");
}

static double host_f64(pw_instance *inst, double x, uint64_t y)
{
	return x * 2 + (double)y;
}

static int setup(void)
{
	if (g_engine)
		return 0;
	if (pw_engine_new(&g_engine, NULL))
		return -1;
	if (pw_imports_new(&g_host) ||
	    pw_imports_add(g_host, "env", "host_add", "ii:i", (void (*)(void))host_add) ||
	    pw_imports_add(g_host, "env", "host_exit", "i:", (void (*)(void))host_exit) ||
	    pw_imports_add(g_host, "env", "host_trap", ":", (void (*)(void))host_trap) ||
	    pw_imports_add(g_host, "env", "host_f64", "FI:F", (void (*)(void))host_f64))
		return -1;
	if (pw_file_read(pw_test_fixture("engine_basic.wasm"), 0, &g_basic_wasm))
		return -1;
	return pw_engine_compile(g_engine, g_basic_wasm.data, g_basic_wasm.len, g_host, &g_basic_art, NULL);
}

#define SETUP() CHECK_OK(setup())

static int new_instance(pw_instance **out, pw_artifact **art, const pw_instance_opts *o)
{
	int rc = pw_artifact_load(art, g_basic_art.data, g_basic_art.len, NULL, g_host);
	if (rc)
		return rc;
	return pw_instance_new(out, *art, o);
}

static uint64_t f64_bits(double d)
{
	uint64_t b;
	memcpy(&b, &d, 8);
	return b;
}

static double bits_f64(uint64_t b)
{
	double d;
	memcpy(&d, &b, 8);
	return d;
}

static uint64_t f32_bits(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	return b;
}

/* ---- tests ---- */

static void test_engine_probe(void)
{
	SETUP();
	const char *h = pw_engine_hash(g_engine);
	CHECK(pw_is_sha256_hex(h));
	const char *d = pw_engine_description(g_engine);
	CHECK(strstr(d, "translator: wasm2c 1.0.") != NULL);
	CHECK(strstr(d, "runtime-header-sha256: ") != NULL);
	bool quick = pw_engine_get_tier(g_engine) == PW_TIER_QUICK;
	CHECK(strstr(d, quick ? "tier: quick\n" : "tier: optimized\n") != NULL);
	CHECK(strstr(d, quick ? "linker: " : "compiler-target: ") != NULL);
	char hh[65];
	pw_sha256_hex(d, strlen(d), hh);
	CHECK_STR(hh, h);

	pw_engine *same = NULL, *o2 = NULL;
	CHECK_OK(pw_engine_new(&same, NULL));
	CHECK_STR(pw_engine_hash(same), h);
	pw_engine_opts o = { .tier = PW_TIER_OPTIMIZED, .opt_level = "-O2" };
	CHECK_OK(pw_engine_new(&o2, &o));
	CHECK(strcmp(pw_engine_hash(o2), h) != 0);
	CHECK(strstr(pw_engine_description(o2), "cflags: -O2 ") != NULL);
	pw_engine_free(same);
	pw_engine_free(o2);

	pw_engine *bad = NULL;
	pw_engine_opts ob = { .tier = PW_TIER_OPTIMIZED, .cc = "/nonexistent/prewarm-cc" };
	CHECK_INT(pw_engine_new(&bad, &ob), PW_ERROR);
	CHECK(strstr(pw_error_last(), "/nonexistent/prewarm-cc") != NULL);
	CHECK(bad == NULL);
	pw_engine_opts ol = { .tier = PW_TIER_OPTIMIZED, .opt_level = "-O9; rm" };
	CHECK_INT(pw_engine_new(&bad, &ol), PW_EINVALID);
}

/* The two tiers: distinct hashes, the quick one names its linker; a pinned engine takes a
 * description printed elsewhere, loads (same hash) but cannot compile, and refuses text
 * that is edited, for another tier, or for another runtime. */
static void test_tiers_and_pinned(void)
{
	SETUP();
	pw_engine *q = NULL, *o = NULL, *p = NULL;
	pw_engine_opts qo = { .tier = PW_TIER_QUICK }, oo = { .tier = PW_TIER_OPTIMIZED };
	CHECK_OK(pw_engine_new(&q, &qo));
	CHECK_OK(pw_engine_new(&o, &oo));
	if (!q || !o)
		goto out;
	CHECK_INT(pw_engine_get_tier(q), PW_TIER_QUICK);
	CHECK_INT(pw_engine_get_tier(o), PW_TIER_OPTIMIZED);
	CHECK(strcmp(pw_engine_hash(q), pw_engine_hash(o)) != 0);
	CHECK(strstr(pw_engine_description(q), "\nlinker: GNU ld") != NULL);
	CHECK(pw_engine_can_compile(q) && pw_engine_can_compile(o));

	/* pinned from the text `prewarm engine --tier optimized` prints (with its hash line) */
	pw_buf t = PW_BUF_INIT;
	pw_buf_printf(&t, "%shash: %s\n", pw_engine_description(o), pw_engine_hash(o));
	pw_engine_opts po = { .tier = PW_TIER_OPTIMIZED, .pinned_description = (char *)t.data,
	                      .cc = "/nonexistent/gcc" };
	CHECK_OK(pw_engine_new(&p, &po));
	if (p) {
		CHECK_STR(pw_engine_hash(p), pw_engine_hash(o));
		CHECK(!pw_engine_can_compile(p));
		pw_buf art = PW_BUF_INIT;
		uint8_t wasm[] = { 0, 'a', 's', 'm', 1, 0, 0, 0 };
		CHECK_INT(pw_engine_compile(p, wasm, sizeof wasm, NULL, &art, NULL), PW_EUNSUPPORTED);
		CHECK(strstr(pw_error_last(), "pinned") != NULL);
		pw_buf_free(&art);
		pw_engine_free(p);
		p = NULL;
	}
	/* the quick tier's text for the optimized tier */
	po.pinned_description = pw_engine_description(q);
	CHECK_INT(pw_engine_new(&p, &po), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "tier 'quick'") != NULL);
	/* an edited line: the hash line no longer agrees */
	char *ed = strdup((char *)t.data);
	char *c = strstr(ed, "cflags: -O1");
	if (c) {
		c[9] = '-';
		c[10] = 'O';
		c[11] = '3';
	}
	po.pinned_description = ed;
	CHECK_INT(pw_engine_new(&p, &po), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "edited") != NULL);
	/* another runtime header: its artifacts cannot load here */
	free(ed);
	ed = strdup(pw_engine_description(o));
	c = strstr(ed, "runtime-header-sha256: ");
	if (c)
		c[23] = c[23] == '0' ? '1' : '0';
	po.pinned_description = ed;
	CHECK_INT(pw_engine_new(&p, &po), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "runtime-header-sha256") != NULL);
	free(ed);
	po.pinned_description = "garbage\n";
	CHECK_INT(pw_engine_new(&p, &po), PW_EINVALID);
	CHECK(p == NULL);
	pw_buf_free(&t);
out:
	pw_engine_free(q);
	pw_engine_free(o);
}

static void refuse(const uint8_t *w, size_t n, int code, const char *msg1, const char *msg2)
{
	pw_buf art = PW_BUF_INIT;
	pw_buf_puts(&art, "x");
	int rc = pw_engine_compile(g_engine, w, n, g_host, &art, NULL);
	if (rc != code) {
		pw_test_fail(__FILE__, __LINE__, "compile returned %d (%s), expected %d", rc, pw_error_last(), code);
		pw_buf_free(&art);
		return;
	}
	if (art.len != 1)
		pw_test_fail(__FILE__, __LINE__, "artifact buffer changed on refusal");
	if (msg1 && !strstr(pw_error_last(), msg1))
		pw_test_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", pw_error_last(), msg1);
	if (msg2 && !strstr(pw_error_last(), msg2))
		pw_test_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", pw_error_last(), msg2);
	CHECK_INT(pw_engine_check(g_engine, w, n, g_host), code);
	pw_buf_free(&art);
}

static void refuse_fixture(const char *name, int code, const char *m1, const char *m2)
{
	pw_buf w = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture(name), 0, &w));
	refuse(w.data, w.len, code, m1, m2);
	pw_buf_free(&w);
}

static void test_refusals(void)
{
	SETUP();
	static const uint8_t badmagic[] = { 0x7f, 'E', 'L', 'F', 1, 0, 0, 0, 0, 0 };
	refuse(badmagic, sizeof badmagic, PW_EINVALID, "magic", NULL);
	if (pw_test_stopped())
		return;
	refuse(g_basic_wasm.data, g_basic_wasm.len / 2, PW_EINVALID, NULL, NULL);
	if (pw_test_stopped())
		return;
	uint8_t garbage[64] = { 0, 'a', 's', 'm', 1, 0, 0, 0 };
	for (size_t i = 8; i < sizeof garbage; i++)
		garbage[i] = (uint8_t)(i * 37 + 11);
	refuse(garbage, sizeof garbage, PW_EINVALID, NULL, NULL);
	static const uint8_t component[] = { 0, 'a', 's', 'm', 0x0d, 0x00, 0x01, 0x00 };
	refuse(component, sizeof component, PW_EUNSUPPORTED, "component", NULL);
	refuse_fixture("engine_simd.wasm", PW_EUNSUPPORTED, "SIMD", NULL);
	refuse_fixture("engine_unknown_import.wasm", PW_EUNSUPPORTED, "env.no_such_function (i:i)", "mystery.thing (:)");
	refuse_fixture("engine_memimport.wasm", PW_EUNSUPPORTED, "env.memory (memory {min 1, max 4})",
	               "env.host_sum (ii:i)");
	refuse(NULL, 0, PW_EINVALID, NULL, NULL);
}

/* An instance of the basic fixture for one test (CALLS_END frees it). */
#define CALLS_BEGIN() SETUP(); pw_artifact *a = NULL; pw_instance *inst = NULL; \
	CHECK_OK(new_instance(&inst, &a, NULL)); pw_val r[3] = { 0 }
#define CALLS_END() do { pw_instance_free(inst); pw_artifact_free(a); } while (0)

static void test_call_integers(void)
{
	CALLS_BEGIN();
	pw_val args2[2] = { 40, 2 };
	CHECK_OK(pw_instance_call(inst, "add", args2, 2, r, 1));
	CHECK_INT(r[0], 42);
	pw_val a64[2] = { 0xffffffffffULL, 1 };
	CHECK_OK(pw_instance_call(inst, "add64", a64, 2, r, 1));
	CHECK(r[0] == 0x10000000000ULL);
	CALLS_END();
}

static void test_call_floats(void)
{
	CALLS_BEGIN();
	pw_val af[2] = { f32_bits(1.5f), f32_bits(-4.0f) };
	CHECK_OK(pw_instance_call(inst, "mulf32", af, 2, r, 1));
	CHECK(r[0] == f32_bits(-6.0f));
	pw_val ad[2] = { f64_bits(1.0), f64_bits(8.0) };
	CHECK_OK(pw_instance_call(inst, "divf64", ad, 2, r, 1));
	CHECK(bits_f64(r[0]) == 0.125);
	pw_val c1 = f64_bits(1.25);
	CHECK_OK(pw_instance_call(inst, "ceil", &c1, 1, r, 1));
	CHECK(bits_f64(r[0]) == 2.0);
	c1 = f64_bits(2.5);
	CHECK_OK(pw_instance_call(inst, "nearest", &c1, 1, r, 1));
	CHECK(bits_f64(r[0]) == 2.0);
	CALLS_END();
}

static void test_call_multi_value(void)
{
	CALLS_BEGIN();
	pw_val a3[3] = { 7, 0x123456789ULL, f64_bits(2.5) };
	CHECK_OK(pw_instance_call(inst, "swap3", a3, 3, r, 3));
	CHECK(bits_f64(r[0]) == 2.5);
	CHECK(r[1] == 0x123456789ULL);
	CHECK_INT(r[2], 7);
	CALLS_END();
}

static void test_call_state_persists(void)
{
	CALLS_BEGIN();
	CHECK_OK(pw_instance_call(inst, "count", NULL, 0, r, 1));
	CHECK_OK(pw_instance_call(inst, "count", NULL, 0, r, 1));
	CHECK_INT(r[0], 2);
	CALLS_END();
}

static void test_call_memory(void)
{
	CALLS_BEGIN();
	pw_val a1 = 16;
	CHECK_OK(pw_instance_call(inst, "load8", &a1, 1, r, 1));
	CHECK_INT(r[0], 'p');
	uint64_t size = 0;
	uint8_t *mem = pw_instance_memory(inst, &size);
	CHECK(mem != NULL);
	CHECK_INT(size, 65536);
	CHECK(memcmp(mem + 16, "prewarm", 7) == 0);
	CHECK(pw_instance_mem_ok(inst, 65530, 6));
	CHECK(!pw_instance_mem_ok(inst, 65530, 7));
	CHECK(!pw_instance_mem_ok(inst, UINT64_MAX, 2));
	CALLS_END();
}

static void test_call_errors(void)
{
	CALLS_BEGIN();
	pw_val args2[2] = { 40, 2 };
	CHECK_INT(pw_instance_call(inst, "nope", NULL, 0, NULL, 0), PW_ENOTFOUND);
	CHECK_INT(pw_instance_call(inst, "add", args2, 1, r, 1), PW_EINVALID);
	CALLS_END();
}

static void test_export_info(void)
{
	CALLS_BEGIN();
	const pw_func_info *fi = pw_artifact_find_func(a, "swap3");
	CHECK(fi != NULL);
	CHECK_STR(fi->sig, "iIF:FIi");
	CHECK_INT(fi->nresults, 3);
	CHECK(pw_artifact_export_count(a) >= 20);
	CHECK(pw_artifact_export(a, pw_artifact_export_count(a)) == NULL);
	(void)r;
	CALLS_END();
}

static void expect_trap(pw_instance *inst, const char *fn, const pw_val *args, size_t n, const char *reason)
{
	pw_val r[1];
	int rc = pw_instance_call(inst, fn, args, n, r, 1);
	if (rc != PW_ETRAP) {
		pw_test_fail(__FILE__, __LINE__, "%s returned %d (%s), expected a trap", fn, rc, pw_error_last());
		return;
	}
	if (strcmp(pw_instance_trap_reason(inst), reason) != 0)
		pw_test_fail(__FILE__, __LINE__, "%s: trap reason \"%s\", expected \"%s\"", fn,
		             pw_instance_trap_reason(inst), reason);
	if (strncmp(pw_error_last(), "trap: ", 6) != 0 || !strstr(pw_error_last(), reason))
		pw_test_fail(__FILE__, __LINE__, "%s: message \"%s\"", fn, pw_error_last());
}

static void test_trap_unreachable(void)
{
	CALLS_BEGIN();
	expect_trap(inst, "unreachable", NULL, 0, "unreachable");
	(void)r;
	CALLS_END();
}

static void test_trap_out_of_bounds(void)
{
	CALLS_BEGIN();
	pw_val v[2];
	v[0] = 65534;
	expect_trap(inst, "load", v, 1, "out of bounds memory access");
	v[0] = 0xffffffffu;
	expect_trap(inst, "load", v, 1, "out of bounds memory access");
	v[0] = 65536;
	v[1] = 1;
	expect_trap(inst, "store", v, 2, "out of bounds memory access");
	(void)r;
	CALLS_END();
}

static void test_trap_integer_division(void)
{
	CALLS_BEGIN();
	pw_val v[2];
	v[0] = 1;
	v[1] = 0;
	expect_trap(inst, "div_s", v, 2, "integer divide by zero");
	expect_trap(inst, "div_u", v, 2, "integer divide by zero");
	v[0] = 0x80000000u;
	v[1] = 0xffffffffu;
	expect_trap(inst, "div_s", v, 2, "integer overflow");
	(void)r;
	CALLS_END();
}

static void test_trap_float_conversion(void)
{
	CALLS_BEGIN();
	pw_val v[1];
	v[0] = f32_bits(__builtin_nanf(""));
	expect_trap(inst, "trunc", v, 1, "invalid conversion to integer");
	v[0] = f32_bits(3e9f);
	expect_trap(inst, "trunc", v, 1, "integer overflow");
	(void)r;
	CALLS_END();
}

static void test_trap_indirect_call(void)
{
	CALLS_BEGIN();
	pw_val v[2];
	v[0] = 2; /* null element */
	v[1] = 5;
	expect_trap(inst, "call_ind", v, 2, "uninitialized element");
	v[0] = 1; /* $nop: wrong type */
	expect_trap(inst, "call_ind", v, 2, "indirect call type mismatch");
	v[0] = 99; /* out of the table */
	expect_trap(inst, "call_ind", v, 2, "undefined element");
	v[0] = 0xffffffffu;
	expect_trap(inst, "call_ind", v, 2, "undefined element");
	(void)r;
	CALLS_END();
}

static void test_trap_stack_exhausted(void)
{
	CALLS_BEGIN();
	pw_val v[1] = { 0 };
	expect_trap(inst, "recurse", v, 1, "call stack exhausted");
	(void)r;
	CALLS_END();
}

/* After a trap of each kind the instance keeps working and the trap reason is cleared. */
static void test_instance_works_after_traps(void)
{
	CALLS_BEGIN();
	pw_val v[2];
	expect_trap(inst, "unreachable", NULL, 0, "unreachable");
	v[0] = 65534;
	expect_trap(inst, "load", v, 1, "out of bounds memory access");
	v[0] = 0;
	expect_trap(inst, "recurse", v, 1, "call stack exhausted");
	if (pw_test_stopped())
		return;
	v[0] = 0;
	v[1] = 21;
	CHECK_OK(pw_instance_call(inst, "call_ind", v, 2, r, 1));
	CHECK_INT(r[0], 42);
	v[0] = 1;
	v[1] = 2;
	CHECK_OK(pw_instance_call(inst, "add", v, 2, r, 1));
	CHECK_INT(r[0], 3);
	CHECK_STR(pw_instance_trap_reason(inst), "");
	CALLS_END();
}

static void test_host_imports(void)
{
	SETUP();
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	int bias = 1000;
	pw_instance_opts o = { .host_data = &bias };
	CHECK_OK(new_instance(&inst, &a, &o));
	pw_val v[2] = { 20, 3 }, r[1];
	CHECK_OK(pw_instance_call(inst, "call_host_add", v, 2, r, 1));
	CHECK_INT(r[0], 1023);
	v[0] = f64_bits(1.25);
	v[1] = 10;
	CHECK_OK(pw_instance_call(inst, "call_host_f64", v, 2, r, 1));
	CHECK(bits_f64(r[0]) == 12.5);
	v[0] = 7;
	CHECK_INT(pw_instance_call(inst, "call_host_exit", v, 1, NULL, 0), PW_EEXIT);
	CHECK_INT(pw_instance_exit_code(inst), 7);
	CHECK_INT(pw_instance_call(inst, "call_host_trap", NULL, 0, NULL, 0), PW_ETRAP);
	CHECK_STR(pw_instance_trap_reason(inst), "host says no");
	CHECK(strstr(pw_error_last(), "host says no") != NULL);
	v[0] = 1;
	v[1] = 1;
	CHECK_OK(pw_instance_call(inst, "call_host_add", v, 2, r, 1));
	CHECK_INT(r[0], 1002);
	pw_instance_free(inst);
	pw_artifact_free(a);

	/* a host lacking an import: load names it */
	pw_imports *part = NULL;
	CHECK_OK(pw_imports_new(&part));
	CHECK_OK(pw_imports_add(part, "env", "host_add", "ii:i", (void (*)(void))host_add));
	CHECK_OK(pw_imports_add(part, "env", "host_exit", "I:", (void (*)(void))host_exit));
	CHECK_INT(pw_artifact_load(&a, g_basic_art.data, g_basic_art.len, NULL, part), PW_EUNSUPPORTED);
	CHECK(strstr(pw_error_last(), "env.host_trap (:)") != NULL);
	CHECK(strstr(pw_error_last(), "env.host_exit (i:; the host has I:)") != NULL);
	CHECK(a == NULL);
	pw_imports_free(part);
}

/* Only zeros in mem[from, to), apart from the data segment "prewarm" at 16. */
static bool zero_but_data(const uint8_t *mem, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		if (i >= 16 && i < 23) {
			if (mem[i] != (uint8_t)"prewarm"[i - 16])
				return false;
		} else if (mem[i]) {
			return false;
		}
	}
	return true;
}

/* Memories reuse freed guard-page reservations (runtime.c pool): a reused memory must
 * read as zeros everywhere (data segments aside), have exactly its own size (a page the
 * previous user had grown into is out of bounds again), and grow into zeros. */
static void test_memory_reuse(void)
{
	SETUP();
	pw_artifact *a = NULL;
	pw_instance *inst = NULL, *more[3] = { NULL };
	pw_val v, r[1], args[2];
	uint64_t size;
	CHECK_OK(new_instance(&inst, &a, NULL));
	for (int round = 0; round < 40; round++) {
		/* dirty all 4 pages, then free */
		v = 3;
		CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
		CHECK_INT(r[0], 1);
		uint8_t *mem = pw_instance_memory(inst, &size);
		CHECK_INT(size, 4 * 65536);
		memset(mem, 0xab, size);
		pw_instance_free(inst);
		inst = NULL;
		if (pw_rt_guard_pages() && !getenv("PREWARM_MEMORY_POOL"))
			CHECK(pw_rt_memory_pool_size() >= 1);

		CHECK_OK(pw_instance_new(&inst, a, NULL));
		mem = pw_instance_memory(inst, &size);
		CHECK_INT(size, 65536);
		CHECK_MSG(zero_but_data(mem, 0, size), "round %d: a reused memory is not zero", round);
		v = 65532;
		CHECK_OK(pw_instance_call(inst, "load", &v, 1, r, 1));
		CHECK_INT(r[0], 0);
		v = 65536;   /* the previous user's page 1 is out of bounds again */
		expect_trap(inst, "load", &v, 1, "out of bounds memory access");
		if (pw_test_stopped())
			return;
		pw_instance_free(inst);
		CHECK_OK(pw_instance_new(&inst, a, NULL));
		v = 3 * 65536 + 8;
		expect_trap(inst, "load8", &v, 1, "out of bounds memory access");
		if (pw_test_stopped())
			return;
		v = 3;
		CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
		mem = pw_instance_memory(inst, &size);
		CHECK_INT(size, 4 * 65536);
		CHECK_MSG(zero_but_data(mem, 0, size), "round %d: grown pages of a reused memory are not zero", round);
		pw_instance_free(inst);
		CHECK_OK(pw_instance_new(&inst, a, NULL));
	}
	/* live instances never share a memory */
	for (int i = 0; i < 3; i++) {
		CHECK_OK(pw_instance_new(&more[i], a, NULL));
		args[0] = 100;
		args[1] = 1000 + (pw_val)i;
		CHECK_OK(pw_instance_call(more[i], "store", args, 2, NULL, 0));
	}
	for (int i = 0; i < 3; i++) {
		v = 100;
		CHECK_OK(pw_instance_call(more[i], "load", &v, 1, r, 1));
		CHECK_INT(r[0], 1000 + i);
		pw_instance_free(more[i]);
	}
	v = 100;
	CHECK_OK(pw_instance_call(inst, "load", &v, 1, r, 1));
	CHECK_INT(r[0], 0);
	pw_instance_free(inst);
	pw_artifact_free(a);

	/* bigger memories: up to 4 MiB only resident pages are cleared (mincore), above one
	 * madvise drops all; both must read as zeros afterwards */
	pw_buf w = PW_BUF_INIT, so = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_bigmem.wasm"), 0, &w));
	int rc = pw_engine_compile(g_engine, w.data, w.len, NULL, &so, NULL);
	pw_buf_free(&w);
	CHECK_OK(rc);
	rc = pw_artifact_load(&a, so.data, so.len, NULL, g_host);
	pw_buf_free(&so);
	CHECK_OK(rc);
	for (int round = 0; round < 6; round++) {
		uint32_t pages = round % 2 ? 100 : 40;
		CHECK_OK(pw_instance_new(&inst, a, NULL));
		uint8_t *mem = pw_instance_memory(inst, &size);
		CHECK_INT(size, 65536);
		bool zero = true;
		for (uint64_t i = 0; i < size; i++)
			zero = zero && mem[i] == 0;
		CHECK_MSG(zero, "round %d: a reused big memory is not zero", round);
		v = 65536;
		expect_trap(inst, "load8", &v, 1, "out of bounds memory access");
		if (pw_test_stopped())
			return;
		v = pages - 1;
		CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
		CHECK_INT(r[0], 1);
		mem = pw_instance_memory(inst, &size);
		CHECK_INT(size, pages * 65536ull);
		for (uint64_t i = 0; i < size; i++)
			zero = zero && mem[i] == 0;
		CHECK_MSG(zero, "round %d: grown pages of a reused big memory are not zero", round);
		/* dirty every other 4 KiB page (resident and untouched runs alternate) */
		for (uint64_t i = 0; i < size; i += 8192)
			memset(mem + i, 0x5a, 4096);
		pw_instance_free(inst);
	}
	pw_artifact_free(a);
}

static void test_memory_grow(void)
{
	SETUP();
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	CHECK_OK(new_instance(&inst, &a, NULL));
	pw_val v, r[1];
	CHECK_OK(pw_instance_call(inst, "size", NULL, 0, r, 1));
	CHECK_INT(r[0], 1);
	v = 2;
	CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
	CHECK_INT(r[0], 1);
	v = 2; /* 3 + 2 > max 4 */
	CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
	CHECK_INT(r[0], 0xffffffffu);
	v = 1;
	CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
	CHECK_INT(r[0], 3);
	uint64_t size;
	uint8_t *mem = pw_instance_memory(inst, &size);
	CHECK_INT(size, 4 * 65536);
	mem[4 * 65536 - 1] = 9;
	v = 4 * 65536 - 4;
	CHECK_OK(pw_instance_call(inst, "load", &v, 1, r, 1));
	CHECK_INT(r[0], 9u << 24);
	pw_instance_free(inst);

	/* the instance cap: 2 pages */
	pw_instance_opts o = { .max_memory_bytes = 2 * 65536 };
	CHECK_OK(pw_instance_new(&inst, a, &o));
	v = 1;
	CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
	CHECK_INT(r[0], 1);
	CHECK_OK(pw_instance_call(inst, "grow", &v, 1, r, 1));
	CHECK_INT(r[0], 0xffffffffu);
	v = 2 * 65536;
	expect_trap(inst, "load", &v, 1, "out of bounds memory access");
	pw_instance_free(inst);

	/* a cap below the initial size: instantiation fails cleanly */
	pw_instance_opts tiny = { .max_memory_bytes = 1000 };
	CHECK_INT(pw_instance_new(&inst, a, &tiny), PW_ETRAP);
	CHECK(strstr(pw_error_last(), "exceeds the limit") != NULL);
	CHECK(inst == NULL);
	pw_artifact_free(a);
}

static void test_interrupt_deadline(void)
{
	SETUP();
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	CHECK_OK(new_instance(&inst, &a, NULL));
	pw_instance_set_deadline(inst, pw_now() + 0.2);
	pw_val v = 0, r[1];
	CHECK_INT(pw_instance_call(inst, "spin", &v, 1, r, 1), PW_ETIMEOUT);
	CHECK_STR(pw_instance_trap_reason(inst), "interrupted");
	pw_instance_set_deadline(inst, 0);
	v = 100000;
	CHECK_OK(pw_instance_call(inst, "sum_to", &v, 1, r, 1));
	CHECK(r[0] == 5000050000ULL);
	pw_instance_free(inst);
	pw_artifact_free(a);
}

typedef struct interrupter {
	pw_instance *inst;
	atomic_int done;   /* set by the calling thread, read by the interrupter */
} interrupter;

static void *interrupt_main(void *p)
{
	interrupter *it = p;
	while (!atomic_load(&it->done)) {
		pw_instance_interrupt(it->inst);
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void test_interrupt_other_thread(void)
{
	SETUP();
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	CHECK_OK(new_instance(&inst, &a, NULL));
	/* idle: no effect */
	pw_instance_interrupt(inst);
	pw_val v[2] = { 1, 2 }, r[1];
	CHECK_OK(pw_instance_call(inst, "add", v, 2, r, 1));
	interrupter it = { inst, 0 };
	pthread_t th;
	CHECK(pthread_create(&th, NULL, interrupt_main, &it) == 0);
	int rc = pw_instance_call(inst, "spin", v, 1, r, 1);
	atomic_store(&it.done, 1);
	pthread_join(th, NULL);
	CHECK_INT(rc, PW_ETIMEOUT);
	pw_instance_free(inst);
	pw_artifact_free(a);
}

typedef struct worker {
	pw_artifact *a;
	int id;
	int ok, traps;
	char err[256];
} worker;

static void *worker_main(void *p)
{
	worker *w = p;
	pw_instance *inst = NULL;
	if (pw_instance_new(&inst, w->a, NULL)) {
		snprintf(w->err, sizeof w->err, "instance: %s", pw_error_last());
		return NULL;
	}
	for (int i = 0; i < 300 && !w->err[0]; i++) {
		pw_val v[2], r[1];
		int rc;
		const char *want = NULL;
		switch (i % 10) {
		case 3:
			v[0] = (pw_val)i;
			v[1] = 0;
			rc = pw_instance_call(inst, "div_s", v, 2, r, 1);
			want = "integer divide by zero";
			break;
		case 6:
			v[0] = 70000 + (pw_val)w->id;
			rc = pw_instance_call(inst, "load", v, 1, r, 1);
			want = "out of bounds memory access";
			break;
		case 9:
			if (i % 50 == 9) {
				v[0] = 0;
				rc = pw_instance_call(inst, "recurse", v, 1, r, 1);
				want = "call stack exhausted";
				break;
			}
			/* fall through */
		default:
			v[0] = (pw_val)i;
			v[1] = (pw_val)w->id * 1000;
			rc = pw_instance_call(inst, "add", v, 2, r, 1);
			if (rc == 0 && r[0] != (pw_val)(i + w->id * 1000))
				snprintf(w->err, sizeof w->err, "add gave %llu", (unsigned long long)r[0]);
		}
		if (want) {
			if (rc != PW_ETRAP || strcmp(pw_instance_trap_reason(inst), want) != 0)
				snprintf(w->err, sizeof w->err, "iteration %d: rc %d reason '%s', expected '%s'", i, rc,
				         pw_instance_trap_reason(inst), want);
			w->traps++;
		} else if (rc) {
			snprintf(w->err, sizeof w->err, "iteration %d: %s", i, pw_error_last());
		} else {
			w->ok++;
		}
	}
	pw_val r[1];
	if (!w->err[0] && (pw_instance_call(inst, "count", NULL, 0, r, 1) || r[0] != 1))
		snprintf(w->err, sizeof w->err, "instances share globals (count = %llu)", (unsigned long long)r[0]);
	pw_instance_free(inst);
	return NULL;
}

static void test_threads(void)
{
	SETUP();
	pw_artifact *a = NULL;
	CHECK_OK(pw_artifact_load(&a, g_basic_art.data, g_basic_art.len, NULL, g_host));
	worker w[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){ .a = a, .id = i };
		CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(!w[i].err[0], "thread %d: %s", i, w[i].err);
		CHECK_INT(w[i].ok + w[i].traps, 300);
		CHECK_INT(w[i].traps, 66);
	}
	pw_artifact_free(a);
}

typedef struct small_stack {
	pw_artifact *a;
	int rc, rc2;
	char reason[128];
	pw_val sum;
} small_stack;

static void *small_stack_main(void *p)
{
	small_stack *s = p;
	pw_instance *inst = NULL;
	s->rc = -100;
	if (pw_instance_new(&inst, s->a, NULL))
		return NULL;
	pw_val v = 0, r[1];
	s->rc = pw_instance_call(inst, "recurse", &v, 1, r, 1);
	snprintf(s->reason, sizeof s->reason, "%s", pw_instance_trap_reason(inst));
	v = 1000;
	s->rc2 = pw_instance_call(inst, "sum_to", &v, 1, r, 1);
	s->sum = r[0];
	pw_instance_free(inst);
	return NULL;
}

/* A thread whose stack overflows before the depth limit: the guard page fault
 * becomes a clean "call stack exhausted" trap, and the thread goes on. */
static void test_stack_overflow_small_thread(void)
{
	SETUP();
	small_stack s = { 0 };
	CHECK_OK(pw_artifact_load(&s.a, g_basic_art.data, g_basic_art.len, NULL, g_host));
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	pthread_t th;
	CHECK(pthread_create(&th, &at, small_stack_main, &s) == 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&at);
	pw_artifact_free(s.a);
	CHECK_INT(s.rc, PW_ETRAP);
	CHECK_STR(s.reason, "call stack exhausted");
	CHECK_INT(s.rc2, 0);
	CHECK_INT(s.sum, 500500);
}

static void test_reproducible_and_info(void)
{
	SETUP();
	/* the basic module plus an io.kubewarden.metadata custom section */
	static const char meta[] = "{\"protocolVersion\":\"v1\",\"rules\":[]}";
	static const char secname[] = "io.kubewarden.metadata";
	pw_buf w = PW_BUF_INIT;
	pw_buf_append(&w, g_basic_wasm.data, g_basic_wasm.len);
	uint8_t hdr[3] = { 0, (uint8_t)(1 + strlen(secname) + strlen(meta)), (uint8_t)strlen(secname) };
	pw_buf_append(&w, hdr, 3);
	pw_buf_puts(&w, secname);
	pw_buf_puts(&w, meta);

	pw_buf a1 = PW_BUF_INIT, a2 = PW_BUF_INIT;
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, g_host, &a1, NULL));
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, g_host, &a2, NULL));
	CHECK_INT(a1.len, a2.len);
	CHECK_MSG(memcmp(a1.data, a2.data, a1.len) == 0, "two compiles of one module differ");
	CHECK_MSG(a1.len != g_basic_art.len || memcmp(a1.data, g_basic_art.data, a1.len) != 0,
	          "different modules gave the same artifact");

	pw_artifact_info info;
	CHECK_OK(pw_artifact_read_info(a1.data, a1.len, &info));
	CHECK_INT(info.abi_version, PW_ARTIFACT_ABI_VERSION);
	CHECK_STR(info.engine_hash, pw_engine_hash(g_engine));
	char wh[65];
	pw_sha256_hex(w.data, w.len, wh);
	CHECK_STR(info.wasm_sha256, wh);

	pw_artifact *a = NULL;
	CHECK_OK(pw_artifact_load(&a, a1.data, a1.len, &info, g_host));
	size_t ml = 0;
	const char *m = pw_artifact_kw_metadata(a, &ml);
	CHECK(m != NULL);
	CHECK_INT(ml, strlen(meta));
	CHECK(memcmp(m, meta, ml) == 0);
	CHECK_STR(pw_artifact_get_info(a)->wasm_sha256, wh);
	pw_artifact_free(a);

	pw_artifact_info wrong = info;
	wrong.wasm_sha256[0] = wrong.wasm_sha256[0] == 'a' ? 'b' : 'a';
	CHECK_INT(pw_artifact_load(&a, a1.data, a1.len, &wrong, g_host), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "wasm sha256") != NULL);
	wrong = info;
	wrong.engine_hash[5] = wrong.engine_hash[5] == '0' ? '1' : '0';
	CHECK_INT(pw_artifact_load(&a, a1.data, a1.len, &wrong, g_host), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "engine hash") != NULL);

	/* not artifacts */
	CHECK_INT(pw_artifact_read_info(w.data, w.len, &info), PW_EINVALID);
	CHECK_INT(pw_artifact_read_info(a1.data, 40, &info), PW_EINVALID);
	CHECK_INT(pw_artifact_load(&a, a1.data, a1.len / 2, NULL, g_host), PW_EINVALID);
	pw_buf_free(&a1);
	pw_buf_free(&a2);
	pw_buf_free(&w);
}

static uint32_t odd_a(pw_instance *i, uint32_t x) { return x + 1; }
static uint64_t odd_b(pw_instance *i, uint64_t x) { return x * 3; }
static float odd_c(pw_instance *i, float x) { return x / 2; }

static void test_names(void)
{
	SETUP();
	static const struct { const char *in, *out; } cases[] = {
		{ "__guest_request", "__guest_request" }, { "odd-name.x", "oddZ2DnameZ2Ex" },
		{ "Z", "Z5A" }, { "weird$name", "weirdZ24name" }, { "\xc3\xa9", "ZC3ZA9" }, { "a b", "aZ20b" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pw_buf b = PW_BUF_INIT;
		CHECK_OK(pw_shim_mangle(&b, cases[i].in));
		CHECK_STR((char *)b.data, cases[i].out);
		pw_buf_free(&b);
	}
	pw_imports *h = NULL;
	CHECK_OK(pw_imports_new(&h));
	CHECK_OK(pw_imports_add(h, "Zmod-x", "ZZ.y", "i:i", (void (*)(void))odd_a));
	CHECK_OK(pw_imports_add(h, "a__b", "_", "I:I", (void (*)(void))odd_b));
	CHECK_OK(pw_imports_add(h, "\xc3\xa9", "1 x", "f:f", (void (*)(void))odd_c));
	pw_buf w = PW_BUF_INIT, art = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_names.wasm"), 0, &w));
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, h, &art, NULL));
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, h));
	CHECK_OK(pw_instance_new(&inst, a, NULL));
	pw_val v = 41, r[1];
	CHECK_OK(pw_instance_call(inst, "Z", &v, 1, r, 1));
	CHECK_INT(r[0], 42);
	v = 5;
	CHECK_OK(pw_instance_call(inst, "__x$y", &v, 1, r, 1));
	CHECK_INT(r[0], 15);
	v = f32_bits(3.0f);
	CHECK_OK(pw_instance_call(inst, "\xc3\xa9\xe2\x82\xac \"q\" ?", &v, 1, r, 1));
	CHECK(r[0] == f32_bits(1.5f));
	CHECK_OK(pw_instance_call(inst, "", NULL, 0, r, 1));
	CHECK_INT(r[0], 42);
	pw_instance_free(inst);
	pw_artifact_free(a);
	pw_imports_free(h);
	pw_buf_free(&w);
	pw_buf_free(&art);
}

static void test_duplicate_import(void)
{
	SETUP();
	pw_buf w = PW_BUF_INIT, art = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_dup_import.wasm"), 0, &w));
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, g_host, &art, NULL));
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, g_host));
	CHECK_OK(pw_instance_new(&inst, a, NULL));
	pw_val v = 10, r[1];
	CHECK_OK(pw_instance_call(inst, "both", &v, 1, r, 1));
	CHECK_INT(r[0], 23);
	pw_instance_free(inst);
	pw_artifact_free(a);
	pw_buf_free(&w);
	pw_buf_free(&art);
}


/* ---- memory, table and global imports ---- */

/* host_sum(ptr, len): the bytes of the caller's memory summed, read from the host side. */
static uint32_t host_sum(pw_instance *inst, uint32_t ptr, uint32_t len)
{
	if (!pw_instance_mem_ok(inst, ptr, len))
		pw_instance_trap(inst, "host_sum: out of bounds");
	uint8_t *mem = pw_instance_memory(inst, NULL);
	uint32_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum += mem[ptr + i];
	return sum;
}

/* An import table with host_sum and env.memory given by `add` (NULL: no memory). */
static pw_imports *mem_host(int (*add)(pw_imports *, void *), void *arg)
{
	pw_imports *im = NULL;
	if (pw_imports_new(&im) || pw_imports_add(im, "env", "host_sum", "ii:i", (void (*)(void))host_sum) ||
	    (add && add(im, arg))) {
		pw_imports_free(im);
		return NULL;
	}
	return im;
}

typedef struct mem_limits { uint32_t min, max; } mem_limits;

static int add_fresh(pw_imports *im, void *arg)
{
	const mem_limits *l = arg;
	return pw_imports_add_memory(im, "env", "memory", l->min, l->max);
}

static int add_bound(pw_imports *im, void *arg)
{
	return pw_imports_bind_memory(im, "env", "memory", arg);
}

static uint32_t call_i(pw_instance *inst, const char *fn, uint64_t a, uint64_t b, size_t nargs)
{
	pw_val v[2] = { a, b }, r[1] = { 0xdead };
	if (pw_instance_call(inst, fn, v, nargs, r, 1))
		return 0xdeadbeef;
	return (uint32_t)r[0];
}

static void test_memory_import(void)
{
	SETUP();
	pw_buf w = PW_BUF_INIT, art = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_memimport.wasm"), 0, &w));
	pw_imports *fresh = mem_host(add_fresh, &(mem_limits){ 2, 4 });
	CHECK(fresh != NULL);
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, fresh, &art, NULL));
	pw_artifact *a = NULL;
	pw_instance *i1 = NULL, *i2 = NULL;
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, fresh));

	/* a fresh memory per instance: the host's initial size, the data segment, own bytes */
	CHECK_OK(pw_instance_new(&i1, a, NULL));
	CHECK_OK(pw_instance_new(&i2, a, NULL));
	uint64_t size = 0;
	uint8_t *m1 = pw_instance_memory(i1, &size);
	CHECK(m1 != NULL);
	CHECK_INT(size, 2 * 65536);
	CHECK(!memcmp(m1 + 16, "prewarm", 7));
	CHECK_INT(call_i(i1, "size", 0, 0, 0), 2);
	CHECK_INT(call_i(i1, "load8", 17, 0, 1), 'r');
	m1[100] = 42;
	CHECK_INT(call_i(i1, "load8", 100, 0, 1), 42);
	CHECK_INT(call_i(i2, "load8", 100, 0, 1), 0);
	CHECK_OK(pw_instance_call(i2, "store8", (pw_val[]){ 200, 9 }, 2, NULL, 0));
	CHECK_INT(pw_instance_memory(i2, NULL)[200], 9);
	CHECK_INT(m1[200], 0);
	/* host functions read it; growth is seen at once; the maximum is the host's */
	CHECK_INT(call_i(i1, "sum", 16, 7, 2), 'p' + 'r' + 'e' + 'w' + 'a' + 'r' + 'm');
	CHECK_INT(call_i(i1, "grow", 2, 0, 1), 2);
	m1 = pw_instance_memory(i1, &size);
	CHECK_INT(size, 4 * 65536);
	m1[4 * 65536 - 1] = 5;
	CHECK_INT(call_i(i1, "load8", 4 * 65536 - 1, 0, 1), 5);
	CHECK_INT(call_i(i1, "sum", 4 * 65536 - 2, 2, 2), 5);
	CHECK_INT(call_i(i1, "grow", 1, 0, 1), UINT32_MAX);
	expect_trap(i1, "load8", (pw_val[]){ 4 * 65536 }, 1, "out of bounds memory access");
	CHECK_INT(pw_instance_call(i1, "sum", (pw_val[]){ 4 * 65536 - 1, 2 }, 2, NULL, 0), PW_ETRAP);
	CHECK_STR(pw_instance_trap_reason(i1), "host_sum: out of bounds");
	pw_instance_free(i1);
	pw_instance_free(i2);

	/* the instance cap bounds a fresh memory: growth, and an initial size above it */
	pw_instance_opts capped = { .max_memory_bytes = 3 * 65536 };
	CHECK_OK(pw_instance_new(&i1, a, &capped));
	CHECK_INT(call_i(i1, "grow", 2, 0, 1), UINT32_MAX);
	CHECK_INT(call_i(i1, "grow", 1, 0, 1), 2);
	pw_instance_free(i1);
	i1 = NULL;
	capped.max_memory_bytes = 65536;
	CHECK_INT(pw_instance_new(&i1, a, &capped), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "env.memory") != NULL);
	CHECK(i1 == NULL);
	pw_artifact_free(a);
	a = NULL;

	/* one host-created memory shared by two instances, grown from either side */
	pw_memory *shared = NULL;
	CHECK_OK(pw_memory_new(&shared, 1, 3));
	pw_imports *bound = mem_host(add_bound, shared);
	CHECK(bound != NULL);
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, bound));
	CHECK_OK(pw_instance_new(&i1, a, NULL));
	CHECK_OK(pw_instance_new(&i2, a, NULL));
	CHECK(pw_instance_memory(i1, NULL) == pw_memory_data(shared, NULL));
	CHECK_INT(pw_memory_data(shared, NULL)[18], 'e');
	CHECK_OK(pw_instance_call(i1, "store8", (pw_val[]){ 300, 77 }, 2, NULL, 0));
	CHECK_INT(call_i(i2, "load8", 300, 0, 1), 77);
	CHECK_INT(pw_memory_data(shared, NULL)[300], 77);
	CHECK_INT(call_i(i2, "grow", 1, 0, 1), 1);
	CHECK_INT(pw_memory_pages(shared), 2);
	CHECK_INT(call_i(i1, "size", 0, 0, 0), 2);
	uint32_t old = 0;
	CHECK_OK(pw_memory_grow(shared, 1, &old));
	CHECK_INT(old, 2);
	CHECK_INT(call_i(i2, "size", 0, 0, 0), 3);
	CHECK_INT(pw_memory_grow(shared, 1, &old), PW_EINVALID);
	pw_memory_data(shared, &size)[size - 1] = 3;
	CHECK_INT(call_i(i1, "load8", size - 1, 0, 1), 3);
	expect_trap(i2, "load8", (pw_val[]){ size }, 1, "out of bounds memory access");
	/* the module's memory export is the same memory */
	pw_memory *ex = pw_instance_export_memory(i1, "memory");
	CHECK(ex != NULL);
	CHECK(pw_memory_data(ex, NULL) == pw_memory_data(shared, NULL));
	CHECK(pw_instance_export_memory(i1, "nope") == NULL);
	pw_memory_free(ex);   /* borrowed: no-op */
	pw_instance_free(i1);
	pw_instance_free(i2);
	pw_artifact_free(a);
	a = NULL;
	pw_imports_free(bound);
	pw_memory_free(shared);

	/* refusals, at compile (check) and at load, naming module.field and both types */
	struct { mem_limits l; const char *msg; } bad[] = {
		{ { 0, 4 }, "env.memory (memory {min 1, max 4}; the host has memory {min 0, max 4})" },
		{ { 1, PW_NO_MAX }, "env.memory (memory {min 1, max 4}; the host has memory {min 1})" },
		{ { 2, 5 }, "env.memory (memory {min 1, max 4}; the host has memory {min 2, max 5})" },
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		pw_imports *im = mem_host(add_fresh, &bad[k].l);
		CHECK(im != NULL);
		CHECK_INT(pw_engine_check(g_engine, w.data, w.len, im), PW_EUNSUPPORTED);
		CHECK_MSG(strstr(pw_error_last(), bad[k].msg), "check: \"%s\" lacks \"%s\"", pw_error_last(), bad[k].msg);
		CHECK_INT(pw_artifact_load(&a, art.data, art.len, NULL, im), PW_EUNSUPPORTED);
		CHECK_MSG(strstr(pw_error_last(), bad[k].msg), "load: \"%s\" lacks \"%s\"", pw_error_last(), bad[k].msg);
		CHECK(a == NULL);
		pw_imports_free(im);
	}
	pw_imports *none = mem_host(NULL, NULL);
	CHECK_INT(pw_artifact_load(&a, art.data, art.len, NULL, none), PW_EUNSUPPORTED);
	CHECK(strstr(pw_error_last(), "unknown import env.memory (memory {min 1, max 4})") != NULL);
	pw_imports_free(none);
	CHECK_OK(pw_memory_new(&shared, 0, 4));
	bound = mem_host(add_bound, shared);
	CHECK_INT(pw_artifact_load(&a, art.data, art.len, NULL, bound), PW_EUNSUPPORTED);
	CHECK(strstr(pw_error_last(), "the host has memory {min 0, max 4}") != NULL);
	/* a shared memory grown to the declared minimum now matches */
	CHECK_OK(pw_memory_grow(shared, 1, NULL));
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, bound));
	pw_artifact_free(a);
	pw_imports_free(bound);
	pw_memory_free(shared);
	CHECK_INT(pw_memory_new(&shared, 3, 2), PW_EINVALID);
	CHECK_INT(pw_memory_new(&shared, 1, 65537), PW_EINVALID);
	pw_imports_free(fresh);
	pw_buf_free(&w);
	pw_buf_free(&art);
}

/* The externs fixture's host: globals of the given types, a table of `tmin`..`tmax`. */
typedef struct ext_host {
	pw_imports *im;
	pw_global *gi, *gm, *gf;
	pw_table *t;
} ext_host;

static int ext_host_new(ext_host *h, uint8_t gi_type, bool gm_mut, uint32_t tmin, uint32_t tmax)
{
	memset(h, 0, sizeof *h);
	double f = 2.5;
	uint64_t fb;
	memcpy(&fb, &f, 8);
	if (pw_imports_new(&h->im) || pw_global_new(&h->gi, gi_type, false, 41) ||
	    pw_global_new(&h->gm, PW_WASM_I64, gm_mut, 1000) || pw_global_new(&h->gf, PW_WASM_F64, false, fb) ||
	    pw_table_new(&h->t, tmin, tmax))
		return -1;
	return pw_imports_bind_global(h->im, "env", "g_i32", h->gi) ||
	       pw_imports_bind_global(h->im, "env", "g_mut_i64", h->gm) ||
	       pw_imports_bind_global(h->im, "env", "g_f64", h->gf) || pw_imports_bind_table(h->im, "env", "table", h->t);
}

static void ext_host_free(ext_host *h)
{
	pw_imports_free(h->im);
	pw_global_free(h->gi);
	pw_global_free(h->gm);
	pw_global_free(h->gf);
	pw_table_free(h->t);
}

static void test_global_table_imports(void)
{
	SETUP();
	pw_buf w = PW_BUF_INIT, art = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_externs.wasm"), 0, &w));
	ext_host h;
	CHECK_OK(ext_host_new(&h, PW_WASM_I32, true, 3, 10));
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, h.im, &art, NULL));
	pw_artifact *a = NULL;
	pw_instance *i1 = NULL, *i2 = NULL;
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, h.im));
	CHECK_OK(pw_instance_new(&i1, a, NULL));
	pw_val r[1];
	CHECK_INT(call_i(i1, "get_i32", 0, 0, 0), 41);
	CHECK_OK(pw_instance_call(i1, "get_f64", NULL, 0, r, 1));
	CHECK(bits_f64(r[0]) == 2.5);
	/* a mutable global is shared: set by wasm, seen by the host, and back */
	CHECK_OK(pw_instance_call(i1, "get_mut", NULL, 0, r, 1));
	CHECK_INT(r[0], 1000);
	CHECK_OK(pw_instance_call(i1, "set_mut", (pw_val[]){ 0x123456789ull }, 1, NULL, 0));
	CHECK_INT(pw_global_get(h.gm), 0x123456789ull);
	CHECK_OK(pw_global_set(h.gm, 77));
	CHECK_OK(pw_instance_call(i1, "get_mut", NULL, 0, r, 1));
	CHECK_INT(r[0], 77);
	CHECK_INT(pw_global_set(h.gi, 1), PW_EINVALID);
	CHECK_INT(pw_global_get(h.gi), 41);
	/* the table: the element segment wrote index 1; 0 and 2 are null, 3 is past the end */
	CHECK_INT(call_i(i1, "table_size", 0, 0, 0), 3);
	CHECK_INT(pw_table_size(h.t), 3);
	CHECK_INT(call_i(i1, "call_at", 1, 0, 1), 7);
	expect_trap(i1, "call_at", (pw_val[]){ 0 }, 1, "uninitialized element");
	expect_trap(i1, "call_at", (pw_val[]){ 3 }, 1, "undefined element");
	/* exports: the module's own global, and the table it imported */
	pw_global *own = pw_instance_export_global(i1, "own");
	CHECK(own != NULL);
	CHECK_INT(pw_global_valtype(own), PW_WASM_I32);
	CHECK(pw_global_mutable(own));
	CHECK_INT(pw_global_get(own), 5);
	CHECK_OK(pw_instance_call(i1, "bump_own", NULL, 0, NULL, 0));
	CHECK_INT(pw_global_get(own), 6);
	CHECK(pw_instance_export_global(i1, "table") == NULL);
	pw_table *tex = pw_instance_export_table(i1, "table");
	CHECK(tex != NULL);
	CHECK_INT(pw_table_size(tex), 3);
	/* a second instance linked to the first one's exported table and global */
	pw_imports *link = NULL;
	CHECK_OK(pw_imports_new(&link));
	CHECK_OK(pw_imports_bind_global(link, "env", "g_i32", h.gi));
	CHECK_OK(pw_imports_bind_global(link, "env", "g_mut_i64", h.gm));
	CHECK_OK(pw_imports_bind_global(link, "env", "g_f64", h.gf));
	CHECK_OK(pw_imports_bind_table(link, "env", "table", tex));
	pw_artifact *a2 = NULL;
	CHECK_OK(pw_artifact_load(&a2, art.data, art.len, NULL, link));
	CHECK_OK(pw_instance_new(&i2, a2, NULL));
	CHECK_INT(call_i(i2, "call_at", 1, 0, 1), 7);
	CHECK_INT(call_i(i2, "get_mut", 0, 0, 0), 77);
	pw_instance_free(i2);
	pw_artifact_free(a2);
	pw_imports_free(link);
	pw_instance_free(i1);
	pw_artifact_free(a);
	a = NULL;
	ext_host_free(&h);

	/* refusals naming module.field with the declared and the offered type */
	struct { uint8_t gi; bool gm_mut; uint32_t tmin, tmax; const char *msg; } bad[] = {
		{ PW_WASM_I64, true, 2, 10, "env.g_i32 (global i32; the host has global i64)" },
		{ PW_WASM_I32, false, 2, 10, "env.g_mut_i64 (global mut i64; the host has global i64)" },
		{ PW_WASM_I32, true, 1, 10, "env.table (table funcref {min 2, max 10}; the host has table funcref {min 1, max 10})" },
		{ PW_WASM_I32, true, 2, PW_NO_MAX, "env.table (table funcref {min 2, max 10}; the host has table funcref {min 2})" },
		{ PW_WASM_I32, true, 2, 11, "the host has table funcref {min 2, max 11}" },
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		CHECK_OK(ext_host_new(&h, bad[k].gi, bad[k].gm_mut, bad[k].tmin, bad[k].tmax));
		CHECK_INT(pw_engine_check(g_engine, w.data, w.len, h.im), PW_EUNSUPPORTED);
		CHECK_MSG(strstr(pw_error_last(), bad[k].msg), "check: \"%s\" lacks \"%s\"", pw_error_last(), bad[k].msg);
		CHECK_INT(pw_artifact_load(&a, art.data, art.len, NULL, h.im), PW_EUNSUPPORTED);
		CHECK_MSG(strstr(pw_error_last(), bad[k].msg), "load: \"%s\" lacks \"%s\"", pw_error_last(), bad[k].msg);
		CHECK(a == NULL);
		ext_host_free(&h);
	}
	CHECK_INT(pw_engine_check(g_engine, w.data, w.len, g_host), PW_EUNSUPPORTED);
	CHECK(strstr(pw_error_last(), "unknown imports env.g_i32 (global i32), env.g_mut_i64 (global mut i64), "
	                              "env.g_f64 (global f64), env.table (table funcref {min 2, max 10})") != NULL);
	pw_global *g = NULL;
	CHECK_INT(pw_global_new(&g, PW_WASM_FUNCREF, false, 0), PW_EUNSUPPORTED);
	pw_table *t = NULL;
	CHECK_INT(pw_table_new(&t, 5, 4), PW_EINVALID);
	pw_buf_free(&w);
	pw_buf_free(&art);
}

/* A function of instance B called through a table shared with A, while A is the running
 * instance: B's memory is what it reads, and its out-of-bounds access is a trap (the fault
 * is in B's reservation, not in the running instance's). Then a module whose instantiation
 * traps after storing into the table, kept with keep_failed. */
static void test_shared_table(void)
{
	SETUP();
	pw_buf w = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_table *t = NULL;
	pw_imports *im = NULL;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_shared_table.wasm"), 0, &w));
	CHECK_OK(pw_table_new(&t, 1, PW_NO_MAX));
	CHECK_OK(pw_imports_new(&im));
	CHECK_OK(pw_imports_bind_table(im, "env", "table", t));
	CHECK_OK(pw_engine_compile(g_engine, w.data, w.len, im, &art, NULL));
	pw_artifact *a = NULL;
	pw_instance *ia = NULL, *ib = NULL;
	CHECK_OK(pw_artifact_load(&a, art.data, art.len, NULL, im));
	CHECK_OK(pw_instance_new(&ia, a, NULL));
	CHECK_OK(pw_instance_call(ia, "poke", (pw_val[]){ 8, 1 }, 2, NULL, 0));
	CHECK_INT(call_i(ia, "call_at0", 8, 0, 1), 1);
	CHECK_OK(pw_instance_new(&ib, a, NULL));   /* its element segment replaces entry 0 */
	CHECK_OK(pw_instance_call(ib, "poke", (pw_val[]){ 8, 2 }, 2, NULL, 0));
	CHECK_INT(call_i(ia, "call_at0", 8, 0, 1), 2);
	expect_trap(ia, "call_at0", (pw_val[]){ 65536 }, 1, "out of bounds memory access");
	CHECK_INT(call_i(ia, "call_at0", 8, 0, 1), 2);

	/* a module that traps in its data segment after its element segment stored into the
	 * table, kept (keep_failed): what it stored stays callable; the failed instance itself
	 * cannot be called */
	pw_buf pw = PW_BUF_INIT, part = PW_BUF_INIT;
	CHECK_OK(pw_file_read(pw_test_fixture("engine_partial_init.wasm"), 0, &pw));
	CHECK_OK(pw_engine_compile(g_engine, pw.data, pw.len, im, &part, NULL));
	pw_artifact *pa = NULL;
	pw_instance *failed = NULL;
	CHECK_OK(pw_artifact_load(&pa, part.data, part.len, NULL, im));
	CHECK_INT(pw_instance_new(&failed, pa, &(pw_instance_opts){ .keep_failed = true }), PW_ETRAP);
	CHECK(failed != NULL);
	CHECK(strstr(pw_error_last(), "out of bounds") != NULL);
	CHECK_INT(pw_instance_call(failed, "f", NULL, 0, (pw_val[1]){ 0 }, 1), PW_EINVALID);
	CHECK_INT(call_i(ia, "call_at0", 8, 0, 1), 9);
	pw_instance *gone = NULL;
	CHECK_INT(pw_instance_new(&gone, pa, NULL), PW_ETRAP);
	CHECK(gone == NULL);
	pw_instance_free(failed);
	pw_artifact_free(pa);
	pw_buf_free(&pw);
	pw_buf_free(&part);
	pw_instance_free(ib);
	pw_instance_free(ia);
	pw_artifact_free(a);
	pw_imports_free(im);
	pw_table_free(t);
	pw_buf_free(&w);
	pw_buf_free(&art);
}

static void test_patch_loops(void)
{
	static const char in[] = "#define CALL_INDIRECT(a, b) \\\n  (stock(a, b))\n\n"
	                         "static u32 f(void) {\n  w2c_L0: \n    x++;\n  w2c_L12: \n  w2c_B3:;\n"
	                         "  y = w2c_L1;\n w2c_L7:\n}";
	pw_buf out = PW_BUF_INIT;
	size_t n = 0;
	CHECK_OK(pw_compile_patch_loops((const uint8_t *)in, strlen(in), false, &out, &n));
	CHECK_INT(n, 3);
	const char *o = (const char *)out.data;
	CHECK(strncmp(o, "#define CALL_INDIRECT(a, b) \\\n  (stock(a, b))\n#undef CALL_INDIRECT\n", 60) == 0);
	CHECK(strstr(o, "wasm_rt_pw_check_indirect(&(table), (x), func_types[ft])") != NULL);
	o = strstr(o, "static u32");
	CHECK(o != NULL);
	CHECK_STR(o, "static u32 f(void) {\n  w2c_L0:  WASM_RT_LOOP_CHECK;\n    x++;\n"
	                            "  w2c_L12:  WASM_RT_LOOP_CHECK;\n  w2c_B3:;\n  y = w2c_L1;\n"
	                            " w2c_L7: WASM_RT_LOOP_CHECK;\n}");
	pw_buf_free(&out);

	/* the quick tier's float negation: only `x = -(x);` on f32/f64 stack variables */
	static const char neg[] = "  w2c_f0 = -(w2c_f0);\n    w2c_d1_0 = -(w2c_d1_0);\n  w2c_i0 = -(w2c_i0);\n"
	                          "  w2c_f1 = -(w2c_f2);\n  w2c_f = -(w2c_f);\n";
	CHECK_OK(pw_compile_patch_loops((const uint8_t *)neg, strlen(neg), true, &out, &n));
	CHECK_STR((const char *)out.data, "  w2c_f0 = wasm_rt_pw_negf(w2c_f0);\n    w2c_d1_0 = wasm_rt_pw_negd(w2c_d1_0);\n"
	                                  "  w2c_i0 = -(w2c_i0);\n  w2c_f1 = -(w2c_f2);\n  w2c_f = -(w2c_f);\n");
	pw_buf_free(&out);
	CHECK_OK(pw_compile_patch_loops((const uint8_t *)neg, strlen(neg), false, &out, &n));
	CHECK_STR((const char *)out.data, neg);
	pw_buf_free(&out);

	/* element segments before data segments: the two init lines swap, nothing else moves */
	static const char init[] = "  init_globals(instance);\n  init_memories(instance);\n  init_tables(instance);\n"
	                           "  init_data_instances(instance);\n";
	CHECK_OK(pw_compile_patch_loops((const uint8_t *)init, strlen(init), false, &out, &n));
	CHECK_STR((const char *)out.data, "  init_globals(instance);\n  init_tables(instance);\n  init_memories(instance);\n"
	                                  "  init_data_instances(instance);\n");
	pw_buf_free(&out);
	static const char lone[] = "  init_memories(instance);\n  init_globals(instance);\n  init_memories(instance);\n";
	CHECK_OK(pw_compile_patch_loops((const uint8_t *)lone, strlen(lone), false, &out, &n));
	CHECK_STR((const char *)out.data, lone);
	pw_buf_free(&out);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_patch_loops),
		PW_TEST(test_engine_probe),
		PW_TEST(test_tiers_and_pinned),
		PW_TEST(test_refusals),
		PW_TEST(test_call_integers),
		PW_TEST(test_call_floats),
		PW_TEST(test_call_multi_value),
		PW_TEST(test_call_state_persists),
		PW_TEST(test_call_memory),
		PW_TEST(test_call_errors),
		PW_TEST(test_export_info),
		PW_TEST(test_trap_unreachable),
		PW_TEST(test_trap_out_of_bounds),
		PW_TEST(test_trap_integer_division),
		PW_TEST(test_trap_float_conversion),
		PW_TEST(test_trap_indirect_call),
		PW_TEST(test_trap_stack_exhausted),
		PW_TEST(test_instance_works_after_traps),
		PW_TEST(test_host_imports),
		PW_TEST(test_memory_grow),
		PW_TEST(test_memory_reuse),
		PW_TEST(test_interrupt_deadline),
		PW_TEST(test_interrupt_other_thread),
		PW_TEST(test_threads),
		PW_TEST(test_stack_overflow_small_thread),
		PW_TEST(test_reproducible_and_info),
		PW_TEST(test_names),
		PW_TEST(test_duplicate_import),
		PW_TEST(test_memory_import),
		PW_TEST(test_global_table_imports),
		PW_TEST(test_shared_table),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	pw_engine_free(g_engine);
	pw_imports_free(g_host);
	pw_buf_free(&g_basic_wasm);
	pw_buf_free(&g_basic_art);
	return rc;
}
