/*
 * Unit tests of the cache's byte-level pieces, on real files in a temp directory: keys, the
 * meta JSON and the entry format (strict parsing), the local-directory backend (put/get/
 * exists/list/remove/touch, no temp file left, stale temp files removed, LRU eviction order
 * and limit, corrupt files refused) and the persisted counters (summed exactly across many
 * runs, including after merges).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/cache.h"

static void fill_key(pw_cache_key *k, int engine, int wasm)
{
	char e[16], w[16];
	snprintf(e, sizeof e, "e%d", engine);
	snprintf(w, sizeof w, "w%d", wasm);
	pw_sha256_hex(e, strlen(e), k->engine_hash);
	pw_sha256_hex(w, strlen(w), k->wasm_sha256);
}

/* A plain byte entry (not a real artifact: the backend does not judge entries). */
static void make_entry(pw_cache_entry *e, int engine, int wasm, size_t size)
{
	memset(e, 0, sizeof *e);
	fill_key(&e->meta.key, engine, wasm);
	for (size_t i = 0; i < size; i++) {
		uint8_t c = (uint8_t)(i * 31 + (size_t)wasm);
		pw_buf_append(&e->artifact, &c, 1);
	}
	pw_sha256_hex(e->artifact.data ? e->artifact.data : (const uint8_t *)"", size, e->meta.artifact_sha256);
	e->meta.artifact_size = size;
	e->meta.compile_seconds = 1.5;
	e->meta.created = 1700000000.25;
}

static void entry_path(const char *dir, const pw_cache_key *k, char *out, size_t n)
{
	snprintf(out, n, "%s/v1/%.2s/%s-%s.pwa", dir, k->wasm_sha256, k->engine_hash, k->wasm_sha256);
}

static int count_tmp_files(const char *dir)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	int n = -1;
	snprintf(cmd, sizeof cmd, "find '%s' -name '.tmp-*' | wc -l", dir);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	utimensat(AT_FDCWD, path, ts, 0);
}

/* ---- keys, meta, format ----------------------------------------------------------- */

static void test_key_roundtrip(void)
{
	pw_cache_key k, k2;
	char s[PW_CACHE_KEY_STR_LEN + 1];

	fill_key(&k, 1, 2);
	pw_cache_key_str(&k, s);
	CHECK_INT(strlen(s), PW_CACHE_KEY_STR_LEN);
	CHECK_OK(pw_cache_key_parse(&k2, s));
	CHECK_STR(k2.engine_hash, k.engine_hash);
	CHECK_STR(k2.wasm_sha256, k.wasm_sha256);
	s[3] = 'G';
	CHECK_INT(pw_cache_key_parse(&k2, s), PW_EINVALID);
	CHECK_INT(pw_cache_key_parse(&k2, "abc"), PW_EINVALID);
}

static void test_meta_json_roundtrip(void)
{
	pw_cache_entry e;
	pw_cache_meta m;
	pw_buf j = PW_BUF_INIT;

	make_entry(&e, 1, 1, 10);
	strcpy(e.meta.signature, e.meta.artifact_sha256);
	strcpy(e.meta.subject_digest, "sha256:0123");
	strcpy(e.meta.subject_media_type, "application/vnd.oci.image.manifest.v1+json");
	e.meta.subject_size = 512;
	CHECK_OK(pw_cache_meta_to_json(&e.meta, &j));
	CHECK_OK(pw_cache_meta_from_json(&m, (const char *)j.data, j.len));
	CHECK_STR(m.key.engine_hash, e.meta.key.engine_hash);
	CHECK_STR(m.key.wasm_sha256, e.meta.key.wasm_sha256);
	CHECK_STR(m.artifact_sha256, e.meta.artifact_sha256);
	CHECK_STR(m.signature, e.meta.signature);
	CHECK_STR(m.subject_digest, "sha256:0123");
	CHECK_STR(m.subject_media_type, "application/vnd.oci.image.manifest.v1+json");
	CHECK_INT(m.subject_size, 512);
	CHECK_INT(m.artifact_size, 10);
	CHECK(m.compile_seconds == 1.5);
	CHECK(m.created == 1700000000.25);
	pw_buf_free(&j);
	pw_cache_entry_free(&e);
}

