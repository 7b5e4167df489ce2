/*
 * Internals of the server part shared by its files: metrics (metrics.c), the policy set
 * and the startup pipeline that builds it (pset.c), and the HTTP front end (http.c).
 *
 * A policy set is immutable once built and reference-counted: a request takes a reference
 * to the current set for its whole evaluation, a reload builds a new set beside it and
 * swaps the pointer, so in-flight requests finish on the old set, which is freed by
 * whoever drops the last reference. Loaded artifacts (modules) are reference-counted too,
 * so a new set reuses the artifacts of unchanged modules without loading them again.
 */
#ifndef PW_SERVER_INT_H
#define PW_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"
#include "prewarm/policy.h"
#include "prewarm/server.h"
#include "prewarm/util.h"

/* ---- metrics ------------------------------------------------------------------------ */

typedef struct pw_metrics pw_metrics;

enum pw_outcome { PW_OUT_ACCEPTED = 0, PW_OUT_REJECTED, PW_OUT_MUTATED, PW_OUT_ERROR, PW_OUT_N };

int pw_metrics_new(pw_metrics **out);
void pw_metrics_free(pw_metrics *m);
/* A compile that served a policy (startup, reload or tier-up), by tier. */
void pw_metrics_compile(pw_metrics *m, pw_engine_tier tier, double seconds);
/* A background optimized compile ended: swapped in (ok) or failed. */
void pw_metrics_tier_up(pw_metrics *m, bool ok);
void pw_metrics_eval(pw_metrics *m, const char *policy, enum pw_outcome o, double seconds);
void pw_metrics_http(pw_metrics *m, int status);

/* Kubewarden's metrics (kubewarden_policy_evaluations_total and
 * kubewarden_policy_evaluation_latency_milliseconds) with its labels. At most
 * PW_METRICS_KW_MAX_SERIES label sets are kept; evaluations of further label sets are only
 * counted in prewarm_kubewarden_series_dropped_total. */
#define PW_METRICS_KW_MAX_SERIES 4096
typedef struct pw_kw_eval {
	const char *policy_name;      /* the policy (or group) id */
	pw_policy_mode mode;          /* policy_mode */
	const char *origin;           /* request_origin "validate"/"audit"; NULL for /validate_raw
	                                 (then no kind, namespace, operation, origin labels) */
	const char *kind;             /* resource_kind: request.requestKind.kind ("" if absent) */
	const char *ns;               /* resource_namespace, NULL = no label */
	const char *op;               /* resource_request_operation */
	bool accepted, mutated;       /* the policy's own answer, before monitor mode */
	int error_code;               /* the policy's status.code, 0 = no label */
} pw_kw_eval;
void pw_metrics_kw_eval(pw_metrics *m, const pw_kw_eval *e, double seconds);
/* A broken policy answered (continue-on-errors): counter only, labels policy_name and
 * initialization_error. */
void pw_metrics_kw_init_error(pw_metrics *m, const char *policy, const char *error);
/* Records the duration of a startup/reload phase (the last run's value is exported). */
void pw_metrics_phase(pw_metrics *m, const char *phase, double seconds);
/* Where a module's code came from in the last build (pw_origin_name). */
void pw_metrics_source(pw_metrics *m, const char *source);
void pw_metrics_reset_sources(pw_metrics *m);
void pw_metrics_reload(pw_metrics *m, bool ok);
/* Evaluations running now (+1 when one starts, -1 when it ends). */
void pw_metrics_in_flight(pw_metrics *m, int delta);
struct pw_pset;
/* Prometheus text exposition (version 0.0.4). cs and set (the current policy set: loaded /
 * failed counts, the tier each policy runs on) may be NULL. */
int pw_metrics_render(pw_metrics *m, pw_buf *out, const pw_cache_stats *cs, const struct pw_pset *set,
                      bool ready);

/* ---- modules and policy sets ---------------------------------------------------------- */

