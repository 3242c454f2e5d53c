/*
 * hnswlib_peer.h: hnswlib (Debian's libhnswlib-dev 0.6.2, header-only C++)
 * as plain C, for `vsearch bench ann` to run beside vsearch and raw FAISS.
 *
 * hnswlib is a reference implementation of HNSW that the ANN benchmarks
 * compare engines against.  bench/hnswlib_peer.cpp compiles it with the
 * same optimisation flags as vsearch (no -march: hnswlib then picks its SSE
 * distance kernels) and catches every C++ exception at this boundary,
 * turning it into -1 and a message.
 *
 * Labels are the row numbers 0..n-1 of the vectors added, in order.  A
 * handle is built by one thread (hnswlib_peer_add() fans out internally)
 * and then searched by one thread at a time.
 */
#ifndef VS_BENCH_HNSWLIB_PEER_H
#define VS_BENCH_HNSWLIB_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hnswlib_peer hnswlib_peer;

/* Create an empty index for up to `max_elements` vectors of `dim` floats:
 * hnswlib's L2Space (squared Euclidean) or, when `ip` is nonzero, its
 * InnerProductSpace (distance 1 - <q, x>), with M links per node and
 * efConstruction `ef_construction`.  On success *out is released with
 * hnswlib_peer_free().  Returns 0, or -1 with a message in msg. */
int hnswlib_peer_new(int ip, size_t dim, size_t max_elements, size_t m, size_t ef_construction,
                     hnswlib_peer **out, char *msg, size_t msgcap);

/* Add n vectors (n x dim floats) labelled first_label, first_label + 1, ...
 * using `threads` threads (0 or 1 = the calling thread only).  Returns 0,
 * or -1 with a message (then the index may hold some of the vectors). */
int hnswlib_peer_add(hnswlib_peer *p, const float *x, size_t n, size_t first_label, int threads,
                     char *msg, size_t msgcap);

/* Set the search breadth (hnswlib uses max(ef, k)). */
void hnswlib_peer_set_ef(hnswlib_peer *p, size_t ef);

/* Search one query (dim floats) for the k nearest labels, best first, into
 * caller-owned labels and dist (room for k each); *n receives how many were
 * found (<= k).  Returns 0, or -1 with a message. */
int hnswlib_peer_search(const hnswlib_peer *p, const float *q, size_t k, int64_t *labels,
                        float *dist, size_t *n, char *msg, size_t msgcap);

/* Write the index with hnswlib's own saveIndex() to `path` (to measure its
 * size).  Returns 0, or -1 with a message. */
int hnswlib_peer_save(hnswlib_peer *p, const char *path, char *msg, size_t msgcap);

/* Release the index.  Accepts NULL. */
void hnswlib_peer_free(hnswlib_peer *p);

#ifdef __cplusplus
}
#endif

#endif /* VS_BENCH_HNSWLIB_PEER_H */
