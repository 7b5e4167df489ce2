/*
 * Tests of the tiered cache (pw_cache_get_or_compile) with the real engine and real
 * artifacts compiled from tiny fixtures, over the real local backend and a fake backend that
 * keeps entries in memory and counts calls (libgit2's fake odb backend): miss -> compile ->
 * put into every tier; hit -> verified, touched, copied into the tiers above; a failing tier
 * is skipped for the rest of the run; every kind of bad entry (flipped byte, truncated,
 * renamed, another engine, unsigned or badly signed with a key) is refused before any load,
 * recompiled, replaced and counted; concurrent lookups of one key compile once. Each hit is
 * loaded and called to prove the bytes are a working artifact.
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

static void fake_init(fake_backend *f, const char *name)
{
	memset(f, 0, sizeof *f);
	f->parent.version = PW_CACHE_BACKEND_VERSION;
	f->parent.name = name;
	f->parent.get = fake_get;
	f->parent.exists = fake_exists;
	f->parent.put = fake_put;
	f->parent.touch = fake_touch;
	f->parent.remove = fake_remove;
	f->parent.free = fake_free;
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

static int lookup(pw_cache *c, const pw_buf *wasm, pw_buf *art, pw_cache_result *res)
{
	pw_buf_free(art);
	return pw_cache_get_or_compile(c, g_engine, wasm->data, wasm->len, NULL, NULL, art, res);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_local_compile_then_hit(void)
{
	pw_cache *c;
	pw_cache_backend *b;
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf a1 = PW_BUF_INIT, a2 = PW_BUF_INIT;
	const char *dir = pw_test_tmpdir();
	char stats[PATH_MAX];
	pw_cache_opts o;
	pw_cache_totals t;

	if (setup() < 0)
		return;
	snprintf(stats, sizeof stats, "%s/stats", dir);
	o.signing_key_file = NULL;
	o.stats_dir = stats;
	CHECK_OK(pw_cache_new(&c, &o));
	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	CHECK_OK(pw_cache_add_backend(c, b));
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
	fake_init(&up, "up");
	fake_init(&down, "down");
	/* fill only the lower tier */
	c = new_cache(NULL);
	CHECK(c);
	CHECK_OK(pw_cache_add_backend(c, &down.parent));
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, -1);
	CHECK_INT(down.put_calls, 1);
	pw_cache_free(c);
	down.get_calls = down.put_calls = 0;

	c = new_cache(NULL);
	CHECK_OK(pw_cache_add_backend(c, &up.parent));
	CHECK_OK(pw_cache_add_backend(c, &down.parent));
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
	pw_cache_free(c);
	fake_clear(&up);
	fake_clear(&down);
	pw_buf_free(&art);
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
	fake_init(&bad, "bad");
	fake_init(&good, "good");
	bad.fail_get = 1;
	c = new_cache(NULL);
	CHECK_OK(pw_cache_add_backend(c, &bad.parent));
	CHECK_OK(pw_cache_add_backend(c, &good.parent));
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
	fake_init(&bad, "full");
	bad.fail_put = 1;
	c = new_cache(NULL);
	CHECK_OK(pw_cache_add_backend(c, &bad.parent));
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
	CHECK_OK(f->parent.get(&f->parent, key, &got));
	CHECK_OK(pw_cache_verify_entry_for(c, key, &got));
	pw_cache_entry_free(&got);
	/* and is a hit now */
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	CHECK_INT(res.tier, 0);
	pw_cache_free(c);
	pw_buf_free(&art);
}

