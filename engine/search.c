/*
 * search.c: vs_search() and vs_collection_rebuild(): checking a query,
 * choosing between an exact scan and the index, re-scoring candidates from
 * the stored vectors, and turning pids into hits.
 *
 * Whatever plan runs, every returned score is computed here from the vector
 * stored in LMDB (read in place), so compressed codes (PQ, SQ) and the MIPS
 * reduction only decide which candidates are considered, never the scores.
 * The final order is by score, ties by the lower pid, so a query answers the
 * same way every time.
 *
 * A filter is answered first by the payload index (pindex.c): one bitmap of
 * exactly the points that pass, whose size chooses the plan and whose
 * membership test is the filter inside the index walk.  When the index
 * cannot answer (see vs__pindex_eval), the filter is applied to each
 * point's record instead, and the plan is chosen from a sampled estimate.
 */
#include <math.h>
#include <roaring/roaring.h>
#include <stdlib.h>
#include <string.h>

#include "engine/filter.h"
#include "engine/pindex.h"
#include "engine/query.h"
#include "engine/storage.h"
#include "engine/tindex.h"
#include "engine/vindex.h"
#include "index/distance.h"

/* Filters that pass at most this many points (or this fraction; counted
 * exactly by the payload index, else estimated from a sample) are answered
 * by scanning the passing points: a graph walk that skips nearly every
 * node it meets is slower than that, and returns fewer than k hits.  See
 * plan_and_run(). */
#define FILTER_SCAN_POINTS 2000
#define FILTER_SCAN_PER_K 50
#define FILTER_SCAN_FRACTION 0.02
#define FILTER_SAMPLE 256
/* Passing points newer than a filter's sub-index (scored exactly) past
 * which the sub-index is rebuilt. */
#define FILTER_STALE_POINTS 2000
#define FILTER_WALK_K 3 /* index-filtered: passing points asked of the walk, per k */

typedef vs__scored scored;

typedef struct search_ctx {
  const vs_search_params *p;
  float *q;    /* the query, normalised for cosine */
  scored *top; /* the result, best first */
  size_t ntop;
  size_t nall;  /* index plan: candidates in top, of which make_hits keeps ntop */
  int retries;  /* attempts that found the index past their snapshot */
  vs_hit *hits; /* the output allocation */
  vs_search_info info;
  vs__pidset own_ex;          /* p->exclude, resolved in the snapshot... */
  const vs__pidset *ex;       /* ...or given by the caller (ex_given): what applies */
  const vs__pidset *ex_given; /* vs__vector_leg's caller resolved the exclusions */
} search_ctx;

static int higher_better(vs_metric m) {
  return m != VS_METRIC_L2;
}

/* The exact score of stored vector x for query q (q normalised for cosine). */
static float exact_score(vs_metric m, const float *q, const float *x, uint32_t dim) {
  float s;

  if (m == VS_METRIC_L2) {
    vs__l2sqr_ny(&s, q, x, dim, 1);
    return s;
  }
  vs__ip_ny(&s, q, x, dim, 1);
  if (m == VS_METRIC_COSINE) {
    float norm = sqrtf(vs__norm_sqr(x, dim));
    s = norm > 0 ? s / norm : 0;
  }
  return s;
}

static int cmp_pid(const scored *x, const scored *y) {
  return (x->pid > y->pid) - (x->pid < y->pid);
}

static int by_ascending(const void *a, const void *b) {
  const scored *x = a, *y = b;
  return x->score != y->score ? (x->score < y->score ? -1 : 1) : cmp_pid(x, y);
}

static int by_descending(const void *a, const void *b) {
  const scored *x = a, *y = b;
  return x->score != y->score ? (x->score > y->score ? -1 : 1) : cmp_pid(x, y);
}

/* Best first, ties by the lower pid. */
static void sort_scored(scored *s, size_t n, vs_metric m) {
  qsort(s, n, sizeof(*s), higher_better(m) ? by_descending : by_ascending);
}

/* The best k of a stream of scored points: collected into a buffer of
 * 2k + 64 that is cut back to k (sorted) whenever it fills, so each point
 * costs amortised O(log k) and no heap is kept.  After the first cut, a
 * point no better than the k-th best so far is dropped at once. */
typedef struct topk {
  scored *buf;
  size_t n, k, cap;
  vs_metric metric;
  int cut;      /* the buffer has been cut back at least once */
  scored worst; /* then: the k-th best at the last cut */
} topk;

static int topk_init(topk *t, size_t k, vs_metric m, vs_error *err) {
  t->k = k;
  t->cap = 2 * k + 64;
  t->n = 0;
  t->metric = m;
  t->cut = 0;
  t->buf = vs__malloc(t->cap * sizeof(*t->buf));
  return t->buf ? VS_OK : vs__err(err, VS_ENOMEM, "out of memory");
}

static void topk_push(topk *t, uint64_t pid, float score) {
  scored s = {score, pid};

  if (t->cut && (higher_better(t->metric) ? by_descending : by_ascending)(&s, &t->worst) >= 0)
    return;
  t->buf[t->n] = s;
  if (++t->n == t->cap) {
    sort_scored(t->buf, t->n, t->metric);
    t->n = t->k;
    t->worst = t->buf[t->k - 1];
    t->cut = 1;
  }
}

