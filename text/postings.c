/*
 * postings.c: runs of posting lists in LMDB (layout in postings.h): the
 * writer, the cursors that search uses, and the iterator merges use.
 */
#include "text/postings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_HEAD 24
#define HEAD_SIZE 16
#define POSTING_MAX 15 /* three varints of at most 5 bytes */
#define RUN_BYTES 8

/* ---- keys and varints --------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* [run][field][term]: a term header's key; returns its length. */
static size_t head_key(uint8_t *k, uint64_t run, unsigned field, const char *term, size_t len) {
  put_be64(k, run);
  k[RUN_BYTES] = (uint8_t)field;
  memcpy(k + RUN_BYTES + 1, term, len);
  return RUN_BYTES + 1 + len;
}

static uint8_t *varint_put(uint8_t *p, uint32_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Decode a varint of at most 5 bytes; NULL when it runs past end. */
static inline const uint8_t *varint_get(const uint8_t *p, const uint8_t *end, uint32_t *out) {
  uint32_t v = 0;

  if (p < end && *p < 0x80) { /* most gaps, tfs and short lengths */
    *out = *p;
    return p + 1;
  }
  for (int shift = 0; shift < 35 && p < end; shift += 7) {
    uint8_t b = *p++;
    v |= (uint32_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      *out = v;
      return p;
    }
  }
  return NULL;
}

/* ---- writer ----------------------------------------------------------------------------- */

void vs__tp_writer_begin(vs__tp_writer *w, MDB_txn *txn, MDB_dbi dbi, uint64_t run) {
  w->txn = txn;
  w->dbi = dbi;
  w->run = run;
  w->last_len = 0;
  w->bytes = 0;
}

static int append(vs__tp_writer *w, uint8_t *key, size_t klen, void *val, size_t vlen) {
  MDB_val k = {klen, key}, v = {vlen, val};

  w->bytes += klen + vlen;
  return mdb_put(w->txn, w->dbi, &k, &v, MDB_APPEND);
}

int vs__tp_writer_term(vs__tp_writer *w, unsigned field, const char *term, size_t len,
                       const vs__posting *p, size_t n) {
  uint8_t key[VS__TP_KEY_MAX], block[BLOCK_HEAD + VS__BLOCK_DOCS * POSTING_MAX];
  vs__term_head h = {n, 0, UINT32_MAX};
  size_t klen = head_key(key, w->run, field, term, len);
  int rc;

  for (size_t i = 0; i < n; i++) {
    if (p[i].tf > h.max_tf)
      h.max_tf = p[i].tf;
    if (p[i].dl < h.min_dl)
      h.min_dl = p[i].dl;
  }
  if ((rc = append(w, key, klen, &h, sizeof(h))))
    return rc;
  key[klen++] = 0;
  for (size_t at = 0, m; at < n; at += m) {
    uint32_t max_tf = 0, min_dl = UINT32_MAX, zero32 = 0;
    uint16_t bn, zero16 = 0;
    uint64_t prev = p[at].pid;
    uint8_t *q = block + BLOCK_HEAD;

    for (m = 0; m < VS__BLOCK_DOCS && at + m < n; m++) {
      const vs__posting *e = &p[at + m];

      /* A gap too wide for the 31-bit varint starts a new block. */
      if (m > 0 && e->pid - prev >= (1u << 30))
        break;
      max_tf = e->tf > max_tf ? e->tf : max_tf;
      min_dl = e->dl < min_dl ? e->dl : min_dl;
      q = varint_put(q, (uint32_t)((e->pid - prev) * 2 + (e->tf == 1)));
      if (e->tf != 1)
        q = varint_put(q, e->tf);
      q = varint_put(q, e->dl);
      prev = e->pid;
    }
    bn = (uint16_t)m;
    memcpy(block, &bn, 2);
    memcpy(block + 2, &zero16, 2);
    memcpy(block + 4, &max_tf, 4);
    memcpy(block + 8, &min_dl, 4);
    memcpy(block + 12, &zero32, 4);
    memcpy(block + 16, &prev, 8);
    put_be64(key + klen, p[at].pid);
    if ((rc = append(w, key, klen + 8, block, (size_t)(q - block))))
      return rc;
  }
  return 0;
}

/* ---- cursors ------------------------------------------------------------------------------ */

/* Make (k, v) the current block if it is one of this cursor's term. */
static void block_load(vs__pcur *c, const MDB_val *k, const MDB_val *v) {
  const uint8_t *kp = k->mv_data, *vp = v->mv_data;
  uint16_t n;

  c->ndec = 0;
  c->doc_here = 0;
  if (k->mv_size != c->plen + 8 || memcmp(kp, c->prefix, c->plen) != 0) {
    c->in_block = 0; /* the next key belongs to another term */
    c->blk_last = VS__DOC_END;
    return;
  }
  c->in_block = 1;
  c->blk_first = get_be64(kp + c->plen);
  if (v->mv_size < BLOCK_HEAD)
    goto corrupt;
  memcpy(&n, vp, 2);
  memcpy(&c->blk_max_tf, vp + 4, 4);
  memcpy(&c->blk_min_dl, vp + 8, 4);
  memcpy(&c->blk_last, vp + 16, 8);
  if (n == 0 || n > VS__BLOCK_DOCS || c->blk_last < c->blk_first || c->blk_last == VS__DOC_END)
    goto corrupt;
  c->blk_n = n;
  c->blk_data = c->dp = vp + BLOCK_HEAD;
  c->blk_end = vp + v->mv_size;
  return;
corrupt:
  c->err = VS__TP_CORRUPT;
  c->in_block = 0;
  c->blk_last = VS__DOC_END;
}

/* Load the block at the LMDB cursor after an mdb_cursor_get returning mrc. */
static void block_at(vs__pcur *c, int mrc, MDB_val *k, MDB_val *v) {
  if (mrc == 0) {
    block_load(c, k, v);
    return;
  }
  if (mrc != MDB_NOTFOUND)
    c->err = mrc;
  c->in_block = 0;
  c->doc_here = 0;
  c->blk_last = VS__DOC_END;
}

static void end(vs__pcur *c) {
  c->doc = VS__DOC_END;
  c->in_block = 0;
  c->doc_here = 0;
  c->blk_last = VS__DOC_END;
}

/* Decode the current block's next posting; -1 (and the cursor ends) when
 * the block is malformed. */
static int decode_one(vs__pcur *c) {
  uint32_t i = c->ndec, v, tf = 1, dl;
  const uint8_t *p = c->dp, *stop = c->blk_end;
  uint64_t pid = i ? c->pids[i - 1] : c->blk_first;

  if ((p = varint_get(p, stop, &v)) == NULL || (i == 0) != (v >> 1 == 0))
    goto corrupt; /* the first gap is 0, every other one positive */
  pid += v >> 1;
  if (!(v & 1) && ((p = varint_get(p, stop, &tf)) == NULL || tf < 2))
    goto corrupt;
  if ((p = varint_get(p, stop, &dl)) == NULL)
    goto corrupt;
  if (i + 1 == c->blk_n ? p != stop || pid != c->blk_last : pid >= c->blk_last)
    goto corrupt;
  c->pids[i] = pid;
  c->tfs[i] = tf;
  c->dls[i] = dl;
  c->dp = p;
  c->ndec = i + 1;
  return 0;
corrupt:
  c->err = VS__TP_CORRUPT;
  end(c);
  return -1;
}

/* Decode the rest of the current block (sequential reads: next()). */
static int decode_rest(vs__pcur *c) {
  while (c->ndec < c->blk_n)
    if (decode_one(c))
      return -1;
  return 0;
}

static void set_doc(vs__pcur *c, uint32_t i) {
  c->i = i;
  c->doc = c->pids[i];
  c->tf = c->tfs[i];
  c->dl = c->dls[i];
  c->doc_here = 1;
}

int vs__tp_head_get(MDB_txn *txn, MDB_dbi dbi, uint64_t run, unsigned field, const char *term,
                    size_t len, vs__term_head *out) {
  uint8_t key[VS__TP_KEY_MAX];
  MDB_val k = {head_key(key, run, field, term, len), key}, v;
  int mrc = mdb_get(txn, dbi, &k, &v);

  if (mrc)
    return mrc;
  if (v.mv_size != HEAD_SIZE)
    return VS__TP_CORRUPT;
  memcpy(out, v.mv_data, HEAD_SIZE);
  return out->df ? 0 : VS__TP_CORRUPT;
}

int vs__pcur_open(vs__pcur *c, MDB_txn *txn, MDB_dbi dbi, uint64_t run, unsigned field,
                  const char *term, size_t len) {
  MDB_val k, v;
  int mrc;

  c->err = 0;
  c->doc = VS__DOC_END;
  c->in_block = 0;
  c->doc_here = 0;
  if (len == 0 || len > VS__TERM_MAX)
    return MDB_NOTFOUND;
  if (c->mc == NULL && (mrc = mdb_cursor_open(txn, dbi, &c->mc))) {
    c->mc = NULL;
    return mrc;
  }
  /* One tree search: the header, then its first block right after it. */
  c->plen = head_key(c->prefix, run, field, term, len);
  k.mv_size = c->plen;
  k.mv_data = c->prefix;
  if ((mrc = mdb_cursor_get(c->mc, &k, &v, MDB_SET_KEY)))
    return mrc;
  if (v.mv_size != HEAD_SIZE)
    return VS__TP_CORRUPT;
  memcpy(&c->head, v.mv_data, HEAD_SIZE);
  if (c->head.df == 0)
    return VS__TP_CORRUPT;
  c->prefix[c->plen++] = 0;
  mrc = mdb_cursor_get(c->mc, &k, &v, MDB_NEXT);
  block_at(c, mrc, &k, &v);
  if (!c->in_block || decode_one(c))
    return c->err ? c->err : VS__TP_CORRUPT; /* a header promises postings */
  set_doc(c, 0);
  return 0;
}

void vs__pcur_close(vs__pcur *c) {
  if (c->mc)
    mdb_cursor_close(c->mc);
  c->mc = NULL;
}

uint64_t vs__pcur_shallow(vs__pcur *c, uint64_t target) {
  uint8_t key[VS__TP_KEY_MAX];
  MDB_val k, v;
  int mrc;

  for (int step = 0; c->in_block && c->blk_last < target && step < 4; step++) {
    mrc = mdb_cursor_get(c->mc, &k, &v, MDB_NEXT);
    block_at(c, mrc, &k, &v);
  }
  if (!c->in_block || c->blk_last >= target)
    return c->blk_last;
  /* Far ahead: seek the first block starting after target, then step back
   * to the one that may hold it. */
  memcpy(key, c->prefix, c->plen);
  put_be64(key + c->plen, target);
  k.mv_size = c->plen + 8;
  k.mv_data = key;
  mrc = mdb_cursor_get(c->mc, &k, &v, MDB_SET_RANGE);
  if (mrc == 0 && k.mv_size == c->plen + 8 && memcmp(k.mv_data, key, c->plen + 8) == 0) {
    block_load(c, &k, &v); /* a block starts at target */
    return c->blk_last;
  }
  if (mrc != 0 && mrc != MDB_NOTFOUND) {
    c->err = mrc;
    end(c);
    return VS__DOC_END;
  }
  mrc = mdb_cursor_get(c->mc, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
  block_at(c, mrc, &k, &v);
  if (c->in_block && c->blk_last < target) {
    mrc = mdb_cursor_get(c->mc, &k, &v, MDB_NEXT);
    block_at(c, mrc, &k, &v);
  }
  return c->blk_last;
}

void vs__pcur_advance(vs__pcur *c, uint64_t target) {
  uint32_t lo, hi;

  if (c->doc >= target)
    return;
  if (!c->in_block || (c->blk_last < target && vs__pcur_shallow(c, target) == VS__DOC_END)) {
    end(c);
    return;
  }
  /* The block holds a pid >= target: decode up to it, or search what is
   * decoded already. */
  lo = c->doc_here ? c->i + 1 : 0;
  if (c->ndec == 0 || c->pids[c->ndec - 1] < target) {
    lo = c->ndec;
    do {
      if (decode_one(c))
        return;
    } while (c->pids[c->ndec - 1] < target);
    set_doc(c, c->ndec - 1);
    return;
  }
  hi = c->ndec - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (c->pids[mid] < target)
      lo = mid + 1;
    else
      hi = mid;
  }
  set_doc(c, lo);
}

void vs__pcur_next(vs__pcur *c) {
  MDB_val k, v;
  int mrc;

  if (c->doc == VS__DOC_END)
    return;
  if (!c->doc_here) { /* shallow() moved ahead of doc */
    vs__pcur_advance(c, c->doc + 1);
    return;
  }
  if (c->i + 1 < c->blk_n) {
    if (c->ndec == c->i + 1 && decode_rest(c))
      return;
    set_doc(c, c->i + 1);
    return;
  }
  mrc = mdb_cursor_get(c->mc, &k, &v, MDB_NEXT);
  block_at(c, mrc, &k, &v);
  if (!c->in_block || decode_one(c)) {
    end(c);
    return;
  }
  set_doc(c, 0);
}

/* ---- iterating a run, for merges ------------------------------------------------------- */

/* Parse the key under the iterator as a term header of its run. */
static int iter_parse(vs__tp_iter *it, int mrc, const MDB_val *k, const MDB_val *v) {
  const uint8_t *kp = k->mv_data;
  uint8_t run[RUN_BYTES];

  if (mrc == MDB_NOTFOUND) {
    it->done = 1;
    return 0;
  }
  if (mrc)
    return mrc;
  put_be64(run, it->run);
  if (k->mv_size < RUN_BYTES || memcmp(kp, run, RUN_BYTES) != 0) {
    it->done = 1;
    return 0;
  }
  if (k->mv_size < RUN_BYTES + 2 || k->mv_size > RUN_BYTES + 1 + VS__TERM_MAX ||
      memchr(kp + RUN_BYTES + 1, 0, k->mv_size - RUN_BYTES - 1) || v->mv_size != HEAD_SIZE)
    return VS__TP_CORRUPT;
  it->field = kp[RUN_BYTES];
  it->len = k->mv_size - RUN_BYTES - 1;
  memcpy(it->term, kp + RUN_BYTES + 1, it->len);
  memcpy(&it->head, v->mv_data, HEAD_SIZE);
  return 0;
}

int vs__tp_iter_open(vs__tp_iter *it, MDB_txn *txn, MDB_dbi dbi, uint64_t run) {
  uint8_t key[RUN_BYTES];
  MDB_val k = {RUN_BYTES, key}, v;
  int mrc;

  it->run = run;
  it->done = 0;
  if ((mrc = mdb_cursor_open(txn, dbi, &it->mc))) {
    it->mc = NULL;
    return mrc;
  }
  put_be64(key, run);
  mrc = mdb_cursor_get(it->mc, &k, &v, MDB_SET_RANGE);
  return iter_parse(it, mrc, &k, &v);
}

void vs__tp_iter_close(vs__tp_iter *it) {
  if (it->mc)
    mdb_cursor_close(it->mc);
  it->mc = NULL;
}

int vs__tp_iter_take(vs__tp_iter *it, vs__posting **buf, size_t *n, size_t *cap) {
  vs__pcur c; /* borrowed for its block decoder */
  uint64_t got = 0;
  MDB_val k, v;
  int mrc;

  c.plen = head_key(c.prefix, it->run, it->field, it->term, it->len);
  c.prefix[c.plen++] = 0;
  c.err = 0;
  for (;;) {
    mrc = mdb_cursor_get(it->mc, &k, &v, MDB_NEXT);
    if (mrc && mrc != MDB_NOTFOUND)
      return mrc;
    if (mrc == 0)
      block_load(&c, &k, &v);
    if (mrc || !c.in_block)
      break;
    while (c.ndec < c.blk_n)
      if (decode_one(&c))
        return VS__TP_CORRUPT;
    if (*n + c.blk_n > *cap) {
      size_t ncap = *cap ? *cap * 2 : 1024;
      vs__posting *nb;

      while (ncap < *n + c.blk_n)
        ncap *= 2;
      if ((nb = realloc(*buf, ncap * sizeof(*nb))) == NULL)
        return ENOMEM;
      *buf = nb;
      *cap = ncap;
    }
    for (uint32_t i = 0; i < c.blk_n; i++) {
      vs__posting *e = &(*buf)[(*n)++];
      e->pid = c.pids[i];
      e->tf = c.tfs[i];
      e->dl = c.dls[i];
    }
    got += c.blk_n;
  }
  if (c.err)
    return c.err;
  if (got != it->head.df)
    return VS__TP_CORRUPT;
  return iter_parse(it, mrc, &k, &v);
}

int vs__tp_run_drop(MDB_txn *txn, MDB_dbi dbi, uint64_t run) {
  MDB_cursor *mc;
  uint8_t key[RUN_BYTES];
  MDB_val k = {RUN_BYTES, key}, v;
  int mrc;

  if ((mrc = mdb_cursor_open(txn, dbi, &mc)))
    return mrc;
  put_be64(key, run);
  /* Seek again after each delete: deleting the table's last key leaves the
   * cursor unpositioned (MDB_GET_CURRENT would fail). */
  for (;;) {
    k.mv_size = RUN_BYTES, k.mv_data = key;
    if ((mrc = mdb_cursor_get(mc, &k, &v, MDB_SET_RANGE)))
      break;
    if (k.mv_size < RUN_BYTES || memcmp(k.mv_data, key, RUN_BYTES) != 0)
      break;
    if ((mrc = mdb_cursor_del(mc, 0)))
      break;
  }
  mdb_cursor_close(mc);
  return mrc == MDB_NOTFOUND ? 0 : mrc;
}
