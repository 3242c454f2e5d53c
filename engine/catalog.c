/*
 * catalog.c: collections: create, drop, describe, list; the collection
 * record codec; and the per-process cache of open collection handles.
 *
 * The cache (db->colls) maps a name and a cid to the four DBI handles of
 * that collection.  Entries are immutable and live until the database is
 * closed, so readers use them without a lock; whether an entry is still
 * current is decided inside each transaction by comparing the cid stored in
 * the catalog record with the entry's (cids are never reused).  A stale or
 * missing entry sends the caller to resolve(), which opens the handles in a
 * fresh transaction under coll_lock, as LMDB requires of mdb_dbi_open.
 *
 * Lock order: coll_lock, then write_lock, then txn_lock.
 */
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/mpscan.h"
#include "engine/storage.h"
#include "engine/vindex.h"
#include "index/spec.h"
#include "text/language.h"

#define RECORD_HEADER 5 /* u8 version, u32 cid */

static const char *const dbi_suffix[VS__DBI_COUNT] = {"ids", "pts", "vec", "log", "txt", "tdf"};
static const unsigned dbi_flags[VS__DBI_COUNT] = {
    0, MDB_INTEGERKEY, MDB_INTEGERKEY, MDB_INTEGERKEY, 0, 0};

int vs_metric_parse(const char *s, vs_metric *out) {
  if (s == NULL)
    return VS_EINVAL;
  if (strcmp(s, "l2") == 0)
    *out = VS_METRIC_L2;
  else if (strcmp(s, "ip") == 0)
    *out = VS_METRIC_IP;
  else if (strcmp(s, "cosine") == 0)
    *out = VS_METRIC_COSINE;
  else
    return VS_EINVAL;
  return VS_OK;
}

const char *vs_metric_name(vs_metric m) {
  switch (m) {
  case VS_METRIC_L2:
    return "l2";
  case VS_METRIC_IP:
    return "ip";
  case VS_METRIC_COSINE:
    return "cosine";
  }
  return "?";
}

/* A collection description, decoded or about to be encoded. */
typedef struct desc {
  uint32_t cid;
  uint32_t dim;
  vs_metric metric;
  char index[VS_INDEX_SPEC_MAX + 1];
  char language[VS_LANGUAGE_MAX + 1];
  double k1, b;
  uint64_t created_at;
  size_t nf;
  char fields[VS_TEXT_FIELDS_MAX][VS_FIELD_NAME_MAX + 1];
} desc;

/* ---- configuration checks ----------------------------------------------------- */

