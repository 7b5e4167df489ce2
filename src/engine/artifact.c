/*
 * Artifacts and instances: reading an artifact's embedded description (an ELF
 * parse of outside input, bounds-checked everywhere), verified loading
 * (memfd + dlopen of exactly the bytes that were checked), import binding,
 * instances with their control block, calls with trap/exit/timeout handling,
 * and the deadline watchdog thread.
 *
 * Memory layout of an instance: [wasm_rt_pw_control][module instance], so the
 * generated code finds its depth counter and interrupt flag right before the
 * `instance` pointer it already has (see rt/wasm-rt.h).
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_int.h"

/* ---- the description (an exported data symbol) ---- */

static int parse_desc(const char *p, size_t n, pw_artifact_info *out)
{
	memset(out, 0, sizeof *out);
	bool have_abi = false, have_engine = false, have_wasm = false;
	size_t i = 0;
	while (i < n && p[i]) {
		size_t e = i;
		while (e < n && p[e] && p[e] != '\n')
			e++;
		const char *line = p + i;
		size_t l = e - i;
		if (l > 4 && !memcmp(line, "abi=", 4)) {
			uint32_t v = 0;
			if (l - 4 > 9)
				return pw_error_set(PW_EINVALID, "artifact description: bad abi");
			for (size_t k = 4; k < l; k++) {
				if (line[k] < '0' || line[k] > '9')
					return pw_error_set(PW_EINVALID, "artifact description: bad abi");
				v = v * 10 + (uint32_t)(line[k] - '0');
			}
			out->abi_version = v;
			have_abi = true;
		} else if (l == 7 + PW_SHA256_HEX_LEN && !memcmp(line, "engine=", 7)) {
			memcpy(out->engine_hash, line + 7, PW_SHA256_HEX_LEN);
			have_engine = pw_is_sha256_hex(out->engine_hash);
		} else if (l == 5 + PW_SHA256_HEX_LEN && !memcmp(line, "wasm=", 5)) {
			memcpy(out->wasm_sha256, line + 5, PW_SHA256_HEX_LEN);
			have_wasm = pw_is_sha256_hex(out->wasm_sha256);
		}
		i = e + 1;
	}
	if (!have_abi || !have_engine || !have_wasm)
		return pw_error_set(PW_EINVALID, "artifact description: missing or malformed %s",
		                    !have_abi ? "abi" : !have_engine ? "engine hash" : "wasm sha256");
	return 0;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool range_ok(uint64_t off, uint64_t n, size_t len)
{
	return off <= len && n <= len - off;
}

/* Section header i (bounds already checked by the caller). */
typedef struct elf_shdr {
	uint32_t type, link;
	uint64_t addr, off, size, entsize;
} elf_shdr;

static elf_shdr shdr_at(const uint8_t *so, uint64_t shoff, uint16_t shentsize, uint32_t i)
{
	const uint8_t *sh = so + shoff + (uint64_t)i * shentsize;
	elf_shdr h = { rd32(sh + 4), rd32(sh + 0x28), rd64(sh + 0x10), rd64(sh + 0x18), rd64(sh + 0x20),
	               rd64(sh + 0x38) };
	return h;
}

int pw_artifact_read_info(const uint8_t *so, size_t len, pw_artifact_info *out)
{
	memset(out, 0, sizeof *out);
	if (len < 64 || memcmp(so, ELFMAG, SELFMAG) != 0)
		return pw_error_set(PW_EINVALID, "not an artifact: not an ELF file");
	if (so[EI_CLASS] != ELFCLASS64 || so[EI_DATA] != ELFDATA2LSB)
		return pw_error_set(PW_EINVALID, "not an artifact: not a 64-bit little-endian ELF file");
	if (rd16(so + 16) != ET_DYN)
		return pw_error_set(PW_EINVALID, "not an artifact: not a shared object");
	uint64_t shoff = rd64(so + 0x28);
	uint16_t shentsize = rd16(so + 0x3a), shnum = rd16(so + 0x3c);
	if (shnum == 0 || shentsize < 64)
		return pw_error_set(PW_EINVALID, "not an artifact: no usable section headers");
	if (!range_ok(shoff, (uint64_t)shnum * shentsize, len))
		return pw_error_set(PW_EINVALID, "not an artifact: section headers out of bounds");
	static const char want[] = PW_ARTIFACT_DESC_SYMBOL;
	for (uint16_t i = 0; i < shnum; i++) {
		elf_shdr sym = shdr_at(so, shoff, shentsize, i);
		if (sym.type != SHT_DYNSYM)
			continue;
		if (sym.link >= shnum || sym.entsize < 24 || !range_ok(sym.off, sym.size, len))
			return pw_error_set(PW_EINVALID, "not an artifact: bad dynamic symbol table");
		elf_shdr str = shdr_at(so, shoff, shentsize, sym.link);
		if (str.type != SHT_STRTAB || !range_ok(str.off, str.size, len))
			return pw_error_set(PW_EINVALID, "not an artifact: bad dynamic string table");
		for (uint64_t k = 0; k < sym.size / sym.entsize; k++) {
			const uint8_t *s = so + sym.off + k * sym.entsize;
			uint32_t name = rd32(s);
			uint16_t shndx = rd16(s + 6);
			uint64_t value = rd64(s + 8), size = rd64(s + 16);
			if (name >= str.size || str.size - name < sizeof want ||
			    memcmp(so + str.off + name, want, sizeof want) != 0)
				continue;
			if (shndx == SHN_UNDEF || shndx >= shnum || size == 0 || size > 4096)
				return pw_error_set(PW_EINVALID, "artifact: bad %s symbol", want);
			elf_shdr in = shdr_at(so, shoff, shentsize, shndx);
			if (in.type != SHT_PROGBITS || !range_ok(in.off, in.size, len) || value < in.addr || value - in.addr > in.size ||
			    size > in.size - (value - in.addr) || !range_ok(in.off + (value - in.addr), size, len))
				return pw_error_set(PW_EINVALID, "artifact: %s lies outside its section", want);
			return parse_desc((const char *)so + in.off + (value - in.addr), (size_t)size, out);
		}
		break;
	}
	return pw_error_set(PW_EINVALID, "not an artifact: no %s symbol", want);
}

/* ---- loading ---- */

int pw_artifact_load(pw_artifact **out, const uint8_t *so, size_t len, const pw_artifact_info *expect,
                     const pw_imports *host)
{
	*out = NULL;
	int rc = pw_runtime_init();
	if (rc)
		return rc;
	pw_artifact_info info;
	if ((rc = pw_artifact_read_info(so, len, &info)))
		return rc;
	if (info.abi_version != PW_ARTIFACT_ABI_VERSION)
		return pw_error_set(PW_EMISMATCH, "artifact ABI version %u, this prewarm loads %d", info.abi_version,
		                    PW_ARTIFACT_ABI_VERSION);
	if (expect) {
		if (expect->engine_hash[0] && strcmp(expect->engine_hash, info.engine_hash) != 0)
			return pw_error_set(PW_EMISMATCH, "artifact engine hash %.12s... differs from the expected %.12s...",
			                    info.engine_hash, expect->engine_hash);
		if (expect->wasm_sha256[0] && strcmp(expect->wasm_sha256, info.wasm_sha256) != 0)
			return pw_error_set(PW_EMISMATCH, "artifact wasm sha256 %.12s... differs from the expected %.12s...",
			                    info.wasm_sha256, expect->wasm_sha256);
	}
	int fd = memfd_create("prewarm-artifact", MFD_CLOEXEC);
	if (fd < 0)
		return pw_error_set_errno(PW_EIO, "artifact: memfd_create");
	if ((rc = pw_write_all(fd, so, len))) {
		close(fd);
		return pw_error_prefix("artifact: writing the memfd");
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *msg = dlerror();
		close(fd);
		return pw_error_set(PW_EINVALID, "artifact: dlopen failed: %s", msg ? msg : "?");
	}
	wasm_rt_pw_shim_fn fn;
	*(void **)&fn = dlsym(dl, "pw_artifact_shim_v1");
	const wasm_rt_pw_shim *shim = fn ? fn() : NULL;
	if (!shim || shim->abi_version != WASM_RT_PW_SHIM_ABI) {
		dlclose(dl);
		close(fd);
		return pw_error_set(PW_EMISMATCH, "artifact: %s", shim ? "shim ABI version differs" : "no pw_artifact_shim_v1");
	}
	if (shim->memcheck_signal != (pw_rt_guard_pages() ? 1u : 0u)) {
		dlclose(dl);
		close(fd);
		return pw_error_set(PW_EMISMATCH, "artifact was built for %s memories, this runtime uses %s",
		                    shim->memcheck_signal ? "guard-page" : "bounds-checked",
		                    pw_rt_guard_pages() ? "guard pages" : "bounds checks");
	}
	pw_artifact *a = calloc(1, sizeof *a);
	pw_func_info *funcs = calloc(shim->nexports ? shim->nexports : 1, sizeof *funcs);
	if (!a || !funcs) {
		free(a);
		free(funcs);
		dlclose(dl);
		close(fd);
		return pw_error_set(PW_ENOMEM, "artifact: out of memory");
	}
	a->dl = dl;
	a->memfd = fd;
	a->shim = shim;
	a->info = info;
	a->host = host;
	a->funcs = funcs;
	a->nfuncs = shim->nexports;
	for (uint32_t i = 0; i < shim->nexports; i++)
		funcs[i] = (pw_func_info){ shim->exports[i].name, shim->exports[i].sig, shim->exports[i].nparams,
		                           shim->exports[i].nresults };
	pw_buf miss = PW_BUF_INIT;
	size_t nmiss = 0;
	for (uint32_t i = 0; i < shim->nimports; i++) {
		wasm_rt_pw_import *im = &shim->imports[i];
		const pw_host_func *h = host ? pw_imports_find(host, im->module, im->name) : NULL;
		if (h && !strcmp(h->sig, im->sig)) {
			im->fn = h->fn;
			continue;
		}
		pw_buf_printf(&miss, "%s%s.%s (%s%s%s)", nmiss ? ", " : "", im->module, im->name, im->sig,
		              h ? "; the host has " : "", h ? h->sig : "");
		nmiss++;
	}
	a->externs = calloc(shim->nextern_imports ? shim->nextern_imports : 1, sizeof *a->externs);
	if (!a->externs) {
		pw_buf_free(&miss);
		pw_artifact_free(a);
		return pw_error_set(PW_ENOMEM, "artifact: out of memory");
	}
	for (uint32_t i = 0; i < shim->nextern_imports; i++) {
		const wasm_rt_pw_extern_import *want = &shim->extern_imports[i];
		const pw_extern_entry *e = pw_imports_find_extern(host, want->module, want->name);
		if (pw_extern_check(e, want, &miss, nmiss))
			a->externs[i] = *e;
		else
			nmiss++;
	}
	if (nmiss) {
		rc = pw_error_set(PW_EUNSUPPORTED, "%s %s", nmiss == 1 ? "unknown import" : "unknown imports",
		                  (char *)miss.data);
		pw_buf_free(&miss);
		pw_artifact_free(a);
		return rc;
	}
	shim->init_module();
	*out = a;
	return 0;
}

void pw_artifact_free(pw_artifact *a)
{
	if (!a)
		return;
	if (a->dl)
		dlclose(a->dl);
	if (a->memfd >= 0)
		close(a->memfd);
	free(a->funcs);
	free(a->externs);
	free(a);
}

const pw_artifact_info *pw_artifact_get_info(const pw_artifact *a)
{
	return &a->info;
}

size_t pw_artifact_export_count(const pw_artifact *a)
{
	return a->nfuncs;
}

const pw_func_info *pw_artifact_export(const pw_artifact *a, size_t i)
{
	return i < a->nfuncs ? &a->funcs[i] : NULL;
}

const pw_func_info *pw_artifact_find_func(const pw_artifact *a, const char *name)
{
	for (size_t i = 0; i < a->nfuncs; i++)
		if (!strcmp(a->funcs[i].name, name))
			return &a->funcs[i];
	return NULL;
}

const char *pw_artifact_kw_metadata(const pw_artifact *a, size_t *len)
{
	if (len)
		*len = a->shim->kw_metadata ? a->shim->kw_metadata_len : 0;
	return (const char *)a->shim->kw_metadata;
}

/* ---- the deadline watchdog ---- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static pw_instance *wd_list;
static bool wd_started;

/* Atomic stores: the running thread reads these flags while another thread sets them. */
static void interrupt_locked(pw_instance *inst)
{
	__atomic_store_n(&inst->ctl->interrupt, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&inst->ctl->max_depth, 0, __ATOMIC_RELAXED);
}

static void *wd_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wd_mu);
	for (;;) {
		double now = pw_now(), next = 0;
		for (pw_instance *i = wd_list; i; i = i->wd_next) {
			if (i->wd_deadline <= now)
				interrupt_locked(i);
			else if (!next || i->wd_deadline < next)
				next = i->wd_deadline;
		}
		if (!next) {
			pthread_cond_wait(&wd_cv, &wd_mu);
			continue;
		}
		struct timespec ts = pw_deadline_after(CLOCK_MONOTONIC, next - pw_now());
		pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
	}
	return NULL;
}

