/*
 * The registry tier of the artifact cache: every replica of a cluster shares compiled
 * artifacts through an OCI registry (TLS + basic auth, credentials from a mounted Secret).
 *
 * One OCI image manifest per entry, tagged "pw1-<engine hash[0:32]>-<wasm sha256>":
 *   artifactType application/vnd.prewarm.artifact.v1, the empty config ({}), one layer
 *   application/vnd.prewarm.artifact.v1+zstd (the artifact, zstd-compressed), annotations
 *   carrying the key (full engine hash, wasm digest), the artifact sha256, the signature,
 *   the engine description and the whole entry record (pw_cache_meta_to_json), and
 *   `subject` = the policy's own manifest when the policy came from a registry.
 * get() checks what a registry can lie about before anyone trusts it: the annotations must
 * name the key asked for, the layer bytes must hash to the layer digest, decompress to
 * exactly the recorded size; the tiered cache then verifies the artifact sha256, its
 * embedded description and the signature. A key found bad is remembered, so the next put
 * replaces the entry (and deletes the corrupt blob) instead of skipping it.
 * put() is idempotent and safe with concurrent publishers (content addressing: they write
 * the same blobs; the manifest tag's last writer wins, every version is valid). With
 * async_put, put() only queues: a background thread publishes, and free() waits for it at
 * most publish_deadline seconds, so publishing never holds a start back for longer.
 *
 * Claims (cross-process single flight, prewarm/cache_backend.h): a small manifest per key
 * tagged "pw1c-<engine hash[0:32]>-<wasm sha256>" (artifactType
 * application/vnd.prewarm.claim.v1, empty config and layer, the claim JSON in the
 * io.prewarm.claim annotation). A registry has no create-if-absent and the last PUT of a
 * tag wins, so claiming is Fischer's timed mutual exclusion: read the tag; if it holds no
 * live claim, PUT ours, wait `claim_settle` seconds, read it back: the claim there is the
 * winner, the same one for every claimer (the last writer). It is exact when every
 * claimer's read-to-PUT takes less than claim_settle (unless set, a multiple of our own
 * read-to-PUT, see claim_settle()); a slower one costs a duplicate compile
 * (compiles are reproducible: both publish the same entry), never a wrong one. Release
 * writes a released claim (works where deletes are disabled).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zstd.h>

#include "cache/cache_int.h"
#include "prewarm/cache.h"
#include "prewarm/cache_backend.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"

#define MAX_ARTIFACT (2ull << 30)
#define ARTIFACT_ZSTD_LEVEL 3   /* measured: most of level 19's ratio on shared objects, at ~100 MB/s */
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_PUBLISH_DEADLINE 30.0
#define CLAIM_SETTLE_MAX 1.0      /* the settle when not set: at most this, */
#define CLAIM_SETTLE_MIN 0.1      /* at least this, */
#define CLAIM_SETTLE_FACTOR 3.0   /* ... and this many times our own read-then-write */
#define LOW_SPEED_SECONDS 10
#define REQUEST_RETRIES 2
#define RETRY_BACKOFF 0.2
#define CLAIM_ARTIFACT_TYPE "application/vnd.prewarm.claim.v1"
#define CLAIM_ANN "io.prewarm.claim"
#define CLAIM_MANIFEST_MAX 16384
#define EMPTY_BLOB_RETRY_DELAY 0.2

static const pw_cache_backend_type registry_type;

typedef struct pending {
	struct pending *next;
	pw_cache_entry e;
} pending;

typedef struct bad_key {
	struct bad_key *next;
	pw_cache_key key;
	bool blob;                /* the layer's bytes are corrupt in the registry's storage */
} bad_key;

typedef struct shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;                 /* the backend + the publisher thread */
	pw_oci_client *client;
	pw_oci_ref *repo;         /* host + repo */
	char *desc;               /* engine description annotation, or NULL */
	bool read_only;
	double claim_settle;      /* seconds between a claim's PUT and its read-back; 0 = measured */
	bool empty_blob_pushed;   /* the claims' empty config/layer blob is in the repository */
	pending *queue, *queue_tail;
	unsigned queued;          /* queued + being published */
	bool stop;
	bool put_failed;          /* a background publish failed: no more tries this run */
	bad_key *bad;
} shared;

static unsigned g_live_publishers;  /* publisher threads still running (atomic) */

unsigned pw_cache_registry_live_publishers(void)
{
	return __atomic_load_n(&g_live_publishers, __ATOMIC_SEQ_CST);
}

typedef struct registry_backend {
	pw_cache_backend parent;
	shared *s;
	bool async;
	double deadline;
	pthread_t thread;
	bool thread_started;
} registry_backend;

