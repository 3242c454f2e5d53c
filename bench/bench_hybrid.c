/*
 * bench_hybrid.c: hybrid search on BEIR SciFact (issue 5): the quality of
 * BM25 alone, a dense embedding alone, and the two fused by RRF and by
 * weighted min-max fusion, and the latency of a hybrid search beside that
 * of its two legs (issue target: hybrid p50 <= 1.2 x (vector p50 + text p50)).
 *
 *   build/bench_hybrid [--data DIR] [--dim D (256)] [--index Flat|HNSW32|...]
 *                      [--weights V,T (1,1)] [--reps R (3)] [--power P (8)]
 *                      [--seed S] [--dir TMPDIR] [--json FILE]
 *
 * THE DENSE EMBEDDING.  No embedding model can be downloaded here, so the
 * vectors are made from SciFact itself by latent semantic analysis: the
 * truncated SVD of the documents' TF-IDF matrix.  Texts (title + "\n" +
 * text, the same string BM25 indexes) are cut into runs of ASCII letters
 * and digits, lowercased; every other byte separates.  A document's row
 * holds (1 + ln tf) * ln(N / df) for each of its terms, and is L2
 * normalised; A is that N x T sparse matrix (N = 5183 documents, T terms).
 * Its top D right singular vectors V_D come from the randomized SVD of
 * Halko, Martinsson and Tropp (2011, algorithms 4.4 and 5.1), with l = D +
 * 32 columns: Y = A * Omega (Omega a T x l Gaussian matrix), Q = qr(Y),
 * then --power rounds (8) of Q = qr(A * qr(A^T * Q)), needed because the
 * spectrum of text decays slowly (on SciFact sigma_1 = 9.7, sigma_256 =
 * 1.6: 2 rounds keep 93% of the best rank-256 energy, 8 rounds 99.4%, in
 * about 3 s on 2 cores); then B^T = A^T Q (T x l), and the eigenpairs
 * of the small l x l matrix B B^T = U S^2 U^T (LAPACK dsyevd) give V_D =
 * B^T U_D S_D^-1.  A document's vector is its row of A V_D (= U_D S_D), a
 * query's is its TF-IDF row (same weights, the corpus's idf, unknown terms
 * dropped) times V_D, both L2 normalised: the collection's metric is
 * cosine.  QR is LAPACK's sgeqrf / sorgqr, products are OpenBLAS's, through
 * their Fortran entry points (declared below: Debian's OpenBLAS carries
 * LAPACK but not LAPACKE).  "energy" reports sum S_D^2 / ||A||_F^2, the
 * share of the matrix the embedding keeps.
 *
 * THE COLLECTION.  A fresh database in a temporary directory (no fsync), one
 * collection of dim D, metric cosine, index --index ("Flat" by default: an
 * exact scan, so the dense leg's quality is the embedding's, not the
 * index's), text field "text" (title + "\n" + text), language porter, BM25
 * k1 0.9 and b 0.4 (the settings of the published SciFact BM25 figures:
 * ../shared/data/README.md).  Points are upserted in batches of 1000, the
 * BEIR _id as string id, payload {"text": ...}, then the collection is
 * rebuilt into one segment (vs_collection_rebuild, not timed into queries).
 *
 * QUALITY over the 300 test queries (qrels/test.tsv), each searched to
 * depth 100: bm25 = vs_text_search, dense = vs_search, hybrid-rrf =
 * vs_hybrid_search with RRF (rrf_k 60, weights 1 and 1, candidates 100),
 * hybrid-weighted = the same with min-max weighted fusion (--weights).
 * nDCG@10 is trec_eval's ndcg_cut.10 (graded gains, ideal = the judged
 * gains sorted best first), R@100 the relevant documents found in the top
 * 100 over those judged; both are averaged over the queries with a relevant
 * judgment.  The engine's own order is kept.
 *
 * LATENCY, one thread: one untimed pass over the queries (warm-up), then
 * --reps passes, each query running in turn the vector search (k 100), the
 * text search (k 100) and the two hybrid searches (candidates 100, k 10),
 * each call timed alone (freeing the hits is outside the clock).  The four
 * are interleaved so that load from elsewhere falls on all of them alike,
 * and the one that starts rotates from query to query, so that running
 * right after the Flat scan (which sweeps the caches) or right after a
 * search of the same query (which warms them) is each one's lot equally
 * often.  p50 and p99 are nearest-rank percentiles over the reps x queries
 * times; ratio = hybrid p50 / (vector p50 + text p50).
 *
 * --json FILE writes one JSON object a line, one per configuration.
 * Progress goes to stderr when it is a terminal.
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "tools/benchutil.h"
#include "tools/textsets.h"

/* LAPACK's Fortran entry points, as OpenBLAS exports them (32-bit
 * INTEGERs; gfortran passes the length of each CHARACTER argument after the
 * others, as size_t). */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
             float *work, const int *lwork, int *info);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

#define DATA_DIR "../shared/data"
#define COLL "scifact"
#define BATCH 1000
#define DEPTH 100      /* quality: every configuration's depth */
#define CANDIDATES 100 /* hybrid: each leg's depth */
#define LAT_K 10       /* latency: the hybrid search's k */
#define RRF_K 60.0
#define OVERSAMPLE 32 /* randomized SVD: l = dim + OVERSAMPLE */
#define TOKEN_MAX 64  /* longer runs of letters and digits are not terms */

