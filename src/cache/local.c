/*
 * The local-directory cache backend: one file per entry under
 * DIR/v1/<wasm_sha256[0:2]>/<engine_hash>-<wasm_sha256>.pwa, in the entry format of
 * include/prewarm/cache.h.
 *
 * Writes go to a temp file (".tmp-<key>.pwa.<pid>.<random>", pw_durable) in the entry's own directory,
 * which is fsynced, renamed over the final name and followed by an fsync of the directory:
 * a reader (or a crash) sees no entry or a whole one, never a part. There are no locks:
 * keys are content addresses, so two processes writing the same key write equivalent
 * entries and the last rename wins; this holds on a PersistentVolume shared by pods (NFS
 * renames are atomic too). Last use is the entry's mtime, set by touch (utimensat), so a
 * lookup never waits on anything; eviction (gc) stats every entry and unlinks the least
 * recently used first. Unlinking an entry a reader has open is harmless. Temp files left by
 * a killed writer are removed by gc once older than tmp_max_age.
 *
 * Claims (cross-process single flight, prewarm/cache_backend.h) are lease files beside the
 * entry, DIR/v1/<xx>/<key>.lease, holding the claim JSON: created with O_EXCL (atomic on
 * local file systems and on NFSv3+, no lock), renewed by a durable replace, removed on
 * release. Taking over an expired lease renames it to a private name first (only one
 * process can win that rename), checks it is still the lease judged expired (else puts it
 * back), and then creates a new one with O_EXCL again. Leases left by killed owners are
 * removed by gc like stale temp files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "prewarm/cache.h"
#include "prewarm/cache_backend.h"

#define LOCAL_DEFAULT_TMP_AGE 3600.0
#define LOCAL_MAX_ENTRY ((uint64_t)4 << 30)
#define LEASE_SUFFIX ".lease"
#define LEASE_CREATE_TRIES 4      /* create, find it released or gone, create again... */

static const pw_cache_backend_type local_type;

typedef struct local_backend {
	pw_cache_backend parent;   /* first member */
	char *dir;                 /* as given */
	char *vdir;                /* DIR/v1 */
	uint64_t max_size;
	double tmp_max_age;
	pthread_mutex_t gc_lock;   /* one in-process gc at a time (other processes may run theirs) */
} local_backend;

static void entry_path(const local_backend *lb, const pw_cache_key *k, char *out, size_t n)
{
	snprintf(out, n, "%s/%.2s/%s-%s.pwa", lb->vdir, k->wasm_sha256, k->engine_hash, k->wasm_sha256);
}

static void lease_path(const local_backend *lb, const pw_cache_key *k, char *out, size_t n)
{
	snprintf(out, n, "%s/%.2s/%s-%s" LEASE_SUFFIX, lb->vdir, k->wasm_sha256, k->engine_hash, k->wasm_sha256);
}

/* The local backend behind b, or NULL (with the error set) when b is another kind. */
static local_backend *as_local(const pw_cache_backend *b, const char *what)
{
	if (b && b->type == &local_type)
		return (local_backend *)(uintptr_t)b;
	pw_error_set(PW_EINVALID, "%s: not a local cache directory backend", what);
	return NULL;
}

/* "<64 hex>-<64 hex>.pwa" -> key */
static bool entry_name_key(const char *name, pw_cache_key *k)
{
	size_t n = strlen(name);
	char tmp[PW_CACHE_KEY_STR_LEN + 1];

	if (n != PW_CACHE_KEY_STR_LEN + 4 || strcmp(name + PW_CACHE_KEY_STR_LEN, ".pwa") != 0)
		return false;
	memcpy(tmp, name, PW_CACHE_KEY_STR_LEN);
	tmp[PW_CACHE_KEY_STR_LEN] = '\0';
	if (pw_cache_key_parse(k, tmp) < 0) {
		pw_error_clear();
		return false;
	}
	return true;
}

