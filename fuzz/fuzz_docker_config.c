/*
 * Fuzz target: the Docker config.json reader of registry credentials (src/oci/auth.c,
 * pw_oci__creds_parse_docker_config). Input: the file's text. Any text must load or give a
 * message naming the file; every host it loaded must be found again by its own name, with a
 * user and a password.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prewarm/common.h"
#include "prewarm/oci.h"
#include "../src/oci/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_oci_creds *c = NULL;
	if (pw_oci_creds_new(&c) < 0)
		return 0;
	if (pw_oci__creds_parse_docker_config(c, (const char *)data, size, "fuzz.json") < 0) {
		if (!strstr(pw_error_last(), "fuzz.json") && !strstr(pw_error_last(), "out of memory"))
			abort();
	} else {
		json_t *root = json_loadb((const char *)data, size, 0, NULL);
		const char *host, *user, *pass;
		json_t *v;
		json_object_foreach(json_object_get(root, "auths"), host, v) {
			if (pw_oci_creds_find(c, host, &user, &pass) == 0 && (!user || !pass))
				abort();
		}
		json_decref(root);
	}
	pw_oci_creds_free(c);
	return 0;
}
