/*
 * test_points.c: upsert, get, delete and count through the public API; the
 * change log; every bad input rejected with its status and nothing changed;
 * and the zero-copy layout of stored vectors.
 */
#include "tests/testutil.h"

#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 8

typedef tu_fixture fixture;

static int setup(void **state) {
  fixture *f = tu_fixture_open(0, 0);

  tu_create(f->db, "items", DIM, VS_METRIC_L2, "Flat");
  *state = f;
  return 0;
}

static void fill(float *v, uint64_t seed) {
  for (int j = 0; j < DIM; j++)
    v[j] = (float)seed + (float)j / 10.0f;
}

static uint64_t count(vs_db *db) {
  vs_error err = VS_ERROR_INIT;
  uint64_t n = 0;

  TU_EXPECT(vs_count(db, "items", &n, &err), VS_OK, &err);
  return n;
}

/* Upsert n points with integer ids base..base+n-1 and vectors fill(id). */
static void put_range(vs_db *db, uint64_t base, size_t n) {
  vs_point *p = calloc(n, sizeof(*p));
  float *v = calloc(n * DIM, sizeof(float));
  msgpack_sbuffer *sb = calloc(n, sizeof(*sb));
  vs_error err = VS_ERROR_INIT;

  for (size_t i = 0; i < n; i++) {
    fill(v + i * DIM, base + i);
    tu_payload_simple(&sb[i], base + i);
    p[i] = (vs_point){vs_id_int(base + i), v + i * DIM, DIM, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(db, "items", p, n, &err), VS_OK, &err);
  for (size_t i = 0; i < n; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  free(sb);
  free(v);
  free(p);
}

static void test_upsert_get_roundtrip(void **state) {
  fixture *f = *state;
  vs_id ids[4] = {vs_id_int(3), vs_id_int(0), vs_id_int(1000), vs_id_str("3")};
  vs_error err = VS_ERROR_INIT;
  msgpack_sbuffer sb;
  vs_record *r;
  float want[DIM];

  put_range(f->db, 0, 10);
  assert_int_equal(count(f->db), 10);
  TU_EXPECT(vs_get(f->db, "items", ids, 4, VS_GET_VECTOR | VS_GET_PAYLOAD, &r, &err), VS_OK, &err);
  assert_true(r[0].found);
  assert_int_equal(r[0].id.kind, VS_ID_INT);
  assert_int_equal(r[0].id.num, 3);
  assert_int_equal(r[0].dim, DIM);
  fill(want, 3);
  assert_memory_equal(r[0].vector, want, sizeof(want));
  tu_payload_simple(&sb, 3);
  assert_int_equal(r[0].payload_len, sb.size);
  assert_memory_equal(r[0].payload, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  assert_true(r[1].found);
  assert_false(r[2].found);
  assert_null(r[2].vector);
  assert_false(r[3].found); /* the string "3" is not the integer 3 */
  assert_int_equal(r[3].id.kind, VS_ID_STR);
  assert_string_equal(r[3].id.str, "3");
  vs_free(r);

  /* Without flags: found, but neither vector nor payload. */
  TU_EXPECT(vs_get(f->db, "items", ids, 1, 0, &r, &err), VS_OK, &err);
  assert_true(r[0].found);
  assert_null(r[0].vector);
  assert_null(r[0].payload);
  vs_free(r);
}

static void test_string_ids_and_empty_payload(void **state) {
  fixture *f = *state;
  char longid[VS_ID_MAX];
  float v[DIM];
  vs_point p[3];
  vs_id ids[3];
  vs_error err = VS_ERROR_INIT;
  vs_record *r;

  memset(longid, 'z', sizeof(longid));
  fill(v, 1);
  p[0] = (vs_point){vs_id_str("doc-\xe4\xb8\xad"), v, DIM, NULL, 0};
  p[1] = (vs_point){(vs_id){VS_ID_STR, 0, longid, VS_ID_MAX}, v, DIM, NULL, 0};
  p[2] = (vs_point){vs_id_int((uint64_t)INT64_MAX), v, DIM, NULL, 0};
  TU_EXPECT(vs_upsert(f->db, "items", p, 3, &err), VS_OK, &err);
  for (int i = 0; i < 3; i++)
    ids[i] = p[i].id;
  TU_EXPECT(vs_get(f->db, "items", ids, 3, VS_GET_PAYLOAD, &r, &err), VS_OK, &err);
  for (int i = 0; i < 3; i++) {
    assert_true(r[i].found);
    assert_null(r[i].payload);
  }
  assert_int_equal(r[1].id.len, VS_ID_MAX);
  assert_memory_equal(r[1].id.str, longid, VS_ID_MAX);
  vs_free(r);
}

static void test_replace_and_log(void **state) {
  fixture *f = *state;
  vs_error err = VS_ERROR_INIT;
  float v[DIM];
  vs_point p = {vs_id_int(2), v, DIM, NULL, 0};
  vs_change ch[32];
  vs_record *r;
  size_t n;

  put_range(f->db, 0, 3); /* pids 1, 2, 3 */
  fill(v, 42);
  TU_EXPECT(vs_upsert(f->db, "items", &p, 1, &err), VS_OK, &err);
  assert_int_equal(count(f->db), 3);
  TU_EXPECT(vs_get(f->db, "items", &p.id, 1, VS_GET_VECTOR | VS_GET_PAYLOAD, &r, &err), VS_OK,
            &err);
  assert_memory_equal(r[0].vector, v, sizeof(v));
  assert_null(r[0].payload); /* replaced whole: the new version has no payload */
  vs_free(r);

  /* Log: +1 +2 +3, then the replacement retires pid 3 and adds pid 4. */
  TU_EXPECT(vs_changes(f->db, "items", 0, ch, 32, &n, &err), VS_OK, &err);
  assert_int_equal(n, 5);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(ch[i].seq, i + 1);
    assert_int_equal(ch[i].op, VS_CHANGE_UPSERT);
    assert_int_equal(ch[i].pid, i + 1);
  }
  assert_int_equal(ch[3].op, VS_CHANGE_DELETE);
  assert_int_equal(ch[3].pid, 3);
  assert_int_equal(ch[4].op, VS_CHANGE_UPSERT);
  assert_int_equal(ch[4].pid, 4);
  /* Reading after a position, and in pages. */
  TU_EXPECT(vs_changes(f->db, "items", 3, ch, 1, &n, &err), VS_OK, &err);
  assert_int_equal(n, 1);
  assert_int_equal(ch[0].seq, 4);
  TU_EXPECT(vs_changes(f->db, "items", 5, ch, 32, &n, &err), VS_OK, &err);
  assert_int_equal(n, 0);
}

static void test_same_id_twice_last_wins(void **state) {
  fixture *f = *state;
  vs_error err = VS_ERROR_INIT;
  float a[DIM], b[DIM];
  vs_point p[3];
  vs_record *r;

  fill(a, 1);
  fill(b, 2);
  p[0] = (vs_point){vs_id_str("k"), a, DIM, NULL, 0};
  p[1] = (vs_point){vs_id_int(9), a, DIM, NULL, 0};
  p[2] = (vs_point){vs_id_str("k"), b, DIM, NULL, 0};
  TU_EXPECT(vs_upsert(f->db, "items", p, 3, &err), VS_OK, &err);
  assert_int_equal(count(f->db), 2);
  TU_EXPECT(vs_get(f->db, "items", &p[0].id, 1, VS_GET_VECTOR, &r, &err), VS_OK, &err);
  assert_memory_equal(r[0].vector, b, sizeof(b));
  vs_free(r);
}

static void test_delete(void **state) {
  fixture *f = *state;
  vs_id ids[4] = {vs_id_int(1), vs_id_int(1), vs_id_int(77), vs_id_int(4)};
  vs_error err = VS_ERROR_INIT;
  size_t deleted = 99;
  vs_record *r;

  put_range(f->db, 0, 5);
  TU_EXPECT(vs_delete(f->db, "items", ids, 4, &deleted, &err), VS_OK, &err);
  assert_int_equal(deleted, 2); /* 1 (once), 4; 77 does not exist */
  assert_int_equal(count(f->db), 3);
  TU_EXPECT(vs_get(f->db, "items", ids, 4, VS_GET_VECTOR, &r, &err), VS_OK, &err);
  assert_false(r[0].found);
  assert_false(r[3].found);
  vs_free(r);
  /* Deleting again is a no-op, and a deleted id can come back. */
  TU_EXPECT(vs_delete(f->db, "items", ids, 1, &deleted, &err), VS_OK, &err);
  assert_int_equal(deleted, 0);
  put_range(f->db, 1, 1);
  assert_int_equal(count(f->db), 4);
  assert_int_equal(vs_delete(f->db, "nope", ids, 1, NULL, NULL), VS_ENOTFOUND);
  assert_int_equal(vs_delete(f->db, "items", NULL, 1, NULL, NULL), VS_EINVAL);
  {
    vs_id bad = vs_id_str("");
    assert_int_equal(vs_delete(f->db, "items", &bad, 1, NULL, NULL), VS_EINVAL);
  }
  assert_int_equal(count(f->db), 4);
}

/* ---- bad input: the status, the message, and nothing changed ------------------------------- */

static void payload_nil(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "x", 1);
  msgpack_pack_nil(&pk);
}

static void payload_array(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_int(&pk, 1);
}

/* Upsert a batch of 4 good points whose point `bad` is replaced by `p`;
 * expect `want`, a message naming the point, and the collection unchanged. */
static void expect_rejected(fixture *f, vs_point p, int want, const char *needle) {
  vs_error err = VS_ERROR_INIT;
  vs_point batch[4];
  float v[4][DIM];
  vs_change ch[64];
  size_t before_log, after_log;
  uint64_t before = count(f->db);
  vs_id probe = vs_id_int(500);
  vs_record *r;

  vs_changes(f->db, "items", 0, ch, 64, &before_log, NULL);
  for (int i = 0; i < 4; i++) {
    fill(v[i], 500 + (uint64_t)i);
    batch[i] = (vs_point){vs_id_int(500 + (uint64_t)i), v[i], DIM, NULL, 0};
  }
  batch[3] = p;
  int rc = vs_upsert(f->db, "items", batch, 4, &err);
  if (rc != want)
    fail_msg("got %s (%s), want %s", vs_err_name(rc), err.message, vs_err_name(want));
  assert_int_equal(err.code, want);
  if (needle && strstr(err.message, needle) == NULL)
    fail_msg("message '%s' lacks '%s'", err.message, needle);
  assert_int_equal(count(f->db), before);
  vs_changes(f->db, "items", 0, ch, 64, &after_log, NULL);
  assert_int_equal(after_log, before_log);
  TU_EXPECT(vs_get(f->db, "items", &probe, 1, 0, &r, &err), VS_OK, &err);
  assert_false(r[0].found); /* the good points of the batch were not written */
  vs_free(r);
}

static void test_bad_input_changes_nothing(void **state) {
  fixture *f = *state;
  float v[DIM], nan_v[DIM], inf_v[DIM];
  char longid[VS_ID_MAX + 1];
  msgpack_sbuffer nil_p, arr_p;
  uint8_t *huge;

  put_range(f->db, 0, 3);
  fill(v, 1);
  fill(nan_v, 1);
  nan_v[5] = NAN;
  fill(inf_v, 1);
  inf_v[0] = -INFINITY;
  memset(longid, 'q', sizeof(longid));
  payload_nil(&nil_p);
  payload_array(&arr_p);
  huge = calloc(1, VS_PAYLOAD_MAX + 1);

  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM - 1, NULL, 0}, VS_EDIM, "point 3");
  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM + 1, NULL, 0}, VS_EDIM, "dim 8");
  expect_rejected(f, (vs_point){vs_id_int(1), NULL, DIM, NULL, 0}, VS_EINVAL, "missing");
  expect_rejected(f, (vs_point){vs_id_int(1), nan_v, DIM, NULL, 0}, VS_EINVAL, "NaN");
  expect_rejected(f, (vs_point){vs_id_int(1), inf_v, DIM, NULL, 0}, VS_EINVAL, "infinite");
  expect_rejected(f, (vs_point){vs_id_str(""), v, DIM, NULL, 0}, VS_EINVAL, "string id");
  expect_rejected(f, (vs_point){(vs_id){VS_ID_STR, 0, longid, VS_ID_MAX + 1}, v, DIM, NULL, 0},
                  VS_EINVAL, "string id");
  expect_rejected(f, (vs_point){(vs_id){VS_ID_STR, 0, "\xed\xa0\x80", 3}, v, DIM, NULL, 0},
                  VS_EINVAL, "UTF-8");
  expect_rejected(f, (vs_point){vs_id_int((uint64_t)1 << 63), v, DIM, NULL, 0}, VS_EINVAL, "2^63");
  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM, nil_p.data, nil_p.size}, VS_EINVAL,
                  "payload");
  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM, arr_p.data, arr_p.size}, VS_EINVAL,
                  "must be a msgpack map");
  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM, huge, VS_PAYLOAD_MAX + 1}, VS_ETOOLARGE,
                  "limit");
  expect_rejected(f, (vs_point){vs_id_int(1), v, DIM, "\xdd\xff\x00\x00\x00", 5}, VS_EINVAL,
                  "payload");

  msgpack_sbuffer_destroy(&nil_p);
  msgpack_sbuffer_destroy(&arr_p);
  free(huge);

  /* Unknown collection, bad collection name, NULL arguments. */
  {
    vs_point p = {vs_id_int(1), v, DIM, NULL, 0};
    vs_error err = VS_ERROR_INIT;
    uint64_t n;
    vs_record *r;
    TU_EXPECT(vs_upsert(f->db, "nope", &p, 1, &err), VS_ENOTFOUND, &err);
    assert_non_null(strstr(err.message, "nope"));
    assert_int_equal(vs_upsert(f->db, "n/a", &p, 1, NULL), VS_EINVAL);
    assert_int_equal(vs_upsert(f->db, "items", NULL, 1, NULL), VS_EINVAL);
    assert_int_equal(vs_upsert(NULL, "items", &p, 1, NULL), VS_EINVAL);
    assert_int_equal(vs_upsert(f->db, "items", &p, 0, NULL), VS_OK);
    assert_int_equal(vs_count(f->db, "nope", &n, NULL), VS_ENOTFOUND);
    assert_int_equal(vs_get(f->db, "nope", &p.id, 1, 0, &r, NULL), VS_ENOTFOUND);
    assert_null(r);
    assert_int_equal(vs_get(f->db, "items", &p.id, 1, 1u << 9, &r, NULL), VS_EINVAL);
  }
  assert_int_equal(count(f->db), 3);
}

