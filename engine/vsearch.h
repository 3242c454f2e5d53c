/*
 * vsearch.h: the embeddable C API of vsearch, and its manual.
 *
 * vsearch stores points (an external id, a float32 vector and a msgpack
 * payload) in collections inside a database.  A database is a directory
 * holding one LMDB environment (the source of truth) and, in later versions,
 * snapshot files of the derived indexes.  This header is the only one an
 * embedding program includes; nothing here requires reading the .c files.
 *
 * CONVENTIONS
 *
 *  - Every fallible call returns int: VS_OK (0) or a negative VS_E* status.
 *    vs_strerror() and vs_err_name() turn any status into a static string.
 *  - Calls with rich failure modes take an optional `vs_error *err`.  When
 *    it is not NULL and the call fails, err->code is set to the status and
 *    err->message to a sentence naming what was wrong ("point 3: vector has
 *    12 components, the collection has dim 16").  The first error wins: a
 *    vs_error already holding an error is not overwritten, so one vs_error
 *    can follow a sequence of calls.  Initialise it with VS_ERROR_INIT or
 *    vs_error_clear().  There is no thread-local "last error".
 *  - A call that fails changes nothing: writes are all or nothing.
 *  - Strings passed in are NUL-terminated UTF-8 unless a length is given;
 *    they are copied when needed and may be freed when the call returns.
 *  - Anything vsearch allocates for the caller is released with vs_free().
 *    Destructors and vs_free() accept NULL.
 *  - Out of memory is returned as VS_ENOMEM; the library never aborts.
 *
 * THREADS
 *
 *  A vs_db handle may be shared by any number of threads: every call on it
 *  is thread-safe.  Writes (create, drop, upsert, delete) are serialised, as
 *  LMDB allows one writer at a time; reads run concurrently with each other
 *  and with the writer.  Several processes may open the same directory
 *  (LMDB's multi-process locking); writes are serialised across them too.
 *  Do not open the same directory twice in one process: LMDB forbids it.
 *
 * DURABILITY
 *
 *  A write call that returned VS_OK has been committed and fsync'ed to disk
 *  (unless the database was opened with VS_OPEN_NOSYNC): it survives a
 *  crash of the process or the machine.  A write that did not return VS_OK
 *  left no trace.  The LMDB map grows on demand: a write never fails with
 *  "map full" while the disk has room.
 */
#ifndef VSEARCH_H
#define VSEARCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VS_VERSION_MAJOR 0
#define VS_VERSION_MINOR 1
#define VS_VERSION_PATCH 0
#define VS_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------
 * Status codes
 *
 * One table generates the enum, vs_strerror(), vs_err_name() and the error
 * code a server puts on the wire (vs_err_wire()).  Columns: the suffix of the
 * VS_E name, its value, the wire code (DESIGN.md section 5), the message.
 * ------------------------------------------------------------------------- */
#define VS_STATUS_MAP(XX)                                                                          \
  XX(OK, 0, "ok", "success")                                                                       \
  XX(EINVAL, -1, "bad_request", "invalid argument")                                                \
  XX(ENOTFOUND, -2, "not_found", "no such collection")                                             \
  XX(EEXIST, -3, "already_exists", "collection already exists")                                    \
  XX(EDIM, -4, "dim_mismatch", "vector dimension does not match the collection")                   \
  XX(ETOOLARGE, -5, "too_large", "request exceeds a limit")                                        \
  XX(EAUTH, -6, "unauthenticated", "authentication required")                                      \
  XX(EMETHOD, -7, "unknown_method", "unknown method")                                              \
  XX(EOVERLOAD, -8, "overloaded", "server overloaded")                                             \
  XX(EINTERNAL, -9, "internal", "internal error")                                                  \
  XX(ENOMEM, -10, "internal", "out of memory")                                                     \
  XX(EIO, -11, "internal", "input/output error")                                                   \
  XX(ENOSPC, -12, "internal", "no space left on device")                                           \
  XX(ECORRUPT, -13, "internal", "database is corrupted")                                           \
  XX(EVERSION, -14, "internal", "database format version not supported")                           \
  XX(EBUSY, -15, "internal", "database is locked or busy")                                         \
  XX(EACCES, -16, "internal", "permission denied")

typedef enum vs_status {
#define VS_XX_ENUM(name, value, wire, msg) VS_##name = value,
  VS_STATUS_MAP(VS_XX_ENUM)
#undef VS_XX_ENUM
} vs_status;

/* Return a static description of status `rc` ("unknown status" for values
 * outside the table).  Thread-safe. */
const char *vs_strerror(int rc);

