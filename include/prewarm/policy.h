/*
 * Policy evaluation: runs Kubewarden policies (waPC guests and WASI commands) on loaded
 * artifacts and shapes their answers exactly as Kubewarden's policy-server does.
 *
 * A pw_policy binds one loaded artifact to one policies.yml entry (settings, mode,
 * allowedToMutate, custom message, timeout, host capabilities). It keeps `workers` instance
 * slots: a caller passes pw_policy_evaluate() a slot index that it holds alone for the call
 * (the HTTP server hands them out from a free list), so slots need no locks and different
 * callers evaluate the same policy in parallel. Each request runs in
 * a fresh instance (state and memory grown by one request never leak into the next, see
 * docs/policies.md and bench/eval); a trap, a guest error or a timeout answers that request
 * with an error (allowed false, code 500) and the policy keeps serving.
 *
 * The host functions every policy may import (waPC "wapc", WASI under both module names,
 * "host.call" for WASI policies) are one process-wide table, pw_policy_host_imports(), that
 * the engine's import check, the cache and the loader must all use.
 */
#ifndef PREWARM_POLICY_H
#define PREWARM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"
#include "prewarm/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pw_policy_mode {
	PW_POLICY_PROTECT = 0,   /* the verdict is enforced (default) */
	PW_POLICY_MONITOR,       /* always allowed, no patch; the verdict is only logged */
} pw_policy_mode;

typedef enum pw_policy_abi {
	PW_POLICY_ABI_WAPC = 1,  /* kubewarden-wapc: __guest_call */
	PW_POLICY_ABI_WASI,      /* wasi: _start with argv validate / validate-settings */
	PW_POLICY_ABI_OPA,       /* opa: Rego, input {"request": ...}, data = settings */
	PW_POLICY_ABI_GATEKEEPER,/* gatekeeper: Rego, input {"review": ..., "parameters": settings} */
} pw_policy_abi;

/* Which endpoint a request came through (Kubewarden's /validate, /validate_raw, /audit). */
typedef enum pw_eval_kind {
	PW_EVAL_VALIDATE = 0,    /* body AdmissionReview; answer AdmissionReview */
	PW_EVAL_VALIDATE_RAW,    /* body {"request": any}; answer {"response": {...}} */
	PW_EVAL_AUDIT,           /* like VALIDATE, without monitor/mutation post-processing */
} pw_eval_kind;

/* How a worker's instance lives between requests. */
typedef enum pw_policy_instances {
	PW_POLICY_FRESH = 0,     /* a fresh instance per request (default: nothing leaks) */
	PW_POLICY_REUSE,         /* waPC only: keep the started instance while its memory does not
	                          * grow; discard it after a trap, timeout, guest error or growth */
} pw_policy_instances;

/* A context-aware resource a policy may read (policies.yml contextAwareResources). */
typedef struct pw_policy_resource {
	const char *api_version;
	const char *kind;
} pw_policy_resource;

/* What policies.yml says about one policy. Every string is copied by pw_policy_new. */
typedef struct pw_policy_spec {
	const char *id;                 /* policy id (logs: "policy:<id>"); required */
	const char *settings_json;      /* JSON object text; NULL = {} */
	pw_policy_mode mode;
	bool allowed_to_mutate;
	const char *message;            /* custom rejection message; NULL = the policy's own */
	double timeout_seconds;         /* per evaluation; 0 = default 2 s; < 0 = no timeout */
	/* Allowed host callbacks, each "binding/namespace/operation" where a trailing "*"
	 * matches the rest: "*", "oci" followed by slash-star, "kubewarden/tracing/log".
	 * NULL = every callback allowed (Kubewarden's default); an empty list (n = 0,
	 * non-NULL) = none. */
	const char *const *host_capabilities;
	size_t nhost_capabilities;
	const pw_policy_resource *context_aware;
	size_t ncontext_aware;
	/* What host capabilities are answered from (borrowed: must outlive the policy; shared
	 * by every policy of a server). NULL = no services: granted capabilities answer a host
	 * error saying what is missing. */
	struct pw_host_env *host_env;
	unsigned workers;               /* instance slots (worker indexes 0..workers-1); 0 = 1 */
	uint64_t max_memory_bytes;      /* per instance; 0 = the module's own limit */
	pw_policy_instances instances;  /* default PW_POLICY_FRESH (measured in bench/eval) */
	/* Kubewarden's executionMode (kubewarden-wapc|wapc, wasi, opa, gatekeeper) overriding the
	 * io.kubewarden.metadata section (policies.yml executionMode, prewarm eval -e); NULL =
	 * from the metadata, else from the exports (a Rego module then needs one). */
	const char *execution_mode;
} pw_policy_spec;

