/*
 * test_text.c: BM25 text search against an oracle that scores every
 * document from the words the test generated (no index), so pruning
 * (block-max MaxScore), runs, merges, deletes, replacements, filters and
 * restarts are all checked against exhaustive scoring.
 *
 * Documents use language "none" and words made of letters only, so the
 * analyzer keeps each word as it is and the oracle knows the terms.
 */
#include "tests/testutil.h"

#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXDOCS 4096
#define MAXLEN 64
#define NFIELDS 2

typedef struct doc {
  int live;
  uint64_t order; /* upsert order: the engine's pid order */
  int cat;        /* payload "cat": 0..99 */
  int len[NFIELDS];
  int w[NFIELDS][MAXLEN]; /* word numbers */
} doc;

typedef struct model {
  doc d[MAXDOCS];
  uint64_t next_order;
  double k1, b;
} model;

static const char *const FIELDS[NFIELDS] = {"title", "body"};

static void word(int n, char *out) {
  int i = 0;
  out[i++] = 'w';
  do {
    out[i++] = (char)('a' + n % 26);
    n /= 26;
  } while (n);
  out[i] = 0;
}

/* Words drawn with a skew (small numbers common), vocabulary v. */
static int pick(uint64_t *rs, int v) {
  double u = (double)(tu_rand(rs) % 1000000) / 1e6;
  return (int)(v * u * u * u);
}

static void payload_of(const doc *d, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  char w[16];

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, NFIELDS + 1);
  for (int f = 0; f < NFIELDS; f++) {
    char text[MAXLEN * 12] = "";
    size_t at = 0;
    for (int i = 0; i < d->len[f]; i++) {
      word(d->w[f][i], w);
      at += (size_t)snprintf(text + at, sizeof(text) - at, i ? " %s" : "%s", w);
    }
    msgpack_pack_str(&pk, strlen(FIELDS[f]));
    msgpack_pack_str_body(&pk, FIELDS[f], strlen(FIELDS[f]));
    msgpack_pack_str(&pk, at);
    msgpack_pack_str_body(&pk, text, at);
  }
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "cat", 3);
  msgpack_pack_int(&pk, d->cat);
}

static void make_doc(doc *d, uint64_t *rs, int vocab) {
  d->cat = (int)(tu_rand(rs) % 100);
  d->len[0] = (int)(tu_rand(rs) % 6);
  d->len[1] = (int)(tu_rand(rs) % MAXLEN);
  for (int f = 0; f < NFIELDS; f++)
    for (int i = 0; i < d->len[f]; i++)
      d->w[f][i] = pick(rs, vocab);
}

static void create_text(vs_db *db, const char *name, double k1, double b) {
  vs_collection_config cfg = {name, 0, VS_METRIC_L2, NULL, FIELDS, NFIELDS, "none", k1, b};
  vs_error err;
  TU_EXPECT(vs_collection_create(db, &cfg, &err), VS_OK, &err);
}

