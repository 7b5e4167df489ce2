/*
 * The builtin functions compiled Rego calls back to the host for (opa_builtin0..4), as OPA
 * defines them: the table of every builtin Prewarm implements (Kubewarden's burrego set,
 * under OPA's names) and the simple families: debugging (trace), encoding (base64url, hex,
 * urlquery with Go's net/url rules, json.is_valid), glob.quote_meta, json.patch (RFC 6902),
 * semver (OPA's util/semver rules). Regex, sprintf, YAML and time live in their own files.
 * docs/rego.md lists them with where OPA and burrego differ.
 */
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"
#include "host/opa_internal.h"

int pw_opa_type_error(const char *name, int operand, const char *type)
{
	return pw_error_set(PW_EINVALID, "%s: operand %d must be %s", name, operand, type);
}

json_t *pw_opa_string(const char *s, size_t len)
{
	return json_stringn(s ? s : "", len);
}

const char **pw_opa_sorted_keys(const json_t *obj, int (*cmp)(const void *, const void *),
                                const char *name, size_t *n)
{
	*n = json_object_size(obj);
	const char **keys = malloc((*n ? *n : 1) * sizeof *keys);
	if (!keys) {
		pw_error_set(PW_ENOMEM, "%s: out of memory", name);
		return NULL;
	}
	size_t k = 0;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)obj, key, val)
		keys[k++] = key;
	qsort(keys, *n, sizeof *keys, cmp ? cmp : pw_opa_cmp_strings);
	return keys;
}

int pw_opa_cmp_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int string_arg(const char *name, json_t *const *args, int i, const char **s, size_t *len)
{
	if (!json_is_string(args[i]))
		return pw_opa_type_error(name, i + 1, "string");
	*s = json_string_value(args[i]);
	*len = json_string_length(args[i]);
	return 0;
}

static int set_out(json_t **out, json_t *v, const char *name)
{
	*out = v;
	if (!v)
		return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	return 0;
}

int pw_opa_buf_result(pw_buf *b, int rc, const char *name, json_t **out)
{
	json_t *v = rc < 0 ? NULL : pw_opa_string(b->data ? (const char *)b->data : "", b->len);
	pw_buf_free(b);
	if (rc < 0)
		return rc;
	if (!v)
		return pw_error_set(PW_EINVALID, "%s: the result is not valid UTF-8", name);
	*out = v;
	return 0;
}

static int buf_out(json_t **out, pw_buf *b, const char *name)
{
	return pw_opa_buf_result(b, 0, name, out);
}

/* ---- debugging ------------------------------------------------------------------------- */

