/*
 * bench_twotower.c: recommender retrieval as a two-tower model does it,
 * on Fashion-MNIST: a user vector against the item vectors by inner
 * product, under a payload filter, leaving out what the user has seen
 * (issue 5 target: vs_search_batch at >= 1.8x the queries/s of a loop of
 * single vs_search calls on 2 cores, at recall@10 against the exact search).
 *
 * Items: the 60,000 train images (784 uint8 pixels as floats, not
 * normalised) in an "ip" HNSW32 collection (vsearch indexes it through the
 * MIPS-to-L2 reduction) with payload {"label": L}, upserted in batches of
 * 1000, then rebuilt into one segment (timed, not part of the figures).
 * Users: --users of them (fixed seed); each has seen --seen distinct random
 * items, which are its exclude list, and its vector is the mean of the
 * first 5 of them plus Gaussian noise of deviation --noise (unnormalised,
 * as a user tower's output): its nearest items are mostly ones it has seen.
 * Every query: k = 10, --ef, the --filter (default: the even labels, 50%
 * of the items) and the user's exclusions.
 *
 * Measured in one run, on the same database, after an untimed warm-up
 * (loop passes until the plan settles: see warm_up()):
 *   loop  = vs_search for every user, one at a time from one thread (a
 *           single query uses one OpenMP thread), with the plan each took;
 *   batch = vs_search_batch over every user, --batch queries a call, the
 *           queries spread over all cores (OpenMP's default, or
 *           OMP_NUM_THREADS).
 * The two alternate chunk by chunk (a batch's worth of users each, the
 * first of the pair swapped every chunk), so that both meet the same
 * background load on a shared machine; --runs passes over all users, the
 * best pass of each counting (each pass's ratio is printed too).  Reported:
 * their queries/s and the ratio batch/loop.  Then, for --recall-users
 * users spread evenly over all of them, the exact search (exact = 1, the
 * same filter and exclusions) gives recall@10 of the batch's and the
 * loop's hits, and each sampled user's batch hits are checked against the
 * filter (vs_count_where of the filter AND has_id(hits)).  Over every user:
 * batch hits equal to loop hits (ids in order), no excluded id returned,
 * k hits back.  Usage:
 *   build/bench_twotower [--n N (60000)] [--users U (10000)] [--seen S (100)]
 *       [--noise SIGMA (10)] [--ef EF (64)] [--batch B (1000)]
 *       [--runs R (3)] [--recall-users R (1000)] [--filter JSON] [--seed S (1)]
 *       [--dir TMPDIR] [--json FILE]
 * Progress goes to stderr when it is a terminal.
 */
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "tools/benchutil.h"
#include "tools/datasets.h"

#define TRAIN "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define LABELS "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
#define COLL "items"
#define K 10
#define MIX 5 /* seen items averaged into a user's vector */
#define NO_HIT UINT64_MAX
#define RUNS_MAX 20

typedef struct options {
  size_t n, users, seen, batch, recall_users;
  double noise;
  int ef, runs;
  uint64_t seed;
  const char *filter, *dir, *json;
} options;

static int progress; /* stderr is a terminal */

static void die(const char *what, const char *msg) {
  bu_die(progress, "bench_twotower", what, msg);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);

  if (p == NULL)
    die("memory", "out of memory");
  return p;
}

