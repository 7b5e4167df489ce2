/*
 * The registry tier of the artifact cache against real registries (docker-registry over
 * HTTP, and HTTPS + htpasswd with a throwaway CA), real compiles and real artifacts: a warm
 * registry fills an empty local directory without compiling; every failure (wrong
 * password, unknown CA, registry down, a layer altered in the registry's storage,
 * annotations naming another engine, an unsigned entry when a key is required) ends in a
 * compile, a warning and the right counter, and the run succeeds; async publishing never
 * holds the caller back.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "prewarm/cache.h"
#include "prewarm/engine.h"
#include "prewarm/oci.h"

typedef pw_test_registry reg;

static reg g_plain, g_tls;
static pw_engine *g_engine;

#define NEED(r, name, flags) PW_TEST_NEED_REGISTRY(r, name, flags)
#define NEED_ENGINE() do { if (!g_engine && pw_engine_new(&g_engine, NULL) < 0) { pw_test_skip("no engine: %s", pw_error_last()); return; } } while (0)

/* A module of its own per test (a custom section with the name), so keys never collide. */
static void module_for(const char *name, pw_buf *out)
{
	pw_buf_clear(out);
	if (pw_file_read(pw_test_fixture("oci_policy.wasm"), 0, out) < 0)
		return;
	uint8_t sec[80];
	size_t n = strlen(name);
	sec[0] = 0;
	sec[1] = (uint8_t)(n + 1);
	sec[2] = (uint8_t)n;
	memcpy(sec + 3, name, n);
	pw_buf_append(out, sec, n + 3);
}

typedef struct setup {
	const char *repo_suffix;
	reg *r;
	bool with_creds, with_ca, insecure, async, read_only;
	const char *creds_path;   /* overrides */
	const char *key_file;     /* signing */
	const char *local_dir;    /* NULL = no local tier */
} setup;

static int open_cache(const setup *s, pw_cache **out, pw_cache_backend **regb)
{
	char repo[256];
	pw_cache_opts co = { .signing_key_file = s->key_file };
	pw_cache_backend *b = NULL;
	int rc = pw_cache_new(out, &co);
	if (rc < 0)
		return rc;
	if (s->local_dir) {
		if ((rc = pw_cache_local_new(&b, s->local_dir, NULL)) < 0 || (rc = pw_cache_add_backend(*out, b)) < 0)
			return rc;
	}
	snprintf(repo, sizeof repo, "%s/prewarm-cache%s", s->r->host, s->repo_suffix ? s->repo_suffix : "");
	pw_registry_cache_opts ro = {
		.repository = repo, .credentials = s->creds_path ? s->creds_path : (s->with_creds ? s->r->docker : NULL),
		.ca_file = s->with_ca ? s->r->ca : NULL, .insecure = s->insecure, .read_only = s->read_only,
		.async_put = s->async, .timeout = 20, .connect_timeout = 5,
	};
	if ((rc = pw_cache_registry_new(&b, &ro)) < 0)
		return rc;
	if (regb)
		*regb = b;
	return pw_cache_add_backend(*out, b);
}

/* Looks the module up through the cache, loads the artifact and checks answer() == 42. */
static int get_and_run(pw_cache *c, const pw_buf *wasm, pw_cache_result *res)
{
	pw_buf art = PW_BUF_INIT;
	pw_artifact *a = NULL;
	pw_instance *inst = NULL;
	pw_artifact_info expect;
	pw_val v = 0;
	int rc = pw_cache_get_or_compile(c, g_engine, wasm->data, wasm->len, NULL, NULL, &art, res);
	if (rc == 0) {
		memset(&expect, 0, sizeof expect);
		expect.abi_version = PW_ARTIFACT_ABI_VERSION;
		memcpy(expect.engine_hash, pw_engine_hash(g_engine), PW_SHA256_HEX_LEN + 1);
		pw_sha256_hex(wasm->data, wasm->len, expect.wasm_sha256);
		rc = pw_artifact_load(&a, art.data, art.len, &expect, NULL);
	}
	if (rc == 0)
		rc = pw_instance_new(&inst, a, NULL);
	if (rc == 0)
		rc = pw_instance_call(inst, "answer", NULL, 0, &v, 1);
	if (rc == 0 && v != 42)
		rc = pw_error_set(PW_ERROR, "answer() returned %u", (unsigned)v);
	pw_instance_free(inst);
	pw_artifact_free(a);
	pw_buf_free(&art);
	return rc;
}

static const char *local_dir(const char *name)
{
	static char p[8][600];
	static int i;
	char *s = p[i++ % 8];
	snprintf(s, 600, "%s/local-%s", pw_test_tmpdir(), name);
	return s;
}

