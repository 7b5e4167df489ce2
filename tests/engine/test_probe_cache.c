/*
 * The engine's probe cache (src/engine/probe_cache.c) with real tools: the C
 * compiler is a shell wrapper around gcc that logs every run, so each test can
 * see whether pw_engine_new spawned the toolchain or answered from the cache
 * file. Covers: hit with the same hash, invalidation when the wrapper is
 * touched or changed (a changed --version changes the hash), corrupt, foreign
 * and oversized cache files (ignored, then replaced by a valid one), the
 * opt-outs, the default directory, an unwritable directory, and the strict
 * parser on hand-made texts.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "engine/engine_int.h"

/* Writes the wrapper `cc` in dir: logs to dir/log, then runs gcc (or prints
 * `version` for --version when not NULL). */
static int write_wrapper(const char *dir, const char *version, char *cc, size_t n)
{
	snprintf(cc, n, "%s/cc-wrapper", dir);
	pw_buf s = PW_BUF_INIT;
	pw_buf_printf(&s, "#!/bin/sh\necho \"$*\" >> '%s/log'\n", dir);
	if (version)
		pw_buf_printf(&s, "if [ \"$1\" = --version ]; then echo '%s'; exit 0; fi\n", version);
	pw_buf_puts(&s, "exec gcc \"$@\"\n");
	int rc = pw_file_write_atomic(cc, s.data, s.len, 0755);
	pw_buf_free(&s);
	return rc;
}

