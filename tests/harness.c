/* The test harness (see harness.h). */
#include <signal.h>
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

/* ---- real registries ------------------------------------------------------------------ */

#define REGISTRIES_MAX 16
static int g_reg_pids[2 * REGISTRIES_MAX];
static int g_nreg_pids;

static void env_get(const char *file, const char *key, char *out, size_t n)
{
	FILE *f = fopen(file, "r");
	char line[2048];
	size_t kl = strlen(key);
	out[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		char *p = line;
		if (!strncmp(p, "export ", 7))
			p += 7;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			p[strcspn(p, "\n")] = 0;
			snprintf(out, n, "%s", p + kl + 1);
		}
	}
	if (f)
		fclose(f);
}

static const char *registry_script(void)
{
	static char p[1024];
	snprintf(p, sizeof p, "%s/tests/lib/registry.sh", pw_test_env("PREWARM_SOURCE_DIR", "."));
	return p;
}

static void registries_stop_all(void)
{
	for (int i = 0; i < g_nreg_pids; i++)
		if (g_reg_pids[i] > 0)
			kill(g_reg_pids[i], SIGTERM);
	g_nreg_pids = 0;
}

static void registry_track(int pid)
{
	if (g_nreg_pids == 0)
		atexit(registries_stop_all);
	if (pid > 0 && g_nreg_pids < 2 * REGISTRIES_MAX)
		g_reg_pids[g_nreg_pids++] = pid;
}

static void registry_untrack(int pid)
{
	for (int i = 0; i < g_nreg_pids; i++)
		if (g_reg_pids[i] == pid)
			g_reg_pids[i] = 0;
}

int pw_test_registry_start(pw_test_registry *r, const char *name, const char *flags)
{
	char cmd[2048], env[700], v[32];
	FILE *f;
	if (r->up)
		return 1;
	snprintf(r->dir, sizeof r->dir, "%s/%s", pw_test_tmpdir(), name);
	snprintf(cmd, sizeof cmd, "bash %s start %s %s >/dev/null", registry_script(), r->dir, flags);
	if (system(cmd) != 0)
		return 0;
	r->up = 1;
	snprintf(env, sizeof env, "%s/env", r->dir);
	env_get(env, "PW_REGISTRY_HOST", r->host, sizeof r->host);
	env_get(env, "PW_REGISTRY_URL", r->url, sizeof r->url);
	env_get(env, "PW_REGISTRY_CA", r->ca, sizeof r->ca);
	env_get(env, "PW_REGISTRY_USER", r->user, sizeof r->user);
	env_get(env, "PW_REGISTRY_PASSWORD", r->pass, sizeof r->pass);
	env_get(env, "PW_REGISTRY_DOCKER_CONFIG", r->docker, sizeof r->docker);
	env_get(env, "PW_REGISTRY_SOURCES", r->sources, sizeof r->sources);
	env_get(env, "PW_REGISTRY_STORAGE", r->storage, sizeof r->storage);
	env_get(env, "PW_REGISTRY_TOKEN_LOG", r->token_log, sizeof r->token_log);
	env_get(env, "PW_REGISTRY_PID", v, sizeof v);
	r->pid = atoi(v);
	registry_track(r->pid);
	snprintf(env, sizeof env, "%s/token.pid", r->dir);
	if ((f = fopen(env, "r"))) {
		if (fgets(v, sizeof v, f))
			r->token_pid = atoi(v);
		fclose(f);
		registry_track(r->token_pid);
	}
	return r->host[0] != 0;
}

int pw_test_registry_stop(pw_test_registry *r)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "bash %s stop %s", registry_script(), r->dir);
	int rc = system(cmd);
	registry_untrack(r->pid);
	registry_untrack(r->token_pid);
	r->up = 0;
	return rc == 0 ? 0 : -1;
}
