/*
 * The compile pipeline: wasm bytes -> checks -> wasm2c -> loop-head patch ->
 * shim -> cc -> artifact bytes. Each compile runs in its own temp directory
 * with fixed file names (module.wasm, wasm-rt.h, m.c, m.h, shim.c, a.so) and
 * relative paths, without debug info or build ids, so the same (engine, wasm)
 * gives byte-identical artifacts wherever it runs. The tools' output goes into
 * the error message; the directory is always removed (unless keep_tmp). Its name carries the
 * compiling process's pid ("prewarm-compile-<pid>-XXXXXX"), so the directories of a process
 * killed mid-compile (kill -9, the OOM killer) are found and removed by the next server start
 * (pw_engine_sweep_tmp).
 * The quick tier compiles m.c + shim.c with tcc into one relocatable m.o and
 * links it with ld (the optimized tier's cc links itself).
 *
 * The patch of the generated C adds WASM_RT_LOOP_CHECK after every `w2c_L<n>:`
 * label (wasm2c emits one per wasm `loop`), so a running call can be interrupted
 * (timeouts) even when it never calls a function, and redefines CALL_INDIRECT
 * so the three call_indirect failures trap with the spec's three reasons. For the
 * quick tier it also rewrites f32.neg / f64.neg (`x = -(x);`) into a sign-bit flip:
 * tcc computes -x as -0.0 - x, which quiets a signalling NaN and keeps a NaN's
 * sign, where WebAssembly flips the sign bit and nothing else. And it swaps
 * wasm2c's `init_memories(instance); init_tables(instance);` in the instantiate
 * function: element segments are written before data segments, the spec's order,
 * which shows when a data segment traps after an element segment stored into an
 * imported table (the stored functions stay).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine_int.h"

#define COMPILE_DIR_PREFIX "prewarm-compile-"
#define MAX_TOOL_OUTPUT (64 * 1024)
#define MAX_MSG_OUTPUT 2000

static bool is_loop_label(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	if (n - i < 7 || memcmp(s + i, "w2c_L", 5) != 0)
		return false;
	i += 5;
	size_t d = i;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == d || i >= n || s[i] != ':')
		return false;
	for (i++; i < n; i++)
		if (s[i] != ' ')
			return false;
	return true;
}

static const char ci_redefine[] =
	"#undef CALL_INDIRECT\n"
	"#define CALL_INDIRECT(table, t, ft, x, ...) \\\n"
	"  (wasm_rt_pw_check_indirect(&(table), (x), func_types[ft]), ((t)(table).data[x].func)(__VA_ARGS__))\n";

/* "w2c_f3 = -(w2c_f3);" (wasm2c's f32.neg / f64.neg, with the f / d prefix of its float
 * stack variables): 'f' or 'd' and the name's length, else 0. */
static char float_neg(const uint8_t *s, size_t n, size_t *name_at, size_t *name_len)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	size_t b = i;
	if (n - i < 6 || memcmp(s + i, "w2c_", 4) != 0 || (s[i + 4] != 'f' && s[i + 4] != 'd'))
		return 0;
	i += 5;
	while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
		i++;
	size_t l = i - b;
	if (l == 5 || n - i != 7 + l || memcmp(s + i, " = -(", 5) != 0 || memcmp(s + i + 5, s + b, l) != 0 ||
	    memcmp(s + i + 5 + l, ");", 2) != 0)
		return 0;
	*name_at = b;
	*name_len = l;
	return (char)s[b + 4];
}

/* The two lines of wasm2c's instantiate function the patch swaps (see the top). */
static const char init_memories_line[] = "  init_memories(instance);";
static const char init_tables_line[] = "  init_tables(instance);";

static bool line_is(const uint8_t *line, size_t l, const char *text)
{
	return l == strlen(text) && !memcmp(line, text, l);
}

