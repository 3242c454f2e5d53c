/*
 * cmd_bench.c: `vsearch bench ann`, recall and speed of vsearch beside its
 * peers on the same data, in one run (DESIGN.md section 8).
 *
 * For each index spec the benchmark builds three things from the same base
 * vectors and asks each the same queries with the same k and ef / nprobe:
 *
 *  vsearch  a fresh temporary database (no fsync, a seal threshold so large
 *           that nothing seals in the background), the base upserted in
 *           batches of 1000 with the row numbers as ids, then one
 *           vs_collection_rebuild(): one FAISS segment over everything.
 *           Queries go through vs_search(), the whole public path: a read
 *           transaction, the change-log check, the FAISS walk, re-scoring
 *           from LMDB and building the hits.
 *  faiss    the same spec through FAISS's own C API (index factory, train,
 *           add, one faiss_Index_search() per query), efConstruction set
 *           to vsearch's 200, the index's efSearch (at least k, as vsearch
 *           and hnswlib do) or nprobe set through ParameterSpace before each
 *           sweep point.  vsearch instead passes ef per query in FAISS's
 *           SearchParametersHNSW, and in FAISS 1.7.3 that cannot widen the
 *           candidate queue beyond the segment's own efSearch (64): the rows
 *           for ef above 64 show it.  On ip collections vsearch's HNSW
 *           segments use the MIPS-to-L2 reduction while raw FAISS builds on
 *           METRIC_INNER_PRODUCT: not the same index.
 *  faiss-same  raw FAISS on vsearch's own index: the FAISS index in the
 *           segment file vsearch's rebuild wrote, read back with
 *           vs__segment_read() and searched with one faiss_Index_search()
 *           per query, efSearch / nprobe set as for `faiss`.  The graph is
 *           the very one vsearch walks (two HNSW builds on two threads
 *           never give the same graph, and at 10 us a query the
 *           difference between two graphs is as large as vsearch's own
 *           cost), so vsearch / faiss-same is vsearch's overhead alone: the
 *           ratio the 0.9 target is checked on.  MIPS segments get the
 *           lifted query (q, 0), as vsearch gives them.
 *  hnswlib  for plain HNSW<M> specs: hnswlib 0.6.2 with the same M and
 *           efConstruction 200 (bench/hnswlib_peer.h).
 *
 * Every query is timed on its own (CLOCK_MONOTONIC) on one thread: vsearch
 * already runs a single query on one OpenMP thread, and the raw FAISS calls
 * run after omp_set_num_threads(1).  QPS is nq divided by the summed query
 * times (recall bookkeeping is outside them); p50 / p99 are nearest-rank
 * percentiles of the same times.  Builds use --threads threads (default:
 * what OpenMP would use).  Each sweep point runs --runs times (3) and keeps
 * each system's fastest run, as ann-benchmarks does; the runs of the systems
 * alternate, so load from elsewhere falls on all of them alike.  Ten
 * untimed queries warm each sweep point up.
 *
 * Recall@k is the share of the first k ground-truth ids that come back,
 * averaged over the queries.  Ground truth is read from the dataset when it
 * has one for the metric, otherwise computed exactly with FAISS's flat
 * index.
 *
 * Bytes per vector: the index as written to disk divided by n (vsearch's
 * files in DIR/segments, faiss_write_index(), hnswlib's saveIndex()).
 * vsearch keeps a second copy of every vector in LMDB; the JSON records
 * also give LMDB's data file per vector.
 */
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/hnswlib_peer.h"
#include "engine/vsearch.h"
#include "index/segment.h"
#include "tools/benchutil.h"
#include "tools/commands.h"
#include "tools/datasets.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define DATA_DIR "../shared/data" /* relative to the project root (shared/data/README.md) */
#define EF_CONSTRUCTION 200       /* what vsearch builds HNSW segments with (index/segment.c) */
#define UPSERT_BATCH 1000
#define WARMUP_QUERIES 10
#define MAX_SPECS 32
#define MAX_SWEEP 32
#define COLL "bench"

enum { SWEEP_NONE = 0, SWEEP_EF, SWEEP_NPROBE };

typedef struct ann_opts {
  const char *dataset, *base, *queries, *gt, *data_dir, *dir, *json;
  vs_metric metric;
  char *specs[MAX_SPECS];
  size_t nspecs;
  int efs[MAX_SWEEP], nprobes[MAX_SWEEP];
  size_t nef, nnprobe;
  size_t k, nq;
  int threads, runs, faiss, hnswlib;
  double target; /* the recall the summary compares configurations at */
} ann_opts;

typedef struct dataset {
  char name[64];
  float *base; /* n x dim */
  size_t n, dim;
  float *q; /* nq x dim */
  size_t nq;
  int32_t *gt; /* nq x gtk */
  size_t gtk;
  char gt_from[4096]; /* the ground truth file, or how it was computed */
} dataset;

/* One measured configuration. */
typedef struct result {
  const char *system;
  char spec[VS_INDEX_SPEC_MAX + 1];
  int sweep; /* SWEEP_* */
  int value; /* ef or nprobe */
  double recall, qps, p50_ms, p99_ms, mean_ms;
  double build_s, rebuild_s, upsert_s; /* rebuild and upsert: vsearch only, else NAN */
  double bytes_per_vector, lmdb_bytes_per_vector;
  unsigned long fallbacks; /* vsearch queries whose plan was not "index" */
} result;

/* A system under test: built for one spec, then swept. */
typedef struct peer {
  const char *system;
  int (*set)(struct peer *p, int sweep, int value, char *msg, size_t msgcap);
  int (*search)(struct peer *p, const float *q, size_t k, int64_t *ids, size_t *n, char *msg,
                size_t msgcap);
  double build_s, rebuild_s, upsert_s, bytes_per_vector, lmdb_bytes_per_vector;
  unsigned long fallbacks;
  size_t k;    /* results per query */
  float *dist; /* k distances, for the peers that return them */
  /* the sweep point being measured */
  double best_total; /* seconds of the fastest run */
  double *best;      /* nq query times of the fastest run */
  size_t hits;       /* ground-truth ids found, first run */
  /* vsearch */
  vs_db *db;
  size_t dim;
  int ef, nprobe;
  /* faiss, faiss-same */
  FaissIndex *index;
  FaissParameterSpace *ps;
  float *lifted; /* faiss-same on a MIPS segment: the query with a 0 appended */
  /* hnswlib */
  hnswlib_peer *hnsw;
} peer;

