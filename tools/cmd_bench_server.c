/*
 * cmd_bench_server.c: `vsearch bench server`, the MessagePack-RPC server's
 * throughput and latency under many pipelined connections, beside the
 * in-process vs_search() rate on the same cores, in one run (DESIGN.md
 * section 8, issue 6).
 *
 * WHAT IT DOES
 *
 *  1. A fresh database in a temporary directory (opened without fsync), a
 *     collection "items" (784-d, l2, HNSW32) holding the first --n rows of
 *     Fashion-MNIST train, upserted through the C API with ids 0..n-1, then
 *     vs_collection_rebuild() so the index is one segment.
 *  2. In-process: --threads pthreads call vs_search() (k = 10, ef = --ef) on
 *     the Fashion-MNIST test images, thread t taking queries t, t + T, ...,
 *     for --seconds.  queries/s = searches that returned within the window
 *     / the window.
 *  3. The database is closed and `vsearch serve DIR --listen 127.0.0.1:0
 *     --threads T` started as a child (this very binary, /proc/self/exe);
 *     its stdout and stderr go to files in the temporary directory, and the
 *     port is read from its "listening on HOST:PORT" line.
 *  4. The load generator: --connections blocking TCP sockets on loopback,
 *     one pthread each, MessagePack-RPC requests [0, msgid, method, [args]]
 *     packed with msgpack-c, responses read with msgpack_unpacker and
 *     matched to their request by msgid (they may come back in any order).
 *     Phases, each --seconds long:
 *       ping         closed loop, --pipeline requests in flight on each
 *                    connection: requests/s.
 *       (warm-up)    one second of closed-loop search, not reported: the
 *                    server loads the segment at its first search.
 *       search peak  closed loop as ping, with search {"collection":
 *                    "items", "vector": bin float32 LE, "k": 10, "ef": E}:
 *                    peak queries/s and latency.
 *       search 50%   open loop: requests are scheduled at half the peak rate
 *                    in total, evenly over the connections (connection j
 *                    sends request m at start + (j + m C) / rate), whether
 *                    or not earlier ones were answered; latency runs from
 *                    the scheduled time, not from the actual send, so a
 *                    client that falls behind does not hide queueing
 *                    (no coordinated omission).
 *     A response counts towards the rate when it arrives inside the window;
 *     every response to a request sent in the window gives a latency
 *     sample (the phase drains its requests after the window, for at most
 *     DRAIN_S seconds; what is still missing then counts as errors).
 *     Every response must be [1, msgid, nil, result] with the msgid of a
 *     request in flight, result "pong" for ping and an array of k hits for
 *     search; anything else is an error, counted and the first one shown.
 *  5. The ratio server peak / in-process queries/s (the target is
 *     at least 0.8), then SIGTERM to the server, waiting for it to exit,
 *     and removing the temporary directory.
 *
 * The load generator runs on the same machine as the server and takes CPU
 * from it: on a machine with few cores that weighs on the ratio.
 * Latency percentiles are nearest-rank over every sample of the phase.
 * Progress is shown on a terminal only; --json FILE writes one JSON record
 * a line per measured phase, and one for the ratio.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "tools/benchutil.h"
#include "tools/commands.h"
#include "tools/datasets.h"

extern char **environ;

#define PROG "vsearch bench server"
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define TRAIN_FILE FMNIST_DIR "/train-images-idx3-ubyte.gz"
#define TEST_FILE FMNIST_DIR "/t10k-images-idx3-ubyte.gz"
#define COLL "items"
#define K 10
#define BATCH 1000
#define SLOTS 4096        /* requests in flight per connection, at most */
#define DRAIN_S 10.0      /* seconds a phase waits for late responses */
#define WARMUP_S 1.0      /* closed-loop search before the peak phase */
#define SERVER_WAIT_S 120 /* seconds for the server to start or to stop */
#define MAX_CONNS 512     /* pselect() takes descriptors below FD_SETSIZE */
#define MAX_PIPELINE 128  /* the server reads at most 128 requests ahead */

typedef struct opts {
  size_t threads, conns, pipeline, n, max_batch;
  double seconds;
  int ef;
  const char *spec; /* the index (HNSW32) */
  const char *json;
} opts;

/* One measured configuration: what a line of the table and a JSON record
 * show. */
typedef struct result {
  const char *phase; /* in the table */
  const char *key;   /* in the JSON records */
  double offered;    /* requests/s offered (open loop), 0 otherwise */
  double qps;
  uint64_t count, errors;
  double p50, p99, p999; /* milliseconds; NAN when there is no sample */
  char first_error[200];
} result;

/* ---- state for cleaning up on a fatal error ------------------------------------------------ */

static int g_progress;
static char g_root[4096]; /* the temporary directory, "" when none */
static pid_t g_child = -1;

