# Cache tests: byte-level pieces and the local backend (test_cache_local), the tier logic
# with real artifacts and a fake backend that counts calls (test_cache_tiers), and shell
# tests driving the real prewarm binary with several processes (tests/cache/*.sh).
pw_add_c_test(test_cache_local ${CMAKE_SOURCE_DIR}/tests/cache/test_local.c pw_cache pw_util)
pw_add_c_test(test_cache_tiers ${CMAKE_SOURCE_DIR}/tests/cache/test_tiers.c pw_cache pw_engine pw_util)
