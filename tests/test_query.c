/*
 * test_query.c: what the query paths share: exclusions, payload
 * projection; and the fused queries built on them (hybrid search,
 * group-by, MMR, recommend, batches), each against a brute-force reference.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 8
#define NPTS 600

static float vecs[NPTS][DIM];

/* Payload of point i: {"text": words, "cat": i % 7, "doc": i / 4} */
static void payload_of(int i, msgpack_sbuffer *sb) {
  static const char *const words[] = {"alpha", "beta", "gamma", "delta", "omega", "sigma"};
  msgpack_packer pk;
  char text[64];

  snprintf(text, sizeof(text), "%s %s %s", words[i % 6], words[(i / 6) % 6],
           i % 5 == 0 ? "omega" : "rho");
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "text", 4);
  msgpack_pack_str_with_body(&pk, text, strlen(text));
  msgpack_pack_str_with_body(&pk, "cat", 3);
  msgpack_pack_int(&pk, i % 7);
  msgpack_pack_str_with_body(&pk, "doc", 3);
  msgpack_pack_int(&pk, i / 4);
}

/* A collection "q": NPTS points, Flat index (exact), l2, text field "text". */
static tu_fixture *load(vs_metric metric) {
  tu_fixture *fx = tu_fixture_open(0, 0);
  const char *fields[] = {"text"};
  vs_collection_config cfg = {"q", DIM, metric, "Flat", fields, 1, "none", 0, 0};
  static vs_point pts[NPTS];
  static msgpack_sbuffer sb[NPTS];
  uint64_t rs = 5;
  vs_error err;

  TU_EXPECT(vs_collection_create(fx->db, &cfg, &err), VS_OK, &err);
  for (int i = 0; i < NPTS; i++) {
    for (int j = 0; j < DIM; j++)
      vecs[i][j] = tu_randf(&rs);
    payload_of(i, &sb[i]);
    pts[i] = (vs_point){vs_id_int((uint64_t)i), vecs[i], DIM, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(fx->db, "q", pts, NPTS, &err), VS_OK, &err);
  for (int i = 0; i < NPTS; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  return fx;
}

static int setup_l2(void **state) {
  *state = load(VS_METRIC_L2);
  return *state ? 0 : -1;
}

static float l2(const float *a, const float *b) {
  float s = 0;
  for (int j = 0; j < DIM; j++)
    s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

typedef struct ref {
  int id;
  float score;
} ref;

static int by_score(const void *a, const void *b) {
  const ref *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? -1 : 1;
  return x->id - y->id;
}

/* Exact l2 top k of q among points not in skip[] and with cat in
 * [lo, hi] (lo < 0: any). */
static size_t brute(const float *q, const char *skip, int lo, int hi, size_t k, ref *out) {
  static ref all[NPTS];
  size_t n = 0;

  for (int i = 0; i < NPTS; i++)
    if (!skip[i] && (lo < 0 || (i % 7 >= lo && i % 7 <= hi)))
      all[n++] = (ref){i, l2(q, vecs[i])};
  qsort(all, n, sizeof(*all), by_score);
  if (n > k)
    n = k;
  memcpy(out, all, n * sizeof(*out));
  return n;
}

/* Excluded points never come back, and k hits still do: the exact top k of
 * the rest, with and without a filter, also with thousands excluded. */
static void test_exclude_vector(void **state) {
  tu_fixture *fx = *state;
  static vs_id ex[NPTS];
  static char skip[NPTS];
  ref want[50];
  uint64_t rs = 77;
  vs_error err;

  for (int round = 0; round < 40; round++) {
    const float *q = vecs[tu_rand(&rs) % NPTS];
    size_t nex = round < 20 ? 1 + tu_rand(&rs) % 30 : 300 + tu_rand(&rs) % 250, k = 10, n, nw;
    int filtered = round % 2, exact = round % 4 == 3;
    vs_filter *f = NULL;
    vs_search_params p = {q, DIM, k, 0, 0, exact, 0, NULL, ex, nex};
    vs_search_info info;
    vs_hit *hits;

    if (round == 10) /* from here on, a FAISS segment (IDSelector) instead of fresh points */
      TU_EXPECT(vs_collection_rebuild(fx->db, "q", NULL, 0, &err), VS_OK, &err);
    memset(skip, 0, sizeof(skip));
    /* Exclude the nearest points first (the hard case), then random ones,
     * and an id that has no point. */
    {
      ref near[NPTS];
      size_t m = brute(q, skip, -1, -1, NPTS, near);
      for (size_t i = 0; i < nex; i++) {
        int id = i < nex / 2 && i < m ? near[i].id : (int)(tu_rand(&rs) % NPTS);
        ex[i] = vs_id_int((uint64_t)id);
        skip[id] = 1;
      }
      ex[nex - 1] = vs_id_int(999999);
    }
    if (filtered) {
      const char *json = "{\"must\": [{\"key\": \"cat\", \"range\": {\"gte\": 2, \"lte\": 4}}]}";
      TU_EXPECT(vs_filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
      p.filter = f;
    }
    nw = brute(q, skip, filtered ? 2 : -1, filtered ? 4 : -1, k, want);
    TU_EXPECT(vs_search(fx->db, "q", &p, &hits, &n, &info, &err), VS_OK, &err);
    assert_int_equal(n, nw);
    for (size_t i = 0; i < n; i++) {
      assert_false(skip[hits[i].id.num]);
      assert_int_equal(hits[i].id.num, want[i].id);
    }
    vs_free(hits);
    vs_filter_free(f);
  }
}

/* Text search: excluded points never come back, the rest in BM25 order. */
static void test_exclude_text(void **state) {
  tu_fixture *fx = *state;
  vs_id ex[3] = {vs_id_int(0), vs_id_int(5), vs_id_int(10)};
  vs_text_params p = {"omega", 5, 20};
  vs_hit *all, *some;
  size_t nall, nsome, j = 0;
  vs_error err;

  TU_EXPECT(vs_text_search(fx->db, "q", &p, &all, &nall, NULL, &err), VS_OK, &err);
  p.exclude = ex;
  p.n_exclude = 3;
  TU_EXPECT(vs_text_search(fx->db, "q", &p, &some, &nsome, NULL, &err), VS_OK, &err);
  assert_int_equal(nsome, 20);
  for (size_t i = 0; i < nall && j < nsome; i++) {
    uint64_t id = all[i].id.num;
    if (id == 0 || id == 5 || id == 10)
      continue;
    assert_int_equal(some[j].id.num, id);
    assert_true(some[j].score == all[i].score);
    j++;
  }
  vs_free(all);
  vs_free(some);
}

/* Payload projection: only the named fields, in stored order. */
static void test_projection(void **state) {
  tu_fixture *fx = *state;
  const char *fields[] = {"doc", "nope", "cat"};
  vs_search_params p = {vecs[3], DIM, 3, 0, 0, 0, VS_GET_PAYLOAD, NULL, NULL, 0, fields, 3};
  vs_text_params tp = {"omega", 5, 3, VS_GET_PAYLOAD};
  const char *only_missing[] = {"nope"};
  vs_hit *hits;
  size_t n;
  vs_error err;

  TU_EXPECT(vs_search(fx->db, "q", &p, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)hits[i].payload, hits[i].payload_len, NULL),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, 2);
    assert_memory_equal(u.data.via.map.ptr[0].key.via.str.ptr, "cat", 3);
    assert_int_equal(u.data.via.map.ptr[0].val.via.u64, hits[i].id.num % 7);
    assert_memory_equal(u.data.via.map.ptr[1].key.via.str.ptr, "doc", 3);
    assert_int_equal(u.data.via.map.ptr[1].val.via.u64, hits[i].id.num / 4);
    msgpack_unpacked_destroy(&u);
  }
  vs_free(hits);
  tp.payload_fields = only_missing;
  tp.n_payload_fields = 1;
  TU_EXPECT(vs_text_search(fx->db, "q", &tp, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    assert_null(hits[i].payload);
  vs_free(hits);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exclude_vector, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_exclude_text, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_projection, setup_l2, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
