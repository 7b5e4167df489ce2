/*
 * Policies: one loaded artifact bound to one policies.yml entry, with one instance slot per
 * worker thread, and the evaluation of requests and settings on it.
 *
 * ABI: policies.yml executionMode (prewarm eval -e) decides, else the io.kubewarden.metadata
 * section (executionMode kubewarden-wapc / wasi / opa / gatekeeper), else the exports
 * (__guest_call -> waPC, _start -> WASI; a Rego module needs a mode, as in kwctl). OPA and
 * Gatekeeper policies run through the OPA ABI (opa.c) with the input and data Kubewarden's
 * rego runtime builds (with contextAwareResources, data.kubernetes / data.inventory from the
 * Kubernetes client, src/k8s/inventory.c), and their result sets are shaped as it does
 * (answer.c).
 *
 * Instances: by default every request runs in a fresh instance created from the loaded
 * artifact (for waPC: _start then wapc_init, then one __guest_call), so neither state nor
 * memory grown by one request reaches the next, and a trap or a timeout costs nothing more
 * than the instance it happened in. PW_POLICY_REUSE keeps a started waPC instance in the
 * worker's slot between requests (bench/eval measures both); it is discarded after any
 * failure or when its memory has grown past twice its size after start.
 *
 * Timeouts: each evaluation gets a deadline (pw_instance_set_deadline); the engine checks it
 * at loop heads and function entries and unwinds the wasm frames with PW_ETIMEOUT, which
 * becomes an error answer; the instance is then discarded.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_internal.h"
#include "host/opa_internal.h"
#include "host/hostcap.h"
#include "prewarm/k8s.h"

#define DEFAULT_TIMEOUT 2.0

typedef struct pw_policy_slot {
	pw_host_call call;
	pw_opa_call opa_call;      /* OPA / Gatekeeper: the evaluation state of inst */
	pw_instance *inst;         /* PW_POLICY_REUSE: the started instance kept between requests */
	uint64_t inst_base_mem;    /* its memory size after start */
} pw_policy_slot;

struct pw_policy {
	char *id;
	json_t *settings;
	char *settings_text;
	char *context_members;     /* OPA with contextAwareResources: the settings' members but
	                            * "kubernetes", as JSON text without the braces */
	pw_policy_mode mode;
	bool allowed_to_mutate;
	char *message;
	double timeout;            /* <= 0: none */
	char **caps;
	size_t ncaps;
	bool caps_all;
	char **resources;          /* contextAwareResources: "apiVersion", "kind" pairs */
	size_t nresources;
	pw_host_env *host_env;     /* borrowed */
	pw_artifact *artifact;
	pw_policy_abi abi;
	char *metadata;
	pw_opa *opa;               /* OPA / Gatekeeper */
	int32_t entrypoint;        /* the Rego entrypoint Kubewarden evaluates: id 0 */
	unsigned workers;
	uint64_t max_memory;
	pw_policy_instances instances;
	pw_policy_slot *slots;
};

/* ---- the process-wide import table ----------------------------------------------------- */

static pthread_once_t g_imports_once = PTHREAD_ONCE_INIT;
static pw_imports *g_imports;

static void build_imports(void)
{
	pw_imports *im;
	if (pw_imports_new(&im) < 0)
		return;
	if (pw_imports_add_all(im, pw_host_wapc_funcs, pw_host_wapc_nfuncs) < 0 ||
	    pw_wasi_add_imports(im) < 0 || pw_host_opa_add_imports(im) < 0) {
		pw_imports_free(im);
		return;
	}
	g_imports = im;
}

const pw_imports *pw_policy_host_imports(void)
{
	pthread_once(&g_imports_once, build_imports);
	if (!g_imports)
		pw_error_set(PW_ENOMEM, "policy host imports: could not build the table");
	return g_imports;
}

/* ---- creation ---------------------------------------------------------------------------- */

int pw_policy_abi_parse(const char *mode, pw_policy_abi *abi)
{
	if (!strcmp(mode, "kubewarden-wapc") || !strcmp(mode, "wapc"))
		*abi = PW_POLICY_ABI_WAPC;
	else if (!strcmp(mode, "wasi"))
		*abi = PW_POLICY_ABI_WASI;
	else if (!strcmp(mode, "opa"))
		*abi = PW_POLICY_ABI_OPA;
	else if (!strcmp(mode, "gatekeeper"))
		*abi = PW_POLICY_ABI_GATEKEEPER;
	else
		return pw_error_set(PW_EINVALID, "unknown executionMode '%s' (kubewarden-wapc, wasi, opa or "
		                    "gatekeeper)", mode);
	return 0;
}

