/*
 * The registry-facing `prewarm cache` subcommands (dispatched from cmd_cache.c):
 *   warm POLICIES.yml         pw_cmd_cache_warm
 *   push KEY-or-MODULE...     pw_cmd_cache_push: local entry -> registry (verified first)
 *   pull KEY-or-MODULE...     pw_cmd_cache_pull: registry entry -> local (verified first)
 *   ls --registry             pw_cmd_cache_ls_registry
 *
 * `prewarm cache warm policies.yml`: run before a rollout (a Job, a Helm hook) so that even
 * the first pod of a new version starts warm. Fetches every module of a policies.yml (in
 * parallel, with the same OCI client as the server) and makes sure the REGISTRY holds each
 * one's artifact: HEAD in the registry; when missing, a verified entry of the local
 * directory is pushed, else the module is compiled into the local directory and pushed
 * (bounded parallelism). One line per module says which; exit 1 when a module cannot be
 * fetched or compiled, or when the registry cannot be reached or written (the Job must not
 * look green when nothing was published).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"
#include "prewarm/policy.h"
#include "prewarm/server.h"


/* The numbers of these commands, named once. */
#define WARM_FETCH_JOBS   4            /* parallel downloads without --jobs */
#define WARM_MAX_JOBS     256          /* the largest --jobs */
#define WARM_STACK_SIZE   (8u << 20)   /* a worker's stack: compiles run on it */
#define REGISTRY_TIMEOUT  120          /* seconds a registry request may take */
#define MODULE_MAX_BYTES  (1u << 30)   /* the largest module file push/pull read to key */
#define PATH_LEN          4096         /* a downloaded module's path */
#define STATS_PATH_LEN    4200         /* the cache directory's stats path */
#define MSG_LEN           600          /* why a module failed */
#define FMT_LEN           32           /* a pw_fmt_bytes / pw_fmt_duration result */

#define POLICIES_EQ       "--policies="
#define POLICIES_EQ_LEN   (sizeof POLICIES_EQ - 1)

static void warm_usage(FILE *f)
{
	fprintf(f, "usage: prewarm cache warm POLICIES.yml | --policies POLICIES.yml [cache options]\n"
	           "                          [--docker-config-json-path DIR] [--sources-path FILE]\n"
	           "                          [--download-dir DIR] [--jobs N]\n\n"
	           "Fetches every policy module of POLICIES.yml and makes sure the registry tier\n"
	           "(--cache-registry) holds its artifact: an entry already there is left alone, an\n"
	           "entry of the local directory is pushed, anything else is compiled (into the local\n"
	           "directory) and pushed. One line per module says which. Exit 1 when a module cannot\n"
	           "be fetched or compiled, or when the registry cannot be reached or written.\n"
	           "Without --cache-registry only the local directory is filled.\n\n%s",
	        pw_cache_cli_help);
}

/* The options of one registry tier, as the cache options give them. */
static pw_registry_cache_opts registry_opts(const pw_cache_cli_opts *co)
{
	pw_registry_cache_opts ro = {
		.repository = co->registry, .credentials = co->registry_credentials, .ca_file = co->registry_ca,
		.insecure = co->registry_insecure, .timeout = REGISTRY_TIMEOUT,
	};
	return ro;
}

/* What happened to one module. */
typedef enum warm_outcome {
	W_NONE = 0,
	W_FAILED,           /* compile (or local read-back) failed */
	W_REG_FAILED,       /* the registry could not be reached or written */
	W_IN_REGISTRY,      /* the registry already held it */
	W_PUSHED_LOCAL,     /* pushed from the local directory */
	W_COMPILED_PUSHED,  /* compiled, then pushed */
	W_IN_LOCAL,         /* no registry: the local directory held it */
	W_COMPILED,         /* no registry: compiled into the local directory */
	W_NOUTCOMES
} warm_outcome;

typedef struct warm_item {
	const char *id;
	const char *module;
	char path[PATH_LEN];
	pw_buf wasm;
	int rc;
	warm_outcome out;
	char msg[MSG_LEN];
	bool dup;                 /* same module as an earlier item */
} warm_item;

