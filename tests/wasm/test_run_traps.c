/*
 * Every trap kind through the real binary: `prewarm run trap_*.wasm` (fixtures
 * from tests/fixtures/wat/trap_*.wat, each exporting _start) must print
 * "trap: <reason>" on stderr and exit with status 134, and must not die of a
 * signal. Written in C rather than shell because a shell cannot tell exit(134)
 * from a SIGABRT death: here waitpid() does (WIFEXITED vs WIFSIGNALED).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/util.h"

extern char **environ;

/* Runs `prewarm run ARGS...` with stdin from /dev/null, stdout discarded and
 * stderr captured into `err` (bounded). Returns the wait status, -1 on spawn failure. */
static int run_prewarm(const char *const *args, char *err, size_t errsz)
{
	const char *bin = pw_test_env("PREWARM_BIN", NULL);
	char *argv[16];
	int n = 0, p[2], status = -1;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	size_t got = 0;

	if (!bin)
		return -1;
	argv[n++] = (char *)bin;
	argv[n++] = (char *)"run";
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	if (pipe(p) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return -1;
	}
	for (;;) {
		char tmp[4096];
		ssize_t r = read(p[0], tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t k = (size_t)r;
		if (got + k >= errsz)
			k = errsz - 1 - got;
		memcpy(err + got, tmp, k);
		got += k;
	}
	err[got] = 0;
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static void check_trap(const char *fixture, const char *reason)
{
	char err[8192], want[256], name[128];
	snprintf(name, sizeof name, "%s.wasm", fixture);
	const char *args[] = { pw_test_fixture(name), NULL };
	int st = run_prewarm(args, err, sizeof err);
	CHECK_MSG(st != -1, "%s: could not run prewarm (PREWARM_BIN unset?)", fixture);
	CHECK_MSG(!WIFSIGNALED(st), "%s: prewarm died of signal %d; stderr: %s", fixture, WTERMSIG(st), err);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 134, "%s: exit status %d, expected 134; stderr: %s",
	          fixture, WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
	snprintf(want, sizeof want, "trap: %s", reason);
	CHECK_MSG(strstr(err, want) != NULL, "%s: stderr lacks \"%s\": %s", fixture, want, err);
}

static void test_unreachable(void) { check_trap("trap_unreachable", "unreachable"); }
static void test_oob_load(void) { check_trap("trap_oob", "out of bounds memory access"); }
static void test_oob_store_straddling(void) { check_trap("trap_oob_store", "out of bounds memory access"); }
static void test_div_zero(void) { check_trap("trap_div_zero", "integer divide by zero"); }
static void test_int_overflow(void) { check_trap("trap_int_overflow", "integer overflow"); }
static void test_bad_conversion_nan(void) { check_trap("trap_conversion", "invalid conversion to integer"); }
static void test_bad_conversion_range(void) { check_trap("trap_conversion_overflow", "integer overflow"); }
/* the spec test suite's reasons for the three call_indirect failures */
static void test_indirect_null(void) { check_trap("trap_indirect_null", "uninitialized element"); }
static void test_indirect_type_mismatch(void) { check_trap("trap_indirect_type", "indirect call type mismatch"); }
static void test_indirect_out_of_table(void) { check_trap("trap_indirect_oob", "undefined element"); }
static void test_stack_exhaustion(void) { check_trap("trap_stack", "call stack exhausted"); }
static void test_trap_in_start_function(void) { check_trap("trap_in_start", "unreachable"); }

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_unreachable),
		PW_TEST(test_oob_load),
		PW_TEST(test_oob_store_straddling),
		PW_TEST(test_div_zero),
		PW_TEST(test_int_overflow),
		PW_TEST(test_bad_conversion_nan),
		PW_TEST(test_bad_conversion_range),
		PW_TEST(test_indirect_null),
		PW_TEST(test_indirect_type_mismatch),
		PW_TEST(test_indirect_out_of_table),
		PW_TEST(test_stack_exhaustion),
		PW_TEST(test_trap_in_start_function),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
