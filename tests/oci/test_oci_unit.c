/*
 * Unit tests of the OCI client's parsers (no network): references, the WWW-Authenticate
 * challenge, sources.yml, Docker config.json and manifests. Certificates for the
 * sources tests are made by the real openssl tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "prewarm/oci.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_ref_registry_forms(void)
{
	pw_oci_ref *r = NULL;
	CHECK_OK(pw_oci_ref_parse(&r, "registry://ghcr.io/kubewarden/policies/pod-privileged:v0.2.1"));
	CHECK_STR(r->host, "ghcr.io");
	CHECK_STR(r->repo, "kubewarden/policies/pod-privileged");
	CHECK_STR(r->tag, "v0.2.1");
	CHECK(r->digest == NULL);
	CHECK(pw_oci_ref_is_mutable(r));
	pw_oci_ref_free(r);

	CHECK_OK(pw_oci_ref_parse(&r, "127.0.0.1:5000/a/b@" D64));
	CHECK_STR(r->host, "127.0.0.1:5000");
	CHECK_STR(r->repo, "a/b");
	CHECK(r->tag == NULL);
	CHECK_STR(r->digest, D64);
	CHECK(!pw_oci_ref_is_mutable(r));
	char *s = pw_oci_ref_str(r);
	CHECK_STR(s, "127.0.0.1:5000/a/b@" D64);
	free(s);
	pw_oci_ref_free(r);

	CHECK_OK(pw_oci_ref_parse(&r, "registry://localhost/x:1@" D64));
	CHECK_STR(r->host, "localhost");
	CHECK_STR(r->tag, "1");
	CHECK_STR(r->digest, D64);
	pw_oci_ref_free(r);

	CHECK_OK(pw_oci_ref_parse(&r, "busybox"));
	CHECK_STR(r->host, "docker.io");
	CHECK_STR(r->repo, "library/busybox");
	CHECK_STR(r->tag, "latest");
	pw_oci_ref_free(r);

	CHECK_OK(pw_oci_ref_parse(&r, "registry.example.com:443/org/p"));
	CHECK_STR(r->tag, "latest");
	pw_oci_ref_free(r);
}

static void test_ref_urls(void)
{
	pw_oci_ref *r = NULL;
	CHECK_OK(pw_oci_ref_parse(&r, "https://example.com/p.wasm"));
	CHECK_INT(r->scheme, PW_OCI_HTTPS);
	CHECK_STR(r->url, "https://example.com/p.wasm");
	pw_oci_ref_free(r);
	CHECK_OK(pw_oci_ref_parse(&r, "http://127.0.0.1:8080/x/p.wasm?x=1"));
	CHECK_INT(r->scheme, PW_OCI_HTTP);
	pw_oci_ref_free(r);
	CHECK_OK(pw_oci_ref_parse(&r, "file:///tmp/p.wasm"));
	CHECK_INT(r->scheme, PW_OCI_FILE);
	CHECK_STR(r->path, "/tmp/p.wasm");
	pw_oci_ref_free(r);
}

static void test_ref_invalid(void)
{
	static const char *bad[] = {
		"", "registry://", "registry://ghcr.io/", "ghcr.io/Upper/case:v1", "ghcr.io/a//b",
		"ghcr.io/a:b:c", "ghcr.io/a@sha256:1234", "ghcr.io/a@md5:" "0123456789abcdef0123456789abcdef",
		"ghcr.io:99999/a", "ghcr.io:/a", "ghcr.io/a:-tag", "ghcr.io/a b", "ftp://x/y",
		"file://relative/p.wasm", "https://user:pw@host/x", "ghcr.io/a-/b", "ghcr.io/a:"
		"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
		"ghcr.io/a\n", "https:///x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pw_oci_ref *r = NULL;
		int rc = pw_oci_ref_parse(&r, bad[i]);
		CHECK_MSG(rc == PW_EINVALID && r == NULL, "'%s' was accepted (rc %d)", bad[i], rc);
		CHECK_MSG(strstr(pw_error_last(), "invalid policy reference"), "message for '%s': %s", bad[i], pw_error_last());
	}
}

static void test_challenge_bearer(void)
{
	pw_oci_challenge c;
	CHECK_OK(pw_oci_challenge_parse(&c, "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:a/b:pull,push\""));
	CHECK_STR(c.scheme, "Bearer");
	CHECK_STR(c.realm, "https://auth.example.com/token");
	CHECK_STR(c.service, "registry.example.com");
	CHECK_STR(c.scope, "repository:a/b:pull,push");
	pw_oci_challenge_clear(&c);

	/* lower case, spaces around '=', escapes, token values, error param */
	CHECK_OK(pw_oci_challenge_parse(&c, "bearer  realm = \"http://h/t\\\"x\\\\\" , service=svc, error=\"invalid_token\""));
	CHECK_STR(c.realm, "http://h/t\"x\\");
	CHECK_STR(c.service, "svc");
	CHECK_STR(c.error, "invalid_token");
	CHECK(c.scope == NULL);
	pw_oci_challenge_clear(&c);
}

