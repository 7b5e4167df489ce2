/*
 * The startup pipeline: turns a parsed policies.yml into a ready policy set.
 *
 *   fetch     every distinct module URL once, in parallel (file:// read in place; http(s)
 *             and registry refs pulled into the download dir by the OCI client), then
 *             deduplicated by sha256: policies sharing bytes share one module;
 *   cache     per distinct module: the optimized artifact from any cache tier; else, with
 *             tiering, the quick artifact (a cache hit, or compiled on the spot in a
 *             fraction of a second) whose optimized compile the server then runs in the
 *             background (tierup.c); without tiering, the optimized compile now. Compiles
 *             run in a pool bounded by cores and, for the optimized tier, by a memory
 *             budget (a compile can take ~1 GB per MB of wasm); a module already loaded by
 *             the previous set (reload) is reused as is;
 *   load      verify + dlopen each new artifact with the policy host imports (a cache hit
 *             that fails to load is rejected from the cache, rebuilt and loaded again);
 *   policies  one pw_policy per entry; a policy group's members are entries of their own
 *             (after the top-level ones), so their modules are fetched, shared, cached,
 *             compiled and tiered up exactly like those of single policies;
 *   settings  validate_settings of every policy, in parallel.
 * Each phase is timed into the log and the metrics; one log line per policy says where
 * its code came from. Errors name the policy; with continue_on_errors the broken policy
 * stays in the set with its error (the server answers 500 for it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/oci.h"
#include "prewarm/sigstore.h"
#include "server/server_int.h"

#define PW_WASM_MAX (512u << 20)

/* ---- refcounts ------------------------------------------------------------------------ */

void pw_module_ref(pw_module *m)
{
	if (m)
		atomic_fetch_add(&m->refs, 1);
}

void pw_module_unref(pw_module *m)
{
	if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	pw_artifact_free(m->artifact);
	pw_buf_free(&m->wasm);
	free(m);
}

const char *pw_origin_name(pw_origin o)
{
	switch (o) {
	case PW_ORIGIN_LOCAL: return "local";
	case PW_ORIGIN_REGISTRY: return "registry";
	case PW_ORIGIN_CACHE: return "cache";
	case PW_ORIGIN_COMPILED: return "compile";
	case PW_ORIGIN_REUSED: return "reused";
	default: return "none";
	}
}

void pw_pset_ref(pw_pset *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
}

void pw_pset_unref(pw_pset *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->n; i++) {
		pw_policy_free(s->e[i].policy);   /* instances go before their artifact */
		pw_module_unref(s->e[i].module);
		free(s->e[i].error);
	}
	free(s->e);
	if (s->conf_refs && atomic_fetch_sub(s->conf_refs, 1) == 1) {
		pw_policies_free(s->conf);
		free(s->conf_refs);
	}
	free(s);
}

pw_pset_entry *pw_pset_find(pw_pset *s, const char *id)
{
	for (size_t i = 0; s && i < s->ntop; i++)
		if (!strcmp(s->e[i].conf->id, id))
			return &s->e[i];
	return NULL;
}

bool pw_pset_entry_ok(const pw_pset_entry *e)
{
	return !e->error && (e->group || e->policy);
}

/* ---- the pipeline --------------------------------------------------------------------- */

/* One distinct module URL. */
typedef struct fetch_item {
	const char *url;
	pw_buf wasm;
	char sha256[PW_SHA256_HEX_LEN + 1];
	char *error;
	const char *stage;              /* what failed: NULL = the fetch, else "signature verification" */
	char *pinned;                   /* under verification: the verified digest's reference to pull */
	const pw_verify_config *verification;
	pw_oci_client *oci;
	pw_cache_meta subject;          /* registry manifest, for the cache's `subject` */
	struct mod_item *mod;
} fetch_item;

/* One distinct module (by digest). */
typedef struct mod_item {
	fetch_item *f;                  /* the first URL with these bytes */
	pw_module *module;              /* reused or loaded */
	pw_buf artifact;
	pw_engine *engine;              /* the engine (tier) that made `artifact` */
	char *error;
	pw_origin origin;
	const char *first_policy;       /* the first policy logged with this module */
	double seconds, compile_seconds, load_seconds;
	const pw_build_ctx *ctx;
	pw_budget *budget;
} mod_item;

/* measured: peak compiler memory ~50-110 MB per MB of generated C, ~10x the wasm */
#define COMPILE_BASE_BYTES (64ull << 20)
#define COMPILE_BYTES_PER_WASM_BYTE 1100
/* the share of available memory parallel compiles may take when --max-memory is not set */
#define COMPILE_MEMORY_PERCENT 80

