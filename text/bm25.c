/*
 * bm25.c: block-max WAND top-k (see bm25.h).
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

/* The cursors in doc order, in a compact array (the cursors themselves
 * are large: walking them to sort would miss the cache at every step). */
typedef struct lane {
  uint64_t doc;
  double ub;
  size_t idx; /* into the terms array */
} lane;

/* Keep L sorted by doc after the lanes L[0..moved] moved forward
 * (insertion: they only move right). */
static void resort(lane *L, size_t n, size_t moved) {
  for (size_t m = moved + 1; m-- > 0;) {
    lane x = L[m];
    size_t i = m;

    while (i + 1 < n && L[i + 1].doc < x.doc) {
      L[i] = L[i + 1];
      i++;
    }
    L[i] = x;
  }
}

static int cursor_error(const vs__bm25_term *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t[i].cur.err)
      return t[i].cur.err;
  return 0;
}

int vs__bm25_run(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, int prune, vs__bm25_keep_fn keep,
                 void *kctx, uint64_t *scored) {
  lane L[MAX_TERMS];
  size_t at[MAX_TERMS];

  if (n > MAX_TERMS)
    return VS__TP_CORRUPT;
  for (size_t i = 0; i < n; i++) {
    vs__term_head *h = &t[i].cur.head;
    t[i].ub = contrib(&t[i], h->max_tf, h->min_dl);
    t[i].bub_first = t[i].bub_last = VS__DOC_END;
    L[i] = (lane){t[i].cur.doc, t[i].ub, i};
  }
  resort(L, n, n - 1);

  for (;;) {
    double theta = prune ? slack(threshold(heap)) : -INFINITY, acc = 0, bsum = 0;
    size_t p = n;
    uint64_t pd, nd;

    /* The pivot: the first cursor at which the lists' bounds add up to
     * more than the threshold.  No document before its doc can win. */
    for (size_t i = 0; i < n && L[i].doc != VS__DOC_END; i++) {
      acc += L[i].ub;
      if (acc > theta) {
        p = i;
        break;
      }
    }
    if (p == n)
      break;
    pd = L[p].doc;
    while (p + 1 < n && L[p + 1].doc == pd)
      p++;

    /* The same test with the bounds of the blocks that would hold pd. */
    if (prune)
      for (size_t i = 0; i <= p; i++)
        bsum += block_bound(&t[L[i].idx], pd);
    if (!prune || bsum > theta) {
      if (L[0].doc == pd) {
        double s = 0;

        /* Every cursor at pd is in L[0..p]: add them in the terms' order. */
        for (size_t i = 0; i <= p; i++) {
          size_t j = i, x = L[i].idx;
          while (j > 0 && at[j - 1] > x) {
            at[j] = at[j - 1];
            j--;
          }
          at[j] = x;
        }
        for (size_t i = 0; i <= p; i++)
          s += contrib(&t[at[i]], t[at[i]].cur.tf, t[at[i]].cur.dl);
        (*scored)++;
        if (s > threshold(heap) && (keep == NULL || keep(kctx, pd)))
          heap_push(heap, s, pd);
        for (size_t i = 0; i <= p; i++) {
          vs__pcur_next(&t[L[i].idx].cur);
          L[i].doc = t[L[i].idx].cur.doc;
        }
      } else {
        /* Nothing before pd can win: bring the lagging cursors up. */
        for (size_t i = 0; i < p && L[i].doc < pd; i++) {
          vs__pcur_advance(&t[L[i].idx].cur, pd);
          L[i].doc = t[L[i].idx].cur.doc;
        }
      }
    } else {
      /* No document up to the end of the shortest of these blocks, nor
       * before the next list's doc, can win: jump past them. */
      nd = p + 1 < n ? L[p + 1].doc : VS__DOC_END;
      for (size_t i = 0; i <= p; i++) {
        const vs__pcur *c = &t[L[i].idx].cur;
        uint64_t after = c->blk_first > pd ? c->blk_first : c->blk_last + 1;
        if (c->blk_last != VS__DOC_END && after < nd)
          nd = after;
      }
      if (nd <= pd)
        nd = pd + 1;
      for (size_t i = 0; i <= p; i++) {
        vs__pcur_advance(&t[L[i].idx].cur, nd);
        L[i].doc = t[L[i].idx].cur.doc;
      }
    }
    resort(L, n, p);
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