typedef struct pw_policy pw_policy;

/*
 * Creates a policy on a loaded artifact (borrowed: it must outlive the policy and must have
 * been loaded with pw_policy_host_imports()). Picks the ABI from the io.kubewarden.metadata
 * section when present (executionMode, protocolVersion) unless spec.execution_mode
 * overrides it, else from the exports. For OPA / Gatekeeper modules, reads the module's
 * builtins and entrypoints (PW_EUNSUPPORTED naming every builtin Prewarm lacks). Errors:
 * PW_EUNSUPPORTED for an unknown execution mode, PW_EINVALID for bad settings JSON, bad
 * metadata, a Rego module with no execution mode, or a module of no known kind.
 * Does not run the guest: call pw_policy_validate_settings next.
 */
int pw_policy_new(pw_policy **out, const pw_policy_spec *spec, pw_artifact *a);
void pw_policy_free(pw_policy *p);

pw_policy_abi pw_policy_get_abi(const pw_policy *p);
const char *pw_policy_abi_name(pw_policy_abi abi);    /* "waPC", "WASI", "OPA", "Gatekeeper" */
/* An executionMode name (kubewarden-wapc or wapc, wasi, opa, gatekeeper): 0, or PW_EINVALID
 * naming the accepted ones. */
int pw_policy_abi_parse(const char *mode, pw_policy_abi *abi);
/* The io.kubewarden.metadata JSON text, or NULL if the module has none. */
const char *pw_policy_metadata(const pw_policy *p);

/*
 * Runs the policy's validate_settings (waPC) / validate-settings (WASI) on its settings, in
 * worker slot `worker`. Returns 0 when the settings are valid; PW_EINVALID when the policy
 * says they are not (*message, malloc'd, holds the policy's reason, and the per-thread error
 * names the policy); PW_ETRAP / PW_ETIMEOUT / PW_ERROR when the guest failed. message may
 * be NULL.
 */
int pw_policy_validate_settings(pw_policy *p, unsigned worker, char **message);

/* What happened in one evaluation (for logs and metrics). */
typedef struct pw_eval_result {
	bool allowed;           /* what the answer says */
	bool policy_allowed;    /* what the policy said (differs in monitor mode) */
	bool mutated;           /* the answer carries a patch */
	int error;              /* 0, or the PW_E* code of a guest failure (answered with 500) */
	int status_code;        /* status.code in the answer, 0 if none */
	bool policy_mutated;    /* the policy's answer had a patch (before monitor mode and the
	                           mutation constraint: Kubewarden's `mutated` metric label) */
	int policy_status_code; /* the policy's status.code before post-processing, 0 if none */
	double seconds;         /* instantiate + run + shape */
} pw_eval_result;

/*
 * Evaluates one request body (`body`, `len` bytes of JSON: an AdmissionReview for
 * VALIDATE/AUDIT, {"request": ...} for VALIDATE_RAW) in worker slot `worker`
 * (< spec.workers; one thread per slot at a time). On 0, *response (malloc'd,
 * NUL-terminated JSON) is the complete answer body the server sends with HTTP 200: also when
 * the guest trapped, timed out or reported an error (then allowed false, status code 500 and
 * result->error set). Returns PW_EINVALID (bad JSON, no "request", request not an object
 * for VALIDATE) without an answer: the server answers 400/422. result may be NULL.
 */
