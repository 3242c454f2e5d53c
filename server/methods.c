/*
 * methods.c: the RPC methods of DESIGN.md section 5, one function each.
 *
 * Every function runs on a worker thread with a vs__call (rpc.h): it reads
 * its named arguments through the helpers of args.c, calls the engine, and
 * packs exactly one result object.  Validation happens before any write, and
 * the engine's writes are all or nothing, so a request that fails changes
 * nothing.  Engine statuses travel unchanged; loop.c maps them to wire codes
 * with vs_err_wire().  The argument lists in the table are what each method
 * accepts: an argument outside its list is a bad_request, so a misspelt
 * option is an error rather than silently ignored.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/rpc.h"

/* ---- collections ------------------------------------------------------- */

static void pack_info(msgpack_packer *pk, const vs_collection_info *ci) {
  msgpack_pack_map(pk, 9);
  vs__pack_cstr(pk, "name");
  vs__pack_cstr(pk, ci->name);
  vs__pack_cstr(pk, "dim");
  msgpack_pack_uint32(pk, ci->dim);
  vs__pack_cstr(pk, "metric");
  vs__pack_cstr(pk, vs_metric_name(ci->metric));
  vs__pack_cstr(pk, "index");
  vs__pack_cstr(pk, ci->index);
  vs__pack_cstr(pk, "text_fields");
  msgpack_pack_array(pk, ci->n_text_fields);
  for (size_t i = 0; i < ci->n_text_fields; i++)
    vs__pack_cstr(pk, ci->text_fields[i]);
  vs__pack_cstr(pk, "language");
  vs__pack_cstr(pk, ci->language);
  vs__pack_cstr(pk, "bm25");
  msgpack_pack_map(pk, 2);
  vs__pack_cstr(pk, "k1");
  msgpack_pack_double(pk, ci->bm25_k1);
  vs__pack_cstr(pk, "b");
  msgpack_pack_double(pk, ci->bm25_b);
  vs__pack_cstr(pk, "count");
  msgpack_pack_uint64(pk, ci->count);
  vs__pack_cstr(pk, "created_at");
  msgpack_pack_uint64(pk, ci->created_at);
}

static int describe(vs__call *c, const char *name) {
  vs_collection_info *ci = NULL;
  int rc = vs_collection_describe(c->db, name, &ci, &c->err);

  if (rc == VS_OK)
    pack_info(c->pk, ci);
  vs_free(ci);
  return rc;
}

static int m_create_collection(vs__call *c) {
  vs_collection_config cfg;
  const char *metric;
  const msgpack_object *o;
  const char **fields = NULL;
  uint64_t dim;
  int rc;

  memset(&cfg, 0, sizeof cfg);
  if ((rc = vs__arg_str(c, "name", 1, NULL, &cfg.name)))
    return rc;
  if (!vs__arg(c, "dim"))
    return vs__fail(c, VS_EINVAL, "missing argument 'dim' (0 for a text-only collection)");
  if ((rc = vs__arg_uint(c, "dim", 0, 0, VS_DIM_MAX, 0, &dim)))
    return rc;
  cfg.dim = (uint32_t)dim;
  if ((rc = vs__arg_str(c, "metric", 0, "l2", &metric)))
    return rc;
  if (vs_metric_parse(metric, &cfg.metric))
    return vs__fail(c, VS_EINVAL, "metric must be \"l2\", \"ip\" or \"cosine\"");
  if ((rc = vs__arg_str(c, "index", 0, NULL, &cfg.index)))
    return rc;
  if ((rc = vs__arg_str(c, "language", 0, NULL, &cfg.language)))
    return rc;
  if ((o = vs__arg(c, "text_fields"))) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
      return vs__fail(c, VS_EINVAL, "text_fields must be an array of field names");
    if (o->via.array.size > VS_TEXT_FIELDS_MAX)
      return vs__fail(c, VS_EINVAL, "text_fields holds %u names, at most %d", o->via.array.size,
                      VS_TEXT_FIELDS_MAX);
    fields = msgpack_zone_malloc(c->zone, sizeof *fields * (o->via.array.size + 1u));
    if (!fields)
      return vs__fail(c, VS_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < o->via.array.size; i++)
      if ((rc = vs__obj_str(c, "text_fields[]", &o->via.array.ptr[i], &fields[i])))
        return rc;
    cfg.text_fields = fields;
    cfg.n_text_fields = o->via.array.size;
  }
  if ((o = vs__arg(c, "bm25"))) {
    if (o->type != MSGPACK_OBJECT_MAP)
      return vs__fail(c, VS_EINVAL, "bm25 must be a map {k1, b}");
    cfg.bm25_k1 = 1.2;
    cfg.bm25_b = 0.75;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      const msgpack_object *k = &o->via.map.ptr[i].key;
      const msgpack_object *v = &o->via.map.ptr[i].val;

      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2 && !memcmp(k->via.str.ptr, "k1", 2))
        rc = vs__obj_double(c, "bm25.k1", v, &cfg.bm25_k1);
      else if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 1 && k->via.str.ptr[0] == 'b')
        rc = vs__obj_double(c, "bm25.b", v, &cfg.bm25_b);
      else
        rc = vs__fail(c, VS_EINVAL, "bm25 takes k1 and b only");
      if (rc)
        return rc;
    }
  }
  rc = vs_collection_create(c->db, &cfg, &c->err);
  if (rc)
    return rc;
  return describe(c, cfg.name);
}

