/*
 * test_mpscan.c: the non-allocating MessagePack scanner.  Besides hand-made
 * cases, a seeded differential test: on random and mutated bytes the scanner
 * and msgpack-c must agree on where a complete object ends.
 */
#include "tests/testutil.h"

#include <string.h>

#include "engine/mpscan.h"

#define MIB ((size_t)1 << 20)

static int scan(const void *p, size_t avail, size_t limit, unsigned depth, size_t *used) {
  return vs__mp_scan(p, avail, limit, depth, used);
}

static void test_huge_declared_array(void **state) {
  static const uint8_t bomb[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
  size_t used = 0;

  (void)state;
  /* 0xff000000 elements cannot fit in a 64 MiB message: rejected at once. */
  assert_int_equal(scan(bomb, sizeof(bomb), 64 * MIB, 32, &used), VS_ETOOLARGE);
  /* The same for a declared string, binary or map. */
  assert_int_equal(scan((const uint8_t[]){0xdb, 0xff, 0xff, 0xff, 0xff}, 5, 64 * MIB, 32, &used),
                   VS_ETOOLARGE);
  assert_int_equal(scan((const uint8_t[]){0xc6, 0x10, 0x00, 0x00, 0x00}, 5, 64 * MIB, 32, &used),
                   VS_ETOOLARGE);
  assert_int_equal(scan((const uint8_t[]){0xdf, 0x02, 0x00, 0x00, 0x00}, 5, 64 * MIB, 32, &used),
                   VS_ETOOLARGE);
}

static void test_incomplete(void **state) {
  static const uint8_t arr[] = {0x93, 0x01, 0x02, 0x03};
  size_t used = 0;

  (void)state;
  for (size_t n = 0; n < sizeof(arr); n++)
    assert_int_equal(scan(arr, n, 1024, 8, &used), VS__MP_MORE);
  assert_int_equal(scan(arr, sizeof(arr), 1024, 8, &used), VS_OK);
  assert_int_equal(used, 4);
  /* A declared length that fits the limit but not the buffer: wait. */
  assert_int_equal(scan((const uint8_t[]){0xd9, 0x20, 'a'}, 3, 1024, 8, &used), VS__MP_MORE);
  /* Bytes after the object are not part of it. */
  assert_int_equal(scan((const uint8_t[]){0x01, 0x02}, 2, 1024, 8, &used), VS_OK);
  assert_int_equal(used, 1);
}

static void test_depth(void **state) {
  uint8_t deep[40];
  size_t used;

  (void)state;
  memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
  deep[sizeof(deep) - 1] = 0x01;
  assert_int_equal(scan(deep, sizeof(deep), 1024, 39, &used), VS_OK);
  assert_int_equal(used, sizeof(deep));
  assert_int_equal(scan(deep, sizeof(deep), 1024, 38, &used), VS_ETOOLARGE);
  /* Empty containers do not nest. */
  assert_int_equal(scan((const uint8_t[]){0x91, 0x90}, 2, 1024, 1, &used), VS_OK);
}

static void test_reserved_byte(void **state) {
  size_t used;

  (void)state;
  assert_int_equal(scan((const uint8_t[]){0xc1}, 1, 16, 8, &used), VS_EINVAL);
  assert_int_equal(scan((const uint8_t[]){0x92, 0x01, 0xc1}, 3, 16, 8, &used), VS_EINVAL);
}

static void test_limit(void **state) {
  static const uint8_t s[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
  size_t used;

  (void)state;
  assert_int_equal(scan(s, sizeof(s), 6, 8, &used), VS_OK);
  assert_int_equal(scan(s, sizeof(s), 5, 8, &used), VS_ETOOLARGE);
}

/* Every kind msgpack-c can pack scans to exactly its packed size. */
static void test_all_types(void **state) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  size_t used;
  char bin[300];

  (void)state;
  memset(bin, 7, sizeof(bin));
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "k", 1);
  msgpack_pack_array(&pk, 24);
  msgpack_pack_nil(&pk);
  msgpack_pack_true(&pk);
  msgpack_pack_false(&pk);
  msgpack_pack_int8(&pk, -100);
  msgpack_pack_int16(&pk, -30000);
  msgpack_pack_int32(&pk, -2000000000);
  msgpack_pack_int64(&pk, -(1ll << 40));
  msgpack_pack_uint8(&pk, 200);
  msgpack_pack_uint16(&pk, 60000);
  msgpack_pack_uint32(&pk, 4000000000u);
  msgpack_pack_uint64(&pk, 1ull << 63);
  msgpack_pack_float(&pk, 1.5f);
  msgpack_pack_double(&pk, 2.5);
  msgpack_pack_str_with_body(&pk, bin, 31);
  msgpack_pack_str_with_body(&pk, bin, 200);
  msgpack_pack_str_with_body(&pk, bin, 300);
  msgpack_pack_bin_with_body(&pk, bin, 10);
  msgpack_pack_bin_with_body(&pk, bin, 300);
  msgpack_pack_ext_with_body(&pk, bin, 1, 5);
  msgpack_pack_ext_with_body(&pk, bin, 16, 5);
  msgpack_pack_ext_with_body(&pk, bin, 17, 5);
  msgpack_pack_ext_with_body(&pk, bin, 300, 5);
  msgpack_pack_array(&pk, 20);
  for (int i = 0; i < 20; i++)
    msgpack_pack_int(&pk, i);
  msgpack_pack_map(&pk, 17);
  for (int i = 0; i < 17; i++) {
    msgpack_pack_int(&pk, i);
    msgpack_pack_nil(&pk);
  }
  assert_int_equal(scan(sb.data, sb.size, sb.size, 8, &used), VS_OK);
  assert_int_equal(used, sb.size);
  for (size_t n = 0; n < sb.size; n++)
    assert_int_equal(scan(sb.data, n, sb.size, 8, &used), VS__MP_MORE);
  msgpack_sbuffer_destroy(&sb);
}