/* splitmix64, and a standard normal by Box-Muller. */
static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {
  double u = ((double)(rnd(s) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1) */
  double v = (double)(rnd(s) >> 11) / 9007199254740992.0;

  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Upsert the items, 1000 a call, with payload {"label": L}. */
static void load(vs_db *db, const float *x, const uint8_t *labels, size_t n, size_t dim) {
  enum { BATCH = 1000 };
  vs_point p[BATCH];
  msgpack_sbuffer sb[BATCH];
  vs_error err = VS_ERROR_INIT;

  for (size_t base = 0; base < n; base += BATCH) {
    size_t m = n - base < BATCH ? n - base : BATCH;

    for (size_t i = 0; i < m; i++) {
      msgpack_packer pk;

      msgpack_sbuffer_init(&sb[i]);
      msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
      msgpack_pack_map(&pk, 1);
      msgpack_pack_str_with_body(&pk, "label", 5);
      msgpack_pack_int(&pk, labels[base + i]);
      p[i] = (vs_point){vs_id_int(base + i), x + (base + i) * dim, dim, sb[i].data, sb[i].size};
    }
    if (vs_upsert(db, COLL, p, m, &err))
      die("upsert", err.message);
    for (size_t i = 0; i < m; i++)
      msgpack_sbuffer_destroy(&sb[i]);
    bu_progress(progress, NULL, "upsert %zu/%zu", base + m, n);
  }
}

/* Each user's seen items (distinct, seen[u * o->seen ..]) and vector. */
static void make_users(const options *o, const float *x, size_t dim, uint64_t *seen, float *u) {
  size_t *stamp = xcalloc(o->n, sizeof(*stamp));
  uint64_t s = o->seed;

  for (size_t i = 0; i < o->users; i++) {
    uint64_t *si = seen + i * o->seen;
    float *ui = u + i * dim;

    for (size_t j = 0; j < o->seen;) {
      uint64_t item = rnd(&s) % o->n;
      if (stamp[item] != i + 1) {
        stamp[item] = i + 1;
        si[j++] = item;
      }
    }
    for (size_t d = 0; d < dim; d++) {
      double sum = 0;
      for (size_t j = 0; j < MIX; j++)
        sum += x[si[j] * dim + d];
      ui[d] = (float)(sum / MIX + o->noise * gauss(&s));
    }
  }
  free(stamp);
}

/* Keep query q's hit ids (NO_HIT past its last) in ids[q * K ..]. */
static void keep_ids(uint64_t *ids, size_t q, const vs_hit *h, size_t n) {
  for (size_t j = 0; j < K; j++)
    ids[q * K + j] = j < n ? h[j].id.num : NO_HIT;
}

static size_t overlap(const uint64_t *got, const vs_hit *want, size_t nw) {
  size_t hit = 0;

  for (size_t i = 0; i < nw; i++)
    for (size_t j = 0; j < K; j++)
      if (got[j] == want[i].id.num) {
        hit++;
        break;
      }
  return hit;
}

/* Do all of user u's hits pass the filter?  Asks vs_count_where of
 * {"must": [FILTER, {"has_id": [hits]}]}, so it holds for any filter. */
static int hits_pass(vs_db *db, const char *filter, const uint64_t *ids) {
  char json[8192];
  size_t at, n = 0;
  vs_error err = VS_ERROR_INIT;
  vs_filter *f;
  uint64_t count;

  at = (size_t)snprintf(json, sizeof(json), "{\"must\": [%s, {\"has_id\": [", filter);
  for (size_t j = 0; j < K && ids[j] != NO_HIT && at < sizeof(json); j++, n++)
    at += (size_t)snprintf(json + at, sizeof(json) - at, "%s%llu", j ? ", " : "",
                           (unsigned long long)ids[j]);
  if (at < sizeof(json))
    at += (size_t)snprintf(json + at, sizeof(json) - at, "]}]}");
  if (at >= sizeof(json))
    die("filter", "--filter is too long for the check");
  if (vs_filter_parse_json(json, at, &f, &err) || vs_count_where(db, COLL, f, &count, &err))
    die("filter check", err.message);
  vs_filter_free(f);
  return count == n;
}

/* How many queries took each plan. */
typedef struct tally {
  char name[8][16];
  size_t n[8], kinds;
} tally;

static void tally_add(tally *t, const char *plan) {
  size_t p;

  for (p = 0; p < t->kinds && strcmp(t->name[p], plan) != 0; p++)
    ;
  if (p == t->kinds && t->kinds < 8)
    snprintf(t->name[t->kinds++], sizeof(t->name[0]), "%s", plan);
  if (p < t->kinds)
    t->n[p]++;
}

static size_t tally_get(const tally *t, const char *plan) {
  for (size_t p = 0; p < t->kinds; p++)
    if (strcmp(t->name[p], plan) == 0)
      return t->n[p];
  return 0;
}

/* Queries sp[0..m) one vs_search at a time; their hit ids into ids.
 * Returns the seconds taken. */
static double run_loop(vs_db *db, const vs_search_params *sp, size_t m, uint64_t *ids,
                       tally *plans) {
  vs_error err = VS_ERROR_INIT;
  double t0 = bu_now();

  for (size_t i = 0; i < m; i++) {
    vs_search_info info;
    vs_hit *h;
    size_t nh;

    if (vs_search(db, COLL, &sp[i], &h, &nh, &info, &err))
      die("search", err.message);
    keep_ids(ids, i, h, nh);
    vs_free(h);
    if (plans)
      tally_add(plans, info.plan);
  }
  return bu_now() - t0;
}

/* The same queries in one vs_search_batch call (off: m + 1 entries). */
static double run_batch(vs_db *db, const vs_search_params *sp, size_t m, uint64_t *ids,
                        size_t *off) {
  vs_error err = VS_ERROR_INIT;
  double t0 = bu_now();
  vs_hit *h;

  if (vs_search_batch(db, COLL, sp, m, &h, off, &err))
    die("batch", err.message);
  for (size_t i = 0; i < m; i++)
    keep_ids(ids, i, h + off[i], off[i + 1] - off[i]);
  vs_free(h);
  return bu_now() - t0;
}

/* Warm up as a service would be: passes of the loop over every user,
 * untimed; the first indexes the payload field the filter names.  A filter
 * whose walks keep missing (plan exact-fallback) gets a sub-index of its
 * own after FCACHE_AFTER (3) misses, built in the background
 * (engine/vindex.c); left alone, that build would land in the middle of
 * the timed runs, change the plan under them and take a core.  So passes
 * go on until 3 queries have missed (or a pass misses none, or 5 passes),
 * then the sub-index is waited for (up to 120 s).  Returns the queries that
 * fell back; *passes, and *wait_s: -1 when no sub-index was expected,
 * else the seconds waited for it (0: it was there already; -2: it never
 * came). */
static size_t warm_up(vs_db *db, const vs_search_params *sp, size_t users, uint64_t *ids,
                      int *passes, double *wait_s) {
  size_t missed = 0, m, probe = users < 20 ? users : 20;
  double t0;

  *passes = 0;
  *wait_s = -1;
  do {
    tally t = {0};

    run_loop(db, sp, users, ids, &t);
    m = tally_get(&t, "exact-fallback");
    missed += m;
    ++*passes;
    if (tally_get(&t, "filter-index")) { /* already there */
      *wait_s = 0;
      return missed;
    }
  } while (m > 0 && missed < 3 && *passes < 5);
  if (missed < 3)
    return missed;
  t0 = bu_now();
  for (int tries = 0; tries < 1200; tries++) {
    struct timespec ts = {0, 100000000};
    tally t = {0};

    run_loop(db, sp, probe, ids, &t);
    if (tally_get(&t, "filter-index")) {
      *wait_s = bu_now() - t0;
      return missed;
    }
    nanosleep(&ts, NULL);
  }
  *wait_s = -2;
  return missed;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_twotower [--n N] [--users U] [--seen S] [--noise SIGMA] [--ef EF]\n"
          "                      [--batch B] [--runs R] [--recall-users R] [--filter JSON]\n"
          "                      [--seed S] [--dir TMPDIR] [--json FILE]\n");
  exit(2);
}

static void parse_args(int argc, char **argv, options *o) {
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

    if (v == NULL)
      usage();
    if (strcmp(a, "--n") == 0)
      o->n = strtoul(v, NULL, 10);
    else if (strcmp(a, "--users") == 0)
      o->users = strtoul(v, NULL, 10);
    else if (strcmp(a, "--seen") == 0)
      o->seen = strtoul(v, NULL, 10);
    else if (strcmp(a, "--noise") == 0)
      o->noise = atof(v);
    else if (strcmp(a, "--ef") == 0)
      o->ef = atoi(v);
    else if (strcmp(a, "--batch") == 0)
      o->batch = strtoul(v, NULL, 10);
    else if (strcmp(a, "--runs") == 0)
      o->runs = atoi(v);
    else if (strcmp(a, "--recall-users") == 0)
      o->recall_users = strtoul(v, NULL, 10);
    else if (strcmp(a, "--filter") == 0)
      o->filter = v;
    else if (strcmp(a, "--seed") == 0)
      o->seed = strtoull(v, NULL, 10);
    else if (strcmp(a, "--dir") == 0)
      o->dir = v;
    else if (strcmp(a, "--json") == 0)
      o->json = v;
    else
      usage();
  }
  if (o->users == 0 || o->seen < MIX || o->batch == 0 || o->batch > VS_BATCH_MAX || o->ef < 0 ||
      o->runs < 1 || o->runs > RUNS_MAX)
    die("options", "need --users >= 1, --seen >= 5, --batch 1..10000, --ef >= 0, --runs 1..20");
  if (o->recall_users > o->users)
    o->recall_users = o->users;
}

