/*
 * Pulling policy modules: from a registry (manifest -> wasm layer, streamed to a temp
 * file beside the destination with its sha256 computed on the fly, checked against the
 * layer digest and the \0asm magic, then fsynced and renamed into place), from an
 * http(s) URL, or from a file. A destination that already holds the layer's bytes is kept
 * (the manifest is still fetched, so a moved tag is noticed). Many pulls run in parallel
 * on a bounded pool of threads sharing one client (and so its connections).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/internal.h"

static const uint8_t WASM_MAGIC[4] = { 0, 'a', 's', 'm' };

static int check_magic_fd(int fd, const char *what)
{
	uint8_t m[4];
	ssize_t n = pread(fd, m, 4, 0);
	if (n != 4 || memcmp(m, WASM_MAGIC, 4))
		return pw_error_set(PW_EINVALID, "%s is not a WebAssembly module (no \\0asm magic)", what);
	return 0;
}

/* sha256 of a file as "sha256:<hex>"; PW_ENOTFOUND when it does not exist. */
static int file_digest(const char *path, char out[PW_OCI_DIGEST_LEN], uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t buf[1 << 16], h[PW_SHA256_LEN];
	ssize_t n;
	if (fd < 0)
		return errno == ENOENT ? PW_ENOTFOUND : pw_error_set_errno(PW_EIO, "open %s", path);
	pw_sha256_ctx *s = pw_sha256_new();
	*size = 0;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		pw_sha256_update(s, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	close(fd);
	pw_sha256_final(s, h);
	if (n < 0)
		return pw_error_set_errno(PW_EIO, "read %s", path);
	memcpy(out, "sha256:", 7);
	pw_hex_encode(h, PW_SHA256_LEN, out + 7);
	return 0;
}

/* Finds the wasm layer in a manifest body. */
static int wasm_layer(const pw_oci_manifest *m, const pw_oci_descriptor **out)
{
	for (size_t i = 0; i < m->nlayers; i++)
		if (!strcmp(m->layers[i].media_type, PW_OCI_MT_WASM_LAYER)) {
			*out = &m->layers[i];
			return 0;
		}
	return PW_ENOTFOUND;
}

int pw_oci__pull_registry(pw_oci_client *c, const pw_oci_ref *r, const char *dest, pw_oci_pulled *out)
{
	pw_buf body = PW_BUF_INIT;
	pw_oci_manifest *m = NULL, *sub = NULL;
	const pw_oci_descriptor *layer = NULL;
	pw_oci_ref *blobref = NULL;
	char *refs = pw_oci_ref_str(r), mt[80] = "", dg[PW_OCI_DIGEST_LEN] = "", have[PW_OCI_DIGEST_LEN];
	uint64_t have_size = 0;
	pw_durable w = { .fd = -1 };
	int rc;

	if ((rc = pw_oci_manifest_get(c, r, &body, mt, dg)) < 0)
		goto out;
	if ((rc = pw_oci_manifest_parse(&m, body.data, body.len, mt)) < 0) {
		pw_error_prefix("registry %s: %s", r->host, refs);
		goto out;
	}
	out->manifest_size = body.len;
	if (m->kind == PW_OCI_KIND_INDEX) {
		/* an index: the first entry whose manifest holds a wasm layer */
		for (size_t i = 0; i < m->nlayers && i < 16 && !layer; i++) {
			pw_oci_ref *er = NULL;
			char emt[80], edg[PW_OCI_DIGEST_LEN];
			if ((rc = pw_oci_ref_with(&er, r, NULL, m->layers[i].digest)) < 0)
				goto out;
			rc = pw_oci_manifest_get(c, er, &body, emt, edg);
			pw_oci_ref_free(er);
			if (rc < 0)
				goto out;
			pw_oci_manifest_free(sub);
			sub = NULL;
			if (pw_oci_manifest_parse(&sub, body.data, body.len, emt) == 0 && sub->kind == PW_OCI_KIND_MANIFEST &&
			    wasm_layer(sub, &layer) == 0) {
				memcpy(dg, edg, sizeof dg);
				snprintf(mt, sizeof mt, "%s", sub->media_type ? sub->media_type : emt);
				out->manifest_size = body.len;
			}
		}
		if (!layer) {
			rc = pw_error_set(PW_EINVALID, "registry %s: %s: no entry of the index holds a %s layer", r->host, refs,
			                  PW_OCI_MT_WASM_LAYER);
			goto out;
		}
	} else if (wasm_layer(m, &layer) < 0) {
		rc = pw_error_set(PW_EINVALID, "registry %s: %s: the manifest has no %s layer (not a policy?)", r->host,
		                  refs, PW_OCI_MT_WASM_LAYER);
		goto out;
	}
	memcpy(out->manifest_digest, dg, sizeof dg);
	snprintf(out->manifest_media_type, sizeof out->manifest_media_type, "%s", mt);
	memcpy(out->digest, layer->digest, sizeof out->digest);
	out->size = layer->size;
	if (layer->size > pw_oci__client_max_blob(c)) {
		rc = pw_error_set(PW_EINVALID, "registry %s: %s: the wasm layer is %llu bytes, over the %llu-byte limit",
		                  r->host, refs, (unsigned long long)layer->size,
		                  (unsigned long long)pw_oci__client_max_blob(c));
		goto out;
	}
	if (file_digest(dest, have, &have_size) == 0 && !strcmp(have, layer->digest)) {
		pw_debug("oci", "%s: %s already holds %s", refs, dest, layer->digest);
		out->downloaded = false;
		rc = 0;
		goto out;
	}
	if ((rc = pw_durable_open(&w, dest, 0644)) < 0)
		goto out;
	if ((rc = pw_oci_ref_with(&blobref, r, NULL, layer->digest)) < 0)
		goto out;
	char path[1024], what[1024];
	snprintf(path, sizeof path, "/v2/%s/blobs/%s", r->repo, layer->digest);
	snprintf(what, sizeof what, "wasm layer %s of %s", layer->digest, refs);
	pw_oci_req q = { .method = "GET", .host = r->host, .repo = r->repo, .path = path, .fd = w.fd,
	                 .max = layer->size ? layer->size : pw_oci__client_max_blob(c), .what = what };
	pw_oci_resp resp;
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0) {
		char got[PW_OCI_DIGEST_LEN];
		memcpy(got, "sha256:", 7);
		pw_hex_encode(resp.sha256, PW_SHA256_LEN, got + 7);
		if (strcmp(got, layer->digest))
			rc = pw_error_set(PW_EMISMATCH, "registry %s: %s: digest mismatch: the manifest says %s, the bytes hash to %s",
			                  r->host, what, layer->digest, got);
		else if (layer->size && resp.written != layer->size)
			rc = pw_error_set(PW_EMISMATCH, "registry %s: %s: size mismatch: %llu bytes, the manifest says %llu",
			                  r->host, what, (unsigned long long)resp.written, (unsigned long long)layer->size);
		else
			rc = check_magic_fd(w.fd, what);
	}
	pw_oci__resp_clear(&resp);
	if (rc < 0)
		goto out;
	rc = pw_durable_commit(&w);
	out->downloaded = rc == 0;
out:
	if (w.fd >= 0)
		pw_durable_abort(&w);
	free(refs);
	pw_oci_ref_free(blobref);
	pw_oci_manifest_free(m);
	pw_oci_manifest_free(sub);
	pw_buf_free(&body);
	return rc;
}

