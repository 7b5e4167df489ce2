/*
 * The engine: a probed toolchain (wasm2c + a C compiler + flags + Prewarm's
 * runtime header) and its compatibility hash. The description lists everything
 * that changes the native code or its ABI, in a fixed order, one "key: value"
 * per line; the hash is the sha256 of that text. Two hosts with equal hashes
 * can share artifacts; any difference gives another cache key. The compiler's
 * path is not part of it (only what it says it is), so `cc` and `gcc` of one
 * installation share artifacts.
 *
 * Two tiers share this code: `optimized` (cc = gcc by default, -O1, one
 * `cc -shared` per module) and `quick` (cc = tcc: `tcc -r` makes one relocatable
 * object in a fraction of a second; GNU ld links it, because tcc 0.9.27 writes
 * no PT_GNU_STACK header and glibc would then make every thread stack
 * executable). The tier is the first line of the description, so the two never
 * share a hash. A pinned engine takes its description from a file written by
 * `prewarm engine` on a host that has the toolchain: it loads that toolchain's
 * artifacts (from a cache) without being able to compile.
 *
 * Also here: pw_engine_check, the scan that refuses what wasm2c or the runtime
 * cannot handle before any tool runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine_int.h"

/* Defaults chosen from bench/compile (BENCHMARKS.md, "Engine: compile"). */
#define DEFAULT_CC "gcc"
#define DEFAULT_OPT "-O1"
#define DEFAULT_QUICK_CC "tcc"
#define DEFAULT_LINKER "ld"

static const char *const fixed_cflags[] = {
	"-shared", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing", "-DNDEBUG", "-w",
	"-Wl,--build-id=none", "-Wl,-z,noexecstack",
};
/* tcc: one relocatable object of m.c + shim.c (then linked by ld, see compile.c) */
static const char *const quick_cflags[] = { "-r", "-DNDEBUG", "-w" };

const char *pw_engine_tier_name(pw_engine_tier t)
{
	return t == PW_TIER_QUICK ? "quick" : "optimized";
}

