/*
 * test_growth.c: the LMDB map grows on demand.
 *
 * A database opened with a 64 KiB map takes 100,000 points (so the map must
 * double many times, each time in the middle of a batch that is then
 * retried), and a second process that grows the map under a first one,
 * which holds the database open, must not break the first.
 */
#include "tests/testutil.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 8
#define N 100000
#define BATCH 1000

static void fill(float *v, uint64_t id) {
  for (int j = 0; j < DIM; j++)
    v[j] = (float)id * 0.5f + (float)j;
}

static void put_batches(vs_db *db, uint64_t first, uint64_t n) {
  static vs_point p[BATCH];
  static float v[BATCH][DIM];
  static msgpack_sbuffer sb[BATCH];
  vs_error err = VS_ERROR_INIT;

  for (uint64_t base = first; base < first + n; base += BATCH) {
    for (uint64_t i = 0; i < BATCH; i++) {
      fill(v[i], base + i);
      tu_payload_simple(&sb[i], base + i);
      p[i] = (vs_point){vs_id_int(base + i), v[i], DIM, sb[i].data, sb[i].size};
    }
    TU_EXPECT(vs_upsert(db, "g", p, BATCH, &err), VS_OK, &err);
    for (uint64_t i = 0; i < BATCH; i++)
      msgpack_sbuffer_destroy(&sb[i]);
  }
}

static size_t file_size(const char *dir) {
  char path[4200];
  FILE *f;
  long n;

  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fclose(f);
  return (size_t)n;
}

static void check_points(vs_db *db, uint64_t n) {
  vs_error err = VS_ERROR_INIT;
  uint64_t count;

  TU_EXPECT(vs_count(db, "g", &count, &err), VS_OK, &err);
  assert_int_equal(count, n);
  for (uint64_t id = 0; id < n; id += 997) {
    vs_id q = vs_id_int(id);
    vs_record *r;
    float want[DIM];

    TU_EXPECT(vs_get(db, "g", &q, 1, VS_GET_VECTOR, &r, &err), VS_OK, &err);
    assert_true(r[0].found);
    fill(want, id);
    assert_memory_equal(r[0].vector, want, sizeof(want));
    vs_free(r);
  }
}

static void test_tiny_map_grows(void **state) {
  char *dir = tu_mkdtemp();
  vs_open_options o = {VS_OPEN_CREATE | VS_OPEN_NOSYNC, 64 << 10, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;

  (void)state;
  TU_EXPECT(vs_db_open(dir, &o, &db, &err), VS_OK, &err);
  tu_create(db, "g", DIM, VS_METRIC_L2, "Flat");
  put_batches(db, 0, N);
  check_points(db, N);
  vs_db_close(db);
  assert_true(file_size(dir) > (size_t)N * DIM * sizeof(float));

  /* Reopened with the same tiny setting, LMDB adopts the stored size. */
  TU_EXPECT(vs_db_open(dir, &o, &db, &err), VS_OK, &err);
  check_points(db, N);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

static void test_grown_by_another_process(void **state) {
  char *dir = tu_mkdtemp();
  vs_open_options o = {VS_OPEN_CREATE | VS_OPEN_NOSYNC, 64 << 10, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;
  pid_t pid;
  int status;

  (void)state;
  TU_EXPECT(vs_db_open(dir, &o, &db, &err), VS_OK, &err);
  tu_create(db, "g", DIM, VS_METRIC_L2, "Flat");
  put_batches(db, 0, BATCH);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* LMDB handles do not survive fork: run a fresh process image. */
    execl("/proc/self/exe", "test_growth", "--grow", dir, (char *)NULL);
    _exit(2);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* The map grew under us: reads and writes go on. */
  check_points(db, 20 * BATCH);
  put_batches(db, 20 * BATCH, BATCH);
  check_points(db, 21 * BATCH);
  vs_db_close(db);
  tu_rmdir(dir);
  free(dir);
}

/* The helper process of test_grown_by_another_process. */
static int grow_main(const char *dir) {
  vs_open_options o = {VS_OPEN_NOSYNC, 64 << 10, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;

  if (vs_db_open(dir, &o, &db, &err)) {
    fprintf(stderr, "grow: %s\n", err.message);
    return 1;
  }
  put_batches(db, BATCH, 19 * BATCH);
  vs_db_close(db);
  return 0;
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_map_grows),
      cmocka_unit_test(test_grown_by_another_process),
  };
  if (argc == 3 && strcmp(argv[1], "--grow") == 0)
    return grow_main(argv[2]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
