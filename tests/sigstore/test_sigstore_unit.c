/*
 * Signature verification without a registry: Kubewarden's verification config parser
 * (what it accepts, what it refuses and how the message names it), cosign payload parsing,
 * a signature made by cosign itself (sigstore-rs' test vector) and the constraint logic
 * (allOf, anyOf + minimumMatches, annotations, tampered payloads) over layers signed here
 * with OpenSSL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cosign_helper.h"
#include "harness.h"
#include "prewarm/sigstore.h"

#define DIGEST_A "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
#define DIGEST_B "sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e"

/* sigstore-rs src/cosign/signature_layers.rs (build_correct_signature_layer_without_bundle):
 * a payload signed by cosign with this key. */
static const char rs_key[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\n"
	"OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==\n"
	"-----END PUBLIC KEY-----\n";
static const char rs_sig[] = "MEUCIQD6q/COgzOyW0YH1Dk+CCYSt4uAhm3FDHUwvPI55zwnlwIgE0ZK58ZOWpZw8YVmBapJhBqCfdPekIknimuO0xH8Jh8=";
static const char rs_payload[] =
	"{\"critical\":{\"identity\":{\"docker-reference\":\"registry-testing.svc.lan/busybox\"},\"image\":"
	"{\"docker-manifest-digest\":\"" DIGEST_A "\"},\"type\":\"cosign container image signature\"},\"optional\":null}";

/* ---- keys and signatures made here ----------------------------------------------------------- */

typedef struct key {
	EVP_PKEY *k;
	char pem[1024];
} key;

static int make_key(key *out, const char *type)
{
	memset(out, 0, sizeof *out);
	out->k = !strcmp(type, "ed25519") ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	       : !strcmp(type, "rsa") ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
	if (!out->k)
		return -1;
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, out->k);
	int n = BIO_read(b, out->pem, sizeof out->pem - 1);
	BIO_free(b);
	out->pem[n > 0 ? n : 0] = 0;
	return n > 0 ? 0 : -1;
}

