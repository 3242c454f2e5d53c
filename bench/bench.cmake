# Benchmarks: built with everything, run by hand (see README.md), never by ctest.
add_executable(bench_upsert bench/bench_upsert.c tools/benchutil.c)
target_compile_options(bench_upsert PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_upsert PRIVATE vsearch)

# hnswlib (Debian's header-only libhnswlib-dev), the HNSW peer of `vsearch bench ann`.  A
# library of its own so that it gets the C++ warning set (vsearch_cli's options are C's),
# with the same build type, hence the same optimisation flags, as everything else.
find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h REQUIRED)
add_library(vs_hnswlib_peer STATIC bench/hnswlib_peer.cpp)
target_include_directories(vs_hnswlib_peer PRIVATE "${CMAKE_SOURCE_DIR}")
target_include_directories(vs_hnswlib_peer SYSTEM PRIVATE "${HNSWLIB_INCLUDE_DIR}")
target_compile_options(vs_hnswlib_peer PRIVATE ${VS_CXX_WARNINGS})
target_link_libraries(vs_hnswlib_peer PUBLIC Threads::Threads stdc++)
target_link_libraries(vsearch_cli PRIVATE vs_hnswlib_peer)

# Restart and ingest costs on Fashion-MNIST (see the file's opening comment).
add_executable(bench_index bench/bench_index.c tools/datasets.c tools/benchutil.c)
target_compile_options(bench_index PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_index PRIVATE vsearch ${JANSSON_LIB} ZLIB::ZLIB)

# Filtered search against unfiltered on Fashion-MNIST (see the file's opening comment).
add_executable(bench_filter bench/bench_filter.c tools/datasets.c tools/benchutil.c)
target_compile_options(bench_filter PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_filter PRIVATE vsearch ${JANSSON_LIB} ZLIB::ZLIB)

# Xapian (Debian's libxapian-dev 1.4), the BM25 peer of `vsearch bench text`
# (bench/xapian_peer.h): a library of its own for the C++ warning set.
pkg_check_modules(XAPIAN REQUIRED IMPORTED_TARGET xapian-core)
add_library(vs_xapian_peer STATIC bench/xapian_peer.cpp)
target_include_directories(vs_xapian_peer PRIVATE "${CMAKE_SOURCE_DIR}")
target_compile_options(vs_xapian_peer PRIVATE ${VS_CXX_WARNINGS})
target_link_libraries(vs_xapian_peer PUBLIC PkgConfig::XAPIAN stdc++)
target_link_libraries(vsearch_cli PRIVATE vs_xapian_peer)

# Hybrid search on SciFact: BM25, an LSA embedding made with OpenBLAS's LAPACK, RRF and
# weighted fusion, quality and latency (see the file's opening comment).
add_executable(bench_hybrid bench/bench_hybrid.c tools/textsets.c tools/benchutil.c)
target_compile_options(bench_hybrid PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_hybrid PRIVATE vsearch ${OPENBLAS_LIB} ${JANSSON_LIB} ZLIB::ZLIB
  PkgConfig::LIBARCHIVE m)

# Two-tower retrieval on Fashion-MNIST: inner product, a filter and per-user exclusions,
# vs_search_batch against a loop of vs_search (see the file's opening comment).
add_executable(bench_twotower bench/bench_twotower.c tools/datasets.c tools/benchutil.c)
target_compile_options(bench_twotower PRIVATE ${VS_WARNINGS})
target_link_libraries(bench_twotower PRIVATE vsearch ${JANSSON_LIB} ZLIB::ZLIB m)