static int pull_url(pw_oci_client *c, const pw_oci_ref *r, const char *dest, pw_oci_pulled *out)
{
	char host[512];
	const char *p = strstr(r->url, "://") + 3;
	size_t hl = strcspn(p, "/?#");
	pw_durable w;
	int rc;
	snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), p);
	if ((rc = pw_durable_open(&w, dest, 0644)) < 0)
		return rc;
	pw_oci_req q = { .method = "GET", .host = host, .abs_url = r->url, .fd = w.fd,
	                 .max = pw_oci__client_max_blob(c), .what = r->url, .no_auth_retry = true };
	pw_oci_resp resp;
	memset(&resp, 0, sizeof resp);
	rc = pw_oci__request(c, &q, &resp);
	if (rc == 0 && resp.status != 200)
		rc = pw_oci__status_error(&q, &resp);
	if (rc == 0)
		rc = check_magic_fd(w.fd, r->url);
	if (rc == 0) {
		memcpy(out->digest, "sha256:", 7);
		pw_hex_encode(resp.sha256, PW_SHA256_LEN, out->digest + 7);
		out->size = resp.written;
		rc = pw_durable_commit(&w);
		out->downloaded = rc == 0;
	} else {
		pw_durable_abort(&w);
	}
	pw_oci__resp_clear(&resp);
	return rc;
}

