/*
 * test_cli.c: the `vsearch` command line as a user runs it: the demo that
 * `make run` shows, create/stats/drop, import of vector files and JSON lines
 * the tests write themselves, build and query (checked against a scan), text
 * queries on a text-only collection, and errors with a non-zero status.
 * The binary comes from $VSEARCH_BIN (set by ctest).
 */
#include "tests/testutil.h"

#include <jansson.h>
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
  assert_non_null(
      strstr(out, "7. the 2 points nearest to point 3's vector (cosine, plan index): 3 (1.000)"));
  assert_non_null(strstr(out, "with the filter year >= 2023 (plan filtered-scan): 4 ("));
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

/* `vsearch bench ann` on vector files written here: every system's rows,
 * and raw FAISS on vsearch's own segment ("faiss-same") finds exactly what
 * vsearch finds, since it walks the same graph with the same ef. */
static void test_bench_ann(void **state) {
  enum { N = 2000, NQ = 20, DIM = 48 }; /* uniform in 48-d: HNSW at ef 10 misses some */
  char *dir = tu_mkdtemp();
  static char out[65536];
  char base[4200], queries[4200], json[4200];
  float *v = malloc((size_t)(N + NQ) * DIM * sizeof(float));
  double recall[2][3] = {{-1, -1, -1}, {-1, -1, -1}}; /* spec x (vsearch, faiss, faiss-same) */
  json_error_t jerr;
  uint64_t seed = 11;
  FILE *f;
  char line[4096];

  (void)state;
  snprintf(base, sizeof(base), "%s/base.fvecs", dir);
  snprintf(queries, sizeof(queries), "%s/q.fvecs", dir);
  snprintf(json, sizeof(json), "%s/out.json", dir);
  for (size_t i = 0; i < (size_t)(N + NQ) * DIM; i++)
    v[i] = tu_randf(&seed);
  write_vecs(base, N, DIM, 4, v);
  write_vecs(queries, NQ, DIM, 4, v + (size_t)N * DIM);
  assert_int_equal(run(out, sizeof(out),
                       "%s bench ann --base %s --queries %s --specs 'HNSW16;Flat' --ef 10 "
                       "--runs 1 --threads 1 --peers faiss --dir %s --json %s",
                       bin(), base, queries, dir, json),
                   0);
  assert_non_null(strstr(out, "faiss-same HNSW16"));
  assert_non_null(strstr(out, "lowest HNSW ratio on the same index"));
  f = fopen(json, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    json_t *o = json_loads(line, 0, &jerr);
    const char *sys, *spec;
    int si, pi;

    assert_non_null(o);
    sys = json_string_value(json_object_get(o, "system"));
    spec = json_string_value(json_object_get(o, "spec"));
    si = strcmp(spec, "Flat") == 0;
    pi = strcmp(sys, "vsearch") == 0 ? 0 : strcmp(sys, "faiss") == 0 ? 1 : 2;
    recall[si][pi] = json_number_value(json_object_get(o, "recall"));
    json_decref(o);
  }
  fclose(f);
  for (int si = 0; si < 2; si++) {
    for (int pi = 0; pi < 3; pi++)
      assert_true(recall[si][pi] > 0.3 && recall[si][pi] <= 1.0);
    assert_true(recall[si][0] == recall[si][2]); /* the same index */
  }
  assert_true(recall[0][0] < 1.0);  /* so that the equality above says something */
  assert_true(recall[1][0] == 1.0); /* Flat is exact */
  free(v);
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

/* ---- query and build -------------------------------------------------------- */

/* Parse `vsearch query --json` output: one JSON object a line, gathered
 * into an array.  Fails the test on a line that is not a JSON object. */
static json_t *json_lines(const char *out) {
  json_t *all = json_array();
  const char *p = out;

  assert_non_null(all);
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    json_error_t e;
    json_t *o = json_loadb(p, n, 0, &e);

    if (o == NULL || !json_is_object(o))
      fail_msg("not a JSON object: %.*s (%s)", (int)n, p, e.text);
    assert_int_equal(json_array_append_new(all, o), 0);
    p += n + (nl != NULL);
  }
  return all;
}

/* Hit h of query line q: its integer id, and its score in *score. */
static long long hit_id(const json_t *lines, size_t q, size_t h, double *score) {
  const json_t *hit = json_array_get(json_object_get(json_array_get(lines, q), "hits"), h);

  assert_non_null(hit);
  assert_true(json_is_integer(json_object_get(hit, "id")));
  if (score)
    *score = json_number_value(json_object_get(hit, "score"));
  return json_integer_value(json_object_get(hit, "id"));
}

static size_t hit_count(const json_t *lines, size_t q) {
  return json_array_size(json_object_get(json_array_get(lines, q), "hits"));
}

static const char *plan(const json_t *lines, size_t q) {
  return json_string_value(json_object_get(json_array_get(lines, q), "plan"));
}

/* The ids of the k points of v (n x 4) nearest to q by squared L2, by scan. */
static void nearest(const float *v, size_t n, const float *q, size_t k, long long *ids) {
  for (size_t r = 0; r < k; r++) {
    double best = INFINITY;
    for (size_t i = 0; i < n; i++) {
      double d = 0;
      int taken = 0;
      for (size_t t = 0; t < r; t++)
        taken |= ids[t] == (long long)i;
      for (size_t j = 0; j < 4; j++)
        d += (double)(v[i * 4 + j] - q[j]) * (v[i * 4 + j] - q[j]);
      if (!taken && d < best) {
        best = d;
        ids[r] = (long long)i;
      }
    }
  }
}

/* Check query line qi against the scan: the top 3 ids, best first, with
 * scores ascending (squared L2). */
static void check_line(const json_t *lines, size_t line, size_t qi, const float *v,
                       const float *q) {
  long long want[3];
  double prev = -1, score;

  assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, line), "query")), qi);
  assert_int_equal(hit_count(lines, line), 3);
  nearest(v, 20, q, 3, want);
  for (size_t h = 0; h < 3; h++) {
    assert_int_equal(hit_id(lines, line, h, &score), want[h]);
    assert_true(score >= prev);
    prev = score;
  }
}

