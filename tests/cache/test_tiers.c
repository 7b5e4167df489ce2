/*
 * Tests of the tiered cache (pw_cache_get_or_compile) with the real engine and real
 * artifacts compiled from tiny fixtures, over the real local backend and a fake backend that
 * keeps entries in memory and counts calls (libgit2's fake odb backend): miss -> compile ->
 * put into every tier; hit -> verified, touched, copied into the tiers above; a failing tier
 * is skipped for the rest of the run; every kind of bad entry (flipped byte, truncated,
 * renamed, another engine, unsigned or badly signed with a key) is refused before any load,
 * recompiled, replaced and counted; concurrent lookups of one key compile once. Each hit is
 * loaded and called to prove the bytes are a working artifact.
 *
 * The split API (pw_cache_lookup / publish / reject / get_or_build) is tested with a fake
 * builder that counts its calls and returns a real artifact compiled once at the start (so
 * verification passes), garbage, another module's artifact, or an error.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/cache.h"
#include "prewarm/cache_backend.h"
#include "prewarm/engine.h"

/* ---- a fake backend that counts calls ---------------------------------------------- */

#define FAKE_MAX 8

typedef struct fake_backend {
	pw_cache_backend parent;
	int get_calls, put_calls, touch_calls, exists_calls, remove_calls;
	int fail_get, fail_put;   /* return PW_EIO from get / put */
	int n;
	pw_cache_key keys[FAKE_MAX];       /* where each entry is stored (may differ from its record) */
	pw_cache_entry entries[FAKE_MAX];
} fake_backend;

static int fake_find(fake_backend *f, const pw_cache_key *k)
{
	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->keys[i].engine_hash, k->engine_hash) &&
		    !strcmp(f->keys[i].wasm_sha256, k->wasm_sha256))
			return i;
	return -1;
}

static int fake_get(pw_cache_backend *b, const pw_cache_key *k, pw_cache_entry *out)
{
	fake_backend *f = (fake_backend *)b;
	int i;

	f->get_calls++;
	memset(out, 0, sizeof *out);
	if (f->fail_get)
		return pw_error_set(PW_EIO, "fake: get failed");
	if ((i = fake_find(f, k)) < 0)
		return pw_error_set(PW_ENOTFOUND, "fake: miss");
	out->meta = f->entries[i].meta;
	return pw_buf_append(&out->artifact, f->entries[i].artifact.data, f->entries[i].artifact.len);
}

static int fake_exists(pw_cache_backend *b, const pw_cache_key *k)
{
	fake_backend *f = (fake_backend *)b;
	f->exists_calls++;
	return fake_find(f, k) >= 0 ? 0 : PW_ENOTFOUND;
}

/* Stores under an explicit key (to plant entries a test crafted). */
static int fake_store(fake_backend *f, const pw_cache_key *k, const pw_cache_entry *e)
{
	int i = fake_find(f, k);
	if (i < 0) {
		if (f->n == FAKE_MAX)
			return pw_error_set(PW_EIO, "fake: full");
		i = f->n++;
	} else {
		pw_cache_entry_free(&f->entries[i]);
	}
	memset(&f->entries[i], 0, sizeof f->entries[i]);
	f->entries[i].meta = e->meta;
	f->keys[i] = *k;
	return pw_buf_append(&f->entries[i].artifact, e->artifact.data, e->artifact.len);
}

static int fake_put(pw_cache_backend *b, const pw_cache_entry *e)
{
	fake_backend *f = (fake_backend *)b;
	f->put_calls++;
	if (f->fail_put)
		return pw_error_set(PW_EIO, "fake: put failed (disk full)");
	return fake_store(f, &e->meta.key, e);
}

static int fake_touch(pw_cache_backend *b, const pw_cache_key *k)
{
	((fake_backend *)b)->touch_calls++;
	return 0;
}

static int fake_remove(pw_cache_backend *b, const pw_cache_key *k)
{
	fake_backend *f = (fake_backend *)b;
	int i = fake_find(f, k);
	f->remove_calls++;
	if (i < 0)
		return PW_ENOTFOUND;
	pw_cache_entry_free(&f->entries[i]);
	f->n--;
	f->entries[i] = f->entries[f->n];
	f->keys[i] = f->keys[f->n];
	return 0;
}

/* The cache frees its backends: the fake's counters must outlive it, so free is a no-op
 * and the test frees the fake itself. */
static void fake_free(pw_cache_backend *b)
{
	(void)b;
}

static const pw_cache_backend_type fake_type = {
	.version = PW_CACHE_BACKEND_VERSION,
	.name = "fake",
	.get = fake_get,
	.exists = fake_exists,
	.put = fake_put,
	.touch = fake_touch,
	.remove = fake_remove,
	.free = fake_free,
};

static void fake_init(fake_backend *f, const char *name)
{
	memset(f, 0, sizeof *f);
	f->parent.type = &fake_type;
	f->parent.name = name;
}

static void fake_clear(fake_backend *f)
{
	for (int i = 0; i < f->n; i++)
		pw_cache_entry_free(&f->entries[i]);
	f->n = 0;
}

/* ---- shared fixtures ---------------------------------------------------------------- */

