/*
 * vsearch.c: the `vsearch` command line.
 *
 * Subcommands: demo (the end-to-end tour `make run` shows), create, drop,
 * stats, import, build, query (cmd_query.c), bench (cmd_bench.c,
 * cmd_bench_text.c) and serve (cmd_serve.c, server/); see DESIGN.md
 * section 7 for the whole surface.
 * Errors go to stderr with a non-zero exit status; only this file exits.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "tools/commands.h"
#include "tools/datasets.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage:\n"
      "  vsearch demo [DIR]                 create, upsert, get, delete, reopen; print each step\n"
      "  vsearch demo-data DIR [--data D]   load the demo collections `make run` serves, once\n"
      "  vsearch create DIR NAME --dim D [--metric l2|ip|cosine] [--index SPEC]\n"
      "                 [--text-fields a,b] [--language L] [--bm25-k1 X] [--bm25-b X]\n"
      "  vsearch drop DIR NAME\n"
      "  vsearch import DIR NAME FILE [--format fvecs|bvecs|ivecs|idx|jsonl] [--batch N]\n"
      "                 [--first-id N] [--no-sync]\n"
      "                                     upsert a file into an existing collection; in\n"
      "                                     vector files row i gets the id first-id + i\n"
      "  vsearch build DIR NAME [--index SPEC] [--threads N]\n"
      "                                     rebuild the vector index from the stored points\n"
      "  vsearch query DIR NAME (--vector-file F [--rows A:B] [--format FMT] | --vector X,Y,..)\n"
      "                 [--k K] [--ef N] [--nprobe N] [--exact] [--filter JSON] [--json]\n"
      "                 [--with-payload] [--with-vector] [--payload-fields a,b] [--exclude IDS]\n"
      "                                     k nearest points of each query vector; F is fvecs,\n"
      "                                     bvecs, ivecs, idx or JSON lines of numbers\n"
      "  vsearch query DIR NAME (--text Q | --text-file F) [--weights FIELD=W,..] [--k K]\n"
      "                 [--filter JSON] [--json] [--with-payload] [--with-vector]\n"
      "                 [--payload-fields a,b] [--exclude IDS]\n"
      "                                     BM25 text search; F has one query a line\n"
      "  vsearch query DIR NAME VECTOR-SOURCE TEXT-SOURCE [--fusion rrf|weighted] [--rrf-k N]\n"
      "                 [--leg-weights V,T] [--candidates N] [--explain] [--group-by FIELD]\n"
      "                 [--group-size N] [--mmr LAMBDA] [--mmr-candidates N] [the options above]\n"
      "                                     hybrid search of vector row i with text line i (a\n"
      "                                     lone --vector or --text goes with every query);\n"
      "                                     --group-by (K groups) and --mmr work with one\n"
      "                                     source too.  --payload-fields projects the\n"
      "                                     payload; --exclude IDS: '3,7,\"doc-1\"', an id\n"
      "                                     of digits is an integer id, one in double quotes\n"
      "                                     or not all digits a string id\n"
      "  vsearch query --connect HOST:PORT NAME [--token-file F] ...\n"
      "                                     the same queries through `vsearch serve`\n"
      "  vsearch bench ann [--dataset fashion-mnist|bigann10k | --base F --queries F [--gt F]]\n"
      "                 [--metric l2|ip] [--specs S] [--ef LIST] [--nprobe LIST] [--k K] [--nq N]\n"
      "                 [--threads N] [--runs R] [--dir TMP] [--peers faiss,hnswlib] [--json "
      "FILE]\n"
      "                                     recall@k, QPS, latency, build time and size of\n"
      "                                     vsearch beside raw FAISS and hnswlib\n"
      "  vsearch bench text [--beir DIR] [--smart NAMES|all] [--synthetic N] [--language L]\n"
      "                 [--k1 X] [--b X] [--fields flat|multi] [--peers vsearch,xapian] [--json "
      "F]\n"
      "                                     BM25 nDCG@10, MAP, recall, docs/s, index size and\n"
      "                                     queries/s of vsearch beside Xapian\n"
      "  vsearch bench server [--threads N] [--connections C] [--pipeline P] [--seconds S]\n"
      "                 [--n N] [--ef E] [--json F]\n"
      "                                     server ping/s, search q/s and p50/p99/p99.9 at\n"
      "                                     peak and 50%%, beside in-process q/s\n"
      "  vsearch serve DIR [--listen HOST:PORT] [--threads N] [--token-file F] [--no-sync]\n"
      "                 [--max-message B] [--max-k N] [--max-points N] [--max-depth N]\n"
      "                 [--max-connections N]\n"
      "                                     MessagePack-RPC server (DESIGN.md section 5)\n"
      "  vsearch stats DIR                  list collections with their settings and counts\n"
      "  vsearch version\n");
}

static int fail(const char *what, int rc, const vs_error *err) {
  fprintf(stderr, "vsearch: %s: %s\n", what, err && err->code ? err->message : vs_strerror(rc));
  return 1;
}

static int open_db(const char *dir, unsigned flags, vs_db **db) {
  vs_open_options o = {flags, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  int rc = vs_db_open(dir, &o, db, &err);

  return rc ? fail(dir, rc, &err) : 0;
}

static void print_info(const vs_collection_info *c) {
  printf("%-20s dim=%-5u metric=%-6s index=%-12s count=%llu language=%s bm25=(%.2f, %.2f)", c->name,
         c->dim, vs_metric_name(c->metric), c->index[0] ? c->index : "-",
         (unsigned long long)c->count, c->language, c->bm25_k1, c->bm25_b);
  if (c->n_text_fields) {
    printf(" text_fields=");
    for (size_t i = 0; i < c->n_text_fields; i++)
      printf("%s%s", i ? "," : "", c->text_fields[i]);
  }
  printf("\n");
}

static int cmd_stats(int argc, char **argv) {
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *cs;
  vs_db *db;
  size_t n;
  int rc;

  if (argc != 1) {
    usage(stderr);
    return 2;
  }
  if (open_db(argv[0], VS_OPEN_READONLY, &db))
    return 1;
  rc = vs_collection_list(db, &cs, &n, &err);
  if (rc == VS_OK) {
    printf("%zu collection%s\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
      print_info(&cs[i]);
    vs_free(cs);
  }
  vs_db_close(db);
  return rc ? fail("stats", rc, &err) : 0;
}

static int cmd_create(int argc, char **argv) {
  vs_collection_config cfg = {0};
  vs_error err = VS_ERROR_INIT;
  const char *fields[VS_TEXT_FIELDS_MAX];
  char *field_buf = NULL;
  int have_dim = 0, rc;
  vs_db *db;

  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  cfg.name = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    char *end;

    if (val == NULL) {
      fprintf(stderr, "vsearch: %s needs a value\n", opt);
      return 2;
    }
    i++;
    if (strcmp(opt, "--dim") == 0) {
      unsigned long d = strtoul(val, &end, 10);
      if (*end || end == val || d > VS_DIM_MAX) {
        fprintf(stderr, "vsearch: --dim must be 0..%d\n", VS_DIM_MAX);
        return 2;
      }
      cfg.dim = (uint32_t)d;
      have_dim = 1;
    } else if (strcmp(opt, "--metric") == 0) {
      if (vs_metric_parse(val, &cfg.metric)) {
        fprintf(stderr, "vsearch: --metric must be l2, ip or cosine\n");
        return 2;
      }
    } else if (strcmp(opt, "--index") == 0) {
      cfg.index = val;
    } else if (strcmp(opt, "--language") == 0) {
      cfg.language = val;
    } else if (strcmp(opt, "--bm25-k1") == 0) {
      cfg.bm25_k1 = strtod(val, NULL);
    } else if (strcmp(opt, "--bm25-b") == 0) {
      cfg.bm25_b = strtod(val, NULL);
    } else if (strcmp(opt, "--text-fields") == 0) {
      free(field_buf);
      field_buf = strdup(val);
      if (field_buf == NULL)
        return fail("create", VS_ENOMEM, NULL);
      cfg.n_text_fields = 0;
      for (char *tok = strtok(field_buf, ","); tok; tok = strtok(NULL, ",")) {
        if (cfg.n_text_fields == VS_TEXT_FIELDS_MAX) {
          fprintf(stderr, "vsearch: at most %d text fields\n", VS_TEXT_FIELDS_MAX);
          free(field_buf);
          return 2;
        }
        fields[cfg.n_text_fields++] = tok;
      }
      cfg.text_fields = fields;
    } else {
      fprintf(stderr, "vsearch: unknown option %s\n", opt);
      free(field_buf);
      return 2;
    }
  }
  if (!have_dim) {
    fprintf(stderr, "vsearch: create needs --dim (0 for a text-only collection)\n");
    free(field_buf);
    return 2;
  }
  if (open_db(argv[0], VS_OPEN_CREATE, &db)) {
    free(field_buf);
    return 1;
  }
  rc = vs_collection_create(db, &cfg, &err);
  free(field_buf);
  if (rc == VS_OK) {
    vs_collection_info *c;
    if (vs_collection_describe(db, cfg.name, &c, &err) == VS_OK) {
      print_info(c);
      vs_free(c);
    }
  }
  vs_db_close(db);
  return rc ? fail("create", rc, &err) : 0;
}

static int cmd_drop(int argc, char **argv) {
  vs_error err = VS_ERROR_INIT;
  vs_db *db;
  int rc;

  if (argc != 2) {
    usage(stderr);
    return 2;
  }
  if (open_db(argv[0], 0, &db))
    return 1;
  rc = vs_collection_drop(db, argv[1], &err);
  vs_db_close(db);
  if (rc)
    return fail("drop", rc, &err);
  printf("dropped %s\n", argv[1]);
  return 0;
}

/* ---- import ------------------------------------------------------------------------- */

