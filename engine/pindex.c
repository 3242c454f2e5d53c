/*
 * pindex.c: each collection's payload index in memory, derived from LMDB.
 *
 * A filter evaluated payload by payload (vs__filter_match) costs one LMDB
 * lookup and one msgpack walk per point it is asked about; the planner
 * needs to ask about every point, or about every candidate a graph walk
 * meets.  The payload index answers a whole filter at once: vs__filter_eval
 * (filter.c) walks the filter tree and combines, with roaring bitmaps, the
 * point sets this module returns for each leaf condition.
 *
 * DATA STRUCTURE.  A vs__pix per collection holds
 *  - `live`: a bitmap of the pids of the collection's live points with a
 *    well-formed record (a malformed one never passes a filter, as in
 *    search.c's record_passes);
 *  - one `pfield` for each payload field that some filter has named: a
 *    hash table from each distinct value of the field (canonical, so that 5
 *    and 5.0 are one key; see vs__scalar_canon) to the bitmap of pids
 *    holding it, and, for range conditions, an array of (number, pid)
 *    entries: a prefix sorted by value and an unsorted tail of recent
 *    additions, merged into the prefix once it outgrows a tenth of it.  An
 *    array-valued field contributes one entry per element, so "some element
 *    in [lo, hi]" -- filter.c's rule for a range on an array -- is exactly
 *    "some entry of the pid in [lo, hi]";
 *  - `dels`: the (seq, pid) of the deletes replayed since the last
 *    compaction, in log order.
 * Fields are indexed lazily: the first filter that names a field pays one
 * pass over the collection's points; afterwards the change log keeps it up
 * to date.  A pid's payload never changes (a replaced point gets a new
 * pid), so an upsert adds the pid to `live` and to the sets of its values,
 * and a delete only removes it from `live`.  The value sets keep the pids
 * of deleted points: every answer is intersected with the universe, which
 * is a subset of `live`, so they are harmless.  When more deleted pids
 * linger than there are live ones, a compaction intersects every set with
 * `live`.
 *
 * CATCHING UP.  As vindex.c does, vs__pindex_eval() runs inside the
 * caller's read transaction and first replays the change log from
 * `applied` + 1 to the snapshot's last seq, so every acknowledged write is
 * visible to the next query.  The index only moves forward.  A thread whose
 * snapshot S is older than `applied` (another thread caught up further
 * meanwhile) reconstructs its universe instead: the live set of S is
 *     live + {pids deleted after S} - {pids >= the next_pid of S},
 * because pids are handed out in increasing order and a deleted pid's
 * values are still in the sets.  That holds for S >= `floor`, the oldest
 * snapshot the index can reconstruct (the first build, a scan at S, and
 * compaction raise it), and for S outside the `holes`: a replayed upsert
 * whose point was already gone (replaced or deleted later in the same
 * replay) was never read, so the snapshots between that upsert and its
 * delete cannot be reconstructed; each replay that meets such points
 * records one hole spanning them.  A field built at S answers only
 * snapshots at or after S (`since`).  A query the index cannot answer gets
 * NULL and is answered point by point.
 *
 * PIDS.  Roaring bitmaps here are 32-bit.  Pids start at 1 and grow by one
 * per point version, so 2^32 is far off; should a pid of 2^32 or more ever
 * appear, the index marks itself unusable for good and every filtered query
 * on the collection takes the point-by-point paths.
 *
 * LOCKS.  x->lock (rwlock) is taken inside a read transaction, like a
 * vix's: read-locked to evaluate, write-locked to catch up, build a field,
 * merge or compact (a query the index can never answer -- unusable, or a
 * snapshot it cannot reconstruct -- leaves without the write lock).  db->pindex_lock guards the
 * list of indexes only.  A dropped collection's index stays until the database closes (cids are
 * never reused, so nothing ever finds it again).
 *
 * MEMORY.  Allocation failures return VS_ENOMEM and leave the index marked
 * `broken`, so the next query rebuilds it from LMDB.  (Roaring 0.2's
 * in-place operations cannot report an allocation failure; the ones that
 * allocate a result return NULL, which is checked.)
 */
#include "engine/pindex.h"

#include <stdlib.h>
#include <string.h>

#define KW_MIN_CAP 16      /* first hash table size (a power of two) */
#define DELTA_MIN 256      /* unsorted numeric entries tolerated at any size */
#define COMPACT_MIN 4096   /* lingering deleted pids before compaction is worth it */
#define PID_BATCH 256      /* pids gathered before one roaring_bitmap_add_many */
#define FIELDS_ON_STACK 16 /* a filter's fields mapped without an allocation */
#define SETS_ON_STACK 16   /* an `any` list's value sets united without one */
#define HOLES_MAX 32       /* past this, the floor rises over the oldest hole */

