# The registry tier (src/cache/registry*.c, issue 5) is optional in the source tree while it
# is being written: commands open it only when it is there.
if(EXISTS ${CMAKE_SOURCE_DIR}/src/cache/registry.c)
  target_compile_definitions(pw_cache PUBLIC PW_HAVE_REGISTRY_CACHE=1)
endif()
