/*
 * loop.c: the libuv loop of `vsearch serve`: connections, framing, dispatch.
 *
 * The loop thread owns every libuv handle and every connection.  It reads
 * bytes into a per-connection buffer, finds each message's end with
 * vs__mp_scan() (which checks every declared size against the bytes that
 * could follow, the nesting depth and the message size limit before
 * msgpack-c allocates anything), copies the message out, decodes it with
 * msgpack-c and checks the MessagePack-RPC envelope [0, msgid, method,
 * params].  ping, auth and stats are answered here; every other method goes
 * to the thread pool with uv_queue_work().  The worker runs the method
 * (methods.c) and packs the whole response into the request's buffer; the
 * loop thread writes it in the after-work callback.  Responses therefore go
 * out in completion order, each carrying its request's msgid.
 *
 * A connection is freed only when its handle is closed AND no request of it
 * is in flight, so a worker's request never points at freed memory; a
 * response whose connection went away is dropped.  A message that is not
 * valid MessagePack-RPC gets one error response and puts the connection in
 * the draining state: nothing more is read, and it closes once its
 * requests in flight are answered and every write has completed.  Shutdown
 * (SIGINT/SIGTERM) drains every connection the same way after closing the
 * listener; uv_run() returns when the last handle is closed.
 *
 * Memory: cfg->max_memory bounds what the connections hold between them:
 * their read buffers, and each request in flight (its bytes, and 24 bytes
 * for each msgpack object it decodes to, what msgpack-c spends).  A
 * message that would need a read buffer beyond the budget is refused
 * `overloaded` and its connection closed (it cannot be read without the
 * room); a request that would take the budget past its limit is answered
 * `overloaded`, the connection staying open, unless nothing else is in
 * flight (so one message under the size limit always gets through).
 * Responses waiting to be sent are bounded per connection (below).
 *
 * Backpressure: a connection stops reading (and framing what it has read)
 * while it has PIPELINE_MAX requests in flight, WRITES_MAX responses or
 * more than WRITE_QUEUE_MAX bytes waiting to be sent;
 * beyond INFLIGHT_PER_THREAD requests per worker thread in the whole server,
 * new requests are answered "overloaded" at once.
 *
 * Dynamic batching: a `search` request is also put on the server's batch
 * queue when it is handed to the pool.  The worker that picks up a queued
 * request takes it and more from the queue, its share (the queue divided
 * by the worker threads, so that every core gets some) up to
 * cfg->max_batch, and runs them together (vs__request_run_batch: plain
 * searches of one collection and shape become one vs_search_batch, whose
 * segments answer all of them in one FAISS call).  A worker that picks up
 * a request already taken returns at once and goes on to the next; the
 * request is answered by whichever comes last, its after-work callback or
 * the end of its batch (which then hands it to the loop through an async
 * handle).  Nothing waits for a batch to fill: an idle server runs each
 * search alone, a busy one finds its queue holding several.  Batches run
 * on one OpenMP thread, and OpenBLAS (a Flat segment's matrix product) on
 * one thread: the pool's threads share the cores.  Left to its own pool,
 * OpenBLAS ran a batch on every core beside the other workers: on
 * Fashion-MNIST (`vsearch bench server --spec S`, measured before this
 * call was added), batching gained 2.9x instead of 3.6x to 4.0x on Flat,
 * and lost 19% on IVF256,Flat instead of gaining 7% to 22%.
 *
 * Metrics: with cfg->metrics_file set, a timer on the loop thread formats
 * the statistics in Prometheus text format every METRICS_PERIOD_MS and a
 * worker writes them (a slow disk never stalls the loop); they are written
 * once at start and once more after the last connection closed at
 * shutdown.  Each write goes to PATH.tmp, which is then renamed over PATH,
 * so a scraper (node_exporter's textfile collector, say) never reads a
 * half-written file.
 */
#include <arpa/inet.h>
#include <cblas.h> /* OpenBLAS's: openblas_set_num_threads() */
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "engine/mpscan.h"
#include "engine/query.h"
#include "server/rpc.h"

#define READ_CHUNK (64u << 10)
#define PIPELINE_MAX 128
#define WRITE_QUEUE_MAX (16u << 20)
/* Responses waiting to be written, per connection: the loop answers some
 * requests itself (ping, stats, auth, errors), so requests in flight alone
 * do not bound them. */
#define WRITES_MAX 256
#define INFLIGHT_PER_THREAD 256
#define PREAUTH_MAX 1024
#define METRICS_PERIOD_MS 1000

typedef struct server server;
typedef struct conn conn;

struct conn {
  uv_tcp_t tcp;
  server *srv;
  conn *prev, *next;
  uint64_t id;
  char peer[64];
  uint8_t *buf; /* bytes read and not yet framed */
  size_t len, cap;
  unsigned inflight; /* requests on the thread pool */
  unsigned writes;   /* uv_write calls not yet completed */
  int reading, draining, closed, close_done, authed;
  int stalled;            /* framing stopped for unsent responses: resume as they go */
  int over_budget;        /* its buffer could not grow within cfg->max_memory */
  uint64_t notify_failed; /* notifications that failed (only the first is logged) */
  _Atomic int gone;       /* closed: read by the workers (reads-only requests are then skipped) */
  /* The scan of the incomplete message at the start of buf, kept so that
   * each read scans only the new bytes (not the whole prefix again). */
  vs__mp_scanner scan;
  int scanning;
  uint64_t last_ns; /* when it last sent bytes (or connected) */
};

struct server {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  uv_timer_t metrics_timer;
  int metrics_failing; /* the last metrics write failed (logged once) */
  int metrics_busy;    /* a worker is writing the metrics file */
  vs_db *db;
  const vs_server_config *cfg;
  vs__stats *stats;
  conn *conns;
  unsigned n_conns;
  uint64_t next_id, total_conns;
  unsigned inflight, inflight_max;
  int stopping;
  uint64_t started_ns, stopping_ns;
  uv_timer_t house_timer; /* timeouts, once a second */
  /* The batch queue (see the file comment), shared with the workers. */
  pthread_mutex_t bmu;
  struct req *bhead, *btail; /* queued */
  size_t blen;
  struct req *bdone;                 /* answered by a batch after their after-work callback */
  uv_async_t bdone_async;            /* tells the loop about bdone */
  _Atomic uint64_t batches, batched; /* batches of 2 or more, and their searches */
  uint64_t abandoned;                /* reads-only requests skipped: their connection closed */
  size_t mem;                        /* bytes held: read buffers and requests in flight */
  uint64_t mem_refused;              /* messages and requests refused for the memory budget */
};