static int m_drop_collection(vs__call *c) {
  const char *name;
  int rc;

  if ((rc = vs__arg_str(c, "name", 1, NULL, &name)))
    return rc;
  rc = vs_collection_drop(c->db, name, &c->err);
  if (rc == VS_OK)
    msgpack_pack_true(c->pk);
  return rc;
}

static int m_list_collections(vs__call *c) {
  vs_collection_info *cs = NULL;
  size_t n = 0;
  int rc = vs_collection_list(c->db, &cs, &n, &c->err);

  if (rc)
    return rc;
  msgpack_pack_array(c->pk, n);
  for (size_t i = 0; i < n; i++)
    pack_info(c->pk, &cs[i]);
  vs_free(cs);
  return VS_OK;
}

static int m_describe_collection(vs__call *c) {
  const char *name;
  int rc;

  if ((rc = vs__arg_str(c, "name", 1, NULL, &name)))
    return rc;
  return describe(c, name);
}

static int m_rebuild(vs__call *c) {
  const char *name, *index;
  struct timespec t0, t1;
  uint64_t count = 0;
  int rc;

  if ((rc = vs__arg_str(c, "collection", 1, NULL, &name)))
    return rc;
  if ((rc = vs__arg_str(c, "index", 0, NULL, &index)))
    return rc;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = vs_collection_rebuild(c->db, name, index, 0, &c->err);
  if (rc)
    return rc;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rc = vs_count(c->db, name, &count, &c->err);
  if (rc)
    return rc;
  msgpack_pack_map(c->pk, 2);
  vs__pack_cstr(c->pk, "count");
  msgpack_pack_uint64(c->pk, count);
  vs__pack_cstr(c->pk, "seconds");
  msgpack_pack_double(c->pk,
                      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return VS_OK;
}

/* ---- points ------------------------------------------------------------ */

static int m_upsert(vs__call *c) {
  const msgpack_object *o;
  const char *name;
  vs_point *pts;
  uint32_t n;
  int rc;

  if ((rc = vs__arg_str(c, "collection", 1, NULL, &name)))
    return rc;
  if (!(o = vs__arg(c, "points")))
    return vs__fail(c, VS_EINVAL, "missing argument 'points'");
  if (o->type != MSGPACK_OBJECT_ARRAY)
    return vs__fail(c, VS_EINVAL, "points must be an array of {id, vector, payload} maps");
  n = o->via.array.size;
  if (n > c->cfg->max_points)
    return vs__fail(c, VS_ETOOLARGE, "points holds %u points, over the limit %zu", n,
                    c->cfg->max_points);
  pts = msgpack_zone_malloc(c->zone, sizeof *pts * (n + 1u));
  if (!pts)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  memset(pts, 0, sizeof *pts * (n + 1u));
  for (uint32_t i = 0; i < n; i++) {
    const msgpack_object *p = &o->via.array.ptr[i];
    int have_id = 0;
    char w[48];

    if (p->type != MSGPACK_OBJECT_MAP)
      return vs__fail(c, VS_EINVAL, "points[%u] must be a map {id, vector, payload}", i);
    for (uint32_t j = 0; j < p->via.map.size; j++) {
      const msgpack_object *k = &p->via.map.ptr[j].key;
      const msgpack_object *v = &p->via.map.ptr[j].val;
      float *vec;
      size_t dim;

      if (k->type != MSGPACK_OBJECT_STR)
        return vs__fail(c, VS_EINVAL, "points[%u]: keys must be strings", i);
      if (k->via.str.size == 2 && !memcmp(k->via.str.ptr, "id", 2)) {
        snprintf(w, sizeof w, "points[%u].id", i);
        if ((rc = vs__obj_id(c, w, v, &pts[i].id)))
          return rc;
        have_id = 1;
      } else if (k->via.str.size == 6 && !memcmp(k->via.str.ptr, "vector", 6)) {
        if (v->type == MSGPACK_OBJECT_NIL)
          continue;
        snprintf(w, sizeof w, "points[%u].vector", i);
        if ((rc = vs__obj_vector(c, w, v, &vec, &dim)))
          return rc;
        pts[i].vector = vec;
        pts[i].dim = dim;
      } else if (k->via.str.size == 7 && !memcmp(k->via.str.ptr, "payload", 7)) {
        if (v->type == MSGPACK_OBJECT_NIL)
          continue;
        snprintf(w, sizeof w, "points[%u].payload", i);
        if ((rc = vs__obj_bytes(c, w, v, &pts[i].payload, &pts[i].payload_len)))
          return rc;
      } else {
        return vs__fail(c, VS_EINVAL, "points[%u]: unknown key (use id, vector, payload)", i);
      }
    }
    if (!have_id)
      return vs__fail(c, VS_EINVAL, "points[%u] has no id", i);
  }
  rc = vs_upsert(c->db, name, pts, n, &c->err);
  if (rc)
    return rc;
  msgpack_pack_map(c->pk, 1);
  vs__pack_cstr(c->pk, "upserted");
  msgpack_pack_uint32(c->pk, n);
  return VS_OK;
}

static int m_delete(vs__call *c) {
  const msgpack_object *o;
  const char *name;
  vs_id *ids;
  size_t n, deleted = 0;
  int rc;

  if ((rc = vs__arg_str(c, "collection", 1, NULL, &name)))
    return rc;
  if (vs__arg(c, "filter")) {
    vs_filter *f = NULL;

    if (vs__arg(c, "ids"))
      return vs__fail(c, VS_EINVAL, "pass ids or filter, not both");
    if ((rc = vs__arg_filter(c, &f)))
      return rc;
    rc = vs_delete_where(c->db, name, f, &deleted, &c->err);
    vs_filter_free(f);
  } else {
    if (!(o = vs__arg(c, "ids")))
      return vs__fail(c, VS_EINVAL, "missing argument 'ids' (or 'filter')");
    if ((rc = vs__obj_ids(c, "ids", o, c->cfg->max_points, &ids, &n)))
      return rc;
    rc = vs_delete(c->db, name, ids, n, &deleted, &c->err);
  }
  if (rc)
    return rc;
  msgpack_pack_map(c->pk, 1);
  vs__pack_cstr(c->pk, "deleted");
  msgpack_pack_uint64(c->pk, deleted);
  return VS_OK;
}

static int m_get(vs__call *c) {
  const msgpack_object *o;
  const char *const *fields;
  const char *name;
  vs_record *recs = NULL;
  vs_id *ids;
  size_t n, nf;
  unsigned with;
  int rc;

  if ((rc = vs__arg_str(c, "collection", 1, NULL, &name)))
    return rc;
  if (!(o = vs__arg(c, "ids")))
    return vs__fail(c, VS_EINVAL, "missing argument 'ids'");
  if ((rc = vs__obj_ids(c, "ids", o, c->cfg->max_points, &ids, &n)))
    return rc;
  if ((rc = vs__arg_with(c, 1, &with, &fields, &nf)))
    return rc;
  if (nf)
    return vs__fail(c, VS_EINVAL, "get: with_payload takes true or false");
  rc = vs_get(c->db, name, ids, n, with, &recs, &c->err);
  if (rc)
    return rc;
  msgpack_pack_array(c->pk, n);
  for (size_t i = 0; i < n; i++) {
    const vs_record *r = &recs[i];

    if (!r->found) {
      msgpack_pack_nil(c->pk);
      continue;
    }
    msgpack_pack_map(c->pk, 1 + !!(with & VS_GET_PAYLOAD) + !!(with & VS_GET_VECTOR));
    vs__pack_cstr(c->pk, "id");
    vs__pack_id(c->pk, &r->id);
    if (with & VS_GET_PAYLOAD) {
      vs__pack_cstr(c->pk, "payload");
      vs__pack_raw_map(c->pk, r->payload, r->payload_len);
    }
    if (with & VS_GET_VECTOR) {
      vs__pack_cstr(c->pk, "vector");
      vs__pack_vector(c->pk, r->vector, r->dim);
    }
  }
  vs_free(recs);
  return VS_OK;
}

static int m_count(vs__call *c) {
  vs_filter *f = NULL;
  const char *name;
  uint64_t n = 0;
  int rc;

  if ((rc = vs__arg_str(c, "collection", 1, NULL, &name)))
    return rc;
  if ((rc = vs__arg_filter(c, &f)))
    return rc;
  rc = vs_count_where(c->db, name, f, &n, &c->err);
  vs_filter_free(f);
  if (rc == VS_OK)
    msgpack_pack_uint64(c->pk, n);
  return rc;
}

/* ---- queries ----------------------------------------------------------- */

/* What every query method shares: collection, k, filter, exclude, ef,
 * nprobe and what hits carry. */
typedef struct qcommon {
  const char *name;
  uint64_t k;
  vs_filter *filter;
  vs_id *exclude;
  size_t n_exclude;
  int ef, nprobe;
  unsigned with;
  const char *const *fields;
  size_t n_fields;
} qcommon;

static int qcommon_parse(vs__call *c, qcommon *q) {
  const msgpack_object *o;
  uint64_t v;
  int rc;

  memset(q, 0, sizeof *q);
  if ((rc = vs__arg_str(c, "collection", 1, NULL, &q->name)))
    return rc;
  if ((rc = vs__arg_uint(c, "k", 10, 1, c->cfg->max_k, 1, &q->k)))
    return rc;
  if ((rc = vs__arg_uint(c, "ef", 0, 0, VS_EF_MAX, 1, &v)))
    return rc;
  q->ef = (int)v;
  if ((rc = vs__arg_uint(c, "nprobe", 0, 0, 1u << 20, 0, &v)))
    return rc;
  q->nprobe = (int)v;
  if ((o = vs__arg(c, "exclude")))
    if ((rc = vs__obj_ids(c, "exclude", o, VS_EXCLUDE_MAX, &q->exclude, &q->n_exclude)))
      return rc;
  if ((rc = vs__arg_with(c, 0, &q->with, &q->fields, &q->n_fields)))
    return rc;
  /* Last: the filter is the one thing here that must be freed. */
  return vs__arg_filter(c, &q->filter);
}

static void qcommon_search(const qcommon *q, vs_search_params *p) {
  memset(p, 0, sizeof *p);
  p->k = q->k;
  p->ef = q->ef;
  p->nprobe = q->nprobe;
  p->with = q->with;
  p->filter = q->filter;
  p->exclude = q->exclude;
  p->n_exclude = q->n_exclude;
  p->payload_fields = q->fields;
  p->n_payload_fields = q->n_fields;
}

static int m_search(vs__call *c) {
  const msgpack_object *o;
  vs_search_params p;
  vs_hit *hits = NULL;
  size_t n = 0, dim;
  float *vec;
  qcommon q;
  int exact, rc;

  if (!(o = vs__arg(c, "vector")))
    return vs__fail(c, VS_EINVAL, "missing argument 'vector'");
  if ((rc = vs__obj_vector(c, "vector", o, &vec, &dim)))
    return rc;
  if ((rc = vs__arg_bool(c, "exact", 0, &exact)))
    return rc;
  if ((rc = qcommon_parse(c, &q)))
    return rc;
  qcommon_search(&q, &p);
  p.vector = vec;
  p.dim = dim;
  p.exact = exact;
  rc = vs_search(c->db, q.name, &p, &hits, &n, NULL, &c->err);
  vs_filter_free(q.filter);
  if (rc)
    return rc;
  vs__pack_hits(c->pk, hits, n, q.with, 0);
  vs_free(hits);
  return VS_OK;
}

int vs__search_plain(vs__call *c, vs__plain_search *ps) {
  const msgpack_object *o;
  size_t dim;
  float *vec;
  qcommon q;
  int exact;

  if (!(o = vs__arg(c, "vector")) || vs__obj_vector(c, "vector", o, &vec, &dim) ||
      vs__arg_bool(c, "exact", 0, &exact) || exact)
    return 0;
  if (qcommon_parse(c, &q))
    return 0; /* nothing to free: the filter is parsed last */
  if (q.filter || q.n_exclude) {
    vs_filter_free(q.filter);
    return 0;
  }
  ps->name = q.name;
  qcommon_search(&q, &ps->p);
  ps->p.vector = vec;
  ps->p.dim = dim;
  return 1;
}

static int m_search_batch(vs__call *c) {
  const msgpack_object *o;
  vs_search_params *ps;
  vs_hit *hits = NULL;
  size_t *off;
  uint32_t nq;
  qcommon q;
  int exact, rc;

  if (!(o = vs__arg(c, "vectors")))
    return vs__fail(c, VS_EINVAL, "missing argument 'vectors'");
  if (o->type != MSGPACK_OBJECT_ARRAY)
    return vs__fail(c, VS_EINVAL, "vectors must be an array of vectors");
  nq = o->via.array.size;
  if (nq > c->cfg->max_points || nq > VS_BATCH_MAX)
    return vs__fail(c, VS_ETOOLARGE, "vectors holds %u vectors, over the limit %zu", nq,
                    c->cfg->max_points < VS_BATCH_MAX ? c->cfg->max_points : VS_BATCH_MAX);
  if ((rc = vs__arg_bool(c, "exact", 0, &exact)))
    return rc;
  ps = msgpack_zone_malloc(c->zone, sizeof *ps * (nq + 1u));
  off = msgpack_zone_malloc(c->zone, sizeof *off * (nq + 1u));
  if (!ps || !off)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  if ((rc = qcommon_parse(c, &q)))
    return rc;
  for (uint32_t i = 0; i < nq; i++) {
    char w[40];
    float *vec;
    size_t dim;

    snprintf(w, sizeof w, "vectors[%u]", i);
    rc = vs__obj_vector(c, w, &o->via.array.ptr[i], &vec, &dim);
    if (rc) {
      vs_filter_free(q.filter);
      return rc;
    }
    qcommon_search(&q, &ps[i]);
    ps[i].vector = vec;
    ps[i].dim = dim;
    ps[i].exact = exact;
  }
  rc = nq ? vs_search_batch(c->db, q.name, ps, nq, &hits, off, &c->err) : VS_OK;
  vs_filter_free(q.filter);
  if (rc)
    return rc;
  msgpack_pack_array(c->pk, nq);
  for (uint32_t i = 0; i < nq; i++)
    vs__pack_hits(c->pk, hits + off[i], off[i + 1] - off[i], q.with, 0);
  vs_free(hits);
  return VS_OK;
}

/* Text field weights (text_search's `weights`, hybrid_search's
 * `text_weights`): a map {field: weight}. */
static int field_weights(vs__call *c, const char *what, const msgpack_object *o,
                         vs_field_weight **out, size_t *n) {
  vs_field_weight *w;
  int rc;

  if (o->type != MSGPACK_OBJECT_MAP)
    return vs__fail(c, VS_EINVAL, "%s must be a map {field: weight}", what);
  w = msgpack_zone_malloc(c->zone, sizeof *w * (o->via.map.size + 1u));
  if (!w)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    double d;

    if ((rc = vs__obj_str(c, what, &o->via.map.ptr[i].key, &w[i].field)))
      return rc;
    if ((rc = vs__obj_double(c, what, &o->via.map.ptr[i].val, &d)))
      return rc;
    w[i].weight = (float)d;
  }
  *out = w;
  *n = o->via.map.size;
  return VS_OK;
}

