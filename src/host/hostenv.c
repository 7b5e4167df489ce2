/*
 * The environment of host capabilities (pw_host_env, hostcap.h): the services the families
 * answer from and their answer caches, made once per server or eval and shared by every
 * policy and worker thread.
 *
 * The OCI client for host calls is its own, with short timeouts and a single retry: a
 * host call runs inside a policy evaluation that has a deadline of a few seconds, and the
 * policy's deadline is only checked in wasm code, so the network must give up by itself.
 */
#include <stdlib.h>

#include "host/hostcap.h"

/* The oci family: connect and whole-request bounds of one registry request from a host call, and
 * the extra attempts after a 5xx/429/network error. */
#define HOSTCAP_OCI_CONNECT_TIMEOUT 3.0
#define HOSTCAP_OCI_TIMEOUT 10.0
#define HOSTCAP_OCI_LOW_SPEED_TIME 5.0
#define HOSTCAP_OCI_RETRIES 1
#define HOSTCAP_OCI_BACKOFF 0.2
/* The largest config blob oci/v1/oci_manifest_config fetches. */
#define HOSTCAP_OCI_MAX_BLOB (4u << 20)
/* Answer caches: Kubewarden's 60 s (callback_handler/oci.rs), bounded here. */
#define HOSTCAP_OCI_CACHE_TTL 60.0
#define HOSTCAP_OCI_CACHE_ENTRIES 1024

int pw_host_env_new(pw_host_env **out, const pw_host_env_opts *opts)
{
	static const pw_host_env_opts none;
	*out = NULL;
	if (!opts)
		opts = &none;
	pw_host_env *e = calloc(1, sizeof *e);
	if (!e)
		return pw_error_set(PW_ENOMEM, "host capabilities: out of memory");
	if (pw_hostcap_kubernetes_init(e, opts) < 0) {
		pw_host_env_free(e);
		return pw_error_prefix("host capabilities");
	}
	pw_oci_client_opts co = {
		.connect_timeout = HOSTCAP_OCI_CONNECT_TIMEOUT,
		.timeout = HOSTCAP_OCI_TIMEOUT,
		.low_speed_time = HOSTCAP_OCI_LOW_SPEED_TIME,
		.retries = HOSTCAP_OCI_RETRIES,
		.backoff = HOSTCAP_OCI_BACKOFF,
		.max_blob = HOSTCAP_OCI_MAX_BLOB,
	};
	int rc = pw_oci_client_from_paths(&e->oci, opts->docker_config_path, opts->sources_path, &co);
	if (rc < 0) {
		pw_host_env_free(e);
		return pw_error_prefix("host capabilities");
	}
	e->oci_digest = pw_hostcap_cache_new(HOSTCAP_OCI_CACHE_ENTRIES, HOSTCAP_OCI_CACHE_TTL);
	e->oci_manifest = pw_hostcap_cache_new(HOSTCAP_OCI_CACHE_ENTRIES, HOSTCAP_OCI_CACHE_TTL);
	e->oci_config = pw_hostcap_cache_new(HOSTCAP_OCI_CACHE_ENTRIES, HOSTCAP_OCI_CACHE_TTL);
	if (!e->oci_digest || !e->oci_manifest || !e->oci_config) {
		pw_host_env_free(e);
		return pw_error_set(PW_ENOMEM, "host capabilities: out of memory");
	}
	*out = e;
	return 0;
}

void pw_host_env_free(pw_host_env *e)
{
	if (!e)
		return;
	pw_oci_client_free(e->oci);
	pw_hostcap_cache_free(e->oci_digest);
	pw_hostcap_cache_free(e->oci_manifest);
	pw_hostcap_cache_free(e->oci_config);
	pw_hostcap_kubernetes_free(e);
	free(e);
}
