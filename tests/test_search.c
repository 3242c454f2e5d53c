/*
 * test_search.c: vector search through the public API.  The oracle is
 * always the exact scan (vs_search with exact = 1, itself checked against a
 * brute force computed here): Flat equals it, HNSW/IVF/PQ reach a recall
 * threshold on seeded data, deleted and replaced points never come back,
 * fresh points are visible at once, sealed segments and rebuilds persist
 * across reopen and SIGKILL, and every bad query gets its status.
 */
#include "tests/testutil.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "engine/vindex.h"

typedef tu_fixture fixture;

static int setup_with(void **state, unsigned seal) {
  *state = tu_fixture_open(VS_OPEN_NOSYNC, seal);
  return 0;
}

static int setup(void **state) {
  return setup_with(state, 0);
}

static int setup_small_seal(void **state) {
  return setup_with(state, 500);
}

static void reopen(fixture *f, unsigned seal) {
  vs_open_options o = {VS_OPEN_NOSYNC, 0, 0, seal};
  vs_error err = VS_ERROR_INIT;

  vs_db_close(f->db);
  TU_EXPECT(vs_db_open(f->dir, &o, &f->db, &err), VS_OK, &err);
}

/* Rows like real embeddings: a random linear image of 8 latent factors
 * plus a little noise (so the data has a low intrinsic dimension, as
 * learned embeddings do).  With `spread`, rows get norms from 0.2 to 2.2
 * (unnormalised, for MIPS).  The same `seed` gives the same space. */
static float *random_rows(size_t n, size_t dim, uint64_t seed, int spread) {
  enum { LATENT = 8 };
  float *x = malloc(n * dim * sizeof(float)), a[LATENT * 64];
  uint64_t space = 12345; /* one linear map for every call: queries match data */

  for (size_t j = 0; j < dim * LATENT && j < sizeof(a) / sizeof(a[0]); j++)
    a[j] = tu_randf(&space);
  for (size_t i = 0; i < n; i++) {
    float z[LATENT], scale = 1.0f, norm = 0;
    for (int l = 0; l < LATENT; l++)
      z[l] = tu_randf(&seed) + tu_randf(&seed) + tu_randf(&seed);
    for (size_t j = 0; j < dim; j++) {
      float s = 0.05f * tu_randf(&seed);
      for (int l = 0; l < LATENT; l++)
        s += a[(j * LATENT + (size_t)l) % (sizeof(a) / sizeof(a[0]))] * z[l];
      x[i * dim + j] = s;
      norm += s * s;
    }
    if (spread) /* a norm drawn from [0.2, 2.2] */
      scale = (0.2f + 2.0f * (float)(tu_rand(&seed) % 1000) / 1000.0f) / sqrtf(norm);
    for (size_t j = 0; j < dim && spread; j++)
      x[i * dim + j] *= scale;
  }
  return x;
}

static void upsert_rows(vs_db *db, const char *name, const float *x, size_t n, size_t dim,
                        uint64_t first_id) {
  vs_error err = VS_ERROR_INIT;
  vs_point *p = calloc(500, sizeof(*p));

  for (size_t base = 0; base < n; base += 500) {
    size_t m = n - base < 500 ? n - base : 500;
    for (size_t i = 0; i < m; i++)
      p[i] = (vs_point){vs_id_int(first_id + base + i), x + (base + i) * dim, dim, NULL, 0};
    TU_EXPECT(vs_upsert(db, name, p, m, &err), VS_OK, &err);
  }
  free(p);
}

static vs_hit *search(vs_db *db, const char *name, const float *q, size_t dim, size_t k, int ef,
                      int nprobe, int exact, size_t *n, vs_search_info *info) {
  vs_search_params p = {q, dim, k, ef, nprobe, exact, 0};
  vs_error err = VS_ERROR_INIT;
  vs_hit *hits = NULL;

  TU_EXPECT(vs_search(db, name, &p, &hits, n, info, &err), VS_OK, &err);
  return hits;
}

/* recall@k of `got` against `want` (by id). */
static double recall(const vs_hit *got, size_t ng, const vs_hit *want, size_t nw) {
  size_t hit = 0;

  for (size_t i = 0; i < nw; i++)
    for (size_t j = 0; j < ng; j++)
      if (got[j].id.num == want[i].id.num) {
        hit++;
        break;
      }
  return nw ? (double)hit / (double)nw : 1.0;
}

/* The exact scan agrees with a brute force computed here. */
static void test_exact_matches_brute_force(void **state) {
  fixture *f = *state;
  const size_t n = 300, dim = 8, k = 7;
  float *x = random_rows(n, dim, 1, 1), *q = random_rows(1, dim, 2, 0);
  vs_metric metrics[3] = {VS_METRIC_L2, VS_METRIC_IP, VS_METRIC_COSINE};
  const char *names[3] = {"l2", "ip", "cos"};

  for (int m = 0; m < 3; m++) {
    size_t nh;
    vs_hit *h;
    float best[300];
    double qn = 0;

    tu_create(f->db, names[m], (uint32_t)dim, metrics[m], "Flat");
    upsert_rows(f->db, names[m], x, n, dim, 0);
    h = search(f->db, names[m], q, dim, k, 0, 0, 1, &nh, NULL);
    assert_int_equal(nh, k);
    for (size_t j = 0; j < dim; j++)
      qn += (double)q[j] * q[j];
    for (size_t i = 0; i < n; i++) {
      double s = 0, xn = 0;
      for (size_t j = 0; j < dim; j++) {
        double d = (double)q[j] - x[i * dim + j];
        s += m == 0 ? d * d : (double)q[j] * x[i * dim + j];
        xn += (double)x[i * dim + j] * x[i * dim + j];
      }
      best[i] = (float)(m == 2 ? s / sqrt(qn * xn) : s);
    }
    for (size_t r = 0; r < k; r++) {
      /* h[r] has the r-th best score of the brute force */
      size_t better = 0;
      for (size_t i = 0; i < n; i++)
        if (m == 0 ? best[i] < best[h[r].id.num] : best[i] > best[h[r].id.num])
          better++;
      assert_int_equal(better, r);
      assert_float_equal(h[r].score, best[h[r].id.num], 1e-3 * (1 + fabsf(best[h[r].id.num])));
    }
    vs_free(h);
  }
  free(x);
  free(q);
}

/* Flat through the index equals the exact scan, before and after sealing,
 * under replacements and deletes. */
