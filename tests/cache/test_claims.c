/*
 * Tests of the claims of single flight across processes (src/cache/claim.c, the lease files
 * of src/cache/local.c, the wait of src/cache/cache.c): the claim JSON round trip and its
 * strict parser; the judgment a waiter makes of a peer's claim under each clock assumption
 * (a renewed claim stays live, an unrenewed one expires after its ttl on the waiter's own
 * clock whatever the owner's clock says, a deadline long past expires at once, a clock
 * behind by less than the skew allowance does not, a released claim and a dead owner in our
 * pid namespace expire at once, one in another pid namespace is not judged by its pid);
 * lease files between two claimers (create, refuse, take over, renew lost, release); and a
 * build that expects nothing (the quick tier) never claims nor waits while a build that
 * expects time waits for a live peer's lease, then builds; and a claimer that wins just after
 * a peer published and released (its lookup missed a moment before) takes the peer's entry
 * instead of building.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/cache.h"
#include "prewarm/cache_backend.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"

/* the cache's private claim helpers (src/cache/cache_int.h) */
void pw_cache__claim_init(pw_cache_claim *mine, double ttl);

static const char *k_engine = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *k_wasm = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void test_key(pw_cache_key *k)
{
	snprintf(k->engine_hash, sizeof k->engine_hash, "%s", k_engine);
	snprintf(k->wasm_sha256, sizeof k->wasm_sha256, "%s", k_wasm);
}

static void test_claim_json_round_trip(void)
{
	pw_cache_claim c, back;
	pw_buf j = PW_BUF_INIT;

	pw_cache__claim_init(&c, 30);
	c.seq = 7;
	CHECK_INT(strlen(c.nonce), PW_CACHE_CLAIM_NONCE_LEN);
	CHECK_INT(c.pid, getpid());
	CHECK_OK(pw_cache_claim_to_json(&c, &j));
	CHECK_OK(pw_cache_claim_from_json(&back, (const char *)j.data, j.len));
	CHECK_STR(back.nonce, c.nonce);
	CHECK_STR(back.host, c.host);
	CHECK_STR(back.boot_id, c.boot_id);
	CHECK_INT(back.pidns, c.pidns);
	CHECK_INT(back.seq, 7);
	CHECK(back.ttl == 30 && !back.released);
	CHECK(back.deadline > 0);
	pw_buf_free(&j);
}

static void test_claim_json_refused(void)
{
	static const struct { const char *json, *names; } bad[] = {
		{ "{\"format\":2}", "format" },
		{ "{\"format\":1,\"nonce\":\"xyz\",\"pid\":1,\"seq\":0,\"ttl\":1}", "nonce" },
		{ "{\"format\":1,\"nonce\":\"0123456789abcdef0123456789abcdef\",\"seq\":0,\"ttl\":1}", "pid" },
		{ "{\"format\":1,\"nonce\":\"0123456789abcdef0123456789abcdef\",\"pid\":1,\"seq\":0}", "ttl" },
		{ "{\"format\":1,\"nonce\":\"0123456789abcdef0123456789abcdef\",\"pid\":1,\"seq\":0,\"ttl\":1,"
		  "\"state\":\"done\"}", "state" },
		{ "{\"format\":1,\"nonce\":\"0123456789abcdef0123456789abcdef\",\"pid\":1,\"seq\":-1,\"ttl\":1}", "seq" },
		{ "{\"format\":1,\"nonce\":\"0123456789abcdef0123456789abcdef\",\"pid\":1,\"seq\":0,\"ttl\":1,"
		  "\"host\":\"a\\u0007b\"}", "host" },
		{ "{\"format\":1,\"format\":1}", "JSON" },
		{ "[1]", "object" },
	};
	pw_cache_claim c;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(pw_cache_claim_from_json(&c, bad[i].json, strlen(bad[i].json)), PW_EINVALID);
		CHECK_MSG(strstr(pw_error_last(), bad[i].names), "%s: message '%s' does not name %s", bad[i].json,
		          pw_error_last(), bad[i].names);
	}
}

/* A claim of another host (its pid says nothing here). */
static void foreign_claim(pw_cache_claim *h, double deadline, uint64_t seq)
{
	memset(h, 0, sizeof *h);
	snprintf(h->nonce, sizeof h->nonce, "0123456789abcdef0123456789abcdef");
	snprintf(h->host, sizeof h->host, "elsewhere");
	snprintf(h->boot_id, sizeof h->boot_id, "another-boot");
	h->pid = 1;
	h->pidns = 1;
	h->seq = seq;
	h->ttl = 10;
	h->deadline = deadline;
}

