/*
 * The Policy Server object: owns the listeners, the metrics and the current policy set,
 * and swaps sets atomically on reload.
 *
 * `current` is read under a mutex only long enough to take a reference, so a request
 * evaluates on the set that was current when it arrived even if a reload swaps it
 * meanwhile; the old set is freed by its last user. Reloads are serialised (one at a
 * time) and build the new set beside the old one, reusing its loaded modules by digest; a
 * new set with a broken policy is refused and the old one keeps serving.
 *
 * With a quick engine, every module a (re)build served from quick code is submitted to the
 * tier-up threads (tierup.c); when its optimized module is loaded, swap_optimized builds a
 * copy of the current set on it (pw_pset_retier) under the reload lock and swaps it in the
 * same way: requests in flight finish on the quick code, which is unloaded with the last
 * set that uses it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prewarm/oci.h"
#include "server/server_int.h"

struct pw_server {
	pw_server_opts opts;
	pw_metrics *metrics;
	pw_http *http;
	pthread_mutex_t mu;           /* guards current */
	pthread_mutex_t reload_mu;    /* one build at a time */
	pw_pset *current;
	atomic_bool ready;
	unsigned generation;
	char *download_dir;
	bool own_download_dir;
	struct stat conf_st;          /* policies.yml as last loaded */
	bool have_conf_st;
	pw_tierup *tierup;            /* NULL without a quick tier or an optimizing compiler */
};

pw_pset *pw_server__acquire(pw_server *s)
{
	pthread_mutex_lock(&s->mu);
	pw_pset *p = s->current;
	pw_pset_ref(p);
	pthread_mutex_unlock(&s->mu);
	return p;
}

bool pw_server__ready(pw_server *s) { return atomic_load(&s->ready); }
pw_metrics *pw_server__metrics(pw_server *s) { return s->metrics; }
const pw_server_opts *pw_server__opts(pw_server *s) { return &s->opts; }

int pw_server__render_metrics(pw_server *s, pw_buf *out)
{
	pw_cache_stats cs;
	pw_pset *p = pw_server__acquire(s);
	memset(&cs, 0, sizeof cs);
	if (s->opts.cache)
		pw_cache_get_stats(s->opts.cache, &cs);
	int rc = pw_metrics_render(s->metrics, out, s->opts.cache ? &cs : NULL, p, pw_server__ready(s));
	pw_pset_unref(p);
	return rc;
}

static void swap_in(pw_server *s, pw_pset *set);

/* tier-up (a compiler thread): the optimized module of `quick` is loaded; swap it in. */
static void swap_optimized(void *arg, pw_module *up, const pw_module *quick, double compile_seconds)
{
	pw_server *s = arg;
	pw_pset *set = NULL;
	size_t moved = 0;
	char tb[2][32];

	pthread_mutex_lock(&s->reload_mu);
	pw_pset *cur = pw_server__acquire(s);
	int rc = cur ? pw_pset_retier(&set, cur, up, &s->opts, &moved) : 0;
	if (rc < 0) {
		pw_err("server", "tier-up of module sha256:%.12s refused, the quick code keeps serving: %s", up->sha256,
		       pw_error_last());
		pw_metrics_tier_up(s->metrics, false);
	} else if (moved) {
		for (size_t i = 0; i < set->n; i++) {
			char comp[64 + PW_POLICY_ID_MAX];
			if (set->e[i].module != up)
				continue;
			snprintf(comp, sizeof comp, "policy:%s", set->e[i].conf->id);
			pw_info(comp, "tier-up: now on optimized code (module sha256:%.12s; %s, %s on quick code)",
			        up->sha256, compile_seconds > 0 ? pw_fmt_duration(compile_seconds, tb[0], sizeof tb[0]) : "cache hit",
			        pw_fmt_duration(pw_now() - quick->quick_since, tb[1], sizeof tb[1]));
		}
		swap_in(s, set);
		pw_metrics_tier_up(s->metrics, true);
	} else {
		pw_info("server", "optimized module sha256:%.12s is no longer used by any policy", up->sha256);
	}
	pw_pset_unref(cur);
	pthread_mutex_unlock(&s->reload_mu);
}

/* Submits every quick module of the current set to the tier-up threads. */
static void submit_quick(pw_server *s, const pw_pset *set)
{
	for (size_t i = 0; s->tierup && set && i < set->n; i++)
		if (set->e[i].module && set->e[i].module->tier == PW_TIER_QUICK)
			pw_tierup_submit(s->tierup, set->e[i].module);
}

