/*
 * Policy references: registry://host[:port]/repo[:tag][@sha256:...], a bare host/repo:tag
 * (Docker's rules: a first component with '.' or ':' or "localhost" is a host, otherwise
 * Docker Hub), https://, http:// and file:// URLs. Parsing is strict (the distribution
 * grammar for repository names and tags, a well-formed digest, a port in range) so a typo
 * is a clear error before any network traffic, never a confusing 404.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/internal.h"

bool pw_oci_digest_valid(const char *s)
{
	return s && !strncmp(s, "sha256:", 7) && pw_is_sha256_hex(s + 7);
}

void pw_oci_ref_free(pw_oci_ref *r)
{
	if (!r)
		return;
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	free(r->url);
	free(r->path);
	free(r);
}

static int bad(const char *s, const char *why)
{
	return pw_error_set(PW_EINVALID, "invalid policy reference '%.300s': %s", s, why);
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *p, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(p[0]) || !is_lower_alnum(p[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(p[i])) {
			i++;
			continue;
		}
		size_t j = i;
		if (p[i] == '.') {
			j = i + 1;
		} else if (p[i] == '_') {
			j = i + 1;
			if (j < n && p[j] == '_')
				j++;
		} else if (p[i] == '-') {
			while (j < n && p[j] == '-')
				j++;
		} else {
			return false;
		}
		if (j >= n || !is_lower_alnum(p[j]))
			return false;
		i = j;
	}
	return true;
}

/* The longest name (host/repository) distribution accepts (reference.NameTotalLengthMax). */
#define NAME_TOTAL_MAX 255

static bool repo_valid(const char *repo)
{
	size_t n = strlen(repo);
	if (n == 0 || n > NAME_TOTAL_MAX)
		return false;
	const char *p = repo;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (!component_valid(p, len))
			return false;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return false;
	}
	return true;
}

