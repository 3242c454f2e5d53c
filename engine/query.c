/*
 * query.c: pieces every query path shares (query.h): excluded ids resolved
 * to point versions, and payload projection.
 */
#include "engine/query.h"

#include <stdlib.h>
#include <string.h>

#include "engine/mpscan.h"

/* ---- exclusions ------------------------------------------------------------------------ */

/* Keys to sort: each a u16 length, then the key bytes (so the comparison
 * needs no context: qsort has no context argument in C11). */
static size_t key_len(const uint8_t *k) {
  uint16_t n;
  memcpy(&n, k, 2);
  return n;
}

static int by_key(const void *a, const void *b) {
  const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
  size_t nx = key_len(x), ny = key_len(y);
  int c = memcmp(x + 2, y + 2, nx < ny ? nx : ny);
  return c ? c : (nx > ny) - (nx < ny);
}

static int by_pid(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int vs__exclude_check(const vs_id *ids, size_t n, vs_error *err) {
  if (n > VS_EXCLUDE_MAX)
    return vs__err(err, VS_ETOOLARGE, "%zu ids to exclude, the limit is %d", n, VS_EXCLUDE_MAX);
  if (n && ids == NULL)
    return vs__err(err, VS_EINVAL, "exclude is NULL");
  for (size_t i = 0; i < n; i++) {
    int rc = vs__id_check(&ids[i], i, err);
    if (rc)
      return vs__err(err, rc, "exclude[%zu] is not a valid id", i);
  }
  return VS_OK;
}

int vs__exclude_resolve(MDB_txn *txn, const vs__coll *c, const vs_id *ids, size_t n,
                        vs__pidset *out, vs_error *err) {
  uint8_t *keys = NULL, **refs = NULL;
  MDB_cursor *cur = NULL;
  size_t at = 0;
  int rc = VS_OK, mrc;

  out->pids = NULL;
  out->n = 0;
  if (n == 0)
    return VS_OK;
  /* Look the ids up in key order: one cursor then finds most of them in
   * the leaf page it is already on. */
  keys = vs__malloc(n * (2 + VS__ID_KEY_MAX));
  refs = vs__malloc(n * sizeof(*refs));
  out->pids = vs__malloc(n * sizeof(*out->pids));
  if (keys == NULL || refs == NULL || out->pids == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    uint16_t len = (uint16_t)vs__id_key(&ids[i], keys + at + 2);
    memcpy(keys + at, &len, 2);
    refs[i] = keys + at;
    at += 2 + len;
  }
  qsort(refs, n, sizeof(*refs), by_key);
  if ((mrc = mdb_cursor_open(txn, c->dbi[VS__DBI_IDS], &cur))) {
    rc = vs__mdb_err(err, mrc, "open a cursor");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    MDB_val k = {key_len(refs[i]), refs[i] + 2}, v;

    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (mrc == MDB_NOTFOUND)
      continue;
    if (mrc || v.mv_size != 8) {
      rc = mrc ? vs__mdb_err(err, mrc, "look up an id")
               : vs__err(err, VS_ECORRUPT, "id record has %zu bytes", v.mv_size);
      goto out;
    }
    memcpy(&out->pids[out->n++], v.mv_data, 8);
  }
  qsort(out->pids, out->n, sizeof(*out->pids), by_pid);
  {
    size_t m = 0;
    for (size_t i = 0; i < out->n; i++)
      if (m == 0 || out->pids[m - 1] != out->pids[i])
        out->pids[m++] = out->pids[i];
    out->n = m;
  }
out:
  if (cur)
    mdb_cursor_close(cur);
  vs__free(keys);
  vs__free(refs);
  if (rc)
    vs__pidset_free(out);
  return rc;
}

int vs__pidset_has(const vs__pidset *s, uint64_t pid) {
  size_t lo = 0, hi = s->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->pids[mid] < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n && s->pids[lo] == pid;
}

void vs__pidset_remove_from(const vs__pidset *s, roaring_bitmap_t *set) {
  for (size_t i = 0; i < s->n; i++)
    if (s->pids[i] <= UINT32_MAX)
      roaring_bitmap_remove(set, (uint32_t)s->pids[i]);
}

void vs__pidset_free(vs__pidset *s) {
  vs__free(s->pids);
  s->pids = NULL;
  s->n = 0;
}

/* ---- payload projection ------------------------------------------------------------------ */

int vs__fields_check(const char *const *fields, size_t n, vs_error *err) {
  if (n && fields == NULL)
    return vs__err(err, VS_EINVAL, "payload_fields is NULL");
  if (n > VS_PAYLOAD_FIELDS_MAX)
    return vs__err(err, VS_ETOOLARGE, "%zu payload fields, the limit is %d", n,
                   VS_PAYLOAD_FIELDS_MAX);
  for (size_t i = 0; i < n; i++)
    if (fields[i] == NULL || fields[i][0] == '\0')
      return vs__err(err, VS_EINVAL, "payload field %zu is NULL or empty", i);
  return VS_OK;
}

/* The header of a msgpack map or string at p: its element count (map) or
 * byte length (string) and the header's size; -1 when it is neither. */
static int mp_head(const uint8_t *p, size_t len, int want_map, uint32_t *count, size_t *hsize) {
  if (len == 0)
    return -1;
  if (want_map) {
    if ((p[0] & 0xf0) == 0x80)
      return *count = p[0] & 0x0f, *hsize = 1, 0;
    if (p[0] == 0xde && len >= 3)
      return *count = (uint32_t)p[1] << 8 | p[2], *hsize = 3, 0;
    if (p[0] == 0xdf && len >= 5)
      return *count = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4],
             *hsize = 5, 0;
    return -1;
  }
  if ((p[0] & 0xe0) == 0xa0)
    return *count = p[0] & 0x1f, *hsize = 1, 0;
  if (p[0] == 0xd9 && len >= 2)
    return *count = p[1], *hsize = 2, 0;
  if (p[0] == 0xda && len >= 3)
    return *count = (uint32_t)p[1] << 8 | p[2], *hsize = 3, 0;
  if (p[0] == 0xdb && len >= 5)
    return *count = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4],
           *hsize = 5, 0;
  return -1;
}

