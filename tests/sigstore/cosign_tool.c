/*
 * cosign_tool: attaches cosign signature layers to an image in a registry, for shell tests
 * that sign with the openssl command (tests/sigstore/cosign_helper.h does the work).
 *
 *   cosign_tool payload DOCKER_REF DIGEST [OPTIONAL_JSON]      prints the payload (no newline)
 *   cosign_tool attach REF DIGEST LAYER... [--docker-config-json-path DIR] [--sources-path FILE]
 *   cosign_tool hostcall OPERATION REQUEST_FILE [--twice] [--debug] [same options]   pw_cosign_host_verify:
 *                                       prints each answer, or "error: MESSAGE" and exits 1
 * LAYER is PAYLOAD_FILE:SIGNATURE_B64_FILE (an empty signature file name: no annotation).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cosign_helper.h"
#include "prewarm/sigstore.h"
#include "prewarm/util.h"

#define MAX_LAYERS 16

static int usage(void)
{
	fprintf(stderr, "usage: cosign_tool payload DOCKER_REF DIGEST [OPTIONAL_JSON]\n"
	                "       cosign_tool attach REF DIGEST PAYLOAD:SIG_B64_FILE... [--docker-config-json-path DIR]"
	                " [--sources-path FILE]\n"
	                "       cosign_tool hostcall OPERATION REQUEST_FILE [--docker-config-json-path DIR]"
	                " [--sources-path FILE]\n");
	return 2;
}

/* --docker-config-json-path / --sources-path at argv[i]: consumed (i advanced), true */
static bool client_opt(int argc, char **argv, int *i, const char **docker, const char **sources)
{
	if (*i + 1 >= argc)
		return false;
	if (!strcmp(argv[*i], "--docker-config-json-path"))
		*docker = argv[++*i];
	else if (!strcmp(argv[*i], "--sources-path"))
		*sources = argv[++*i];
	else
		return false;
	return true;
}

/* Repeated host calls in one process, so the second one can come from the answer cache. */
static int hostcall(int argc, char **argv)
{
	const char *docker = NULL, *sources = NULL;
	pw_buf req = PW_BUF_INIT, ans = PW_BUF_INIT;
	pw_oci_client *c = NULL;
	int rc = 1, times = 1;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--twice"))
			times = 2;
		else if (!strcmp(argv[i], "--debug"))
			pw_log_configure(PW_LOG_DEBUG, PW_LOG_TEXT);
		else if (!client_opt(argc, argv, &i, &docker, &sources))
			return usage();
	}
	if (pw_file_read(argv[3], 0, &req) == 0 && pw_oci_client_from_paths(&c, docker, sources, NULL) == 0) {
		for (int t = 0; t < times; t++) {
			if (pw_cosign_host_verify(c, argv[2], req.data ? req.data : (const uint8_t *)"", req.len, &ans) < 0) {
				printf("error: %s\n", pw_error_last());
				rc = 1;
				break;
			}
			printf("%.*s\n", (int)ans.len, (const char *)ans.data);
			rc = 0;
		}
	} else {
		fprintf(stderr, "cosign_tool: %s\n", pw_error_last());
	}
	pw_oci_client_free(c);
	pw_buf_free(&req);
	pw_buf_free(&ans);
	return rc;
}

static int attach(int argc, char **argv)
{
	const char *docker = NULL, *sources = NULL;
	test_sig_layer layers[MAX_LAYERS];
	pw_buf bufs[2 * MAX_LAYERS];
	size_t n = 0, nb = 0;
	int rc = 1;
	memset(bufs, 0, sizeof bufs);
	for (int i = 4; i < argc; i++) {
		if (client_opt(argc, argv, &i, &docker, &sources))
			continue;
		char *colon = strchr(argv[i], ':');
		if (!colon || n == MAX_LAYERS)
			return usage();
		*colon = 0;
		memset(&layers[n], 0, sizeof layers[n]);
		if (pw_file_read(argv[i], 0, &bufs[nb]) < 0 || pw_buf_append(&bufs[nb], "", 1) < 0)
			goto out;
		layers[n].payload = (const char *)bufs[nb].data;
		layers[n].len = bufs[nb++].len - 1;
		if (colon[1]) {
			if (pw_file_read(colon + 1, 0, &bufs[nb]) < 0 || pw_buf_append(&bufs[nb], "", 1) < 0)
				goto out;
			char *sig = (char *)bufs[nb++].data;
			sig[strcspn(sig, "\r\n")] = 0;
			layers[n].sig_b64 = sig;
		}
		n++;
	}
	pw_oci_client *c = NULL;
	if (pw_oci_client_from_paths(&c, docker, sources, NULL) == 0 &&
	    test_cosign_attach(c, argv[2], argv[3], layers, n) == 0)
		rc = 0;
	pw_oci_client_free(c);
out:
	if (rc)
		fprintf(stderr, "cosign_tool: %s\n", pw_error_last());
	for (size_t i = 0; i < nb; i++)
		pw_buf_free(&bufs[i]);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "payload")) {
		char *p = test_cosign_payload(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
		if (!p)
			return 1;
		fputs(p, stdout);
		free(p);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "attach"))
		return attach(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "hostcall"))
		return hostcall(argc, argv);
	return usage();
}
