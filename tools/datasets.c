/*
 * datasets.c: readers for texmex (fvecs/bvecs/ivecs), IDX and JSON lines
 * files; see datasets.h for the formats and the contract.
 *
 * A vector file is read through a ds_reader: the header fixes `dim` and
 * `rows` up front, then rows are read in chunks of about 1 MiB into a
 * scratch buffer and converted to floats (or int32 for ground truth).  A
 * texmex file is read with stdio: its row count is its size divided by the
 * bytes of one row, so a range is a seek away.  An IDX file is read with
 * zlib, which reads plain and gzip'ed files alike; its row count is declared
 * in the header, so for a compressed file a short body shows only when the
 * reader reaches it.  Invariants: `pos` <= `rows`; every row handed out has
 * been checked (a texmex row's own dimension equals `dim`).
 *
 * File contents are untrusted: declared sizes are checked before use, and
 * whole-file reads grow their output with the rows actually read rather than
 * trusting a header's row count.
 *
 * The JSON lines reader parses one line at a time with jansson and packs the
 * "payload" object as msgpack for vs_upsert(), which owns payload
 * validation: values vsearch does not store (null, nested objects) are
 * passed through so that its message is the one the user sees.
 */
#include "tools/datasets.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#define CHUNK_BYTES (1u << 20)     /* scratch buffer for reading rows */
#define LINE_MAX_BYTES (64u << 20) /* longest JSON line accepted */
#define GROW_ROWS_FIRST ((size_t)4096)

struct ds_reader {
  ds_format fmt;
  char *path;         /* for messages */
  FILE *f;            /* texmex files */
  gzFile gz;          /* IDX files */
  size_t rows, dim;   /* from the header (and the size, for texmex) */
  size_t elem;        /* bytes of one component in the file */
  size_t head;        /* bytes before a row's components (4 for texmex) */
  size_t row_bytes;   /* head + dim * elem */
  size_t data_off;    /* bytes of the file header (IDX) */
  size_t pos;         /* next row */
  unsigned char *buf; /* scratch for buf_rows rows */
  size_t buf_rows;
};

struct ds_jsonl {
  char *path;
  gzFile gz;
  char *line; /* the current line, NUL-terminated */
  size_t cap, len;
  size_t lineno;
  msgpack_sbuffer sb; /* the payload being packed */
};

/* Write a message into the caller's buffer (when there is one) and return
 * rc, so that every failure path is one `return say(...)`. */
