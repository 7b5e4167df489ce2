/*
 * Tier-up: the background optimized compiles of modules that serve on quick code.
 *
 * A module that no cache tier holds as optimized code starts on the quick tier (tcc: a
 * fraction of a second) so that its policy is enforced at once; the server then submits it
 * here. A few compiler threads (default one) run at a lower CPU priority (their niceness is
 * raised once; Linux keeps niceness per thread and children inherit it, so gcc runs below
 * the threads that answer admission requests) inside a memory budget. Each job looks the
 * optimized key up first (a peer may have published it meanwhile), else compiles and
 * publishes it to every cache tier, loads it, and hands the loaded module to the server,
 * which swaps it in between requests (pw_pset_retier). A digest is compiled at most once per
 * run, whatever the number of reloads that reuse its quick module. Shutdown kills a running
 * compiler (the compile's cancel flag) and joins the threads: nothing is published half-way,
 * because the cache writes whole entries only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"

typedef struct job {
	struct job *next;
	pw_module *quick;
} job;

/* A digest seen this run (queued, running or done): never compiled twice. */
typedef struct seen {
	struct seen *next;
	char sha256[PW_SHA256_HEX_LEN + 1];
} seen;

struct pw_tierup {
	pw_tierup_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, **tail;
	seen *seen;
	atomic_int stop;
	unsigned running;             /* jobs in run_job now */
	unsigned nthreads;
	pthread_t *threads;
	pw_budget budget;
};

/* One job: the optimized artifact (cache or compile), loaded, then handed to the server. */
static void run_job(pw_tierup *t, pw_module *q)
{
	pw_cache_key key;
	pw_cache_result res = { .tier = -1 };
	pw_buf art = PW_BUF_INIT;
	pw_module_build_arg b = { t->o.engine, q->wasm.data, q->wasm.len, &t->stop };
	double seconds = 0;
	char comp[32], tb[2][32];
	int rc;

	snprintf(comp, sizeof comp, "tier-up:%.12s", q->sha256);
	pw_info(comp, "optimized compile started (%zu bytes of wasm; quick code serves meanwhile)", q->wasm.len);
	uint64_t got = pw_budget_acquire(&t->budget, pw_compile_estimate(q->wasm.len));
	if (t->o.cache) {
		pw_cache_key_for(&key, t->o.engine, q->wasm.data, q->wasm.len);
		pw_cache_build_opts bo = { q->subject.subject_digest[0] ? &q->subject : NULL,
		                           pw_engine_compile_seconds_estimate(t->o.engine, q->wasm.len) };
		rc = pw_cache_get_or_build(t->o.cache, &key, pw_module_build, &b, &bo, &art, &res);
		seconds = res.compile_seconds;
	} else {
		rc = pw_module_build(&b, &art, &seconds);
	}
	pw_budget_release(&t->budget, got);
	if (rc == PW_ECANCELED || t->stop) {
		pw_info(comp, "canceled (shutting down)");
		pw_buf_free(&art);
		return;
	}
	if (rc == 0 && res.tier < 0)
		pw_metrics_compile(t->o.metrics, PW_TIER_OPTIMIZED, seconds);

	pw_module *m = NULL;
	if (rc == 0)
		rc = pw_module_load(&m, t->o.engine, q->sha256, art.data, art.len);
	pw_buf_free(&art);
	if (rc < 0) {
		pw_err(comp, "optimized compile failed, the quick code keeps serving: %s", pw_error_last());
		pw_metrics_tier_up(t->o.metrics, false);
		return;
	}
	pw_info(comp, "optimized code ready: %s %s, %s after the quick code started serving",
	        res.tier >= 0 ? "cache hit in" : "compiled in",
	        res.tier >= 0 ? res.tier_name : pw_fmt_duration(seconds, tb[0], sizeof tb[0]),
	        pw_fmt_duration(pw_now() - q->quick_since, tb[1], sizeof tb[1]));
	t->o.swap(t->o.arg, m, q, seconds);
	pw_module_unref(m);
}

static void *worker(void *arg)
{
	pw_tierup *t = arg;
	/* below the request threads; children (wasm2c, gcc) inherit it */
	if (t->o.nice > 0) {
		errno = 0;
		int cur = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
		if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), cur + t->o.nice) != 0)
			pw_debug("tier-up", "setpriority: %s", strerror(errno));
	}
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->head && !t->stop)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->stop)
			break;
		job *j = t->head;
		t->head = j->next;
		if (!t->head)
			t->tail = &t->head;
		t->running++;
		pthread_mutex_unlock(&t->mu);
		run_job(t, j->quick);
		pw_module_unref(j->quick);
		free(j);
		pthread_mutex_lock(&t->mu);
		t->running--;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int pw_tierup_new(pw_tierup **out, const pw_tierup_opts *o)
{
	pw_tierup *t = calloc(1, sizeof *t);
	*out = NULL;
	if (!t)
		return pw_error_set(PW_ENOMEM, "out of memory");
	t->o = *o;
	t->tail = &t->head;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	pw_budget_init(&t->budget, pw_compile_memory(o->max_memory));
	unsigned n = o->jobs ? o->jobs : 1;
	if (!(t->threads = calloc(n, sizeof *t->threads))) {
		pw_tierup_free(t);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	for (; t->nthreads < n; t->nthreads++)
		if (pthread_create(&t->threads[t->nthreads], NULL, worker, t) != 0) {
			pw_tierup_free(t);
			return pw_error_set(PW_ERROR, "tier-up: cannot start a compiler thread");
		}
	*out = t;
	return 0;
}

void pw_tierup_submit(pw_tierup *t, pw_module *m)
{
	if (!t || !m || m->tier != PW_TIER_QUICK || !m->wasm.len)
		return;
	pthread_mutex_lock(&t->mu);
	for (seen *s = t->seen; s; s = s->next)
		if (!strcmp(s->sha256, m->sha256)) {
			pthread_mutex_unlock(&t->mu);
			return;
		}
	seen *s = calloc(1, sizeof *s);
	job *j = calloc(1, sizeof *j);
	if (!s || !j || t->stop) {
		pthread_mutex_unlock(&t->mu);
		free(s);
		free(j);
		return;
	}
	memcpy(s->sha256, m->sha256, sizeof s->sha256);
	s->next = t->seen;
	t->seen = s;
	pw_module_ref(m);
	j->quick = m;
	*t->tail = j;
	t->tail = &j->next;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

void pw_tierup_cancel(pw_tierup *t, double max_wait)
{
	if (!t)
		return;
	struct timespec until = pw_deadline_after(CLOCK_REALTIME, max_wait);
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_broadcast(&t->cv);
	while (t->running > 0 && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
		;
	pthread_mutex_unlock(&t->mu);
}

void pw_tierup_free(pw_tierup *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	for (unsigned i = 0; i < t->nthreads; i++)
		pthread_join(t->threads[i], NULL);
	free(t->threads);
	while (t->head) {
		job *j = t->head;
		t->head = j->next;
		pw_module_unref(j->quick);
		free(j);
	}
	while (t->seen) {
		seen *s = t->seen;
		t->seen = s->next;
		free(s);
	}
	pw_budget_destroy(&t->budget);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