static void test_challenge_multiple(void)
{
	pw_oci_challenge c;
	CHECK_OK(pw_oci_challenge_parse(&c, "Basic realm=\"reg, with comma\", Bearer realm=\"https://t/x\",scope=\"repository:r:pull\""));
	CHECK_STR(c.scheme, "Bearer");
	CHECK_STR(c.realm, "https://t/x");
	CHECK_STR(c.scope, "repository:r:pull");
	pw_oci_challenge_clear(&c);
	CHECK_OK(pw_oci_challenge_parse(&c, "Negotiate abc==, Basic realm=\"Registry Realm\""));
	CHECK_STR(c.scheme, "Basic");
	CHECK_STR(c.realm, "Registry Realm");
	pw_oci_challenge_clear(&c);
}

static void test_challenge_invalid(void)
{
	pw_oci_challenge c;
	CHECK_INT(pw_oci_challenge_parse(&c, "Bearer realm=\"unterminated"), PW_EINVALID);
	CHECK_INT(pw_oci_challenge_parse(&c, ""), PW_EINVALID);
	CHECK_INT(pw_oci_challenge_parse(&c, "=x"), PW_EINVALID);
	CHECK_INT(pw_oci_challenge_parse(&c, "Bearer service=\"x\""), PW_EINVALID); /* no realm */
	CHECK_INT(pw_oci_challenge_parse(&c, "Digest realm=\"x\", nonce=\"y\""), PW_EUNSUPPORTED);
	CHECK_INT(pw_oci_challenge_parse(&c, "Bearer realm=\"x\" junk"), PW_EINVALID);
	CHECK_INT(pw_oci_challenge_parse(&c, "Bearer realm="), PW_EINVALID);
}

static int make_cert(const char *dir, char *pem_path, size_t n)
{
	char cmd[2048];
	snprintf(pem_path, n, "%s/ca.pem", dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=t "
	         "-keyout %s/ca.key -out %s >/dev/null 2>&1", dir, pem_path);
	return system(cmd);
}

