/*
 * `prewarm cache ls|stats|verify|gc|rm` (and `warm`, dispatched to the registry part): the
 * local artifact cache seen from the command line. Every subcommand takes the shared cache
 * options (cache_opts.h); `verify` checks every entry the way a lookup does before dlopen
 * and exits 1 when any is bad; `gc` applies the size limit now.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cache_opts.h"
#include "cli/cli.h"
#include "prewarm/cache.h"


static void usage(FILE *f)
{
	fprintf(f, "usage: prewarm cache <ls|stats|verify|gc|rm|warm|push|pull> [options]\n\n"
	           "  ls                  list entries: key, size, age, last use\n"
	           "  ls --registry       list the entries of the registry tier (--cache-registry)\n"
	           "  stats               hits, misses, bytes and compile time saved (all runs), usage\n"
	           "  verify [--remove]   check every entry (sha256, description, signature); exit 1 on any bad\n"
	           "  gc                  apply the size limit now (least recently used first), remove stale temp files\n"
	           "  rm KEY...|--all     remove entries\n"
	           "  warm ...            fill the registry tier (see 'prewarm cache warm --help')\n"
	           "  push|pull KEY...    copy verified entries local -> registry / registry -> local\n\n"
	           "options of every subcommand:\n"
	           "  --json              machine-readable output (ls, stats)\n\n%s",
	        pw_cache_cli_help);
}

static const char *fmt_age(double seconds, char *buf, size_t n)
{
	if (seconds < 0)
		seconds = 0;
	if (seconds < 120)
		snprintf(buf, n, "%.0fs", seconds);
	else if (seconds < 7200)
		snprintf(buf, n, "%.0fm", seconds / 60);
	else if (seconds < 2 * 86400)
		snprintf(buf, n, "%.0fh", seconds / 3600);
	else
		snprintf(buf, n, "%.0fd", seconds / 86400);
	return buf;
}

typedef struct ls_ctx {
	bool json;
	double now;
	unsigned n;
	uint64_t bytes;
} ls_ctx;

static int ls_one(const pw_cache_listing *l, void *payload)
{
	ls_ctx *c = payload;
	char key[PW_CACHE_KEY_STR_LEN + 1], sz[32], age[32], used[32];

	pw_cache_key_str(&l->key, key);
	c->n++;
	c->bytes += l->size;
	if (c->json) {
		printf("%s{\"key\":\"%s\",\"engine_hash\":\"%s\",\"wasm_sha256\":\"%s\",\"size\":%llu,"
		       "\"created\":%.3f,\"last_used\":%.3f}",
		       c->n > 1 ? ",\n " : "", key, l->key.engine_hash, l->key.wasm_sha256,
		       (unsigned long long)l->size, l->created, l->last_used);
		return 0;
	}
	printf("%s  %10s  %6s  %6s\n", key, pw_fmt_bytes(l->size, sz, sizeof sz),
	       l->created > 0 ? fmt_age(c->now - l->created, age, sizeof age) : "?",
	       fmt_age(c->now - l->last_used, used, sizeof used));
	return 0;
}

static int cmd_ls(pw_cache_backend *b, bool json)
{
	ls_ctx c = { json, pw_wall_now(), 0, 0 };
	char sz[32];
	int rc;

	if (json)
		printf("[");
	else
		printf("%-129s  %10s  %6s  %6s\n", "KEY (engine hash-wasm sha256)", "SIZE", "AGE", "USED");
	rc = pw_cache_backend_list(b, ls_one, &c);
	if (json)
		printf("]\n");
	else
		printf("%u entries, %s\n", c.n, pw_fmt_bytes(c.bytes, sz, sizeof sz));
	if (rc < 0) {
		fprintf(stderr, "prewarm cache ls: %s\n", pw_error_last());
		return 1;
	}
	return 0;
}

static int cmd_stats(pw_cache_cli_opts *o, pw_cache_backend *b, bool json)
{
	char path[4200], s1[32], s2[32];
	pw_cache_totals t;
	uint64_t bytes = 0;
	unsigned n = 0;

	snprintf(path, sizeof path, "%s/stats", pw_cache_local_dir(b));
	if (pw_cache_totals_load(path, &t) < 0 || pw_cache_local_usage(b, &bytes, &n) < 0) {
		fprintf(stderr, "prewarm cache stats: %s\n", pw_error_last());
		return 1;
	}
	if (json) {
		json_t *jd = json_string(pw_cache_local_dir(b));
		char *d = jd ? json_dumps(jd, JSON_ENCODE_ANY) : NULL;
		json_decref(jd);
		printf("{\"dir\":%s,\"entries\":%u,\"bytes\":%llu,\"max_size\":%llu,\"runs\":%llu,"
		       "\"lookups\":%llu,\"hits\":%llu,\"hits_local\":%llu,\"hits_registry\":%llu,"
		       "\"misses\":%llu,\"rejected\":%llu,\"errors\":%llu,\"compiles\":%llu,"
		       "\"bytes_read\":%llu,\"bytes_written\":%llu,\"compile_seconds\":%.3f,"
		       "\"compile_seconds_saved\":%.3f}\n",
		       d ? d : "null", n, (unsigned long long)bytes,
		       (unsigned long long)(o->max_size ? o->max_size : PW_CACHE_LOCAL_DEFAULT_MAX_SIZE),
		       (unsigned long long)t.runs, (unsigned long long)t.lookups, (unsigned long long)t.hits,
		       (unsigned long long)t.hits_by_tier[0], (unsigned long long)t.hits_by_tier[1],
		       (unsigned long long)t.misses, (unsigned long long)t.rejected,
		       (unsigned long long)t.errors, (unsigned long long)t.compiles,
		       (unsigned long long)t.bytes_read, (unsigned long long)t.bytes_written,
		       t.compile_seconds, t.compile_seconds_saved);
		free(d);
		return 0;
	}
	printf("cache directory:        %s\n", pw_cache_local_dir(b));
	printf("entries:                %u (%s of %s)\n", n, pw_fmt_bytes(bytes, s1, sizeof s1),
	       pw_fmt_bytes(o->max_size ? o->max_size : PW_CACHE_LOCAL_DEFAULT_MAX_SIZE, s2, sizeof s2));
	printf("runs recorded:          %llu\n", (unsigned long long)t.runs);
	printf("lookups:                %llu\n", (unsigned long long)t.lookups);
	printf("hits:                   %llu (local %llu, registry %llu)\n", (unsigned long long)t.hits,
	       (unsigned long long)t.hits_by_tier[0], (unsigned long long)t.hits_by_tier[1]);
	printf("misses:                 %llu\n", (unsigned long long)t.misses);
	printf("rejected entries:       %llu\n", (unsigned long long)t.rejected);
	printf("tier errors:            %llu\n", (unsigned long long)t.errors);
	printf("compiles:               %llu (%.2f s)\n", (unsigned long long)t.compiles, t.compile_seconds);
	printf("bytes read:             %s\n", pw_fmt_bytes(t.bytes_read, s1, sizeof s1));
	printf("bytes written:          %s\n", pw_fmt_bytes(t.bytes_written, s1, sizeof s1));
	printf("compile seconds saved:  %.2f\n", t.compile_seconds_saved);
	return 0;
}

typedef struct verify_ctx {
	pw_cache *cache;
	pw_cache_backend *b;
	bool remove;
	unsigned ok, bad, removed;
} verify_ctx;

static int verify_one(const pw_cache_listing *l, void *payload)
{
	verify_ctx *v = payload;
	char key[PW_CACHE_KEY_STR_LEN + 1];
	pw_cache_entry e;
	int rc;

	pw_cache_key_str(&l->key, key);
	rc = pw_cache_backend_get(v->b, &l->key, &e);
	if (rc == PW_ENOTFOUND)
		return 0;   /* removed meanwhile (eviction by another process) */
	if (rc == 0)
		rc = pw_cache_verify_entry_for(v->cache, &l->key, &e);
	pw_cache_entry_free(&e);
	if (rc == 0) {
		v->ok++;
		printf("ok   %s\n", key);
		return 0;
	}
	v->bad++;
	printf("BAD  %s: %s\n", key, pw_error_last());
	if (v->remove && pw_cache_backend_remove(v->b, &l->key) == 0)
		v->removed++;
	return 0;
}

