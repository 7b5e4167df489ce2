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

/*
 * Readers of one field of a record's JSON object (obj is a json_t *): `what` names the
 * record in messages ("cache meta", "cache claim"). A missing field is "" / 0 unless
 * required; a wrong type, a bad hex digest, a negative or non-finite number, text with NUL
 * or control characters or longer than n-1: PW_EINVALID naming the field.
 */
int pw_cache__json_hash(void *obj, const char *what, const char *name, char out[PW_SHA256_HEX_LEN + 1],
                        bool allow_empty);
int pw_cache__json_u64(void *obj, const char *what, const char *name, uint64_t *out, bool required);
int pw_cache__json_seconds(void *obj, const char *what, const char *name, double *out);
int pw_cache__json_text(void *obj, const char *what, const char *name, char *out, size_t n);

/* A fresh claim of this process: a random nonce, host name, pid, boot id, pid namespace,
 * seq 0, deadline = now + ttl. */
void pw_cache__claim_init(pw_cache_claim *mine, double ttl);
/* "host pid N" for logs. */
void pw_cache__claim_describe(const pw_cache_claim *c, char *out, size_t n);
/* For a stored claim that does not parse: a holder with no ttl whose nonce is derived from
 * the bytes seen (so a waiter sees whether they change). */
void pw_cache__claim_unreadable(pw_cache_claim *holder, const void *data, size_t len);

#endif
