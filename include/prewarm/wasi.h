/*
 * A WASI preview1 subset for programs without a file system: args, environ,
 * clocks, random, fd_read/fd_write/fd_seek/fd_close/fd_fdstat_get/fd_prestat_get,
 * proc_exit, sched_yield, poll_oneoff (clock only). Everything else answers
 * ENOSYS (or EBADF for fds). Served under both `wasi_snapshot_preview1` and
 * `wasi_unstable`. Every guest pointer is bounds-checked.
 *
 * The WASI state of an instance is a pw_wasi_ctx reached from the instance's
 * host_data: host_data must point to a struct whose first member is a
 * `pw_wasi_ctx *` (so waPC and policy hosts can embed WASI).
 */
#ifndef PREWARM_WASI_H
#define PREWARM_WASI_H

#include <stddef.h>
#include <stdint.h>

#include "prewarm/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the guest's stdio goes. Defaults: fds 0/1/2 of the process. With callbacks set,
 * fd 0 reads from `stdin_data` (memory) and fds 1/2 go to the write callback. */
typedef struct pw_wasi_ctx {
	int argc;
	char **argv;               /* borrowed */
	int envc;
	char **envp;               /* "K=V", borrowed */
	/* stdin from memory when stdin_data != NULL, else from fd stdin_fd */
	const uint8_t *stdin_data;
	size_t stdin_len, stdin_pos;
	int stdin_fd, stdout_fd, stderr_fd;   /* -1 = closed */
	/* if set, called instead of writing to stdout_fd/stderr_fd */
	void (*write_cb)(void *cb_data, int fd, const uint8_t *data, size_t len);
	void *cb_data;
	int exit_code;             /* set by proc_exit */
} pw_wasi_ctx;

/* Fills defaults: no args/env, stdio = fds 0/1/2. */
void pw_wasi_ctx_init(pw_wasi_ctx *ctx);

/* Adds the WASI functions under both module names to `im`. */
int pw_wasi_add_imports(pw_imports *im);

/* Runs a WASI command: calls `_start`. Returns 0 with *exit_code set (0 when _start returns,
 * the proc_exit code otherwise), or PW_ETRAP / PW_ETIMEOUT / PW_ENOTFOUND (no _start). */
int pw_wasi_run_start(pw_instance *inst, int *exit_code);

#ifdef __cplusplus
}
#endif
#endif
