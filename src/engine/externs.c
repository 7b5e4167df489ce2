/*
 * Memories, tables and globals as host objects (pw_memory, pw_table,
 * pw_global): created by a host to be imported by modules (bound into a
 * pw_imports), or borrowed from an instance's exports so that one module's
 * memory, table or global can be imported by another (the spec's linking).
 * A host-created memory is the same storage as a module's own (a guard-page
 * reservation or a calloc'd block, runtime.c), so the generated code's bounds
 * model holds for it on both tiers.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

int pw_memory_new(pw_memory **out, uint32_t initial_pages, uint32_t max_pages)
{
	*out = NULL;
	bool has_max = max_pages != PW_NO_MAX;
	if ((has_max && (max_pages > PW_RT_MAX_PAGES || initial_pages > max_pages)) || initial_pages > PW_RT_MAX_PAGES)
		return pw_error_set(PW_EINVALID, "pw_memory_new: bad limits (%u initial, %u maximum pages)", initial_pages,
		                    max_pages);
	int rc = pw_runtime_init();
	if (rc)
		return rc;
	pw_memory *m = calloc(1, sizeof *m);
	if (!m)
		return pw_error_set(PW_ENOMEM, "pw_memory_new: out of memory");
	if ((rc = pw_rt_memory_alloc(&m->own, initial_pages, has_max ? max_pages : PW_RT_MAX_PAGES))) {
		free(m);
		return rc;
	}
	m->rt = &m->own;
	m->has_max = has_max;
	*out = m;
	return 0;
}

void pw_memory_free(pw_memory *m)
{
	if (!m || m->borrowed)
		return;
	wasm_rt_free_memory(&m->own);
	free(m);
}

uint8_t *pw_memory_data(const pw_memory *m, uint64_t *size)
{
	if (size)
		*size = m->rt->size;
	return m->rt->data;
}

uint32_t pw_memory_pages(const pw_memory *m)
{
	return m->rt->pages;
}

int pw_memory_grow(pw_memory *m, uint32_t delta_pages, uint32_t *old_pages)
{
	uint32_t old = m->rt->pages;
	if ((uint64_t)old + delta_pages > m->rt->max_pages)
		return pw_error_set(PW_EINVALID, "memory.grow by %u pages: %u pages is the maximum, the memory has %u",
		                    delta_pages, m->rt->max_pages, old);
	if (wasm_rt_grow_memory(m->rt, delta_pages) == UINT32_MAX)
		return pw_error_set(PW_ENOMEM, "memory.grow by %u pages: the system refused the pages", delta_pages);
	if (old_pages)
		*old_pages = old;
	return 0;
}

int pw_table_new(pw_table **out, uint32_t initial, uint32_t max)
{
	*out = NULL;
	bool has_max = max != PW_NO_MAX;
	uint32_t limit = has_max ? max : PW_RT_MAX_TABLE_ELEMS;
	if (limit > PW_RT_MAX_TABLE_ELEMS || initial > limit)
		return pw_error_set(PW_EINVALID, "pw_table_new: bad limits (%u initial, %u maximum elements; at most %u)",
		                    initial, max, PW_RT_MAX_TABLE_ELEMS);
	pw_table *t = calloc(1, sizeof *t);
	wasm_rt_funcref_t *data = calloc(initial ? initial : 1, sizeof *data);
	if (!t || !data) {
		free(t);
		free(data);
		return pw_error_set(PW_ENOMEM, "pw_table_new: out of memory");
	}
	t->own = (wasm_rt_funcref_table_t){ .data = data, .max_size = limit, .size = initial };
	t->rt = &t->own;
	t->has_max = has_max;
	*out = t;
	return 0;
}

void pw_table_free(pw_table *t)
{
	if (!t || t->borrowed)
		return;
	wasm_rt_free_funcref_table(&t->own);
	free(t);
}

uint32_t pw_table_size(const pw_table *t)
{
	return t->rt->size;
}

static bool numeric(uint8_t t)
{
	return t == PW_WASM_I32 || t == PW_WASM_I64 || t == PW_WASM_F32 || t == PW_WASM_F64;
}

/* i32 and f32 globals are 4 bytes wide, i64 and f64 8 (wasm2c's u32/f32/u64/f64). */
static size_t width(uint8_t valtype)
{
	return valtype == PW_WASM_I32 || valtype == PW_WASM_F32 ? 4 : 8;
}

static void store(pw_global *g, uint64_t value)
{
	if (width(g->valtype) == 4) {
		uint32_t v = (uint32_t)value;
		memcpy(g->ptr, &v, sizeof v);
	} else {
		memcpy(g->ptr, &value, sizeof value);
	}
}

