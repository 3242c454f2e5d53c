/*
 * tindex.c: the text index: analysing text fields on the write path,
 * writing and merging runs, and BM25 search (vs_text_search, vs_text_count).
 *
 * LAYOUT.  Two tables per collection with text fields:
 *   c<cid>.txt  the runs of posting lists (text/postings.h).
 *   c<cid>.tdf  statistics, native byte order:
 *     key 0xfe         the run list: u32 version (1), u32 run count, u64
 *                      the next run id, then per run, in ascending pid
 *                      order: u64 id, u64 min pid, u64 max pid,
 *                      u64 docs (points with a term in it), u64 deleted
 *                      (of those, how many are no longer live).
 *     key 0xfd         u64: the fingerprint of the analyzer that wrote the
 *                      index (see "the analyzer's fingerprint" below).
 *     key 0xff, u8 f   field f: u64 live points with a term in f, u64 the
 *                      sum of their term counts (for avgdl).
 *     key u8 f, term   u64: how many points deleted since their run was
 *                      written hold the term in field f (absent: 0).
 * So for term t in field f, df = (sum over runs of the run's df) - that
 * count: exact at every snapshot, though runs are immutable.
 *
 * WRITES.  Every write transaction on the collection adds one run holding
 * the postings of its new points (keys appended at the end of the table),
 * and records its deletions in the statistics above.  Runs cover disjoint,
 * ascending pid ranges (pids only grow).  After the write, the newest runs
 * are merged when MERGE_FANOUT of them share a size tier (sizes in powers
 * of MERGE_FANOUT), and a run of a larger tier than the run before it
 * absorbs that one (tiers never grow from old to new), so a collection of
 * n points has O(log n) runs and each
 * posting is rewritten O(log n) times; a merge drops deleted points and a
 * run whose points are mostly deleted is rewritten alone.  Merges run
 * inside the write transaction that triggers them.
 *
 * SEARCH reads one snapshot: the statistics, then the runs in pid order,
 * each searched by block-max MaxScore (text/bm25.c) into one shared top-k.
 * A run holding deleted points has its winners checked against the points
 * table; a filter is answered by the payload index as for vector search.
 */
#include "engine/tindex.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <roaring/roaring.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "engine/filter.h"
#include "engine/pindex.h"
#include "engine/query.h"
#include "text/analyzer.h"
#include "text/bm25.h"
#include "text/postings.h"
#include "text/stopwords.h"

#define MERGE_FANOUT 4
#define RUNS_MAX 4096
#define QUERY_CURSORS_MAX 1024 /* (term, field) pairs of one query */
#define SCAN_CHUNK 1024

/* ---- analyzers ------------------------------------------------------------------------- */

struct vs__analyzer_pool {
  char lang[VS_LANGUAGE_MAX + 1];
  vs__analyzer *a;
  struct vs__analyzer_pool *next;
};

static vs__analyzer *analyzer_get(vs_db *db, const char *lang) {
  struct vs__analyzer_pool **pp, *e;
  vs__analyzer *a = NULL;

  pthread_mutex_lock(&db->analyzers_lock);
  for (pp = &db->analyzers; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->lang, lang) == 0) {
      e = *pp;
      *pp = e->next;
      a = e->a;
      vs__free(e);
      break;
    }
  pthread_mutex_unlock(&db->analyzers_lock);
  return a ? a : vs__analyzer_new(lang);
}

static void analyzer_put(vs_db *db, const char *lang, vs__analyzer *a) {
  struct vs__analyzer_pool *e;

  if (a == NULL)
    return;
  if ((e = vs__malloc(sizeof(*e))) == NULL) {
    vs__analyzer_free(a);
    return;
  }
  strcpy(e->lang, lang);
  e->a = a;
  pthread_mutex_lock(&db->analyzers_lock);
  e->next = db->analyzers;
  db->analyzers = e;
  pthread_mutex_unlock(&db->analyzers_lock);
}

void vs__tindex_close(vs_db *db) {
  struct vs__analyzer_pool *e, *next;

  for (e = db->analyzers; e; e = next) {
    next = e->next;
    vs__analyzer_free(e->a);
    vs__free(e);
  }
  db->analyzers = NULL;
}

/* ---- the analyzer's fingerprint ---------------------------------------------------------
 *
 * Deletes re-analyze the stored text to know which terms lose a point, so
 * the analyzer must give the same terms it gave when the text was indexed.
 * A new libstemmer or utf8proc (an OS upgrade), or a change to the
 * tokenizer or a stopword list, could break that.  The index records a
 * fingerprint of its analyzer -- utf8proc's Unicode version, the stopword
 * list, and the terms of a probe text that exercises every step -- and
 * every write and search checks it: a changed analyzer is refused with
 * VS_EVERSION until vs_collection_rebuild reindexes the collection. */

static const char PROBE[] =
    "The quick brown fox's 3 running jumps, over 12.5 LAZY dogs; Café naïve façade Straße "
    "\xef\xac\x81sh \xef\xbc\xa6ull caf\xc3\xa9's l'homme don't e-mail "
    "\xe6\x9d\xb1\xe4\xba\xac\xe9\x83\xbd \xec\x84\x9c\xec\x9a\xb8 "
    "\xce\xb5\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac "
    "\xd1\x80\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb5 relational generalizations "
    "nationalisation connaissances bücher";

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull; /* a separator */
}

static int fp_term(void *ctx, const char *term, size_t len) {
  uint64_t *h = ctx;
  *h = fnv(*h, term, len);
  return 0;
}

/* Fingerprints are a function of the language and the libraries: computed
 * once per language in this process. */
static struct {
  char lang[VS_LANGUAGE_MAX + 1];
  uint64_t fp;
} fp_cache[64];
static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t analyzer_fp(vs__analyzer *an, const char *lang) {
  const char *const *stop;
  const char *uv = utf8proc_unicode_version();
  uint64_t h = 1469598103934665603ull;
  size_t n, i;

  pthread_mutex_lock(&fp_lock);
  for (i = 0; i < 64 && fp_cache[i].lang[0]; i++)
    if (strcmp(fp_cache[i].lang, lang) == 0) {
      h = fp_cache[i].fp;
      pthread_mutex_unlock(&fp_lock);
      return h;
    }
  pthread_mutex_unlock(&fp_lock);
  h = fnv(h, lang, strlen(lang));
  h = fnv(h, uv, strlen(uv));
  stop = vs__stopwords(lang, &n);
  for (size_t j = 0; stop && j < n; j++)
    h = fnv(h, stop[j], strlen(stop[j]));
  vs__analyze(an, PROBE, sizeof(PROBE) - 1, fp_term, &h);
  pthread_mutex_lock(&fp_lock);
  if (i < 64 && fp_cache[i].lang[0] == '\0') {
    strcpy(fp_cache[i].lang, lang);
    fp_cache[i].fp = h;
  }
  pthread_mutex_unlock(&fp_lock);
  return h;
}

static const uint8_t FP_KEY[1] = {0xfd};

/* Compare the analyzer with the one the index was written with: VS_OK
 * (*absent when the index has none recorded yet: nothing indexed), or
 * VS_EVERSION. */