enum { C_BM25, C_DENSE, C_RRF, C_WEIGHTED, NCONFIG };
static const char *const config_name[NCONFIG] = {"bm25", "dense", "hybrid-rrf", "hybrid-weighted"};

typedef struct opts {
  const char *data, *json, *index, *tmp;
  size_t dim;
  double wv, wt;
  int reps, power;
  uint64_t seed;
} opts;

/* The term dictionary: open addressing over term ids, strings in one arena. */
typedef struct vocab {
  char *chars;
  size_t nchars, chars_cap;
  size_t *off;
  uint32_t *len, *df;
  size_t n, cap;
  uint32_t *slots; /* term id + 1; 0 = empty */
  size_t nslots;
} vocab;

/* A sparse matrix in compressed rows. */
typedef struct csr {
  size_t rows, cols;
  size_t *ptr; /* rows + 1 */
  uint32_t *col;
  float *val;
} csr;

/* A growable array of term ids (one text's tokens). */
typedef struct ids {
  uint32_t *p;
  size_t n, cap;
} ids;

typedef struct lat {
  double *t; /* seconds, reps x queries */
  size_t n;
  double p50, p99, mean;
} lat;

typedef struct result {
  double ndcg10, r100;
  size_t evaluated;
  size_t both_legs; /* hybrid: queries whose hits came from both legs */
  lat l;
} result;

typedef struct bench {
  opts o;
  int progress;
  ts_set set;
  char **flat; /* title + "\n" + text of each document */
  size_t *flat_len;
  vocab v;
  csr a;     /* documents x terms, TF-IDF, rows normalised */
  float *vk; /* terms x dim: V_D */
  float *dv; /* documents x dim */
  float *qv; /* queries x dim */
  int *qhas; /* the query has a vector (a known term) */
  double energy, lsa_s, load_s, rebuild_s;
  char dir[4096];
  vs_db *db;
  result r[NCONFIG];
} bench;

/* ---- small things ------------------------------------------------------------------------- */

/* The temporary database directory, once made: removed on every exit. */
static const char *tmp_dir;

static int rm_tmp(void) {
  int rc = tmp_dir ? bu_rmtree(tmp_dir) : 0;

  tmp_dir = NULL;
  return rc;
}

static void die(const char *what, const char *msg) {
  rm_tmp();
  bu_die(isatty(STDERR_FILENO), "bench_hybrid", what, msg);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);

  if (p == NULL)
    die("malloc", "out of memory");
  return p;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);

  if (p == NULL)
    die("calloc", "out of memory");
  return p;
}

/* Grow *p (of *cap elements of `size` bytes) to hold at least `need`. */
static void grow(void **p, size_t *cap, size_t need, size_t size) {
  size_t c = *cap ? *cap : 16;
  void *q;

  if (need <= *cap)
    return;
  while (c < need)
    c *= 2;
  q = realloc(*p, c * size);
  if (q == NULL)
    die("realloc", "out of memory");
  *p = q;
  *cap = c;
}

/* splitmix64, and standard normal deviates from it by Box-Muller. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { /* in (0, 1) */
  return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void gaussian(float *x, size_t n, uint64_t seed) {
  uint64_t s = seed;

  for (size_t i = 0; i < n; i += 2) {
    double r = sqrt(-2.0 * log(rng_unit(&s))), t = 6.283185307179586 * rng_unit(&s);
    x[i] = (float)(r * cos(t));
    if (i + 1 < n)
      x[i + 1] = (float)(r * sin(t));
  }
}

static void normalise(float *x, size_t n) {
  double s = 0;

  for (size_t i = 0; i < n; i++)
    s += (double)x[i] * x[i];
  if (s > 0) {
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < n; i++)
      x[i] *= inv;
  }
}

/* ---- terms -------------------------------------------------------------------------------- */

