/*
 * Kubewarden's verification config v1 (crates/policy-fetcher/src/verify/config.rs): which
 * signatures a policy fetched from a registry must carry.
 *
 *   apiVersion: v1
 *   allOf:                       every entry must be satisfied
 *     - kind: pubKey
 *       owner: alice             optional, informational
 *       key: |                   a PEM public key
 *         -----BEGIN PUBLIC KEY-----
 *         ...
 *       annotations: {env: prod} optional: the signed payload's `optional` must hold them
 *   anyOf:                       at least minimumMatches (default 1) entries satisfied
 *     minimumMatches: 2
 *     signatures: [...]
 *
 * The file is YAML read by the project's one YAML reader (pw_yaml_to_json). As in
 * Kubewarden (serde deny_unknown_fields) an unknown key is an error, and a file with
 * neither allOf nor anyOf is refused. Keyless kinds (genericIssuer, githubAction) are
 * refused with PW_EUNSUPPORTED until Fulcio/Rekor verification exists, so a config that
 * asks for them never lets an unverified policy in. Keys are parsed here with OpenSSL so
 * a bad key is reported at start, naming its entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "oci/internal.h"
#include "prewarm/sigstore.h"

#define MAX_MINIMUM_MATCHES 255 /* Kubewarden's minimumMatches is a u8 */
#define MAX_SIGNATURES 1024

static const char *const keyless_kinds[] = { "genericIssuer", "githubAction" };

static int cmp_annotation(const void *a, const void *b)
{
	return strcmp(((const pw_oci_annotation *)a)->key, ((const pw_oci_annotation *)b)->key);
}

static void constraint_clear(pw_sig_constraint *k)
{
	free(k->owner);
	free(k->key);
	EVP_PKEY_free(k->pkey);
	for (size_t i = 0; i < k->nannotations; i++) {
		free(k->annotations[i].key);
		free(k->annotations[i].value);
	}
	free(k->annotations);
	memset(k, 0, sizeof *k);
}

/* Parses a PEM public key of a type cosign can sign with. */
static int parse_key(pw_sig_constraint *k, const char *pem, const char *what)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *p = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!p)
		return pw_error_set(PW_EINVALID, "%s: key is not a PEM public key (-----BEGIN PUBLIC KEY-----)", what);
	int id = EVP_PKEY_base_id(p);
	if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		EVP_PKEY_free(p);
		return pw_error_set(PW_EUNSUPPORTED, "%s: key type %s is not supported (EC P-256/P-384, RSA, Ed25519)",
		                    what, OBJ_nid2sn(id));
	}
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(p, &der);
	if (n <= 0) {
		EVP_PKEY_free(p);
		return pw_error_set(PW_EINVALID, "%s: key cannot be encoded", what);
	}
	char hex[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(der, (size_t)n, hex);
	OPENSSL_free(der);
	snprintf(k->key_id, sizeof k->key_id, "sha256:%.16s", hex);
	k->pkey = p;
	return 0;
}

static int set_annotations(pw_sig_constraint *k, const pw_oci_annotation *a, size_t n)
{
	k->has_annotations = true;
	if (!n)
		return 0;
	if (!(k->annotations = calloc(n, sizeof *k->annotations)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		k->annotations[i].key = strdup(a[i].key);
		k->annotations[i].value = strdup(a[i].value);
		k->nannotations++;
		if (!k->annotations[i].key || !k->annotations[i].value)
			return pw_error_set(PW_ENOMEM, "out of memory");
	}
	qsort(k->annotations, n, sizeof *k->annotations, cmp_annotation);
	return 0;
}

static int parse_annotations(pw_sig_constraint *k, json_t *v, const char *what)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return pw_error_set(PW_EINVALID, "%s: annotations must be a map of strings", what);
	size_t n = json_object_size(v), i = 0;
	pw_oci_annotation *a = calloc(n + 1, sizeof *a);
	const char *key;
	json_t *val;
	int rc = 0;
	if (!a)
		return pw_error_set(PW_ENOMEM, "out of memory");
	json_object_foreach(v, key, val) {
		if (!json_is_string(val)) {
			rc = pw_error_set(PW_EINVALID, "%s: annotation `%s` must be a string (quote it in YAML)", what, key);
			break;
		}
		a[i].key = (char *)key;
		a[i++].value = (char *)json_string_value(val);
	}
	if (rc == 0)
		rc = set_annotations(k, a, i);
	free(a);
	return rc;
}

