# Cross-part CLI behaviour (the lead's wiring of the cache into compile and run).
pw_add_sh_test(test_cli_cache_wiring ${CMAKE_SOURCE_DIR}/tests/cli/cache_wiring.sh)
# `prewarm serve` configured only through the environment, as kubewarden-controller does.
pw_add_sh_test(test_cli_serve_env ${CMAKE_SOURCE_DIR}/tests/cli/serve_env.sh)
