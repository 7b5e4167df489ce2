/*
 * The time builtins: time.now_ns (one value per evaluation, as OPA fixes it for a query),
 * time.parse_rfc3339_ns (Go's time.Parse with layout RFC3339: fractional seconds with '.'
 * or ',', 'Z' or a numeric offset, every field range-checked) and time.date (year, month,
 * day of a nanosecond timestamp in UTC, the local zone, or an IANA zone read from the
 * system's TZif files). Zone rules beyond a file's last transition (the TZ footer string
 * of slim TZif files) are not applied: the last transition's offset is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/opa_internal.h"

#define NS_PER_SEC 1000000000LL
#define SECS_PER_DAY 86400LL
#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define MAX_TZIF_BYTES (1u << 20)
#define TZIF_HEADER_LEN 44

int pw_opa_time_now_ns(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	int64_t now;
	if (ctx && ctx->now_ns) {
		now = ctx->now_ns;
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
		if (ctx)
			ctx->now_ns = now;
	}
	*out = json_integer(now);
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long yy = (long long)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static bool is_leap(long long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(long long y, unsigned m)
{
	static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

int pw_opa_time_parse_rfc3339_ns(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "time.parse_rfc3339_ns";
	if (!json_is_string(args[0]))
		return pw_opa_type_error(name, 1, "string");
	const char *s = json_string_value(args[0]);
	size_t n = json_string_length(args[0]);
	unsigned Y, M, D, h, mi, sec;
	if (n < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
	    !digits(s + 8, 2, &D) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\" as \"2006-01-02T15:04:05Z07:00\": "
		                    "cannot parse", name, s);
	if (M < 1 || M > 12)
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": month out of range", name, s);
	if (D < 1 || D > days_in_month(Y, M))
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": day out of range", name, s);
	if (h > 23)
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": hour out of range", name, s);
	if (mi > 59)
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": minute out of range", name, s);
	if (sec > 59)
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": second out of range", name, s);
	size_t i = 19;
	long long frac = 0;
	if (i < n && (s[i] == '.' || s[i] == ',')) {
		size_t start = ++i;
		long long scale = NS_PER_SEC;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (s[i] - '0') * scale;
			}
			i++;
		}
		if (i == start)
			return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": cannot parse the fraction", name, s);
	}
	long long offset = 0;
	if (i < n && s[i] == 'Z') {
		i++;
	} else if (i + 6 <= n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		unsigned oh, om;
		if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": time zone offset out of range", name, s);
		offset = (long long)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\" as \"2006-01-02T15:04:05Z07:00\": "
		                    "cannot parse \"%s\" as \"Z07:00\"", name, s, s + i);
	}
	if (i != n)
		return pw_error_set(PW_EINVALID, "%s: parsing time \"%s\": extra text: \"%s\"", name, s, s + i);
	long long secs = days_from_civil(Y, M, D) * SECS_PER_DAY + h * 3600 + mi * 60 + sec - offset;
	/* int64 nanoseconds cover 1677-09-21 .. 2262-04-11 */
	if (secs > INT64_MAX / NS_PER_SEC - 1 || secs < INT64_MIN / NS_PER_SEC + 1)
		return pw_error_set(PW_EINVALID, "%s: time outside of valid range", name);
	*out = json_integer(secs * NS_PER_SEC + frac);
	return 0;
}

/* ---- zones --------------------------------------------------------------------------------- */

