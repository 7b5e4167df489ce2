/*
 * The tiered artifact cache: the one place that decides where an artifact comes from.
 *
 * The cache looks up, verifies and publishes; it does not compile. pw_cache_lookup asks each
 * tier in order and verifies every entry it gets before anyone may dlopen it (size and sha256
 * against the entry's record, the artifact's embedded description against the key, the HMAC
 * signature when a key is configured), and copies a hit into the tiers above it.
 * pw_cache_publish records and signs bytes built elsewhere and puts them into every tier;
 * pw_cache_reject removes an entry that verified but would not load. pw_cache_get_or_build
 * joins them around a caller's build function (pw_engine_compile for
 * pw_cache_get_or_compile, a fake in the tests): concurrent calls for one key inside a
 * process build once (the others wait for the first and share its bytes), so identical
 * modules behind several policies cost one compile. Across processes, a build first claims
 * the key in every tier that has claims (a lease file in a shared directory, a claim
 * manifest in the registry), renews the claims while it runs and releases them after; a
 * process that finds a peer's live claim waits for its entry instead of building, takes the
 * claim over when pw_cache_claim_judge finds it expired, and builds anyway once it has
 * waited as long as a build takes (never worse than building at once).
 *
 * A refused entry is a miss that is warned about, counted and replaced. A tier whose lookup
 * fails (I/O error, network) is marked failed and skipped for the rest of the run; one whose
 * put fails is no longer written to (a read-only or full volume still serves hits). The cache
 * never fails a call: only the build can. Counters are kept per tier, and added to a stats
 * directory when the cache is freed (stats.c) so `prewarm cache stats` can sum them across
 * runs.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache_int.h"
#include "prewarm/cache.h"
#include "prewarm/cache_backend.h"

#define SIGNING_KEY_MAX 4096
#define PEER_TTL_DEFAULT 30.0
#define PEER_POLL_MAX 0.5           /* seconds between looks at a peer's claim, at most */
#define PEER_POLL_PER_TTL 4         /* ... and at least this many looks per ttl; */
#define PEER_POLL_MIN 0.1           /* unless set, a waiter looks this soon first, */
#define PEER_POLL_FRACTION 0.1      /* ... then every this much of its wait so far */
#define PEER_RENEWALS_PER_TTL 3     /* a holder renews its claims this often per ttl */
#define PEER_SKEW_DEFAULT 60.0

typedef struct inflight {
	struct inflight *next;
	pw_cache_key key;
	unsigned refs;
	bool done;
	int rc;
	char err[512];
	pw_buf artifact;
	pw_cache_result res;
} inflight;

struct pw_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pw_cache_backend *tiers[PW_CACHE_MAX_TIERS];
	unsigned ntiers;
	pw_cache_stats st;
	pw_cache_totals run;
	uint8_t *sign_key;
	size_t sign_key_len;
	char *stats_dir;
	inflight *flying;
	double peer_max_wait;          /* pw_cache_opts.peers, defaults applied */
	double peer_ttl, peer_poll, peer_skew;
	bool peer_poll_set;            /* the caller chose the poll: no backing off */
};

/* ---- backend dispatch ---------------------------------------------------------------- */

const char *pw_cache_backend_name(const pw_cache_backend *b)
{
	return !b ? "?" : b->name ? b->name : b->type && b->type->name ? b->type->name : "?";
}

int pw_cache_backend_get(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out)
{
	return b->type->get(b, key, out);
}

int pw_cache_backend_exists(pw_cache_backend *b, const pw_cache_key *key)
{
	if (b->type->exists)
		return b->type->exists(b, key);
	pw_cache_entry e;
	int rc = b->type->get(b, key, &e);
	pw_cache_entry_free(&e);
	return rc;
}

int pw_cache_backend_put(pw_cache_backend *b, const pw_cache_entry *entry)
{
	return b->type->put(b, entry);
}

int pw_cache_backend_touch(pw_cache_backend *b, const pw_cache_key *key)
{
	return b->type->touch ? b->type->touch(b, key) : 0;
}

int pw_cache_backend_list(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload),
                          void *payload)
{
	if (!b->type->list)
		return pw_error_set(PW_EUNSUPPORTED, "cache tier %s cannot list its entries", pw_cache_backend_name(b));
	return b->type->list(b, cb, payload);
}

int pw_cache_backend_remove(pw_cache_backend *b, const pw_cache_key *key)
{
	return b->type->remove(b, key);
}

void pw_cache_backend_free(pw_cache_backend *b)
{
	if (b)
		b->type->free(b);
}

static bool has_claims(const pw_cache_backend *b)
{
	return b->type->claim && b->type->renew && b->type->release;
}

