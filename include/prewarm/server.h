/*
 * The Policy Server: Kubewarden's policies.yml, the cache-driven startup pipeline
 * (fetch -> keys -> cache or compile -> load -> policies -> settings), the HTTP(S)
 * endpoints (/validate, /validate_raw, /audit, readiness, /metrics) and reload.
 *
 * policies.yml is outside input: pw_policies_parse() checks it strictly (wrong types, ids
 * with '/', unsupported module URLs, bad hostCapabilities patterns, bad group expressions)
 * and its errors name the policy id and the key. Keys Kubewarden ignores on an entry (the
 * controller's `namespacedName`) are ignored with a debug line. The `prewarm serve` command (src/cli/cmd_serve.c) fills a
 * pw_server_opts from flags and KUBEWARDEN_* variables and runs a pw_server.
 */
#ifndef PREWARM_SERVER_H
#define PREWARM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- policies.yml ------------------------------------------------------------------- */

typedef enum pw_module_scheme {
	PW_MODULE_FILE = 0,      /* file:///abs/path.wasm */
	PW_MODULE_HTTP,          /* http:// or https:// */
	PW_MODULE_REGISTRY,      /* registry://host/repo[:tag][@sha256:...] (bare refs too) */
} pw_module_scheme;

struct pw_expr;

/* One policy of policies.yml, a policy group, or a member of a group. Every string (also
 * those behind the const pointers of context_resources and host_capabilities) is owned by
 * the pw_policies that holds it. */
typedef struct pw_policy_conf {
	char *id;                   /* the map key: non-empty, no '/'; a group member's is "GROUP/MEMBER" */
	char *module;               /* normalised URL: a bare "ghcr.io/x" becomes "registry://ghcr.io/x";
	                               NULL for a group */
	pw_module_scheme scheme;
	char *settings_json;        /* compact JSON object text ("{}" when absent) */
	pw_policy_mode mode;        /* policyMode: PW_POLICY_PROTECT (default) or PW_POLICY_MONITOR */
	bool allowed_to_mutate;     /* allowedToMutate */
	char *message;              /* custom rejection message, NULL if none; a group's message */
	double timeout_seconds;     /* timeoutEvalSeconds, 0 = server default */
	char *execution_mode;       /* executionMode (Prewarm's key: kubewarden-wapc, wasi, opa,
	                               gatekeeper) overriding the module's metadata; NULL if absent */
	size_t ncontext_resources;  /* contextAwareResources */
	pw_policy_resource *context_resources;
	size_t nhost_capabilities;  /* hostCapabilities (trimmed, checked against Kubewarden's tree) */
	char **host_capabilities;   /* NULL when the key is absent or null (nothing allowed, like []),
	                               else n entries */
	/* Policy groups (entries with `policies`): module, settings_json and host_capabilities
	 * are NULL; mode and message are the group's. */
	bool is_group;
	char *expression;           /* the group's expression text */
	struct pw_expr *expr;       /* parsed at load (src/server/expr.h) */
	size_t nmembers;            /* members in file order: policyMode protect, no message, */
	struct pw_policy_conf *members;   /* no allowedToMutate, id "GROUP/MEMBER" */
	const char *member_name;    /* a member's name (points into id), NULL otherwise */
} pw_policy_conf;

typedef struct pw_policies {
	size_t n;
	pw_policy_conf *items;      /* in file order */
} pw_policies;

/* Limits on outside input. */
#define PW_POLICIES_MAX_BYTES (16u << 20)
#define PW_POLICY_ID_MAX 253

/*
 * Parses policies.yml text (YAML, or the controller's one-line JSON). `origin` (e.g. the
 * path) prefixes error messages. PW_EINVALID with a message naming the policy and the key
 * (and the line for YAML syntax errors, the position for a group expression);
 * PW_EUNSUPPORTED for module URL schemes Prewarm cannot fetch. *out is the caller's
 * (pw_policies_free).
 */
int pw_policies_parse(pw_policies **out, const char *yaml, size_t len, const char *origin);
/* Reads and parses a file (at most PW_POLICIES_MAX_BYTES). Read errors (PW_ENOTFOUND, PW_EIO)
 * name the path. */
