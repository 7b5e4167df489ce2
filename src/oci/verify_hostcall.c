/*
 * The `oci/v1/verify` and `oci/v2/verify` host capabilities: a policy asks whether an image
 * is signed by given public keys (Kubewarden's policy-evaluator:
 * src/runtimes/callback.rs decodes the request, src/callback_handler/sigstore_verification.rs
 * turns it into an allOf of one pubKey constraint per key with the same annotations, and
 * answers the SDK's VerificationResponse {"is_trusted": true, "digest": ...}, or an error).
 *
 * v1 is serde's externally tagged enum ({"SigstorePubKeyVerify": {...}}), v2 internally
 * tagged ({"type": "SigstorePubKeyVerify", ...}); unknown fields are ignored, as serde does
 * without deny_unknown_fields. Successful answers are cached for 60 s (as Kubewarden does,
 * to keep policy evaluations off the registry) keyed by a hash of image, keys and
 * annotations; failures are never cached.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/internal.h"
#include "prewarm/sigstore.h"

#define MAX_KEYS 64
#define MAX_ANNOTATIONS 64
#define CACHE_SLOTS 256

static const char *const keyless_types[] = {
	"SigstoreKeylessVerify", "SigstoreKeylessPrefixVerify", "SigstoreGithubActionsVerify",
	"SigstoreCertificateVerify",
};

/* ---- the answer cache ------------------------------------------------------------------------ */

typedef struct cached_answer {
	char key[PW_SHA256_HEX_LEN + 1];
	char digest[PW_OCI_DIGEST_LEN];
	double expires;
} cached_answer;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cached_answer cache[CACHE_SLOTS];

static bool cache_get(const char *key, char digest[PW_OCI_DIGEST_LEN])
{
	bool hit = false;
	double now = pw_now();
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < CACHE_SLOTS && !hit; i++)
		if (cache[i].expires > now && !strcmp(cache[i].key, key)) {
			memcpy(digest, cache[i].digest, PW_OCI_DIGEST_LEN);
			hit = true;
		}
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void cache_put(const char *key, const char *digest)
{
	size_t slot = 0;
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 1; i < CACHE_SLOTS; i++)
		if (cache[i].expires < cache[slot].expires)
			slot = i;
	snprintf(cache[slot].key, sizeof cache[slot].key, "%s", key);
	snprintf(cache[slot].digest, sizeof cache[slot].digest, "%s", digest);
	cache[slot].expires = pw_now() + PW_COSIGN_ANSWER_TTL_SECONDS;
	pthread_mutex_unlock(&cache_mu);
}

/* ---- the request ----------------------------------------------------------------------------- */

typedef struct verify_request {
	const char *image;
	const char *keys[MAX_KEYS];
	size_t nkeys;
	pw_oci_annotation annotations[MAX_ANNOTATIONS];
	size_t nannotations;
	bool has_annotations;
} verify_request;

static int request_fields(verify_request *r, json_t *o, const char *type)
{
	json_t *keys = json_object_get(o, "pub_keys"), *ann = json_object_get(o, "annotations"), *v;
	const char *k;
	size_t i;
	if (!json_is_object(o))
		return pw_error_set(PW_EINVALID, "%s: the request is not an object", type);
	if (!(r->image = json_string_value(json_object_get(o, "image"))))
		return pw_error_set(PW_EINVALID, "%s: missing field `image` (a string)", type);
	if (!json_is_array(keys))
		return pw_error_set(PW_EINVALID, "%s: missing field `pub_keys` (a list of PEM strings)", type);
	if (json_array_size(keys) > MAX_KEYS)
		return pw_error_set(PW_EINVALID, "%s: %zu pub_keys (at most %d)", type, json_array_size(keys), MAX_KEYS);
	json_array_foreach(keys, i, v) {
		if (!(r->keys[r->nkeys++] = json_string_value(v)))
			return pw_error_set(PW_EINVALID, "%s: pub_keys[%zu] is not a string", type, i);
	}
	if (ann && !json_is_null(ann)) {
		if (!json_is_object(ann) || json_object_size(ann) > MAX_ANNOTATIONS)
			return pw_error_set(PW_EINVALID, "%s: annotations must be a map of at most %d strings", type,
			                    MAX_ANNOTATIONS);
		r->has_annotations = true;
		json_object_foreach(ann, k, v) {
			if (!json_is_string(v))
				return pw_error_set(PW_EINVALID, "%s: annotation `%s` is not a string", type, k);
			r->annotations[r->nannotations].key = (char *)k;
			r->annotations[r->nannotations++].value = (char *)json_string_value(v);
		}
	}
	return 0;
}

static int check_type(const char *type)
{
	for (size_t i = 0; i < sizeof keyless_types / sizeof *keyless_types; i++)
		if (!strcmp(type, keyless_types[i]))
			return pw_error_set(PW_EUNSUPPORTED, "%s: keyless signature verification (Fulcio certificates, "
			                    "Rekor) is not supported by this host; only SigstorePubKeyVerify is", type);
	if (strcmp(type, "SigstorePubKeyVerify") != 0)
		return pw_error_set(PW_EINVALID, "unknown variant `%s`, expected one of SigstorePubKeyVerify, %s, %s, %s, %s",
		                    type, keyless_types[0], keyless_types[1], keyless_types[2], keyless_types[3]);
	return 0;
}

