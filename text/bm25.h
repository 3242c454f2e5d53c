/*
 * bm25.h: top-k BM25 over posting cursors, with block-max MaxScore.
 *
 * The caller opens one cursor per (query term, field) in one run and gives
 * each its weights; vs__bm25_run() scores that run's documents into a heap
 * shared by all runs.  Runs must be scored in ascending pid order (their
 * pid ranges are disjoint), so that documents arrive in ascending pid order
 * overall: a document then enters the heap only when its score is strictly
 * above the k-th best, which is exactly the order "score descending, ties
 * by the lower pid" -- the same result exhaustive scoring gives.
 *
 * A term's contribution for a posting (tf, dl) is
 *     w * tf / (tf + ka + kb * dl)
 * with w = weight * idf * (k1 + 1), ka = k1 * (1 - b), kb = k1 * b / avgdl.
 * A document's score is the sum over the terms it holds, added in the
 * order of the terms array, so pruned and exhaustive scoring produce the
 * same bits.  Block-max MaxScore (Turtle and Flood 1995, with Lucene's
 * per-block bounds) splits the terms by their lists' bounds (max tf, min
 * dl): those whose bounds together cannot beat the k-th best score only
 * ever score a document some other term brought up, and only while its
 * bound -- with their blocks' bounds -- can still win.  Measured here it
 * ran 1.1x (SciFact) to 1.9x (a Zipf corpus) the speed of block-max WAND,
 * which spent its time keeping the cursors sorted.
 */
#ifndef VS_TEXT_BM25_H
#define VS_TEXT_BM25_H

#include <stddef.h>
#include <stdint.h>

#include "text/postings.h"

typedef struct vs__bm25_term {
  vs__pcur cur; /* open, on its first posting */
  double w, ka, kb;
  double ub; /* set by vs__bm25_run from the run's term header */
  /* the bound of the block the cursor last moved to (cached: it is asked
   * for on many steps inside one block) */
  uint64_t bub_first, bub_last;
  double bub;
} vs__bm25_term;

typedef struct vs__bm25_hit {
  double score;
  uint64_t pid;
} vs__bm25_hit;

/* The best k documents so far: a min-heap on (score, -pid). */
typedef struct vs__bm25_heap {
  vs__bm25_hit *h; /* k entries, caller-allocated */
  size_t n, k;
} vs__bm25_heap;

/* keep(ctx, pid): may this document be returned (the filter, and for runs
 * that hold deleted documents, whether it is still live)?  Called only for
 * documents whose score would enter the heap. */
typedef int (*vs__bm25_keep_fn)(void *ctx, uint64_t pid);

/* Score the documents of one run's cursors into heap.  prune = 0 scores
 * every posting (the reference that tests compare against).  *scored is
 * increased by the documents fully scored.  Returns 0, or the first
 * cursor error (VS__TP_CORRUPT or an LMDB code). */
int vs__bm25_run(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, int prune, vs__bm25_keep_fn keep,
                 void *kctx, uint64_t *scored);

/* Score exactly the documents pids[0..npids) (ascending, all in this run's
 * range) that hold at least one term: the plan for filters passing few
 * documents.  Same results as vs__bm25_run with a keep that passes only
 * them. */
int vs__bm25_run_docs(vs__bm25_term *t, size_t n, vs__bm25_heap *heap, const uint64_t *pids,
                      size_t npids, vs__bm25_keep_fn keep, void *kctx, uint64_t *scored);

/* Sort the heap's entries best first (score descending, pid ascending). */
void vs__bm25_heap_sort(vs__bm25_heap *heap);

#endif /* VS_TEXT_BM25_H */
