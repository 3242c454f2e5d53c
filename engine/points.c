/*
 * points.c: upsert, delete, get and count of points, and the change log
 * reader.  The record layouts are in storage.h.
 *
 * A write call is one LMDB write transaction.  Ids and payloads are checked
 * before the transaction starts, vectors inside it (their length depends on
 * the collection the transaction confirms); any failure aborts the whole
 * batch.  Point versions get fresh pids from the collection's counter, so
 * the pts, vec and log tables are only ever appended to (MDB_APPEND) and the
 * new values are written straight into the map (MDB_RESERVE).
 */
#include <string.h>

#include "engine/filter.h"
#include "engine/storage.h"
#include "engine/tindex.h"
#include "engine/vindex.h"

static uint64_t seq_append(uint64_t seq, int op, uint64_t pid, MDB_txn *txn, MDB_dbi log,
                           int *mrc) {
  uint8_t rec[9];
  MDB_val k = {sizeof(seq), &seq}, v = {sizeof(rec), rec};

  rec[0] = (uint8_t)op;
  memcpy(rec + 1, &pid, 8);
  *mrc = mdb_put(txn, log, &k, &v, MDB_APPEND);
  return seq + 1;
}

/* Remove pid's record, vector and id mapping and log the delete; tb (NULL
 * without text fields) takes its text out of the statistics. */
static int unlink_pid(MDB_txn *txn, const vs__coll *c, uint64_t pid, vs__state *st, vs__tbatch *tb,
                      vs_error *err) {
  MDB_val pk = {sizeof(pid), &pid}, rec;
  vs__prec pr;
  int mrc, rc;

  if (tb) {
    if ((mrc = mdb_get(txn, c->dbi[VS__DBI_PTS], &pk, &rec)))
      return mrc == MDB_NOTFOUND ? vs__err(err, VS_ECORRUPT, "id maps to a missing point %llu",
                                           (unsigned long long)pid)
                                 : vs__mdb_err(err, mrc, "read a point");
    if (vs__point_parse(&rec, &pr))
      return vs__err(err, VS_ECORRUPT, "point %llu is malformed", (unsigned long long)pid);
    if ((rc = vs__tbatch_remove(tb, pid, pr.payload, pr.payload_len, err)))
      return rc;
  }
  if ((mrc = mdb_del(txn, c->dbi[VS__DBI_PTS], &pk, NULL)))
    return mrc == MDB_NOTFOUND ? vs__err(err, VS_ECORRUPT, "id maps to a missing point %llu",
                                         (unsigned long long)pid)
                               : vs__mdb_err(err, mrc, "delete a point");
  if (c->dim && (mrc = mdb_del(txn, c->dbi[VS__DBI_VEC], &pk, NULL)))
    return mrc == MDB_NOTFOUND
               ? vs__err(err, VS_ECORRUPT, "point %llu has no vector", (unsigned long long)pid)
               : vs__mdb_err(err, mrc, "delete a vector");
  st->next_seq = seq_append(st->next_seq, VS_CHANGE_DELETE, pid, txn, c->dbi[VS__DBI_LOG], &mrc);
  if (mrc)
    return vs__mdb_err(err, mrc, "append to the change log");
  st->count--;
  return VS_OK;
}

/* ---- upsert ------------------------------------------------------------------------- */

typedef struct upsert_ctx {
  const vs_point *points;
  size_t n;
  uint32_t cid; /* set by the step, for vs__vindex_notify */
} upsert_ctx;

