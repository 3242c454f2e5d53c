/*
 * test_filter.c: payload filters (engine/filter.c).  Every condition kind,
 * array fields, missing fields, must/should/must_not and nesting, exact
 * comparison of integers with floats, has_id with integer and string ids,
 * JSON and msgpack giving the same filter, every malformed filter refused
 * with a message, allocation failures, and a seeded randomized comparison
 * against an independent reference evaluator working on plain C structs.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/filter.h"

/* ---- helpers ------------------------------------------------------------------ */

static vs__filter *parse_json(const char *json) {
  vs_error err = VS_ERROR_INIT;
  vs__filter *f = NULL;

  TU_EXPECT(vs__filter_parse_json(json, strlen(json), &f, &err), VS_OK, &err);
  assert_non_null(f);
  return f;
}

static vs__filter *parse_mp(const msgpack_sbuffer *sb) {
  vs_error err = VS_ERROR_INIT;
  vs__filter *f = NULL;

  TU_EXPECT(vs__filter_parse_msgpack(sb->data, sb->size, &f, &err), VS_OK, &err);
  assert_non_null(f);
  return f;
}

/* Evaluate JSON filter `json` on one point. */
static int eval(const char *json, const vs_id *id, const msgpack_sbuffer *payload) {
  vs__filter *f = parse_json(json);
  int r = vs__filter_match(f, id, payload ? (const uint8_t *)payload->data : NULL,
                           payload ? payload->size : 0);

  vs__filter_free(f);
  return r;
}

#define MATCHES(json, id, payload) assert_int_equal(eval(json, id, payload), 1)
#define REJECTS(json, id, payload) assert_int_equal(eval(json, id, payload), 0)

/* Expect `json` to be refused with VS_EINVAL and a message containing `want`. */
static void json_bad(const char *json, size_t len, const char *want) {
  vs_error err = VS_ERROR_INIT;
  vs__filter *f = (vs__filter *)&err; /* must be reset to NULL */
  int rc = vs__filter_parse_json(json, len, &f, &err);

  if (rc != VS_EINVAL || strstr(err.message, want) == NULL)
    fail_msg("filter %.*s: got %s \"%s\", want VS_EINVAL \"...%s...\"",
             (int)(len > 200 ? 200 : len), json ? json : "", vs_err_name(rc), err.message, want);
  assert_int_equal(err.code, VS_EINVAL);
  assert_null(f);
}

#define JSON_BAD(json, want) json_bad(json, strlen(json), want)

static void mp_bad(const void *p, size_t len, const char *want) {
  vs_error err = VS_ERROR_INIT;
  vs__filter *f = (vs__filter *)&err;
  int rc = vs__filter_parse_msgpack(p, len, &f, &err);

  if (rc != VS_EINVAL || strstr(err.message, want) == NULL)
    fail_msg("msgpack filter of %zu bytes: got %s \"%s\", want VS_EINVAL \"...%s...\"", len,
             vs_err_name(rc), err.message, want);
  assert_null(f);
}

#define MP_BAD(lit, want) mp_bad(lit, sizeof(lit) - 1, want)

static void pk_init(msgpack_sbuffer *sb, msgpack_packer *pk) {
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

static void pk_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* The payload most tests use:
 *   label 5, price 5.0, name "5", ok true, neg -3, f32 1.5 (float32),
 *   tags ["red", "blue"], nums [1, 2.5, 10], empty [], mixed ["x", 3, true],
 *   b53 2^53 + 1, big 2^63 + 5 (uint64), min INT64_MIN */
static void std_payload(msgpack_sbuffer *sb) {
  msgpack_packer pk;

  pk_init(sb, &pk);
  msgpack_pack_map(&pk, 13);
  pk_str(&pk, "label");
  msgpack_pack_int(&pk, 5);
  pk_str(&pk, "price");
  msgpack_pack_double(&pk, 5.0);
  pk_str(&pk, "name");
  pk_str(&pk, "5");
  pk_str(&pk, "ok");
  msgpack_pack_true(&pk);
  pk_str(&pk, "neg");
  msgpack_pack_int(&pk, -3);
  pk_str(&pk, "f32");
  msgpack_pack_float(&pk, 1.5f);
  pk_str(&pk, "tags");
  msgpack_pack_array(&pk, 2);
  pk_str(&pk, "red");
  pk_str(&pk, "blue");
  pk_str(&pk, "nums");
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_double(&pk, 2.5);
  msgpack_pack_int(&pk, 10);
  pk_str(&pk, "empty");
  msgpack_pack_array(&pk, 0);
  pk_str(&pk, "mixed");
  msgpack_pack_array(&pk, 3);
  pk_str(&pk, "x");
  msgpack_pack_int(&pk, 3);
  msgpack_pack_true(&pk);
  pk_str(&pk, "b53");
  msgpack_pack_int64(&pk, (1ll << 53) + 1);
  pk_str(&pk, "big");
  msgpack_pack_uint64(&pk, (1ull << 63) + 5);
  pk_str(&pk, "min");
  msgpack_pack_int64(&pk, INT64_MIN);
}

/* Build {"must": [{"key": key, "match": {"value": <json>}}]} into buf. */
static const char *must_match(char *buf, size_t cap, const char *key, const char *value) {
  snprintf(buf, cap, "{\"must\": [{\"key\": \"%s\", \"match\": {\"value\": %s}}]}", key, value);
  return buf;
}

static const char *must_range(char *buf, size_t cap, const char *key, const char *bounds) {
  snprintf(buf, cap, "{\"must\": [{\"key\": \"%s\", \"range\": {%s}}]}", key, bounds);
  return buf;
}

static const char *must_any(char *buf, size_t cap, const char *key, const char *list) {
  snprintf(buf, cap, "{\"must\": [{\"key\": \"%s\", \"match\": {\"any\": [%s]}}]}", key, list);
  return buf;
}

/* ---- condition kinds ---------------------------------------------------------- */

static void test_match_value(void **state) {
  msgpack_sbuffer p;
  char b[512];

  (void)state;
  std_payload(&p);
  MATCHES(must_match(b, sizeof(b), "label", "5"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "label", "6"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "label", "5.0"), NULL, &p); /* int field, float value */
  MATCHES(must_match(b, sizeof(b), "price", "5"), NULL, &p);   /* float field, int value */
  REJECTS(must_match(b, sizeof(b), "price", "5.5"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "label", "\"5\""), NULL, &p); /* "5" is not 5 */
  MATCHES(must_match(b, sizeof(b), "name", "\"5\""), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "name", "5"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "name", "\"5 \""), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "ok", "true"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "ok", "false"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "ok", "1"), NULL, &p); /* booleans only equal booleans */
  REJECTS(must_match(b, sizeof(b), "label", "true"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "neg", "-3"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "neg", "-3.0"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "neg", "3"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "f32", "1.5"), NULL, &p); /* float32 in the payload */
  /* Integers beyond 2^53 compare exactly with floats. */
  MATCHES(must_match(b, sizeof(b), "b53", "9007199254740993"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "b53", "9007199254740992.0"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "b53", "9007199254740992"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "min", "-9223372036854775808"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "min", "-9223372036854775808.0"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "min", "9223372036854775807"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "big", "9223372036854775807"), NULL, &p);
  msgpack_sbuffer_destroy(&p);
}

/* Every msgpack integer and float encoding reads as its value. */
static void test_encodings(void **state) {
  static const char *const fields[] = {"i8",  "i16", "i32", "i64", "u8",  "u16",
                                       "u32", "u64", "f32", "f64", "nfix"};
  static const char *const values[] = {"-100", "-30000", "-2000000000", "-1099511627776",
                                       "200",  "60000",  "4000000000",  "9223372036854775808.0",
                                       "-0.5", "0.1",    "-32"};
  msgpack_sbuffer p;
  msgpack_packer pk;
  char b[256];

  (void)state;
  pk_init(&p, &pk);
  msgpack_pack_map(&pk, 11);
  pk_str(&pk, "i8");
  msgpack_pack_int8(&pk, -100);
  pk_str(&pk, "i16");
  msgpack_pack_int16(&pk, -30000);
  pk_str(&pk, "i32");
  msgpack_pack_int32(&pk, -2000000000);
  pk_str(&pk, "i64");
  msgpack_pack_int64(&pk, -(1ll << 40));
  pk_str(&pk, "u8");
  msgpack_pack_uint8(&pk, 200);
  pk_str(&pk, "u16");
  msgpack_pack_uint16(&pk, 60000);
  pk_str(&pk, "u32");
  msgpack_pack_uint32(&pk, 4000000000u);
  pk_str(&pk, "u64");
  msgpack_pack_uint64(&pk, 1ull << 63);
  pk_str(&pk, "f32");
  msgpack_pack_float(&pk, -0.5f);
  pk_str(&pk, "f64");
  msgpack_pack_double(&pk, 0.1);
  pk_str(&pk, "nfix");
  msgpack_pack_int(&pk, -32);
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    char bounds[96];

    MATCHES(must_match(b, sizeof(b), fields[i], values[i]), NULL, &p);
    snprintf(bounds, sizeof(bounds), "\"gte\": %s, \"lte\": %s", values[i], values[i]);
    MATCHES(must_range(b, sizeof(b), fields[i], bounds), NULL, &p);
    snprintf(bounds, sizeof(bounds), "\"gt\": %s", values[i]);
    REJECTS(must_range(b, sizeof(b), fields[i], bounds), NULL, &p);
    snprintf(bounds, sizeof(bounds), "\"lt\": %s", values[i]);
    REJECTS(must_range(b, sizeof(b), fields[i], bounds), NULL, &p);
  }
  /* 0.1 as a float64 is not 0.1 as a float32. */
  REJECTS(must_match(b, sizeof(b), "f64", "0.10000000149011612"), NULL, &p);
  msgpack_sbuffer_destroy(&p);
}

