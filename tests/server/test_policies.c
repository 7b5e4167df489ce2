/*
 * Tests for policies.yml parsing: the accepted forms (every key, bare OCI references,
 * typed settings, aliases, the controller's JSON with namespacedName, policy groups,
 * ignored keys, hostCapabilities patterns) and every rejection (group expressions too), each checked for a message that names
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
		"  executionMode: gatekeeper\n"
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
	CHECK_STR(c->execution_mode, "gatekeeper");
	c = &p->items[1];
	CHECK(c->execution_mode == NULL);
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
	CHECK_REJECT("p: {module: file:///x.wasm, executionMode: rego}\n", PW_EINVALID, "\"p\"", "executionMode");
	CHECK_REJECT("p: {module: file:///x.wasm, executionMode: [opa]}\n", PW_EINVALID, "\"p\"", "executionMode");
	CHECK_REJECT("p: {module: file:///x.wasm, contextAwareResources: [{kind: Pod}]}\n", PW_EINVALID, "\"p\"", "contextAwareResources");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: [1]}\n", PW_EINVALID, "\"p\"", "hostCapabilities");
	CHECK_REJECT("p: {module: file:///x.wasm}\np: {module: file:///y.wasm}\n", PW_EINVALID, "line 2", "duplicate key \"p\"");
	CHECK_REJECT("p: {module: [1}\n", PW_EINVALID, "test.yml: line 1", NULL);
	CHECK_REJECT("", PW_EINVALID, "empty", NULL);
	CHECK_REJECT("- a\n- b\n", PW_EINVALID, "expected a mapping", "a list");
	CHECK_REJECT("p: 3\n", PW_EINVALID, "\"p\"", "expected a mapping");
	CHECK_REJECT("--- {}\n--- {}\n", PW_EINVALID, "more than one", NULL);
	CHECK_REJECT("p: &r {module: file:///x.wasm, settings: {self: *r}}\n", PW_EINVALID, "recursive", NULL);
}

/* docs/kubewarden.md "Test data" 5: what kubewarden-controller writes (one line of JSON). */
static const char controller_json[] =
	"{\"clusterwide-psp\":{\"namespacedName\":{\"Namespace\":\"\",\"Name\":\"psp\"},"
	"\"module\":\"registry://ghcr.io/kubewarden/tests/pod-privileged:v0.2.5\","
	"\"policyMode\":\"protect\",\"allowedToMutate\":false,"
	"\"contextAwareResources\":[{\"apiVersion\":\"v1\",\"kind\":\"Pod\"},{\"apiVersion\":\"v1\",\"kind\":\"Deployment\"}],"
	"\"settings\":null,\"timeoutEvalSeconds\":5,\"hostCapabilities\":[\"*\"]},"
	"\"namespaced-ns1-p\":{\"namespacedName\":{\"Namespace\":\"ns1\",\"Name\":\"p\"},"
	"\"module\":\"registry://ghcr.io/kubewarden/tests/pod-privileged:v0.2.5\",\"policyMode\":\"monitor\","
	"\"allowedToMutate\":false,\"settings\":null,\"hostCapabilities\":[\"net/*\"]},"
	"\"clusterwide-group-g\":{\"namespacedName\":{\"Namespace\":\"\",\"Name\":\"g\"},"
	"\"policyMode\":\"protect\","
	"\"policies\":{"
	"\"pod_privileged\":{\"module\":\"registry://ghcr.io/kubewarden/tests/pod-privileged:v0.2.5\","
	"\"settings\":null,\"contextAwareResources\":[{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}],"
	"\"timeoutEvalSeconds\":5,\"hostCapabilities\":[\"*\"]},"
	"\"user_group_psp\":{\"module\":\"registry://ghcr.io/kubewarden/tests/user-group-psp:v0.4.9\","
	"\"settings\":null,\"contextAwareResources\":[{\"apiVersion\":\"v1\",\"kind\":\"Deployment\"}],"
	"\"hostCapabilities\":[\"*\"]}},"
	"\"expression\":\"pod_privileged() && user_group_psp()\",\"message\":\"rejected\"}}";