int pw_server_new(pw_server **out, const pw_server_opts *opts)
{
	pw_server *s;
	int rc;

	*out = NULL;
	if (!opts->policies_path)
		return pw_error_set(PW_EINVALID, "no policies file (--policies)");
	if (!opts->engine)
		return pw_error_set(PW_EINVALID, "pw_server_new: no engine");
	if (!(s = calloc(1, sizeof *s)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	s->opts = *opts;
	if (!s->opts.workers)
		s->opts.workers = pw_cpu_count();
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->reload_mu, NULL);
	atomic_init(&s->ready, false);
	if (opts->download_dir) {
		if ((rc = pw_mkdirs(opts->download_dir, 0755)) < 0) {
			pw_error_prefix("--policies-download-dir");
			goto fail;
		}
		s->download_dir = strdup(opts->download_dir);
	} else {
		if ((rc = pw_mkdtemp(&s->download_dir, "prewarm-policies")) < 0)
			goto fail;
		s->own_download_dir = true;
	}
	if ((rc = pw_metrics_new(&s->metrics)) < 0 || (rc = pw_http_start(&s->http, s)) < 0)
		goto fail;
	if (opts->quick_engine && pw_engine_can_compile(opts->engine)) {
		pw_tierup_opts to = {
			.engine = opts->engine,
			.cache = opts->cache,
			.metrics = s->metrics,
			.jobs = opts->tierup_jobs,
			.nice = opts->tierup_nice == 0 ? 10 : opts->tierup_nice < 0 ? 0 : opts->tierup_nice,
			.max_memory = opts->max_memory,
			.swap = swap_optimized,
			.arg = s,
		};
		if ((rc = pw_tierup_new(&s->tierup, &to)) < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	pw_server_free(s);
	return rc;
}

static int build(pw_server *s, pw_pset **out)
{
	pw_policies *conf = NULL;
	struct stat st;
	bool have_st = stat(s->opts.policies_path, &st) == 0;
	int rc;

	if ((rc = pw_policies_load(&conf, s->opts.policies_path)) < 0)
		return rc;
	pw_pset *prev = pw_server__acquire(s);
	pw_build_ctx ctx = {
		.opts = &s->opts,
		.engine = s->opts.engine,
		.cache = s->opts.cache,
		.quick = s->opts.quick_engine,
		.oci = s->opts.oci,
		.metrics = s->metrics,
		.previous = prev,
		.download_dir = s->download_dir,
	};
	rc = pw_pset_build(out, conf, &ctx);
	pw_pset_unref(prev);
	if (rc < 0) {
		pw_policies_free(conf);
		return rc;
	}
	(*out)->generation = ++s->generation;
	if (have_st) {
		s->conf_st = st;
		s->have_conf_st = true;
	}
	return 0;
}

static void swap_in(pw_server *s, pw_pset *set)
{
	pthread_mutex_lock(&s->mu);
	pw_pset *old = s->current;
	s->current = set;
	pthread_mutex_unlock(&s->mu);
	pw_pset_unref(old);   /* freed now, or by the last request still using it */
}

int pw_server_start(pw_server *s)
{
	pw_pset *set = NULL;
	int rc;

	pthread_mutex_lock(&s->reload_mu);
	rc = build(s, &set);
	if (rc == 0) {
		swap_in(s, set);
		atomic_store(&s->ready, true);
		pw_info("server", "ready: %zu policies served%s", set->n - set->nfailed,
		        set->nfailed ? " (some broken: they answer 500)" : "");
		submit_quick(s, set);
	}
	pthread_mutex_unlock(&s->reload_mu);
	return rc;
}

int pw_server_reload(pw_server *s)
{
	pw_pset *set = NULL;
	int rc;

	pthread_mutex_lock(&s->reload_mu);
	pw_info("server", "reloading %s", s->opts.policies_path);
	rc = build(s, &set);
	if (rc < 0) {
		struct stat st;
		/* do not retry the same broken file on every poll */
		if (stat(s->opts.policies_path, &st) == 0) {
			s->conf_st = st;
			s->have_conf_st = true;
		}
		pw_err("server", "reload refused, the previous policies keep serving: %s", pw_error_last());
		pw_metrics_reload(s->metrics, false);
	} else {
		swap_in(s, set);
		atomic_store(&s->ready, true);
		pw_metrics_reload(s->metrics, true);
		pw_info("server", "reload done: generation %u, %zu policies", set->generation, set->n);
		submit_quick(s, set);
	}
	pthread_mutex_unlock(&s->reload_mu);
	return rc;
}

bool pw_server_policies_changed(pw_server *s)
{
	struct stat st;
	if (stat(s->opts.policies_path, &st) != 0)
		return false;   /* a missing file (mid-update of a ConfigMap) is not a change yet */
	if (!s->have_conf_st)
		return true;
	return st.st_ino != s->conf_st.st_ino || st.st_size != s->conf_st.st_size ||
	       st.st_mtim.tv_sec != s->conf_st.st_mtim.tv_sec || st.st_mtim.tv_nsec != s->conf_st.st_mtim.tv_nsec;
}

void pw_server_shutdown(pw_server *s, double drain)
{
	if (!s)
		return;
	pw_tierup_cancel(s->tierup, 2);   /* no compiler outlives a shutdown, even an _exit one */
	if (!s->http)
		return;
	atomic_store(&s->ready, false);
	pw_info("server", "shutting down: finishing requests in flight");
	pw_http_stop(s->http, drain);
	s->http = NULL;
}

void pw_server_free(pw_server *s)
{
	if (!s)
		return;
	pw_server_shutdown(s, 0);
	pw_tierup_free(s->tierup);   /* kills a running compiler; before the sets go */
	swap_in(s, NULL);
	pw_metrics_free(s->metrics);
	if (s->own_download_dir && s->download_dir)
		pw_rmtree(s->download_dir);
	free(s->download_dir);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->reload_mu);
	free(s);
}

