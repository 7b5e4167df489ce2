/*
 * Tests of the policy group expression language (src/server/expr.c): every operator, the
 * precedence of || < && < ==/!= < !, parentheses, left-to-right evaluation and short-circuit
 * (a fake member table counts calls, so a right side that must not run is seen not to run),
 * failures of a member stopping the evaluation, and the parser's limits.
 */
#include <string.h>

#include "harness.h"
#include "prewarm/common.h"
#include "../src/server/expr.h"

static const char *const names[] = { "t", "f", "t2", "boom" };

typedef struct fake {
	int calls[4];
	char order[64];
	size_t norder;
} fake;

/* t and t2 answer true, f false, boom fails */
static int call(void *arg, size_t m, bool *v)
{
	fake *fk = arg;
	fk->calls[m]++;
	if (fk->norder < sizeof fk->order - 1)
		fk->order[fk->norder++] = "aFTb"[m] == 'a' ? 't' : "aFTb"[m];
	if (m == 3)
		return pw_error_set(PW_ETRAP, "boom failed");
	*v = m != 1;
	return 0;
}

/* Evaluates `text`; returns the verdict (or -1 on an evaluation error), counts in *fk. */
static int run(const char *text, fake *fk)
{
	pw_expr *e = NULL;
	bool r = false;
	memset(fk, 0, sizeof *fk);
	if (pw_expr_parse(&e, text, names, 4, "test") < 0)
		return -2;
	int rc = pw_expr_eval(e, call, fk, &r);
	pw_expr_free(e);
	return rc < 0 ? -1 : r;
}

#define EXPECT(text, want, order_) do { fake _f; int _r = run(text, &_f); \
	CHECK_MSG(_r == (want), "%s: got %d, want %d (%s)", text, _r, want, pw_error_last()); \
	CHECK_MSG(!strcmp(_f.order, order_), "%s: calls \"%s\", want \"%s\"", text, _f.order, order_); \
} while (0)

static void test_operators(void)
{
	EXPECT("true", 1, "");
	EXPECT("false", 0, "");
	EXPECT("t()", 1, "t");
	EXPECT("f()", 0, "F");
	EXPECT("!t()", 0, "t");
	EXPECT("!!f()", 0, "F");
	EXPECT("!f()", 1, "F");
	EXPECT("t() && t2()", 1, "tT");
	EXPECT("t() && f()", 0, "tF");
	EXPECT("t() || f()", 1, "t");
	EXPECT("f() || t()", 1, "Ft");
	EXPECT("f() || f()", 0, "FF");
	EXPECT("t() == t2()", 1, "tT");
	EXPECT("t() == f()", 0, "tF");
	EXPECT("f() == false", 1, "F");
	EXPECT("t() != f()", 1, "tF");
	EXPECT("t() != true", 0, "t");
	EXPECT("f() == f()", 1, "FF");   /* a member named twice runs twice */
}

static void test_precedence_and_parentheses(void)
{
	/* && binds tighter than || */
	EXPECT("true || false && false", 1, "");
	EXPECT("(true || false) && false", 0, "");
	EXPECT("false && true || true", 1, "");
	/* == binds tighter than &&: true && (false == false) */
	EXPECT("true && false == false", 1, "");
	EXPECT("(true && false) == false", 1, "");
	EXPECT("true == false || true", 1, "");
	EXPECT("true == (false || true)", 1, "");
	/* ! binds tighter than ==: (!true) == false */
	EXPECT("!true == false", 1, "");
	EXPECT("!(true == false)", 1, "");
	/* left associative == */
	EXPECT("false == false == false", 0, "");
	EXPECT("( ( t() ) )", 1, "t");
	EXPECT(" \t\nt()\r\n&&\tt2 ( ) ", 1, "tT");
}

