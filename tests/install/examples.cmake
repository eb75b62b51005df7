# The public API from outside the build tree (label install): the C and C++
# examples built against an installed copy through pkg-config must print
# what `nextuser retrieve` writes, and the shared library must export
# exactly the NU_API functions of the headers.  Sanitizer builds are left
# out: the examples link the installed library without the sanitizer
# runtime.  Included from tests/CMakeLists.txt.
if(NOT NU_SANITIZE)
  add_test(NAME install_examples
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_examples.sh ${CMAKE_BINARY_DIR}
            $<TARGET_FILE:nextuser>)
  add_test(NAME install_exports
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_exports.sh ${CMAKE_BINARY_DIR}
            ${CMAKE_SOURCE_DIR})
  set_tests_properties(install_examples install_exports PROPERTIES LABELS install TIMEOUT 600)
endif()
