/*
 * Prewarm's implementation of the wasm2c runtime (src/engine/rt/wasm-rt.h):
 * traps, memories, tables and the function-type registry that artifacts link
 * against (the prewarm executable exports these symbols to dlopen'ed code).
 *
 * Thread safety: the unwind target and the running instance are per thread;
 * the type registry takes a mutex. Traps unwind with siglongjmp to the
 * innermost pw_instance_call of the thread.
 *
 * Faults: with guard pages (the default), each memory reserves 8 GiB of
 * PROT_NONE address space and only the wasm pages are readable/writable, so
 * generated code does no bounds checks and an out-of-bounds access faults. A
 * SIGSEGV/SIGBUS handler, running on a per-thread alternate signal stack,
 * turns a fault inside the running instance's reservation into an OOB trap and
 * a fault in the thread's stack guard into a call-stack-exhaustion trap; any
 * other fault is handed to the previous handler (or kills the process as it
 * would have without us). With PW_NO_GUARD_PAGES (sanitizer builds) memories
 * are malloc'd and artifacts bounds-check; the handler still catches stack
 * overflow.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/engine_int.h"

#define PAGE_BYTES 65536u

#define ALTSTACK_BYTES (64 * 1024)

static _Thread_local pw_rt_thread t_rt;
static _Thread_local bool t_rt_ready;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static struct sigaction g_old_segv, g_old_bus;
static pthread_key_t g_thread_key;
static uint32_t g_max_depth = 20000;

bool pw_rt_guard_pages(void)
{
#ifdef PW_NO_GUARD_PAGES
	return false;
#else
	return true;
#endif
}

uint32_t pw_rt_max_depth(void)
{
	return g_max_depth;
}

/* ---- signals ---- */

static bool in_range(uintptr_t a, uintptr_t lo, uintptr_t hi)
{
	return a >= lo && a < hi;
}

static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGSEGV ? &g_old_segv : &g_old_bus;
	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
		old->sa_handler(sig);
		return;
	}
	/* Default action: restore it; returning re-executes the faulting access. */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0)
		raise(sig);
}

#ifndef PW_NO_GUARD_PAGES
/*
 * The live guard-page reservations, for the fault handler: code of one instance may run
 * while another is the thread's current one (a function another module stored into a
 * shared table, called through it), so a fault in any live reservation during a call is
 * an out-of-bounds access. Lock-free (the handler reads it); a reservation that finds no
 * free entry is still caught when it is the current instance's memory.
 */
#define LIVE_CAP 4096
static uint8_t *g_live[LIVE_CAP];
static size_t g_live_hi;         /* entries at and above it have never been used */

