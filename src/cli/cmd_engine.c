/*
 * `prewarm engine`: probes the toolchains and prints, for each tier (optimized,
 * then quick), the engine description and its compatibility hash (the first
 * half of every cache key). `--tier T` prints one tier; `--hash` prints the
 * 64-hex hash alone (of --tier, default optimized), for scripts. The options
 * (also env PREWARM_CC, PREWARM_OPT, PREWARM_CFLAGS, PREWARM_QUICK_CC,
 * PREWARM_QUICK_CFLAGS, PREWARM_LD, PREWARM_WASM2C) select another toolchain
 * and so another hash. The output of `--tier T` is what a pinned engine reads
 * (serve --optimized-engine FILE) on a host without that toolchain.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "prewarm/engine.h"

static void engine_usage(FILE *f)
{
	fprintf(f, "usage: prewarm engine [--tier quick|optimized] [--hash] [--cc CC] [--opt -O1]\n"
	           "                      [--cflags FLAGS] [--ld LD] [--wasm2c PATH]\n\n"
	           "Prints the engine description (tier, translator, compiler identity and target,\n"
	           "flags, runtime header, ABI versions) and its hash, for both tiers:\n"
	           "  optimized  wasm2c + gcc -O1 (env PREWARM_CC, PREWARM_OPT, PREWARM_CFLAGS):\n"
	           "             tens of seconds per MB of code, fast code\n"
	           "  quick      wasm2c + tcc + ld (env PREWARM_QUICK_CC, PREWARM_QUICK_CFLAGS,\n"
	           "             PREWARM_LD): a fraction of a second, slower code\n"
	           "Artifacts are shared between hosts with equal hashes. --tier prints one tier\n"
	           "(the text `serve --optimized-engine FILE` takes on a host without that compiler);\n"
	           "--hash prints only the hash (of --tier, default optimized). A tier whose tools\n"
	           "are missing is reported as unavailable (exit 1 only if --tier names it).\n");
}

/* Parses the toolchain options shared by `engine` and `compile`: returns 1 when argv[*i]
 * (and maybe its value) was one, 0 when not, -1 on a usage error (printed). */
int pw_cli_engine_opt(pw_engine_opts *o, int argc, char **argv, int *i);
int pw_cli_engine_opt(pw_engine_opts *o, int argc, char **argv, int *i)
{
	static const struct {
		const char *flag;
		size_t off;
	} opts[] = {
		{ "--cc", offsetof(pw_engine_opts, cc) },
		{ "--opt", offsetof(pw_engine_opts, opt_level) },
		{ "--cflags", offsetof(pw_engine_opts, extra_cflags) },
		{ "--wasm2c", offsetof(pw_engine_opts, wasm2c) },
		{ "--ld", offsetof(pw_engine_opts, linker) },
		{ "--tmp-dir", offsetof(pw_engine_opts, tmp_dir) },
	};
	const char *a = argv[*i];
	for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
		size_t l = strlen(opts[k].flag);
		if (strncmp(a, opts[k].flag, l) != 0 || (a[l] != 0 && a[l] != '='))
			continue;
		const char *v = a[l] == '=' ? a + l + 1 : NULL;
		if (!v) {
			if (*i + 1 >= argc) {
				fprintf(stderr, "prewarm: %s needs a value\n", opts[k].flag);
				return -1;
			}
			v = argv[++*i];
		}
		*(const char **)((char *)o + opts[k].off) = v;
		return 1;
	}
	if (!strcmp(a, "--keep-tmp")) {
		o->keep_tmp = true;
		return 1;
	}
	if (!strncmp(a, "--tier", 6) && (a[6] == 0 || a[6] == '=')) {
		const char *v = a[6] == '=' ? a + 7 : *i + 1 < argc ? argv[++*i] : NULL;
		if (!v || pw_engine_tier_parse(v, &o->tier) < 0) {
			fprintf(stderr, "prewarm: --tier needs quick or optimized\n");
			return -1;
		}
		return 1;
	}
	return 0;
}

int pw_cmd_engine(int argc, char **argv)
{
	pw_engine_opts eo = { 0 };
	int hash_only = 0;
	for (int i = 1; i < argc; i++) {
		int r = pw_cli_engine_opt(&eo, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (!strcmp(argv[i], "--hash")) {
			hash_only = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			engine_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "prewarm engine: unknown argument '%s'\n", argv[i]);
			engine_usage(stderr);
			return 2;
		}
	}
	bool one = eo.tier != PW_TIER_DEFAULT || hash_only;
	int status = 0;
	for (pw_engine_tier t = PW_TIER_OPTIMIZED; t <= PW_TIER_QUICK; t++) {
		if (one && t != (eo.tier == PW_TIER_DEFAULT ? PW_TIER_OPTIMIZED : eo.tier))
			continue;
		pw_engine_opts to = eo;
		pw_engine *e = NULL;
		to.tier = t;
		if (!one && t == PW_TIER_QUICK) {   /* the flags name the optimized toolchain */
			to.cc = to.opt_level = to.extra_cflags = NULL;
		}
		if (pw_engine_new(&e, &to) != 0) {
			if (one) {
				fprintf(stderr, "prewarm engine: %s tier: %s\n", pw_engine_tier_name(t), pw_error_last());
				return 1;
			}
			printf("%stier: %s\nunavailable: %s\n", t == PW_TIER_QUICK ? "\n" : "", pw_engine_tier_name(t),
			       pw_error_last());
			continue;
		}
		if (hash_only)
			printf("%s\n", pw_engine_hash(e));
		else
			printf("%s%shash: %s\n", !one && t == PW_TIER_QUICK ? "\n" : "", pw_engine_description(e),
			       pw_engine_hash(e));
		pw_engine_free(e);
	}
	return status;
}
