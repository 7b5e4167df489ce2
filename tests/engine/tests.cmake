# Engine tests: the C API on real compiles of tests/fixtures/wat/engine_*.wat, and
# `prewarm compile` / `prewarm engine` through the binary.
pw_add_c_test(test_engine ${CMAKE_SOURCE_DIR}/tests/engine/test_engine.c pw_engine pw_util)
pw_quick_variant(test_engine test_engine)
pw_add_sh_test(test_engine_cli ${CMAKE_SOURCE_DIR}/tests/engine/test_cli.sh)
pw_add_c_test(test_probe_cache ${CMAKE_SOURCE_DIR}/tests/engine/test_probe_cache.c pw_engine pw_util)
