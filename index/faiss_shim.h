/*
 * faiss_shim.h: the FAISS calls that FAISS 1.7.3's C API lacks, as plain C.
 *
 * The C API has no per-query SearchParameters (HNSW efSearch, IVF nprobe,
 * an IDSelector), no way to set HNSW's efConstruction, and no control of
 * OpenMP per call.  index/faiss_shim.cpp adds exactly those, catching every
 * C++ exception at the boundary and turning it into -1 and a message.
 * Everything else goes through FAISS's own C API (faiss/c_api/ *.h).
 */
#ifndef VS_INDEX_FAISS_SHIM_H
#define VS_INDEX_FAISS_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct FaissIndex_H FaissIndex;

/* What an index supports, from vs__faiss_caps(). */
enum {
  VS__FAISS_HNSW = 1u << 0,     /* an IndexHNSW: per-query ef */
  VS__FAISS_IVF = 1u << 1,      /* an IndexIVF: per-query nprobe */
  VS__FAISS_SELECTOR = 1u << 2, /* search honours an IDSelector */
  VS__FAISS_PARAMS = 1u << 3,   /* search takes SearchParameters at all */
  VS__FAISS_EXACT = 1u << 4,    /* distances are computed on the vectors as added:
                                   Flat, HNSW over Flat, IVF Flat (no codes, no transform) */
};

unsigned vs__faiss_caps(const FaissIndex *index);

/* Return 1 when internal id `id` may be returned.  Called from FAISS's
 * search threads concurrently: it must be thread-safe and must not fail. */
typedef int (*vs__faiss_keep_fn)(const void *ctx, int64_t id);

typedef struct vs__faiss_params {
  int ef;                 /* HNSW efSearch; 0 = the index's own */
  int nprobe;             /* IVF nprobe; 0 = the index's own */
  int threads;            /* OpenMP threads for this call; 0 = OpenMP's default */
  vs__faiss_keep_fn keep; /* NULL = every id; ignored without VS__FAISS_SELECTOR */
  const void *keep_ctx;
  unsigned caps; /* vs__faiss_caps(index) when the caller keeps it; 0 = work it out */
} vs__faiss_params;

/* Search n queries (n x d floats) for k results each into dist and labels
 * (n x k; label -1 where fewer than k were found).  Parameters the index
 * does not support are ignored; see vs__faiss_caps().  IVF fast-scan
 * indexes take no SearchParameters in FAISS 1.7.3: their nprobe is set on
 * the index for the call, under a lock, so such searches run one at a time.
 * Returns 0, or -1 with a message in msg.  Thread-safe as long as nobody
 * else modifies the index. */
int vs__faiss_search(const FaissIndex *index, int64_t n, const float *x, int64_t k,
                     const vs__faiss_params *p, float *dist, int64_t *labels, char *msg,
                     size_t msgcap);

/* Set HNSW efConstruction (before adding) and the default efSearch, and an
 * IVF index's default nprobe; no-ops on other kinds.  Not thread-safe. */
void vs__faiss_tune(FaissIndex *index, int ef_construction, int ef_search, int nprobe);

/* Train (when needed) and add n vectors with `threads` OpenMP threads (0 =
 * default).  Returns 0, or -1 with a message. */
int vs__faiss_build(FaissIndex *index, int64_t n, const float *x, int64_t ntrain,
                    const float *xtrain, int threads, char *msg, size_t msgcap);

#ifdef __cplusplus
}
#endif

#endif /* VS_INDEX_FAISS_SHIM_H */