static void test_match_any(void **state) {
  msgpack_sbuffer p;
  char b[1024];

  (void)state;
  std_payload(&p);
  MATCHES(must_any(b, sizeof(b), "label", "1, 2, 5"), NULL, &p);
  MATCHES(must_any(b, sizeof(b), "label", "5"), NULL, &p);
  REJECTS(must_any(b, sizeof(b), "label", "1, 2, 3"), NULL, &p);
  MATCHES(must_any(b, sizeof(b), "label", "\"a\", true, 5.0"), NULL, &p);
  REJECTS(must_any(b, sizeof(b), "label", "\"5\", true, 4.99"), NULL, &p);
  MATCHES(must_any(b, sizeof(b), "tags", "\"green\", \"blue\""), NULL, &p);
  REJECTS(must_any(b, sizeof(b), "tags", "\"green\", \"Blue\""), NULL, &p);
  /* Long lists (binary search), mixed kinds and duplicates. */
  MATCHES(must_any(b, sizeof(b), "label",
                   "40, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, \"x\", false, 5.0, 1, 1, 1"),
          NULL, &p);
  REJECTS(must_any(b, sizeof(b), "label",
                   "40, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, \"x\", false, 5.5, 1, 1, 1, \"5\""),
          NULL, &p);
  MATCHES(must_any(b, sizeof(b), "name",
                   "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \"a\", \"b\", \"c\", \"5\", \"55\", true"),
          NULL, &p);
  REJECTS(must_any(b, sizeof(b), "name",
                   "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \"a\", \"b\", \"c\", \"\", \"55\", true"),
          NULL, &p);
  MATCHES(must_any(b, sizeof(b), "ok", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, false, true"), NULL, &p);
  REJECTS(must_any(b, sizeof(b), "ok", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, false, \"true\""), NULL, &p);
  msgpack_sbuffer_destroy(&p);
}

static void test_range(void **state) {
  msgpack_sbuffer p;
  char b[512];

  (void)state;
  std_payload(&p);
  MATCHES(must_range(b, sizeof(b), "label", "\"gt\": 4"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "label", "\"gt\": 5"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "label", "\"gte\": 5"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "label", "\"gte\": 5.0"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "label", "\"gt\": 5.0"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "label", "\"gt\": 4.999"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "label", "\"lt\": 5"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "label", "\"lte\": 5"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "label", "\"lt\": 5.001"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "price", "\"gt\": 4, \"lt\": 6"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "price", "\"gte\": 5, \"lte\": 5"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "price", "\"gt\": 5, \"lte\": 6"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "price", "\"gt\": 1, \"gte\": 2, \"lt\": 9, \"lte\": 8"), NULL,
          &p);
  REJECTS(must_range(b, sizeof(b), "price", "\"gt\": 1, \"gte\": 2, \"lt\": 9, \"lte\": 4"), NULL,
          &p);
  REJECTS(must_range(b, sizeof(b), "price", "\"gt\": 6, \"lt\": 4"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "neg", "\"lt\": -2.5, \"gt\": -3.5"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "neg", "\"gte\": 0"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "f32", "\"gt\": 1.25, \"lt\": 1.75"), NULL, &p);
  /* Strings and booleans never fall in a range. */
  REJECTS(must_range(b, sizeof(b), "name", "\"gte\": -1000000"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "name", "\"lte\": 1000000"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "ok", "\"gte\": 0"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "tags", "\"gte\": 0"), NULL, &p);
  /* Exactness at the edges of the integer range. */
  MATCHES(must_range(b, sizeof(b), "b53", "\"gt\": 9007199254740992.0"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "b53", "\"lte\": 9007199254740992.0"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "b53", "\"lt\": 9007199254740994"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "big", "\"gt\": 9223372036854775807"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "big", "\"gt\": 9.2e18, \"lt\": 1.8e19"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "big", "\"gt\": 1.9e19"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "min", "\"lt\": -9223372036854775807"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "min", "\"gte\": -9223372036854775808.0"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "min", "\"lt\": -9223372036854775808.0"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "min", "\"gt\": -1e300"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "min", "\"lt\": -1e300"), NULL, &p);
  msgpack_sbuffer_destroy(&p);
}

static void test_array_fields(void **state) {
  msgpack_sbuffer p;
  char b[512];

  (void)state;
  std_payload(&p);
  /* Any element. */
  MATCHES(must_match(b, sizeof(b), "tags", "\"red\""), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "tags", "\"blue\""), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "tags", "\"green\""), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "nums", "2.5"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "nums", "10.0"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "mixed", "true"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "mixed", "3"), NULL, &p);
  MATCHES(must_match(b, sizeof(b), "mixed", "\"x\""), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "mixed", "false"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "nums", "\"gt\": 9"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "mixed", "\"gt\": 2"), NULL, &p); /* 3; "x" and true skipped */
  /* One element must satisfy every bound; bounds met by different elements are not enough. */
  REJECTS(must_range(b, sizeof(b), "nums", "\"gt\": 3, \"lt\": 9"), NULL, &p);
  MATCHES(must_range(b, sizeof(b), "nums", "\"gt\": 2, \"lt\": 3"), NULL, &p);
  /* An empty array matches nothing. */
  REJECTS(must_match(b, sizeof(b), "empty", "1"), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "empty", "\"gt\": -1e300"), NULL, &p);
  MATCHES("{\"must_not\": [{\"key\": \"empty\", \"range\": {\"gt\": 0}}]}", NULL, &p);
  msgpack_sbuffer_destroy(&p);
}

static void test_missing_field(void **state) {
  msgpack_sbuffer p;
  char b[512];
  vs__filter *f;

  (void)state;
  std_payload(&p);
  REJECTS(must_match(b, sizeof(b), "nope", "1"), NULL, &p);
  REJECTS(must_any(b, sizeof(b), "nope", "1, \"a\""), NULL, &p);
  REJECTS(must_range(b, sizeof(b), "nope", "\"gt\": -1e300"), NULL, &p);
  MATCHES("{\"must_not\": [{\"key\": \"nope\", \"match\": {\"value\": 1}}]}", NULL, &p);
  REJECTS("{\"should\": [{\"key\": \"nope\", \"match\": {\"value\": 1}}]}", NULL, &p);
  /* Field names are compared whole and exactly. */
  REJECTS(must_match(b, sizeof(b), "labe", "5"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "labels", "5"), NULL, &p);
  REJECTS(must_match(b, sizeof(b), "Label", "5"), NULL, &p);
  /* No payload at all: every field is missing. */
  f = parse_json("{\"must_not\": [{\"key\": \"label\", \"match\": {\"value\": 5}}]}");
  assert_int_equal(vs__filter_match(f, NULL, NULL, 0), 1);
  assert_int_equal(vs__filter_match(f, NULL, (const uint8_t *)p.data, p.size), 0);
  vs__filter_free(f);
  f = parse_json("{\"must\": [{\"key\": \"label\", \"match\": {\"value\": 5}}]}");
  assert_int_equal(vs__filter_match(f, NULL, NULL, 0), 0);
  assert_int_equal(vs__filter_match(f, NULL, (const uint8_t *)"\x80", 1), 0); /* {} */
  /* Cut-short bytes read as missing, without reading past the end (ASan
   * checks each exact-size copy): "label" is the first pair, its value ends
   * at byte 8 (fixmap, fixstr "label", fixint 5). */
  for (size_t n = 0; n < p.size; n++) {
    uint8_t *cut = malloc(n ? n : 1);

    memcpy(cut, p.data, n);
    assert_int_equal(vs__filter_match(f, NULL, cut, n), n >= 8);
    free(cut);
  }
  vs__filter_free(f);
  msgpack_sbuffer_destroy(&p);
}

/* ---- must, should, must_not ---------------------------------------------------- */

#define A "{\"key\": \"label\", \"match\": {\"value\": 5}}"      /* true */
#define B "{\"key\": \"tags\", \"match\": {\"value\": \"red\"}}" /* true */
#define X "{\"key\": \"label\", \"match\": {\"value\": 6}}"      /* false */
#define Y "{\"key\": \"nope\", \"range\": {\"gt\": 0}}"          /* false */