static pw_engine *g_engine;
static pw_buf g_wasm, g_wasm2;
static pw_buf g_art, g_art2, g_garbage;   /* setup_artifacts(): real artifacts of g_wasm, g_wasm2 */
static pw_cache_key g_key;                /* the key of g_wasm */

static int setup(void)
{
	if (g_engine)
		return 0;
	if (pw_file_read(pw_test_fixture("cache_small.wasm"), 0, &g_wasm) < 0 ||
	    pw_file_read(pw_test_fixture("cache_other.wasm"), 0, &g_wasm2) < 0) {
		pw_test_fail(__FILE__, __LINE__, "fixtures: %s", pw_error_last());
		return -1;
	}
	if (pw_engine_new(&g_engine, NULL) < 0) {
		pw_test_fail(__FILE__, __LINE__, "engine: %s", pw_error_last());
		return -1;
	}
	return 0;
}

/* setup() plus one real compile of each fixture, for the fake builder to hand out. */
static int setup_artifacts(void)
{
	if (setup() < 0)
		return -1;
	if (g_art.len)
		return 0;
	if (pw_engine_compile(g_engine, g_wasm.data, g_wasm.len, NULL, &g_art, NULL) < 0 ||
	    pw_engine_compile(g_engine, g_wasm2.data, g_wasm2.len, NULL, &g_art2, NULL) < 0 ||
	    pw_buf_puts(&g_garbage, "not an artifact, though long enough to look like one at a glance") < 0) {
		pw_test_fail(__FILE__, __LINE__, "compile: %s", pw_error_last());
		pw_buf_free(&g_art);
		return -1;
	}
	pw_cache_key_for(&g_key, g_engine, g_wasm.data, g_wasm.len);
	return 0;
}

/* Loads artifact bytes and calls answer(): proves they are a working artifact. */
static long call_answer(const pw_buf *art)
{
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	pw_val r = 0;
	long v = -1;

	if (pw_artifact_load(&a, art->data, art->len, NULL, NULL) == 0 &&
	    pw_instance_new(&inst, a, NULL) == 0 && pw_instance_call(inst, "answer", NULL, 0, &r, 1) == 0)
		v = (long)(uint32_t)r;
	else
		fprintf(stderr, "    load/call: %s\n", pw_error_last());
	pw_instance_free(inst);
	pw_artifact_free(a);
	return v;
}

static pw_cache *new_cache(const char *key_file)
{
	pw_cache_opts o = { .signing_key_file = key_file, .stats_dir = NULL };
	pw_cache *c = NULL;
	if (pw_cache_new(&c, &o) < 0)
		pw_test_fail(__FILE__, __LINE__, "pw_cache_new: %s", pw_error_last());
	return c;
}

/* A new cache recording its counters (on pw_cache_free) in DIR/stats of a fresh directory
 * DIR (*dir); NULL (the test has failed) on error. */
static pw_cache *new_cache_counted(const char **dir, char stats[PATH_MAX])
{
	pw_cache_opts o = { .signing_key_file = NULL, .stats_dir = stats };
	pw_cache *c = NULL;

	*dir = pw_test_tmpdir();
	snprintf(stats, PATH_MAX, "%s/stats", *dir);
	if (pw_cache_new(&c, &o) < 0)
		pw_test_fail(__FILE__, __LINE__, "pw_cache_new: %s", pw_error_last());
	return c;
}

/* new_cache_counted() over the real local backend in DIR (*b, owned by the cache). */
static pw_cache *local_cache_counted(const char **dir, char stats[PATH_MAX], pw_cache_backend **b)
{
	pw_cache *c = new_cache_counted(dir, stats);

	if (!c)
		return NULL;
	if (pw_cache_local_new(b, *dir, NULL) < 0 || pw_cache_add_backend(c, *b) < 0) {
		pw_test_fail(__FILE__, __LINE__, "the local tier: %s", pw_error_last());
		pw_cache_free(c);
		return NULL;
	}
	return c;
}

static int lookup(pw_cache *c, const pw_buf *wasm, pw_buf *art, pw_cache_result *res)
{
	pw_buf_free(art);
	return pw_cache_get_or_compile(c, g_engine, wasm->data, wasm->len, NULL, NULL, art, res);
}

/* ---- a fake builder that counts calls ---------------------------------------------- */

typedef struct fake_builder {
	const pw_buf *bytes;   /* appended to the artifact; NULL = fail with an error */
	double seconds;        /* reported cost */
	unsigned delay_us;     /* keeps a build in flight (threads) */
	int calls;             /* atomic */
} fake_builder;

static int fake_build(void *payload, pw_buf *artifact, double *seconds)
{
	fake_builder *fb = payload;

	__atomic_fetch_add(&fb->calls, 1, __ATOMIC_SEQ_CST);
	if (fb->delay_us)
		usleep(fb->delay_us);
	if (!fb->bytes)
		return pw_error_set(PW_EINVALID, "fake build: module refused by the compiler");
	*seconds = fb->seconds;
	return pw_buf_append(artifact, fb->bytes->data, fb->bytes->len);
}

static int build(pw_cache *c, fake_builder *fb, pw_buf *art, pw_cache_result *res)
{
	pw_buf_free(art);
	return pw_cache_get_or_build(c, &g_key, fake_build, fb, NULL, art, res);
}