/* Upsert docs ids[0..n) of the model (already filled in) as one batch. */
static void upsert_docs(vs_db *db, model *m, const int *ids, size_t n) {
  vs_point p[256];
  msgpack_sbuffer sb[256];
  vs_error err;

  assert_true(n <= 256);
  for (size_t i = 0; i < n; i++) {
    payload_of(&m->d[ids[i]], &sb[i]);
    p[i] = (vs_point){vs_id_int((uint64_t)ids[i]), NULL, 0, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(db, "t", p, n, &err), VS_OK, &err);
  for (size_t i = 0; i < n; i++) {
    m->d[ids[i]].live = 1;
    m->d[ids[i]].order = m->next_order++;
    msgpack_sbuffer_destroy(&sb[i]);
  }
}

static int plans_seen[3];        /* other, bm25-filtered, filtered-scan */
static uint64_t scored, matched; /* documents scored by the engine, and holding a term */
static uint32_t last_runs;       /* runs (info.segments) the last query searched */

typedef struct qword {
  int w, n;
} qword;

typedef struct oracle_hit {
  int id;
  double score;
  uint64_t order;
} oracle_hit;

static int by_best(const void *a, const void *b) {
  const oracle_hit *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return (x->order > y->order) - (x->order < y->order);
}

/* Exhaustive BM25 in the engine's summation order (fields, then query
 * words in first-occurrence order).  cat_lo..cat_hi filters (-1: none). */
static size_t oracle(const model *m, const qword *q, size_t nq, const double *wf, int cat_lo,
                     int cat_hi, oracle_hit *out) {
  static double s[MAXDOCS];
  static int hit[MAXDOCS];
  size_t n = 0;

  memset(s, 0, sizeof(s));
  memset(hit, 0, sizeof(hit));
  for (int f = 0; f < NFIELDS; f++) {
    double N = 0, total = 0, avgdl;
    if (wf[f] == 0)
      continue;
    for (int i = 0; i < MAXDOCS; i++)
      if (m->d[i].live && m->d[i].len[f]) {
        N++;
        total += m->d[i].len[f];
      }
    if (N == 0)
      continue;
    avgdl = total / N;
    for (size_t t = 0; t < nq; t++) {
      double df = 0, idf, w, ka = m->k1 * (1 - m->b), kb = m->k1 * m->b / avgdl;
      for (int i = 0; i < MAXDOCS; i++) {
        int tf = 0;
        for (int j = 0; m->d[i].live && j < m->d[i].len[f]; j++)
          tf += m->d[i].w[f][j] == q[t].w;
        df += tf > 0;
      }
      if (df == 0)
        continue;
      idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
      w = wf[f] * (double)q[t].n * idf * (m->k1 + 1);
      for (int i = 0; i < MAXDOCS; i++) {
        uint32_t tf = 0, dl = (uint32_t)m->d[i].len[f];
        for (int j = 0; m->d[i].live && j < m->d[i].len[f]; j++)
          tf += m->d[i].w[f][j] == q[t].w;
        if (tf) {
          s[i] += w * tf / (tf + ka + kb * dl);
          hit[i] = 1;
        }
      }
    }
  }
  for (int i = 0; i < MAXDOCS; i++)
    if (hit[i] && (cat_lo < 0 || (m->d[i].cat >= cat_lo && m->d[i].cat <= cat_hi)))
      out[n++] = (oracle_hit){i, s[i], m->d[i].order};
  qsort(out, n, sizeof(*out), by_best);
  return n;
}

/* Run one query both ways and compare hit for hit. */
static void check_query(vs_db *db, const model *m, uint64_t *rs, int vocab, size_t k,
                        const double *wf, int cat_lo, int cat_hi, const char *want_plan) {
  static oracle_hit want[MAXDOCS];
  qword q[8];
  size_t nq = 0, nwords = 1 + tu_rand(rs) % 5, nwant, n;
  char text[256] = "", w[16];
  vs_field_weight fw[NFIELDS] = {{FIELDS[0], (float)wf[0]}, {FIELDS[1], (float)wf[1]}};
  vs_text_params p = {text, 0, k, 0, NULL, fw, NFIELDS};
  vs_filter *filter = NULL;
  vs_search_info info;
  vs_hit *hits;
  vs_error err;
  uint64_t count;

  for (size_t i = 0; i < nwords; i++) {
    int x = pick(rs, vocab), j;
    for (j = 0; j < (int)nq && q[j].w != x; j++)
      ;
    if (j == (int)nq)
      q[nq++] = (qword){x, 0};
    q[j].n++;
    word(x, w);
    strcat(text, i ? " " : "");
    strcat(text, w);
  }
  p.len = strlen(text);
  if (cat_lo >= 0) {
    char json[128];
    snprintf(json, sizeof(json),
             "{\"must\": [{\"key\": \"cat\", \"range\": {\"gte\": %d, \"lte\": %d}}]}", cat_lo,
             cat_hi);
    TU_EXPECT(vs_filter_parse_json(json, strlen(json), &filter, &err), VS_OK, &err);
    p.filter = filter;
  }
  nwant = oracle(m, q, nq, wf, cat_lo, cat_hi, want);
  TU_EXPECT(vs_text_search(db, "t", &p, &hits, &n, &info, &err), VS_OK, &err);
  if (n != (nwant < k ? nwant : k))
    fail_msg("query '%s' k=%zu: %zu hits, the oracle has %zu", text, k, n, nwant);
  for (size_t i = 0; i < n; i++) {
    if (hits[i].id.num != (uint64_t)want[i].id || hits[i].score != (float)want[i].score)
      fail_msg("query '%s' k=%zu hit %zu: id %llu score %.9g, oracle id %d score %.9g (plan %s)",
               text, k, i, (unsigned long long)hits[i].id.num, hits[i].score, want[i].id,
               want[i].score, info.plan);
  }
  if (want_plan && n)
    assert_string_equal(info.plan, want_plan);
  scored += info.candidates;
  last_runs = info.segments;
  matched += nwant;
  plans_seen[strcmp(info.plan, "bm25-filtered") == 0   ? 1
             : strcmp(info.plan, "filtered-scan") == 0 ? 2
                                                       : 0]++;
  vs_free(hits);
  TU_EXPECT(vs_text_count(db, "t", &p, &count, &err), VS_OK, &err);
  assert_int_equal(count, nwant);
  vs_filter_free(filter);
}

static void check_many(vs_db *db, const model *m, uint64_t *rs, int vocab, int queries) {
  static const size_t ks[] = {1, 10, 100};
  static const double weights[][NFIELDS] = {{1, 1}, {2.5, 0.5}, {0, 1}};

  for (int i = 0; i < queries; i++)
    check_query(db, m, rs, vocab, ks[i % 3], weights[i % 3], -1, -1, i % 3 == 2 ? NULL : "bm25");
}

/* Scores by hand: three documents, English analysis, Lucene's defaults. */
static void test_hand_computed(void **state) {
  tu_fixture *fx = *state;
  const char *fields[] = {"text"};
  vs_collection_config cfg = {"h", 0, VS_METRIC_L2, NULL, fields, 1, "english", 0, 0};
  static const char *const texts[] = {"The quick brown fox", "quick quick dogs", "a lazy dog"};
  vs_text_params p = {"quick dog", 9, 10};
  vs_point pt[3];
  msgpack_sbuffer sb[3];
  vs_hit *hits;
  size_t n;
  vs_error err;
  double N = 3, avgdl = (3.0 + 3.0 + 2.0) / 3, k1 = 1.2, b = 0.75;
  double idf2 = log(1 + (N - 2 + 0.5) / (2 + 0.5));
  double s1, s2, s3;

  TU_EXPECT(vs_collection_create(fx->db, &cfg, &err), VS_OK, &err);
  for (int i = 0; i < 3; i++) {
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb[i]);
    msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "text", 4);
    msgpack_pack_str_with_body(&pk, texts[i], strlen(texts[i]));
    pt[i] = (vs_point){vs_id_int((uint64_t)i + 1), NULL, 0, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(fx->db, "h", pt, 3, &err), VS_OK, &err);
  /* "the" is a stopword: lengths 3, 3, 2 ("a" too); "dogs" stems to "dog". */
  s1 = idf2 * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 3 / avgdl));  /* quick */
  s2 = idf2 * 2 * (k1 + 1) / (2 + k1 * (1 - b + b * 3 / avgdl)) + /* quick x2 */
       idf2 * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 3 / avgdl));  /* dogs */
  s3 = idf2 * 1 * (k1 + 1) / (1 + k1 * (1 - b + b * 2 / avgdl));  /* dog */
  TU_EXPECT(vs_text_search(fx->db, "h", &p, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 3);
  assert_int_equal(hits[0].id.num, 2);
  assert_float_equal(hits[0].score, s2, 1e-5);
  assert_int_equal(hits[1].id.num, 3);
  assert_float_equal(hits[1].score, s3, 1e-5);
  assert_int_equal(hits[2].id.num, 1);
  assert_float_equal(hits[2].score, s1, 1e-5);
  vs_free(hits);
  /* Only stopwords: no terms, no hits. */
  p.text = "the a an";
  p.len = strlen(p.text);
  TU_EXPECT(vs_text_search(fx->db, "h", &p, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 0);
  for (int i = 0; i < 3; i++)
    msgpack_sbuffer_destroy(&sb[i]);
}

/* An array of strings is one text: the same terms and length as the
 * strings joined; other values in a text field are not text. */
static void test_array_field(void **state) {
  tu_fixture *fx = *state;
  const char *fields[] = {"body"};
  vs_collection_config cfg = {"a", 0, VS_METRIC_L2, NULL, fields, 1, "english", 0, 0};
  vs_text_params p = {"quick dog", 9, 10};
  msgpack_sbuffer sb[3];
  msgpack_packer pk;
  vs_point pt[3];
  vs_hit *hits;
  size_t n;
  vs_error err;

  TU_EXPECT(vs_collection_create(fx->db, &cfg, &err), VS_OK, &err);
  for (int i = 0; i < 3; i++) {
    msgpack_sbuffer_init(&sb[i]);
    msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "body", 4);
    if (i == 0) {
      msgpack_pack_str_with_body(&pk, "quick brown fox lazy dog", 24);
    } else if (i == 1) {
      msgpack_pack_array(&pk, 3);
      msgpack_pack_str_with_body(&pk, "quick brown", 11);
      msgpack_pack_str_with_body(&pk, "fox", 3);
      msgpack_pack_str_with_body(&pk, "lazy dog", 8);
    } else {
      msgpack_pack_int(&pk, 7); /* not text: indexes nothing */
    }
    pt[i] = (vs_point){vs_id_int((uint64_t)i), NULL, 0, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(fx->db, "a", pt, 3, &err), VS_OK, &err);
  TU_EXPECT(vs_text_search(fx->db, "a", &p, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 2);
  assert_int_equal(hits[0].id.num, 0);
  assert_int_equal(hits[1].id.num, 1);
  assert_true(hits[0].score > 0 && hits[0].score == hits[1].score);
  vs_free(hits);
  for (int i = 0; i < 3; i++)
    msgpack_sbuffer_destroy(&sb[i]);
}

/* Random corpora in batches of every size (so runs merge), replacements
 * and deletes, checked against the oracle, then again after a reopen. */
static void test_oracle(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 42;
  const int vocab = 400;
  vs_error err;

  memset(&m, 0, sizeof(m));
  m.k1 = 0.9, m.b = 0.4;
  create_text(fx->db, "t", m.k1, m.b);
  for (int round = 0; round < 60; round++) {
    int ids[256];
    size_t n = 1 + tu_rand(&rs) % (round % 7 == 0 ? 200 : 20);

    for (size_t i = 0; i < n; i++) {
      ids[i] = (int)(tu_rand(&rs) % 3000);
      for (size_t j = 0; j < i; j++)
        if (ids[j] == ids[i])
          ids[i] = (int)(tu_rand(&rs) % 3000), j = (size_t)-1; /* distinct */
      make_doc(&m.d[ids[i]], &rs, vocab);
    }
    upsert_docs(fx->db, &m, ids, n);
    if (round % 5 == 4) { /* delete a few */
      vs_id del[10];
      size_t nd = 0, deleted;
      for (int i = 0; i < 10; i++) {
        int x = (int)(tu_rand(&rs) % 3000);
        del[nd++] = vs_id_int((uint64_t)x);
        m.d[x].live = 0;
      }
      TU_EXPECT(vs_delete(fx->db, "t", del, nd, &deleted, &err), VS_OK, &err);
    }
    if (round % 10 == 9)
      check_many(fx->db, &m, &rs, vocab, 12);
  }
  scored = matched = 0;
  check_many(fx->db, &m, &rs, vocab, 60);
  /* Block-max MaxScore skipped documents: it scored fewer than hold a term. */
  assert_true(scored * 2 < matched);

  vs_db_close(fx->db);
  fx->db = tu_open(fx->dir, 0);
  check_many(fx->db, &m, &rs, vocab, 30);

  /* Compaction: one run, the deleted points gone, the same answers. */
  TU_EXPECT(vs_collection_rebuild(fx->db, "t", "HNSW32", 0, &err), VS_EINVAL, &err);
  assert_true(last_runs > 1);
  TU_EXPECT(vs_collection_rebuild(fx->db, "t", NULL, 0, &err), VS_OK, &err);
  check_many(fx->db, &m, &rs, vocab, 30);
  assert_int_equal(last_runs, 1);
}

/* Filters: the payload index's set inside the walk, and the scan of few
 * passing points, both against the oracle. */
static void test_filters(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 7;
  const int vocab = 300;
  static const double wf[NFIELDS] = {1, 1};

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int batch = 0; batch < 16; batch++) {
    int ids[200];
    for (int i = 0; i < 200; i++) {
      ids[i] = batch * 200 + i;
      make_doc(&m.d[ids[i]], &rs, vocab);
    }
    upsert_docs(fx->db, &m, ids, 200);
  }
  memset(plans_seen, 0, sizeof(plans_seen));
  for (int i = 0; i < 20; i++) {
    check_query(fx->db, &m, &rs, vocab, 10, wf, 0, 49, NULL);
    check_query(fx->db, &m, &rs, vocab, 10, wf, 3, 3, NULL);
    check_query(fx->db, &m, &rs, vocab, 100, wf, 10, 10, NULL);
    check_query(fx->db, &m, &rs, vocab, 10, wf, 0, 98, NULL);
  }
  /* Both plans ran: the walk for wide filters, the probe for narrow ones. */
  assert_true(plans_seen[1] > 0);
  assert_true(plans_seen[2] > 0);
}

/* Writes are searchable at once; deletes and replacements too. */
static void test_immediate(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 3;
  static const double wf[NFIELDS] = {1, 1};
  vs_error err;

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int i = 0; i < 300; i++) {
    int id = (int)(tu_rand(&rs) % 100);
    make_doc(&m.d[id], &rs, 50);
    upsert_docs(fx->db, &m, &id, 1);
    if (i % 3 == 0) {
      vs_id del = vs_id_int(tu_rand(&rs) % 100);
      size_t deleted;
      m.d[del.num].live = 0;
      TU_EXPECT(vs_delete(fx->db, "t", &del, 1, &deleted, &err), VS_OK, &err);
    }
    check_query(fx->db, &m, &rs, 50, 5, wf, -1, -1, NULL);
  }
}

