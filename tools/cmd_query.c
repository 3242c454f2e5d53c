/*
 * cmd_query.c: `vsearch query` and `vsearch build`.
 *
 * query reads every query up front.  Vectors go into one row-major array
 * (a qset): from --vector, from a texmex or IDX file through
 * ds_read_vectors(), or from JSON lines of numbers.  Their dim is checked
 * against the collection's, then one vs_search() runs per query.  Texts
 * (a tset) come from --text, or from --text-file with one query a line,
 * and run through vs_text_search() (BM25).  Each result is printed as soon
 * as it is known: one JSON object a line with --json (DESIGN.md section
 * 7), a small table otherwise, the same for vectors and texts.  Queries
 * are numbered from 0 in the order they were read, whatever --rows
 * selected.  A failed search stops the command: the results printed before
 * it stay on stdout, the error goes to stderr and the exit status is 1.
 * Hybrid search (a vector and a text source together) is refused for now.
 *
 * build calls vs_collection_rebuild() and reports the index it made.
 *
 * Exit statuses, as in tools/vsearch.c: 0 success, 1 the work failed, 2 a
 * usage error.  Nothing here calls exit().
 */
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/vsearch.h"
#include "tools/commands.h"
#include "tools/datasets.h"

#define DEFAULT_K 10
/* How many msgpack levels the payload converter follows.  Stored payloads
 * are at most VS_PAYLOAD_DEPTH deep (vs_upsert validated them); deeper
 * values, which cannot occur, come out as null rather than recursing. */
#define PAYLOAD_DEPTH_LIMIT 8
/* Scores and vector components: %.9g, enough to give a float32 back. */
#define JSON_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

/* Print "vsearch: CMD: message" to stderr and return `status`. */
static int complain(int status, const char *cmd, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "vsearch: %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return status;
}

static const char *err_text(int rc, const vs_error *err) {
  return err->code ? err->message : vs_strerror(rc);
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open database `dir` for reading and writing (flags 0: the background
 * sealer may persist segments) and describe collection `name`.  On failure
 * print why and return 1 with nothing left open. */
static int open_collection(const char *cmd, const char *dir, const char *name, vs_db **db,
                           vs_collection_info **info) {
  vs_open_options o = {0, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  int rc;

  *db = NULL;
  *info = NULL;
  rc = vs_db_open(dir, &o, db, &err);
  if (rc)
    return complain(1, cmd, "%s: %s", dir, err_text(rc, &err));
  rc = vs_collection_describe(*db, name, info, &err);
  if (rc) {
    vs_db_close(*db);
    *db = NULL;
    return complain(1, cmd, "%s", err_text(rc, &err));
  }
  return 0;
}

/* Parse the `n` bytes at `s`, all decimal digits (at least one), as a
 * size_t; nonzero when they are not, or overflow. */
static int parse_size(const char *s, size_t n, size_t *out) {
  size_t v = 0;

  if (n == 0)
    return 1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 1;
    if (v > (SIZE_MAX - (size_t)(s[i] - '0')) / 10)
      return 1;
    v = v * 10 + (size_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

/* Parse an int option value (sign allowed: vs_search() judges the range). */
static int parse_int(const char *s, int *out) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < INT_MIN || v > INT_MAX)
    return 1;
  *out = (int)v;
  return 0;
}

/* ---- build -------------------------------------------------------------------------- */

int cmd_build(int argc, char **argv) {
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *info;
  const char *spec = NULL;
  int threads = 0, rc;
  double start;
  vs_db *db;

  if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
    return complain(2, "build", "usage: vsearch build DIR NAME [--index SPEC] [--threads N]");
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

    if (strcmp(opt, "--index") != 0 && strcmp(opt, "--threads") != 0)
      return complain(2, "build", "unknown option %s", opt);
    if (val == NULL)
      return complain(2, "build", "%s needs a value", opt);
    i++;
    if (strcmp(opt, "--index") == 0)
      spec = val;
    else if (parse_int(val, &threads) || threads < 0)
      return complain(2, "build", "--threads must be 0 (all cores) or more");
  }

  if (open_collection("build", argv[0], argv[1], &db, &info))
    return 1;
  if (isatty(STDERR_FILENO))
    fprintf(stderr, "building %s: %llu points, index %s ...\n", info->name,
            (unsigned long long)info->count, spec ? spec : info->index);
  vs_free(info);
  info = NULL;

  start = now_s();
  rc = vs_collection_rebuild(db, argv[1], spec, threads, &err);
  if (rc == VS_OK)
    rc = vs_collection_describe(db, argv[1], &info, &err);
  if (rc) {
    vs_db_close(db);
    return complain(1, "build", "%s", err_text(rc, &err));
  }
  printf("built %s: %llu points, index %s, in %.2f s\n", info->name,
         (unsigned long long)info->count, info->index, now_s() - start);
  vs_free(info);
  vs_db_close(db);
  return 0;
}

/* ---- query vectors ------------------------------------------------------------------ */

/* The queries: rows x dim floats, row-major, malloc'd. */
typedef struct qset {
  float *v;
  size_t rows, dim;
} qset;

/* Parse --vector "x,y,z" (optionally in brackets, spaces allowed).  Values
 * strtof() reads as inf or nan are kept: vs_search() refuses them by name. */
static int parse_inline(const char *s, qset *q) {
  size_t n = 1, k = 0;
  const char *p = s;

  for (const char *c = s; *c; c++)
    n += *c == ',';
  q->v = malloc(n * sizeof(float));
  if (q->v == NULL)
    return complain(1, "query", "out of memory");
  while (*p == ' ')
    p++;
  if (*p == '[')
    p++;
  for (;;) {
    char *end;
    float x = strtof(p, &end);

    if (end == p)
      goto bad;
    q->v[k++] = x;
    p = end;
    while (*p == ' ')
      p++;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == ']')
      for (p++; *p == ' '; p++)
        ;
    if (*p)
      goto bad;
    break;
  }
  q->rows = 1;
  q->dim = k;
  return 0;

bad:
  free(q->v);
  q->v = NULL;
  return complain(2, "query", "--vector must be numbers separated by commas, e.g. '0.1,0.2,0.3'");
}

