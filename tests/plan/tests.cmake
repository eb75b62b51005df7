# `nextuser plan --served`: the plan from the served figures of `nextuser serve`
# (tools/load/run_serve_bench.sh, open_loop.py).  Included by tests/CMakeLists.txt.
add_test(NAME plan_served_cli
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/plan/test_plan_served.py $<TARGET_FILE:nextuser>
          ${CMAKE_CURRENT_SOURCE_DIR}/plan/served_sample.json
          ${CMAKE_CURRENT_SOURCE_DIR}/bench/sample_results.json
          ${CMAKE_CURRENT_SOURCE_DIR}/plan/served_small.json)
set_tests_properties(plan_served_cli PROPERTIES LABELS "plan;cli" TIMEOUT 120)
