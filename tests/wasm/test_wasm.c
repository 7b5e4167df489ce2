/*
 * Tests of the wasm reader (src/engine/wasm.c): an MVP fixture read in full
 * (imports, exports, signatures, limits, custom section, ABI), one fixture per
 * post-MVP feature whose detection is cross-checked against wabt's
 * wasm-validate (the fixture must fail with the feature disabled and pass with
 * it enabled, and the reader must report exactly that feature), hand-made
 * malformed binaries that must give PW_EINVALID with an offset, and, when
 * PREWARM_CORPUS is set, every module of the third-party corpus.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"
#include "prewarm/wasi.h"
#include "prewarm/wasm.h"

static int parse_file(const char *path, pw_wasm_module **m)
{
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(path, 0, &b);
	if (rc == 0)
		rc = pw_wasm_parse(m, b.data, b.len);
	pw_buf_free(&b);
	return rc;
}

static int parse_bytes(const uint8_t *p, size_t n)
{
	pw_wasm_module *m = NULL;
	int rc = pw_wasm_parse(&m, p, n);
	pw_wasm_module_free(m);
	return rc;
}

static void test_mvp_module(void)
{
	pw_wasm_module *m = NULL;
	char sig[64];
	CHECK_OK(parse_file(pw_test_fixture("wasm_mvp.wasm"), &m));
	CHECK_INT(m->features, 0);
	CHECK_INT(m->nimports, 3);
	CHECK_STR(m->imports[0].module, "env");
	CHECK_STR(m->imports[0].name, "log");
	CHECK_INT(m->imports[0].kind, PW_WASM_FUNC);
	pw_wasm_sig_string(&m->types[m->imports[0].type_index], sig, sizeof sig);
	CHECK_STR(sig, "ii:");
	pw_wasm_sig_string(&m->types[m->imports[1].type_index], sig, sizeof sig);
	CHECK_STR(sig, "iIfF:i");
	CHECK_INT(m->imports[2].kind, PW_WASM_GLOBAL);
	CHECK_INT(m->imports[2].valtype, PW_WASM_I32);
	CHECK_INT(m->nimported_funcs, 2);
	CHECK_INT(m->nfuncs, 3);
	CHECK_INT(m->nmemories, 1);
	CHECK_INT(m->ntables, 1);
	CHECK_INT(m->nglobals, 2);
	CHECK_INT(m->mem_min, 2);
	CHECK(m->mem_has_max);
	CHECK_INT(m->mem_max, 16);
	CHECK(m->has_start);
	CHECK(m->code_size > 0);
	CHECK(m->kw_metadata == NULL);
	CHECK_INT(m->abi, PW_ABI_WASI_COMMAND);
	CHECK_STR(pw_wasm_abi_name(m->abi), "WASI command");

	const pw_wasm_export *e = pw_wasm_find_export(m, "add", PW_WASM_FUNC);
	CHECK(e != NULL);
	CHECK_INT(e->index, 3);   /* 2 imports, then $init, then $add */
	pw_wasm_sig_string(pw_wasm_func_type(m, e->index), sig, sizeof sig);
	CHECK_STR(sig, "ii:i");
	pw_wasm_sig_string(pw_wasm_func_type(m, 1), sig, sizeof sig);
	CHECK_STR(sig, "iIfF:i");
	CHECK(pw_wasm_func_type(m, 5) == NULL);
	CHECK(pw_wasm_find_export(m, "memory", PW_WASM_MEMORY) != NULL);
	CHECK(pw_wasm_find_export(m, "table", PW_WASM_TABLE) != NULL);
	CHECK(pw_wasm_find_export(m, "answer", PW_WASM_GLOBAL) != NULL);
	CHECK(pw_wasm_find_export(m, "answer", PW_WASM_FUNC) == NULL);
	CHECK(pw_wasm_find_export(m, "add", -1) != NULL);
	pw_wasm_module_free(m);
}