static int m_text_search(vs__call *c) {
  const msgpack_object *o;
  vs_text_params p;
  vs_hit *hits = NULL;
  vs_field_weight *w = NULL;
  size_t n = 0, nw = 0;
  qcommon q;
  int rc;

  memset(&p, 0, sizeof p);
  if (!(o = vs__arg(c, "query")))
    return vs__fail(c, VS_EINVAL, "missing argument 'query'");
  if (o->type != MSGPACK_OBJECT_STR)
    return vs__fail(c, VS_EINVAL, "query must be a string");
  p.text = o->via.str.ptr;
  p.len = o->via.str.size;
  if ((o = vs__arg(c, "weights")) && (rc = field_weights(c, "weights", o, &w, &nw)))
    return rc;
  if ((rc = qcommon_parse(c, &q)))
    return rc;
  p.k = q.k;
  p.with = q.with;
  p.filter = q.filter;
  p.weights = w;
  p.n_weights = nw;
  p.exclude = q.exclude;
  p.n_exclude = q.n_exclude;
  p.payload_fields = q.fields;
  p.n_payload_fields = q.n_fields;
  rc = vs_text_search(c->db, q.name, &p, &hits, &n, NULL, &c->err);
  vs_filter_free(q.filter);
  if (rc)
    return rc;
  vs__pack_hits(c->pk, hits, n, q.with, 0);
  vs_free(hits);
  return VS_OK;
}