/* Whether `path` names JSON lines (looking through a trailing ".gz"). */
static int is_json_lines(const char *path) {
  static const char *const exts[] = {".json", ".jsonl", ".ndjson"};
  size_t n = strlen(path);

  if (n > 3 && strcmp(path + n - 3, ".gz") == 0)
    n -= 3;
  for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
    size_t e = strlen(exts[i]);
    if (n > e && strncmp(path + n - e, exts[i], e) == 0)
      return 1;
  }
  return 0;
}

/* Read one line of any length, without its newline, into *buf (grown as
 * needed).  Returns 1 for a line, 0 at the end, -1 on a read error and -2
 * when out of memory. */
static int read_line(gzFile f, char **buf, size_t *cap, size_t *len) {
  *len = 0;
  for (;;) {
    size_t room;
    int e;

    if (*cap - *len < 2) {
      size_t next = *cap ? *cap * 2 : 4096;
      char *b = next > (size_t)INT_MAX ? NULL : realloc(*buf, next);
      if (b == NULL)
        return -2;
      *buf = b;
      *cap = next;
    }
    room = *cap - *len;
    if (gzgets(f, *buf + *len, (int)room) == NULL) {
      gzerror(f, &e);
      if (e != Z_OK)
        return -1;
      return *len > 0;
    }
    *len += strlen(*buf + *len);
    if (*len && (*buf)[*len - 1] == '\n') {
      (*buf)[--*len] = '\0';
      return 1;
    }
    if (gzeof(f))
      return *len > 0;
  }
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return 0;
  return 1;
}

/* Append the numbers of JSON array `a` (from line `line`) to q as a row. */
static int add_json_row(const char *path, size_t line, const json_t *a, qset *q, size_t *cap) {
  size_t n = json_array_size(a);

  if (n == 0)
    return complain(1, "query", "%s: line %zu: the vector is empty", path, line);
  if (q->rows && n != q->dim)
    return complain(1, "query",
                    "%s: line %zu: vector has %zu components, the lines before have %zu", path,
                    line, n, q->dim);
  if (q->rows == *cap) {
    size_t next = *cap ? *cap * 2 : 16;
    float *v = next > SIZE_MAX / sizeof(float) / n ? NULL : realloc(q->v, next * n * sizeof(float));
    if (v == NULL)
      return complain(1, "query", "%s: out of memory at line %zu", path, line);
    q->v = v;
    *cap = next;
  }
  for (size_t j = 0; j < n; j++) {
    const json_t *x = json_array_get(a, j);
    if (!json_is_number(x))
      return complain(1, "query", "%s: line %zu: component %zu is not a number", path, line, j);
    q->v[q->rows * n + j] = (float)json_number_value(x);
  }
  q->dim = n;
  q->rows++;
  return 0;
}

/*
 * Read rows [begin, end) of a JSON lines file (end SIZE_MAX: to the end).
 * A row is a non-blank line holding an array of numbers; an object with a
 * "vector" array (a line of an import file) is taken too.  Rows before
 * `begin` are skipped unparsed and reading stops at `end`, so a slice of a
 * large file costs only the lines up to it.
 */
