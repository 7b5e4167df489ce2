/*
 * Policy group expressions: a tokenizer, a recursive-descent parser building a tree in one
 * array, and a lazy evaluator (grammar and rationale in expr.h).
 *
 * The parser is the only thing that reads outside input here, so it is bounded: the text is
 * at most PW_EXPR_MAX_LEN bytes and the nesting of '(' and '!' at most PW_EXPR_MAX_DEPTH,
 * which also bounds the evaluator's recursion (chains of && / || / == are built in loops and
 * evaluated along their left spine, at most one level per operator of a bounded text).
 * Errors name the group, the byte position (from 1), what was expected and what was found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/common.h"
#include "server/expr.h"

typedef enum node_kind { N_CONST, N_CALL, N_NOT, N_AND, N_OR, N_EQ, N_NE } node_kind;

typedef struct node {
	node_kind kind;
	bool value;          /* N_CONST */
	size_t member;       /* N_CALL */
	size_t a, b;         /* operands (indexes into nodes) */
} node;

struct pw_expr {
	node *nodes;
	size_t n, cap;
	size_t root;
};

typedef enum tok_kind {
	T_END, T_IDENT, T_TRUE, T_FALSE, T_LPAREN, T_RPAREN, T_NOT, T_AND, T_OR, T_EQ, T_NE, T_BAD
} tok_kind;

typedef struct tok {
	tok_kind kind;
	size_t pos, len;     /* byte offset (0-based) and length in the text */
} tok;

typedef struct parser {
	const char *text;
	size_t len, at;
	tok t;               /* the current token */
	const char *const *names;
	size_t nnames;
	const char *what;
	unsigned depth;
	pw_expr *e;
} parser;

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static void next(parser *p)
{
	const char *s = p->text;
	while (p->at < p->len && (s[p->at] == ' ' || s[p->at] == '\t' || s[p->at] == '\n' || s[p->at] == '\r'))
		p->at++;
	p->t.pos = p->at;
	p->t.len = 1;
	if (p->at >= p->len) {
		p->t.kind = T_END;
		p->t.len = 0;
		return;
	}
	char c = s[p->at], d = p->at + 1 < p->len ? s[p->at + 1] : '\0';
	if (is_ident_start(c)) {
		size_t e = p->at;
		while (e < p->len && is_ident(s[e]))
			e++;
		p->t.len = e - p->at;
		p->t.kind = p->t.len == 4 && !memcmp(s + p->at, "true", 4) ? T_TRUE
		          : p->t.len == 5 && !memcmp(s + p->at, "false", 5) ? T_FALSE : T_IDENT;
	} else if (c == '(') {
		p->t.kind = T_LPAREN;
	} else if (c == ')') {
		p->t.kind = T_RPAREN;
	} else if (c == '&' && d == '&') {
		p->t.kind = T_AND, p->t.len = 2;
	} else if (c == '|' && d == '|') {
		p->t.kind = T_OR, p->t.len = 2;
	} else if (c == '=' && d == '=') {
		p->t.kind = T_EQ, p->t.len = 2;
	} else if (c == '!' && d == '=') {
		p->t.kind = T_NE, p->t.len = 2;
	} else if (c == '!') {
		p->t.kind = T_NOT;
	} else {
		/* a run of digits or one other character, for the message */
		size_t e = p->at + 1;
		if (c >= '0' && c <= '9')
			while (e < p->len && is_ident(s[e]))
				e++;
		p->t.kind = T_BAD;
		p->t.len = e - p->at;
	}
	p->at += p->t.len;
}

