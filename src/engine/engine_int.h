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

struct pw_artifact {
	void *dl;                       /* dlopen handle */
	int memfd;                      /* kept open while loaded: /proc/self/fd/N stays unique */
	const wasm_rt_pw_shim *shim;
	pw_artifact_info info;
	pw_func_info *funcs;            /* one per shim export */
	size_t nfuncs;
	const pw_imports *host;
};

struct pw_instance {
	pw_artifact *art;
	void *block;                    /* control block followed by the module instance */
	wasm_rt_pw_control *ctl;
	void *mod;                      /* the module instance (generated struct) */
	wasm_rt_memory_t *memory;       /* first memory allocated at instantiation, or NULL */
	uint32_t cap_pages;             /* memory cap in 64 KiB pages when capped */
	bool capped;
	bool instantiated;
	void *host_data;
	double deadline;
	int running;                    /* nesting depth of pw_instance_call */
	int exit_code;
	char trap_reason[256];
	/* deadline watchdog list */
	struct pw_instance *wd_next;
	double wd_deadline;
};

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

/* ---- proc.c ---- */

/* Runs argv[0] (PATH lookup) in `cwd` (NULL = current), stdout and stderr merged into
 * `out` (bounded to `max_out` bytes, the rest discarded). *status is the wait status.
 * Returns 0 when the process ran (whatever its exit), PW_ERROR when it could not start. */
int pw_proc_run(char *const argv[], const char *cwd, pw_buf *out, size_t max_out, int *status);
/* "exit status 1" / "killed by signal 6 (Aborted)" into buf. */
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

/* Inserts WASM_RT_LOOP_CHECK after every loop label of wasm2c output. */
int pw_compile_patch_loops(const uint8_t *c, size_t len, pw_buf *out, size_t *nloops);

/* ---- engine.c ---- */
/* pw_engine_check on an already parsed module. */
int pw_engine_check_module(const pw_wasm_module *m, const pw_imports *host);
struct pw_engine {
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
};

#endif
