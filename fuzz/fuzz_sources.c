/*
 * Fuzz target: sources.yml (pw_oci_sources_parse: YAML or JSON, insecure_sources,
 * source_authorities). Input: the file's text.
 */
#include <stdint.h>
#include <stdlib.h>

#include "prewarm/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_oci_sources *s = NULL;
	pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);  /* unknown keys warn: not interesting here */
	if (pw_oci_sources_parse(&s, (const char *)data, size, "fuzz.yml") == 0) {
		(void)pw_oci_sources_is_insecure(s, "registry.local:5000");
		(void)pw_oci_sources_ca_pem(s, "registry.local:5000");
		pw_oci_sources_free(s);
	}
	return 0;
}