static void test_flat_equals_exact(void **state) {
  fixture *f = *state;
  const size_t n = 2000, dim = 16, k = 10;
  float *x = random_rows(n, dim, 3, 0), *qs = random_rows(20, dim, 4, 0);
  vs_error err = VS_ERROR_INIT;
  vs_search_info info;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "Flat");
  upsert_rows(f->db, "c", x, n, dim, 0);
  /* Replace 100 points with other vectors and delete 100 more. */
  upsert_rows(f->db, "c", x + 1000 * dim, 100, dim, 0);
  for (uint64_t id = 200; id < 300; id++) {
    vs_id del = vs_id_int(id);
    TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
  }
  for (int round = 0; round < 2; round++) {
    for (size_t qi = 0; qi < 20; qi++) {
      size_t na, ne;
      vs_hit *a = search(f->db, "c", qs + qi * dim, dim, k, 0, 0, 0, &na, &info);
      vs_hit *e = search(f->db, "c", qs + qi * dim, dim, k, 0, 0, 1, &ne, NULL);
      assert_int_equal(na, ne);
      for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id.num, e[i].id.num);
        assert_float_equal(a[i].score, e[i].score, 1e-5);
        assert_false(a[i].id.num >= 200 && a[i].id.num < 300);
      }
      vs_free(a);
      vs_free(e);
    }
    if (round == 0) {
      TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 1, &err), VS_OK, &err);
      vs_free(search(f->db, "c", qs, dim, k, 0, 0, 0, &(size_t){0}, &info));
      assert_int_equal(info.segments, 1);
      assert_int_equal(info.fresh, 0);
    }
  }
  free(x);
  free(qs);
}

static double mean_recall(vs_db *db, const char *name, const float *qs, size_t nq, size_t dim,
                          size_t k, int ef, int nprobe) {
  double total = 0;

  for (size_t qi = 0; qi < nq; qi++) {
    size_t na, ne;
    vs_hit *a = search(db, name, qs + qi * dim, dim, k, ef, nprobe, 0, &na, NULL);
    vs_hit *e = search(db, name, qs + qi * dim, dim, k, 0, 0, 1, &ne, NULL);
    total += recall(a, na, e, ne);
    vs_free(a);
    vs_free(e);
  }
  return total / (double)nq;
}

static void test_ann_recall(void **state) {
  static const struct {
    const char *spec;
    vs_metric metric;
    int spread, ef, nprobe;
    double min_recall;
  } cases[] = {
      {"HNSW32", VS_METRIC_L2, 0, 64, 0, 0.95},
      {"HNSW16,SQ8", VS_METRIC_L2, 0, 64, 0, 0.90},
      {"HNSW32", VS_METRIC_IP, 1, 64, 0, 0.95}, /* MIPS on unnormalised vectors */
      {"HNSW32", VS_METRIC_COSINE, 1, 64, 0, 0.95},
      {"IVF32,Flat", VS_METRIC_L2, 0, 0, 8, 0.90},
      {"IVF32,PQ8", VS_METRIC_L2, 0, 0, 8, 0.80},
      {"IVF32,PQ16x4fs", VS_METRIC_L2, 0, 0, 8, 0.80},
      /* fast-scan, re-ranked exactly */ {"IVF32,Flat", VS_METRIC_IP, 1, 0, 8, 0.90},
  };
  fixture *f = *state;
  const size_t n = 4000, dim = 32, nq = 30, k = 10;
  float *x = random_rows(n, dim, 5, 1), *qs = random_rows(nq, dim, 6, 0);
  vs_error err = VS_ERROR_INIT;

  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    char name[16];
    double r;

    snprintf(name, sizeof(name), "c%zu", c);
    tu_create(f->db, name, (uint32_t)dim, cases[c].metric, cases[c].spec);
    upsert_rows(f->db, name, x, n, dim, 0);
    TU_EXPECT(vs_collection_rebuild(f->db, name, NULL, 2, &err), VS_OK, &err);
    r = mean_recall(f->db, name, qs, nq, dim, k, cases[c].ef, cases[c].nprobe);
    print_message("%-12s %-6s recall@10 = %.3f\n", cases[c].spec, vs_metric_name(cases[c].metric),
                  r);
    if (r < cases[c].min_recall)
      fail_msg("%s (%s): recall %.3f < %.2f", cases[c].spec, vs_metric_name(cases[c].metric), r,
               cases[c].min_recall);
  }
  free(x);
  free(qs);
}

/* Points are searchable as soon as the upsert returns; sealing happens in
 * the background and changes no result; a reopen loads the segments. */
static void test_fresh_then_sealed(void **state) {
  fixture *f = *state;
  const size_t n = 3000, dim = 8;
  float *x = random_rows(n, dim, 7, 0);
  vs_search_info info;
  size_t nh;
  vs_hit *h;
  int waited = 0;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "HNSW16");
  for (size_t i = 0; i < n; i += 250) {
    upsert_rows(f->db, "c", x + i * dim, 250, dim, i);
    /* The point just written is its own nearest neighbour at once. */
    h = search(f->db, "c", x + (i + 249) * dim, dim, 1, 0, 0, 0, &nh, &info);
    assert_int_equal(nh, 1);
    assert_int_equal(h[0].id.num, i + 249);
    assert_float_equal(h[0].score, 0, 1e-6);
    vs_free(h);
  }
  /* The sealer (threshold 500) turns fresh points into segments. */
  do {
    struct timespec ts = {0, 20000000};
    vs_free(search(f->db, "c", x, dim, 5, 0, 0, 0, &nh, &info));
    if (info.fresh < 500)
      break;
    nanosleep(&ts, NULL);
  } while (++waited < 500);
  assert_true(info.segments >= 1);
  assert_true(info.fresh < 500);
  reopen(f, 500);
  h = search(f->db, "c", x + 1234 * dim, dim, 1, 0, 0, 0, &nh, &info);
  assert_int_equal(h[0].id.num, 1234);
  assert_true(info.segments >= 1);
  assert_true(info.fresh < 500); /* only the log past the manifest was replayed */
  vs_free(h);
  free(x);
}

/* Deleted and replaced points never come back, from any segment. */
static void test_deletes_never_return(void **state) {
  fixture *f = *state;
  const size_t n = 2000, dim = 8;
  float *x = random_rows(n, dim, 8, 0), moved[8];
  vs_error err = VS_ERROR_INIT;
  size_t nh;
  vs_hit *h;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "HNSW16");
  upsert_rows(f->db, "c", x, n, dim, 0);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 1, &err), VS_OK, &err);
  /* Delete every odd id, in the sealed segment, then add fresh ones and
   * delete some of those too. */
  for (uint64_t id = 1; id < n; id += 2) {
    vs_id del = vs_id_int(id);
    TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
  }
  upsert_rows(f->db, "c", x, 100, dim, 5000);
  for (uint64_t id = 5000; id < 5100; id += 2) {
    vs_id del = vs_id_int(id);
    TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
  }
  /* Replace id 10 with a far-away vector. */
  for (size_t j = 0; j < dim; j++)
    moved[j] = 100.0f;
  {
    vs_point p = {vs_id_int(10), moved, dim, NULL, 0};
    TU_EXPECT(vs_upsert(f->db, "c", &p, 1, &err), VS_OK, &err);
  }
  for (int exact = 0; exact < 2; exact++) {
    h = search(f->db, "c", x + 10 * dim, dim, 1100, 2000, 0, exact, &nh, NULL);
    /* 1000 even ids (10 moved) and 50 odd fresh ones are live: all come
     * back, through the index too (falling back to a scan when the graph
     * walk, cut short by tombstones, finds fewer than k). */
    assert_int_equal(nh, 1050);
    for (size_t i = 0; i < nh; i++) {
      uint64_t id = h[i].id.num;
      assert_true(id < 5000 ? id % 2 == 0 : id % 2 == 1);
      if (id == 10)
        assert_true(h[i].score > 1000.0f); /* the new vector's distance */
    }
    vs_free(h);
  }
  free(x);
}