static uint64_t hash(const char *s, size_t n) { /* FNV-1a */
  uint64_t h = 0xcbf29ce484222325ull;

  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

static void vocab_rehash(vocab *v, size_t nslots) {
  free(v->slots);
  v->slots = xcalloc(nslots, sizeof(uint32_t));
  v->nslots = nslots;
  for (size_t t = 0; t < v->n; t++) {
    size_t i = hash(v->chars + v->off[t], v->len[t]) & (nslots - 1);
    while (v->slots[i])
      i = (i + 1) & (nslots - 1);
    v->slots[i] = (uint32_t)t + 1;
  }
}

/* The id of term s[0..n), added when `add` is nonzero; UINT32_MAX when it is
 * unknown and not added. */
static uint32_t vocab_id(vocab *v, const char *s, size_t n, int add) {
  size_t i;

  if (v->nslots == 0)
    vocab_rehash(v, 1u << 16);
  i = hash(s, n) & (v->nslots - 1);
  for (; v->slots[i]; i = (i + 1) & (v->nslots - 1)) {
    uint32_t t = v->slots[i] - 1;
    if (v->len[t] == n && memcmp(v->chars + v->off[t], s, n) == 0)
      return t;
  }
  if (!add)
    return UINT32_MAX;
  grow((void **)&v->chars, &v->chars_cap, v->nchars + n, 1);
  if (v->n == v->cap) {
    grow((void **)&v->off, &v->cap, v->n + 1, sizeof(size_t));
    v->len = realloc(v->len, v->cap * sizeof(uint32_t));
    v->df = realloc(v->df, v->cap * sizeof(uint32_t));
    if (v->len == NULL || v->df == NULL)
      die("realloc", "out of memory");
  }
  memcpy(v->chars + v->nchars, s, n);
  v->off[v->n] = v->nchars;
  v->len[v->n] = (uint32_t)n;
  v->df[v->n] = 0;
  v->nchars += n;
  v->slots[i] = (uint32_t)v->n + 1;
  v->n++;
  if (v->n * 2 > v->nslots)
    vocab_rehash(v, v->nslots * 2);
  return (uint32_t)v->n - 1;
}

static void vocab_free(vocab *v) {
  free(v->chars);
  free(v->off);
  free(v->len);
  free(v->df);
  free(v->slots);
}

/* The terms of s[0..len) into out (replacing its contents): runs of ASCII
 * letters and digits, lowercased, of at most TOKEN_MAX bytes. */
static void tokenize(vocab *v, const char *s, size_t len, int add, ids *out) {
  char tok[TOKEN_MAX];
  size_t n = 0;

  out->n = 0;
  for (size_t i = 0; i <= len; i++) {
    unsigned char c = i < len ? (unsigned char)s[i] : ' ';
    int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

    if (word) {
      if (n < TOKEN_MAX)
        tok[n] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      n++;
      continue;
    }
    if (n > 0 && n <= TOKEN_MAX) {
      uint32_t t = vocab_id(v, tok, n, add);
      if (t != UINT32_MAX) {
        grow((void **)&out->p, &out->cap, out->n + 1, sizeof(uint32_t));
        out->p[out->n++] = t;
      }
    }
    n = 0;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Turn a text's term ids into (term, tf) pairs, appended to cols/vals from
 * index *at (tf stored as a float); returns the number of pairs. */
static size_t term_counts(ids *t, uint32_t **cols, float **vals, size_t *cap, size_t at) {
  size_t n = 0;

  qsort(t->p, t->n, sizeof(uint32_t), cmp_u32);
  for (size_t i = 0; i < t->n;) {
    size_t j = i;
    while (j < t->n && t->p[j] == t->p[i])
      j++;
    if (at + n + 1 > *cap) {
      size_t c = *cap;
      grow((void **)cols, &c, at + n + 1, sizeof(uint32_t));
      *vals = realloc(*vals, c * sizeof(float));
      if (*vals == NULL)
        die("realloc", "out of memory");
      *cap = c;
    }
    (*cols)[at + n] = t->p[i];
    (*vals)[at + n] = (float)(j - i);
    n++;
    i = j;
  }
  return n;
}

/* TF-IDF in place: (1 + ln tf) * ln(N / df), then the L2 norm of the row. */
static void tfidf(const vocab *v, size_t ndocs, const uint32_t *cols, float *vals, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double df = v->df[cols[i]];
    vals[i] = df > 0 ? (float)((1.0 + log(vals[i])) * log((double)ndocs / df)) : 0.0f;
  }
  normalise(vals, n);
}

/* The documents' matrix A. */
static void build_matrix(bench *b) {
  size_t n = b->set.ndocs, cap = 0, nnz = 0;
  csr *a = &b->a;
  ids t = {0};

  a->rows = n;
  a->ptr = xmalloc((n + 1) * sizeof(size_t));
  a->col = NULL;
  a->val = NULL;
  a->ptr[0] = 0;
  for (size_t d = 0; d < n; d++) {
    size_t m;
    tokenize(&b->v, b->flat[d], b->flat_len[d], 1, &t);
    m = term_counts(&t, &a->col, &a->val, &cap, nnz);
    for (size_t i = 0; i < m; i++)
      b->v.df[a->col[nnz + i]]++;
    nnz += m;
    a->ptr[d + 1] = nnz;
  }
  a->cols = b->v.n;
  for (size_t d = 0; d < n; d++)
    tfidf(&b->v, n, a->col + a->ptr[d], a->val + a->ptr[d], a->ptr[d + 1] - a->ptr[d]);
  free(t.p);
}

/* at = the transpose of a. */
static void transpose(const csr *a, csr *at) {
  size_t nnz = a->ptr[a->rows], *fill;

  at->rows = a->cols;
  at->cols = a->rows;
  at->ptr = xcalloc(at->rows + 1, sizeof(size_t));
  at->col = xmalloc(nnz * sizeof(uint32_t));
  at->val = xmalloc(nnz * sizeof(float));
  for (size_t i = 0; i < nnz; i++)
    at->ptr[a->col[i] + 1]++;
  for (size_t r = 0; r < at->rows; r++)
    at->ptr[r + 1] += at->ptr[r];
  fill = xcalloc(at->rows, sizeof(size_t));
  for (size_t r = 0; r < a->rows; r++)
    for (size_t i = a->ptr[r]; i < a->ptr[r + 1]; i++) {
      size_t at_i = at->ptr[a->col[i]] + fill[a->col[i]]++;
      at->col[at_i] = (uint32_t)r;
      at->val[at_i] = a->val[i];
    }
  free(fill);
}

static void csr_free(csr *a) {
  free(a->ptr);
  free(a->col);
  free(a->val);
}

/* ---- the randomized SVD ------------------------------------------------------------------- */

/* y (a->rows x l) = a * x (a->cols x l), both row-major. */
static void spmm(const csr *a, const float *x, size_t l, float *y) {
  for (size_t r = 0; r < a->rows; r++) {
    float *yr = y + r * l;
    memset(yr, 0, l * sizeof(float));
    for (size_t i = a->ptr[r]; i < a->ptr[r + 1]; i++) {
      const float *xr = x + (size_t)a->col[i] * l;
      float w = a->val[i];
      for (size_t j = 0; j < l; j++)
        yr[j] += w * xr[j];
    }
  }
}

/* Replace the m x l row-major y (m >= l) by an orthonormal basis of its
 * columns: Householder QR (sgeqrf), Q formed explicitly (sorgqr).  LAPACK
 * works on column-major matrices, hence the transposes through `tmp`. */
static void orth(float *y, size_t m, size_t l, float *tmp) {
  int mi = (int)m, li = (int)l, lwork = -1, info = 0;
  float *tau = xmalloc(l * sizeof(float)), query, *work;

  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < l; j++)
      tmp[j * m + i] = y[i * l + j];
  sgeqrf_(&mi, &li, tmp, &mi, tau, &query, &lwork, &info);
  lwork = (int)query;
  work = xmalloc((size_t)lwork * sizeof(float));
  sgeqrf_(&mi, &li, tmp, &mi, tau, work, &lwork, &info);
  if (info != 0)
    die("sgeqrf", "failed");
  free(work);
  lwork = -1;
  sorgqr_(&mi, &li, &li, tmp, &mi, tau, &query, &lwork, &info);
  lwork = (int)query;
  work = xmalloc((size_t)lwork * sizeof(float));
  sorgqr_(&mi, &li, &li, tmp, &mi, tau, work, &lwork, &info);
  if (info != 0)
    die("sorgqr", "failed");
  free(work);
  free(tau);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < l; j++)
      y[i * l + j] = tmp[j * m + i];
}

