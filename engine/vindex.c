/*
 * vindex.c: each collection's vector index in memory, kept equal to LMDB.
 *
 * A vs__vix holds a list of sealed segments (immutable FAISS indexes, each
 * with a tombstone bitmap of its deleted internal ids) and the fresh
 * segment: the newest point versions, as plain float rows searched exactly.
 * LMDB stays the source of truth; the vix is derived from it in two ways:
 *
 *  - The manifest ("index.<cid>" in the meta table, see storage.h) names the
 *    segment files and their tombstones and the log position `seq` up to
 *    which every upsert is in a segment.  It carries a generation (ordered)
 *    and a random token (identity), so two processes that sealed at the same
 *    time never mistake each other's manifests for their own.
 *  - The change log after `seq` is replayed: an upsert of a pid that no
 *    segment holds appends its stored vector to the fresh rows; a delete
 *    becomes a tombstone wherever the pid lives.  Replay is idempotent.
 *
 * vs__vix_acquire() runs inside the caller's read transaction: when the
 * manifest there is newer than the vix's (another process rebuilt or
 * sealed), it reloads; when the log there is ahead of `applied`, it replays.
 * So every acknowledged write, from this process or another, is visible to
 * the next search.  A vix only moves forward: when it is already past the
 * caller's snapshot (another thread caught it up with a newer one), the
 * caller retries in a new transaction, so a search's index state and its
 * snapshot always agree point for point.
 *
 * Filter sub-indexes (further down) are segments over the points one filter
 * passes, built for filters whose walks in the main segments keep missing.
 *
 * Sealing runs on one background thread per database.  It copies the fresh
 * rows under the read lock, builds and writes a segment with no lock held,
 * then, under the write lock, moves the tombstones that arrived meanwhile
 * onto the new segment, drops the sealed rows from the fresh segment and
 * bumps the generation; last, it commits the manifest in LMDB, compare-and-
 * swap on the generation it started from.  If that fails (someone else
 * committed first) the vix is marked stale and reloads at the next search.
 *
 * Locks: v->lock (rwlock) is taken inside a transaction (txn_lock held), and
 * never held while starting one; db->vindex_lock guards the vix list and the
 * worker's queue.
 */
#include "engine/vindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <roaring/roaring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/distance.h"
#include "index/segment.h"
#include "index/spec.h"

#define MANIFEST_VERSION 1
#define MERGE_SEGMENTS 8 /* more sealed segments than this: merge them all */
#define APPROX_FACTOR 4  /* over-fetch from PQ/SQ segments before exact re-scoring */
#define SCAN_BLOCK 1024  /* fresh rows per distance call */
#define DEFAULT_EF 64    /* HNSW efSearch when a query names none */

/* A filter sub-index: a segment over the points that passed one filter
 * when it was built (see "filter sub-indexes"). */
typedef struct fentry {
  uint64_t digest;
  vs__segment *seg;
  roaring_bitmap_t *covered; /* the pids in seg */
  struct fentry *next;
} fentry;

#define FCACHE_MAX 16             /* sub-indexes per collection (oldest evicted) */
#define FCACHE_NOTES 32           /* filters whose misses are counted */
#define FCACHE_AFTER 3            /* misses of one filter before it gets a sub-index */
#define FCACHE_MIN 1000           /* passing points worth a sub-index */
#define FCACHE_MAX_POINTS 2000000 /* and at most this many: each is a copy */

typedef struct vseg {
  vs__segment *s;
  roaring_bitmap_t *dead; /* internal ids deleted since the segment was built */
  char *file;             /* name in DIR/segments */
  uint64_t *id1;          /* per internal id: see "external ids" below */
} vseg;

struct vs__vix {
  pthread_rwlock_t lock;
  char name[VS_NAME_MAX + 1];
  uint32_t cid, dim;
  vs_metric metric;
  int stale;        /* reload at the next acquire */
  uint64_t gen;     /* manifest generation this state derives from (0: none) */
  uint64_t token;   /* and its identity */
  uint64_t applied; /* last log seq replayed */
  uint64_t epoch;   /* bumped whenever the fresh rows are rebuilt from scratch */
  vseg *segs;
  size_t nsegs;
  /* The fresh segment: rows in pid order (= log order). */
  float *fv;
  uint64_t *fpid, *fseq, *fid1;
  size_t fn, fcap;
  roaring_bitmap_t *fdead; /* deleted fresh rows */
  int queued;              /* on the worker's queue */
  int busy;                /* a seal or rebuild is running */
  /* Filter sub-indexes (see "filter sub-indexes" below): entries under
   * `lock`; misses and the pending request under db->vindex_lock. */
  fentry *fcache;
  size_t nfcache;
  struct {
    uint64_t digest;
    uint32_t misses;
  } fmiss[FCACHE_NOTES];
  uint64_t fwant;              /* digest of the filter to build for, 0: none */
  uint64_t fbuilding;          /* digest being built now, 0: none */
  roaring_bitmap_t *fwant_set; /* its passing points when asked */
  vs__vix *next;
};

typedef struct vs__vindex {
  vs__vix *list;
  pthread_t worker;
  int started;
  int stop;
  pthread_cond_t wake;
} vs__vindex;

static uint64_t new_token(void) {
  static _Atomic uint64_t counter;
  struct timespec ts;
  uint64_t x;

  clock_gettime(CLOCK_REALTIME, &ts);
  x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 40) ^
      (++counter * 0x9e3779b97f4a7c15ull);
  x ^= x >> 31;
  return x ? x : 1;
}

static int is_ip(vs_metric m) {
  return m != VS_METRIC_L2;
}

static void segments_path(const vs_db *db, char *buf, size_t cap, const char *file) {
  if (file)
    snprintf(buf, cap, "%s/segments/%s", db->dir, file);
  else
    snprintf(buf, cap, "%s/segments", db->dir);
}

/* ---- the fresh segment --------------------------------------------------------------- */

static void fresh_clear(vs__vix *v) {
  v->fn = 0;
  v->epoch++; /* a sealer's copy of the old rows no longer matches them */
  if (v->fdead)
    roaring_bitmap_clear(v->fdead);
}

static int fresh_push(vs__vix *v, uint64_t pid, uint64_t seq, uint64_t id1, const float *x) {
  if (v->fn == v->fcap) {
    size_t cap = v->fcap ? v->fcap * 2 : 1024;
    float *fv = vs__realloc(v->fv, cap * v->dim * sizeof(float));
    uint64_t *fpid, *fseq, *fid1;

    if (fv == NULL)
      return VS_ENOMEM;
    v->fv = fv;
    fpid = vs__realloc(v->fpid, cap * sizeof(uint64_t));
    if (fpid == NULL)
      return VS_ENOMEM;
    v->fpid = fpid;
    fseq = vs__realloc(v->fseq, cap * sizeof(uint64_t));
    if (fseq == NULL)
      return VS_ENOMEM;
    v->fseq = fseq;
    fid1 = vs__realloc(v->fid1, cap * sizeof(uint64_t));
    if (fid1 == NULL)
      return VS_ENOMEM;
    v->fid1 = fid1;
    v->fcap = cap;
  }
  memcpy(v->fv + v->fn * v->dim, x, v->dim * sizeof(float));
  if (v->metric == VS_METRIC_COSINE) {
    float *row = v->fv + v->fn * v->dim;
    float norm = sqrtf(vs__norm_sqr(row, v->dim));
    for (uint32_t j = 0; j < v->dim && norm > 0; j++)
      row[j] /= norm;
  }
  v->fpid[v->fn] = pid;
  v->fseq[v->fn] = seq;
  v->fid1[v->fn] = id1;
  v->fn++;
  return VS_OK;
}

static int64_t fresh_find(const vs__vix *v, uint64_t pid) {
  size_t lo = 0, hi = v->fn;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v->fpid[mid] < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < v->fn && v->fpid[lo] == pid ? (int64_t)lo : -1;
}