static void test_meta_json_strict(void)
{
	static const char *bad[] = {
		"", "[]", "{}", "{\"format\":2}", "not json",
		/* upper-case hex */
		"{\"format\":1,\"engine_hash\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		/* negative size */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":-1}",
		/* missing size */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\"}",
		/* duplicate key */
		"{\"format\":1,\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":1}",
		/* bad signature */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":1,\"signature\":\"xyz\"}",
		/* negative compile seconds */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":1,\"compile_seconds\":-3}",
		/* subject not an object */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":1,\"subject\":3}",
		/* subject digest with a control character */
		"{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\",\"artifact_sha256\":\"%1$s\",\"artifact_size\":1,\"subject\":{\"digest\":\"a\\nb\"}}",
	};
	char h[PW_SHA256_HEX_LEN + 1], buf[1024];
	pw_cache_meta m;

	pw_sha256_hex("x", 1, h);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(buf, sizeof buf, bad[i], h);
		CHECK_MSG(pw_cache_meta_from_json(&m, buf, strlen(buf)) == PW_EINVALID, "accepted bad meta #%zu: %s",
		          i, buf);
		CHECK_MSG(strstr(pw_error_last(), "cache meta") != NULL, "message: %s", pw_error_last());
	}
	/* A good one, with an unknown key (ignored: forward compatible). */
	snprintf(buf, sizeof buf, "{\"format\":1,\"engine_hash\":\"%1$s\",\"wasm_sha256\":\"%1$s\","
	         "\"artifact_sha256\":\"%1$s\",\"artifact_size\":7,\"future\":[1]}", h);
	CHECK_OK(pw_cache_meta_from_json(&m, buf, strlen(buf)));
	CHECK_INT(m.artifact_size, 7);
}

static void test_entry_format(void)
{
	pw_cache_entry e, d;
	pw_buf f = PW_BUF_INIT;

	make_entry(&e, 1, 2, 1000);
	CHECK_OK(pw_cache_entry_encode_header(&e.meta, &f));
	CHECK(memcmp(f.data, PW_CACHE_ENTRY_MAGIC, 8) == 0);
	CHECK_OK(pw_buf_append(&f, e.artifact.data, e.artifact.len));
	CHECK_OK(pw_cache_entry_decode(&d, f.data, f.len));
	CHECK_INT(d.artifact.len, 1000);
	CHECK(memcmp(d.artifact.data, e.artifact.data, 1000) == 0);
	CHECK_STR(d.meta.artifact_sha256, e.meta.artifact_sha256);
	pw_cache_entry_free(&d);
	/* every truncation is refused */
	for (size_t n = 0; n < f.len; n += (n < 64 ? 1 : 97))
		CHECK_MSG(pw_cache_entry_decode(&d, f.data, n) == PW_EINVALID, "accepted a %zu-byte prefix", n);
	/* a trailing byte */
	CHECK_OK(pw_buf_append(&f, "x", 1));
	CHECK_INT(pw_cache_entry_decode(&d, f.data, f.len), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "truncated or padded") != NULL);
	f.len--;
	/* bad magic */
	f.data[0] ^= 1;
	CHECK_INT(pw_cache_entry_decode(&d, f.data, f.len), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "magic") != NULL);
	pw_buf_free(&f);
	pw_cache_entry_free(&e);
}

/* ---- the local backend ------------------------------------------------------------ */