static void live_add(uint8_t *p)
{
	for (size_t i = 0; i < LIVE_CAP; i++) {
		uint8_t *expect = NULL;
		if (__atomic_compare_exchange_n(&g_live[i], &expect, p, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			size_t hi = __atomic_load_n(&g_live_hi, __ATOMIC_SEQ_CST);
			while (hi < i + 1 &&
			       !__atomic_compare_exchange_n(&g_live_hi, &hi, i + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				;
			return;
		}
	}
}

static void live_remove(uint8_t *p)
{
	size_t hi = __atomic_load_n(&g_live_hi, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < hi; i++) {
		uint8_t *expect = p;
		if (__atomic_compare_exchange_n(&g_live[i], &expect, NULL, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return;
	}
}

static bool live_contains(uintptr_t a)
{
	size_t hi = __atomic_load_n(&g_live_hi, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < hi; i++) {
		uintptr_t p = (uintptr_t)__atomic_load_n(&g_live[i], __ATOMIC_SEQ_CST);
		if (p && in_range(a, p, p + WASM_RT_PW_RESERVE_BYTES + PAGE_BYTES))
			return true;
	}
	return false;
}
#else
static bool live_contains(uintptr_t a)
{
	(void)a;
	return false;
}
#endif

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	pw_rt_thread *t = t_rt_ready ? &t_rt : NULL;
	if (t && t->target && t->current && si->si_code > 0) {
		uintptr_t a = (uintptr_t)si->si_addr;
		wasm_rt_memory_t *m = t->current->memory;
		if (m && m->reserved && in_range(a, (uintptr_t)m->data, (uintptr_t)m->data + m->reserved))
			siglongjmp(*t->target, WASM_RT_TRAP_OOB);
		if (live_contains(a))
			siglongjmp(*t->target, WASM_RT_TRAP_OOB);
		if (t->stack_lo && in_range(a, t->stack_lo - (1u << 20), t->stack_lo + 65536))
			siglongjmp(*t->target, WASM_RT_TRAP_EXHAUSTION);
	}
	chain(sig, si, uc);
}

static void thread_exit(void *p)
{
	pw_rt_thread *t = p;
	if (t && t->altstack) {
		stack_t ss = { .ss_flags = SS_DISABLE };
		sigaltstack(&ss, NULL);
		munmap(t->altstack, t->altstack_size);
		t->altstack = NULL;
	}
}

static void init_once(void)
{
	const char *d = getenv("PREWARM_MAX_CALL_DEPTH");
	if (d && *d) {
		char *end;
		unsigned long v = strtoul(d, &end, 10);
		if (*end == 0 && v > 0 && v < 10000000)
			g_max_depth = (uint32_t)v;
	}
	if (pthread_key_create(&g_thread_key, thread_exit) != 0) {
		g_init_rc = pw_error_set(PW_ERROR, "runtime: pthread_key_create failed");
		return;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &g_old_segv) != 0 || sigaction(SIGBUS, &sa, &g_old_bus) != 0)
		g_init_rc = pw_error_set_errno(PW_ERROR, "runtime: sigaction(SIGSEGV/SIGBUS)");
}

int pw_runtime_init(void)
{
	pthread_once(&g_once, init_once);
	return g_init_rc;
}

pw_rt_thread *pw_rt_thread_get(void)
{
	if (t_rt_ready)
		return &t_rt;
	if (pw_runtime_init() != 0)
		return NULL;
	pw_rt_thread *t = &t_rt;
	memset(t, 0, sizeof *t);
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *addr;
		size_t size;
		if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
			t->stack_lo = (uintptr_t)addr;
			t->stack_hi = (uintptr_t)addr + size;
		}
		pthread_attr_destroy(&attr);
	}
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) && cur.ss_size >= ALTSTACK_BYTES) {
		/* the thread already has one big enough (e.g. a sanitizer's) */
	} else {
		size_t sz = ALTSTACK_BYTES;
		void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			pw_error_set_errno(PW_ENOMEM, "runtime: mmap of the alternate signal stack");
			return NULL;
		}
		stack_t ss = { .ss_sp = p, .ss_size = sz, .ss_flags = 0 };
		if (sigaltstack(&ss, NULL) != 0) {
			pw_error_set_errno(PW_ERROR, "runtime: sigaltstack");
			munmap(p, sz);
			return NULL;
		}
		t->altstack = p;
		t->altstack_size = sz;
	}
	pthread_setspecific(g_thread_key, t);
	t_rt_ready = true;
	return t;
}

/* ---- wasm-rt.h ---- */

void wasm_rt_init(void)
{
	pw_runtime_init();
}

bool wasm_rt_is_initialized(void)
{
	return true;
}

void wasm_rt_free(void)
{
}

void wasm_rt_trap(wasm_rt_trap_t trap)
{
	if (!t_rt_ready || !t_rt.target) {
		fprintf(stderr, "prewarm: wasm trap (%s) outside of any call: aborting\n", wasm_rt_strerror(trap));
		abort();
	}
	siglongjmp(*t_rt.target, (int)trap);
}

void wasm_rt_pw_interrupted(void)
{
	wasm_rt_trap(WASM_RT_TRAP_PW_INTERRUPTED);
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
	switch (trap) {
	case WASM_RT_TRAP_NONE: return "no trap";
	case WASM_RT_TRAP_OOB: return "out of bounds memory access";
	case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
	case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
	case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
	case WASM_RT_TRAP_UNREACHABLE: return "unreachable";
	case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call type mismatch";
	case WASM_RT_TRAP_PW_UNDEFINED_ELEMENT: return "undefined element";
	case WASM_RT_TRAP_PW_NULL_ELEMENT: return "uninitialized element";
	case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
	case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
	case WASM_RT_TRAP_PW_INTERRUPTED: return "interrupted";
	case WASM_RT_TRAP_PW_HOST: return "host function trapped";
	case WASM_RT_TRAP_PW_EXIT: return "exit";
	case WASM_RT_TRAP_PW_ALLOC: return "memory or table allocation failed";
	}
	return "unknown trap";
}