/* Where a module's code came from. */
typedef enum pw_origin {
	PW_ORIGIN_NONE = 0,
	PW_ORIGIN_LOCAL,              /* a hit in the local directory tier */
	PW_ORIGIN_REGISTRY,           /* a hit in the registry tier */
	PW_ORIGIN_CACHE,              /* a hit in another tier */
	PW_ORIGIN_COMPILED,           /* compiled now */
	PW_ORIGIN_REUSED,             /* already loaded by the previous set */
} pw_origin;
/* "local", "registry", "cache", "compile", "reused" (metric labels). */
const char *pw_origin_name(pw_origin o);

typedef struct pw_module {
	atomic_int refs;
	char sha256[PW_SHA256_HEX_LEN + 1];
	pw_engine_tier tier;          /* the engine tier of the artifact */
	pw_artifact *artifact;
	/* quick modules only: what the background optimized compile needs (else empty) */
	pw_buf wasm;
	pw_cache_meta subject;
	double quick_since;           /* pw_now() when the quick code started serving */
} pw_module;

void pw_module_ref(pw_module *m);
void pw_module_unref(pw_module *m);
/* Verifies artifact bytes against (engine hash, sha256), loads them with the policy host
 * imports into a new module (one reference, tier = the engine's). */
int pw_module_load(pw_module **out, pw_engine *e, const char *sha256, const uint8_t *so, size_t len);

/* The compile of a module by one engine, as a pw_cache_build_fn (payload: the arg below);
 * cancel may be NULL (see pw_compile_opts). */
typedef struct pw_module_build_arg {
	pw_engine *engine;
	const uint8_t *wasm;
	size_t len;
	const atomic_int *cancel;
} pw_module_build_arg;
int pw_module_build(void *payload, pw_buf *artifact, double *seconds);

typedef struct pw_pset_entry {
	const pw_policy_conf *conf;   /* points into the set's pw_policies */
	pw_module *module;            /* NULL when the module failed */
	pw_policy *policy;            /* NULL when broken (continue-on-errors) */
	char *error;                  /* why it is broken, else NULL */
	pw_origin origin;
	/* A policy group (module and policy NULL): its members are the set's entries
	 * e[first_member .. first_member + nmembers), in the conf's member order. */
	bool group;
	size_t first_member, nmembers;
} pw_pset_entry;

typedef struct pw_pset {
	atomic_int refs;
	pw_policies *conf;
	atomic_int *conf_refs;        /* sets built from one conf (a tier-up copies a set) share it */
	size_t n;                     /* entries: conf->n in conf order, then every group's members */
	size_t ntop;                  /* conf->n: the entries a request can name */
	pw_pset_entry *e;
	size_t nfailed;               /* broken entries (a group with a broken member counts too) */
	unsigned generation;
} pw_pset;

void pw_pset_ref(pw_pset *s);
void pw_pset_unref(pw_pset *s);
/* The policy or group `id` (never a group member: "GROUP/MEMBER" is not served alone). */
pw_pset_entry *pw_pset_find(pw_pset *s, const char *id);
/* True when entry `e` can serve: a loaded policy, or a group whose members all loaded. */
bool pw_pset_entry_ok(const pw_pset_entry *e);
/*
 * Evaluates a request on entry `e` of set `s`, like pw_policy_evaluate (same returns and
 * answer shapes). A group (expr_group.c) runs its expression lazily, each member call a
 * fresh evaluation of the member on the request; a member that mutates counts as a
 * rejection; a rejection carries the group message and one cause per member that ran and
 * rejected (field "spec.policies.MEMBER"); then the group's mode applies (not on AUDIT).
 * A member that cannot run at all answers "error evaluating policy group expression: ..."
 * with code 500 (result->error set).
 */
int pw_pset_evaluate(pw_pset *s, pw_pset_entry *e, unsigned worker, const char *body, size_t len,
                     pw_eval_kind kind, char **response, pw_eval_result *result);

/* What building a set needs (borrowed). */
typedef struct pw_build_ctx {
	const pw_server_opts *opts;
	pw_engine *engine;
	pw_cache *cache;              /* NULL = compile every module (--no-cache) */
	pw_engine *quick;             /* the quick tier: serves misses at once (NULL = tiering off) */
	pw_oci_client *oci;           /* NULL when no module needs it */
	pw_metrics *metrics;
	const pw_pset *previous;      /* modules to reuse by digest; NULL at start */
	const char *download_dir;
} pw_build_ctx;