/* The same id twice in one batch: the last wins, in the text index too. */
static void test_batch_replace(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 11;
  static const double wf[NFIELDS] = {1, 1};
  vs_point p[2];
  msgpack_sbuffer sb[2];
  vs_error err;

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int i = 0; i < 2; i++) {
    make_doc(&m.d[5], &rs, 30);
    payload_of(&m.d[5], &sb[i]);
    p[i] = (vs_point){vs_id_int(5), NULL, 0, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(fx->db, "t", p, 2, &err), VS_OK, &err);
  m.d[5].live = 1;
  m.d[5].order = 1;
  for (int i = 0; i < 30; i++)
    check_query(fx->db, &m, &rs, 30, 5, wf, -1, -1, NULL);
  for (int i = 0; i < 2; i++)
    msgpack_sbuffer_destroy(&sb[i]);
}

/* The only text point deleted, replaced by one without text, everything
 * deleted, rebuilt: the text index can become empty (a merge that leaves
 * nothing must drop the last runs). */
static void test_empty_again(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 21;
  static const double wf[NFIELDS] = {1, 1};
  vs_error err;
  size_t deleted;

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int round = 0; round < 3; round++) {
    int id = 7;
    vs_id del = vs_id_int(7);

    make_doc(&m.d[id], &rs, 20);
    m.d[id].len[0] = m.d[id].len[1] = 3;
    upsert_docs(fx->db, &m, &id, 1);
    check_query(fx->db, &m, &rs, 20, 5, wf, -1, -1, NULL);
    if (round == 1) { /* replaced by a version without text */
      m.d[id].len[0] = m.d[id].len[1] = 0;
      upsert_docs(fx->db, &m, &id, 1);
    } else {
      TU_EXPECT(vs_delete(fx->db, "t", &del, 1, &deleted, &err), VS_OK, &err);
      m.d[id].live = 0;
    }
    check_query(fx->db, &m, &rs, 20, 5, wf, -1, -1, NULL);
    TU_EXPECT(vs_collection_rebuild(fx->db, "t", NULL, 0, &err), VS_OK, &err);
    check_query(fx->db, &m, &rs, 20, 5, wf, -1, -1, NULL);
  }
}