typedef struct kw { /* one distinct value of a field */
  uint64_t hash;
  vs__scalar v;         /* canonical; a string's bytes are owned */
  roaring_bitmap_t *bm; /* NULL: the slot is empty */
} kw;

typedef struct nent { /* one number held by one point */
  vs__scalar v;       /* canonical: V_INT or V_FLT */
  uint32_t pid;
} nent;

typedef struct pfield {
  char *name;
  uint32_t len;
  uint64_t since;   /* the snapshot seq the field was built at */
  kw *slots;        /* open addressing, linear probing */
  size_t cap, used; /* cap is a power of two; used <= cap / 2 */
  nent *nums;       /* [0, nsorted) sorted by value, [nsorted, nnum) not */
  size_t nsorted, nnum, ncap;
} pfield;

typedef struct del {
  uint64_t seq;
  uint32_t pid;
} del;

typedef struct hole { /* snapshots lo <= S < hi cannot be reconstructed */
  uint64_t lo, hi;
} hole;

typedef struct vs__pix vs__pix;
struct vs__pix {
  pthread_rwlock_t lock;
  uint32_t cid;
  int built;        /* live and applied are set */
  int unusable;     /* a pid >= 2^32 was seen: never answer again */
  int broken;       /* a catch-up failed half-way: rebuild at the next query */
  uint64_t applied; /* last log seq reflected */
  uint64_t floor;   /* the oldest snapshot seq that can be reconstructed */
  roaring_bitmap_t *live;
  del *dels;
  size_t ndels, delcap;
  uint64_t stale; /* deleted pids still in value sets */
  hole holes[HOLES_MAX];
  size_t nholes;
  pfield **fields;
  size_t nfields, fcap;
  vs__pix *next;
};

typedef struct vs__pindex {
  vs__pix *list;
} vs__pindex;

/* ---- values ------------------------------------------------------------------------- */

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* The hash of a canonical value: equal values have equal bits. */
static uint64_t hash_val(const vs__scalar *v) {
  uint64_t h, bits;

  switch (v->kind) {
  case VS__SCALAR_BOOL:
    return mix(0x51u + v->b);
  case VS__SCALAR_INT:
    return mix(v->u.mag ^ (v->neg ? 0x8000000000000000ull : 0)) ^ 0x2545f4914f6cdd1dull;
  case VS__SCALAR_FLT:
    memcpy(&bits, &v->u.d, sizeof(bits));
    return mix(bits) ^ 0x9e3779b97f4a7c15ull;
  default:
    h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (uint32_t i = 0; i < v->len; i++)
      h = (h ^ (uint8_t)v->u.s[i]) * 0x100000001b3ull;
    return mix(h);
  }
}

/* Are two canonical values the same? */
static int same_val(const vs__scalar *a, const vs__scalar *b) {
  if (a->kind != b->kind)
    return 0;
  switch (a->kind) {
  case VS__SCALAR_BOOL:
    return a->b == b->b;
  case VS__SCALAR_INT:
    return a->neg == b->neg && a->u.mag == b->u.mag;
  case VS__SCALAR_FLT:
    return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
  default:
    return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
  }
}

/* Numeric order, with the common cases inline. */
static int num_order(const vs__scalar *a, const vs__scalar *b) {
  if (a->kind == VS__SCALAR_FLT && b->kind == VS__SCALAR_FLT)
    return (a->u.d > b->u.d) - (a->u.d < b->u.d);
  if (a->kind == VS__SCALAR_INT && b->kind == VS__SCALAR_INT && !a->neg && !b->neg)
    return (a->u.mag > b->u.mag) - (a->u.mag < b->u.mag);
  return vs__scalar_cmp(a, b);
}

static int nent_cmp(const void *a, const void *b) {
  const nent *x = a, *y = b;
  int c = num_order(&x->v, &y->v);

  return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}

/* ---- one field ------------------------------------------------------------------------ */

static void field_free(pfield *pf) {
  if (pf == NULL)
    return;
  for (size_t i = 0; i < pf->cap; i++) {
    if (pf->slots[i].bm == NULL)
      continue;
    roaring_bitmap_free(pf->slots[i].bm);
    if (pf->slots[i].v.kind == VS__SCALAR_STR)
      vs__free((void *)(uintptr_t)pf->slots[i].v.u.s);
  }
  vs__free(pf->slots);
  vs__free(pf->nums);
  vs__free(pf->name);
  vs__free(pf);
}

