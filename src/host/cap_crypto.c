/*
 * The crypto family of host capabilities: crypto/v1/is_certificate_trusted, with OpenSSL
 * (Kubewarden's callback_handler/crypto.rs does it with webpki; the answers are the same).
 *
 * Payload (policy-sdk-rust crypto.rs, CertificateVerificationRequest):
 *   {"cert": {"encoding": "Pem"|"Der", "data": [bytes...]},
 *    "cert_chain": [Certificate...] | null,   the last one is the trust anchor, the
 *                                             others intermediates; null = the system's
 *                                             CA store (Kubewarden: Mozilla's roots)
 *    "not_after": "RFC 3339" | "" | null}     the time to verify at (null, "" = now)
 * Answer: {"trusted": true, "reason": ""} or {"trusted": false, "reason": R} with R one of
 * Kubewarden's: "Certificate is being used after its expiration date", "... before its
 * validity date", "Certificate is not trusted by the provided cert chain", or "Certificate
 * not trusted: <why>". Host errors: a certificate that does not parse, a malformed
 * not_after ("Timestamp not_after is not in RFC3339 format").
 *
 * As webpki: any extended key usage is accepted, the trust anchor's own validity dates
 * are not checked (an intermediate's are), and an anchor need not be self-signed. Of
 * several problems, the end entity's dates are reported first (webpki checks them before
 * it builds the path). Not cached (Kubewarden does not cache it either).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "host/hostcap.h"

#define REASON_EXPIRED "Certificate is being used after its expiration date"
#define REASON_NOT_YET "Certificate is being used before its validity date"
#define REASON_UNTRUSTED "Certificate is not trusted by the provided cert chain"
/* Bounds on what a request may carry. */
#define MAX_CHAIN 64
#define MAX_CERT_BYTES (1u << 20)

/* ---- decoding ------------------------------------------------------------------------- */

static const char *serde_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "map";
	case JSON_ARRAY: return "sequence";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "floating point";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/* A Certificate {"encoding","data"} into a pw_buf of bytes and *pem; NULL on success or
 * the reason (in why). */
static const char *decode_cert(const json_t *v, pw_buf *bytes, bool *pem, char *why, size_t n)
{
	if (!json_is_object(v)) {
		snprintf(why, n, "invalid type: %s, expected struct Certificate", serde_kind(v));
		return why;
	}
	json_t *enc = json_object_get(v, "encoding"), *data = json_object_get(v, "data");
	if (!enc) {
		snprintf(why, n, "missing field `encoding`");
		return why;
	}
	if (!json_is_string(enc) || (strcmp(json_string_value(enc), "Pem") && strcmp(json_string_value(enc), "Der"))) {
		snprintf(why, n, "unknown variant `%.64s`, expected `Der` or `Pem`",
		         json_is_string(enc) ? json_string_value(enc) : serde_kind(enc));
		return why;
	}
	*pem = !strcmp(json_string_value(enc), "Pem");
	if (!data) {
		snprintf(why, n, "missing field `data`");
		return why;
	}
	if (!json_is_array(data)) {
		snprintf(why, n, "invalid type: %s, expected a sequence", serde_kind(data));
		return why;
	}
	if (json_array_size(data) > MAX_CERT_BYTES) {
		snprintf(why, n, "certificate data larger than %u bytes", MAX_CERT_BYTES);
		return why;
	}
	size_t i;
	json_t *b;
	json_array_foreach(data, i, b) {
		if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 255) {
			if (json_is_integer(b))
				snprintf(why, n, "invalid value: integer `%lld`, expected u8", (long long)json_integer_value(b));
			else
				snprintf(why, n, "invalid type: %s, expected u8", serde_kind(b));
			return why;
		}
		uint8_t c = (uint8_t)json_integer_value(b);
		if (pw_buf_append(bytes, &c, 1) < 0) {
			snprintf(why, n, "host out of memory");
			return why;
		}
	}
	return NULL;
}

/* RFC 3339 ("2026-01-02T03:04:05Z", fractions, "+01:00" offsets) to seconds since the
 * epoch; false when malformed. */