/* Batches of alternating sizes still merge: the runs stay few. */
static void test_runs_stay_few(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 31;
  static const double wf[NFIELDS] = {1, 1};
  int next = 0;

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int batch = 0; batch < 400; batch++) {
    int ids[20], n = batch % 2 ? 3 : 4 + (int)(tu_rand(&rs) % 12);
    for (int i = 0; i < n; i++) {
      ids[i] = next++ % MAXDOCS;
      make_doc(&m.d[ids[i]], &rs, 100);
    }
    upsert_docs(fx->db, &m, ids, (size_t)n);
  }
  last_runs = 0;
  for (int i = 0; i < 20; i++)
    check_query(fx->db, &m, &rs, 100, 10, wf, -1, -1, NULL);
  assert_true(last_runs > 0 && last_runs <= 24);
}

/* An index written by another analyzer (as after an upgrade of libstemmer
 * or utf8proc) is refused, not misread, until a rebuild reindexes it. */
static void test_analyzer_changed(void **state) {
  tu_fixture *fx = *state;
  static model m;
  uint64_t rs = 41, bogus = 12345;
  static const double wf[NFIELDS] = {1, 1};
  int ids[100];
  vs_id del = vs_id_int(3);
  vs_text_params p = {"wa", 2, 5};
  vs_hit *hits;
  size_t n, deleted;
  vs_error err = VS_ERROR_INIT;
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_val k = {1, "\xfd"}, v = {8, &bogus};

  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  create_text(fx->db, "t", m.k1, m.b);
  for (int i = 0; i < 100; i++) {
    ids[i] = i;
    make_doc(&m.d[i], &rs, 50);
  }
  upsert_docs(fx->db, &m, ids, 100);
  vs_db_close(fx->db);
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  mdb_env_set_mapsize(env, 1u << 30);
  assert_int_equal(mdb_env_open(env, fx->dir, 0, 0644), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "c1.tdf", 0, &dbi), 0);
  assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  fx->db = tu_open(fx->dir, 0);

  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_EVERSION, &err);
  assert_non_null(strstr(err.message, "rebuild"));
  vs_error_clear(&err);
  TU_EXPECT(vs_delete(fx->db, "t", &del, 1, &deleted, &err), VS_EVERSION, &err);
  TU_EXPECT(vs_collection_rebuild(fx->db, "t", NULL, 0, &err), VS_OK, &err);
  for (int i = 0; i < 20; i++)
    check_query(fx->db, &m, &rs, 50, 10, wf, -1, -1, NULL);
  TU_EXPECT(vs_delete(fx->db, "t", &del, 1, &deleted, &err), VS_OK, &err);
  m.d[3].live = 0;
  for (int i = 0; i < 20; i++)
    check_query(fx->db, &m, &rs, 50, 10, wf, -1, -1, NULL);
}