static int cmd_verify(pw_cache_cli_opts *o, pw_cache_backend *b, bool remove)
{
	pw_cache_opts co = { .signing_key_file = o->signing_key_file, .stats_dir = NULL };
	verify_ctx v;
	int rc;

	memset(&v, 0, sizeof v);
	v.b = b;
	v.remove = remove;
	if (pw_cache_new(&v.cache, &co) < 0) {
		fprintf(stderr, "prewarm cache verify: %s\n", pw_error_last());
		return 1;
	}
	rc = pw_cache_backend_list(b, verify_one, &v);
	pw_cache_free(v.cache);
	if (rc < 0) {
		fprintf(stderr, "prewarm cache verify: %s\n", pw_error_last());
		return 1;
	}
	printf("%u ok, %u bad%s", v.ok, v.bad, o->signing_key_file ? " (signatures checked)" : "");
	if (remove)
		printf(", %u removed", v.removed);
	printf("\n");
	return v.bad ? 1 : 0;
}

static int cmd_gc(pw_cache_backend *b, uint64_t max_size)
{
	unsigned removed = 0, n = 0;
	uint64_t freed = 0, bytes = 0;
	char s1[32], s2[32];

	if (pw_cache_local_gc(b, max_size, &removed, &freed) < 0 || pw_cache_local_usage(b, &bytes, &n) < 0) {
		fprintf(stderr, "prewarm cache gc: %s\n", pw_error_last());
		return 1;
	}
	printf("removed %u entries, freed %s; %u entries, %s left\n", removed,
	       pw_fmt_bytes(freed, s1, sizeof s1), n, pw_fmt_bytes(bytes, s2, sizeof s2));
	return 0;
}

