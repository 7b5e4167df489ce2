/*
 * Fuzz target for policy group expressions (src/server/expr.c): any text must parse into a
 * tree or give a message naming the group, and a parsed tree must evaluate with members
 * drawn from the input's first byte, calling only the members it names, in bounded depth.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/common.h"
#include "../src/server/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = { "a", "b", "c", "pod_privileged", "_x9" };

static int call(void *arg, size_t m, bool *v)
{
	unsigned bits = *(unsigned *)arg;
	if (m >= sizeof names / sizeof names[0])
		__builtin_trap();
	if (m == 4 && (bits & 0x80))
		return pw_error_set(PW_ERROR, "member failed");
	*v = (bits >> m) & 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned bits = size ? data[0] : 0;
	char *text = malloc(size + 1);
	pw_expr *e = NULL;
	bool r;

	if (!text)
		return 0;
	if (size)
		memcpy(text, data, size);
	text[size] = '\0';   /* the parser sees a C string, as from policies.yml */
	int rc = pw_expr_parse(&e, text, names, sizeof names / sizeof names[0], "fuzz");
	if (rc == 0) {
		if (!e || !pw_expr_nodes(e))
			__builtin_trap();
		rc = pw_expr_eval(e, call, &bits, &r);
		if (rc < 0 && rc != PW_ERROR)
			__builtin_trap();
	} else if (e != NULL || strncmp(pw_error_last(), "fuzz: ", 6) != 0) {
		__builtin_trap();   /* a failure leaves no tree and names the group */
	}
	pw_expr_free(e);
	free(text);
	return 0;
}
