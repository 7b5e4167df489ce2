/*
 * The OCI client: references, sources.yml (TLS trust per host), Docker config.json
 * credentials, the WWW-Authenticate challenge (Basic, Bearer token), manifests, and
 * blob/manifest pull and push over libcurl against any OCI distribution registry.
 *
 * One pw_oci_client holds the shared curl state (connections, DNS, TLS sessions), the
 * credentials and the Bearer tokens cached per (registry, scope); it is thread-safe, so
 * one client serves parallel pulls. Every network call retries 5xx, 429 and network
 * errors with backoff (never a 4xx), has connect and total timeouts, and fails with a
 * message that names the registry, the reference and the HTTP status. Credentials are
 * never logged nor put into error messages.
 *
 * Also declared here (implemented in src/cache/registry.c): the registry tier of the
 * artifact cache, pw_cache_registry_new().
 */
#ifndef PREWARM_OCI_H
#define PREWARM_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PW_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define PW_OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define PW_OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define PW_OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define PW_OCI_MT_WASM_LAYER "application/vnd.wasm.content.layer.v1+wasm"
#define PW_OCI_MT_WASM_CONFIG "application/vnd.wasm.config.v1+json"
#define PW_OCI_MT_EMPTY "application/vnd.oci.empty.v1+json"
/* sha256 of "{}", the OCI empty descriptor's digest */
#define PW_OCI_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* "sha256:" + 64 hex + NUL */
#define PW_OCI_DIGEST_LEN 72

/* ---- references ---------------------------------------------------------------------- */

typedef enum pw_oci_scheme {
	PW_OCI_REGISTRY = 0, /* registry://host[:port]/repo[:tag][@sha256:...], or bare host/repo:tag */
	PW_OCI_HTTPS,        /* https://... (a plain download) */
	PW_OCI_HTTP,         /* http://... */
	PW_OCI_FILE,         /* file:///abs/path.wasm */
} pw_oci_scheme;

typedef struct pw_oci_ref {
	pw_oci_scheme scheme;
	char *host;    /* registry: "host[:port]" as written ("docker.io" for Docker Hub) */
	char *repo;    /* registry: "org/name" (Docker Hub single names get "library/") */
	char *tag;     /* registry: tag, "latest" when neither tag nor digest was given */
	char *digest;  /* registry: "sha256:<64 hex>" or NULL */
	char *url;     /* http/https: the URL as given */
	char *path;    /* file: the absolute path */
} pw_oci_ref;

/* Parses a policy reference strictly. PW_EINVALID naming the reference and what is wrong. */
int pw_oci_ref_parse(pw_oci_ref **out, const char *s);
/* A copy with the tag/digest replaced (tag or digest may be NULL; both NULL keeps none). */
int pw_oci_ref_with(pw_oci_ref **out, const pw_oci_ref *r, const char *tag, const char *digest);
/* "host/repo:tag@digest" (malloc'd), "url" or "file://path" for the other schemes. */
char *pw_oci_ref_str(const pw_oci_ref *r);
/* True when the tag may move (a tag and no digest). */
bool pw_oci_ref_is_mutable(const pw_oci_ref *r);
void pw_oci_ref_free(pw_oci_ref *r);
/* True when s is "sha256:" + 64 lower-case hex digits. */
bool pw_oci_digest_valid(const char *s);

/* ---- sources.yml ---------------------------------------------------------------------- */

/* Kubewarden's sources.yml: insecure_sources (HTTPS, then HTTPS unverified, then HTTP) and
 * source_authorities (extra CA certificates per host, PEM, from a Path or inline Data). */
typedef struct pw_oci_sources pw_oci_sources;

/* Loads a sources.yml (YAML or JSON). Path authorities are read now. PW_EINVALID/PW_EIO
 * naming the file, the key and the host. */
int pw_oci_sources_load(pw_oci_sources **out, const char *path);
/* Same from text; `name` is used in messages. */
int pw_oci_sources_parse(pw_oci_sources **out, const char *text, size_t len, const char *name);
int pw_oci_sources_new(pw_oci_sources **out);  /* empty */
int pw_oci_sources_add_insecure(pw_oci_sources *s, const char *host);
/* Appends PEM certificates for host (validated: PW_EINVALID if no certificate parses). */
int pw_oci_sources_add_ca_pem(pw_oci_sources *s, const char *host, const char *pem, size_t len);
int pw_oci_sources_add_ca_file(pw_oci_sources *s, const char *host, const char *path);
bool pw_oci_sources_is_insecure(const pw_oci_sources *s, const char *host);
/* The PEM bundle for host (NULL when none); valid while s lives. */
const char *pw_oci_sources_ca_pem(const pw_oci_sources *s, const char *host);
void pw_oci_sources_free(pw_oci_sources *s);

/* ---- credentials ---------------------------------------------------------------------- */

/* Registry credentials by host: a Docker config.json (auths.{host}.auth base64 "user:pass",
 * or username/password fields). */
typedef struct pw_oci_creds pw_oci_creds;

