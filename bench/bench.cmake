# Benchmarks: built with everything, run by hand (see README.md), never by ctest.
add_executable(bench_upsert bench/bench_upsert.c)
target_compile_options(bench_upsert PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_upsert PRIVATE vsearch)