/* Return the static name of status `rc`, e.g. "VS_EDIM".  Thread-safe. */
const char *vs_err_name(int rc);

/* Return the wire error code of status `rc` (e.g. "dim_mismatch"); statuses
 * that have no wire code of their own map to "internal".  Thread-safe. */
const char *vs_err_wire(int rc);

/* A caller-owned error report.  `code` is VS_OK while no error happened. */
#define VS_ERROR_MESSAGE_MAX 256
typedef struct vs_error {
  int code;
  char message[VS_ERROR_MESSAGE_MAX];
} vs_error;

#define VS_ERROR_INIT                                                                              \
  {                                                                                                \
    0, {                                                                                           \
      0                                                                                            \
    }                                                                                              \
  }

/* Reset `err` to "no error".  Accepts NULL. */
void vs_error_clear(vs_error *err);

/* ---------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------- */

/* The allocator vsearch uses for everything it allocates itself (LMDB,
 * FAISS and the C library allocate on their own).  `ctx` is passed back. */
typedef struct vs_allocator {
  void *(*malloc_fn)(void *ctx, size_t size);
  void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
  void (*free_fn)(void *ctx, void *ptr);
  void *ctx;
} vs_allocator;

/* Replace the allocator; NULL restores malloc/realloc/free.  Call it before
 * any other vsearch call and never while a handle is open or memory returned
 * by vsearch is still held: memory must be freed by the allocator that made
 * it.  Not thread-safe.  Tests use it to inject allocation failures. */
void vs_set_allocator(const vs_allocator *a);

/* Release memory that vsearch allocated for the caller.  Accepts NULL. */
void vs_free(void *ptr);

/* ---------------------------------------------------------------------------
 * Database
 * ------------------------------------------------------------------------- */

typedef struct vs_db vs_db;

/* Flags for vs_open_options.flags. */
enum {
  /* Create the directory (one level) if it does not exist. */
  VS_OPEN_CREATE = 1u << 0,
  /* Do not fsync at commit.  Faster; a crash of the machine (not of the
   * process) may lose the last acknowledged writes, never corrupt data. */
  VS_OPEN_NOSYNC = 1u << 1,
  /* Open read-only: every write call fails with VS_EACCES. */
  VS_OPEN_READONLY = 1u << 2,
};

typedef struct vs_open_options {
  unsigned flags;       /* VS_OPEN_* */
  size_t map_size;      /* initial LMDB map size in bytes; 0 = 256 MiB.  The map
                           grows on demand, so this only sets where it starts. */
  unsigned max_readers; /* concurrent read transactions; 0 = 256 */
  /* Fresh points (searched exactly) that make the background thread seal
   * them into a FAISS segment; 0 = 20000.  See "Vector search" below. */
  unsigned seal_threshold;
} vs_open_options;

/* Open (and with VS_OPEN_CREATE, create) the database in directory `dir`.
 *
 * `opts` may be NULL for defaults (which do NOT include VS_OPEN_CREATE).  On
 * success *out receives a handle to release with vs_db_close().  At open,
 * slots of reader processes that died are cleared (mdb_reader_check), and
 * the on-disk format version is checked.
 *
 * Returns VS_OK; VS_EINVAL (NULL or empty dir, bad options); VS_ENOTFOUND
 * (no directory and no VS_OPEN_CREATE); VS_EACCES; VS_EBUSY (the directory
 * is already open in this process); VS_EVERSION (written by a newer or
 * unknown format); VS_ECORRUPT; VS_ENOMEM; VS_EIO.  Thread-safe. */
int vs_db_open(const char *dir, const vs_open_options *opts, vs_db **out, vs_error *err);

/* Close the database.  Every call on `db` must have returned first.
 * Accepts NULL. */
void vs_db_close(vs_db *db);

/* ---------------------------------------------------------------------------
 * Collections
 * ------------------------------------------------------------------------- */

typedef enum vs_metric {
  VS_METRIC_L2 = 0,     /* squared Euclidean distance; lower is better */
  VS_METRIC_IP = 1,     /* inner product; higher is better */
  VS_METRIC_COSINE = 2, /* cosine similarity; higher is better */
} vs_metric;

/* Parse "l2", "ip" or "cosine"; VS_EINVAL otherwise. */
int vs_metric_parse(const char *s, vs_metric *out);
/* "l2", "ip", "cosine", or "?" for an unknown value. */
const char *vs_metric_name(vs_metric m);

