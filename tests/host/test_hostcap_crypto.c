/*
 * crypto/v1/is_certificate_trusted through both ABIs, with certificates this test makes
 * with OpenSSL (EC P-256 roots, intermediates and end entities with chosen validity
 * windows): the cases of Kubewarden's callback_handler/crypto.rs tests (trusted with and
 * without an intermediate, expired or not yet valid end entity with and without a chain,
 * a chain that does not sign it, no chain and an unknown issuer, a malformed not_after, an
 * expired root that is still a trust anchor, an expired intermediate), plus not_after
 * moving the verification time, DER encoding, and payloads that do not decode.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "host/hostcap_support.h"

#define DAY (24L * 3600L)

typedef struct cert {
	X509 *x;
	EVP_PKEY *key;
} cert;

static void cert_free(cert *c)
{
	X509_free(c->x);
	EVP_PKEY_free(c->key);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e)
		X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A certificate valid from now+from_days to now+to_days, signed by issuer (NULL: self). */
static cert make_cert(const char *cn, long from_days, long to_days, bool ca, const cert *issuer)
{
	static long serial = 1;
	cert c = { X509_new(), EVP_EC_gen("P-256") };
	X509_set_version(c.x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c.x), from_days * DAY);
	X509_gmtime_adj(X509_getm_notAfter(c.x), to_days * DAY);
	X509_NAME *name = X509_get_subject_name(c.x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : name);
	X509_set_pubkey(c.x, c.key);
	X509 *iss = issuer ? issuer->x : c.x;
	add_ext(c.x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	add_ext(c.x, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	add_ext(c.x, iss, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(c.x, iss, NID_authority_key_identifier, "keyid:always");
	if (!ca)
		add_ext(c.x, iss, NID_ext_key_usage, "serverAuth");
	X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256());
	return c;
}

/* {"encoding": "Pem"|"Der", "data": [bytes]} */
static json_t *cert_json(const cert *c, bool der)
{
	unsigned char *buf = NULL;
	long n;
	if (der) {
		n = i2d_X509(c->x, &buf);
	} else {
		BIO *b = BIO_new(BIO_s_mem());
		PEM_write_bio_X509(b, c->x);
		char *p;
		n = BIO_get_mem_data(b, &p);
		buf = OPENSSL_malloc((size_t)n);
		memcpy(buf, p, (size_t)n);
		BIO_free(b);
	}
	json_t *data = json_array();
	for (long i = 0; i < n; i++)
		json_array_append_new(data, json_integer(buf[i]));
	OPENSSL_free(buf);
	return json_pack("{s:s,s:o}", "encoding", der ? "Der" : "Pem", "data", data);
}

/* The request: cert, chain (NULL-terminated list, or NULL for null), not_after (NULL =
 * null). */
static char *request(const cert *leaf, const cert *const *chain, const char *not_after, bool der)
{
	json_t *jc = json_null();
	if (chain) {
		jc = json_array();
		for (const cert *const *p = chain; *p; p++)
			json_array_append_new(jc, cert_json(*p, der));
	}
	json_t *r = json_pack("{s:o,s:o,s:o}", "cert", cert_json(leaf, der), "cert_chain", jc, "not_after",
	                      not_after ? json_string(not_after) : json_null());
	char *s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}

static int check_answer(int wasi, pw_policy *p, const char *payload, int want_ok, const char *want, int line)
{
	int ok = -1;
	char *t = hc_call(p, "kubewarden", "crypto", "v1/is_certificate_trusted", payload, &ok);
	int good = t && ok == want_ok && !strcmp(t, want);
	if (!good)
		pw_test_fail(__FILE__, line, "%s: ok=%d \"%s\", expected ok=%d \"%s\"", hc_abi_name(wasi), ok,
		             t ? t : pw_error_last(), want_ok, want);
	free(t);
	return good;
}

#define TRUSTED "{\"trusted\":true,\"reason\":\"\"}"
#define UNTRUSTED(r) "{\"trusted\":false,\"reason\":\"" r "\"}"
#define EXPIRED UNTRUSTED("Certificate is being used after its expiration date")
#define NOT_YET UNTRUSTED("Certificate is being used before its validity date")
#define NOT_BY_CHAIN UNTRUSTED("Certificate is not trusted by the provided cert chain")

/* One request built from (leaf, chain, not_after), checked against want. */
#define CASE(leaf, chain, na, der, want_ok, want) do { \
	char *_req = request(leaf, chain, na, der); \
	int _g = check_answer(wasi, p, _req, want_ok, want, __LINE__); \
	free(_req); \
	if (!_g) \
		goto done; \
} while (0)