static int read_json_lines(const char *path, size_t begin, size_t end, qset *q) {
  size_t cap = 0, len = 0, bufcap = 0, line = 0, row = 0;
  char *buf = NULL;
  gzFile f;
  int rc = 1, got;

  errno = 0;
  f = gzopen(path, "rb");
  if (f == NULL)
    return complain(1, "query", "%s: %s", path, errno ? strerror(errno) : "cannot open");
  while (row < end && (got = read_line(f, &buf, &bufcap, &len)) != 0) {
    json_error_t jerr;
    json_t *root, *a;

    if (got < 0) {
      int e = 0;
      const char *why = got == -2 ? "out of memory" : gzerror(f, &e);
      complain(1, "query", "%s: after line %zu: %s", path, line,
               got == -1 && e == Z_ERRNO ? strerror(errno) : why);
      goto done;
    }
    line++;
    if (blank(buf, len))
      continue;
    if (row++ < begin)
      continue;
    root = json_loadb(buf, len, 0, &jerr);
    if (root == NULL) {
      complain(1, "query", "%s: line %zu: invalid JSON: %s", path, line, jerr.text);
      goto done;
    }
    a = json_is_object(root) ? json_object_get(root, "vector") : root;
    if (!json_is_array(a)) {
      json_decref(root);
      complain(1, "query",
               "%s: line %zu: expected an array of numbers (or an object with a \"vector\" array)",
               path, line);
      goto done;
    }
    rc = add_json_row(path, line, a, q, &cap);
    json_decref(root);
    if (rc)
      goto done;
    rc = 1;
  }
  if (end == SIZE_MAX && begin > row) {
    complain(1, "query", "%s: rows %zu: asked, the file has %zu rows", path, begin, row);
    goto done;
  }
  if (end != SIZE_MAX && end > row) {
    complain(1, "query", "%s: rows %zu:%zu asked, the file has %zu rows", path, begin, end, row);
    goto done;
  }
  rc = 0;

done:
  if (rc) {
    free(q->v);
    q->v = NULL;
    q->rows = q->dim = 0;
  }
  free(buf);
  gzclose(f);
  return rc;
}

static int read_queries(const char *path, const char *format, size_t begin, size_t end, qset *q) {
  char msg[512];

  if (format ? strcmp(format, "jsonl") == 0 || strcmp(format, "json") == 0 : is_json_lines(path))
    return read_json_lines(path, begin, end, q);
  if (ds_read_vectors(path, format, begin, end, &q->v, &q->rows, &q->dim, msg, sizeof(msg)))
    return complain(1, "query", "%s", msg);
  return 0;
}

/* ---- query texts -------------------------------------------------------------------- */

/* The text queries: n of them, query i the len[i] bytes at text[i] (not
 * NUL-terminated).  `data` is the --text-file contents the texts point
 * into (NULL for --text, whose one text is the argument itself). */
typedef struct tset {
  char *data;
  const char **text;
  size_t *len;
  size_t n;
} tset;

static void tset_free(tset *t) {
  free(t->data);
  free(t->text);
  free(t->len);
  memset(t, 0, sizeof(*t));
}

static int tset_alloc(tset *t, size_t n) {
  t->text = malloc((n ? n : 1) * sizeof(*t->text));
  t->len = malloc((n ? n : 1) * sizeof(*t->len));
  if (t->text == NULL || t->len == NULL)
    return complain(1, "query", "out of memory");
  return 0;
}

/* Read all of `path` (through zlib, so a .gz file is read uncompressed)
 * into a malloc'd buffer of *n bytes.  Whole-file reading, rather than
 * line by line with gzgets(), keeps a NUL byte inside a line from cutting
 * it short: U+0000 is valid UTF-8, so it is the engine's to judge. */
static int slurp(const char *path, char **out, size_t *n) {
  size_t cap = 0, len = 0;
  char *buf = NULL;
  gzFile f;
  int got;

  errno = 0;
  f = gzopen(path, "rb");
  if (f == NULL)
    return complain(1, "query", "%s: %s", path, errno ? strerror(errno) : "cannot open");
  do {
    if (cap - len < 65536) {
      size_t next = cap ? cap * 2 : 65536;
      char *b = next < cap ? NULL : realloc(buf, next);
      if (b == NULL) {
        free(buf);
        gzclose(f);
        return complain(1, "query", "%s: out of memory after %zu bytes", path, len);
      }
      buf = b;
      cap = next;
    }
    got = gzread(f, buf + len, 65536); /* cap - len >= 65536 here */
    if (got < 0) {
      int e = 0;
      const char *why = gzerror(f, &e);
      complain(1, "query", "%s: after %zu bytes: %s", path, len,
               e == Z_ERRNO ? strerror(errno) : why);
      free(buf);
      gzclose(f);
      return 1;
    }
    len += (size_t)got;
  } while (got > 0);
  gzclose(f);
  *out = buf;
  *n = len;
  return 0;
}

