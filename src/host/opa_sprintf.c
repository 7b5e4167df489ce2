/*
 * sprintf(format, values) as OPA does it: Go's fmt.Sprintf with the arguments converted the
 * way OPA's topdown/strings.go converts them: a number that is an integer becomes a Go int,
 * any other number a float64, a string a Go string, and every other value (booleans, null,
 * arrays, objects) the string of its Rego term (`true`, `null`, `[1, "a"]`, `{"k": 1}`).
 *
 * The Go verbs and flags implemented: %v %d %b %o %O %x %X %c %q %U (ints), %v %e %E %f %F
 * %g %G (floats), %v %s %q %x %X (strings), flags + - # 0 space, width and precision
 * (also as *), %%; Go's error forms %!v(MISSING), %!d(string=x), %!(EXTRA ...),
 * %!(NOVERB), %!(BADWIDTH), %!(BADPREC). Not implemented: explicit argument indexes
 * (%[2]d), which print as a bad verb.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/opa_internal.h"

/* Go's float64 shortest representation needs at most 17 significant digits. */
#define MAX_FLOAT_DIGITS 17
/* Go prints floats with %v in exponent form from this decimal exponent on. */
#define SHORTEST_EXP_LIMIT 6
/* ast.Number text of computed floats: JSON-style, exponent from 1e21 (encoding/json). */
#define TERM_EXP_LIMIT 21

typedef enum arg_kind { ARG_INT, ARG_FLOAT, ARG_STR } arg_kind;

typedef struct arg {
	arg_kind kind;
	long long i;
	double f;
	char *s;        /* owned */
	size_t slen;
} arg;

typedef struct spec {
	bool plus, minus, sharp, zero, space;
	int width, prec;   /* -1 = absent */
	char verb[5];      /* the verb rune, UTF-8 */
} spec;

/* ---- Go quoting and the Rego term string ----------------------------------------------- */

int pw_opa_go_quote(pw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	pw_buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = NULL;
		switch (c) {
		case '\a': e = "\\a"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		case '\v': e = "\\v"; break;
		case '\\': e = "\\\\"; break;
		case '"': e = "\\\""; break;
		}
		if (e) {
			pw_buf_puts(b, e);
		} else if (c < 0x20 || c == 0x7f) {
			char x[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			pw_buf_append(b, x, 4);
		} else {
			pw_buf_append(b, &c, 1);
		}
	}
	return pw_buf_append(b, "\"", 1);
}

/* Shortest decimal digits of v (> 0, finite): *digits ("15"), *exp (decimal exponent of the
 * first digit: 1.5 -> 0). */