/* b->vk = the top o.dim right singular vectors of A (see the file comment),
 * and b->energy. */
static void lsa(bench *b) {
  size_t n = b->a.rows, t = b->a.cols, k = b->o.dim, l = k + OVERSAMPLE;
  float *omega, *y, *z, *tmp, *ub;
  double *g, *w, *dwork, fro = 0, kept = 0;
  int li = (int)l, lwork = -1, liwork = -1, info = 0, iquery;
  double dquery;
  csr at;

  if (l > n || l > t)
    die("--dim", "too large for the collection (dim + 32 must not exceed documents and terms)");
  transpose(&b->a, &at);
  omega = xmalloc(t * l * sizeof(float));
  y = xmalloc(n * l * sizeof(float));
  z = xmalloc(t * l * sizeof(float));
  tmp = xmalloc((n > t ? n : t) * l * sizeof(float));
  gaussian(omega, t * l, b->o.seed);
  spmm(&b->a, omega, l, y); /* Y = A Omega */
  orth(y, n, l, tmp);
  for (int it = 0; it < b->o.power; it++) {
    bu_progress(b->progress, "bench_hybrid", "LSA: power iteration %d / %d", it + 1, b->o.power);
    spmm(&at, y, l, z); /* Z = A^T Q */
    orth(z, t, l, tmp);
    spmm(&b->a, z, l, y); /* Y = A Z */
    orth(y, n, l, tmp);
  }
  spmm(&at, y, l, z); /* B^T = A^T Q, t x l */

  /* B B^T = (B^T)^T B^T, l x l, in double for the eigensolver. */
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, li, (int)t, 1.0f, z, li, 0.0f, tmp, li);
  g = xmalloc(l * l * sizeof(double));
  w = xmalloc(l * sizeof(double));
  for (size_t i = 0; i < l; i++)
    for (size_t j = i; j < l; j++)
      g[i * l + j] = g[j * l + i] = tmp[i * l + j];
  dsyevd_("V", "U", &li, g, &li, w, &dquery, &lwork, &iquery, &liwork, &info, 1, 1);
  lwork = (int)dquery;
  liwork = iquery;
  dwork = xmalloc((size_t)lwork * sizeof(double));
  {
    int *iwork = xmalloc((size_t)liwork * sizeof(int));
    dsyevd_("V", "U", &li, g, &li, w, dwork, &lwork, iwork, &liwork, &info, 1, 1);
    free(iwork);
  }
  if (info != 0)
    die("dsyevd", "failed");
  /* Eigenvalues ascend; eigenvector c is column c of the column-major g,
   * i.e. g[c * l + i].  U_D S_D^-1 (l x k, row-major) for the top k. */
  ub = xcalloc(l * k, sizeof(float));
  for (size_t r = 0; r < k; r++) {
    size_t c = l - 1 - r;
    double s = w[c] > 0 ? sqrt(w[c]) : 0;
    kept += w[c] > 0 ? w[c] : 0;
    if (s > 1e-6)
      for (size_t i = 0; i < l; i++)
        ub[i * k + r] = (float)(g[c * l + i] / s);
  }
  for (size_t i = 0; i < b->a.ptr[n]; i++)
    fro += (double)b->a.val[i] * b->a.val[i];
  b->energy = fro > 0 ? kept / fro : 0;
  b->vk = xmalloc(t * k * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)t, (int)k, li, 1.0f, z, li, ub,
              (int)k, 0.0f, b->vk, (int)k);

  /* Documents: A V_D, normalised.  A document without a weighted term
   * would be a zero vector, which cosine refuses: it gets e_0. */
  b->dv = xmalloc(n * k * sizeof(float));
  spmm(&b->a, b->vk, k, b->dv);
  for (size_t d = 0; d < n; d++) {
    float *x = b->dv + d * k;
    normalise(x, k);
    if (cblas_snrm2((int)k, x, 1) == 0)
      x[0] = 1;
  }
  free(ub);
  free(dwork);
  free(w);
  free(g);
  free(tmp);
  free(z);
  free(y);
  free(omega);
  csr_free(&at);
}

