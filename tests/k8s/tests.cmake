# The Kubernetes client against a recorded kube-apiserver (tests/k8s/apiserver.py serving
# tests/k8s/fixtures over HTTPS with openssl-made certificates; see tests/k8s/fixtures/README.md).
pw_add_c_test(test_k8s ${CMAKE_CURRENT_LIST_DIR}/test_k8s.c pw_k8s pw_util)
# prewarm eval --allow-context-aware FILE with the host test policy (waPC and WASI).
pw_add_sh_test(test_k8s_eval ${CMAKE_CURRENT_LIST_DIR}/eval_context_aware.sh)
