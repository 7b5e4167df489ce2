/*
 * The shim generator: C source compiled together with wasm2c's output that
 * gives every artifact one uniform ABI (struct wasm_rt_pw_shim in
 * rt/wasm-rt.h), so the loader never needs the module's generated header:
 * - one trampoline per function import, defining the symbol the generated code
 *   calls (e.g. `u32 Z_wapcZ___guest_request(struct Z_wapc_instance_t *, u32, u32)`)
 *   and forwarding to the host function the loader put in the import table,
 *   with the pw_instance (passed as every imported-module instance) first;
 * - one accessor per memory, table or global import (`wasm_rt_memory_t
 *   *Z_envZ_memory(struct Z_env_instance_t *)`, called once at instantiation),
 *   returning the storage the runtime bound to that import slot of the
 *   instance, and a table of those imports with their declared types;
 * - a getter per exported memory, table or global with its declared type, so
 *   one instance's export can be bound into another module's imports;
 * - one generic invoker per exported function, converting 64-bit value slots
 *   to the C types and back (multi-value results come back from wasm2c 1.0.32
 *   as `struct wasm_multi_<letters>` with fields `<letter><index>`);
 * - the description (ABI version, engine hash, wasm sha256) as the exported
 *   data symbol PW_ARTIFACT_DESC_SYMBOL (an ELF section attribute would do for
 *   gcc and clang, but tcc folds such data into .data), and the
 *   io.kubewarden.metadata section as bytes.
 * Names follow wasm2c 1.0.32's mangling (pw_shim_mangle), tested against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

int pw_shim_mangle(pw_buf *out, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		unsigned c = *p;
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z' && c != 'Z') ||
		            (c >= '0' && c <= '9') || c == '_';
		int rc = keep ? pw_buf_append(out, p, 1) : pw_buf_printf(out, "Z%02X", c);
		if (rc)
			return rc;
	}
	return 0;
}

/* A C string literal of any bytes. */
static void c_string(pw_buf *out, const char *s)
{
	pw_buf_puts(out, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '?')
			pw_buf_append(out, p, 1);
		else
			pw_buf_printf(out, "\\%03o", *p);
	}
	pw_buf_puts(out, "\"");
}

static const char *ctype(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return "u32";
	case PW_WASM_I64: return "u64";
	case PW_WASM_F32: return "f32";
	case PW_WASM_F64: return "f64";
	default: return NULL;
	}
}

static char multi_letter(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return 'i';
	case PW_WASM_I64: return 'j';
	case PW_WASM_F32: return 'f';
	case PW_WASM_F64: return 'd';
	default: return 0;
	}
}

static bool numeric_type(const pw_wasm_functype *t)
{
	for (uint32_t i = 0; i < t->nparams; i++)
		if (!ctype(t->params[i]))
			return false;
	for (uint32_t i = 0; i < t->nresults; i++)
		if (!ctype(t->results[i]))
			return false;
	return true;
}

static bool same_type(const pw_wasm_functype *a, const pw_wasm_functype *b)
{
	return a->nparams == b->nparams && a->nresults == b->nresults &&
	       (!a->nparams || !memcmp(a->params, b->params, a->nparams)) &&
	       (!a->nresults || !memcmp(a->results, b->results, a->nresults));
}

/* True when import i repeats an earlier (module, name): wasm2c declares it once. */
static bool is_repeat(const pw_wasm_module *m, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (!strcmp(m->imports[j].module, m->imports[i].module) && !strcmp(m->imports[j].name, m->imports[i].name))
			return true;
	return false;
}

bool pw_shim_import_repeats(const pw_wasm_module *m, uint32_t i)
{
	return is_repeat(m, i);
}

static const char *kind_name(uint8_t kind)
{
	static const char *const kinds[] = { "function", "table", "memory", "global", "tag" };
	return kind < sizeof kinds / sizeof kinds[0] ? kinds[kind] : "?";
}

static bool numeric_valtype(uint8_t t)
{
	return ctype(t) != NULL;
}

/* Same kind and same type (what wasm2c's one declaration of a repeated import needs). */
static bool same_import(const pw_wasm_module *m, const pw_wasm_import *a, const pw_wasm_import *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == PW_WASM_FUNC)
		return same_type(&m->types[a->type_index], &m->types[b->type_index]);
	return a->valtype == b->valtype && a->mutable_ == b->mutable_ && a->min == b->min && a->max == b->max &&
	       a->has_max == b->has_max;
}

