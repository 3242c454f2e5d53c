/*
 * cmd_bench_text.c: `vsearch bench text`, BM25 quality and speed of vsearch
 * beside Xapian on the same documents and queries, in one run (DESIGN.md
 * section 8).
 *
 * DATASETS (tools/textsets.h says what is read and indexed from each)
 *
 *  --beir DIR       a BEIR directory (SciFact: DATA/scifact), with qrels
 *  --smart NAMES    Glasgow collections in DATA: cranfield, cisi, medline,
 *                   cacm, or all; with qrels
 *  --synthetic N    N seeded Zipf documents and --synthetic-queries
 *                   queries (500), no qrels: speed and size only
 *
 * With none of them: --beir scifact --smart all.  DATA is --data, else the
 * environment's VS_TEST_DATA, else ../shared/data (relative to the current
 * directory, as the project root is).
 *
 * WHAT EACH SYSTEM DOES
 *
 *  vsearch  A fresh database in a temporary directory, opened without fsync
 *           unless --sync, and a text-only collection (dim 0) with the text
 *           fields, --language, --k1 and --b.  Documents are upserted in
 *           batches of 1000, the document id as the point's string id and
 *           the payload {"text": title + "\n" + text} (--fields flat) or
 *           {"title": title, "text": text} (--fields multi).  When the last
 *           vs_upsert() returns, every document is searchable: that is the
 *           end of indexing.  Queries go through vs_text_search().
 *  xapian   bench/xapian_peer.h: a glass database in a temporary directory
 *           (DB_NO_SYNC unless --sync), the same texts (flat: one field;
 *           multi: text unprefixed and title prefixed), the same batches,
 *           one commit() at the end (Xapian also flushes by itself every
 *           10000 documents); indexing ends when commit() returns.
 *           BM25Weight(k1, 0, 1, b, 0.5); the header lists what still
 *           differs from Lucene's and vsearch's BM25.
 *
 * Both run in this process, one after the other, on one thread.
 *
 * FIGURES
 *
 *  docs/s     documents / seconds spent inside the engine's indexing calls
 *             (vs_upsert(); xapian_peer_add() and commit()), the same work
 *             on both sides: analysis, index update, storing the text.
 *             Reading the files, generating synthetic documents and packing
 *             msgpack payloads are outside the clock.
 *  index MB   the database directory's allocated size after indexing (what
 *             du reports: blocks, not apparent sizes) in MiB.  vsearch: with
 *             the database closed, so LMDB has written everything.  The JSON
 *             records also give the files' apparent size and, for vsearch,
 *             LMDB's used pages ((last page + 1) x page size, from
 *             mdb_env_info(); free pages inside the file included).
 *             vsearch stores every document's payload (its text) and Xapian
 *             its document data (the same text), so both hold the texts.
 *  queries/s  top-10 searches on one thread: after one untimed pass over the
 *             queries, whole passes are repeated until --min-time seconds
 *             (0.5) have passed; that is one run.  --runs runs (3) alternate
 *             between the systems, and each keeps its fastest run, so load
 *             from elsewhere falls on both alike.
 *  quality    One search per query to depth --depth (1000), scored against
 *             the qrels as trec_eval does, averaged over the queries with at
 *             least one relevant judgment (gain > 0):
 *               nDCG@10   sum over ranks r = 1..10 of gain(r) / log2(r + 1),
 *                         divided by the same sum over the judged gains
 *                         sorted best first (trec_eval's ndcg_cut.10).
 *               MAP       average precision over the retrieved top --depth:
 *                         the sum of precision at each relevant document's
 *                         rank, divided by the number of relevant judged
 *                         documents (found or not).
 *               R@100, R@1000  relevant documents in the top 100 / 1000
 *                         over the relevant judged documents (R@1000 needs
 *                         --depth 1000).
 *             A system's own order is kept (ties are not re-sorted by
 *             document id as trec_eval would): what it returns is what
 *             counts.
 *
 * Defaults: k1 = 0.9 and b = 0.4 on every set (Anserini's BEIR settings,
 * which the published SciFact figures use), --language english (SciFact's
 * published figures use Porter: --language porter), --fields flat.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/xapian_peer.h"
#include "engine/vsearch.h"
#include "tools/benchutil.h"
#include "tools/commands.h"
#include "tools/textsets.h"

#define DATA_DIR "../shared/data"
#define BATCH 1000
#define COLL "bench"
#define MAX_BEIR 8
#define MAX_SMART 8
#define SPEED_K 10

typedef struct text_opts {
  const char *beir[MAX_BEIR];
  size_t nbeir;
  const char *smart[MAX_SMART];
  size_t nsmart;
  char *smart_copy; /* what smart[] points into */
  size_t synthetic, synth_queries;
  uint64_t seed;
  const char *data_dir, *dir, *json, *language;
  double k1, b, min_time;
  size_t depth;
  int multi, sync, runs;
  int use_vsearch, use_xapian;
} text_opts;

/* One dataset: a read set, or the synthetic generator. */
typedef struct corpus {
  char name[64];
  char about[600];
  ts_set set;
  ts_synth *synth;
  size_t ndocs, nq;
  const char **qtext; /* nq queries */
  size_t *qlen;
  char *qmem; /* synthetic queries' text */
  int judged; /* has qrels */
  /* judgments grouped by query: jd/jg[joff[q] .. joff[q + 1]) */
  size_t *joff, *jd;
  double *jg;
  size_t nrelq; /* queries with a relevant judgment */
} corpus;