/* Query vectors: the TF-IDF row (terms the corpus lacks dropped) times V_D. */
static void embed_queries(bench *b) {
  size_t nq = b->set.nqueries, k = b->o.dim, cap = 0;
  uint32_t *cols = NULL;
  float *vals = NULL;
  ids t = {0};

  b->qv = xcalloc(nq * k, sizeof(float));
  b->qhas = xcalloc(nq, sizeof(int));
  for (size_t q = 0; q < nq; q++) {
    const ts_query *qq = &b->set.queries[q];
    float *x = b->qv + q * k;
    size_t m;

    tokenize(&b->v, qq->text, qq->text_len, 0, &t);
    m = term_counts(&t, &cols, &vals, &cap, 0);
    tfidf(&b->v, b->set.ndocs, cols, vals, m);
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < k; j++)
        x[j] += vals[i] * b->vk[(size_t)cols[i] * k + j];
    normalise(x, k);
    b->qhas[q] = cblas_snrm2((int)k, x, 1) > 0;
  }
  free(cols);
  free(vals);
  free(t.p);
}

/* ---- the collection ----------------------------------------------------------------------- */

/* flat = title + "\n" + text, or whichever of them is not empty (as
 * `vsearch bench text --fields flat` indexes it). */
static void join_texts(bench *b) {
  size_t n = b->set.ndocs;

  b->flat = xmalloc(n * sizeof(char *));
  b->flat_len = xmalloc(n * sizeof(size_t));
  for (size_t d = 0; d < n; d++) {
    const ts_doc *doc = &b->set.docs[d];
    char *p = xmalloc(doc->title_len + doc->text_len + 2);
    size_t len = doc->title_len;

    memcpy(p, doc->title, doc->title_len);
    if (doc->title_len && doc->text_len)
      p[len++] = '\n';
    memcpy(p + len, doc->text, doc->text_len);
    len += doc->text_len;
    p[len] = '\0';
    b->flat[d] = p;
    b->flat_len[d] = len;
  }
}

static void load(bench *b) {
  const char *fields[] = {"text"};
  vs_open_options oo = {VS_OPEN_CREATE | VS_OPEN_NOSYNC, 0, 0, 0};
  vs_collection_config cfg = {0};
  vs_error err = VS_ERROR_INIT;
  size_t n = b->set.ndocs, k = b->o.dim, off[BATCH + 1];
  vs_point pts[BATCH];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  double t0 = bu_now();

  snprintf(b->dir, sizeof(b->dir), "%s/bench_hybrid.XXXXXX", b->o.tmp);
  if (mkdtemp(b->dir) == NULL)
    die(b->dir, strerror(errno));
  tmp_dir = b->dir;
  if (vs_db_open(b->dir, &oo, &b->db, &err))
    die(b->dir, err.message);
  cfg.name = COLL;
  cfg.dim = (uint32_t)k;
  cfg.metric = VS_METRIC_COSINE;
  cfg.index = b->o.index;
  cfg.text_fields = fields;
  cfg.n_text_fields = 1;
  cfg.language = "porter";
  cfg.bm25_k1 = 0.9;
  cfg.bm25_b = 0.4;
  if (vs_collection_create(b->db, &cfg, &err))
    die("create collection", err.message);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  for (size_t first = 0; first < n; first += BATCH) {
    size_t m = n - first < BATCH ? n - first : BATCH;

    bu_progress(b->progress, "bench_hybrid", "loading %zu / %zu", first, n);
    msgpack_sbuffer_clear(&sb);
    for (size_t i = 0; i < m; i++) {
      off[i] = sb.size;
      msgpack_pack_map(&pk, 1);
      msgpack_pack_str_with_body(&pk, "text", 4);
      msgpack_pack_str_with_body(&pk, b->flat[first + i], b->flat_len[first + i]);
    }
    off[m] = sb.size;
    for (size_t i = 0; i < m; i++) {
      const ts_doc *doc = &b->set.docs[first + i];
      pts[i] = (vs_point){0};
      pts[i].id.kind = VS_ID_STR;
      pts[i].id.str = doc->id;
      pts[i].id.len = strlen(doc->id);
      pts[i].vector = b->dv + (first + i) * k;
      pts[i].dim = k;
      pts[i].payload = sb.data + off[i];
      pts[i].payload_len = off[i + 1] - off[i];
    }
    if (vs_upsert(b->db, COLL, pts, m, &err))
      die("upsert", err.message);
  }
  msgpack_sbuffer_destroy(&sb);
  b->load_s = bu_now() - t0;
  bu_progress(b->progress, "bench_hybrid", "rebuilding the vector index (%s)", b->o.index);
  t0 = bu_now();
  if (vs_collection_rebuild(b->db, COLL, NULL, 0, &err))
    die("rebuild", err.message);
  b->rebuild_s = bu_now() - t0;
}

/* ---- searching ---------------------------------------------------------------------------- */

/* Run configuration c for query q to k hits (hybrid: CANDIDATES deep);
 * *secs receives the time inside the engine call; *both (may be NULL) is
 * set when a hybrid search fused both legs.  The hits are the caller's. */