int pw_compile_patch_loops(const uint8_t *c, size_t len, bool bit_neg, pw_buf *out, size_t *nloops)
{
	size_t count = 0, start = 0;
	bool in_ci = false;
	bool held_memories = false;   /* init_memories line seen, not written yet */
	if (pw_buf_reserve(out, len + len / 16 + 256))
		return pw_error_set(PW_ENOMEM, "compile: out of memory patching the generated C");
	while (start < len) {
		const uint8_t *nl = memchr(c + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - c) : len;
		const uint8_t *line = c + start;
		size_t l = end - start;
		size_t na, nl_;
		char fk = bit_neg ? float_neg(line, l, &na, &nl_) : 0;
		if (held_memories && !line_is(line, l, init_tables_line)) {
			pw_buf_printf(out, "%s\n", init_memories_line);
			held_memories = false;
		}
		if (line_is(line, l, init_memories_line) && nl) {
			held_memories = true;
			start = end + 1;
			continue;
		}
		if (fk)
			pw_buf_printf(out, "%.*s%.*s = wasm_rt_pw_neg%c(%.*s);", (int)na, (const char *)line, (int)nl_,
			              (const char *)line + na, fk, (int)nl_, (const char *)line + na);
		else
			pw_buf_append(out, line, l);
		if (is_loop_label(line, l)) {
			pw_buf_puts(out, " WASM_RT_LOOP_CHECK;");
			count++;
		}
		if (nl)
			pw_buf_puts(out, "\n");
		if (held_memories) {
			pw_buf_printf(out, "%s\n", init_memories_line);
			held_memories = false;
		}
		if (l >= 22 && !memcmp(line, "#define CALL_INDIRECT(", 22))
			in_ci = true;
		if (in_ci && (l == 0 || line[l - 1] != '\\')) {
			/* end of wasm2c's definition: replace it with one telling the three
			 * failures apart (undefined element, null element, type mismatch) */
			if (!nl)
				pw_buf_puts(out, "\n");
			pw_buf_puts(out, ci_redefine);
			in_ci = false;
		}
		start = end + 1;
	}
	if (held_memories)
		pw_buf_printf(out, "%s\n", init_memories_line);
	if (nloops)
		*nloops = count;
	return out->data || len == 0 ? 0 : pw_error_set(PW_ENOMEM, "compile: out of memory");
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096 + 32];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return pw_error_set_errno(PW_EIO, "compile: open %s", path);
	size_t w = len ? fwrite(data, 1, len, f) : 0;
	int bad = w != len;
	if (fclose(f) != 0)
		bad = 1;
	if (bad)
		return pw_error_set_errno(PW_EIO, "compile: write %s", path);
	return 0;
}

/* Runs a tool in dir; a failure becomes an error with the tool's output. */
static int run_tool(char *const argv[], const char *dir, const char *what, double *seconds,
                    const atomic_int *cancel)
{
	pw_buf o = PW_BUF_INIT;
	int st = 0;
	double t0 = pw_now();
	int rc = pw_proc_run_ex(argv, dir, &o, MAX_TOOL_OUTPUT, &st, cancel);
	*seconds += pw_now() - t0;
	if (rc) {
		pw_buf_free(&o);
		return rc == PW_ECANCELED ? rc : pw_error_prefix("compile: %s", what);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char sb[96];
		const char *txt = o.data ? (const char *)o.data : "";
		size_t n = strlen(txt);
		while (n && (txt[n - 1] == '\n' || txt[n - 1] == ' '))
			n--;
		rc = pw_error_set(PW_ERROR, "compile: %s '%s' failed (%s)%s%.*s%s", what, argv[0],
		                  pw_proc_status_str(st, sb, sizeof sb), n ? ": " : "",
		                  (int)(n > MAX_MSG_OUTPUT ? MAX_MSG_OUTPUT : n), txt, n > MAX_MSG_OUTPUT ? "..." : "");
		pw_buf_free(&o);
		return rc;
	}
	pw_buf_free(&o);
	return 0;
}

/* Runs command line `cmd` (split on blanks) followed by `flags` and `args` (both
 * NULL-terminated; flags may be NULL) in dir. */
static int run_cmd(const char *cmd, char *const *flags, char *const *args, const char *dir, const char *what,
                   double *seconds, const atomic_int *cancel)
{
	size_t n, nf = 0, na = 0;
	while (flags && flags[nf])
		nf++;
	while (args[na])
		na++;
	char **words = pw_proc_split(cmd, &n);
	char **argv = words ? calloc(n + nf + na + 1, sizeof *argv) : NULL;
	if (!argv) {
		free(words);
		return pw_error_set(PW_ENOMEM, "compile: out of memory");
	}
	memcpy(argv, words, n * sizeof *argv);
	if (nf)
		memcpy(argv + n, flags, nf * sizeof *argv);
	memcpy(argv + n + nf, args, na * sizeof *argv);
	int rc = run_tool(argv, dir, what, seconds, cancel);
	free(argv);
	free(words);
	return rc;
}

