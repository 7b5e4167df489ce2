/*
 * cosign's signing side for tests (see cosign_helper.h): payload text and the signature
 * manifest, pushed with the project's OCI client (blob push + manifest PUT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cosign_helper.h"
#include "prewarm/sigstore.h"

char *test_cosign_payload(const char *docker_ref, const char *digest, const char *optional_json)
{
	char *out = NULL;
	if (asprintf(&out, "{\"critical\":{\"identity\":{\"docker-reference\":\"%s\"},\"image\":{\"docker-manifest-digest\":"
	             "\"%s\"},\"type\":\"%s\"},\"optional\":%s}", docker_ref, digest, PW_COSIGN_CRITICAL_TYPE,
	             optional_json ? optional_json : "null") < 0)
		return NULL;
	return out;
}

int test_cosign_attach(pw_oci_client *c, const char *image_ref, const char *digest,
                       const test_sig_layer *layers, size_t n)
{
	static const char cfg[] = "{\"architecture\":\"\",\"config\":{},\"created\":\"0001-01-01T00:00:00Z\","
	                          "\"history\":[{\"created\":\"0001-01-01T00:00:00Z\"}],\"os\":\"\",\"rootfs\":"
	                          "{\"type\":\"layers\",\"diff_ids\":[]}}";
	pw_oci_ref *r = NULL, *sig = NULL;
	char tag[80], dg[PW_OCI_DIGEST_LEN], hex[PW_SHA256_HEX_LEN + 1];
	json_t *m = NULL, *ls = json_array();
	char *body = NULL;
	int rc;
	if ((rc = pw_oci_ref_parse(&r, image_ref)) < 0 || (rc = pw_cosign_signature_tag(tag, digest)) < 0 ||
	    (rc = pw_oci_ref_with(&sig, r, tag, NULL)) < 0)
		goto out;
	pw_sha256_hex(cfg, strlen(cfg), hex);
	snprintf(dg, sizeof dg, "sha256:%s", hex);
	if ((rc = pw_oci_blob_push(c, sig, cfg, strlen(cfg), dg)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		pw_sha256_hex(layers[i].payload, layers[i].len, hex);
		snprintf(dg, sizeof dg, "sha256:%s", hex);
		if ((rc = pw_oci_blob_push(c, sig, layers[i].payload, layers[i].len, dg)) < 0)
			goto out;
		json_t *l = json_pack("{s:s, s:s, s:I}", "mediaType",
		                      layers[i].media_type ? layers[i].media_type : PW_COSIGN_MT_SIMPLESIGNING,
		                      "digest", dg, "size", (json_int_t)layers[i].len);
		if (layers[i].sig_b64)
			json_object_set_new(l, "annotations", json_pack("{s:s}", PW_COSIGN_SIGNATURE_ANNOTATION, layers[i].sig_b64));
		json_array_append_new(ls, l);
	}
	pw_sha256_hex(cfg, strlen(cfg), hex);
	snprintf(dg, sizeof dg, "sha256:%s", hex);
	m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", PW_OCI_MT_MANIFEST,
	              "config", "mediaType", "application/vnd.oci.image.config.v1+json", "digest", dg, "size",
	              (json_int_t)strlen(cfg), "layers", ls);
	body = m ? json_dumps(m, JSON_COMPACT) : NULL;
	if (!body) {
		rc = pw_error_set(PW_ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_oci_manifest_put(c, sig, PW_OCI_MT_MANIFEST, body, strlen(body), NULL);
out:
	free(body);
	json_decref(m);
	json_decref(ls);
	pw_oci_ref_free(sig);
	pw_oci_ref_free(r);
	return rc;
}