/* Hand the sorted best k to sc (which then owns the buffer). */
static void topk_finish(topk *t, search_ctx *sc) {
  sort_scored(t->buf, t->n, t->metric);
  sc->top = t->buf;
  sc->ntop = t->n < t->k ? t->n : t->k;
}

/* Does the point record `rec` (storage.h layout) pass filter f? */
static int record_passes(const vs__filter *f, const MDB_val *rec) {
  vs__prec pr;

  return vs__point_parse(rec, &pr) == 0 && vs__filter_match(f, &pr.id, pr.payload, pr.payload_len);
}

/* Which points pass the filter: the payload index's bitmap when it could
 * answer, else the filter itself, applied to each point's record. */
typedef struct passing {
  MDB_txn *txn;
  const vs__coll *c;
  const vs__filter *f;         /* NULL: no filter */
  const roaring_bitmap_t *set; /* NULL: apply f point by point */
  const vs__pidset *ex;        /* excluded points (already taken out of set) */
  /* The filter's own passing set, before exclusions: what a sub-index of
   * the filter covers (one query's exclusions must not shape it). */
  const roaring_bitmap_t *fset;
} passing;

/* vs__keep_fn for the index: not excluded, and a bitmap probe, or look the
 * point up and apply the filter. */
static int keep_passing(void *ctx, uint64_t pid) {
  const passing *ps = ctx;
  MDB_val k = {sizeof(pid), &pid}, v;

  if (ps->set)
    return pid <= UINT32_MAX && roaring_bitmap_contains(ps->set, (uint32_t)pid);
  if (ps->ex->n && vs__pidset_has(ps->ex, pid))
    return 0;
  if (ps->f == NULL)
    return 1;
  return mdb_get(ps->txn, ps->c->dbi[VS__DBI_PTS], &k, &v) == 0 && record_passes(ps->f, &v);
}

/* Exact plans: score every stored vector (no filter), or every point that
 * passes the filter, and keep the best k. */
static int scan_all(MDB_txn *txn, const vs__coll *c, const vs__filter *f, search_ctx *sc,
                    vs_error *err) {
  MDB_cursor *cur;
  MDB_val key, val;
  topk t;
  int mrc, rc;

  rc = topk_init(&t, sc->p->k, c->metric, err);
  if (rc)
    return rc;
  mrc = mdb_cursor_open(txn, c->dbi[f ? VS__DBI_PTS : VS__DBI_VEC], &cur);
  if (mrc) {
    vs__free(t.buf);
    return vs__mdb_err(err, mrc, "open a cursor");
  }
  for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); mrc == 0 && rc == VS_OK;
       mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    uint64_t pid;
    const float *x = val.mv_data;

    memcpy(&pid, key.mv_data, 8);
    if (sc->ex->n && vs__pidset_has(sc->ex, pid))
      continue;
    if (f) {
      if (!record_passes(f, &val))
        continue;
      rc = vs__vector_get(txn, c, pid, &x, err);
      if (rc)
        break;
    } else if (val.mv_size != (size_t)c->dim * sizeof(float) || ((uintptr_t)x & 3)) {
      rc = vs__err(err, VS_ECORRUPT, "a stored vector is malformed");
      break;
    }
    topk_push(&t, pid, exact_score(c->metric, sc->q, x, c->dim));
    sc->info.candidates++;
  }
  if (rc == VS_OK && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the points");
  mdb_cursor_close(cur);
  if (rc) {
    vs__free(t.buf);
    return rc;
  }
  topk_finish(&t, sc);
  return VS_OK;
}

/* Hint that x[0..n) is about to be read. */
static void prefetch(const float *x, size_t n) {
#if defined(__GNUC__)
  for (size_t i = 0; i < n; i += 16)
    __builtin_prefetch(x + i);
#else
  (void)x, (void)n;
#endif
}

/* Exact plan over the points of `set` (the payload index's answer): score
 * exactly those.  The pids come in ascending order, so one cursor reads
 * their vectors: LMDB looks a key up within the cursor's current leaf page
 * when it lies there, which spares most descents from the root.  The scan
 * is bound by memory (each vector is read once, from its own page), so the
 * next vector is located and prefetched before the current one is scored. */