static int config_check(const vs_collection_config *cfg, desc *d, vs_error *err) {
  const char *index, *lang;
  char msg[VS_ERROR_MESSAGE_MAX];
  int rc;

  if (cfg == NULL)
    return vs__err(err, VS_EINVAL, "collection config is missing");
  rc = vs__name_check(cfg->name, err);
  if (rc)
    return rc;
  memset(d, 0, sizeof(*d));
  if (cfg->dim > VS_DIM_MAX)
    return vs__err(err, VS_EINVAL, "dim must be 0 (text only) or 1..%d, not %u", VS_DIM_MAX,
                   cfg->dim);
  d->dim = cfg->dim;
  if (cfg->metric != VS_METRIC_L2 && cfg->metric != VS_METRIC_IP && cfg->metric != VS_METRIC_COSINE)
    return vs__err(err, VS_EINVAL, "metric must be l2, ip or cosine");
  d->metric = cfg->metric;

  index = cfg->index ? cfg->index : (cfg->dim ? "HNSW32" : "");
  if (strlen(index) > VS_INDEX_SPEC_MAX)
    return vs__err(err, VS_EINVAL, "index spec is longer than %d bytes", VS_INDEX_SPEC_MAX);
  if (cfg->dim == 0 && index[0] != '\0')
    return vs__err(err, VS_EINVAL, "a text-only collection (dim 0) takes no index spec");
  if (cfg->dim > 0 &&
      vs__index_spec_check(index, cfg->dim, cfg->metric != VS_METRIC_L2, msg, sizeof(msg)))
    return vs__err(err, VS_EINVAL, "%s", msg);
  strcpy(d->index, index);

  lang = cfg->language ? cfg->language : "english";
  if (strlen(lang) > VS_LANGUAGE_MAX || vs__text_language_check(lang))
    return vs__err(err, VS_EINVAL,
                   "language '%.40s' is not a Snowball stemmer name (english, porter, french, "
                   "...) or 'none'",
                   lang);
  strcpy(d->language, lang);

  if (cfg->n_text_fields > VS_TEXT_FIELDS_MAX)
    return vs__err(err, VS_EINVAL, "at most %d text fields", VS_TEXT_FIELDS_MAX);
  if (cfg->n_text_fields > 0 && cfg->text_fields == NULL)
    return vs__err(err, VS_EINVAL, "text_fields is NULL");
  for (size_t i = 0; i < cfg->n_text_fields; i++) {
    const char *f = cfg->text_fields[i];
    size_t n = f ? strlen(f) : 0;

    if (n == 0 || n > VS_FIELD_NAME_MAX || vs__utf8_check(f, n))
      return vs__err(err, VS_EINVAL, "text field %zu must be 1..%d bytes of UTF-8", i,
                     VS_FIELD_NAME_MAX);
    for (size_t j = 0; j < i; j++)
      if (strcmp(d->fields[j], f) == 0)
        return vs__err(err, VS_EINVAL, "text field '%s' is named twice", f);
    memcpy(d->fields[i], f, n + 1);
  }
  d->nf = cfg->n_text_fields;

  d->k1 = cfg->bm25_k1;
  d->b = cfg->bm25_b;
  if (d->k1 == 0 && d->b == 0)
    d->k1 = 1.2, d->b = 0.75;
  if (!isfinite(d->k1) || d->k1 < 0 || d->k1 > 100)
    return vs__err(err, VS_EINVAL, "bm25 k1 must be in [0, 100]");
  if (!isfinite(d->b) || d->b < 0 || d->b > 1)
    return vs__err(err, VS_EINVAL, "bm25 b must be in [0, 1]");
  d->created_at = (uint64_t)time(NULL);
  return VS_OK;
}

/* ---- the collection record -------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);

  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* Encode d into a record; *out is a msgpack_sbuffer the caller destroys. */
static int record_encode(const desc *d, msgpack_sbuffer *sb) {
  uint8_t head[RECORD_HEADER];
  msgpack_packer pk;

  msgpack_sbuffer_init(sb);
  head[0] = VS__COLLECTION_RECORD_VERSION;
  memcpy(head + 1, &d->cid, 4);
  if (msgpack_sbuffer_write(sb, (const char *)head, sizeof(head)))
    return VS_ENOMEM;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 8);
  pack_str(&pk, "dim");
  msgpack_pack_uint32(&pk, d->dim);
  pack_str(&pk, "metric");
  pack_str(&pk, vs_metric_name(d->metric));
  pack_str(&pk, "index");
  pack_str(&pk, d->index);
  pack_str(&pk, "text_fields");
  msgpack_pack_array(&pk, d->nf);
  for (size_t i = 0; i < d->nf; i++)
    pack_str(&pk, d->fields[i]);
  pack_str(&pk, "language");
  pack_str(&pk, d->language);
  pack_str(&pk, "k1");
  msgpack_pack_double(&pk, d->k1);
  pack_str(&pk, "b");
  msgpack_pack_double(&pk, d->b);
  pack_str(&pk, "created_at");
  msgpack_pack_uint64(&pk, d->created_at);
  /* msgpack-c's packer reports no errors; a failed sbuffer write leaves
   * sb->data NULL, which the caller checks. */
  return sb->data ? VS_OK : VS_ENOMEM;
}

static int str_copy(const msgpack_object *o, char *dst, size_t cap) {
  if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
    return -1;
  memcpy(dst, o->via.str.ptr, o->via.str.size);
  dst[o->via.str.size] = '\0';
  return 0;
}

