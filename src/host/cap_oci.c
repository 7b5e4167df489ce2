/*
 * The oci family of host capabilities (Kubewarden's callback_handler/oci.rs and
 * policy-fetcher's registry/mod.rs): oci/v1/manifest_digest, oci/v1/oci_manifest and
 * oci/v1/oci_manifest_config, through Prewarm's OCI client (credentials, sources.yml,
 * TLS: the same settings as policy fetches, pw_host_env).
 *
 * Payload: a JSON string, an image reference; a short one is expanded as Docker does
 * ("busybox" -> docker.io/library/busybox:latest). Answers (policy-sdk-rust oci.rs):
 * - manifest_digest: {"digest":"sha256:..."}: the registry's Docker-Content-Digest of a
 *   HEAD, or the sha256 of the manifest when the registry sends none (oci-client's
 *   fetch_manifest_digest); an index's own digest, no platform is chosen;
 * - oci_manifest: the manifest or the index as oci-client serialises it (OciManifest):
 *   its fields in oci-client's order, unknown fields dropped, null ones omitted,
 *   annotations sorted by key;
 * - oci_manifest_config: {"manifest":..., "digest":..., "config":...}: for an index, the
 *   entry of this host's platform (linux and this machine's architecture, oci-client's
 *   current_platform_resolver) is fetched; digest is that image manifest's; config is the
 *   config blob's JSON with its keys sorted (serde_json's Value without preserve_order).
 * Successful answers are cached 60 s per image string, as Kubewarden does, in bounded
 * caches (hostenv.c).
 */
#include <stdlib.h>
#include <string.h>

#include "host/hostcap.h"

/* oci-client's Os::default() and Arch::default() (Go's GOOS / GOARCH names). */
#define HOST_OS "linux"
#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__i386__)
#define HOST_ARCH "386"
#elif defined(__arm__)
#define HOST_ARCH "arm"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#else
#define HOST_ARCH "unknown"
#endif

/* ---- oci-client's serialisation of manifests ------------------------------------------ */

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define U8_MAX_SCHEMA 255
#define I64_MAX_SIZE ((json_int_t)0x7fffffffffffffffLL)

/* oci-client's structs as field lists, in their serialisation order. */
typedef enum field_kind {
	F_STR,          /* a required string */
	F_OPT_STR,      /* Option<String> */
	F_OPT_STRS,     /* Option<Vec<String>> */
	F_U8,           /* schemaVersion */
	F_SIZE,         /* i64 */
	F_ANNOTATIONS,  /* Option<BTreeMap<String, String>> */
	F_PLATFORM,     /* Option<Platform> */
	F_DESC,         /* OciDescriptor */
	F_OPT_DESC,     /* Option<OciDescriptor> */
	F_DESCS,        /* Vec<OciDescriptor> */
	F_ENTRIES,      /* Vec<ImageIndexEntry> */
} field_kind;

typedef struct field {
	const char *key;
	field_kind kind;
} field;

static const field platform_fields[] = {
	{ "architecture", F_STR }, { "os", F_STR }, { "os.version", F_OPT_STR }, { "os.features", F_OPT_STRS },
	{ "variant", F_OPT_STR }, { "features", F_OPT_STRS }, { NULL, F_STR },
};
static const field descriptor_fields[] = {
	{ "mediaType", F_STR }, { "digest", F_STR }, { "size", F_SIZE }, { "urls", F_OPT_STRS },
	{ "annotations", F_ANNOTATIONS }, { "artifactType", F_OPT_STR }, { NULL, F_STR },
};
static const field entry_fields[] = {
	{ "mediaType", F_STR }, { "digest", F_STR }, { "size", F_SIZE }, { "platform", F_PLATFORM },
	{ "annotations", F_ANNOTATIONS }, { "artifactType", F_OPT_STR }, { NULL, F_STR },
};
static const field manifest_fields[] = {
	{ "schemaVersion", F_U8 }, { "mediaType", F_OPT_STR }, { "config", F_DESC }, { "layers", F_DESCS },
	{ "subject", F_OPT_DESC }, { "artifactType", F_OPT_STR }, { "annotations", F_ANNOTATIONS }, { NULL, F_STR },
};
static const field index_fields[] = {
	{ "schemaVersion", F_U8 }, { "mediaType", F_OPT_STR }, { "manifests", F_ENTRIES },
	{ "artifactType", F_OPT_STR }, { "annotations", F_ANNOTATIONS }, { NULL, F_STR },
};