static void test_judge_renewals_keep_a_claim_live(void)
{
	pw_cache_claim_watch w = { 0 };
	pw_cache_claim h;
	double wall = 1e9;

	/* seen at t=100, renewed every 5 s (seq advances): live however long it runs */
	for (int i = 0; i < 10; i++) {
		foreign_claim(&h, wall + 5 * i + 10, (uint64_t)i);
		CHECK_INT(pw_cache_claim_judge(&w, &h, 100 + 5 * i, wall + 5 * i, 60, 30), PW_CLAIM_LIVE);
	}
	/* then no renewal: live within its ttl of 10 s, expired after, on the waiter's clock */
	CHECK_INT(pw_cache_claim_judge(&w, &h, 145 + 9.9, wall + 54, 60, 30), PW_CLAIM_LIVE);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 145 + 10.1, wall + 55, 60, 30), PW_CLAIM_NOT_RENEWED);
}

static void test_judge_clock_skew(void)
{
	pw_cache_claim_watch w = { 0 };
	pw_cache_claim h;
	double wall = 1e9;

	/* the owner's clock an hour ahead: its deadline means nothing here; not renewed, it
	 * expires after its ttl on the waiter's monotonic clock */
	foreign_claim(&h, wall + 3600 + 10, 1);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, wall, 60, 30), PW_CLAIM_LIVE);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 9, wall + 9, 60, 30), PW_CLAIM_LIVE);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 10.5, wall + 10.5, 60, 30), PW_CLAIM_NOT_RENEWED);

	/* the owner's clock 50 s behind (within the 60 s allowance): its fresh claim is live */
	memset(&w, 0, sizeof w);
	foreign_claim(&h, wall - 50 + 10, 1);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, wall, 60, 30), PW_CLAIM_LIVE);
	/* ... a claim whose deadline is long past (the owner died yesterday): expired at once */
	memset(&w, 0, sizeof w);
	foreign_claim(&h, wall - 86400, 1);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, wall, 60, 30), PW_CLAIM_PAST_DEADLINE);
	/* a claim without a ttl (unreadable) gets the waiter's own ttl */
	memset(&w, 0, sizeof w);
	foreign_claim(&h, 0, 0);
	h.ttl = 0;
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, wall, 60, 3), PW_CLAIM_LIVE);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 3.5, wall, 60, 3), PW_CLAIM_NOT_RENEWED);
}

static void test_judge_released_and_dead_owner(void)
{
	pw_cache_claim_watch w = { 0 };
	pw_cache_claim h;
	pid_t child;
	int st;

	foreign_claim(&h, 2e9, 1);
	h.released = true;
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, 1e9, 60, 30), PW_CLAIM_RELEASED);

	/* a process of ours that has exited: its claim is judged dead at once */
	child = fork();
	if (child == 0)
		_exit(0);
	CHECK(child > 0);
	CHECK(waitpid(child, &st, 0) == child);
	pw_cache__claim_init(&h, 10);
	h.pid = child;
	memset(&w, 0, sizeof w);
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, pw_wall_now(), 60, 30),
	          h.boot_id[0] && h.pidns ? PW_CLAIM_OWNER_DEAD : PW_CLAIM_LIVE);
	/* a live process of ours (the parent): live */
	h.pid = getppid();
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, pw_wall_now(), 60, 30), PW_CLAIM_LIVE);
	/* the same dead pid in another pid namespace (another pod on this node): not judged */
	h.pid = child;
	h.pidns ^= 1;
	CHECK_INT(pw_cache_claim_judge(&w, &h, 0, pw_wall_now(), 60, 30), PW_CLAIM_LIVE);
}

static void test_lease_files(void)
{
	pw_cache_backend *b = NULL;
	const pw_cache_backend_type *t;
	pw_cache_claim a, bb, holder;
	pw_cache_key k;
	char path[4096];

	const char *dir = pw_test_tmpdir();
	test_key(&k);
	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	t = b->type;
	CHECK(t->claim && t->renew && t->release);
	pw_cache__claim_init(&a, 10);
	pw_cache__claim_init(&bb, 10);
	CHECK(strcmp(a.nonce, bb.nonce) != 0);
	snprintf(path, sizeof path, "%s/v1/bb/%s-%s.lease", dir, k_engine, k_wasm);

	CHECK_OK(t->claim(b, &k, &a, NULL, &holder));
	CHECK(pw_path_exists(path));
	CHECK_INT(t->claim(b, &k, &bb, NULL, &holder), PW_EMISMATCH);
	CHECK_STR(holder.nonce, a.nonce);
	/* a renewal advances what a waiter sees */
	a.seq++;
	CHECK_OK(t->renew(b, &k, &a));
	CHECK_INT(t->claim(b, &k, &bb, NULL, &holder), PW_EMISMATCH);
	CHECK_INT(holder.seq, 1);
	/* taking over needs the claim judged expired to be the one still there */
	pw_cache_claim old = holder;
	old.seq = 0;
	CHECK_INT(t->claim(b, &k, &bb, &old, &holder), PW_EMISMATCH);
	CHECK_STR(holder.nonce, a.nonce);
	CHECK_OK(t->claim(b, &k, &bb, &holder, &holder));
	/* the old owner's renewal finds it lost; its release leaves the new lease alone */
	CHECK_INT(t->renew(b, &k, &a), PW_EMISMATCH);
	t->release(b, &k, &a);
	CHECK(pw_path_exists(path));
	t->release(b, &k, &bb);
	CHECK(!pw_path_exists(path));
	/* a released claim is free at once */
	CHECK_OK(t->claim(b, &k, &a, NULL, &holder));
	pw_cache_backend_free(b);
}