/* ---- segments ------------------------------------------------------------------------ */

static void vseg_free(vseg *s) {
  vs__segment_free(s->s);
  if (s->dead)
    roaring_bitmap_free(s->dead);
  vs__free(s->file);
  vs__free(s->id1);
}

static void segs_free(vs__vix *v) {
  for (size_t i = 0; i < v->nsegs; i++)
    vseg_free(&v->segs[i]);
  vs__free(v->segs);
  v->segs = NULL;
  v->nsegs = 0;
}

/* Where pid lives: segment index and internal id, or -1. */
static int seg_locate(const vs__vix *v, uint64_t pid, int64_t *internal) {
  for (size_t i = 0; i < v->nsegs; i++) {
    const vs__segment *s = v->segs[i].s;
    if (s->n && pid >= s->pids[0] && pid <= s->pids[s->n - 1] &&
        (*internal = vs__segment_find(s, pid)) >= 0)
      return (int)i;
  }
  return -1;
}

/* ---- external ids ---------------------------------------------------------------------
 *
 * A search's hits need their external ids, which live in the point records
 * (c<cid>.pts): one B-tree lookup per hit, about 1.5 us of a 10 us HNSW
 * query on bigann10k.  A pid's record never changes and pids are never
 * reused, so the vix keeps each indexed point's integer id beside its pid
 * (8 bytes a point), as id1 = id + 1; 0 stands for a string id (looked up
 * in the record as before) or a point already deleted.  Candidates carry
 * it, and since the vix a search acquires is exactly at the search's
 * snapshot, a candidate with an id needs no lookup at all (engine/query.h).
 */

/* id1 of rec, a point record. */
static uint64_t record_id1(const MDB_val *rec) {
  vs__prec pr;

  if (vs__point_parse(rec, &pr) || pr.id.kind != VS_ID_INT)
    return 0;
  return pr.id.num + 1;
}

/* Fill seg->id1 from the records of its pids, walking c<cid>.pts once over
 * the segment's pid range (both are in pid order). */
static int seg_ids(MDB_txn *txn, const vs__coll *c, vseg *sg, vs_error *err) {
  const vs__segment *s = sg->s;
  MDB_cursor *cur;
  MDB_val k, v;
  uint64_t first;
  int mrc;

  sg->id1 = vs__calloc(s->n ? s->n : 1, sizeof(uint64_t));
  if (sg->id1 == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  if (s->n == 0)
    return VS_OK;
  if ((mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur)))
    return vs__mdb_err(err, mrc, "read the point records");
  first = s->pids[0];
  k = (MDB_val){8, &first};
  mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  for (uint32_t i = 0; i < s->n && mrc == 0;) {
    uint64_t pid;

    memcpy(&pid, k.mv_data, 8);
    if (pid > s->pids[s->n - 1])
      break;
    while (i < s->n && s->pids[i] < pid)
      i++; /* deleted: stays 0 */
    if (i < s->n && s->pids[i] == pid)
      sg->id1[i++] = record_id1(&v);
    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return mrc == 0 || mrc == MDB_NOTFOUND ? VS_OK : vs__mdb_err(err, mrc, "read the point records");
}

/* ---- the manifest --------------------------------------------------------------------- */

static void manifest_key(uint32_t cid, char *buf, size_t cap, MDB_val *k) {
  vs__meta_key(k, buf, cap, "index.", cid);
}

/* Read generation and token, 0/0 when there is no manifest. */
static int manifest_head(vs_db *db, MDB_txn *txn, uint32_t cid, uint64_t *gen, uint64_t *token,
                         MDB_val *val, vs_error *err) {
  char buf[32];
  MDB_val k, v;
  int mrc;

  manifest_key(cid, buf, sizeof(buf), &k);
  *gen = *token = 0;
  mrc = mdb_get(txn, db->meta, &k, &v);
  if (mrc == MDB_NOTFOUND)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "read the index manifest");
  if (v.mv_size < 29 || ((const uint8_t *)v.mv_data)[0] != MANIFEST_VERSION)
    return vs__err(err, VS_ECORRUPT, "index manifest of collection %u is malformed", cid);
  memcpy(gen, (const uint8_t *)v.mv_data + 1, 8);
  memcpy(token, (const uint8_t *)v.mv_data + 9, 8);
  if (val)
    *val = v;
  return VS_OK;
}

/* Encode v's segments and tombstones with `seq` into a vs__malloc'd buffer. */
static int manifest_encode(const vs__vix *v, uint64_t gen, uint64_t token, uint64_t seq,
                           uint8_t **out, size_t *len) {
  size_t size = 1 + 8 + 8 + 8 + 4;
  uint32_t nsegs = (uint32_t)v->nsegs;
  uint8_t *p;

  for (size_t i = 0; i < v->nsegs; i++)
    size +=
        2 + strlen(v->segs[i].file) + 4 + roaring_bitmap_portable_size_in_bytes(v->segs[i].dead);
  p = vs__malloc(size);
  if (p == NULL)
    return VS_ENOMEM;
  *out = p;
  *len = size;
  *p++ = MANIFEST_VERSION;
  memcpy(p, &gen, 8), p += 8;
  memcpy(p, &token, 8), p += 8;
  memcpy(p, &seq, 8), p += 8;
  memcpy(p, &nsegs, 4), p += 4;
  for (size_t i = 0; i < v->nsegs; i++) {
    uint16_t nl = (uint16_t)strlen(v->segs[i].file);
    uint32_t tl = (uint32_t)roaring_bitmap_portable_size_in_bytes(v->segs[i].dead);

    memcpy(p, &nl, 2), p += 2;
    memcpy(p, v->segs[i].file, nl), p += nl;
    memcpy(p, &tl, 4), p += 4;
    roaring_bitmap_portable_serialize(v->segs[i].dead, (char *)p);
    p += tl;
  }
  return VS_OK;
}

/* Replace v's segments with the manifest's (bytes from disk: checked). */
static int manifest_load(vs_db *db, vs__vix *v, const MDB_val *val, uint64_t *seq, vs_error *err) {
  const uint8_t *p = val->mv_data, *end = p + val->mv_size;
  uint32_t nsegs;
  vseg *segs;
  int rc = VS_OK;

  memcpy(seq, p + 17, 8);
  memcpy(&nsegs, p + 25, 4);
  p += 29;
  if (nsegs > (size_t)(end - p) / 6)
    return vs__err(err, VS_ECORRUPT, "index manifest of '%s' is truncated", v->name);
  segs = vs__calloc(nsegs ? nsegs : 1, sizeof(*segs));
  if (segs == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < nsegs && rc == VS_OK; i++) {
    char path[4096], msg[VS_ERROR_MESSAGE_MAX];
    uint16_t nl;
    uint32_t tl;

    if (end - p < 2 || (memcpy(&nl, p, 2), (size_t)(end - p) < 2u + nl + 4u) || nl == 0) {
      rc = vs__err(err, VS_ECORRUPT, "index manifest of '%s' is truncated", v->name);
      break;
    }
    segs[i].file = vs__malloc(nl + 1u);
    if (segs[i].file == NULL) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      break;
    }
    memcpy(segs[i].file, p + 2, nl);
    segs[i].file[nl] = '\0';
    p += 2 + nl;
    memcpy(&tl, p, 4);
    p += 4;
    if (tl > (size_t)(end - p) || strchr(segs[i].file, '/') ||
        (segs[i].dead = roaring_bitmap_portable_deserialize_safe((const char *)p, tl)) == NULL) {
      rc = vs__err(err, VS_ECORRUPT, "index manifest of '%s' has a bad segment entry", v->name);
      break;
    }
    p += tl;
    segments_path(db, path, sizeof(path), segs[i].file);
    if (access(path, F_OK) != 0 && errno == ENOENT)
      rc = VS__RETRY; /* a rebuild replaced it after this snapshot began */
    else if (vs__segment_read(path, &segs[i].s, msg, sizeof(msg)))
      rc = vs__err(err, VS_EIO, "%s", msg);
    else if (segs[i].s->dim != v->dim)
      rc = vs__err(err, VS_ECORRUPT, "segment %s has dim %u, the collection %u", segs[i].file,
                   segs[i].s->dim, v->dim);
  }
  if (rc) {
    for (uint32_t i = 0; i < nsegs; i++)
      vseg_free(&segs[i]);
    vs__free(segs);
    return rc;
  }
  segs_free(v);
  v->segs = segs;
  v->nsegs = nsegs;
  return VS_OK;
}

