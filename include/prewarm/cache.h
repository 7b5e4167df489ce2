/*
 * The artifact cache: content-addressed entries keyed by (engine hash, wasm sha256),
 * stored by pluggable backends (local directory, OCI registry) tried in order.
 *
 * An entry is the artifact bytes plus a small record (artifact sha256, size, compile
 * seconds, optional HMAC signature). Backends store and return entries; they do not
 * judge them. The tiered store verifies every entry it gets (sha256, embedded artifact
 * description vs key, signature when a key is configured) before anyone dlopens it;
 * a bad entry is a miss that is counted, logged and replaced. The tiered store looks up
 * and publishes; what makes an artifact on a miss is the caller's (pw_cache_build_fn:
 * pw_engine_compile in production, a fake in tests).
 *
 * Backend writers: prewarm/cache_backend.h (a static const type table per backend,
 * instances pointing to it).
 *
 * Across processes (pods sharing a directory or a registry), a miss that builds claims the
 * key in every tier that has claims; other processes wait for that entry instead of building
 * it too, and take the claim over when its owner stops renewing it (pw_cache_claim_judge).
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
/* The key of `wasm` under engine `e`: (pw_engine_hash(e), sha256 of the bytes). */
void pw_cache_key_for(pw_cache_key *out, const pw_engine *e, const uint8_t *wasm, size_t len);

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

/*
 * The entry record as JSON (one object; the local entry header and the registry
 * annotations both use it):
 *   {"format":1,"engine_hash":HEX64,"wasm_sha256":HEX64,"artifact_sha256":HEX64,
 *    "artifact_size":N,"compile_seconds":S,"signature":HEX64|"","created":T,
 *    "subject":{"digest":..,"mediaType":..,"size":N}}   (subject only when known)
 * pw_cache_meta_to_json appends to *out. pw_cache_meta_from_json parses strictly (outside
 * input): hashes must be 64 lower-case hex digits, numbers finite and non-negative, strings
 * within their fields, duplicate keys refused; unknown keys are ignored (forward compatible).
 * PW_EINVALID naming the field on any error.
 */
int pw_cache_meta_to_json(const pw_cache_meta *m, pw_buf *out);
int pw_cache_meta_from_json(pw_cache_meta *out, const char *json, size_t len);

/*
 * The on-disk entry format of the local backend (one file per entry), little-endian:
 *   "PWCACHE\n"  8-byte magic
 *   u32 format    PW_CACHE_ENTRY_FORMAT
 *   u32 meta_len  length of the meta JSON (<= PW_CACHE_META_MAX)
 *   u64 art_len   length of the artifact bytes (== meta.artifact_size)
 *   meta JSON, then the artifact bytes; the file ends exactly there.
 * pw_cache_entry_encode_header appends the header and the JSON (the artifact follows it).
 * pw_cache_entry_decode parses a whole file strictly (truncation, trailing bytes, sizes that
 * disagree: PW_EINVALID naming what) and copies the artifact into out->artifact.
 */
#define PW_CACHE_ENTRY_MAGIC "PWCACHE\n"
#define PW_CACHE_ENTRY_FORMAT 1u
#define PW_CACHE_ENTRY_HEADER_LEN 24u
#define PW_CACHE_META_MAX 65536u
int pw_cache_entry_encode_header(const pw_cache_meta *m, pw_buf *out);
int pw_cache_entry_decode(pw_cache_entry *out, const uint8_t *data, size_t len);

/*
 * The HMAC-SHA256 signature of an entry, lower-case hex, over
 * "prewarm-artifact-v1\n<engine_hash>\n<wasm_sha256>\n<artifact_sha256>\n".
 */
void pw_cache_sign(const uint8_t *key, size_t key_len, const pw_cache_meta *m,
                   char out[PW_SHA256_HEX_LEN + 1]);

/* For `ls`. */
typedef struct pw_cache_listing {
	pw_cache_key key;
	uint64_t size;
	double created, last_used;         /* wall clock; 0 if unknown */
} pw_cache_listing;

/*
 * A backend instance (a tier): opaque to its users, who call the functions below. How a
 * backend is written (its type table, claims): prewarm/cache_backend.h.
 */