#define VS_NAME_MAX 64            /* collection names: [A-Za-z0-9_-]{1,64} */
#define VS_DIM_MAX 32768          /* dim: 0 (text only) or 1..VS_DIM_MAX */
#define VS_INDEX_SPEC_MAX 127     /* bytes of an index spec */
#define VS_TEXT_FIELDS_MAX 16     /* text fields per collection */
#define VS_FIELD_NAME_MAX 255     /* bytes of a payload field name */
#define VS_LANGUAGE_MAX 31        /* bytes of a language name */
#define VS_ID_MAX 256             /* bytes of a string id */
#define VS_INT_ID_MAX INT64_MAX   /* integer ids are 0..2^63-1 */
#define VS_PAYLOAD_MAX (1u << 20) /* bytes of one point's payload */
#define VS_PAYLOAD_DEPTH 2        /* a map of scalars and arrays of scalars */

/* What a collection is created with.  Strings are caller-owned; they are
 * copied by vs_collection_create(). */
typedef struct vs_collection_config {
  const char *name; /* [A-Za-z0-9_-]{1,64} */
  uint32_t dim;     /* 0 for a text-only collection, else 1..VS_DIM_MAX */
  vs_metric metric;
  /* A FAISS index factory string: "Flat", "HNSW32", "HNSW32,SQ8",
   * "IVF1024,Flat", "IVF1024,PQ16", ...  NULL means "HNSW32" (or "" when
   * dim is 0).  It is checked by building an empty FAISS index from it. */
  const char *index;
  const char *const *text_fields; /* payload fields indexed as text */
  size_t n_text_fields;           /* 0..VS_TEXT_FIELDS_MAX */
  /* A Snowball stemmer name ("english", "porter", "french", ...) or "none";
   * NULL means "english". */
  const char *language;
  /* BM25 parameters; both 0 (as in a zeroed struct) mean Lucene's defaults
   * k1 = 1.2, b = 0.75.  k1 must be finite and 0 <= k1 <= 100, 0 <= b <= 1. */
  double bm25_k1;
  double bm25_b;
} vs_collection_config;

/* A collection as stored.  Returned by vs_collection_describe() and
 * vs_collection_list() in one allocation (strings included), freed with one
 * vs_free(). */
typedef struct vs_collection_info {
  char name[VS_NAME_MAX + 1];
  uint32_t dim;
  vs_metric metric;
  char index[VS_INDEX_SPEC_MAX + 1];
  char language[VS_LANGUAGE_MAX + 1];
  double bm25_k1;
  double bm25_b;
  size_t n_text_fields;
  const char **text_fields; /* n_text_fields strings, in the same allocation */
  uint64_t count;           /* live points */
  uint64_t created_at;      /* seconds since the Unix epoch */
} vs_collection_info;

/* Create a collection.
 *
 * Returns VS_OK; VS_EINVAL (bad name, dim, metric, index spec, language,
 * text field or BM25 parameter, with err saying which); VS_EEXIST (a
 * collection of that name exists); VS_EACCES (read-only); VS_ENOMEM;
 * VS_EIO; VS_ENOSPC.  Thread-safe; serialised with other writes. */
int vs_collection_create(vs_db *db, const vs_collection_config *cfg, vs_error *err);

/* Drop a collection and every point in it.  The space is reused by later
 * writes.  Returns VS_OK; VS_EINVAL; VS_ENOTFOUND; VS_EACCES; VS_EIO.
 * Thread-safe. */
int vs_collection_drop(vs_db *db, const char *name, vs_error *err);

/* Describe one collection.  On success *out is one allocation to release
 * with vs_free().  Returns VS_OK; VS_EINVAL; VS_ENOTFOUND; VS_ENOMEM;
 * VS_ECORRUPT.  Thread-safe. */
int vs_collection_describe(vs_db *db, const char *name, vs_collection_info **out, vs_error *err);

/* List every collection, sorted by name.  On success *out is an array of *n
 * descriptions in one allocation (NULL when *n is 0) to release with one
 * vs_free().  Returns VS_OK; VS_ENOMEM; VS_ECORRUPT.  Thread-safe. */
int vs_collection_list(vs_db *db, vs_collection_info **out, size_t *n, vs_error *err);

/* ---------------------------------------------------------------------------
 * Points
 * ------------------------------------------------------------------------- */

typedef enum vs_id_kind {
  VS_ID_INT = 1, /* an unsigned integer below 2^63 */
  VS_ID_STR = 2, /* 1..VS_ID_MAX bytes of valid UTF-8 */
} vs_id_kind;

/* An external point id.  "5" (VS_ID_STR) and 5 (VS_ID_INT) are different
 * ids.  `str` is not NUL-terminated necessarily: `len` bytes are used. */
typedef struct vs_id {
  vs_id_kind kind;
  uint64_t num;    /* when kind == VS_ID_INT */
  const char *str; /* when kind == VS_ID_STR */
  size_t len;
} vs_id;