static void test_query_build(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char pv[4200], qv[4200], qj[4200];
  float v[20 * 4], q[4 * 4];
  static const size_t rows[3] = {3, 7, 11};
  uint64_t seed = 11;
  json_t *lines;
  double score;

  (void)state;
  snprintf(pv, sizeof(pv), "%s/p.fvecs", dir);
  snprintf(qv, sizeof(qv), "%s/q.fvecs", dir);
  snprintf(qj, sizeof(qj), "%s/q.jsonl", dir);
  for (size_t i = 0; i < 20 * 4; i++)
    v[i] = tu_randf(&seed);
  /* Queries 0..2 are stored points 3, 7 and 11; query 3 is a new vector. */
  for (size_t i = 0; i < 3; i++)
    memcpy(q + i * 4, v + rows[i] * 4, 4 * sizeof(float));
  for (size_t j = 0; j < 4; j++)
    q[12 + j] = tu_randf(&seed);
  write_vecs(pv, 20, 4, 4, v);
  write_vecs(qv, 4, 4, 4, q);
  assert_int_equal(run(out, sizeof(out), "%s create %s/db c --dim 4 --index Flat", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db c %s", bin(), dir, pv), 0);

  /* One line a query, numbered from 0; a stored vector finds itself at 0. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db c --json --vector-file %s --k 3", bin(), dir, qv), 0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 4);
  for (size_t i = 0; i < 4; i++) {
    check_line(lines, i, i, v, q + i * 4);
    assert_string_equal(plan(lines, i), "index");
  }
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(hit_id(lines, i, 0, &score), rows[i]);
    assert_true(score == 0.0);
  }
  json_decref(lines);

  /* --rows picks rows [A, B), still numbered from 0. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db c --json --vector-file %s --k 3 --rows 1:2", bin(), dir, qv),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  check_line(lines, 0, 0, v, q + 4);
  assert_int_equal(hit_id(lines, 0, 0, NULL), 7);
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db c --json --vector-file %s --k 3 --rows 2:", bin(), dir, qv),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 2);
  check_line(lines, 1, 1, v, q + 12);
  json_decref(lines);

  /* --exact scans, with the same answers. */
  assert_int_equal(run(out, sizeof(out), "%s query %s/db c --json --vector-file %s --k 3 --exact",
                       bin(), dir, qv),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 4);
  for (size_t i = 0; i < 4; i++) {
    check_line(lines, i, i, v, q + i * 4);
    assert_string_equal(plan(lines, i), "exact");
  }
  json_decref(lines);

  /* A rebuild under another spec; top-1 stays. */
  assert_int_equal(run(out, sizeof(out), "%s build %s/db c --index HNSW16 --threads 1", bin(), dir),
                   0);
  assert_non_null(strstr(out, "built c: 20 points, index HNSW16, in "));
  assert_null(strchr(out, '\r'));
  assert_int_equal(run(out, sizeof(out), "%s stats %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "index=HNSW16"));
  assert_int_equal(run(out, sizeof(out), "%s query %s/db c --json --vector-file %s --k 3 --ef 32",
                       bin(), dir, qv),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 4);
  for (size_t i = 0; i < 4; i++) {
    long long want[3];
    nearest(v, 20, q + i * 4, 1, want);
    assert_int_equal(hit_id(lines, i, 0, NULL), want[0]);
    assert_int_equal(hit_count(lines, i), 3);
  }
  json_decref(lines);
  /* build without --index keeps the spec. */
  assert_int_equal(run(out, sizeof(out), "%s build %s/db c", bin(), dir), 0);
  assert_non_null(strstr(out, "built c: 20 points, index HNSW16, in "));

  /* The table: a header with the plan, then rank, id, score. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --k 2 --rows :1", bin(), dir, qv),
      0);
  assert_non_null(strstr(out, "query 0: 2 hits, plan index (1 segment"));
  assert_non_null(strstr(out, "rank  id"));
  assert_non_null(strstr(out, "\n     1  3 "));
  assert_null(strstr(out, "query 1"));

  /* JSON lines of numbers: blank lines skipped, an object with "vector"
   * taken; %.9g gives the float back exactly, so the score is 0. */
  {
    FILE *f = fopen(qj, "w");
    assert_non_null(f);
    fprintf(f, "[%.9g, %.9g, %.9g, %.9g]\n\n", v[12], v[13], v[14], v[15]);
    fprintf(f, "{\"vector\": [%.9g, %.9g, %.9g, %.9g]}\n", v[28], v[29], v[30], v[31]);
    fprintf(f, "  [%.9g,%.9g,%.9g,%.9g]  \n", v[44], v[45], v[46], v[47]);
    assert_int_equal(fclose(f), 0);
  }
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db c --json --vector-file %s --k 1", bin(), dir, qj), 0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 3);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, i), "query")), i);
    assert_int_equal(hit_count(lines, i), 1);
    assert_int_equal(hit_id(lines, i, 0, &score), rows[i]);
    assert_true(score == 0.0);
  }
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db c --json --vector-file %s --k 1 --rows 1:", bin(), dir, qj),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 2);
  assert_int_equal(hit_id(lines, 0, 0, NULL), 7);
  assert_int_equal(hit_id(lines, 1, 0, NULL), 11);
  json_decref(lines);

  /* One query inline. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db c --json --k 1 --vector '%.9g,%.9g,%.9g,%.9g'", bin(), dir,
                       v[0], v[1], v[2], v[3]),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  assert_int_equal(hit_id(lines, 0, 0, NULL), 0);
  json_decref(lines);
  tu_rmdir(dir);
  free(dir);
}

/* String ids, payloads converted from msgpack, and vectors in the hits. */
static void test_query_payload(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char p[4200];
  json_t *lines, *hit, *want;

  (void)state;
  snprintf(p, sizeof(p), "%s/points.jsonl", dir);
  write_text(p, "{\"id\": 1, \"vector\": [0.5, 1, -2], \"payload\": {\"title\": \"one \\\"q\\\"\", "
                "\"year\": 2021, \"tags\": [\"a\", \"b\"], \"ok\": true, \"score\": 0.25, "
                "\"neg\": -5}}\n"
                "{\"id\": \"doc-2\", \"vector\": [1, 2, 3], \"payload\": {\"title\": \"two\"}}\n"
                "{\"id\": \"x\", \"vector\": [4, 4, 4]}\n");
  assert_int_equal(run(out, sizeof(out), "%s create %s/db d --dim 3 --index Flat", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db d %s", bin(), dir, p), 0);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db d --json --k 3 --with-payload --with-vector --vector 1,2,3",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  assert_int_equal(hit_count(lines, 0), 3);
  hit = json_array_get(json_object_get(json_array_get(lines, 0), "hits"), 0);
  want = json_loads("{\"id\": \"doc-2\", \"score\": 0.0, \"payload\": {\"title\": \"two\"}, "
                    "\"vector\": [1.0, 2.0, 3.0]}",
                    0, NULL);
  assert_true(json_equal(hit, want));
  json_decref(want);
  hit = json_array_get(json_object_get(json_array_get(lines, 0), "hits"), 1);
  assert_string_equal(json_string_value(json_object_get(hit, "id")), "x");
  assert_int_equal(json_object_size(json_object_get(hit, "payload")), 0);
  hit = json_array_get(json_object_get(json_array_get(lines, 0), "hits"), 2);
  want = json_loads("{\"title\": \"one \\\"q\\\"\", \"year\": 2021, \"tags\": [\"a\", \"b\"], "
                    "\"ok\": true, \"score\": 0.25, \"neg\": -5}",
                    0, NULL);
  assert_non_null(want);
  assert_true(json_equal(json_object_get(hit, "payload"), want));
  json_decref(want);
  assert_true(json_number_value(json_object_get(hit, "score")) == 0.25 + 1 + 25);
  json_decref(lines);

  /* Without --with-*, hits carry id and score only. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db d --json --k 1 --vector 4,4,4", bin(), dir), 0);
  assert_string_equal(out, "{\"query\": 0, \"hits\": [{\"id\": \"x\", \"score\": 0.0}], "
                           "\"plan\": \"index\"}\n");
  /* The table shows the string id quoted, and the payload. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db d --k 1 --vector 1,2,3 --with-payload", bin(), dir), 0);
  assert_non_null(strstr(out, "\"doc-2\""));
  assert_non_null(strstr(out, "{\"title\": \"two\"}"));

  /* --filter: only passing points, and the plan that ran. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db d --json --k 3 --vector 4,4,4 --filter "
                       "'{\"must\": [{\"key\": \"year\", \"range\": {\"gte\": 2000}}]}'",
                       bin(), dir),
                   0);
  assert_string_equal(out, "{\"query\": 0, \"hits\": [{\"id\": 1, \"score\": 57.25}], "
                           "\"plan\": \"filtered-scan\"}\n");
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db d --k 3 --vector 4,4,4 --filter "
                       "'{\"must\": [{\"key\": \"year\", \"range\": {}}]}'",
                       bin(), dir),
                   2);
  assert_non_null(strstr(out, "range needs at least one of gt, gte, lt, lte"));
  tu_rmdir(dir);
  free(dir);
}

/* ---- text queries ------------------------------------------------------------ */

/* Query line q's hit ids, best first, separated by spaces, a string id in
 * quotes ("\"c\" 5 1"), after checking that the line is query q and that
 * its scores are positive and never increase. */
static const char *text_ids(const json_t *lines, size_t q) {
  static char buf[512];
  const json_t *line = json_array_get(lines, q);
  const json_t *hits = json_object_get(line, "hits");
  double prev = INFINITY;

  assert_int_equal(json_integer_value(json_object_get(line, "query")), q);
  assert_true(json_is_array(hits));
  buf[0] = '\0';
  for (size_t h = 0; h < json_array_size(hits); h++) {
    const json_t *hit = json_array_get(hits, h), *id = json_object_get(hit, "id");
    double s = json_number_value(json_object_get(hit, "score"));
    size_t used = strlen(buf);

    assert_true(s > 0 && s <= prev);
    prev = s;
    if (json_is_integer(id)) {
      snprintf(buf + used, sizeof(buf) - used, "%s%lld", h ? " " : "",
               (long long)json_integer_value(id));
    } else {
      assert_true(json_is_string(id));
      snprintf(buf + used, sizeof(buf) - used, "%s\"%s\"", h ? " " : "", json_string_value(id));
    }
  }
  return buf;
}

/* A text-only collection (dim 0) imported from JSON lines without vectors,
 * then --text, --text-file, --filter, --weights and their errors. */
static void test_query_text(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char p[4200], qt[4200];
  json_t *lines;
  FILE *f;

  (void)state;
  snprintf(p, sizeof(p), "%s/docs.jsonl", dir);
  snprintf(qt, sizeof(qt), "%s/queries.txt", dir);
  write_text(p, "{\"id\": 1, \"payload\": {\"title\": \"The quick brown fox\", "
                "\"body\": \"jumps over the lazy dog\", \"year\": 2020}}\n"
                "{\"id\": 2, \"payload\": {\"title\": \"Lazy dogs sleep\", "
                "\"body\": \"all day long in the sun\", \"year\": 2021}}\n"
                "{\"id\": \"c\", \"payload\": {\"title\": \"Foxes and hounds\", "
                "\"body\": \"a fox runs from the hounds; the fox is quick\", \"year\": 2022}}\n"
                "{\"id\": 4, \"payload\": {\"title\": \"Cooking pasta\", "
                "\"body\": \"boil water, add salt\", \"year\": 2023}}\n"
                "{\"id\": 5, \"payload\": {\"title\": \"Garden notes\", "
                "\"body\": \"a fox visited the garden; the fox ate the fox food\", "
                "\"year\": 2024}}\n"
                "{\"id\": 6, \"payload\": {\"title\": \"mustard\", \"body\": \"pepper\"}}\n"
                "{\"id\": 7, \"payload\": {\"title\": \"pepper\", \"body\": \"mustard\"}}\n");
  assert_int_equal(run(out, sizeof(out),
                       "%s create %s/db docs --dim 0 --text-fields title,body --language english",
                       bin(), dir),
                   0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db docs %s --format jsonl", bin(), dir, p),
                   0);
  assert_non_null(strstr(out, "imported 7 points into docs"));

  /* "quick fox": "c" holds fox three times (Foxes stems to fox) and quick
   * once; 1 holds each once in a longer title; nothing else holds both. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text 'quick fox'", bin(), dir), 0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  assert_string_equal(text_ids(lines, 0), "\"c\" 1 5");
  assert_string_equal(plan(lines, 0), "bm25");
  json_decref(lines);
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text 'quick fox' --k 1", bin(), dir), 0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "\"c\"");
  json_decref(lines);
  /* Payloads come with the hits when asked. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text pasta --with-payload", bin(), dir),
      0);
  assert_non_null(strstr(out, "\"payload\": {\"title\": \"Cooking pasta\""));
  /* The table, as for vectors. */
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --text 'quick fox'", bin(), dir), 0);
  assert_non_null(strstr(out, "query 0: 3 hits, plan bm25"));
  assert_non_null(strstr(out, "\n     1  \"c\" "));

  /* --text-file: a query a line, an empty line a query with no hits. */
  write_text(qt, "fox\n\nlazy dog\n");
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text-file %s", bin(), dir, qt), 0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 3);
  assert_string_equal(text_ids(lines, 0), "\"c\" 5 1");
  assert_string_equal(text_ids(lines, 1), "");
  assert_string_equal(plan(lines, 1), "empty");
  assert_string_equal(text_ids(lines, 2), "1 2");
  json_decref(lines);
  /* CRLF line ends and no newline at the end: the same three queries. */
  write_text(qt, "fox\r\n\r\nlazy dog");
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text-file %s --k 1", bin(), dir, qt), 0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 3);
  assert_string_equal(text_ids(lines, 0), "\"c\"");
  assert_string_equal(text_ids(lines, 1), "");
  assert_string_equal(text_ids(lines, 2), "1");
  json_decref(lines);
  /* An empty --text finds nothing. */
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --json --text ''", bin(), dir), 0);
  assert_string_equal(out, "{\"query\": 0, \"hits\": [], \"plan\": \"empty\"}\n");

  /* --filter narrows: 1 (year 2020) drops out. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db docs --json --text fox --filter "
                       "'{\"must\": [{\"key\": \"year\", \"range\": {\"gte\": 2022}}]}'",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "\"c\" 5");
  assert_string_equal(plan(lines, 0), "bm25-filtered");
  json_decref(lines);

  /* --weights: 6 has mustard in its title, 7 in its body; the heavier
   * field wins.  Weighing titles 0 puts 5 (fox thrice in its body) ahead
   * of "c" (fox in its title and twice in its body). */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db docs --json --text mustard --weights title=3", bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "6 7");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db docs --json --text mustard --weights title=1,body=3.5",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "7 6");
  json_decref(lines);
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text fox --weights title=0", bin(), dir),
      0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "5 \"c\"");
  json_decref(lines);

  /* --weights of the wrong shape, and a field the collection lacks. */
  static const char *const bad_weights[] = {
      "title",    "=2",          "title=",    "title=-1", "title=x",
      "title=1,", "title=1e999", "title=nan", "title= 1", "title=1,title=2"};
  for (size_t i = 0; i < sizeof(bad_weights) / sizeof(bad_weights[0]); i++) {
    assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --text fox --weights '%s'", bin(),
                         dir, bad_weights[i]),
                     2);
    assert_non_null(strstr(out, "--weights"));
    assert_null(strstr(out, "hits"));
  }
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --text fox --weights author=2", bin(), dir), 1);
  assert_non_null(strstr(out, "'author' is not a text field of 'docs'"));
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --vector 1,2 --weights title=2", bin(), dir), 2);

  /* Invalid UTF-8, inline or on a line: the engine's words, and the line. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db docs --json --text \"$(printf 'fox\\377')\"", bin(), dir),
                   1);
  assert_non_null(strstr(out, "query 0 (--text): the query text is not valid UTF-8"));
  write_text(qt, "fox\n\xc3\n");
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text-file %s", bin(), dir, qt), 1);
  assert_non_null(strstr(out, "query 1 (line 2 of "));
  assert_non_null(strstr(out, "the query text is not valid UTF-8"));
  /* A line over VS_QUERY_TEXT_MAX bytes is refused before any query runs. */
  f = fopen(qt, "wb");
  assert_non_null(f);
  fputs("fox\n", f);
  for (size_t i = 0; i <= VS_QUERY_TEXT_MAX; i++)
    fputc('a', f);
  fputs("\nfox\n", f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --json --text-file %s", bin(), dir, qt), 1);
  assert_non_null(strstr(out, "line 2: the query has 65537 bytes, the limit is 65536"));
  assert_null(strstr(out, "hits"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db docs --text-file %s/none.txt", bin(), dir, dir), 0);
  assert_non_null(strstr(out, "No such file"));

  /* A hybrid query on a text-only collection: the engine drops the
   * vector leg, says so in the note, and the text leg's order stays. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db docs --json --explain --text fox --vector 1,2", bin(), dir),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  assert_string_equal(text_ids(lines, 0), "\"c\" 5 1");
  assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "legs")), "text");
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(lines, 0), "note")),
                         "vector leg dropped: the collection is text-only"));
  assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "vector_plan")),
                      "none");
  assert_true(json_is_null(json_object_get(
      json_array_get(json_object_get(json_array_get(lines, 0), "hits"), 0), "vector_rank")));
  json_decref(lines);
  /* MMR needs stored vectors: the engine's words, status 1. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --text fox --vector 1,2 --mmr 0.5", bin(), dir),
      1);
  assert_non_null(strstr(out, "query 0 (--vector with --text): MMR needs vectors"));
  /* Fusion options on a text query alone fuse nothing. */
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --text fox --fusion rrf", bin(), dir),
                   2);
  assert_non_null(strstr(out, "--fusion is for hybrid search"));
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db docs --text fox --text-file %s", bin(), dir, qt), 2);
  assert_non_null(strstr(out, "not both"));
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --text fox --ef 16", bin(), dir), 2);
  assert_non_null(strstr(out, "--ef tunes vector search"));
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --text fox --rows 0:1", bin(), dir),
                   2);
  assert_int_equal(run(out, sizeof(out), "%s query %s/db docs --vector 1,2", bin(), dir), 1);
  assert_non_null(strstr(out, "collection 'docs' is text-only"));
  tu_rmdir(dir);
  free(dir);
}

/* ---- hybrid queries ----------------------------------------------------------- */

/* Query line q's hit ids in order, as text_ids() gives them but without
 * looking at the scores (an l2 search's ascend, MMR reorders). */
static const char *ids_of(const json_t *lines, size_t q) {
  static char buf[512];
  const json_t *hits = json_object_get(json_array_get(lines, q), "hits");

  buf[0] = '\0';
  for (size_t h = 0; h < json_array_size(hits); h++) {
    const json_t *id = json_object_get(json_array_get(hits, h), "id");
    size_t used = strlen(buf);

    if (json_is_integer(id))
      snprintf(buf + used, sizeof(buf) - used, "%s%lld", h ? " " : "",
               (long long)json_integer_value(id));
    else
      snprintf(buf + used, sizeof(buf) - used, "%s\"%s\"", h ? " " : "", json_string_value(id));
  }
  return buf;
}

static const char *line_str(const json_t *lines, size_t q, const char *key) {
  const char *v = json_string_value(json_object_get(json_array_get(lines, q), key));

  assert_non_null(v);
  return v;
}

/* A hit's rank in one leg (0 for JSON null, which must then go with a null
 * score) and its score there. */
static long leg_rank(const json_t *hit, const char *leg, double *score) {
  char rk[32], sk[32];
  const json_t *r, *s;

  snprintf(rk, sizeof(rk), "%s_rank", leg);
  snprintf(sk, sizeof(sk), "%s_score", leg);
  r = json_object_get(hit, rk);
  s = json_object_get(hit, sk);
  assert_non_null(r);
  assert_non_null(s);
  if (json_is_null(r)) {
    assert_true(json_is_null(s));
    return 0;
  }
  assert_true(json_is_integer(r) && json_integer_value(r) >= 1);
  assert_true(json_is_number(s));
  *score = json_number_value(s);
  return (long)json_integer_value(r);
}

/* Eight points in three "doc"s, each with a 4-d vector and a body text;
 * query vector (1,0,0,0) ranks them 1 2 3 4 5 6 "s7" 8, text "apple"
 * ranks "s7" 4 6 1 2 (the other three lack the word). */
static const char hybrid_points[] =
    "{\"id\": 1, \"vector\": [1, 0, 0, 0], \"payload\": {\"body\": \"red apple pie\", "
    "\"doc\": \"a\", \"year\": 2020}}\n"
    "{\"id\": 2, \"vector\": [0.95, 0.05, 0, 0], \"payload\": {\"body\": \"green apple tart\", "
    "\"doc\": \"a\", \"year\": 2021}}\n"
    "{\"id\": 3, \"vector\": [0.9, 0.1, 0, 0], \"payload\": {\"body\": \"plum crumble\", "
    "\"doc\": \"a\", \"year\": 2022}}\n"
    "{\"id\": 4, \"vector\": [0.6, 0.4, 0, 0], \"payload\": {\"body\": \"apple juice\", "
    "\"doc\": \"b\", \"year\": 2023}}\n"
    "{\"id\": 5, \"vector\": [0.5, 0.5, 0, 0], \"payload\": {\"body\": \"orange juice\", "
    "\"doc\": \"b\", \"year\": 2024}}\n"
    "{\"id\": 6, \"vector\": [0, 0.9, 0.1, 0], \"payload\": {\"body\": \"apple cider\", "
    "\"doc\": \"b\"}}\n"
    "{\"id\": \"s7\", \"vector\": [0, 0, 1, 0], \"payload\": {\"body\": \"apple apple apple\", "
    "\"doc\": \"c\"}}\n"
    "{\"id\": 8, \"vector\": [0, 0, 0, 1], \"payload\": {\"body\": \"banana bread\", "
    "\"doc\": \"c\"}}\n";

/* A fresh database dir/db holding collection h with hybrid_points. */
static void hybrid_setup(const char *dir) {
  static char out[65536];
  char p[4200];

  snprintf(p, sizeof(p), "%s/points.jsonl", dir);
  write_text(p, hybrid_points);
  assert_int_equal(run(out, sizeof(out),
                       "%s create %s/db h --dim 4 --index Flat --text-fields body", bin(), dir),
                   0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db h %s", bin(), dir, p), 0);
}

/* --explain under RRF: every hit's fused score is the RRF sum of its
 * ranks, worked out here by hand, and the scores never increase. */
static void test_query_hybrid_explain(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  json_t *lines, *hits;
  double prev = INFINITY;

  (void)state;
  hybrid_setup(dir);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --explain --vector 1,0,0,0 --text apple --k 8",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 1);
  assert_string_equal(line_str(lines, 0, "legs"), "vector+text");
  assert_string_equal(line_str(lines, 0, "note"), "");
  assert_string_equal(line_str(lines, 0, "vector_plan"), "index");
  assert_string_equal(line_str(lines, 0, "text_plan"), "bm25");
  assert_null(json_object_get(json_array_get(lines, 0), "plan"));
  /* 1 is first in the vector leg and fourth in the text leg; 3, 5 and 8
   * lack "apple" and come after every hit of both legs. */
  assert_string_equal(ids_of(lines, 0), "1 4 2 \"s7\" 6 3 5 8");
  hits = json_object_get(json_array_get(lines, 0), "hits");
  for (size_t h = 0; h < json_array_size(hits); h++) {
    const json_t *hit = json_array_get(hits, h);
    double score = json_number_value(json_object_get(hit, "score")), vs = 0, ts = 0, want;
    long vr = leg_rank(hit, "vector", &vs), tr = leg_rank(hit, "text", &ts);

    assert_true(vr > 0); /* all eight are in the vector leg */
    want = 1.0 / (60 + vr) + (tr ? 1.0 / (60 + tr) : 0);
    assert_true(fabs(score - want) < 1e-6);
    assert_true(score <= prev);
    prev = score;
    assert_true(tr == 0 || ts > 0);
    assert_true(vs >= 0); /* squared distances */
  }
  assert_int_equal(leg_rank(json_array_get(hits, 0), "text", &prev), 4);
  assert_true(json_is_null(json_object_get(json_array_get(hits, 7), "text_score")));
  json_decref(lines);

  /* --rrf-k and --leg-weights change the sums; one hit, checked by hand:
   * 2 / (10 + 1) + 0.5 / (10 + 4). */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 1 --rrf-k 10 "
                       "--leg-weights 2,0.5",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1");
  hits = json_object_get(json_array_get(lines, 0), "hits");
  assert_true(fabs(json_number_value(json_object_get(json_array_get(hits, 0), "score")) -
                   (2.0 / 11 + 0.5 / 14)) < 1e-6);
  /* Without --explain: legs and note, no plans, no ranks. */
  assert_string_equal(line_str(lines, 0, "legs"), "vector+text");
  assert_null(json_object_get(json_array_get(lines, 0), "vector_plan"));
  assert_null(strstr(out, "vector_rank"));
  json_decref(lines);

  /* The table shows the legs and each leg's rank and score, "-" when a
   * hit was not in that leg. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --explain --vector 1,0,0,0 --text apple --k 8", bin(),
                       dir),
                   0);
  assert_non_null(strstr(out, "query 0: 8 hits, legs vector+text (vector: plan index, 8 "
                              "candidates; text: plan bm25, 5 candidates)\n"));
  assert_non_null(strstr(out, "v.rank  v.score"));
  assert_non_null(strstr(out, "t.rank  t.score\n"));
  assert_non_null(strstr(out, "\n     8  8 "));
  assert_non_null(strstr(out, "  -  -\n"));
  tu_rmdir(dir);
  free(dir);
}

/* Weighted fusion, group-by and MMR. */
static void test_query_hybrid(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  json_t *lines, *hits;
  double prev = INFINITY;
  long last_group = 0;

  (void)state;
  hybrid_setup(dir);
  /* Weighted fusion: each leg min-max normalised to [0, 1], summed.  A
   * score is 2 at most; 8, the farthest vector without "apple", scores 0;
   * the text leg weighed 0 leaves the vector leg's order. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 8 --fusion "
                       "weighted",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_int_equal(hit_count(lines, 0), 8);
  assert_string_equal(ids_of(lines, 0), "4 1 \"s7\" 2 3 5 6 8");
  hits = json_object_get(json_array_get(lines, 0), "hits");
  for (size_t h = 0; h < 8; h++) {
    double s = json_number_value(json_object_get(json_array_get(hits, h), "score"));
    assert_true(s >= 0 && s <= 2 && s <= prev);
    prev = s;
  }
  assert_true(prev == 0.0);
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 3 --fusion "
                       "weighted --leg-weights 1,0",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 2 3");
  json_decref(lines);

  /* --group-by doc --group-size 2: at most 2 hits a group, k groups, the
   * groups in order (numbered 0, 1, ... by their best hit, their hits
   * together) and each group one doc.  The fused order is 1 4 2 "s7" 6 3
   * 5 8: a keeps 1 and 2, b keeps 4 and 6. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 2 --group-by doc "
                       "--group-size 2 --payload-fields doc",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 2 4 6");
  hits = json_object_get(json_array_get(lines, 0), "hits");
  for (size_t h = 0, in_group = 0; h < json_array_size(hits); h++) {
    const json_t *hit = json_array_get(hits, h);
    long g = (long)json_integer_value(json_object_get(hit, "group"));
    const char *doc = json_string_value(json_object_get(json_object_get(hit, "payload"), "doc"));

    assert_true(json_is_integer(json_object_get(hit, "group")));
    assert_true(g == last_group || g == last_group + 1);
    in_group = h && g == last_group ? in_group + 1 : 1;
    assert_true(in_group <= 2);
    assert_string_equal(doc, g == 0 ? "a" : "b");
    last_group = g;
  }
  assert_int_equal(last_group, 1);
  json_decref(lines);
  /* Group-by with a vector source alone: one leg, and "legs" says so. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --k 3 --group-by doc", bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 4 \"s7\"");
  assert_string_equal(line_str(lines, 0, "legs"), "vector");
  json_decref(lines);
  /* The table shows the group. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --vector 1,0,0,0 --text apple --k 2 --group-by doc", bin(),
                       dir),
                   0);
  assert_non_null(strstr(out, "score            group\n"));

  /* --mmr: the first pick is the nearest vector; a low lambda trades 2
   * and 3, near duplicates of 1, for far points, unless the pool of
   * candidates holds only them (then the less similar of the two first:
   * with lambda 0.2, -0.2 * 0.02 + 0.8 * 0.02 for 3 beats -0.2 * 0.005 +
   * 0.8 * 0.005 for 2, in squared distances). */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 3 --mmr 0.5",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_int_equal(hit_count(lines, 0), 3);
  assert_int_equal(hit_id(lines, 0, 0, NULL), 1);
  assert_string_equal(line_str(lines, 0, "legs"), "vector+text");
  json_decref(lines);
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db h --json --vector 1,0,0,0 --k 3 --mmr 0.2", bin(), dir),
      0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 \"s7\" 8");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --k 3 --mmr 0.2 "
                       "--mmr-candidates 3",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 3 2"); /* 3 is farther from 1 than 2 is */
  json_decref(lines);
  tu_rmdir(dir);
  free(dir);
}

/* --exclude and --payload-fields for every kind of query, the pairing of
 * vector and text sources, and bad values. */
static void test_query_hybrid_options(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char qv[4200], qt[4200], qt3[4200];
  json_t *lines;

  (void)state;
  hybrid_setup(dir);
  snprintf(qv, sizeof(qv), "%s/q.jsonl", dir);
  snprintf(qt, sizeof(qt), "%s/q.txt", dir);
  snprintf(qt3, sizeof(qt3), "%s/q3.txt", dir);
  write_text(qv, "[1, 0, 0, 0]\n[0, 0, 0, 1]\n");
  write_text(qt, "apple\nbanana\n");
  write_text(qt3, "apple\nbanana\njuice\n");

  /* --exclude: the same hits in the same order, less the excluded ids.
   * "1" in quotes is a string id, which no point has; s7 and "s7" are the
   * same string id. */
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db h --json --vector 1,0,0,0 --k 8", bin(), dir), 0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 2 3 4 5 6 \"s7\" 8");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --k 8 --exclude '1,\"s7\", 5'",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "2 3 4 6 8");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --k 8 --exclude '\"1\"'", bin(),
                       dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "1 2 3 4 5 6 \"s7\" 8");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out), "%s query %s/db h --json --text apple --k 8", bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "\"s7\" 4 6 1 2");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --text apple --k 8 --exclude s7,4", bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(text_ids(lines, 0), "6 1 2");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 8 --exclude 4,1",
                       bin(), dir),
                   0);
  lines = json_lines(out);
  assert_string_equal(ids_of(lines, 0), "2 \"s7\" 6 3 5 8");
  json_decref(lines);

  /* --payload-fields: only the fields named (a point lacking one has it
   * left out), --with-payload implied, for each kind of query. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --k 1 --payload-fields doc,nope",
                       bin(), dir),
                   0);
  assert_string_equal(out, "{\"query\": 0, \"hits\": [{\"id\": 1, \"score\": 0.0, \"payload\": "
                           "{\"doc\": \"a\"}}], \"plan\": \"index\"}\n");
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --text cider --payload-fields year,body", bin(),
                       dir),
                   0);
  assert_non_null(strstr(out, "\"payload\": {\"body\": \"apple cider\"}}"));
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 1,0,0,0 --text apple --k 1 "
                       "--payload-fields year",
                       bin(), dir),
                   0);
  assert_non_null(strstr(out, "\"payload\": {\"year\": 2020}}"));

  /* Pairing: row i with line i; a lone --text or --vector with every
   * query; files of different lengths are a usage error. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector-file %s --text-file %s --k 1", bin(), dir,
                       qv, qt),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 2);
  assert_string_equal(ids_of(lines, 0), "1");
  assert_string_equal(ids_of(lines, 1), "8"); /* (0,0,0,1) and "banana" */
  assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, 1), "query")), 1);
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector-file %s --text apple --k 1", bin(), dir,
                       qv),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 2);
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --json --vector 0,0,0,1 --text-file %s --k 1", bin(), dir,
                       qt3),
                   0);
  lines = json_lines(out);
  assert_int_equal(json_array_size(lines), 3);
  assert_string_equal(ids_of(lines, 1), "8");
  json_decref(lines);
  assert_int_equal(run(out, sizeof(out), "%s query %s/db h --vector-file %s --text-file %s", bin(),
                       dir, qv, qt3),
                   2);
  assert_non_null(strstr(out, "has 2 query vectors and "));
  assert_non_null(strstr(out, "has 3 query texts"));
  assert_null(strstr(out, "hits"));
  /* A failing hybrid query names its row and its line. */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --vector-file %s --text-file %s --weights nope=1", bin(),
                       dir, qv, qt),
                   1);
  assert_non_null(strstr(out, "query 0 (row 0 of "));
  assert_non_null(strstr(out, " with line 1 of "));
  assert_non_null(strstr(out, "'nope' is not a text field"));

  /* Bad values and combinations: usage errors, and nothing runs. */
  static const char *const bad[] = {
      "--text apple --fusion foo",
      "--text apple --mmr 2",
      "--text apple --mmr 0",
      "--text apple --mmr -0.5",
      "--text apple --candidates 0",
      "--text apple --candidates 10001",
      "--text apple --rrf-k 0",
      "--text apple --rrf-k x",
      "--text apple --fusion weighted --rrf-k 5",
      "--text apple --leg-weights 1",
      "--text apple --leg-weights 0,0",
      "--text apple --leg-weights -1,1",
      "--text apple --group-size 2",
      "--text apple --group-by doc --group-size 0",
      "--text apple --group-by ''",
      "--text apple --mmr-candidates 3",
      "--text apple --exact",
      "--exclude -1",
      "--exclude 1,,2",
      "--exclude '\"x'",
      "--exclude '\"\"'",
      "--exclude '\"x\"y'",
      "--exclude 9223372036854775808",
      "--payload-fields doc,",
      "--explain",
      "--candidates 50",
      "--fusion rrf",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = run(out, sizeof(out), "%s query %s/db h --vector 1,0,0,0 %s", bin(), dir, bad[i]);
    if (rc != 2 || strstr(out, "hits"))
      fail_msg("%s: status %d, %s", bad[i], rc, out);
  }
  assert_int_equal(run(out, sizeof(out), "%s query %s/db h --text apple --mmr 0.5", bin(), dir), 2);
  assert_non_null(strstr(out, "--mmr compares"));
  assert_int_equal(run(out, sizeof(out), "%s query %s/db h --text apple --explain", bin(), dir), 2);
  assert_non_null(strstr(out, "--explain is for hybrid search"));
  /* The largest integer id is an id (of no point here). */
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db h --vector 1,0,0,0 --exclude 9223372036854775807", bin(),
                       dir),
                   0);
  tu_rmdir(dir);
  free(dir);
}

