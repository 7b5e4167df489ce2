/*
 * Cache keys, the entry record (pw_cache_meta) as JSON, the on-disk entry format of the
 * local backend, and entry signatures.
 *
 * Everything here parses bytes that come from outside the process (a cache directory on a
 * shared PersistentVolume, registry annotations), so every length is checked before use,
 * every field is type-checked, and a bad entry is PW_EINVALID with a message naming the
 * field; it never crashes (fuzz/fuzz_cache_entry.c). The format is documented in
 * include/prewarm/cache.h and docs/cache.md.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "prewarm/cache.h"

void pw_cache_key_str(const pw_cache_key *k, char out[PW_CACHE_KEY_STR_LEN + 1])
{
	snprintf(out, PW_CACHE_KEY_STR_LEN + 1, "%s-%s", k->engine_hash, k->wasm_sha256);
}

int pw_cache_key_parse(pw_cache_key *out, const char *s)
{
	if (!s || strlen(s) != PW_CACHE_KEY_STR_LEN || s[PW_SHA256_HEX_LEN] != '-')
		return pw_error_set(PW_EINVALID, "invalid cache key '%.140s' (want <engine sha256>-<wasm sha256>)",
		                    s ? s : "");
	memcpy(out->engine_hash, s, PW_SHA256_HEX_LEN);
	out->engine_hash[PW_SHA256_HEX_LEN] = '\0';
	memcpy(out->wasm_sha256, s + PW_SHA256_HEX_LEN + 1, PW_SHA256_HEX_LEN);
	out->wasm_sha256[PW_SHA256_HEX_LEN] = '\0';
	if (!pw_is_sha256_hex(out->engine_hash) || !pw_is_sha256_hex(out->wasm_sha256))
		return pw_error_set(PW_EINVALID, "invalid cache key '%s' (not lower-case hex)", s);
	return 0;
}

void pw_cache_entry_free(pw_cache_entry *e)
{
	if (e)
		pw_buf_free(&e->artifact);
}

/* ---- meta <-> JSON ------------------------------------------------------------------- */

int pw_cache_meta_to_json(const pw_cache_meta *m, pw_buf *out)
{
	json_t *o = json_object();
	char *text;
	int rc;

	if (!o)
		return pw_error_set(PW_ENOMEM, "out of memory building cache meta");
	json_object_set_new(o, "format", json_integer(PW_CACHE_ENTRY_FORMAT));
	json_object_set_new(o, "engine_hash", json_string(m->key.engine_hash));
	json_object_set_new(o, "wasm_sha256", json_string(m->key.wasm_sha256));
	json_object_set_new(o, "artifact_sha256", json_string(m->artifact_sha256));
	json_object_set_new(o, "artifact_size", json_integer((json_int_t)m->artifact_size));
	json_object_set_new(o, "compile_seconds", json_real(isfinite(m->compile_seconds) ? m->compile_seconds : 0));
	json_object_set_new(o, "signature", json_string(m->signature));
	json_object_set_new(o, "created", json_real(isfinite(m->created) ? m->created : 0));
	if (m->subject_digest[0]) {
		json_t *s = json_object();
		json_object_set_new(s, "digest", json_string(m->subject_digest));
		json_object_set_new(s, "mediaType", json_string(m->subject_media_type));
		json_object_set_new(s, "size", json_integer((json_int_t)m->subject_size));
		json_object_set_new(o, "subject", s);
	}
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return pw_error_set(PW_ENOMEM, "out of memory encoding cache meta");
	rc = pw_buf_puts(out, text);
	free(text);
	return rc;
}

/* The record readers below, shared with claim.c: `what` names the record in messages
 * ("cache meta", "cache claim"). */
int pw_cache__json_hash(void *obj, const char *what, const char *name, char out[PW_SHA256_HEX_LEN + 1],
                        bool allow_empty)
{
	json_t *v = json_object_get(obj, name);
	const char *s;

	if (!v)
		return allow_empty ? (out[0] = '\0', 0)
		                   : pw_error_set(PW_EINVALID, "%s: missing \"%s\"", what, name);
	if (!json_is_string(v))
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is not a string", what, name);
	s = json_string_value(v);
	if (allow_empty && !*s) {
		out[0] = '\0';
		return 0;
	}
	if (strlen(s) != json_string_length(v) || !pw_is_sha256_hex(s))
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is not 64 lower-case hex digits", what, name);
	memcpy(out, s, PW_SHA256_HEX_LEN + 1);
	return 0;
}