int pw_policies_load(pw_policies **out, const char *path);
void pw_policies_free(pw_policies *p);
const pw_policy_conf *pw_policies_find(const pw_policies *p, const char *id);
/* True when two entries would build the same policy (same module, settings, mode, ...; for
 * groups the same expression, message and members). */
bool pw_policy_conf_equal(const pw_policy_conf *a, const pw_policy_conf *b);


/* ---- the server ----------------------------------------------------------------------- */

struct pw_engine;
struct pw_cache;
struct pw_oci_client;
struct pw_verify_config;

typedef struct pw_server_opts {
	const char *policies_path;          /* --policies (required) */
	const char *download_dir;           /* --policies-download-dir (NULL = a temp dir) */
	struct pw_oci_client *oci;          /* fetches registry/http modules (borrowed; may be NULL
	                                       when every module is file://) */
	struct pw_engine *engine;           /* the optimized tier (borrowed, required; may be pinned:
	                                       then it loads cached artifacts and cannot compile) */
	/* The quick tier (borrowed; NULL = tiering off): a module no cache tier holds as optimized
	 * code is served from quick code at once while its optimized compile runs in the
	 * background, is published and swapped in between requests. */
	struct pw_engine *quick_engine;
	unsigned tierup_jobs;               /* parallel background optimized compiles (0 = 1) */
	int tierup_nice;                    /* niceness added to them (0 = 10; < 0 = none) */
	struct pw_cache *cache;             /* borrowed; NULL = no cache (--no-cache) */
	struct pw_host_env *host_env;       /* answers policies' host capabilities (borrowed; NULL =
	                                       none: granted capabilities answer a host error) */
	const char *addr;                   /* --addr (default "0.0.0.0") */
	unsigned port;                      /* --port (3000; 0 = any free port) */
	unsigned readiness_port;            /* --readiness-probe-port (8081; 0 = any free port) */
	const char *cert_file, *key_file;   /* TLS for the main port (both or none) */
	const char *client_ca_file;         /* --client-ca-file: comma-separated PEM CA files; set =
	                                     * mutual TLS (clients must present a cert they sign) */
	unsigned workers;                   /* HTTP worker threads = instance slots (0 = CPUs) */
	double policy_timeout;              /* --policy-timeout seconds (0 = 2) */
	bool disable_timeout;               /* --disable-timeout-protection */
	const char *always_accept_namespace;/* --always-accept-admission-reviews-on-namespace */
	bool continue_on_errors;            /* serve the rest, answer 500 for broken policies */
	/* --verification-path (borrowed; NULL = none): every module is verified against it
	 * (cosign signatures, include/prewarm/sigstore.h) before it is fetched, at start and at
	 * every reload, and fetched by the verified digest; a module that fails is a broken
	 * policy (the start fails without continue_on_errors). */
	const struct pw_verify_config *verification;
	size_t max_body;                    /* request body limit (0 = 8 MiB) */
	unsigned compile_jobs;              /* parallel cache lookups/compiles (0 = CPUs) */
	uint64_t max_memory;                /* memory budget for parallel compiles (0 = available) */
	uint64_t instance_memory;           /* per-instance linear memory cap (0 = module's) */
} pw_server_opts;

typedef struct pw_server pw_server;

/*
 * Starts the listeners (main port answering 503 until ready, readiness port answering 503)
 * and returns; nothing is loaded yet. Errors name the address/port or the TLS file.
 */
int pw_server_new(pw_server **out, const pw_server_opts *opts);
/* Runs the startup pipeline on opts->policies_path, then reports ready. On error (a policy
 * that cannot be loaded or whose settings are invalid, without continue_on_errors) the
 * message names the policy and the server stays not ready. */
int pw_server_start(pw_server *s);
/* Rebuilds the set from policies_path beside the current one and swaps it in atomically.
 * A broken new set is refused (error returned and logged); the old one keeps serving. */
int pw_server_reload(pw_server *s);
/* True when policies_path changed (mtime, size, inode) since the last (re)load. */
bool pw_server_policies_changed(pw_server *s);
/* Stops accepting connections, lets requests in flight finish (at most `drain` seconds),
 * then stops the listeners. Idempotent. */
void pw_server_shutdown(pw_server *s, double drain);
void pw_server_free(pw_server *s);

#ifdef __cplusplus
}
#endif
#endif
