/*
 * test_status.c: the status table and vs_error reports.
 */
#include "tests/testutil.h"

#include <errno.h>
#include <string.h>

#include "engine/storage.h"

static void test_every_status_named(void **state) {
  static const int codes[] = {
#define XX(name, value, wire, msg) VS_##name,
      VS_STATUS_MAP(XX)
#undef XX
  };
  (void)state;
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    assert_true(strncmp(vs_err_name(codes[i]), "VS_", 3) == 0);
    assert_string_not_equal(vs_strerror(codes[i]), "unknown status");
    assert_true(strlen(vs_err_wire(codes[i])) > 0);
  }
  assert_string_equal(vs_err_name(VS_EDIM), "VS_EDIM");
  assert_string_equal(vs_err_wire(VS_EDIM), "dim_mismatch");
  assert_string_equal(vs_err_wire(VS_EINVAL), "bad_request");
  assert_string_equal(vs_err_wire(VS_ENOTFOUND), "not_found");
  assert_string_equal(vs_err_wire(VS_EEXIST), "already_exists");
  assert_string_equal(vs_err_wire(VS_ETOOLARGE), "too_large");
  assert_string_equal(vs_err_wire(VS_ENOMEM), "internal");
}

static void test_unknown_status(void **state) {
  (void)state;
  assert_string_equal(vs_strerror(12345), "unknown status");
  assert_string_equal(vs_err_name(-9999), "VS_UNKNOWN");
  assert_string_equal(vs_err_wire(77), "internal");
}

static void test_first_error_wins(void **state) {
  vs_error err = VS_ERROR_INIT;

  (void)state;
  assert_int_equal(vs__err(&err, VS_EDIM, "first %d", 1), VS_EDIM);
  assert_int_equal(vs__err(&err, VS_EINVAL, "second"), VS_EINVAL);
  assert_int_equal(err.code, VS_EDIM);
  assert_string_equal(err.message, "first 1");
  vs_error_clear(&err);
  assert_int_equal(err.code, VS_OK);
  assert_string_equal(err.message, "");
  vs_error_clear(NULL);
  assert_int_equal(vs__err(NULL, VS_EIO, "nowhere"), VS_EIO);
}

static void test_message_truncated(void **state) {
  vs_error err = VS_ERROR_INIT;
  char big[1000];

  (void)state;
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  vs__err(&err, VS_EINVAL, "%s", big);
  assert_int_equal(strlen(err.message), VS_ERROR_MESSAGE_MAX - 1);
}

static void test_mdb_translation(void **state) {
  (void)state;
  assert_int_equal(vs__mdb_status(MDB_SUCCESS), VS_OK);
  assert_int_equal(vs__mdb_status(MDB_MAP_FULL), VS__EMAPFULL);
  assert_int_equal(vs__mdb_status(MDB_CORRUPTED), VS_ECORRUPT);
  assert_int_equal(vs__mdb_status(MDB_VERSION_MISMATCH), VS_EVERSION);
  assert_int_equal(vs__mdb_status(ENOMEM), VS_ENOMEM);
  assert_int_equal(vs__mdb_status(ENOSPC), VS_ENOSPC);
  assert_int_equal(vs__mdb_status(EIO), VS_EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_status_named), cmocka_unit_test(test_unknown_status),
      cmocka_unit_test(test_first_error_wins),   cmocka_unit_test(test_message_truncated),
      cmocka_unit_test(test_mdb_translation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
