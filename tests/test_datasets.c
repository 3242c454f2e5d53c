/*
 * test_datasets.c: the dataset readers of tools/datasets.c: texmex round
 * trips (fvecs, bvecs, ivecs), row ranges and chunked streaming, IDX files
 * plain and gzip'ed, JSON lines of points with their msgpack payloads, and
 * every malformed-file path.  Real data (Fashion-MNIST from the Debian
 * package, bigann10k from ../shared/data) is read when present and skipped
 * with a message when not.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tools/datasets.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static char msg[512];

/* ---- file builders ------------------------------------------------------ */

static char *path_in(const char *dir, const char *name) {
  char *p = malloc(4096);
  assert_non_null(p);
  snprintf(p, 4096, "%s/%s", dir, name);
  return p;
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void put_le32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* A texmex file of `rows` rows of `dim` elem-byte values taken from vals
 * (rows * dim * elem bytes, already little-endian); returns its size. */
static size_t write_texmex(const char *path, size_t rows, size_t dim, size_t elem,
                           const void *vals) {
  size_t row_bytes = 4 + dim * elem, size = rows * row_bytes;
  unsigned char *b = malloc(size ? size : 1);

  assert_non_null(b);
  for (size_t i = 0; i < rows; i++) {
    put_le32(b + i * row_bytes, (uint32_t)dim);
    memcpy(b + i * row_bytes + 4, (const unsigned char *)vals + i * dim * elem, dim * elem);
  }
  write_bytes(path, b, size);
  free(b);
  return size;
}

/* Random floats, stored little-endian (the test hosts are little-endian;
 * the reader decodes byte by byte either way). */
static float *rand_floats(size_t n, uint64_t seed) {
  float *v = malloc(n * sizeof(float));
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = tu_randf(&seed) * 100.0f;
  return v;
}

/* An IDX file of unsigned bytes: sizes[0] rows of the product of the rest. */
static void write_idx(const char *path, int gz, const uint32_t *sizes, unsigned ndims,
                      const unsigned char *data, size_t n) {
  unsigned char h[4 + 4 * 4] = {0, 0, 0x08, (unsigned char)ndims};

  for (unsigned i = 0; i < ndims; i++)
    put_be32(h + 4 + 4 * i, sizes[i]);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, h, 4 + 4 * ndims), (int)(4 + 4 * ndims));
    if (n)
      assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(h, 1, 4 + 4 * ndims, f), 4 + 4 * ndims);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
  }
}

#define EXPECT_DS(call, want)                                                                      \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != (want))                                                                             \
      fail_msg("%s returned %d (%s), want %d", #call, rc_, msg, (int)(want));                      \
  } while (0)

/* ---- texmex ----------------------------------------------------------------- */

