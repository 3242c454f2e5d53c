/*
 * test_pindex.c: the payload index (engine/pindex.c) against its oracle,
 * vs__filter_match() applied to every point record in the same snapshot.
 *
 * Random payloads and random filters (built as msgpack, so every integer
 * and float encoding can appear, including the ones JSON cannot spell)
 * are checked point for point: after the first load, after replacements,
 * deletes and new points arrive (the index catches up from the change
 * log), and after enough churn to compact it.  Fixed cases cover numeric
 * equality across encodings, ranges with every combination of bounds,
 * arrays, has_id, a snapshot older than the index (reconstructed from the
 * deletes it remembers), pids beyond 32 bits (the index steps aside), and
 * allocation failures.
 */
#include "tests/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/filter.h"
#include "engine/pindex.h"
#include "engine/storage.h"

typedef tu_fixture fixture;

static int setup(void **state) {
  fixture *f = tu_fixture_open(VS_OPEN_NOSYNC, 0);

  tu_create(f->db, "c", 2, VS_METRIC_L2, "Flat");
  *state = f;
  return 0;
}

/* ---- the oracle ------------------------------------------------------------------- */

/* The filter on one point record, as vs__filter_match decides it. */
static int oracle_passes(const vs__filter *f, const MDB_val *rec) {
  vs__prec pr;

  return vs__point_parse(rec, &pr) == 0 && vs__filter_match(f, &pr.id, pr.payload, pr.payload_len);
}

typedef struct check_ctx {
  const vs__filter *f;
  int answered; /* the index answered (else it stepped aside) */
  uint64_t pass;
} check_ctx;

/* Compare the index's set with the oracle over every record of txn. */
static void compare(MDB_txn *txn, const vs__coll *c, const vs__filter *f,
                    const roaring_bitmap_t *set, uint64_t *pass) {
  MDB_cursor *cur;
  MDB_val k, v;
  uint64_t n = 0;

  assert_int_equal(mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur), 0);
  for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t pid;
    int want, got;

    memcpy(&pid, k.mv_data, 8);
    want = oracle_passes(f, &v);
    got = pid <= UINT32_MAX && roaring_bitmap_contains(set, (uint32_t)pid);
    if (want != got)
      fail_msg("pid %llu: vs__filter_match says %d, the payload index %d", (unsigned long long)pid,
               want, got);
    n += (uint64_t)want;
  }
  mdb_cursor_close(cur);
  /* and nothing outside the records */
  assert_int_equal(roaring_bitmap_get_cardinality(set), n);
  *pass = n;
}

static int check_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  check_ctx *cc = ctx;
  roaring_bitmap_t *set = NULL;
  vs__state st;
  int rc;

  if ((rc = vs__state_get(db, txn, c->cid, &st, err)) ||
      (rc = vs__pindex_eval(db, txn, c, &st, cc->f, &set, err)))
    return rc;
  cc->answered = set != NULL;
  if (set) {
    compare(txn, c, cc->f, set, &cc->pass);
    roaring_bitmap_free(set);
  }
  return VS_OK;
}

/* Check filter f on collection "c"; returns how many points pass. */
static uint64_t check(vs_db *db, const vs__filter *f) {
  check_ctx cc = {f, 0, 0};
  vs_error err = VS_ERROR_INIT;
  uint64_t count;

  TU_EXPECT(vs__coll_read(db, "c", check_step, &cc, &err), VS_OK, &err);
  assert_true(cc.answered);
  /* vs_count_where answers from the index too. */
  TU_EXPECT(vs_count_where(db, "c", (const vs_filter *)f, &count, &err), VS_OK, &err);
  assert_int_equal(count, cc.pass);
  return cc.pass;
}

