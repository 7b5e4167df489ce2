# The WebAssembly core spec tests, driven through the engine by tests/spec/spec_runner.c
# (wast2json, then our own runner). One ctest test per .wast file, so files run in
# parallel and a failure names its file; each skips (exit 77) when PREWARM_TESTSUITE is unset.
# Labels: `spec` on all; `no-asan` on the files too slow for the ASan+UBSan build (see
# docs/spec-tests.md for the measurements behind that list).
find_program(WAST2JSON wast2json REQUIRED)
find_program(WASM_VALIDATE wasm-validate REQUIRED)

add_executable(spec_runner ${CMAKE_SOURCE_DIR}/tests/spec/spec_runner.c)
target_link_libraries(spec_runner PRIVATE pw_engine pw_util PkgConfig::JANSSON)
# artifacts resolve the wasm runtime (wasm_rt_*) against the executable
set_target_properties(spec_runner PROPERTIES ENABLE_EXPORTS ON)

set(PW_SPEC_FILES
  address align block br br_if br_table call call_indirect conversions endianness f32 f64
  fac float_exprs forward func global i32 i64 if int_exprs labels left-to-right load
  local_get local_set local_tee loop memory memory_grow memory_size memory_trap nop return
  select stack store switch traps unreachable unwind
  # imported memories, tables and globals (spectest's, and linked between modules)
  data elem exports imports linking)
set(PW_SPEC_NO_ASAN)

foreach(f ${PW_SPEC_FILES})
  add_test(NAME spec-${f} COMMAND spec_runner --name ${f})
  pw_test_env(spec-${f})
  if(f IN_LIST PW_SPEC_NO_ASAN)
    set_tests_properties(spec-${f} PROPERTIES LABELS "spec;no-asan")
  else()
    set_tests_properties(spec-${f} PROPERTIES LABELS spec)
  endif()
  pw_quick_variant(spec-${f} spec_runner --name ${f})
endforeach()
# Start the files with many modules first (ctest -j runs higher COST first): float_exprs
# alone compiles 96 modules and would otherwise be the tail of the run.
set_tests_properties(spec-float_exprs PROPERTIES COST 100)
set_tests_properties(spec-float_exprs-quick PROPERTIES COST 50)
set_tests_properties(spec-align spec-int_exprs spec-br_table spec-memory spec-imports spec-exports
  PROPERTIES COST 30)

# The runner's own check (no testsuite needed): passes what is right, fails what is wrong.
add_test(NAME spec-selftest COMMAND bash ${CMAKE_SOURCE_DIR}/tests/spec/selftest.sh $<TARGET_FILE:spec_runner>)
pw_test_env(spec-selftest)
set_tests_properties(spec-selftest PROPERTIES LABELS spec)
