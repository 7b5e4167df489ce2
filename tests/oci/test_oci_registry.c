/*
 * The OCI client against real registries (Debian's docker-registry, started by
 * tests/lib/registry.sh): plain HTTP reached through insecure_sources, HTTPS + htpasswd
 * with a throwaway CA given by sources.yml and credentials by a docker config.json, and
 * `auth: silly` for the Bearer token dance. Round trips, 401/404/TLS errors, a blob
 * altered in the registry's storage, re-pulls, indexes, limits and parallel pulls.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "prewarm/oci.h"

typedef pw_test_registry reg;

static reg g_plain, g_tls, g_silly;

#define NEED(r, name, flags) PW_TEST_NEED_REGISTRY(r, name, flags)

static int client_for(reg *r, pw_oci_client **c, bool with_creds)
{
	pw_oci_client_opts o = { .connect_timeout = 5, .timeout = 60, .backoff = 0.05, .retries = 2 };
	return pw_oci_client_from_paths(c, with_creds ? r->docker : NULL, r->sources, &o);
}

static int read_fixture(pw_buf *b)
{
	return pw_file_read(pw_test_fixture("oci_policy.wasm"), 0, b);
}

static void test_roundtrip_plain_http(void)
{
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT, got = PW_BUF_INIT;
	char ref[256], dest[600], dg[PW_OCI_DIGEST_LEN], want[PW_OCI_DIGEST_LEN];
	pw_oci_pulled res;
	pw_oci_annotation ann[] = { { "org.opencontainers.image.title", "oci_policy.wasm" } };
	NEED(&g_plain, "plain", "");
	CHECK_OK(read_fixture(&wasm));
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "registry://%s/prewarm/policy:v1", g_plain.host);
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, ann, 1, dg));
	CHECK(pw_oci_digest_valid(dg));
	snprintf(dest, sizeof dest, "%s/plain.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref, dest, &res));
	CHECK(res.downloaded);
	CHECK_STR(res.manifest_digest, dg);
	CHECK_STR(res.manifest_media_type, PW_OCI_MT_MANIFEST);
	CHECK_OK(pw_file_read(dest, 0, &got));
	CHECK_INT(got.len, wasm.len);
	CHECK(memcmp(got.data, wasm.data, wasm.len) == 0);
	memcpy(want, "sha256:", 7);
	pw_sha256_hex(wasm.data, wasm.len, want + 7);
	CHECK_STR(res.digest, want);
	/* a second pull finds the bytes in place: no download */
	CHECK_OK(pw_oci_pull(c, ref, dest, &res));
	CHECK(!res.downloaded);
	/* pull by manifest digest, bare form */
	char ref2[300];
	snprintf(ref2, sizeof ref2, "%s/prewarm/policy@%s", g_plain.host, dg);
	snprintf(dest, sizeof dest, "%s/plain2.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref2, dest, &res));
	CHECK(res.downloaded);
	CHECK_STR(res.digest, want);
	pw_oci_client_free(c);
	pw_buf_free(&wasm);
	pw_buf_free(&got);
}

static void test_roundtrip_tls_auth(void)
{
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT, got = PW_BUF_INIT;
	char ref[256], dest[600];
	pw_oci_pulled res;
	NEED(&g_tls, "tls", "--tls --auth");
	CHECK_OK(read_fixture(&wasm));
	CHECK_OK(client_for(&g_tls, &c, true));
	snprintf(ref, sizeof ref, "%s/secure/policy:v1", g_tls.host);
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, NULL, 0, NULL));
	/* pushing again: blobs exist (HEAD), only the manifest is PUT */
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, NULL, 0, NULL));
	snprintf(dest, sizeof dest, "%s/tls.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref, dest, &res));
	CHECK_OK(pw_file_read(dest, 0, &got));
	CHECK(got.len == wasm.len && memcmp(got.data, wasm.data, wasm.len) == 0);
	pw_oci_client_free(c);
	pw_buf_free(&wasm);
	pw_buf_free(&got);
}

