/*
 * Cache counters that survive the process (`prewarm cache stats`).
 *
 * Several processes may use one cache directory at once (pods on a shared volume), so there
 * is no single counter file to read-modify-write: each run adds one small JSON file
 * ("run-<pid>-<random>.json", written atomically) to the stats directory, and the reader sums
 * every file. When there are more than MERGE_AT files, the writer merges them: it first
 * renames each file it takes to a private ".merging-..." name (a rename succeeds for one
 * process only, so no file is summed twice), writes the sum as a new "merged-..." file, then
 * deletes its private files. A crash in the middle of a merge loses those counts (they are
 * statistics, not data); it never double-counts into the visible files.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prewarm/cache.h"

#define MERGE_AT 32
#define STATS_FILE_MAX 8192

static const char *const u64_names[] = {
	"runs", "lookups", "hits", "misses", "rejected", "errors", "compiles", "bytes_read", "bytes_written",
};

static uint64_t *u64_field(pw_cache_totals *t, size_t i)
{
	uint64_t *f[] = { &t->runs, &t->lookups, &t->hits, &t->misses, &t->rejected, &t->errors,
	                  &t->compiles, &t->bytes_read, &t->bytes_written };
	return f[i];
}

static int totals_to_json(const pw_cache_totals *t, pw_buf *out)
{
	json_t *o = json_object(), *a = json_array();
	char *s;
	int rc;

	for (size_t i = 0; i < sizeof u64_names / sizeof u64_names[0]; i++)
		json_object_set_new(o, u64_names[i], json_integer((json_int_t)*u64_field((pw_cache_totals *)t, i)));
	for (int i = 0; i < PW_CACHE_MAX_TIERS; i++)
		json_array_append_new(a, json_integer((json_int_t)t->hits_by_tier[i]));
	json_object_set_new(o, "hits_by_tier", a);
	json_object_set_new(o, "compile_seconds", json_real(t->compile_seconds));
	json_object_set_new(o, "compile_seconds_saved", json_real(t->compile_seconds_saved));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		return pw_error_set(PW_ENOMEM, "out of memory encoding cache counters");
	rc = pw_buf_puts(out, s);
	free(s);
	return rc;
}

/* Adds one file's counters to *t; a malformed file is skipped with a debug line. */
static int totals_add_file(const char *path, pw_cache_totals *t)
{
	pw_buf b = PW_BUF_INIT;
	json_error_t jerr;
	json_t *o, *v;
	int rc;

	if ((rc = pw_file_read(path, STATS_FILE_MAX, &b)) < 0)
		return rc;
	o = json_loadb((const char *)b.data, b.len, 0, &jerr);
	pw_buf_free(&b);
	if (!json_is_object(o)) {
		json_decref(o);
		return pw_error_set(PW_EINVALID, "cache counters %s: not a JSON object", path);
	}
	for (size_t i = 0; i < sizeof u64_names / sizeof u64_names[0]; i++) {
		v = json_object_get(o, u64_names[i]);
		if (json_is_integer(v) && json_integer_value(v) > 0)
			*u64_field(t, i) += (uint64_t)json_integer_value(v);
	}
	v = json_object_get(o, "hits_by_tier");
	for (size_t i = 0; i < PW_CACHE_MAX_TIERS && json_is_array(v) && i < json_array_size(v); i++) {
		json_t *x = json_array_get(v, i);
		if (json_is_integer(x) && json_integer_value(x) > 0)
			t->hits_by_tier[i] += (uint64_t)json_integer_value(x);
	}
	v = json_object_get(o, "compile_seconds");
	if (json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > 0)
		t->compile_seconds += json_number_value(v);
	v = json_object_get(o, "compile_seconds_saved");
	if (json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > 0)
		t->compile_seconds_saved += json_number_value(v);
	json_decref(o);
	return 0;
}

static bool counter_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".json") == 0 &&
	       (!strncmp(n, "run-", 4) || !strncmp(n, "merged-", 7));
}

int pw_cache_totals_load(const char *stats_dir, pw_cache_totals *out)
{
	DIR *d;
	struct dirent *de;

	memset(out, 0, sizeof *out);
	d = opendir(stats_dir);
	if (!d)
		return errno == ENOENT ? 0 : pw_error_set_errno(PW_EIO, "opendir %s", stats_dir);
	while ((de = readdir(d))) {
		char p[PATH_MAX];
		if (!counter_name(de->d_name))
			continue;
		snprintf(p, sizeof p, "%s/%s", stats_dir, de->d_name);
		if (totals_add_file(p, out) < 0) {
			pw_debug("cache", "skipping %s", pw_error_last());
			pw_error_clear();
		}
	}
	closedir(d);
	return 0;
}

static int write_counter_file(const char *stats_dir, const char *prefix, const pw_cache_totals *t)
{
	char path[PATH_MAX];
	pw_buf b = PW_BUF_INIT;
	uint64_t rnd = 0;
	int rc;

	if (getrandom(&rnd, sizeof rnd, 0) < 0)
		rnd = (uint64_t)rand();
	snprintf(path, sizeof path, "%s/%s-%ld-%016llx.json", stats_dir, prefix, (long)getpid(),
	         (unsigned long long)rnd);
	if ((rc = totals_to_json(t, &b)) == 0)
		rc = pw_file_write_atomic(path, b.data, b.len, 0644);
	pw_buf_free(&b);
	return rc;
}

static void merge(const char *stats_dir)
{
	struct taken { char from[PATH_MAX], to[PATH_MAX]; } *taken = NULL;
	size_t n = 0, cap = 0;
	pw_cache_totals sum;
	uint32_t rnd = 0;
	DIR *d;
	struct dirent *de;

	memset(&sum, 0, sizeof sum);
	if (getrandom(&rnd, sizeof rnd, 0) < 0)
		rnd = (uint32_t)rand();
	d = opendir(stats_dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!counter_name(de->d_name))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *p = realloc(taken, nc * sizeof *taken);
			if (!p)
				break;
			taken = p;
			cap = nc;
		}
		snprintf(taken[n].from, PATH_MAX, "%s/%s", stats_dir, de->d_name);
		snprintf(taken[n].to, PATH_MAX, "%s/.merging-%ld-%08x-%.100s", stats_dir, (long)getpid(), rnd,
		         de->d_name);
		if (rename(taken[n].from, taken[n].to) < 0)
			continue;   /* another merger took it */
		if (totals_add_file(taken[n].to, &sum) < 0)
			pw_error_clear();
		n++;
	}
	closedir(d);
	if (n && write_counter_file(stats_dir, "merged", &sum) < 0) {
		/* Put them back rather than lose them. */
		for (size_t i = 0; i < n; i++)
			if (rename(taken[i].to, taken[i].from) < 0)
				unlink(taken[i].to);
		free(taken);
		return;
	}
	for (size_t i = 0; i < n; i++)
		unlink(taken[i].to);
	free(taken);
}

int pw_cache_totals_add(const char *stats_dir, const pw_cache_totals *run)
{
	DIR *d;
	struct dirent *de;
	unsigned files = 0;
	int rc;

	if ((rc = pw_mkdirs(stats_dir, 0755)) < 0)
		return rc;
	if ((rc = write_counter_file(stats_dir, "run", run)) < 0)
		return rc;
	d = opendir(stats_dir);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		files += counter_name(de->d_name);
	closedir(d);
	if (files > MERGE_AT)
		merge(stats_dir);
	return 0;
}