static int read_full(int fd, void *buf, size_t len, uint64_t off, const char *path)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return pw_error_set_errno(PW_EIO, "read %s", path);
		}
		if (r == 0)
			return pw_error_set(PW_EINVALID, "cache entry %s: truncated while reading", path);
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Reads the header and meta of an open entry file; gives where the artifact lies. */
static int read_meta(int fd, const char *path, pw_cache_meta *meta, uint64_t *art_off,
                     uint64_t *art_len)
{
	struct stat st;
	uint8_t hdr[PW_CACHE_ENTRY_HEADER_LEN];
	uint32_t meta_len;
	char *json;
	int rc;

	if (fstat(fd, &st) < 0)
		return pw_error_set_errno(PW_EIO, "fstat %s", path);
	if (!S_ISREG(st.st_mode))
		return pw_error_set(PW_EINVALID, "cache entry %s is not a regular file", path);
	if ((uint64_t)st.st_size > LOCAL_MAX_ENTRY)
		return pw_error_set(PW_EINVALID, "cache entry %s is too large (%lld bytes)", path,
		                    (long long)st.st_size);
	if ((uint64_t)st.st_size < PW_CACHE_ENTRY_HEADER_LEN)
		return pw_error_set(PW_EINVALID, "cache entry %s truncated: %lld bytes", path,
		                    (long long)st.st_size);
	if ((rc = read_full(fd, hdr, sizeof hdr, 0, path)) < 0)
		return rc;
	if ((rc = pw_cache_entry_check_header(hdr, (uint64_t)st.st_size, &meta_len, art_len)) < 0)
		return pw_error_prefix("%s", path);
	json = malloc(meta_len + 1);
	if (!json)
		return pw_error_set(PW_ENOMEM, "out of memory reading %s", path);
	rc = read_full(fd, json, meta_len, PW_CACHE_ENTRY_HEADER_LEN, path);
	if (rc == 0 && (rc = pw_cache_meta_from_json(meta, json, meta_len)) < 0)
		pw_error_prefix("%s", path);
	free(json);
	if (rc == 0 && meta->artifact_size != *art_len)
		rc = pw_error_set(PW_EINVALID, "%s: artifact length %llu but meta says %llu", path,
		                  (unsigned long long)*art_len, (unsigned long long)meta->artifact_size);
	*art_off = PW_CACHE_ENTRY_HEADER_LEN + meta_len;
	return rc;
}

static int local_get(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];
	uint64_t off, len;
	int fd, rc;

	memset(out, 0, sizeof *out);
	entry_path(lb, key, path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return pw_error_set(PW_ENOTFOUND, "no cache entry %s", path);
		return pw_error_set_errno(PW_EIO, "open %s", path);
	}
	rc = read_meta(fd, path, &out->meta, &off, &len);
	if (rc == 0)
		rc = pw_buf_reserve(&out->artifact, (size_t)len);
	if (rc == 0 && (rc = read_full(fd, out->artifact.data, (size_t)len, off, path)) == 0) {
		out->artifact.len = (size_t)len;
		out->artifact.data[len] = '\0';
	}
	close(fd);
	if (rc < 0) {
		pw_cache_entry_free(out);
		memset(out, 0, sizeof *out);
	}
	return rc;
}

static int local_exists(pw_cache_backend *b, const pw_cache_key *key)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];
	struct stat st;

	entry_path(lb, key, path, sizeof path);
	if (stat(path, &st) == 0)
		return 0;
	if (errno == ENOENT)
		return pw_error_set(PW_ENOTFOUND, "no cache entry %s", path);
	return pw_error_set_errno(PW_EIO, "stat %s", path);
}

static int gc_scan(local_backend *lb, uint64_t limit, uint64_t target, unsigned *removed,
                   uint64_t *freed, uint64_t *total_out, unsigned *count_out);

static int local_put(pw_cache_backend *b, const pw_cache_entry *e)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX], sub[PATH_MAX];
	pw_buf hdr = PW_BUF_INIT;
	int rc;

	if (e->artifact.len != e->meta.artifact_size)
		return pw_error_set(PW_EINVALID, "cache put: artifact is %zu bytes but meta says %llu",
		                    e->artifact.len, (unsigned long long)e->meta.artifact_size);
	if (!pw_is_sha256_hex(e->meta.key.engine_hash) || !pw_is_sha256_hex(e->meta.key.wasm_sha256))
		return pw_error_set(PW_EINVALID, "cache put: invalid key");
	if ((rc = pw_cache_entry_encode_header(&e->meta, &hdr)) < 0)
		return rc;
	snprintf(sub, sizeof sub, "%s/%.2s", lb->vdir, e->meta.key.wasm_sha256);
	if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
		pw_buf_free(&hdr);
		return pw_error_set_errno(PW_EIO, "mkdir %s", sub);
	}
	entry_path(lb, &e->meta.key, path, sizeof path);
	pw_durable w;
	if ((rc = pw_durable_open(&w, path, 0644)) == 0 &&
	    ((rc = pw_durable_write(&w, hdr.data, hdr.len)) < 0 ||
	     (e->artifact.len && (rc = pw_durable_write(&w, e->artifact.data, e->artifact.len)) < 0)))
		pw_durable_abort(&w);
	pw_buf_free(&hdr);
	if (rc < 0 || (rc = pw_durable_commit(&w)) < 0)
		return rc;
	/* Size limit: past it, evict down to 90% so that not every put scans. */
	if (lb->max_size && gc_scan(lb, lb->max_size, lb->max_size / 10 * 9, NULL, NULL, NULL, NULL) < 0)
		pw_warn("cache", "eviction in %s failed: %s", lb->dir, pw_error_last());
	return 0;
}

