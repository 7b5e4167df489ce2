/*
 * The Kubernetes client behind the context-aware host capabilities (kubernetes/
 * list_resources_by_namespace, list_resources_all, get_resource, can_i): a small client of
 * the Kubernetes API over libcurl, configured in-cluster (service account token, CA,
 * KUBERNETES_SERVICE_HOST/PORT) or from a kubeconfig, with an informer-like cache: one
 * list+watch per (apiVersion, kind, namespace, selectors, field masks) kept current by a
 * watch stream, so evaluations read memory instead of asking the API server. The same API
 * also answers from a file of objects (`prewarm eval --allow-context-aware FILE`).
 *
 * pw_k8s_answer() takes one host call (operation name + Kubewarden's JSON request) and
 * produces exactly what Kubewarden's policy-evaluator hands the guest: the JSON answer, or
 * the host error text. See docs/kubernetes.md for the wire format and what is tested how.
 */
#ifndef PREWARM_K8S_H
#define PREWARM_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pw_k8s pw_k8s;

typedef struct pw_k8s_opts {
	/* A kubeconfig file (or a ':'-separated list, like $KUBECONFIG). NULL: $KUBECONFIG, then
	 * ~/.kube/config when it exists, then the in-cluster configuration (kube-rs's order). */
	const char *kubeconfig;
	/* The kubeconfig context to use; NULL = its current-context. */
	const char *context;
	/* In-cluster: the directory with token, ca.crt (NULL = the standard
	 * /var/run/secrets/kubernetes.io/serviceaccount). The host and port come from
	 * KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT. */
	const char *serviceaccount_dir;
	/* Force the in-cluster configuration even when a kubeconfig exists. */
	bool in_cluster;
	/* Bounds of one request (0 = defaults: connect 5 s, whole request 10 s). */
	double connect_timeout;
	double timeout;
} pw_k8s_opts;

/*
 * Configures a client (reads the configuration and credentials; no network yet). Errors name
 * what is missing or wrong: PW_ENOTFOUND when no configuration exists at all (no kubeconfig
 * and not in a cluster), PW_EINVALID for a malformed kubeconfig or an unsupported
 * authentication (exec, auth-provider), PW_EIO for unreadable files.
 */
int pw_k8s_new(pw_k8s **out, const pw_k8s_opts *opts);

/*
 * A client answering from a file of Kubernetes objects instead of an API server: YAML (one
 * or more documents) or JSON; each document an object, a list object ({"kind": "...List",
 * "items": [...]}) or an array of objects. Objects of kind SubjectAccessReview with a `spec`
 * and a `status` answer can_i calls whose request matches their spec. PW_EINVALID naming
 * the file and the object that is wrong.
 */
int pw_k8s_new_from_file(pw_k8s **out, const char *path);

/* Stops the watches (joins their threads) and frees. NULL is a no-op. */
void pw_k8s_free(pw_k8s *k);

/* Is (apiVersion, kind) granted to the calling policy (its contextAwareResources)? */
typedef bool (*pw_k8s_allowed_fn)(void *arg, const char *api_version, const char *kind);

/*
 * One host call: `op` is the operation ("list_resources_by_namespace", "list_resources_all",
 * "get_resource", "can_i"), payload Kubewarden's JSON request. On 0 the JSON answer is
 * appended to `answer`; on failure the host error text the guest gets (Kubewarden's texts:
 * the serde error of a bad request, "Policy has not been granted access to Kubernetes
 * V/K resources. The violation has been reported.", "Callback evaluation failure: ...").
 * `allowed` gates the kinds of the three list/get operations (NULL = none allowed; can_i is
 * not gated, as in Kubewarden). `k` may be NULL: granted calls then fail with
 * "Callback evaluation failure: kube::Client was not initialized properly" followed by
 * `why` when given. Thread-safe.
 */
int pw_k8s_answer(pw_k8s *k, const char *why, const char *op, const uint8_t *payload, size_t len,
                  pw_k8s_allowed_fn allowed, void *arg, pw_buf *answer);

/*
 * The data document of a context-aware Rego policy: every object of each (apiVersion, kind)
 * pair in `resources` (2 * n strings: its contextAwareResources), listed as
 * list_resources_all lists it (the watched cache; the file in file mode), arranged as
 * Kubewarden's rego runtime does: for OPA (gatekeeper false) the value of data.kubernetes,
 * {PLURAL: {NAMESPACE: {NAME: obj}}} for namespaced kinds and {PLURAL: {NAME: obj}} for
 * cluster-wide ones; for Gatekeeper the value of data.inventory, {"cluster": {APIVERSION:
 * {KIND: {NAME: obj}}}, "namespace": {NAMESPACE: {APIVERSION: {KIND: {NAME: obj}}}}}.
 * Compact JSON with sorted keys appended to `out`. On failure `out` gets the error text,
 * naming the kind that could not be listed ("cannot build the Kubernetes context of the
 * policy: listing v1/Pod: ..."); `k` NULL fails with `why`. Thread-safe.
 */
int pw_k8s_inventory(pw_k8s *k, const char *why, bool gatekeeper, const char *const *resources, size_t n,
                     pw_buf *out);

/* Counters (tests, metrics): API requests made by the client, by kind. */
typedef struct pw_k8s_stats {
	uint64_t lists;        /* list requests (pages included) */
	uint64_t watches;      /* watch requests started */
	uint64_t gets;         /* GETs of one object */
	uint64_t reviews;      /* SubjectAccessReview POSTs */
	uint64_t discoveries;  /* /api/v1, /apis/G/V */
	uint64_t relists;      /* re-lists after 410 Gone */
	uint64_t events;       /* watch events applied */
	uint64_t errors;       /* failed requests / broken streams */
} pw_k8s_stats;
void pw_k8s_get_stats(pw_k8s *k, pw_k8s_stats *out);

/* The API server URL in use ("https://host:port"), NULL in file mode. */
const char *pw_k8s_server(const pw_k8s *k);

#ifdef __cplusplus
}
#endif
#endif
