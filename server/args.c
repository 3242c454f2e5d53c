/*
 * args.c: named arguments of a request into engine types, and results back
 * into msgpack.
 *
 * Requests arrive as msgpack-c objects that the loop thread decoded from a
 * scanned message (so every declared size was already checked against the
 * bytes received).  The helpers here read the map of named arguments: each
 * checks the type and range of one argument, applies its default, and on a
 * mistake records a message naming the argument in c->err and returns
 * VS_EINVAL, or VS_ETOOLARGE when a count is over a serve limit.  Memory
 * they hand out (NUL-terminated strings, decoded vectors, id arrays) comes
 * from the request's zone and is released with the request, so methods
 * never free it.  Strings inside ids point into the message bytes, which
 * also live as long as the request.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/rpc.h"

int vs__fail(vs__call *c, int code, const char *fmt, ...) {
  va_list ap;

  if (c->err.code == VS_OK) {
    c->err.code = code;
    va_start(ap, fmt);
    vsnprintf(c->err.message, sizeof c->err.message, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int key_is(const msgpack_object *k, const char *name, size_t len) {
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
         memcmp(k->via.str.ptr, name, len) == 0;
}

/* Is the `len` bytes at `name` one of the space-separated words of `list`? */
static int in_list(const char *list, const char *name, size_t len) {
  const char *p = list;

  while (*p) {
    const char *e = strchr(p, ' ');
    size_t wl = e ? (size_t)(e - p) : strlen(p);

    if (wl == len && memcmp(p, name, len) == 0)
      return 1;
    if (!e)
      break;
    p = e + 1;
  }
  return 0;
}