/* Convenience constructors. */
vs_id vs_id_int(uint64_t num);
vs_id vs_id_str(const char *nul_terminated);

/* A point to upsert.  Everything is caller-owned and copied. */
typedef struct vs_point {
  vs_id id;
  const float *vector; /* `dim` finite floats; NULL when the collection's dim is 0 */
  size_t dim;          /* must equal the collection's dim */
  /* A msgpack map whose keys are strings (1..VS_FIELD_NAME_MAX bytes of
   * UTF-8) and whose values are strings (UTF-8), integers, finite floats,
   * booleans, or arrays of those (no nil, no nested maps or arrays).  At most
   * VS_PAYLOAD_MAX bytes.  NULL/0 means an empty payload. */
  const void *payload;
  size_t payload_len;
} vs_point;

/* Insert or replace `n` points in collection `name`, all or nothing.
 *
 * Every point is validated before anything is written: the id, the vector
 * (length equal to the collection's dim, every component finite) and the
 * payload.  A point whose id exists replaces it (vector and payload).  When
 * the same id appears more than once in one batch, the last occurrence wins,
 * as if the points had been upserted one after another (Elasticsearch's bulk
 * and Qdrant's upsert do the same).  On VS_OK the batch is durable (see
 * DURABILITY).  n == 0 is a no-op returning VS_OK.
 *
 * Returns VS_OK; VS_EINVAL (bad id, NaN or infinite component, bad payload;
 * err names the point's index); VS_EDIM (wrong vector length); VS_ENOTFOUND
 * (no such collection); VS_ETOOLARGE (payload over VS_PAYLOAD_MAX);
 * VS_EACCES; VS_ENOMEM; VS_EIO; VS_ENOSPC.  Thread-safe. */
int vs_upsert(vs_db *db, const char *name, const vs_point *points, size_t n, vs_error *err);

/* Delete the points with the given ids, all or nothing.  Ids that do not
 * exist are ignored; *deleted (may be NULL) receives how many points were
 * deleted.  Returns VS_OK; VS_EINVAL (a malformed id); VS_ENOTFOUND (no such
 * collection); VS_EACCES; VS_EIO.  Thread-safe. */
int vs_delete(vs_db *db, const char *name, const vs_id *ids, size_t n, size_t *deleted,
              vs_error *err);

/* Flags for vs_get(). */
enum {
  VS_GET_VECTOR = 1u << 0,  /* return the vector */
  VS_GET_PAYLOAD = 1u << 1, /* return the payload */
};

/* One result of vs_get(): `found` is 0 when no point has that id. */
typedef struct vs_record {
  vs_id id; /* as asked; str points into the same allocation */
  int found;
  uint32_t dim;           /* components in `vector` (0 unless VS_GET_VECTOR) */
  const float *vector;    /* NULL unless VS_GET_VECTOR and found */
  const uint8_t *payload; /* msgpack map, NULL unless VS_GET_PAYLOAD and found */
  size_t payload_len;
} vs_record;

/* Look up `n` ids.  On success *out is an array of n records, in the order
 * of `ids`, in one allocation released with one vs_free().  Returns VS_OK;
 * VS_EINVAL; VS_ENOTFOUND (no such collection); VS_ENOMEM.  Thread-safe. */
int vs_get(vs_db *db, const char *name, const vs_id *ids, size_t n, unsigned flags, vs_record **out,
           vs_error *err);

/* Count the live points of a collection.  Returns VS_OK; VS_EINVAL;
 * VS_ENOTFOUND.  Thread-safe. */
int vs_count(vs_db *db, const char *name, uint64_t *out, vs_error *err);

/* ---------------------------------------------------------------------------
 * Vector search
 *
 * Each collection's vectors are indexed in SEGMENTS: immutable FAISS indexes
 * built from the collection's index spec, plus a FRESH segment holding the
 * newest points, which is searched exactly.  A search first catches up with
 * the change log (so every acknowledged write, from any thread or process,
 * is visible), then searches every segment and the fresh points, and merges.
 * When the fresh segment reaches vs_open_options.seal_threshold points, a
 * background thread builds a FAISS segment from it and persists it; deletes
 * and replacements are tombstones, applied inside FAISS through an
 * IDSelector.  vs_collection_rebuild() (and `vsearch build`) replaces all
 * segments with one, trained on every stored vector.  Segment files live in
 * DIR/segments/; the list of segments and the change-log position they cover
 * are committed in LMDB, so a restart loads them and replays only the log
 * after that position.
 *
 * Scores: l2 = squared Euclidean distance (ascending); ip = inner product
 * and cosine = cosine similarity (descending).  Every returned score is
 * exact, whatever the index compressed: Flat, HNSW-Flat and IVF-Flat keep
 * the vectors as given and their distances are the scores; candidates of
 * any other index (PQ, SQ, ...) or of a MIPS graph are re-scored from the
 * stored vector.  Equal scores are listed by the lower internal id (the
 * older point version); which of many equidistant points an approximate
 * index finds is its own choice.
 * Inner-product HNSW segments use the MIPS-to-L2 reduction (see
 * index/segment.h); cosine collections index normalised vectors and refuse
 * zero vectors.
 * ------------------------------------------------------------------------- */