static bool same_bytes(const pw_buf *a, const pw_buf *b)
{
	return a->len == b->len && a->len && memcmp(a->data, b->data, a->len) == 0;
}

/* A new cache (signed with key_file unless NULL) over the fakes a then b (b may be NULL)
 * as they are, entries and counters kept; NULL (the test has failed) on error. */
static pw_cache *cache_with(const char *key_file, fake_backend *a, fake_backend *b)
{
	pw_cache *c = new_cache(key_file);

	if (!c)
		return NULL;
	if (pw_cache_add_backend(c, &a->parent) < 0 || (b && pw_cache_add_backend(c, &b->parent) < 0)) {
		pw_test_fail(__FILE__, __LINE__, "pw_cache_add_backend: %s", pw_error_last());
		pw_cache_free(c);
		return NULL;
	}
	return c;
}

/* cache_with() over the fakes a and b (may be NULL), each reset and named first. */
static pw_cache *cache_over(const char *key_file, fake_backend *a, const char *an, fake_backend *b,
                            const char *bn)
{
	fake_init(a, an);
	if (b)
		fake_init(b, bn);
	return cache_with(key_file, a, b);
}

/* The end of a test: frees the cache, empties the fakes (b may be NULL), frees ART (may be
 * NULL). */
static void teardown(pw_cache *c, fake_backend *a, fake_backend *b, pw_buf *art)
{
	pw_cache_free(c);
	fake_clear(a);
	if (b)
		fake_clear(b);
	pw_buf_free(art);
}

/* Eight threads on one module at once: through pw_cache_get_or_build(g_key, fb), or through
 * pw_cache_get_or_compile(g_wasm) when fb is NULL. */
typedef struct thr {
	pw_cache *c;
	fake_builder *fb;
	pw_buf art;
	int rc;
	char err[256];
} thr;

static void *thr_main(void *p)
{
	thr *t = p;
	pw_cache_result res;

	if (t->fb)
		t->rc = pw_cache_get_or_build(t->c, &g_key, fake_build, t->fb, NULL, &t->art, &res);
	else
		t->rc = pw_cache_get_or_compile(t->c, g_engine, g_wasm.data, g_wasm.len, NULL, NULL, &t->art, &res);
	snprintf(t->err, sizeof t->err, "%s", t->rc < 0 ? pw_error_last() : "");
	return NULL;
}

/* 0 when all 8 ran (and were joined). */
static int run_threads(pw_cache *c, fake_builder *fb, thr t[8])
{
	pthread_t th[8];
	int n = 0;

	for (; n < 8; n++) {
		memset(&t[n], 0, sizeof t[n]);
		t[n].c = c;
		t[n].fb = fb;
		if (pthread_create(&th[n], NULL, thr_main, &t[n]) != 0)
			break;
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return n == 8 ? 0 : -1;
}

/* Every thread succeeded with the bytes WANT (NULL: whatever the first thread got); the
 * test has failed otherwise. */
static void expect_threads_got(const thr t[8], const pw_buf *want)
{
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(t[i].rc == 0, "thread %d: %s", i, t[i].err);
		CHECK(same_bytes(&t[i].art, want ? want : &t[0].art));
	}
}

static void free_threads(thr t[8])
{
	for (int i = 0; i < 8; i++)
		pw_buf_free(&t[i].art);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_local_compile_then_hit(void)
{
	pw_cache *c;
	pw_cache_backend *b;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf a1 = PW_BUF_INIT, a2 = PW_BUF_INIT;
	const char *dir;
	char stats[PATH_MAX];
	pw_cache_totals t;

	if (setup() < 0)
		return;
	c = local_cache_counted(&dir, stats, &b);
	CHECK(c);
	CHECK_OK(lookup(c, &g_wasm, &a1, &res));
	CHECK_INT(res.tier, -1);
	CHECK_STR(res.tier_name, "compile");
	CHECK(res.compile_seconds > 0);
	CHECK_OK(lookup(c, &g_wasm, &a2, &res));
	CHECK_INT(res.tier, 0);
	CHECK_STR(res.tier_name, "local");
	CHECK(a1.len == a2.len && memcmp(a1.data, a2.data, a1.len) == 0);
	CHECK_INT(call_answer(&a2), 42);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.ntiers, 1);
	CHECK_INT(st.compiles, 1);
	CHECK_INT(st.tier[0].hits, 1);
	CHECK_INT(st.tier[0].misses, 1);
	CHECK_INT(st.tier[0].puts, 1);
	CHECK_INT(st.tier[0].bytes_read, a2.len);
	CHECK(st.compile_seconds_saved > 0);
	pw_cache_free(c);
	/* the run's counters were recorded */
	CHECK_OK(pw_cache_totals_load(stats, &t));
	CHECK_INT(t.runs, 1);
	CHECK_INT(t.lookups, 2);
	CHECK_INT(t.hits, 1);
	CHECK_INT(t.misses, 1);
	CHECK_INT(t.compiles, 1);
	CHECK(t.compile_seconds_saved > 0);
	pw_buf_free(&a1);
	pw_buf_free(&a2);
}

