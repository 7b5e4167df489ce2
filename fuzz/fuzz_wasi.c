/*
 * Fuzz target for the WASI host functions (src/engine/wasi.c). A policy is
 * outside input, and WASI reads structures out of its memory (iovec arrays,
 * poll subscriptions, pointer/length pairs), so each input drives one call with
 * fuzzer-chosen arguments over fuzzer-chosen guest memory: any result is fine,
 * a host crash or out-of-bounds access is the bug. The calls go through a real
 * artifact of tests/fixtures/wat/wasm_wasi_calls.wat (compiled once, on first
 * use; found via $PREWARM_FIXTURES, else ./fixtures as in a build directory).
 * Every instance gets a read-only preopen (fd 3, named ".") of a small tree made
 * once in a temp dir: a file, a subdirectory, symlinks inside and out, so
 * path_open, fd_readdir, path_filestat_get and friends run on real files with
 * fuzzer-chosen paths and buffers; before the fuzzed call, fd 4 is that tree's
 * "file" and fd 5 its "sub" directory (opened through path_open with scratch
 * bytes at the end of memory), so fd_read, fd_seek, fd_readdir... have open
 * files to work on. Nothing may change in that tree.
 *
 * Input: byte 0 picks the export, bytes 1..72 are nine little-endian u64
 * arguments, byte 73 picks how much of the rest is stdin, the rest is copied
 * to the start of guest memory. A 50 ms deadline bounds sleeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prewarm/engine.h"
#include "prewarm/util.h"
#include "prewarm/wasi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pw_engine *g_engine;
static pw_imports *g_host;
static pw_artifact *g_art;
static int g_failed;
static char g_dir[512];   /* the preopened tree */

static void tree_remove(void)
{
	static const char *const names[] = { "sub/inner", "sub", "file", "in", "out", "loop" };
	char p[700];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
		if (unlink(p) != 0)
			rmdir(p);
	}
	rmdir(g_dir);
}

static void tree_make(void)
{
	const char *t = getenv("TMPDIR");
	char p[700];
	FILE *f;
	snprintf(g_dir, sizeof g_dir, "%s/prewarm-fuzz-wasi.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(g_dir))
		abort();
	atexit(tree_remove);
	snprintf(p, sizeof p, "%s/file", g_dir);
	if (!(f = fopen(p, "w")))
		abort();
	fputs("some file content\n", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/sub", g_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/sub/inner", g_dir);
	if ((f = fopen(p, "w")))
		fclose(f);
	snprintf(p, sizeof p, "%s/in", g_dir);
	if (symlink("sub/inner", p) != 0)
		abort();
	snprintf(p, sizeof p, "%s/out", g_dir);
	if (symlink("/etc", p) != 0)
		abort();
	snprintf(p, sizeof p, "%s/loop", g_dir);
	if (symlink("loop", p) != 0)
		abort();
}

typedef struct fuzz_host {
	pw_wasi_ctx *wasi;
} fuzz_host;

static void discard(void *cb_data, int fd, const uint8_t *p, size_t n)
{
	(void)cb_data; (void)fd; (void)p; (void)n;
}

static int setup(void)
{
	char path[4096];
	const char *dir = getenv("PREWARM_FIXTURES");
	pw_buf wasm = PW_BUF_INIT, art = PW_BUF_INIT;
	snprintf(path, sizeof path, "%s/wasm_wasi_calls.wasm", dir && *dir ? dir : "fixtures");
	int rc = pw_file_read(path, 0, &wasm);
	if (!rc)
		rc = pw_imports_new(&g_host);
	if (!rc)
		rc = pw_wasi_add_imports(g_host);
	if (!rc)
		rc = pw_engine_new(&g_engine, NULL);
	if (!rc)
		rc = pw_engine_compile(g_engine, wasm.data, wasm.len, g_host, &art, NULL);
	if (!rc)
		rc = pw_artifact_load(&g_art, art.data, art.len, NULL, g_host);
	if (!rc)
		tree_make();
	pw_buf_free(&wasm);
	pw_buf_free(&art);
	if (rc) {
		fprintf(stderr, "fuzz_wasi: setup (%s): %s\n", path, pw_error_last());
		abort();   /* a fuzz run without its target would prove nothing */
	}
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t hdr = 1 + 9 * 8 + 1;
	pw_wasi_ctx ctx;
	fuzz_host host = { &ctx };
	pw_instance *inst = NULL;
	char *argv[] = { (char *)"fuzz", (char *)"arg one", NULL };
	char *envp[] = { (char *)"K=V", NULL };
	pw_val args[9], res[1];
	uint64_t msize;

	if (!g_art && !g_failed)
		g_failed = setup();
	if (size < hdr)
		return 0;
	size_t nfuncs = pw_artifact_export_count(g_art);
	const pw_func_info *f = NULL;
	for (size_t k = 0; k < nfuncs && !f; k++) {
		const pw_func_info *c = pw_artifact_export((pw_artifact *)g_art, (data[0] + k) % nfuncs);
		/* pN_* wrappers only: _start would proc_exit, set_code is not WASI */
		if (c && c->name[0] == 'p' && c->name[2] == '_')
			f = c;
	}
	if (!f)
		return 0;
	for (int i = 0; i < 9; i++)
		args[i] = le64(data + 1 + 8 * i);

	pw_wasi_ctx_init(&ctx);
	ctx.argc = 2; ctx.argv = argv;
	ctx.envc = 1; ctx.envp = envp;
	ctx.write_cb = discard;
	size_t rest = size - hdr, nin = rest ? data[hdr - 1] % (rest + 1) : 0;
	ctx.stdin_data = data + hdr;
	ctx.stdin_len = nin;
	if (pw_wasi_preopen(&ctx, g_dir, ".") != 0)
		abort();

	pw_instance_opts o = { .host_data = &host };
	if (pw_instance_new(&inst, g_art, &o) != 0)
		abort();
	uint8_t *mem = pw_instance_memory(inst, &msize);
	/* fd 4 = "file", fd 5 = "sub", opened with scratch bytes at the end of memory */
	static const char *const opens[] = { "file", "sub" };
	for (int k = 0; k < 2; k++) {
		uint64_t at = msize - 64;
		size_t l = strlen(opens[k]);
		memcpy(mem + at, opens[k], l);
		pw_val oa[9] = { 3, 0, at, l, 0, 0x2026, 0, 0, at + 32 }, or[1] = { 0 };
		if (pw_instance_call(inst, "p1_path_open", oa, 9, or, 1) != 0 || or[0] != 0)
			abort();   /* the tree is ours: these opens must work */
	}
	memcpy(mem, data + hdr, rest < msize ? rest : msize);
	memset(mem + msize - 64, 0, 64);
	pw_instance_set_deadline(inst, pw_now() + 0.05);
	int rc = pw_instance_call(inst, f->name, args, f->nparams, res, 1);
	if (rc != 0 && rc != PW_ETIMEOUT) {
		fprintf(stderr, "fuzz_wasi: %s: %s\n", f->name, pw_error_last());
		abort();   /* WASI calls return errno values; only a deadline may stop them */
	}
	pw_instance_free(inst);
	pw_wasi_ctx_release(&ctx);
	return 0;
}