typedef struct warm_ctx {
	pw_cache *cache;          /* the local tier only: compiles land there */
	pw_cache_backend *local;  /* borrowed from cache */
	pw_cache_backend *reg;    /* owned; NULL without --cache-registry */
	const char *reg_name;     /* --cache-registry as given */
	pw_engine *engine;
	size_t n, done;
	bool reg_broken;          /* a registry call failed: skip it for the rest of the run */
	pthread_mutex_t mu;
	bool tty;
} warm_ctx;

typedef struct warm_task {
	warm_ctx *ctx;
	warm_item *it;
} warm_task;

static void report(warm_ctx *w, warm_item *it, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(warm_ctx *w, warm_item *it, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&w->mu);
	if (w->tty)
		printf("[%zu/%zu] ", w->done, w->n);
	printf("%s: ", it->id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&w->mu);
}

static bool reg_broken(warm_ctx *w)
{
	pthread_mutex_lock(&w->mu);
	bool b = w->reg_broken;
	pthread_mutex_unlock(&w->mu);
	return b;
}

/* A registry call failed: the module fails, the registry is not used again (the first
 * failure is also said on stderr, naming the registry). */
static void reg_fail(warm_ctx *w, warm_item *it, const char *what, const char *ks)
{
	bool first;
	snprintf(it->msg, sizeof it->msg, "%s", pw_error_last());
	pthread_mutex_lock(&w->mu);
	first = !w->reg_broken;
	w->reg_broken = true;
	pthread_mutex_unlock(&w->mu);
	if (first)
		fprintf(stderr, "prewarm cache warm: registry %s: %s %s failed: %s\n", w->reg_name, what, ks, it->msg);
	it->rc = PW_EIO;
	it->out = W_REG_FAILED;
	report(w, it, "registry %s FAILED (%s): %s", w->reg_name, what, it->msg);
}

/* The module failed with RC and the last error; reported as "WHAT: error". */
static void item_fail(warm_ctx *w, warm_item *it, int rc, const char *what)
{
	it->rc = rc;
	it->out = W_FAILED;
	snprintf(it->msg, sizeof it->msg, "%s", pw_error_last());
	report(w, it, "%s: %s", what, it->msg);
}

/* Reads the local entry of `k` and verifies it; 0, or a negative code (entry freed). */
static int local_entry(warm_ctx *w, const pw_cache_key *k, pw_cache_entry *ent)
{
	memset(ent, 0, sizeof *ent);
	int rc = pw_cache_backend_get(w->local, k, ent);
	if (rc == 0)
		rc = pw_cache_verify_entry_for(w->cache, k, ent);
	if (rc < 0)
		pw_cache_entry_free(ent);
	return rc;
}

/* Step 1: does the registry already hold the module? 1 when the module is done
 * (held, or the registry failed), 0 to go on. */
static int warm_check_registry(warm_ctx *w, warm_item *it, const pw_cache_key *k, const char *ks)
{
	if (reg_broken(w)) {
		it->rc = PW_EIO;
		it->out = W_REG_FAILED;
		snprintf(it->msg, sizeof it->msg, "skipped: the registry failed");
		report(w, it, "registry %s FAILED earlier: skipped", w->reg_name);
		return 1;
	}
	int rc = pw_cache_backend_exists(w->reg, k);
	if (rc == 0) {
		it->out = W_IN_REGISTRY;
		report(w, it, "already in the registry (%s)", ks);
		return 1;
	}
	if (rc != PW_ENOTFOUND) {
		reg_fail(w, it, "checking", ks);
		return 1;
	}
	return 0;
}

/* Compiles the module into the local directory (or finds it there after all); its cost
 * in *seconds, and whether it was compiled here. 0, or a negative code (reported). */
static int warm_compile(warm_ctx *w, warm_item *it, bool *compiled, double *seconds)
{
	pw_buf art = PW_BUF_INIT;
	pw_cache_result res;
	int rc = pw_cache_get_or_compile(w->cache, w->engine, it->wasm.data, it->wasm.len, pw_policy_host_imports(),
	                                 NULL, &art, &res);
	pw_buf_free(&art);
	if (rc < 0) {
		item_fail(w, it, rc, "compile FAILED");
		return rc;
	}
	*compiled = res.tier < 0;
	*seconds = res.compile_seconds;
	return 0;
}

