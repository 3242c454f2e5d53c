/*
 * test_query.c: what the query paths share: exclusions, payload
 * projection; and the fused queries built on them (hybrid search,
 * group-by, MMR, recommend, batches), each against a brute-force reference.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 8
#define NPTS 600

static float vecs[NPTS][DIM];

/* Payload of point i: {"text": words, "cat": i % 7, "doc": i / 4} */
static void payload_of(int i, msgpack_sbuffer *sb) {
  static const char *const words[] = {"alpha", "beta", "gamma", "delta", "omega", "sigma"};
  msgpack_packer pk;
  char text[64];

  snprintf(text, sizeof(text), "%s %s %s", words[i % 6], words[(i / 6) % 6],
           i % 5 == 0 ? "omega" : "rho");
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "text", 4);
  msgpack_pack_str_with_body(&pk, text, strlen(text));
  msgpack_pack_str_with_body(&pk, "cat", 3);
  msgpack_pack_int(&pk, i % 7);
  msgpack_pack_str_with_body(&pk, "doc", 3);
  msgpack_pack_int(&pk, i / 4);
}

/* A collection "q": NPTS points, Flat index (exact), l2, text field "text". */
static tu_fixture *load(vs_metric metric) {
  tu_fixture *fx = tu_fixture_open(0, 0);
  const char *fields[] = {"text"};
  vs_collection_config cfg = {"q", DIM, metric, "Flat", fields, 1, "none", 0, 0};
  static vs_point pts[NPTS];
  static msgpack_sbuffer sb[NPTS];
  uint64_t rs = 5;
  vs_error err;

  TU_EXPECT(vs_collection_create(fx->db, &cfg, &err), VS_OK, &err);
  for (int i = 0; i < NPTS; i++) {
    for (int j = 0; j < DIM; j++)
      vecs[i][j] = tu_randf(&rs);
    payload_of(i, &sb[i]);
    pts[i] = (vs_point){vs_id_int((uint64_t)i), vecs[i], DIM, sb[i].data, sb[i].size};
  }
  TU_EXPECT(vs_upsert(fx->db, "q", pts, NPTS, &err), VS_OK, &err);
  for (int i = 0; i < NPTS; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  return fx;
}

static int setup_l2(void **state) {
  *state = load(VS_METRIC_L2);
  return *state ? 0 : -1;
}

static float l2(const float *a, const float *b) {
  float s = 0;
  for (int j = 0; j < DIM; j++)
    s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

typedef struct ref {
  int id;
  float score;
} ref;

static int by_score(const void *a, const void *b) {
  const ref *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? -1 : 1;
  return x->id - y->id;
}

/* Exact l2 top k of q among points not in skip[] and with cat in
 * [lo, hi] (lo < 0: any). */
static size_t brute(const float *q, const char *skip, int lo, int hi, size_t k, ref *out) {
  static ref all[NPTS];
  size_t n = 0;

  for (int i = 0; i < NPTS; i++)
    if (!skip[i] && (lo < 0 || (i % 7 >= lo && i % 7 <= hi)))
      all[n++] = (ref){i, l2(q, vecs[i])};
  qsort(all, n, sizeof(*all), by_score);
  if (n > k)
    n = k;
  memcpy(out, all, n * sizeof(*out));
  return n;
}

/* Excluded points never come back, and k hits still do: the exact top k of
 * the rest, with and without a filter, also with thousands excluded. */
static void test_exclude_vector(void **state) {
  tu_fixture *fx = *state;
  static vs_id ex[NPTS];
  static char skip[NPTS];
  ref want[50];
  uint64_t rs = 77;
  vs_error err;

  for (int round = 0; round < 40; round++) {
    const float *q = vecs[tu_rand(&rs) % NPTS];
    size_t nex = round < 20 ? 1 + tu_rand(&rs) % 30 : 300 + tu_rand(&rs) % 250, k = 10, n, nw;
    int filtered = round % 2, exact = round % 4 == 3;
    vs_filter *f = NULL;
    vs_search_params p = {q, DIM, k, 0, 0, exact, 0, NULL, ex, nex};
    vs_search_info info;
    vs_hit *hits;

    if (round == 10) /* from here on, a FAISS segment (IDSelector) instead of fresh points */
      TU_EXPECT(vs_collection_rebuild(fx->db, "q", NULL, 0, &err), VS_OK, &err);
    memset(skip, 0, sizeof(skip));
    /* Exclude the nearest points first (the hard case), then random ones,
     * and an id that has no point. */
    {
      ref near[NPTS];
      size_t m = brute(q, skip, -1, -1, NPTS, near);
      for (size_t i = 0; i < nex; i++) {
        int id = i < nex / 2 && i < m ? near[i].id : (int)(tu_rand(&rs) % NPTS);
        ex[i] = vs_id_int((uint64_t)id);
        skip[id] = 1;
      }
      ex[nex - 1] = vs_id_int(999999);
    }
    if (filtered) {
      const char *json = "{\"must\": [{\"key\": \"cat\", \"range\": {\"gte\": 2, \"lte\": 4}}]}";
      TU_EXPECT(vs_filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
      p.filter = f;
    }
    nw = brute(q, skip, filtered ? 2 : -1, filtered ? 4 : -1, k, want);
    TU_EXPECT(vs_search(fx->db, "q", &p, &hits, &n, &info, &err), VS_OK, &err);
    assert_int_equal(n, nw);
    for (size_t i = 0; i < n; i++) {
      assert_false(skip[hits[i].id.num]);
      assert_int_equal(hits[i].id.num, want[i].id);
    }
    vs_free(hits);
    vs_filter_free(f);
  }
}

/* Text search: excluded points never come back, the rest in BM25 order. */
static void test_exclude_text(void **state) {
  tu_fixture *fx = *state;
  vs_id ex[3] = {vs_id_int(0), vs_id_int(5), vs_id_int(10)};
  vs_text_params p = {"omega", 5, 20};
  vs_hit *all, *some;
  size_t nall, nsome, j = 0;
  vs_error err;

  TU_EXPECT(vs_text_search(fx->db, "q", &p, &all, &nall, NULL, &err), VS_OK, &err);
  p.exclude = ex;
  p.n_exclude = 3;
  TU_EXPECT(vs_text_search(fx->db, "q", &p, &some, &nsome, NULL, &err), VS_OK, &err);
  assert_int_equal(nsome, 20);
  for (size_t i = 0; i < nall && j < nsome; i++) {
    uint64_t id = all[i].id.num;
    if (id == 0 || id == 5 || id == 10)
      continue;
    assert_int_equal(some[j].id.num, id);
    assert_true(some[j].score == all[i].score);
    j++;
  }
  vs_free(all);
  vs_free(some);
}

/* Payload projection: only the named fields, in stored order. */
static void test_projection(void **state) {
  tu_fixture *fx = *state;
  const char *fields[] = {"doc", "nope", "cat"};
  vs_search_params p = {vecs[3], DIM, 3, 0, 0, 0, VS_GET_PAYLOAD, NULL, NULL, 0, fields, 3};
  vs_text_params tp = {"omega", 5, 3, VS_GET_PAYLOAD};
  const char *only_missing[] = {"nope"};
  vs_hit *hits;
  size_t n;
  vs_error err;

  TU_EXPECT(vs_search(fx->db, "q", &p, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)hits[i].payload, hits[i].payload_len, NULL),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, 2);
    assert_memory_equal(u.data.via.map.ptr[0].key.via.str.ptr, "cat", 3);
    assert_int_equal(u.data.via.map.ptr[0].val.via.u64, hits[i].id.num % 7);
    assert_memory_equal(u.data.via.map.ptr[1].key.via.str.ptr, "doc", 3);
    assert_int_equal(u.data.via.map.ptr[1].val.via.u64, hits[i].id.num / 4);
    msgpack_unpacked_destroy(&u);
  }
  vs_free(hits);
  tp.payload_fields = only_missing;
  tp.n_payload_fields = 1;
  TU_EXPECT(vs_text_search(fx->db, "q", &tp, &hits, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    assert_null(hits[i].payload);
  vs_free(hits);
}

/* ---- hybrid ------------------------------------------------------------------------- */

typedef struct leg {
  uint64_t id;
  float score;
} leg;

/* Fused reference: RRF or min-max weighted over the two legs' own results
 * (from vs_search and vs_text_search), ties as documented. */
typedef struct fref {
  uint64_t id;
  double score;
  uint32_t vr, tr;
  float vs, ts;
} fref;

static int fref_cmp(const void *a, const void *b) {
  const fref *x = a, *y = b;
  uint64_t xv = x->vr ? x->vr : UINT64_MAX, yv = y->vr ? y->vr : UINT64_MAX;
  uint64_t xt = x->tr ? x->tr : UINT64_MAX, yt = y->tr ? y->tr : UINT64_MAX;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  if (xv != yv)
    return xv < yv ? -1 : 1;
  if (xt != yt)
    return xt < yt ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id); /* ids were inserted in pid order */
}

static size_t reference(const vs_hit *v, size_t nv, const vs_hit *t, size_t nt, vs_fusion fusion,
                        double wv, double wt, fref *out) {
  size_t n = 0;
  float vlo = 0, vhi = 0, tlo = 0, thi = 0;

  for (size_t i = 0; i < nv; i++) {
    vlo = i == 0 || v[i].score < vlo ? v[i].score : vlo;
    vhi = i == 0 || v[i].score > vhi ? v[i].score : vhi;
  }
  for (size_t i = 0; i < nt; i++) {
    tlo = i == 0 || t[i].score < tlo ? t[i].score : tlo;
    thi = i == 0 || t[i].score > thi ? t[i].score : thi;
  }
  for (size_t i = 0; i < nv; i++)
    out[n++] = (fref){v[i].id.num, 0, (uint32_t)i + 1, 0, v[i].score, 0};
  for (size_t i = 0; i < nt; i++) {
    size_t j = 0;
    while (j < n && out[j].id != t[i].id.num)
      j++;
    if (j == n)
      out[n++] = (fref){t[i].id.num, 0, 0, 0, 0, 0};
    out[j].tr = (uint32_t)i + 1;
    out[j].ts = t[i].score;
  }
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    if (fusion == VS_FUSION_RRF) {
      s = (out[i].vr ? wv / (60.0 + out[i].vr) : 0) + (out[i].tr ? wt / (60.0 + out[i].tr) : 0);
    } else {
      if (out[i].vr) /* l2: lower distances are better */
        s += wv * (vhi > vlo ? ((double)vhi - out[i].vs) / ((double)vhi - vlo) : 1.0);
      if (out[i].tr)
        s += wt * (thi > tlo ? ((double)out[i].ts - tlo) / ((double)thi - tlo) : 1.0);
    }
    out[i].score = s;
  }
  qsort(out, n, sizeof(*out), fref_cmp);
  return n;
}

static void test_hybrid_fusion(void **state) {
  tu_fixture *fx = *state;
  static const char *const queries[] = {"omega", "alpha rho", "beta gamma omega", "sigma"};
  static fref want[400];
  uint64_t rs = 3;
  vs_error err;

  for (int round = 0; round < 24; round++) {
    const float *q = vecs[tu_rand(&rs) % NPTS];
    const char *text = queries[round % 4];
    vs_fusion fusion = round % 2 ? VS_FUSION_WEIGHTED : VS_FUSION_RRF;
    double wv = round % 3 == 0 ? 1 : 0.5, wt = round % 3 == 2 ? 2 : 1;
    size_t depth = round % 4 == 1 ? 30 : 100, k = 10, nv, nt, n, nw;
    vs_search_params vp = {q, DIM, depth};
    vs_text_params tp = {text, strlen(text), depth};
    vs_hybrid_params hp = {q, DIM, text, strlen(text), k, depth, fusion, 0, wv, wt};
    vs_hybrid_info info;
    vs_hit *v, *t, *h;

    hp.explain = 1;
    TU_EXPECT(vs_search(fx->db, "q", &vp, &v, &nv, NULL, &err), VS_OK, &err);
    TU_EXPECT(vs_text_search(fx->db, "q", &tp, &t, &nt, NULL, &err), VS_OK, &err);
    nw = reference(v, nv, t, nt, fusion, wv, wt, want);
    TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_OK, &err);
    assert_int_equal(n, nw < k ? nw : k);
    assert_string_equal(info.legs, "vector+text");
    assert_string_equal(info.note, "");
    for (size_t i = 0; i < n; i++) {
      if (h[i].id.num != want[i].id || fabs(h[i].score - (float)want[i].score) > 1e-6)
        fail_msg("round %d hit %zu: id %llu score %.7g, reference %llu %.7g", round, i,
                 (unsigned long long)h[i].id.num, h[i].score, (unsigned long long)want[i].id,
                 want[i].score);
      /* explain: each leg's rank and score */
      assert_int_equal(h[i].vector_rank, want[i].vr);
      assert_int_equal(h[i].text_rank, want[i].tr);
      assert_true(h[i].vector_score == want[i].vs && h[i].text_score == want[i].ts);
    }
    vs_free(v);
    vs_free(t);
    vs_free(h);
  }
}