static void cleanup(void) {
  if (g_child > 0) {
    kill(g_child, SIGKILL);
    waitpid(g_child, NULL, 0);
    g_child = -1;
  }
  if (g_root[0]) {
    bu_rmtree(g_root);
    g_root[0] = 0;
  }
}

static _Noreturn void die(const char *what, const char *msg) {
  cleanup();
  bu_die(g_progress, PROG, what, msg);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    die("memory", "out of memory");
  return p;
}

/* ---- latency samples ------------------------------------------------------------------------- */

typedef struct samples {
  double *v;
  size_t n, cap;
} samples;

static void samples_add(samples *s, double x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 4096;
    double *v = realloc(s->v, cap * sizeof *v);
    if (v == NULL)
      die("memory", "out of memory for latency samples");
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
}

/* Nearest-rank percentile p (0..1) of sorted v, in milliseconds. */
static double pct(const samples *s, double p) {
  size_t i;
  if (s->n == 0)
    return NAN;
  i = (size_t)ceil(p * (double)s->n);
  if (i > 0)
    i--;
  if (i >= s->n)
    i = s->n - 1;
  return s->v[i] * 1e3;
}

/* Merge `n` sample sets into r's percentiles; frees them. */
static void finish_latency(result *r, samples *parts, size_t n) {
  samples all = {0};
  for (size_t i = 0; i < n; i++)
    all.n += parts[i].n;
  all.v = xmalloc(all.n * sizeof(double));
  all.n = 0;
  for (size_t i = 0; i < n; i++) {
    if (parts[i].n)
      memcpy(all.v + all.n, parts[i].v, parts[i].n * sizeof(double));
    all.n += parts[i].n;
    free(parts[i].v);
    parts[i] = (samples){0};
  }
  bu_sort(all.v, all.n);
  r->p50 = pct(&all, 0.50);
  r->p99 = pct(&all, 0.99);
  r->p999 = pct(&all, 0.999);
  free(all.v);
}

static void sleep_until(double t) {
  double d = t - bu_now();
  if (d > 0) {
    struct timespec ts;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) && errno == EINTR)
      ;
  }
}

/* ---- options ----------------------------------------------------------------------------------
 */

static void usage(FILE *f) {
  fprintf(f, "usage: vsearch bench server [--threads N (cores)] [--connections C (16)]\n"
             "           [--pipeline P (8)] [--seconds S (5)] [--n N (60000)] [--ef E (64)]\n"
             "           [--spec INDEX (HNSW32)] [--max-batch B (32)] [--json FILE]\n"
             "  Loads the first N Fashion-MNIST train images into a temporary database,\n"
             "  measures in-process vs_search queries/s on N threads, then starts\n"
             "  `vsearch serve --max-batch B` on 127.0.0.1 and drives it with C connections\n"
             "  of P pipelined requests: ping requests/s, search peak queries/s and\n"
             "  p50/p99/p99.9 latency, and the same at 50%% of peak (open loop); last, the\n"
             "  search peak of a server started with --max-batch 1 (no dynamic batching).\n"
             "  Loopback only.\n");
}

