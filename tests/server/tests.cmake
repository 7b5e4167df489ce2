# Tests of the server part: policies.yml parsing (C) and the end-to-end `prewarm serve`
# tests (bash + curl against the real binary).
pw_add_c_test(test_server_policies ${CMAKE_CURRENT_LIST_DIR}/test_policies.c pw_server pw_util)
pw_add_sh_test(test_server_serve ${CMAKE_CURRENT_LIST_DIR}/serve_e2e.sh)
pw_add_sh_test(test_server_serve_registry ${CMAKE_CURRENT_LIST_DIR}/serve_registry.sh)
# Tiering: quick code first, the optimized compile in the background (gcc behind a gate).
pw_add_sh_test(test_server_tiering ${CMAKE_CURRENT_LIST_DIR}/serve_tiering.sh)
# The policy group expression language: operators, precedence, short-circuit, parse errors.
pw_add_c_test(test_server_expr ${CMAKE_CURRENT_LIST_DIR}/test_expr.c pw_server pw_util)
# Policy groups end to end: accept, reject with message and causes, short-circuit, mutation.
pw_add_sh_test(test_server_serve_groups ${CMAKE_CURRENT_LIST_DIR}/serve_groups.sh)
# Mutual TLS and certificate rotation while serving (openssl-made certificates).
pw_add_sh_test(test_server_serve_tls ${CMAKE_CURRENT_LIST_DIR}/serve_tls.sh)
# The README's example policies give the answers serve-example.sh documents.
pw_add_sh_test(test_server_example ${CMAKE_CURRENT_LIST_DIR}/serve_example.sh)
# --verification-path: cosign-signed and unsigned policies from a real registry.
pw_add_sh_test(test_server_serve_verify ${CMAKE_CURRENT_LIST_DIR}/serve_verify.sh)
set_property(TEST test_server_serve_verify APPEND PROPERTY ENVIRONMENT COSIGN_TOOL=$<TARGET_FILE:cosign_tool>)
# Host capabilities under serve: hostCapabilities as the gate, answers through both ABIs.
pw_add_sh_test(test_server_serve_hostcap ${CMAKE_CURRENT_LIST_DIR}/serve_hostcap.sh)
pw_add_sh_test(test_server_serve_rego ${CMAKE_CURRENT_LIST_DIR}/serve_rego.sh)
