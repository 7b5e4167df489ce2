/*
 * Fuzz target: Kubewarden's verification config (pw_verify_config_parse: YAML or JSON,
 * apiVersion, allOf, anyOf with minimumMatches, pubKey entries with PEM keys parsed by
 * OpenSSL, annotations; keyless kinds refused). Input: the file's text.
 */
#include <stdint.h>
#include <stdlib.h>

#include "prewarm/sigstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_verify_config *c = NULL;
	if (pw_verify_config_parse(&c, (const char *)data, size, "fuzz.yml") == 0)
		pw_verify_config_free(c);
	return 0;
}
