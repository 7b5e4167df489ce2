/*
 * OCI image manifests and indexes (and their Docker schema2 twins) parsed with jansson
 * into plain structs. Strict where it matters for safety: every descriptor needs a media
 * type, a sha256 digest and a non-negative size; schema 1 is refused; annotations must
 * be strings. Unknown fields are ignored, as the OCI spec asks.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/internal.h"

#define MAX_DESCRIPTORS 4096

static void desc_clear(pw_oci_descriptor *d)
{
	free(d->media_type);
	free(d->artifact_type);
	free(d->platform_os);
	free(d->platform_arch);
	for (size_t i = 0; i < d->nannotations; i++) {
		free(d->annotations[i].key);
		free(d->annotations[i].value);
	}
	free(d->annotations);
	memset(d, 0, sizeof *d);
}

void pw_oci_manifest_free(pw_oci_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->artifact_type);
	desc_clear(&m->config);
	for (size_t i = 0; i < m->nlayers; i++)
		desc_clear(&m->layers[i]);
	free(m->layers);
	if (m->subject) {
		desc_clear(m->subject);
		free(m->subject);
	}
	for (size_t i = 0; i < m->nannotations; i++) {
		free(m->annotations[i].key);
		free(m->annotations[i].value);
	}
	free(m->annotations);
	free(m);
}

static int parse_annotations(json_t *j, pw_oci_annotation **out, size_t *n, const char *where)
{
	const char *k;
	json_t *v;
	*out = NULL;
	*n = 0;
	if (!j)
		return 0;
	if (!json_is_object(j))
		return pw_error_set(PW_EINVALID, "manifest: %s.annotations is not an object", where);
	if (json_object_size(j) > MAX_DESCRIPTORS)
		return pw_error_set(PW_EINVALID, "manifest: %s.annotations has too many entries", where);
	*out = calloc(json_object_size(j) + 1, sizeof **out);
	if (!*out)
		return pw_error_set(PW_ENOMEM, "out of memory");
	json_object_foreach(j, k, v) {
		if (!json_is_string(v))
			return pw_error_set(PW_EINVALID, "manifest: %s.annotations.\"%.100s\" is not a string", where, k);
		(*out)[*n].key = strdup(k);
		(*out)[*n].value = strndup(json_string_value(v), json_string_length(v));
		(*n)++;
		if (!(*out)[*n - 1].key || !(*out)[*n - 1].value)
			return pw_error_set(PW_ENOMEM, "out of memory");
	}
	return 0;
}

static int opt_string(json_t *o, const char *key, char **out, const char *where)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return pw_error_set(PW_EINVALID, "manifest: %s.%s is not a string", where, key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
}

static int parse_desc(json_t *j, pw_oci_descriptor *d, const char *where)
{
	json_t *v;
	int rc;
	if (!json_is_object(j))
		return pw_error_set(PW_EINVALID, "manifest: %s is not an object", where);
	if ((rc = opt_string(j, "mediaType", &d->media_type, where)) < 0)
		return rc;
	if (!d->media_type || !*d->media_type)
		return pw_error_set(PW_EINVALID, "manifest: %s has no mediaType", where);
	v = json_object_get(j, "digest");
	if (!json_is_string(v))
		return pw_error_set(PW_EINVALID, "manifest: %s has no digest", where);
	if (!pw_oci_digest_valid(json_string_value(v)))
		return pw_error_set(PW_EINVALID, "manifest: %s.digest '%.100s' is not sha256:<64 lower-case hex>",
		                    where, json_string_value(v));
	snprintf(d->digest, sizeof d->digest, "%s", json_string_value(v));
	v = json_object_get(j, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return pw_error_set(PW_EINVALID, "manifest: %s.size must be a non-negative integer", where);
	d->size = (uint64_t)json_integer_value(v);
	if ((rc = opt_string(j, "artifactType", &d->artifact_type, where)) < 0)
		return rc;
	json_t *plat = json_object_get(j, "platform");
	if (json_is_object(plat)) {
		if ((rc = opt_string(plat, "os", &d->platform_os, where)) < 0 ||
		    (rc = opt_string(plat, "architecture", &d->platform_arch, where)) < 0)
			return rc;
	}
	return parse_annotations(json_object_get(j, "annotations"), &d->annotations, &d->nannotations, where);
}

static int parse_list(json_t *arr, pw_oci_manifest *m, const char *name)
{
	size_t i;
	json_t *e;
	char where[64];
	if (!json_is_array(arr))
		return pw_error_set(PW_EINVALID, "manifest: %s is missing or not a list", name);
	if (json_array_size(arr) > MAX_DESCRIPTORS)
		return pw_error_set(PW_EINVALID, "manifest: more than %d %s", MAX_DESCRIPTORS, name);
	m->layers = calloc(json_array_size(arr) + 1, sizeof *m->layers);
	if (!m->layers)
		return pw_error_set(PW_ENOMEM, "out of memory");
	json_array_foreach(arr, i, e) {
		snprintf(where, sizeof where, "%s[%zu]", name, i);
		m->nlayers++;
		int rc = parse_desc(e, &m->layers[i], where);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool is_index_type(const char *t)
{
	return t && (!strcmp(t, PW_OCI_MT_INDEX) || !strcmp(t, PW_OCI_MT_DOCKER_LIST));
}

int pw_oci_manifest_parse(pw_oci_manifest **out, const void *data, size_t len, const char *content_type)
{
	json_error_t jerr;
	json_t *root, *v;
	pw_oci_manifest *m;
	int rc;
	char ct[128] = "";
	*out = NULL;
	if (content_type) {
		snprintf(ct, sizeof ct, "%s", content_type);
		ct[strcspn(ct, "; ")] = 0;
	}
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return pw_error_set(PW_EINVALID, "manifest: invalid JSON at line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return pw_error_set(PW_EINVALID, "manifest: not a JSON object");
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		json_decref(root);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	v = json_object_get(root, "schemaVersion");
	if (json_is_integer(v) && json_integer_value(v) == 1) {
		rc = pw_error_set(PW_EUNSUPPORTED, "manifest: Docker schema 1 is not supported");
		goto fail;
	}
	if (!json_is_integer(v) || json_integer_value(v) != 2) {
		rc = pw_error_set(PW_EINVALID, "manifest: schemaVersion must be 2");
		goto fail;
	}
	if ((rc = opt_string(root, "mediaType", &m->media_type, "manifest")) < 0)
		goto fail;
	if (!m->media_type && *ct && !(m->media_type = strdup(ct))) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = opt_string(root, "artifactType", &m->artifact_type, "manifest")) < 0)
		goto fail;
	if (is_index_type(m->media_type) || (!m->media_type && json_object_get(root, "manifests"))) {
		m->kind = PW_OCI_KIND_INDEX;
		if ((rc = parse_list(json_object_get(root, "manifests"), m, "manifests")) < 0)
			goto fail;
	} else {
		if (m->media_type && strcmp(m->media_type, PW_OCI_MT_MANIFEST) &&
		    strcmp(m->media_type, PW_OCI_MT_DOCKER_MANIFEST)) {
			rc = pw_error_set(PW_EUNSUPPORTED, "manifest: unsupported media type '%.100s'", m->media_type);
			goto fail;
		}
		m->kind = PW_OCI_KIND_MANIFEST;
		if ((rc = parse_desc(json_object_get(root, "config"), &m->config, "config")) < 0)
			goto fail;
		if ((rc = parse_list(json_object_get(root, "layers"), m, "layers")) < 0)
			goto fail;
	}
	if ((v = json_object_get(root, "subject"))) {
		m->subject = calloc(1, sizeof *m->subject);
		if (!m->subject) {
			rc = pw_error_set(PW_ENOMEM, "out of memory");
			goto fail;
		}
		if ((rc = parse_desc(v, m->subject, "subject")) < 0)
			goto fail;
	}
	if ((rc = parse_annotations(json_object_get(root, "annotations"), &m->annotations, &m->nannotations,
	                            "manifest")) < 0)
		goto fail;
	json_decref(root);
	*out = m;
	return 0;
fail:
	json_decref(root);
	pw_oci_manifest_free(m);
	return rc;
}

const char *pw_oci_manifest_annotation(const pw_oci_manifest *m, const char *key)
{
	for (size_t i = 0; m && i < m->nannotations; i++)
		if (!strcmp(m->annotations[i].key, key))
			return m->annotations[i].value;
	return NULL;
}