/* The registry: one entry per distinct signature, ids from 1. */
typedef struct functype {
	uint32_t np, nr;
	uint8_t *types;
} functype;

static pthread_mutex_t g_types_mu = PTHREAD_MUTEX_INITIALIZER;
static functype *g_types;
static uint32_t g_ntypes, g_captypes;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
	uint32_t n = params + results;
	uint8_t stackbuf[64];
	uint8_t *ts = n <= sizeof stackbuf ? stackbuf : malloc(n);
	if (!ts)
		wasm_rt_trap(WASM_RT_TRAP_PW_ALLOC);
	va_list ap;
	va_start(ap, results);
	for (uint32_t i = 0; i < n; i++)
		ts[i] = (uint8_t)va_arg(ap, int);
	va_end(ap);

	uint32_t id = 0;
	pthread_mutex_lock(&g_types_mu);
	for (uint32_t i = 0; i < g_ntypes && !id; i++)
		if (g_types[i].np == params && g_types[i].nr == results && (n == 0 || !memcmp(g_types[i].types, ts, n)))
			id = i + 1;
	if (!id) {
		if (g_ntypes == g_captypes) {
			uint32_t nc = g_captypes ? g_captypes * 2 : 64;
			functype *nt = realloc(g_types, nc * sizeof *nt);
			if (!nt)
				goto oom;
			g_types = nt;
			g_captypes = nc;
		}
		uint8_t *copy = malloc(n ? n : 1);
		if (!copy)
			goto oom;
		if (n)
			memcpy(copy, ts, n);
		g_types[g_ntypes] = (functype){ params, results, copy };
		id = ++g_ntypes;
	}
	pthread_mutex_unlock(&g_types_mu);
	if (ts != stackbuf)
		free(ts);
	return id;
oom:
	pthread_mutex_unlock(&g_types_mu);
	if (ts != stackbuf)
		free(ts);
	wasm_rt_trap(WASM_RT_TRAP_PW_ALLOC);
}

static void alloc_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void alloc_fail(const char *fmt, ...)
{
	pw_instance *inst = t_rt_ready ? t_rt.current : NULL;
	if (inst) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(inst->trap_reason, sizeof inst->trap_reason, fmt, ap);
		va_end(ap);
	}
	wasm_rt_trap(WASM_RT_TRAP_PW_ALLOC);
}

#ifndef PW_NO_GUARD_PAGES
/*
 * Reservation pool. A fresh 8 GiB reservation costs more than the instance that uses it:
 * the first touch of a new region allocates page-table pages (PUD/PMD/PTE), and munmap
 * frees them again with a TLB shootdown. So freed reservations are kept (up to
 * PREWARM_MEMORY_POOL, default 16, 0 disables) and handed to the next memory: on give,
 * a memory of up to 4 MiB has its resident pages zeroed with memset and the others
 * dropped (zero_resident), a larger one gets one madvise(MADV_DONTNEED) (a private
 * anonymous mapping then reads as zeros and the physical memory goes back to the system);
 * the page tables stay either way; on
 * take, mprotect makes exactly the new memory's pages read/write and the rest PROT_NONE
 * again, so bounds faults are what they are on a fresh reservation.
 */
#define POOL_CAP 256
/* Up to this many used bytes a freed memory is reset page by page (zero_resident); above,
 * one madvise drops it all. */
#define POOL_ZERO_MAX (4u * 1024u * 1024u)
static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint8_t *p;
	uint64_t rw;    /* bytes at the start that are PROT_READ|PROT_WRITE (all zero) */
} g_pool[POOL_CAP];
static size_t g_npool;
static size_t g_pool_max = SIZE_MAX;   /* SIZE_MAX = not read yet */

/* The pool's capacity; call with g_pool_mu held. */
static size_t pool_max(void)
{
	if (g_pool_max == SIZE_MAX) {
		const char *e = getenv("PREWARM_MEMORY_POOL");
		char *end = NULL;
		unsigned long v = e && *e ? strtoul(e, &end, 10) : 16;
		if (e && *e && (!end || *end))
			v = 16;
		g_pool_max = v > POOL_CAP ? POOL_CAP : v;
	}
	return g_pool_max;
}