/* Hits built from the ids the index keeps (engine/vindex.c, "external
 * ids") equal those built from the point records: integer and string ids,
 * in sealed segments (sealed in the background, rebuilt, reloaded after a
 * reopen) and fresh rows, after deletes and replacements, with and
 * without payloads and vectors.  Flat segments make the index path and
 * the exact scan (which reads the records) return the same points. */
static void test_hit_ids_from_index(void **state) {
  fixture *f = *state;
  const size_t n = 1600, dim = 8;
  float *x = random_rows(n, dim, 21, 0);
  static const uint8_t payload[] = {0x81, 0xa1, 'a', 0x07}; /* {"a": 7} */
  vs_error err = VS_ERROR_INIT;
  char sid[32];

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "Flat");
  /* Even rows get integer ids, odd rows string ids "s<i>"; every fifth a
   * payload. */
  for (size_t i = 0; i < n; i++) {
    vs_point p = {vs_id_int(i), x + i * dim, dim, NULL, 0};
    if (i % 2) {
      snprintf(sid, sizeof(sid), "s%zu", i);
      p.id = vs_id_str(sid);
    }
    if (i % 5 == 0)
      p.payload = payload, p.payload_len = sizeof(payload);
    TU_EXPECT(vs_upsert(f->db, "c", &p, 1, &err), VS_OK, &err);
    if (i == 700)
      TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 1, &err), VS_OK, &err);
  }
  for (int waited = 0; waited < 500; waited++) { /* until the sealer has run */
    struct timespec ts = {0, 20000000};
    vs_search_info info;
    size_t nh;
    vs_free(search(f->db, "c", x, dim, 1, 0, 0, 0, &nh, &info));
    if (info.segments >= 2)
      break;
    nanosleep(&ts, NULL);
  }
  for (int round = 0; round < 3; round++) {
    if (round == 1) { /* deletes in a segment and among fresh rows; a replacement */
      for (uint64_t id = 0; id < n; id += 6) {
        vs_id del = vs_id_int(id);
        TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
      }
      vs_point p = {vs_id_int(4), x + 900 * dim, dim, NULL, 0};
      TU_EXPECT(vs_upsert(f->db, "c", &p, 1, &err), VS_OK, &err);
    }
    if (round == 2)
      reopen(f, 500); /* segment ids are read back from the records */
    for (unsigned with = 0; with <= (VS_GET_VECTOR | VS_GET_PAYLOAD); with++) {
      /* Every 97th row, and the first rows of the rebuilt and the sealed
       * segment. */
      for (size_t qn = 0; qn < n / 97 + 16; qn++) {
        size_t qi = qn < n / 97 ? qn * 97 : qn < n / 97 + 8 ? qn - n / 97 : 701 + qn - n / 97 - 8;
        vs_search_params p = {x + qi * dim, dim, 40, 0, 0, 0, with};
        vs_search_params e = p;
        vs_search_info info;
        vs_hit *a = NULL, *b = NULL;
        size_t na, nb;

        e.exact = 1;
        TU_EXPECT(vs_search(f->db, "c", &p, &a, &na, &info, &err), VS_OK, &err);
        assert_string_equal(info.plan, "index");
        TU_EXPECT(vs_search(f->db, "c", &e, &b, &nb, NULL, &err), VS_OK, &err);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
          assert_int_equal(a[i].id.kind, b[i].id.kind);
          if (a[i].id.kind == VS_ID_INT) {
            assert_int_equal(a[i].id.num, b[i].id.num);
            assert_true(a[i].id.num % 6 != 0 || round == 0 || a[i].id.num == 4);
          } else {
            assert_int_equal(a[i].id.len, b[i].id.len);
            assert_memory_equal(a[i].id.str, b[i].id.str, b[i].id.len);
          }
          assert_float_equal(a[i].score, b[i].score, 1e-4);
          assert_int_equal(a[i].payload_len, b[i].payload_len);
          if (b[i].payload_len)
            assert_memory_equal(a[i].payload, b[i].payload, b[i].payload_len);
          assert_int_equal(a[i].dim, b[i].dim);
          if (b[i].dim)
            assert_memory_equal(a[i].vector, b[i].vector, dim * sizeof(float));
        }
        vs_free(a);
        vs_free(b);
      }
    }
  }
  {
    /* Replaced id 4 now sits where row 900 is: both come back. */
    vs_search_params p = {x + 900 * dim, dim, 2, 0, 0, 0, 0};
    vs_hit *h = NULL;
    size_t nh;
    TU_EXPECT(vs_search(f->db, "c", &p, &h, &nh, NULL, &err), VS_OK, &err);
    assert_int_equal(nh, 2);
    assert_true((h[0].id.kind == VS_ID_INT && h[0].id.num == 4) ||
                (h[1].id.kind == VS_ID_INT && h[1].id.num == 4));
    vs_free(h);
  }
  free(x);
}

/* vs_search_batch of plain queries shares one snapshot and one FAISS call
 * per segment (engine/search.c, "batches"): it returns what each query
 * returns alone, id for id and score for score, on every kind of segment
 * (Flat answers a batch with a matrix product, HNSW on ip with the MIPS
 * lift, IVF-PQ re-scored), with fresh rows and deletes; a bad query in the
 * batch is named. */
static void test_batch_equals_singles(void **state) {
  fixture *f = *state;
  static const struct {
    const char *spec;
    vs_metric metric;
  } kinds[] = {{"Flat", VS_METRIC_L2},   {"Flat", VS_METRIC_IP},       {"HNSW16", VS_METRIC_L2},
               {"HNSW16", VS_METRIC_IP}, {"HNSW16", VS_METRIC_COSINE}, {"IVF16,PQ4", VS_METRIC_L2}};
  enum { N = 3000, DIM = 16, NQ = 40 };
  float *x = random_rows(N, DIM, 31, 1), bad[DIM];
  vs_error err = VS_ERROR_INIT;

  for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
    char name[16];
    vs_search_params p[NQ];
    vs_hit *all = NULL;
    size_t off[NQ + 1];

    snprintf(name, sizeof(name), "c%zu", ki);
    tu_create(f->db, name, DIM, kinds[ki].metric, kinds[ki].spec);
    upsert_rows(f->db, name, x, N - 200, DIM, 0);
    TU_EXPECT(vs_collection_rebuild(f->db, name, NULL, 1, &err), VS_OK, &err);
    upsert_rows(f->db, name, x + (N - 200) * DIM, 200, DIM, N - 200); /* fresh rows */
    for (uint64_t id = 0; id < N; id += 7) {
      vs_id del = vs_id_int(id);
      TU_EXPECT(vs_delete(f->db, name, &del, 1, NULL, &err), VS_OK, &err);
    }
    for (int i = 0; i < NQ; i++)
      p[i] = (vs_search_params){x + (size_t)(i * 73 % N) * DIM, DIM, 10, 32, 4, 0, VS_GET_VECTOR};
    TU_EXPECT(vs_search_batch(f->db, name, p, NQ, &all, off, &err), VS_OK, &err);
    for (int i = 0; i < NQ; i++) {
      vs_hit *one;
      size_t n;
      TU_EXPECT(vs_search(f->db, name, &p[i], &one, &n, NULL, &err), VS_OK, &err);
      assert_int_equal(off[i + 1] - off[i], n);
      for (size_t j = 0; j < n; j++) {
        const vs_hit *b = &all[off[i] + j];
        assert_int_equal(b->id.num, one[j].id.num);
        assert_true(b->id.num % 7 != 0);
        assert_true(b->score == one[j].score);
        assert_memory_equal(b->vector, one[j].vector, DIM * sizeof(float));
      }
      vs_free(one);
    }
    vs_free(all);
    /* A query of the wrong dimension, or with a NaN, is named. */
    p[5].dim = DIM - 1;
    TU_EXPECT(vs_search_batch(f->db, name, p, NQ, &all, off, &err), VS_EDIM, &err);
    assert_non_null(strstr(err.message, "query 5"));
    vs_error_clear(&err);
    p[5].dim = DIM;
    p[0].dim = DIM + 1; /* query 0's message, once */
    TU_EXPECT(vs_search_batch(f->db, name, p, NQ, &all, off, &err), VS_EDIM, &err);
    assert_string_equal(err.message,
                        "query 0: query vector has 17 components, the collection has dim 16");
    vs_error_clear(&err);
    p[0].dim = DIM;
    memcpy(bad, p[9].vector, sizeof(bad));
    bad[3] = NAN;
    p[9].vector = bad;
    TU_EXPECT(vs_search_batch(f->db, name, p, NQ, &all, off, &err), VS_EINVAL, &err);
    assert_string_equal(err.message, "query 9: query vector component 3 is NaN");
    vs_error_clear(&err);
  }
  free(x);
}

