/*
 * The probe cache: remembers what the toolchain said about itself
 * (`wasm2c --version`, `cc --version`, `cc -dumpmachine`) so that a warm start
 * computes the engine hash without spawning three processes (0.2-0.4 s on a
 * loaded machine). The cached answer is keyed by the identity of every
 * executable the two command lines name (resolved path as posix_spawnp would
 * find it, device, inode, size, mode, mtime and ctime in nanoseconds), the
 * command lines themselves and the locale variables that may change a tool's
 * output. Any change to a tool (an upgrade, a `touch`, a retargeted symlink, a
 * different PATH) gives another key and so a real probe. A command whose first
 * word cannot be resolved is never cached (the real probe reports the error).
 *
 * The file is outside input: it is read with a size bound and parsed strictly
 * (fixed header, fixed line order, the key repeated inside, no control bytes);
 * anything else is ignored and a real probe runs, whose answer then replaces
 * the file (written atomically). Writing is best effort: a read-only or missing
 * directory only costs the spawns. Limitation: what a tool runs internally
 * (a wrapper script's target, gcc's cc1) is not part of the key; only the
 * named executables are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"

#define PROBE_FILE_MAX 8192
#define PROBE_VALUE_MAX 1024
static const char probe_magic[] = "prewarm-engine-probe 1";

/* Resolves `word` the way posix_spawnp does (a name with '/' as is, else the first
 * executable regular file on PATH) into buf; 0 or -1. */