static vs__filter *parse_json(const char *json) {
  vs_error err = VS_ERROR_INIT;
  vs__filter *f = NULL;

  TU_EXPECT(vs__filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
  return f;
}

static uint64_t check_json(vs_db *db, const char *json) {
  vs__filter *f = parse_json(json);
  uint64_t n = check(db, f);

  vs__filter_free(f);
  return n;
}

/* ---- msgpack helpers --------------------------------------------------------------- */

static void pk_init(msgpack_sbuffer *sb, msgpack_packer *pk) {
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

static void pk_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

static const float origin[2] = {0, 0};

static void put(vs_db *db, vs_id id, const msgpack_sbuffer *payload) {
  vs_point p = {id, origin, 2, payload ? payload->data : NULL, payload ? payload->size : 0};
  vs_error err = VS_ERROR_INIT;

  TU_EXPECT(vs_upsert(db, "c", &p, 1, &err), VS_OK, &err);
}

static void del(vs_db *db, vs_id id) {
  vs_error err = VS_ERROR_INIT;

  TU_EXPECT(vs_delete(db, "c", &id, 1, NULL, &err), VS_OK, &err);
}

/* ---- random values, payloads and filters ----------------------------------------------- */

static uint64_t rng;

static int rnd(int n) {
  return (int)(tu_rand(&rng) % (uint64_t)n);
}

static const char *const vocab[] = {"red", "green", "blue", "5", "", "alpha", "beta", "true"};
#define N_VOCAB (int)(sizeof(vocab) / sizeof(vocab[0]))
static const char *const fields[] = {"label", "price", "tags", "name", "mix", "big", "nope"};
#define N_FIELDS (int)(sizeof(fields) / sizeof(fields[0]))

/* A number, in any encoding, from a pool where equal values in different
 * encodings are common and the 2^53, 2^63, 2^64 edges appear. */
static void pack_num(msgpack_packer *pk, int edge) {
  int r = rnd(edge ? 16 : 5);

  switch (r) {
  case 0:
  case 1:
    msgpack_pack_int64(pk, rnd(17) - 2);
    break;
  case 2:
    msgpack_pack_double(pk, (rnd(65) - 8) * 0.25);
    break;
  case 3:
    msgpack_pack_float(pk, (float)((rnd(65) - 8) * 0.25));
    break;
  case 4:
    msgpack_pack_double(pk, (double)(rnd(17) - 2)); /* integral float */
    break;
  case 5:
    msgpack_pack_int64(pk, 9007199254740992ll + rnd(3) - 1); /* 2^53 - 1 .. 2^53 + 1 */
    break;
  case 6:
    msgpack_pack_double(pk, 9007199254740992.0);
    break;
  case 7:
    msgpack_pack_uint64(pk, UINT64_MAX - (uint64_t)rnd(2));
    break;
  case 8:
    msgpack_pack_double(pk, 18446744073709551616.0); /* 2^64 */
    break;
  case 9:
    msgpack_pack_uint64(pk, 9223372036854775808ull); /* 2^63 */
    break;
  case 10:
    msgpack_pack_int64(pk, INT64_MIN);
    break;
  case 11:
    msgpack_pack_double(pk, -9223372036854775808.0); /* -2^63 */
    break;
  case 12:
    msgpack_pack_double(pk, rnd(2) ? -0.0 : 0.0);
    break;
  case 13:
    msgpack_pack_double(pk, rnd(2) ? 1e300 : -1e300);
    break;
  case 14:
    msgpack_pack_float(pk, 9007199254740992.0f);
    break;
  default:
    msgpack_pack_double(pk, 9223372036854775808.0); /* 2^63 as a float */
    break;
  }
}

/* A scalar of any kind. */
static void pack_scalar(msgpack_packer *pk, int edge) {
  switch (rnd(6)) {
  case 0:
    if (rnd(2))
      msgpack_pack_true(pk);
    else
      msgpack_pack_false(pk);
    break;
  case 1:
  case 2:
    pk_str(pk, vocab[rnd(N_VOCAB)]);
    break;
  default:
    pack_num(pk, edge);
  }
}

/* A payload: each field present 5 times in 6, in a random order. */
static void rand_payload(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  int has[6], n = 0, order[6] = {0, 1, 2, 3, 4, 5};

  for (int k = 5; k > 0; k--) {
    int j = rnd(k + 1), t = order[k];

    order[k] = order[j], order[j] = t;
  }
  for (int k = 0; k < 6; k++)
    n += has[k] = rnd(6) != 0;
  pk_init(sb, &pk);
  msgpack_pack_map(&pk, (size_t)n);
  for (int k = 0; k < 6; k++) {
    int fi = order[k];

    if (!has[fi])
      continue;
    pk_str(&pk, fields[fi]);
    switch (fi) {
    case 0: /* label: a small integer */
      msgpack_pack_int64(&pk, rnd(10));
      break;
    case 1: /* price: quarters, float64 or float32 */
      if (rnd(2))
        msgpack_pack_double(&pk, rnd(49) * 0.25);
      else
        msgpack_pack_float(&pk, (float)(rnd(49) * 0.25));
      break;
    case 2: { /* tags: an array of strings, sometimes with numbers */
      int m = rnd(5);

      msgpack_pack_array(&pk, (size_t)m);
      for (int i = 0; i < m; i++)
        if (rnd(4))
          pk_str(&pk, vocab[rnd(N_VOCAB)]);
        else
          pack_num(&pk, 0);
      break;
    }
    case 3:
      pk_str(&pk, vocab[rnd(N_VOCAB)]);
      break;
    case 4: /* mix: anything, or an array of anything */
      if (rnd(3) == 0) {
        int m = rnd(4);

        msgpack_pack_array(&pk, (size_t)m);
        for (int i = 0; i < m; i++)
          pack_scalar(&pk, 1);
      } else {
        pack_scalar(&pk, 1);
      }
      break;
    default: /* big: the edges */
      pack_num(&pk, 1);
    }
  }
}

static vs_id rand_id(int i, char *buf, size_t cap) {
  if (i % 3 == 0) {
    snprintf(buf, cap, "s%d", i);
    return vs_id_str(buf);
  }
  return vs_id_int((uint64_t)i);
}

static void rand_filter(msgpack_packer *pk, int depth, int max_id);

static void rand_cond(msgpack_packer *pk, int depth, int max_id) {
  int r = rnd(20), fi = rnd(N_FIELDS), edge = fi == 4 || fi == 5;

  if (depth < 3 && r < 3) {
    rand_filter(pk, depth + 1, max_id);
    return;
  }
  if (r >= 18) { /* has_id */
    int m = 1 + rnd(5);

    msgpack_pack_map(pk, 1);
    pk_str(pk, "has_id");
    msgpack_pack_array(pk, (size_t)m);
    for (int i = 0; i < m; i++) {
      char buf[24];
      int id = rnd(max_id + 20);

      if (rnd(2)) {
        snprintf(buf, sizeof(buf), "s%d", id);
        pk_str(pk, buf);
      } else {
        msgpack_pack_uint64(pk, (uint64_t)id);
      }
    }
    return;
  }
  msgpack_pack_map(pk, 2);
  pk_str(pk, "key");
  pk_str(pk, fields[fi]);
  if (r < 9) {
    pk_str(pk, "match");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "value");
    pack_scalar(pk, edge);
  } else if (r < 13) {
    int m = 1 + rnd(6);

    pk_str(pk, "match");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "any");
    msgpack_pack_array(pk, (size_t)m);
    for (int i = 0; i < m; i++)
      pack_scalar(pk, edge);
  } else {
    static const char *const ops[] = {"gt", "gte", "lt", "lte"};
    unsigned mask = 0;
    int m = 0;

    while (mask == 0)
      mask = (unsigned)rnd(16);
    for (int i = 0; i < 4; i++)
      m += (mask >> i) & 1u;
    pk_str(pk, "range");
    msgpack_pack_map(pk, (size_t)m);
    for (int i = 0; i < 4; i++) {
      if (!(mask & (1u << i)))
        continue;
      pk_str(pk, ops[i]);
      pack_num(pk, edge);
    }
  }
}