/* A payload filter, Qdrant's shape (DESIGN.md section 4):
 *   {"must": [C...], "should": [C...], "must_not": [C...]}
 * with conditions {"key": F, "match": {"value": V}}, {"key": F, "match":
 * {"any": [V...]}}, {"key": F, "range": {"gt"|"gte"|"lt"|"lte": N}},
 * {"has_id": [ID...]} or a nested filter.  For an array field, a condition
 * holds when any element matches; a missing field matches nothing.  Numbers
 * compare by value (5 == 5.0); "5" and 5 differ.  engine/filter.h has the
 * full rules.  A parsed filter is immutable and may be used by any number of
 * threads at once. */
typedef struct vs_filter vs_filter;

/* Parse a filter from `len` bytes of JSON, or of one msgpack map (untrusted
 * bytes: scanned before anything is allocated).  On success *out receives a
 * filter to release with vs_filter_free().  Returns VS_OK; VS_EINVAL (with
 * err naming the problem, e.g. "filter: must[2]: range needs at least one
 * of gt, gte, lt, lte"); VS_ENOMEM.  Thread-safe. */
int vs_filter_parse_json(const char *json, size_t len, vs_filter **out, vs_error *err);
int vs_filter_parse_msgpack(const void *p, size_t len, vs_filter **out, vs_error *err);
/* Release a filter.  Accepts NULL. */
void vs_filter_free(vs_filter *f);

/* Count the live points of `name` that pass `filter` (NULL: all of them,
 * as vs_count).  Exact: answered from the payload index (engine/pindex.c,
 * built for the fields a filter names at their first use), or by reading
 * every payload when it cannot answer.  Returns VS_OK; VS_EINVAL;
 * VS_ENOTFOUND.  Thread-safe. */
int vs_count_where(vs_db *db, const char *name, const vs_filter *filter, uint64_t *out,
                   vs_error *err);

/* Delete every point of `name` that passes `filter` (a filter of {} passes
 * them all), in one write transaction: all or nothing, and exactly the
 * points passing in that transaction's snapshot.  It reads every point's
 * payload (the payload index is not consulted).  *deleted (may be NULL)
 * receives how many were deleted.  Returns VS_OK; VS_EINVAL; VS_ENOTFOUND;
 * VS_EACCES; VS_ENOMEM; VS_EIO.  Thread-safe. */
int vs_delete_where(vs_db *db, const char *name, const vs_filter *filter, size_t *deleted,
                    vs_error *err);

#define VS_K_MAX 10000 /* k and candidate depths */
#define VS_EF_MAX 100000

typedef struct vs_search_params {
  const float *vector;     /* the query, `dim` floats */
  size_t dim;              /* must equal the collection's dim */
  size_t k;                /* 1..VS_K_MAX */
  int ef;                  /* HNSW efSearch, 0 = 64; at least k is used */
  int nprobe;              /* IVF lists to visit, 0 = the index's default (1) */
  int exact;               /* nonzero: scan every live point, ignore the index */
  unsigned with;           /* VS_GET_VECTOR | VS_GET_PAYLOAD: what hits carry */
  const vs_filter *filter; /* NULL, or only points passing it are returned */
  /* Points never to return (already seen), up to VS_EXCLUDE_MAX; ids with
   * no point are ignored.  k hits still come back whenever k points pass
   * the filter and are not excluded. */
  const vs_id *exclude;
  size_t n_exclude;
  /* With VS_GET_PAYLOAD: NULL returns the whole payload, else only these
   * top-level fields (a field the point lacks is left out), at most
   * VS_PAYLOAD_FIELDS_MAX of them. */
  const char *const *payload_fields;
  size_t n_payload_fields;
} vs_search_params;

#define VS_EXCLUDE_MAX 100000
#define VS_PAYLOAD_FIELDS_MAX 1024