/* Step 2: a verified local entry of the module in ENT, compiled into the local directory
 * when there is none. 1 when the module is done (no registry to push to, or it failed),
 * 0 with ENT to push. */
static int warm_local(warm_ctx *w, warm_item *it, const pw_cache_key *k, const char *ks, pw_cache_entry *ent,
                      bool *compiled, double *seconds)
{
	char dur[FMT_LEN], what[MSG_LEN];
	int rc = local_entry(w, k, ent);

	if (rc == 0) {
		if (w->reg)
			return 0;
		it->out = W_IN_LOCAL;
		pw_cache_entry_free(ent);
		report(w, it, "already in the local directory");
		return 1;
	}
	if (rc != PW_ENOTFOUND)
		pw_warn("cache", "local entry %s unusable (%s): compiling", ks, pw_error_last());
	if (warm_compile(w, it, compiled, seconds) < 0)
		return 1;
	if (!w->reg) {
		it->out = *compiled ? W_COMPILED : W_IN_LOCAL;
		if (*compiled)
			report(w, it, "compiled in %s into the local directory", pw_fmt_duration(*seconds, dur, sizeof dur));
		else
			report(w, it, "already in the local directory");
		return 1;
	}
	if ((rc = local_entry(w, k, ent)) < 0) {
		snprintf(what, sizeof what, "FAILED reading the local entry %s back", ks);
		item_fail(w, it, rc, what);
		return 1;
	}
	return 0;
}

/* Step 3: pushes ENT (freed) to the registry. */
static void warm_push(warm_ctx *w, warm_item *it, const char *ks, pw_cache_entry *ent, bool compiled,
                      double seconds)
{
	char dur[FMT_LEN], sz[FMT_LEN];

	if (pw_cache_backend_put(w->reg, ent) < 0) {
		pw_cache_entry_free(ent);
		reg_fail(w, it, "pushing", ks);
		return;
	}
	it->out = compiled ? W_COMPILED_PUSHED : W_PUSHED_LOCAL;
	if (compiled)
		report(w, it, "compiled in %s, pushed to the registry (%s)", pw_fmt_duration(seconds, dur, sizeof dur),
		       pw_fmt_bytes(ent->artifact.len, sz, sizeof sz));
	else
		report(w, it, "pushed from the local directory to the registry (%s)",
		       pw_fmt_bytes(ent->artifact.len, sz, sizeof sz));
	pw_cache_entry_free(ent);
}

/* One module, on a pool thread: registry check, local entry or compile, push. */
static void warm_one(void *arg)
{
	warm_task *t = arg;
	warm_ctx *w = t->ctx;
	warm_item *it = t->it;
	pw_cache_key k;
	pw_cache_entry ent;
	char ks[PW_CACHE_KEY_STR_LEN + 1];
	bool compiled = false;
	double seconds = 0;

	memcpy(k.engine_hash, pw_engine_hash(w->engine), sizeof k.engine_hash);
	pw_sha256_hex(it->wasm.data, it->wasm.len, k.wasm_sha256);
	pw_cache_key_str(&k, ks);
	pthread_mutex_lock(&w->mu);
	w->done++;
	pthread_mutex_unlock(&w->mu);

	if (w->reg && warm_check_registry(w, it, &k, ks))
		return;
	if (warm_local(w, it, &k, ks, &ent, &compiled, &seconds))
		return;
	warm_push(w, it, ks, &ent, compiled, seconds);
}

/* ---- the warm command: options, fetches, the pool, the summary ------------------------ */

typedef struct warm_args {
	pw_cache_cli_opts co;
	const char *policies;     /* POLICIES.yml */
	const char *docker, *sources, *download;
	unsigned jobs;            /* 0: not given */
	const char *dir;          /* the local cache directory */
} warm_args;

/* Everything one run holds; freed by warm_run_free. */
typedef struct warm_run {
	warm_args *a;
	pw_policies *pol;
	pw_oci_client *oci;
	char *tmpdir;             /* the download directory when --download-dir is not given */
	const char *download;
	warm_item *items;         /* one per policy */
	pw_oci_pull_job *pj;      /* one per distinct module */
	size_t nj;
	int fetch_failed;
	pw_engine *engine;
	pw_cache *cache;
	pw_cache_backend *local;  /* borrowed from cache */
	pw_cache_backend *regb;
	bool reg_broken;
} warm_run;

