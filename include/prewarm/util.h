/*
 * Small shared tools: growable buffers, sha256/HMAC, hex, files (whole reads,
 * durable atomic writes), time, and a bounded thread pool.
 */
#ifndef PREWARM_UTIL_H
#define PREWARM_UTIL_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "prewarm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- buffers ------------------------------------------------------------------------- */

/* A growable byte buffer. Zero-initialise ({0}) to start; data stays NUL-terminated
 * (one spare byte) so text can be used as a C string. */
typedef struct pw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} pw_buf;

#define PW_BUF_INIT { NULL, 0, 0 }

int pw_buf_reserve(pw_buf *b, size_t extra);
int pw_buf_append(pw_buf *b, const void *data, size_t len);
int pw_buf_puts(pw_buf *b, const char *s);
int pw_buf_printf(pw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (free() them) and resets the buffer. */
uint8_t *pw_buf_detach(pw_buf *b, size_t *len_out);
void pw_buf_clear(pw_buf *b);   /* len = 0, keeps memory */
void pw_buf_free(pw_buf *b);    /* frees memory, resets */

/* ---- hashing ------------------------------------------------------------------------- */

#define PW_SHA256_LEN 32
#define PW_SHA256_HEX_LEN 64

typedef struct pw_sha256_ctx pw_sha256_ctx;  /* incremental */
pw_sha256_ctx *pw_sha256_new(void);
void pw_sha256_update(pw_sha256_ctx *c, const void *data, size_t len);
/* Writes 32 bytes and frees the context. */
void pw_sha256_final(pw_sha256_ctx *c, uint8_t out[PW_SHA256_LEN]);

void pw_sha256(const void *data, size_t len, uint8_t out[PW_SHA256_LEN]);
/* Lower-case hex, NUL-terminated: out must hold 65 bytes. */
void pw_sha256_hex(const void *data, size_t len, char out[PW_SHA256_HEX_LEN + 1]);
void pw_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);
/* Returns 0, or PW_EINVALID when `hex` is not exactly 2*len hex digits. */
int pw_hex_decode(const char *hex, uint8_t *out, size_t len);
/* HMAC-SHA256 in lower-case hex (65 bytes with NUL). */
void pw_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                        char out[PW_SHA256_HEX_LEN + 1]);
/* Constant-time comparison of two equal-length strings; false when lengths differ. */
bool pw_secure_streq(const char *a, const char *b);
/* True when s is exactly 64 lower-case hex digits. */
bool pw_is_sha256_hex(const char *s);

/* ---- base64 (standard alphabet, padded) ------------------------------------------------ */
char *pw_base64_encode(const void *data, size_t len);           /* malloc'd */
int pw_base64_decode(const char *s, uint8_t **out, size_t *out_len); /* *out malloc'd */

/* ---- files --------------------------------------------------------------------------- */

/* Reads a whole file. `max` bounds the size (0 = no bound): a larger file is PW_EINVALID. */
int pw_file_read(const char *path, size_t max, pw_buf *out);
/*
 * The one durable writer: a temp file in the directory of `path`
 * ("<dir>/.tmp-<name>.<pid>.<rand>", O_EXCL | O_CLOEXEC, open retried on EINTR), written
 * (pw_durable_write, or directly on .fd), then pw_durable_commit: fsync, close, rename onto
 * `path`, fsync the directory, every result checked. On any failure (and on
 * pw_durable_abort) the temp file is removed and `path` is untouched; a crash leaves at worst
 * a stale ".tmp-" file (the cache's gc removes old ones). Errors name the file (PW_EIO).
 */
