/*
 * WASI preview1 (include/prewarm/wasi.h): the context, stdio, clocks and the
 * import table. Read-only preopened directories and the files beneath them
 * (guest fds >= 3) are in wasi_fs.c; this file hands them every call on such an
 * fd and every path_* call.
 *
 * Policies and `prewarm run` programs written in Rust, TinyGo and C (wasi-libc)
 * need args, environ, clocks, random, stdio, proc_exit, sched_yield and
 * poll_oneoff (sleeps). Those have real semantics here: iovecs, the spec's
 * errno values, fdstat for 0/1/2. Without preopens (the default, and always
 * for policies) fd_prestat_get answers EBADF, so libc sees an empty file
 * system. Every other preview1 function is registered with its exact
 * signature and answers ENOSYS (EBADF for an fd that is not open), because
 * the import check refuses a module whose imports the host lacks and real
 * programs import path_open and friends even when unused.
 * Both `wasi_snapshot_preview1` and `wasi_unstable` are served; they differ in
 * fd_seek's whence values, the filestat layout and poll_oneoff's subscription
 * layout. Every guest pointer and length is checked against the instance's
 * memory before use: a bad one is EFAULT, never a host crash. Blocking waits
 * (poll_oneoff sleeps, reads of an idle stdin) wait in slices and honour the
 * instance's interrupt flag, so a deadline also stops a program inside them.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "engine/wasi_int.h"

#define P1 "wasi_snapshot_preview1"
#define P0 "wasi_unstable"

/* rights (the same in both versions) */
#define R_FD_READ (1ull << 1)
#define R_FD_SEEK (1ull << 2)
#define R_FD_FDSTAT_SET_FLAGS (1ull << 3)
#define R_FD_TELL (1ull << 5)
#define R_FD_WRITE (1ull << 6)
#define R_FD_FILESTAT_GET (1ull << 21)
#define R_POLL_FD_READWRITE (1ull << 27)

/* ---- context and guest memory --------------------------------------------------------- */

void pw_wasi_ctx_init(pw_wasi_ctx *ctx)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->stdin_fd = 0;
	ctx->stdout_fd = 1;
	ctx->stderr_fd = 2;
}

static _Thread_local pw_wasi_ctx t_default_ctx;
static _Thread_local int t_default_ready;

static pw_wasi_ctx *ctx_of(pw_instance *inst)
{
	pw_wasi_ctx **hd = pw_instance_host_data(inst);
	if (hd && *hd)
		return *hd;
	if (!t_default_ready) {
		pw_wasi_ctx_init(&t_default_ctx);
		t_default_ready = 1;
	}
	return &t_default_ctx;
}

pw_wasi_ctx *pw__wasi_ctx(pw_instance *inst)
{
	return ctx_of(inst);
}

/* Host pointer to guest [ptr, ptr+len), or NULL when any byte lies outside memory. */
static uint8_t *gmem(pw_instance *inst, u64 ptr, u64 len)
{
	uint64_t size;
	uint8_t *base;
	if (!pw_instance_mem_ok(inst, ptr, len))
		return NULL;
	base = pw_instance_memory(inst, &size);
	return base ? base + ptr : NULL;
}

uint8_t *pw__wasi_gmem(pw_instance *inst, u64 ptr, u64 len)
{
	return gmem(inst, ptr, len);
}

static u32 errno_to_wasi(int e)
{
	switch (e) {
	case ENOENT: return PW_WASI_ENOENT;
	case ENOTDIR: return PW_WASI_ENOTDIR;
	case ELOOP: return PW_WASI_ELOOP;
	case ENAMETOOLONG: return PW_WASI_ENAMETOOLONG;
	case EMFILE: return PW_WASI_EMFILE;
	case ENFILE: return PW_WASI_ENFILE;
	case EEXIST: return PW_WASI_EEXIST;
	case EROFS: return PW_WASI_EROFS;
	case EXDEV: return PW_WASI_EXDEV;
	case ENOTEMPTY: return PW_WASI_ENOTEMPTY;
	case ENXIO: return PW_WASI_ENXIO;
	case ENODEV: return PW_WASI_ENODEV;
	case EFAULT: return PW_WASI_EFAULT;
	case EBADF: return PW_WASI_EBADF;
	case EAGAIN: return PW_WASI_EAGAIN;
	case EINTR: return PW_WASI_EINTR;
	case EINVAL: return PW_WASI_EINVAL;
	case EPIPE: return PW_WASI_EPIPE;
	case ENOSPC: return PW_WASI_ENOSPC;
	case EFBIG: return PW_WASI_EFBIG;
	case ESPIPE: return PW_WASI_ESPIPE;
	case EISDIR: return PW_WASI_EISDIR;
	case EOVERFLOW: return PW_WASI_EOVERFLOW;
	case EACCES: return PW_WASI_EACCES;
	case EPERM: return PW_WASI_EPERM;
	case ENOMEM: return PW_WASI_ENOMEM;
	default: return PW_WASI_EIO;
	}
}

u32 pw__wasi_errno(int e)
{
	return errno_to_wasi(e);
}

/* Blocking host waits go in slices of this many ns, checking the interrupt flag between. */
#define WAIT_SLICE_NS 50000000ull

/* From inside a host call: unwinds to pw_instance_call with PW_ETIMEOUT when the
 * instance's deadline passed or pw_instance_interrupt() was called. */
static void check_interrupt(pw_instance *inst)
{
	if (inst->ctl && inst->ctl->interrupt)
		wasm_rt_pw_interrupted();
}