/* The MVP fixture plus a custom section appended: metadata kept byte for byte. */
static void test_kubewarden_metadata(void)
{
	pw_buf b = PW_BUF_INIT;
	pw_wasm_module *m = NULL;
	static const char name[] = "io.kubewarden.metadata";
	static const char payload[] = "{\"protocolVersion\":\"v1\",\"mutating\":false}";
	CHECK_OK(pw_file_read(pw_test_fixture("wasm_mvp.wasm"), 0, &b));
	uint8_t hdr[3] = { 0, (uint8_t)(1 + sizeof name - 1 + sizeof payload - 1), sizeof name - 1 };
	pw_buf_append(&b, hdr, 3);
	pw_buf_append(&b, name, sizeof name - 1);
	pw_buf_append(&b, payload, sizeof payload - 1);
	int rc = pw_wasm_parse(&m, b.data, b.len);
	pw_buf_free(&b);
	CHECK_OK(rc);
	CHECK(m->kw_metadata != NULL);
	CHECK_INT(m->kw_metadata_len, sizeof payload - 1);
	CHECK(memcmp(m->kw_metadata, payload, sizeof payload - 1) == 0);
	pw_wasm_module_free(m);
}

static int run_validate(const char *flags, const char *path)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "wasm-validate %s '%s' >/dev/null 2>&1", flags, path);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Each feature fixture: wasm-validate refuses it without the feature and accepts it
 * with it, and the reader reports that feature (and no unrelated one). */
static void test_features_vs_wasm_validate(void)
{
	static const struct {
		const char *fixture;
		uint32_t bit;
		const char *off, *on;
	} cases[] = {
		{ "wasm_feat_simd", PW_FEAT_SIMD, "--disable-simd", "" },
		{ "wasm_feat_bulk", PW_FEAT_BULK_MEMORY, "--disable-bulk-memory", "" },
		{ "wasm_feat_reftypes", PW_FEAT_REFERENCE_TYPES, "--disable-reference-types", "" },
		{ "wasm_feat_multivalue", PW_FEAT_MULTI_VALUE, "--disable-multi-value", "" },
		{ "wasm_feat_signext", PW_FEAT_SIGN_EXTENSION, "--disable-sign-extension", "" },
		{ "wasm_feat_sat", PW_FEAT_SAT_FLOAT_TO_INT, "--disable-saturating-float-to-int", "" },
		{ "wasm_feat_mutglobal", PW_FEAT_MUTABLE_GLOBALS, "--disable-mutable-globals", "" },
		{ "wasm_feat_threads", PW_FEAT_THREADS, "", "--enable-threads" },
		{ "wasm_feat_exceptions", PW_FEAT_EXCEPTIONS, "", "--enable-exceptions" },
		{ "wasm_feat_tailcall", PW_FEAT_TAIL_CALL, "", "--enable-tail-call" },
		{ "wasm_feat_memory64", PW_FEAT_MEMORY64, "", "--enable-memory64" },
		{ "wasm_feat_multimemory", PW_FEAT_MULTI_MEMORY, "", "--enable-multi-memory" },
	};
	if (run_validate("--help", "") != 0) {
		pw_test_skip("wasm-validate (wabt) not found");
		return;
	}
	CHECK_INT(run_validate("--disable-simd --disable-bulk-memory --disable-reference-types "
	                       "--disable-multi-value --disable-sign-extension "
	                       "--disable-saturating-float-to-int --disable-mutable-globals",
	                       pw_test_fixture("wasm_mvp.wasm")), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char name[128], fs[256];
		pw_wasm_module *m = NULL;
		snprintf(name, sizeof name, "%s.wasm", cases[i].fixture);
		const char *path = pw_test_fixture(name);
		CHECK_MSG(run_validate(cases[i].off, path) != 0, "%s: wasm-validate %s accepted it", name, cases[i].off);
		CHECK_MSG(run_validate(cases[i].on, path) == 0, "%s: wasm-validate %s refused it", name, cases[i].on);
		CHECK_OK(parse_file(path, &m));
		uint32_t f = m->features;
		pw_wasm_module_free(m);
		CHECK_MSG(f & cases[i].bit, "%s: feature not detected (got %s)", name,
		          pw_wasm_features_str(f, fs, sizeof fs));
		/* exceptions' tag uses a param type, threads' fixture is otherwise MVP, etc.:
		 * nothing else should be reported, except what the feature implies */
		uint32_t allowed = cases[i].bit;
		CHECK_MSG((f & ~allowed) == 0, "%s: unexpected extra features %s", name,
		          pw_wasm_features_str(f & ~allowed, fs, sizeof fs));
	}
}

