/*
 * Private declarations shared by the engine's files: the runtime (runtime.c),
 * the loader and instances (artifact.c), the compile pipeline (compile.c,
 * shim_gen.c, proc.c) and the engine probe (engine.c). Not a public contract.
 */
#ifndef PW_ENGINE_INT_H
#define PW_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "prewarm/engine.h"
#include "engine/rt/wasm-rt.h"

/* The runtime header text, embedded at build time (part.cmake). */
extern const char pw_rt_header_text[];
extern const unsigned long pw_rt_header_len;

/* The most pages a 32-bit memory can have (4 GiB); also "no maximum" in wasm_rt_memory_t. */
#define PW_RT_MAX_PAGES 65536u
/* The most elements a table may have (the runtime's cap; also "no maximum"). */
#define PW_RT_MAX_TABLE_ELEMS 10000000u

/* Host-side memories, tables and globals (externs.c). `rt` is the storage the generated
 * code uses: `own`, or an instance's (borrowed: pw_instance_export_*). */
struct pw_memory {
	wasm_rt_memory_t *rt;
	wasm_rt_memory_t own;
	bool borrowed;
	bool has_max;                   /* the maximum is rt->max_pages */
};
struct pw_table {
	wasm_rt_funcref_table_t *rt;
	wasm_rt_funcref_table_t own;
	bool borrowed;
	bool has_max;                   /* the maximum is rt->max_size */
};
struct pw_global {
	void *ptr;                      /* the value: u32 / u64 / f32 / f64 by valtype */
	uint64_t own;
	uint8_t valtype;
	bool mutable_;
	bool borrowed;
};

/* A memory, table or global a pw_imports offers (imports.c). */
typedef struct pw_extern_entry {
	const char *module;
	const char *name;
	uint8_t kind;                   /* PW_WASM_MEMORY / TABLE / GLOBAL */
	pw_memory *memory;              /* bound objects (one of them), or NULL: */
	pw_table *table;
	pw_global *global;
	uint32_t min, max;              /* a fresh memory per instance (pw_imports_add_memory) */
	bool has_max;
} pw_extern_entry;

const pw_extern_entry *pw_imports_find_extern(const pw_imports *im, const char *module, const char *name);
/* Whether `e` (NULL = absent) satisfies the import `want` by the spec's matching rules.
 * When not, appends "module.field (<declared type>[; the host has <its type>])" to `miss`,
 * prefixed by ", " when `sep`. */
bool pw_extern_check(const pw_extern_entry *e, const wasm_rt_pw_extern_import *want, pw_buf *miss, bool sep);
/* The import of a parsed module as the shim describes it. */
wasm_rt_pw_extern_import pw_extern_import_of(const pw_wasm_import *im);

/* (runtime.c) Allocates a memory: a guard-page reservation or calloc, as the runtime is
 * built; max_pages is the effective limit (<= 65536). 0, or a negative code (message set). */
int pw_rt_memory_alloc(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages);

struct pw_artifact {
	void *dl;                       /* dlopen handle */
	int memfd;                      /* kept open while loaded: /proc/self/fd/N stays unique */
	const wasm_rt_pw_shim *shim;
	pw_artifact_info info;
	pw_func_info *funcs;            /* one per shim export */
	size_t nfuncs;
	const pw_imports *host;
	pw_extern_entry *externs;       /* one per shim extern import slot (copies) */
};

struct pw_instance {
	pw_artifact *art;
	void *block;                    /* control block followed by the module instance */
	wasm_rt_pw_control *ctl;
	void *mod;                      /* the module instance (generated struct) */
	wasm_rt_memory_t *memory;       /* the module's memory (imported or defined), or NULL */
	void **externs;                 /* storage bound to each extern import slot */
	wasm_rt_memory_t *own_memory;   /* a per-instance imported memory (pw_imports_add_memory) */
	void **export_handles;          /* pw_memory/pw_table/pw_global per shim extern export, lazily */
	uint32_t cap_pages;             /* memory cap in 64 KiB pages when capped */
	bool capped;
	bool instantiated;
	bool failed;                    /* instantiation trapped (pw_instance_opts.keep_failed) */
	void *host_data;
	double deadline;
	int running;                    /* nesting depth of pw_instance_call */
	int exit_code;
	char trap_reason[256];
	/* deadline watchdog list */
	struct pw_instance *wd_next;
	double wd_deadline;
};

/* ---- externs.c ---- */
/* Frees the borrowed export handles pw_instance_export_* gave out. */
void pw_instance_free_export_handles(pw_instance *inst);

/* ---- runtime.c ---- */

/* The calling thread's runtime state. */
typedef struct pw_rt_thread {
	sigjmp_buf *target;             /* innermost unwind target, NULL outside wasm */
	pw_instance *current;           /* instance running on this thread */
	uintptr_t stack_lo, stack_hi;   /* this thread's stack bounds */
	void *altstack;
	size_t altstack_size;
} pw_rt_thread;

/* The thread's state; sets up its alternate signal stack on first use. NULL + error
 * set when that fails. */
pw_rt_thread *pw_rt_thread_get(void);
/* Default call-depth limit for new calls (env PREWARM_MAX_CALL_DEPTH overrides). */
uint32_t pw_rt_max_depth(void);
/* True when the runtime was built for guard-page memories. */
bool pw_rt_guard_pages(void);
/* Number of freed guard-page reservations waiting in the pool for reuse (0 without
 * guard pages). */
size_t pw_rt_memory_pool_size(void);

/* ---- proc.c ---- */