static char *sign_b64(const key *k, const char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t n = sizeof sig;
	char group[32] = "";
	const EVP_MD *md = EVP_sha256();
	if (EVP_PKEY_base_id(k->k) == EVP_PKEY_ED25519)
		md = NULL;
	else if (EVP_PKEY_get_group_name(k->k, group, sizeof group, NULL) && (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")))
		md = EVP_sha384();
	char *out = NULL;
	if (EVP_DigestSignInit(ctx, NULL, md, NULL, k->k) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data, len) == 1)
		out = pw_base64_encode(sig, n);
	EVP_MD_CTX_free(ctx);
	return out;
}

/* A layer signed by k over a payload for `digest` with `optional` (JSON or NULL). */
static int signed_layer(pw_cosign_layer *l, const key *k, const char *digest, const char *optional)
{
	char *p = test_cosign_payload("registry.test/policy", digest, optional);
	char *s = sign_b64(k, p, strlen(p));
	int rc = p && s ? pw_cosign_layer_parse(l, (const uint8_t *)p, strlen(p), s) : -1;
	free(p);
	free(s);
	return rc;
}

static pw_cosign_sigs *sigs_of(pw_cosign_layer *layers, size_t n)
{
	pw_cosign_sigs *s = calloc(1, sizeof *s);
	s->image = strdup("registry.test/policy:v1");
	snprintf(s->digest, sizeof s->digest, "%s", DIGEST_A);
	s->layers = calloc(n + 1, sizeof *s->layers);
	memcpy(s->layers, layers, n * sizeof *layers);
	s->nlayers = n;
	return s;
}

static char *config_text(const char *all_of, const char *any_of)
{
	char *t = NULL;
	if (asprintf(&t, "{\"apiVersion\": \"v1\"%s%s%s%s}", all_of ? ", \"allOf\": " : "", all_of ? all_of : "",
	             any_of ? ", \"anyOf\": " : "", any_of ? any_of : "") < 0)
		return NULL;
	return t;
}

/* {"kind":"pubKey","key":"<pem>"[,"annotations":{...}]} with the PEM JSON-escaped */
static char *pubkey_entry(const key *k, const char *annotations)
{
	pw_buf b = PW_BUF_INIT;
	pw_buf_puts(&b, "{\"kind\": \"pubKey\", \"key\": \"");
	for (const char *p = k->pem; *p; p++)
		*p == '\n' ? pw_buf_puts(&b, "\\n") : pw_buf_append(&b, p, 1);
	pw_buf_printf(&b, "\"%s%s}", annotations ? ", \"annotations\": " : "", annotations ? annotations : "");
	pw_buf_append(&b, "", 1);
	return (char *)pw_buf_detach(&b, NULL);
}

/* ---- the config parser ------------------------------------------------------------------------ */

static void expect_refused(const char *yaml, int code, const char *a, const char *b)
{
	pw_verify_config *c = NULL;
	int rc = pw_verify_config_parse(&c, yaml, strlen(yaml), "verification.yml");
	CHECK_MSG(rc == code, "rc %d (%s), expected %d for: %s", rc, pw_error_last(), code, yaml);
	CHECK(c == NULL);
	CHECK_MSG(strstr(pw_error_last(), "verification.yml") && strstr(pw_error_last(), a) &&
	          (!b || strstr(pw_error_last(), b)), "message: %s", pw_error_last());
}

static void test_config_yaml(void)
{
	key k1, k2;
	pw_verify_config *c = NULL;
	CHECK_OK(make_key(&k1, "P-256"));
	CHECK_OK(make_key(&k2, "P-256"));
	pw_buf y = PW_BUF_INIT;
	pw_buf_puts(&y, "apiVersion: v1\nallOf:\n  - kind: pubKey\n    owner: alice\n    key: |\n");
	char *pem1 = strdup(k1.pem), *pem2 = strdup(k2.pem);
	for (char *line = strtok(pem1, "\n"); line; line = strtok(NULL, "\n"))
		pw_buf_printf(&y, "      %s\n", line);
	pw_buf_puts(&y, "    annotations:\n      env: prod\n      team: \"7\"\nanyOf:\n  minimumMatches: 2\n  signatures:\n"
	                "    - kind: pubKey\n      key: |\n");
	for (char *line = strtok(pem2, "\n"); line; line = strtok(NULL, "\n"))
		pw_buf_printf(&y, "        %s\n", line);
	free(pem1);
	free(pem2);
	CHECK_OK(pw_verify_config_parse(&c, (const char *)y.data, y.len, "verification.yml"));
	CHECK(c->has_all_of && c->has_any_of);
	CHECK_INT(c->nall_of, 1);
	CHECK_INT(c->nany_of, 1);
	CHECK_INT(c->minimum_matches, 2);
	CHECK_STR(c->all_of[0].owner, "alice");
	CHECK_INT(c->all_of[0].nannotations, 2);
	CHECK_STR(c->all_of[0].annotations[0].key, "env");
	CHECK_STR(c->all_of[0].annotations[1].value, "7");
	CHECK_STR(c->any_of[0].where, "anyOf.signatures[0]");
	CHECK(!c->any_of[0].has_annotations);
	CHECK(!strncmp(c->all_of[0].key_id, "sha256:", 7) && strlen(c->all_of[0].key_id) == 23);
	pw_verify_config_free(c);
	/* anyOf alone: minimumMatches defaults to 1 */
	char *e = pubkey_entry(&k1, NULL), *any = NULL;
	CHECK(asprintf(&any, "{\"signatures\": [%s]}", e) > 0);
	char *t = config_text(NULL, any);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v.json"));
	CHECK(!c->has_all_of && c->has_any_of && c->minimum_matches == 1);
	pw_verify_config_free(c);
	free(t);
	free(any);
	free(e);
	pw_buf_free(&y);
	EVP_PKEY_free(k1.k);
	EVP_PKEY_free(k2.k);
}

static void test_config_refused(void)
{
	key k;
	CHECK_OK(make_key(&k, "P-256"));
	char *e = pubkey_entry(&k, NULL), *t = NULL, *list = NULL;
	CHECK(asprintf(&list, "[%s]", e) > 0);
	expect_refused("apiVersion: v1\nallOf:\n  - kind: genericIssuer\n    issuer: https://token.actions.githubusercontent.com\n"
	               "    subject:\n      equal: https://github.com/x/y/.github/workflows/release.yml@refs/heads/main\n",
	               PW_EUNSUPPORTED, "allOf[0]: kind genericIssuer", "not supported");
	expect_refused("apiVersion: v1\nanyOf:\n  signatures:\n    - kind: githubAction\n      owner: kubewarden\n",
	               PW_EUNSUPPORTED, "anyOf.signatures[0]: kind githubAction", "not supported");
	expect_refused("apiVersion: v1\nallOf:\n  - kind: pgp\n    key: x\n", PW_EINVALID, "unknown kind `pgp`", NULL);
	expect_refused("allOf: []\n", PW_EINVALID, "missing field `apiVersion`", NULL);
	expect_refused("apiVersion: v2\nallOf: []\n", PW_EINVALID, "Not a supported configuration version", "\"v2\"");
	expect_refused("apiVersion: v1\n", PW_EINVALID, "missing signatures in both allOf and anyOf", NULL);
	expect_refused("apiVersion: v1\nallOf: []\nextra: 1\n", PW_EINVALID, "unknown field `extra`", NULL);
	expect_refused("apiVersion: v1\nallOf:\n  - kind: pubKey\n", PW_EINVALID, "allOf[0]: missing field `key`", NULL);
	expect_refused("apiVersion: v1\nallOf:\n  - kind: pubKey\n    key: not a key\n", PW_EINVALID, "allOf[0]",
	               "not a PEM public key");
	expect_refused("apiVersion: v1\nallOf: {kind: pubKey}\n", PW_EINVALID, "allOf must be a list", NULL);
	expect_refused("apiVersion: v1\nanyOf:\n  minimumMatches: 256\n  signatures: []\n", PW_EINVALID,
	               "minimumMatches must be an integer from 0 to 255", NULL);
	expect_refused("apiVersion: v1\nanyOf:\n  signatures: []\n  quorum: 1\n", PW_EINVALID, "unknown field `quorum`", NULL);
	expect_refused("apiVersion: v1\nanyOf: []\n", PW_EINVALID, "anyOf must be a map", NULL);
	expect_refused("", PW_EINVALID, "empty", NULL);
	expect_refused("apiVersion: v1\nallOf: [\n", PW_EINVALID, "verification.yml", NULL);
	t = config_text(list, NULL);
	/* a valid entry with a bad extra field, and an annotation that is not a string */
	char *bad = strdup(t);
	char *p = strstr(bad, "\"key\"");
	memcpy(p, "\"kee\"", 5);
	expect_refused(bad, PW_EINVALID, "unknown field `kee`", NULL);
	free(bad);
	free(e);
	e = pubkey_entry(&k, "{\"n\": 1}");
	free(list);
	free(t);
	CHECK(asprintf(&list, "[%s]", e) > 0);
	t = config_text(list, NULL);
	expect_refused(t, PW_EINVALID, "annotation `n` must be a string", NULL);
	free(t);
	free(list);
	free(e);
	EVP_PKEY_free(k.k);
}

static void test_config_load_missing_file(void)
{
	pw_verify_config *c = NULL;
	char path[600];
	snprintf(path, sizeof path, "%s/nope.yml", pw_test_tmpdir());
	CHECK(pw_verify_config_load(&c, path) < 0);
	CHECK_MSG(strstr(pw_error_last(), "nope.yml"), "message: %s", pw_error_last());
}

/* ---- payloads ---------------------------------------------------------------------------------- */

static void test_payload_parse(void)
{
	pw_cosign_layer l;
	const char *ok = "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":\""
	                 DIGEST_B "\"},\"type\":\"t\"},\"optional\":{\"env\":\"prod\",\"n\":1,\"b\":true,\"o\":{},"
	                 "\"creator\":\"me\",\"timestamp\":5}}";
	CHECK_OK(pw_cosign_layer_parse(&l, (const uint8_t *)ok, strlen(ok), "AAAA"));
	CHECK_STR(l.manifest_digest, DIGEST_B);
	CHECK(l.has_optional);
	CHECK_INT(l.noptional, 4); /* creator and timestamp are not annotations */
	CHECK_STR(l.optional[1].value, "1");
	CHECK_STR(l.optional[2].value, "true");
	CHECK(l.optional[3].value == NULL);
	CHECK_INT(l.signature_len, 3);
	pw_cosign_layer_clear(&l);
	static const struct { const char *payload, *sig, *msg; } bad[] = {
		{ "{}", "AAAA", "critical.image.docker-manifest-digest" },
		{ "not json", "AAAA", "Cannot convert layer data" },
		{ "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":1},\"type\":\"t\"}}", "AAAA", "docker-manifest-digest" },
		{ "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":\"d\"},\"type\":\"t\"},\"optional\":[]}", "AAAA", "`optional` is not an object" },
		{ "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":\"d\"},\"type\":\"t\"},\"optional\":{\"timestamp\":\"x\"}}", "AAAA", "timestamp" },
		{ "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":\"d\"},\"type\":\"t\"}}", NULL, "Missing signature annotation" },
		{ "{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{\"docker-manifest-digest\":\"d\"},\"type\":\"t\"}}", "!!notbase64", "not base64" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_INT(pw_cosign_layer_parse(&l, (const uint8_t *)bad[i].payload, strlen(bad[i].payload), bad[i].sig), PW_EINVALID);
		CHECK_MSG(strstr(pw_error_last(), bad[i].msg), "case %zu: %s", i, pw_error_last());
	}
	char tag[80];
	CHECK_OK(pw_cosign_signature_tag(tag, DIGEST_A));
	CHECK_STR(tag, "sha256-f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b.sig");
	CHECK_INT(pw_cosign_signature_tag(tag, "sha256:xyz"), PW_EINVALID);
}

/* A signature made by cosign (not by this code): sigstore-rs' test vector verifies. */
static void test_cosign_vector(void)
{
	pw_verify_config *c = NULL;
	pw_cosign_layer l;
	const char *keys[] = { rs_key };
	CHECK_OK(pw_verify_config_pubkeys(&c, keys, 1, NULL, 0));
	CHECK_OK(pw_cosign_layer_parse(&l, (const uint8_t *)rs_payload, strlen(rs_payload), rs_sig));
	CHECK(pw_cosign_layer_satisfies(&l, &c->all_of[0]));
	pw_cosign_sigs *s = sigs_of(&l, 1);
	CHECK_OK(pw_cosign_check(s, c));
	pw_cosign_sigs_free(s);
	/* one byte of the reference changed: the signature no longer holds */
	char *t = strdup(rs_payload);
	*strstr(t, "busybox") = 'B';
	CHECK_OK(pw_cosign_layer_parse(&l, (const uint8_t *)t, strlen(t), rs_sig));
	CHECK(!pw_cosign_layer_satisfies(&l, &c->all_of[0]));
	pw_cosign_layer_clear(&l);
	free(t);
	pw_verify_config_free(c);
}

/* ---- constraints --------------------------------------------------------------------------------- */

static void test_key_types(void)
{
	static const char *const types[] = { "P-256", "P-384", "rsa", "ed25519" };
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		key k, other;
		pw_cosign_layer l;
		pw_verify_config *c = NULL;
		CHECK_OK(make_key(&k, types[i]));
		CHECK_OK(make_key(&other, types[i]));
		const char *pem[] = { k.pem }, *opem[] = { other.pem };
		CHECK_OK(signed_layer(&l, &k, DIGEST_A, NULL));
		CHECK_OK(pw_verify_config_pubkeys(&c, pem, 1, NULL, 0));
		CHECK_MSG(pw_cosign_layer_satisfies(&l, &c->all_of[0]), "%s: own key does not verify", types[i]);
		pw_verify_config_free(c);
		CHECK_OK(pw_verify_config_pubkeys(&c, opem, 1, NULL, 0));
		CHECK_MSG(!pw_cosign_layer_satisfies(&l, &c->all_of[0]), "%s: another key verifies", types[i]);
		pw_verify_config_free(c);
		pw_cosign_layer_clear(&l);
		EVP_PKEY_free(k.k);
		EVP_PKEY_free(other.k);
	}
}

