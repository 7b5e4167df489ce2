/*
 * Publishing a policy module the way Kubewarden tooling does: the wasm bytes as one layer
 * of type application/vnd.wasm.content.layer.v1+wasm, a config blob of type
 * application/vnd.wasm.config.v1+json, and an OCI image manifest carrying the
 * annotations, PUT under the reference's tag. Blobs the registry already has are not sent
 * again (HEAD first); uploads are monolithic (POST for a session, PUT with the digest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/internal.h"

int pw_oci_push_wasm(pw_oci_client *c, const char *ref, const uint8_t *wasm, size_t len,
                     const pw_oci_annotation *annotations, size_t nannotations,
                     char manifest_digest[PW_OCI_DIGEST_LEN])
{
	pw_oci_ref *r = NULL;
	char layer_dg[PW_OCI_DIGEST_LEN], cfg_dg[PW_OCI_DIGEST_LEN];
	const char *cfg = "{}";
	json_t *m = NULL, *ann = NULL;
	char *body = NULL;
	int rc;

	if ((rc = pw_oci_ref_parse(&r, ref)) < 0)
		return rc;
	if (r->scheme != PW_OCI_REGISTRY) {
		rc = pw_error_set(PW_EINVALID, "push %s: only registry references can be pushed to", ref);
		goto out;
	}
	if (!r->tag) {
		rc = pw_error_set(PW_EINVALID, "push %s: the reference needs a tag", ref);
		goto out;
	}
	if (len < 8 || memcmp(wasm, "\0asm", 4)) {
		rc = pw_error_set(PW_EINVALID, "push %s: the module is not WebAssembly (no \\0asm magic)", ref);
		goto out;
	}
	pw_oci__digest_of(wasm, len, layer_dg);
	pw_oci__digest_of(cfg, strlen(cfg), cfg_dg);
	if ((rc = pw_oci_blob_push(c, r, cfg, strlen(cfg), cfg_dg)) < 0 ||
	    (rc = pw_oci_blob_push(c, r, wasm, len, layer_dg)) < 0)
		goto out;
	ann = json_object();
	for (size_t i = 0; i < nannotations; i++)
		json_object_set_new(ann, annotations[i].key, json_string(annotations[i].value));
	m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}",
	              "schemaVersion", 2, "mediaType", PW_OCI_MT_MANIFEST,
	              "config", "mediaType", PW_OCI_MT_WASM_CONFIG, "digest", cfg_dg, "size", (json_int_t)strlen(cfg),
	              "layers", "mediaType", PW_OCI_MT_WASM_LAYER, "digest", layer_dg, "size", (json_int_t)len);
	if (!m) {
		rc = pw_error_set(PW_ENOMEM, "building the manifest failed");
		goto out;
	}
	if (json_object_size(ann))
		json_object_set(m, "annotations", ann);
	body = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	if (!body) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_oci_manifest_put(c, r, PW_OCI_MT_MANIFEST, body, strlen(body), manifest_digest);
	if (rc == 0)
		pw_info("oci", "pushed %s/%s:%s (wasm %s, %zu bytes)", r->host, r->repo, r->tag, layer_dg, len);
out:
	free(body);
	json_decref(m);
	json_decref(ann);
	pw_oci_ref_free(r);
	return rc;
}