/* Number of wrapper runs so far. */
static int runs(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/log", dir);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Number of engine-probe-*.txt files in dir, and the path of the last one. */
static int cache_files(const char *dir, char *last, size_t n)
{
	char cmd[8800];
	snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null | grep -c '^engine-probe-[0-9a-f]\\{64\\}\\.txt$'", dir);
	FILE *p = popen(cmd, "r");
	int k = 0;
	if (!p || fscanf(p, "%d", &k) != 1)
		k = -1;
	if (p)
		pclose(p);
	if (last) {
		snprintf(cmd, sizeof cmd, "ls -d '%s'/engine-probe-*.txt 2>/dev/null | tail -1", dir);
		p = popen(cmd, "r");
		last[0] = 0;
		if (p && fgets(last, (int)n, p))
			last[strcspn(last, "\n")] = 0;
		if (p)
			pclose(p);
	}
	return k;
}

static int new_engine(pw_engine **e, const char *cc, const char *dir)
{
	pw_engine_opts o = { .cc = cc, .probe_cache_dir = dir };
	return pw_engine_new(e, &o);
}

static void test_hit_and_invalidation(void)
{
	const char *t = pw_test_tmpdir();
	char cc[4096], cdir[4200], file[4400];
	snprintf(cdir, sizeof cdir, "%s/probe", t);
	CHECK_OK(write_wrapper(t, NULL, cc, sizeof cc));
	pw_engine *a = NULL, *b = NULL, *c = NULL, *d = NULL;

	CHECK_OK(new_engine(&a, cc, cdir));
	CHECK(!pw_engine_probe_cached(a));
	CHECK_INT(runs(t), 2);              /* --version, -dumpmachine */
	CHECK_INT(cache_files(cdir, file, sizeof file), 1);

	CHECK_OK(new_engine(&b, cc, cdir));
	CHECK(pw_engine_probe_cached(b));
	CHECK_INT(runs(t), 2);              /* no spawn */
	CHECK_STR(pw_engine_hash(b), pw_engine_hash(a));
	CHECK_STR(pw_engine_description(b), pw_engine_description(a));
	pw_engine_free(b);
	b = NULL;

	/* touch the wrapper (a different mtime): a real probe again, same answer */
	struct timespec ts[2] = { { .tv_sec = 1000000000, .tv_nsec = 0 }, { .tv_sec = 1000000000, .tv_nsec = 0 } };
	CHECK(utimensat(AT_FDCWD, cc, ts, 0) == 0);
	CHECK_OK(new_engine(&b, cc, cdir));
	CHECK(!pw_engine_probe_cached(b));
	CHECK_INT(runs(t), 4);
	CHECK_STR(pw_engine_hash(b), pw_engine_hash(a));
	CHECK_OK(new_engine(&c, cc, cdir));
	CHECK(pw_engine_probe_cached(c));
	CHECK_INT(runs(t), 4);
	pw_engine_free(c);
	c = NULL;

	/* a different compiler behind the same path: probed, and the hash changes */
	CHECK_OK(write_wrapper(t, "fakecc (Prewarm test) 9.9.9", cc, sizeof cc));
	CHECK_OK(new_engine(&c, cc, cdir));
	CHECK(!pw_engine_probe_cached(c));
	CHECK(strstr(pw_engine_description(c), "compiler: fakecc (Prewarm test) 9.9.9\n") != NULL);
	CHECK(strcmp(pw_engine_hash(c), pw_engine_hash(a)) != 0);
	CHECK_OK(new_engine(&d, cc, cdir));
	CHECK(pw_engine_probe_cached(d));
	CHECK_STR(pw_engine_hash(d), pw_engine_hash(c));

	/* a different translator command is another key */
	pw_engine_free(d);
	d = NULL;
	int before = runs(t);
	pw_engine_opts o = { .cc = cc, .probe_cache_dir = cdir, .wasm2c = "wasm2c" };
	CHECK_OK(pw_engine_new(&d, &o));
	CHECK(pw_engine_probe_cached(d));   /* "wasm2c" is the default: same key */
	CHECK_INT(runs(t), before);
	pw_engine_free(a);
	pw_engine_free(b);
	pw_engine_free(c);
	pw_engine_free(d);
}

static void test_bad_files_fall_back(void)
{
	const char *t = pw_test_tmpdir();
	char cc[4096], cdir[4200], file[4400];
	snprintf(cdir, sizeof cdir, "%s/probe", t);
	CHECK_OK(write_wrapper(t, NULL, cc, sizeof cc));
	pw_engine *ref = NULL;
	CHECK_OK(new_engine(&ref, cc, cdir));
	CHECK_INT(cache_files(cdir, file, sizeof file), 1);
	pw_buf good = PW_BUF_INIT;
	CHECK_OK(pw_file_read(file, 0, &good));

	char big[10000];
	memset(big, 'x', sizeof big);
	const char *bad[] = {
		"",
		"garbage\n",
		"prewarm-engine-probe 2\n",
		"prewarm-engine-probe 1\nkey 0000000000000000000000000000000000000000000000000000000000000000\n"
		"translator-version 1.0.32\ncompiler-version fake 1\ncompiler-machine x86_64-linux-gnu\n",
		big,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t len = i == 4 ? sizeof big : strlen(bad[i]);
		CHECK_OK(pw_file_write_atomic(file, bad[i], len, 0644));
		int before = runs(t);
		pw_engine *e = NULL;
		CHECK_OK(new_engine(&e, cc, cdir));
		bool cached = pw_engine_probe_cached(e);
		bool same = !strcmp(pw_engine_hash(e), pw_engine_hash(ref));
		pw_engine_free(e);
		CHECK_MSG(!cached && runs(t) == before + 2, "bad file %zu was used", i);
		CHECK_MSG(same, "bad file %zu changed the hash", i);
		/* the real probe replaced it with the good text */
		pw_buf now = PW_BUF_INIT;
		CHECK_OK(pw_file_read(file, 0, &now));
		bool eq = now.len == good.len && !memcmp(now.data, good.data, good.len);
		pw_buf_free(&now);
		CHECK_MSG(eq, "bad file %zu was not replaced", i);
	}
	/* a cache file of the right name but a different key inside (copied from elsewhere) */
	char *text = strndup((char *)good.data, good.len);
	char *k = strstr(text, "\nkey ");
	CHECK(k != NULL);
	k[5] = k[5] == 'a' ? 'b' : 'a';
	CHECK_OK(pw_file_write_atomic(file, text, strlen(text), 0644));
	free(text);
	pw_engine *e = NULL;
	CHECK_OK(new_engine(&e, cc, cdir));
	CHECK(!pw_engine_probe_cached(e));
	pw_engine_free(e);
	pw_engine_free(ref);
	pw_buf_free(&good);
}

static void test_opt_outs_and_dirs(void)
{
	const char *t = pw_test_tmpdir();
	char cc[4096], cdir[4200], xdg[4200];
	snprintf(cdir, sizeof cdir, "%s/probe", t);
	snprintf(xdg, sizeof xdg, "%s/xdg", t);
	CHECK_OK(write_wrapper(t, NULL, cc, sizeof cc));
	pw_engine *e = NULL;

	pw_engine_opts o = { .cc = cc, .probe_cache_dir = cdir, .no_probe_cache = true };
	CHECK_OK(pw_engine_new(&e, &o));
	pw_engine_free(e);
	CHECK_OK(pw_engine_new(&e, &o));
	CHECK(!pw_engine_probe_cached(e));
	pw_engine_free(e);
	CHECK_INT(runs(t), 4);
	CHECK(!pw_path_exists(cdir));

	setenv("PREWARM_NO_PROBE_CACHE", "1", 1);
	pw_engine_opts o2 = { .cc = cc, .probe_cache_dir = cdir };
	CHECK_OK(pw_engine_new(&e, &o2));
	pw_engine_free(e);
	unsetenv("PREWARM_NO_PROBE_CACHE");
	CHECK_INT(runs(t), 6);
	CHECK(!pw_path_exists(cdir));

	/* default directory: $XDG_CACHE_HOME/prewarm */
	char *old = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
	setenv("XDG_CACHE_HOME", xdg, 1);
	pw_engine_opts o3 = { .cc = cc };
	CHECK_OK(pw_engine_new(&e, &o3));
	pw_engine_free(e);
	CHECK_OK(pw_engine_new(&e, &o3));
	bool cached = pw_engine_probe_cached(e);
	pw_engine_free(e);
	char xp[4300];
	snprintf(xp, sizeof xp, "%s/prewarm", xdg);
	int nfiles = cache_files(xp, NULL, 0);
	if (old)
		setenv("XDG_CACHE_HOME", old, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	free(old);
	CHECK(cached);
	CHECK_INT(nfiles, 1);
	CHECK_INT(runs(t), 8);

	/* a directory that cannot be created: the engine still works, probing each time */
	char file[4300], under[4400];
	snprintf(file, sizeof file, "%s/plainfile", t);
	CHECK_OK(pw_file_write_atomic(file, "x", 1, 0644));
	snprintf(under, sizeof under, "%s/sub", file);
	pw_engine_opts o4 = { .cc = cc, .probe_cache_dir = under };
	CHECK_OK(pw_engine_new(&e, &o4));
	pw_engine_free(e);
	CHECK_OK(pw_engine_new(&e, &o4));
	CHECK(!pw_engine_probe_cached(e));
	pw_engine_free(e);
	CHECK_INT(runs(t), 12);

	/* a compiler that does not exist is still the probe's clear error, nothing cached */
	pw_engine_opts o5 = { .cc = "/nonexistent/prewarm-cc", .probe_cache_dir = cdir };
	CHECK_INT(pw_engine_new(&e, &o5), PW_ERROR);
	CHECK(strstr(pw_error_last(), "/nonexistent/prewarm-cc") != NULL);
	CHECK(!pw_path_exists(cdir));
}

static void test_parser(void)
{
	const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	pw_probe_answer a = { "1.0.32", "gcc (Debian 12.2.0-14) 12.2.0", "x86_64-linux-gnu", NULL }, b;
	char *text = pw_probe_cache_format(key, &a);
	CHECK(text != NULL);
	CHECK_OK(pw_probe_cache_parse(text, strlen(text), key, &b));
	CHECK_STR(b.translator, a.translator);
	CHECK_STR(b.compiler, a.compiler);
	CHECK_STR(b.machine, a.machine);
	pw_probe_answer_free(&b);
	CHECK_OK(pw_probe_cache_parse(text, strlen(text), NULL, &b));
	pw_probe_answer_free(&b);
	/* every truncation fails */
	for (size_t n = 0; n < strlen(text); n++) {
		CHECK_MSG(pw_probe_cache_parse(text, n, key, &b) == PW_EINVALID, "truncated at %zu parsed", n);
		CHECK(b.translator == NULL && b.compiler == NULL && b.machine == NULL);
	}
	/* a control byte, an empty value, a trailing line, a NUL, another key */
	const char *mut[] = { "\t", "", "\n", "\0" };
	char *p = strstr(text, "12.2.0\n");
	CHECK(p != NULL);
	for (size_t i = 0; i < sizeof mut / sizeof mut[0]; i++) {
		pw_buf m = PW_BUF_INIT;
		size_t ml = i == 3 ? 1 : strlen(mut[i]);
		if (i == 1) {  /* empty compiler-machine value */
			char *q = strstr(text, "compiler-machine ");
			pw_buf_append(&m, text, (size_t)(q - text) + strlen("compiler-machine "));
			pw_buf_puts(&m, "\n");
		} else if (i == 2) {
			pw_buf_puts(&m, text);
			pw_buf_puts(&m, "extra line\n");
		} else {
			pw_buf_append(&m, text, (size_t)(p - text));
			pw_buf_append(&m, mut[i], ml);
			pw_buf_puts(&m, p);
		}
		CHECK_MSG(pw_probe_cache_parse((char *)m.data, m.len, key, &b) == PW_EINVALID, "mutation %zu parsed", i);
		pw_buf_free(&m);
	}
	char other[65];
	memcpy(other, key, 65);
	other[0] = '1';
	CHECK_INT(pw_probe_cache_parse(text, strlen(text), other, &b), PW_EINVALID);
	free(text);
	/* values that cannot be stored are not */
	pw_probe_answer c = { "1.0.32", "bad\x01value", "x", NULL };
	CHECK(pw_probe_cache_format(key, &c) == NULL);
	CHECK(pw_probe_cache_format("nothex", &a) == NULL);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_hit_and_invalidation),
		PW_TEST(test_bad_files_fall_back),
		PW_TEST(test_opt_outs_and_dirs),
		PW_TEST(test_parser),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