static int key_is(const msgpack_object *k, const char *name) {
  size_t n = strlen(name);
  return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int record_fields(const msgpack_object *root, desc *d) {
  if (root->type != MSGPACK_OBJECT_MAP)
    return -1;
  for (uint32_t i = 0; i < root->via.map.size; i++) {
    const msgpack_object *k = &root->via.map.ptr[i].key, *v = &root->via.map.ptr[i].val;
    char metric[8];

    if (k->type != MSGPACK_OBJECT_STR)
      return -1;
    if (key_is(k, "dim")) {
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > VS_DIM_MAX)
        return -1;
      d->dim = (uint32_t)v->via.u64;
    } else if (key_is(k, "metric")) {
      if (str_copy(v, metric, sizeof(metric)) || vs_metric_parse(metric, &d->metric))
        return -1;
    } else if (key_is(k, "index")) {
      if (str_copy(v, d->index, sizeof(d->index)))
        return -1;
    } else if (key_is(k, "language")) {
      if (str_copy(v, d->language, sizeof(d->language)))
        return -1;
    } else if (key_is(k, "text_fields")) {
      if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > VS_TEXT_FIELDS_MAX)
        return -1;
      d->nf = v->via.array.size;
      for (size_t j = 0; j < d->nf; j++)
        if (str_copy(&v->via.array.ptr[j], d->fields[j], sizeof(d->fields[j])))
          return -1;
    } else if (key_is(k, "k1") || key_is(k, "b")) {
      if (v->type != MSGPACK_OBJECT_FLOAT64 && v->type != MSGPACK_OBJECT_FLOAT32)
        return -1;
      *(key_is(k, "b") ? &d->b : &d->k1) = v->via.f64;
      if (!isfinite(v->via.f64) || v->via.f64 < 0 || v->via.f64 > 100)
        return -1; /* out of the range config_check allows */
    } else if (key_is(k, "created_at")) {
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
      d->created_at = v->via.u64;
    } /* unknown keys: written by a later version, ignored */
  }
  return 0;
}

/* Decode a record from the map: scanned first, as bytes from disk are not
 * trusted, then decoded by msgpack-c. */
static int record_decode(const MDB_val *v, desc *d, vs_error *err) {
  const uint8_t *p = v->mv_data;
  msgpack_unpacked u;
  size_t used, off = 0;
  int rc = VS_OK;

  memset(d, 0, sizeof(*d));
  if (v->mv_size < RECORD_HEADER + 1 || p[0] != VS__COLLECTION_RECORD_VERSION)
    return vs__err(err, VS_ECORRUPT, "collection record has an unknown version or size");
  memcpy(&d->cid, p + 1, 4);
  if (vs__mp_scan(p + RECORD_HEADER, v->mv_size - RECORD_HEADER, v->mv_size - RECORD_HEADER, 4,
                  &used))
    return vs__err(err, VS_ECORRUPT, "collection record is not valid msgpack");
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)p + RECORD_HEADER, used, &off) !=
          MSGPACK_UNPACK_SUCCESS ||
      record_fields(&u.data, d))
    rc = vs__err(err, VS_ECORRUPT, "collection record is malformed");
  msgpack_unpacked_destroy(&u);
  return rc;
}

/* Look up and decode the record of collection `name` in txn. */
static int catalog_get(vs_db *db, MDB_txn *txn, const char *name, desc *d, vs_error *err) {
  MDB_val k = {strlen(name), (void *)name}, v;
  int mrc = mdb_get(txn, db->catalog, &k, &v);

  if (mrc)
    return mrc == MDB_NOTFOUND ? vs__err(err, VS_ENOTFOUND, "no collection named '%s'", name)
                               : vs__mdb_err(err, mrc, "read the catalog");
  return record_decode(&v, d, err);
}

/* Encode d and store it as the record of collection `name`. */
static int catalog_put(vs_db *db, MDB_txn *txn, const char *name, const desc *d, vs_error *err) {
  MDB_val k = {strlen(name), (void *)name}, v;
  msgpack_sbuffer sb;
  int mrc;

  if (record_encode(d, &sb)) {
    msgpack_sbuffer_destroy(&sb);
    return vs__err(err, VS_ENOMEM, "out of memory");
  }
  v.mv_size = sb.size;
  v.mv_data = sb.data;
  mrc = mdb_put(txn, db->catalog, &k, &v, 0);
  msgpack_sbuffer_destroy(&sb);
  return mrc ? vs__mdb_err(err, mrc, "write the collection record") : VS_OK;
}