/*
 * The startup pipeline: fetch (parallel, deduplicated by URL then by digest) -> cache or
 * compile (pool bounded by cores and memory) -> load -> policies -> settings. On error the
 * message names the policy; with opts->continue_on_errors broken policies are kept as
 * entries with an error instead. Phase times go to the log and the metrics.
 */
int pw_pset_build(pw_pset **out, pw_policies *conf, const pw_build_ctx *ctx);
/*
 * A tier-up: a copy of `cur` in which every policy whose module has up->sha256 and is not
 * yet on up's tier runs on `up` (new policies, settings validated again on the new code);
 * the other policies get new policy objects on the same modules. Shares cur's conf.
 * *nswapped = policies moved (0: nothing to do, *out NULL). Errors name the policy.
 */
int pw_pset_retier(pw_pset **out, const pw_pset *cur, pw_module *up, const pw_server_opts *o,
                   size_t *nswapped);

/* ---- memory budget of parallel compiles (pset.c) ----------------------------------------- */

typedef struct pw_budget {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t avail;
	unsigned running;
	bool unlimited;
} pw_budget;
/* `bytes` 0 = unlimited. */
void pw_budget_init(pw_budget *b, uint64_t bytes);
void pw_budget_destroy(pw_budget *b);
/* Waits until `want` fits (a job alone always runs); returns what was taken. */
uint64_t pw_budget_acquire(pw_budget *b, uint64_t want);
void pw_budget_release(pw_budget *b, uint64_t got);
/* Peak memory estimate of an optimized compile of a module of `wasm_len` bytes. */
uint64_t pw_compile_estimate(size_t wasm_len);
/* The memory budget of parallel compiles: the configured bytes, else a share of what is available. */
uint64_t pw_compile_memory(uint64_t configured);

/* ---- tier-up: background optimized compiles (tierup.c) ----------------------------------- */

typedef struct pw_tierup pw_tierup;
typedef struct pw_tierup_opts {
	pw_engine *engine;            /* the optimized engine (must be able to compile) */
	pw_cache *cache;              /* may be NULL */
	pw_metrics *metrics;
	unsigned jobs;                /* compiler threads (0 = 1) */
	int nice;                     /* niceness added to those threads (and so to their compilers) */
	uint64_t max_memory;          /* budget of parallel compiles (0 = 80% of available) */
	/* Called on a compiler thread with the loaded optimized module (borrowed: take a ref to
	 * keep it) once it is published. */
	void (*swap)(void *arg, pw_module *optimized, const pw_module *quick, double compile_seconds);
	void *arg;
} pw_tierup_opts;
int pw_tierup_new(pw_tierup **out, const pw_tierup_opts *o);
/* Queues the optimized compile of quick module `m` (ref taken) unless one for its digest is
 * queued, running or already done this run. */
void pw_tierup_submit(pw_tierup *t, pw_module *m);
/* Stops the tier-up: queued jobs are dropped, running compilers killed (their process
 * groups); waits at most max_wait seconds for the running jobs to end. Idempotent. */
void pw_tierup_cancel(pw_tierup *t, double max_wait);
/* Cancels (as above), then joins the threads and frees. */
void pw_tierup_free(pw_tierup *t);

/* ---- the HTTP front end --------------------------------------------------------------- */

typedef struct pw_http pw_http;

/* Implemented by server.c for http.c. */
pw_pset *pw_server__acquire(pw_server *s);    /* the current set with a reference, or NULL */
bool pw_server__ready(pw_server *s);
pw_metrics *pw_server__metrics(pw_server *s);
const pw_server_opts *pw_server__opts(pw_server *s);
int pw_server__render_metrics(pw_server *s, pw_buf *out);

int pw_http_start(pw_http **out, pw_server *s);
/* Stops accepting, waits up to `drain` seconds for requests in flight, then stops. */
void pw_http_stop(pw_http *h, double drain);

#endif