static void test_text_only_collection(void **state) {
  fixture *f = *state;
  const char *fields[] = {"text"};
  vs_collection_config cfg = {"docs", 0, VS_METRIC_L2, NULL, fields, 1, NULL, 0, 0};
  vs_error err = VS_ERROR_INIT;
  msgpack_sbuffer sb;
  vs_point p;
  float v[1] = {1};
  vs_record *r;

  TU_EXPECT(vs_collection_create(f->db, &cfg, &err), VS_OK, &err);
  tu_payload_simple(&sb, 5);
  p = (vs_point){vs_id_str("d1"), NULL, 0, sb.data, sb.size};
  TU_EXPECT(vs_upsert(f->db, "docs", &p, 1, &err), VS_OK, &err);
  p.vector = v;
  p.dim = 1;
  assert_int_equal(vs_upsert(f->db, "docs", &p, 1, NULL), VS_EDIM);
  TU_EXPECT(vs_get(f->db, "docs", &p.id, 1, VS_GET_VECTOR | VS_GET_PAYLOAD, &r, &err), VS_OK, &err);
  assert_true(r[0].found);
  assert_null(r[0].vector);
  assert_int_equal(r[0].payload_len, sb.size);
  vs_free(r);
  msgpack_sbuffer_destroy(&sb);
}