/* Publishes module `name` through a cache with only the registry tier (sync). */
static int publish_one(setup s, const pw_buf *wasm)
{
	pw_cache *c = NULL;
	pw_cache_result res;
	s.local_dir = NULL;
	s.async = false;
	int rc = open_cache(&s, &c, NULL);
	if (rc == 0)
		rc = get_and_run(c, wasm, &res);
	pw_cache_stats st;
	if (rc == 0) {
		pw_cache_get_stats(c, &st);
		if (st.tier[0].puts != 1)
			rc = pw_error_set(PW_ERROR, "publish: %llu puts", (unsigned long long)st.tier[0].puts);
	}
	pw_cache_free(c);
	return rc;
}

static void test_warm_registry_no_compile(void)
{
	pw_buf wasm = PW_BUF_INIT;
	pw_cache *c = NULL;
	pw_cache_result res;
	pw_cache_stats st;
	NEED(&g_plain, "plain", "");
	NEED_ENGINE();
	module_for("warm", &wasm);
	setup s = { .r = &g_plain, .insecure = true, .local_dir = local_dir("warm-a") };
	/* first replica: compiles, publishes to both tiers */
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_INT(res.tier, -1);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	CHECK_INT(st.tier[1].puts, 1);
	pw_cache_free(c);
	/* a new replica with an empty local dir: registry hit, nothing compiled, local filled */
	s.local_dir = local_dir("warm-b");
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_STR(res.tier_name, "registry");
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 0);
	CHECK_INT(st.tier[1].hits, 1);
	CHECK_INT(st.tier[0].misses, 1);
	CHECK_INT(st.tier[0].puts, 1);
	CHECK_INT(st.tier[1].rejected, 0);
	pw_cache_free(c);
	/* and the local tier alone now serves it */
	pw_cache_opts co = { 0 };
	pw_cache_backend *lb = NULL;
	CHECK_OK(pw_cache_new(&c, &co));
	CHECK_OK(pw_cache_local_new(&lb, s.local_dir, NULL));
	CHECK_OK(pw_cache_add_backend(c, lb));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_STR(res.tier_name, "local");
	pw_cache_free(c);
	pw_buf_free(&wasm);
}

static void test_tls_auth_secret_dir(void)
{
	pw_buf wasm = PW_BUF_INIT;
	pw_cache *c = NULL;
	pw_cache_result res;
	char sd[700], p[800];
	NEED(&g_tls, "tls", "--tls --auth");
	NEED_ENGINE();
	module_for("tls", &wasm);
	setup s = { .r = &g_tls, .with_creds = true, .with_ca = true };
	CHECK_OK(publish_one(s, &wasm));
	/* a mounted Secret (username/password files) instead of config.json */
	snprintf(sd, sizeof sd, "%s/secret", pw_test_tmpdir());
	CHECK_OK(pw_mkdirs(sd, 0700));
	snprintf(p, sizeof p, "%s/username", sd);
	CHECK_OK(pw_file_write_atomic(p, g_tls.user, strlen(g_tls.user), 0600));
	snprintf(p, sizeof p, "%s/password", sd);
	CHECK_OK(pw_file_write_atomic(p, g_tls.pass, strlen(g_tls.pass), 0600));
	s.creds_path = sd;
	s.local_dir = local_dir("tls");
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_STR(res.tier_name, "registry");
	pw_cache_free(c);
	pw_buf_free(&wasm);
}

/* Runs one lookup with a broken registry tier: must compile, count, mark failed. */
static void expect_fallback(setup s, const pw_buf *wasm, int want_rejected)
{
	pw_cache *c = NULL;
	pw_cache_result res;
	pw_cache_stats st;
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, wasm, &res));
	CHECK_INT(res.tier, -1);
	pw_cache_get_stats(c, &st);
	unsigned ri = s.local_dir ? 1 : 0;
	CHECK_INT(st.compiles, 1);
	CHECK_STR(st.tier[ri].name, "registry");
	if (want_rejected) {
		CHECK_INT(st.tier[ri].rejected, 1);
	} else {
		CHECK_INT(st.tier[ri].errors, 1);
		CHECK(st.tier[ri].failed);
	}
	pw_cache_free(c);
}