static int put_point(MDB_txn *txn, const vs__coll *c, const vs_point *pt, vs__state *st,
                     vs__tbatch *tb, vs_error *err) {
  uint8_t key[VS__ID_KEY_MAX];
  MDB_val k = {vs__id_key(&pt->id, key), key}, v, pk;
  uint64_t pid, old;
  uint16_t idlen;
  uint8_t *rec;
  int mrc, rc;

  mrc = mdb_get(txn, c->dbi[VS__DBI_IDS], &k, &v);
  if (mrc == 0) {
    if (v.mv_size != sizeof(old))
      return vs__err(err, VS_ECORRUPT, "id record has %zu bytes", v.mv_size);
    memcpy(&old, v.mv_data, sizeof(old));
    rc = unlink_pid(txn, c, old, st, tb, err);
    if (rc)
      return rc;
  } else if (mrc != MDB_NOTFOUND) {
    return vs__mdb_err(err, mrc, "look up an id");
  }

  pid = st->next_pid++;
  v.mv_size = sizeof(pid);
  v.mv_data = &pid;
  if ((mrc = mdb_put(txn, c->dbi[VS__DBI_IDS], &k, &v, 0)))
    return vs__mdb_err(err, mrc, "write an id");

  pk.mv_size = sizeof(pid);
  pk.mv_data = &pid;
  idlen = pt->id.kind == VS_ID_INT ? 8 : (uint16_t)pt->id.len;
  v.mv_size = VS__POINT_HEADER + idlen + pt->payload_len;
  if ((mrc = mdb_put(txn, c->dbi[VS__DBI_PTS], &pk, &v, MDB_APPEND | MDB_RESERVE)))
    return mrc == MDB_KEYEXIST
               ? vs__err(err, VS_ECORRUPT, "pid %llu is already used", (unsigned long long)pid)
               : vs__mdb_err(err, mrc, "write a point");
  rec = v.mv_data;
  rec[0] = VS__POINT_RECORD_VERSION;
  rec[1] = pt->id.kind == VS_ID_INT ? VS__ID_KIND_INT : VS__ID_KIND_STR;
  memcpy(rec + 2, &idlen, 2);
  if (pt->id.kind == VS_ID_INT)
    memcpy(rec + VS__POINT_HEADER, &pt->id.num, 8);
  else
    memcpy(rec + VS__POINT_HEADER, pt->id.str, idlen);
  if (pt->payload_len)
    memcpy(rec + VS__POINT_HEADER + idlen, pt->payload, pt->payload_len);

  if (c->dim) {
    v.mv_size = (size_t)c->dim * sizeof(float);
    if ((mrc = mdb_put(txn, c->dbi[VS__DBI_VEC], &pk, &v, MDB_APPEND | MDB_RESERVE)))
      return vs__mdb_err(err, mrc, "write a vector");
    memcpy(v.mv_data, pt->vector, (size_t)c->dim * sizeof(float));
  }
  st->next_seq = seq_append(st->next_seq, VS_CHANGE_UPSERT, pid, txn, c->dbi[VS__DBI_LOG], &mrc);
  if (mrc)
    return vs__mdb_err(err, mrc, "append to the change log");
  st->count++;
  return tb ? vs__tbatch_add(tb, pid, pt->payload, pt->payload_len, err) : VS_OK;
}

static int upsert_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  upsert_ctx *u = ctx;
  vs__tbatch *tb = NULL;
  vs__state st;
  int rc;

  u->cid = c->cid;
  for (size_t i = 0; i < u->n; i++) {
    char what[48];

    snprintf(what, sizeof(what), "point %zu: vector", i);
    rc = vs__vector_check(u->points[i].vector, u->points[i].dim, c->dim, what, err);
    if (rc)
      return rc;
    if (c->metric == VS_METRIC_COSINE && c->dim) {
      int zero = 1;
      for (uint32_t j = 0; j < c->dim && zero; j++)
        zero = u->points[i].vector[j] == 0.0f;
      if (zero)
        return vs__err(err, VS_EINVAL, "point %zu: a zero vector has no cosine similarity", i);
    }
  }
  rc = vs__state_get(db, txn, c->cid, &st, err);
  if (rc || (rc = vs__tbatch_begin(db, txn, c, &tb, err)))
    return rc;
  for (size_t i = 0; i < u->n && rc == VS_OK; i++)
    rc = put_point(txn, c, &u->points[i], &st, tb, err);
  if (rc == VS_OK && tb)
    rc = vs__tbatch_commit(tb, err);
  vs__tbatch_free(tb);
  return rc ? rc : vs__state_put(db, txn, c->cid, &st, err);
}