typedef struct bench {
  ann_opts *o;
  dataset *ds;
  char tmp[4096]; /* our temporary directory */
  int build_threads;
  int progress; /* stderr is a terminal */
  result *res;
  size_t nres, capres;
  FILE *json;
  double *lat;  /* nq query times of the current run */
  int64_t *ids; /* k */
} bench;

static void bench_usage(FILE *f) {
  fprintf(f, "usage: vsearch bench ann [--dataset fashion-mnist|bigann10k | --base F --queries F"
             " [--gt F]]\n"
             "           [--metric l2|ip] [--specs \"HNSW16,HNSW32,IVF1024,Flat,...\"]\n"
             "           [--ef 16,32,64,128] [--nprobe 1,4,16,64] [--k 10] [--nq N] [--threads N]\n"
             "           [--runs R (3)] [--dir TMP] [--peers faiss,hnswlib|none] [--json FILE]\n"
             "           [--data-dir DIR] [--target-recall X]\n"
             "  Specs are split at commas; a coarse part (IVFn, IMIn, PCAn, OPQn, ...) keeps the\n"
             "  encoding after it (\"IVF1024,Flat\" is one spec), as HNSWn keeps SQ/PQ after it;\n"
             "  or separate specs with ';'.  Datasets: fashion-mnist from " FMNIST_DIR ",\n"
             "  bigann10k from DATA-DIR/bigann10k (default " DATA_DIR ").\n");
}

/* ---- options ----------------------------------------------------------------------------- */

static int parse_ints(const char *opt, const char *val, int *out, size_t *n) {
  char *copy = strdup(val), *save = NULL;
  int rc = 0;

  if (copy == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  *n = 0;
  for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
    size_t v;
    if (*n == MAX_SWEEP) {
      fprintf(stderr, "vsearch: at most %d values for %s\n", MAX_SWEEP, opt);
      rc = -1;
    } else if ((rc = bu_parse_count(opt, t, 1, VS_EF_MAX, &v)) == 0) {
      out[(*n)++] = (int)v;
    }
  }
  if (rc == 0 && *n == 0) {
    fprintf(stderr, "vsearch: %s needs at least one value\n", opt);
    rc = -1;
  }
  free(copy);
  return rc;
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A part of a FAISS factory string that needs the part after it. */
static int is_coarse(const char *t) {
  static const char *const p[] = {"IVF", "IMI", "PCA", "OPQ", "RR", "ITQ", "L2norm", "Pad"};

  for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
    if (starts(t, p[i]))
      return 1;
  return 0;
}

static int add_spec(ann_opts *o, const char *s, size_t len) {
  if (len == 0 || len > VS_INDEX_SPEC_MAX) {
    fprintf(stderr, "vsearch: an index spec must be 1..%d bytes\n", VS_INDEX_SPEC_MAX);
    return -1;
  }
  if (o->nspecs == MAX_SPECS) {
    fprintf(stderr, "vsearch: at most %d specs\n", MAX_SPECS);
    return -1;
  }
  o->specs[o->nspecs] = strndup(s, len);
  if (o->specs[o->nspecs] == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  o->nspecs++;
  return 0;
}

/* Split "HNSW32,HNSW16,IVF1024,Flat,HNSW32,SQ8" into HNSW32 | HNSW16 | IVF1024,Flat |
 * HNSW32,SQ8: see bench_usage(). */
static int parse_specs(ann_opts *o, const char *val) {
  const char *sep = strchr(val, ';') ? ";" : ",";
  char *copy = strdup(val), *toks[4 * MAX_SPECS], *save = NULL;
  size_t nt = 0;
  int rc = 0;

  for (size_t i = 0; i < o->nspecs; i++)
    free(o->specs[i]);
  o->nspecs = 0;
  if (copy == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  for (char *t = strtok_r(copy, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
    if (nt == sizeof(toks) / sizeof(toks[0])) {
      fprintf(stderr, "vsearch: too many specs\n");
      free(copy);
      return -1;
    }
    toks[nt++] = t;
  }
  for (size_t i = 0; i < nt && rc == 0;) {
    char buf[VS_INDEX_SPEC_MAX + 2];
    size_t j = i + 1;
    int len;

    if (*sep == ',')
      while (j < nt &&
             (is_coarse(toks[j - 1]) || starts(toks[j], "Refine") || starts(toks[j], "RFlat") ||
              (strstr(toks[j - 1], "HNSW") && (starts(toks[j], "SQ") || starts(toks[j], "PQ")))))
        j++;
    len = snprintf(buf, sizeof(buf), "%s", toks[i]);
    for (size_t t = i + 1; t < j && len < (int)sizeof(buf); t++)
      len += snprintf(buf + len, sizeof(buf) - (size_t)len, ",%s", toks[t]);
    rc = add_spec(o, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf));
    i = j;
  }
  if (rc == 0 && o->nspecs == 0) {
    fprintf(stderr, "vsearch: --specs needs at least one spec\n");
    rc = -1;
  }
  free(copy);
  return rc;
}

static int parse_opts(int argc, char **argv, ann_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    size_t v;

    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      bench_usage(stdout);
      return 1;
    }
    if (val == NULL) {
      fprintf(stderr, "vsearch: %s needs a value\n", opt);
      return -1;
    }
    i++;
    if (strcmp(opt, "--dataset") == 0) {
      if (strcmp(val, "fashion-mnist") && strcmp(val, "bigann10k")) {
        fprintf(stderr, "vsearch: --dataset must be fashion-mnist or bigann10k\n");
        return -1;
      }
      o->dataset = val;
    } else if (strcmp(opt, "--base") == 0) {
      o->base = val;
    } else if (strcmp(opt, "--queries") == 0) {
      o->queries = val;
    } else if (strcmp(opt, "--gt") == 0) {
      o->gt = val;
    } else if (strcmp(opt, "--data-dir") == 0) {
      o->data_dir = val;
    } else if (strcmp(opt, "--metric") == 0) {
      if (vs_metric_parse(val, &o->metric) || o->metric == VS_METRIC_COSINE) {
        fprintf(stderr, "vsearch: --metric must be l2 or ip\n");
        return -1;
      }
    } else if (strcmp(opt, "--specs") == 0) {
      if (parse_specs(o, val))
        return -1;
    } else if (strcmp(opt, "--ef") == 0) {
      if (parse_ints(opt, val, o->efs, &o->nef))
        return -1;
    } else if (strcmp(opt, "--nprobe") == 0) {
      if (parse_ints(opt, val, o->nprobes, &o->nnprobe))
        return -1;
    } else if (strcmp(opt, "--k") == 0) {
      if (bu_parse_count(opt, val, 1, VS_K_MAX, &o->k))
        return -1;
    } else if (strcmp(opt, "--nq") == 0) {
      if (bu_parse_count(opt, val, 1, 100000000, &o->nq))
        return -1;
    } else if (strcmp(opt, "--threads") == 0) {
      if (bu_parse_count(opt, val, 0, 1024, &v))
        return -1;
      o->threads = (int)v;
    } else if (strcmp(opt, "--runs") == 0) {
      if (bu_parse_count(opt, val, 1, 100, &v))
        return -1;
      o->runs = (int)v;
    } else if (strcmp(opt, "--dir") == 0) {
      o->dir = val;
    } else if (strcmp(opt, "--json") == 0) {
      o->json = val;
    } else if (strcmp(opt, "--target-recall") == 0) {
      char *end;
      o->target = strtod(val, &end);
      if (*end || end == val || !(o->target > 0 && o->target <= 1)) {
        fprintf(stderr, "vsearch: --target-recall must be in (0, 1]\n");
        return -1;
      }
    } else if (strcmp(opt, "--peers") == 0) {
      char *copy = strdup(val), *save = NULL;
      if (copy == NULL)
        return -1;
      o->faiss = o->hnswlib = 0;
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "faiss") == 0) {
          o->faiss = 1;
        } else if (strcmp(t, "hnswlib") == 0) {
          o->hnswlib = 1;
        } else if (strcmp(t, "none") != 0) {
          fprintf(stderr, "vsearch: unknown peer '%s' (faiss, hnswlib or none)\n", t);
          free(copy);
          return -1;
        }
      }
      free(copy);
    } else {
      fprintf(stderr, "vsearch: unknown option %s\n", opt);
      return -1;
    }
  }
  if (!o->dataset == !o->base || !o->base != !o->queries) {
    fprintf(stderr, "vsearch: give --dataset, or --base and --queries\n");
    return -1;
  }
  if (o->dataset && o->gt) {
    fprintf(stderr, "vsearch: --gt goes with --base and --queries\n");
    return -1;
  }
  return 0;
}