static pfield *field_new(const char *name, size_t len, uint64_t since) {
  pfield *pf = vs__calloc(1, sizeof(*pf));

  if (pf == NULL)
    return NULL;
  pf->name = vs__malloc(len ? len : 1);
  pf->slots = vs__calloc(KW_MIN_CAP, sizeof(kw));
  if (pf->name == NULL || pf->slots == NULL) {
    vs__free(pf->name);
    vs__free(pf->slots);
    vs__free(pf);
    return NULL;
  }
  memcpy(pf->name, name, len);
  pf->len = (uint32_t)len;
  pf->cap = KW_MIN_CAP;
  pf->since = since;
  return pf;
}

/* The slot holding canonical value v, or the empty slot where it would go. */
static kw *kw_slot(kw *slots, size_t cap, const vs__scalar *v, uint64_t h) {
  size_t i = (size_t)h & (cap - 1);

  while (slots[i].bm != NULL && !(slots[i].hash == h && same_val(&slots[i].v, v)))
    i = (i + 1) & (cap - 1);
  return &slots[i];
}

static const roaring_bitmap_t *kw_find(const pfield *pf, const vs__scalar *v) {
  return kw_slot(pf->slots, pf->cap, v, hash_val(v))->bm;
}

static int kw_grow(pfield *pf) {
  size_t cap = pf->cap * 2;
  kw *slots = vs__calloc(cap, sizeof(kw));

  if (slots == NULL)
    return VS_ENOMEM;
  for (size_t i = 0; i < pf->cap; i++)
    if (pf->slots[i].bm != NULL)
      *kw_slot(slots, cap, &pf->slots[i].v, pf->slots[i].hash) = pf->slots[i];
  vs__free(pf->slots);
  pf->slots = slots;
  pf->cap = cap;
  return VS_OK;
}

/* Add pid to the set of canonical value v, making the set if needed. */
static int kw_add(pfield *pf, const vs__scalar *v, uint32_t pid) {
  uint64_t h = hash_val(v);
  kw *s;

  if ((pf->used + 1) * 2 > pf->cap && kw_grow(pf))
    return VS_ENOMEM;
  s = kw_slot(pf->slots, pf->cap, v, h);
  if (s->bm == NULL) {
    vs__scalar copy = *v;

    if (v->kind == VS__SCALAR_STR) {
      char *bytes = vs__malloc(v->len ? v->len : 1);

      if (bytes == NULL)
        return VS_ENOMEM;
      memcpy(bytes, v->u.s, v->len);
      copy.u.s = bytes;
    }
    s->bm = roaring_bitmap_create();
    if (s->bm == NULL) {
      if (v->kind == VS__SCALAR_STR)
        vs__free((void *)(uintptr_t)copy.u.s);
      return VS_ENOMEM;
    }
    s->v = copy;
    s->hash = h;
    pf->used++;
  }
  roaring_bitmap_add(s->bm, pid);
  return VS_OK;
}

static int nums_push(pfield *pf, const vs__scalar *v, uint32_t pid) {
  if (pf->nnum == pf->ncap) {
    size_t cap = pf->ncap ? pf->ncap * 2 : 256;
    nent *n = vs__realloc(pf->nums, cap * sizeof(*n));

    if (n == NULL)
      return VS_ENOMEM;
    pf->nums = n;
    pf->ncap = cap;
  }
  pf->nums[pf->nnum].v = *v;
  pf->nums[pf->nnum].pid = pid;
  pf->nnum++;
  return VS_OK;
}

/* One value of pid's field: into the value sets, and into the numbers. */
static int field_add(pfield *pf, const vs__scalar *v, uint32_t pid) {
  vs__scalar c = *v;
  int rc;

  vs__scalar_canon(&c);
  rc = kw_add(pf, &c, pid);
  if (rc == VS_OK && (c.kind == VS__SCALAR_INT || c.kind == VS__SCALAR_FLT))
    rc = nums_push(pf, &c, pid);
  return rc;
}

static int needs_merge(const pfield *pf) {
  size_t delta = pf->nnum - pf->nsorted;

  return delta > DELTA_MIN && delta > pf->nsorted / 10;
}

/* Sort the unsorted tail and merge it into the sorted prefix, in place
 * from the back (the prefix never moves past its merged position). */
static int nums_merge(pfield *pf) {
  size_t ns = pf->nsorted, nd = pf->nnum - ns, i = ns, j = nd, k = pf->nnum;
  nent *tail;

  if (nd == 0)
    return VS_OK;
  qsort(pf->nums + ns, nd, sizeof(nent), nent_cmp);
  tail = vs__malloc(nd * sizeof(nent));
  if (tail == NULL)
    return VS_ENOMEM;
  memcpy(tail, pf->nums + ns, nd * sizeof(nent));
  while (j > 0) {
    if (i > 0 && nent_cmp(&pf->nums[i - 1], &tail[j - 1]) > 0)
      pf->nums[--k] = pf->nums[--i];
    else
      pf->nums[--k] = tail[--j];
  }
  vs__free(tail);
  pf->nsorted = pf->nnum;
  return VS_OK;
}