/* ---- catching up with LMDB ----------------------------------------------------------- */

typedef struct replay_ctx {
  MDB_txn *txn;
  const vs__coll *c;
  vs__vix *v;
} replay_ctx;

static int replay_one(void *ctx, uint64_t seq, vs_change_op op, uint64_t pid, vs_error *err) {
  replay_ctx *rc = ctx;
  vs__vix *v = rc->v;
  int64_t at;
  int si;

  if (op == VS_CHANGE_UPSERT) {
    const float *x = NULL;
    int r;

    if (seg_locate(v, pid, &at) >= 0 || (v->fn && pid <= v->fpid[v->fn - 1]))
      return VS_OK; /* already indexed */
    r = vs__vector_get(rc->txn, rc->c, pid, &x, err);
    if (r == VS_ENOTFOUND) /* deleted later in the log */
      return VS_OK;
    if (r == VS_OK) {
      MDB_val k = {8, &pid}, rec;
      int mrc = mdb_get(rc->txn, rc->c->dbi[VS__DBI_PTS], &k, &rec);

      if (mrc && mrc != MDB_NOTFOUND)
        return vs__mdb_err(err, mrc, "read a point");
      if (fresh_push(v, pid, seq, mrc ? 0 : record_id1(&rec), x))
        r = vs__err(err, VS_ENOMEM, "out of memory indexing fresh points");
    }
    return r;
  }
  si = seg_locate(v, pid, &at);
  if (si >= 0)
    roaring_bitmap_add(v->segs[si].dead, (uint32_t)at);
  else if ((at = fresh_find(v, pid)) >= 0)
    roaring_bitmap_add(v->fdead, (uint32_t)at);
  return VS_OK;
}

/* Replay the log from v->applied + 1 to `last`. */
static int replay(MDB_txn *txn, const vs__coll *c, vs__vix *v, uint64_t last, vs_error *err) {
  replay_ctx ctx = {txn, c, v};
  int rc = vs__log_each(txn, c, v->applied, last, replay_one, &ctx, err);

  if (rc == VS_OK && v->applied < last)
    v->applied = last;
  return rc;
}

/* Load the manifest this transaction sees, then replay to `last`. */
static int reload(vs_db *db, MDB_txn *txn, const vs__coll *c, vs__vix *v, uint64_t last,
                  vs_error *err) {
  uint64_t gen, token, seq = 0;
  MDB_val val;
  int rc;

  rc = manifest_head(db, txn, c->cid, &gen, &token, &val, err);
  if (rc)
    return rc;
  if (gen) {
    rc = manifest_load(db, v, &val, &seq, err);
    for (size_t i = 0; i < v->nsegs && rc == VS_OK; i++)
      rc = seg_ids(txn, c, &v->segs[i], err);
    if (rc)
      return rc;
  } else {
    segs_free(v);
  }
  fresh_clear(v);
  v->gen = gen;
  v->token = token;
  v->applied = seq;
  v->stale = 0;
  return replay(txn, c, v, last, err);
}

/* ---- the index list and the background worker ------------------------------------------ */

static void *worker_main(void *arg);

static vs__vix *vix_new(const vs__coll *c) {
  vs__vix *v = vs__calloc(1, sizeof(*v));

  if (v == NULL)
    return NULL;
  if (pthread_rwlock_init(&v->lock, NULL)) {
    vs__free(v);
    return NULL;
  }
  v->fdead = roaring_bitmap_create();
  if (v->fdead == NULL) {
    pthread_rwlock_destroy(&v->lock);
    vs__free(v);
    return NULL;
  }
  strcpy(v->name, c->name);
  v->cid = c->cid;
  v->dim = c->dim;
  v->metric = c->metric;
  v->stale = 1;
  return v;
}

static void fentry_free(fentry *e) {
  vs__segment_free(e->seg);
  if (e->covered)
    roaring_bitmap_free(e->covered);
  vs__free(e);
}

static void vix_free(vs__vix *v) {
  for (fentry *e = v->fcache, *next; e; e = next) {
    next = e->next;
    fentry_free(e);
  }
  if (v->fwant_set)
    roaring_bitmap_free(v->fwant_set);
  segs_free(v);
  vs__free(v->fv);
  vs__free(v->fpid);
  vs__free(v->fseq);
  vs__free(v->fid1);
  roaring_bitmap_free(v->fdead);
  pthread_rwlock_destroy(&v->lock);
  vs__free(v);
}

/* The vix of c, made if needed, with the worker started.  vindex_lock held. */
static int vix_get(vs_db *db, const vs__coll *c, vs__vix **out, vs_error *err) {
  vs__vindex *vi = db->vindex;
  vs__vix *v;

  if (vi == NULL) {
    vi = vs__calloc(1, sizeof(*vi));
    if (vi == NULL || pthread_cond_init(&vi->wake, NULL)) {
      vs__free(vi);
      return vs__err(err, VS_ENOMEM, "out of memory");
    }
    db->vindex = vi;
  }
  for (v = vi->list; v; v = v->next)
    if (v->cid == c->cid) {
      *out = v;
      return VS_OK;
    }
  if (!vi->started && !(db->flags & VS_OPEN_READONLY)) {
    if (pthread_create(&vi->worker, NULL, worker_main, db))
      return vs__err(err, VS_ENOMEM, "cannot start the index thread");
    vi->started = 1;
  }
  v = vix_new(c);
  if (v == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  v->next = vi->list;
  vi->list = v;
  *out = v;
  return VS_OK;
}

static void schedule(vs_db *db, vs__vix *v) {
  pthread_mutex_lock(&db->vindex_lock);
  if (!v->queued && db->vindex && db->vindex->started) {
    v->queued = 1;
    pthread_cond_signal(&db->vindex->wake);
  }
  pthread_mutex_unlock(&db->vindex_lock);
}

int vs__vix_acquire(vs_db *db, MDB_txn *txn, const vs__coll *c, vs__vix **out, vs_error *err) {
  uint64_t gen, token, last;
  vs__state st;
  vs__vix *v;
  int rc;

  pthread_mutex_lock(&db->vindex_lock);
  rc = vix_get(db, c, &v, err);
  pthread_mutex_unlock(&db->vindex_lock);
  if (rc)
    return rc;
  if ((rc = manifest_head(db, txn, c->cid, &gen, &token, NULL, err)) ||
      (rc = vs__state_get(db, txn, c->cid, &st, err)))
    return rc;
  last = st.next_seq - 1;
  for (;;) {
    int newer, seal;

    pthread_rwlock_rdlock(&v->lock);
    newer = v->stale || gen > v->gen || (gen == v->gen && token != v->token);
    if (!newer && v->applied == last) {
      *out = v;
      return VS_OK;
    }
    pthread_rwlock_unlock(&v->lock);
    if (!newer && v->applied > last)
      return VS__RETRY; /* see vindex.h */

    pthread_rwlock_wrlock(&v->lock);
    newer = v->stale || gen > v->gen || (gen == v->gen && token != v->token);
    if (!newer && v->applied > last) {
      pthread_rwlock_unlock(&v->lock);
      return VS__RETRY;
    }
    rc = newer ? reload(db, txn, c, v, last, err) : replay(txn, c, v, last, err);
    if (rc)
      v->stale = 1; /* a partial replay must not be trusted */
    seal = rc == VS_OK && v->fn >= db->seal_threshold;
    pthread_rwlock_unlock(&v->lock);
    if (rc)
      return rc;
    if (seal)
      schedule(db, v);
  }
}

void vs__vix_release(vs__vix *v) {
  pthread_rwlock_unlock(&v->lock);
}

/* ---- search ------------------------------------------------------------------------------- */

typedef struct keep_ctx {
  const vs__segment *s;
  const roaring_bitmap_t *dead;
  vs__keep_fn keep;
  void *kctx;
} keep_ctx;

static int keep_internal(const void *ctx, int64_t id) {
  const keep_ctx *kc = ctx;

  if (id < 0 || (uint64_t)id >= kc->s->n)
    return 0;
  if (kc->dead && roaring_bitmap_contains(kc->dead, (uint32_t)id))
    return 0;
  return kc->keep == NULL || kc->keep(kc->kctx, kc->s->pids[id]);
}

/* A bounded max-heap on "worse", for the exact top k of the fresh rows. */
typedef struct cand {
  float score;
  uint64_t pid, id1;
} cand;

static int worse(const cand *a, const cand *b, int ip) {
  if (a->score != b->score)
    return ip ? a->score < b->score : a->score > b->score;
  return a->pid > b->pid;
}

static void heap_push(cand *h, size_t *n, size_t k, cand c, int ip) {
  size_t i;

  if (*n == k) { /* replace the root (the worst) if c is better */
    if (!worse(&h[0], &c, ip))
      return;
    i = 0;
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      const cand *x = &c;
      if (l < k && worse(&h[l], x, ip))
        m = l, x = &h[l];
      if (r < k && worse(&h[r], x, ip))
        m = r;
      if (m == i)
        break;
      h[i] = h[m];
      i = m;
    }
    h[i] = c;
    return;
  }
  i = (*n)++;
  while (i > 0 && worse(&h[(i - 1) / 2], &c, ip) == 0) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = c;
}

