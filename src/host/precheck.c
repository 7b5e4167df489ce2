/*
 * A look at a module before it is compiled: modules that are valid WebAssembly but are
 * policies of a kind Prewarm does not run yet (OPA, Gatekeeper) are refused with a message
 * saying so, instead of the import check's "env.memory is a memory import" that would
 * otherwise come first and send an administrator down the wrong path.
 */
#include <string.h>

#include <jansson.h>

#include "prewarm/policy.h"
#include "prewarm/wasm.h"

int pw_policy_precheck(const uint8_t *wasm, size_t len, const char *what)
{
	pw_wasm_module *m = NULL;
	const char *mode = NULL;
	json_t *meta = NULL;
	int rc = 0;

	if (pw_wasm_parse(&m, wasm, len) < 0) {
		pw_error_clear();
		return 0;   /* the engine reports parse errors with their offsets */
	}
	if (m->kw_metadata) {
		meta = json_loadb((const char *)m->kw_metadata, m->kw_metadata_len, 0, NULL);
		mode = json_string_value(json_object_get(meta, "executionMode"));
	}
	if (mode && (!strcmp(mode, "opa") || !strcmp(mode, "gatekeeper")))
		rc = pw_error_set(PW_EUNSUPPORTED, "%s: executionMode '%s' (OPA/Gatekeeper policies) is "
		                  "not supported yet", what, mode);
	else if (!mode && m->abi == PW_ABI_OPA)
		rc = pw_error_set(PW_EUNSUPPORTED, "%s: OPA/Gatekeeper policies (export opa_eval) are not "
		                  "supported yet", what);
	json_decref(meta);
	pw_wasm_module_free(m);
	return rc;
}
