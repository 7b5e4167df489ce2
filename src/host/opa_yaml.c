/*
 * The YAML builtins (yaml.marshal, yaml.unmarshal, yaml.is_valid) on libyaml, following
 * what OPA does through sigs.k8s.io/yaml, i.e. go-yaml v2 (itself a port of libyaml, so the
 * emitter's layout is the same):
 *  - unmarshal: the first document; plain scalars resolved with YAML 1.1 rules as go-yaml
 *    v2 does (null ~ and empty -> null; y/yes/on/true... -> booleans; Go integers with
 *    0x/0o/0b prefixes; floats), quoted scalars stay strings, anchors and aliases followed,
 *    non-string keys turned into strings; a float with an integral value becomes a JSON
 *    integer (Go's json.Marshal of float64 1 is "1"). Dates (2001-12-14) stay strings here;
 *    go-yaml turns them into timestamps: documented in docs/rego.md.
 *  - marshal: keys in go-yaml's "natural" order (digits compared as numbers), strings plain
 *    unless they would read back as something else (then double-quoted), literal style when
 *    they hold a newline, floats in Go's shortest form.
 * YAML text is outside input: documents are bounded in depth and in alias expansion.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "host/opa_internal.h"

#define MAX_DEPTH 256
#define MAX_ANCHORS 1024
/* Values produced by alias expansion, the "billion laughs" guard. */
#define MAX_ALIAS_NODES 100000

/* ---- scalar resolution (go-yaml v2 resolve) ---------------------------------------------- */

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static const char *const yaml_nulls[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const yaml_trues[] = { "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                          "true", "True", "TRUE", NULL };
static const char *const yaml_falses[] = { "n", "N", "no", "No", "NO", "off", "Off", "OFF",
                                           "false", "False", "FALSE", NULL };
static const char *const yaml_floats_special[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf",
                                                   "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                                   ".NaN", ".NAN", NULL };

/* strconv.ParseInt(s, 0, 64): sign, 0x/0o/0b/0 prefixes, underscores only with a prefix. */
static bool go_parse_int(const char *s, long long *out)
{
	const char *p = s;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	int base = 10;
	bool prefixed = false;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) { base = 16; p += 2; prefixed = true; }
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) { base = 8; p += 2; prefixed = true; }
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) { base = 2; p += 2; prefixed = true; }
	else if (p[0] == '0' && p[1]) { base = 8; p += 1; prefixed = true; }
	if (!*p)
		return false;
	unsigned long long v = 0, lim = neg ? 9223372036854775808ull : 9223372036854775807ull;
	bool last_us = prefixed;   /* "0x_1" is allowed, "1__2" and "1_" are not */
	for (; *p; p++) {
		if (*p == '_') {
			if (!prefixed || last_us)
				return false;
			last_us = true;
			continue;
		}
		int d = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
		        : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : 99;
		if (d >= base)
			return false;
		if (v > (lim - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
		last_us = false;
	}
	if (last_us && p[-1] == '_')
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_float_syntax(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	} else {
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
static bool base60_float(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (!(*p >= '0' && *p <= '9'))
		return false;
	while ((*p >= '0' && *p <= '9') || *p == '_')
		p++;
	int groups = 0;
	while (*p == ':') {
		p++;
		const char *g = p;
		while (*p >= '0' && *p <= '9' && p - g < 2)
			p++;
		if (p == g || (p - g == 2 && g[0] > '5'))
			return false;
		groups++;
	}
	if (!groups)
		return false;
	if (*p == '.') {
		p++;
		while ((*p >= '0' && *p <= '9') || *p == '_')
			p++;
	}
	return *p == '\0';
}

/* YYYY-MM-DD (the timestamp form go-yaml resolves most often) */
static bool date_like(const char *s)
{
	for (int i = 0; i < 10; i++) {
		bool dash = i == 4 || i == 7;
		if (dash ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
			return false;
	}
	return s[10] == '\0' || s[10] == 'T' || s[10] == 't' || s[10] == ' ';
}

static json_t *number_value(double f)
{
	if (f == floor(f) && fabs(f) < 9007199254740992.0)
		return json_integer((json_int_t)f);
	return json_real(f);
}

/* A plain scalar resolved as go-yaml v2 does; NULL with an error for .inf/.nan (no JSON). */
static json_t *resolve_plain(const char *s)
{
	if (in_list(s, yaml_nulls))
		return json_null();
	if (in_list(s, yaml_trues))
		return json_true();
	if (in_list(s, yaml_falses))
		return json_false();
	if (in_list(s, yaml_floats_special)) {
		pw_error_set(PW_EINVALID, "yaml.unmarshal: %s has no JSON value", s);
		return NULL;
	}
	long long i;
	if (go_parse_int(s, &i))
		return json_integer(i);
	if (yaml_float_syntax(s))
		return number_value(strtod(s, NULL));
	return json_string(s);
}

/* ---- unmarshal ---------------------------------------------------------------------------- */

typedef struct anchor {
	char *name;
	json_t *value;
} anchor;

typedef struct yparse {
	yaml_parser_t parser;
	anchor anchors[MAX_ANCHORS];
	size_t nanchors;
	size_t alias_nodes;
} yparse;

static int next_event(yparse *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev))
		return pw_error_set(PW_EINVALID, "yaml: line %zu: %s", y->parser.problem_mark.line + 1,
		                    y->parser.problem ? y->parser.problem : "syntax error");
	return 0;
}

static size_t count_nodes(const json_t *v)
{
	size_t n = 1;
	if (json_is_array(v))
		for (size_t i = 0; i < json_array_size(v); i++)
			n += count_nodes(json_array_get(v, i));
	else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)v, k, e)
			n += count_nodes(e);
	}
	return n;
}