bool pw_oci__tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return false;
	if (!(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool host_valid(const char *h, size_t n)
{
	size_t i = 0, name_end;
	if (n == 0 || n > 255)
		return false;
	if (h[0] == '[') {
		const char *close = memchr(h, ']', n);
		if (!close || close - h < 3)
			return false;
		for (const char *q = h + 1; q < close; q++)
			if (!(isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
				return false;
		name_end = (size_t)(close - h) + 1;
	} else {
		for (i = 0; i < n && h[i] != ':'; i++)
			if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-'))
				return false;
		name_end = i;
		if (name_end == 0 || h[0] == '.' || h[0] == '-' || h[name_end - 1] == '.' || h[name_end - 1] == '-')
			return false;
	}
	if (name_end == n)
		return true;
	if (h[name_end] != ':' || name_end + 1 == n || n - name_end - 1 > 5)
		return false;
	long port = 0;
	for (i = name_end + 1; i < n; i++) {
		if (!isdigit((unsigned char)h[i]))
			return false;
		port = port * 10 + (h[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

static int parse_registry(pw_oci_ref *r, const char *orig, const char *s)
{
	char *work = strdup(s), *at, *name, *slash, *colon;
	int rc = PW_EINVALID;
	if (!work)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if ((at = strchr(work, '@'))) {
		*at = 0;
		if (!pw_oci_digest_valid(at + 1)) {
			bad(orig, "the digest must be sha256: followed by 64 lower-case hex digits");
			goto out;
		}
		r->digest = strdup(at + 1);
	}
	name = work;
	slash = strchr(name, '/');
	if (slash && (memchr(name, '.', (size_t)(slash - name)) || memchr(name, ':', (size_t)(slash - name)) ||
	              (slash - name == 9 && !strncmp(name, "localhost", 9)))) {
		if (!host_valid(name, (size_t)(slash - name))) {
			bad(orig, "invalid registry host[:port]");
			goto out;
		}
		r->host = strndup(name, (size_t)(slash - name));
		name = slash + 1;
	} else {
		r->host = strdup("docker.io");
	}
	colon = strrchr(name, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = 0;
		if (!pw_oci__tag_valid(colon + 1)) {
			bad(orig, "invalid tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')");
			goto out;
		}
		r->tag = strdup(colon + 1);
	}
	if (!*name) {
		bad(orig, "missing repository name");
		goto out;
	}
	if (!repo_valid(name)) {
		bad(orig, "invalid repository name (lower-case letters, digits, separators '.', '_', '__', '-', components joined by '/')");
		goto out;
	}
	if (!strcmp(r->host, "docker.io") && !strchr(name, '/')) {
		if (asprintf(&r->repo, "library/%s", name) < 0)
			r->repo = NULL;
	} else {
		r->repo = strdup(name);
	}
	if (!r->tag && !r->digest)
		r->tag = strdup("latest");
	if (!r->host || !r->repo || (!r->tag && !r->digest)) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	/* distribution's NameTotalLengthMax, on the normalized name with its host (docker.io/library/x):
	 * checked on the repository alone, a short name became too long to parse back once printed */
	if (strlen(r->host) + 1 + strlen(r->repo) > NAME_TOTAL_MAX) {
		bad(orig, "name longer than 255 characters (host/repository, as normalized)");
		goto out;
	}
	rc = 0;
out:
	free(work);
	return rc;
}

int pw_oci_ref_parse(pw_oci_ref **out, const char *s)
{
	pw_oci_ref *r;
	int rc;
	*out = NULL;
	if (!s || !*s)
		return pw_error_set(PW_EINVALID, "invalid policy reference: empty");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return bad(s, "contains whitespace or control characters");
	if (strlen(s) > 4096)
		return bad(s, "longer than 4096 characters");
	r = calloc(1, sizeof *r);
	if (!r)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (!strncmp(s, "registry://", 11)) {
		r->scheme = PW_OCI_REGISTRY;
		rc = parse_registry(r, s, s + 11);
	} else if (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7)) {
		const char *h = s + (s[4] == 's' ? 8 : 7);
		size_t hl = strcspn(h, "/?#");
		r->scheme = s[4] == 's' ? PW_OCI_HTTPS : PW_OCI_HTTP;
		if (memchr(h, '@', hl))
			rc = bad(s, "credentials in URLs are not supported (use a docker config.json)");
		else if (!host_valid(h, hl))
			rc = bad(s, "invalid host[:port]");
		else if (!(r->url = strdup(s)))
			rc = pw_error_set(PW_ENOMEM, "out of memory");
		else
			rc = 0;
	} else if (!strncmp(s, "file://", 7)) {
		r->scheme = PW_OCI_FILE;
		if (s[7] != '/')
			rc = bad(s, "file:// needs an absolute path (file:///abs/path.wasm)");
		else if (!(r->path = strdup(s + 7)))
			rc = pw_error_set(PW_ENOMEM, "out of memory");
		else
			rc = 0;
	} else if (strstr(s, "://")) {
		rc = bad(s, "unknown scheme (registry://, https://, http:// or file://)");
	} else {
		r->scheme = PW_OCI_REGISTRY;
		rc = parse_registry(r, s, s);
	}
	if (rc < 0) {
		pw_oci_ref_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int pw_oci_ref_with(pw_oci_ref **out, const pw_oci_ref *r, const char *tag, const char *digest)
{
	pw_oci_ref *n = calloc(1, sizeof *n);
	*out = NULL;
	if (!n)
		return pw_error_set(PW_ENOMEM, "out of memory");
	n->scheme = r->scheme;
	n->host = r->host ? strdup(r->host) : NULL;
	n->repo = r->repo ? strdup(r->repo) : NULL;
	n->url = r->url ? strdup(r->url) : NULL;
	n->path = r->path ? strdup(r->path) : NULL;
	n->tag = tag ? strdup(tag) : NULL;
	n->digest = digest ? strdup(digest) : NULL;
	if ((r->host && !n->host) || (r->repo && !n->repo) || (tag && !n->tag) || (digest && !n->digest)) {
		pw_oci_ref_free(n);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	*out = n;
	return 0;
}

char *pw_oci_ref_str(const pw_oci_ref *r)
{
	char *s = NULL;
	int n;
	switch (r->scheme) {
	case PW_OCI_HTTP:
	case PW_OCI_HTTPS:
		return strdup(r->url);
	case PW_OCI_FILE:
		n = asprintf(&s, "file://%s", r->path);
		break;
	default:
		n = asprintf(&s, "%s/%s%s%s%s%s", r->host, r->repo, r->tag ? ":" : "", r->tag ? r->tag : "",
		             r->digest ? "@" : "", r->digest ? r->digest : "");
	}
	return n < 0 ? NULL : s;
}

bool pw_oci_ref_is_mutable(const pw_oci_ref *r)
{
	return r->scheme == PW_OCI_REGISTRY && r->tag && !r->digest;
}

const char *pw_oci__api_host(const char *host)
{
	if (!strcmp(host, "docker.io") || !strcmp(host, "index.docker.io"))
		return "registry-1.docker.io";
	return host;
}
