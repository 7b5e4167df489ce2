/*
 * cosign signatures of OCI artifacts, verified with public keys (the facts of sigstore-rs'
 * cosign client as Kubewarden's policy-fetcher uses it; see include/prewarm/sigstore.h).
 *
 *   fetch   the image's manifest (by digest when the reference has one, else by tag) gives
 *           the digest D that is verified; the manifest under the tag "sha256-HEX(D).sig"
 *           lists the signature layers; each simple signing layer's blob is downloaded
 *           (digest-checked by the client) and parsed; a layer that cannot be used is
 *           skipped with a debug line, as sigstore-rs does;
 *   check   a constraint holds when one layer's signature verifies under its key (OpenSSL
 *           EVP_DigestVerify over the payload's exact bytes) and the payload's `optional`
 *           object holds its annotations; allOf needs every constraint, anyOf
 *           minimumMatches of them.
 * Everything from the registry is outside input: sizes are bounded, JSON is parsed with
 * jansson, the signature is base64-decoded and handed to OpenSSL, never trusted before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "oci/internal.h"
#include "prewarm/sigstore.h"

#define MAX_PAYLOAD (1u << 20)       /* a simple signing payload is a few hundred bytes */
#define MAX_SIGNATURE_B64 (64u << 10) /* an RSA-8192 signature is ~1.4 KB in base64 */
#define MAX_LAYERS 256
/* The layers of one signature manifest are fetched within this time (each request has the
 * client's own timeouts); the rest are skipped, which can only make verification fail. */
#define LAYERS_BUDGET_SECONDS 60.0
#define MAX_MESSAGE 4096

/* ---- one layer ------------------------------------------------------------------------------ */

void pw_cosign_layer_clear(pw_cosign_layer *l)
{
	if (!l)
		return;
	free(l->payload);
	free(l->signature);
	for (size_t i = 0; i < l->noptional; i++) {
		free(l->optional[i].key);
		free(l->optional[i].value);
	}
	free(l->optional);
	memset(l, 0, sizeof *l);
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	return json_string_value(b ? json_object_get(v, b) : v);
}

/* sigstore-rs' Optional: creator (string) and timestamp (integer) are its own fields, the
 * rest is a map whose strings, numbers and booleans compare with annotations as text. */
