/*
 * The expression language of policy groups (private to the server part).
 *
 * Kubewarden evaluates a group's `expression` with a raw Rhai engine in which every member is
 * a zero-argument function returning its verdict; kubewarden-controller admits only member
 * calls and the operators `!`, `&&`, `||`, `==`, `!=` (docs/kubewarden.md, "Policy groups").
 * Prewarm accepts exactly that intersection, plus `true`, `false` and parentheses:
 *
 *   expr    := or
 *   or      := and ( "||" and )*            short-circuit, left to right
 *   and     := eq ( "&&" eq )*              short-circuit, left to right
 *   eq      := unary ( ("==" | "!=") unary )*    both sides, left first
 *   unary   := "!" unary | primary
 *   primary := "true" | "false" | MEMBER "(" ")" | "(" expr ")"
 *
 * The text is parsed once, at load, into a tree; anything else (integers, `&`, comparisons,
 * unknown members, comments) is refused then with the position and what was expected.
 * Evaluation is lazy: a member is called only when the expression needs its value.
 */
#ifndef PW_SERVER_EXPR_H
#define PW_SERVER_EXPR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pw_expr pw_expr;

/* Limits on outside input: the text and the nesting of '(' and '!'. */
#define PW_EXPR_MAX_LEN 4096
#define PW_EXPR_MAX_DEPTH 64

/*
 * Parses `text` whose calls may name `names[0..nnames)` (a call of names[i] evaluates
 * member i). `what` prefixes messages (e.g. `policies.yml: policy group "g"`). PW_EINVALID
 * with "WHAT: expression: at position N (of "TEXT"): expected X, got Y" (positions count
 * bytes from 1) or "... unknown member "NAME" ..."; PW_ENOMEM. *out is the caller's.
 */
int pw_expr_parse(pw_expr **out, const char *text, const char *const *names, size_t nnames, const char *what);
void pw_expr_free(pw_expr *e);

/* Called for a member the expression needs: 0 with *verdict set, or < 0 to stop evaluating
 * (the code is returned by pw_expr_eval, the per-thread error kept). */
typedef int (*pw_expr_call_fn)(void *arg, size_t member, bool *verdict);

/* Evaluates `e` left to right with short-circuit `&&`/`||`. 0 with *result set, or the
 * first negative code from `call`. */
int pw_expr_eval(const pw_expr *e, pw_expr_call_fn call, void *arg, bool *result);

/* The number of tree nodes (for tests). */
size_t pw_expr_nodes(const pw_expr *e);

#endif