static int parse_num(const char *opt, const char *val, double lo, double hi, double *out) {
  char *end;
  double v;

  errno = 0;
  v = val ? strtod(val, &end) : 0;
  if (val == NULL || errno || end == val || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "vsearch: %s must be a number in %g..%g\n", opt, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

/* Returns 0, 1 after --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    size_t x;
    int rc;

    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 1;
    }
    if (!strcmp(a, "--threads"))
      rc = bu_parse_count(a, v, 1, 1024, &o->threads);
    else if (!strcmp(a, "--connections"))
      rc = bu_parse_count(a, v, 1, MAX_CONNS, &o->conns);
    else if (!strcmp(a, "--pipeline"))
      rc = bu_parse_count(a, v, 1, MAX_PIPELINE, &o->pipeline);
    else if (!strcmp(a, "--seconds"))
      rc = parse_num(a, v, 0.1, 600, &o->seconds);
    else if (!strcmp(a, "--n"))
      rc = bu_parse_count(a, v, K, 60000, &o->n);
    else if (!strcmp(a, "--max-batch"))
      rc = bu_parse_count(a, v, 1, VS_BATCH_MAX, &o->max_batch);
    else if (!strcmp(a, "--spec")) {
      rc = v ? 0 : -1;
      if (v == NULL)
        fprintf(stderr, "vsearch: --spec wants an index spec\n");
      o->spec = v;
    } else if (!strcmp(a, "--ef")) {
      rc = bu_parse_count(a, v, 1, VS_EF_MAX, &x);
      o->ef = (int)x;
    } else if (!strcmp(a, "--json")) {
      rc = v ? 0 : -1;
      if (v == NULL)
        fprintf(stderr, "vsearch: --json wants a file name\n");
      o->json = v;
    } else {
      fprintf(stderr, "vsearch: bench server: unknown option '%s'\n", a);
      return -1;
    }
    if (rc)
      return -1;
    i++;
  }
  return 0;
}

/* ---- 1. load ----------------------------------------------------------------------------------
 */

static vs_db *load(const opts *o, const char *dbdir, double *load_s, double *build_s) {
  vs_open_options oo = {0};
  vs_collection_config cc = {0};
  vs_error err = VS_ERROR_INIT;
  vs_point *pts;
  vs_db *db = NULL;
  float *train = NULL;
  size_t rows, dim;
  char msg[512];
  double t0;
  int rc;

  oo.flags = VS_OPEN_CREATE | VS_OPEN_NOSYNC;
  oo.seal_threshold = (unsigned)o->n + 1; /* the rebuild makes the one segment */
  rc = vs_db_open(dbdir, &oo, &db, &err);
  if (rc)
    die(dbdir, err.code ? err.message : vs_strerror(rc));
  cc.name = COLL;
  cc.dim = 784;
  cc.metric = VS_METRIC_L2;
  cc.index = o->spec;
  rc = vs_collection_create(db, &cc, &err);
  if (rc)
    die("create collection", err.code ? err.message : vs_strerror(rc));
  bu_progress(g_progress, PROG, "reading %s", TRAIN_FILE);
  rc = ds_read_vectors(TRAIN_FILE, "idx", 0, o->n, &train, &rows, &dim, msg, sizeof msg);
  if (rc)
    die(TRAIN_FILE, msg);
  if (dim != 784 || rows != o->n)
    die(TRAIN_FILE, "not 784-d images, or fewer rows than --n");
  pts = xmalloc(BATCH * sizeof *pts);
  t0 = bu_now();
  for (size_t i = 0; i < rows; i += BATCH) {
    size_t m = rows - i < BATCH ? rows - i : BATCH;
    for (size_t j = 0; j < m; j++)
      pts[j] = (vs_point){.id = vs_id_int(i + j), .vector = train + (i + j) * dim, .dim = dim};
    rc = vs_upsert(db, COLL, pts, m, &err);
    if (rc)
      die("upsert", err.code ? err.message : vs_strerror(rc));
    bu_progress(g_progress, PROG, "loading %zu/%zu", i + m, rows);
  }
  *load_s = bu_now() - t0;
  free(pts);
  free(train);
  bu_progress(g_progress, PROG, "building %s over %zu points", o->spec, rows);
  t0 = bu_now();
  rc = vs_collection_rebuild(db, COLL, NULL, (int)o->threads, &err);
  if (rc)
    die("rebuild", err.code ? err.message : vs_strerror(rc));
  *build_s = bu_now() - t0;
  return db;
}

/* ---- 2. in-process ----------------------------------------------------------------------------
 */

typedef struct inproc {
  vs_db *db;
  const float *q;
  size_t nq, dim, tid, nthreads;
  int ef;
  double t_start, t_end;
  atomic_ulong *done;
  samples lat;
  uint64_t count, errors;
  char first_error[200];
} inproc;

static void *inproc_run(void *arg) {
  inproc *w = arg;
  size_t i = w->tid;

  sleep_until(w->t_start);
  for (;;) {
    vs_search_params p = {0};
    vs_error err = VS_ERROR_INIT;
    vs_hit *hits = NULL;
    size_t n = 0;
    double t0 = bu_now(), t1;
    int rc;

    if (t0 >= w->t_end)
      break;
    p.vector = w->q + (i % w->nq) * w->dim;
    p.dim = w->dim;
    p.k = K;
    p.ef = w->ef;
    rc = vs_search(w->db, COLL, &p, &hits, &n, NULL, &err);
    t1 = bu_now();
    vs_free(hits);
    if (rc || n != K) {
      if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%.190s",
                 rc ? (err.code ? err.message : vs_strerror(rc)) : "fewer than k hits");
    } else if (t1 <= w->t_end) {
      w->count++;
      samples_add(&w->lat, t1 - t0);
      atomic_fetch_add(w->done, 1);
    }
    i += w->nthreads;
  }
  return NULL;
}

static void measure_inprocess(const opts *o, vs_db *db, const float *q, size_t nq, size_t dim,
                              result *r) {
  inproc *w = xmalloc(o->threads * sizeof *w);
  pthread_t *th = xmalloc(o->threads * sizeof *th);
  samples *parts = xmalloc(o->threads * sizeof *parts);
  atomic_ulong done = 0;
  double t_start;

  /* One untimed search per thread's first query: the segment is loaded. */
  for (size_t t = 0; t < o->threads && t < nq; t++) {
    vs_search_params p = {.vector = q + t * dim, .dim = dim, .k = K, .ef = o->ef};
    vs_hit *hits = NULL;
    size_t n;
    vs_search(db, COLL, &p, &hits, &n, NULL, NULL);
    vs_free(hits);
  }
  t_start = bu_now() + 0.05;
  for (size_t t = 0; t < o->threads; t++) {
    w[t] = (inproc){.db = db,
                    .q = q,
                    .nq = nq,
                    .dim = dim,
                    .tid = t,
                    .nthreads = o->threads,
                    .ef = o->ef,
                    .t_start = t_start,
                    .t_end = t_start + o->seconds,
                    .done = &done};
    if (pthread_create(&th[t], NULL, inproc_run, &w[t]))
      die("pthread_create", strerror(errno));
  }
  while (bu_now() < t_start + o->seconds) {
    double el = bu_now() - t_start;
    bu_progress(g_progress, PROG, "in-process vs_search %.1f/%.0f s, %.0f q/s", el, o->seconds,
                el > 0 ? (double)atomic_load(&done) / el : 0.0);
    sleep_until(bu_now() + 0.25);
  }
  *r = (result){.phase = "in-process", .key = "inprocess"};
  for (size_t t = 0; t < o->threads; t++) {
    pthread_join(th[t], NULL);
    r->count += w[t].count;
    if (w[t].errors && r->errors == 0)
      memcpy(r->first_error, w[t].first_error, sizeof r->first_error);
    r->errors += w[t].errors;
    parts[t] = w[t].lat;
  }
  r->qps = (double)r->count / o->seconds;
  finish_latency(r, parts, o->threads);
  free(parts);
  free(th);
  free(w);
}

/* ---- 3. the server ----------------------------------------------------------------------------
 */

/* Print the end of the server's log on stderr. */
static void show_log(const char *path) {
  char buf[2048];
  FILE *f = fopen(path, "r");
  size_t n;
  long sz;

  if (f == NULL)
    return;
  fseek(f, 0, SEEK_END);
  sz = ftell(f);
  fseek(f, sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0, SEEK_SET);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  bu_progress_done(g_progress);
  fprintf(stderr, "%s: the server's log (%s) ends:\n%s\n", PROG, path, buf);
}

/* Start `vsearch serve` and return its port. */
static int start_server(const opts *o, size_t max_batch, const char *dbdir, const char *out,
                        const char *log) {
  posix_spawn_file_actions_t fa;
  char threads[32], batch[32], buf[512];
  char *argv[] = {"vsearch",   "serve", (char *)dbdir, "--listen", "127.0.0.1:0",
                  "--threads", threads, "--max-batch", batch,      NULL};
  double t0;
  int rc, port = 0;

  snprintf(threads, sizeof threads, "%zu", o->threads);
  snprintf(batch, sizeof batch, "%zu", max_batch);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  rc = posix_spawn(&g_child, "/proc/self/exe", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) {
    g_child = -1;
    die("start the server", strerror(rc));
  }
  t0 = bu_now();
  while (port == 0) {
    FILE *f = fopen(out, "r");
    int st;

    if (f) {
      while (fgets(buf, sizeof buf, f)) {
        const char *colon = strrchr(buf, ':');
        if (!strncmp(buf, "listening on ", 13) && colon && strchr(buf, '\n'))
          port = atoi(colon + 1);
      }
      fclose(f);
    }
    if (port)
      break;
    if (waitpid(g_child, &st, WNOHANG) == g_child) {
      g_child = -1;
      show_log(log);
      die("server", "exited before listening");
    }
    if (bu_now() - t0 > SERVER_WAIT_S) {
      show_log(log);
      die("server", "did not print \"listening on HOST:PORT\" in time");
    }
    bu_progress(g_progress, PROG, "starting the server");
    sleep_until(bu_now() + 0.02);
  }
  return port;
}

/* SIGTERM, and wait.  Returns the exit status as waitpid() gives it, or -1
 * when it had to be killed. */
static int stop_server(const char *log) {
  double t0 = bu_now();
  int st = 0;

  kill(g_child, SIGTERM);
  for (;;) {
    pid_t p = waitpid(g_child, &st, WNOHANG);
    if (p == g_child)
      break;
    if (bu_now() - t0 > SERVER_WAIT_S) {
      kill(g_child, SIGKILL);
      waitpid(g_child, &st, 0);
      g_child = -1;
      show_log(log);
      return -1;
    }
    sleep_until(bu_now() + 0.02);
  }
  g_child = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    show_log(log);
  return st;
}

/* ---- 4. the load generator --------------------------------------------------------------------
 */

enum { M_PING, M_SEARCH };

typedef struct phase {
  int method, open_loop;
  double rate; /* total requests/s, open loop */
  double t_start, t_end;
  size_t pipeline, nconn;
  const float *q;
  size_t nq, dim;
  int ef;
  atomic_ulong done;
} phase;

typedef struct conn {
  phase *ph;
  int fd;
  size_t j; /* connection number */
  samples lat;
  uint64_t count, errors;
  char first_error[200];
  /* Requests in flight: slot s holds msgid id[s] sent (or scheduled) at
   * sched[s]; free slots are stacked in freel[0..nfree). */
  double sched[SLOTS];
  uint32_t id[SLOTS];
  uint16_t freel[SLOTS];
  size_t nfree;
  uint32_t gen;
} conn;

static void conn_error(conn *c, const char *fmt, const char *arg) {
  if (c->errors++ == 0)
    snprintf(c->first_error, sizeof c->first_error, fmt, arg);
}

/* The connection is given up: every request still in flight is an error,
 * the first reported as `fmt` with `arg`. */
static void conn_lost(conn *c, const char *fmt, const char *arg) {
  size_t inflight = SLOTS - c->nfree;
  conn_error(c, fmt, arg);
  if (inflight > 1)
    c->errors += inflight - 1;
}

/* Little-endian float32 bytes of v, whatever the host's order. */
static void pack_vector(msgpack_packer *pk, const float *v, size_t dim) {
  unsigned char b[4 * 1024];
  msgpack_pack_bin(pk, 4 * dim);
  for (size_t i = 0; i < dim;) {
    size_t m = dim - i < 1024 ? dim - i : 1024;
    for (size_t j = 0; j < m; j++) {
      uint32_t u;
      memcpy(&u, &v[i + j], 4);
      b[4 * j] = (unsigned char)u;
      b[4 * j + 1] = (unsigned char)(u >> 8);
      b[4 * j + 2] = (unsigned char)(u >> 16);
      b[4 * j + 3] = (unsigned char)(u >> 24);
    }
    msgpack_pack_bin_body(pk, b, 4 * m);
    i += m;
  }
}

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* Append request number `seq` to sb, in flight from `when`. */
static void enqueue(conn *c, msgpack_packer *pk, uint64_t seq, double when) {
  phase *ph = c->ph;
  uint16_t s = c->freel[--c->nfree];
  uint32_t msgid = ((c->gen++ & 0x7ffffu) << 12) | s;

  c->sched[s] = when;
  c->id[s] = msgid;
  msgpack_pack_array(pk, 4);
  msgpack_pack_int(pk, 0);
  msgpack_pack_uint32(pk, msgid);
  if (ph->method == M_PING) {
    pack_str(pk, "ping");
    msgpack_pack_array(pk, 0);
    return;
  }
  pack_str(pk, "search");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 4);
  pack_str(pk, "collection");
  pack_str(pk, COLL);
  pack_str(pk, "vector");
  pack_vector(pk, ph->q + ((c->j + seq * ph->nconn) % ph->nq) * ph->dim, ph->dim);
  pack_str(pk, "k");
  msgpack_pack_int(pk, K);
  pack_str(pk, "ef");
  msgpack_pack_int(pk, ph->ef);
}