static int resolve_exec(const char *word, char *buf, size_t n, struct stat *st)
{
	if (strchr(word, '/')) {
		if ((size_t)snprintf(buf, n, "%s", word) >= n)
			return -1;
		return stat(buf, st) == 0 && S_ISREG(st->st_mode) && access(buf, X_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *p = path;;) {
		size_t l = strcspn(p, ":");
		int w = l ? snprintf(buf, n, "%.*s/%s", (int)l, p, word) : snprintf(buf, n, "./%s", word);
		if (w > 0 && (size_t)w < n && stat(buf, st) == 0 && S_ISREG(st->st_mode) && access(buf, X_OK) == 0)
			return 0;
		if (!p[l])
			return -1;
		p += l + 1;
	}
}

/* Appends one command line's identity to `k`; -1 when its program cannot be resolved. */
static int key_command(pw_buf *k, const char *what, const char *cmd)
{
	size_t argc;
	char **argv = pw_proc_split(cmd, &argc);
	if (!argv)
		return -1;
	int rc = argc ? 0 : -1;
	pw_buf_printf(k, "%s: %s\n", what, cmd);
	for (size_t i = 0; i < argc && rc == 0; i++) {
		char path[4096];
		struct stat st;
		if (argv[i][0] == '-' || resolve_exec(argv[i], path, sizeof path, &st) != 0) {
			if (i == 0)
				rc = -1;
			else
				pw_buf_printf(k, " word %zu: %s (not a file)\n", i, argv[i]);
			continue;
		}
		pw_buf_printf(k, " word %zu: %s dev=%llu ino=%llu size=%lld mode=%o mtime=%lld.%09ld ctime=%lld.%09ld\n",
		              i, path, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		              (long long)st.st_size, (unsigned)st.st_mode, (long long)st.st_mtim.tv_sec,
		              st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	}
	free(argv);
	return rc;
}

int pw_probe_cache_key(const char *wasm2c, const char *cc, const char *linker,
                       char key[PW_SHA256_HEX_LEN + 1])
{
	pw_buf k = PW_BUF_INIT;
	pw_buf_printf(&k, "%s\nprobes: %s\n", probe_magic,
	              linker ? "--version -v --version(linker)" : "--version --version -dumpmachine");
	int rc = key_command(&k, "translator", wasm2c);
	if (rc == 0)
		rc = key_command(&k, "compiler", cc);
	if (rc == 0 && linker)
		rc = key_command(&k, "linker", linker);
	static const char *const env[] = { "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE" };
	for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
		const char *v = getenv(env[i]);
		pw_buf_printf(&k, "%s=%s\n", env[i], v ? v : "(unset)");
	}
	if (rc == 0 && !k.data)
		rc = -1;
	if (rc == 0)
		pw_sha256_hex(k.data, k.len, key);
	pw_buf_free(&k);
	return rc;
}

/* A value the file format can hold: 1..PROBE_VALUE_MAX bytes, no control bytes. */
static bool value_ok(const char *s, size_t n)
{
	if (n == 0 || n > PROBE_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

char *pw_probe_cache_format(const char *key, const pw_probe_answer *a)
{
	if (!pw_is_sha256_hex(key) || !value_ok(a->translator, strlen(a->translator)) ||
	    !value_ok(a->compiler, strlen(a->compiler)) || !value_ok(a->machine, strlen(a->machine)))
		return NULL;
	if (a->runtime && !value_ok(a->runtime, strlen(a->runtime)))
		return NULL;
	pw_buf b = PW_BUF_INIT;
	pw_buf_printf(&b, "%s\nkey %s\ntranslator-version %s\ncompiler-version %s\ncompiler-machine %s\n",
	              probe_magic, key, a->translator, a->compiler, a->machine);
	if (a->runtime)
		pw_buf_printf(&b, "compiler-runtime %s\n", a->runtime);
	return (char *)pw_buf_detach(&b, NULL);
}

void pw_probe_answer_free(pw_probe_answer *a)
{
	free(a->translator);
	free(a->compiler);
	free(a->machine);
	free(a->runtime);
	a->translator = a->compiler = a->machine = a->runtime = NULL;
}

/* Takes the line at *p (which must start with `label` and a space) into a malloc'd
 * value; advances *p past its newline. NULL when malformed. */
static char *take_line(const char **p, const char *end, const char *label)
{
	size_t ll = strlen(label);
	const char *s = *p;
	if ((size_t)(end - s) <= ll || memcmp(s, label, ll) != 0 || s[ll] != ' ')
		return NULL;
	s += ll + 1;
	const char *nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl || !value_ok(s, (size_t)(nl - s)))
		return NULL;
	*p = nl + 1;
	return strndup(s, (size_t)(nl - s));
}

int pw_probe_cache_parse(const char *text, size_t len, const char *key, pw_probe_answer *out)
{
	memset(out, 0, sizeof *out);
	const char *p = text, *end = text + len;
	size_t ml = strlen(probe_magic);
	if (len > PROBE_FILE_MAX || len < ml + 1 || memcmp(p, probe_magic, ml) != 0 || p[ml] != '\n')
		return pw_error_set(PW_EINVALID, "engine probe cache: not a probe cache file");
	p += ml + 1;
	char *k = take_line(&p, end, "key");
	bool key_ok = k && pw_is_sha256_hex(k) && (!key || !strcmp(k, key));
	free(k);
	if (!key_ok)
		return pw_error_set(PW_EINVALID, "engine probe cache: missing or different key");
	out->translator = take_line(&p, end, "translator-version");
	out->compiler = out->translator ? take_line(&p, end, "compiler-version") : NULL;
	out->machine = out->compiler ? take_line(&p, end, "compiler-machine") : NULL;
	if (out->machine && p != end)
		out->runtime = take_line(&p, end, "compiler-runtime");
	if (!out->machine || p != end) {
		pw_probe_answer_free(out);
		return pw_error_set(PW_EINVALID, "engine probe cache: malformed or trailing lines");
	}
	return 0;
}

int pw_probe_cache_path(const char *dir, const char *key, char *buf, size_t n)
{
	int w = snprintf(buf, n, "%s/engine-probe-%s.txt", dir, key);
	return w > 0 && (size_t)w < n ? 0 : -1;
}

int pw_probe_cache_load(const char *dir, const char *key, pw_probe_answer *out)
{
	char path[4096];
	if (pw_probe_cache_path(dir, key, path, sizeof path))
		return PW_EINVALID;
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(path, PROBE_FILE_MAX, &b);
	if (rc == 0)
		rc = pw_probe_cache_parse(b.data ? (char *)b.data : "", b.len, key, out);
	pw_buf_free(&b);
	return rc;
}

void pw_probe_cache_store(const char *dir, const char *key, const pw_probe_answer *a)
{
	char path[4096];
	char *text = pw_probe_cache_format(key, a);
	if (text && pw_probe_cache_path(dir, key, path, sizeof path) == 0 && pw_mkdirs(dir, 0700) == 0)
		(void)pw_file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	pw_error_clear();  /* best effort: a failed store only costs the next start its spawns */
}

char *pw_probe_cache_dir(const char *configured)
{
	char *d = NULL;
	const char *x;
	if ((x = getenv("PREWARM_NO_PROBE_CACHE")) && *x && strcmp(x, "0") != 0)
		return NULL;
	if (configured && *configured)
		return strdup(configured);
	if ((x = getenv("XDG_CACHE_HOME")) && x[0] == '/') {
		if (asprintf(&d, "%s/prewarm", x) < 0)
			d = NULL;
	} else if ((x = getenv("HOME")) && x[0] == '/') {
		if (asprintf(&d, "%s/.cache/prewarm", x) < 0)
			d = NULL;
	}
	return d;
}