static void test_local_put_get(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e, g;
	char path[PATH_MAX];
	uint64_t bytes;
	unsigned n;

	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	CHECK_STR(pw_cache_backend_name(b), "local");
	CHECK_STR(pw_cache_local_dir(b), dir);
	make_entry(&e, 1, 1, 5000);
	CHECK_INT(pw_cache_backend_get(b, &e.meta.key, &g), PW_ENOTFOUND);
	CHECK_INT(pw_cache_backend_exists(b, &e.meta.key), PW_ENOTFOUND);
	CHECK_OK(pw_cache_backend_put(b, &e));
	CHECK_OK(pw_cache_backend_exists(b, &e.meta.key));
	CHECK_OK(pw_cache_backend_get(b, &e.meta.key, &g));
	CHECK_INT(g.artifact.len, 5000);
	CHECK(memcmp(g.artifact.data, e.artifact.data, 5000) == 0);
	CHECK_STR(g.meta.artifact_sha256, e.meta.artifact_sha256);
	CHECK(g.meta.compile_seconds == 1.5);
	pw_cache_entry_free(&g);
	entry_path(dir, &e.meta.key, path, sizeof path);
	CHECK(pw_path_exists(path));
	CHECK_INT(count_tmp_files(dir), 0);
	CHECK_OK(pw_cache_local_usage(b, &bytes, &n));
	CHECK_INT(n, 1);
	CHECK(bytes > 5000);
	/* put again (replace): still one entry */
	CHECK_OK(pw_cache_backend_put(b, &e));
	CHECK_OK(pw_cache_local_usage(b, &bytes, &n));
	CHECK_INT(n, 1);
	CHECK_OK(pw_cache_backend_remove(b, &e.meta.key));
	CHECK_INT(pw_cache_backend_remove(b, &e.meta.key), PW_ENOTFOUND);
	CHECK_INT(pw_cache_backend_get(b, &e.meta.key, &g), PW_ENOTFOUND);
	pw_cache_entry_free(&e);
	pw_cache_backend_free(b);
}

static int list_cb(const pw_cache_listing *l, void *payload)
{
	int *n = payload;
	(*n)++;
	return l->created == 1700000000.25 && l->size > 100 && l->last_used > 0 ? 0 : 99;
}

static int list_stop(const pw_cache_listing *l, void *payload)
{
	(void)l;
	(*(int *)payload)++;
	return 7;
}

static void test_local_list(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e;
	char junk[PATH_MAX];
	int n = 0;

	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	for (int i = 0; i < 5; i++) {
		make_entry(&e, 1, i, 200);
		CHECK_OK(pw_cache_backend_put(b, &e));
		pw_cache_entry_free(&e);
	}
	/* files that are not entries are ignored */
	snprintf(junk, sizeof junk, "%s/v1/README", dir);
	CHECK_OK(pw_file_write_atomic(junk, "hi", 2, 0644));
	CHECK_OK(pw_cache_backend_list(b, list_cb, &n));
	CHECK_INT(n, 5);
	n = 0;
	CHECK_INT(pw_cache_backend_list(b, list_stop, &n), 7);
	CHECK_INT(n, 1);
	pw_cache_backend_free(b);
}

static void test_local_touch(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e;
	char path[PATH_MAX];
	struct stat st;

	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	make_entry(&e, 1, 1, 100);
	CHECK_OK(pw_cache_backend_put(b, &e));
	entry_path(dir, &e.meta.key, path, sizeof path);
	set_mtime(path, 1000000);
	CHECK_OK(pw_cache_backend_touch(b, &e.meta.key));
	CHECK(stat(path, &st) == 0);
	CHECK_MSG(st.st_mtime > 1000000, "touch did not update mtime");
	CHECK_OK(pw_cache_backend_remove(b, &e.meta.key));
	CHECK_INT(pw_cache_backend_touch(b, &e.meta.key), PW_ENOTFOUND);
	pw_cache_entry_free(&e);
	pw_cache_backend_free(b);
}

static void test_local_corrupt_refused(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e, g;
	char path[PATH_MAX];
	struct stat st;

	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	make_entry(&e, 1, 1, 3000);
	CHECK_OK(pw_cache_backend_put(b, &e));
	entry_path(dir, &e.meta.key, path, sizeof path);
	CHECK(stat(path, &st) == 0);
	CHECK(truncate(path, st.st_size - 1) == 0);
	CHECK_INT(pw_cache_backend_get(b, &e.meta.key, &g), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), path) != NULL, "message does not name the file: %s", pw_error_last());
	CHECK(truncate(path, 10) == 0);
	CHECK_INT(pw_cache_backend_get(b, &e.meta.key, &g), PW_EINVALID);
	CHECK_OK(pw_file_write_atomic(path, "garbage that is long enough to hold a header", 44, 0644));
	CHECK_INT(pw_cache_backend_get(b, &e.meta.key, &g), PW_EINVALID);
	/* a put replaces the bad file */
	CHECK_OK(pw_cache_backend_put(b, &e));
	CHECK_OK(pw_cache_backend_get(b, &e.meta.key, &g));
	CHECK_INT(g.artifact.len, 3000);
	pw_cache_entry_free(&g);
	pw_cache_entry_free(&e);
	pw_cache_backend_free(b);
}

