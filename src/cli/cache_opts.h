/*
 * The cache options every command that compiles or loads modules shares (compile, run,
 * eval, serve, cache): ONE parser and ONE place that opens the pw_cache from them, so the
 * flags mean the same everywhere.
 *
 *   --cache-dir DIR                 local cache directory (default: $PREWARM_CACHE_DIR, else
 *                                   $XDG_CACHE_HOME/prewarm, else ~/.cache/prewarm)
 *   --cache-max-size SIZE           size limit of the local directory (default 2GiB; "512MiB")
 *   --cache-signing-key FILE        HMAC-SHA256 key: sign entries, refuse unsigned/bad ones
 *   --no-cache                      neither read nor write any cache
 *   --cache-registry HOST[:PORT]/REPO    the shared OCI registry tier
 *   --cache-registry-credentials FILE    Docker config.json, or a dir with username/password
 *   --cache-registry-ca FILE             extra CA for the registry
 *   --cache-registry-insecure            HTTPS, then unverified HTTPS, then HTTP
 *   --cache-registry-read-only           pull from the registry, never push
 *   --cache-peer-wait SECONDS|auto|off   wait for a peer process compiling the same key into a
 *                                        shared tier (auto: what the compile should take)
 *   --cache-claim-ttl SECONDS            life of a compile's claim without renewal (30)
 *   --cache-claim-settle SECONDS         registry claims: write, wait this long, read back (measured)
 * Every flag also takes the form --flag=VALUE, and has an environment variable read by
 * pw_cache_cli_init (a flag wins over its variable): PREWARM_CACHE_DIR,
 * PREWARM_CACHE_MAX_SIZE, PREWARM_CACHE_SIGNING_KEY, PREWARM_NO_CACHE,
 * PREWARM_CACHE_REGISTRY, PREWARM_CACHE_REGISTRY_CREDENTIALS, PREWARM_CACHE_REGISTRY_CA,
 * PREWARM_CACHE_REGISTRY_INSECURE, PREWARM_CACHE_REGISTRY_READ_ONLY (booleans: 1/true/yes,
 * 0/false/no), PREWARM_CACHE_PEER_WAIT, PREWARM_CACHE_CLAIM_TTL,
 * PREWARM_CACHE_CLAIM_SETTLE. A variable with a bad value is a warning and is ignored (the cache never
 * fails a run).
 *
 * Wiring a command (example):
 *
 *   pw_cache_cli_opts co;
 *   pw_cache *cache = NULL;
 *   pw_cache_cli_init(&co);
 *   for (int i = 1; i < argc; i++) {
 *       int r = pw_cache_cli_parse(&co, argc, argv, &i);
 *       if (r < 0) return 2;              // usage error, already printed
 *       if (r > 0) continue;              // a cache option (i now at its last word)
 *       ... the command's own options ...
 *   }
 *   pw_cache_cli_open(&co, &cache);       // never fails the run: warns, may give no tiers
 *   rc = pw_cache_get_or_compile(cache, engine, wasm, len, host, NULL, &artifact, &res);
 *   printf("%s\n", res.tier >= 0 ? "cache hit" : "compiled");
 *   pw_cache_free(cache);                 // also records this run's counters
 *   pw_cache_cli_free(&co);
 *
 * Usage text for --help: print pw_cache_cli_help.
 */
#ifndef PW_CLI_CACHE_OPTS_H
#define PW_CLI_CACHE_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "prewarm/cache.h"

typedef struct pw_cache_cli_opts {
	const char *dir;                  /* --cache-dir, or the default (see pw_cache_cli_dir) */
	uint64_t max_size;                /* --cache-max-size; 0 = default (2 GiB) */
	const char *signing_key_file;     /* --cache-signing-key */
	bool no_cache;                    /* --no-cache */
	const char *registry;             /* --cache-registry */
	const char *registry_credentials; /* --cache-registry-credentials */
	const char *registry_ca;          /* --cache-registry-ca */
	bool registry_insecure;           /* --cache-registry-insecure */
	bool registry_read_only;          /* --cache-registry-read-only */
	double peer_wait;                 /* --cache-peer-wait: 0 auto, PW_CACHE_PEER_WAIT_OFF, or seconds */
	double claim_ttl;                 /* --cache-claim-ttl; 0 = the cache's default (30 s) */
	double claim_settle;              /* --cache-claim-settle; 0 = the registry tier's default (measured) */
	/* Set by the command (serve: Kubewarden's mounts), used only for the registry tier: */
	const char *fallback_credentials; /* when no --cache-registry-credentials: a Docker config
	                                     (--docker-config-json-path) */
	const char *sources_path;         /* sources.yml (--sources-path): without
	                                     --cache-registry-ca, the registry host's
	                                     source_authorities are its CA; listed in
	                                     insecure_sources = --cache-registry-insecure */
	char *default_dir;                /* owned: the computed default */
} pw_cache_cli_opts;

extern const char pw_cache_cli_help[];

/* Zeroes *o and reads the PREWARM_CACHE_* / PREWARM_NO_CACHE variables (bad values: a
 * warning on stderr, the variable ignored). Parse the flags afterwards: they win. */
void pw_cache_cli_init(pw_cache_cli_opts *o);
void pw_cache_cli_free(pw_cache_cli_opts *o);

/*
 * Looks at argv[*i]: returns 1 when it is a cache option (consumed with its value; *i then
 * points at the last word used), 0 when it is not a cache option (nothing changes), -1 on
 * a usage error (missing or bad value: the message is printed on stderr).
 */
int pw_cache_cli_parse(pw_cache_cli_opts *o, int argc, char **argv, int *i);

/* The local directory the options select: --cache-dir, $PREWARM_CACHE_DIR,
 * $XDG_CACHE_HOME/prewarm, $HOME/.cache/prewarm; NULL when none can be found. */
const char *pw_cache_cli_dir(pw_cache_cli_opts *o);

/*
 * Opens the cache: the local directory tier, then the registry tier when --cache-registry is
 * given, the signing key, and counters recorded in <dir>/stats. Never fails because of the
 * cache: a directory that cannot be created, a registry that cannot be configured, or an
 * unreadable signing key each give a warning and a cache without that tier (a bad signing
 * key: without any tier, so nothing unverified is ever loaded). With --no-cache the cache
 * has no tiers (every lookup compiles). Returns 0, or PW_ENOMEM.
 */
int pw_cache_cli_open(pw_cache_cli_opts *o, pw_cache **out);

/* Opens only the local directory backend (for `prewarm cache ...`): errors are returned. */
int pw_cache_cli_open_local(pw_cache_cli_opts *o, pw_cache_backend **out);

#endif