typedef struct pw_durable {
	int fd;
	char path[4096];
	char dir[4096];
	char tmp[4096 + 96];
} pw_durable;
int pw_durable_open(pw_durable *w, const char *path, mode_t mode);
int pw_durable_write(pw_durable *w, const void *data, size_t len);
int pw_durable_commit(pw_durable *w);
void pw_durable_abort(pw_durable *w);
/* Durable atomic replace of `path` with `data` (pw_durable_*). mode e.g. 0644. */
int pw_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* mkdir -p. */
int pw_mkdirs(const char *path, mode_t mode);
/* rm -rf (best effort; returns the first error). */
int pw_rmtree(const char *path);
/* fsync a directory. */
int pw_fsync_dir(const char *dir);
bool pw_path_exists(const char *path);
/* write(2) all bytes, retrying EINTR/short writes. */
int pw_write_all(int fd, const void *data, size_t len);
/* A fresh temp directory (mkdtemp) under $TMPDIR or /tmp, malloc'd path in *out. */
int pw_mkdtemp(char **out, const char *prefix);

/* ---- YAML ---------------------------------------------------------------------------- */

/*
 * Converts a YAML document (the first one of `yaml`) into a jansson value, returned as an
 * opaque pointer (json_t *, caller decrefs). Plain scalars become null/bool/int/real when they
 * look like one, quoted scalars stay strings; duplicate keys and non-scalar keys are
 * PW_EINVALID; alias expansion is bounded (PW_EINVALID "document too large").
 * An empty document gives PW_ENOTFOUND.
 */
int pw_yaml_to_json(void **out, const char *yaml, size_t len, const char *origin);
/* Every document of `yaml` (a stream with "---" separators) as a JSON array, same rules;
 * no document at all gives PW_ENOTFOUND. */
int pw_yaml_to_json_all(void **out, const char *yaml, size_t len, const char *origin);

/* ---- time ---------------------------------------------------------------------------- */
/* Monotonic seconds. */
double pw_now(void);
/* Wall-clock seconds since the epoch. */
double pw_wall_now(void);
/* A duration in seconds as a timespec (negative: zero), for nanosleep and sigtimedwait. */
struct timespec pw_timespec_of(double seconds);
/* The instant `seconds` from now on `clock` (CLOCK_REALTIME for a default condition
 * variable, CLOCK_MONOTONIC for one set up so), for pthread_cond_timedwait. */
struct timespec pw_deadline_after(clockid_t clock, double seconds);
/* "1.23 s", "45 ms" into buf. */
const char *pw_fmt_duration(double seconds, char *buf, size_t n);
/* "1.5 MiB" into buf. */
const char *pw_fmt_bytes(uint64_t bytes, char *buf, size_t n);
/* Parses "2GiB", "512M", "100k", "123" (bytes); 0 on success. */
int pw_parse_size(const char *s, uint64_t *out);
/* Parses "2", "2s", "500ms", "1.5" (seconds). */
int pw_parse_duration(const char *s, double *out);

/* ---- thread pool --------------------------------------------------------------------- */

typedef struct pw_pool pw_pool;
/* `threads` workers (0 = number of CPUs). Each thread gets `stack_size` bytes (0 = default). */
int pw_pool_new(pw_pool **out, unsigned threads, size_t stack_size);
/* Queues fn(arg). Never blocks for long. */
int pw_pool_submit(pw_pool *p, void (*fn)(void *arg), void *arg);
/* Waits until every queued task has finished. */
void pw_pool_wait(pw_pool *p);
/* Waits, then stops and frees. */
void pw_pool_free(pw_pool *p);
/* pthread_cond_init on the monotonic clock (timed waits take CLOCK_MONOTONIC times). */
void pw_cond_init_monotonic(pthread_cond_t *cv);
/* Starts fn(arg) on a detached thread: 0, or the pthread_create error number. */
int pw_thread_start_detached(void *(*fn)(void *), void *arg);
unsigned pw_cpu_count(void);
/* Available memory in bytes (MemAvailable, bounded by the cgroup limit), 0 if unknown. */
uint64_t pw_mem_available(void);

#ifdef __cplusplus
}
#endif
#endif
