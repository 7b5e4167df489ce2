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
} warm_outcome;

typedef struct warm_item {
	const char *id;
	const char *module;
	char path[4096];
	pw_buf wasm;
	int rc;
	warm_outcome out;
	char msg[600];
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

static void warm_one(void *arg)
{
	warm_task *t = arg;
	warm_ctx *w = t->ctx;
	warm_item *it = t->it;
	pw_cache_key k;
	pw_cache_entry ent;
	char ks[PW_CACHE_KEY_STR_LEN + 1], dur[32], sz[32];
	int rc;

	memcpy(k.engine_hash, pw_engine_hash(w->engine), sizeof k.engine_hash);
	pw_sha256_hex(it->wasm.data, it->wasm.len, k.wasm_sha256);
	pw_cache_key_str(&k, ks);
	pthread_mutex_lock(&w->mu);
	w->done++;
	pthread_mutex_unlock(&w->mu);

	/* 1. the registry already holds it? */
	if (w->reg) {
		if (reg_broken(w)) {
			it->rc = PW_EIO;
			it->out = W_REG_FAILED;
			snprintf(it->msg, sizeof it->msg, "skipped: the registry failed");
			report(w, it, "registry %s FAILED earlier: skipped", w->reg_name);
			return;
		}
		rc = pw_cache_backend_exists(w->reg, &k);
		if (rc == 0) {
			it->out = W_IN_REGISTRY;
			report(w, it, "already in the registry (%s)", ks);
			return;
		}
		if (rc != PW_ENOTFOUND) {
			reg_fail(w, it, "checking", ks);
			return;
		}
	}

	/* 2. a verified local entry, else compile into the local directory */
	bool compiled = false;
	double cs = 0;
	rc = local_entry(w, &k, &ent);
	if (rc < 0) {
		if (rc != PW_ENOTFOUND)
			pw_warn("cache", "local entry %s unusable (%s): compiling", ks, pw_error_last());
		pw_buf art = PW_BUF_INIT;
		pw_cache_result res;
		rc = pw_cache_get_or_compile(w->cache, w->engine, it->wasm.data, it->wasm.len, pw_policy_host_imports(),
		                             NULL, &art, &res);
		pw_buf_free(&art);
		if (rc < 0) {
			it->rc = rc;
			it->out = W_FAILED;
			snprintf(it->msg, sizeof it->msg, "%s", pw_error_last());
			report(w, it, "compile FAILED: %s", it->msg);
			return;
		}
		compiled = res.tier < 0;
		cs = res.compile_seconds;
		if (!w->reg) {
			it->out = compiled ? W_COMPILED : W_IN_LOCAL;
			if (compiled)
				report(w, it, "compiled in %s into the local directory", pw_fmt_duration(cs, dur, sizeof dur));
			else
				report(w, it, "already in the local directory");
			return;
		}
		rc = local_entry(w, &k, &ent);
		if (rc < 0) {
			it->rc = rc;
			it->out = W_FAILED;
			snprintf(it->msg, sizeof it->msg, "%s", pw_error_last());
			report(w, it, "FAILED reading the local entry %s back: %s", ks, it->msg);
			return;
		}
	} else if (!w->reg) {
		it->out = W_IN_LOCAL;
		pw_cache_entry_free(&ent);
		report(w, it, "already in the local directory");
		return;
	}

	/* 3. push it */
	rc = pw_cache_backend_put(w->reg, &ent);
	if (rc < 0) {
		pw_cache_entry_free(&ent);
		reg_fail(w, it, "pushing", ks);
		return;
	}
	it->out = compiled ? W_COMPILED_PUSHED : W_PUSHED_LOCAL;
	if (compiled)
		report(w, it, "compiled in %s, pushed to the registry (%s)", pw_fmt_duration(cs, dur, sizeof dur),
		       pw_fmt_bytes(ent.artifact.len, sz, sizeof sz));
	else
		report(w, it, "pushed from the local directory to the registry (%s)",
		       pw_fmt_bytes(ent.artifact.len, sz, sizeof sz));
	pw_cache_entry_free(&ent);
}

int pw_cmd_cache_warm(int argc, char **argv)
{
	pw_cache_cli_opts co;
	const char *policies_path = NULL, *docker = NULL, *sources = NULL, *download = NULL;
	unsigned jobs = 0;
	pw_policies *pol = NULL;
	pw_oci_client *oci = NULL;
	pw_engine *engine = NULL;
	pw_cache *cache = NULL;
	pw_cache_backend *regb = NULL;
	warm_item *items = NULL;
	pw_oci_pull_job *pj = NULL;
	char *tmpdir = NULL;
	int status = 1;

	pw_cache_cli_init(&co);
	for (int i = 1; i < argc; i++) {
		int p = pw_cache_cli_parse(&co, argc, argv, &i);
		const char *a = argv[i];
		if (p < 0) {
			pw_cache_cli_free(&co);
			return 2;
		}
		if (p > 0)
			continue;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			warm_usage(stdout);
			pw_cache_cli_free(&co);
			return 0;
		}
		if (!strncmp(a, "--policies=", 11) || !strcmp(a, "--policies")) {
			const char *v = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !*v || policies_path) {
				fprintf(stderr, "prewarm cache warm: %s\n",
				        policies_path ? "give the policies file once" : "--policies needs a value");
				pw_cache_cli_free(&co);
				return 2;
			}
			policies_path = v;
			continue;
		}
		const char **dst = !strcmp(a, "--docker-config-json-path") ? &docker :
		                   !strcmp(a, "--sources-path") ? &sources :
		                   !strcmp(a, "--download-dir") ? &download : NULL;
		if (dst || !strcmp(a, "--jobs")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "prewarm cache warm: %s needs a value\n", a);
				pw_cache_cli_free(&co);
				return 2;
			}
			if (dst) {
				*dst = argv[++i];
			} else {
				char *end;
				long v = strtol(argv[++i], &end, 10);
				if (*end || v < 1 || v > 256) {
					fprintf(stderr, "prewarm cache warm: --jobs needs a number from 1 to 256\n");
					pw_cache_cli_free(&co);
					return 2;
				}
				jobs = (unsigned)v;
			}
			continue;
		}
		if (a[0] == '-' || policies_path) {
			fprintf(stderr, "prewarm cache warm: unexpected argument '%s'\n", a);
			warm_usage(stderr);
			pw_cache_cli_free(&co);
			return 2;
		}
		policies_path = a;
	}
	if (!policies_path) {
		warm_usage(stderr);
		pw_cache_cli_free(&co);
		return 2;
	}
	if (co.no_cache) {
		fprintf(stderr, "prewarm cache warm: --no-cache makes no sense here\n");
		pw_cache_cli_free(&co);
		return 2;
	}
	if (!co.registry)
		fprintf(stderr, "prewarm cache warm: no --cache-registry: filling the local directory only\n");
	if (co.registry_read_only) {
		fprintf(stderr, "prewarm cache warm: --cache-registry-read-only: nothing would be published\n");
		pw_cache_cli_free(&co);
		return 2;
	}
	const char *dir = pw_cache_cli_dir(&co);
	if (!dir) {
		fprintf(stderr, "prewarm cache warm: no local cache directory (no $HOME): give --cache-dir\n");
		pw_cache_cli_free(&co);
		return 2;
	}

	if (pw_policies_load(&pol, policies_path) < 0 ||
	    pw_oci_client_from_paths(&oci, docker, sources, NULL) < 0)
		goto fail;
	if (!download) {
		if (pw_mkdtemp(&tmpdir, "prewarm-warm") < 0)
			goto fail;
		download = tmpdir;
	} else if (pw_mkdirs(download, 0755) < 0) {
		goto fail;
	}
	items = calloc(pol->n + 1, sizeof *items);
	pj = calloc(pol->n + 1, sizeof *pj);
	if (!items || !pj) {
		pw_error_set(PW_ENOMEM, "out of memory");
		goto fail;
	}
	size_t nj = 0;
	for (size_t i = 0; i < pol->n; i++) {
		items[i].id = pol->items[i].id;
		items[i].module = pol->items[i].module;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(items[j].module, items[i].module))
				items[i].dup = true;
		if (items[i].dup)
			continue;
		char h[PW_SHA256_HEX_LEN + 1];
		pw_sha256_hex(items[i].module, strlen(items[i].module), h);
		snprintf(items[i].path, sizeof items[i].path, "%s/%.32s.wasm", download, h);
		pj[nj].ref = items[i].module;
		pj[nj].dest = items[i].path;
		nj++;
	}
	double t0 = pw_now();
	pw_oci_pull_many(oci, pj, nj, jobs ? jobs : 4);
	char b1[32], b2[32];
	int fetch_failed = 0;
	for (size_t i = 0, k = 0; i < pol->n; i++) {
		if (items[i].dup)
			continue;
		pw_oci_pull_job *j = &pj[k++];
		if (j->rc < 0) {
			printf("%s: fetch FAILED: %s\n", items[i].id, j->error);
			fetch_failed++;
			items[i].rc = j->rc;
			continue;
		}
		printf("%s: fetched %s (%s, %s)\n", items[i].id, items[i].module, pw_fmt_bytes(j->result.size, b1, sizeof b1),
		       pw_fmt_duration(j->seconds, b2, sizeof b2));
		if (pw_file_read(items[i].path, 0, &items[i].wasm) < 0) {
			printf("%s: reading the download FAILED: %s\n", items[i].id, pw_error_last());
			items[i].rc = PW_EIO;
			fetch_failed++;
		}
	}
	fflush(stdout);
	pw_info("cache", "fetched %zu module(s) in %s", nj, pw_fmt_duration(pw_now() - t0, b1, sizeof b1));

	/* the cache holds the local tier only (compiles land there); the registry is driven
	 * here, so that what it holds is checked and filled for every module */
	char stats[4200];
	snprintf(stats, sizeof stats, "%s/stats", dir);
	pw_cache_opts copts = { .signing_key_file = co.signing_key_file, .stats_dir = stats };
	pw_cache_backend *b = NULL;
	if (pw_engine_new(&engine, NULL) < 0 || pw_cache_new(&cache, &copts) < 0)
		goto fail;
	if (pw_cache_cli_open_local(&co, &b) < 0 || pw_cache_add_backend(cache, b) < 0)
		goto fail;
	if (co.registry) {
		pw_registry_cache_opts ro = {
			.repository = co.registry, .credentials = co.registry_credentials, .ca_file = co.registry_ca,
			.insecure = co.registry_insecure, .async_put = false, .timeout = 120,
			.engine_description = pw_engine_description(engine),
		};
		if (pw_cache_registry_new(&regb, &ro) < 0)
			goto fail;
	}
	warm_ctx w = { .cache = cache, .local = b, .reg = regb, .reg_name = co.registry, .engine = engine,
	               .tty = isatty(STDOUT_FILENO) };
	pthread_mutex_init(&w.mu, NULL);
	for (size_t i = 0; i < pol->n; i++)
		if (!items[i].dup && items[i].rc == 0)
			w.n++;
	pw_pool *pool = NULL;
	warm_task *tasks = calloc(pol->n + 1, sizeof *tasks);
	if (!tasks || pw_pool_new(&pool, jobs ? jobs : pw_cpu_count(), 8u << 20) < 0) {
		free(tasks);
		pthread_mutex_destroy(&w.mu);
		goto fail;
	}
	for (size_t i = 0; i < pol->n; i++) {
		if (items[i].dup || items[i].rc != 0)
			continue;
		tasks[i].ctx = &w;
		tasks[i].it = &items[i];
		if (pw_pool_submit(pool, warm_one, &tasks[i]) < 0)
			warm_one(&tasks[i]);
	}
	pw_pool_free(pool);
	free(tasks);
	pthread_mutex_destroy(&w.mu);

	int failed = fetch_failed;
	unsigned cnt[W_COMPILED + 1] = { 0 };
	for (size_t i = 0; i < pol->n; i++)
		if (!items[i].dup && items[i].out != W_NONE)
			cnt[items[i].out]++;
	failed += (int)(cnt[W_FAILED] + cnt[W_REG_FAILED]);
	if (regb)
		printf("warm: %zu policies, %zu modules: %u already in the registry, %u pushed from the local directory, "
		       "%u compiled and pushed, %d failed%s%s%s\n",
		       pol->n, nj, cnt[W_IN_REGISTRY], cnt[W_PUSHED_LOCAL], cnt[W_COMPILED_PUSHED], failed,
		       w.reg_broken ? "; the registry " : "", w.reg_broken ? co.registry : "",
		       w.reg_broken ? " FAILED (see above)" : "");
	else
		printf("warm: %zu policies, %zu modules: %u already in the local directory, %u compiled, %d failed\n",
		       pol->n, nj, cnt[W_IN_LOCAL], cnt[W_COMPILED], failed);
	status = failed ? 1 : 0;
	goto out;
