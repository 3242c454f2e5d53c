/*
 * hybrid.c: queries built on the vector and text legs: hybrid search
 * (fusion, explain, MMR, group-by), recommend-by-example and batches.
 *
 * Both legs of a hybrid search run in one read transaction, so they see
 * the same points; each leg runs as vs_search / vs_text_search would, to
 * `candidates` deep, under the same filter and exclusions.  Fusion, MMR
 * and grouping then work on the fused candidate list only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/filter.h"
#include "engine/query.h"
#include "engine/storage.h"
#include "index/distance.h"

#define DEFAULT_DEPTH 100
#define DEFAULT_RRF_K 60.0

/* One fused candidate. */
typedef struct fused {
  uint64_t pid;
  double score;
  uint32_t vrank, trank; /* from 1; 0 = absent from that leg */
  float vscore, tscore;
  uint32_t group;
} fused;

static int by_pid(const void *a, const void *b) {
  const fused *x = a, *y = b;
  return (x->pid > y->pid) - (x->pid < y->pid);
}

/* A rank for ordering: absent counts as worse than any. */
static uint64_t rank_key(uint32_t r) {
  return r ? r : UINT64_MAX;
}

/* Fused score descending; then the better vector rank, the better text
 * rank, the older point. */
static int by_fused(const void *a, const void *b) {
  const fused *x = a, *y = b;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  if (rank_key(x->vrank) != rank_key(y->vrank))
    return rank_key(x->vrank) < rank_key(y->vrank) ? -1 : 1;
  if (rank_key(x->trank) != rank_key(y->trank))
    return rank_key(x->trank) < rank_key(y->trank) ? -1 : 1;
  return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Merge the two ranked legs into one list of distinct pids. */
static fused *merge_legs(const vs__scored *v, size_t nv, const vs__scored *t, size_t nt,
                         size_t *n) {
  fused *f = vs__calloc(nv + nt ? nv + nt : 1, sizeof(*f));
  size_t m = 0;

  if (f == NULL)
    return NULL;
  for (size_t i = 0; i < nv; i++)
    f[m++] = (fused){v[i].pid, 0, (uint32_t)i + 1, 0, v[i].score, 0, 0};
  for (size_t i = 0; i < nt; i++)
    f[m++] = (fused){t[i].pid, 0, 0, (uint32_t)i + 1, 0, t[i].score, 0};
  qsort(f, m, sizeof(*f), by_pid);
  *n = 0;
  for (size_t i = 0; i < m; i++) {
    if (*n && f[*n - 1].pid == f[i].pid) {
      fused *d = &f[*n - 1];
      if (f[i].vrank)
        d->vrank = f[i].vrank, d->vscore = f[i].vscore;
      if (f[i].trank)
        d->trank = f[i].trank, d->tscore = f[i].tscore;
    } else {
      f[(*n)++] = f[i];
    }
  }
  return f;
}

/* Min-max normalisation of a leg's scores to [0, 1], 1 the best; `lower`
 * when lower scores are better (l2 distances).  All equal: 1. */
static double normalised(float s, float lo, float hi, int lower) {
  if (!(hi > lo))
    return 1.0;
  return lower ? ((double)hi - s) / ((double)hi - lo) : ((double)s - lo) / ((double)hi - lo);
}

static void fuse(fused *f, size_t n, const vs_hybrid_params *p, double wv, double wt,
                 const vs__scored *v, size_t nv, const vs__scored *t, size_t nt, int v_lower) {
  float vlo = 0, vhi = 0, tlo = 0, thi = 0;
  double rrf_k = p->rrf_k > 0 ? p->rrf_k : DEFAULT_RRF_K;

  for (size_t i = 0; i < nv; i++) {
    vlo = i == 0 || v[i].score < vlo ? v[i].score : vlo;
    vhi = i == 0 || v[i].score > vhi ? v[i].score : vhi;
  }
  for (size_t i = 0; i < nt; i++) {
    tlo = i == 0 || t[i].score < tlo ? t[i].score : tlo;
    thi = i == 0 || t[i].score > thi ? t[i].score : thi;
  }
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    if (p->fusion == VS_FUSION_RRF) {
      if (f[i].vrank)
        s += wv / (rrf_k + f[i].vrank);
      if (f[i].trank)
        s += wt / (rrf_k + f[i].trank);
    } else {
      if (f[i].vrank)
        s += wv * normalised(f[i].vscore, vlo, vhi, v_lower);
      if (f[i].trank)
        s += wt * normalised(f[i].tscore, tlo, thi, 0);
    }
    f[i].score = s;
  }
  qsort(f, n, sizeof(*f), by_fused);
}

