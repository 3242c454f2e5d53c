/*
 * alloc.c: the allocator every vsearch allocation goes through.
 *
 * The default is the C library's.  vs_set_allocator() swaps it, which is how
 * embedders plug in their own and how the tests inject allocation failures
 * (see tests/test_db.c).  Memory handed to callers is released with vs_free(),
 * so it always returns to the allocator that made it.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/storage.h"

static void *std_malloc(void *ctx, size_t size) {
  (void)ctx;
  return malloc(size);
}

static void *std_realloc(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  return realloc(ptr, size);
}

static void std_free(void *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

static vs_allocator alloc = {std_malloc, std_realloc, std_free, NULL};

void vs_set_allocator(const vs_allocator *a) {
  if (a == NULL) {
    alloc = (vs_allocator){std_malloc, std_realloc, std_free, NULL};
    return;
  }
  alloc = *a;
}

void *vs__malloc(size_t size) {
  return alloc.malloc_fn(alloc.ctx, size ? size : 1);
}

void *vs__calloc(size_t n, size_t size) {
  void *p;

  if (size && n > SIZE_MAX / size)
    return NULL;
  p = vs__malloc(n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

void *vs__realloc(void *ptr, size_t size) {
  return alloc.realloc_fn(alloc.ctx, ptr, size ? size : 1);
}

void vs__free(void *ptr) {
  if (ptr)
    alloc.free_fn(alloc.ctx, ptr);
}

void vs_free(void *ptr) {
  vs__free(ptr);
}

char *vs__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = vs__malloc(n);

  if (p)
    memcpy(p, s, n);
  return p;
}
