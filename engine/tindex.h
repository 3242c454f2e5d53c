/*
 * tindex.h: the text index of each collection (BM25 over its text fields),
 * kept in LMDB and written in the same transaction as the points it
 * indexes.  See tindex.c for the layout and text/postings.h for the runs.
 */
#ifndef VS_ENGINE_TINDEX_H
#define VS_ENGINE_TINDEX_H

#include "engine/storage.h"

/* The text side of one write transaction on a collection with text fields.
 * Points are added and removed in the transaction's order; commit writes
 * the new postings as one run, the statistics and the run list, and merges
 * runs when the merge policy asks for it.  Everything happens inside the
 * caller's transaction: an aborted transaction leaves no trace. */
typedef struct vs__tbatch vs__tbatch;

/* *out = NULL when c has no text fields (then nothing else need be called). */
int vs__tbatch_begin(vs_db *db, MDB_txn *txn, const vs__coll *c, vs__tbatch **out, vs_error *err);
/* pid has just been written with this payload (the msgpack map, may be empty). */
int vs__tbatch_add(vs__tbatch *b, uint64_t pid, const uint8_t *payload, size_t len, vs_error *err);
/* pid (written earlier, in this transaction or before) stops being live;
 * `payload` is what it was written with. */
int vs__tbatch_remove(vs__tbatch *b, uint64_t pid, const uint8_t *payload, size_t len,
                      vs_error *err);
int vs__tbatch_commit(vs__tbatch *b, vs_error *err);
void vs__tbatch_free(vs__tbatch *b);

/* Merge every run of collection `name` into one, dropping deleted points
 * (part of vs_collection_rebuild); *dim receives the collection's dim.
 * VS_OK also when it has no text fields; VS_EINVAL when it is text-only
 * and `spec` names a vector index. */
int vs__tindex_compact(vs_db *db, const char *name, const char *spec, uint32_t *dim, vs_error *err);

/* Free the idle analyzers.  Called by vs_db_close. */
void vs__tindex_close(vs_db *db);

#endif /* VS_ENGINE_TINDEX_H */
