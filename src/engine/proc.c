/*
 * Running the toolchain (wasm2c, the C compiler) as child processes: one
 * posix_spawn per tool, in the compile's own directory, with stdout and stderr
 * merged through a close-on-exec pipe into a bounded buffer so a tool's
 * diagnostics can go into the error message. Safe to call from several
 * threads at once (no chdir in the parent, no inherited pipe ends). A caller
 * may pass a cancel flag: the tool then runs in its own process group, its output
 * is read with a 100 ms poll, and once the flag is set the whole group is killed
 * (gcc's cc1 with the driver) and the tool reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine_int.h"

extern char **environ;

int pw_proc_run(char *const argv[], const char *cwd, pw_buf *out, size_t max_out, int *status)
{
	return pw_proc_run_ex(argv, cwd, out, max_out, status, NULL);
}

int pw_proc_run_ex(char *const argv[], const char *cwd, pw_buf *out, size_t max_out, int *status,
                   const atomic_int *cancel)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return pw_error_set_errno(PW_ERROR, "pipe2 for %s", argv[0]);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	/* a cancelable tool gets its own process group: a kill reaches its children (gcc's cc1) */
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	if (cancel) {
		posix_spawnattr_setpgroup(&at, 0);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	}
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		errno = rc;
		return pw_error_set_errno(PW_ERROR, "cannot run '%s'", argv[0]);
	}
	char buf[4096];
	bool killed = false;
	for (;;) {
		if (cancel) {
			struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
			int pr = poll(&pfd, 1, 100);
			if (*cancel && !killed) {
				kill(-pid, SIGKILL);
				killed = true;
			}
			if (pr == 0 || (pr < 0 && errno == EINTR))
				continue;
		}
		ssize_t n = read(fds[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && out->len < max_out) {
			size_t take = (size_t)n;
			if (take > max_out - out->len)
				take = max_out - out->len;
			pw_buf_append(out, buf, take);
		}
	}
	close(fds[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return pw_error_set_errno(PW_ERROR, "waitpid for %s", argv[0]);
	}
	*status = st;
	if (killed)
		return pw_error_set(PW_ECANCELED, "%s: canceled", argv[0]);
	return 0;
}

const char *pw_proc_status_str(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		/* sigabbrev_np, not strsignal: strsignal is not thread-safe (compiles run in parallel) */
		snprintf(buf, n, "killed by signal %d (SIG%s)", WTERMSIG(st),
		         sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
	else
		snprintf(buf, n, "wait status %d", st);
	return buf;
}

char **pw_proc_split(const char *s, size_t *argc)
{
	size_t len = strlen(s), words = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t'))
			words++;
	char **v = malloc((words + 1) * sizeof *v + len + 1);
	if (!v)
		return NULL;
	char *txt = (char *)(v + words + 1);
	memcpy(txt, s, len + 1);
	size_t k = 0;
	for (char *p = txt; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		v[k++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	v[k] = NULL;
	if (argc)
		*argc = k;
	return v;
}