/*
 * Read --text-file: one query a line, in UTF-8.  Every line is a query,
 * an empty one too (it finds nothing), so query i is always line i + 1; a
 * newline at the very end does not start another.  A line's trailing CR
 * (a file written on Windows) and a UTF-8 byte order mark at the start of
 * the file are not part of any query.  A line longer than
 * VS_QUERY_TEXT_MAX bytes is refused here, naming it, before any query
 * runs; whether the bytes are valid UTF-8 is left to vs_text_search(),
 * which says so when that query's turn comes.
 */
static int read_text_file(const char *path, tset *t) {
  size_t size = 0, n = 0, start = 0;
  char *p;

  memset(t, 0, sizeof(*t));
  if (slurp(path, &t->data, &size))
    return 1;
  p = t->data;
  if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
    start = 3;
  for (size_t i = start; i < size; i++)
    n += p[i] == '\n';
  n += size > start && p[size - 1] != '\n';
  if (tset_alloc(t, n))
    goto fail;
  while (start < size) {
    char *nl = memchr(p + start, '\n', size - start);
    size_t len = nl ? (size_t)(nl - (p + start)) : size - start;

    if (len && p[start + len - 1] == '\r')
      len--;
    if (len > VS_QUERY_TEXT_MAX) {
      complain(1, "query", "%s: line %zu: the query has %zu bytes, the limit is %u", path, t->n + 1,
               len, VS_QUERY_TEXT_MAX);
      goto fail;
    }
    t->text[t->n] = p + start;
    t->len[t->n++] = len;
    start = nl ? (size_t)(nl - p) + 1 : size;
  }
  return 0;

fail:
  tset_free(t);
  return 1;
}

/* Whether the n bytes at s are a plain decimal number: digits with at
 * most one '.', at least one digit, and an optional exponent.  No sign,
 * no "inf" or "nan", no hexadecimal, no spaces: what strtod() accepts
 * beyond that is more likely a typing slip than a weight. */
static int decimal(const char *s) {
  size_t digits = 0;

  for (; *s >= '0' && *s <= '9'; s++)
    digits++;
  if (*s == '.')
    for (s++; *s >= '0' && *s <= '9'; s++)
      digits++;
  if (digits == 0)
    return 0;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    if (*s < '0' || *s > '9')
      return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return *s == '\0';
}

/*
 * Parse --weights "field=w,field=w,...": a comma-separated list of field
 * names each with a weight, a finite decimal number >= 0 (0 ignores the
 * field).  The name is everything before the last '=' of its item, so it
 * may hold an '=' itself; it may not be empty, nor named twice.  Whether
 * it is one of the collection's text fields is vs_text_search()'s to say.
 * *buf receives the copy of `s` the field names point into.  Returns 0, or
 * 2 (a usage error) after saying what is wrong.
 */