static void test_local_eviction_order(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e[6];
	char path[PATH_MAX];
	struct stat st;
	uint64_t entry_size, bytes, freed;
	unsigned removed, n;
	pw_local_opts o = { .max_size = 1ull << 30 };

	CHECK_OK(pw_cache_local_new(&b, dir, &o));
	for (int i = 0; i < 6; i++) {
		make_entry(&e[i], 1, 100 + i, 1000);
		CHECK_OK(pw_cache_backend_put(b, &e[i]));
		entry_path(dir, &e[i].meta.key, path, sizeof path);
		set_mtime(path, 1000000 + i * 10);   /* use order: 0 oldest .. 5 newest */
	}
	entry_path(dir, &e[0].meta.key, path, sizeof path);
	CHECK(stat(path, &st) == 0);
	entry_size = (uint64_t)st.st_size;
	/* entry 0 is used again: it becomes the newest */
	set_mtime(path, 2000000);
	/* keep room for 3 entries: 1, 2, 3 go (least recently used first) */
	CHECK_OK(pw_cache_local_gc(b, 3 * entry_size + entry_size / 2, &removed, &freed));
	CHECK_INT(removed, 3);
	CHECK_INT(freed, 3 * entry_size);
	for (int i = 0; i < 6; i++) {
		int want = (i == 0 || i >= 4) ? 0 : PW_ENOTFOUND;
		CHECK_MSG(pw_cache_backend_exists(b, &e[i].meta.key) == want, "entry %d: exists=%d want %d", i,
		          pw_cache_backend_exists(b, &e[i].meta.key), want);
	}
	CHECK_OK(pw_cache_local_usage(b, &bytes, &n));
	CHECK_INT(n, 3);
	CHECK(bytes <= 3 * entry_size + entry_size / 2);
	/* under the limit: nothing happens */
	CHECK_OK(pw_cache_local_gc(b, 3 * entry_size, &removed, NULL));
	CHECK_INT(removed, 0);
	for (int i = 0; i < 6; i++)
		pw_cache_entry_free(&e[i]);
	pw_cache_backend_free(b);
}

static void test_local_limit_on_put(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e;
	char path[PATH_MAX];
	struct stat st;
	uint64_t entry_size, bytes;
	unsigned n;
	pw_local_opts o;

	/* measure one entry's size */
	{
		pw_cache_backend *m;
		CHECK_OK(pw_cache_local_new(&m, pw_test_tmpdir(), NULL));
		make_entry(&e, 1, 0, 4000);
		CHECK_OK(pw_cache_backend_put(m, &e));
		entry_path(pw_cache_local_dir(m), &e.meta.key, path, sizeof path);
		CHECK(stat(path, &st) == 0);
		entry_size = (uint64_t)st.st_size;
		pw_cache_entry_free(&e);
		pw_cache_backend_free(m);
	}
	memset(&o, 0, sizeof o);
	o.max_size = 5 * entry_size;
	CHECK_OK(pw_cache_local_new(&b, dir, &o));
	for (int i = 0; i < 20; i++) {
		make_entry(&e, 1, 1000 + i, 4000);
		CHECK_OK(pw_cache_backend_put(b, &e));
		entry_path(dir, &e.meta.key, path, sizeof path);
		set_mtime(path, 1000000 + i);
		CHECK_OK(pw_cache_local_usage(b, &bytes, &n));
		CHECK_MSG(bytes <= o.max_size, "after put %d: %llu bytes over the limit %llu", i,
		          (unsigned long long)bytes, (unsigned long long)o.max_size);
		/* the entry just put is the most recently used: it is still there */
		CHECK_OK(pw_cache_backend_exists(b, &e.meta.key));
		pw_cache_entry_free(&e);
	}
	/* the newest four survive (90% of 5 entries keeps 4) */
	for (int i = 16; i < 20; i++) {
		pw_cache_key k;
		fill_key(&k, 1, 1000 + i);
		CHECK_OK(pw_cache_backend_exists(b, &k));
	}
	pw_cache_backend_free(b);
}

