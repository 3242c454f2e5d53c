/*
 * cmd_remote.c: the queries of `vsearch query --connect HOST:PORT`, run by
 * a server through the client of rpc_client.c.
 *
 * tools/cmd_query.c reads the queries and prints the hits; for each query
 * it fills the engine's own parameter struct (vs_search_params,
 * vs_text_params or vs_hybrid_params) and calls the function here that has
 * the shape of the engine's: it packs the parameters as the named
 * arguments of methods search, text_search or hybrid_search (DESIGN.md
 * section 5, server/methods.c), sends them, and turns the hits of the
 * answer back into vs_hit structures, so that the same printer serves both
 * paths and prints the same fields.  Vectors go as bin float32; an
 * argument at its default is left out, so the server applies the same
 * default as the engine.  The filter is sent as a msgpack map: --filter's
 * JSON, converted once in remote_open().
 *
 * A remote owns the hits of its last search: `hits`, the payloads
 * re-encoded into `payloads` (a vs_hit carries a payload as msgpack bytes,
 * and the reply holds it decoded) and the vectors in `floats`.  Ids that
 * are strings point into the client's last response.  All of it lives
 * until the next search, so a caller prints a query's hits before it runs
 * the next.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/rpc_client.h"

/* How deep a --filter's JSON may nest (the server's default limit). */
#define FILTER_DEPTH_MAX 32

struct remote {
  rpc_client *c;
  const char *hostport;
  msgpack_sbuffer filter; /* the filter as a msgpack map; size 0 without one */
  vs_hit *hits;           /* the last search's hits, of capacity hcap */
  size_t hcap;
  size_t *poff; /* hcap offsets of the hits' payloads in `payloads` */
  float *floats;
  size_t fcap;
  msgpack_sbuffer payloads;
};

static int complain(int status, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "vsearch: query: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return status;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);

  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* Pack JSON value `j` as msgpack: objects as maps, arrays as arrays,
 * integers as integers and reals as float64, so the server's filter
 * parser sees the types the local one does.  Nonzero when it nests deeper
 * than FILTER_DEPTH_MAX. */
static int pack_json(msgpack_packer *pk, const json_t *j, int depth) {
  const char *key;
  json_t *v;
  size_t i;

  if (depth > FILTER_DEPTH_MAX)
    return 1;
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    msgpack_pack_map(pk, json_object_size(j));
    json_object_foreach((json_t *)j, key, v) {
      pack_cstr(pk, key);
      if (pack_json(pk, v, depth + 1))
        return 1;
    }
    return 0;
  case JSON_ARRAY:
    msgpack_pack_array(pk, json_array_size(j));
    json_array_foreach(j, i, v) {
      if (pack_json(pk, v, depth + 1))
        return 1;
    }
    return 0;
  case JSON_STRING:
    msgpack_pack_str(pk, json_string_length(j));
    msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
    return 0;
  case JSON_INTEGER:
    msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
    return 0;
  case JSON_REAL:
    msgpack_pack_double(pk, json_real_value(j));
    return 0;
  case JSON_TRUE:
    msgpack_pack_true(pk);
    return 0;
  case JSON_FALSE:
    msgpack_pack_false(pk);
    return 0;
  default:
    msgpack_pack_nil(pk);
    return 0;
  }
}

/* Convert --filter's JSON into r->filter.  Returns 0 or 2 (said why). */
static int convert_filter(remote *r, const char *json) {
  msgpack_packer pk;
  json_error_t jerr;
  json_t *j = json_loads(json, 0, &jerr);
  int rc = 0;

  if (j == NULL)
    return complain(2, "--filter: invalid JSON: %s", jerr.text);
  msgpack_packer_init(&pk, &r->filter, msgpack_sbuffer_write);
  if (!json_is_object(j))
    rc = complain(2, "--filter must be a JSON object");
  else if (pack_json(&pk, j, 0))
    rc = complain(2, "--filter nests deeper than %d levels", FILTER_DEPTH_MAX);
  json_decref(j);
  return rc;
}

