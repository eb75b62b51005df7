# Sharded retrieval under mpirun (label mpi): only when the build has NU_MPI
# and mpirun is there.  Registered from tests/CMakeLists.txt.
if(NU_MPI AND MPIEXEC_EXECUTABLE AND NU_PYTHON3)
  add_test(NAME mpi_retrieval
    COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_retrieval.py
            $<TARGET_FILE:nextuser> ${MPIEXEC_EXECUTABLE})
  set_tests_properties(mpi_retrieval PROPERTIES LABELS "mpi;retrieve;cli" TIMEOUT 600)
endif()

# Sharded serving (mpirun -np R nextuser serve): answers equal the single
# service's, bad input, refused reloads, SIGTERM under load.
if(NU_MPI AND MPIEXEC_EXECUTABLE AND NU_PYTHON3 AND NU_BUILD_SERVE)
  add_test(NAME mpi_serve
    COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_serve.py
            $<TARGET_FILE:nextuser> ${MPIEXEC_EXECUTABLE})
  set_tests_properties(mpi_serve PROPERTIES LABELS "mpi;serve" TIMEOUT 300)
endif()

# Data-parallel training with row-sharded tables (mpirun -np R nextuser
# train): steps equal one process's bit for bit, resume and re-shard, a
# killed rank, errors on every rank.
if(NU_MPI AND MPIEXEC_EXECUTABLE AND NU_PYTHON3)
  add_test(NAME mpi_train
    COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_train.py
            $<TARGET_FILE:nextuser> ${MPIEXEC_EXECUTABLE})
  set_tests_properties(mpi_train PROPERTIES LABELS "mpi;train" TIMEOUT 600)
endif()

# Sharded training to the end on ml-latest-small (skips without the data):
# test recall@50 at R = 2 within 0.01 of one process's at every stage.
if(NU_MPI AND MPIEXEC_EXECUTABLE AND NU_PYTHON3)
  add_test(NAME mpi_train_movielens
    COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_train_movielens.py
            $<TARGET_FILE:nextuser> ${MPIEXEC_EXECUTABLE})
  set_tests_properties(mpi_train_movielens PROPERTIES LABELS "mpi;train;quality" TIMEOUT 1200)
endif()
