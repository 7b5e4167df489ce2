/*
 * Registry credentials and the WWW-Authenticate challenge.
 *
 * Credentials come from a Docker config.json (auths.{host}.auth = base64 "user:pass", or
 * username/password fields; keys may be URLs such as https://index.docker.io/v1/) or from a
 * mounted Kubernetes Secret (a directory holding `username` and `password`). They are kept
 * in memory only, wiped on free, and never logged.
 *
 * The challenge parser follows RFC 7235: a header may carry several challenges, parameters
 * are token or quoted-string (backslash escapes, commas allowed inside quotes), and a
 * token68 may follow a scheme. A registry's Bearer challenge gives realm, service and scope.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "oci/internal.h"

/* ---- credentials ---------------------------------------------------------------------- */

typedef struct cred {
	char *host, *user, *pass;
} cred;

struct pw_oci_creds {
	cred *v;
	size_t n;
};

int pw_oci_creds_new(pw_oci_creds **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void pw_oci_creds_free(pw_oci_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].host);
		wipe_free(c->v[i].user);
		wipe_free(c->v[i].pass);
	}
	free(c->v);
	free(c);
}

/* "https://index.docker.io/v1/" -> "index.docker.io"; Docker Hub aliases -> "docker.io". */
static char *norm_host(const char *h)
{
	const char *p = strstr(h, "://");
	p = p ? p + 3 : h;
	size_t n = strcspn(p, "/");
	char *s = strndup(p, n);
	if (!s)
		return NULL;
	for (char *q = s; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (!strcmp(s, "index.docker.io") || !strcmp(s, "registry-1.docker.io")) {
		free(s);
		s = strdup("docker.io");
	}
	return s;
}

int pw_oci_creds_set(pw_oci_creds *c, const char *host, const char *user, const char *pass)
{
	char *h = norm_host(host);
	if (!h)
		return pw_error_set(PW_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].host, h)) {
			char *u = strdup(user), *p = strdup(pass);
			free(h);
			if (!u || !p) {
				free(u);
				free(p);
				return pw_error_set(PW_ENOMEM, "out of memory");
			}
			wipe_free(c->v[i].user);
			wipe_free(c->v[i].pass);
			c->v[i].user = u;
			c->v[i].pass = p;
			return 0;
		}
	}
	cred *nv = realloc(c->v, (c->n + 1) * sizeof *nv);
	if (!nv) {
		free(h);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	c->v = nv;
	nv[c->n].host = h;
	nv[c->n].user = strdup(user);
	nv[c->n].pass = strdup(pass);
	if (!nv[c->n].user || !nv[c->n].pass) {
		wipe_free(nv[c->n].user);
		wipe_free(nv[c->n].pass);
		free(h);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	c->n++;
	return 0;
}

int pw_oci_creds_find(const pw_oci_creds *c, const char *host, const char **user, const char **pass)
{
	char *h;
	if (!c || !host)
		return PW_ENOTFOUND;
	h = norm_host(host);
	if (!h)
		return pw_error_set(PW_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].host, h)) {
			*user = c->v[i].user;
			*pass = c->v[i].pass;
			free(h);
			return 0;
		}
	}
	free(h);
	return PW_ENOTFOUND;
}

