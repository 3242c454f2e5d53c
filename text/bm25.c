/*
 * bm25.c: block-max MaxScore top-k (see bm25.h).
 */
#include "text/bm25.h"

#include <math.h>
#include <stdlib.h>

#define MAX_TERMS 1024 /* the engine caps query terms well below this */

/* ---- the heap ------------------------------------------------------------------------- */

/* a is worse than b: lower score, or the same score and a higher pid. */
static int worse(const vs__bm25_hit *a, const vs__bm25_hit *b) {
  return a->score < b->score || (a->score == b->score && a->pid > b->pid);
}

static void sift_down(vs__bm25_hit *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    vs__bm25_hit t;

    if (l < n && worse(&h[l], &h[m]))
      m = l;
    if (r < n && worse(&h[r], &h[m]))
      m = r;
    if (m == i)
      return;
    t = h[i], h[i] = h[m], h[m] = t;
    i = m;
  }
}

static void heap_push(vs__bm25_heap *hp, double score, uint64_t pid) {
  vs__bm25_hit e = {score, pid};
  size_t i;

  if (hp->n == hp->k) {
    hp->h[0] = e;
    sift_down(hp->h, hp->n, 0);
    return;
  }
  for (i = hp->n++; i > 0 && worse(&e, &hp->h[(i - 1) / 2]); i = (i - 1) / 2)
    hp->h[i] = hp->h[(i - 1) / 2];
  hp->h[i] = e;
}

/* The score a document must beat to enter; -inf while the heap has room. */
static double threshold(const vs__bm25_heap *hp) {
  return hp->n < hp->k ? -INFINITY : hp->h[0].score;
}

static int by_best(const void *a, const void *b) {
  return worse(a, b) - worse(b, a);
}

void vs__bm25_heap_sort(vs__bm25_heap *hp) {
  qsort(hp->h, hp->n, sizeof(*hp->h), by_best);
}

/* ---- scoring --------------------------------------------------------------------------- */

static double contrib(const vs__bm25_term *t, uint32_t tf, uint32_t dl) {
  return t->w * tf / (tf + t->ka + t->kb * dl);
}

/* The bound on any score in the block of x's cursor that may hold pd: 0
 * when its current block starts after pd (it does not hold pd). */
static double block_bound(vs__bm25_term *x, uint64_t pd) {
  vs__pcur *c = &x->cur;

  if (c->blk_last < pd && vs__pcur_shallow(c, pd) == VS__DOC_END)
    return 0;
  if (c->blk_first > pd)
    return 0;
  if (x->bub_first != c->blk_first || x->bub_last != c->blk_last) {
    x->bub_first = c->blk_first;
    x->bub_last = c->blk_last;
    x->bub = contrib(x, c->blk_max_tf, c->blk_min_dl);
  }
  return x->bub;
}

/* An upper bound is compared with the threshold minus a relative slack, so
 * that rounding (bounds and scores are summed in different orders) never
 * prunes a document that would tie or win. */
static double slack(double theta) {
  return theta - fabs(theta) * 1e-9 - 1e-300;
}

static int cursor_error(const vs__bm25_term *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t[i].cur.err)
      return t[i].cur.err;
  return 0;
}

/* Block-max MaxScore (Turtle and Flood 1995; with block bounds as in
 * Lucene 9): the terms sorted by bound; the cheapest ones whose bounds
 * together cannot beat the threshold are "non-essential": a document
 * holding none of the others cannot win, so candidates come only from the
 * essential lists, and the non-essential ones are probed for a candidate
 * only while it can still win. */
int vs__bm25_run(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, int prune, vs__bm25_keep_fn keep,
                 void *kctx, uint64_t *scored) {
  size_t u[MAX_TERMS];
  double prefix[MAX_TERMS + 1];
  size_t e = 0; /* u[0..e) are non-essential */

  if (n > MAX_TERMS)
    return VS__TP_CORRUPT;
  for (size_t i = 0; i < n; i++) {
    vs__term_head *h = &t[i].cur.head;
    size_t j = i;

    t[i].ub = contrib(&t[i], h->max_tf, h->min_dl);
    t[i].bub_first = t[i].bub_last = VS__DOC_END;
    while (j > 0 && t[u[j - 1]].ub > t[i].ub) { /* by bound, stable */
      u[j] = u[j - 1];
      j--;
    }
    u[j] = i;
  }
  prefix[0] = 0;
  for (size_t i = 0; i < n; i++)
    prefix[i + 1] = prefix[i] + t[u[i]].ub;

  for (;;) {
    double theta = prune ? slack(threshold(heap)) : -INFINITY, s, bound;
    uint64_t d = VS__DOC_END;
    int ok = 1;

    while (e < n && prefix[e + 1] <= theta)
      e++;
    for (size_t j = e; j < n; j++)
      if (t[u[j]].cur.doc < d)
        d = t[u[j]].cur.doc;
    if (d == VS__DOC_END)
      break;
    s = 0;
    for (size_t j = e; j < n; j++)
      if (t[u[j]].cur.doc == d)
        s += contrib(&t[u[j]], t[u[j]].cur.tf, t[u[j]].cur.dl);
    if (prune && e > 0) {
      /* The non-essential terms' bounds in the blocks that may hold d. */
      bound = s;
      for (size_t j = 0; j < e; j++)
        bound += block_bound(&t[u[j]], d);
      if (bound <= theta)
        ok = 0;
      /* Probe them, the likeliest to matter first, while d can win. */
      for (size_t j = e; ok && j-- > 0;) {
        vs__pcur *c = &t[u[j]].cur;

        bound -= block_bound(&t[u[j]], d);
        vs__pcur_advance(c, d);
        if (c->doc == d)
          s += contrib(&t[u[j]], c->tf, c->dl);
        if (s + bound <= theta)
          ok = 0;
      }
    } else {
      for (size_t j = 0; j < e; j++)
        vs__pcur_advance(&t[u[j]].cur, d);
    }
    if (ok) {
      s = 0; /* the score proper, added in the terms' order */
      for (size_t i = 0; i < n; i++)
        if (t[i].cur.doc == d)
          s += contrib(&t[i], t[i].cur.tf, t[i].cur.dl);
      (*scored)++;
      if (s > threshold(heap) && (keep == NULL || keep(kctx, d)))
        heap_push(heap, s, d);
    }
    for (size_t j = e; j < n; j++)
      if (t[u[j]].cur.doc == d)
        vs__pcur_next(&t[u[j]].cur);
  }
  return cursor_error(t, n);
}

int vs__bm25_run_docs(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, const uint64_t *pids,
                      size_t npids, vs__bm25_keep_fn keep, void *kctx, uint64_t *scored) {
  for (size_t d = 0; d < npids; d++) {
    uint64_t pid = pids[d];
    double s = 0;
    int any = 0;

    for (size_t j = 0; j < n; j++) {
      vs__pcur_advance(&t[j].cur, pid);
      if (t[j].cur.doc == pid) {
        s += contrib(&t[j], t[j].cur.tf, t[j].cur.dl);
        any = 1;
      }
    }
    if (!any)
      continue;
    (*scored)++;
    if (s > threshold(heap) && (keep == NULL || keep(kctx, pid)))
      heap_push(heap, s, pid);
  }
  return cursor_error(t, n);
}