static void test_tiers_copy_up(void)
{
	static fake_backend up, down;
	pw_cache *c;
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;

	if (setup() < 0)
		return;
	/* fill only the lower tier */
	c = cache_over(NULL, &down, "down", NULL, NULL);
	CHECK(c);
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(down.put_calls, 1);
	pw_cache_free(c);
	down.get_calls = down.put_calls = 0;

	fake_init(&up, "up");
	c = cache_with(NULL, &up, &down);
	CHECK(c);
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 1);
	CHECK_STR(res.tier_name, "down");
	CHECK_INT(up.get_calls, 1);
	CHECK_INT(down.get_calls, 1);
	CHECK_INT(down.touch_calls, 1);
	CHECK_INT(up.put_calls, 1);     /* copied up */
	CHECK_INT(down.put_calls, 0);
	CHECK_INT(call_answer(&art), 42);
	/* now the upper tier answers and the lower one is not asked */
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 0);
	CHECK_INT(up.get_calls, 2);
	CHECK_INT(down.get_calls, 1);
	/* a module nowhere: both asked, compiled once, put into both */
	CHECK_OK(lookup(c, &g_wasm2, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(up.get_calls, 3);
	CHECK_INT(down.get_calls, 2);
	CHECK_INT(up.put_calls, 2);
	CHECK_INT(down.put_calls, 1);
	CHECK_INT(call_answer(&art), 7);
	teardown(c, &up, &down, &art);
}

static void test_tier_failure_marks_failed(void)
{
	static fake_backend bad, good;
	pw_cache *c;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf art = PW_BUF_INIT;

	if (setup() < 0)
		return;
	c = cache_over(NULL, &bad, "bad", &good, "good");
	CHECK(c);
	bad.fail_get = 1;
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(bad.get_calls, 1);
	CHECK_INT(bad.put_calls, 0);    /* failed tier: not written either */
	CHECK_INT(good.put_calls, 1);
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 1);
	CHECK_INT(bad.get_calls, 1);    /* not asked again this run */
	pw_cache_get_stats(c, &st);
	CHECK(st.tier[0].failed);
	CHECK_INT(st.tier[0].errors, 1);
	CHECK(!st.tier[1].failed);
	pw_cache_free(c);
	fake_clear(&good);

	/* a tier whose put fails still serves hits but is not written again */
	c = cache_over(NULL, &bad, "full", NULL, NULL);
	CHECK(c);
	bad.fail_put = 1;
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_OK(lookup(c, &g_wasm2, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(bad.put_calls, 1);
	CHECK_INT(bad.get_calls, 2);
	pw_cache_get_stats(c, &st);
	CHECK(st.tier[0].write_failed);
	CHECK(!st.tier[0].failed);
	CHECK_INT(st.tier[0].put_errors, 1);
	CHECK_INT(st.compiles, 2);
	pw_cache_free(c);
	pw_buf_free(&art);
}

/* Plants `e` in the fake under `key`, then looks `wasm` up: the entry must be refused,
 * the module recompiled, the entry replaced by a good one, and the refusal counted. */
static void expect_refused(fake_backend *f, const char *key_file, const pw_cache_key *key,
                           const pw_cache_entry *e, const char *why)
{
	pw_cache *c = new_cache(key_file);
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf art = PW_BUF_INIT;
	pw_cache_entry got;

	if (!c)
		return;
	fake_clear(f);
	f->put_calls = 0;
	CHECK_OK(fake_store(f, key, e));  /* stored under `key`, whatever its record says */
	CHECK_OK(pw_cache_add_backend(c, &f->parent));
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_MSG(res.tier == -1, "%s: entry was not refused", why);
	pw_cache_get_stats(c, &st);
	CHECK_MSG(st.tier[0].rejected == 1, "%s: rejected = %llu", why, (unsigned long long)st.tier[0].rejected);
	CHECK_INT(st.compiles, 1);
	CHECK_INT(f->put_calls, 1);       /* replaced */
	CHECK_INT(call_answer(&art), 42);
	/* the replacement verifies */
	CHECK_OK(pw_cache_backend_get(&f->parent, key, &got));
	CHECK_OK(pw_cache_verify_entry_for(c, key, &got));
	pw_cache_entry_free(&got);
	/* and is a hit now */
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 0);
	pw_cache_free(c);
	pw_buf_free(&art);
}

/* A copy of the entry FROM in E (the caller frees it). */
static int copy_entry(const pw_cache_entry *from, pw_cache_entry *e)
{
	memset(e, 0, sizeof *e);
	e->meta = from->meta;
	return pw_buf_append(&e->artifact, from->artifact.data, from->artifact.len);
}

/* The entry of WASM, produced by the cache itself through a fake tier: its key in KEY and a
 * copy of it in E (the caller frees it). 0, or -1 (E empty). */
static int make_entry(const pw_buf *wasm, pw_cache_key *key, pw_cache_entry *e)
{
	static fake_backend f;
	pw_cache *c = new_cache(NULL);
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;
	int rc = -1;

	memset(e, 0, sizeof *e);
	if (!c)
		return -1;
	fake_init(&f, "fake");
	if (pw_cache_add_backend(c, &f.parent) == 0 && lookup(c, wasm, &art, &res) == 0 && f.n == 1) {
		*key = f.entries[0].meta.key;
		rc = copy_entry(&f.entries[0], e);
	}
	teardown(c, &f, NULL, &art);
	return rc;
}

/* The good entry of g_wasm (make_entry), checked to verify. 0, or -1 with the test failed
 * or skipped. */
static int good_entry(pw_cache_key *key, pw_cache_entry *good)
{
	memset(good, 0, sizeof *good);
	if (setup() < 0)
		return -1;
	if (make_entry(&g_wasm, key, good) < 0)
		pw_test_fail(__FILE__, __LINE__, "making the good entry: %s", pw_error_last());
	else if (pw_cache_verify_entry_for(NULL, key, good) < 0)
		pw_test_fail(__FILE__, __LINE__, "the good entry does not verify: %s", pw_error_last());
	return pw_test_stopped() ? -1 : 0;
}

/* E, stored under KEY, must fail verification (a message holding MSG, when given) and be
 * refused by a lookup (expect_refused), with the signing key KEY_FILE or none. Frees E. */
static void refuse_entry(const pw_cache_key *key, pw_cache_entry *e, const char *key_file,
                         const char *msg, const char *why)
{
	static fake_backend f;
	fake_init(&f, "fake");
	if (!key_file) {
		CHECK_MSG(pw_cache_verify_entry_for(NULL, key, e) == PW_EMISMATCH, "%s: verified", why);
		CHECK_MSG(!msg || strstr(pw_error_last(), msg), "%s: message %s", why, pw_error_last());
	}
	expect_refused(&f, key_file, key, e, why);
	pw_cache_entry_free(e);
	fake_clear(&f);
}

/* The good entry's key in KEY and a copy of it in E; -1 when the test stopped. */
static int good_copy(pw_cache_key *key, pw_cache_entry *e)
{
	pw_cache_entry good;
	if (good_entry(key, &good) < 0)
		return -1;
	int rc = copy_entry(&good, e);
	pw_cache_entry_free(&good);
	return rc;
}

static void test_refused_flipped_byte(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	if (good_copy(&key, &e) < 0)
		return;
	e.artifact.data[e.artifact.len / 2] ^= 0x40;
	refuse_entry(&key, &e, NULL, "sha256", "flipped byte");
}

static void test_refused_truncated(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	if (good_copy(&key, &e) < 0)
		return;
	e.artifact.len -= 100;   /* the record still says the full size */
	refuse_entry(&key, &e, NULL, "bytes", "truncated");
}

/* The good entry's key in KEY, and in E the entry of another module (to store under KEY). */
static int renamed_entry(pw_cache_key *key, pw_cache_entry *e)
{
	pw_cache_key key2;
	if (good_copy(key, e) < 0)
		return -1;
	pw_cache_entry_free(e);
	if (make_entry(&g_wasm2, &key2, e) < 0 || !strcmp(key2.wasm_sha256, key->wasm_sha256)) {
		pw_test_fail(__FILE__, __LINE__, "another module's entry: %s", pw_error_last());
		return -1;
	}
	return 0;
}

/* The entry of another module stored under this key. */
static void test_refused_renamed(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	if (renamed_entry(&key, &e) == 0)
		refuse_entry(&key, &e, NULL, "renamed", "renamed");
}

/* Renamed with its record rewritten to the new key: the artifact's description still names
 * the other module. */
static void test_refused_renamed_record_rewritten(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	if (renamed_entry(&key, &e) < 0)
		return;
	e.meta.key = key;
	refuse_entry(&key, &e, NULL, "compiled from wasm", "renamed, record rewritten");
}

/* An artifact built with other flags, recorded under this engine's key. */
static void test_refused_other_engine(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	pw_engine *other = NULL;
	pw_engine_opts eo;
	if (good_copy(&key, &e) < 0)
		return;
	memset(&eo, 0, sizeof eo);
	eo.extra_cflags = "-DPW_CACHE_TEST_OTHER_ENGINE=1";
	CHECK_OK(pw_engine_new(&other, &eo));
	CHECK(strcmp(pw_engine_hash(other), pw_engine_hash(g_engine)) != 0);
	pw_buf_clear(&e.artifact);
	CHECK_OK(pw_engine_compile(other, g_wasm.data, g_wasm.len, NULL, &e.artifact, NULL));
	pw_engine_free(other);
	e.meta.artifact_size = e.artifact.len;
	pw_sha256_hex(e.artifact.data, e.artifact.len, e.meta.artifact_sha256);
	refuse_entry(&key, &e, NULL, "engine", "other engine");
}

/* A signing key file "s3cret\n" in the test's directory. */
static const char *signing_key_file(void)
{
	static char keyfile[PATH_MAX];
	snprintf(keyfile, sizeof keyfile, "%s/key", pw_test_tmpdir());
	if (pw_file_write_atomic(keyfile, "s3cret\n", 7, 0600) < 0)
		pw_test_fail(__FILE__, __LINE__, "writing the key: %s", pw_error_last());
	return keyfile;
}

/* good_copy() and the signing key file; NULL when the test stopped. */
static const char *good_copy_and_key(pw_cache_key *key, pw_cache_entry *e)
{
	if (good_copy(key, e) < 0)
		return NULL;
	const char *keyfile = signing_key_file();
	if (pw_test_stopped()) {
		pw_cache_entry_free(e);
		return NULL;
	}
	return keyfile;
}

static void test_refused_unsigned_with_key(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	const char *keyfile = good_copy_and_key(&key, &e);
	if (keyfile)
		refuse_entry(&key, &e, keyfile, NULL, "unsigned with a key");
}

static void test_refused_signed_with_another_key(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	const char *keyfile = good_copy_and_key(&key, &e);
	if (!keyfile)
		return;
	pw_cache_sign((const uint8_t *)"other", 5, &e.meta, e.meta.signature);
	refuse_entry(&key, &e, keyfile, NULL, "signed with another key");
}

/* Correctly signed: accepted (the key file's trailing newline is not part of the key). */
static void test_signed_entry_accepted(void)
{
	pw_cache_entry e;
	pw_cache_key key;
	const char *keyfile = good_copy_and_key(&key, &e);
	if (!keyfile)
		return;
	pw_cache_sign((const uint8_t *)"s3cret", 6, &e.meta, e.meta.signature);
	pw_cache *cs = new_cache(keyfile);
	CHECK(cs != NULL);
	CHECK(pw_cache_signing(cs));
	CHECK_OK(pw_cache_verify_entry_for(cs, &key, &e));
	pw_cache_free(cs);
	pw_cache_entry_free(&e);
}

static void test_signing_key_errors(void)
{
	pw_cache *c = NULL;
	pw_cache_opts o = { .signing_key_file = "/nonexistent/key", .stats_dir = NULL };
	char keyfile[PATH_MAX];

	CHECK(pw_cache_new(&c, &o) < 0);
	CHECK(c == NULL);
	CHECK(strstr(pw_error_last(), "/nonexistent/key") != NULL);
	snprintf(keyfile, sizeof keyfile, "%s/empty", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(keyfile, "\n", 1, 0600));
	o.signing_key_file = keyfile;
	CHECK_INT(pw_cache_new(&c, &o), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "empty") != NULL);
}