static int say(char *msg, size_t cap, int rc, const char *fmt, ...) {
  va_list ap;

  if (msg && cap) {
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* Byte-order decoding: texmex files are little-endian, IDX headers
 * big-endian.  Decoding byte by byte keeps the readers right on any host;
 * compilers turn le32() into a plain load on x86. */
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ---- Formats ------------------------------------------------------------- */

/* Format names as the command line spells them (--format). */
static const struct {
  const char *name;
  ds_format fmt;
} formats[] = {{"fvecs", DS_FORMAT_FVECS},
               {"bvecs", DS_FORMAT_BVECS},
               {"ivecs", DS_FORMAT_IVECS},
               {"idx", DS_FORMAT_IDX},
               {"jsonl", DS_FORMAT_JSONL}};

const char *ds_format_name(ds_format f) {
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (formats[i].fmt == f)
      return formats[i].name;
  return "?";
}

/* An explicit name wins; otherwise the extension decides, looking through a
 * trailing ".gz" so that "corpus.jsonl.gz" is JSON lines.  MNIST's files are
 * named "train-images-idx3-ubyte", hence the "-ubyte" suffix. */
int ds_format_resolve(const char *name, const char *path, ds_format *out, char *msg,
                      size_t msgcap) {
  size_t n;

  *out = DS_FORMAT_NONE;
  if (name) {
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
      if (strcmp(name, formats[i].name) == 0) {
        *out = formats[i].fmt;
        return DS_OK;
      }
    return say(msg, msgcap, DS_EINVAL, "unknown format '%s' (fvecs, bvecs, ivecs, idx, jsonl)",
               name);
  }
  if (path == NULL)
    return say(msg, msgcap, DS_EINVAL, "no file name to guess the format from");
  n = strlen(path);
  if (ends_with(path, n, ".gz"))
    n -= 3;
  if (ends_with(path, n, ".fvecs"))
    *out = DS_FORMAT_FVECS;
  else if (ends_with(path, n, ".bvecs"))
    *out = DS_FORMAT_BVECS;
  else if (ends_with(path, n, ".ivecs"))
    *out = DS_FORMAT_IVECS;
  else if (ends_with(path, n, ".idx") || ends_with(path, n, "-ubyte"))
    *out = DS_FORMAT_IDX;
  else if (ends_with(path, n, ".jsonl") || ends_with(path, n, ".ndjson"))
    *out = DS_FORMAT_JSONL;
  else
    return say(msg, msgcap, DS_EINVAL,
               "%s: cannot tell the format from the file name; give one "
               "(fvecs, bvecs, ivecs, idx, jsonl)",
               path);
  return DS_OK;
}

/* ---- Vector files --------------------------------------------------------- */

/* Read the first row's dimension and size the file up.  The texmex format
 * has no header: every row repeats its dimension, so the first row's fixes
 * the row size, and the file size must be a whole number of rows.  Later
 * rows' own dimensions are checked as they are read (fill()), which keeps
 * opening a 100 GB file as cheap as opening a small one. */
static int open_texmex(ds_reader *r, char *msg, size_t cap) {
  unsigned char h[4];
  struct stat st;
  uint32_t d;
  size_t size;

  r->f = fopen(r->path, "rb");
  if (r->f == NULL)
    return say(msg, cap, DS_EIO, "%s: %s", r->path, strerror(errno));
  if (fstat(fileno(r->f), &st) != 0)
    return say(msg, cap, DS_EIO, "%s: %s", r->path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return say(msg, cap, DS_EINVAL, "%s: not a regular file", r->path);
  size = (size_t)st.st_size;
  if (size == 0)
    return say(msg, cap, DS_EFORMAT, "%s: file is empty", r->path);
  if (size < 4 || fread(h, 1, 4, r->f) != 4)
    return say(msg, cap, DS_EFORMAT, "%s: file is %zu bytes, too short for a %s row", r->path, size,
               ds_format_name(r->fmt));
  d = le32(h);
  if (d < 1 || d > VS_DIM_MAX)
    return say(msg, cap, DS_EFORMAT, "%s: first row has dim %ld, which must be 1..%d (is it %s?)",
               r->path, (long)(int32_t)d, VS_DIM_MAX, ds_format_name(r->fmt));
  r->dim = d;
  r->elem = r->fmt == DS_FORMAT_BVECS ? 1 : 4;
  r->head = 4;
  r->row_bytes = r->head + r->dim * r->elem;
  if (size % r->row_bytes)
    return say(msg, cap, DS_EFORMAT,
               "%s: file size %zu is not a whole number of %zu-byte rows (dim %zu): "
               "truncated, or not %s",
               r->path, size, r->row_bytes, r->dim, ds_format_name(r->fmt));
  r->rows = size / r->row_bytes;
  if (fseeko(r->f, 0, SEEK_SET) != 0)
    return say(msg, cap, DS_EIO, "%s: %s", r->path, strerror(errno));
  return DS_OK;
}

/* Read exactly n bytes from a gzip'ed or plain stream; DS_EFORMAT when it
 * ends early.  zlib reports a truncated gzip member as Z_BUF_ERROR with a
 * short count, which is the same "file ends" condition as a short plain
 * file; Z_ERRNO is a real read error and carries errno. */
static int gz_exact(ds_reader *r, void *p, size_t n, const char *what, char *msg, size_t cap) {
  int got = gzread(r->gz, p, (unsigned)n), zerr;
  const char *zmsg;

  if (got >= 0 && (size_t)got == n)
    return DS_OK;
  zmsg = gzerror(r->gz, &zerr);
  if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
    return say(msg, cap, zerr == Z_ERRNO ? DS_EIO : DS_EFORMAT, "%s: reading %s: %s", r->path, what,
               zerr == Z_ERRNO ? strerror(errno) : zmsg);
  return say(msg, cap, DS_EFORMAT, "%s: file ends inside %s", r->path, what);
}

/* Parse the IDX header: magic 0x0000 08 NN, then NN big-endian sizes.  The
 * sizes are untrusted: the row size is bounded by VS_DIM_MAX as it is
 * multiplied up, and the row count is only used to bound reads (whole-file
 * reads grow their buffer with the rows actually decompressed). */
static int open_idx(ds_reader *r, char *msg, size_t cap) {
  unsigned char h[4 * 5];
  unsigned ndims;
  int rc;

  errno = 0;
  r->gz = gzopen(r->path, "rb");
  if (r->gz == NULL)
    return say(msg, cap, errno == ENOMEM ? DS_ENOMEM : DS_EIO, "%s: %s", r->path,
               errno ? strerror(errno) : "cannot open");
  gzbuffer(r->gz, 1u << 17);
  if ((rc = gz_exact(r, h, 4, "the IDX header", msg, cap)))
    return rc;
  if (h[0] != 0 || h[1] != 0)
    return say(msg, cap, DS_EFORMAT, "%s: not an IDX file (magic 0x%02x%02x%02x%02x)", r->path,
               h[0], h[1], h[2], h[3]);
  if (h[2] != 0x08)
    return say(msg, cap, DS_EFORMAT,
               "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", r->path,
               h[2]);
  ndims = h[3];
  if (ndims < 1 || ndims > 4)
    return say(msg, cap, DS_EFORMAT, "%s: IDX file has %u dimensions, expected 1..4", r->path,
               ndims);
  if ((rc = gz_exact(r, h + 4, 4 * ndims, "the IDX header", msg, cap)))
    return rc;
  r->rows = be32(h + 4);
  r->dim = 1;
  for (unsigned i = 1; i < ndims; i++) {
    r->dim *= be32(h + 4 + 4 * i); /* at most 2^15 * 2^32: no overflow */
    if (r->dim < 1 || r->dim > VS_DIM_MAX)
      return say(msg, cap, DS_EFORMAT,
                 "%s: IDX rows (the product of the sizes after the first) must hold 1..%d "
                 "values",
                 r->path, VS_DIM_MAX);
  }
  r->elem = 1;
  r->head = 0;
  r->row_bytes = r->dim;
  r->data_off = 4 + 4 * (size_t)ndims;
  if (gzdirect(r->gz)) {
    /* A plain file: its size must match the header exactly. */
    struct stat st;
    if (stat(r->path, &st) == 0 && (size_t)st.st_size != r->data_off + r->rows * r->row_bytes)
      return say(msg, cap, DS_EFORMAT,
                 "%s: file is %zu bytes, its header declares %zu rows of %zu bytes (%zu bytes)",
                 r->path, (size_t)st.st_size, r->rows, r->row_bytes,
                 r->data_off + r->rows * r->row_bytes);
  }
  return DS_OK;
}

int ds_reader_open(const char *path, const char *format, ds_reader **out, char *msg,
                   size_t msgcap) {
  ds_format fmt;
  ds_reader *r;
  int rc;

  *out = NULL;
  if ((rc = ds_format_resolve(format, path, &fmt, msg, msgcap)))
    return rc;
  if (fmt == DS_FORMAT_JSONL)
    return say(msg, msgcap, DS_EINVAL, "%s: jsonl is not a vector file format here", path);
  r = calloc(1, sizeof(*r));
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    return say(msg, msgcap, DS_ENOMEM, "%s: out of memory", path);
  }
  r->fmt = fmt;
  if (fmt == DS_FORMAT_IDX)
    rc = open_idx(r, msg, msgcap);
  else if (ends_with(path, strlen(path), ".gz"))
    rc = say(msg, msgcap, DS_EINVAL, "%s: compressed %s files are not supported; gunzip it first",
             path, ds_format_name(fmt));
  else
    rc = open_texmex(r, msg, msgcap);
  if (rc)
    goto fail;
  r->buf_rows = CHUNK_BYTES / r->row_bytes;
  if (r->buf_rows == 0)
    r->buf_rows = 1;
  r->buf = malloc(r->buf_rows * r->row_bytes);
  if (r->buf == NULL) {
    rc = say(msg, msgcap, DS_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  *out = r;
  return DS_OK;

fail:
  ds_reader_close(r);
  return rc;
}

void ds_reader_close(ds_reader *r) {
  if (r == NULL)
    return;
  if (r->f)
    fclose(r->f);
  if (r->gz)
    gzclose(r->gz);
  free(r->buf);
  free(r->path);
  free(r);
}

size_t ds_reader_rows(const ds_reader *r) {
  return r->rows;
}

size_t ds_reader_dim(const ds_reader *r) {
  return r->dim;
}

ds_format ds_reader_format(const ds_reader *r) {
  return r->fmt;
}

size_t ds_reader_pos(const ds_reader *r) {
  return r->pos;
}

int ds_reader_seek(ds_reader *r, size_t row, char *msg, size_t msgcap) {
  if (row > r->rows)
    return say(msg, msgcap, DS_EINVAL, "%s: row %zu is past the end (%zu rows)", r->path, row,
               r->rows);
  if (r->f) {
    if (fseeko(r->f, (off_t)(row * r->row_bytes), SEEK_SET) != 0)
      return say(msg, msgcap, DS_EIO, "%s: %s", r->path, strerror(errno));
  } else {
    /* Seeking a compressed stream decompresses up to the target (or from
     * the start, going backwards): correct, only slower. */
    z_off_t to = (z_off_t)(r->data_off + row * r->row_bytes);
    if (gzseek(r->gz, to, SEEK_SET) != to)
      return say(msg, msgcap, DS_EFORMAT, "%s: cannot seek to row %zu: file is shorter", r->path,
                 row);
  }
  r->pos = row;
  return DS_OK;
}

/* Read n rows (n <= buf_rows, pos + n <= rows) into the scratch buffer and
 * check each texmex row's own dimension. */
static int fill(ds_reader *r, size_t n, char *msg, size_t cap) {
  int rc;

  if (r->f) {
    if (fread(r->buf, r->row_bytes, n, r->f) != n)
      return ferror(r->f) ? say(msg, cap, DS_EIO, "%s: %s", r->path, strerror(errno))
                          : say(msg, cap, DS_EFORMAT, "%s: file shrank while reading row %zu",
                                r->path, r->pos);
    for (size_t i = 0; i < n; i++) {
      uint32_t d = le32(r->buf + i * r->row_bytes);
      if (d != r->dim)
        return say(msg, cap, DS_EFORMAT, "%s: row %zu has dim %ld, the first row has dim %zu",
                   r->path, r->pos + i, (long)(int32_t)d, r->dim);
    }
  } else {
    char what[64];
    snprintf(what, sizeof(what), "rows %zu..%zu of %zu", r->pos, r->pos + n - 1, r->rows);
    if ((rc = gz_exact(r, r->buf, n * r->row_bytes, what, msg, cap)))
      return rc;
  }
  return DS_OK;
}

/* Read up to max rows as floats (out_f) or int32 (out_i), a scratch chunk at
 * a time.  Conversion is exact for fvecs and for bytes; ivecs values beyond
 * 2^24 in magnitude round when read as floats, which only matters for the
 * odd ivecs file used as vectors (ground truth goes through out_i). */
static int read_rows(ds_reader *r, float *out_f, int32_t *out_i, size_t max, size_t *got, char *msg,
                     size_t cap) {
  size_t done = 0;
  int rc = DS_OK;

  while (done < max && r->pos < r->rows) {
    size_t n = max - done;
    if (n > r->buf_rows)
      n = r->buf_rows;
    if (n > r->rows - r->pos)
      n = r->rows - r->pos;
    if ((rc = fill(r, n, msg, cap)))
      break;
    for (size_t i = 0; i < n; i++) {
      const unsigned char *p = r->buf + i * r->row_bytes + r->head;
      size_t o = (done + i) * r->dim;
      if (out_i) {
        for (size_t j = 0; j < r->dim; j++)
          out_i[o + j] = r->elem == 1 ? (int32_t)p[j] : (int32_t)le32(p + 4 * j);
      } else if (r->elem == 1) {
        for (size_t j = 0; j < r->dim; j++)
          out_f[o + j] = (float)p[j];
      } else if (r->fmt == DS_FORMAT_IVECS) {
        for (size_t j = 0; j < r->dim; j++)
          out_f[o + j] = (float)(int32_t)le32(p + 4 * j);
      } else {
        for (size_t j = 0; j < r->dim; j++) {
          uint32_t bits = le32(p + 4 * j);
          memcpy(&out_f[o + j], &bits, sizeof(float));
        }
      }
    }
    done += n;
    r->pos += n;
  }
  *got = done;
  return rc;
}

int ds_reader_read(ds_reader *r, float *out, size_t max_rows, size_t *got, char *msg,
                   size_t msgcap) {
  return read_rows(r, out, NULL, max_rows, got, msg, msgcap);
}

/* Read rows [begin, end) of an open reader into a malloc'd array of 4-byte
 * components (float, or int32 when as_int), growing it with the rows
 * actually read: a gzip'ed IDX header may promise more rows than the file
 * holds, and must not make us allocate for them up front. */
static int read_range(ds_reader *r, size_t begin, size_t end, int as_int, void **out, size_t *rows,
                      char *msg, size_t cap) {
  size_t want, have = 0, alloc = 0, row_size = r->dim * 4;
  unsigned char *a = NULL;
  int rc;

  *out = NULL;
  *rows = 0;
  if (end == SIZE_MAX)
    end = r->rows;
  if (begin > end || end > r->rows)
    return say(msg, cap, DS_EINVAL, "%s: rows %zu:%zu asked, the file has %zu rows", r->path, begin,
               end, r->rows);
  if ((rc = ds_reader_seek(r, begin, msg, cap)))
    return rc;
  want = end - begin;
  while (have < want) {
    size_t got, n;
    if (have == alloc) {
      size_t next = alloc ? alloc * 2 : GROW_ROWS_FIRST;
      unsigned char *p;
      if (next > want)
        next = want;
      if (next > SIZE_MAX / row_size || (p = realloc(a, next * row_size)) == NULL) {
        rc = say(msg, cap, DS_ENOMEM, "%s: out of memory for %zu rows of dim %zu", r->path, next,
                 r->dim);
        goto fail;
      }
      a = p;
      alloc = next;
    }
    n = alloc - have;
    rc = read_rows(r, as_int ? NULL : (float *)(void *)(a + have * row_size),
                   as_int ? (int32_t *)(void *)(a + have * row_size) : NULL, n, &got, msg, cap);
    if (rc)
      goto fail;
    have += got;
    if (got < n) {
      rc = say(msg, cap, DS_EFORMAT, "%s: file ends at row %zu of %zu", r->path, r->pos, r->rows);
      goto fail;
    }
  }
  *out = a;
  *rows = have;
  return DS_OK;

fail:
  free(a);
  return rc;
}

int ds_read_vectors(const char *path, const char *format, size_t row_begin, size_t row_end,
                    float **out, size_t *rows, size_t *dim, char *msg, size_t msgcap) {
  ds_reader *r;
  void *a;
  int rc;

  *out = NULL;
  *rows = *dim = 0;
  if ((rc = ds_reader_open(path, format, &r, msg, msgcap)))
    return rc;
  rc = read_range(r, row_begin, row_end, 0, &a, rows, msg, msgcap);
  if (rc == DS_OK) {
    *out = a;
    *dim = r->dim;
  }
  ds_reader_close(r);
  return rc;
}

int ds_read_ivecs(const char *path, size_t row_begin, size_t row_end, int32_t **out, size_t *rows,
                  size_t *dim, char *msg, size_t msgcap) {
  ds_reader *r;
  void *a;
  int rc;

  *out = NULL;
  *rows = *dim = 0;
  if ((rc = ds_reader_open(path, "ivecs", &r, msg, msgcap)))
    return rc;
  rc = read_range(r, row_begin, row_end, 1, &a, rows, msg, msgcap);
  if (rc == DS_OK) {
    *out = a;
    *dim = r->dim;
  }
  ds_reader_close(r);
  return rc;
}

int ds_read_idx_labels(const char *path, size_t row_begin, size_t row_end, uint8_t **out,
                       size_t *rows, char *msg, size_t msgcap) {
  ds_reader *r;
  int32_t *a;
  uint8_t *b = NULL;
  void *tmp;
  int rc;

  *out = NULL;
  *rows = 0;
  if ((rc = ds_reader_open(path, "idx", &r, msg, msgcap)))
    return rc;
  if (r->dim != 1) {
    rc = say(msg, msgcap, DS_EFORMAT, "%s: not a label file: rows have %zu values, not 1", path,
             r->dim);
    ds_reader_close(r);
    return rc;
  }
  rc = read_range(r, row_begin, row_end, 1, &tmp, rows, msg, msgcap);
  ds_reader_close(r);
  if (rc)
    return rc;
  a = tmp;
  if (*rows) {
    b = malloc(*rows);
    if (b == NULL) {
      free(a);
      *rows = 0;
      return say(msg, msgcap, DS_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < *rows; i++)
      b[i] = (uint8_t)a[i];
  }
  free(a);
  *out = b;
  return DS_OK;
}

/* ---- JSON lines ------------------------------------------------------------ */

/* The file is opened with zlib, which reads plain files as they are, so
 * "corpus.jsonl.gz" and "corpus.jsonl" need nothing different. */
int ds_jsonl_open(const char *path, ds_jsonl **out, char *msg, size_t msgcap) {
  ds_jsonl *r = calloc(1, sizeof(*r));

  *out = NULL;
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    return say(msg, msgcap, DS_ENOMEM, "%s: out of memory", path);
  }
  errno = 0;
  r->gz = gzopen(path, "rb");
  if (r->gz == NULL) {
    int rc = say(msg, msgcap, DS_EIO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    free(r->path);
    free(r);
    return rc;
  }
  gzbuffer(r->gz, 1u << 17);
  msgpack_sbuffer_init(&r->sb);
  *out = r;
  return DS_OK;
}

void ds_jsonl_close(ds_jsonl *r) {
  if (r == NULL)
    return;
  gzclose(r->gz);
  msgpack_sbuffer_destroy(&r->sb);
  free(r->line);
  free(r->path);
  free(r);
}

size_t ds_jsonl_line(const ds_jsonl *r) {
  return r->lineno;
}

/* Read one line (without its newline) into r->line; DS_END at the end of
 * the file.  The buffer grows with the bytes actually read. */
static int read_line(ds_jsonl *r, char *msg, size_t cap) {
  r->len = 0;
  for (;;) {
    int zerr;
    if (r->cap - r->len < 2) {
      size_t next = r->cap ? r->cap * 2 : 4096;
      char *p;
      if (next > LINE_MAX_BYTES)
        return say(msg, cap, DS_EFORMAT, "%s: line %zu is longer than %u MiB", r->path,
                   r->lineno + 1, LINE_MAX_BYTES >> 20);
      if ((p = realloc(r->line, next)) == NULL)
        return say(msg, cap, DS_ENOMEM, "%s: line %zu: out of memory", r->path, r->lineno + 1);
      r->line = p;
      r->cap = next;
    }
    if (gzgets(r->gz, r->line + r->len, (int)(r->cap - r->len)) == NULL) {
      const char *zmsg = gzerror(r->gz, &zerr);
      if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return say(msg, cap, zerr == Z_ERRNO ? DS_EIO : DS_EFORMAT, "%s: line %zu: %s", r->path,
                   r->lineno + 1, zerr == Z_ERRNO ? strerror(errno) : zmsg);
      if (r->len == 0)
        return DS_END;
      break; /* a last line without a newline */
    }
    r->len += strlen(r->line + r->len);
    if (r->len && r->line[r->len - 1] == '\n')
      break;
    if (gzeof(r->gz))
      break;
  }
  r->lineno++;
  while (r->len && (r->line[r->len - 1] == '\n' || r->line[r->len - 1] == '\r'))
    r->line[--r->len] = '\0';
  return DS_OK;
}

/* Pack a JSON value as msgpack; nonzero when the buffer cannot grow.
 * Integers stay integers (jansson keeps them as json_int_t, 64 bits) and
 * reals stay doubles, so a payload's "year": 2024 filters as an integer.
 * Everything is packed, including what vsearch does not store (null,
 * nested objects): vs_upsert() owns payload validation and its message
 * names the offending field.  jansson bounds nesting depth at parse time,
 * which bounds this recursion. */
static int pack(msgpack_packer *pk, json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  int rc = 0;

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    rc = msgpack_pack_map(pk, json_object_size(v));
    json_object_foreach(v, key, item) {
      if (rc == 0)
        rc = msgpack_pack_str_with_body(pk, key, strlen(key));
      if (rc == 0)
        rc = pack(pk, item);
    }
    return rc;
  case JSON_ARRAY:
    rc = msgpack_pack_array(pk, json_array_size(v));
    json_array_foreach(v, i, item) {
      if (rc == 0)
        rc = pack(pk, item);
    }
    return rc;
  case JSON_STRING:
    return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
  case JSON_REAL:
    return msgpack_pack_double(pk, json_real_value(v));
  case JSON_TRUE:
    return msgpack_pack_true(pk);
  case JSON_FALSE:
    return msgpack_pack_false(pk);
  case JSON_NULL:
    return msgpack_pack_nil(pk);
  }
  return -1;
}

static int blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r')
      return 0;
  return 1;
}

/* Turn one parsed line into a point: checks the keys, the id and the
 * vector, packs the payload, and copies everything into one allocation
 * laid out as [vector floats][payload bytes][id bytes, NUL], vector first
 * so that it has malloc's alignment.  Unknown keys are refused rather than
 * ignored: "vectors" for "vector" would otherwise import points without
 * their vectors into a text-only collection, silently. */
static int to_point(ds_jsonl *r, json_t *root, ds_point *pt, char *msg, size_t cap) {
  json_t *id, *vec, *payload, *item;
  const char *key, *id_str = NULL;
  size_t dim = 0, id_len = 0, i;
  uint64_t id_num = 0;
  unsigned char *mem;
  float *v;

  if (!json_is_object(root))
    return say(msg, cap, DS_EFORMAT, "%s: line %zu: expected a JSON object", r->path, r->lineno);
  json_object_foreach(root, key, item) {
    if (strcmp(key, "id") && strcmp(key, "vector") && strcmp(key, "payload"))
      return say(msg, cap, DS_EFORMAT,
                 "%s: line %zu: unknown key '%s' (a line holds id, vector and payload)", r->path,
                 r->lineno, key);
  }
  id = json_object_get(root, "id");
  vec = json_object_get(root, "vector");
  payload = json_object_get(root, "payload");
  if (id == NULL)
    return say(msg, cap, DS_EFORMAT, "%s: line %zu: no \"id\"", r->path, r->lineno);
  if (json_is_integer(id)) {
    json_int_t n = json_integer_value(id);
    if (n < 0)
      return say(msg, cap, DS_EFORMAT, "%s: line %zu: integer id %lld is not in 0..2^63-1", r->path,
                 r->lineno, (long long)n);
    id_num = (uint64_t)n;
  } else if (json_is_string(id)) {
    id_str = json_string_value(id);
    id_len = json_string_length(id);
  } else {
    return say(msg, cap, DS_EFORMAT, "%s: line %zu: \"id\" must be an integer or a string", r->path,
               r->lineno);
  }
  if (vec && !json_is_null(vec)) {
    if (!json_is_array(vec))
      return say(msg, cap, DS_EFORMAT, "%s: line %zu: \"vector\" must be an array of numbers",
                 r->path, r->lineno);
    dim = json_array_size(vec);
    json_array_foreach(vec, i, item) {
      double x;
      if (!json_is_number(item))
        return say(msg, cap, DS_EFORMAT, "%s: line %zu: vector component %zu is not a number",
                   r->path, r->lineno, i);
      x = json_number_value(item);
      if (!(fabs(x) <= FLT_MAX))
        return say(msg, cap, DS_EFORMAT, "%s: line %zu: vector component %zu is out of float range",
                   r->path, r->lineno, i);
    }
  }
  msgpack_sbuffer_clear(&r->sb);
  if (payload && !json_is_null(payload)) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->sb, msgpack_sbuffer_write);
    if (pack(&pk, payload))
      return say(msg, cap, DS_ENOMEM, "%s: line %zu: out of memory packing the payload", r->path,
                 r->lineno);
  }

  mem = malloc(dim * sizeof(float) + r->sb.size + id_len + 1);
  if (mem == NULL)
    return say(msg, cap, DS_ENOMEM, "%s: line %zu: out of memory", r->path, r->lineno);
  memset(pt, 0, sizeof(*pt));
  pt->mem = mem;
  pt->line = r->lineno;
  v = (float *)(void *)mem;
  json_array_foreach(vec, i, item) {
    v[i] = (float)json_number_value(item);
  }
  pt->point.vector = dim ? v : NULL;
  pt->point.dim = dim;
  mem += dim * sizeof(float);
  if (r->sb.size) {
    memcpy(mem, r->sb.data, r->sb.size);
    pt->point.payload = mem;
    pt->point.payload_len = r->sb.size;
    mem += r->sb.size;
  }
  if (id_str) {
    memcpy(mem, id_str, id_len);
    mem[id_len] = '\0';
    pt->point.id.kind = VS_ID_STR;
    pt->point.id.str = (const char *)mem;
    pt->point.id.len = id_len;
  } else {
    pt->point.id = vs_id_int(id_num);
  }
  return DS_OK;
}

/* Duplicate keys are refused (JSON_REJECT_DUPLICATES): jansson would keep
 * the last one, and a line that says two things is better reported. */
int ds_jsonl_next(ds_jsonl *r, ds_point *pt, char *msg, size_t msgcap) {
  json_error_t jerr;
  json_t *root;
  int rc;

  do {
    if ((rc = read_line(r, msg, msgcap)))
      return rc;
  } while (blank(r->line));
  root = json_loadb(r->line, r->len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return say(msg, msgcap, DS_EFORMAT, "%s: line %zu: invalid JSON at column %d: %s", r->path,
               r->lineno, jerr.column, jerr.text);
  rc = to_point(r, root, pt, msg, msgcap);
  json_decref(root);
  return rc;
}

void ds_point_free(ds_point *p) {
  if (p == NULL)
    return;
  free(p->mem);
  memset(p, 0, sizeof(*p));
}