static void rand_filter(msgpack_packer *pk, int depth, int max_id) {
  static const char *const lists[] = {"must", "should", "must_not"};
  int present[3], n[3], np = 0;

  for (int l = 0; l < 3; l++) {
    present[l] = rnd(3) != 0;
    n[l] = present[l] ? (l == 1 ? rnd(4) : rnd(3)) : 0;
    np += present[l];
  }
  msgpack_pack_map(pk, (size_t)np);
  for (int l = 0; l < 3; l++) {
    if (!present[l])
      continue;
    pk_str(pk, lists[l]);
    msgpack_pack_array(pk, (size_t)n[l]);
    for (int i = 0; i < n[l]; i++)
      rand_cond(pk, depth, max_id);
  }
}

/* Check `nf` random filters; returns how many split the points. */
static int check_random_filters(vs_db *db, int nf, int max_id, uint64_t seed) {
  int split = 0;
  uint64_t live;
  vs_error err = VS_ERROR_INIT;

  TU_EXPECT(vs_count(db, "c", &live, &err), VS_OK, &err);
  rng = seed;
  for (int i = 0; i < nf; i++) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    vs__filter *f = NULL;
    uint64_t n;

    pk_init(&sb, &pk);
    rand_filter(&pk, 1, max_id);
    TU_EXPECT(vs__filter_parse_msgpack(sb.data, sb.size, &f, &err), VS_OK, &err);
    n = check(db, f);
    split += n > 0 && n < live;
    vs__filter_free(f);
    msgpack_sbuffer_destroy(&sb);
  }
  return split;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Random points and filters, through load, churn, catch-up and compaction. */