int pw_global_new(pw_global **out, uint8_t valtype, bool mutable_, uint64_t value)
{
	*out = NULL;
	if (!numeric(valtype))
		return pw_error_set(PW_EUNSUPPORTED, "pw_global_new: value type %s: only i32, i64, f32 and f64 globals",
		                    pw_wasm_valtype_name(valtype));
	pw_global *g = calloc(1, sizeof *g);
	if (!g)
		return pw_error_set(PW_ENOMEM, "pw_global_new: out of memory");
	g->ptr = &g->own;
	g->valtype = valtype;
	g->mutable_ = mutable_;
	store(g, value);
	*out = g;
	return 0;
}

void pw_global_free(pw_global *g)
{
	if (g && !g->borrowed)
		free(g);
}

uint64_t pw_global_get(const pw_global *g)
{
	if (width(g->valtype) == 4) {
		uint32_t v;
		memcpy(&v, g->ptr, sizeof v);
		return v;
	}
	uint64_t v;
	memcpy(&v, g->ptr, sizeof v);
	return v;
}

int pw_global_set(pw_global *g, uint64_t value)
{
	if (!g->mutable_)
		return pw_error_set(PW_EINVALID, "pw_global_set: the global is immutable");
	store(g, value);
	return 0;
}

uint8_t pw_global_valtype(const pw_global *g)
{
	return g->valtype;
}

bool pw_global_mutable(const pw_global *g)
{
	return g->mutable_;
}

/* ---- borrowed handles on an instance's exports ---- */

/* The borrowed handle on export `name` of `kind` (made on first use by `make` from the
 * export's storage and declared type), or NULL: no such export, or out of memory. */
static void *export_handle(pw_instance *inst, const char *name, uint32_t kind,
                           void *(*make)(void *storage, const wasm_rt_pw_extern_export *ex))
{
	const wasm_rt_pw_shim *s = inst->art->shim;
	for (uint32_t i = 0; i < s->nextern_exports; i++) {
		const wasm_rt_pw_extern_export *ex = &s->extern_exports[i];
		if (ex->kind != kind || strcmp(ex->name, name) != 0)
			continue;
		if (!inst->export_handles)
			inst->export_handles = calloc(s->nextern_exports, sizeof *inst->export_handles);
		if (!inst->export_handles)
			return NULL;
		if (!inst->export_handles[i])
			inst->export_handles[i] = make(ex->get(inst->mod), ex);
		return inst->export_handles[i];
	}
	return NULL;
}

static void *make_memory(void *storage, const wasm_rt_pw_extern_export *ex)
{
	pw_memory *m = calloc(1, sizeof *m);
	if (m)
		*m = (pw_memory){ .rt = storage, .borrowed = true, .has_max = ex->has_max };
	return m;
}

static void *make_table(void *storage, const wasm_rt_pw_extern_export *ex)
{
	pw_table *t = ex->valtype == PW_WASM_FUNCREF ? calloc(1, sizeof *t) : NULL;
	if (t)
		*t = (pw_table){ .rt = storage, .borrowed = true, .has_max = ex->has_max };
	return t;
}

static void *make_global(void *storage, const wasm_rt_pw_extern_export *ex)
{
	pw_global *g = numeric((uint8_t)ex->valtype) ? calloc(1, sizeof *g) : NULL;
	if (g)
		*g = (pw_global){ .ptr = storage, .valtype = (uint8_t)ex->valtype, .mutable_ = ex->mutable_,
		                  .borrowed = true };
	return g;
}

pw_memory *pw_instance_export_memory(pw_instance *inst, const char *name)
{
	return export_handle(inst, name, PW_WASM_MEMORY, make_memory);
}

pw_table *pw_instance_export_table(pw_instance *inst, const char *name)
{
	return export_handle(inst, name, PW_WASM_TABLE, make_table);
}

pw_global *pw_instance_export_global(pw_instance *inst, const char *name)
{
	return export_handle(inst, name, PW_WASM_GLOBAL, make_global);
}

/* Frees the borrowed handles of an instance (from pw_instance_free; each is a plain
 * calloc'd struct, whatever its kind). */
void pw_instance_free_export_handles(pw_instance *inst)
{
	if (!inst->export_handles)
		return;
	for (uint32_t i = 0; i < inst->art->shim->nextern_exports; i++)
		free(inst->export_handles[i]);
	free(inst->export_handles);
	inst->export_handles = NULL;
}
