/*
 * What cosign does when it signs with a key, done here for the tests with OpenSSL and the
 * project's OCI push code: build a simple signing payload, sign it, and attach signature
 * layers to an image as the manifest under its `sha256-HEX.sig` tag. Shared by the C tests
 * and by tests/sigstore/cosign_tool.c (the same for shell tests, which sign with the
 * openssl command).
 */
#ifndef PW_TEST_COSIGN_HELPER_H
#define PW_TEST_COSIGN_HELPER_H

#include <stddef.h>

#include "prewarm/oci.h"

typedef struct test_sig_layer {
	const char *payload;     /* the bytes that were signed */
	size_t len;
	const char *sig_b64;     /* NULL: no signature annotation */
	const char *media_type;  /* NULL: application/vnd.dev.cosign.simplesigning.v1+json */
} test_sig_layer;

/* cosign's payload for (reference, digest); optional_json is a JSON object text or NULL
 * (then "optional": null). malloc'd. */
char *test_cosign_payload(const char *docker_ref, const char *digest, const char *optional_json);
/* Pushes the layers and the signature manifest of `digest` into image_ref's repository. */
int test_cosign_attach(pw_oci_client *c, const char *image_ref, const char *digest,
                       const test_sig_layer *layers, size_t n);

#endif
