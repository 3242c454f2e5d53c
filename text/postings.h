/*
 * postings.h: the inverted index's runs, as stored in an LMDB table, and
 * cursors over their posting lists.
 *
 * A RUN is an immutable set of posting lists over a range of point versions
 * (pids).  Each write batch adds one run; runs are merged into larger ones
 * (engine/tindex.c decides when).  All runs of a collection live in one
 * LMDB table, keyed so that a run's keys are contiguous and a new run's
 * keys sort after every existing key (MDB_APPEND: a run is written
 * sequentially, never into the middle of the tree):
 *
 *   term header  [u64 BE run][u8 field][term bytes]                -> struct below
 *   block        [u64 BE run][u8 field][term bytes][0x00][u64 BE first pid] -> block
 *
 * Terms are the analyzer's output: 1..VS__TERM_MAX bytes of UTF-8 letters
 * and digits, never a 0x00 byte, so a term's header sorts right before its
 * blocks and before any longer term it is a prefix of.
 *
 * Term header (16 bytes, native): u64 df (postings in this run), u32 max_tf,
 * u32 min_dl (over those postings: an upper bound on any one score).
 *
 * Block (native): u16 n (1..VS__BLOCK_DOCS postings), u16 0, u32 max_tf,
 * u32 min_dl, u32 0, u64 last pid, then n postings.  Each posting is
 * varint(delta * 2 + (tf == 1)), varint(tf) only when tf != 1, varint(dl),
 * where delta is the gap from the previous pid (the first posting's from
 * the key's first pid, so 0).  dl is the number of terms the point holds in
 * this field: kept in the posting so scoring never looks a length up.  The
 * block's header is the skip data: a cursor passes blocks by their last
 * pid and bounds their scores by (max_tf, min_dl) without decoding them.
 *
 * Everything read from the map is checked: a malformed entry makes a cursor
 * stop with VS__TP_CORRUPT, never read out of bounds.
 */
#ifndef VS_TEXT_POSTINGS_H
#define VS_TEXT_POSTINGS_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "text/analyzer.h"

#define VS__BLOCK_DOCS 128
#define VS__TP_KEY_MAX (8 + 1 + VS__TERM_MAX + 1 + 8)
#define VS__TP_CORRUPT (-1) /* not an LMDB code: LMDB's are below -30000 or errno values */
#define VS__DOC_END UINT64_MAX

typedef struct vs__posting {
  uint64_t pid;
  uint32_t tf, dl;
} vs__posting;

typedef struct vs__term_head {
  uint64_t df;
  uint32_t max_tf, min_dl;
} vs__term_head;

/* ---- writing a run ------------------------------------------------------------ */

typedef struct vs__tp_writer {
  MDB_txn *txn;
  MDB_dbi dbi;
  uint64_t run;
  uint8_t last_key[VS__TP_KEY_MAX];
  size_t last_len;
  uint64_t bytes; /* keys and values written */
} vs__tp_writer;

void vs__tp_writer_begin(vs__tp_writer *w, MDB_txn *txn, MDB_dbi dbi, uint64_t run);
/* Add one term's postings (pids strictly ascending, tf >= 1).  Terms must
 * come in ascending (field, term bytes) order, and the run id must be above
 * every run already in the table.  Returns 0 or an LMDB error code. */
int vs__tp_writer_term(vs__tp_writer *w, unsigned field, const char *term, size_t len,
                       const vs__posting *p, size_t n);

/* ---- reading ---------------------------------------------------------------------- */

/* A cursor over one term's postings in one run.  `doc` is the current
 * posting's pid (VS__DOC_END past the end); tf and dl are its values.
 * blk_last, blk_max_tf, blk_min_dl describe the current block (the one
 * vs__pcur_shallow() moved to), which may lie ahead of `doc`. */
typedef struct vs__pcur {
  MDB_cursor *mc;
  uint8_t prefix[VS__TP_KEY_MAX]; /* the block key up to and including the 0x00 */
  size_t plen;
  vs__term_head head;
  int err; /* 0, or VS__TP_CORRUPT / an LMDB code: the cursor stopped */
  /* the current block */
  int in_block; /* a block is current */
  uint64_t blk_first, blk_last;
  uint32_t blk_n, blk_max_tf, blk_min_dl;
  const uint8_t *blk_data, *blk_end;
  /* The current block is decoded lazily: pids/tfs/dls[0..ndec) hold its
   * first ndec postings, dp is where the next one starts. */
  uint32_t ndec;
  const uint8_t *dp;
  int doc_here; /* doc is entry i of the current block */
  uint32_t i;
  uint64_t doc;
  uint32_t tf, dl;
  uint64_t pids[VS__BLOCK_DOCS];
  uint32_t tfs[VS__BLOCK_DOCS], dls[VS__BLOCK_DOCS];
} vs__pcur;

/* Position cursor c on term `term` of `field` in run `run`, on its first
 * posting.  c->mc is an LMDB cursor on (txn, dbi) to reuse, or NULL: then
 * one is opened; either way vs__pcur_close() releases it, also after a
 * failure, and a cursor may be opened again on another term meanwhile.
 * Returns 0, MDB_NOTFOUND (the run does not hold the term), VS__TP_CORRUPT,
 * or an LMDB error. */
int vs__pcur_open(vs__pcur *c, MDB_txn *txn, MDB_dbi dbi, uint64_t run, unsigned field,
                  const char *term, size_t len);
void vs__pcur_close(vs__pcur *c);

/* Move to the next posting. */
void vs__pcur_next(vs__pcur *c);
/* Move to the first posting with pid >= target (no move when doc >= target). */
void vs__pcur_advance(vs__pcur *c, uint64_t target);
/* Make the block holding target current (or the first block after it)
 * without decoding it; returns the block's last pid, VS__DOC_END when no
 * block is left.  `doc` does not move. */
uint64_t vs__pcur_shallow(vs__pcur *c, uint64_t target);

/* Read a term header: 0, MDB_NOTFOUND, VS__TP_CORRUPT or an LMDB error. */
int vs__tp_head_get(MDB_txn *txn, MDB_dbi dbi, uint64_t run, unsigned field, const char *term,
                    size_t len, vs__term_head *out);

/* An iterator over the terms of one run, in key order, for merges.
 * `done` is set past the last term; field/term/len/head describe the
 * current one.  Opened on the run's first term. */
typedef struct vs__tp_iter {
  MDB_cursor *mc;
  uint64_t run;
  int done;
  unsigned field;
  char term[VS__TERM_MAX];
  size_t len;
  vs__term_head head;
} vs__tp_iter;

/* Returns 0, VS__TP_CORRUPT or an LMDB error. */
int vs__tp_iter_open(vs__tp_iter *it, MDB_txn *txn, MDB_dbi dbi, uint64_t run);
/* Append the current term's postings to (*buf, *n) (grown with realloc as
 * needed, *cap its capacity; free it after) and move to the next term.
 * Returns 0, VS__TP_CORRUPT, an LMDB error or ENOMEM. */
int vs__tp_iter_take(vs__tp_iter *it, vs__posting **buf, size_t *n, size_t *cap);
void vs__tp_iter_close(vs__tp_iter *it);

/* Delete every key of run `run`.  Returns 0 or an LMDB error. */
int vs__tp_run_drop(MDB_txn *txn, MDB_dbi dbi, uint64_t run);

#endif /* VS_TEXT_POSTINGS_H */
