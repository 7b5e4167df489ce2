/*
 * Kubewarden's sources.yml: which registries are insecure and which extra CA certificates
 * to trust per registry host.
 *
 *   insecure_sources: ["registry.local:5000", ...]       HTTPS, then HTTPS unverified, then HTTP
 *   source_authorities:
 *     "registry.local:5000":
 *       - {type: Path, path: /etc/ca.pem}                   PEM read at load time
 *       - {type: Data, data: "-----BEGIN CERTIFICATE-----..."}
 *
 * The file is YAML (libyaml's document loader; JSON is YAML too), converted to a jansson
 * tree with bounds on depth and node count so a hostile file (alias bombs, deep nesting)
 * is an error, not a hang. Every certificate is checked with OpenSSL when loaded, so a
 * bad PEM is reported with its host here instead of as a TLS failure later.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "oci/internal.h"

typedef struct authority {
	char *host;
	pw_buf pem;
} authority;

struct pw_oci_sources {
	char **insecure;
	size_t ninsecure;
	authority *auth;
	size_t nauth;
};

int pw_oci_sources_new(pw_oci_sources **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}

void pw_oci_sources_free(pw_oci_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ninsecure; i++)
		free(s->insecure[i]);
	free(s->insecure);
	for (size_t i = 0; i < s->nauth; i++) {
		free(s->auth[i].host);
		pw_buf_free(&s->auth[i].pem);
	}
	free(s->auth);
	free(s);
}

static char *lower_dup(const char *h)
{
	char *s = strdup(h);
	for (char *p = s; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

int pw_oci_sources_add_insecure(pw_oci_sources *s, const char *host)
{
	if (!host || !*host)
		return pw_error_set(PW_EINVALID, "insecure_sources: empty host");
	if (pw_oci_sources_is_insecure(s, host))
		return 0;
	char **nv = realloc(s->insecure, (s->ninsecure + 1) * sizeof *nv);
	if (!nv)
		return pw_error_set(PW_ENOMEM, "out of memory");
	s->insecure = nv;
	if (!(nv[s->ninsecure] = lower_dup(host)))
		return pw_error_set(PW_ENOMEM, "out of memory");
	s->ninsecure++;
	return 0;
}

bool pw_oci_sources_is_insecure(const pw_oci_sources *s, const char *host)
{
	for (size_t i = 0; s && host && i < s->ninsecure; i++)
		if (!strcasecmp(s->insecure[i], host))
			return true;
	return false;
}

const char *pw_oci_sources_ca_pem(const pw_oci_sources *s, const char *host)
{
	for (size_t i = 0; s && host && i < s->nauth; i++)
		if (!strcasecmp(s->auth[i].host, host))
			return (const char *)s->auth[i].pem.data;
	return NULL;
}

/* Counts the certificates in a PEM text; 0 when none parses. */
static int count_certs(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;
	if (!bio)
		return 0;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return n;
}

int pw_oci_sources_add_ca_pem(pw_oci_sources *s, const char *host, const char *pem, size_t len)
{
	authority *a = NULL;
	if (!host || !*host)
		return pw_error_set(PW_EINVALID, "source_authorities: empty host");
	if (len > (8u << 20) || count_certs(pem, len) == 0)
		return pw_error_set(PW_EINVALID, "source_authorities \"%s\": no PEM certificate found", host);
	for (size_t i = 0; i < s->nauth; i++)
		if (!strcasecmp(s->auth[i].host, host))
			a = &s->auth[i];
	if (!a) {
		authority *nv = realloc(s->auth, (s->nauth + 1) * sizeof *nv);
		if (!nv)
			return pw_error_set(PW_ENOMEM, "out of memory");
		s->auth = nv;
		a = &nv[s->nauth];
		memset(a, 0, sizeof *a);
		if (!(a->host = lower_dup(host)))
			return pw_error_set(PW_ENOMEM, "out of memory");
		s->nauth++;
	}
	if (pw_buf_append(&a->pem, pem, len) < 0 || pw_buf_puts(&a->pem, "\n") < 0)
		return pw_error_set(PW_ENOMEM, "out of memory");
	return 0;
}

int pw_oci_sources_add_ca_file(pw_oci_sources *s, const char *host, const char *path)
{
	pw_buf b = PW_BUF_INIT;
	int rc = pw_file_read(path, 8u << 20, &b);
	if (rc < 0)
		return pw_error_prefix("source_authorities \"%s\"", host);
	rc = pw_oci_sources_add_ca_pem(s, host, (const char *)(b.data ? b.data : (uint8_t *)""), b.len);
	if (rc < 0)
		pw_error_prefix("%s", path);
	pw_buf_free(&b);
	return rc;
}

