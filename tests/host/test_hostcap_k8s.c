/*
 * The kubernetes host capabilities through the real engine: the repo's host test policy
 * (tests/fixtures/c/host_wapc.c and host_wasi.c) calls kubernetes/list_resources_by_namespace,
 * list_resources_all, get_resource and can_i through waPC's __host_call and WASI's host.call;
 * the answers come from a file of objects (the backend of `prewarm eval
 * --allow-context-aware`). Checked: the answers the guest gets, the hostCapabilities gate,
 * the contextAwareResources gate (Kubewarden's texts), and the error when no Kubernetes
 * client can be configured. The client against an API server is tests/k8s/test_k8s.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/hostcap_support.h"
#include "prewarm/util.h"

#define CHECK_CALL(p, op, payload, want_ok, want) do { \
	int _ok = -1; \
	char *_t = hc_call(p, "kubewarden", "kubernetes", op, payload, &_ok); \
	CHECK_MSG(_t, "%s: %s: %s", hc_abi_name(wasi), op, pw_error_last()); \
	int _good = _ok == (want_ok) && strstr(_t, want) != NULL; \
	if (!_good) \
		pw_test_fail(__FILE__, __LINE__, "%s: kubernetes/%s %s: ok=%d \"%s\", expected ok=%d with \"%s\"", \
		             hc_abi_name(wasi), op, payload, _ok, _t, want_ok, want); \
	free(_t); \
	if (!_good) \
		return; \
} while (0)

static const char CLUSTER[] =
	"apiVersion: v1\nkind: List\nitems:\n"
	"- apiVersion: v1\n  kind: Pod\n  metadata: {name: web-1, namespace: default, labels: {app: web}}\n"
	"  spec: {containers: [{name: nginx, image: 'nginx:1.27'}]}\n"
	"- apiVersion: v1\n  kind: Pod\n  metadata: {name: db-1, namespace: prod, labels: {app: db}}\n"
	"- apiVersion: v1\n  kind: Secret\n  metadata: {name: token, namespace: default}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {team: blue}}\n"
	"---\napiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\n"
	"spec: {user: alice, resourceAttributes: {namespace: default, verb: create, resource: pods}}\n"
	"status: {allowed: true}\n";

static const pw_policy_resource GRANTED[] = { { "v1", "Pod" }, { "v1", "Namespace" } };

static pw_host_env *objects_env(void)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/cluster.yaml", pw_test_tmpdir());
	if (pw_file_write_atomic(path, CLUSTER, strlen(CLUSTER), 0644) < 0)
		return NULL;
	pw_host_env_opts o = { .kubernetes_objects = path };
	pw_host_env *env = NULL;
	return pw_host_env_new(&env, &o) < 0 ? NULL : env;
}

static void test_calls_both_abis(void)
{
	pw_host_env *env = objects_env();
	CHECK_MSG(env, "%s", pw_error_last());
	HC_BOTH_ABIS {
		const char *caps[] = { "kubernetes/*" };
		pw_policy *p = hc_policy_resources(wasi, caps, 1, env, GRANTED, 2);
		CHECK_MSG(p, "%s", pw_error_last());
		CHECK_CALL(p, "list_resources_by_namespace",
		           "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"namespace\":\"default\",\"label_selector\":null,"
		           "\"field_selector\":null,\"field_masks\":null}", 1,
		           "{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"metadata\":{},\"items\":[{\"apiVersion\":\"v1\","
		           "\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"web\"},\"managedFields\":[],"
		           "\"name\":\"web-1\",\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"image\":\"nginx:1.27\","
		           "\"name\":\"nginx\"}]}}]}");
		CHECK_CALL(p, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"label_selector\":\"app=db\"}", 1,
		           "\"name\":\"db-1\",\"namespace\":\"prod\"");
		CHECK_CALL(p, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"field_masks\":[\"spec.containers.image\"]}",
		           1, "\"spec\":{\"containers\":[{\"image\":\"nginx:1.27\"}]}");
		CHECK_CALL(p, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Namespace\",\"name\":\"default\",\"namespace\":null,"
		           "\"disable_cache\":false}", 1, "\"labels\":{\"team\":\"blue\"}");
		CHECK_CALL(p, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\",\"name\":\"gone\",\"namespace\":\"default\","
		           "\"disable_cache\":true}", 0,
		           "Callback evaluation failure: Cannot find v1/Pod named 'gone' inside of namespace 'Some(\"default\")'");
		CHECK_CALL(p, "can_i", "{\"subject_access_review\":{\"groups\":null,\"resource_attributes\":{\"group\":null,\"name\":null,"
		           "\"namespace\":\"default\",\"resource\":\"pods\",\"subresource\":null,\"verb\":\"create\",\"version\":null},"
		           "\"user\":\"alice\"},\"disable_cache\":false}", 1, "{\"allowed\":true}");
		/* contextAwareResources gate: Secret is not granted */
		CHECK_CALL(p, "list_resources_by_namespace", "{\"api_version\":\"v1\",\"kind\":\"Secret\",\"namespace\":\"default\"}", 0,
		           "Policy has not been granted access to Kubernetes v1/Secret resources. The violation has been reported.");
		CHECK_CALL(p, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Secret\",\"name\":\"token\",\"namespace\":\"default\","
		           "\"disable_cache\":false}", 0, "Policy has not been granted access to Kubernetes v1/Secret resources.");
		/* a bad request: serde's kind of message */
		CHECK_CALL(p, "get_resource", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", 0, "missing field `name`");
		pw_policy_free(p);

		/* hostCapabilities gate first: granted resources do not help without the capability */
		const char *net[] = { "net/*" };
		p = hc_policy_resources(wasi, net, 1, env, GRANTED, 2);
		CHECK(p);
		CHECK_CALL(p, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", 0,
		           "Policy has not been granted access to the 'kubernetes/list_resources_all' host capability.");
		pw_policy_free(p);
		/* no contextAwareResources at all: every kind refused */
		p = hc_policy_resources(wasi, caps, 1, env, NULL, 0);
		CHECK(p);
		CHECK_CALL(p, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", 0,
		           "Policy has not been granted access to Kubernetes v1/Pod resources.");
		pw_policy_free(p);
	}
	pw_host_env_free(env);
}