/* ---- data -------------------------------------------------------------------------------- */

static void dataset_free(dataset *d) {
  free(d->base);
  free(d->q);
  free(d->gt);
  memset(d, 0, sizeof(*d));
}

static int read_rows(const char *path, size_t b, size_t e, float **out, size_t *rows, size_t *dim) {
  char msg[512];
  int rc = ds_read_vectors(path, NULL, b, e, out, rows, dim, msg, sizeof(msg));

  if (rc)
    fprintf(stderr, "vsearch: %s\n", msg);
  return rc;
}

/* Exact top-k of every query with FAISS's flat index: the ground truth. */
static int exact_gt(const bench *b, dataset *d, size_t k) {
  FaissIndexFlat *flat = NULL;
  float *dist = malloc(d->nq * k * sizeof(float));
  int64_t *labels = malloc(d->nq * k * sizeof(int64_t));
  int rc = -1;

  d->gt = malloc(d->nq * k * sizeof(int32_t));
  if (dist == NULL || labels == NULL || d->gt == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    goto out;
  }
  bu_progress(b->progress, "bench", "exact ground truth for %zu queries", d->nq);
  omp_set_num_threads(b->build_threads);
  if (faiss_IndexFlat_new_with(&flat, (int64_t)d->dim,
                               b->o->metric == VS_METRIC_IP ? METRIC_INNER_PRODUCT : METRIC_L2) ||
      faiss_Index_add((FaissIndex *)flat, (int64_t)d->n, d->base) ||
      faiss_Index_search((FaissIndex *)flat, (int64_t)d->nq, d->q, (int64_t)k, dist, labels)) {
    fprintf(stderr, "vsearch: ground truth: %s\n", faiss_get_last_error());
    goto out;
  }
  for (size_t i = 0; i < d->nq * k; i++)
    d->gt[i] = (int32_t)labels[i];
  d->gtk = k;
  snprintf(d->gt_from, sizeof(d->gt_from), "exact, FAISS Flat");
  rc = 0;
out:
  faiss_IndexFlat_free(flat);
  free(dist);
  free(labels);
  return rc;
}

static int read_gt(dataset *d, const char *path, size_t k) {
  char msg[512];
  size_t rows, dim;
  int rc = ds_read_ivecs(path, 0, d->nq, &d->gt, &rows, &dim, msg, sizeof(msg));

  if (rc) {
    fprintf(stderr, "vsearch: %s\n", msg);
    return -1;
  }
  if (rows != d->nq || dim < k) {
    fprintf(stderr, "vsearch: %s: %zu rows of %zu ids; %zu rows of at least %zu needed\n", path,
            rows, dim, d->nq, k);
    return -1;
  }
  for (size_t i = 0; i < rows * dim; i++)
    if (d->gt[i] < 0 || (size_t)d->gt[i] >= d->n) {
      fprintf(stderr, "vsearch: %s: id %d is not a row of the %zu base vectors\n", path, d->gt[i],
              d->n);
      return -1;
    }
  d->gtk = dim;
  snprintf(d->gt_from, sizeof(d->gt_from), "%s", path);
  return 0;
}