static int parse_optional(pw_cosign_layer *l, json_t *opt)
{
	const char *key;
	json_t *v;
	if (!opt || json_is_null(opt))
		return 0;
	if (!json_is_object(opt))
		return pw_error_set(PW_EINVALID, "simple signing payload: `optional` is not an object");
	json_t *creator = json_object_get(opt, "creator"), *ts = json_object_get(opt, "timestamp");
	if (creator && !json_is_null(creator) && !json_is_string(creator))
		return pw_error_set(PW_EINVALID, "simple signing payload: optional.creator is not a string");
	if (ts && !json_is_null(ts) && !json_is_integer(ts))
		return pw_error_set(PW_EINVALID, "simple signing payload: optional.timestamp is not an integer");
	l->has_optional = true;
	if (!(l->optional = calloc(json_object_size(opt) + 1, sizeof *l->optional)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	json_object_foreach(opt, key, v) {
		if (!strcmp(key, "creator") || !strcmp(key, "timestamp"))
			continue;
		pw_cosign_optional *o = &l->optional[l->noptional++];
		if (!(o->key = strdup(key)))
			return pw_error_set(PW_ENOMEM, "out of memory");
		if (json_is_string(v))
			o->value = strdup(json_string_value(v));
		else if (json_is_number(v) || json_is_boolean(v))
			o->value = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	}
	return 0;
}

int pw_cosign_layer_parse(pw_cosign_layer *out, const uint8_t *payload, size_t len, const char *signature_b64)
{
	json_error_t jerr;
	json_t *j = NULL;
	int rc = 0;
	memset(out, 0, sizeof *out);
	if (len > MAX_PAYLOAD)
		return pw_error_set(PW_EINVALID, "simple signing payload: %zu bytes (at most %u)", len, MAX_PAYLOAD);
	if (!signature_b64)
		return pw_error_set(PW_EINVALID, "Missing signature annotation (%s)", PW_COSIGN_SIGNATURE_ANNOTATION);
	if (strlen(signature_b64) > MAX_SIGNATURE_B64 ||
	    pw_base64_decode(signature_b64, &out->signature, &out->signature_len) < 0 || !out->signature_len) {
		pw_cosign_layer_clear(out);
		return pw_error_set(PW_EINVALID, "the signature annotation is not base64");
	}
	if (!(j = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr))) {
		rc = pw_error_set(PW_EINVALID, "Cannot convert layer data into SimpleSigning object: %s (line %d)",
		                  jerr.text, jerr.line);
		goto out;
	}
	json_t *crit = json_object_get(j, "critical");
	const char *digest = str_at(crit, "image", "docker-manifest-digest");
	if (!json_is_object(j) || !json_is_object(crit) || !digest || !str_at(crit, "identity", "docker-reference") ||
	    !str_at(crit, "type", NULL)) {
		rc = pw_error_set(PW_EINVALID, "Cannot convert layer data into SimpleSigning object: it needs "
		                  "critical.identity.docker-reference, critical.image.docker-manifest-digest and "
		                  "critical.type strings");
		goto out;
	}
	snprintf(out->manifest_digest, sizeof out->manifest_digest, "%.*s", PW_OCI_DIGEST_LEN - 1, digest);
	if ((rc = parse_optional(out, json_object_get(j, "optional"))) < 0)
		goto out;
	if (!(out->payload = malloc(len + 1))) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(out->payload, payload, len);
	out->payload_len = len;
out:
	json_decref(j);
	if (rc < 0)
		pw_cosign_layer_clear(out);
	return rc;
}

int pw_cosign_signature_tag(char tag[80], const char *digest)
{
	if (!pw_oci_digest_valid(digest))
		return pw_error_set(PW_EINVALID, "not a sha256 digest: %s", digest);
	snprintf(tag, 80, "sha256-%s.sig", digest + 7);
	return 0;
}

/* ---- the signature check ----------------------------------------------------------------------- */

static const EVP_MD *digest_for(EVP_PKEY *p)
{
	char group[64] = "";
	switch (EVP_PKEY_base_id(p)) {
	case EVP_PKEY_ED25519:
		return NULL;
	case EVP_PKEY_EC:
		EVP_PKEY_get_group_name(p, group, sizeof group, NULL);
		if (!strcmp(group, "secp384r1"))
			return EVP_sha384();
		if (!strcmp(group, "secp521r1"))
			return EVP_sha512();
		return EVP_sha256();
	default:
		return EVP_sha256();
	}
}

static bool signed_by(const pw_cosign_layer *l, EVP_PKEY *p)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, digest_for(p), NULL, p) == 1 &&
	          EVP_DigestVerify(ctx, l->signature, l->signature_len, l->payload, l->payload_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* sigstore-rs' SimpleSigning::satisfies_annotations */
static bool has_annotations(const pw_cosign_layer *l, const pw_sig_constraint *k)
{
	if (!k->nannotations)
		return true;
	if (!l->has_optional || !l->noptional)
		return false;
	for (size_t i = 0; i < k->nannotations; i++) {
		bool found = false;
		for (size_t j = 0; j < l->noptional && !found; j++)
			found = !strcmp(l->optional[j].key, k->annotations[i].key) && l->optional[j].value &&
			        !strcmp(l->optional[j].value, k->annotations[i].value);
		if (!found)
			return false;
	}
	return true;
}

bool pw_cosign_layer_satisfies(const pw_cosign_layer *l, const pw_sig_constraint *k)
{
	return k->pkey && signed_by(l, k->pkey) && has_annotations(l, k);
}

static bool satisfied(const pw_cosign_sigs *s, const pw_sig_constraint *k)
{
	for (size_t i = 0; i < s->nlayers; i++)
		if (pw_cosign_layer_satisfies(&s->layers[i], k))
			return true;
	return false;
}

/* "allOf[0] (pubKey sha256:0123456789abcdef, owner alice, annotations {env: prod})" */
static void describe(pw_buf *b, const pw_sig_constraint *k)
{
	pw_buf_printf(b, "%s (pubKey %s", k->where, k->key_id);
	if (k->owner)
		pw_buf_printf(b, ", owner %s", k->owner);
	if (k->has_annotations) {
		pw_buf_puts(b, ", annotations {");
		for (size_t i = 0; i < k->nannotations; i++)
			pw_buf_printf(b, "%s%s: %s", i ? ", " : "", k->annotations[i].key, k->annotations[i].value);
		pw_buf_puts(b, "}");
	}
	pw_buf_puts(b, ")");
}

static int fail_with(pw_buf *b, const pw_cosign_sigs *s)
{
	if (s->nskipped)
		pw_buf_printf(b, " (%zu signature layer%s skipped: run with --log-level debug for why)", s->nskipped,
		              s->nskipped == 1 ? "" : "s");
	int rc = pw_error_set(PW_EMISMATCH, "%.*s", MAX_MESSAGE, b->data ? (const char *)b->data : "");
	pw_buf_free(b);
	return rc;
}

int pw_cosign_check(const pw_cosign_sigs *s, const pw_verify_config *cfg)
{
	pw_buf b = PW_BUF_INIT;
	size_t n = 0;
	if (!cfg->has_all_of && !cfg->has_any_of)
		return pw_error_set(PW_EINVALID, "Image verification failed: no signatures to verify");
	if (cfg->has_all_of) {
		for (size_t i = 0; i < cfg->nall_of; i++) {
			if (satisfied(s, &cfg->all_of[i]))
				continue;
			pw_buf_puts(&b, n++ ? "; " : "Image verification failed: missing signatures; "
			                             "the following constraints were not satisfied: ");
			describe(&b, &cfg->all_of[i]);
		}
		if (n)
			return fail_with(&b, s);
	}
	if (cfg->has_any_of) {
		pw_buf miss = PW_BUF_INIT;
		size_t ok = 0;
		for (size_t i = 0; i < cfg->nany_of; i++) {
			if (satisfied(s, &cfg->any_of[i])) {
				ok++;
				continue;
			}
			pw_buf_puts(&miss, n++ ? "; " : "");
			describe(&miss, &cfg->any_of[i]);
		}
		if (ok < cfg->minimum_matches) {
			pw_buf_printf(&b, "Image verification failed: minimum number of signatures not reached: needed %u, "
			              "got %zu; the following constraints were not satisfied: %s", cfg->minimum_matches, ok,
			              miss.data ? (const char *)miss.data : "");
			pw_buf_free(&miss);
			return fail_with(&b, s);
		}
		pw_buf_free(&miss);
	}
	return 0;
}

/* ---- fetching ---------------------------------------------------------------------------------- */

void pw_cosign_sigs_free(pw_cosign_sigs *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nlayers; i++)
		pw_cosign_layer_clear(&s->layers[i]);
	free(s->layers);
	free(s->image);
	free(s);
}