static void test_wrong_password_401(void)
{
	pw_oci_client *c = NULL;
	pw_oci_creds *cr = NULL;
	pw_oci_sources *s = NULL;
	char ref[256], dest[600];
	NEED(&g_tls, "tls", "--tls --auth");
	CHECK_OK(pw_oci_sources_load(&s, g_tls.sources));
	CHECK_OK(pw_oci_creds_new(&cr));
	CHECK_OK(pw_oci_creds_set(cr, g_tls.host, g_tls.user, "not-the-password"));
	pw_oci_client_opts o = { .sources = s, .creds = cr, .no_retry = true };
	CHECK_OK(pw_oci_client_new(&c, &o));
	snprintf(ref, sizeof ref, "%s/secure/policy:v1", g_tls.host);
	snprintf(dest, sizeof dest, "%s/wrong.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_EAUTH);
	CHECK_MSG(strstr(pw_error_last(), g_tls.host) && strstr(pw_error_last(), "401") &&
	          strstr(pw_error_last(), "credentials sent were refused"), "message: %s", pw_error_last());
	CHECK(!strstr(pw_error_last(), "not-the-password"));
	CHECK(!pw_path_exists(dest));
	pw_oci_client_free(c);
	/* no credentials at all */
	pw_oci_client_opts o2 = { .sources = s, .no_retry = true };
	CHECK_OK(pw_oci_client_new(&c, &o2));
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_EAUTH);
	CHECK_MSG(strstr(pw_error_last(), "no credentials were sent"), "message: %s", pw_error_last());
	pw_oci_client_free(c);
	pw_oci_creds_free(cr);
	pw_oci_sources_free(s);
}

static void test_unknown_ca(void)
{
	pw_oci_client *c = NULL;
	char ref[256], dest[600];
	NEED(&g_tls, "tls", "--tls --auth");
	pw_oci_client_opts o = { .no_retry = true, .connect_timeout = 5 };
	CHECK_OK(pw_oci_client_from_paths(&c, g_tls.docker, NULL, &o));  /* no sources: system CAs only */
	snprintf(ref, sizeof ref, "%s/secure/policy:v1", g_tls.host);
	snprintf(dest, sizeof dest, "%s/ca.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_ENETWORK);
	CHECK_MSG(strstr(pw_error_last(), g_tls.host) && (strstr(pw_error_last(), "certificate") || strstr(pw_error_last(), "SSL")),
	          "message: %s", pw_error_last());
	CHECK(!pw_path_exists(dest));
	pw_oci_client_free(c);
}

static void test_unknown_tag_404(void)
{
	pw_oci_client *c = NULL;
	char ref[256], dest[600];
	NEED(&g_plain, "plain", "");
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "%s/prewarm/policy:no-such-tag", g_plain.host);
	snprintf(dest, sizeof dest, "%s/404.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_ENOTFOUND);
	CHECK_MSG(strstr(pw_error_last(), "prewarm/policy:no-such-tag") && strstr(pw_error_last(), "404"),
	          "message: %s", pw_error_last());
	CHECK(!pw_path_exists(dest));
	pw_oci_client_free(c);
}

static void test_altered_blob_mismatch(void)
{
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT;
	char ref[256], dest[600], data[1200], hex[PW_SHA256_HEX_LEN + 1];
	NEED(&g_plain, "plain", "");
	CHECK_OK(read_fixture(&wasm));
	/* a module of its own so other tests' blobs stay intact */
	CHECK_OK(pw_buf_append(&wasm, "\0\x08tamperme", 10));  /* a custom section appended */
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "%s/prewarm/tampered:v1", g_plain.host);
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, NULL, 0, NULL));
	pw_sha256_hex(wasm.data, wasm.len, hex);
	snprintf(data, sizeof data, "%s/blobs/sha256/%.2s/%s/data", g_plain.storage, hex, hex);
	CHECK_MSG(pw_path_exists(data), "blob not found in storage at %s", data);
	/* flip one byte, same length */
	FILE *f = fopen(data, "r+b");
	CHECK(f != NULL);
	fseek(f, (long)wasm.len - 1, SEEK_SET);
	fputc('X', f);
	fclose(f);
	snprintf(dest, sizeof dest, "%s/tampered.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_EMISMATCH);
	CHECK_MSG(strstr(pw_error_last(), "digest mismatch") && strstr(pw_error_last(), hex), "message: %s", pw_error_last());
	CHECK(!pw_path_exists(dest));
	/* no temp file left behind either */
	DIR *d = opendir(pw_test_tmpdir());
	struct dirent *de;
	while (d && (de = readdir(d)))
		CHECK_MSG(strncmp(de->d_name, ".tmp-", 5) != 0, "temp file left: %s", de->d_name);
	if (d)
		closedir(d);
	pw_oci_client_free(c);
	pw_buf_free(&wasm);
}