/* Three documents, ranks by hand: RRF 1/61 + 1/62 beats 1/61 alone. */
static void test_hybrid_by_hand(void **state) {
  tu_fixture *fx = *state;
  /* Point 0's vector as the query: the vector leg ranks 0 first. */
  vs_hybrid_params hp = {vecs[0], DIM, "omega", 5, 3, 3, VS_FUSION_RRF};
  vs_search_params vp = {vecs[0], DIM, 3};
  vs_text_params tp = {"omega", 5, 3};
  vs_hit *v, *t, *h;
  size_t nv, nt, n;
  vs_hybrid_info info;
  vs_error err;

  TU_EXPECT(vs_search(fx->db, "q", &vp, &v, &nv, NULL, &err), VS_OK, &err);
  TU_EXPECT(vs_text_search(fx->db, "q", &tp, &t, &nt, NULL, &err), VS_OK, &err);
  assert_int_equal(nv, 3);
  assert_int_equal(nt, 3);
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_OK, &err);
  /* Every fused score is 1/(60 + rank) summed over the legs holding it. */
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t j = 0; j < nv; j++)
      if (v[j].id.num == h[i].id.num)
        s += 1.0 / (61 + j);
    for (size_t j = 0; j < nt; j++)
      if (t[j].id.num == h[i].id.num)
        s += 1.0 / (61 + j);
    assert_float_equal(h[i].score, s, 1e-7);
  }
  assert_true(n == 3 && h[0].score >= h[1].score && h[1].score >= h[2].score);
  vs_free(v);
  vs_free(t);
  vs_free(h);
}

