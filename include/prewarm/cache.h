/*
 * The artifact cache: content-addressed entries keyed by (engine hash, wasm sha256),
 * stored by pluggable backends (local directory, OCI registry) tried in order.
 *
 * An entry is the artifact bytes plus a small record (artifact sha256, size, compile
 * seconds, optional HMAC signature). Backends store and return entries; they do not
 * judge them. The tiered store verifies every entry it gets (sha256, embedded artifact
 * description vs key, signature when a key is configured) before anyone dlopens it;
 * a bad entry is a miss that is counted, logged and replaced.
 *
 * Backend writers: embed pw_cache_backend as the FIRST member of your struct
 * (libgit2's odb backend pattern) and fill the function pointers.
 */
#ifndef PREWARM_CACHE_H
#define PREWARM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/engine.h"
#include "prewarm/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pw_cache_key {
	char engine_hash[PW_SHA256_HEX_LEN + 1];
	char wasm_sha256[PW_SHA256_HEX_LEN + 1];
} pw_cache_key;

/* Canonical text of a key: "<engine_hash>-<wasm_sha256>" (129 chars + NUL). */
#define PW_CACHE_KEY_STR_LEN (2 * PW_SHA256_HEX_LEN + 1)
void pw_cache_key_str(const pw_cache_key *k, char out[PW_CACHE_KEY_STR_LEN + 1]);
int pw_cache_key_parse(pw_cache_key *out, const char *s);

/* What an entry records beside the artifact bytes. */
typedef struct pw_cache_meta {
	pw_cache_key key;
	char artifact_sha256[PW_SHA256_HEX_LEN + 1];
	uint64_t artifact_size;
	double compile_seconds;            /* what a hit saves */
	char signature[PW_SHA256_HEX_LEN + 1]; /* HMAC-SHA256 hex, "" if unsigned */
	double created;                    /* wall clock, informational */
	/* the policy's OCI manifest (for the registry `subject`), "" if none */
	char subject_digest[80];
	char subject_media_type[80];
	uint64_t subject_size;
} pw_cache_meta;

typedef struct pw_cache_entry {
	pw_cache_meta meta;
	pw_buf artifact;                   /* the artifact bytes (owned) */
} pw_cache_entry;
void pw_cache_entry_free(pw_cache_entry *e);  /* frees the buffer, not the struct */

/* For `ls`. */
typedef struct pw_cache_listing {
	pw_cache_key key;
	uint64_t size;
	double created, last_used;         /* wall clock; 0 if unknown */
} pw_cache_listing;

#define PW_CACHE_BACKEND_VERSION 1

typedef struct pw_cache_backend pw_cache_backend;
struct pw_cache_backend {
	unsigned version;                  /* PW_CACHE_BACKEND_VERSION */
	const char *name;                  /* "local", "registry" (logs, metrics) */
	/* 0 and *out filled; PW_ENOTFOUND on a miss; other codes are failures. */
	int (*get)(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out);
	/* 0 if present, PW_ENOTFOUND if not. */
	int (*exists)(pw_cache_backend *b, const pw_cache_key *key);
	/* Stores an entry (atomically: readers see no entry or a whole one). */
	int (*put)(pw_cache_backend *b, const pw_cache_entry *entry);
	/* Marks the entry used now (LRU). May be NULL. */
	int (*touch)(pw_cache_backend *b, const pw_cache_key *key);
	/* Calls cb for every entry; stops early when cb returns non-zero. May be NULL. */
	int (*list)(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload),
	            void *payload);
	int (*remove)(pw_cache_backend *b, const pw_cache_key *key);
	void (*free)(pw_cache_backend *b);
};

/* ---- the local directory backend ------------------------------------------------------ */

typedef struct pw_local_opts {
	uint64_t max_size;        /* bytes; 0 = default 2 GiB */
	double tmp_max_age;       /* seconds after which a crashed writer's temp file is removed (default 3600) */
} pw_local_opts;

int pw_cache_local_new(pw_cache_backend **out, const char *dir, const pw_local_opts *opts);
/* Applies the size limit now (LRU eviction). removed/freed may be NULL. */
int pw_cache_local_gc(pw_cache_backend *b, uint64_t max_size, unsigned *removed, uint64_t *freed);

/* ---- the tiered store ----------------------------------------------------------------- */

typedef struct pw_cache_stats {
	/* per tier (index as added) */
	struct {
		const char *name;
		uint64_t hits, misses, errors, rejected, puts, put_errors, bytes_read, bytes_written;
		bool failed;               /* marked failed for the rest of the run */
	} tier[4];
	unsigned ntiers;
	uint64_t compiles;
	double compile_seconds;        /* spent compiling */
	double compile_seconds_saved;  /* recorded compile time of the hits */
} pw_cache_stats;

typedef struct pw_cache pw_cache;

typedef struct pw_cache_opts {
	const char *signing_key_file;  /* HMAC key file; NULL = no signing */
} pw_cache_opts;

int pw_cache_new(pw_cache **out, const pw_cache_opts *opts);
/* Adds a tier below those already added; the cache takes ownership of the backend. */
int pw_cache_add_backend(pw_cache *c, pw_cache_backend *b);
void pw_cache_free(pw_cache *c);

/* Where an artifact came from. */
typedef enum pw_cache_source {
	PW_FROM_NONE = 0, PW_FROM_TIER /* + tier index */, PW_FROM_COMPILE = 100,
} pw_cache_source;

typedef struct pw_cache_result {
	int tier;                /* tier index of the hit, -1 when compiled */
	const char *tier_name;   /* "local", "registry", "compile" */
	double seconds;          /* lookup (+compile) time */
	double compile_seconds;  /* when compiled */
} pw_cache_result;

/*
 * The one call everyone uses: gives the verified artifact bytes for `wasm` under engine `e`:
 * looks up every tier in order (verifying each hit; a bad entry is counted and treated as a
 * miss), copies a hit into the tiers above it, or compiles and puts into every tier. Cache
 * failures never fail the call: only a compile failure does. Thread-safe.
 * `subject` (may be NULL) is recorded for the registry tier.
 */
int pw_cache_get_or_compile(pw_cache *c, pw_engine *e, const uint8_t *wasm, size_t len,
                            const pw_imports *host, const pw_cache_meta *subject,
                            pw_buf *artifact, pw_cache_result *res);
void pw_cache_get_stats(pw_cache *c, pw_cache_stats *out);
/* Verifies an entry against its key and the configured signing key: 0, or PW_EMISMATCH naming what. */
int pw_cache_verify_entry(pw_cache *c, const pw_cache_entry *e);

#ifdef __cplusplus
}
#endif
#endif
