/*
 * cmd_demo_data.c: `vsearch demo-data DIR [--data DIR]`, the demo
 * collections `make run` serves, loaded once (collections already there
 * are left alone):
 *
 *   fashion  Fashion-MNIST's 60,000 training images (784 pixels, l2,
 *            HNSW32) from Debian's dataset-fashion-mnist, with payload
 *            {"label": n, "class": name}: vector search, filters by class.
 *   scifact  SciFact's 5,183 abstracts (BEIR) as text, {"title", "text"},
 *            English BM25: text search.  Read from DATA/scifact (default
 *            $VS_TEST_DATA, else ../shared/data); skipped with a message
 *            when the files are not there.
 *
 * It ends by printing how to query them once `vsearch serve DIR` runs.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vsearch.h"
#include "tools/commands.h"
#include "tools/datasets.h"
#include "tools/textsets.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"
#define BATCH 1000

static const char *const CLASSES[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                        "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                        "Bag",         "Ankle boot"};

static int fail(const char *what, int rc, const vs_error *err) {
  fprintf(stderr, "vsearch demo-data: %s: %s\n", what,
          err && err->code ? err->message : vs_strerror(rc));
  return 1;
}

/* Does collection `name` exist? */
static int exists(vs_db *db, const char *name) {
  vs_collection_info *info;
  vs_error err = VS_ERROR_INIT;

  if (vs_collection_describe(db, name, &info, &err) != VS_OK)
    return 0;
  vs_free(info);
  return 1;
}

static int load_fashion(vs_db *db) {
  vs_collection_config cfg = {"fashion", 784, VS_METRIC_L2, "HNSW32"};
  vs_error err = VS_ERROR_INIT;
  char msg[256];
  float *x = NULL;
  uint8_t *label = NULL;
  size_t rows, dim, nl;
  int rc = 0;

  if (ds_read_vectors(FMNIST "train-images-idx3-ubyte.gz", "idx", 0, SIZE_MAX, &x, &rows, &dim, msg,
                      sizeof msg) ||
      ds_read_idx_labels(FMNIST "train-labels-idx1-ubyte.gz", 0, SIZE_MAX, &label, &nl, msg,
                         sizeof msg) ||
      nl != rows || dim != 784) {
    fprintf(stderr, "vsearch demo-data: Fashion-MNIST (%s): %s\n", FMNIST,
            nl != rows ? "labels and images differ" : msg);
    rc = 1;
    goto out;
  }
  if ((rc = vs_collection_create(db, &cfg, &err))) {
    rc = fail("create fashion", rc, &err);
    goto out;
  }
  printf("fashion: loading %zu Fashion-MNIST images ...\n", rows);
  fflush(stdout);
  for (size_t at = 0; at < rows && rc == 0; at += BATCH) {
    size_t n = rows - at < BATCH ? rows - at : BATCH;
    vs_point p[BATCH];
    msgpack_sbuffer sb[BATCH];

    for (size_t i = 0; i < n; i++) {
      msgpack_packer pk;
      const char *cls = CLASSES[label[at + i] % 10];

      msgpack_sbuffer_init(&sb[i]);
      msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
      msgpack_pack_map(&pk, 2);
      msgpack_pack_str_with_body(&pk, "label", 5);
      msgpack_pack_int(&pk, label[at + i]);
      msgpack_pack_str_with_body(&pk, "class", 5);
      msgpack_pack_str_with_body(&pk, cls, strlen(cls));
      p[i] = (vs_point){vs_id_int(at + i), x + (at + i) * dim, dim, sb[i].data, sb[i].size};
    }
    if ((rc = vs_upsert(db, "fashion", p, n, &err)))
      rc = fail("upsert into fashion", rc, &err);
    for (size_t i = 0; i < n; i++)
      msgpack_sbuffer_destroy(&sb[i]);
  }
  if (rc == 0) {
    printf("fashion: building its HNSW32 index (about half a minute on 2 cores) ...\n");
    fflush(stdout);
    if ((rc = vs_collection_rebuild(db, "fashion", NULL, 0, &err)))
      rc = fail("build the fashion index", rc, &err);
  }
out:
  free(x);
  free(label);
  return rc;
}