/* Check one response and retire its request. */
static void on_response(conn *c, const msgpack_object *o, double now) {
  const msgpack_object *a;
  uint32_t msgid, s;

  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
      o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      o->via.array.ptr[0].via.u64 != 1 ||
      o->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      o->via.array.ptr[1].via.u64 > UINT32_MAX) {
    conn_error(c, "%s", "a response is not [1, msgid, error, result]");
    return;
  }
  a = o->via.array.ptr;
  msgid = (uint32_t)a[1].via.u64;
  s = msgid & (SLOTS - 1);
  if (c->id[s] != msgid) {
    conn_error(c, "%s", "a response's msgid matches no request in flight");
    return;
  }
  c->id[s] = UINT32_MAX;
  c->freel[c->nfree++] = (uint16_t)s;
  if (a[2].type != MSGPACK_OBJECT_NIL) {
    char m[160] = "an error response";
    if (a[2].type == MSGPACK_OBJECT_MAP)
      for (uint32_t i = 0; i < a[2].via.map.size; i++) {
        const msgpack_object_kv *kv = &a[2].via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->val.type == MSGPACK_OBJECT_STR &&
            kv->key.via.str.size == 7 && !memcmp(kv->key.via.str.ptr, "message", 7))
          snprintf(m, sizeof m, "error: %.*s", (int)kv->val.via.str.size, kv->val.via.str.ptr);
      }
    conn_error(c, "%s", m);
    return;
  }
  if (c->ph->method == M_PING ? a[3].type != MSGPACK_OBJECT_STR || a[3].via.str.size != 4 ||
                                    memcmp(a[3].via.str.ptr, "pong", 4)
                              : a[3].type != MSGPACK_OBJECT_ARRAY || a[3].via.array.size != K) {
    conn_error(c, "%s",
               c->ph->method == M_PING ? "ping did not return \"pong\""
                                       : "search did not return k hits");
    return;
  }
  samples_add(&c->lat, now - c->sched[s]);
  if (now <= c->ph->t_end) {
    c->count++;
    atomic_fetch_add(&c->ph->done, 1);
  }
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void *conn_run(void *arg) {
  conn *c = arg;
  phase *ph = c->ph;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacker up;
  msgpack_unpacked res;
  uint64_t seq = 0;
  size_t cap = ph->open_loop ? SLOTS : ph->pipeline;

  for (size_t s = 0; s < SLOTS; s++) {
    c->freel[s] = (uint16_t)(SLOTS - 1 - s);
    c->id[s] = UINT32_MAX;
  }
  c->nfree = SLOTS;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  if (!msgpack_unpacker_init(&up, 1 << 16))
    die("memory", "out of memory");
  msgpack_unpacked_init(&res);
  sleep_until(ph->t_start);
  for (;;) {
    double now = bu_now(), wait;
    size_t inflight = SLOTS - c->nfree;
    int sending = now < ph->t_end;
    struct timespec ts;
    fd_set rd;
    int n;

    msgpack_sbuffer_clear(&sb);
    if (sending && !ph->open_loop) {
      for (; inflight < cap; inflight++)
        enqueue(c, &pk, seq++, now);
    } else if (sending) {
      for (; inflight < cap; inflight++) {
        double t = ph->t_start + ((double)c->j + (double)seq * (double)ph->nconn) / ph->rate;
        if (t > now || t >= ph->t_end)
          break;
        enqueue(c, &pk, seq++, t);
      }
    }
    if (sb.size && send_all(c->fd, sb.data, sb.size)) {
      conn_lost(c, "send: %s", strerror(errno));
      break;
    }
    if (!sending && inflight == 0)
      break;
    if (!sending && now > ph->t_end + DRAIN_S) {
      conn_lost(c, "%s", "requests left unanswered");
      break;
    }
    /* Wait for responses, or until the next request is due. */
    if (!sending || !ph->open_loop || inflight >= cap)
      wait = (sending ? ph->t_end : ph->t_end + DRAIN_S) - now;
    else
      wait = ph->t_start + ((double)c->j + (double)seq * (double)ph->nconn) / ph->rate - now;
    if (wait > 0.1)
      wait = 0.1;
    if (wait < 0)
      wait = 0;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(wait * 1e9);
    FD_ZERO(&rd);
    FD_SET(c->fd, &rd);
    n = pselect(c->fd + 1, &rd, NULL, NULL, &ts, NULL);
    if (n < 0 && errno != EINTR) {
      conn_error(c, "select: %s", strerror(errno));
      break;
    }
    if (n > 0) {
      ssize_t r;
      if (msgpack_unpacker_buffer_capacity(&up) < 1 << 15 &&
          !msgpack_unpacker_reserve_buffer(&up, 1 << 16))
        die("memory", "out of memory");
      r = recv(c->fd, msgpack_unpacker_buffer(&up), msgpack_unpacker_buffer_capacity(&up), 0);
      if (r <= 0) {
        conn_lost(c, "%s", r == 0 ? "the server closed the connection" : strerror(errno));
        break;
      }
      msgpack_unpacker_buffer_consumed(&up, (size_t)r);
      now = bu_now();
      for (;;) {
        msgpack_unpack_return ur = msgpack_unpacker_next(&up, &res);
        if (ur == MSGPACK_UNPACK_SUCCESS)
          on_response(c, &res.data, now);
        else if (ur == MSGPACK_UNPACK_CONTINUE)
          break;
        else {
          conn_error(c, "%s", "the server sent bytes that are not MessagePack");
          goto out;
        }
      }
    }
  }
out:
  msgpack_unpacked_destroy(&res);
  msgpack_unpacker_destroy(&up);
  msgpack_sbuffer_destroy(&sb);
  return NULL;
}