static void test_logic(void **state) {
  msgpack_sbuffer p;

  (void)state;
  std_payload(&p);
  /* Empty and absent lists are neutral. */
  MATCHES("{}", NULL, &p);
  MATCHES("{\"must\": [], \"should\": [], \"must_not\": []}", NULL, &p);
  MATCHES("{}", NULL, NULL);
  /* must: all. */
  MATCHES("{\"must\": [" A ", " B "]}", NULL, &p);
  REJECTS("{\"must\": [" A ", " X "]}", NULL, &p);
  REJECTS("{\"must\": [" X ", " A "]}", NULL, &p);
  /* should: at least one. */
  MATCHES("{\"should\": [" X ", " Y ", " B "]}", NULL, &p);
  REJECTS("{\"should\": [" X ", " Y "]}", NULL, &p);
  MATCHES("{\"should\": [" A "]}", NULL, &p);
  /* must_not: none. */
  MATCHES("{\"must_not\": [" X ", " Y "]}", NULL, &p);
  REJECTS("{\"must_not\": [" X ", " A "]}", NULL, &p);
  /* Together: all three parts must agree. */
  MATCHES("{\"must\": [" A "], \"should\": [" X ", " B "], \"must_not\": [" Y "]}", NULL, &p);
  REJECTS("{\"must\": [" A "], \"should\": [" X ", " Y "], \"must_not\": [" Y "]}", NULL, &p);
  REJECTS("{\"must\": [" A "], \"should\": [" B "], \"must_not\": [" B "]}", NULL, &p);
  REJECTS("{\"must\": [" X "], \"should\": [" B "], \"must_not\": [" Y "]}", NULL, &p);
  MATCHES("{\"must_not\": [" X "], \"should\": [" B "]}", NULL, &p);
  /* Nesting: (A and B) or X; not (X or Y); A and not (A and X). */
  MATCHES("{\"should\": [{\"must\": [" A ", " B "]}, " X "]}", NULL, &p);
  REJECTS("{\"should\": [{\"must\": [" A ", " X "]}, " X "]}", NULL, &p);
  MATCHES("{\"must_not\": [{\"should\": [" X ", " Y "]}]}", NULL, &p);
  REJECTS("{\"must_not\": [{\"should\": [" X ", " A "]}]}", NULL, &p);
  MATCHES("{\"must\": [" A ", {\"must_not\": [{\"must\": [" A ", " X "]}]}]}", NULL, &p);
  REJECTS("{\"must\": [" A ", {\"must_not\": [{\"must\": [" A ", " B "]}]}]}", NULL, &p);
  /* A nested filter with only empty lists, or none, is neutral like the top level. */
  MATCHES("{\"must\": [{}]}", NULL, &p);
  REJECTS("{\"must_not\": [{}]}", NULL, &p);
  MATCHES("{\"should\": [{}, " X "]}", NULL, &p);
  MATCHES("{\"must\": [{\"should\": []}]}", NULL, &p);
  REJECTS("{\"must_not\": [{\"must\": []}]}", NULL, &p);
  /* Three levels. */
  MATCHES("{\"must\": [{\"should\": [" X ", {\"must\": [" B ", {\"must_not\": [" Y "]}]}]}]}", NULL,
          &p);
  REJECTS("{\"must\": [{\"should\": [" X ", {\"must\": [" B ", {\"must_not\": [" A "]}]}]}]}", NULL,
          &p);
  msgpack_sbuffer_destroy(&p);
}

static void test_has_id(void **state) {
  vs_id i5 = vs_id_int(5), s5 = vs_id_str("5"), i6 = vs_id_int(6), sabc = vs_id_str("abc");
  vs_id imax = vs_id_int((uint64_t)INT64_MAX);
  char list[4096];
  size_t n = 0;

  (void)state;
  MATCHES("{\"must\": [{\"has_id\": [5]}]}", &i5, NULL);
  REJECTS("{\"must\": [{\"has_id\": [5]}]}", &s5, NULL);
  MATCHES("{\"must\": [{\"has_id\": [\"5\"]}]}", &s5, NULL);
  REJECTS("{\"must\": [{\"has_id\": [\"5\"]}]}", &i5, NULL);
  MATCHES("{\"must\": [{\"has_id\": [\"abc\", 6]}]}", &i6, NULL);
  MATCHES("{\"must\": [{\"has_id\": [\"abc\", 6]}]}", &sabc, NULL);
  REJECTS("{\"must\": [{\"has_id\": [\"abc\", 6]}]}", &i5, NULL);
  MATCHES("{\"must\": [{\"has_id\": [9223372036854775807]}]}", &imax, NULL);
  REJECTS("{\"must_not\": [{\"has_id\": [5, 6]}]}", &i5, NULL);
  MATCHES("{\"must_not\": [{\"has_id\": [5, 6]}]}", &s5, NULL);
  /* No id: has_id never holds. */
  REJECTS("{\"must\": [{\"has_id\": [5]}]}", NULL, NULL);
  MATCHES("{\"must_not\": [{\"has_id\": [5]}]}", NULL, NULL);
  /* A long list: integers 0, 3, 6, ..., and their strings "1", "4", ... */
  n += (size_t)snprintf(list + n, sizeof(list) - n, "{\"should\": [{\"has_id\": [");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d, \"%d\"", i ? ", " : "", 3 * i,
                          3 * i + 1);
  snprintf(list + n, sizeof(list) - n, "]}]}");
  {
    vs__filter *f = parse_json(list);

    for (int i = 0; i < 400; i++) {
      char s[16];
      vs_id a = vs_id_int((uint64_t)i), b;

      snprintf(s, sizeof(s), "%d", i);
      b = vs_id_str(s);
      assert_int_equal(vs__filter_match(f, &a, NULL, 0), i < 300 && i % 3 == 0);
      assert_int_equal(vs__filter_match(f, &b, NULL, 0), i < 300 && i % 3 == 1);
    }
    vs__filter_free(f);
  }
}

static void test_id_list(void **state) {
  vs__filter *f;
  const vs_id *ids = NULL;
  size_t n = 0;

  (void)state;
  f = parse_json("{\"must\": [{\"has_id\": [3, \"b\", 1, \"a\", 3, \"b\"]}]}");
  assert_int_equal(vs__filter_id_list(f, &ids, &n), 1);
  assert_int_equal(n, 4);
  assert_int_equal(ids[0].kind, VS_ID_INT);
  assert_int_equal(ids[0].num, 1);
  assert_int_equal(ids[1].kind, VS_ID_INT);
  assert_int_equal(ids[1].num, 3);
  assert_int_equal(ids[2].kind, VS_ID_STR);
  assert_int_equal(ids[2].len, 1);
  assert_memory_equal(ids[2].str, "a", 1);
  assert_int_equal(ids[3].kind, VS_ID_STR);
  assert_memory_equal(ids[3].str, "b", 1);
  vs__filter_free(f);

  f = parse_json("{\"should\": [{\"has_id\": [7]}], \"must\": []}");
  assert_int_equal(vs__filter_id_list(f, &ids, &n), 1);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0].num, 7);
  vs__filter_free(f);

  /* Anything more than one has_id condition is not the fast path. */
  {
    static const char *const not_fast[] = {
        "{}",
        "{\"must_not\": [{\"has_id\": [7]}]}",
        "{\"must\": [{\"has_id\": [7]}, {\"has_id\": [8]}]}",
        "{\"must\": [{\"has_id\": [7]}], \"should\": [{\"has_id\": [7]}]}",
        "{\"must\": [{\"has_id\": [7]}], \"must_not\": [{\"has_id\": [8]}]}",
        "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}]}",
        "{\"must\": [{\"must\": [{\"has_id\": [7]}]}]}",
    };
    for (size_t i = 0; i < sizeof(not_fast) / sizeof(not_fast[0]); i++) {
      f = parse_json(not_fast[i]);
      n = 99;
      assert_int_equal(vs__filter_id_list(f, &ids, &n), 0);
      assert_int_equal(n, 99);
      vs__filter_free(f);
    }
  }
}

static void test_fields(void **state) {
  vs__filter *f;
  size_t len;
  const char *name;

  (void)state;
  f = parse_json("{\"must\": [{\"key\": \"b\", \"match\": {\"value\": 1}}, {\"has_id\": [1]}],"
                 " \"should\": [{\"must_not\": [{\"key\": \"a\", \"range\": {\"gt\": 1}},"
                 " {\"key\": \"b\", \"match\": {\"any\": [1]}}, {\"key\": \"ab\", \"range\": "
                 "{\"lt\": 1}}]}]}");
  assert_int_equal(vs__filter_field_count(f), 3);
  name = vs__filter_field(f, 0, &len);
  assert_int_equal(len, 1);
  assert_memory_equal(name, "a", 1);
  name = vs__filter_field(f, 1, &len);
  assert_int_equal(len, 2);
  assert_memory_equal(name, "ab", 2);
  name = vs__filter_field(f, 2, &len);
  assert_int_equal(len, 1);
  assert_memory_equal(name, "b", 1);
  vs__filter_free(f);
  f = parse_json("{}");
  assert_int_equal(vs__filter_field_count(f), 0);
  vs__filter_free(f);
}

