# nextuser serve through a real HTTP client (label serve): parity with
# retrieve, bad input, reloads under load, SIGTERM under load, promtool.
# Runs in sanitizer builds too (the service is the instrumented process).
add_test(NAME serve_http
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_serve.py $<TARGET_FILE:nextuser>)
set_tests_properties(serve_http PROPERTIES LABELS serve TIMEOUT 600)
if(NU_SANITIZE)
  set_tests_properties(serve_http PROPERTIES ENVIRONMENT "NU_SERVE_SLOW=1")
endif()