static void test_fvecs_round_trip(void **state) {
  char *dir = tu_mkdtemp(), *p = path_in(dir, "a.fvecs"), *q = path_in(dir, "a.data");
  float *v = rand_floats(10 * 5, 1), *out;
  size_t rows, dim;

  (void)state;
  write_texmex(p, 10, 5, 4, v);
  write_texmex(q, 10, 5, 4, v);
  EXPECT_DS(ds_read_vectors(p, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 10);
  assert_int_equal(dim, 5);
  assert_memory_equal(out, v, 50 * sizeof(float));
  free(out);

  /* A range reads only its rows; the format may be named explicitly. */
  EXPECT_DS(ds_read_vectors(q, "fvecs", 3, 7, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 4);
  assert_memory_equal(out, v + 3 * 5, 20 * sizeof(float));
  free(out);
  EXPECT_DS(ds_read_vectors(p, NULL, 9, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 1);
  assert_memory_equal(out, v + 45, 5 * sizeof(float));
  free(out);
  EXPECT_DS(ds_read_vectors(p, NULL, 10, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 0);
  assert_null(out);

  /* Ranges outside the file, and no format to guess. */
  EXPECT_DS(ds_read_vectors(p, NULL, 5, 11, &out, &rows, &dim, msg, sizeof(msg)), DS_EINVAL);
  assert_non_null(strstr(msg, "the file has 10 rows"));
  EXPECT_DS(ds_read_vectors(p, NULL, 6, 5, &out, &rows, &dim, msg, sizeof(msg)), DS_EINVAL);
  EXPECT_DS(ds_read_vectors(q, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_EINVAL);
  assert_non_null(strstr(msg, "cannot tell the format"));
  EXPECT_DS(ds_read_vectors(q, "hdf5", 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)),
            DS_EINVAL);
  assert_non_null(strstr(msg, "unknown format 'hdf5'"));

  free(v);
  free(p);
  free(q);
  tu_rmdir(dir);
  free(dir);
}

static void test_bvecs_ivecs_round_trip(void **state) {
  char *dir = tu_mkdtemp(), *b = path_in(dir, "a.bvecs"), *iv = path_in(dir, "gt.ivecs");
  unsigned char bytes[7 * 3];
  unsigned char ints[4 * 6 * 4];
  int32_t *gt;
  float *out;
  size_t rows, dim;

  (void)state;
  for (size_t i = 0; i < sizeof(bytes); i++)
    bytes[i] = (unsigned char)(i * 37 + 200);
  write_texmex(b, 7, 3, 1, bytes);
  EXPECT_DS(ds_read_vectors(b, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 7);
  assert_int_equal(dim, 3);
  for (size_t i = 0; i < sizeof(bytes); i++)
    assert_true(out[i] == (float)bytes[i]);
  free(out);
  EXPECT_DS(ds_read_vectors(b, "bvecs", 2, 4, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 2);
  assert_true(out[0] == (float)bytes[6] && out[5] == (float)bytes[11]);
  free(out);

  /* ivecs keeps int32 values, negative ones included. */
  for (size_t i = 0; i < 24; i++)
    put_le32(ints + 4 * i, (uint32_t)((int32_t)i * 1000 - 5000));
  write_texmex(iv, 4, 6, 4, ints);
  EXPECT_DS(ds_read_ivecs(iv, 1, SIZE_MAX, &gt, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 3);
  assert_int_equal(dim, 6);
  for (size_t i = 0; i < 18; i++)
    assert_int_equal(gt[i], (int32_t)(i + 6) * 1000 - 5000);
  free(gt);
  EXPECT_DS(ds_read_vectors(iv, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_true(out[0] == -5000.0f && out[5] == 0.0f);
  free(out);

  free(b);
  free(iv);
  tu_rmdir(dir);
  free(dir);
}

/* Rows of 32768 floats: the reader's 1 MiB scratch holds 7 of them, so
 * reads of every size cross its chunk boundaries. */
static void test_reader_chunks_and_seek(void **state) {
  const size_t n = 20, d = VS_DIM_MAX;
  char *dir = tu_mkdtemp(), *p = path_in(dir, "big.fvecs");
  float *v = rand_floats(n * d, 7), *out = malloc(n * d * sizeof(float));
  size_t got, total = 0;
  ds_reader *r;

  (void)state;
  assert_non_null(out);
  write_texmex(p, n, d, 4, v);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_OK);
  assert_int_equal(ds_reader_rows(r), n);
  assert_int_equal(ds_reader_dim(r), d);
  assert_int_equal(ds_reader_format(r), DS_FORMAT_FVECS);
  for (size_t step = 1; total < n; step += 4) {
    EXPECT_DS(ds_reader_read(r, out + total * d, step, &got, msg, sizeof(msg)), DS_OK);
    assert_true(got >= 1 && got <= step);
    total += got;
    assert_int_equal(ds_reader_pos(r), total);
  }
  assert_memory_equal(out, v, n * d * sizeof(float));
  EXPECT_DS(ds_reader_read(r, out, 5, &got, msg, sizeof(msg)), DS_OK);
  assert_int_equal(got, 0);

  EXPECT_DS(ds_reader_seek(r, 13, msg, sizeof(msg)), DS_OK);
  EXPECT_DS(ds_reader_read(r, out, 100, &got, msg, sizeof(msg)), DS_OK);
  assert_int_equal(got, n - 13);
  assert_memory_equal(out, v + 13 * d, (n - 13) * d * sizeof(float));
  EXPECT_DS(ds_reader_seek(r, n + 1, msg, sizeof(msg)), DS_EINVAL);
  ds_reader_close(r);
  ds_reader_close(NULL);

  free(v);
  free(out);
  free(p);
  tu_rmdir(dir);
  free(dir);
}

static void test_texmex_malformed(void **state) {
  char *dir = tu_mkdtemp(), *p = path_in(dir, "bad.fvecs");
  unsigned char b[64] = {0};
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, *out;
  size_t rows, dim;
  ds_reader *r;

  (void)state;
  EXPECT_DS(ds_read_vectors(p, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_EIO);
  assert_non_null(strstr(msg, "No such file"));

  write_bytes(p, b, 0);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "empty"));
  write_bytes(p, b, 3);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EFORMAT);

  /* dim 0, a negative dim and one over VS_DIM_MAX. */
  write_bytes(p, b, 8);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "dim 0"));
  put_le32(b, (uint32_t)-3);
  write_bytes(p, b, 8);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "dim -3"));
  put_le32(b, VS_DIM_MAX + 1);
  write_bytes(p, b, 8);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EFORMAT);

  /* Truncated: two rows of dim 4 less one byte. */
  write_texmex(p, 2, 4, 4, v);
  {
    FILE *f = fopen(p, "rb");
    size_t n = fread(b, 1, sizeof(b), f);
    fclose(f);
    assert_int_equal(n, 40);
    write_bytes(p, b, 39);
  }
  EXPECT_DS(ds_read_vectors(p, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "not a whole number of 20-byte rows"));

  /* A row whose own dim differs, in a file whose size still divides. */
  put_le32(b + 20, 5);
  write_bytes(p, b, 40);
  EXPECT_DS(ds_read_vectors(p, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "row 1 has dim 5, the first row has dim 4"));
  assert_null(out);
  /* Row 0 alone is fine. */
  EXPECT_DS(ds_read_vectors(p, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_true(out[3] == 4.0f);
  free(out);

  /* Compressed texmex is refused with a clear message. */
  free(p);
  p = path_in(dir, "x.fvecs.gz");
  write_bytes(p, b, 40);
  EXPECT_DS(ds_reader_open(p, NULL, &r, msg, sizeof(msg)), DS_EINVAL);
  assert_non_null(strstr(msg, "gunzip"));
  EXPECT_DS(ds_reader_open(p, "jsonl", &r, msg, sizeof(msg)), DS_EINVAL);

  free(p);
  tu_rmdir(dir);
  free(dir);
}

/* ---- IDX ---------------------------------------------------------------------- */

static void test_idx(void **state) {
  char *dir = tu_mkdtemp();
  char *img = path_in(dir, "img-idx3-ubyte"), *imgz = path_in(dir, "img-idx3-ubyte.gz");
  char *lab = path_in(dir, "lab.idx.gz"), *bad = path_in(dir, "bad.idx");
  uint32_t isz[3] = {6, 2, 3}, lsz[1] = {6};
  unsigned char pix[36], labels[6] = {9, 0, 0, 3, 0, 2};
  uint8_t *l;
  float *out;
  size_t rows, dim;

  (void)state;
  for (size_t i = 0; i < sizeof(pix); i++)
    pix[i] = (unsigned char)(i * 7);
  write_idx(img, 0, isz, 3, pix, sizeof(pix));
  write_idx(imgz, 1, isz, 3, pix, sizeof(pix));
  write_idx(lab, 1, lsz, 1, labels, sizeof(labels));
  for (int z = 0; z < 2; z++) {
    const char *p = z ? imgz : img;
    EXPECT_DS(ds_read_vectors(p, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
    assert_int_equal(rows, 6);
    assert_int_equal(dim, 6);
    for (size_t i = 0; i < sizeof(pix); i++)
      assert_true(out[i] == (float)pix[i]);
    free(out);
    EXPECT_DS(ds_read_vectors(p, "idx", 4, 6, &out, &rows, &dim, msg, sizeof(msg)), DS_OK);
    assert_int_equal(rows, 2);
    assert_true(out[0] == (float)pix[24] && out[11] == (float)pix[35]);
    free(out);
  }
  EXPECT_DS(ds_read_idx_labels(lab, 0, SIZE_MAX, &l, &rows, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 6);
  assert_memory_equal(l, labels, 6);
  free(l);
  EXPECT_DS(ds_read_idx_labels(lab, 3, 4, &l, &rows, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 1);
  assert_int_equal(l[0], 3);
  free(l);
  EXPECT_DS(ds_read_idx_labels(img, 0, SIZE_MAX, &l, &rows, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "not a label file"));

  /* A gzip'ed body shorter than its header declares. */
  write_idx(imgz, 1, isz, 3, pix, sizeof(pix) - 5);
  EXPECT_DS(ds_read_vectors(imgz, NULL, 0, SIZE_MAX, &out, &rows, &dim, msg, sizeof(msg)),
            DS_EFORMAT);
  assert_non_null(strstr(msg, "file ends inside"));
  assert_null(out);
  /* The plain one is sized up at open. */
  write_idx(img, 0, isz, 3, pix, sizeof(pix) - 5);
  EXPECT_DS(ds_read_vectors(img, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "its header declares 6 rows"));
  /* Bad magic, element type and sizes. */
  write_bytes(bad, "\x01\x02\x08\x01\0\0\0\0", 8);
  EXPECT_DS(ds_read_vectors(bad, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "not an IDX file"));
  write_bytes(bad, "\0\0\x0d\x01\0\0\0\0", 8);
  EXPECT_DS(ds_read_vectors(bad, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "element type 0x0d"));
  write_bytes(bad, "\0\0\x08\x02\0\0\0\x01\0\0\0\0", 12);
  EXPECT_DS(ds_read_vectors(bad, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  write_bytes(bad, "\0\0\x08\x03\0\0", 6);
  EXPECT_DS(ds_read_vectors(bad, NULL, 0, 1, &out, &rows, &dim, msg, sizeof(msg)), DS_EFORMAT);
  assert_non_null(strstr(msg, "ends inside the IDX header"));

  free(img);
  free(imgz);
  free(lab);
  free(bad);
  tu_rmdir(dir);
  free(dir);
}

/* ---- JSON lines ----------------------------------------------------------------- */

/* Decode a payload and print it with msgpack-c (its own notation: "k"=>v), for
 * comparing with text. */
static void payload_text(const ds_point *pt, char *out, size_t cap) {
  msgpack_unpacked u;
  size_t off = 0;

  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, pt->point.payload, pt->point.payload_len, &off),
                   MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, pt->point.payload_len);
  msgpack_object_print_buffer(out, cap, u.data);
  msgpack_unpacked_destroy(&u);
}

static void test_jsonl_points(void **state) {
  static const char text[] =
      "{\"id\": 5, \"vector\": [1, 2.5, -3e2], \"payload\": {\"title\": \"caf\\u00e9\", "
      "\"year\": 2024, \"score\": 0.5, \"ok\": true, \"tags\": [\"a\", 1]}}\n"
      "\n"
      "  \t\n"
      "{\"vector\": [0, 0, 0], \"id\": \"doc-7\"}\r\n"
      "{\"id\": 9223372036854775807, \"vector\": [1, 1, 1], \"payload\": {\"n\": null, "
      "\"m\": {\"x\": 1}}}\n"
      "{\"id\": \"text-only\", \"vector\": null, \"payload\": null}";
  char *dir = tu_mkdtemp(), *p = path_in(dir, "points.jsonl"), *pz = path_in(dir, "p.jsonl.gz");
  char buf[512];
  ds_format fmt;
  ds_jsonl *r;
  ds_point pt;
  gzFile gz;

  (void)state;
  write_bytes(p, text, strlen(text));
  gz = gzopen(pz, "wb");
  assert_non_null(gz);
  gzwrite(gz, text, (unsigned)strlen(text));
  gzclose(gz);
  EXPECT_DS(ds_format_resolve(NULL, pz, &fmt, msg, sizeof(msg)), DS_OK);
  assert_int_equal(fmt, DS_FORMAT_JSONL);

  for (int z = 0; z < 2; z++) {
    EXPECT_DS(ds_jsonl_open(z ? pz : p, &r, msg, sizeof(msg)), DS_OK);

    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_OK);
    assert_int_equal(pt.line, 1);
    assert_int_equal(pt.point.id.kind, VS_ID_INT);
    assert_int_equal(pt.point.id.num, 5);
    assert_int_equal(pt.point.dim, 3);
    assert_true(pt.point.vector[0] == 1.0f && pt.point.vector[1] == 2.5f &&
                pt.point.vector[2] == -300.0f);
    payload_text(&pt, buf, sizeof(buf));
    assert_string_equal(buf, "{\"title\"=>\"caf\xc3\xa9\", \"year\"=>2024, \"score\"=>0.500000, "
                             "\"ok\"=>true, \"tags\"=>[\"a\", 1]}");
    ds_point_free(&pt);
    assert_null(pt.mem);

    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_OK);
    assert_int_equal(pt.line, 4); /* blank lines are skipped but counted */
    assert_int_equal(pt.point.id.kind, VS_ID_STR);
    assert_int_equal(pt.point.id.len, 5);
    assert_memory_equal(pt.point.id.str, "doc-7", 5);
    assert_null(pt.point.payload);
    assert_int_equal(pt.point.dim, 3);
    ds_point_free(&pt);

    /* The largest integer id; null and a nested object pass through for
     * vs_upsert to refuse. */
    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_OK);
    assert_int_equal(pt.point.id.num, (uint64_t)VS_INT_ID_MAX);
    payload_text(&pt, buf, sizeof(buf));
    assert_string_equal(buf, "{\"n\"=>nil, \"m\"=>{\"x\"=>1}}");
    ds_point_free(&pt);

    /* No newline at the end; no vector, no payload. */
    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_OK);
    assert_int_equal(pt.line, 6);
    assert_null(pt.point.vector);
    assert_int_equal(pt.point.dim, 0);
    assert_null(pt.point.payload);
    assert_string_equal(pt.point.id.str, "text-only");
    ds_point_free(&pt);

    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_END);
    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_END);
    assert_int_equal(ds_jsonl_line(r), 6);
    ds_jsonl_close(r);
  }
  ds_jsonl_close(NULL);
  ds_point_free(NULL);

  free(p);
  free(pz);
  tu_rmdir(dir);
  free(dir);
}

/* Each bad line is reported with its number, after a good first line. */
static void test_jsonl_errors(void **state) {
  static const struct {
    const char *line, *want;
  } cases[] = {
      {"{\"id\": 1, \"vector\": [1, 2}", "line 2: invalid JSON"},
      {"[1, 2, 3]", "line 2: expected a JSON object"},
      {"{\"vector\": [1]}", "line 2: no \"id\""},
      {"{\"id\": -1}", "integer id -1 is not in 0..2^63-1"},
      {"{\"id\": 9223372036854775808}", "line 2: invalid JSON"},
      {"{\"id\": 1.5}", "\"id\" must be an integer or a string"},
      {"{\"id\": [1]}", "\"id\" must be an integer or a string"},
      {"{\"id\": 1, \"vector\": \"1,2\"}", "\"vector\" must be an array of numbers"},
      {"{\"id\": 1, \"vector\": [1, \"2\"]}", "vector component 1 is not a number"},
      {"{\"id\": 1, \"vector\": [1e39]}", "vector component 0 is out of float range"},
      {"{\"id\": 1, \"vectors\": [1]}", "unknown key 'vectors'"},
      {"{\"id\": 1, \"id\": 2}", "line 2: invalid JSON"},
  };
  char *dir = tu_mkdtemp(), *p = path_in(dir, "bad.jsonl");
  char text[256];
  ds_jsonl *r;
  ds_point pt;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    snprintf(text, sizeof(text), "{\"id\": 0}\n%s\n{\"id\": 3}\n", cases[i].line);
    write_bytes(p, text, strlen(text));
    EXPECT_DS(ds_jsonl_open(p, &r, msg, sizeof(msg)), DS_OK);
    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_OK);
    ds_point_free(&pt);
    EXPECT_DS(ds_jsonl_next(r, &pt, msg, sizeof(msg)), DS_EFORMAT);
    if (strstr(msg, cases[i].want) == NULL || strstr(msg, "line 2") == NULL)
      fail_msg("line '%s': message '%s' lacks '%s'", cases[i].line, msg, cases[i].want);
    ds_jsonl_close(r);
  }
  EXPECT_DS(ds_jsonl_open("/nonexistent/x.jsonl", &r, msg, sizeof(msg)), DS_EIO);

  free(p);
  tu_rmdir(dir);
  free(dir);
}