int pw_cache__json_u64(void *obj, const char *what, const char *name, uint64_t *out, bool required)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		*out = 0;
		return required ? pw_error_set(PW_EINVALID, "%s: missing \"%s\"", what, name) : 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is not a non-negative integer", what, name);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int pw_cache__json_seconds(void *obj, const char *what, const char *name, double *out)
{
	json_t *v = json_object_get(obj, name);

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is not a non-negative number", what, name);
	*out = json_number_value(v);
	return 0;
}

int pw_cache__json_text(void *obj, const char *what, const char *name, char *out, size_t n)
{
	json_t *v = json_object_get(obj, name);
	const char *s;

	out[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v))
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is not a string", what, name);
	s = json_string_value(v);
	if (json_string_length(v) >= n || strlen(s) != json_string_length(v))
		return pw_error_set(PW_EINVALID, "%s: \"%s\" is too long or holds NUL", what, name);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return pw_error_set(PW_EINVALID, "%s: \"%s\" holds a control character", what, name);
	memcpy(out, s, json_string_length(v) + 1);
	return 0;
}

#define META "cache meta"
#define get_hash(o, name, out, empty) pw_cache__json_hash(o, META, name, out, empty)
#define get_u64(o, name, out, req) pw_cache__json_u64(o, META, name, out, req)
#define get_seconds(o, name, out) pw_cache__json_seconds(o, META, name, out)

