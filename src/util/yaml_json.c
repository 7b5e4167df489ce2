/*
 * YAML -> JSON: the one reader of YAML in Prewarm (policies.yml, sources.yml, settings files).
 *
 * libyaml parses the text into a document graph; this file walks the graph into a jansson
 * value. It is the server's first contact with outside input, so it is strict and bounded:
 * duplicate keys and non-scalar keys are errors naming the line, and aliases are expanded
 * under a depth and node budget so "billion laughs" or a self-referencing anchor gives a
 * clear error instead of exhausting memory. Plain scalars are typed the way YAML 1.2's core
 * schema does (null, true/false, integers, floats); quoted scalars stay strings.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "prewarm/util.h"

#define YJ_MAX_DEPTH 64
#define YJ_MAX_NODES 200000

typedef struct yj {
	yaml_document_t *doc;
	const char *origin;
	size_t nodes;
} yj;

static bool is_null_word(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int bool_word(const char *s)
{
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return 1;
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return 0;
	return -1;
}

/* Integer per the core schema: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
static bool parse_int(const char *s, json_int_t *out)
{
	const char *p = s;
	int base = 10;
	char *end;

	if (!strncmp(s, "0x", 2)) {
		base = 16;
		p = s + 2;
	} else if (!strncmp(s, "0o", 2)) {
		base = 8;
		p = s + 2;
	} else if (*p == '-' || *p == '+') {
		p++;
	}
	if (!*p)
		return false;
	for (const char *q = p; *q; q++) {
		if (base == 16 ? !strchr("0123456789abcdefABCDEF", *q)
		               : (*q < '0' || *q > (base == 8 ? '7' : '9')))
			return false;
	}
	errno = 0;
	long long v = strtoll(base == 10 ? s : p, &end, base);
	if (errno || *end)
		return false;
	*out = (json_int_t)v;
	return true;
}

/* Float per the core schema (decimal with '.' or exponent, .inf and .nan are refused by JSON). */
static bool parse_float(const char *s, double *out)
{
	const char *p = s;
	bool digits = false, dot_or_exp = false;
	char *end;

	if (*p == '-' || *p == '+')
		p++;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits = true;
		else if (*p == '.' || *p == 'e' || *p == 'E' || ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')))
			dot_or_exp = true;
		else
			return false;
	}
	if (!digits || !dot_or_exp)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static json_t *scalar_to_json(yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;

	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strlen(s) == len) {
		json_int_t i;
		double d;
		int b;
		if (is_null_word(s))
			return json_null();
		if ((b = bool_word(s)) >= 0)
			return json_boolean(b);
		if (parse_int(s, &i))
			return json_integer(i);
		if (parse_float(s, &d))
			return json_real(d);
	}
	return json_stringn(s, len);  /* NULL for invalid UTF-8 */
}

static int node_to_json(yj *y, yaml_node_t *n, int depth, json_t **out);

static int mapping_to_json(yj *y, yaml_node_t *n, int depth, json_t **out)
{
	json_t *obj = json_object();
	if (!obj)
		return pw_error_set(PW_ENOMEM, "%s: out of memory", y->origin);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
		json_t *jv = NULL;
		int rc;

		if (!k || !v) {
			json_decref(obj);
			return pw_error_set(PW_EINVALID, "%s: malformed YAML document", y->origin);
		}
		if (k->type != YAML_SCALAR_NODE) {
			json_decref(obj);
			return pw_error_set(PW_EINVALID, "%s: line %zu: mapping keys must be strings, not %s",
			                    y->origin, k->start_mark.line + 1,
			                    k->type == YAML_MAPPING_NODE ? "a mapping" : "a sequence");
		}
		const char *key = (const char *)k->data.scalar.value;
		if (strlen(key) != k->data.scalar.length) {
			json_decref(obj);
			return pw_error_set(PW_EINVALID, "%s: line %zu: a mapping key contains a NUL character",
			                    y->origin, k->start_mark.line + 1);
		}
		if (json_object_get(obj, key)) {
			json_decref(obj);
			return pw_error_set(PW_EINVALID, "%s: line %zu: duplicate key \"%s\"", y->origin,
			                    k->start_mark.line + 1, key);
		}
		if ((rc = node_to_json(y, v, depth + 1, &jv)) < 0) {
			json_decref(obj);
			return rc;
		}
		if (json_object_set_new_nocheck(obj, key, jv) < 0) {
			json_decref(obj);
			return pw_error_set(PW_ENOMEM, "%s: out of memory", y->origin);
		}
	}
	*out = obj;
	return 0;
}

