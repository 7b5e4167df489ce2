/*
 * Fuzz target for policies.yml: the YAML -> JSON conversion (aliases, nesting, scalars)
 * and the strict policy checks. Any input must give either a parsed set or an error
 * message, never a crash, a leak or an unbounded expansion.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "prewarm/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_policies *p = NULL;
	int rc = pw_policies_parse(&p, (const char *)data, size, "fuzz");
	if (rc == 0) {
		for (size_t i = 0; i < p->n; i++) {
			const pw_policy_conf *c = &p->items[i];
			if (!c->id || (!c->is_group && (!c->module || !c->settings_json)) || strchr(c->id, '/'))
				__builtin_trap();
			if (pw_policies_find(p, c->id) == NULL || !pw_policy_conf_equal(c, c))
				__builtin_trap();
		}
	} else if (p != NULL || pw_error_last()[0] == '\0') {
		__builtin_trap();  /* a failure must leave no result and say why */
	}
	pw_policies_free(p);
	return 0;
}
