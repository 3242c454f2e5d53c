/*
 * bench_upsert.c: durable upsert throughput of vsearch against raw LMDB.
 *
 * vsearch keeps its points in LMDB, so the cost of vs_upsert() above the
 * storage engine is the question: id lookup, pid and change-log bookkeeping,
 * four DBIs per point, validation.  This benchmark writes N points (a
 * float32 vector and a small msgpack payload each) in batches of B through
 * vs_upsert() into a fresh, durable database (fsync at every commit), and
 * writes the same bytes into a fresh raw LMDB environment with the same
 * settings: one mdb_put per point (key: the 8-byte id, big-endian; value:
 * vector bytes then payload bytes), one committed write transaction per
 * batch.  The target is vsearch/raw >= 0.5 in points per second.
 *
 * Vectors and payloads are generated beforehand from a fixed seed; only the
 * write loops are timed (CLOCK_MONOTONIC), not opening, creating or closing.
 * Each side runs R times, in alternating order, each time into a new
 * directory under one mkdtemp scratch directory that is removed at the end;
 * the medians are reported, with MB/s (10^6 bytes) of vector and payload
 * bytes.  A missed target still exits 0: it is a measurement.  Any error
 * exits 1 (2 for a bad command line).
 */
#include <errno.h>
#include <lmdb.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/vsearch.h"
#include "tools/benchutil.h"

#define COLL "bench"

typedef struct bench {
  size_t n, batch, dim, repeat;
  const char *parent, *json;
  FILE *jsonf; /* opened before measuring, so a bad path fails early */
  char scratch[4096];
  size_t map_size;  /* the same initial map size for both sides */
  float *vectors;   /* n * dim */
  vs_point *points; /* n, pointing into vectors and payloads */
  msgpack_sbuffer payloads;
  size_t *offsets;  /* n + 1 offsets into payloads */
  uint8_t *value;   /* one raw LMDB value: vector + payload */
  double *rates[2]; /* points/s of each run: [0] vsearch, [1] raw */
} bench;

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static int pack_str(msgpack_packer *pk, const char *s) {
  size_t len = strlen(s);
  return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len);
}

/* Generate every vector and payload, outside any timing. */
static int generate(bench *b) {
  msgpack_packer pk;
  uint64_t seed = 42;
  size_t maxp = 0;
  char s[32];

  b->vectors = malloc(b->n * b->dim * sizeof(float));
  b->points = calloc(b->n, sizeof(vs_point));
  b->offsets = malloc((b->n + 1) * sizeof(size_t));
  if (!b->vectors || !b->points || !b->offsets)
    return -1;
  for (size_t i = 0; i < b->n * b->dim; i++) /* uniform in [-1, 1) */
    b->vectors[i] = (float)((double)(rng_next(&seed) >> 40) / (double)(1u << 23) - 1.0);
  msgpack_packer_init(&pk, &b->payloads, msgpack_sbuffer_write);
  for (size_t i = 0; i < b->n; i++) {
    b->offsets[i] = b->payloads.size;
    if (msgpack_pack_map(&pk, 3) || pack_str(&pk, "category"))
      return -1;
    snprintf(s, sizeof(s), "c%zu", i % 10);
    if (pack_str(&pk, s) || pack_str(&pk, "price") ||
        msgpack_pack_int64(&pk, (int64_t)(rng_next(&seed) % 10000)) || pack_str(&pk, "title"))
      return -1;
    snprintf(s, sizeof(s), "item %zu", i);
    if (pack_str(&pk, s))
      return -1;
  }
  b->offsets[b->n] = b->payloads.size;
  for (size_t i = 0; i < b->n; i++) { /* the buffer has stopped moving */
    if (b->offsets[i + 1] - b->offsets[i] > maxp)
      maxp = b->offsets[i + 1] - b->offsets[i];
    b->points[i].id = vs_id_int(i);
    b->points[i].vector = b->vectors + i * b->dim;
    b->points[i].dim = b->dim;
    b->points[i].payload = b->payloads.data + b->offsets[i];
    b->points[i].payload_len = b->offsets[i + 1] - b->offsets[i];
  }
  b->value = malloc(b->dim * sizeof(float) + maxp);
  return b->value ? 0 : -1;
}

static int rm_tree(const char *dir) {
  if (bu_rmtree(dir) == 0)
    return 0;
  fprintf(stderr, "bench_upsert: remove %s: %s\n", dir, strerror(errno));
  return -1;
}

