/*
 * The shared cache options of the prewarm commands (see cache_opts.h): parsing, the default
 * directory, and opening the tiered cache with the failure policy of the design: the cache
 * may make a run faster, never make it fail. Every problem with a tier is a warning and that
 * tier is left out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cache_opts.h"
#include "prewarm/common.h"

#include "prewarm/oci.h"

const char pw_cache_cli_help[] =
	"cache options:\n"
	"  --cache-dir DIR                 local artifact cache (default $XDG_CACHE_HOME/prewarm or ~/.cache/prewarm)\n"
	"  --cache-max-size SIZE           size limit of the local cache, LRU eviction (default 2GiB)\n"
	"  --cache-signing-key FILE        HMAC key: sign entries, refuse unsigned or badly signed ones\n"
	"  --no-cache                      do not use any cache (always compile)\n"
	"  --cache-registry HOST/REPO      shared OCI registry tier below the local directory\n"
	"  --cache-registry-credentials F  Docker config.json (or a dir with username/password)\n"
	"  --cache-registry-ca FILE        extra CA certificate (PEM) for the registry\n"
	"  --cache-registry-insecure       allow unverified HTTPS, then plain HTTP\n"
	"  --cache-registry-read-only      pull from the registry, never push\n"
	"  --cache-peer-wait SECONDS|auto|off  how long to wait for another process that is compiling\n"
	"                                  the same module into a shared tier (auto: as long as the\n"
	"                                  compile should take; off: compile at once)\n"
	"  --cache-claim-ttl SECONDS       life of a compile's claim without renewal (default 30)\n"
	"  --cache-claim-settle SECONDS    registry claims: wait between writing a claim and reading it\n"
	"                                  back; above any claimer's read-then-write time (default:\n"
	"                                  3x this process's own, within 0.1-1)\n"
	"Each also as an environment variable, a flag winning over it: PREWARM_CACHE_DIR,\n"
	"PREWARM_CACHE_MAX_SIZE, PREWARM_CACHE_SIGNING_KEY, PREWARM_NO_CACHE, PREWARM_CACHE_REGISTRY,\n"
	"PREWARM_CACHE_REGISTRY_CREDENTIALS, PREWARM_CACHE_REGISTRY_CA, PREWARM_CACHE_REGISTRY_INSECURE,\n"
	"PREWARM_CACHE_REGISTRY_READ_ONLY (booleans 1/true/yes or 0/false/no), PREWARM_CACHE_PEER_WAIT,\n"
	"PREWARM_CACHE_CLAIM_TTL, PREWARM_CACHE_CLAIM_SETTLE.\n";

static const char *env_str(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void env_bool(const char *name, bool *out)
{
	const char *v = env_str(name);
	if (!v)
		return;
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no"))
		*out = false;
	else
		fprintf(stderr, "prewarm: warning: %s=\"%s\" is not true or false; ignored\n", name, v);
}

/* "auto" = 0, "off" = PW_CACHE_PEER_WAIT_OFF, else a duration. */
static int parse_peer_wait(const char *v, double *out)
{
	if (!strcmp(v, "auto")) {
		*out = 0;
		return 0;
	}
	if (!strcmp(v, "off")) {
		*out = PW_CACHE_PEER_WAIT_OFF;
		return 0;
	}
	if (pw_parse_duration(v, out) < 0 || *out <= 0)
		return pw_error_set(PW_EINVALID, "'%s' is not a duration above 0, auto or off", v);
	return 0;
}

static int parse_claim_ttl(const char *v, double *out)
{
	if (pw_parse_duration(v, out) < 0 || *out <= 0 || *out > PW_CACHE_CLAIM_TTL_MAX)
		return pw_error_set(PW_EINVALID, "'%s' is not a duration above 0 and at most %.0f s", v,
		                    PW_CACHE_CLAIM_TTL_MAX);
	return 0;
}