static void test_wrong_password(void)
{
	pw_buf wasm = PW_BUF_INIT;
	char d[700], p[800];
	NEED(&g_tls, "tls", "--tls --auth");
	NEED_ENGINE();
	module_for("wrongpw", &wasm);
	snprintf(d, sizeof d, "%s/wrongcfg", pw_test_tmpdir());
	CHECK_OK(pw_mkdirs(d, 0700));
	pw_buf up = PW_BUF_INIT, js = PW_BUF_INIT;
	pw_buf_printf(&up, "%s:wrong", g_tls.user);
	char *b64 = pw_base64_encode(up.data, up.len);
	pw_buf_printf(&js, "{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}", g_tls.host, b64);
	free(b64);
	snprintf(p, sizeof p, "%s/config.json", d);
	CHECK_OK(pw_file_write_atomic(p, js.data, js.len, 0600));
	setup s = { .r = &g_tls, .with_ca = true, .creds_path = p, .local_dir = local_dir("wrongpw") };
	expect_fallback(s, &wasm, 0);
	pw_buf_free(&up);
	pw_buf_free(&js);
	pw_buf_free(&wasm);
}

static void test_unknown_ca(void)
{
	pw_buf wasm = PW_BUF_INIT;
	NEED(&g_tls, "tls", "--tls --auth");
	NEED_ENGINE();
	module_for("unknownca", &wasm);
	setup s = { .r = &g_tls, .with_creds = true, .with_ca = false, .local_dir = local_dir("ca") };
	expect_fallback(s, &wasm, 0);
	pw_buf_free(&wasm);
}

static void test_registry_down(void)
{
	pw_buf wasm = PW_BUF_INIT;
	reg r;
	memset(&r, 0, sizeof r);
	NEED(&r, "down", "");
	NEED_ENGINE();
	CHECK_OK(pw_test_registry_stop(&r));
	module_for("down", &wasm);
	setup s = { .r = &r, .insecure = true, .local_dir = local_dir("down") };
	expect_fallback(s, &wasm, 0);
	pw_buf_free(&wasm);
}

/* One run, two modules: the registry serves the first, then stops: the second compiles,
 * the tier is marked failed with one error counted, and the run goes on. */
static void test_registry_stopped_mid_run(void)
{
	pw_buf w1 = PW_BUF_INIT, w2 = PW_BUF_INIT;
	pw_cache *c = NULL;
	pw_cache_result res;
	pw_cache_stats st;
	reg r;
	memset(&r, 0, sizeof r);
	NEED(&r, "midrun", "");
	NEED_ENGINE();
	module_for("midrun1", &w1);
	module_for("midrun2", &w2);
	setup s = { .r = &r, .insecure = true };
	CHECK_OK(publish_one(s, &w1));
	s.local_dir = local_dir("midrun");
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &w1, &res));
	CHECK_STR(res.tier_name, "registry");
	CHECK_OK(pw_test_registry_stop(&r));
	CHECK_OK(get_and_run(c, &w2, &res));
	CHECK_INT(res.tier, -1);
	pw_cache_get_stats(c, &st);
	CHECK_INT(st.compiles, 1);
	CHECK_INT(st.tier[1].hits, 1);
	CHECK_INT(st.tier[1].errors, 1);
	CHECK(st.tier[1].failed);
	pw_cache_free(c);
	pw_buf_free(&w1);
	pw_buf_free(&w2);
}

static void test_altered_layer(void)
{
	pw_buf wasm = PW_BUF_INIT, man = PW_BUF_INIT;
	pw_oci_client *oc = NULL;
	pw_oci_ref *r = NULL;
	pw_oci_manifest *m = NULL;
	pw_oci_sources *src = NULL;
	char ref[400], tag[128], h[PW_SHA256_HEX_LEN + 1], data[1200];
	NEED(&g_plain, "plain", "");
	NEED_ENGINE();
	module_for("altered", &wasm);
	setup s = { .r = &g_plain, .insecure = true };
	CHECK_OK(publish_one(s, &wasm));
	/* find the layer in the registry's storage and flip a byte */
	pw_sha256_hex(wasm.data, wasm.len, h);
	pw_cache_registry_tag(pw_engine_hash(g_engine), h, tag);
	snprintf(ref, sizeof ref, "%s/prewarm-cache:%s", g_plain.host, tag);
	CHECK_OK(pw_oci_sources_new(&src));
	CHECK_OK(pw_oci_sources_add_insecure(src, g_plain.host));
	pw_oci_client_opts co = { .sources = src };
	CHECK_OK(pw_oci_client_new(&oc, &co));
	CHECK_OK(pw_oci_ref_parse(&r, ref));
	CHECK_OK(pw_oci_manifest_get(oc, r, &man, NULL, NULL));
	CHECK_OK(pw_oci_manifest_parse(&m, man.data, man.len, NULL));
	CHECK_STR(m->artifact_type, PW_CACHE_ARTIFACT_TYPE);
	CHECK_STR(m->layers[0].media_type, PW_CACHE_LAYER_TYPE);
	snprintf(data, sizeof data, "%s/blobs/sha256/%.2s/%s/data", g_plain.storage, m->layers[0].digest + 7,
	         m->layers[0].digest + 7);
	FILE *f = fopen(data, "r+b");
	CHECK_MSG(f != NULL, "no blob at %s", data);
	fseek(f, 20, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, 20, SEEK_SET);
	fputc(ch ^ 0xff, f);
	fclose(f);
	/* a replica: refuses the entry, compiles, publishes a good one again */
	s.local_dir = local_dir("altered");
	expect_fallback(s, &wasm, 1);
	/* the registry holds a good entry again: a fresh replica gets it */
	pw_cache *c = NULL;
	pw_cache_result res;
	s.local_dir = local_dir("altered2");
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_STR(res.tier_name, "registry");
	pw_cache_free(c);
	pw_oci_manifest_free(m);
	pw_oci_ref_free(r);
	pw_oci_client_free(oc);
	pw_oci_sources_free(src);
	pw_buf_free(&man);
	pw_buf_free(&wasm);
}

