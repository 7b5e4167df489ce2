/*
 * Growable byte buffers, hex/base64, sha256 and HMAC over OpenSSL, time and
 * size helpers.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "prewarm/util.h"

int pw_buf_reserve(pw_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, cap;
	uint8_t *p;

	if (need < b->len)
		return pw_error_set(PW_ENOMEM, "buffer size overflow");
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return pw_error_set(PW_ENOMEM, "out of memory (%zu bytes)", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int pw_buf_append(pw_buf *b, const void *data, size_t len)
{
	if (pw_buf_reserve(b, len) < 0)
		return PW_ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return 0;
}

int pw_buf_puts(pw_buf *b, const char *s) { return pw_buf_append(b, s, strlen(s)); }

int pw_buf_printf(pw_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return pw_error_set(PW_ERROR, "vsnprintf failed");
	if (pw_buf_reserve(b, (size_t)n) < 0)
		return PW_ENOMEM;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

uint8_t *pw_buf_detach(pw_buf *b, size_t *len_out)
{
	uint8_t *p = b->data;
	if (len_out)
		*len_out = b->len;
	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void pw_buf_clear(pw_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void pw_buf_free(pw_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- hashing ---- */

struct pw_sha256_ctx { EVP_MD_CTX *md; };

pw_sha256_ctx *pw_sha256_new(void)
{
	pw_sha256_ctx *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->md);
		free(c);
		return NULL;
	}
	return c;
}

void pw_sha256_update(pw_sha256_ctx *c, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(c->md, data, len);
}

void pw_sha256_final(pw_sha256_ctx *c, uint8_t out[PW_SHA256_LEN])
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(c->md, out, &n);
	EVP_MD_CTX_free(c->md);
	free(c);
}

void pw_sha256(const void *data, size_t len, uint8_t out[PW_SHA256_LEN])
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void pw_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int pw_hex_decode(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return pw_error_set(PW_EINVALID, "expected %zu hex digits", 2 * len);
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return pw_error_set(PW_EINVALID, "not a hex digit at %zu", 2 * i);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void pw_sha256_hex(const void *data, size_t len, char out[PW_SHA256_HEX_LEN + 1])
{
	uint8_t d[PW_SHA256_LEN];
	pw_sha256(data, len, d);
	pw_hex_encode(d, sizeof d, out);
}

void pw_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                        char out[PW_SHA256_HEX_LEN + 1])
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, (int)key_len, data, len, d, &n);
	pw_hex_encode(d, PW_SHA256_LEN, out);
}

bool pw_secure_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}

bool pw_is_sha256_hex(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == PW_SHA256_HEX_LEN;
}

/* ---- base64 ---- */

char *pw_base64_encode(const void *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[n] = 0;
	return out;
}

int pw_base64_decode(const char *s, uint8_t **out, size_t *out_len)
{
	size_t len = strlen(s), pad = 0;
	uint8_t *p;
	int n;

	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len % 4)
		return pw_error_set(PW_EINVALID, "base64 length %zu is not a multiple of 4", len);
	if (len && s[len - 1] == '=') pad++;
	if (len > 1 && s[len - 2] == '=') pad++;
	p = malloc(len / 4 * 3 + 1);
	if (!p)
		return pw_error_set(PW_ENOMEM, "out of memory");
	n = EVP_DecodeBlock(p, (const unsigned char *)s, (int)len);
	if (n < 0) {
		free(p);
		return pw_error_set(PW_EINVALID, "invalid base64");
	}
	*out = p;
	*out_len = (size_t)n - pad;
	p[*out_len] = 0;
	return 0;
}

/* ---- time ---- */

double pw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double pw_wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define NS_PER_S 1000000000L

struct timespec pw_timespec_of(double seconds)
{
	struct timespec ts = { 0, 0 };
	if (seconds > 0) {
		ts.tv_sec = (time_t)seconds;
		ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
		if (ts.tv_nsec >= NS_PER_S)
			ts.tv_nsec = NS_PER_S - 1;
	}
	return ts;
}

struct timespec pw_deadline_after(clockid_t clock, double seconds)
{
	struct timespec now, d = pw_timespec_of(seconds);
	clock_gettime(clock, &now);
	now.tv_sec += d.tv_sec;
	now.tv_nsec += d.tv_nsec;
	if (now.tv_nsec >= NS_PER_S) {
		now.tv_sec++;
		now.tv_nsec -= NS_PER_S;
	}
	return now;
}

const char *pw_fmt_duration(double s, char *buf, size_t n)
{
	if (s < 1e-3)
		snprintf(buf, n, "%.0f us", s * 1e6);
	else if (s < 1)
		snprintf(buf, n, "%.1f ms", s * 1e3);
	else
		snprintf(buf, n, "%.2f s", s);
	return buf;
}

const char *pw_fmt_bytes(uint64_t b, char *buf, size_t n)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, n, "%.1f %s", v, u[i]);
	return buf;
}

int pw_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mul = 1;

	if (!s || !*s)
		return pw_error_set(PW_EINVALID, "empty size");
	v = strtod(s, &end);
	if (end == s || v < 0 || !isfinite(v))
		return pw_error_set(PW_EINVALID, "invalid size '%s'", s);
	while (*end == ' ')
		end++;
	switch (tolower((unsigned char)*end)) {
	case 0: break;
	case 'b': mul = 1; end++; break;
	case 'k': mul = 1ull << 10; end++; break;
	case 'm': mul = 1ull << 20; end++; break;
	case 'g': mul = 1ull << 30; end++; break;
	case 't': mul = 1ull << 40; end++; break;
	default: return pw_error_set(PW_EINVALID, "invalid size unit in '%s'", s);
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (mul > 1 && (*end == 'b' || *end == 'B'))
		end++;
	if (*end)
		return pw_error_set(PW_EINVALID, "invalid size '%s' (e.g. 512MiB, 2G, 100000)", s);
	if (v * (double)mul > 1.8e19)
		return pw_error_set(PW_EINVALID, "size '%s' too large", s);
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

int pw_parse_duration(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return pw_error_set(PW_EINVALID, "empty duration");
	v = strtod(s, &end);
	if (end == s || v < 0 || !isfinite(v))
		return pw_error_set(PW_EINVALID, "invalid duration '%s'", s);
	if (strcmp(end, "ms") == 0)
		v /= 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		v *= 60;
	else if (*end && strcmp(end, "s") != 0)
		return pw_error_set(PW_EINVALID, "invalid duration '%s' (e.g. 2, 2s, 500ms)", s);
	*out = v;
	return 0;
}