static void test_random_equivalence(void **state) {
  enum { N = 1200, NF = 150 };
  fixture *f = *state;
  char buf[24];
  int split, next = N;

  rng = 77;
  for (int i = 0; i < N; i++) {
    msgpack_sbuffer sb;

    rand_payload(&sb);
    put(f->db, rand_id(i, buf, sizeof(buf)), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  split = check_random_filters(f->db, NF, N, 1);
  print_message("load: %d of %d filters split the points\n", split, NF);
  assert_true(split > NF / 3);

  /* Replacements (new pids for old ids), deletes, new points, points
   * without a payload: the index catches up from the log. */
  for (int round = 0; round < 3; round++) {
    rng = 1000 + (uint64_t)round;
    for (int i = 0; i < 300; i++) {
      msgpack_sbuffer sb;
      int id = rnd(next);

      if (rnd(4) == 0) {
        del(f->db, rand_id(id, buf, sizeof(buf)));
      } else if (rnd(10) == 0) {
        put(f->db, rand_id(rnd(2) ? id : next++, buf, sizeof(buf)), NULL);
      } else {
        rand_payload(&sb);
        put(f->db, rand_id(rnd(2) ? id : next++, buf, sizeof(buf)), &sb);
        msgpack_sbuffer_destroy(&sb);
      }
    }
    split = check_random_filters(f->db, NF, next, 1 + (uint64_t)round);
    print_message("churn round %d: %d of %d filters split the points\n", round, split, NF);
  }

  /* Enough replacements that deleted versions outnumber live points: the
   * index compacts itself, and must still agree. */
  rng = 4242;
  for (int pass = 0; pass < 5; pass++) {
    vs_point *pts = calloc(next, sizeof(*pts));
    msgpack_sbuffer *sb = calloc(next, sizeof(*sb));
    char(*ids)[24] = calloc(next, sizeof(*ids));
    vs_error err = VS_ERROR_INIT;

    for (int i = 0; i < next; i++) {
      rand_payload(&sb[i]);
      pts[i] = (vs_point){rand_id(i, ids[i], sizeof(ids[i])), origin, 2, sb[i].data, sb[i].size};
    }
    TU_EXPECT(vs_upsert(f->db, "c", pts, (size_t)next, &err), VS_OK, &err);
    /* A query between passes, so each pass is indexed, then deleted. */
    check_json(f->db, "{\"must_not\": [{\"key\": \"label\", \"range\": {\"lt\": 2}}]}");
    for (int i = 0; i < next; i++)
      msgpack_sbuffer_destroy(&sb[i]);
    free(ids);
    free(sb);
    free(pts);
  }
  split = check_random_filters(f->db, NF, next, 99);
  print_message("after compaction: %d of %d filters split the points\n", split, NF);
  assert_true(split > NF / 3);
}

/* Numbers are equal by value whatever their encoding. */
static void test_numbers(void **state) {
  fixture *f = *state;
  struct {
    int kind; /* 0 int64, 1 uint64, 2 double, 3 float, 4 bool, 5 string */
    int64_t i;
    uint64_t u;
    double d;
  } v[] = {
      {0, 5, 0, 0},
      {2, 0, 0, 5.0},
      {3, 0, 0, 5.0},
      {2, 0, 0, 5.5},
      {0, 0, 0, 0},
      {2, 0, 0, -0.0},
      {4, 1, 0, 0},
      {5, 0, 0, 0},
      {0, 9007199254740993, 0, 0},
      {2, 0, 0, 9007199254740992.0},
      {0, 9007199254740992, 0, 0},
      {1, 0, UINT64_MAX, 0},
      {2, 0, 0, 18446744073709551616.0},
      {0, INT64_MIN, 0, 0},
      {2, 0, 0, -9223372036854775808.0},
      {0, -1, 0, 0},
      {2, 0, 0, -1.0},
  };
  size_t nv = sizeof(v) / sizeof(v[0]);

  for (size_t i = 0; i < nv; i++) {
    msgpack_sbuffer sb;
    msgpack_packer pk;

    pk_init(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "v");
    switch (v[i].kind) {
    case 0:
      msgpack_pack_int64(&pk, v[i].i);
      break;
    case 1:
      msgpack_pack_uint64(&pk, v[i].u);
      break;
    case 2:
      msgpack_pack_double(&pk, v[i].d);
      break;
    case 3:
      msgpack_pack_float(&pk, (float)v[i].d);
      break;
    case 4:
      msgpack_pack_true(&pk);
      break;
    default:
      pk_str(&pk, "5");
    }
    pk_str(&pk, "arr"); /* the same value inside an array */
    msgpack_pack_array(&pk, 2);
    pk_str(&pk, "x");
    msgpack_pack_int64(&pk, (int64_t)i);
    put(f->db, vs_id_int(i), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  /* 5, 5.0 (float64) and 5.0 (float32) are one value; 5.5, true, "5" are not. */
  assert_int_equal(check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": 5}}]}"),
                   3);
  assert_int_equal(check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": 5.0}}]}"),
                   3);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": \"5\"}}]}"), 1);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": true}}]}"), 1);
  /* 0 == -0.0; -1 == -1.0 */
  assert_int_equal(check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": 0}}]}"),
                   2);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"any\": [-1, 5.5]}}]}"), 3);
  /* 2^53 + 1 is not 2^53 as a float; 2^53 is. */
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": 9007199254740993}}]}"),
      1);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"match\": {\"value\": 9007199254740992}}]}"),
      2);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"range\": {\"gt\": 9007199254740992}}]}"),
      3); /* 2^53 + 1, 2^64 - 1, 2^64 */
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"range\": {\"gt\": 9007199254740992.0, "
                        "\"lt\": 18446744073709551616.0}}]}"),
      2); /* 2^53 + 1, 2^64 - 1 */
  /* -2^63 as an integer and as a float are one value. */
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"range\": {\"lte\": -9.2e18}}]}"), 2);
  /* Ranges never hold for strings or booleans. */
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"v\", \"range\": {\"gte\": 5, \"lte\": 5}}]}"), 3);
  /* Array elements: "any element". */
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"arr\", \"match\": {\"any\": [\"x\", 3]}}]}"), nv);
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"arr\", \"range\": {\"gt\": 2, \"lt\": 5.5}}]}"),
      3);
  assert_int_equal(
      check_json(f->db, "{\"must_not\": [{\"key\": \"arr\", \"range\": {\"gte\": 0}}]}"), 0);
  /* A missing field matches nothing; must_not of it holds everywhere. */
  assert_int_equal(check_json(f->db, "{\"must\": [{\"key\": \"zz\", \"match\": {\"value\": 5}}]}"),
                   0);
  assert_int_equal(
      check_json(f->db, "{\"must_not\": [{\"key\": \"zz\", \"match\": {\"value\": 5}}]}"), nv);
  assert_int_equal(check_json(f->db, "{}"), nv);
  assert_int_equal(check_json(f->db, "{\"should\": []}"), nv);
}