int pw_oci__creds_parse_docker_config(pw_oci_creds *c, const char *text, size_t len, const char *file)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr), *auths, *v;
	const char *host;
	int rc = 0;
	if (!root)
		return pw_error_set(PW_EINVALID, "%s: invalid JSON at line %d: %s", file, jerr.line, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return pw_error_set(PW_EINVALID, "%s: not a JSON object", file);
	}
	auths = json_object_get(root, "auths");
	if (auths && !json_is_object(auths)) {
		json_decref(root);
		return pw_error_set(PW_EINVALID, "%s: \"auths\" is not an object", file);
	}
	if (json_object_get(root, "credsStore") || json_object_get(root, "credHelpers"))
		pw_debug("oci", "%s: credential helpers (credsStore/credHelpers) are not supported; using auths only", file);
	json_object_foreach(auths, host, v) {
		const char *user = NULL, *pass = NULL;
		uint8_t *dec = NULL;
		size_t dlen = 0;
		if (!json_is_object(v)) {
			rc = pw_error_set(PW_EINVALID, "%s: auths.\"%s\" is not an object", file, host);
			break;
		}
		json_t *a = json_object_get(v, "auth");
		if (json_is_string(a) && json_string_length(a) > 0) {
			if (pw_base64_decode(json_string_value(a), &dec, &dlen) < 0) {
				rc = pw_error_set(PW_EINVALID, "%s: auths.\"%s\".auth is not valid base64", file, host);
				break;
			}
			char *colon = memchr(dec, ':', dlen);
			if (!colon || memchr(dec, 0, dlen)) {
				explicit_bzero(dec, dlen);
				free(dec);
				rc = pw_error_set(PW_EINVALID, "%s: auths.\"%s\".auth does not decode to user:password", file, host);
				break;
			}
			char *buf = malloc(dlen + 1);
			if (!buf) {
				explicit_bzero(dec, dlen);
				free(dec);
				rc = pw_error_set(PW_ENOMEM, "out of memory");
				break;
			}
			memcpy(buf, dec, dlen);
			buf[dlen] = 0;
			buf[colon - (char *)dec] = 0;
			rc = pw_oci_creds_set(c, host, buf, buf + (colon - (char *)dec) + 1);
			explicit_bzero(buf, dlen);
			explicit_bzero(dec, dlen);
			free(buf);
			free(dec);
			if (rc < 0)
				break;
			continue;
		}
		user = json_string_value(json_object_get(v, "username"));
		pass = json_string_value(json_object_get(v, "password"));
		if (user && pass) {
			if ((rc = pw_oci_creds_set(c, host, user, pass)) < 0)
				break;
		}
	}
	json_decref(root);
	return rc;
}

int pw_oci_creds_load_docker_config(pw_oci_creds *c, const char *path)
{
	pw_buf b = PW_BUF_INIT;
	char file[4096];
	struct stat st;
	int rc;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(file, sizeof file, "%s/config.json", path);
	else
		snprintf(file, sizeof file, "%s", path);
	rc = pw_file_read(file, 1 << 20, &b);
	if (rc < 0)
		return pw_error_prefix("docker config");
	rc = pw_oci__creds_parse_docker_config(c, (const char *)b.data, b.len, file);
	if (b.data)
		explicit_bzero(b.data, b.len);
	pw_buf_free(&b);
	return rc;
}

static int read_secret_file(const char *dir, const char *name, char **out)
{
	char p[4096];
	pw_buf b = PW_BUF_INIT;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (pw_file_read(p, 64 << 10, &b) < 0)
		return pw_error_prefix("registry credentials");
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = 0;
	if (b.len == 0 || memchr(b.data, 0, b.len)) {
		pw_buf_free(&b);
		return pw_error_set(PW_EINVALID, "registry credentials: %s is empty or binary", p);
	}
	*out = (char *)pw_buf_detach(&b, NULL);
	return 0;
}

int pw_oci_creds_load_secret_dir(pw_oci_creds *c, const char *host, const char *dir)
{
	char *u = NULL, *p = NULL;
	int rc = read_secret_file(dir, "username", &u);
	if (rc == 0)
		rc = read_secret_file(dir, "password", &p);
	if (rc == 0)
		rc = pw_oci_creds_set(c, host, u, p);
	wipe_free(u);
	wipe_free(p);
	return rc;
}

/* ---- WWW-Authenticate ------------------------------------------------------------------ */

