/*
 * `prewarm run [OPTIONS] MODULE.wasm|ARTIFACT [ARGS...]`: runs a WASI command
 * (its `_start`) natively, like `wasmtime run`. A .wasm is first compiled by the
 * engine (wasm2c + cc in a temp dir), an artifact (ELF, as written by `prewarm
 * compile`) is loaded directly; the two are told apart by their magic bytes.
 * The program gets ARGS as argv[1..] (argv[0] is the module's file name), the
 * --env variables only, prewarm's own stdin/stdout/stderr, and no file system
 * unless --dir HOSTDIR[::GUESTPATH] preopens directories, read-only (the
 * confinement rules are in src/engine/wasi_fs.c and docs/wasi.md). Host functions:
 * WASI preview1 (src/engine/wasi.c) and the Sightglass harness's bench.start /
 * bench.end as no-ops, so the Sightglass corpus runs.
 *
 * Exit status: the program's own (its proc_exit code, or 0 when _start returns);
 * 134 when the wasm code traps ("trap: <reason>" on stderr, never a signal
 * death); 124 when --timeout passes; 1 when prewarm itself fails (unreadable or
 * invalid module, refused feature, compile error), 2 on bad usage.
 * Option parsing lives in parse_run_args() only, so later options (the cache)
 * go in one place.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"
#include "prewarm/wasi.h"

#define RUN_EXIT_TRAP 134
#define RUN_EXIT_TIMEOUT 124
#define RUN_MAX_FILE ((size_t)1 << 30)

int pw_cli_engine_opt(pw_engine_opts *o, int argc, char **argv, int *i);

typedef struct run_args {
	pw_engine_opts eng;
	char **env;                /* "K=V", malloc'd array of borrowed/malloc'd strings */
	int nenv;
	char **env_owned;          /* strings built for "--env K" (inherited) */
	int nenv_owned;
	uint64_t max_memory;       /* 0 = the module's own limit */
	double timeout;            /* seconds, 0 = none */
	bool verbose;
	char **dir_host;           /* --dir: host directories and their guest names (owned) */
	char **dir_guest;
	int ndir;
	const char *module;
	int prog_argc;             /* ARGS after the module */
	char **prog_argv;
	int use_cache;             /* a cache option was given: compile through the cache */
	pw_cache_cli_opts cache;
} run_args;

static void run_usage(FILE *f)
{
	fprintf(f,
	        "usage: prewarm run [OPTIONS] MODULE.wasm|ARTIFACT [ARGS...]\n\n"
	        "Runs a WASI command module (_start) as native code. A .wasm is compiled first\n"
	        "(wasm2c + cc, in a temporary directory); an artifact from 'prewarm compile' is\n"
	        "loaded directly. ARGS become argv[1..]; argv[0] is the module's file name.\n\n"
	        "options:\n"
	        "  --env K=V          set an environment variable for the program (repeatable);\n"
	        "  --env K            pass K from prewarm's own environment (if set)\n"
	        "  --max-memory SIZE  cap the program's linear memory (e.g. 64MiB)\n"
	        "  --timeout SECONDS  stop the program after this long (exit 124)\n"
	        "  --dir HOSTDIR[::GUESTPATH]\n"
	        "                     give the program READ-ONLY access to HOSTDIR, seen as\n"
	        "                     GUESTPATH (default: HOSTDIR itself; '--dir .' or\n"
	        "                     '--dir DIR::.' for programs that open relative paths);\n"
	        "                     repeatable. Paths cannot leave it (no '..', absolute\n"
	        "                     path or symlink leads out); opening for writing, creating\n"
	        "                     or deleting answers EROFS. Default: no file system.\n"
	        "  --cc CC --opt -O1 --cflags FLAGS --wasm2c PATH --tmp-dir DIR --keep-tmp\n"
	        "                     compiler settings when MODULE is a .wasm\n"
	        "  -v, --verbose      report the compile (or cache hit) on stderr\n"
	        "  --                 end of options (options go BEFORE the module: what follows\n"
	        "                     the module is the program's argv)\n\n"
	        "With a cache option (--cache-dir DIR, ...) a .wasm is taken from the artifact\n"
	        "cache when a tier holds it, else compiled once and stored.\n"
	        "%s\n"
	        "WASI: args, environ, clocks, random, stdio (fd 0/1/2), poll_oneoff, proc_exit,\n"
	        "sched_yield, and read-only files beneath --dir directories (path_open, fd_read,\n"
	        "fd_pread, fd_seek, fd_readdir, fd_filestat_get, path_filestat_get, ...); other\n"
	        "calls answer ENOSYS/EBADF.\n"
	        "The Sightglass imports bench.start/bench.end are served as no-ops.\n\n"
	        "exit status: the program's; 134 on a trap ('trap: <reason>' on stderr); 124 on\n"
	        "--timeout; 1 when the module cannot be loaded or compiled; 2 on bad usage.\n",
	        pw_cache_cli_help);
}