/* Filters naming more fields than the evaluator's per-point cache holds scan
 * the payload once per condition: both ways must give the same answers. */
static void test_many_fields(void **state) {
  char *json = malloc(65536);
  size_t n = 0;
  vs__filter *many, *few;

  (void)state;
  /* should: f0 == 0 or f1 == 1 or ... f39 == 39; must_not: f40..f59 present and >= 0. */
  n += (size_t)snprintf(json + n, 65536 - n, "{\"should\": [");
  for (int i = 0; i < 40; i++)
    n += (size_t)snprintf(json + n, 65536 - n, "%s{\"key\": \"f%d\", \"match\": {\"value\": %d}}",
                          i ? ", " : "", i, i);
  n += (size_t)snprintf(json + n, 65536 - n, "], \"must_not\": [");
  for (int i = 40; i < 60; i++)
    n += (size_t)snprintf(json + n, 65536 - n, "%s{\"key\": \"f%d\", \"range\": {\"gte\": 0}}",
                          i > 40 ? ", " : "", i);
  snprintf(json + n, 65536 - n, "]}");
  many = parse_json(json);
  assert_int_equal(vs__filter_field_count(many), 60);
  few = parse_json("{\"should\": [{\"key\": \"f7\", \"match\": {\"value\": 7}},"
                   " {\"key\": \"f39\", \"match\": {\"value\": 39}}],"
                   " \"must_not\": [{\"key\": \"f45\", \"range\": {\"gte\": 0}}]}");
  for (int k = 0; k < 64; k++) {
    msgpack_sbuffer p;
    msgpack_packer pk;
    char key[8];
    int want;

    /* Payload: fk = k (and f45 = -1 unless k is 45). */
    pk_init(&p, &pk);
    msgpack_pack_map(&pk, k == 45 ? 1 : 2);
    snprintf(key, sizeof(key), "f%d", k);
    pk_str(&pk, key);
    msgpack_pack_int(&pk, k);
    if (k != 45) {
      pk_str(&pk, "f45");
      msgpack_pack_int(&pk, -1);
    }
    want = k < 40;
    assert_int_equal(vs__filter_match(many, NULL, (const uint8_t *)p.data, p.size), want);
    assert_int_equal(vs__filter_match(few, NULL, (const uint8_t *)p.data, p.size),
                     k == 7 || k == 39);
    msgpack_sbuffer_destroy(&p);
  }
  vs__filter_free(many);
  vs__filter_free(few);
  free(json);
}

/* ---- JSON and msgpack ----------------------------------------------------------- */

/* Filters written by hand in msgpack, including what JSON cannot express
 * (float32 values, integers above 2^63) parse and agree with their JSON. */
static void test_msgpack_input(void **state) {
  msgpack_sbuffer p, fb;
  msgpack_packer pk;
  vs__filter *fm, *fj;
  vs_id i5 = vs_id_int(5), s5 = vs_id_str("5");

  (void)state;
  std_payload(&p);
  /* {"must": [{"range": {"lt": 1.75f, "gt": 1.25f}, "key": "f32"}, {"has_id": [5, "5"]}],
   *  "should": [{"match": {"value": 2^63 + 5}, "key": "big"}, {"key": "tags", "match":
   *  {"any": ["blue"]}}]} -- keys in unusual orders on purpose. */
  pk_init(&fb, &pk);
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "must");
  msgpack_pack_array(&pk, 2);
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "range");
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "lt");
  msgpack_pack_float(&pk, 1.75f);
  pk_str(&pk, "gt");
  msgpack_pack_float(&pk, 1.25f);
  pk_str(&pk, "key");
  pk_str(&pk, "f32");
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "has_id");
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint8(&pk, 5);
  pk_str(&pk, "5");
  pk_str(&pk, "should");
  msgpack_pack_array(&pk, 2);
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "match");
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "value");
  msgpack_pack_uint64(&pk, (1ull << 63) + 5);
  pk_str(&pk, "key");
  pk_str(&pk, "big");
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "key");
  pk_str(&pk, "tags");
  pk_str(&pk, "match");
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "any");
  msgpack_pack_array(&pk, 1);
  pk_str(&pk, "blue");
  fm = parse_mp(&fb);
  fj = parse_json("{\"must\": [{\"key\": \"f32\", \"range\": {\"gt\": 1.25, \"lt\": 1.75}},"
                  " {\"has_id\": [5, \"5\"]}],"
                  " \"should\": [{\"key\": \"tags\", \"match\": {\"any\": [\"blue\"]}}]}");
  assert_int_equal(vs__filter_match(fm, &i5, (const uint8_t *)p.data, p.size), 1);
  assert_int_equal(vs__filter_match(fm, &s5, (const uint8_t *)p.data, p.size), 1);
  assert_int_equal(vs__filter_match(fj, &i5, (const uint8_t *)p.data, p.size), 1);
  assert_int_equal(vs__filter_match(fj, &s5, (const uint8_t *)p.data, p.size), 1);
  assert_int_equal(vs__filter_match(fm, NULL, (const uint8_t *)p.data, p.size), 0);
  assert_int_equal(vs__filter_match(fj, NULL, (const uint8_t *)p.data, p.size), 0);
  vs__filter_free(fm);
  vs__filter_free(fj);
  msgpack_sbuffer_destroy(&fb);

  /* The uint64 value above 2^63 matches on its own. */
  pk_init(&fb, &pk);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "must");
  msgpack_pack_array(&pk, 1);
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "key");
  pk_str(&pk, "big");
  pk_str(&pk, "match");
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "value");
  msgpack_pack_uint64(&pk, (1ull << 63) + 5);
  fm = parse_mp(&fb);
  assert_int_equal(vs__filter_match(fm, NULL, (const uint8_t *)p.data, p.size), 1);
  vs__filter_free(fm);
  msgpack_sbuffer_destroy(&fb);
  msgpack_sbuffer_destroy(&p);
}

/* ---- malformed filters ------------------------------------------------------- */

static void test_malformed_json(void **state) {
  static const struct {
    const char *json, *want;
  } cases[] = {
      {"[]", "filter: a filter must be an object"},
      {"{\"must\": 5}", "filter: must: must be a list of conditions"},
      {"{\"must\": {}}", "must be a list of conditions"},
      {"{\"foo\": []}", "unknown key 'foo' in a filter"},
      {"{\"filter\": {\"must\": []}}", "unknown key 'filter'"},
      {"{\"must\": [5]}", "filter: must[0]: a condition must be an object"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}, \"extra\": 1}]}",
       "must[0]: unknown key 'extra' in a condition"},
      {"{\"must\": [{\"key\": \"\", \"match\": {\"value\": 1}}]}", "key must be 1..255 bytes"},
      {"{\"must\": [{\"key\": 5, \"match\": {\"value\": 1}}]}", "key must be a string"},
      {"{\"must\": [{\"key\": null, \"match\": {\"value\": 1}}]}", "key must be a string"},
      {"{\"must\": [{\"key\": \"a\"}]}", "a condition on key 'a' needs match or range"},
      {"{\"must\": [{\"match\": {\"value\": 1}}]}", "match needs a key"},
      {"{\"must\": [{\"range\": {\"gt\": 1}}]}", "range needs a key"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}, \"range\": {\"gt\": 1}}]}",
       "match or range, not both"},
      {"{\"must\": [{\"key\": \"a\", \"match\": 5}]}", "match must be an object"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {}}]}", "exactly one of \"value\" or \"any\""},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1, \"any\": [1]}}]}", "exactly one of"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"values\": 1}}]}",
       "unknown key 'values' in match"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": null}}]}",
       "match value must be a string, integer, float or boolean"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": [1]}}]}", "match value must be"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": {}}}]}", "match value must be"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"any\": []}}]}", "match any must not be empty"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"any\": 5}}]}", "match any must be a list"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"any\": [1, null]}}]}",
       "match any[1] must be a string, integer, float or boolean"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"any\": [[1]]}}]}", "match any[0] must be"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {}}]}",
       "filter: must[0]: range needs at least one of gt, gte, lt, lte"},
      {"{\"must\": [{\"key\": \"a\", \"range\": [1]}]}", "range must be an object"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": \"x\"}}]}", "range gt must be a number"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"lte\": true}}]}", "range lte must be a number"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": null}}]}", "range gt must be a number"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"ge\": 1}}]}",
       "unknown range bound 'ge' (expected gt, gte, lt, lte)"},
      {"{\"must\": [{\"has_id\": []}]}", "has_id must not be empty"},
      {"{\"must\": [{\"has_id\": 5}]}", "has_id must be a list of ids"},
      {"{\"must\": [{\"has_id\": [-1]}]}", "has_id[0] must be an integer in 0..2^63-1"},
      {"{\"must\": [{\"has_id\": [1, 1.5]}]}", "has_id[1] must be"},
      {"{\"must\": [{\"has_id\": [\"\"]}]}", "has_id[0] must be"},
      {"{\"must\": [{\"has_id\": [true]}]}", "has_id[0] must be"},
      {"{\"must\": [{\"has_id\": [1], \"key\": \"a\"}]}", "has_id takes no other keys"},
      {"{\"must\": [{\"must\": [], \"key\": \"a\"}]}", "nested filter"},
      {"{\"must\": [{\"should\": [], \"has_id\": [1]}]}", "not both"},
      {"{\"should\": [{\"must\": [{\"key\": \"a\", \"range\": {}}]}]}",
       "filter: should[0].must[0]: range needs at least one of gt, gte, lt, lte"},
      {"{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}],"
       " \"must_not\": [{\"must\": [], \"should\": [{\"has_id\": [1]}, {\"foo\": 1}]}]}",
       "filter: must_not[0].should[1]: unknown key 'foo'"},
      /* jansson's own errors. */
      {"{\"must\": [], \"must\": []}", "invalid JSON"},
      {"{\"must\": [", "invalid JSON"},
      {"", "invalid JSON"},
      {"{} x", "invalid JSON"},
      {"{\"must\": [{\"has_id\": [99999999999999999999]}]}", "invalid JSON"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": 1e400}}]}", "invalid JSON"},
      {"{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": NaN}}]}", "invalid JSON"},
  };
  char key[300];
  char json[512];

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    JSON_BAD(cases[i].json, cases[i].want);
  /* Keys of 255 bytes are fine, 256 are not. */
  memset(key, 'k', sizeof(key));
  snprintf(json, sizeof(json), "{\"must\": [{\"key\": \"%.255s\", \"match\": {\"value\": 1}}]}",
           key);
  vs__filter_free(parse_json(json));
  snprintf(json, sizeof(json), "{\"must\": [{\"key\": \"%.256s\", \"match\": {\"value\": 1}}]}",
           key);
  JSON_BAD(json, "key must be 1..255 bytes");
  /* Bad pointers. */
  json_bad(NULL, 3, "NULL");
  {
    vs_error err = VS_ERROR_INIT;

    assert_int_equal(vs__filter_parse_json("{}", 2, NULL, &err), VS_EINVAL);
    /* err may be NULL. */
    assert_int_equal(vs__filter_parse_json("[]", 2, &(vs__filter *){NULL}, NULL), VS_EINVAL);
  }
}

