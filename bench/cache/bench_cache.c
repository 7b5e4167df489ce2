/*
 * bench/cache: what a warm local cache buys, per module.
 *
 *   bench_cache CACHE_DIR RUNS MODULE.wasm...
 *
 * For each module: the compile (done once through the cache, so a re-run reuses it and reads
 * the compile time the entry recorded), then RUNS rounds that time side by side
 *   load:  pw_cache_get_or_compile on a hit (read the entry, sha256, verify the description,
 *          touch) + pw_artifact_load (memfd + dlopen + bind imports) + pw_instance_new
 *   floor: read the artifact's bytes from a plain file + dlopen that file
 * and prints one Markdown row with the medians and the ratios load/floor and compile/load.
 * Imports are bound to inert host functions made from the module's own import list
 * (instantiation only; nothing is called), so any module the engine accepts can be measured.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/wasm.h"

static void inert(void)
{
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int make_imports(const pw_buf *wasm, pw_imports **out)
{
	pw_wasm_module *m = NULL;
	int rc;

	if ((rc = pw_imports_new(out)) < 0 || (rc = pw_wasm_parse(&m, wasm->data, wasm->len)) < 0)
		return rc;
	for (uint32_t i = 0; i < m->nimports && rc == 0; i++) {
		char sig[256];
		if (m->imports[i].kind != PW_WASM_FUNC || m->imports[i].type_index >= m->ntypes)
			continue;
		pw_wasm_sig_string(&m->types[m->imports[i].type_index], sig, sizeof sig);
		/* pw_imports keeps pointers to the strings: they must outlive the table */
		rc = pw_imports_add(*out, strdup(m->imports[i].module), strdup(m->imports[i].name),
		                    strdup(sig), inert);
	}
	pw_wasm_module_free(m);
	return rc;
}

