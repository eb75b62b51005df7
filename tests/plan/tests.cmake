# `nextuser plan --served`: the plan from the served figures of `nextuser serve`
# (tools/load/run_serve_bench.sh, open_loop.py).  Included by tests/CMakeLists.txt.
add_test(NAME plan_served_cli
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/plan/test_plan_served.py $<TARGET_FILE:nextuser>
          ${CMAKE_CURRENT_SOURCE_DIR}/plan/served_sample.json
          ${CMAKE_CURRENT_SOURCE_DIR}/bench/sample_results.json
          ${CMAKE_CURRENT_SOURCE_DIR}/plan/served_small.json)
set_tests_properties(plan_served_cli PROPERTIES LABELS "plan;cli" TIMEOUT 120)

# `nextuser plan --hosts` (docs/plan.md "Over several servers"): hand arithmetic,
# errors, and the bytes per batch of a real `mpirun -np 2 nextuser search`
# (skipped with a message when mpirun is absent).
set(_nu_plan_mpirun "")
if(NU_MPI AND MPIEXEC_EXECUTABLE AND NOT NU_SANITIZE)  # OpenMPI under ASan: see tools/test.sh
  set(_nu_plan_mpirun ${MPIEXEC_EXECUTABLE})
endif()
add_test(NAME plan_hosts_cli
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/plan/test_plan_hosts.py $<TARGET_FILE:nextuser>
          ${CMAKE_CURRENT_SOURCE_DIR}/bench/sample_results.json
          ${PROJECT_SOURCE_DIR}/tools/mpi_results.py "${_nu_plan_mpirun}")
set_tests_properties(plan_hosts_cli PROPERTIES LABELS "plan;cli" TIMEOUT 120)
