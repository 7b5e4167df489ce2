# Signature verification (include/prewarm/sigstore.h): the config parser and the signature
# logic without a registry, then against a real registry through `prewarm pull
# --verification-path`, with signatures made by the openssl command and attached by
# cosign_tool (tests/sigstore/cosign_helper.c, the project's OCI push code).
add_library(pw_test_cosign STATIC ${CMAKE_SOURCE_DIR}/tests/sigstore/cosign_helper.c)
target_link_libraries(pw_test_cosign PUBLIC pw_oci pw_util)
target_include_directories(pw_test_cosign PUBLIC ${CMAKE_SOURCE_DIR}/tests/sigstore)
pw_add_c_test(test_sigstore_unit ${CMAKE_SOURCE_DIR}/tests/sigstore/test_sigstore_unit.c pw_test_cosign pw_oci pw_util)
add_executable(cosign_tool ${CMAKE_SOURCE_DIR}/tests/sigstore/cosign_tool.c)
target_link_libraries(cosign_tool PRIVATE pw_test_cosign pw_oci pw_util)
pw_add_sh_test(test_sigstore_registry ${CMAKE_SOURCE_DIR}/tests/sigstore/test_sigstore_registry.sh)
set_property(TEST test_sigstore_registry APPEND PROPERTY ENVIRONMENT COSIGN_TOOL=$<TARGET_FILE:cosign_tool>)
