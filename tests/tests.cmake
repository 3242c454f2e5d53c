# cmocka suites, one executable per module, registered with ctest and labelled.
set(VS_TEST_DATA "${CMAKE_SOURCE_DIR}/../shared/data")

function(vs_test name label)
  add_executable(${name} tests/${name}.c tests/testutil.c)
  target_compile_options(${name} PRIVATE ${VS_WARNINGS})
  target_link_libraries(${name} PRIVATE vsearch ${CMOCKA_LIB})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${label}" TIMEOUT 600
    ENVIRONMENT "VS_TEST_DATA=${VS_TEST_DATA};OMP_NUM_THREADS=1")
endfunction()

vs_test(test_status unit)
vs_test(test_mpscan unit)
vs_test(test_validate unit)
vs_test(test_filter unit)
vs_test(test_faiss unit)
vs_test(test_db unit)
vs_test(test_points unit)
vs_test(test_crash integration)
vs_test(test_growth slow)
vs_test(test_datasets unit)
target_sources(test_datasets PRIVATE tools/datasets.c)
target_link_libraries(test_datasets PRIVATE ${JANSSON_LIB} ZLIB::ZLIB)
vs_test(test_textsets unit)
target_sources(test_textsets PRIVATE tools/textsets.c)
target_link_libraries(test_textsets PRIVATE ${JANSSON_LIB} ZLIB::ZLIB PkgConfig::LIBARCHIVE)
vs_test(test_cli integration)
set_tests_properties(test_cli PROPERTIES ENVIRONMENT "VSEARCH_BIN=$<TARGET_FILE:vsearch_cli>")
vs_test(test_search integration)
vs_test(test_pindex unit)
vs_test(test_analyzer unit)
vs_test(test_text integration)
vs_test(test_query integration)
# Batches run their queries on OpenMP threads: let them.
set_tests_properties(test_query PROPERTIES ENVIRONMENT "VS_TEST_DATA=${VS_TEST_DATA};OMP_NUM_THREADS=4")
# The server over loopback, driven by Debian's python3-msgpack (an encoder
# independent of the project's); /usr/bin/python3 is where Debian installs it.
find_program(VS_SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT VS_SYSTEM_PYTHON3)
  find_program(VS_SYSTEM_PYTHON3 NAMES python3 REQUIRED)
endif()
add_test(NAME test_server
  COMMAND ${VS_SYSTEM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/test_server.py $<TARGET_FILE:vsearch_cli>)
set_tests_properties(test_server PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=1")
# The fuzz target of the request path (scanner, envelope, argument decoding),
# replaying its seed corpus and a fixed set of mutants of it; see the comment
# atop tests/fuzz_rpc.c for running it under libFuzzer.
add_executable(fuzz_rpc tests/fuzz_rpc.c)
target_compile_options(fuzz_rpc PRIVATE ${VS_WARNINGS})
target_link_libraries(fuzz_rpc PRIVATE vsearch_server vsearch)
add_test(NAME fuzz_rpc COMMAND fuzz_rpc ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus 20000)
set_tests_properties(fuzz_rpc PROPERTIES LABELS "unit;fuzz-replay" TIMEOUT 300)
# The Prometheus text file of `vsearch serve --metrics-file`, over loopback
# with the same python3-msgpack as test_server.
add_test(NAME test_metrics
  COMMAND ${VS_SYSTEM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/test_metrics.py $<TARGET_FILE:vsearch_cli>)
set_tests_properties(test_metrics PROPERTIES LABELS integration TIMEOUT 120
  ENVIRONMENT "OMP_NUM_THREADS=1")
# `vsearch query --connect` against `vsearch serve`, compared with the local
# `vsearch query DIR` (python3's standard library only).
add_test(NAME test_remote
  COMMAND ${VS_SYSTEM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/test_remote.py $<TARGET_FILE:vsearch_cli>)
set_tests_properties(test_remote PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=1")