typedef struct counting_build {
	int calls;
} counting_build;

/* Not an artifact: publishing refuses it, which is all these tests need (was it built?). */
static int garbage_build(void *payload, pw_buf *art, double *seconds)
{
	((counting_build *)payload)->calls++;
	*seconds = 0.01;
	return pw_buf_append(art, "not an artifact", 15);
}

static void plant_live_lease(const char *dir, const pw_cache_key *k)
{
	pw_cache_backend *b = NULL;
	pw_cache_claim peer, holder;

	CHECK_OK(pw_cache_local_new(&b, dir, NULL));
	pw_cache__claim_init(&peer, 600);
	peer.pid = getppid();   /* alive: judged live */
	CHECK_OK(b->type->claim(b, k, &peer, NULL, &holder));
	pw_cache_backend_free(b);
}

/* A cache over a local directory in which a live peer (our parent) holds the lease of k. */
static pw_cache *cache_beside_a_live_peer(const pw_cache_key *k, double max_wait)
{
	const char *dir = pw_test_tmpdir();
	pw_cache *c = NULL;
	pw_cache_backend *b = NULL;
	pw_cache_opts o = { 0 };

	plant_live_lease(dir, k);
	o.peers.max_wait = max_wait;
	o.peers.poll = 0.05;
	if (pw_cache_new(&c, &o) < 0 || pw_cache_local_new(&b, dir, NULL) < 0 || pw_cache_add_backend(c, b) < 0) {
		pw_cache_free(c);
		return NULL;
	}
	return c;
}

static void test_quick_builds_never_wait(void)
{
	pw_cache_build_opts quick = { NULL, 0 };
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;
	counting_build cb = { 0 };
	pw_cache_key k;
	pw_cache *c;

	test_key(&k);
	CHECK((c = cache_beside_a_live_peer(&k, 600)) != NULL);
	CHECK_INT(pw_cache_get_or_build(c, &k, garbage_build, &cb, &quick, &art, &res), PW_EINVALID);
	CHECK_INT(cb.calls, 1);
	CHECK_STR(res.peer, "");
	CHECK(res.peer_wait_seconds == 0);
	pw_cache_free(c);
	pw_buf_free(&art);
}

static void test_waits_for_a_live_peer_then_builds(void)
{
	pw_cache_build_opts slow = { NULL, 60 };
	pw_cache_stats st;
	pw_cache_result res;
	pw_buf art = PW_BUF_INIT;
	counting_build cb = { 0 };
	pw_cache_key k;
	pw_cache *c;

	test_key(&k);
	CHECK((c = cache_beside_a_live_peer(&k, 0.3)) != NULL);   /* as if a build took 0.3 s */
	CHECK_INT(pw_cache_get_or_build(c, &k, garbage_build, &cb, &slow, &art, &res), PW_EINVALID);
	CHECK_INT(cb.calls, 1);
	CHECK_MSG(strstr(res.peer, " pid "), "peer '%s'", res.peer);
	CHECK(res.peer_wait_seconds > 0 && !res.took_over);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].peer_waits, 1);
	CHECK_INT(st.tier[0].claim_wait_timeouts, 1);
	CHECK_INT(st.tier[0].peer_hits, 0);
	pw_cache_free(c);
	pw_buf_free(&art);
}

/*
 * A local tier over which a peer publishes the entry and releases its claim in the moment
 * between our lookup (a miss) and our claim: its claim() first has the peer (another cache
 * over the same directory) publish, then claims in the real local backend.
 */
typedef struct late_peer {
	pw_cache_backend parent;
	pw_cache_backend *inner;
	pw_cache *peer;
	const pw_cache_key *key;
	const pw_buf *art;
	int claims;
} late_peer;

static pw_cache_backend *inner_of(pw_cache_backend *b)
{
	return ((late_peer *)b)->inner;
}

