# Tests of the host part (policy evaluation).
pw_add_c_test(test_host_json ${CMAKE_SOURCE_DIR}/tests/host/test_host_json.c pw_host pw_engine pw_util)
target_include_directories(test_host_json PRIVATE ${CMAKE_SOURCE_DIR}/tests)