static int parse_weights(const char *s, char **buf, vs_field_weight **out, size_t *n) {
  static const char *const shape =
      "--weights must be field=weight pairs separated by commas, e.g. 'title=2,body=1'";
  size_t cap = 1;
  char *item;

  *buf = NULL;
  *out = NULL;
  *n = 0;
  for (const char *c = s; *c; c++)
    cap += *c == ',';
  *buf = strdup(s);
  *out = malloc(cap * sizeof(**out));
  if (*buf == NULL || *out == NULL)
    return complain(1, "query", "out of memory");
  item = *buf;
  for (size_t i = 0; i < cap; i++) {
    char *comma = strchr(item, ','), *eq;
    double w;

    if (comma)
      *comma = '\0';
    eq = strrchr(item, '=');
    if (eq == NULL || eq == item)
      return complain(2, "query", "%s; '%s' is not one", shape, item);
    *eq = '\0';
    if (!decimal(eq + 1))
      return complain(2, "query", "--weights: the weight of '%s' must be a number >= 0, not '%s'",
                      item, eq + 1);
    w = strtod(eq + 1, NULL);
    if (!(w <= FLT_MAX))
      return complain(2, "query", "--weights: the weight of '%s' is too large", item);
    for (size_t j = 0; j < *n; j++)
      if (strcmp((*out)[j].field, item) == 0)
        return complain(2, "query", "--weights names '%s' twice", item);
    (*out)[(*n)++] = (vs_field_weight){item, (float)w};
    item = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* ---- results ------------------------------------------------------------------------ */

/* Convert a msgpack object to JSON: maps (string keys) to objects, arrays
 * to arrays, scalars to scalars.  Integers above 2^63-1, which JSON
 * integers here cannot hold, become reals; bin and ext (never in a
 * validated payload) become null.  NULL when out of memory. */
static json_t *mp_to_json(const msgpack_object *o, int depth) {
  json_t *j;

  if (depth > PAYLOAD_DEPTH_LIMIT)
    return json_null();
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    return json_null();
  case MSGPACK_OBJECT_BOOLEAN:
    return json_boolean(o->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return o->via.u64 <= (uint64_t)INT64_MAX ? json_integer((json_int_t)o->via.u64)
                                             : json_real((double)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return json_integer((json_int_t)o->via.i64);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
  case MSGPACK_OBJECT_STR:
    return json_stringn(o->via.str.ptr, o->via.str.size);
  case MSGPACK_OBJECT_ARRAY:
    j = json_array();
    for (uint32_t i = 0; j && i < o->via.array.size; i++)
      if (json_array_append_new(j, mp_to_json(&o->via.array.ptr[i], depth + 1))) {
        json_decref(j);
        j = NULL;
      }
    return j;
  case MSGPACK_OBJECT_MAP:
    j = json_object();
    for (uint32_t i = 0; j && i < o->via.map.size; i++) {
      const msgpack_object_kv *kv = &o->via.map.ptr[i];
      json_t *v;
      if (kv->key.type != MSGPACK_OBJECT_STR)
        continue;
      v = mp_to_json(&kv->val, depth + 1);
      if (json_object_setn_new(j, kv->key.via.str.ptr, kv->key.via.str.size, v)) {
        json_decref(j);
        j = NULL;
      }
    }
    return j;
  default:
    return json_null();
  }
}

/* The payload of a hit as JSON ({} when it has none); NULL on failure. */
static json_t *payload_json(const vs_hit *h) {
  msgpack_unpacked u;
  size_t off = 0;
  json_t *j = NULL;

  if (h->payload == NULL || h->payload_len == 0)
    return json_object();
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)h->payload, h->payload_len, &off) ==
      MSGPACK_UNPACK_SUCCESS)
    j = mp_to_json(&u.data, 0);
  msgpack_unpacked_destroy(&u);
  return j;
}

static json_t *id_json(const vs_id *id) {
  return id->kind == VS_ID_INT ? json_integer((json_int_t)id->num) : json_stringn(id->str, id->len);
}

/* {"id": ..., "score": ..., ["payload": {...},] ["vector": [...]]} or NULL
 * when out of memory (or a payload cannot be decoded). */
static json_t *hit_json(const vs_hit *h, unsigned with) {
  json_t *o = json_object();

  if (o == NULL || json_object_set_new(o, "id", id_json(&h->id)) ||
      json_object_set_new(o, "score", json_real((double)h->score)))
    goto fail;
  if ((with & VS_GET_PAYLOAD) && json_object_set_new(o, "payload", payload_json(h)))
    goto fail;
  if (with & VS_GET_VECTOR) {
    json_t *v = json_array();
    for (uint32_t j = 0; v && j < h->dim; j++)
      if (json_array_append_new(v, json_real((double)h->vector[j]))) {
        json_decref(v);
        v = NULL;
      }
    if (json_object_set_new(o, "vector", v))
      goto fail;
  }
  return o;

fail:
  json_decref(o);
  return NULL;
}

/* One line: {"query": i, "hits": [...], "plan": "..."}. */
static int print_json(size_t qi, const vs_hit *hits, size_t n, const vs_search_info *info,
                      unsigned with) {
  json_t *o = json_object(), *a = json_array();
  char *s = NULL;

  if (o == NULL || a == NULL || json_object_set_new(o, "query", json_integer((json_int_t)qi)) ||
      json_object_set(o, "hits", a))
    goto fail;
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(a, hit_json(&hits[i], with)))
      goto fail;
  if (json_object_set_new(o, "plan", json_string(info->plan)))
    goto fail;
  s = json_dumps(o, JSON_FLAGS);
  if (s == NULL)
    goto fail;
  puts(s);
  free(s);
  json_decref(a);
  json_decref(o);
  return 0;

fail:
  json_decref(a);
  json_decref(o);
  return complain(1, "query", "query %zu: out of memory formatting the results", qi);
}