static void test_controller_json(void)
{
	pw_policies *p = NULL;
	CHECK_OK(parse(&p, controller_json));
	CHECK_INT(p->n, 3);
	const pw_policy_conf *c = pw_policies_find(p, "clusterwide-psp");
	CHECK(c && !c->is_group);
	CHECK_STR(c->module, "registry://ghcr.io/kubewarden/tests/pod-privileged:v0.2.5");
	CHECK_STR(c->settings_json, "{}");
	CHECK(c->timeout_seconds == 5);
	CHECK_INT(c->ncontext_resources, 2);
	CHECK_INT(c->nhost_capabilities, 1);
	CHECK_STR(c->host_capabilities[0], "*");
	c = pw_policies_find(p, "namespaced-ns1-p");
	CHECK(c && c->mode == PW_POLICY_MONITOR);
	CHECK_STR(c->host_capabilities[0], "net/*");
	c = pw_policies_find(p, "clusterwide-group-g");
	CHECK(c && c->is_group);
	CHECK(c->module == NULL);
	CHECK_INT(c->mode, PW_POLICY_PROTECT);
	CHECK_STR(c->message, "rejected");
	CHECK_STR(c->expression, "pod_privileged() && user_group_psp()");
	CHECK(c->expr != NULL);
	CHECK_INT(c->nmembers, 2);
	CHECK_STR(c->members[0].id, "clusterwide-group-g/pod_privileged");
	CHECK_STR(c->members[0].member_name, "pod_privileged");
	CHECK_STR(c->members[0].settings_json, "{}");
	CHECK(c->members[0].timeout_seconds == 5);
	CHECK_INT(c->members[0].ncontext_resources, 1);
	CHECK_STR(c->members[1].member_name, "user_group_psp");
	CHECK_STR(c->members[1].context_resources[0].kind, "Deployment");
	CHECK(c->members[1].timeout_seconds == 0);
	CHECK(pw_policy_conf_equal(c, c));
	CHECK(!pw_policy_conf_equal(c, &p->items[0]));
	pw_policies_free(p);
}

/* docs/kubewarden.md "Test data" 1: Kubewarden's own config.rs test file. */
static void test_kubewarden_yaml(void)
{
	pw_policies *p = NULL;
	CHECK_OK(parse(&p,
		"example:\n"
		"    module: ghcr.io/kubewarden/policies/context-aware-policy:0.1.0\n"
		"    settings: {}\n"
		"    allowedToMutate: true\n"
		"    message: \"my custom error message\"\n"
		"    contextAwareResources:\n"
		"        - apiVersion: v1\n"
		"          kind: Namespace\n"
		"        - apiVersion: v1\n"
		"          kind: Pod\n"
		"    hostCapabilities:\n"
		"      - kubernetes/*\n"
		"group_policy:\n"
		"    policyMode: monitor\n"
		"    expression: \"true\"\n"
		"    message: \"group policy message\"\n"
		"    policies:\n"
		"        policy1:\n"
		"            module: ghcr.io/kubewarden/policies/policy1:0.1.0\n"
		"            settings: {}\n"
		"        policy2:\n"
		"            module: ghcr.io/kubewarden/policies/policy2:0.1.0\n"
		"            settings: {}\n"));
	CHECK_INT(p->n, 2);
	CHECK_STR(p->items[0].host_capabilities[0], "kubernetes/*");
	const pw_policy_conf *g = &p->items[1];
	CHECK(g->is_group);
	CHECK_INT(g->mode, PW_POLICY_MONITOR);
	CHECK_STR(g->message, "group policy message");
	CHECK_INT(g->nmembers, 2);
	CHECK_STR(g->members[1].module, "registry://ghcr.io/kubewarden/policies/policy2:0.1.0");
	CHECK(g->members[0].host_capabilities == NULL);   /* absent: nothing granted */
	CHECK_INT(g->members[0].mode, PW_POLICY_PROTECT);
	pw_policies_free(p);
}

static void test_ignored_keys(void)
{
	pw_policies *p = NULL;
	/* Kubewarden ignores unknown keys on policies and groups: so does Prewarm (debug log) */
	CHECK_OK(parse(&p, "p:\n  module: file:///x.wasm\n  setings: {n: 1}\n  namespacedName: {Namespace: a, Name: p}\n"
	                   "g:\n  expression: a()\n  message: m\n  extra: 1\n  policies: {a: {module: file:///a.wasm}}\n"));
	CHECK_INT(p->n, 2);
	CHECK_STR(p->items[0].settings_json, "{}");
	CHECK(p->items[0].host_capabilities == NULL);
	pw_policies_free(p);
	/* hostCapabilities: null is like absent; patterns are trimmed; "*" allows all (the rest unchecked) */
	CHECK_OK(parse(&p, "p: {module: file:///x.wasm, hostCapabilities: null}\n"
	                   "q: {module: file:///x.wasm, hostCapabilities: [' oci/v1/* ', 'kubernetes/can_i', 'oci/v2/verify']}\n"
	                   "r: {module: file:///x.wasm, hostCapabilities: ['bogus', '*']}\n"
	                   "s: {module: file:///x.wasm, hostCapabilities: []}\n"));
	CHECK(p->items[0].host_capabilities == NULL);
	CHECK_STR(p->items[1].host_capabilities[0], "oci/v1/*");
	CHECK_INT(p->items[2].nhost_capabilities, 2);
	CHECK(p->items[3].host_capabilities != NULL);
	CHECK_INT(p->items[3].nhost_capabilities, 0);
	pw_policies_free(p);
}