void pw_cache_registry_tag(const char *engine_hash, const char *wasm_sha256, char out[128])
{
	snprintf(out, 128, "pw1-%.32s-%.64s", engine_hash, wasm_sha256);
}

static void shared_unref(shared *s)
{
	pthread_mutex_lock(&s->mu);
	int left = --s->refs;
	pthread_mutex_unlock(&s->mu);
	if (left > 0)
		return;
	while (s->queue) {
		pending *p = s->queue;
		s->queue = p->next;
		pw_cache_entry_free(&p->e);
		free(p);
	}
	while (s->bad) {
		bad_key *b = s->bad;
		s->bad = b->next;
		free(b);
	}
	pw_oci_client_free(s->client);
	pw_oci_ref_free(s->repo);
	free(s->desc);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

static int tag_ref(shared *s, const pw_cache_key *k, pw_oci_ref **out)
{
	char tag[128];
	pw_cache_registry_tag(k->engine_hash, k->wasm_sha256, tag);
	return pw_oci_ref_with(out, s->repo, tag, NULL);
}

static void mark_bad(shared *s, const pw_cache_key *k, bool blob)
{
	bad_key *b = calloc(1, sizeof *b);
	if (!b)
		return;
	b->key = *k;
	b->blob = blob;
	pthread_mutex_lock(&s->mu);
	b->next = s->bad;
	s->bad = b;
	pthread_mutex_unlock(&s->mu);
}

/* 0 = good, 1 = bad entry, 2 = bad blob. */
static int is_bad(shared *s, const pw_cache_key *k)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	for (bad_key *b = s->bad; b; b = b->next)
		if (!memcmp(&b->key, k, sizeof *k) && r < (b->blob ? 2 : 1))
			r = b->blob ? 2 : 1;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- get ----------------------------------------------------------------------------- */

static const pw_oci_descriptor *entry_layer(const pw_oci_manifest *m)
{
	if (m->kind != PW_OCI_KIND_MANIFEST || m->nlayers != 1 || strcmp(m->layers[0].media_type, PW_CACHE_LAYER_TYPE))
		return NULL;
	return &m->layers[0];
}

/* Reads the manifest of key; checks its annotations name the key. *m owned by caller. */
static int fetch_manifest(shared *s, const pw_cache_key *key, pw_oci_manifest **m, char digest[PW_OCI_DIGEST_LEN],
                          pw_cache_meta *meta)
{
	pw_oci_ref *r = NULL;
	pw_buf body = PW_BUF_INIT;
	char mt[80], ks[PW_CACHE_KEY_STR_LEN + 1], wd[PW_OCI_DIGEST_LEN];
	int rc;
	*m = NULL;
	pw_cache_key_str(key, ks);
	if ((rc = tag_ref(s, key, &r)) < 0)
		return rc;
	rc = pw_oci_manifest_get(s->client, r, &body, mt, digest);
	pw_oci_ref_free(r);
	if (rc < 0)
		goto out;
	if ((rc = pw_oci_manifest_parse(m, body.data, body.len, mt)) < 0) {
		pw_error_prefix("registry entry %s", ks);
		rc = PW_EINVALID;
		goto out;
	}
	const char *eh = pw_oci_manifest_annotation(*m, PW_CACHE_ANN_ENGINE);
	const char *wh = pw_oci_manifest_annotation(*m, PW_CACHE_ANN_WASM);
	const char *mj = pw_oci_manifest_annotation(*m, PW_CACHE_ANN_META);
	snprintf(wd, sizeof wd, "sha256:%s", key->wasm_sha256);
	if (!(*m)->artifact_type || strcmp((*m)->artifact_type, PW_CACHE_ARTIFACT_TYPE) || !entry_layer(*m)) {
		rc = pw_error_set(PW_EINVALID, "registry entry %s: not a prewarm artifact manifest", ks);
	} else if (!eh || !wh || !mj) {
		rc = pw_error_set(PW_EINVALID, "registry entry %s: annotations %s/%s/%s missing", ks, PW_CACHE_ANN_ENGINE,
		                  PW_CACHE_ANN_WASM, PW_CACHE_ANN_META);
	} else if (strcmp(eh, key->engine_hash) || strcmp(wh, wd)) {
		rc = pw_error_set(PW_EMISMATCH, "registry entry %s: its annotations name engine %.16s... wasm %.23s..., not this key",
		                  ks, eh, wh);
	} else if ((rc = pw_cache_meta_from_json(meta, mj, strlen(mj))) < 0) {
		pw_error_prefix("registry entry %s: %s", ks, PW_CACHE_ANN_META);
	} else if (memcmp(&meta->key, key, sizeof *key)) {
		rc = pw_error_set(PW_EMISMATCH, "registry entry %s: the record inside names another key", ks);
	} else if (meta->artifact_size > MAX_ARTIFACT) {
		rc = pw_error_set(PW_EINVALID, "registry entry %s: artifact size %llu over the limit", ks,
		                  (unsigned long long)meta->artifact_size);
	}
out:
	if (rc < 0) {
		pw_oci_manifest_free(*m);
		*m = NULL;
	}
	pw_buf_free(&body);
	return rc;
}

static int reg_get(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out)
{
	shared *s = ((registry_backend *)b)->s;
	pw_oci_manifest *m = NULL;
	pw_buf z = PW_BUF_INIT;
	char ks[PW_CACHE_KEY_STR_LEN + 1], md[PW_OCI_DIGEST_LEN];
	int rc;
	memset(out, 0, sizeof *out);
	pw_cache_key_str(key, ks);
	rc = fetch_manifest(s, key, &m, md, &out->meta);
	if (rc == PW_EINVALID || rc == PW_EMISMATCH)
		mark_bad(s, key, false);
	if (rc < 0)
		goto out;
	const pw_oci_descriptor *l = entry_layer(m);
	if (l->size > MAX_ARTIFACT) {
		rc = pw_error_set(PW_EINVALID, "registry entry %s: layer of %llu bytes over the limit", ks,
		                  (unsigned long long)l->size);
		goto out;
	}
	rc = pw_oci_blob_get(s->client, s->repo, l->digest, l->size ? l->size : 1, &z);
	if (rc == PW_EMISMATCH || (rc == PW_EINVALID && l->size)) {
		mark_bad(s, key, true);
		pw_error_prefix("registry entry %s", ks);
		rc = PW_EMISMATCH;
		goto out;
	}
	if (rc < 0)
		goto out;
	unsigned long long fsz = ZSTD_getFrameContentSize(z.data, z.len);  /* the data frame comes first */
	if (fsz == ZSTD_CONTENTSIZE_ERROR || fsz == ZSTD_CONTENTSIZE_UNKNOWN || fsz != out->meta.artifact_size) {
		mark_bad(s, key, true);
		rc = pw_error_set(PW_EINVALID, "registry entry %s: the layer is not a zstd frame of %llu bytes", ks,
		                  (unsigned long long)out->meta.artifact_size);
		goto out;
	}
	if ((rc = pw_buf_reserve(&out->artifact, (size_t)fsz + 1)) < 0)
		goto out;
	size_t n = ZSTD_decompress(out->artifact.data, (size_t)fsz, z.data, z.len);
	if (ZSTD_isError(n) || n != fsz) {
		mark_bad(s, key, true);
		rc = pw_error_set(PW_EINVALID, "registry entry %s: zstd: %s", ks,
		                  ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
		goto out;
	}
	out->artifact.len = n;
	out->artifact.data[n] = 0;
	pw_debug("cache", "registry: got %s (%zu bytes, %zu compressed)", ks, n, z.len);
	rc = 0;
out:
	if (rc < 0)
		pw_cache_entry_free(out);
	pw_oci_manifest_free(m);
	pw_buf_free(&z);
	return rc;
}

static int reg_exists(pw_cache_backend *b, const pw_cache_key *key)
{
	shared *s = ((registry_backend *)b)->s;
	pw_oci_ref *r = NULL;
	int rc = tag_ref(s, key, &r);
	if (rc == 0)
		rc = pw_oci_manifest_head(s->client, r, NULL);
	pw_oci_ref_free(r);
	return rc;
}

/* ---- put ----------------------------------------------------------------------------- */

static int publish(shared *s, const pw_cache_entry *e)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1], ldg[PW_OCI_DIGEST_LEN], md[PW_OCI_DIGEST_LEN], wd[PW_OCI_DIGEST_LEN];
	char desc[512];
	pw_oci_ref *r = NULL;
	pw_oci_manifest *old = NULL;
	pw_cache_meta oldmeta;
	pw_buf meta = PW_BUF_INIT;
	json_t *m = NULL, *ann = NULL;
	char *body = NULL;
	void *z = NULL;
	int rc;
	int bad = is_bad(s, &e->meta.key);

	pw_cache_key_str(&e->meta.key, ks);
	/* Present and the same artifact: nothing to do. */
	if (!bad) {
		rc = fetch_manifest(s, &e->meta.key, &old, md, &oldmeta);
		if (rc == 0 && !strcmp(oldmeta.artifact_sha256, e->meta.artifact_sha256) &&
		    !strcmp(oldmeta.signature, e->meta.signature) &&
		    pw_oci_blob_exists(s->client, s->repo, entry_layer(old)->digest) == 0) {
			pw_oci_manifest_free(old);
			pw_debug("cache", "registry: %s already published", ks);
			return 0;
		}
		pw_oci_manifest_free(old);
		if (rc < 0 && rc != PW_ENOTFOUND && rc != PW_EINVALID && rc != PW_EMISMATCH)
			return rc;
	}
	size_t zcap = ZSTD_compressBound(e->artifact.len) + 32;
	z = malloc(zcap);
	if (!z)
		return pw_error_set(PW_ENOMEM, "out of memory");
	size_t zn = ZSTD_compress(z, zcap, e->artifact.data, e->artifact.len, ARTIFACT_ZSTD_LEVEL);
	if (ZSTD_isError(zn)) {
		rc = pw_error_set(PW_ERROR, "registry: compressing %s: %s", ks, ZSTD_getErrorName(zn));
		goto out;
	}
	char hex[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(z, zn, hex);
	snprintf(ldg, sizeof ldg, "sha256:%s", hex);
	if (bad == 2) {
		/* The registry's copy of this digest is corrupt, and a registry keeps the bytes it
		 * has for a digest whatever is uploaded again: unlink it, and publish the layer
		 * under a new digest by appending a zstd skippable frame holding a nonce (readers
		 * skip it; normal publishers never add one, so they still agree byte for byte). */
		if (pw_oci_blob_delete(s->client, s->repo, ldg) == 0)
			pw_info("cache", "registry: unlinked the corrupt layer of %s", ks);
		uint8_t *q = (uint8_t *)z + zn;
		static const uint8_t hdr[8] = { 0x50, 0x2A, 0x4D, 0x18, 16, 0, 0, 0 };  /* LE magic, LE size */
		memcpy(q, hdr, 8);
		pw_sha256_hex(&e->meta, sizeof e->meta, hex);
		char salt[64];
		snprintf(salt, sizeof salt, "%.8s%08lx", hex, (unsigned long)time(NULL) ^ (unsigned long)random());
		memcpy(q + 8, salt, 16);
		zn += 24;
		pw_sha256_hex(z, zn, hex);
		snprintf(ldg, sizeof ldg, "sha256:%s", hex);
	}
	if ((rc = pw_oci_blob_push(s->client, s->repo, "{}", 2, PW_OCI_EMPTY_DIGEST)) < 0 ||
	    (rc = pw_oci_blob_push(s->client, s->repo, z, zn, ldg)) < 0)
		goto out;
	if ((rc = pw_cache_meta_to_json(&e->meta, &meta)) < 0)
		goto out;
	if (s->desc) {
		snprintf(desc, sizeof desc, "%s", s->desc);
	} else {
		pw_artifact_info ai;
		if (pw_artifact_read_info(e->artifact.data, e->artifact.len, &ai) == 0)
			snprintf(desc, sizeof desc, "artifact-abi: %u\nengine-hash: %s\nwasm-sha256: %s", ai.abi_version,
			         ai.engine_hash, ai.wasm_sha256);
		else
			snprintf(desc, sizeof desc, "engine-hash: %s", e->meta.key.engine_hash);
	}
	snprintf(wd, sizeof wd, "sha256:%s", e->meta.key.wasm_sha256);
	ann = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
	                PW_CACHE_ANN_ENGINE, e->meta.key.engine_hash, PW_CACHE_ANN_WASM, wd,
	                PW_CACHE_ANN_ARTIFACT, e->meta.artifact_sha256, PW_CACHE_ANN_ENGINE_DESC, desc,
	                PW_CACHE_ANN_META, (const char *)meta.data,
	                "org.opencontainers.image.title", ks);
	if (ann && e->meta.signature[0])
		json_object_set_new(ann, PW_CACHE_ANN_SIGNATURE, json_string(e->meta.signature));
	m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I}], s:O}",
	              "schemaVersion", 2, "mediaType", PW_OCI_MT_MANIFEST, "artifactType", PW_CACHE_ARTIFACT_TYPE,
	              "config", "mediaType", PW_OCI_MT_EMPTY, "digest", PW_OCI_EMPTY_DIGEST, "size", 2,
	              "layers", "mediaType", PW_CACHE_LAYER_TYPE, "digest", ldg, "size", (json_int_t)zn,
	              "annotations", ann);
	if (!m) {
		rc = pw_error_set(PW_ENOMEM, "registry: building the manifest of %s failed", ks);
		goto out;
	}
	if (e->meta.subject_digest[0] && pw_oci_digest_valid(e->meta.subject_digest))
		json_object_set_new(m, "subject", json_pack("{s:s, s:s, s:I}", "mediaType",
		                    e->meta.subject_media_type[0] ? e->meta.subject_media_type : PW_OCI_MT_MANIFEST,
		                    "digest", e->meta.subject_digest, "size", (json_int_t)e->meta.subject_size));
	body = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	if (!body) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = tag_ref(s, &e->meta.key, &r)) < 0)
		goto out;
	rc = pw_oci_manifest_put(s->client, r, PW_OCI_MT_MANIFEST, body, strlen(body), md);
	if (rc == 0) {
		pw_debug("cache", "registry: published %s (%zu bytes, %zu compressed) as %s", ks, e->artifact.len, zn, md);
		if (bad) {
			pthread_mutex_lock(&s->mu);
			for (bad_key **p = &s->bad; *p;) {
				if (!memcmp(&(*p)->key, &e->meta.key, sizeof e->meta.key)) {
					bad_key *d = *p;
					*p = d->next;
					free(d);
				} else {
					p = &(*p)->next;
				}
			}
			pthread_mutex_unlock(&s->mu);
		}
	}