/* A pooled reservation with exactly `bytes` read/write, or NULL (none, or mprotect failed). */
static uint8_t *pool_take(uint64_t bytes)
{
	pthread_mutex_lock(&g_pool_mu);
	uint8_t *p = NULL;
	uint64_t rw = 0;
	if (g_npool) {
		g_npool--;
		p = g_pool[g_npool].p;
		rw = g_pool[g_npool].rw;
	}
	pthread_mutex_unlock(&g_pool_mu);
	if (!p)
		return NULL;
	int rc = 0;
	if (rw > bytes)
		rc = mprotect(p + bytes, rw - bytes, PROT_NONE);
	else if (rw < bytes)
		rc = mprotect(p + rw, bytes - rw, PROT_READ | PROT_WRITE);
	if (rc != 0) {
		munmap(p, WASM_RT_PW_RESERVE_BYTES + PAGE_BYTES);
		return NULL;
	}
	return p;
}

/*
 * Makes p[0, used) read as zeros, cheaply: mincore tells which pages are resident; those
 * are cleared with memset (they stay resident, so the next user takes no page faults),
 * the runs of other pages get madvise(MADV_DONTNEED) (which also covers swapped-out pages;
 * over pages never touched it clears no page-table entry and so needs no TLB flush, the
 * part of madvise that costs most, in a VM above all). 0, or -1 when mincore or madvise
 * failed (the caller then unmaps).
 */
static int zero_resident(uint8_t *p, uint64_t used)
{
	long pagesz = sysconf(_SC_PAGESIZE);
	unsigned char vec[POOL_ZERO_MAX / 4096];
	uint64_t ps = (uint64_t)pagesz, n = used / ps;
	if (pagesz <= 0 || used % ps || n > sizeof vec || mincore(p, used, vec) != 0)
		return used ? madvise(p, used, MADV_DONTNEED) : 0;
	for (uint64_t i = 0; i < n;) {
		uint64_t j = i;
		bool res = vec[i] & 1;
		while (j < n && (bool)(vec[j] & 1) == res)
			j++;
		if (res)
			memset(p + i * ps, 0, (j - i) * ps);
		else if (madvise(p + i * ps, (j - i) * ps, MADV_DONTNEED) != 0)
			return -1;
		i = j;
	}
	return 0;
}

/* Returns a reservation whose first `used` bytes are read/write: pooled when there is room
 * and the pages could be dropped, else unmapped. */
static void pool_give(uint8_t *p, uint64_t used)
{
	pthread_mutex_lock(&g_pool_mu);
	bool keep = g_npool < pool_max();
	pthread_mutex_unlock(&g_pool_mu);
	if (keep) {
		int rc = used <= POOL_ZERO_MAX ? zero_resident(p, used) : madvise(p, used, MADV_DONTNEED);
		keep = rc == 0;
	}
	if (keep) {
		pthread_mutex_lock(&g_pool_mu);
		if (g_npool < pool_max()) {
			g_pool[g_npool].p = p;
			g_pool[g_npool].rw = used;
			g_npool++;
			p = NULL;
		}
		pthread_mutex_unlock(&g_pool_mu);
	}
	if (p)
		munmap(p, WASM_RT_PW_RESERVE_BYTES + PAGE_BYTES);
}

size_t pw_rt_memory_pool_size(void)
{
	pthread_mutex_lock(&g_pool_mu);
	size_t n = g_npool;
	pthread_mutex_unlock(&g_pool_mu);
	return n;
}
#else
size_t pw_rt_memory_pool_size(void)
{
	return 0;
}
#endif

