/*
 * storage.h: the on-disk layout of a vsearch database, and the internal
 * interfaces of the engine's storage layer.
 *
 * This comment is the one place the storage format is documented.
 *
 * A DATABASE is a directory holding one LMDB environment (data.mdb and
 * lock.mdb).  Byte order: everything marked "native" is the host's order;
 * vsearch supports little-endian hosts only, so native means little-endian.
 *
 * Global named databases (LMDB "DBIs"):
 *
 *   meta     key "format"      -> u32 native: the format version (VS__FORMAT_VERSION).
 *                                 A database with a higher version is refused with
 *                                 VS_EVERSION; a lower one would be migrated.
 *            key "next_cid"    -> u32 native: the next collection id to hand out.
 *            key "state.<cid>" -> struct vs__state (24 bytes, native):
 *                                 next_pid, next_seq and live point count of
 *                                 collection <cid>, updated by every write.
 *   catalog  key <name>        -> the collection record (below).
 *
 *            key "index.<cid>" -> the vector index manifest of collection <cid>
 *                                 (engine/vindex.c): u8 version (1), u64 generation,
 *                                 u64 token (random: which writer made it), u64 seq
 *                                 (every upsert up to it is in a segment),
 *                                 u32 segment count, then per segment: u16 name
 *                                 length, the file name (in DIR/segments/), u32
 *                                 tombstone length, a portable roaring bitmap of
 *                                 the segment's deleted internal ids.
 *
 * Collection ids (cid) are never reused, so a collection dropped and created
 * again under the same name never sees the old one's data or handles.  Each
 * collection has four named DBIs of its own, named "c<cid>.<kind>":
 *
 *   c<cid>.ids  key: external id key (below) -> u64 native pid of the live version.
 *   c<cid>.pts  MDB_INTEGERKEY u64 pid -> point record (below).
 *   c<cid>.vec  MDB_INTEGERKEY u64 pid -> dim float32, native.  No header: keys are
 *               8 bytes and values 4*dim bytes, so every LMDB node of this DBI is a
 *               multiple of 4 bytes long and the value is 4-byte aligned in the map;
 *               searches read vectors in place (zero-copy).  Readers still check the
 *               alignment and copy when it does not hold.
 *   c<cid>.log  MDB_INTEGERKEY u64 seq -> change record: u8 op (1 upsert, 2 delete),
 *               u64 native pid.  9 bytes.
 *
 * A collection with text fields has two more, the text index, written in
 * the same transactions as the points (layouts in text/postings.h and
 * engine/tindex.c):
 *
 *   c<cid>.txt  runs of block-compressed posting lists, keyed by u64 BE run id,
 *               field, term (and first pid for a block).
 *   c<cid>.tdf  the run list, per-field statistics, per-term deleted counts.
 *
 * External id key: one kind byte, then the id.  Kind 1 = integer id, followed by
 * its 8 bytes big-endian (so integer ids sort numerically); kind 2 = string id,
 * followed by its 1..256 UTF-8 bytes.  The integer 5 and the string "5" differ.
 *
 * Point record (c<cid>.pts), version 1:
 *   u8  record version (1)
 *   u8  id kind (1 int, 2 string)
 *   u16 native id length n (8 for integers)
 *   n   id bytes (integer: u64 native; string: UTF-8)
 *   ... the payload: a msgpack map, to the end of the value (empty = no payload)
 *
 * Collection record (catalog), version 1:
 *   u8  record version (1)
 *   u32 native cid (a fixed place, so a lookup can compare it without decoding)
 *   ... a msgpack map with string keys "dim", "metric" ("l2"|"ip"|"cosine"), "index", "text_fields"
 *   (array of strings), "language", "k1", "b" (float64), "created_at" (unix seconds).
 * Readers ignore keys they do not know, so later versions can add keys.
 *
 * POINT VERSIONS AND THE CHANGE LOG.  Each version of a point gets an internal
 * id, the pid, from the collection's next_pid counter; pids are never reused.
 * Replacing a point writes the new version under a new pid and deletes the
 * old pid.  Every such step appends to c<cid>.log in commit order: "upsert
 * pid" when a pid becomes live and "delete pid" when it stops being live.
 * The vector index (FAISS) stores the last seq it covers and replays the
 * log after it; since a pid's vector never changes, replay is idempotent.
 * The text index needs no replay: it is written in the same transactions.
 * The payload index (engine/pindex.c) stores nothing: it is rebuilt in
 * memory from c<cid>.pts and kept up by replaying the log the same way (a
 * pid's payload never changes either).
 *
 * TRANSACTIONS.  One LMDB write transaction per API write call (a whole batch),
 * committed with fsync unless VS_OPEN_NOSYNC.  When LMDB reports MDB_MAP_FULL
 * the transaction is aborted, the map is doubled, and the call is retried from
 * the start; so is a transaction that finds MDB_MAP_RESIZED (another process
 * grew the map).  Changing the map size requires that no transaction of this
 * process be active: every transaction holds db->txn_lock shared, a resize
 * holds it exclusive.
 */