int pw_cache_new(pw_cache **out, const pw_cache_opts *opts)
{
	pw_cache *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return pw_error_set(PW_ENOMEM, "out of memory creating the cache");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->peer_max_wait = opts ? opts->peers.max_wait : 0;
	c->peer_ttl = opts && opts->peers.ttl > 0 ? opts->peers.ttl : PEER_TTL_DEFAULT;
	c->peer_poll_set = opts && opts->peers.poll > 0;
	c->peer_poll = c->peer_poll_set ? opts->peers.poll : c->peer_ttl / PEER_POLL_PER_TTL;
	if (c->peer_poll > PEER_POLL_MAX && !c->peer_poll_set)
		c->peer_poll = PEER_POLL_MAX;
	c->peer_skew = opts && opts->peers.skew > 0 ? opts->peers.skew : PEER_SKEW_DEFAULT;
	if (opts && opts->signing_key_file) {
		pw_buf key = PW_BUF_INIT;
		rc = pw_file_read(opts->signing_key_file, SIGNING_KEY_MAX, &key);
		if (rc < 0) {
			pw_error_prefix("cache signing key");
			pw_cache_free(c);
			return rc;
		}
		while (key.len && isspace(key.data[key.len - 1]))
			key.len--;
		if (key.len == 0) {
			pw_buf_free(&key);
			pw_cache_free(c);
			return pw_error_set(PW_EINVALID, "cache signing key %s is empty",
			                    opts->signing_key_file);
		}
		c->sign_key_len = key.len;
		c->sign_key = pw_buf_detach(&key, NULL);
	}
	if (opts && opts->stats_dir) {
		c->stats_dir = strdup(opts->stats_dir);
		if (!c->stats_dir) {
			pw_cache_free(c);
			return pw_error_set(PW_ENOMEM, "out of memory creating the cache");
		}
	}
	*out = c;
	return 0;
}

bool pw_cache_signing(const pw_cache *c)
{
	return c && c->sign_key;
}

