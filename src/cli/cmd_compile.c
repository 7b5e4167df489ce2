/*
 * `prewarm compile MODULE.wasm -o ARTIFACT`: checks, translates, compiles and
 * links one module into a native artifact, written atomically (a refusal or a
 * failed compile leaves no file). Imports are checked against a host: by default
 * the one the Policy Server offers (waPC, WASI preview1, host.call); `--host run`
 * the one of `prewarm run` (WASI preview1, bench.start/end); `--host none` or
 * --no-import-check: no import check.
 * With a cache option (--cache-dir DIR, --cache-registry ..., see cache_opts.h) the
 * artifact comes from the cache when a tier holds it, else it is compiled and put into
 * every tier; the command says which ("cache hit (local)" / "compiled"), and when it waited
 * for another process compiling the same module into a shared tier ("after waiting 3 s for
 * a peer (HOST pid N)"); -o is then optional.
 * Option parsing lives in parse_compile_args(); the work in compile_run().
 */
#include <stdio.h>
#include <string.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/engine.h"
#include "prewarm/policy.h"
#include "prewarm/wasi.h"

int pw_cli_engine_opt(pw_engine_opts *o, int argc, char **argv, int *i);

typedef struct compile_args {
	pw_engine_opts eng;
	const char *input;
	const char *output;
	const char *host;   /* "policy" (default), "run", "none" */
	int quiet;
	int use_cache;      /* a cache option was given */
	pw_cache_cli_opts cache;
} compile_args;

static void compile_usage(FILE *f)
{
	fprintf(f, "usage: prewarm compile MODULE.wasm -o ARTIFACT [--tier quick|optimized] [--cc CC]\n"
	           "                       [--opt -O1] [--cflags FLAGS] [--ld LD] [--wasm2c PATH] [--tmp-dir DIR]\n"
	           "                       [--keep-tmp] [--host policy|run|none] [--no-import-check] [-q]\n"
	           "       prewarm compile MODULE.wasm --cache-dir DIR [-o ARTIFACT] [cache options]\n\n"
	           "Compiles a WebAssembly module into a native artifact (a shared object with an\n"
	           "embedded description). Refuses (exit 1, no file written) invalid modules,\n"
	           "component-model binaries, SIMD and other unsupported features, and imports the\n"
	           "host does not provide: --host policy (default: waPC, WASI, host.call, as in\n"
	           "`prewarm serve`), run (WASI and bench.start/end, as in `prewarm run`), none\n"
	           "(same as --no-import-check).\n\n"
	           "--tier: optimized (default; env PREWARM_TIER) is wasm2c + gcc -O1, quick is\n"
	           "wasm2c + tcc + ld (a fraction of a second, slower code); each tier has its own\n"
	           "engine hash, so their cache entries never mix (`prewarm engine`).\n\n"
	           "With a cache option the artifact is taken from the cache when a tier holds it\n"
	           "(verified before use), else compiled and stored in every tier; the command\n"
	           "prints which.\n%s", pw_cache_cli_help);
}

/* Returns -1 to continue, else an exit code. */
static int parse_compile_args(compile_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof *a);
	a->host = "policy";
	pw_cache_cli_init(&a->cache);
	for (int i = 1; i < argc; i++) {
		int r = pw_cli_engine_opt(&a->eng, argc, argv, &i);
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
		const char *s = argv[i];
		if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "prewarm compile: %s needs a file name\n", s);
				return 2;
			}
			a->output = argv[++i];
		} else if (!strncmp(s, "--output=", 9)) {
			a->output = s + 9;
		} else if (!strcmp(s, "--no-import-check")) {
			a->host = "none";
		} else if (!strcmp(s, "--host") || !strncmp(s, "--host=", 7)) {
			const char *v = s[6] == '=' ? s + 7 : i + 1 < argc ? argv[++i] : NULL;
			if (!v || (strcmp(v, "policy") && strcmp(v, "run") && strcmp(v, "none"))) {
				fprintf(stderr, "prewarm compile: --host takes policy, run or none\n");
				return 2;
			}
			a->host = v;
		} else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
			a->quiet = 1;
		} else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			compile_usage(stdout);
			return 0;
		} else if (s[0] == '-' && s[1]) {
			fprintf(stderr, "prewarm compile: unknown option '%s'\n", s);
			compile_usage(stderr);
			return 2;
		} else if (!a->input) {
			a->input = s;
		} else {
			fprintf(stderr, "prewarm compile: more than one module given ('%s', '%s')\n", a->input, s);
			return 2;
		}
	}
	if (!a->input || (!a->output && !a->use_cache)) {
		fprintf(stderr, "prewarm compile: %s\n", !a->input ? "no module given" : "no output given (-o ARTIFACT or --cache-dir DIR)");
		compile_usage(stderr);
		return 2;
	}
	return -1;
}