int pw_shim_check(const pw_wasm_module *m)
{
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *im = &m->imports[i];
		switch (im->kind) {
		case PW_WASM_FUNC: {
			if (im->type_index >= m->ntypes)
				return pw_error_set(PW_EINVALID, "import %s.%s: type index %u out of range", im->module,
				                    im->name, im->type_index);
			const pw_wasm_functype *t = &m->types[im->type_index];
			if (!numeric_type(t) || t->nresults > 1)
				return pw_error_set(PW_EUNSUPPORTED,
				                    "import %s.%s: only numeric parameters and at most one result are supported",
				                    im->module, im->name);
			break;
		}
		case PW_WASM_MEMORY:
			break;
		case PW_WASM_TABLE:
			if (im->valtype != PW_WASM_FUNCREF)
				return pw_error_set(PW_EUNSUPPORTED, "import %s.%s is a table of %s: only funcref tables are supported",
				                    im->module, im->name, pw_wasm_valtype_name(im->valtype));
			break;
		case PW_WASM_GLOBAL:
			if (!numeric_valtype(im->valtype))
				return pw_error_set(PW_EUNSUPPORTED,
				                    "import %s.%s is a %s global: only i32, i64, f32 and f64 globals are supported",
				                    im->module, im->name, pw_wasm_valtype_name(im->valtype));
			break;
		default:
			return pw_error_set(PW_EUNSUPPORTED, "import %s.%s is a %s: not supported", im->module, im->name,
			                    kind_name(im->kind));
		}
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(m->imports[j].module, im->module) && !strcmp(m->imports[j].name, im->name) &&
			    !same_import(m, &m->imports[j], im))
				return pw_error_set(PW_EUNSUPPORTED, "import %s.%s is imported twice with different types",
				                    im->module, im->name);
	}
	return 0;
}

/* The C type of the storage of a memory, table or global import or export. */
static const char *extern_ctype(uint8_t kind, uint8_t valtype)
{
	switch (kind) {
	case PW_WASM_MEMORY: return "wasm_rt_memory_t";
	case PW_WASM_TABLE: return valtype == PW_WASM_FUNCREF ? "wasm_rt_funcref_table_t" : "wasm_rt_externref_table_t";
	default:
		if (valtype == PW_WASM_FUNCREF)
			return "wasm_rt_funcref_t";
		if (valtype == PW_WASM_EXTERNREF)
			return "wasm_rt_externref_t";
		return ctype(valtype);
	}
}

/* "Z_<module>Z_<name>(struct Z_<module>_instance_t *ctx": the symbol wasm2c's code calls
 * for an import, up to its first parameter. */
static void emit_import_head(pw_buf *o, const pw_wasm_import *im)
{
	pw_buf_puts(o, "Z_");
	pw_shim_mangle(o, im->module);
	pw_buf_puts(o, "Z_");
	pw_shim_mangle(o, im->name);
	pw_buf_puts(o, "(struct Z_");
	pw_shim_mangle(o, im->module);
	pw_buf_puts(o, "_instance_t *ctx");
}

/* The accessor wasm2c's code calls for a memory/table/global import, as the storage the
 * loader bound to `slot` of the instance being created. */
static void emit_extern_accessor(pw_buf *o, const pw_wasm_import *im, uint32_t slot)
{
	const char *t = extern_ctype(im->kind, im->valtype);
	pw_buf_printf(o, "%s *", t);
	emit_import_head(o, im);
	pw_buf_printf(o, ")\n{\n\treturn (%s *)wasm_rt_pw_extern(ctx, %u);\n}\n\n", t, slot);
}

/* The declared type of exported memory/table/global `ex` into x (kind, valtype, ...). */
static bool export_type(const pw_wasm_module *m, const pw_wasm_export *ex, wasm_rt_pw_extern_export *x)
{
	memset(x, 0, sizeof *x);
	x->kind = ex->kind;
	switch (ex->kind) {
	case PW_WASM_MEMORY:
		x->min = m->mem_min;
		x->max = m->mem_max;
		x->has_max = m->mem_has_max;
		return true;
	case PW_WASM_TABLE:
		if (ex->index >= m->ntables_all)
			return false;
		x->valtype = m->tables[ex->index].elemtype;
		x->min = m->tables[ex->index].min;
		x->max = m->tables[ex->index].max;
		x->has_max = m->tables[ex->index].has_max;
		return true;
	case PW_WASM_GLOBAL:
		if (ex->index >= m->nglobals_all)
			return false;
		x->valtype = m->global_valtypes[ex->index];
		x->mutable_ = m->global_mutable[ex->index];
		return extern_ctype(PW_WASM_GLOBAL, (uint8_t)x->valtype) != NULL;
	default:
		return false;
	}
}

