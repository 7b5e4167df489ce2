/*
 * Read-only preopened directories for WASI (include/prewarm/wasi.h,
 * pw_wasi_preopen), the half of the WASI host that owns guest fds >= 3.
 *
 * Real programs (Rust std, TinyGo, wasi-libc) find their files through
 * preopens: at start-up libc asks fd_prestat_get for fds 3, 4, ... until EBADF
 * and maps each preopen's name to its fd; `open("default.input")` then becomes
 * path_open on the preopen named "." (or "/"). This file keeps a bounded table
 * of host fds (PW_WASI_MAX_FDS) behind those guest fds and serves the read-only
 * calls on them: path_open, fd_read, fd_pread, fd_seek/fd_tell, fd_close,
 * fd_fdstat_get, fd_filestat_get, path_filestat_get, path_readlink, fd_readdir.
 *
 * Read-only: every host fd is opened O_RDONLY, path_open refuses write intent
 * (O_CREAT/O_TRUNC/O_EXCL, the append flag, or the fd_write / fd_datasync /
 * fd_allocate / fd_filestat_set_size rights) with EROFS, and every call that
 * would change the file system answers EROFS on a valid fd.
 *
 * Confinement: a path is refused lexically when it is absolute or when its `..`
 * components climb above the directory (ENOTCAPABLE), then opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so the kernel also refuses
 * symlinks that lead out (EXDEV -> ENOTCAPABLE) while following the ones that
 * stay inside. Where openat2 is missing (ENOSYS: kernels before 5.6, seccomp
 * filters) or PREWARM_WASI_NO_OPENAT2 is set (tests), the path is walked one
 * component at a time with O_NOFOLLOW and any symlink on the way is refused
 * (ENOTCAPABLE): stricter, never looser.
 *
 * fd_readdir serves a snapshot of the directory taken when the guest reads
 * from cookie 0 (a rewind); an entry's d_next cookie is its index + 1, so
 * cookies stay valid across calls, and a buffer too small for the next entry
 * gets the truncated entry the spec asks for.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/wasi_int.h"

/* rights bits (the same in both versions) */
#define R(n) (1ull << (n))
#define R_FD_DATASYNC R(0)
#define R_FD_READ R(1)
#define R_FD_SEEK R(2)
#define R_FD_FDSTAT_SET_FLAGS R(3)
#define R_FD_SYNC R(4)
#define R_FD_TELL R(5)
#define R_FD_WRITE R(6)
#define R_FD_ADVISE R(7)
#define R_FD_ALLOCATE R(8)
#define R_PATH_OPEN R(13)
#define R_FD_READDIR R(14)
#define R_PATH_READLINK R(15)
#define R_PATH_FILESTAT_GET R(18)
#define R_FD_FILESTAT_GET R(21)
#define R_FD_FILESTAT_SET_SIZE R(22)
#define R_POLL_FD_READWRITE R(27)
#define RIGHTS_ALL (R(30) - 1)
/* requesting any of these in path_open means "I will write" */
#define RIGHTS_WRITE_INTENT (R_FD_DATASYNC | R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE)
#define RIGHTS_FILE_RO (R_FD_READ | R_FD_SEEK | R_FD_FDSTAT_SET_FLAGS | R_FD_SYNC | R_FD_TELL | \
                        R_FD_ADVISE | R_FD_FILESTAT_GET | R_POLL_FD_READWRITE)
#define RIGHTS_DIR_RO (R_FD_FDSTAT_SET_FLAGS | R_FD_SYNC | R_PATH_OPEN | R_FD_READDIR | \
                       R_PATH_READLINK | R_PATH_FILESTAT_GET | R_FD_FILESTAT_GET)

/* oflags, fdflags, lookupflags */
#define O_W_CREAT 1u
#define O_W_DIRECTORY 2u
#define O_W_EXCL 4u
#define O_W_TRUNC 8u
#define FDFLAG_APPEND 1u
#define LOOKUP_SYMLINK_FOLLOW 1u

typedef struct fs_dirent {
	u64 ino;
	uint8_t type;
	u32 len;
	char name[];
} fs_dirent;

typedef struct fs_file {
	int host;              /* host fd, O_RDONLY; -1 = free slot */
	uint8_t type;          /* PW_FT_* */
	char *preopen;         /* the preopen's guest name (owned), NULL for opened files */
	u32 preopen_len;
	u64 base, inh;         /* rights as reported by fd_fdstat_get (recorded, not enforced) */
	fs_dirent **ents;      /* fd_readdir snapshot, taken at cookie 0 */
	size_t nents;
	bool have_snap;
} fs_file;