/* ---- MMR ------------------------------------------------------------------------------------ */

/* Similarity for MMR: higher is more similar.  q normalised for cosine. */
static double similarity(vs_metric m, const float *a, const float *b, uint32_t dim, double nb) {
  float s;

  if (m == VS_METRIC_L2) {
    vs__l2sqr_ny(&s, a, b, dim, 1);
    return -(double)s;
  }
  vs__ip_ny(&s, a, b, dim, 1);
  return m == VS_METRIC_COSINE ? (nb > 0 ? s / nb : 0) : s;
}

/* Re-rank f[0..n) greedily by lambda * sim(q, d) - (1 - lambda) * max over
 * chosen c of sim(d, c), from the stored vectors; the first `want` picks
 * come first, in pick order, the rest after in their fused order. */
static int mmr(MDB_txn *txn, const vs__coll *c, const float *q, double lambda, fused *f, size_t n,
               size_t want, vs_error *err) {
  const float **x = vs__calloc(n ? n : 1, sizeof(*x));
  double *norm = vs__calloc(n ? n : 1, sizeof(*norm)), *rel = vs__calloc(n ? n : 1, sizeof(*rel));
  double *maxsim = vs__calloc(n ? n : 1, sizeof(*maxsim));
  float *qn = vs__malloc(c->dim * sizeof(float));
  int rc = VS_OK;

  if (!x || !norm || !rel || !maxsim || !qn) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  memcpy(qn, q, c->dim * sizeof(float));
  if (c->metric == VS_METRIC_COSINE) {
    float qq = sqrtf(vs__norm_sqr(qn, c->dim));
    for (uint32_t j = 0; j < c->dim && qq > 0; j++)
      qn[j] /= qq;
  }
  for (size_t i = 0; i < n; i++) {
    if ((rc = vs__vector_get(txn, c, f[i].pid, &x[i], err)))
      goto out;
    norm[i] = sqrt((double)vs__norm_sqr(x[i], c->dim));
    rel[i] = similarity(c->metric, qn, x[i], c->dim, norm[i]);
    maxsim[i] = -INFINITY;
  }
  if (want > n)
    want = n;
  for (size_t k = 0; k < want; k++) {
    size_t best = k;
    double best_v = -INFINITY;

    for (size_t i = k; i < n; i++) {
      double v = lambda * rel[i] - (1 - lambda) * (k ? maxsim[i] : 0);
      if (v > best_v) { /* ties: the earlier in fused order */
        best_v = v;
        best = i;
      }
    }
    /* Move the pick to position k, keeping the rest in fused order. */
    if (best != k) {
      fused fb = f[best];
      const float *xb = x[best];
      double nb = norm[best], rb = rel[best], mb = maxsim[best];
      memmove(&f[k + 1], &f[k], (best - k) * sizeof(*f));
      memmove(&x[k + 1], &x[k], (best - k) * sizeof(*x));
      memmove(&norm[k + 1], &norm[k], (best - k) * sizeof(*norm));
      memmove(&rel[k + 1], &rel[k], (best - k) * sizeof(*rel));
      memmove(&maxsim[k + 1], &maxsim[k], (best - k) * sizeof(*maxsim));
      f[k] = fb, x[k] = xb, norm[k] = nb, rel[k] = rb, maxsim[k] = mb;
    }
    for (size_t i = k + 1; i < n; i++) {
      double s = similarity(c->metric, x[i], x[k], c->dim,
                            c->metric == VS_METRIC_COSINE ? norm[i] * norm[k] : 0);
      if (s > maxsim[i])
        maxsim[i] = s;
    }
  }
out:
  vs__free((void *)x);
  vs__free(norm);
  vs__free(rel);
  vs__free(maxsim);
  vs__free(qn);
  return rc;
}

/* ---- group-by --------------------------------------------------------------------------- */

typedef struct group_key {
  const char *field;
  size_t field_len;
  int found;
  vs__scalar v;
} group_key;

static int group_field(void *ctx, const char *key, size_t len) {
  const group_key *g = ctx;
  return len == g->field_len && memcmp(key, g->field, len) == 0 ? 0 : -1;
}