static void test_bad_entries_refused(void)
{
	static fake_backend f;
	pw_cache *c;
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;
	pw_cache_entry good, e;
	pw_cache_key key, key2;
	pw_engine *other = NULL;
	pw_engine_opts eo;
	char keyfile[PATH_MAX];

	if (setup() < 0)
		return;
	fake_init(&f, "fake");
	/* a good entry, produced by the cache itself */
	c = new_cache(NULL);
	CHECK_OK(pw_cache_add_backend(c, &f.parent));
	CHECK_OK(lookup(c, &g_wasm, &art, &res));
	pw_cache_free(c);
	CHECK_INT(f.n, 1);
	key = f.entries[0].meta.key;
	memset(&good, 0, sizeof good);
	good.meta = f.entries[0].meta;
	CHECK_OK(pw_buf_append(&good.artifact, f.entries[0].artifact.data, f.entries[0].artifact.len));
	CHECK_OK(pw_cache_verify_entry_for(NULL, &key, &good));

	/* a flipped byte */
	memset(&e, 0, sizeof e);
	e.meta = good.meta;
	CHECK_OK(pw_buf_append(&e.artifact, good.artifact.data, good.artifact.len));
	e.artifact.data[e.artifact.len / 2] ^= 0x40;
	CHECK_INT(pw_cache_verify_entry_for(NULL, &key, &e), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "sha256") != NULL);
	expect_refused(&f, NULL, &key, &e, "flipped byte");
	if (pw_test_stopped())
		return;
	/* truncated (record still says the full size) */
	e.artifact.len = good.artifact.len - 100;
	memcpy(e.artifact.data, good.artifact.data, e.artifact.len);
	expect_refused(&f, NULL, &key, &e, "truncated");
	if (pw_test_stopped())
		return;
	/* renamed: the entry of another module stored under this key */
	{
		pw_cache *c2 = new_cache(NULL);
		static fake_backend g;
		fake_init(&g, "g");
		CHECK_OK(pw_cache_add_backend(c2, &g.parent));
		CHECK_OK(lookup(c2, &g_wasm2, &art, &res));
		pw_cache_free(c2);
		key2 = g.entries[0].meta.key;
		CHECK(strcmp(key2.wasm_sha256, key.wasm_sha256) != 0);
		CHECK_INT(pw_cache_verify_entry_for(NULL, &key, &g.entries[0]), PW_EMISMATCH);
		CHECK(strstr(pw_error_last(), "renamed") != NULL);
		expect_refused(&f, NULL, &key, &g.entries[0], "renamed");
		/* renamed with its record rewritten to the new key: the artifact's description
		 * still names the other module */
		pw_cache_entry_free(&e);
		memset(&e, 0, sizeof e);
		e.meta = g.entries[0].meta;
		e.meta.key = key;
		CHECK_OK(pw_buf_append(&e.artifact, g.entries[0].artifact.data, g.entries[0].artifact.len));
		CHECK_INT(pw_cache_verify_entry_for(NULL, &key, &e), PW_EMISMATCH);
		CHECK(strstr(pw_error_last(), "compiled from wasm") != NULL);
		expect_refused(&f, NULL, &key, &e, "renamed, record rewritten");
		fake_clear(&g);
		if (pw_test_stopped())
			return;
	}
	/* another engine: an artifact built with other flags, recorded under this engine's key */
	memset(&eo, 0, sizeof eo);
	eo.extra_cflags = "-DPW_CACHE_TEST_OTHER_ENGINE=1";
	CHECK_OK(pw_engine_new(&other, &eo));
	CHECK(strcmp(pw_engine_hash(other), pw_engine_hash(g_engine)) != 0);
	pw_cache_entry_free(&e);
	memset(&e, 0, sizeof e);
	CHECK_OK(pw_engine_compile(other, g_wasm.data, g_wasm.len, NULL, &e.artifact, NULL));
	pw_engine_free(other);
	e.meta = good.meta;
	e.meta.artifact_size = e.artifact.len;
	pw_sha256_hex(e.artifact.data, e.artifact.len, e.meta.artifact_sha256);
	CHECK_INT(pw_cache_verify_entry_for(NULL, &key, &e), PW_EMISMATCH);
	CHECK(strstr(pw_error_last(), "engine") != NULL);
	expect_refused(&f, NULL, &key, &e, "other engine");
	if (pw_test_stopped())
		return;
	/* with a signing key: the good (unsigned) entry is refused, then a badly signed one */
	snprintf(keyfile, sizeof keyfile, "%s/key", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(keyfile, "s3cret\n", 7, 0600));
	expect_refused(&f, keyfile, &key, &good, "unsigned with a key");
	if (pw_test_stopped())
		return;
	pw_cache_entry_free(&e);
	memset(&e, 0, sizeof e);
	e.meta = good.meta;
	CHECK_OK(pw_buf_append(&e.artifact, good.artifact.data, good.artifact.len));
	pw_cache_sign((const uint8_t *)"other", 5, &e.meta, e.meta.signature);
	expect_refused(&f, keyfile, &key, &e, "signed with another key");
	if (pw_test_stopped())
		return;
	/* correctly signed (the key file's trailing newline is not part of the key) */
	pw_cache_sign((const uint8_t *)"s3cret", 6, &e.meta, e.meta.signature);
	{
		pw_cache *cs = new_cache(keyfile);
		CHECK(pw_cache_signing(cs));
		CHECK_OK(pw_cache_verify_entry_for(cs, &key, &e));
		pw_cache_free(cs);
	}
	pw_cache_entry_free(&e);
	pw_cache_entry_free(&good);
	fake_clear(&f);
	pw_buf_free(&art);
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

typedef struct thr {
	pw_cache *c;
	pw_buf art;
	int rc;
	pw_cache_result res;
} thr;

static void *thr_main(void *p)
{
	thr *t = p;
	t->rc = pw_cache_get_or_compile(t->c, g_engine, g_wasm.data, g_wasm.len, NULL, NULL, &t->art, &t->res);
	return NULL;
}

static void test_same_key_compiles_once(void)
{
	static fake_backend f;
	pw_cache *c;
	pw_cache_stats st;
	pthread_t th[8];
	thr t[8];

	if (setup() < 0)
		return;
	fake_init(&f, "fake");
	c = new_cache(NULL);
	CHECK_OK(pw_cache_add_backend(c, &f.parent));
	for (int i = 0; i < 8; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].c = c;
		CHECK(pthread_create(&th[i], NULL, thr_main, &t[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pw_cache_get_stats(c, &st);
	for (int i = 0; i < 8; i++) {
		CHECK_OK(t[i].rc);
		CHECK(t[i].art.len == t[0].art.len && memcmp(t[i].art.data, t[0].art.data, t[0].art.len) == 0);
	}
	/* one compile whatever the interleaving: later threads either waited for it or hit */
	CHECK_INT(st.compiles, 1);
	CHECK_INT(f.put_calls, 1);
	CHECK_INT(call_answer(&t[3].art), 42);
	for (int i = 0; i < 8; i++)
		pw_buf_free(&t[i].art);
	pw_cache_free(c);
	fake_clear(&f);
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

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_local_compile_then_hit),
		PW_TEST(test_tiers_copy_up),
		PW_TEST(test_tier_failure_marks_failed),
		PW_TEST(test_bad_entries_refused),
		PW_TEST(test_signing_key_errors),
		PW_TEST(test_same_key_compiles_once),
		PW_TEST(test_no_tiers_compiles),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	pw_engine_free(g_engine);
	pw_buf_free(&g_wasm);
	pw_buf_free(&g_wasm2);
	return rc;
}