#ifndef VS_ENGINE_STORAGE_H
#define VS_ENGINE_STORAGE_H

#include <lmdb.h>
#include <pthread.h>

#include "engine/vsearch.h"

/* Format 2 added the text tables; format 1 databases are refused (VS_EVERSION)
 * rather than migrated: no release ever wrote them. */
#define VS__FORMAT_VERSION 2u
#define VS__POINT_RECORD_VERSION 1u
#define VS__COLLECTION_RECORD_VERSION 1u

/* A collection's tables; the last two exist only when it has text fields. */
enum {
  VS__DBI_IDS,
  VS__DBI_PTS,
  VS__DBI_VEC,
  VS__DBI_LOG,
  VS__DBI_TXT,
  VS__DBI_TDF,
  VS__DBI_COUNT
};
#define VS__DBI_PLAIN 4 /* tables every collection has */

enum { VS__ID_KIND_INT = 1, VS__ID_KIND_STR = 2 };
#define VS__ID_KEY_MAX (1 + VS_ID_MAX)
#define VS__POINT_HEADER 4 /* version, kind, u16 length */

/* A collection as the engine keeps it in memory.  Immutable once published
 * in db->colls; entries replaced by a newer resolution stay allocated until
 * the database is closed, so a thread may hold a pointer without a lock. */
typedef struct vs__coll {
  char name[VS_NAME_MAX + 1];
  uint32_t cid;
  uint32_t dim;
  vs_metric metric;
  MDB_dbi dbi[VS__DBI_COUNT];
  /* Text indexing (text fields, analyzer language, BM25 parameters). */
  uint32_t n_text;
  char text_fields[VS_TEXT_FIELDS_MAX][VS_FIELD_NAME_MAX + 1];
  char language[VS_LANGUAGE_MAX + 1];
  double k1, b;
  _Atomic int dead;      /* its handles may be closed (a failed drop): never use it */
  struct vs__coll *next; /* all entries ever made, for freeing at close */
} vs__coll;

/* Per-collection counters stored under meta "state.<cid>". */
typedef struct vs__state {
  uint64_t next_pid;
  uint64_t next_seq;
  uint64_t count;
} vs__state;

struct vs_db {
  MDB_env *env;
  MDB_dbi meta;
  MDB_dbi catalog;
  unsigned flags;
  char *dir;
  pthread_rwlock_t txn_lock;  /* shared by transactions, exclusive for resizes */
  pthread_mutex_t write_lock; /* one writer at a time in this process */
  pthread_mutex_t coll_lock;  /* colls list and every mdb_dbi_open call */
  vs__coll *colls;            /* newest first; see vs__coll */
  void *registry_key;         /* this open directory, in the process registry */
  unsigned seal_threshold;    /* vs_open_options.seal_threshold, defaulted */
  struct vs__vindex *vindex;  /* vector indexes, made at the first search (vindex.c) */
  pthread_mutex_t vindex_lock;
  struct vs__pindex *pindex; /* payload indexes, made at the first filter (pindex.c) */
  pthread_mutex_t pindex_lock;
  struct vs__analyzer_pool *analyzers; /* idle analyzers by language (tindex.c) */
  pthread_mutex_t analyzers_lock;
  /* Read transactions kept reset for reuse (db.c): renewing one skips
   * LMDB's reader-table lock and an allocation on every query. */
  MDB_txn *idle_txns[16];
  int n_idle_txns;
  pthread_mutex_t idle_txns_lock;
};

/* Memory (engine/alloc.c). */
void *vs__malloc(size_t size);
void *vs__calloc(size_t n, size_t size);
void *vs__realloc(void *ptr, size_t size);
void vs__free(void *ptr);
char *vs__strdup(const char *s);

/* Errors (engine/status.c).  vs__err() records a formatted message in err
 * (first error wins) and returns `code`, so callers write
 * `return vs__err(err, VS_EINVAL, "...")`. */
