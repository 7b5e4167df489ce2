/*
 * The sigstore family of host capabilities: oci/v1/verify and oci/v2/verify, "is this
 * image signed by these public keys" (cosign's format, include/prewarm/sigstore.h).
 *
 * The request decoding, the verification, the answer {"is_trusted":true,"digest":"..."} and
 * its 60 s cache are pw_cosign_host_verify() (src/oci/verify_hostcall.c); this file maps
 * its outcome onto Kubewarden's error forms: a payload that does not decode to the request
 * type is serde's error as is (runtimes/callback.rs), everything after that (no key, a bad
 * key, keyless types, no signatures, constraints not satisfied, registry errors) is a
 * callback failure, "Callback evaluation failure: ..." (callback_handler.rs). Registry
 * requests go through the env's OCI client (host-call timeouts, its credentials,
 * sources.yml and TLS).
 */
#include "host/hostcap.h"
#include "prewarm/sigstore.h"

static int verify(const pw_hostcap_call *c, pw_buf *answer)
{
	if (!c->env || !c->env->oci)
		return pw_hostcap_fail(answer, "no OCI client configured to fetch signatures");
	int rc = pw_cosign_host_verify(c->env->oci, c->op, c->payload, c->len, answer);
	if (rc == 0)
		return 0;
	pw_debug(c->call->log_tag, "host call oci/%s: %s", c->op, pw_error_last());
	if (rc == PW_EINVALID)
		return pw_hostcap_bad_payload(answer, pw_error_last());
	pw_hostcap_fail(answer, "%s", pw_error_last());
	return rc;
}

const pw_hostcap_op pw_hostcap_sigstore_ops[] = {
	{ "oci", "v1/verify", verify },
	{ "oci", "v2/verify", verify },
	{ NULL, NULL, NULL },
};