static void test_bearer_silly(void)
{
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT, log = PW_BUF_INIT;
	char ref[256], dest[600];
	NEED(&g_silly, "silly", "--silly");
	CHECK_OK(read_fixture(&wasm));
	pw_oci_sources *s = NULL;
	CHECK_OK(pw_oci_sources_load(&s, g_silly.sources));
	pw_oci_client_opts o = { .sources = s, .no_retry = true };
	CHECK_OK(pw_oci_client_new(&c, &o));
	snprintf(ref, sizeof ref, "%s/bearer/policy:v1", g_silly.host);
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, NULL, 0, NULL));
	snprintf(dest, sizeof dest, "%s/bearer.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref, dest, NULL));
	CHECK_OK(pw_file_read(g_silly.token_log, 0, &log));
	/* the token endpoint got the challenge's service and scope (pull for reads, push for
	 * the upload), anonymously */
	CHECK_MSG(strstr((char *)log.data, "GET /token?service=prewarm-test&scope=repository%3Abearer%2Fpolicy%3Apull auth=none"),
	          "token log: %s", (char *)log.data);
	CHECK_MSG(strstr((char *)log.data, "scope=repository%3Abearer%2Fpolicy%3Apull%20repository%3Abearer%2Fpolicy%3Apush auth=none"),
	          "token log: %s", (char *)log.data);
	CHECK(!strstr((char *)log.data, "auth=basic"));
	pw_oci_client_free(c);
	/* with credentials configured for the registry, the token request carries them */
	pw_oci_creds *cr = NULL;
	CHECK_OK(pw_oci_creds_new(&cr));
	CHECK_OK(pw_oci_creds_set(cr, g_silly.host, "tokenuser", "tokenpass"));
	pw_oci_client_opts o2 = { .sources = s, .creds = cr, .no_retry = true };
	CHECK_OK(pw_oci_client_new(&c, &o2));
	pw_oci_creds_free(cr);
	snprintf(dest, sizeof dest, "%s/bearer2.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref, dest, NULL));
	CHECK_OK(pw_file_read(g_silly.token_log, 0, &log));
	CHECK_MSG(strstr((char *)log.data, "scope=repository%3Abearer%2Fpolicy%3Apull auth=basic"), "token log: %s", (char *)log.data);
	CHECK(!strstr((char *)log.data, "tokenpass"));
	pw_oci_client_free(c);
	pw_oci_sources_free(s);
	pw_buf_free(&wasm);
	pw_buf_free(&log);
}

static void test_not_wasm_and_limits(void)
{
	pw_oci_client *c = NULL;
	pw_oci_ref *r = NULL;
	char ref[256], dest[600], body[1024], ldg[PW_OCI_DIGEST_LEN];
	const char *junk = "this is not a wasm module";
	NEED(&g_plain, "plain", "");
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "%s/prewarm/notwasm:v1", g_plain.host);
	CHECK_OK(pw_oci_ref_parse(&r, ref));
	CHECK_OK(pw_oci_blob_push(c, r, "{}", 2, NULL));
	CHECK_OK(pw_oci_blob_push(c, r, junk, strlen(junk), NULL));
	CHECK_OK(pw_oci_blob_exists(c, r, PW_OCI_EMPTY_DIGEST));
	char h[PW_SHA256_HEX_LEN + 1];
	pw_sha256_hex(junk, strlen(junk), h);
	snprintf(ldg, sizeof ldg, "sha256:%s", h);
	snprintf(body, sizeof body, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":2},"
	         "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
	         PW_OCI_MT_MANIFEST, PW_OCI_MT_WASM_CONFIG, PW_OCI_EMPTY_DIGEST, PW_OCI_MT_WASM_LAYER, ldg, strlen(junk));
	CHECK_OK(pw_oci_manifest_put(c, r, PW_OCI_MT_MANIFEST, body, strlen(body), NULL));
	snprintf(dest, sizeof dest, "%s/notwasm.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "not a WebAssembly module"), "message: %s", pw_error_last());
	CHECK(!pw_path_exists(dest));
	pw_oci_client_free(c);
	/* a manifest over the limit */
	pw_oci_client_opts o = { .max_manifest = 64 };
	pw_oci_sources *s = NULL;
	CHECK_OK(pw_oci_sources_load(&s, g_plain.sources));
	o.sources = s;
	CHECK_OK(pw_oci_client_new(&c, &o));
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "manifest limit"), "message: %s", pw_error_last());
	pw_oci_client_free(c);
	pw_oci_sources_free(s);
	pw_oci_ref_free(r);
}