static void test_rebuild_changes_spec(void **state) {
  fixture *f = *state;
  const size_t n = 1000, dim = 16;
  float *x = random_rows(n, dim, 9, 0);
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *info;
  vs_search_info si;
  size_t nh;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "Flat");
  upsert_rows(f->db, "c", x, n, dim, 0);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", "HNSW16", 1, &err), VS_OK, &err);
  TU_EXPECT(vs_collection_describe(f->db, "c", &info, &err), VS_OK, &err);
  assert_string_equal(info->index, "HNSW16");
  vs_free(info);
  vs_error_clear(&err);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", "IVF8,PQ5", 1, &err), VS_EINVAL, &err);
  assert_int_equal(vs_collection_rebuild(f->db, "nope", NULL, 1, NULL), VS_ENOTFOUND);
  reopen(f, 0);
  vs_free(search(f->db, "c", x, dim, 3, 0, 0, 0, &nh, &si));
  assert_int_equal(si.segments, 1);
  assert_int_equal(nh, 3);
  /* Only the live segment's file is left. */
  {
    char cmd[4200], out[64] = "";
    FILE *p;
    snprintf(cmd, sizeof(cmd), "ls %s/segments | grep -c seg", f->dir);
    p = popen(cmd, "r");
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    assert_int_equal(atoi(out), 1);
  }
  free(x);
}

static void test_bad_queries(void **state) {
  fixture *f = *state;
  float q[4] = {1, 2, 3, 4}, zero[4] = {0, 0, 0, 0};
  vs_search_params p = {q, 4, 10, 0, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  const char *fields[] = {"t"};
  vs_collection_config text = {"t", 0, VS_METRIC_L2, NULL, fields, 1, NULL, 0, 0};
  vs_hit *h;
  size_t n;

  tu_create(f->db, "c", 4, VS_METRIC_COSINE, "Flat");
  TU_EXPECT(vs_collection_create(f->db, &text, &err), VS_OK, &err);
  p.k = 0;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_EINVAL);
  p.k = VS_K_MAX + 1;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_ETOOLARGE);
  p.k = 10;
  p.dim = 3;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, &err), VS_EDIM);
  assert_non_null(strstr(err.message, "3 components"));
  p.dim = 4;
  q[1] = NAN;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_EINVAL);
  q[1] = INFINITY;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_EINVAL);
  q[1] = 2;
  p.ef = -1;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_EINVAL);
  p.ef = VS_EF_MAX + 1;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_ETOOLARGE);
  p.ef = 0;
  assert_int_equal(vs_search(f->db, "nope", &p, &h, &n, NULL, NULL), VS_ENOTFOUND);
  assert_int_equal(vs_search(f->db, "t", &p, &h, &n, NULL, NULL), VS_EINVAL);
  p.vector = zero;
  assert_int_equal(vs_search(f->db, "c", &p, &h, &n, NULL, NULL), VS_EINVAL);
  {
    vs_point pt = {vs_id_int(1), zero, 4, NULL, 0};
    assert_int_equal(vs_upsert(f->db, "c", &pt, 1, NULL), VS_EINVAL); /* cosine: zero */
  }
  p.vector = q;
  /* An empty collection answers with no hits. */
  TU_EXPECT(vs_search(f->db, "c", &p, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 0);
  assert_null(h);
}

/* SIGKILL while writing and sealing: after reopening, the index (segments
 * from the manifest, plus the replayed log) answers exactly as the stored
 * vectors do. */
static void test_sigkill_index_agrees(void **state) {
  fixture *f = *state;
  const size_t dim = 8;
  uint64_t seed = 99;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "Flat");
  vs_db_close(f->db);
  f->db = NULL;
  for (int round = 0; round < 6; round++) {
    pid_t pid = fork();
    char r[16];
    assert_true(pid >= 0);
    if (pid == 0) {
      /* A fresh process image: OpenMP's thread pool does not survive fork. */
      snprintf(r, sizeof(r), "%d", round);
      execl("/proc/self/exe", "test_search", "--writer", f->dir, r, (char *)NULL);
      _exit(2);
    }
    {
      struct timespec ts = {0, 30000000 + (long)(tu_rand(&seed) % 100000000)};
      int status;
      nanosleep(&ts, NULL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      assert_true(WIFSIGNALED(status));
    }
    reopen(f, 300);
    {
      float *qs = random_rows(10, dim, (uint64_t)round + 77, 0);
      for (size_t qi = 0; qi < 10; qi++) {
        size_t na, ne;
        vs_hit *a = search(f->db, "c", qs + qi * dim, dim, 20, 0, 0, 0, &na, NULL);
        vs_hit *e = search(f->db, "c", qs + qi * dim, dim, 20, 0, 0, 1, &ne, NULL);
        /* The writer stores the same 100 vectors under many ids, so equal
         * distances abound and which of the tied ids a segment returns is
         * FAISS's choice: compare the distances, rank by rank. */
        assert_int_equal(na, ne);
        for (size_t i = 0; i < na; i++)
          assert_float_equal(a[i].score, e[i].score, 1e-4 * (1 + e[i].score));
        vs_free(a);
        vs_free(e);
      }
      free(qs);
    }
    vs_db_close(f->db);
    f->db = NULL;
  }
  reopen(f, 300);
}

/* The writer process of test_sigkill_index_agrees: upserts (half new
 * points, half replacements) and searches (which drives the sealer) until
 * it is killed. */
