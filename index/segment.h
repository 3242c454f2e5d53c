/*
 * segment.h: a sealed segment: an immutable FAISS index over a set of
 * points, the map from FAISS's internal ids to vsearch pids, and its file.
 *
 * FAISS numbers a segment's vectors 0..n-1 in the order they were added; we
 * add them in ascending pid order, so pids[i] is the pid of internal id i and
 * the pid -> internal id map is a binary search.  FAISS's IndexIDMap is not
 * used: in 1.7.3 it refuses per-query SearchParameters.
 *
 * MIPS.  HNSW graphs built on inner product lose recall on unnormalized
 * vectors.  For an inner-product HNSW segment we build an L2 graph over
 * x' = (x, sqrt(M^2 - |x|^2)), M the largest norm in the segment, and query
 * it with q' = (q, 0): |q' - x'|^2 = |q|^2 + M^2 - 2<q, x>, so the L2 order
 * is exactly the inner-product order (Bachrach et al., 2014).  Scores are
 * recomputed from the stored vectors by the caller anyway.
 *
 * The index layer allocates with the C library (FAISS does too); only the
 * engine routes its allocations through vs_set_allocator().
 */
#ifndef VS_INDEX_SEGMENT_H
#define VS_INDEX_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "index/faiss_shim.h"

typedef struct vs__segment {
  FaissIndex *index;
  uint64_t *pids; /* n, ascending */
  uint32_t n;
  uint32_t dim;    /* the collection's dim (the index has dim + 1 when mips) */
  int ip;          /* the search order is "higher is better" */
  int mips;        /* built with the MIPS-to-L2 reduction */
  int approximate; /* distances are not exact (PQ/SQ codes, PCA, LSH, ...: any index
                      but Flat, HNSW-Flat and IVF-Flat): over-fetch and re-score */
  unsigned caps;   /* vs__faiss_caps() of index */
  char *spec;      /* the spec actually built ("Flat" when training was impossible) */
} vs__segment;

/* Build a segment over n vectors (n x dim, already normalised for cosine)
 * with pids ascending.  `ip` selects inner product (ip and cosine
 * collections).  When the spec needs training that n points cannot give
 * (IVF with more lists than points, PQ with fewer than 256 points), the
 * segment is built as an exact Flat index instead, so small segments work;
 * seg->spec says what was built.  Returns 0, or -1 with a message. */
int vs__segment_build(const char *spec, int ip, uint32_t dim, const float *x, const uint64_t *pids,
                      uint32_t n, int threads, vs__segment **out, char *msg, size_t msgcap);

/* Search nq queries (nq x dim floats) for up to k internal ids each.
 * dist/labels have room for nq x k; labels are internal ids (-1 for none).
 * FAISS answers a batch at once: a Flat index with one matrix product,
 * and the queries share p->threads OpenMP threads. */
int vs__segment_search(const vs__segment *s, const float *q, int64_t nq, int64_t k,
                       const vs__faiss_params *p, float *dist, int64_t *labels, char *msg,
                       size_t msgcap);

/* The internal id of pid, or -1. */
int64_t vs__segment_find(const vs__segment *s, uint64_t pid);

/* Write durably to `path` (temporary file, fsync, rename, fsync of the
 * directory), and read back.  The reader checks every field. */
int vs__segment_write(const vs__segment *s, const char *path, char *msg, size_t msgcap);
int vs__segment_read(const char *path, vs__segment **out, char *msg, size_t msgcap);

void vs__segment_free(vs__segment *s);

#endif /* VS_INDEX_SEGMENT_H */