out:
	free(z);
	free(body);
	json_decref(m);
	json_decref(ann);
	pw_buf_free(&meta);
	pw_oci_ref_free(r);
	return rc;
}

static void *publisher(void *arg)
{
	shared *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->queue && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->queue)
			break;
		pending *p = s->queue;
		s->queue = p->next;
		if (!s->queue)
			s->queue_tail = NULL;
		bool skip = s->put_failed;
		pthread_mutex_unlock(&s->mu);
		if (!skip && publish(s, &p->e) < 0) {
			char ks[PW_CACHE_KEY_STR_LEN + 1];
			pw_cache_key_str(&p->e.meta.key, ks);
			pw_warn("cache", "registry: publishing %s failed: %s; not publishing to the registry for the rest of this run",
			        ks, pw_error_last());
			pthread_mutex_lock(&s->mu);
			s->put_failed = true;
			pthread_mutex_unlock(&s->mu);
		}
		pw_cache_entry_free(&p->e);
		free(p);
		pthread_mutex_lock(&s->mu);
		s->queued--;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	shared_unref(s);
	__atomic_sub_fetch(&g_live_publishers, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int reg_put(pw_cache_backend *b, const pw_cache_entry *e)
{
	registry_backend *rb = (registry_backend *)b;
	shared *s = rb->s;
	if (s->read_only) {
		pw_debug("cache", "registry: read-only, not publishing");
		return 0;
	}
	if (!rb->async)
		return publish(s, e);
	pending *p = calloc(1, sizeof *p);
	if (!p)
		return pw_error_set(PW_ENOMEM, "out of memory");
	p->e.meta = e->meta;
	if (pw_buf_append(&p->e.artifact, e->artifact.data, e->artifact.len) < 0) {
		free(p);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&s->mu);
	if (s->put_failed) {
		pthread_mutex_unlock(&s->mu);
		pw_cache_entry_free(&p->e);
		free(p);
		return pw_error_set(PW_ENETWORK, "registry: an earlier publish failed in this run");
	}
	if (!rb->thread_started) {
		s->refs++;
		__atomic_add_fetch(&g_live_publishers, 1, __ATOMIC_SEQ_CST);
		if (pthread_create(&rb->thread, NULL, publisher, s) != 0) {
			__atomic_sub_fetch(&g_live_publishers, 1, __ATOMIC_SEQ_CST);
			s->refs--;
			pthread_mutex_unlock(&s->mu);
			pw_cache_entry_free(&p->e);
			free(p);
			return pw_error_set(PW_ERROR, "registry: cannot start the publishing thread");
		}
		rb->thread_started = true;
	}
	if (s->queue_tail)
		s->queue_tail->next = p;
	else
		s->queue = p;
	s->queue_tail = p;
	s->queued++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* ---- list / remove / free ------------------------------------------------------------ */

typedef struct list_ctx {
	shared *s;
	int (*cb)(const pw_cache_listing *l, void *payload);
	void *payload;
	int stop;
} list_ctx;

static int list_tag(const char *tag, void *arg)
{
	list_ctx *lc = arg;
	pw_oci_ref *r = NULL;
	pw_buf body = PW_BUF_INIT;
	pw_oci_manifest *m = NULL;
	char mt[80];
	if (strncmp(tag, "pw1-", 4) || pw_oci_ref_with(&r, lc->s->repo, tag, NULL) < 0)
		return 0;
	if (pw_oci_manifest_get(lc->s->client, r, &body, mt, NULL) == 0 &&
	    pw_oci_manifest_parse(&m, body.data, body.len, mt) == 0) {
		const char *mj = pw_oci_manifest_annotation(m, PW_CACHE_ANN_META);
		pw_cache_meta meta;
		if (mj && pw_cache_meta_from_json(&meta, mj, strlen(mj)) == 0) {
			pw_cache_listing l;
			memset(&l, 0, sizeof l);
			l.key = meta.key;
			l.size = meta.artifact_size;
			l.created = meta.created;
			lc->stop = lc->cb(&l, lc->payload);
		}
	}
	pw_oci_manifest_free(m);
	pw_buf_free(&body);
	pw_oci_ref_free(r);
	return lc->stop;
}

static int reg_list(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload), void *payload)
{
	list_ctx lc = { ((registry_backend *)b)->s, cb, payload, 0 };
	int rc = pw_oci_tags_list(lc.s->client, lc.s->repo, list_tag, &lc);
	return rc < 0 ? rc : lc.stop;
}

static int reg_remove(pw_cache_backend *b, const pw_cache_key *key)
{
	shared *s = ((registry_backend *)b)->s;
	pw_oci_ref *r = NULL;
	char dg[PW_OCI_DIGEST_LEN] = "";
	int rc;
	if (s->read_only)
		return pw_error_set(PW_EINVALID, "registry cache: read-only");
	if ((rc = tag_ref(s, key, &r)) < 0)
		return rc;
	rc = pw_oci_manifest_head(s->client, r, dg);
	if (rc == 0 && !pw_oci_digest_valid(dg))
		rc = pw_error_set(PW_ERROR, "registry: no digest for the manifest of the entry");
	if (rc == 0)
		rc = pw_oci_manifest_delete(s->client, r, dg);
	pw_oci_ref_free(r);
	return rc;
}

unsigned pw_cache_registry_pending(pw_cache_backend *b)
{
	unsigned n;
	if (!b || b->type != &registry_type)
		return 0;
	shared *s = ((registry_backend *)b)->s;
	pthread_mutex_lock(&s->mu);
	n = s->queued;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void reg_free(pw_cache_backend *b)
{
	registry_backend *rb = (registry_backend *)b;
	shared *s;
	if (!rb)
		return;
	s = rb->s;
	if (rb->thread_started) {
		struct timespec dl = pw_deadline_after(CLOCK_REALTIME, rb->deadline);
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_broadcast(&s->cv);
		while (s->queued > 0) {
			if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
				break;
		}
		unsigned left = s->queued;
		pthread_mutex_unlock(&s->mu);
		if (left) {
			pw_warn("cache", "registry: %u publish(es) still running after %.1f s; abandoning them", left, rb->deadline);
			pthread_detach(rb->thread);
		} else {
			pthread_join(rb->thread, NULL);
		}
	}
	shared_unref(s);
	free(rb);
}

/* ---- claims ------------------------------------------------------------------------- */

static int claim_ref(shared *s, const pw_cache_key *k, pw_oci_ref **out)
{
	char tag[128];
	snprintf(tag, sizeof tag, "pw1c-%.32s-%.64s", k->engine_hash, k->wasm_sha256);
	return pw_oci_ref_with(out, s->repo, tag, NULL);
}

/* The claim under key's claim tag into *holder (unparsable: pw_cache__claim_unreadable).
 * PW_ENOTFOUND when there is none. */
static int read_claim(shared *s, const pw_cache_key *key, pw_cache_claim *holder)
{
	pw_oci_ref *r = NULL;
	pw_oci_manifest *m = NULL;
	pw_buf body = PW_BUF_INIT;
	char mt[80];
	int rc = claim_ref(s, key, &r);

	if (rc == 0)
		rc = pw_oci_manifest_get(s->client, r, &body, mt, NULL);
	pw_oci_ref_free(r);
	if (rc < 0) {
		pw_buf_free(&body);
		return rc;
	}
	const char *cj = NULL;
	if (body.len <= CLAIM_MANIFEST_MAX && pw_oci_manifest_parse(&m, body.data, body.len, mt) == 0 &&
	    m->artifact_type && !strcmp(m->artifact_type, CLAIM_ARTIFACT_TYPE))
		cj = pw_oci_manifest_annotation(m, CLAIM_ANN);
	if (!cj || pw_cache_claim_from_json(holder, cj, strlen(cj)) < 0) {
		pw_debug("cache", "registry: unreadable claim: %s", cj ? pw_error_last() : "not a claim manifest");
		pw_cache__claim_unreadable(holder, body.data, body.len);
	}
	pw_error_clear();
	pw_oci_manifest_free(m);
	pw_buf_free(&body);
	return 0;
}

static void sleep_seconds(double sec);

/* The claims' empty config and layer blob, pushed once per process (again after a failed
 * claim write: the registry may have collected it, or refused it to a concurrent push). */
static int push_empty_blob(shared *s)
{
	if (__atomic_load_n(&s->empty_blob_pushed, __ATOMIC_ACQUIRE))
		return 0;
	int rc = pw_oci_blob_push(s->client, s->repo, "{}", 2, PW_OCI_EMPTY_DIGEST);
	if (rc == 0)
		__atomic_store_n(&s->empty_blob_pushed, true, __ATOMIC_RELEASE);
	return rc;
}

static int write_claim(shared *s, const pw_cache_key *key, const pw_cache_claim *c)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1];
	pw_buf cj = PW_BUF_INIT;
	pw_oci_ref *r = NULL;
	json_t *m = NULL;
	char *body = NULL;
	int rc;

	pw_cache_key_str(key, ks);
	if ((rc = pw_cache_claim_to_json(c, &cj)) < 0)
		return rc;
	m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:i}], s:{s:s, s:s}}",
	              "schemaVersion", 2, "mediaType", PW_OCI_MT_MANIFEST, "artifactType", CLAIM_ARTIFACT_TYPE,
	              "config", "mediaType", PW_OCI_MT_EMPTY, "digest", PW_OCI_EMPTY_DIGEST, "size", 2,
	              "layers", "mediaType", PW_OCI_MT_EMPTY, "digest", PW_OCI_EMPTY_DIGEST, "size", 2,
	              "annotations", CLAIM_ANN, (const char *)cj.data, "org.opencontainers.image.title", ks);
	body = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!body)
		rc = pw_error_set(PW_ENOMEM, "registry: building the claim of %s failed", ks);
	if (rc == 0)
		rc = claim_ref(s, key, &r);
	/* Peers push the same empty blob at the same moment, and distribution can then refuse a
	 * manifest naming it (HTTP 400 DIGEST_INVALID) or the push itself: push again, PUT again,
	 * once. */
	for (int attempt = 0; rc == 0; attempt++) {
		if ((rc = push_empty_blob(s)) == 0 &&
		    (rc = pw_oci_manifest_put(s->client, r, PW_OCI_MT_MANIFEST, body, strlen(body), NULL)) == 0)
			break;
		__atomic_store_n(&s->empty_blob_pushed, false, __ATOMIC_RELEASE);
		if (attempt > 0)
			break;
		pw_debug("cache", "registry: writing the claim of %s: %s; trying again", ks, pw_error_last());
		sleep_seconds(EMPTY_BLOB_RETRY_DELAY);
		rc = 0;
	}
	pw_oci_ref_free(r);
	free(body);
	json_decref(m);
	pw_buf_free(&cj);
	return rc;
}