static void test_bad_input(void **state) {
  tu_fixture *fx = *state;
  vs_field_weight bad_field = {"nope", 1}, nan_weight = {"body", NAN};
  vs_text_params p = {"hello", 5, 10};
  vs_hit *hits;
  size_t n;
  vs_error err;
  uint64_t count;
  char big[VS_QUERY_TEXT_MAX + 1];

  create_text(fx->db, "t", 0, 0);
  p.k = 0;
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_EINVAL, &err);
  p.k = VS_K_MAX + 1;
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_ETOOLARGE, &err);
  p.k = 10;
  p.text = "caf\xc3";
  p.len = 4;
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_EINVAL, &err);
  TU_EXPECT(vs_text_count(fx->db, "t", &p, &count, &err), VS_EINVAL, &err);
  p.text = "hello";
  p.len = 5;
  p.weights = &bad_field;
  p.n_weights = 1;
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_EINVAL, &err);
  p.weights = &nan_weight;
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_EINVAL, &err);
  p.n_weights = 0;
  memset(big, 'a', sizeof(big));
  p.text = big;
  p.len = sizeof(big);
  TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &n, NULL, &err), VS_ETOOLARGE, &err);
  p.text = "hello";
  p.len = 5;
  TU_EXPECT(vs_text_search(fx->db, "nope", &p, &hits, &n, NULL, &err), VS_ENOTFOUND, &err);
  /* A payload whose text field is not valid UTF-8 is refused whole. */
  {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    vs_point pt;
    uint64_t c;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "body", 4);
    msgpack_pack_str_with_body(&pk, "ok \xff", 4);
    pt = (vs_point){vs_id_int(1), NULL, 0, sb.data, sb.size};
    TU_EXPECT(vs_upsert(fx->db, "t", &pt, 1, &err), VS_EINVAL, &err);
    TU_EXPECT(vs_count(fx->db, "t", &c, &err), VS_OK, &err);
    assert_int_equal(c, 0);
    msgpack_sbuffer_destroy(&sb);
  }
}