/* --jobs N into *jobs; -1 (said on stderr) unless N is a number from 1 to WARM_MAX_JOBS. */
static int parse_jobs(const char *v, unsigned *jobs)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < 1 || n > WARM_MAX_JOBS) {
		fprintf(stderr, "prewarm cache warm: --jobs needs a number from 1 to %d\n", WARM_MAX_JOBS);
		return -1;
	}
	*jobs = (unsigned)n;
	return 0;
}

/* The command line's words into A; -1 to go on, else the exit code (usage or error said). */
static int parse_warm_argv(warm_args *a, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int p = pw_cache_cli_parse(&a->co, argc, argv, &i);
		const char *o = argv[i];
		if (p < 0)
			return 2;
		if (p > 0)
			continue;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			warm_usage(stdout);
			return 0;
		}
		if (!strncmp(o, POLICIES_EQ, POLICIES_EQ_LEN) || !strcmp(o, "--policies")) {
			const char *v = o[POLICIES_EQ_LEN - 1] == '=' ? o + POLICIES_EQ_LEN :
			                (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !*v || a->policies) {
				fprintf(stderr, "prewarm cache warm: %s\n",
				        a->policies ? "give the policies file once" : "--policies needs a value");
				return 2;
			}
			a->policies = v;
			continue;
		}
		const char **dst = !strcmp(o, "--docker-config-json-path") ? &a->docker :
		                   !strcmp(o, "--sources-path") ? &a->sources :
		                   !strcmp(o, "--download-dir") ? &a->download : NULL;
		if (dst || !strcmp(o, "--jobs")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "prewarm cache warm: %s needs a value\n", o);
				return 2;
			}
			if (dst)
				*dst = argv[++i];
			else if (parse_jobs(argv[++i], &a->jobs) < 0)
				return 2;
			continue;
		}
		if (o[0] == '-' || a->policies) {
			fprintf(stderr, "prewarm cache warm: unexpected argument '%s'\n", o);
			warm_usage(stderr);
			return 2;
		}
		a->policies = o;
	}
	return -1;
}

/* The command line into A, checked against what warm can do; -1 to go on, else the exit
 * code (usage or error said). */
static int parse_warm_args(warm_args *a, int argc, char **argv)
{
	int ex = parse_warm_argv(a, argc, argv);
	if (ex >= 0)
		return ex;
	if (!a->policies) {
		warm_usage(stderr);
		return 2;
	}
	if (a->co.no_cache) {
		fprintf(stderr, "prewarm cache warm: --no-cache makes no sense here\n");
		return 2;
	}
	if (!a->co.registry)
		fprintf(stderr, "prewarm cache warm: no --cache-registry: filling the local directory only\n");
	if (a->co.registry_read_only) {
		fprintf(stderr, "prewarm cache warm: --cache-registry-read-only: nothing would be published\n");
		return 2;
	}
	if (!(a->dir = pw_cache_cli_dir(&a->co))) {
		fprintf(stderr, "prewarm cache warm: no local cache directory (no $HOME): give --cache-dir\n");
		return 2;
	}
	return -1;
}

/* Loads the policies file and, for each distinct module, plans its download into the
 * download directory (made, or a fresh temporary one). */
static int load_policies(warm_run *r)
{
	const warm_args *a = r->a;

	if (pw_policies_load(&r->pol, a->policies) < 0 ||
	    pw_oci_client_from_paths(&r->oci, a->docker, a->sources, NULL) < 0)
		return -1;
	if (!a->download) {
		if (pw_mkdtemp(&r->tmpdir, "prewarm-warm") < 0)
			return -1;
		r->download = r->tmpdir;
	} else if (pw_mkdirs(a->download, 0755) < 0) {
		return -1;
	} else {
		r->download = a->download;
	}
	r->items = calloc(r->pol->n + 1, sizeof *r->items);
	r->pj = calloc(r->pol->n + 1, sizeof *r->pj);
	if (!r->items || !r->pj)
		return pw_error_set(PW_ENOMEM, "out of memory");
	for (size_t i = 0; i < r->pol->n; i++) {
		warm_item *it = &r->items[i];
		char h[PW_SHA256_HEX_LEN + 1];
		it->id = r->pol->items[i].id;
		it->module = r->pol->items[i].module;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(r->items[j].module, it->module))
				it->dup = true;
		if (it->dup)
			continue;
		pw_sha256_hex(it->module, strlen(it->module), h);
		snprintf(it->path, sizeof it->path, "%s/%.32s.wasm", r->download, h);
		r->pj[r->nj].ref = it->module;
		r->pj[r->nj].dest = it->path;
		r->nj++;
	}
	return 0;
}