static int fp_check(MDB_txn *txn, const vs__coll *c, vs__analyzer *an, uint64_t *fp, int *absent,
                    vs_error *err) {
  MDB_val k = {1, (void *)FP_KEY}, v;
  int mrc = mdb_get(txn, c->dbi[VS__DBI_TDF], &k, &v);
  uint64_t stored;

  *fp = analyzer_fp(an, c->language);
  *absent = mrc == MDB_NOTFOUND;
  if (*absent)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "read the text analyzer's fingerprint");
  if (v.mv_size != 8)
    return vs__err(err, VS_ECORRUPT, "the text analyzer's fingerprint is malformed");
  memcpy(&stored, v.mv_data, 8);
  if (stored != *fp)
    return vs__err(err, VS_EVERSION,
                   "text analyzer of '%s' changed (libstemmer, utf8proc or vsearch "
                   "upgraded): rebuild it (vsearch build)",
                   c->name);
  return VS_OK;
}

static int fp_put(MDB_txn *txn, const vs__coll *c, uint64_t fp, vs_error *err) {
  MDB_val k = {1, (void *)FP_KEY}, v = {8, &fp};
  int mrc = mdb_put(txn, c->dbi[VS__DBI_TDF], &k, &v, 0);
  return mrc ? vs__mdb_err(err, mrc, "write the text analyzer's fingerprint") : VS_OK;
}

/* ---- statistics records ---------------------------------------------------------------- */

typedef struct trun {
  uint64_t id;
  uint64_t min_pid, max_pid, docs, deleted;
} trun;

typedef struct tman {
  uint64_t next_run;
  uint32_t n;
  trun *runs;
} tman;

typedef struct fstat {
  uint64_t docs, total;
} fstat;

static const uint8_t MAN_KEY[1] = {0xfe};

static int man_get(MDB_txn *txn, MDB_dbi dbi, tman *m, vs_error *err) {
  MDB_val k = {1, (void *)MAN_KEY}, v;
  const uint8_t *p;
  uint32_t ver;
  int mrc = mdb_get(txn, dbi, &k, &v);

  m->next_run = 1;
  m->n = 0;
  m->runs = NULL;
  if (mrc == MDB_NOTFOUND)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "read the text index's run list");
  p = v.mv_data;
  if (v.mv_size < 16)
    goto corrupt;
  memcpy(&ver, p, 4);
  memcpy(&m->n, p + 4, 4);
  memcpy(&m->next_run, p + 8, 8);
  if (ver != 1 || m->n > RUNS_MAX || v.mv_size != 16 + (size_t)m->n * sizeof(trun))
    goto corrupt;
  if (m->n) {
    if ((m->runs = vs__malloc(m->n * sizeof(trun))) == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    memcpy(m->runs, p + 16, m->n * sizeof(trun));
  }
  for (uint32_t i = 0; i < m->n; i++)
    if (m->runs[i].id >= m->next_run || m->runs[i].min_pid > m->runs[i].max_pid ||
        m->runs[i].deleted > m->runs[i].docs || (i && m->runs[i].min_pid <= m->runs[i - 1].max_pid))
      goto corrupt;
  return VS_OK;
corrupt:
  vs__free(m->runs);
  m->runs = NULL;
  return vs__err(err, VS_ECORRUPT, "the text index's run list is malformed");
}

static int man_put(MDB_txn *txn, MDB_dbi dbi, const tman *m, vs_error *err) {
  MDB_val k = {1, (void *)MAN_KEY}, v = {16 + (size_t)m->n * sizeof(trun), NULL};
  uint32_t head[2] = {1, m->n};
  int mrc;

  if ((mrc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE)))
    return vs__mdb_err(err, mrc, "write the text index's run list");
  memcpy(v.mv_data, head, 8);
  memcpy((uint8_t *)v.mv_data + 8, &m->next_run, 8);
  if (m->n)
    memcpy((uint8_t *)v.mv_data + 16, m->runs, m->n * sizeof(trun));
  return VS_OK;
}

static int fstat_get(MDB_txn *txn, MDB_dbi dbi, unsigned f, fstat *out, vs_error *err) {
  uint8_t key[2] = {0xff, (uint8_t)f};
  MDB_val k = {2, key}, v;
  int mrc = mdb_get(txn, dbi, &k, &v);

  memset(out, 0, sizeof(*out));
  if (mrc == MDB_NOTFOUND)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "read text field statistics");
  if (v.mv_size != sizeof(*out))
    return vs__err(err, VS_ECORRUPT, "text field statistics are malformed");
  memcpy(out, v.mv_data, sizeof(*out));
  return VS_OK;
}

static int fstat_put(MDB_txn *txn, MDB_dbi dbi, unsigned f, const fstat *fs, vs_error *err) {
  uint8_t key[2] = {0xff, (uint8_t)f};
  MDB_val k = {2, key}, v = {sizeof(*fs), (void *)fs};
  int mrc = mdb_put(txn, dbi, &k, &v, 0);

  return mrc ? vs__mdb_err(err, mrc, "write text field statistics") : VS_OK;
}

/* The deleted-document count of (f, term); *out = 0 when absent. */
static int ddf_get(MDB_txn *txn, MDB_dbi dbi, unsigned f, const char *term, size_t len,
                   uint64_t *out, vs_error *err) {
  uint8_t key[1 + VS__TERM_MAX];
  MDB_val k = {1 + len, key}, v;
  int mrc;

  key[0] = (uint8_t)f;
  memcpy(key + 1, term, len);
  *out = 0;
  mrc = mdb_get(txn, dbi, &k, &v);
  if (mrc == MDB_NOTFOUND)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "read a term's statistics");
  if (v.mv_size != 8)
    return vs__err(err, VS_ECORRUPT, "a term's statistics are malformed");
  memcpy(out, v.mv_data, 8);
  return VS_OK;
}

static int ddf_add(MDB_txn *txn, MDB_dbi dbi, unsigned f, const char *term, size_t len,
                   int64_t delta, vs_error *err) {
  uint8_t key[1 + VS__TERM_MAX];
  MDB_val k = {1 + len, key}, v;
  uint64_t n;
  int rc, mrc;

  if ((rc = ddf_get(txn, dbi, f, term, len, &n, err)))
    return rc;
  if (delta < 0 && n < (uint64_t)-delta)
    return vs__err(err, VS_ECORRUPT, "a term's deleted count went negative");
  n += (uint64_t)delta;
  key[0] = (uint8_t)f;
  memcpy(key + 1, term, len);
  if (n == 0) {
    mrc = mdb_del(txn, dbi, &k, NULL);
    mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
  } else {
    v.mv_size = 8;
    v.mv_data = &n;
    mrc = mdb_put(txn, dbi, &k, &v, 0);
  }
  return mrc ? vs__mdb_err(err, mrc, "write a term's statistics") : VS_OK;
}

/* ---- the accumulator: terms of many documents, grouped by (field, term) -------------- */

typedef struct tentry {
  uint32_t off; /* term bytes in arena */
  uint16_t len;
  uint8_t field;
  uint32_t live;     /* live tuples */
  uint64_t last_pid; /* the document whose tuple is last_tuple */
  uint32_t last_tuple;
} tentry;

typedef struct ttuple {
  uint32_t entry;
  uint32_t tf, dl; /* tf 0: removed */
  uint64_t pid;
} ttuple;

typedef struct tdoc {
  uint64_t pid;
  uint32_t first, end; /* its tuples */
} tdoc;