static bool parse_rfc3339(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	s += 10;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return false;
	s++;
	if (sscanf(s, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
		return false;
	s += 8;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	long off = 0;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int oh, om;
		if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
			return false;
		off = (oh * 3600L + om * 60L) * (*s == '-' ? -1 : 1);
		s += 6;
	} else {
		return false;
	}
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
	                 .tm_sec = sec > 59 ? 59 : sec };
	*out = timegm(&tm) - off;
	return true;
}

/* ---- verification ----------------------------------------------------------------------- */

static X509 *parse_x509(const pw_buf *bytes, bool pem)
{
	const unsigned char *p = bytes->data ? bytes->data : (const unsigned char *)"";
	if (!pem)
		return d2i_X509(NULL, &p, (long)bytes->len);
	BIO *bio = BIO_new_mem_buf(p, (int)bytes->len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	return x;
}

static const char *openssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "cannot parse it";
}

/* What the verify callback saw: the first error of each kind, the end entity's apart. */
typedef struct verdict {
	X509 *anchor;
	int leaf_time;        /* X509_V_ERR_CERT_HAS_EXPIRED / NOT_YET_VALID at depth 0, or 0 */
	int issuer;           /* a path error (unknown issuer, bad signature), or 0 */
	int other_time;       /* a time error of an intermediate */
	int other;            /* anything else */
} verdict;

static int on_verify(int ok, X509_STORE_CTX *ctx)
{
	if (ok)
		return 1;
	verdict *v = X509_STORE_CTX_get_app_data(ctx);
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	bool is_time = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
	if (is_time && v->anchor && cur && depth > 0 && X509_cmp(cur, v->anchor) == 0)
		return 1;   /* webpki does not check the trust anchor's dates */
	if (is_time && depth == 0) {
		if (!v->leaf_time)
			v->leaf_time = err;
	} else if (is_time) {
		if (!v->other_time)
			v->other_time = err;
	} else if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	           err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE || err == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
	           err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	           err == X509_V_ERR_CERT_UNTRUSTED || err == X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE) {
		if (!v->issuer)
			v->issuer = err;
	} else if (!v->other) {
		v->other = err;
	}
	return 1;   /* go on: every problem is seen, the answer picks one as webpki would */
}

static int answer_verdict(pw_buf *answer, bool trusted, const char *reason)
{
	json_t *o = json_pack("{s:b,s:s}", "trusted", trusted, "reason", reason);
	int rc = pw_hostcap_answer_json(answer, o);
	json_decref(o);
	return rc;
}

