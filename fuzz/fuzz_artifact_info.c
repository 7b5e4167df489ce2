/*
 * Fuzz target for pw_artifact_read_info: the ELF section walk that reads an
 * artifact's embedded description before anything is loaded (artifacts come
 * from caches and registries: outside input). Any input must give 0 with a
 * well-formed description or PW_EINVALID, never a crash or an out-of-bounds read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so a sanitizer sees any read past the end */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	pw_artifact_info info;
	int rc = pw_artifact_read_info(copy, size, &info);
	if (rc == 0) {
		if (!pw_is_sha256_hex(info.engine_hash) || !pw_is_sha256_hex(info.wasm_sha256))
			abort();
	} else if (rc != PW_EINVALID) {
		abort();
	}
	free(copy);
	return 0;
}