/* A batch of documents ready for both systems. */
typedef struct batch {
  size_t first, n;
  const char *id[BATCH], *title[BATCH], *text[BATCH], *flat[BATCH];
  size_t idlen[BATCH], tlen[BATCH], xlen[BATCH], flen[BATCH];
  char ids[BATCH][24];
  char *gen;  /* synthetic titles and texts: 2 x TS_SYNTH_TEXT_MAX a document */
  char *join; /* flat texts: title + "\n" + text */
  size_t join_cap;
} batch;

typedef ts_measures metrics;

typedef struct peer {
  const char *system;
  int is_vsearch; /* else xapian */
  char dir[4200];
  double index_s, wall_s; /* inside the engine calls; the whole indexing loop */
  double disk_bytes, file_bytes, lmdb_used;
  metrics m;
  double best_qps, best_run_s;
  size_t best_queries;
  vs_db *db;
  xapian_peer *xp;
} peer;

typedef struct bench {
  text_opts *o;
  char tmp[4096];
  int progress;
  FILE *json;
  /* scratch for a search to --depth */
  size_t *hits;
  uint32_t *xdoc;
  double *xscore;
  double *gain_of; /* ndocs gains of the current query's judged documents */
  size_t gain_cap;
} bench;

static void usage(FILE *f) {
  fprintf(f, "usage: vsearch bench text [--beir DIR]... [--smart cranfield,cisi,medline,cacm|all]\n"
             "           [--synthetic N [--synthetic-queries Q (500)] [--seed S (42)]]\n"
             "           [--data DIR] [--k1 X (0.9)] [--b X (0.4)] [--language L (english)]\n"
             "           [--fields flat|multi] [--peers vsearch,xapian] [--depth K (1000)]\n"
             "           [--runs R (3)] [--min-time S (0.5)] [--sync] [--dir TMP] [--threads 1]\n"
             "           [--json FILE]\n"
             "  BM25 quality (nDCG@10, MAP, recall@100/1000 against the qrels), indexing docs/s,\n"
             "  index size and top-10 queries/s on one thread, for vsearch and Xapian side by\n"
             "  side.  Without a dataset: --beir scifact --smart all.  DATA defaults to\n"
             "  $VS_TEST_DATA, else " DATA_DIR ".  SciFact's published BM25 uses --language "
             "porter.\n");
}

/* ---- options ------------------------------------------------------------------------------- */

