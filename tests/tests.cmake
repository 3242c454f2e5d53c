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
vs_test(test_faiss unit)
vs_test(test_db unit)
vs_test(test_points unit)
vs_test(test_crash integration)
vs_test(test_growth slow)
vs_test(test_cli integration)
set_tests_properties(test_cli PROPERTIES ENVIRONMENT "VSEARCH_BIN=$<TARGET_FILE:vsearch_cli>")
