/*
 * Signature verification of OCI artifacts the way cosign signs them with a key pair, and
 * Kubewarden's verification config v1 (`--verification-path`, the `oci/v1/verify` and
 * `oci/v2/verify` host capabilities).
 *
 * cosign's format: the signature of an image whose manifest digest is sha256:HEX is an OCI
 * manifest under the tag `sha256-HEX.sig` of the same repository. Each of its layers of
 * type application/vnd.dev.cosign.simplesigning.v1+json is a "simple signing" payload,
 *   {"critical": {"identity": {"docker-reference": ...}, "image": {"docker-manifest-digest":
 *    "sha256:HEX"}, "type": "cosign container image signature"}, "optional": {...}|null}
 * and the layer's annotation dev.cosignproject.cosign/signature holds the base64 signature
 * of the payload's exact bytes (ECDSA P-256 with SHA-256 for cosign's keys; P-384 with
 * SHA-384, RSA PKCS#1 v1.5 with SHA-256 and Ed25519 keys are accepted too).
 *
 * Semantics follow Kubewarden's policy-fetcher (crates/policy-fetcher/src/verify/) on top of
 * sigstore-rs: a layer that cannot be used (wrong media type, unparsable payload, payload
 * digest other than the image's, no signature annotation) is skipped; a constraint is
 * satisfied when at least one layer is signed by its key and carries its annotations in
 * the payload's `optional` object; every allOf constraint must be satisfied and at least
 * minimumMatches of anyOf. Keyless constraints (Fulcio certificates, Rekor) are not
 * supported: a config naming them is refused when loaded.
 */
#ifndef PREWARM_SIGSTORE_H
#define PREWARM_SIGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/oci.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PW_COSIGN_MT_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define PW_COSIGN_SIGNATURE_ANNOTATION "dev.cosignproject.cosign/signature"
#define PW_COSIGN_CRITICAL_TYPE "cosign container image signature"
/* A verification config is read from a file of at most this size. */
#define PW_VERIFY_CONFIG_MAX_BYTES (1u << 20)

/* ---- the verification config ------------------------------------------------------------ */

typedef enum pw_sig_kind {
	PW_SIG_PUBKEY = 0,   /* pubKey: a PEM public key (+ owner, annotations) */
} pw_sig_kind;

/* One signature a policy must carry. */
typedef struct pw_sig_constraint {
	pw_sig_kind kind;
	char *owner;                      /* pubKey's optional owner (informational), NULL if none */
	char *key;                        /* the PEM text as given */
	void *pkey;                       /* the parsed key (EVP_PKEY *) */
	char key_id[24];                  /* "sha256:" + first 16 hex of the key's DER: for messages */
	pw_oci_annotation *annotations;   /* required payload annotations (sorted by key) */
	size_t nannotations;
	bool has_annotations;             /* false: `annotations` absent or null */
	char where[32];                   /* "allOf[0]", "anyOf.signatures[1]", "pub_keys[0]" */
} pw_sig_constraint;

typedef struct pw_verify_config {
	bool has_all_of, has_any_of;
	pw_sig_constraint *all_of;
	size_t nall_of;
	pw_sig_constraint *any_of;        /* anyOf.signatures */
	size_t nany_of;
	unsigned minimum_matches;         /* anyOf.minimumMatches (default 1, 0..255) */
} pw_verify_config;

/*
 * Parses a verification config (YAML or JSON):
 *   apiVersion: v1
 *   allOf: [{kind: pubKey, key: "-----BEGIN PUBLIC KEY-----...", owner: ..., annotations: {k: v}}]
 *   anyOf: {minimumMatches: 1, signatures: [...]}
 * Unknown keys are errors (as in Kubewarden); keys are parsed now. Keyless kinds
 * (genericIssuer, githubAction) give PW_EUNSUPPORTED naming the kind and the entry; every
 * other problem PW_EINVALID naming `origin`, the entry and the key.
 */
int pw_verify_config_parse(pw_verify_config **out, const char *text, size_t len, const char *origin);
/* Reads and parses a file (PW_ENOTFOUND / PW_EIO name the path). */
int pw_verify_config_load(pw_verify_config **out, const char *path);
/* The config of a host-capability call: an allOf of one pubKey per key, each with the same
 * annotations (NULL = none). PW_EINVALID when there is no key or one does not parse. */
int pw_verify_config_pubkeys(pw_verify_config **out, const char *const *keys, size_t nkeys,
                             const pw_oci_annotation *annotations, size_t nannotations);
void pw_verify_config_free(pw_verify_config *c);

/* ---- signatures ---------------------------------------------------------------------------- */

/* A simple signing payload's `optional` value, reduced to what annotations compare with. */
typedef struct pw_cosign_optional {
	char *key;
	char *value;                      /* strings as is, numbers and booleans as JSON text;
	                                     NULL for other types (never matches) */
} pw_cosign_optional;

/* One usable signature layer. */
typedef struct pw_cosign_layer {
	uint8_t *payload;                 /* the signed bytes */
	size_t payload_len;
	uint8_t *signature;               /* decoded from the annotation */
	size_t signature_len;
	char manifest_digest[PW_OCI_DIGEST_LEN]; /* critical.image.docker-manifest-digest */
	bool has_optional;                /* false: `optional` absent or null */
	pw_cosign_optional *optional;     /* its members other than creator and timestamp */
	size_t noptional;
} pw_cosign_layer;

