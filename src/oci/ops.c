/*
 * Registry operations on top of the request primitive: blobs (HEAD, monolithic
 * POST + PUT upload, bounded GET with digest check), manifests (GET with every accepted
 * media type, HEAD, PUT, DELETE) and tag listing. Each names the registry, the
 * repository and the object in its errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "oci/internal.h"

#define MANIFEST_ACCEPT PW_OCI_MT_MANIFEST ", " PW_OCI_MT_INDEX ", " PW_OCI_MT_DOCKER_MANIFEST ", " PW_OCI_MT_DOCKER_LIST

static int need_registry(const pw_oci_ref *r)
{
	if (!r || r->scheme != PW_OCI_REGISTRY || !r->host || !r->repo)
		return pw_error_set(PW_EINVALID, "not a registry reference");
	return 0;
}

int pw_oci_blob_exists(pw_oci_client *c, const pw_oci_ref *r, const char *digest)
{
	char path[1024], what[600];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/blobs/%s", r->repo, digest);
	snprintf(what, sizeof what, "blob %s/%s@%s", r->host, r->repo, digest);
	pw_oci_req q = { .method = "HEAD", .host = r->host, .repo = r->repo, .path = path, .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0) {
		if (resp.status == 200)
			rc = 0;
		else if (resp.status == 404)
			rc = PW_ENOTFOUND;
		else
			rc = pw_oci__status_error(&q, &resp);
	}
	pw_oci__resp_clear(&resp);
	return rc;
}

/* Resolves a Location header against the URL the answer came from. */
static char *resolve_location(const char *loc, const char *base)
{
	char *out = NULL;
	if (strstr(loc, "://"))
		return strdup(loc);
	const char *p = strstr(base, "://");
	if (!p || loc[0] != '/')
		return NULL;
	size_t hl = strcspn(p + 3, "/?#");
	if (asprintf(&out, "%.*s%s", (int)((p + 3 - base) + hl), base, loc) < 0)
		return NULL;
	return out;
}