/* Is x below the range's lower bound, or above its upper bound? */
static int below(const vs__fcond *c, const vs__scalar *x) {
  int k;

  if (!c->has_lo)
    return 0;
  k = num_order(x, &c->lo);
  return c->lo_incl ? k < 0 : k <= 0;
}

static int above(const vs__fcond *c, const vs__scalar *x) {
  int k;

  if (!c->has_hi)
    return 0;
  k = num_order(x, &c->hi);
  return c->hi_incl ? k > 0 : k >= 0;
}

typedef struct pidbuf {
  roaring_bitmap_t *bm;
  uint32_t p[PID_BATCH];
  size_t n;
} pidbuf;

static void pidbuf_add(pidbuf *b, uint32_t pid) {
  b->p[b->n++] = pid;
  if (b->n == PID_BATCH) {
    roaring_bitmap_add_many(b->bm, b->n, b->p);
    b->n = 0;
  }
}

static void pidbuf_flush(pidbuf *b) {
  if (b->n)
    roaring_bitmap_add_many(b->bm, b->n, b->p);
  b->n = 0;
}

/* The pids holding a number within range c: bisect the sorted prefix for
 * the first entry not below and the first entry above (both predicates are
 * monotone along the prefix), then test the unsorted tail one by one.
 * Ranges whose bounds are not numbers hold nowhere (the parser refuses
 * them anyway). */
static int range_set(const pfield *pf, const vs__fcond *c, roaring_bitmap_t **out) {
  size_t lo = 0, hi = pf->nsorted, a, b;
  pidbuf buf;

  *out = NULL;
  buf.bm = roaring_bitmap_create();
  buf.n = 0;
  if (buf.bm == NULL)
    return VS_ENOMEM;
  while (lo < hi) { /* first entry not below */
    size_t mid = lo + (hi - lo) / 2;

    if (below(c, &pf->nums[mid].v))
      lo = mid + 1;
    else
      hi = mid;
  }
  a = lo;
  hi = pf->nsorted;
  while (lo < hi) { /* first entry above, at or after a */
    size_t mid = lo + (hi - lo) / 2;

    if (above(c, &pf->nums[mid].v))
      hi = mid;
    else
      lo = mid + 1;
  }
  b = lo;
  for (size_t i = a; i < b; i++)
    pidbuf_add(&buf, pf->nums[i].pid);
  for (size_t i = pf->nsorted; i < pf->nnum; i++)
    if (!below(c, &pf->nums[i].v) && !above(c, &pf->nums[i].v))
      pidbuf_add(&buf, pf->nums[i].pid);
  pidbuf_flush(&buf);
  *out = buf.bm;
  return VS_OK;
}

/* ---- reading points -------------------------------------------------------------------- */

/* The payload of a point record (storage.h), or -1 when the record is too
 * short for its header and id: such a point passes no filter. */
static int rec_payload(const MDB_val *rec, const uint8_t **p, size_t *len) {
  vs__prec pr;

  if (vs__point_parse(rec, &pr))
    return -1;
  *p = pr.payload;
  *len = pr.payload_len;
  return 0;
}

/* Indexing one payload into a set of fields (vs__payload_walk callbacks). */
typedef struct ictx {
  pfield **fields;
  size_t n;
  uint32_t pid;
} ictx;

static int ikey(void *ctx, const char *key, size_t len) {
  const ictx *ic = ctx;

  for (size_t i = 0; i < ic->n; i++)
    if (ic->fields[i]->len == len && memcmp(ic->fields[i]->name, key, len) == 0)
      return (int)i;
  return -1;
}

static int ival(void *ctx, int slot, const vs__scalar *v) {
  const ictx *ic = ctx;

  return field_add(ic->fields[slot], v, ic->pid);
}

static int index_payload(pfield **fields, size_t n, uint32_t pid, const MDB_val *rec) {
  ictx ic = {fields, n, pid};
  const uint8_t *p;
  size_t len;

  if (n == 0 || rec_payload(rec, &p, &len))
    return VS_OK;
  return vs__payload_walk(p, len, ikey, ival, &ic);
}

/* One pass over the points of the snapshot: with field == NULL, fill
 * `live`; otherwise index that field for the live points. */