int pw_oci_creds_new(pw_oci_creds **out);
/* Reads a Docker config.json: `path` is the file, or a directory holding config.json
 * (Kubewarden's --docker-config-json-path). PW_EIO / PW_EINVALID naming the file and host. */
int pw_oci_creds_load_docker_config(pw_oci_creds *c, const char *path);
/* A mounted Kubernetes Secret: DIR/username and DIR/password (trailing newline dropped). */
int pw_oci_creds_load_secret_dir(pw_oci_creds *c, const char *host, const char *dir);
int pw_oci_creds_set(pw_oci_creds *c, const char *host, const char *user, const char *pass);
/* Borrowed pointers into c, or PW_ENOTFOUND. Docker Hub aliases are matched. */
int pw_oci_creds_find(const pw_oci_creds *c, const char *host, const char **user, const char **pass);
void pw_oci_creds_free(pw_oci_creds *c);

/* ---- WWW-Authenticate ----------------------------------------------------------------- */

typedef struct pw_oci_challenge {
	char scheme[16];   /* "Bearer" or "Basic" (as the server spelled it, compared case-insensitively) */
	char *realm, *service, *scope, *error;  /* NULL when absent */
} pw_oci_challenge;

/* Parses a WWW-Authenticate value (RFC 7235: several challenges, quoted strings with
 * backslash escapes, commas inside quotes). Picks the Bearer challenge if any, else Basic.
 * PW_EINVALID on a malformed header; PW_EUNSUPPORTED when neither scheme is offered. */
int pw_oci_challenge_parse(pw_oci_challenge *out, const char *header);
void pw_oci_challenge_clear(pw_oci_challenge *c);

/* ---- manifests ------------------------------------------------------------------------ */

typedef struct pw_oci_annotation {
	char *key, *value;
} pw_oci_annotation;

typedef struct pw_oci_descriptor {
	char *media_type;
	char digest[PW_OCI_DIGEST_LEN];
	uint64_t size;
	char *artifact_type;     /* NULL when absent */
	pw_oci_annotation *annotations;
	size_t nannotations;
	char *platform_os, *platform_arch; /* index entries; NULL when absent */
} pw_oci_descriptor;

typedef enum pw_oci_manifest_kind {
	PW_OCI_KIND_MANIFEST = 0,  /* OCI image manifest or Docker schema2 */
	PW_OCI_KIND_INDEX,         /* OCI image index or Docker manifest list */
} pw_oci_manifest_kind;

typedef struct pw_oci_manifest {
	pw_oci_manifest_kind kind;
	char *media_type;          /* from the body, else the Content-Type */
	char *artifact_type;
	pw_oci_descriptor config;  /* manifests only */
	pw_oci_descriptor *layers; /* layers, or an index's manifests */
	size_t nlayers;
	pw_oci_descriptor *subject; /* NULL when absent */
	pw_oci_annotation *annotations;
	size_t nannotations;
} pw_oci_manifest;

/* Parses a manifest or index. `content_type` (may be NULL) is used when the body has no
 * mediaType. PW_EINVALID naming the field that is wrong; PW_EUNSUPPORTED for schema1. */
int pw_oci_manifest_parse(pw_oci_manifest **out, const void *data, size_t len,
                          const char *content_type);
/* The value of an annotation, NULL when absent. */
const char *pw_oci_manifest_annotation(const pw_oci_manifest *m, const char *key);
void pw_oci_manifest_free(pw_oci_manifest *m);

/* ---- the client ----------------------------------------------------------------------- */

typedef struct pw_oci_client_opts {
	const pw_oci_sources *sources; /* copied in; NULL = no insecure hosts, no extra CAs */
	const pw_oci_creds *creds;     /* copied in; NULL = anonymous */
	double connect_timeout;        /* seconds; 0 = 10 */
	double timeout;                /* seconds per request; 0 = 300 */
	double low_speed_time;         /* abort a transfer slower than 1 KiB/s for this long; 0 = 30 */
	unsigned retries;              /* extra attempts on 5xx/429/network errors; 0 = 3, use
	                                  no_retry for none */
	bool no_retry;
	double backoff;                /* first retry delay in seconds (doubles); 0 = 0.25 */
	size_t max_manifest;           /* bytes; 0 = 4 MiB */
	uint64_t max_blob;             /* bytes; 0 = 1 GiB */
} pw_oci_client_opts;

typedef struct pw_oci_client pw_oci_client;

int pw_oci_client_new(pw_oci_client **out, const pw_oci_client_opts *opts);
/* The usual setup from Kubewarden's flags: --docker-config-json-path (a directory holding
 * config.json, or the file; NULL = anonymous) and --sources-path (NULL = none). `base` may
 * be NULL (defaults); its sources/creds are ignored. Errors name the file. */
int pw_oci_client_from_paths(pw_oci_client **out, const char *docker_config_path,
                             const char *sources_path, const pw_oci_client_opts *base);
void pw_oci_client_free(pw_oci_client *c);

