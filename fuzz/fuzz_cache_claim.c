/*
 * Fuzz target for the claim parser: claims of single flight across processes are read from
 * lease files on a shared volume and from registry annotations, both outside input. Whatever
 * parses must re-encode to JSON that parses to the same claim (round trip), and the judgment
 * of a waiter must give a verdict without crashing whatever the numbers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_cache_claim c, again;
	pw_cache_claim_watch w;
	pw_buf enc = PW_BUF_INIT;

	if (pw_cache_claim_from_json(&c, (const char *)data, size) != 0)
		return 0;
	if (pw_cache_claim_to_json(&c, &enc) != 0 ||
	    pw_cache_claim_from_json(&again, (const char *)enc.data, enc.len) != 0)
		abort();
	if (strcmp(c.nonce, again.nonce) || strcmp(c.host, again.host) || c.pid != again.pid ||
	    c.seq != again.seq || c.released != again.released || c.pidns != again.pidns)
		abort();
	pw_buf_free(&enc);
	memset(&w, 0, sizeof w);
	if ((unsigned)pw_cache_claim_judge(&w, &c, 0, 0, 60, 30) > PW_CLAIM_NOT_RENEWED ||
	    (unsigned)pw_cache_claim_judge(&w, &c, 1e9, 1e12, 0, 0) > PW_CLAIM_NOT_RENEWED)
		abort();
	return 0;
}