static int scan_points(vs__pix *x, MDB_txn *txn, const vs__coll *c, pfield *field, vs_error *err) {
  MDB_cursor *cur;
  MDB_val k, v;
  int mrc, rc = VS_OK;

  mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur);
  if (mrc)
    return vs__mdb_err(err, mrc, "open a point cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const uint8_t *p;
    uint64_t pid;
    size_t len;

    if (k.mv_size != sizeof(pid)) {
      rc = vs__err(err, VS_ECORRUPT, "a point key of '%s' is malformed", c->name);
      break;
    }
    memcpy(&pid, k.mv_data, sizeof(pid));
    if (pid > UINT32_MAX) {
      x->unusable = 1;
      break;
    }
    if (field == NULL) {
      if (rec_payload(&v, &p, &len) == 0)
        roaring_bitmap_add(x->live, (uint32_t)pid);
    } else if (roaring_bitmap_contains(x->live, (uint32_t)pid)) {
      rc = index_payload(&field, 1, (uint32_t)pid, &v);
      if (rc) {
        vs__err(err, rc, "out of memory indexing field '%.*s'", (int)field->len, field->name);
        break;
      }
    }
  }
  if (rc == VS_OK && !x->unusable && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the points");
  mdb_cursor_close(cur);
  return rc;
}

/* ---- catching up -------------------------------------------------------------------------- */

static void pix_clear(vs__pix *x) {
  for (size_t i = 0; i < x->nfields; i++)
    field_free(x->fields[i]);
  x->nfields = 0;
  roaring_bitmap_clear(x->live);
  x->ndels = 0;
  x->nholes = 0;
  x->built = x->broken = 0;
  x->applied = x->floor = x->stale = 0;
}

static int dels_push(vs__pix *x, uint64_t seq, uint32_t pid) {
  if (x->ndels == x->delcap) {
    size_t cap = x->delcap ? x->delcap * 2 : 256;
    del *d = vs__realloc(x->dels, cap * sizeof(*d));

    if (d == NULL)
      return VS_ENOMEM;
    x->dels = d;
    x->delcap = cap;
  }
  x->dels[x->ndels].seq = seq;
  x->dels[x->ndels].pid = pid;
  x->ndels++;
  return VS_OK;
}

/* Record that snapshots in [lo, hi) cannot be reconstructed. */
static void hole_add(vs__pix *x, uint64_t lo, uint64_t hi) {
  if (x->nholes == HOLES_MAX) { /* give up the oldest: raise the floor over it */
    x->floor = x->holes[0].hi;
    memmove(x->holes, x->holes + 1, (HOLES_MAX - 1) * sizeof(hole));
    x->nholes--;
  }
  x->holes[x->nholes].lo = lo;
  x->holes[x->nholes].hi = hi;
  x->nholes++;
}

typedef struct replay_ctx {
  vs__pix *x;
  MDB_txn *txn;
  const vs__coll *c;
  uint64_t gone, orphan; /* see replay() */
} replay_ctx;

static int replay_one(void *ctx, uint64_t seq, vs_change_op op, uint64_t pid, vs_error *err) {
  replay_ctx *r = ctx;
  vs__pix *x = r->x;
  int rc;

  if (pid > UINT32_MAX) {
    x->unusable = 1;
    return VS__LOG_STOP;
  }
  if (op == VS_CHANGE_UPSERT) {
    MDB_val pk = {sizeof(pid), &pid}, rec;
    const uint8_t *pl;
    size_t len;
    int mrc;

    if (roaring_bitmap_contains(x->live, (uint32_t)pid))
      return VS_OK; /* already indexed */
    mrc = mdb_get(r->txn, r->c->dbi[VS__DBI_PTS], &pk, &rec);
    if (mrc == MDB_NOTFOUND) { /* deleted later in the log: see the delete */
      r->gone = r->gone < seq ? r->gone : seq;
      return VS_OK;
    }
    if (mrc)
      return vs__mdb_err(err, mrc, "read a point");
    if (rec_payload(&rec, &pl, &len))
      return VS_OK; /* malformed: passes nothing, so not live */
    roaring_bitmap_add(x->live, (uint32_t)pid);
    rc = index_payload(x->fields, x->nfields, (uint32_t)pid, &rec);
    return rc ? vs__err(err, rc, "out of memory indexing payloads") : VS_OK;
  }
  if (roaring_bitmap_contains(x->live, (uint32_t)pid)) {
    roaring_bitmap_remove(x->live, (uint32_t)pid);
    x->stale++;
    rc = dels_push(x, seq, (uint32_t)pid);
    return rc ? vs__err(err, rc, "out of memory") : VS_OK;
  }
  /* A point never indexed: malformed (it passes nothing, so no snapshot
   * needs it), or gone before its upsert was replayed, which can only have
   * happened in this replay. */
  r->orphan = seq;
  return VS_OK;
}