/* What a pull got. */
typedef struct pw_oci_pulled {
	char digest[PW_OCI_DIGEST_LEN];          /* sha256 of the wasm bytes ("sha256:<hex>") */
	char manifest_digest[PW_OCI_DIGEST_LEN]; /* registry refs; "" otherwise */
	char manifest_media_type[80];
	uint64_t manifest_size;
	uint64_t size;                           /* wasm bytes */
	bool downloaded;                         /* false when dest already held these bytes */
} pw_oci_pulled;

/*
 * Pulls a policy module to `dest` (written atomically: a temp file in the same directory,
 * fsynced, renamed). Registry refs: fetch the manifest (an index picks the entry holding a
 * wasm layer), then the first layer of type application/vnd.wasm.content.layer.v1+wasm,
 * streamed to disk with its sha256 computed on the fly, checked against the layer digest
 * and the \0asm magic. When dest already holds the layer's bytes, no blob is downloaded.
 * http(s) refs: a plain download (\0asm checked); file refs: a copy.
 * Errors: PW_ENOTFOUND (names the reference), PW_EAUTH (names the registry and whether
 * credentials were sent), PW_EMISMATCH (digest), PW_EINVALID (not wasm, bad manifest, too
 * big), PW_ENETWORK/PW_ETIMEOUT. On failure dest is untouched.
 */
int pw_oci_pull(pw_oci_client *c, const char *ref, const char *dest, pw_oci_pulled *out);

typedef struct pw_oci_pull_job {
	const char *ref;        /* in */
	const char *dest;       /* in */
	int rc;                 /* out: 0 or a PW_E* code */
	char error[512];        /* out: the message when rc != 0 */
	pw_oci_pulled result;   /* out */
	double seconds;         /* out */
} pw_oci_pull_job;

/* Runs every job with at most max_parallel transfers at once (0 = 4). Returns 0 when
 * every job succeeded, else the first failed job's code (each job has its own rc). */
int pw_oci_pull_many(pw_oci_client *c, pw_oci_pull_job *jobs, size_t n, unsigned max_parallel);

/*
 * Publishes a wasm module as a Kubewarden-style OCI artifact: config blob
 * (application/vnd.wasm.config.v1+json), one layer application/vnd.wasm.content.layer.v1+wasm,
 * an OCI image manifest with the given annotations (may be NULL/0). Blobs already present
 * (HEAD) are not uploaded. `ref` must be a registry ref with a tag. manifest_digest (may be
 * NULL) receives the manifest's digest.
 */
int pw_oci_push_wasm(pw_oci_client *c, const char *ref, const uint8_t *wasm, size_t len,
                     const pw_oci_annotation *annotations, size_t nannotations,
                     char manifest_digest[PW_OCI_DIGEST_LEN]);

/* ---- lower level (used by the registry cache tier) ------------------------------------ */
/* `r` must be a registry ref; only host and repo are used for blobs. */

/* 0 when the blob exists, PW_ENOTFOUND when not. */
int pw_oci_blob_exists(pw_oci_client *c, const pw_oci_ref *r, const char *digest);
/* Deletes a blob (registries may answer 405 when deletes are off). */
int pw_oci_blob_delete(pw_oci_client *c, const pw_oci_ref *r, const char *digest);
/* Uploads (HEAD first: an existing blob is not sent again). digest is computed when NULL. */
int pw_oci_blob_push(pw_oci_client *c, const pw_oci_ref *r, const void *data, size_t len,
                     const char *digest);
/* Downloads a blob into out (at most max bytes, 0 = client max_blob) and checks its digest. */
int pw_oci_blob_get(pw_oci_client *c, const pw_oci_ref *r, const char *digest, uint64_t max,
                    pw_buf *out);
/* Fetches the manifest that r's digest (else tag) names, checks its digest when r has one.
 * media_type (may be NULL, 80 bytes) and digest (may be NULL) are filled. Accepts OCI and
 * Docker manifests and indexes. */
int pw_oci_manifest_get(pw_oci_client *c, const pw_oci_ref *r, pw_buf *body,
                        char media_type[80], char digest[PW_OCI_DIGEST_LEN]);
/* HEAD of a manifest: 0 and the digest, or PW_ENOTFOUND. */
int pw_oci_manifest_head(pw_oci_client *c, const pw_oci_ref *r, char digest[PW_OCI_DIGEST_LEN]);
/* PUTs a manifest under r's tag (or digest). digest (may be NULL) receives its digest. */
int pw_oci_manifest_put(pw_oci_client *c, const pw_oci_ref *r, const char *media_type,
                        const void *body, size_t len, char digest[PW_OCI_DIGEST_LEN]);
/* Deletes a manifest by digest (registries may answer 405 when deletes are off). */
int pw_oci_manifest_delete(pw_oci_client *c, const pw_oci_ref *r, const char *digest);
/* Calls cb for every tag of r's repository; cb returning non-zero stops. A missing
 * repository is an empty list. */
int pw_oci_tags_list(pw_oci_client *c, const pw_oci_ref *r,
                     int (*cb)(const char *tag, void *payload), void *payload);

#ifdef __cplusplus
}
#endif
#endif