static bool is_rego(pw_policy_abi abi)
{
	return abi == PW_POLICY_ABI_OPA || abi == PW_POLICY_ABI_GATEKEEPER;
}

/* The ABI the io.kubewarden.metadata section names: 0 (*abi set), 1 when there is no section
 * or it names no executionMode, or an error. */
static int metadata_abi(pw_policy *p, pw_policy_abi *abi)
{
	size_t mlen = 0;
	const char *meta = pw_artifact_kw_metadata(p->artifact, &mlen);
	if (!meta)
		return 1;
	p->metadata = strndup(meta, mlen);
	if (!p->metadata)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
	json_error_t e;
	json_t *m = json_loadb(meta, mlen, 0, &e);
	if (!json_is_object(m)) {
		json_decref(m);
		return pw_error_set(PW_EINVALID, "policy %s: io.kubewarden.metadata is not a JSON object%s%s",
		                    p->id, m ? "" : ": ", m ? "" : e.text);
	}
	const char *mode = json_string_value(json_object_get(m, "executionMode"));
	const char *proto = json_string_value(json_object_get(m, "protocolVersion"));
	int rc = 1;
	if (mode) {
		rc = pw_policy_abi_parse(mode, abi);
		if (rc < 0)
			rc = pw_error_set(PW_EUNSUPPORTED, "policy %s: unknown executionMode '%s' in "
			                  "io.kubewarden.metadata", p->id, mode);
	}
	if (rc >= 0 && (rc == 1 || *abi == PW_POLICY_ABI_WAPC) && proto && strcmp(proto, "v1") != 0)
		rc = pw_error_set(PW_EUNSUPPORTED, "policy %s: waPC protocolVersion '%s' is not "
		                  "supported (only v1)", p->id, proto);
	json_decref(m);
	return rc;
}

/* policies.yml executionMode / prewarm eval -e, else the metadata, else the exports (a Rego
 * module without either is refused: OPA and Gatekeeper feed it different input, as kwctl). */
static int opa_context_members(pw_policy *p);

static int choose_abi(pw_policy *p, const char *override)
{
	pw_artifact *a = p->artifact;
	pw_policy_abi from_meta;
	int rc = metadata_abi(p, &from_meta);
	if (rc < 0)
		return rc;
	if (override) {
		if (pw_policy_abi_parse(override, &p->abi) < 0)
			return pw_error_prefix("policy %s", p->id);
		if (rc == 0 && from_meta != p->abi)
			pw_warn("host", "policy %s: executionMode %s overrides %s from io.kubewarden.metadata", p->id,
			        override, pw_policy_abi_name(from_meta));
	} else if (rc == 0) {
		p->abi = from_meta;
	} else if (pw_opa_is_rego(a)) {
		return pw_error_set(PW_EINVALID, "policy %s: the module was built from Rego and has no "
		                    "executionMode in io.kubewarden.metadata: set executionMode opa or "
		                    "gatekeeper (policies.yml, prewarm eval -e)", p->id);
	} else if (pw_artifact_find_func(a, "__guest_call")) {
		p->abi = PW_POLICY_ABI_WAPC;
	} else if (pw_artifact_find_func(a, "_start")) {
		p->abi = PW_POLICY_ABI_WASI;
	} else {
		return pw_error_set(PW_EINVALID, "policy %s: module is neither a waPC guest (no "
		                    "__guest_call export), a WASI command (no _start export) nor a Rego "
		                    "module (no opa_eval_ctx_new export)", p->id);
	}
	if (p->abi == PW_POLICY_ABI_WAPC && !pw_artifact_find_func(a, "__guest_call"))
		return pw_error_set(PW_EINVALID, "policy %s: waPC policy does not export __guest_call", p->id);
	if (p->abi == PW_POLICY_ABI_WASI && !pw_artifact_find_func(a, "_start"))
		return pw_error_set(PW_EINVALID, "policy %s: WASI policy does not export _start", p->id);
	if (is_rego(p->abi)) {
		char what[300];
		snprintf(what, sizeof what, "policy %s", p->id);
		if (!pw_opa_is_rego(a))
			return pw_error_set(PW_EINVALID, "policy %s: executionMode %s, but the module was not "
			                    "built from Rego (no OPA ABI exports)", p->id, pw_policy_abi_name(p->abi));
		if ((rc = pw_opa_new(&p->opa, a, what)) < 0)
			return rc;
		p->entrypoint = 0;   /* policy-evaluator hard-codes entrypoint 0 */
	}
	return 0;
}