static int compile_in(pw_engine *e, const char *dir, const uint8_t *wasm, size_t len, const pw_wasm_module *m,
                      const char *wasm_hex, const atomic_int *cancel, pw_buf *artifact, pw_compile_stats *st)
{
	int rc;
	if ((rc = write_file(dir, "module.wasm", wasm, len)) ||
	    (rc = write_file(dir, "wasm-rt.h", pw_rt_header_text, pw_rt_header_len)))
		return rc;
	pw_buf shim = PW_BUF_INIT;
	rc = pw_shim_generate(&shim, m, e->hash, wasm_hex);
	if (!rc)
		rc = write_file(dir, "shim.c", shim.data, shim.len);
	pw_buf_free(&shim);
	if (rc)
		return rc;

	char *const w2c_args[] = { "-n", "m", "module.wasm", "-o", "m.c", NULL };
	if ((rc = run_cmd(e->wasm2c, NULL, w2c_args, dir, "translation with", &st->translate_seconds, cancel)))
		return rc;

	char path[4096 + 32];
	snprintf(path, sizeof path, "%s/m.c", dir);
	pw_buf c = PW_BUF_INIT, patched = PW_BUF_INIT;
	if ((rc = pw_file_read(path, 0, &c))) {
		pw_buf_free(&c);
		return rc;
	}
	st->c_bytes = c.len;
	bool quick = e->tier == PW_TIER_QUICK;
	rc = pw_compile_patch_loops(c.data, c.len, quick, &patched, NULL);
	pw_buf_free(&c);
	if (!rc)
		rc = write_file(dir, "m.c", patched.data, patched.len);
	pw_buf_free(&patched);
	if (rc)
		return rc;

	/* optimized: cc links (-lm after the objects: --as-needed keeps it only if used);
	 * quick: tcc -r makes m.o, ld links it with tcc's runtime */
	char *const cc_args[] = { "m.c", "shim.c", "-o", quick ? "m.o" : "a.so", quick ? NULL : "-lm", NULL };
	if ((rc = run_cmd(e->cc, e->cflags, cc_args, dir, "C compile with", &st->cc_seconds, cancel)))
		return rc;
	char *const ld_args[] = { "-shared", "-z", "noexecstack", "--build-id=none", "-o", "a.so", "m.o",
	                          e->cc_runtime, "-lm", NULL };
	if (quick && (rc = run_cmd(e->linker, NULL, ld_args, dir, "link with", &st->cc_seconds, cancel)))
		return rc;
	snprintf(path, sizeof path, "%s/a.so", dir);
	size_t before = artifact->len;
	if ((rc = pw_file_read(path, 0, artifact)))
		return rc;
	st->artifact_bytes = artifact->len - before;
	return 0;
}

int pw_engine_compile(pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host,
                      pw_buf *artifact, pw_compile_stats *stats)
{
	return pw_engine_compile_ex(e, wasm, len, host, NULL, artifact, stats);
}

int pw_engine_compile_ex(pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host,
                         const pw_compile_opts *opts, pw_buf *artifact, pw_compile_stats *stats)
{
	if (e->pinned)
		return pw_error_set(PW_EUNSUPPORTED, "engine %s (%.12s) is pinned from a description: it loads "
		                    "artifacts from the cache but cannot compile (no %s compiler here)",
		                    pw_engine_tier_name(e->tier), e->hash, pw_engine_tier_name(e->tier));
	pw_compile_stats local = { 0 };
	pw_compile_stats *st = stats ? stats : &local;
	memset(st, 0, sizeof *st);
	double t0 = pw_now();
	pw_wasm_module *m = NULL;
	int rc = pw_wasm_parse(&m, wasm, len);
	if (rc)
		return rc;
	if ((rc = pw_engine_check_module(m, host))) {
		pw_wasm_module_free(m);
		return rc;
	}
	char wasm_hex[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(wasm, len, wasm_hex);

	char dir[4096];
	snprintf(dir, sizeof dir, "%s/" COMPILE_DIR_PREFIX "%ld-XXXXXX", e->tmp_dir, (long)getpid());
	if (!mkdtemp(dir)) {
		pw_wasm_module_free(m);
		return pw_error_set_errno(PW_EIO, "compile: mkdtemp %s", dir);
	}
	size_t before = artifact->len;
	rc = compile_in(e, dir, wasm, len, m, wasm_hex, opts ? opts->cancel : NULL, artifact, st);
	pw_wasm_module_free(m);
	if (rc)
		artifact->len = before;
	if (e->keep_tmp)
		pw_info("engine", "kept compile directory %s", dir);
	else
		pw_rmtree(dir);
	st->total_seconds = pw_now() - t0;
	return rc;
}

/* A compile directory's owner is gone: its pid does not exist, or is ours (a previous process
 * with the same pid, e.g. pid 1 of a restarted container; called before this process compiles). */
static bool compile_dir_orphaned(const char *name)
{
	char *end;
	long pid = strtol(name + strlen(COMPILE_DIR_PREFIX), &end, 10);
	if (end == name + strlen(COMPILE_DIR_PREFIX) || *end != '-' || pid <= 0)
		return false;   /* another naming (an older version's): not ours to judge */
	if (pid == (long)getpid())
		return true;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int pw_engine_sweep_tmp(const pw_engine *e)
{
	DIR *d = opendir(e->tmp_dir);
	struct dirent *de;
	int n = 0;
	char path[4096];
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, COMPILE_DIR_PREFIX, strlen(COMPILE_DIR_PREFIX)) != 0 ||
		    !compile_dir_orphaned(de->d_name))
			continue;
		snprintf(path, sizeof path, "%s/%s", e->tmp_dir, de->d_name);
		if (pw_rmtree(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