static void test_local_stale_tmp_removed(void)
{
	const char *dir = pw_test_tmpdir();
	pw_cache_backend *b;
	pw_cache_entry e;
	char old_tmp[PATH_MAX], new_tmp[PATH_MAX];
	pw_local_opts o = { .max_size = 0, .tmp_max_age = 600 };

	CHECK_OK(pw_cache_local_new(&b, dir, &o));
	make_entry(&e, 1, 1, 10);
	CHECK_OK(pw_cache_backend_put(b, &e));
	snprintf(old_tmp, sizeof old_tmp, "%s/v1/%.2s/.tmp-dead.1.00000001", dir, e.meta.key.wasm_sha256);
	snprintf(new_tmp, sizeof new_tmp, "%s/v1/%.2s/.tmp-live.2.00000002", dir, e.meta.key.wasm_sha256);
	CHECK_OK(pw_file_write_atomic(old_tmp, "partial", 7, 0644));
	CHECK_OK(pw_file_write_atomic(new_tmp, "partial", 7, 0644));
	set_mtime(old_tmp, time(NULL) - 3600);
	CHECK_OK(pw_cache_local_gc(b, 0, NULL, NULL));
	CHECK(!pw_path_exists(old_tmp));
	CHECK(pw_path_exists(new_tmp));
	CHECK_OK(pw_cache_backend_exists(b, &e.meta.key));
	pw_cache_entry_free(&e);
	pw_cache_backend_free(b);
}

static void test_local_bad_dir(void)
{
	char path[PATH_MAX];
	pw_cache_backend *b;

	snprintf(path, sizeof path, "%s/file", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(path, "x", 1, 0644));
	strcat(path, "/cache");
	CHECK(pw_cache_local_new(&b, path, NULL) < 0);
	CHECK(b == NULL);
	CHECK_MSG(strstr(pw_error_last(), path) != NULL, "message does not name the dir: %s", pw_error_last());
}

/* ---- persisted counters ------------------------------------------------------------ */

static void test_totals_sum_and_merge(void)
{
	char dir[PATH_MAX];
	pw_cache_totals run, t;

	snprintf(dir, sizeof dir, "%s/stats", pw_test_tmpdir());
	CHECK_OK(pw_cache_totals_load(dir, &t));   /* missing: zeros */
	CHECK_INT(t.runs, 0);
	memset(&run, 0, sizeof run);
	run.runs = 1;
	run.lookups = 3;
	run.hits = 2;
	run.misses = 1;
	run.hits_by_tier[0] = 2;
	run.bytes_read = 1000;
	run.compile_seconds = 0.5;
	run.compile_seconds_saved = 4.0;
	for (int i = 0; i < 100; i++)   /* crosses the merge threshold several times */
		CHECK_OK(pw_cache_totals_add(dir, &run));
	CHECK_OK(pw_cache_totals_load(dir, &t));
	CHECK_INT(t.runs, 100);
	CHECK_INT(t.lookups, 300);
	CHECK_INT(t.hits, 200);
	CHECK_INT(t.misses, 100);
	CHECK_INT(t.hits_by_tier[0], 200);
	CHECK_INT(t.bytes_read, 100000);
	CHECK(t.compile_seconds > 49.99 && t.compile_seconds < 50.01);
	CHECK(t.compile_seconds_saved > 399.99 && t.compile_seconds_saved < 400.01);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_key_roundtrip),
		PW_TEST(test_meta_json_roundtrip),
		PW_TEST(test_meta_json_strict),
		PW_TEST(test_entry_format),
		PW_TEST(test_local_put_get),
		PW_TEST(test_local_list),
		PW_TEST(test_local_touch),
		PW_TEST(test_local_corrupt_refused),
		PW_TEST(test_local_eviction_order),
		PW_TEST(test_local_limit_on_put),
		PW_TEST(test_local_stale_tmp_removed),
		PW_TEST(test_local_bad_dir),
		PW_TEST(test_totals_sum_and_merge),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
