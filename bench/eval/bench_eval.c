/*
 * bench/eval: in-process policy evaluation figures for BENCHMARKS.md.
 *
 *   bench_eval WASM REQUEST.json [SETTINGS.json] [N]
 *
 * Compiles the module once (not timed), then, side by side in one process:
 *  - N evaluations with a fresh instance per request (Prewarm's default) and N with a reused
 *    instance (PW_POLICY_REUSE, waPC only): evaluations/s, p50 and p99 latency;
 *  - the instance reset cost alone: create + start (_start, wapc_init) + free, median;
 *  - resident memory per started instance: RSS growth over 32 live instances / 32.
 * Prints one markdown table row per measure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host_internal.h"
#include "prewarm/engine.h"
#include "prewarm/policy.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof *v, cmp_d);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int run_evals(pw_artifact *a, const char *settings, pw_policy_instances mode, const pw_buf *req,
                     int n, const char *label)
{
	pw_policy_spec spec = { .id = "bench", .settings_json = settings, .instances = mode,
	                        .allowed_to_mutate = true, .timeout_seconds = -1 };
	pw_policy *p;
	if (pw_policy_new(&p, &spec, a) < 0)
		return -1;
	char *msg = NULL;
	if (pw_policy_validate_settings(p, 0, &msg) < 0) {
		fprintf(stderr, "bench: settings: %s\n", pw_error_last());
		free(msg);
		pw_policy_free(p);
		return -1;
	}
	double *lat = calloc((size_t)n, sizeof *lat);
	int errors = 0;
	bool allowed = false;
	double t0 = pw_now();
	for (int i = 0; i < n; i++) {
		char *answer = NULL;
		pw_eval_result r;
		double s = pw_now();
		if (pw_policy_evaluate(p, 0, (const char *)req->data, req->len, PW_EVAL_VALIDATE, &answer, &r) < 0 || r.error)
			errors++;
		lat[i] = pw_now() - s;
		allowed = r.allowed;
		free(answer);
	}
	double total = pw_now() - t0;
	printf("| %s | %.0f evals/s | p50 %.3f ms | p99 %.3f ms | allowed=%s errors=%d |\n", label,
	       n / total, pct(lat, (size_t)n, 0.5) * 1e3, pct(lat, (size_t)n, 0.99) * 1e3,
	       allowed ? "true" : "false", errors);
	free(lat);
	pw_policy_free(p);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_eval WASM REQUEST.json [SETTINGS.json] [N]\n");
		return 2;
	}
	pw_log_configure(PW_LOG_WARN, PW_LOG_TEXT);
	int n = argc > 4 ? atoi(argv[4]) : 500;
	if (n < 10)
		n = 10;
	pw_buf wasm = PW_BUF_INIT, so = PW_BUF_INIT, req = PW_BUF_INIT, set = PW_BUF_INIT;
	pw_engine *e;
	pw_artifact *a;
	const pw_imports *im = pw_policy_host_imports();
	if (pw_file_read(argv[1], 0, &wasm) < 0 || pw_file_read(argv[2], 0, &req) < 0 ||
	    (argc > 3 && strcmp(argv[3], "-") && pw_file_read(argv[3], 0, &set) < 0) ||
	    pw_engine_new(&e, NULL) < 0 || pw_engine_compile(e, wasm.data, wasm.len, im, &so, NULL) < 0 ||
	    pw_artifact_load(&a, so.data, so.len, NULL, im) < 0) {
		fprintf(stderr, "bench: %s\n", pw_error_last());
		return 1;
	}
	const char *settings = set.len ? (const char *)set.data : NULL;
	const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	printf("module %s (%zu bytes wasm, %zu bytes artifact), %d evaluations each\n\n", name, wasm.len, so.len, n);
	printf("| measure | throughput | latency | | |\n|---|---|---|---|---|\n");
	run_evals(a, settings, PW_POLICY_FRESH, &req, n, "fresh instance per request");
	pw_policy_spec spec = { .id = "bench" };
	pw_policy *p;
	if (pw_policy_new(&p, &spec, a) < 0)
		return 1;
	if (pw_policy_get_abi(p) == PW_POLICY_ABI_WAPC)
		run_evals(a, settings, PW_POLICY_REUSE, &req, n, "reused instance (PW_POLICY_REUSE)");

	/* reset cost: create + start + free, and each part */
	pw_host_call c;
	pw_host_call_init(&c, p, "bench");
	pw_instance_opts o = { .host_data = &c };
	double *cost = calloc((size_t)n, sizeof *cost), *tnew = calloc((size_t)n, sizeof *tnew);
	double *tstart = calloc((size_t)n, sizeof *tstart), *tfree = calloc((size_t)n, sizeof *tfree);
	for (int i = 0; i < n; i++) {
		pw_instance *inst;
		double s = pw_now();
		if (pw_instance_new(&inst, a, &o) < 0)
			return 1;
		double s1 = pw_now();
		if (pw_policy_get_abi(p) == PW_POLICY_ABI_WAPC)
			pw_host_wapc_start(inst, &c);
		double s2 = pw_now();
		pw_instance_free(inst);
		double s3 = pw_now();
		cost[i] = s3 - s;
		tnew[i] = s1 - s;
		tstart[i] = s2 - s1;
		tfree[i] = s3 - s2;
	}
	printf("| instance reset (new + start + free) | | p50 %.3f ms | p99 %.3f ms | "
	       "p50 of parts: new %.3f ms, start %.3f ms, free %.3f ms |\n",
	       pct(cost, (size_t)n, 0.5) * 1e3, pct(cost, (size_t)n, 0.99) * 1e3,
	       pct(tnew, (size_t)n, 0.5) * 1e3, pct(tstart, (size_t)n, 0.5) * 1e3,
	       pct(tfree, (size_t)n, 0.5) * 1e3);
	free(cost);
	free(tnew);
	free(tstart);
	free(tfree);

	/* resident memory per started instance */
	enum { K = 32 };
	pw_instance *live[K];
	long before = rss_kib();
	for (int i = 0; i < K; i++) {
		if (pw_instance_new(&live[i], a, &o) < 0)
			return 1;
		if (pw_policy_get_abi(p) == PW_POLICY_ABI_WAPC)
			pw_host_wapc_start(live[i], &c);
	}
	long after = rss_kib();
	uint64_t mem = 0;
	pw_instance_memory(live[0], &mem);
	printf("| resident memory per started instance | | %.0f KiB | linear memory %llu KiB | |\n",
	       (double)(after - before) / K, (unsigned long long)(mem / 1024));
	for (int i = 0; i < K; i++)
		pw_instance_free(live[i]);
	pw_host_call_free(&c);
	pw_policy_free(p);
	pw_artifact_free(a);
	pw_engine_free(e);
	pw_buf_free(&wasm);
	pw_buf_free(&so);
	pw_buf_free(&req);
	pw_buf_free(&set);
	return 0;
}