static void shortest_digits(double v, char digits[MAX_FLOAT_DIGITS + 2], int *exp)
{
	char tmp[64];
	for (int p = 0; p < MAX_FLOAT_DIGITS; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp: d[.ddd]e[+-]xx */
	size_t k = 0;
	const char *t = tmp;
	for (; *t && *t != 'e'; t++)
		if (*t >= '0' && *t <= '9')
			digits[k++] = *t;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';
	*exp = atoi(t + 1);
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) with exponent form when exp < -4 || exp >= limit. */
static void format_shortest(pw_buf *b, double v, int limit, bool upper)
{
	if (v == 0) {
		pw_buf_puts(b, signbit(v) ? "-0" : "0");
		return;
	}
	if (v < 0) {
		pw_buf_append(b, "-", 1);
		v = -v;
	}
	char d[MAX_FLOAT_DIGITS + 2];
	int x;
	shortest_digits(v, d, &x);
	size_t nd = strlen(d);
	if (x < -4 || x >= limit) {
		pw_buf_append(b, d, 1);
		if (nd > 1) {
			pw_buf_append(b, ".", 1);
			pw_buf_append(b, d + 1, nd - 1);
		}
		pw_buf_printf(b, "%c%c%02d", upper ? 'E' : 'e', x < 0 ? '-' : '+', x < 0 ? -x : x);
	} else if (x >= 0) {
		size_t ip = (size_t)x + 1;
		for (size_t i = 0; i < ip; i++)
			pw_buf_append(b, i < nd ? d + i : "0", 1);
		if (nd > ip) {
			pw_buf_append(b, ".", 1);
			pw_buf_append(b, d + ip, nd - ip);
		}
	} else {
		pw_buf_puts(b, "0.");
		for (int i = 0; i < -x - 1; i++)
			pw_buf_append(b, "0", 1);
		pw_buf_append(b, d, nd);
	}
}

void pw_opa_format_float(pw_buf *b, double v)
{
	format_shortest(b, v, SHORTEST_EXP_LIMIT, false);
}


/* ast.Term.String() of a JSON value. */
static int term_string(pw_buf *b, const json_t *v, int depth)
{
	if (depth > 512)
		return pw_error_set(PW_EINVALID, "sprintf: value nested too deeply");
	switch (json_typeof(v)) {
	case JSON_NULL: return pw_buf_puts(b, "null");
	case JSON_TRUE: return pw_buf_puts(b, "true");
	case JSON_FALSE: return pw_buf_puts(b, "false");
	case JSON_INTEGER: return pw_buf_printf(b, "%lld", (long long)json_integer_value(v));
	case JSON_REAL: format_shortest(b, json_real_value(v), TERM_EXP_LIMIT, false); return 0;
	case JSON_STRING: return pw_opa_go_quote(b, json_string_value(v), json_string_length(v));
	case JSON_ARRAY: {
		pw_buf_append(b, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				pw_buf_puts(b, ", ");
			if (term_string(b, json_array_get(v, i), depth + 1) < 0)
				return PW_EINVALID;
		}
		return pw_buf_append(b, "]", 1);
	}
	case JSON_OBJECT: {
		size_t n;
		const char **keys = pw_opa_sorted_keys(v, NULL, "sprintf", &n);
		if (!keys)
			return PW_ENOMEM;
		pw_buf_append(b, "{", 1);
		int rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (i)
				pw_buf_puts(b, ", ");
			pw_opa_go_quote(b, keys[i], strlen(keys[i]));
			pw_buf_puts(b, ": ");
			rc = term_string(b, json_object_get(v, keys[i]), depth + 1);
		}
		free(keys);
		if (rc < 0)
			return rc;
		return pw_buf_append(b, "}", 1);
	}
	}
	return 0;
}

static int convert_arg(const json_t *v, arg *a)
{
	memset(a, 0, sizeof *a);
	if (json_is_integer(v)) {
		a->kind = ARG_INT;
		a->i = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double f = json_real_value(v);
		/* ast.Number.Int(): an integral number written without fraction is an int; jansson
		 * keeps "1.0" as a real, as OPA's Int() (strconv.ParseInt on "1.0") fails too */
		a->kind = ARG_FLOAT;
		a->f = f;
		return 0;
	}
	a->kind = ARG_STR;
	if (json_is_string(v)) {
		a->slen = json_string_length(v);
		a->s = malloc(a->slen + 1);
		if (!a->s)
			return pw_error_set(PW_ENOMEM, "sprintf: out of memory");
		memcpy(a->s, json_string_value(v), a->slen + 1);
		return 0;
	}
	pw_buf b = PW_BUF_INIT;
	if (term_string(&b, v, 0) < 0 || pw_buf_append(&b, "", 1) < 0) {
		pw_buf_free(&b);
		return PW_EINVALID;
	}
	a->slen = b.len - 1;
	a->s = (char *)pw_buf_detach(&b, NULL);
	return 0;
}

static const char *go_type(const arg *a)
{
	return a->kind == ARG_INT ? "int" : a->kind == ARG_FLOAT ? "float64" : "string";
}

/* ---- padding ------------------------------------------------------------------------------ */

static size_t utf8_runes(const char *s, size_t n)
{
	size_t r = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			r++;
	return r;
}

/* Writes body padded to the width: spaces left (or right with '-'); with '0' (numbers:
 * zeros after the sign; strings: leading zeros, as Go does). */
static void pad(pw_buf *b, const spec *sp, const char *body, size_t n, bool number)
{
	size_t runes = utf8_runes(body, n);
	size_t w = sp->width > 0 ? (size_t)sp->width : 0;
	if (runes >= w) {
		pw_buf_append(b, body, n);
		return;
	}
	size_t fill = w - runes;
	if (sp->minus) {
		pw_buf_append(b, body, n);
		while (fill--)
			pw_buf_append(b, " ", 1);
		return;
	}
	if (sp->zero) {
		size_t sign = number && n && (body[0] == '+' || body[0] == '-' || body[0] == ' ') ? 1 : 0;
		pw_buf_append(b, body, sign);
		while (fill--)
			pw_buf_append(b, "0", 1);
		pw_buf_append(b, body + sign, n - sign);
		return;
	}
	while (fill--)
		pw_buf_append(b, " ", 1);
	pw_buf_append(b, body, n);
}

