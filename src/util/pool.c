/*
 * A fixed-size thread pool with an unbounded FIFO queue, used for parallel
 * fetches and bounded parallel compiles. Threads may be given large stacks
 * (wasm code runs on them). Also two pthread helpers used by lone background threads
 * (the engine's deadline watchdog, DNS lookups of host calls).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prewarm/util.h"

typedef struct task {
	void (*fn)(void *);
	void *arg;
	struct task *next;
} task;

struct pw_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	task *head, *tail;
	unsigned nthreads, running;
	int stopping;
	pthread_t *threads;
};

static void *worker(void *p_)
{
	pw_pool *p = p_;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->head && p->stopping)
			break;
		task *t = p->head;
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&p->mu);
		p->running--;
		if (!p->head && p->running == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

unsigned pw_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int c = CPU_COUNT(&set);
		if (c > 0 && c < n)
			n = c;
	}
	return n > 0 ? (unsigned)n : 1;
}

uint64_t pw_mem_available(void)
{
	uint64_t avail = 0, limit = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			unsigned long long kb;
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
				avail = kb * 1024;
				break;
			}
		}
		fclose(f);
	}
	f = fopen("/sys/fs/cgroup/memory.max", "re");
	if (f) {
		unsigned long long v, cur = 0;
		if (fscanf(f, "%llu", &v) == 1)
			limit = v;
		fclose(f);
		f = fopen("/sys/fs/cgroup/memory.current", "re");
		if (f) {
			if (fscanf(f, "%llu", &cur) != 1)
				cur = 0;
			fclose(f);
		}
		if (limit && limit > cur && (avail == 0 || limit - cur < avail))
			avail = limit - cur;
	}
	return avail;
}

int pw_pool_new(pw_pool **out, unsigned threads, size_t stack_size)
{
	pw_pool *p = calloc(1, sizeof *p);
	pthread_attr_t attr;

	if (!p)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (threads == 0)
		threads = pw_cpu_count();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->threads = calloc(threads, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	pthread_attr_init(&attr);
	if (stack_size)
		pthread_attr_setstacksize(&attr, stack_size);
	for (unsigned i = 0; i < threads; i++) {
		int e = pthread_create(&p->threads[i], &attr, worker, p);
		if (e) {
			pthread_attr_destroy(&attr);
			p->nthreads = i;
			pw_pool_free(p);
			return pw_error_set(PW_ERROR, "pthread_create: %s", strerror(e));
		}
	}
	pthread_attr_destroy(&attr);
	p->nthreads = threads;
	*out = p;
	return 0;
}

int pw_pool_submit(pw_pool *p, void (*fn)(void *), void *arg)
{
	task *t = malloc(sizeof *t);
	if (!t)
		return pw_error_set(PW_ENOMEM, "out of memory");
	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void pw_pool_wait(pw_pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->head || p->running)
		pthread_cond_wait(&p->idle, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void pw_pool_free(pw_pool *p)
{
	if (!p)
		return;
	pw_pool_wait(p);
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	free(p->threads);
	free(p);
}

void pw_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

int pw_thread_start_detached(void *(*fn)(void *), void *arg)
{
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&th, &at, fn, arg);
	pthread_attr_destroy(&at);
	return e;
}