static void test_annotations_edited(void)
{
	pw_buf wasm = PW_BUF_INIT, man = PW_BUF_INIT;
	pw_oci_client *oc = NULL;
	pw_oci_ref *r = NULL;
	pw_oci_sources *src = NULL;
	char ref[400], tag[128], h[PW_SHA256_HEX_LEN + 1];
	NEED(&g_plain, "plain", "");
	NEED_ENGINE();
	module_for("edited", &wasm);
	setup s = { .r = &g_plain, .insecure = true };
	CHECK_OK(publish_one(s, &wasm));
	pw_sha256_hex(wasm.data, wasm.len, h);
	pw_cache_registry_tag(pw_engine_hash(g_engine), h, tag);
	snprintf(ref, sizeof ref, "%s/prewarm-cache:%s", g_plain.host, tag);
	CHECK_OK(pw_oci_sources_new(&src));
	CHECK_OK(pw_oci_sources_add_insecure(src, g_plain.host));
	pw_oci_client_opts co = { .sources = src };
	CHECK_OK(pw_oci_client_new(&oc, &co));
	CHECK_OK(pw_oci_ref_parse(&r, ref));
	CHECK_OK(pw_oci_manifest_get(oc, r, &man, NULL, NULL));
	/* the engine hash annotation now names another engine */
	json_t *j = json_loadb((const char *)man.data, man.len, 0, NULL);
	CHECK(j != NULL);
	json_object_set_new(json_object_get(j, "annotations"), PW_CACHE_ANN_ENGINE,
	                    json_string("0000000000000000000000000000000000000000000000000000000000000000"));
	char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	CHECK_OK(pw_oci_manifest_put(oc, r, PW_OCI_MT_MANIFEST, body, strlen(body), NULL));
	free(body);
	s.local_dir = local_dir("edited");
	expect_fallback(s, &wasm, 1);
	pw_oci_ref_free(r);
	pw_oci_client_free(oc);
	pw_oci_sources_free(src);
	pw_buf_free(&man);
	pw_buf_free(&wasm);
}

static void test_unsigned_with_key(void)
{
	pw_buf wasm = PW_BUF_INIT;
	char key[700];
	NEED(&g_plain, "plain", "");
	NEED_ENGINE();
	module_for("unsigned", &wasm);
	setup s = { .r = &g_plain, .insecure = true, .repo_suffix = "-signing" };
	CHECK_OK(publish_one(s, &wasm));  /* no key: unsigned */
	snprintf(key, sizeof key, "%s/hmac.key", pw_test_tmpdir());
	CHECK_OK(pw_file_write_atomic(key, "a secret key for tests\n", 23, 0600));
	s.key_file = key;
	s.local_dir = local_dir("unsigned");
	expect_fallback(s, &wasm, 1);
	/* the compile republished a signed entry: a keyed replica now hits */
	pw_cache *c = NULL;
	pw_cache_result res;
	s.local_dir = local_dir("unsigned2");
	CHECK_OK(open_cache(&s, &c, NULL));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_STR(res.tier_name, "registry");
	pw_cache_free(c);
	pw_buf_free(&wasm);
}