static int fail(parser *p, const char *expected)
{
	char got[96];
	if (p->t.kind == T_END)
		snprintf(got, sizeof got, "the end of the expression");
	else if ((unsigned char)p->text[p->t.pos] < 0x20 || (unsigned char)p->text[p->t.pos] >= 0x7f)
		snprintf(got, sizeof got, "byte 0x%02x", (unsigned char)p->text[p->t.pos]);
	else
		snprintf(got, sizeof got, "\"%.*s\"", (int)(p->t.len > 40 ? 40 : p->t.len), p->text + p->t.pos);
	return pw_error_set(PW_EINVALID, "%s: expression: at position %zu: expected %s, got %s "
	                    "(only member calls NAME(), true, false, !, &&, ||, ==, != and parentheses are allowed)",
	                    p->what, p->t.pos + 1, expected, got);
}

static int add(parser *p, node nd, size_t *out)
{
	pw_expr *e = p->e;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		node *nn = realloc(e->nodes, cap * sizeof *nn);
		if (!nn)
			return pw_error_set(PW_ENOMEM, "%s: out of memory parsing the expression", p->what);
		e->nodes = nn;
		e->cap = cap;
	}
	e->nodes[e->n] = nd;
	*out = e->n++;
	return 0;
}

static int parse_or(parser *p, size_t *out);

static int enter(parser *p)
{
	if (++p->depth > PW_EXPR_MAX_DEPTH)
		return pw_error_set(PW_EINVALID, "%s: expression: at position %zu: nested deeper than %d levels",
		                    p->what, p->t.pos + 1, PW_EXPR_MAX_DEPTH);
	return 0;
}

static int parse_primary(parser *p, size_t *out)
{
	int rc;
	switch (p->t.kind) {
	case T_TRUE:
	case T_FALSE: {
		node nd = { .kind = N_CONST, .value = p->t.kind == T_TRUE };
		next(p);
		return add(p, nd, out);
	}
	case T_IDENT: {
		size_t pos = p->t.pos, len = p->t.len, m;
		for (m = 0; m < p->nnames; m++)
			if (strlen(p->names[m]) == len && !memcmp(p->names[m], p->text + pos, len))
				break;
		next(p);
		if (p->t.kind != T_LPAREN)
			return fail(p, "'(' after a member name (members are called as NAME())");
		next(p);
		if (p->t.kind != T_RPAREN)
			return fail(p, "')' (member calls take no arguments)");
		if (m == p->nnames) {
			char list[512] = "";
			size_t used = 0;
			for (size_t i = 0; i < p->nnames && used < sizeof list - 1; i++) {
				int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", p->names[i]);
				if (w < 0)
					break;
				used += (size_t)w < sizeof list - used ? (size_t)w : sizeof list - used - 1;
			}
			return pw_error_set(PW_EINVALID, "%s: expression: at position %zu: unknown member \"%.*s\" "
			                    "(the group's members: %s)", p->what, pos + 1, (int)(len > 64 ? 64 : len),
			                    p->text + pos, list);
		}
		next(p);
		node nd = { .kind = N_CALL, .member = m };
		return add(p, nd, out);
	}
	case T_LPAREN: {
		size_t open = p->t.pos;
		if ((rc = enter(p)) < 0)
			return rc;
		next(p);
		if ((rc = parse_or(p, out)) < 0)
			return rc;
		if (p->t.kind != T_RPAREN) {
			char what[64];
			snprintf(what, sizeof what, "')' closing the '(' at position %zu, or an operator", open + 1);
			return fail(p, what);
		}
		p->depth--;
		next(p);
		return 0;
	}
	default:
		return fail(p, "a member call NAME(), true, false, '!' or '('");
	}
}

static int parse_unary(parser *p, size_t *out)
{
	int rc;
	if (p->t.kind != T_NOT)
		return parse_primary(p, out);
	if ((rc = enter(p)) < 0)
		return rc;
	next(p);
	node nd = { .kind = N_NOT };
	if ((rc = parse_unary(p, &nd.a)) < 0)
		return rc;
	p->depth--;
	return add(p, nd, out);
}

