# The container image: scripts/build-image.sh builds both variants (debootstrapped base cached
# in the build tree), the test registry receives them, skopeo inspects them, and the image's
# default command serves AdmissionReviews inside the image's file system (buildah run).
# Slow on a first run (debootstrap + apt: about 15 minutes): label `image`, out of the ASan
# pass (it runs the image's own Release binary, not this build's).
pw_add_sh_test(test_image ${CMAKE_CURRENT_LIST_DIR}/image.sh)
set_tests_properties(test_image PROPERTIES LABELS "image;no-asan" TIMEOUT 3600)