static int wd_add(pw_instance *inst, double deadline)
{
	pthread_mutex_lock(&wd_mu);
	if (!wd_started) {
		pw_cond_init_monotonic(&wd_cv);
		int e = pw_thread_start_detached(wd_main, NULL);
		if (e) {
			pthread_mutex_unlock(&wd_mu);
			errno = e;
			return pw_error_set_errno(PW_ERROR, "engine: starting the deadline watchdog");
		}
		wd_started = true;
	}
	inst->wd_deadline = deadline;
	inst->wd_next = wd_list;
	wd_list = inst;
	pthread_cond_signal(&wd_cv);
	pthread_mutex_unlock(&wd_mu);
	return 0;
}

static void wd_remove(pw_instance *inst)
{
	pthread_mutex_lock(&wd_mu);
	for (pw_instance **p = &wd_list; *p; p = &(*p)->wd_next)
		if (*p == inst) {
			*p = inst->wd_next;
			break;
		}
	inst->wd_next = NULL;
	pthread_mutex_unlock(&wd_mu);
}

/* ---- instances ---- */

/* Runs fn(inst->mod, ...) under an unwind target; returns 0 or the trap code. */
static int guarded(pw_instance *inst, pw_rt_thread *t, void (*invoke)(void *, const uint64_t *, uint64_t *),
                   const uint64_t *args, uint64_t *results, bool instantiate)
{
	sigjmp_buf jb;
	sigjmp_buf *prev_target = t->target;
	pw_instance *prev_inst = t->current;
	uint32_t saved_depth = inst->ctl->depth;
	t->target = &jb;
	t->current = inst;
	int trap = sigsetjmp(jb, 1);
	if (trap == 0) {
		if (instantiate)
			inst->art->shim->instantiate(inst->mod, inst);
		else
			invoke(inst->mod, args, results);
	} else {
		inst->ctl->depth = saved_depth;
	}
	t->target = prev_target;
	t->current = prev_inst;
	return trap;
}