/* Read the token as `vsearch serve` does: the first line of the file,
 * without its line end and trailing spaces or tabs. */
static int read_token(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return complain(1, "--token-file %s: %s", path, strerror(errno));
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  n = strlen(buf);
  while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
    buf[--n] = '\0';
  if (n == 0)
    return complain(1, "--token-file %s: the token file is empty", path);
  return 0;
}

static int authenticate(remote *r, const char *token_file) {
  const msgpack_object *res;
  msgpack_packer *pk;
  char token[4096];
  rpc_error e;
  int rc;

  if (read_token(token_file, token, sizeof token))
    return 1;
  pk = rpc_request(r->c, "auth");
  msgpack_pack_map(pk, 1);
  pack_cstr(pk, "token");
  pack_cstr(pk, token);
  rc = rpc_call(r->c, &res, &e);
  memset(token, 0, sizeof token);
  if (rc > 0)
    return complain(1, "%s: auth: %s: %s", r->hostport, e.code, e.message);
  if (rc < 0)
    return complain(1, "%s: %s", r->hostport, e.message);
  return 0;
}

int remote_open(const char *hostport, const char *token_file, const char *filter_json,
                remote **out) {
  rpc_error e;
  remote *r;
  int rc;

  *out = NULL;
  r = calloc(1, sizeof *r);
  if (r == NULL)
    return complain(1, "out of memory");
  r->hostport = hostport;
  msgpack_sbuffer_init(&r->filter);
  msgpack_sbuffer_init(&r->payloads);
  if (filter_json && (rc = convert_filter(r, filter_json)))
    goto fail;
  rc = rpc_connect(hostport, &r->c, &e);
  if (rc) {
    complain(rc, "%s", e.message);
    goto fail;
  }
  if (token_file && (rc = authenticate(r, token_file)))
    goto fail;
  *out = r;
  return 0;

fail:
  remote_close(r);
  return rc;
}

void remote_close(remote *r) {
  if (r == NULL)
    return;
  rpc_close(r->c);
  msgpack_sbuffer_destroy(&r->filter);
  msgpack_sbuffer_destroy(&r->payloads);
  free(r->hits);
  free(r->poff);
  free(r->floats);
  free(r);
}

/* ---- requests ----------------------------------------------------------------------- */

/* The named arguments of a request, packed as they come and counted, so
 * the map's header can go first once all are known. */
typedef struct args {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  uint32_t n;
} args;

static msgpack_packer *arg(args *a, const char *name) {
  a->n++;
  pack_cstr(&a->pk, name);
  return &a->pk;
}

/* The arguments every query method takes: collection, k, ef and nprobe
 * (when set), filter, exclude, with_payload and with_vector. */
static void common_args(args *a, const remote *r, const char *name, size_t k, int ef, int nprobe,
                        const vs_id *exclude, size_t n_exclude, unsigned with,
                        const char *const *fields, size_t n_fields) {
  msgpack_sbuffer_init(&a->sb);
  msgpack_packer_init(&a->pk, &a->sb, msgpack_sbuffer_write);
  a->n = 0;
  pack_cstr(arg(a, "collection"), name);
  msgpack_pack_uint64(arg(a, "k"), (uint64_t)k);
  /* Negative values go as they are: the server refuses them by name. */
  if (ef)
    msgpack_pack_int(arg(a, "ef"), ef);
  if (nprobe)
    msgpack_pack_int(arg(a, "nprobe"), nprobe);
  if (r->filter.size) {
    arg(a, "filter");
    msgpack_sbuffer_write(&a->sb, r->filter.data, r->filter.size);
  }
  if (n_exclude) {
    msgpack_pack_array(arg(a, "exclude"), n_exclude);
    for (size_t i = 0; i < n_exclude; i++) {
      if (exclude[i].kind == VS_ID_INT) {
        msgpack_pack_uint64(&a->pk, exclude[i].num);
      } else {
        msgpack_pack_str(&a->pk, exclude[i].len);
        msgpack_pack_str_body(&a->pk, exclude[i].str, exclude[i].len);
      }
    }
  }
  if (n_fields) {
    msgpack_pack_array(arg(a, "with_payload"), n_fields);
    for (size_t i = 0; i < n_fields; i++)
      pack_cstr(&a->pk, fields[i]);
  } else if (with & VS_GET_PAYLOAD) {
    msgpack_pack_true(arg(a, "with_payload"));
  }
  if (with & VS_GET_VECTOR)
    msgpack_pack_true(arg(a, "with_vector"));
}