static void test_features_str(void)
{
	char buf[256];
	CHECK_STR(pw_wasm_features_str(0, buf, sizeof buf), "");
	CHECK_STR(pw_wasm_features_str(PW_FEAT_SIMD | PW_FEAT_BULK_MEMORY, buf, sizeof buf), "simd,bulk-memory");
	CHECK_STR(pw_wasm_features_str(PW_FEAT_MULTI_MEMORY, buf, sizeof buf), "multi-memory");
	/* truncation keeps whole names */
	CHECK_STR(pw_wasm_features_str(PW_FEAT_SIMD | PW_FEAT_BULK_MEMORY, buf, 8), "simd");
	CHECK_STR(pw_wasm_valtype_name(PW_WASM_F64), "f64");
	CHECK_STR(pw_wasm_abi_name(PW_ABI_WAPC), "waPC");
}

#define HDR 0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00

static void check_bad(const uint8_t *p, size_t n, int code, const char *needle)
{
	int rc = parse_bytes(p, n);
	if (rc != code) {
		pw_test_fail(__FILE__, __LINE__, "expected %d for '%s', got %d: %s", code, needle, rc, pw_error_last());
		return;
	}
	if (!strstr(pw_error_last(), needle))
		pw_test_fail(__FILE__, __LINE__, "message '%s' lacks '%s'", pw_error_last(), needle);
}