static int connect_lo(int port) {
  struct sockaddr_in sa = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

  if (fd < 0)
    die("socket", strerror(errno));
  if (fd >= FD_SETSIZE)
    die("socket", "descriptor too large for select()");
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa))
    die("connect to 127.0.0.1", strerror(errno));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Run one phase over fresh connections; `name` NULL means a warm-up. */
static void run_phase(const opts *o, int port, phase *ph, double seconds, const char *name,
                      const char *key, result *r) {
  conn **cs = xmalloc(o->conns * sizeof *cs);
  pthread_t *th = xmalloc(o->conns * sizeof *th);
  samples *parts = xmalloc(o->conns * sizeof *parts);

  ph->nconn = o->conns;
  atomic_store(&ph->done, 0);
  for (size_t j = 0; j < o->conns; j++) {
    cs[j] = calloc(1, sizeof **cs);
    if (cs[j] == NULL)
      die("memory", "out of memory");
    cs[j]->ph = ph;
    cs[j]->j = j;
    cs[j]->fd = connect_lo(port);
  }
  ph->t_start = bu_now() + 0.05;
  ph->t_end = ph->t_start + seconds;
  for (size_t j = 0; j < o->conns; j++)
    if (pthread_create(&th[j], NULL, conn_run, cs[j]))
      die("pthread_create", strerror(errno));
  while (bu_now() < ph->t_end) {
    double el = bu_now() - ph->t_start;
    bu_progress(g_progress, PROG, "%s %.1f/%.0f s, %.0f/s", name ? name : "warm-up", el, seconds,
                el > 0 ? (double)atomic_load(&ph->done) / el : 0.0);
    sleep_until(bu_now() + 0.25);
  }
  bu_progress(g_progress, PROG, "%s: draining", name ? name : "warm-up");
  *r = (result){.phase = name, .key = key, .offered = ph->open_loop ? ph->rate : 0};
  for (size_t j = 0; j < o->conns; j++) {
    pthread_join(th[j], NULL);
    close(cs[j]->fd);
    r->count += cs[j]->count;
    if (cs[j]->errors && r->errors == 0)
      memcpy(r->first_error, cs[j]->first_error, sizeof r->first_error);
    r->errors += cs[j]->errors;
    parts[j] = cs[j]->lat;
    free(cs[j]);
  }
  r->qps = (double)r->count / seconds;
  finish_latency(r, parts, o->conns);
  free(parts);
  free(th);
  free(cs);
}