static bool is_keyless(const char *kind)
{
	for (size_t i = 0; i < sizeof keyless_kinds / sizeof *keyless_kinds; i++)
		if (!strcmp(kind, keyless_kinds[i]))
			return true;
	return false;
}

static int parse_signature(pw_sig_constraint *k, json_t *e, const char *where, const char *origin)
{
	char what[600];
	const char *key;
	json_t *v;
	snprintf(what, sizeof what, "%s: %s", origin, where);
	snprintf(k->where, sizeof k->where, "%s", where);
	if (!json_is_object(e))
		return pw_error_set(PW_EINVALID, "%s: a signature must be a map with `kind`", what);
	const char *kind = json_string_value(json_object_get(e, "kind"));
	if (!kind)
		return pw_error_set(PW_EINVALID, "%s: missing field `kind` (pubKey)", what);
	if (is_keyless(kind))
		return pw_error_set(PW_EUNSUPPORTED, "%s: kind %s (keyless signatures: Fulcio certificates, Rekor) "
		                    "is not supported yet; only pubKey signatures can be verified", what, kind);
	if (strcmp(kind, "pubKey") != 0)
		return pw_error_set(PW_EINVALID, "%s: unknown kind `%s` (pubKey, genericIssuer, githubAction)", what, kind);
	k->kind = PW_SIG_PUBKEY;
	json_object_foreach(e, key, v) {
		if (!strcmp(key, "kind"))
			continue;
		if (!strcmp(key, "key")) {
			if (!json_is_string(v))
				return pw_error_set(PW_EINVALID, "%s: key must be a PEM string", what);
			if (!(k->key = strdup(json_string_value(v))))
				return pw_error_set(PW_ENOMEM, "out of memory");
		} else if (!strcmp(key, "owner")) {
			if (json_is_null(v))
				continue;
			if (!json_is_string(v))
				return pw_error_set(PW_EINVALID, "%s: owner must be a string", what);
			if (!(k->owner = strdup(json_string_value(v))))
				return pw_error_set(PW_ENOMEM, "out of memory");
		} else if (!strcmp(key, "annotations")) {
			int rc = parse_annotations(k, v, what);
			if (rc < 0)
				return rc;
		} else {
			return pw_error_set(PW_EINVALID, "%s: unknown field `%s` (pubKey takes key, owner, annotations)",
			                    what, key);
		}
	}
	if (!k->key)
		return pw_error_set(PW_EINVALID, "%s: missing field `key`", what);
	return parse_key(k, k->key, what);
}