int pw_cache_meta_from_json(pw_cache_meta *out, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *o, *v;
	uint64_t format;
	int rc;

	memset(out, 0, sizeof *out);
	if (len > PW_CACHE_META_MAX)
		return pw_error_set(PW_EINVALID, "cache meta: %zu bytes (limit %u)", len, PW_CACHE_META_MAX);
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return pw_error_set(PW_EINVALID, "cache meta: invalid JSON at line %d column %d: %s",
		                    jerr.line, jerr.column, jerr.text);
	if (!json_is_object(o)) {
		rc = pw_error_set(PW_EINVALID, "cache meta: not a JSON object");
		goto out;
	}
	if ((rc = get_u64(o, "format", &format, true)) < 0)
		goto out;
	if (format != PW_CACHE_ENTRY_FORMAT) {
		rc = pw_error_set(PW_EINVALID, "cache meta: format %llu (this prewarm reads %u)",
		                  (unsigned long long)format, PW_CACHE_ENTRY_FORMAT);
		goto out;
	}
	if ((rc = get_hash(o, "engine_hash", out->key.engine_hash, false)) < 0 ||
	    (rc = get_hash(o, "wasm_sha256", out->key.wasm_sha256, false)) < 0 ||
	    (rc = get_hash(o, "artifact_sha256", out->artifact_sha256, false)) < 0 ||
	    (rc = get_hash(o, "signature", out->signature, true)) < 0 ||
	    (rc = get_u64(o, "artifact_size", &out->artifact_size, true)) < 0 ||
	    (rc = get_seconds(o, "compile_seconds", &out->compile_seconds)) < 0 ||
	    (rc = get_seconds(o, "created", &out->created)) < 0)
		goto out;
	v = json_object_get(o, "subject");
	if (v) {
		if (!json_is_object(v)) {
			rc = pw_error_set(PW_EINVALID, "cache meta: \"subject\" is not an object");
			goto out;
		}
		if ((rc = pw_cache__json_text(v, META " subject", "digest", out->subject_digest,
		                              sizeof out->subject_digest)) < 0 ||
		    (rc = pw_cache__json_text(v, META " subject", "mediaType", out->subject_media_type,
		                              sizeof out->subject_media_type)) < 0 ||
		    (rc = get_u64(v, "size", &out->subject_size, false)) < 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(o);
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* ---- the entry file format ----------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int pw_cache_entry_encode_header(const pw_cache_meta *m, pw_buf *out)
{
	pw_buf json = PW_BUF_INIT;
	uint8_t hdr[PW_CACHE_ENTRY_HEADER_LEN];
	int rc;

	if ((rc = pw_cache_meta_to_json(m, &json)) < 0)
		return rc;
	if (json.len > PW_CACHE_META_MAX) {
		pw_buf_free(&json);
		return pw_error_set(PW_EINVALID, "cache meta too large (%zu bytes)", json.len);
	}
	memcpy(hdr, PW_CACHE_ENTRY_MAGIC, 8);
	put_le(hdr + 8, PW_CACHE_ENTRY_FORMAT, 4);
	put_le(hdr + 12, json.len, 4);
	put_le(hdr + 16, m->artifact_size, 8);
	rc = pw_buf_append(out, hdr, sizeof hdr);
	if (rc == 0)
		rc = pw_buf_append(out, json.data, json.len);
	pw_buf_free(&json);
	return rc;
}

int pw_cache_entry_check_header(const uint8_t hdr[PW_CACHE_ENTRY_HEADER_LEN], uint64_t file_len,
                                uint32_t *meta_len, uint64_t *art_len)
{
	uint64_t format, mlen, alen;

	if (file_len < PW_CACHE_ENTRY_HEADER_LEN)
		return pw_error_set(PW_EINVALID, "cache entry truncated: %llu bytes, header needs %u",
		                    (unsigned long long)file_len, PW_CACHE_ENTRY_HEADER_LEN);
	if (memcmp(hdr, PW_CACHE_ENTRY_MAGIC, 8) != 0)
		return pw_error_set(PW_EINVALID, "not a prewarm cache entry (bad magic)");
	format = get_le(hdr + 8, 4);
	mlen = get_le(hdr + 12, 4);
	alen = get_le(hdr + 16, 8);
	if (format != PW_CACHE_ENTRY_FORMAT)
		return pw_error_set(PW_EINVALID, "cache entry format %llu (this prewarm reads %u)",
		                    (unsigned long long)format, PW_CACHE_ENTRY_FORMAT);
	if (mlen > PW_CACHE_META_MAX)
		return pw_error_set(PW_EINVALID, "cache entry meta length %llu over the limit %u",
		                    (unsigned long long)mlen, PW_CACHE_META_MAX);
	if (mlen > file_len - PW_CACHE_ENTRY_HEADER_LEN ||
	    alen != file_len - PW_CACHE_ENTRY_HEADER_LEN - mlen)
		return pw_error_set(PW_EINVALID,
		                    "cache entry size %llu disagrees with its header (meta %llu + artifact %llu bytes): truncated or padded",
		                    (unsigned long long)file_len, (unsigned long long)mlen,
		                    (unsigned long long)alen);
	*meta_len = (uint32_t)mlen;
	*art_len = alen;
	return 0;
}

int pw_cache_entry_decode(pw_cache_entry *out, const uint8_t *data, size_t len)
{
	uint32_t meta_len;
	uint64_t art_len;
	int rc;

	memset(out, 0, sizeof *out);
	if (len < PW_CACHE_ENTRY_HEADER_LEN)
		return pw_error_set(PW_EINVALID, "cache entry truncated: %zu bytes, header needs %u",
		                    len, PW_CACHE_ENTRY_HEADER_LEN);
	if ((rc = pw_cache_entry_check_header(data, len, &meta_len, &art_len)) < 0)
		return rc;
	rc = pw_cache_meta_from_json(&out->meta, (const char *)data + PW_CACHE_ENTRY_HEADER_LEN, meta_len);
	if (rc < 0)
		return rc;
	if (out->meta.artifact_size != art_len) {
		memset(out, 0, sizeof *out);
		return pw_error_set(PW_EINVALID, "cache entry artifact length %llu but meta says %llu",
		                    (unsigned long long)art_len, (unsigned long long)out->meta.artifact_size);
	}
	rc = pw_buf_append(&out->artifact, data + PW_CACHE_ENTRY_HEADER_LEN + meta_len, (size_t)art_len);
	if (rc < 0) {
		pw_cache_entry_free(out);
		memset(out, 0, sizeof *out);
	}
	return rc;
}

void pw_cache_sign(const uint8_t *key, size_t key_len, const pw_cache_meta *m,
                   char out[PW_SHA256_HEX_LEN + 1])
{
	char msg[256];
	int n = snprintf(msg, sizeof msg, "prewarm-artifact-v1\n%s\n%s\n%s\n", m->key.engine_hash,
	                 m->key.wasm_sha256, m->artifact_sha256);
	pw_hmac_sha256_hex(key, key_len, msg, (size_t)n, out);
}
