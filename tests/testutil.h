/*
 * testutil.h: helpers shared by the cmocka suites: temporary database
 * directories, a seeded PRNG, and msgpack payload builders.
 */
#ifndef VS_TESTS_TESTUTIL_H
#define VS_TESTS_TESTUTIL_H

/* cmocka needs these before it; keep the order. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <msgpack.h>

#include "engine/vsearch.h"

/* A fresh directory under $TMPDIR (or /tmp); the caller removes it with
 * tu_rmdir().  Returns a static-lifetime string owned by the caller (free). */
char *tu_mkdtemp(void);
void tu_rmdir(const char *dir);

/* Open (creating) a database in dir; fails the test on error. */
vs_db *tu_open(const char *dir, unsigned flags);
/* Create a collection with the defaults and the given dim/metric/index. */
void tu_create(vs_db *db, const char *name, uint32_t dim, vs_metric metric, const char *index);

/* A database in a fresh directory, for cmocka setup/teardown: open with
 * VS_OPEN_CREATE | flags and the given seal threshold (0: default). */
typedef struct tu_fixture {
  char *dir;
  vs_db *db;
} tu_fixture;
tu_fixture *tu_fixture_open(unsigned flags, unsigned seal_threshold);
/* cmocka teardown: close the database, remove the directory. */
int tu_teardown(void **state);

/* xorshift64*: the same sequence on every machine. */
uint64_t tu_rand(uint64_t *state);
float tu_randf(uint64_t *state); /* uniform in [-1, 1) */

/* Payload builders over a msgpack_sbuffer that the caller destroys. */
void tu_payload_simple(msgpack_sbuffer *sb, uint64_t i);

/* An allocator for vs_set_allocator() that counts live allocations and
 * can fail the allocation numbered fail_at (from 0; -1: never). */
typedef struct tu_counting {
  long fail_at;
  long calls;
  long live;
} tu_counting;
vs_allocator tu_counting_allocator(tu_counting *c);

/* Assert that vs call `rc` returned `want`, printing err's message if not. */
#define TU_EXPECT(rc, want, err)                                                                   \
  do {                                                                                             \
    int rc_ = (rc);                                                                                \
    if (rc_ != (want))                                                                             \
      fail_msg("%s returned %s (%s), want %s", #rc, vs_err_name(rc_), (err)->message,              \
               vs_err_name(want));                                                                 \
  } while (0)

#endif /* VS_TESTS_TESTUTIL_H */