/*
 * `vsearch import` streams a file into an existing collection in batches of
 * --batch points, one vs_upsert (one transaction) per batch: memory stays at
 * one batch whatever the file's size, and a failure leaves the batches
 * before it committed.  Vector files are checked against the collection's
 * dim before anything is written; a JSON line is checked as it is read.
 * When vs_upsert refuses a batch, its "point K: ..." message is turned back
 * into the row or line the point came from.
 */

typedef struct import_job {
  const char *file, *name;
  const char *format; /* NULL: by extension */
  size_t batch;
  uint64_t first_id;
  uint32_t dim; /* the collection's */
  /* progress, shown only when stderr is a terminal */
  int tty, shown;
  double start, last;
  uint64_t done, total; /* total 0: unknown (JSON lines) */
} import_job;

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Redraw the progress line at most five times a second (always when final). */
static void progress(import_job *j, int final) {
  double t = now_s(), rate;

  if (!j->tty || (!final && t - j->last < 0.2))
    return;
  j->last = t;
  rate = t > j->start ? (double)j->done / (t - j->start) : 0;
  if (j->total)
    fprintf(stderr, "\rimported %llu / %llu points (%.0f/s)  ", (unsigned long long)j->done,
            (unsigned long long)j->total, rate);
  else
    fprintf(stderr, "\rimported %llu points (%.0f/s)  ", (unsigned long long)j->done, rate);
  j->shown = 1;
  if (final)
    fputc('\n', stderr);
  fflush(stderr);
}