static int remember_anchor(yparse *y, const yaml_char_t *name, json_t *v)
{
	if (!name)
		return 0;
	if (y->nanchors == MAX_ANCHORS)
		return pw_error_set(PW_EINVALID, "yaml: more than %d anchors", MAX_ANCHORS);
	anchor *a = &y->anchors[y->nanchors];
	if (!(a->name = strdup((const char *)name)))
		return pw_error_set(PW_ENOMEM, "yaml: out of memory");
	a->value = json_incref(v);
	y->nanchors++;
	return 0;
}

/* A key as sigs.k8s.io/yaml turns it into a JSON object key. */
static char *key_string(const json_t *k)
{
	char buf[64];
	switch (json_typeof(k)) {
	case JSON_STRING: return strdup(json_string_value(k));
	case JSON_NULL: return strdup("null");
	case JSON_TRUE: return strdup("true");
	case JSON_FALSE: return strdup("false");
	case JSON_INTEGER: snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(k)); return strdup(buf);
	case JSON_REAL: snprintf(buf, sizeof buf, "%.17g", json_real_value(k)); return strdup(buf);
	default: return NULL;
	}
}

static int parse_node(yparse *y, yaml_event_t *ev, int depth, json_t **out);

static int parse_children(yparse *y, bool mapping, int depth, json_t *into)
{
	for (;;) {
		yaml_event_t ev;
		if (next_event(y, &ev) < 0)
			return PW_EINVALID;
		if (ev.type == (mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&ev);
			return 0;
		}
		json_t *k = NULL;
		int rc = parse_node(y, &ev, depth + 1, &k);
		yaml_event_delete(&ev);
		if (rc < 0)
			return rc;
		if (!mapping) {
			json_array_append_new(into, k);
			continue;
		}
		yaml_event_t vev;
		json_t *v = NULL;
		if (next_event(y, &vev) < 0) {
			json_decref(k);
			return PW_EINVALID;
		}
		rc = parse_node(y, &vev, depth + 1, &v);
		yaml_event_delete(&vev);
		if (rc < 0) {
			json_decref(k);
			return rc;
		}
		char *ks = key_string(k);
		json_decref(k);
		if (!ks) {
			json_decref(v);
			return pw_error_set(PW_EINVALID, "yaml: a mapping key must be a scalar for JSON");
		}
		json_object_set_new(into, ks, v);
		free(ks);
	}
}

