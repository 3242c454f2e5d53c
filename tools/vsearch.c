/*
 * vsearch.c: the `vsearch` command line.
 *
 * Subcommands so far: demo (the end-to-end tour `make run` shows), create,
 * drop and stats.  serve, import, build, query and bench arrive with the
 * issues that build them (see DESIGN.md section 7 for the whole surface).
 * Errors go to stderr with a non-zero exit status; only this file exits.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vsearch.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage:\n"
      "  vsearch demo [DIR]                 create, upsert, get, delete, reopen; print each step\n"
      "  vsearch create DIR NAME --dim D [--metric l2|ip|cosine] [--index SPEC]\n"
      "                 [--text-fields a,b] [--language L] [--bm25-k1 X] [--bm25-b X]\n"
      "  vsearch drop DIR NAME\n"
      "  vsearch stats DIR                  list collections with their settings and counts\n"
      "  vsearch version\n");
}

static int fail(const char *what, int rc, const vs_error *err) {
  fprintf(stderr, "vsearch: %s: %s\n", what, err && err->code ? err->message : vs_strerror(rc));
  return 1;
}

static int open_db(const char *dir, unsigned flags, vs_db **db) {
  vs_open_options o = {flags, 0, 0};
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
  if (strcmp(argv[1], "create") == 0)
    return cmd_create(argc - 2, argv + 2);
  if (strcmp(argv[1], "drop") == 0)
    return cmd_drop(argc - 2, argv + 2);
  if (strcmp(argv[1], "stats") == 0)
    return cmd_stats(argc - 2, argv + 2);
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