static int writer_main(const char *dir, int round) {
  const size_t dim = 8;
  vs_open_options o = {0, 0, 0, 300};
  float *x = random_rows(100, dim, (uint64_t)round * 1000 + 1, 0);
  vs_point p[100];
  vs_db *db;

  if (vs_db_open(dir, &o, &db, NULL))
    return 2;
  for (uint64_t b = 0;; b++) {
    vs_search_params sp = {x, dim, 3, 0, 0, 0, 0};
    size_t nh;
    vs_hit *h;

    for (size_t i = 0; i < 100; i++)
      p[i] =
          (vs_point){vs_id_int((uint64_t)round * 100000 + b * 50 + i), x + i * dim, dim, NULL, 0};
    if (vs_upsert(db, "c", p, 100, NULL))
      return 3;
    if (vs_search(db, "c", &sp, &h, &nh, NULL, NULL))
      return 4;
    vs_free(h);
  }
}

/* ---- filtered search against a brute-force oracle ----------------------------------- */

typedef struct fpoint {
  int label, bucket;
  double price;
  int tag; /* tags = ["t<tag>", "all"] */
} fpoint;

static void fpayload(msgpack_sbuffer *sb, const fpoint *p) {
  msgpack_packer pk;
  char tag[16];
  int n = snprintf(tag, sizeof(tag), "t%d", p->tag);

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 4);
  msgpack_pack_str_with_body(&pk, "label", 5);
  msgpack_pack_int(&pk, p->label);
  msgpack_pack_str_with_body(&pk, "bucket", 6);
  msgpack_pack_int(&pk, p->bucket);
  msgpack_pack_str_with_body(&pk, "price", 5);
  msgpack_pack_double(&pk, p->price);
  msgpack_pack_str_with_body(&pk, "tags", 4);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str_with_body(&pk, tag, (size_t)n);
  msgpack_pack_str_with_body(&pk, "all", 3);
}

/* The filters, as JSON and as the oracle's predicate. */
static int oracle(int which, uint64_t id, const fpoint *p) {
  switch (which) {
  case 0:
    return 1; /* {} */
  case 1:
    return p->label == 3; /* 10% */
  case 2:
    return p->bucket == 7; /* 0.1% */
  case 3:
    return p->bucket < 25; /* 2.5% */
  case 4:
    return p->label == 1 || p->label == 2 || p->label == 5; /* 30% */
  case 5:
    return p->label != 0; /* 90% */
  case 6:
    return id % 97 == 0 && id < 2000; /* has_id: ~21 ids */
  case 7:
    return p->tag == 4 && p->price >= 50.0; /* nested, ~5% */
  case 8:
    return p->price > 10.0 && p->price <= 12.5; /* ~2.5% */
  default:
    return 0;
  }
}

static const char *filter_json(int which, char *buf, size_t cap) {
  size_t n;

  switch (which) {
  case 0:
    return "{}";
  case 1:
    return "{\"must\": [{\"key\": \"label\", \"match\": {\"value\": 3}}]}";
  case 2:
    return "{\"must\": [{\"key\": \"bucket\", \"match\": {\"value\": 7}}]}";
  case 3:
    return "{\"must\": [{\"key\": \"bucket\", \"range\": {\"lt\": 25}}]}";
  case 4:
    return "{\"must\": [{\"key\": \"label\", \"match\": {\"any\": [1, 2, 5]}}]}";
  case 5:
    return "{\"must_not\": [{\"key\": \"label\", \"match\": {\"value\": 0}}]}";
  case 6:
    n = (size_t)snprintf(buf, cap, "{\"must\": [{\"has_id\": [0");
    for (int id = 97; id < 2000; id += 97)
      n += (size_t)snprintf(buf + n, cap - n, ", %d", id);
    snprintf(buf + n, cap - n, "]}]}");
    return buf;
  case 7:
    return "{\"must\": [{\"should\": [{\"key\": \"tags\", \"match\": {\"value\": \"t4\"}}]}, "
           "{\"key\": \"price\", \"range\": {\"gte\": 50}}]}";
  case 8:
    return "{\"must\": [{\"key\": \"price\", \"range\": {\"gt\": 10, \"lte\": 12.5}}]}";
  default:
    return NULL;
  }
}

static void test_filtered_search(void **state) {
  enum { N = 6000, DIM = 16, NQ = 10, K = 10, NFILTERS = 9 };
  fixture *f = *state;
  float *x = random_rows(N, DIM, 11, 0), *qs = random_rows(NQ, DIM, 12, 0);
  fpoint *pts = calloc(N, sizeof(*pts));
  vs_point *p = calloc(N, sizeof(*p));
  msgpack_sbuffer *sb = calloc(N, sizeof(*sb));
  vs_error err = VS_ERROR_INIT;
  uint64_t seed = 5;
  char buf[4096];

  tu_create(f->db, "c", DIM, VS_METRIC_L2, "HNSW32");
  for (size_t i = 0; i < N; i++) {
    pts[i] = (fpoint){(int)(i % 10), (int)(i % 1000), (double)(tu_rand(&seed) % 10000) / 100.0,
                      (int)(tu_rand(&seed) % 10)};
    fpayload(&sb[i], &pts[i]);
    p[i] = (vs_point){vs_id_int(i), x + i * DIM, DIM, sb[i].data, sb[i].size};
  }
  /* Most points sealed in one segment, the last 1000 fresh, some deleted. */
  TU_EXPECT(vs_upsert(f->db, "c", p, N - 1000, &err), VS_OK, &err);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 2, &err), VS_OK, &err);
  TU_EXPECT(vs_upsert(f->db, "c", p + N - 1000, 1000, &err), VS_OK, &err);
  for (uint64_t id = 0; id < N; id += 13) {
    vs_id del = vs_id_int(id);
    TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
  }
  for (int which = 0; which < NFILTERS; which++) {
    const char *json = filter_json(which, buf, sizeof(buf));
    vs_filter *flt;
    uint64_t want_count = 0, got_count;
    double rsum = 0;
    vs_search_info info;

    TU_EXPECT(vs_filter_parse_json(json, strlen(json), &flt, &err), VS_OK, &err);
    for (uint64_t i = 0; i < N; i++)
      want_count += i % 13 != 0 && oracle(which, i, &pts[i]);
    TU_EXPECT(vs_count_where(f->db, "c", flt, &got_count, &err), VS_OK, &err);
    assert_int_equal(got_count, want_count);
    for (int qi = 0; qi < NQ; qi++) {
      vs_search_params sp = {qs + qi * DIM, DIM, K, 0, 0, 0, 0, flt};
      float best[K];
      uint64_t bestid[K];
      size_t nb = 0, nh, hit = 0;
      vs_hit *h;

      /* brute force: the K nearest passing points */
      for (uint64_t i = 0; i < N; i++) {
        float d = 0;
        if (i % 13 == 0 || !oracle(which, i, &pts[i]))
          continue;
        for (int j = 0; j < DIM; j++)
          d += (qs[qi * DIM + j] - x[i * DIM + j]) * (qs[qi * DIM + j] - x[i * DIM + j]);
        if (nb < K || d < best[nb - 1]) {
          size_t at = nb < K ? nb++ : K - 1;
          while (at > 0 && best[at - 1] > d) {
            best[at] = best[at - 1];
            bestid[at] = bestid[at - 1];
            at--;
          }
          best[at] = d;
          bestid[at] = i;
        }
      }
      TU_EXPECT(vs_search(f->db, "c", &sp, &h, &nh, &info, &err), VS_OK, &err);
      assert_int_equal(nh, nb); /* k hits whenever k points pass */
      for (size_t i = 0; i < nh; i++) {
        assert_true(oracle(which, h[i].id.num, &pts[h[i].id.num]));
        assert_true(h[i].id.num % 13 != 0);
        for (size_t j = 0; j < nb; j++)
          hit += h[i].id.num == bestid[j];
      }
      rsum += nb ? (double)hit / (double)nb : 1.0;
      vs_free(h);
    }
    print_message("filter %d: %llu pass (%.2f%%), plan %s, recall@10 %.3f\n", which,
                  (unsigned long long)want_count, 100.0 * (double)want_count / N, info.plan,
                  rsum / NQ);
    if (rsum / NQ < 0.95)
      fail_msg("filter %d: recall %.3f", which, rsum / NQ);
    vs_filter_free(flt);
  }
  for (size_t i = 0; i < N; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  free(sb);
  free(p);
  free(pts);
  free(x);
  free(qs);
}

