/*
 * test_db.c: opening and closing databases, collections (create, drop,
 * describe, list), allocation failures injected into every allocation of
 * open, and concurrent use of one handle from several threads.
 */
#include "tests/testutil.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_open_alloc_failures(void **state) {
  char *dir = tu_mkdtemp();
  vs_open_options o = {VS_OPEN_CREATE, 0, 0, 0};
  tu_counting c = {0, 0, 0};
  vs_allocator a = tu_counting_allocator(&c);
  int failures = 0, rc;

  (void)state;
  /* A database with a collection, so open has real work to do. */
  {
    vs_db *db = tu_open(dir, 0);
    tu_create(db, "items", 8, VS_METRIC_L2, "Flat");
    vs_db_close(db);
  }
  vs_set_allocator(&a);
  for (long n = 0; n < 1000; n++) {
    vs_error err = VS_ERROR_INIT;
    vs_db *db = NULL;

    c = (tu_counting){n, 0, 0};
    rc = vs_db_open(dir, &o, &db, &err);
    if (rc == VS_OK) {
      uint64_t count = 99;
      /* The handle works, and closing it returns every allocation. */
      c.fail_at = -1;
      assert_int_equal(vs_count(db, "items", &count, &err), VS_OK);
      assert_int_equal(count, 0);
      vs_db_close(db);
      assert_int_equal(c.live, 0);
      break;
    }
    failures++;
    assert_int_equal(rc, VS_ENOMEM);
    assert_int_equal(err.code, VS_ENOMEM);
    assert_null(db);
    assert_int_equal(c.live, 0); /* nothing leaked on the failure path */
  }
  vs_set_allocator(NULL);
  assert_true(failures >= 3); /* open allocates; each allocation was failed once */
  tu_rmdir(dir);
  free(dir);
}

/* Allocation failures in the read and write calls: each returns an error,
 * leaks nothing, and a failed write changes nothing. */