void pw_cache_cli_init(pw_cache_cli_opts *o)
{
	const char *v;

	memset(o, 0, sizeof *o);
	o->dir = env_str("PREWARM_CACHE_DIR");
	if ((v = env_str("PREWARM_CACHE_MAX_SIZE")) && (pw_parse_size(v, &o->max_size) < 0 || o->max_size == 0)) {
		fprintf(stderr, "prewarm: warning: PREWARM_CACHE_MAX_SIZE=\"%s\" is not a size above 0; ignored\n", v);
		o->max_size = 0;
	}
	o->signing_key_file = env_str("PREWARM_CACHE_SIGNING_KEY");
	env_bool("PREWARM_NO_CACHE", &o->no_cache);
	o->registry = env_str("PREWARM_CACHE_REGISTRY");
	o->registry_credentials = env_str("PREWARM_CACHE_REGISTRY_CREDENTIALS");
	o->registry_ca = env_str("PREWARM_CACHE_REGISTRY_CA");
	env_bool("PREWARM_CACHE_REGISTRY_INSECURE", &o->registry_insecure);
	env_bool("PREWARM_CACHE_REGISTRY_READ_ONLY", &o->registry_read_only);
	if ((v = env_str("PREWARM_CACHE_PEER_WAIT")) && parse_peer_wait(v, &o->peer_wait) < 0) {
		fprintf(stderr, "prewarm: warning: PREWARM_CACHE_PEER_WAIT: %s; ignored\n", pw_error_last());
		o->peer_wait = 0;
	}
	if ((v = env_str("PREWARM_CACHE_CLAIM_TTL")) && parse_claim_ttl(v, &o->claim_ttl) < 0) {
		fprintf(stderr, "prewarm: warning: PREWARM_CACHE_CLAIM_TTL: %s; ignored\n", pw_error_last());
		o->claim_ttl = 0;
	}
	if ((v = env_str("PREWARM_CACHE_CLAIM_SETTLE")) && parse_claim_ttl(v, &o->claim_settle) < 0) {
		fprintf(stderr, "prewarm: warning: PREWARM_CACHE_CLAIM_SETTLE: %s; ignored\n", pw_error_last());
		o->claim_settle = 0;
	}
}

void pw_cache_cli_free(pw_cache_cli_opts *o)
{
	if (!o)
		return;
	free(o->default_dir);
	o->default_dir = NULL;
}

/* Matches "--name" (value in the next word) or "--name=value". */
static int opt_value(const char *name, int argc, char **argv, int *i, const char **val, int *err)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
	} else if (a[n] == '\0') {
		if (*i + 1 >= argc) {
			fprintf(stderr, "prewarm: %s needs a value\n", name);
			*err = 1;
			return 1;
		}
		*val = argv[++*i];
	} else {
		return 0;
	}
	if (!**val) {
		fprintf(stderr, "prewarm: %s needs a non-empty value\n", name);
		*err = 1;
	}
	return 1;
}

static int opt_flag(const char *name, const char *arg)
{
	return strcmp(arg, name) == 0;
}