int pw_rt_memory_alloc(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
	memset(mem, 0, sizeof *mem);
	if (max_pages > PW_RT_MAX_PAGES)
		max_pages = PW_RT_MAX_PAGES;
	if (initial_pages > max_pages)
		return pw_error_set(PW_EINVALID, "memory of %u initial pages exceeds the limit of %u pages",
		                    initial_pages, max_pages);
	uint64_t bytes = (uint64_t)initial_pages * PAGE_BYTES;
#ifdef PW_NO_GUARD_PAGES
	uint8_t *p = calloc(1, bytes ? bytes : 1);
	if (!p)
		return pw_error_set(PW_ENOMEM, "memory of %u pages: out of memory", initial_pages);
	mem->reserved = 0;
#else
	uint64_t reserve = WASM_RT_PW_RESERVE_BYTES + PAGE_BYTES;
	uint8_t *p = pool_take(bytes);
	if (!p) {
		p = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return pw_error_set(PW_ENOMEM, "memory: mmap of %llu bytes of address space: %s",
			                    (unsigned long long)reserve, strerror(errno));
		if (bytes && mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) {
			int e = errno;
			munmap(p, reserve);
			return pw_error_set(PW_ENOMEM, "memory of %u pages: mprotect: %s", initial_pages, strerror(e));
		}
	}
	mem->reserved = reserve;
	live_add(p);
#endif
	mem->data = p;
	mem->pages = initial_pages;
	mem->max_pages = max_pages;
	mem->size = bytes;
	return 0;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
	pw_instance *inst = t_rt_ready ? t_rt.current : NULL;
	uint32_t cap = inst && inst->capped ? inst->cap_pages : PW_RT_MAX_PAGES;
	if (max_pages > cap)
		max_pages = cap;
	if (pw_rt_memory_alloc(mem, initial_pages, max_pages) != 0)
		alloc_fail("%s", pw_error_last());
	if (inst && !inst->memory)
		inst->memory = mem;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
	uint32_t old = mem->pages;
	uint64_t want = (uint64_t)old + delta;
	if (want > mem->max_pages)
		return UINT32_MAX;
	if (delta == 0)
		return old;
	uint64_t bytes = want * PAGE_BYTES;
#ifdef PW_NO_GUARD_PAGES
	uint8_t *p = realloc(mem->data, bytes);
	if (!p)
		return UINT32_MAX;
	memset(p + mem->size, 0, bytes - mem->size);
	mem->data = p;
#else
	if (mprotect(mem->data + mem->size, bytes - mem->size, PROT_READ | PROT_WRITE) != 0)
		return UINT32_MAX;
#endif
	mem->pages = (uint32_t)want;
	mem->size = bytes;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	if (!mem->data)
		return;
#ifdef PW_NO_GUARD_PAGES
	free(mem->data);
#else
	live_remove(mem->data);
	pool_give(mem->data, mem->size);
#endif
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}

#define DEFINE_TABLE(kind, elem_t, nullv)                                                          \
	void wasm_rt_allocate_##kind##_table(wasm_rt_##kind##_table_t *t, uint32_t n, uint32_t max) \
	{                                                                                          \
		if (max > PW_RT_MAX_TABLE_ELEMS)                                                   \
			max = PW_RT_MAX_TABLE_ELEMS;                                               \
		memset(t, 0, sizeof *t);                                                           \
		if (n > max)                                                                       \
			alloc_fail("table of %u elements exceeds the limit of %u", n, max);        \
		t->data = calloc(n ? n : 1, sizeof(elem_t));                                       \
		if (!t->data)                                                                      \
			alloc_fail("table of %u elements: out of memory", n);                      \
		t->size = n;                                                                       \
		t->max_size = max;                                                                 \
	}                                                                                          \
	void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *t)                              \
	{                                                                                          \
		free(t->data);                                                                     \
		t->data = NULL;                                                                    \
		t->size = 0;                                                                       \
	}                                                                                          \
	uint32_t wasm_rt_grow_##kind##_table(wasm_rt_##kind##_table_t *t, uint32_t delta, elem_t init) \
	{                                                                                          \
		uint32_t old = t->size;                                                            \
		uint64_t want = (uint64_t)old + delta;                                             \
		if (want > t->max_size)                                                            \
			return UINT32_MAX;                                                         \
		if (delta == 0)                                                                    \
			return old;                                                                \
		elem_t *p = realloc(t->data, want * sizeof(elem_t));                               \
		if (!p)                                                                            \
			return UINT32_MAX;                                                         \
		for (uint64_t i = old; i < want; i++)                                              \
			p[i] = init;                                                               \
		t->data = p;                                                                       \
		t->size = (uint32_t)want;                                                          \
		return old;                                                                        \
	}

DEFINE_TABLE(funcref, wasm_rt_funcref_t, wasm_rt_funcref_null_value)
DEFINE_TABLE(externref, wasm_rt_externref_t, wasm_rt_externref_null_value)