typedef struct pw_cache_backend pw_cache_backend;

/* The tier's name in logs and counters ("local", "registry", ...). */
const char *pw_cache_backend_name(const pw_cache_backend *b);
/* 0 and *out filled; PW_ENOTFOUND on a miss; other codes are failures. */
int pw_cache_backend_get(pw_cache_backend *b, const pw_cache_key *key, pw_cache_entry *out);
/* 0 if present, PW_ENOTFOUND if not. */
int pw_cache_backend_exists(pw_cache_backend *b, const pw_cache_key *key);
/* Stores an entry (atomically: readers see no entry or a whole one). */
int pw_cache_backend_put(pw_cache_backend *b, const pw_cache_entry *entry);
/* Marks the entry used now (LRU); 0 for a backend without last-use times. */
int pw_cache_backend_touch(pw_cache_backend *b, const pw_cache_key *key);
/* Calls cb for every entry; stops early when cb returns non-zero (and returns that value).
 * PW_EUNSUPPORTED for a backend that cannot list. */
int pw_cache_backend_list(pw_cache_backend *b, int (*cb)(const pw_cache_listing *l, void *payload),
                          void *payload);
int pw_cache_backend_remove(pw_cache_backend *b, const pw_cache_key *key);
/* Frees the instance; NULL does nothing. */
void pw_cache_backend_free(pw_cache_backend *b);

/*
 * A claim on a key, published in a tier while one process builds it (cross-process single
 * flight: a lease file in a shared directory, a claim manifest in the registry). The same
 * JSON in both tiers:
 *   {"format":1,"nonce":HEX32,"host":..,"pid":N,"boot_id":..,"pidns":N,"seq":N,"ttl":S,
 *    "deadline":T,"state":"building"|"released"}
 * nonce identifies the claim (random per claimer); seq counts its renewals; deadline is the
 * owner's wall clock at its last renewal plus ttl. pw_cache_claim_from_json parses strictly
 * (a shared volume and a registry are outside input): PW_EINVALID naming the field.
 */
#define PW_CACHE_CLAIM_NONCE_LEN 32
typedef struct pw_cache_claim {
	char nonce[PW_CACHE_CLAIM_NONCE_LEN + 1];
	char host[65];             /* gethostname() */
	long pid;
	char boot_id[40];          /* /proc/sys/kernel/random/boot_id, "" if unknown */
	uint64_t pidns;            /* inode of /proc/self/ns/pid, 0 if unknown */
	uint64_t seq;
	double ttl;                /* seconds a claim lives without renewal */
	double deadline;           /* owner's wall clock */
	bool released;
} pw_cache_claim;
#define PW_CACHE_CLAIM_MAX 4096u   /* bytes of claim JSON a reader accepts */
int pw_cache_claim_to_json(const pw_cache_claim *c, pw_buf *out);
int pw_cache_claim_from_json(pw_cache_claim *out, const char *json, size_t len);

/* A waiter's view of one peer's claim, for pw_cache_claim_expired (zero it to start). */
typedef struct pw_cache_claim_watch {
	char nonce[PW_CACHE_CLAIM_NONCE_LEN + 1];
	uint64_t seq;
	double first_seen;          /* monotonic: when this (nonce, seq) was first seen */
	bool seen;
} pw_cache_claim_watch;

/* Why a claim is judged expired (PW_CLAIM_LIVE: it is not). */
typedef enum pw_claim_verdict {
	PW_CLAIM_LIVE = 0,
	PW_CLAIM_RELEASED,         /* its owner released it (the build failed or ended) */
	PW_CLAIM_OWNER_DEAD,       /* same pid namespace and boot: the owner's pid is gone */
	PW_CLAIM_PAST_DEADLINE,    /* our wall clock is past its deadline + the skew allowance */
	PW_CLAIM_NOT_RENEWED,      /* seen unchanged for longer than its ttl, on our monotonic clock */
} pw_claim_verdict;
const char *pw_claim_verdict_str(pw_claim_verdict v);