/* Waits until `fd` is ready for `events`, interruptibly. */
static void wait_fd(pw_instance *inst, int fd, short events)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		struct timespec ts = { 0, (long)WAIT_SLICE_NS };
		int r = ppoll(&p, 1, &ts, NULL);
		if (r > 0 || (r < 0 && errno != EINTR))
			return;   /* ready, or let the read itself report the error */
		check_interrupt(inst);
	}
}

void pw__wasi_wait_fd(pw_instance *inst, int fd, short events)
{
	wait_fd(inst, fd, events);
}

/* ---- stdio descriptors ---------------------------------------------------------------- */

typedef struct stdio_fd {
	int host;          /* host fd, or -1 */
	bool mem_in;       /* fd 0 served from ctx->stdin_data */
	bool cb_out;       /* fd 1/2 go to ctx->write_cb */
} stdio_fd;

/* Resolves guest fd 0/1/2; false (EBADF) for anything else or a closed one. */
static bool stdio_get(pw_wasi_ctx *c, u32 fd, stdio_fd *out)
{
	if (fd > 2 || (c->closed & (1u << fd)))
		return false;
	out->host = -1;
	out->mem_in = out->cb_out = false;
	if (fd == 0) {
		if (c->stdin_data) {
			out->mem_in = true;
			return true;
		}
		out->host = c->stdin_fd;
	} else {
		if (c->write_cb) {
			out->cb_out = true;
			return true;
		}
		out->host = fd == 1 ? c->stdout_fd : c->stderr_fd;
	}
	return out->host >= 0;
}

uint8_t pw__wasi_filetype(mode_t mode)
{
	if (S_ISREG(mode))
		return PW_FT_REG;
	if (S_ISCHR(mode))
		return PW_FT_CHAR;
	if (S_ISBLK(mode))
		return PW_FT_BLOCK;
	if (S_ISDIR(mode))
		return PW_FT_DIR;
	if (S_ISSOCK(mode))
		return PW_FT_SOCK_STREAM;
	if (S_ISLNK(mode))
		return PW_FT_SYMLINK;
	return PW_FT_UNKNOWN;   /* pipes: what wasmtime reports too */
}

static uint8_t host_filetype(int fd, bool *seekable)
{
	struct stat st;
	*seekable = false;
	if (fd < 0 || fstat(fd, &st) < 0)
		return PW_FT_UNKNOWN;
	*seekable = S_ISREG(st.st_mode);
	return pw__wasi_filetype(st.st_mode);
}

#define MAX_IOVS PW_WASI_MAX_IOVS

/* Validates a whole iovec array (8 bytes per entry: buf u32, len u32, every buffer inside
 * memory) and turns its first MAX_IOVS entries into host iovecs (a shorter transfer is
 * allowed). `out` holds MAX_IOVS entries. */
static u32 get_iovs(pw_instance *inst, u32 iovs, u32 n, struct iovec *out, int *nout, u64 *total)
{
	const uint8_t *a = gmem(inst, iovs, (u64)n * 8);
	uint8_t *base;
	uint64_t size;
	if (!a)
		return PW_WASI_EFAULT;
	base = pw_instance_memory(inst, &size);
	*nout = 0;
	*total = 0;
	for (u32 i = 0; i < n; i++) {
		u32 p = ld32(a + 8 * i), l = ld32(a + 8 * i + 4);
		if (!pw_instance_mem_ok(inst, p, l))
			return PW_WASI_EFAULT;
		if (i < MAX_IOVS) {
			out[i].iov_base = base + p;
			out[i].iov_len = l;
			*nout = (int)i + 1;
			*total += l;
		}
	}
	return 0;
}

u32 pw__wasi_get_iovs(pw_instance *inst, u32 iovs, u32 n, struct iovec *out, int *nout, u64 *total)
{
	return get_iovs(inst, iovs, n, out, nout, total);
}

/* ---- args and environ ----------------------------------------------------------------- */

static u32 strings_sizes(pw_instance *inst, int n, char **v, u32 count_ptr, u32 size_ptr)
{
	uint8_t *pc = gmem(inst, count_ptr, 4), *ps = gmem(inst, size_ptr, 4);
	u64 total = 0;
	if (!pc || !ps)
		return PW_WASI_EFAULT;
	for (int i = 0; i < n; i++)
		total += strlen(v[i]) + 1;
	if (total > UINT32_MAX)
		return PW_WASI_EOVERFLOW;
	st32(pc, (u32)n);
	st32(ps, (u32)total);
	return 0;
}

static u32 strings_get(pw_instance *inst, int n, char **v, u32 ptrs, u32 buf)
{
	u64 total = 0;
	uint8_t *pp, *pb;
	for (int i = 0; i < n; i++)
		total += strlen(v[i]) + 1;
	pp = gmem(inst, ptrs, (u64)n * 4);
	pb = gmem(inst, buf, total);
	if (!pp || !pb)
		return PW_WASI_EFAULT;
	u64 off = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		st32(pp + 4 * i, (u32)(buf + off));
		memcpy(pb + off, v[i], l);
		off += l;
	}
	return 0;
}

static u32 w_args_sizes_get(pw_instance *inst, u32 argc, u32 size)
{
	pw_wasi_ctx *c = ctx_of(inst);
	return strings_sizes(inst, c->argv ? c->argc : 0, c->argv, argc, size);
}

static u32 w_args_get(pw_instance *inst, u32 argv, u32 buf)
{
	pw_wasi_ctx *c = ctx_of(inst);
	return strings_get(inst, c->argv ? c->argc : 0, c->argv, argv, buf);
}