/* An empty key is ignored like any unknown one (it used to loop forever: fuzz/corpus/policies/empty-key-hang). */
static void test_empty_key_ignored(void)
{
	pw_policies *p = NULL;
	CHECK_OK(parse(&p, "p: {module: \"file:///x.wasm\", \"\": 1}\n"));
	CHECK_INT(p->n, 1);
	pw_policies_free(p);
}

#define GROUP(expr) "g:\n  message: m\n  expression: '" expr "'\n  policies:\n    a: {module: file:///a.wasm}\n" \
	"    b_2: {module: file:///b.wasm}\n"

static void test_group_rejections(void)
{
	/* shape */
	CHECK_REJECT("g: {module: file:///x.wasm, policies: {a: {module: file:///a.wasm}}, expression: a(), message: m}\n",
	             PW_EINVALID, "\"g\"", "both \"module\"");
	CHECK_REJECT("g: {expression: a(), message: m}\n", PW_EINVALID, "\"g\"", "no \"policies\"");
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm}}, message: m}\n", PW_EINVALID, "\"g\"", "missing key \"expression\"");
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm}}, expression: a()}\n", PW_EINVALID, "\"g\"", "missing key \"message\"");
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm}}, expression: [1], message: m}\n", PW_EINVALID, "\"expression\"", "a list");
	CHECK_REJECT("g: {policies: {}, expression: 'true', message: m}\n", PW_EINVALID, "\"g\"", "non-empty mapping");
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm}}, expression: a(), message: m, policyMode: x}\n",
	             PW_EINVALID, "\"policyMode\"", NULL);
	/* members */
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm, allowedToMutate: true}}, expression: a(), message: m}\n",
	             PW_EINVALID, "policy \"g/a\"", "unknown key \"allowedToMutate\"");
	CHECK_REJECT("g: {policies: {a: {settings: {}}}, expression: a(), message: m}\n", PW_EINVALID, "\"g/a\"", "missing key \"module\"");
	CHECK_REJECT("g: {policies: {a/b: {module: file:///a.wasm}}, expression: 'true', message: m}\n", PW_EINVALID,
	             "\"g\"", "invalid names: [\"a/b\"]");
	CHECK_REJECT("g: {policies: {a-b: {module: file:///a.wasm}}, expression: 'true', message: m}\n", PW_EINVALID,
	             "member \"a-b\"", "identifier");
	CHECK_REJECT("g: {policies: {a: {module: file:///a.wasm, hostCapabilities: [oci]}}, expression: a(), message: m}\n",
	             PW_EINVALID, "for policy g/a", "use \"oci/*\"");
	/* every expression refusal, with its position and what was expected */
	CHECK_REJECT(GROUP(""), PW_EINVALID, "policy group \"g\"", "expression is empty");
	CHECK_REJECT(GROUP("   "), PW_EINVALID, "policy group \"g\"", "expression is empty");
	CHECK_REJECT(GROUP("c()"), PW_EINVALID, "at position 1: unknown member \"c\"", "members: a, b_2");
	CHECK_REJECT(GROUP("a() || unknown_policy()"), PW_EINVALID, "position 8: unknown member \"unknown_policy\"", NULL);
	CHECK_REJECT(GROUP("a"), PW_EINVALID, "position 2: expected '(' after a member name", "got the end of the expression");
	CHECK_REJECT(GROUP("a(1)"), PW_EINVALID, "position 3: expected ')' (member calls take no arguments)", "got \"1\"");
	CHECK_REJECT(GROUP("1 + 1"), PW_EINVALID, "position 1: expected a member call NAME(), true, false, '!' or '('", "got \"1\"");
	CHECK_REJECT(GROUP("2 > 1"), PW_EINVALID, "position 1:", "got \"2\"");
	CHECK_REJECT(GROUP("a() + 1"), PW_EINVALID, "position 5: expected an operator (&&, ||, ==, !=) or the end", "got \"+\"");
	CHECK_REJECT(GROUP("a() & b_2()"), PW_EINVALID, "position 5:", "got \"&\"");
	CHECK_REJECT(GROUP("a() | b_2()"), PW_EINVALID, "position 5:", "got \"|\"");
	CHECK_REJECT(GROUP("a() ^ b_2()"), PW_EINVALID, "position 5:", "got \"^\"");
	CHECK_REJECT(GROUP("a() < b_2()"), PW_EINVALID, "position 5:", "got \"<\"");
	CHECK_REJECT(GROUP("a() = b_2()"), PW_EINVALID, "position 5:", "got \"=\"");
	CHECK_REJECT(GROUP("a() &&"), PW_EINVALID, "position 7: expected a member call", "got the end of the expression");
	CHECK_REJECT(GROUP("(a() || b_2()"), PW_EINVALID, "position 14: expected ')' closing the '(' at position 1", NULL);
	CHECK_REJECT(GROUP("a())"), PW_EINVALID, "position 4: expected an operator", "got \")\"");
	CHECK_REJECT(GROUP("()"), PW_EINVALID, "position 2: expected a member call", "got \")\"");
	CHECK_REJECT(GROUP("something that does not make sense"), PW_EINVALID, "position 11: expected '(' after a member name",
	             "got \"that\"");
	CHECK_REJECT(GROUP("true()"), PW_EINVALID, "position 5: expected an operator", "got \"(\"");
	CHECK_REJECT(GROUP("a() // comment"), PW_EINVALID, "position 5:", "got \"/\"");
	CHECK_REJECT(GROUP("a() ; b_2()"), PW_EINVALID, "position 5:", "got \";\"");
	CHECK_REJECT(GROUP("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!a()"), PW_EINVALID,
	             "nested deeper than 64", NULL);
	/* and the accepted forms */
	pw_policies *p = NULL;
	CHECK_OK(parse(&p, GROUP("!a() == (b_2() != true) || false && a()")));
	pw_policies_free(p);
	CHECK_OK(parse(&p, GROUP("true || a()")));
	pw_policies_free(p);
}