static const char *desc_annotation(const pw_oci_descriptor *d, const char *key)
{
	for (size_t i = 0; i < d->nannotations; i++)
		if (!strcmp(d->annotations[i].key, key))
			return d->annotations[i].value;
	return NULL;
}

/* One layer of the signature manifest: 0 and a usable layer in *l, or a reason to skip it. */
static int fetch_layer(pw_oci_client *c, const pw_oci_ref *sig, const pw_oci_descriptor *d,
                       const char *digest, pw_cosign_layer *l)
{
	pw_buf blob = PW_BUF_INIT;
	int rc;
	if (!d->media_type || strcmp(d->media_type, PW_COSIGN_MT_SIMPLESIGNING) != 0)
		return pw_error_set(PW_EINVALID, "layer doesn't have Sigstore media type (%s)",
		                    d->media_type ? d->media_type : "none");
	if (!desc_annotation(d, PW_COSIGN_SIGNATURE_ANNOTATION))
		return pw_error_set(PW_EINVALID, "Missing signature annotation (%s)", PW_COSIGN_SIGNATURE_ANNOTATION);
	if ((rc = pw_oci_blob_get(c, sig, d->digest, MAX_PAYLOAD, &blob)) < 0)
		return rc;
	rc = pw_cosign_layer_parse(l, blob.data ? blob.data : (const uint8_t *)"", blob.len,
	                           desc_annotation(d, PW_COSIGN_SIGNATURE_ANNOTATION));
	pw_buf_free(&blob);
	if (rc == 0 && strcmp(l->manifest_digest, digest) != 0) {
		rc = pw_error_set(PW_EMISMATCH, "Simple signing image digest mismatch: the payload signs %s, the image is %s",
		                  l->manifest_digest, digest);
		pw_cosign_layer_clear(l);
	}
	return rc;
}