static void test_bad_filters(void **state) {
  fixture *f = *state;
  vs_error err = VS_ERROR_INIT;
  vs_filter *flt = (vs_filter *)1;
  uint64_t n;
  const char *bad = "{\"must\": [{\"key\": \"a\", \"range\": {}}]}";

  TU_EXPECT(vs_filter_parse_json(bad, strlen(bad), &flt, &err), VS_EINVAL, &err);
  assert_null(flt);
  assert_non_null(strstr(err.message, "range"));
  assert_int_equal(vs_filter_parse_json("{nope", 5, &flt, NULL), VS_EINVAL);
  assert_int_equal(vs_filter_parse_json(NULL, 3, &flt, NULL), VS_EINVAL);
  assert_int_equal(vs_filter_parse_msgpack("\xdd\xff\x00\x00\x00", 5, &flt, NULL), VS_EINVAL);
  TU_EXPECT(vs_filter_parse_json("{}", 2, &flt, &err), VS_OK, &err);
  assert_int_equal(vs_count_where(f->db, "nope", flt, &n, NULL), VS_ENOTFOUND);
  vs_filter_free(flt);
  vs_filter_free(NULL);
}

/* Filters see every write made after the payload index was built: new
 * points, replaced payloads and deletes, through count, search and the
 * exact plan, checked against a brute force over what is live. */
static void test_filtered_after_writes(void **state) {
  enum { N = 4000, DIM = 8, K = 10, NQ = 5 };
  static const int filters[] = {1, 2, 3, 4, 5, 7, 8};
  fixture *f = *state;
  float *x = random_rows(N, DIM, 31, 0), *qs = random_rows(NQ, DIM, 32, 0);
  fpoint *pts = calloc(N, sizeof(*pts));
  char *live = calloc(N, 1);
  vs_error err = VS_ERROR_INIT;
  uint64_t seed = 17;
  size_t loaded = 0;
  char buf[4096];

  tu_create(f->db, "c", DIM, VS_METRIC_L2, "HNSW32");
  for (int round = 0; round < 4; round++) {
    /* This round's writes: 1000 new points, then (after the first round)
     * 200 replacements with a new payload and 150 deletes. */
    for (size_t i = loaded; i < loaded + 1000; i++) {
      msgpack_sbuffer sb;
      vs_point p;

      pts[i] = (fpoint){(int)(tu_rand(&seed) % 10), (int)(tu_rand(&seed) % 1000),
                        (double)(tu_rand(&seed) % 10000) / 100.0, (int)(tu_rand(&seed) % 10)};
      fpayload(&sb, &pts[i]);
      p = (vs_point){vs_id_int(i), x + i * DIM, DIM, sb.data, sb.size};
      TU_EXPECT(vs_upsert(f->db, "c", &p, 1, &err), VS_OK, &err);
      live[i] = 1;
      msgpack_sbuffer_destroy(&sb);
    }
    loaded += 1000;
    for (int j = 0; round > 0 && j < 350; j++) {
      size_t i = (size_t)(tu_rand(&seed) % loaded);
      vs_id id = vs_id_int(i);

      if (j < 200) {
        msgpack_sbuffer sb;
        vs_point p;

        pts[i].label = (int)(tu_rand(&seed) % 10);
        pts[i].bucket = (int)(tu_rand(&seed) % 1000);
        fpayload(&sb, &pts[i]);
        p = (vs_point){id, x + i * DIM, DIM, sb.data, sb.size};
        TU_EXPECT(vs_upsert(f->db, "c", &p, 1, &err), VS_OK, &err);
        live[i] = 1;
        msgpack_sbuffer_destroy(&sb);
      } else {
        TU_EXPECT(vs_delete(f->db, "c", &id, 1, NULL, &err), VS_OK, &err);
        live[i] = 0;
      }
    }
    if (round == 1)
      TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 2, &err), VS_OK, &err);

    for (size_t fi = 0; fi < sizeof(filters) / sizeof(filters[0]); fi++) {
      const char *json = filter_json(filters[fi], buf, sizeof(buf));
      uint64_t want = 0, got;
      vs_filter *flt;

      TU_EXPECT(vs_filter_parse_json(json, strlen(json), &flt, &err), VS_OK, &err);
      for (size_t i = 0; i < loaded; i++)
        want += live[i] && oracle(filters[fi], i, &pts[i]);
      TU_EXPECT(vs_count_where(f->db, "c", flt, &got, &err), VS_OK, &err);
      if (got != want)
        fail_msg("round %d, filter %d: count %llu, want %llu", round, filters[fi],
                 (unsigned long long)got, (unsigned long long)want);
      for (int qi = 0; qi < NQ; qi++)
        for (int exact = 0; exact < 2; exact++) {
          vs_search_params sp = {qs + qi * DIM, DIM, K, 0, 0, exact, 0, flt};
          float kth = INFINITY;
          size_t nb = 0, nh;
          vs_hit *h;

          /* brute force: how many pass, and the K-th best distance */
          {
            float best[K];

            for (size_t i = 0; i < loaded; i++) {
              float d = 0;

              if (!live[i] || !oracle(filters[fi], i, &pts[i]))
                continue;
              for (int j = 0; j < DIM; j++)
                d += (qs[qi * DIM + j] - x[i * DIM + j]) * (qs[qi * DIM + j] - x[i * DIM + j]);
              if (nb < K || d < best[nb - 1]) {
                size_t at = nb < K ? nb++ : K - 1;

                while (at > 0 && best[at - 1] > d) {
                  best[at] = best[at - 1];
                  at--;
                }
                best[at] = d;
              }
            }
            if (nb)
              kth = best[nb - 1];
          }
          TU_EXPECT(vs_search(f->db, "c", &sp, &h, &nh, NULL, &err), VS_OK, &err);
          assert_int_equal(nh, nb); /* k hits whenever k points pass */
          for (size_t i = 0; i < nh; i++) {
            uint64_t id = h[i].id.num;

            assert_true(id < loaded && live[id] && oracle(filters[fi], id, &pts[id]));
            if (exact) /* the exact plan returns exactly the best */
              assert_true(h[i].score <= kth * (1 + 1e-5f) + 1e-6f);
          }
          vs_free(h);
        }
      vs_filter_free(flt);
    }
  }
  free(live);
  free(pts);
  free(x);
  free(qs);
}

