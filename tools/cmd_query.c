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
 *
 * With a vector and a text source together, query i is hybrid search
 * (vs_hybrid_search()) of vector row i with text line i; a lone --vector
 * or --text goes with every query of the other source, and any other
 * mismatch of counts is a usage error found before any query runs.
 * --group-by and --mmr, which only vs_hybrid_search() offers, run it with
 * a single leg when only one source is given; the fusion options
 * (--fusion, --rrf-k, --leg-weights, --candidates, --explain) are refused
 * outside hybrid search rather than silently ignored.  A hybrid line
 * carries the legs that contributed and the engine's note instead of a
 * plan; --explain adds both legs' plans and each hit's rank and score in
 * each leg.  --exclude and --payload-fields serve every kind of query.
 *
 * With --connect HOST:PORT in place of DIR, the same queries run in a
 * server (tools/cmd_remote.c): read, checked and printed here as above,
 * searched there, one request a query.  A server's answer carries the hits
 * only, so its lines have no plan, legs or note.
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
#include "tools/rpc_client.h"

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

/*
 * Parse --exclude "ID,ID,...".  An item of decimal digits only is an
 * integer id (0..2^63-1); an item in double quotes is a string id, the
 * bytes between them, commas included ("" inside stands for one quote, as
 * in CSV); any other item is a string id as written.  Spaces around an
 * item are dropped.  A sign before digits is refused rather than taken
 * for a string id: "-5" is more likely a slip than a name.  The string ids
 * point into *buf, a copy of `s`.  Returns 0, or 2 after saying why.
 */
static int parse_ids(const char *s, char **buf, vs_id **out, size_t *n) {
  static const char *const shape =
      "--exclude must be ids separated by commas, e.g. '3,7,\"doc-1\"'";
  size_t cap = 1;
  char *p;

  *n = 0;
  for (const char *c = s; *c; c++)
    cap += *c == ',';
  *buf = strdup(s);
  *out = malloc(cap * sizeof(**out));
  if (*buf == NULL || *out == NULL)
    return complain(1, "query", "out of memory");
  p = *buf;
  for (;;) {
    char *start, *end;
    vs_id id;

    while (*p == ' ')
      p++;
    if (*p == '"') {
      char *dst = start = ++p;
      for (;; p++) {
        if (*p == '\0')
          return complain(2, "query", "--exclude: a quoted id has no closing quote");
        if (*p == '"' && p[1] != '"')
          break;
        *dst++ = *p;
        p += *p == '"'; /* "" stands for one quote */
      }
      end = dst;
      for (p++; *p == ' '; p++)
        ;
      if (end == start)
        return complain(2, "query", "--exclude: \"\" is not an id (string ids are 1..%d bytes)",
                        VS_ID_MAX);
      id = (vs_id){VS_ID_STR, 0, start, (size_t)(end - start)};
    } else {
      size_t sign, digits, len;
      start = p;
      p += strcspn(p, ",");
      for (end = p; end > start && end[-1] == ' '; end--)
        ;
      len = (size_t)(end - start);
      if (len == 0)
        return complain(2, "query", "%s; an id is missing", shape);
      sign = *start == '-' || *start == '+';
      digits = strspn(start + sign, "0123456789");
      if (digits && sign + digits == len) {
        uint64_t v = 0;
        if (sign)
          return complain(2, "query",
                          "--exclude: '%.*s' is not an id: integer ids are 0..2^63-1 (quote it "
                          "for a string id)",
                          (int)len, start);
        for (size_t i = 0; i < len; i++) {
          if (v > (VS_INT_ID_MAX - (uint64_t)(start[i] - '0')) / 10)
            return complain(2, "query",
                            "--exclude: %.*s is above 2^63-1, the largest integer id (quote it "
                            "for a string id)",
                            (int)len, start);
          v = v * 10 + (uint64_t)(start[i] - '0');
        }
        id = vs_id_int(v);
      } else {
        id = (vs_id){VS_ID_STR, 0, start, len};
      }
    }
    if (id.kind == VS_ID_STR && id.len > VS_ID_MAX)
      return complain(2, "query", "--exclude: a string id has %zu bytes, the limit is %d", id.len,
                      VS_ID_MAX);
    (*out)[(*n)++] = id;
    if (*p == '\0')
      return 0;
    if (*p != ',')
      return complain(2, "query", "%s; text follows a quoted id", shape);
    p++;
  }
}