static int scan_set(MDB_txn *txn, const vs__coll *c, const roaring_bitmap_t *set, search_ctx *sc,
                    vs_error *err) {
  roaring_uint32_iterator_t it;
  const float *cur_x = NULL;
  uint64_t cur_pid = 0;
  MDB_cursor *cur;
  topk t;
  int rc, mrc = 0;

  rc = topk_init(&t, sc->p->k, c->metric, err);
  if (rc)
    return rc;
  mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_VEC], &cur);
  if (mrc) {
    vs__free(t.buf);
    return vs__mdb_err(err, mrc, "open a vector cursor");
  }
  roaring_init_iterator(set, &it);
  for (;;) {
    const float *x = NULL;
    uint64_t pid = 0;

    /* Locate the next vector, if any. */
    while (it.has_value && x == NULL) {
      MDB_val k = {sizeof(pid), &pid}, v;

      pid = it.current_value;
      roaring_advance_uint32_iterator(&it);
      mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
      if (mrc == MDB_NOTFOUND) { /* no vector: nothing to score (as index_search) */
        mrc = 0;
        continue;
      }
      if (mrc)
        break;
      x = v.mv_data;
      if (v.mv_size != (size_t)c->dim * sizeof(float) || ((uintptr_t)x & 3)) {
        rc = vs__err(err, VS_ECORRUPT, "stored vector of pid %llu is malformed",
                     (unsigned long long)pid);
        break;
      }
      prefetch(x, c->dim);
    }
    if (rc || mrc)
      break;
    /* Score the previous one while the next one streams in. */
    if (cur_x) {
      topk_push(&t, cur_pid, exact_score(c->metric, sc->q, cur_x, c->dim));
      sc->info.candidates++;
    }
    if (x == NULL)
      break;
    cur_x = x;
    cur_pid = pid;
  }
  mdb_cursor_close(cur);
  if (rc == VS_OK && mrc)
    rc = vs__mdb_err(err, mrc, "read a vector");
  if (rc) {
    vs__free(t.buf);
    return rc;
  }
  topk_finish(&t, sc);
  return VS_OK;
}

/* Estimate the fraction of live points passing f from a fixed-seed sample
 * of pids (pids are dense, less deletions), falling back to the first
 * points in pid order when the sample finds too few live ones. */
static double estimate_selectivity(MDB_txn *txn, const vs__coll *c, const vs__filter *f,
                                   const vs__state *st) {
  uint64_t seed = 0x9e3779b97f4a7c15ull, span = st->next_pid - 1;
  size_t live = 0, pass = 0;
  MDB_cursor *cur;
  MDB_val k, v;

  for (int i = 0; i < FILTER_SAMPLE && span > 0; i++) {
    uint64_t pid;
    MDB_val pk = {sizeof(pid), &pid};

    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    pid = 1 + seed % span;
    if (mdb_get(txn, c->dbi[VS__DBI_PTS], &pk, &v) == 0) {
      live++;
      pass += (size_t)record_passes(f, &v);
    }
  }
  if (live < FILTER_SAMPLE / 8 && mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur) == 0) {
    live = pass = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && live < 4 * FILTER_SAMPLE;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      live++;
      pass += (size_t)record_passes(f, &v);
    }
    mdb_cursor_close(cur);
  }
  return live ? (double)pass / (double)live : 0.0;
}

/* Index plan: candidates from the segments and fresh points (passing ps,
 * when given), re-scored.
 *
 * With the payload index's bitmap, the walk is asked for FILTER_WALK_K * k
 * passing points, and the exact scan of the bitmap takes over when fewer
 * come back (unless fewer pass at all).  FAISS's HNSW walk is bounded by
 * ef whatever the filter, and only collects the passing points it happens
 * to visit: when the filter is correlated with the vectors (the points of
 * one class, far from a query of another), the neighbourhood it explores
 * holds few of them, and those few are not the nearest passing ones.
 * Coming back with fewer than 3k of the ~ef * M points visited is that
 * case's signature; with an independent filter of the same size the walk
 * meets several times 3k passing points.  (On Fashion-MNIST, a filter on
 * one class, 10% of the points, falls back for about 3 queries in 4 and
 * keeps recall@10 at 0.98; one on an independent 10% almost never falls
 * back.  Walks that look further -- a larger ef -- return more passing
 * points but not nearer ones: recall drops.)  Either way k hits come back
 * whenever k points pass. */
/* Append the scored candidates to s[*m..]: the index's score where it is
 * exact, else the stored vector's. */
static int score_cands(MDB_txn *txn, const vs__coll *c, const float *q, const vs__cand *cands,
                       size_t n, scored *s, size_t *m, vs_error *err) {
  for (size_t i = 0; i < n; i++) {
    const float *x;
    int rc;

    s[*m].pid = cands[i].pid;
    s[*m].id1 = cands[i].id1;
    if (cands[i].exact) {
      s[(*m)++].score = cands[i].score;
      continue;
    }
    /* A point the index knows but this snapshot does not (written after it
     * began) is skipped: it is as if the search ran a moment earlier.
     * make_hits() skips such points among the exact ones. */
    rc = vs__vector_get(txn, c, cands[i].pid, &x, err);
    if (rc == VS_ENOTFOUND)
      continue;
    if (rc)
      return rc;
    s[(*m)++].score = exact_score(c->metric, q, x, c->dim);
  }
  return VS_OK;
}