/* Downloads every distinct module in parallel and reads it; one line per module. A module
 * that cannot be fetched or read is counted in fetch_failed (and has a negative rc). */
static void fetch_modules(warm_run *r)
{
	char b1[FMT_LEN], b2[FMT_LEN];
	double t0 = pw_now();

	pw_oci_pull_many(r->oci, r->pj, r->nj, r->a->jobs ? r->a->jobs : WARM_FETCH_JOBS);
	for (size_t i = 0, k = 0; i < r->pol->n; i++) {
		warm_item *it = &r->items[i];
		if (it->dup)
			continue;
		pw_oci_pull_job *j = &r->pj[k++];
		if (j->rc < 0) {
			printf("%s: fetch FAILED: %s\n", it->id, j->error);
			r->fetch_failed++;
			it->rc = j->rc;
			continue;
		}
		printf("%s: fetched %s (%s, %s)\n", it->id, it->module, pw_fmt_bytes(j->result.size, b1, sizeof b1),
		       pw_fmt_duration(j->seconds, b2, sizeof b2));
		if (pw_file_read(it->path, 0, &it->wasm) < 0) {
			printf("%s: reading the download FAILED: %s\n", it->id, pw_error_last());
			it->rc = PW_EIO;
			r->fetch_failed++;
		}
	}
	fflush(stdout);
	pw_info("cache", "fetched %zu module(s) in %s", r->nj, pw_fmt_duration(pw_now() - t0, b1, sizeof b1));
}

/* The engine, a cache of the local tier only (compiles land there) and, with
 * --cache-registry, the registry tier apart: warm drives the registry itself, so that what
 * it holds is checked and filled for every module. */
static int open_tiers(warm_run *r)
{
	warm_args *a = r->a;
	char stats[STATS_PATH_LEN];

	snprintf(stats, sizeof stats, "%s/stats", a->dir);
	pw_cache_opts copts = { .signing_key_file = a->co.signing_key_file, .stats_dir = stats };
	if (pw_engine_new(&r->engine, NULL) < 0 || pw_cache_new(&r->cache, &copts) < 0)
		return -1;
	if (pw_cache_cli_open_local(&a->co, &r->local) < 0 || pw_cache_add_backend(r->cache, r->local) < 0)
		return -1;
	if (!a->co.registry)
		return 0;
	pw_registry_cache_opts ro = registry_opts(&a->co);
	ro.engine_description = pw_engine_description(r->engine);
	return pw_cache_registry_new(&r->regb, &ro);
}

/* Warms every fetched module on a pool of --jobs (else one per CPU) threads. */
static int warm_modules(warm_run *r)
{
	const warm_args *a = r->a;
	warm_ctx w = { .cache = r->cache, .local = r->local, .reg = r->regb, .reg_name = a->co.registry,
	               .engine = r->engine, .tty = isatty(STDOUT_FILENO) };
	pw_pool *pool = NULL;
	warm_task *tasks;

	pthread_mutex_init(&w.mu, NULL);
	for (size_t i = 0; i < r->pol->n; i++)
		if (!r->items[i].dup && r->items[i].rc == 0)
			w.n++;
	tasks = calloc(r->pol->n + 1, sizeof *tasks);
	if (!tasks || pw_pool_new(&pool, a->jobs ? a->jobs : pw_cpu_count(), WARM_STACK_SIZE) < 0) {
		free(tasks);
		pthread_mutex_destroy(&w.mu);
		return -1;
	}
	for (size_t i = 0; i < r->pol->n; i++) {
		if (r->items[i].dup || r->items[i].rc != 0)
			continue;
		tasks[i].ctx = &w;
		tasks[i].it = &r->items[i];
		if (pw_pool_submit(pool, warm_one, &tasks[i]) < 0)
			warm_one(&tasks[i]);
	}
	pw_pool_free(pool);
	free(tasks);
	pthread_mutex_destroy(&w.mu);
	r->reg_broken = w.reg_broken;
	return 0;
}