static void run_args_free(run_args *a)
{
	for (int i = 0; i < a->nenv_owned; i++)
		free(a->env_owned[i]);
	free(a->env_owned);
	free(a->env);
	for (int i = 0; i < a->ndir; i++) {
		free(a->dir_host[i]);
		free(a->dir_guest[i]);
	}
	free(a->dir_guest);
	free(a->dir_host);
	free(a->prog_argv);
	pw_cache_cli_free(&a->cache);
	memset(a, 0, sizeof *a);
}

static int add_env(run_args *a, const char *kv)
{
	char **n = realloc(a->env, sizeof *n * (size_t)(a->nenv + 1));
	if (!n)
		return -1;
	a->env = n;
	if (strchr(kv, '=')) {
		if (kv[0] == '=') {
			fprintf(stderr, "prewarm run: --env '%s': empty variable name\n", kv);
			return -1;
		}
		a->env[a->nenv++] = (char *)kv;
		return 0;
	}
	const char *v = getenv(kv);
	if (!v)
		return 0;   /* --env K with K unset: nothing to pass */
	char **o = realloc(a->env_owned, sizeof *o * (size_t)(a->nenv_owned + 1));
	char *s = malloc(strlen(kv) + strlen(v) + 2);
	if (!o || !s) {
		free(s);
		if (o)
			a->env_owned = o;
		return -1;
	}
	a->env_owned = o;
	sprintf(s, "%s=%s", kv, v);
	a->env_owned[a->nenv_owned++] = s;
	a->env[a->nenv++] = s;
	return 0;
}

/* --dir HOSTDIR[::GUESTPATH]: split at the first "::". */
static int add_dir(run_args *a, const char *spec)
{
	const char *sep = strstr(spec, "::");
	size_t hl = sep ? (size_t)(sep - spec) : strlen(spec);
	const char *guest = sep ? sep + 2 : spec;
	char **h, **g;
	if (hl == 0 || !*guest) {
		fprintf(stderr, "prewarm run: --dir '%s': expected HOSTDIR or HOSTDIR::GUESTPATH\n", spec);
		return -1;
	}
	if (!(h = realloc(a->dir_host, sizeof *h * (size_t)(a->ndir + 1))))
		return -1;
	a->dir_host = h;
	if (!(g = realloc(a->dir_guest, sizeof *g * (size_t)(a->ndir + 1))))
		return -1;
	a->dir_guest = g;
	h[a->ndir] = strndup(spec, hl);
	g[a->ndir] = strdup(guest);
	a->ndir++;   /* counted even when a copy failed: run_args_free frees both */
	if (!h[a->ndir - 1] || !g[a->ndir - 1]) {
		fprintf(stderr, "prewarm run: out of memory\n");
		return -1;
	}
	return 0;
}

/* A flag's value: "--flag V" or "--flag=V". NULL (usage printed) when missing. */
static const char *flag_value(const char *flag, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	size_t l = strlen(flag);
	if (a[l] == '=')
		return a + l + 1;
	if (*i + 1 >= argc) {
		fprintf(stderr, "prewarm run: %s needs a value\n", flag);
		return NULL;
	}
	return argv[++*i];
}

static bool is_flag(const char *a, const char *flag)
{
	size_t l = strlen(flag);
	return !strncmp(a, flag, l) && (a[l] == 0 || a[l] == '=');
}