/* Replay the log from x->applied + 1 to `last`.  `gone` is the first
 * upsert whose point this snapshot no longer has, `orphan` the last delete
 * of a pid that was never live here: together they bound the hole. */
static int replay(vs__pix *x, MDB_txn *txn, const vs__coll *c, uint64_t last, vs_error *err) {
  replay_ctx r = {x, txn, c, UINT64_MAX, 0};
  int rc = vs__log_each(txn, c, x->applied, last, replay_one, &r, err);

  if (r.gone < r.orphan)
    hole_add(x, r.gone, r.orphan);
  if (rc == VS_OK && !x->unusable && x->applied < last)
    x->applied = last;
  return rc;
}

/* Drop the values of deleted points from every set, once they outnumber
 * the live points.  Older snapshots can no longer be reconstructed. */
static void compact(vs__pix *x) {
  uint64_t live = roaring_bitmap_get_cardinality(x->live);

  if (x->stale < COMPACT_MIN || x->stale <= live)
    return;
  for (size_t i = 0; i < x->nfields; i++) {
    pfield *pf = x->fields[i];
    size_t m = 0, sorted = 0;

    for (size_t j = 0; j < pf->cap; j++)
      if (pf->slots[j].bm != NULL) {
        roaring_bitmap_and_inplace(pf->slots[j].bm, x->live);
        roaring_bitmap_shrink_to_fit(pf->slots[j].bm);
      }
    for (size_t j = 0; j < pf->nnum; j++) {
      if (j == pf->nsorted)
        sorted = m;
      if (roaring_bitmap_contains(x->live, pf->nums[j].pid))
        pf->nums[m++] = pf->nums[j];
    }
    pf->nsorted = pf->nsorted == pf->nnum ? m : sorted;
    pf->nnum = m;
  }
  x->ndels = 0;
  x->nholes = 0;
  x->stale = 0;
  x->floor = x->applied;
}

static pfield *field_get(const vs__pix *x, const char *name, size_t len) {
  for (size_t i = 0; i < x->nfields; i++)
    if (x->fields[i]->len == len && memcmp(x->fields[i]->name, name, len) == 0)
      return x->fields[i];
  return NULL;
}

/* Can x answer snapshot `last` for filter f as it is (READY), after
 * update() (UPDATE), or not at all (NEVER: the snapshot is one the index
 * has moved past and cannot reconstruct, or the index is unusable)? */
enum { NEVER, UPDATE, READY };

static int readiness(const vs__pix *x, uint64_t last, const vs__filter *f) {
  size_t n = vs__filter_field_count(f);
  int r = READY;

  if (x->unusable)
    return NEVER;
  if (!x->built || x->broken || x->applied < last)
    return UPDATE;
  if (last < x->floor)
    return NEVER;
  for (size_t i = 0; i < x->nholes; i++)
    if (x->holes[i].lo <= last && last < x->holes[i].hi)
      return NEVER;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *name = vs__filter_field(f, i, &len);
    const pfield *pf = field_get(x, name, len);

    if (pf == NULL && x->applied > last)
      return NEVER; /* a field can only be built at the index's own snapshot */
    if (pf == NULL || needs_merge(pf))
      r = UPDATE;
    else if (pf->since > last)
      return NEVER;
  }
  return r;
}

/* Bring x up to snapshot `last` and index f's fields; write lock held.
 * What cannot be done for this snapshot (a field to build when x is past
 * it) is left undone: readiness() then says so and the caller falls back. */