/* The closing line; the exit code: 1 when any module failed. */
static int print_summary(const warm_run *r)
{
	const char *reg = r->a->co.registry;
	unsigned cnt[W_NOUTCOMES] = { 0 };
	int failed = r->fetch_failed;

	for (size_t i = 0; i < r->pol->n; i++)
		if (!r->items[i].dup && r->items[i].out != W_NONE)
			cnt[r->items[i].out]++;
	failed += (int)(cnt[W_FAILED] + cnt[W_REG_FAILED]);
	if (r->regb)
		printf("warm: %zu policies, %zu modules: %u already in the registry, %u pushed from the local directory, "
		       "%u compiled and pushed, %d failed%s%s%s\n",
		       r->pol->n, r->nj, cnt[W_IN_REGISTRY], cnt[W_PUSHED_LOCAL], cnt[W_COMPILED_PUSHED], failed,
		       r->reg_broken ? "; the registry " : "", r->reg_broken ? reg : "",
		       r->reg_broken ? " FAILED (see above)" : "");
	else
		printf("warm: %zu policies, %zu modules: %u already in the local directory, %u compiled, %d failed\n",
		       r->pol->n, r->nj, cnt[W_IN_LOCAL], cnt[W_COMPILED], failed);
	return failed ? 1 : 0;
}

static void warm_run_free(warm_run *r)
{
	for (size_t i = 0; r->items && r->pol && i < r->pol->n; i++)
		pw_buf_free(&r->items[i].wasm);
	free(r->items);
	free(r->pj);
	if (r->regb)
		pw_cache_backend_free(r->regb);
	pw_cache_free(r->cache);
	pw_engine_free(r->engine);
	pw_oci_client_free(r->oci);
	pw_policies_free(r->pol);
	if (r->tmpdir) {
		pw_rmtree(r->tmpdir);
		free(r->tmpdir);
	}
}

int pw_cmd_cache_warm(int argc, char **argv)
{
	warm_args a;
	warm_run r;
	int status;

	memset(&a, 0, sizeof a);
	pw_cache_cli_init(&a.co);
	status = parse_warm_args(&a, argc, argv);
	if (status >= 0) {
		pw_cache_cli_free(&a.co);
		return status;
	}
	memset(&r, 0, sizeof r);
	r.a = &a;
	if (load_policies(&r) < 0)
		goto fail;
	fetch_modules(&r);
	if (open_tiers(&r) < 0 || warm_modules(&r) < 0)
		goto fail;
	status = print_summary(&r);
	goto out;
fail:
	fprintf(stderr, "prewarm cache warm: %s\n", pw_error_last());
	status = 1;
out:
	warm_run_free(&r);
	pw_cache_cli_free(&a.co);
	return status;
}

/* ---- push / pull / ls --registry -------------------------------------------------------- */

typedef struct xfer_args {
	pw_cache_cli_opts co;
	int nargs;
	char **args;
	bool json;
} xfer_args;

static void xfer_usage(const char *cmd, FILE *f)
{
	if (!strcmp(cmd, "push"))
		fprintf(f, "usage: prewarm cache push KEY-or-MODULE... --cache-registry HOST[:PORT]/REPO [cache options]\n\n"
		           "Copies entries of the local directory to the registry tier, verifying each first.\n"
		           "KEY is \"<engine hash>-<wasm sha256>\" (see 'prewarm cache ls'); a module file means\n"
		           "its key under this build's engine. Exit 1 when an entry is missing or cannot be pushed.\n\n");
	else if (!strcmp(cmd, "pull"))
		fprintf(f, "usage: prewarm cache pull KEY-or-MODULE... --cache-registry HOST[:PORT]/REPO [cache options]\n\n"
		           "Copies entries of the registry tier into the local directory, verifying each first.\n"
		           "KEY is \"<engine hash>-<wasm sha256>\" (see 'prewarm cache ls --registry'); a module\n"
		           "file means its key under this build's engine. Exit 1 when an entry is missing or bad.\n\n");
	else
		fprintf(f, "usage: prewarm cache ls --registry --cache-registry HOST[:PORT]/REPO [--json] [cache options]\n\n"
		           "Lists the entries of the registry tier.\n\n");
	fputs(pw_cache_cli_help, f);
}