static void test_same_key_compiles_once(void)
{
	static fake_backend f;
	pw_cache *c;
	pw_cache_stats st;
	thr t[8];

	if (setup() < 0)
		return;
	c = cache_over(NULL, &f, "fake", NULL, NULL);
	CHECK(c);
	CHECK_OK(run_threads(c, NULL, t));
	pw_cache_get_stats(c, &st);
	expect_threads_got(t, NULL);
	if (pw_test_stopped())
		return;
	/* one compile whatever the interleaving: later threads either waited for it or hit */
	CHECK_INT(st.compiles, 1);
	CHECK_INT(f.put_calls, 1);
	CHECK_INT(call_answer(&t[3].art), 42);
	free_threads(t);
	teardown(c, &f, NULL, NULL);
}

static void test_no_tiers_compiles(void)
{
	pw_cache *c;
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;

	if (setup() < 0)
		return;
	c = new_cache(NULL);
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(call_answer(&art), 42);
	pw_cache_free(c);
	pw_buf_free(&art);
}

static void test_build_miss_then_hit(void)
{
	static fake_backend up, down;
	fake_builder fb = { .bytes = &g_art, .seconds = 1.5 };
	pw_cache *c;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf art = PW_BUF_INIT;

	if (setup_artifacts() < 0)
		return;
	c = cache_over(NULL, &up, "up", &down, "down");
	CHECK(c);
	CHECK_OK(build(c, &fb, &art, &res));
	CHECK_INT(fb.calls, 1);
	CHECK_INT(res.tier, -1);
	CHECK_STR(res.tier_name, "compile");
	CHECK(res.compile_seconds == 1.5);
	CHECK(same_bytes(&art, &g_art));
	/* published to every tier, with the builder's cost in the record */
	CHECK_INT(up.put_calls, 1);
	CHECK_INT(down.put_calls, 1);
	CHECK_INT(down.n, 1);
	CHECK(down.entries[0].meta.compile_seconds == 1.5);
	CHECK_OK(pw_cache_verify_entry_for(c, &g_key, &down.entries[0]));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	CHECK(st.compile_seconds == 1.5);
	/* the second call hits the first tier and does not build */
	CHECK_OK(build(c, &fb, &art, &res));
	CHECK_INT(fb.calls, 1);
	CHECK_INT(res.tier, 0);
	CHECK_STR(res.tier_name, "up");
	CHECK_INT(down.get_calls, 1);
	CHECK(same_bytes(&art, &g_art));
	CHECK_INT(call_answer(&art), 42);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].hits, 1);
	CHECK(st.compile_seconds_saved == 1.5);
	/* the wrapper computes the same key: it hits what get_or_build published */
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 0);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	teardown(c, &up, &down, &art);
}