/* Read the numbers of a small map argument such as weights {vector, text}
 * or mmr {lambda, candidates}: key i of `keys` goes to out[i]. */
static int small_map(vs__call *c, const char *what, const msgpack_object *o,
                     const char *const *keys, size_t nk, double *out) {
  if (o->type != MSGPACK_OBJECT_MAP)
    return vs__fail(c, VS_EINVAL, "%s must be a map", what);
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key;
    size_t j;
    int rc;

    for (j = 0; j < nk; j++)
      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(keys[j]) &&
          !memcmp(k->via.str.ptr, keys[j], k->via.str.size))
        break;
    if (j == nk)
      return vs__fail(c, VS_EINVAL, "%s takes %s%s%s only", what, keys[0], nk > 1 ? " and " : "",
                      nk > 1 ? keys[1] : "");
    if ((rc = vs__obj_double(c, what, &o->via.map.ptr[i].val, &out[j])))
      return rc;
  }
  return VS_OK;
}

static int m_hybrid_search(vs__call *c) {
  static const char *const wkeys[] = {"vector", "text"};
  static const char *const mkeys[] = {"lambda", "candidates"};
  const msgpack_object *o;
  vs_hybrid_params p;
  const char *fusion;
  vs_hit *hits = NULL;
  size_t n = 0;
  uint64_t v;
  qcommon q;
  int explain, rc;

  memset(&p, 0, sizeof p);
  if ((o = vs__arg(c, "vector"))) {
    float *vec;

    if ((rc = vs__obj_vector(c, "vector", o, &vec, &p.dim)))
      return rc;
    p.vector = vec;
  }
  if ((o = vs__arg(c, "query"))) {
    if (o->type != MSGPACK_OBJECT_STR)
      return vs__fail(c, VS_EINVAL, "query must be a string");
    p.text = o->via.str.ptr;
    p.len = o->via.str.size;
  }
  if (!p.vector && !p.text)
    return vs__fail(c, VS_EINVAL, "hybrid_search needs a vector, a query or both");
  if ((rc = vs__arg_str(c, "fusion", 0, "rrf", &fusion)))
    return rc;
  if (!strcmp(fusion, "rrf"))
    p.fusion = VS_FUSION_RRF;
  else if (!strcmp(fusion, "weighted"))
    p.fusion = VS_FUSION_WEIGHTED;
  else
    return vs__fail(c, VS_EINVAL, "fusion must be \"rrf\" or \"weighted\"");
  if ((rc = vs__arg_double(c, "rrf_k", 60, &p.rrf_k)))
    return rc;
  if (p.rrf_k < 0)
    return vs__fail(c, VS_EINVAL, "rrf_k must be >= 0");
  if ((o = vs__arg(c, "weights"))) {
    double w[2] = {1, 1};

    if ((rc = small_map(c, "weights", o, wkeys, 2, w)))
      return rc;
    p.vector_weight = w[0];
    p.text_weight = w[1];
  }
  if ((o = vs__arg(c, "text_weights"))) {
    vs_field_weight *fw;

    if ((rc = field_weights(c, "text_weights", o, &fw, &p.n_weights)))
      return rc;
    p.weights = fw;
  }
  if ((rc = vs__arg_uint(c, "candidates", 0, 1, c->cfg->max_k, 1, &v)))
    return rc;
  p.candidates = (size_t)v;
  if ((rc = vs__arg_str(c, "group_by", 0, NULL, &p.group_by)))
    return rc;
  if ((rc = vs__arg_uint(c, "group_size", 1, 1, c->cfg->max_k, 1, &v)))
    return rc;
  p.group_size = (size_t)v;
  if ((o = vs__arg(c, "mmr"))) {
    double m[2] = {0, 0};

    if ((rc = small_map(c, "mmr", o, mkeys, 2, m)))
      return rc;
    if (!(m[0] > 0 && m[0] <= 1))
      return vs__fail(c, VS_EINVAL, "mmr.lambda must be in (0, 1]");
    if (m[1] < 0 || m[1] != floor(m[1]))
      return vs__fail(c, VS_EINVAL, "mmr.candidates must be a whole number >= 0");
    if (m[1] > (double)c->cfg->max_k)
      return vs__fail(c, VS_ETOOLARGE, "mmr.candidates is over the limit %zu", c->cfg->max_k);
    p.mmr_lambda = m[0];
    p.mmr_candidates = (size_t)m[1];
  }
  if ((rc = vs__arg_bool(c, "explain", 0, &explain)))
    return rc;
  if ((rc = qcommon_parse(c, &q)))
    return rc;
  p.k = q.k;
  p.ef = q.ef;
  p.nprobe = q.nprobe;
  p.filter = q.filter;
  p.exclude = q.exclude;
  p.n_exclude = q.n_exclude;
  p.with = q.with;
  p.payload_fields = q.fields;
  p.n_payload_fields = q.n_fields;
  p.explain = explain;
  if (p.candidates == 0)
    p.candidates = q.k > 100 ? q.k : 100;
  rc = vs_hybrid_search(c->db, q.name, &p, &hits, &n, NULL, &c->err);
  vs_filter_free(q.filter);
  if (rc)
    return rc;
  vs__pack_hits(c->pk, hits, n, q.with,
                (explain ? VS__HITS_EXPLAIN : 0) | (p.group_by ? VS__HITS_GROUP : 0));
  vs_free(hits);
  return VS_OK;
}