/*
 * Judges a peer's claim as seen now (mono = pw_now(), wall = pw_wall_now()). The rules, in
 * order: released; the owner's pid gone (only when its boot id and pid namespace are ours);
 * wall > deadline + skew (a claim left long ago: needs clocks within `skew` of each other,
 * a clock ahead by more only makes a waiter take over a live claim early, which costs a
 * duplicate compile, never a wrong entry); the same (nonce, seq) seen for longer than its
 * ttl (capped at PW_CACHE_CLAIM_TTL_MAX) on the waiter's own monotonic clock (needs no
 * clock agreement at all: a dead owner blocks a waiter for at most ttl + one poll after its
 * last renewal). A claim without a ttl (unreadable) is given own_ttl. `w` is updated with
 * what was seen.
 */
#define PW_CACHE_CLAIM_TTL_MAX 600.0
pw_claim_verdict pw_cache_claim_judge(pw_cache_claim_watch *w, const pw_cache_claim *holder, double mono,
                                      double wall, double skew, double own_ttl);

/* ---- the local directory backend ------------------------------------------------------ */

#define PW_CACHE_LOCAL_DEFAULT_MAX_SIZE (2ull << 30)

typedef struct pw_local_opts {
	uint64_t max_size;        /* bytes; 0 = PW_CACHE_LOCAL_DEFAULT_MAX_SIZE */
	double tmp_max_age;       /* seconds after which a crashed writer's temp file is removed (default 3600) */
} pw_local_opts;

/*
 * Opens (creating it if needed) a cache directory. Layout:
 *   DIR/v1/<wasm_sha256[0:2]>/<engine_hash>-<wasm_sha256>.pwa   entries
 *   DIR/v1/<xx>/.tmp-*                                           writers' temp files
 *   DIR/stats/                                                   persisted counters
 * Entries are written to a temp file in their final directory, fsynced, renamed into
 * place, and the directory fsynced: no locks, any number of processes on one host or on
 * a shared file system. get returns PW_ENOTFOUND for a missing entry, PW_EINVALID for a
 * file that is not a whole entry (truncated, garbage: the tiers count it as rejected and
 * replace it), PW_EIO for I/O errors. touch sets the entry's mtime (= last use). After a
 * put that takes the directory past max_size, entries are evicted (least recently used
 * first) down to 90% of it, and temp files older than tmp_max_age are removed. PW_EIO
 * naming the path if the directory cannot be created or is not a directory. opts may be NULL.
 */
int pw_cache_local_new(pw_cache_backend **out, const char *dir, const pw_local_opts *opts);
/* Applies the size limit now (LRU eviction: least recently used first, until the total is
 * at most max_size; 0 = the backend's limit) and removes stale temp files.
 * removed/freed may be NULL. */
int pw_cache_local_gc(pw_cache_backend *b, uint64_t max_size, unsigned *removed, uint64_t *freed);
/* The directory of a local backend (borrowed). */
const char *pw_cache_local_dir(const pw_cache_backend *b);
/* Total bytes and number of entries now in a local backend. */
int pw_cache_local_usage(pw_cache_backend *b, uint64_t *bytes, unsigned *entries);

/* ---- the registry backend (src/cache/registry.c, over the OCI client) ------------------- */

typedef struct pw_registry_cache_opts {
	const char *repository;   /* "host[:port]/repo" (required) */
	const char *credentials;  /* a Docker config.json file, or a directory holding
	                             `username` and `password` files; NULL = anonymous */
	const char *ca_file;      /* extra CA (PEM) for the registry host; NULL = system CAs */
	bool insecure;            /* HTTPS, then HTTPS unverified, then HTTP */
	bool read_only;           /* pull but never push */
	double timeout;           /* per request, seconds; 0 = 30 */
	double connect_timeout;   /* seconds; 0 = 5 */
	/* put() returns at once and publishes in a background thread; free() waits at most
	 * publish_deadline seconds (0 = 30) for publishes still running, then abandons them. */
	bool async_put;
	double publish_deadline;
	/* Claims (single flight across processes): seconds between writing a claim and reading
	 * it back; longer than any claimer's read-then-write takes (0 = 3x this process's own
	 * read-then-write, within 0.1-1 s). */
	double claim_settle;
	/* Text for the engine-description annotation (e.g. pw_engine_description()); NULL = the
	 * description embedded in the artifact (ABI version, engine hash, wasm sha256). */
	const char *engine_description;
} pw_registry_cache_opts;

