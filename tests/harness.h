/*
 * A small test harness: each test file lists its tests in a table and calls
 * pw_test_main(). A failed CHECK stops the current test, the run goes on, and
 * the process exits 1 if any test failed, 77 (ctest's "skipped") if every test
 * skipped, else 0. `./test NAME` runs one test.
 */
#ifndef PW_TEST_HARNESS_H
#define PW_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pw_test {
	const char *name;
	void (*fn)(void);
} pw_test;

#define PW_TEST(fn) { #fn, fn }

int pw_test_main(const pw_test *tests, size_t n, int argc, char **argv);
void pw_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Marks the current test skipped, with the reason printed. Call then return. */
void pw_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 when the current test has already failed or skipped. */
int pw_test_stopped(void);
/* Environment variable or a default. */
const char *pw_test_env(const char *name, const char *dflt);
/* PREWARM_FIXTURES/NAME, in a static buffer (valid until the next call). */
const char *pw_test_fixture(const char *name);
/* A fresh empty directory under $TMPDIR, removed at exit unless PREWARM_KEEP_TMP=1. */
const char *pw_test_tmpdir(void);

/* ---- real registries for tests (tests/lib/registry.sh) -------------------------------- */

/* One docker-registry instance started by tests/lib/registry.sh, with the settings it wrote
 * to DIR/env. Each started instance is stopped at exit (by pid: the harness may have removed
 * its directory already), or earlier by pw_test_registry_stop. */
typedef struct pw_test_registry {
	char dir[512];
	int pid, token_pid;
	char host[64], url[128], ca[600], user[64], pass[128], docker[600], sources[600],
	     storage[600], token_log[600];
	int up;
} pw_test_registry;

/* Starts R (unless up) in a fresh directory NAME under the test's temp dir, with the
 * script's FLAGS ("", "--tls --auth", "--silly"...). 1 when up, 0 when it could not start. */
int pw_test_registry_start(pw_test_registry *r, const char *name, const char *flags);
/* Stops R (registry.sh stop); 0 on success. */
int pw_test_registry_stop(pw_test_registry *r);
/* Skips the current test unless R is up. */
#define PW_TEST_NEED_REGISTRY(r, name, flags) do { if (!pw_test_registry_start(r, name, flags)) { \
	pw_test_skip("docker-registry could not be started (tests/lib/registry.sh)"); return; } } while (0)

#define CHECK(c) do { if (!(c)) { pw_test_fail(__FILE__, __LINE__, "CHECK(%s)", #c); return; } } while (0)
#define CHECK_MSG(c, ...) do { if (!(c)) { pw_test_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define CHECK_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { pw_test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, #b, _b); return; } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) { pw_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b ? _b : "(null)"); return; } } while (0)
/* For calls returning 0 on success and setting the per-thread error otherwise. */
#define CHECK_OK(call) do { int _rc = (call); if (_rc != 0) { \
	pw_test_fail(__FILE__, __LINE__, "%s returned %d: %s", #call, _rc, pw_error_last()); return; } } while (0)

#endif