/* One search result.  Pointers point into the same allocation. */
typedef struct vs_hit {
  vs_id id;
  float score;
  uint32_t dim; /* components in vector (0 unless VS_GET_VECTOR) */
  const float *vector;
  const uint8_t *payload; /* msgpack map, NULL unless VS_GET_PAYLOAD and non-empty */
  size_t payload_len;
  /* vs_hybrid_search with explain: the hit's rank (from 1; 0 = not in that
   * leg's candidates) and score in each leg.  With group_by: the number of
   * its group (0 for the best group).  Zero otherwise. */
  uint32_t vector_rank, text_rank;
  float vector_score, text_score;
  uint32_t group;
} vs_hit;

/* How a search ran.  `plan` is one of "exact" (a scan of every stored
 * vector, as asked), "index" (FAISS segments and fresh points),
 * "filtered-scan" (a filter that passes few points: only the passing points
 * are scored, found through the payload index), "index-filtered" (the index
 * with the filter applied inside FAISS through an IDSelector),
 * "filter-index" (the filter's own sub-index: a segment over the points it
 * passes, built in the background for a filter whose walks kept missing),
 * "exact-fallback" (the index found fewer than k of the points that exist,
 * as an HNSW walk may when most nodes are tombstoned or filtered out, or
 * writes kept outrunning the search: the scan ran instead, so k results
 * come back whenever k points pass) or "empty".  `selectivity` is the
 * fraction of live points passing the filter: exact when the payload index
 * answered (the usual case), else estimated from a sample; 1 without a
 * filter.  `candidates` counts the points scored. */
typedef struct vs_search_info {
  char plan[16];
  uint32_t segments;   /* FAISS segments searched */
  uint64_t fresh;      /* fresh points scanned exactly */
  uint64_t candidates; /* points scored (index candidates, or scanned points) */
  double selectivity;
} vs_search_info;

/* Search collection `name` for the k points nearest to p->vector.
 *
 * On success *hits is an array of *n (<= k) hits, best first, in one
 * allocation released with vs_free() (NULL when *n is 0); `info` (may be
 * NULL) says how the search ran.  Returns VS_OK; VS_EINVAL (k = 0, a NaN or
 * infinite component, a zero vector under cosine, negative ef or nprobe, a
 * text-only collection); VS_EDIM; VS_ETOOLARGE (k over VS_K_MAX, ef over
 * VS_EF_MAX); VS_ENOTFOUND; VS_ENOMEM; VS_EIO (a segment file could not be
 * read).  Thread-safe. */
int vs_search(vs_db *db, const char *name, const vs_search_params *p, vs_hit **hits, size_t *n,
              vs_search_info *info, vs_error *err);

/* Rebuild the derived indexes of collection `name` from LMDB.  The text
 * index (when it has text fields) is merged into one run without deleted
 * points, in one write transaction.  The vector index becomes one segment
 * over every live point, IVF/PQ trained on the stored vectors, deleted
 * points dropped; `index` (NULL = keep the current spec; must be NULL or ""
 * for a text-only collection) may change the spec.  The
 * new segment is switched in atomically; searches running meanwhile use the
 * old ones.  Safe while other processes have the database open: they load
 * the new segment at their next search.  `threads` bounds OpenMP (0 = all
 * cores).  Returns VS_OK; VS_EINVAL (bad spec); VS_ENOTFOUND; VS_EBUSY (the
 * index was changed by someone else meanwhile: run it again); VS_ENOMEM;
 * VS_EIO.  Thread-safe. */
int vs_collection_rebuild(vs_db *db, const char *name, const char *index, int threads,
                          vs_error *err);

/* ---------------------------------------------------------------------------
 * Text search (BM25)
 *
 * A collection created with text_fields indexes those payload fields (a
 * string, or an array of strings: its elements are one text) in an
 * inverted index kept in LMDB and written in the same transaction as the
 * point: an acknowledged upsert is searchable at once, a delete or
 * replacement is reflected at once, and nothing is rebuilt at open.  The
 * analyzer (text/analyzer.h) follows the collection's language.  A text
 * field value must be valid UTF-8 (the payload check already demands it).
 *
 * Scoring is Lucene's BM25: for each query term t (a term repeated in the
 * query counts as often as it occurs) and each text field f,
 *   w_f * idf(t,f) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
 * with idf(t,f) = ln(1 + (N - df + 0.5) / (df + 0.5)), where N is the number
 * of live points with at least one term in field f, df the number of them
 * holding t there, dl the point's number of terms in f and avgdl their mean.
 * These statistics are exact at every moment: deletes remove postings.
 * A point's score is the sum over terms and fields; points with no query
 * term are not returned.  Results are ordered by score, ties by the older
 * point version first.  Top-k uses block-max MaxScore and returns exactly what
 * scoring every posting would.
 * ------------------------------------------------------------------------- */