static int load_data(bench *b, dataset *d) {
  ann_opts *o = b->o;
  size_t rows, qdim, want;
  char path[4096];

  memset(d, 0, sizeof(*d));
  want = o->nq ? o->nq : 1000;
  if (o->dataset && strcmp(o->dataset, "fashion-mnist") == 0) {
    snprintf(d->name, sizeof(d->name), "fashion-mnist");
    bu_progress(b->progress, "bench", "reading %s", FMNIST_DIR);
    if (read_rows(FMNIST_DIR "/train-images-idx3-ubyte.gz", 0, SIZE_MAX, &d->base, &d->n,
                  &d->dim) ||
        read_rows(FMNIST_DIR "/t10k-images-idx3-ubyte.gz", 0, want > 10000 ? 10000 : want, &d->q,
                  &d->nq, &qdim))
      return -1;
  } else if (o->dataset) {
    const char *dir = o->data_dir ? o->data_dir : DATA_DIR;

    snprintf(d->name, sizeof(d->name), "bigann10k");
    snprintf(path, sizeof(path), "%s/bigann10k/bigann10k_base.bvecs", dir);
    if (access(path, R_OK)) {
      fprintf(stderr, "vsearch: %s: %s (run from the project root, or give --data-dir)\n", path,
              strerror(errno));
      return -1;
    }
    if (read_rows(path, 0, want > 100 ? 100 : want, &d->q, &d->nq, &qdim) ||
        read_rows(path, 100, SIZE_MAX, &d->base, &d->n, &d->dim))
      return -1;
    if (o->metric == VS_METRIC_L2) {
      snprintf(path, sizeof(path), "%s/bigann10k/bigann10k_holdout_groundtruth_k100.ivecs", dir);
      if (read_gt(d, path, o->k))
        return -1;
    }
  } else {
    const char *slash = strrchr(o->base, '/');

    snprintf(d->name, sizeof(d->name), "%s", slash ? slash + 1 : o->base);
    if (read_rows(o->base, 0, SIZE_MAX, &d->base, &d->n, &d->dim))
      return -1;
    if (read_rows(o->queries, 0, SIZE_MAX, &d->q, &rows, &qdim))
      return -1;
    d->nq = rows < want ? rows : want;
  }
  if (qdim != d->dim || d->n == 0 || d->nq == 0) {
    fprintf(stderr, "vsearch: %zu base vectors of dim %zu and %zu queries of dim %zu\n", d->n,
            d->dim, d->nq, qdim);
    return -1;
  }
  if (d->n < o->k) {
    fprintf(stderr, "vsearch: k is %zu but the base holds %zu vectors\n", o->k, d->n);
    return -1;
  }
  if (d->gt == NULL && o->gt && read_gt(d, o->gt, o->k))
    return -1;
  if (d->gt == NULL && exact_gt(b, d, o->k))
    return -1;
  return 0;
}

/* ---- files ------------------------------------------------------------------------------- */

static void rm_tree(const char *path) {
  if (bu_rmtree(path))
    fprintf(stderr, "vsearch: could not remove all of %s: %s\n", path, strerror(errno));
}

static double file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size : NAN;
}

/* The regular files directly in `dir`, summed. */
static double dir_bytes(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  double sum = 0;

  if (d == NULL)
    return NAN;
  while ((e = readdir(d)) != NULL) {
    char path[8192];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
      sum += (double)st.st_size;
  }
  closedir(d);
  return sum;
}

/* ---- vsearch ----------------------------------------------------------------------------- */

static int vs_set(peer *p, int sweep, int value, char *msg, size_t msgcap) {
  (void)msg, (void)msgcap;
  p->ef = sweep == SWEEP_EF ? value : 0;
  p->nprobe = sweep == SWEEP_NPROBE ? value : 0;
  return 0;
}