static void test_read_only_never_pushes(void)
{
	pw_buf wasm = PW_BUF_INIT;
	pw_cache *c = NULL;
	pw_cache_backend *rb = NULL;
	pw_cache_result res;
	char h[PW_SHA256_HEX_LEN + 1];
	pw_cache_key k;
	NEED(&g_plain, "plain", "");
	NEED_ENGINE();
	module_for("readonly", &wasm);
	setup s = { .r = &g_plain, .insecure = true, .read_only = true };
	CHECK_OK(open_cache(&s, &c, &rb));
	CHECK_OK(get_and_run(c, &wasm, &res));
	CHECK_INT(res.tier, -1);
	pw_sha256_hex(wasm.data, wasm.len, h);
	memcpy(k.engine_hash, pw_engine_hash(g_engine), sizeof k.engine_hash);
	memcpy(k.wasm_sha256, h, sizeof k.wasm_sha256);
	CHECK_INT(pw_cache_backend_exists(rb, &k), PW_ENOTFOUND);
	pw_cache_free(c);
	pw_buf_free(&wasm);
}

/* A server that accepts connections (the kernel does) and never answers. */
static void test_async_publish_does_not_block(void)
{
	pw_buf wasm = PW_BUF_INIT;
	pw_cache *c = NULL;
	pw_cache_backend *rb = NULL;
	pw_cache_result res;
	char repo[128];
	NEED_ENGINE();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	snprintf(repo, sizeof repo, "127.0.0.1:%d/blackhole", ntohs(a.sin_port));
	module_for("blackhole", &wasm);
	CHECK_OK(pw_cache_new(&c, NULL));
	pw_registry_cache_opts ro = { .repository = repo, .insecure = true, .async_put = true,
	                              .publish_deadline = 0.5, .timeout = 600, .connect_timeout = 5 };
	CHECK_OK(pw_cache_registry_new(&rb, &ro));
	CHECK_OK(pw_cache_add_backend(c, rb));
	/* the lookup's GET hangs too: make it fail fast by a short first-request timeout? No:
	 * the lookup is what a start waits for, so its bound is the client timeout. Here we
	 * only look at the publish: put the entry directly. */
	pw_cache_entry e;
	memset(&e, 0, sizeof e);
	pw_sha256_hex(wasm.data, wasm.len, e.meta.key.wasm_sha256);
	memcpy(e.meta.key.engine_hash, pw_engine_hash(g_engine), sizeof e.meta.key.engine_hash);
	CHECK_OK(pw_engine_compile(g_engine, wasm.data, wasm.len, NULL, &e.artifact, NULL));
	pw_sha256_hex(e.artifact.data, e.artifact.len, e.meta.artifact_sha256);
	e.meta.artifact_size = e.artifact.len;
	CHECK_OK(pw_cache_backend_put(rb, &e));  /* returns at once: queued */
	CHECK_INT(pw_cache_registry_pending(rb), 1);
	pw_cache_free(c);           /* waits at most 0.5 s, then abandons the publish */
	close(fd);                  /* the publisher now fails and ends */
	for (int i = 0; i < 600 && pw_cache_registry_live_publishers() > 0; i++)
		usleep(100000);
	CHECK_INT(pw_cache_registry_live_publishers(), 0);
	(void)res;
	pw_cache_entry_free(&e);
	pw_buf_free(&wasm);
}

static void test_bad_options(void)
{
	pw_cache_backend *b = NULL;
	pw_registry_cache_opts o = { .repository = "127.0.0.1:5000/repo:tag" };
	CHECK_INT(pw_cache_registry_new(&b, &o), PW_EINVALID);
	CHECK(strstr(pw_error_last(), "registry cache repository 127.0.0.1:5000/repo:tag"));
	o.repository = "registry://";
	CHECK(pw_cache_registry_new(&b, &o) < 0);
	o.repository = "127.0.0.1:5000/repo";
	o.credentials = "/nonexistent/creds";
	CHECK(pw_cache_registry_new(&b, &o) < 0);
	CHECK(strstr(pw_error_last(), "registry cache credentials"));
	o.credentials = NULL;
	o.ca_file = "/nonexistent/ca.pem";
	CHECK(pw_cache_registry_new(&b, &o) < 0);
	CHECK(strstr(pw_error_last(), "registry cache CA file"));
	CHECK(b == NULL);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_bad_options), PW_TEST(test_warm_registry_no_compile), PW_TEST(test_tls_auth_secret_dir),
		PW_TEST(test_wrong_password), PW_TEST(test_unknown_ca), PW_TEST(test_registry_down),
		PW_TEST(test_registry_stopped_mid_run),
		PW_TEST(test_altered_layer), PW_TEST(test_annotations_edited), PW_TEST(test_unsigned_with_key),
		PW_TEST(test_read_only_never_pushes), PW_TEST(test_async_publish_does_not_block),
	};
	int rc = pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
	pw_engine_free(g_engine);
	return rc;
}