fail:
	fprintf(stderr, "prewarm cache warm: %s\n", pw_error_last());
	status = 1;
out:
	for (size_t i = 0; items && pol && i < pol->n; i++)
		pw_buf_free(&items[i].wasm);
	free(items);
	free(pj);
	if (regb)
		pw_cache_backend_free(regb);
	pw_cache_free(cache);
	pw_engine_free(engine);
	pw_oci_client_free(oci);
	pw_policies_free(pol);
	if (tmpdir) {
		pw_rmtree(tmpdir);
		free(tmpdir);
	}
	pw_cache_cli_free(&co);
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
	pw_registry_cache_opts ro = {
		.repository = x->co.registry, .credentials = x->co.registry_credentials, .ca_file = x->co.registry_ca,
		.insecure = x->co.registry_insecure, .read_only = x->co.registry_read_only, .timeout = 120,
	};
	return pw_cache_registry_new(out, &ro);
}

/* KEY ("<engine>-<wasm>") or a module file (key under this build's engine). */
static int resolve_key(const char *arg, pw_engine **e, pw_cache_key *k)
{
	if (pw_cache_key_parse(k, arg) == 0)
		return 0;
	pw_buf w = PW_BUF_INIT;
	int rc = pw_file_read(arg, 1u << 30, &w);
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
		char ks[PW_CACHE_KEY_STR_LEN + 1], sz[32];
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
	char ks[PW_CACHE_KEY_STR_LEN + 1], sz[32];
	pw_cache_key_str(&l->key, ks);
	if (c->json)
		printf("%s{\"key\":\"%s\",\"size\":%llu,\"created\":%.0f}", c->n ? "," : "", ks,
		       (unsigned long long)l->size, l->created);
	else
		printf("%-129s  %10s\n", ks, pw_fmt_bytes(l->size, sz, sizeof sz));
	c->n++;
	c->bytes += l->size;
	return 0;
}

int pw_cmd_cache_ls_registry(int argc, char **argv)
{
	xfer_args x;
	pw_cache_backend *regb = NULL;
	ls_reg c = { 0, 0, false };
	char sz[32];
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
		printf("%-129s  %10s\n", "KEY (engine hash-wasm sha256) in the registry", "SIZE");
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
