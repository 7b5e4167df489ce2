/*
 * Fuzz target: host-capability payloads, the outside input a policy hands the host
 * (pw_hostcap_run: payload JSON, then each family's decoding and checks). Input: one byte
 * choosing the capability, then the payload. Only capabilities that need no network are
 * chosen (oci runs without a registry client: it decodes, then fails fast; net would
 * resolve names); the last choice feeds the bytes to the oci family's re-serialisation of
 * registry manifests instead. Checks: an answer is JSON, an error has a text.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/hostcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const caps[][2] = {
	{ "crypto", "v1/is_certificate_trusted" },
	{ "oci", "v1/manifest_digest" },
	{ "oci", "v1/oci_manifest" },
	{ "oci", "v1/oci_manifest_config" },
	{ "oci", "v1/verify" },
	{ "oci", "v2/verify" },
	{ "kubernetes", "get_resource" },
	{ "nosuch", "op" },
	{ NULL, NULL },   /* pw_hostcap_oci_manifest_json */
};
#define NCAPS (sizeof caps / sizeof caps[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pw_host_call call;
	static int ready;
	if (!ready) {
		pw_log_configure(PW_LOG_ERROR, PW_LOG_TEXT);
		pw_host_call_init(&call, NULL, "fuzz");
		ready = 1;
	}
	if (size < 1)
		return 0;
	const char *ns = caps[data[0] % NCAPS][0], *op = caps[data[0] % NCAPS][1];
	if (!ns) {
		bool is_index;
		char why[256];
		json_t *m = pw_hostcap_oci_manifest_json(data + 1, size - 1, &is_index, why, sizeof why);
		if (!m && !why[0])
			abort();
		char *t = m ? json_dumps(m, JSON_COMPACT) : NULL;
		if (m && !t)
			abort();
		free(t);
		json_decref(m);
		return 0;
	}
	pw_buf answer = PW_BUF_INIT;
	int rc = pw_hostcap_run(&call, NULL, NULL, ns, op, data + 1, size - 1, &answer);
	if (rc == 0) {
		json_t *j = json_loadb((const char *)answer.data, answer.len, JSON_DECODE_ANY, NULL);
		if (!j)
			abort();
		json_decref(j);
	} else if (answer.len == 0) {
		abort();
	}
	pw_buf_free(&answer);
	return 0;
}