typedef struct req {
  uv_work_t work;
  server *srv;
  conn *c;
  const vs__method *m;
  uint32_t msgid;
  uint8_t *bytes;
  msgpack_unpacked msg;
  const msgpack_object *args;
  msgpack_sbuffer out;
  int rc;
  uint64_t t0;
  int notify;        /* a notification: run, never answered */
  int batchable;     /* a search, on the batch queue when handed to the pool */
  int bstate;        /* B_* under srv->bmu */
  int after_seen;    /* its after-work callback ran before its batch ended (bmu) */
  int abandoned;     /* not run: its connection closed first (see vs__method.reads_only) */
  size_t cost;       /* its share of srv->mem */
  struct req *bnext; /* on the batch queue, or on bdone */
} req;

enum { B_QUEUED = 1, B_TAKEN, B_DONE };

typedef struct wreq {
  uv_write_t w;
  conn *c;
  char *data;
} wreq;

/* One log line on stderr: a UTC timestamp and the event. */
static void say(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void say(const char *fmt, ...) {
  char line[512], ts[32];
  time_t now = time(NULL);
  struct tm tm;
  va_list ap;

  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s vsearch serve: %s\n", ts, line);
}

static void update_reading(conn *c);
static void pump(conn *c);

/* ---- connection lifetime ------------------------------------------------ */

static void maybe_free(conn *c) {
  if (!c->close_done || c->inflight > 0)
    return;
  c->srv->mem -= c->cap;
  free(c->buf);
  free(c);
}

static void on_close(uv_handle_t *h) {
  conn *c = h->data;
  server *s = c->srv;

  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->close_done = 1;
  maybe_free(c);
}

static void close_conn(conn *c, const char *why) {
  if (c->closed)
    return;
  c->closed = 1;
  atomic_store(&c->gone, 1);
  c->draining = 1;
  c->srv->n_conns--;
  say("connection %llu closed (%s)", (unsigned long long)c->id, why);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void maybe_close(conn *c) {
  if (c->draining && !c->closed && c->inflight == 0 && c->writes == 0)
    close_conn(c, c->srv->stopping ? "server stopping" : "drained");
}

/* ---- writing ------------------------------------------------------------ */

static void on_write(uv_write_t *w, int status) {
  wreq *wr = (wreq *)w;
  conn *c = wr->c;

  free(wr->data);
  free(wr);
  c->writes--;
  if (c->closed)
    return;
  if (status < 0) {
    say("connection %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
    close_conn(c, "write error");
    return;
  }
  if (c->stalled)
    pump(c); /* framing waited for responses to go: go on with what is buffered */
  update_reading(c);
  maybe_close(c);
}

/* Send the bytes of `sb` (taking them over) to `c`, unless it is closed. */
static void send_sbuf(conn *c, msgpack_sbuffer *sb) {
  size_t size;
  wreq *wr;
  uv_buf_t b;
  int rc;

  /* Releasing leaves `sb` empty, so its owner may destroy it again. */
  if (c->closed || !sb->data) {
    free(msgpack_sbuffer_release(sb));
    return;
  }
  wr = malloc(sizeof *wr);
  if (!wr) {
    free(msgpack_sbuffer_release(sb));
    close_conn(c, "out of memory");
    return;
  }
  wr->c = c;
  size = sb->size;
  wr->data = msgpack_sbuffer_release(sb);
  b = uv_buf_init(wr->data, (unsigned)size);
  rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    free(wr->data);
    free(wr);
    close_conn(c, "write error");
    return;
  }
  c->writes++;
}

static void pack_error(msgpack_sbuffer *sb, uint32_t msgid, int rc, const char *message) {
  msgpack_packer pk;

  msgpack_sbuffer_clear(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_uint32(&pk, msgid);
  msgpack_pack_map(&pk, 2);
  vs__pack_cstr(&pk, "code");
  vs__pack_cstr(&pk, vs_err_wire(rc));
  vs__pack_cstr(&pk, "message");
  vs__pack_cstr(&pk, message && *message ? message : vs_strerror(rc));
  msgpack_pack_nil(&pk);
}

static void send_error(conn *c, uint32_t msgid, int rc, const char *message) {
  msgpack_sbuffer sb;

  msgpack_sbuffer_init(&sb);
  pack_error(&sb, msgid, rc, message);
  send_sbuf(c, &sb);
}

/* A message that is not MessagePack-RPC: one error, then the connection
 * drains and closes. */
static void protocol_error(conn *c, uint32_t msgid, int rc, const char *message) {
  say("connection %llu: protocol error (%s): %s", (unsigned long long)c->id, vs_err_wire(rc),
      message);
  send_error(c, msgid, rc, message);
  c->draining = 1;
  update_reading(c);
}

/* ---- requests ------------------------------------------------------------ */

static void req_free(req *r) {
  r->srv->mem -= r->cost;
  msgpack_unpacked_destroy(&r->msg);
  msgpack_sbuffer_destroy(&r->out);
  free(r->bytes);
  free(r);
}

/* Finish a request: write its response (packed in r->out), count it. */
static void req_done(req *r) {
  server *s = r->srv;
  size_t mi = r->m ? (size_t)(r->m - vs__methods) : vs__n_methods;

  if (r->abandoned)
    s->abandoned++; /* no answer, and its connection is closed: send_sbuf drops it */
  else
    vs__stats_record(s->stats, mi, uv_hrtime() - r->t0, r->rc != VS_OK);
  if (r->notify) { /* nobody waits for an answer: a failure is logged instead */
    if (r->rc != VS_OK && !r->abandoned && r->c->notify_failed++ == 0)
      say("connection %llu: notification %s failed: %s (its further failures go unlogged)",
          (unsigned long long)r->c->id, r->m ? r->m->name : "(unknown method)", vs_err_wire(r->rc));
    req_free(r);
    return;
  }
  send_sbuf(r->c, &r->out);
  req_free(r);
}

/* Set up `call` for method m and start its response [1, msgid, nil, ...]
 * in `out`. */
static void call_begin(vs__call *call, msgpack_packer *pk, vs_db *db, const vs_server_config *cfg,
                       const vs__method *m, uint32_t msgid, const msgpack_object *args,
                       msgpack_zone *zone, msgpack_sbuffer *out) {
  memset(call, 0, sizeof *call);
  call->db = db;
  call->cfg = cfg;
  call->method = m->name;
  call->args = args;
  call->zone = zone;
  call->pk = pk;
  msgpack_sbuffer_clear(out);
  msgpack_packer_init(pk, out, msgpack_sbuffer_write);
  msgpack_pack_array(pk, 4);
  msgpack_pack_uint8(pk, 1);
  msgpack_pack_uint32(pk, msgid);
  msgpack_pack_nil(pk);
}

/* Finish the response of a call that returned rc: its error, or the result
 * checked against the message limit and for a torn pack. */
static int call_end(const vs__call *call, const vs_server_config *cfg, uint32_t msgid, int rc,
                    msgpack_sbuffer *out) {
  if (rc != VS_OK) {
    pack_error(out, msgid, rc, call->err.code ? call->err.message : NULL);
  } else if (out->size > cfg->max_message) {
    char msg[96];
    snprintf(msg, sizeof msg, "the response would take %zu bytes, over the message limit",
             out->size);
    pack_error(out, msgid, rc = VS_ETOOLARGE, msg);
  } else {
    /* msgpack-c's packer ignores a failed buffer growth: never send a torn
     * response. */
    size_t used;
    if (vs__mp_scan((const uint8_t *)out->data, out->size, out->size, VS__MP_DEPTH_CAP, &used) !=
            VS_OK ||
        used != out->size)
      pack_error(out, msgid, rc = VS_ENOMEM, "out of memory while packing the response");
  }
  return rc;
}

int vs__request_run(vs_db *db, const vs_server_config *cfg, const vs__method *m, uint32_t msgid,
                    const msgpack_object *args, msgpack_zone *zone, msgpack_sbuffer *out) {
  msgpack_packer pk;
  vs__call call;
  int rc;

  call_begin(&call, &pk, db, cfg, m, msgid, args, zone, out);
  rc = vs__args_check(&call, m->args);
  if (rc == VS_OK)
    rc = m->fn(&call);
  return call_end(&call, cfg, msgid, rc, out);
}

/* ---- batches of searches ------------------------------------------------ */

/* Can a and b be one vs_search_batch? */
static int same_shape(const vs__plain_search *a, const vs__plain_search *b) {
  return strcmp(a->name, b->name) == 0 && vs__search_same_shape(&a->p, &b->p);
}

static void run_alone(vs_db *db, const vs_server_config *cfg, vs__batch_item *it) {
  it->rc = vs__request_run(db, cfg, it->m, it->msgid, it->args, it->zone, it->out);
}

/* What vs__request_run_batch keeps for one request. */
typedef struct bslot {
  vs__plain_search ps;
  vs__call call;
  msgpack_packer pk;
  int state; /* 0: runs alone, 1: plain, not answered yet, 2: answered */
} bslot;

size_t vs__request_run_batch(vs_db *db, const vs_server_config *cfg, vs__batch_item *it, size_t n) {
  bslot *sl = calloc(n, sizeof *sl);
  vs_search_params *params = calloc(n, sizeof *params);
  size_t *member = calloc(n, sizeof *member), *off = calloc(n + 1, sizeof *off), together = 0;

  for (size_t i = 0; i < n && sl && params && member && off; i++) {
    call_begin(&sl[i].call, &sl[i].pk, db, cfg, it[i].m, it[i].msgid, it[i].args, it[i].zone,
               it[i].out);
    sl[i].state = vs__args_check(&sl[i].call, it[i].m->args) == VS_OK &&
                  vs__search_plain(&sl[i].call, &sl[i].ps);
  }
  /* Group the plain searches by collection and shape, in arrival order. */
  for (size_t i = 0; i < n && sl && params && member && off; i++) {
    vs_error err = VS_ERROR_INIT;
    vs_hit *hits = NULL;
    size_t g = 0;

    if (sl[i].state != 1)
      continue;
    for (size_t j = i; j < n && g < VS_BATCH_MAX; j++)
      if (sl[j].state == 1 && same_shape(&sl[i].ps, &sl[j].ps)) {
        member[g] = j;
        params[g++] = sl[j].ps.p;
      }
    if (g < 2 || vs_search_batch(db, sl[i].ps.name, params, g, &hits, off, &err) != VS_OK) {
      for (size_t m = 0; m < g; m++) /* alone, each gets its own answer */
        sl[member[m]].state = 0;
      continue;
    }
    for (size_t m = 0; m < g; m++) {
      size_t j = member[m];
      vs__pack_hits(&sl[j].pk, hits + off[m], off[m + 1] - off[m], sl[j].ps.p.with, 0);
      it[j].rc = call_end(&sl[j].call, cfg, it[j].msgid, VS_OK, it[j].out);
      sl[j].state = 2;
    }
    together += g;
    vs_free(hits);
  }
  for (size_t i = 0; i < n; i++) /* all of them when an allocation failed */
    if (!sl || sl[i].state != 2)
      run_alone(db, cfg, &it[i]);
  free(sl);
  free(params);
  free(member);
  free(off);
  return together;
}

/* Take r off the batch queue.  bmu held. */
static void bq_remove(server *s, req *r) {
  req *prev = NULL;

  for (req *q = s->bhead; q; prev = q, q = q->bnext)
    if (q == r) {
      if (prev)
        prev->bnext = r->bnext;
      else
        s->bhead = r->bnext;
      if (s->btail == r)
        s->btail = prev;
      r->bnext = NULL;
      s->blen--;
      return;
    }
}

/* Take r and its share of the oldest other queued searches, run them, and
 * mark them done; those whose after-work callback already ran go to the
 * loop through bdone.  bmu held on entry and on return. */
static void run_batch(server *s, req *r) {
  size_t threads = s->cfg->threads ? s->cfg->threads : 1;
  size_t cap = (s->blen + threads - 1) / threads, n = 0, together, ndone = 0;
  int omp_threads;
  req **taken;
  vs__batch_item *items;

  cap = cap < 1 ? 1 : cap > s->cfg->max_batch ? s->cfg->max_batch : cap;
  taken = malloc(cap * sizeof *taken);
  items = calloc(cap, sizeof *items);
  bq_remove(s, r);
  r->bstate = B_TAKEN;
  if (taken && items) {
    taken[n++] = r;
    while (n < cap && s->bhead) {
      req *q = s->bhead;
      bq_remove(s, q);
      q->bstate = B_TAKEN;
      taken[n++] = q;
    }
  }
  pthread_mutex_unlock(&s->bmu);
  /* The pool's threads share the cores.  The setting lasts for the thread's
   * life: put it back for the thread's next jobs (a rebuild, say). */
  omp_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  if (n < 2) {
    if ((r->abandoned = atomic_load(&r->c->gone)) == 0)
      r->rc = vs__request_run(s->db, s->cfg, r->m, r->msgid, r->args, r->msg.zone, &r->out);
  } else {
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
      req *q = taken[i];
      if ((q->abandoned = atomic_load(&q->c->gone)) == 0)
        items[live++] = (vs__batch_item){q->m, q->msgid, q->args, q->msg.zone, &q->out, 0};
    }
    together = vs__request_run_batch(s->db, s->cfg, items, live);
    for (size_t i = 0, j = 0; i < n; i++)
      if (!taken[i]->abandoned)
        taken[i]->rc = items[j++].rc;
    if (together) {
      atomic_fetch_add(&s->batches, 1);
      atomic_fetch_add(&s->batched, together);
    }
  }
  omp_set_num_threads(omp_threads);
  pthread_mutex_lock(&s->bmu);
  r->bstate = B_DONE;
  for (size_t i = 0; i < n; i++) {
    req *q = taken[i];
    q->bstate = B_DONE;
    if (q->after_seen) {
      q->bnext = s->bdone;
      s->bdone = q;
      ndone++;
    }
  }
  if (ndone)
    uv_async_send(&s->bdone_async); /* thread-safe */
  free(taken);
  free(items);
}

static void work_cb(uv_work_t *w) {
  req *r = w->data;
  server *s = r->srv;

  if (!r->batchable) {
    if (r->m->reads_only && atomic_load(&r->c->gone))
      r->abandoned = 1;
    else
      r->rc = vs__request_run(s->db, s->cfg, r->m, r->msgid, r->args, r->msg.zone, &r->out);
    return;
  }
  pthread_mutex_lock(&s->bmu);
  if (r->bstate == B_QUEUED)
    run_batch(s, r);
  pthread_mutex_unlock(&s->bmu); /* else: in another worker's batch */
}

/* A request's response is in r->out: send it and count it. */
static void req_complete(req *r) {
  conn *c = r->c;
  server *s = r->srv;

  s->inflight--;
  c->inflight--;
  if (r->rc == VS_EINTERNAL || r->rc == VS_ENOMEM || r->rc == VS_EIO || r->rc == VS_ENOSPC ||
      r->rc == VS_ECORRUPT)
    say("connection %llu: %s failed: %s", (unsigned long long)c->id, r->m->name,
        vs_strerror(r->rc));
  req_done(r);
  if (c->closed) {
    maybe_free(c);
    return;
  }
  pump(c);
  maybe_close(c);
}

static void after_work_cb(uv_work_t *w, int status) {
  req *r = w->data;
  server *s = r->srv;

  (void)status; /* requests are never cancelled */
  if (r->batchable) {
    int later;
    pthread_mutex_lock(&s->bmu);
    later = r->bstate != B_DONE; /* its batch is still running */
    r->after_seen = later;
    pthread_mutex_unlock(&s->bmu);
    if (later)
      return; /* the batch hands it over through bdone */
  }
  req_complete(r);
}

/* Requests whose batch ended after their after-work callback. */
static void on_bdone(uv_async_t *a) {
  server *s = a->data;
  req *list;

  pthread_mutex_lock(&s->bmu);
  list = s->bdone;
  s->bdone = NULL;
  pthread_mutex_unlock(&s->bmu);
  while (list) {
    req *r = list;
    list = r->bnext;
    req_complete(r);
  }
}

/* Constant-time comparison of a token with the server's. */
static int token_ok(const server *s, const msgpack_object *o) {
  const char *t = s->cfg->token;
  size_t tl = strlen(t), n;
  unsigned diff;

  if (!o || o->type != MSGPACK_OBJECT_STR)
    return 0;
  n = o->via.str.size;
  diff = (unsigned)(n != tl);
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned)(uint8_t)o->via.str.ptr[i] ^ (unsigned)(uint8_t)t[i < tl ? i : 0];
  return diff == 0;
}

/* ping, auth and stats, answered on the loop thread. */
static void run_on_loop(req *r) {
  server *s = r->srv;
  msgpack_packer pk;
  vs__call call;

  memset(&call, 0, sizeof call);
  call.method = r->m->name;
  call.args = r->args;
  call.zone = r->msg.zone;
  call.pk = &pk;
  msgpack_packer_init(&pk, &r->out, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_uint32(&pk, r->msgid);
  msgpack_pack_nil(&pk);
  r->rc = vs__args_check(&call, r->m->args);
  if (r->rc == VS_OK && !strcmp(r->m->name, "ping")) {
    vs__pack_cstr(&pk, "pong");
  } else if (r->rc == VS_OK && !strcmp(r->m->name, "auth")) {
    if (!s->cfg->token) {
      msgpack_pack_true(&pk);
    } else if (token_ok(s, vs__arg(&call, "token"))) {
      r->c->authed = 1;
      say("connection %llu authenticated", (unsigned long long)r->c->id);
      msgpack_pack_true(&pk);
    } else {
      say("connection %llu: authentication failed", (unsigned long long)r->c->id);
      r->rc = vs__fail(&call, VS_EAUTH, "wrong token");
      r->c->draining = 1; /* one guess per connection: no online brute force */
    }
  } else if (r->rc == VS_OK) { /* stats */
    msgpack_pack_map(&pk, 10 + vs__stats_pack(s->stats, NULL));
    vs__pack_cstr(&pk, "uptime_s");
    msgpack_pack_double(&pk, (double)(uv_hrtime() - s->started_ns) / 1e9);
    vs__pack_cstr(&pk, "connections");
    msgpack_pack_uint32(&pk, s->n_conns);
    vs__pack_cstr(&pk, "connections_total");
    msgpack_pack_uint64(&pk, s->total_conns);
    vs__pack_cstr(&pk, "in_flight");
    msgpack_pack_uint32(&pk, s->inflight);
    vs__pack_cstr(&pk, "threads");
    msgpack_pack_uint32(&pk, s->cfg->threads);
    vs__pack_cstr(&pk, "search_batches");
    msgpack_pack_uint64(&pk, atomic_load(&s->batches));
    vs__pack_cstr(&pk, "batched_searches");
    msgpack_pack_uint64(&pk, atomic_load(&s->batched));
    vs__pack_cstr(&pk, "abandoned_requests");
    msgpack_pack_uint64(&pk, s->abandoned);
    vs__pack_cstr(&pk, "memory_bytes");
    msgpack_pack_uint64(&pk, s->mem);
    vs__pack_cstr(&pk, "memory_refusals");
    msgpack_pack_uint64(&pk, s->mem_refused);
    vs__stats_pack(s->stats, &pk);
  }
  if (r->rc != VS_OK)
    pack_error(&r->out, r->msgid, r->rc, call.err.message);
  req_done(r);
}

/* A protocol error found by vs__request_parse(): `why` holds its message. */
static int bad_envelope(vs_error *err, int code, const char *why) {
  err->code = code;
  snprintf(err->message, sizeof err->message, "%s", why);
  return code;
}

int vs__request_parse(msgpack_unpacked *msg, const uint8_t *p, size_t n, vs__request *rq,
                      vs_error *err) {
  const msgpack_object *o, *a;
  msgpack_unpack_return ur;
  size_t off = 0;

  memset(rq, 0, sizeof *rq);
  ur = msgpack_unpack_next(msg, (const char *)p, n, &off);
  if (ur != MSGPACK_UNPACK_SUCCESS || off != n)
    return bad_envelope(err, ur == MSGPACK_UNPACK_NOMEM_ERROR ? VS_ETOOLARGE : VS_EINVAL,
                        "message is not valid MessagePack");
  o = &msg->data;
  if (o->type != MSGPACK_OBJECT_ARRAY)
    return bad_envelope(err, VS_EINVAL, "a request is an array [0, msgid, method, params]");
  a = o->via.array.ptr;
  if (o->via.array.size == 3 && a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
      a[0].via.u64 == 2) { /* a notification [2, method, params] */
    if (a[1].type != MSGPACK_OBJECT_STR)
      return bad_envelope(err, VS_EINVAL, "method must be a string");
    if (a[2].type != MSGPACK_OBJECT_ARRAY)
      return bad_envelope(err, VS_EINVAL, "params must be an array");
    rq->notify = 1;
    rq->name = a[1].via.str.ptr;
    rq->name_len = a[1].via.str.size;
    rq->params = &a[2];
    rq->m = vs__method_find(rq->name, rq->name_len);
    return VS_OK;
  }
  if (o->via.array.size >= 2 && a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
      a[1].via.u64 <= UINT32_MAX)
    rq->msgid = (uint32_t)a[1].via.u64;
  if (o->via.array.size != 4 || a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 != 0)
    return bad_envelope(err, VS_EINVAL,
                        "not a request: expected [0, msgid, method, params] (message type 0) "
                        "or a notification [2, method, params]");
  if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > UINT32_MAX)
    return bad_envelope(err, VS_EINVAL, "msgid must be an unsigned 32-bit integer");
  if (a[2].type != MSGPACK_OBJECT_STR)
    return bad_envelope(err, VS_EINVAL, "method must be a string");
  if (a[3].type != MSGPACK_OBJECT_ARRAY)
    return bad_envelope(err, VS_EINVAL, "params must be an array");
  rq->name = a[2].via.str.ptr;
  rq->name_len = a[2].via.str.size;
  rq->params = &a[3];
  rq->m = vs__method_find(rq->name, rq->name_len);
  return VS_OK;
}

int vs__request_args(vs__request *rq, vs_error *err) {
  const msgpack_object *pa = rq->params;

  if (!rq->m) {
    err->code = VS_EMETHOD;
    snprintf(err->message, sizeof err->message, "unknown method '%.*s'",
             (int)(rq->name_len > 64 ? 64 : rq->name_len), rq->name);
    return VS_EMETHOD;
  }
  if (pa->via.array.size > 1 ||
      (pa->via.array.size == 1 && pa->via.array.ptr[0].type != MSGPACK_OBJECT_MAP &&
       pa->via.array.ptr[0].type != MSGPACK_OBJECT_NIL))
    return bad_envelope(err, VS_EINVAL, "params must be [] or [{named arguments}]");
  if (pa->via.array.size == 1 && pa->via.array.ptr[0].type == MSGPACK_OBJECT_MAP)
    rq->args = &pa->via.array.ptr[0];
  return VS_OK;
}

/* Decode and dispatch one scanned message of `n` bytes.  Returns 0, or -1
 * when it was not MessagePack-RPC (the connection is then draining). */
static int handle_message(conn *c, const uint8_t *p, size_t n, size_t objects) {
  server *s = c->srv;
  vs_error err = VS_ERROR_INIT;
  vs__request rq;
  req *r;
  int rc;

  r = calloc(1, sizeof *r);
  if (!r || !(r->bytes = malloc(n))) {
    free(r);
    protocol_error(c, 0, VS_ENOMEM, "out of memory");
    return -1;
  }
  memcpy(r->bytes, p, n);
  r->srv = s;
  r->cost = n + 24 * objects; /* the copy, and msgpack-c's objects */
  s->mem += r->cost;
  r->c = c;
  r->t0 = uv_hrtime();
  r->work.data = r;
  msgpack_sbuffer_init(&r->out);
  msgpack_unpacked_init(&r->msg);
  rc = vs__request_parse(&r->msg, r->bytes, n, &rq, &err);
  if (rc != VS_OK) {
    req_free(r);
    protocol_error(c, rq.msgid, rc, err.message);
    return -1;
  }
  r->msgid = rq.msgid;
  r->m = rq.m;
  r->notify = rq.notify;

  /* From here on the message is valid MessagePack-RPC: errors are
   * answered and the connection stays open. */
  if (s->cfg->token && !c->authed && !(r->m && !strcmp(r->m->name, "auth"))) {
    r->rc = VS_EAUTH;
    pack_error(&r->out, rq.msgid, VS_EAUTH, "call auth with the server's token first");
    req_done(r);
    return 0;
  }
  rc = vs__request_args(&rq, &err);
  if (rc != VS_OK) {
    r->rc = rc;
    pack_error(&r->out, rq.msgid, rc, err.message);
    req_done(r);
    return 0;
  }
  r->args = rq.args;
  if (r->m->where == VS__ON_LOOP) {
    run_on_loop(r);
    return 0;
  }
  if (s->inflight >= s->inflight_max) {
    r->rc = VS_EOVERLOAD;
    pack_error(&r->out, rq.msgid, VS_EOVERLOAD, "too many requests in flight; retry later");
    req_done(r);
    return 0;
  }
  if (s->inflight > 0 && s->mem > s->cfg->max_memory) {
    s->mem_refused++;
    r->rc = VS_EOVERLOAD;
    pack_error(&r->out, rq.msgid, VS_EOVERLOAD,
               "the server's memory budget (--max-memory) is in use; retry later");
    req_done(r);
    return 0;
  }
  if (s->cfg->max_batch > 1 && !strcmp(r->m->name, "search")) {
    /* Queued and handed to the pool under one lock: no batch can take it
     * before we know the pool took it. */
    r->batchable = 1;
    pthread_mutex_lock(&s->bmu);
    r->bstate = B_QUEUED;
    if (s->btail)
      s->btail->bnext = r;
    else
      s->bhead = r;
    s->btail = r;
    s->blen++;
  }
  rc = uv_queue_work(&s->loop, &r->work, work_cb, after_work_cb);
  if (r->batchable) {
    if (rc != 0)
      bq_remove(s, r);
    pthread_mutex_unlock(&s->bmu);
  }
  if (rc != 0) {
    r->rc = VS_EINTERNAL;
    pack_error(&r->out, rq.msgid, VS_EINTERNAL, "could not queue the request");
    req_done(r);
    return 0;
  }
  s->inflight++;
  c->inflight++;
  return 0;
}

/* ---- reading ------------------------------------------------------------ */

static size_t conn_limit(const conn *c) {
  const vs_server_config *cfg = c->srv->cfg;

  if (cfg->token && !c->authed)
    return cfg->max_message < PREAUTH_MAX ? cfg->max_message : PREAUTH_MAX;
  return cfg->max_message;
}

/* Frame and dispatch every complete message buffered, as long as the
 * connection may take more work. */
static void pump(conn *c) {
  size_t off = 0;

  c->stalled = 0;
  while (!c->draining && c->inflight < PIPELINE_MAX && off < c->len) {
    size_t used = 0, limit = conn_limit(c);

    if (c->writes >= WRITES_MAX ||
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= WRITE_QUEUE_MAX) {
      c->stalled = 1;
      break;
    }
    int rc;

    if (off > 0 || !c->scanning)
      vs__mp_scanner_init(&c->scan);
    rc = vs__mp_scan_resume(&c->scan, c->buf + off, c->len - off, limit, c->srv->cfg->max_depth,
                            c->srv->cfg->max_objects, &used);
    /* Incomplete: the message moves to the start of buf below, where the
     * next call resumes its scan. */
    c->scanning = rc == VS__MP_MORE;
    if (rc == VS__MP_MORE)
      break;
    if (rc != VS_OK) {
      char m[128];

      if (rc == VS_ETOOLARGE)
        snprintf(m, sizeof m,
                 "message over the limit of %zu bytes or %zu objects, a declared size "
                 "larger than the message can hold, or nesting deeper than %u",
                 limit, c->srv->cfg->max_objects, c->srv->cfg->max_depth);
      else
        snprintf(m, sizeof m, "message is not valid MessagePack");
      protocol_error(c, 0, rc, m);
      break;
    }
    if (handle_message(c, c->buf + off, used, c->scan.objects))
      break;
    off += used;
  }
  if (c->draining) {
    c->len = 0;
    c->scanning = 0;
  } else if (off) {
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
  }
  update_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn *c = h->data;

  (void)hint;
  if (c->cap - c->len < READ_CHUNK) {
    size_t ncap = c->cap ? c->cap * 2 : READ_CHUNK;
    uint8_t *nb;

    while (ncap - c->len < READ_CHUNK)
      ncap *= 2;
    /* Room for the usual small messages is always given; a large one's
     * only within the budget. */
    if (ncap > 2 * READ_CHUNK && c->srv->mem + (ncap - c->cap) > c->srv->cfg->max_memory) {
      c->over_budget = 1;
      *b = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
      return;
    }
    nb = realloc(c->buf, ncap);
    if (!nb) {
      *b = uv_buf_init(NULL, 0);
      return;
    }
    c->srv->mem += ncap - c->cap;
    c->buf = nb;
    c->cap = ncap;
  }
  *b = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  conn *c = st->data;

  (void)b;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      c->draining = 1;
      update_reading(c);
      maybe_close(c);
    } else if (nread == UV_ENOBUFS && c->over_budget) {
      c->srv->mem_refused++;
      protocol_error(c, 0, VS_EOVERLOAD,
                     "the server's memory budget (--max-memory) is in use: message refused; "
                     "retry later");
      maybe_close(c);
    } else {
      close_conn(c, uv_strerror((int)nread));
    }
    return;
  }
  c->len += (size_t)nread;
  c->last_ns = uv_hrtime();
  pump(c);
  maybe_close(c);
  /* A buffer that grew for one large message shrinks back once it is gone. */
  if (c->len == 0 && c->cap > 4 * READ_CHUNK && !c->closed) {
    c->srv->mem -= c->cap;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
  }
}