static int local_touch(pw_cache_backend *b, const pw_cache_key *key)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];

	entry_path(lb, key, path, sizeof path);
	if (utimensat(AT_FDCWD, path, NULL, 0) < 0)
		return pw_error_set_errno(errno == ENOENT ? PW_ENOTFOUND : PW_EIO, "utimensat %s", path);
	return 0;
}

static int local_remove(pw_cache_backend *b, const pw_cache_key *key)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];

	entry_path(lb, key, path, sizeof path);
	if (unlink(path) < 0)
		return pw_error_set_errno(errno == ENOENT ? PW_ENOTFOUND : PW_EIO, "unlink %s", path);
	return 0;
}

static double ts_sec(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static bool is_lease_name(const char *name)
{
	size_t n = strlen(name), k = strlen(LEASE_SUFFIX);
	return n > k && !strcmp(name + n - k, LEASE_SUFFIX);
}

static bool is_shard(const char *name)
{
	return strlen(name) == 2 && strchr("0123456789abcdef", name[0]) && name[0] &&
	       strchr("0123456789abcdef", name[1]) && name[1];
}

/* Walks every shard directory: cb(dirpath, name, is_entry, key, st) for entries and temp files. */
typedef int (*walk_fn)(local_backend *lb, const char *path, const char *name, const pw_cache_key *key,
                       const struct stat *st, void *payload);

static int walk(local_backend *lb, walk_fn fn, void *payload)
{
	DIR *top = opendir(lb->vdir);
	struct dirent *de;
	int rc = 0;

	if (!top) {
		if (errno == ENOENT)
			return 0;
		return pw_error_set_errno(PW_EIO, "opendir %s", lb->vdir);
	}
	while (rc == 0 && (de = readdir(top))) {
		char sub[PATH_MAX];
		DIR *d;
		struct dirent *fe;

		if (!is_shard(de->d_name))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", lb->vdir, de->d_name);
		d = opendir(sub);
		if (!d) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			rc = pw_error_set_errno(PW_EIO, "opendir %s", sub);
			break;
		}
		while (rc == 0 && (fe = readdir(d))) {
			char path[PATH_MAX];
			struct stat st;
			pw_cache_key key;
			bool entry = entry_name_key(fe->d_name, &key);

			if (!entry && strncmp(fe->d_name, ".tmp-", 5) != 0 && !is_lease_name(fe->d_name))
				continue;
			if ((size_t)snprintf(path, sizeof path, "%s/%s", sub, fe->d_name) >= sizeof path)
				continue;
			if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;   /* removed meanwhile by another process, or not ours */
			rc = fn(lb, path, fe->d_name, entry ? &key : NULL, &st, payload);
		}
		closedir(d);
	}
	closedir(top);
	return rc;
}

typedef struct list_ctx {
	int (*cb)(const pw_cache_listing *l, void *payload);
	void *payload;
} list_ctx;

static int list_one(local_backend *lb, const char *path, const char *name, const pw_cache_key *key,
                    const struct stat *st, void *payload)
{
	list_ctx *lc = payload;
	pw_cache_listing l;
	pw_cache_meta meta;
	uint64_t off, len;
	int fd;

	if (!key)
		return 0;
	memset(&l, 0, sizeof l);
	l.key = *key;
	l.size = (uint64_t)st->st_size;
	l.last_used = ts_sec(&st->st_mtim);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read_meta(fd, path, &meta, &off, &len) == 0)
			l.created = meta.created;
		else
			pw_error_clear();
		close(fd);
	}
	return lc->cb(&l, lc->payload);
}

static int local_list(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload),
                      void *payload)
{
	list_ctx lc = { cb, payload };
	return walk((local_backend *)b, list_one, &lc);
}

/* ---- eviction ------------------------------------------------------------------------ */

