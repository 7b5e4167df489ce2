/*
 * bench_registry: start-to-loaded time of each module (lookup or compile, then
 * pw_artifact_load) along the three paths a Policy Server start can take, side by side:
 *   compile   no cache: wasm2c + cc + load
 *   registry  empty local dir, entry in the registry tier: manifest + blob download, layer
 *             digest + zstd + sha256/description checks, copy into the local dir, load
 *   local     entry in the local dir: read + checks + load
 * Medians of ROUNDS for the cache paths (one compile: it is the expensive one).
 *
 *   bench_registry REGISTRY_REPO ROUNDS MODULE.wasm...     (the registry over plain HTTP)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"
#include "prewarm/policy.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int open_cache(pw_cache **c, const char *local, const char *repo)
{
	pw_cache_backend *b = NULL;
	if (pw_cache_new(c, NULL) < 0)
		return -1;
	if (local && (pw_cache_local_new(&b, local, NULL) < 0 || pw_cache_add_backend(*c, b) < 0))
		return -1;
	if (repo) {
		pw_registry_cache_opts ro = { .repository = repo, .insecure = true, .timeout = 300 };
		if (pw_cache_registry_new(&b, &ro) < 0 || pw_cache_add_backend(*c, b) < 0)
			return -1;
	}
	return 0;
}

/* Returns seconds from lookup to loaded, or -1. */
static double run(pw_cache *c, pw_engine *e, const pw_buf *wasm, const char *want_tier, double *compile_s)
{
	pw_buf art = PW_BUF_INIT;
	pw_cache_result res;
	pw_artifact *a = NULL;
	double t0 = pw_now(), t = -1;
	if (pw_cache_get_or_compile(c, e, wasm->data, wasm->len, pw_policy_host_imports(), NULL, &art, &res) == 0 &&
	    strcmp(res.tier_name, want_tier) == 0 &&
	    pw_artifact_load(&a, art.data, art.len, NULL, pw_policy_host_imports()) == 0) {
		t = pw_now() - t0;
		if (compile_s)
			*compile_s = res.compile_seconds;
	} else if (pw_error_last()[0]) {
		fprintf(stderr, "  (%s: %s)\n", res.tier_name ? res.tier_name : "?", pw_error_last());
	}
	pw_artifact_free(a);
	pw_buf_free(&art);
	return t;
}

int main(int argc, char **argv)
{
	pw_engine *e = NULL;
	char *tmp = NULL;
	if (argc < 4) {
		fprintf(stderr, "usage: bench_registry HOST:PORT/REPO ROUNDS MODULE.wasm...\n");
		return 2;
	}
	const char *repo = argv[1];
	int rounds = atoi(argv[2]);
	pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);
	if (rounds < 1 || pw_engine_new(&e, NULL) < 0 || pw_mkdtemp(&tmp, "bench-registry") < 0) {
		fprintf(stderr, "bench_registry: %s\n", pw_error_last());
		return 1;
	}
	printf("%-58s %9s %9s %10s %9s %8s %8s\n", "module", "wasm", "compile", "registry", "local", "c/reg", "reg/loc");
	for (int i = 3; i < argc; i++) {
		pw_buf wasm = PW_BUF_INIT;
		pw_cache *c = NULL;
		char dir[4200];
		double tc, tr[64], tl[64], cs = 0;
		const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		if (pw_file_read(argv[i], 0, &wasm) < 0)
			continue;
		/* compile (with both tiers, so the entry is published; publishing is not timed) */
		snprintf(dir, sizeof dir, "%s/local-%d", tmp, i);
		if (open_cache(&c, dir, repo) < 0) {
			fprintf(stderr, "bench_registry: %s\n", pw_error_last());
			return 1;
		}
		pw_error_clear();
		double t0 = pw_now();
		pw_buf art = PW_BUF_INIT;
		pw_cache_result res;
		pw_artifact *a = NULL;
		int rc = pw_cache_get_or_compile(c, e, wasm.data, wasm.len, pw_policy_host_imports(), NULL, &art, &res);
		double tget = pw_now() - t0;
		if (rc == 0 && res.tier < 0) {
			double t1 = pw_now();
			rc = pw_artifact_load(&a, art.data, art.len, NULL, pw_policy_host_imports());
			tc = res.compile_seconds + (pw_now() - t1);
			(void)tget;
		} else {
			rc = -1;
		}
		pw_artifact_free(a);
		pw_buf_free(&art);
		pw_cache_free(c);
		if (rc < 0) {
			printf("%-58.58s %8zuK   skipped: %s\n", name, wasm.len >> 10, pw_error_last());
			pw_buf_free(&wasm);
			continue;
		}
		int n = rounds > 64 ? 64 : rounds, ok = 1;
		for (int r = 0; r < n && ok; r++) {
			char fresh[4300];
			snprintf(fresh, sizeof fresh, "%s/fresh-%d-%d", tmp, i, r);
			if (open_cache(&c, fresh, repo) < 0)
				return 1;
			tr[r] = run(c, e, &wasm, "registry", NULL);
			pw_cache_free(c);
			pw_rmtree(fresh);
			if (open_cache(&c, dir, NULL) < 0)
				return 1;
			tl[r] = run(c, e, &wasm, "local", NULL);
			pw_cache_free(c);
			ok = tr[r] >= 0 && tl[r] >= 0;
		}
		if (!ok) {
			printf("%-58.58s %8zuK   cache path failed\n", name, wasm.len >> 10);
			pw_buf_free(&wasm);
			continue;
		}
		qsort(tr, (size_t)n, sizeof *tr, cmp_d);
		qsort(tl, (size_t)n, sizeof *tl, cmp_d);
		double mr = tr[n / 2], ml = tl[n / 2];
		printf("%-58.58s %8zuK %8.2fs %9.3fs %8.3fs %7.0fx %7.1fx\n", name, wasm.len >> 10, tc, mr, ml, tc / mr, mr / ml);
		fflush(stdout);
		(void)cs;
		pw_buf_free(&wasm);
	}
	pw_rmtree(tmp);
	free(tmp);
	pw_engine_free(e);
	return 0;
}
