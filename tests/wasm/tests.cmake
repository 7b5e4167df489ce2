# Tests of the wasm reader, WASI and `prewarm inspect` / `prewarm run` (part "wasi").
pw_add_c_test(test_wasm ${CMAKE_CURRENT_LIST_DIR}/test_wasm.c pw_engine pw_util)
pw_add_c_test(test_wasi ${CMAKE_CURRENT_LIST_DIR}/test_wasi.c pw_engine pw_util)
pw_add_c_test(test_run_traps ${CMAKE_CURRENT_LIST_DIR}/test_run_traps.c pw_util)
add_dependencies(test_run_traps prewarm)
pw_quick_variant(test_run_traps test_run_traps)
pw_add_sh_test(test_run_wasi ${CMAKE_CURRENT_LIST_DIR}/test_run_wasi.sh)
pw_add_sh_test(test_inspect ${CMAKE_CURRENT_LIST_DIR}/test_inspect.sh)
# Real third-party programs (TinyGo, Rust) from PREWARM_CORPUS: big compiles, so once and not under ASan.
pw_add_sh_test(test_run_corpus ${CMAKE_CURRENT_LIST_DIR}/test_run_corpus.sh)
set_tests_properties(test_run_corpus PROPERTIES LABELS no-asan)
pw_quick_variant(test_run_corpus bash ${CMAKE_CURRENT_LIST_DIR}/test_run_corpus.sh)
# Read-only preopened directories (`prewarm run --dir`): wasi_fs fixture over a real tree.
pw_add_sh_test(test_run_fs ${CMAKE_CURRENT_LIST_DIR}/test_run_fs.sh)