int pw_engine_tier_parse(const char *s, pw_engine_tier *out)
{
	if (s && !strcmp(s, "quick"))
		*out = PW_TIER_QUICK;
	else if (s && !strcmp(s, "optimized"))
		*out = PW_TIER_OPTIMIZED;
	else
		return pw_error_set(PW_EINVALID, "unknown engine tier '%s' (expected quick or optimized)", s ? s : "");
	return 0;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *pick(const char *opt, const char *env, const char *dflt)
{
	if (opt && *opt)
		return opt;
	const char *e = getenv(env);
	if (e && *e)
		return e;
	return dflt;
}

/* Runs `cmd arg` (cmd split on blanks); 0 with its whole output in *o when it exits 0,
 * else an error naming the tool. */
static int run_probe(pw_buf *o, const char *cmd, const char *arg, const char *what)
{
	size_t argc;
	char **argv = pw_proc_split(cmd, &argc);
	if (!argv)
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	if (argc == 0) {
		free(argv);
		return pw_error_set(PW_EINVALID, "engine: empty %s command", what);
	}
	char **full = calloc(argc + 2, sizeof *full);
	if (!full) {
		free(argv);
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	}
	memcpy(full, argv, argc * sizeof *full);
	full[argc] = (char *)arg;
	int st = 0;
	int rc = pw_proc_run(full, NULL, o, 65536, &st);
	free(full);
	free(argv);
	if (rc)
		return pw_error_prefix("engine: %s '%s' not usable (install it or set the option)", what, cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char sb[64];
		return pw_error_set(PW_ERROR, "engine: '%s %s' failed (%s): %.200s", cmd, arg,
		                    pw_proc_status_str(st, sb, sizeof sb), o->data ? (char *)o->data : "");
	}
	return 0;
}

/* First line of a tool's output for `arg`, trimmed, into *out (malloc'd). */
static int probe(char **out, const char *cmd, const char *arg, const char *what)
{
	pw_buf o = PW_BUF_INIT;
	int rc = run_probe(&o, cmd, arg, what);
	if (rc) {
		pw_buf_free(&o);
		return rc;
	}
	char *s = o.data ? (char *)o.data : "";
	s[strcspn(s, "\r\n")] = 0;
	while (*s == ' ')
		s++;
	*out = strdup(s);
	pw_buf_free(&o);
	if (!*out || !**out) {
		free(*out);
		return pw_error_set(PW_ERROR, "engine: '%s %s' printed nothing", cmd, arg);
	}
	return 0;
}

static const char *cpu_target(const char *flags, char *buf, size_t n, const char *machine)
{
	const char *m = flags ? strstr(flags, "-march=") : NULL;
	if (!m && flags)
		m = strstr(flags, "-mcpu=");
	if (m) {
		size_t l = strcspn(m, " \t");
		snprintf(buf, n, "%.*s", (int)l, m);
	} else {
		snprintf(buf, n, "generic %.*s (no -march)", (int)strcspn(machine, "-"), machine);
	}
	return buf;
}

/* tcc's runtime library (the u64 <-> float helpers it calls), from the line after "libtcc1:"
 * in `tcc -print-search-dirs`: `tcc -r` does not link it, ld must. */
static int probe_tcc_runtime(char **out, const char *cc)
{
	pw_buf o = PW_BUF_INIT;
	int rc = run_probe(&o, cc, "-print-search-dirs", "C compiler");
	const char *l = rc == 0 && o.data ? strstr((const char *)o.data, "\nlibtcc1:\n") : NULL;
	*out = NULL;
	if (l) {
		l += 10;
		l += strspn(l, " ");
		size_t n = strcspn(l, "\n");
		*out = n ? strndup(l, n) : NULL;
	}
	pw_buf_free(&o);
	if (rc)
		return rc;
	if (!*out || access(*out, R_OK) != 0) {
		free(*out);
		*out = NULL;
		return pw_error_set(PW_ERROR, "engine: '%s -print-search-dirs' names no readable libtcc1.a "
		                    "(is tcc installed whole?)", cc);
	}
	return 0;
}

/* The toolchain's answers: from the probe cache when its key (every named tool's
 * identity) matches, else by running the tools (then stored for the next start). */
static int probe_toolchain(pw_engine *e, const pw_engine_opts *opts, pw_probe_answer *pa)
{
	char key[PW_SHA256_HEX_LEN + 1];
	char *dir = opts->no_probe_cache ? NULL : pw_probe_cache_dir(opts->probe_cache_dir);
	bool quick = e->tier == PW_TIER_QUICK;
	bool keyed = dir && pw_probe_cache_key(e->wasm2c, e->cc, quick ? e->linker : NULL, key) == 0;
	if (keyed && pw_probe_cache_load(dir, key, pa) == 0 && (!quick || pa->runtime)) {
		e->probe_cached = true;
		free(dir);
		return 0;
	}
	pw_error_clear();
	int rc;
	pw_probe_answer_free(pa);
	if ((rc = probe(&pa->translator, e->wasm2c, "--version", "translator")) ||
	    (rc = probe(&pa->compiler, e->cc, quick ? "-v" : "--version", "C compiler")) ||
	    (rc = quick ? probe(&pa->machine, e->linker, "--version", "linker")
	                : probe(&pa->machine, e->cc, "-dumpmachine", "C compiler")) ||
	    (quick && (rc = probe_tcc_runtime(&pa->runtime, e->cc)))) {
		pw_probe_answer_free(pa);
		free(dir);
		return rc;
	}
	if (keyed)
		pw_probe_cache_store(dir, key, pa);
	free(dir);
	return 0;
}

/* The lines of a description that must be this binary's own for its artifacts to load. */
static int own_abi_lines(pw_buf *d, const char *hdr_hash)
{
	return pw_buf_printf(d,
		"artifact-abi: %d\n"
		"shim-abi: %d\n"
		"runtime-header-sha256: %s\n"
		"guard-pages: %s\n",
		PW_ARTIFACT_ABI_VERSION, WASM_RT_PW_SHIM_ABI, hdr_hash, pw_rt_guard_pages() ? "on" : "off");
}

/* The value of line "key: value" in a description, into buf; false when absent. */
static bool desc_value(const char *d, const char *key, char *buf, size_t n)
{
	size_t kl = strlen(key);
	for (const char *p = d; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ':' || p[kl + 1] != ' ')
			continue;
		const char *v = p + kl + 2;
		size_t l = strcspn(v, "\n");
		if (l >= n)
			return false;
		memcpy(buf, v, l);
		buf[l] = 0;
		return true;
	}
	return false;
}