/* Every combination of bounds, at and between the stored values. */
static void test_range_bounds(void **state) {
  static const char *const ops[] = {"gt", "gte", "lt", "lte"};
  fixture *f = *state;
  char json[256];

  for (int i = 0; i < 40; i++) {
    msgpack_sbuffer sb;
    msgpack_packer pk;

    pk_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "x");
    if (i % 4 == 0)
      msgpack_pack_double(&pk, i / 4 + 0.5);
    else if (i % 4 == 1)
      msgpack_pack_float(&pk, (float)(i / 4));
    else if (i % 4 == 2)
      msgpack_pack_int64(&pk, i / 4);
    else { /* an array: one element must satisfy every bound */
      msgpack_pack_array(&pk, 2);
      msgpack_pack_int64(&pk, i / 4 - 3);
      msgpack_pack_int64(&pk, i / 4 + 3);
    }
    put(f->db, vs_id_int(i), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  rng = 5;
  for (unsigned mask = 1; mask < 16; mask++)
    for (int rep = 0; rep < 12; rep++) {
      size_t n = (size_t)snprintf(json, sizeof(json), "{\"must\": [{\"key\": \"x\", \"range\": {");
      int first = 1;

      for (int b = 0; b < 4; b++) {
        double at = rnd(24) * 0.5 - 1;

        if (!(mask & (1u << b)))
          continue;
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\": %g%s", first ? "" : ", ",
                              ops[b], at, at == floor(at) && rnd(2) ? ".0" : "");
        first = 0;
      }
      snprintf(json + n, sizeof(json) - n, "}}]}");
      check_json(f->db, json);
    }
  /* Two bounds on one side at the same value: the strict one wins. */
  for (int at = 2; at <= 6; at++) {
    static const char *const pairs[] = {"\"gt\": %d, \"gte\": %d.0", "\"gte\": %d, \"gt\": %d",
                                        "\"lt\": %d.0, \"lte\": %d", "\"lte\": %d, \"lt\": %d"};

    for (int p = 0; p < 4; p++) {
      char bounds[64];

      snprintf(bounds, sizeof(bounds), pairs[p], at, at);
      snprintf(json, sizeof(json), "{\"must\": [{\"key\": \"x\", \"range\": {%s}}]}", bounds);
      check_json(f->db, json);
    }
  }
  assert_int_equal(
      check_json(f->db, "{\"must\": [{\"key\": \"x\", \"range\": {\"gt\": 3, \"gte\": 3}}]}"),
      check_json(f->db, "{\"must\": [{\"key\": \"x\", \"range\": {\"gt\": 3}}]}"));
}

/* has_id: integer and string ids, replaced and deleted ones. */
static void test_has_id(void **state) {
  fixture *f = *state;
  msgpack_sbuffer sb;
  msgpack_packer pk;

  pk_init(&sb, &pk);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "a");
  msgpack_pack_int64(&pk, 1);
  for (int i = 0; i < 20; i++) {
    put(f->db, vs_id_int((uint64_t)i), &sb);
    put(f->db, vs_id_str(i % 2 ? "odd" : "even"), &sb); /* replaced again and again */
  }
  put(f->db, vs_id_str("5"), &sb);
  del(f->db, vs_id_int(3));
  assert_int_equal(check_json(f->db, "{\"must\": [{\"has_id\": [1, 3, 5, \"5\", \"odd\", 99]}]}"),
                   4);
  assert_int_equal(check_json(f->db, "{\"should\": [{\"has_id\": [\"even\"]}]}"), 1);
  assert_int_equal(check_json(f->db, "{\"must_not\": [{\"has_id\": [0, 1, 2]}]}"), 22 - 3);
  assert_int_equal(check_json(f->db, "{\"must\": [{\"has_id\": [0, 1, 2]}, {\"key\": \"a\", "
                                     "\"match\": {\"value\": 1}}], \"must_not\": [{\"has_id\": "
                                     "[1]}]}"),
                   2);
  msgpack_sbuffer_destroy(&sb);
}

/* A read snapshot held outside vsearch's locks, so that this thread may
 * write while it holds it: the collection's handle (immutable until the
 * database closes) and a plain LMDB read transaction (MDB_NOTLS). */
static int coll_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  (void)db, (void)txn, (void)err;
  *(const vs__coll **)ctx = c;
  return VS_OK;
}

static MDB_txn *snapshot(vs_db *db, const vs__coll **c, vs__state *st) {
  vs_error err = VS_ERROR_INIT;
  MDB_txn *txn;

  TU_EXPECT(vs__coll_read(db, "c", coll_step, (void *)c, &err), VS_OK, &err);
  assert_int_equal(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn), 0);
  TU_EXPECT(vs__state_get(db, txn, (*c)->cid, st, &err), VS_OK, &err);
  return txn;
}

/* Ask the index from an old snapshot; compare when it answers. */
static int ask_old(vs_db *db, MDB_txn *txn, const vs__coll *c, const vs__state *st,
                   const vs__filter *f) {
  vs_error err = VS_ERROR_INIT;
  roaring_bitmap_t *set = NULL;
  uint64_t pass;

  TU_EXPECT(vs__pindex_eval(db, txn, c, st, f, &set, &err), VS_OK, &err);
  if (set == NULL)
    return 0;
  compare(txn, c, f, set, &pass);
  roaring_bitmap_free(set);
  return 1;
}

/* A snapshot older than the index: another reader caught the index up
 * past it.  The older reader's answer is reconstructed exactly. */