/* ---- concurrent writers, rebuilds and searchers on one handle ------------------------ */

typedef struct racer {
  vs_db *db;
  const float *x;
  int stop;
  long searches, bad;
  char why[400];
} racer;

static void *upsert_loop(void *arg) {
  racer *r = arg;

  for (int i = 0; i < 3000 && !r->stop; i++) {
    vs_point p = {vs_id_int(7), r->x + 7 * 8, 8, NULL, 0};
    if (vs_upsert(r->db, "c", &p, 1, NULL))
      r->bad++;
  }
  return NULL;
}

static void *rebuild_loop(void *arg) {
  racer *r = arg;

  for (int i = 0; i < 15 && !r->stop; i++) {
    vs_error err = VS_ERROR_INIT;
    int rc = vs_collection_rebuild(r->db, "c", i % 2 ? "HNSW16" : "Flat", 1, &err);
    if (rc && rc != VS_EBUSY) {
      r->bad++;
      snprintf(r->why, sizeof(r->why), "rebuild: %s", err.message);
    }
  }
  return NULL;
}

/* Point 7 is replaced over and over with the same vector while other
 * threads search for it: every search finds exactly it, and 101 points are
 * always live, so a k = 5 search always has 5 hits. */
static void *search_loop(void *arg) {
  racer *r = arg;

  while (!r->stop) {
    vs_search_params sp = {r->x + 7 * 8, 8, 5, 0, 0, 0, 0, NULL};
    vs_error err = VS_ERROR_INIT;
    vs_hit *h;
    size_t n;
    int rc = vs_search(r->db, "c", &sp, &h, &n, NULL, &err);

    r->searches++;
    if (rc || n != 5 || h[0].id.num != 7 || h[0].score != 0) {
      r->bad++;
      snprintf(r->why, sizeof(r->why), "rc %d (%s), %zu hits, first %llu", rc, err.message, n,
               n ? (unsigned long long)h[0].id.num : 0ull);
    }
    vs_free(h);
  }
  return NULL;
}

static void test_concurrent_writes_and_rebuilds(void **state) {
  fixture *f = *state;
  float *x = random_rows(101, 8, 31, 0);
  pthread_t w, rb, s[3];
  racer r = {f->db, x, 0, 0, 0, ""}, rr = r, rs[3];

  tu_create(f->db, "c", 8, VS_METRIC_L2, "Flat");
  upsert_rows(f->db, "c", x, 101, 8, 0);
  for (int i = 0; i < 3; i++) {
    rs[i] = r;
    pthread_create(&s[i], NULL, search_loop, &rs[i]);
  }
  pthread_create(&w, NULL, upsert_loop, &r);
  pthread_create(&rb, NULL, rebuild_loop, &rr);
  pthread_join(w, NULL);
  pthread_join(rb, NULL);
  for (int i = 0; i < 3; i++) {
    rs[i].stop = 1;
    pthread_join(s[i], NULL);
    if (rs[i].bad)
      fail_msg("%ld of %ld searches went wrong, e.g. %s", rs[i].bad, rs[i].searches, rs[i].why);
    assert_true(rs[i].searches > 0);
  }
  assert_int_equal(r.bad, 0);
  if (rr.bad)
    fail_msg("%s", rr.why);
  free(x);
}

/* Indexes whose distances are not the metric (PCA, LSH, codes) are
 * re-scored: every score equals the exact one. */
static void test_transformed_index_scores(void **state) {
  fixture *f = *state;
  const size_t n = 1000, dim = 8;
  float *x = random_rows(n, dim, 41, 0);
  vs_error err = VS_ERROR_INIT;
  const char *specs[] = {"PCA4,Flat", "LSH", "IVF8,PQ4"};

  for (size_t si = 0; si < 3; si++) {
    char name[8];
    snprintf(name, sizeof(name), "t%zu", si);
    tu_create(f->db, name, dim, VS_METRIC_L2, specs[si]);
    upsert_rows(f->db, name, x, n, dim, 0);
    TU_EXPECT(vs_collection_rebuild(f->db, name, NULL, 1, &err), VS_OK, &err);
    for (size_t qi = 0; qi < 5; qi++) {
      size_t nh;
      vs_hit *h = search(f->db, name, x + qi * 100 * dim, dim, 5, 0, 0, 0, &nh, NULL);
      for (size_t i = 0; i < nh; i++) {
        float d = 0;
        for (size_t j = 0; j < dim; j++) {
          float t = x[qi * 100 * dim + j] - x[h[i].id.num * dim + j];
          d += t * t;
        }
        assert_float_equal(h[i].score, d, 1e-4 * (1 + d));
      }
      vs_free(h);
    }
  }
  free(x);
}

/* A filter correlated with the vectors (one far cluster) makes the HNSW
 * walk miss; after a few misses it gets a sub-index, whose answers equal
 * the exact filtered search, including points added and deleted since it
 * was built.  The queries that trigger it exclude 2,500 passing points:
 * the sub-index must still cover them (exclusions are per query). */