/* ---- state ------------------------------------------------------------------------ */

static void state_key(uint32_t cid, char *buf, size_t cap, MDB_val *k) {
  vs__meta_key(k, buf, cap, "state.", cid);
}

size_t vs__meta_key(MDB_val *k, char *buf, size_t cap, const char *prefix, uint32_t cid) {
  char digits[10];
  size_t n = strlen(prefix), d = 0;

  /* Every search reads two such keys: no printf on that path. */
  do
    digits[d++] = (char)('0' + cid % 10);
  while ((cid /= 10) != 0);
  if (n + d + 1 > cap)
    n = d = 0;
  memcpy(buf, prefix, n);
  while (d > 0)
    buf[n++] = digits[--d];
  buf[n] = '\0';
  k->mv_size = n;
  k->mv_data = buf;
  return n;
}

int vs__state_get(vs_db *db, MDB_txn *txn, uint32_t cid, vs__state *st, vs_error *err) {
  char buf[32];
  MDB_val k, v;
  int mrc;

  state_key(cid, buf, sizeof(buf), &k);
  mrc = mdb_get(txn, db->meta, &k, &v);
  if (mrc == MDB_NOTFOUND || (mrc == 0 && v.mv_size != sizeof(*st)))
    return vs__err(err, VS_ECORRUPT, "collection %u has no valid state record", cid);
  if (mrc)
    return vs__mdb_err(err, mrc, "read collection state");
  memcpy(st, v.mv_data, sizeof(*st));
  return VS_OK;
}

int vs__state_put(vs_db *db, MDB_txn *txn, uint32_t cid, const vs__state *st, vs_error *err) {
  char buf[32];
  MDB_val k, v = {sizeof(*st), (void *)st};
  int mrc;

  state_key(cid, buf, sizeof(buf), &k);
  mrc = mdb_put(txn, db->meta, &k, &v, 0);
  return mrc ? vs__mdb_err(err, mrc, "write collection state") : VS_OK;
}

/* ---- DBI handles ------------------------------------------------------------------ */

/* Open collection cid's tables: the text tables too when it has text fields
 * (`text`); otherwise their handles are left 0 and never used. */
static int dbis_open(MDB_txn *txn, uint32_t cid, int text, unsigned create, MDB_dbi *dbi,
                     vs_error *err) {
  int n = text ? VS__DBI_COUNT : VS__DBI_PLAIN;

  for (int i = VS__DBI_PLAIN; i < VS__DBI_COUNT; i++)
    dbi[i] = 0;
  for (int i = 0; i < n; i++) {
    char name[32];
    int mrc;

    snprintf(name, sizeof(name), "c%u.%s", cid, dbi_suffix[i]);
    mrc = mdb_dbi_open(txn, name, dbi_flags[i] | create, &dbi[i]);
    if (mrc == MDB_NOTFOUND)
      return vs__err(err, VS_ECORRUPT, "collection %u lacks its table %s", cid, name);
    if (mrc)
      return vs__mdb_err(err, mrc, "open a collection table");
  }
  return VS_OK;
}

static vs__coll *cache_find(vs_db *db, const char *name, uint32_t cid, int any_cid) {
  for (vs__coll *c = db->colls; c; c = c->next)
    if (!c->dead && strcmp(c->name, name) == 0 && (any_cid || c->cid == cid))
      return c;
  return NULL;
}

void vs__colls_free(vs_db *db) {
  vs__coll *c = db->colls, *next;

  for (; c; c = next) {
    next = c->next;
    vs__free(c);
  }
  db->colls = NULL;
}

/* Find the current entry for `name`, opening its handles if needed.  Runs
 * its own read transaction under coll_lock. */
