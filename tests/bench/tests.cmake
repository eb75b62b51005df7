# Tests of the benchmark tooling: the regression gate (tools/bench-compare),
# `nextuser plan` and the plots.  Included by tests/CMakeLists.txt.
set(NU_BENCH_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/bench)
# The CI gate's settings (tools/ci-bench.sh uses the same; docs/plan.md says why).
set(NU_GATE_THRESHOLD 60)
set(NU_GATE_MODE groups)

add_test(NAME bench_compare_unit
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_bench_compare.py
          ${CMAKE_SOURCE_DIR}/tools/bench-compare ${NU_BENCH_TESTS}/sample_results.json)
set_tests_properties(bench_compare_unit PROPERTIES LABELS "bench" TIMEOUT 120)

add_test(NAME bench_plan_cli
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_plan.py $<TARGET_FILE:nextuser>
          ${NU_BENCH_TESTS}/sample_results.json)
set_tests_properties(bench_plan_cli PROPERTIES LABELS "bench;cli" TIMEOUT 120)

# Timing under the sanitizers says nothing about a release build: not there.
if(NOT NU_SANITIZE)
add_test(NAME bench_gate_e2e
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_gate_e2e.py $<TARGET_FILE:nextuser>
          ${CMAKE_SOURCE_DIR}/tools/bench-compare --threshold ${NU_GATE_THRESHOLD}
          --gate ${NU_GATE_MODE})
set_tests_properties(bench_gate_e2e PROPERTIES LABELS "bench;cli" TIMEOUT 300
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()

# A user's own model (nextuser bench --model): trained here in seconds, then
# benchmarked with tiny repetitions, gated and planned from (docs/bench.md).
add_test(NAME bench_model_e2e
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_bench_model.py $<TARGET_FILE:nextuser>
          ${CMAKE_SOURCE_DIR}/tools/bench-compare)
set_tests_properties(bench_model_e2e PROPERTIES LABELS "bench;cli" TIMEOUT 120 RUN_SERIAL TRUE)

add_test(NAME bench_plots
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_bench_plots.py
          ${CMAKE_SOURCE_DIR}/tools/bench_plots.py ${NU_BENCH_TESTS}/sample_results.json)
set_tests_properties(bench_plots PROPERTIES LABELS "bench" TIMEOUT 120 SKIP_RETURN_CODE 77)

if(TARGET nextuser-microbench)
add_test(NAME bench_microbench_counters
  COMMAND ${NU_PYTHON3} ${NU_BENCH_TESTS}/test_microbench.py $<TARGET_FILE:nextuser-microbench>)
set_tests_properties(bench_microbench_counters PROPERTIES LABELS "bench" TIMEOUT 120)
endif()