int vs_upsert(vs_db *db, const char *name, const vs_point *points, size_t n, vs_error *err) {
  upsert_ctx u = {points, n, 0};
  int rc;

  if (db == NULL || (points == NULL && n > 0))
    return vs__err(err, VS_EINVAL, "database handle or points is NULL");
  for (size_t i = 0; i < n; i++) {
    rc = vs__id_check(&points[i].id, i, err);
    if (rc)
      return rc;
    rc = vs__payload_check(points[i].payload, points[i].payload_len, i, err);
    if (rc)
      return rc;
  }
  if (n == 0)
    return vs__name_check(name, err);
  rc = vs__coll_write(db, name, upsert_step, &u, err);
  if (rc == VS_OK)
    vs__vindex_notify(db, u.cid);
  return rc;
}

/* ---- delete -------------------------------------------------------------------------- */

typedef struct delete_ctx {
  const vs_id *ids;
  size_t n;
  size_t deleted;
} delete_ctx;

static int delete_one(MDB_txn *txn, const vs__coll *c, const vs_id *id, vs__state *st,
                      vs__tbatch *tb, size_t *deleted, vs_error *err) {
  uint8_t key[VS__ID_KEY_MAX];
  MDB_val k = {vs__id_key(id, key), key}, v;
  uint64_t pid;
  int mrc;

  mrc = mdb_get(txn, c->dbi[VS__DBI_IDS], &k, &v);
  if (mrc == MDB_NOTFOUND)
    return VS_OK;
  if (mrc)
    return vs__mdb_err(err, mrc, "look up an id");
  if (v.mv_size != sizeof(pid))
    return vs__err(err, VS_ECORRUPT, "id record has %zu bytes", v.mv_size);
  memcpy(&pid, v.mv_data, sizeof(pid));
  if ((mrc = mdb_del(txn, c->dbi[VS__DBI_IDS], &k, NULL)))
    return vs__mdb_err(err, mrc, "delete an id");
  (*deleted)++;
  return unlink_pid(txn, c, pid, st, tb, err);
}

static int delete_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  delete_ctx *d = ctx;
  vs__tbatch *tb = NULL;
  vs__state st;
  int rc;

  d->deleted = 0; /* the step may run again after the map grows */
  rc = vs__state_get(db, txn, c->cid, &st, err);
  if (rc || (rc = vs__tbatch_begin(db, txn, c, &tb, err)))
    return rc;
  for (size_t i = 0; i < d->n && rc == VS_OK; i++)
    rc = delete_one(txn, c, &d->ids[i], &st, tb, &d->deleted, err);
  if (rc == VS_OK && tb && d->deleted)
    rc = vs__tbatch_commit(tb, err);
  vs__tbatch_free(tb);
  if (rc || d->deleted == 0)
    return rc;
  return vs__state_put(db, txn, c->cid, &st, err);
}

int vs_delete(vs_db *db, const char *name, const vs_id *ids, size_t n, size_t *deleted,
              vs_error *err) {
  delete_ctx d = {ids, n, 0};
  int rc;

  if (deleted)
    *deleted = 0;
  if (db == NULL || (ids == NULL && n > 0))
    return vs__err(err, VS_EINVAL, "database handle or ids is NULL");
  for (size_t i = 0; i < n; i++) {
    rc = vs__id_check(&ids[i], i, err);
    if (rc)
      return rc;
  }
  if (n == 0)
    return vs__name_check(name, err);
  rc = vs__coll_write(db, name, delete_step, &d, err);
  if (rc == VS_OK && deleted)
    *deleted = d.deleted;
  return rc;
}

/* ---- delete where -------------------------------------------------------------------- */

typedef struct where_ctx {
  const vs__filter *f;
  size_t deleted;
} where_ctx;

typedef struct doomed {
  uint64_t pid;
  uint16_t klen;
  uint8_t key[VS__ID_KEY_MAX];
} doomed;

/* Find every point passing the filter in this transaction's snapshot, then
 * delete them: found first, since a cursor's values do not survive writes. */