static u32 w_environ_sizes_get(pw_instance *inst, u32 count, u32 size)
{
	pw_wasi_ctx *c = ctx_of(inst);
	return strings_sizes(inst, c->envp ? c->envc : 0, c->envp, count, size);
}

static u32 w_environ_get(pw_instance *inst, u32 env, u32 buf)
{
	pw_wasi_ctx *c = ctx_of(inst);
	return strings_get(inst, c->envp ? c->envc : 0, c->envp, env, buf);
}

/* ---- clocks, random, process ---------------------------------------------------------- */

static bool clock_of(u32 id, clockid_t *out)
{
	switch (id) {
	case 0: *out = CLOCK_REALTIME; return true;
	case 1: *out = CLOCK_MONOTONIC; return true;
	case 2: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
	case 3: *out = CLOCK_THREAD_CPUTIME_ID; return true;
	default: return false;
	}
}

static u64 ts_ns(const struct timespec *ts)
{
	return (u64)ts->tv_sec * 1000000000ull + (u64)ts->tv_nsec;
}

static u32 w_clock_res_get(pw_instance *inst, u32 id, u32 out)
{
	clockid_t cid;
	struct timespec ts;
	uint8_t *p = gmem(inst, out, 8);
	if (!clock_of(id, &cid))
		return PW_WASI_EINVAL;
	if (!p)
		return PW_WASI_EFAULT;
	if (clock_getres(cid, &ts) < 0)
		return errno_to_wasi(errno);
	st64(p, ts_ns(&ts));
	return 0;
}

static u32 w_clock_time_get(pw_instance *inst, u32 id, u64 precision, u32 out)
{
	clockid_t cid;
	struct timespec ts;
	uint8_t *p = gmem(inst, out, 8);
	(void)precision;
	if (!clock_of(id, &cid))
		return PW_WASI_EINVAL;
	if (!p)
		return PW_WASI_EFAULT;
	if (clock_gettime(cid, &ts) < 0)
		return errno_to_wasi(errno);
	st64(p, ts_ns(&ts));
	return 0;
}

static u32 w_random_get(pw_instance *inst, u32 buf, u32 len)
{
	uint8_t *p = gmem(inst, buf, len);
	if (!p)
		return PW_WASI_EFAULT;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno_to_wasi(errno);
		}
		p += n;
		len -= (u32)n;
	}
	return 0;
}

static void w_proc_exit(pw_instance *inst, u32 code)
{
	ctx_of(inst)->exit_code = (int)code;
	pw_instance_exit(inst, (int)code);
}

static u32 w_sched_yield(pw_instance *inst)
{
	(void)inst;
	sched_yield();
	return 0;
}

/* ---- fd calls on stdio ---------------------------------------------------------------- */

static u32 w_fd_write(pw_instance *inst, u32 fd, u32 iovs, u32 n, u32 nwritten)
{
	pw_wasi_ctx *c = ctx_of(inst);
	struct iovec v[MAX_IOVS];
	stdio_fd s;
	int nv;
	u64 total;
	uint8_t *pn;
	u32 e;

	if (!stdio_get(c, fd, &s) || fd == 0)
		return PW_WASI_EBADF;   /* fds >= 3 are read-only files and directories */
	pn = gmem(inst, nwritten, 4);
	if (!pn)
		return PW_WASI_EFAULT;
	if ((e = get_iovs(inst, iovs, n, v, &nv, &total)) != 0)
		return e;
	if (s.cb_out) {
		for (int i = 0; i < nv; i++)
			if (v[i].iov_len)
				c->write_cb(c->cb_data, (int)fd, v[i].iov_base, v[i].iov_len);
		st32(pn, (u32)(total > UINT32_MAX ? UINT32_MAX : total));
		return 0;
	}
	for (;;) {
		ssize_t w = writev(s.host, v, nv);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno_to_wasi(errno);
		st32(pn, (u32)w);
		return 0;
	}
}

static u32 w_fd_read(pw_instance *inst, u32 fd, u32 iovs, u32 n, u32 nread)
{
	pw_wasi_ctx *c = ctx_of(inst);
	struct iovec v[MAX_IOVS];
	stdio_fd s;
	int nv;
	u64 total;
	uint8_t *pn;
	u32 e;

	if (fd > 2)
		return pw__wasi_fs_read(inst, fd, iovs, n, nread);
	if (!stdio_get(c, fd, &s) || fd != 0)
		return PW_WASI_EBADF;
	pn = gmem(inst, nread, 4);
	if (!pn)
		return PW_WASI_EFAULT;
	if ((e = get_iovs(inst, iovs, n, v, &nv, &total)) != 0)
		return e;
	if (s.mem_in) {
		u64 got = 0;
		for (int i = 0; i < nv && c->stdin_pos < c->stdin_len; i++) {
			size_t k = c->stdin_len - c->stdin_pos;
			if (k > v[i].iov_len)
				k = v[i].iov_len;
			memcpy(v[i].iov_base, c->stdin_data + c->stdin_pos, k);
			c->stdin_pos += k;
			got += k;
		}
		st32(pn, (u32)got);
		return 0;
	}
	wait_fd(inst, s.host, POLLIN);
	for (;;) {
		ssize_t r = readv(s.host, v, nv);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno_to_wasi(errno);
		st32(pn, (u32)r);
		return 0;
	}
}