static void test_old_snapshot(void **state) {
  fixture *fx = *state;
  vs__filter *f[3]; /* label (indexed), has_id + label, tags (not yet indexed) */
  vs_error err = VS_ERROR_INIT;
  const vs__coll *c;
  uint64_t count;
  vs__state st;
  MDB_txn *txn;
  char buf[24];

  rng = 8;
  for (int i = 0; i < 400; i++) {
    msgpack_sbuffer sb;

    rand_payload(&sb);
    put(fx->db, rand_id(i, buf, sizeof(buf)), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  f[0] = parse_json("{\"must\": [{\"key\": \"label\", \"range\": {\"gte\": 3}}], \"must_not\": "
                    "[{\"key\": \"price\", \"match\": {\"any\": [1, 2.5]}}]}");
  f[1] = parse_json("{\"should\": [{\"has_id\": [1, 2, \"s3\", 4, \"s6\", 7]}, {\"key\": "
                    "\"label\", \"match\": {\"value\": 4}}]}");
  f[2] = parse_json("{\"must\": [{\"key\": \"tags\", \"match\": {\"value\": \"red\"}}]}");
  check(fx->db, f[0]); /* index label and price */
  txn = snapshot(fx->db, &c, &st);
  /* Writes after this snapshot: deletes of old points, replacements, new
   * points deleted again; then another read catches the index up. */
  rng = 31;
  for (int i = 0; i < 150; i++) {
    msgpack_sbuffer sb;
    int id = rnd(400);

    if (i % 3 == 0) {
      del(fx->db, rand_id(id, buf, sizeof(buf)));
    } else {
      rand_payload(&sb);
      put(fx->db, rand_id(i % 2 ? id : 400 + i, buf, sizeof(buf)), &sb);
      msgpack_sbuffer_destroy(&sb);
      if (i % 5 == 0)
        del(fx->db, rand_id(400 + i, buf, sizeof(buf)));
    }
  }
  TU_EXPECT(vs_count_where(fx->db, "c", (const vs_filter *)f[0], &count, &err), VS_OK, &err);
  /* Now the older snapshot asks. */
  assert_true(ask_old(fx->db, txn, c, &st, f[0])); /* reconstructed */
  assert_true(ask_old(fx->db, txn, c, &st, f[1]));
  assert_false(ask_old(fx->db, txn, c, &st, f[2])); /* a new field cannot be built for the past */
  /* Built now, by a current reader, the field still knows nothing of the
   * points deleted before it was built. */
  TU_EXPECT(vs_count_where(fx->db, "c", (const vs_filter *)f[2], &count, &err), VS_OK, &err);
  assert_false(ask_old(fx->db, txn, c, &st, f[2]));
  mdb_txn_abort(txn);
  for (int k = 0; k < 3; k++) {
    check(fx->db, f[k]); /* the current snapshot: all answered */
    vs__filter_free(f[k]);
  }
}

/* A snapshot inside a hole: a point upserted before it and replaced after
 * it, both replayed by another reader in one catch-up, was never read, so
 * this snapshot cannot be reconstructed: the index must step aside. */
static void test_snapshot_in_hole(void **state) {
  fixture *fx = *state;
  vs__filter *f = parse_json("{\"must\": [{\"key\": \"label\", \"range\": {\"gte\": 0}}]}");
  vs_error err = VS_ERROR_INIT;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  const vs__coll *c;
  uint64_t count;
  vs__state st;
  MDB_txn *txn;

  pk_init(&sb, &pk);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "label");
  msgpack_pack_int64(&pk, 1);
  for (int i = 0; i < 50; i++)
    put(fx->db, vs_id_int((uint64_t)i), &sb);
  assert_int_equal(check(fx->db, f), 50);
  put(fx->db, vs_id_int(1000), &sb); /* after the index's last catch-up */
  txn = snapshot(fx->db, &c, &st);
  put(fx->db, vs_id_int(1000), &sb); /* replaces the version the snapshot sees */
  TU_EXPECT(vs_count_where(fx->db, "c", (const vs_filter *)f, &count, &err), VS_OK, &err);
  assert_int_equal(count, 51);
  assert_false(ask_old(fx->db, txn, c, &st, f));
  mdb_txn_abort(txn);
  assert_int_equal(check(fx->db, f), 51);
  msgpack_sbuffer_destroy(&sb);
  vs__filter_free(f);
}

/* The payload walker sees what vs__filter_match sees, even in payloads
 * that vs__payload_check would refuse (a stored record is still read
 * safely): an array ends at its first element that is not a scalar, and
 * bytes that do not decode end the walk. */
typedef struct walk_ctx {
  char seen[64];
  size_t n;
} walk_ctx;

static int walk_key(void *ctx, const char *key, size_t len) {
  (void)ctx;
  return len == 1 ? key[0] : -1;
}

static int walk_val(void *ctx, int slot, const vs__scalar *v) {
  walk_ctx *w = ctx;

  if (w->n + 2 < sizeof(w->seen)) {
    w->seen[w->n++] = (char)slot;
    w->seen[w->n++] = v->kind == VS__SCALAR_INT ? (char)('0' + v->u.mag) : '?';
  }
  return VS_OK;
}

static void test_payload_walk(void **state) {
  /* {"a": [1, [2], 3], "b": 5, "cc": 6, "d": nil, "e": [7, 8]} */
  static const uint8_t p[] = {0x85, 0xa1, 'a',  0x93, 0x01, 0x91, 0x02, 0x03,
                              0xa1, 'b',  0x05, 0xa2, 'c',  'c',  0x06, 0xa1,
                              'd',  0xc0, 0xa1, 'e',  0x92, 0x07, 0x08};
  vs__filter *fa3 = parse_json("{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 3}}]}");
  vs__filter *fa1 = parse_json("{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}]}");
  vs__filter *fe8 = parse_json("{\"must\": [{\"key\": \"e\", \"match\": {\"value\": 8}}]}");
  walk_ctx w;

  (void)state;
  memset(&w, 0, sizeof(w));
  assert_int_equal(vs__payload_walk(p, sizeof(p), walk_key, walk_val, &w), VS_OK);
  assert_string_equal(w.seen, "a1b5e7e8");
  assert_int_equal(vs__filter_match(fa3, NULL, p, sizeof(p)), 0);
  assert_int_equal(vs__filter_match(fa1, NULL, p, sizeof(p)), 1);
  assert_int_equal(vs__filter_match(fe8, NULL, p, sizeof(p)), 1);
  /* Cut short inside "e": the walk and the match both stop there. */
  memset(&w, 0, sizeof(w));
  assert_int_equal(vs__payload_walk(p, sizeof(p) - 1, walk_key, walk_val, &w), VS_OK);
  assert_string_equal(w.seen, "a1b5e7");
  assert_int_equal(vs__filter_match(fe8, NULL, p, sizeof(p) - 1), 0);
  /* Not a map: nothing. */
  memset(&w, 0, sizeof(w));
  assert_int_equal(vs__payload_walk(p + 3, 5, walk_key, walk_val, &w), VS_OK);
  assert_int_equal(w.n, 0);
  assert_int_equal(vs__payload_walk(NULL, 0, walk_key, walk_val, &w), VS_OK);
  assert_int_equal(w.n, 0);
  vs__filter_free(fa3);
  vs__filter_free(fa1);
  vs__filter_free(fe8);
}

/* Pids of 2^32 and more: the index steps aside, the planner's other paths
 * answer, and they still answer right. */
static int jump_pids(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  vs__state st;
  int rc;

  (void)ctx;
  if ((rc = vs__state_get(db, txn, c->cid, &st, err)))
    return rc;
  st.next_pid = (1ull << 32) - 2;
  return vs__state_put(db, txn, c->cid, &st, err);
}

static void test_wide_pids(void **state) {
  fixture *f = *state;
  vs__filter *flt = parse_json("{\"must\": [{\"key\": \"label\", \"range\": {\"gte\": 0}}]}");
  vs_error err = VS_ERROR_INIT;
  check_ctx cc = {flt, 1, 0};
  uint64_t count;
  char buf[24];

  rng = 9;
  for (int i = 0; i < 10; i++) {
    msgpack_sbuffer sb;

    rand_payload(&sb);
    put(f->db, rand_id(i, buf, sizeof(buf)), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  check(f->db, flt);
  TU_EXPECT(vs__coll_write(f->db, "c", jump_pids, NULL, &err), VS_OK, &err);
  for (int i = 10; i < 16; i++) { /* pids 2^32 - 2 .. 2^32 + 3 */
    msgpack_sbuffer sb;
    msgpack_packer pk;

    pk_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "label");
    msgpack_pack_int64(&pk, 1);
    put(f->db, vs_id_int((uint64_t)i), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  TU_EXPECT(vs__coll_read(f->db, "c", check_step, &cc, &err), VS_OK, &err);
  assert_false(cc.answered);
  /* The point-by-point paths count and search. */
  {
    vs__filter *ones = parse_json("{\"must\": [{\"key\": \"label\", \"match\": {\"value\": 1}}]}");
    float q[2] = {0, 0};
    vs_search_params sp = {q, 2, 20, 0, 0, 0, 0, (const vs_filter *)ones};
    vs_hit *hits;
    size_t nh, at_least = 6;

    TU_EXPECT(vs_count_where(f->db, "c", (const vs_filter *)ones, &count, &err), VS_OK, &err);
    assert_true(count >= at_least);
    TU_EXPECT(vs_search(f->db, "c", &sp, &hits, &nh, NULL, &err), VS_OK, &err);
    assert_int_equal(nh, count);
    vs_free(hits);
    vs__filter_free(ones);
  }
  vs__filter_free(flt);
}

/* Readers and a writer at once: each reader compares the index's answer
 * with the oracle inside its own snapshot, while the writer moves the
 * index on (so readers meet an index ahead of their snapshot, holes, and
 * catch-ups by other threads).  Failures are counted, not asserted: cmocka
 * cannot fail a test from another thread. */
enum { CONC_FILTERS = 24, CONC_READERS = 3 };

typedef struct conc {
  vs_db *db;
  vs__filter *f[CONC_FILTERS];
  int stop;
  pthread_mutex_t lock;
  long checks, answered, mismatches, errors;
} conc;

typedef struct conc_check {
  const vs__filter *f;
  int answered;
  long mismatches;
} conc_check;

static int conc_step(vs_db *db, MDB_txn *txn, const vs__coll *c, void *ctx, vs_error *err) {
  conc_check *cc = ctx;
  roaring_bitmap_t *set = NULL;
  MDB_cursor *cur;
  MDB_val k, v;
  vs__state st;
  int rc;

  if ((rc = vs__state_get(db, txn, c->cid, &st, err)) ||
      (rc = vs__pindex_eval(db, txn, c, &st, cc->f, &set, err)))
    return rc;
  cc->answered = set != NULL;
  if (set == NULL)
    return VS_OK;
  if (mdb_cursor_open(txn, c->dbi[VS__DBI_PTS], &cur) == 0) {
    uint64_t n = 0;

    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      uint64_t pid;
      int want;

      memcpy(&pid, k.mv_data, 8);
      want = oracle_passes(cc->f, &v);
      n += (uint64_t)want;
      cc->mismatches += want != (pid <= UINT32_MAX && roaring_bitmap_contains(set, (uint32_t)pid));
    }
    mdb_cursor_close(cur);
    cc->mismatches += roaring_bitmap_get_cardinality(set) != n;
  }
  roaring_bitmap_free(set);
  return VS_OK;
}

static void *conc_reader(void *arg) {
  conc *cs = arg;

  for (int i = 0; i < 400; i++) {
    conc_check cc = {cs->f[i % CONC_FILTERS], 0, 0};
    vs_error err = VS_ERROR_INIT;
    int rc = vs__coll_read(cs->db, "c", conc_step, &cc, &err);

    pthread_mutex_lock(&cs->lock);
    cs->checks++;
    cs->answered += cc.answered;
    cs->mismatches += cc.mismatches;
    cs->errors += rc != VS_OK;
    pthread_mutex_unlock(&cs->lock);
  }
  return NULL;
}

static void test_concurrent(void **state) {
  fixture *f = *state;
  conc cs;
  pthread_t readers[CONC_READERS];
  char buf[24];
  int next = 500;

  memset(&cs, 0, sizeof(cs));
  cs.db = f->db;
  pthread_mutex_init(&cs.lock, NULL);
  rng = 55;
  for (int i = 0; i < next; i++) {
    msgpack_sbuffer sb;

    rand_payload(&sb);
    put(f->db, rand_id(i, buf, sizeof(buf)), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  for (int i = 0; i < CONC_FILTERS; i++) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    vs_error err = VS_ERROR_INIT;

    pk_init(&sb, &pk);
    rand_filter(&pk, 1, next);
    TU_EXPECT(vs__filter_parse_msgpack(sb.data, sb.size, &cs.f[i], &err), VS_OK, &err);
    msgpack_sbuffer_destroy(&sb);
  }
  for (int t = 0; t < CONC_READERS; t++)
    assert_int_equal(pthread_create(&readers[t], NULL, conc_reader, &cs), 0);
  for (int i = 0; i < 600; i++) { /* the writer: this thread */
    msgpack_sbuffer sb;
    int id = rnd(next);

    if (rnd(4) == 0) {
      del(f->db, rand_id(id, buf, sizeof(buf)));
    } else {
      rand_payload(&sb);
      put(f->db, rand_id(rnd(2) ? id : next++, buf, sizeof(buf)), &sb);
      msgpack_sbuffer_destroy(&sb);
    }
  }
  for (int t = 0; t < CONC_READERS; t++)
    pthread_join(readers[t], NULL);
  print_message("%ld checks, %ld answered by the index, %ld mismatches, %ld errors\n", cs.checks,
                cs.answered, cs.mismatches, cs.errors);
  assert_int_equal(cs.mismatches, 0);
  assert_int_equal(cs.errors, 0);
  assert_true(cs.answered > cs.checks / 2);
  for (int i = 0; i < CONC_FILTERS; i++) {
    check(f->db, cs.f[i]);
    vs__filter_free(cs.f[i]);
  }
  pthread_mutex_destroy(&cs.lock);
}

/* Out of memory while indexing or evaluating: VS_ENOMEM, nothing leaks,
 * and the next query (memory back) answers right. */
typedef struct counting {
  long fail_at;
  long calls;
} counting;

static void *c_malloc(void *ctx, size_t n) {
  counting *c = ctx;

  if (c->fail_at >= 0 && c->calls++ == c->fail_at)
    return NULL;
  return malloc(n);
}

static void *c_realloc(void *ctx, void *ptr, size_t n) {
  counting *c = ctx;

  if (c->fail_at >= 0 && c->calls++ == c->fail_at)
    return NULL;
  return realloc(ptr, n);
}

static void c_free(void *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

static void test_alloc_failures(void **state) {
  fixture *f = *state;
  counting cnt = {-1, 0};
  vs_allocator a = {c_malloc, c_realloc, c_free, &cnt};
  char buf[24];
  int failures = 0;

  rng = 12;
  for (int i = 0; i < 300; i++) {
    msgpack_sbuffer sb;

    rand_payload(&sb);
    put(f->db, rand_id(i, buf, sizeof(buf)), &sb);
    msgpack_sbuffer_destroy(&sb);
  }
  for (int round = 0; round < 2; round++) {
    /* Round 1: a catch-up after more writes, with the fields indexed. */
    vs__filter *flt = parse_json(
        "{\"must\": [{\"key\": \"tags\", \"match\": {\"any\": [\"red\", \"blue\", 3]}}], "
        "\"should\": [{\"key\": \"price\", \"range\": {\"lt\": 6}}, {\"has_id\": [1, \"s3\"]}]}");

    for (long k = 0; k < 10000; k++) {
      vs_error err = VS_ERROR_INIT;
      uint64_t count;
      int rc;

      cnt = (counting){k, 0};
      vs_set_allocator(&a);
      rc = vs_count_where(f->db, "c", (const vs_filter *)flt, &count, &err);
      vs_set_allocator(NULL);
      if (rc == VS_OK && cnt.calls <= k)
        break; /* no allocation failed: done */
      if (rc != VS_OK) {
        assert_int_equal(rc, VS_ENOMEM);
        failures++;
      }
    }
    check(f->db, flt);
    vs__filter_free(flt);
    for (int i = 0; i < 200; i++) {
      msgpack_sbuffer sb;

      rand_payload(&sb);
      put(f->db, rand_id(300 + i, buf, sizeof(buf)), &sb);
      msgpack_sbuffer_destroy(&sb);
    }
  }
  print_message("%d injected allocation failures answered VS_ENOMEM\n", failures);
  assert_true(failures >= 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_random_equivalence, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_numbers, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_range_bounds, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_has_id, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_old_snapshot, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_in_hole, setup, tu_teardown),
      cmocka_unit_test(test_payload_walk),
      cmocka_unit_test_setup_teardown(test_wide_pids, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_concurrent, setup, tu_teardown),
      cmocka_unit_test_setup_teardown(test_alloc_failures, setup, tu_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