/* Runs argv[0] (PATH lookup) in `cwd` (NULL = current), stdout and stderr merged into
 * `out` (bounded to `max_out` bytes, the rest discarded). *status is the wait status.
 * Returns 0 when the process ran (whatever its exit), PW_ERROR when it could not start. */
int pw_proc_run(char *const argv[], const char *cwd, pw_buf *out, size_t max_out, int *status);
/* Same, killing the child once *cancel (polled every 100 ms; may be NULL) becomes non-zero:
 * then PW_ECANCELED. */
int pw_proc_run_ex(char *const argv[], const char *cwd, pw_buf *out, size_t max_out, int *status,
                   const atomic_int *cancel);
/* "exit status 1" / "killed by signal 6 (SIGABRT)" into buf. */
const char *pw_proc_status_str(int status, char *buf, size_t n);
/* Splits a command line on blanks into a NULL-terminated malloc'd argv (one block). */
char **pw_proc_split(const char *cmdline, size_t *argc);

/* ---- shim_gen.c ---- */

/* wasm2c 1.0.32 name mangling of one name: [A-Za-z0-9_] except 'Z' kept, else "Z%02X". */
int pw_shim_mangle(pw_buf *out, const char *name);
/* True when import i repeats an earlier (module, name) (allowed with the same type). */
bool pw_shim_import_repeats(const pw_wasm_module *m, uint32_t i);
/* Checks what the shim supports (function imports with <= 1 result, ...). */
int pw_shim_check(const pw_wasm_module *m);
/* Writes the shim's C source for module `m` (compiled with wasm2c -n m output). */
int pw_shim_generate(pw_buf *out, const pw_wasm_module *m, const char *engine_hash,
                     const char *wasm_sha256);

/* ---- compile.c ---- */

/* Inserts WASM_RT_LOOP_CHECK after every loop label of wasm2c output, redefines
 * CALL_INDIRECT, and with bit_neg turns `w2c_fN = -(w2c_fN);` (f32/f64 neg) into
 * wasm_rt_pw_negf/negd calls (the quick tier: see compile.c). */
int pw_compile_patch_loops(const uint8_t *c, size_t len, bool bit_neg, pw_buf *out, size_t *nloops);

/* ---- engine.c ---- */
/* pw_engine_check on an already parsed module. */
int pw_engine_check_module(const pw_wasm_module *m, const pw_imports *host);
struct pw_engine {
	pw_engine_tier tier;            /* PW_TIER_OPTIMIZED or PW_TIER_QUICK */
	bool pinned;                    /* from a pinned description: cannot compile */
	char *linker;                   /* quick: the linker command (ld) */
	char *cc_runtime;               /* quick: tcc's libtcc1.a, linked into every artifact */
	char *cc;                       /* compiler command line */
	char *opt_level;
	char *extra_cflags;
	char *wasm2c;
	char *tmp_dir;
	bool keep_tmp;
	char *description;
	char hash[PW_SHA256_HEX_LEN + 1];
	char **cflags;                  /* the full fixed flag list, NULL-terminated */
	size_t ncflags;
	bool probe_cached;              /* the tool answers came from the probe cache */
};

/* ---- probe_cache.c ---- */

/* What the toolchain says about itself (each malloc'd, one line, trimmed). */
typedef struct pw_probe_answer {
	char *translator;               /* wasm2c --version */
	char *compiler;                 /* cc --version, first line */
	char *machine;                  /* cc -dumpmachine (quick tier: linker --version) */
	char *runtime;                  /* quick tier: the path of libtcc1.a (tcc -print-search-dirs),
	                                 * else NULL */
} pw_probe_answer;
void pw_probe_answer_free(pw_probe_answer *a);
/* The cache key for (wasm2c command, cc command, linker command or NULL; the quick tier
 * probes `cc -v` and `linker --version` instead of `cc --version` and `cc -dumpmachine`,
 * keeping the linker's answer in `machine`): sha256 over every named executable's
 * resolved path and stat identity, the command lines and the locale. -1 (no error set)
 * when the first word of a command does not resolve to an executable. */
int pw_probe_cache_key(const char *wasm2c, const char *cc, const char *linker,
                       char key[PW_SHA256_HEX_LEN + 1]);
/* Parses a cache file's text strictly; `key` (NULL = any) must match the one inside.
 * PW_EINVALID when anything is off. *out filled on success only. */
int pw_probe_cache_parse(const char *text, size_t len, const char *key, pw_probe_answer *out);
/* The file text for (key, answer); NULL when a value cannot be stored (control bytes,
 * empty, longer than 1024). */
char *pw_probe_cache_format(const char *key, const pw_probe_answer *a);
/* "<dir>/engine-probe-<key>.txt" into buf; -1 if too long. */
int pw_probe_cache_path(const char *dir, const char *key, char *buf, size_t n);
/* Reads and parses the file for `key` in `dir`; 0 or a negative code (error set). */
int pw_probe_cache_load(const char *dir, const char *key, pw_probe_answer *out);
/* Writes the file atomically (mkdir -p dir 0700); best effort, never fails the caller. */
void pw_probe_cache_store(const char *dir, const char *key, const pw_probe_answer *a);
/* The directory to use: NULL when disabled by env PREWARM_NO_PROBE_CACHE (non-empty,
 * not "0"); else `configured` when set; else $XDG_CACHE_HOME/prewarm, else
 * $HOME/.cache/prewarm (absolute values only), else NULL. malloc'd. */
char *pw_probe_cache_dir(const char *configured);

#endif