int pw_cache_add_backend(pw_cache *c, pw_cache_backend *b)
{
	if (!b)
		return pw_error_set(PW_EINVALID, "cache: NULL backend");
	const pw_cache_backend_type *t = b->type;
	if (!t || t->version != PW_CACHE_BACKEND_VERSION || !t->get || !t->put || !t->remove || !t->free) {
		int rc = pw_error_set(PW_EINVALID, "cache backend '%s': version %u (want %u) or missing functions",
		                      pw_cache_backend_name(b), t ? t->version : 0, PW_CACHE_BACKEND_VERSION);
		if (t && t->free)
			t->free(b);
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	if (c->ntiers == PW_CACHE_MAX_TIERS) {
		pthread_mutex_unlock(&c->mu);
		pw_cache_backend_free(b);
		return pw_error_set(PW_EINVALID, "cache: at most %d tiers", PW_CACHE_MAX_TIERS);
	}
	c->st.tier[c->ntiers].name = pw_cache_backend_name(b);
	c->tiers[c->ntiers++] = b;
	c->st.ntiers = c->ntiers;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

void pw_cache_free(pw_cache *c)
{
	if (!c)
		return;
	if (c->stats_dir && (c->run.lookups || c->run.compiles)) {
		c->run.runs = 1;
		if (pw_cache_totals_add(c->stats_dir, &c->run) < 0)
			pw_warn("cache", "could not record cache counters: %s", pw_error_last());
	}
	for (unsigned i = 0; i < c->ntiers; i++)
		pw_cache_backend_free(c->tiers[i]);
	if (c->sign_key) {
		memset(c->sign_key, 0, c->sign_key_len);
		free(c->sign_key);
	}
	free(c->stats_dir);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void pw_cache_get_stats(pw_cache *c, pw_cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	pthread_mutex_unlock(&c->mu);
}

/* ---- verification -------------------------------------------------------------------- */

/* The artifact's embedded description against `key` (the loader checks it once more). */
static int check_description(const char *ks, const pw_cache_key *key, const uint8_t *data, size_t len)
{
	pw_artifact_info info;

	if (pw_artifact_read_info(data ? data : (const uint8_t *)"", len, &info) < 0)
		return pw_error_prefix("cache entry %s: artifact description", ks), PW_EMISMATCH;
	if (info.abi_version != PW_ARTIFACT_ABI_VERSION)
		return pw_error_set(PW_EMISMATCH, "cache entry %s: artifact ABI %u, this prewarm loads %u",
		                    ks, info.abi_version, PW_ARTIFACT_ABI_VERSION);
	if (strcmp(info.engine_hash, key->engine_hash) != 0)
		return pw_error_set(PW_EMISMATCH, "cache entry %s: artifact built by engine %s",
		                    ks, info.engine_hash);
	if (strcmp(info.wasm_sha256, key->wasm_sha256) != 0)
		return pw_error_set(PW_EMISMATCH, "cache entry %s: artifact compiled from wasm %s",
		                    ks, info.wasm_sha256);
	return 0;
}

int pw_cache_verify_entry_for(pw_cache *c, const pw_cache_key *key, const pw_cache_entry *e)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1], hex[PW_SHA256_HEX_LEN + 1];

	pw_cache_key_str(&e->meta.key, ks);
	if (key && (strcmp(key->engine_hash, e->meta.key.engine_hash) != 0 ||
	            strcmp(key->wasm_sha256, e->meta.key.wasm_sha256) != 0)) {
		char want[PW_CACHE_KEY_STR_LEN + 1];
		pw_cache_key_str(key, want);
		return pw_error_set(PW_EMISMATCH, "cache entry %s records key %s (moved or renamed entry)",
		                    want, ks);
	}
	if (e->artifact.len != e->meta.artifact_size)
		return pw_error_set(PW_EMISMATCH, "cache entry %s: artifact is %zu bytes, its record says %llu",
		                    ks, e->artifact.len, (unsigned long long)e->meta.artifact_size);
	pw_sha256_hex(e->artifact.data ? e->artifact.data : (const uint8_t *)"", e->artifact.len, hex);
	if (strcmp(hex, e->meta.artifact_sha256) != 0)
		return pw_error_set(PW_EMISMATCH, "cache entry %s: artifact sha256 %s, its record says %s (corrupt)",
		                    ks, hex, e->meta.artifact_sha256);
	if (c && c->sign_key) {
		char sig[PW_SHA256_HEX_LEN + 1];
		if (!e->meta.signature[0])
			return pw_error_set(PW_EMISMATCH, "cache entry %s is unsigned and a signing key is configured", ks);
		pw_cache_sign(c->sign_key, c->sign_key_len, &e->meta, sig);
		if (!pw_secure_streq(sig, e->meta.signature))
			return pw_error_set(PW_EMISMATCH, "cache entry %s: bad signature", ks);
	}
	return check_description(ks, &e->meta.key, e->artifact.data, e->artifact.len);
}

int pw_cache_verify_entry(pw_cache *c, const pw_cache_entry *e)
{
	return pw_cache_verify_entry_for(c, NULL, e);
}

/* ---- keys ---------------------------------------------------------------------------- */

void pw_cache_key_for(pw_cache_key *out, const pw_engine *e, const uint8_t *wasm, size_t len)
{
	memcpy(out->engine_hash, pw_engine_hash(e), PW_SHA256_HEX_LEN + 1);
	pw_sha256_hex(wasm ? wasm : (const uint8_t *)"", len, out->wasm_sha256);
}

/* ---- counters and tiers -------------------------------------------------------------- */

static void count(pw_cache *c, unsigned tier, size_t field_off, uint64_t n)
{
	pthread_mutex_lock(&c->mu);
	*(uint64_t *)((char *)&c->st.tier[tier] + field_off) += n;
	pthread_mutex_unlock(&c->mu);
}
#define COUNT(c, i, f, n) count((c), (i), offsetof(__typeof__((c)->st.tier[0]), f), (n))

/* Adds one to a counter of this run (c->run). */
static void count_run(pw_cache *c, uint64_t *counter)
{
	pthread_mutex_lock(&c->mu);
	(*counter)++;
	pthread_mutex_unlock(&c->mu);
}

static void mark_failed(pw_cache *c, unsigned i, bool write_only, const char *ks, const char *why)
{
	bool first;

	pthread_mutex_lock(&c->mu);
	if (write_only) {
		first = !c->st.tier[i].write_failed;
		c->st.tier[i].write_failed = true;
		c->st.tier[i].put_errors++;
	} else {
		first = !c->st.tier[i].failed;
		c->st.tier[i].failed = true;
		c->st.tier[i].errors++;
	}
	c->run.errors++;
	pthread_mutex_unlock(&c->mu);
	if (first)
		pw_warn("cache", "%s tier %s failed (%s %s): %s; %s for the rest of this run",
		        write_only ? "writing to" : "reading from", pw_cache_backend_name(c->tiers[i]),
		        write_only ? "put" : "get",
		        ks, why, write_only ? "not writing to it" : "not using it");
}

static bool tier_usable(pw_cache *c, unsigned i, bool for_write)
{
	bool ok;
	pthread_mutex_lock(&c->mu);
	ok = !c->st.tier[i].failed && !(for_write && c->st.tier[i].write_failed);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* Puts into tier i if it is still writable; true when the entry was written. */
static bool put_tier(pw_cache *c, unsigned i, const pw_cache_entry *ent, const char *ks)
{
	int rc;

	if (!tier_usable(c, i, true))
		return false;
	rc = pw_cache_backend_put(c->tiers[i], ent);
	if (rc < 0) {
		mark_failed(c, i, true, ks, pw_error_last());
		return false;
	}
	pthread_mutex_lock(&c->mu);
	c->st.tier[i].puts++;
	c->st.tier[i].bytes_written += ent->artifact.len;
	c->run.bytes_written += ent->artifact.len;
	pthread_mutex_unlock(&c->mu);
	pw_debug("cache", "stored %s in tier %s", ks, pw_cache_backend_name(c->tiers[i]));
	return true;
}

/* Gives the bytes of *src to *dst: moved when *dst holds nothing yet, else appended. *src is
 * empty afterwards. */
static int give(pw_buf *dst, pw_buf *src)
{
	int rc;

	if (!dst->data) {
		*dst = *src;
		memset(src, 0, sizeof *src);
		return 0;
	}
	rc = pw_buf_append(dst, src->data, src->len);
	pw_buf_free(src);
	return rc;
}

/* ---- lookup -------------------------------------------------------------------------- */

/* Every usable tier in order; the run's lookups/misses are the callers' to count. 0 with
 * *out, res->tier and res->tier_name set on a verified hit, else PW_ENOTFOUND. */
static int lookup_tiers(pw_cache *c, const pw_cache_key *key, const char *ks, pw_buf *out,
                        pw_cache_result *res, unsigned *refused)
{
	pw_cache_entry ent;
	int rc;

	for (unsigned i = 0; i < c->ntiers; i++) {
		pw_cache_backend *b = c->tiers[i];
		const char *name = pw_cache_backend_name(b);

		if (!tier_usable(c, i, false))
			continue;
		memset(&ent, 0, sizeof ent);
		rc = pw_cache_backend_get(b, key, &ent);
		if (rc == PW_ENOTFOUND) {
			COUNT(c, i, misses, 1);
			continue;
		}
		if (rc == 0)
			rc = pw_cache_verify_entry_for(c, key, &ent);
		if (rc == PW_EINVALID || rc == PW_EMISMATCH) {
			pw_warn("cache", "tier %s: refused entry %s: %s; compiling instead", name, ks,
			        pw_error_last());
			pw_cache_entry_free(&ent);
			COUNT(c, i, rejected, 1);
			count_run(c, &c->run.rejected);
			if (refused)
				*refused |= 1u << i;
			continue;
		}
		if (rc < 0) {
			pw_cache_entry_free(&ent);
			mark_failed(c, i, false, ks, pw_error_last());
			continue;
		}
		/* A verified hit. */
		if (pw_cache_backend_touch(b, key) < 0)
			pw_debug("cache", "touch %s in tier %s: %s", ks, name, pw_error_last());
		pthread_mutex_lock(&c->mu);
		c->st.tier[i].hits++;
		c->st.tier[i].bytes_read += ent.artifact.len;
		c->st.compile_seconds_saved += ent.meta.compile_seconds;
		c->run.hits++;
		c->run.hits_by_tier[i]++;
		c->run.bytes_read += ent.artifact.len;
		c->run.compile_seconds_saved += ent.meta.compile_seconds;
		pthread_mutex_unlock(&c->mu);
		for (unsigned j = 0; j < i; j++)
			put_tier(c, j, &ent, ks);
		*out = ent.artifact;
		res->tier = (int)i;
		res->tier_name = name;
		res->compile_seconds = 0;
		pw_debug("cache", "%s: hit in tier %s", ks, name);
		return 0;
	}
	return pw_error_set(PW_ENOTFOUND, "cache: no tier holds a valid entry %s", ks);
}

static void result_reset(pw_cache_result *res, const char *tier_name)
{
	memset(res, 0, sizeof *res);
	res->tier = -1;
	res->tier_name = tier_name;
}

int pw_cache_lookup(pw_cache *c, const pw_cache_key *key, pw_buf *artifact, pw_cache_result *res)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1];
	pw_cache_result dummy;
	pw_buf out = PW_BUF_INIT;
	double t0 = pw_now();
	int rc;

	if (!res)
		res = &dummy;
	result_reset(res, "none");
	if (!c || !key || !artifact)
		return pw_error_set(PW_EINVALID, "pw_cache_lookup: NULL cache, key or artifact");
	pw_cache_key_str(key, ks);
	count_run(c, &c->run.lookups);
	rc = lookup_tiers(c, key, ks, &out, res, NULL);
	if (rc < 0) {
		count_run(c, &c->run.misses);
		return rc;
	}
	res->seconds = pw_now() - t0;
	return give(artifact, &out);
}