/* Split recommend examples into ids and vectors (concatenated in the zone,
 * all of one dimension). */
static int examples(vs__call *c, const char *what, vs_id **ids, size_t *n_ids, float **vecs,
                    size_t *n_vecs, size_t *dim) {
  const msgpack_object *o = vs__arg(c, what);
  uint32_t n;
  float *all = NULL;
  int rc;

  *ids = NULL, *n_ids = 0, *vecs = NULL, *n_vecs = 0;
  if (!o)
    return VS_OK;
  if (o->type != MSGPACK_OBJECT_ARRAY)
    return vs__fail(c, VS_EINVAL, "%s must be an array of ids or vectors", what);
  n = o->via.array.size;
  if (n > c->cfg->max_points)
    return vs__fail(c, VS_ETOOLARGE, "%s holds %u examples, over the limit %zu", what, n,
                    c->cfg->max_points);
  *ids = msgpack_zone_malloc(c->zone, sizeof **ids * (n + 1u));
  if (!*ids)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < n; i++) {
    const msgpack_object *e = &o->via.array.ptr[i];
    char w[40];

    snprintf(w, sizeof w, "%s[%u]", what, i);
    if (vs__obj_is_vector(e)) {
      float *v;
      size_t d;

      if ((rc = vs__obj_vector(c, w, e, &v, &d)))
        return rc;
      if (*dim == 0)
        *dim = d;
      if (d != *dim || d == 0)
        return vs__fail(c, VS_EDIM, "%s has %zu components, other examples %zu", w, d, *dim);
      if (!all) {
        /* Room for the vector-shaped examples only: ids take none. */
        uint32_t nv = 0;
        for (uint32_t j = i; j < n; j++)
          nv += vs__obj_is_vector(&o->via.array.ptr[j]);
        all = msgpack_zone_malloc(c->zone, sizeof *all * d * nv);
        if (!all)
          return vs__fail(c, VS_ENOMEM, "out of memory");
      }
      memcpy(all + *n_vecs * d, v, sizeof *v * d);
      (*n_vecs)++;
    } else if ((rc = vs__obj_id(c, w, e, &(*ids)[(*n_ids)++]))) {
      return rc;
    }
  }
  *vecs = all;
  return VS_OK;
}

