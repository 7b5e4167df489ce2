/*
 * The regex builtins (regex.split, regex.find_n, regex.template_match) on PCRE2, made to
 * behave like Go's regexp (RE2 syntax), which is what OPA uses:
 *  - patterns with constructs RE2 refuses (backreferences, lookaround, atomic groups,
 *    possessive quantifiers, recursion, conditionals, \K \G \R \X \C \Z ...) are refused
 *    with Go's message, so a pattern works here exactly when it works in OPA;
 *  - PCRE2_UTF (RE2 works on UTF-8 runes) without PCRE2_UCP (\d \w \s \b are ASCII in
 *    RE2), PCRE2_DOLLAR_ENDONLY ($ without (?m) is the end of the text only);
 *  - matches are leftmost-first in both; iteration over matches follows Go's allMatches
 *    (an empty match right after the previous match is skipped, the scan then advances by
 *    one rune) and Split/FindAllString's rules for the pieces.
 * Known difference: PCRE2's \s also matches \v (vertical tab), RE2's does not.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "host/opa_internal.h"

/* Upper bound on the pieces of one split/find (a guard against absurd inputs). */
#define MAX_PIECES (1u << 20)

/* RE2 accepts \ followed by these letters (outside classes); anything else alphabetic is
 * refused by Go as an invalid escape. */
static const char re2_letter_escapes[] = "abfnrtvdDsSwWpPbBAzQExC";

static int unsupported(const char *name, const char *what, size_t len)
{
	return pw_error_set(PW_EINVALID, "%s: error parsing regexp: invalid or unsupported Perl syntax: `%.*s`",
	                    name, (int)len, what);
}

/* Refuses what PCRE2 accepts and RE2 does not. */
static int re2_check(const char *name, const char *p, size_t n)
{
	bool in_class = false, quoted = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (quoted) {
			if (c == '\\' && i + 1 < n && p[i + 1] == 'E') {
				quoted = false;
				i++;
			}
			continue;
		}
		if (c == '\\' && i + 1 < n) {
			char e = p[i + 1];
			if (e == 'Q' && !in_class) {
				quoted = true;
				i++;
				continue;
			}
			if (e >= '1' && e <= '9' && !in_class)
				return pw_error_set(PW_EINVALID, "%s: error parsing regexp: invalid escape sequence: `\\%c`", name, e);
			if (((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) && e != 'x' &&
			    !strchr(re2_letter_escapes, e))
				return pw_error_set(PW_EINVALID, "%s: error parsing regexp: invalid escape sequence: `\\%c`", name, e);
			if (e == 'C')
				return pw_error_set(PW_EINVALID, "%s: error parsing regexp: invalid escape sequence: `\\C`", name);
			i++;
			continue;
		}
		if (in_class) {
			if (c == '[' && i + 1 < n && p[i + 1] == ':') {
				const char *close = strstr(p + i + 2, ":]");
				if (close && (size_t)(close - p) < n)
					i = (size_t)(close - p) + 1;
			} else if (c == ']') {
				in_class = false;
			}
			continue;
		}
		if (c == '[') {
			in_class = true;
			if (i + 1 < n && p[i + 1] == '^')
				i++;
			if (i + 1 < n && p[i + 1] == ']')
				i++;   /* a leading ] is a literal */
			continue;
		}
		if (c == '(' && i + 1 < n && p[i + 1] == '?') {
			char k = i + 2 < n ? p[i + 2] : '\0';
			bool named = k == 'P' ? (i + 3 < n && p[i + 3] == '<')
			                      : (k == '<' && i + 3 < n && p[i + 3] != '=' && p[i + 3] != '!');
			bool flags = k == '-' || k == ':' || k == 'i' || k == 'm' || k == 's' || k == 'U';
			if (!named && !flags)
				return unsupported(name, p + i, n - i < 3 ? n - i : 3);
			if (flags) {
				/* only the flags RE2 knows: i m s U */
				size_t j = i + 2;
				while (j < n && p[j] != ')' && p[j] != ':') {
					if (!strchr("imsU-", p[j]))
						return unsupported(name, p + i, j - i + 1);
					j++;
				}
			}
			continue;
		}
		if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n && p[i + 1] == '+')
			return pw_error_set(PW_EINVALID, "%s: error parsing regexp: invalid nested repetition operator: `%c+`",
			                    name, c);
	}
	return 0;
}