int pw_oci_blob_push(pw_oci_client *c, const pw_oci_ref *r, const void *data, size_t len, const char *digest)
{
	char dg[PW_OCI_DIGEST_LEN], path[1024], what[600];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	if (!digest) {
		pw_oci__digest_of(data, len, dg);
		digest = dg;
	}
	rc = pw_oci_blob_exists(c, r, digest);
	if (rc == 0) {
		pw_debug("oci", "registry %s: blob %s already in %s", r->host, digest, r->repo);
		return 0;
	}
	if (rc != PW_ENOTFOUND && rc != PW_EAUTH)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", r->repo);
	snprintf(what, sizeof what, "upload of blob %s to %s", digest, r->repo);
	pw_oci_req q = { .method = "POST", .host = r->host, .repo = r->repo, .push = true, .path = path,
	                 .has_body = true, .body = "", .body_len = 0, .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	if ((rc = pw_oci__request(c, &q, &resp)) < 0)
		goto out;
	if (resp.status != 202 && resp.status != 201) {
		rc = pw_oci__status_error(&q, &resp);
		goto out;
	}
	if (!resp.location[0]) {
		rc = pw_error_set(PW_ERROR, "registry %s: %s: no Location in the answer", r->host, what);
		goto out;
	}
	char *loc = resolve_location(resp.location, resp.url);
	if (!loc) {
		rc = pw_error_set(PW_ERROR, "registry %s: %s: unusable Location", r->host, what);
		goto out;
	}
	char *put_url = NULL;
	char *esc = curl_escape(digest, 0);
	if (asprintf(&put_url, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", esc ? esc : digest) < 0)
		put_url = NULL;
	curl_free(esc);
	free(loc);
	if (!put_url) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	pw_oci__resp_clear(&resp);
	pw_oci_req p = { .method = "PUT", .host = r->host, .repo = r->repo, .push = true, .abs_url = put_url,
	                 .has_body = true, .body = data, .body_len = len,
	                 .content_type = "application/octet-stream", .fd = -1, .what = what };
	rc = pw_oci__request(c, &p, &resp);
	if (rc == 0 && resp.status != 201 && resp.status != 204)
		rc = pw_oci__status_error(&p, &resp);
	free(put_url);
	if (rc == 0)
		pw_debug("oci", "registry %s: pushed blob %s (%zu bytes) to %s", r->host, digest, len, r->repo);
out:
	pw_oci__resp_clear(&resp);
	return rc;
}

int pw_oci_blob_get(pw_oci_client *c, const pw_oci_ref *r, const char *digest, uint64_t max, pw_buf *out)
{
	char path[1024], what[600], got[PW_OCI_DIGEST_LEN];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	if (!pw_oci_digest_valid(digest))
		return pw_error_set(PW_EINVALID, "blob digest '%.100s' is not sha256:<64 hex>", digest);
	snprintf(path, sizeof path, "/v2/%s/blobs/%s", r->repo, digest);
	snprintf(what, sizeof what, "blob %s/%s@%s", r->host, r->repo, digest);
	pw_buf_clear(out);
	pw_oci_req q = { .method = "GET", .host = r->host, .repo = r->repo, .path = path, .out = out,
	                 .max = max ? max : pw_oci__client_max_blob(c), .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0) {
		pw_oci__digest_of(out->data ? out->data : (const uint8_t *)"", out->len, got);
		if (strcmp(got, digest))
			rc = pw_error_set(PW_EMISMATCH, "registry %s: %s: digest mismatch (the bytes hash to %s)",
			                  r->host, what, got);
	}
	if (rc < 0)
		pw_buf_clear(out);
	pw_oci__resp_clear(&resp);
	return rc;
}

static void ref_what(const pw_oci_ref *r, char *what, size_t n)
{
	snprintf(what, n, "manifest %s/%s%s%s%s%s", r->host, r->repo, r->tag ? ":" : "", r->tag ? r->tag : "",
	         r->digest ? "@" : "", r->digest ? r->digest : "");
}

int pw_oci_manifest_get(pw_oci_client *c, const pw_oci_ref *r, pw_buf *body, char media_type[80],
                        char digest[PW_OCI_DIGEST_LEN])
{
	char path[1024], what[700], got[PW_OCI_DIGEST_LEN];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/manifests/%s", r->repo, r->digest ? r->digest : r->tag);
	ref_what(r, what, sizeof what);
	pw_buf_clear(body);
	pw_oci_req q = { .method = "GET", .host = r->host, .repo = r->repo, .path = path, .accept = MANIFEST_ACCEPT,
	                 .out = body, .max = pw_oci__client_max_manifest(c), .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == PW_EINVALID)
		pw_error_set(PW_EINVALID, "registry %s: %s is larger than the %zu-byte manifest limit", r->host, what,
		             (size_t)q.max);
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0) {
		pw_oci__digest_of(body->data ? body->data : (const uint8_t *)"", body->len, got);
		if (r->digest && strcmp(got, r->digest))
			rc = pw_error_set(PW_EMISMATCH, "registry %s: %s: digest mismatch (the manifest hashes to %s)",
			                  r->host, what, got);
		else if (!r->digest && pw_oci_digest_valid(resp.digest) && strcmp(got, resp.digest))
			rc = pw_error_set(PW_EMISMATCH, "registry %s: %s: digest mismatch (Docker-Content-Digest %s, the manifest hashes to %s)",
			                  r->host, what, resp.digest, got);
	}
	if (rc == 0) {
		if (digest)
			memcpy(digest, got, PW_OCI_DIGEST_LEN);
		if (media_type) {
			snprintf(media_type, 80, "%.79s", resp.content_type);
			media_type[strcspn(media_type, "; ")] = 0;
		}
	} else {
		pw_buf_clear(body);
	}
	pw_oci__resp_clear(&resp);
	return rc;
}

int pw_oci_manifest_head(pw_oci_client *c, const pw_oci_ref *r, char digest[PW_OCI_DIGEST_LEN])
{
	char path[1024], what[700];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/manifests/%s", r->repo, r->digest ? r->digest : r->tag);
	ref_what(r, what, sizeof what);
	pw_oci_req q = { .method = "HEAD", .host = r->host, .repo = r->repo, .path = path, .accept = MANIFEST_ACCEPT,
	                 .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0 && digest)
		snprintf(digest, PW_OCI_DIGEST_LEN, "%s", resp.digest);
	pw_oci__resp_clear(&resp);
	return rc;
}

int pw_oci_manifest_put(pw_oci_client *c, const pw_oci_ref *r, const char *media_type, const void *body,
                        size_t len, char digest[PW_OCI_DIGEST_LEN])
{
	char path[1024], what[700], got[PW_OCI_DIGEST_LEN];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	pw_oci__digest_of(body, len, got);
	snprintf(path, sizeof path, "/v2/%s/manifests/%s", r->repo, r->tag ? r->tag : r->digest);
	ref_what(r, what, sizeof what);
	pw_oci_req q = { .method = "PUT", .host = r->host, .repo = r->repo, .push = true, .path = path,
	                 .has_body = true, .body = body, .body_len = len, .content_type = media_type,
	                 .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 201 && resp.status != 200 && resp.status != 204)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0 && digest)
		memcpy(digest, got, PW_OCI_DIGEST_LEN);
	pw_oci__resp_clear(&resp);
	return rc;
}

/* DELETE /v2/<repo>/<kind>s/<digest>: a manifest or a blob (202 or 200). */
static int delete_by_digest(pw_oci_client *c, const pw_oci_ref *r, const char *kind, const char *digest)
{
	char path[1024], what[700];
	pw_oci_resp resp;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/%ss/%s", r->repo, kind, digest);
	snprintf(what, sizeof what, "%s %s/%s@%s", kind, r->host, r->repo, digest);
	pw_oci_req q = { .method = "DELETE", .host = r->host, .repo = r->repo, .push = true, .path = path,
	                 .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 202 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	pw_oci__resp_clear(&resp);
	return rc;
}

int pw_oci_manifest_delete(pw_oci_client *c, const pw_oci_ref *r, const char *digest)
{
	return delete_by_digest(c, r, "manifest", digest);
}

int pw_oci_tags_list(pw_oci_client *c, const pw_oci_ref *r, int (*cb)(const char *tag, void *payload),
                     void *payload)
{
	char path[1024], what[600];
	pw_oci_resp resp;
	pw_buf body = PW_BUF_INIT;
	int rc;
	if ((rc = need_registry(r)) < 0)
		return rc;
	snprintf(path, sizeof path, "/v2/%s/tags/list", r->repo);
	snprintf(what, sizeof what, "tags of %s/%s", r->host, r->repo);
	pw_oci_req q = { .method = "GET", .host = r->host, .repo = r->repo, .path = path, .out = &body,
	                 .max = 64u << 20, .fd = -1, .what = what };
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status == 404) {
		pw_oci__resp_clear(&resp);
		pw_buf_free(&body);
		return 0;  /* no repository yet: no tags */
	}
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0) {
		json_t *j = json_loadb((const char *)body.data, body.len, 0, NULL);
		json_t *tags = json_object_get(j, "tags"), *t;
		size_t i;
		if (!j || (tags && !json_is_array(tags) && !json_is_null(tags))) {
			rc = pw_error_set(PW_EINVALID, "registry %s: %s: invalid answer", r->host, what);
		} else if (json_is_array(tags)) {
			json_array_foreach(tags, i, t) {
				if (json_is_string(t) && cb(json_string_value(t), payload))
					break;
			}
		}
		json_decref(j);
	}
	pw_oci__resp_clear(&resp);
	pw_buf_free(&body);
	return rc;
}

int pw_oci_blob_delete(pw_oci_client *c, const pw_oci_ref *r, const char *digest)
{
	return delete_by_digest(c, r, "blob", digest);
}