static int bench_one(pw_engine *e, const char *cache_dir, int runs, const char *path)
{
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_imports *host = NULL;
	pw_cache *c = NULL;
	pw_cache_backend *b = NULL;
	pw_cache_result res;
	pw_cache_entry ent;
	pw_cache_key key;
	pw_artifact_info expect;
	char so[PATH_MAX], name[256];
	double compile_s, *load = calloc((size_t)runs, sizeof *load), *floor_ = calloc((size_t)runs, sizeof *floor_);
	double *get = calloc((size_t)runs, sizeof *get), *dlo = calloc((size_t)runs, sizeof *dlo);
	double *kh = calloc((size_t)runs, sizeof *kh);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int rc = -1;

	snprintf(name, sizeof name, "%.*s", (int)(strlen(base) > 5 ? strlen(base) - 5 : strlen(base)), base);
	if (pw_file_read(path, 0, &wasm) < 0 || make_imports(&wasm, &host) < 0 ||
	    pw_cache_new(&c, NULL) < 0 || pw_cache_local_new(&b, cache_dir, NULL) < 0 ||
	    pw_cache_add_backend(c, b) < 0)
		goto out;
	/* the compile (or the one a previous run stored) */
	if (pw_cache_get_or_compile(c, e, wasm.data, wasm.len, host, NULL, &art, &res) < 0)
		goto out;
	memcpy(key.engine_hash, pw_engine_hash(e), sizeof key.engine_hash);
	pw_sha256_hex(wasm.data, wasm.len, key.wasm_sha256);
	if (res.tier < 0) {
		compile_s = res.compile_seconds;
	} else {
		if (pw_cache_backend_get(b, &key, &ent) < 0)
			goto out;
		compile_s = ent.meta.compile_seconds;
		pw_cache_entry_free(&ent);
	}
	snprintf(so, sizeof so, "%s/floor-%s.so", cache_dir, key.wasm_sha256);
	if (pw_file_write_atomic(so, art.data, art.len, 0644) < 0)
		goto out;
	memset(&expect, 0, sizeof expect);
	expect.abi_version = PW_ARTIFACT_ABI_VERSION;
	memcpy(expect.engine_hash, key.engine_hash, sizeof key.engine_hash);
	memcpy(expect.wasm_sha256, key.wasm_sha256, sizeof key.wasm_sha256);

	for (int i = -1; i < runs; i++) {   /* round -1 warms the page cache */
		pw_buf bytes = PW_BUF_INIT;
		pw_artifact *a = NULL;
		pw_instance *inst = NULL;
		void *dl;
		double t0 = pw_now(), t1, t2, t3, ta = 0, tb = 0;

		pw_buf_free(&art);
		if (pw_cache_get_or_compile(c, e, wasm.data, wasm.len, host, NULL, &art, &res) < 0 || res.tier != 0 ||
		    (ta = pw_now(), pw_artifact_load(&a, art.data, art.len, &expect, host) < 0) ||
		    (tb = pw_now(), pw_instance_new(&inst, a, NULL) < 0)) {
			if (res.tier != 0)
				pw_error_set(PW_ERROR, "not a cache hit");
			pw_instance_free(inst);
			pw_artifact_free(a);
			goto out;
		}
		t1 = pw_now();
		pw_instance_free(inst);
		pw_artifact_free(a);

		{   /* the key's share of the lookup: sha256 of the wasm */
			char hex[PW_SHA256_HEX_LEN + 1];
			double k0 = pw_now();
			pw_sha256_hex(wasm.data, wasm.len, hex);
			if (i >= 0)
				kh[i] = pw_now() - k0;
		}
		t2 = pw_now();
		if (pw_file_read(so, 0, &bytes) < 0)
			goto out;
		dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
		t3 = pw_now();
		pw_buf_free(&bytes);
		if (!dl) {
			pw_error_set(PW_ERROR, "dlopen %s: %s", so, dlerror());
			goto out;
		}
		dlclose(dl);
		if (i >= 0) {
			load[i] = t1 - t0;
			get[i] = ta - t0;
			dlo[i] = tb - ta;
			floor_[i] = t3 - t2;
		}
	}
	{
		double l = median(load, runs), f = median(floor_, runs), g = median(get, runs), d = median(dlo, runs);
		double k = median(kh, runs), in = l - g - d;
		printf("| %s | %zu | %zu | %.2f | %.2f | %.2f (%.2f) / %.2f / %.2f | %.2f | %.2f | %.2f | %.0f |\n", name,
		       wasm.len / 1024, art.len / 1024, compile_s, l * 1e3, g * 1e3, k * 1e3, d * 1e3,
		       in > 0 ? in * 1e3 : 0, f * 1e3, l / f, (l - (in > 0 ? in : 0)) / f, compile_s / l);
		fflush(stdout);
	}
	rc = 0;
out:
	if (rc < 0) {
		printf("| %s | %zu | - | - | - | - | - | - | - | - |\n", name, wasm.len / 1024);
		fprintf(stderr, "bench_cache: %s: %s\n", name, pw_error_last());
	}
	pw_cache_free(c);
	/* host tables are leaked on purpose: loaded artifacts were bound to them */
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	free(load);
	free(floor_);
	free(get);
	free(dlo);
	free(kh);
	return rc;
}

int main(int argc, char **argv)
{
	pw_engine *e = NULL;
	int runs;

	if (argc < 4) {
		fprintf(stderr, "usage: bench_cache CACHE_DIR RUNS MODULE.wasm...\n");
		return 2;
	}
	runs = atoi(argv[2]);
	if (runs < 1 || pw_mkdirs(argv[1], 0755) < 0 || pw_engine_new(&e, NULL) < 0) {
		fprintf(stderr, "bench_cache: %s\n", runs < 1 ? "RUNS must be >= 1" : pw_error_last());
		return 1;
	}
	pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);
	printf("engine %.16s...\n\n", pw_engine_hash(e));
	printf("| module | wasm KiB | artifact KiB | compile s | load ms | lookup+verify (of which wasm sha256) / memfd+dlopen / instantiate ms | floor ms | load/floor | load without instantiate/floor | compile/load |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 3; i < argc; i++)
		bench_one(e, argv[1], runs, argv[i]);
	pw_engine_free(e);
	return 0;
}
