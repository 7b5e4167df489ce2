/*
 * JSON Patch (RFC 6902) by diffing two JSON documents, and an applier for it.
 *
 * Kubewarden policies answer a mutation with the whole `mutated_object`; the API server
 * wants a JSON Patch against the object it sent. The differ walks both documents: object
 * members missing on one side become remove/add, members on both sides are compared
 * recursively, arrays are compared index by index (extra elements removed from the end
 * first, so the indexes of the earlier operations stay valid, or appended), and any other
 * difference (type, scalar value) is a replace. Paths are RFC 6901 pointers (~0, ~1).
 * The applier exists so that tests and the fuzz target can check that applying the diff to
 * `from` gives exactly `to`.
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"

int pw_host_pointer_append(pw_buf *b, const char *token)
{
	if (pw_buf_append(b, "/", 1) < 0)
		return PW_ENOMEM;
	for (const char *s = token; *s; s++) {
		int rc;
		if (*s == '~')
			rc = pw_buf_append(b, "~0", 2);
		else if (*s == '/')
			rc = pw_buf_append(b, "~1", 2);
		else
			rc = pw_buf_append(b, s, 1);
		if (rc < 0)
			return PW_ENOMEM;
	}
	return 0;
}

static int add_op(json_t *ops, const char *op, const char *path, const json_t *value)
{
	json_t *o = json_object();
	if (!o)
		return PW_ENOMEM;
	int rc = json_object_set_new(o, "op", json_string(op));
	rc |= json_object_set_new(o, "path", json_string(path));
	if (value)
		rc |= json_object_set_new(o, "value", json_deep_copy(value));
	if (rc || json_array_append_new(ops, o)) {
		if (rc)
			json_decref(o);
		return PW_ENOMEM;
	}
	return 0;
}

/* path = prefix + "/" + escaped token, in a fresh buffer. */
static int child_path(pw_buf *b, const char *prefix, const char *token)
{
	pw_buf_clear(b);
	if (pw_buf_puts(b, prefix) < 0)
		return PW_ENOMEM;
	return pw_host_pointer_append(b, token);
}

static int diff_objects(json_t *ops, const char *prefix, const json_t *from, const json_t *to)
{
	pw_buf path = PW_BUF_INIT;
	const char *k;
	json_t *v;
	int rc = 0;
	/* removals first, then changes and additions, in the order of `to` */
	json_object_foreach((json_t *)from, k, v) {
		if (json_object_get(to, k))
			continue;
		if ((rc = child_path(&path, prefix, k)) < 0 ||
		    (rc = add_op(ops, "remove", (char *)path.data, NULL)) < 0)
			goto out;
	}
	json_object_foreach((json_t *)to, k, v) {
		json_t *old = json_object_get(from, k);
		if ((rc = child_path(&path, prefix, k)) < 0)
			goto out;
		if (!old)
			rc = add_op(ops, "add", (char *)path.data, v);
		else
			rc = pw_host_json_diff(ops, (char *)path.data, old, v);
		if (rc < 0)
			goto out;
	}
out:
	pw_buf_free(&path);
	return rc;
}

static int diff_arrays(json_t *ops, const char *prefix, const json_t *from, const json_t *to)
{
	size_t nf = json_array_size(from), nt = json_array_size(to);
	size_t common = nf < nt ? nf : nt;
	pw_buf path = PW_BUF_INIT;
	char idx[32];
	int rc = 0;
	for (size_t i = 0; i < common && rc == 0; i++) {
		snprintf(idx, sizeof idx, "%zu", i);
		if ((rc = child_path(&path, prefix, idx)) == 0)
			rc = pw_host_json_diff(ops, (char *)path.data, json_array_get(from, i),
			                       json_array_get(to, i));
	}
	for (size_t i = nf; i > common && rc == 0; i--) {
		snprintf(idx, sizeof idx, "%zu", i - 1);
		if ((rc = child_path(&path, prefix, idx)) == 0)
			rc = add_op(ops, "remove", (char *)path.data, NULL);
	}
	for (size_t i = common; i < nt && rc == 0; i++) {
		snprintf(idx, sizeof idx, "%zu", i);
		if ((rc = child_path(&path, prefix, idx)) == 0)
			rc = add_op(ops, "add", (char *)path.data, json_array_get(to, i));
	}
	pw_buf_free(&path);
	return rc;
}

