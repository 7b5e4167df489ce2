/*
 * `prewarm inspect MODULE.wasm [--json]`: what a module is before anything runs
 * it: size, sha256, the ABI it looks like (waPC, WASI command, OPA), imports
 * with their signatures (what the host must provide), exports, the post-MVP
 * features it uses (what the engine may refuse), memory limits, code size, and
 * the Kubewarden metadata custom section pretty-printed. Read-only, using the
 * strict reader of src/engine/wasm.c, so a bad file is a clear error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "prewarm/util.h"
#include "prewarm/wasm.h"

#define INSPECT_MAX_BYTES ((size_t)1 << 30)

static const char *kind_name(uint8_t k)
{
	switch (k) {
	case PW_WASM_FUNC: return "func";
	case PW_WASM_TABLE: return "table";
	case PW_WASM_MEMORY: return "memory";
	case PW_WASM_GLOBAL: return "global";
	case PW_WASM_TAG: return "tag";
	default: return "unknown";
	}
}

/* "(i32, i64) -> f32" */
static void sig_pretty(const pw_wasm_functype *t, char *out, size_t n)
{
	size_t k = 0;
	out[0] = 0;
	if (!t)
		return;
#define ADD(...) do { if (k < n) { int _w = snprintf(out + k, n - k, __VA_ARGS__); if (_w > 0) k += (size_t)_w; } } while (0)
	ADD("(");
	for (uint32_t i = 0; i < t->nparams; i++)
		ADD("%s%s", i ? ", " : "", pw_wasm_valtype_name(t->params[i]));
	ADD(") -> ");
	if (t->nresults == 0)
		ADD("()");
	else if (t->nresults == 1)
		ADD("%s", pw_wasm_valtype_name(t->results[0]));
	else {
		ADD("(");
		for (uint32_t i = 0; i < t->nresults; i++)
			ADD("%s%s", i ? ", " : "", pw_wasm_valtype_name(t->results[i]));
		ADD(")");
	}
#undef ADD
}

static void limits_str(uint64_t min, uint64_t max, bool has_max, const char *unit, char *out, size_t n)
{
	if (has_max)
		snprintf(out, n, "min %llu %s, max %llu %s", (unsigned long long)min, unit,
		         (unsigned long long)max, unit);
	else
		snprintf(out, n, "min %llu %s, no max", (unsigned long long)min, unit);
}

static const pw_wasm_functype *import_type(const pw_wasm_module *m, const pw_wasm_import *im)
{
	return im->kind == PW_WASM_FUNC && im->type_index < m->ntypes ? &m->types[im->type_index] : NULL;
}

static json_t *type_json(const pw_wasm_functype *t)
{
	char sig[256];
	json_t *o = json_object(), *p = json_array(), *r = json_array();
	for (uint32_t i = 0; i < t->nparams; i++)
		json_array_append_new(p, json_string(pw_wasm_valtype_name(t->params[i])));
	for (uint32_t i = 0; i < t->nresults; i++)
		json_array_append_new(r, json_string(pw_wasm_valtype_name(t->results[i])));
	pw_wasm_sig_string(t, sig, sizeof sig);
	json_object_set_new(o, "signature", json_string(sig));
	json_object_set_new(o, "params", p);
	json_object_set_new(o, "results", r);
	return o;
}

static json_t *metadata_json(const pw_wasm_module *m)
{
	json_error_t jerr;
	json_t *j;
	if (!m->kw_metadata)
		return json_null();
	j = json_loadb((const char *)m->kw_metadata, m->kw_metadata_len, JSON_DECODE_ANY, &jerr);
	if (j)
		return j;
	/* not JSON: keep it as a string if it is text (json_stringn checks UTF-8) */
	j = json_stringn((const char *)m->kw_metadata, m->kw_metadata_len);
	return j ? j : json_string("(binary, not JSON)");
}

static int print_json(const char *path, size_t size, const char *sha, const pw_wasm_module *m)
{
	json_t *o = json_object(), *a, *feats = json_array();
	char fs[512];

	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "sha256", json_string(sha));
	json_object_set_new(o, "abi", json_string(pw_wasm_abi_name(m->abi)));
	pw_wasm_features_str(m->features, fs, sizeof fs);
	for (char *tok = strtok(fs, ","); tok; tok = strtok(NULL, ","))
		json_array_append_new(feats, json_string(tok));
	json_object_set_new(o, "features", feats);
	if (m->nmemories || m->mem_min || m->mem_has_max) {
		json_t *mem = json_object();
		json_object_set_new(mem, "min_pages", json_integer((json_int_t)m->mem_min));
		json_object_set_new(mem, "max_pages", m->mem_has_max ? json_integer((json_int_t)m->mem_max) : json_null());
		json_object_set_new(o, "memory", mem);
	} else {
		json_object_set_new(o, "memory", json_null());
	}
	json_object_set_new(o, "code_size", json_integer((json_int_t)m->code_size));
	json_object_set_new(o, "functions", json_integer(m->nfuncs));
	json_object_set_new(o, "start_function", json_boolean(m->has_start));

	a = json_array();
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *im = &m->imports[i];
		const pw_wasm_functype *t = import_type(m, im);
		json_t *e = t ? type_json(t) : json_object();
		json_object_set_new(e, "module", json_string(im->module));
		json_object_set_new(e, "name", json_string(im->name));
		json_object_set_new(e, "kind", json_string(kind_name(im->kind)));
		if (im->kind == PW_WASM_MEMORY || im->kind == PW_WASM_TABLE) {
			json_object_set_new(e, "min", json_integer((json_int_t)im->min));
			json_object_set_new(e, "max", im->has_max ? json_integer((json_int_t)im->max) : json_null());
		}
		if (im->kind == PW_WASM_GLOBAL) {
			json_object_set_new(e, "type", json_string(pw_wasm_valtype_name(im->valtype)));
			json_object_set_new(e, "mutable", json_boolean(im->mutable_));
		}
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "imports", a);

	a = json_array();
	for (uint32_t i = 0; i < m->nexports; i++) {
		const pw_wasm_export *ex = &m->exports[i];
		const pw_wasm_functype *t = ex->kind == PW_WASM_FUNC ? pw_wasm_func_type(m, ex->index) : NULL;
		json_t *e = t ? type_json(t) : json_object();
		json_object_set_new(e, "name", json_string(ex->name));
		json_object_set_new(e, "kind", json_string(kind_name(ex->kind)));
		json_object_set_new(e, "index", json_integer(ex->index));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "exports", a);
	json_object_set_new(o, "kubewarden_metadata", metadata_json(m));

	char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!s) {
		fprintf(stderr, "prewarm inspect: %s: cannot encode JSON\n", path);
		return 1;
	}
	printf("%s\n", s);
	free(s);
	return 0;
}

