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

/* An upper bound is compared with the threshold minus a relative slack, so
 * that rounding (bounds and scores are summed in different orders) never
 * prunes a document that would tie or win. */
static double slack(double theta) {
  return theta - fabs(theta) * 1e-9 - 1e-300;
}

/* Keep ord sorted by cursor doc after the cursors at ord[0..moved] moved
 * forward (insertion sort: they only move right). */
static void resort(const vs__bm25_term *t, size_t *ord, size_t n, size_t moved) {
  for (size_t m = moved + 1; m-- > 0;) {
    size_t x = ord[m], i = m;

    while (i + 1 < n && t[ord[i + 1]].cur.doc < t[x].cur.doc) {
      ord[i] = ord[i + 1];
      i++;
    }
    ord[i] = x;
  }
}

static int by_doc_ctx_cmp(const vs__bm25_term *t, size_t a, size_t b) {
  return (t[a].cur.doc > t[b].cur.doc) - (t[a].cur.doc < t[b].cur.doc);
}

static int cursor_error(const vs__bm25_term *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (t[i].cur.err)
      return t[i].cur.err;
  return 0;
}

int vs__bm25_run(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, int prune, vs__bm25_keep_fn keep,
                 void *kctx, uint64_t *scored) {
  size_t ord[MAX_TERMS];

  if (n > MAX_TERMS)
    return VS__TP_CORRUPT;
  for (size_t i = 0; i < n; i++) {
    vs__term_head *h = &t[i].cur.head;
    t[i].ub = contrib(&t[i], h->max_tf, h->min_dl);
    ord[i] = i;
  }
  for (size_t i = 1; i < n; i++) /* insertion sort by doc */
    for (size_t j = i; j > 0 && by_doc_ctx_cmp(t, ord[j - 1], ord[j]) > 0; j--) {
      size_t x = ord[j];
      ord[j] = ord[j - 1], ord[j - 1] = x;
    }

  for (;;) {
    double theta = prune ? slack(threshold(heap)) : -INFINITY, acc = 0, bsum = 0;
    size_t p = n;
    uint64_t pd, nd;

    /* The pivot: the first cursor at which the lists' bounds add up to
     * more than the threshold.  No document before its doc can win. */
    for (size_t i = 0; i < n && t[ord[i]].cur.doc != VS__DOC_END; i++) {
      acc += t[ord[i]].ub;
      if (acc > theta) {
        p = i;
        break;
      }
    }
    if (p == n)
      break;
    pd = t[ord[p]].cur.doc;
    while (p + 1 < n && t[ord[p + 1]].cur.doc == pd)
      p++;

    /* The same test with the bounds of the blocks that would hold pd. */
    if (prune) {
      for (size_t i = 0; i <= p; i++) {
        vs__bm25_term *x = &t[ord[i]];
        if (vs__pcur_shallow(&x->cur, pd) != VS__DOC_END && x->cur.blk_first <= pd)
          bsum += contrib(x, x->cur.blk_max_tf, x->cur.blk_min_dl);
      }
    }
    if (!prune || bsum > theta) {
      if (t[ord[0]].cur.doc == pd) {
        double s = 0;

        for (size_t j = 0; j < n; j++) /* the fixed order */
          if (t[j].cur.doc == pd)
            s += contrib(&t[j], t[j].cur.tf, t[j].cur.dl);
        (*scored)++;
        if (s > threshold(heap) && (keep == NULL || keep(kctx, pd)))
          heap_push(heap, s, pd);
        for (size_t i = 0; i <= p; i++)
          vs__pcur_next(&t[ord[i]].cur);
      } else {
        /* Nothing before pd can win: bring the lagging cursors up. */
        for (size_t i = 0; i < p && t[ord[i]].cur.doc < pd; i++)
          vs__pcur_advance(&t[ord[i]].cur, pd);
      }
    } else {
      /* No document up to the end of the shortest of these blocks, nor
       * before the next list's doc, can win: jump past them. */
      nd = p + 1 < n ? t[ord[p + 1]].cur.doc : VS__DOC_END;
      for (size_t i = 0; i <= p; i++) {
        const vs__pcur *c = &t[ord[i]].cur;
        uint64_t after = c->blk_first > pd ? c->blk_first : c->blk_last + 1;
        if (c->blk_last != VS__DOC_END && after < nd)
          nd = after;
      }
      if (nd <= pd)
        nd = pd + 1;
      for (size_t i = 0; i <= p; i++)
        vs__pcur_advance(&t[ord[i]].cur, nd);
    }
    resort(t, ord, n, p);
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