/* A pinned engine: checks the text (see pw_engine_opts.pinned_description) and takes it. */
static int engine_pin(pw_engine *e, const char *text)
{
	size_t len = strlen(text);
	if (len == 0 || len > 16384 || text[len - 1] != '\n')
		return pw_error_set(PW_EINVALID, "pinned engine description: empty, too long or not ending in a newline");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 && text[i] != '\n')
			return pw_error_set(PW_EINVALID, "pinned engine description: control byte at offset %zu", i);
	char *d = strndup(text, len);
	if (!d)
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	/* an optional last line "hash: HEX" must agree with the rest */
	char *last = len >= 2 ? d + len - 2 : d;
	while (last > d && last[-1] != '\n')
		last--;
	char claimed[PW_SHA256_HEX_LEN + 1] = "";
	if (!strncmp(last, "hash: ", 6)) {
		snprintf(claimed, sizeof claimed, "%.*s", (int)strcspn(last + 6, "\n"), last + 6);
		*last = 0;
	}
	char v[256], want[256], hdr_hash[PW_SHA256_HEX_LEN + 1];
	int rc = 0;
	if (!desc_value(d, "prewarm-engine", v, sizeof v) || strcmp(v, "1") != 0)
		rc = pw_error_set(PW_EINVALID, "pinned engine description: no 'prewarm-engine: 1' line");
	else if (!desc_value(d, "tier", v, sizeof v) || strcmp(v, pw_engine_tier_name(e->tier)) != 0)
		rc = pw_error_set(PW_EMISMATCH, "pinned engine description is for tier '%s', not '%s'",
		                  desc_value(d, "tier", v, sizeof v) ? v : "(none)", pw_engine_tier_name(e->tier));
	pw_sha256_hex(pw_rt_header_text, pw_rt_header_len, hdr_hash);
	pw_buf own = PW_BUF_INIT;
	own_abi_lines(&own, hdr_hash);
	/* every ABI line of this binary must appear, with the same value */
	for (char *line = own.data ? (char *)own.data : ""; rc == 0 && *line;) {
		char *nl = strchr(line, '\n');
		char key[64];
		size_t kl = strcspn(line, ":");
		snprintf(key, sizeof key, "%.*s", (int)kl, line);
		snprintf(want, sizeof want, "%.*s", (int)(nl - line - kl - 2), line + kl + 2);
		if (!desc_value(d, key, v, sizeof v) || strcmp(v, want) != 0)
			rc = pw_error_set(PW_EMISMATCH, "pinned engine description: %s is '%s', this prewarm has '%s' "
			                  "(its artifacts cannot load here)", key, desc_value(d, key, v, sizeof v) ? v : "(none)",
			                  want);
		line = nl + 1;
	}
	pw_buf_free(&own);
	if (rc == 0) {
		pw_sha256_hex(d, strlen(d), e->hash);
		if (claimed[0] && strcmp(claimed, e->hash) != 0)
			rc = pw_error_set(PW_EMISMATCH, "pinned engine description: its hash line %.12s... is not the sha256 "
			                  "of its text (%.12s...): edited?", claimed, e->hash);
	}
	if (rc) {
		free(d);
		return rc;
	}
	e->description = d;
	e->pinned = true;
	return 0;
}

