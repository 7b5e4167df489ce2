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
	unsigned closed;           /* bit n set: the guest closed fd n (0..2); later calls get EBADF */
} pw_wasi_ctx;

/* WASI errno values (the same in wasi_snapshot_preview1 and wasi_unstable). */
enum {
	PW_WASI_ESUCCESS = 0, PW_WASI_E2BIG = 1, PW_WASI_EACCES = 2, PW_WASI_EAGAIN = 6,
	PW_WASI_EBADF = 8, PW_WASI_EEXIST = 20, PW_WASI_EFAULT = 21, PW_WASI_EFBIG = 22,
	PW_WASI_EINTR = 27, PW_WASI_EINVAL = 28, PW_WASI_EIO = 29, PW_WASI_EISDIR = 31,
	PW_WASI_ENOENT = 44, PW_WASI_ENOMEM = 48, PW_WASI_ENOSPC = 51, PW_WASI_ENOSYS = 52,
	PW_WASI_ENOTDIR = 54, PW_WASI_ENOTSUP = 58, PW_WASI_EOVERFLOW = 61, PW_WASI_EPERM = 63,
	PW_WASI_EPIPE = 64, PW_WASI_ESPIPE = 70, PW_WASI_ENOTCAPABLE = 76,
};

/* Fills defaults: no args/env, stdio = fds 0/1/2. */
void pw_wasi_ctx_init(pw_wasi_ctx *ctx);

/* Adds the WASI functions under both module names to `im`: every preview1 function
 * with its exact signature, so any WASI program passes the import check; the ones
 * outside the subset answer ENOSYS (or EBADF for an fd that is not 0/1/2). */
int pw_wasi_add_imports(pw_imports *im);

/* The Sightglass benchmark harness imports `bench.start` and `bench.end` (both
 * () -> ()): served as no-ops so the Sightglass corpus runs. Used by `prewarm run`. */
int pw_wasi_add_bench_imports(pw_imports *im);

/* Runs a WASI command: calls `_start`. Returns 0 with *exit_code set (0 when _start returns,
 * the proc_exit code otherwise), or PW_ETRAP / PW_ETIMEOUT / PW_ENOTFOUND (no _start). */
int pw_wasi_run_start(pw_instance *inst, int *exit_code);

#ifdef __cplusplus
}
#endif
#endif
