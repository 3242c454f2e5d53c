/*
 * test_cli.c: the `vsearch` command line as a user runs it: the demo that
 * `make run` shows, create/stats/drop, import of vector files and JSON lines
 * the tests write themselves, and errors with a non-zero status.
 * The binary comes from $VSEARCH_BIN (set by ctest).
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run a shell command; return its exit status and up to cap bytes of its
 * combined output. */
static int run(char *out, size_t cap, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  FILE *p;
  size_t n = 0;
  int status;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
  p = popen(cmd, "r");
  assert_non_null(p);
  while (n + 1 < cap && !feof(p))
    n += fread(out + n, 1, cap - 1 - n, p);
  out[n] = '\0';
  status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *bin(void) {
  const char *b = getenv("VSEARCH_BIN");
  return b ? b : "build/vsearch";
}

static void test_demo(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];

  (void)state;
  assert_int_equal(run(out, sizeof(out), "%s demo %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "upserted 5 points"));
  assert_non_null(strstr(out, "NaN vector is refused: VS_EINVAL"));
  assert_non_null(strstr(out, "3-d vector is refused:  VS_EDIM"));
  assert_non_null(strstr(out, "\"2\": not found"));
  assert_non_null(strstr(out, "deleted 2 points; count = 3"));
  assert_non_null(strstr(out, "reopened: count = 3"));
  /* Running it again starts the demo collection afresh. */
  assert_int_equal(run(out, sizeof(out), "%s demo %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "reopened: count = 3"));
  tu_rmdir(dir);
  free(dir);
}

static void test_create_stats_drop(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];

  (void)state;
  assert_int_equal(run(out, sizeof(out),
                       "%s create %s items --dim 32 --metric ip --index HNSW16,SQ8 "
                       "--text-fields title,body --language french",
                       bin(), dir),
                   0);
  assert_non_null(strstr(out, "metric=ip"));
  assert_int_equal(run(out, sizeof(out), "%s stats %s", bin(), dir), 0);
  assert_non_null(strstr(out, "1 collection"));
  assert_non_null(strstr(out, "index=HNSW16,SQ8"));
  assert_non_null(strstr(out, "text_fields=title,body"));
  assert_non_null(strstr(out, "language=french"));

  assert_int_not_equal(run(out, sizeof(out), "%s create %s items --dim 32", bin(), dir), 0);
  assert_non_null(strstr(out, "already exists"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s create %s bad --dim 30 --index IVF8,PQ7", bin(), dir), 0);
  assert_non_null(strstr(out, "not valid for dim 30"));
  assert_int_not_equal(run(out, sizeof(out), "%s create %s bad --dim 8 --metric dot", bin(), dir),
                       0);
  assert_int_not_equal(run(out, sizeof(out), "%s create %s bad", bin(), dir), 0);
  assert_non_null(strstr(out, "--dim"));
  assert_int_not_equal(run(out, sizeof(out), "%s stats %s/nowhere", bin(), dir), 0);
  assert_non_null(strstr(out, "does not exist"));
  assert_int_not_equal(run(out, sizeof(out), "%s frobnicate", bin()), 0);

  assert_int_equal(run(out, sizeof(out), "%s drop %s items", bin(), dir), 0);
  assert_int_not_equal(run(out, sizeof(out), "%s drop %s items", bin(), dir), 0);
  assert_non_null(strstr(out, "no collection named 'items'"));
  assert_int_equal(run(out, sizeof(out), "%s stats %s", bin(), dir), 0);
  assert_non_null(strstr(out, "0 collections"));
  tu_rmdir(dir);
  free(dir);
}

/* ---- import ------------------------------------------------------------------ */

/* Write a texmex file: rows x dim values from v (as float32, or as uint8
 * when elem is 1), little-endian whatever the host. */
static void write_vecs(const char *path, size_t rows, uint32_t dim, size_t elem, const float *v) {
  FILE *f = fopen(path, "wb");

  assert_non_null(f);
  for (size_t i = 0; i < rows; i++) {
    unsigned char h[4] = {(unsigned char)dim, (unsigned char)(dim >> 8), (unsigned char)(dim >> 16),
                          (unsigned char)(dim >> 24)};
    assert_int_equal(fwrite(h, 1, 4, f), 4);
    for (size_t j = 0; j < dim; j++) {
      float x = v[i * dim + j];
      uint32_t bits;
      unsigned char b[4];
      if (elem == 1) {
        b[0] = (unsigned char)x;
      } else {
        memcpy(&bits, &x, 4);
        for (int k = 0; k < 4; k++)
          b[k] = (unsigned char)(bits >> (8 * k));
      }
      assert_int_equal(fwrite(b, 1, elem, f), elem);
    }
  }
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* The count `vsearch stats` shows for collection `name` of database dir/db. */
static long stats_count(const char *dir, const char *name) {
  static char out[65536];
  char key[128];
  const char *p;

  assert_int_equal(run(out, sizeof(out), "%s stats %s/db", bin(), dir), 0);
  snprintf(key, sizeof(key), "\n%s ", name);
  p = strstr(out, key);
  assert_non_null(p);
  p = strstr(p, "count=");
  assert_non_null(p);
  return strtol(p + 6, NULL, 10);
}

static void test_import_vectors(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char fv[4200], bv[4200];
  float v[25 * 4];
  uint64_t seed = 3;

  (void)state;
  snprintf(fv, sizeof(fv), "%s/a.fvecs", dir);
  snprintf(bv, sizeof(bv), "%s/b.bvecs", dir);
  for (size_t i = 0; i < 25 * 4; i++)
    v[i] = tu_randf(&seed);
  write_vecs(fv, 25, 4, 4, v);
  for (size_t i = 0; i < 25 * 4; i++)
    v[i] = (float)(i % 256);
  write_vecs(bv, 12, 4, 1, v);
  assert_int_equal(run(out, sizeof(out), "%s create %s/db v4 --dim 4 --index Flat", bin(), dir), 0);

  /* Three batches; no progress line when stderr is not a terminal. */
  assert_int_equal(run(out, sizeof(out), "%s import %s/db v4 %s --batch 10", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "imported 25 points into v4 in "));
  assert_non_null(strstr(out, "points/s)\n"));
  assert_null(strchr(out, '\r'));
  assert_int_equal(stats_count(dir, "v4"), 25);
  /* Again: the same ids 0..24 are replaced, not added. */
  assert_int_equal(run(out, sizeof(out), "%s import %s/db v4 %s --no-sync", bin(), dir, fv), 0);
  assert_int_equal(stats_count(dir, "v4"), 25);
  /* bvecs after them, from id 25. */
  assert_int_equal(
      run(out, sizeof(out), "%s import %s/db v4 %s --first-id 25 --batch 5", bin(), dir, bv), 0);
  assert_non_null(strstr(out, "imported 12 points into v4"));
  assert_int_equal(stats_count(dir, "v4"), 37);
  /* The format may be named; a file of another name is then fine. */
  snprintf(bv + strlen(bv), 8, ".data");
  write_vecs(bv, 3, 4, 1, v);
  assert_int_equal(
      run(out, sizeof(out), "%s import %s/db v4 %s --format bvecs --first-id 100", bin(), dir, bv),
      0);
  assert_int_equal(stats_count(dir, "v4"), 40);
  tu_rmdir(dir);
  free(dir);
}

static void test_import_jsonl(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char p[4200];

  (void)state;
  snprintf(p, sizeof(p), "%s/points.jsonl", dir);
  write_text(p, "{\"id\": 1, \"vector\": [0.5, 1, -2], \"payload\": {\"title\": \"one\", "
                "\"year\": 2021, \"tags\": [\"a\", \"b\"], \"ok\": true, \"score\": 0.25}}\n"
                "{\"id\": \"doc-2\", \"vector\": [1, 2, 3], \"payload\": {\"title\": \"two\"}}\n"
                "\n"
                "{\"id\": \"1\", \"vector\": [0, 0, 0]}\n"
                "{\"id\": 9223372036854775807, \"vector\": [1e-3, 2e3, 3]}\n");
  assert_int_equal(
      run(out, sizeof(out), "%s create %s/db docs --dim 3 --text-fields title", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db docs %s --batch 3", bin(), dir, p), 0);
  assert_non_null(strstr(out, "imported 4 points into docs"));
  /* Integer 1 and string "1" are different points. */
  assert_int_equal(stats_count(dir, "docs"), 4);

  /* A payload vs_upsert refuses: the message names the line (the fourth
   * point of its batch is on line 5). */
  write_text(p, "{\"id\": 10, \"vector\": [1, 2, 3]}\n"
                "{\"id\": 11, \"vector\": [1, 2, 3]}\n"
                "{\"id\": 12, \"vector\": [1, 2, 3]}\n"
                "\n"
                "{\"id\": 13, \"vector\": [1, 2, 3], \"payload\": {\"n\": null}}\n");
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db docs %s", bin(), dir, p), 0);
  assert_non_null(strstr(out, "line 5: payload field 'n'"));
  assert_int_equal(stats_count(dir, "docs"), 4);
  tu_rmdir(dir);
  free(dir);
}

static void test_import_errors(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char fv[4200], js[4200];
  float v[10 * 4] = {0};
  FILE *f;

  (void)state;
  snprintf(fv, sizeof(fv), "%s/a.fvecs", dir);
  snprintf(js, sizeof(js), "%s/a.jsonl", dir);
  write_vecs(fv, 10, 4, 4, v);
  assert_int_equal(run(out, sizeof(out), "%s create %s/db d8 --dim 8 --index Flat", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s create %s/db d4 --dim 4 --index Flat", bin(), dir), 0);

  /* The file's dim against the collection's, before anything is written. */
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d8 %s", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "has vectors of dim 4, collection 'd8' has dim 8"));
  assert_int_equal(stats_count(dir, "d8"), 0);
  /* An unknown collection, a missing database, a missing file. */
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db nope %s", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "no collection named 'nope'"));
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/nowhere d4 %s", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "does not exist"));
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s/none.fvecs", bin(), dir, dir),
                       0);
  assert_non_null(strstr(out, "No such file"));
  /* Bad options. */
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s --batch 0", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "--batch"));
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s --first-id -1", bin(), dir, fv),
                       0);
  assert_non_null(strstr(out, "--first-id"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s import %s/db d4 %s --first-id 9223372036854775800", bin(), dir, fv),
      0);
  assert_non_null(strstr(out, "2^63-1"));
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s --format hdf5", bin(), dir, fv),
                       0);
  assert_non_null(strstr(out, "unknown format"));
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4", bin(), dir), 0);

  /* A truncated fvecs file. */
  f = fopen(fv, "r+b");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), 10 * 20 - 3), 0);
  fclose(f);
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "not a whole number of 20-byte rows"));
  assert_int_equal(stats_count(dir, "d4"), 0);

  /* A NaN in row 7 stops the import at its batch; the batch before stays. */
  v[7 * 4 + 2] = NAN;
  write_vecs(fv, 10, 4, 4, v);
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s --batch 5", bin(), dir, fv), 0);
  assert_non_null(strstr(out, "row 7: vector component 2"));
  assert_non_null(strstr(out, "the 5 points imported before are kept"));
  assert_int_equal(stats_count(dir, "d4"), 5);

  /* Malformed JSON lines name their line. */
  write_text(js, "{\"id\": 1, \"vector\": [1, 2, 3, 4]}\n{\"id\": 2, \"vector\": [1, 2,\n");
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s", bin(), dir, js), 0);
  assert_non_null(strstr(out, "line 2: invalid JSON"));
  write_text(js, "{\"id\": 1, \"vector\": [1, 2, 3, 4]}\n{\"id\": 2, \"vector\": [1, 2, 3]}\n");
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s", bin(), dir, js), 0);
  assert_non_null(strstr(out, "line 2: vector has 3 components, collection 'd4' has dim 4"));
  write_text(js, "{\"id\": -4, \"vector\": [1, 2, 3, 4]}\n");
  assert_int_not_equal(run(out, sizeof(out), "%s import %s/db d4 %s", bin(), dir, js), 0);
  assert_non_null(strstr(out, "line 1: integer id -4 is not in 0..2^63-1"));
  assert_int_equal(stats_count(dir, "d4"), 5);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demo),           cmocka_unit_test(test_create_stats_drop),
      cmocka_unit_test(test_import_vectors), cmocka_unit_test(test_import_jsonl),
      cmocka_unit_test(test_import_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
