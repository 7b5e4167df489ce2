# Cache tests: byte-level pieces and the local backend (test_cache_local), the tier logic
# with real artifacts and a fake backend that counts calls (test_cache_tiers), and shell
# tests driving the real prewarm binary with several processes (tests/cache/*.sh).
pw_add_c_test(test_cache_local ${CMAKE_SOURCE_DIR}/tests/cache/test_local.c pw_cache pw_util)
pw_add_c_test(test_cache_tiers ${CMAKE_SOURCE_DIR}/tests/cache/test_tiers.c pw_cache pw_engine pw_util)
add_executable(cache_tool ${CMAKE_SOURCE_DIR}/tests/cache/cache_tool.c ${CMAKE_SOURCE_DIR}/src/cli/cache_opts.c)
target_link_libraries(cache_tool PRIVATE pw_cache pw_oci pw_engine pw_util)
set_target_properties(cache_tool PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(cache_tool pw_fixtures)
pw_add_sh_test(test_cache_concurrent ${CMAKE_SOURCE_DIR}/tests/cache/concurrent.sh)
pw_add_sh_test(test_cache_crash ${CMAKE_SOURCE_DIR}/tests/cache/crash.sh)
pw_add_sh_test(test_cache_bad_dir ${CMAKE_SOURCE_DIR}/tests/cache/bad_dir.sh)
pw_add_c_test(test_cache_claims ${CMAKE_SOURCE_DIR}/tests/cache/test_claims.c pw_cache pw_engine pw_util)
# Single flight across processes: lease files in a shared directory, gcc behind a gate.
pw_add_sh_test(test_cache_single_flight ${CMAKE_SOURCE_DIR}/tests/cache/single_flight.sh)
# bench/cache (not built by default; bench/cache/run.sh builds it)
add_executable(bench_cache EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/bench/cache/bench_cache.c)
target_link_libraries(bench_cache PRIVATE pw_cache pw_oci pw_engine pw_util)
set_target_properties(bench_cache PROPERTIES ENABLE_EXPORTS ON)
pw_add_c_test(test_cache_opts ${CMAKE_SOURCE_DIR}/tests/cache/test_opts.c pw_cache pw_oci pw_engine pw_util)
target_sources(test_cache_opts PRIVATE ${CMAKE_SOURCE_DIR}/src/cli/cache_opts.c)