static int index_search(vs_db *db, MDB_txn *txn, const vs__coll *c, const passing *ps,
                        search_ctx *sc, vs_error *err) {
  const vs_search_params *p = sc->p;
  const roaring_bitmap_t *set = ps ? ps->set : NULL;
  size_t want = set ? FILTER_WALK_K * p->k : p->k;
  const roaring_bitmap_t *covered;
  roaring_bitmap_t *extra = NULL;
  uint64_t digest;
  vs__cand *cands = NULL;
  size_t n = 0, m = 0;
  uint64_t nextra;
  int short_of_k;
  vs__vix *v;
  scored *s;
  int rc;

  rc = vs__vix_acquire(db, txn, c, &v, err);
  /* One retry: vs__coll_read gives three attempts in all, and a stale
   * collection handle may take one of them. */
  if (rc == VS__RETRY && ++sc->retries < 2)
    return VS__RETRY;    /* vs__coll_read runs the search again in a new snapshot */
  if (rc == VS__RETRY) { /* writes keep outrunning us: the scan is exact in any snapshot */
    strcpy(sc->info.plan, "exact-fallback");
    return set ? scan_set(txn, c, set, sc, err) : scan_all(txn, c, ps ? ps->f : NULL, sc, err);
  }
  if (rc)
    return rc;
  if (want > VS_K_MAX) /* still at least k: k <= VS_K_MAX */
    want = VS_K_MAX;
  digest = set ? vs__filter_digest(ps->f) : 0;
  covered = set ? vs__vix_filter_covered(v, digest) : NULL;
  if (covered) {
    /* This filter has a sub-index (vindex.c): walk it, and score exactly
     * the passing points added since it was built. */
    extra = roaring_bitmap_andnot(set, covered);
    /* Its walk stays among passing points: 2k candidates are plenty. */
    rc = extra ? vs__vix_filter_candidates(v, digest, sc->q, 2 * p->k, p->ef, p->nprobe,
                                           keep_passing, (void *)(uintptr_t)ps, &cands, &n, err)
               : vs__err(err, VS_ENOMEM, "out of memory");
    want = p->k;
    short_of_k = 0;
    strcpy(sc->info.plan, "filter-index");
  } else {
    rc = vs__vix_candidates(v, sc->q, want, p->ef, p->nprobe, ps ? keep_passing : NULL,
                            (void *)(uintptr_t)ps, &cands, &n, &short_of_k, &sc->info, err);
  }
  vs__vix_release(v);
  if (rc) {
    if (extra)
      roaring_bitmap_free(extra);
    return rc;
  }
  if (short_of_k && set == NULL) { /* the index could not find k: the scan can */
    vs__free(cands);
    strcpy(sc->info.plan, "exact-fallback");
    return scan_all(txn, c, ps ? ps->f : NULL, sc, err);
  }
  nextra = extra ? roaring_bitmap_get_cardinality(extra) : 0;
  if (extra && roaring_bitmap_andnot_cardinality(ps->fset, covered) > FILTER_STALE_POINTS)
    vs__vindex_filter_missed(db, v, digest, ps->fset); /* it has fallen behind: renew it */
  s = vs__malloc((n + nextra ? n + nextra : 1) * sizeof(*s));
  if (s == NULL) {
    vs__free(cands);
    if (extra)
      roaring_bitmap_free(extra);
    return vs__err(err, VS_ENOMEM, "out of memory");
  }
  if (extra) { /* passing points newer than the sub-index */
    roaring_uint32_iterator_t *it = roaring_create_iterator(extra);
    for (; it && it->has_value && rc == VS_OK; roaring_advance_uint32_iterator(it)) {
      const float *x;
      rc = vs__vector_get(txn, c, it->current_value, &x, err);
      if (rc == VS_OK) {
        s[m].pid = it->current_value;
        s[m].id1 = 0;
        s[m++].score = exact_score(c->metric, sc->q, x, c->dim);
      } else if (rc == VS_ENOTFOUND) {
        rc = VS_OK;
      }
    }
    if (it)
      roaring_free_uint32_iterator(it);
    else
      rc = vs__err(err, VS_ENOMEM, "out of memory");
    roaring_bitmap_free(extra);
  }
  if (rc == VS_OK)
    rc = score_cands(txn, c, sc->q, cands, n, s, &m, err);
  vs__free(cands);
  if (rc) {
    vs__free(s);
    return rc;
  }
  if (set && m < want && m < roaring_bitmap_get_cardinality(set)) {
    vs__free(s);
    /* The walk missed the passing points; if this filter keeps doing
     * that, it gets a sub-index of its own. */
    if (strcmp(sc->info.plan, "filter-index") != 0)
      vs__vindex_filter_missed(db, v, digest, ps->fset);
    strcpy(sc->info.plan, "exact-fallback");
    return scan_set(txn, c, set, sc, err);
  }
  sc->info.candidates = m;
  sort_scored(s, m, c->metric);
  sc->top = s;
  sc->nall = m; /* make_hits() takes the first k that this snapshot holds */
  sc->ntop = m < p->k ? m : p->k;
  return VS_OK;
}

/* make_hits: hand the result to vs__hits_make (engine/query.h). */
static int make_hits(MDB_txn *txn, const vs__coll *c, search_ctx *sc, vs_error *err) {
  return vs__hits_make(txn, c, sc->top, sc->nall ? sc->nall : sc->ntop, sc->ntop, sc->nall != 0,
                       sc->p->with, sc->p->payload_fields, sc->p->n_payload_fields, &sc->hits,
                       &sc->ntop, err);
}

