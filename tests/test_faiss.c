/*
 * test_faiss.c: proves the link to the FAISS build from scripts/deps.sh
 * through FAISS's own C API: an exact Flat search on a few vectors, checked
 * against distances computed by hand, and the index-spec check that uses
 * the index factory.
 */
#include "tests/testutil.h"

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <string.h>

#include "index/spec.h"

static void test_flat_l2_by_hand(void **state) {
  /* Four 3-d points and the query q = (1, 2, 3); squared L2 distances
   * worked out by hand beside each point. */
  static const float base[] = {
      0, 0, 0, /* id 0: |q - a|^2 = 1 + 4 + 9 = 14 */
      1, 2, 3, /* id 1: 0 */
      2, 2, 2, /* id 2: 1 + 0 + 1 = 2 */
      5, 5, 5, /* id 3: 16 + 9 + 4 = 29 */
  };
  static const float q[] = {1, 2, 3};
  FaissIndexFlatL2 *index = NULL;
  float dist[4];
  idx_t labels[4];

  (void)state;
  assert_int_equal(faiss_IndexFlatL2_new_with(&index, 3), 0);
  assert_int_equal(faiss_Index_add((FaissIndex *)index, 4, base), 0);
  assert_int_equal(faiss_Index_ntotal((FaissIndex *)index), 4);
  assert_int_equal(faiss_Index_search((FaissIndex *)index, 1, q, 4, dist, labels), 0);
  assert_int_equal(labels[0], 1);
  assert_int_equal(labels[1], 2);
  assert_int_equal(labels[2], 0);
  assert_int_equal(labels[3], 3);
  assert_float_equal(dist[0], 0.0f, 1e-6);
  assert_float_equal(dist[1], 2.0f, 1e-6);
  assert_float_equal(dist[2], 14.0f, 1e-6);
  assert_float_equal(dist[3], 29.0f, 1e-6);
  faiss_Index_free((FaissIndex *)index);
}

static void test_flat_ip_by_hand(void **state) {
  static const float base[] = {1, 0, 0, 1, 3, 3, -1, -1};
  static const float q[] = {2, 1};
  FaissIndex *index = NULL;
  float dist[4];
  idx_t labels[4];

  (void)state;
  /* inner products: 2, 1, 9, -3 */
  assert_int_equal(faiss_index_factory(&index, 2, "Flat", METRIC_INNER_PRODUCT), 0);
  assert_int_equal(faiss_Index_add(index, 4, base), 0);
  assert_int_equal(faiss_Index_search(index, 1, q, 4, dist, labels), 0);
  assert_int_equal(labels[0], 2);
  assert_int_equal(labels[1], 0);
  assert_int_equal(labels[2], 1);
  assert_int_equal(labels[3], 3);
  assert_float_equal(dist[0], 9.0f, 1e-6);
  assert_float_equal(dist[3], -3.0f, 1e-6);
  faiss_Index_free(index);
}

static void test_spec_check(void **state) {
  char msg[256];

  (void)state;
  assert_int_equal(vs__index_spec_check("Flat", 16, 0, msg, sizeof(msg)), 0);
  assert_int_equal(vs__index_spec_check("HNSW32", 16, 1, msg, sizeof(msg)), 0);
  assert_int_equal(vs__index_spec_check("HNSW32,SQ8", 16, 0, msg, sizeof(msg)), 0);
  assert_int_equal(vs__index_spec_check("IVF64,Flat", 16, 0, msg, sizeof(msg)), 0);
  assert_int_equal(vs__index_spec_check("IVF64,PQ8", 16, 0, msg, sizeof(msg)), 0);
  assert_int_equal(vs__index_spec_check("IVF64,PQ5", 16, 0, msg, sizeof(msg)), -1);
  assert_non_null(strstr(msg, "IVF64,PQ5"));
  assert_int_equal(vs__index_spec_check("NoSuchIndex", 16, 0, msg, sizeof(msg)), -1);
  assert_int_equal(vs__index_spec_check("", 16, 0, msg, sizeof(msg)), -1);
  assert_int_equal(vs__index_spec_check("IVF100000000,Flat", 16, 0, msg, sizeof(msg)), -1);
  assert_int_equal(vs__index_spec_check("Fl\x01t", 16, 0, msg, sizeof(msg)), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flat_l2_by_hand),
      cmocka_unit_test(test_flat_ip_by_hand),
      cmocka_unit_test(test_spec_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