/* Parses cache options and positional words; -1 on a usage error (printed), 1 when
 * --help was given (usage printed on stdout). */
static int parse_xfer(const char *cmd, int argc, char **argv, xfer_args *x)
{
	pw_cache_cli_init(&x->co);
	x->args = calloc((size_t)argc + 1, sizeof *x->args);
	x->nargs = 0;
	if (!x->args)
		return -1;
	for (int i = 1; i < argc; i++) {
		int p = pw_cache_cli_parse(&x->co, argc, argv, &i);
		if (p < 0)
			return -1;
		if (p > 0)
			continue;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			xfer_usage(cmd, stdout);
			return 1;
		} else if (!strcmp(argv[i], "--json")) {
			x->json = true;
		} else if (!strcmp(argv[i], "--registry")) {
			/* `ls --registry` */
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "prewarm cache %s: unknown option '%s'\n", cmd, argv[i]);
			return -1;
		} else {
			x->args[x->nargs++] = argv[i];
		}
	}
	if (!x->co.registry) {
		fprintf(stderr, "prewarm cache %s: needs --cache-registry HOST[:PORT]/REPO\n", cmd);
		return -1;
	}
	return 0;
}

static void free_xfer(xfer_args *x)
{
	free(x->args);
	pw_cache_cli_free(&x->co);
}

static int open_registry(xfer_args *x, pw_cache_backend **out)
{
	pw_registry_cache_opts ro = registry_opts(&x->co);
	ro.read_only = x->co.registry_read_only;
	return pw_cache_registry_new(out, &ro);
}

/* KEY ("<engine>-<wasm>") or a module file (key under this build's engine). */
static int resolve_key(const char *arg, pw_engine **e, pw_cache_key *k)
{
	if (pw_cache_key_parse(k, arg) == 0)
		return 0;
	pw_buf w = PW_BUF_INIT;
	int rc = pw_file_read(arg, MODULE_MAX_BYTES, &w);
	if (rc < 0)
		return pw_error_prefix("'%s' is neither a cache key nor a readable module", arg);
	if (!*e && (rc = pw_engine_new(e, NULL)) < 0) {
		pw_buf_free(&w);
		return rc;
	}
	memcpy(k->engine_hash, pw_engine_hash(*e), sizeof k->engine_hash);
	pw_sha256_hex(w.data, w.len, k->wasm_sha256);
	pw_buf_free(&w);
	return 0;
}

