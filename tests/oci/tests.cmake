# OCI client tests: parsers (no network), and the client against real docker-registry
# instances started by tests/lib/registry.sh.
pw_add_c_test(test_oci_unit ${CMAKE_SOURCE_DIR}/tests/oci/test_oci_unit.c pw_oci pw_util)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/oci/test_oci_registry.c)
  pw_add_c_test(test_oci_registry ${CMAKE_SOURCE_DIR}/tests/oci/test_oci_registry.c pw_oci pw_util)
  set_tests_properties(test_oci_registry PROPERTIES RUN_SERIAL ON)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/oci/test_oci_cli.sh)
  pw_add_sh_test(test_oci_cli ${CMAKE_SOURCE_DIR}/tests/oci/test_oci_cli.sh)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/oci/cache_registry.cmake)
  include(${CMAKE_SOURCE_DIR}/tests/oci/cache_registry.cmake)
endif()
