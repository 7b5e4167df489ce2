/*
 * Private to src/oci (and the registry cache tier): the client's request primitive and
 * small helpers shared by the OCI files. Not a stable API.
 */
#ifndef PW_OCI_INTERNAL_H
#define PW_OCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "prewarm/oci.h"
#include "prewarm/util.h"

bool pw_oci__tag_valid(const char *t);
/* The host to talk to for a reference host ("docker.io" -> "registry-1.docker.io"). */
const char *pw_oci__api_host(const char *host);

/* One registry request. The sink is a buffer (out, bounded by max) or a file (fd, with the
 * sha256 of the body computed on the fly). Bodies of error answers go to resp.err. */
typedef struct pw_oci_req {
	const char *method;        /* GET HEAD PUT POST PATCH DELETE */
	const char *host;          /* registry host[:port] (as in the reference) */
	const char *repo;          /* for the token scope */
	bool push;                 /* scope pull,push */
	const char *path;          /* "/v2/..." (query allowed) */
	const char *abs_url;       /* instead of path: an absolute URL (upload Location) */
	const char *accept;        /* Accept: value or NULL */
	const char *content_type;  /* for bodies */
	const void *body;
	size_t body_len;
	bool has_body;
	pw_buf *out;               /* buffer sink (may be NULL: body dropped) */
	uint64_t max;              /* bound for out / file; 0 = no bound */
	int fd;                    /* file sink when >= 0 (use -1 otherwise) */
	bool no_auth_retry;
	const char *what;          /* for messages, e.g. the reference */
} pw_oci_req;

typedef struct pw_oci_resp {
	long status;
	char content_type[128];
	char location[4096];
	char digest[PW_OCI_DIGEST_LEN];
	uint64_t content_length;
	bool has_content_length;
	bool creds_sent;           /* credentials (basic or token from credentials) were sent */
	uint8_t sha256[PW_SHA256_LEN]; /* of the body written to fd */
	uint64_t written;          /* body bytes written to out/fd */
	pw_buf err;                /* body of an error answer (bounded) */
	double retry_after;        /* Retry-After seconds, 0 if none */
	char url[4200];            /* the final URL, for messages */
	char www_auth[2048];       /* the WWW-Authenticate value */
} pw_oci_resp;

void pw_oci__resp_clear(pw_oci_resp *r);

/* Performs a request with retries, TLS choice and the auth dance. Returns 0 when an HTTP
 * answer came (any status: the caller judges resp.status), else PW_ENETWORK/PW_ETIMEOUT/
 * PW_EINVALID (too big) with the message set. */
int pw_oci__request(pw_oci_client *c, const pw_oci_req *req, pw_oci_resp *resp);

/* Turns a non-success answer into an error code + message naming the registry, the thing
 * (`what`) and the status: 404 -> PW_ENOTFOUND, 401/403 -> PW_EAUTH, other -> PW_ERROR. */
int pw_oci__status_error(const pw_oci_req *req, const pw_oci_resp *resp);

/* "sha256:<hex>" from raw bytes. */
void pw_oci__digest_of(const void *data, size_t len, char out[PW_OCI_DIGEST_LEN]);

/* Pulls a registry policy (ref already parsed). */
int pw_oci__pull_registry(pw_oci_client *c, const pw_oci_ref *r, const char *dest, pw_oci_pulled *out);

/* Copies settings between sources / credentials (client copies what it is given). */
int pw_oci__sources_merge(pw_oci_sources *dst, const pw_oci_sources *src);
int pw_oci__creds_merge(pw_oci_creds *dst, const pw_oci_creds *src);
/* The text of a Docker config.json (LEN bytes, not NUL-terminated) into C; FILE names it in
 * messages. PW_EINVALID naming the file and the key when malformed (fuzz/fuzz_docker_config.c). */
int pw_oci__creds_parse_docker_config(pw_oci_creds *c, const char *text, size_t len, const char *file);

uint64_t pw_oci__client_max_blob(const pw_oci_client *c);
size_t pw_oci__client_max_manifest(const pw_oci_client *c);

#endif
