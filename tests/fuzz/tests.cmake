# Issue 17: one libFuzzer target per parser (fuzz_<name>.c), each with its
# seed corpus and dictionary in tests/fuzz/<name>/.  Test fuzz_<name> (label
# fuzz) replays the seeds and then fuzzes briefly (NU_FUZZ_RUNS executions or
# NU_FUZZ_SECONDS, whichever ends first); new inputs go to the build tree.
# Long campaigns: tools/fuzz.sh.  `cmake --build . --target fuzz_targets`
# builds the targets only.
set(NU_FUZZ_RUNS 20000 CACHE STRING "executions of each fuzz test after its seeds")
set(NU_FUZZ_SECONDS 15 CACHE STRING "most seconds of each fuzz test")
set(NU_FUZZ_TARGETS safetensors config items_line prepare dataset checkpoint idmap json_strict)
if(NU_BUILD_SERVE)
  list(APPEND NU_FUZZ_TARGETS request)
endif()
add_custom_target(fuzz_targets)
foreach(t ${NU_FUZZ_TARGETS})
  add_executable(fuzz_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c)
  target_link_libraries(fuzz_${t} PRIVATE nextuser_app)
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  add_dependencies(fuzz_targets fuzz_${t})
  add_test(NAME fuzz_${t}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_fuzz_test.sh $<TARGET_FILE:fuzz_${t}>
            ${CMAKE_CURRENT_LIST_DIR}/${t} ${CMAKE_CURRENT_BINARY_DIR}/fuzz-work/${t}
            ${NU_FUZZ_RUNS} ${NU_FUZZ_SECONDS})
  set_tests_properties(fuzz_${t} PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()
