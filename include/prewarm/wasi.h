/*
 * A WASI preview1 subset: args, environ, clocks, random, stdio, proc_exit,
 * sched_yield, poll_oneoff, and READ-ONLY preopened directories (path_open,
 * fd_read/fd_pread/fd_seek/fd_tell/fd_close, fd_readdir, fd_filestat_get,
 * path_filestat_get, path_readlink, fd_prestat_*). By default a context has no
 * preopens (the policy hosts never add any); `prewarm run --dir` adds them with
 * pw_wasi_preopen(). Everything that would change a file system answers EROFS;
 * the rest answers ENOSYS (or EBADF for fds). Served under both
 * `wasi_snapshot_preview1` and `wasi_unstable`. Every guest pointer is
 * bounds-checked.
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
	struct pw_wasi_fs *fs;     /* preopens and files the guest opened (fds >= 3); NULL = none.
	                            * Owned: created by pw_wasi_preopen, freed by pw_wasi_ctx_release */
} pw_wasi_ctx;

/* WASI errno values (the same in wasi_snapshot_preview1 and wasi_unstable). */
enum {
	PW_WASI_ESUCCESS = 0, PW_WASI_E2BIG = 1, PW_WASI_EACCES = 2, PW_WASI_EAGAIN = 6,
	PW_WASI_EBADF = 8, PW_WASI_EEXIST = 20, PW_WASI_EFAULT = 21, PW_WASI_EFBIG = 22,
	PW_WASI_EINTR = 27, PW_WASI_EINVAL = 28, PW_WASI_EIO = 29, PW_WASI_EISDIR = 31,
	PW_WASI_ELOOP = 32, PW_WASI_EMFILE = 33, PW_WASI_ENAMETOOLONG = 37, PW_WASI_ENFILE = 41,
	PW_WASI_ENODEV = 43, PW_WASI_ENOENT = 44, PW_WASI_ENOMEM = 48, PW_WASI_ENOSPC = 51,
	PW_WASI_ENOSYS = 52, PW_WASI_ENOTDIR = 54, PW_WASI_ENOTEMPTY = 55, PW_WASI_ENOTSUP = 58,
	PW_WASI_ENXIO = 60, PW_WASI_EOVERFLOW = 61, PW_WASI_EPERM = 63, PW_WASI_EPIPE = 64,
	PW_WASI_EROFS = 69, PW_WASI_ESPIPE = 70, PW_WASI_EXDEV = 75, PW_WASI_ENOTCAPABLE = 76,
};

/* Guest fds: 0..2 stdio, then preopens in the order added, then files the guest opens
 * (lowest free number first). At most this many fds >= 3 are open at once (EMFILE). */
#define PW_WASI_MAX_FDS 128

/* Fills defaults: no args/env, stdio = fds 0/1/2, no preopens. */
void pw_wasi_ctx_init(pw_wasi_ctx *ctx);

/* Gives the guest READ-ONLY access to the host directory `host_dir` as the preopen
 * `guest_path` (what fd_prestat_dir_name answers, e.g. "." or "/data"); it becomes the
 * next guest fd (3, 4, ...). The directory is opened now (O_DIRECTORY), so a bad one
 * fails here: PW_EIO (open failed: errno and path in the message), PW_EINVALID (empty
 * or over-long guest path, too many fds), PW_ENOMEM. Paths the guest opens stay
 * beneath it (no `..`, absolute path or symlink leads out: docs/wasi.md). Call before
 * the instance runs; pw_wasi_ctx_release() closes everything. */
int pw_wasi_preopen(pw_wasi_ctx *ctx, const char *host_dir, const char *guest_path);

/* Closes the preopens and every file the guest left open, and frees ctx->fs (the
 * context then has no preopens). A no-op on NULL or a context without any. */
void pw_wasi_ctx_release(pw_wasi_ctx *ctx);

/* Adds the WASI functions under both module names to `im`: every preview1 function
 * with its exact signature, so any WASI program passes the import check; the ones
 * outside the subset answer ENOSYS (or EBADF for an fd that is not open). */
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