static int pull_file(pw_oci_client *c, const pw_oci_ref *r, const char *dest, pw_oci_pulled *out)
{
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(r->path, pw_oci__client_max_blob(c), &b);
	if (rc < 0)
		return pw_error_prefix("policy %s", r->path);
	if (b.len < 4 || memcmp(b.data, WASM_MAGIC, 4)) {
		pw_buf_free(&b);
		return pw_error_set(PW_EINVALID, "%s is not a WebAssembly module (no \\0asm magic)", r->path);
	}
	pw_oci__digest_of(b.data, b.len, out->digest);
	out->size = b.len;
	struct stat a, d;
	if (stat(r->path, &a) == 0 && stat(dest, &d) == 0 && a.st_dev == d.st_dev && a.st_ino == d.st_ino) {
		out->downloaded = false;  /* the same file */
		rc = 0;
	} else {
		rc = pw_file_write_atomic(dest, b.data, b.len, 0644);
		out->downloaded = rc == 0;
	}
	pw_buf_free(&b);
	return rc;
}

int pw_oci_pull(pw_oci_client *c, const char *ref, const char *dest, pw_oci_pulled *out)
{
	pw_oci_ref *r = NULL;
	pw_oci_pulled tmp;
	int rc;
	if (!out)
		out = &tmp;
	memset(out, 0, sizeof *out);
	if ((rc = pw_oci_ref_parse(&r, ref)) < 0)
		return rc;
	switch (r->scheme) {
	case PW_OCI_REGISTRY: rc = pw_oci__pull_registry(c, r, dest, out); break;
	case PW_OCI_HTTP:
	case PW_OCI_HTTPS: rc = pull_url(c, r, dest, out); break;
	case PW_OCI_FILE: rc = pull_file(c, r, dest, out); break;
	}
	pw_oci_ref_free(r);
	return rc;
}

/* ---- parallel pulls -------------------------------------------------------------------- */

typedef struct many_task {
	pw_oci_client *c;
	pw_oci_pull_job *job;
} many_task;

static void run_job(void *arg)
{
	many_task *t = arg;
	double t0 = pw_now();
	pw_error_clear();
	t->job->rc = pw_oci_pull(t->c, t->job->ref, t->job->dest, &t->job->result);
	t->job->seconds = pw_now() - t0;
	if (t->job->rc < 0)
		snprintf(t->job->error, sizeof t->job->error, "%s", pw_error_last());
	else
		t->job->error[0] = 0;
}

int pw_oci_pull_many(pw_oci_client *c, pw_oci_pull_job *jobs, size_t n, unsigned max_parallel)
{
	pw_pool *pool = NULL;
	many_task *tasks;
	int rc;
	if (n == 0)
		return 0;
	if (max_parallel == 0)
		max_parallel = 4;
	if (max_parallel > n)
		max_parallel = (unsigned)n;
	tasks = calloc(n, sizeof *tasks);
	if (!tasks)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if ((rc = pw_pool_new(&pool, max_parallel, 0)) < 0) {
		free(tasks);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		tasks[i].c = c;
		tasks[i].job = &jobs[i];
		jobs[i].rc = PW_ERROR;
		snprintf(jobs[i].error, sizeof jobs[i].error, "not run");
		if (pw_pool_submit(pool, run_job, &tasks[i]) < 0)
			run_job(&tasks[i]);
	}
	pw_pool_free(pool);
	free(tasks);
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].rc < 0) {
			rc = pw_error_set(jobs[i].rc, "%s: %s", jobs[i].ref, jobs[i].error);
			break;
		}
	}
	return rc;
}
