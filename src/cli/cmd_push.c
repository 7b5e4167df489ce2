/*
 * `prewarm push MODULE.wasm REF`: publishes a policy module to an OCI registry as a
 * Kubewarden-style artifact (wasm layer, wasm config, OCI image manifest with
 * annotations) and prints the manifest digest, so `REF@digest` can go into policies.yml.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "prewarm/oci.h"

static void push_usage(FILE *f)
{
	fprintf(f, "usage: prewarm push MODULE.wasm REF [--annotation KEY=VALUE]...\n"
	           "                       [--docker-config-json-path DIR] [--sources-path FILE]\n"
	           "                       [--timeout SECONDS] [--log-level LEVEL]\n\n"
	           "Publishes a policy module as an OCI artifact: layer %s,\n"
	           "config %s, manifest %s.\n"
	           "REF is registry://host[:port]/repo:tag or host/repo:tag. Prints the manifest digest.\n",
	        PW_OCI_MT_WASM_LAYER, PW_OCI_MT_WASM_CONFIG, PW_OCI_MT_MANIFEST);
}

int pw_cmd_push(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "annotation", required_argument, NULL, 'a' },
		{ "docker-config-json-path", required_argument, NULL, 'd' },
		{ "sources-path", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *docker = NULL, *sources = NULL;
	pw_oci_annotation ann[65];
	size_t nann = 0;
	pw_oci_client_opts co;
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT;
	char digest[PW_OCI_DIGEST_LEN] = "";
	int ch, rc = 1;
	memset(&co, 0, sizeof co);
	memset(ann, 0, sizeof ann);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "a:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || nann == 64) {
				fprintf(stderr, "prewarm push: --annotation needs KEY=VALUE (at most 64): '%s'\n", optarg);
				return 2;
			}
			ann[nann].key = strndup(optarg, (size_t)(eq - optarg));
			ann[nann].value = eq + 1;
			nann++;
			break;
		}
		case 'd': docker = optarg; break;
		case 's': sources = optarg; break;
		case 't':
		case 'l':
			if (pw_cli_oci_common_opt("push", ch, optarg, &co.timeout) < 0)
				return 2;
			break;
		case 'h': push_usage(stdout); return 0;
		default: push_usage(stderr); return 2;
		}
	}
	if (optind != argc - 2) {
		push_usage(stderr);
		goto out2;
	}
	const char *module = argv[optind], *ref = argv[optind + 1];
	if (pw_file_read(module, 1ull << 30, &wasm) < 0) {
		fprintf(stderr, "prewarm push: %s\n", pw_error_last());
		goto out;
	}
	bool has_title = false;
	for (size_t i = 0; i < nann; i++)
		has_title |= !strcmp(ann[i].key, "org.opencontainers.image.title");
	char *mcopy = strdup(module);
	if (!has_title && mcopy) {
		ann[nann].key = strdup("org.opencontainers.image.title");
		ann[nann].value = basename(mcopy);
		nann++;
	}
	if (pw_oci_client_from_paths(&c, docker, sources, &co) < 0 ||
	    pw_oci_push_wasm(c, ref, wasm.data, wasm.len, ann, nann, digest) < 0) {
		fprintf(stderr, "prewarm push: %s\n", pw_error_last());
	} else {
		printf("%s %s\n", digest, ref);
		rc = 0;
	}
	free(mcopy);
out:
	pw_oci_client_free(c);
	pw_buf_free(&wasm);
	for (size_t i = 0; i < nann; i++)
		free(ann[i].key);
	return rc;
out2:
	for (size_t i = 0; i < nann; i++)
		free(ann[i].key);
	return 2;
}