/* A leg with nothing to give leaves the other's order, said in the note. */
static void test_hybrid_degrades(void **state) {
  tu_fixture *fx = *state;
  vs_hybrid_params hp = {vecs[1], DIM, "the", 3, 5, 0, VS_FUSION_RRF};
  vs_search_params vp = {vecs[1], DIM, 5};
  vs_hybrid_info info;
  vs_hit *h, *v;
  size_t n, nv;
  vs_error err;

  TU_EXPECT(vs_search(fx->db, "q", &vp, &v, &nv, NULL, &err), VS_OK, &err);
  /* "the" matches nothing here ("none" language keeps it, no document has it). */
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_OK, &err);
  assert_string_equal(info.legs, "vector");
  assert_non_null(strstr(info.note, "text leg empty"));
  assert_int_equal(n, 5);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(h[i].id.num, v[i].id.num);
  vs_free(h);
  /* No vector: the text leg alone. */
  hp.vector = NULL;
  hp.text = "omega";
  hp.len = 5;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_OK, &err);
  assert_string_equal(info.legs, "text");
  assert_string_equal(info.vector.plan, "none");
  assert_int_equal(n, 5);
  vs_free(h);
  vs_free(v);
  /* Bad requests. */
  hp.text = NULL;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_EINVAL, &err);
  hp.vector = vecs[1];
  hp.rrf_k = -1;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_EINVAL, &err);
  hp.rrf_k = 0;
  hp.mmr_lambda = 1.5;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_EINVAL, &err);
  hp.mmr_lambda = 0;
  hp.dim = DIM - 1;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_EDIM, &err);
  hp.dim = DIM;
  hp.k = VS_K_MAX + 1;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, &info, &err), VS_ETOOLARGE, &err);
}