/* ---- publish, reject ----------------------------------------------------------------- */

/* pw_cache_publish once the arguments are known good (ks = the key's text). */
static int publish(pw_cache *c, const pw_cache_key *key, const char *ks, const uint8_t *artifact,
                   size_t len, double compile_seconds, const pw_cache_meta *subject)
{
	pw_cache_entry ent;
	int written = 0;

	if (check_description(ks, key, artifact, len) < 0)
		return pw_error_prefix("cache: not publishing %s", ks), PW_EINVALID;
	memset(&ent, 0, sizeof ent);
	/* A borrowed view of the caller's bytes: backends take the entry const and never free it. */
	ent.artifact.data = (uint8_t *)(uintptr_t)artifact;
	ent.artifact.len = len;
	ent.meta.key = *key;
	pw_sha256_hex(artifact, len, ent.meta.artifact_sha256);
	ent.meta.artifact_size = len;
	ent.meta.compile_seconds = compile_seconds;
	ent.meta.created = pw_wall_now();
	if (subject && subject->subject_digest[0]) {
		memcpy(ent.meta.subject_digest, subject->subject_digest, sizeof ent.meta.subject_digest);
		memcpy(ent.meta.subject_media_type, subject->subject_media_type,
		       sizeof ent.meta.subject_media_type);
		ent.meta.subject_size = subject->subject_size;
	}
	if (c->sign_key)
		pw_cache_sign(c->sign_key, c->sign_key_len, &ent.meta, ent.meta.signature);
	pthread_mutex_lock(&c->mu);
	c->st.compiles++;
	c->st.compile_seconds += compile_seconds;
	c->run.compiles++;
	c->run.compile_seconds += compile_seconds;
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < c->ntiers; i++)
		written += put_tier(c, i, &ent, ks);
	return written;
}

