/*
 * Host capabilities through the real engine: the repo's host test policy (waPC and WASI)
 * makes each call through __host_call / host.call and the test checks the answers and host
 * errors the guest got: the dispatcher's own errors (binding, namespace, operation, payload
 * JSON), the hostCapabilities gate for every family, and the net family against names this
 * machine resolves (localhost).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/hostcap.h"
#include "host/hostcap_support.h"

#define DENIED(cap) "Policy has not been granted access to the '" cap "' host capability. " \
                    "The violation has been reported."

/* Checks one call: *ok as expected and the text equal to want (or containing it when
 * `contains`). */
#define CHECK_CALL(p, ns, op, payload, want_ok, want, contains) do { \
	int _ok = -1; \
	char *_t = hc_call(p, "kubewarden", ns, op, payload, &_ok); \
	CHECK_MSG(_t, "%s: %s/%s: %s", hc_abi_name(wasi), ns, op, pw_error_last()); \
	int _good = _ok == (want_ok) && ((contains) ? strstr(_t, want) != NULL : !strcmp(_t, want)); \
	if (!_good) \
		pw_test_fail(__FILE__, __LINE__, "%s: %s/%s: ok=%d \"%s\", expected ok=%d %s\"%s\"", \
		             hc_abi_name(wasi), ns, op, _ok, _t, want_ok, (contains) ? "containing " : "", want); \
	free(_t); \
	if (!_good) \
		return; \
} while (0)

static void test_dispatch_errors(void)
{
	HC_BOTH_ABIS {
		pw_policy *p = hc_policy(wasi, NULL, 0, NULL);
		CHECK_MSG(p, "%s", pw_error_last());
		int ok = -1;
		char *t = hc_call(p, "other", "net", "v1/dns_lookup_host", "\"localhost\"", &ok);
		CHECK(t);
		CHECK_INT(ok, 0);
		CHECK_STR(t, "unknown binding: other");
		free(t);
		CHECK_CALL(p, "nosuch", "v1/x", "1", 0, "unknown namespace: nosuch", 0);
		CHECK_CALL(p, "net", "v9/nothing", "1", 0, "unknown operation: v9/nothing", 0);
		CHECK_CALL(p, "tracing", "nolog", "{}", 0, "unknown operation: nolog", 0);
		/* a payload that is not JSON, or JSON of the wrong type */
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "not json", 0, "line 1 column", 1);
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "42", 0, "invalid type: integer, expected a string", 0);
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "{\"host\":\"localhost\"}", 0,
		           "invalid type: map, expected a string", 0);
		/* a capability Kubewarden knows is never "unknown", served by a family or not */
		int kok = -1;
		char *kt = hc_call(p, "kubewarden", "kubernetes", "can_i", "{}", &kok);
		CHECK_MSG(kt, "%s", pw_error_last());
		CHECK_MSG(strncmp(kt, "unknown ", 8) != 0, "%s: kubernetes/can_i: %s", hc_abi_name(wasi), kt);
		free(kt);
		pw_policy_free(p);
	}
}

/* Every family is gated: denied with Kubewarden's text when the patterns do not match,
 * served when one does. The denial comes before the payload is read. */
static void test_gate(void)
{
	static const char *const calls[][2] = {
		{ "oci", "v1/manifest_digest" }, { "oci", "v1/oci_manifest" }, { "oci", "v1/oci_manifest_config" },
		{ "oci", "v1/verify" }, { "oci", "v2/verify" }, { "net", "v1/dns_lookup_host" },
		{ "crypto", "v1/is_certificate_trusted" }, { "kubernetes", "list_resources_by_namespace" },
		{ "kubernetes", "list_resources_all" }, { "kubernetes", "get_resource" }, { "kubernetes", "can_i" },
		{ "nosuch", "op" },
	};
	HC_BOTH_ABIS {
		const char *none[1] = { NULL };
		const char *other[] = { "crypto/*", "oci/v2/*", "kubernetes/can_i" };
		pw_policy *pn = hc_policy(wasi, none, 0, NULL);
		pw_policy *po = hc_policy(wasi, other, 3, NULL);
		CHECK(pn && po);
		for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
			char want[256];
			snprintf(want, sizeof want, DENIED("%s/%s"), calls[i][0], calls[i][1]);
			CHECK_CALL(pn, calls[i][0], calls[i][1], "", 0, want, 0);
			bool granted = !strcmp(calls[i][0], "crypto") || !strcmp(calls[i][1], "v2/verify") ||
			               !strcmp(calls[i][1], "can_i");
			if (!granted)
				CHECK_CALL(po, calls[i][0], calls[i][1], "", 0, want, 0);
		}
		/* tracing is never gated */
		CHECK_CALL(pn, "tracing", "log", "{\"level\":\"info\",\"message\":\"gate test\"}", 1, "", 0);
		pw_policy_free(pn);
		pw_policy_free(po);

		/* exact, group and binding-qualified patterns grant net/v1/dns_lookup_host */
		static const char *const grants[] = { "*", "net/*", "net/v1/*", "net/v1/dns_lookup_host",
		                                      "kubewarden/net/v1/dns_lookup_host" };
		for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
			pw_policy *p = hc_policy(wasi, &grants[i], 1, NULL);
			CHECK(p);
			CHECK_CALL(p, "net", "v1/dns_lookup_host", "\"localhost\"", 1, "{\"ips\":[", 1);
			pw_policy_free(p);
		}
	}
}

