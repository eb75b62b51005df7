# nextuser serve through a real HTTP client (label serve): parity with
# retrieve, bad input, reloads under load, SIGTERM under load, promtool.
# Runs in sanitizer builds too (the service is the instrumented process).
add_test(NAME serve_http
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_serve.py $<TARGET_FILE:nextuser>)
set_tests_properties(serve_http PROPERTIES LABELS serve TIMEOUT 600)
if(NU_SANITIZE)
  set_tests_properties(serve_http PROPERTIES ENVIRONMENT "NU_SERVE_SLOW=1")
endif()

# The load-test tools (tools/load/open_loop.py, tools/load/recommend.lua)
# against a tiny service, a couple of seconds each, so that they cannot rot.
add_test(NAME serve_load_tools
  COMMAND ${NU_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/serve/test_load_tools.py $<TARGET_FILE:nextuser>)
set_tests_properties(serve_load_tools PROPERTIES LABELS serve TIMEOUT 300)