/* Filters nested `levels` deep: {"must": [{"must": [... {"key": ...} ...]}]}. */
static char *nested_json(int levels) {
  char *s = malloc(64 * (size_t)levels + 128);
  size_t n = 0;

  for (int i = 0; i < levels; i++)
    n += (size_t)sprintf(s + n, "{\"must\": [");
  n += (size_t)sprintf(s + n, "{\"key\": \"a\", \"match\": {\"any\": [1, 2]}}");
  for (int i = 0; i < levels; i++)
    n += (size_t)sprintf(s + n, "]}");
  return s;
}

static void nested_mp(msgpack_sbuffer *sb, int levels) {
  msgpack_packer pk;

  pk_init(sb, &pk);
  for (int i = 0; i < levels; i++) {
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "must");
    msgpack_pack_array(&pk, 1);
  }
  msgpack_pack_map(&pk, 2);
  pk_str(&pk, "key");
  pk_str(&pk, "a");
  pk_str(&pk, "match");
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "any");
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_int(&pk, 2);
}

static void test_depth_limit(void **state) {
  msgpack_sbuffer sb, p;
  msgpack_packer pk;
  vs__filter *f;
  char *s;

  (void)state;
  pk_init(&p, &pk);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "a");
  msgpack_pack_int(&pk, 2);

  s = nested_json(VS__FILTER_DEPTH_MAX);
  f = parse_json(s);
  assert_int_equal(vs__filter_match(f, NULL, (const uint8_t *)p.data, p.size), 1);
  vs__filter_free(f);
  free(s);
  nested_mp(&sb, VS__FILTER_DEPTH_MAX);
  f = parse_mp(&sb);
  assert_int_equal(vs__filter_match(f, NULL, (const uint8_t *)p.data, p.size), 1);
  vs__filter_free(f);
  msgpack_sbuffer_destroy(&sb);

  s = nested_json(VS__FILTER_DEPTH_MAX + 1);
  JSON_BAD(s, "filters nest deeper than 16 levels");
  free(s);
  nested_mp(&sb, VS__FILTER_DEPTH_MAX + 1);
  mp_bad(sb.data, sb.size, "filters nest deeper than 16 levels");
  msgpack_sbuffer_destroy(&sb);
  /* Far deeper than anything: refused before any recursion. */
  s = nested_json(1000);
  JSON_BAD(s, "nests deeper than");
  free(s);
  nested_mp(&sb, 1000);
  mp_bad(sb.data, sb.size, "nests deeper than");
  msgpack_sbuffer_destroy(&sb);
  msgpack_sbuffer_destroy(&p);
}

/* A filter of n conditions plus values: one `any` list of n - 1 values. */
static void test_size_limit(void **state) {
  char *s = malloc(16 * VS__FILTER_ITEMS_MAX + 256);
  size_t n;
  vs__filter *f;

  (void)state;
  for (int extra = 0; extra <= 1; extra++) {
    n = (size_t)sprintf(s, "{\"must\": [{\"key\": \"a\", \"match\": {\"any\": [");
    for (int i = 0; i < VS__FILTER_ITEMS_MAX - 1 + extra; i++)
      n += (size_t)sprintf(s + n, "%s%d", i ? "," : "", i);
    sprintf(s + n, "]}}]}");
    if (extra) {
      JSON_BAD(s, "more than 10000 conditions and values");
    } else {
      msgpack_sbuffer p;
      msgpack_packer pk;

      f = parse_json(s);
      pk_init(&p, &pk);
      msgpack_pack_map(&pk, 1);
      pk_str(&pk, "a");
      msgpack_pack_int(&pk, 9998);
      assert_int_equal(vs__filter_match(f, NULL, (const uint8_t *)p.data, p.size), 1);
      vs__filter_free(f);
      msgpack_sbuffer_destroy(&p);
    }
  }
  /* Conditions count too: 10001 has_id conditions of one id each would be 20002. */
  n = (size_t)sprintf(s, "{\"should\": [");
  for (int i = 0; i < 5001; i++)
    n += (size_t)sprintf(s + n, "%s{\"has_id\": [%d]}", i ? "," : "", i);
  sprintf(s + n, "]}");
  JSON_BAD(s, "more than 10000");
  free(s);
}