static void test_sources_yaml(void)
{
	const char *dir = pw_test_tmpdir();
	char pem[512], yml[4096], path[600];
	pw_buf data = PW_BUF_INIT;
	pw_oci_sources *s = NULL;
	CHECK_INT(make_cert(dir, pem, sizeof pem), 0);
	CHECK_OK(pw_file_read(pem, 0, &data));
	/* Data given inline as a YAML block scalar, Path as a file */
	pw_buf y = PW_BUF_INIT;
	pw_buf_printf(&y, "insecure_sources:\n  - \"registry.local:5000\"\n  - other.local\nsource_authorities:\n"
	                  "  \"secure.local:443\":\n    - type: Path\n      path: %s\n"
	                  "  inline.local:\n    - type: Data\n      data: |\n", pem);
	for (char *line = strtok((char *)data.data, "\n"); line; line = strtok(NULL, "\n"))
		pw_buf_printf(&y, "        %s\n", line);
	snprintf(path, sizeof path, "%s/sources.yml", dir);
	CHECK_OK(pw_file_write_atomic(path, y.data, y.len, 0644));
	CHECK_OK(pw_oci_sources_load(&s, path));
	CHECK(pw_oci_sources_is_insecure(s, "registry.local:5000"));
	CHECK(pw_oci_sources_is_insecure(s, "other.local"));
	CHECK(!pw_oci_sources_is_insecure(s, "registry.local"));
	CHECK(pw_oci_sources_ca_pem(s, "secure.local:443") != NULL);
	CHECK(strstr(pw_oci_sources_ca_pem(s, "inline.local"), "BEGIN CERTIFICATE"));
	CHECK(pw_oci_sources_ca_pem(s, "nope") == NULL);
	pw_oci_sources_free(s);
	pw_buf_free(&data);
	pw_buf_free(&y);

	/* JSON is YAML too */
	snprintf(yml, sizeof yml, "{\"insecure_sources\": [\"a:1\"]}");
	CHECK_OK(pw_oci_sources_parse(&s, yml, strlen(yml), "inline"));
	CHECK(pw_oci_sources_is_insecure(s, "a:1"));
	pw_oci_sources_free(s);
	/* empty file: nothing */
	CHECK_OK(pw_oci_sources_parse(&s, "", 0, "empty"));
	pw_oci_sources_free(s);
}

static void test_sources_invalid(void)
{
	pw_oci_sources *s = NULL;
	static const char *bad[] = {
		"insecure_sources: notalist\n",
		"insecure_sources: [[a]]\n",
		"source_authorities:\n  h:\n    - type: Data\n      data: not a pem\n",
		"source_authorities:\n  h:\n    - type: Path\n      path: /nonexistent/ca.pem\n",
		"source_authorities:\n  h:\n    - type: Other\n",
		"source_authorities: [1]\n",
		"- a\n- b\n",
		"insecure_sources: [a\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = pw_oci_sources_parse(&s, bad[i], strlen(bad[i]), "sources.yml");
		CHECK_MSG(rc < 0 && s == NULL, "accepted: %s", bad[i]);
		CHECK_MSG(strstr(pw_error_last(), "sources.yml") != NULL, "message lacks the file name: %s", pw_error_last());
	}
	CHECK_INT(pw_oci_sources_load(&s, "/nonexistent/sources.yml"), PW_ENOTFOUND);
	CHECK(strstr(pw_error_last(), "/nonexistent/sources.yml"));
}

static void test_docker_config(void)
{
	const char *dir = pw_test_tmpdir();
	char p[600];
	const char *u, *pw;
	pw_oci_creds *c = NULL;
	/* "alice:s3cr:et" and username/password fields; a URL key for Docker Hub */
	const char *cfg = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"YWxpY2U6czNjcjpldA==\"},"
	                  "\"https://index.docker.io/v1/\":{\"username\":\"bob\",\"password\":\"pw\"}},"
	                  "\"credsStore\":\"desktop\"}";
	snprintf(p, sizeof p, "%s/config.json", dir);
	CHECK_OK(pw_file_write_atomic(p, cfg, strlen(cfg), 0600));
	CHECK_OK(pw_oci_creds_new(&c));
	CHECK_OK(pw_oci_creds_load_docker_config(c, dir));  /* a directory */
	CHECK_OK(pw_oci_creds_find(c, "127.0.0.1:5000", &u, &pw));
	CHECK_STR(u, "alice");
	CHECK_STR(pw, "s3cr:et");
	CHECK_OK(pw_oci_creds_find(c, "docker.io", &u, &pw));
	CHECK_STR(u, "bob");
	CHECK_INT(pw_oci_creds_find(c, "127.0.0.1:5001", &u, &pw), PW_ENOTFOUND);
	pw_oci_creds_free(c);

	const char *bad = "{\"auths\":{\"h\":{\"auth\":\"!!!\"}}}";
	CHECK_OK(pw_file_write_atomic(p, bad, strlen(bad), 0600));
	CHECK_OK(pw_oci_creds_new(&c));
	CHECK_INT(pw_oci_creds_load_docker_config(c, p), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "config.json") && strstr(pw_error_last(), "\"h\""));
	CHECK_INT(pw_oci_creds_load_docker_config(c, "/nonexistent"), PW_ENOTFOUND);
	pw_oci_creds_free(c);

	/* a mounted Secret */
	char sd[512];
	snprintf(sd, sizeof sd, "%s/secret", dir);
	CHECK_OK(pw_mkdirs(sd, 0700));
	snprintf(p, sizeof p, "%s/username", sd);
	CHECK_OK(pw_file_write_atomic(p, "carol\n", 6, 0600));
	snprintf(p, sizeof p, "%s/password", sd);
	CHECK_OK(pw_file_write_atomic(p, "pa ss\n", 6, 0600));
	CHECK_OK(pw_oci_creds_new(&c));
	CHECK_OK(pw_oci_creds_load_secret_dir(c, "reg:1", sd));
	CHECK_OK(pw_oci_creds_find(c, "reg:1", &u, &pw));
	CHECK_STR(u, "carol");
	CHECK_STR(pw, "pa ss");
	pw_oci_creds_free(c);
}