int pw_cache_cli_parse(pw_cache_cli_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = NULL;
	int err = 0;

	if (strncmp(a, "--cache-", 8) != 0 && strcmp(a, "--no-cache") != 0)
		return 0;
	if (opt_flag("--no-cache", a)) {
		o->no_cache = true;
		return 1;
	}
	if (opt_flag("--cache-registry-insecure", a)) {
		o->registry_insecure = true;
		return 1;
	}
	if (opt_flag("--cache-registry-read-only", a)) {
		o->registry_read_only = true;
		return 1;
	}
	if (opt_value("--cache-dir", argc, argv, i, &v, &err)) {
		o->dir = v;
	} else if (opt_value("--cache-max-size", argc, argv, i, &v, &err)) {
		if (!err && pw_parse_size(v, &o->max_size) < 0) {
			fprintf(stderr, "prewarm: --cache-max-size: %s\n", pw_error_last());
			err = 1;
		} else if (!err && o->max_size == 0) {
			fprintf(stderr, "prewarm: --cache-max-size: must be more than 0\n");
			err = 1;
		}
	} else if (opt_value("--cache-signing-key", argc, argv, i, &v, &err)) {
		o->signing_key_file = v;
	} else if (opt_value("--cache-registry-credentials", argc, argv, i, &v, &err)) {
		o->registry_credentials = v;
	} else if (opt_value("--cache-registry-ca", argc, argv, i, &v, &err)) {
		o->registry_ca = v;
	} else if (opt_value("--cache-registry", argc, argv, i, &v, &err)) {
		o->registry = v;
	} else if (opt_value("--cache-peer-wait", argc, argv, i, &v, &err)) {
		if (!err && parse_peer_wait(v, &o->peer_wait) < 0) {
			fprintf(stderr, "prewarm: --cache-peer-wait: %s\n", pw_error_last());
			err = 1;
		}
	} else if (opt_value("--cache-claim-settle", argc, argv, i, &v, &err)) {
		if (!err && parse_claim_ttl(v, &o->claim_settle) < 0) {
			fprintf(stderr, "prewarm: --cache-claim-settle: %s\n", pw_error_last());
			err = 1;
		}
	} else if (opt_value("--cache-claim-ttl", argc, argv, i, &v, &err)) {
		if (!err && parse_claim_ttl(v, &o->claim_ttl) < 0) {
			fprintf(stderr, "prewarm: --cache-claim-ttl: %s\n", pw_error_last());
			err = 1;
		}
	} else {
		fprintf(stderr, "prewarm: unknown cache option '%s'\n", a);
		return -1;
	}
	return err ? -1 : 1;
}

const char *pw_cache_cli_dir(pw_cache_cli_opts *o)
{
	const char *e;

	if (o->dir)
		return o->dir;
	if (o->default_dir)
		return o->default_dir;
	if ((e = getenv("XDG_CACHE_HOME")) && *e) {
		o->default_dir = malloc(strlen(e) + 10);
		if (o->default_dir)
			sprintf(o->default_dir, "%s/prewarm", e);
	} else if ((e = getenv("HOME")) && *e) {
		o->default_dir = malloc(strlen(e) + 20);
		if (o->default_dir)
			sprintf(o->default_dir, "%s/.cache/prewarm", e);
	}
	return o->default_dir;
}

int pw_cache_cli_open_local(pw_cache_cli_opts *o, pw_cache_backend **out)
{
	pw_local_opts lo;
	const char *dir = pw_cache_cli_dir(o);

	*out = NULL;
	if (!dir)
		return pw_error_set(PW_EINVALID, "no cache directory: give --cache-dir or set XDG_CACHE_HOME or HOME");
	memset(&lo, 0, sizeof lo);
	lo.max_size = o->max_size;
	return pw_cache_local_new(out, dir, &lo);
}

/*
 * What sources.yml (o->sources_path) says about the registry tier's host: listed in
 * insecure_sources sets ro->insecure; its source_authorities become ro->ca_file when no
 * --cache-registry-ca was given. The registry tier takes a CA file, so the PEM is written
 * to a private temp file (path in tmp, "" when none; the caller unlinks it once the tier is
 * open: it is read at once). Problems are warnings: the tier then uses the system CAs.
 */