static int parse_tree(pw_oci_sources *s, json_t *root, const char *name)
{
	const char *key, *host;
	json_t *v;
	if (json_is_string(root) && json_string_length(root) == 0)
		return 0;
	if (!json_is_object(root))
		return pw_error_set(PW_EINVALID, "%s: expected a map at the top", name);
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "insecure_sources")) {
			size_t i;
			json_t *h;
			if (!json_is_array(v))
				return pw_error_set(PW_EINVALID, "%s: insecure_sources must be a list of host[:port]", name);
			json_array_foreach(v, i, h) {
				if (!json_is_string(h) || json_string_length(h) == 0)
					return pw_error_set(PW_EINVALID, "%s: insecure_sources[%zu] is not a host[:port]", name, i);
				if (pw_oci_sources_add_insecure(s, json_string_value(h)) < 0)
					return pw_error_prefix("%s", name);
			}
		} else if (!strcmp(key, "source_authorities")) {
			json_t *list;
			if (!json_is_object(v))
				return pw_error_set(PW_EINVALID, "%s: source_authorities must be a map host -> list", name);
			json_object_foreach(v, host, list) {
				size_t i;
				json_t *e;
				if (!json_is_array(list))
					return pw_error_set(PW_EINVALID, "%s: source_authorities \"%s\" must be a list", name, host);
				json_array_foreach(list, i, e) {
					const char *type = json_string_value(json_object_get(e, "type"));
					const char *path = json_string_value(json_object_get(e, "path"));
					const char *data = json_string_value(json_object_get(e, "data"));
					int rc;
					if (!json_is_object(e) || !type)
						return pw_error_set(PW_EINVALID, "%s: source_authorities \"%s\"[%zu]: needs type: Path or Data", name, host, i);
					if (!strcasecmp(type, "Path") && path) {
						rc = pw_oci_sources_add_ca_file(s, host, path);
					} else if (!strcasecmp(type, "Data") && data) {
						rc = pw_oci_sources_add_ca_pem(s, host, data, strlen(data));
					} else {
						return pw_error_set(PW_EINVALID, "%s: source_authorities \"%s\"[%zu]: type '%s' needs %s",
						                    name, host, i, type,
						                    !strcasecmp(type, "Path") ? "a path" :
						                    !strcasecmp(type, "Data") ? "data (PEM)" : "to be Path or Data");
					}
					if (rc < 0)
						return pw_error_prefix("%s", name);
				}
			}
		} else {
			pw_warn("oci", "%s: unknown key '%s' ignored", name, key);
		}
	}
	return 0;
}

int pw_oci_sources_parse(pw_oci_sources **out, const char *text, size_t len, const char *name)
{
	json_t *root;
	pw_oci_sources *s;
	int rc;
	*out = NULL;
	void *doc = NULL;
	rc = pw_yaml_to_json(&doc, text, len, name);
	if (rc == PW_ENOTFOUND) {   /* an empty file: no settings */
		pw_error_clear();
		doc = json_object();
		rc = doc ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
	}
	if (rc < 0)
		return rc;
	root = doc;
	if ((rc = pw_oci_sources_new(&s)) < 0) {
		json_decref(root);
		return rc;
	}
	rc = parse_tree(s, root, name);
	json_decref(root);
	if (rc < 0) {
		pw_oci_sources_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int pw_oci_sources_load(pw_oci_sources **out, const char *path)
{
	pw_buf b = PW_BUF_INIT;
	int rc;
	*out = NULL;
	if ((rc = pw_file_read(path, 16u << 20, &b)) < 0)
		return pw_error_prefix("sources");
	rc = pw_oci_sources_parse(out, (const char *)(b.data ? b.data : (uint8_t *)""), b.len, path);
	pw_buf_free(&b);
	return rc;
}

/* Copies every setting of src into dst. */
int pw_oci__sources_merge(pw_oci_sources *dst, const pw_oci_sources *src)
{
	for (size_t i = 0; src && i < src->ninsecure; i++)
		if (pw_oci_sources_add_insecure(dst, src->insecure[i]) < 0)
			return -1;
	for (size_t i = 0; src && i < src->nauth; i++)
		if (pw_oci_sources_add_ca_pem(dst, src->auth[i].host, (const char *)src->auth[i].pem.data,
		                              src->auth[i].pem.len) < 0)
			return -1;
	return 0;
}
