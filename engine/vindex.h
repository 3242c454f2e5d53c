/*
 * vindex.h: the in-memory vector index of each collection: sealed FAISS
 * segments, the fresh segment, tombstones, the background sealer, and the
 * manifest that persists them (see vsearch.h "Vector search", storage.h for
 * the manifest record, index/segment.h for segments).
 */
#ifndef VS_ENGINE_VINDEX_H
#define VS_ENGINE_VINDEX_H

#include "engine/storage.h"

typedef struct vs__vix vs__vix;

/* Return 1 when the point version `pid` may be returned (a filter).  Called
 * in the searching thread, inside its read transaction. */
typedef int (*vs__keep_fn)(void *ctx, uint64_t pid);

/* Find (or make) the index of collection c, bring it to exactly the log
 * position `txn` sees, and return it read-locked: searches may run, the
 * index does not change until vs__vix_release().  Index and snapshot then
 * agree point for point: every candidate exists in the snapshot, and no
 * tombstone is newer than it.  Returns VS__RETRY when the index is already
 * past this snapshot (another thread caught it up with a newer one) or a
 * segment file of this snapshot's manifest was replaced meanwhile: the
 * caller retries with a new transaction, or scans. */
int vs__vix_acquire(vs_db *db, MDB_txn *txn, const vs__coll *c, vs__vix **out, vs_error *err);
void vs__vix_release(vs__vix *v);

/* A candidate: `score` is final when `exact`, else an approximation (PQ or
 * SQ codes, or a MIPS-lifted distance) to re-score from the stored vector.
 * id1 is the point's integer id + 1 when the vix knows it, else 0 (see
 * vs__scored). */
typedef struct vs__cand {
  uint64_t pid;
  float score;
  int exact;
  uint64_t id1;
} vs__cand;

/* Candidates for the k best matches of q (normalised for cosine): the top
 * of every segment (over-fetched where codes are approximate or tombstones
 * cannot be passed to FAISS) and the exact top k of the fresh points.
 * *cands is allocated with vs__malloc.  *short_of_k is set when a segment returned
 * fewer than k although it holds k live points (HNSW walks stop early
 * when many nodes are filtered out): then only a scan is sure to find k. */
int vs__vix_candidates(const vs__vix *v, const float *q, size_t k, int ef, int nprobe,
                       vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n, int *short_of_k,
                       vs_search_info *info, vs_error *err);
/* The same for nq queries (nq x dim floats) at once, each segment answering
 * all of them in one FAISS call on `threads` OpenMP threads (0: OpenMP's
 * default): cands, n and short_of_k have nq entries each, cands[i]
 * allocated with vs__malloc (all NULL on failure). */
int vs__vix_candidates_n(const vs__vix *v, const float *q, size_t nq, size_t k, int ef, int nprobe,
                         int threads, vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n,
                         int *short_of_k, vs_search_info *info, vs_error *err);

/* Filter sub-indexes (see vindex.c): the pids the sub-index of filter
 * `digest` covers, or NULL when it has none; valid while v is acquired. */
#include <roaring/roaring.h>
const roaring_bitmap_t *vs__vix_filter_covered(const vs__vix *v, uint64_t digest);
/* Candidates from that sub-index (keep: the filter's current passing set);
 * VS_ENOTFOUND when there is none. */
int vs__vix_filter_candidates(const vs__vix *v, uint64_t digest, const float *q, size_t k, int ef,
                              int nprobe, vs__keep_fn keep, void *kctx, vs__cand **cands, size_t *n,
                              vs_error *err);
/* A search with filter `digest` (passing `set`) had to scan, or found its
 * sub-index out of date: after a few, the background thread builds that
 * filter a sub-index (again). */
void vs__vindex_filter_missed(vs_db *db, vs__vix *v, uint64_t digest, const roaring_bitmap_t *set);

/* A write to collection cid committed: if this process keeps an index for
 * it, let the background thread catch up and seal, so ingest alone (with
 * no searches) still gets indexed. */
void vs__vindex_notify(vs_db *db, uint32_t cid);

/* See vs_collection_rebuild(). */
int vs__vindex_rebuild(vs_db *db, const char *name, const char *spec, int threads, vs_error *err);

/* Forget collection cid's index and delete its segment files (after a drop). */
void vs__vindex_drop(vs_db *db, uint32_t cid);

/* Delete segment files that no manifest names and that are older than
 * VS__SWEEP_AGE seconds: left by a seal or rebuild killed before its
 * manifest committed.  Younger ones may belong to another process that is
 * about to commit.  Called by vs_db_open. */
#define VS__SWEEP_AGE 3600
void vs__vindex_sweep(vs_db *db);

/* Stop the background thread and free every index.  Called by vs_db_close. */
void vs__vindex_close(vs_db *db);

#endif /* VS_ENGINE_VINDEX_H */
