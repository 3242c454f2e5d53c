/*
 * validate.c: checks on everything a caller hands the engine, run before any
 * write starts, so that a bad batch fails whole and changes nothing.
 *
 * Payloads are untrusted msgpack: they are first scanned without allocating
 * (engine/mpscan.c), then decoded by msgpack-c and walked.  The accepted
 * shape is a map with unique string keys whose values are strings,
 * integers, finite floats, booleans, or arrays of those; nil, binary, ext,
 * nested maps and nested arrays are rejected, so filters and the text index
 * never meet a value they cannot interpret.
 */
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "engine/mpscan.h"
#include "engine/storage.h"

int vs__name_check(const char *name, vs_error *err) {
  size_t n;

  if (name == NULL)
    return vs__err(err, VS_EINVAL, "collection name is missing");
  n = strlen(name);
  if (n == 0 || n > VS_NAME_MAX)
    return vs__err(err, VS_EINVAL, "collection name must be 1..%d characters", VS_NAME_MAX);
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    if (!ok)
      return vs__err(err, VS_EINVAL, "collection name may hold only letters, digits, '_' and '-'");
  }
  return VS_OK;
}

/* Valid UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
 * utf8proc_iterate() does the decoding; a NUL byte is accepted as U+0000. */
int vs__utf8_check(const char *s, size_t len) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  size_t i = 0;

  while (i < len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n;

    if (p[i] < 0x80) { /* ASCII fast path */
      i++;
      continue;
    }
    n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
    if (n < 0 || cp < 0)
      return VS_EINVAL;
    i += (size_t)n;
  }
  return VS_OK;
}

int vs__id_check(const vs_id *id, size_t index, vs_error *err) {
  switch (id->kind) {
  case VS_ID_INT:
    if (id->num > (uint64_t)VS_INT_ID_MAX)
      return vs__err(err, VS_EINVAL, "point %zu: integer id must be below 2^63", index);
    return VS_OK;
  case VS_ID_STR:
    if (id->str == NULL || id->len == 0 || id->len > VS_ID_MAX)
      return vs__err(err, VS_EINVAL, "point %zu: string id must be 1..%d bytes", index, VS_ID_MAX);
    if (vs__utf8_check(id->str, id->len))
      return vs__err(err, VS_EINVAL, "point %zu: string id is not valid UTF-8", index);
    return VS_OK;
  default:
    return vs__err(err, VS_EINVAL, "point %zu: id kind must be VS_ID_INT or VS_ID_STR", index);
  }
}

size_t vs__id_key(const vs_id *id, uint8_t *key) {
  if (id->kind == VS_ID_INT) {
    key[0] = VS__ID_KIND_INT;
    for (int i = 0; i < 8; i++)
      key[1 + i] = (uint8_t)(id->num >> (56 - 8 * i));
    return 9;
  }
  key[0] = VS__ID_KIND_STR;
  memcpy(key + 1, id->str, id->len);
  return 1 + id->len;
}

int vs__vector_check(const float *v, size_t dim, uint32_t want, const char *what, vs_error *err) {
  if (dim != want)
    return vs__err(err, VS_EDIM, "%s has %zu components, the collection has dim %u", what, dim,
                   want);
  if (want > 0 && v == NULL)
    return vs__err(err, VS_EINVAL, "%s is missing", what);
  {
    /* A float is NaN or infinite when its exponent bits are all ones.  One
     * pass without early exit, which the compiler vectorises; the
     * component is looked for only once one is bad. */
    uint32_t bad = 0;
    for (size_t i = 0; i < dim; i++) {
      uint32_t bits;
      memcpy(&bits, &v[i], 4);
      bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (bad == 0)
      return VS_OK;
  }
  for (size_t i = 0; i < dim; i++)
    if (!isfinite(v[i]))
      return vs__err(err, VS_EINVAL, "%s component %zu is %s", what, i,
                     isnan(v[i]) ? "NaN" : "infinite");
  return VS_OK;
}

static int scalar_check(const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
  case MSGPACK_OBJECT_BOOLEAN:
    return VS_OK;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return isfinite(o->via.f64) ? VS_OK : VS_EINVAL;
  case MSGPACK_OBJECT_STR:
    return vs__utf8_check(o->via.str.ptr, o->via.str.size);
  default:
    return VS_EINVAL;
  }
}