static int delete_where_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  where_ctx *w = ctx;
  doomed *d = NULL;
  size_t n = 0, cap = 0;
  vs__tbatch *tb = NULL;
  MDB_cursor *cur;
  MDB_val k, v;
  vs__state st;
  int rc, mrc;

  w->deleted = 0;
  if ((rc = vs__state_get(db, txn, c->cid, &st, err)))
    return rc;
  if ((mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur)))
    return vs__mdb_err(err, mrc, "open a cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    vs__prec pr;

    if (vs__point_parse(&v, &pr)) {
      rc = vs__err(err, VS_ECORRUPT, "a point record is malformed");
      break;
    }
    if (!vs__filter_match(w->f, &pr.id, pr.payload, pr.payload_len))
      continue;
    if (n == cap) {
      doomed *nd = vs__realloc(d, (cap = cap ? cap * 2 : 64) * sizeof(*d));
      if (nd == NULL) {
        rc = vs__err(err, VS_ENOMEM, "out of memory");
        break;
      }
      d = nd;
    }
    memcpy(&d[n].pid, k.mv_data, 8);
    d[n].klen = (uint16_t)vs__id_key(&pr.id, d[n].key);
    n++;
  }
  mdb_cursor_close(cur);
  if (rc == VS_OK && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the points");
  if (rc == VS_OK && n)
    rc = vs__tbatch_begin(db, txn, c, &tb, err);
  for (size_t i = 0; rc == VS_OK && i < n; i++) {
    MDB_val ik = {d[i].klen, d[i].key};
    if ((mrc = mdb_del(txn, c->dbi[VS__DBI_IDS], &ik, NULL)))
      rc = vs__mdb_err(err, mrc, "delete an id");
    else if ((rc = unlink_pid(txn, c, d[i].pid, &st, tb, err)) == VS_OK)
      w->deleted++;
  }
  if (rc == VS_OK && tb)
    rc = vs__tbatch_commit(tb, err);
  vs__tbatch_free(tb);
  vs__free(d);
  if (rc || w->deleted == 0)
    return rc;
  return vs__state_put(db, txn, c->cid, &st, err);
}

int vs_delete_where(vs_db *db, const char *name, const vs_filter *filter, size_t *deleted,
                    vs_error *err) {
  where_ctx w = {(const vs__filter *)filter, 0};
  int rc;

  if (deleted)
    *deleted = 0;
  if (db == NULL || filter == NULL)
    return vs__err(err, VS_EINVAL, "database handle or filter is NULL");
  rc = vs__coll_write(db, name, delete_where_step, &w, err);
  if (rc == VS_OK && deleted)
    *deleted = w.deleted;
  return rc;
}

/* ---- get ----------------------------------------------------------------------------------- */

typedef struct get_ctx {
  const vs_id *ids;
  size_t n;
  unsigned flags;
  vs_record *out;
} get_ctx;

typedef struct found {
  int present;  /* the id has a point */
  vs__prec rec; /* its record, parsed */
  MDB_val vec;
} found;

static size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