static int b_trace(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("trace", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	pw_info(ctx && ctx->log_tag ? ctx->log_tag : "opa", "trace: %.*s", (int)n, s);
	return set_out(out, json_true(), "trace");
}

/* ---- encoding ----------------------------------------------------------------------------- */

static int b_base64url_encode_no_pad(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *s;
	size_t n;
	if (string_arg("base64url.encode_no_pad", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	const uint8_t *p = (const uint8_t *)s;
	pw_buf b = PW_BUF_INIT;
	if (pw_buf_reserve(&b, n / 3 * 4 + 4) < 0)
		return pw_error_set(PW_ENOMEM, "base64url.encode_no_pad: out of memory");
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		char q[4] = { alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
		              alphabet[v & 63] };
		pw_buf_append(&b, q, left > 2 ? 4 : left + 1);
	}
	return buf_out(out, &b, "base64url.encode_no_pad");
}

static int b_hex_encode(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char digits[] = "0123456789abcdef";
	const char *s;
	size_t n;
	if (string_arg("hex.encode", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	pw_buf b = PW_BUF_INIT;
	if (pw_buf_reserve(&b, 2 * n + 1) < 0)
		return pw_error_set(PW_ENOMEM, "hex.encode: out of memory");
	for (size_t i = 0; i < n; i++) {
		char h[2] = { digits[(uint8_t)s[i] >> 4], digits[(uint8_t)s[i] & 15] };
		pw_buf_append(&b, h, 2);
	}
	return buf_out(out, &b, "hex.encode");
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Go's encoding/hex InvalidByteError: "invalid byte: %#U" of the byte as a rune. */
static int hex_invalid_byte(unsigned char c)
{
	bool printable = (c >= 0x20 && c < 0x7f) || (c >= 0xa1 && c != 0xad);
	char ch[3] = { (char)c, 0, 0 };
	if (c >= 0x80) {
		ch[0] = (char)(0xc0 | (c >> 6));
		ch[1] = (char)(0x80 | (c & 0x3f));
	}
	if (printable)
		return pw_error_set(PW_EINVALID, "hex.decode: encoding/hex: invalid byte: U+%04X '%s'", c, ch);
	return pw_error_set(PW_EINVALID, "hex.decode: encoding/hex: invalid byte: U+%04X", c);
}

static int b_hex_decode(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("hex.decode", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	/* Go checks the bytes in order, the odd length last */
	for (size_t i = 0; i < n; i++)
		if (hex_value(s[i]) < 0)
			return hex_invalid_byte((unsigned char)s[i]);
	if (n % 2)
		return pw_error_set(PW_EINVALID, "hex.decode: encoding/hex: odd length hex string");
	pw_buf b = PW_BUF_INIT;
	if (pw_buf_reserve(&b, n / 2 + 1) < 0)
		return pw_error_set(PW_ENOMEM, "hex.decode: out of memory");
	for (size_t i = 0; i < n; i += 2) {
		uint8_t c = (uint8_t)(hex_value(s[i]) << 4 | hex_value(s[i + 1]));
		pw_buf_append(&b, &c, 1);
	}
	json_t *v = json_stringn((const char *)(b.data ? b.data : (uint8_t *)""), b.len);
	pw_buf_free(&b);
	if (!v)  /* OPA strings are UTF-8: bytes that are not have no Rego value */
		return pw_error_set(PW_EINVALID, "hex.decode: the decoded bytes are not valid UTF-8");
	*out = v;
	return 0;
}

/* Go's url.QueryEscape: unreserved bytes stay, space becomes '+', the rest %XX. */
static void query_escape(pw_buf *b, const char *s, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			pw_buf_append(b, &c, 1);
		} else if (c == ' ') {
			pw_buf_append(b, "+", 1);
		} else {
			char e[3] = { '%', digits[c >> 4], digits[c & 15] };
			pw_buf_append(b, e, 3);
		}
	}
}

/* Go's url.QueryUnescape: 0, or PW_EINVALID naming the bad escape (Go's message). */
static int query_unescape(pw_buf *b, const char *s, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) {
				size_t rest = n - i < 3 ? n - i : 3;
				return pw_error_set(PW_EINVALID, "%s: invalid URL escape \"%.*s\"", name, (int)rest, s + i);
			}
			uint8_t c = (uint8_t)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
			pw_buf_append(b, &c, 1);
			i += 2;
		} else if (s[i] == '+') {
			pw_buf_append(b, " ", 1);
		} else {
			pw_buf_append(b, s + i, 1);
		}
	}
	return 0;
}

static int b_urlquery_encode(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("urlquery.encode", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	pw_buf b = PW_BUF_INIT;
	query_escape(&b, s, n);
	return buf_out(out, &b, "urlquery.encode");
}

static int unescaped_string(const char *name, const char *s, size_t n, json_t **out)
{
	pw_buf b = PW_BUF_INIT;
	if (query_unescape(&b, s, n, name) < 0) {
		pw_buf_free(&b);
		return PW_EINVALID;
	}
	json_t *v = pw_opa_string(b.data ? (const char *)b.data : "", b.len);
	pw_buf_free(&b);
	if (!v)
		return pw_error_set(PW_EINVALID, "%s: the decoded bytes are not valid UTF-8", name);
	*out = v;
	return 0;
}

static int b_urlquery_decode(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("urlquery.decode", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	return unescaped_string("urlquery.decode", s, n, out);
}


/* url.Values{...}.Encode(): keys sorted, every value of a key in order, "k=v" joined by '&'. */
static int b_urlquery_encode_object(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "urlquery.encode_object";
	if (!json_is_object(args[0]))
		return pw_opa_type_error(name, 1, "object");
	const char *key;
	json_t *val;
	json_object_foreach(args[0], key, val)
		if (!json_is_string(val) && !json_is_array(val))
			return pw_error_set(PW_EINVALID, "%s: value of key '%s' must be a string or an array of strings",
			                    name, key);
	size_t nkeys;
	const char **keys = pw_opa_sorted_keys(args[0], NULL, name, &nkeys);
	if (!keys)
		return PW_ENOMEM;
	pw_buf b = PW_BUF_INIT;
	for (size_t i = 0; i < nkeys; i++) {
		json_t *v = json_object_get(args[0], keys[i]);
		size_t nv = json_is_array(v) ? json_array_size(v) : 1;
		for (size_t j = 0; j < nv; j++) {
			json_t *e = json_is_array(v) ? json_array_get(v, j) : v;
			if (!json_is_string(e)) {
				int rc = pw_error_set(PW_EINVALID, "%s: values of key '%s' must be strings", name, keys[i]);
				pw_buf_free(&b);
				free(keys);
				return rc;
			}
			if (b.len)
				pw_buf_append(&b, "&", 1);
			query_escape(&b, keys[i], strlen(keys[i]));
			pw_buf_append(&b, "=", 1);
			query_escape(&b, json_string_value(e), json_string_length(e));
		}
	}
	free(keys);
	return buf_out(out, &b, name);
}

/* url.ParseQuery: "k=v&k2=v2" -> {"k": ["v"], "k2": ["v2"]}; a ';' in a key is an error. */
static int b_urlquery_decode_object(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "urlquery.decode_object";
	const char *s;
	size_t n;
	if (string_arg(name, args, 0, &s, &n) < 0)
		return PW_EINVALID;
	json_t *obj = json_object();
	if (!obj)
		return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	size_t i = 0;
	while (i <= n) {
		const char *amp = memchr(s + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - s) : n;
		const char *seg = s + i;
		size_t seglen = end - i;
		i = end + 1;
		if (!seglen) {
			if (!amp)
				break;
			continue;
		}
		const char *eq = memchr(seg, '=', seglen);
		size_t klen = eq ? (size_t)(eq - seg) : seglen;
		if (memchr(seg, ';', klen)) {
			json_decref(obj);
			return pw_error_set(PW_EINVALID, "%s: invalid semicolon separator in query", name);
		}
		json_t *k = NULL, *v = NULL;
		if (unescaped_string(name, seg, klen, &k) < 0 ||
		    unescaped_string(name, eq ? eq + 1 : "", eq ? seglen - klen - 1 : 0, &v) < 0) {
			json_decref(k);
			json_decref(obj);
			return PW_EINVALID;
		}
		json_t *list = json_object_get(obj, json_string_value(k));
		if (!list) {
			list = json_array();
			json_object_set_new(obj, json_string_value(k), list);
		}
		json_array_append_new(list, v);
		json_decref(k);
		if (!amp)
			break;
	}
	*out = obj;
	return 0;
}

static int b_json_is_valid(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("json.is_valid", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
	int ok = v != NULL;
	json_decref(v);
	return set_out(out, json_boolean(ok), "json.is_valid");
}

/* ---- glob, objects ----------------------------------------------------------------------- */

/* gobwas/glob QuoteMeta: a backslash before each of * ? \ [ ] { } */
static int b_glob_quote_meta(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	const char *s;
	size_t n;
	if (string_arg("glob.quote_meta", args, 0, &s, &n) < 0)
		return PW_EINVALID;
	pw_buf b = PW_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?\\[]{}", s[i]) && s[i])
			pw_buf_append(&b, "\\", 1);
		pw_buf_append(&b, s + i, 1);
	}
	return buf_out(out, &b, "glob.quote_meta");
}

static int b_json_patch(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	if (!json_is_array(args[1]))
		return pw_opa_type_error("json.patch", 2, "array");
	json_t *doc = json_deep_copy(args[0]);
	if (!doc)
		return pw_error_set(PW_ENOMEM, "json.patch: out of memory");
	if (pw_host_json_patch_apply(&doc, args[1]) < 0) {
		json_decref(doc);
		return pw_error_prefix("json.patch");
	}
	*out = doc;
	return 0;
}

/* ---- semver (OPA's util/semver: MAJOR.MINOR.PATCH[-PRERELEASE][+METADATA]) ---------------- */

typedef struct semver {
	long long v[3];
	const char *pre;
	size_t pre_len;
} semver;

/* ^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$ or empty */
static bool semver_ident_ok(const char *s, size_t n)
{
	bool need = true;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (need)
				return false;
			need = true;
		} else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-') {
			need = false;
		} else {
			return false;
		}
	}
	return n == 0 || !need;
}