int vs__args_check(vs__call *c, const char *accepted) {
  const msgpack_object_map *m;

  if (!c->args)
    return VS_OK;
  m = &c->args->via.map;
  for (uint32_t i = 0; i < m->size; i++) {
    const msgpack_object *k = &m->ptr[i].key;

    if (k->type != MSGPACK_OBJECT_STR)
      return vs__fail(c, VS_EINVAL, "argument names must be strings");
    if (!in_list(accepted, k->via.str.ptr, k->via.str.size))
      return vs__fail(c, VS_EINVAL, "%s takes no argument '%.*s'", c->method,
                      (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
    for (uint32_t j = 0; j < i; j++)
      if (key_is(&m->ptr[j].key, k->via.str.ptr, k->via.str.size))
        return vs__fail(c, VS_EINVAL, "argument '%.*s' given twice",
                        (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
  }
  return VS_OK;
}

/* The value of key `name` in map `o`, or NULL when absent or nil. */
static const msgpack_object *map_get(const msgpack_object *o, const char *name) {
  size_t len = strlen(name);

  if (!o || o->type != MSGPACK_OBJECT_MAP)
    return NULL;
  for (uint32_t i = 0; i < o->via.map.size; i++)
    if (key_is(&o->via.map.ptr[i].key, name, len))
      return o->via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL ? NULL : &o->via.map.ptr[i].val;
  return NULL;
}

const msgpack_object *vs__arg(const vs__call *c, const char *name) {
  return map_get(c->args, name);
}

int vs__obj_str(vs__call *c, const char *what, const msgpack_object *o, const char **out) {
  char *s;

  if (o->type != MSGPACK_OBJECT_STR)
    return vs__fail(c, VS_EINVAL, "%s must be a string", what);
  if (memchr(o->via.str.ptr, 0, o->via.str.size))
    return vs__fail(c, VS_EINVAL, "%s must not contain a NUL byte", what);
  s = msgpack_zone_malloc(c->zone, (size_t)o->via.str.size + 1);
  if (!s)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  memcpy(s, o->via.str.ptr, o->via.str.size);
  s[o->via.str.size] = 0;
  *out = s;
  return VS_OK;
}

int vs__arg_str(vs__call *c, const char *name, int required, const char *def, const char **out) {
  const msgpack_object *o = vs__arg(c, name);

  if (!o) {
    if (required)
      return vs__fail(c, VS_EINVAL, "missing argument '%s'", name);
    *out = def;
    return VS_OK;
  }
  return vs__obj_str(c, name, o, out);
}

int vs__arg_uint(vs__call *c, const char *name, uint64_t def, uint64_t lo, uint64_t hi,
                 int toolarge, uint64_t *out) {
  const msgpack_object *o = vs__arg(c, name);
  uint64_t v;

  if (!o) {
    *out = def;
    return VS_OK;
  }
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return vs__fail(c, VS_EINVAL, "%s must be an integer in %llu..%llu", name,
                    (unsigned long long)lo, (unsigned long long)hi);
  v = o->via.u64;
  if (v > hi && toolarge)
    return vs__fail(c, VS_ETOOLARGE, "%s is %llu, over the limit %llu", name, (unsigned long long)v,
                    (unsigned long long)hi);
  if (v < lo || v > hi)
    return vs__fail(c, VS_EINVAL, "%s must be an integer in %llu..%llu", name,
                    (unsigned long long)lo, (unsigned long long)hi);
  *out = v;
  return VS_OK;
}

int vs__arg_bool(vs__call *c, const char *name, int def, int *out) {
  const msgpack_object *o = vs__arg(c, name);

  if (!o) {
    *out = def;
    return VS_OK;
  }
  if (o->type != MSGPACK_OBJECT_BOOLEAN)
    return vs__fail(c, VS_EINVAL, "%s must be true or false", name);
  *out = o->via.boolean;
  return VS_OK;
}

int vs__obj_double(vs__call *c, const char *what, const msgpack_object *o, double *out) {
  double v;

  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    v = (double)o->via.u64;
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    v = (double)o->via.i64;
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    v = o->via.f64;
    break;
  default:
    return vs__fail(c, VS_EINVAL, "%s must be a number", what);
  }
  if (!isfinite(v))
    return vs__fail(c, VS_EINVAL, "%s must be finite", what);
  *out = v;
  return VS_OK;
}

int vs__arg_double(vs__call *c, const char *name, double def, double *out) {
  const msgpack_object *o = vs__arg(c, name);

  if (!o) {
    *out = def;
    return VS_OK;
  }
  return vs__obj_double(c, name, o, out);
}

int vs__obj_id(vs__call *c, const char *what, const msgpack_object *o, vs_id *out) {
  memset(out, 0, sizeof *out);
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)VS_INT_ID_MAX) {
    out->kind = VS_ID_INT;
    out->num = o->via.u64;
    return VS_OK;
  }
  if (o->type == MSGPACK_OBJECT_STR && o->via.str.size >= 1 && o->via.str.size <= VS_ID_MAX) {
    out->kind = VS_ID_STR;
    out->str = o->via.str.ptr;
    out->len = o->via.str.size;
    return VS_OK;
  }
  return vs__fail(c, VS_EINVAL, "%s must be an integer in 0..2^63-1 or a string of 1..%d bytes",
                  what, VS_ID_MAX);
}

int vs__obj_ids(vs__call *c, const char *what, const msgpack_object *o, size_t max, vs_id **ids,
                size_t *n) {
  vs_id *v;

  if (o->type != MSGPACK_OBJECT_ARRAY)
    return vs__fail(c, VS_EINVAL, "%s must be an array of ids", what);
  if (o->via.array.size > max)
    return vs__fail(c, VS_ETOOLARGE, "%s holds %u ids, over the limit %zu", what, o->via.array.size,
                    max);
  v = msgpack_zone_malloc(c->zone, sizeof *v * (o->via.array.size + 1u));
  if (!v)
    return vs__fail(c, VS_ENOMEM, "out of memory");
  for (uint32_t i = 0; i < o->via.array.size; i++) {
    char w[64];
    int rc;

    snprintf(w, sizeof w, "%s[%u]", what, i);
    rc = vs__obj_id(c, w, &o->via.array.ptr[i], &v[i]);
    if (rc)
      return rc;
  }
  *ids = v;
  *n = o->via.array.size;
  return VS_OK;
}

int vs__obj_is_vector(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_BIN || o->type == MSGPACK_OBJECT_ARRAY;
}

int vs__obj_vector(vs__call *c, const char *what, const msgpack_object *o, float **v, size_t *dim) {
  float *f;
  size_t d;

  if (o->type == MSGPACK_OBJECT_BIN) {
    const uint8_t *b = (const uint8_t *)o->via.bin.ptr;

    if (o->via.bin.size % 4 != 0)
      return vs__fail(c, VS_EINVAL, "%s: a bin vector holds 4 bytes per component, not %u bytes",
                      what, o->via.bin.size);
    d = o->via.bin.size / 4;
    if (d > VS_DIM_MAX)
      return vs__fail(c, VS_EDIM, "%s has %zu components, over %d", what, d, VS_DIM_MAX);
    f = msgpack_zone_malloc(c->zone, sizeof *f * (d + 1));
    if (!f)
      return vs__fail(c, VS_ENOMEM, "out of memory");
    for (size_t i = 0; i < d; i++) {
      uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                   (uint32_t)b[4 * i + 3] << 24;

      memcpy(&f[i], &u, sizeof u);
    }
  } else if (o->type == MSGPACK_OBJECT_ARRAY) {
    d = o->via.array.size;
    if (d > VS_DIM_MAX)
      return vs__fail(c, VS_EDIM, "%s has %zu components, over %d", what, d, VS_DIM_MAX);
    f = msgpack_zone_malloc(c->zone, sizeof *f * (d + 1));
    if (!f)
      return vs__fail(c, VS_ENOMEM, "out of memory");
    for (size_t i = 0; i < d; i++) {
      const msgpack_object *e = &o->via.array.ptr[i];

      switch (e->type) {
      case MSGPACK_OBJECT_POSITIVE_INTEGER:
        f[i] = (float)e->via.u64;
        break;
      case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        f[i] = (float)e->via.i64;
        break;
      case MSGPACK_OBJECT_FLOAT32:
      case MSGPACK_OBJECT_FLOAT64:
        f[i] = (float)e->via.f64;
        break;
      default:
        return vs__fail(c, VS_EINVAL, "%s[%zu] must be a number", what, i);
      }
    }
  } else {
    return vs__fail(c, VS_EINVAL, "%s must be a bin of float32 or an array of numbers", what);
  }
  *v = f;
  *dim = d;
  return VS_OK;
}

int vs__obj_bytes(vs__call *c, const char *what, const msgpack_object *o, const void **p,
                  size_t *len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  void *copy;

  if (o->type != MSGPACK_OBJECT_MAP)
    return vs__fail(c, VS_EINVAL, "%s must be a map", what);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  if (msgpack_pack_object(&pk, *o) != 0) {
    msgpack_sbuffer_destroy(&sb);
    return vs__fail(c, VS_ENOMEM, "out of memory");
  }
  copy = msgpack_zone_malloc(c->zone, sb.size ? sb.size : 1);
  if (!copy) {
    msgpack_sbuffer_destroy(&sb);
    return vs__fail(c, VS_ENOMEM, "out of memory");
  }
  memcpy(copy, sb.data, sb.size);
  *p = copy;
  *len = sb.size;
  msgpack_sbuffer_destroy(&sb);
  return VS_OK;
}

int vs__arg_filter(vs__call *c, vs_filter **out) {
  const msgpack_object *o = vs__arg(c, "filter");
  const void *p = NULL;
  size_t len = 0;
  int rc;

  *out = NULL;
  if (!o)
    return VS_OK;
  rc = vs__obj_bytes(c, "filter", o, &p, &len);
  if (rc)
    return rc;
  return vs_filter_parse_msgpack(p, len, out, &c->err);
}

int vs__arg_with(vs__call *c, int payload_default, unsigned *with, const char *const **fields,
                 size_t *n_fields) {
  const msgpack_object *o = vs__arg(c, "with_payload");
  int vec = 0;
  int rc;

  *with = 0;
  *fields = NULL;
  *n_fields = 0;
  rc = vs__arg_bool(c, "with_vector", 0, &vec);
  if (rc)
    return rc;
  if (vec)
    *with |= VS_GET_VECTOR;
  if (!o) {
    if (payload_default)
      *with |= VS_GET_PAYLOAD;
    return VS_OK;
  }
  if (o->type == MSGPACK_OBJECT_BOOLEAN) {
    if (o->via.boolean)
      *with |= VS_GET_PAYLOAD;
    return VS_OK;
  }
  if (o->type == MSGPACK_OBJECT_ARRAY) {
    const char **f;

    if (o->via.array.size > VS_PAYLOAD_FIELDS_MAX)
      return vs__fail(c, VS_ETOOLARGE, "with_payload names %u fields, over %d", o->via.array.size,
                      VS_PAYLOAD_FIELDS_MAX);
    f = msgpack_zone_malloc(c->zone, sizeof *f * (o->via.array.size + 1u));
    if (!f)
      return vs__fail(c, VS_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < o->via.array.size; i++) {
      rc = vs__obj_str(c, "with_payload[]", &o->via.array.ptr[i], &f[i]);
      if (rc)
        return rc;
    }
    *with |= VS_GET_PAYLOAD;
    *fields = f;
    *n_fields = o->via.array.size;
    return VS_OK;
  }
  return vs__fail(c, VS_EINVAL, "with_payload must be true, false or an array of field names");
}

void vs__pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);

  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