static int group_value(void *ctx, int slot, const vs__scalar *v) {
  group_key *g = ctx;
  (void)slot;
  if (!g->found) { /* an array groups by its first value */
    g->v = *v;
    vs__scalar_canon(&g->v);
    g->found = 1;
  }
  return VS_OK;
}

/* Keep the best group_size of each group_by value, k groups, best group
 * first; f is compacted to the kept hits, in group order. */
static int group(MDB_txn *txn, const vs__coll *c, const vs_hybrid_params *p, fused *f, size_t *n,
                 vs_error *err) {
  size_t size = p->group_size ? p->group_size : 1, ngroups = 0, m = 0;
  group_key *keys = vs__calloc(*n ? *n : 1, sizeof(*keys));
  uint32_t *gof = vs__malloc((*n ? *n : 1) * sizeof(*gof)), *count = NULL, *rep = NULL;
  int rc = VS_OK;

  if (keys == NULL || gof == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  count = vs__calloc(*n ? *n : 1, sizeof(*count));
  rep = vs__calloc(*n ? *n : 1, sizeof(*rep));
  if (count == NULL || rep == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < *n; i++) {
    MDB_val k = {8, &f[i].pid}, v;
    vs__prec pr;
    size_t g;

    if (mdb_get(txn, c->dbi[VS__DBI_PTS], &k, &v) || vs__point_parse(&v, &pr)) {
      rc = vs__err(err, VS_ECORRUPT, "point %llu is missing or malformed",
                   (unsigned long long)f[i].pid);
      goto out;
    }
    keys[i] = (group_key){p->group_by, strlen(p->group_by), 0, {0}};
    vs__payload_walk(pr.payload, pr.payload_len, group_field, group_value, &keys[i]);
    /* Its group: the first earlier hit with an equal value (a hit without
     * the field is a group of its own). */
    for (g = 0; keys[i].found && g < ngroups; g++)
      if (keys[rep[g]].found && vs__scalar_cmp(&keys[i].v, &keys[rep[g]].v) == 0)
        break;
    if (!keys[i].found || g == ngroups) {
      g = ngroups++;
      rep[g] = (uint32_t)i;
    }
    gof[i] = (uint32_t)g;
  }
  /* Groups are numbered in the order of their best hit: keep the first
   * p->k groups and the first `size` hits of each, grouped together. */
  for (size_t g = 0; g < ngroups && g < p->k; g++)
    for (size_t i = 0; i < *n; i++)
      if (gof[i] == g && count[g] < size) {
        count[g]++;
        keys[m].found = (int)i; /* reuse: the index of the m-th kept hit */
        m++;
      }
  {
    fused *kept = vs__malloc((m ? m : 1) * sizeof(*kept));
    if (kept == NULL) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      goto out;
    }
    for (size_t j = 0; j < m; j++) {
      kept[j] = f[keys[j].found];
      kept[j].group = gof[keys[j].found];
    }
    memcpy(f, kept, m * sizeof(*kept));
    vs__free(kept);
    *n = m;
  }
out:
  vs__free(keys);
  vs__free(gof);
  vs__free(count);
  vs__free(rep);
  return rc;
}

/* Raw query or example vectors: n x dim finite floats. */
static int vectors_check(const float *v, size_t n, size_t dim, const char *what, vs_error *err) {
  if (n && (v == NULL || dim == 0))
    return vs__err(err, VS_EINVAL, "%s vectors are NULL or dim is 0", what);
  for (size_t i = 0; i < n * dim; i++)
    if (!isfinite(v[i]))
      return vs__err(err, VS_EINVAL, "%s vector %zu has a NaN or infinite component", what,
                     i / dim);
  return VS_OK;
}

/* ---- hybrid search ------------------------------------------------------------------------ */

typedef struct hybrid_ctx {
  const vs_hybrid_params *p;
  int retries;
  vs_hit *hits;
  size_t n;
  vs_hybrid_info info;
} hybrid_ctx;

static void note(hybrid_ctx *h, const char *s) {
  if (h->info.note[0] == '\0')
    strncpy(h->info.note, s, sizeof(h->info.note) - 1);
}

