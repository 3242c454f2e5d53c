/*
 * spec.h: index specs, the FAISS index factory strings a collection names.
 */
#ifndef VS_INDEX_SPEC_H
#define VS_INDEX_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* The largest number a spec may hold (IVF lists, HNSW M, PQ sub-quantizers).
 * FAISS allocates per-list structures eagerly, so "IVF100000000" would cost
 * gigabytes before a single point is added. */
#define VS_INDEX_SPEC_NUMBER_MAX (1u << 20)

/* Check that `spec` is an index FAISS can build for `dim` components under
 * inner product (`ip` nonzero) or L2, by asking FAISS's index factory for an
 * empty index and freeing it.  Returns 0, or -1 with a sentence in msg. */
int vs__index_spec_check(const char *spec, uint32_t dim, int ip, char *msg, size_t msgcap);

#endif /* VS_INDEX_SPEC_H */