static void registry_sources(const pw_cache_cli_opts *o, pw_registry_cache_opts *ro, char *tmp, size_t tmplen)
{
	pw_oci_sources *src = NULL;
	pw_oci_ref *ref = NULL;
	const char *pem, *td;
	int fd;

	*tmp = '\0';
	if (!o->sources_path)
		return;
	if (pw_oci_ref_parse(&ref, o->registry) < 0 || ref->scheme != PW_OCI_REGISTRY) {
		pw_oci_ref_free(ref);
		return; /* pw_cache_registry_new reports the bad repository */
	}
	if (pw_oci_sources_load(&src, o->sources_path) < 0) {
		pw_warn("cache", "registry cache %s: %s: %s; its CA and insecure setting are not taken from it",
		        o->registry, o->sources_path, pw_error_last());
		goto out;
	}
	if (!ro->insecure && pw_oci_sources_is_insecure(src, ref->host))
		ro->insecure = true;
	if (!ro->ca_file && (pem = pw_oci_sources_ca_pem(src, ref->host))) {
		td = getenv("TMPDIR");
		snprintf(tmp, tmplen, "%s/prewarm-registry-ca.XXXXXX", td && *td ? td : "/tmp");
		size_t len = strlen(pem);
		if ((fd = mkstemp(tmp)) < 0 || write(fd, pem, len) != (ssize_t)len) {
			pw_warn("cache", "registry cache %s: cannot write the source_authorities CA of %s to %s; using the system CAs",
			        o->registry, ref->host, tmp);
			if (fd >= 0) {
				close(fd);
				unlink(tmp);
			}
			*tmp = '\0';
		} else {
			close(fd);
			ro->ca_file = tmp;
			pw_debug("cache", "registry cache %s: CA from source_authorities \"%s\" of %s", o->registry, ref->host,
			         o->sources_path);
		}
	}
out:
	pw_oci_sources_free(src);
	pw_oci_ref_free(ref);
}

int pw_cache_cli_open(pw_cache_cli_opts *o, pw_cache **out)
{
	pw_cache_opts co;
	pw_cache_backend *b = NULL;
	char *stats = NULL;
	const char *dir;
	int rc;

	*out = NULL;
	memset(&co, 0, sizeof co);
	if (o->no_cache)
		return pw_cache_new(out, NULL);
	dir = pw_cache_cli_dir(o);
	co.signing_key_file = o->signing_key_file;
	co.peers.max_wait = o->peer_wait;
	co.peers.ttl = o->claim_ttl;
	if (dir) {
		stats = malloc(strlen(dir) + 8);
		if (!stats)
			return pw_error_set(PW_ENOMEM, "out of memory opening the cache");
		sprintf(stats, "%s/stats", dir);
	}
	if (pw_cache_cli_open_local(o, &b) < 0) {
		pw_warn("cache", "local cache unavailable, running without it: %s", pw_error_last());
		free(stats);
		stats = NULL;
	}
	co.stats_dir = stats;
	rc = pw_cache_new(out, &co);
	free(stats);
	if (rc < 0) {
		if (b)
			pw_cache_backend_free(b);
		if (rc == PW_ENOMEM)
			return rc;
		/* A signing key was asked for and cannot be used: trust no entry at all. */
		pw_warn("cache", "%s; running without any cache", pw_error_last());
		return pw_cache_new(out, NULL);
	}
	if (b && pw_cache_add_backend(*out, b) < 0)
		pw_warn("cache", "local cache unavailable: %s", pw_error_last());
	if (o->registry) {
		pw_registry_cache_opts ro;
		char ca_tmp[4096] = "";
		memset(&ro, 0, sizeof ro);
		ro.repository = o->registry;
		ro.credentials = o->registry_credentials ? o->registry_credentials : o->fallback_credentials;
		ro.ca_file = o->registry_ca;
		ro.insecure = o->registry_insecure;
		ro.read_only = o->registry_read_only;
		ro.async_put = true;
		ro.claim_settle = o->claim_settle;
		if (!o->registry_ca || !o->registry_insecure)
			registry_sources(o, &ro, ca_tmp, sizeof ca_tmp);
		b = NULL;
		if (pw_cache_registry_new(&b, &ro) < 0)
			pw_warn("cache", "--cache-registry %s unavailable, running without it: %s", o->registry,
			        pw_error_last());
		else if (pw_cache_add_backend(*out, b) < 0)
			pw_warn("cache", "registry cache %s unavailable: %s", o->registry, pw_error_last());
		if (*ca_tmp)
			unlink(ca_tmp);
	}
	return 0;
}