static vs_hit *search(bench *b, int c, size_t q, size_t k, size_t *n, double *secs, int *both) {
  const ts_query *qq = &b->set.queries[q];
  const float *qv = b->qhas[q] ? b->qv + q * b->o.dim : NULL;
  vs_error err = VS_ERROR_INIT;
  vs_hit *hits = NULL;
  double t0;
  int rc;

  *n = 0;
  if (c == C_BM25) {
    vs_text_params tp = {0};
    tp.text = qq->text;
    tp.len = qq->text_len;
    tp.k = k;
    t0 = bu_now();
    rc = vs_text_search(b->db, COLL, &tp, &hits, n, NULL, &err);
    *secs = bu_now() - t0;
  } else if (c == C_DENSE) {
    vs_search_params sp = {0};
    if (qv == NULL) { /* no term of the query is in the corpus: no vector */
      *secs = 0;
      return NULL;
    }
    sp.vector = qv;
    sp.dim = b->o.dim;
    sp.k = k;
    t0 = bu_now();
    rc = vs_search(b->db, COLL, &sp, &hits, n, NULL, &err);
    *secs = bu_now() - t0;
  } else {
    vs_hybrid_params hp = {0};
    vs_hybrid_info info;
    hp.vector = qv;
    hp.dim = qv ? b->o.dim : 0;
    hp.text = qq->text;
    hp.len = qq->text_len;
    hp.k = k;
    hp.candidates = CANDIDATES;
    hp.rrf_k = RRF_K;
    if (c == C_RRF) {
      hp.fusion = VS_FUSION_RRF;
      hp.vector_weight = hp.text_weight = 1;
    } else {
      hp.fusion = VS_FUSION_WEIGHTED;
      hp.vector_weight = b->o.wv;
      hp.text_weight = b->o.wt;
    }
    t0 = bu_now();
    rc = vs_hybrid_search(b->db, COLL, &hp, &hits, n, &info, &err);
    *secs = bu_now() - t0;
    if (rc == 0 && both)
      *both = strcmp(info.legs, "vector+text") == 0;
  }
  if (rc)
    die(config_name[c], err.code ? err.message : vs_strerror(rc));
  return hits;
}

/* The gain the qrels give document doc for query q (0: not judged). */
static double gain_of(const bench *b, size_t q, size_t doc) {
  for (size_t i = 0; i < b->set.nqrels; i++)
    if (b->set.qrels[i].query == q && b->set.qrels[i].doc == doc)
      return b->set.qrels[i].gain;
  return 0;
}

/* nDCG@10 and R@100 of configuration c, searched to DEPTH (the measures
 * are tools/textsets.c's, as `vsearch bench text` reports them). */
static void quality(bench *b, int c) {
  result *r = &b->r[c];
  double *judged = xmalloc((b->set.nqrels + 1) * sizeof(double));
  double *ranked = xmalloc(DEPTH * sizeof(double));
  ts_measures sum = {0};

  for (size_t q = 0; q < b->set.nqueries; q++) {
    size_t n, nj = 0;
    double secs;
    int both = 0;
    vs_hit *hits;

    if (q % 32 == 0)
      bu_progress(b->progress, "bench_hybrid", "%s: quality, query %zu / %zu", config_name[c], q,
                  b->set.nqueries);
    for (size_t i = 0; i < b->set.nqrels; i++)
      if (b->set.qrels[i].query == q)
        judged[nj++] = b->set.qrels[i].gain;
    hits = search(b, c, q, DEPTH, &n, &secs, &both);
    for (size_t i = 0; i < n; i++) {
      size_t d = hits[i].id.kind == VS_ID_STR ? ts_find_doc(&b->set, hits[i].id.str, hits[i].id.len)
                                              : SIZE_MAX;
      if (d == SIZE_MAX)
        die(config_name[c], "a hit names no document of the corpus");
      ranked[i] = gain_of(b, q, d);
    }
    vs_free(hits);
    switch (ts_measure(ranked, n, judged, nj, &sum)) {
    case -1:
      die(config_name[c], "out of memory");
      break;
    case 1:
      r->both_legs += (size_t)both;
      break;
    }
  }
  r->evaluated = sum.evaluated;
  if (r->evaluated) {
    r->ndcg10 = sum.ndcg10 / (double)r->evaluated;
    r->r100 = sum.r100 / (double)r->evaluated;
  }
  free(judged);
  free(ranked);
}

/* Latency of the four calls, interleaved query by query (see the file
 * comment): the legs at k DEPTH, the hybrid searches at k LAT_K. */
static void latency(bench *b) {
  size_t nq = b->set.nqueries, total = nq * (size_t)b->o.reps;

  for (int c = 0; c < NCONFIG; c++) {
    b->r[c].l.t = xmalloc(total * sizeof(double));
    b->r[c].l.n = 0;
  }
  for (int pass = -1; pass < b->o.reps; pass++) {
    bu_progress(b->progress, "bench_hybrid", "latency: %s", pass < 0 ? "warm-up" : "timing");
    for (size_t q = 0; q < nq; q++)
      for (int j = 0; j < NCONFIG; j++) {
        int c = (int)((q + (size_t)j + (size_t)(pass + 1)) % NCONFIG);
        size_t n;
        double secs;
        vs_hit *hits =
            search(b, c, q, c == C_BM25 || c == C_DENSE ? DEPTH : LAT_K, &n, &secs, NULL);
        vs_free(hits);
        if (pass >= 0 && (c != C_DENSE || b->qhas[q]))
          b->r[c].l.t[b->r[c].l.n++] = secs;
      }
  }
  for (int c = 0; c < NCONFIG; c++) {
    lat *l = &b->r[c].l;
    double sum = 0;
    bu_sort(l->t, l->n);
    for (size_t i = 0; i < l->n; i++)
      sum += l->t[i];
    l->p50 = l->n ? bu_percentile(l->t, l->n, 50) : NAN;
    l->p99 = l->n ? bu_percentile(l->t, l->n, 99) : NAN;
    l->mean = l->n ? sum / (double)l->n : NAN;
  }
}

