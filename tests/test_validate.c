/*
 * test_validate.c: names, ids, vectors and payloads, checked before any
 * write.  The API-level counterparts (a rejected batch changes nothing) are
 * in test_points.c.
 */
#include "tests/testutil.h"

#include <math.h>
#include <string.h>

#include "engine/storage.h"

static void test_names(void **state) {
  char longname[VS_NAME_MAX + 2];

  (void)state;
  assert_int_equal(vs__name_check("items_v2-en", NULL), VS_OK);
  assert_int_equal(vs__name_check("", NULL), VS_EINVAL);
  assert_int_equal(vs__name_check(NULL, NULL), VS_EINVAL);
  assert_int_equal(vs__name_check("a b", NULL), VS_EINVAL);
  assert_int_equal(vs__name_check("a/b", NULL), VS_EINVAL);
  assert_int_equal(vs__name_check("caf\xc3\xa9", NULL), VS_EINVAL);
  memset(longname, 'a', sizeof(longname));
  longname[VS_NAME_MAX] = '\0';
  assert_int_equal(vs__name_check(longname, NULL), VS_OK);
  longname[VS_NAME_MAX] = 'a';
  longname[VS_NAME_MAX + 1] = '\0';
  assert_int_equal(vs__name_check(longname, NULL), VS_EINVAL);
}

static void test_utf8(void **state) {
  (void)state;
  assert_int_equal(vs__utf8_check("plain", 5), VS_OK);
  assert_int_equal(vs__utf8_check("\xe4\xb8\xad\xe6\x96\x87", 6), VS_OK); /* 中文 */
  assert_int_equal(vs__utf8_check("\xf0\x9f\x98\x80", 4), VS_OK);         /* emoji */
  assert_int_equal(vs__utf8_check("\xc0\xaf", 2), VS_EINVAL);             /* overlong */
  assert_int_equal(vs__utf8_check("\xed\xa0\x80", 3), VS_EINVAL);         /* surrogate */
  assert_int_equal(vs__utf8_check("\xf4\x90\x80\x80", 4), VS_EINVAL);     /* > U+10FFFF */
  assert_int_equal(vs__utf8_check("\xe4\xb8", 2), VS_EINVAL);             /* truncated */
  assert_int_equal(vs__utf8_check("\x80", 1), VS_EINVAL);                 /* lone continuation */
}

static void test_ids(void **state) {
  char s[VS_ID_MAX + 1];
  vs_id id;
  uint8_t key[VS__ID_KEY_MAX];

  (void)state;
  id = vs_id_int((uint64_t)INT64_MAX);
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_OK);
  id = vs_id_int((uint64_t)INT64_MAX + 1);
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_EINVAL);
  id = vs_id_str("");
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_EINVAL);
  memset(s, 'x', sizeof(s));
  id = (vs_id){VS_ID_STR, 0, s, VS_ID_MAX};
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_OK);
  id.len = VS_ID_MAX + 1;
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_EINVAL);
  id = (vs_id){VS_ID_STR, 0, "\xff", 1};
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_EINVAL);
  id = (vs_id){(vs_id_kind)7, 0, NULL, 0};
  assert_int_equal(vs__id_check(&id, 0, NULL), VS_EINVAL);

  /* "5" and 5 encode to different keys; integer keys sort numerically. */
  {
    uint8_t k5[VS__ID_KEY_MAX], k256[VS__ID_KEY_MAX];
    vs_id a = vs_id_int(5), b = vs_id_str("5"), c = vs_id_int(256);
    size_t na = vs__id_key(&a, k5), nb = vs__id_key(&b, key), nc = vs__id_key(&c, k256);
    assert_true(na != nb || memcmp(k5, key, na) != 0);
    assert_int_equal(na, nc);
    assert_true(memcmp(k5, k256, na) < 0);
  }
}

static void test_vectors(void **state) {
  float v[4] = {1, 2, 3, 4};
  vs_error err = VS_ERROR_INIT;

  (void)state;
  assert_int_equal(vs__vector_check(v, 4, 4, "v", NULL), VS_OK);
  assert_int_equal(vs__vector_check(v, 3, 4, "point 2: vector", &err), VS_EDIM);
  assert_string_equal(err.message, "point 2: vector has 3 components, the collection has dim 4");
  vs_error_clear(&err);
  v[2] = NAN;
  assert_int_equal(vs__vector_check(v, 4, 4, "query vector", &err), VS_EINVAL);
  assert_string_equal(err.message, "query vector component 2 is NaN");
  v[2] = INFINITY;
  assert_int_equal(vs__vector_check(v, 4, 4, "v", NULL), VS_EINVAL);
  v[2] = -INFINITY;
  assert_int_equal(vs__vector_check(v, 4, 4, "v", NULL), VS_EINVAL);
  assert_int_equal(vs__vector_check(NULL, 4, 4, "v", NULL), VS_EINVAL);
  assert_int_equal(vs__vector_check(NULL, 0, 0, "v", NULL), VS_OK);
}