static int node_to_json(yj *y, yaml_node_t *n, int depth, json_t **out)
{
	if (depth > YJ_MAX_DEPTH)
		return pw_error_set(PW_EINVALID, "%s: line %zu: nesting deeper than %d levels (or a recursive alias)",
		                    y->origin, n->start_mark.line + 1, YJ_MAX_DEPTH);
	if (++y->nodes > YJ_MAX_NODES)
		return pw_error_set(PW_EINVALID, "%s: document too large (more than %d values after alias expansion)",
		                    y->origin, YJ_MAX_NODES);
	switch (n->type) {
	case YAML_SCALAR_NODE:
		*out = scalar_to_json(n);
		return *out ? 0 : pw_error_set(PW_EINVALID, "%s: line %zu: a string is not valid UTF-8",
		                               y->origin, n->start_mark.line + 1);
	case YAML_SEQUENCE_NODE: {
		json_t *arr = json_array();
		if (!arr)
			return pw_error_set(PW_ENOMEM, "%s: out of memory", y->origin);
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			yaml_node_t *c = yaml_document_get_node(y->doc, *it);
			json_t *jc = NULL;
			int rc;
			if (!c) {
				json_decref(arr);
				return pw_error_set(PW_EINVALID, "%s: malformed YAML document", y->origin);
			}
			if ((rc = node_to_json(y, c, depth + 1, &jc)) < 0) {
				json_decref(arr);
				return rc;
			}
			json_array_append_new(arr, jc);
		}
		*out = arr;
		return 0;
	}
	case YAML_MAPPING_NODE:
		return mapping_to_json(y, n, depth, out);
	default:
		return pw_error_set(PW_EINVALID, "%s: malformed YAML document", y->origin);
	}
}

/* Loads the documents of `text`: one (`all` false: a second one is an error) or every one
 * into a JSON array (`all` true; an empty document is null). */
static int load_docs(json_t **out, const char *text, size_t len, const char *origin, bool all)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yj y = { &doc, origin ? origin : "YAML", 0 };
	json_t *docs = all ? json_array() : NULL;
	json_t *root = NULL;
	int rc = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&parser)) {
		json_decref(docs);
		return pw_error_set(PW_ENOMEM, "%s: yaml_parser_initialize failed", y.origin);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (size_t n = 0;; n++) {
		if (!yaml_parser_load(&parser, &doc)) {
			rc = pw_error_set(PW_EINVALID, "%s: line %zu column %zu: %s%s%s", y.origin,
			                  parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			                  parser.problem ? parser.problem : "YAML syntax error",
			                  parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		yaml_node_t *top = yaml_document_get_root_node(&doc);
		if (!top) {   /* the end of the stream */
			yaml_document_delete(&doc);
			if (n == 0)
				rc = pw_error_set(PW_ENOTFOUND, "%s: empty document", y.origin);
			break;
		}
		if (!all && n == 1) {
			/* a second document would be silently ignored: refuse it */
			yaml_document_delete(&doc);
			rc = pw_error_set(PW_EINVALID, "%s: more than one YAML document (expected one)", y.origin);
			break;
		}
		json_t *v = NULL;
		rc = node_to_json(&y, top, 0, &v);
		yaml_document_delete(&doc);
		if (rc < 0)
			break;
		if (all)
			json_array_append_new(docs, v);
		else
			root = v;
	}
	yaml_parser_delete(&parser);
	if (rc < 0) {
		json_decref(root);
		json_decref(docs);
		return rc;
	}
	*out = all ? docs : root;
	return 0;
}

int pw_yaml_to_json(void **out, const char *text, size_t len, const char *origin)
{
	json_t *v = NULL;
	int rc = load_docs(&v, text, len, origin, false);
	*out = v;
	return rc;
}

int pw_yaml_to_json_all(void **out, const char *text, size_t len, const char *origin)
{
	json_t *v = NULL;
	int rc = load_docs(&v, text, len, origin, true);
	*out = v;
	return rc;
}