static void print_text(const char *path, size_t size, const char *sha, const pw_wasm_module *m)
{
	char buf[512], sig[512];

	printf("module:    %s\n", path);
	printf("size:      %zu bytes (%s)\n", size, pw_fmt_bytes(size, buf, sizeof buf));
	printf("sha256:    %s\n", sha);
	printf("abi:       %s\n", pw_wasm_abi_name(m->abi));
	pw_wasm_features_str(m->features, buf, sizeof buf);
	printf("features:  %s\n", buf[0] ? buf : "none (MVP)");
	if (m->nmemories || m->mem_min || m->mem_has_max) {
		limits_str(m->mem_min, m->mem_max, m->mem_has_max, "pages", buf, sizeof buf);
		printf("memory:    %s (64 KiB pages)\n", buf);
	} else {
		printf("memory:    none\n");
	}
	printf("code:      %zu bytes, %u functions%s\n", m->code_size, m->nfuncs,
	       m->has_start ? ", has a start function" : "");

	printf("imports (%u):\n", m->nimports);
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *im = &m->imports[i];
		buf[0] = 0;
		if (im->kind == PW_WASM_FUNC)
			sig_pretty(import_type(m, im), buf, sizeof buf);
		else if (im->kind == PW_WASM_MEMORY)
			limits_str(im->min, im->max, im->has_max, "pages", buf, sizeof buf);
		else if (im->kind == PW_WASM_TABLE)
			limits_str(im->min, im->max, im->has_max, "entries", buf, sizeof buf);
		else if (im->kind == PW_WASM_GLOBAL)
			snprintf(buf, sizeof buf, "%s%s", im->mutable_ ? "mut " : "", pw_wasm_valtype_name(im->valtype));
		printf("  %-6s %s.%s %s\n", kind_name(im->kind), im->module, im->name, buf);
	}
	printf("exports (%u):\n", m->nexports);
	for (uint32_t i = 0; i < m->nexports; i++) {
		const pw_wasm_export *ex = &m->exports[i];
		sig[0] = 0;
		if (ex->kind == PW_WASM_FUNC)
			sig_pretty(pw_wasm_func_type(m, ex->index), sig, sizeof sig);
		printf("  %-6s %s %s\n", kind_name(ex->kind), ex->name, sig);
	}
	if (m->kw_metadata) {
		json_t *j = metadata_json(m);
		char *s = json_is_string(j) ? NULL : json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
		printf("kubewarden metadata (%zu bytes):\n", m->kw_metadata_len);
		if (s)
			printf("%s\n", s);
		else if (json_is_string(j))
			printf("%s\n", json_string_value(j));
		free(s);
		json_decref(j);
	} else {
		printf("kubewarden metadata: none\n");
	}
}

static void inspect_usage(FILE *f)
{
	fprintf(f, "usage: prewarm inspect MODULE.wasm [--json]\n\n"
	           "Shows a module's size, sha256, ABI (waPC, WASI command, OPA, unknown), imports with\n"
	           "their signatures, exports, the post-MVP features it uses, memory limits, code size\n"
	           "and its io.kubewarden.metadata section. Exit 0, or 1 when the file cannot be read\n"
	           "or is not a valid core WebAssembly module (the message says why), 2 on bad usage.\n");
}

int pw_cmd_inspect(int argc, char **argv)
{
	const char *path = NULL;
	bool as_json = false;
	pw_buf b = PW_BUF_INIT;
	pw_wasm_module *m = NULL;
	char sha[PW_SHA256_HEX_LEN + 1];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			as_json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			inspect_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "prewarm inspect: unknown option '%s'\n", argv[i]);
			inspect_usage(stderr);
			return 2;
		} else if (path) {
			fprintf(stderr, "prewarm inspect: one module at a time ('%s' and '%s')\n", path, argv[i]);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		inspect_usage(stderr);
		return 2;
	}
	if (pw_file_read(path, INSPECT_MAX_BYTES, &b) < 0) {
		fprintf(stderr, "prewarm inspect: %s\n", pw_error_last());
		return 1;
	}
	pw_sha256_hex(b.data, b.len, sha);
	rc = pw_wasm_parse(&m, b.data, b.len);
	if (rc < 0) {
		fprintf(stderr, "prewarm inspect: %s: %s\n", path, pw_error_last());
		pw_buf_free(&b);
		return 1;
	}
	if (as_json)
		rc = print_json(path, b.len, sha, m);
	else
		print_text(path, b.len, sha, m), rc = 0;
	if (fflush(stdout) != 0) {
		perror("prewarm inspect: stdout");
		rc = 1;
	}
	pw_wasm_module_free(m);
	pw_buf_free(&b);
	return rc;
}