/* ---- real data ---------------------------------------------------------------- */

static void test_fashion_mnist(void **state) {
  const char *img = FMNIST_DIR "/train-images-idx3-ubyte.gz";
  const char *lab = FMNIST_DIR "/train-labels-idx1-ubyte.gz";
  size_t rows, dim, lrows, per_class[10] = {0};
  float *x, *tail;
  uint8_t *l;
  FILE *f;

  (void)state;
  if ((f = fopen(img, "rb")) == NULL) {
    print_message("skipped: %s is absent (apt-get install dataset-fashion-mnist)\n", img);
    skip();
  }
  fclose(f);
  EXPECT_DS(ds_read_vectors(img, NULL, 0, SIZE_MAX, &x, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 60000);
  assert_int_equal(dim, 784);
  for (size_t i = 0; i < rows * dim; i++)
    if (!(x[i] >= 0.0f && x[i] <= 255.0f && x[i] == (float)(int)x[i]))
      fail_msg("component %zu is %g", i, (double)x[i]);
  /* A range reads the same rows as the whole file. */
  EXPECT_DS(ds_read_vectors(img, "idx", 59990, SIZE_MAX, &tail, &rows, &dim, msg, sizeof(msg)),
            DS_OK);
  assert_int_equal(rows, 10);
  assert_memory_equal(tail, x + (size_t)59990 * 784, 10 * 784 * sizeof(float));
  free(tail);
  free(x);

  /* Labels: 10 classes of 6000 training images each; the first is 9 (ankle
   * boot), as the dataset's README shows. */
  EXPECT_DS(ds_read_idx_labels(lab, 0, SIZE_MAX, &l, &lrows, msg, sizeof(msg)), DS_OK);
  assert_int_equal(lrows, 60000);
  for (size_t i = 0; i < lrows; i++) {
    assert_true(l[i] <= 9);
    per_class[l[i]]++;
  }
  for (int c = 0; c < 10; c++)
    assert_int_equal(per_class[c], 6000);
  assert_int_equal(l[0], 9);
  free(l);
}

static void test_bigann10k(void **state) {
  const char *base = getenv("VS_TEST_DATA");
  char b[4096], g[4096];
  size_t rows, dim;
  int32_t *gt;
  float *x;
  FILE *f;

  (void)state;
  snprintf(b, sizeof(b), "%s/bigann10k/bigann10k_base.bvecs", base ? base : "../shared/data");
  snprintf(g, sizeof(g), "%s/bigann10k/bigann10k_holdout_groundtruth_k100.ivecs",
           base ? base : "../shared/data");
  if ((f = fopen(b, "rb")) == NULL) {
    print_message("skipped: %s is absent\n", b);
    skip();
  }
  fclose(f);
  EXPECT_DS(ds_read_vectors(b, NULL, 0, SIZE_MAX, &x, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 10000);
  assert_int_equal(dim, 128);
  free(x);
  EXPECT_DS(ds_read_ivecs(g, 0, SIZE_MAX, &gt, &rows, &dim, msg, sizeof(msg)), DS_OK);
  assert_int_equal(rows, 100);
  assert_int_equal(dim, 100);
  for (size_t i = 0; i < rows * dim; i++)
    assert_true(gt[i] >= 0 && gt[i] < 9900);
  free(gt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fvecs_round_trip),
      cmocka_unit_test(test_bvecs_ivecs_round_trip),
      cmocka_unit_test(test_reader_chunks_and_seek),
      cmocka_unit_test(test_texmex_malformed),
      cmocka_unit_test(test_idx),
      cmocka_unit_test(test_jsonl_points),
      cmocka_unit_test(test_jsonl_errors),
      cmocka_unit_test(test_fashion_mnist),
      cmocka_unit_test(test_bigann10k),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