static int update(vs__pix *x, MDB_txn *txn, const vs__coll *c, uint64_t last, const vs__filter *f,
                  vs_error *err) {
  size_t n = vs__filter_field_count(f);
  int rc = VS_OK;

  if (x->broken)
    pix_clear(x);
  if (x->unusable)
    return VS_OK;
  if (!x->built) {
    rc = scan_points(x, txn, c, NULL, err);
    if (rc || x->unusable)
      goto out;
    x->built = 1;
    x->applied = x->floor = last;
  } else if (x->applied < last) {
    rc = replay(x, txn, c, last, err);
    if (rc || x->unusable)
      goto out;
    compact(x);
  }
  for (size_t i = 0; i < n && rc == VS_OK; i++) {
    size_t len;
    const char *name = vs__filter_field(f, i, &len);
    pfield *pf = field_get(x, name, len);

    if (pf == NULL && x->applied == last) {
      if (x->nfields == x->fcap) {
        size_t cap = x->fcap ? 2 * x->fcap : 8;
        pfield **fs = vs__realloc(x->fields, cap * sizeof(*fs));

        if (fs == NULL) {
          rc = vs__err(err, VS_ENOMEM, "out of memory");
          break;
        }
        x->fields = fs;
        x->fcap = cap;
      }
      pf = field_new(name, len, last);
      if (pf == NULL) {
        rc = vs__err(err, VS_ENOMEM, "out of memory");
        break;
      }
      x->fields[x->nfields++] = pf; /* owned by x from here, even on failure */
      if ((rc = scan_points(x, txn, c, pf, err)))
        break;
    }
    if (pf && needs_merge(pf) && (rc = nums_merge(pf)))
      vs__err(err, rc, "out of memory sorting field '%.*s'", (int)len, name);
  }
out:
  if (rc)
    x->broken = 1; /* a half-done catch-up must not be trusted */
  if (x->unusable) {
    pix_clear(x); /* give the memory back: it will not be used again */
    x->unusable = 1;
  }
  return rc;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

typedef struct ectx {
  const vs__pix *x;
  MDB_txn *txn;
  const vs__coll *c;
  pfield **map; /* filter field index -> field */
} ectx;

static int eval_field(void *ctx, const vs__fcond *fc, const roaring_bitmap_t **out, int *owned) {
  const ectx *e = ctx;
  const pfield *pf = e->map[fc->field];
  const roaring_bitmap_t *one[SETS_ON_STACK], **sets = one;
  roaring_bitmap_t *r;
  size_t m = 0;
  int rc;

  *out = NULL;
  *owned = 0;
  if (pf == NULL) /* readiness() makes every field the filter names */
    return VS_EINTERNAL;
  switch (fc->kind) {
  case VS__FCOND_MATCH: {
    vs__scalar v = fc->values[0];

    vs__scalar_canon(&v);
    *out = kw_find(pf, &v);
    return VS_OK;
  }
  case VS__FCOND_ANY:
    if (fc->n > SETS_ON_STACK && (sets = vs__malloc(fc->n * sizeof(*sets))) == NULL)
      return VS_ENOMEM;
    for (size_t i = 0; i < fc->n; i++) {
      vs__scalar v = fc->values[i];
      const roaring_bitmap_t *s;

      vs__scalar_canon(&v);
      if ((s = kw_find(pf, &v)) != NULL)
        sets[m++] = s;
    }
    rc = VS_OK;
    if (m == 1) {
      *out = sets[0];
    } else if (m > 1) {
      r = roaring_bitmap_or_many(m, sets);
      if (r == NULL)
        rc = VS_ENOMEM;
      *out = r;
      *owned = 1;
    }
    if (sets != one)
      vs__free(sets);
    return rc;
  default:
    rc = range_set(pf, fc, &r);
    *out = r;
    *owned = 1;
    return rc;
  }
}

/* has_id: the ids table maps each external id to its live pid. */
static int eval_ids(void *ctx, const vs__scalar *ids, size_t n, const roaring_bitmap_t **out,
                    int *owned) {
  const ectx *e = ctx;
  roaring_bitmap_t *r = roaring_bitmap_create();

  *out = NULL;
  *owned = 0;
  if (r == NULL)
    return VS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    uint8_t key[VS__ID_KEY_MAX];
    vs_id id = {VS_ID_INT, 0, NULL, 0};
    MDB_val k, v;
    uint64_t pid;
    int mrc;

    if (ids[i].kind == VS__SCALAR_INT) {
      id.num = ids[i].u.mag;
    } else {
      id.kind = VS_ID_STR;
      id.str = ids[i].u.s;
      id.len = ids[i].len;
    }
    k.mv_size = vs__id_key(&id, key);
    k.mv_data = key;
    mrc = mdb_get(e->txn, e->c->dbi[VS__DBI_IDS], &k, &v);
    if (mrc == MDB_NOTFOUND)
      continue;
    if (mrc) {
      roaring_bitmap_free(r);
      return vs__mdb_status(mrc);
    }
    if (v.mv_size != sizeof(pid))
      continue; /* a malformed id record names no point */
    memcpy(&pid, v.mv_data, sizeof(pid));
    if (pid <= UINT32_MAX)
      roaring_bitmap_add(r, (uint32_t)pid);
  }
  *out = r;
  *owned = 1;
  return VS_OK;
}

/* The universe of snapshot `st`: see the file comment.  *tmp is set when
 * it had to be made (the caller frees it). */