static void test_malformed(void)
{
	static const uint8_t empty[] = { HDR };
	static const uint8_t notwasm[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
	static const uint8_t shorthdr[] = { 0x00, 'a', 's', 'm', 1 };
	static const uint8_t component[] = { 0x00, 'a', 's', 'm', 0x0d, 0x00, 0x01, 0x00 };
	static const uint8_t version2[] = { 0x00, 'a', 's', 'm', 0x02, 0x00, 0x00, 0x00 };
	/* type section: size 5 but the file ends earlier */
	static const uint8_t truncated[] = { HDR, 0x01, 0x05, 0x01, 0x60 };
	/* over-long LEB: section size encoded in 6 bytes */
	static const uint8_t longleb[] = { HDR, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	/* LEB with bits past 32 set in its 5th byte */
	static const uint8_t bigleb[] = { HDR, 0x01, 0xff, 0xff, 0xff, 0xff, 0x1f };
	/* function section before type section */
	static const uint8_t order[] = { HDR, 0x03, 0x01, 0x00, 0x01, 0x01, 0x00 };
	/* repeated type section */
	static const uint8_t repeat[] = { HDR, 0x01, 0x01, 0x00, 0x01, 0x01, 0x00 };
	/* type vector of 1000000 entries in 1 byte */
	static const uint8_t hugevec[] = { HDR, 0x01, 0x04, 0xc0, 0x84, 0x3d, 0x60 };
	/* unknown section id 0x20 */
	static const uint8_t unknownsec[] = { HDR, 0x20, 0x00 };
	/* type section with a byte left over */
	static const uint8_t leftover[] = { HDR, 0x01, 0x05, 0x01, 0x60, 0x00, 0x00, 0x00 };
	/* import name with invalid UTF-8 */
	static const uint8_t badutf8[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
	                                  0x02, 0x07, 0x01, 0x01, 0xff, 0x01, 'x', 0x00, 0x00 };
	/* import name with a NUL byte */
	static const uint8_t nulname[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
	                                  0x02, 0x07, 0x01, 0x01, 0x00, 0x01, 'x', 0x00, 0x00 };
	/* function declared, no code section */
	static const uint8_t nocode[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00 };
	/* body without its final end */
	static const uint8_t noend[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
	                                 0x0a, 0x04, 0x01, 0x02, 0x00, 0x01 };
	/* body with an unknown opcode 0xf0 */
	static const uint8_t badop[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
	                                 0x0a, 0x05, 0x01, 0x03, 0x00, 0xf0, 0x0b };
	/* call to a function index that does not exist */
	static const uint8_t badcall[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
	                                   0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x05, 0x0b };
	/* export of a missing function */
	static const uint8_t badexport[] = { HDR, 0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00 };

	/* two exports named "f" */
	static const uint8_t dupexport[] = { HDR, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
	                                     0x07, 0x09, 0x02, 0x01, 'f', 0x00, 0x00, 0x01, 'f', 0x00, 0x00,
	                                     0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b };
	/* memory min 2 > max 1; memory of 65537 pages */
	static const uint8_t minmax[] = { HDR, 0x05, 0x04, 0x01, 0x01, 0x02, 0x01 };
	static const uint8_t bigmem[] = { HDR, 0x05, 0x05, 0x01, 0x00, 0x81, 0x80, 0x04 };

	check_bad(dupexport, sizeof dupexport, PW_EINVALID, "duplicate export name \"f\"");
	check_bad(minmax, sizeof minmax, PW_EINVALID, "maximum is smaller than minimum");
	check_bad(bigmem, sizeof bigmem, PW_EINVALID, "above 65536 pages");
	check_bad(empty, 0, PW_EINVALID, "bad magic");
	check_bad(notwasm, sizeof notwasm, PW_EINVALID, "bad magic");
	check_bad(shorthdr, sizeof shorthdr, PW_EINVALID, "truncated");
	check_bad(component, sizeof component, PW_EUNSUPPORTED, "component-model binary");
	check_bad(version2, sizeof version2, PW_EINVALID, "version");
	check_bad(truncated, sizeof truncated, PW_EINVALID, "offset 0x8");
	check_bad(longleb, sizeof longleb, PW_EINVALID, "too long");
	check_bad(bigleb, sizeof bigleb, PW_EINVALID, "too large");
	check_bad(order, sizeof order, PW_EINVALID, "type section out of order");
	check_bad(repeat, sizeof repeat, PW_EINVALID, "out of order or repeated");
	check_bad(hugevec, sizeof hugevec, PW_EINVALID, "vector length");
	check_bad(unknownsec, sizeof unknownsec, PW_EINVALID, "unknown section id");
	check_bad(leftover, sizeof leftover, PW_EINVALID, "left over");
	check_bad(badutf8, sizeof badutf8, PW_EINVALID, "UTF-8");
	check_bad(nulname, sizeof nulname, PW_EUNSUPPORTED, "NUL byte");
	check_bad(nocode, sizeof nocode, PW_EINVALID, "without a code section");
	check_bad(noend, sizeof noend, PW_EINVALID, "unexpected end");
	check_bad(badop, sizeof badop, PW_EINVALID, "unknown opcode 0xf0");
	check_bad(badcall, sizeof badcall, PW_EINVALID, "function index 5 out of range");
	check_bad(badexport, sizeof badexport, PW_EINVALID, "export index out of range");
	CHECK_INT(parse_bytes(empty, sizeof empty), 0);
}

/* Every prefix of a real module is refused cleanly (never a crash, never accepted
 * except at section boundaries). */
static void test_truncations(void)
{
	pw_buf b = PW_BUF_INIT;
	size_t accepted = 0;
	CHECK_OK(pw_file_read(pw_test_fixture("wasm_mvp.wasm"), 0, &b));
	for (size_t n = 0; n < b.len; n++) {
		int rc = parse_bytes(b.data, n);
		if (rc == 0)
			accepted++;
		else if (rc != PW_EINVALID) {
			pw_buf_free(&b);
			CHECK_MSG(0, "prefix of %zu bytes: code %d: %s", n, rc, pw_error_last());
		}
	}
	CHECK_INT(parse_bytes(b.data, b.len), 0);
	pw_buf_free(&b);
	/* a prefix ending exactly at a section boundary before the function section is a valid module */
	CHECK(accepted >= 1 && accepted < 12);
}

/* wasm-validate flags that turn off every default-on feature the reader did not
 * see and turn on every default-off feature it did. */
static void validate_flags(uint32_t f, char *out, size_t n)
{
	static const struct { uint32_t bit; const char *flag; bool default_on; } map[] = {
		{ PW_FEAT_SIMD, "simd", true },
		{ PW_FEAT_BULK_MEMORY, "bulk-memory", true },
		{ PW_FEAT_REFERENCE_TYPES, "reference-types", true },
		{ PW_FEAT_MULTI_VALUE, "multi-value", true },
		{ PW_FEAT_SIGN_EXTENSION, "sign-extension", true },
		{ PW_FEAT_SAT_FLOAT_TO_INT, "saturating-float-to-int", true },
		{ PW_FEAT_MUTABLE_GLOBALS, "mutable-globals", true },
		{ PW_FEAT_THREADS, "threads", false },
		{ PW_FEAT_EXCEPTIONS, "exceptions", false },
		{ PW_FEAT_TAIL_CALL, "tail-call", false },
		{ PW_FEAT_MEMORY64, "memory64", false },
		{ PW_FEAT_MULTI_MEMORY, "multi-memory", false },
	};
	size_t k = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0] && k < n; i++) {
		bool used = f & map[i].bit;
		if (map[i].default_on && !used)
			k += (size_t)snprintf(out + k, n - k, " --disable-%s", map[i].flag);
		else if (!map[i].default_on && used)
			k += (size_t)snprintf(out + k, n - k, " --enable-%s", map[i].flag);
	}
}