static void test_short_circuit(void)
{
	/* the right side is not evaluated: boom would fail the evaluation */
	EXPECT("t() || boom()", 1, "t");
	EXPECT("f() && boom()", 0, "F");
	EXPECT("true || boom()", 1, "");
	EXPECT("false && (boom() || boom())", 0, "");
	EXPECT("f() && boom() || t()", 1, "Ft");
	/* Kubewarden's evaluator test: unhappy1() || (happy() && unhappy2()) runs all three */
	EXPECT("f() || (t() && f())", 0, "FtF");
	EXPECT("f() || t() || boom()", 1, "Ft");
	/* == evaluates both sides */
	EXPECT("t() == boom()", -1, "tb");
	EXPECT("boom() || t()", -1, "b");
	fake fk;
	CHECK_INT(run("t() || boom() || boom()", &fk), 1);
	CHECK_INT(fk.calls[3], 0);
	CHECK_INT(run("t() && boom()", &fk), -1);
	CHECK_INT(fk.calls[3], 1);
	CHECK(strstr(pw_error_last(), "boom failed") != NULL);
}

static void test_parse_errors(void)
{
	static const struct { const char *text, *want; } bad[] = {
		{ "", "expression is empty" },
		{ "t", "at position 2: expected '(' after a member name" },
		{ "t(", "at position 3: expected ')'" },
		{ "nope()", "at position 1: unknown member \"nope\" (the group's members: t, f, t2, boom)" },
		{ "1", "at position 1: expected a member call NAME(), true, false, '!' or '(', got \"1\"" },
		{ "t() && && t()", "at position 8: expected a member call" },
		{ "t() &&& t()", "at position 7: expected a member call NAME(), true, false, '!' or '(', got \"&\"" },
		{ "t() ||", "at position 7" },
		{ "(t()", "at position 5: expected ')' closing the '(' at position 1" },
		{ "t() t()", "at position 5: expected an operator" },
		{ "!", "at position 2: expected a member call" },
		{ "t() == 1", "at position 8:" },
		{ "t() === t()", "at position 7:" },
		{ "\x01", "got byte 0x01" },
		{ "t() \xc3\xa9", "got byte 0xc3" },
		{ "TRUE", "expected '(' after a member name" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pw_expr *e = NULL;
		int rc = pw_expr_parse(&e, bad[i].text, names, 4, "G");
		CHECK_MSG(rc == PW_EINVALID && e == NULL, "\"%s\" parsed (%d)", bad[i].text, rc);
		CHECK_MSG(strstr(pw_error_last(), bad[i].want) != NULL, "\"%s\": \"%s\" lacks \"%s\"", bad[i].text,
		          pw_error_last(), bad[i].want);
		CHECK_MSG(!strncmp(pw_error_last(), "G: ", 3), "\"%s\": \"%s\" does not name the group", bad[i].text,
		          pw_error_last());
	}
}

static void test_limits(void)
{
	char buf[PW_EXPR_MAX_LEN + 2];
	pw_expr *e = NULL;
	/* a long flat chain is fine (loops, not recursion) */
	size_t n = 0;
	while (n + 12 < PW_EXPR_MAX_LEN) {
		memcpy(buf + n, n ? " && t()" : "t()", n ? 7 : 3);
		n += n ? 7 : 3;
	}
	buf[n] = '\0';
	CHECK_OK(pw_expr_parse(&e, buf, names, 4, "G"));
	fake fk = { 0 };
	bool r = false;
	CHECK_OK(pw_expr_eval(e, call, &fk, &r));
	CHECK(r);
	CHECK(pw_expr_nodes(e) > 1000);
	pw_expr_free(e);
	memset(buf, ' ', PW_EXPR_MAX_LEN + 1);
	buf[PW_EXPR_MAX_LEN + 1] = '\0';
	CHECK_INT(pw_expr_parse(&e, buf, names, 4, "G"), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "more than the limit") != NULL);
	/* nesting */
	for (n = 0; n < PW_EXPR_MAX_DEPTH + 1; n++)
		buf[n] = '(';
	memcpy(buf + n, "t()", 4);
	CHECK_INT(pw_expr_parse(&e, buf, names, 4, "G"), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "nested deeper than") != NULL);
	pw_expr_free(NULL);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_operators),
		PW_TEST(test_precedence_and_parentheses),
		PW_TEST(test_short_circuit),
		PW_TEST(test_parse_errors),
		PW_TEST(test_limits),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