static int m_recommend(vs__call *c) {
  vs_recommend_params p;
  vs_id *pi, *ni;
  float *pv, *nv;
  size_t npi, nni, npv, nnv, dim = 0;
  vs_hit *hits = NULL;
  size_t n = 0;
  qcommon q;
  int rc;

  if ((rc = examples(c, "positive", &pi, &npi, &pv, &npv, &dim)))
    return rc;
  if ((rc = examples(c, "negative", &ni, &nni, &nv, &nnv, &dim)))
    return rc;
  if (npi + npv == 0)
    return vs__fail(c, VS_EINVAL, "recommend needs at least one positive example");
  if ((rc = qcommon_parse(c, &q)))
    return rc;
  memset(&p, 0, sizeof p);
  p.positive = pi, p.n_positive = npi, p.negative = ni, p.n_negative = nni;
  p.positive_vectors = pv, p.n_positive_vectors = npv;
  p.negative_vectors = nv, p.n_negative_vectors = nnv;
  p.dim = dim;
  p.k = q.k, p.ef = q.ef, p.nprobe = q.nprobe, p.filter = q.filter;
  p.exclude = q.exclude, p.n_exclude = q.n_exclude;
  p.with = q.with, p.payload_fields = q.fields, p.n_payload_fields = q.n_fields;
  rc = vs_recommend(c->db, q.name, &p, &hits, &n, NULL, &c->err);
  vs_filter_free(q.filter);
  if (rc)
    return rc;
  vs__pack_hits(c->pk, hits, n, q.with, 0);
  vs_free(hits);
  return VS_OK;
}

