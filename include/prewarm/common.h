/*
 * Prewarm's shared conventions: error codes, the per-thread last error, logging.
 *
 * Functions return int: 0 on success, a negative PW_E* code on failure, and set
 * a per-thread message (pw_error_last()) naming what failed: the call, errno,
 * path, module, policy. The last message set wins: a caller that passes a failure
 * on keeps the callee's message and adds its context with pw_error_prefix(); it
 * calls pw_error_set() only to replace the message with a better one (and code
 * that recovers from a failure calls pw_error_clear()). Messages have no newline.
 * Out-parameters come first and are owned by the caller; every *_free(NULL) is a no-op.
 */
#ifndef PREWARM_COMMON_H
#define PREWARM_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Codes are only ever added at the end. */
typedef enum pw_error_code {
	PW_OK = 0,
	PW_ERROR = -1,      /* generic failure; the message says what */
	PW_ENOTFOUND = -2,  /* not found (cache miss, 404, unknown policy/export) */
	PW_EMISMATCH = -3,  /* digest/hash/description/signature mismatch */
	PW_EINVALID = -4,   /* invalid input (bad wasm, bad config, bad JSON) */
	PW_EUNSUPPORTED = -5, /* valid but not supported (SIMD, components, OPA) */
	PW_ETRAP = -6,      /* the wasm code trapped */
	PW_ETIMEOUT = -7,   /* deadline passed / interrupted */
	PW_EAUTH = -8,      /* 401/403 */
	PW_ENETWORK = -9,   /* connect/TLS/transfer failure */
	PW_EEXIT = -10,     /* a WASI program called proc_exit (code in the instance) */
	PW_EIO = -11,       /* file system I/O failure */
	PW_ENOMEM = -12,
	PW_ECANCELED = -13, /* stopped on request (shutdown) */
} pw_error_code;

/* A short constant name for a code, e.g. "not found". */
const char *pw_error_code_str(int code);

/* Sets the calling thread's last error; returns `code` so one can write
 * `return pw_error_set(PW_EINVALID, "...")`. */
int pw_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like pw_error_set, appending ": strerror(errno)" (errno read at entry). */
int pw_error_set_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message: "<prefix>: <old message>". Returns the last code. */
int pw_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The calling thread's last message ("" when none). Valid until the next set. */
const char *pw_error_last(void);
int pw_error_last_code(void);
void pw_error_clear(void);

/* ---- logging ------------------------------------------------------------------------- */

typedef enum pw_log_level {
	PW_LOG_TRACE = 0, PW_LOG_DEBUG, PW_LOG_INFO, PW_LOG_WARN, PW_LOG_ERROR,
} pw_log_level;

typedef enum pw_log_format { PW_LOG_TEXT = 0, PW_LOG_JSON } pw_log_format;

/* Process-wide log settings (default: info, text, stderr). Thread-safe to log. */
void pw_log_configure(pw_log_level level, pw_log_format fmt);
/* Parses "trace|debug|info|warn|warning|error"; -1 if unknown. */
int pw_log_level_parse(const char *s);
int pw_log_enabled(pw_log_level level);
/* One line per call. `component` is a short tag ("engine", "cache", "oci", "policy:ID").
 * Text: "2026-11-29T21:00:00.123Z INFO  cache: message". JSON: {"timestamp","level","target","message"}. */
void pw_log(pw_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pw_logv(pw_log_level level, const char *component, const char *fmt, va_list ap);

#define pw_trace(c, ...) pw_log(PW_LOG_TRACE, c, __VA_ARGS__)
#define pw_debug(c, ...) pw_log(PW_LOG_DEBUG, c, __VA_ARGS__)
#define pw_info(c, ...)  pw_log(PW_LOG_INFO, c, __VA_ARGS__)
#define pw_warn(c, ...)  pw_log(PW_LOG_WARN, c, __VA_ARGS__)
#define pw_err(c, ...)   pw_log(PW_LOG_ERROR, c, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