static void test_all_of_any_of(void)
{
	key k[3];
	pw_cosign_layer l[2];
	pw_verify_config *c = NULL;
	for (int i = 0; i < 3; i++)
		CHECK_OK(make_key(&k[i], "P-256"));
	CHECK_OK(signed_layer(&l[0], &k[0], DIGEST_A, "{\"env\": \"prod\", \"build\": 42}"));
	CHECK_OK(signed_layer(&l[1], &k[1], DIGEST_A, NULL));
	pw_cosign_sigs *s = sigs_of(l, 2);
	char *e[3], *list = NULL, *t = NULL;
	for (int i = 0; i < 3; i++)
		e[i] = pubkey_entry(&k[i], NULL);

	/* allOf k0,k1: ok; allOf k0,k1,k2: k2 missing, named */
	CHECK(asprintf(&list, "[%s, %s]", e[0], e[1]) > 0);
	t = config_text(list, NULL);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v"));
	CHECK_OK(pw_cosign_check(s, c));
	pw_verify_config_free(c), free(t), free(list);
	CHECK(asprintf(&list, "[%s, %s, %s]", e[0], e[1], e[2]) > 0);
	t = config_text(list, NULL);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v"));
	CHECK_INT(pw_cosign_check(s, c), PW_EMISMATCH);
	CHECK_MSG(strstr(pw_error_last(), "Image verification failed: missing signatures") &&
	          strstr(pw_error_last(), "allOf[2] (pubKey sha256:") && !strstr(pw_error_last(), "allOf[1]"),
	          "message: %s", pw_error_last());
	pw_verify_config_free(c), free(t);

	/* anyOf k0,k1,k2 with minimumMatches 2: ok; 3: needed 3, got 2 */
	char *any = NULL;
	CHECK(asprintf(&any, "{\"minimumMatches\": 2, \"signatures\": %s}", list) > 0);
	t = config_text(NULL, any);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v"));
	CHECK_OK(pw_cosign_check(s, c));
	pw_verify_config_free(c), free(t), free(any);
	CHECK(asprintf(&any, "{\"minimumMatches\": 3, \"signatures\": %s}", list) > 0);
	t = config_text(NULL, any);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v"));
	CHECK_INT(pw_cosign_check(s, c), PW_EMISMATCH);
	CHECK_MSG(strstr(pw_error_last(), "minimum number of signatures not reached: needed 3, got 2") &&
	          strstr(pw_error_last(), "anyOf.signatures[2]"), "message: %s", pw_error_last());
	pw_verify_config_free(c), free(t), free(any);

	/* allOf k0 and anyOf {k2} min 1: the anyOf part fails */
	char *one = NULL;
	CHECK(asprintf(&one, "[%s]", e[0]) > 0);
	CHECK(asprintf(&any, "{\"signatures\": [%s]}", e[2]) > 0);
	t = config_text(one, any);
	CHECK_OK(pw_verify_config_parse(&c, t, strlen(t), "v"));
	CHECK_INT(pw_cosign_check(s, c), PW_EMISMATCH);
	CHECK_MSG(strstr(pw_error_last(), "needed 1, got 0"), "message: %s", pw_error_last());
	pw_verify_config_free(c), free(t), free(any), free(one), free(list);

	/* annotations: env=prod and build=42 (a number, compared as text) hold on k0's layer only */
	pw_oci_annotation want[] = { { "env", "prod" }, { "build", "42" } };
	pw_oci_annotation wrong[] = { { "env", "staging" } };
	const char *k0[] = { k[0].pem }, *k1[] = { k[1].pem };
	CHECK_OK(pw_verify_config_pubkeys(&c, k0, 1, want, 2));
	CHECK_OK(pw_cosign_check(s, c));
	pw_verify_config_free(c);
	CHECK_OK(pw_verify_config_pubkeys(&c, k0, 1, wrong, 1));
	CHECK_INT(pw_cosign_check(s, c), PW_EMISMATCH);
	CHECK_MSG(strstr(pw_error_last(), "annotations {env: staging}"), "message: %s", pw_error_last());
	pw_verify_config_free(c);
	/* k1 signed with optional null: any required annotation fails */
	CHECK_OK(pw_verify_config_pubkeys(&c, k1, 1, want, 1));
	CHECK_INT(pw_cosign_check(s, c), PW_EMISMATCH);
	pw_verify_config_free(c);
	/* an empty annotations map is satisfied by anything */
	CHECK_OK(pw_verify_config_pubkeys(&c, k1, 1, want, 0));
	CHECK_OK(pw_cosign_check(s, c));
	pw_verify_config_free(c);
	CHECK_INT(pw_verify_config_pubkeys(&c, k1, 0, NULL, 0), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "Must provide at least one pub key"), "message: %s", pw_error_last());

	pw_cosign_sigs_free(s);
	for (int i = 0; i < 3; i++) {
		free(e[i]);
		EVP_PKEY_free(k[i].k);
	}
}

static void test_tampered(void)
{
	key k;
	pw_cosign_layer l;
	pw_verify_config *c = NULL;
	CHECK_OK(make_key(&k, "P-256"));
	char *p = test_cosign_payload("registry.test/policy", DIGEST_A, NULL);
	char *sig = sign_b64(&k, p, strlen(p));
	p[strstr(p, "policy") - p] = 'P'; /* same length, other bytes */
	CHECK_OK(pw_cosign_layer_parse(&l, (const uint8_t *)p, strlen(p), sig));
	const char *pem[] = { k.pem };
	CHECK_OK(pw_verify_config_pubkeys(&c, pem, 1, NULL, 0));
	CHECK(!pw_cosign_layer_satisfies(&l, &c->all_of[0]));
	pw_cosign_layer_clear(&l);
	pw_verify_config_free(c);
	free(p);
	free(sig);
	EVP_PKEY_free(k.k);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_config_yaml), PW_TEST(test_config_refused), PW_TEST(test_config_load_missing_file),
		PW_TEST(test_payload_parse), PW_TEST(test_cosign_vector), PW_TEST(test_key_types),
		PW_TEST(test_all_of_any_of), PW_TEST(test_tampered),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