static void sleep_seconds(double sec)
{
	struct timespec ts = { (time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9) };
	while (nanosleep(&ts, &ts) < 0)
		;
}

/*
 * How long a claim written `rw` seconds after its read settles before the read-back. Set:
 * that. Measured: a multiple of our own read-then-write, the best estimate of every
 * claimer's against the same registry at the same moment (a loopback registry answers in
 * milliseconds, one across a cluster in tens of them), within [MIN, MAX]. A claimer slower
 * than that costs a second compile, never a wrong artifact.
 */
static double claim_settle(const shared *s, double rw)
{
	if (s->claim_settle > 0)
		return s->claim_settle;
	double t = CLAIM_SETTLE_FACTOR * rw;
	return t < CLAIM_SETTLE_MIN ? CLAIM_SETTLE_MIN : t > CLAIM_SETTLE_MAX ? CLAIM_SETTLE_MAX : t;
}

static int reg_claim(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine,
                     const pw_cache_claim *stale, pw_cache_claim *holder)
{
	shared *s = ((registry_backend *)b)->s;   /* called through registry_type only */
	pw_cache_claim cur;
	double t0;
	int rc;

	if (s->read_only)
		return pw_error_set(PW_EUNSUPPORTED, "registry cache: read-only, no claims");
	/* The claim's blob is pushed by claimers only (not by every waiter at once), and before
	 * the read that is timed: read, push if we may claim, read again, PUT. */
	for (int pass = 0;; pass++) {
		t0 = pw_now();
		rc = read_claim(s, key, &cur);
		if (rc == 0 && !cur.released && !(stale && !strcmp(cur.nonce, stale->nonce) && cur.seq == stale->seq)) {
			*holder = cur;
			return PW_EMISMATCH;
		}
		if (rc < 0 && rc != PW_ENOTFOUND)
			return rc;
		if (__atomic_load_n(&s->empty_blob_pushed, __ATOMIC_ACQUIRE) || pass > 0)
			break;
		if ((rc = push_empty_blob(s)) < 0)
			return rc;
	}
	if ((rc = write_claim(s, key, mine)) < 0)
		return rc;
	sleep_seconds(claim_settle(s, pw_now() - t0));
	if ((rc = read_claim(s, key, &cur)) < 0)
		return rc == PW_ENOTFOUND ? pw_error_set(PW_ERROR, "registry: a claim just written is gone") : rc;
	if (!strcmp(cur.nonce, mine->nonce))
		return 0;
	*holder = cur;   /* a later writer won */
	return PW_EMISMATCH;
}