static int hybrid_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  hybrid_ctx *h = ctx;
  const vs_hybrid_params *p = h->p;
  size_t depth = p->candidates ? p->candidates : DEFAULT_DEPTH;
  double wv = p->vector_weight, wt = p->text_weight;
  vs__scored *v = NULL, *t = NULL, *top = NULL;
  size_t nv = 0, nt = 0, n = 0;
  vs__pidset ex = {NULL, 0};
  fused *f = NULL;
  int rc = VS_OK;

  if (depth < p->k) /* a leg deeper than k, or fewer than k hits could come back */
    depth = p->k;
  vs__free(h->hits);
  h->hits = NULL;
  h->n = 0;
  memset(&h->info, 0, sizeof(h->info));
  strcpy(h->info.vector.plan, "none");
  strcpy(h->info.text.plan, "none");
  if (wv == 0 && wt == 0)
    wv = wt = 1;
  /* The exclusions, resolved once for both legs. */
  if ((rc = vs__exclude_resolve(txn, c, p->exclude, p->n_exclude, &ex, err)))
    goto out;
  if (p->vector && c->dim == 0) {
    note(h, "vector leg dropped: the collection is text-only");
  } else if (p->vector) {
    vs_search_params vp = {p->vector, p->dim, depth,     p->ef,      p->nprobe,
                           0,         0,      p->filter, p->exclude, p->n_exclude};
    rc = vs__vector_leg(db, txn, c, &vp, &ex, &h->retries, &v, &nv, &h->info.vector, err);
    if (rc)
      goto out;
    if (nv == 0)
      note(h, "vector leg empty: no point passes");
  }
  if (p->text && c->n_text == 0) {
    note(h, "text leg dropped: the collection has no text fields");
  } else if (p->text) {
    vs_text_params tp = {p->text,    p->len,       depth,      0,           p->filter,
                         p->weights, p->n_weights, p->exclude, p->n_exclude};
    rc = vs__text_leg(db, txn, c, &tp, &ex, &t, &nt, &h->info.text, err);
    if (rc)
      goto out;
    if (nt == 0)
      note(h, strcmp(h->info.text.plan, "empty") == 0 && h->info.text.candidates == 0
                  ? "text leg empty: no query term matches (or only stopwords)"
                  : "text leg empty");
  }
  strcpy(h->info.legs, nv && nt ? "vector+text" : nv ? "vector" : nt ? "text" : "none");
  if ((f = merge_legs(v, nv, t, nt, &n)) == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  fuse(f, n, p, wv, wt, v, nv, t, nt, c->metric == VS_METRIC_L2);
  if (p->mmr_lambda > 0 && n) {
    size_t pool = p->mmr_candidates && p->mmr_candidates < n ? p->mmr_candidates : n;
    if (c->dim == 0) {
      rc = vs__err(err, VS_EINVAL, "MMR needs vectors: '%s' is text-only", c->name);
      goto out;
    }
    /* Re-rank the pool; candidates past it keep their fused order after it. */
    rc = mmr(txn, c, p->vector, p->mmr_lambda, f, pool, p->group_by ? pool : p->k, err);
    if (rc)
      goto out;
  }
  if (p->group_by) {
    if ((rc = group(txn, c, p, f, &n, err)))
      goto out;
  } else if (n > p->k) {
    n = p->k;
  }
  if (n) {
    if ((top = vs__malloc(n * sizeof(*top))) == NULL) {
      rc = vs__err(err, VS_ENOMEM, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      top[i] = (vs__scored){(float)f[i].score, f[i].pid};
    rc = vs__hits_make(txn, c, top, n, n, 0, p->with, p->payload_fields, p->n_payload_fields,
                       &h->hits, &h->n, err);
    for (size_t i = 0; rc == VS_OK && i < h->n; i++) {
      vs_hit *x = &h->hits[i];
      x->group = p->group_by ? f[i].group : 0;
      if (p->explain) {
        x->vector_rank = f[i].vrank;
        x->text_rank = f[i].trank;
        x->vector_score = f[i].vscore;
        x->text_score = f[i].tscore;
      }
    }
  }
out:
  vs__pidset_free(&ex);
  vs__free(v);
  vs__free(t);
  vs__free(f);
  vs__free(top);
  return rc;
}

int vs_hybrid_search(vs_db *db, const char *name, const vs_hybrid_params *p, vs_hit **hits,
                     size_t *n, vs_hybrid_info *info, vs_error *err) {
  hybrid_ctx h;
  int rc;

  if (hits)
    *hits = NULL;
  if (n)
    *n = 0;
  if (db == NULL || p == NULL || hits == NULL || n == NULL)
    return vs__err(err, VS_EINVAL, "database handle, parameters or outputs are NULL");
  if (p->vector == NULL && p->text == NULL)
    return vs__err(err, VS_EINVAL, "hybrid search needs a vector, a text, or both");
  if (p->k == 0)
    return vs__err(err, VS_EINVAL, "k must be at least 1");
  if (p->k > VS_K_MAX || p->candidates > VS_K_MAX)
    return vs__err(err, VS_ETOOLARGE, "k and candidates are limited to %d", VS_K_MAX);
  if (p->fusion != VS_FUSION_RRF && p->fusion != VS_FUSION_WEIGHTED)
    return vs__err(err, VS_EINVAL, "fusion must be rrf or weighted");
  if (!isfinite(p->rrf_k) || p->rrf_k < 0)
    return vs__err(err, VS_EINVAL, "rrf_k must be positive (0 = 60)");
  if (!isfinite(p->vector_weight) || !isfinite(p->text_weight) || p->vector_weight < 0 ||
      p->text_weight < 0)
    return vs__err(err, VS_EINVAL, "leg weights must be finite and >= 0");
  if (!isfinite(p->mmr_lambda) || p->mmr_lambda < 0 || p->mmr_lambda > 1)
    return vs__err(err, VS_EINVAL, "mmr_lambda must be in [0, 1] (0: no MMR)");
  if (p->mmr_lambda > 0 && p->vector == NULL)
    return vs__err(err, VS_EINVAL, "MMR needs the query vector");
  if (p->group_by && p->group_by[0] == '\0')
    return vs__err(err, VS_EINVAL, "group_by names no field");
  if (p->ef < 0 || p->nprobe < 0 || p->ef > VS_EF_MAX || p->nprobe > VS_EF_MAX)
    return vs__err(err, VS_EINVAL, "ef and nprobe must be in 0..%d", VS_EF_MAX);
  if (p->with & ~(unsigned)(VS_GET_VECTOR | VS_GET_PAYLOAD))
    return vs__err(err, VS_EINVAL, "unknown 'with' flags 0x%x", p->with);
  if (p->vector && (rc = vectors_check(p->vector, 1, p->dim, "query", err)))
    return rc;
  if (p->text && p->len > VS_QUERY_TEXT_MAX)
    return vs__err(err, VS_ETOOLARGE, "the query text has %zu bytes, the limit is %u", p->len,
                   VS_QUERY_TEXT_MAX);
  if (p->text && p->len && vs__utf8_check(p->text, p->len))
    return vs__err(err, VS_EINVAL, "the query text is not valid UTF-8");
  for (size_t i = 0; i < p->n_weights; i++)
    if (p->weights == NULL || p->weights[i].field == NULL || !isfinite(p->weights[i].weight) ||
        p->weights[i].weight < 0)
      return vs__err(err, VS_EINVAL, "weight %zu must name a field and be finite and >= 0", i);
  if ((rc = vs__exclude_check(p->exclude, p->n_exclude, err)))
    return rc;
  if ((rc = vs__fields_check(p->payload_fields, p->n_payload_fields, err)))
    return rc;
  memset(&h, 0, sizeof(h));
  h.p = p;
  rc = vs__coll_read(db, name, hybrid_step, &h, err);
  if (rc || h.n == 0) {
    vs__free(h.hits);
    h.hits = NULL;
    h.n = 0;
  }
  if (rc)
    return rc;
  *hits = h.hits;
  *n = h.n;
  if (info)
    *info = h.info;
  return VS_OK;
}

/* ---- recommend ------------------------------------------------------------------------------ */

typedef struct rec_ctx {
  const vs_recommend_params *p;
  vs_id *exclude; /* p->exclude and the example ids */
  size_t n_exclude;
  int retries;
  vs_hit *hits;
  size_t n;
  vs_search_info info;
} rec_ctx;

/* Add the examples (ids, then raw vectors) to sum; *count += how many.
 * Under cosine each example counts by its direction (normalised). */
static int add_examples(MDB_txn *txn, const vs__coll *c, const vs_id *ids, size_t nids,
                        const float *vecs, size_t nvecs, double *sum, size_t *count,
                        vs_error *err) {
  for (size_t i = 0; i < nids + nvecs; i++) {
    const float *x;
    double norm = 1;

    if (i < nids) {
      uint8_t key[VS__ID_KEY_MAX];
      MDB_val k = {vs__id_key(&ids[i], key), key}, v;
      uint64_t pid;
      int mrc = mdb_get(txn, c->dbi[VS__DBI_IDS], &k, &v), rc;

      if (mrc == MDB_NOTFOUND)
        return vs__err(err, VS_ENOTFOUND, "example %zu has no point", i);
      if (mrc || v.mv_size != 8)
        return mrc ? vs__mdb_err(err, mrc, "look up an example")
                   : vs__err(err, VS_ECORRUPT, "id record has %zu bytes", v.mv_size);
      memcpy(&pid, v.mv_data, 8);
      if ((rc = vs__vector_get(txn, c, pid, &x, err)))
        return rc;
    } else {
      x = vecs + (i - nids) * c->dim;
    }
    if (c->metric == VS_METRIC_COSINE)
      norm = sqrt((double)vs__norm_sqr(x, c->dim));
    if (!(norm > 0))
      return vs__err(err, VS_EINVAL, "a zero example vector has no cosine direction");
    for (uint32_t j = 0; j < c->dim; j++)
      sum[j] += x[j] / norm;
    (*count)++;
  }
  return VS_OK;
}

static int recommend_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  rec_ctx *r = ctx;
  const vs_recommend_params *p = r->p;
  double *pos = NULL, *neg = NULL;
  float *q = NULL;
  vs__scored *top = NULL;
  size_t np = 0, nn = 0, n = 0;
  int rc;

  vs__free(r->hits);
  r->hits = NULL;
  r->n = 0;
  if (c->dim == 0)
    return vs__err(err, VS_EINVAL, "'%s' is a text-only collection: it has no vectors", c->name);
  if ((p->n_positive_vectors || p->n_negative_vectors) && p->dim != c->dim)
    return vs__err(err, VS_EDIM, "example vectors have %zu components, the collection has dim %u",
                   p->dim, c->dim);
  pos = vs__calloc(c->dim, sizeof(*pos));
  neg = vs__calloc(c->dim, sizeof(*neg));
  q = vs__malloc(c->dim * sizeof(*q));
  if (!pos || !neg || !q) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  if ((rc = add_examples(txn, c, p->positive, p->n_positive, p->positive_vectors,
                         p->n_positive_vectors, pos, &np, err)) ||
      (rc = add_examples(txn, c, p->negative, p->n_negative, p->negative_vectors,
                         p->n_negative_vectors, neg, &nn, err)))
    goto out;
  /* mean(pos) + (mean(pos) - mean(neg)), or mean(pos) alone. */
  for (uint32_t j = 0; j < c->dim; j++)
    q[j] = (float)(nn ? 2 * pos[j] / (double)np - neg[j] / (double)nn : pos[j] / (double)np);
  {
    vs_search_params sp = {q, c->dim, p->k,      p->ef,      p->nprobe,
                           0, 0,      p->filter, r->exclude, r->n_exclude};
    rc = vs__vector_leg(db, txn, c, &sp, NULL, &r->retries, &top, &n, &r->info, err);
  }
  if (rc == VS_OK && n)
    rc = vs__hits_make(txn, c, top, n, n, 0, p->with, p->payload_fields, p->n_payload_fields,
                       &r->hits, &r->n, err);
out:
  vs__free(pos);
  vs__free(neg);
  vs__free(q);
  vs__free(top);
  return rc;
}

static int ids_check(const vs_id *ids, size_t n, const char *what, vs_error *err) {
  vs_error e = VS_ERROR_INIT;
  int rc = vs__exclude_check(ids, n, &e);
  return rc ? vs__err(err, rc, "%s examples: %s", what, e.message) : VS_OK;
}

int vs_recommend(vs_db *db, const char *name, const vs_recommend_params *p, vs_hit **hits,
                 size_t *n, vs_search_info *info, vs_error *err) {
  rec_ctx r;
  size_t m = 0;
  int rc;

  if (hits)
    *hits = NULL;
  if (n)
    *n = 0;
  if (db == NULL || p == NULL || hits == NULL || n == NULL)
    return vs__err(err, VS_EINVAL, "database handle, parameters or outputs are NULL");
  if (p->n_positive + p->n_positive_vectors == 0)
    return vs__err(err, VS_EINVAL, "recommend needs at least one positive example");
  if (p->k == 0)
    return vs__err(err, VS_EINVAL, "k must be at least 1");
  if (p->k > VS_K_MAX)
    return vs__err(err, VS_ETOOLARGE, "k is %zu, the limit is %d", p->k, VS_K_MAX);
  if (p->ef < 0 || p->nprobe < 0 || p->ef > VS_EF_MAX || p->nprobe > VS_EF_MAX)
    return vs__err(err, VS_EINVAL, "ef and nprobe must be in 0..%d", VS_EF_MAX);
  if (p->with & ~(unsigned)(VS_GET_VECTOR | VS_GET_PAYLOAD))
    return vs__err(err, VS_EINVAL, "unknown 'with' flags 0x%x", p->with);
  if ((rc = ids_check(p->positive, p->n_positive, "positive", err)) ||
      (rc = ids_check(p->negative, p->n_negative, "negative", err)) ||
      (rc = vs__exclude_check(p->exclude, p->n_exclude, err)) ||
      (rc = vectors_check(p->positive_vectors, p->n_positive_vectors, p->dim, "positive", err)) ||
      (rc = vectors_check(p->negative_vectors, p->n_negative_vectors, p->dim, "negative", err)) ||
      (rc = vs__fields_check(p->payload_fields, p->n_payload_fields, err)))
    return rc;
  if (p->n_exclude + p->n_positive + p->n_negative > VS_EXCLUDE_MAX)
    return vs__err(err, VS_ETOOLARGE, "too many examples and exclusions (limit %d)",
                   VS_EXCLUDE_MAX);
  memset(&r, 0, sizeof(r));
  r.p = p;
  r.exclude = vs__malloc((p->n_exclude + p->n_positive + p->n_negative + 1) * sizeof(vs_id));
  if (r.exclude == NULL)
    return vs__err(err, VS_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->n_exclude; i++)
    r.exclude[m++] = p->exclude[i];
  for (size_t i = 0; i < p->n_positive; i++)
    r.exclude[m++] = p->positive[i];
  for (size_t i = 0; i < p->n_negative; i++)
    r.exclude[m++] = p->negative[i];
  r.n_exclude = m;
  rc = vs__coll_read(db, name, recommend_step, &r, err);
  vs__free(r.exclude);
  if (rc || r.n == 0) {
    vs__free(r.hits);
    r.hits = NULL;
    r.n = 0;
  }
  if (rc)
    return rc;
  *hits = r.hits;
  *n = r.n;
  if (info)
    *info = r.info;
  return VS_OK;
}

/* ---- batches --------------------------------------------------------------------------------- */

int vs__search_same_shape(const vs_search_params *a, const vs_search_params *b) {
  if (a->k != b->k || a->ef != b->ef || a->nprobe != b->nprobe || a->exact != b->exact ||
      a->with != b->with || a->filter != b->filter || a->n_payload_fields != b->n_payload_fields)
    return 0;
  for (size_t i = 0; i < a->n_payload_fields; i++)
    if (strcmp(a->payload_fields[i], b->payload_fields[i]) != 0)
      return 0;
  return 1;
}

#define SHARED_CHUNK 256 /* queries of one vs__search_shared call */

/* Can a batch of one shape take vs__search_shared?  Plain queries only
 * (no filter, exclusions or exact scan), with arguments vs_search would
 * take: the others get vs_search's own answer. */
static int shared_path(const vs_search_params *p, size_t nq) {
  if (nq < 2 || p->filter || p->exact || vs__search_check(p, NULL) != VS_OK)
    return 0;
  for (size_t i = 0; i < nq; i++)
    if (p[i].n_exclude)
      return 0;
  return 1;
}

/* Bytes of one hit's out-of-line data (id string, payload, vector). */
static size_t hit_bytes(const vs_hit *h, size_t *floats) {
  *floats += h->vector ? h->dim : 0;
  return (h->id.kind == VS_ID_STR ? h->id.len + 1 : 0) + h->payload_len;
}

int vs_search_batch(vs_db *db, const char *name, const vs_search_params *p, size_t nq,
                    vs_hit **hits, size_t *off, vs_error *err) {
  vs_hit **part = NULL;
  size_t *cnt = NULL, total = 0, bytes = 0, floats = 0, head;
  int *status = NULL, rc = VS_OK;
  vs_error *errs = NULL;

  if (hits)
    *hits = NULL;
  if (db == NULL || p == NULL || hits == NULL || off == NULL)
    return vs__err(err, VS_EINVAL, "database handle, parameters or outputs are NULL");
  if (nq == 0 || nq > VS_BATCH_MAX)
    return vs__err(err, nq ? VS_ETOOLARGE : VS_EINVAL, "a batch holds 1..%d queries, not %zu",
                   VS_BATCH_MAX, nq);
  for (size_t i = 0; i < nq; i++) {
    vs_error e = VS_ERROR_INIT;
    if ((rc = vs__fields_check(p[i].payload_fields, p[i].n_payload_fields, &e)))
      return vs__err(err, rc, "query %zu: %s", i, e.message);
  }
  for (size_t i = 1; i < nq; i++)
    if (!vs__search_same_shape(&p[0], &p[i]))
      return vs__err(err, VS_EINVAL,
                     "query %zu differs from query 0 in k, ef, nprobe, exact, with, filter or "
                     "payload fields",
                     i);
  part = vs__calloc(nq, sizeof(*part));
  cnt = vs__calloc(nq, sizeof(*cnt));
  status = vs__calloc(nq, sizeof(*status));
  errs = vs__calloc(nq, sizeof(*errs));
  if (!part || !cnt || !status || !errs) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  /* Plain queries share one snapshot and one FAISS call per segment
   * (vs__search_shared); the rest, and any the shared path leaves (a walk
   * cut short; on any error, all, for vs_search's own messages), are each
   * a vs_search of their own (own read transaction): the cores share the
   * work, and a single query keeps to one OpenMP thread. */
  if (shared_path(p, nq)) {
    /* In chunks: a chunk's candidates are held at once, and the index's
     * read lock for its FAISS call. */
    for (size_t at = 0; at < nq; at += SHARED_CHUNK) {
      size_t m = nq - at < SHARED_CHUNK ? nq - at : SHARED_CHUNK;
      vs_error e = VS_ERROR_INIT;

      if (vs__search_shared(db, name, p + at, m, part + at, cnt + at, status + at, &e) != VS_OK)
        for (size_t i = at; i < at + m; i++)
          status[i] = 1; /* vs_search gives each its own answer */
    }
  } else {
    for (size_t i = 0; i < nq; i++)
      status[i] = 1;
  }
#pragma omp parallel for schedule(dynamic, 4)
  for (size_t i = 0; i < nq; i++)
    if (status[i])
      status[i] = vs_search(db, name, &p[i], &part[i], &cnt[i], NULL, &errs[i]);
  for (size_t i = 0; i < nq; i++)
    if (status[i]) {
      rc = vs__err(err, status[i], "query %zu: %s", i, errs[i].message);
      goto out;
    }
  for (size_t i = 0; i < nq; i++)
    for (size_t j = 0; j < cnt[i]; j++) {
      bytes += hit_bytes(&part[i][j], &floats);
      total++;
    }
  head = (total * sizeof(vs_hit) + 7) & ~(size_t)7;
  if ((*hits = vs__calloc(1, head + floats * sizeof(float) + bytes + 1)) == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  {
    float *fp = (float *)(void *)((char *)*hits + head);
    char *bp = (char *)*hits + head + floats * sizeof(float);
    size_t at = 0;

    for (size_t i = 0; i < nq; i++) {
      off[i] = at;
      for (size_t j = 0; j < cnt[i]; j++) {
        vs_hit *h = &(*hits)[at++];
        *h = part[i][j];
        if (h->id.kind == VS_ID_STR) {
          memcpy(bp, h->id.str, h->id.len + 1);
          h->id.str = bp;
          bp += h->id.len + 1;
        }
        if (h->payload) {
          memcpy(bp, h->payload, h->payload_len);
          h->payload = (const uint8_t *)bp;
          bp += h->payload_len;
        }
        if (h->vector) {
          memcpy(fp, h->vector, h->dim * sizeof(float));
          h->vector = fp;
          fp += h->dim;
        }
      }
    }
    off[nq] = at;
  }
out:
  for (size_t i = 0; part && i < nq; i++)
    vs_free(part[i]);
  vs__free(part);
  vs__free(cnt);
  vs__free(status);
  vs__free(errs);
  if (rc && hits) {
    vs__free(*hits);
    *hits = NULL;
  }
  return rc;
}