static int resolve(vs_db *db, const char *name, vs__coll **out, vs_error *err) {
  MDB_txn *txn;
  vs__coll *c;
  desc d;
  int rc, mrc;

  pthread_mutex_lock(&db->coll_lock);
  rc = vs__read_begin(db, &txn, err);
  if (rc)
    goto out;
  rc = catalog_get(db, txn, name, &d, err);
  if (rc)
    goto out_txn;
  c = cache_find(db, name, d.cid, 0);
  if (c) {
    *out = c;
    goto out_txn;
  }
  c = vs__calloc(1, sizeof(*c));
  if (c == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out_txn;
  }
  rc = dbis_open(txn, d.cid, d.nf > 0, 0, c->dbi, err);
  if (rc) {
    vs__free(c);
    goto out_txn;
  }
  /* Commit, not abort: handles opened in a read transaction become visible
   * to other transactions only when it commits. */
  mrc = mdb_txn_commit(txn);
  pthread_rwlock_unlock(&db->txn_lock);
  if (mrc) {
    vs__free(c);
    rc = vs__mdb_err(err, mrc, "open collection tables");
    goto out;
  }
  strcpy(c->name, name);
  c->cid = d.cid;
  c->dim = d.dim;
  c->metric = d.metric;
  c->n_text = (uint32_t)d.nf;
  for (size_t i = 0; i < d.nf; i++)
    strcpy(c->text_fields[i], d.fields[i]);
  strcpy(c->language, d.language);
  c->k1 = d.k1;
  c->b = d.b;
  c->next = db->colls;
  db->colls = c;
  *out = c;
  goto out;

out_txn:
  vs__read_end(db, txn);
out:
  pthread_mutex_unlock(&db->coll_lock);
  return rc;
}

/* Is `c` still what the catalog says `c->name` is, in this transaction? */
static int coll_check(vs_db *db, MDB_txn *txn, const vs__coll *c, vs_error *err) {
  MDB_val k = {strlen(c->name), (void *)c->name}, v;
  uint32_t cid;
  int mrc = mdb_get(txn, db->catalog, &k, &v);

  if (mrc == MDB_NOTFOUND)
    return vs__err(err, VS_ENOTFOUND, "no collection named '%s'", c->name);
  if (mrc)
    return vs__mdb_err(err, mrc, "read the catalog");
  if (v.mv_size < RECORD_HEADER)
    return vs__err(err, VS_ECORRUPT, "collection record of '%s' is truncated", c->name);
  memcpy(&cid, (const uint8_t *)v.mv_data + 1, 4);
  return cid == c->cid && !c->dead ? VS_OK : VS__RETRY;
}

static vs__coll *cache_lookup(vs_db *db, const char *name) {
  vs__coll *c;

  pthread_mutex_lock(&db->coll_lock);
  c = cache_find(db, name, 0, 1);
  pthread_mutex_unlock(&db->coll_lock);
  return c;
}

int vs__coll_read(vs_db *db, const char *name, vs__coll_fn fn, void *ctx, vs_error *err) {
  vs__coll *c;
  MDB_txn *txn;
  int rc;

  rc = vs__name_check(name, err);
  if (rc)
    return rc;
  c = cache_lookup(db, name);
  for (int tries = 0; tries < 3; tries++) {
    if (c == NULL && (rc = resolve(db, name, &c, err)))
      return rc;
    rc = vs__read_begin(db, &txn, err);
    if (rc)
      return rc;
    rc = coll_check(db, txn, c, err);
    if (rc == VS_OK)
      rc = fn(db, txn, c, ctx, err);
    vs__read_end(db, txn);
    if (rc != VS__RETRY)
      return rc;
    c = NULL;
  }
  return vs__err(err, VS_EBUSY, "collection '%s' keeps changing under the reader", name);
}

typedef struct write_ctx {
  const vs__coll *c;
  vs__coll_fn fn;
  void *ctx;
} write_ctx;

static int write_step(vs_db *db, MDB_txn *txn, void *ctx, vs_error *err) {
  write_ctx *w = ctx;
  int rc = coll_check(db, txn, w->c, err);

  return rc ? rc : w->fn(db, txn, w->c, w->ctx, err);
}