/* Choose the plan.  Without a filter: the index, or the scan when asked.
 * With one: find how many points pass -- exactly, from the payload index,
 * or else estimated from a sample; few (at most FILTER_SCAN_POINTS or
 * FILTER_SCAN_PER_K * k, or under FILTER_SCAN_FRACTION of the points):
 * scan them, exactly; more: the index with the filter inside FAISS's
 * IDSelector, which falls back to the scan when the walk comes back short
 * (see index_search).  Either way k hits come back whenever k points pass.
 * Only the scan of the payload index's bitmap reads just the passing
 * points; without it, every payload is read and matched. */
static int plan_and_run(vs_db *db, MDB_txn *txn, const vs__coll *c, search_ctx *sc, vs_error *err) {
  const vs__filter *f = (const vs__filter *)sc->p->filter;
  passing ps = {txn, c, f, NULL, sc->ex, NULL};
  roaring_bitmap_t *fset = NULL;
  roaring_bitmap_t *set = NULL;
  vs__state st;
  double sel, few;
  int rc, scan;

  sc->info.selectivity = 1.0;
  if (f == NULL) {
    /* Exclusions alone: the index skips them through its IDSelector. */
    strcpy(sc->info.plan, sc->p->exact ? "exact" : sc->ex->n ? "index-filtered" : "index");
    return sc->p->exact ? scan_all(txn, c, NULL, sc, err)
                        : index_search(db, txn, c, sc->ex->n ? &ps : NULL, sc, err);
  }
  rc = vs__state_get(db, txn, c->cid, &st, err);
  if (rc)
    return rc;
  rc = vs__pindex_eval(db, txn, c, &st, f, &set, err);
  if (rc)
    return rc;
  if (set) {
    double pass;

    if (sc->ex->n && (fset = roaring_bitmap_copy(set)) == NULL) {
      roaring_bitmap_free(set);
      return vs__err(err, VS_ENOMEM, "out of memory");
    }
    vs__pidset_remove_from(sc->ex, set);
    pass = (double)roaring_bitmap_get_cardinality(set);

    sel = st.count ? pass / (double)st.count : 0.0;
    sel = sel > 1.0 ? 1.0 : sel;
  } else {
    sel = estimate_selectivity(txn, c, f, &st);
  }
  sc->info.selectivity = sel;
  few = (double)(FILTER_SCAN_PER_K * sc->p->k);
  if (few < FILTER_SCAN_POINTS)
    few = FILTER_SCAN_POINTS;
  scan = sc->p->exact || sel * (double)st.count <= few || sel < FILTER_SCAN_FRACTION;
  strcpy(sc->info.plan, scan ? (sc->p->exact ? "exact" : "filtered-scan") : "index-filtered");
  if (set == NULL)
    return scan ? scan_all(txn, c, f, sc, err) : index_search(db, txn, c, &ps, sc, err);
  ps.set = set;
  ps.fset = fset ? fset : set;
  rc = scan ? scan_set(txn, c, set, sc, err) : index_search(db, txn, c, &ps, sc, err);
  roaring_bitmap_free(set);
  if (fset)
    roaring_bitmap_free(fset);
  return rc;
}

/* Check query vector v (dim floats) against collection c and copy it to q
 * (c->dim floats), normalised for cosine. */
static int query_vector(const vs__coll *c, const float *v, size_t dim, float *q, vs_error *err) {
  int rc = vs__vector_check(v, dim, c->dim, "query vector", err);

  if (rc)
    return rc;
  memcpy(q, v, c->dim * sizeof(float));
  if (c->metric == VS_METRIC_COSINE) {
    float norm = sqrtf(vs__norm_sqr(q, c->dim));
    if (!(norm > 0))
      return vs__err(err, VS_EINVAL, "a zero query vector has no cosine similarity");
    for (uint32_t j = 0; j < c->dim; j++)
      q[j] /= norm;
  }
  return VS_OK;
}

/* The search proper, up to the ranked candidates in sc->top (all of
 * sc->nall, or sc->ntop when nall is 0). */
static int vector_top(vs_db *db, MDB_txn *txn, const vs__coll *c, search_ctx *sc, vs_error *err) {
  const vs_search_params *p = sc->p;
  int rc;

  /* vs__coll_read may run this again when the collection changed under it. */
  vs__free(sc->q);
  vs__free(sc->top);
  vs__free(sc->hits);
  vs__pidset_free(&sc->own_ex);
  sc->q = NULL, sc->top = NULL, sc->hits = NULL, sc->ntop = 0, sc->nall = 0;
  memset(&sc->info, 0, sizeof(sc->info));
  if (c->dim == 0)
    return vs__err(err, VS_EINVAL, "'%s' is a text-only collection: it has no vectors", c->name);
  sc->q = vs__malloc(c->dim * sizeof(float));
  if (sc->q == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  if ((rc = query_vector(c, p->vector, p->dim, sc->q, err)))
    return rc;
  sc->ex = sc->ex_given ? sc->ex_given : &sc->own_ex;
  if (!sc->ex_given)
    rc = vs__exclude_resolve(txn, c, p->exclude, p->n_exclude, &sc->own_ex, err);
  if (rc == VS_OK)
    rc = plan_and_run(db, txn, c, sc, err);
  if (rc == VS_OK && sc->ntop == 0)
    strcpy(sc->info.plan, "empty");
  return rc;
}

static int search_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  int rc = vector_top(db, txn, c, ctx, err);
  return rc ? rc : make_hits(txn, c, ctx, err);
}