static int fresh_topk(const vs__vix *v, const float *q, size_t k, vs__keep_fn keep, void *kctx,
                      cand *heap, size_t *nheap) {
  float dist[SCAN_BLOCK];
  int ip = is_ip(v->metric);

  for (size_t base = 0; base < v->fn; base += SCAN_BLOCK) {
    size_t m = v->fn - base < SCAN_BLOCK ? v->fn - base : SCAN_BLOCK;

    if (ip)
      vs__ip_ny(dist, q, v->fv + base * v->dim, v->dim, m);
    else
      vs__l2sqr_ny(dist, q, v->fv + base * v->dim, v->dim, m);
    for (size_t i = 0; i < m; i++) {
      cand c = {dist[i], v->fpid[base + i], v->fid1[base + i]};
      if (roaring_bitmap_contains(v->fdead, (uint32_t)(base + i)))
        continue;
      if (keep && !keep(kctx, c.pid))
        continue;
      heap_push(heap, nheap, k, c, ip);
    }
  }
  return VS_OK;
}

int vs__vix_candidates_n(const vs__vix *v, const float *q, size_t nq, size_t k, int ef, int nprobe,
                         int threads, vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n,
                         int *short_of_k, vs_search_info *info, vs_error *err) {
  size_t cap = k, dcap = 0;
  cand *heap;
  float *dist = NULL;
  int64_t *labels = NULL;
  int rc = VS_OK;

  for (size_t qi = 0; qi < nq; qi++) {
    cands[qi] = NULL;
    n[qi] = 0;
    short_of_k[qi] = 0;
  }
  for (size_t i = 0; i < v->nsegs; i++) {
    size_t bound = k * APPROX_FACTOR + roaring_bitmap_get_cardinality(v->segs[i].dead);
    bound = bound < v->segs[i].s->n ? bound : v->segs[i].s->n;
    cap += bound;
    dcap = bound > dcap ? bound : dcap;
  }
  dcap = nq * dcap > 0 ? nq * dcap : 1;
  heap = vs__malloc(k * sizeof(*heap));
  dist = vs__malloc(dcap * sizeof(float));
  labels = vs__malloc(dcap * sizeof(int64_t));
  if (heap == NULL || dist == NULL || labels == NULL)
    rc = vs__err(err, VS_ENOMEM, "out of memory");
  for (size_t qi = 0; qi < nq && rc == VS_OK; qi++)
    if ((cands[qi] = vs__malloc(cap * sizeof(**cands))) == NULL)
      rc = vs__err(err, VS_ENOMEM, "out of memory");
  if (rc)
    goto out;
  for (size_t i = 0; i < v->nsegs && rc == VS_OK; i++) {
    const vseg *sg = &v->segs[i];
    const vs__segment *s = sg->s;
    uint64_t ndead = roaring_bitmap_get_cardinality(sg->dead);
    keep_ctx kc = {s, ndead ? sg->dead : NULL, keep, kctx};
    int selector = (s->caps & VS__FAISS_SELECTOR) != 0;
    vs__faiss_params fp = {ef, nprobe, threads, NULL, NULL, s->caps};
    /* A Flat index answers a batch with one matrix product, whose
     * distances differ from one query's in the last bits: re-score them
     * from the stored vectors, so a batch ranks as its queries alone do. */
    int gemm = nq > 1 && !(s->caps & (VS__FAISS_HNSW | VS__FAISS_IVF));
    size_t kk = k * (s->approximate || gemm ? APPROX_FACTOR : 1);
    char msg[VS_ERROR_MESSAGE_MAX];

    if (s->n == 0 || ndead >= s->n)
      continue;
    if (selector && (kc.dead || keep)) {
      fp.keep = keep_internal;
      fp.keep_ctx = &kc;
    } else if (!selector) {
      kk += ndead; /* filtered below, after FAISS */
    }
    if (kk > s->n)
      kk = s->n;
    fp.ef = ef > 0 ? ef : DEFAULT_EF;
    if ((size_t)fp.ef < kk)
      fp.ef = (int)kk; /* HNSW needs a breadth of at least the results asked */
    if (vs__segment_search(s, q, (int64_t)nq, (int64_t)kk, &fp, dist, labels, msg, sizeof(msg))) {
      rc = vs__err(err, VS_EINTERNAL, "%s", msg);
      break;
    }
    for (size_t qi = 0; qi < nq; qi++) {
      /* FAISS's distance is the score when the segment keeps the vectors
       * as they are (no compressed codes, no MIPS lift); cosine segments
       * hold normalised vectors, so their inner product is the cosine. */
      const float *d = dist + qi * kk;
      const int64_t *l = labels + qi * kk;
      int exact = !s->approximate && !s->mips && !gemm;
      size_t got = 0;
      for (size_t j = 0; j < kk; j++)
        if (l[j] >= 0 && (selector ? 1 : keep_internal(&kc, l[j]))) {
          cands[qi][n[qi]++] = (vs__cand){s->pids[l[j]], d[j], exact, sg->id1[l[j]]};
          got++;
        }
      /* Fewer than k from a segment that holds k live points (a graph walk
       * cut short by tombstones or a filter): the caller must scan. */
      if (got < k && got < s->n - ndead)
        short_of_k[qi] = 1;
    }
  }
  for (size_t qi = 0; qi < nq && rc == VS_OK && v->fn; qi++) {
    size_t nheap = 0;
    fresh_topk(v, q + qi * v->dim, k, keep, kctx, heap, &nheap);
    for (size_t i = 0; i < nheap; i++) /* fresh rows are scored exactly */
      cands[qi][n[qi]++] = (vs__cand){heap[i].pid, heap[i].score, 1, heap[i].id1};
  }
  if (info) {
    info->segments = (uint32_t)v->nsegs;
    info->fresh = v->fn;
  }
out:
  vs__free(heap);
  vs__free(dist);
  vs__free(labels);
  if (rc)
    for (size_t qi = 0; qi < nq; qi++) {
      vs__free(cands[qi]);
      cands[qi] = NULL;
      n[qi] = 0;
    }
  return rc;
}