int vs__err(vs_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Translate an LMDB or errno code into a vsearch status. */
int vs__mdb_status(int mdb_rc);
/* vs__err() with the translated LMDB code and its text after `what`. */
int vs__mdb_err(vs_error *err, int mdb_rc, const char *what);

/* Transactions (engine/db.c).  A read transaction holds txn_lock shared. */
int vs__read_begin(vs_db *db, MDB_txn **txn, vs_error *err);
void vs__read_end(vs_db *db, MDB_txn *txn);

/* Run fn(db, txn, ctx, err) in a write transaction and commit it.  fn returns
 * VS_OK or a status; any status aborts the transaction.  When fn or the
 * commit hits MDB_MAP_FULL (fn returns it via vs__mdb_status as VS__EMAPFULL),
 * the map is grown and fn runs again from the start, so fn must not have
 * effects outside the transaction. */
typedef int (*vs__write_fn)(vs_db *db, MDB_txn *txn, void *ctx, vs_error *err);
int vs__write(vs_db *db, vs__write_fn fn, void *ctx, unsigned flags, vs_error *err);

/* vs__write() flags.  EXCLUSIVE holds txn_lock exclusive for the whole
 * transaction, so no other transaction of this process runs: needed when
 * DBI handles are closed (a dropped collection's), since LMDB may hand the
 * same handle numbers to the next mdb_dbi_open. */
#define VS__WRITE_EXCLUSIVE 1u

/* Internal status for "map full, grow and retry"; never returned to users. */
#define VS__EMAPFULL (-1000)
/* Internal status: "run this again in a new transaction" (a cached
 * collection handle or an index is out of step with the snapshot).
 * vs__coll_read/vs__coll_write retry on it; never returned to users. */
#define VS__RETRY 1

/* Collections (engine/catalog.c).
 *
 * vs__coll_read() and vs__coll_write() run fn in a read or write transaction
 * on collection `name`, with its DBIs open and its cid confirmed inside that
 * transaction (so a concurrent drop or re-create is never missed).  DBI
 * handles are opened in a transaction of their own, under coll_lock, because
 * LMDB forbids mdb_dbi_open in a transaction that overlaps another one using
 * it.  Both return VS_ENOTFOUND when no collection has that name. */
typedef int (*vs__coll_fn)(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err);
int vs__coll_read(vs_db *db, const char *name, vs__coll_fn fn, void *ctx, vs_error *err);
int vs__coll_write(vs_db *db, const char *name, vs__coll_fn fn, void *ctx, vs_error *err);
/* Make the meta table key "<prefix><cid>" in buf (cap >= strlen(prefix) + 11)
 * and point k at it; returns its length. */
size_t vs__meta_key(MDB_val *k, char *buf, size_t cap, const char *prefix, uint32_t cid);
/* Change the index spec in a collection record (vs_collection_rebuild). */
int vs__coll_set_spec(vs_db *db, MDB_txn *txn, const char *name, const char *spec, vs_error *err);
/* Read and write a collection's state record ("state.<cid>" in meta). */
int vs__state_get(vs_db *db, MDB_txn *txn, uint32_t cid, vs__state *st, vs_error *err);
int vs__state_put(vs_db *db, MDB_txn *txn, uint32_t cid, const vs__state *st, vs_error *err);
void vs__colls_free(vs_db *db);

/* A point record (layout above) read in place: valid while its transaction
 * lives.  A string id's `str` is not NUL-terminated. */
typedef struct vs__prec {
  vs_id id;
  const uint8_t *payload; /* msgpack map, payload_len bytes (0: none) */
  size_t payload_len;
} vs__prec;

/* Parse a point record; 0, or -1 when it is malformed (bytes from disk are
 * checked, never trusted). */
int vs__point_parse(const MDB_val *rec, vs__prec *out);

/* Call fn for each change-log entry with after < seq <= last, in order.
 * fn returns VS_OK to go on, VS__LOG_STOP to end the walk early (then
 * vs__log_each returns VS_OK), or an error, which ends it and is returned.
 * A malformed entry is VS_ECORRUPT. */
#define VS__LOG_STOP 2
typedef int (*vs__log_fn)(void *ctx, uint64_t seq, vs_change_op op, uint64_t pid, vs_error *err);
int vs__log_each(MDB_txn *txn, const vs__coll *c, uint64_t after, uint64_t last, vs__log_fn fn,
                 void *ctx, vs_error *err);

/* The stored vector of pid, read in place (valid until txn ends): VS_OK,
 * VS_ENOTFOUND (no such pid in this snapshot) or VS_ECORRUPT. */
int vs__vector_get(MDB_txn *txn, const vs__coll *c, uint64_t pid, const float **x, vs_error *err);

/* Validation (engine/validate.c). */
int vs__name_check(const char *name, vs_error *err);
int vs__utf8_check(const char *s, size_t len);
int vs__id_check(const vs_id *id, size_t index, vs_error *err);
/* Encode a checked id into `key` (VS__ID_KEY_MAX bytes); returns its length. */
size_t vs__id_key(const vs_id *id, uint8_t *key);
/* Check a vector of dim floats against a collection of dim `want`: the
 * dimension, presence, and every component finite.  Messages begin with
 * `what`: "point 3: vector", "query vector". */
int vs__vector_check(const float *v, size_t dim, uint32_t want, const char *what, vs_error *err);
/* Check a payload: a msgpack map of the kinds vsearch_h documents. */
int vs__payload_check(const void *p, size_t len, size_t index, vs_error *err);

#endif /* VS_ENGINE_STORAGE_H */