struct pw_wasi_fs {
	fs_file f[PW_WASI_MAX_FDS];   /* f[i] is guest fd i + 3 */
};

/* ---- the table ------------------------------------------------------------------------ */

static void snap_free(fs_file *f)
{
	for (size_t i = 0; i < f->nents; i++)
		free(f->ents[i]);
	free(f->ents);
	f->ents = NULL;
	f->nents = 0;
	f->have_snap = false;
}

static void file_close(fs_file *f)
{
	if (f->host >= 0)
		close(f->host);
	snap_free(f);
	free(f->preopen);
	memset(f, 0, sizeof *f);
	f->host = -1;
}

static struct pw_wasi_fs *fs_new(void)
{
	struct pw_wasi_fs *fs = calloc(1, sizeof *fs);
	if (fs)
		for (int i = 0; i < PW_WASI_MAX_FDS; i++)
			fs->f[i].host = -1;
	return fs;
}

/* The open guest file `fd`, or NULL (EBADF). */
static fs_file *fs_get(pw_instance *inst, u32 fd)
{
	pw_wasi_ctx *c = pw__wasi_ctx(inst);
	if (!c->fs || fd < 3 || fd - 3 >= PW_WASI_MAX_FDS)
		return NULL;
	fs_file *f = &c->fs->f[fd - 3];
	return f->host >= 0 ? f : NULL;
}

/* The lowest free slot, or -1 (EMFILE). */
static int fs_free_slot(struct pw_wasi_fs *fs)
{
	for (int i = 0; i < PW_WASI_MAX_FDS; i++)
		if (fs->f[i].host < 0)
			return i;
	return -1;
}

int pw_wasi_preopen(pw_wasi_ctx *ctx, const char *host_dir, const char *guest_path)
{
	size_t gl = guest_path ? strlen(guest_path) : 0;
	struct stat st;
	int slot, fd;
	if (!gl || gl >= PATH_MAX)
		return pw_error_set(PW_EINVALID, "WASI preopen of '%s': the guest path must have 1 to %d bytes",
		                    host_dir ? host_dir : "(null)", PATH_MAX - 1);
	if (!host_dir || !*host_dir)
		return pw_error_set(PW_EINVALID, "WASI preopen '%s': empty host directory", guest_path);
	if (!ctx->fs && !(ctx->fs = fs_new()))
		return pw_error_set(PW_ENOMEM, "WASI preopen '%s': out of memory", host_dir);
	if ((slot = fs_free_slot(ctx->fs)) < 0)
		return pw_error_set(PW_EINVALID, "WASI preopen '%s': more than %d open fds", host_dir,
		                    PW_WASI_MAX_FDS);
	fd = open(host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pw_error_set_errno(PW_EIO, "WASI preopen: open(\"%s\", O_DIRECTORY)", host_dir);
	if (fstat(fd, &st) < 0) {
		int e = pw_error_set_errno(PW_EIO, "WASI preopen: fstat(\"%s\")", host_dir);
		close(fd);
		return e;
	}
	fs_file *f = &ctx->fs->f[slot];
	if (!(f->preopen = strdup(guest_path))) {
		close(fd);
		return pw_error_set(PW_ENOMEM, "WASI preopen '%s': out of memory", host_dir);
	}
	f->host = fd;
	f->preopen_len = (u32)gl;
	f->type = PW_FT_DIR;
	f->base = RIGHTS_DIR_RO;
	/* inheriting: everything, so libc passes write intent to path_open, which refuses it
	 * with EROFS (instead of libc silently dropping the write right) */
	f->inh = RIGHTS_ALL;
	return 0;
}

void pw_wasi_ctx_release(pw_wasi_ctx *ctx)
{
	if (!ctx || !ctx->fs)
		return;
	for (int i = 0; i < PW_WASI_MAX_FDS; i++)
		file_close(&ctx->fs->f[i]);
	free(ctx->fs);
	ctx->fs = NULL;
}

/* ---- confined path resolution --------------------------------------------------------- */

/* Lexical checks on a guest path (bytes, not NUL-terminated): copies it into `out`
 * (PATH_MAX bytes). Absolute paths and `..` above the directory are ENOTCAPABLE. */
static u32 path_check(const uint8_t *p, u32 len, char *out)
{
	int depth = 0;
	if (len == 0)
		return PW_WASI_ENOENT;
	if (len >= PATH_MAX)
		return PW_WASI_ENAMETOOLONG;
	if (memchr(p, 0, len))
		return PW_WASI_EINVAL;
	if (p[0] == '/')
		return PW_WASI_ENOTCAPABLE;
	memcpy(out, p, len);
	out[len] = 0;
	for (const char *s = out; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (--depth < 0)
				return PW_WASI_ENOTCAPABLE;
		} else if (n > 0 && !(n == 1 && s[0] == '.')) {
			depth++;
		}
		s += n;
		while (*s == '/')
			s++;
	}
	return 0;
}

