/*
 * query.h: what the query paths (vector search in search.c, text search in
 * tindex.c, and the fused queries built on them) share.
 */
#ifndef VS_ENGINE_QUERY_H
#define VS_ENGINE_QUERY_H

#include "engine/storage.h"

/* A point version and its final score.  id1, when not 0, is the point's
 * integer id + 1, vouched for by the vector index at this very snapshot
 * (engine/vindex.c, "external ids"): vs__hits_make then needs no record
 * lookup unless the payload is asked for, and takes the point as present.
 * Paths that read the snapshot themselves leave it 0. */
typedef struct vs__scored {
  float score;
  uint64_t pid;
  uint64_t id1;
} vs__scored;

/* Point versions to leave out of a query's results, sorted and distinct. */
typedef struct vs__pidset {
  uint64_t *pids;
  size_t n;
} vs__pidset;

/* Check a list of ids to exclude (count, each id). */
int vs__exclude_check(const vs_id *ids, size_t n, vs_error *err);
/* The pids of the live points among ids[0..n) in txn's snapshot (ids with
 * no point are skipped).  Free with vs__pidset_free. */
int vs__exclude_resolve(MDB_txn *txn, const vs__coll *c, const vs_id *ids, size_t n,
                        vs__pidset *out, vs_error *err);
int vs__pidset_has(const vs__pidset *s, uint64_t pid);
/* Remove the set's pids from a bitmap of pids. */
#include <roaring/roaring.h>
void vs__pidset_remove_from(const vs__pidset *s, roaring_bitmap_t *set);
void vs__pidset_free(vs__pidset *s);

/* Check a projection's field list (NULL or empty names are refused). */
int vs__fields_check(const char *const *fields, size_t n, vs_error *err);

/* Copy the entries of payload map p[0..len) whose keys are among
 * fields[0..nf) to out (room for len + 5 bytes) as a new map; returns its
 * size, 0 when no field is there (or p is not a map). */
size_t vs__payload_project(const uint8_t *p, size_t len, const char *const *fields, size_t nf,
                           uint8_t *out);

/* Turn the best points into hits: the first `want` of top[0..avail) whose
 * point this snapshot holds (when may_miss; otherwise each must exist),
 * with what `with` asks for (the payload projected onto fields[0..nfields)
 * when nfields > 0), in one allocation (hit array, then vectors,
 * then id strings and payloads) stored in *hits as soon as it is made (the
 * caller frees it, on errors too).  top is compacted to the hits kept;
 * *n receives their number.  Returns VS_OK, VS_ENOMEM, VS_ECORRUPT or an
 * LMDB read's status. */
int vs__hits_make(MDB_txn *txn, const vs__coll *c, vs__scored *top, size_t avail, size_t want,
                  int may_miss, unsigned with, const char *const *fields, size_t nfields,
                  vs_hit **hits, size_t *n, vs_error *err);

/* The legs of fused queries, inside the caller's transaction: the best
 * p->k points (that this snapshot holds), best first, in *top (vs__free
 * it), and how the leg ran.  `ex` (may be NULL: then p->exclude is
 * resolved) is the exclusions already resolved in this transaction, so
 * that several legs resolve them once.  vs__vector_leg may return
 * VS__RETRY (the index is past this snapshot: run again in a new one;
 * *retries counts the attempts, start it at 0).  Arguments are checked as
 * vs_search and vs_text_search check them, except what those check before
 * the transaction (k, limits, exclusions, weights' values). */
/* vs_search's checks of its parameters (search.c): k, ef, nprobe, with,
 * exclusions, payload fields. */
int vs__search_check(const vs_search_params *p, vs_error *err);
/* Do two searches share k, ef, nprobe, exact, with, filter and payload
 * fields, as the queries of one vs_search_batch must (hybrid.c)? */
int vs__search_same_shape(const vs_search_params *a, const vs_search_params *b);

/* vs_search_batch's shared path (search.c): nq plain searches of one shape
 * (no filter, no exclusions, not exact) in one snapshot, each segment
 * searched once for all of them.  part/cnt receive each query's hits
 * (vs_free each), single[i] is set for a query left to vs_search.  On an
 * error (a bad vector fails the whole call, its message naming no query)
 * nothing is kept: the caller runs every query alone. */
int vs__search_shared(vs_db *db, const char *name, const vs_search_params *p, size_t nq,
                      vs_hit **part, size_t *cnt, int *single, vs_error *err);

int vs__vector_leg(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs_search_params *p,
                   const vs__pidset *ex, int *retries, vs__scored **top, size_t *n,
                   vs_search_info *info, vs_error *err);
int vs__text_leg(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs_text_params *p,
                 const vs__pidset *ex, vs__scored **top, size_t *n, vs_search_info *info,
                 vs_error *err);

#endif /* VS_ENGINE_QUERY_H */