static void test_net_dns_lookup_host(void)
{
	HC_BOTH_ABIS {
		const char *caps[] = { "net/v1/dns_lookup_host" };
		pw_policy *p = hc_policy(wasi, caps, 1, NULL);
		CHECK(p);
		int ok = -1;
		char *t = hc_call(p, "kubewarden", "net", "v1/dns_lookup_host", "\"localhost\"", &ok);
		CHECK_MSG(t, "%s", pw_error_last());
		CHECK_MSG(ok == 1, "%s", t);
		json_t *j = json_loads(t, 0, NULL);
		json_t *ips = json_object_get(j, "ips");
		CHECK_MSG(json_is_array(ips) && json_object_size(j) == 1, "%s", t);
		bool loopback = false;
		size_t i;
		json_t *v;
		json_array_foreach(ips, i, v) {
			CHECK(json_is_string(v));
			loopback |= !strcmp(json_string_value(v), "127.0.0.1") || !strcmp(json_string_value(v), "::1");
		}
		CHECK_MSG(loopback, "localhost did not resolve to a loopback address: %s", t);
		json_decref(j);
		free(t);
		/* the answer of a numeric address is that address */
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "\"127.0.0.1\"", 1, "{\"ips\":[\"127.0.0.1\"]}", 0);
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "\"::1\"", 1, "{\"ips\":[\"::1\"]}", 0);
		/* names that cannot resolve: a host error, not a crash or a hang */
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "\"no-such-host.invalid\"", 0,
		           "Callback evaluation failure: cannot resolve \"no-such-host.invalid\"", 1);
		CHECK_CALL(p, "net", "v1/dns_lookup_host", "\"\"", 0, "Callback evaluation failure: cannot resolve", 1);
		pw_policy_free(p);
	}
}

/* The answer caches: bounded (the entry closest to expiry goes), time-limited, replacing. */
static void test_answer_cache(void)
{
	pw_hostcap_cache *k = pw_hostcap_cache_new(2, 60);
	CHECK(k);
	pw_buf b = PW_BUF_INIT;
	CHECK_OK(pw_hostcap_cache_put(k, "a", (const uint8_t *)"A", 1));
	CHECK_OK(pw_hostcap_cache_put(k, "b", (const uint8_t *)"B", 1));
	CHECK_OK(pw_hostcap_cache_put(k, "c", (const uint8_t *)"C", 1));
	CHECK_INT(pw_hostcap_cache_count(k), 2);
	CHECK_INT(pw_hostcap_cache_get(k, "a", &b), PW_ENOTFOUND);
	CHECK_OK(pw_hostcap_cache_get(k, "c", &b));
	CHECK_OK(pw_hostcap_cache_put(k, "b", (const uint8_t *)"BB", 2));
	CHECK_INT(pw_hostcap_cache_count(k), 2);
	CHECK_OK(pw_hostcap_cache_get(k, "b", &b));
	CHECK_INT(b.len, 3);
	CHECK(!memcmp(b.data, "CBB", 3));
	pw_hostcap_cache_free(k);
	/* a ttl of 0: nothing is ever answered from the cache */
	k = pw_hostcap_cache_new(4, 0);
	CHECK(k);
	CHECK_OK(pw_hostcap_cache_put(k, "x", (const uint8_t *)"X", 1));
	CHECK_INT(pw_hostcap_cache_get(k, "x", &b), PW_ENOTFOUND);
	pw_hostcap_cache_free(k);
	pw_buf_free(&b);
}

int main(int argc, char **argv)
{
	static const pw_test tests[] = {
		PW_TEST(test_dispatch_errors),
		PW_TEST(test_gate),
		PW_TEST(test_net_dns_lookup_host),
		PW_TEST(test_answer_cache),
	};
	return pw_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