#define PW_CACHE_ARTIFACT_TYPE "application/vnd.prewarm.artifact.v1"
#define PW_CACHE_LAYER_TYPE "application/vnd.prewarm.artifact.v1+zstd"
/* Annotations of a registry cache entry. */
#define PW_CACHE_ANN_META "io.prewarm.cache.meta"          /* pw_cache_meta_to_json */
#define PW_CACHE_ANN_ENGINE "io.prewarm.engine.hash"
#define PW_CACHE_ANN_ENGINE_DESC "io.prewarm.engine.description"
#define PW_CACHE_ANN_WASM "io.prewarm.wasm.digest"          /* "sha256:<hex>" */
#define PW_CACHE_ANN_ARTIFACT "io.prewarm.artifact.sha256"
#define PW_CACHE_ANN_SIGNATURE "io.prewarm.artifact.signature"
/* "pw1-" + engine hash[0:32] + "-" + wasm sha256: 101 characters. out: 128 bytes. */
void pw_cache_registry_tag(const char *engine_hash, const char *wasm_sha256, char out[128]);
/* Publishes still running in the background (async_put); 0 for other backends. */
unsigned pw_cache_registry_pending(pw_cache_backend *b);
/* Publisher threads still running in this process, abandoned ones included (tests, shutdown). */
unsigned pw_cache_registry_live_publishers(void);

/*
 * Opens the registry tier: one OCI image manifest per entry (artifactType
 * application/vnd.prewarm.artifact.v1, empty config, one zstd-compressed layer,
 * annotations with the key, the engine description, the artifact sha256 and signature),
 * tagged "pw1-<engine hash[0:32]>-<wasm sha256>". get() checks the layer digest and the
 * annotations against the key; the tiered cache verifies the rest. Does not contact the
 * registry (the first call does). PW_EINVALID for a bad repository or credentials file.
 */
int pw_cache_registry_new(pw_cache_backend **out, const pw_registry_cache_opts *opts);

/* ---- the tiered store ----------------------------------------------------------------- */

/* Tiers a cache can have (pw_cache_add_backend refuses more). */
#define PW_CACHE_MAX_TIERS 4

typedef struct pw_cache_stats {
	/* per tier (index as added) */
	struct {
		const char *name;
		uint64_t hits, misses, errors, rejected, puts, put_errors, bytes_read, bytes_written;
		/* cross-process single flight, by the tier holding the claim: */
		uint64_t peer_waits;       /* a peer's claim found: waited for its entry */
		uint64_t peer_hits;        /* ... and got the entry (no build here) */
		uint64_t claim_takeovers;  /* a peer's claim judged expired and taken over */
		uint64_t claim_wait_timeouts; /* waited longer than a build takes: built here too */
		bool failed;               /* a lookup failed: not used for the rest of the run */
		bool write_failed;         /* a put failed: no more puts for the rest of the run */
	} tier[PW_CACHE_MAX_TIERS];
	unsigned ntiers;
	uint64_t compiles;
	double compile_seconds;        /* spent compiling */
	double compile_seconds_saved;  /* recorded compile time of the hits */
} pw_cache_stats;

typedef struct pw_cache pw_cache;

typedef struct pw_cache_opts {
	/* HMAC key file; NULL = no signing. The file's bytes are the key, trailing
	 * whitespace (a newline left by an editor) removed; an empty key is PW_EINVALID. */
	const char *signing_key_file;
	/* Directory where this run's counters are added on pw_cache_free (pw_cache_totals);
	 * NULL = not persisted. Normally "<local cache dir>/stats". */
	const char *stats_dir;
	/* Cross-process single flight (claims in the tiers that have them). */
	struct {
		/* <0 (PW_CACHE_PEER_WAIT_OFF): never claim nor wait; 0: wait at most what the
		 * call expects its build to take (pw_cache_build_opts.expected_seconds); >0: at
		 * most that many seconds. */
		double max_wait;
		double ttl;            /* a claim's life without renewal; 0 = 30 s; renewed every ttl/3 */
		double poll;           /* seconds between looks while waiting; 0 = min(1 s, ttl/4) */
		double settle;         /* registry claims: the wait between write and read-back; 0 = 1 s */
		double skew;           /* clock skew allowance between hosts; 0 = 60 s */
	} peers;
} pw_cache_opts;
#define PW_CACHE_PEER_WAIT_OFF (-1.0)