static int parse_list(pw_sig_constraint **out, size_t *nout, json_t *list, const char *name,
                      const char *origin)
{
	char where[32];
	if (!json_is_array(list))
		return pw_error_set(PW_EINVALID, "%s: %s must be a list of signatures", origin, name);
	size_t n = json_array_size(list);
	if (n > MAX_SIGNATURES)
		return pw_error_set(PW_EINVALID, "%s: %s has %zu signatures (at most %d)", origin, name, n, MAX_SIGNATURES);
	if (!(*out = calloc(n + 1, sizeof **out)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof where, "%s[%zu]", name, i);
		*nout = i + 1;
		int rc = parse_signature(&(*out)[i], json_array_get(list, i), where, origin);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_any_of(pw_verify_config *c, json_t *v, const char *origin)
{
	const char *key;
	json_t *e, *sigs = NULL;
	c->minimum_matches = 1;
	if (!json_is_object(v))
		return pw_error_set(PW_EINVALID, "%s: anyOf must be a map with `signatures` (and `minimumMatches`)", origin);
	json_object_foreach(v, key, e) {
		if (!strcmp(key, "signatures")) {
			sigs = e;
		} else if (!strcmp(key, "minimumMatches")) {
			if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > MAX_MINIMUM_MATCHES)
				return pw_error_set(PW_EINVALID, "%s: anyOf.minimumMatches must be an integer from 0 to %d",
				                    origin, MAX_MINIMUM_MATCHES);
			c->minimum_matches = (unsigned)json_integer_value(e);
		} else {
			return pw_error_set(PW_EINVALID, "%s: anyOf: unknown field `%s` (minimumMatches, signatures)", origin, key);
		}
	}
	if (!sigs)
		return pw_error_set(PW_EINVALID, "%s: anyOf: missing field `signatures`", origin);
	return parse_list(&c->any_of, &c->nany_of, sigs, "anyOf.signatures", origin);
}

static int parse_tree(pw_verify_config *c, json_t *root, const char *origin)
{
	const char *key;
	json_t *v;
	int rc;
	if (!json_is_object(root))
		return pw_error_set(PW_EINVALID, "%s: a verification config is a map (apiVersion, allOf, anyOf)", origin);
	json_t *ver = json_object_get(root, "apiVersion");
	if (!ver)
		return pw_error_set(PW_EINVALID, "%s: missing field `apiVersion` (v1)", origin);
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "v1") != 0) {
		char *t = json_dumps(ver, JSON_ENCODE_ANY | JSON_COMPACT);
		rc = pw_error_set(PW_EINVALID, "%s: Not a supported configuration version: apiVersion %s (only v1)",
		                  origin, t ? t : "?");
		free(t);
		return rc;
	}
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "apiVersion"))
			continue;
		if (!strcmp(key, "allOf")) {
			if (json_is_null(v))
				continue;
			c->has_all_of = true;
			if ((rc = parse_list(&c->all_of, &c->nall_of, v, "allOf", origin)) < 0)
				return rc;
		} else if (!strcmp(key, "anyOf")) {
			if (json_is_null(v))
				continue;
			c->has_any_of = true;
			if ((rc = parse_any_of(c, v, origin)) < 0)
				return rc;
		} else {
			return pw_error_set(PW_EINVALID, "%s: unknown field `%s` (apiVersion, allOf, anyOf)", origin, key);
		}
	}
	if (!c->has_all_of && !c->has_any_of)
		return pw_error_set(PW_EINVALID, "%s: config is missing signatures in both allOf and anyOf", origin);
	return 0;
}

int pw_verify_config_parse(pw_verify_config **out, const char *text, size_t len, const char *origin)
{
	void *doc = NULL;
	int rc;
	*out = NULL;
	if (!origin)
		origin = "verification config";
	if ((rc = pw_yaml_to_json(&doc, text, len, origin)) < 0) {
		if (rc == PW_ENOTFOUND)
			return pw_error_set(PW_EINVALID, "%s: the verification config is empty", origin);
		return rc;
	}
	pw_verify_config *c = calloc(1, sizeof *c);
	if (!c) {
		json_decref(doc);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	rc = parse_tree(c, doc, origin);
	json_decref(doc);
	if (rc < 0) {
		pw_verify_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int pw_verify_config_load(pw_verify_config **out, const char *path)
{
	pw_buf b = PW_BUF_INIT;
	int rc;
	*out = NULL;
	if ((rc = pw_file_read(path, PW_VERIFY_CONFIG_MAX_BYTES, &b)) < 0)
		return pw_error_prefix("verification config");
	rc = pw_verify_config_parse(out, b.data ? (const char *)b.data : "", b.len, path);
	pw_buf_free(&b);
	return rc;
}

int pw_verify_config_pubkeys(pw_verify_config **out, const char *const *keys, size_t nkeys,
                             const pw_oci_annotation *annotations, size_t nannotations)
{
	*out = NULL;
	if (!nkeys)
		return pw_error_set(PW_EINVALID, "Must provide at least one pub key");
	pw_verify_config *c = calloc(1, sizeof *c);
	int rc = 0;
	if (!c || !(c->all_of = calloc(nkeys, sizeof *c->all_of))) {
		free(c);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	c->has_all_of = true;
	for (size_t i = 0; i < nkeys && rc == 0; i++) {
		pw_sig_constraint *k = &c->all_of[i];
		c->nall_of = i + 1;
		snprintf(k->where, sizeof k->where, "pub_keys[%zu]", i);
		if (!(k->key = strdup(keys[i])))
			rc = pw_error_set(PW_ENOMEM, "out of memory");
		else
			rc = parse_key(k, keys[i], k->where);
		if (rc == 0 && annotations)
			rc = set_annotations(k, annotations, nannotations);
	}
	if (rc < 0) {
		pw_verify_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void pw_verify_config_free(pw_verify_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nall_of; i++)
		constraint_clear(&c->all_of[i]);
	for (size_t i = 0; i < c->nany_of; i++)
		constraint_clear(&c->any_of[i]);
	free(c->all_of);
	free(c->any_of);
	free(c);
}