int vs__vector_leg(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs_search_params *p,
                   const vs__pidset *ex, int *retries, vs__scored **top, size_t *n,
                   vs_search_info *info, vs_error *err) {
  search_ctx sc;
  size_t m = 0;
  int rc;

  *top = NULL;
  *n = 0;
  memset(&sc, 0, sizeof(sc));
  sc.p = p;
  sc.ex_given = ex;
  sc.retries = *retries;
  rc = vector_top(db, txn, c, &sc, err);
  *retries = sc.retries;
  /* Only points this snapshot holds (an index may know newer ones). */
  for (size_t i = 0; rc == VS_OK && i < (sc.nall ? sc.nall : sc.ntop) && m < p->k; i++) {
    MDB_val k = {8, &sc.top[i].pid}, v;
    int mrc = sc.nall && !sc.top[i].id1 ? mdb_get(txn, c->dbi[VS__DBI_PTS], &k, &v) : 0;

    if (mrc == 0)
      sc.top[m++] = sc.top[i];
    else if (mrc != MDB_NOTFOUND)
      rc = vs__mdb_err(err, mrc, "read a point");
  }
  vs__free(sc.q);
  vs__pidset_free(&sc.own_ex);
  if (rc) {
    vs__free(sc.top);
    return rc;
  }
  *top = sc.top;
  *n = m;
  *info = sc.info;
  return VS_OK;
}

int vs__search_check(const vs_search_params *p, vs_error *err) {
  int rc;

  if (p->k == 0)
    return vs__err(err, VS_EINVAL, "k must be at least 1");
  if (p->k > VS_K_MAX)
    return vs__err(err, VS_ETOOLARGE, "k is %zu, the limit is %d", p->k, VS_K_MAX);
  if (p->ef < 0 || p->nprobe < 0)
    return vs__err(err, VS_EINVAL, "ef and nprobe must not be negative");
  if (p->ef > VS_EF_MAX || p->nprobe > VS_EF_MAX)
    return vs__err(err, VS_ETOOLARGE, "ef and nprobe are limited to %d", VS_EF_MAX);
  if (p->with & ~(unsigned)(VS_GET_VECTOR | VS_GET_PAYLOAD))
    return vs__err(err, VS_EINVAL, "unknown 'with' flags 0x%x", p->with);
  if ((rc = vs__exclude_check(p->exclude, p->n_exclude, err)))
    return rc;
  return vs__fields_check(p->payload_fields, p->n_payload_fields, err);
}

int vs_search(vs_db *db, const char *name, const vs_search_params *p, vs_hit **hits, size_t *n,
              vs_search_info *info, vs_error *err) {
  search_ctx sc;
  int rc;

  if (hits)
    *hits = NULL;
  if (n)
    *n = 0;
  if (db == NULL || p == NULL || hits == NULL || n == NULL)
    return vs__err(err, VS_EINVAL, "database handle, parameters or outputs are NULL");
  if ((rc = vs__search_check(p, err)))
    return rc;
  memset(&sc, 0, sizeof(sc));
  sc.p = p;
  rc = vs__coll_read(db, name, search_step, &sc, err);
  vs__free(sc.q);
  vs__free(sc.top);
  vs__pidset_free(&sc.own_ex);
  if (rc) {
    vs__free(sc.hits);
    return rc;
  }
  if (sc.ntop == 0) {
    vs__free(sc.hits);
    sc.hits = NULL;
  }
  *hits = sc.hits;
  *n = sc.ntop;
  if (info)
    *info = sc.info;
  return VS_OK;
}

/* ---- batches ---------------------------------------------------------------------------
 *
 * vs__search_shared runs a batch of plain searches (no filter, no
 * exclusions, not exact; same k, ef, nprobe, with and fields) in one read
 * transaction with one acquisition of the index, each segment answering
 * all the queries in one FAISS call: a Flat segment then computes every
 * distance with one matrix product (BLAS) instead of one pass over the
 * vectors per query, and FAISS spreads the queries over its OpenMP
 * threads.  A query whose walk came back short (see index_search) is left
 * to vs_search. */

typedef struct shared_ctx {
  const vs_search_params *p;
  size_t nq;
  vs_hit **part;
  size_t *cnt;
  int *single; /* left to vs_search */
  int retries;
} shared_ctx;