/* A server whose Kubernetes configuration is missing starts; the calls say why. */
static void test_no_client(void)
{
	char kc[4200];
	snprintf(kc, sizeof kc, "%s/no-such-kubeconfig", pw_test_tmpdir());
	pw_host_env_opts o = { .kubeconfig = kc };
	pw_host_env *env = NULL;
	CHECK_OK(pw_host_env_new(&env, &o));
	HC_BOTH_ABIS {
		const char *caps[] = { "*" };
		pw_policy *p = hc_policy_resources(wasi, caps, 1, env, GRANTED, 2);
		CHECK_MSG(p, "%s", pw_error_last());
		CHECK_CALL(p, "list_resources_all", "{\"api_version\":\"v1\",\"kind\":\"Pod\"}", 0,
		           "Callback evaluation failure: kube::Client was not initialized properly: kubeconfig ");
		CHECK_CALL(p, "can_i", "{\"subject_access_review\":{\"user\":\"u\",\"resource_attributes\":{\"resource\":\"pods\","
		           "\"verb\":\"get\"}},\"disable_cache\":true}", 0, "no such file");
		pw_policy_free(p);
	}
	pw_host_env_free(env);
	/* a bad objects file fails the environment (eval exits with it) */
	char bad[4200];
	snprintf(bad, sizeof bad, "%s/bad.yaml", pw_test_tmpdir());
	pw_file_write_atomic(bad, "kind: Pod\n", 10, 0644);
	pw_host_env_opts ob = { .kubernetes_objects = bad };
	CHECK_INT(pw_host_env_new(&env, &ob), PW_EINVALID);
	CHECK_MSG(strstr(pw_error_last(), "bad.yaml: object 1 has no apiVersion and kind"), "%s", pw_error_last());
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_calls_both_abis),
		PW_TEST(test_no_client),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