/* group_by "doc" (4 points per doc) with group_size 2: k groups, each the
 * best 2 of its points among the fused candidates, best group first. */
static void test_group_by(void **state) {
  tu_fixture *fx = *state;
  vs_hybrid_params hp = {vecs[9], DIM, NULL, 0, 5, 100, VS_FUSION_RRF};
  vs_search_params vp = {vecs[9], DIM, 100};
  vs_hit *v, *h;
  size_t nv, n, m = 0;
  int seen_docs[5], ngroups = 0;
  vs_error err;

  hp.group_by = "doc";
  hp.group_size = 2;
  TU_EXPECT(vs_search(fx->db, "q", &vp, &v, &nv, NULL, &err), VS_OK, &err);
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, NULL, &err), VS_OK, &err);
  /* Reference: walk the vector ranking, groups by first appearance. */
  {
    int doc_of_group[100], count[100] = {0};
    uint64_t want[10];
    uint32_t want_group[10];
    size_t nwant = 0;
    int groups = 0;

    for (size_t i = 0; i < nv; i++) {
      int d = (int)(v[i].id.num / 4), g;
      for (g = 0; g < groups && doc_of_group[g] != d; g++)
        ;
      if (g == groups)
        doc_of_group[groups++] = d;
    }
    for (int g = 0; g < 5 && g < groups; g++)
      for (size_t i = 0; i < nv; i++)
        if ((int)(v[i].id.num / 4) == doc_of_group[g] && count[g] < 2) {
          count[g]++;
          want_group[nwant] = (uint32_t)g;
          want[nwant++] = v[i].id.num;
        }
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
      assert_int_equal(h[i].id.num, want[i]);
      assert_int_equal(h[i].group, want_group[i]);
    }
  }
  for (size_t i = 0; i < n; i++) {
    int d = (int)(h[i].id.num / 4), g;
    for (g = 0; g < ngroups && seen_docs[g] != d; g++)
      ;
    if (g == ngroups)
      seen_docs[ngroups++] = d;
    m++;
  }
  assert_int_equal(ngroups, 5);
  vs_free(v);
  vs_free(h);
}

