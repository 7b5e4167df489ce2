/*
 * Test support for host capabilities: one host call made from inside a real policy (the
 * repo's host test policy, tests/fixtures/c/host_wapc.c / host_wasi.c, scenario
 * "hostcall") through waPC's __host_call or WASI's host.call, with the answer or the host
 * error text handed back. Families' tests (test_hostcap*.c) share it.
 */
#ifndef PW_TEST_HOSTCAP_SUPPORT_H
#define PW_TEST_HOSTCAP_SUPPORT_H

#include <stddef.h>

#include "prewarm/policy.h"

/* The host test policy for the ABI (0 waPC, 1 WASI) granted caps (NULL = every
 * capability; ncaps 0 with non-NULL caps = none), answering from env (may be NULL).
 * NULL on failure (pw_error_last()). Compiled once per process. */
pw_policy *hc_policy(int wasi, const char *const *caps, size_t ncaps, pw_host_env *env);
/* The same with contextAwareResources. */
pw_policy *hc_policy_resources(int wasi, const char *const *caps, size_t ncaps, pw_host_env *env,
                               const pw_policy_resource *resources, size_t nresources);

/* Has the policy call binding/ns/op with `payload`; returns what the host answered (the
 * answer when *ok is 1, the host error text when 0), malloc'd; NULL when the evaluation
 * itself failed (pw_error_last()). */
char *hc_call(pw_policy *p, const char *binding, const char *ns, const char *op,
              const char *payload, int *ok);

/* "waPC" / "WASI" for messages. */
const char *hc_abi_name(int wasi);

#define HC_BOTH_ABIS for (int wasi = 0; wasi < 2 && !pw_test_stopped(); wasi++)

#endif
