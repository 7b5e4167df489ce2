/*
 * Per-thread last error and process-wide logging.
 *
 * Every failing function sets one message naming what failed (the call, errno,
 * path...); callers add context with pw_error_prefix(). Logging writes whole
 * lines with a single write(2) so lines from several threads never interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "prewarm/common.h"

#define PW_ERROR_MAX 1024

static _Thread_local char t_msg[PW_ERROR_MAX];
static _Thread_local int t_code;

const char *pw_error_code_str(int code)
{
	switch (code) {
	case PW_OK: return "ok";
	case PW_ERROR: return "error";
	case PW_ENOTFOUND: return "not found";
	case PW_EMISMATCH: return "mismatch";
	case PW_EINVALID: return "invalid";
	case PW_EUNSUPPORTED: return "unsupported";
	case PW_ETRAP: return "trap";
	case PW_ETIMEOUT: return "timeout";
	case PW_EAUTH: return "unauthorized";
	case PW_ENETWORK: return "network";
	case PW_EEXIT: return "exit";
	case PW_EIO: return "I/O";
	case PW_ENOMEM: return "out of memory";
	case PW_ECANCELED: return "canceled";
	default: return "unknown error";
	}
}

int pw_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t_msg, sizeof t_msg, fmt, ap);
	va_end(ap);
	t_code = code;
	return code;
}

int pw_error_set_errno(int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(t_msg, sizeof t_msg, fmt, ap);
	va_end(ap);
	n = strlen(t_msg);
	snprintf(t_msg + n, sizeof t_msg - n, ": %s", strerror(saved));
	t_code = code;
	errno = saved;
	return code;
}

int pw_error_prefix(const char *fmt, ...)
{
	char old[PW_ERROR_MAX];
	va_list ap;
	size_t n;

	memcpy(old, t_msg, sizeof old);
	va_start(ap, fmt);
	vsnprintf(t_msg, sizeof t_msg, fmt, ap);
	va_end(ap);
	n = strlen(t_msg);
	if (old[0])
		snprintf(t_msg + n, sizeof t_msg - n, ": %s", old);
	if (t_code == 0)
		t_code = PW_ERROR;
	return t_code;
}

const char *pw_error_last(void) { return t_msg; }
int pw_error_last_code(void) { return t_code; }
void pw_error_clear(void) { t_msg[0] = '\0'; t_code = 0; }

/* ---- logging ---- */

static pw_log_level g_level = PW_LOG_INFO;
static pw_log_format g_format = PW_LOG_TEXT;

void pw_log_configure(pw_log_level level, pw_log_format fmt)
{
	g_level = level;
	g_format = fmt;
}

int pw_log_level_parse(const char *s)
{
	static const char *names[] = { "trace", "debug", "info", "warn", "error" };
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return PW_LOG_WARN;
	return -1;
}

int pw_log_enabled(pw_log_level level) { return level >= g_level; }

static const char *level_name(pw_log_level l)
{
	static const char *n[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR" };
	return (unsigned)l < 5 ? n[l] : "INFO";
}

void pw_logv(pw_log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[4096], ts[40], line[8192];
	struct timespec now;
	struct tm tm;
	int n;

	if (level < g_level)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = (int)strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
	if (g_format == PW_LOG_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "timestamp", ts,
		                      "level", level_name(level), "target",
		                      component ? component : "prewarm", "message", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		n = snprintf(line, sizeof line, "%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		n = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, level_name(level),
		             component ? component : "prewarm", msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void pw_log(pw_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pw_logv(level, component, fmt, ap);
	va_end(ap);
}