static void test_malformed_msgpack(void **state) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  /* {"must": [{"key": "a", "range": {"gt": <float64 bits>}}]} with the bound's 8 bytes last. */
  static const uint8_t range_hdr[] = {0x81, 0xa4, 'm',  'u',  's', 't',  0x91, 0x82, 0xa3,
                                      'k',  'e',  'y',  0xa1, 'a', 0xa5, 'r',  'a',  'n',
                                      'g',  'e',  0x81, 0xa2, 'g', 't',  0xcb};
  static const uint64_t bad_bits[] = {0x7ff8000000000000ull, 0x7ff0000000000000ull,
                                      0xfff0000000000000ull};
  static const char *const bad_words[] = {"NaN", "infinite", "infinite"};
  uint8_t buf[64];

  (void)state;
  for (int i = 0; i < 3; i++) {
    memcpy(buf, range_hdr, sizeof(range_hdr));
    for (int j = 0; j < 8; j++)
      buf[sizeof(range_hdr) + (size_t)j] = (uint8_t)(bad_bits[i] >> (56 - 8 * j));
    {
      char want[64];

      snprintf(want, sizeof(want), "range gt must be finite, not %s", bad_words[i]);
      mp_bad(buf, sizeof(range_hdr) + 8, want);
    }
    /* The same bytes as a match value and in an any list (14 bytes of header:
     * {"must": [{"key": "a", then the rest). */
    {
      static const char value[] = "\xa5match\x81\xa5value\xcb";
      static const char any[] = "\xa5match\x81\xa3"
                                "any\x91\xcb";

      memcpy(buf + 14, value, sizeof(value) - 1);
      for (int j = 0; j < 8; j++)
        buf[14 + sizeof(value) - 1 + (size_t)j] = (uint8_t)(bad_bits[i] >> (56 - 8 * j));
      mp_bad(buf, 14 + sizeof(value) - 1 + 8, "match value must be finite");
      memcpy(buf + 14, any, sizeof(any) - 1);
      for (int j = 0; j < 8; j++)
        buf[14 + sizeof(any) - 1 + (size_t)j] = (uint8_t)(bad_bits[i] >> (56 - 8 * j));
      mp_bad(buf, 14 + sizeof(any) - 1 + 8, "match any[0] must be finite");
    }
  }
  /* A well-formed base to break: {"must": [{"key": "a", "range": {"gt": 1.0}}]}. */
  memcpy(buf, range_hdr, sizeof(range_hdr));
  memcpy(buf + sizeof(range_hdr), "\x3f\xf0\0\0\0\0\0\0", 8);
  {
    vs_error err = VS_ERROR_INIT;
    vs__filter *f = NULL;

    TU_EXPECT(vs__filter_parse_msgpack(buf, sizeof(range_hdr) + 8, &f, &err), VS_OK, &err);
    vs__filter_free(f);
  }
  /* Truncated at every length, then one byte too many, then the reserved byte. */
  for (size_t n = 1; n < sizeof(range_hdr) + 8; n++)
    mp_bad(buf, n, "truncated");
  buf[sizeof(range_hdr) + 8] = 0x00;
  mp_bad(buf, sizeof(range_hdr) + 9, "trailing bytes after the filter map (1)");
  MP_BAD("\xc1", "not valid msgpack");
  MP_BAD("", "empty message");
  mp_bad(NULL, 4, "NULL");
  /* Declared sizes far beyond the message: {"must": array32 of 0xff000000}. */
  MP_BAD("\x81\xa4must\xdd\xff\x00\x00\x00", "truncated");
  MP_BAD("\x81\xa4must\xdb\xff\x00\x00\x00", "truncated");
  /* Not a map at the top. */
  MP_BAD("\x90", "a filter must be an object");
  MP_BAD("\xa3"
         "abc",
         "a filter must be an object");
  /* Keys that are not strings, in each kind of map. */
  MP_BAD("\x81\x01\x90", "object keys must be strings");
  MP_BAD("\x81\xa4must\x91\x81\xc3\x90", "must[0]: object keys must be strings");
  /* Duplicate keys in the filter, the condition and the range. */
  MP_BAD("\x82\xa4must\x90\xa4must\x90", "key 'must' appears twice");
  MP_BAD("\x81\xa4must\x91\x83\xa3key\xa1"
         "a\xa3key\xa1"
         "b\xa5range\x81\xa2gt\x01",
         "key 'key' appears twice");
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xa1"
         "a\xa5range\x82\xa2gt\x01\xa2gt\x02",
         "range bound gt appears twice");
  /* Bin, nil and ext values where strings or numbers belong. */
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xc4\x01"
         "a\xa5match\x81\xa5value\x01",
         "key must be a string");
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xa1"
         "a\xa5match\x81\xa5value\xc4\x01x",
         "match value must be a string");
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xa1"
         "a\xa5match\x81\xa5value\xd4\x01x",
         "match value must be a string");
  /* Invalid UTF-8 in a key, a value and an id. */
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xa1\xff\xa5match\x81\xa5value\x01", "key is not valid UTF-8");
  MP_BAD("\x81\xa4must\x91\x82\xa3key\xa1"
         "a\xa5match\x81\xa5value\xa2\xc3\x28",
         "match value is not valid UTF-8");
  MP_BAD("\x81\xa4must\x91\x81\xa6has_id\x91\xa1\xff", "has_id[0] must be");
  /* Integer ids: 2^63 - 1 is the largest. */
  pk_init(&sb, &pk);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "must");
  msgpack_pack_array(&pk, 1);
  msgpack_pack_map(&pk, 1);
  pk_str(&pk, "has_id");
  msgpack_pack_array(&pk, 1);
  msgpack_pack_uint64(&pk, 1ull << 63);
  mp_bad(sb.data, sb.size, "has_id[0] must be an integer in 0..2^63-1");
  msgpack_sbuffer_destroy(&sb);
  /* A string id longer than VS_ID_MAX. */
  {
    char id[VS_ID_MAX + 1];

    memset(id, 'i', sizeof(id));
    pk_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "must");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "has_id");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, id, sizeof(id));
    mp_bad(sb.data, sb.size, "has_id[0] must be");
    msgpack_sbuffer_destroy(&sb);
  }
}

/* ---- allocation failures -------------------------------------------------------- */

static void test_alloc_failures(void **state) {
  tu_counting c = {-1, 0, 0};
  vs_allocator a = tu_counting_allocator(&c);
  char *json = malloc(32768);
  size_t n = 0;
  int failures = 0;
  msgpack_sbuffer p;

  (void)state;
  /* Big enough to need several arena chunks, the field list to grow, and the
   * JSON re-encoding buffer to grow. */
  n +=
      (size_t)snprintf(json + n, 32768 - n, "{\"must\": [{\"has_id\": [1, \"a\"]}], \"should\": [");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(json + n, 32768 - n,
                          "%s{\"key\": \"field%d\", \"match\": {\"any\": [\"v%d\", %d, 2.5]}}",
                          i ? ", " : "", i % 30, i, i);
  snprintf(json + n, 32768 - n, "]}");
  std_payload(&p);
  vs_set_allocator(&a);
  for (long k = 0; k < 1000; k++) {
    vs_error err = VS_ERROR_INIT;
    vs__filter *f = (vs__filter *)&err;
    int rc;

    c = (tu_counting){k, 0, 0};
    rc = vs__filter_parse_json(json, strlen(json), &f, &err);
    if (rc == VS_OK) {
      vs_id id = vs_id_int(1);

      c.fail_at = -1;
      assert_int_equal(vs__filter_match(f, &id, (const uint8_t *)p.data, p.size), 0);
      vs__filter_free(f);
      assert_int_equal(c.live, 0);
      break;
    }
    failures++;
    assert_int_equal(rc, VS_ENOMEM);
    assert_int_equal(err.code, VS_ENOMEM);
    assert_string_equal(err.message, "filter: out of memory");
    assert_null(f);
    assert_int_equal(c.live, 0);
  }
  vs_set_allocator(NULL);
  assert_true(failures >= 5);
  /* Matching never allocates. */
  {
    vs__filter *f = parse_json(json);
    vs_id id = vs_id_str("a");

    c = (tu_counting){0, 0, 0};
    vs_set_allocator(&a);
    assert_int_equal(vs__filter_match(f, &id, (const uint8_t *)p.data, p.size), 0);
    vs_set_allocator(NULL);
    assert_int_equal(c.calls, 0);
    vs__filter_free(f);
  }
  msgpack_sbuffer_destroy(&p);
  free(json);
}

/* ---- the randomized oracle ------------------------------------------------------- */

/* Points and filters are generated as plain C structs; the filters are then
 * written as JSON text and, independently, packed as msgpack.  A reference
 * evaluator over the structs (numbers compared as doubles, which is exact
 * for the small values generated) decides each pair; both parsed filters
 * must agree with it on every pair. */

#define N_POINTS 2000
#define N_FILTERS 200

static const char *const vocab[] = {"red",  "green", "blue",  "cyan", "alpha",
                                    "beta", "gamma", "delta", "5",    ""};
#define N_VOCAB (sizeof(vocab) / sizeof(vocab[0]))
enum { F_LABEL, F_PRICE, F_TAGS, F_NAME, F_NOPE, N_FIELDS };
static const char *const field_names[N_FIELDS] = {"label", "price", "tags", "name", "nope"};

enum { TV_INT, TV_DBL, TV_STR, TV_BOOL };
typedef struct tv {
  int kind;
  long long i; /* TV_INT, TV_BOOL */
  double d;    /* TV_DBL */
  int f32;     /* TV_DBL: pack as float32 (the values are exact in it) */
  int s;       /* TV_STR: index in vocab */
} tv;

typedef struct rpoint {
  int has[4];
  long long label;
  double price;
  int price_f32;
  int ntags, tags[4];
  int name;
  int id_is_str;
  char idbuf[16];
  vs_id id;
} rpoint;

enum { RC_MATCH, RC_ANY, RC_RANGE, RC_HAS_ID, RC_FILTER };
#define LIST_MAX 14

typedef struct rfilter rfilter;
typedef struct rcond {
  int kind, field;
  tv v[LIST_MAX]; /* match: v[0]; any: v[0..n); range: bounds */
  int n;
  int ops[4];                 /* range: 0 gt, 1 gte, 2 lt, 3 lte */
  long long id_num[LIST_MAX]; /* has_id: ids, numbers or (id_str) strings */
  int id_str[LIST_MAX];
  rfilter *sub;
} rcond;

struct rfilter {
  int present[3]; /* must, should, must_not: written (maybe empty) */
  int n[3];
  rcond c[3][4];
};

static const char *const list_keys[3] = {"must", "should", "must_not"};
static const char *const op_names[4] = {"gt", "gte", "lt", "lte"};

static uint64_t rng;

static int rnd(int n) {
  return (int)(tu_rand(&rng) % (uint64_t)n);
}

/* A number near what labels (0..9) and prices (0..12 by quarters) hold:
 * an integer, or a multiple of 0.25 packed as float64 or float32. */