static void test_chains_and_dates(void)
{
	HC_BOTH_ABIS {
		const char *caps[] = { "crypto/v1/is_certificate_trusted" };
		pw_policy *p = hc_policy(wasi, caps, 1, NULL);
		CHECK_MSG(p, "%s", pw_error_last());
		cert root = make_cert("root.kubewarden.io", -730, 730, true, NULL);
		cert inter = make_cert("intermediate.kubewarden.io", -365, 730, true, &root);
		cert leaf = make_cert("endentity.kubewarden.io", -10, 10, false, &inter);
		cert leaf_r = make_cert("endentity.kubewarden.io", -10, 10, false, &root);
		cert expired = make_cert("expired.kubewarden.io", -365, -10, false, &inter);
		cert not_yet = make_cert("notyet.kubewarden.io", 10, 365, false, &root);
		cert root2 = make_cert("root2.kubewarden.io", -730, 730, true, NULL);
		cert old_root = make_cert("oldroot.kubewarden.io", -365, -10, true, NULL);
		cert inter_o = make_cert("intermediate.kubewarden.io", -365, 365, true, &old_root);
		cert leaf_o = make_cert("endentity.kubewarden.io", -365, 365, false, &inter_o);
		cert leaf_oo = make_cert("endentity.kubewarden.io", -365, 365, false, &old_root);
		cert old_inter = make_cert("oldintermediate.kubewarden.io", -365, -10, true, &root);
		cert leaf_oi = make_cert("endentity.kubewarden.io", -365, 365, false, &old_inter);
		const cert *ch_ir[] = { &inter, &root, NULL }, *ch_r[] = { &root, NULL }, *ch_r2[] = { &root2, NULL };
		const cert *ch_o[] = { &inter_o, &old_root, NULL }, *ch_oo[] = { &old_root, NULL };
		const cert *ch_oi[] = { &old_inter, &root, NULL };

		CASE(&leaf, ch_ir, NULL, false, 1, TRUSTED);                  /* with an intermediate */
		CASE(&leaf_r, ch_r, NULL, false, 1, TRUSTED);                 /* without */
		CASE(&leaf, ch_ir, NULL, true, 1, TRUSTED);                   /* DER */
		CASE(&leaf, ch_ir, "", false, 1, TRUSTED);                    /* "" = now */
		CASE(&expired, ch_ir, NULL, false, 1, EXPIRED);
		CASE(&expired, NULL, NULL, false, 1, EXPIRED);                /* dates come first */
		CASE(&not_yet, ch_r, NULL, false, 1, NOT_YET);
		CASE(&not_yet, NULL, NULL, false, 1, NOT_YET);
		CASE(&leaf, ch_r2, NULL, false, 1, NOT_BY_CHAIN);             /* another chain */
		CASE(&leaf, NULL, NULL, false, 1, NOT_BY_CHAIN);              /* system roots */
		CASE(&leaf_o, ch_o, NULL, false, 1, TRUSTED);                 /* expired root, still an anchor */
		CASE(&leaf_oo, ch_oo, NULL, false, 1, TRUSTED);
		CASE(&leaf_oi, ch_oi, NULL, false, 1, EXPIRED);               /* expired intermediate */
		/* not_after is the time verified at: in the past inside the window, or after it */
		CASE(&expired, ch_ir, "2000-01-01T00:00:00Z", false, 1, NOT_YET);
		char past[64];
		time_t t = time(NULL) - 100 * DAY;
		strftime(past, sizeof past, "%Y-%m-%dT%H:%M:%S.123456789+00:00", gmtime(&t));
		CASE(&expired, ch_ir, past, false, 1, TRUSTED);
		CASE(&leaf, ch_ir, "2999-01-01T01:00:00+01:00", false, 1, EXPIRED);
		CASE(&leaf, ch_ir, "malformed", false, 0,
		     "Callback evaluation failure: Timestamp not_after is not in RFC3339 format");
		CASE(&leaf, ch_ir, "2026-02-30T00:00:00Z", false, 0,
		     "Callback evaluation failure: Timestamp not_after is not in RFC3339 format");
done:
		cert_free(&root); cert_free(&inter); cert_free(&leaf); cert_free(&leaf_r); cert_free(&expired);
		cert_free(&not_yet); cert_free(&root2); cert_free(&old_root); cert_free(&inter_o);
		cert_free(&leaf_o); cert_free(&leaf_oo); cert_free(&old_inter); cert_free(&leaf_oi);
		pw_policy_free(p);
	}
}

