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
# Rego-shaped fixtures following OPA's WebAssembly ABI, generated from the specs in
# tests/host/opa/ (opa build -t wasm is not packaged for Debian; see docs/rego.md).
# python3 is a test tool (scripts/install-deps.sh --test): without it (scripts/serve-example.sh
# installs only what building and running need) these fixtures are not generated.
find_program(PYTHON3 python3)
if(NOT PYTHON3)
  message(STATUS "python3 not found: the OPA fixtures are not generated (test_opa_policy needs them)")
endif()
set(_pw_opa_gen ${CMAKE_SOURCE_DIR}/tests/host/opa/gen_opa_fixture.py)
set(_pw_opa_fixtures)
function(pw_opa_fixture name spec)
  if(NOT PYTHON3)
    return()
  endif()
  add_custom_command(OUTPUT ${PW_FIXTURE_DIR}/${name}.wasm
    COMMAND ${PYTHON3} ${_pw_opa_gen} ${CMAKE_SOURCE_DIR}/tests/host/opa/${spec}
            ${PW_FIXTURE_DIR}/${name}.wasm --wat2wasm ${WAT2WASM} ${ARGN}
    DEPENDS ${_pw_opa_gen} ${CMAKE_SOURCE_DIR}/tests/host/opa/${spec} VERBATIM)
  set(_pw_opa_fixtures ${_pw_opa_fixtures} ${PW_FIXTURE_DIR}/${name}.wasm PARENT_SCOPE)
endfunction()
pw_opa_fixture(opa_policy policy_spec.json)
pw_opa_fixture(opa_policy_classic policy_spec.json --minor 1)
pw_opa_fixture(opa_policy_meta policy_spec.json --metadata "{\"protocolVersion\":\"v1\",\"executionMode\":\"opa\"}")
pw_opa_fixture(opa_gatekeeper gatekeeper_spec.json --metadata "{\"protocolVersion\":\"v1\",\"executionMode\":\"gatekeeper\"}")
pw_opa_fixture(opa_missing_builtins missing_builtins_spec.json)
# Context-aware Rego (contextAwareResources v1/Namespace): their answers depend on the
# Kubernetes data document (tests/k8s/test_k8s.c, tests/k8s/eval_context_aware.sh).
pw_opa_fixture(opa_context context_spec.json --metadata "{\"protocolVersion\":\"v1\",\"executionMode\":\"opa\",\"contextAwareResources\":[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\"}]}")
pw_opa_fixture(opa_gatekeeper_context gatekeeper_context_spec.json --metadata "{\"protocolVersion\":\"v1\",\"executionMode\":\"gatekeeper\",\"contextAwareResources\":[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\"}]}")
pw_opa_fixture(opa_builtins builtin_cases.json)
pw_opa_fixture(opa_builtins_classic builtin_cases.json --minor 1)
add_custom_target(pw_opa_fixtures ALL DEPENDS ${_pw_opa_fixtures})
add_dependencies(pw_fixtures pw_opa_fixtures)
pw_add_c_test(test_opa_policy ${CMAKE_SOURCE_DIR}/tests/host/test_opa_policy.c pw_host pw_engine pw_util)
target_include_directories(test_opa_policy PRIVATE ${CMAKE_SOURCE_DIR}/tests)
pw_quick_variant(test_opa_policy test_opa_policy)
# OPA's JavaScript SDK (npm, installed into the build tree) against prewarm eval -e opa.
pw_add_sh_test(test_opa_differential ${CMAKE_SOURCE_DIR}/tests/host/test_opa_differential.sh)
set_tests_properties(test_opa_differential PROPERTIES LABELS no-asan)
pw_add_c_test(test_hostcap_k8s ${CMAKE_SOURCE_DIR}/tests/host/test_hostcap_k8s.c pw_test_hostcap)
target_include_directories(test_hostcap_k8s PRIVATE ${CMAKE_SOURCE_DIR}/tests)