static void test_host_capability_patterns(void)
{
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['']}\n", PW_EINVALID, "for policy p", "empty");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['  ']}\n", PW_EINVALID, "for policy p", "empty");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: [1]}\n", PW_EINVALID, "\"p\"", "must be a string");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: 'oci/*'}\n", PW_EINVALID, "\"p\"", "a list of strings");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['oci*']}\n", PW_EINVALID, "invalid hostCapabilities pattern for policy p", "whole last segment");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['oci/v1/oci_*']}\n", PW_EINVALID, "\"oci/v1/oci_*\"", "whole last segment");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['*/oci']}\n", PW_EINVALID, "\"*/oci\"", "whole last segment");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['oci/v1']}\n", PW_EINVALID, "\"oci/v1\"", "use \"oci/v1/*\"");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['unknown/*']}\n", PW_EINVALID, "\"unknown\"", "not a group");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['oci/v1/verify/*']}\n", PW_EINVALID, "oci/v1/verify", "not a group");
	CHECK_REJECT("p: {module: file:///x.wasm, hostCapabilities: ['kubewarden/tracing/log']}\n", PW_EINVALID, "\"kubewarden/tracing/log\"",
	             "is not a host capability");
	pw_policies *p = NULL;
	CHECK_OK(parse(&p, "p: {module: file:///x.wasm, hostCapabilities: [oci/*, oci/v1/*, net/v1/dns_lookup_host, "
	                   "crypto/v1/*, kubernetes/*, kubernetes/list_resources_all, oci/v1/oci_manifest_config]}\n"));
	CHECK_INT(p->items[0].nhost_capabilities, 7);
	pw_policies_free(p);
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
		PW_TEST(test_controller_json),
		PW_TEST(test_kubewarden_yaml),
		PW_TEST(test_ignored_keys), PW_TEST(test_empty_key_ignored),
		PW_TEST(test_group_rejections),
		PW_TEST(test_host_capability_patterns),
		PW_TEST(test_alias_bomb_is_bounded),
		PW_TEST(test_load_file),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