/* Pack with msgpack-c, then check. */
typedef void (*pack_fn)(msgpack_packer *pk);

static int check_packed(pack_fn fn) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  int rc;

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  fn(&pk);
  rc = vs__payload_check(sb.data, sb.size, 0, NULL);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}

static void key(msgpack_packer *pk, const char *k) {
  msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void p_good(msgpack_packer *pk) {
  msgpack_pack_map(pk, 7);
  key(pk, "s");
  key(pk, "text \xe4\xb8\xad");
  key(pk, "i");
  msgpack_pack_int64(pk, -5);
  key(pk, "u");
  msgpack_pack_uint64(pk, UINT64_MAX);
  key(pk, "f");
  msgpack_pack_double(pk, 0.25);
  key(pk, "b");
  msgpack_pack_true(pk);
  key(pk, "arr");
  msgpack_pack_array(pk, 3);
  msgpack_pack_int(pk, 1);
  key(pk, "two");
  msgpack_pack_float(pk, 3.0f);
  key(pk, "empty");
  msgpack_pack_array(pk, 0);
}
static void p_empty_map(msgpack_packer *pk) {
  msgpack_pack_map(pk, 0);
}
static void p_not_map(msgpack_packer *pk) {
  msgpack_pack_array(pk, 0);
}
static void p_nil(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_nil(pk);
}
static void p_nested_map(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_map(pk, 0);
}
static void p_nested_array(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_array(pk, 1);
  msgpack_pack_array(pk, 0);
}
static void p_nan(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_double(pk, NAN);
}
static void p_inf_in_array(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_array(pk, 2);
  msgpack_pack_double(pk, 1);
  msgpack_pack_float(pk, INFINITY);
}
static void p_bad_utf8(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_str_with_body(pk, "\xc3\x28", 2);
}
static void p_bad_key_utf8(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  msgpack_pack_str_with_body(pk, "\xff", 1);
  msgpack_pack_int(pk, 1);
}
static void p_int_key(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, 1);
  msgpack_pack_int(pk, 1);
}
static void p_empty_key(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "");
  msgpack_pack_int(pk, 1);
}
static void p_dup_key(msgpack_packer *pk) {
  msgpack_pack_map(pk, 3);
  key(pk, "a");
  msgpack_pack_int(pk, 1);
  key(pk, "b");
  msgpack_pack_int(pk, 1);
  key(pk, "a");
  msgpack_pack_int(pk, 2);
}
static void p_bin(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  key(pk, "x");
  msgpack_pack_bin_with_body(pk, "ab", 2);
}
static void p_trailing(msgpack_packer *pk) {
  msgpack_pack_map(pk, 0);
  msgpack_pack_int(pk, 1);
}

static void test_payloads(void **state) {
  static const uint8_t bomb[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0x00, 0x00, 0x00};
  static const uint8_t truncated[] = {0x82, 0xa1, 'x', 0x01};
  vs_error err = VS_ERROR_INIT;

  (void)state;
  assert_int_equal(check_packed(p_good), VS_OK);
  assert_int_equal(check_packed(p_empty_map), VS_OK);
  assert_int_equal(vs__payload_check(NULL, 0, 0, NULL), VS_OK);
  assert_int_equal(check_packed(p_not_map), VS_EINVAL);
  assert_int_equal(check_packed(p_nil), VS_EINVAL);
  assert_int_equal(check_packed(p_nested_map), VS_EINVAL);
  assert_int_equal(check_packed(p_nested_array), VS_EINVAL);
  assert_int_equal(check_packed(p_nan), VS_EINVAL);
  assert_int_equal(check_packed(p_inf_in_array), VS_EINVAL);
  assert_int_equal(check_packed(p_bad_utf8), VS_EINVAL);
  assert_int_equal(check_packed(p_bad_key_utf8), VS_EINVAL);
  assert_int_equal(check_packed(p_int_key), VS_EINVAL);
  assert_int_equal(check_packed(p_empty_key), VS_EINVAL);
  assert_int_equal(check_packed(p_dup_key), VS_EINVAL);
  assert_int_equal(check_packed(p_bin), VS_EINVAL);
  assert_int_equal(check_packed(p_trailing), VS_EINVAL);
  assert_int_equal(vs__payload_check(bomb, sizeof(bomb), 0, NULL), VS_EINVAL);
  assert_int_equal(vs__payload_check(truncated, sizeof(truncated), 0, NULL), VS_EINVAL);
  assert_int_equal(vs__payload_check((const uint8_t[]){0xc1}, 1, 0, NULL), VS_EINVAL);
  assert_int_equal(vs__payload_check("x", VS_PAYLOAD_MAX + 1, 3, &err), VS_ETOOLARGE);
  assert_non_null(strstr(err.message, "point 3"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),   cmocka_unit_test(test_utf8),     cmocka_unit_test(test_ids),
      cmocka_unit_test(test_vectors), cmocka_unit_test(test_payloads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
