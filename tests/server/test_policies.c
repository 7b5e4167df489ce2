/*
 * Tests for policies.yml parsing: the accepted forms (every key, bare OCI references,
 * typed settings, aliases) and every rejection, each checked for a message that names
 * the policy and the key, since that message is all an operator sees of a bad deploy.
 */
#include <string.h>

#include <jansson.h>

#include "../harness.h"
#include "prewarm/server.h"
#include "prewarm/util.h"

static int parse(pw_policies **p, const char *yaml)
{
	return pw_policies_parse(p, yaml, strlen(yaml), "test.yml");
}

static int has(const char *needle)
{
	return !needle || strstr(pw_error_last(), needle) != NULL;
}

/* Expects a failure with `code` whose message contains every non-NULL needle. */
#define CHECK_REJECT(yaml, code, n1, n2) do { pw_policies *_p = NULL; \
	int _rc = parse(&_p, yaml); \
	CHECK_MSG(_rc == (code), "expected %d, got %d (%s) for: %s", code, _rc, pw_error_last(), yaml); \
	CHECK(_p == NULL); \
	CHECK_MSG(has(n1), "message \"%s\" lacks \"%s\"", pw_error_last(), (n1) ? (const char *)(n1) : ""); \
	CHECK_MSG(has(n2), "message \"%s\" lacks \"%s\"", pw_error_last(), (n2) ? (const char *)(n2) : ""); \
} while (0)

static void test_full_entry(void)
{
	pw_policies *p = NULL;
	CHECK_OK(parse(&p,
		"psp:\n"
		"  module: ghcr.io/kubewarden/policies/psp-capabilities:v0.1.9\n"
		"  policyMode: monitor\n"
		"  allowedToMutate: true\n"
		"  message: nope\n"
		"  timeoutEvalSeconds: 5\n"
		"  settings:\n"
		"    caps: [CHOWN, \"KILL\"]\n"
		"    n: 3\n"
		"    f: 1.5\n"
		"    b: false\n"
		"    s: \"true\"\n"
		"    z: ~\n"
		"  contextAwareResources:\n"
		"    - {apiVersion: v1, kind: Namespace}\n"
		"  hostCapabilities: [\"oci/*\"]\n"
		"local:\n"
		"  module: file:///opt/p.wasm\n"));
	CHECK_INT(p->n, 2);
	const pw_policy_conf *c = &p->items[0];
	CHECK_STR(c->id, "psp");
	CHECK_STR(c->module, "registry://ghcr.io/kubewarden/policies/psp-capabilities:v0.1.9");
	CHECK_INT(c->scheme, PW_MODULE_REGISTRY);
	CHECK_INT(c->mode, PW_POLICY_MONITOR);
	CHECK(c->allowed_to_mutate);
	CHECK_STR(c->message, "nope");
	CHECK(c->timeout_seconds == 5);
	CHECK_STR(c->settings_json, "{\"b\":false,\"caps\":[\"CHOWN\",\"KILL\"],\"f\":1.5,\"n\":3,\"s\":\"true\",\"z\":null}");
	CHECK_INT(c->ncontext_resources, 1);
	CHECK_STR(c->context_resources[0].api_version, "v1");
	CHECK_STR(c->context_resources[0].kind, "Namespace");
	CHECK_INT(c->nhost_capabilities, 1);
	CHECK_STR(c->host_capabilities[0], "oci/*");
	c = &p->items[1];
	CHECK_STR(c->id, "local");
	CHECK_INT(c->scheme, PW_MODULE_FILE);
	CHECK_STR(c->settings_json, "{}");
	CHECK_INT(c->mode, PW_POLICY_PROTECT);
	CHECK(!c->allowed_to_mutate);
	CHECK(c->message == NULL);
	CHECK(pw_policies_find(p, "local") == c);
	CHECK(pw_policies_find(p, "nope") == NULL);
	CHECK(pw_policy_conf_equal(c, c));
	CHECK(!pw_policy_conf_equal(&p->items[0], c));
	pw_policies_free(p);
}

static void test_empty_map_and_aliases(void)
{
	pw_policies *p = NULL;
	CHECK_OK(parse(&p, "{}\n"));
	CHECK_INT(p->n, 0);
	pw_policies_free(p);
	CHECK_OK(parse(&p, "a: {module: 'https://h/a.wasm', settings: &s {k: [1]}}\n"
	                   "b: {module: 'http://h:8080/b.wasm', settings: *s}\n"));
	CHECK_INT(p->n, 2);
	CHECK_STR(p->items[1].settings_json, "{\"k\":[1]}");
	CHECK_INT(p->items[1].scheme, PW_MODULE_HTTP);
	pw_policies_free(p);
	pw_policies_free(NULL);
}

