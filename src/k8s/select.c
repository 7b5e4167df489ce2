/*
 * Label and field selectors, and Kubewarden's field masks.
 *
 * Against an API server the selectors are sent as they are (?labelSelector=,
 * ?fieldSelector=) and the server filters; answering from a file of objects
 * (`prewarm eval --allow-context-aware`) needs them evaluated here, with the
 * apimachinery syntax: label requirements `key`, `!key`, `key=v`, `key==v`, `key!=v`,
 * `key in (a,b)`, `key notin (a,b)`; field requirements `path=v`, `path==v`, `path!=v`
 * (a dotted path such as metadata.name or status.phase, compared as text, a missing field
 * being ""). Requirements are comma-separated and all must hold. A selector comes from a
 * policy: it is parsed strictly and bounded (fuzz/fuzz_k8s_decode.c).
 *
 * Field masks (Kubewarden's callback_handler/kubernetes/field_mask.rs): dotted paths
 * forming a tree; an object keeps only the keys of the tree's level, arrays apply the
 * level to each element, and a leaf keeps its value whole. They prune the object's data
 * (everything but apiVersion, kind and metadata, as Kubewarden's DynamicObject::data).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

#define SEL_MAX_LEN 4096
#define SEL_MAX_REQS 64
#define SEL_MAX_VALUES 64
#define MASK_MAX_PATHS 256
#define MASK_MAX_DEPTH 32

typedef enum sel_op { OP_EXISTS, OP_NOT_EXISTS, OP_EQ, OP_NE, OP_IN, OP_NOTIN } sel_op;

typedef struct sel_req {
	char *key;
	sel_op op;
	char **vals;
	size_t nvals;
} sel_req;

struct k8s_selector {
	bool field;
	sel_req reqs[SEL_MAX_REQS];
	size_t n;
};

void k8s_selector_free(k8s_selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		for (size_t j = 0; j < s->reqs[i].nvals; j++)
			free(s->reqs[i].vals[j]);
		free(s->reqs[i].vals);
	}
	free(s);
}

static char *trimmed(const char *a, const char *b)
{
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	return strndup(a, (size_t)(b - a));
}

static bool valid_token(const char *s, bool field)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(field ? "-_./" : "-_./", *p)))
			return false;
	return true;
}

static int add_value(sel_req *r, char *v)
{
	if (!v)
		return pw_error_set(PW_ENOMEM, "out of memory");
	if (r->nvals >= SEL_MAX_VALUES) {
		free(v);
		return pw_error_set(PW_EINVALID, "selector: more than %d values for \"%s\"", SEL_MAX_VALUES, r->key);
	}
	char **nv = realloc(r->vals, (r->nvals + 1) * sizeof *nv);
	if (!nv) {
		free(v);
		return pw_error_set(PW_ENOMEM, "out of memory");
	}
	r->vals = nv;
	r->vals[r->nvals++] = v;
	return 0;
}

/* One requirement in [a, b). */
static int parse_req(k8s_selector *s, const char *a, const char *b, const char *what)
{
	sel_req *r = &s->reqs[s->n];
	memset(r, 0, sizeof *r);
	char *text = trimmed(a, b);
	if (!text)
		return pw_error_set(PW_ENOMEM, "out of memory");
	int rc = 0;
	char *op;
	if (!*text) {
		rc = pw_error_set(PW_EINVALID, "%s: empty requirement", what);
	} else if ((op = strstr(text, "!=")) || (op = strstr(text, "==")) || (op = strchr(text, '='))) {
		size_t oplen = (op[0] == '=' && op[1] != '=') ? 1 : 2;
		r->op = op[0] == '!' ? OP_NE : OP_EQ;
		r->key = trimmed(text, op);
		char *v = trimmed(op + oplen, text + strlen(text));
		if (r->key && !valid_token(r->key, s->field))
			rc = pw_error_set(PW_EINVALID, "%s: invalid key \"%.64s\"", what, r->key);
		else if (v && !s->field && *v && !valid_token(v, false))
			rc = pw_error_set(PW_EINVALID, "%s: invalid value \"%.64s\"", what, v);
		if (rc == 0)
			rc = add_value(r, v);
		else
			free(v);
	} else if (!s->field && text[0] == '!') {
		r->op = OP_NOT_EXISTS;
		r->key = trimmed(text + 1, text + strlen(text));
		if (r->key && !valid_token(r->key, false))
			rc = pw_error_set(PW_EINVALID, "%s: invalid key \"%.64s\"", what, r->key);
	} else if (!s->field) {
		char *paren = strchr(text, '(');
		if (!paren) {
			r->op = OP_EXISTS;
			r->key = strdup(text);
			if (r->key && !valid_token(r->key, false))
				rc = pw_error_set(PW_EINVALID, "%s: invalid requirement \"%.64s\"", what, r->key);
		} else {
			char *close = strrchr(text, ')');
			char *head = trimmed(text, paren);
			char *sp = head ? strrchr(head, ' ') : NULL;
			if (!close || close[1] || !sp) {
				rc = pw_error_set(PW_EINVALID, "%s: invalid requirement \"%.64s\"", what, text);
			} else {
				char *opw = trimmed(sp, head + strlen(head));
				r->key = trimmed(head, sp);
				if (!opw || (strcmp(opw, "in") && strcmp(opw, "notin")))
					rc = pw_error_set(PW_EINVALID, "%s: unknown operator in \"%.64s\"", what, text);
				else
					r->op = !strcmp(opw, "in") ? OP_IN : OP_NOTIN;
				free(opw);
				if (rc == 0 && r->key && !valid_token(r->key, false))
					rc = pw_error_set(PW_EINVALID, "%s: invalid key \"%.64s\"", what, r->key);
				for (const char *p = paren + 1; rc == 0 && p <= close;) {
					const char *e = memchr(p, ',', (size_t)(close - p));
					if (!e)
						e = close;
					char *v = trimmed(p, e);
					if (v && *v && !valid_token(v, false)) {
						rc = pw_error_set(PW_EINVALID, "%s: invalid value \"%.64s\"", what, v);
						free(v);
					} else {
						rc = add_value(r, v);
					}
					p = e + 1;
				}
			}
			free(head);
		}
	} else {
		rc = pw_error_set(PW_EINVALID, "%s: \"%.64s\" is not path=value or path!=value", what, text);
	}
	free(text);
	if (rc == 0 && !r->key)
		rc = pw_error_set(PW_ENOMEM, "out of memory");
	s->n++;   /* freed with the selector even on failure */
	return rc;
}