/* A query vector as bin: `dim` little-endian float32. */
static void pack_vector(msgpack_packer *pk, const float *v, size_t dim) {
  msgpack_pack_bin(pk, dim * 4);
  for (size_t i = 0; i < dim; i++) {
    unsigned char b[4];
    uint32_t u;

    memcpy(&u, &v[i], sizeof u);
    b[0] = (unsigned char)u;
    b[1] = (unsigned char)(u >> 8);
    b[2] = (unsigned char)(u >> 16);
    b[3] = (unsigned char)(u >> 24);
    msgpack_pack_bin_body(pk, b, 4);
  }
}

/* ---- answers ------------------------------------------------------------------------ */

static int key_is(const msgpack_object *k, const char *name) {
  size_t n = strlen(name);

  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
         memcmp(k->via.str.ptr, name, n) == 0;
}

static int number(const msgpack_object *o, double *out) {
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    *out = (double)o->via.u64;
    return 0;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    *out = (double)o->via.i64;
    return 0;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    *out = o->via.f64;
    return 0;
  default:
    return 1;
  }
}

static int rank(const msgpack_object *o, uint32_t *out) {
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
    return 1;
  *out = (uint32_t)o->via.u64;
  return 0;
}

/* Fill hit h from the hit map o; its vector's components go to f (room
 * checked by the caller).  Nonzero when o is not a hit. */
static int read_hit(remote *r, const msgpack_object *o, vs_hit *h, size_t *poff, float *f) {
  int have_id = 0, have_score = 0;
  double d;

  memset(h, 0, sizeof *h);
  *poff = SIZE_MAX;
  if (o->type != MSGPACK_OBJECT_MAP)
    return 1;
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;

    if (key_is(k, "id")) {
      if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= VS_INT_ID_MAX)
        h->id = vs_id_int(v->via.u64);
      else if (v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0)
        h->id = (vs_id){VS_ID_STR, 0, v->via.str.ptr, v->via.str.size};
      else
        return 1;
      have_id = 1;
    } else if (key_is(k, "score")) {
      if (number(v, &d))
        return 1;
      h->score = (float)d;
      have_score = 1;
    } else if (key_is(k, "payload")) {
      if (v->type != MSGPACK_OBJECT_MAP)
        return 1;
      if (v->via.map.size) {
        msgpack_packer pk;

        *poff = r->payloads.size;
        msgpack_packer_init(&pk, &r->payloads, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *v))
          return 1;
        h->payload_len = r->payloads.size - *poff;
      }
    } else if (key_is(k, "vector")) {
      if (v->type != MSGPACK_OBJECT_ARRAY)
        return 1;
      for (uint32_t j = 0; j < v->via.array.size; j++) {
        if (number(&v->via.array.ptr[j], &d))
          return 1;
        f[j] = (float)d;
      }
      h->vector = f;
      h->dim = v->via.array.size;
    } else if (key_is(k, "vector_rank")) {
      if (rank(v, &h->vector_rank))
        return 1;
    } else if (key_is(k, "text_rank")) {
      if (rank(v, &h->text_rank))
        return 1;
    } else if (key_is(k, "group")) {
      if (rank(v, &h->group))
        return 1;
    } else if (key_is(k, "vector_score") || key_is(k, "text_score")) {
      if (number(v, &d))
        return 1;
      *(key_is(k, "text_score") ? &h->text_score : &h->vector_score) = (float)d;
    }
    /* Any other member is something newer than this client: left out. */
  }
  return !(have_id && have_score);
}

