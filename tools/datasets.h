/*
 * datasets.h: readers for the vector files that `vsearch import`, `query`
 * and `bench` consume.
 *
 * FORMATS
 *
 *  fvecs, bvecs, ivecs  The texmex format (ann-benchmarks, FAISS): for each
 *                       row a little-endian int32 dimension d, then d
 *                       float32 / uint8 / int32 values.  Every row must have
 *                       the same d, 1 <= d <= VS_DIM_MAX, and the file size
 *                       must be a whole number of rows.
 *  idx                  The IDX format of (Fashion-)MNIST, plain or gzip'ed:
 *                       a big-endian magic 0x000008NN (unsigned bytes, NN
 *                       dimensions), NN big-endian uint32 sizes, then the
 *                       bytes.  The first size is the row count; a row is
 *                       the product of the others (784 for 28x28 images, 1
 *                       for labels).
 *  jsonl                One JSON object a line (plain or gzip'ed):
 *                       {"id": 5 or "str", "vector": [...], "payload": {...}}.
 *                       Blank lines are skipped; lines are numbered from 1.
 *
 * Every call reports failure as a negative DS_E* code and, when msg is not
 * NULL, a sentence in msg (at most msgcap bytes, NUL-terminated) naming the
 * file and the row or line.  Nothing here exits or prints.  A reader handle
 * is used by one thread at a time; distinct handles are independent.
 */
#ifndef VS_TOOLS_DATASETS_H
#define VS_TOOLS_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/vsearch.h"

/* Return codes.  DS_END is not an error: ds_jsonl_next() hit the end. */
enum {
  DS_OK = 0,
  DS_END = 1,
  DS_EINVAL = -1,  /* bad argument: unknown format, row range outside the file */
  DS_EIO = -2,     /* the file cannot be opened or read */
  DS_EFORMAT = -3, /* the contents are malformed */
  DS_ENOMEM = -4,  /* out of memory */
};

typedef enum ds_format {
  DS_FORMAT_NONE = 0,
  DS_FORMAT_FVECS,
  DS_FORMAT_BVECS,
  DS_FORMAT_IVECS,
  DS_FORMAT_IDX,
  DS_FORMAT_JSONL,
} ds_format;

/* Parse a format name ("fvecs", "bvecs", "ivecs", "idx", "jsonl"); NULL
 * guesses from the file name's extension (a trailing ".gz" is ignored):
 * .fvecs .bvecs .ivecs, .idx or -ubyte (MNIST's names), .jsonl .ndjson.
 * Returns DS_OK or DS_EINVAL with msg saying why. */
int ds_format_resolve(const char *name, const char *path, ds_format *out, char *msg, size_t msgcap);

/* "fvecs", "bvecs", ... or "?". */
const char *ds_format_name(ds_format f);

/* ---- Vector files (fvecs, bvecs, ivecs, idx) ---------------------------- */

typedef struct ds_reader ds_reader;

/* Open a vector file and read its header: the dimension and the row count
 * are known from here on (a gzip'ed IDX file is checked for truncation only
 * as it is read).  `format` as for ds_format_resolve().  On success *out is
 * released with ds_reader_close().  Returns DS_OK, DS_EINVAL, DS_EIO,
 * DS_EFORMAT, DS_ENOMEM. */
int ds_reader_open(const char *path, const char *format, ds_reader **out, char *msg, size_t msgcap);
void ds_reader_close(ds_reader *r); /* accepts NULL */

size_t ds_reader_rows(const ds_reader *r); /* rows in the file */
size_t ds_reader_dim(const ds_reader *r);  /* components per row */
ds_format ds_reader_format(const ds_reader *r);
size_t ds_reader_pos(const ds_reader *r); /* index of the next row to read */

/* Position the reader at row `row` (0 <= row <= rows).  Returns DS_OK,
 * DS_EINVAL, DS_EIO. */
int ds_reader_seek(ds_reader *r, size_t row, char *msg, size_t msgcap);

/* Read up to `max_rows` rows from the current position into caller-owned
 * `out` (max_rows * dim floats); *got receives how many were read (0 at the
 * end).  Every row's own dimension is checked.  Returns DS_OK, DS_EIO,
 * DS_EFORMAT. */
int ds_reader_read(ds_reader *r, float *out, size_t max_rows, size_t *got, char *msg,
                   size_t msgcap);

/* Read rows [row_begin, row_end) of a vector file as floats; row_end ==
 * SIZE_MAX means to the end.  Only those rows are read.  On success *out is
 * a malloc'd array of *rows x *dim floats for the caller to free() (NULL
 * when *rows is 0).  Returns DS_OK, DS_EINVAL (bad range), DS_EIO,
 * DS_EFORMAT, DS_ENOMEM. */
int ds_read_vectors(const char *path, const char *format, size_t row_begin, size_t row_end,
                    float **out, size_t *rows, size_t *dim, char *msg, size_t msgcap);

/* The same for an ivecs file (ground truth), keeping the int32 values. */
int ds_read_ivecs(const char *path, size_t row_begin, size_t row_end, int32_t **out, size_t *rows,
                  size_t *dim, char *msg, size_t msgcap);

/* Read labels [row_begin, row_end) of an IDX file of one dimension (magic
 * 0x00000801).  *out is a malloc'd array of *rows bytes (NULL when *rows is
 * 0).  Returns as ds_read_vectors(). */
int ds_read_idx_labels(const char *path, size_t row_begin, size_t row_end, uint8_t **out,
                       size_t *rows, char *msg, size_t msgcap);

/* ---- JSON lines of points ----------------------------------------------- */

typedef struct ds_jsonl ds_jsonl;

/* One point read from a JSON line.  `point` points into `mem`, one
 * allocation released by ds_point_free().  The vector is NULL (dim 0) when
 * the line has no "vector" or it is null, the payload NULL when there is no
 * "payload" or it is null; otherwise the payload is the JSON value packed as
 * msgpack (objects as maps, null as nil), for vs_upsert() to validate. */
typedef struct ds_point {
  vs_point point;
  size_t line; /* 1-based line number in the file */
  void *mem;
} ds_point;

void ds_point_free(ds_point *p); /* accepts NULL; leaves *p zeroed */

/* Open a JSON lines file ("-" is not special).  Returns DS_OK, DS_EIO,
 * DS_ENOMEM.  Release with ds_jsonl_close(). */
int ds_jsonl_open(const char *path, ds_jsonl **out, char *msg, size_t msgcap);
void ds_jsonl_close(ds_jsonl *r); /* accepts NULL */

/* Parse the next non-blank line into *pt.  Returns DS_OK, DS_END (no more
 * lines; *pt untouched), DS_EFORMAT (msg names the line: bad JSON, a missing
 * or malformed id, a vector that is not an array of numbers, an unknown
 * key), DS_EIO, DS_ENOMEM.  Integer ids must be 0..2^63-1. */
int ds_jsonl_next(ds_jsonl *r, ds_point *pt, char *msg, size_t msgcap);

/* Lines consumed so far (the number of the last line read). */
size_t ds_jsonl_line(const ds_jsonl *r);

#endif /* VS_TOOLS_DATASETS_H */