static u32 w_fd_close(pw_instance *inst, u32 fd)
{
	pw_wasi_ctx *c = ctx_of(inst);
	stdio_fd s;
	if (fd > 2)
		return pw__wasi_fs_close(inst, fd);
	if (!stdio_get(c, fd, &s))
		return PW_WASI_EBADF;
	/* the process's own descriptors stay open; the guest just loses them */
	c->closed |= 1u << fd;
	return 0;
}

static u32 w_fd_fdstat_get(pw_instance *inst, u32 fd, u32 out)
{
	pw_wasi_ctx *c = ctx_of(inst);
	stdio_fd s;
	uint8_t *p;
	bool seekable = false;
	uint8_t ft;
	u64 rights;
	if (fd > 2)
		return pw__wasi_fs_fdstat_get(inst, fd, out);
	if (!stdio_get(c, fd, &s))
		return PW_WASI_EBADF;
	if (!(p = gmem(inst, out, 24)))
		return PW_WASI_EFAULT;
	ft = s.host >= 0 ? host_filetype(s.host, &seekable) : PW_FT_UNKNOWN;
	rights = (fd == 0 ? R_FD_READ : R_FD_WRITE) | R_FD_FDSTAT_SET_FLAGS | R_FD_FILESTAT_GET |
	         R_POLL_FD_READWRITE;
	if (seekable)
		rights |= R_FD_SEEK | R_FD_TELL;
	memset(p, 0, 24);
	p[0] = ft;
	st16(p + 2, 0);
	st64(p + 8, rights);
	st64(p + 16, 0);
	return 0;
}

static u32 w_fd_fdstat_set_flags(pw_instance *inst, u32 fd, u32 flags)
{
	stdio_fd s;
	if (fd > 2)
		return pw__wasi_fs_fdstat_set_flags(inst, fd, flags);
	if (!stdio_get(ctx_of(inst), fd, &s))
		return PW_WASI_EBADF;
	return flags == 0 ? 0 : PW_WASI_ENOSYS;
}

/* Filestat: preview1 is 64 bytes (dev, ino, filetype u8 @16, nlink u64 @24, size, atim,
 * mtim, ctim), wasi_unstable 56 (nlink u32 @20, size @24, ...). */
void pw__wasi_put_filestat(uint8_t *p, const struct stat *st, bool unstable)
{
	u32 o = unstable ? 24 : 32;
	memset(p, 0, unstable ? 56 : 64);
	st64(p + 0, (u64)st->st_dev);
	st64(p + 8, (u64)st->st_ino);
	p[16] = pw__wasi_filetype(st->st_mode);
	if (unstable)
		st32(p + 20, (u32)st->st_nlink);
	else
		st64(p + 24, (u64)st->st_nlink);
	st64(p + o, (u64)st->st_size);
	st64(p + o + 8, ts_ns(&st->st_atim));
	st64(p + o + 16, ts_ns(&st->st_mtim));
	st64(p + o + 24, ts_ns(&st->st_ctim));
}

static u32 filestat(pw_instance *inst, u32 fd, u32 out, bool unstable)
{
	pw_wasi_ctx *c = ctx_of(inst);
	stdio_fd s;
	struct stat st;
	uint8_t *p;
	u32 n = unstable ? 56 : 64;
	if (fd > 2)
		return pw__wasi_fs_filestat_get(inst, fd, out, unstable);
	if (!stdio_get(c, fd, &s))
		return PW_WASI_EBADF;
	if (!(p = gmem(inst, out, n)))
		return PW_WASI_EFAULT;
	if (s.host >= 0 && fstat(s.host, &st) == 0)
		pw__wasi_put_filestat(p, &st, unstable);
	else
		memset(p, 0, n);   /* memory stdin, callback stdout: file type unknown */
	return 0;
}

static u32 w_fd_filestat_get(pw_instance *inst, u32 fd, u32 out) { return filestat(inst, fd, out, false); }
static u32 w0_fd_filestat_get(pw_instance *inst, u32 fd, u32 out) { return filestat(inst, fd, out, true); }

/* whence: preview1 SET=0 CUR=1 END=2; wasi_unstable CUR=0 END=1 SET=2. */
static u32 seek(pw_instance *inst, u32 fd, u64 offset, int whence, u32 out)
{
	stdio_fd s;
	uint8_t *p;
	off_t r;
	if (fd > 2)
		return pw__wasi_fs_seek(inst, fd, offset, whence, out);
	if (!stdio_get(ctx_of(inst), fd, &s))
		return PW_WASI_EBADF;
	if (!(p = gmem(inst, out, 8)))
		return PW_WASI_EFAULT;
	if (whence < 0)
		return PW_WASI_EINVAL;
	if (s.host < 0)
		return PW_WASI_ESPIPE;
	r = lseek(s.host, (off_t)offset, whence);
	if (r < 0)
		return errno_to_wasi(errno);
	st64(p, (u64)r);
	return 0;
}

static u32 w_fd_seek(pw_instance *inst, u32 fd, u64 offset, u32 whence, u32 out)
{
	int w = whence == 0 ? SEEK_SET : whence == 1 ? SEEK_CUR : whence == 2 ? SEEK_END : -1;
	return seek(inst, fd, offset, w, out);
}

static u32 w0_fd_seek(pw_instance *inst, u32 fd, u64 offset, u32 whence, u32 out)
{
	int w = whence == 0 ? SEEK_CUR : whence == 1 ? SEEK_END : whence == 2 ? SEEK_SET : -1;
	return seek(inst, fd, offset, w, out);
}