int vs__vix_candidates(const vs__vix *v, const float *q, size_t k, int ef, int nprobe,
                       vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n, int *short_of_k,
                       vs_search_info *info, vs_error *err) {
  return vs__vix_candidates_n(v, q, 1, k, ef, nprobe, 1, keep, kctx, cands, n, short_of_k, info,
                              err);
}

/* ---- sealing -------------------------------------------------------------------------------- */

typedef struct cas_ctx {
  uint32_t cid;
  uint64_t gen0, token0; /* what the manifest must still be */
  const uint8_t *bytes;
  size_t len;
  const char *spec; /* rebuild: the collection's new spec, or NULL */
} cas_ctx;

static int manifest_cas(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  cas_ctx *cc = ctx;
  uint64_t gen, token;
  char buf[32];
  MDB_val k, val = {cc->len, (void *)cc->bytes};
  int rc, mrc;

  if (c->cid != cc->cid) /* dropped and made again under the same name meanwhile */
    return vs__err(err, VS_ENOTFOUND, "collection '%s' was dropped", c->name);
  rc = manifest_head(db, txn, cc->cid, &gen, &token, NULL, err);
  if (rc)
    return rc;
  if (gen != cc->gen0 || token != cc->token0)
    return vs__err(err, VS_EBUSY, "the index of '%s' changed meanwhile", c->name);
  manifest_key(cc->cid, buf, sizeof(buf), &k);
  mrc = mdb_put(txn, db->meta, &k, &val, 0);
  if (mrc)
    return vs__mdb_err(err, mrc, "write the index manifest");
  return cc->spec ? vs__coll_set_spec(db, txn, c->name, cc->spec, err) : VS_OK;
}

static int ensure_segments_dir(vs_db *db, vs_error *err) {
  char path[4096];

  segments_path(db, path, sizeof(path), NULL);
  if (mkdir(path, 0755) == 0) {
    int fd = open(db->dir, O_RDONLY); /* make the new directory entry durable */
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
  } else if (errno != EEXIST) {
    return vs__err(err, VS_EIO, "create %s: %s", path, strerror(errno));
  }
  return VS_OK;
}

static int spec_of(vs_db *db, const char *name, char *spec, size_t cap, vs_error *err) {
  vs_collection_info *info;
  int rc = vs_collection_describe(db, name, &info, err);

  if (rc == VS_OK) {
    snprintf(spec, cap, "%s", info->index);
    vs__free(info);
  }
  return rc;
}

/* Build a segment from rows and write it; *file gets its name. */
static int build_and_write(vs_db *db, const vs__vix *v, const char *spec, const float *x,
                           const uint64_t *pids, size_t n, uint64_t gen, int threads,
                           vs__segment **seg, char **file, vs_error *err) {
  char name[96], path[4096], msg[VS_ERROR_MESSAGE_MAX];
  int rc;

  rc = ensure_segments_dir(db, err);
  if (rc)
    return rc;
  if (vs__segment_build(spec, is_ip(v->metric), v->dim, x, pids, (uint32_t)n, threads, seg, msg,
                        sizeof(msg)))
    return vs__err(err, VS_EINTERNAL, "%s", msg);
  snprintf(name, sizeof(name), "c%u-g%llu-%016llx.seg", v->cid, (unsigned long long)gen,
           (unsigned long long)new_token());
  segments_path(db, path, sizeof(path), name);
  if (vs__segment_write(*seg, path, msg, sizeof(msg))) {
    vs__segment_free(*seg);
    *seg = NULL;
    return vs__err(err, VS_EIO, "%s", msg);
  }
  *file = vs__malloc(strlen(name) + 1);
  if (*file == NULL) {
    unlink(path);
    vs__segment_free(*seg);
    *seg = NULL;
    return vs__err(err, VS_ENOMEM, "out of memory");
  }
  strcpy(*file, name);
  return VS_OK;
}

static void unlink_segment(vs_db *db, const char *file) {
  char path[4096];

  segments_path(db, path, sizeof(path), file);
  unlink(path);
}