static int trap_result(pw_instance *inst, int trap, const char *what)
{
	switch (trap) {
	case WASM_RT_TRAP_PW_EXIT:
		return pw_error_set(PW_EEXIT, "%s: exit with code %d", what, inst->exit_code);
	case WASM_RT_TRAP_PW_INTERRUPTED:
		snprintf(inst->trap_reason, sizeof inst->trap_reason, "interrupted");
		return pw_error_set(PW_ETIMEOUT, "%s: interrupted (deadline or pw_instance_interrupt)", what);
	case WASM_RT_TRAP_EXHAUSTION:
		if (__atomic_load_n(&inst->ctl->interrupt, __ATOMIC_RELAXED)) {
			snprintf(inst->trap_reason, sizeof inst->trap_reason, "interrupted");
			return pw_error_set(PW_ETIMEOUT, "%s: interrupted (deadline or pw_instance_interrupt)", what);
		}
		/* fall through */
	default:
		if (trap != WASM_RT_TRAP_PW_HOST && !(trap == WASM_RT_TRAP_PW_ALLOC && inst->trap_reason[0]))
			snprintf(inst->trap_reason, sizeof inst->trap_reason, "%s", wasm_rt_strerror((wasm_rt_trap_t)trap));
		return pw_error_set(PW_ETRAP, "trap: %s", inst->trap_reason);
	}
}