static int universe(const vs__pix *x, const vs__state *st, const roaring_bitmap_t **all,
                    roaring_bitmap_t **tmp) {
  uint64_t last = st->next_seq - 1;
  size_t lo = 0, hi = x->ndels;
  roaring_bitmap_t *u;

  *tmp = NULL;
  if (x->applied == last) {
    *all = x->live;
    return VS_OK;
  }
  u = roaring_bitmap_copy(x->live);
  if (u == NULL)
    return VS_ENOMEM;
  while (lo < hi) { /* the first delete after the snapshot */
    size_t mid = lo + (hi - lo) / 2;

    if (x->dels[mid].seq <= last)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (size_t i = lo; i < x->ndels; i++)
    roaring_bitmap_add(u, x->dels[i].pid);
  if (st->next_pid <= UINT32_MAX)
    roaring_bitmap_remove_range(u, st->next_pid, (uint64_t)UINT32_MAX + 1);
  *all = *tmp = u;
  return VS_OK;
}

static int evaluate(const vs__pix *x, MDB_txn *txn, const vs__coll *c, const vs__state *st,
                    const vs__filter *f, roaring_bitmap_t **out, vs_error *err) {
  size_t n = vs__filter_field_count(f);
  pfield *stack[FIELDS_ON_STACK], **map = stack;
  ectx e = {x, txn, c, NULL};
  vs__set_ops ops = {NULL, eval_field, eval_ids, &e};
  roaring_bitmap_t *tmp = NULL;
  int rc;

  if (n > FIELDS_ON_STACK && (map = vs__malloc(n * sizeof(*map))) == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *name = vs__filter_field(f, i, &len);

    map[i] = field_get(x, name, len);
  }
  e.map = map;
  rc = universe(x, st, &ops.all, &tmp);
  if (rc == VS_OK)
    rc = vs__filter_eval(f, &ops, out);
  if (tmp)
    roaring_bitmap_free(tmp);
  if (map != stack)
    vs__free(map);
  if (rc == VS_ENOMEM)
    return vs__err(err, rc, "out of memory evaluating a filter");
  return rc ? vs__err(err, rc, "filter evaluation failed: %s", vs_strerror(rc)) : VS_OK;
}

/* ---- the list, and the entry point ------------------------------------------------------------
 */

static void pix_free(vs__pix *x) {
  pix_clear(x);
  roaring_bitmap_free(x->live);
  vs__free(x->fields);
  vs__free(x->dels);
  pthread_rwlock_destroy(&x->lock);
  vs__free(x);
}

/* The index of collection cid, made if needed.  pindex_lock held. */
static int pix_get(vs_db *db, uint32_t cid, vs__pix **out) {
  vs__pindex *pi = db->pindex;
  vs__pix *x;

  if (pi == NULL) {
    pi = vs__calloc(1, sizeof(*pi));
    if (pi == NULL)
      return VS_ENOMEM;
    db->pindex = pi;
  }
  for (x = pi->list; x; x = x->next)
    if (x->cid == cid) {
      *out = x;
      return VS_OK;
    }
  x = vs__calloc(1, sizeof(*x));
  if (x == NULL)
    return VS_ENOMEM;
  x->live = roaring_bitmap_create();
  if (x->live == NULL || pthread_rwlock_init(&x->lock, NULL)) {
    if (x->live)
      roaring_bitmap_free(x->live);
    vs__free(x);
    return VS_ENOMEM;
  }
  x->cid = cid;
  x->next = pi->list;
  pi->list = x;
  *out = x;
  return VS_OK;
}

int vs__pindex_eval(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs__state *st,
                    const vs__filter *f, roaring_bitmap_t **out, vs_error *err) {
  uint64_t last = st->next_seq - 1;
  vs__pix *x;
  int rc, r;

  *out = NULL;
  pthread_mutex_lock(&db->pindex_lock);
  rc = pix_get(db, c->cid, &x);
  pthread_mutex_unlock(&db->pindex_lock);
  if (rc)
    return vs__err(err, rc, "out of memory");

  pthread_rwlock_rdlock(&x->lock);
  r = readiness(x, last, f);
  if (r == READY)
    rc = evaluate(x, txn, c, st, f, out, err);
  pthread_rwlock_unlock(&x->lock);
  if (r != UPDATE)
    return rc;

  /* Catch up, then evaluate under the same (write) lock: rare enough that
   * there is no point in dropping to a read lock first. */
  pthread_rwlock_wrlock(&x->lock);
  rc = update(x, txn, c, last, f, err);
  if (rc == VS_OK && readiness(x, last, f) == READY)
    rc = evaluate(x, txn, c, st, f, out, err);
  pthread_rwlock_unlock(&x->lock);
  return rc;
}

void vs__pindex_close(vs_db *db) {
  vs__pindex *pi = db->pindex;
  vs__pix *x, *next;

  if (pi == NULL)
    return;
  for (x = pi->list; x; x = next) {
    next = x->next;
    pix_free(x);
  }
  vs__free(pi);
  db->pindex = NULL;
}