/* A field weight for text search: `field` must be one of the collection's
 * text fields; weight must be finite and >= 0 (0 ignores the field). */
typedef struct vs_field_weight {
  const char *field;
  float weight;
} vs_field_weight;

#define VS_QUERY_TEXT_MAX (64u << 10) /* bytes of a text query */

typedef struct vs_text_params {
  const char *text; /* the query, `len` bytes of UTF-8 */
  size_t len;
  size_t k;                       /* 1..VS_K_MAX */
  unsigned with;                  /* VS_GET_VECTOR | VS_GET_PAYLOAD */
  const vs_filter *filter;        /* NULL, or only points passing it */
  const vs_field_weight *weights; /* NULL: every text field weighs 1 */
  size_t n_weights;               /* fields not named weigh 1 */
  const vs_id *exclude;           /* as in vs_search_params */
  size_t n_exclude;
  const char *const *payload_fields; /* as in vs_search_params */
  size_t n_payload_fields;
} vs_text_params;

/* Search collection `name` by BM25 over its text fields.
 *
 * On success *hits holds *n (<= k) hits, best first, in one allocation
 * released with vs_free() (NULL when *n is 0); score is the BM25 score.
 * `info` (may be NULL): plan "bm25" (block-max MaxScore over the postings),
 * "bm25-filtered" (the same, skipping points the filter rejects),
 * "filtered-scan" (a filter passing few points: only those are scored) or
 * "empty" (no query term left after analysis, or no text fields);
 * candidates = points fully scored.  A query whose every term is a stopword
 * returns no hits.  Returns VS_OK; VS_EINVAL (k = 0, invalid UTF-8, a weight
 * naming no text field or not finite and >= 0); VS_ETOOLARGE (k over
 * VS_K_MAX, text over VS_QUERY_TEXT_MAX, more than 1024 distinct terms
 * times text fields); VS_ENOTFOUND; VS_ENOMEM.
 * Thread-safe. */
int vs_text_search(vs_db *db, const char *name, const vs_text_params *p, vs_hit **hits, size_t *n,
                   vs_search_info *info, vs_error *err);

/* Count the live points holding at least one of the query's terms (after
 * analysis) in a text field and passing p->filter; p->k and p->with are
 * ignored.  Returns as vs_text_search.  Thread-safe. */
int vs_text_count(vs_db *db, const char *name, const vs_text_params *p, uint64_t *out,
                  vs_error *err);

/* ---------------------------------------------------------------------------
 * Hybrid search, RAG and recommenders
 * ------------------------------------------------------------------------- */

typedef enum vs_fusion {
  VS_FUSION_RRF = 0,      /* sum over legs of weight / (rrf_k + rank), rank from 1 */
  VS_FUSION_WEIGHTED = 1, /* sum over legs of weight * min-max normalised score */
} vs_fusion;

typedef struct vs_hybrid_params {
  const float *vector; /* the vector leg's query (NULL: no vector leg) */
  size_t dim;
  const char *text; /* the text leg's query, `len` bytes (NULL: no text leg) */
  size_t len;
  size_t k;          /* hits (or groups, with group_by) to return: 1..VS_K_MAX */
  size_t candidates; /* depth of each leg: 0 = 100; at least k is used; at most VS_K_MAX */
  vs_fusion fusion;
  double rrf_k;         /* 0 = 60 */
  double vector_weight; /* both weights 0 = 1 and 1 */
  double text_weight;
  int ef, nprobe;                 /* the vector leg's, as in vs_search_params */
  const vs_field_weight *weights; /* the text leg's field weights */
  size_t n_weights;
  const vs_filter *filter; /* applied in both legs */
  const vs_id *exclude;    /* never returned, by either leg */
  size_t n_exclude;
  unsigned with;
  const char *const *payload_fields;
  size_t n_payload_fields;
  int explain; /* fill vector_rank/score and text_rank/score of each hit */
  /* RAG: keep the best group_size hits of each value of payload field
   * group_by (a hit lacking the field is a group of its own; an array
   * field groups by its first element), k groups back, best group first;
   * applied after fusion (and MMR).  Groups come from the fused
   * candidates, so fewer than k come back when they hold fewer values. */
  const char *group_by;
  size_t group_size; /* 0 = 1 */
  /* MMR re-ranking of the fused candidates: when mmr_lambda > 0, pick hits
   * one at a time maximising lambda * sim(q, d) - (1 - lambda) * max sim(d,
   * chosen), sim = the collection's similarity on the stored vectors
   * (negated squared distance for l2), among the best mmr_candidates fused
   * candidates (0 = all of them; the candidates past them follow in fused
   * order).  Needs the vector leg. */
  double mmr_lambda; /* 0 = no MMR; else in (0, 1] */
  size_t mmr_candidates;
} vs_hybrid_params;