static int parse_num(const char *opt, const char *val, double lo, double hi, double *out) {
  char *end;
  double v;

  errno = 0;
  v = strtod(val, &end);
  if (errno || end == val || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "vsearch: %s must be a number in %g..%g\n", opt, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_smart(text_opts *o, const char *val) {
  char *save = NULL;

  free(o->smart_copy);
  o->nsmart = 0;
  if ((o->smart_copy = strdup(val)) == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  for (char *t = strtok_r(o->smart_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int known = strcmp(t, "all") == 0;
    for (const char *const *n = ts_smart_names; *n && !known; n++)
      known = strcmp(*n, t) == 0;
    if (!known) {
      fprintf(stderr, "vsearch: unknown SMART set '%s' (cranfield, cisi, medline, cacm, all)\n", t);
      return -1;
    }
    if (strcmp(t, "all") == 0) {
      o->nsmart = 0;
      for (const char *const *n = ts_smart_names; *n && o->nsmart < MAX_SMART; n++)
        o->smart[o->nsmart++] = *n;
      break;
    }
    if (o->nsmart == MAX_SMART) {
      fprintf(stderr, "vsearch: at most %d SMART sets\n", MAX_SMART);
      return -1;
    }
    o->smart[o->nsmart++] = t;
  }
  return 0;
}

static int parse_peers(text_opts *o, const char *val) {
  char *copy = strdup(val), *save = NULL;
  int rc = 0;

  if (copy == NULL)
    return -1;
  o->use_vsearch = o->use_xapian = 0;
  for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
    if (strcmp(t, "vsearch") == 0) {
      o->use_vsearch = 1;
    } else if (strcmp(t, "xapian") == 0) {
      o->use_xapian = 1;
    } else {
      fprintf(stderr, "vsearch: unknown peer '%s' (vsearch, xapian)\n", t);
      rc = -1;
    }
  }
  free(copy);
  if (rc == 0 && !o->use_vsearch && !o->use_xapian) {
    fprintf(stderr, "vsearch: --peers needs vsearch, xapian or both\n");
    rc = -1;
  }
  return rc;
}

/* Returns 0, 1 after --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, text_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    size_t v;
    double d;

    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      return 1;
    }
    if (strcmp(opt, "--sync") == 0) {
      o->sync = 1;
      continue;
    }
    if (val == NULL) {
      fprintf(stderr, "vsearch: %s needs a value\n", opt);
      return -1;
    }
    i++;
    if (strcmp(opt, "--beir") == 0) {
      if (o->nbeir == MAX_BEIR) {
        fprintf(stderr, "vsearch: at most %d --beir sets\n", MAX_BEIR);
        return -1;
      }
      o->beir[o->nbeir++] = val;
    } else if (strcmp(opt, "--smart") == 0) {
      if (parse_smart(o, val))
        return -1;
    } else if (strcmp(opt, "--synthetic") == 0) {
      if (bu_parse_count(opt, val, 1, 1000000000, &o->synthetic))
        return -1;
    } else if (strcmp(opt, "--synthetic-queries") == 0) {
      if (bu_parse_count(opt, val, 1, 1000000, &o->synth_queries))
        return -1;
    } else if (strcmp(opt, "--seed") == 0) {
      if (bu_parse_count(opt, val, 0, SIZE_MAX, &v))
        return -1;
      o->seed = v;
    } else if (strcmp(opt, "--data") == 0) {
      o->data_dir = val;
    } else if (strcmp(opt, "--k1") == 0) {
      if (parse_num(opt, val, 0, 100, &o->k1))
        return -1;
    } else if (strcmp(opt, "--b") == 0) {
      if (parse_num(opt, val, 0, 1, &o->b))
        return -1;
    } else if (strcmp(opt, "--language") == 0) {
      o->language = val;
    } else if (strcmp(opt, "--fields") == 0) {
      if (strcmp(val, "flat") && strcmp(val, "multi")) {
        fprintf(stderr, "vsearch: --fields must be flat or multi\n");
        return -1;
      }
      o->multi = strcmp(val, "multi") == 0;
    } else if (strcmp(opt, "--peers") == 0) {
      if (parse_peers(o, val))
        return -1;
    } else if (strcmp(opt, "--depth") == 0) {
      if (bu_parse_count(opt, val, 10, VS_K_MAX, &o->depth))
        return -1;
    } else if (strcmp(opt, "--runs") == 0) {
      if (bu_parse_count(opt, val, 1, 100, &v))
        return -1;
      o->runs = (int)v;
    } else if (strcmp(opt, "--min-time") == 0) {
      if (parse_num(opt, val, 0, 3600, &d))
        return -1;
      o->min_time = d;
    } else if (strcmp(opt, "--threads") == 0) {
      if (strcmp(val, "1") != 0) {
        fprintf(stderr, "vsearch: bench text measures one thread: --threads must be 1\n");
        return -1;
      }
    } else if (strcmp(opt, "--dir") == 0) {
      o->dir = val;
    } else if (strcmp(opt, "--json") == 0) {
      o->json = val;
    } else {
      fprintf(stderr, "vsearch: unknown option %s\n", opt);
      return -1;
    }
  }
  if (o->nbeir == 0 && o->nsmart == 0 && o->synthetic == 0) {
    o->beir[o->nbeir++] = "scifact";
    if (parse_smart(o, "all"))
      return -1;
  }
  return 0;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* Sum the allocated (du) and apparent sizes of the files under path. */
static void tree_bytes(const char *path, double *alloc, double *apparent) {
  struct stat st;
  DIR *d;
  struct dirent *e;

  if (lstat(path, &st) != 0)
    return;
  if (S_ISREG(st.st_mode)) {
    *alloc += (double)st.st_blocks * 512.0;
    *apparent += (double)st.st_size;
    return;
  }
  if (!S_ISDIR(st.st_mode) || (d = opendir(path)) == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char sub[8192];
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
    tree_bytes(sub, alloc, apparent);
  }
  closedir(d);
}

/* LMDB's used pages, (last page number + 1) x page size, of a closed
 * database: what data.mdb holds, free pages inside it included. */
static double lmdb_used_bytes(const char *dir) {
  MDB_env *env;
  MDB_envinfo info;
  MDB_stat st;
  double used = NAN;

  if (mdb_env_create(&env) != 0)
    return NAN;
  if (mdb_env_open(env, dir, MDB_RDONLY, 0644) == 0 && mdb_env_info(env, &info) == 0 &&
      mdb_env_stat(env, &st) == 0)
    used = ((double)info.me_last_pgno + 1.0) * (double)st.ms_psize;
  mdb_env_close(env);
  return used;
}

static int make_tmp(bench *b) {
  return bu_mkdtemp(b->o->dir, "vsearch-bench-text", b->tmp, sizeof(b->tmp));
}

/* ---- datasets -------------------------------------------------------------------------------- */

static void corpus_free(corpus *c) {
  ts_set_free(&c->set);
  ts_synth_free(c->synth);
  free(c->qtext);
  free(c->qlen);
  free(c->qmem);
  free(c->joff);
  free(c->jd);
  free(c->jg);
  memset(c, 0, sizeof(*c));
}

/* Group the judgments by query (a counting sort) for the metrics. */
static int group_qrels(corpus *c) {
  const ts_set *s = &c->set;
  size_t *fill;

  c->joff = calloc(c->nq + 1, sizeof(size_t));
  c->jd = malloc((s->nqrels ? s->nqrels : 1) * sizeof(size_t));
  c->jg = malloc((s->nqrels ? s->nqrels : 1) * sizeof(double));
  fill = calloc(c->nq + 1, sizeof(size_t));
  if (c->joff == NULL || c->jd == NULL || c->jg == NULL || fill == NULL) {
    free(fill);
    return -1;
  }
  for (size_t i = 0; i < s->nqrels; i++)
    c->joff[s->qrels[i].query + 1]++;
  for (size_t q = 0; q < c->nq; q++)
    c->joff[q + 1] += c->joff[q];
  for (size_t i = 0; i < s->nqrels; i++) {
    size_t q = s->qrels[i].query, at = c->joff[q] + fill[q]++;
    c->jd[at] = s->qrels[i].doc;
    c->jg[at] = s->qrels[i].gain;
  }
  free(fill);
  for (size_t q = 0; q < c->nq; q++) {
    int rel = 0;
    for (size_t j = c->joff[q]; j < c->joff[q + 1]; j++)
      rel |= c->jg[j] > 0;
    c->nrelq += (size_t)rel;
  }
  return 0;
}

static int corpus_from_set(corpus *c) {
  c->ndocs = c->set.ndocs;
  c->nq = c->set.nqueries;
  c->judged = 1;
  snprintf(c->name, sizeof(c->name), "%s", c->set.name);
  snprintf(c->about, sizeof(c->about), "%s", c->set.about);
  c->qtext = malloc((c->nq ? c->nq : 1) * sizeof(char *));
  c->qlen = malloc((c->nq ? c->nq : 1) * sizeof(size_t));
  if (c->qtext == NULL || c->qlen == NULL)
    return -1;
  for (size_t q = 0; q < c->nq; q++) {
    c->qtext[q] = c->set.queries[q].text;
    c->qlen[q] = c->set.queries[q].text_len;
  }
  return group_qrels(c);
}

static const char *data_dir(const text_opts *o) {
  const char *env = getenv("VS_TEST_DATA");

  return o->data_dir ? o->data_dir : env && *env ? env : DATA_DIR;
}

static int load_beir(const text_opts *o, const char *arg, corpus *c) {
  char path[4096], msg[1024];
  struct stat st;

  /* A bare name ("scifact") that is not a directory here is a set in DATA. */
  if (strchr(arg, '/') == NULL && (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)))
    snprintf(path, sizeof(path), "%s/%s", data_dir(o), arg);
  else
    snprintf(path, sizeof(path), "%s", arg);
  if (ts_read_beir(path, &c->set, msg, sizeof(msg))) {
    fprintf(stderr, "vsearch: %s\n", msg);
    return -1;
  }
  if (corpus_from_set(c)) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  return 0;
}

static int load_smart(const text_opts *o, const char *name, corpus *c) {
  char path[4096], msg[1024];

  snprintf(path, sizeof(path), "%s/%s", data_dir(o), name);
  if (ts_read_smart(path, name, &c->set, msg, sizeof(msg))) {
    fprintf(stderr, "vsearch: %s\n", msg);
    return -1;
  }
  if (corpus_from_set(c)) {
    fprintf(stderr, "vsearch: out of memory\n");
    return -1;
  }
  return 0;
}

static int load_synthetic(const text_opts *o, corpus *c) {
  size_t used = 0;

  if (ts_synth_new(o->synthetic, o->seed, &c->synth))
    goto oom;
  c->ndocs = o->synthetic;
  c->nq = o->synth_queries;
  snprintf(c->name, sizeof(c->name), "synthetic-%zu", o->synthetic);
  snprintf(c->about, sizeof(c->about),
           "synthetic: %zu documents (title 4..8 words, text 50..300), %zu queries of 2..5 "
           "words; vocabulary %d pseudo-words, Zipf exponent %.2f, seed %llu; no qrels",
           o->synthetic, o->synth_queries, TS_SYNTH_VOCAB, TS_SYNTH_ZIPF,
           (unsigned long long)o->seed);
  c->qtext = malloc(c->nq * sizeof(char *));
  c->qlen = malloc(c->nq * sizeof(size_t));
  c->qmem = malloc(c->nq * (size_t)64); /* 5 words of at most 8 bytes, spaces, NUL */
  if (c->qtext == NULL || c->qlen == NULL || c->qmem == NULL)
    goto oom;
  for (size_t q = 0; q < c->nq; q++) {
    char tmp[TS_SYNTH_TEXT_MAX];
    size_t n = ts_synth_query(c->synth, q, tmp);
    if (n >= 64)
      n = 63; /* cannot happen with the documented generator */
    memcpy(c->qmem + used, tmp, n);
    c->qmem[used + n] = '\0';
    c->qlen[q] = n;
    used += 64;
  }
  for (size_t q = 0; q < c->nq; q++)
    c->qtext[q] = c->qmem + q * 64;
  return 0;

oom:
  fprintf(stderr, "vsearch: out of memory\n");
  return -1;
}

/* Fill batch b with documents [first, first + n). */
static int batch_fill(const corpus *c, batch *b, size_t first, size_t n) {
  size_t need = 0, at = 0;

  b->first = first;
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    size_t d = first + i;
    if (c->synth) {
      char *t = b->gen + i * 2 * TS_SYNTH_TEXT_MAX, *x = t + TS_SYNTH_TEXT_MAX;
      ts_synth_doc(c->synth, d, t, &b->tlen[i], x, &b->xlen[i]);
      b->title[i] = t;
      b->text[i] = x;
      b->idlen[i] = (size_t)snprintf(b->ids[i], sizeof(b->ids[i]), "%zu", d);
      b->id[i] = b->ids[i];
    } else {
      const ts_doc *doc = &c->set.docs[d];
      b->title[i] = doc->title;
      b->tlen[i] = doc->title_len;
      b->text[i] = doc->text;
      b->xlen[i] = doc->text_len;
      b->id[i] = doc->id;
      b->idlen[i] = strlen(doc->id);
    }
    need += b->tlen[i] + b->xlen[i] + 2;
  }
  if (need > b->join_cap) {
    char *p = realloc(b->join, need);
    if (p == NULL)
      return -1;
    b->join = p;
    b->join_cap = need;
  }
  /* flat = title + "\n" + text, or whichever of them is not empty */
  for (size_t i = 0; i < n; i++) {
    char *p = b->join + at;
    size_t len = 0;
    memcpy(p, b->title[i], b->tlen[i]);
    len = b->tlen[i];
    if (b->tlen[i] && b->xlen[i])
      p[len++] = '\n';
    memcpy(p + len, b->text[i], b->xlen[i]);
    len += b->xlen[i];
    p[len] = '\0';
    b->flat[i] = p;
    b->flen[i] = len;
    at += len + 1;
  }
  return 0;
}

/* ---- quality --------------------------------------------------------------------------------- */

/* Score one ranked list (doc indexes, best first, within the depth) for
 * query q into sums; returns 0 when the query has no relevant judgment
 * (not evaluated), -1 when out of memory. */
static int score_query(bench *b, const corpus *c, size_t q, const size_t *docs, size_t n,
                       metrics *sum) {
  size_t j0 = c->joff[q], j1 = c->joff[q + 1];
  double *ranked;
  int rc;

  if (n > b->o->depth)
    n = b->o->depth;
  if ((ranked = malloc((n ? n : 1) * sizeof(*ranked))) == NULL)
    return -1;
  for (size_t j = j0; j < j1; j++)
    b->gain_of[c->jd[j]] = c->jg[j];
  for (size_t r = 0; r < n; r++)
    ranked[r] = b->gain_of[docs[r]];
  for (size_t j = j0; j < j1; j++)
    b->gain_of[c->jd[j]] = 0;
  rc = ts_measure(ranked, n, c->jg + j0, j1 - j0, sum);
  free(ranked);
  return rc;
}

/* ---- vsearch --------------------------------------------------------------------------------- */

static int vs_fail(const char *what, int rc, const vs_error *err) {
  fprintf(stderr, "vsearch: %s: %s\n", what, err && err->code ? err->message : vs_strerror(rc));
  return -1;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static int vs_index(bench *b, const corpus *c, batch *bt, peer *p) {
  const text_opts *o = b->o;
  const char *flat_fields[] = {"text"}, *multi_fields[] = {"title", "text"};
  vs_collection_config cfg = {0};
  vs_open_options oo = {VS_OPEN_CREATE | (o->sync ? 0 : VS_OPEN_NOSYNC), 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_point pts[BATCH];
  size_t off[BATCH + 1];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  double t0 = bu_now();
  int rc;

  snprintf(p->dir, sizeof(p->dir), "%s/vsearch-%s", b->tmp, c->name);
  if ((rc = vs_db_open(p->dir, &oo, &p->db, &err)))
    return vs_fail(p->dir, rc, &err);
  cfg.name = COLL;
  cfg.dim = 0;
  cfg.text_fields = o->multi ? multi_fields : flat_fields;
  cfg.n_text_fields = o->multi ? 2 : 1;
  cfg.language = o->language;
  cfg.bm25_k1 = o->k1;
  cfg.bm25_b = o->b;
  if ((rc = vs_collection_create(p->db, &cfg, &err)))
    return vs_fail("create collection", rc, &err);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  for (size_t first = 0; first < c->ndocs; first += BATCH) {
    size_t n = c->ndocs - first < BATCH ? c->ndocs - first : BATCH;
    double t;

    bu_progress(b->progress, "bench text", "%s: vsearch indexing %zu / %zu", c->name, first,
                c->ndocs);
    if (batch_fill(c, bt, first, n)) {
      msgpack_sbuffer_destroy(&sb);
      fprintf(stderr, "vsearch: out of memory\n");
      return -1;
    }
    msgpack_sbuffer_clear(&sb);
    for (size_t i = 0; i < n; i++) {
      off[i] = sb.size;
      if (o->multi) {
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "title", 5);
        pack_str(&pk, bt->title[i], bt->tlen[i]);
      } else {
        msgpack_pack_map(&pk, 1);
      }
      pack_str(&pk, "text", 4);
      if (o->multi)
        pack_str(&pk, bt->text[i], bt->xlen[i]);
      else
        pack_str(&pk, bt->flat[i], bt->flen[i]);
    }
    off[n] = sb.size;
    for (size_t i = 0; i < n; i++) {
      pts[i] = (vs_point){0};
      pts[i].id.kind = VS_ID_STR;
      pts[i].id.str = bt->id[i];
      pts[i].id.len = bt->idlen[i];
      pts[i].payload = sb.data + off[i];
      pts[i].payload_len = off[i + 1] - off[i];
    }
    t = bu_now();
    rc = vs_upsert(p->db, COLL, pts, n, &err);
    p->index_s += bu_now() - t;
    if (rc) {
      msgpack_sbuffer_destroy(&sb);
      return vs_fail("upsert", rc, &err);
    }
  }
  msgpack_sbuffer_destroy(&sb);
  p->wall_s = bu_now() - t0;
  return 0;
}

static int vs_run_query(bench *b, const corpus *c, peer *p, size_t q, size_t k, size_t *docs,
                        size_t *n) {
  vs_text_params tp = {0};
  vs_error err = VS_ERROR_INIT;
  vs_hit *hits = NULL;
  size_t got = 0;
  int rc;

  (void)b;
  tp.text = c->qtext[q];
  tp.len = c->qlen[q];
  tp.k = k;
  rc = vs_text_search(p->db, COLL, &tp, &hits, &got, NULL, &err);
  if (rc)
    return vs_fail("text search", rc, &err);
  *n = 0;
  if (docs) {
    for (size_t i = 0; i < got; i++) {
      size_t d = hits[i].id.kind == VS_ID_STR ? ts_find_doc(&c->set, hits[i].id.str, hits[i].id.len)
                                              : SIZE_MAX;
      if (d == SIZE_MAX) {
        fprintf(stderr, "vsearch: text search returned an id that was never indexed\n");
        vs_free(hits);
        return -1;
      }
      docs[(*n)++] = d;
    }
  }
  vs_free(hits);
  return 0;
}

static void vs_close(bench *b, peer *p) {
  double apparent = 0, alloc = 0;

  (void)b;
  if (p->db == NULL)
    return;
  vs_db_close(p->db);
  p->db = NULL;
  tree_bytes(p->dir, &alloc, &apparent);
  p->disk_bytes = alloc;
  p->file_bytes = apparent;
  p->lmdb_used = lmdb_used_bytes(p->dir);
}

/* ---- xapian ---------------------------------------------------------------------------------- */

static int xp_index(bench *b, const corpus *c, batch *bt, peer *p) {
  const text_opts *o = b->o;
  xapian_peer_config cfg = {o->language, o->k1, o->b, o->multi ? 2 : 1, o->sync};
  char msg[1024];
  double t0 = bu_now(), t;

  snprintf(p->dir, sizeof(p->dir), "%s/xapian-%s", b->tmp, c->name);
  if (xapian_peer_create(p->dir, &cfg, &p->xp, msg, sizeof(msg)))
    goto fail;
  for (size_t first = 0; first < c->ndocs; first += BATCH) {
    size_t n = c->ndocs - first < BATCH ? c->ndocs - first : BATCH;

    bu_progress(b->progress, "bench text", "%s: xapian indexing %zu / %zu", c->name, first,
                c->ndocs);
    if (batch_fill(c, bt, first, n)) {
      snprintf(msg, sizeof(msg), "out of memory");
      goto fail;
    }
    t = bu_now();
    for (size_t i = 0; i < n; i++) {
      /* flat: the joined text; multi: text (unprefixed), then title */
      const char *texts[2] = {o->multi ? bt->text[i] : bt->flat[i], bt->title[i]};
      size_t lens[2] = {o->multi ? bt->xlen[i] : bt->flen[i], bt->tlen[i]};
      uint32_t docid;

      if (xapian_peer_add(p->xp, bt->id[i], bt->idlen[i], texts, lens, bt->flat[i], bt->flen[i],
                          &docid, msg, sizeof(msg)))
        goto fail;
      if (docid != first + i + 1) {
        snprintf(msg, sizeof(msg), "document %zu got docid %u (duplicate id?)", first + i,
                 (unsigned)docid);
        goto fail;
      }
    }
    p->index_s += bu_now() - t;
  }
  bu_progress(b->progress, "bench text", "%s: xapian commit", c->name);
  t = bu_now();
  if (xapian_peer_commit(p->xp, msg, sizeof(msg)))
    goto fail;
  p->index_s += bu_now() - t;
  p->wall_s = bu_now() - t0;
  tree_bytes(p->dir, &p->disk_bytes, &p->file_bytes);
  p->lmdb_used = NAN;
  return 0;

fail:
  fprintf(stderr, "vsearch: %s\n", msg);
  return -1;
}

static int xp_run_query(bench *b, const corpus *c, peer *p, size_t q, size_t k, size_t *docs,
                        size_t *n) {
  char msg[1024];
  size_t got;

  if (xapian_peer_search(p->xp, c->qtext[q], c->qlen[q], k, b->xdoc, b->xscore, &got, msg,
                         sizeof(msg))) {
    fprintf(stderr, "vsearch: %s\n", msg);
    return -1;
  }
  *n = 0;
  if (docs)
    for (size_t i = 0; i < got; i++) {
      if (b->xdoc[i] < 1 || b->xdoc[i] > c->ndocs) {
        fprintf(stderr, "vsearch: xapian returned docid %u, not one it was given\n",
                (unsigned)b->xdoc[i]);
        return -1;
      }
      docs[(*n)++] = b->xdoc[i] - 1;
    }
  return 0;
}

static void xp_close(bench *b, peer *p) {
  (void)b;
  xapian_peer_free(p->xp);
  p->xp = NULL;
}

/* ---- measuring ------------------------------------------------------------------------------- */

static int run_query(bench *b, const corpus *c, peer *p, size_t q, size_t k, size_t *docs,
                     size_t *n) {
  return p->is_vsearch ? vs_run_query(b, c, p, q, k, docs, n)
                       : xp_run_query(b, c, p, q, k, docs, n);
}

static int quality(bench *b, const corpus *c, peer *p) {
  metrics sum = {0};

  p->m.ndcg10 = p->m.map = p->m.r100 = p->m.r1000 = NAN;
  p->m.evaluated = 0;
  if (!c->judged)
    return 0;
  for (size_t q = 0; q < c->nq; q++) {
    size_t n;
    if (q % 16 == 0)
      bu_progress(b->progress, "bench text", "%s: %s quality, query %zu / %zu", c->name, p->system,
                  q, c->nq);
    if (run_query(b, c, p, q, b->o->depth, b->hits, &n) ||
        score_query(b, c, q, b->hits, n, &sum) < 0)
      return -1;
  }
  if (sum.evaluated) {
    double e = (double)sum.evaluated;
    p->m.ndcg10 = sum.ndcg10 / e;
    p->m.map = sum.map / e;
    p->m.r100 = sum.r100 / e;
    p->m.r1000 = b->o->depth >= 1000 ? sum.r1000 / e : NAN;
  }
  p->m.evaluated = sum.evaluated;
  return 0;
}

/* One speed run: whole passes over the queries (top 10) until min_time. */
static int speed_run(bench *b, const corpus *c, peer *p) {
  double t0 = bu_now(), el;
  size_t done = 0;

  do {
    for (size_t q = 0; q < c->nq; q++) {
      size_t n;
      if (run_query(b, c, p, q, SPEED_K, NULL, &n))
        return -1;
    }
    done += c->nq;
    el = bu_now() - t0;
  } while (el < b->o->min_time);
  if ((double)done / el > p->best_qps) {
    p->best_qps = (double)done / el;
    p->best_run_s = el;
    p->best_queries = done;
  }
  return 0;
}

static int speed(bench *b, const corpus *c, peer *peers, size_t np) {
  for (size_t i = 0; i < np; i++) {
    peers[i].best_qps = 0;
    bu_progress(b->progress, "bench text", "%s: %s warm-up", c->name, peers[i].system);
    for (size_t q = 0; q < c->nq; q++) {
      size_t n;
      if (run_query(b, c, &peers[i], q, SPEED_K, NULL, &n))
        return -1;
    }
  }
  for (int r = 0; r < b->o->runs; r++)
    for (size_t i = 0; i < np; i++) {
      bu_progress(b->progress, "bench text", "%s: %s queries/s, run %d of %d", c->name,
                  peers[i].system, r + 1, b->o->runs);
      if (speed_run(b, c, &peers[i]))
        return -1;
    }
  return 0;
}

/* ---- reporting ------------------------------------------------------------------------------- */

static json_t *jnum(double v) {
  return isfinite(v) ? json_real(v) : json_null();
}

static void json_record(bench *b, const corpus *c, const peer *p) {
  const text_opts *o = b->o;
  json_t *r;

  if (b->json == NULL)
    return;
  r = json_object();
  json_object_set_new(r, "bench", json_string("text"));
  json_object_set_new(r, "system", json_string(p->system));
  json_object_set_new(r, "dataset", json_string(c->name));
  json_object_set_new(r, "source", json_string(c->about));
  json_object_set_new(r, "docs", json_integer((json_int_t)c->ndocs));
  json_object_set_new(r, "queries", json_integer((json_int_t)c->nq));
  json_object_set_new(r, "evaluated_queries", json_integer((json_int_t)p->m.evaluated));
  json_object_set_new(r, "fields", json_string(o->multi ? "multi" : "flat"));
  json_object_set_new(r, "language", json_string(o->language));
  json_object_set_new(r, "k1", json_real(o->k1));
  json_object_set_new(r, "b", json_real(o->b));
  json_object_set_new(r, "depth", json_integer((json_int_t)o->depth));
  json_object_set_new(r, "sync", json_boolean(o->sync));
  json_object_set_new(r, "query_threads", json_integer(1));
  json_object_set_new(r, "ndcg_cut_10", jnum(p->m.ndcg10));
  json_object_set_new(r, "map", jnum(p->m.map));
  json_object_set_new(r, "recall_100", jnum(p->m.r100));
  json_object_set_new(r, "recall_1000", jnum(p->m.r1000));
  json_object_set_new(r, "index_s", jnum(p->index_s));
  json_object_set_new(r, "index_wall_s", jnum(p->wall_s));
  json_object_set_new(r, "index_docs_per_s", jnum((double)c->ndocs / p->index_s));
  json_object_set_new(r, "index_disk_bytes", jnum(p->disk_bytes));
  json_object_set_new(r, "index_file_bytes", jnum(p->file_bytes));
  json_object_set_new(r, "lmdb_used_bytes", jnum(p->lmdb_used));
  json_object_set_new(r, "qps_top10", jnum(p->best_qps));
  json_object_set_new(r, "qps_runs", json_integer(o->runs));
  json_object_set_new(r, "qps_min_time_s", json_real(o->min_time));
  json_object_set_new(r, "qps_best_run_queries", json_integer((json_int_t)p->best_queries));
  json_dumpf(r, b->json, JSON_COMPACT);
  fputc('\n', b->json);
  fflush(b->json);
  json_decref(r);
}

static void fmt_metric(char *buf, size_t cap, double v) {
  if (isfinite(v))
    snprintf(buf, cap, "%.4f", v);
  else
    snprintf(buf, cap, "-");
}

static void report(bench *b, const corpus *c, const peer *peers, size_t np) {
  const text_opts *o = b->o;

  printf("\n# %s\n#   %s\n", c->name, c->about);
  printf("#   %zu docs, %zu queries", c->ndocs, c->nq);
  if (c->judged)
    printf(" (%zu with a relevant judgment, evaluated)", c->nrelq);
  printf("; fields %s, language %s, k1 %.2f, b %.2f",
         o->multi ? "multi (title, text)" : "flat (title + text)", o->language, o->k1, o->b);
  if (c->judged)
    printf("; MAP and recall over the top %zu", o->depth);
  printf(";\n");
  printf("#   queries/s: top-%d, one thread, best of %d run%s of >= %.1f s; index: %s\n", SPEED_K,
         o->runs, o->runs == 1 ? "" : "s", o->min_time, o->sync ? "fsync on" : "no fsync");
  printf("%-8s %8s %8s %8s %8s %10s %9s %10s\n", "system", "nDCG@10", "MAP", "R@100", "R@1000",
         "docs/s", "index MB", "queries/s");
  for (size_t i = 0; i < np; i++) {
    const peer *p = &peers[i];
    char nd[16], mp[16], r1[16], r2[16];
    fmt_metric(nd, sizeof(nd), p->m.ndcg10);
    fmt_metric(mp, sizeof(mp), p->m.map);
    fmt_metric(r1, sizeof(r1), p->m.r100);
    fmt_metric(r2, sizeof(r2), p->m.r1000);
    printf("%-8s %8s %8s %8s %8s %10.0f %9.1f %10.0f\n", p->system, nd, mp, r1, r2,
           (double)c->ndocs / p->index_s, p->disk_bytes / (1024.0 * 1024.0), p->best_qps);
    json_record(b, c, p);
  }
  if (np == 2)
    printf("vsearch/xapian: queries/s %.2f, docs/s %.2f, index size %.2f\n",
           peers[0].best_qps / peers[1].best_qps, peers[1].index_s / peers[0].index_s,
           peers[0].disk_bytes / peers[1].disk_bytes);
  fflush(stdout);
}

/* ---- one dataset ----------------------------------------------------------------------------- */

static int bench_corpus(bench *b, corpus *c) {
  const text_opts *o = b->o;
  peer peers[2];
  size_t np = 0;
  batch *bt = calloc(1, sizeof(*bt));
  int rc = -1;

  memset(peers, 0, sizeof(peers));
  if (o->use_vsearch) {
    peers[np].system = "vsearch";
    peers[np++].is_vsearch = 1;
  }
  if (o->use_xapian)
    peers[np++].system = "xapian";
  if (bt == NULL || (c->synth && (bt->gen = malloc((size_t)BATCH * 2 * TS_SYNTH_TEXT_MAX)) == NULL))
    goto oom;
  if (c->ndocs > b->gain_cap) {
    free(b->gain_of);
    if ((b->gain_of = calloc(c->ndocs, sizeof(double))) == NULL)
      goto oom;
    b->gain_cap = c->ndocs;
  }
  for (size_t i = 0; i < np; i++) {
    peer *p = &peers[i];
    if ((p->is_vsearch ? vs_index(b, c, bt, p) : xp_index(b, c, bt, p)) || quality(b, c, p))
      goto out;
  }
  if (speed(b, c, peers, np))
    goto out;
  for (size_t i = 0; i < np; i++)
    if (peers[i].db)
      vs_close(b, &peers[i]);
  bu_progress_done(b->progress);
  report(b, c, peers, np);
  rc = 0;
  goto out;

oom:
  fprintf(stderr, "vsearch: out of memory\n");
out:
  bu_progress_done(b->progress);
  for (size_t i = 0; i < np; i++) {
    if (peers[i].db)
      vs_close(b, &peers[i]);
    if (peers[i].xp)
      xp_close(b, &peers[i]);
    if (peers[i].dir[0] && bu_rmtree(peers[i].dir))
      fprintf(stderr, "vsearch: could not remove all of %s\n", peers[i].dir);
  }
  if (bt) {
    free(bt->gen);
    free(bt->join);
    free(bt);
  }
  return rc;
}

/* ---- the command ----------------------------------------------------------------------------- */

int cmd_bench_text(int argc, char **argv) {
  text_opts o;
  bench b;
  int rc;

  memset(&o, 0, sizeof(o));
  memset(&b, 0, sizeof(b));
  o.k1 = 0.9;
  o.b = 0.4;
  o.language = "english";
  o.depth = 1000;
  o.runs = 3;
  o.min_time = 0.5;
  o.synth_queries = 500;
  o.seed = 42;
  o.use_vsearch = o.use_xapian = 1;
  rc = parse_opts(argc, argv, &o);
  if (rc) {
    if (rc < 0)
      usage(stderr);
    free(o.smart_copy);
    return rc < 0 ? 2 : 0;
  }
  b.o = &o;
  b.progress = isatty(STDERR_FILENO);
  rc = 1;
  b.hits = malloc(o.depth * sizeof(size_t));
  b.xdoc = malloc(o.depth * sizeof(uint32_t));
  b.xscore = malloc(o.depth * sizeof(double));
  if (b.hits == NULL || b.xdoc == NULL || b.xscore == NULL) {
    fprintf(stderr, "vsearch: out of memory\n");
    goto out;
  }
  if (o.json && (b.json = fopen(o.json, "w")) == NULL) {
    fprintf(stderr, "vsearch: %s: %s\n", o.json, strerror(errno));
    goto out;
  }
  if (make_tmp(&b))
    goto out;
  printf("# vsearch bench text: BM25 %s%s%s; data %s\n", o.use_vsearch ? "vsearch" : "",
         o.use_vsearch && o.use_xapian ? " beside " : "", o.use_xapian ? "Xapian 1.4" : "",
         data_dir(&o));
  rc = 0;
  for (size_t i = 0; i < o.nbeir + o.nsmart + (o.synthetic ? 1 : 0) && rc == 0; i++) {
    corpus c;
    memset(&c, 0, sizeof(c));
    bu_progress(b.progress, "bench text", "reading %s",
                i < o.nbeir              ? o.beir[i]
                : i < o.nbeir + o.nsmart ? o.smart[i - o.nbeir]
                                         : "synthetic");
    if (i < o.nbeir)
      rc = load_beir(&o, o.beir[i], &c);
    else if (i < o.nbeir + o.nsmart)
      rc = load_smart(&o, o.smart[i - o.nbeir], &c);
    else
      rc = load_synthetic(&o, &c);
    bu_progress_done(b.progress);
    if (rc == 0)
      rc = bench_corpus(&b, &c);
    corpus_free(&c);
    rc = rc ? 1 : 0;
  }
  bu_rmtree(b.tmp);
out:
  if (b.json && fclose(b.json) && rc == 0) {
    fprintf(stderr, "vsearch: %s: %s\n", o.json, strerror(errno));
    rc = 1;
  }
  free(b.hits);
  free(b.xdoc);
  free(b.xscore);
  free(b.gain_of);
  free(o.smart_copy);
  return rc;
}