static json_t *ser_struct(const json_t *src, const field *fields, const char **why);

static json_t *ser_list(const json_t *a, const field *fields)
{
	json_t *out = json_array();
	size_t i;
	json_t *d;
	const char *ignored;
	json_array_foreach(a, i, d) {
		json_t *s = ser_struct(d, fields, &ignored);
		if (!s || json_array_append_new(out, s) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* The serialised value of one field, NULL when it is invalid; *skip when it is absent
 * and optional. */
static json_t *ser_field(const json_t *v, field_kind kind, bool *skip)
{
	*skip = false;
	bool absent = !v || json_is_null(v);
	switch (kind) {
	case F_STR:
		return json_is_string(v) ? json_incref((json_t *)v) : NULL;
	case F_U8:
	case F_SIZE:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > (kind == F_U8 ? U8_MAX_SCHEMA : I64_MAX_SIZE))
			return NULL;
		return json_incref((json_t *)v);
	case F_DESC:
		return ser_struct(v, descriptor_fields, &(const char *){ NULL });
	case F_DESCS:
	case F_ENTRIES:
		return json_is_array(v) ? ser_list(v, kind == F_DESCS ? descriptor_fields : entry_fields) : NULL;
	default:
		break;
	}
	if (absent) {
		*skip = true;
		return NULL;
	}
	switch (kind) {
	case F_OPT_STR:
		return json_is_string(v) ? json_incref((json_t *)v) : NULL;
	case F_OPT_STRS: {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			return NULL;
		json_array_foreach(v, i, e) if (!json_is_string(e)) return NULL;
		return json_incref((json_t *)v);
	}
	case F_PLATFORM:
		return ser_struct(v, platform_fields, &(const char *){ NULL });
	case F_OPT_DESC:
		return ser_struct(v, descriptor_fields, &(const char *){ NULL });
	default:  /* F_ANNOTATIONS: keys in order */
		break;
	}
	if (!json_is_object(v))
		return NULL;
	size_t n = json_object_size(v), k = 0;
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	json_t *out = keys ? json_object() : NULL;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val) {
		if (!json_is_string(val) || !out) {
			json_decref(out);
			free(keys);
			return NULL;
		}
		keys[k++] = key;
	}
	qsort(keys, n, sizeof *keys, key_cmp);
	for (size_t i = 0; i < n; i++)
		json_object_set(out, keys[i], json_object_get(v, keys[i]));
	free(keys);
	return out;
}

/* The struct `fields` describes, from src: a new object, or NULL with *why naming the first
 * field that is missing or has the wrong type. */
static json_t *ser_struct(const json_t *src, const field *fields, const char **why)
{
	if (!json_is_object(src)) {
		*why = "descriptor";
		return NULL;
	}
	json_t *o = json_object();
	for (const field *f = fields; o && f->key; f++) {
		bool skip;
		json_t *v = ser_field(json_object_get(src, f->key), f->kind, &skip);
		if (skip)
			continue;
		if (!v || json_object_set_new(o, f->key, v) < 0) {
			*why = f->key;
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *pw_hostcap_oci_manifest_json(const uint8_t *body, size_t len, bool *is_index, char *why_out, size_t n)
{
	json_error_t e;
	json_t *m = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &e);
	const char *why = NULL;
	json_t *out = NULL;
	*is_index = false;
	if (!json_is_object(m)) {
		snprintf(why_out, n, "the manifest is not a JSON object%s%s", m ? "" : ": ", m ? "" : e.text);
		json_decref(m);
		return NULL;
	}
	/* serde's untagged OciManifest: an image manifest if it reads as one, else an index */
	out = ser_struct(m, manifest_fields, &why);
	if (!out && json_object_get(m, "manifests")) {
		*is_index = true;
		out = ser_struct(m, index_fields, &why);
	}
	if (!out)
		snprintf(why_out, n, "the manifest is neither an image manifest nor an index (field \"%s\" is "
		         "missing or has the wrong type)", why ? why : "?");
	json_decref(m);
	return out;
}

/* ---- the operations --------------------------------------------------------------------- */

/* The image reference of the payload, fully resolved, or NULL with the host error set. */
static pw_oci_ref *payload_ref(const pw_hostcap_call *c, pw_buf *answer, int *rc)
{
	const char *image = pw_hostcap_payload_string(c, answer);
	if (!image) {
		*rc = PW_EINVALID;
		return NULL;
	}
	if (!c->env || !c->env->oci) {
		*rc = pw_hostcap_fail(answer, "%s: no registry client in this host", image);
		return NULL;
	}
	pw_oci_ref *r = NULL;
	if (strlen(image) != json_string_length(c->json) || pw_oci_ref_parse(&r, image) < 0) {
		*rc = pw_hostcap_fail(answer, "%s", pw_error_last());
		return NULL;
	}
	if (r->scheme != PW_OCI_REGISTRY) {
		pw_oci_ref_free(r);
		*rc = pw_hostcap_fail(answer, "%s: not an image reference in a registry", image);
		return NULL;
	}
	return r;
}

/* Answers from `cache` when it holds the image, else runs fetch and caches a success. */
static int cached(const pw_hostcap_call *c, pw_hostcap_cache *cache, pw_buf *answer,
                  int (*fetch)(const pw_hostcap_call *c, pw_oci_ref *r, pw_buf *answer))
{
	const char *image = json_string_value(c->json);
	if (image && cache && pw_hostcap_cache_get(cache, image, answer) == 0) {
		pw_debug(c->call->log_tag, "host call %s/%s %s: cached answer", c->ns, c->op, image);
		return 0;
	}
	int rc = 0;
	pw_oci_ref *r = payload_ref(c, answer, &rc);
	if (!r)
		return rc;
	size_t before = answer->len;
	rc = fetch(c, r, answer);
	pw_oci_ref_free(r);
	if (rc == 0 && cache)
		pw_hostcap_cache_put(cache, image, answer->data + before, answer->len - before);
	return rc;
}

static int answer_new(pw_buf *answer, json_t *v)
{
	int rc = pw_hostcap_answer_json(answer, v);
	json_decref(v);
	return rc;
}

static int fetch_digest(const pw_hostcap_call *c, pw_oci_ref *r, pw_buf *answer)
{
	char digest[PW_OCI_DIGEST_LEN] = "";
	int rc = pw_oci_manifest_head(c->env->oci, r, digest);
	if (rc == 0 && !pw_oci_digest_valid(digest)) {
		/* no Docker-Content-Digest: the digest of the manifest itself */
		pw_buf body = PW_BUF_INIT;
		rc = pw_oci_manifest_get(c->env->oci, r, &body, NULL, digest);
		pw_buf_free(&body);
	} else if (rc == 0 && r->digest && strcmp(r->digest, digest) != 0) {
		return pw_hostcap_fail(answer, "registry %s: %s/%s: digest mismatch: asked for %s, the registry "
		                       "has %s", r->host, r->host, r->repo, r->digest, digest);
	}
	if (rc < 0)
		return pw_hostcap_fail(answer, "%s", pw_error_last());
	return answer_new(answer, json_pack("{s:s}", "digest", digest));
}

/* Fetches and serialises the manifest r names. */
static int get_manifest(const pw_hostcap_call *c, pw_oci_ref *r, json_t **out, bool *is_index,
                        char digest[PW_OCI_DIGEST_LEN], pw_buf *answer)
{
	pw_buf body = PW_BUF_INIT;
	int rc = pw_oci_manifest_get(c->env->oci, r, &body, NULL, digest);
	if (rc < 0) {
		pw_buf_free(&body);
		return pw_hostcap_fail(answer, "%s", pw_error_last());
	}
	char why[256];
	*out = pw_hostcap_oci_manifest_json(body.data ? body.data : (const uint8_t *)"", body.len, is_index,
	                                    why, sizeof why);
	pw_buf_free(&body);
	if (!*out)
		return pw_hostcap_fail(answer, "registry %s: %s/%s: %s", r->host, r->host, r->repo, why);
	return 0;
}

static int fetch_manifest(const pw_hostcap_call *c, pw_oci_ref *r, pw_buf *answer)
{
	char digest[PW_OCI_DIGEST_LEN];
	json_t *m;
	bool is_index;
	int rc = get_manifest(c, r, &m, &is_index, digest, answer);
	return rc < 0 ? rc : answer_new(answer, m);
}

/* The digest of the index entry for this host's platform, or NULL. */
static const char *platform_entry(const json_t *index)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(index, "manifests"), i, e) {
		json_t *p = json_object_get(e, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *arch = json_string_value(json_object_get(p, "architecture"));
		if (os && arch && !strcmp(os, HOST_OS) && !strcmp(arch, HOST_ARCH))
			return json_string_value(json_object_get(e, "digest"));
	}
	return NULL;
}

static int fetch_manifest_config(const pw_hostcap_call *c, pw_oci_ref *r, pw_buf *answer)
{
	char digest[PW_OCI_DIGEST_LEN];
	json_t *m;
	bool is_index;
	int rc = get_manifest(c, r, &m, &is_index, digest, answer);
	if (rc < 0)
		return rc;
	if (is_index) {
		const char *d = platform_entry(m);
		pw_oci_ref *er = NULL;
		if (!d || pw_oci_ref_with(&er, r, NULL, d) < 0) {
			json_decref(m);
			return pw_hostcap_fail(answer, "registry %s: %s/%s: no entry found in image index manifest matching "
			                       "this host's platform (%s/%s)", r->host, r->host, r->repo, HOST_OS, HOST_ARCH);
		}
		json_decref(m);
		rc = get_manifest(c, er, &m, &is_index, digest, answer);
		pw_oci_ref_free(er);
		if (rc < 0)
			return rc;
		if (is_index) {
			json_decref(m);
			return pw_hostcap_fail(answer, "registry %s: %s/%s: received an image index instead of an image "
			                       "manifest", r->host, r->host, r->repo);
		}
	}
	const char *cfg_digest = json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
	pw_buf blob = PW_BUF_INIT;
	rc = pw_oci_blob_get(c->env->oci, r, cfg_digest, 0, &blob);
	json_t *config = NULL;
	if (rc == 0) {
		json_error_t e;
		config = json_loadb(blob.data ? (const char *)blob.data : "", blob.len, JSON_DECODE_ANY, &e);
		if (!config)
			pw_error_set(PW_EINVALID, "registry %s: %s/%s: the config blob %s is not JSON: %s", r->host, r->host,
			             r->repo, cfg_digest, e.text);
	}
	pw_buf_free(&blob);
	if (!config) {
		json_decref(m);
		return pw_hostcap_fail(answer, "%s", pw_error_last());
	}
	json_t *o = json_pack("{s:o,s:s}", "manifest", m, "digest", digest);
	char *cfg = json_dumps(config, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	json_decref(config);
	char *head = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	/* {"manifest":...,"digest":"..."} + ,"config":<sorted> + } */
	if (!cfg || !head || pw_buf_append(answer, head, strlen(head) - 1) < 0 ||
	    pw_buf_printf(answer, ",\"config\":%s}", cfg) < 0)
		rc = pw_hostcap_fail(answer, "host out of memory");
	free(cfg);
	free(head);
	return rc;
}

static int manifest_digest(const pw_hostcap_call *c, pw_buf *answer)
{
	return cached(c, c->env ? c->env->oci_digest : NULL, answer, fetch_digest);
}

static int oci_manifest(const pw_hostcap_call *c, pw_buf *answer)
{
	return cached(c, c->env ? c->env->oci_manifest : NULL, answer, fetch_manifest);
}

static int oci_manifest_config(const pw_hostcap_call *c, pw_buf *answer)
{
	return cached(c, c->env ? c->env->oci_config : NULL, answer, fetch_manifest_config);
}

const pw_hostcap_op pw_hostcap_oci_ops[] = {
	{ "oci", "v1/manifest_digest", manifest_digest },
	{ "oci", "v1/oci_manifest", oci_manifest },
	{ "oci", "v1/oci_manifest_config", oci_manifest_config },
	{ NULL, NULL, NULL },
};