static void emit_trampoline(pw_buf *o, const pw_wasm_module *m, uint32_t idx, uint32_t slot)
{
	const pw_wasm_import *im = &m->imports[idx];
	const pw_wasm_functype *t = &m->types[im->type_index];
	const char *ret = t->nresults ? ctype(t->results[0]) : "void";
	pw_buf_printf(o, "%s ", ret);
	emit_import_head(o, im);
	for (uint32_t i = 0; i < t->nparams; i++)
		pw_buf_printf(o, ", %s a%u", ctype(t->params[i]), i);
	pw_buf_printf(o, ")\n{\n\t%s((%s (*)(void *", t->nresults ? "return " : "", ret);
	for (uint32_t i = 0; i < t->nparams; i++)
		pw_buf_printf(o, ", %s", ctype(t->params[i]));
	pw_buf_printf(o, "))pw_imports[%u].fn)((void *)ctx", slot);
	for (uint32_t i = 0; i < t->nparams; i++)
		pw_buf_printf(o, ", a%u", i);
	pw_buf_puts(o, ");\n}\n\n");
}

static void emit_arg(pw_buf *o, uint8_t t, uint32_t i)
{
	switch (t) {
	case PW_WASM_I32: pw_buf_printf(o, ", (u32)a[%u]", i); break;
	case PW_WASM_I64: pw_buf_printf(o, ", (u64)a[%u]", i); break;
	case PW_WASM_F32: pw_buf_printf(o, ", pw_to_f32(a[%u])", i); break;
	default: pw_buf_printf(o, ", pw_to_f64(a[%u])", i); break;
	}
}

static const char *from_c(uint8_t t)
{
	switch (t) {
	case PW_WASM_I32: return "(uint64_t)";
	case PW_WASM_I64: return "(uint64_t)";
	case PW_WASM_F32: return "pw_from_f32";
	default: return "pw_from_f64";
	}
}

static void emit_invoker(pw_buf *o, const pw_wasm_export *ex, const pw_wasm_functype *t, uint32_t k)
{
	pw_buf call = PW_BUF_INIT;
	pw_buf_puts(&call, "Z_mZ_");
	pw_shim_mangle(&call, ex->name);
	pw_buf_puts(&call, "((Z_m_instance_t *)inst");
	for (uint32_t i = 0; i < t->nparams; i++)
		emit_arg(&call, t->params[i], i);
	pw_buf_puts(&call, ")");
	pw_buf_printf(o, "static void pw_invoke_%u(void *inst, const uint64_t *a, uint64_t *r)\n{\n", k);
	if (t->nparams == 0)
		pw_buf_puts(o, "\t(void)a;\n");
	if (t->nresults == 0) {
		pw_buf_printf(o, "\t(void)r;\n\t%s;\n", (char *)call.data);
	} else if (t->nresults == 1) {
		pw_buf_printf(o, "\tr[0] = %s(%s);\n", from_c(t->results[0]), (char *)call.data);
	} else {
		pw_buf_puts(o, "\tstruct wasm_multi_");
		for (uint32_t i = 0; i < t->nresults; i++)
			pw_buf_printf(o, "%c", multi_letter(t->results[i]));
		pw_buf_printf(o, " v = %s;\n", (char *)call.data);
		for (uint32_t i = 0; i < t->nresults; i++)
			pw_buf_printf(o, "\tr[%u] = %s(v.%c%u);\n", i, from_c(t->results[i]), multi_letter(t->results[i]), i);
	}
	pw_buf_puts(o, "}\n\n");
	pw_buf_free(&call);
}