/* MMR against a brute-force greedy selection over the same candidates. */
static void test_mmr(void **state) {
  tu_fixture *fx = *state;
  const float *q = vecs[17];
  vs_hybrid_params hp = {q, DIM, NULL, 0, 8, 40, VS_FUSION_RRF};
  vs_search_params vp = {q, DIM, 40};
  vs_hit *v, *h;
  size_t nv, n;
  int chosen[40] = {0};
  size_t order[8];
  vs_error err;

  hp.mmr_lambda = 0.5;
  TU_EXPECT(vs_search(fx->db, "q", &vp, &v, &nv, NULL, &err), VS_OK, &err);
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 8);
  for (size_t k = 0; k < 8; k++) {
    double best = -INFINITY;
    size_t bi = 0;
    for (size_t i = 0; i < nv; i++) {
      double rel = -(double)l2(q, vecs[v[i].id.num]), red = 0, val;
      if (chosen[i])
        continue;
      if (k) {
        red = -INFINITY;
        for (size_t c = 0; c < k; c++) {
          double s = -(double)l2(vecs[v[i].id.num], vecs[v[order[c]].id.num]);
          red = s > red ? s : red;
        }
      }
      val = 0.5 * rel - 0.5 * red;
      if (val > best) {
        best = val;
        bi = i;
      }
    }
    chosen[bi] = 1;
    order[k] = bi;
    assert_int_equal(h[k].id.num, v[bi].id.num);
  }
  vs_free(h);
  /* A pool smaller than k: the pool re-ranked, then the rest in fused
   * order -- still k hits.  And a depth below k is raised to k. */
  hp.mmr_candidates = 3;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 8);
  for (size_t i = 3; i < 8; i++)
    assert_int_equal(h[i].id.num, v[i].id.num);
  vs_free(h);
  hp.mmr_lambda = 0;
  hp.candidates = 2;
  TU_EXPECT(vs_hybrid_search(fx->db, "q", &hp, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, 8);
  vs_free(h);
  vs_free(v);
}