static int get_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  get_ctx *g = ctx;
  size_t size, fsize = 0, bsize = 0;
  found *f;
  float *fp;
  char *bp;
  int mrc, rc = VS_OK;

  (void)db;
  f = vs__calloc(g->n ? g->n : 1, sizeof(*f));
  if (f == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  /* Pass 1: find every record and size the single output allocation. */
  for (size_t i = 0; i < g->n; i++) {
    uint8_t key[VS__ID_KEY_MAX];
    MDB_val k = {vs__id_key(&g->ids[i], key), key}, v;
    uint64_t pid;

    if (g->ids[i].kind == VS_ID_STR)
      bsize += g->ids[i].len + 1;
    mrc = mdb_get(txn, c->dbi[VS__DBI_IDS], &k, &v);
    if (mrc == MDB_NOTFOUND)
      continue;
    if (mrc || v.mv_size != sizeof(pid)) {
      rc = mrc ? vs__mdb_err(err, mrc, "look up an id")
               : vs__err(err, VS_ECORRUPT, "id record has %zu bytes", v.mv_size);
      goto out;
    }
    memcpy(&pid, v.mv_data, sizeof(pid));
    k.mv_size = sizeof(pid);
    k.mv_data = &pid;
    mrc = mdb_get(txn, c->dbi[VS__DBI_PTS], &k, &v);
    if (mrc || vs__point_parse(&v, &f[i].rec)) {
      rc = mrc && mrc != MDB_NOTFOUND
               ? vs__mdb_err(err, mrc, "read a point")
               : vs__err(err, VS_ECORRUPT, "point %llu is missing or malformed",
                         (unsigned long long)pid);
      goto out;
    }
    f[i].present = 1;
    if ((g->flags & VS_GET_VECTOR) && c->dim) {
      mrc = mdb_get(txn, c->dbi[VS__DBI_VEC], &k, &f[i].vec);
      if (mrc || f[i].vec.mv_size != (size_t)c->dim * sizeof(float)) {
        rc = vs__err(err, VS_ECORRUPT, "point %llu has no valid vector", (unsigned long long)pid);
        goto out;
      }
      fsize += f[i].vec.mv_size;
    }
    if (g->flags & VS_GET_PAYLOAD)
      bsize += f[i].rec.payload_len;
  }

  /* Pass 2: copy into [records][vectors][id strings and payloads]. */
  size = align8(g->n * sizeof(vs_record)) + align8(fsize) + bsize;
  g->out = vs__calloc(1, size);
  if (g->out == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  fp = (float *)(void *)((char *)g->out + align8(g->n * sizeof(vs_record)));
  bp = (char *)fp + align8(fsize);
  for (size_t i = 0; i < g->n; i++) {
    vs_record *r = &g->out[i];

    r->id = g->ids[i];
    if (r->id.kind == VS_ID_STR) {
      memcpy(bp, r->id.str, r->id.len);
      bp[r->id.len] = '\0';
      r->id.str = bp;
      bp += r->id.len + 1;
    }
    if (!f[i].present)
      continue;
    r->found = 1;
    if (f[i].vec.mv_size) {
      memcpy(fp, f[i].vec.mv_data, f[i].vec.mv_size);
      r->vector = fp;
      r->dim = c->dim;
      fp += c->dim;
    }
    if ((g->flags & VS_GET_PAYLOAD) && f[i].rec.payload_len) {
      memcpy(bp, f[i].rec.payload, f[i].rec.payload_len);
      r->payload = (const uint8_t *)bp;
      r->payload_len = f[i].rec.payload_len;
      bp += f[i].rec.payload_len;
    }
  }
out:
  vs__free(f);
  return rc;
}

int vs_get(vs_db *db, const char *name, const vs_id *ids, size_t n, unsigned flags, vs_record **out,
           vs_error *err) {
  get_ctx g = {ids, n, flags, NULL};
  int rc;

  if (out)
    *out = NULL;
  if (db == NULL || out == NULL || (ids == NULL && n > 0))
    return vs__err(err, VS_EINVAL, "database handle, ids or output is NULL");
  if (flags & ~(unsigned)(VS_GET_VECTOR | VS_GET_PAYLOAD))
    return vs__err(err, VS_EINVAL, "unknown get flags 0x%x", flags);
  for (size_t i = 0; i < n; i++) {
    rc = vs__id_check(&ids[i], i, err);
    if (rc)
      return rc;
  }
  rc = vs__coll_read(db, name, get_step, &g, err);
  if (rc == VS_OK)
    *out = g.out;
  else
    vs__free(g.out);
  return rc;
}

int vs__vector_get(MDB_txn *txn, const vs__coll *c, uint64_t pid, const float **x, vs_error *err) {
  MDB_val k = {sizeof(pid), &pid}, v;
  int mrc = mdb_get(txn, c->dbi[VS__DBI_VEC], &k, &v);

  if (mrc == MDB_NOTFOUND)
    return VS_ENOTFOUND;
  if (mrc)
    return vs__mdb_err(err, mrc, "read a vector");
  /* storage.h: values of this table are 4-byte aligned by construction; a
   * map that breaks that was not written by vsearch. */
  if (v.mv_size != (size_t)c->dim * sizeof(float) || ((uintptr_t)v.mv_data & 3))
    return vs__err(err, VS_ECORRUPT, "stored vector of pid %llu is malformed",
                   (unsigned long long)pid);
  *x = v.mv_data;
  return VS_OK;
}

int vs__point_parse(const MDB_val *rec, vs__prec *out) {
  const uint8_t *r = rec->mv_data;
  uint16_t idlen;

  if (rec->mv_size < VS__POINT_HEADER)
    return -1;
  memcpy(&idlen, r + 2, 2);
  if ((size_t)VS__POINT_HEADER + idlen > rec->mv_size)
    return -1;
  if (r[1] == VS__ID_KIND_INT) {
    if (idlen != 8)
      return -1;
    out->id = (vs_id){VS_ID_INT, 0, NULL, 0};
    memcpy(&out->id.num, r + VS__POINT_HEADER, 8);
  } else {
    out->id = (vs_id){VS_ID_STR, 0, (const char *)r + VS__POINT_HEADER, idlen};
  }
  out->payload = r + VS__POINT_HEADER + idlen;
  out->payload_len = rec->mv_size - VS__POINT_HEADER - idlen;
  return 0;
}

/* ---- count and the change log ------------------------------------------------------------- */

static int count_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  vs__state st;
  int rc = vs__state_get(db, txn, c->cid, &st, err);

  if (rc == VS_OK)
    *(uint64_t *)ctx = st.count;
  return rc;
}