/* Parse --payload-fields "a,b,...": field names, none empty.  The names
 * point into *buf, a copy of `s` cut at the commas. */
static int parse_fields(const char *s, char **buf, const char ***out, size_t *n) {
  size_t cap = 1;
  char *item;

  *n = 0;
  for (const char *c = s; *c; c++)
    cap += *c == ',';
  *buf = strdup(s);
  *out = malloc(cap * sizeof(**out));
  if (*buf == NULL || *out == NULL)
    return complain(1, "query", "out of memory");
  for (item = *buf; item; (*n)++) {
    char *comma = strchr(item, ',');
    if (comma)
      *comma = '\0';
    if (*item == '\0')
      return complain(
          2, "query",
          "--payload-fields must be field names separated by commas, e.g. 'title,year'");
    (*out)[*n] = item;
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

/* What a printed hit carries beyond its id and score (with --explain and
 * --group-by), besides the payload and vector that `with` asks for. */
enum { SHOW_EXPLAIN = 1, SHOW_GROUP = 2 };

/* A hit's score in one leg as JSON: null when the hit was not among that
 * leg's candidates (its rank there is 0). */
static json_t *leg_json(uint32_t rank, double v) {
  return rank == 0 ? json_null() : json_real(v);
}

/* {"id": ..., "score": ..., ["group": g,] ["vector_rank": r, "vector_score":
 * s, "text_rank": r, "text_score": s,] ["payload": {...},] ["vector": [...]]}
 * or NULL when out of memory (or a payload cannot be decoded). */
static json_t *hit_json(const vs_hit *h, unsigned with, unsigned show) {
  json_t *o = json_object();

  if (o == NULL || json_object_set_new(o, "id", id_json(&h->id)) ||
      json_object_set_new(o, "score", json_real((double)h->score)))
    goto fail;
  if ((show & SHOW_GROUP) && json_object_set_new(o, "group", json_integer(h->group)))
    goto fail;
  if ((show & SHOW_EXPLAIN) &&
      (json_object_set_new(o, "vector_rank",
                           h->vector_rank ? json_integer(h->vector_rank) : json_null()) ||
       json_object_set_new(o, "vector_score", leg_json(h->vector_rank, h->vector_score)) ||
       json_object_set_new(o, "text_rank",
                           h->text_rank ? json_integer(h->text_rank) : json_null()) ||
       json_object_set_new(o, "text_score", leg_json(h->text_rank, h->text_score))))
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

/* How one query ran: a vector or text search's info, or a hybrid
 * search's (exactly one of the two is set). */
typedef struct ran {
  const vs_search_info *si;
  const vs_hybrid_info *hi;
} ran;

/* One line: {"query": i, "hits": [...], "plan": "..."}, or for a hybrid
 * search {"query": i, "hits": [...], "legs": "...", "note": "..."} and,
 * with --explain, "vector_plan" and "text_plan" ("none" for a leg not
 * asked for). */
static int print_json(size_t qi, const vs_hit *hits, size_t n, ran r, unsigned with,
                      unsigned show) {
  json_t *o = json_object(), *a = json_array();
  char *s = NULL;

  if (o == NULL || a == NULL || json_object_set_new(o, "query", json_integer((json_int_t)qi)) ||
      json_object_set(o, "hits", a))
    goto fail;
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(a, hit_json(&hits[i], with, show)))
      goto fail;
  if (r.si && json_object_set_new(o, "plan", json_string(r.si->plan)))
    goto fail;
  if (r.hi && (json_object_set_new(o, "legs", json_string(r.hi->legs)) ||
               json_object_set_new(o, "note", json_string(r.hi->note))))
    goto fail;
  if (r.hi && (show & SHOW_EXPLAIN) &&
      (json_object_set_new(o, "vector_plan", json_string(r.hi->vector.plan)) ||
       json_object_set_new(o, "text_plan", json_string(r.hi->text.plan))))
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

/* A member of a hit's JSON object as text ("-" when it cannot be, or is
 * null). */
static void print_member(const char *fmt, const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  char *s = json_is_null(v) ? NULL : json_dumps(v, JSON_FLAGS | JSON_ENCODE_ANY);

  printf(fmt, s ? s : "-");
  free(s);
}

/* The header line of a query's table: the plan of a vector or text
 * search, the legs of a hybrid one (with their plans and the note). */
static void print_header(size_t qi, size_t n, ran r) {
  printf("%squery %zu: %zu hit%s", qi ? "\n" : "", qi, n, n == 1 ? "" : "s");
  if (r.si == NULL && r.hi == NULL) { /* through a server, which says only what it found */
    printf("\n");
    return;
  }
  if (r.si) {
    printf(", plan %s (%u segment%s, %llu fresh, %llu candidates)\n", r.si->plan, r.si->segments,
           r.si->segments == 1 ? "" : "s", (unsigned long long)r.si->fresh,
           (unsigned long long)r.si->candidates);
    return;
  }
  printf(", legs %s (vector: plan %s, %llu candidates; text: plan %s, %llu candidates)\n",
         r.hi->legs, r.hi->vector.plan, (unsigned long long)r.hi->vector.candidates,
         r.hi->text.plan, (unsigned long long)r.hi->text.candidates);
  if (r.hi->note[0])
    printf("  note: %s\n", r.hi->note);
}

/* A readable block: a header, then rank, id, score (then the group, each
 * leg's rank and score, the payload and the vector when asked) a hit a
 * line; a blank line before every block but the first. */
static int print_table(size_t qi, const vs_hit *hits, size_t n, ran r, unsigned with,
                       unsigned show) {
  int score_w = with || show ? 15 : 0; /* pad the score only when columns follow */

  print_header(qi, n, r);
  if (n)
    printf("  %4s  %-20s  %-*s%s%s%-*s%s%s\n", "rank", "id", score_w, "score",
           show & SHOW_GROUP ? "  group" : "",
           show & SHOW_EXPLAIN ? "  v.rank  v.score          t.rank  " : "",
           (show & SHOW_EXPLAIN) && with ? 15 : 0, show & SHOW_EXPLAIN ? "t.score" : "",
           with & VS_GET_PAYLOAD ? "  payload" : "", with & VS_GET_VECTOR ? "  vector" : "");
  for (size_t i = 0; i < n; i++) {
    json_t *h = hit_json(&hits[i], with, show);

    if (h == NULL)
      return complain(1, "query", "query %zu: out of memory formatting the results", qi);
    printf("  %4zu  ", i + 1);
    print_member("%-20s", h, "id");
    printf("  %-*.9g", score_w, (double)hits[i].score);
    if (show & SHOW_GROUP)
      printf("  %5u", hits[i].group);
    if (show & SHOW_EXPLAIN) {
      print_member("  %6s", h, "vector_rank");
      print_member("  %-15s", h, "vector_score");
      print_member("  %6s", h, "text_rank");
      print_member(with ? "  %-15s" : "  %s", h, "text_score");
    }
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
  const char *connect, *token_file; /* --connect HOST:PORT (then dir is NULL) */
  const char *file, *format, *inline_vec, *rows, *filter;
  const char *text, *text_file, *weights, *exclude, *payload_fields;
  const char *vector_knob; /* the first of --exact, --ef, --nprobe given */
  const char *fusion_opt;  /* the first option that tunes fusion given */
  size_t row_begin, row_end;
  /* k, with, filter, exclude and payload_fields serve every kind of
   * query; ef and nprobe hybrid queries too. */
  vs_search_params p;
  /* The options only hybrid search has: fusion, rrf_k, the leg weights,
   * candidates, explain, group_by, group_size, mmr_lambda, mmr_candidates. */
  vs_hybrid_params h;
  int json;
  int hybrid; /* run vs_hybrid_search(): both sources, --group-by or --mmr */
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

/* Parse a whole number 1..VS_K_MAX, the value of option `opt`. */
static int parse_depth(const char *opt, const char *val, size_t *out) {
  if (parse_size(val, strlen(val), out) || *out < 1 || *out > VS_K_MAX)
    return complain(2, "query", "%s must be a whole number 1..%d, not '%s'", opt, VS_K_MAX, val);
  return 0;
}

/* Parse a finite decimal number >= 0 (see decimal()). */
static int parse_real(const char *val, double *out) {
  if (!decimal(val))
    return 1;
  *out = strtod(val, NULL);
  return !isfinite(*out);
}

/* Parse --leg-weights V,T: two numbers >= 0, not both 0. */
static int parse_leg_weights(const char *val, vs_hybrid_params *h) {
  const char *comma = strchr(val, ',');
  char v[64];

  if (comma && (size_t)(comma - val) < sizeof(v)) {
    memcpy(v, val, (size_t)(comma - val));
    v[comma - val] = '\0';
    if (!parse_real(v, &h->vector_weight) && !parse_real(comma + 1, &h->text_weight)) {
      if (h->vector_weight > 0 || h->text_weight > 0)
        return 0;
      return complain(2, "query", "--leg-weights 0,0 leaves nothing to rank by");
    }
  }
  return complain(2, "query",
                  "--leg-weights must be two numbers >= 0, the vector leg's and the text leg's, "
                  "e.g. '1,0.5'");
}

/* The value of one hybrid search option (kind 'h' or 'F' in query_opts). */
static int parse_hybrid_opt(const char *opt, const char *val, vs_hybrid_params *h) {
  if (strcmp(opt, "--fusion") == 0) {
    if (strcmp(val, "rrf") == 0)
      h->fusion = VS_FUSION_RRF;
    else if (strcmp(val, "weighted") == 0)
      h->fusion = VS_FUSION_WEIGHTED;
    else
      return complain(2, "query", "--fusion must be rrf or weighted, not '%s'", val);
  } else if (strcmp(opt, "--rrf-k") == 0) {
    if (parse_real(val, &h->rrf_k) || !(h->rrf_k > 0))
      return complain(2, "query", "--rrf-k must be a number above 0 (60 by default), not '%s'",
                      val);
  } else if (strcmp(opt, "--leg-weights") == 0) {
    return parse_leg_weights(val, h);
  } else if (strcmp(opt, "--candidates") == 0) {
    return parse_depth(opt, val, &h->candidates);
  } else if (strcmp(opt, "--group-by") == 0) {
    if (val[0] == '\0')
      return complain(2, "query", "--group-by needs a payload field name");
    h->group_by = val;
  } else if (strcmp(opt, "--group-size") == 0) {
    return parse_depth(opt, val, &h->group_size);
  } else if (strcmp(opt, "--mmr") == 0) {
    /* 0 would mean "diversity only", which vs_hybrid_params cannot say
     * (there 0 turns MMR off): refuse it rather than change its sense. */
    if (parse_real(val, &h->mmr_lambda) || !(h->mmr_lambda > 0 && h->mmr_lambda <= 1))
      return complain(2, "query", "--mmr must be a number in (0, 1], not '%s'", val);
  } else { /* --mmr-candidates */
    return parse_depth(opt, val, &h->mmr_candidates);
  }
  return 0;
}

/* The options and how parse_query_args() treats them: 'f' a flag, 'v' a
 * value it keeps or parses itself, 'h' a value for parse_hybrid_opt(),
 * 'F' likewise and the option tunes fusion itself (so needs two legs). */
static const struct {
  const char *name;
  char kind;
} query_opts[] = {
    {"--exact", 'f'},        {"--json", 'f'},
    {"--with-payload", 'f'}, {"--with-vector", 'f'},
    {"--explain", 'f'},      {"--vector-file", 'v'},
    {"--format", 'v'},       {"--vector", 'v'},
    {"--rows", 'v'},         {"--k", 'v'},
    {"--ef", 'v'},           {"--nprobe", 'v'},
    {"--filter", 'v'},       {"--text", 'v'},
    {"--text-file", 'v'},    {"--weights", 'v'},
    {"--exclude", 'v'},      {"--payload-fields", 'v'},
    {"--fusion", 'F'},       {"--rrf-k", 'F'},
    {"--leg-weights", 'F'},  {"--candidates", 'F'},
    {"--group-by", 'h'},     {"--group-size", 'h'},
    {"--mmr", 'h'},          {"--mmr-candidates", 'h'},
    {"--token-file", 'v'},
};

/* The checks between options, once all are read. */
static int check_query_args(query_args *a) {
  int vec = a->file || a->inline_vec, txt = a->text || a->text_file;

  if (a->file && a->inline_vec)
    return complain(2, "query", "give either --vector-file or --vector, not both");
  if (a->text && a->text_file)
    return complain(2, "query", "give either --text or --text-file, not both");
  if (!vec && !txt)
    return complain(2, "query",
                    "no queries: give --vector-file F (fvecs, bvecs, ivecs, idx or JSON lines), "
                    "--vector 'x,y,...', --text Q or --text-file F (one query a line)");
  if (a->rows && a->file == NULL)
    return complain(2, "query", "--rows selects rows of --vector-file");
  if (a->format && a->file == NULL)
    return complain(2, "query", "--format describes --vector-file");
  /* BM25 top-k is exact and has no index knobs: refuse them rather than
   * let a user believe they changed something. */
  if (a->vector_knob && !vec)
    return complain(2, "query", "%s tunes vector search; a text query has nothing to tune",
                    a->vector_knob);
  if (a->weights && !txt)
    return complain(2, "query", "--weights weighs the text fields of --text or --text-file");
  if (a->token_file && a->connect == NULL)
    return complain(2, "query", "--token-file authenticates with a server: give --connect too");
  a->hybrid = (vec && txt) || a->h.group_by || a->h.mmr_lambda > 0;
  /* Fusion options on a search that fuses nothing are refused likewise. */
  if (a->fusion_opt && !a->hybrid)
    return complain(2, "query",
                    "%s is for hybrid search: give a vector and a text source (or --group-by or "
                    "--mmr)",
                    a->fusion_opt);
  if (a->hybrid && a->p.exact)
    return complain(2, "query", "--exact: hybrid search has no exact scan; leave it out");
  if (a->h.rrf_k > 0 && a->h.fusion != VS_FUSION_RRF)
    return complain(2, "query", "--rrf-k tunes --fusion rrf, not --fusion weighted");
  if (a->h.group_size && a->h.group_by == NULL)
    return complain(2, "query", "--group-size needs --group-by");
  if (a->h.mmr_candidates && !(a->h.mmr_lambda > 0))
    return complain(2, "query", "--mmr-candidates needs --mmr");
  if (a->h.mmr_lambda > 0 && !vec)
    return complain(2, "query",
                    "--mmr compares the hits' vectors with the query vector: give --vector or "
                    "--vector-file");
  return 0;
}

static int parse_query_args(int argc, char **argv, query_args *a) {
  memset(a, 0, sizeof(*a));
  a->p.k = DEFAULT_K;
  a->row_end = SIZE_MAX;
  if (argc >= 1 && strcmp(argv[0], "--connect") == 0) {
    /* --connect HOST:PORT stands where DIR does. */
    if (argc < 2)
      return complain(2, "query", "--connect needs a value (HOST:PORT)");
    a->connect = argv[1];
    argc--;
    argv++;
  }
  if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
    return complain(2, "query",
                    "usage: vsearch query DIR|--connect HOST:PORT NAME --vector-file F | "
                    "--vector X,Y,... | --text Q | --text-file F");
  a->dir = a->connect ? NULL : argv[0];
  a->name = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    char kind = 0;

    for (size_t j = 0; j < sizeof(query_opts) / sizeof(query_opts[0]); j++)
      if (strcmp(opt, query_opts[j].name) == 0)
        kind = query_opts[j].kind;
    if (kind == 0)
      return complain(2, "query", "unknown option %s", opt);
    if (kind == 'f') {
      if (strcmp(opt, "--exact") == 0) {
        a->p.exact = 1;
        if (a->vector_knob == NULL)
          a->vector_knob = opt;
      } else if (strcmp(opt, "--json") == 0) {
        a->json = 1;
      } else if (strcmp(opt, "--with-payload") == 0) {
        a->p.with |= VS_GET_PAYLOAD;
      } else if (strcmp(opt, "--with-vector") == 0) {
        a->p.with |= VS_GET_VECTOR;
      } else { /* --explain */
        a->h.explain = 1;
        if (a->fusion_opt == NULL)
          a->fusion_opt = opt;
      }
      continue;
    }
    if (val == NULL)
      return complain(2, "query", "%s needs a value", opt);
    i++;
    if (kind == 'h' || kind == 'F') {
      if (kind == 'F' && a->fusion_opt == NULL)
        a->fusion_opt = opt;
      if (parse_hybrid_opt(opt, val, &a->h))
        return 2;
    } else if (strcmp(opt, "--vector-file") == 0) {
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
    } else if (strcmp(opt, "--token-file") == 0) {
      a->token_file = val;
    } else if (strcmp(opt, "--weights") == 0) {
      a->weights = val;
    } else if (strcmp(opt, "--exclude") == 0) {
      a->exclude = val;
    } else if (strcmp(opt, "--payload-fields") == 0) {
      a->payload_fields = val;
      a->p.with |= VS_GET_PAYLOAD;
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
  return check_query_args(a);
}

/* Where query qi came from, for error messages: its vector row, its text
 * line, or both for a hybrid query. */
static void query_origin(const query_args *a, size_t qi, char *buf, size_t cap) {
  char v[1100] = "", t[1100] = "";

  if (a->file)
    snprintf(v, sizeof(v), "row %zu of %.1000s", a->row_begin + qi, a->file);
  else if (a->inline_vec)
    snprintf(v, sizeof(v), "--vector");
  if (a->text_file)
    snprintf(t, sizeof(t), "line %zu of %.1000s", qi + 1, a->text_file);
  else if (a->text)
    snprintf(t, sizeof(t), "--text");
  snprintf(buf, cap, "query %zu (%s%s%s)", qi, v, v[0] && t[0] ? " with " : "", t);
}

/* Report search qi's failure `rc`: where the query came from, then why. */
static int search_failed(const query_args *a, size_t qi, int rc, const vs_error *err) {
  const char *why = err_text(rc, err);
  char where[2300];

  query_origin(a, qi, where, sizeof(where));
  /* The vector checks share vs_upsert's wording, which names a point of
   * the batch; here there is one query and `where` names it. */
  if (strncmp(why, "point 0: ", 9) == 0)
    why += 9;
  return complain(1, "query", "%s: %s", where, why);
}

/* Print query qi's hits (`r` all NULL: they came from a server). */
static int print_hits(const query_args *a, size_t qi, const vs_hit *hits, size_t n, ran r) {
  unsigned show = (a->h.explain ? SHOW_EXPLAIN : 0) | (a->h.group_by ? SHOW_GROUP : 0);

  return a->json ? print_json(qi, hits, n, r, a->p.with, show)
                 : print_table(qi, hits, n, r, a->p.with, show);
}

/* Read the query vectors and check their dim.  A hybrid search on a
 * text-only collection goes ahead: the engine drops the vector leg and
 * says so in its note.  Without `info` (through a server) the server
 * checks the dim. */
static int load_vectors(const vs_collection_info *info, const query_args *a, qset *q) {
  int rc;

  if (info && info->dim == 0 && !a->hybrid)
    return complain(1, "query",
                    "collection '%s' is text-only (dim 0): query it with --text or --text-file",
                    a->name);
  rc = a->file ? read_queries(a->file, a->format, a->row_begin, a->row_end, q)
               : parse_inline(a->inline_vec, q);
  if (rc || q->rows == 0 || info == NULL || info->dim == 0 || q->dim == info->dim)
    return rc;
  if (a->file)
    rc = complain(1, "query", "%s has vectors of dim %zu, collection '%s' has dim %u", a->file,
                  q->dim, a->name, info->dim);
  else
    rc = complain(1, "query", "--vector has %zu components, collection '%s' has dim %u", q->dim,
                  a->name, info->dim);
  free(q->v);
  q->v = NULL;
  return rc;
}

/* Read the query texts: the lines of --text-file, or --text alone. */
static int load_texts(const query_args *a, tset *t) {
  if (a->text_file)
    return read_text_file(a->text_file, t);
  if (tset_alloc(t, 1)) {
    tset_free(t);
    return 1;
  }
  t->text[0] = a->text;
  t->len[0] = strlen(a->text);
  t->n = 1;
  return 0;
}

/* Run query qi: vector `v` (NULL without a vector source) and the text of
 * `len` bytes at `text` (NULL without a text source), through
 * vs_hybrid_search(), vs_search() or vs_text_search() on `db`, or their
 * counterparts on server `rem` when it is not NULL; print its hits. */
static int run_one(vs_db *db, remote *rem, query_args *a, size_t qi, const float *v, size_t dim,
                   const char *text, size_t len, const vs_field_weight *w, size_t nw) {
  vs_error err = VS_ERROR_INIT;
  vs_search_info si;
  vs_hybrid_info hi;
  ran r = {NULL, NULL};
  vs_hit *hits;
  size_t n;
  int rc;

  if (a->hybrid) {
    vs_hybrid_params hp = a->h;

    hp.vector = v;
    hp.dim = dim;
    hp.text = text;
    hp.len = len;
    hp.k = a->p.k;
    hp.ef = a->p.ef;
    hp.nprobe = a->p.nprobe;
    hp.weights = w;
    hp.n_weights = nw;
    hp.filter = a->p.filter;
    hp.exclude = a->p.exclude;
    hp.n_exclude = a->p.n_exclude;
    hp.with = a->p.with;
    hp.payload_fields = a->p.payload_fields;
    hp.n_payload_fields = a->p.n_payload_fields;
    rc = rem ? remote_hybrid_search(rem, a->name, &hp, &hits, &n, &err)
             : vs_hybrid_search(db, a->name, &hp, &hits, &n, &hi, &err);
    r.hi = rem ? NULL : &hi;
  } else if (v) {
    a->p.vector = v;
    a->p.dim = dim;
    rc = rem ? remote_search(rem, a->name, &a->p, &hits, &n, &err)
             : vs_search(db, a->name, &a->p, &hits, &n, &si, &err);
    r.si = rem ? NULL : &si;
  } else {
    vs_text_params tp = {
        text, len,          a->p.k,         a->p.with,           a->p.filter,          w,
        nw,   a->p.exclude, a->p.n_exclude, a->p.payload_fields, a->p.n_payload_fields};
    rc = rem ? remote_text_search(rem, a->name, &tp, &hits, &n, &err)
             : vs_text_search(db, a->name, &tp, &hits, &n, &si, &err);
    r.si = rem ? NULL : &si;
  }
  if (rc && rem) /* err says "CODE: MESSAGE", or how the connection failed */
    return complain(1, "query", "query %zu: %s", qi, err.message);
  if (rc)
    return search_failed(a, qi, rc, &err);
  rc = print_hits(a, qi, hits, n, r);
  if (rem == NULL) /* a remote keeps its hits until its next search */
    vs_free(hits);
  return rc;
}

/*
 * Read every query, pair vectors with texts for a hybrid search, and run
 * them in order, with the field weights w[0..nw).  A lone --vector or
 * --text goes with every query of the other source; a vector file and a
 * text file must hold as many queries as each other (a usage error, found
 * before any query runs).  A text query on a collection without text
 * fields finds nothing (plan "empty"), as the engine does.
 */
static int run_queries(vs_db *db, remote *rem, const vs_collection_info *info, query_args *a,
                       const vs_field_weight *w, size_t nw) {
  int vec = a->file || a->inline_vec, txt = a->text || a->text_file;
  tset t = {NULL, NULL, NULL, 0};
  qset q = {NULL, 0, 0};
  size_t nq;
  int rc = 0;

  if (vec && (rc = load_vectors(info, a, &q)))
    goto done;
  if (txt && (rc = load_texts(a, &t)))
    goto done;
  nq = vec ? q.rows : t.n;
  if (vec && txt) {
    if (a->inline_vec)
      nq = t.n;
    else if (a->text == NULL && q.rows != t.n) {
      rc =
          complain(2, "query",
                   "%s has %zu query vector%s and %s has %zu query text%s: hybrid search "
                   "pairs them one to one (a single --vector or --text goes with every query)",
                   a->file, q.rows, q.rows == 1 ? "" : "s", a->text_file, t.n, t.n == 1 ? "" : "s");
      goto done;
    }
  }
  for (size_t i = 0; i < nq && rc == 0; i++) {
    const float *v = vec ? q.v + (a->inline_vec ? 0 : i) * q.dim : NULL;
    size_t ti = a->text ? 0 : i;

    rc = run_one(db, rem, a, i, v, q.dim, txt ? t.text[ti] : NULL, txt ? t.len[ti] : 0, w, nw);
  }

done:
  free(q.v);
  tset_free(&t);
  return rc;
}

int cmd_query(int argc, char **argv) {
  vs_collection_info *info = NULL;
  vs_field_weight *weights = NULL;
  vs_filter *filter = NULL;
  char *weight_buf = NULL, *exclude_buf = NULL, *field_buf = NULL;
  vs_id *exclude = NULL;
  const char **fields = NULL;
  size_t n_weights = 0;
  vs_db *db = NULL;
  remote *rem = NULL;
  query_args a;
  int rc;

  if ((rc = parse_query_args(argc, argv, &a)))
    return rc;
  if (a.weights && (rc = parse_weights(a.weights, &weight_buf, &weights, &n_weights)))
    goto done;
  if (a.exclude && (rc = parse_ids(a.exclude, &exclude_buf, &exclude, &a.p.n_exclude)))
    goto done;
  a.p.exclude = exclude;
  if (a.payload_fields &&
      (rc = parse_fields(a.payload_fields, &field_buf, &fields, &a.p.n_payload_fields)))
    goto done;
  a.p.payload_fields = fields;
  if (a.filter) {
    vs_error err = VS_ERROR_INIT;
    if (vs_filter_parse_json(a.filter, strlen(a.filter), &filter, &err)) {
      rc = complain(2, "query", "--filter: %s", err_text(VS_EINVAL, &err));
      goto done;
    }
    a.p.filter = filter;
  }
  if (a.connect)
    rc = remote_open(a.connect, a.token_file, a.filter, &rem);
  else
    rc = open_collection("query", a.dir, a.name, &db, &info);
  if (rc)
    goto done;
  rc = run_queries(db, rem, info, &a, weights, n_weights);
  if (rc == 0 && (fflush(stdout) || ferror(stdout)))
    rc = complain(1, "query", "writing the results: %s", strerror(errno));

done:
  vs_free(info);
  vs_db_close(db);
  remote_close(rem);
  vs_filter_free(filter);
  free(weights);
  free(weight_buf);
  free(exclude);
  free(exclude_buf);
  free((void *)fields);
  free(field_buf);
  return rc;
}