/* A member of a hit's JSON object as text ("-" when it cannot be). */
static void print_member(const char *fmt, const json_t *o, const char *key) {
  char *s = json_dumps(json_object_get(o, key), JSON_FLAGS | JSON_ENCODE_ANY);

  printf(fmt, s ? s : "-");
  free(s);
}

/* A readable block: a header with the plan, then rank, id, score (and the
 * payload and the vector when asked) a hit a line; a blank line before
 * every block but the first. */
static int print_table(size_t qi, const vs_hit *hits, size_t n, const vs_search_info *info,
                       unsigned with) {
  int score_w = with ? 15 : 0; /* pad the score only when columns follow */

  printf("%squery %zu: %zu hit%s, plan %s (%u segment%s, %llu fresh, %llu candidates)\n",
         qi ? "\n" : "", qi, n, n == 1 ? "" : "s", info->plan, info->segments,
         info->segments == 1 ? "" : "s", (unsigned long long)info->fresh,
         (unsigned long long)info->candidates);
  if (n)
    printf("  %4s  %-20s  %-*s%s%s\n", "rank", "id", score_w, "score",
           with & VS_GET_PAYLOAD ? "  payload" : "", with & VS_GET_VECTOR ? "  vector" : "");
  for (size_t i = 0; i < n; i++) {
    json_t *h = hit_json(&hits[i], with);

    if (h == NULL)
      return complain(1, "query", "query %zu: out of memory formatting the results", qi);
    printf("  %4zu  ", i + 1);
    print_member("%-20s", h, "id");
    printf("  %-*.9g", score_w, (double)hits[i].score);
    if (with & VS_GET_PAYLOAD)
      print_member("  %s", h, "payload");
    if (with & VS_GET_VECTOR)
      print_member("  %s", h, "vector");
    printf("\n");
    json_decref(h);
  }
  return 0;
}

/* ---- query -------------------------------------------------------------------------- */

typedef struct query_args {
  const char *dir, *name;
  const char *file, *format, *inline_vec, *rows, *filter;
  const char *text, *text_file, *weights;
  const char *vector_knob; /* the first of --exact, --ef, --nprobe given */
  size_t row_begin, row_end;
  vs_search_params p; /* k, with and filter serve text queries too */
  int json;
} query_args;

/* Parse --rows A:B, either side possibly empty, with A <= B. */
static int parse_rows(const char *s, size_t *begin, size_t *end) {
  const char *colon = strchr(s, ':');

  *begin = 0;
  *end = SIZE_MAX;
  if (colon == NULL)
    return complain(2, "query", "--rows must be A:B (rows A to B-1; either side may be empty)");
  if ((colon > s && parse_size(s, (size_t)(colon - s), begin)) ||
      (colon[1] && parse_size(colon + 1, strlen(colon + 1), end)))
    return complain(2, "query", "--rows must be A:B (rows A to B-1; either side may be empty)");
  if (*begin > *end)
    return complain(2, "query", "--rows %s: the first row is after the end", s);
  return 0;
}