static int parse_eq(parser *p, size_t *out)
{
	int rc = parse_unary(p, out);
	while (rc == 0 && (p->t.kind == T_EQ || p->t.kind == T_NE)) {
		node nd = { .kind = p->t.kind == T_EQ ? N_EQ : N_NE, .a = *out };
		next(p);
		if ((rc = parse_unary(p, &nd.b)) == 0)
			rc = add(p, nd, out);
	}
	return rc;
}

static int parse_and(parser *p, size_t *out)
{
	int rc = parse_eq(p, out);
	while (rc == 0 && p->t.kind == T_AND) {
		node nd = { .kind = N_AND, .a = *out };
		next(p);
		if ((rc = parse_eq(p, &nd.b)) == 0)
			rc = add(p, nd, out);
	}
	return rc;
}

static int parse_or(parser *p, size_t *out)
{
	int rc = parse_and(p, out);
	while (rc == 0 && p->t.kind == T_OR) {
		node nd = { .kind = N_OR, .a = *out };
		next(p);
		if ((rc = parse_and(p, &nd.b)) == 0)
			rc = add(p, nd, out);
	}
	return rc;
}

int pw_expr_parse(pw_expr **out, const char *text, const char *const *names, size_t nnames, const char *what)
{
	parser p = { .text = text, .names = names, .nnames = nnames, .what = what ? what : "policy group" };
	int rc;

	*out = NULL;
	p.len = strlen(text);
	if (p.len > PW_EXPR_MAX_LEN)
		return pw_error_set(PW_EINVALID, "%s: expression is %zu bytes long, more than the limit of %d",
		                    p.what, p.len, PW_EXPR_MAX_LEN);
	if (!(p.e = calloc(1, sizeof *p.e)))
		return pw_error_set(PW_ENOMEM, "%s: out of memory parsing the expression", p.what);
	next(&p);
	if (p.t.kind == T_END) {
		pw_expr_free(p.e);
		return pw_error_set(PW_EINVALID, "%s: expression is empty (expected a boolean expression over the "
		                    "group's members, like \"a() && b()\")", p.what);
	}
	rc = parse_or(&p, &p.e->root);
	if (rc == 0 && p.t.kind != T_END)
		rc = fail(&p, "an operator (&&, ||, ==, !=) or the end of the expression");
	if (rc < 0) {
		pw_expr_free(p.e);
		return rc;
	}
	*out = p.e;
	return 0;
}

void pw_expr_free(pw_expr *e)
{
	if (!e)
		return;
	free(e->nodes);
	free(e);
}

size_t pw_expr_nodes(const pw_expr *e)
{
	return e ? e->n : 0;
}

static int eval(const pw_expr *e, size_t i, pw_expr_call_fn call, void *arg, bool *r)
{
	const node *nd = &e->nodes[i];
	bool x, y;
	int rc;

	switch (nd->kind) {
	case N_CONST:
		*r = nd->value;
		return 0;
	case N_CALL:
		return call(arg, nd->member, r);
	case N_NOT:
		if ((rc = eval(e, nd->a, call, arg, &x)) < 0)
			return rc;
		*r = !x;
		return 0;
	case N_AND:
	case N_OR:
		if ((rc = eval(e, nd->a, call, arg, &x)) < 0)
			return rc;
		if (x == (nd->kind == N_OR)) {   /* short-circuit */
			*r = x;
			return 0;
		}
		return eval(e, nd->b, call, arg, r);
	case N_EQ:
	case N_NE:
		if ((rc = eval(e, nd->a, call, arg, &x)) < 0 || (rc = eval(e, nd->b, call, arg, &y)) < 0)
			return rc;
		*r = (x == y) == (nd->kind == N_EQ);
		return 0;
	}
	return pw_error_set(PW_ERROR, "corrupt expression tree");
}

int pw_expr_eval(const pw_expr *e, pw_expr_call_fn call, void *arg, bool *result)
{
	if (!e || !e->n)
		return pw_error_set(PW_EINVALID, "no expression to evaluate");
	return eval(e, e->root, call, arg, result);
}