/* Returns -1 to go on and run, else the exit code (0 for --help, 2 for usage errors). */
static int parse_run_args(run_args *a, int argc, char **argv)
{
	int i;
	memset(a, 0, sizeof *a);
	pw_cache_cli_init(&a->cache);
	for (i = 1; i < argc; i++) {
		const char *s = argv[i], *v;
		int r;
		if (s[0] != '-' || !s[1])
			break;   /* the module: everything after it belongs to the program */
		if (!strcmp(s, "--")) {
			i++;
			break;
		}
		r = pw_cli_engine_opt(&a->eng, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		r = pw_cache_cli_parse(&a->cache, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0) {
			a->use_cache = 1;
			continue;
		}
		if (is_flag(s, "--env")) {
			if (!(v = flag_value("--env", argc, argv, &i)) || add_env(a, v) < 0)
				return 2;
		} else if (is_flag(s, "--dir")) {
			if (!(v = flag_value("--dir", argc, argv, &i)) || add_dir(a, v) < 0)
				return 2;
		} else if (is_flag(s, "--max-memory")) {
			if (!(v = flag_value("--max-memory", argc, argv, &i)))
				return 2;
			if (pw_parse_size(v, &a->max_memory) != 0 || a->max_memory == 0) {
				fprintf(stderr, "prewarm run: --max-memory '%s': expected a size such as 64MiB\n", v);
				return 2;
			}
		} else if (is_flag(s, "--timeout")) {
			if (!(v = flag_value("--timeout", argc, argv, &i)))
				return 2;
			if (pw_parse_duration(v, &a->timeout) != 0 || !(a->timeout > 0)) {
				fprintf(stderr, "prewarm run: --timeout '%s': expected seconds such as 5 or 1.5s\n", v);
				return 2;
			}
		} else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
			a->verbose = true;
		} else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			run_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "prewarm run: unknown option '%s'\n", s);
			run_usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "prewarm run: no module given\n");
		run_usage(stderr);
		return 2;
	}
	a->module = argv[i++];
	/* argv[0] = the module's file name, then ARGS */
	a->prog_argc = 1 + (argc - i);
	a->prog_argv = calloc((size_t)a->prog_argc + 1, sizeof *a->prog_argv);
	if (!a->prog_argv) {
		fprintf(stderr, "prewarm run: out of memory\n");
		return 1;
	}
	const char *base = strrchr(a->module, '/');
	a->prog_argv[0] = (char *)(base ? base + 1 : a->module);
	for (int k = 1; k < a->prog_argc; k++)
		a->prog_argv[k] = argv[i + k - 1];
	return -1;
}

/* The host functions `prewarm run` offers: WASI under both names, plus bench.*. */
static int run_imports(pw_imports **out)
{
	pw_imports *im = NULL;
	int rc = pw_imports_new(&im);
	if (!rc)
		rc = pw_wasi_add_imports(im);
	if (!rc)
		rc = pw_wasi_add_bench_imports(im);
	if (rc) {
		pw_imports_free(im);
		return rc;
	}
	*out = im;
	return 0;
}