static int parse_query_args(int argc, char **argv, query_args *a) {
  static const char *const later[] = {"--fusion", "--candidates", "--explain"};
  static const char *const valued[] = {"--vector-file", "--format",    "--vector", "--rows",
                                       "--k",           "--ef",        "--nprobe", "--filter",
                                       "--text",        "--text-file", "--weights"};

  memset(a, 0, sizeof(*a));
  a->p.k = DEFAULT_K;
  a->row_end = SIZE_MAX;
  if (argc >= 1 && strcmp(argv[0], "--connect") == 0)
    return complain(2, "query", "querying through a server (--connect) is not supported yet");
  if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
    return complain(2, "query",
                    "usage: vsearch query DIR NAME --vector-file F | --vector X,Y,... | --text Q | "
                    "--text-file F");
  a->dir = argv[0];
  a->name = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    int known;

    if (strcmp(opt, "--exact") == 0) {
      a->p.exact = 1;
      if (a->vector_knob == NULL)
        a->vector_knob = opt;
      continue;
    }
    if (strcmp(opt, "--json") == 0) {
      a->json = 1;
      continue;
    }
    if (strcmp(opt, "--with-payload") == 0) {
      a->p.with |= VS_GET_PAYLOAD;
      continue;
    }
    if (strcmp(opt, "--with-vector") == 0) {
      a->p.with |= VS_GET_VECTOR;
      continue;
    }
    for (size_t j = 0; j < sizeof(later) / sizeof(later[0]); j++)
      if (strcmp(opt, later[j]) == 0)
        return complain(2, "query", "hybrid search (%s) is not supported yet", opt);
    known = 0;
    for (size_t j = 0; j < sizeof(valued) / sizeof(valued[0]); j++)
      known |= strcmp(opt, valued[j]) == 0;
    if (!known)
      return complain(2, "query", "unknown option %s", opt);
    if (val == NULL)
      return complain(2, "query", "%s needs a value", opt);
    i++;
    if (strcmp(opt, "--vector-file") == 0) {
      a->file = val;
    } else if (strcmp(opt, "--format") == 0) {
      a->format = val;
    } else if (strcmp(opt, "--vector") == 0) {
      a->inline_vec = val;
    } else if (strcmp(opt, "--filter") == 0) {
      a->filter = val;
    } else if (strcmp(opt, "--text") == 0) {
      a->text = val;
    } else if (strcmp(opt, "--text-file") == 0) {
      a->text_file = val;
    } else if (strcmp(opt, "--weights") == 0) {
      a->weights = val;
    } else if (strcmp(opt, "--rows") == 0) {
      a->rows = val;
      if (parse_rows(val, &a->row_begin, &a->row_end))
        return 2;
    } else if (strcmp(opt, "--k") == 0) {
      if (val[0] == '\0' || strspn(val, "0123456789") != strlen(val))
        return complain(2, "query", "--k must be a whole number (1..%d)", VS_K_MAX);
      /* Out of range values go to vs_search(), which says what the range
       * is; one too large for a size_t is simply too large. */
      if (parse_size(val, strlen(val), &a->p.k))
        a->p.k = SIZE_MAX;
    } else {
      if (a->vector_knob == NULL)
        a->vector_knob = opt;
      if (strcmp(opt, "--ef") == 0) {
        if (parse_int(val, &a->p.ef))
          return complain(2, "query", "--ef must be an integer");
      } else if (parse_int(val, &a->p.nprobe)) { /* --nprobe */
        return complain(2, "query", "--nprobe must be an integer");
      }
    }
  }
  if (a->file && a->inline_vec)
    return complain(2, "query", "give either --vector-file or --vector, not both");
  if (a->text && a->text_file)
    return complain(2, "query", "give either --text or --text-file, not both");
  /* Fusing a vector and a text ranking is a later step (DESIGN.md 7). */
  if ((a->file || a->inline_vec) && (a->text || a->text_file))
    return complain(2, "query",
                    "hybrid search (%s with %s) is not supported yet; give a vector or a text "
                    "source, not both",
                    a->file ? "--vector-file" : "--vector", a->text ? "--text" : "--text-file");
  if (a->file == NULL && a->inline_vec == NULL && a->text == NULL && a->text_file == NULL)
    return complain(2, "query",
                    "no queries: give --vector-file F (fvecs, bvecs, ivecs, idx or JSON lines), "
                    "--vector 'x,y,...', --text Q or --text-file F (one query a line)");
  if (a->rows && a->file == NULL)
    return complain(2, "query", "--rows selects rows of --vector-file");
  if (a->format && a->file == NULL)
    return complain(2, "query", "--format describes --vector-file");
  /* BM25 top-k is exact and has no index knobs: refuse them rather than
   * let a user believe they changed something. */
  if (a->vector_knob && a->file == NULL && a->inline_vec == NULL)
    return complain(2, "query", "%s tunes vector search; a text query has nothing to tune",
                    a->vector_knob);
  if (a->weights && a->text == NULL && a->text_file == NULL)
    return complain(2, "query", "--weights weighs the text fields of --text or --text-file");
  return 0;
}

/* Where query qi came from, for error messages. */
static void query_origin(const query_args *a, size_t qi, char *buf, size_t cap) {
  if (a->text_file)
    snprintf(buf, cap, "query %zu (line %zu of %s)", qi, qi + 1, a->text_file);
  else if (a->text)
    snprintf(buf, cap, "query %zu (--text)", qi);
  else if (a->file)
    snprintf(buf, cap, "query %zu (row %zu of %s)", qi, a->row_begin + qi, a->file);
  else
    snprintf(buf, cap, "query %zu (--vector)", qi);
}

/* Report search qi's failure `rc`: where the query came from, then why. */
static int search_failed(const query_args *a, size_t qi, int rc, const vs_error *err) {
  const char *why = err_text(rc, err);
  char where[512];

  query_origin(a, qi, where, sizeof(where));
  /* The vector checks share vs_upsert's wording, which names a point of
   * the batch; here there is one query and `where` names it. */
  if (strncmp(why, "point 0: ", 9) == 0)
    why += 9;
  return complain(1, "query", "%s: %s", where, why);
}

