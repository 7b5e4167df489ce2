/*
 * `prewarm pull REF [-o FILE]`: downloads a policy module from an OCI registry (or an
 * http(s) URL, or a file) with the same client the server uses, so one can check a
 * reference, credentials and TLS settings by hand. Prints the digest and where it went.
 * With --verification-path (Kubewarden's verification config, as `prewarm serve` takes it)
 * the module's cosign signatures are verified first and the pull is pinned to the verified
 * manifest digest.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "prewarm/oci.h"
#include "prewarm/sigstore.h"

static void pull_usage(FILE *f)
{
	fprintf(f, "usage: prewarm pull REF [-o FILE] [--docker-config-json-path DIR] [--sources-path FILE]\n"
	           "                       [--verification-path FILE] [--timeout SECONDS] [--log-level LEVEL]\n\n"
	           "Downloads a policy module. REF is registry://host[:port]/repo[:tag][@sha256:...],\n"
	           "host/repo:tag, https://..., http://... or file:///path. The wasm layer's digest and\n"
	           "the \\0asm magic are checked; the file is written atomically. Default FILE: the\n"
	           "repository's last name + .wasm in the current directory.\n"
	           "--verification-path FILE: verify the module's cosign signatures against Kubewarden's\n"
	           "verification config (pubKey entries) before pulling; the pull then fetches the\n"
	           "verified manifest digest.\n");
}

/* "ghcr.io/org/policy:v1" -> "policy.wasm" */
static char *default_output(const char *ref)
{
	pw_oci_ref *r = NULL;
	char *out = NULL;
	const char *name;
	if (pw_oci_ref_parse(&r, ref) < 0)
		return NULL;
	name = r->repo ? r->repo : (r->url ? r->url : r->path);
	const char *slash = strrchr(name, '/');
	name = slash ? slash + 1 : name;
	size_t n = strcspn(name, "?#");
	if (n == 0)
		name = "policy", n = 6;
	if (n > 5 && !strncmp(name + n - 5, ".wasm", 5))
		n -= 5;
	if (asprintf(&out, "%.*s.wasm", (int)n, name) < 0)
		out = NULL;
	pw_oci_ref_free(r);
	return out;
}

int pw_cmd_pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "docker-config-json-path", required_argument, NULL, 'd' },
		{ "sources-path", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "verification-path", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL, *docker = NULL, *sources = NULL, *verification = NULL;
	pw_verify_config *vcfg = NULL;
	char *pinned = NULL;
	pw_oci_client_opts co;
	pw_oci_client *c = NULL;
	pw_oci_pulled res;
	char *defout = NULL;
	int ch, rc;
	memset(&co, 0, sizeof co);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': output = optarg; break;
		case 'd': docker = optarg; break;
		case 's': sources = optarg; break;
		case 'v': verification = optarg; break;
		case 't':
		case 'l':
			if (pw_cli_oci_common_opt("pull", ch, optarg, &co.timeout) < 0)
				return 2;
			break;
		case 'h': pull_usage(stdout); return 0;
		default: pull_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		pull_usage(stderr);
		return 2;
	}
	const char *ref = argv[optind];
	if (!output) {
		defout = default_output(ref);
		if (!defout) {
			fprintf(stderr, "prewarm pull: %s\n", pw_error_last());
			return 1;
		}
		output = defout;
	}
	if ((verification && pw_verify_config_load(&vcfg, verification) < 0) ||
	    pw_oci_client_from_paths(&c, docker, sources, &co) < 0) {
		fprintf(stderr, "prewarm pull: %s\n", pw_error_last());
		pw_verify_config_free(vcfg);
		free(defout);
		return 1;
	}
	double t0 = pw_now();
	rc = vcfg ? pw_cosign_verify_pinned(&pinned, c, ref, vcfg) : 0;
	if (rc < 0)
		pw_error_prefix("%s", ref);
	else
		rc = pw_oci_pull(c, pinned ? pinned : ref, output, &res);
	if (rc < 0) {
		fprintf(stderr, "prewarm pull: %s\n", pw_error_last());
	} else {
		char sz[32], dur[32];
		printf("%s %s %s (%s, %s%s%s%s%s)\n", res.digest, output, ref, pw_fmt_bytes(res.size, sz, sizeof sz),
		       pinned ? "signatures verified, manifest " : "", pinned ? res.manifest_digest : "",
		       pinned ? ", " : "", res.downloaded ? "downloaded in " : "already present, checked in ",
		       pw_fmt_duration(pw_now() - t0, dur, sizeof dur));
	}
	pw_oci_client_free(c);
	pw_verify_config_free(vcfg);
	free(pinned);
	free(defout);
	return rc < 0 ? 1 : 0;
}