static int shared_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  shared_ctx *b = ctx;
  const vs_search_params *p = b->p;
  size_t nq = b->nq, dim = c->dim;
  vs__cand **cands = NULL;
  size_t *n = NULL;
  int *shrt = NULL;
  float *q = NULL;
  vs__vix *v;
  int rc = VS_OK;

  for (size_t i = 0; i < nq; i++) { /* vs__coll_read may run this again */
    vs__free(b->part[i]);
    b->part[i] = NULL;
    b->cnt[i] = 0;
    b->single[i] = 0;
  }
  if (c->dim == 0)
    return vs__err(err, VS_EINVAL, "'%s' is a text-only collection: it has no vectors", c->name);
  q = vs__malloc(nq * dim * sizeof(float));
  cands = vs__calloc(nq, sizeof(*cands));
  n = vs__calloc(nq, sizeof(*n));
  shrt = vs__calloc(nq, sizeof(*shrt));
  if (q == NULL || cands == NULL || n == NULL || shrt == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  /* A bad query fails the batch; vs_search_batch then runs each query
   * alone, which names the bad one. */
  for (size_t i = 0; i < nq && rc == VS_OK; i++)
    rc = query_vector(c, p[i].vector, p[i].dim, q + i * dim, err);
  if (rc)
    goto out;
  rc = vs__vix_acquire(db, txn, c, &v, err);
  if (rc == VS__RETRY && ++b->retries < 2)
    goto out; /* vs__coll_read runs the batch again in a new snapshot */
  if (rc == VS__RETRY) {
    for (size_t i = 0; i < nq; i++) /* writes keep outrunning us: one by one */
      b->single[i] = 1;
    rc = VS_OK;
    goto out;
  }
  if (rc)
    goto out;
  rc = vs__vix_candidates_n(v, q, nq, p->k, p->ef, p->nprobe, 0, NULL, NULL, cands, n, shrt, NULL,
                            err);
  vs__vix_release(v);
  for (size_t i = 0; i < nq && rc == VS_OK; i++) {
    scored *s;
    size_t m = 0;

    if (shrt[i]) {
      b->single[i] = 1;
      continue;
    }
    s = vs__malloc((n[i] ? n[i] : 1) * sizeof(*s));
    if (s == NULL) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      break;
    }
    rc = score_cands(txn, c, q + i * dim, cands[i], n[i], s, &m, err);
    if (rc == VS_OK) {
      sort_scored(s, m, c->metric);
      rc = vs__hits_make(txn, c, s, m, m < p->k ? m : p->k, 1, p->with, p->payload_fields,
                         p->n_payload_fields, &b->part[i], &b->cnt[i], err);
    }
    vs__free(s);
  }

out:
  for (size_t i = 0; cands && i < nq; i++)
    vs__free(cands[i]);
  vs__free(cands);
  vs__free(n);
  vs__free(shrt);
  vs__free(q);
  return rc;
}

int vs__search_shared(vs_db *db, const char *name, const vs_search_params *p, size_t nq,
                      vs_hit **part, size_t *cnt, int *single, vs_error *err) {
  shared_ctx b = {p, nq, part, cnt, single, 0};
  int rc = vs__coll_read(db, name, shared_step, &b, err);

  if (rc)
    for (size_t i = 0; i < nq; i++) {
      vs__free(part[i]);
      part[i] = NULL;
      cnt[i] = 0;
    }
  return rc;
}

int vs_collection_rebuild(vs_db *db, const char *name, const char *index, int threads,
                          vs_error *err) {
  uint32_t dim;
  int rc;

  if (db == NULL)
    return vs__err(err, VS_EINVAL, "database handle is NULL");
  if (db->flags & VS_OPEN_READONLY)
    return vs__err(err, VS_EACCES, "the database is open read-only");
  if (threads < 0)
    return vs__err(err, VS_EINVAL, "threads must not be negative");
  /* The text index first: one write transaction merging its runs. */
  if ((rc = vs__tindex_compact(db, name, index, &dim, err)))
    return rc;
  return dim ? vs__vindex_rebuild(db, name, index, threads, err) : VS_OK;
}

/* ---- the public face of filters (engine/filter.c holds the work) ---------------------- */

int vs_filter_parse_json(const char *json, size_t len, vs_filter **out, vs_error *err) {
  if (out)
    *out = NULL;
  if (out == NULL || (json == NULL && len > 0))
    return vs__err(err, VS_EINVAL, "filter text or output is NULL");
  return vs__filter_parse_json(json, len, (vs__filter **)out, err);
}

int vs_filter_parse_msgpack(const void *p, size_t len, vs_filter **out, vs_error *err) {
  if (out)
    *out = NULL;
  if (out == NULL || (p == NULL && len > 0))
    return vs__err(err, VS_EINVAL, "filter bytes or output is NULL");
  return vs__filter_parse_msgpack(p, len, (vs__filter **)out, err);
}

void vs_filter_free(vs_filter *f) {
  vs__filter_free((vs__filter *)f);
}

typedef struct count_ctx {
  const vs__filter *f;
  uint64_t n;
} count_ctx;

