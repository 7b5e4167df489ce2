/*
 * The AOT engine: WebAssembly module -> native artifact (wasm2c + the system C
 * compiler, plus a generated shim giving every artifact one ABI) -> verified
 * load (memfd + dlopen, RTLD_LOCAL) -> instances that run on any thread.
 *
 * An artifact is an ELF shared object. Its exported data symbol
 * PW_ARTIFACT_DESC_SYMBOL holds its description (artifact ABI version, engine
 * hash, wasm sha256) as text, found through the dynamic symbol table, so a
 * loader can check an artifact against its cache key before any dlopen
 * (pw_artifact_read_info), whatever compiler built it. Its exported symbol `pw_artifact_shim_v1` returns the
 * shim table (struct wasm_rt_pw_shim in src/engine/rt/wasm-rt.h): instance size,
 * instantiate/free, imports (filled by the loader from a pw_imports table) and
 * exports with a generic invoker, so the loader never needs the module's
 * generated header. Design and runtime details: docs/engine.md.
 *
 * Two tiers, each its own engine with its own hash (so their artifacts never
 * share a cache key): `optimized` (the system C compiler, gcc -O1 by default:
 * tens of seconds per MB of code, fast code) and `quick` (TinyCC then GNU ld:
 * a fraction of a second, code several times slower). The server serves a new
 * module from the quick tier at once and swaps the optimized one in later.
 */
