/*
 * bench_pull: pulls N distinct policy modules from a real registry with
 * pw_oci_pull_many, one at a time (max_parallel 1) and in parallel, side by side, several
 * rounds each, and prints the medians. Driven by bench/pull/run.sh.
 *
 *   bench_pull HOST SOURCES.yml DOCKER_CONFIG_DIR N SIZE_KIB ROUNDS PARALLEL
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/oci.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: bench_pull HOST SOURCES DOCKER_DIR N SIZE_KIB ROUNDS PARALLEL\n");
		return 2;
	}
	const char *host = argv[1];
	int n = atoi(argv[4]), kib = atoi(argv[5]), rounds = atoi(argv[6]), par = atoi(argv[7]);
	pw_oci_client *c = NULL;
	char *tmp = NULL;
	if (n < 1 || n > 1000 || kib < 1 || rounds < 1 || par < 1)
		return 2;
	pw_log_configure(PW_LOG_WARN, PW_LOG_TEXT);
	if (pw_oci_client_from_paths(&c, argv[3], argv[2], NULL) < 0 || pw_mkdtemp(&tmp, "bench-pull") < 0) {
		fprintf(stderr, "bench_pull: %s\n", pw_error_last());
		return 1;
	}
	size_t len = (size_t)kib << 10;
	uint8_t *m = malloc(len);
	char (*refs)[256] = calloc((size_t)n, 256);
	char (*dests)[600] = calloc((size_t)n, 600);
	pw_oci_pull_job *jobs = calloc((size_t)n, sizeof *jobs);
	memcpy(m, "\0asm\1\0\0\0", 8);
	srand(1);
	for (size_t i = 8; i < len; i++)
		m[i] = (uint8_t)rand();
	for (int i = 0; i < n; i++) {
		memcpy(m + 8, &i, sizeof i);
		snprintf(refs[i], 256, "%s/bench/p%d:v1", host, i);
		if (pw_oci_push_wasm(c, refs[i], m, len, NULL, 0, NULL) < 0) {
			fprintf(stderr, "bench_pull: %s\n", pw_error_last());
			return 1;
		}
	}
	double *t1 = calloc((size_t)rounds, sizeof *t1), *tp = calloc((size_t)rounds, sizeof *tp);
	for (int r = 0; r < rounds; r++) {
		for (int mode = 0; mode < 2; mode++) {
			for (int i = 0; i < n; i++) {
				snprintf(dests[i], 600, "%s/r%d-m%d-%d.wasm", tmp, r, mode, i);
				memset(&jobs[i], 0, sizeof jobs[i]);
				jobs[i].ref = refs[i];
				jobs[i].dest = dests[i];
			}
			double t0 = pw_now();
			if (pw_oci_pull_many(c, jobs, (size_t)n, mode ? (unsigned)par : 1) < 0) {
				fprintf(stderr, "bench_pull: %s\n", pw_error_last());
				return 1;
			}
			(mode ? tp : t1)[r] = pw_now() - t0;
		}
	}
	qsort(t1, (size_t)rounds, sizeof *t1, cmp_d);
	qsort(tp, (size_t)rounds, sizeof *tp, cmp_d);
	printf("%d modules of %d KiB: one by one %.3f s, %d in parallel %.3f s (median of %d), speed-up %.2fx\n", n, kib,
	       t1[rounds / 2], par, tp[rounds / 2], rounds, t1[rounds / 2] / tp[rounds / 2]);
	pw_rmtree(tmp);
	free(tmp);
	free(m);
	free(refs);
	free(dests);
	free(jobs);
	free(t1);
	free(tp);
	pw_oci_client_free(c);
	return 0;
}