/* ---- reporting ---------------------------------------------------------------------------- */

static double ratio(const bench *b, int c) {
  return b->r[c].l.p50 / (b->r[C_DENSE].l.p50 + b->r[C_BM25].l.p50);
}

static json_t *jnum(double v) {
  return isfinite(v) ? json_real(v) : json_null();
}

static void report(const bench *b, FILE *json) {
  const opts *o = &b->o;

  printf("# bench_hybrid: %s\n#   %s\n", b->set.name, b->set.about);
  printf("#   %zu documents, %zu queries (%zu evaluated); BM25 porter, k1 0.9, b 0.4, "
         "field title + \"\\n\" + text\n",
         b->set.ndocs, b->set.nqueries, b->r[C_BM25].evaluated);
  printf("#   dense: LSA of TF-IDF (%zu terms), dim %zu, %d power iterations, energy %.3f, "
         "%.1f s; index %s, cosine\n",
         b->v.n, o->dim, o->power, b->energy, b->lsa_s, o->index);
  printf("#   load %.1f s, rebuild %.1f s; quality at depth %d (hybrid: candidates %d, rrf_k %g; "
         "weighted: %g,%g)\n",
         b->load_s, b->rebuild_s, DEPTH, CANDIDATES, RRF_K, o->wv, o->wt);
  printf("#   latency: one thread, %d reps x %zu queries after a warm-up pass; legs k %d, "
         "hybrid k %d\n",
         o->reps, b->set.nqueries, DEPTH, LAT_K);
  printf("%-16s %8s %8s %9s %9s %9s %7s\n", "config", "nDCG@10", "R@100", "p50 ms", "p99 ms",
         "mean ms", "ratio");
  for (int c = 0; c < NCONFIG; c++) {
    const result *r = &b->r[c];
    char rt[16] = "-";
    if (c == C_RRF || c == C_WEIGHTED)
      snprintf(rt, sizeof(rt), "%.2f", ratio(b, c));
    printf("%-16s %8.4f %8.4f %9.3f %9.3f %9.3f %7s\n", config_name[c], r->ndcg10, r->r100,
           r->l.p50 * 1e3, r->l.p99 * 1e3, r->l.mean * 1e3, rt);
  }
  printf("ratio = hybrid p50 / (dense p50 + bm25 p50); issue target <= 1.2\n");
  for (int c = C_RRF; c <= C_WEIGHTED; c++)
    if (b->r[c].both_legs != b->r[c].evaluated)
      printf("note: %s fused both legs for %zu of %zu queries\n", config_name[c], b->r[c].both_legs,
             b->r[c].evaluated);
  fflush(stdout);

  for (int c = 0; json && c < NCONFIG; c++) {
    const result *r = &b->r[c];
    int hybrid = c == C_RRF || c == C_WEIGHTED;
    json_t *j = json_object();

    json_object_set_new(j, "bench", json_string("hybrid"));
    json_object_set_new(j, "config", json_string(config_name[c]));
    json_object_set_new(j, "dataset", json_string(b->set.name));
    json_object_set_new(j, "docs", json_integer((json_int_t)b->set.ndocs));
    json_object_set_new(j, "queries", json_integer((json_int_t)b->set.nqueries));
    json_object_set_new(j, "evaluated_queries", json_integer((json_int_t)r->evaluated));
    json_object_set_new(j, "embedding", json_string("lsa-tfidf"));
    json_object_set_new(j, "dim", json_integer((json_int_t)o->dim));
    json_object_set_new(j, "lsa_terms", json_integer((json_int_t)b->v.n));
    json_object_set_new(j, "lsa_power_iterations", json_integer(o->power));
    json_object_set_new(j, "lsa_energy", jnum(b->energy));
    json_object_set_new(j, "lsa_s", jnum(b->lsa_s));
    json_object_set_new(j, "index", json_string(o->index));
    json_object_set_new(j, "metric", json_string("cosine"));
    json_object_set_new(j, "language", json_string("porter"));
    json_object_set_new(j, "k1", json_real(0.9));
    json_object_set_new(j, "b", json_real(0.4));
    json_object_set_new(j, "depth", json_integer(DEPTH));
    if (hybrid) {
      json_object_set_new(j, "fusion", json_string(c == C_RRF ? "rrf" : "weighted"));
      json_object_set_new(j, "candidates", json_integer(CANDIDATES));
      json_object_set_new(j, "rrf_k", json_real(RRF_K));
      json_object_set_new(j, "vector_weight", json_real(c == C_RRF ? 1 : o->wv));
      json_object_set_new(j, "text_weight", json_real(c == C_RRF ? 1 : o->wt));
      json_object_set_new(j, "both_legs_queries", json_integer((json_int_t)r->both_legs));
    }
    json_object_set_new(j, "ndcg_cut_10", jnum(r->ndcg10));
    json_object_set_new(j, "recall_100", jnum(r->r100));
    json_object_set_new(j, "latency_k", json_integer(hybrid ? LAT_K : DEPTH));
    json_object_set_new(j, "latency_samples", json_integer((json_int_t)r->l.n));
    json_object_set_new(j, "query_threads", json_integer(1));
    json_object_set_new(j, "p50_ms", jnum(r->l.p50 * 1e3));
    json_object_set_new(j, "p99_ms", jnum(r->l.p99 * 1e3));
    json_object_set_new(j, "mean_ms", jnum(r->l.mean * 1e3));
    if (hybrid)
      json_object_set_new(j, "p50_ratio_to_legs", jnum(ratio(b, c)));
    json_dumpf(j, json, JSON_COMPACT);
    fputc('\n', json);
    json_decref(j);
  }
}