typedef struct gc_item {
	char *path;
	uint64_t size;
	double used;
} gc_item;

typedef struct gc_ctx {
	gc_item *items;
	size_t n, cap;
	uint64_t total;
	double now;
	unsigned tmp_removed;
	uint64_t tmp_freed;
	int err;
} gc_ctx;

static int gc_collect(local_backend *lb, const char *path, const char *name, const pw_cache_key *key,
                      const struct stat *st, void *payload)
{
	gc_ctx *g = payload;

	if (!key) {
		if (g->now - ts_sec(&st->st_mtim) > lb->tmp_max_age) {
			if (unlink(path) == 0) {
				g->tmp_removed++;
				g->tmp_freed += (uint64_t)st->st_size;
				pw_debug("cache", "removed stale temp file or lease %s (a writer that died)", path);
			}
		}
		return 0;
	}
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		gc_item *ni = realloc(g->items, nc * sizeof *ni);
		if (!ni)
			return pw_error_set(PW_ENOMEM, "out of memory scanning %s", lb->dir);
		g->items = ni;
		g->cap = nc;
	}
	g->items[g->n].path = strdup(path);
	if (!g->items[g->n].path)
		return pw_error_set(PW_ENOMEM, "out of memory scanning %s", lb->dir);
	g->items[g->n].size = (uint64_t)st->st_size;
	g->items[g->n].used = ts_sec(&st->st_mtim);
	g->total += (uint64_t)st->st_size;
	g->n++;
	return 0;
}

static int by_use(const void *a, const void *b)
{
	const gc_item *x = a, *y = b;
	if (x->used != y->used)
		return x->used < y->used ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Scans; when the total exceeds `limit`, removes least recently used entries until the total
 * is at most `target`. */
static int gc_scan(local_backend *lb, uint64_t limit, uint64_t target, unsigned *removed,
                   uint64_t *freed, uint64_t *total_out, unsigned *count_out)
{
	gc_ctx g;
	unsigned nrem = 0;
	uint64_t nfreed = 0;
	int rc;

	memset(&g, 0, sizeof g);
	g.now = pw_wall_now();
	pthread_mutex_lock(&lb->gc_lock);
	rc = walk(lb, gc_collect, &g);
	if (rc == 0 && limit && g.total > limit) {
		qsort(g.items, g.n, sizeof *g.items, by_use);
		for (size_t i = 0; i < g.n && g.total > target; i++) {
			if (unlink(g.items[i].path) < 0) {
				if (errno != ENOENT) {
					rc = pw_error_set_errno(PW_EIO, "unlink %s", g.items[i].path);
					break;
				}
			} else {
				nrem++;
				nfreed += g.items[i].size;
				pw_debug("cache", "evicted %s (%llu bytes)", g.items[i].path,
				         (unsigned long long)g.items[i].size);
			}
			g.total -= g.items[i].size;   /* gone either way */
		}
	}
	pthread_mutex_unlock(&lb->gc_lock);
	if (g.tmp_removed)
		pw_info("cache", "removed %u stale temp files (writers that died) from %s", g.tmp_removed, lb->dir);
	if (nrem)
		pw_info("cache", "evicted %u entries (%llu bytes) from %s to stay under %llu bytes",
		        nrem, (unsigned long long)nfreed, lb->dir, (unsigned long long)limit);
	for (size_t i = 0; i < g.n; i++)
		free(g.items[i].path);
	free(g.items);
	if (removed)
		*removed = nrem;
	if (freed)
		*freed = nfreed + g.tmp_freed;
	if (total_out)
		*total_out = g.total;
	if (count_out)
		*count_out = (unsigned)(g.n - nrem);
	return rc;
}

int pw_cache_local_gc(pw_cache_backend *b, uint64_t max_size, unsigned *removed, uint64_t *freed)
{
	local_backend *lb = as_local(b, "cache gc");
	if (!lb)
		return PW_EINVALID;
	uint64_t limit = max_size ? max_size : lb->max_size;
	return gc_scan(lb, limit, limit, removed, freed, NULL, NULL);
}

int pw_cache_local_usage(pw_cache_backend *b, uint64_t *bytes, unsigned *entries)
{
	local_backend *lb = as_local(b, "cache usage");
	return lb ? gc_scan(lb, 0, 0, NULL, NULL, bytes, entries) : PW_EINVALID;
}

const char *pw_cache_local_dir(const pw_cache_backend *b)
{
	local_backend *lb = as_local(b, "cache directory");
	return lb ? lb->dir : NULL;
}

static void local_free(pw_cache_backend *b)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	if (!lb)
		return;
	pthread_mutex_destroy(&lb->gc_lock);
	free(lb->dir);
	free(lb->vdir);
	free(lb);
}