static void update_reading(conn *c) {
  int want = !c->draining && !c->closed && !c->srv->stopping && c->inflight < PIPELINE_MAX &&
             c->writes < WRITES_MAX &&
             uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < WRITE_QUEUE_MAX;

  if (c->closed)
    return;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* ---- accepting, signals, run ------------------------------------------- */

static void on_connection(uv_stream_t *l, int status) {
  server *s = l->data;
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  conn *c;

  if (status < 0) {
    say("accept failed: %s", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->srv = s;
  c->tcp.data = c;
  uv_tcp_init(&s->loop, &c->tcp);
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    c->closed = 1;
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  c->id = ++s->next_id;
  c->last_ns = uv_hrtime();
  s->total_conns++;
  s->n_conns++;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  uv_tcp_nodelay(&c->tcp, 1);
  snprintf(c->peer, sizeof c->peer, "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    char ip[48] = "?";
    int port = 0;

    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  }
  say("connection %llu from %s", (unsigned long long)c->id, c->peer);
  if (s->n_conns > s->cfg->max_connections) {
    send_error(c, 0, VS_EOVERLOAD, "too many connections");
    c->draining = 1;
    maybe_close(c);
    return;
  }
  update_reading(c);
}

static void on_signal(uv_signal_t *h, int signum) {
  server *s = h->data;

  if (s->stopping) {
    say("%s again: closing every connection now", signum == SIGINT ? "SIGINT" : "SIGTERM");
    for (conn *c = s->conns; c; c = c->next)
      close_conn(c, "forced");
    return;
  }
  s->stopping = 1;
  s->stopping_ns = uv_hrtime();
  say("%s: stopping; %u connections, %u requests in flight",
      signum == SIGINT ? "SIGINT" : "SIGTERM", s->n_conns, s->inflight);
  uv_close((uv_handle_t *)&s->listener, NULL);
  for (conn *c = s->conns; c; c = c->next) {
    c->draining = 1;
    update_reading(c);
    maybe_close(c);
  }
}

/* ---- timeouts --------------------------------------------------------- */

#define SECOND_NS 1000000000ull
#define PREAUTH_IDLE_S 10 /* to authenticate, when a token is required */

/* Once a second: close connections silent for too long (idle, holding a
 * partial message, or not authenticating), and every connection once a
 * shutdown has waited cfg->shutdown_timeout for clients that do not read. */
static void on_house_timer(uv_timer_t *t) {
  server *s = t->data;
  uint64_t now = uv_hrtime();
  const vs_server_config *cfg = s->cfg;
  conn *c, *next;

  for (c = s->conns; c; c = next) {
    uint64_t quiet = (now - c->last_ns) / SECOND_NS;
    next = c->next;
    if (c->closed)
      continue;
    if (s->stopping && (now - s->stopping_ns) / SECOND_NS >= cfg->shutdown_timeout)
      close_conn(c, "shutdown deadline");
    else if (cfg->token && !c->authed && quiet >= PREAUTH_IDLE_S)
      close_conn(c, "not authenticated in time");
    else if (c->len && quiet >= cfg->read_timeout)
      close_conn(c, "partial message timed out");
    else if (!c->len && !c->inflight && !c->writes && quiet >= cfg->idle_timeout)
      close_conn(c, "idle");
  }
}

/* ---- metrics ------------------------------------------------------------ */

/* The Prometheus text metrics, formatted in memory (malloc'd, *len
 * bytes), or NULL. */
static char *metrics_text(server *s, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  int bad;

  if (!f)
    return NULL;
  fprintf(f,
          "# HELP vsearch_uptime_seconds Seconds since the server started listening.\n"
          "# TYPE vsearch_uptime_seconds gauge\n"
          "vsearch_uptime_seconds %.3f\n"
          "# HELP vsearch_connections Open client connections.\n"
          "# TYPE vsearch_connections gauge\n"
          "vsearch_connections %u\n"
          "# HELP vsearch_connections_total Client connections accepted.\n"
          "# TYPE vsearch_connections_total counter\n"
          "vsearch_connections_total %llu\n"
          "# HELP vsearch_requests_in_flight Requests queued or running on the workers.\n"
          "# TYPE vsearch_requests_in_flight gauge\n"
          "vsearch_requests_in_flight %u\n"
          "# HELP vsearch_threads Worker threads.\n"
          "# TYPE vsearch_threads gauge\n"
          "vsearch_threads %u\n"
          "# HELP vsearch_search_batches_total Batches of concurrent searches answered together.\n"
          "# TYPE vsearch_search_batches_total counter\n"
          "vsearch_search_batches_total %llu\n"
          "# HELP vsearch_batched_searches_total Searches answered in those batches.\n"
          "# TYPE vsearch_batched_searches_total counter\n"
          "vsearch_batched_searches_total %llu\n"
          "# HELP vsearch_abandoned_requests_total Queries not run: their connection had closed.\n"
          "# TYPE vsearch_abandoned_requests_total counter\n"
          "vsearch_abandoned_requests_total %llu\n",
          (double)(uv_hrtime() - s->started_ns) / 1e9, s->n_conns,
          (unsigned long long)s->total_conns, s->inflight, s->cfg->threads,
          (unsigned long long)atomic_load(&s->batches),
          (unsigned long long)atomic_load(&s->batched), (unsigned long long)s->abandoned);
  bad = vs__stats_prometheus(s->stats, f) != 0;
  if (fclose(f) != 0 || bad) {
    free(text);
    return NULL;
  }
  return text;
}

/* Write text to path through PATH.tmp and a rename: 0, or an errno. */
static int metrics_put(const char *path, const char *text, size_t len) {
  char tmp[4096];
  FILE *f;
  int e = 0;

  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return ENAMETOOLONG;
  if (!(f = fopen(tmp, "w")))
    return errno;
  if (fwrite(text, 1, len, f) != len || fflush(f) != 0)
    e = errno ? errno : EIO;
  if (fclose(f) != 0 && !e)
    e = errno ? errno : EIO;
  if (!e && rename(tmp, path) != 0)
    e = errno;
  if (e)
    remove(tmp);
  return e;
}

/* Log a failure when it starts and when it ends, not every second. */
static void metrics_outcome(server *s, int e) {
  const char *path = s->cfg->metrics_file;

  if (e && !s->metrics_failing)
    say("metrics: cannot write %s: %s", path, strerror(e));
  else if (!e && s->metrics_failing)
    say("metrics: writing %s again", path);
  s->metrics_failing = e != 0;
}

/* Write the metrics file now, on this thread (at start and at the end). */
static void write_metrics(server *s) {
  size_t len = 0;
  char *text = metrics_text(s, &len);

  metrics_outcome(s, text ? metrics_put(s->cfg->metrics_file, text, len) : ENOMEM);
  free(text);
}

/* Every second: the loop formats the text (microseconds), a worker writes
 * the file, so a slow disk never stalls the loop.  One write at a time; a
 * tick that finds the last one still going is skipped. */
typedef struct metrics_job {
  uv_work_t work;
  server *s;
  char *text;
  size_t len;
  int err;
} metrics_job;

static void metrics_work(uv_work_t *w) {
  metrics_job *j = w->data;
  j->err = metrics_put(j->s->cfg->metrics_file, j->text, j->len);
}

static void metrics_done(uv_work_t *w, int status) {
  metrics_job *j = w->data;

  (void)status;
  metrics_outcome(j->s, j->err);
  j->s->metrics_busy = 0;
  free(j->text);
  free(j);
}

static void on_metrics_timer(uv_timer_t *t) {
  server *s = t->data;
  metrics_job *j;

  if (s->metrics_busy)
    return;
  if (!(j = calloc(1, sizeof *j)) || !(j->text = metrics_text(s, &j->len))) {
    free(j);
    metrics_outcome(s, ENOMEM);
    return;
  }
  j->s = s;
  j->work.data = j;
  if (uv_queue_work(&s->loop, &j->work, metrics_work, metrics_done) != 0) {
    free(j->text);
    free(j);
    return;
  }
  s->metrics_busy = 1;
}

void vs_server_config_init(vs_server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->host = "127.0.0.1";
  cfg->port = 7700;
  cfg->max_message = 64u << 20;
  cfg->max_k = VS_K_MAX;
  cfg->max_points = 10000;
  cfg->max_depth = 32;
  cfg->max_objects = 10000000;
  cfg->idle_timeout = 300;
  cfg->read_timeout = 30;
  cfg->max_connections = 1024;
  cfg->threads = 4;
  cfg->max_batch = 32;
  cfg->shutdown_timeout = 10;
  cfg->max_memory = (size_t)1 << 30;
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int vs_server_run(vs_db *db, const vs_server_config *cfg) {
  struct sockaddr_storage addr, bound;
  int bl = sizeof bound, rc;
  char ip[48] = "?";
  server s;

  memset(&s, 0, sizeof s);
  s.db = db;
  s.cfg = cfg;
  s.inflight_max = INFLIGHT_PER_THREAD * (cfg->threads ? cfg->threads : 4);
  if (strchr(cfg->host, ':'))
    rc = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr);
  else
    rc = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
  if (rc) {
    say("bad listen address %s: %s", cfg->host, uv_strerror(rc));
    return VS_EINVAL;
  }
  if (cfg->max_batch < 1 || cfg->max_batch > VS_BATCH_MAX) {
    say("max_batch must be in 1..%d", VS_BATCH_MAX);
    return VS_EINVAL;
  }
  s.stats = vs__stats_new(vs__n_methods);
  if (!s.stats || uv_loop_init(&s.loop)) {
    vs__stats_free(s.stats);
    return VS_ENOMEM;
  }
  pthread_mutex_init(&s.bmu, NULL);
  openblas_set_num_threads(1);
  uv_tcp_init(&s.loop, &s.listener);
  s.listener.data = &s;
  rc = uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&s.listener, 511, on_connection);
  if (rc) {
    say("cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
    uv_close((uv_handle_t *)&s.listener, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    vs__stats_free(s.stats);
    pthread_mutex_destroy(&s.bmu);
    return VS_EIO;
  }
  s.started_ns = uv_hrtime();
  uv_async_init(&s.loop, &s.bdone_async, on_bdone);
  s.bdone_async.data = &s;
  /* Like the timers, it does not keep the loop running by itself: a batch
   * sends to it before its own request's work completes, so the loop is
   * alive until both have been handled. */
  uv_unref((uv_handle_t *)&s.bdone_async);
  /* The first metrics are on disk before the address is printed. */
  if (cfg->metrics_file) {
    write_metrics(&s);
    uv_timer_init(&s.loop, &s.metrics_timer);
    s.metrics_timer.data = &s;
    uv_timer_start(&s.metrics_timer, on_metrics_timer, METRICS_PERIOD_MS, METRICS_PERIOD_MS);
    /* Like the signals, the timer alone does not keep the server running. */
    uv_unref((uv_handle_t *)&s.metrics_timer);
  }
  uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &bl);
  if (bound.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
  else
    uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
  {
    int port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&bound)->sin_port);

    printf("listening on %s%s%s:%d\n", bound.ss_family == AF_INET6 ? "[" : "", ip,
           bound.ss_family == AF_INET6 ? "]" : "", port);
    fflush(stdout);
    say("listening on %s:%d with %u threads%s", ip, port, cfg->threads,
        cfg->token ? ", token required" : "");
  }
  uv_timer_init(&s.loop, &s.house_timer);
  s.house_timer.data = &s;
  uv_timer_start(&s.house_timer, on_house_timer, 1000, 1000);
  uv_unref((uv_handle_t *)&s.house_timer);
  uv_signal_init(&s.loop, &s.sigint);
  uv_signal_init(&s.loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  /* The signal handles must not keep the loop alive once the listener and
   * the connections are gone. */
  uv_unref((uv_handle_t *)&s.sigint);
  uv_unref((uv_handle_t *)&s.sigterm);

  uv_run(&s.loop, UV_RUN_DEFAULT);

  /* Every work item has completed; a batch's last hand-over may still wait
   * on the async handle (which does not keep the loop alive). */
  on_bdone(&s.bdone_async);
  uv_walk(&s.loop, walk_close, NULL);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&s.loop))
    say("event loop still had handles at exit");
  /* The final numbers: every request answered, every connection closed. */
  if (cfg->metrics_file)
    write_metrics(&s);
  say("stopped after %llu connections", (unsigned long long)s.total_conns);
  vs__stats_free(s.stats);
  pthread_mutex_destroy(&s.bmu);
  return VS_OK;
}