/* A new cache with no tiers (every lookup compiles). opts may be NULL. PW_EINVALID /
 * PW_EIO naming the signing key file when it cannot be read. */
int pw_cache_new(pw_cache **out, const pw_cache_opts *opts);
/* True when a signing key is configured. */
bool pw_cache_signing(const pw_cache *c);
/* Adds a tier below those already added; the cache takes ownership of the backend. */
int pw_cache_add_backend(pw_cache *c, pw_cache_backend *b);
void pw_cache_free(pw_cache *c);

typedef struct pw_cache_result {
	int tier;                /* tier index of the hit, -1 when built (or a lookup missed) */
	const char *tier_name;   /* the tier's name ("local", "registry"), "compile", "none" on a miss */
	double seconds;          /* lookup (+compile) time */
	double compile_seconds;  /* when compiled */
	/* Cross-process single flight: seconds spent waiting for a peer's build (0 = none), and
	 * that peer ("host pid N"), when the artifact came from its entry (tier >= 0) or when
	 * the wait ended in a takeover or a timeout (tier = -1, built here). */
	double peer_wait_seconds;
	char peer[96];
	bool took_over;          /* built here after taking over an expired claim */
} pw_cache_result;

/*
 * What makes the artifact on a miss: pw_engine_compile in production, anything in tests.
 * Appends the artifact bytes to *artifact and sets *seconds to what it cost (recorded in
 * the entry as compile_seconds; left unset or negative, the measured time of the call is
 * recorded). Returns 0, or a negative PW_E* code with the error set.
 */
typedef int (*pw_cache_build_fn)(void *payload, pw_buf *artifact, double *seconds);

/*
 * Lookup only, never builds: asks every usable tier in order, verifies each entry it gets
 * (pw_cache_verify_entry_for; a refused entry is warned about, counted as rejected and
 * treated as a miss), touches a hit and copies it into the tiers above it. 0 with the
 * artifact bytes moved into *artifact (appended if it already holds bytes) and res->tier /
 * res->tier_name / res->seconds set; PW_ENOTFOUND when no tier holds a valid entry (a tier
 * failure is a miss, never returned); PW_EINVALID for a NULL argument. Counts a lookup and
 * a hit or a miss. res may be NULL. Thread-safe.
 */
int pw_cache_lookup(pw_cache *c, const pw_cache_key *key, pw_buf *artifact, pw_cache_result *res);

/*
 * Publishes bytes built elsewhere (a background compile): makes the record (artifact sha256
 * and size, compile_seconds, created now, the subject when given, the HMAC signature when a
 * signing key is configured) and puts the entry into every usable tier (a failed put is
 * counted and warned about, and that tier is not written to again this run). Counts a
 * compile (compiles, compile_seconds). Returns the number of tiers written (>= 0). Only a
 * bad argument is an error: PW_EINVALID for NULL or empty bytes, a negative or non-finite
 * compile_seconds, or bytes whose embedded artifact description is not that of `key`
 * (another module, engine or ABI, or not an artifact: nothing is published). The bytes are
 * the caller's. subject (may be NULL) is recorded for the registry tier. Thread-safe.
 */
int pw_cache_publish(pw_cache *c, const pw_cache_key *key, const uint8_t *artifact, size_t len,
                     double compile_seconds, const pw_cache_meta *subject);

/*
 * For an entry that verified but then failed to load (a dlopen error...): warns with `why`,
 * counts a rejected entry for the run (and for each tier it is removed from), and removes
 * the entry from every writable tier (neither failed nor write-failed), so the caller can
 * build and publish a replacement. A tier that cannot remove it is warned about. Never
 * fails; c or key NULL does nothing.
 */
void pw_cache_reject(pw_cache *c, const pw_cache_key *key, const char *why);