static int parse_node(yparse *y, yaml_event_t *ev, int depth, json_t **out)
{
	*out = NULL;
	if (depth > MAX_DEPTH)
		return pw_error_set(PW_EINVALID, "yaml: nested deeper than %d", MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		for (size_t i = y->nanchors; i-- > 0;)
			if (!strcmp(y->anchors[i].name, (const char *)ev->data.alias.anchor)) {
				y->alias_nodes += count_nodes(y->anchors[i].value);
				if (y->alias_nodes > MAX_ALIAS_NODES)
					return pw_error_set(PW_EINVALID, "yaml: document expands aliases beyond %d values",
					                    MAX_ALIAS_NODES);
				*out = json_deep_copy(y->anchors[i].value);
				return *out ? 0 : pw_error_set(PW_ENOMEM, "yaml: out of memory");
			}
		return pw_error_set(PW_EINVALID, "yaml: unknown anchor '%s' referenced", ev->data.alias.anchor);
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		const char *tag = (const char *)ev->data.scalar.tag;
		bool quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		json_t *v;
		if (tag && !strcmp(tag, YAML_STR_TAG))
			v = json_stringn(s, ev->data.scalar.length);
		else if (quoted)
			v = json_stringn(s, ev->data.scalar.length);
		else if (strlen(s) != ev->data.scalar.length)
			v = json_stringn(s, ev->data.scalar.length);
		else
			v = resolve_plain(s);
		if (!v)
			return pw_error_last_code() == PW_EINVALID ? PW_EINVALID
			                                           : pw_error_set(PW_EINVALID, "yaml: scalar is not valid UTF-8");
		*out = v;
		return remember_anchor(y, ev->data.scalar.anchor, v);
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool mapping = ev->type == YAML_MAPPING_START_EVENT;
		json_t *c = mapping ? json_object() : json_array();
		if (!c)
			return pw_error_set(PW_ENOMEM, "yaml: out of memory");
		int rc = parse_children(y, mapping, depth, c);
		if (rc < 0) {
			json_decref(c);
			return rc;
		}
		*out = c;
		return remember_anchor(y, mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor, c);
	}
	default:
		return pw_error_set(PW_EINVALID, "yaml: unexpected event %d", ev->type);
	}
}

/* Parses the first document of s: 0 with *out, PW_EINVALID naming the problem. */
static int yaml_to_json(const char *s, size_t n, json_t **out)
{
	*out = NULL;
	yparse *y = calloc(1, sizeof *y);
	if (!y)
		return pw_error_set(PW_ENOMEM, "yaml: out of memory");
	yaml_parser_initialize(&y->parser);
	yaml_parser_set_input_string(&y->parser, (const unsigned char *)s, n);
	int rc = 0;
	json_t *doc = NULL;
	for (;;) {
		yaml_event_t ev;
		if ((rc = next_event(y, &ev)) < 0)
			break;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (t == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			break;   /* go-yaml's Unmarshal reads the first document */
		}
		rc = parse_node(y, &ev, 0, &doc);
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	for (size_t i = 0; i < y->nanchors; i++) {
		free(y->anchors[i].name);
		json_decref(y->anchors[i].value);
	}
	yaml_parser_delete(&y->parser);
	free(y);
	if (rc < 0) {
		json_decref(doc);
		return rc;
	}
	*out = doc ? doc : json_null();
	return 0;
}

int pw_opa_yaml_unmarshal(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	if (!json_is_string(args[0]))
		return pw_opa_type_error("yaml.unmarshal", 1, "string");
	if (yaml_to_json(json_string_value(args[0]), json_string_length(args[0]), out) < 0)
		return pw_error_prefix("yaml.unmarshal");
	return 0;
}

int pw_opa_yaml_is_valid(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	if (!json_is_string(args[0])) {
		*out = json_false();
		return 0;
	}
	json_t *v = NULL;
	int rc = yaml_to_json(json_string_value(args[0]), json_string_length(args[0]), &v);
	json_decref(v);
	*out = json_boolean(rc == 0);
	return 0;
}

/* ---- marshal ------------------------------------------------------------------------------- */

static bool is_letter(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* go-yaml v2 keyList.Less on two strings */
static int natural_cmp(const void *pa, const void *pb)
{
	const unsigned char *a = *(const unsigned char *const *)pa, *b = *(const unsigned char *const *)pb;
	size_t la = strlen((const char *)a), lb = strlen((const char *)b);
	for (size_t i = 0; i < la && i < lb; i++) {
		if (a[i] == b[i])
			continue;
		bool al = is_letter(a[i]), bl = is_letter(b[i]);
		if (al && bl)
			return a[i] < b[i] ? -1 : 1;
		if (al || bl)
			return bl ? -1 : 1;
		long long an = 0, bn = 0;
		if (a[i] == '0' || b[i] == '0') {
			for (size_t j = i; j-- > 0 && is_digit(a[j]);)
				if (a[j] != '0') {
					an = 1;
					bn = 1;
					break;
				}
		}
		size_t ai = i, bi = i;
		for (; ai < la && is_digit(a[ai]); ai++)
			an = an * 10 + (a[ai] - '0');
		for (; bi < lb && is_digit(b[bi]); bi++)
			bn = bn * 10 + (b[bi] - '0');
		if (an != bn)
			return an < bn ? -1 : 1;
		if (ai != bi)
			return ai < bi ? -1 : 1;
		return a[i] < b[i] ? -1 : 1;
	}
	return la < lb ? -1 : la > lb;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	if (!yaml_emitter_emit(em, ev))
		return pw_error_set(PW_EINVALID, "yaml.marshal: %s", em->problem ? em->problem : "emitter failed");
	return 0;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, yaml_scalar_style_t style)
{
	yaml_event_t ev;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style))
		return pw_error_set(PW_ENOMEM, "yaml.marshal: out of memory");
	return emit(em, &ev);
}

