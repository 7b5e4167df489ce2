/*
 * Tests of the shared cache options (src/cli/cache_opts.c): every flag in both forms, usage
 * errors, the default directory's precedence, and the failure policy of pw_cache_cli_open
 * (a directory that cannot be created, an unreadable signing key: warnings and a usable
 * cache, never an error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cache_opts.h"
#include "harness.h"

/* Parses a NULL-terminated argv the way a command does; returns the first non-zero
 * pw_cache_cli_parse result that is negative, or the count of non-cache words. */
static int parse(pw_cache_cli_opts *o, char **argv)
{
	int argc = 0, other = 0;
	while (argv[argc])
		argc++;
	for (int i = 0; i < argc; i++) {
		int r = pw_cache_cli_parse(o, argc, argv, &i);
		if (r < 0)
			return r;
		if (r == 0)
			other++;
	}
	return other;
}

static void test_flags(void)
{
	pw_cache_cli_opts o;
	char *argv[] = { "--cache-dir", "/x/y", "module.wasm", "--cache-max-size=512MiB", "--cache-signing-key",
	                 "k", "--cache-registry=localhost:5000/cache", "--cache-registry-credentials", "c.json",
	                 "--cache-registry-ca=ca.pem", "--cache-registry-insecure", "--cache-registry-read-only",
	                 "--no-cache", "-v", NULL };

	pw_cache_cli_init(&o);
	CHECK_INT(parse(&o, argv), 2);
	CHECK_STR(o.dir, "/x/y");
	CHECK_INT(o.max_size, 512ull << 20);
	CHECK_STR(o.signing_key_file, "k");
	CHECK_STR(o.registry, "localhost:5000/cache");
	CHECK_STR(o.registry_credentials, "c.json");
	CHECK_STR(o.registry_ca, "ca.pem");
	CHECK(o.registry_insecure && o.registry_read_only && o.no_cache);
	CHECK_STR(pw_cache_cli_dir(&o), "/x/y");
	pw_cache_cli_free(&o);
}

static void test_usage_errors(void)
{
	pw_cache_cli_opts o;
	char *a1[] = { "--cache-dir", NULL };
	char *a2[] = { "--cache-max-size", "lots", NULL };
	char *a3[] = { "--cache-max-size=0", NULL };
	char *a4[] = { "--cache-bogus", NULL };
	char *a5[] = { "--cache-dir=", NULL };

	pw_cache_cli_init(&o);
	CHECK_INT(parse(&o, a1), -1);
	CHECK_INT(parse(&o, a2), -1);
	CHECK_INT(parse(&o, a3), -1);
	CHECK_INT(parse(&o, a4), -1);
	CHECK_INT(parse(&o, a5), -1);
	pw_cache_cli_free(&o);
}

static void test_default_dir(void)
{
	pw_cache_cli_opts o;

	unsetenv("PREWARM_CACHE_DIR");
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("HOME", "/home/u", 1);
	pw_cache_cli_init(&o);
	CHECK_STR(pw_cache_cli_dir(&o), "/xdg/prewarm");
	pw_cache_cli_free(&o);
	unsetenv("XDG_CACHE_HOME");
	pw_cache_cli_init(&o);
	CHECK_STR(pw_cache_cli_dir(&o), "/home/u/.cache/prewarm");
	pw_cache_cli_free(&o);
	setenv("PREWARM_CACHE_DIR", "/pw", 1);
	pw_cache_cli_init(&o);
	CHECK_STR(pw_cache_cli_dir(&o), "/pw");
	pw_cache_cli_free(&o);
	unsetenv("PREWARM_CACHE_DIR");
}

static void test_open_failure_policy(void)
{
	pw_cache_cli_opts o;
	pw_cache *c = NULL;
	pw_cache_stats st;
	char file[4096], dir[4200];

	snprintf(file, sizeof file, "%s/file", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(file, "x", 1, 0644));
	/* a directory that cannot be created: no local tier, no error */
	snprintf(dir, sizeof dir, "%s/cache", file);
	pw_cache_cli_init(&o);
	o.dir = dir;
	CHECK_OK(pw_cache_cli_open(&o, &c));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.ntiers, 0);
	pw_cache_free(c);
	/* a good directory with an unreadable signing key: no tier at all (nothing unverified) */
	o.dir = pw_test_tmpdir();
	o.signing_key_file = "/nonexistent/key";
	CHECK_OK(pw_cache_cli_open(&o, &c));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.ntiers, 0);
	CHECK(!pw_cache_signing(c));
	pw_cache_free(c);
	/* a good directory: one local tier */
	o.signing_key_file = NULL;
	CHECK_OK(pw_cache_cli_open(&o, &c));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.ntiers, 1);
	CHECK_STR(st.tier[0].name, "local");
	pw_cache_free(c);
	/* --no-cache: none */
	o.no_cache = true;
	CHECK_OK(pw_cache_cli_open(&o, &c));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.ntiers, 0);
	pw_cache_free(c);
	pw_cache_cli_free(&o);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_flags),
		PW_TEST(test_usage_errors),
		PW_TEST(test_default_dir),
		PW_TEST(test_open_failure_policy),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