/* How pw_cache_get_or_build builds (NULL = all zero). */
typedef struct pw_cache_build_opts {
	const pw_cache_meta *subject;    /* recorded for the registry tier; may be NULL */
	/* What the build should take, in seconds. > 0: on a miss, claim the key in the tiers
	 * that have claims and wait for a peer that holds a claim at most this long (or the
	 * cache's peers.max_wait); 0: build at once, no claim (a quick build). */
	double expected_seconds;
} pw_cache_build_opts;

/*
 * pw_cache_lookup, else build(payload) and pw_cache_publish its bytes. Concurrent calls for
 * one key inside a process build once: later callers wait for the first and share its result
 * (bytes, or error). Across processes (opts->expected_seconds > 0): the key is claimed in
 * every tier that has claims before the build, the claims renewed while it runs and released
 * after; a peer's live claim makes this call wait for its entry (polling the tiers), take
 * the claim over once it is judged expired, or build anyway once it has waited longer than a
 * build takes; res->peer_wait_seconds / res->peer say so. On a hit res is as for
 * pw_cache_lookup; when built, res->tier = -1, res->tier_name = "compile" and
 * res->compile_seconds is what the build cost. Cache failures never fail the call: only the
 * build does (its code and message are returned, nothing is published), or bytes that
 * pw_cache_publish refuses (PW_EINVALID). The bytes are moved into *artifact (appended if it
 * already holds bytes). opts and res may be NULL. Thread-safe.
 */
int pw_cache_get_or_build(pw_cache *c, const pw_cache_key *key, pw_cache_build_fn build, void *payload,
                          const pw_cache_build_opts *opts, pw_buf *artifact, pw_cache_result *res);

/*
 * The call the commands use: pw_cache_get_or_build with key = pw_cache_key_for(e, wasm),
 * pw_engine_compile(e, wasm, len, host) as the build, and expected_seconds =
 * pw_engine_compile_seconds_estimate(e, len) (optimized: claims across processes; quick:
 * none). Only a compile failure fails the call.
 * `subject` (may be NULL) is recorded for the registry tier. Thread-safe.
 */
int pw_cache_get_or_compile(pw_cache *c, pw_engine *e, const uint8_t *wasm, size_t len,
                            const pw_imports *host, const pw_cache_meta *subject,
                            pw_buf *artifact, pw_cache_result *res);
void pw_cache_get_stats(pw_cache *c, pw_cache_stats *out);
/*
 * Verifies an entry against its key and the configured signing key: artifact size and
 * sha256 vs meta, the artifact's embedded description (ABI version, engine hash, wasm
 * sha256) vs meta.key, and the signature (with a key: unsigned or wrong is refused).
 * 0, or PW_EMISMATCH / PW_EINVALID with a message naming the key and what is wrong.
 */
int pw_cache_verify_entry(pw_cache *c, const pw_cache_entry *e);
/* Like pw_cache_verify_entry, and the entry must be the one stored under `key`. */
int pw_cache_verify_entry_for(pw_cache *c, const pw_cache_key *key, const pw_cache_entry *e);

/* ---- counters persisted across runs (`prewarm cache stats`) -------------------------- */

typedef struct pw_cache_totals {
	uint64_t runs;                 /* caches that recorded counters */
	uint64_t lookups, hits, misses, rejected, errors, compiles;
	uint64_t hits_by_tier[PW_CACHE_MAX_TIERS]; /* local, registry, other, other */
	uint64_t bytes_read, bytes_written;
	double compile_seconds, compile_seconds_saved;
} pw_cache_totals;

/*
 * Counters are kept as one small JSON file per run in `stats_dir` (the local backend uses
 * <cache dir>/stats; files written atomically, so
 * concurrent processes never lose each other's counts), merged into one file when there
 * are many (each merger first renames the files it takes, so none is counted twice).
 * pw_cache_totals_load sums them (a missing directory is all zeros).
 */
int pw_cache_totals_load(const char *stats_dir, pw_cache_totals *out);
int pw_cache_totals_add(const char *stats_dir, const pw_cache_totals *run);

#ifdef __cplusplus
}
#endif
#endif