int pw_cache_publish(pw_cache *c, const pw_cache_key *key, const uint8_t *artifact, size_t len,
                     double compile_seconds, const pw_cache_meta *subject)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1];

	if (!c || !key || !artifact || !len)
		return pw_error_set(PW_EINVALID, "pw_cache_publish: NULL cache or key, or no artifact bytes");
	if (!isfinite(compile_seconds) || compile_seconds < 0)
		return pw_error_set(PW_EINVALID, "pw_cache_publish: compile_seconds %g is not a duration",
		                    compile_seconds);
	pw_cache_key_str(key, ks);
	return publish(c, key, ks, artifact, len, compile_seconds, subject);
}

void pw_cache_reject(pw_cache *c, const pw_cache_key *key, const char *why)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1];

	if (!c || !key)
		return;
	pw_cache_key_str(key, ks);
	pw_warn("cache", "rejected entry %s: %s; removing it", ks, why && why[0] ? why : "it did not load");
	count_run(c, &c->run.rejected);
	for (unsigned i = 0; i < c->ntiers; i++) {
		pw_cache_backend *b = c->tiers[i];
		int rc;

		if (!tier_usable(c, i, true))
			continue;
		rc = pw_cache_backend_remove(b, key);
		if (rc == 0) {
			COUNT(c, i, rejected, 1);
			pw_debug("cache", "removed %s from tier %s", ks, pw_cache_backend_name(b));
		} else if (rc != PW_ENOTFOUND) {
			pw_warn("cache", "tier %s: could not remove rejected entry %s: %s", pw_cache_backend_name(b), ks,
			        pw_error_last());
		}
	}
}

/* ---- single flight across processes -------------------------------------------------- */

/* This process's claims on one key while it builds it, and the thread renewing them. */
typedef struct peer_flight {
	pw_cache *c;
	pw_cache_key key;
	char ks[PW_CACHE_KEY_STR_LEN + 1];
	pthread_mutex_t mu;            /* held[], mine, stop */
	pthread_cond_t cv;
	pw_cache_claim mine;
	bool held[PW_CACHE_MAX_TIERS];
	bool stop, renewing;
	pthread_t renewer;
	unsigned refused;              /* bit i: the lookup before the claim refused tier i's entry */
} peer_flight;