static int reg_renew(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine)
{
	shared *s = ((registry_backend *)b)->s;   /* called through registry_type only */
	pw_cache_claim cur;
	int rc = read_claim(s, key, &cur);

	if (rc < 0)
		return rc == PW_ENOTFOUND ? pw_error_set(PW_EMISMATCH, "registry: our claim is gone") : rc;
	if (strcmp(cur.nonce, mine->nonce) != 0)
		return pw_error_set(PW_EMISMATCH, "registry: our claim was taken over");
	return write_claim(s, key, mine);
}

static void reg_release(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine)
{
	shared *s = ((registry_backend *)b)->s;   /* called through registry_type only */
	pw_cache_claim cur, done = *mine;

	done.released = true;
	done.seq++;
	if (read_claim(s, key, &cur) == 0 && !strcmp(cur.nonce, mine->nonce) && write_claim(s, key, &done) < 0)
		pw_debug("cache", "registry: releasing a claim: %s", pw_error_last());
	pw_error_clear();
}

static const pw_cache_backend_type registry_type = {
	.version = PW_CACHE_BACKEND_VERSION,
	.name = "registry",
	.get = reg_get,
	.exists = reg_exists,
	.put = reg_put,
	.touch = NULL,
	.list = reg_list,
	.remove = reg_remove,
	.free = reg_free,
	.claim = reg_claim,
	.renew = reg_renew,
	.release = reg_release,
};