static void test_query_errors(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];
  char qv[4200], q3[4200], qj[4200];
  float v[5 * 4] = {0};

  (void)state;
  snprintf(qv, sizeof(qv), "%s/q.fvecs", dir);
  snprintf(q3, sizeof(q3), "%s/q3.fvecs", dir);
  snprintf(qj, sizeof(qj), "%s/q.json", dir);
  for (size_t i = 0; i < 20; i++)
    v[i] = (float)i;
  write_vecs(qv, 5, 4, 4, v);
  write_vecs(q3, 2, 3, 4, v);
  assert_int_equal(run(out, sizeof(out), "%s create %s/db c --dim 4 --index Flat", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s import %s/db c %s", bin(), dir, qv), 0);

  /* The query file's dim against the collection's. */
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector-file %s", bin(), dir, q3),
                       0);
  assert_non_null(strstr(out, "has vectors of dim 3, collection 'c' has dim 4"));
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector 1,2,3", bin(), dir), 0);
  assert_non_null(strstr(out, "--vector has 3 components, collection 'c' has dim 4"));
  /* Unknown collection and database. */
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db nope --vector-file %s", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "no collection named 'nope'"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/nowhere c --vector-file %s", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "does not exist"));
  /* k out of range: vs_search's words. */
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --k 0", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "k must be at least 1"));
  assert_null(strstr(out, "\"hits\""));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --k 10001", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "the limit is 10000"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --k three", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "--k must be a whole number"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --ef -1", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "must not be negative"));
  /* Bad --rows. */
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --rows 5:2", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "--rows 5:2"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --rows 2", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "--rows must be A:B"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --rows 1:9", bin(), dir, qv), 0);
  assert_non_null(strstr(out, "the file has 5 rows"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector 1,2,3,4 --rows 0:1", bin(), dir), 0);
  assert_non_null(strstr(out, "--rows selects rows of --vector-file"));
  /* No source, two sources, a missing file, a bad inline vector. */
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --k 3", bin(), dir), 0);
  assert_non_null(strstr(out, "no queries"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector 1,2,3,4 --vector-file %s", bin(), dir, qv),
      0);
  assert_non_null(strstr(out, "not both"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s/none.fvecs", bin(), dir, dir), 0);
  assert_non_null(strstr(out, "No such file"));
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector 1,2,,4", bin(), dir), 0);
  assert_non_null(strstr(out, "--vector must be numbers"));
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector 1,2,nan,4", bin(), dir), 0);
  assert_non_null(strstr(out, "query 0 (--vector): query vector component 2 is NaN"));
  /* A text query on a collection without text fields finds nothing;
   * a hybrid one keeps the vector leg and says why the text leg went;
   * fusion options need two legs; unknown options are refused. */
  assert_int_equal(run(out, sizeof(out), "%s query %s/db c --json --text hello", bin(), dir), 0);
  assert_string_equal(out, "{\"query\": 0, \"hits\": [], \"plan\": \"empty\"}\n");
  assert_int_equal(run(out, sizeof(out),
                       "%s query %s/db c --json --text hello --vector 0,1,2,3 --k 1", bin(), dir),
                   0);
  assert_non_null(strstr(out, "\"hits\": [{\"id\": 0, "));
  assert_non_null(strstr(out, "\"legs\": \"vector\", \"note\": \"text leg dropped: the "
                              "collection has no text fields\"}\n"));
  assert_int_equal(
      run(out, sizeof(out), "%s query %s/db c --vector 1,2,3,4 --fusion rrf", bin(), dir), 2);
  assert_non_null(strstr(out, "--fusion is for hybrid search"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector 1,2,3,4 --frobnicate", bin(), dir), 0);
  assert_non_null(strstr(out, "unknown option --frobnicate"));
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector 1,2,3,4 --k", bin(), dir),
                       0);
  assert_non_null(strstr(out, "--k needs a value"));
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db", bin(), dir), 0);

  /* JSON lines: bad JSON and uneven rows name their line. */
  write_text(qj, "[1, 2, 3, 4]\n\n[1, 2,\n");
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector-file %s", bin(), dir, qj),
                       0);
  assert_non_null(strstr(out, "line 3: invalid JSON"));
  write_text(qj, "[1, 2, 3, 4]\n[1, 2, 3]\n");
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector-file %s", bin(), dir, qj),
                       0);
  assert_non_null(strstr(out, "line 2: vector has 3 components, the lines before have 4"));
  write_text(qj, "[1, 2, \"3\", 4]\n");
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector-file %s", bin(), dir, qj),
                       0);
  assert_non_null(strstr(out, "line 1: component 2 is not a number"));
  write_text(qj, "[1, 2, 3]\n");
  assert_int_not_equal(run(out, sizeof(out), "%s query %s/db c --vector-file %s", bin(), dir, qj),
                       0);
  assert_non_null(strstr(out, "has vectors of dim 3, collection 'c' has dim 4"));
  write_text(qj, "[1, 2, 3, 4]\n");
  assert_int_not_equal(
      run(out, sizeof(out), "%s query %s/db c --vector-file %s --rows 0:2", bin(), dir, qj), 0);
  assert_non_null(strstr(out, "rows 0:2 asked, the file has 1 rows"));

  /* build: unknown collection, bad options, a spec FAISS refuses. */
  assert_int_not_equal(run(out, sizeof(out), "%s build %s/db nope", bin(), dir), 0);
  assert_non_null(strstr(out, "no collection named 'nope'"));
  assert_int_not_equal(run(out, sizeof(out), "%s build %s/db c --threads -2", bin(), dir), 0);
  assert_non_null(strstr(out, "--threads"));
  assert_int_not_equal(run(out, sizeof(out), "%s build %s/db c --fast", bin(), dir), 0);
  assert_non_null(strstr(out, "unknown option --fast"));
  assert_int_not_equal(run(out, sizeof(out), "%s build %s/db c --index Bogus9", bin(), dir), 0);
  assert_int_equal(run(out, sizeof(out), "%s stats %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "index=Flat"));
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demo),           cmocka_unit_test(test_create_stats_drop),
      cmocka_unit_test(test_import_vectors), cmocka_unit_test(test_bench_ann),
      cmocka_unit_test(test_import_jsonl),   cmocka_unit_test(test_import_errors),
      cmocka_unit_test(test_query_build),    cmocka_unit_test(test_query_payload),
      cmocka_unit_test(test_query_text),     cmocka_unit_test(test_query_hybrid_explain),
      cmocka_unit_test(test_query_hybrid),   cmocka_unit_test(test_query_hybrid_options),
      cmocka_unit_test(test_query_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