int pw_policy_new(pw_policy **out, const pw_policy_spec *spec, pw_artifact *a)
{
	*out = NULL;
	if (!spec || !spec->id || !*spec->id)
		return pw_error_set(PW_EINVALID, "pw_policy_new: policy id is missing");
	if (!a)
		return pw_error_set(PW_EINVALID, "policy %s: no artifact", spec->id);
	pw_policy *p = calloc(1, sizeof *p);
	if (!p)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", spec->id);
	int rc = PW_ENOMEM;
	p->artifact = a;
	p->mode = spec->mode;
	p->allowed_to_mutate = spec->allowed_to_mutate;
	p->timeout = spec->timeout_seconds == 0 ? DEFAULT_TIMEOUT : spec->timeout_seconds;
	p->workers = spec->workers ? spec->workers : 1;
	p->max_memory = spec->max_memory_bytes;
	p->instances = spec->instances;
	if (!(p->id = strdup(spec->id)))
		goto fail;
	if (spec->message && !(p->message = strdup(spec->message)))
		goto fail;
	json_error_t e;
	p->settings = json_loads(spec->settings_json && *spec->settings_json ? spec->settings_json : "{}",
	                         JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
	if (!p->settings) {
		rc = pw_error_set(PW_EINVALID, "policy %s: settings are not JSON: %s", p->id, e.text);
		goto fail;
	}
	if (json_is_null(p->settings)) {
		json_decref(p->settings);
		p->settings = json_object();
	}
	if (!json_is_object(p->settings)) {
		rc = pw_error_set(PW_EINVALID, "policy %s: settings must be a JSON object", p->id);
		goto fail;
	}
	if (!(p->settings_text = json_dumps(p->settings, JSON_COMPACT)))
		goto fail;
	p->caps_all = spec->host_capabilities == NULL;
	p->host_env = spec->host_env;
	if (spec->nhost_capabilities) {
		if (!(p->caps = calloc(spec->nhost_capabilities, sizeof *p->caps)))
			goto fail;
		for (size_t i = 0; i < spec->nhost_capabilities; i++) {
			const char *c = spec->host_capabilities[i] ? spec->host_capabilities[i] : "";
			if (!(p->caps[i] = strdup(c)))
				goto fail;
			p->ncaps = i + 1;
		}
	}
	if (spec->ncontext_aware) {
		if (!(p->resources = calloc(2 * spec->ncontext_aware, sizeof *p->resources)))
			goto fail;
		p->nresources = spec->ncontext_aware;
		for (size_t i = 0; i < spec->ncontext_aware; i++) {
			const pw_policy_resource *r = &spec->context_aware[i];
			if (!(p->resources[2 * i] = strdup(r->api_version ? r->api_version : "")) ||
			    !(p->resources[2 * i + 1] = strdup(r->kind ? r->kind : "")))
				goto fail;
		}
		/* the Kubernetes client is made now, with the policies that need it */
		const char *why;
		if (p->host_env)
			pw_host_env__kubernetes(p->host_env, &why);
	}
	if ((rc = choose_abi(p, spec->execution_mode)) < 0)
		goto fail;
	if (p->nresources && p->abi == PW_POLICY_ABI_OPA && (rc = opa_context_members(p)) < 0)
		goto fail;
	if (p->instances == PW_POLICY_REUSE && p->abi == PW_POLICY_ABI_WASI)
		p->instances = PW_POLICY_FRESH;  /* a WASI command runs _start once per instance */
	rc = PW_ENOMEM;
	if (!(p->slots = calloc(p->workers, sizeof *p->slots)))
		goto fail;
	for (unsigned i = 0; i < p->workers; i++) {
		pw_host_call_init(&p->slots[i].call, p, p->id);
		pw_opa_call_init(&p->slots[i].opa_call, p->opa, p->slots[i].call.log_tag);
		if (p->opa)
			p->slots[i].call.opa = &p->slots[i].opa_call;
	}
	pw_debug("host", "policy %s: %s ABI, %u worker slots, timeout %g s, mode %s", p->id,
	         pw_policy_abi_name(p->abi), p->workers, p->timeout,
	         p->mode == PW_POLICY_MONITOR ? "monitor" : "protect");
	*out = p;
	return 0;
fail:
	if (rc == PW_ENOMEM)
		pw_error_set(PW_ENOMEM, "policy %s: out of memory", spec->id);
	pw_policy_free(p);
	return rc;
}

void pw_policy_free(pw_policy *p)
{
	if (!p)
		return;
	if (p->slots) {
		for (unsigned i = 0; i < p->workers; i++) {
			pw_instance_free(p->slots[i].inst);
			pw_host_call_free(&p->slots[i].call);
			pw_opa_call_free(&p->slots[i].opa_call);
		}
		free(p->slots);
	}
	for (size_t i = 0; i < p->ncaps; i++)
		free(p->caps[i]);
	free(p->caps);
	for (size_t i = 0; i < 2 * p->nresources; i++)
		free(p->resources[i]);
	free(p->resources);
	json_decref(p->settings);
	free(p->settings_text);
	free(p->context_members);
	free(p->message);
	free(p->metadata);
	pw_opa_free(p->opa);
	free(p->id);
	free(p);
}

pw_policy_abi pw_policy_get_abi(const pw_policy *p) { return p->abi; }
const char *pw_policy_metadata(const pw_policy *p) { return p->metadata; }

const char *pw_policy_abi_name(pw_policy_abi abi)
{
	switch (abi) {
	case PW_POLICY_ABI_WAPC: return "waPC";
	case PW_POLICY_ABI_WASI: return "WASI";
	case PW_POLICY_ABI_OPA: return "OPA";
	case PW_POLICY_ABI_GATEKEEPER: return "Gatekeeper";
	}
	return "unknown";
}

bool pw_policy__capability_allowed(const struct pw_policy *p, const char *binding,
                                   const char *ns, const char *op)
{
	return pw_host_capability_allowed((const char *const *)p->caps, p->ncaps, p->caps_all,
	                                  binding, ns, op);
}

bool pw_policy__resource_allowed(const struct pw_policy *p, const char *api_version, const char *kind)
{
	for (size_t i = 0; p && i < p->nresources; i++)
		if (!strcmp(p->resources[2 * i], api_version) && !strcmp(p->resources[2 * i + 1], kind))
			return true;
	return false;
}

pw_host_env *pw_policy__host_env(const struct pw_policy *p)
{
	return p ? p->host_env : NULL;
}

/* ---- running ----------------------------------------------------------------------------- */

static int new_instance(pw_policy *p, pw_policy_slot *s, pw_instance **inst)
{
	pw_instance_opts o = { .max_memory_bytes = p->max_memory, .host_data = &s->call };
	int rc = pw_instance_new(inst, p->artifact, &o);
	if (rc < 0)
		return pw_error_prefix("policy %s: instantiate", p->id);
	return 0;
}

static void set_deadline(pw_policy *p, pw_instance *inst, double start)
{
	pw_instance_set_deadline(inst, p->timeout > 0 ? start + p->timeout : 0);
}

static int timeout_error(pw_policy *p, int rc)
{
	if (rc == PW_ETIMEOUT)
		return pw_error_set(PW_ETIMEOUT, "policy %s: evaluation timed out after %g s", p->id, p->timeout);
	return rc;
}

static int run_wapc(pw_policy *p, pw_policy_slot *s, const char *op, const uint8_t *payload,
                    size_t len, double start)
{
	pw_instance *inst = s->inst;
	int rc;
	s->inst = NULL;
	if (!inst) {
		if ((rc = new_instance(p, s, &inst)) < 0)
			return rc;
		set_deadline(p, inst, start);
		if ((rc = pw_host_wapc_start(inst, &s->call)) < 0) {
			pw_instance_free(inst);
			return timeout_error(p, rc);
		}
		pw_instance_memory(inst, &s->inst_base_mem);
	} else {
		set_deadline(p, inst, start);
	}
	rc = pw_host_wapc_call(inst, &s->call, op, payload, len);
	uint64_t mem = 0;
	pw_instance_memory(inst, &mem);
	if (rc == 0 && p->instances == PW_POLICY_REUSE && mem <= 2 * s->inst_base_mem)
		s->inst = inst;
	else
		pw_instance_free(inst);
	return timeout_error(p, rc);
}

static int run_wasi(pw_policy *p, pw_policy_slot *s, const char *cmd, const uint8_t *payload,
                    size_t len, double start)
{
	pw_host_call *c = &s->call;
	static char arg0[] = "policy.wasm";
	c->argv[0] = arg0;
	c->argv[1] = (char *)cmd;
	c->argv[2] = NULL;
	c->wasi_ctx.argc = 2;
	c->wasi_ctx.argv = c->argv;
	c->wasi_ctx.stdin_data = payload;
	c->wasi_ctx.stdin_len = len;
	c->wasi_ctx.stdin_pos = 0;
	c->capture_stdout = true;
	pw_instance *inst;
	int rc = new_instance(p, s, &inst);
	if (rc < 0)
		return rc;
	set_deadline(p, inst, start);
	int code = 0;
	rc = pw_wasi_run_start(inst, &code);
	pw_instance_free(inst);
	pw_host_call_flush_logs(c);
	c->capture_stdout = false;
	static const uint8_t empty[1];
	c->wasi_ctx.stdin_data = empty;
	c->wasi_ctx.stdin_len = 0;
	if (rc < 0)
		return timeout_error(p, pw_error_prefix("policy %s: WASI %s", p->id, cmd));
	if (code != 0)
		return pw_error_set(PW_EEXIT, "policy %s: WASI %s exited with code %d (its stderr is in the log)",
		                    p->id, cmd, code);
	return 0;
}

/* One Rego evaluation in slot s: an instance with `data` loaded (fresh, or the one the slot
 * kept under PW_POLICY_REUSE when `keep` says data is the policy's own), then `entrypoint`
 * on `input`; the result set in s->call.out. */
static int run_rego(pw_policy *p, pw_policy_slot *s, bool keep, int32_t entrypoint, const char *data,
                    size_t data_len, const char *input, size_t input_len)
{
	double start = pw_now();
	pw_host_call_reset(&s->call);
	pw_instance *inst = keep ? s->inst : NULL;
	if (keep)
		s->inst = NULL;
	int rc;
	if (!inst) {
		if ((rc = new_instance(p, s, &inst)) < 0)
			return rc;
		set_deadline(p, inst, start);
		if ((rc = pw_opa_prepare(&s->opa_call, inst, data, data_len)) < 0) {
			pw_instance_free(inst);
			return timeout_error(p, rc);
		}
		pw_instance_memory(inst, &s->inst_base_mem);
	} else {
		set_deadline(p, inst, start);
	}
	rc = pw_opa_evaluate(&s->opa_call, inst, entrypoint, input, input_len, &s->call.out);
	uint64_t mem = 0;
	pw_instance_memory(inst, &mem);
	if (rc == 0 && keep && p->instances == PW_POLICY_REUSE && mem <= 2 * s->inst_base_mem)
		s->inst = inst;
	else
		pw_instance_free(inst);
	return timeout_error(p, rc);
}

int pw_policy_rego_eval(pw_policy *p, unsigned worker, const char *entrypoint, const char *input,
                        size_t input_len, const char *data, size_t data_len, char **result_set)
{
	*result_set = NULL;
	if (!is_rego(p->abi))
		return pw_error_set(PW_EINVALID, "policy %s: a raw Rego evaluation needs an OPA or Gatekeeper "
		                    "module (this one is %s)", p->id, pw_policy_abi_name(p->abi));
	if (worker >= p->workers)
		return pw_error_set(PW_EINVALID, "policy %s: worker %u out of range (%u slots)", p->id,
		                    worker, p->workers);
	int32_t id = p->entrypoint;
	if (entrypoint && pw_opa_entrypoint_id(p->opa, entrypoint, &id) < 0)
		return PW_ENOTFOUND;
	pw_policy_slot *s = &p->slots[worker];
	int rc = run_rego(p, s, false, id, data, data_len, input, input_len);
	if (rc < 0)
		return rc;
	*result_set = strndup(s->call.out.data ? (const char *)s->call.out.data : "[]", s->call.out.len);
	return *result_set ? 0 : pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
}

/* Runs `op` (waPC operation name; WASI: "validate" / "validate-settings") and leaves the
 * answer in *out (a buffer of the slot, valid until its next use). */
static int run_op(pw_policy *p, pw_policy_slot *s, bool settings, const uint8_t *payload,
                  size_t len, const pw_buf **out)
{
	double start = pw_now();
	pw_host_call_reset(&s->call);
	int rc;
	if (p->abi == PW_POLICY_ABI_WAPC) {
		rc = run_wapc(p, s, settings ? "validate_settings" : "validate", payload, len, start);
		*out = &s->call.response;
	} else {
		rc = run_wasi(p, s, settings ? "validate-settings" : "validate", payload, len, start);
		*out = &s->call.out;
	}
	return rc;
}

int pw_policy_validate_settings(pw_policy *p, unsigned worker, char **message)
{
	if (message)
		*message = NULL;
	if (worker >= p->workers)
		return pw_error_set(PW_EINVALID, "policy %s: worker %u out of range (%u slots)", p->id,
		                    worker, p->workers);
	if (is_rego(p->abi))
		return 0;   /* Rego policies have no settings validation: Kubewarden answers valid */
	const pw_buf *out;
	int rc = run_op(p, &p->slots[worker], true, (const uint8_t *)p->settings_text,
	                strlen(p->settings_text), &out);
	if (rc < 0)
		return pw_error_prefix("validate settings");
	rc = pw_host_settings_answer(out->data ? out->data : (const uint8_t *)"", out->len, message);
	if (rc < 0)
		return pw_error_prefix("policy %s", p->id);
	return 0;
}

/* An OPA policy with contextAwareResources gets its settings as data with "kubernetes" set to
 * the Kubernetes context: the other members' text, made once (a user's own "kubernetes"
 * setting is overwritten, with a warning, as policy-evaluator's runtime.rs does). */
static int opa_context_members(pw_policy *p)
{
	json_t *settings = json_copy(p->settings);
	char *text;

	if (!settings)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
	if (json_object_del(settings, "kubernetes") == 0)
		pw_warn("policy", "%s: the setting 'kubernetes' is overwritten with the Kubernetes context data", p->id);
	text = json_dumps(settings, JSON_COMPACT);
	json_decref(settings);
	if (!text)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
	size_t n = strlen(text);   /* "{...}": keep what is between the braces */
	memmove(text, text + 1, n - 2);
	text[n - 2] = '\0';
	p->context_members = text;
	return 0;
}

/* The data of a Rego policy with contextAwareResources, built per evaluation from the
 * Kubernetes client's cache (policy-evaluator's stack.rs / runtime.rs): OPA the settings with
 * "kubernetes" set to the inventory (opa_context_members), Gatekeeper {"inventory": ...}. On
 * failure `data` holds the error text. */
static int rego_context_data(pw_policy *p, bool gk, pw_buf *data)
{
	const char *why = NULL;
	pw_k8s *k = pw_host_env__kubernetes(p->host_env, &why);
	pw_buf inv = PW_BUF_INIT;
	int rc = pw_k8s_inventory(k, why, gk, (const char *const *)p->resources, p->nresources, &inv);
	if (rc < 0) {
		pw_buf_append(data, inv.data, inv.len);
		pw_buf_free(&inv);
		return rc;
	}
	/* the inventory goes in as the first member */
	pw_buf_puts(data, gk ? "{\"inventory\":" : "{\"kubernetes\":");
	pw_buf_append(data, inv.data, inv.len);
	if (!gk && p->context_members[0]) {
		pw_buf_puts(data, ",");
		pw_buf_puts(data, p->context_members);
	}
	pw_buf_puts(data, "}");
	pw_buf_free(&inv);
	return 0;
}

/* policy-evaluator's rego runtime: OPA input {"request": request} with the settings as data;
 * Gatekeeper input {"parameters": settings, "review": request} with {} as data, and no raw
 * requests. With contextAwareResources the data also has the Kubernetes context
 * (rego_context_data); it changes from one request to the next, so no instance is kept. */
static int evaluate_rego(pw_policy *p, pw_policy_slot *s, const pw_shape_opts *o, const pw_host_req *r,
                         char **response, pw_eval_result *result)
{
	bool gk = p->abi == PW_POLICY_ABI_GATEKEEPER;
	if (gk && o->kind == PW_EVAL_VALIDATE_RAW)
		return pw_host_error_answer(o, r, "Gatekeeper does not support raw validation requests",
		                            PW_EINVALID, response, result);
	json_t *in = gk ? json_pack("{s:O, s:O}", "parameters", p->settings, "review", r->request)
	                : json_pack("{s:O}", "request", r->request);
	char *input = in ? json_dumps(in, JSON_COMPACT) : NULL;
	json_decref(in);
	if (!input)
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
	const char *data = gk ? "{}" : p->settings_text;
	size_t data_len = strlen(data);
	pw_buf ctx = PW_BUF_INIT;
	int rc;
	if (p->nresources) {
		if ((rc = rego_context_data(p, gk, &ctx)) < 0) {
			free(input);
			pw_warn(s->call.log_tag, "%s", ctx.data ? (const char *)ctx.data : pw_error_last());
			rc = pw_host_error_answer(o, r, ctx.data ? (const char *)ctx.data : pw_error_last(), rc,
			                          response, result);
			pw_buf_free(&ctx);
			return rc;
		}
		data = (const char *)ctx.data;
		data_len = ctx.len;
	}
	rc = run_rego(p, s, p->nresources == 0, p->entrypoint, data, data_len, input, strlen(input));
	pw_buf_free(&ctx);
	free(input);
	if (rc < 0) {
		pw_warn(s->call.log_tag, "evaluation failed: %s", pw_error_last());
		return pw_host_error_answer(o, r, pw_error_last(), rc, response, result);
	}
	return pw_host_shape_rego_answer(o, r, gk, s->call.out.data ? (const char *)s->call.out.data : "",
	                                 s->call.out.len, response, result);
}

int pw_policy_evaluate(pw_policy *p, unsigned worker, const char *body, size_t len,
                       pw_eval_kind kind, char **response, pw_eval_result *result)
{
	double t0 = pw_now();
	*response = NULL;
	if (result)
		memset(result, 0, sizeof *result);
	if (worker >= p->workers)
		return pw_error_set(PW_EINVALID, "policy %s: worker %u out of range (%u slots)", p->id,
		                    worker, p->workers);
	pw_host_req r;
	int rc = pw_host_req_parse(&r, body, len, kind);
	if (rc < 0)
		return pw_error_prefix("policy %s", p->id);
	pw_shape_opts o = { .policy_id = p->id, .mode = p->mode, .allowed_to_mutate = p->allowed_to_mutate,
	                    .message = p->message, .kind = kind };
	if (is_rego(p->abi)) {
		rc = evaluate_rego(p, &p->slots[worker], &o, &r, response, result);
		goto done;
	}
	char *input = pw_host_validate_input(&r, p->settings);
	if (!input) {
		pw_host_req_free(&r);
		return pw_error_set(PW_ENOMEM, "policy %s: out of memory", p->id);
	}
	const pw_buf *out;
	rc = run_op(p, &p->slots[worker], false, (const uint8_t *)input, strlen(input), &out);
	free(input);
	if (rc < 0) {
		pw_warn(p->slots[worker].call.log_tag, "evaluation failed: %s", pw_error_last());
		rc = pw_host_error_answer(&o, &r, pw_error_last(), rc, response, result);
	} else {
		rc = pw_host_shape_answer(&o, &r, out->data ? out->data : (const uint8_t *)"", out->len,
		                          response, result);
	}
done:
	pw_host_req_free(&r);
	double secs = pw_now() - t0;
	if (result)
		result->seconds = secs;
	if (rc == 0 && pw_log_enabled(PW_LOG_DEBUG) && result) {
		char d[32];
		pw_debug(p->slots[worker].call.log_tag, "%s: allowed %s, mutated %s, error %s, in %s",
		         kind == PW_EVAL_VALIDATE_RAW ? "validate_raw" : kind == PW_EVAL_AUDIT ? "audit" : "validate",
		         result->allowed ? "true" : "false", result->mutated ? "true" : "false",
		         result->error ? pw_error_code_str(result->error) : "none",
		         pw_fmt_duration(secs, d, sizeof d));
	}
	return rc;
}
