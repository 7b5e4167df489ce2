/*
 * `prewarm engine`: probes the toolchain and prints the engine description and
 * its compatibility hash (the first half of every cache key). `--hash` prints
 * the 64-hex hash alone, for scripts. The options (also env PREWARM_CC,
 * PREWARM_OPT, PREWARM_CFLAGS, PREWARM_WASM2C) select another toolchain and so
 * another hash.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "prewarm/engine.h"

static void engine_usage(FILE *f)
{
	fprintf(f, "usage: prewarm engine [--hash] [--cc CC] [--opt -O1] [--cflags FLAGS] [--wasm2c PATH]\n\n"
	           "Prints the engine description (translator, compiler identity and target, flags,\n"
	           "runtime header, ABI versions) and its hash; artifacts are shared between hosts\n"
	           "with equal hashes. --hash prints only the hash.\n");
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
	pw_engine *e = NULL;
	if (pw_engine_new(&e, &eo) != 0) {
		fprintf(stderr, "prewarm engine: %s\n", pw_error_last());
		return 1;
	}
	if (hash_only)
		printf("%s\n", pw_engine_hash(e));
	else
		printf("%shash: %s\n", pw_engine_description(e), pw_engine_hash(e));
	pw_engine_free(e);
	return 0;
}