static int key_cmp(const void *a, const void *b) {
  const msgpack_object_str *x = &((const msgpack_object_kv *)a)->key.via.str;
  const msgpack_object_str *y = &((const msgpack_object_kv *)b)->key.via.str;
  size_t n = x->size < y->size ? x->size : y->size;
  int c = memcmp(x->ptr, y->ptr, n);

  return c ? c : (x->size > y->size) - (x->size < y->size);
}

/* Walk a decoded payload map.  Sorting the pairs by key (in msgpack-c's zone,
 * which is ours to reorder) finds duplicate keys in n log n. */
static int payload_walk(msgpack_object *root, size_t index, vs_error *err) {
  msgpack_object_map *m;

  if (root->type != MSGPACK_OBJECT_MAP)
    return vs__err(err, VS_EINVAL, "point %zu: payload must be a msgpack map", index);
  m = &root->via.map;
  for (uint32_t i = 0; i < m->size; i++) {
    const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;

    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 ||
        k->via.str.size > VS_FIELD_NAME_MAX || vs__utf8_check(k->via.str.ptr, k->via.str.size))
      return vs__err(err, VS_EINVAL,
                     "point %zu: payload keys must be strings of 1..%d bytes of UTF-8", index,
                     VS_FIELD_NAME_MAX);
    if (v->type == MSGPACK_OBJECT_ARRAY) {
      for (uint32_t j = 0; j < v->via.array.size; j++)
        if (scalar_check(&v->via.array.ptr[j]))
          return vs__err(err, VS_EINVAL,
                         "point %zu: payload field '%.*s' holds an array element that is not a "
                         "string, integer, finite float or boolean",
                         index, (int)k->via.str.size, k->via.str.ptr);
    } else if (scalar_check(v)) {
      return vs__err(err, VS_EINVAL,
                     "point %zu: payload field '%.*s' is not a string, integer, finite float, "
                     "boolean or array of those",
                     index, (int)k->via.str.size, k->via.str.ptr);
    }
  }
  if (m->size > 1) {
    qsort(m->ptr, m->size, sizeof(m->ptr[0]), key_cmp);
    for (uint32_t i = 1; i < m->size; i++)
      if (key_cmp(&m->ptr[i - 1], &m->ptr[i]) == 0)
        return vs__err(err, VS_EINVAL, "point %zu: payload key '%.*s' appears twice", index,
                       (int)m->ptr[i].key.via.str.size, m->ptr[i].key.via.str.ptr);
  }
  return VS_OK;
}

int vs__payload_check(const void *p, size_t len, size_t index, vs_error *err) {
  msgpack_unpacked u;
  size_t used = 0, off = 0;
  int rc;

  if (len == 0)
    return VS_OK;
  if (p == NULL)
    return vs__err(err, VS_EINVAL, "point %zu: payload pointer is NULL", index);
  if (len > VS_PAYLOAD_MAX)
    return vs__err(err, VS_ETOOLARGE, "point %zu: payload is %zu bytes, the limit is %u", index,
                   len, VS_PAYLOAD_MAX);
  rc = vs__mp_scan(p, len, len, VS_PAYLOAD_DEPTH, &used);
  if (rc == VS__MP_MORE || rc == VS_ETOOLARGE)
    return vs__err(err, VS_EINVAL, "point %zu: payload is truncated, or nests deeper than %d",
                   index, VS_PAYLOAD_DEPTH);
  if (rc)
    return vs__err(err, VS_EINVAL, "point %zu: payload is not valid msgpack", index);
  if (used != len)
    return vs__err(err, VS_EINVAL, "point %zu: payload has %zu bytes after its map", index,
                   len - used);

  msgpack_unpacked_init(&u);
  switch (msgpack_unpack_next(&u, p, len, &off)) {
  case MSGPACK_UNPACK_SUCCESS:
    rc = payload_walk(&u.data, index, err);
    break;
  case MSGPACK_UNPACK_NOMEM_ERROR:
    rc = vs__err(err, VS_ENOMEM, "point %zu: out of memory decoding the payload", index);
    break;
  default:
    rc = vs__err(err, VS_EINVAL, "point %zu: payload is not valid msgpack", index);
    break;
  }
  msgpack_unpacked_destroy(&u);
  return rc;
}