/* ---- leases (claims) ----------------------------------------------------------------- */

/* Reads the lease at path into *holder (an unparsable one: pw_cache__claim_unreadable).
 * PW_ENOTFOUND when there is none. */
static int read_lease(const char *path, pw_cache_claim *holder)
{
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(path, PW_CACHE_CLAIM_MAX, &b);

	if (rc == PW_EIO && !pw_path_exists(path))
		rc = pw_error_set(PW_ENOTFOUND, "no lease %s", path);
	if (rc == PW_EINVALID) {   /* larger than any claim: unreadable, judged by its ttl */
		pw_cache__claim_unreadable(holder, "oversized", 9);
		return 0;
	}
	if (rc < 0)
		return rc;
	if (pw_cache_claim_from_json(holder, (const char *)b.data, b.len) < 0) {
		pw_debug("cache", "lease %s: %s", path, pw_error_last());
		pw_cache__claim_unreadable(holder, b.data, b.len);
	}
	pw_buf_free(&b);
	return 0;
}

static bool same_claim(const pw_cache_claim *a, const pw_cache_claim *b)
{
	return !strcmp(a->nonce, b->nonce) && a->seq == b->seq;
}

/* O_EXCL create of the lease with `mine`: 0, PW_EMISMATCH when one exists, PW_EIO. */
static int create_lease(const char *path, const char *dir, const pw_buf *json)
{
	int fd;

	do
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == EEXIST ? PW_EMISMATCH : pw_error_set_errno(PW_EIO, "create lease %s", path);
	int rc = pw_write_all(fd, json->data, json->len);
	if (rc == 0 && fsync(fd) < 0)
		rc = pw_error_set_errno(PW_EIO, "fsync %s", path);
	if (close(fd) < 0 && rc == 0)
		rc = pw_error_set_errno(PW_EIO, "close %s", path);
	if (rc == 0 && (rc = pw_fsync_dir(dir)) < 0)
		pw_error_prefix("lease %s", path);
	if (rc < 0)
		unlink(path);
	return rc;
}

/*
 * Moves the lease judged expired (`stale`) out of the way: read (still that lease?), renamed
 * to a private name (one process wins), compared with `stale` again, unlinked when it is that
 * lease, put back (link: never over a newer one) when it is not. 0 when it is gone,
 * PW_EMISMATCH when another lease holds the key (read into *holder), PW_EIO. Two takers and
 * a creator racing within microseconds can still both end up building: a duplicate compile
 * of identical bytes, never a wrong entry.
 */
static int remove_stale_lease(const char *path, const char *dir, const pw_cache_claim *stale,
                              const pw_cache_claim *mine, pw_cache_claim *holder)
{
	char priv[PATH_MAX];
	pw_cache_claim seen;

	if ((size_t)snprintf(priv, sizeof priv, "%s/.tmp-takeover.%s" LEASE_SUFFIX, dir, mine->nonce) >= sizeof priv)
		return pw_error_set(PW_EIO, "lease path too long in %s", dir);
	/* Look first: renaming a newer lease away and back leaves a moment without any. */
	int rc = read_lease(path, &seen);
	if (rc == PW_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (!same_claim(&seen, stale)) {
		*holder = seen;
		return PW_EMISMATCH;
	}
	if (rename(path, priv) < 0)
		return errno == ENOENT ? 0 : pw_error_set_errno(PW_EIO, "rename %s", path);
	if (read_lease(priv, &seen) == 0 && same_claim(&seen, stale)) {
		unlink(priv);
		return 0;
	}
	/* A newer lease than the one judged expired: give it back. */
	if (link(priv, path) < 0 && errno != EEXIST)
		pw_debug("cache", "putting back lease %s: %s", path, strerror(errno));
	unlink(priv);
	if (read_lease(path, holder) < 0)
		*holder = seen;
	pw_error_clear();
	return PW_EMISMATCH;
}

static int local_claim(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine,
                       const pw_cache_claim *stale, pw_cache_claim *holder)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX], dir[PATH_MAX];
	pw_buf json = PW_BUF_INIT;
	pw_cache_claim released;
	int rc;

	snprintf(dir, sizeof dir, "%s/%.2s", lb->vdir, key->wasm_sha256);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return pw_error_set_errno(PW_EIO, "mkdir %s", dir);
	lease_path(lb, key, path, sizeof path);
	if ((rc = pw_cache_claim_to_json(mine, &json)) < 0)
		return rc;
	for (int i = 0; i < LEASE_CREATE_TRIES; i++) {
		if (stale && (rc = remove_stale_lease(path, dir, stale, mine, holder)) < 0)
			break;
		rc = create_lease(path, dir, &json);
		if (rc != PW_EMISMATCH)
			break;
		rc = read_lease(path, holder);
		if (rc == PW_ENOTFOUND)
			continue;   /* released between our create and our read */
		if (rc < 0)
			break;
		if (!holder->released) {
			rc = PW_EMISMATCH;
			break;
		}
		released = *holder;   /* a released lease is free: take it */
		stale = &released;
		rc = PW_EMISMATCH;
	}
	pw_buf_free(&json);
	return rc;
}