int vs__coll_write(vs_db *db, const char *name, vs__coll_fn fn, void *ctx, vs_error *err) {
  write_ctx w = {NULL, fn, ctx};
  vs__coll *c;
  int rc;

  rc = vs__name_check(name, err);
  if (rc)
    return rc;
  if (db->flags & VS_OPEN_READONLY)
    return vs__err(err, VS_EACCES, "the database is open read-only");
  c = cache_lookup(db, name);
  for (int tries = 0; tries < 3; tries++) {
    if (c == NULL && (rc = resolve(db, name, &c, err)))
      return rc;
    w.c = c;
    rc = vs__write(db, write_step, &w, 0, err);
    if (rc != VS__RETRY)
      return rc;
    c = NULL;
  }
  return vs__err(err, VS_EBUSY, "collection '%s' keeps changing under the writer", name);
}

/* ---- create and drop --------------------------------------------------------------- */

typedef struct create_ctx {
  const char *name;
  desc *d;
} create_ctx;

static int create_step(vs_db *db, MDB_txn *txn, void *ctx, vs_error *err) {
  create_ctx *cc = ctx;
  MDB_val k = {strlen(cc->name), (void *)cc->name}, v, nk = {8, "next_cid"}, nv;
  MDB_dbi dbi[VS__DBI_COUNT];
  vs__state st = {1, 1, 0};
  uint32_t cid;
  int mrc, rc;

  mrc = mdb_get(txn, db->catalog, &k, &v);
  if (mrc == 0)
    return vs__err(err, VS_EEXIST, "collection '%s' already exists", cc->name);
  if (mrc != MDB_NOTFOUND)
    return vs__mdb_err(err, mrc, "read the catalog");
  mrc = mdb_get(txn, db->meta, &nk, &nv);
  if (mrc || nv.mv_size != sizeof(cid))
    return mrc ? vs__mdb_err(err, mrc, "read next_cid")
               : vs__err(err, VS_ECORRUPT, "next_cid record is malformed");
  memcpy(&cid, nv.mv_data, sizeof(cid));
  cc->d->cid = cid++;
  nv.mv_size = sizeof(cid);
  nv.mv_data = &cid;
  if ((mrc = mdb_put(txn, db->meta, &nk, &nv, 0)))
    return vs__mdb_err(err, mrc, "write next_cid");

  rc = dbis_open(txn, cc->d->cid, cc->d->nf > 0, MDB_CREATE, dbi, err);
  if (rc)
    return rc;
  rc = vs__state_put(db, txn, cc->d->cid, &st, err);
  return rc ? rc : catalog_put(db, txn, cc->name, cc->d, err);
}

int vs_collection_create(vs_db *db, const vs_collection_config *cfg, vs_error *err) {
  create_ctx cc;
  desc d;
  int rc;

  if (db == NULL)
    return vs__err(err, VS_EINVAL, "database handle is NULL");
  rc = config_check(cfg, &d, err);
  if (rc)
    return rc;
  cc.name = cfg->name;
  cc.d = &d;
  /* coll_lock: mdb_dbi_open happens in this write transaction. */
  pthread_mutex_lock(&db->coll_lock);
  rc = vs__write(db, create_step, &cc, 0, err);
  pthread_mutex_unlock(&db->coll_lock);
  return rc;
}

typedef struct drop_ctx {
  char name[VS_NAME_MAX + 1];
  uint32_t cid; /* set by drop_step: the dropped collection's id */
} drop_ctx;

static int drop_step(vs_db *db, MDB_txn *txn, void *ctx, vs_error *err) {
  drop_ctx *dc = ctx;
  const char *name = dc->name;
  MDB_val k = {strlen(name), (void *)name}, sk;
  MDB_dbi dbi[VS__DBI_COUNT];
  char buf[32];
  desc d;
  int mrc, rc;

  rc = catalog_get(db, txn, name, &d, err);
  if (rc)
    return rc;
  rc = dbis_open(txn, d.cid, d.nf > 0, 0, dbi, err);
  if (rc)
    return rc;
  for (int i = 0; i < (d.nf > 0 ? VS__DBI_COUNT : VS__DBI_PLAIN); i++)
    if ((mrc = mdb_drop(txn, dbi[i], 1)))
      return vs__mdb_err(err, mrc, "drop a collection table");
  state_key(d.cid, buf, sizeof(buf), &sk);
  if ((mrc = mdb_del(txn, db->meta, &sk, NULL)) && mrc != MDB_NOTFOUND)
    return vs__mdb_err(err, mrc, "delete the collection state");
  vs__meta_key(&sk, buf, sizeof(buf), "index.", d.cid);
  if ((mrc = mdb_del(txn, db->meta, &sk, NULL)) && mrc != MDB_NOTFOUND)
    return vs__mdb_err(err, mrc, "delete the index manifest");
  dc->cid = d.cid;
  if ((mrc = mdb_del(txn, db->catalog, &k, NULL)))
    return vs__mdb_err(err, mrc, "delete the collection record");
  return VS_OK;
}