/* strconv.ParseInt(s, 10, 64) */
static bool parse_int64(const char *s, size_t n, long long *out)
{
	size_t i = 0;
	bool neg = false;
	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return false;
	unsigned long long v = 0, lim = neg ? 9223372036854775808ull : 9223372036854775807ull;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (lim - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

static bool semver_parse(const char *s, size_t n, semver *out)
{
	const char *plus = memchr(s, '+', n);
	size_t rest = plus ? (size_t)(plus - s) : n;
	if (plus && !semver_ident_ok(plus + 1, n - rest - 1))
		return false;
	const char *dash = memchr(s, '-', rest);
	out->pre = dash ? dash + 1 : "";
	out->pre_len = dash ? rest - (size_t)(dash - s) - 1 : 0;
	if (!semver_ident_ok(out->pre, out->pre_len))
		return false;
	size_t core = dash ? (size_t)(dash - s) : rest;
	/* strings.SplitN(core, ".", 3): exactly three parts, the last may hold more dots */
	const char *p = s, *end = s + core;
	for (int i = 0; i < 3; i++) {
		const char *dot = i < 2 ? memchr(p, '.', (size_t)(end - p)) : NULL;
		if (i < 2 && !dot)
			return false;
		const char *stop = dot ? dot : end;
		if (!parse_int64(p, (size_t)(stop - p), &out->v[i]))
			return false;
		p = stop + 1;
	}
	return true;
}

static int cmp_ll(long long a, long long b) { return a < b ? -1 : a > b; }

/* strconv.Atoi */
static bool atoi_ok(const char *s, size_t n, long long *v) { return parse_int64(s, n, v); }

static int semver_cmp_pre(const char *a, size_t an, const char *b, size_t bn)
{
	for (;;) {
		if (!an)
			return bn ? -1 : 0;
		if (!bn)
			return 1;
		const char *ad = memchr(a, '.', an), *bd = memchr(b, '.', bn);
		size_t al = ad ? (size_t)(ad - a) : an, bl = bd ? (size_t)(bd - b) : bn;
		long long ai = 0, bi = 0;
		bool aint = atoi_ok(a, al, &ai), bint = atoi_ok(b, bl, &bi);
		if (aint && !bint)
			return -1;
		if (!aint && bint)
			return 1;
		if (aint && bint && ai != bi)
			return cmp_ll(ai, bi);
		size_t m = al < bl ? al : bl;
		int c = memcmp(a, b, m);
		if (c)
			return c < 0 ? -1 : 1;
		if (al != bl)
			return al < bl ? -1 : 1;
		/* identifiers are never empty (semver_ident_ok), so a dot is always followed by one */
		a += al + (ad ? 1 : 0);
		an -= al + (ad ? 1 : 0);
		b += bl + (bd ? 1 : 0);
		bn -= bl + (bd ? 1 : 0);
	}
}

static int b_semver_is_valid(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	semver v;
	bool ok = json_is_string(args[0]) &&
	          semver_parse(json_string_value(args[0]), json_string_length(args[0]), &v);
	return set_out(out, json_boolean(ok), "semver.is_valid");
}

static int b_semver_compare(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	semver a, b;
	for (int i = 0; i < 2; i++) {
		if (!json_is_string(args[i]))
			return pw_opa_type_error("semver.compare", i + 1, "string");
		if (!semver_parse(json_string_value(args[i]), json_string_length(args[i]), i ? &b : &a))
			return pw_error_set(PW_EINVALID, "semver.compare: operand %d: string \"%s\" is not a valid SemVer",
			                    i + 1, json_string_value(args[i]));
	}
	int c = 0;
	for (int i = 0; i < 3 && !c; i++)
		c = cmp_ll(a.v[i], b.v[i]);
	if (!c) {
		if (!a.pre_len && b.pre_len)
			c = 1;
		else if (a.pre_len && !b.pre_len)
			c = -1;
		else
			c = semver_cmp_pre(a.pre, a.pre_len, b.pre, b.pre_len);
	}
	return set_out(out, json_integer(c), "semver.compare");
}

/* ---- the table ------------------------------------------------------------------------------ */

static const pw_opa_builtin builtins[] = {
	{ "base64url.encode_no_pad", 1, b_base64url_encode_no_pad },
	{ "glob.quote_meta", 1, b_glob_quote_meta },
	{ "hex.decode", 1, b_hex_decode },
	{ "hex.encode", 1, b_hex_encode },
	{ "json.is_valid", 1, b_json_is_valid },
	{ "json.patch", 2, b_json_patch },
	{ "regex.find_n", 3, pw_opa_regex_find_n },
	{ "regex.split", 2, pw_opa_regex_split },
	{ "regex.template_match", 4, pw_opa_regex_template_match },
	{ "semver.compare", 2, b_semver_compare },
	{ "semver.is_valid", 1, b_semver_is_valid },
	{ "sprintf", 2, pw_opa_sprintf },
	{ "time.date", 1, pw_opa_time_date },
	{ "time.now_ns", 0, pw_opa_time_now_ns },
	{ "time.parse_rfc3339_ns", 1, pw_opa_time_parse_rfc3339_ns },
	{ "trace", 1, b_trace },
	{ "urlquery.decode", 1, b_urlquery_decode },
	{ "urlquery.decode_object", 1, b_urlquery_decode_object },
	{ "urlquery.encode", 1, b_urlquery_encode },
	{ "urlquery.encode_object", 1, b_urlquery_encode_object },
	{ "yaml.is_valid", 1, pw_opa_yaml_is_valid },
	{ "yaml.marshal", 1, pw_opa_yaml_marshal },
	{ "yaml.unmarshal", 1, pw_opa_yaml_unmarshal },
};

const pw_opa_builtin *pw_opa_builtins(size_t *n)
{
	*n = sizeof builtins / sizeof builtins[0];
	return builtins;
}

static int cmp_builtin(const void *key, const void *elem)
{
	return strcmp(key, ((const pw_opa_builtin *)elem)->name);
}

const pw_opa_builtin *pw_opa_builtin_find(const char *name)
{
	return bsearch(name, builtins, sizeof builtins / sizeof builtins[0], sizeof builtins[0], cmp_builtin);
}

int pw_opa_builtin_call(const pw_opa_builtin *b, pw_opa_bctx *ctx, json_t *const *args,
                        size_t nargs, json_t **out)
{
	*out = NULL;
	if (nargs != b->arity)
		return pw_error_set(PW_EINVALID, "%s: takes %u arguments, called with %zu", b->name, b->arity, nargs);
	for (size_t i = 0; i < nargs; i++)
		if (!args[i])
			return pw_error_set(PW_EINVALID, "%s: argument %zu is missing", b->name, i + 1);
	int rc = b->fn(ctx, args, out);
	if (rc < 0 && *out) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

int pw_opa_builtin_call_json(const char *name, const char *args_json, char **out)
{
	*out = NULL;
	const pw_opa_builtin *b = pw_opa_builtin_find(name);
	if (!b)
		return pw_error_set(PW_EINVALID, "unknown builtin '%s'", name);
	json_error_t e;
	json_t *args = json_loads(args_json, JSON_DECODE_ANY, &e);
	if (!json_is_array(args)) {
		json_decref(args);
		return pw_error_set(PW_EINVALID, "%s: arguments must be a JSON array%s%s", name,
		                    args ? "" : ": ", args ? "" : e.text);
	}
	size_t n = json_array_size(args);
	json_t *argv[4] = { 0 };
	for (size_t i = 0; i < n && i < 4; i++)
		argv[i] = json_array_get(args, i);
	pw_opa_bctx ctx = { .log_tag = "opa" };
	json_t *res = NULL;
	int rc = n > 4 ? pw_error_set(PW_EINVALID, "%s: at most 4 arguments", name)
	               : pw_opa_builtin_call(b, &ctx, argv, n, &res);
	json_decref(args);
	if (rc < 0)
		return rc;
	if (res) {
		*out = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(res);
		if (!*out)
			return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	}
	return 0;
}
