/*
 * Decoding what the Kubernetes API server sends: list responses (metadata.resourceVersion,
 * metadata.continue, items), watch events (one JSON object per line: {"type": ADDED |
 * MODIFIED | DELETED | BOOKMARK | ERROR, "object": ...}; an ERROR carries a Status whose code
 * 410 means the resourceVersion is gone), discovery documents (APIResourceList) and Status
 * bodies. All of it is outside input: every field is checked for its type, nothing is
 * trusted to be present, and fuzz/fuzz_k8s_decode.c runs these functions on arbitrary bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

static const char *meta_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

int k8s_decode_event(const char *line, size_t len, k8s_event *ev)
{
	memset(ev, 0, sizeof *ev);
	json_error_t e;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		return pw_error_set(PW_EINVALID, "watch event: not JSON: %s at column %d", e.text, e.column);
	const char *type = json_string_value(json_object_get(j, "type"));
	json_t *obj = json_object_get(j, "object");
	int rc = 0;
	if (!type) {
		rc = pw_error_set(PW_EINVALID, "watch event: no \"type\" string");
		goto out;
	}
	if (!json_is_object(obj)) {
		rc = pw_error_set(PW_EINVALID, "watch event %.32s: no \"object\" object", type);
		goto out;
	}
	static const struct { const char *name; k8s_event_type t; } types[] = {
		{ "ADDED", K8S_EV_ADDED }, { "MODIFIED", K8S_EV_MODIFIED }, { "DELETED", K8S_EV_DELETED },
		{ "BOOKMARK", K8S_EV_BOOKMARK }, { "ERROR", K8S_EV_ERROR },
	};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(type, types[i].name))
			ev->type = types[i].t;
	if (!ev->type) {
		rc = pw_error_set(PW_EINVALID, "watch event: unknown type \"%.32s\"", type);
		goto out;
	}
	ev->object = json_incref(obj);
	ev->rv = meta_str(obj, "resourceVersion");
	if (ev->type == K8S_EV_ERROR) {
		json_t *code = json_object_get(obj, "code");
		if (json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 1000)
			ev->code = (int)json_integer_value(code);
		ev->message = json_string_value(json_object_get(obj, "message"));
	} else if (ev->type != K8S_EV_BOOKMARK) {
		if (!meta_str(obj, "name")) {
			k8s_event_free(ev);
			rc = pw_error_set(PW_EINVALID, "watch event %s: object without metadata.name", type);
			goto out;
		}
	}
out:
	json_decref(j);
	return rc;
}

void k8s_event_free(k8s_event *ev)
{
	json_decref(ev->object);
	memset(ev, 0, sizeof *ev);
}

int k8s_decode_list(const char *body, size_t len, json_t **items, char **rv, char **cont)
{
	*items = NULL;
	*rv = *cont = NULL;
	json_error_t e;
	json_t *j = json_loadb(body, len, 0, &e);
	if (!j)
		return pw_error_set(PW_EINVALID, "list response: not JSON: %s at line %d column %d", e.text,
		                    e.line, e.column);
	int rc = 0;
	json_t *it = json_object_get(j, "items");
	if (!json_is_object(j) || (!json_is_array(it) && !json_is_null(it) && it)) {
		rc = pw_error_set(PW_EINVALID, "list response: not a list object (no \"items\" array)");
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(it, i, o) {
		if (!json_is_object(o) || !meta_str(o, "name")) {
			rc = pw_error_set(PW_EINVALID, "list response: item %zu is not an object with metadata.name", i);
			goto out;
		}
	}
	const char *v = meta_str(j, "resourceVersion");
	const char *c = meta_str(j, "continue");
	*rv = strdup(v ? v : "");
	*cont = c && *c ? strdup(c) : NULL;
	*items = json_is_array(it) ? json_incref(it) : json_array();
out:
	json_decref(j);
	return rc;
}

int k8s_decode_discovery(const char *body, size_t len, const char *kind, char **plural,
                         bool *namespaced)
{
	*plural = NULL;
	*namespaced = false;
	json_error_t e;
	json_t *j = json_loadb(body, len, 0, &e);
	if (!j)
		return pw_error_set(PW_EINVALID, "discovery document: not JSON: %s", e.text);
	json_t *res = json_object_get(j, "resources");
	int rc = PW_ENOTFOUND;
	if (!json_is_array(res)) {
		rc = pw_error_set(PW_EINVALID, "discovery document: no \"resources\" array");
		goto out;
	}
	size_t i;
	json_t *r;
	json_array_foreach(res, i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *k = json_string_value(json_object_get(r, "kind"));
		if (!name || !k || !*name || strchr(name, '/') || strcmp(k, kind) != 0)
			continue;
		*plural = strdup(name);
		*namespaced = json_is_true(json_object_get(r, "namespaced"));
		rc = *plural ? 0 : pw_error_set(PW_ENOMEM, "out of memory");
		break;
	}
out:
	json_decref(j);
	return rc;
}

char *k8s_status_text(const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	char *s = strdup(m ? m : "");
	json_decref(j);
	return s;
}

int k8s_object_key(const json_t *obj, char **key)
{
	const char *name = meta_str(obj, "name");
	const char *ns = meta_str(obj, "namespace");
	*key = NULL;
	if (!name)
		return pw_error_set(PW_EINVALID, "object without metadata.name");
	pw_buf b = PW_BUF_INIT;
	if (pw_buf_printf(&b, "%s/%s", ns ? ns : "", name) < 0)
		return PW_ENOMEM;
	*key = (char *)pw_buf_detach(&b, NULL);
	return 0;
}

void k8s_rust_option(pw_buf *b, const char *s)
{
	if (!s) {
		pw_buf_puts(b, "None");
		return;
	}
	/* Rust's Debug for str: quotes, with \" \\ \n \t \r escaped */
	pw_buf_puts(b, "Some(\"");
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '"': pw_buf_puts(b, "\\\""); break;
		case '\\': pw_buf_puts(b, "\\\\"); break;
		case '\n': pw_buf_puts(b, "\\n"); break;
		case '\t': pw_buf_puts(b, "\\t"); break;
		case '\r': pw_buf_puts(b, "\\r"); break;
		default: pw_buf_append(b, p, 1);
		}
	}
	pw_buf_puts(b, "\")");
}