/* ---- the program -------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: bench_hybrid [--data DIR] [--dim D (256)] [--index SPEC (Flat)]\n"
             "                    [--weights V,T (1,1)] [--reps R (3)] [--power P (8)]\n"
             "                    [--seed S (42)] [--dir TMPDIR] [--json FILE]\n"
             "  BM25, LSA dense, RRF and weighted hybrid on DATA/scifact: nDCG@10, R@100 and\n"
             "  p50/p99 latency.  DATA: --data, else $VS_TEST_DATA, else " DATA_DIR ".\n");
}

static void parse(int argc, char **argv, opts *o) {
  const char *env = getenv("VS_TEST_DATA"), *tmp = getenv("TMPDIR");

  o->data = env && *env ? env : DATA_DIR;
  o->tmp = tmp && *tmp ? tmp : "/tmp";
  o->index = "Flat";
  o->dim = 256;
  o->wv = o->wt = 1;
  o->reps = 3;
  o->power = 8;
  o->seed = 42;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    char *end;

    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (val == NULL) {
      usage(stderr);
      die(opt, "needs a value");
    }
    i++;
    errno = 0;
    if (strcmp(opt, "--data") == 0) {
      o->data = val;
    } else if (strcmp(opt, "--dir") == 0) {
      o->tmp = val;
    } else if (strcmp(opt, "--json") == 0) {
      o->json = val;
    } else if (strcmp(opt, "--index") == 0) {
      o->index = val;
    } else if (strcmp(opt, "--dim") == 0) {
      unsigned long d = strtoul(val, &end, 10);
      if (errno || *end || d < 1 || d > 4096)
        die(opt, "must be 1..4096");
      o->dim = d;
    } else if (strcmp(opt, "--weights") == 0) {
      char *e2;
      o->wv = strtod(val, &end);
      if (*end != ',')
        die(opt, "must be V,T");
      o->wt = strtod(end + 1, &e2);
      if (errno || *e2 || !isfinite(o->wv) || !isfinite(o->wt) || o->wv < 0 || o->wt < 0 ||
          o->wv + o->wt <= 0)
        die(opt, "must be two finite weights >= 0, not both 0");
    } else if (strcmp(opt, "--reps") == 0) {
      long v = strtol(val, &end, 10);
      if (errno || *end || v < 1 || v > 100)
        die(opt, "must be 1..100");
      o->reps = (int)v;
    } else if (strcmp(opt, "--power") == 0) {
      long v = strtol(val, &end, 10);
      if (errno || *end || v < 0 || v > 20)
        die(opt, "must be 0..20");
      o->power = (int)v;
    } else if (strcmp(opt, "--seed") == 0) {
      o->seed = strtoull(val, &end, 10);
      if (errno || *end)
        die(opt, "must be a number");
    } else {
      usage(stderr);
      die(opt, "unknown option");
    }
  }
}

int main(int argc, char **argv) {
  static bench b; /* large and zeroed */
  char path[4096], msg[1024];
  FILE *json = NULL;
  double t0;

  parse(argc, argv, &b.o);
  b.progress = isatty(STDERR_FILENO);
  if (b.o.json && (json = fopen(b.o.json, "w")) == NULL)
    die(b.o.json, strerror(errno));
  snprintf(path, sizeof(path), "%s/scifact", b.o.data);
  bu_progress(b.progress, "bench_hybrid", "reading %s", path);
  ts_set_init(&b.set);
  if (ts_read_beir(path, &b.set, msg, sizeof(msg)))
    die("scifact", msg);
  join_texts(&b);

  bu_progress(b.progress, "bench_hybrid", "LSA: TF-IDF");
  t0 = bu_now();
  build_matrix(&b);
  lsa(&b);
  embed_queries(&b);
  b.lsa_s = bu_now() - t0;

  load(&b);
  for (int c = 0; c < NCONFIG; c++)
    quality(&b, c);
  latency(&b);
  bu_progress_done(b.progress);
  report(&b, json);

  vs_db_close(b.db);
  if (rm_tmp() != 0)
    fprintf(stderr, "bench_hybrid: could not remove all of %s\n", b.dir);
  if (json && fclose(json) != 0)
    die(b.o.json, strerror(errno));
  for (size_t d = 0; d < b.set.ndocs; d++)
    free(b.flat[d]);
  free(b.flat);
  free(b.flat_len);
  for (int c = 0; c < NCONFIG; c++)
    free(b.r[c].l.t);
  free(b.vk);
  free(b.dv);
  free(b.qv);
  free(b.qhas);
  csr_free(&b.a);
  vocab_free(&b.v);
  ts_set_free(&b.set);
  return 0;
}
