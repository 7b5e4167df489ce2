/*
 * Fuzz target: the WWW-Authenticate challenge parser (pw_oci_challenge_parse). Input:
 * the header value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prewarm/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	pw_oci_challenge c;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (pw_oci_challenge_parse(&c, s) == 0) {
		if (strcasecmp(c.scheme, "Bearer") && strcasecmp(c.scheme, "Basic"))
			abort();
		if (!strcasecmp(c.scheme, "Bearer") && !c.realm)
			abort();
		pw_oci_challenge_clear(&c);
	}
	free(s);
	return 0;
}