#ifndef PREWARM_ENGINE_H
#define PREWARM_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/util.h"
#include "prewarm/wasm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 3: memory, table and global imports and exports (shim ABI 2). 4: element segments are
 * written before data segments at instantiation (the spec's order). */
#define PW_ARTIFACT_ABI_VERSION 4
/* The exported data symbol holding an artifact's description. Its name is the version of
 * the description's format (unchanged since ABI 2), so an older artifact is still read and
 * refused for its ABI version. */
#define PW_ARTIFACT_DESC_SYMBOL "pw_artifact_desc_v2"

/* ---- the engine (a configured toolchain) ---------------------------------------------- */

typedef enum pw_engine_tier {
	PW_TIER_DEFAULT = 0,     /* env PREWARM_TIER ("quick" / "optimized"), else optimized */
	PW_TIER_OPTIMIZED,
	PW_TIER_QUICK,
} pw_engine_tier;

/* "optimized" / "quick"; pw_engine_tier_parse: 0, or PW_EINVALID naming the bad value. */
const char *pw_engine_tier_name(pw_engine_tier t);
int pw_engine_tier_parse(const char *s, pw_engine_tier *out);

typedef struct pw_engine_opts {
	pw_engine_tier tier;
	/* Compiler command. optimized: default gcc (measured best, see BENCHMARKS.md), env
	 * PREWARM_CC. quick: default tcc, env PREWARM_QUICK_CC; it compiles to one relocatable
	 * object that `linker` turns into the shared object. */
	const char *cc;
	const char *opt_level;   /* optimized only: "-O0".."-O3" (default measured); env PREWARM_OPT */
	/* appended compiler flags (part of the engine hash); env PREWARM_CFLAGS (optimized),
	 * PREWARM_QUICK_CFLAGS (quick) */
	const char *extra_cflags;
	const char *linker;      /* quick only: default ld (GNU binutils); env PREWARM_LD */
	const char *wasm2c;      /* translator (default "wasm2c"); env PREWARM_WASM2C */
	const char *tmp_dir;     /* where compiles happen (default $TMPDIR or /tmp) */
	bool keep_tmp;           /* keep the build dir (debugging) */
	/* Probe cache (see docs/engine.md): where the toolchain's answers are remembered,
	 * keyed by each tool's path and stat identity. NULL = $XDG_CACHE_HOME/prewarm or
	 * $HOME/.cache/prewarm; env PREWARM_NO_PROBE_CACHE=1 or no_probe_cache disables it. */
	const char *probe_cache_dir;
	bool no_probe_cache;
	/* A pinned engine: the text `prewarm engine --tier T` printed on a host that has the
	 * toolchain (without its final "hash:" line, or with it: it must then agree). The engine
	 * takes that description and hash without probing anything: it can look up and load
	 * artifacts built by that toolchain, and cannot compile (pw_engine_can_compile false).
	 * Refused (PW_EMISMATCH) when its runtime header, ABI versions or guard-page mode are not
	 * this binary's. For images that carry no optimizing compiler. */
	const char *pinned_description;
} pw_engine_opts;
/* Every string is copied; opts may be freed after pw_engine_new. */

typedef struct pw_engine pw_engine;

/* Probes the toolchain (wasm2c --version, cc --version, cc -dumpmachine; answered from
 * the probe cache when no named tool changed) and computes the description and hash. Errors name the missing tool (PW_ERROR) or the bad
 * option (PW_EINVALID). opts may be NULL. The engine is read-only afterwards: one engine
 * may compile on several threads at once. Also installs the runtime (pw_runtime_init). */
int pw_engine_new(pw_engine **out, const pw_engine_opts *opts);
void pw_engine_free(pw_engine *e);
/* Removes the compile directories in the engine's temp dir left by processes that died
 * mid-compile (their pid is gone, or is this process's: call it before compiling). Assumes
 * the temp dir is not shared with another pid namespace (a container's own /tmp is not).
 * Returns how many were removed; never fails. */
int pw_engine_sweep_tmp(const pw_engine *e);
/* Canonical multi-line "key: value" description; stable across runs. */
const char *pw_engine_description(const pw_engine *e);
/* sha256 of the description, 64 lower-case hex. */
const char *pw_engine_hash(const pw_engine *e);
/* True when the toolchain's answers came from the probe cache (no tool was run). */
bool pw_engine_probe_cached(const pw_engine *e);
pw_engine_tier pw_engine_get_tier(const pw_engine *e);   /* never PW_TIER_DEFAULT */
/* False for a pinned engine (opts.pinned_description): pw_engine_compile then fails. */
bool pw_engine_can_compile(const pw_engine *e);
/*
 * A generous estimate of what compiling `wasm_len` bytes takes with this engine, in seconds
 * of one core: for the optimized tier a floor plus a rate per MiB of wasm above what gcc -O1
 * measured (DESIGN: ~26 s per MB of code), for the quick tier 0 (too quick to be worth
 * waiting for a peer). What a waiter for a peer's compile waits at most before compiling.
 */
double pw_engine_compile_seconds_estimate(const pw_engine *e, size_t wasm_len);

typedef struct pw_compile_stats {
	double translate_seconds;  /* wasm2c */
	double cc_seconds;         /* C compile + link (quick: tcc + ld) */
	double total_seconds;
	size_t c_bytes;            /* generated C size */
	size_t artifact_bytes;
} pw_compile_stats;

/*
 * Checks that the engine can compile and the host can run `wasm`:
 * parse errors (PW_EINVALID), component model / SIMD / threads / memory64 / multi-memory /
 * exceptions (PW_EUNSUPPORTED naming the feature), and imports that `host` does not provide
 * (PW_EUNSUPPORTED "unknown import module.field (signature)", every one named).
 * `host` may be NULL (no import check).
 */
typedef struct pw_imports pw_imports;
int pw_engine_check(const pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host);

/*
 * Compiles `wasm` into artifact bytes (appended to *artifact). Runs pw_engine_check first.
 * Reproducible: the same (engine, wasm) gives byte-identical artifacts. Thread-safe: several
 * compiles may run at once. stats may be NULL. A pinned engine gives PW_EUNSUPPORTED.
 */
int pw_engine_compile(pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host,
                      pw_buf *artifact, pw_compile_stats *stats);

/* Options of one compile beyond the engine's. (The tools inherit the calling thread's
 * niceness: a background compiler thread lowers its own priority with setpriority.) */
typedef struct pw_compile_opts {
	/* When non-NULL and set non-zero from another thread, the running tool is killed and the
	 * compile returns PW_ECANCELED. */
	const atomic_int *cancel;
} pw_compile_opts;
int pw_engine_compile_ex(pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host,
                         const pw_compile_opts *opts, pw_buf *artifact, pw_compile_stats *stats);

/* ---- artifacts ------------------------------------------------------------------------ */

typedef struct pw_artifact_info {
	uint32_t abi_version;
	char engine_hash[PW_SHA256_HEX_LEN + 1];
	char wasm_sha256[PW_SHA256_HEX_LEN + 1];
} pw_artifact_info;

/* Reads the embedded description from artifact bytes without loading them (ELF parse,
 * bounds-checked: outside input). PW_EINVALID if not an artifact. */
int pw_artifact_read_info(const uint8_t *so, size_t len, pw_artifact_info *out);

typedef struct pw_artifact pw_artifact;  /* loaded, shared by all its instances; thread-safe */

/*
 * Loads artifact bytes: checks the embedded description against `expect` (when not NULL:
 * PW_EMISMATCH naming the field), copies the bytes into a memfd and dlopens it (so what was
 * verified is what runs), checks the shim ABI version, binds every import from `host`
 * (PW_EUNSUPPORTED naming an import the host lacks or whose signature differs).
 * `host` must outlive the artifact.
 */
int pw_artifact_load(pw_artifact **out, const uint8_t *so, size_t len,
                     const pw_artifact_info *expect, const pw_imports *host);
void pw_artifact_free(pw_artifact *a);  /* all its instances must be freed first */
const pw_artifact_info *pw_artifact_get_info(const pw_artifact *a);

/* Exported function lookup: signature in pw_wasm_sig_string form ("ii:i"). */
typedef struct pw_func_info {
	const char *name;
	const char *sig;
	uint32_t nparams, nresults;
} pw_func_info;
size_t pw_artifact_export_count(const pw_artifact *a);
/* i-th exported function (NULL past the end or if the i-th export is not a function). */
const pw_func_info *pw_artifact_export(const pw_artifact *a, size_t i);
const pw_func_info *pw_artifact_find_func(const pw_artifact *a, const char *name);
/* Custom section io.kubewarden.metadata copied into the artifact (NULL if none). */
const char *pw_artifact_kw_metadata(const pw_artifact *a, size_t *len);

/* ---- host imports --------------------------------------------------------------------- */

/*
 * A host function is plain C taking the calling instance first, then the wasm params with
 * C types u32/u64/float/double (i32/i64/f32/f64), returning the single result or void:
 *   uint32_t my_fd_write(pw_instance *inst, uint32_t fd, uint32_t iovs, uint32_t n, uint32_t nw);
 * registered with sig "iiii:i". A host function may trap (pw_instance_trap) or exit
 * (pw_instance_exit); both unwind the wasm frames back to pw_instance_call.
 */
typedef struct pw_instance pw_instance;

typedef struct pw_host_func {
	const char *module;
	const char *name;
	const char *sig;
	void (*fn)(void);   /* cast from the real C type */
} pw_host_func;

/* A set of host functions. The table is copied; strings must be static. */
int pw_imports_new(pw_imports **out);
void pw_imports_free(pw_imports *im);
int pw_imports_add(pw_imports *im, const char *module, const char *name, const char *sig,
                   void (*fn)(void));
int pw_imports_add_all(pw_imports *im, const pw_host_func *funcs, size_t n);
/* The entry for (module, name), or NULL. */
const pw_host_func *pw_imports_find(const pw_imports *im, const char *module, const char *name);

/* ---- memories, tables and globals (imports other than functions) ---------------------- */

/*
 * A module may import its memory, tables (funcref) and globals. The host provides them in
 * its pw_imports, checked by the spec's import matching rules at pw_engine_check and
 * pw_artifact_load (PW_EUNSUPPORTED naming module.field, the declared type and the host's):
 * - memory: the host's current pages >= the declared minimum; when the module declares a
 *   maximum, the host's memory has one, and not above it. Table: the same with elements,
 *   element type funcref.
 * - global: the same value type (i32/i64/f32/f64) and the same mutability.
 * Two ways to provide a memory:
 * - pw_imports_add_memory: every instance gets a fresh memory of its own with these
 *   limits (guard pages or bounds checks as for a defined memory; the instance's
 *   max_memory_bytes caps it). What a policy host wants (OPA's env.memory).
 * - pw_imports_bind_memory: one pw_memory shared by every instance made with this import
 *   table (the spec's linking; the host serialises their use).
 * Inside a host function, pw_instance_memory(inst) is the instance's memory, imported or
 * not, at its current size (memory.grow in wasm is seen there at once).
 */
#define PW_NO_MAX UINT32_MAX   /* limits without a maximum */

typedef struct pw_memory pw_memory;
/* A memory of initial_pages 64 KiB pages, growable up to max_pages (PW_NO_MAX: up to
 * 65536). PW_EINVALID when initial > max or max > 65536 (other than PW_NO_MAX). */
int pw_memory_new(pw_memory **out, uint32_t initial_pages, uint32_t max_pages);
/* After every instance that imports it is freed. No-op for NULL and for a memory borrowed
 * from an instance (pw_instance_export_memory). */
void pw_memory_free(pw_memory *m);
/* The bytes and their count; the pointer may change when the memory grows. */
uint8_t *pw_memory_data(const pw_memory *m, uint64_t *size);
uint32_t pw_memory_pages(const pw_memory *m);
/* Grows like memory.grow: 0 and the old page count in *old_pages (may be NULL); PW_EINVALID
 * beyond the maximum, PW_ENOMEM when the system refuses the pages. */
int pw_memory_grow(pw_memory *m, uint32_t delta_pages, uint32_t *old_pages);

typedef struct pw_table pw_table;  /* a funcref table; its elements come from the modules */
int pw_table_new(pw_table **out, uint32_t initial, uint32_t max);   /* max: PW_NO_MAX */
void pw_table_free(pw_table *t);
uint32_t pw_table_size(const pw_table *t);

typedef struct pw_global pw_global;
/* valtype PW_WASM_I32/I64/F32/F64, value as pw_val. PW_EUNSUPPORTED for other types. */
int pw_global_new(pw_global **out, uint8_t valtype, bool mutable_, uint64_t value);
void pw_global_free(pw_global *g);
uint64_t pw_global_get(const pw_global *g);
/* PW_EINVALID for an immutable global. */
int pw_global_set(pw_global *g, uint64_t value);
uint8_t pw_global_valtype(const pw_global *g);
bool pw_global_mutable(const pw_global *g);

/* Module and name strings must outlive the table (as for functions); so must the objects. */
int pw_imports_add_memory(pw_imports *im, const char *module, const char *name, uint32_t initial_pages,
                          uint32_t max_pages);
int pw_imports_bind_memory(pw_imports *im, const char *module, const char *name, pw_memory *m);
int pw_imports_bind_table(pw_imports *im, const char *module, const char *name, pw_table *t);
int pw_imports_bind_global(pw_imports *im, const char *module, const char *name, pw_global *g);

/* ---- instances ------------------------------------------------------------------------ */

typedef struct pw_instance_opts {
	uint64_t max_memory_bytes;  /* cap on linear memory (0 = the module's own max / 4 GiB) */
	void *host_data;            /* for host functions: pw_instance_host_data() */
	/* A trap during instantiation still returns PW_ETRAP, but with the instance in *out:
	 * it cannot be called (PW_EINVALID), and lives on (until pw_instance_free) for what its
	 * element segments already wrote into an imported table, as the spec keeps them. */
	bool keep_failed;
} pw_instance_opts;

/*
 * Creates an instance (memory, tables, globals, data and element segments). Runs the wasm
 * start function if the module has one (a trap there is PW_ETRAP). Does not run _start.
 * An instance runs on one thread at a time; different instances run in parallel.
 */
int pw_instance_new(pw_instance **out, pw_artifact *a, const pw_instance_opts *opts);
void pw_instance_free(pw_instance *inst);

/* Wasm values: i32/i64 as u64 (zero-extended), f32/f64 as their bit patterns in u64. */
typedef uint64_t pw_val;

/*
 * Calls an exported function. Returns 0; PW_ENOTFOUND (no such export); PW_EINVALID
 * (argument count differs); PW_ETRAP (message "trap: <reason>", reason via
 * pw_instance_trap_reason); PW_ETIMEOUT (deadline passed, see pw_instance_set_deadline);
 * PW_EEXIT (proc_exit: code via pw_instance_exit_code). Never kills the process for a
 * wasm fault: out-of-bounds, stack exhaustion and the like become PW_ETRAP.
 * After a trap or timeout the instance may be inconsistent: callers should discard it.
 */
int pw_instance_call(pw_instance *inst, const char *name, const pw_val *args, size_t nargs,
                     pw_val *results, size_t nresults);

/* Bounds on a call: absolute monotonic time (pw_now() based) after which the running call is
 * interrupted at the next loop head or function entry (PW_ETIMEOUT, trap reason
 * "interrupted"); 0 = none. Applies to later calls; one watchdog thread serves all. */
void pw_instance_set_deadline(pw_instance *inst, double deadline);
/* Interrupts the instance's running call from any thread (no-op if idle): the call
 * returns PW_ETIMEOUT. */
void pw_instance_interrupt(pw_instance *inst);

const char *pw_instance_trap_reason(const pw_instance *inst); /* "" if none */
int pw_instance_exit_code(const pw_instance *inst);

/* The instance's first linear memory (exported or not); NULL size 0 if none. The pointer
 * may change after memory.grow: fetch it again after every call into wasm. */
uint8_t *pw_instance_memory(pw_instance *inst, uint64_t *size);
/* 1 when [ptr, ptr+len) lies inside the current memory. */
bool pw_instance_mem_ok(pw_instance *inst, uint64_t ptr, uint64_t len);
/* An exported memory, table or global of the instance (NULL when it has none of that name):
 * borrowed, valid while the instance lives; may be bound into another module's imports. */
pw_memory *pw_instance_export_memory(pw_instance *inst, const char *name);
pw_table *pw_instance_export_table(pw_instance *inst, const char *name);
pw_global *pw_instance_export_global(pw_instance *inst, const char *name);
void *pw_instance_host_data(pw_instance *inst);
pw_artifact *pw_instance_artifact(pw_instance *inst);

/* From inside a host function only: unwind to pw_instance_call with PW_ETRAP / PW_EEXIT. */
__attribute__((noreturn)) void pw_instance_trap(pw_instance *inst, const char *reason);
__attribute__((noreturn)) void pw_instance_exit(pw_instance *inst, int code);

/* Process-wide runtime setup (signal handlers); idempotent, called by pw_engine_new and
 * pw_artifact_load. Threads that run wasm get their alternate signal stack lazily. */
int pw_runtime_init(void);

#ifdef __cplusplus
}
#endif
#endif