int pw_engine_new(pw_engine **out, const pw_engine_opts *opts)
{
	*out = NULL;
	pw_engine_opts none = { 0 };
	if (!opts)
		opts = &none;
	int rc = pw_runtime_init();
	if (rc)
		return rc;
	pw_engine *e = calloc(1, sizeof *e);
	if (!e)
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	e->tier = opts->tier;
	if (e->tier == PW_TIER_DEFAULT) {
		const char *t = getenv("PREWARM_TIER");
		e->tier = PW_TIER_OPTIMIZED;
		if (t && *t && (rc = pw_engine_tier_parse(t, &e->tier)) < 0) {
			pw_error_prefix("PREWARM_TIER");
			free(e);
			return rc;
		}
	}
	bool quick = e->tier == PW_TIER_QUICK;
	const char *tmp = opts->tmp_dir && *opts->tmp_dir ? opts->tmp_dir : getenv("TMPDIR");
	e->tmp_dir = xstrdup(tmp && *tmp ? tmp : "/tmp");
	e->keep_tmp = opts->keep_tmp;
	if (opts->pinned_description) {
		if (!e->tmp_dir || (rc = engine_pin(e, opts->pinned_description)) < 0) {
			pw_engine_free(e);
			return rc < 0 ? rc : pw_error_set(PW_ENOMEM, "engine: out of memory");
		}
		*out = e;
		return 0;
	}
	e->cc = xstrdup(quick ? pick(opts->cc, "PREWARM_QUICK_CC", DEFAULT_QUICK_CC) : pick(opts->cc, "PREWARM_CC", DEFAULT_CC));
	e->opt_level = xstrdup(quick ? "" : pick(opts->opt_level, "PREWARM_OPT", DEFAULT_OPT));
	e->extra_cflags = xstrdup(pick(opts->extra_cflags, quick ? "PREWARM_QUICK_CFLAGS" : "PREWARM_CFLAGS", ""));
	e->wasm2c = xstrdup(pick(opts->wasm2c, "PREWARM_WASM2C", "wasm2c"));
	e->linker = xstrdup(quick ? pick(opts->linker, "PREWARM_LD", DEFAULT_LINKER) : "");
	if (!e->cc || !e->opt_level || !e->extra_cflags || !e->wasm2c || !e->tmp_dir || !e->linker) {
		pw_engine_free(e);
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	}
	if (!quick && (strncmp(e->opt_level, "-O", 2) != 0 || strlen(e->opt_level) > 4 || strchr(e->opt_level, ' '))) {
		rc = pw_error_set(PW_EINVALID, "engine: bad optimization level '%s' (expected -O0, -O1, -O2, -O3, -Os)",
		                  e->opt_level);
		pw_engine_free(e);
		return rc;
	}

	pw_probe_answer pa = { 0 };
	if ((rc = probe_toolchain(e, opts, &pa))) {
		pw_engine_free(e);
		return rc;
	}
	const char *w2c_ver = pa.translator, *cc_ver = pa.compiler, *cc_machine = pa.machine;
	if (quick && !(e->cc_runtime = strdup(pa.runtime))) {
		pw_probe_answer_free(&pa);
		pw_engine_free(e);
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	}

	/* The full flag list: opt level, fixed flags, memcheck mode, extra flags. */
	pw_buf fl = PW_BUF_INIT;
	if (quick) {
		for (size_t i = 0; i < sizeof quick_cflags / sizeof quick_cflags[0]; i++)
			pw_buf_printf(&fl, "%s%s", i ? " " : "", quick_cflags[i]);
	} else {
		pw_buf_puts(&fl, e->opt_level);
		for (size_t i = 0; i < sizeof fixed_cflags / sizeof fixed_cflags[0]; i++)
			pw_buf_printf(&fl, " %s", fixed_cflags[i]);
	}
	pw_buf_printf(&fl, " -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=%d", pw_rt_guard_pages() ? 1 : 0);
	if (*e->extra_cflags)
		pw_buf_printf(&fl, " %s", e->extra_cflags);
	e->cflags = pw_proc_split(fl.data ? (char *)fl.data : "", &e->ncflags);

	char hdr_hash[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(pw_rt_header_text, pw_rt_header_len, hdr_hash);
	char cpu[128];
	pw_buf d = PW_BUF_INIT;
	pw_buf_printf(&d,
		"prewarm-engine: 1\n"
		"tier: %s\n"
		"translator: wasm2c %s\n"
		"translator-flags: -n m\n"
		"compiler: %s\n",
		pw_engine_tier_name(e->tier), w2c_ver, cc_ver);
	if (quick)
		pw_buf_printf(&d,
			"linker: %s\n"
			"cflags: %s\n"
			"link: tcc m.c shim.c -o m.o; ld -shared -z noexecstack --build-id=none m.o libtcc1.a -o a.so -lm\n"
			"cpu-target: generic (tcc has no -march)\n",
			cc_machine, (char *)fl.data);
	else
		pw_buf_printf(&d,
			"compiler-target: %s\n"
			"cflags: %s\n"
			"link: m.c shim.c -o a.so -lm\n"
			"cpu-target: %s\n",
			cc_machine, (char *)fl.data, cpu_target(e->extra_cflags, cpu, sizeof cpu, cc_machine));
	own_abi_lines(&d, hdr_hash);
	pw_buf_puts(&d,
		"features: mvp mutable-globals sat-float-to-int sign-extension multi-value bulk-memory reference-types\n"
		"refused: simd threads exceptions tail-call memory64 multi-memory component-model\n"
		"interrupts: loop-heads function-entry\n");
	pw_probe_answer_free(&pa);
	pw_buf_free(&fl);
	if (!d.data || !e->cflags) {
		pw_buf_free(&d);
		pw_engine_free(e);
		return pw_error_set(PW_ENOMEM, "engine: out of memory");
	}
	e->description = (char *)pw_buf_detach(&d, NULL);
	pw_sha256_hex(e->description, strlen(e->description), e->hash);
	*out = e;
	return 0;
}

void pw_engine_free(pw_engine *e)
{
	if (!e)
		return;
	free(e->cc);
	free(e->linker);
	free(e->cc_runtime);
	free(e->opt_level);
	free(e->extra_cflags);
	free(e->wasm2c);
	free(e->tmp_dir);
	free(e->description);
	free(e->cflags);
	free(e);
}

const char *pw_engine_description(const pw_engine *e)
{
	return e->description;
}

const char *pw_engine_hash(const pw_engine *e)
{
	return e->hash;
}

bool pw_engine_probe_cached(const pw_engine *e)
{
	return e->probe_cached;
}

pw_engine_tier pw_engine_get_tier(const pw_engine *e)
{
	return e->tier;
}

bool pw_engine_can_compile(const pw_engine *e)
{
	return !e->pinned;
}

/* gcc -O1 measured ~26 s per MB of code on one core; a loaded node is slower. */
#define OPTIMIZED_SECONDS_FLOOR 10.0
#define OPTIMIZED_SECONDS_PER_MIB 60.0

double pw_engine_compile_seconds_estimate(const pw_engine *e, size_t wasm_len)
{
	if (!e || e->tier == PW_TIER_QUICK)
		return 0;
	return OPTIMIZED_SECONDS_FLOOR + OPTIMIZED_SECONDS_PER_MIB * (double)wasm_len / (1024.0 * 1024.0);
}

static const struct {
	uint32_t bit;
	const char *name;
} refused[] = {
	{ PW_FEAT_SIMD, "SIMD (v128)" },
	{ PW_FEAT_THREADS, "threads (shared memory, atomics)" },
	{ PW_FEAT_EXCEPTIONS, "exception handling" },
	{ PW_FEAT_TAIL_CALL, "tail calls" },
	{ PW_FEAT_MEMORY64, "memory64" },
	{ PW_FEAT_MULTI_MEMORY, "multiple memories" },
};

/* The module-level checks (features, import kinds, host imports); `m` is parsed. */
static int check_module(const pw_wasm_module *m, const pw_imports *host)
{
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (m->features & refused[i].bit)
			return pw_error_set(PW_EUNSUPPORTED, "module uses %s, which the engine does not support",
			                    refused[i].name);
	int rc = pw_shim_check(m);
	if (rc || !host)
		return rc;
	pw_buf miss = PW_BUF_INIT;
	size_t nmiss = 0;
	for (uint32_t i = 0; i < m->nimports; i++) {
		const pw_wasm_import *im = &m->imports[i];
		if (pw_shim_import_repeats(m, i))
			continue;
		if (im->kind != PW_WASM_FUNC) {
			wasm_rt_pw_extern_import want = pw_extern_import_of(im);
			if (!pw_extern_check(pw_imports_find_extern(host, im->module, im->name), &want, &miss, nmiss))
				nmiss++;
			continue;
		}
		char sig[512];
		pw_wasm_sig_string(&m->types[im->type_index], sig, sizeof sig);
		const pw_host_func *h = pw_imports_find(host, im->module, im->name);
		if (h && !strcmp(h->sig, sig))
			continue;
		if (h)
			pw_buf_printf(&miss, "%s%s.%s (%s; the host has %s)", nmiss ? ", " : "", im->module, im->name,
			              sig, h->sig);
		else
			pw_buf_printf(&miss, "%s%s.%s (%s)", nmiss ? ", " : "", im->module, im->name, sig);
		nmiss++;
	}
	if (nmiss) {
		rc = pw_error_set(PW_EUNSUPPORTED, "%s %s", nmiss == 1 ? "unknown import" : "unknown imports",
		                  (char *)miss.data);
		pw_buf_free(&miss);
		return rc;
	}
	return 0;
}

int pw_engine_check(const pw_engine *e, const uint8_t *wasm, size_t len, const pw_imports *host)
{
	pw_wasm_module *m = NULL;
	int rc = pw_wasm_parse(&m, wasm, len);
	if (rc)
		return rc;
	rc = check_module(m, host);
	pw_wasm_module_free(m);
	return rc;
}

int pw_engine_check_module(const pw_wasm_module *m, const pw_imports *host)
{
	return check_module(m, host);
}
