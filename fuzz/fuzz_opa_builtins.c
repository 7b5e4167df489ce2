/*
 * Fuzz target for the Rego builtins (src/host/opa_*.c), whose arguments come from policy
 * modules and from admission requests: the first byte picks a builtin, the rest is split at
 * NUL bytes into its string arguments (YAML text, regex patterns and subjects, sprintf
 * formats, RFC 3339 times, query strings, JSON patches...). Every call must answer a value,
 * undefined, or an error with a message naming the builtin, and never crash or hang.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/common.h"
#include "../src/host/opa_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STRS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n;
	const pw_opa_builtin *all = pw_opa_builtins(&n);
	const pw_opa_builtin *b = &all[data[0] % n];
	json_t *s[MAX_STRS] = { 0 };
	size_t k = 0, start = 1;
	for (size_t i = 1; i <= size && k < MAX_STRS; i++)
		if (i == size || data[i] == 0) {
			s[k++] = json_stringn((const char *)data + start, i - start);  /* NULL if not UTF-8 */
			start = i + 1;
		}
	for (size_t i = 0; i < MAX_STRS; i++)
		if (!s[i])
			s[i] = json_string("");
	json_t *args[4] = { s[0], s[1], s[2], s[3] };
	json_t *extra = NULL;
	if (!strcmp(b->name, "sprintf")) {
		extra = json_pack("[Oif{s[O]}bn]", s[1], 7, 2.5, "k", s[2], 1);
		args[1] = extra;
	} else if (!strcmp(b->name, "regex.find_n")) {
		extra = json_integer((data[0] & 0x80) ? -1 : 3);
		args[2] = extra;
	} else if (!strcmp(b->name, "time.date")) {
		extra = json_pack("[IO]", (json_int_t)1496422800123456789LL, s[0]);
		args[0] = extra;
	} else if (!strcmp(b->name, "json.patch") || !strcmp(b->name, "urlquery.encode_object") ||
	           !strcmp(b->name, "yaml.marshal") || !strcmp(b->name, "semver.is_valid")) {
		json_t *v0 = json_loads(json_string_value(s[0]), JSON_DECODE_ANY, NULL);
		json_t *v1 = json_loads(json_string_value(s[1]), JSON_DECODE_ANY, NULL);
		extra = json_pack("[oo]", v0 ? v0 : json_null(), v1 ? v1 : json_array());
		args[0] = json_array_get(extra, 0);
		args[1] = json_array_get(extra, 1);
	}
	pw_opa_bctx ctx = { .log_tag = "fuzz" };
	json_t *out = NULL;
	int rc = pw_opa_builtin_call(b, &ctx, args, b->arity, &out);
	if (rc < 0) {
		if (out || !strstr(pw_error_last(), b->name))
			__builtin_trap();   /* errors leave no value and name the builtin */
	} else if (out) {
		char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			__builtin_trap();
		free(text);
	}
	json_decref(out);
	json_decref(extra);
	for (size_t i = 0; i < MAX_STRS; i++)
		json_decref(s[i]);
	return 0;
}