static void test_index_picks_wasm(void)
{
	pw_oci_client *c = NULL;
	pw_oci_ref *r = NULL, *ir = NULL;
	pw_buf wasm = PW_BUF_INIT, man = PW_BUF_INIT;
	char ref[256], dest[600], dg[PW_OCI_DIGEST_LEN], mt[80], body[1024];
	NEED(&g_plain, "plain", "");
	CHECK_OK(read_fixture(&wasm));
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "%s/prewarm/indexed:entry", g_plain.host);
	CHECK_OK(pw_oci_push_wasm(c, ref, wasm.data, wasm.len, NULL, 0, dg));
	CHECK_OK(pw_oci_ref_parse(&r, ref));
	CHECK_OK(pw_oci_manifest_get(c, r, &man, mt, NULL));
	snprintf(body, sizeof body, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
	         "\"platform\":{\"os\":\"wasip1\",\"architecture\":\"wasm\"}}]}", PW_OCI_MT_INDEX, PW_OCI_MT_MANIFEST, dg, man.len);
	CHECK_OK(pw_oci_ref_with(&ir, r, "index", NULL));
	CHECK_OK(pw_oci_manifest_put(c, ir, PW_OCI_MT_INDEX, body, strlen(body), NULL));
	snprintf(ref, sizeof ref, "%s/prewarm/indexed:index", g_plain.host);
	snprintf(dest, sizeof dest, "%s/indexed.wasm", pw_test_tmpdir());
	pw_oci_pulled res;
	CHECK_OK(pw_oci_pull(c, ref, dest, &res));
	CHECK_STR(res.manifest_digest, dg);
	pw_oci_client_free(c);
	pw_oci_ref_free(r);
	pw_oci_ref_free(ir);
	pw_buf_free(&wasm);
	pw_buf_free(&man);
}

