/*
 * Private helpers shared by the cache's source files (not part of the public contract).
 */
#ifndef PW_CACHE_INT_H
#define PW_CACHE_INT_H

#include "prewarm/cache.h"

/*
 * Checks the fixed 24-byte entry header of a file of `file_len` bytes and gives the meta
 * and artifact lengths. PW_EINVALID naming what is wrong (magic, format, truncation).
 */
int pw_cache_entry_check_header(const uint8_t hdr[PW_CACHE_ENTRY_HEADER_LEN], uint64_t file_len,
                                uint32_t *meta_len, uint64_t *art_len);

#endif
