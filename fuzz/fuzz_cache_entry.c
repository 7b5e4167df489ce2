/*
 * Fuzz target for the cache entry parser: a local cache directory may sit on a volume
 * other pods write, so its files are outside input. Feeds the bytes to the strict entry
 * decoder and the meta JSON parser; whatever decodes must re-encode to an entry that
 * decodes to the same record (round trip), and verification must reject or accept without
 * crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_cache_entry e, again;
	pw_cache_meta m;
	pw_buf enc = PW_BUF_INIT;

	if (pw_cache_entry_decode(&e, data, size) == 0) {
		(void)pw_cache_verify_entry(NULL, &e);
		if (pw_cache_entry_encode_header(&e.meta, &enc) == 0 &&
		    pw_buf_append(&enc, e.artifact.data, e.artifact.len) == 0) {
			if (pw_cache_entry_decode(&again, enc.data, enc.len) != 0)
				abort();
			if (strcmp(again.meta.artifact_sha256, e.meta.artifact_sha256) ||
			    strcmp(again.meta.key.engine_hash, e.meta.key.engine_hash) ||
			    again.meta.artifact_size != e.meta.artifact_size ||
			    again.artifact.len != e.artifact.len)
				abort();
			pw_cache_entry_free(&again);
		}
		pw_buf_free(&enc);
		pw_cache_entry_free(&e);
	}
	/* the same bytes as bare meta JSON */
	(void)pw_cache_meta_from_json(&m, (const char *)data, size);
	return 0;
}