int pw_shim_generate(pw_buf *o, const pw_wasm_module *m, const char *engine_hash, const char *wasm_sha256)
{
	int rc = pw_shim_check(m);
	if (rc)
		return rc;
	pw_buf_puts(o,
		"/* Generated by prewarm (src/engine/shim_gen.c): the artifact's uniform ABI. */\n"
		"#include \"m.h\"\n\n"
		"static inline f32 pw_to_f32(uint64_t v) { u32 b = (u32)v; f32 f; memcpy(&f, &b, 4); return f; }\n"
		"static inline f64 pw_to_f64(uint64_t v) { f64 f; memcpy(&f, &v, 8); return f; }\n"
		"static inline uint64_t pw_from_f32(f32 f) { u32 b; memcpy(&b, &f, 4); return b; }\n"
		"static inline uint64_t pw_from_f64(f64 f) { uint64_t b; memcpy(&b, &f, 8); return b; }\n\n");

	/* the description, an exported symbol (found through .dynsym whatever the compiler) */
	pw_buf_printf(o, "__attribute__((visibility(\"default\"), used))\n"
	                 "const char " PW_ARTIFACT_DESC_SYMBOL "[] = \"abi=%d\\nengine=%s\\nwasm=%s\\n\";\n\n",
	              PW_ARTIFACT_ABI_VERSION, engine_hash, wasm_sha256);

	/* imports (a repeated module.name is declared once by wasm2c: one slot) */
	uint32_t nslots = 0;
	for (uint32_t i = 0; i < m->nimports; i++)
		nslots += m->imports[i].kind == PW_WASM_FUNC && !is_repeat(m, i);
	pw_buf_printf(o, "static wasm_rt_pw_import pw_imports[%u] = {\n", nslots ? nslots : 1);
	for (uint32_t i = 0; i < m->nimports; i++) {
		if (m->imports[i].kind != PW_WASM_FUNC || is_repeat(m, i))
			continue;
		char sig[512];
		pw_wasm_sig_string(&m->types[m->imports[i].type_index], sig, sizeof sig);
		pw_buf_puts(o, "\t{ ");
		c_string(o, m->imports[i].module);
		pw_buf_puts(o, ", ");
		c_string(o, m->imports[i].name);
		pw_buf_printf(o, ", \"%s\", 0 },\n", sig);
	}
	if (!nslots)
		pw_buf_puts(o, "\t{ 0, 0, 0, 0 },\n");
	pw_buf_puts(o, "};\n\n");
	for (uint32_t i = 0, slot = 0; i < m->nimports; i++)
		if (m->imports[i].kind == PW_WASM_FUNC && !is_repeat(m, i))
			emit_trampoline(o, m, i, slot++);

	/* memory, table and global imports: one slot each (repeats share the first's) */
	uint32_t nxslots = 0;
	pw_buf xtable = PW_BUF_INIT;
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *im = &m->imports[i];
		if (im->kind == PW_WASM_FUNC || is_repeat(m, i))
			continue;
		emit_extern_accessor(o, im, nxslots++);
		pw_buf_puts(&xtable, "\t{ ");
		c_string(&xtable, im->module);
		pw_buf_puts(&xtable, ", ");
		c_string(&xtable, im->name);
		pw_buf_printf(&xtable, ", %u, %u, %u, %u, %lluull, %lluull },\n", im->kind, im->valtype, im->mutable_ ? 1 : 0,
		              im->has_max ? 1 : 0, (unsigned long long)im->min, (unsigned long long)im->max);
	}
	pw_buf_printf(o, "static const wasm_rt_pw_extern_import pw_extern_imports[%u] = {\n%s%s};\n\n",
	              nxslots ? nxslots : 1, xtable.data ? (char *)xtable.data : "",
	              nxslots ? "" : "\t{ 0, 0, 0, 0, 0, 0, 0, 0 },\n");
	pw_buf_free(&xtable);

	/* exported memories, tables and globals: a getter each */
	uint32_t nxex = 0;
	for (uint32_t i = 0; i < m->nexports; i++) {
		const pw_wasm_export *ex = &m->exports[i];
		wasm_rt_pw_extern_export x;
		if (ex->kind == PW_WASM_FUNC || !export_type(m, ex, &x))
			continue;
		pw_buf_printf(o, "static void *pw_xget_%u(void *i)\n{\n\treturn (void *)Z_mZ_", nxex);
		pw_shim_mangle(o, ex->name);
		pw_buf_puts(o, "((Z_m_instance_t *)i);\n}\n\n");
		pw_buf_puts(&xtable, "\t{ ");
		c_string(&xtable, ex->name);
		pw_buf_printf(&xtable, ", %u, %u, %u, %u, %lluull, %lluull, pw_xget_%u },\n", x.kind, x.valtype, x.mutable_,
		              x.has_max, (unsigned long long)x.min, (unsigned long long)x.max, nxex);
		nxex++;
	}
	pw_buf_printf(o, "static const wasm_rt_pw_extern_export pw_extern_exports[%u] = {\n%s%s};\n\n",
	              nxex ? nxex : 1, xtable.data ? (char *)xtable.data : "",
	              nxex ? "" : "\t{ 0, 0, 0, 0, 0, 0, 0, 0 },\n");
	pw_buf_free(&xtable);

	/* exports: numeric-typed functions only */
	uint32_t nex = 0;
	pw_buf table = PW_BUF_INIT;
	for (uint32_t i = 0; i < m->nexports; i++) {
		const pw_wasm_export *ex = &m->exports[i];
		if (ex->kind != PW_WASM_FUNC)
			continue;
		const pw_wasm_functype *t = pw_wasm_func_type(m, ex->index);
		if (!t || !numeric_type(t))
			continue;
		emit_invoker(o, ex, t, nex);
		char sig[512];
		pw_wasm_sig_string(t, sig, sizeof sig);
		pw_buf_puts(&table, "\t{ ");
		c_string(&table, ex->name);
		pw_buf_printf(&table, ", \"%s\", %u, %u, pw_invoke_%u },\n", sig, t->nparams, t->nresults, nex);
		nex++;
	}
	pw_buf_printf(o, "static const wasm_rt_pw_export pw_exports[%u] = {\n%s%s};\n\n", nex ? nex : 1,
	              table.data ? (char *)table.data : "", nex ? "" : "\t{ 0, 0, 0, 0, 0 },\n");
	pw_buf_free(&table);

	/* distinct imported modules: each gets the host instance pointer */
	uint32_t nmods = 0;
	for (uint32_t i = 0; i < m->nimports; i++) {
		bool seen = false;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = !strcmp(m->imports[j].module, m->imports[i].module);
		nmods += !seen;
	}
	pw_buf_puts(o, "static void pw_instantiate(void *inst, void *host)\n{\n\t(void)host;\n"
	               "\tZ_m_instantiate((Z_m_instance_t *)inst");
	for (uint32_t i = 0; i < nmods; i++)
		pw_buf_puts(o, ", host");
	pw_buf_puts(o, ");\n}\n\n"
	               "static void pw_free(void *inst)\n{\n\tZ_m_free((Z_m_instance_t *)inst);\n}\n\n");

	if (m->kw_metadata && m->kw_metadata_len) {
		pw_buf_puts(o, "static const uint8_t pw_kw_metadata[] = {");
		for (size_t i = 0; i < m->kw_metadata_len; i++)
			pw_buf_printf(o, "%s%u,", i % 24 ? "" : "\n\t", m->kw_metadata[i]);
		pw_buf_puts(o, "\n};\n\n");
	}

	pw_buf_printf(o,
		"static const wasm_rt_pw_shim pw_shim = {\n"
		"\t.abi_version = WASM_RT_PW_SHIM_ABI,\n"
		"\t.memcheck_signal = WASM_RT_MEMCHECK_SIGNAL_HANDLER,\n"
		"\t.instance_size = sizeof(Z_m_instance_t),\n"
		"\t.init_module = Z_m_init_module,\n"
		"\t.instantiate = pw_instantiate,\n"
		"\t.free_instance = pw_free,\n"
		"\t.nimports = %u,\n"
		"\t.imports = pw_imports,\n"
		"\t.nexports = %u,\n"
		"\t.exports = pw_exports,\n"
		"\t.nextern_imports = %u,\n"
		"\t.extern_imports = pw_extern_imports,\n"
		"\t.nextern_exports = %u,\n"
		"\t.extern_exports = pw_extern_exports,\n"
		"\t.description = " PW_ARTIFACT_DESC_SYMBOL ",\n"
		"\t.kw_metadata = %s,\n"
		"\t.kw_metadata_len = %zu,\n"
		"};\n\n"
		"__attribute__((visibility(\"default\"))) const wasm_rt_pw_shim *pw_artifact_shim_v1(void);\n"
		"const wasm_rt_pw_shim *pw_artifact_shim_v1(void)\n{\n\treturn &pw_shim;\n}\n",
		nslots, nex, nxslots, nxex, m->kw_metadata && m->kw_metadata_len ? "pw_kw_metadata" : "0",
		m->kw_metadata && m->kw_metadata_len ? m->kw_metadata_len : (size_t)0);
	return o->data ? 0 : pw_error_set(PW_ENOMEM, "shim: out of memory");
}
