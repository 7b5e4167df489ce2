/*
 * Fuzz target for the wasm reader (src/engine/wasm.c): module bytes come from
 * registries and URLs, so any input must give a clean error or a module whose
 * every field the helpers can walk (signatures, function types, exports).
 * Seeds in fuzz/corpus/wasm/ are replayed by ctest (fuzz-replay-wasm).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm/wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pw_wasm_module *m = NULL;
	char sig[128], feats[256];
	if (pw_wasm_parse(&m, data, size) != 0) {
		if (m)
			abort();   /* no module on failure */
		return 0;
	}
	pw_wasm_features_str(m->features, feats, sizeof feats);
	for (uint32_t i = 0; i < m->nimported_funcs + m->nfuncs + 1; i++) {
		const pw_wasm_functype *t = pw_wasm_func_type(m, i);
		if (!t && i < m->nimported_funcs + m->nfuncs)
			abort();   /* every function has a type */
		pw_wasm_sig_string(t, sig, sizeof sig);
	}
	for (uint32_t i = 0; i < m->nimports; i++)
		if (strlen(m->imports[i].module) + strlen(m->imports[i].name) > size)
			abort();
	for (uint32_t i = 0; i < m->nexports; i++)
		if (pw_wasm_find_export(m, m->exports[i].name, m->exports[i].kind) == NULL)
			abort();
	if (m->kw_metadata_len > size)
		abort();
	pw_wasm_module_free(m);
	return 0;
}