/* Every module of the third-party corpus parses (components are refused as such),
 * and wasm-validate agrees with the detected features: it accepts the module with
 * every feature the reader did not report turned off. */
static void test_corpus(void)
{
	const char *dir = getenv("PREWARM_CORPUS");
	int n = 0, components = 0;
	if (!dir || !*dir) {
		pw_test_skip("PREWARM_CORPUS is not set (folder of third-party .wasm modules)");
		return;
	}
	bool have_validate = run_validate("--help", "") == 0;
	DIR *d = opendir(dir);
	CHECK_MSG(d != NULL, "cannot open PREWARM_CORPUS=%s", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char path[4096], fs[256];
		pw_wasm_module *m = NULL;
		if (l < 5 || strcmp(de->d_name + l - 5, ".wasm") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		int rc = parse_file(path, &m);
		if (rc == PW_EUNSUPPORTED && strstr(pw_error_last(), "component-model")) {
			printf("  %-60s component-model binary (refused)\n", de->d_name);
			components++;
			continue;
		}
		if (rc != 0) {
			closedir(d);
			CHECK_MSG(0, "%s: %s", de->d_name, pw_error_last());
		}
		printf("  %-60s %-12s code %8zu B  imports %3u exports %3u  features: %s\n", de->d_name,
		       pw_wasm_abi_name(m->abi), m->code_size, m->nimports, m->nexports,
		       pw_wasm_features_str(m->features, fs, sizeof fs));
		char flags[512];
		validate_flags(m->features, flags, sizeof flags);
		pw_wasm_module_free(m);
		if (have_validate && run_validate(flags, path) != 0) {
			closedir(d);
			CHECK_MSG(0, "%s: wasm-validate%s refuses it: a feature was missed", de->d_name, flags);
		}
		n++;
	}
	closedir(d);
	printf("  corpus: %d core modules parsed, %d component-model binaries refused\n", n, components);
	CHECK(n > 0);
}

/* Every WASI import wasi-libc makes (fixture wasi_allsigs references all of them) is
 * registered by pw_wasi_add_imports under both module names, with the same signature. */
static void test_wasi_signatures_match_wasi_libc(void)
{
	pw_wasm_module *m = NULL;
	pw_imports *im = NULL;
	char sig[64];
	uint32_t n = 0;
	CHECK_OK(parse_file(pw_test_fixture("wasi_allsigs.wasm"), &m));
	if (pw_imports_new(&im) != 0 || pw_wasi_add_imports(im) != 0) {
		pw_wasm_module_free(m);
		pw_imports_free(im);
		CHECK_MSG(0, "pw_wasi_add_imports: %s", pw_error_last());
	}
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *w = &m->imports[i];
		if (w->kind != PW_WASM_FUNC || strcmp(w->module, "wasi_snapshot_preview1") != 0)
			continue;
		pw_wasm_sig_string(&m->types[w->type_index], sig, sizeof sig);
		const pw_host_func *h1 = pw_imports_find(im, "wasi_snapshot_preview1", w->name);
		const pw_host_func *h0 = pw_imports_find(im, "wasi_unstable", w->name);
		if (!h1 || !h0 || strcmp(h1->sig, sig) != 0 || strcmp(h0->sig, sig) != 0) {
			pw_test_fail(__FILE__, __LINE__, "%s: wasi-libc imports it as \"%s\", host has %s / %s", w->name,
			             sig, h1 ? h1->sig : "(missing)", h0 ? h0->sig : "(missing)");
			break;
		}
		n++;
	}
	pw_wasm_module_free(m);
	pw_imports_free(im);
	CHECK_MSG(n >= 40, "only %u WASI imports in the fixture", n);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_mvp_module),
		PW_TEST(test_kubewarden_metadata),
		PW_TEST(test_features_vs_wasm_validate),
		PW_TEST(test_features_str),
		PW_TEST(test_malformed),
		PW_TEST(test_truncations),
		PW_TEST(test_corpus),
		PW_TEST(test_wasi_signatures_match_wasi_libc),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