/* The floats that the vectors of hit list `o` hold. */
static size_t count_floats(const msgpack_object *o) {
  size_t n = 0;

  for (uint32_t i = 0; i < o->via.array.size; i++) {
    const msgpack_object *h = &o->via.array.ptr[i];

    if (h->type != MSGPACK_OBJECT_MAP)
      continue;
    for (uint32_t j = 0; j < h->via.map.size; j++)
      if (key_is(&h->via.map.ptr[j].key, "vector") &&
          h->via.map.ptr[j].val.type == MSGPACK_OBJECT_ARRAY)
        n += h->via.map.ptr[j].val.via.array.size;
  }
  return n;
}

/* Turn the result, an array of hit maps, into r->hits. */
static int read_hits(remote *r, const msgpack_object *o, vs_hit **hits, size_t *n, vs_error *err) {
  size_t nf, nused = 0;

  if (o->type != MSGPACK_OBJECT_ARRAY)
    goto bad;
  msgpack_sbuffer_clear(&r->payloads);
  if (o->via.array.size > r->hcap) {
    size_t cap = o->via.array.size;
    vs_hit *h = realloc(r->hits, cap * sizeof *h);
    size_t *p = h ? realloc(r->poff, cap * sizeof *p) : NULL;

    if (h)
      r->hits = h;
    if (p == NULL)
      goto oom;
    r->poff = p;
    r->hcap = cap;
  }
  nf = count_floats(o);
  if (nf > r->fcap) {
    float *f = realloc(r->floats, nf * sizeof *f);

    if (f == NULL)
      goto oom;
    r->floats = f;
    r->fcap = nf;
  }
  for (uint32_t i = 0; i < o->via.array.size; i++) {
    if (read_hit(r, &o->via.array.ptr[i], &r->hits[i], &r->poff[i], r->floats + nused))
      goto bad;
    nused += r->hits[i].dim;
  }
  /* Only now, with every payload packed, has `payloads` stopped moving. */
  for (uint32_t i = 0; i < o->via.array.size; i++)
    if (r->poff[i] != SIZE_MAX)
      r->hits[i].payload = (const uint8_t *)r->payloads.data + r->poff[i];
  *hits = r->hits;
  *n = o->via.array.size;
  return 0;

oom:
  snprintf(err->message, sizeof err->message, "out of memory reading the hits");
  return 1;
bad:
  snprintf(err->message, sizeof err->message, "%s: the server's answer is not a list of hits",
           r->hostport);
  return 1;
}

/* Send the request of `method` with arguments `a`, and read its hits. */
static int call(remote *r, const char *method, args *a, vs_hit **hits, size_t *n, vs_error *err) {
  const msgpack_object *res;
  msgpack_packer *pk = rpc_request(r->c, method);
  rpc_error e;
  int rc;

  *hits = NULL;
  *n = 0;
  msgpack_pack_map(pk, a->n);
  rc = msgpack_sbuffer_write(pk->data, a->sb.data, a->sb.size);
  msgpack_sbuffer_destroy(&a->sb);
  if (rc) {
    snprintf(err->message, sizeof err->message, "out of memory");
    return 1;
  }
  rc = rpc_call(r->c, &res, &e);
  if (rc > 0) {
    /* The engine's vector checks name a point of a batch; here there is
     * one query, which the caller names. */
    size_t skip = strncmp(e.message, "point 0: ", 9) == 0 ? 9 : 0;

    snprintf(err->message, sizeof err->message, "%.31s: %.220s", e.code, e.message + skip);
    return 1;
  }
  if (rc < 0) {
    snprintf(err->message, sizeof err->message, "%.30s: %.220s", r->hostport, e.message);
    return 1;
  }
  return read_hits(r, res, hits, n, err);
}