int vs_collection_drop(vs_db *db, const char *name, vs_error *err) {
  drop_ctx ctx;
  int rc;

  if (db == NULL)
    return vs__err(err, VS_EINVAL, "database handle is NULL");
  rc = vs__name_check(name, err);
  if (rc)
    return rc;
  strcpy(ctx.name, name);
  /* Exclusive: mdb_drop closes handles that concurrent readers of this
   * process might otherwise still be using. */
  pthread_mutex_lock(&db->coll_lock);
  rc = vs__write(db, drop_step, &ctx, VS__WRITE_EXCLUSIVE, err);
  if (rc != VS_OK && rc != VS_ENOTFOUND)
    /* LMDB closes a dropped table's handle at mdb_drop, not at commit: after
     * a failed drop the cached handles may be closed, and their numbers
     * reused by the next mdb_dbi_open.  Resolve the name afresh. */
    for (vs__coll *c = db->colls; c; c = c->next)
      if (strcmp(c->name, name) == 0)
        c->dead = 1;
  pthread_mutex_unlock(&db->coll_lock);
  if (rc == VS_OK)
    vs__vindex_drop(db, ctx.cid);
  return rc;
}

/* Change the index spec in the collection record (vs_collection_rebuild). */
int vs__coll_set_spec(vs_db *db, MDB_txn *txn, const char *name, const char *spec, vs_error *err) {
  desc d;
  int rc = catalog_get(db, txn, name, &d, err);

  if (rc)
    return rc;
  snprintf(d.index, sizeof(d.index), "%s", spec);
  return catalog_put(db, txn, name, &d, err);
}

/* ---- describe and list --------------------------------------------------------------- */

/* Lay out n descriptions in one allocation: the info array, then for each
 * its text field pointer array and strings. */
static vs_collection_info *infos_build(const desc *ds, char (*names)[VS_NAME_MAX + 1],
                                       const uint64_t *counts, size_t n) {
  size_t size = n * sizeof(vs_collection_info);
  vs_collection_info *out;
  char *p;

  for (size_t i = 0; i < n; i++) {
    size += ds[i].nf * sizeof(char *);
    for (size_t j = 0; j < ds[i].nf; j++)
      size += strlen(ds[i].fields[j]) + 1;
  }
  out = vs__calloc(1, size);
  if (out == NULL)
    return NULL;
  p = (char *)(out + n);
  for (size_t i = 0; i < n; i++) {
    vs_collection_info *o = &out[i];
    const char **fields = (const char **)(void *)p;

    strcpy(o->name, names[i]);
    o->dim = ds[i].dim;
    o->metric = ds[i].metric;
    strcpy(o->index, ds[i].index);
    strcpy(o->language, ds[i].language);
    o->bm25_k1 = ds[i].k1;
    o->bm25_b = ds[i].b;
    o->count = counts[i];
    o->created_at = ds[i].created_at;
    o->n_text_fields = ds[i].nf;
    o->text_fields = ds[i].nf ? fields : NULL;
    p += ds[i].nf * sizeof(char *);
    for (size_t j = 0; j < ds[i].nf; j++) {
      size_t len = strlen(ds[i].fields[j]) + 1;
      memcpy(p, ds[i].fields[j], len);
      fields[j] = p;
      p += len;
    }
  }
  return out;
}

typedef struct list_ctx {
  const char *only; /* describe: this name; list: NULL */
  size_t n, cap;
  desc *ds;
  char (*names)[VS_NAME_MAX + 1];
  uint64_t *counts;
} list_ctx;

