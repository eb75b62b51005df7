# Issue 17 (hardening): one regression test per bug of the review, label
# hardening.  C tests (test_hard_*.c) against the library's internals, and
# the CLI's behaviour under signals and concurrent writers.
if(NU_KERNELS_ONLY)
  return()
endif()
file(GLOB NU_HARD_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_hard_*.c)
foreach(src ${NU_HARD_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${CMAKE_CURRENT_LIST_DIR}/hard_fixture.c)
  target_link_libraries(${name} PRIVATE nextuser_app nu_test_util)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "hardening;model;data" TIMEOUT 300)
endforeach()
target_compile_definitions(test_hard_fuzz_seeds PRIVATE
  NU_FUZZ_SEEDS="${CMAKE_CURRENT_LIST_DIR}/../fuzz")
add_test(NAME hard_cli
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hard_cli.py $<TARGET_FILE:nextuser>)
set_tests_properties(hard_cli PROPERTIES LABELS "hardening;cli;train" TIMEOUT 300)
# kill -9 of train, table and prepare at >= 200 seeded random moments
# (20-45 s on the 2-core machine; label crash, so the sanitizer run leaves it out).
add_test(NAME hard_crash_consistency
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/crash_consistency.py $<TARGET_FILE:nextuser>)
set_tests_properties(hard_crash_consistency PROPERTIES LABELS "hardening;crash;cli;train" TIMEOUT 400)