static int rm_all_cb(const pw_cache_listing *l, void *payload)
{
	pw_cache_backend *b = ((void **)payload)[0];
	unsigned *n = ((void **)payload)[1];
	if (pw_cache_backend_remove(b, &l->key) == 0)
		(*n)++;
	return 0;
}

static int cmd_rm(pw_cache_backend *b, char **keys, int nkeys, bool all)
{
	int status = 0;
	unsigned n = 0;

	if (all) {
		void *p[2] = { b, &n };
		if (pw_cache_backend_list(b, rm_all_cb, p) < 0) {
			fprintf(stderr, "prewarm cache rm: %s\n", pw_error_last());
			return 1;
		}
		printf("removed %u entries\n", n);
		return 0;
	}
	for (int i = 0; i < nkeys; i++) {
		pw_cache_key k;
		if (pw_cache_key_parse(&k, keys[i]) < 0 || pw_cache_backend_remove(b, &k) < 0) {
			fprintf(stderr, "prewarm cache rm: %s\n", pw_error_last());
			status = 1;
			continue;
		}
		n++;
	}
	printf("removed %u entries\n", n);
	return status;
}

int pw_cmd_cache(int argc, char **argv)
{
	pw_cache_cli_opts o;
	pw_cache_backend *b = NULL;
	const char *sub;
	char **rest;
	int nrest = 0, status;
	bool json = false, remove = false, all = false;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		usage(stdout);
		return 0;
	}
	{
		int (*fn)(int, char **) = NULL;
		bool registry_cmd = true;
		if (!strcmp(sub, "warm"))
			fn = pw_cmd_cache_warm;
		else if (!strcmp(sub, "push"))
			fn = pw_cmd_cache_push;
		else if (!strcmp(sub, "pull"))
			fn = pw_cmd_cache_pull;
		else {
			registry_cmd = false;
			for (int i = 2; i < argc && !strcmp(sub, "ls"); i++)
				if (!strcmp(argv[i], "--registry"))
					registry_cmd = true, fn = pw_cmd_cache_ls_registry;
		}
		if (registry_cmd)
			return fn(argc - 1, argv + 1);
	}
	if (strcmp(sub, "ls") && strcmp(sub, "stats") && strcmp(sub, "verify") && strcmp(sub, "gc") &&
	    strcmp(sub, "rm")) {
		fprintf(stderr, "prewarm cache: unknown subcommand '%s'\n\n", sub);
		usage(stderr);
		return 2;
	}
	rest = calloc((size_t)argc, sizeof *rest);
	if (!rest)
		return 1;
	pw_cache_cli_init(&o);
	for (int i = 2; i < argc; i++) {
		int r = pw_cache_cli_parse(&o, argc, argv, &i);
		if (r < 0) {
			status = 2;
			goto out;
		}
		if (r > 0)
			continue;
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--remove") && !strcmp(sub, "verify"))
			remove = true;
		else if (!strcmp(argv[i], "--all") && !strcmp(sub, "rm"))
			all = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			status = 0;
			goto out;
		} else if (argv[i][0] == '-' || strcmp(sub, "rm")) {
			fprintf(stderr, "prewarm cache %s: unknown argument '%s'\n", sub, argv[i]);
			status = 2;
			goto out;
		} else
			rest[nrest++] = argv[i];
	}
	if (!strcmp(sub, "rm") && !all && nrest == 0) {
		fprintf(stderr, "prewarm cache rm: give KEY... or --all\n");
		status = 2;
		goto out;
	}
	if (pw_cache_cli_open_local(&o, &b) < 0) {
		fprintf(stderr, "prewarm cache %s: %s\n", sub, pw_error_last());
		status = 1;
		goto out;
	}
	if (!strcmp(sub, "ls"))
		status = cmd_ls(b, json);
	else if (!strcmp(sub, "stats"))
		status = cmd_stats(&o, b, json);
	else if (!strcmp(sub, "verify"))
		status = cmd_verify(&o, b, remove);
	else if (!strcmp(sub, "gc"))
		status = cmd_gc(b, o.max_size);
	else
		status = cmd_rm(b, rest, nrest, all);
out:
	if (b)
		pw_cache_backend_free(b);
	pw_cache_cli_free(&o);
	free(rest);
	return status;
}