static void test_call_alloc_failures(void **state) {
  char *dir = tu_mkdtemp();
  vs_db *db = tu_open(dir, VS_OPEN_NOSYNC);
  tu_counting c = {-1, 0, 0};
  vs_allocator a = tu_counting_allocator(&c);
  float v[4] = {1, 2, 3, 4};
  vs_point p = {vs_id_str("x"), v, 4, NULL, 0};
  vs_id id = vs_id_str("x");

  (void)state;
  tu_create(db, "c", 4, VS_METRIC_L2, "Flat");
  assert_int_equal(vs_upsert(db, "c", &p, 1, NULL), VS_OK);
  vs_set_allocator(&a);
  for (long n = 0; n < 200; n++) {
    vs_record *recs = NULL;
    vs_collection_info *infos = NULL;
    size_t ninfo;
    long before;
    int rc1, rc2, done = 1;

    c.fail_at = n;
    c.calls = 0;
    before = c.live;
    rc1 = vs_get(db, "c", &id, 1, VS_GET_VECTOR | VS_GET_PAYLOAD, &recs, NULL);
    c.calls = 0;
    rc2 = vs_collection_list(db, &infos, &ninfo, NULL);
    if (rc1 == VS_OK)
      vs_free(recs);
    else
      assert_int_equal(rc1, VS_ENOMEM), done = 0;
    if (rc2 == VS_OK)
      vs_free(infos);
    else
      assert_int_equal(rc2, VS_ENOMEM), done = 0;
    assert_int_equal(c.live, before);
    if (done)
      break;
  }
  vs_set_allocator(NULL);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

static void test_open_errors(void **state) {
  char *dir = tu_mkdtemp();
  char path[4200];
  vs_error err = VS_ERROR_INIT;
  vs_open_options ro = {VS_OPEN_READONLY, 0, 0, 0}, bad = {1u << 20, 0, 0, 0},
                  both = {VS_OPEN_CREATE | VS_OPEN_READONLY, 0, 0, 0};
  vs_db *db = NULL, *db2 = NULL;
  FILE *f;

  (void)state;
  snprintf(path, sizeof(path), "%s/missing", dir);
  TU_EXPECT(vs_db_open(path, NULL, &db, &err), VS_ENOTFOUND, &err);
  assert_null(db);
  vs_error_clear(&err);
  TU_EXPECT(vs_db_open(NULL, NULL, &db, &err), VS_EINVAL, &err);
  assert_int_equal(vs_db_open("", NULL, &db, NULL), VS_EINVAL);
  assert_int_equal(vs_db_open(dir, &bad, &db, NULL), VS_EINVAL);
  assert_int_equal(vs_db_open(dir, &both, &db, NULL), VS_EINVAL);

  snprintf(path, sizeof(path), "%s/file", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(vs_db_open(path, NULL, &db, NULL), VS_EINVAL);

  /* The same directory twice in one process is refused. */
  db = tu_open(dir, 0);
  vs_error_clear(&err);
  TU_EXPECT(vs_db_open(dir, NULL, &db2, &err), VS_EBUSY, &err);
  assert_null(db2);
  tu_create(db, "x", 2, VS_METRIC_IP, "Flat");
  vs_db_close(db);

  /* Read-only: reads work, writes are refused. */
  TU_EXPECT(vs_db_open(dir, &ro, &db, &err), VS_OK, &err);
  {
    vs_collection_config cfg = {"y", 2, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0};
    float v[2] = {1, 2};
    vs_point p = {vs_id_int(1), v, 2, NULL, 0};
    uint64_t n;
    assert_int_equal(vs_count(db, "x", &n, NULL), VS_OK);
    assert_int_equal(vs_collection_create(db, &cfg, NULL), VS_EACCES);
    assert_int_equal(vs_upsert(db, "x", &p, 1, NULL), VS_EACCES);
    assert_int_equal(vs_collection_drop(db, "x", NULL), VS_EACCES);
  }
  vs_db_close(db);
  vs_db_close(NULL);
  tu_rmdir(dir);
  free(dir);
}

/* A database written by a future format is refused, not misread; so is
 * format 1, from before the text tables. */
static void test_format_version(void **state) {
  static const uint32_t versions[] = {99, 1};

  (void)state;
  for (int i = 0; i < 2; i++) {
    char *dir = tu_mkdtemp(), want[16];
    vs_error err = VS_ERROR_INIT;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    uint32_t ver = versions[i];
    MDB_val k = {6, "format"}, v = {4, &ver};
    vs_db *db = tu_open(dir, 0);

    vs_db_close(db);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    db = NULL;
    TU_EXPECT(vs_db_open(dir, NULL, &db, &err), VS_EVERSION, &err);
    snprintf(want, sizeof(want), "format %u", ver);
    assert_non_null(strstr(err.message, want));
    assert_null(db);
    tu_rmdir(dir);
    free(dir);
  }
}

static void test_reopen_persists(void **state) {
  char *dir = tu_mkdtemp();
  const char *fields[] = {"title", "body"};
  vs_collection_config cfg = {"docs", 0, VS_METRIC_L2, NULL, fields, 2, "porter", 0.9, 0.4};
  vs_collection_info *info;
  vs_error err = VS_ERROR_INIT;
  vs_db *db = tu_open(dir, 0);

  (void)state;
  TU_EXPECT(vs_collection_create(db, &cfg, &err), VS_OK, &err);
  tu_create(db, "items", 64, VS_METRIC_COSINE, NULL);
  vs_db_close(db);

  db = tu_open(dir, 0);
  TU_EXPECT(vs_collection_describe(db, "docs", &info, &err), VS_OK, &err);
  assert_string_equal(info->name, "docs");
  assert_int_equal(info->dim, 0);
  assert_string_equal(info->index, "");
  assert_string_equal(info->language, "porter");
  assert_int_equal(info->n_text_fields, 2);
  assert_string_equal(info->text_fields[0], "title");
  assert_string_equal(info->text_fields[1], "body");
  assert_float_equal(info->bm25_k1, 0.9, 1e-12);
  assert_float_equal(info->bm25_b, 0.4, 1e-12);
  assert_true(info->created_at > 1700000000u);
  vs_free(info);
  TU_EXPECT(vs_collection_describe(db, "items", &info, &err), VS_OK, &err);
  assert_int_equal(info->dim, 64);
  assert_int_equal(info->metric, VS_METRIC_COSINE);
  assert_string_equal(info->index, "HNSW32"); /* the default */
  assert_string_equal(info->language, "english");
  assert_float_equal(info->bm25_k1, 1.2, 1e-12);
  assert_float_equal(info->bm25_b, 0.75, 1e-12);
  assert_int_equal(info->n_text_fields, 0);
  assert_null(info->text_fields);
  vs_free(info);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

static void test_collection_errors(void **state) {
  char *dir = tu_mkdtemp();
  vs_db *db = tu_open(dir, 0);
  vs_error err = VS_ERROR_INIT;
  const char *dup[] = {"a", "a"};
  const char *empty[] = {""};
  struct {
    vs_collection_config cfg;
    int want;
  } cases[] = {
      {{"ok", 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_OK},
      {{"ok", 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EEXIST},
      {{"bad name", 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"", 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{NULL, 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"big", VS_DIM_MAX + 1, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"metric", 4, (vs_metric)9, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"spec", 4, VS_METRIC_L2, "IVF16,PQ3", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"spec2", 4, VS_METRIC_L2, "Bogus", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"textonly", 0, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0}, VS_EINVAL},
      {{"lang", 4, VS_METRIC_L2, NULL, NULL, 0, "klingon", 0, 0}, VS_EINVAL},
      {{"dupf", 4, VS_METRIC_L2, NULL, dup, 2, NULL, 0, 0}, VS_EINVAL},
      {{"emptyf", 4, VS_METRIC_L2, NULL, empty, 1, NULL, 0, 0}, VS_EINVAL},
      {{"nullf", 4, VS_METRIC_L2, NULL, NULL, 1, NULL, 0, 0}, VS_EINVAL},
      {{"manyf", 4, VS_METRIC_L2, NULL, dup, VS_TEXT_FIELDS_MAX + 1, NULL, 0, 0}, VS_EINVAL},
      {{"k1", 4, VS_METRIC_L2, NULL, NULL, 0, NULL, -1, 0.5}, VS_EINVAL},
      {{"b", 4, VS_METRIC_L2, NULL, NULL, 0, NULL, 1.2, 1.5}, VS_EINVAL},
      {{"none", 0, VS_METRIC_L2, NULL, NULL, 0, "none", 0, 0}, VS_OK},
  };
  vs_collection_info *infos;
  size_t n;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    vs_error_clear(&err);
    int rc = vs_collection_create(db, &cases[i].cfg, &err);
    if (rc != cases[i].want)
      fail_msg("case %zu (%s): got %s (%s), want %s", i, cases[i].cfg.name, vs_err_name(rc),
               err.message, vs_err_name(cases[i].want));
    if (rc)
      assert_true(strlen(err.message) > 0);
  }
  /* Only the two valid ones exist. */
  TU_EXPECT(vs_collection_list(db, &infos, &n, &err), VS_OK, &err);
  assert_int_equal(n, 2);
  assert_string_equal(infos[0].name, "none");
  assert_string_equal(infos[1].name, "ok");
  vs_free(infos);
  assert_int_equal(vs_collection_drop(db, "nope", NULL), VS_ENOTFOUND);
  assert_int_equal(vs_collection_drop(db, "no pe", NULL), VS_EINVAL);
  assert_int_equal(vs_collection_describe(db, "nope", &infos, NULL), VS_ENOTFOUND);
  assert_null(infos);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

static void test_drop_and_recreate(void **state) {
  char *dir = tu_mkdtemp();
  vs_db *db = tu_open(dir, VS_OPEN_NOSYNC);
  float v[2] = {1, 2}, w[3] = {1, 2, 3};
  vs_point p = {vs_id_int(7), v, 2, NULL, 0};
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *infos;
  vs_record *r;
  uint64_t n;
  size_t nc;

  (void)state;
  tu_create(db, "a", 2, VS_METRIC_L2, "Flat");
  tu_create(db, "b", 2, VS_METRIC_L2, "Flat");
  TU_EXPECT(vs_upsert(db, "a", &p, 1, &err), VS_OK, &err);
  TU_EXPECT(vs_collection_drop(db, "a", &err), VS_OK, &err);
  assert_int_equal(vs_count(db, "a", &n, NULL), VS_ENOTFOUND);
  assert_int_equal(vs_upsert(db, "a", &p, 1, NULL), VS_ENOTFOUND);
  /* Same name, new shape: nothing of the old collection shows through. */
  tu_create(db, "a", 3, VS_METRIC_IP, "Flat");
  TU_EXPECT(vs_count(db, "a", &n, &err), VS_OK, &err);
  assert_int_equal(n, 0);
  TU_EXPECT(vs_get(db, "a", &p.id, 1, VS_GET_VECTOR, &r, &err), VS_OK, &err);
  assert_false(r[0].found);
  vs_free(r);
  assert_int_equal(vs_upsert(db, "a", &p, 1, NULL), VS_EDIM);
  p.vector = w;
  p.dim = 3;
  TU_EXPECT(vs_upsert(db, "a", &p, 1, &err), VS_OK, &err);
  TU_EXPECT(vs_collection_list(db, &infos, &nc, &err), VS_OK, &err);
  assert_int_equal(nc, 2);
  assert_int_equal(infos[0].dim, 3);
  assert_int_equal(infos[0].count, 1);
  vs_free(infos);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

/* ---- several threads on one handle ---------------------------------------------------- */

typedef struct worker {
  vs_db *db;
  int id;
  int errors;
} worker;

static void *writer_main(void *arg) {
  worker *w = arg;
  char name[16];
  float v[8];

  snprintf(name, sizeof(name), "w%d", w->id);
  for (int i = 0; i < 200; i++) {
    vs_point p = {vs_id_int((uint64_t)(i % 50)), v, 8, NULL, 0};
    for (int j = 0; j < 8; j++)
      v[j] = (float)(i + j);
    if (vs_upsert(w->db, name, &p, 1, NULL))
      w->errors++;
  }
  return NULL;
}

static void *reader_main(void *arg) {
  worker *w = arg;

  for (int i = 0; i < 400; i++) {
    vs_id id = vs_id_int((uint64_t)(i % 50));
    vs_record *r;
    uint64_t n;
    char name[16];

    snprintf(name, sizeof(name), "w%d", i % 2);
    if (vs_get(w->db, name, &id, 1, VS_GET_VECTOR, &r, NULL) == VS_OK) {
      if (r[0].found && r[0].vector[1] != r[0].vector[0] + 1)
        w->errors++; /* a torn vector */
      vs_free(r);
    } else {
      w->errors++;
    }
    if (vs_count(w->db, name, &n, NULL) || n > 50)
      w->errors++;
  }
  return NULL;
}

static void *churn_main(void *arg) {
  worker *w = arg;
  vs_collection_config cfg = {"churn", 4, VS_METRIC_L2, "Flat", NULL, 0, NULL, 0, 0};

  for (int i = 0; i < 30; i++) {
    if (vs_collection_create(w->db, &cfg, NULL) || vs_collection_drop(w->db, "churn", NULL))
      w->errors++;
  }
  return NULL;
}

static void test_threads(void **state) {
  char *dir = tu_mkdtemp();
  vs_db *db = tu_open(dir, VS_OPEN_NOSYNC);
  pthread_t t[5];
  worker w[5];
  uint64_t n;

  (void)state;
  tu_create(db, "w0", 8, VS_METRIC_L2, "Flat");
  tu_create(db, "w1", 8, VS_METRIC_L2, "Flat");
  for (int i = 0; i < 5; i++) {
    w[i] = (worker){db, i, 0};
    pthread_create(&t[i], NULL, i < 2 ? writer_main : (i < 4 ? reader_main : churn_main), &w[i]);
  }
  for (int i = 0; i < 5; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].errors, 0);
  }
  assert_int_equal(vs_count(db, "w0", &n, NULL), VS_OK);
  assert_int_equal(n, 50);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_alloc_failures), cmocka_unit_test(test_call_alloc_failures),
      cmocka_unit_test(test_open_errors),         cmocka_unit_test(test_format_version),
      cmocka_unit_test(test_reopen_persists),     cmocka_unit_test(test_collection_errors),
      cmocka_unit_test(test_drop_and_recreate),   cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