static int parse_request(verify_request *r, json_t *j, bool v2)
{
	const char *type;
	json_t *body = j;
	int rc;
	memset(r, 0, sizeof *r);
	if (!json_is_object(j))
		return pw_error_set(PW_EINVALID, "the request is not a JSON object");
	if (v2) {
		if (!(type = json_string_value(json_object_get(j, "type"))))
			return pw_error_set(PW_EINVALID, "missing field `type`");
	} else {
		if (json_object_size(j) != 1)
			return pw_error_set(PW_EINVALID, "expected an object with one key (SigstorePubKeyVerify or "
			                    "SigstoreKeylessVerify), got %zu keys", json_object_size(j));
		type = json_object_iter_key(json_object_iter(j));
		body = json_object_iter_value(json_object_iter(j));
		if (strcmp(type, "SigstorePubKeyVerify") && strcmp(type, "SigstoreKeylessVerify"))
			return pw_error_set(PW_EINVALID, "unknown variant `%s`, expected `SigstorePubKeyVerify` or "
			                    "`SigstoreKeylessVerify`", type);
	}
	if ((rc = check_type(type)) < 0)
		return rc;
	return request_fields(r, body, type);
}

/* sha256 over image, keys and sorted annotations, each NUL-terminated */
static void request_key(const char *image, const pw_verify_config *cfg, char key[PW_SHA256_HEX_LEN + 1])
{
	pw_buf b = PW_BUF_INIT;
	pw_buf_append(&b, image, strlen(image) + 1);
	for (size_t i = 0; i < cfg->nall_of; i++)
		pw_buf_append(&b, cfg->all_of[i].key, strlen(cfg->all_of[i].key) + 1);
	const pw_sig_constraint *k = &cfg->all_of[0];
	pw_buf_puts(&b, k->has_annotations ? "annotations" : "none");
	for (size_t i = 0; i < k->nannotations; i++) {
		pw_buf_append(&b, k->annotations[i].key, strlen(k->annotations[i].key) + 1);
		pw_buf_append(&b, k->annotations[i].value, strlen(k->annotations[i].value) + 1);
	}
	pw_sha256_hex(b.data, b.len, key);
	pw_buf_free(&b);
}

int pw_cosign_host_request(pw_verify_config **cfg, char **image, const char *operation, const uint8_t *payload,
                           size_t len)
{
	json_error_t jerr;
	verify_request r;
	bool v2 = !strcmp(operation, "v2/verify");
	int rc;
	*cfg = NULL;
	*image = NULL;
	if (!v2 && strcmp(operation, "v1/verify") != 0)
		return pw_error_set(PW_EUNSUPPORTED, "unknown operation oci/%s", operation);
	json_t *j = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return pw_error_set(PW_EINVALID, "oci/%s: the request is not JSON: %s (line %d)", operation, jerr.text,
		                    jerr.line);
	if ((rc = parse_request(&r, j, v2)) < 0) {
		pw_error_prefix("oci/%s", operation);
	} else if ((rc = pw_verify_config_pubkeys(cfg, r.keys, r.nkeys, r.has_annotations ? r.annotations : NULL,
	                                          r.nannotations)) < 0) {
		/* a request that decodes but cannot be verified (no key, a bad key) */
		char why[512];
		snprintf(why, sizeof why, "%s", pw_error_last());
		rc = pw_error_set(PW_ERROR, "oci/%s: %s", operation, why);
	} else if (!(*image = strdup(r.image))) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
	}
	if (rc < 0) {
		pw_verify_config_free(*cfg);
		*cfg = NULL;
	}
	json_decref(j);
	return rc;
}

int pw_cosign_host_verify(pw_oci_client *c, const char *operation, const uint8_t *payload, size_t len,
                          pw_buf *answer)
{
	pw_verify_config *cfg = NULL;
	char *image = NULL, key[PW_SHA256_HEX_LEN + 1], digest[PW_OCI_DIGEST_LEN];
	int rc;
	if ((rc = pw_cosign_host_request(&cfg, &image, operation, payload, len)) < 0)
		return rc;
	request_key(image, cfg, key);
	if (cache_get(key, digest)) {
		pw_debug("sigstore", "%s: verification answered from the cache", image);
	} else if ((rc = pw_cosign_verify(c, image, cfg, digest)) < 0) {
		/* PW_EINVALID is kept for payloads that do not decode (a bad reference, a bad
		 * signature manifest are failures of the verification) */
		if (rc == PW_EINVALID)
			rc = PW_ERROR;
		goto out;
	} else {
		cache_put(key, digest);
	}
	pw_buf_clear(answer);
	pw_buf_printf(answer, "{\"is_trusted\":true,\"digest\":\"%s\"}", digest);
out:
	pw_verify_config_free(cfg);
	free(image);
	return rc;
}
