/*
 * The host-capability framework: how a family of Kubewarden host callbacks (oci, net,
 * crypto, kubernetes, sigstore ...) plugs into the dispatcher of src/host/hostcall.c.
 *
 * A family is one file (src/host/cap_<family>.c) that defines a table of operations,
 * each (namespace, operation) -> handler, ended by a zeroed entry, and adds one line to
 * the family list in hostcall.c. The dispatcher does everything Kubewarden's
 * runtimes/callback.rs does before a handler runs: the binding must be "kubewarden", the
 * call "NAMESPACE/OPERATION" must be granted by the policy's hostCapabilities (the gate:
 * policies.yml patterns, `prewarm eval --host-capability`), the payload must be JSON; it
 * then calls the handler with the parsed payload and hands the guest either the handler's
 * answer (JSON bytes) or its host error text. A handler never sees a call the gate refused.
 *
 * Handlers run on the evaluating worker thread, inside a guest call: they must be
 * thread-safe, must not keep pointers into the call after returning, and must bound the
 * time they take (named timeouts; a host call cannot be interrupted by the policy's own
 * deadline, which is only checked in wasm code).
 */
#ifndef PW_HOST_HOSTCAP_H
#define PW_HOST_HOSTCAP_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "host/host_internal.h"
#include "prewarm/oci.h"

/* The environment of host capabilities (pw_host_env_new): services and answer caches
 * shared by every policy and thread of a server or an eval. Families add their own
 * members here (a client, a cache) and set them up in pw_host_env_new (hostenv.c). */
struct pw_host_env {
	pw_oci_client *oci;                 /* the oci family: a client with host-call timeouts (owned) */
	struct pw_hostcap_cache *oci_digest;   /* oci/v1/manifest_digest answers */
	struct pw_hostcap_cache *oci_manifest; /* oci/v1/oci_manifest answers */
	struct pw_hostcap_cache *oci_config;   /* oci/v1/oci_manifest_config answers */
	/* the kubernetes family (cap_kubernetes.c): the client, made once by
	 * pw_host_env__kubernetes(); k8s_error says why there is none */
	pthread_mutex_t k8s_lock;
	bool k8s_tried;
	struct pw_k8s *k8s;
	char *k8s_error;
	char *kubeconfig;
};

/* The environment's Kubernetes client, configured on first use (the first policy with
 * contextAwareResources, or the first kubernetes call): NULL when it cannot be, with *why
 * (owned by env) saying so. Thread-safe. */
struct pw_k8s *pw_host_env__kubernetes(pw_host_env *env, const char **why);
/* Sets up and frees the kubernetes members of env (cap_kubernetes.c): with
 * opts->kubernetes_objects the file is read now (its errors fail); free works on a
 * zeroed env. */
int pw_hostcap_kubernetes_init(pw_host_env *env, const pw_host_env_opts *opts);
void pw_hostcap_kubernetes_free(pw_host_env *env);

/* One host call as a handler sees it. Everything is borrowed for the call's duration. */
typedef struct pw_hostcap_call {
	pw_host_call *call;        /* the policy's call state: call->log_tag for logs */
	const struct pw_policy *policy; /* the calling policy (context-aware resources, id) */
	pw_host_env *env;          /* NULL when the embedder gave none */
	const char *ns, *op;       /* "oci", "v1/manifest_digest" */
	const uint8_t *payload;    /* the raw payload */
	size_t len;
	json_t *json;              /* the payload parsed (any JSON value, never NULL) */
} pw_hostcap_call;

/*
 * A handler: 0 with the answer (JSON bytes, exactly what the guest gets) appended to
 * `answer`, or a negative PW_E* code with the host error text the guest gets appended to
 * `answer`. Use pw_hostcap_fail() for failures of the work itself (Kubewarden prefixes
 * them "Callback evaluation failure: ") and pw_hostcap_bad_payload() for payloads that do
 * not decode to the request type (Kubewarden's serde error, no prefix).
 */
typedef int (*pw_hostcap_fn)(const pw_hostcap_call *c, pw_buf *answer);

typedef struct pw_hostcap_op {
	const char *ns;            /* namespace, e.g. "net" */
	const char *op;            /* operation, e.g. "v1/dns_lookup_host" */
	pw_hostcap_fn fn;
} pw_hostcap_op;

/* The families (each table ends with { NULL }). Add yours here and in hostcall.c. */
extern const pw_hostcap_op pw_hostcap_oci_ops[];
extern const pw_hostcap_op pw_hostcap_net_ops[];
extern const pw_hostcap_op pw_hostcap_kubernetes_ops[];
extern const pw_hostcap_op pw_hostcap_crypto_ops[];
extern const pw_hostcap_op pw_hostcap_sigstore_ops[];

/* Steps after the gate (find the operation, parse the payload, run the handler), for
 * pw_host_dispatch and the fuzz target: 0 with the answer, or an error with its text, in
 * answer. `c` gives the log tag; policy and env may be NULL. */
int pw_hostcap_run(pw_host_call *c, const struct pw_policy *policy, pw_host_env *env, const char *ns,
                   const char *op, const uint8_t *payload, size_t len, pw_buf *answer);

/* oci-client's serialisation (OciManifest) of a manifest or index body: a new object,
 * *is_index set; NULL with the reason in why (n bytes) when it is neither (cap_oci.c). */
json_t *pw_hostcap_oci_manifest_json(const uint8_t *body, size_t len, bool *is_index, char *why, size_t n);

/* "Callback evaluation failure: <fmt>" into answer; returns PW_ERROR. */
int pw_hostcap_fail(pw_buf *answer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text as is (a payload that does not decode); returns PW_EINVALID. */
int pw_hostcap_bad_payload(pw_buf *answer, const char *msg);
/* Appends the compact JSON text of v (JSON_ENCODE_ANY) to answer; 0 or PW_ENOMEM (with
 * the text "host out of memory" in answer). Does not take the reference. */
int pw_hostcap_answer_json(pw_buf *answer, const json_t *v);
/* The payload as a JSON string (Kubewarden's String requests: image, host): the value, or
 * NULL after writing serde's message for another type into answer. */
const char *pw_hostcap_payload_string(const pw_hostcap_call *c, pw_buf *answer);

/* ---- answer caches: bounded, time-limited, thread-safe (hostcap_cache.c) ---------------- */

typedef struct pw_hostcap_cache pw_hostcap_cache;

/* A cache of at most max_entries answers, each kept ttl seconds. NULL on ENOMEM. */
pw_hostcap_cache *pw_hostcap_cache_new(size_t max_entries, double ttl);
void pw_hostcap_cache_free(pw_hostcap_cache *k);
/* Appends the answer cached for key to out: 0, or PW_ENOTFOUND (absent or expired). */
int pw_hostcap_cache_get(pw_hostcap_cache *k, const char *key, pw_buf *out);
/* Stores a copy of the answer for key (replacing any); when full, the entry closest to
 * expiry goes. 0 or PW_ENOMEM (the cache is unchanged then). */
int pw_hostcap_cache_put(pw_hostcap_cache *k, const char *key, const uint8_t *data, size_t len);
/* Entries currently held (expired ones included until they are replaced). */
size_t pw_hostcap_cache_count(pw_hostcap_cache *k);

#endif