static int fetch_signatures(pw_cosign_sigs *s, pw_oci_client *c, const pw_oci_ref *r)
{
	pw_oci_ref *sig = NULL;
	pw_oci_manifest *m = NULL;
	pw_buf body = PW_BUF_INIT;
	char tag[80], mt[80];
	int rc;
	if ((rc = pw_cosign_signature_tag(tag, s->digest)) < 0 || (rc = pw_oci_ref_with(&sig, r, tag, NULL)) < 0)
		return rc;
	rc = pw_oci_manifest_get(c, sig, &body, mt, NULL);
	if (rc == PW_ENOTFOUND) {
		rc = pw_error_set(PW_ENOTFOUND, "no signatures found for image: %s (no tag %s)", s->image, tag);
		goto out;
	}
	if (rc < 0 || (rc = pw_oci_manifest_parse(&m, body.data, body.len, mt)) < 0)
		goto out;
	if (m->kind != PW_OCI_KIND_MANIFEST) {
		rc = pw_error_set(PW_EINVALID, "%s:%s is an index, not a cosign signature manifest", r->repo, tag);
		goto out;
	}
	size_t n = m->nlayers < MAX_LAYERS ? m->nlayers : MAX_LAYERS;
	s->nskipped = m->nlayers - n;
	if (!(s->layers = calloc(n + 1, sizeof *s->layers))) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	double t0 = pw_now();
	for (size_t i = 0; i < n; i++) {
		if (pw_now() - t0 > LAYERS_BUDGET_SECONDS) {
			pw_warn("sigstore", "%s: %zu signature layers not fetched: over the %.0f s budget", s->image, n - i,
			        LAYERS_BUDGET_SECONDS);
			s->nskipped += n - i;
			break;
		}
		int lrc = fetch_layer(c, sig, &m->layers[i], s->digest, &s->layers[s->nlayers]);
		if (lrc == 0) {
			s->nlayers++;
			continue;
		}
		if (lrc == PW_ENETWORK || lrc == PW_ETIMEOUT || lrc == PW_EAUTH || lrc == PW_ENOMEM) {
			rc = lrc;
			goto out;
		}
		pw_debug("sigstore", "%s: skipping signature layer %s: %s", s->image, m->layers[i].digest, pw_error_last());
		s->nskipped++;
	}
	pw_error_clear();
out:
	pw_oci_manifest_free(m);
	pw_buf_free(&body);
	pw_oci_ref_free(sig);
	return rc;
}

int pw_cosign_fetch(pw_cosign_sigs **out, pw_oci_client *c, const char *image)
{
	pw_oci_ref *r = NULL;
	pw_buf body = PW_BUF_INIT;
	int rc;
	*out = NULL;
	if ((rc = pw_oci_ref_parse(&r, image)) < 0)
		return pw_error_prefix("Verification only works with OCI images: Not a valid oci image");
	if (r->scheme != PW_OCI_REGISTRY) {
		pw_oci_ref_free(r);
		return pw_error_set(PW_EINVALID, "Verification only works with OCI images: %s is not a registry reference",
		                    image);
	}
	pw_cosign_sigs *s = calloc(1, sizeof *s);
	if (!s || !(s->image = strdup(image))) {
		free(s);
		pw_oci_ref_free(r);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	/* the digest of the bytes the registry serves (checked against the reference's digest) */
	rc = pw_oci_manifest_get(c, r, &body, NULL, s->digest);
	if (rc == 0)
		rc = fetch_signatures(s, c, r);
	pw_buf_free(&body);
	pw_oci_ref_free(r);
	if (rc < 0) {
		pw_cosign_sigs_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int pw_cosign_verify(pw_oci_client *c, const char *image, const pw_verify_config *cfg,
                     char digest[PW_OCI_DIGEST_LEN])
{
	pw_cosign_sigs *s = NULL;
	int rc = pw_cosign_fetch(&s, c, image);
	if (rc == 0)
		rc = pw_cosign_check(s, cfg);
	if (rc == 0) {
		pw_debug("sigstore", "%s (%s): verified, %zu signature layer%s", image, s->digest, s->nlayers,
		         s->nlayers == 1 ? "" : "s");
		if (digest)
			memcpy(digest, s->digest, PW_OCI_DIGEST_LEN);
	}
	pw_cosign_sigs_free(s);
	return rc;
}

int pw_cosign_verify_pinned(char **pinned, pw_oci_client *c, const char *ref, const pw_verify_config *cfg)
{
	pw_oci_ref *r = NULL;
	char digest[PW_OCI_DIGEST_LEN];
	int rc;
	*pinned = NULL;
	if ((rc = pw_oci_ref_parse(&r, ref)) < 0)
		return rc;
	if (r->scheme != PW_OCI_REGISTRY) {
		pw_oci_ref_free(r);
		return pw_error_set(PW_EINVALID, "%s cannot be verified: signature verification only works with "
		                    "policies from OCI registries", ref);
	}
	if ((rc = pw_cosign_verify(c, ref, cfg, digest)) == 0 &&
	    asprintf(pinned, "registry://%s/%s@%s", r->host, r->repo, digest) < 0) {
		*pinned = NULL;
		rc = pw_error_set(PW_ENOMEM, "out of memory");
	}
	pw_oci_ref_free(r);
	return rc;
}