static int verify(X509 *leaf, STACK_OF(X509) *chain, X509 *anchor, time_t at, pw_buf *answer)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	verdict v = { .anchor = anchor };
	int rc = 0;
	if (!store || !ctx) {
		rc = pw_hostcap_fail(answer, "host out of memory");
		goto out;
	}
	if (anchor)
		X509_STORE_add_cert(store, anchor);
	else
		X509_STORE_set_default_paths(store);
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	X509_STORE_set_verify_cb(store, on_verify);
	if (!X509_STORE_CTX_init(ctx, store, leaf, chain)) {
		rc = pw_hostcap_fail(answer, "cannot set up the verification: %s", openssl_reason());
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, at);
	X509_STORE_CTX_set_app_data(ctx, &v);
	if (X509_verify_cert(ctx) < 0) {
		rc = pw_hostcap_fail(answer, "cannot verify the certificate: %s", openssl_reason());
		goto out;
	}
	if (v.leaf_time)
		rc = answer_verdict(answer, false, v.leaf_time == X509_V_ERR_CERT_HAS_EXPIRED ? REASON_EXPIRED : REASON_NOT_YET);
	else if (v.issuer)
		rc = answer_verdict(answer, false, REASON_UNTRUSTED);
	else if (v.other_time)
		rc = answer_verdict(answer, false, v.other_time == X509_V_ERR_CERT_HAS_EXPIRED ? REASON_EXPIRED : REASON_NOT_YET);
	else if (v.other) {
		char reason[300];
		snprintf(reason, sizeof reason, "Certificate not trusted: %s", X509_verify_cert_error_string(v.other));
		rc = answer_verdict(answer, false, reason);
	} else {
		rc = answer_verdict(answer, true, "");
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* ---- the operation ---------------------------------------------------------------------- */

static int is_certificate_trusted(const pw_hostcap_call *c, pw_buf *answer)
{
	char why[256];
	if (!json_is_object(c->json)) {
		snprintf(why, sizeof why, "invalid type: %s, expected struct CertificateVerificationRequest",
		         serde_kind(c->json));
		return pw_hostcap_bad_payload(answer, why);
	}
	json_t *jcert = json_object_get(c->json, "cert"), *jchain = json_object_get(c->json, "cert_chain");
	json_t *jna = json_object_get(c->json, "not_after");
	if (!jcert)
		return pw_hostcap_bad_payload(answer, "missing field `cert`");
	if (jchain && !json_is_null(jchain) && !json_is_array(jchain)) {
		snprintf(why, sizeof why, "invalid type: %s, expected a sequence", serde_kind(jchain));
		return pw_hostcap_bad_payload(answer, why);
	}
	if (jna && !json_is_null(jna) && !json_is_string(jna)) {
		snprintf(why, sizeof why, "invalid type: %s, expected a string", serde_kind(jna));
		return pw_hostcap_bad_payload(answer, why);
	}
	size_t nchain = json_is_array(jchain) ? json_array_size(jchain) : 0;
	if (nchain > MAX_CHAIN) {
		snprintf(why, sizeof why, "cert_chain has %zu certificates, more than %d", nchain, MAX_CHAIN);
		return pw_hostcap_bad_payload(answer, why);
	}
	/* decode everything before any verification, as serde does */
	pw_buf leaf_bytes = PW_BUF_INIT;
	pw_buf *chain_bytes = calloc(nchain ? nchain : 1, sizeof *chain_bytes);
	bool leaf_pem = false, *chain_pem = calloc(nchain ? nchain : 1, sizeof *chain_pem);
	X509 *leaf = NULL, *anchor = NULL;
	STACK_OF(X509) *inter = sk_X509_new_null();
	int rc = 0;
	if (!chain_bytes || !chain_pem || !inter) {
		rc = pw_hostcap_fail(answer, "host out of memory");
		goto out;
	}
	if (decode_cert(jcert, &leaf_bytes, &leaf_pem, why, sizeof why)) {
		rc = pw_hostcap_bad_payload(answer, why);
		goto out;
	}
	for (size_t i = 0; i < nchain; i++) {
		if (decode_cert(json_array_get(jchain, i), &chain_bytes[i], &chain_pem[i], why, sizeof why)) {
			rc = pw_hostcap_bad_payload(answer, why);
			goto out;
		}
	}
	ERR_clear_error();
	if (!(leaf = parse_x509(&leaf_bytes, leaf_pem))) {
		rc = leaf_pem ? pw_hostcap_fail(answer, "Certificate PEM data is not valid: %s", openssl_reason())
		              : pw_hostcap_fail(answer, "Certificate is not a valid end-entity certificate: %s",
		                                openssl_reason());
		goto out;
	}
	time_t at = time(NULL);
	const char *na = json_string_value(jna);
	if (na && *na && !parse_rfc3339(na, &at)) {
		rc = pw_hostcap_fail(answer, "Timestamp not_after is not in RFC3339 format");
		goto out;
	}
	for (size_t i = 0; i < nchain; i++) {
		ERR_clear_error();
		X509 *x = parse_x509(&chain_bytes[i], chain_pem[i]);
		if (!x) {
			rc = pw_hostcap_fail(answer, "Certificate %s data is not valid: %s (cert_chain entry %zu)",
			                     chain_pem[i] ? "PEM" : "DER", openssl_reason(), i);
			goto out;
		}
		if (i + 1 == nchain)
			anchor = x;
		else if (!sk_X509_push(inter, x)) {
			X509_free(x);
			rc = pw_hostcap_fail(answer, "host out of memory");
			goto out;
		}
	}
	rc = verify(leaf, inter, anchor, at, answer);
out:
	X509_free(leaf);
	X509_free(anchor);
	sk_X509_pop_free(inter, X509_free);
	pw_buf_free(&leaf_bytes);
	for (size_t i = 0; chain_bytes && i < nchain; i++)
		pw_buf_free(&chain_bytes[i]);
	free(chain_bytes);
	free(chain_pem);
	return rc;
}

const pw_hostcap_op pw_hostcap_crypto_ops[] = {
	{ "crypto", "v1/is_certificate_trusted", is_certificate_trusted },
	{ NULL, NULL, NULL },
};
