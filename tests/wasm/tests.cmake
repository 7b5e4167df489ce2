# Tests of the wasm reader, WASI and `prewarm inspect` / `prewarm run` (part "wasi").
pw_add_c_test(test_wasm ${CMAKE_CURRENT_LIST_DIR}/test_wasm.c pw_engine pw_util)