typedef struct tacc {
  char *arena;
  size_t arena_len, arena_cap;
  tentry *e;
  size_t ne, ecap;
  uint32_t *slots; /* entry index + 1, 0 = empty; power of two */
  size_t nslots;
  ttuple *t;
  size_t nt, tcap;
  tdoc *d;
  size_t nd, dcap;
  /* the document being added */
  uint64_t pid;
  int field;
  uint32_t dl[VS_TEXT_FIELDS_MAX];
  int enomem;
} tacc;

static uint64_t term_hash(unsigned field, const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull ^ field;

  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  size_t ncap = *cap ? *cap : 64;
  void *np;

  if (need <= *cap)
    return 0;
  while (ncap < need)
    ncap *= 2;
  if ((np = vs__realloc(*p, ncap * size)) == NULL)
    return -1;
  *p = np;
  *cap = ncap;
  return 0;
}

static void acc_free(tacc *a) {
  vs__free(a->arena);
  vs__free(a->e);
  vs__free(a->slots);
  vs__free(a->t);
  vs__free(a->d);
  memset(a, 0, sizeof(*a));
}

static void acc_reset(tacc *a) {
  if (a->slots && a->ne * 8 < a->nslots) {
    /* Few entries in a big table (one deleted point after a long one):
     * clear just their slots, newest first, so that each one's probe
     * chain -- made of slots taken before it -- is still intact. */
    for (size_t i = a->ne; i-- > 0;) {
      size_t j = term_hash(a->e[i].field, a->arena + a->e[i].off, a->e[i].len) & (a->nslots - 1);
      while (a->slots[j] != i + 1)
        j = (j + 1) & (a->nslots - 1);
      a->slots[j] = 0;
    }
  } else if (a->slots) {
    memset(a->slots, 0, a->nslots * sizeof(*a->slots));
  }
  a->arena_len = a->ne = a->nt = a->nd = 0;
}

static int rehash(tacc *a, size_t nslots) {
  uint32_t *s = vs__calloc(nslots, sizeof(*s));

  if (s == NULL)
    return -1;
  for (size_t i = 0; i < a->ne; i++) {
    size_t j = term_hash(a->e[i].field, a->arena + a->e[i].off, a->e[i].len) & (nslots - 1);
    while (s[j])
      j = (j + 1) & (nslots - 1);
    s[j] = (uint32_t)i + 1;
  }
  vs__free(a->slots);
  a->slots = s;
  a->nslots = nslots;
  return 0;
}

/* The entry of (field, term), made if new; -1 when out of memory. */
static long acc_entry(tacc *a, unsigned field, const char *term, size_t len) {
  size_t j;
  tentry *e;

  if ((a->ne + 1) * 2 > a->nslots && rehash(a, a->nslots ? a->nslots * 2 : 1024))
    return -1;
  for (j = term_hash(field, term, len) & (a->nslots - 1); a->slots[j];
       j = (j + 1) & (a->nslots - 1)) {
    e = &a->e[a->slots[j] - 1];
    if (e->field == field && e->len == len && memcmp(a->arena + e->off, term, len) == 0)
      return (long)(a->slots[j] - 1);
  }
  if (grow((void **)&a->e, &a->ecap, a->ne + 1, sizeof(*a->e)) ||
      grow((void **)&a->arena, &a->arena_cap, a->arena_len + len, 1))
    return -1;
  e = &a->e[a->ne];
  e->off = (uint32_t)a->arena_len;
  e->len = (uint16_t)len;
  e->field = (uint8_t)field;
  e->live = 0;
  e->last_pid = UINT64_MAX;
  memcpy(a->arena + a->arena_len, term, len);
  a->arena_len += len;
  a->slots[j] = (uint32_t)++a->ne;
  return (long)a->ne - 1;
}

/* vs__term_fn: one term of the current document's current field. */
static int acc_term(void *ctx, const char *term, size_t len) {
  tacc *a = ctx;
  long ei;
  tentry *e;

  if (len == 0 || len > VS__TERM_MAX) /* the analyzer never emits these; the format forbids them */
    return 0;
  if ((ei = acc_entry(a, (unsigned)a->field, term, len)) < 0)
    return VS__ANALYZE_ENOMEM;
  e = &a->e[ei];
  a->dl[a->field]++;
  if (e->last_pid == a->pid) {
    a->t[e->last_tuple].tf++;
    return 0;
  }
  if (grow((void **)&a->t, &a->tcap, a->nt + 1, sizeof(*a->t)))
    return VS__ANALYZE_ENOMEM;
  a->t[a->nt] = (ttuple){(uint32_t)ei, 1, 0, a->pid};
  e->last_pid = a->pid;
  e->last_tuple = (uint32_t)a->nt++;
  e->live++;
  return 0;
}

typedef struct walk_ctx {
  const vs__coll *c;
  vs__analyzer *an;
  tacc *a;
  int rc; /* an analyzer status */
} walk_ctx;

static int walk_key(void *ctx, const char *key, size_t len) {
  walk_ctx *w = ctx;

  for (uint32_t f = 0; f < w->c->n_text; f++)
    if (strlen(w->c->text_fields[f]) == len && memcmp(w->c->text_fields[f], key, len) == 0)
      return (int)f;
  return -1;
}

static int walk_val(void *ctx, int slot, const vs__scalar *v) {
  walk_ctx *w = ctx;
  int rc;

  if (v->kind != VS__SCALAR_STR)
    return VS_OK; /* numbers and booleans in a text field are not text */
  w->a->field = slot;
  rc = vs__analyze(w->an, v->u.s, v->len, acc_term, w->a);
  if (rc) {
    w->rc = rc;
    return VS_EINVAL;
  }
  return VS_OK;
}

/* Analyze the text fields of one payload into a as document pid; on
 * success its tuples carry their field's length and *fields has a bit
 * per field holding terms. */
static int acc_doc(tacc *a, const vs__coll *c, vs__analyzer *an, uint64_t pid,
                   const uint8_t *payload, size_t len, vs_error *err) {
  walk_ctx w = {c, an, a, 0};
  size_t first = a->nt;

  a->pid = pid;
  memset(a->dl, 0, sizeof(a->dl));
  if (len && vs__payload_walk(payload, len, walk_key, walk_val, &w) && w.rc == 0)
    return vs__err(err, VS_ECORRUPT, "point %llu has a malformed payload", (unsigned long long)pid);
  if (w.rc == VS__ANALYZE_ENOMEM)
    return vs__err(err, VS_ENOMEM, "out of memory");
  if (w.rc == VS__ANALYZE_EUTF8)
    return vs__err(err, VS_EINVAL, "a text field of point %llu is not valid UTF-8",
                   (unsigned long long)pid);
  if (w.rc)
    return vs__err(err, VS_EINVAL, "text analysis failed (%d)", w.rc);
  for (size_t i = first; i < a->nt; i++)
    a->t[i].dl = a->dl[a->e[a->t[i].entry].field];
  if (a->nt > first) {
    if (grow((void **)&a->d, &a->dcap, a->nd + 1, sizeof(*a->d)))
      return vs__err(err, VS_ENOMEM, "out of memory");
    a->d[a->nd++] = (tdoc){pid, (uint32_t)first, (uint32_t)a->nt};
  }
  return VS_OK;
}

/* ---- the write path ------------------------------------------------------------------ */