/* ---- 5. report --------------------------------------------------------------------------------
 */

static void print_row(const result *r) {
  char off[32] = "-";
  if (r->offered > 0)
    snprintf(off, sizeof off, "%.0f", r->offered);
  printf("%-22s %12s %12.0f %9.3f %9.3f %9.3f %8llu\n", r->phase, off, r->qps, r->p50, r->p99,
         r->p999, (unsigned long long)r->errors);
}

static json_t *num_or_null(double x) {
  return isfinite(x) ? json_real(x) : json_null();
}

static void json_row(FILE *f, const opts *o, const result *r) {
  json_t *j = json_object();
  json_object_set_new(j, "bench", json_string("server"));
  json_object_set_new(j, "phase", json_string(r->key));
  json_object_set_new(j, "dataset", json_string("fashion-mnist"));
  json_object_set_new(j, "n", json_integer((json_int_t)o->n));
  json_object_set_new(j, "dim", json_integer(784));
  json_object_set_new(j, "index", json_string(o->spec));
  json_object_set_new(j, "max_batch", json_integer((json_int_t)o->max_batch));
  json_object_set_new(j, "k", json_integer(K));
  json_object_set_new(j, "ef", json_integer(o->ef));
  json_object_set_new(j, "threads", json_integer((json_int_t)o->threads));
  json_object_set_new(j, "connections", json_integer((json_int_t)o->conns));
  json_object_set_new(j, "pipeline", json_integer((json_int_t)o->pipeline));
  json_object_set_new(j, "seconds", json_real(o->seconds));
  json_object_set_new(j, "offered_qps", r->offered > 0 ? json_real(r->offered) : json_null());
  json_object_set_new(j, "qps", json_real(r->qps));
  json_object_set_new(j, "count", json_integer((json_int_t)r->count));
  json_object_set_new(j, "errors", json_integer((json_int_t)r->errors));
  json_object_set_new(j, "p50_ms", num_or_null(r->p50));
  json_object_set_new(j, "p99_ms", num_or_null(r->p99));
  json_object_set_new(j, "p999_ms", num_or_null(r->p999));
  if (r->errors)
    json_object_set_new(j, "first_error", json_string(r->first_error));
  json_dumpf(j, f, JSON_COMPACT);
  fputc('\n', f);
  json_decref(j);
}