static void test_build_same_key_once(void)
{
	static fake_backend f;
	fake_builder fb = { .bytes = &g_art, .seconds = 0.25, .delay_us = 200000 };
	pw_cache *c;
	pw_cache_stats st;
	thr t[8];

	if (setup_artifacts() < 0)
		return;
	c = cache_over(NULL, &f, "fake", NULL, NULL);
	CHECK(c);
	CHECK_OK(run_threads(c, &fb, t));
	expect_threads_got(t, &g_art);
	if (pw_test_stopped())
		return;
	CHECK_INT(fb.calls, 1);
	CHECK_INT(f.put_calls, 1);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	CHECK_INT(call_answer(&t[5].art), 42);
	free_threads(t);
	teardown(c, &f, NULL, NULL);

	/* a failing build: every thread gets its error, nothing is published */
	fb.bytes = NULL;
	fb.calls = 0;
	c = cache_over(NULL, &f, "fake", NULL, NULL);
	CHECK(c);
	CHECK_OK(run_threads(c, &fb, t));
	for (int i = 0; i < 8; i++) {
		CHECK_INT(t[i].rc, PW_EINVALID);
		CHECK_MSG(strstr(t[i].err, "refused by the compiler") != NULL, "thread %d: %s", i, t[i].err);
		CHECK_INT(t[i].art.len, 0);
	}
	CHECK(fb.calls >= 1);
	CHECK_INT(f.put_calls, 0);
	pw_cache_free(c);
}