static tv rand_num(double lo, double hi) {
  tv v;
  int steps = (int)((hi - lo) * 4) + 1;

  memset(&v, 0, sizeof(v));
  if (rnd(2)) {
    v.kind = TV_INT, v.i = (long long)floor(lo) + rnd((int)(hi - lo) + 1);
  } else {
    v.kind = TV_DBL, v.d = lo + rnd(steps) * 0.25, v.f32 = rnd(2);
  }
  return v;
}

/* A value, usually (5 times in 6) of the kind field `field` holds. */
static tv rand_tv(int field) {
  tv v;
  int r = rnd(12);

  memset(&v, 0, sizeof(v));
  if (r >= 10 || field == F_NOPE) { /* any kind at all */
    r = rnd(4);
    if (r == 0)
      v.kind = TV_BOOL, v.i = rnd(2);
    else if (r == 1)
      v.kind = TV_STR, v.s = rnd((int)N_VOCAB);
    else
      v = rand_num(-2, 14);
  } else if (field == F_TAGS || field == F_NAME) {
    v.kind = TV_STR, v.s = rnd((int)N_VOCAB);
  } else if (field == F_LABEL) {
    v = rand_num(0, 10);
  } else {
    v = rand_num(0, 12);
  }
  return v;
}

/* Range bounds: lower ones (gt, gte) near lo, upper ones (lt, lte) near hi,
 * with lo <= hi mostly, so most ranges select something. */
static void rand_range(rcond *c) {
  unsigned mask = 0;
  double top = c->field == F_LABEL ? 10 : 12;
  double lo = rnd((int)top * 4 + 1) * 0.25 - 1, hi = lo + rnd((int)top * 2 + 1) * 0.25;

  if (rnd(10) == 0) /* sometimes empty on purpose */
    hi = lo - 1;
  while (mask == 0)
    mask = (unsigned)rnd(16);
  for (int op = 0; op < 4; op++) {
    if (!(mask & (1u << op)))
      continue;
    c->ops[c->n] = op;
    c->v[c->n++] = op < 2 ? rand_num(lo - 0.5, lo + 0.5) : rand_num(hi - 0.5, hi + 0.5);
  }
}

static rfilter *rand_filter(int depth);

static void rand_cond(rcond *c, int depth) {
  int r = rnd(20);

  memset(c, 0, sizeof(*c));
  c->field = rnd(12) == 0 ? F_NOPE : rnd(4);
  if (depth < 3 && r < 3) {
    c->kind = RC_FILTER;
    c->sub = rand_filter(depth + 1);
  } else if (r < 9) {
    c->kind = RC_MATCH;
    c->v[0] = rand_tv(c->field);
  } else if (r < 13) {
    c->kind = RC_ANY;
    c->n = 1 + (rnd(2) ? rnd(4) : rnd(LIST_MAX));
    for (int i = 0; i < c->n; i++)
      c->v[i] = rand_tv(c->field);
  } else if (r < 18) {
    c->kind = RC_RANGE;
    if (rnd(5) != 0 && c->field != F_LABEL)
      c->field = F_PRICE; /* mostly on numeric fields */
    rand_range(c);
  } else {
    c->kind = RC_HAS_ID;
    c->n = 1 + (rnd(2) ? rnd(3) : rnd(LIST_MAX));
    for (int i = 0; i < c->n; i++) {
      c->id_num[i] = rnd(N_POINTS + 100);
      c->id_str[i] = rnd(2);
    }
  }
}

static rfilter *rand_filter(int depth) {
  rfilter *f = calloc(1, sizeof(*f));

  for (int l = 0; l < 3; l++) {
    f->present[l] = rnd(3) != 0;
    if (f->present[l])
      f->n[l] = l == 1 ? rnd(4) : rnd(3); /* a long must list rarely matches anything */
    for (int i = 0; i < f->n[l]; i++)
      rand_cond(&f->c[l][i], depth);
  }
  /* Keep some empty top-level filters, but not one in six. */
  if (depth == 1 && f->n[0] + f->n[1] + f->n[2] == 0 && rnd(4) != 0) {
    f->present[1] = f->n[1] = 1;
    rand_cond(&f->c[1][0], depth);
  }
  return f;
}

static void free_filter(rfilter *f) {
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < f->n[l]; i++)
      if (f->c[l][i].kind == RC_FILTER)
        free_filter(f->c[l][i].sub);
  free(f);
}

static void rand_point(rpoint *p, int i) {
  memset(p, 0, sizeof(*p));
  for (int k = 0; k < 4; k++)
    p->has[k] = rnd(6) != 0;
  p->label = rnd(10);
  p->price = rnd(48) * 0.25;
  p->price_f32 = rnd(2);
  p->ntags = rnd(5);
  for (int k = 0; k < p->ntags; k++)
    p->tags[k] = rnd((int)N_VOCAB);
  p->name = rnd((int)N_VOCAB);
  p->id_is_str = i % 3 == 0;
  if (p->id_is_str) {
    snprintf(p->idbuf, sizeof(p->idbuf), "%d", i);
    p->id = vs_id_str(p->idbuf);
  } else {
    p->id = vs_id_int((uint64_t)i);
  }
}

static void pack_tv(msgpack_packer *pk, const tv *v) {
  switch (v->kind) {
  case TV_INT:
    msgpack_pack_int64(pk, v->i);
    break;
  case TV_DBL:
    if (v->f32)
      msgpack_pack_float(pk, (float)v->d);
    else
      msgpack_pack_double(pk, v->d);
    break;
  case TV_STR:
    pk_str(pk, vocab[v->s]);
    break;
  default:
    if (v->i)
      msgpack_pack_true(pk);
    else
      msgpack_pack_false(pk);
  }
}

/* Pack a point's payload, its fields in a random order. */
static void pack_point(msgpack_sbuffer *sb, const rpoint *p) {
  msgpack_packer pk;
  int order[4] = {0, 1, 2, 3}, n = 0;

  for (int k = 3; k > 0; k--) {
    int j = rnd(k + 1), t = order[k];

    order[k] = order[j], order[j] = t;
  }
  for (int k = 0; k < 4; k++)
    n += p->has[k];
  pk_init(sb, &pk);
  msgpack_pack_map(&pk, (size_t)n);
  for (int k = 0; k < 4; k++) {
    int fld = order[k];

    if (!p->has[fld])
      continue;
    pk_str(&pk, field_names[fld]);
    if (fld == F_LABEL) {
      msgpack_pack_int64(&pk, p->label);
    } else if (fld == F_PRICE) {
      if (p->price_f32)
        msgpack_pack_float(&pk, (float)p->price);
      else
        msgpack_pack_double(&pk, p->price);
    } else if (fld == F_TAGS) {
      msgpack_pack_array(&pk, (size_t)p->ntags);
      for (int t = 0; t < p->ntags; t++)
        pk_str(&pk, vocab[p->tags[t]]);
    } else {
      pk_str(&pk, vocab[p->name]);
    }
  }
}

/* ---- writing the random filters ---- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  int k;

  va_start(ap, fmt);
  k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  assert_true(k >= 0 && (size_t)k < b->cap - b->n);
  b->n += (size_t)k;
}

static void json_tv(sbuf *b, const tv *v) {
  switch (v->kind) {
  case TV_INT:
    sb_put(b, "%lld", v->i);
    break;
  case TV_DBL:
    /* Always with a fraction, so JSON reads it as a real. */
    sb_put(b, v->d == floor(v->d) ? "%.1f" : "%.17g", v->d);
    break;
  case TV_STR:
    sb_put(b, "\"%s\"", vocab[v->s]);
    break;
  default:
    sb_put(b, v->i ? "true" : "false");
  }
}

static void json_filter(sbuf *b, const rfilter *f);

static void json_cond(sbuf *b, const rcond *c) {
  switch (c->kind) {
  case RC_FILTER:
    json_filter(b, c->sub);
    return;
  case RC_HAS_ID:
    sb_put(b, "{\"has_id\": [");
    for (int i = 0; i < c->n; i++)
      sb_put(b, c->id_str[i] ? "%s\"%lld\"" : "%s%lld", i ? ", " : "", c->id_num[i]);
    sb_put(b, "]}");
    return;
  case RC_RANGE:
    sb_put(b, "{\"key\": \"%s\", \"range\": {", field_names[c->field]);
    for (int i = 0; i < c->n; i++) {
      sb_put(b, "%s\"%s\": ", i ? ", " : "", op_names[c->ops[i]]);
      json_tv(b, &c->v[i]);
    }
    sb_put(b, "}}");
    return;
  case RC_MATCH:
    sb_put(b, "{\"match\": {\"value\": ");
    json_tv(b, &c->v[0]);
    sb_put(b, "}, \"key\": \"%s\"}", field_names[c->field]);
    return;
  default:
    sb_put(b, "{\"key\": \"%s\", \"match\": {\"any\": [", field_names[c->field]);
    for (int i = 0; i < c->n; i++) {
      sb_put(b, i ? ", " : "");
      json_tv(b, &c->v[i]);
    }
    sb_put(b, "]}}");
  }
}