/* Seal the fresh rows of v into a segment (see the file comment). */
static int seal(vs_db *db, vs__vix *v, vs_error *err) {
  char spec[VS_INDEX_SPEC_MAX + 1];
  uint64_t gen0, token0, seq = 0, gen1, token1, epoch0;
  char installed[96] = "";
  float *x = NULL;
  uint64_t *pids = NULL, *id1 = NULL;
  size_t m;
  vs__segment *seg = NULL;
  char *file = NULL;
  uint8_t *bytes = NULL;
  size_t len = 0;
  vseg *segs;
  int rc;

  rc = spec_of(db, v->name, spec, sizeof(spec), err);
  if (rc)
    return rc;
  pthread_rwlock_rdlock(&v->lock);
  m = v->fn;
  if (m < db->seal_threshold || v->stale || v->busy) {
    pthread_rwlock_unlock(&v->lock);
    return VS_OK;
  }
  x = vs__malloc(m * v->dim * sizeof(float));
  pids = vs__malloc(m * sizeof(uint64_t));
  id1 = vs__malloc(m * sizeof(uint64_t));
  if (x && pids && id1) {
    memcpy(x, v->fv, m * v->dim * sizeof(float));
    memcpy(pids, v->fpid, m * sizeof(uint64_t));
    memcpy(id1, v->fid1, m * sizeof(uint64_t));
    seq = v->fseq[m - 1];
  }
  gen0 = v->gen;
  token0 = v->token;
  epoch0 = v->epoch;
  pthread_rwlock_unlock(&v->lock);
  if (x == NULL || pids == NULL || id1 == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }

  gen1 = gen0 + 1;
  token1 = new_token();
  rc = build_and_write(db, v, spec, x, pids, m, gen1, 0, &seg, &file, err);
  if (rc)
    goto out;

  pthread_rwlock_wrlock(&v->lock);
  if (v->gen != gen0 || v->token != token0 || v->epoch != epoch0 || v->stale || v->fn < m) {
    pthread_rwlock_unlock(&v->lock); /* reloaded meanwhile: this work is moot */
    unlink_segment(db, file);
    goto out;
  }
  segs = vs__realloc(v->segs, (v->nsegs + 1) * sizeof(*segs));
  if (segs == NULL) {
    pthread_rwlock_unlock(&v->lock);
    unlink_segment(db, file);
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  v->segs = segs;
  {
    vseg *ns = &v->segs[v->nsegs];
    roaring_bitmap_t *rest = roaring_bitmap_create();
    roaring_uint32_iterator_t *it = roaring_create_iterator(v->fdead);

    ns->s = seg;
    ns->file = file;
    ns->id1 = id1; /* the rows' ids, as the pids: the same m rows */
    snprintf(installed, sizeof(installed), "%s", file);
    ns->dead = roaring_bitmap_create();
    /* Tombstones of sealed rows move to the segment; the rest shift down. */
    for (; it->has_value; roaring_advance_uint32_iterator(it)) {
      if (it->current_value < m)
        roaring_bitmap_add(ns->dead, it->current_value);
      else
        roaring_bitmap_add(rest, (uint32_t)(it->current_value - m));
    }
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(v->fdead);
    v->fdead = rest;
    v->nsegs++;
    seg = NULL;
    file = NULL;
    id1 = NULL;
  }
  memmove(v->fv, v->fv + m * v->dim, (v->fn - m) * v->dim * sizeof(float));
  memmove(v->fpid, v->fpid + m, (v->fn - m) * sizeof(uint64_t));
  memmove(v->fseq, v->fseq + m, (v->fn - m) * sizeof(uint64_t));
  memmove(v->fid1, v->fid1 + m, (v->fn - m) * sizeof(uint64_t));
  v->fn -= m;
  rc = manifest_encode(v, gen1, token1, seq, &bytes, &len);
  v->gen = gen1; /* searches must not take the older manifest for a newer one */
  v->token = token1;
  pthread_rwlock_unlock(&v->lock);
  if (rc == VS_OK) {
    cas_ctx cc = {v->cid, gen0, token0, bytes, len, NULL};
    rc = vs__coll_write(db, v->name, manifest_cas, &cc, err);
  } else {
    vs__err(err, rc, "out of memory");
  }
  if (rc) { /* the manifest did not land: derive the state from LMDB again */
    pthread_rwlock_wrlock(&v->lock);
    v->stale = 1;
    pthread_rwlock_unlock(&v->lock);
    unlink_segment(db, installed); /* no manifest names it */
  }

out:
  vs__segment_free(seg);
  vs__free(file);
  vs__free(bytes);
  vs__free(x);
  vs__free(pids);
  vs__free(id1);
  return rc;
}

/* ---- filter sub-indexes ----------------------------------------------------------------------
 *
 * FAISS's filtered HNSW walk explores the neighbourhood an unfiltered walk
 * would and collects the passing points it meets.  When the passing points
 * are correlated with the vectors (one class of items, one tenant), the
 * walk from a query elsewhere meets few of them, and the search falls back
 * to scanning every passing point.  A filter that keeps doing that (three
 * misses) gets its own segment, built in the background over the points it
 * passed at that moment: a graph of those points only, so the walk stays
 * among them.  Because a point version's payload never changes, the points
 * a sub-index covers pass forever unless deleted; the search applies the
 * current passing set as the walk's filter (which drops deleted ones) and
 * scores the passing points added since the build exactly.  Sub-indexes
 * live in memory only and are rebuilt on demand after a restart. */

typedef struct fbuild_ctx {
  const roaring_bitmap_t *set;
  uint32_t cid;
  float *x;
  uint64_t *pids;
  size_t n;
} fbuild_ctx;

/* Copy the stored vectors of the pids in fb->set (normalised for cosine). */
static int fbuild_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  fbuild_ctx *fb = ctx;
  uint64_t card = roaring_bitmap_get_cardinality(fb->set);
  roaring_uint32_iterator_t *it;
  int rc = VS_OK;

  (void)db;
  if (c->cid != fb->cid)
    return vs__err(err, VS_ENOTFOUND, "collection '%s' was dropped", c->name);
  fb->x = vs__malloc((card ? card : 1) * c->dim * sizeof(float));
  fb->pids = vs__malloc((card ? card : 1) * sizeof(uint64_t));
  it = roaring_create_iterator(fb->set);
  if (fb->x == NULL || fb->pids == NULL || it == NULL) {
    if (it)
      roaring_free_uint32_iterator(it);
    return vs__err(err, VS_ENOMEM, "out of memory");
  }
  fb->n = 0;
  for (; it->has_value && rc == VS_OK; roaring_advance_uint32_iterator(it)) {
    const float *x;
    float *row = fb->x + fb->n * c->dim;

    rc = vs__vector_get(txn, c, it->current_value, &x, err);
    if (rc == VS_ENOTFOUND) { /* deleted since the set was taken */
      rc = VS_OK;
      continue;
    }
    if (rc)
      break;
    memcpy(row, x, c->dim * sizeof(float));
    if (c->metric == VS_METRIC_COSINE) {
      float norm = sqrtf(vs__norm_sqr(row, c->dim));
      for (uint32_t j = 0; j < c->dim && norm > 0; j++)
        row[j] /= norm;
    }
    fb->pids[fb->n++] = it->current_value;
  }
  roaring_free_uint32_iterator(it);
  return rc;
}

static int filter_build(vs_db *db, vs__vix *v, uint64_t digest, const roaring_bitmap_t *set,
                        vs_error *err) {
  char spec[VS_INDEX_SPEC_MAX + 1], msg[VS_ERROR_MESSAGE_MAX];
  fbuild_ctx fb = {set, v->cid, NULL, NULL, 0};
  fentry *e = NULL;
  int rc;

  rc = spec_of(db, v->name, spec, sizeof(spec), err);
  if (rc == VS_OK)
    rc = vs__coll_read(db, v->name, fbuild_step, &fb, err);
  if (rc)
    goto out;
  e = vs__calloc(1, sizeof(*e));
  if (e == NULL || (e->covered = roaring_bitmap_create()) == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  if (vs__segment_build(spec, is_ip(v->metric), v->dim, fb.x, fb.pids, (uint32_t)fb.n, 0, &e->seg,
                        msg, sizeof(msg))) {
    rc = vs__err(err, VS_EINTERNAL, "%s", msg);
    goto out;
  }
  for (size_t i = 0; i < fb.n; i++)
    roaring_bitmap_add(e->covered, (uint32_t)fb.pids[i]);
  e->digest = digest;
  pthread_rwlock_wrlock(&v->lock);
  for (fentry **pp = &v->fcache; *pp; pp = &(*pp)->next)
    if ((*pp)->digest == digest) { /* a rebuild of this filter's sub-index */
      fentry *old = *pp;
      *pp = old->next;
      fentry_free(old);
      v->nfcache--;
      break;
    }
  if (v->nfcache == FCACHE_MAX) { /* drop the oldest: the list is newest first */
    fentry **pp = &v->fcache;
    while ((*pp)->next)
      pp = &(*pp)->next;
    fentry_free(*pp);
    *pp = NULL;
    v->nfcache--;
  }
  e->next = v->fcache;
  v->fcache = e;
  v->nfcache++;
  pthread_rwlock_unlock(&v->lock);
  e = NULL;
out:
  if (e)
    fentry_free(e);
  vs__free(fb.x);
  vs__free(fb.pids);
  return rc;
}

const roaring_bitmap_t *vs__vix_filter_covered(const vs__vix *v, uint64_t digest) {
  for (const fentry *e = v->fcache; e; e = e->next)
    if (e->digest == digest)
      return e->covered;
  return NULL;
}

int vs__vix_filter_candidates(const vs__vix *v, uint64_t digest, const float *q, size_t k, int ef,
                              int nprobe, vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n,
                              vs_error *err) {
  const fentry *e = v->fcache;
  vs__faiss_params fp = {0, nprobe, 1, keep_internal, NULL};
  keep_ctx kc;
  float *dist;
  int64_t *labels;
  size_t kk;
  char msg[VS_ERROR_MESSAGE_MAX];
  int rc = VS_OK;

  *cands = NULL;
  *n = 0;
  while (e && e->digest != digest)
    e = e->next;
  if (e == NULL)
    return VS_ENOTFOUND;
  kc = (keep_ctx){e->seg, NULL, keep, kctx};
  fp.keep_ctx = &kc;
  fp.caps = e->seg->caps;
  kk = k * (e->seg->approximate ? APPROX_FACTOR : 1);
  kk = kk < e->seg->n ? kk : e->seg->n;
  fp.ef = ef > 0 ? ef : DEFAULT_EF;
  if ((size_t)fp.ef < kk)
    fp.ef = (int)kk;
  *cands = vs__malloc((kk ? kk : 1) * sizeof(**cands));
  dist = vs__malloc((kk ? kk : 1) * sizeof(float));
  labels = vs__malloc((kk ? kk : 1) * sizeof(int64_t));
  if (*cands == NULL || dist == NULL || labels == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
  } else if (kk &&
             vs__segment_search(e->seg, q, 1, (int64_t)kk, &fp, dist, labels, msg, sizeof(msg))) {
    rc = vs__err(err, VS_EINTERNAL, "%s", msg);
  } else {
    int exact = !e->seg->approximate && !e->seg->mips;
    for (size_t j = 0; j < kk; j++)
      if (labels[j] >= 0 && (e->seg->caps & VS__FAISS_SELECTOR ? 1 : keep_internal(&kc, labels[j])))
        (*cands)[(*n)++] = (vs__cand){e->seg->pids[labels[j]], dist[j], exact};
  }
  vs__free(dist);
  vs__free(labels);
  if (rc) {
    vs__free(*cands);
    *cands = NULL;
    *n = 0;
  }
  return rc;
}

void vs__vindex_filter_missed(vs_db *db, vs__vix *v, uint64_t digest, const roaring_bitmap_t *set) {
  size_t slot = FCACHE_NOTES;

  uint64_t card = roaring_bitmap_get_cardinality(set);

  if (card < FCACHE_MIN || card > FCACHE_MAX_POINTS)
    return; /* few points scan cheaply; a very broad filter is not worth a copy */
  pthread_mutex_lock(&db->vindex_lock);
  if (v->fbuilding == digest || v->fwant == digest) {
    pthread_mutex_unlock(&db->vindex_lock);
    return;
  }
  for (size_t i = 0; i < FCACHE_NOTES; i++) {
    if (v->fmiss[i].digest == digest) {
      slot = i;
      break;
    }
    if (slot == FCACHE_NOTES && v->fmiss[i].digest == 0)
      slot = i;
  }
  if (slot == FCACHE_NOTES) /* every note taken: forget one */
    slot = (size_t)(digest % FCACHE_NOTES);
  if (v->fmiss[slot].digest != digest)
    v->fmiss[slot].digest = digest, v->fmiss[slot].misses = 0;
  if (++v->fmiss[slot].misses >= FCACHE_AFTER && v->fwant == 0 && db->vindex &&
      db->vindex->started && (v->fwant_set = roaring_bitmap_copy(set)) != NULL) {
    v->fwant = digest;
    v->fmiss[slot].misses = 0;
    pthread_cond_signal(&db->vindex->wake);
  }
  pthread_mutex_unlock(&db->vindex_lock);
}

static int catch_up_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  vs__vix *v;
  int rc = vs__vix_acquire(db, txn, c, &v, err);

  (void)ctx;
  if (rc == VS_OK)
    vs__vix_release(v);
  return rc == VS__RETRY ? VS_OK : rc; /* already past this snapshot */
}