static void test_build_errors(void)
{
	static fake_backend f;
	fake_builder fb = { .bytes = NULL };
	pw_cache *c;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf art = PW_BUF_INIT;

	if (setup_artifacts() < 0)
		return;
	c = cache_over(NULL, &f, "fake", NULL, NULL);
	CHECK(c);
	/* the builder's error, with its message */
	CHECK_INT(build(c, &fb, &art, &res), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "fake build: module refused by the compiler") != NULL);
	CHECK_INT(fb.calls, 1);
	CHECK_INT(res.tier, -1);
	CHECK_INT(art.len, 0);
	/* garbage bytes: refused before any tier sees them */
	fb.bytes = &g_garbage;
	CHECK_INT(build(c, &fb, &art, &res), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "not publishing") != NULL);
	CHECK_INT(art.len, 0);
	/* a real artifact, of another module */
	fb.bytes = &g_art2;
	CHECK_INT(build(c, &fb, &art, &res), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "compiled from wasm") != NULL);
	CHECK_INT(fb.calls, 3);
	CHECK_INT(f.put_calls, 0);
	CHECK_INT(f.n, 0);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 0);
	CHECK_INT(st.tier[0].misses, 3);
	/* and a good build afterwards goes through */
	fb.bytes = &g_art;
	CHECK_OK(build(c, &fb, &art, &res));
	CHECK_INT(f.put_calls, 1);
	CHECK_INT(call_answer(&art), 42);
	teardown(c, &f, NULL, &art);
}

static void test_lookup_missing(void)
{
	static fake_backend f;
	const char *dir;
	char stats[PATH_MAX];
	pw_cache *c;
	pw_cache_result res;
	pw_cache_stats st;
	pw_cache_totals t;
	pw_buf art = PW_BUF_INIT;

	if (setup_artifacts() < 0)
		return;
	c = new_cache_counted(&dir, stats);
	CHECK(c);
	fake_init(&f, "fake");
	CHECK_OK(pw_cache_add_backend(c, &f.parent));
	CHECK_INT(pw_cache_lookup(c, &g_key, &art, &res), PW_ENOTFOUND);
	CHECK(strstr(pw_error_last(), g_key.wasm_sha256) != NULL);
	CHECK_INT(res.tier, -1);
	CHECK_INT(art.len, 0);
	CHECK_INT(f.get_calls, 1);
	CHECK_INT(f.put_calls, 0);
	/* a failing tier is a miss too, never an error of the call */
	f.fail_get = 1;
	CHECK_INT(pw_cache_lookup(c, &g_key, &art, &res), PW_ENOTFOUND);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 0);
	CHECK_INT(st.tier[0].misses, 1);
	CHECK(st.tier[0].failed);
	CHECK_INT(pw_cache_lookup(c, NULL, &art, &res), PW_EINVALID);
	pw_cache_free(c);
	CHECK_OK(pw_cache_totals_load(stats, &t));
	CHECK_INT(t.lookups, 2);
	CHECK_INT(t.misses, 2);
	CHECK_INT(t.hits, 0);
	CHECK_INT(t.compiles, 0);
}

