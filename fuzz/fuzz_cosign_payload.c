/*
 * Fuzz target: what a cosign signature manifest brings from a registry. Input: a first line
 * (the signature annotation's base64 value; an empty line means absent), a second line
 * selecting what the rest is ("payload" or "manifest"), then the bytes: a simple signing
 * payload for pw_cosign_layer_parse (then checked against a fixed key, as verification
 * does), or a signature manifest for pw_oci_manifest_parse and its layer annotations.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/sigstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\n"
	"OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==\n"
	"-----END PUBLIC KEY-----\n";

static const uint8_t *line(const uint8_t *p, const uint8_t *end, char *out, size_t n)
{
	size_t i = 0;
	while (p < end && *p != '\n') {
		if (i + 1 < n)
			out[i++] = (char)*p;
		p++;
	}
	out[i] = 0;
	return p < end ? p + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pw_verify_config *cfg;
	char sig[8192], what[16];
	const uint8_t *end = data + size, *p = line(data, end, sig, sizeof sig);
	p = line(p, end, what, sizeof what);
	if (!cfg) {
		const char *keys[] = { key_pem };
		pw_oci_annotation ann[] = { { "env", "prod" } };
		if (pw_verify_config_pubkeys(&cfg, keys, 1, ann, 1) < 0)
			abort();
	}
	if (!strcmp(what, "manifest")) {
		pw_oci_manifest *m = NULL;
		if (pw_oci_manifest_parse(&m, p, (size_t)(end - p), PW_OCI_MT_MANIFEST) == 0) {
			for (size_t i = 0; i < m->nlayers; i++)
				for (size_t j = 0; j < m->layers[i].nannotations; j++)
					(void)strcmp(m->layers[i].annotations[j].key, PW_COSIGN_SIGNATURE_ANNOTATION);
			pw_oci_manifest_free(m);
		}
		return 0;
	}
	pw_cosign_layer l;
	if (pw_cosign_layer_parse(&l, p, (size_t)(end - p), sig[0] ? sig : NULL) == 0) {
		pw_cosign_sigs s = { .image = NULL, .layers = &l, .nlayers = 1 };
		memcpy(s.digest, l.manifest_digest, sizeof s.digest);
		(void)pw_cosign_layer_satisfies(&l, &cfg->all_of[0]);
		(void)pw_cosign_check(&s, cfg);
		pw_cosign_layer_clear(&l);
	}
	return 0;
}