void vs__vindex_notify(vs_db *db, uint32_t cid) {
  pthread_mutex_lock(&db->vindex_lock);
  if (db->vindex && db->vindex->started)
    for (vs__vix *v = db->vindex->list; v; v = v->next)
      if (v->cid == cid && !v->queued) {
        v->queued = 1;
        pthread_cond_signal(&db->vindex->wake);
      }
  pthread_mutex_unlock(&db->vindex_lock);
}

static void *worker_main(void *arg) {
  vs_db *db = arg;
  vs__vindex *vi = db->vindex;

  pthread_mutex_lock(&db->vindex_lock);
  while (!vi->stop) {
    vs__vix *v;

    for (v = vi->list; v; v = v->next)
      if (v->queued || v->fwant)
        break;
    if (v == NULL) {
      pthread_cond_wait(&vi->wake, &db->vindex_lock);
      continue;
    }
    if (v->fwant) { /* a filter build first; a queued seal stays queued */
      uint64_t digest = v->fwant;
      roaring_bitmap_t *set = v->fwant_set;
      vs_error err = VS_ERROR_INIT;

      v->fwant = 0;
      v->fwant_set = NULL;
      v->fbuilding = digest;
      pthread_mutex_unlock(&db->vindex_lock);
      if (filter_build(db, v, digest, set, &err) && err.code != VS_ENOTFOUND)
        fprintf(stderr, "vsearch: filter index of '%s': %s\n", v->name, err.message);
      roaring_bitmap_free(set);
      pthread_mutex_lock(&db->vindex_lock);
      v->fbuilding = 0;
      continue;
    }
    v->queued = 0;
    pthread_mutex_unlock(&db->vindex_lock);
    {
      vs_error err = VS_ERROR_INIT;
      size_t nsegs;
      /* Catch up with the log first: writes queue work without replaying. */
      int rc = vs__coll_read(db, v->name, catch_up_step, NULL, &err);

      if (rc == VS_OK)
        rc = seal(db, v, &err);
      pthread_rwlock_rdlock(&v->lock);
      nsegs = v->nsegs;
      pthread_rwlock_unlock(&v->lock);
      if (rc == VS_OK && nsegs > MERGE_SEGMENTS)
        rc = vs__vindex_rebuild(db, v->name, NULL, 0, &err);
      if (rc && rc != VS_ENOTFOUND)
        fprintf(stderr, "vsearch: indexing '%s': %s\n", v->name, err.message);
    }
    pthread_mutex_lock(&db->vindex_lock);
  }
  pthread_mutex_unlock(&db->vindex_lock);
  return NULL;
}

/* ---- rebuild ---------------------------------------------------------------------------- */

typedef struct snap_ctx {
  uint32_t cid; /* the collection the rebuild started on */
  uint32_t dim;
  float *x;
  uint64_t *pids;
  size_t n, cap;
  uint64_t seq, gen0, token0;
  MDB_val old; /* copy of the old manifest, for deleting its files */
  uint8_t *oldbuf;
} snap_ctx;

/* Copy every live vector and the positions the copy covers. */
static int snapshot_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  snap_ctx *sc = ctx;
  MDB_cursor *cur;
  MDB_val k, val;
  vs__state st;
  int rc, mrc;

  if (c->cid != sc->cid)
    return vs__err(err, VS_ENOTFOUND, "collection '%s' was dropped", c->name);
  if ((rc = vs__state_get(db, txn, c->cid, &st, err)) ||
      (rc = manifest_head(db, txn, c->cid, &sc->gen0, &sc->token0, &sc->old, err)))
    return rc;
  if (sc->gen0) {
    sc->oldbuf = vs__malloc(sc->old.mv_size);
    if (sc->oldbuf == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    memcpy(sc->oldbuf, sc->old.mv_data, sc->old.mv_size);
    sc->old.mv_data = sc->oldbuf;
  }
  sc->seq = st.next_seq - 1;
  sc->dim = c->dim;
  sc->cap = st.count ? st.count : 1;
  sc->x = vs__malloc(sc->cap * c->dim * sizeof(float));
  sc->pids = vs__malloc(sc->cap * sizeof(uint64_t));
  if (sc->x == NULL || sc->pids == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory copying %llu vectors",
                   (unsigned long long)st.count);
  mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_VEC], &cur);
  if (mrc)
    return vs__mdb_err(err, mrc, "open a vector cursor");
  for (mrc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
    if (sc->n == sc->cap || val.mv_size != (size_t)c->dim * sizeof(float)) {
      rc = vs__err(err, VS_ECORRUPT, "vector table of '%s' disagrees with its count", c->name);
      break;
    }
    memcpy(&sc->pids[sc->n], k.mv_data, 8);
    memcpy(sc->x + sc->n * c->dim, val.mv_data, val.mv_size);
    if (c->metric == VS_METRIC_COSINE) {
      float *row = sc->x + sc->n * c->dim;
      float norm = sqrtf(vs__norm_sqr(row, c->dim));
      for (uint32_t j = 0; j < c->dim && norm > 0; j++)
        row[j] /= norm;
    }
    sc->n++;
  }
  if (rc == VS_OK && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the vectors");
  mdb_cursor_close(cur);
  return rc;
}

static int noop_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  (void)db, (void)txn, (void)err;
  *(vs__coll *)ctx = *c;
  return VS_OK;
}

/* Call fn for each segment file a manifest names (bytes from disk: a
 * malformed tail ends the walk). */
