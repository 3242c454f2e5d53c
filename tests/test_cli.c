/*
 * test_cli.c: the `vsearch` command line as a user runs it: the demo that
 * `make run` shows, create/stats/drop, and errors with a non-zero status.
 * The binary comes from $VSEARCH_BIN (set by ctest).
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Run a shell command; return its exit status and up to cap bytes of its
 * combined output. */
static int run(char *out, size_t cap, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  FILE *p;
  size_t n = 0;
  int status;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
  p = popen(cmd, "r");
  assert_non_null(p);
  while (n + 1 < cap && !feof(p))
    n += fread(out + n, 1, cap - 1 - n, p);
  out[n] = '\0';
  status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *bin(void) {
  const char *b = getenv("VSEARCH_BIN");
  return b ? b : "build/vsearch";
}

static void test_demo(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];

  (void)state;
  assert_int_equal(run(out, sizeof(out), "%s demo %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "upserted 5 points"));
  assert_non_null(strstr(out, "NaN vector is refused: VS_EINVAL"));
  assert_non_null(strstr(out, "3-d vector is refused:  VS_EDIM"));
  assert_non_null(strstr(out, "\"2\": not found"));
  assert_non_null(strstr(out, "deleted 2 points; count = 3"));
  assert_non_null(strstr(out, "reopened: count = 3"));
  /* Running it again starts the demo collection afresh. */
  assert_int_equal(run(out, sizeof(out), "%s demo %s/db", bin(), dir), 0);
  assert_non_null(strstr(out, "reopened: count = 3"));
  tu_rmdir(dir);
  free(dir);
}

static void test_create_stats_drop(void **state) {
  char *dir = tu_mkdtemp();
  static char out[65536];

  (void)state;
  assert_int_equal(run(out, sizeof(out),
                       "%s create %s items --dim 32 --metric ip --index HNSW16,SQ8 "
                       "--text-fields title,body --language french",
                       bin(), dir),
                   0);
  assert_non_null(strstr(out, "metric=ip"));
  assert_int_equal(run(out, sizeof(out), "%s stats %s", bin(), dir), 0);
  assert_non_null(strstr(out, "1 collection"));
  assert_non_null(strstr(out, "index=HNSW16,SQ8"));
  assert_non_null(strstr(out, "text_fields=title,body"));
  assert_non_null(strstr(out, "language=french"));

  assert_int_not_equal(run(out, sizeof(out), "%s create %s items --dim 32", bin(), dir), 0);
  assert_non_null(strstr(out, "already exists"));
  assert_int_not_equal(
      run(out, sizeof(out), "%s create %s bad --dim 30 --index IVF8,PQ7", bin(), dir), 0);
  assert_non_null(strstr(out, "not valid for dim 30"));
  assert_int_not_equal(run(out, sizeof(out), "%s create %s bad --dim 8 --metric dot", bin(), dir),
                       0);
  assert_int_not_equal(run(out, sizeof(out), "%s create %s bad", bin(), dir), 0);
  assert_non_null(strstr(out, "--dim"));
  assert_int_not_equal(run(out, sizeof(out), "%s stats %s/nowhere", bin(), dir), 0);
  assert_non_null(strstr(out, "does not exist"));
  assert_int_not_equal(run(out, sizeof(out), "%s frobnicate", bin()), 0);

  assert_int_equal(run(out, sizeof(out), "%s drop %s items", bin(), dir), 0);
  assert_int_not_equal(run(out, sizeof(out), "%s drop %s items", bin(), dir), 0);
  assert_non_null(strstr(out, "no collection named 'items'"));
  assert_int_equal(run(out, sizeof(out), "%s stats %s", bin(), dir), 0);
  assert_non_null(strstr(out, "0 collections"));
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demo),
      cmocka_unit_test(test_create_stats_drop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