static void test_manifest_parse(void)
{
	pw_oci_manifest *m = NULL;
	const char *man = "{\"schemaVersion\":2,\"mediaType\":\"" PW_OCI_MT_MANIFEST "\",\"artifactType\":\"x/y\","
	                  "\"config\":{\"mediaType\":\"" PW_OCI_MT_EMPTY "\",\"digest\":\"" PW_OCI_EMPTY_DIGEST "\",\"size\":2},"
	                  "\"layers\":[{\"mediaType\":\"" PW_OCI_MT_WASM_LAYER "\",\"digest\":\"" D64 "\",\"size\":10,"
	                  "\"annotations\":{\"k\":\"v\"}}],\"annotations\":{\"a\":\"b\"},"
	                  "\"subject\":{\"mediaType\":\"" PW_OCI_MT_MANIFEST "\",\"digest\":\"" D64 "\",\"size\":5}}";
	CHECK_OK(pw_oci_manifest_parse(&m, man, strlen(man), NULL));
	CHECK_INT(m->kind, PW_OCI_KIND_MANIFEST);
	CHECK_STR(m->artifact_type, "x/y");
	CHECK_INT(m->nlayers, 1);
	CHECK_STR(m->layers[0].media_type, PW_OCI_MT_WASM_LAYER);
	CHECK_INT(m->layers[0].size, 10);
	CHECK_STR(pw_oci_manifest_annotation(m, "a"), "b");
	CHECK(m->subject && m->subject->size == 5);
	pw_oci_manifest_free(m);

	const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" PW_OCI_MT_MANIFEST "\",\"digest\":\"" D64 "\","
	                  "\"size\":3,\"platform\":{\"os\":\"wasip1\",\"architecture\":\"wasm\"}}]}";
	CHECK_OK(pw_oci_manifest_parse(&m, idx, strlen(idx), PW_OCI_MT_INDEX "; charset=utf-8"));
	CHECK_INT(m->kind, PW_OCI_KIND_INDEX);
	CHECK_STR(m->layers[0].platform_arch, "wasm");
	pw_oci_manifest_free(m);

	static const char *bad[] = {
		"[]", "{\"schemaVersion\":1}", "{\"schemaVersion\":2}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D64 "\",\"size\":-1},\"layers\":[]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D64 "\",\"size\":1},\"layers\":[{}]}",
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" D64 "\",\"size\":1},\"layers\":[],\"annotations\":{\"a\":1}}",
		"{\"schemaVersion\":2,\"schemaVersion\":2}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = pw_oci_manifest_parse(&m, bad[i], strlen(bad[i]), NULL);
		CHECK_MSG(rc < 0 && m == NULL, "accepted: %s", bad[i]);
		CHECK(strstr(pw_error_last(), "manifest"));
	}
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_ref_registry_forms), PW_TEST(test_ref_urls), PW_TEST(test_ref_invalid),
		PW_TEST(test_challenge_bearer), PW_TEST(test_challenge_multiple), PW_TEST(test_challenge_invalid),
		PW_TEST(test_sources_yaml), PW_TEST(test_sources_invalid), PW_TEST(test_docker_config),
		PW_TEST(test_manifest_parse),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