static pthread_once_t g_mode_once = PTHREAD_ONCE_INIT;
static atomic_int g_no_openat2;

static void mode_init(void)
{
	const char *v = getenv("PREWARM_WASI_NO_OPENAT2");
	if (v && *v && strcmp(v, "0") != 0)
		atomic_store(&g_no_openat2, 1);
}

static bool is_symlink_at(int dir, const char *name)
{
	struct stat st;
	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* Fallback: one component at a time, no symlink followed anywhere. `path` passed
 * path_check, so `..` never climbs above `root`. Returns a host fd or -1 with *werr. */
static int walk_open(int root, char *path, int flags, bool follow, u32 *werr)
{
	int stack[PATH_MAX / 2 + 2];
	int depth = 0, fd = -1;
	size_t plen = strlen(path);
	stack[0] = root;
	/* trailing slashes: the last component must be a directory */
	if (plen > 1 && path[plen - 1] == '/') {
		flags |= O_DIRECTORY;
		while (plen > 1 && path[plen - 1] == '/')
			path[--plen] = 0;
	}
	char *s = path;
	for (;;) {
		while (*s == '/')
			s++;
		char *e = strchr(s, '/');
		bool last = !e;
		if (e)
			*e = 0;
		if (!last) {
			if (!strcmp(s, ".") || !*s) {
				/* nothing */
			} else if (!strcmp(s, "..")) {
				close(stack[depth--]);
			} else {
				int d = openat(stack[depth], s, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (d < 0) {
					*werr = (errno == ENOTDIR || errno == ELOOP) && is_symlink_at(stack[depth], s)
					        ? PW_WASI_ENOTCAPABLE : pw__wasi_errno(errno);
					goto out;
				}
				stack[++depth] = d;
			}
			s = e + 1;
			continue;
		}
		if (!strcmp(s, "..")) {
			close(stack[depth--]);
			s = (char *)".";
		} else if (!*s) {
			s = (char *)".";
		}
		fd = openat(stack[depth], s, flags | O_NOFOLLOW);
		if (fd < 0) {
			/* a final symlink to follow: refused here (ELOOP, or ENOTDIR with O_DIRECTORY) */
			int err = errno;
			*werr = follow && (err == ELOOP || err == ENOTDIR) && is_symlink_at(stack[depth], s)
			        ? PW_WASI_ENOTCAPABLE : pw__wasi_errno(err);
		} else if (follow && (flags & O_PATH)) {
			struct stat st;   /* O_PATH | O_NOFOLLOW opened the link itself */
			if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
				close(fd);
				fd = -1;
				*werr = PW_WASI_ENOTCAPABLE;
			}
		}
		break;
	}
out:
	while (depth > 0)
		close(stack[depth--]);
	return fd;
}

/* Opens guest `path` beneath directory fd `dir` with host open flags `flags` (O_CLOEXEC
 * added; O_NOFOLLOW added unless `follow`). Returns a host fd or -1 with *werr. */
static int confined_open(pw_instance *inst, int dir, u32 path, u32 len, int flags, bool follow,
                         u32 *werr)
{
	char buf[PATH_MAX];
	const uint8_t *p = pw__wasi_gmem(inst, path, len);
	u32 e;
	if (!p) {
		*werr = PW_WASI_EFAULT;
		return -1;
	}
	if ((e = path_check(p, len, buf)) != 0) {
		*werr = e;
		return -1;
	}
	flags |= O_CLOEXEC;
	if (!follow)
		flags |= O_NOFOLLOW;
	pthread_once(&g_mode_once, mode_init);
	if (!atomic_load(&g_no_openat2)) {
		struct open_how how = {
			.flags = (u64)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		for (int tries = 0; tries < 16; tries++) {
			long fd = syscall(SYS_openat2, dir, buf, &how, sizeof how);
			if (fd >= 0)
				return (int)fd;
			if (errno == EAGAIN || errno == EINTR)
				continue;   /* a concurrent rename raced a `..`: try again */
			if (errno == ENOSYS) {
				atomic_store(&g_no_openat2, 1);
				break;
			}
			*werr = errno == EXDEV ? PW_WASI_ENOTCAPABLE : pw__wasi_errno(errno);
			return -1;
		}
		if (!atomic_load(&g_no_openat2)) {
			*werr = PW_WASI_EAGAIN;
			return -1;
		}
	}
	return walk_open(dir, buf, flags, follow, werr);
}

/* The directory `fd` for a path call: EBADF when not open, ENOTDIR when a file. */
static fs_file *dir_get(pw_instance *inst, u32 fd, u32 *werr)
{
	fs_file *f = fs_get(inst, fd);
	if (!f)
		*werr = PW_WASI_EBADF;
	else if (f->type != PW_FT_DIR)
		*werr = PW_WASI_ENOTDIR;
	else
		return f;
	return NULL;
}

/* ---- path calls ----------------------------------------------------------------------- */

u32 pw__wasi_fs_path_open(pw_instance *inst, u32 fd, u32 lookup, u32 path, u32 len, u32 oflags,
                          u64 base, u64 inh, u32 fdflags, u32 out)
{
	pw_wasi_ctx *c = pw__wasi_ctx(inst);
	u32 e = 0;
	fs_file *d = dir_get(inst, fd, &e);
	uint8_t *po;
	struct stat st;
	int slot, h;
	if (!d)
		return e;
	if (!pw__wasi_gmem(inst, path, len) || !(po = pw__wasi_gmem(inst, out, 4)))
		return PW_WASI_EFAULT;
	if ((oflags & (O_W_CREAT | O_W_EXCL | O_W_TRUNC)) || (fdflags & FDFLAG_APPEND) ||
	    (base & RIGHTS_WRITE_INTENT))
		return PW_WASI_EROFS;
	if ((slot = fs_free_slot(c->fs)) < 0)
		return PW_WASI_EMFILE;
	/* O_NONBLOCK: opening a FIFO must not block the host; reads wait interruptibly */
	h = confined_open(inst, d->host, path, len,
	                  O_RDONLY | O_NOCTTY | O_NONBLOCK | ((oflags & O_W_DIRECTORY) ? O_DIRECTORY : 0),
	                  (lookup & LOOKUP_SYMLINK_FOLLOW) != 0, &e);
	if (h < 0)
		return e;
	if (fstat(h, &st) < 0) {
		e = pw__wasi_errno(errno);
		close(h);
		return e;
	}
	fs_file *f = &c->fs->f[slot];
	f->host = h;
	f->type = pw__wasi_filetype(st.st_mode);
	if (f->type == PW_FT_DIR) {
		f->base = base & RIGHTS_DIR_RO;
		f->inh = inh & RIGHTS_ALL;
	} else {
		f->base = base & RIGHTS_FILE_RO;
		f->inh = 0;
	}
	st32(po, (u32)slot + 3);
	return 0;
}

u32 pw__wasi_fs_path_filestat_get(pw_instance *inst, u32 fd, u32 lookup, u32 path, u32 len,
                                  u32 out, bool unstable)
{
	u32 e = 0;
	fs_file *d = dir_get(inst, fd, &e);
	uint8_t *p;
	struct stat st;
	int h;
	if (!d)
		return e;
	if (!(p = pw__wasi_gmem(inst, out, unstable ? 56 : 64)))
		return PW_WASI_EFAULT;
	h = confined_open(inst, d->host, path, len, O_PATH, (lookup & LOOKUP_SYMLINK_FOLLOW) != 0, &e);
	if (h < 0)
		return e;
	if (fstat(h, &st) < 0) {
		e = pw__wasi_errno(errno);
		close(h);
		return e;
	}
	close(h);
	pw__wasi_put_filestat(p, &st, unstable);
	return 0;
}

u32 pw__wasi_fs_path_readlink(pw_instance *inst, u32 fd, u32 path, u32 len, u32 buf, u32 buflen,
                              u32 used)
{
	u32 e = 0;
	fs_file *d = dir_get(inst, fd, &e);
	uint8_t *pb, *pu;
	char tmp[PATH_MAX];
	ssize_t n;
	int h;
	if (!d)
		return e;
	if (!(pb = pw__wasi_gmem(inst, buf, buflen)) || !(pu = pw__wasi_gmem(inst, used, 4)))
		return PW_WASI_EFAULT;
	h = confined_open(inst, d->host, path, len, O_PATH, false, &e);
	if (h < 0)
		return e;
	n = readlinkat(h, "", tmp, sizeof tmp);
	e = n < 0 ? (errno == ENOENT ? PW_WASI_EINVAL : pw__wasi_errno(errno)) : 0;
	close(h);
	if (e)
		return e;
	if ((size_t)n > buflen)
		n = buflen;
	memcpy(pb, tmp, (size_t)n);
	st32(pu, (u32)n);
	return 0;
}

u32 pw__wasi_fs_modify_path(pw_instance *inst, u32 fd)
{
	u32 e = 0;
	return dir_get(inst, fd, &e) ? PW_WASI_EROFS : e;
}

/* ---- fd calls ------------------------------------------------------------------------- */

u32 pw__wasi_fs_read(pw_instance *inst, u32 fd, u32 iovs, u32 n, u32 nread)
{
	fs_file *f = fs_get(inst, fd);
	struct iovec v[PW_WASI_MAX_IOVS];
	uint8_t *pn;
	int nv;
	u64 total;
	u32 e;
	if (!f)
		return PW_WASI_EBADF;
	if (!(pn = pw__wasi_gmem(inst, nread, 4)))
		return PW_WASI_EFAULT;
	if ((e = pw__wasi_get_iovs(inst, iovs, n, v, &nv, &total)) != 0)
		return e;
	if (f->type == PW_FT_DIR)
		return PW_WASI_EISDIR;
	for (;;) {
		if (f->type != PW_FT_REG)
			pw__wasi_wait_fd(inst, f->host, POLLIN);
		ssize_t r = readv(f->host, v, nv);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return pw__wasi_errno(errno);
		st32(pn, (u32)r);
		return 0;
	}
}

u32 pw__wasi_fs_pread(pw_instance *inst, u32 fd, u32 iovs, u32 n, u64 off, u32 nread)
{
	fs_file *f = fs_get(inst, fd);
	struct iovec v[PW_WASI_MAX_IOVS];
	uint8_t *pn;
	int nv;
	u64 total;
	u32 e;
	if (!f)
		return PW_WASI_EBADF;
	if (!(pn = pw__wasi_gmem(inst, nread, 4)))
		return PW_WASI_EFAULT;
	if ((e = pw__wasi_get_iovs(inst, iovs, n, v, &nv, &total)) != 0)
		return e;
	if (f->type == PW_FT_DIR)
		return PW_WASI_EISDIR;
	if (off > (u64)INT64_MAX)
		return PW_WASI_EINVAL;
	for (;;) {
		ssize_t r = preadv(f->host, v, nv, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return pw__wasi_errno(errno);
		st32(pn, (u32)r);
		return 0;
	}
}

u32 pw__wasi_fs_seek(pw_instance *inst, u32 fd, u64 off, int whence, u32 out)
{
	fs_file *f = fs_get(inst, fd);
	uint8_t *p;
	off_t r;
	if (!f)
		return PW_WASI_EBADF;
	if (!(p = pw__wasi_gmem(inst, out, 8)))
		return PW_WASI_EFAULT;
	if (whence < 0)
		return PW_WASI_EINVAL;
	if (f->type == PW_FT_DIR)
		return PW_WASI_EBADF;   /* as wasmtime: a directory has no file offset for the guest */
	r = lseek(f->host, (off_t)(int64_t)off, whence);
	if (r < 0)
		return pw__wasi_errno(errno);
	st64(p, (u64)r);
	return 0;
}

u32 pw__wasi_fs_close(pw_instance *inst, u32 fd)
{
	fs_file *f = fs_get(inst, fd);
	if (!f)
		return PW_WASI_EBADF;
	file_close(f);
	return 0;
}

u32 pw__wasi_fs_fdstat_get(pw_instance *inst, u32 fd, u32 out)
{
	fs_file *f = fs_get(inst, fd);
	uint8_t *p;
	if (!f)
		return PW_WASI_EBADF;
	if (!(p = pw__wasi_gmem(inst, out, 24)))
		return PW_WASI_EFAULT;
	memset(p, 0, 24);
	p[0] = f->type;
	st64(p + 8, f->base);
	st64(p + 16, f->inh);
	return 0;
}

u32 pw__wasi_fs_fdstat_set_flags(pw_instance *inst, u32 fd, u32 flags)
{
	if (!fs_get(inst, fd))
		return PW_WASI_EBADF;
	if (flags & FDFLAG_APPEND)
		return PW_WASI_EROFS;
	return flags == 0 ? 0 : PW_WASI_ENOTSUP;
}

u32 pw__wasi_fs_fdstat_set_rights(pw_instance *inst, u32 fd, u64 base, u64 inh)
{
	fs_file *f = fs_get(inst, fd);
	if (!f)
		return PW_WASI_EBADF;
	if ((base & ~f->base) || (inh & ~f->inh))
		return PW_WASI_ENOTCAPABLE;   /* rights can only shrink */
	f->base = base;
	f->inh = inh;
	return 0;
}

u32 pw__wasi_fs_filestat_get(pw_instance *inst, u32 fd, u32 out, bool unstable)
{
	fs_file *f = fs_get(inst, fd);
	struct stat st;
	uint8_t *p;
	if (!f)
		return PW_WASI_EBADF;
	if (!(p = pw__wasi_gmem(inst, out, unstable ? 56 : 64)))
		return PW_WASI_EFAULT;
	if (fstat(f->host, &st) < 0)
		return pw__wasi_errno(errno);
	pw__wasi_put_filestat(p, &st, unstable);
	return 0;
}

u32 pw__wasi_fs_prestat_get(pw_instance *inst, u32 fd, u32 out)
{
	fs_file *f = fs_get(inst, fd);
	uint8_t *p;
	if (!f || !f->preopen)
		return PW_WASI_EBADF;   /* libc stops scanning preopens at the first EBADF */
	if (!(p = pw__wasi_gmem(inst, out, 8)))
		return PW_WASI_EFAULT;
	memset(p, 0, 8);   /* tag 0: a directory */
	st32(p + 4, f->preopen_len);
	return 0;
}

u32 pw__wasi_fs_prestat_dir_name(pw_instance *inst, u32 fd, u32 path, u32 len)
{
	fs_file *f = fs_get(inst, fd);
	uint8_t *p;
	if (!f || !f->preopen)
		return PW_WASI_EBADF;
	if (len < f->preopen_len)
		return PW_WASI_ENAMETOOLONG;
	if (!(p = pw__wasi_gmem(inst, path, f->preopen_len)))
		return PW_WASI_EFAULT;
	memcpy(p, f->preopen, f->preopen_len);
	return 0;
}

static uint8_t dtype_to_ft(unsigned char t)
{
	switch (t) {
	case DT_DIR: return PW_FT_DIR;
	case DT_REG: return PW_FT_REG;
	case DT_LNK: return PW_FT_SYMLINK;
	case DT_CHR: return PW_FT_CHAR;
	case DT_BLK: return PW_FT_BLOCK;
	case DT_SOCK: return PW_FT_SOCK_STREAM;
	default: return PW_FT_UNKNOWN;
	}
}

/* Reads the whole directory into f->ents (in the host's readdir order). */
static u32 snap_load(fs_file *f)
{
	int d = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp;
	struct dirent *de;
	size_t cap = 0;
	u32 e = 0;
	snap_free(f);
	if (d < 0)
		return pw__wasi_errno(errno);
	if (!(dp = fdopendir(d))) {
		e = pw__wasi_errno(errno);
		close(d);
		return e;
	}
	for (;;) {
		errno = 0;
		if (!(de = readdir(dp))) {
			if (errno)
				e = pw__wasi_errno(errno);
			break;
		}
		size_t nl = strlen(de->d_name);
		fs_dirent *x = malloc(sizeof *x + nl + 1);
		if (!x) {
			e = PW_WASI_ENOMEM;
			break;
		}
		if (f->nents == cap) {
			size_t nc = cap ? cap * 2 : 32;
			fs_dirent **n = realloc(f->ents, nc * sizeof *n);
			if (!n) {
				free(x);
				e = PW_WASI_ENOMEM;
				break;
			}
			f->ents = n;
			cap = nc;
		}
		x->ino = de->d_ino;
		x->len = (u32)nl;
		x->type = dtype_to_ft(de->d_type);
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				x->type = pw__wasi_filetype(st.st_mode);
		}
		memcpy(x->name, de->d_name, nl + 1);
		f->ents[f->nents++] = x;
	}
	closedir(dp);
	if (e)
		snap_free(f);
	else
		f->have_snap = true;
	return e;
}

/* dirent: d_next u64 @0, d_ino u64 @8, d_namlen u32 @16, d_type u8 @20 (24 bytes, the same
 * in both versions), then the name without a NUL. */
u32 pw__wasi_fs_readdir(pw_instance *inst, u32 fd, u32 buf, u32 len, u64 cookie, u32 used)
{
	fs_file *f = fs_get(inst, fd);
	uint8_t *pb, *pu;
	u64 off = 0;
	u32 e;
	if (!f)
		return PW_WASI_EBADF;
	if (f->type != PW_FT_DIR)
		return PW_WASI_ENOTDIR;
	if (!(pb = pw__wasi_gmem(inst, buf, len)) || !(pu = pw__wasi_gmem(inst, used, 4)))
		return PW_WASI_EFAULT;
	if ((cookie == 0 || !f->have_snap) && (e = snap_load(f)) != 0)
		return e;
	for (u64 i = cookie; i < f->nents && off < len; i++) {
		const fs_dirent *x = f->ents[i];
		uint8_t hdr[24] = { 0 };
		u64 k;
		st64(hdr, i + 1);
		st64(hdr + 8, x->ino);
		st32(hdr + 16, x->len);
		hdr[20] = x->type;
		k = len - off < 24 ? len - off : 24;
		memcpy(pb + off, hdr, k);
		off += k;
		k = len - off < x->len ? len - off : x->len;
		memcpy(pb + off, x->name, k);
		off += k;
	}
	st32(pu, (u32)off);
	return 0;
}

u32 pw__wasi_fs_advise(pw_instance *inst, u32 fd, u64 off, u64 len, u32 advice)
{
	static const int adv[] = { POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
	                           POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE };
	fs_file *f = fs_get(inst, fd);
	if (!f)
		return PW_WASI_EBADF;
	if (advice >= sizeof adv / sizeof adv[0] || off > (u64)INT64_MAX || len > (u64)INT64_MAX)
		return PW_WASI_EINVAL;
	if (f->type == PW_FT_DIR)
		return PW_WASI_EBADF;
	int r = posix_fadvise(f->host, (off_t)off, (off_t)len, adv[advice]);
	return r == 0 || r == ESPIPE ? 0 : pw__wasi_errno(r);
}

u32 pw__wasi_fs_sync(pw_instance *inst, u32 fd)
{
	/* nothing was ever written through a read-only fd */
	return fs_get(inst, fd) ? 0 : PW_WASI_EBADF;
}

u32 pw__wasi_fs_modify_fd(pw_instance *inst, u32 fd)
{
	return fs_get(inst, fd) ? PW_WASI_EROFS : PW_WASI_EBADF;
}

bool pw__wasi_fs_is_open(pw_instance *inst, u32 fd)
{
	return fs_get(inst, fd) != NULL;
}

u32 pw__wasi_fs_renumber(pw_instance *inst, u32 fd, u32 to)
{
	fs_file *f = fs_get(inst, fd), *t = fs_get(inst, to);
	if (!f || !t)
		return PW_WASI_EBADF;
	if (f == t)
		return 0;
	file_close(t);
	*t = *f;
	memset(f, 0, sizeof *f);
	f->host = -1;
	return 0;
}

bool pw__wasi_fs_poll(pw_instance *inst, u32 fd, bool read, uint16_t *err, u64 *nbytes)
{
	fs_file *f = fs_get(inst, fd);
	struct stat st;
	*err = 0;
	*nbytes = 0;
	if (!f)
		return false;
	if (!read) {
		*err = PW_WASI_EBADF;   /* not open for writing */
	} else if (f->type == PW_FT_DIR) {
		*err = PW_WASI_EISDIR;
	} else if (f->type == PW_FT_REG && fstat(f->host, &st) == 0) {
		off_t pos = lseek(f->host, 0, SEEK_CUR);
		if (pos >= 0 && st.st_size > pos)
			*nbytes = (u64)(st.st_size - pos);
	}
	return true;
}
