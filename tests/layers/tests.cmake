# The layers of the tree (docs/architecture.md): no layer includes a higher
# one, and the CLI includes no library-internal header (label layers).
add_test(NAME layers_includes
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/layers/check_includes.py ${PROJECT_SOURCE_DIR})
set_tests_properties(layers_includes PROPERTIES LABELS layers TIMEOUT 60)
