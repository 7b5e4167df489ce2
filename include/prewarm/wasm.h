/*
 * The WebAssembly binary reader: a strict, bounds-checked parse of a module's
 * sections (no code validation: wasm-validate does that) that tells what a
 * module imports and exports, which features it uses, which ABI it looks like,
 * and carries the io.kubewarden.metadata custom section. Outside input: every
 * read is bounds-checked and fuzzed (fuzz/fuzz_wasm.c).
 */
#ifndef PREWARM_WASM_H
#define PREWARM_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prewarm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Value types, as in the binary format. */
enum {
	PW_WASM_I32 = 0x7f, PW_WASM_I64 = 0x7e, PW_WASM_F32 = 0x7d, PW_WASM_F64 = 0x7c,
	PW_WASM_V128 = 0x7b, PW_WASM_FUNCREF = 0x70, PW_WASM_EXTERNREF = 0x6f,
};

enum pw_wasm_kind { PW_WASM_FUNC = 0, PW_WASM_TABLE = 1, PW_WASM_MEMORY = 2, PW_WASM_GLOBAL = 3, PW_WASM_TAG = 4 };

typedef struct pw_wasm_functype {
	uint32_t nparams, nresults;
	uint8_t *params;   /* PW_WASM_* value types */
	uint8_t *results;
} pw_wasm_functype;

typedef struct pw_wasm_import {
	char *module, *name;       /* NUL-terminated copies (names may hold any UTF-8) */
	uint8_t kind;              /* enum pw_wasm_kind */
	uint32_t type_index;       /* for functions: index into types */
	/* memory/table limits, global type */
	uint64_t min, max; bool has_max; uint8_t valtype; bool mutable_;
} pw_wasm_import;

typedef struct pw_wasm_table {
	uint8_t elemtype;          /* PW_WASM_FUNCREF / PW_WASM_EXTERNREF */
	uint64_t min, max; bool has_max;
} pw_wasm_table;

typedef struct pw_wasm_export {
	char *name;
	uint8_t kind;
	uint32_t index;            /* in the kind's index space (imports first) */
} pw_wasm_export;

/* Feature bits: what the module uses beyond the MVP. */
enum pw_wasm_feature {
	PW_FEAT_SIMD = 1u << 0,
	PW_FEAT_BULK_MEMORY = 1u << 1,
	PW_FEAT_REFERENCE_TYPES = 1u << 2,
	PW_FEAT_MULTI_VALUE = 1u << 3,
	PW_FEAT_SIGN_EXTENSION = 1u << 4,
	PW_FEAT_SAT_FLOAT_TO_INT = 1u << 5,
	PW_FEAT_MUTABLE_GLOBALS = 1u << 6,  /* imported/exported mutable globals */
	PW_FEAT_THREADS = 1u << 7,          /* shared memory / atomics */
	PW_FEAT_EXCEPTIONS = 1u << 8,
	PW_FEAT_TAIL_CALL = 1u << 9,
	PW_FEAT_MEMORY64 = 1u << 10,
	PW_FEAT_MULTI_MEMORY = 1u << 11,
};

typedef enum pw_wasm_abi {
	PW_ABI_UNKNOWN = 0,
	PW_ABI_WAPC,          /* exports __guest_call */
	PW_ABI_WASI_COMMAND,  /* exports _start, no __guest_call */
	PW_ABI_OPA,           /* exports opa_eval (OPA / Gatekeeper) */
} pw_wasm_abi;

typedef struct pw_wasm_module {
	uint32_t ntypes; pw_wasm_functype *types;
	uint32_t nimports; pw_wasm_import *imports;
	uint32_t nexports; pw_wasm_export *exports;
	uint32_t nfuncs;            /* defined (non-imported) functions */
	uint32_t *func_types;       /* type index of each defined function */
	uint32_t nimported_funcs;
	uint32_t nmemories, ntables, nglobals; /* defined ones */
	uint64_t mem_min, mem_max; bool mem_has_max; /* first memory (imported or defined), in 64 KiB pages */
	/* every global, imports first: value type and mutability */
	uint32_t nglobals_all; uint8_t *global_valtypes; bool *global_mutable;
	/* every table, imports first: element type and limits */
	uint32_t ntables_all; pw_wasm_table *tables;
	bool has_start;
	uint32_t features;          /* enum pw_wasm_feature bits */
	size_t code_size;           /* bytes of the code section */
	uint8_t *kw_metadata;       /* io.kubewarden.metadata payload (not NUL-terminated), or NULL */
	size_t kw_metadata_len;
	pw_wasm_abi abi;            /* guessed from exports */
} pw_wasm_module;

/*
 * Parses `bytes`. Errors (PW_EINVALID with the offset and what was expected):
 * bad magic, bad version, truncated or garbage sections. A component-model
 * binary (version 0x0d layer 1) is PW_EUNSUPPORTED "component-model binary".
 * SIMD code is reported in `features`, not refused here (the engine refuses it).
 * `*out` is malloc'd; free with pw_wasm_module_free().
 */
int pw_wasm_parse(pw_wasm_module **out, const uint8_t *bytes, size_t len);
void pw_wasm_module_free(pw_wasm_module *m);

/* Type of a function in the function index space (imports first); NULL if out of range. */
const pw_wasm_functype *pw_wasm_func_type(const pw_wasm_module *m, uint32_t func_index);
/* Signature string of a function type: params ':' results with i/I/f/F for i32/i64/f32/f64,
 * r for funcref, e for externref, v for v128. E.g. (i32,i32)->i32 is "ii:i", ()->() is ":". */
void pw_wasm_sig_string(const pw_wasm_functype *t, char *out, size_t n);
const pw_wasm_export *pw_wasm_find_export(const pw_wasm_module *m, const char *name, int kind);
const char *pw_wasm_abi_name(pw_wasm_abi abi);   /* "waPC", "WASI command", "OPA", "unknown" */
const char *pw_wasm_valtype_name(uint8_t t);     /* "i32", ... */
/* Comma-separated feature names into buf ("simd,bulk-memory"); "" when none. */
const char *pw_wasm_features_str(uint32_t features, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