static int compile(const char *name, const char *pattern, size_t len, pcre2_code **out)
{
	*out = NULL;
	if (re2_check(name, pattern, len) < 0)
		return PW_EINVALID;
	int err = 0;
	PCRE2_SIZE off = 0;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len,
	                               PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
	                               &err, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		return pw_error_set(PW_EINVALID, "%s: error parsing regexp: %s at offset %zu", name,
		                    (const char *)msg, (size_t)off);
	}
	*out = re;
	return 0;
}

/* Bytes in the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t rune_width(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

typedef struct match_span {
	size_t start, end;
} match_span;

/* Go's regexp allMatches: up to `limit` matches (< 0: all) of re in s. */
static int all_matches(const char *name, pcre2_code *re, const char *s, size_t n, long long limit,
                       match_span **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	size_t cap = 0, cnt = 0;
	match_span *spans = NULL;
	long long prev_end = -1;
	size_t pos = 0;
	int rc = 0;
	while ((limit < 0 || (long long)cnt < limit) && pos <= n) {
		int m = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
		if (m == PCRE2_ERROR_NOMATCH)
			break;
		if (m < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(m, msg, sizeof msg);
			rc = pw_error_set(PW_EINVALID, "%s: matching failed: %s", name, (const char *)msg);
			break;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		bool accept = true;
		if (me == ms) {
			if ((long long)ms == prev_end)
				accept = false;
			pos = ms < n ? ms + rune_width((unsigned char)s[ms]) : n + 1;
		} else {
			pos = me;
		}
		prev_end = (long long)me;
		if (!accept)
			continue;
		if (cnt == cap) {
			if (cap >= MAX_PIECES) {
				rc = pw_error_set(PW_EINVALID, "%s: more than %u matches", name, MAX_PIECES);
				break;
			}
			size_t ncap = cap ? cap * 2 : 16;
			match_span *ns = realloc(spans, ncap * sizeof *ns);
			if (!ns) {
				rc = pw_error_set(PW_ENOMEM, "%s: out of memory", name);
				break;
			}
			spans = ns;
			cap = ncap;
		}
		spans[cnt].start = ms;
		spans[cnt].end = me;
		cnt++;
	}
	pcre2_match_data_free(md);
	if (rc < 0) {
		free(spans);
		return rc;
	}
	*out = spans;
	*count = cnt;
	return 0;
}

static int append_piece(json_t *arr, const char *s, size_t len)
{
	json_t *v = pw_opa_string(s, len);
	if (!v || json_array_append_new(arr, v) < 0)
		return pw_error_set(PW_ENOMEM, "regex: out of memory");
	return 0;
}

static int strings_args(const char *name, json_t *const *args, int n)
{
	for (int i = 0; i < n; i++)
		if (!json_is_string(args[i]))
			return pw_opa_type_error(name, i + 1, "string");
	return 0;
}

/* Go's regexp.Split(s, -1). */
int pw_opa_regex_split(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "regex.split";
	if (strings_args(name, args, 2) < 0)
		return PW_EINVALID;
	const char *pat = json_string_value(args[0]), *s = json_string_value(args[1]);
	size_t plen = json_string_length(args[0]), n = json_string_length(args[1]);
	pcre2_code *re;
	if (compile(name, pat, plen, &re) < 0)
		return PW_EINVALID;
	json_t *arr = json_array();
	if (!arr) {
		pcre2_code_free(re);
		return pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	}
	int rc = 0;
	if (plen > 0 && n == 0) {
		rc = append_piece(arr, "", 0);
	} else {
		match_span *m;
		size_t cnt;
		rc = all_matches(name, re, s, n, -1, &m, &cnt);
		size_t beg = 0, end = 0;
		for (size_t i = 0; rc == 0 && i < cnt; i++) {
			end = m[i].start;
			if (m[i].end != 0)
				rc = append_piece(arr, s + beg, end - beg);
			beg = m[i].end;
		}
		if (rc == 0 && end != n)
			rc = append_piece(arr, s + beg, n - beg);
		free(m);
	}
	pcre2_code_free(re);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* Go's regexp.FindAllString(s, n); OPA answers [] when nothing matches. */
int pw_opa_regex_find_n(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "regex.find_n";
	if (strings_args(name, args, 2) < 0)
		return PW_EINVALID;
	json_int_t limit;
	if (json_is_integer(args[2]))
		limit = json_integer_value(args[2]);
	else if (json_is_real(args[2]) && json_real_value(args[2]) == (double)(json_int_t)json_real_value(args[2]))
		limit = (json_int_t)json_real_value(args[2]);
	else
		return pw_opa_type_error(name, 3, "an integer");
	pcre2_code *re;
	if (compile(name, json_string_value(args[0]), json_string_length(args[0]), &re) < 0)
		return PW_EINVALID;
	const char *s = json_string_value(args[1]);
	match_span *m = NULL;
	size_t cnt = 0;
	int rc = limit == 0 ? 0 : all_matches(name, re, s, json_string_length(args[1]), limit, &m, &cnt);
	pcre2_code_free(re);
	json_t *arr = rc == 0 ? json_array() : NULL;
	if (rc == 0 && !arr)
		rc = pw_error_set(PW_ENOMEM, "%s: out of memory", name);
	for (size_t i = 0; rc == 0 && i < cnt; i++)
		rc = append_piece(arr, s + m[i].start, m[i].end - m[i].start);
	free(m);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* Go's regexp.QuoteMeta */
static void quote_meta(pw_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strchr("\\.+*?()|[]{}^$", s[i]) && s[i])
			pw_buf_append(b, "\\", 1);
		pw_buf_append(b, s + i, 1);
	}
}

/* OPA's regex.template_match (gorilla/mux style): literal text quoted, the parts between
 * first-level delimiters kept as regular expressions, the whole anchored. */
int pw_opa_regex_template_match(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	static const char name[] = "regex.template_match";
	if (strings_args(name, args, 4) < 0)
		return PW_EINVALID;
	const char *t = json_string_value(args[0]);
	size_t tn = json_string_length(args[0]);
	if (json_string_length(args[2]) != 1 || json_string_length(args[3]) != 1)
		return pw_error_set(PW_EINVALID, "%s: the delimiters must be single characters", name);
	char ds = json_string_value(args[2])[0], de = json_string_value(args[3])[0];
	pw_buf p = PW_BUF_INIT;
	pw_buf_append(&p, "^", 1);
	int level = 0;
	size_t lit = 0, open = 0;
	for (size_t i = 0; i < tn; i++) {
		if (t[i] == ds) {
			if (++level == 1)
				open = i;
		} else if (t[i] == de) {
			if (--level == 0) {
				quote_meta(&p, t + lit, open - lit);
				pw_buf_append(&p, "(", 1);
				pw_buf_append(&p, t + open + 1, i - open - 1);
				pw_buf_append(&p, ")", 1);
				lit = i + 1;
			} else if (level < 0) {
				break;
			}
		}
	}
	if (level != 0) {
		pw_buf_free(&p);
		return pw_error_set(PW_EINVALID, "%s: unbalanced braces in \"%s\"", name, t);
	}
	quote_meta(&p, t + lit, tn - lit);
	pw_buf_append(&p, "$", 1);
	pcre2_code *re;
	int rc = compile(name, (const char *)p.data, p.len, &re);
	pw_buf_free(&p);
	if (rc < 0)
		return rc;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int m = md ? pcre2_match(re, (PCRE2_SPTR)json_string_value(args[1]), json_string_length(args[1]),
	                         0, 0, md, NULL)
	           : PCRE2_ERROR_NOMEMORY;
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	if (m < 0 && m != PCRE2_ERROR_NOMATCH)
		return pw_error_set(PW_EINVALID, "%s: matching failed (PCRE2 error %d)", name, m);
	*out = json_boolean(m >= 0);
	return 0;
}