typedef struct pw_cosign_sigs {
	char *image;                      /* the reference as given */
	char digest[PW_OCI_DIGEST_LEN];   /* the image's manifest digest */
	pw_cosign_layer *layers;
	size_t nlayers;
	size_t nskipped;                  /* layers of the signature manifest that were skipped */
} pw_cosign_sigs;

/*
 * Parses one layer: its payload bytes and the value of its signature annotation (NULL when
 * absent). PW_EINVALID saying what is wrong (the layer is then skipped by the caller).
 * *out is filled and owned by the caller (pw_cosign_layer_clear).
 */
int pw_cosign_layer_parse(pw_cosign_layer *out, const uint8_t *payload, size_t len,
                          const char *signature_b64);
void pw_cosign_layer_clear(pw_cosign_layer *l);

/* The signature tag of a manifest digest: "sha256-HEX.sig" (tag: 80 bytes). */
int pw_cosign_signature_tag(char tag[80], const char *digest);

/*
 * Resolves `image` (registry://host/repo:tag, host/repo:tag or ...@sha256:...) to its
 * manifest digest with the client (its credentials, sources.yml, TLS), fetches the
 * signature manifest and its simple signing layers, and keeps the layers that are usable
 * for that digest. PW_ENOTFOUND "no signatures found for image: IMAGE" when the signature
 * tag does not exist; PW_EINVALID for a reference that is not a registry image; network and
 * registry errors as the client sets them.
 */
int pw_cosign_fetch(pw_cosign_sigs **out, pw_oci_client *c, const char *image);
void pw_cosign_sigs_free(pw_cosign_sigs *s);

/* Whether one layer satisfies one constraint (signature checked with the key, then the
 * annotations against the payload's `optional`). */
bool pw_cosign_layer_satisfies(const pw_cosign_layer *l, const pw_sig_constraint *k);

/*
 * Checks fetched signatures against a config. PW_EMISMATCH with Kubewarden's message
 * ("Image verification failed: missing signatures" or "... minimum number of signatures not
 * reached: needed N, got M") followed by the constraints that were not satisfied.
 */
int pw_cosign_check(const pw_cosign_sigs *s, const pw_verify_config *cfg);

/* pw_cosign_fetch + pw_cosign_check; on success `digest` (may be NULL) receives the
 * verified manifest digest. Errors name the image. */
int pw_cosign_verify(pw_oci_client *c, const char *image, const pw_verify_config *cfg,
                     char digest[PW_OCI_DIGEST_LEN]);

/*
 * What a fetch under a verification config does before pulling: verifies `ref` and gives
 * the reference to pull pinned to the verified digest ("host/repo@sha256:...", malloc'd),
 * so the bytes pulled are those of the signed manifest (the pull checks the manifest's
 * digest and the layer's). Modules that are not in a registry (file://, http(s)://) cannot
 * be verified: PW_EINVALID saying so.
 */
int pw_cosign_verify_pinned(char **pinned, pw_oci_client *c, const char *ref, const pw_verify_config *cfg);

/* ---- the oci/v1/verify and oci/v2/verify host capabilities -------------------------------- */

/* Successful answers are reused for this long (Kubewarden caches them for 60 s). */
#define PW_COSIGN_ANSWER_TTL_SECONDS 60.0

/*
 * Answers a policy's `oci/v1/verify` or `oci/v2/verify` host call (`operation` is "v1/verify"
 * or "v2/verify"), with Kubewarden's payloads (kubewarden/policy-sdk-rust
 * src/host_capabilities/mod.rs):
 *   v1: {"SigstorePubKeyVerify": {"image": "...", "pub_keys": ["PEM", ...], "annotations": {...}|null}}
 *   v2: {"type": "SigstorePubKeyVerify", "image": "...", "pub_keys": [...], "annotations": ...}
 * On success `answer` receives {"is_trusted":true,"digest":"sha256:..."} (every key must
 * have signed, with the annotations) and 0 is returned. Every failure is a host error (as
 * in Kubewarden: there is no is_trusted false answer): the code and pw_error_last() say why:
 * PW_EINVALID only for a payload that does not decode to a request; keyless request types
 * (SigstoreKeylessVerify, ...PrefixVerify, ...GithubActionsVerify, SigstoreCertificateVerify)
 * PW_EUNSUPPORTED; other codes for verifications that fail. Successful answers are cached per
 * (image, keys, annotations) for PW_COSIGN_ANSWER_TTL_SECONDS. Thread-safe.
 */
int pw_cosign_host_verify(pw_oci_client *c, const char *operation, const uint8_t *payload, size_t len,
                          pw_buf *answer);
/* Its request parser alone: the config to verify with (*cfg) and the image (*image, malloc'd),
 * or the error pw_cosign_host_verify would answer: PW_EINVALID when the payload does not
 * decode to a request, PW_EUNSUPPORTED for keyless types, PW_ERROR when it decodes but
 * cannot be verified (no key, a key that does not parse). */
int pw_cosign_host_request(pw_verify_config **cfg, char **image, const char *operation, const uint8_t *payload,
                           size_t len);

#ifdef __cplusplus
}
#endif
#endif