int remote_search(remote *r, const char *name, const vs_search_params *p, vs_hit **hits, size_t *n,
                  vs_error *err) {
  args a;

  common_args(&a, r, name, p->k, p->ef, p->nprobe, p->exclude, p->n_exclude, p->with,
              p->payload_fields, p->n_payload_fields);
  pack_vector(arg(&a, "vector"), p->vector, p->dim);
  if (p->exact)
    msgpack_pack_true(arg(&a, "exact"));
  return call(r, "search", &a, hits, n, err);
}

/* Text field weights: {field: weight}. */
static void pack_field_weights(msgpack_packer *pk, const vs_field_weight *w, size_t n) {
  msgpack_pack_map(pk, n);
  for (size_t i = 0; i < n; i++) {
    pack_cstr(pk, w[i].field);
    msgpack_pack_double(pk, (double)w[i].weight);
  }
}

int remote_text_search(remote *r, const char *name, const vs_text_params *p, vs_hit **hits,
                       size_t *n, vs_error *err) {
  args a;

  common_args(&a, r, name, p->k, 0, 0, p->exclude, p->n_exclude, p->with, p->payload_fields,
              p->n_payload_fields);
  msgpack_pack_str(arg(&a, "query"), p->len);
  msgpack_pack_str_body(&a.pk, p->text, p->len);
  if (p->n_weights)
    pack_field_weights(arg(&a, "weights"), p->weights, p->n_weights);
  return call(r, "text_search", &a, hits, n, err);
}

int remote_hybrid_search(remote *r, const char *name, const vs_hybrid_params *p, vs_hit **hits,
                         size_t *n, vs_error *err) {
  args a;

  common_args(&a, r, name, p->k, p->ef, p->nprobe, p->exclude, p->n_exclude, p->with,
              p->payload_fields, p->n_payload_fields);
  if (p->vector)
    pack_vector(arg(&a, "vector"), p->vector, p->dim);
  if (p->text) {
    msgpack_pack_str(arg(&a, "query"), p->len);
    msgpack_pack_str_body(&a.pk, p->text, p->len);
  }
  if (p->fusion == VS_FUSION_WEIGHTED)
    pack_cstr(arg(&a, "fusion"), "weighted");
  if (p->rrf_k > 0)
    msgpack_pack_double(arg(&a, "rrf_k"), p->rrf_k);
  if (p->vector_weight > 0 || p->text_weight > 0) {
    msgpack_pack_map(arg(&a, "weights"), 2);
    pack_cstr(&a.pk, "vector");
    msgpack_pack_double(&a.pk, p->vector_weight);
    pack_cstr(&a.pk, "text");
    msgpack_pack_double(&a.pk, p->text_weight);
  }
  if (p->n_weights)
    pack_field_weights(arg(&a, "text_weights"), p->weights, p->n_weights);
  if (p->candidates)
    msgpack_pack_uint64(arg(&a, "candidates"), (uint64_t)p->candidates);
  if (p->group_by)
    pack_cstr(arg(&a, "group_by"), p->group_by);
  if (p->group_size)
    msgpack_pack_uint64(arg(&a, "group_size"), (uint64_t)p->group_size);
  if (p->mmr_lambda > 0) {
    msgpack_pack_map(arg(&a, "mmr"), 2);
    pack_cstr(&a.pk, "lambda");
    msgpack_pack_double(&a.pk, p->mmr_lambda);
    pack_cstr(&a.pk, "candidates");
    msgpack_pack_uint64(&a.pk, (uint64_t)p->mmr_candidates);
  }
  if (p->explain)
    msgpack_pack_true(arg(&a, "explain"));
  return call(r, "hybrid_search", &a, hits, n, err);
}