static void test_survives_reopen(void **state) {
  fixture *f = *state;
  vs_error err = VS_ERROR_INIT;
  vs_id id = vs_id_int(17);
  float want[DIM];
  vs_record *r;

  put_range(f->db, 0, 100);
  vs_db_close(f->db);
  f->db = tu_open(f->dir, 0);
  assert_int_equal(count(f->db), 100);
  TU_EXPECT(vs_get(f->db, "items", &id, 1, VS_GET_VECTOR, &r, &err), VS_OK, &err);
  fill(want, 17);
  assert_memory_equal(r[0].vector, want, sizeof(want));
  vs_free(r);
}

/* storage.h promises 4-byte aligned vectors in the map for every dim, so
 * searches can read them in place.  Check every stored vector with raw LMDB. */
static void test_vectors_aligned_in_map(void **state) {
  static const uint32_t dims[] = {1, 3, 5, 128, 300, 784};
  fixture *f = *state;
  vs_error err = VS_ERROR_INIT;
  uint64_t seed = 7;

  for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
    char name[16];
    float *v = calloc(dims[d] * 200, sizeof(float));
    vs_point *p = calloc(200, sizeof(*p));

    snprintf(name, sizeof(name), "d%u", dims[d]);
    tu_create(f->db, name, dims[d], VS_METRIC_L2, "Flat");
    for (uint32_t i = 0; i < 200; i++) {
      for (uint32_t j = 0; j < dims[d]; j++)
        v[i * dims[d] + j] = tu_randf(&seed);
      p[i] = (vs_point){vs_id_int(i), v + i * dims[d], dims[d], NULL, 0};
    }
    TU_EXPECT(vs_upsert(f->db, name, p, 200, &err), VS_OK, &err);
    free(v);
    free(p);
  }
  vs_db_close(f->db);
  f->db = NULL;

  {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t checked = 0;

    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, main_dbi, &cur), 0);
    /* Every named DBI ending in ".vec". */
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
      char name[64];
      MDB_dbi vec;
      MDB_cursor *vc;
      MDB_val vk, vv;

      if (k.mv_size < 4 || k.mv_size >= sizeof(name) ||
          memcmp((char *)k.mv_data + k.mv_size - 4, ".vec", 4) != 0)
        continue;
      memcpy(name, k.mv_data, k.mv_size);
      name[k.mv_size] = '\0';
      assert_int_equal(mdb_dbi_open(txn, name, MDB_INTEGERKEY, &vec), 0);
      assert_int_equal(mdb_cursor_open(txn, vec, &vc), 0);
      while (mdb_cursor_get(vc, &vk, &vv, MDB_NEXT) == 0) {
        assert_int_equal((uintptr_t)vv.mv_data % 4, 0);
        checked++;
      }
      mdb_cursor_close(vc);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_true(checked >= 6 * 200);
  }
  f->db = tu_open(f->dir, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_upsert_get_roundtrip, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_string_ids_and_empty_payload, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_replace_and_log, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_same_id_twice_last_wins, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_delete, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_text_only_collection, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_survives_reopen, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_vectors_aligned_in_map, setup, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
