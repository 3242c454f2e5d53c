/*
 * bench_index.c: what a restart and an ingest cost, on Fashion-MNIST.
 *
 * Restart (issue target: reopening costs under a tenth of building):
 *   build  = vs_collection_rebuild() of an HNSW32 collection of the 60,000
 *            train images (upsert beforehand, not timed);
 *   reopen = vs_db_close(), then vs_db_open() and the first search, which
 *            loads the segment file and replays the (empty) log tail.
 * Ingest (issue target: at least 0.7x FAISS's own add rate for HNSW32):
 *   vsearch = durable vs_upsert() of all rows in batches of 1000 into a
 *            collection whose index exists, until the background sealer has
 *            put them all into HNSW32 segments (points are searchable from
 *            the moment each upsert returns; this measures when they are
 *            indexed);
 *   faiss  = IndexHNSWFlat(784, 32), efConstruction 200 as vsearch uses, one
 *            add() of the same rows, in the same run.
 * Both sides use every core (OpenMP).  Usage:
 *   build/bench_index [--n N] [--dir TMPDIR]
 */
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "index/faiss_shim.h"
#include "tools/benchutil.h"
#include "tools/datasets.h"

#define TRAIN "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define DIM 784

static void die(const char *what, const vs_error *err) {
  bu_die(0, "bench_index", what, err ? err->message : "failed");
}

static vs_db *open_db(const char *dir, unsigned seal) {
  vs_open_options o = {VS_OPEN_CREATE, 0, 0, seal};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;

  if (vs_db_open(dir, &o, &db, &err))
    die(dir, &err);
  return db;
}

static void upsert_all(vs_db *db, const float *x, size_t n) {
  vs_point *p = calloc(1000, sizeof(*p));
  vs_error err = VS_ERROR_INIT;

  for (size_t base = 0; base < n; base += 1000) {
    size_t m = n - base < 1000 ? n - base : 1000;
    for (size_t i = 0; i < m; i++)
      p[i] = (vs_point){vs_id_int(base + i), x + (base + i) * DIM, DIM, NULL, 0};
    if (vs_upsert(db, "f", p, m, &err))
      die("upsert", &err);
  }
  free(p);
}

static vs_search_info probe(vs_db *db, const float *q) {
  vs_search_params sp = {q, DIM, 10, 0, 0, 0, 0, NULL};
  vs_error err = VS_ERROR_INIT;
  vs_search_info info;
  vs_hit *h;
  size_t n;

  if (vs_search(db, "f", &sp, &h, &n, &info, &err))
    die("search", &err);
  vs_free(h);
  return info;
}

int main(int argc, char **argv) {
  const char *parent = "/tmp";
  char dir[4096], dir2[4200], msg[256];
  size_t n = 60000, rows, dim;
  vs_collection_config cfg = {"f", DIM, VS_METRIC_L2, "HNSW32", NULL, 0, NULL, 0, 0};
  vs_error err = VS_ERROR_INIT;
  double t0, build, reopen, ingest, faiss_add;
  vs_search_info info;
  float *x;
  vs_db *db;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--n") == 0)
      n = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--dir") == 0)
      parent = argv[i + 1];
  }
  if (ds_read_vectors(TRAIN, "idx", 0, n, &x, &rows, &dim, msg, sizeof(msg))) {
    fprintf(stderr, "bench_index: %s (apt-get install dataset-fashion-mnist)\n", msg);
    return 1;
  }
  n = rows;
  snprintf(dir, sizeof(dir), "%s/vsearch-bench-index-XXXXXX", parent);
  if (mkdtemp(dir) == NULL)
    die("mkdtemp", NULL);
  snprintf(dir2, sizeof(dir2), "%s/ingest", dir);

  /* Restart. */
  db = open_db(dir, 1u << 30);
  if (vs_collection_create(db, &cfg, &err))
    die("create", &err);
  upsert_all(db, x, n);
  t0 = bu_now();
  if (vs_collection_rebuild(db, "f", NULL, 0, &err))
    die("rebuild", &err);
  build = bu_now() - t0;
  probe(db, x);
  vs_db_close(db);
  t0 = bu_now();
  db = open_db(dir, 1u << 30);
  info = probe(db, x);
  reopen = bu_now() - t0;
  vs_db_close(db);
  if (info.segments != 1 || info.fresh != 0)
    fprintf(stderr, "bench_index: unexpected state after reopen\n");

  /* Ingest through upsert with the background sealer (threshold 20000). */
  db = open_db(dir2, 0);
  if (vs_collection_create(db, &cfg, &err))
    die("create", &err);
  probe(db, x); /* makes the index exist, as a server's first query would */
  t0 = bu_now();
  upsert_all(db, x, n);
  do {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    info = probe(db, x);
  } while (info.fresh >= 20000);
  ingest = bu_now() - t0;
  vs_db_close(db);

  /* FAISS's own add rate for the same index. */
  {
    FaissIndex *idx;
    char m[256];
    if (faiss_index_factory(&idx, DIM, "HNSW32", METRIC_L2))
      die("faiss", NULL);
    vs__faiss_tune(idx, 200, 64, 0);
    t0 = bu_now();
    if (vs__faiss_build(idx, (int64_t)n, x, 0, NULL, 0, m, sizeof(m)))
      die(m, NULL);
    faiss_add = bu_now() - t0;
    faiss_Index_free(idx);
  }

  printf("Fashion-MNIST train, %zu x %zu, HNSW32 (efConstruction 200), all cores\n", n, dim);
  printf("restart: build %.2f s, reopen + first search %.3f s, ratio %.4f (target < 0.1)\n", build,
         reopen, reopen / build);
  printf("ingest:  vsearch upsert+seal %.2f s (%.0f points/s); FAISS add %.2f s (%.0f points/s); "
         "ratio %.2f (target >= 0.7); %u segments, %llu fresh at the end\n",
         ingest, (double)n / ingest, faiss_add, (double)n / faiss_add, faiss_add / ingest,
         info.segments, (unsigned long long)info.fresh);
  if (bu_rmtree(dir) != 0)
    fprintf(stderr, "bench_index: could not remove %s\n", dir);
  free(x);
  return 0;
}