static int load_scifact(vs_db *db, const char *data) {
  const char *fields[] = {"title", "text"};
  vs_collection_config cfg = {"scifact", 0, VS_METRIC_L2, NULL, fields, 2, "english"};
  vs_error err = VS_ERROR_INIT;
  char dir[1024], msg[256];
  ts_set set;
  int rc;

  snprintf(dir, sizeof dir, "%s/scifact", data);
  ts_set_init(&set);
  if (ts_read_beir(dir, &set, msg, sizeof msg)) {
    printf("scifact: skipped (%s)\n", msg);
    ts_set_free(&set);
    return 0;
  }
  if ((rc = vs_collection_create(db, &cfg, &err))) {
    ts_set_free(&set);
    return fail("create scifact", rc, &err);
  }
  printf("scifact: loading %zu abstracts ...\n", set.ndocs);
  for (size_t at = 0; at < set.ndocs && rc == 0; at += BATCH) {
    size_t n = set.ndocs - at < BATCH ? set.ndocs - at : BATCH;
    vs_point p[BATCH];
    msgpack_sbuffer sb[BATCH];

    for (size_t i = 0; i < n; i++) {
      const ts_doc *d = &set.docs[at + i];
      msgpack_packer pk;

      msgpack_sbuffer_init(&sb[i]);
      msgpack_packer_init(&pk, &sb[i], msgpack_sbuffer_write);
      msgpack_pack_map(&pk, 2);
      msgpack_pack_str_with_body(&pk, "title", 5);
      msgpack_pack_str_with_body(&pk, d->title, d->title_len);
      msgpack_pack_str_with_body(&pk, "text", 4);
      msgpack_pack_str_with_body(&pk, d->text, d->text_len);
      p[i] = (vs_point){vs_id_str(d->id), NULL, 0, sb[i].data, sb[i].size};
    }
    if ((rc = vs_upsert(db, "scifact", p, n, &err)))
      rc = fail("upsert into scifact", rc, &err);
    for (size_t i = 0; i < n; i++)
      msgpack_sbuffer_destroy(&sb[i]);
  }
  ts_set_free(&set);
  return rc;
}

int cmd_demo_data(int argc, char **argv) {
  const char *data = getenv("VS_TEST_DATA") ? getenv("VS_TEST_DATA") : "../shared/data";
  vs_open_options o = {VS_OPEN_CREATE, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;
  int rc = 0;

  if (argc < 1 || argv[0][0] == '-') {
    fprintf(stderr, "usage: vsearch demo-data DIR [--data DIR]\n");
    return 2;
  }
  for (int i = 1; i < argc; i += 2) {
    if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      data = argv[i + 1];
    } else {
      fprintf(stderr, "vsearch demo-data: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  if ((rc = vs_db_open(argv[0], &o, &db, &err)))
    return fail(argv[0], rc, &err);
  if (!exists(db, "fashion"))
    rc = load_fashion(db);
  if (rc == 0 && !exists(db, "scifact"))
    rc = load_scifact(db, data);
  vs_db_close(db);
  if (rc)
    return rc;
  printf("\ndemo collections in %s: fashion (vectors), scifact (text, when its data was found).\n"
         "Once `vsearch serve %s` listens on 127.0.0.1:7700, from another terminal:\n"
         "  build/vsearch query --connect 127.0.0.1:7700 fashion --vector-file "
         "%st10k-images-idx3-ubyte.gz --format idx --rows 0:1 --k 5 --with-payload\n"
         "  build/vsearch query --connect 127.0.0.1:7700 fashion --vector-file "
         "%st10k-images-idx3-ubyte.gz --format idx --rows 0:1 --k 5 --with-payload "
         "--filter '{\"must\": [{\"key\": \"class\", \"match\": {\"value\": \"Sneaker\"}}]}'\n"
         "  build/vsearch query --connect 127.0.0.1:7700 scifact --text 'vitamin D deficiency' "
         "--k 5 --payload-fields title\n"
         "or any MessagePack-RPC client: [0, 1, \"text_search\", [{\"collection\": \"scifact\", "
         "\"query\": \"...\", \"k\": 5}]].\n",
         argv[0], argv[0], FMNIST, FMNIST);
  return 0;
}