static int parse(k8s_selector **out, const char *s, bool field)
{
	const char *what = field ? "field selector" : "label selector";
	*out = NULL;
	if (!s || !*s)
		return 0;
	if (strlen(s) > SEL_MAX_LEN)
		return pw_error_set(PW_EINVALID, "%s longer than %d bytes", what, SEL_MAX_LEN);
	k8s_selector *sel = calloc(1, sizeof *sel);
	if (!sel)
		return pw_error_set(PW_ENOMEM, "out of memory");
	sel->field = field;
	int rc = 0, depth = 0;
	const char *start = s;
	for (const char *p = s;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if (*p == '\0' || (*p == ',' && depth == 0)) {
			if (sel->n >= SEL_MAX_REQS) {
				rc = pw_error_set(PW_EINVALID, "%s: more than %d requirements", what, SEL_MAX_REQS);
				break;
			}
			if ((rc = parse_req(sel, start, p, what)) < 0)
				break;
			start = p + 1;
		}
		if (!*p)
			break;
	}
	if (rc < 0) {
		k8s_selector_free(sel);
		return rc;
	}
	*out = sel;
	return 0;
}

int k8s_label_selector_parse(k8s_selector **out, const char *s)
{
	return parse(out, s, false);
}

int k8s_field_selector_parse(k8s_selector **out, const char *s)
{
	return parse(out, s, true);
}

/* The text of a field at a dotted path ("" when absent); *buf holds numbers. */
static const char *field_text(const json_t *obj, const char *path, char *buf, size_t n)
{
	const json_t *v = obj;
	const char *p = path;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		v = json_object_getn(v, p, l);
		p += l + (dot ? 1 : 0);
		if (!dot)
			break;
	}
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_true(v))
		return "true";
	if (json_is_false(v))
		return "false";
	if (json_is_integer(v)) {
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return "";
}

bool k8s_selector_matches(const k8s_selector *sel, const json_t *obj)
{
	if (!sel)
		return true;
	const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	for (size_t i = 0; i < sel->n; i++) {
		const sel_req *r = &sel->reqs[i];
		char num[32];
		const char *have;
		if (sel->field)
			have = field_text(obj, r->key, num, sizeof num);
		else
			have = json_string_value(json_object_get(labels, r->key));
		bool in = false;
		for (size_t j = 0; j < r->nvals && have; j++)
			if (!strcmp(have, r->vals[j]))
				in = true;
		switch (r->op) {
		case OP_EXISTS: if (!have) return false; break;
		case OP_NOT_EXISTS: if (have) return false; break;
		case OP_EQ: case OP_IN: if (!in) return false; break;
		case OP_NE: case OP_NOTIN: if (in) return false; break;
		}
	}
	return true;
}

/* ---- field masks ---------------------------------------------------------------------- */

json_t *k8s_masks_tree(const json_t *masks)
{
	if (!json_is_array(masks) || json_array_size(masks) == 0)
		return NULL;
	json_t *root = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(masks, i, m) {
		const char *path = json_string_value(m);
		if (!path || i >= MASK_MAX_PATHS)
			continue;
		json_t *node = root;
		int depth = 0;
		for (const char *p = path;; depth++) {
			const char *dot = strchr(p, '.');
			size_t l = dot ? (size_t)(dot - p) : strlen(p);
			if (depth >= MASK_MAX_DEPTH)
				break;
			json_t *child = json_object_getn(node, p, l);
			if (!child) {
				child = json_object();
				json_object_setn_new(node, p, l, child);
			}
			node = child;
			if (!dot)
				break;
			p = dot + 1;
		}
	}
	return root;
}

static void prune(json_t *v, const json_t *node, int depth)
{
	if (!node || json_object_size(node) == 0 || depth > MASK_MAX_DEPTH)
		return;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, c) {
			const json_t *child = json_object_get(node, k);
			if (child)
				prune(c, child, depth + 1);
			else
				json_object_del(v, k);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			prune(e, node, depth + 1);
	}
}

void k8s_object_trim(json_t *obj, const json_t *masks, bool strip)
{
	if (!json_is_object(obj))
		return;
	json_t *meta = json_object_get(obj, "metadata");
	if (strip && json_is_object(meta)) {
		json_object_set_new(meta, "managedFields", json_array());
		json_t *ann = json_object_get(meta, "annotations");
		if (!json_is_object(ann))
			json_object_set_new(meta, "annotations", json_object());
		else
			json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
	}
	if (!masks || json_object_size(masks) == 0)
		return;
	const char *k;
	json_t *c;
	void *tmp;
	json_object_foreach_safe(obj, tmp, k, c) {
		if (!strcmp(k, "apiVersion") || !strcmp(k, "kind") || !strcmp(k, "metadata"))
			continue;
		const json_t *child = json_object_get(masks, k);
		if (child)
			prune(c, child, 0);
		else
			json_object_del(obj, k);
	}
}