static int vs_query(peer *p, const float *q, size_t k, int64_t *ids, size_t *n, char *msg,
                    size_t msgcap) {
  vs_search_params sp = {q, p->dim, k, p->ef, p->nprobe, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_search_info info;
  vs_hit *hits;
  int rc = vs_search(p->db, COLL, &sp, &hits, n, &info, &err);

  if (rc) {
    snprintf(msg, msgcap, "vs_search: %s", err.code ? err.message : vs_strerror(rc));
    return -1;
  }
  for (size_t i = 0; i < *n; i++)
    ids[i] = hits[i].id.kind == VS_ID_INT ? (int64_t)hits[i].id.num : -1;
  if (strcmp(info.plan, "index") != 0)
    p->fallbacks++;
  vs_free(hits);
  return 0;
}

static int vs_build(bench *b, const char *spec, size_t si, peer *p) {
  const dataset *d = b->ds;
  vs_open_options oo = {VS_OPEN_CREATE | VS_OPEN_NOSYNC, 0, 0, 1u << 30};
  vs_collection_config cfg = {0};
  vs_error err = VS_ERROR_INIT;
  vs_point *pts = calloc(UPSERT_BATCH, sizeof(*pts));
  char dir[4200], path[4300];
  double t0, t1, t2;
  int rc;

  if (pts == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  snprintf(dir, sizeof(dir), "%s/vsearch-%zu", b->tmp, si);
  rc = vs_db_open(dir, &oo, &p->db, &err);
  if (rc)
    goto fail;
  cfg.name = COLL;
  cfg.dim = (uint32_t)d->dim;
  cfg.metric = b->o->metric;
  cfg.index = spec;
  rc = vs_collection_create(p->db, &cfg, &err);
  if (rc)
    goto fail;
  t0 = bu_now();
  for (size_t i = 0; i < d->n; i += UPSERT_BATCH) {
    size_t m = d->n - i < UPSERT_BATCH ? d->n - i : UPSERT_BATCH;

    bu_progress(b->progress, "bench", "%s: vsearch upsert %zu/%zu", spec, i, d->n);
    for (size_t j = 0; j < m; j++) {
      pts[j].id = vs_id_int(i + j);
      pts[j].vector = d->base + (i + j) * d->dim;
      pts[j].dim = d->dim;
    }
    rc = vs_upsert(p->db, COLL, pts, m, &err);
    if (rc)
      goto fail;
  }
  t1 = bu_now();
  bu_progress(b->progress, "bench", "%s: vsearch rebuild", spec);
  /* With threads = 0, vs_collection_rebuild() uses the calling thread's
   * OpenMP setting, which measure_point() left at 1 for raw FAISS. */
  omp_set_num_threads(b->build_threads);
  rc = vs_collection_rebuild(p->db, COLL, NULL, b->o->threads, &err);
  if (rc)
    goto fail;
  t2 = bu_now();
  p->upsert_s = t1 - t0;
  p->rebuild_s = t2 - t1;
  p->build_s = t2 - t0;
  snprintf(path, sizeof(path), "%s/segments", dir);
  p->bytes_per_vector = dir_bytes(path) / (double)d->n;
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  p->lmdb_bytes_per_vector = file_bytes(path) / (double)d->n;
  p->dim = d->dim;
  free(pts);
  return 0;

fail:
  fprintf(stderr, "vsearch: %s (%s): %s\n", spec, dir, err.code ? err.message : vs_strerror(rc));
  free(pts);
  return -1;
}

/* ---- raw FAISS --------------------------------------------------------------------------- */

static int faiss_set(peer *p, int sweep, int value, char *msg, size_t msgcap) {
  const char *name = sweep == SWEEP_EF ? "efSearch" : "nprobe";

  if (sweep == SWEEP_NONE)
    return 0;
  /* vsearch and hnswlib search HNSW with a breadth of at least k; FAISS
   * would stop after efSearch steps even when k is larger. */
  if (sweep == SWEEP_EF && (size_t)value < p->k)
    value = (int)p->k;
  if (faiss_ParameterSpace_set_index_parameter(p->ps, p->index, name, value)) {
    snprintf(msg, msgcap, "FAISS %s = %d: %s", name, value, faiss_get_last_error());
    return -1;
  }
  return 0;
}

static int faiss_query(peer *p, const float *q, size_t k, int64_t *ids, size_t *n, char *msg,
                       size_t msgcap) {
  if (faiss_Index_search(p->index, 1, q, (int64_t)k, p->dist, ids)) {
    snprintf(msg, msgcap, "FAISS search: %s", faiss_get_last_error());
    return -1;
  }
  *n = k;
  while (*n > 0 && ids[*n - 1] < 0)
    (*n)--;
  return 0;
}

static int faiss_build(bench *b, const char *spec, int sweep, size_t si, peer *p) {
  const dataset *d = b->ds;
  char path[4200];
  double t0 = bu_now();

  bu_progress(b->progress, "bench", "%s: faiss build", spec);
  omp_set_num_threads(b->build_threads);
  if (faiss_index_factory(&p->index, (int)d->dim, spec,
                          b->o->metric == VS_METRIC_IP ? METRIC_INNER_PRODUCT : METRIC_L2) ||
      faiss_ParameterSpace_new(&p->ps) ||
      (sweep == SWEEP_EF && faiss_ParameterSpace_set_index_parameter(
                                p->ps, p->index, "efConstruction", EF_CONSTRUCTION)) ||
      (!faiss_Index_is_trained(p->index) && faiss_Index_train(p->index, (int64_t)d->n, d->base)) ||
      faiss_Index_add(p->index, (int64_t)d->n, d->base)) {
    fprintf(stderr, "vsearch: faiss %s: %s\n", spec, faiss_get_last_error());
    return -1;
  }
  p->build_s = bu_now() - t0;
  p->rebuild_s = p->upsert_s = p->lmdb_bytes_per_vector = NAN;
  snprintf(path, sizeof(path), "%s/faiss-%zu.index", b->tmp, si);
  if (faiss_write_index_fname(p->index, path) == 0)
    p->bytes_per_vector = file_bytes(path) / (double)d->n;
  else
    p->bytes_per_vector = NAN;
  unlink(path);
  return 0;
}

/* The FAISS index of the one segment vsearch's rebuild left in its
 * database (vsearch-SI/segments), taken out of the segment. */
static int same_build(bench *b, size_t si, peer *p) {
  char dir[4200], path[4500], msg[512] = "no segment file";
  vs__segment *seg = NULL;
  struct dirent *e;
  DIR *dp;

  snprintf(dir, sizeof(dir), "%s/vsearch-%zu/segments", b->tmp, si);
  dp = opendir(dir);
  while (dp && (e = readdir(dp)) != NULL && seg == NULL) {
    if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp"))
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (vs__segment_read(path, &seg, msg, sizeof(msg)))
      seg = NULL;
  }
  if (dp)
    closedir(dp);
  /* Internal id i is row i: the rows were upserted in order, and a
   * segment numbers its points in pid order. */
  if (seg == NULL || seg->n != b->ds->n) {
    fprintf(stderr, "vsearch: faiss-same: %s\n", seg ? "more than one segment" : msg);
    vs__segment_free(seg);
    return -1;
  }
  p->index = seg->index;
  seg->index = NULL;
  if (seg->mips && (p->lifted = calloc(b->ds->dim + 1, sizeof(float))) == NULL) {
    vs__segment_free(seg);
    return -1;
  }
  vs__segment_free(seg);
  p->build_s = p->rebuild_s = p->upsert_s = p->lmdb_bytes_per_vector = NAN;
  p->bytes_per_vector = NAN;
  p->dim = b->ds->dim;
  return faiss_ParameterSpace_new(&p->ps) ? -1 : 0;
}

static int same_query(peer *p, const float *q, size_t k, int64_t *ids, size_t *n, char *msg,
                      size_t msgcap) {
  if (p->lifted) {
    memcpy(p->lifted, q, p->dim * sizeof(float)); /* lifted[dim] stays 0 */
    q = p->lifted;
  }
  return faiss_query(p, q, k, ids, n, msg, msgcap);
}

/* ---- hnswlib ----------------------------------------------------------------------------- */

static int hnswlib_set(peer *p, int sweep, int value, char *msg, size_t msgcap) {
  (void)sweep, (void)msg, (void)msgcap;
  hnswlib_peer_set_ef(p->hnsw, (size_t)value);
  return 0;
}

static int hnswlib_query(peer *p, const float *q, size_t k, int64_t *ids, size_t *n, char *msg,
                         size_t msgcap) {
  return hnswlib_peer_search(p->hnsw, q, k, ids, p->dist, n, msg, msgcap);
}

/* M of a plain "HNSW<M>" (or "HNSW<M>,Flat") spec, else 0. */
static unsigned hnsw_m(const char *spec) {
  unsigned m;
  int end = -1;

  if (sscanf(spec, "HNSW%u%n", &m, &end) != 1 || end < 0 || m < 2 || m > 1000)
    return 0;
  return spec[end] == '\0' || strcmp(spec + end, ",Flat") == 0 ? m : 0;
}

static int hnswlib_build(bench *b, const char *spec, size_t si, peer *p) {
  const dataset *d = b->ds;
  char path[4200], msg[512];
  double t0 = bu_now();

  bu_progress(b->progress, "bench", "%s: hnswlib build", spec);
  if (hnswlib_peer_new(b->o->metric == VS_METRIC_IP, d->dim, d->n, hnsw_m(spec), EF_CONSTRUCTION,
                       &p->hnsw, msg, sizeof(msg)) ||
      hnswlib_peer_add(p->hnsw, d->base, d->n, 0, b->build_threads, msg, sizeof(msg))) {
    fprintf(stderr, "vsearch: %s\n", msg);
    return -1;
  }
  p->build_s = bu_now() - t0;
  p->rebuild_s = p->upsert_s = p->lmdb_bytes_per_vector = NAN;
  snprintf(path, sizeof(path), "%s/hnswlib-%zu.bin", b->tmp, si);
  p->bytes_per_vector = hnswlib_peer_save(p->hnsw, path, msg, sizeof(msg)) == 0
                            ? file_bytes(path) / (double)d->n
                            : NAN;
  unlink(path);
  return 0;
}

static void peer_close(peer *p) {
  vs_db_close(p->db);
  if (p->index)
    faiss_Index_free(p->index);
  if (p->ps)
    faiss_ParameterSpace_free(p->ps);
  hnswlib_peer_free(p->hnsw);
  free(p->lifted);
  free(p->dist);
  free(p->best);
  memset(p, 0, sizeof(*p));
}

/* ---- measuring --------------------------------------------------------------------------- */

static const char *sweep_name(int sweep) {
  return sweep == SWEEP_EF ? "ef" : sweep == SWEEP_NPROBE ? "nprobe" : "-";
}

static int add_result(bench *b, const result *r) {
  if (b->nres == b->capres) {
    size_t cap = b->capres ? 2 * b->capres : 64;
    result *n = realloc(b->res, cap * sizeof(*n));
    if (n == NULL)
      return -1;
    b->res = n;
    b->capres = cap;
  }
  b->res[b->nres++] = *r;
  return 0;
}

static void json_num(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ", \"%s\": %.6g", key, v);
  else
    fprintf(f, ", \"%s\": null", key);
}

/* Specs and dataset names are FAISS factory strings and file names: escape
 * what JSON needs anyway. */
static void json_str(FILE *f, const char *key, const char *s) {
  fprintf(f, ", \"%s\": \"", key);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void print_row(const bench *b, const result *r) {
  char param[32], build[32], rebuild[32];

  if (r->sweep == SWEEP_NONE)
    snprintf(param, sizeof(param), "-");
  else
    snprintf(param, sizeof(param), "%s=%d", sweep_name(r->sweep), r->value);
  if (isfinite(r->build_s))
    snprintf(build, sizeof(build), "%.2f", r->build_s);
  else
    snprintf(build, sizeof(build), "-"); /* faiss-same: vsearch's build */
  if (isfinite(r->rebuild_s))
    snprintf(rebuild, sizeof(rebuild), "%.2f", r->rebuild_s);
  else
    snprintf(rebuild, sizeof(rebuild), "-");
  printf("%-10s %-16s %-10s %9.4f %9.0f %8.3f %8.3f %9s %9s %10.1f\n", r->system, r->spec, param,
         r->recall, r->qps, r->p50_ms, r->p99_ms, build, rebuild, r->bytes_per_vector);
  fflush(stdout);
  if (b->json) {
    const ann_opts *o = b->o;
    FILE *f = b->json;

    fprintf(f, "{\"bench\": \"ann\"");
    json_str(f, "system", r->system);
    json_str(f, "dataset", b->ds->name);
    json_str(f, "metric", vs_metric_name(o->metric));
    json_str(f, "spec", r->spec);
    fprintf(f, ", \"n\": %zu, \"dim\": %zu, \"nq\": %zu, \"k\": %zu", b->ds->n, b->ds->dim,
            b->ds->nq, o->k);
    if (r->sweep == SWEEP_NONE)
      fprintf(f, ", \"param\": null, \"value\": null");
    else
      fprintf(f, ", \"param\": \"%s\", \"value\": %d", sweep_name(r->sweep), r->value);
    fprintf(f, ", \"ef_construction\": %d, \"build_threads\": %d, \"query_threads\": 1",
            EF_CONSTRUCTION, b->build_threads);
    fprintf(f, ", \"runs\": %d", o->runs);
    json_str(f, "ground_truth", b->ds->gt_from);
    json_num(f, "recall", r->recall);
    json_num(f, "qps", r->qps);
    json_num(f, "p50_ms", r->p50_ms);
    json_num(f, "p99_ms", r->p99_ms);
    json_num(f, "mean_ms", r->mean_ms);
    json_num(f, "build_s", r->build_s);
    json_num(f, "rebuild_s", r->rebuild_s);
    json_num(f, "upsert_s", r->upsert_s);
    json_num(f, "bytes_per_vector", r->bytes_per_vector);
    json_num(f, "lmdb_bytes_per_vector", r->lmdb_bytes_per_vector);
    if (strcmp(r->system, "vsearch") == 0)
      fprintf(f, ", \"fallbacks\": %lu", r->fallbacks);
    fprintf(f, "}\n");
    fflush(f);
  }
}

/* One pass over the queries; the first pass also counts recall hits. */
static int run_queries(bench *b, peer *p, int run, char *msg, size_t msgcap) {
  const dataset *d = b->ds;
  size_t k = b->o->k;
  double total = 0;

  for (size_t i = 0; i < d->nq; i++) {
    const float *q = d->q + i * d->dim;
    double t0 = bu_now(), t;
    size_t n;

    if (p->search(p, q, k, b->ids, &n, msg, msgcap))
      return -1;
    t = bu_now() - t0;
    b->lat[i] = t;
    total += t;
    if (run == 0) {
      const int32_t *g = d->gt + i * d->gtk;
      for (size_t a = 0; a < n; a++)
        for (size_t c = 0; c < k; c++)
          if (b->ids[a] == g[c]) {
            p->hits++;
            break;
          }
    }
  }
  if (total < p->best_total) {
    p->best_total = total;
    memcpy(p->best, b->lat, d->nq * sizeof(double));
  }
  return 0;
}

/* Measure one sweep point (ef or nprobe = value) on every peer.  Runs are
 * interleaved, vsearch, faiss, hnswlib, vsearch, ..., so that load from
 * elsewhere on the machine falls on all of them alike; each keeps its
 * fastest run. */
static int measure_point(bench *b, peer *peers, size_t np, const char *spec, int sweep, int value) {
  const dataset *d = b->ds;
  size_t nwarm = d->nq < WARMUP_QUERIES ? d->nq : WARMUP_QUERIES;
  char msg[512];
  peer *p = NULL;

  /* vsearch runs a single query on one OpenMP thread; so must raw FAISS. */
  omp_set_num_threads(1);
  for (size_t i = 0; i < np; i++) {
    p = &peers[i];
    if (p->set(p, sweep, value, msg, sizeof(msg)))
      goto fail;
    for (size_t j = 0; j < nwarm; j++) {
      size_t n;
      if (p->search(p, d->q + j * d->dim, b->o->k, b->ids, &n, msg, sizeof(msg)))
        goto fail;
    }
    p->fallbacks = 0;
    p->hits = 0;
    p->best_total = INFINITY;
  }
  for (int run = 0; run < b->o->runs; run++)
    for (size_t i = 0; i < np; i++) {
      p = &peers[i];
      bu_progress(b->progress, "bench", "%s %s=%d: %s, run %d of %d", spec, sweep_name(sweep),
                  value, p->system, run + 1, b->o->runs);
      if (run_queries(b, p, run, msg, sizeof(msg)))
        goto fail;
    }
  bu_progress_done(b->progress);
  for (size_t i = 0; i < np; i++) {
    result r;

    p = &peers[i];
    memset(&r, 0, sizeof(r));
    bu_sort(p->best, d->nq);
    r.system = p->system;
    snprintf(r.spec, sizeof(r.spec), "%s", spec);
    r.sweep = sweep;
    r.value = value;
    r.recall = (double)p->hits / (double)(d->nq * b->o->k);
    r.qps = (double)d->nq / p->best_total;
    r.mean_ms = p->best_total / (double)d->nq * 1e3;
    r.p50_ms = bu_percentile(p->best, d->nq, 50) * 1e3;
    r.p99_ms = bu_percentile(p->best, d->nq, 99) * 1e3;
    r.build_s = p->build_s;
    r.rebuild_s = p->rebuild_s;
    r.upsert_s = p->upsert_s;
    r.bytes_per_vector = p->bytes_per_vector;
    r.lmdb_bytes_per_vector = p->lmdb_bytes_per_vector;
    r.fallbacks = p->fallbacks / (unsigned long)b->o->runs;
    print_row(b, &r);
    if (add_result(b, &r)) {
      snprintf(msg, sizeof(msg), "out of memory");
      goto fail;
    }
  }
  return 0;

fail:
  bu_progress_done(b->progress);
  fprintf(stderr, "vsearch: %s %s: %s\n", p ? p->system : "bench", spec, msg);
  return -1;
}

static int spec_sweep(const char *spec) {
  if (strstr(spec, "IVF") || strstr(spec, "IMI"))
    return SWEEP_NPROBE;
  return strstr(spec, "HNSW") ? SWEEP_EF : SWEEP_NONE;
}

/* Build every system for one spec, then sweep them side by side: each sweep
 * point runs vsearch, faiss and hnswlib back to back, so a noisy neighbour
 * shifts all three alike. */
static int bench_spec(bench *b, const char *spec, size_t si) {
  const ann_opts *o = b->o;
  int sweep = spec_sweep(spec), rc = -1;
  const int *vals = sweep == SWEEP_EF ? o->efs : o->nprobes;
  size_t nvals = sweep == SWEEP_EF ? o->nef : sweep == SWEEP_NPROBE ? o->nnprobe : 1;
  static const int none = 0;
  peer peers[4];
  size_t np = 0;
  char dir[4200];

  if (sweep == SWEEP_NONE)
    vals = &none;
  memset(peers, 0, sizeof(peers));
  peers[np++] = (peer){.system = "vsearch", .set = vs_set, .search = vs_query};
  if (o->faiss) {
    peers[np++] = (peer){.system = "faiss", .set = faiss_set, .search = faiss_query};
    peers[np++] = (peer){.system = "faiss-same", .set = faiss_set, .search = same_query};
  }
  if (o->hnswlib && hnsw_m(spec))
    peers[np++] = (peer){.system = "hnswlib", .set = hnswlib_set, .search = hnswlib_query};
  for (size_t i = 0; i < np; i++) {
    peers[i].k = o->k;
    peers[i].dist = malloc(o->k * sizeof(float));
    peers[i].best = malloc(b->ds->nq * sizeof(double));
    if (peers[i].dist == NULL || peers[i].best == NULL) {
      fprintf(stderr, "vsearch: out of memory\n");
      goto out;
    }
  }
  for (size_t i = 0; i < np; i++) {
    const char *sys = peers[i].system;
    if (strcmp(sys, "vsearch") == 0      ? vs_build(b, spec, si, &peers[i])
        : strcmp(sys, "faiss") == 0      ? faiss_build(b, spec, sweep, si, &peers[i])
        : strcmp(sys, "faiss-same") == 0 ? same_build(b, si, &peers[i])
                                         : hnswlib_build(b, spec, si, &peers[i]))
      goto out;
  }
  bu_progress_done(b->progress);
  for (size_t v = 0; v < nvals; v++)
    if (measure_point(b, peers, np, spec, sweep, vals[v]))
      goto out;
  rc = 0;
out:
  for (size_t i = 0; i < np; i++)
    peer_close(&peers[i]);
  snprintf(dir, sizeof(dir), "%s/vsearch-%zu", b->tmp, si);
  rm_tree(dir);
  return rc;
}

/* ---- summary ----------------------------------------------------------------------------- */

static const result *find(const bench *b, const char *system, const result *like) {
  for (size_t i = 0; i < b->nres; i++) {
    const result *r = &b->res[i];
    if (strcmp(r->system, system) == 0 && strcmp(r->spec, like->spec) == 0 &&
        r->sweep == like->sweep && r->value == like->value)
      return r;
  }
  return NULL;
}

/* The fastest configuration of `system` that reaches the target recall. */
static const result *best_at(const bench *b, const char *system, double target) {
  const result *best = NULL;

  for (size_t i = 0; i < b->nres; i++) {
    const result *r = &b->res[i];
    if (strcmp(r->system, system) == 0 && r->recall >= target && (!best || r->qps > best->qps))
      best = r;
  }
  return best;
}

/* "HNSW32 ef=64", or "Flat" where nothing is swept. */
static void describe(const result *r, char *buf, size_t cap) {
  if (r->sweep == SWEEP_NONE)
    snprintf(buf, cap, "%s", r->spec);
  else
    snprintf(buf, cap, "%s %s=%d", r->spec, sweep_name(r->sweep), r->value);
}

static void summary(const bench *b) {
  const ann_opts *o = b->o;
  const result *bv, *bh;
  double worst = INFINITY;
  char x[VS_INDEX_SPEC_MAX + 32], y[VS_INDEX_SPEC_MAX + 32];
  int any = 0;

  for (size_t i = 0; i < b->nres; i++) {
    const result *r = &b->res[i], *f, *g;
    double ratio;
    if (strcmp(r->system, "vsearch") || (f = find(b, "faiss-same", r)) == NULL)
      continue;
    g = find(b, "faiss", r);
    if (!any)
      printf(
          "\nvsearch/faiss QPS ratio (same spec and parameters; target >= 0.90 for HNSW on the same"
          " index%s):\n  %-24s %10s %9s\n",
          o->metric == VS_METRIC_IP ? "; ip: vsearch HNSW uses the MIPS-to-L2 graph" : "", "",
          "same index", "own build");
    any = 1;
    ratio = r->qps / f->qps;
    describe(r, x, sizeof(x));
    printf("  %-24s %10.2f %9.2f   recall %.4f vs %.4f (own build)   p50 %.3f vs %.3f ms%s\n", x,
           ratio, g ? r->qps / g->qps : NAN, r->recall, g ? g->recall : NAN, r->p50_ms, f->p50_ms,
           r->sweep == SWEEP_EF && ratio < 0.9 ? "   below target" : "");
    if (r->sweep == SWEEP_EF && ratio < worst)
      worst = ratio;
  }
  if (isfinite(worst))
    printf("  lowest HNSW ratio on the same index %.2f (%s)\n", worst,
           worst >= 0.9 ? "meets 0.90" : "misses 0.90");
  /* One build line per spec: its first vsearch row. */
  any = 0;
  for (size_t i = 0; i < b->nres; i++) {
    const result *r = &b->res[i], *f;
    int first = 1;
    for (size_t j = 0; j < i && first; j++)
      first = strcmp(b->res[j].spec, r->spec) != 0;
    if (!first || strcmp(r->system, "vsearch") || (f = find(b, "faiss", r)) == NULL)
      continue;
    if (!any)
      printf("\nvsearch/faiss build-time ratio (index = rebuild alone; total = upsert + rebuild):"
             "\n");
    any = 1;
    printf("  %-24s index %5.2f   total %5.2f   (%.2f s + %.2f s vs %.2f s)\n", r->spec,
           r->rebuild_s / f->build_s, r->build_s / f->build_s, r->upsert_s, r->rebuild_s,
           f->build_s);
  }
  bv = best_at(b, "vsearch", o->target);
  bh = best_at(b, "hnswlib", o->target);
  printf("\nbest configuration with recall@%zu >= %.2f on %s:\n", o->k, o->target, b->ds->name);
  if (bv) {
    describe(bv, x, sizeof(x));
    printf("  vsearch %-24s %9.0f QPS   recall %.4f\n", x, bv->qps, bv->recall);
  } else {
    printf("  vsearch: no configuration reached it\n");
  }
  if (bh) {
    describe(bh, y, sizeof(y));
    printf("  hnswlib %-24s %9.0f QPS   recall %.4f\n", y, bh->qps, bh->recall);
  } else if (o->hnswlib) {
    int ran = 0;
    for (size_t i = 0; i < b->nres && !ran; i++)
      ran = strcmp(b->res[i].system, "hnswlib") == 0;
    printf("  hnswlib: %s\n", ran ? "no configuration reached it" : "not run (no plain HNSW spec)");
  }
  if (bv && bh)
    printf("  vsearch/hnswlib QPS ratio %.2f\n", bv->qps / bh->qps);
}

/* ---- the command ------------------------------------------------------------------------- */

static int make_tmp(bench *b) {
  return bu_mkdtemp(b->o->dir, "vsearch-bench", b->tmp, sizeof(b->tmp));
}

static int bench_ann(int argc, char **argv) {
  static const int efs[] = {16, 32, 64, 128}, nprobes[] = {1, 4, 16, 64};
  ann_opts o;
  dataset d;
  bench b;
  int rc;

  memset(&o, 0, sizeof(o));
  memset(&d, 0, sizeof(d));
  memset(&b, 0, sizeof(b));
  o.metric = VS_METRIC_L2;
  o.k = 10;
  o.runs = 3;
  o.faiss = o.hnswlib = 1;
  o.target = 0.95;
  memcpy(o.efs, efs, sizeof(efs));
  o.nef = sizeof(efs) / sizeof(efs[0]);
  memcpy(o.nprobes, nprobes, sizeof(nprobes));
  o.nnprobe = sizeof(nprobes) / sizeof(nprobes[0]);
  rc = parse_opts(argc, argv, &o);
  if (rc == 0 && o.nspecs == 0)
    rc = parse_specs(&o, "HNSW16,HNSW32");
  if (rc) {
    if (rc < 0)
      bench_usage(stderr);
    rc = rc < 0 ? 2 : 0;
    goto out_opts;
  }
  b.o = &o;
  b.ds = &d;
  b.progress = isatty(STDERR_FILENO);
  /* Captured before any vs_search() sets this thread's count to 1. */
  b.build_threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  rc = 1;
  if (load_data(&b, &d))
    goto out_data;
  b.lat = malloc(d.nq * sizeof(double));
  b.ids = malloc(o.k * sizeof(int64_t));
  if (b.lat == NULL || b.ids == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    goto out_data;
  }
  if (o.json && (b.json = fopen(o.json, "w")) == NULL) {
    fprintf(stderr, "vsearch: %s: %s\n", o.json, strerror(errno));
    goto out_data;
  }
  if (make_tmp(&b))
    goto out_json;
  bu_progress_done(b.progress);
  printf("# vsearch bench ann: %s, %zu base x %zu, %zu queries, metric %s, k %zu, ground truth "
         "%s\n",
         d.name, d.n, d.dim, d.nq, vs_metric_name(o.metric), o.k, d.gt_from);
  printf("# build threads %d, queries one at a time on 1 thread, best of %d run%s, "
         "efConstruction %d\n",
         b.build_threads, o.runs, o.runs == 1 ? "" : "s", EF_CONSTRUCTION);
  printf("%-10s %-16s %-10s %9s %9s %8s %8s %9s %9s %10s\n", "system", "spec", "param", "recall@k",
         "QPS", "p50 ms", "p99 ms", "build s", "rebuild s", "bytes/vec");
  rc = 0;
  for (size_t i = 0; i < o.nspecs && rc == 0; i++)
    rc = bench_spec(&b, o.specs[i], i) ? 1 : 0;
  if (rc == 0)
    summary(&b);
  rm_tree(b.tmp);
out_json:
  if (b.json && fclose(b.json) && rc == 0) {
    fprintf(stderr, "vsearch: %s: %s\n", o.json, strerror(errno));
    rc = 1;
  }
out_data:
  free(b.lat);
  free(b.ids);
  free(b.res);
  dataset_free(&d);
out_opts:
  for (size_t i = 0; i < o.nspecs; i++)
    free(o.specs[i]);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "ann") == 0)
    return bench_ann(argc - 1, argv + 1);
  if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0)) {
    bench_usage(stdout);
    return 0;
  }
  if (argc >= 1 && (strcmp(argv[0], "text") == 0 || strcmp(argv[0], "server") == 0))
    fprintf(stderr, "vsearch: bench %s is not implemented yet\n", argv[0]);
  bench_usage(stderr);
  return 2;
}
