/*
 * Fuzz target: policy references (pw_oci_ref_parse and what callers do with a parsed
 * reference). Input: the reference text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	pw_oci_ref *r = NULL, *r2 = NULL;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (pw_oci_ref_parse(&r, s) == 0) {
		char *str = pw_oci_ref_str(r);
		/* a printed registry reference parses back to the same thing */
		if (str && r->scheme == PW_OCI_REGISTRY) {
			if (pw_oci_ref_parse(&r2, str) != 0 || strcmp(r2->host, r->host) || strcmp(r2->repo, r->repo))
				abort();
			pw_oci_ref_free(r2);
		}
		free(str);
		(void)pw_oci_ref_is_mutable(r);
		if (pw_oci_ref_with(&r2, r, "t", NULL) == 0)
			pw_oci_ref_free(r2);
		pw_oci_ref_free(r);
	}
	free(s);
	return 0;
}
