/*
 * query.h: what the query paths (vector search in search.c, text search in
 * tindex.c, and the fused queries built on them) share.
 */
#ifndef VS_ENGINE_QUERY_H
#define VS_ENGINE_QUERY_H

#include "engine/storage.h"

/* A point version and its final score. */
typedef struct vs__scored {
  float score;
  uint64_t pid;
} vs__scored;

/* Turn the best points into hits: the first `want` of top[0..avail) whose
 * point this snapshot holds (when may_miss; otherwise each must exist),
 * with what `with` asks for, in one allocation (hit array, then vectors,
 * then id strings and payloads) stored in *hits as soon as it is made (the
 * caller frees it, on errors too).  top is compacted to the hits kept;
 * *n receives their number.  Returns VS_OK, VS_ENOMEM, VS_ECORRUPT or an
 * LMDB read's status. */
int vs__hits_make(MDB_txn *txn, const vs__coll *c, vs__scored *top, size_t avail, size_t want,
                  int may_miss, unsigned with, vs_hit **hits, size_t *n, vs_error *err);

#endif /* VS_ENGINE_QUERY_H */