static void test_pull_many(void)
{
	pw_oci_client *c = NULL;
	pw_buf wasm = PW_BUF_INIT;
	pw_oci_pull_job jobs[9];
	char refs[9][256], dests[9][600];
	NEED(&g_plain, "plain", "");
	CHECK_OK(read_fixture(&wasm));
	CHECK_OK(client_for(&g_plain, &c, false));
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 8; i++) {
		pw_buf m = PW_BUF_INIT;
		pw_buf_append(&m, wasm.data, wasm.len);
		char sec[16];
		snprintf(sec, sizeof sec, "%c%cpolicy%d", 0, 7, i);  /* a distinct custom section each */
		pw_buf_append(&m, sec, 9);
		snprintf(refs[i], sizeof refs[i], "%s/many/p%d:v1", g_plain.host, i);
		CHECK_OK(pw_oci_push_wasm(c, refs[i], m.data, m.len, NULL, 0, NULL));
		pw_buf_free(&m);
		snprintf(dests[i], sizeof dests[i], "%s/many%d.wasm", pw_test_tmpdir(), i);
		jobs[i].ref = refs[i];
		jobs[i].dest = dests[i];
	}
	CHECK_OK(pw_oci_pull_many(c, jobs, 8, 3));
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(jobs[i].rc == 0, "job %d: %s", i, jobs[i].error);
		CHECK(jobs[i].result.downloaded && pw_path_exists(dests[i]));
	}
	/* one bad job among good ones: its own error, the others succeed */
	snprintf(refs[8], sizeof refs[8], "%s/many/missing:v1", g_plain.host);
	snprintf(dests[8], sizeof dests[8], "%s/missing.wasm", pw_test_tmpdir());
	jobs[8].ref = refs[8];
	jobs[8].dest = dests[8];
	CHECK_INT(pw_oci_pull_many(c, jobs, 9, 4), PW_ENOTFOUND);
	CHECK_INT(jobs[8].rc, PW_ENOTFOUND);
	CHECK(strstr(jobs[8].error, "many/missing:v1"));
	CHECK_INT(jobs[0].rc, 0);
	CHECK(!jobs[0].result.downloaded);
	pw_oci_client_free(c);
	pw_buf_free(&wasm);
}

static void test_file_and_http_refs(void)
{
	pw_oci_client *c = NULL;
	char ref[700], dest[600];
	pw_oci_pulled res;
	NEED(&g_plain, "plain", "");
	CHECK_OK(client_for(&g_plain, &c, false));
	snprintf(ref, sizeof ref, "file://%s", pw_test_fixture("oci_policy.wasm"));
	snprintf(dest, sizeof dest, "%s/fromfile.wasm", pw_test_tmpdir());
	CHECK_OK(pw_oci_pull(c, ref, dest, &res));
	CHECK(res.downloaded && pw_oci_digest_valid(res.digest));
	/* http:// URL: the registry's blob URL is a plain HTTP download */
	snprintf(ref, sizeof ref, "%s/v2/prewarm/policy/blobs/%s", g_plain.url, res.digest);
	snprintf(dest, sizeof dest, "%s/fromhttp.wasm", pw_test_tmpdir());
	pw_oci_pulled res2;
	CHECK_OK(pw_oci_pull(c, ref, dest, &res2));
	CHECK_STR(res2.digest, res.digest);
	pw_oci_client_free(c);
}

static void test_registry_down(void)
{
	pw_oci_client *c = NULL;
	reg r;
	char ref[256], dest[600];
	memset(&r, 0, sizeof r);
	NEED(&r, "down", "");
	CHECK_OK(pw_test_registry_stop(&r));
	CHECK_OK(client_for(&r, &c, false));
	snprintf(ref, sizeof ref, "%s/x/y:v1", r.host);
	snprintf(dest, sizeof dest, "%s/down.wasm", pw_test_tmpdir());
	CHECK_INT(pw_oci_pull(c, ref, dest, NULL), PW_ENETWORK);
	CHECK_MSG(strstr(pw_error_last(), r.host) && strstr(pw_error_last(), "after retries"), "message: %s", pw_error_last());
	pw_oci_client_free(c);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_roundtrip_plain_http), PW_TEST(test_roundtrip_tls_auth), PW_TEST(test_wrong_password_401),
		PW_TEST(test_unknown_ca), PW_TEST(test_unknown_tag_404), PW_TEST(test_altered_blob_mismatch),
		PW_TEST(test_bearer_silly), PW_TEST(test_not_wasm_and_limits), PW_TEST(test_index_picks_wasm),
		PW_TEST(test_pull_many), PW_TEST(test_file_and_http_refs), PW_TEST(test_registry_down),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