static int64_t be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	if (bytes == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* UTC offset (seconds) of zone file `data` at Unix time t. */
static int tzif_offset(const uint8_t *data, size_t len, int64_t t, long long *offset)
{
	if (len < TZIF_HEADER_LEN || memcmp(data, "TZif", 4) != 0)
		return PW_EINVALID;
	const uint8_t *h = data;
	int tbytes = 4;
	for (int pass = 0; pass < 2; pass++) {
		uint64_t isut = (uint64_t)be(h + 20, 4), isstd = (uint64_t)be(h + 24, 4), leap = (uint64_t)be(h + 28, 4);
		uint64_t timecnt = (uint64_t)be(h + 32, 4), typecnt = (uint64_t)be(h + 36, 4), charcnt = (uint64_t)be(h + 40, 4);
		uint64_t body = timecnt * (uint64_t)tbytes + timecnt + typecnt * 6 + charcnt +
		                leap * (uint64_t)(tbytes + 4) + isstd + isut;
		if ((uint64_t)(h - data) + TZIF_HEADER_LEN + body > len || typecnt == 0)
			return PW_EINVALID;
		if (pass == 0 && h[4] >= '2') {
			h += TZIF_HEADER_LEN + body;
			if ((size_t)(h - data) + TZIF_HEADER_LEN > len || memcmp(h, "TZif", 4) != 0)
				return PW_EINVALID;
			tbytes = 8;
			continue;
		}
		const uint8_t *times = h + TZIF_HEADER_LEN, *idx = times + timecnt * (uint64_t)tbytes;
		const uint8_t *types = idx + timecnt;
		uint64_t type = 0;
		for (uint64_t k = 0; k < typecnt; k++)
			if (!types[k * 6 + 4]) {   /* the first standard-time type before any transition */
				type = k;
				break;
			}
		for (uint64_t k = 0; k < timecnt && be(times + k * (uint64_t)tbytes, tbytes) <= t; k++)
			type = idx[k];
		if (type >= typecnt)
			return PW_EINVALID;
		*offset = be(types + type * 6, 4);
		return 0;
	}
	return PW_EINVALID;
}

static bool zone_name_ok(const char *z)
{
	if (!*z || z[0] == '/' || strstr(z, ".."))
		return false;
	for (const char *p = z; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("/_+-", *p)))
			return false;
	return true;
}

static int zone_offset(const char *zone, int64_t secs, long long *offset)
{
	*offset = 0;
	if (!*zone || !strcmp(zone, "UTC"))
		return 0;
	if (!strcmp(zone, "Local")) {
		time_t t = (time_t)secs;
		struct tm tm;
		if (!localtime_r(&t, &tm))
			return pw_error_set(PW_EINVALID, "time.date: timestamp out of range");
		*offset = tm.tm_gmtoff;
		return 0;
	}
	if (!zone_name_ok(zone))
		return pw_error_set(PW_EINVALID, "time.date: unknown time zone %s", zone);
	char path[512];
	snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, zone);
	pw_buf b = PW_BUF_INIT;
	if (pw_file_read(path, MAX_TZIF_BYTES, &b) < 0) {
		pw_buf_free(&b);
		return pw_error_set(PW_EINVALID, "time.date: unknown time zone %s", zone);
	}
	int rc = tzif_offset(b.data, b.len, secs, offset);
	pw_buf_free(&b);
	if (rc < 0)
		return pw_error_set(PW_EINVALID, "time.date: time zone %s: not a TZif file", zone);
	return 0;
}

static bool ns_value(const json_t *v, int64_t *ns)
{
	if (json_is_integer(v)) {
		*ns = json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		double f = json_real_value(v);
		if (f >= -9.2e18 && f <= 9.2e18) {
			*ns = (int64_t)f;
			return true;
		}
	}
	return false;
}

int pw_opa_time_date(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "time.date";
	int64_t ns;
	const char *zone = "UTC";
	const json_t *a = args[0];
	if (json_is_array(a)) {
		if (json_array_size(a) != 2 || !ns_value(json_array_get(a, 0), &ns) ||
		    !json_is_string(json_array_get(a, 1)))
			return pw_error_set(PW_EINVALID, "%s: operand 1 must be a number or [number, string]", name);
		zone = json_string_value(json_array_get(a, 1));
	} else if (!ns_value(a, &ns)) {
		return pw_opa_type_error(name, 1, "a number or [number, string]");
	}
	int64_t secs = ns / NS_PER_SEC - (ns % NS_PER_SEC < 0 ? 1 : 0);
	long long off;
	if (zone_offset(zone, secs, &off) < 0)
		return PW_EINVALID;
	long long local = secs + off;
	long long days = local / SECS_PER_DAY - (local % SECS_PER_DAY < 0 ? 1 : 0);
	long long y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	*out = json_pack("[III]", (json_int_t)y, (json_int_t)m, (json_int_t)d);
	return *out ? 0 : pw_error_set(PW_ENOMEM, "%s: out of memory", name);
}