size_t vs__payload_project(const uint8_t *p, size_t len, const char *const *fields, size_t nf,
                           uint8_t *out) {
  uint32_t count, kept = 0;
  size_t hs, at, o;

  if (mp_head(p, len, 1, &count, &hs))
    return 0;
  at = hs;
  o = 5; /* room for the largest header; moved down at the end */
  for (uint32_t i = 0; i < count; i++) {
    uint32_t klen;
    size_t khs, ksize, vsize;
    int want = 0;

    if (mp_head(p + at, len - at, 0, &klen, &khs) || khs + klen > len - at)
      return 0;
    ksize = khs + klen;
    if (vs__mp_scan(p + at + ksize, len - at - ksize, len - at - ksize, VS__MP_DEPTH_CAP, &vsize))
      return 0;
    for (size_t f = 0; f < nf && !want; f++)
      want = strlen(fields[f]) == klen && memcmp(fields[f], p + at + khs, klen) == 0;
    if (want) {
      memcpy(out + o, p + at, ksize + vsize);
      o += ksize + vsize;
      kept++;
    }
    at += ksize + vsize;
  }
  if (kept == 0)
    return 0;
  /* The header: kept <= count, so it is no longer than the original. */
  if (kept < 16) {
    out[4] = (uint8_t)(0x80 | kept);
    hs = 1;
  } else if (kept < 65536) {
    out[2] = 0xde, out[3] = (uint8_t)(kept >> 8), out[4] = (uint8_t)kept;
    hs = 3;
  } else {
    out[0] = 0xdf, out[1] = (uint8_t)(kept >> 24), out[2] = (uint8_t)(kept >> 16);
    out[3] = (uint8_t)(kept >> 8), out[4] = (uint8_t)kept;
    hs = 5;
  }
  memmove(out, out + 5 - hs, o - (5 - hs));
  return o - (5 - hs);
}