static void json_filter(sbuf *b, const rfilter *f) {
  int first = 1;

  sb_put(b, "{");
  for (int l = 2; l >= 0; l--) { /* must_not first: key order is free */
    if (!f->present[l])
      continue;
    sb_put(b, "%s\"%s\": [", first ? "" : ", ", list_keys[l]);
    first = 0;
    for (int i = 0; i < f->n[l]; i++) {
      sb_put(b, i ? ", " : "");
      json_cond(b, &f->c[l][i]);
    }
    sb_put(b, "]");
  }
  sb_put(b, "}");
}

static void mp_filter(msgpack_packer *pk, const rfilter *f);

static void mp_cond(msgpack_packer *pk, const rcond *c) {
  char s[24];

  switch (c->kind) {
  case RC_FILTER:
    mp_filter(pk, c->sub);
    return;
  case RC_HAS_ID:
    msgpack_pack_map(pk, 1);
    pk_str(pk, "has_id");
    msgpack_pack_array(pk, (size_t)c->n);
    for (int i = 0; i < c->n; i++) {
      if (c->id_str[i]) {
        snprintf(s, sizeof(s), "%lld", c->id_num[i]);
        pk_str(pk, s);
      } else {
        msgpack_pack_uint64(pk, (uint64_t)c->id_num[i]);
      }
    }
    return;
  default:
    msgpack_pack_map(pk, 2);
    pk_str(pk, "key");
    pk_str(pk, field_names[c->field]);
    if (c->kind == RC_RANGE) {
      pk_str(pk, "range");
      msgpack_pack_map(pk, (size_t)c->n);
      for (int i = c->n - 1; i >= 0; i--) {
        pk_str(pk, op_names[c->ops[i]]);
        pack_tv(pk, &c->v[i]);
      }
      return;
    }
    pk_str(pk, "match");
    msgpack_pack_map(pk, 1);
    if (c->kind == RC_MATCH) {
      pk_str(pk, "value");
      pack_tv(pk, &c->v[0]);
      return;
    }
    pk_str(pk, "any");
    msgpack_pack_array(pk, (size_t)c->n);
    for (int i = 0; i < c->n; i++)
      pack_tv(pk, &c->v[i]);
  }
}

static void mp_filter(msgpack_packer *pk, const rfilter *f) {
  msgpack_pack_map(pk, (size_t)(f->present[0] + f->present[1] + f->present[2]));
  for (int l = 0; l < 3; l++) {
    if (!f->present[l])
      continue;
    pk_str(pk, list_keys[l]);
    msgpack_pack_array(pk, (size_t)f->n[l]);
    for (int i = 0; i < f->n[l]; i++)
      mp_cond(pk, &f->c[l][i]);
  }
}

/* ---- the reference evaluator ---- */

static int is_num(const tv *v) {
  return v->kind == TV_INT || v->kind == TV_DBL;
}

static double num(const tv *v) {
  return v->kind == TV_INT ? (double)v->i : v->d;
}

static int ref_eq(const tv *a, const tv *b) {
  if (is_num(a) && is_num(b))
    return num(a) == num(b);
  if (a->kind != b->kind)
    return 0;
  if (a->kind == TV_STR)
    return strcmp(vocab[a->s], vocab[b->s]) == 0;
  return a->i == b->i; /* booleans */
}

/* Does one element of the point's field satisfy c? */
static int ref_elem(const rcond *c, const tv *e) {
  switch (c->kind) {
  case RC_MATCH:
    return ref_eq(e, &c->v[0]);
  case RC_ANY:
    for (int i = 0; i < c->n; i++)
      if (ref_eq(e, &c->v[i]))
        return 1;
    return 0;
  default: /* RC_RANGE */
    if (!is_num(e))
      return 0;
    for (int i = 0; i < c->n; i++) {
      double x = num(e), y = num(&c->v[i]);
      int ok = c->ops[i] == 0 ? x > y : c->ops[i] == 1 ? x >= y : c->ops[i] == 2 ? x < y : x <= y;

      if (!ok)
        return 0;
    }
    return 1;
  }
}

static int ref_filter(const rfilter *f, const rpoint *p);

static int ref_cond(const rcond *c, const rpoint *p) {
  tv e[4];
  int n = 0;

  if (c->kind == RC_FILTER)
    return ref_filter(c->sub, p);
  if (c->kind == RC_HAS_ID) {
    for (int i = 0; i < c->n; i++) {
      char s[24];

      snprintf(s, sizeof(s), "%lld", c->id_num[i]);
      if (c->id_str[i] && p->id_is_str && strcmp(s, p->idbuf) == 0)
        return 1;
      if (!c->id_str[i] && !p->id_is_str && (uint64_t)c->id_num[i] == p->id.num)
        return 1;
    }
    return 0;
  }
  memset(e, 0, sizeof(e));
  if (c->field == F_NOPE || !p->has[c->field])
    return 0;
  switch (c->field) {
  case F_LABEL:
    e[n].kind = TV_INT, e[n++].i = p->label;
    break;
  case F_PRICE:
    e[n].kind = TV_DBL, e[n++].d = p->price;
    break;
  case F_TAGS:
    for (int t = 0; t < p->ntags; t++)
      e[n].kind = TV_STR, e[n++].s = p->tags[t];
    break;
  default:
    e[n].kind = TV_STR, e[n++].s = p->name;
  }
  for (int i = 0; i < n; i++)
    if (ref_elem(c, &e[i]))
      return 1;
  return 0;
}

static int ref_filter(const rfilter *f, const rpoint *p) {
  int any = 0;

  for (int i = 0; i < f->n[0]; i++)
    if (!ref_cond(&f->c[0][i], p))
      return 0;
  for (int i = 0; i < f->n[2]; i++)
    if (ref_cond(&f->c[2][i], p))
      return 0;
  if (f->n[1] == 0)
    return 1;
  for (int i = 0; i < f->n[1]; i++)
    any |= ref_cond(&f->c[1][i], p);
  return any;
}

static void test_oracle(void **state) {
  rpoint *pts = calloc(N_POINTS, sizeof(*pts));
  msgpack_sbuffer *pl = calloc(N_POINTS, sizeof(*pl));
  sbuf js = {malloc(1 << 16), 0, 1 << 16};
  long matched = 0, total = 0;
  int nontrivial = 0;

  (void)state;
  rng = 20240611;
  for (int i = 0; i < N_POINTS; i++) {
    rand_point(&pts[i], i);
    pack_point(&pl[i], &pts[i]);
  }
  for (int k = 0; k < N_FILTERS; k++) {
    rfilter *rf = rand_filter(1);
    msgpack_sbuffer mb;
    msgpack_packer pk;
    vs__filter *fj, *fm;
    int hits = 0;

    js.n = 0;
    json_filter(&js, rf);
    pk_init(&mb, &pk);
    mp_filter(&pk, rf);
    fj = parse_json(js.p);
    fm = parse_mp(&mb);
    for (int i = 0; i < N_POINTS; i++) {
      int want = ref_filter(rf, &pts[i]);
      int gj = vs__filter_match(fj, &pts[i].id, (const uint8_t *)pl[i].data, pl[i].size);
      int gm = vs__filter_match(fm, &pts[i].id, (const uint8_t *)pl[i].data, pl[i].size);

      if (gj != want || gm != want)
        fail_msg("filter %d %s\npoint %d: reference %d, JSON %d, msgpack %d", k, js.p, i, want, gj,
                 gm);
      hits += want;
    }
    matched += hits;
    total += N_POINTS;
    nontrivial += hits > 0 && hits < N_POINTS;
    vs__filter_free(fj);
    vs__filter_free(fm);
    msgpack_sbuffer_destroy(&mb);
    free_filter(rf);
  }
  print_message("oracle: %ld of %ld pairs match; %d of %d filters split the points\n", matched,
                total, nontrivial, N_FILTERS);
  /* The generator exercises both answers, and most filters split the points. */
  assert_true(matched > total / 20 && matched < total - total / 20);
  assert_true(nontrivial > N_FILTERS / 2);
  for (int i = 0; i < N_POINTS; i++)
    msgpack_sbuffer_destroy(&pl[i]);
  free(pl);
  free(pts);
  free(js.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_value),    cmocka_unit_test(test_encodings),
      cmocka_unit_test(test_match_any),      cmocka_unit_test(test_range),
      cmocka_unit_test(test_array_fields),   cmocka_unit_test(test_missing_field),
      cmocka_unit_test(test_logic),          cmocka_unit_test(test_has_id),
      cmocka_unit_test(test_id_list),        cmocka_unit_test(test_fields),
      cmocka_unit_test(test_many_fields),    cmocka_unit_test(test_msgpack_input),
      cmocka_unit_test(test_malformed_json), cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_size_limit),     cmocka_unit_test(test_malformed_msgpack),
      cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_oracle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
