/*
 * Fuzz target: a policy's oci/v1/verify or oci/v2/verify request (pw_cosign_host_request:
 * serde's externally tagged v1 and internally tagged v2 JSON, PEM keys parsed by OpenSSL,
 * annotations, keyless types refused). Input: a first line "v1" or "v2", then the payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/sigstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_verify_config *cfg = NULL;
	char *image = NULL;
	const char *op = size >= 3 && !memcmp(data, "v2\n", 3) ? "v2/verify" : "v1/verify";
	size_t skip = size >= 3 && data[2] == '\n' ? 3 : 0;
	if (pw_cosign_host_request(&cfg, &image, op, data + skip, size - skip) == 0) {
		pw_verify_config_free(cfg);
		free(image);
	}
	return 0;
}
