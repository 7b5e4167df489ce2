/*
 * Internal interface between the two halves of the WASI host: wasi.c (context,
 * stdio, clocks, poll_oneoff, registration) and wasi_fs.c (read-only preopened
 * directories and the files opened beneath them, guest fds >= 3). wasi.c keeps
 * the import table and hands every call on an fd >= 3 (and every path_* call)
 * to the pw__wasi_fs_* functions below. Guest memory helpers and the errno map
 * live in wasi.c and are shared through here.
 */
#ifndef PREWARM_ENGINE_WASI_INT_H
#define PREWARM_ENGINE_WASI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "engine/engine_int.h"
#include "prewarm/wasi.h"

typedef uint32_t u32;
typedef uint64_t u64;

/* little-endian guest memory stores and loads */
static inline void st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void st32(uint8_t *p, u32 v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void st64(uint8_t *p, u64 v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline u32 ld32(const uint8_t *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static inline u64 ld64(const uint8_t *p) { return (u64)ld32(p) | (u64)ld32(p + 4) << 32; }
static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* file types (the same in both versions) */
enum {
	PW_FT_UNKNOWN = 0, PW_FT_BLOCK = 1, PW_FT_CHAR = 2, PW_FT_DIR = 3, PW_FT_REG = 4,
	PW_FT_SOCK_DGRAM = 5, PW_FT_SOCK_STREAM = 6, PW_FT_SYMLINK = 7,
};

#define PW_WASI_MAX_IOVS 1024   /* <= IOV_MAX on Linux */

/* The calling instance's WASI context (a thread-local default when it has none). */
pw_wasi_ctx *pw__wasi_ctx(pw_instance *inst);
/* Host pointer to guest [ptr, ptr+len), or NULL when any byte lies outside memory. */
uint8_t *pw__wasi_gmem(pw_instance *inst, u64 ptr, u64 len);
/* A host errno as the WASI errno (EIO for the unexpected). */
u32 pw__wasi_errno(int e);
/* Waits until host `fd` is ready for `events`, in slices, honouring the interrupt flag. */
void pw__wasi_wait_fd(pw_instance *inst, int fd, short events);
/* Checks a whole guest iovec array and maps its first PW_WASI_MAX_IOVS entries into
 * `out` (PW_WASI_MAX_IOVS entries); 0 or EFAULT. */
u32 pw__wasi_get_iovs(pw_instance *inst, u32 iovs, u32 n, struct iovec *out, int *nout, u64 *total);
/* The WASI file type of a host st_mode. */
uint8_t pw__wasi_filetype(mode_t mode);
/* Writes a filestat: preview1 64 bytes (nlink u64), wasi_unstable 56 bytes (nlink u32). */
void pw__wasi_put_filestat(uint8_t *p, const struct stat *st, bool unstable);

/* ---- wasi_fs.c: calls on guest fds >= 3 and path calls ---------------------------------- */

u32 pw__wasi_fs_read(pw_instance *inst, u32 fd, u32 iovs, u32 n, u32 nread);
u32 pw__wasi_fs_pread(pw_instance *inst, u32 fd, u32 iovs, u32 n, u64 off, u32 nread);
u32 pw__wasi_fs_seek(pw_instance *inst, u32 fd, u64 off, int whence, u32 out);
u32 pw__wasi_fs_close(pw_instance *inst, u32 fd);
u32 pw__wasi_fs_fdstat_get(pw_instance *inst, u32 fd, u32 out);
u32 pw__wasi_fs_fdstat_set_flags(pw_instance *inst, u32 fd, u32 flags);
u32 pw__wasi_fs_fdstat_set_rights(pw_instance *inst, u32 fd, u64 base, u64 inh);
u32 pw__wasi_fs_filestat_get(pw_instance *inst, u32 fd, u32 out, bool unstable);
u32 pw__wasi_fs_prestat_get(pw_instance *inst, u32 fd, u32 out);
u32 pw__wasi_fs_prestat_dir_name(pw_instance *inst, u32 fd, u32 path, u32 len);
u32 pw__wasi_fs_readdir(pw_instance *inst, u32 fd, u32 buf, u32 len, u64 cookie, u32 used);
u32 pw__wasi_fs_advise(pw_instance *inst, u32 fd, u64 off, u64 len, u32 advice);
u32 pw__wasi_fs_sync(pw_instance *inst, u32 fd);
u32 pw__wasi_fs_renumber(pw_instance *inst, u32 fd, u32 to);
bool pw__wasi_fs_is_open(pw_instance *inst, u32 fd);
/* fd_allocate, fd_filestat_set_size/_times: EROFS on an open fd, else EBADF */
u32 pw__wasi_fs_modify_fd(pw_instance *inst, u32 fd);
/* path_create_directory, path_unlink_file, ...: EROFS on a directory fd, ENOTDIR on a file */
u32 pw__wasi_fs_modify_path(pw_instance *inst, u32 fd);
u32 pw__wasi_fs_path_open(pw_instance *inst, u32 fd, u32 lookup, u32 path, u32 len, u32 oflags,
                          u64 base, u64 inh, u32 fdflags, u32 out);
u32 pw__wasi_fs_path_filestat_get(pw_instance *inst, u32 fd, u32 lookup, u32 path, u32 len,
                                  u32 out, bool unstable);
u32 pw__wasi_fs_path_readlink(pw_instance *inst, u32 fd, u32 path, u32 len, u32 buf, u32 buflen,
                              u32 used);
/* poll_oneoff on fd >= 3: true when `fd` is a guest file; sets the event's error and
 * bytes available (regular files are always ready) */
bool pw__wasi_fs_poll(pw_instance *inst, u32 fd, bool read, uint16_t *err, u64 *nbytes);

#endif
