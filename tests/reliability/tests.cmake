# The reliability suite (label `reliability`; docs/reliability.md has its figures): kill -9 at
# random instants of start, reload, tier-up and registry publish; registry faults (down, hung,
# 401, 5xx, tampered layer and annotations, bad signature, full local disk); HTTP under abuse
# (10,000 idle connections, malformed requests, bodies byte by byte, reloads and tier-ups
# while requests run). Run alone: ctest -L reliability.
pw_add_sh_test(test_reliability_kill9 ${CMAKE_CURRENT_LIST_DIR}/kill9.sh)
pw_add_sh_test(test_reliability_registry_faults ${CMAKE_CURRENT_LIST_DIR}/registry_faults.sh)
pw_add_sh_test(test_reliability_http_abuse ${CMAKE_CURRENT_LIST_DIR}/http_abuse.sh)
# The HTTP abuse runs in the ASan+UBSan build too (hostile bytes reach the parsers there);
# the kills and registry faults test what the normal build does on disk and on the network,
# and under ASan they would double the suite's share of CI's budget.
set_tests_properties(test_reliability_http_abuse PROPERTIES LABELS reliability)
set_tests_properties(test_reliability_kill9 test_reliability_registry_faults PROPERTIES LABELS "reliability;no-asan")
