# Tests of the host part (policy evaluation).
pw_add_c_test(test_host_json ${CMAKE_SOURCE_DIR}/tests/host/test_host_json.c pw_host pw_engine pw_util)
target_include_directories(test_host_json PRIVATE ${CMAKE_SOURCE_DIR}/tests)
pw_add_c_test(test_host_policy ${CMAKE_SOURCE_DIR}/tests/host/test_host_policy.c pw_host pw_engine pw_util)
target_include_directories(test_host_policy PRIVATE ${CMAKE_SOURCE_DIR}/tests)
pw_quick_variant(test_host_policy test_host_policy)

# bench/eval (not built by default): bash bench/eval/run.sh BUILD_DIR
add_executable(bench_eval EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/bench/eval/bench_eval.c)
target_link_libraries(bench_eval PRIVATE pw_host pw_engine pw_util)
set_target_properties(bench_eval PROPERTIES ENABLE_EXPORTS ON)

pw_add_sh_test(test_cli_eval ${CMAKE_SOURCE_DIR}/tests/host/test_cli_eval.sh)

# The Rego builtins (src/host/opa_*.c) on their own: tests/host/opa/builtin_cases.json and more.
pw_add_c_test(test_opa_builtins ${CMAKE_SOURCE_DIR}/tests/host/test_opa_builtins.c pw_host pw_engine pw_util)

# Host capabilities through both ABIs (tests/host/test_hostcap*.c share hostcap_support.c).
add_library(pw_test_hostcap STATIC ${CMAKE_SOURCE_DIR}/tests/host/hostcap_support.c)
target_include_directories(pw_test_hostcap PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(pw_test_hostcap PUBLIC pw_host pw_engine pw_util)
pw_add_c_test(test_hostcap ${CMAKE_SOURCE_DIR}/tests/host/test_hostcap.c pw_test_hostcap)
target_include_directories(test_hostcap PRIVATE ${CMAKE_SOURCE_DIR}/tests)
pw_add_sh_test(test_hostcap_oci ${CMAKE_SOURCE_DIR}/tests/host/test_hostcap_oci.sh)
set_tests_properties(test_hostcap_oci PROPERTIES RUN_SERIAL ON)
pw_add_c_test(test_hostcap_crypto ${CMAKE_SOURCE_DIR}/tests/host/test_hostcap_crypto.c pw_test_hostcap PkgConfig::CRYPTO)
target_include_directories(test_hostcap_crypto PRIVATE ${CMAKE_SOURCE_DIR}/tests)
