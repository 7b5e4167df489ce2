/* Unit tests of src/util: buffers, hashing, base64, sizes, atomic files, the pool. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "prewarm/util.h"

static void test_buf(void)
{
	pw_buf b = PW_BUF_INIT;
	CHECK_OK(pw_buf_puts(&b, "abc"));
	CHECK_OK(pw_buf_printf(&b, "-%d-%s", 42, "x"));
	CHECK_STR((char *)b.data, "abc-42-x");
	CHECK_INT(b.len, 8);
	for (int i = 0; i < 10000; i++)
		CHECK_OK(pw_buf_append(&b, "0123456789", 10));
	CHECK_INT(b.len, 100008);
	CHECK_INT(b.data[b.len], 0);
	size_t n;
	uint8_t *p = pw_buf_detach(&b, &n);
	CHECK_INT(n, 100008);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
	pw_buf_free(&b);
	pw_buf_free(NULL);
}

static void test_sha256(void)
{
	char hex[65];
	/* FIPS 180-2 test vectors */
	pw_sha256_hex("abc", 3, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	pw_sha256_hex("", 0, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	pw_sha256_ctx *c = pw_sha256_new();
	uint8_t d[32];
	pw_sha256_update(c, "a", 1);
	pw_sha256_update(c, "bc", 2);
	pw_sha256_final(c, d);
	pw_hex_encode(d, 32, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK(pw_is_sha256_hex(hex));
	CHECK(!pw_is_sha256_hex("abc"));
	hex[3] = 'G';
	CHECK(!pw_is_sha256_hex(hex));
	uint8_t back[32];
	CHECK(pw_hex_decode(hex, back, 32) == PW_EINVALID);
	/* RFC 4231 test case 2 */
	pw_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	CHECK(pw_secure_streq("abc", "abc"));
	CHECK(!pw_secure_streq("abc", "abd"));
	CHECK(!pw_secure_streq("abc", "abcd"));
}

static void test_base64(void)
{
	char *s = pw_base64_encode("user:pass", 9);
	CHECK_STR(s, "dXNlcjpwYXNz");
	uint8_t *out;
	size_t n;
	CHECK_OK(pw_base64_decode(s, &out, &n));
	CHECK_INT(n, 9);
	CHECK(memcmp(out, "user:pass", 9) == 0);
	free(out);
	free(s);
	CHECK_OK(pw_base64_decode("YQ==", &out, &n));
	CHECK_INT(n, 1);
	free(out);
	CHECK(pw_base64_decode("abc", &out, &n) == PW_EINVALID);
	CHECK(pw_base64_decode("a$c=", &out, &n) == PW_EINVALID);
}

static void test_sizes(void)
{
	uint64_t v;
	double d;
	CHECK_OK(pw_parse_size("2GiB", &v));
	CHECK_INT(v, 2ull << 30);
	CHECK_OK(pw_parse_size("512M", &v));
	CHECK_INT(v, 512ull << 20);
	CHECK_OK(pw_parse_size("100", &v));
	CHECK_INT(v, 100);
	CHECK_OK(pw_parse_size("64k", &v));
	CHECK_INT(v, 65536);
	CHECK(pw_parse_size("12 apples", &v) == PW_EINVALID);
	CHECK(pw_parse_size("", &v) == PW_EINVALID);
	CHECK(pw_parse_size("-1", &v) == PW_EINVALID);
	CHECK_OK(pw_parse_duration("500ms", &d));
	CHECK(d > 0.499 && d < 0.501);
	CHECK_OK(pw_parse_duration("2", &d));
	CHECK(d == 2.0);
	CHECK(pw_parse_duration("2h", &d) == PW_EINVALID);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_atomic_write(void)
{
	const char *dir = pw_test_tmpdir();
	char path[4096], sub[4096];
	pw_buf b = PW_BUF_INIT;

	snprintf(path, sizeof path, "%s/file", dir);
	CHECK_OK(pw_file_write_atomic(path, "first", 5, 0644));
	CHECK_OK(pw_file_write_atomic(path, "second", 6, 0644));
	CHECK_OK(pw_file_read(path, 0, &b));
	CHECK_STR((char *)b.data, "second");
	CHECK_INT(count_entries(dir), 1);  /* no temp file left */
	pw_buf_free(&b);
	CHECK(pw_file_read(path, 3, &b) == PW_EINVALID);
	pw_buf_free(&b);
	snprintf(path, sizeof path, "%s/missing/file", dir);
	CHECK(pw_file_write_atomic(path, "x", 1, 0644) == PW_EIO);
	CHECK(strstr(pw_error_last(), "missing") != NULL);
	CHECK(pw_file_read(path, 0, &b) == PW_ENOTFOUND);
	snprintf(sub, sizeof sub, "%s/a/b/c", dir);
	CHECK_OK(pw_mkdirs(sub, 0755));
	CHECK(pw_path_exists(sub));
	snprintf(sub, sizeof sub, "%s/a", dir);
	CHECK_OK(pw_rmtree(sub));
	CHECK(!pw_path_exists(sub));
}

static int g_counter;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void bump(void *arg)
{
	pthread_mutex_lock(&g_mu);
	g_counter += (int)(intptr_t)arg;
	pthread_mutex_unlock(&g_mu);
}

static void test_pool(void)
{
	pw_pool *p;
	CHECK_OK(pw_pool_new(&p, 4, 1 << 20));
	for (int i = 1; i <= 1000; i++)
		CHECK_OK(pw_pool_submit(p, bump, (void *)(intptr_t)i));
	pw_pool_wait(p);
	CHECK_INT(g_counter, 500500);
	pw_pool_free(p);
	pw_pool_free(NULL);
	CHECK(pw_cpu_count() >= 1);
}

static void test_error_set_returns_code(void)
{
	pw_error_clear();
	CHECK_STR(pw_error_last(), "");
	CHECK_INT(pw_error_set(PW_EINVALID, "bad %s", "thing"), PW_EINVALID);
	CHECK_STR(pw_error_last(), "bad thing");
}

static void test_error_prefix_keeps_code(void)
{
	pw_error_set(PW_EINVALID, "bad %s", "thing");
	CHECK_INT(pw_error_prefix("loading %s", "x.wasm"), PW_EINVALID);
	CHECK_STR(pw_error_last(), "loading x.wasm: bad thing");
}

static void test_error_code_names(void)
{
	CHECK_STR(pw_error_code_str(PW_ENOTFOUND), "not found");
}

static void test_log_level_parse(void)
{
	CHECK_INT(pw_log_level_parse("warning"), PW_LOG_WARN);
	CHECK_INT(pw_log_level_parse("nope"), -1);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_buf), PW_TEST(test_sha256), PW_TEST(test_base64), PW_TEST(test_sizes),
		PW_TEST(test_atomic_write), PW_TEST(test_pool),
		PW_TEST(test_error_set_returns_code), PW_TEST(test_error_prefix_keeps_code),
		PW_TEST(test_error_code_names), PW_TEST(test_log_level_parse),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
