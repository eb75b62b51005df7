# The Python bindings (python/nextuser) as installed: the test installs the
# build into a temporary prefix and imports the package from there.  Not in
# sanitizer builds: an ASan library cannot be loaded into an uninstrumented
# python3.
if(NOT NU_SANITIZE)
  add_test(NAME python_bindings
    COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_bindings.py
            $<TARGET_FILE:nextuser> ${CMAKE_BINARY_DIR})
  set_tests_properties(python_bindings PROPERTIES LABELS python TIMEOUT 600)
endif()
