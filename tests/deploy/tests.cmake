# deploy/: every kustomize variant renders and its objects validate against the Kubernetes
# API schema and kubewarden-controller's PolicyServer CRD (npm validators installed into the
# build tree). The container image (Containerfile, scripts/build-image.sh) is built and run
# by the `image` label's test, which is slow (debootstrap, apt) and kept out of the ASan pass.
pw_add_sh_test(test_deploy_kustomize ${CMAKE_CURRENT_LIST_DIR}/kustomize.sh)
set_tests_properties(test_deploy_kustomize PROPERTIES LABELS "deploy;no-asan")