/* The storage for each memory, table and global import of a new instance: a bound object's,
 * or a fresh memory of the instance's own (pw_imports_add_memory, capped like a memory the
 * module defines). The imported memory becomes the instance's memory. */
static int bind_externs(pw_instance *inst)
{
	const wasm_rt_pw_shim *s = inst->art->shim;
	if (!s->nextern_imports)
		return 0;
	inst->externs = calloc(s->nextern_imports, sizeof *inst->externs);
	if (!inst->externs)
		return pw_error_set(PW_ENOMEM, "instance: out of memory");
	for (uint32_t i = 0; i < s->nextern_imports; i++) {
		const pw_extern_entry *e = &inst->art->externs[i];
		if (e->kind == PW_WASM_MEMORY && !e->memory) {
			uint32_t max = e->has_max ? e->max : PW_RT_MAX_PAGES;
			if (inst->capped && max > inst->cap_pages)
				max = inst->cap_pages;
			if (inst->own_memory)
				return pw_error_set(PW_EUNSUPPORTED, "import %s.%s: a second memory", e->module, e->name);
			inst->own_memory = calloc(1, sizeof *inst->own_memory);
			if (!inst->own_memory)
				return pw_error_set(PW_ENOMEM, "instance: out of memory");
			if (pw_rt_memory_alloc(inst->own_memory, e->min, max) != 0) {
				free(inst->own_memory);
				inst->own_memory = NULL;
				return pw_error_prefix("memory import %s.%s", e->module, e->name);
			}
			inst->externs[i] = inst->own_memory;
		} else if (e->kind == PW_WASM_MEMORY) {
			inst->externs[i] = e->memory->rt;
		} else if (e->kind == PW_WASM_TABLE) {
			inst->externs[i] = e->table->rt;
		} else {
			inst->externs[i] = e->global->ptr;
		}
		if (e->kind == PW_WASM_MEMORY && !inst->memory)
			inst->memory = inst->externs[i];
	}
	return 0;
}