int pw_host_json_diff(json_t *ops, const char *prefix, const json_t *from, const json_t *to)
{
	if (json_is_object(from) && json_is_object(to))
		return diff_objects(ops, prefix, from, to);
	if (json_is_array(from) && json_is_array(to))
		return diff_arrays(ops, prefix, from, to);
	if (json_equal((json_t *)from, (json_t *)to))
		return 0;
	return add_op(ops, "replace", prefix, to);
}

int pw_policy_json_patch(const char *from_json, const char *to_json, char **patch)
{
	json_error_t e;
	*patch = NULL;
	json_t *from = json_loads(from_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!from)
		return pw_error_set(PW_EINVALID, "json patch: 'from' document: %s at line %d column %d",
		                    e.text, e.line, e.column);
	json_t *to = json_loads(to_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!to) {
		json_decref(from);
		return pw_error_set(PW_EINVALID, "json patch: 'to' document: %s at line %d column %d",
		                    e.text, e.line, e.column);
	}
	json_t *ops = json_array();
	int rc = ops ? pw_host_json_diff(ops, "", from, to) : PW_ENOMEM;
	if (rc == 0 && !(*patch = json_dumps(ops, JSON_COMPACT | JSON_ENCODE_ANY)))
		rc = PW_ENOMEM;
	if (rc == PW_ENOMEM)
		pw_error_set(PW_ENOMEM, "json patch: out of memory");
	json_decref(ops);
	json_decref(from);
	json_decref(to);
	return rc;
}

/* ---- the applier ------------------------------------------------------------------- */

/* Splits the next reference token off *p (after its leading '/'), unescaped into tok. */
static int next_token(const char **p, pw_buf *tok)
{
	pw_buf_clear(tok);
	const char *s = *p + 1;  /* skip '/' */
	for (; *s && *s != '/'; s++) {
		char c = *s;
		if (c == '~') {
			if (s[1] == '0')
				c = '~';
			else if (s[1] == '1')
				c = '/';
			else
				return PW_EINVALID;
			s++;
		}
		if (pw_buf_append(tok, &c, 1) < 0)
			return PW_ENOMEM;
	}
	if (pw_buf_append(tok, "", 0) < 0)
		return PW_ENOMEM;
	*p = s;
	return 0;
}

/* An array index token: digits without a leading zero (or "-" when allowed). */
static int parse_index(const char *t, size_t size, bool allow_end, size_t *out)
{
	if (allow_end && !strcmp(t, "-")) {
		*out = size;
		return 0;
	}
	if (!*t || (t[0] == '0' && t[1]) || strlen(t) > 18)
		return PW_EINVALID;
	size_t v = 0;
	for (const char *s = t; *s; s++) {
		if (*s < '0' || *s > '9')
			return PW_EINVALID;
		v = v * 10 + (size_t)(*s - '0');
	}
	if (v > size || (!allow_end && v == size))
		return PW_EINVALID;
	*out = v;
	return 0;
}

/* Resolves a pointer to its parent container and last token. */
static int resolve_parent(json_t *doc, const char *ptr, json_t **parent, pw_buf *last)
{
	if (*ptr != '/')
		return PW_EINVALID;
	json_t *cur = doc;
	const char *p = ptr;
	for (;;) {
		int rc = next_token(&p, last);
		if (rc < 0)
			return rc;
		if (!*p) {
			*parent = cur;
			return 0;
		}
		const char *t = (const char *)last->data;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, t);
		} else if (json_is_array(cur)) {
			size_t i;
			if (parse_index(t, json_array_size(cur), false, &i) < 0)
				return PW_EINVALID;
			cur = json_array_get(cur, i);
		} else {
			return PW_EINVALID;
		}
		if (!cur)
			return PW_EINVALID;
	}
}

static json_t *get_ptr(json_t *doc, const char *ptr)
{
	if (!*ptr)
		return doc;
	json_t *parent;
	pw_buf last = PW_BUF_INIT;
	json_t *r = NULL;
	if (resolve_parent(doc, ptr, &parent, &last) == 0) {
		const char *t = (const char *)last.data;
		size_t i;
		if (json_is_object(parent))
			r = json_object_get(parent, t);
		else if (json_is_array(parent) && parse_index(t, json_array_size(parent), false, &i) == 0)
			r = json_array_get(parent, i);
	}
	pw_buf_free(&last);
	return r;
}