int pw_policy_evaluate(pw_policy *p, unsigned worker, const char *body, size_t len,
                       pw_eval_kind kind, char **response, pw_eval_result *result);

/*
 * A raw Rego evaluation, the equivalent of `opa eval` on the compiled module: `entrypoint`
 * (a name from the module's entrypoints; NULL = id 0, what Kubewarden evaluates) on `input`
 * (JSON text; NULL = undefined) with `data` (JSON text; NULL = {}), in a fresh instance.
 * *result_set (malloc'd) is the result set exactly as OPA's SDKs return it
 * (`[{"result": ...}]`, `[]` when undefined). PW_EINVALID "opa_abort: MSG" when the
 * evaluation aborted; PW_ENOTFOUND naming the module's entrypoints; PW_EINVALID for a policy
 * that is not OPA/Gatekeeper.
 */
int pw_policy_rego_eval(pw_policy *p, unsigned worker, const char *entrypoint, const char *input,
                        size_t input_len, const char *data, size_t data_len, char **result_set);

/*
 * The process-wide host function table for policies: waPC ("wapc" module), WASI preview1
 * subset (wasi_snapshot_preview1 and wasi_unstable) and "host.call". Built once, never freed;
 * NULL only if it could not be built (out of memory; error set).
 */
const pw_imports *pw_policy_host_imports(void);

/* ---- host capabilities (docs/host-capabilities.md) ----------------------------------- */

/* The services and answer caches host capabilities use, shared by every policy and thread
 * of a server or an eval. Families add their settings here. */
typedef struct pw_host_env_opts {
	/* The oci family: registry credentials (Docker config.json, or a directory holding one; NULL =
	 * anonymous) and sources.yml (insecure registries, extra CAs; NULL = none), as for
	 * fetching policies. The host calls get their own client with short timeouts. */
	const char *docker_config_path;
	const char *sources_path;
	/* The kubernetes family. kubernetes_objects: answer from this file of objects (YAML or
	 * JSON; `prewarm eval --allow-context-aware`); a bad file fails pw_host_env_new. Else the
	 * API server is found from `kubeconfig` (NULL: $KUBECONFIG, ~/.kube/config, in-cluster),
	 * when the first policy with contextAwareResources is created; a configuration that fails
	 * then is logged and answered as a host error to the calls, never fatal. */
	const char *kubernetes_objects;
	const char *kubeconfig;
} pw_host_env_opts;

typedef struct pw_host_env pw_host_env;

/* Creates an environment (opts may be NULL: defaults). Errors name the file that is
 * wrong (PW_EINVALID / PW_EIO) or PW_ENOMEM. */
int pw_host_env_new(pw_host_env **out, const pw_host_env_opts *opts);
/* Frees it; every policy using it must be gone. NULL is a no-op. */
void pw_host_env_free(pw_host_env *env);

/* 0 when `pattern` is a valid hostCapabilities pattern (Kubewarden's host_capabilities.rs:
 * "*", a capability such as "oci/v1/manifest_digest", or a group: "oci" or "oci/v1" followed by "/" and "*"),
 * else PW_EINVALID with a message naming the pattern and what is wrong. */
int pw_host_capability_pattern_check(const char *pattern);

/* ---- pieces usable on their own (the patch differ, the answer shaper) ----------------- */

/*
 * RFC 6902 JSON Patch text turning `from_json` into `to_json` (both JSON texts), with RFC
 * 6901 pointers (~0, ~1). *patch is malloc'd ("[]" when equal). PW_EINVALID on bad JSON.
 */
int pw_policy_json_patch(const char *from_json, const char *to_json, char **patch);

#ifdef __cplusplus
}
#endif
#endif