/* Report an error, ending the progress line first. */
static void import_error(import_job *j, const char *fmt, ...) {
  va_list ap;

  if (j->shown) {
    fputc('\n', stderr);
    j->shown = 0;
  }
  fprintf(stderr, "vsearch: import: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (j->done)
    fprintf(stderr, "vsearch: import: stopped; the %llu points imported before are kept\n",
            (unsigned long long)j->done);
}

/* Upsert one batch; on failure name the row (lines == NULL: point k is row
 * first_row + k) or the line the refused point came from. */
static int import_batch(vs_db *db, import_job *j, const vs_point *pts, size_t n, size_t first_row,
                        const size_t *lines) {
  vs_error err = VS_ERROR_INIT;
  size_t k;
  int off = 0, rc = vs_upsert(db, j->name, pts, n, &err);

  if (rc == VS_OK) {
    j->done += n;
    progress(j, 0);
    return 0;
  }
  if (!err.code)
    snprintf(err.message, sizeof(err.message), "%s", vs_strerror(rc));
  if (sscanf(err.message, "point %zu: %n", &k, &off) == 1 && off > 0 && k < n) {
    if (lines)
      import_error(j, "%s: line %zu: %s", j->file, lines[k], err.message + off);
    else
      import_error(j, "%s: row %zu: %s", j->file, first_row + k, err.message + off);
  } else if (lines) {
    import_error(j, "%s: lines %zu..%zu: %s", j->file, lines[0], lines[n - 1], err.message);
  } else {
    import_error(j, "%s: rows %zu..%zu: %s", j->file, first_row, first_row + n - 1, err.message);
  }
  return 1;
}

static int import_vectors(vs_db *db, import_job *j) {
  char msg[512];
  vs_point *pts = NULL;
  float *buf = NULL;
  size_t dim, rows, got;
  ds_reader *r;
  int rc = 1;

  if (ds_reader_open(j->file, j->format, &r, msg, sizeof(msg))) {
    import_error(j, "%s", msg);
    return 1;
  }
  dim = ds_reader_dim(r);
  rows = ds_reader_rows(r);
  if (dim != j->dim) {
    import_error(j, "%s has vectors of dim %zu, collection '%s' has dim %u", j->file, dim, j->name,
                 j->dim);
    goto done;
  }
  if (rows && j->first_id > (uint64_t)VS_INT_ID_MAX - (rows - 1)) {
    import_error(j, "%s has %zu rows: ids from --first-id %llu would pass 2^63-1", j->file, rows,
                 (unsigned long long)j->first_id);
    goto done;
  }
  j->total = rows;
  buf = malloc(j->batch * dim * sizeof(float));
  pts = malloc(j->batch * sizeof(vs_point));
  if (buf == NULL || pts == NULL) {
    import_error(j, "out of memory for a batch of %zu points", j->batch);
    goto done;
  }
  for (;;) {
    size_t row = ds_reader_pos(r);
    if (ds_reader_read(r, buf, j->batch, &got, msg, sizeof(msg))) {
      import_error(j, "%s", msg);
      goto done;
    }
    if (got == 0)
      break;
    for (size_t i = 0; i < got; i++)
      pts[i] = (vs_point){vs_id_int(j->first_id + row + i), buf + i * dim, dim, NULL, 0};
    if (import_batch(db, j, pts, got, row, NULL))
      goto done;
  }
  rc = 0;

done:
  free(pts);
  free(buf);
  ds_reader_close(r);
  return rc;
}

static int import_jsonl(vs_db *db, import_job *j) {
  ds_point *pts = calloc(j->batch, sizeof(ds_point));
  vs_point *vps = calloc(j->batch, sizeof(vs_point));
  size_t *lines = calloc(j->batch, sizeof(size_t));
  size_t n = 0;
  char msg[512];
  ds_jsonl *r = NULL;
  int rc = 1, more = 1;

  if (pts == NULL || vps == NULL || lines == NULL) {
    import_error(j, "out of memory for a batch of %zu points", j->batch);
    goto done;
  }
  if (ds_jsonl_open(j->file, &r, msg, sizeof(msg))) {
    import_error(j, "%s", msg);
    goto done;
  }
  while (more) {
    int drc = ds_jsonl_next(r, &pts[n], msg, sizeof(msg));
    if (drc < 0) {
      import_error(j, "%s", msg);
      goto done;
    }
    if (drc == DS_OK) {
      if (pts[n].point.dim != j->dim) {
        import_error(j, "%s: line %zu: vector has %zu components, collection '%s' has dim %u",
                     j->file, pts[n].line, pts[n].point.dim, j->name, j->dim);
        n++;
        goto done;
      }
      vps[n] = pts[n].point;
      lines[n] = pts[n].line;
      n++;
    } else {
      more = 0;
    }
    if (n == j->batch || (!more && n)) {
      int brc = import_batch(db, j, vps, n, 0, lines);
      for (size_t i = 0; i < n; i++)
        ds_point_free(&pts[i]);
      n = 0;
      if (brc)
        goto done;
    }
  }
  rc = 0;

done:
  for (size_t i = 0; i < n; i++)
    ds_point_free(&pts[i]);
  ds_jsonl_close(r);
  free(lines);
  free(vps);
  free(pts);
  return rc;
}

/* Parse a decimal unsigned number in [lo, hi]; nonzero when it is not one. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  unsigned long long v;
  char *end;

  if (*s < '0' || *s > '9')
    return 1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (*end || errno || v < lo || v > hi)
    return 1;
  *out = v;
  return 0;
}

static int cmd_import(int argc, char **argv) {
  import_job j = {0};
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *info;
  unsigned flags = 0;
  ds_format fmt;
  char msg[512];
  vs_db *db;
  double secs;
  int rc;

  if (argc < 3) {
    usage(stderr);
    return 2;
  }
  j.name = argv[1];
  j.file = argv[2];
  j.batch = 1000;
  for (int i = 3; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t v;

    if (strcmp(opt, "--no-sync") == 0) {
      flags |= VS_OPEN_NOSYNC;
      continue;
    }
    if (val == NULL) {
      fprintf(stderr, "vsearch: %s needs a value\n", opt);
      return 2;
    }
    i++;
    if (strcmp(opt, "--format") == 0) {
      j.format = val;
    } else if (strcmp(opt, "--batch") == 0) {
      if (parse_u64(val, 1, 1000000, &v)) {
        fprintf(stderr, "vsearch: --batch must be 1..1000000\n");
        return 2;
      }
      j.batch = (size_t)v;
    } else if (strcmp(opt, "--first-id") == 0) {
      if (parse_u64(val, 0, VS_INT_ID_MAX, &j.first_id)) {
        fprintf(stderr, "vsearch: --first-id must be 0..2^63-1\n");
        return 2;
      }
    } else {
      fprintf(stderr, "vsearch: unknown option %s\n", opt);
      return 2;
    }
  }
  if (ds_format_resolve(j.format, j.file, &fmt, msg, sizeof(msg))) {
    fprintf(stderr, "vsearch: import: %s\n", msg);
    return 2;
  }
  if (open_db(argv[0], flags, &db))
    return 1;
  if ((rc = vs_collection_describe(db, j.name, &info, &err))) {
    vs_db_close(db);
    return fail("import", rc, &err);
  }
  j.dim = info->dim;
  vs_free(info);

  j.tty = isatty(STDERR_FILENO);
  j.start = now_s();
  rc = fmt == DS_FORMAT_JSONL ? import_jsonl(db, &j) : import_vectors(db, &j);
  vs_db_close(db);
  if (rc)
    return 1;
  secs = now_s() - j.start;
  if (j.shown)
    progress(&j, 1);
  printf("imported %llu points into %s in %.2f s (%.0f points/s)\n", (unsigned long long)j.done,
         j.name, secs, secs > 0 ? (double)j.done / secs : 0.0);
  return 0;
}

/* ---- demo --------------------------------------------------------------------------- */

/* A payload {"title": t, "year": y, "tags": [tags...]} packed with msgpack-c. */
static void demo_payload(msgpack_sbuffer *sb, const char *title, int year, const char *tag) {
  msgpack_packer pk;

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "title", 5);
  msgpack_pack_str_with_body(&pk, title, strlen(title));
  msgpack_pack_str_with_body(&pk, "year", 4);
  msgpack_pack_int(&pk, year);
  msgpack_pack_str_with_body(&pk, "tags", 4);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_str_with_body(&pk, tag, strlen(tag));
}