/* ---- one verb ------------------------------------------------------------------------------ */

static void bad_verb(pw_buf *b, const spec *sp, const arg *a);

static void fmt_value_v(pw_buf *b, const arg *a);

static void fmt_int(pw_buf *b, const spec *sp, const arg *a)
{
	char v = sp->verb[1] ? '\0' : sp->verb[0];
	long long x = a->i;
	unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;
	char body[160];
	size_t n = 0;
	if (v == 'c' || v == 'q' || v == 'U') {
		pw_buf tmp = PW_BUF_INIT;
		if (v == 'U') {
			pw_buf_printf(&tmp, "U+%04llX", (unsigned long long)x);
		} else {
			char r[5] = { 0 };
			unsigned long cp = x < 0 || x > 0x10FFFF ? 0xFFFD : (unsigned long)x;
			if (cp < 0x80) {
				r[0] = (char)cp;
			} else if (cp < 0x800) {
				r[0] = (char)(0xc0 | (cp >> 6));
				r[1] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				r[0] = (char)(0xe0 | (cp >> 12));
				r[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				r[2] = (char)(0x80 | (cp & 0x3f));
			} else {
				r[0] = (char)(0xf0 | (cp >> 18));
				r[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				r[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				r[3] = (char)(0x80 | (cp & 0x3f));
			}
			if (v == 'c') {
				pw_buf_puts(&tmp, r);
			} else if (cp == '\'' || cp == '\\') {
				pw_buf_printf(&tmp, "'\\%c'", (char)cp);
			} else if (cp == '"') {
				pw_buf_puts(&tmp, "'\"'");
			} else {
				pw_buf tq = PW_BUF_INIT;
				pw_opa_go_quote(&tq, r, strlen(r));
				pw_buf_append(&tmp, "'", 1);
				pw_buf_append(&tmp, tq.data + 1, tq.len - 2);
				pw_buf_append(&tmp, "'", 1);
				pw_buf_free(&tq);
			}
		}
		pad(b, sp, tmp.data ? (const char *)tmp.data : "", tmp.len, false);
		pw_buf_free(&tmp);
		return;
	}
	int base;
	const char *digits = "0123456789abcdef", *prefix = "";
	switch (v) {
	case 'v': case 'd': base = 10; break;
	case 'b': base = 2; prefix = sp->sharp ? "0b" : ""; break;
	case 'o': base = 8; prefix = sp->sharp ? "0" : ""; break;
	case 'O': base = 8; prefix = "0o"; break;
	case 'x': base = 16; prefix = sp->sharp ? "0x" : ""; break;
	case 'X': base = 16; digits = "0123456789ABCDEF"; prefix = sp->sharp ? "0X" : ""; break;
	default: bad_verb(b, sp, a); return;
	}
	char rev[72];
	size_t nr = 0;
	do {
		rev[nr++] = digits[u % (unsigned)base];
		u /= (unsigned)base;
	} while (u);
	if (sp->prec == 0 && x == 0)
		nr = 0;   /* Go: precision 0 and value 0 print nothing */
	if (x < 0)
		body[n++] = '-';
	else if (sp->plus)
		body[n++] = '+';
	else if (sp->space)
		body[n++] = ' ';
	if (!(v == 'o' && sp->sharp && nr && rev[nr - 1] == '0'))
		for (const char *p = prefix; *p; p++)
			body[n++] = *p;
	for (int i = (int)nr; sp->prec > 0 && i < sp->prec && n < 100; i++)
		body[n++] = '0';
	while (nr)
		body[n++] = rev[--nr];
	spec s2 = *sp;
	if (sp->prec >= 0)
		s2.zero = false;   /* Go: a precision turns off zero padding */
	pad(b, &s2, body, n, true);
}

static void fmt_float(pw_buf *b, const spec *sp, const arg *a)
{
	char v = sp->verb[1] ? '\0' : sp->verb[0];
	double f = a->f;
	pw_buf tmp = PW_BUF_INIT;
	if (!signbit(f) && sp->plus)
		pw_buf_append(&tmp, "+", 1);
	else if (!signbit(f) && sp->space)
		pw_buf_append(&tmp, " ", 1);
	switch (v) {
	case 'v':
		format_shortest(&tmp, f, SHORTEST_EXP_LIMIT, false);
		break;
	case 'g': case 'G':
		if (sp->prec < 0)
			format_shortest(&tmp, f, SHORTEST_EXP_LIMIT, v == 'G');
		else
			pw_buf_printf(&tmp, v == 'g' ? "%.*g" : "%.*G", sp->prec ? sp->prec : 1, f);
		break;
	case 'e': case 'E': case 'f': case 'F': {
		char fmtc[8] = { '%', '.', '*', v == 'F' ? 'f' : v, '\0' };
		pw_buf_printf(&tmp, fmtc, sp->prec < 0 ? 6 : sp->prec, f);
		break;
	}
	default:
		pw_buf_free(&tmp);
		bad_verb(b, sp, a);
		return;
	}
	pad(b, sp, tmp.data ? (const char *)tmp.data : "", tmp.len, true);
	pw_buf_free(&tmp);
}

static void fmt_str(pw_buf *b, const spec *sp, const arg *a)
{
	char v = sp->verb[1] ? '\0' : sp->verb[0];
	const char *s = a->s;
	size_t n = a->slen;
	if (sp->prec >= 0 && (v == 's' || v == 'v' || v == 'q' || v == 'x' || v == 'X')) {
		/* precision: at most prec runes (x/X: bytes) */
		size_t r = 0, i = 0;
		for (; i < n; i++) {
			if (v == 'x' || v == 'X') {
				if (r == (size_t)sp->prec)
					break;
				r++;
				continue;
			}
			if (((unsigned char)s[i] & 0xc0) != 0x80) {
				if (r == (size_t)sp->prec)
					break;
				r++;
			}
		}
		n = i;
	}
	pw_buf tmp = PW_BUF_INIT;
	switch (v) {
	case 's': case 'v':
		pad(b, sp, s, n, false);
		return;
	case 'q':
		if (sp->sharp && !memchr(s, '`', n) && !memchr(s, '\n', n)) {
			pw_buf_append(&tmp, "`", 1);
			pw_buf_append(&tmp, s, n);
			pw_buf_append(&tmp, "`", 1);
		} else {
			pw_opa_go_quote(&tmp, s, n);
		}
		break;
	case 'x': case 'X': {
		const char *digits = v == 'x' ? "0123456789abcdef" : "0123456789ABCDEF";
		for (size_t i = 0; i < n; i++) {
			if (sp->space && i)
				pw_buf_append(&tmp, " ", 1);
			if (sp->sharp && (i == 0 || sp->space))
				pw_buf_puts(&tmp, v == 'x' ? "0x" : "0X");
			char h[2] = { digits[(unsigned char)s[i] >> 4], digits[(unsigned char)s[i] & 15] };
			pw_buf_append(&tmp, h, 2);
		}
		break;
	}
	default:
		bad_verb(b, sp, a);
		return;
	}
	pad(b, sp, tmp.data ? (const char *)tmp.data : "", tmp.len, false);
	pw_buf_free(&tmp);
}

/* Go's %v of an argument in the EXTRA / bad-verb forms. */
static void fmt_value_v(pw_buf *b, const arg *a)
{
	if (a->kind == ARG_INT)
		pw_buf_printf(b, "%lld", a->i);
	else if (a->kind == ARG_FLOAT)
		format_shortest(b, a->f, SHORTEST_EXP_LIMIT, false);
	else
		pw_buf_append(b, a->s, a->slen);
}

static void bad_verb(pw_buf *b, const spec *sp, const arg *a)
{
	pw_buf_printf(b, "%%!%s(%s=", sp->verb, go_type(a));
	fmt_value_v(b, a);
	pw_buf_append(b, ")", 1);
}

/* ---- the format loop ----------------------------------------------------------------------- */

static size_t utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* An int argument for '*' (Go: BADWIDTH / BADPREC when not an int). */
static bool star_arg(const arg *args, size_t nargs, size_t *ai, int *out)
{
	if (*ai >= nargs || args[*ai].kind != ARG_INT || args[*ai].i > 1000000 || args[*ai].i < -1000000) {
		(*ai)++;
		return false;
	}
	*out = (int)args[(*ai)++].i;
	return true;
}

static void format_all(pw_buf *b, const char *f, size_t n, const arg *args, size_t nargs)
{
	size_t ai = 0;
	for (size_t i = 0; i < n;) {
		if (f[i] != '%') {
			const char *next = memchr(f + i, '%', n - i);
			size_t len = next ? (size_t)(next - (f + i)) : n - i;
			pw_buf_append(b, f + i, len);
			i += len;
			continue;
		}
		i++;
		spec sp = { .width = -1, .prec = -1 };
		for (; i < n; i++) {
			char c = f[i];
			if (c == '+') sp.plus = true;
			else if (c == '-') sp.minus = true;
			else if (c == '#') sp.sharp = true;
			else if (c == '0') sp.zero = !sp.minus;
			else if (c == ' ') sp.space = true;
			else break;
		}
		if (sp.minus)
			sp.zero = false;
		if (i < n && f[i] == '*') {
			i++;
			int w;
			if (!star_arg(args, nargs, &ai, &w)) {
				pw_buf_puts(b, "%!(BADWIDTH)");
			} else {
				if (w < 0) {
					sp.minus = true;
					sp.zero = false;
					w = -w;
				}
				sp.width = w;
			}
		} else {
			int w = 0;
			bool any = false;
			while (i < n && f[i] >= '0' && f[i] <= '9' && w < 1000000) {
				w = w * 10 + (f[i++] - '0');
				any = true;
			}
			if (any)
				sp.width = w;
		}
		if (i < n && f[i] == '.') {
			i++;
			if (i < n && f[i] == '*') {
				i++;
				int p;
				if (!star_arg(args, nargs, &ai, &p) || p < 0) {
					pw_buf_puts(b, "%!(BADPREC)");
				} else {
					sp.prec = p;
				}
			} else {
				int p = 0;
				while (i < n && f[i] >= '0' && f[i] <= '9' && p < 1000000)
					p = p * 10 + (f[i++] - '0');
				sp.prec = p;
			}
		}
		if (i >= n) {
			pw_buf_puts(b, "%!(NOVERB)");
			break;
		}
		size_t vl = utf8_len((unsigned char)f[i]);
		if (i + vl > n)
			vl = n - i;
		memcpy(sp.verb, f + i, vl);
		sp.verb[vl] = '\0';
		i += vl;
		if (!strcmp(sp.verb, "%")) {
			pw_buf_append(b, "%", 1);
			continue;
		}
		if (ai >= nargs) {
			pw_buf_printf(b, "%%!%s(MISSING)", sp.verb);
			continue;
		}
		const arg *a = &args[ai++];
		if (a->kind == ARG_INT)
			fmt_int(b, &sp, a);
		else if (a->kind == ARG_FLOAT)
			fmt_float(b, &sp, a);
		else
			fmt_str(b, &sp, a);
	}
	if (ai < nargs) {
		pw_buf_puts(b, "%!(EXTRA ");
		for (size_t k = ai; k < nargs; k++) {
			if (k > ai)
				pw_buf_puts(b, ", ");
			pw_buf_printf(b, "%s=", go_type(&args[k]));
			fmt_value_v(b, &args[k]);
		}
		pw_buf_append(b, ")", 1);
	}
}

int pw_opa_sprintf(pw_opa_bctx *ctx, json_t *const *args, json_t **out)
{
	if (!json_is_string(args[0]))
		return pw_opa_type_error("sprintf", 1, "string");
	if (!json_is_array(args[1]))
		return pw_opa_type_error("sprintf", 2, "array");
	size_t nargs = json_array_size(args[1]);
	arg *av = calloc(nargs ? nargs : 1, sizeof *av);
	if (!av)
		return pw_error_set(PW_ENOMEM, "sprintf: out of memory");
	int rc = 0;
	for (size_t i = 0; i < nargs && rc == 0; i++)
		rc = convert_arg(json_array_get(args[1], i), &av[i]);
	pw_buf b = PW_BUF_INIT;
	if (rc == 0)
		format_all(&b, json_string_value(args[0]), json_string_length(args[0]), av, nargs);
	for (size_t i = 0; i < nargs; i++)
		free(av[i].s);
	free(av);
	return pw_opa_buf_result(&b, rc, "sprintf", out);
}