static bool is_tchar(char ch)
{
	return isalnum((unsigned char)ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_t68char(char ch)
{
	return isalnum((unsigned char)ch) || (ch && strchr("-._~+/", ch));
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

void pw_oci_challenge_clear(pw_oci_challenge *c)
{
	if (!c)
		return;
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof *c);
}

typedef struct chal {
	char scheme[16];
	char *realm, *service, *scope, *error;
} chal;

#define MAX_CHAL 8

int pw_oci_challenge_parse(pw_oci_challenge *out, const char *header)
{
	chal ch[MAX_CHAL];
	int nch = 0, cur = -1, rc = 0, pick = -1;
	bool after_scheme = false;
	const char *p = header;
	memset(ch, 0, sizeof ch);
	memset(out, 0, sizeof *out);
	if (!header)
		return pw_error_set(PW_EINVALID, "WWW-Authenticate: missing");
	for (;;) {
		bool had_comma = false;
		while (*p == ' ' || *p == '\t' || *p == ',') {
			if (*p == ',')
				had_comma = true;
			p++;
		}
		if (had_comma)
			after_scheme = false;
		if (!*p)
			break;
		if (after_scheme) {
			/* a token68 right after the scheme ("Basic dXNlcg==") is skipped */
			const char *q = p, *r, *e;
			while (is_t68char(*q))
				q++;
			if (q > p) {
				r = q;
				while (*r == '=')
					r++;
				e = r;
				skip_ws(&e);
				if (*e == ',' || !*e) {
					p = e;
					after_scheme = false;
					continue;
				}
			}
		}
		const char *t = p;
		while (is_tchar(*p))
			p++;
		if (p == t) {
			rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: unexpected character '%c' at offset %zu",
			                  *p, (size_t)(p - header));
			goto out;
		}
		size_t tlen = (size_t)(p - t);
		const char *q = p;
		skip_ws(&q);
		if (*q != '=') {
			/* a new challenge */
			if (nch == MAX_CHAL) {
				rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: more than %d challenges", MAX_CHAL);
				goto out;
			}
			cur = nch++;
			snprintf(ch[cur].scheme, sizeof ch[cur].scheme, "%.*s", (int)(tlen < 15 ? tlen : 15), t);
			after_scheme = true;
			continue;
		}
		if (cur < 0) {
			rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: parameter before any scheme");
			goto out;
		}
		after_scheme = false;
		p = q + 1;
		skip_ws(&p);
		pw_buf val = PW_BUF_INIT;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\') {
					p++;
					if (!*p)
						break;
				}
				if (val.len >= 8192) {
					pw_buf_free(&val);
					rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: parameter value too long");
					goto out;
				}
				pw_buf_append(&val, p, 1);
				p++;
			}
			if (*p != '"') {
				pw_buf_free(&val);
				rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: unterminated quoted string");
				goto out;
			}
			p++;
		} else {
			const char *v = p;
			while (is_tchar(*p) || *p == '/' || *p == ':')
				p++;
			if (p == v) {
				rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: missing value for parameter '%.*s'",
				                  (int)(tlen > 64 ? 64 : tlen), t);
				goto out;
			}
			pw_buf_append(&val, v, (size_t)(p - v));
		}
		skip_ws(&p);
		if (*p && *p != ',') {
			pw_buf_free(&val);
			rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: expected ',' at offset %zu", (size_t)(p - header));
			goto out;
		}
		char **slot = NULL;
		if (tlen == 5 && !strncasecmp(t, "realm", 5))
			slot = &ch[cur].realm;
		else if (tlen == 7 && !strncasecmp(t, "service", 7))
			slot = &ch[cur].service;
		else if (tlen == 5 && !strncasecmp(t, "scope", 5))
			slot = &ch[cur].scope;
		else if (tlen == 5 && !strncasecmp(t, "error", 5))
			slot = &ch[cur].error;
		if (slot) {
			free(*slot);
			*slot = val.data ? (char *)pw_buf_detach(&val, NULL) : strdup("");
		}
		pw_buf_free(&val);
	}
	for (int i = 0; i < nch && pick < 0; i++)
		if (!strcasecmp(ch[i].scheme, "Bearer"))
			pick = i;
	for (int i = 0; i < nch && pick < 0; i++)
		if (!strcasecmp(ch[i].scheme, "Basic"))
			pick = i;
	if (pick < 0) {
		rc = pw_error_set(nch ? PW_EUNSUPPORTED : PW_EINVALID,
		                  nch ? "WWW-Authenticate: no Bearer or Basic challenge (got '%s')"
		                      : "WWW-Authenticate: empty%s", nch ? ch[0].scheme : "");
		goto out;
	}
	if (!strcasecmp(ch[pick].scheme, "Bearer") && (!ch[pick].realm || !*ch[pick].realm)) {
		rc = pw_error_set(PW_EINVALID, "WWW-Authenticate: Bearer challenge without a realm");
		goto out;
	}
	memcpy(out->scheme, ch[pick].scheme, sizeof out->scheme);
	out->realm = ch[pick].realm;
	out->service = ch[pick].service;
	out->scope = ch[pick].scope;
	out->error = ch[pick].error;
	memset(&ch[pick], 0, sizeof ch[pick]);
out:
	for (int i = 0; i < nch; i++) {
		free(ch[i].realm);
		free(ch[i].service);
		free(ch[i].scope);
		free(ch[i].error);
	}
	return rc;
}

int pw_oci__creds_merge(pw_oci_creds *dst, const pw_oci_creds *src)
{
	for (size_t i = 0; src && i < src->n; i++)
		if (pw_oci_creds_set(dst, src->v[i].host, src->v[i].user, src->v[i].pass) < 0)
			return -1;
	return 0;
}