static void manifest_each(const MDB_val *m, void (*fn)(void *ctx, const char *name), void *ctx) {
  const uint8_t *p = m->mv_data, *end = p + m->mv_size;
  uint32_t nsegs;

  if (m->mv_size < 29)
    return;
  memcpy(&nsegs, p + 25, 4);
  p += 29;
  for (uint32_t i = 0; i < nsegs && end - p >= 2; i++) {
    char name[256];
    uint16_t nl;
    uint32_t tl;

    memcpy(&nl, p, 2);
    if (nl == 0 || nl >= sizeof(name) || (size_t)(end - p) < 2u + nl + 4u)
      return;
    memcpy(name, p + 2, nl);
    name[nl] = '\0';
    p += 2 + nl;
    memcpy(&tl, p, 4);
    p += 4;
    if (tl > (size_t)(end - p))
      return;
    p += tl;
    if (strchr(name, '/') == NULL)
      fn(ctx, name);
  }
}

static void unlink_cb(void *ctx, const char *name) {
  unlink_segment(ctx, name);
}

/* Delete the files the old manifest named. */
static void delete_old_files(vs_db *db, const MDB_val *old) {
  manifest_each(old, unlink_cb, db);
}

typedef struct named_ctx {
  const char *file;
  int found;
} named_ctx;

static void named_cb(void *ctx, const char *name) {
  named_ctx *nc = ctx;
  nc->found |= strcmp(nc->file, name) == 0;
}

void vs__vindex_sweep(vs_db *db) {
  char path[4096];
  struct dirent *e;
  MDB_txn *txn;
  DIR *d;

  segments_path(db, path, sizeof(path), NULL);
  d = opendir(path);
  if (d == NULL)
    return;
  if (vs__read_begin(db, &txn, NULL)) {
    closedir(d);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    named_ctx nc = {e->d_name, 0};
    struct stat st;
    unsigned cid;
    char key[32], file[4400];
    MDB_val k, v;
    size_t len = strlen(e->d_name);

    if (sscanf(e->d_name, "c%u-", &cid) != 1 ||
        !(len > 4 && (strcmp(e->d_name + len - 4, ".seg") == 0 ||
                      (len > 8 && strcmp(e->d_name + len - 8, ".seg.tmp") == 0))))
      continue;
    snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
    /* A file a seal or rebuild of another process is about to commit is
     * young; an orphan of a killed one is not. */
    if (stat(file, &st) != 0 || time(NULL) - st.st_mtime < VS__SWEEP_AGE)
      continue;
    k.mv_size = (size_t)snprintf(key, sizeof(key), "index.%u", cid);
    k.mv_data = key;
    if (mdb_get(txn, db->meta, &k, &v) == 0)
      manifest_each(&v, named_cb, &nc);
    if (!nc.found)
      unlink(file);
  }
  vs__read_end(db, txn);
  closedir(d);
}

int vs__vindex_rebuild(vs_db *db, const char *name, const char *spec, int threads, vs_error *err) {
  char cur_spec[VS_INDEX_SPEC_MAX + 1], msg[VS_ERROR_MESSAGE_MAX];
  snap_ctx sc;
  vs__coll c;
  vs__vix *v = NULL, tmp;
  vs__segment *seg = NULL;
  char *file = NULL;
  uint8_t *bytes = NULL;
  size_t len;
  int rc;

  memset(&sc, 0, sizeof(sc));
  rc = vs__coll_read(db, name, noop_step, &c, err);
  if (rc)
    return rc;
  if (c.dim == 0)
    return vs__err(err, VS_EINVAL, "'%s' is a text-only collection: it has no vector index", name);
  rc = spec_of(db, name, cur_spec, sizeof(cur_spec), err);
  if (rc)
    return rc;
  if (spec && strlen(spec) > VS_INDEX_SPEC_MAX)
    return vs__err(err, VS_EINVAL, "index spec is longer than %d bytes", VS_INDEX_SPEC_MAX);
  if (spec && vs__index_spec_check(spec, c.dim, is_ip(c.metric), msg, sizeof(msg)))
    return vs__err(err, VS_EINVAL, "%s", msg);

  /* Keep this process's sealer out of the way. */
  pthread_mutex_lock(&db->vindex_lock);
  rc = vix_get(db, &c, &v, err);
  pthread_mutex_unlock(&db->vindex_lock);
  if (rc)
    return rc;
  pthread_rwlock_wrlock(&v->lock);
  if (v->busy) {
    pthread_rwlock_unlock(&v->lock);
    return vs__err(err, VS_EBUSY, "the index of '%s' is being rebuilt", name);
  }
  v->busy = 1;
  pthread_rwlock_unlock(&v->lock);

  sc.cid = c.cid;
  rc = vs__coll_read(db, name, snapshot_step, &sc, err);
  if (rc)
    goto out;
  memset(&tmp, 0, sizeof(tmp));
  tmp.cid = c.cid;
  tmp.dim = c.dim;
  tmp.metric = c.metric;
  rc = build_and_write(db, &tmp, spec ? spec : cur_spec, sc.x, sc.pids, sc.n, sc.gen0 + 1, threads,
                       &seg, &file, err);
  if (rc)
    goto out;
  /* The manifest: one segment, no tombstones, covering the snapshot's log. */
  {
    vseg one = {seg, roaring_bitmap_create(), file};
    cas_ctx cc;

    tmp.segs = &one;
    tmp.nsegs = 1;
    rc = manifest_encode(&tmp, sc.gen0 + 1, new_token(), sc.seq, &bytes, &len);
    roaring_bitmap_free(one.dead);
    if (rc) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      unlink_segment(db, file);
      goto out;
    }
    cc = (cas_ctx){c.cid, sc.gen0, sc.token0,
                   bytes, len,     spec && strcmp(spec, cur_spec) != 0 ? spec : NULL};
    rc = vs__coll_write(db, name, manifest_cas, &cc, err);
    if (rc) {
      unlink_segment(db, file);
      goto out;
    }
  }
  if (sc.gen0)
    delete_old_files(db, &sc.old);

out:
  pthread_rwlock_wrlock(&v->lock);
  v->busy = 0;
  v->stale = 1; /* load the new manifest at the next search */
  pthread_rwlock_unlock(&v->lock);
  vs__segment_free(seg);
  vs__free(file);
  vs__free(bytes);
  vs__free(sc.x);
  vs__free(sc.pids);
  vs__free(sc.oldbuf);
  return rc;
}

/* ---- drop and close -------------------------------------------------------------------------- */

void vs__vindex_drop(vs_db *db, uint32_t cid) {
  char path[4096], prefix[32];
  struct dirent *e;
  DIR *d;

  snprintf(prefix, sizeof(prefix), "c%u-", cid);
  segments_path(db, path, sizeof(path), NULL);
  d = opendir(path);
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
      unlink_segment(db, e->d_name);
  closedir(d);
  pthread_mutex_lock(&db->vindex_lock);
  if (db->vindex)
    for (vs__vix *v = db->vindex->list; v; v = v->next)
      if (v->cid == cid) {
        pthread_rwlock_wrlock(&v->lock);
        v->stale = 1; /* never used again: cids are not reused */
        pthread_rwlock_unlock(&v->lock);
      }
  pthread_mutex_unlock(&db->vindex_lock);
}

void vs__vindex_close(vs_db *db) {
  vs__vindex *vi = db->vindex;
  vs__vix *v, *next;

  if (vi == NULL)
    return;
  pthread_mutex_lock(&db->vindex_lock);
  vi->stop = 1;
  pthread_cond_signal(&vi->wake);
  pthread_mutex_unlock(&db->vindex_lock);
  if (vi->started)
    pthread_join(vi->worker, NULL);
  for (v = vi->list; v; v = next) {
    next = v->next;
    vix_free(v);
  }
  pthread_cond_destroy(&vi->wake);
  vs__free(vi);
  db->vindex = NULL;
}