int pw_cache_registry_new(pw_cache_backend **out, const pw_registry_cache_opts *opts)
{
	registry_backend *rb;
	shared *s;
	pw_oci_sources *src = NULL;
	pw_oci_creds *cr = NULL;
	int rc;
	*out = NULL;
	if (!opts || !opts->repository || !*opts->repository)
		return pw_error_set(PW_EINVALID, "registry cache: no repository (host[:port]/repository)");
	rb = calloc(1, sizeof *rb);
	s = calloc(1, sizeof *s);
	if (!rb || !s) {
		free(rb);
		free(s);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->refs = 1;
	rb->s = s;
	s->read_only = opts->read_only;
	rb->async = opts->async_put;
	rb->deadline = opts->publish_deadline > 0 ? opts->publish_deadline : DEFAULT_PUBLISH_DEADLINE;
	s->claim_settle = opts->claim_settle > 0 ? opts->claim_settle : 0;
	if (opts->engine_description && !(s->desc = strdup(opts->engine_description))) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = pw_oci_ref_parse(&s->repo, opts->repository)) < 0) {
		pw_error_prefix("registry cache repository");
		goto fail;
	}
	if (s->repo->scheme != PW_OCI_REGISTRY || s->repo->digest || strcmp(s->repo->tag, "latest") ||
	    strchr(opts->repository, '@') || strrchr(opts->repository, ':') > strrchr(opts->repository, '/')) {
		rc = pw_error_set(PW_EINVALID, "registry cache repository %s: give host[:port]/repository (no tag, digest or scheme)",
		                  opts->repository);
		goto fail;
	}
	if ((rc = pw_oci_sources_new(&src)) < 0 || (rc = pw_oci_creds_new(&cr)) < 0)
		goto fail;
	if (opts->insecure && (rc = pw_oci_sources_add_insecure(src, s->repo->host)) < 0)
		goto fail;
	if (opts->ca_file && (rc = pw_oci_sources_add_ca_file(src, s->repo->host, opts->ca_file)) < 0) {
		pw_error_prefix("registry cache CA file");
		goto fail;
	}
	if (opts->credentials) {
		char probe[4096];
		snprintf(probe, sizeof probe, "%s/username", opts->credentials);
		if (pw_path_exists(probe))
			rc = pw_oci_creds_load_secret_dir(cr, s->repo->host, opts->credentials);
		else
			rc = pw_oci_creds_load_docker_config(cr, opts->credentials);
		if (rc < 0) {
			pw_error_prefix("registry cache credentials");
			goto fail;
		}
	}
	pw_oci_client_opts co = {
		.sources = src, .creds = cr,
		.timeout = opts->timeout > 0 ? opts->timeout : DEFAULT_TIMEOUT,
		.connect_timeout = opts->connect_timeout > 0 ? opts->connect_timeout : DEFAULT_CONNECT_TIMEOUT,
		.low_speed_time = LOW_SPEED_SECONDS, .retries = REQUEST_RETRIES, .backoff = RETRY_BACKOFF,
		.max_blob = MAX_ARTIFACT,
	};
	if ((rc = pw_oci_client_new(&s->client, &co)) < 0)
		goto fail;
	pw_oci_sources_free(src);
	pw_oci_creds_free(cr);
	rb->parent.type = &registry_type;
	*out = &rb->parent;
	return 0;
fail:
	pw_oci_sources_free(src);
	pw_oci_creds_free(cr);
	shared_unref(s);
	free(rb);
	return rc;
}