/* ---- recommend and batches ------------------------------------------------------------- */

static void test_recommend(void **state) {
  tu_fixture *fx = *state;
  vs_id pos[2] = {vs_id_int(10), vs_id_int(20)}, neg[1] = {vs_id_int(30)};
  vs_id ex[3] = {vs_id_int(11), vs_id_int(12), vs_id_int(13)};
  vs_recommend_params rp = {pos, 2, neg, 1};
  static char skip[NPTS];
  float q[DIM];
  ref want[10];
  vs_hit *h;
  size_t n, nw;
  vs_error err;

  rp.k = 10;
  rp.exclude = ex;
  rp.n_exclude = 3;
  for (int j = 0; j < DIM; j++)
    q[j] = (float)(2 * ((double)vecs[10][j] + vecs[20][j]) / 2 - vecs[30][j]);
  memset(skip, 0, sizeof(skip));
  skip[10] = skip[20] = skip[30] = skip[11] = skip[12] = skip[13] = 1;
  nw = brute(q, skip, -1, -1, 10, want);
  TU_EXPECT(vs_recommend(fx->db, "q", &rp, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(n, nw);
  for (size_t i = 0; i < n; i++) {
    assert_false(skip[h[i].id.num]);
    assert_int_equal(h[i].id.num, want[i].id);
  }
  vs_free(h);
  /* A raw vector example: the same as its point's id (minus exclusion of it). */
  rp.positive = NULL;
  rp.n_positive = 0;
  rp.negative = NULL;
  rp.n_negative = 0;
  rp.positive_vectors = vecs[10];
  rp.n_positive_vectors = 1;
  rp.dim = DIM;
  TU_EXPECT(vs_recommend(fx->db, "q", &rp, &h, &n, NULL, &err), VS_OK, &err);
  assert_int_equal(h[0].id.num, 10); /* not an example by id: it may come back */
  vs_free(h);
  /* Errors. */
  rp.n_positive_vectors = 0;
  TU_EXPECT(vs_recommend(fx->db, "q", &rp, &h, &n, NULL, &err), VS_EINVAL, &err);
  pos[0] = vs_id_int(99999);
  rp.positive = pos;
  rp.n_positive = 1;
  TU_EXPECT(vs_recommend(fx->db, "q", &rp, &h, &n, NULL, &err), VS_ENOTFOUND, &err);
}

static void test_batch(void **state) {
  tu_fixture *fx = *state;
  enum { NQ = 37 };
  static vs_search_params p[NQ];
  static vs_id ex[NQ][5];
  vs_filter *f;
  const char *json = "{\"must\": [{\"key\": \"cat\", \"match\": {\"any\": [1, 2, 3]}}]}";
  size_t off[NQ + 1];
  vs_hit *all;
  vs_error err;

  TU_EXPECT(vs_filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
  for (int i = 0; i < NQ; i++) {
    for (int j = 0; j < 5; j++)
      ex[i][j] = vs_id_int((uint64_t)(i * 5 + j) % NPTS);
    p[i] = (vs_search_params){vecs[i * 11 % NPTS], DIM, 10, 0, 0, 0, VS_GET_PAYLOAD, f, ex[i], 5};
  }
  TU_EXPECT(vs_search_batch(fx->db, "q", p, NQ, &all, off, &err), VS_OK, &err);
  for (int i = 0; i < NQ; i++) {
    vs_hit *one;
    size_t n;
    TU_EXPECT(vs_search(fx->db, "q", &p[i], &one, &n, NULL, &err), VS_OK, &err);
    assert_int_equal(off[i + 1] - off[i], n);
    for (size_t j = 0; j < n; j++) {
      const vs_hit *b = &all[off[i] + j];
      assert_int_equal(b->id.num, one[j].id.num);
      assert_true(b->score == one[j].score);
      assert_int_equal(b->payload_len, one[j].payload_len);
      assert_memory_equal(b->payload, one[j].payload, b->payload_len);
    }
    vs_free(one);
  }
  vs_free(all);
  /* Queries must share their shape, and each must be valid. */
  p[3].k = 5;
  TU_EXPECT(vs_search_batch(fx->db, "q", p, NQ, &all, off, &err), VS_EINVAL, &err);
  p[3].k = 10;
  p[5].n_payload_fields = 2; /* and payload_fields NULL */
  TU_EXPECT(vs_search_batch(fx->db, "q", p, NQ, &all, off, &err), VS_EINVAL, &err);
  vs_filter_free(f);
}

/* Delete by filter: exactly the passing points, from every index. */
static void test_delete_where(void **state) {
  tu_fixture *fx = *state;
  const char *json = "{\"must\": [{\"key\": \"cat\", \"match\": {\"value\": 3}}]}";
  vs_filter *f;
  vs_text_params tp = {"omega", 5, 100};
  vs_search_params sp = {vecs[3], DIM, 50, 0, 0, 1};
  vs_hit *h;
  size_t n, deleted, want = 0;
  uint64_t count;
  vs_error err = VS_ERROR_INIT;

  for (int i = 0; i < NPTS; i++)
    want += i % 7 == 3;
  TU_EXPECT(vs_filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
  TU_EXPECT(vs_delete_where(fx->db, "q", f, &deleted, &err), VS_OK, &err);
  assert_int_equal(deleted, want);
  TU_EXPECT(vs_count(fx->db, "q", &count, &err), VS_OK, &err);
  assert_int_equal(count, NPTS - want);
  TU_EXPECT(vs_count_where(fx->db, "q", f, &count, &err), VS_OK, &err);
  assert_int_equal(count, 0);
  TU_EXPECT(vs_search(fx->db, "q", &sp, &h, &n, NULL, &err), VS_OK, &err);
  for (size_t i = 0; i < n; i++)
    assert_true(h[i].id.num % 7 != 3);
  vs_free(h);
  TU_EXPECT(vs_text_search(fx->db, "q", &tp, &h, &n, NULL, &err), VS_OK, &err);
  for (size_t i = 0; i < n; i++)
    assert_true(h[i].id.num % 7 != 3);
  vs_free(h);
  /* Again: nothing passes now. */
  TU_EXPECT(vs_delete_where(fx->db, "q", f, &deleted, &err), VS_OK, &err);
  assert_int_equal(deleted, 0);
  TU_EXPECT(vs_delete_where(fx->db, "nope", f, &deleted, &err), VS_ENOTFOUND, &err);
  vs_error_clear(&err);
  TU_EXPECT(vs_delete_where(fx->db, "q", NULL, &deleted, &err), VS_EINVAL, &err);
  vs_filter_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exclude_vector, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_exclude_text, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_projection, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_fusion, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_by_hand, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_degrades, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_group_by, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_mmr, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_recommend, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_batch, setup_l2, tu_teardown),
      cmocka_unit_test_setup_teardown(test_delete_where, setup_l2, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