/* The style go-yaml v2 picks for a string. */
static yaml_scalar_style_t string_style(const char *s, size_t n)
{
	if (memchr(s, '\n', n))
		return YAML_LITERAL_SCALAR_STYLE;
	bool str = strlen(s) == n && !in_list(s, yaml_nulls) && !in_list(s, yaml_trues) &&
	           !in_list(s, yaml_falses) && !in_list(s, yaml_floats_special) && strcmp(s, "<<") != 0;
	long long i;
	if (str && (go_parse_int(s, &i) || yaml_float_syntax(s) || base60_float(s) || date_like(s)))
		str = false;
	return str ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

static int emit_value(yaml_emitter_t *em, const json_t *v, int depth)
{
	if (depth > MAX_DEPTH)
		return pw_error_set(PW_EINVALID, "yaml.marshal: value nested deeper than %d", MAX_DEPTH);
	char num[64];
	yaml_event_t ev;
	switch (json_typeof(v)) {
	case JSON_NULL: return emit_scalar(em, "null", 4, YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE: return emit_scalar(em, "true", 4, YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE: return emit_scalar(em, "false", 5, YAML_PLAIN_SCALAR_STYLE);
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		return emit_scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL: {
		pw_buf f = PW_BUF_INIT;
		pw_opa_format_float(&f, json_real_value(v));
		int rc = f.data ? emit_scalar(em, (const char *)f.data, f.len, YAML_PLAIN_SCALAR_STYLE)
		                : pw_error_set(PW_ENOMEM, "yaml.marshal: out of memory");
		pw_buf_free(&f);
		return rc;
	}
	case JSON_STRING:
		return emit_scalar(em, json_string_value(v), json_string_length(v),
		                   string_style(json_string_value(v), json_string_length(v)));
	case JSON_ARRAY:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		if (emit(em, &ev) < 0)
			return PW_EINVALID;
		for (size_t i = 0; i < json_array_size(v); i++)
			if (emit_value(em, json_array_get(v, i), depth + 1) < 0)
				return PW_EINVALID;
		yaml_sequence_end_event_initialize(&ev);
		return emit(em, &ev);
	case JSON_OBJECT: {
		size_t n;
		const char **keys = pw_opa_sorted_keys(v, natural_cmp, "yaml.marshal", &n);
		if (!keys)
			return PW_ENOMEM;
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		int rc = emit(em, &ev);
		for (size_t i = 0; i < n && rc == 0; i++) {
			rc = emit_scalar(em, keys[i], strlen(keys[i]), string_style(keys[i], strlen(keys[i])));
			if (rc == 0)
				rc = emit_value(em, json_object_get(v, keys[i]), depth + 1);
		}
		free(keys);
		if (rc < 0)
			return rc;
		yaml_mapping_end_event_initialize(&ev);
		return emit(em, &ev);
	}
	}
	return 0;
}

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	return pw_buf_append(data, buffer, size) == 0;
}

int pw_opa_yaml_marshal(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	pw_buf b = PW_BUF_INIT;
	yaml_emitter_t em;
	yaml_event_t ev;
	yaml_emitter_initialize(&em);
	yaml_emitter_set_output(&em, write_handler, &b);
	yaml_emitter_set_unicode(&em, 1);
	int rc = 0;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	rc = emit(&em, &ev);
	if (rc == 0) {
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
		rc = emit(&em, &ev);
	}
	if (rc == 0)
		rc = emit_value(&em, args[0], 0);
	if (rc == 0) {
		yaml_document_end_event_initialize(&ev, 1);
		rc = emit(&em, &ev);
	}
	if (rc == 0) {
		yaml_stream_end_event_initialize(&ev);
		rc = emit(&em, &ev);
	}
	yaml_emitter_delete(&em);
	return pw_opa_buf_result(&b, rc, "yaml.marshal", out);
}