static void print_payload(const uint8_t *p, size_t n) {
  msgpack_unpacked u;
  size_t off = 0;

  /* The payload came back from vs_get, which returns what vs_upsert
   * validated, so msgpack-c may decode it directly. */
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS)
    msgpack_object_print(stdout, u.data);
  msgpack_unpacked_destroy(&u);
}

static int cmd_demo(int argc, char **argv) {
  static const char *titles[] = {"LMDB in practice", "FAISS by example", "BM25 revisited",
                                 "Fusion for RAG", "Two towers"};
  static const char *tags[] = {"storage", "ann", "text", "hybrid", "recsys"};
  const char *dir = argc > 0 ? argv[0] : "vsearch-demo.db";
  vs_error err = VS_ERROR_INIT;
  vs_collection_info *info;
  msgpack_sbuffer sb[5];
  vs_point pts[5];
  float vecs[5][4];
  vs_record *recs;
  vs_id ids[3];
  uint64_t count;
  size_t deleted;
  vs_db *db;
  int rc;

  printf("vsearch %s demo in %s\n", VS_VERSION_STRING, dir);
  if (open_db(dir, VS_OPEN_CREATE, &db))
    return 1;
  rc = vs_collection_drop(db, "demo", &err);
  if (rc && rc != VS_ENOTFOUND)
    goto fail;
  vs_error_clear(&err);
  {
    const char *fields[] = {"title"};
    vs_collection_config cfg = {"demo", 4, VS_METRIC_COSINE, "HNSW16", fields, 1, "english", 0, 0};
    rc = vs_collection_create(db, &cfg, &err);
    if (rc)
      goto fail;
  }
  if ((rc = vs_collection_describe(db, "demo", &info, &err)))
    goto fail;
  printf("1. created collection: ");
  print_info(info);
  vs_free(info);

  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 4; j++)
      vecs[i][j] = (float)((i + 1) * (j + 1) % 7) / 7.0f;
    demo_payload(&sb[i], titles[i], 2020 + i, tags[i]);
    pts[i] = (vs_point){vs_id_int((uint64_t)i + 1), vecs[i], 4, sb[i].data, sb[i].size};
  }
  pts[4].id = vs_id_str("doc-five"); /* ids are integers or strings */
  rc = vs_upsert(db, "demo", pts, 5, &err);
  for (int i = 0; i < 5; i++)
    msgpack_sbuffer_destroy(&sb[i]);
  if (rc)
    goto fail;
  vs_count(db, "demo", &count, NULL);
  printf("2. upserted 5 points durably; count = %llu\n", (unsigned long long)count);

  {
    float bad[4] = {1, 2, 0.0f / 0.0f, 4};
    vs_point p = {vs_id_int(99), bad, 4, NULL, 0};
    vs_error e2 = VS_ERROR_INIT;
    rc = vs_upsert(db, "demo", &p, 1, &e2);
    printf("3. a NaN vector is refused: %s (%s)\n", vs_err_name(rc), e2.message);
    p.vector = vecs[0];
    p.dim = 3;
    vs_error_clear(&e2);
    rc = vs_upsert(db, "demo", &p, 1, &e2);
    printf("   a 3-d vector is refused:  %s (%s)\n", vs_err_name(rc), e2.message);
  }

  ids[0] = vs_id_int(2);
  ids[1] = vs_id_str("doc-five");
  ids[2] = vs_id_str("2"); /* the string "2" is not the integer 2 */
  if ((rc = vs_get(db, "demo", ids, 3, VS_GET_VECTOR | VS_GET_PAYLOAD, &recs, &err)))
    goto fail;
  printf("4. get 2, \"doc-five\", \"2\":\n");
  for (int i = 0; i < 3; i++) {
    printf("   ");
    if (recs[i].id.kind == VS_ID_INT)
      printf("%llu", (unsigned long long)recs[i].id.num);
    else
      printf("\"%s\"", recs[i].id.str);
    if (!recs[i].found) {
      printf(": not found\n");
      continue;
    }
    printf(": vector [%.3f %.3f %.3f %.3f] payload ", recs[i].vector[0], recs[i].vector[1],
           recs[i].vector[2], recs[i].vector[3]);
    print_payload(recs[i].payload, recs[i].payload_len);
    printf("\n");
  }
  vs_free(recs);

  if ((rc = vs_delete(db, "demo", ids, 2, &deleted, &err)))
    goto fail;
  vs_count(db, "demo", &count, NULL);
  printf("5. deleted %zu points; count = %llu\n", deleted, (unsigned long long)count);

  vs_db_close(db);
  if (open_db(dir, 0, &db))
    return 1;
  vs_count(db, "demo", &count, NULL);
  {
    vs_change ch[16];
    size_t n;
    vs_changes(db, "demo", 0, ch, 16, &n, NULL);
    printf("6. reopened: count = %llu; change log holds %zu entries:", (unsigned long long)count,
           n);
    for (size_t i = 0; i < n; i++)
      printf(" %s:%llu", ch[i].op == VS_CHANGE_UPSERT ? "+" : "-", (unsigned long long)ch[i].pid);
    printf("\n");
  }
  {
    vs_search_params sp = {vecs[2], 4, 2, 0, 0, 0, VS_GET_PAYLOAD, NULL};
    vs_filter *f = NULL;
    const char *by_year = "{\"must\": [{\"key\": \"year\", \"range\": {\"gte\": 2023}}]}";
    vs_search_info si;
    vs_hit *hits;
    size_t n;

    if ((rc = vs_search(db, "demo", &sp, &hits, &n, &si, &err)))
      goto fail;
    printf("7. the 2 points nearest to point 3's vector (cosine, plan %s):", si.plan);
    for (size_t i = 0; i < n; i++)
      printf(" %llu (%.3f)", (unsigned long long)hits[i].id.num, hits[i].score);
    printf("\n");
    vs_free(hits);
    if ((rc = vs_filter_parse_json(by_year, strlen(by_year), &f, &err)))
      goto fail;
    sp.filter = f;
    rc = vs_search(db, "demo", &sp, &hits, &n, &si, &err);
    vs_filter_free(f);
    if (rc)
      goto fail;
    printf("   with the filter year >= 2023 (plan %s):", si.plan);
    for (size_t i = 0; i < n; i++)
      printf(" %llu (%.3f)", (unsigned long long)hits[i].id.num, hits[i].score);
    printf("\n");
    vs_free(hits);
  }
  {
    /* The titles are the collection's text field: BM25 over them. */
    vs_text_params tp = {"fusion for BM25", 15, 3, VS_GET_PAYLOAD};
    vs_search_info si;
    vs_hit *hits;
    size_t n;

    if ((rc = vs_text_search(db, "demo", &tp, &hits, &n, &si, &err)))
      goto fail;
    printf("8. text search \"%s\" over the titles (BM25, plan %s):", tp.text, si.plan);
    for (size_t i = 0; i < n; i++) {
      printf(" %llu (%.3f", (unsigned long long)hits[i].id.num, hits[i].score);
      printf(", ");
      print_payload(hits[i].payload, hits[i].payload_len);
      printf(")");
    }
    printf("\n");
    vs_free(hits);
  }
  vs_db_close(db);
  printf("done: inspect with `build/vsearch stats %s` or `mdb_stat -a %s`\n", dir, dir);
  return 0;