static void test_bad_payloads(void)
{
	static const char *const cases[][2] = {
		{ "[]", "invalid type: sequence, expected struct CertificateVerificationRequest" },
		{ "{}", "missing field `cert`" },
		{ "{\"cert\":{\"encoding\":\"Base64\",\"data\":[]}}", "unknown variant `Base64`, expected `Der` or `Pem`" },
		{ "{\"cert\":{\"data\":[]}}", "missing field `encoding`" },
		{ "{\"cert\":{\"encoding\":\"Pem\"}}", "missing field `data`" },
		{ "{\"cert\":{\"encoding\":\"Pem\",\"data\":\"abc\"}}", "invalid type: string, expected a sequence" },
		{ "{\"cert\":{\"encoding\":\"Der\",\"data\":[1,256]}}", "invalid value: integer `256`, expected u8" },
		{ "{\"cert\":{\"encoding\":\"Der\",\"data\":[1,\"x\"]}}", "invalid type: string, expected u8" },
		{ "{\"cert\":{\"encoding\":\"Pem\",\"data\":[]},\"cert_chain\":{}}", "invalid type: map, expected a sequence" },
		{ "{\"cert\":{\"encoding\":\"Pem\",\"data\":[]},\"not_after\":5}", "invalid type: integer, expected a string" },
		{ "{\"cert\":{\"encoding\":\"Pem\",\"data\":[45,45]},\"cert_chain\":null,\"not_after\":null}",
		  "Callback evaluation failure: Certificate PEM data is not valid: " },
		{ "{\"cert\":{\"encoding\":\"Der\",\"data\":[48,3,2,1,0]},\"cert_chain\":null,\"not_after\":null}",
		  "Callback evaluation failure: Certificate is not a valid end-entity certificate: " },
	};
	HC_BOTH_ABIS {
		pw_policy *p = hc_policy(wasi, NULL, 0, NULL);
		CHECK(p);
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			int ok = -1;
			char *t = hc_call(p, "kubewarden", "crypto", "v1/is_certificate_trusted", cases[i][0], &ok);
			CHECK_MSG(t, "%s", pw_error_last());
			bool prefix = cases[i][1][strlen(cases[i][1]) - 1] == ' ';
			bool good = ok == 0 && (prefix ? !strncmp(t, cases[i][1], strlen(cases[i][1])) : !strcmp(t, cases[i][1]));
			CHECK_MSG(good, "%s: %s: ok=%d \"%s\", expected \"%s\"", hc_abi_name(wasi), cases[i][0], ok, t, cases[i][1]);
			free(t);
		}
		pw_policy_free(p);
	}
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_chains_and_dates),
		PW_TEST(test_bad_payloads),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
