/*
 * Fuzz target: OCI manifests and indexes (pw_oci_manifest_parse). Input: the manifest
 * body as a registry would send it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_oci_manifest *m = NULL;
	if (pw_oci_manifest_parse(&m, data, size, PW_OCI_MT_MANIFEST) == 0) {
		for (size_t i = 0; i < m->nlayers; i++)
			if (!pw_oci_digest_valid(m->layers[i].digest) || !m->layers[i].media_type)
				abort();
		(void)pw_oci_manifest_annotation(m, "org.opencontainers.image.title");
		pw_oci_manifest_free(m);
	}
	return 0;
}