struct vs__tbatch {
  vs_db *db;
  MDB_txn *txn;
  const vs__coll *c;
  MDB_dbi txt, tdf;
  vs__analyzer *an;
  tman man;
  fstat fs[VS_TEXT_FIELDS_MAX];
  int dirty;     /* statistics or runs changed */
  uint64_t fp;   /* the analyzer's fingerprint */
  int fp_absent; /* the index has none recorded yet */
  int stale;     /* it was written by another analyzer (batch_begin's reindex) */
  tacc add;      /* the new points */
  tacc del;      /* scratch for one removed point */
  vs__posting *buf;
  size_t buf_cap;
};

static int batch_begin(vs_db *db, MDB_txn *txn, const vs__coll *c, int reindex, vs__tbatch **out,
                       vs_error *err) {
  vs__tbatch *b;
  int rc;

  *out = NULL;
  if (c->n_text == 0)
    return VS_OK;
  if ((b = vs__calloc(1, sizeof(*b))) == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  b->db = db;
  b->txn = txn;
  b->c = c;
  b->txt = c->dbi[VS__DBI_TXT];
  b->tdf = c->dbi[VS__DBI_TDF];
  if ((b->an = analyzer_get(db, c->language)) == NULL) {
    vs__free(b);
    return vs__err(err, VS_ENOMEM, "cannot make an analyzer for '%s'", c->language);
  }
  rc = fp_check(txn, c, b->an, &b->fp, &b->fp_absent, err);
  if (rc == VS_EVERSION && reindex) { /* the caller reindexes from the points */
    vs_error_clear(err);
    rc = VS_OK;
    b->fp_absent = 1;
    b->stale = 1;
  }
  if (rc == VS_OK)
    rc = man_get(txn, b->tdf, &b->man, err);
  for (uint32_t f = 0; rc == VS_OK && f < c->n_text; f++)
    rc = fstat_get(txn, b->tdf, f, &b->fs[f], err);
  if (rc) {
    vs__tbatch_free(b);
    return rc;
  }
  *out = b;
  return VS_OK;
}

int vs__tbatch_begin(vs_db *db, MDB_txn *txn, const vs__coll *c, vs__tbatch **out, vs_error *err) {
  return batch_begin(db, txn, c, 0, out, err);
}

void vs__tbatch_free(vs__tbatch *b) {
  if (b == NULL)
    return;
  analyzer_put(b->db, b->c->language, b->an);
  vs__free(b->man.runs);
  acc_free(&b->add);
  acc_free(&b->del);
  free(b->buf); /* grown by vs__tp_iter_take with realloc */
  vs__free(b);
}

int vs__tbatch_add(vs__tbatch *b, uint64_t pid, const uint8_t *payload, size_t len, vs_error *err) {
  size_t nd = b->add.nd;
  int rc = acc_doc(&b->add, b->c, b->an, pid, payload, len, err);

  if (rc || b->add.nd == nd)
    return rc;
  for (uint32_t f = 0; f < b->c->n_text; f++)
    if (b->add.dl[f]) {
      b->fs[f].docs++;
      b->fs[f].total += b->add.dl[f];
    }
  b->dirty = 1;
  return VS_OK;
}

static trun *run_of(tman *m, uint64_t pid) {
  uint32_t lo = 0, hi = m->n;

  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (m->runs[mid].max_pid < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < m->n && m->runs[lo].min_pid <= pid ? &m->runs[lo] : NULL;
}

int vs__tbatch_remove(vs__tbatch *b, uint64_t pid, const uint8_t *payload, size_t len,
                      vs_error *err) {
  tacc *a = &b->add;
  trun *r;
  int rc;

  /* Written earlier in this transaction: take it out of the new run. */
  if (a->nd && pid >= a->d[0].pid) {
    size_t lo = 0, hi = a->nd;
    uint32_t mask = 0;

    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (a->d[mid].pid < pid)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == a->nd || a->d[lo].pid != pid)
      return VS_OK; /* it held no terms */
    for (uint32_t i = a->d[lo].first; i < a->d[lo].end; i++) {
      ttuple *t = &a->t[i];
      unsigned f = a->e[t->entry].field;

      if (t->tf == 0)
        continue;
      if (!(mask & 1u << f)) {
        mask |= 1u << f;
        b->fs[f].docs--;
        b->fs[f].total -= t->dl;
      }
      t->tf = 0;
      a->e[t->entry].live--;
    }
    return VS_OK;
  }

  /* In a run: its postings stay until a merge, the statistics change now. */
  acc_reset(&b->del);
  if ((rc = acc_doc(&b->del, b->c, b->an, pid, payload, len, err)))
    return rc;
  if (b->del.nt == 0)
    return VS_OK; /* it held no terms */
  if ((r = run_of(&b->man, pid)) == NULL)
    return vs__err(err, VS_ECORRUPT, "point %llu has text that no run of the text index holds",
                   (unsigned long long)pid);
  for (size_t i = 0; i < b->del.nt; i++) {
    const tentry *e = &b->del.e[b->del.t[i].entry];

    rc = ddf_add(b->txn, b->tdf, e->field, b->del.arena + e->off, e->len, 1, err);
    if (rc)
      return rc;
  }
  for (uint32_t f = 0; f < b->c->n_text; f++)
    if (b->del.dl[f]) {
      if (b->fs[f].docs == 0 || b->fs[f].total < b->del.dl[f])
        return vs__err(err, VS_ECORRUPT, "text field statistics went negative");
      b->fs[f].docs--;
      b->fs[f].total -= b->del.dl[f];
    }
  r->deleted++;
  b->dirty = 1;
  return VS_OK;
}

/* Entries in key order: (field, term bytes). */
typedef struct sorted_entry {
  const char *term;
  uint32_t len, idx;
  uint8_t field;
} sorted_entry;

static int by_key(const void *x, const void *y) {
  const sorted_entry *a = x, *b = y;
  size_t n = a->len < b->len ? a->len : b->len;
  int c;

  if (a->field != b->field)
    return a->field < b->field ? -1 : 1;
  c = memcmp(a->term, b->term, n);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int tp_err(vs_error *err, int code, const char *what) {
  if (code == VS__TP_CORRUPT)
    return vs__err(err, VS_ECORRUPT, "%s: the text index is malformed", what);
  if (code == ENOMEM)
    return vs__err(err, VS_ENOMEM, "out of memory");
  return vs__mdb_err(err, code, what);
}

/* Write the accumulated new points as run `id`; returns the run. */
static int write_run(vs__tbatch *b, trun *out, vs_error *err) {
  tacc *a = &b->add;
  sorted_entry *se = NULL;
  uint32_t *start = NULL;
  vs__posting *p = NULL;
  vs__tp_writer w;
  size_t ns = 0, live = 0;
  int rc = VS_OK, mrc;

  for (size_t i = 0; i < a->nt; i++)
    live += a->t[i].tf != 0;
  memset(out, 0, sizeof(*out));
  if (live == 0)
    return VS_OK;
  se = vs__malloc(a->ne * sizeof(*se));
  start = vs__calloc(a->ne + 1, sizeof(*start));
  p = vs__malloc(live * sizeof(*p));
  if (se == NULL || start == NULL || p == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < a->ne; i++)
    if (a->e[i].live)
      se[ns++] = (sorted_entry){a->arena + a->e[i].off, a->e[i].len, (uint32_t)i, a->e[i].field};
  qsort(se, ns, sizeof(*se), by_key);
  /* Counting sort of the tuples by entry, stable: pids stay ascending.
   * start[idx] is where entry idx's postings begin, then (after filling)
   * where they end. */
  for (size_t i = 0, at = 0; i < ns; i++) {
    uint32_t n = a->e[se[i].idx].live;
    start[se[i].idx] = (uint32_t)at; /* where entry idx's postings begin */
    at += n;
  }
  for (size_t i = 0; i < a->nt; i++) {
    const ttuple *t = &a->t[i];
    if (t->tf)
      p[start[t->entry]++] = (vs__posting){t->pid, t->tf, t->dl};
  }
  out->id = b->man.next_run++;
  vs__tp_writer_begin(&w, b->txn, b->txt, out->id);
  for (size_t i = 0; i < ns; i++) {
    uint32_t n = a->e[se[i].idx].live, at = start[se[i].idx] - n;

    if ((mrc = vs__tp_writer_term(&w, se[i].field, se[i].term, se[i].len, p + at, n))) {
      rc = tp_err(err, mrc, "write postings");
      goto out;
    }
  }
  out->min_pid = UINT64_MAX;
  for (size_t i = 0; i < a->nd; i++) {
    int any = 0;
    for (uint32_t j = a->d[i].first; j < a->d[i].end && !any; j++)
      any = a->t[j].tf != 0;
    if (!any)
      continue;
    out->docs++;
    if (a->d[i].pid < out->min_pid)
      out->min_pid = a->d[i].pid;
    out->max_pid = a->d[i].pid;
  }
out:
  vs__free(se);
  vs__free(start);
  vs__free(p);
  return rc;
}

/* The live pids among [lo, hi], from the points table; NULL when some pid
 * there does not fit 32 bits (then merges ask the table per posting). */
static int live_set(vs__tbatch *b, uint64_t lo, uint64_t hi, roaring_bitmap_t **out,
                    vs_error *err) {
  MDB_cursor *cur;
  MDB_val k = {8, &lo}, v;
  int mrc;

  *out = NULL;
  if (hi > UINT32_MAX)
    return VS_OK;
  if ((*out = roaring_bitmap_create()) == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  if ((mrc = mdb_cursor_open(b->txn, b->c->dbi[VS__DBI_PTS], &cur)))
    return vs__mdb_err(err, mrc, "open a cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t pid;
    memcpy(&pid, k.mv_data, 8);
    if (pid > hi)
      break;
    roaring_bitmap_add(*out, (uint32_t)pid);
  }
  mdb_cursor_close(cur);
  return mrc == 0 || mrc == MDB_NOTFOUND ? VS_OK : vs__mdb_err(err, mrc, "read the points");
}

static int is_live(vs__tbatch *b, const roaring_bitmap_t *live, uint64_t pid) {
  MDB_val k = {8, &pid}, v;

  if (live)
    return roaring_bitmap_contains(live, (uint32_t)pid);
  return mdb_get(b->txn, b->c->dbi[VS__DBI_PTS], &k, &v) == 0;
}

static int iter_cmp(const vs__tp_iter *x, const vs__tp_iter *y) {
  size_t n = x->len < y->len ? x->len : y->len;
  int c;

  if (x->field != y->field)
    return x->field < y->field ? -1 : 1;
  c = memcmp(x->term, y->term, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Merge runs [i, j] of the run list into one new run, without the deleted
 * points, and give the deleted counts they carried back. */
static int merge_runs(vs__tbatch *b, uint32_t i, uint32_t j, vs_error *err) {
  uint32_t m = j - i + 1;
  vs__tp_iter *it;
  vs__tp_writer w;
  roaring_bitmap_t *live = NULL;
  uint64_t deleted = 0, docs = 0;
  trun merged;
  int rc = VS_OK, mrc = 0;

  if ((it = vs__calloc(m, sizeof(*it))) == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  for (uint32_t r = i; r <= j; r++) {
    deleted += b->man.runs[r].deleted;
    docs += b->man.runs[r].docs - b->man.runs[r].deleted;
  }
  if (deleted && (rc = live_set(b, b->man.runs[i].min_pid, b->man.runs[j].max_pid, &live, err)))
    goto out;
  for (uint32_t r = 0; r < m && mrc == 0; r++)
    mrc = vs__tp_iter_open(&it[r], b->txn, b->txt, b->man.runs[i + r].id);
  merged = (trun){b->man.next_run++, b->man.runs[i].min_pid, b->man.runs[j].max_pid, docs, 0};
  vs__tp_writer_begin(&w, b->txn, b->txt, merged.id);
  while (mrc == 0 && rc == VS_OK) {
    vs__tp_iter *least = NULL;
    size_t n = 0, kept = 0;
    char term[VS__TERM_MAX];
    unsigned field;
    size_t len;

    for (uint32_t r = 0; r < m; r++)
      if (!it[r].done && (least == NULL || iter_cmp(&it[r], least) < 0))
        least = &it[r];
    if (least == NULL)
      break;
    field = least->field;
    len = least->len;
    memcpy(term, least->term, len);
    for (uint32_t r = 0; r < m && mrc == 0; r++) /* in run order: pids ascend */
      if (!it[r].done && it[r].field == field && it[r].len == len &&
          memcmp(it[r].term, term, len) == 0)
        mrc = vs__tp_iter_take(&it[r], &b->buf, &n, &b->buf_cap);
    if (mrc)
      break;
    if (deleted) {
      for (size_t x = 0; x < n; x++)
        if (is_live(b, live, b->buf[x].pid))
          b->buf[kept++] = b->buf[x];
      if (kept < n)
        rc = ddf_add(b->txn, b->tdf, field, term, len, -(int64_t)(n - kept), err);
    } else {
      kept = n;
    }
    if (rc == VS_OK && kept)
      mrc = vs__tp_writer_term(&w, field, term, len, b->buf, kept);
  }
  for (uint32_t r = 0; r < m; r++)
    vs__tp_iter_close(&it[r]);
  if (rc == VS_OK && mrc)
    rc = tp_err(err, mrc, "merge text runs");
  for (uint32_t r = i; rc == VS_OK && r <= j; r++)
    if ((mrc = vs__tp_run_drop(b->txn, b->txt, b->man.runs[r].id)))
      rc = vs__mdb_err(err, mrc, "drop a merged text run");
  if (rc == VS_OK) {
    b->man.runs[i] = merged;
    memmove(&b->man.runs[i + 1], &b->man.runs[j + 1], (b->man.n - j - 1) * sizeof(trun));
    b->man.n -= m - 1;
    if (merged.docs == 0) { /* everything in it was deleted */
      memmove(&b->man.runs[i], &b->man.runs[i + 1], (b->man.n - i - 1) * sizeof(trun));
      b->man.n--;
    }
  }
out:
  if (live)
    roaring_bitmap_free(live);
  vs__free(it);
  return rc;
}

static unsigned tier(const trun *r) {
  uint64_t n = r->docs - r->deleted;
  unsigned t = 0;

  while (n >= MERGE_FANOUT) {
    n /= MERGE_FANOUT;
    t++;
  }
  return t;
}

/* Merge while MERGE_FANOUT newest runs share a tier, then rewrite any run
 * that is mostly deleted points. */
static int merge_policy(vs__tbatch *b, vs_error *err) {
  int rc;

  for (;;) {
    uint32_t n = b->man.n, same = 1;

    if (n < 2)
      break;
    /* Keep tiers non-increasing from the oldest run to the newest: a new
     * run bigger than the one before it absorbs it (else batches of
     * alternating sizes would never meet MERGE_FANOUT of a tier).  With
     * RUNS_MAX runs, merge the two newest whatever their tiers. */
    if (tier(&b->man.runs[n - 2]) < tier(&b->man.runs[n - 1]) || n >= RUNS_MAX) {
      if ((rc = merge_runs(b, n - 2, n - 1, err)))
        return rc;
      continue;
    }
    while (same < n && tier(&b->man.runs[n - 1 - same]) == tier(&b->man.runs[n - 1]))
      same++;
    if (same < MERGE_FANOUT)
      break;
    if ((rc = merge_runs(b, n - same, n - 1, err)))
      return rc;
  }
  for (uint32_t r = 0; r < b->man.n; r++)
    if (b->man.runs[r].deleted * 2 > b->man.runs[r].docs) {
      uint32_t before = b->man.n;
      if ((rc = merge_runs(b, r, r, err)))
        return rc;
      if (b->man.n < before)
        r--; /* it was removed: look at the same index again */
    }
  return VS_OK;
}

int vs__tbatch_commit(vs__tbatch *b, vs_error *err) {
  trun r;
  int rc;

  if (!b->dirty)
    return VS_OK;
  if ((rc = write_run(b, &r, err)))
    return rc;
  if (r.docs) {
    trun *nr;
    if ((nr = vs__realloc(b->man.runs, (b->man.n + 1) * sizeof(trun))) == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    b->man.runs = nr;
    b->man.runs[b->man.n++] = r;
  }
  if ((rc = merge_policy(b, err)))
    return rc;
  for (uint32_t f = 0; f < b->c->n_text; f++)
    if ((rc = fstat_put(b->txn, b->tdf, f, &b->fs[f], err)))
      return rc;
  if (b->fp_absent && (rc = fp_put(b->txn, b->c, b->fp, err)))
    return rc;
  return man_put(b->txn, b->tdf, &b->man, err);
}

/* ---- compaction (vs_collection_rebuild) ------------------------------------------------- */

/* Write the points accumulated so far as a run of their own. */
static int flush_run(vs__tbatch *b, vs_error *err) {
  trun r, *nr;
  int rc = write_run(b, &r, err);

  if (rc == VS_OK && r.docs) {
    if ((nr = vs__realloc(b->man.runs, (b->man.n + 1) * sizeof(trun))) == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    b->man.runs = nr;
    b->man.runs[b->man.n++] = r;
  }
  acc_reset(&b->add);
  return rc;
}

/* Index every live point again, with this analyzer, into one run. */
static int reindex(vs__tbatch *b, vs_error *err) {
  MDB_cursor *cur;
  MDB_val k, v;
  size_t pending = 0;
  int mrc, rc = VS_OK;

  if ((mrc = mdb_drop(b->txn, b->txt, 0)) || (mrc = mdb_drop(b->txn, b->tdf, 0)))
    return vs__mdb_err(err, mrc, "empty the text index");
  b->man.n = 0;
  memset(b->fs, 0, sizeof(b->fs));
  if ((mrc = mdb_cursor_open(b->txn, b->c->dbi[VS__DBI_PTS], &cur)))
    return vs__mdb_err(err, mrc, "open a cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == VS_OK;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs__prec pr;
    uint64_t pid;

    memcpy(&pid, k.mv_data, 8);
    if (vs__point_parse(&v, &pr)) {
      rc = vs__err(err, VS_ECORRUPT, "point %llu is malformed", (unsigned long long)pid);
      break;
    }
    rc = vs__tbatch_add(b, pid, pr.payload, pr.payload_len, err);
    if (rc == VS_OK && ++pending == 20000) {
      rc = flush_run(b, err);
      pending = 0;
    }
  }
  mdb_cursor_close(cur);
  if (rc == VS_OK && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the points");
  if (rc == VS_OK)
    rc = flush_run(b, err);
  if (rc == VS_OK && b->man.n > 1)
    rc = merge_runs(b, 0, b->man.n - 1, err);
  for (uint32_t f = 0; rc == VS_OK && f < b->c->n_text; f++)
    rc = fstat_put(b->txn, b->tdf, f, &b->fs[f], err);
  return rc ? rc : fp_put(b->txn, b->c, b->fp, err);
}

typedef struct compact_ctx {
  const char *spec;
  uint32_t dim;
} compact_ctx;

static int compact_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  compact_ctx *cc = ctx;
  vs__tbatch *b;
  int rc;

  cc->dim = c->dim;
  if (c->dim == 0 && cc->spec && cc->spec[0])
    return vs__err(err, VS_EINVAL, "'%s' is a text-only collection: it takes no index spec",
                   c->name);
  if ((rc = batch_begin(db, txn, c, 1, &b, err)) || b == NULL)
    return rc;
  if (b->stale)
    rc = reindex(b, err);
  else if (b->man.n > 1 || (b->man.n == 1 && b->man.runs[0].deleted))
    rc = merge_runs(b, 0, b->man.n - 1, err);
  if (rc == VS_OK)
    rc = man_put(txn, b->tdf, &b->man, err);
  vs__tbatch_free(b);
  return rc;
}

int vs__tindex_compact(vs_db *db, const char *name, const char *spec, uint32_t *dim,
                       vs_error *err) {
  compact_ctx cc = {spec, 0};
  int rc = vs__coll_write(db, name, compact_step, &cc, err);

  *dim = cc.dim;
  return rc;
}

/* ---- search ------------------------------------------------------------------------------ */

typedef struct qterm {
  unsigned field;
  const char *term; /* in the query accumulator's arena */
  size_t len;
  double w, ka, kb;
} qterm;

typedef struct text_ctx {
  const vs_text_params *p;
  int count_only;
  uint64_t count;
  vs__scored *top;
  size_t ntop;
  vs_hit *hits;
  vs_search_info info;
  const vs__pidset *ex_given; /* exclusions the caller resolved (vs__text_leg) */
} text_ctx;

/* What keep() needs: the filter's passing set, or the filter to apply to
 * each record, and whether the run holds deleted points. */
typedef struct keep_ctx {
  MDB_txn *txn;
  const vs__coll *c;
  const vs__filter *f;
  const roaring_bitmap_t *set; /* the filter's passing set, exclusions taken out */
  const vs__pidset *ex;
  int deleted;
} keep_ctx;

static int keep(void *ctx, uint64_t pid) {
  const keep_ctx *k = ctx;
  MDB_val key = {8, &pid}, v;
  vs__prec pr;

  if (k->set)
    return pid <= UINT32_MAX && roaring_bitmap_contains(k->set, (uint32_t)pid);
  if (k->ex->n && vs__pidset_has(k->ex, pid))
    return 0;
  if (k->f == NULL && !k->deleted)
    return 1;
  if (mdb_get(k->txn, k->c->dbi[VS__DBI_PTS], &key, &v))
    return 0;
  return k->f == NULL || (vs__point_parse(&v, &pr) == 0 &&
                          vs__filter_match(k->f, &pr.id, pr.payload, pr.payload_len));
}

static int query_term(void *ctx, const char *term, size_t len) {
  tacc *a = ctx;
  return acc_term(a, term, len);
}

/* Analyze the query into distinct terms (one field: 0) with their counts. */
static int query_terms(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs_text_params *p, tacc *q,
                       vs_error *err) {
  vs__analyzer *an = analyzer_get(db, c->language);
  uint64_t fp;
  int rc, absent;

  if (an == NULL)
    return vs__err(err, VS_ENOMEM, "cannot make an analyzer for '%s'", c->language);
  if ((rc = fp_check(txn, c, an, &fp, &absent, err))) {
    analyzer_put(db, c->language, an);
    return rc;
  }
  q->pid = 0;
  q->field = 0;
  rc = vs__analyze(an, p->text, p->len, query_term, q);
  analyzer_put(db, c->language, an);
  if (rc == VS__ANALYZE_EUTF8)
    return vs__err(err, VS_EINVAL, "the query text is not valid UTF-8");
  if (rc)
    return vs__err(err, VS_ENOMEM, "out of memory");
  return VS_OK;
}

/* Field f's weight: the last one naming it, else 1. */
static double field_weight(const vs__coll *c, const vs_text_params *p, uint32_t f) {
  double w = 1.0;

  for (size_t i = 0; i < p->n_weights; i++)
    if (strcmp(p->weights[i].field, c->text_fields[f]) == 0)
      w = p->weights[i].weight;
  return w;
}

/* Score one run into heap (or count its matches). */
static int search_run(MDB_txn *txn, const vs__coll *c, const trun *r, const qterm *qt, size_t nq,
                      vs__bm25_term *bt, const roaring_bitmap_t *scan, keep_ctx *kc,
                      vs__bm25_heap *heap, text_ctx *tc, vs_error *err) {
  size_t n = 0;
  int rc = VS_OK, mrc = 0;

  for (size_t i = 0; i < nq && mrc == 0; i++) {
    mrc = vs__pcur_open(&bt[n].cur, txn, c->dbi[VS__DBI_TXT], r->id, qt[i].field, qt[i].term,
                        qt[i].len);
    if (mrc == 0) {
      bt[n].w = qt[i].w;
      bt[n].ka = qt[i].ka;
      bt[n].kb = qt[i].kb;
      n++;
    } else if (mrc == MDB_NOTFOUND) {
      mrc = 0;
    }
  }
  kc->deleted = r->deleted != 0;
  if (mrc == 0 && n && tc->count_only) {
    /* Every point holding a term, once. */
    for (;;) {
      uint64_t d = VS__DOC_END;
      for (size_t i = 0; i < n; i++)
        d = bt[i].cur.doc < d ? bt[i].cur.doc : d;
      if (d == VS__DOC_END)
        break;
      tc->count += (uint64_t)keep(kc, d);
      for (size_t i = 0; i < n; i++)
        if (bt[i].cur.doc == d)
          vs__pcur_next(&bt[i].cur);
    }
    for (size_t i = 0; i < n && mrc == 0; i++)
      mrc = bt[i].cur.err;
  } else if (mrc == 0 && n && scan) {
    roaring_uint32_iterator_t it;
    uint32_t ids[SCAN_CHUNK];
    uint64_t pids[SCAN_CHUNK];

    roaring_init_iterator(scan, &it);
    if (r->min_pid <= UINT32_MAX &&
        roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)r->min_pid)) {
      for (;;) {
        uint32_t got = roaring_read_uint32_iterator(&it, ids, SCAN_CHUNK), m = 0;
        while (m < got && ids[m] <= r->max_pid) {
          pids[m] = ids[m];
          m++;
        }
        if (m && (mrc = vs__bm25_run_docs(bt, n, heap, pids, m, NULL, NULL, &tc->info.candidates)))
          break;
        if (m < got || got < SCAN_CHUNK)
          break;
      }
    }
  } else if (mrc == 0 && n) {
    mrc = vs__bm25_run(bt, n, heap, 1, keep, kc, &tc->info.candidates);
  }
  if (mrc) /* the LMDB cursors stay open for the next run: text_step closes them */
    rc = tp_err(err, mrc, "read postings");
  return rc;
}

/* The search proper, up to the ranked pids in tc->top (tc->ntop of them). */
static int text_top(vs_db *db, MDB_txn *txn, const vs__coll *c, text_ctx *tc, vs_error *err) {
  const vs_text_params *p = tc->p;
  const vs__filter *f = (const vs__filter *)p->filter;
  tacc q;
  tman man = {0, 0, NULL};
  qterm *qt = NULL;
  vs__bm25_term *bt = NULL;
  vs__bm25_heap heap = {NULL, 0, p->k};
  roaring_bitmap_t *set = NULL;
  vs__pidset own_ex = {NULL, 0};
  const vs__pidset *ex = tc->ex_given ? tc->ex_given : &own_ex;
  keep_ctx kc = {txn, c, f, NULL, ex, 0};
  size_t nq = 0;
  uint64_t sum_df = 0;
  int rc, scan;

  vs__free(tc->top);
  vs__free(tc->hits);
  tc->top = NULL, tc->hits = NULL, tc->ntop = 0, tc->count = 0;
  memset(&tc->info, 0, sizeof(tc->info));
  tc->info.selectivity = 1.0;
  strcpy(tc->info.plan, "empty");
  for (size_t i = 0; i < p->n_weights; i++) {
    uint32_t fi = 0;
    while (fi < c->n_text && strcmp(p->weights[i].field, c->text_fields[fi]) != 0)
      fi++;
    if (fi == c->n_text)
      return vs__err(err, VS_EINVAL, "weight %zu: '%s' is not a text field of '%s'", i,
                     p->weights[i].field, c->name);
  }
  if (c->n_text == 0)
    return VS_OK;
  memset(&q, 0, sizeof(q));
  if ((rc = query_terms(db, txn, c, p, &q, err)) || q.ne == 0)
    goto out;
  if ((rc = man_get(txn, c->dbi[VS__DBI_TDF], &man, err)))
    goto out;
  if (q.ne * c->n_text > QUERY_CURSORS_MAX) {
    rc = vs__err(err, VS_ETOOLARGE, "the query has %zu distinct terms; at most %zu are searched",
                 q.ne, (size_t)QUERY_CURSORS_MAX / c->n_text);
    goto out;
  }
  qt = vs__malloc(q.ne * c->n_text * sizeof(*qt));
  bt = vs__calloc(q.ne * c->n_text, sizeof(*bt)); /* no LMDB cursors yet */
  if (qt == NULL || bt == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  /* The statistics of this snapshot: N and avgdl per field, df per term. */
  for (uint32_t fi = 0; fi < c->n_text; fi++) {
    fstat fs;
    double wf = field_weight(c, p, fi), avgdl;

    if ((rc = fstat_get(txn, c->dbi[VS__DBI_TDF], fi, &fs, err)))
      goto out;
    if (wf == 0 || fs.docs == 0)
      continue;
    avgdl = (double)fs.total / (double)fs.docs;
    for (size_t e = 0; e < q.ne; e++) {
      const char *term = q.arena + q.e[e].off;
      size_t len = q.e[e].len;
      uint64_t df = 0, gone;
      vs__term_head h;
      double idf;

      for (uint32_t r = 0; r < man.n; r++) {
        int mrc = vs__tp_head_get(txn, c->dbi[VS__DBI_TXT], man.runs[r].id, fi, term, len, &h);
        if (mrc == 0)
          df += h.df;
        else if (mrc != MDB_NOTFOUND) {
          rc = tp_err(err, mrc, "read a term");
          goto out;
        }
      }
      if ((rc = ddf_get(txn, c->dbi[VS__DBI_TDF], fi, term, len, &gone, err)))
        goto out;
      if (gone > df) {
        rc = vs__err(err, VS_ECORRUPT, "a term's deleted count exceeds its postings");
        goto out;
      }
      df -= gone;
      if (df == 0)
        continue;
      sum_df += df;
      idf = log(1.0 + ((double)fs.docs - (double)df + 0.5) / ((double)df + 0.5));
      qt[nq++] = (qterm){fi,
                         term,
                         len,
                         wf * (double)q.t[q.e[e].last_tuple].tf * idf * (c->k1 + 1),
                         c->k1 * (1 - c->b),
                         c->k1 * c->b / avgdl};
    }
  }
  if (nq == 0)
    goto out;
  if (!tc->count_only && (heap.h = vs__malloc(p->k * sizeof(*heap.h))) == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  strcpy(tc->info.plan, "bm25");
  if (!tc->ex_given && (rc = vs__exclude_resolve(txn, c, p->exclude, p->n_exclude, &own_ex, err)))
    goto out;
  if (f) {
    vs__state st;
    if ((rc = vs__state_get(db, txn, c->cid, &st, err)) ||
        (rc = vs__pindex_eval(db, txn, c, &st, f, &set, err)))
      goto out;
    if (set)
      vs__pidset_remove_from(ex, set);
    kc.set = set;
    if (set) {
      uint64_t pass = roaring_bitmap_get_cardinality(set);
      tc->info.selectivity = st.count ? (double)pass / (double)st.count : 0.0;
    }
    strcpy(tc->info.plan, "bm25-filtered");
  }
  /* Few passing points: probe each one's postings instead of walking them. */
  scan = set && !tc->count_only && roaring_bitmap_get_cardinality(set) * nq < sum_df;
  if (scan)
    strcpy(tc->info.plan, "filtered-scan");
  for (uint32_t r = 0; r < man.n && rc == VS_OK; r++)
    rc = search_run(txn, c, &man.runs[r], qt, nq, bt, scan ? set : NULL, &kc, &heap, tc, err);
  tc->info.segments = man.n;
  if (rc || tc->count_only)
    goto out;
  vs__bm25_heap_sort(&heap);
  if (heap.n) {
    if ((tc->top = vs__malloc(heap.n * sizeof(*tc->top))) == NULL) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < heap.n; i++)
      tc->top[i] = (vs__scored){(float)heap.h[i].score, heap.h[i].pid};
    tc->ntop = heap.n;
  }
out:
  if (set)
    roaring_bitmap_free(set);
  vs__pidset_free(&own_ex);
  for (size_t i = 0; bt && i < q.ne * c->n_text; i++)
    vs__pcur_close(&bt[i].cur);
  vs__free(heap.h);
  vs__free(qt);
  vs__free(bt);
  vs__free(man.runs);
  acc_free(&q);
  return rc;
}

static int text_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  text_ctx *tc = ctx;
  const vs_text_params *p = tc->p;
  int rc = text_top(db, txn, c, tc, err);

  if (rc || tc->ntop == 0 || tc->count_only)
    return rc;
  return vs__hits_make(txn, c, tc->top, tc->ntop, tc->ntop, 0, p->with, p->payload_fields,
                       p->n_payload_fields, &tc->hits, &tc->ntop, err);
}

int vs__text_leg(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs_text_params *p,
                 const vs__pidset *ex, vs__scored **top, size_t *n, vs_search_info *info,
                 vs_error *err) {
  text_ctx tc;
  int rc;

  memset(&tc, 0, sizeof(tc));
  tc.p = p;
  tc.ex_given = ex;
  rc = text_top(db, txn, c, &tc, err);
  *top = rc ? NULL : tc.top;
  *n = rc ? 0 : tc.ntop;
  *info = tc.info;
  if (rc)
    vs__free(tc.top);
  return rc;
}

static int text_check(vs_db *db, const vs_text_params *p, int count_only, vs_error *err) {
  int rc;

  if (db == NULL || p == NULL)
    return vs__err(err, VS_EINVAL, "database handle or parameters are NULL");
  if (p->text == NULL && p->len > 0)
    return vs__err(err, VS_EINVAL, "query text is NULL");
  if (p->len > VS_QUERY_TEXT_MAX)
    return vs__err(err, VS_ETOOLARGE, "the query text has %zu bytes, the limit is %u", p->len,
                   VS_QUERY_TEXT_MAX);
  if (!count_only) {
    if (p->k == 0)
      return vs__err(err, VS_EINVAL, "k must be at least 1");
    if (p->k > VS_K_MAX)
      return vs__err(err, VS_ETOOLARGE, "k is %zu, the limit is %d", p->k, VS_K_MAX);
    if (p->with & ~(unsigned)(VS_GET_VECTOR | VS_GET_PAYLOAD))
      return vs__err(err, VS_EINVAL, "unknown 'with' flags 0x%x", p->with);
  }
  if (p->n_weights && p->weights == NULL)
    return vs__err(err, VS_EINVAL, "weights is NULL");
  if ((rc = vs__exclude_check(p->exclude, p->n_exclude, err)))
    return rc;
  if ((rc = vs__fields_check(p->payload_fields, p->n_payload_fields, err)))
    return rc;
  for (size_t i = 0; i < p->n_weights; i++)
    if (p->weights[i].field == NULL || !isfinite(p->weights[i].weight) || p->weights[i].weight < 0)
      return vs__err(err, VS_EINVAL, "weight %zu must name a field and be finite and >= 0", i);
  if (p->len && vs__utf8_check(p->text, p->len))
    return vs__err(err, VS_EINVAL, "the query text is not valid UTF-8");
  return VS_OK;
}

int vs_text_search(vs_db *db, const char *name, const vs_text_params *p, vs_hit **hits, size_t *n,
                   vs_search_info *info, vs_error *err) {
  text_ctx tc;
  int rc;

  if (hits)
    *hits = NULL;
  if (n)
    *n = 0;
  if (hits == NULL || n == NULL)
    return vs__err(err, VS_EINVAL, "outputs are NULL");
  if ((rc = text_check(db, p, 0, err)))
    return rc;
  memset(&tc, 0, sizeof(tc));
  tc.p = p;
  rc = vs__coll_read(db, name, text_step, &tc, err);
  vs__free(tc.top);
  if (rc || tc.ntop == 0) {
    vs__free(tc.hits);
    tc.hits = NULL;
    tc.ntop = 0;
  }
  if (rc)
    return rc;
  *hits = tc.hits;
  *n = tc.ntop;
  if (info)
    *info = tc.info;
  return VS_OK;
}

int vs_text_count(vs_db *db, const char *name, const vs_text_params *p, uint64_t *out,
                  vs_error *err) {
  text_ctx tc;
  int rc;

  if (out == NULL)
    return vs__err(err, VS_EINVAL, "output is NULL");
  *out = 0;
  if ((rc = text_check(db, p, 1, err)))
    return rc;
  memset(&tc, 0, sizeof(tc));
  tc.p = p;
  tc.count_only = 1;
  rc = vs__coll_read(db, name, text_step, &tc, err);
  vs__free(tc.top);
  vs__free(tc.hits);
  if (rc == VS_OK)
    *out = tc.count;
  return rc;
}