static int lp_get(pw_cache_backend *b, const pw_cache_key *k, pw_cache_entry *out)
{
	return pw_cache_backend_get(inner_of(b), k, out);
}

static int lp_exists(pw_cache_backend *b, const pw_cache_key *k)
{
	return pw_cache_backend_exists(inner_of(b), k);
}

static int lp_put(pw_cache_backend *b, const pw_cache_entry *e)
{
	return pw_cache_backend_put(inner_of(b), e);
}

static int lp_remove(pw_cache_backend *b, const pw_cache_key *k)
{
	return pw_cache_backend_remove(inner_of(b), k);
}

static void lp_free(pw_cache_backend *b)
{
	pw_cache_backend_free(inner_of(b));
	free(b);
}

static int lp_claim(pw_cache_backend *b, const pw_cache_key *k, const pw_cache_claim *mine,
                    const pw_cache_claim *stale, pw_cache_claim *holder)
{
	late_peer *lp = (late_peer *)b;
	if (lp->claims++ == 0 && pw_cache_publish(lp->peer, lp->key, lp->art->data, lp->art->len, 1.0, NULL) != 1)
		return pw_error_set(PW_ERROR, "the peer could not publish: %s", pw_error_last());
	return lp->inner->type->claim(lp->inner, k, mine, stale, holder);
}

static int lp_renew(pw_cache_backend *b, const pw_cache_key *k, const pw_cache_claim *mine)
{
	return inner_of(b)->type->renew(inner_of(b), k, mine);
}

static void lp_release(pw_cache_backend *b, const pw_cache_key *k, const pw_cache_claim *mine)
{
	inner_of(b)->type->release(inner_of(b), k, mine);
}

static const pw_cache_backend_type late_peer_type = {
	.version = PW_CACHE_BACKEND_VERSION,
	.name = "late-peer",
	.get = lp_get,
	.exists = lp_exists,
	.put = lp_put,
	.remove = lp_remove,
	.free = lp_free,
	.claim = lp_claim,
	.renew = lp_renew,
	.release = lp_release,
};

static void test_entry_published_before_our_claim_is_taken(void)
{
	pw_cache_build_opts slow = { NULL, 60 };
	pw_cache_result res;
	pw_cache_stats st;
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT, got = PW_BUF_INIT;
	counting_build cb = { 0 };
	pw_engine *e = NULL;
	pw_cache *c = NULL, *peer = NULL;
	pw_cache_backend *pb = NULL;
	late_peer *lp = calloc(1, sizeof *lp);
	pw_cache_key k;
	const char *dir = pw_test_tmpdir();

	CHECK(lp != NULL);
	CHECK_OK(pw_file_read(pw_test_fixture("cache_small.wasm"), 0, &wasm));
	CHECK_OK(pw_engine_new(&e, NULL));
	CHECK_OK(pw_engine_compile(e, wasm.data, wasm.len, NULL, &art, NULL));
	pw_cache_key_for(&k, e, wasm.data, wasm.len);
	CHECK_OK(pw_cache_new(&peer, NULL));
	CHECK_OK(pw_cache_local_new(&pb, dir, NULL));
	CHECK_OK(pw_cache_add_backend(peer, pb));
	lp->parent.type = &late_peer_type;
	lp->peer = peer;
	lp->key = &k;
	lp->art = &art;
	CHECK_OK(pw_cache_local_new(&lp->inner, dir, NULL));
	CHECK_OK(pw_cache_new(&c, NULL));
	CHECK_OK(pw_cache_add_backend(c, &lp->parent));

	CHECK_OK(pw_cache_get_or_build(c, &k, garbage_build, &cb, &slow, &got, &res));
	CHECK_INT(lp->claims, 1);
	CHECK_INT(cb.calls, 0);        /* not built: the peer's entry was taken */
	CHECK_INT(res.tier, 0);
	CHECK(got.len == art.len && !memcmp(got.data, art.data, art.len));
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.tier[0].hits, 1);
	CHECK_INT(st.tier[0].misses, 1);
	pw_cache_free(c);
	pw_cache_free(peer);
	pw_engine_free(e);
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	pw_buf_free(&got);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_claim_json_round_trip),
		PW_TEST(test_claim_json_refused),
		PW_TEST(test_judge_renewals_keep_a_claim_live),
		PW_TEST(test_judge_clock_skew),
		PW_TEST(test_judge_released_and_dead_owner),
		PW_TEST(test_lease_files),
		PW_TEST(test_quick_builds_never_wait),
		PW_TEST(test_waits_for_a_live_peer_then_builds),
		PW_TEST(test_entry_published_before_our_claim_is_taken),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
