/*
 * testutil.c: see testutil.h.
 */
#include "tests/testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_mkdtemp(void) {
  const char *base = getenv("TMPDIR");
  char *path = malloc(4096);

  assert_non_null(path);
  snprintf(path, 4096, "%s/vsearch-test-XXXXXX", base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(path));
  return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void tu_rmdir(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

vs_db *tu_open(const char *dir, unsigned flags) {
  vs_open_options o = {flags | VS_OPEN_CREATE, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db = NULL;

  TU_EXPECT(vs_db_open(dir, &o, &db, &err), VS_OK, &err);
  return db;
}

void tu_create(vs_db *db, const char *name, uint32_t dim, vs_metric metric, const char *index) {
  vs_collection_config cfg = {name, dim, metric, index, NULL, 0, NULL, 0, 0};
  vs_error err = VS_ERROR_INIT;

  TU_EXPECT(vs_collection_create(db, &cfg, &err), VS_OK, &err);
}

tu_fixture *tu_fixture_open(unsigned flags, unsigned seal_threshold) {
  tu_fixture *f = calloc(1, sizeof(*f));
  vs_open_options o = {VS_OPEN_CREATE | flags, 0, 0, seal_threshold};
  vs_error err = VS_ERROR_INIT;

  assert_non_null(f);
  f->dir = tu_mkdtemp();
  TU_EXPECT(vs_db_open(f->dir, &o, &f->db, &err), VS_OK, &err);
  return f;
}

int tu_teardown(void **state) {
  tu_fixture *f = *state;

  vs_db_close(f->db);
  tu_rmdir(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

uint64_t tu_rand(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

float tu_randf(uint64_t *s) {
  return (float)((tu_rand(s) >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

void tu_payload_simple(msgpack_sbuffer *sb, uint64_t i) {
  msgpack_packer pk;
  char title[32];
  int n = snprintf(title, sizeof(title), "item %llu", (unsigned long long)i);

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "i", 1);
  msgpack_pack_uint64(&pk, i);
  msgpack_pack_str_with_body(&pk, "title", 5);
  msgpack_pack_str_with_body(&pk, title, (size_t)n);
  msgpack_pack_str_with_body(&pk, "tags", 4);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str_with_body(&pk, "a", 1);
  msgpack_pack_double(&pk, (double)i / 2);
}

static void *c_malloc(void *ctx, size_t n) {
  tu_counting *c = ctx;
  void *p;

  if (c->fail_at >= 0 && c->calls++ == c->fail_at)
    return NULL;
  p = malloc(n);
  if (p)
    c->live++;
  return p;
}

static void *c_realloc(void *ctx, void *ptr, size_t n) {
  tu_counting *c = ctx;
  void *p;

  if (c->fail_at >= 0 && c->calls++ == c->fail_at)
    return NULL;
  p = realloc(ptr, n);
  if (p && ptr == NULL)
    c->live++;
  return p;
}

static void c_free(void *ctx, void *ptr) {
  tu_counting *c = ctx;

  if (ptr)
    c->live--;
  free(ptr);
}

vs_allocator tu_counting_allocator(tu_counting *c) {
  vs_allocator a = {c_malloc, c_realloc, c_free, c};
  return a;
}