void vs__pack_id(msgpack_packer *pk, const vs_id *id) {
  if (id->kind == VS_ID_INT) {
    msgpack_pack_uint64(pk, id->num);
  } else {
    msgpack_pack_str(pk, id->len);
    msgpack_pack_str_body(pk, id->str, id->len);
  }
}

void vs__pack_vector(msgpack_packer *pk, const float *v, size_t dim) {
  msgpack_pack_array(pk, dim);
  for (size_t i = 0; i < dim; i++)
    msgpack_pack_float(pk, v[i]);
}

void vs__pack_raw_map(msgpack_packer *pk, const uint8_t *p, size_t len) {
  if (!p || len == 0) {
    msgpack_pack_map(pk, 0);
    return;
  }
  /* The stored payload is already one msgpack map: append its bytes. */
  pk->callback(pk->data, (const char *)p, len);
}

void vs__pack_hits(msgpack_packer *pk, const vs_hit *hits, size_t n, unsigned with,
                   unsigned extra) {
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++) {
    const vs_hit *h = &hits[i];
    size_t pairs = 2 + !!(with & VS_GET_PAYLOAD) + !!(with & VS_GET_VECTOR) +
                   ((extra & VS__HITS_EXPLAIN) ? 4 : 0) + ((extra & VS__HITS_GROUP) ? 1 : 0);

    msgpack_pack_map(pk, pairs);
    vs__pack_cstr(pk, "id");
    vs__pack_id(pk, &h->id);
    vs__pack_cstr(pk, "score");
    msgpack_pack_double(pk, (double)h->score);
    if (with & VS_GET_PAYLOAD) {
      vs__pack_cstr(pk, "payload");
      vs__pack_raw_map(pk, h->payload, h->payload_len);
    }
    if (with & VS_GET_VECTOR) {
      vs__pack_cstr(pk, "vector");
      vs__pack_vector(pk, h->vector, h->dim);
    }
    if (extra & VS__HITS_EXPLAIN) {
      vs__pack_cstr(pk, "vector_rank");
      msgpack_pack_uint32(pk, h->vector_rank);
      vs__pack_cstr(pk, "vector_score");
      msgpack_pack_double(pk, (double)h->vector_score);
      vs__pack_cstr(pk, "text_rank");
      msgpack_pack_uint32(pk, h->text_rank);
      vs__pack_cstr(pk, "text_score");
      msgpack_pack_double(pk, (double)h->text_score);
    }
    if (extra & VS__HITS_GROUP) {
      vs__pack_cstr(pk, "group");
      msgpack_pack_uint32(pk, h->group);
    }
  }
}