static int local_renew(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];
	pw_cache_claim now;
	pw_buf json = PW_BUF_INIT;
	int rc;

	lease_path(lb, key, path, sizeof path);
	if ((rc = read_lease(path, &now)) < 0)
		return rc == PW_ENOTFOUND ? PW_EMISMATCH : rc;
	if (strcmp(now.nonce, mine->nonce) != 0)
		return pw_error_set(PW_EMISMATCH, "lease %s was taken over", path);
	if ((rc = pw_cache_claim_to_json(mine, &json)) == 0)
		rc = pw_file_write_atomic(path, json.data, json.len, 0644);
	pw_buf_free(&json);
	return rc;
}

static void local_release(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine)
{
	local_backend *lb = (local_backend *)b;   /* called through local_type only */
	char path[PATH_MAX];
	pw_cache_claim now;

	lease_path(lb, key, path, sizeof path);
	if (read_lease(path, &now) == 0 && !strcmp(now.nonce, mine->nonce) && unlink(path) < 0 && errno != ENOENT)
		pw_debug("cache", "unlink %s: %s", path, strerror(errno));
	pw_error_clear();
}

static const pw_cache_backend_type local_type = {
	.version = PW_CACHE_BACKEND_VERSION,
	.name = "local",
	.get = local_get,
	.exists = local_exists,
	.put = local_put,
	.touch = local_touch,
	.list = local_list,
	.remove = local_remove,
	.free = local_free,
	.claim = local_claim,
	.renew = local_renew,
	.release = local_release,
};

int pw_cache_local_new(pw_cache_backend **out, const char *dir, const pw_local_opts *opts)
{
	local_backend *lb;
	struct stat st;
	int rc;

	*out = NULL;
	if (!dir || !*dir)
		return pw_error_set(PW_EINVALID, "cache directory: empty path");
	if (strlen(dir) > PATH_MAX - 300)
		return pw_error_set(PW_EINVALID, "cache directory path too long: %.80s...", dir);
	lb = calloc(1, sizeof *lb);
	if (!lb)
		return pw_error_set(PW_ENOMEM, "out of memory opening cache %s", dir);
	lb->dir = strdup(dir);
	lb->vdir = malloc(strlen(dir) + 4);
	if (!lb->dir || !lb->vdir) {
		free(lb->dir);
		free(lb->vdir);
		free(lb);
		return pw_error_set(PW_ENOMEM, "out of memory opening cache %s", dir);
	}
	sprintf(lb->vdir, "%s/v1", dir);
	pthread_mutex_init(&lb->gc_lock, NULL);
	lb->max_size = opts && opts->max_size ? opts->max_size : PW_CACHE_LOCAL_DEFAULT_MAX_SIZE;
	lb->tmp_max_age = opts && opts->tmp_max_age > 0 ? opts->tmp_max_age : LOCAL_DEFAULT_TMP_AGE;
	lb->parent.type = &local_type;

	if (stat(lb->vdir, &st) == 0 && S_ISDIR(st.st_mode)) {
		*out = &lb->parent;
		return 0;
	}
	rc = pw_mkdirs(lb->vdir, 0755);
	if (rc == 0 && (stat(lb->vdir, &st) < 0 || !S_ISDIR(st.st_mode)))
		rc = pw_error_set(PW_EIO, "cache directory %s is not a directory", lb->vdir);
	if (rc < 0) {
		pw_error_prefix("cache directory %s", dir);
		local_free(&lb->parent);
		return rc;
	}
	*out = &lb->parent;
	return 0;
}
