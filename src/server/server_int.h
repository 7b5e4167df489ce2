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
void pw_metrics_eval(pw_metrics *m, const char *policy, enum pw_outcome o, double seconds);
void pw_metrics_http(pw_metrics *m, int status);
/* Records the duration of a startup/reload phase (the last run's value is exported). */
void pw_metrics_phase(pw_metrics *m, const char *phase, double seconds);
/* Where a module's code came from in the last build: "local", "registry", "compile", "reused". */
void pw_metrics_source(pw_metrics *m, const char *source);
void pw_metrics_reset_sources(pw_metrics *m);
void pw_metrics_reload(pw_metrics *m, bool ok);
/* Evaluations running now (+1 when one starts, -1 when it ends). */
void pw_metrics_in_flight(pw_metrics *m, int delta);
/* Prometheus text exposition (version 0.0.4). cs may be NULL. */
int pw_metrics_render(pw_metrics *m, pw_buf *out, const pw_cache_stats *cs, size_t policies_loaded,
                      size_t policies_failed, bool ready);

/* ---- modules and policy sets ---------------------------------------------------------- */

typedef struct pw_module {
	atomic_int refs;
	char sha256[PW_SHA256_HEX_LEN + 1];
	pw_artifact *artifact;
} pw_module;

void pw_module_ref(pw_module *m);
void pw_module_unref(pw_module *m);

typedef struct pw_pset_entry {
	const pw_policy_conf *conf;   /* points into the set's pw_policies */
	pw_module *module;            /* NULL when the module failed */
	pw_policy *policy;            /* NULL when broken (continue-on-errors) */
	char *error;                  /* why it is broken, else NULL */
	const char *source;           /* "local hit", "registry hit", "compiled", "reused", "" */
} pw_pset_entry;

typedef struct pw_pset {
	atomic_int refs;
	pw_policies *conf;
	size_t n;
	pw_pset_entry *e;             /* conf->n entries, same order */
	size_t nfailed;
	unsigned generation;
} pw_pset;

void pw_pset_ref(pw_pset *s);
void pw_pset_unref(pw_pset *s);
pw_pset_entry *pw_pset_find(pw_pset *s, const char *id);

/* What building a set needs (borrowed). */
typedef struct pw_build_ctx {
	const pw_server_opts *opts;
	pw_engine *engine;
	pw_cache *cache;              /* NULL = compile every module (--no-cache) */
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
unsigned pw_http_port(const pw_http *h);
unsigned pw_http_readiness_port(const pw_http *h);

#endif
