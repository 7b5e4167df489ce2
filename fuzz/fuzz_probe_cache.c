/*
 * Fuzz target for the engine's probe cache file parser (src/engine/probe_cache.c):
 * the file lives in a user cache directory, so it is outside input. Parses the bytes
 * with and without an expected key; whatever parses must format back to exactly the
 * same bytes (the format has one spelling) and parse again to the same answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	pw_probe_answer a, b;
	if (pw_probe_cache_parse((const char *)data, size, key, &a) == 0)
		pw_probe_answer_free(&a);
	if (pw_probe_cache_parse((const char *)data, size, NULL, &a) != 0)
		return 0;
	/* the key inside is the line after the header */
	const char *k = memchr(data, '\n', size);
	char inner[65];
	memcpy(inner, k + 5, 64);
	inner[64] = 0;
	char *text = pw_probe_cache_format(inner, &a);
	if (!text || strlen(text) != size || memcmp(text, data, size) != 0)
		abort();
	if (pw_probe_cache_parse(text, size, inner, &b) != 0 || strcmp(a.translator, b.translator) ||
	    strcmp(a.compiler, b.compiler) || strcmp(a.machine, b.machine))
		abort();
	free(text);
	pw_probe_answer_free(&a);
	pw_probe_answer_free(&b);
	return 0;
}
