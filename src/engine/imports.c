/*
 * Host import tables (pw_imports): the set of C functions a host offers to
 * wasm modules, keyed by (module, name) with a signature string, and the
 * memories, tables and globals it offers (bound objects, or a fresh memory per
 * instance). The engine checks a module's imports against it before compiling
 * (the spec's import matching for memories, tables and globals) and the loader
 * binds an artifact's imports from it. Read-only once built, so shared by threads.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

struct pw_imports {
	pw_host_func *v;
	size_t n, cap;
	pw_extern_entry *ext;
	size_t next, capext;
};

/* Makes room for one more element in *v (n used, *cap allocated, doubling from `first`);
 * -1 when out of memory (*v unchanged). */
static int room_for_one(void **v, size_t n, size_t *cap, size_t elem, size_t first)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : first;
	void *nv = realloc(*v, nc * elem);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

int pw_imports_new(pw_imports **out)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return pw_error_set(PW_ENOMEM, "pw_imports_new: out of memory");
	return 0;
}

void pw_imports_free(pw_imports *im)
{
	if (!im)
		return;
	free(im->v);
	free(im->ext);
	free(im);
}

const pw_host_func *pw_imports_find(const pw_imports *im, const char *module, const char *name)
{
	if (!im)
		return NULL;
	for (size_t i = 0; i < im->n; i++)
		if (!strcmp(im->v[i].module, module) && !strcmp(im->v[i].name, name))
			return &im->v[i];
	return NULL;
}

int pw_imports_add(pw_imports *im, const char *module, const char *name, const char *sig,
                   void (*fn)(void))
{
	if (!im || !module || !name || !sig || !fn)
		return pw_error_set(PW_EINVALID, "pw_imports_add: missing argument for %s.%s",
		                    module ? module : "?", name ? name : "?");
	if (!strchr(sig, ':') || strspn(sig, "iIfF:") != strlen(sig) || strchr(strchr(sig, ':') + 1, ':'))
		return pw_error_set(PW_EINVALID, "pw_imports_add: bad signature \"%s\" for %s.%s", sig, module, name);
	if (strlen(strchr(sig, ':') + 1) > 1)
		return pw_error_set(PW_EUNSUPPORTED, "pw_imports_add: host function %s.%s has more than one result (%s)",
		                    module, name, sig);
	pw_host_func *old = (pw_host_func *)pw_imports_find(im, module, name);
	if (old) {
		*old = (pw_host_func){ module, name, sig, fn };
		return 0;
	}
	if (room_for_one((void **)&im->v, im->n, &im->cap, sizeof *im->v, 32))
		return pw_error_set(PW_ENOMEM, "pw_imports_add: out of memory");
	im->v[im->n++] = (pw_host_func){ module, name, sig, fn };
	return 0;
}