fail:
  vs_db_close(db);
  return fail("demo", rc, &err);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "demo") == 0)
    return cmd_demo(argc - 2, argv + 2);
  if (strcmp(argv[1], "demo-data") == 0)
    return cmd_demo_data(argc - 2, argv + 2);
  if (strcmp(argv[1], "create") == 0)
    return cmd_create(argc - 2, argv + 2);
  if (strcmp(argv[1], "drop") == 0)
    return cmd_drop(argc - 2, argv + 2);
  if (strcmp(argv[1], "stats") == 0)
    return cmd_stats(argc - 2, argv + 2);
  if (strcmp(argv[1], "import") == 0)
    return cmd_import(argc - 2, argv + 2);
  if (strcmp(argv[1], "build") == 0)
    return cmd_build(argc - 2, argv + 2);
  if (strcmp(argv[1], "query") == 0)
    return cmd_query(argc - 2, argv + 2);
  if (strcmp(argv[1], "serve") == 0)
    return cmd_serve(argc - 2, argv + 2);
  if (strcmp(argv[1], "bench") == 0 && argc >= 3 && strcmp(argv[2], "text") == 0)
    return cmd_bench_text(argc - 3, argv + 3);
  if (strcmp(argv[1], "bench") == 0 && argc >= 3 && strcmp(argv[2], "server") == 0)
    return cmd_bench_server(argc - 3, argv + 3);
  if (strcmp(argv[1], "bench") == 0)
    return cmd_bench(argc - 2, argv + 2);
  if (strcmp(argv[1], "version") == 0) {
    printf("vsearch %s\n", VS_VERSION_STRING);
    return 0;
  }
  if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "vsearch: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
