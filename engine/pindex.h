/*
 * pindex.h: the payload index of each collection: its live points and, for
 * each payload field some filter has named, the points holding each value,
 * so that a filter is answered with bitmap algebra instead of reading and
 * matching payloads one by one.  Derived from LMDB like the vector index
 * (vindex.h), kept in memory only, never the source of truth.
 */
#ifndef VS_ENGINE_PINDEX_H
#define VS_ENGINE_PINDEX_H

#include <roaring/roaring.h>

#include "engine/filter.h"
#include "engine/storage.h"

/* The live points of collection c that pass filter f, as the snapshot of
 * `txn` sees them.  `st` is c's state record read in that same
 * transaction.  Brings the index up to date with the change log of that
 * snapshot, and indexes every field f names that is not indexed yet (one
 * pass over the collection's points, the first time a field is named).
 *
 * On VS_OK, *out is either a new bitmap of pids, exactly the points
 * vs__filter_match() would pass (free it with roaring_bitmap_free), or NULL
 * when the index cannot answer this snapshot; the caller then evaluates the
 * filter point by point, as it would without an index.  NULL comes back
 * when the collection holds a pid of 2^32 or more (the bitmaps are 32-bit;
 * this lasts for the life of the collection, since pids only grow), when
 * the snapshot is older than another thread has already moved the index
 * and it can no longer reconstruct that past, or when a field the filter
 * names is new and the index has moved past the snapshot.
 *
 * Returns VS_OK, VS_ENOMEM, VS_ECORRUPT (a malformed change log entry), or
 * the status of a failed LMDB read; err says why.  Thread-safe: any number
 * of threads may call it, each inside its own read transaction. */
int vs__pindex_eval(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs__state *st,
                    const vs__filter *f, roaring_bitmap_t **out, vs_error *err);

/* Free every payload index.  Called by vs_db_close, when no other call on
 * the database is running. */
void vs__pindex_close(vs_db *db);

#endif /* VS_ENGINE_PINDEX_H */
