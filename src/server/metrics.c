/*
 * Server metrics in the Prometheus text exposition format (0.0.4), served on /metrics.
 *
 * Evaluations are counted per policy and outcome with a latency histogram per policy;
 * HTTP answers per status; the startup/reload phase durations and where each module's
 * code came from (local hit, registry hit, compiled, reused) describe the last (re)build;
 * compiles and their seconds by engine tier, tier-ups (background optimized compiles
 * swapped in), and the tier each policy of the current set runs on;
 * the cache tier counters come from the cache's own stats at render time. One mutex
 * guards everything: an update is a few additions, far cheaper than an evaluation.
 *
 * Beside Prewarm's own metrics, Kubewarden's: kubewarden_policy_evaluations_total and
 * kubewarden_policy_evaluation_latency_milliseconds (whole milliseconds, the OTel SDK's
 * default buckets) with Kubewarden's labels, so its Grafana dashboard works on a scrape of
 * /metrics. Each distinct label set is a series found through a hash of its label text; at
 * most PW_METRICS_KW_MAX_SERIES are kept (namespaces x kinds x operations x policies can
 * grow without bound), later label sets only count in prewarm_kubewarden_series_dropped_total.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"


static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static const char *const outcome_names[PW_OUT_N] = { "accepted", "rejected", "mutated", "error" };

typedef struct pol_metrics {
	char *id;
	uint64_t outcomes[PW_OUT_N];
	uint64_t bucket[NBUCKETS];   /* non-cumulative; summed at render */
	uint64_t count;
	double sum;
} pol_metrics;

/* The OTel SDK's default explicit bucket boundaries (milliseconds here). */
static const uint64_t kw_buckets[] = { 0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000 };
#define KW_NBUCKETS (sizeof kw_buckets / sizeof kw_buckets[0])
#define KW_SLOTS 8192                /* hash slots, a power of two above 2 * the series cap */

typedef struct kw_series {
	char *labels;                /* rendered label text: policy_name="...",... */
	uint32_t hash;
	bool hist;                   /* has a latency histogram (not for initialization errors) */
	uint64_t count;
	uint64_t bucket[KW_NBUCKETS];   /* non-cumulative; beyond the last one only in count */
	uint64_t sum_ms;
} kw_series;

typedef struct kv_count {
	char name[32];
	double value;
} kv_count;

struct pw_metrics {
	pthread_mutex_t mu;
	pol_metrics *pol;
	size_t npol, cappol;
	kv_count status[16];
	size_t nstatus;
	kv_count phase[16];
	size_t nphase;
	kv_count source[8];
	size_t nsource;
	uint64_t reloads_ok, reloads_failed;
	uint64_t compiles[2];             /* [0] optimized, [1] quick */
	double compile_seconds[2];
	uint64_t tier_ups, tier_up_failures;
	atomic_int in_flight;
	double started;
	kw_series *kw;
	size_t nkw;
	uint32_t kw_slot[KW_SLOTS];      /* series index + 1, 0 = empty */
	uint64_t kw_dropped;
};

int pw_metrics_new(pw_metrics **out)
{
	pw_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return pw_error_set(PW_ENOMEM, "out of memory");
	pthread_mutex_init(&m->mu, NULL);
	atomic_init(&m->in_flight, 0);
	m->started = pw_wall_now();
	*out = m;
	return 0;
}

void pw_metrics_free(pw_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->npol; i++)
		free(m->pol[i].id);
	free(m->pol);
	for (size_t i = 0; i < m->nkw; i++)
		free(m->kw[i].labels);
	free(m->kw);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static pol_metrics *pol_get(pw_metrics *m, const char *id)
{
	for (size_t i = 0; i < m->npol; i++)
		if (!strcmp(m->pol[i].id, id))
			return &m->pol[i];
	if (m->npol == m->cappol) {
		size_t cap = m->cappol ? 2 * m->cappol : 16;
		pol_metrics *n = realloc(m->pol, cap * sizeof *n);
		if (!n)
			return NULL;
		m->pol = n;
		m->cappol = cap;
	}
	pol_metrics *p = &m->pol[m->npol];
	memset(p, 0, sizeof *p);
	if (!(p->id = strdup(id)))
		return NULL;
	m->npol++;
	return p;
}