static void flight_init(peer_flight *fl, pw_cache *c, const pw_cache_key *key, const char *ks)
{
	memset(fl, 0, sizeof *fl);
	fl->c = c;
	fl->key = *key;
	memcpy(fl->ks, ks, sizeof fl->ks);
	pthread_condattr_t ca;

	pthread_mutex_init(&fl->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* timespec_after's clock */
	pthread_cond_init(&fl->cv, &ca);
	pthread_condattr_destroy(&ca);
	pw_cache__claim_init(&fl->mine, c->peer_ttl);
}

static void timespec_after(struct timespec *ts, double sec)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)sec;
	ts->tv_nsec += (long)((sec - (double)(time_t)sec) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Renews every held claim each ttl / PEER_RENEWALS_PER_TTL until told to stop; a claim taken
 * over by another process is dropped (the build goes on: a duplicate, never a wrong entry). */
static void *renew_claims(void *arg)
{
	peer_flight *fl = arg;
	pw_cache *c = fl->c;
	struct timespec until;

	pthread_mutex_lock(&fl->mu);
	for (;;) {
		timespec_after(&until, c->peer_ttl / PEER_RENEWALS_PER_TTL);
		while (!fl->stop && pthread_cond_timedwait(&fl->cv, &fl->mu, &until) == 0)
			;
		if (fl->stop)
			break;
		fl->mine.seq++;
		fl->mine.deadline = pw_wall_now() + c->peer_ttl;
		pw_cache_claim mine = fl->mine;
		bool held[PW_CACHE_MAX_TIERS];
		memcpy(held, fl->held, sizeof held);
		pthread_mutex_unlock(&fl->mu);
		for (unsigned i = 0; i < c->ntiers; i++) {
			pw_cache_backend *b = c->tiers[i];
			int rc;
			if (!held[i])
				continue;
			rc = b->type->renew(b, &fl->key, &mine);
			if (rc == PW_EMISMATCH) {
				pw_info("cache", "%s: our claim in tier %s was taken over (%s); building on", fl->ks,
				        pw_cache_backend_name(b), pw_error_last());
				pthread_mutex_lock(&fl->mu);
				fl->held[i] = false;
				pthread_mutex_unlock(&fl->mu);
			} else if (rc < 0) {
				pw_debug("cache", "%s: renewing the claim in tier %s: %s", fl->ks, pw_cache_backend_name(b),
				         pw_error_last());
			}
		}
		pthread_mutex_lock(&fl->mu);
	}
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

static void flight_hold(peer_flight *fl, unsigned i)
{
	pthread_mutex_lock(&fl->mu);
	fl->held[i] = true;
	if (!fl->renewing && pthread_create(&fl->renewer, NULL, renew_claims, fl) == 0)
		fl->renewing = true;
	pthread_mutex_unlock(&fl->mu);
}

/* Stops the renewals and releases the claims: all of them after a failed build (a waiter
 * then builds); after a good one, those of the tiers that hold the entry now (a tier that
 * publishes in the background keeps its claim until it expires, so that waiters do not build
 * while the entry is on its way). */
static void flight_end(peer_flight *fl, bool built)
{
	pw_cache *c = fl->c;

	pthread_mutex_lock(&fl->mu);
	fl->stop = true;
	pthread_cond_broadcast(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
	if (fl->renewing)
		pthread_join(fl->renewer, NULL);
	for (unsigned i = 0; i < c->ntiers; i++) {
		pw_cache_backend *b = c->tiers[i];
		if (!fl->held[i])
			continue;
		if (built && pw_cache_backend_exists(b, &fl->key) != 0) {
			pw_debug("cache", "%s: tier %s does not show the entry yet; its claim will expire", fl->ks,
			         pw_cache_backend_name(b));
			continue;
		}
		b->type->release(b, &fl->key, &fl->mine);
	}
	pw_error_clear();
	pthread_cond_destroy(&fl->cv);
	pthread_mutex_destroy(&fl->mu);
}

static void sleep_seconds(double sec)
{
	struct timespec ts = { (time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9) };
	while (nanosleep(&ts, &ts) < 0)
		;
}

/*
 * Seconds until a waiter looks for the entry again, `waited` seconds into its wait. Unless the
 * caller set the poll, it starts short and grows with the wait (a tenth of it, up to the
 * poll): a peer's entry is seen within ~10% of the time it took, and a long compile is not
 * polled at 10 Hz by every waiter. The claim itself is read again only every poll (its
 * liveness changes on the ttl's scale).
 */
static double peer_poll_after(const pw_cache *c, double waited)
{
	if (c->peer_poll_set)
		return c->peer_poll;
	double t = PEER_POLL_FRACTION * waited;
	return t < PEER_POLL_MIN ? PEER_POLL_MIN : t > c->peer_poll ? c->peer_poll : t;
}

/* True when some usable tier outside the `skip` bits shows the entry (cheap: stat, HEAD). */
static bool entry_in_some_tier(pw_cache *c, const pw_cache_key *key, unsigned skip)
{
	for (unsigned i = 0; i < c->ntiers; i++)
		if (!(skip & (1u << i)) && tier_usable(c, i, false) && pw_cache_backend_exists(c->tiers[i], key) == 0)
			return true;
	pw_error_clear();
	return false;
}

/* Polls the tiers for fl's entry until `until` (pw_now()'s clock), `t0` being when the wait
 * began: 0 with the entry in *out. Looks at least once. */
static int poll_entry(pw_cache *c, peer_flight *fl, double t0, double until, pw_buf *out, pw_cache_result *res)
{
	do {
		sleep_seconds(peer_poll_after(c, pw_now() - t0));
		if (entry_in_some_tier(c, &fl->key, 0) && lookup_tiers(c, &fl->key, fl->ks, out, res, NULL) == 0)
			return 0;
	} while (pw_now() < until);
	return PW_ENOTFOUND;
}

/*
 * Claims the key in every tier that has claims, in tier order (so that two processes never
 * wait on each other). A peer's live claim: wait for its entry, polling. 0 with the entry in
 * *out (a peer built it); PW_ENOTFOUND: build here (with the claims held where we got them,
 * after a takeover, or after waiting max_wait). res->peer* say what happened.
 */
static int await_peers(pw_cache *c, peer_flight *fl, double max_wait, pw_buf *out, pw_cache_result *res)
{
	const char *ks = fl->ks;
	double t0 = pw_now();
	char who[sizeof res->peer];

	for (unsigned i = 0; i < c->ntiers; i++) {
		pw_cache_backend *b = c->tiers[i];
		const char *name = pw_cache_backend_name(b);
		pw_cache_claim_watch watch;
		pw_cache_claim holder, stale;
		bool have_stale = false, waiting = false;

		if (!has_claims(b) || !tier_usable(c, i, true))
			continue;
		memset(&watch, 0, sizeof watch);
		for (;;) {
			pthread_mutex_lock(&fl->mu);
			fl->mine.deadline = pw_wall_now() + c->peer_ttl;
			pw_cache_claim mine = fl->mine;
			pthread_mutex_unlock(&fl->mu);
			int rc = b->type->claim(b, &fl->key, &mine, have_stale ? &stale : NULL, &holder);
			if (rc == 0) {
				flight_hold(fl, i);
				if (have_stale || waiting) {   /* the peer's claim ended without an entry */
					COUNT(c, i, claim_takeovers, 1);
					res->took_over = true;
				}
				pw_debug("cache", "%s: claimed in tier %s", ks, name);
				break;
			}
			if (rc != PW_EMISMATCH) {
				/* by configuration (read-only): nothing to warn about */
				pw_log(rc == PW_EUNSUPPORTED ? PW_LOG_DEBUG : PW_LOG_WARN, "cache",
				       "%s: tier %s takes no claim (%s); building without one", ks, name, pw_error_last());
				break;
			}
			bool retried = have_stale;   /* a takeover just lost: wait a poll before judging again */
			have_stale = false;
			pw_cache__claim_describe(&holder, who, sizeof who);
			if (!waiting) {
				waiting = true;
				COUNT(c, i, peer_waits, 1);
				snprintf(res->peer, sizeof res->peer, "%s", who);
				pw_info("cache", "%s is being built by %s (its claim in tier %s); waiting for its entry", ks,
				        who, name);
			}
			pw_claim_verdict v = pw_cache_claim_judge(&watch, &holder, pw_now(), pw_wall_now(), c->peer_skew,
			                                          c->peer_ttl);
			if (v != PW_CLAIM_LIVE && !retried) {
				pw_info("cache", "%s: taking over the claim of %s in tier %s: %s", ks, who, name,
				        pw_claim_verdict_str(v));
				stale = holder;
				have_stale = true;
				continue;
			}
			if (pw_now() - t0 >= max_wait) {
				COUNT(c, i, claim_wait_timeouts, 1);
				res->peer_wait_seconds = pw_now() - t0;
				pw_warn("cache", "%s: waited %.1f s for %s, as long as a build takes; building it here too", ks,
				        res->peer_wait_seconds, who);
				return PW_ENOTFOUND;
			}
			double look = pw_now() + c->peer_poll, end = t0 + max_wait;
			if (poll_entry(c, fl, t0, look < end ? look : end, out, res) == 0) {
				COUNT(c, i, peer_hits, 1);
				res->peer_wait_seconds = pw_now() - t0;
				snprintf(res->peer, sizeof res->peer, "%s", who);
				return 0;
			}
		}
	}
	if (res->peer[0])
		res->peer_wait_seconds = pw_now() - t0;
	/* A peer may have published and released between our lookup and our claim: look again
	 * before building (one stat, one HEAD), in the tiers whose entry we did not refuse. */
	if (entry_in_some_tier(c, &fl->key, fl->refused) && lookup_tiers(c, &fl->key, ks, out, res, NULL) == 0)
		return 0;
	return PW_ENOTFOUND;
}

static bool any_tier_claims(pw_cache *c)
{
	for (unsigned i = 0; i < c->ntiers; i++)
		if (has_claims(c->tiers[i]) && tier_usable(c, i, true))
			return true;
	return false;
}

/* ---- lookup, else build and publish -------------------------------------------------- */

static int lookup_or_build(pw_cache *c, const pw_cache_key *key, pw_cache_build_fn build, void *payload,
                           const pw_cache_build_opts *o, pw_buf *out, pw_cache_result *res)
{
	char ks[PW_CACHE_KEY_STR_LEN + 1];
	double t0 = pw_now(), secs = -1;
	peer_flight fl;
	bool flying = false;
	unsigned refused = 0;
	int rc;

	pw_cache_key_str(key, ks);
	if (lookup_tiers(c, key, ks, out, res, &refused) == 0) {
		res->seconds = pw_now() - t0;
		return 0;
	}
	if (o->expected_seconds > 0 && c->peer_max_wait >= 0 && any_tier_claims(c)) {
		flight_init(&fl, c, key, ks);
		fl.refused = refused;
		flying = true;
		if (await_peers(c, &fl, c->peer_max_wait > 0 ? c->peer_max_wait : o->expected_seconds, out, res) == 0) {
			flight_end(&fl, false);
			res->seconds = pw_now() - t0;
			return 0;
		}
	}
	count_run(c, &c->run.misses);
	rc = build(payload, out, &secs);
	if (rc > 0)
		rc = pw_error_set(PW_ERROR, "cache: the build of %s returned %d", ks, rc);
	if (rc == 0 && (!isfinite(secs) || secs < 0))
		secs = pw_now() - t0;
	if (rc == 0)
		rc = publish(c, key, ks, out->data, out->len, secs, o->subject);
	if (flying)
		flight_end(&fl, rc >= 0);
	if (rc < 0) {
		pw_buf_free(out);
		return rc;
	}
	res->tier = -1;
	res->tier_name = "compile";
	res->compile_seconds = secs;
	res->seconds = pw_now() - t0;
	return 0;
}

int pw_cache_get_or_build(pw_cache *c, const pw_cache_key *key, pw_cache_build_fn build, void *payload,
                          const pw_cache_build_opts *opts, pw_buf *artifact, pw_cache_result *res)
{
	static const pw_cache_build_opts no_opts;
	pw_cache_result dummy;
	pw_buf out = PW_BUF_INIT;
	inflight *f;
	int rc;

	if (!res)
		res = &dummy;
	result_reset(res, "compile");
	if (!c || !key || !build || !artifact)
		return pw_error_set(PW_EINVALID, "pw_cache_get_or_build: NULL cache, key, build or artifact");

	pthread_mutex_lock(&c->mu);
	c->run.lookups++;
	for (f = c->flying; f; f = f->next)
		if (!memcmp(&f->key, key, sizeof *key))
			break;
	if (f) {
		/* Another thread is on this key: wait for it and share its result. */
		f->refs++;
		while (!f->done)
			pthread_cond_wait(&c->cv, &c->mu);
		rc = f->rc;
		*res = f->res;
		if (rc == 0) {
			rc = pw_buf_append(artifact, f->artifact.data, f->artifact.len);
			if (rc == 0 && res->tier >= 0) {
				c->run.hits++;
				c->run.hits_by_tier[res->tier]++;
			}
		} else {
			pw_error_set(rc, "%s", f->err);
		}
		if (--f->refs == 0) {
			pw_buf_free(&f->artifact);
			free(f);
		}
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	f = calloc(1, sizeof *f);
	if (f) {
		f->key = *key;
		f->refs = 1;
		f->next = c->flying;
		c->flying = f;
	}
	pthread_mutex_unlock(&c->mu);

	rc = lookup_or_build(c, key, build, payload, opts ? opts : &no_opts, &out, res);
	if (rc == 0)
		rc = give(artifact, &out);
	if (!f)
		return rc;

	pthread_mutex_lock(&c->mu);
	for (inflight **pp = &c->flying; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->done = true;
	f->rc = rc;
	f->res = *res;
	if (rc < 0)
		snprintf(f->err, sizeof f->err, "%s", pw_error_last());
	else if (f->refs > 1 && pw_buf_append(&f->artifact, artifact->data, artifact->len) < 0) {
		f->rc = PW_ENOMEM;
		snprintf(f->err, sizeof f->err, "out of memory sharing an artifact");
	}
	pthread_cond_broadcast(&c->cv);
	if (--f->refs == 0) {
		pw_buf_free(&f->artifact);
		free(f);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- the engine as the build --------------------------------------------------------- */

typedef struct compile_job {
	pw_engine *engine;
	const uint8_t *wasm;
	size_t len;
	const pw_imports *host;
} compile_job;

static int compile_build(void *payload, pw_buf *artifact, double *seconds)
{
	const compile_job *j = payload;
	pw_compile_stats cs;
	double t0 = pw_now();
	int rc;

	memset(&cs, 0, sizeof cs);
	rc = pw_engine_compile(j->engine, j->wasm, j->len, j->host, artifact, &cs);
	if (rc < 0)
		return rc;
	*seconds = cs.total_seconds > 0 ? cs.total_seconds : pw_now() - t0;
	return 0;
}

int pw_cache_get_or_compile(pw_cache *c, pw_engine *e, const uint8_t *wasm, size_t len,
                            const pw_imports *host, const pw_cache_meta *subject,
                            pw_buf *artifact, pw_cache_result *res)
{
	compile_job job = { e, wasm, len, host };
	pw_cache_build_opts o = { subject, pw_engine_compile_seconds_estimate(e, len) };
	pw_cache_key key;

	pw_cache_key_for(&key, e, wasm, len);
	return pw_cache_get_or_build(c, &key, compile_build, &job, &o, artifact, res);
}