/* Print query qi's hits, then release them. */
static int print_hits(const query_args *a, size_t qi, vs_hit *hits, size_t n,
                      const vs_search_info *si) {
  int rc =
      a->json ? print_json(qi, hits, n, si, a->p.with) : print_table(qi, hits, n, si, a->p.with);

  vs_free(hits);
  return rc;
}

/* Read the query vectors, check their dim, and run one vs_search() each. */
static int run_vectors(vs_db *db, const vs_collection_info *info, query_args *a) {
  qset q = {NULL, 0, 0};
  int rc;

  if (info->dim == 0)
    return complain(1, "query",
                    "collection '%s' is text-only (dim 0): query it with --text or --text-file",
                    a->name);
  rc = a->file ? read_queries(a->file, a->format, a->row_begin, a->row_end, &q)
               : parse_inline(a->inline_vec, &q);
  if (rc)
    return rc;
  if (q.rows && q.dim != info->dim) {
    if (a->file)
      rc = complain(1, "query", "%s has vectors of dim %zu, collection '%s' has dim %u", a->file,
                    q.dim, a->name, info->dim);
    else
      rc = complain(1, "query", "--vector has %zu components, collection '%s' has dim %u", q.dim,
                    a->name, info->dim);
    goto done;
  }
  for (size_t i = 0; i < q.rows; i++) {
    vs_error err = VS_ERROR_INIT;
    vs_search_info si;
    vs_hit *hits;
    size_t n;

    a->p.vector = q.v + i * q.dim;
    a->p.dim = q.dim;
    rc = vs_search(db, a->name, &a->p, &hits, &n, &si, &err);
    if (rc) {
      rc = search_failed(a, i, rc, &err);
      goto done;
    }
    if ((rc = print_hits(a, i, hits, n, &si)))
      goto done;
  }

done:
  free(q.v);
  return rc;
}

/* Read the query texts and run one vs_text_search() each, with the field
 * weights w[0..nw).  A collection without text fields gives every query
 * no hits (plan "empty"), as the engine does. */
static int run_texts(vs_db *db, query_args *a, const vs_field_weight *w, size_t nw) {
  vs_text_params tp = {NULL, 0, a->p.k, a->p.with, a->p.filter, w, nw};
  tset t = {NULL, NULL, NULL, 0};
  int rc = 0;

  if (a->text_file) {
    if (read_text_file(a->text_file, &t))
      return 1;
  } else {
    if (tset_alloc(&t, 1)) {
      tset_free(&t);
      return 1;
    }
    t.text[0] = a->text;
    t.len[0] = strlen(a->text);
    t.n = 1;
  }
  for (size_t i = 0; i < t.n; i++) {
    vs_error err = VS_ERROR_INIT;
    vs_search_info si;
    vs_hit *hits;
    size_t n;

    tp.text = t.text[i];
    tp.len = t.len[i];
    rc = vs_text_search(db, a->name, &tp, &hits, &n, &si, &err);
    if (rc) {
      rc = search_failed(a, i, rc, &err);
      break;
    }
    if ((rc = print_hits(a, i, hits, n, &si)))
      break;
  }
  tset_free(&t);
  return rc;
}

int cmd_query(int argc, char **argv) {
  vs_collection_info *info = NULL;
  vs_field_weight *weights = NULL;
  vs_filter *filter = NULL;
  char *weight_buf = NULL;
  size_t n_weights = 0;
  vs_db *db = NULL;
  query_args a;
  int rc;

  if ((rc = parse_query_args(argc, argv, &a)))
    return rc;
  if (a.weights && (rc = parse_weights(a.weights, &weight_buf, &weights, &n_weights)))
    goto done;
  if (a.filter) {
    vs_error err = VS_ERROR_INIT;
    if (vs_filter_parse_json(a.filter, strlen(a.filter), &filter, &err)) {
      rc = complain(2, "query", "--filter: %s", err_text(VS_EINVAL, &err));
      goto done;
    }
    a.p.filter = filter;
  }
  if ((rc = open_collection("query", a.dir, a.name, &db, &info)))
    goto done;
  rc = a.text || a.text_file ? run_texts(db, &a, weights, n_weights) : run_vectors(db, info, &a);
  if (rc == 0 && (fflush(stdout) || ferror(stdout)))
    rc = complain(1, "query", "writing the results: %s", strerror(errno));

done:
  vs_free(info);
  vs_db_close(db);
  vs_filter_free(filter);
  free(weights);
  free(weight_buf);
  return rc;
}