void *wasm_rt_pw_extern(void *host, uint32_t slot)
{
	pw_instance *inst = host;
	return inst->externs[slot];
}

int pw_instance_new(pw_instance **out, pw_artifact *a, const pw_instance_opts *opts)
{
	*out = NULL;
	pw_rt_thread *t = pw_rt_thread_get();
	if (!t)
		return pw_error_last_code() ? pw_error_last_code() : PW_ERROR;
	pw_instance *inst = calloc(1, sizeof *inst);
	size_t size = sizeof(wasm_rt_pw_control) + a->shim->instance_size;
	void *block = NULL;
	if (!inst || posix_memalign(&block, 64, size) != 0) {
		free(inst);
		return pw_error_set(PW_ENOMEM, "instance: out of memory");
	}
	memset(block, 0, size);
	inst->art = a;
	inst->block = block;
	inst->ctl = block;
	inst->mod = (uint8_t *)block + sizeof(wasm_rt_pw_control);
	inst->ctl->owner = inst;
	inst->ctl->max_depth = pw_rt_max_depth();
	if (opts) {
		uint64_t pages = opts->max_memory_bytes / 65536;
		inst->capped = opts->max_memory_bytes != 0;
		inst->cap_pages = (uint32_t)(pages > 65536 ? 65536 : pages);
		inst->host_data = opts->host_data;
	}
	if (bind_externs(inst) != 0) {
		int rc = pw_error_last_code();
		pw_error_prefix("instantiating the module");
		pw_instance_free(inst);
		return rc;
	}
	int trap = guarded(inst, t, NULL, NULL, NULL, true);
	inst->instantiated = true;
	if (trap) {
		int rc = trap_result(inst, trap, "instantiate");
		pw_error_prefix("instantiating the module");
		if (opts && opts->keep_failed) {
			inst->failed = true;
			*out = inst;
		} else {
			pw_instance_free(inst);
		}
		return rc;
	}
	*out = inst;
	return 0;
}

void pw_instance_free(pw_instance *inst)
{
	if (!inst)
		return;
	if (inst->instantiated)
		inst->art->shim->free_instance(inst->mod);
	if (inst->own_memory) {
		wasm_rt_free_memory(inst->own_memory);
		free(inst->own_memory);
	}
	free(inst->externs);
	pw_instance_free_export_handles(inst);
	free(inst->block);
	free(inst);
}