static int run_vsearch(bench *b, const char *dir, double *secs) {
  vs_open_options o = {VS_OPEN_CREATE, b->map_size, 0, 0};
  vs_collection_config cfg = {.name = COLL, .dim = (uint32_t)b->dim, .index = "Flat"};
  vs_error err = VS_ERROR_INIT;
  vs_db *db = NULL;
  uint64_t count = 0;
  double t0;
  int rc;

  cfg.metric = VS_METRIC_L2;
  rc = vs_db_open(dir, &o, &db, &err);
  if (rc)
    goto fail;
  rc = vs_collection_create(db, &cfg, &err);
  if (rc)
    goto fail_db;
  t0 = bu_now();
  for (size_t i = 0; i < b->n && rc == VS_OK; i += b->batch)
    rc = vs_upsert(db, COLL, b->points + i, b->n - i < b->batch ? b->n - i : b->batch, &err);
  *secs = bu_now() - t0;
  /* Untimed sanity check: every point landed. */
  if (rc == VS_OK && (rc = vs_count(db, COLL, &count, &err)) == VS_OK && count != b->n) {
    fprintf(stderr, "bench_upsert: vsearch holds %llu points, not %zu\n", (unsigned long long)count,
            b->n);
    rc = VS_EINTERNAL;
  }
fail_db:
  vs_db_close(db);
fail:
  if (rc)
    fprintf(stderr, "bench_upsert: vsearch: %s\n", err.code ? err.message : vs_strerror(rc));
  return rc;
}

static int run_raw(bench *b, const char *dir, double *secs) {
  size_t vbytes = b->dim * sizeof(float);
  const char *what = "mdb_env_create";
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_stat st;
  double t0;
  int mrc;

  if (mkdir(dir, 0755)) {
    fprintf(stderr, "bench_upsert: mkdir %s: %s\n", dir, strerror(errno));
    return -1;
  }
  if ((mrc = mdb_env_create(&env)))
    goto fail;
  /* vsearch's settings: MDB_NOTLS, 256 readers, mode 0644, default sync. */
  what = "configure the environment";
  if ((mrc = mdb_env_set_maxreaders(env, 256)) || (mrc = mdb_env_set_mapsize(env, b->map_size)))
    goto fail_env;
  what = dir;
  if ((mrc = mdb_env_open(env, dir, MDB_NOTLS, 0644)))
    goto fail_env;
  /* Open the main DBI once, untimed, as vsearch opens its DBIs at create. */
  what = "open the main DBI";
  if ((mrc = mdb_txn_begin(env, NULL, 0, &txn)))
    goto fail_env;
  if ((mrc = mdb_dbi_open(txn, NULL, 0, &dbi)))
    goto fail_txn;
  if ((mrc = mdb_txn_commit(txn))) /* frees txn even when it fails */
    goto fail_env;
  t0 = bu_now();
  for (size_t i = 0; i < b->n; i += b->batch) {
    size_t end = b->n - i < b->batch ? b->n : i + b->batch;
    what = "mdb_txn_begin";
    if ((mrc = mdb_txn_begin(env, NULL, 0, &txn)))
      goto fail_env;
    what = "mdb_put";
    for (size_t j = i; j < end; j++) {
      uint8_t key[8];
      size_t plen = b->offsets[j + 1] - b->offsets[j];
      MDB_val k = {sizeof(key), key}, v = {vbytes + plen, b->value};
      for (int s = 0; s < 8; s++)
        key[s] = (uint8_t)((uint64_t)j >> (56 - 8 * s));
      memcpy(b->value, b->vectors + j * b->dim, vbytes);
      memcpy(b->value + vbytes, b->payloads.data + b->offsets[j], plen);
      if ((mrc = mdb_put(txn, dbi, &k, &v, 0)))
        goto fail_txn;
    }
    what = "mdb_txn_commit";
    if ((mrc = mdb_txn_commit(txn)))
      goto fail_env;
  }
  *secs = bu_now() - t0;
  what = "mdb_env_stat";
  if ((mrc = mdb_env_stat(env, &st)))
    goto fail_env;
  mdb_env_close(env);
  if (st.ms_entries != b->n) {
    fprintf(stderr, "bench_upsert: raw LMDB holds %zu entries, not %zu\n", st.ms_entries, b->n);
    return -1;
  }
  return 0;

fail_txn:
  mdb_txn_abort(txn);
fail_env:
  mdb_env_close(env);
fail:
  fprintf(stderr, "bench_upsert: raw LMDB: %s: %s\n", what, mdb_strerror(mrc));
  return -1;
}