static void test_settings_change_is_visible(void)
{
	pw_policies *a = NULL, *b = NULL;
	CHECK_OK(parse(&a, "p: {module: file:///x.wasm, settings: {n: 1}}\n"));
	CHECK_OK(parse(&b, "p: {module: file:///x.wasm, settings: {n: 2}}\n"));
	CHECK(!pw_policy_conf_equal(&a->items[0], &b->items[0]));
	pw_policies_free(b);
	CHECK_OK(parse(&b, "p:\n  settings:\n    n: 1\n  module: file:///x.wasm\n"));
	CHECK(pw_policy_conf_equal(&a->items[0], &b->items[0]));
	pw_policies_free(a);
	pw_policies_free(b);
}

static void test_rejections(void)
{
	CHECK_REJECT("p:\n  module: file:///x.wasm\n  setings: {}\n", PW_EINVALID, "\"p\"", "unknown key \"setings\"");
	CHECK_REJECT("a/b: {module: file:///x.wasm}\n", PW_EINVALID, "a/b", "'/'");
	CHECK_REJECT("p: {settings: {}}\n", PW_EINVALID, "\"p\"", "missing key \"module\"");
	CHECK_REJECT("p: {module: 3}\n", PW_EINVALID, "\"p\"", "\"module\" must be a string");
	CHECK_REJECT("p: {module: 'ftp://h/x.wasm'}\n", PW_EUNSUPPORTED, "\"p\"", "scheme");
	CHECK_REJECT("p: {module: 'file://rel.wasm'}\n", PW_EINVALID, "\"p\"", "absolute path");
	CHECK_REJECT("p: {module: 'registry://host'}\n", PW_EINVALID, "\"p\"", "registry://host");
	CHECK_REJECT("p: {module: 'justaword'}\n", PW_EINVALID, "\"p\"", "not a URL");
	CHECK_REJECT("p: {module: file:///x.wasm, policyMode: enforce}\n", PW_EINVALID, "\"policyMode\"", "enforce");
	CHECK_REJECT("p: {module: file:///x.wasm, allowedToMutate: 'yes'}\n", PW_EINVALID, "\"p\"", "\"allowedToMutate\"");
	CHECK_REJECT("p: {module: file:///x.wasm, settings: [1]}\n", PW_EINVALID, "\"p\"", "\"settings\" must be a mapping");
	CHECK_REJECT("p: {module: file:///x.wasm, timeoutEvalSeconds: 0}\n", PW_EINVALID, "\"p\"", "timeoutEvalSeconds");
	CHECK_REJECT("p: {module: file:///x.wasm, contextAwareResources: [{kind: Pod}]}\n", PW_EINVALID, "\"p\"", "contextAwareResources");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: [1]}\n", PW_EINVALID, "\"p\"", "hostCapabilities");
	CHECK_REJECT("g:\n  expression: 'a() || b()'\n  policies:\n    a: {module: file:///a.wasm}\n", PW_EUNSUPPORTED,
	             "\"g\"", "policy groups are not supported");
	CHECK_REJECT("p: {module: file:///x.wasm}\np: {module: file:///y.wasm}\n", PW_EINVALID, "line 2", "duplicate key \"p\"");
	CHECK_REJECT("p: {module: [1}\n", PW_EINVALID, "test.yml: line 1", NULL);
	CHECK_REJECT("", PW_EINVALID, "empty", NULL);
	CHECK_REJECT("- a\n- b\n", PW_EINVALID, "expected a mapping", "a list");
	CHECK_REJECT("p: 3\n", PW_EINVALID, "\"p\"", "expected a mapping");
	CHECK_REJECT("--- {}\n--- {}\n", PW_EINVALID, "more than one", NULL);
	CHECK_REJECT("p: &r {module: file:///x.wasm, settings: {self: *r}}\n", PW_EINVALID, "recursive", NULL);
}

static void test_alias_bomb_is_bounded(void)
{
	pw_buf b = PW_BUF_INIT;
	pw_buf_puts(&b, "p:\n  module: file:///x.wasm\n  settings:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		pw_buf_printf(&b, "    l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
		              i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	pw_policies *p = NULL;
	int rc = pw_policies_parse(&p, (const char *)b.data, b.len, "bomb.yml");
	pw_buf_free(&b);
	CHECK_INT(rc, PW_EINVALID);
	CHECK(strstr(pw_error_last(), "too large") != NULL);
}

static void test_load_file(void)
{
	char path[4096];
	pw_policies *p = NULL;
	snprintf(path, sizeof path, "%s/policies.yml", pw_test_tmpdir());
	CHECK_INT(pw_policies_load(&p, path), PW_ENOTFOUND);
	CHECK(strstr(pw_error_last(), path) != NULL);
	const char *y = "x: {module: file:///x.wasm}\n";
	CHECK_OK(pw_file_write_atomic(path, y, strlen(y), 0644));
	CHECK_OK(pw_policies_load(&p, path));
	CHECK_INT(p->n, 1);
	pw_policies_free(p);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_full_entry),
		PW_TEST(test_empty_map_and_aliases),
		PW_TEST(test_settings_change_is_visible),
		PW_TEST(test_rejections),
		PW_TEST(test_alias_bomb_is_bounded),
		PW_TEST(test_load_file),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
