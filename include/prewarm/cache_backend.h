/*
 * For writers of cache backends (libgit2's git2/sys/odb_backend.h); users of a backend need
 * only prewarm/cache.h.
 *
 * A backend is one static const type table (pw_cache_backend_type: its name and its
 * functions) and instances that point to it, as curl's connection filters (struct
 * Curl_cftype) do. An instance embeds pw_cache_backend as the FIRST member of its own struct
 * and sets .type to its table; the functions receive the instance. Only the backend's own
 * code casts an instance to its struct, and a public function that takes "a local backend"
 * checks b->type first: nothing is ever cast by name.
 *
 * Claims (cross-process single flight, optional): while one process builds a key, it claims
 * it in every tier that has claims (a lease file in a shared directory, a claim manifest in
 * the registry); others find the claim, wait for the entry, and take the claim over when it
 * is judged expired (pw_cache_claim_judge). A backend only stores and compares claims; the
 * tiered cache (cache.c) decides when to wait, renew, take over and give up.
 */
#ifndef PREWARM_CACHE_BACKEND_H
#define PREWARM_CACHE_BACKEND_H

#include "prewarm/cache.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PW_CACHE_BACKEND_VERSION 2

typedef struct pw_cache_backend_type {
	unsigned version;                  /* PW_CACHE_BACKEND_VERSION */
	const char *name;                  /* "local", "registry" */
	/* 0 and *out filled; PW_ENOTFOUND on a miss; other codes are failures. */
	int (*get)(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out);
	/* 0 if present, PW_ENOTFOUND if not. */
	int (*exists)(pw_cache_backend *b, const pw_cache_key *key);
	/* Stores an entry (atomically: readers see no entry or a whole one). */
	int (*put)(pw_cache_backend *b, const pw_cache_entry *entry);
	/* Marks the entry used now (LRU). May be NULL. */
	int (*touch)(pw_cache_backend *b, const pw_cache_key *key);
	/* Calls cb for every entry; stops early when cb returns non-zero (list then returns
	 * that value). May be NULL. */
	int (*list)(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload),
	            void *payload);
	int (*remove)(pw_cache_backend *b, const pw_cache_key *key);
	void (*free)(pw_cache_backend *b);

	/* ---- claims; all three NULL for a backend without them ---- */
	/*
	 * Tries to publish `mine` as the claim on key. stale NULL: only if there is none (or
	 * only a released one); stale given: only if the claim there is still that one (the
	 * same nonce and seq: the caller judged it expired), replacing it. 0: `mine` is the
	 * claim now. PW_EMISMATCH: another claim holds the key, copied into *holder (when the
	 * stored claim cannot be parsed, *holder is zeroed but for a nonce naming what was
	 * seen, so that a waiter still sees it unchanged and takes it over after its ttl).
	 * Other codes: the tier cannot do claims now (the caller builds without one).
	 */
	int (*claim)(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine,
	             const pw_cache_claim *stale, pw_cache_claim *holder);
	/* Rewrites `mine` (its seq and deadline advanced) if the claim there is still ours
	 * (same nonce). PW_EMISMATCH when another claim took its place (we keep building, we
	 * stop renewing). */
	int (*renew)(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine);
	/* Removes or marks released the claim if it is still ours. Best effort. */
	void (*release)(pw_cache_backend *b, const pw_cache_key *key, const pw_cache_claim *mine);
} pw_cache_backend_type;

struct pw_cache_backend {
	const pw_cache_backend_type *type;
	const char *name;                  /* the tier's name in logs and counters; NULL = type->name */
};

#ifdef __cplusplus
}
#endif
#endif