static double median(double *v, size_t n) {
  bu_sort(v, n);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Run both sides R times, alternating which goes first. */
static int measure(bench *b) {
  char dir[4096 + 32];
  for (size_t r = 0; r < b->repeat; r++) {
    for (int k = 0; k < 2; k++) {
      int side = (int)((r + (size_t)k) % 2);
      double secs = 0;
      int rc;
      snprintf(dir, sizeof(dir), "%s/%s-%zu", b->scratch, side ? "raw" : "vs", r);
      rc = side ? run_raw(b, dir, &secs) : run_vsearch(b, dir, &secs);
      if (rc || rm_tree(dir))
        return -1;
      b->rates[side][r] = (double)b->n / secs;
    }
  }
  return 0;
}

static int report(bench *b) {
  static const char *names[2] = {"vsearch", "raw_lmdb"};
  double bytes = (double)(b->n * b->dim * sizeof(float) + b->payloads.size), med[2];
  double per_point = bytes / (double)b->n / 1e6; /* MB per point */
  FILE *f = b->jsonf;

  printf("upsert n=%zu batch=%zu dim=%zu repeat=%zu payload=%.1f B/point (durable, fsync)\n", b->n,
         b->batch, b->dim, b->repeat, (double)b->payloads.size / (double)b->n);
  printf("%-10s %14s %10s\n", "side", "points/s", "MB/s");
  for (int s = 0; s < 2; s++) {
    med[s] = median(b->rates[s], b->repeat);
    printf("%-10s %14.0f %10.1f\n", names[s], med[s], med[s] * per_point);
  }
  printf("ratio vsearch/raw_lmdb = %.2f (target >= 0.50)\n", med[0] / med[1]);
  for (int s = 0; f && s < 2; s++) {
    fprintf(f,
            "{\"bench\":\"upsert\",\"side\":\"%s\",\"n\":%zu,\"batch\":%zu,\"dim\":%zu,"
            "\"repeat\":%zu,\"bytes\":%.0f,\"points_per_s\":%.1f,\"mb_per_s\":%.3f,"
            "\"ratio\":%.4f,\"runs\":[",
            names[s], b->n, b->batch, b->dim, b->repeat, bytes, med[s], med[s] * per_point,
            med[0] / med[1]);
    for (size_t r = 0; r < b->repeat; r++) /* sorted by median() */
      fprintf(f, "%s%.1f", r ? "," : "", b->rates[s][r]);
    fprintf(f, "]}\n");
  }
  b->jsonf = NULL;
  if (f && fclose(f)) {
    fprintf(stderr, "bench_upsert: %s: %s\n", b->json, strerror(errno));
    return -1;
  }
  return 0;
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out) {
  char *end;
  unsigned long long v;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
    return -1;
  *out = (size_t)v;
  return 0;
}

static int parse_args(bench *b, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = v == NULL;
    if (!bad && !strcmp(a, "--n"))
      bad = parse_size(v, 1, (size_t)1 << 32, &b->n);
    else if (!bad && !strcmp(a, "--batch"))
      bad = parse_size(v, 1, (size_t)1 << 24, &b->batch);
    else if (!bad && !strcmp(a, "--dim"))
      bad = parse_size(v, 1, VS_DIM_MAX, &b->dim);
    else if (!bad && !strcmp(a, "--repeat"))
      bad = parse_size(v, 1, 1000, &b->repeat);
    else if (!bad && !strcmp(a, "--dir"))
      b->parent = v;
    else if (!bad && !strcmp(a, "--json"))
      b->json = v;
    else
      bad = 1;
    if (bad) {
      fprintf(stderr, "usage: bench_upsert [--n N] [--batch B] [--dim D] [--repeat R] "
                      "[--dir TMPDIR] [--json FILE]\n");
      return -1;
    }
    i++;
  }
  return 0;
}

int main(int argc, char **argv) {
  bench b = {.n = 100000, .batch = 1000, .dim = 128, .repeat = 3, .parent = "/tmp"};
  int rc = 1;

  msgpack_sbuffer_init(&b.payloads);
  if (parse_args(&b, argc, argv))
    return 2;
  /* Room for both sides' copy-on-write pages without growing the map. */
  b.map_size = (size_t)1 << 30;
  while (b.map_size < 8 * b.n * (b.dim * sizeof(float) + 128))
    b.map_size *= 2;
  b.rates[0] = calloc(b.repeat, sizeof(double));
  b.rates[1] = calloc(b.repeat, sizeof(double));
  if (!b.rates[0] || !b.rates[1] || generate(&b)) {
    fprintf(stderr, "bench_upsert: out of memory\n");
    goto done;
  }
  if (b.json && (b.jsonf = fopen(b.json, "w")) == NULL) {
    fprintf(stderr, "bench_upsert: %s: %s\n", b.json, strerror(errno));
    goto done;
  }
  snprintf(b.scratch, sizeof(b.scratch), "%s/vsbench-XXXXXX", b.parent); /* mkdtemp checks */
  if (mkdtemp(b.scratch) == NULL) {
    fprintf(stderr, "bench_upsert: mkdtemp under %s: %s\n", b.parent, strerror(errno));
    goto done;
  }
  rc = measure(&b) || report(&b);
  if (rm_tree(b.scratch))
    rc = 1;
done:
  if (b.jsonf)
    fclose(b.jsonf);
  free(b.rates[0]), free(b.rates[1]);
  free(b.vectors), free(b.points), free(b.offsets), free(b.value);
  msgpack_sbuffer_destroy(&b.payloads);
  return rc;
}