/* Loads MODULE: compiles a .wasm, loads an artifact as is. */
static int load_module(run_args *a, const pw_imports *host, pw_artifact **out)
{
	static const uint8_t wasm_magic[4] = { 0x00, 'a', 's', 'm' };
	static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };
	pw_buf file = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_engine *e = NULL;
	pw_compile_stats st;
	pw_cache *cache = NULL;
	int rc = pw_file_read(a->module, RUN_MAX_FILE, &file);
	if (rc)
		return rc;
	if (file.len >= 4 && !memcmp(file.data, elf_magic, 4)) {
		rc = pw_artifact_load(out, file.data, file.len, NULL, host);
	} else if (file.len >= 4 && !memcmp(file.data, wasm_magic, 4)) {
		rc = pw_engine_new(&e, &a->eng);
		if (!rc && a->use_cache) {
			pw_cache_result res;
			rc = pw_cache_cli_open(&a->cache, &cache);
			if (!rc)
				rc = pw_cache_get_or_compile(cache, e, file.data, file.len, host, NULL, &art, &res);
			if (!rc && a->verbose) {
				char t[32];
				fprintf(stderr, "prewarm run: %s: %s in %s\n", a->module,
				        res.tier >= 0 ? "cache hit" : "compiled (stored in the cache)",
				        pw_fmt_duration(res.seconds, t, sizeof t));
			}
		} else if (!rc) {
			rc = pw_engine_compile(e, file.data, file.len, host, &art, &st);
		}
		if (!rc && a->verbose && !a->use_cache) {
			char t[32], b[32];
			fprintf(stderr, "prewarm run: compiled %s in %s (%s artifact)\n", a->module,
			        pw_fmt_duration(st.total_seconds, t, sizeof t), pw_fmt_bytes(st.artifact_bytes, b, sizeof b));
		}
		if (!rc)
			rc = pw_artifact_load(out, art.data, art.len, NULL, host);
	} else {
		rc = pw_error_set(PW_EINVALID, "not a WebAssembly module nor a Prewarm artifact (bad magic)");
	}
	pw_cache_free(cache);
	pw_engine_free(e);
	pw_buf_free(&art);
	pw_buf_free(&file);
	return rc;
}

typedef struct run_host {
	pw_wasi_ctx *wasi;   /* first member: how the WASI functions find their context */
} run_host;

int pw_cmd_run(int argc, char **argv)
{
	run_args a;
	pw_imports *host = NULL;
	pw_artifact *art = NULL;
	pw_instance *inst = NULL;
	pw_wasi_ctx ctx;
	run_host hd = { &ctx };
	int r = parse_run_args(&a, argc, argv), code = 1, rc;

	if (r >= 0) {
		run_args_free(&a);
		return r;
	}
	/* a closed pipe is EPIPE for the program, not a signal for prewarm */
	signal(SIGPIPE, SIG_IGN);

	/* the preopens first: a bad --dir fails before a long compile */
	pw_wasi_ctx_init(&ctx);
	for (int k = 0; k < a.ndir; k++) {
		if (pw_wasi_preopen(&ctx, a.dir_host[k], a.dir_guest[k]) != 0) {
			fprintf(stderr, "prewarm run: --dir: %s\n", pw_error_last());
			goto out;
		}
	}
	rc = run_imports(&host);
	if (!rc)
		rc = load_module(&a, host, &art);
	if (rc) {
		fprintf(stderr, "prewarm run: %s: %s\n", a.module, pw_error_last());
		goto out;
	}
	ctx.argc = a.prog_argc;
	ctx.argv = a.prog_argv;
	ctx.envc = a.nenv;
	ctx.envp = a.env;
	pw_instance_opts io = { .max_memory_bytes = a.max_memory, .host_data = &hd };
	rc = pw_instance_new(&inst, art, &io);
	if (rc == 0) {
		if (a.timeout > 0)
			pw_instance_set_deadline(inst, pw_now() + a.timeout);
		rc = pw_wasi_run_start(inst, &code);
	}
	switch (rc) {
	case 0:
		break;
	case PW_ETRAP:
		if (inst) {
			fprintf(stderr, "trap: %s\n", pw_instance_trap_reason(inst));
		} else {   /* trapped in the module's start function, while instantiating */
			const char *m = strstr(pw_error_last(), "trap: ");
			fprintf(stderr, "trap: %s (in the start function)\n", m ? m + 6 : pw_error_last());
		}
		code = RUN_EXIT_TRAP;
		break;
	case PW_ETIMEOUT:
		fprintf(stderr, "prewarm run: %s: timeout: stopped after %g s (--timeout)\n", a.module, a.timeout);
		code = RUN_EXIT_TIMEOUT;
		break;
	case PW_ENOTFOUND:
		fprintf(stderr, "prewarm run: %s: no exported _start function: not a WASI command module\n", a.module);
		code = 1;
		break;
	default:
		fprintf(stderr, "prewarm run: %s: %s\n", a.module, pw_error_last());
		code = 1;
		break;
	}
out:
	pw_instance_free(inst);
	pw_wasi_ctx_release(&ctx);
	pw_artifact_free(art);
	pw_imports_free(host);
	run_args_free(&a);
	return code;
}