int pw_imports_add_all(pw_imports *im, const pw_host_func *funcs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = pw_imports_add(im, funcs[i].module, funcs[i].name, funcs[i].sig, funcs[i].fn);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- memories, tables, globals ---- */

const pw_extern_entry *pw_imports_find_extern(const pw_imports *im, const char *module, const char *name)
{
	if (!im)
		return NULL;
	for (size_t i = 0; i < im->next; i++)
		if (!strcmp(im->ext[i].module, module) && !strcmp(im->ext[i].name, name))
			return &im->ext[i];
	return NULL;
}

static int add_extern(pw_imports *im, const pw_extern_entry *e)
{
	if (!im || !e->module || !e->name)
		return pw_error_set(PW_EINVALID, "pw_imports: missing argument for %s.%s", e->module ? e->module : "?",
		                    e->name ? e->name : "?");
	pw_extern_entry *old = (pw_extern_entry *)pw_imports_find_extern(im, e->module, e->name);
	if (old) {
		*old = *e;
		return 0;
	}
	if (room_for_one((void **)&im->ext, im->next, &im->capext, sizeof *im->ext, 8))
		return pw_error_set(PW_ENOMEM, "pw_imports: out of memory");
	im->ext[im->next++] = *e;
	return 0;
}

int pw_imports_add_memory(pw_imports *im, const char *module, const char *name, uint32_t initial_pages,
                          uint32_t max_pages)
{
	bool has_max = max_pages != PW_NO_MAX;
	if ((has_max && (max_pages > PW_RT_MAX_PAGES || initial_pages > max_pages)) || initial_pages > PW_RT_MAX_PAGES)
		return pw_error_set(PW_EINVALID, "pw_imports_add_memory: %s.%s: bad limits (%u initial, %u maximum pages)",
		                    module ? module : "?", name ? name : "?", initial_pages, max_pages);
	return add_extern(im, &(pw_extern_entry){ .module = module, .name = name, .kind = PW_WASM_MEMORY,
	                                          .min = initial_pages, .max = has_max ? max_pages : 0,
	                                          .has_max = has_max });
}

int pw_imports_bind_memory(pw_imports *im, const char *module, const char *name, pw_memory *m)
{
	if (!m)
		return pw_error_set(PW_EINVALID, "pw_imports_bind_memory: no memory for %s.%s", module ? module : "?",
		                    name ? name : "?");
	return add_extern(im, &(pw_extern_entry){ .module = module, .name = name, .kind = PW_WASM_MEMORY, .memory = m });
}

int pw_imports_bind_table(pw_imports *im, const char *module, const char *name, pw_table *t)
{
	if (!t)
		return pw_error_set(PW_EINVALID, "pw_imports_bind_table: no table for %s.%s", module ? module : "?",
		                    name ? name : "?");
	return add_extern(im, &(pw_extern_entry){ .module = module, .name = name, .kind = PW_WASM_TABLE, .table = t });
}

int pw_imports_bind_global(pw_imports *im, const char *module, const char *name, pw_global *g)
{
	if (!g)
		return pw_error_set(PW_EINVALID, "pw_imports_bind_global: no global for %s.%s", module ? module : "?",
		                    name ? name : "?");
	return add_extern(im, &(pw_extern_entry){ .module = module, .name = name, .kind = PW_WASM_GLOBAL, .global = g });
}

wasm_rt_pw_extern_import pw_extern_import_of(const pw_wasm_import *im)
{
	return (wasm_rt_pw_extern_import){ im->module, im->name, im->kind, im->valtype, im->mutable_, im->has_max,
	                                   im->min, im->max };
}

/* The type an entry offers, in the import's terms. */
static wasm_rt_pw_extern_import offered(const pw_extern_entry *e)
{
	wasm_rt_pw_extern_import t = { e->module, e->name, e->kind, 0, 0, 0, 0, 0 };
	if (e->kind == PW_WASM_MEMORY && e->memory) {
		t.min = e->memory->rt->pages;
		t.has_max = e->memory->has_max;
		t.max = e->memory->rt->max_pages;
	} else if (e->kind == PW_WASM_MEMORY) {
		t.min = e->min;
		t.has_max = e->has_max;
		t.max = e->max;
	} else if (e->kind == PW_WASM_TABLE) {
		t.valtype = PW_WASM_FUNCREF;
		t.min = e->table->rt->size;
		t.has_max = e->table->has_max;
		t.max = e->table->rt->max_size;
	} else {
		t.valtype = e->global->valtype;
		t.mutable_ = e->global->mutable_;
	}
	return t;
}

static void describe(pw_buf *o, const wasm_rt_pw_extern_import *t)
{
	switch (t->kind) {
	case PW_WASM_MEMORY:
	case PW_WASM_TABLE:
		pw_buf_printf(o, "%s%s%s {min %llu", t->kind == PW_WASM_MEMORY ? "memory" : "table",
		              t->kind == PW_WASM_TABLE ? " " : "",
		              t->kind == PW_WASM_TABLE ? pw_wasm_valtype_name((uint8_t)t->valtype) : "",
		              (unsigned long long)t->min);
		if (t->has_max)
			pw_buf_printf(o, ", max %llu", (unsigned long long)t->max);
		pw_buf_puts(o, "}");
		break;
	case PW_WASM_GLOBAL:
		pw_buf_printf(o, "global %s%s", t->mutable_ ? "mut " : "", pw_wasm_valtype_name((uint8_t)t->valtype));
		break;
	default:
		pw_buf_puts(o, "function");
	}
}

static bool matches(const wasm_rt_pw_extern_import *have, const wasm_rt_pw_extern_import *want)
{
	if (have->kind != want->kind)
		return false;
	if (want->kind == PW_WASM_GLOBAL)
		return have->valtype == want->valtype && have->mutable_ == want->mutable_;
	if (want->kind == PW_WASM_TABLE && have->valtype != want->valtype)
		return false;
	return have->min >= want->min && (!want->has_max || (have->has_max && have->max <= want->max));
}

bool pw_extern_check(const pw_extern_entry *e, const wasm_rt_pw_extern_import *want, pw_buf *miss, bool sep)
{
	wasm_rt_pw_extern_import have;
	if (e) {
		have = offered(e);
		if (matches(&have, want))
			return true;
	}
	pw_buf_printf(miss, "%s%s.%s (", sep ? ", " : "", want->module, want->name);
	describe(miss, want);
	if (e) {
		pw_buf_puts(miss, "; the host has ");
		describe(miss, &have);
	}
	pw_buf_puts(miss, ")");
	return false;
}