/* Removes the value at ptr; *removed gets a new reference when not NULL. */
static int remove_ptr(json_t **doc, const char *ptr, json_t **removed)
{
	if (!*ptr)
		return PW_EINVALID;  /* removing the root is not meaningful here */
	json_t *parent;
	pw_buf last = PW_BUF_INIT;
	int rc = resolve_parent(*doc, ptr, &parent, &last);
	if (rc == 0) {
		const char *t = (const char *)last.data;
		size_t i;
		json_t *v = NULL;
		if (json_is_object(parent))
			v = json_object_get(parent, t);
		else if (json_is_array(parent) && parse_index(t, json_array_size(parent), false, &i) == 0)
			v = json_array_get(parent, i);
		if (!v) {
			rc = PW_EINVALID;
		} else {
			if (removed)
				*removed = json_incref(v);
			rc = json_is_object(parent) ? json_object_del(parent, t) : json_array_remove(parent, i);
			rc = rc ? PW_EINVALID : 0;
		}
	}
	pw_buf_free(&last);
	return rc;
}

/* Adds (steals) value at ptr. */
static int add_ptr(json_t **doc, const char *ptr, json_t *value)
{
	if (!*ptr) {
		json_decref(*doc);
		*doc = value;
		return 0;
	}
	json_t *parent;
	pw_buf last = PW_BUF_INIT;
	int rc = resolve_parent(*doc, ptr, &parent, &last);
	if (rc == 0) {
		const char *t = (const char *)last.data;
		size_t i;
		if (json_is_object(parent)) {
			rc = json_object_set(parent, t, value) ? PW_EINVALID : 0;
		} else if (json_is_array(parent) &&
		           parse_index(t, json_array_size(parent), true, &i) == 0) {
			rc = json_array_insert(parent, i, value) ? PW_EINVALID : 0;
		} else {
			rc = PW_EINVALID;
		}
	}
	json_decref(value);
	pw_buf_free(&last);
	return rc;
}

static int apply_one(json_t **doc, const json_t *op, size_t n)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	json_t *value = json_object_get(op, "value");
	const char *from = json_string_value(json_object_get(op, "from"));
	if (!name || !path)
		return pw_error_set(PW_EINVALID, "json patch: operation %zu lacks op or path", n);
	int rc;
	if (!strcmp(name, "add") && value) {
		rc = add_ptr(doc, path, json_deep_copy(value));
	} else if (!strcmp(name, "remove")) {
		rc = remove_ptr(doc, path, NULL);
	} else if (!strcmp(name, "replace") && value) {
		rc = *path ? remove_ptr(doc, path, NULL) : 0;
		if (rc == 0)
			rc = add_ptr(doc, path, json_deep_copy(value));
	} else if (!strcmp(name, "test") && value) {
		json_t *cur = get_ptr(*doc, path);
		rc = cur && json_equal(cur, value) ? 0 : PW_EINVALID;
	} else if ((!strcmp(name, "move") || !strcmp(name, "copy")) && from) {
		json_t *v = NULL;
		if (!strcmp(name, "move")) {
			size_t fl = strlen(from);
			if (!strncmp(path, from, fl) && path[fl] == '/')
				return pw_error_set(PW_EINVALID, "json patch: operation %zu moves %s into itself", n, from);
			rc = remove_ptr(doc, from, &v);
		} else {
			json_t *src = get_ptr(*doc, from);
			v = src ? json_deep_copy(src) : NULL;
			rc = v ? 0 : PW_EINVALID;
		}
		if (rc == 0)
			rc = add_ptr(doc, path, v);
	} else {
		return pw_error_set(PW_EINVALID, "json patch: operation %zu: unknown op '%s' or missing member", n, name);
	}
	if (rc < 0)
		return pw_error_set(PW_EINVALID, "json patch: operation %zu (%s %s) does not apply", n, name, path);
	return 0;
}

int pw_host_json_patch_apply(json_t **doc, const json_t *patch)
{
	if (!json_is_array(patch))
		return pw_error_set(PW_EINVALID, "json patch: not an array");
	for (size_t i = 0; i < json_array_size(patch); i++) {
		int rc = apply_one(doc, json_array_get(patch, i), i);
		if (rc < 0)
			return rc;
	}
	return 0;
}
