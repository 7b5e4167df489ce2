/*
 * A small real program for the cache's multi-process tests (the shell tests in tests/cache), built from
 * the same code the prewarm commands use (cache_opts + the tiered cache + the engine):
 *
 *   cache_tool get WASM [cache options]
 *       looks WASM up (or compiles and publishes it), loads the artifact, calls its
 *       `answer` export; prints "hit <tier>" or "compiled", then "answer=<N>"
 *   cache_tool compile WASM OUT
 *       writes the artifact bytes of WASM to OUT (no cache)
 *   cache_tool put-loop ARTIFACT PAD_MIB --cache-dir DIR
 *       puts the artifact, padded with PAD_MIB MiB of zeros (so each write takes a while),
 *       into the local cache under its own key, again and again until killed: the crash
 *       test SIGKILLs it at random instants
 * Exit codes: 0 ok, 1 failure (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cache_opts.h"
#include "prewarm/cache.h"
#include "prewarm/engine.h"

static int usage(void)
{
	fprintf(stderr, "usage: cache_tool get WASM [cache options] | compile WASM OUT | "
	                "put-loop ARTIFACT PAD_MIB --cache-dir DIR\n");
	return 2;
}

static int cmd_get(int argc, char **argv)
{
	pw_cache_cli_opts co;
	pw_cache *cache = NULL;
	pw_engine *e = NULL;
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	pw_cache_result res;
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	pw_artifact_info expect;
	pw_val r = 0;
	int status = 1;

	pw_cache_cli_init(&co);
	for (int i = 3; i < argc; i++) {
		int p = pw_cache_cli_parse(&co, argc, argv, &i);
		if (p < 0)
			return 2;
		if (p == 0) {
			fprintf(stderr, "cache_tool: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (pw_file_read(argv[2], 0, &wasm) < 0 || pw_engine_new(&e, NULL) < 0 ||
	    pw_cache_cli_open(&co, &cache) < 0)
		goto out;
	if (pw_cache_get_or_compile(cache, e, wasm.data, wasm.len, NULL, NULL, &art, &res) < 0)
		goto out;
	if (res.tier >= 0)
		printf("hit %s\n", res.tier_name);
	else
		printf("compiled\n");
	memset(&expect, 0, sizeof expect);
	expect.abi_version = PW_ARTIFACT_ABI_VERSION;
	memcpy(expect.engine_hash, pw_engine_hash(e), PW_SHA256_HEX_LEN + 1);
	pw_sha256_hex(wasm.data, wasm.len, expect.wasm_sha256);
	if (pw_artifact_load(&a, art.data, art.len, &expect, NULL) < 0 || pw_instance_new(&inst, a, NULL) < 0 ||
	    pw_instance_call(inst, "answer", NULL, 0, &r, 1) < 0)
		goto out;
	printf("answer=%u\n", (unsigned)r);
	status = 0;
out:
	if (status)
		fprintf(stderr, "cache_tool: %s\n", pw_error_last());
	pw_instance_free(inst);
	pw_artifact_free(a);
	pw_cache_free(cache);
	pw_engine_free(e);
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	pw_cache_cli_free(&co);
	fflush(stdout);
	return status;
}

static int cmd_compile(const char *in, const char *out)
{
	pw_engine *e = NULL;
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	int rc;

	rc = pw_file_read(in, 0, &wasm);
	if (rc == 0)
		rc = pw_engine_new(&e, NULL);
	if (rc == 0)
		rc = pw_engine_compile(e, wasm.data, wasm.len, NULL, &art, NULL);
	if (rc == 0)
		rc = pw_file_write_atomic(out, art.data, art.len, 0644);
	if (rc < 0)
		fprintf(stderr, "cache_tool: %s\n", pw_error_last());
	pw_engine_free(e);
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	return rc < 0 ? 1 : 0;
}

static int cmd_put_loop(int argc, char **argv)
{
	pw_cache_cli_opts co;
	pw_cache_backend *b = NULL;
	pw_cache_entry ent;
	pw_artifact_info info;
	long pad_mib;

	if (argc < 4)
		return usage();
	pad_mib = atol(argv[3]);
	pw_cache_cli_init(&co);
	for (int i = 4; i < argc; i++)
		if (pw_cache_cli_parse(&co, argc, argv, &i) <= 0)
			return usage();
	memset(&ent, 0, sizeof ent);
	if (pw_file_read(argv[2], 0, &ent.artifact) < 0 ||
	    pw_artifact_read_info(ent.artifact.data, ent.artifact.len, &info) < 0 ||
	    pw_buf_reserve(&ent.artifact, (size_t)pad_mib << 20) < 0 ||
	    pw_cache_cli_open_local(&co, &b) < 0) {
		fprintf(stderr, "cache_tool: %s\n", pw_error_last());
		return 1;
	}
	memset(ent.artifact.data + ent.artifact.len, 0, (size_t)pad_mib << 20);
	ent.artifact.len += (size_t)pad_mib << 20;
	memcpy(ent.meta.key.engine_hash, info.engine_hash, sizeof info.engine_hash);
	memcpy(ent.meta.key.wasm_sha256, info.wasm_sha256, sizeof info.wasm_sha256);
	pw_sha256_hex(ent.artifact.data, ent.artifact.len, ent.meta.artifact_sha256);
	ent.meta.artifact_size = ent.artifact.len;
	ent.meta.compile_seconds = 1;
	for (unsigned n = 0;; n++) {
		ent.meta.created = pw_wall_now();
		if (pw_cache_backend_put(b, &ent) < 0) {
			fprintf(stderr, "cache_tool: put: %s\n", pw_error_last());
			return 1;
		}
		if (n == 0) {
			printf("put\n");
			fflush(stdout);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "get"))
		return cmd_get(argc, argv);
	if (!strcmp(argv[1], "compile") && argc == 4)
		return cmd_compile(argv[2], argv[3]);
	if (!strcmp(argv[1], "put-loop"))
		return cmd_put_loop(argc, argv);
	return usage();
}