/* Copies entries between the local directory and the registry, verifying each first. */
static int cache_xfer(const char *cmd, int argc, char **argv, bool to_registry)
{
	xfer_args x;
	pw_cache_backend *local = NULL, *regb = NULL;
	pw_cache *verifier = NULL;
	pw_engine *e = NULL;
	int failed = 0;
	memset(&x, 0, sizeof x);
	int pr = parse_xfer(cmd, argc, argv, &x);
	if (pr > 0) {
		free_xfer(&x);
		return 0;
	}
	if (pr < 0 || x.nargs == 0) {
		if (pr == 0 && x.co.registry)
			fprintf(stderr, "usage: prewarm cache %s KEY-or-MODULE... --cache-registry HOST/REPO [cache options]\n", cmd);
		free_xfer(&x);
		return 2;
	}
	pw_cache_opts vo = { .signing_key_file = x.co.signing_key_file };
	if (to_registry && x.co.registry_read_only) {
		fprintf(stderr, "prewarm cache push: --cache-registry-read-only forbids pushing\n");
		free_xfer(&x);
		return 2;
	}
	if (pw_cache_new(&verifier, &vo) < 0 || pw_cache_cli_open_local(&x.co, &local) < 0 || open_registry(&x, &regb) < 0) {
		fprintf(stderr, "prewarm cache %s: %s\n", cmd, pw_error_last());
		failed = -1;
		goto out;
	}
	pw_cache_backend *from = to_registry ? local : regb, *to = to_registry ? regb : local;
	for (int i = 0; i < x.nargs; i++) {
		pw_cache_key k;
		pw_cache_entry ent;
		char ks[PW_CACHE_KEY_STR_LEN + 1], sz[FMT_LEN];
		memset(&ent, 0, sizeof ent);
		if (resolve_key(x.args[i], &e, &k) < 0) {
			fprintf(stderr, "prewarm cache %s: %s\n", cmd, pw_error_last());
			failed++;
			continue;
		}
		pw_cache_key_str(&k, ks);
		int rc = pw_cache_backend_get(from, &k, &ent);
		if (rc == PW_ENOTFOUND) {
			fprintf(stderr, "prewarm cache %s: %s: not in the %s tier\n", cmd, ks, pw_cache_backend_name(from));
			failed++;
			continue;
		}
		if (rc == 0)
			rc = pw_cache_verify_entry_for(verifier, &k, &ent);
		if (rc == 0)
			rc = pw_cache_backend_put(to, &ent);
		if (rc < 0) {
			fprintf(stderr, "prewarm cache %s: %s: %s\n", cmd, ks, pw_error_last());
			failed++;
		} else {
			printf("%s %s (%s)\n", to_registry ? "pushed" : "pulled", ks,
			       pw_fmt_bytes(ent.artifact.len, sz, sizeof sz));
		}
		pw_cache_entry_free(&ent);
	}
out:
	if (regb)
		pw_cache_backend_free(regb);
	if (local)
		pw_cache_backend_free(local);
	pw_cache_free(verifier);
	pw_engine_free(e);
	free_xfer(&x);
	return failed ? 1 : 0;
}

int pw_cmd_cache_push(int argc, char **argv)
{
	return cache_xfer("push", argc, argv, true);
}

int pw_cmd_cache_pull(int argc, char **argv)
{
	return cache_xfer("pull", argc, argv, false);
}

typedef struct ls_reg {
	unsigned n;
	uint64_t bytes;
	bool json;
} ls_reg;

static int ls_reg_one(const pw_cache_listing *l, void *payload)
{
	ls_reg *c = payload;
	char ks[PW_CACHE_KEY_STR_LEN + 1], sz[FMT_LEN];
	pw_cache_key_str(&l->key, ks);
	if (c->json)
		printf("%s{\"key\":\"%s\",\"size\":%llu,\"created\":%.0f}", c->n ? "," : "", ks,
		       (unsigned long long)l->size, l->created);
	else
		printf("%-*s  %10s\n", (int)PW_CACHE_KEY_STR_LEN, ks, pw_fmt_bytes(l->size, sz, sizeof sz));
	c->n++;
	c->bytes += l->size;
	return 0;
}

int pw_cmd_cache_ls_registry(int argc, char **argv)
{
	xfer_args x;
	pw_cache_backend *regb = NULL;
	ls_reg c = { 0, 0, false };
	char sz[FMT_LEN];
	int rc;
	memset(&x, 0, sizeof x);
	int pr = parse_xfer("ls", argc, argv, &x);
	if (pr != 0 || x.nargs) {
		free_xfer(&x);
		return pr > 0 ? 0 : 2;
	}
	c.json = x.json;
	if (open_registry(&x, &regb) < 0) {
		fprintf(stderr, "prewarm cache ls: %s\n", pw_error_last());
		free_xfer(&x);
		return 1;
	}
	if (c.json)
		printf("[");
	else
		printf("%-*s  %10s\n", (int)PW_CACHE_KEY_STR_LEN, "KEY (engine hash-wasm sha256) in the registry", "SIZE");
	rc = pw_cache_backend_list(regb, ls_reg_one, &c);
	if (c.json)
		printf("]\n");
	else
		printf("%u entries, %s\n", c.n, pw_fmt_bytes(c.bytes, sz, sizeof sz));
	if (rc < 0)
		fprintf(stderr, "prewarm cache ls: %s\n", pw_error_last());
	pw_cache_backend_free(regb);
	free_xfer(&x);
	return rc < 0 ? 1 : 0;
}