static u32 w_fd_tell(pw_instance *inst, u32 fd, u32 out)
{
	return seek(inst, fd, 0, SEEK_CUR, out);
}

static u32 w_fd_prestat_get(pw_instance *inst, u32 fd, u32 out)
{
	return pw__wasi_fs_prestat_get(inst, fd, out);   /* EBADF for 0..2 and non-preopens */
}

static u32 w_fd_prestat_dir_name(pw_instance *inst, u32 fd, u32 path, u32 len)
{
	return pw__wasi_fs_prestat_dir_name(inst, fd, path, len);
}

/* ---- poll_oneoff: clock subscriptions, and readiness of stdio ------------------------- */

static int find_pfd(const struct pollfd *p, int n, int fd, uint8_t tag)
{
	for (int i = 0; i < n; i++)
		if (p[i].fd == fd && p[i].events == (tag == 1 ? POLLIN : POLLOUT))
			return i;
	return -1;
}

/* Subscription layouts: preview1 48 bytes (clock: id@16 timeout@24 precision@32 flags@40),
 * wasi_unstable 56 bytes (clock: identifier@16 id@24 timeout@32 precision@40 flags@48).
 * fd_read/fd_write: fd@16 in both. Events are 32 bytes in both. */
static u32 poll_oneoff(pw_instance *inst, u32 in, u32 out, u32 nsubs, u32 nevents, bool unstable)
{
	pw_wasi_ctx *c = ctx_of(inst);
	const u32 ssz = unstable ? 56 : 48;
	const u32 coff = unstable ? 8 : 0;
	uint8_t *pin, *pout, *pn;
	struct timespec now_m;
	u64 nearest = UINT64_MAX;
	u32 nev = 0;
	struct pollfd pfd[3];
	int npfd = 0;
	bool immediate = false;

	if (nsubs == 0)
		return PW_WASI_EINVAL;
	pin = gmem(inst, in, (u64)nsubs * ssz);
	pout = gmem(inst, out, (u64)nsubs * 32);
	pn = gmem(inst, nevents, 4);
	if (!pin || !pout || !pn)
		return PW_WASI_EFAULT;
	clock_gettime(CLOCK_MONOTONIC, &now_m);

	/* first pass: deadlines (monotonic ns) and fds to poll */
	for (u32 i = 0; i < nsubs; i++) {
		const uint8_t *s = pin + (u64)i * ssz;
		uint8_t tag = s[8];
		if (tag == 0) {
			u32 id = ld32(s + 16 + coff);
			u64 timeout = ld64(s + 24 + coff);
			uint16_t flags = ld16(s + 40 + coff);
			u64 deadline;
			clockid_t cid;
			if (!clock_of(id, &cid)) {
				immediate = true;   /* reported as an EINVAL event below */
				continue;
			}
			if (flags & 1) {   /* absolute time on that clock */
				struct timespec t;
				clock_gettime(cid, &t);
				u64 cur = ts_ns(&t);
				deadline = ts_ns(&now_m) + (timeout > cur ? timeout - cur : 0);
			} else {
				deadline = ts_ns(&now_m) + timeout;
				if (deadline < timeout)
					deadline = UINT64_MAX;
			}
			if (deadline < nearest)
				nearest = deadline;
		} else if (tag == 1 || tag == 2) {
			u32 fd = ld32(s + 16);
			stdio_fd sf;
			if (!stdio_get(c, fd, &sf) || (tag == 1) != (fd == 0) || sf.host < 0) {
				immediate = true;   /* error or memory-backed: an event right away */
			} else if (find_pfd(pfd, npfd, sf.host, tag) < 0 && npfd < 3) {
				pfd[npfd].fd = sf.host;
				pfd[npfd].events = tag == 1 ? POLLIN : POLLOUT;
				pfd[npfd].revents = 0;
				npfd++;
			}
		} else {
			immediate = true;
		}
	}

	/* wait, in slices, until an fd is ready or the nearest clock deadline passes */
	for (;;) {
		struct timespec ts, cur;
		u64 left = WAIT_SLICE_NS;
		bool last = false;
		if (immediate) {
			left = 0;
			last = true;
		} else if (nearest != UINT64_MAX) {
			clock_gettime(CLOCK_MONOTONIC, &cur);
			u64 c_ns = ts_ns(&cur), rem = nearest > c_ns ? nearest - c_ns : 0;
			if (rem <= WAIT_SLICE_NS) {
				left = rem;
				last = true;
			}
		}
		ts.tv_sec = (time_t)(left / 1000000000ull);
		ts.tv_nsec = (long)(left % 1000000000ull);
		int r = ppoll(npfd ? pfd : NULL, (nfds_t)npfd, &ts, NULL);
		if (r < 0 && errno != EINTR)
			return errno_to_wasi(errno);
		if (r > 0 || (r == 0 && last))
			break;
		check_interrupt(inst);
	}

	/* events */
	struct timespec after;
	clock_gettime(CLOCK_MONOTONIC, &after);
	for (u32 i = 0; i < nsubs; i++) {
		const uint8_t *s = pin + (u64)i * ssz;
		uint8_t tag = s[8];
		uint16_t err = 0;
		u64 nbytes = 0;
		bool fire = false;
		if (tag == 0) {
			clockid_t cid;
			u32 id = ld32(s + 16 + coff);
			if (!clock_of(id, &cid)) {
				err = PW_WASI_EINVAL;
				fire = true;
			} else {
				/* recompute this subscription's deadline as in the first pass */
				u64 timeout = ld64(s + 24 + coff);
				uint16_t flags = ld16(s + 40 + coff);
				u64 deadline;
				if (flags & 1) {
					struct timespec t;
					clock_gettime(cid, &t);
					fire = ts_ns(&t) >= timeout;
				} else {
					deadline = ts_ns(&now_m) + timeout;
					if (deadline < timeout)
						deadline = UINT64_MAX;
					fire = ts_ns(&after) >= deadline;
				}
			}
		} else if (tag == 1 || tag == 2) {
			u32 fd = ld32(s + 16);
			stdio_fd sf;
			if (fd > 2) {
				/* a guest file is always ready (regular files: the bytes left) */
				if (!pw__wasi_fs_poll(inst, fd, tag == 1, &err, &nbytes))
					err = PW_WASI_EBADF;
				fire = true;
			} else if (!stdio_get(c, fd, &sf) || (tag == 1) != (fd == 0)) {
				err = PW_WASI_EBADF;
				fire = true;
			} else if (sf.mem_in) {
				nbytes = c->stdin_len - c->stdin_pos;
				fire = true;
			} else if (sf.cb_out) {
				fire = true;
			} else {
				int j = find_pfd(pfd, npfd, sf.host, tag);
				if (j >= 0 && (pfd[j].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) {
					fire = true;
					if (pfd[j].revents & POLLERR)
						err = PW_WASI_EIO;
				}
			}
		} else {
			err = PW_WASI_EINVAL;
			fire = true;
		}
		if (!fire)
			continue;
		uint8_t *e = pout + (u64)nev * 32;
		memset(e, 0, 32);
		st64(e, ld64(s));          /* userdata */
		st16(e + 8, err);
		e[10] = tag;
		st64(e + 16, nbytes);
		nev++;
	}
	st32(pn, nev);
	return 0;
}

static u32 w_poll_oneoff(pw_instance *inst, u32 in, u32 out, u32 n, u32 ne) { return poll_oneoff(inst, in, out, n, ne, false); }
static u32 w0_poll_oneoff(pw_instance *inst, u32 in, u32 out, u32 n, u32 ne) { return poll_oneoff(inst, in, out, n, ne, true); }

/* ---- the rest: files and directories go to wasi_fs.c; stdio gets ENOSYS / ENOTDIR ------- */

static u32 fd_unsupported(pw_instance *inst, u32 fd)
{
	stdio_fd s;
	return stdio_get(ctx_of(inst), fd, &s) ? PW_WASI_ENOSYS : PW_WASI_EBADF;
}

/* a path call on a stdio fd: a stream is not a directory */
static u32 path_on_stdio(pw_instance *inst, u32 fd)
{
	stdio_fd s;
	return stdio_get(ctx_of(inst), fd, &s) ? PW_WASI_ENOTDIR : PW_WASI_EBADF;
}

/* calls that would change the file system: EROFS on a directory, ENOTDIR on a file */
static u32 path_modify(pw_instance *inst, u32 fd)
{
	return fd > 2 ? pw__wasi_fs_modify_path(inst, fd) : path_on_stdio(inst, fd);
}

static u32 w_fd_advise(pw_instance *i, u32 fd, u64 o, u64 l, u32 a)
{
	return fd > 2 ? pw__wasi_fs_advise(i, fd, o, l, a) : fd_unsupported(i, fd);
}

static u32 w_fd_allocate(pw_instance *i, u32 fd, u64 o, u64 l)
{
	(void)o; (void)l;
	return fd > 2 ? pw__wasi_fs_modify_fd(i, fd) : fd_unsupported(i, fd);
}

static u32 w_fd_datasync(pw_instance *i, u32 fd) { return fd > 2 ? pw__wasi_fs_sync(i, fd) : fd_unsupported(i, fd); }
static u32 w_fd_sync(pw_instance *i, u32 fd) { return fd > 2 ? pw__wasi_fs_sync(i, fd) : fd_unsupported(i, fd); }

static u32 w_fd_fdstat_set_rights(pw_instance *i, u32 fd, u64 b, u64 in)
{
	return fd > 2 ? pw__wasi_fs_fdstat_set_rights(i, fd, b, in) : fd_unsupported(i, fd);
}

static u32 w_fd_filestat_set_size(pw_instance *i, u32 fd, u64 s)
{
	(void)s;
	return fd > 2 ? pw__wasi_fs_modify_fd(i, fd) : fd_unsupported(i, fd);
}

static u32 w_fd_filestat_set_times(pw_instance *i, u32 fd, u64 a, u64 m, u32 f)
{
	(void)a; (void)m; (void)f;
	return fd > 2 ? pw__wasi_fs_modify_fd(i, fd) : fd_unsupported(i, fd);
}

static u32 w_fd_pread(pw_instance *i, u32 fd, u32 v, u32 n, u64 o, u32 r)
{
	return fd > 2 ? pw__wasi_fs_pread(i, fd, v, n, o, r) : fd_unsupported(i, fd);
}

static u32 w_fd_pwrite(pw_instance *i, u32 fd, u32 v, u32 n, u64 o, u32 r)
{
	(void)v; (void)n; (void)o; (void)r;
	return fd > 2 ? PW_WASI_EBADF : fd_unsupported(i, fd);   /* no fd >= 3 is open for writing */
}

static u32 w_fd_readdir(pw_instance *i, u32 fd, u32 b, u32 l, u64 c, u32 u)
{
	return fd > 2 ? pw__wasi_fs_readdir(i, fd, b, l, c, u) : path_on_stdio(i, fd);
}

static bool fd_is_open(pw_instance *i, u32 fd)
{
	stdio_fd s;
	return fd > 2 ? pw__wasi_fs_is_open(i, fd) : stdio_get(ctx_of(i), fd, &s);
}

static u32 w_fd_renumber(pw_instance *i, u32 fd, u32 to)
{
	if (fd > 2 && to > 2)
		return pw__wasi_fs_renumber(i, fd, to);
	/* moving stdio, or onto it: not supported (the process's fds 0..2 stay where they are) */
	return fd_is_open(i, fd) && fd_is_open(i, to) ? PW_WASI_ENOTSUP : PW_WASI_EBADF;
}

static u32 w_path_open(pw_instance *i, u32 fd, u32 df, u32 p, u32 l, u32 of, u64 rb, u64 ri, u32 ff, u32 out)
{
	return fd > 2 ? pw__wasi_fs_path_open(i, fd, df, p, l, of, rb, ri, ff, out) : path_on_stdio(i, fd);
}

static u32 w_path_filestat_get(pw_instance *i, u32 fd, u32 f, u32 p, u32 l, u32 b)
{
	return fd > 2 ? pw__wasi_fs_path_filestat_get(i, fd, f, p, l, b, false) : path_on_stdio(i, fd);
}

static u32 w0_path_filestat_get(pw_instance *i, u32 fd, u32 f, u32 p, u32 l, u32 b)
{
	return fd > 2 ? pw__wasi_fs_path_filestat_get(i, fd, f, p, l, b, true) : path_on_stdio(i, fd);
}

static u32 w_path_readlink(pw_instance *i, u32 fd, u32 p, u32 l, u32 b, u32 bl, u32 u)
{
	return fd > 2 ? pw__wasi_fs_path_readlink(i, fd, p, l, b, bl, u) : path_on_stdio(i, fd);
}

static u32 w_path_create_directory(pw_instance *i, u32 fd, u32 p, u32 l) { (void)p; (void)l; return path_modify(i, fd); }
static u32 w_path_filestat_set_times(pw_instance *i, u32 fd, u32 f, u32 p, u32 l, u64 a, u64 m, u32 fl) { (void)f; (void)p; (void)l; (void)a; (void)m; (void)fl; return path_modify(i, fd); }
static u32 w_path_link(pw_instance *i, u32 fd, u32 f, u32 p, u32 l, u32 nfd, u32 np, u32 nl) { (void)f; (void)p; (void)l; (void)nfd; (void)np; (void)nl; return path_modify(i, fd); }
static u32 w_path_remove_directory(pw_instance *i, u32 fd, u32 p, u32 l) { (void)p; (void)l; return path_modify(i, fd); }
static u32 w_path_rename(pw_instance *i, u32 fd, u32 p, u32 l, u32 nfd, u32 np, u32 nl) { (void)p; (void)l; (void)nfd; (void)np; (void)nl; return path_modify(i, fd); }
static u32 w_path_symlink(pw_instance *i, u32 p, u32 l, u32 fd, u32 np, u32 nl) { (void)p; (void)l; (void)np; (void)nl; return path_modify(i, fd); }
static u32 w_path_unlink_file(pw_instance *i, u32 fd, u32 p, u32 l) { (void)p; (void)l; return path_modify(i, fd); }
static u32 w_proc_raise(pw_instance *i, u32 sig) { (void)i; (void)sig; return PW_WASI_ENOSYS; }
static u32 w_sock_accept(pw_instance *i, u32 fd, u32 f, u32 out) { (void)i; (void)fd; (void)f; (void)out; return PW_WASI_ENOSYS; }
static u32 w_sock_recv(pw_instance *i, u32 fd, u32 d, u32 dl, u32 f, u32 ol, u32 of) { (void)i; (void)fd; (void)d; (void)dl; (void)f; (void)ol; (void)of; return PW_WASI_ENOSYS; }
static u32 w_sock_send(pw_instance *i, u32 fd, u32 d, u32 dl, u32 f, u32 ol) { (void)i; (void)fd; (void)d; (void)dl; (void)f; (void)ol; return PW_WASI_ENOSYS; }
static u32 w_sock_shutdown(pw_instance *i, u32 fd, u32 how) { (void)i; (void)fd; (void)how; return PW_WASI_ENOSYS; }

/* ---- registration --------------------------------------------------------------------- */

typedef void (*fnptr)(void);
#define F(f) ((fnptr)(void (*)(void))(f))

typedef struct wasi_fn {
	const char *name, *sig;
	fnptr p1, p0;   /* preview1 and wasi_unstable implementations */
} wasi_fn;

static const wasi_fn wasi_fns[] = {
	{ "args_get", "ii:i", F(w_args_get), F(w_args_get) },
	{ "args_sizes_get", "ii:i", F(w_args_sizes_get), F(w_args_sizes_get) },
	{ "environ_get", "ii:i", F(w_environ_get), F(w_environ_get) },
	{ "environ_sizes_get", "ii:i", F(w_environ_sizes_get), F(w_environ_sizes_get) },
	{ "clock_res_get", "ii:i", F(w_clock_res_get), F(w_clock_res_get) },
	{ "clock_time_get", "iIi:i", F(w_clock_time_get), F(w_clock_time_get) },
	{ "fd_advise", "iIIi:i", F(w_fd_advise), F(w_fd_advise) },
	{ "fd_allocate", "iII:i", F(w_fd_allocate), F(w_fd_allocate) },
	{ "fd_close", "i:i", F(w_fd_close), F(w_fd_close) },
	{ "fd_datasync", "i:i", F(w_fd_datasync), F(w_fd_datasync) },
	{ "fd_fdstat_get", "ii:i", F(w_fd_fdstat_get), F(w_fd_fdstat_get) },
	{ "fd_fdstat_set_flags", "ii:i", F(w_fd_fdstat_set_flags), F(w_fd_fdstat_set_flags) },
	{ "fd_fdstat_set_rights", "iII:i", F(w_fd_fdstat_set_rights), F(w_fd_fdstat_set_rights) },
	{ "fd_filestat_get", "ii:i", F(w_fd_filestat_get), F(w0_fd_filestat_get) },
	{ "fd_filestat_set_size", "iI:i", F(w_fd_filestat_set_size), F(w_fd_filestat_set_size) },
	{ "fd_filestat_set_times", "iIIi:i", F(w_fd_filestat_set_times), F(w_fd_filestat_set_times) },
	{ "fd_pread", "iiiIi:i", F(w_fd_pread), F(w_fd_pread) },
	{ "fd_prestat_get", "ii:i", F(w_fd_prestat_get), F(w_fd_prestat_get) },
	{ "fd_prestat_dir_name", "iii:i", F(w_fd_prestat_dir_name), F(w_fd_prestat_dir_name) },
	{ "fd_pwrite", "iiiIi:i", F(w_fd_pwrite), F(w_fd_pwrite) },
	{ "fd_read", "iiii:i", F(w_fd_read), F(w_fd_read) },
	{ "fd_readdir", "iiiIi:i", F(w_fd_readdir), F(w_fd_readdir) },
	{ "fd_renumber", "ii:i", F(w_fd_renumber), F(w_fd_renumber) },
	{ "fd_seek", "iIii:i", F(w_fd_seek), F(w0_fd_seek) },
	{ "fd_sync", "i:i", F(w_fd_sync), F(w_fd_sync) },
	{ "fd_tell", "ii:i", F(w_fd_tell), F(w_fd_tell) },
	{ "fd_write", "iiii:i", F(w_fd_write), F(w_fd_write) },
	{ "path_create_directory", "iii:i", F(w_path_create_directory), F(w_path_create_directory) },
	{ "path_filestat_get", "iiiii:i", F(w_path_filestat_get), F(w0_path_filestat_get) },
	{ "path_filestat_set_times", "iiiiIIi:i", F(w_path_filestat_set_times), F(w_path_filestat_set_times) },
	{ "path_link", "iiiiiii:i", F(w_path_link), F(w_path_link) },
	{ "path_open", "iiiiiIIii:i", F(w_path_open), F(w_path_open) },
	{ "path_readlink", "iiiiii:i", F(w_path_readlink), F(w_path_readlink) },
	{ "path_remove_directory", "iii:i", F(w_path_remove_directory), F(w_path_remove_directory) },
	{ "path_rename", "iiiiii:i", F(w_path_rename), F(w_path_rename) },
	{ "path_symlink", "iiiii:i", F(w_path_symlink), F(w_path_symlink) },
	{ "path_unlink_file", "iii:i", F(w_path_unlink_file), F(w_path_unlink_file) },
	{ "poll_oneoff", "iiii:i", F(w_poll_oneoff), F(w0_poll_oneoff) },
	{ "proc_exit", "i:", F(w_proc_exit), F(w_proc_exit) },
	{ "proc_raise", "i:i", F(w_proc_raise), F(w_proc_raise) },
	{ "random_get", "ii:i", F(w_random_get), F(w_random_get) },
	{ "sched_yield", ":i", F(w_sched_yield), F(w_sched_yield) },
	{ "sock_accept", "iii:i", F(w_sock_accept), F(w_sock_accept) },
	{ "sock_recv", "iiiiii:i", F(w_sock_recv), F(w_sock_recv) },
	{ "sock_send", "iiiii:i", F(w_sock_send), F(w_sock_send) },
	{ "sock_shutdown", "ii:i", F(w_sock_shutdown), F(w_sock_shutdown) },
};

int pw_wasi_add_imports(pw_imports *im)
{
	for (size_t i = 0; i < sizeof wasi_fns / sizeof wasi_fns[0]; i++) {
		const wasi_fn *f = &wasi_fns[i];
		int rc = pw_imports_add(im, P1, f->name, f->sig, f->p1);
		if (rc == 0)
			rc = pw_imports_add(im, P0, f->name, f->sig, f->p0);
		if (rc < 0)
			return pw_error_prefix("registering WASI %s", f->name);
	}
	return 0;
}

static void bench_noop(pw_instance *inst)
{
	(void)inst;
}

int pw_wasi_add_bench_imports(pw_imports *im)
{
	int rc = pw_imports_add(im, "bench", "start", ":", F(bench_noop));
	if (rc == 0)
		rc = pw_imports_add(im, "bench", "end", ":", F(bench_noop));
	return rc < 0 ? pw_error_prefix("registering bench.start/bench.end") : 0;
}

int pw_wasi_run_start(pw_instance *inst, int *exit_code)
{
	pw_wasi_ctx *c = ctx_of(inst);
	int rc;
	*exit_code = 0;
	c->exit_code = 0;
	rc = pw_instance_call(inst, "_start", NULL, 0, NULL, 0);
	if (rc == 0)
		return 0;
	if (rc == PW_EEXIT) {
		*exit_code = pw_instance_exit_code(inst);
		c->exit_code = *exit_code;
		return 0;
	}
	return rc;
}