/* SIGKILL during writes: after reopening, the text index agrees with
 * whatever points LMDB holds. */
static void kill_child(const char *dir, uint64_t seed) {
  static model m;
  vs_db *db = tu_open(dir, 0);
  uint64_t rs = seed;

  memset(&m, 0, sizeof(m));
  for (;;) {
    int ids[50];
    for (int i = 0; i < 50; i++) {
      ids[i] = (int)(tu_rand(&rs) % 2000);
      make_doc(&m.d[ids[i]], &rs, 200);
    }
    upsert_docs(db, &m, ids, 50);
    if (tu_rand(&rs) % 4 == 0) {
      vs_id del[5];
      size_t deleted;
      vs_error err;
      for (int i = 0; i < 5; i++)
        del[i] = vs_id_int(tu_rand(&rs) % 2000);
      vs_delete(db, "t", del, 5, &deleted, &err);
    }
  }
}

/* Rebuild the model from what the database holds. */
static void model_from_db(vs_db *db, model *m) {
  static vs_id ids[2000];
  vs_record *recs;
  vs_error err;

  for (int i = 0; i < 2000; i++)
    ids[i] = vs_id_int((uint64_t)i);
  TU_EXPECT(vs_get(db, "t", ids, 2000, VS_GET_PAYLOAD, &recs, &err), VS_OK, &err);
  for (int i = 0; i < 2000; i++) {
    doc *d = &m->d[i];
    msgpack_unpacked u;
    memset(d, 0, sizeof(*d));
    if (!recs[i].found)
      continue;
    d->live = 1;
    msgpack_unpacked_init(&u);
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)recs[i].payload, recs[i].payload_len, NULL),
        MSGPACK_UNPACK_SUCCESS);
    for (uint32_t j = 0; j < u.data.via.map.size; j++) {
      msgpack_object *k = &u.data.via.map.ptr[j].key, *v = &u.data.via.map.ptr[j].val;
      if (k->via.str.size == 3) {
        d->cat = (int)v->via.i64;
        continue;
      }
      int f = k->via.str.size == 5 ? 0 : 1;
      char text[MAXLEN * 12 + 1];
      memcpy(text, v->via.str.ptr, v->via.str.size);
      text[v->via.str.size] = 0;
      for (char *tok = strtok(text, " "); tok; tok = strtok(NULL, " ")) {
        int n = 0, mul = 1;
        for (const char *c = tok + 1; *c; c++, mul *= 26)
          n += (*c - 'a') * mul;
        d->w[f][d->len[f]++] = n;
      }
    }
    msgpack_unpacked_destroy(&u);
  }
  vs_free(recs);
}