uint64_t pw_compile_estimate(size_t wasm_len)
{
	return COMPILE_BASE_BYTES + (uint64_t)wasm_len * COMPILE_BYTES_PER_WASM_BYTE;
}

uint64_t pw_compile_memory(uint64_t configured)
{
	return configured ? configured : pw_mem_available() / 100 * COMPILE_MEMORY_PERCENT;
}

void pw_budget_init(pw_budget *b, uint64_t bytes)
{
	memset(b, 0, sizeof *b);
	b->unlimited = bytes == 0;
	b->avail = bytes;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
}

void pw_budget_destroy(pw_budget *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

uint64_t pw_budget_acquire(pw_budget *b, uint64_t want)
{
	if (b->unlimited)
		return 0;
	pthread_mutex_lock(&b->mu);
	while (b->running > 0 && want > b->avail)
		pthread_cond_wait(&b->cv, &b->mu);
	uint64_t got = want < b->avail ? want : b->avail;  /* alone, a big job runs anyway */
	b->avail -= got;
	b->running++;
	pthread_mutex_unlock(&b->mu);
	return got;
}

void pw_budget_release(pw_budget *b, uint64_t got)
{
	if (b->unlimited)
		return;
	pthread_mutex_lock(&b->mu);
	b->avail += got;
	b->running--;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static char *dup_error(void)
{
	return strdup(pw_error_last()[0] ? pw_error_last() : "unknown error");
}

int pw_module_build(void *payload, pw_buf *artifact, double *seconds)
{
	pw_module_build_arg *b = payload;
	pw_compile_stats st = { 0 };
	pw_compile_opts co = { .cancel = b->cancel };
	int rc = pw_engine_compile_ex(b->engine, b->wasm, b->len, pw_policy_host_imports(), &co, artifact, &st);
	*seconds = st.total_seconds;
	return rc;
}

int pw_module_load(pw_module **out, pw_engine *e, const char *sha256, const uint8_t *so, size_t len)
{
	pw_artifact_info expect = { .abi_version = PW_ARTIFACT_ABI_VERSION };
	pw_artifact *a = NULL;
	*out = NULL;
	snprintf(expect.engine_hash, sizeof expect.engine_hash, "%s", pw_engine_hash(e));
	memcpy(expect.wasm_sha256, sha256, sizeof expect.wasm_sha256);
	int rc = pw_artifact_load(&a, so, len, &expect, pw_policy_host_imports());
	if (rc < 0)
		return rc;
	pw_module *m = calloc(1, sizeof *m);
	if (!m) {
		pw_artifact_free(a);
		return pw_error_set(PW_ENOMEM, "out of memory loading module sha256:%.12s", sha256);
	}
	atomic_init(&m->refs, 1);
	memcpy(m->sha256, sha256, sizeof m->sha256);
	m->tier = pw_engine_get_tier(e);
	m->artifact = a;
	*out = m;
	return 0;
}

static pw_origin origin_of(const pw_cache_result *res)
{
	if (res->tier < 0)
		return PW_ORIGIN_COMPILED;
	return !strcmp(res->tier_name, "local") ? PW_ORIGIN_LOCAL
	     : !strcmp(res->tier_name, "registry") ? PW_ORIGIN_REGISTRY : PW_ORIGIN_CACHE;
}

/* The artifact of `m` under engine `e`: a cache hit or a compile (published). */
static int get_or_build(mod_item *m, pw_engine *e)
{
	const pw_build_ctx *ctx = m->ctx;
	pw_module_build_arg b = { e, m->f->wasm.data, m->f->wasm.len, NULL };
	bool optimized = pw_engine_get_tier(e) == PW_TIER_OPTIMIZED;
	uint64_t got = optimized ? pw_budget_acquire(m->budget, pw_compile_estimate(m->f->wasm.len)) : 0;
	double seconds = 0;
	int rc;

	m->engine = e;
	if (ctx->cache) {
		pw_cache_key key;
		pw_cache_result res = { 0 };
		pw_cache_key_for(&key, e, b.wasm, b.len);
		pw_cache_build_opts bo = { m->f->subject.subject_digest[0] ? &m->f->subject : NULL,
		                           pw_engine_compile_seconds_estimate(e, b.len) };
		rc = pw_cache_get_or_build(ctx->cache, &key, pw_module_build, &b, &bo, &m->artifact, &res);
		if (rc == 0) {
			m->origin = origin_of(&res);
			seconds = res.compile_seconds;
		}
	} else {
		rc = pw_module_build(&b, &m->artifact, &seconds);
		m->origin = PW_ORIGIN_COMPILED;
	}
	if (optimized)
		pw_budget_release(m->budget, got);
	if (rc == 0 && m->origin == PW_ORIGIN_COMPILED) {
		m->compile_seconds = seconds;
		pw_metrics_compile(ctx->metrics, pw_engine_get_tier(e), seconds);
	}
	return rc;
}

static void cache_job(void *arg)
{
	mod_item *m = arg;
	const pw_build_ctx *ctx = m->ctx;
	double t0 = pw_now();
	int rc;

	if (!ctx->quick) {
		rc = get_or_build(m, ctx->engine);
	} else {
		/* tiering: optimized code if a tier has it, else quick code now */
		pw_cache_key key;
		pw_cache_result res = { 0 };
		rc = PW_ENOTFOUND;
		if (ctx->cache) {
			pw_cache_key_for(&key, ctx->engine, m->f->wasm.data, m->f->wasm.len);
			rc = pw_cache_lookup(ctx->cache, &key, &m->artifact, &res);
		}
		if (rc == 0) {
			m->engine = ctx->engine;
			m->origin = origin_of(&res);
		} else if ((rc = get_or_build(m, ctx->quick)) < 0 && pw_engine_can_compile(ctx->engine)) {
			/* a module the quick tier cannot build is still served, by the optimized one */
			pw_warn("server", "%s: quick tier failed (%s); compiling with the optimized tier now",
			        m->f->url, pw_error_last());
			pw_buf_free(&m->artifact);
			rc = get_or_build(m, ctx->engine);
		}
	}
	m->seconds = pw_now() - t0;
	if (rc < 0)
		m->error = dup_error();
}

static int load_module(mod_item *m)
{
	return pw_module_load(&m->module, m->engine, m->f->sha256, m->artifact.data, m->artifact.len);
}

static void load_job(void *arg)
{
	mod_item *m = arg;
	const pw_build_ctx *ctx = m->ctx;
	double t0 = pw_now();
	int rc = load_module(m);

	if (rc < 0 && ctx->cache && m->origin != PW_ORIGIN_COMPILED && pw_engine_can_compile(m->engine)) {
		/* verified but not loadable (a dlopen error): replace the entry, once */
		pw_cache_key key;
		pw_cache_key_for(&key, m->engine, m->f->wasm.data, m->f->wasm.len);
		pw_cache_reject(ctx->cache, &key, pw_error_last());
		pw_buf_free(&m->artifact);
		if ((rc = get_or_build(m, m->engine)) == 0)
			rc = load_module(m);
	}
	if (rc < 0) {
		m->error = dup_error();
	} else if (m->module->tier == PW_TIER_QUICK) {
		/* kept for the background optimized compile */
		m->module->wasm = m->f->wasm;
		memset(&m->f->wasm, 0, sizeof m->f->wasm);
		m->module->subject = m->f->subject;
		m->module->quick_since = pw_now();
	}
	pw_buf_free(&m->artifact);
	m->load_seconds = pw_now() - t0;
}

typedef struct settings_job_arg {
	pw_pset_entry *e;
	double seconds;
} settings_job_arg;

static void settings_job(void *arg)
{
	settings_job_arg *j = arg;
	char *msg = NULL;
	double t0 = pw_now();
	int rc = pw_policy_validate_settings(j->e->policy, 0, &msg);
	if (rc == PW_EINVALID) {
		char buf[1200];
		snprintf(buf, sizeof buf, "policy \"%s\": invalid settings: %s", j->e->conf->id,
		         msg && *msg ? msg : "the policy rejected its settings");
		j->e->error = strdup(buf);
	} else if (rc < 0) {
		char buf[1200];
		snprintf(buf, sizeof buf, "policy \"%s\": validate_settings failed: %s", j->e->conf->id, pw_error_last());
		j->e->error = strdup(buf);
	}
	free(msg);
	j->seconds = pw_now() - t0;
}

static void fetch_name(const char *dir, const char *url, char *out, size_t n)
{
	char h[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(url, strlen(url), h);
	snprintf(out, n, "%s/%.32s.wasm", dir, h);
}

#define VERIFY_PARALLEL 4

static void verify_job(void *arg)
{
	fetch_item *it = arg;
	if (pw_cosign_verify_pinned(&it->pinned, it->oci, it->url, it->verification) == 0) {
		pw_info("server", "%s: signatures verified (%s)", it->url, strchr(it->pinned, '@') + 1);
		return;
	}
	it->stage = "signature verification";
	it->error = dup_error();
}

/* Under --verification-path: every module's signatures, before anything is pulled (as in
 * Kubewarden's policy downloader); in parallel, each item keeps its own result. */
static void verify_all(fetch_item *f, size_t nf, const pw_build_ctx *ctx)
{
	const pw_verify_config *cfg = ctx->opts->verification;
	pw_pool *pool = NULL;
	if (!cfg || !nf)
		return;
	if (!ctx->oci) {
		for (size_t i = 0; i < nf; i++) {
			f[i].stage = "signature verification";
			f[i].error = strdup("no OCI client configured to fetch signatures");
		}
		return;
	}
	bool pooled = pw_pool_new(&pool, nf < VERIFY_PARALLEL ? (unsigned)nf : VERIFY_PARALLEL, 0) == 0;
	for (size_t i = 0; i < nf; i++) {
		f[i].verification = cfg;
		f[i].oci = ctx->oci;
		if (!pooled || pw_pool_submit(pool, verify_job, &f[i]) < 0)
			verify_job(&f[i]);
	}
	if (pooled) {
		pw_pool_wait(pool);
		pw_pool_free(pool);
	}
}

/* Fetch phase: fills every fetch_item's bytes and digest, or its error. */
static void fetch_all(fetch_item *f, size_t nf, const pw_build_ctx *ctx)
{
	pw_oci_pull_job *jobs = calloc(nf + 1, sizeof *jobs);
	char **dests = calloc(nf + 1, sizeof *dests);
	size_t *idx = calloc(nf + 1, sizeof *idx);
	size_t nj = 0;

	if (!jobs || !dests || !idx) {
		for (size_t i = 0; i < nf; i++)
			f[i].error = strdup("out of memory");
		goto out;
	}
	verify_all(f, nf, ctx);
	for (size_t i = 0; i < nf; i++) {
		if (f[i].error || !strncmp(f[i].url, "file://", 7))
			continue;
		if (!ctx->oci) {
			f[i].error = strdup("no OCI client configured for remote modules");
			continue;
		}
		dests[nj] = malloc(4096);
		if (!dests[nj]) {
			f[i].error = strdup("out of memory");
			continue;
		}
		fetch_name(ctx->download_dir, f[i].url, dests[nj], 4096);
		jobs[nj].ref = f[i].pinned ? f[i].pinned : f[i].url;
		jobs[nj].dest = dests[nj];
		idx[nj++] = i;
	}
	if (nj)
		pw_oci_pull_many(ctx->oci, jobs, nj, pw_cpu_count() > 4 ? pw_cpu_count() : 4);
	for (size_t j = 0; j < nj; j++) {
		fetch_item *it = &f[idx[j]];
		if (jobs[j].rc < 0) {
			it->error = strdup(jobs[j].error[0] ? jobs[j].error : pw_error_code_str(jobs[j].rc));
			continue;
		}
		if (jobs[j].result.manifest_digest[0]) {
			snprintf(it->subject.subject_digest, sizeof it->subject.subject_digest, "%s",
			         jobs[j].result.manifest_digest);
			snprintf(it->subject.subject_media_type, sizeof it->subject.subject_media_type, "%s",
			         jobs[j].result.manifest_media_type);
			it->subject.subject_size = jobs[j].result.manifest_size;
		}
		if (pw_file_read(dests[j], PW_WASM_MAX, &it->wasm) < 0)
			it->error = dup_error();
	}
	for (size_t i = 0; i < nf; i++) {
		if (f[i].error || strncmp(f[i].url, "file://", 7))
			continue;
		if (pw_file_read(f[i].url + 7, PW_WASM_MAX, &f[i].wasm) < 0)
			f[i].error = dup_error();
	}
	for (size_t i = 0; i < nf; i++) {
		if (f[i].error)
			continue;
		if (f[i].wasm.len < 8 || memcmp(f[i].wasm.data, "\0asm", 4) != 0) {
			char buf[600];
			snprintf(buf, sizeof buf, "%s is not a WebAssembly module (no \\0asm magic)", f[i].url);
			f[i].error = strdup(buf);
			continue;
		}
		pw_sha256_hex(f[i].wasm.data, f[i].wasm.len, f[i].sha256);
	}
out:
	for (size_t j = 0; j < nj; j++)
		free(dests[j]);
	free(dests);
	free(jobs);
	free(idx);
}

static pw_module *previous_module(const pw_pset *prev, const char *sha)
{
	for (size_t i = 0; prev && i < prev->n; i++)
		if (prev->e[i].module && !strcmp(prev->e[i].module->sha256, sha))
			return prev->e[i].module;
	return NULL;
}

/* The log's note on a module's tier. */
static const char *tier_note(const pw_module *m, const pw_build_ctx *ctx)
{
	if (m->tier != PW_TIER_QUICK)
		return "";
	return ctx->quick && pw_engine_can_compile(ctx->engine) ? ", optimized compile in the background"
	                                                       : ", no optimizing compiler here: stays on quick code";
}

static int fail_entry(pw_pset_entry *e, const char *what, const char *why)
{
	char buf[1400];
	snprintf(buf, sizeof buf, "policy \"%s\": %s: %s", e->conf->id, what, why);
	free(e->error);
	e->error = strdup(buf);
	return PW_ERROR;
}

/* The pw_policy of an entry whose module is set. A group member runs in protect mode with
 * its answer untouched (allowed to mutate: the group turns a patch into a rejection). No
 * hostCapabilities key means no capability, as in Kubewarden. */
static int entry_policy(pw_pset_entry *e, const pw_server_opts *o)
{
	static const char *const no_caps[1] = { NULL };
	const pw_policy_conf *c = e->conf;
	pw_policy_spec spec = {
		.id = c->id,
		.settings_json = c->settings_json,
		.mode = c->member_name ? PW_POLICY_PROTECT : c->mode,
		.allowed_to_mutate = c->member_name ? true : c->allowed_to_mutate,
		.message = c->message,
		.timeout_seconds = o->disable_timeout ? -1 : c->timeout_seconds > 0 ? c->timeout_seconds
		                 : o->policy_timeout > 0 ? o->policy_timeout : 2,
		.host_capabilities = c->host_capabilities ? (const char *const *)c->host_capabilities : no_caps,
		.nhost_capabilities = c->nhost_capabilities,
		.context_aware = c->context_resources,
		.ncontext_aware = c->ncontext_resources,
		.host_env = o->host_env,
		.workers = o->workers ? o->workers : 1,
		.max_memory_bytes = o->instance_memory,
		.execution_mode = c->execution_mode,
	};
	int rc = pw_policy_new(&e->policy, &spec, e->module->artifact);
	if (rc < 0)
		e->policy = NULL;
	return rc;
}

/* The working state of one pw_pset_build. */
typedef struct {
	const pw_build_ctx *ctx;
	pw_pset *s;
	fetch_item *f;            /* distinct URLs */
	size_t nf;
	mod_item *mods;           /* distinct digests */
	size_t nm;
	size_t *ent_fetch;        /* entry -> its fetch item */
	settings_job_arg *sj;
	pw_pool *pool;
	pw_budget bud;
	double t_fetch, t_cache, t_load, t_pol, t_set;
} build;

/* Ends a phase begun at t0: its time into the metrics, returned for the summary line. */
static double phase_done(const build *b, const char *phase, double t0)
{
	double d = pw_now() - t0;
	pw_metrics_phase(b->ctx->metrics, phase, d);
	return d;
}

/* The set's entries: the top-level policies, then every group's members after them. */
static int lay_out_entries(build *b, pw_policies *conf)
{
	size_t n = conf->n;
	for (size_t i = 0; i < conf->n; i++)
		n += conf->items[i].nmembers;
	b->f = calloc(n + 1, sizeof *b->f);
	b->mods = calloc(n + 1, sizeof *b->mods);
	b->ent_fetch = calloc(n + 1, sizeof *b->ent_fetch);
	b->sj = calloc(n + 1, sizeof *b->sj);
	b->s = calloc(1, sizeof *b->s);
	if (!b->f || !b->mods || !b->ent_fetch || !b->sj || !b->s || !(b->s->e = calloc(n + 1, sizeof *b->s->e)))
		return pw_error_set(PW_ENOMEM, "out of memory building the policy set");
	pw_pset *s = b->s;
	atomic_init(&s->refs, 1);
	s->n = n;
	s->ntop = conf->n;
	for (size_t i = 0, k = conf->n; i < conf->n; i++) {
		pw_pset_entry *e = &s->e[i];
		e->conf = &conf->items[i];
		if (!e->conf->is_group)
			continue;
		e->group = true;
		e->first_member = k;
		e->nmembers = e->conf->nmembers;
		for (size_t j = 0; j < e->nmembers; j++)
			s->e[k++].conf = &e->conf->members[j];
	}
	return 0;
}

/* fetch: every distinct URL once (group members go through the same pipeline as policies). */
static void fetch_phase(build *b)
{
	pw_pset *s = b->s;
	for (size_t i = 0; i < s->n; i++) {
		size_t k;
		if (s->e[i].group)
			continue;
		for (k = 0; k < b->nf; k++)
			if (!strcmp(b->f[k].url, s->e[i].conf->module))
				break;
		if (k == b->nf)
			b->f[b->nf++].url = s->e[i].conf->module;
		b->ent_fetch[i] = k;
	}
	double t = pw_now();
	fetch_all(b->f, b->nf, b->ctx);
	b->t_fetch = phase_done(b, "fetch", t);
}

/* Distinct digests; what the previous set has loaded is reused. */
static void distinct_modules(build *b)
{
	for (size_t k = 0; k < b->nf; k++) {
		size_t j;
		if (b->f[k].error)
			continue;
		for (j = 0; j < b->nm; j++)
			if (!strcmp(b->mods[j].f->sha256, b->f[k].sha256))
				break;
		if (j == b->nm) {
			mod_item *m = &b->mods[b->nm++];
			m->f = &b->f[k];
			m->ctx = b->ctx;
			m->budget = &b->bud;
			if ((m->module = previous_module(b->ctx->previous, b->f[k].sha256))) {
				pw_module_ref(m->module);
				m->origin = PW_ORIGIN_REUSED;
			}
		}
		b->f[k].mod = &b->mods[j];
	}
}

/* cache lookup / compile, then load: a pool bounded by cores, compiles also by memory. */
static int cache_and_load_phases(build *b)
{
	const pw_server_opts *o = b->ctx->opts;
	unsigned jobs = o->compile_jobs ? o->compile_jobs : pw_cpu_count();
	uint64_t mem = pw_compile_memory(o->max_memory);
	int rc;
	b->bud.unlimited = mem == 0;
	b->bud.avail = mem;
	double t = pw_now();
	if ((rc = pw_pool_new(&b->pool, jobs, 0)) < 0)
		return rc;
	for (size_t j = 0; j < b->nm; j++)
		if (!b->mods[j].module)
			pw_pool_submit(b->pool, cache_job, &b->mods[j]);
	pw_pool_wait(b->pool);
	b->t_cache = phase_done(b, "cache", t);

	t = pw_now();
	for (size_t j = 0; j < b->nm; j++)
		if (!b->mods[j].module && !b->mods[j].error)
			pw_pool_submit(b->pool, load_job, &b->mods[j]);
	pw_pool_wait(b->pool);
	b->t_load = phase_done(b, "load", t);
	pw_metrics_reset_sources(b->ctx->metrics);
	for (size_t j = 0; j < b->nm; j++)
		if (b->mods[j].module)
			pw_metrics_source(b->ctx->metrics, pw_origin_name(b->mods[j].origin));
	return 0;
}

/* policies: one pw_policy per entry on its module; settings validated in parallel. */
static void policy_phases(build *b)
{
	pw_pset *s = b->s;
	double t = pw_now();
	for (size_t i = 0; i < s->n; i++) {
		pw_pset_entry *e = &s->e[i];
		fetch_item *fi = &b->f[b->ent_fetch[i]];
		if (e->group)
			continue;
		if (fi->error) {
			fail_entry(e, fi->stage ? fi->stage : "fetch", fi->error);
			continue;
		}
		if (fi->mod->error) {
			fail_entry(e, "module", fi->mod->error);
			continue;
		}
		e->module = fi->mod->module;
		pw_module_ref(e->module);
		e->origin = fi->mod->origin;
		if (entry_policy(e, b->ctx->opts) < 0)
			fail_entry(e, "policy", pw_error_last());
	}
	b->t_pol = phase_done(b, "policies", t);

	t = pw_now();
	for (size_t i = 0; i < s->n; i++) {
		if (!s->e[i].policy)
			continue;
		b->sj[i].e = &s->e[i];
		pw_pool_submit(b->pool, settings_job, &b->sj[i]);
	}
	pw_pool_wait(b->pool);
	b->t_set = phase_done(b, "settings", t);
}

/* A group is broken when one of its members is. */
static void mark_broken_groups(pw_pset *s)
{
	for (size_t i = 0; i < s->ntop; i++) {
		pw_pset_entry *g = &s->e[i];
		for (size_t j = 0; g->group && !g->error && j < g->nmembers; j++) {
			const pw_pset_entry *m = &s->e[g->first_member + j];
			if (m->error || !m->policy) {
				char buf[1600];
				snprintf(buf, sizeof buf, "policy group \"%s\": member %s: %s", g->conf->id, m->conf->member_name,
				         m->error ? m->error : "not loaded");
				g->error = strdup(buf);
				if (!g->error)
					g->error = strdup("out of memory");
			}
		}
	}
}

/* One log line per entry: its error, or where its code came from. Broken entries lose
 * their policy object here. */
static void log_entries(build *b)
{
	pw_pset *s = b->s;
	char tbuf[2][32];
	for (size_t i = 0; i < s->n; i++) {
		pw_pset_entry *e = &s->e[i];
		char comp[64 + PW_POLICY_ID_MAX];
		snprintf(comp, sizeof comp, "policy:%s", e->conf->id);
		if (e->error) {
			pw_policy_free(e->policy);
			e->policy = NULL;
			s->nfailed++;
			pw_err(comp, "%s", e->error);
			continue;
		}
		if (e->group) {
			pw_info(comp, "ready: policy group of %zu members, expression \"%s\", %s mode", e->nmembers,
			        e->conf->expression, e->conf->mode == PW_POLICY_MONITOR ? "monitor" : "protect");
			continue;
		}
		mod_item *m = b->f[b->ent_fetch[i]].mod;
		const char *tier = pw_engine_tier_name(m->module->tier), *note = tier_note(m->module, b->ctx);
		if (m->first_policy)
			pw_info(comp, "ready: module sha256:%.12s shared with policy %s (%s)", m->module->sha256,
			        m->first_policy, e->conf->module);
		else if (m->origin == PW_ORIGIN_COMPILED)
			pw_info(comp, "ready: module sha256:%.12s compiled in %s, %s tier%s (%s)", m->module->sha256,
			        pw_fmt_duration(m->compile_seconds, tbuf[0], sizeof tbuf[0]), tier, note, e->conf->module);
		else if (m->origin == PW_ORIGIN_REUSED)
			pw_info(comp, "ready: module sha256:%.12s reused (already loaded), %s tier%s (%s)", m->module->sha256,
			        tier, note, e->conf->module);
		else
			pw_info(comp, "ready: module sha256:%.12s %s hit in %s, loaded in %s, %s tier%s (%s)", m->module->sha256,
			        pw_origin_name(m->origin), pw_fmt_duration(m->seconds, tbuf[0], sizeof tbuf[0]),
			        pw_fmt_duration(m->load_seconds, tbuf[1], sizeof tbuf[1]), tier, note, e->conf->module);
		if (!m->first_policy)
			m->first_policy = e->conf->id;
	}
}

/* The set's summary line: counts by origin and tier, phase times. */
static void log_summary(const build *b, double t_start)
{
	unsigned nlocal = 0, nreg = 0, ncomp = 0, nreuse = 0, nquick = 0;
	char tbuf[5][32];
	for (size_t j = 0; j < b->nm; j++) {
		const mod_item *m = &b->mods[j];
		if (!m->module)
			continue;
		nquick += m->module->tier == PW_TIER_QUICK;
		switch (m->origin) {
		case PW_ORIGIN_COMPILED: ncomp++; break;
		case PW_ORIGIN_REUSED: nreuse++; break;
		case PW_ORIGIN_LOCAL: nlocal++; break;
		default: nreg++; break;
		}
	}
	double total = phase_done(b, "total", t_start);
	pw_info("server", "policy set built in %s: %zu policies (%zu failed), %zu modules "
	        "(%u local hits, %u registry hits, %u compiled, %u reused; %u on the quick tier); phases: fetch %s, "
	        "cache %s, load %s, policies+settings %s",
	        pw_fmt_duration(total, tbuf[0], sizeof tbuf[0]), b->s->n, b->s->nfailed, b->nm, nlocal, nreg, ncomp,
	        nreuse, nquick, pw_fmt_duration(b->t_fetch, tbuf[1], sizeof tbuf[1]),
	        pw_fmt_duration(b->t_cache, tbuf[2], sizeof tbuf[2]), pw_fmt_duration(b->t_load, tbuf[3], sizeof tbuf[3]),
	        pw_fmt_duration(b->t_pol + b->t_set, tbuf[4], sizeof tbuf[4]));
}

/* Frees the working state (not the set: entries hold their own module references). */
static void build_free(build *b)
{
	pw_pool_free(b->pool);
	for (size_t k = 0; k < b->nf; k++) {
		pw_buf_free(&b->f[k].wasm);
		free(b->f[k].error);
		free(b->f[k].pinned);
	}
	for (size_t j = 0; j < b->nm; j++) {
		pw_module_unref(b->mods[j].module);
		pw_buf_free(&b->mods[j].artifact);
		free(b->mods[j].error);
	}
	pw_budget_destroy(&b->bud);
	free(b->f);
	free(b->mods);
	free(b->ent_fetch);
	free(b->sj);
}

int pw_pset_build(pw_pset **out, pw_policies *conf, const pw_build_ctx *ctx)
{
	build b = { .ctx = ctx };
	double t_start = pw_now();
	int rc;

	*out = NULL;
	pw_budget_init(&b.bud, 0);
	if ((rc = lay_out_entries(&b, conf)) == 0) {
		fetch_phase(&b);
		distinct_modules(&b);
		rc = cache_and_load_phases(&b);
	}
	if (rc == 0) {
		policy_phases(&b);
		mark_broken_groups(b.s);
		log_entries(&b);
		log_summary(&b, t_start);
		for (size_t i = 0; b.s->nfailed && !ctx->opts->continue_on_errors && i < b.s->n; i++)
			if (b.s->e[i].error) {
				rc = pw_error_set(PW_EINVALID, "%s", b.s->e[i].error);
				break;
			}
	}
	build_free(&b);
	pw_pset *s = b.s;
	if (rc < 0 || !s) {
		if (s) {
			s->conf = NULL;  /* the caller keeps conf on failure */
			atomic_store(&s->refs, 1);
			pw_pset_unref(s);
		}
		return rc < 0 ? rc : PW_ENOMEM;
	}
	if (!(s->conf_refs = malloc(sizeof *s->conf_refs))) {
		s->conf = NULL;
		pw_pset_unref(s);
		return pw_error_set(PW_ENOMEM, "out of memory building the policy set");
	}
	atomic_init(s->conf_refs, 1);
	s->conf = conf;
	*out = s;
	return 0;
}

/* True when a tier-up to `up` moves entry `e` (a serving policy on up's module, another tier). */
static bool retier_moves(const pw_pset_entry *e, const pw_module *up)
{
	return e->module && e->policy && !strcmp(e->module->sha256, up->sha256) && e->module->tier != up->tier;
}

int pw_pset_retier(pw_pset **out, const pw_pset *cur, pw_module *up, const pw_server_opts *o, size_t *nswapped)
{
	pw_pset *s = calloc(1, sizeof *s);
	size_t moved = 0;
	int rc = 0;

	*out = NULL;
	*nswapped = 0;
	for (size_t i = 0; i < cur->n; i++)
		moved += retier_moves(&cur->e[i], up);
	if (!moved) {
		free(s);
		return 0;
	}
	if (!s || !(s->e = calloc(cur->n + 1, sizeof *s->e))) {
		free(s);
		return pw_error_set(PW_ENOMEM, "out of memory swapping in optimized code");
	}
	atomic_init(&s->refs, 1);
	s->n = cur->n;
	s->ntop = cur->ntop;
	s->nfailed = cur->nfailed;
	s->generation = cur->generation;
	for (size_t i = 0; i < cur->n && rc == 0; i++) {
		const pw_pset_entry *c = &cur->e[i];
		pw_pset_entry *e = &s->e[i];
		e->conf = c->conf;
		e->origin = c->origin;
		e->group = c->group;
		e->first_member = c->first_member;
		e->nmembers = c->nmembers;
		if (!c->policy) {
			e->error = c->error ? strdup(c->error) : NULL;
			continue;
		}
		bool swap = retier_moves(c, up);
		e->module = swap ? up : c->module;
		pw_module_ref(e->module);
		if ((rc = entry_policy(e, o)) < 0) {
			pw_error_prefix("policy \"%s\" on %s code", e->conf->id, pw_engine_tier_name(up->tier));
			break;
		}
		char *msg = NULL;
		if (swap && (rc = pw_policy_validate_settings(e->policy, 0, &msg)) < 0)
			pw_error_set(rc, "policy \"%s\": validate_settings on %s code: %s", e->conf->id,
			             pw_engine_tier_name(up->tier), msg && *msg ? msg : pw_error_last());
		free(msg);
	}
	if (rc < 0) {
		pw_pset_unref(s);   /* no conf_refs: the conf stays cur's */
		return rc;
	}
	s->conf = cur->conf;
	s->conf_refs = cur->conf_refs;
	atomic_fetch_add(s->conf_refs, 1);
	*nswapped = moved;
	*out = s;
	return 0;
}