/* The import table for --host: *owned is set when the caller must free it. */
static int host_imports(const char *which, const pw_imports **out, pw_imports **owned)
{
	*out = NULL;
	*owned = NULL;
	if (!strcmp(which, "none"))
		return 0;
	if (!strcmp(which, "policy")) {
		*out = pw_policy_host_imports();
		return *out ? 0 : (pw_error_last_code() ? pw_error_last_code() : PW_ERROR);
	}
	int rc = pw_imports_new(owned);
	if (!rc)
		rc = pw_wasi_add_imports(*owned);
	if (!rc)
		rc = pw_wasi_add_bench_imports(*owned);
	*out = *owned;
	return rc;
}

static int compile_run(compile_args *a)
{
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_engine *e = NULL;
	pw_compile_stats st;
	const pw_imports *host = NULL;
	pw_imports *owned = NULL;
	pw_cache *cache = NULL;
	pw_cache_result res = { .tier = -1 };
	int rc = pw_file_read(a->input, 0, &wasm);
	if (!rc)
		rc = pw_engine_new(&e, &a->eng);
	if (!rc)
		rc = host_imports(a->host, &host, &owned);
	if (!rc && a->use_cache) {
		rc = pw_cache_cli_open(&a->cache, &cache);
		if (!rc)
			rc = pw_cache_get_or_compile(cache, e, wasm.data, wasm.len, host, NULL, &art, &res);
	} else if (!rc) {
		rc = pw_engine_compile(e, wasm.data, wasm.len, host, &art, &st);
	}
	if (!rc && a->output)
		rc = pw_file_write_atomic(a->output, art.data, art.len, 0644);
	if (rc) {
		fprintf(stderr, "prewarm compile: %s: %s\n", a->input, pw_error_last());
	} else if (a->use_cache) {
		char t1[32];
		const char *tier = pw_engine_tier_name(pw_engine_get_tier(e));
		char peer[192] = "", t2[32];
		if (res.peer_wait_seconds > 0 || res.took_over)
			snprintf(peer, sizeof peer, " after %s %s for a peer (%s)%s",
			         res.tier >= 0 ? "waiting" : "having waited", pw_fmt_duration(res.peer_wait_seconds, t2, sizeof t2),
			         res.peer[0] ? res.peer : "?",
			         res.tier >= 0 ? "" : res.took_over ? ", whose claim expired" : ", longer than a compile takes");
		if (res.tier >= 0)
			printf("cache hit (%s) in %s%s, %s tier\n", res.tier_name ? res.tier_name : "?",
			       pw_fmt_duration(res.seconds, t1, sizeof t1), peer, tier);
		else
			printf("compiled in %s (stored in the cache)%s, %s tier\n",
			       pw_fmt_duration(res.compile_seconds, t1, sizeof t1), peer, tier);
	} else if (!a->quiet) {
		char t1[32], t2[32], b1[32], b2[32];
		fprintf(stderr, "prewarm compile: %s -> %s (%s tier, %s of C, translate %s, cc %s, %s artifact, "
		        "engine %.12s)\n", a->input, a->output, pw_engine_tier_name(pw_engine_get_tier(e)),
		        pw_fmt_bytes(st.c_bytes, b1, sizeof b1),
		        pw_fmt_duration(st.translate_seconds, t1, sizeof t1), pw_fmt_duration(st.cc_seconds, t2, sizeof t2),
		        pw_fmt_bytes(st.artifact_bytes, b2, sizeof b2), pw_engine_hash(e));
	}
	pw_cache_free(cache);
	pw_engine_free(e);
	pw_imports_free(owned);
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	return rc ? 1 : 0;
}

int pw_cmd_compile(int argc, char **argv)
{
	compile_args a;
	int r = parse_compile_args(&a, argc, argv);
	if (r < 0)
		r = compile_run(&a);
	pw_cache_cli_free(&a.cache);
	return r;
}