static int list_add(vs_db *db, MDB_txn *txn, list_ctx *lc, const MDB_val *k, const MDB_val *v,
                    vs_error *err) {
  vs__state st;
  int rc;

  if (k->mv_size == 0 || k->mv_size > VS_NAME_MAX)
    return vs__err(err, VS_ECORRUPT, "catalog holds a malformed name");
  if (lc->n == lc->cap) {
    size_t cap = lc->cap ? lc->cap * 2 : 8;
    desc *ds = vs__realloc(lc->ds, cap * sizeof(*ds));
    if (ds == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    lc->ds = ds;
    char(*names)[VS_NAME_MAX + 1] = vs__realloc(lc->names, cap * sizeof(*names));
    if (names == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    lc->names = names;
    uint64_t *counts = vs__realloc(lc->counts, cap * sizeof(*counts));
    if (counts == NULL)
      return vs__err(err, VS_ENOMEM, "out of memory");
    lc->counts = counts;
    lc->cap = cap;
  }
  rc = record_decode(v, &lc->ds[lc->n], err);
  if (rc)
    return rc;
  rc = vs__state_get(db, txn, lc->ds[lc->n].cid, &st, err);
  if (rc)
    return rc;
  memcpy(lc->names[lc->n], k->mv_data, k->mv_size);
  lc->names[lc->n][k->mv_size] = '\0';
  lc->counts[lc->n] = st.count;
  lc->n++;
  return VS_OK;
}

static int list_read(vs_db *db, list_ctx *lc, vs_error *err) {
  MDB_cursor *cur;
  MDB_txn *txn;
  MDB_val k, v;
  int rc, mrc;

  rc = vs__read_begin(db, &txn, err);
  if (rc)
    return rc;
  if (lc->only) {
    k.mv_size = strlen(lc->only);
    k.mv_data = (void *)lc->only;
    mrc = mdb_get(txn, db->catalog, &k, &v);
    if (mrc == 0)
      rc = list_add(db, txn, lc, &k, &v, err);
    else
      rc = mrc == MDB_NOTFOUND ? vs__err(err, VS_ENOTFOUND, "no collection named '%s'", lc->only)
                               : vs__mdb_err(err, mrc, "read the catalog");
    goto out;
  }
  mrc = mdb_cursor_open(txn, db->catalog, &cur);
  if (mrc) {
    rc = vs__mdb_err(err, mrc, "open a catalog cursor");
    goto out;
  }
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == VS_OK;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    rc = list_add(db, txn, lc, &k, &v, err);
  if (rc == VS_OK && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the catalog");
  mdb_cursor_close(cur);
out:
  vs__read_end(db, txn);
  return rc;
}

static int list_run(vs_db *db, const char *only, vs_collection_info **out, size_t *n,
                    vs_error *err) {
  list_ctx lc = {only, 0, 0, NULL, NULL, NULL};
  int rc;

  rc = list_read(db, &lc, err);
  if (rc == VS_OK) {
    *n = lc.n;
    *out = lc.n ? infos_build(lc.ds, lc.names, lc.counts, lc.n) : NULL;
    if (lc.n && *out == NULL)
      rc = vs__err(err, VS_ENOMEM, "out of memory");
  }
  vs__free(lc.ds);
  vs__free(lc.names);
  vs__free(lc.counts);
  return rc;
}

int vs_collection_describe(vs_db *db, const char *name, vs_collection_info **out, vs_error *err) {
  size_t n;
  int rc;

  if (out)
    *out = NULL;
  if (db == NULL || out == NULL)
    return vs__err(err, VS_EINVAL, "database handle or output is NULL");
  rc = vs__name_check(name, err);
  if (rc)
    return rc;
  return list_run(db, name, out, &n, err);
}

int vs_collection_list(vs_db *db, vs_collection_info **out, size_t *n, vs_error *err) {
  if (out)
    *out = NULL;
  if (n)
    *n = 0;
  if (db == NULL || out == NULL || n == NULL)
    return vs__err(err, VS_EINVAL, "database handle or output is NULL");
  return list_run(db, NULL, out, n, err);
}