/* Differential: random byte strings (biased towards headers) must get the
 * same verdict from the scanner and from msgpack-c.  msgpack-c only sees
 * buffers the scanner did not call too large: fed the others, it tries the
 * huge allocations this scanner exists to prevent. */
static void test_differential(void **state) {
  uint64_t seed = 42;
  uint8_t buf[48];

  (void)state;
  for (int iter = 0; iter < 200000; iter++) {
    size_t n = 1 + tu_rand(&seed) % sizeof(buf), used = 0, off = 0;
    msgpack_unpacked u;
    int rc, mrc;

    for (size_t i = 0; i < n; i++) {
      uint64_t r = tu_rand(&seed);
      /* small lengths keep most objects completable within the buffer */
      buf[i] = (r & 3) == 0 ? (uint8_t)(0xc4 + (r >> 8) % 28) : (uint8_t)(r >> 16) % 0x30;
    }
    rc = scan(buf, n, n, 64, &used);
    if (rc == VS_ETOOLARGE)
      continue;
    msgpack_unpacked_init(&u);
    mrc = msgpack_unpack_next(&u, (const char *)buf, n, &off);
    msgpack_unpacked_destroy(&u);
    if (rc == VS_OK) {
      assert_int_equal(mrc, MSGPACK_UNPACK_SUCCESS);
      assert_int_equal(used, off);
    } else if (rc == VS_EINVAL) {
      assert_int_equal(mrc, MSGPACK_UNPACK_PARSE_ERROR);
    } else {
      assert_int_equal(rc, VS__MP_MORE);
      assert_int_equal(mrc, MSGPACK_UNPACK_CONTINUE);
    }
  }
}

/* A resumed scan, fed in random pieces, ends exactly as one scan of the
 * whole buffer does (the server keeps one per message being received). */
static void test_resume(void **state) {
  uint64_t seed = 7;
  uint8_t buf[64];

  (void)state;
  for (int iter = 0; iter < 100000; iter++) {
    size_t n = 1 + tu_rand(&seed) % sizeof(buf), used = 0, used2 = 0, avail = 0;
    size_t budget = 1 + tu_rand(&seed) % 40;
    vs__mp_scanner sc;
    int want, got = VS__MP_MORE;

    for (size_t i = 0; i < n; i++) {
      uint64_t r = tu_rand(&seed);
      buf[i] = (r & 3) == 0 ? (uint8_t)(0xc4 + (r >> 8) % 28) : (uint8_t)(r >> 16) % 0x30;
    }
    want = vs__mp_scan_budget(buf, n, n, 8, budget, &used);
    vs__mp_scanner_init(&sc);
    while (got == VS__MP_MORE && avail < n) {
      avail += 1 + tu_rand(&seed) % 7;
      if (avail > n)
        avail = n;
      got = vs__mp_scan_resume(&sc, buf, avail, n, 8, budget, &used2);
    }
    assert_int_equal(got, want);
    if (want == VS_OK)
      assert_int_equal(used2, used);
  }
}

/* The object budget: every object counts one, containers included. */
static void test_object_budget(void **state) {
  uint8_t buf[3 + 2000];
  size_t used;

  (void)state;
  buf[0] = 0xdc; /* array16 of 2000 fixints: 2001 objects */
  buf[1] = 2000 >> 8;
  buf[2] = 2000 & 0xff;
  memset(buf + 3, 0x01, 2000);
  assert_int_equal(vs__mp_scan_budget(buf, sizeof(buf), sizeof(buf), 4, 2000, &used), VS_ETOOLARGE);
  assert_int_equal(vs__mp_scan_budget(buf, sizeof(buf), sizeof(buf), 4, 2001, &used), VS_OK);
  assert_int_equal(used, sizeof(buf));
  /* Incomplete input within the budget still asks for more. */
  assert_int_equal(vs__mp_scan_budget(buf, 100, sizeof(buf), 4, 5000, &used), VS__MP_MORE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_huge_declared_array),
      cmocka_unit_test(test_incomplete),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_reserved_byte),
      cmocka_unit_test(test_limit),
      cmocka_unit_test(test_all_types),
      cmocka_unit_test(test_differential),
      cmocka_unit_test(test_object_budget),
      cmocka_unit_test(test_resume),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