static void test_sigkill(void **state) {
  tu_fixture *fx = *state;
  static model m;
  static const double wf[NFIELDS] = {1, 1};
  uint64_t rs = 99;
  vs_error err;

  create_text(fx->db, "t", 1.2, 0.75);
  vs_db_close(fx->db);
  fx->db = NULL;
  for (int round = 0; round < 6; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      kill_child(fx->dir, 1000 + (uint64_t)round);
      _exit(0);
    }
    struct timespec ts = {0, (long)(20000 + tu_rand(&rs) % 200000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  fx->db = tu_open(fx->dir, 0);
  memset(&m, 0, sizeof(m));
  m.k1 = 1.2, m.b = 0.75;
  model_from_db(fx->db, &m);
  /* Which version of a point is older is not visible through the API, so
   * hits are compared by score (ties may list equal scores in any order). */
  for (int i = 0; i < 40; i++) {
    static oracle_hit want[MAXDOCS];
    qword q[4];
    size_t nq = 0, got;
    char text[64] = "", w[16];
    vs_text_params p = {text, 0, 20};
    vs_hit *hits;
    uint64_t count;

    for (int j = 0; j < 3; j++) {
      int x = pick(&rs, 200), t;
      for (t = 0; t < (int)nq && q[t].w != x; t++)
        ;
      if (t == (int)nq)
        q[nq++] = (qword){x, 0};
      q[t].n++;
      word(x, w);
      strcat(text, j ? " " : "");
      strcat(text, w);
    }
    p.len = strlen(text);
    size_t nwant = oracle(&m, q, nq, wf, -1, -1, want);
    TU_EXPECT(vs_text_search(fx->db, "t", &p, &hits, &got, NULL, &err), VS_OK, &err);
    assert_int_equal(got, nwant < 20 ? nwant : 20);
    for (size_t j = 0; j < got; j++)
      if (hits[j].score != (float)want[j].score)
        fail_msg("after SIGKILL, '%s' hit %zu: score %.9g, oracle %.9g", text, j, hits[j].score,
                 want[j].score);
    vs_free(hits);
    TU_EXPECT(vs_text_count(fx->db, "t", &p, &count, &err), VS_OK, &err);
    assert_int_equal(count, nwant);
  }
}

static int setup(void **state) {
  *state = tu_fixture_open(0, 0);
  return *state ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hand_computed, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_array_field, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_oracle, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_filters, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_immediate, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_batch_replace, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_empty_again, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_runs_stay_few, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_analyzer_changed, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_sigkill, setup, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