/* How a hybrid search ran: each leg's own info (plan "none" for a leg not
 * asked for, "empty" for one with no results), `legs` = "vector+text",
 * "vector", "text" or "none" (the legs that contributed), and `note`
 * saying why a leg was dropped ("" when none was). */
typedef struct vs_hybrid_info {
  vs_search_info vector, text;
  char legs[16];
  char note[96];
} vs_hybrid_info;

/* Hybrid search: both legs in one snapshot, each with the filter and the
 * exclusions, to `candidates` deep, fused; ties in the fused score go to
 * the better vector rank, then the better text rank, then the older point.
 * A leg with no results (no vector given, a text-only collection, no text
 * fields, a query of stopwords) leaves the other leg's order, said in
 * info->note.  Hits as vs_search's; score = the fused score.  Returns
 * VS_OK; VS_EINVAL (no leg asked for, bad weights, rrf_k < 0, lambda out
 * of range, MMR without a vector, group_by empty, a NaN in the vector); VS_EDIM; VS_ETOOLARGE;
 * VS_ENOTFOUND; VS_ENOMEM.  Thread-safe. */
int vs_hybrid_search(vs_db *db, const char *name, const vs_hybrid_params *p, vs_hit **hits,
                     size_t *n, vs_hybrid_info *info, vs_error *err);

/* Recommend by example (Qdrant's average_vector strategy): the query is
 * mean(positive) + (mean(positive) - mean(negative)), or mean(positive)
 * without negatives, where examples are points (by id: their stored
 * vectors) or raw vectors; then a vector search with the filter, from
 * which the examples given by id and the excluded ids are left out.  At
 * least one positive example.  Returns as vs_search, and VS_ENOTFOUND when
 * an example id has no point. */
typedef struct vs_recommend_params {
  const vs_id *positive; /* example points */
  size_t n_positive;
  const vs_id *negative;
  size_t n_negative;
  const float *positive_vectors; /* n_positive_vectors x dim floats */
  size_t n_positive_vectors;
  const float *negative_vectors;
  size_t n_negative_vectors;
  size_t dim; /* of the example vectors, when there are any */
  size_t k;
  int ef, nprobe;
  const vs_filter *filter;
  const vs_id *exclude;
  size_t n_exclude;
  unsigned with;
  const char *const *payload_fields;
  size_t n_payload_fields;
} vs_recommend_params;

int vs_recommend(vs_db *db, const char *name, const vs_recommend_params *p, vs_hit **hits,
                 size_t *n, vs_search_info *info, vs_error *err);

/* Many vector searches in one call: p[0..nq) share k, ef, nprobe, exact,
 * with, filter and payload_fields (VS_EINVAL otherwise) and each has its own
 * vector and exclusions.  They run in parallel over the cores (OpenMP).
 * Results are those of nq vs_search calls: query i's hits
 * are (*hits)[off[i] .. off[i + 1]), in one allocation released with
 * vs_free(); `off` is caller-provided with nq + 1 entries.  Returns as
 * vs_search (the first failing query's status).  Thread-safe. */
#define VS_BATCH_MAX 10000
int vs_search_batch(vs_db *db, const char *name, const vs_search_params *p, size_t nq,
                    vs_hit **hits, size_t *off, vs_error *err);

/* ---------------------------------------------------------------------------
 * Change log
 *
 * Every write appends entries to the collection's change log, in commit
 * order: derived indexes (the vector index, the payload index) remember the
 * last sequence number they cover and replay what came after it.  Each point version has an
 * internal id (`pid`) that is never reused: replacing a point gives the new
 * version a new pid and deletes the old one.
 * ------------------------------------------------------------------------- */

typedef enum vs_change_op {
  VS_CHANGE_UPSERT = 1, /* pid now holds a live point */
  VS_CHANGE_DELETE = 2, /* pid was deleted (or replaced by a newer pid) */
} vs_change_op;

typedef struct vs_change {
  uint64_t seq; /* 1, 2, 3, ... in commit order */
  vs_change_op op;
  uint64_t pid;
} vs_change;

/* Read up to `cap` changes with seq > `after` into caller-owned `out`;
 * *n receives how many were read (0 at the end of the log).  Returns VS_OK;
 * VS_EINVAL; VS_ENOTFOUND; VS_ECORRUPT.  Thread-safe. */
int vs_changes(vs_db *db, const char *name, uint64_t after, vs_change *out, size_t cap, size_t *n,
               vs_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VSEARCH_H */