int vs_count(vs_db *db, const char *name, uint64_t *out, vs_error *err) {
  if (db == NULL || out == NULL)
    return vs__err(err, VS_EINVAL, "database handle or output is NULL");
  return vs__coll_read(db, name, count_step, out, err);
}

typedef struct changes_ctx {
  uint64_t after;
  vs_change *out;
  size_t cap, n;
} changes_ctx;

int vs__log_each(MDB_txn *txn, const vs__coll *c, uint64_t after, uint64_t last, vs__log_fn fn,
                 void *ctx, vs_error *err) {
  uint64_t seq = after + 1;
  MDB_val k = {sizeof(seq), &seq}, v;
  MDB_cursor *cur;
  int mrc, rc = VS_OK;

  if (after >= last)
    return VS_OK;
  mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_LOG], &cur);
  if (mrc)
    return vs__mdb_err(err, mrc, "open a log cursor");
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const uint8_t *p = v.mv_data;
    uint64_t pid;

    if (k.mv_size != 8 || v.mv_size != 9 ||
        (p[0] != VS_CHANGE_UPSERT && p[0] != VS_CHANGE_DELETE)) {
      rc = vs__err(err, VS_ECORRUPT, "malformed change log entry");
      break;
    }
    memcpy(&seq, k.mv_data, 8);
    if (seq > last)
      break;
    memcpy(&pid, p + 1, 8);
    rc = fn(ctx, seq, (vs_change_op)p[0], pid, err);
    if (rc)
      break;
  }
  if (rc == VS_OK && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = vs__mdb_err(err, mrc, "read the change log");
  mdb_cursor_close(cur);
  return rc == VS__LOG_STOP ? VS_OK : rc;
}

static int change_out(void *ctx, uint64_t seq, vs_change_op op, uint64_t pid, vs_error *err) {
  changes_ctx *cc = ctx;

  (void)err;
  cc->out[cc->n++] = (vs_change){seq, op, pid};
  return cc->n == cc->cap ? VS__LOG_STOP : VS_OK;
}

static int changes_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  changes_ctx *cc = ctx;

  (void)db;
  cc->n = 0;
  if (cc->cap == 0)
    return VS_OK;
  return vs__log_each(txn, c, cc->after, UINT64_MAX, change_out, cc, err);
}

int vs_changes(vs_db *db, const char *name, uint64_t after, vs_change *out, size_t cap, size_t *n,
               vs_error *err) {
  changes_ctx cc = {after, out, cap, 0};
  int rc;

  if (n)
    *n = 0;
  if (db == NULL || n == NULL || (out == NULL && cap > 0))
    return vs__err(err, VS_EINVAL, "database handle or output is NULL");
  rc = vs__coll_read(db, name, changes_step, &cc, err);
  if (rc == VS_OK)
    *n = cc.n;
  return rc;
}

vs_id vs_id_int(uint64_t num) {
  vs_id id = {VS_ID_INT, num, NULL, 0};
  return id;
}

vs_id vs_id_str(const char *s) {
  vs_id id = {VS_ID_STR, 0, s, s ? strlen(s) : 0};
  return id;
}