static void test_publish_then_lookup(void)
{
	static fake_backend up, down;
	pw_cache_meta subject;
	pw_cache *c;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf art = PW_BUF_INIT;
	const char *keyfile;

	if (setup_artifacts() < 0)
		return;
	keyfile = signing_key_file();
	if (pw_test_stopped())
		return;
	memset(&subject, 0, sizeof subject);
	snprintf(subject.subject_digest, sizeof subject.subject_digest, "sha256:%064d", 7);
	snprintf(subject.subject_media_type, sizeof subject.subject_media_type,
	         "application/vnd.oci.image.manifest.v1+json");
	subject.subject_size = 1234;
	c = cache_over(keyfile, &up, "up", &down, "down");
	CHECK(c);
	down.fail_put = 1;
	/* bad arguments publish nothing */
	CHECK_INT(pw_cache_publish(c, &g_key, g_garbage.data, g_garbage.len, 1, NULL), PW_EINVALID);
	CHECK_INT(pw_cache_publish(c, &g_key, g_art2.data, g_art2.len, 1, NULL), PW_EINVALID);
	CHECK_INT(pw_cache_publish(c, &g_key, g_art.data, g_art.len, -1, NULL), PW_EINVALID);
	CHECK_INT(pw_cache_publish(c, NULL, g_art.data, g_art.len, 1, NULL), PW_EINVALID);
	CHECK_INT(up.put_calls + down.put_calls, 0);
	/* one tier written: the other's put fails, which is not an error of the call */
	CHECK_INT(pw_cache_publish(c, &g_key, g_art.data, g_art.len, 2.5, &subject), 1);
	CHECK_INT(up.put_calls, 1);
	CHECK_INT(down.put_calls, 1);
	CHECK_INT(up.n, 1);
	CHECK(up.entries[0].meta.compile_seconds == 2.5);
	CHECK(up.entries[0].meta.signature[0] != '\0');
	CHECK_STR(up.entries[0].meta.subject_digest, subject.subject_digest);
	CHECK_INT(up.entries[0].meta.subject_size, 1234);
	CHECK_OK(pw_cache_verify_entry_for(c, &g_key, &up.entries[0]));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	CHECK(st.compile_seconds == 2.5);
	CHECK(st.tier[1].write_failed);
	CHECK_INT(st.tier[1].put_errors, 1);
	/* and the lookup hits it */
	CHECK_OK(pw_cache_lookup(c, &g_key, &art, &res));
	CHECK_INT(res.tier, 0);
	CHECK_STR(res.tier_name, "up");
	CHECK(same_bytes(&art, &g_art));
	CHECK_INT(call_answer(&art), 42);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].hits, 1);
	CHECK_INT(st.compiles, 1);
	/* a write-failed tier is not written again */
	CHECK_INT(pw_cache_publish(c, &g_key, g_art.data, g_art.len, 2.5, NULL), 1);
	CHECK_INT(down.put_calls, 1);
	teardown(c, &up, &down, &art);
}

static void test_reject_removes(void)
{
	fake_builder fb = { .bytes = &g_art, .seconds = 1 };
	const char *dir;
	char stats[PATH_MAX];
	pw_cache *c;
	pw_cache_backend *b;
	pw_cache_result res;
	pw_cache_stats st;
	pw_cache_totals t;
	pw_buf art = PW_BUF_INIT;

	if (setup_artifacts() < 0)
		return;
	c = local_cache_counted(&dir, stats, &b);
	CHECK(c);
	CHECK_INT(pw_cache_publish(c, &g_key, g_art.data, g_art.len, 1, NULL), 1);
	CHECK_OK(pw_cache_backend_exists(b, &g_key));
	CHECK_OK(pw_cache_lookup(c, &g_key, &art, &res));
	CHECK_INT(res.tier, 0);
	pw_cache_reject(c, &g_key, "dlopen: invalid ELF header");
	CHECK_INT(pw_cache_backend_exists(b, &g_key), PW_ENOTFOUND);
	pw_buf_free(&art);
	CHECK_INT(pw_cache_lookup(c, &g_key, &art, &res), PW_ENOTFOUND);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].rejected, 1);
	CHECK(!st.tier[0].failed && !st.tier[0].write_failed);
	/* rejecting what is not there removes nothing more and does not fail */
	pw_cache_reject(c, &g_key, NULL);
	pw_cache_reject(NULL, &g_key, "ignored");
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].rejected, 1);
	/* the replacement: built and published, then a hit */
	CHECK_OK(build(c, &fb, &art, &res));
	CHECK_INT(fb.calls, 1);
	CHECK_INT(res.tier, -1);
	CHECK_OK(pw_cache_backend_exists(b, &g_key));
	CHECK_OK(pw_cache_lookup(c, &g_key, &art, &res));
	CHECK_INT(res.tier, 0);
	pw_cache_free(c);
	CHECK_OK(pw_cache_totals_load(stats, &t));
	CHECK_INT(t.rejected, 2);
	CHECK_INT(t.compiles, 2);
	CHECK_INT(t.lookups, 4);
	CHECK_INT(t.hits, 2);
	CHECK_INT(t.misses, 2);
	pw_buf_free(&art);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_local_compile_then_hit),
		PW_TEST(test_tiers_copy_up),
		PW_TEST(test_tier_failure_marks_failed),
		PW_TEST(test_refused_flipped_byte),
		PW_TEST(test_refused_truncated),
		PW_TEST(test_refused_renamed),
		PW_TEST(test_refused_renamed_record_rewritten),
		PW_TEST(test_refused_other_engine),
		PW_TEST(test_refused_unsigned_with_key),
		PW_TEST(test_refused_signed_with_another_key),
		PW_TEST(test_signed_entry_accepted),
		PW_TEST(test_signing_key_errors),
		PW_TEST(test_same_key_compiles_once),
		PW_TEST(test_no_tiers_compiles),
		PW_TEST(test_build_miss_then_hit),
		PW_TEST(test_build_same_key_once),
		PW_TEST(test_build_errors),
		PW_TEST(test_lookup_missing),
		PW_TEST(test_publish_then_lookup),
		PW_TEST(test_reject_removes),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	pw_engine_free(g_engine);
	pw_buf_free(&g_wasm);
	pw_buf_free(&g_wasm2);
	pw_buf_free(&g_art);
	pw_buf_free(&g_art2);
	pw_buf_free(&g_garbage);
	return rc;
}
