/* The test harness (see harness.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/util.h"

static int g_failed, g_skipped;
static char *g_tmpdirs[256];
static int g_ntmp;

void pw_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "    FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	g_failed = 1;
}

void pw_test_skip(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "    SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	g_skipped = 1;
}

int pw_test_stopped(void) { return g_failed || g_skipped; }

const char *pw_test_env(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

const char *pw_test_fixture(const char *name)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", pw_test_env("PREWARM_FIXTURES", "fixtures"), name);
	return buf;
}

const char *pw_test_tmpdir(void)
{
	char *d = NULL;
	if (pw_mkdtemp(&d, "prewarm-test") < 0) {
		fprintf(stderr, "mkdtemp: %s\n", pw_error_last());
		exit(2);
	}
	if (g_ntmp < 256)
		g_tmpdirs[g_ntmp++] = d;
	return d;
}

static void cleanup(void)
{
	int keep = getenv("PREWARM_KEEP_TMP") && strcmp(getenv("PREWARM_KEEP_TMP"), "1") == 0;
	for (int i = 0; i < g_ntmp; i++) {
		if (!keep)
			pw_rmtree(g_tmpdirs[i]);
		free(g_tmpdirs[i]);
	}
}

int pw_test_main(const pw_test *tests, size_t n, int argc, char **argv)
{
	int failed = 0, passed = 0, skipped = 0;
	atexit(cleanup);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		g_failed = g_skipped = 0;
		fprintf(stderr, "  %s\n", tests[i].name);
		tests[i].fn();
		if (g_failed) {
			failed++;
			fprintf(stderr, "  %s FAILED\n", tests[i].name);
		} else if (g_skipped) {
			skipped++;
		} else {
			passed++;
		}
	}
	fprintf(stderr, "%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	if (failed)
		return 1;
	if (passed == 0 && skipped > 0)
		return 77;
	return 0;
}
