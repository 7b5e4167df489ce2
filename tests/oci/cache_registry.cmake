# The registry tier of the cache (src/cache/registry.c) against real registries.
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cache/registry.c)
  pw_add_c_test(test_cache_registry ${CMAKE_SOURCE_DIR}/tests/cache_registry/test_cache_registry.c
                pw_cache pw_oci pw_engine pw_util)
  set_tests_properties(test_cache_registry PROPERTIES RUN_SERIAL ON)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/cache_registry/concurrent.sh)
    pw_add_sh_test(test_cache_registry_concurrent ${CMAKE_SOURCE_DIR}/tests/cache_registry/concurrent.sh)
    set_tests_properties(test_cache_registry_concurrent PROPERTIES RUN_SERIAL ON)
  endif()
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/cache_registry/warm.sh AND EXISTS ${CMAKE_SOURCE_DIR}/src/cli/cmd_cache_warm.c)
  pw_add_sh_test(test_cache_warm ${CMAKE_SOURCE_DIR}/tests/cache_registry/warm.sh)
  set_tests_properties(test_cache_warm PROPERTIES RUN_SERIAL ON)
endif()