static void test_filter_sub_index(void **state) {
  enum { N = 12000, DIM = 8, K = 10 };
  fixture *f = *state;
  float *x = random_rows(N + 200, DIM, 61, 0);
  msgpack_sbuffer *sb = calloc(N + 200, sizeof(*sb));
  vs_point *p = calloc(N + 200, sizeof(*p));
  const char *json = "{\"must\": [{\"key\": \"side\", \"match\": {\"value\": 1}}]}";
  vs_error err = VS_ERROR_INIT;
  vs_search_info info;
  vs_filter *flt;
  int waited = 0;
  vs_id *seen = calloc(2500, sizeof(*seen));

  for (size_t i = 0; i < 2500; i++)
    seen[i] = vs_id_int(2 * i + 1); /* passing points */
  for (size_t i = 0; i < N + 200; i++) {
    msgpack_packer pk;
    int side = i % 2;
    for (int j = 0; j < DIM; j++) /* two clusters far apart */
      x[i * DIM + j] = x[i * DIM + j] * 0.1f + (side ? -20.0f : 20.0f);
    msgpack_sbuffer_init(&sb[i]);
    msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "side", 4);
    msgpack_pack_int(&pk, side);
    p[i] = (vs_point){vs_id_int(i), x + i * DIM, DIM, sb[i].data, sb[i].size};
  }
  tu_create(f->db, "c", DIM, VS_METRIC_L2, "HNSW16");
  TU_EXPECT(vs_upsert(f->db, "c", p, N, &err), VS_OK, &err);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 1, &err), VS_OK, &err);
  TU_EXPECT(vs_filter_parse_json(json, strlen(json), &flt, &err), VS_OK, &err);
  /* Queries from cluster 0, filter to cluster 1, until the sub-index is in. */
  do {
    vs_search_params sp = {
        x + (size_t)(waited % 50) * 2 * DIM, DIM, K, 0, 0, 0, 0, flt, seen, 2500};
    struct timespec ts = {0, 20000000};
    vs_hit *h;
    size_t n;
    TU_EXPECT(vs_search(f->db, "c", &sp, &h, &n, &info, &err), VS_OK, &err);
    assert_int_equal(n, K);
    for (size_t i = 0; i < n; i++)
      assert_true(h[i].id.num >= 5000); /* none of the excluded */
    vs_free(h);
    if (strcmp(info.plan, "filter-index") == 0)
      break;
    nanosleep(&ts, NULL);
  } while (++waited < 500);
  assert_string_equal(info.plan, "filter-index");
  {
    /* Without exclusions: the sub-index covers every passing point, so
     * the walk alone answers (no points scored one by one). */
    vs_search_params sp = {x, DIM, K, 0, 0, 0, 0, flt};
    vs_hit *h;
    size_t n;
    TU_EXPECT(vs_search(f->db, "c", &sp, &h, &n, &info, &err), VS_OK, &err);
    assert_string_equal(info.plan, "filter-index");
    assert_true(info.candidates < 500);
    vs_free(h);
  }
  free(seen);
  /* Changes after the build: 200 new points (100 pass), and some deletes. */
  TU_EXPECT(vs_upsert(f->db, "c", p + N, 200, &err), VS_OK, &err);
  for (uint64_t id = 1; id < N; id += 6) {
    vs_id del = vs_id_int(id);
    TU_EXPECT(vs_delete(f->db, "c", &del, 1, NULL, &err), VS_OK, &err);
  }
  for (size_t qi = 0; qi < 20; qi++) {
    vs_search_params sp = {x + qi * 2 * DIM, DIM, K, 0, 0, 0, 0, flt}, ex = sp;
    vs_hit *a, *e;
    size_t na, ne, hit = 0;

    ex.exact = 1;
    TU_EXPECT(vs_search(f->db, "c", &sp, &a, &na, &info, &err), VS_OK, &err);
    TU_EXPECT(vs_search(f->db, "c", &ex, &e, &ne, NULL, &err), VS_OK, &err);
    assert_string_equal(info.plan, "filter-index");
    assert_int_equal(na, K);
    for (size_t i = 0; i < na; i++) {
      assert_true(a[i].id.num % 2 == 1 && a[i].id.num % 6 != 1); /* passes, not deleted */
      for (size_t j = 0; j < ne; j++)
        hit += a[i].id.num == e[j].id.num;
    }
    assert_true(hit >= K - 1); /* recall@10 >= 0.9 per query */
    vs_free(a);
    vs_free(e);
  }
  vs_filter_free(flt);
  for (size_t i = 0; i < N + 200; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  free(sb);
  free(p);
  free(x);
}

/* Orphan segment files (a seal or rebuild killed before its manifest
 * committed) are deleted at open once old; live and young files stay. */
static void test_orphan_sweep(void **state) {
  fixture *f = *state;
  float *x = random_rows(100, 8, 51, 0);
  vs_error err = VS_ERROR_INIT;
  char path[4400], live[4400] = "";
  struct utimbuf old = {time(NULL) - 2 * VS__SWEEP_AGE, time(NULL) - 2 * VS__SWEEP_AGE};
  const char *orphans[] = {"c1-g7-00000000deadbeef.seg", "c1-g8-00000000deadbeef.seg.tmp",
                           "c1-g9-00000000000young.seg", "notes.txt"};
  FILE *fp;
  DIR *d;
  struct dirent *e;

  tu_create(f->db, "c", 8, VS_METRIC_L2, "Flat");
  upsert_rows(f->db, "c", x, 100, 8, 0);
  TU_EXPECT(vs_collection_rebuild(f->db, "c", NULL, 1, &err), VS_OK, &err);
  snprintf(path, sizeof(path), "%s/segments", f->dir);
  d = opendir(path);
  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".seg"))
      snprintf(live, sizeof(live), "%s/segments/%s", f->dir, e->d_name);
  closedir(d);
  assert_true(live[0]);
  assert_int_equal(utime(live, &old), 0);
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/segments/%s", f->dir, orphans[i]);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    if (i != 2)
      assert_int_equal(utime(path, &old), 0);
  }
  reopen(f, 0);
  assert_int_equal(access(live, F_OK), 0);
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/segments/%s", f->dir, orphans[i]);
    assert_int_equal(access(path, F_OK) == 0, i >= 2); /* young and foreign files stay */
  }
  {
    size_t nh;
    vs_hit *h = search(f->db, "c", x + 8 * 5, 8, 1, 0, 0, 0, &nh, NULL);
    assert_int_equal(h[0].id.num, 5);
    vs_free(h);
  }
  free(x);
}

/* The rebuilding process of test_rebuild_by_another_process. */
static int rebuild_main(const char *dir) {
  vs_open_options o = {0, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;
  int rc;

  if (vs_db_open(dir, &o, &db, &err))
    return 2;
  rc = vs_collection_rebuild(db, "c", "HNSW16", 1, &err);
  if (rc)
    fprintf(stderr, "rebuild: %s\n", err.message);
  vs_db_close(db);
  return rc ? 3 : 0;
}

/* `vsearch build` from another process while this one has the database
 * open, has searched it, and keeps writing: this process switches to the
 * new segment at its next search, and misses no write. */
static void test_rebuild_by_another_process(void **state) {
  fixture *f = *state;
  const size_t n = 3000, dim = 8;
  float *x = random_rows(n, dim, 21, 0);
  vs_search_info info;
  size_t nh;
  pid_t pid;
  int status;
  vs_hit *h;

  tu_create(f->db, "c", (uint32_t)dim, VS_METRIC_L2, "Flat");
  upsert_rows(f->db, "c", x, 2000, dim, 0);
  vs_free(search(f->db, "c", x, dim, 5, 0, 0, 0, &nh, &info));
  assert_int_equal(info.segments, 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl("/proc/self/exe", "test_search", "--rebuild", f->dir, (char *)NULL);
    _exit(2);
  }
  /* Writes and searches go on meanwhile. */
  upsert_rows(f->db, "c", x + 2000 * dim, 1000, dim, 2000);
  vs_free(search(f->db, "c", x, dim, 5, 0, 0, 0, &nh, &info));
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (size_t i = 0; i < n; i += 111) {
    h = search(f->db, "c", x + i * dim, dim, 1, 0, 0, 0, &nh, &info);
    assert_int_equal(nh, 1);
    assert_int_equal(h[0].id.num, i);
    assert_int_equal(info.segments, 1); /* the other process's segment */
    vs_free(h);
  }
  free(x);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--writer") == 0)
    return writer_main(argv[2], atoi(argv[3]));
  if (argc == 3 && strcmp(argv[1], "--rebuild") == 0)
    return rebuild_main(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exact_matches_brute_force, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_flat_equals_exact, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_ann_recall, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_fresh_then_sealed, setup_small_seal, tu_teardown),
      cmocka_unit_test_setup_teardown(test_deletes_never_return, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_hit_ids_from_index, setup_small_seal, tu_teardown),
      cmocka_unit_test_setup_teardown(test_batch_equals_singles, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_rebuild_changes_spec, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_bad_queries, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_index_agrees, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_filtered_search, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_bad_filters, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_filtered_after_writes, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_rebuild_by_another_process, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_writes_and_rebuilds, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_transformed_index_scores, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_orphan_sweep, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_filter_sub_index, setup, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