/* ---- the table ---------------------------------------------------------- */

#define QUERY_ARGS "collection k filter ef nprobe exclude with_payload with_vector"

const vs__method vs__methods[] = {
    {"ping", NULL, VS__ON_LOOP, ""},
    {"auth", NULL, VS__ON_LOOP, "token"},
    {"stats", NULL, VS__ON_LOOP, ""},
    {"create_collection", m_create_collection, VS__ON_WORKER,
     "name dim metric index text_fields language bm25"},
    {"drop_collection", m_drop_collection, VS__ON_WORKER, "name"},
    {"list_collections", m_list_collections, VS__ON_WORKER, "", 1},
    {"describe_collection", m_describe_collection, VS__ON_WORKER, "name", 1},
    {"upsert", m_upsert, VS__ON_WORKER, "collection points"},
    {"delete", m_delete, VS__ON_WORKER, "collection ids filter"},
    {"get", m_get, VS__ON_WORKER, "collection ids with_vector with_payload", 1},
    {"count", m_count, VS__ON_WORKER, "collection filter", 1},
    {"search", m_search, VS__ON_WORKER, QUERY_ARGS " vector exact", 1},
    {"search_batch", m_search_batch, VS__ON_WORKER, QUERY_ARGS " vectors exact", 1},
    {"text_search", m_text_search, VS__ON_WORKER, QUERY_ARGS " query weights", 1},
    {"hybrid_search", m_hybrid_search, VS__ON_WORKER,
     QUERY_ARGS
     " vector query fusion rrf_k weights text_weights candidates group_by group_size mmr "
     "explain",
     1},
    {"recommend", m_recommend, VS__ON_WORKER, QUERY_ARGS " positive negative", 1},
    {"rebuild", m_rebuild, VS__ON_WORKER, "collection index"},
};
const size_t vs__n_methods = sizeof vs__methods / sizeof vs__methods[0];

const vs__method *vs__method_find(const char *name, size_t len) {
  for (size_t i = 0; i < vs__n_methods; i++)
    if (strlen(vs__methods[i].name) == len && !memcmp(vs__methods[i].name, name, len))
      return &vs__methods[i];
  return NULL;
}