int cmd_bench_server(int argc, char **argv) {
  opts o = {0};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  char dbdir[4200], outp[4200], logp[4200];
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  result res[5];
  phase ph;
  float *q = NULL;
  size_t nq, dim;
  double load_s, build_s, ratio;
  char msg[512];
  FILE *jf = NULL;
  vs_db *db;
  int rc, port, st;
  uint64_t errors = 0;

  o.threads = ncpu > 0 ? (size_t)ncpu : 4;
  o.conns = 16;
  o.pipeline = 8;
  o.seconds = 5;
  o.n = 60000;
  o.ef = 64;
  o.spec = "HNSW32";
  o.max_batch = 32;
  rc = parse_opts(argc, argv, &o);
  if (rc) {
    if (rc < 0)
      usage(stderr);
    return rc < 0 ? 2 : 0;
  }
  g_progress = isatty(STDERR_FILENO);
  if (o.json && (jf = fopen(o.json, "w")) == NULL) {
    fprintf(stderr, "vsearch: %s: %s\n", o.json, strerror(errno));
    return 1;
  }
  snprintf(g_root, sizeof g_root, "%s/vsearch-bench-server.XXXXXX", tmp);
  if (mkdtemp(g_root) == NULL) {
    fprintf(stderr, "vsearch: create %s: %s\n", g_root, strerror(errno));
    g_root[0] = 0;
    if (jf)
      fclose(jf);
    return 1;
  }
  snprintf(dbdir, sizeof dbdir, "%s/db", g_root);
  snprintf(outp, sizeof outp, "%s/server.out", g_root);
  snprintf(logp, sizeof logp, "%s/server.log", g_root);

  /* 1 and 2: in process. */
  db = load(&o, dbdir, &load_s, &build_s);
  bu_progress(g_progress, PROG, "reading %s", TEST_FILE);
  rc = ds_read_vectors(TEST_FILE, "idx", 0, SIZE_MAX, &q, &nq, &dim, msg, sizeof msg);
  if (rc)
    die(TEST_FILE, msg);
  if (dim != 784 || nq == 0)
    die(TEST_FILE, "not 784-d images");
  measure_inprocess(&o, db, q, nq, dim, &res[0]);
  vs_db_close(db);

  /* 3 and 4: through the server. */
  port = start_server(&o, o.max_batch, dbdir, outp, logp);
  ph = (phase){.method = M_PING, .pipeline = o.pipeline, .q = q, .nq = nq, .dim = dim, .ef = o.ef};
  run_phase(&o, port, &ph, o.seconds, "ping", "ping", &res[1]);
  ph.method = M_SEARCH;
  run_phase(&o, port, &ph, WARMUP_S, NULL, NULL, &res[2]);
  errors += res[2].errors;
  if (res[2].errors) {
    bu_progress_done(g_progress);
    fprintf(stderr, "%s: warm-up: %llu errors, the first: %s\n", PROG,
            (unsigned long long)res[2].errors, res[2].first_error);
  }
  run_phase(&o, port, &ph, o.seconds, "search peak (closed)", "search_peak", &res[2]);
  ph.open_loop = 1;
  ph.rate = res[2].qps / 2;
  if (ph.rate > 0)
    run_phase(&o, port, &ph, o.seconds, "search 50% (open)", "search_half", &res[3]);
  else
    res[3] = (result){
        .phase = "search 50% (open)", .key = "search_half", .p50 = NAN, .p99 = NAN, .p999 = NAN};

  /* 5. */
  bu_progress(g_progress, PROG, "stopping the server");
  st = stop_server(logp);
  /* The same peak without dynamic batching. */
  if (o.max_batch > 1) {
    int st2;
    port = start_server(&o, 1, dbdir, outp, logp);
    ph.open_loop = 0;
    run_phase(&o, port, &ph, WARMUP_S, NULL, NULL, &res[4]);
    errors += res[4].errors;
    run_phase(&o, port, &ph, o.seconds, "search peak, batch 1", "search_peak_unbatched", &res[4]);
    st2 = stop_server(logp);
    st = st ? st : st2;
  }
  bu_progress_done(g_progress);
  ratio = res[0].qps > 0 ? res[2].qps / res[0].qps : 0;
  printf("# vsearch bench server: Fashion-MNIST %zu x 784, l2, %s, k=%d, ef=%d;\n"
         "# %zu threads (in-process threads = server --threads), %zu connections x %zu "
         "pipelined, --max-batch %zu, %g s a phase, loopback; load %.1f s, build %.1f s\n",
         o.n, o.spec, K, o.ef, o.threads, o.conns, o.pipeline, o.max_batch, o.seconds, load_s,
         build_s);
  printf("%-22s %12s %12s %9s %9s %9s %8s\n", "phase", "offered/s", "achieved/s", "p50 ms",
         "p99 ms", "p99.9 ms", "errors");
  for (int i = 0; i < (o.max_batch > 1 ? 5 : 4); i++) {
    print_row(&res[i]);
    if (jf)
      json_row(jf, &o, &res[i]);
    errors += res[i].errors;
  }
  printf("server peak / in-process queries/s: %.2f (target >= 0.80)\n", ratio);
  if (o.max_batch > 1 && res[4].qps > 0)
    printf("dynamic batching: peak with --max-batch %zu / with --max-batch 1: %.2f\n", o.max_batch,
           res[2].qps / res[4].qps);
  for (int i = 0; i < (o.max_batch > 1 ? 5 : 4); i++)
    if (res[i].errors)
      printf("%s: %llu errors, the first: %s\n", res[i].phase, (unsigned long long)res[i].errors,
             res[i].first_error);
  if (st != 0)
    printf("the server did not exit cleanly on SIGTERM (wait status %d)\n", st);
  if (jf) {
    json_t *j = json_object();
    json_object_set_new(j, "bench", json_string("server"));
    json_object_set_new(j, "phase", json_string("ratio"));
    json_object_set_new(j, "threads", json_integer((json_int_t)o.threads));
    json_object_set_new(j, "server_peak_over_inprocess", json_real(ratio));
    if (o.max_batch > 1 && res[4].qps > 0)
      json_object_set_new(j, "batched_peak_over_unbatched", json_real(res[2].qps / res[4].qps));
    json_object_set_new(j, "errors", json_integer((json_int_t)errors));
    json_object_set_new(j, "server_exit_status", json_integer(st));
    json_dumpf(j, jf, JSON_COMPACT);
    fputc('\n', jf);
    json_decref(j);
    fclose(jf);
  }
  free(q);
  cleanup();
  return errors || st != 0 ? 1 : 0;
}