int main(int argc, char **argv) {
  options o = {.n = 60000,
               .users = 10000,
               .seen = 100,
               .batch = 1000,
               .recall_users = 1000,
               .noise = 10.0,
               .ef = 64,
               .runs = 3,
               .seed = 1,
               .filter =
                   "{\"must\": [{\"key\": \"label\", \"match\": {\"any\": [0, 2, 4, 6, 8]}}]}",
               .dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp"};
  vs_open_options oo = {VS_OPEN_CREATE | VS_OPEN_NOSYNC, 0, 0, 1u << 30};
  vs_collection_config cfg = {COLL, 0, VS_METRIC_IP, "HNSW32"};
  vs_error err = VS_ERROR_INIT;
  char dir[4096], msg[512];
  size_t rows, dim, lrows, *off;
  uint64_t *seen, *loop_ids, *batch_ids, pass;
  vs_search_params *sp;
  vs_id *ex;
  vs_filter *f;
  uint8_t *labels;
  float *x, *u;
  vs_db *db;
  double t0, build_s, loop_s = 0, batch_s = 0, rb = 0, rl = 0, ratios[RUNS_MAX];
  size_t mismatch = 0, leaked = 0, short_k = 0, failing = 0;
  int threads = omp_get_max_threads();
  tally plans = {0};
  size_t warm_fallbacks;
  int warm_passes;
  double sub_wait;

  progress = isatty(STDERR_FILENO);
  parse_args(argc, argv, &o);
  if (ds_read_vectors(TRAIN, "idx", 0, o.n, &x, &rows, &dim, msg, sizeof(msg)))
    die("items", msg);
  if (ds_read_idx_labels(LABELS, 0, rows, &labels, &lrows, msg, sizeof(msg)) || lrows != rows)
    die("labels", msg);
  o.n = rows;
  if (o.seen > o.n)
    die("options", "--seen exceeds the items");
  if (vs_filter_parse_json(o.filter, strlen(o.filter), &f, &err))
    die("--filter", err.message);

  snprintf(dir, sizeof(dir), "%s/bench_twotower.XXXXXX", o.dir);
  if (mkdtemp(dir) == NULL)
    die(dir, "cannot make a directory");
  if (vs_db_open(dir, &oo, &db, &err))
    die(dir, err.message);
  cfg.dim = (uint32_t)dim;
  if (vs_collection_create(db, &cfg, &err))
    die("create", err.message);
  load(db, x, labels, o.n, dim);
  bu_progress(progress, NULL, "rebuild into one HNSW32 segment");
  t0 = bu_now();
  if (vs_collection_rebuild(db, COLL, NULL, 0, &err))
    die("rebuild", err.message);
  build_s = bu_now() - t0;
  if (vs_count_where(db, COLL, f, &pass, &err))
    die("count", err.message);

  /* The users and their queries. */
  seen = xcalloc(o.users * o.seen, sizeof(*seen));
  u = xcalloc(o.users * dim, sizeof(*u));
  ex = xcalloc(o.users * o.seen, sizeof(*ex));
  sp = xcalloc(o.users, sizeof(*sp));
  make_users(&o, x, dim, seen, u);
  for (size_t i = 0; i < o.users * o.seen; i++)
    ex[i] = vs_id_int(seen[i]);
  for (size_t i = 0; i < o.users; i++)
    sp[i] = (vs_search_params){u + i * dim, dim, K, o.ef, 0, 0, 0, f, ex + i * o.seen, o.seen};
  loop_ids = xcalloc(o.users * K, sizeof(*loop_ids));
  batch_ids = xcalloc(o.users * K, sizeof(*batch_ids));
  off = xcalloc(o.batch + 1, sizeof(*off));

  bu_progress(progress, NULL, "warm-up");
  warm_fallbacks = warm_up(db, sp, o.users, loop_ids, &warm_passes, &sub_wait);

  /* Timed: --runs passes over every user, each pass chunk by chunk (a
   * batch's worth of users), the loop and the batch in turn, swapping which
   * goes first: both meet the same background load on a shared machine. */
  for (int run = 0; run < o.runs; run++) {
    double lt = 0, bt = 0;

    for (size_t base = 0, c = 0; base < o.users; base += o.batch, c++) {
      size_t m = o.users - base < o.batch ? o.users - base : o.batch;

      for (int half = 0; half < 2; half++)
        if ((half ^ (int)(c & 1)) == 0)
          lt += run_loop(db, sp + base, m, loop_ids + base * K, run == 0 ? &plans : NULL);
        else
          bt += run_batch(db, sp + base, m, batch_ids + base * K, off);
      bu_progress(progress, NULL, "run %d/%d: %zu/%zu users", run + 1, o.runs, base + m, o.users);
    }
    loop_s = run == 0 || lt < loop_s ? lt : loop_s;
    batch_s = run == 0 || bt < batch_s ? bt : batch_s;
    ratios[run] = lt / bt;
  }

  /* Every user: batch == loop, no excluded id, k hits. */
  for (size_t i = 0; i < o.users; i++) {
    const uint64_t *b = batch_ids + i * K, *si = seen + i * o.seen;

    mismatch += memcmp(b, loop_ids + i * K, K * sizeof(*b)) != 0;
    short_k += b[K - 1] == NO_HIT;
    for (size_t j = 0; j < K; j++)
      for (size_t s = 0; s < o.seen && b[j] != NO_HIT; s++)
        leaked += b[j] == si[s];
  }

  /* Sampled users: recall@10 against the exact search, and the filter. */
  for (size_t r = 0; r < o.recall_users; r++) {
    size_t i = r * o.users / o.recall_users, nw;
    vs_search_params q = sp[i];
    vs_hit *want;

    q.exact = 1;
    if (vs_search(db, COLL, &q, &want, &nw, NULL, &err))
      die("exact search", err.message);
    rb += nw ? (double)overlap(batch_ids + i * K, want, nw) / (double)nw : 1.0;
    rl += nw ? (double)overlap(loop_ids + i * K, want, nw) / (double)nw : 1.0;
    vs_free(want);
    failing += !hits_pass(db, o.filter, batch_ids + i * K);
    if (progress && r % 50 == 0)
      bu_progress(progress, NULL, "exact %zu/%zu", r, o.recall_users);
  }
  if (o.recall_users) {
    rb /= (double)o.recall_users;
    rl /= (double)o.recall_users;
  }
  bu_progress_done(progress);

  {
    double loop_qps = (double)o.users / loop_s, batch_qps = (double)o.users / batch_s;

    printf("two-tower retrieval on Fashion-MNIST (bench/bench_twotower.c)\n");
    printf("items        %zu x %zu, metric ip, HNSW32 (MIPS reduction), rebuilt in %.1f s\n", o.n,
           dim, build_s);
    printf("users        %zu: %zu seen items each (excluded), vector = mean of %d seen + "
           "N(0, %g^2), seed %llu\n",
           o.users, o.seen, MIX, o.noise, (unsigned long long)o.seed);
    printf("filter       %s\n", o.filter);
    printf("selectivity  %.4f (%llu of %zu items pass)\n", (double)pass / (double)o.n,
           (unsigned long long)pass, o.n);
    printf("k %d, ef %d\n", K, o.ef ? o.ef : 64);
    printf("warm-up      %d loop passes, %zu queries fell back to the exact scan; filter "
           "sub-index: ",
           warm_passes, warm_fallbacks);
    if (sub_wait >= 0)
      printf("ready after %.1f s\n", sub_wait);
    else
      printf("%s\n", sub_wait == -1 ? "none asked for" : "asked for, never came");
    printf("loop         %10.0f q/s  vs_search, one thread; plans (first run):", loop_qps);
    for (size_t p = 0; p < plans.kinds; p++)
      printf(" %s %zu", plans.name[p], plans.n[p]);
    printf("\n");
    printf("batch        %10.0f q/s  vs_search_batch, %zu queries a call, %d OpenMP threads\n",
           batch_qps, o.batch, threads);
    printf("ratio        %10.2f    batch/loop, best of %d runs (issue target >= 1.8 on 2 cores);"
           " each run:",
           batch_qps / loop_qps, o.runs);
    for (int r = 0; r < o.runs; r++)
      printf(" %.2f", ratios[r]);
    printf("\n");
    if (o.recall_users)
      printf("recall@10    %10.4f    batch, against the exact search (%zu users); loop %.4f\n", rb,
             o.recall_users, rl);
    printf("batch==loop  %zu of %zu users differ (hit ids in order, last run)\n", mismatch,
           o.users);
    printf("checks       %zu excluded ids returned, %zu users short of k, %zu of %zu sampled "
           "users with a hit failing the filter\n",
           leaked, short_k, failing, o.recall_users);

    if (o.json) {
      FILE *jf = fopen(o.json, "w");
      json_t *j = json_object(), *jp = json_object(), *jr = json_array();

      if (jf == NULL)
        die(o.json, "cannot write");

      for (size_t p = 0; p < plans.kinds; p++)
        json_object_set_new(jp, plans.name[p], json_integer((json_int_t)plans.n[p]));
      for (int r = 0; r < o.runs; r++)
        json_array_append_new(jr, json_real(ratios[r]));
      json_object_set_new(j, "bench", json_string("twotower"));
      json_object_set_new(j, "items", json_integer((json_int_t)o.n));
      json_object_set_new(j, "dim", json_integer((json_int_t)dim));
      json_object_set_new(j, "metric", json_string("ip"));
      json_object_set_new(j, "index", json_string("HNSW32"));
      json_object_set_new(j, "build_s", json_real(build_s));
      json_object_set_new(j, "users", json_integer((json_int_t)o.users));
      json_object_set_new(j, "seen", json_integer((json_int_t)o.seen));
      json_object_set_new(j, "noise", json_real(o.noise));
      json_object_set_new(j, "seed", json_integer((json_int_t)o.seed));
      json_object_set_new(j, "filter", json_string(o.filter));
      json_object_set_new(j, "selectivity", json_real((double)pass / (double)o.n));
      json_object_set_new(j, "k", json_integer(K));
      json_object_set_new(j, "ef", json_integer(o.ef ? o.ef : 64));
      json_object_set_new(j, "batch", json_integer((json_int_t)o.batch));
      json_object_set_new(j, "threads", json_integer(threads));
      json_object_set_new(j, "warmup_passes", json_integer(warm_passes));
      json_object_set_new(j, "warmup_fallbacks", json_integer((json_int_t)warm_fallbacks));
      json_object_set_new(j, "filter_subindex_wait_s",
                          sub_wait >= 0 ? json_real(sub_wait) : json_null());
      json_object_set_new(j, "loop_qps", json_real(loop_qps));
      json_object_set_new(j, "loop_plans", jp);
      json_object_set_new(j, "batch_qps", json_real(batch_qps));
      json_object_set_new(j, "ratio", json_real(batch_qps / loop_qps));
      json_object_set_new(j, "runs", json_integer(o.runs));
      json_object_set_new(j, "run_ratios", jr);
      json_object_set_new(j, "recall_users", json_integer((json_int_t)o.recall_users));
      json_object_set_new(j, "recall_at_10", json_real(rb));
      json_object_set_new(j, "loop_recall_at_10", json_real(rl));
      json_object_set_new(j, "batch_loop_mismatches", json_integer((json_int_t)mismatch));
      json_object_set_new(j, "excluded_returned", json_integer((json_int_t)leaked));
      json_object_set_new(j, "short_of_k", json_integer((json_int_t)short_k));
      json_object_set_new(j, "filter_failures", json_integer((json_int_t)failing));
      json_dumpf(j, jf, JSON_COMPACT);
      fputc('\n', jf);
      json_decref(j);
      fclose(jf);
    }
  }

  vs_db_close(db);
  if (bu_rmtree(dir) != 0)
    fprintf(stderr, "bench_twotower: could not remove %s\n", dir);
  vs_filter_free(f);
  free(off);
  free(batch_ids);
  free(loop_ids);
  free(sp);
  free(ex);
  free(u);
  free(seen);
  free(labels);
  free(x);
  return 0;
}