static int count_where_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  count_ctx *cc = ctx;
  roaring_bitmap_t *set = NULL;
  MDB_cursor *cur;
  MDB_val k, v;
  vs__state st;
  int mrc, rc;

  cc->n = 0;
  /* The payload index's answer is exact: its size is the count. */
  if ((rc = vs__state_get(db, txn, c->cid, &st, err)) ||
      (rc = vs__pindex_eval(db, txn, c, &st, cc->f, &set, err)))
    return rc;
  if (set) {
    cc->n = roaring_bitmap_get_cardinality(set);
    roaring_bitmap_free(set);
    return VS_OK;
  }
  mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur);
  if (mrc)
    return vs__mdb_err(err, mrc, "open a cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    cc->n += (uint64_t)record_passes(cc->f, &v);
  mdb_cursor_close(cur);
  return mrc == MDB_NOTFOUND ? VS_OK : vs__mdb_err(err, mrc, "read the points");
}

int vs_count_where(vs_db *db, const char *name, const vs_filter *filter, uint64_t *out,
                   vs_error *err) {
  count_ctx cc = {(const vs__filter *)filter, 0};
  int rc;

  if (filter == NULL)
    return vs_count(db, name, out, err);
  if (db == NULL || out == NULL)
    return vs__err(err, VS_EINVAL, "database handle or output is NULL");
  rc = vs__coll_read(db, name, count_where_step, &cc, err);
  if (rc == VS_OK)
    *out = cc.n;
  return rc;
}

/* ---- hits ------------------------------------------------------------------------------ */

/* Turn the top pids into hits: one allocation holding the hit array, then
 * vectors, then id strings and payloads. */
int vs__hits_make(MDB_txn *txn, const vs__coll *c, vs__scored *top, size_t avail, size_t want,
                  int may_miss, unsigned with, const char *const *fields, size_t nfields,
                  vs_hit **hits, size_t *n, vs_error *err) {
  size_t size, fbytes = 0, bbytes = 0, j = 0;
  vs_hit *out;
  vs__prec *recs;
  float *fp;
  char *bp;
  int rc = VS_OK;

  recs = vs__calloc(want ? want : 1, sizeof(*recs));
  if (recs == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  /* The first `want` candidates whose point this snapshot holds: the
   * index's candidates may include a point written after the snapshot
   * began (the scans read the snapshot itself, so theirs all exist). */
  for (size_t i = 0; i < avail && j < want; i++) {
    MDB_val k = {8, &top[i].pid}, v;
    int mrc;

    if (top[i].id1 && !(with & VS_GET_PAYLOAD)) { /* the index knows the id */
      recs[j].id = (vs_id){VS_ID_INT, top[i].id1 - 1, NULL, 0};
      if ((with & VS_GET_VECTOR) && c->dim)
        fbytes += (size_t)c->dim * sizeof(float);
      top[j++] = top[i];
      continue;
    }
    mrc = mdb_get(txn, c->dbi[VS__DBI_PTS], &k, &v);
    if (mrc == MDB_NOTFOUND && may_miss)
      continue;
    if (mrc || vs__point_parse(&v, &recs[j])) {
      rc = mrc && mrc != MDB_NOTFOUND
               ? vs__mdb_err(err, mrc, "read a point")
               : vs__err(err, VS_ECORRUPT, "point %llu is missing or malformed",
                         (unsigned long long)top[i].pid);
      goto out;
    }
    if (recs[j].id.kind == VS_ID_STR)
      bbytes += recs[j].id.len + 1;
    if (with & VS_GET_PAYLOAD)
      bbytes += recs[j].payload_len + (nfields ? 5 : 0);
    if ((with & VS_GET_VECTOR) && c->dim)
      fbytes += (size_t)c->dim * sizeof(float);
    top[j++] = top[i];
  }
  *n = j;
  size = (*n * sizeof(vs_hit) + 7) & ~(size_t)7;
  *hits = out = vs__calloc(1, size + fbytes + bbytes + 1);
  if (out == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  fp = (float *)(void *)((char *)out + size);
  bp = (char *)out + size + fbytes;
  for (size_t i = 0; i < *n; i++) {
    vs_hit *h = &out[i];

    h->score = top[i].score;
    h->id = recs[i].id;
    if (h->id.kind == VS_ID_STR) { /* copied out: the record goes with the txn */
      memcpy(bp, h->id.str, h->id.len);
      bp[h->id.len] = '\0';
      h->id.str = bp;
      bp += h->id.len + 1;
    }
    if ((with & VS_GET_PAYLOAD) && recs[i].payload_len) {
      size_t len = recs[i].payload_len;

      if (nfields)
        len = vs__payload_project(recs[i].payload, len, fields, nfields, (uint8_t *)bp);
      else
        memcpy(bp, recs[i].payload, len);
      h->payload = len ? (const uint8_t *)bp : NULL;
      h->payload_len = len;
      bp += len;
    }
    if ((with & VS_GET_VECTOR) && c->dim) {
      const float *x;
      rc = vs__vector_get(txn, c, top[i].pid, &x, err);
      if (rc)
        goto out;
      memcpy(fp, x, (size_t)c->dim * sizeof(float));
      h->vector = fp;
      h->dim = c->dim;
      fp += c->dim;
    }
  }
out:
  vs__free(recs);
  return rc;
}