int pw_instance_call(pw_instance *inst, const char *name, const pw_val *args, size_t nargs, pw_val *results,
                     size_t nresults)
{
	const wasm_rt_pw_export *ex = NULL;
	const wasm_rt_pw_shim *s = inst->art->shim;
	for (uint32_t i = 0; i < s->nexports && !ex; i++)
		if (!strcmp(s->exports[i].name, name))
			ex = &s->exports[i];
	if (inst->failed)
		return pw_error_set(PW_EINVALID, "%s: the instance failed to instantiate", name);
	if (!ex)
		return pw_error_set(PW_ENOTFOUND, "no exported function '%s'", name);
	if (nargs != ex->nparams)
		return pw_error_set(PW_EINVALID, "%s: %zu arguments given, the function takes %u (%s)", name, nargs,
		                    ex->nparams, ex->sig);
	if (nresults < ex->nresults && !(nresults == 0 && !results))
		return pw_error_set(PW_EINVALID, "%s: room for %zu results, the function returns %u (%s)", name,
		                    nresults, ex->nresults, ex->sig);
	pw_rt_thread *t = pw_rt_thread_get();
	if (!t)
		return pw_error_last_code() ? pw_error_last_code() : PW_ERROR;
	uint64_t rbuf[16];
	uint64_t *rs = results && nresults >= ex->nresults ? results : NULL;
	uint64_t *heap = NULL;
	if (!rs) {
		if (ex->nresults <= 16) {
			rs = rbuf;
		} else {
			rs = heap = calloc(ex->nresults, sizeof *heap);
			if (!heap)
				return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
		}
	}
	bool outer = __atomic_load_n(&inst->running, __ATOMIC_RELAXED) == 0;
	if (outer) {
		inst->trap_reason[0] = 0;
		__atomic_store_n(&inst->ctl->interrupt, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&inst->ctl->max_depth, pw_rt_max_depth(), __ATOMIC_RELAXED);
		inst->ctl->depth = 0;
		if (inst->deadline > 0 && wd_add(inst, inst->deadline)) {
			free(heap);
			return pw_error_last_code();
		}
	}
	__atomic_add_fetch(&inst->running, 1, __ATOMIC_SEQ_CST);
	int trap = guarded(inst, t, ex->invoke, args, rs, false);
	__atomic_sub_fetch(&inst->running, 1, __ATOMIC_SEQ_CST);
	if (outer && inst->deadline > 0)
		wd_remove(inst);
	free(heap);
	if (trap)
		return trap_result(inst, trap, name);
	return 0;
}

void pw_instance_set_deadline(pw_instance *inst, double deadline)
{
	inst->deadline = deadline;
}

void pw_instance_interrupt(pw_instance *inst)
{
	pthread_mutex_lock(&wd_mu);
	if (__atomic_load_n(&inst->running, __ATOMIC_SEQ_CST))
		interrupt_locked(inst);
	pthread_mutex_unlock(&wd_mu);
}

const char *pw_instance_trap_reason(const pw_instance *inst)
{
	return inst->trap_reason;
}

int pw_instance_exit_code(const pw_instance *inst)
{
	return inst->exit_code;
}

uint8_t *pw_instance_memory(pw_instance *inst, uint64_t *size)
{
	if (!inst->memory) {
		if (size)
			*size = 0;
		return NULL;
	}
	if (size)
		*size = inst->memory->size;
	return inst->memory->data;
}

bool pw_instance_mem_ok(pw_instance *inst, uint64_t ptr, uint64_t len)
{
	uint64_t size = inst->memory ? inst->memory->size : 0;
	return ptr <= size && len <= size - ptr;
}

void *pw_instance_host_data(pw_instance *inst)
{
	return inst->host_data;
}

pw_artifact *pw_instance_artifact(pw_instance *inst)
{
	return inst->art;
}

void pw_instance_trap(pw_instance *inst, const char *reason)
{
	snprintf(inst->trap_reason, sizeof inst->trap_reason, "%s", reason ? reason : "host function trapped");
	wasm_rt_trap(WASM_RT_TRAP_PW_HOST);
}

void pw_instance_exit(pw_instance *inst, int code)
{
	inst->exit_code = code;
	wasm_rt_trap(WASM_RT_TRAP_PW_EXIT);
}