void pw_metrics_eval(pw_metrics *m, const char *policy, enum pw_outcome o, double seconds)
{
	pthread_mutex_lock(&m->mu);
	pol_metrics *p = pol_get(m, policy);
	if (p) {
		p->outcomes[o]++;
		p->count++;
		p->sum += seconds;
		for (size_t i = 0; i < NBUCKETS; i++)
			if (seconds <= buckets[i]) {
				p->bucket[i]++;
				break;
			}
	}
	pthread_mutex_unlock(&m->mu);
}

static void kv_add(kv_count *kv, size_t *n, size_t cap, const char *name, double v, bool set)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(kv[i].name, name)) {
			kv[i].value = set ? v : kv[i].value + v;
			return;
		}
	if (*n < cap) {
		snprintf(kv[*n].name, sizeof kv[*n].name, "%s", name);
		kv[(*n)++].value = v;
	}
}

static void put_label(pw_buf *b, const char *s);

/* The series of a label text, created if there is room (NULL when full or out of memory).
 * Called with the mutex held. */
static kw_series *kw_get(pw_metrics *m, const char *labels, bool hist)
{
	uint32_t hash = 2166136261u;
	for (const char *p = labels; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 16777619u;
	uint32_t i = hash & (KW_SLOTS - 1);
	for (; m->kw_slot[i]; i = (i + 1) & (KW_SLOTS - 1)) {
		kw_series *s = &m->kw[m->kw_slot[i] - 1];
		if (s->hash == hash && !strcmp(s->labels, labels))
			return s;
	}
	if (m->nkw >= PW_METRICS_KW_MAX_SERIES)
		return NULL;
	if (!m->kw && !(m->kw = calloc(PW_METRICS_KW_MAX_SERIES, sizeof *m->kw)))
		return NULL;
	kw_series *s = &m->kw[m->nkw];
	memset(s, 0, sizeof *s);
	if (!(s->labels = strdup(labels)))
		return NULL;
	s->hash = hash;
	s->hist = hist;
	m->kw_slot[i] = (uint32_t)++m->nkw;
	return s;
}

static void kw_label(pw_buf *b, const char *name, const char *value)
{
	pw_buf_printf(b, "%s%s=\"", b->len ? "," : "", name);
	put_label(b, value);
	pw_buf_puts(b, "\"");
}

static void kw_record(pw_metrics *m, pw_buf *lb, bool hist, double seconds)
{
	pthread_mutex_lock(&m->mu);
	kw_series *s = lb->data ? kw_get(m, (const char *)lb->data, hist) : NULL;
	if (!s) {
		m->kw_dropped++;
	} else {
		s->count++;
		if (hist) {
			uint64_t ms = seconds > 0 ? (uint64_t)(seconds * 1e3) : 0;   /* as_millis: truncated */
			s->sum_ms += ms;
			for (size_t i = 0; i < KW_NBUCKETS; i++)
				if (ms <= kw_buckets[i]) {
					s->bucket[i]++;
					break;
				}
		}
	}
	pthread_mutex_unlock(&m->mu);
	pw_buf_free(lb);
}

void pw_metrics_kw_eval(pw_metrics *m, const pw_kw_eval *e, double seconds)
{
	pw_buf lb = PW_BUF_INIT;
	char code[16];
	kw_label(&lb, "policy_name", e->policy_name);
	kw_label(&lb, "policy_mode", e->mode == PW_POLICY_MONITOR ? "monitor" : "protect");
	if (e->origin) {
		kw_label(&lb, "resource_kind", e->kind ? e->kind : "");
		if (e->ns)
			kw_label(&lb, "resource_namespace", e->ns);
		kw_label(&lb, "resource_request_operation", e->op ? e->op : "");
	}
	kw_label(&lb, "accepted", e->accepted ? "true" : "false");
	kw_label(&lb, "mutated", e->mutated ? "true" : "false");
	if (e->origin)
		kw_label(&lb, "request_origin", e->origin);
	if (e->error_code) {
		snprintf(code, sizeof code, "%d", e->error_code);
		kw_label(&lb, "error_code", code);
	}
	pw_buf_append(&lb, "", 1);
	kw_record(m, &lb, true, seconds);
}

void pw_metrics_kw_init_error(pw_metrics *m, const char *policy, const char *error)
{
	pw_buf lb = PW_BUF_INIT;
	kw_label(&lb, "policy_name", policy);
	kw_label(&lb, "initialization_error", error);
	pw_buf_append(&lb, "", 1);
	kw_record(m, &lb, false, 0);
}

void pw_metrics_http(pw_metrics *m, int status)
{
	char s[16];
	snprintf(s, sizeof s, "%d", status);
	pthread_mutex_lock(&m->mu);
	kv_add(m->status, &m->nstatus, 16, s, 1, false);
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_phase(pw_metrics *m, const char *phase, double seconds)
{
	pthread_mutex_lock(&m->mu);
	kv_add(m->phase, &m->nphase, 16, phase, seconds, true);
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_source(pw_metrics *m, const char *source)
{
	pthread_mutex_lock(&m->mu);
	kv_add(m->source, &m->nsource, 8, source, 1, false);
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_reset_sources(pw_metrics *m)
{
	pthread_mutex_lock(&m->mu);
	m->nsource = 0;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_compile(pw_metrics *m, pw_engine_tier tier, double seconds)
{
	int k = tier == PW_TIER_QUICK;
	pthread_mutex_lock(&m->mu);
	m->compiles[k]++;
	m->compile_seconds[k] += seconds;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_tier_up(pw_metrics *m, bool ok)
{
	pthread_mutex_lock(&m->mu);
	if (ok)
		m->tier_ups++;
	else
		m->tier_up_failures++;
	pthread_mutex_unlock(&m->mu);
}

void pw_metrics_in_flight(pw_metrics *m, int delta)
{
	atomic_fetch_add(&m->in_flight, delta);
}

void pw_metrics_reload(pw_metrics *m, bool ok)
{
	pthread_mutex_lock(&m->mu);
	if (ok)
		m->reloads_ok++;
	else
		m->reloads_failed++;
	pthread_mutex_unlock(&m->mu);
}

/* A label value with \, " and newline escaped. */
static void put_label(pw_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			pw_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			pw_buf_puts(b, "\\n");
		else
			pw_buf_append(b, s, 1);
	}
}

static void help(pw_buf *b, const char *name, const char *type, const char *text)
{
	pw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

int pw_metrics_render(pw_metrics *m, pw_buf *b, const pw_cache_stats *cs, const pw_pset *set, bool ready)
{
	size_t loaded = set ? set->n - set->nfailed : 0, failed = set ? set->nfailed : 0;
	pthread_mutex_lock(&m->mu);
	help(b, "prewarm_evaluations_total", "counter", "Policy evaluations by policy and outcome.");
	for (size_t i = 0; i < m->npol; i++)
		for (int o = 0; o < PW_OUT_N; o++) {
			pw_buf_puts(b, "prewarm_evaluations_total{policy=\"");
			put_label(b, m->pol[i].id);
			pw_buf_printf(b, "\",outcome=\"%s\"} %llu\n", outcome_names[o],
			              (unsigned long long)m->pol[i].outcomes[o]);
		}
	help(b, "prewarm_evaluation_duration_seconds", "histogram", "Time to evaluate one request, by policy.");
	for (size_t i = 0; i < m->npol; i++) {
		uint64_t cum = 0;
		for (size_t k = 0; k <= NBUCKETS; k++) {
			pw_buf_puts(b, "prewarm_evaluation_duration_seconds_bucket{policy=\"");
			put_label(b, m->pol[i].id);
			if (k < NBUCKETS) {
				cum += m->pol[i].bucket[k];
				pw_buf_printf(b, "\",le=\"%g\"} %llu\n", buckets[k], (unsigned long long)cum);
			} else {
				pw_buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)m->pol[i].count);
			}
		}
		pw_buf_puts(b, "prewarm_evaluation_duration_seconds_sum{policy=\"");
		put_label(b, m->pol[i].id);
		pw_buf_printf(b, "\"} %.6f\n", m->pol[i].sum);
		pw_buf_puts(b, "prewarm_evaluation_duration_seconds_count{policy=\"");
		put_label(b, m->pol[i].id);
		pw_buf_printf(b, "\"} %llu\n", (unsigned long long)m->pol[i].count);
	}
	help(b, "kubewarden_policy_evaluations_total", "counter", "Policy evaluations (Kubewarden's metric and labels).");
	for (size_t i = 0; i < m->nkw; i++)
		pw_buf_printf(b, "kubewarden_policy_evaluations_total{%s} %llu\n", m->kw[i].labels,
		              (unsigned long long)m->kw[i].count);
	help(b, "kubewarden_policy_evaluation_latency_milliseconds", "histogram",
	     "Policy evaluation latency in milliseconds (Kubewarden's metric and labels).");
	for (size_t i = 0; i < m->nkw; i++) {
		const kw_series *ks = &m->kw[i];
		uint64_t cum = 0;
		if (!ks->hist)
			continue;
		for (size_t k = 0; k < KW_NBUCKETS; k++) {
			cum += ks->bucket[k];
			pw_buf_printf(b, "kubewarden_policy_evaluation_latency_milliseconds_bucket{%s,le=\"%llu\"} %llu\n",
			              ks->labels, (unsigned long long)kw_buckets[k], (unsigned long long)cum);
		}
		pw_buf_printf(b, "kubewarden_policy_evaluation_latency_milliseconds_bucket{%s,le=\"+Inf\"} %llu\n"
		                 "kubewarden_policy_evaluation_latency_milliseconds_sum{%s} %llu\n"
		                 "kubewarden_policy_evaluation_latency_milliseconds_count{%s} %llu\n",
		              ks->labels, (unsigned long long)ks->count, ks->labels, (unsigned long long)ks->sum_ms,
		              ks->labels, (unsigned long long)ks->count);
	}
	help(b, "prewarm_kubewarden_series_dropped_total", "counter",
	     "Evaluations not recorded in the kubewarden_* metrics: the label set cap was reached.");
	pw_buf_printf(b, "prewarm_kubewarden_series_dropped_total %llu\n", (unsigned long long)m->kw_dropped);
	help(b, "prewarm_http_responses_total", "counter", "HTTP answers by status code.");
	for (size_t i = 0; i < m->nstatus; i++)
		pw_buf_printf(b, "prewarm_http_responses_total{code=\"%s\"} %.0f\n", m->status[i].name, m->status[i].value);
	help(b, "prewarm_startup_phase_seconds", "gauge", "Duration of each phase of the last startup or reload.");
	for (size_t i = 0; i < m->nphase; i++)
		pw_buf_printf(b, "prewarm_startup_phase_seconds{phase=\"%s\"} %.6f\n", m->phase[i].name, m->phase[i].value);
	help(b, "prewarm_module_sources", "gauge", "Modules of the last startup or reload by where their code came from.");
	for (size_t i = 0; i < m->nsource; i++)
		pw_buf_printf(b, "prewarm_module_sources{source=\"%s\"} %.0f\n", m->source[i].name, m->source[i].value);
	help(b, "prewarm_reloads_total", "counter", "Policy reloads by result.");
	pw_buf_printf(b, "prewarm_reloads_total{result=\"ok\"} %llu\nprewarm_reloads_total{result=\"refused\"} %llu\n",
	              (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed);
	help(b, "prewarm_compiles_total", "counter", "Modules compiled to native code, by engine tier.");
	for (int k = 0; k < 2; k++)
		pw_buf_printf(b, "prewarm_compiles_total{tier=\"%s\"} %llu\n", k ? "quick" : "optimized",
		              (unsigned long long)m->compiles[k]);
	help(b, "prewarm_compile_seconds_total", "counter", "Time spent compiling, by engine tier.");
	for (int k = 0; k < 2; k++)
		pw_buf_printf(b, "prewarm_compile_seconds_total{tier=\"%s\"} %.6f\n", k ? "quick" : "optimized",
		              m->compile_seconds[k]);
	help(b, "prewarm_tier_ups_total", "counter", "Background optimized compiles swapped in for quick code.");
	pw_buf_printf(b, "prewarm_tier_ups_total %llu\n", (unsigned long long)m->tier_ups);
	help(b, "prewarm_tier_up_failures_total", "counter", "Background optimized compiles that failed (quick code kept).");
	pw_buf_printf(b, "prewarm_tier_up_failures_total %llu\n", (unsigned long long)m->tier_up_failures);
	pw_buf_printf(b, "# HELP prewarm_start_time_seconds Process start, seconds since the epoch.\n"
	                 "# TYPE prewarm_start_time_seconds gauge\nprewarm_start_time_seconds %.3f\n", m->started);
	pthread_mutex_unlock(&m->mu);

	help(b, "prewarm_evaluations_in_flight", "gauge", "Evaluations running now.");
	pw_buf_printf(b, "prewarm_evaluations_in_flight %d\n", atomic_load(&m->in_flight));
	help(b, "prewarm_policies_loaded", "gauge", "Policies of the current set that serve requests.");
	pw_buf_printf(b, "prewarm_policies_loaded %zu\n", loaded);
	help(b, "prewarm_policies_failed", "gauge", "Policies of the current set that are broken (continue-on-errors).");
	pw_buf_printf(b, "prewarm_policies_failed %zu\n", failed);
	help(b, "prewarm_ready", "gauge", "1 when every policy is loaded and its settings validated.");
	pw_buf_printf(b, "prewarm_ready %d\n", ready ? 1 : 0);
	help(b, "prewarm_policy_tier", "gauge", "1 for the engine tier each policy runs on now, 0 for the other.");
	for (size_t i = 0; set && i < set->n; i++) {
		const pw_module *mod = set->e[i].module;
		if (!mod || !set->e[i].policy)
			continue;
		for (int k = 0; k < 2; k++) {
			pw_buf_puts(b, "prewarm_policy_tier{policy=\"");
			put_label(b, set->e[i].conf->id);
			pw_buf_printf(b, "\",tier=\"%s\"} %d\n", k ? "quick" : "optimized",
			              (mod->tier == PW_TIER_QUICK) == (k == 1));
		}
	}
	if (cs) {
		static const struct { const char *name, *help; size_t off; } tc[] = {
			{ "prewarm_cache_hits_total", "Cache hits by tier.", offsetof(__typeof__(cs->tier[0]), hits) },
			{ "prewarm_cache_misses_total", "Cache misses by tier.", offsetof(__typeof__(cs->tier[0]), misses) },
			{ "prewarm_cache_errors_total", "Cache tier failures by tier.", offsetof(__typeof__(cs->tier[0]), errors) },
			{ "prewarm_cache_rejected_total", "Cache entries that failed verification, by tier.", offsetof(__typeof__(cs->tier[0]), rejected) },
			{ "prewarm_cache_puts_total", "Entries written, by tier.", offsetof(__typeof__(cs->tier[0]), puts) },
			{ "prewarm_cache_peer_waits_total", "Misses that found another process building the entry (its claim in the tier) and waited for it.", offsetof(__typeof__(cs->tier[0]), peer_waits) },
			{ "prewarm_cache_peer_hits_total", "Waits that ended with the peer's entry (no compile here).", offsetof(__typeof__(cs->tier[0]), peer_hits) },
			{ "prewarm_cache_claim_takeovers_total", "Claims of other processes taken over (expired, released or their owner gone).", offsetof(__typeof__(cs->tier[0]), claim_takeovers) },
			{ "prewarm_cache_claim_wait_timeouts_total", "Waits for a peer that lasted as long as a compile: compiled here too.", offsetof(__typeof__(cs->tier[0]), claim_wait_timeouts) },
		};
		for (size_t k = 0; k < sizeof tc / sizeof tc[0]; k++) {
			help(b, tc[k].name, "counter", tc[k].help);
			for (unsigned t = 0; t < cs->ntiers && t < PW_CACHE_MAX_TIERS; t++) {
				uint64_t v;
				memcpy(&v, (const char *)&cs->tier[t] + tc[k].off, sizeof v);
				pw_buf_printf(b, "%s{tier=\"%s\"} %llu\n", tc[k].name, cs->tier[t].name ? cs->tier[t].name : "?",
				              (unsigned long long)v);
			}
		}
		help(b, "prewarm_compile_seconds_saved_total", "counter", "Recorded compile time of the cache hits.");
		pw_buf_printf(b, "prewarm_compile_seconds_saved_total %.6f\n", cs->compile_seconds_saved);
	}
	return b->data ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}
