# Fuzz targets: fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput(). Each is built
#  - always as a replay program (fuzz/replay.c as main) run by ctest over fuzz/corpus/NAME/*,
#  - with -DPREWARM_FUZZ=ON and clang, as a libFuzzer binary (fuzz-NAME) for real fuzzing:
#      CC=clang cmake -B build-fuzz -DPREWARM_FUZZ=ON && cmake --build build-fuzz --target fuzz-NAME
#      ./build-fuzz/fuzz-NAME fuzz/corpus/NAME
#    (the whole build is instrumented then: see PREWARM_FUZZ in CMakeLists.txt); long runs of
#    every target: fuzz/run-long.sh, figures in docs/reliability.md.
file(GLOB _fuzzers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${_fuzzers})
  get_filename_component(n ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" n ${n})
  add_executable(replay-${n} ${src} ${CMAKE_SOURCE_DIR}/fuzz/replay.c)
  target_link_libraries(replay-${n} PRIVATE pw_server pw_host pw_cache pw_oci pw_k8s pw_engine pw_util)
  set_target_properties(replay-${n} PROPERTIES ENABLE_EXPORTS ON)  # artifacts resolve wasm_rt_* here
  add_test(NAME fuzz-replay-${n} COMMAND replay-${n} ${CMAKE_SOURCE_DIR}/fuzz/corpus/${n})
  if(PREWARM_FUZZ)
    add_executable(fuzz-${n} ${src})
    target_compile_options(fuzz-${n} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz-${n} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz-${n} PRIVATE pw_server pw_host pw_cache pw_oci pw_k8s pw_engine pw_util)
    set_target_properties(fuzz-${n} PROPERTIES ENABLE_EXPORTS ON)
  endif()
endforeach()
