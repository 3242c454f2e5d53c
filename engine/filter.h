/*
 * filter.h: payload filters (DESIGN.md section 4), internal to the engine.
 *
 * A filter has Qdrant's shape:
 *
 *   {"must": [C, ...], "should": [C, ...], "must_not": [C, ...]}
 *
 * Every key is optional.  A point passes when every `must` condition holds,
 * no `must_not` condition holds, and, when the `should` list is present and
 * not empty, at least one `should` condition holds.  An absent or empty list
 * is neutral, so the empty filter {} matches every point.  A condition C is
 * one of:
 *
 *   {"key": F, "match": {"value": V}}        field F equals V
 *   {"key": F, "match": {"any": [V, ...]}}   field F equals one of the Vs
 *   {"key": F, "range": {"gt": N, "gte": N, "lt": N, "lte": N}}
 *                                            field F is a number within every
 *                                            bound given (one to four bounds)
 *   {"has_id": [ID, ...]}                    the point's id is one of the IDs
 *   {"must": ..., "should": ..., "must_not": ...}
 *                                            a nested filter; {} is the empty
 *                                            filter, which always holds
 *
 * VALUES.  V is a string, an integer, a finite float or a boolean; N is an
 * integer or a finite float; an ID is an integer in 0..2^63-1 or a string of
 * 1..VS_ID_MAX bytes, and, as for vs_id, the string "5" and the integer 5 are
 * different ids.  Numbers compare by exact numeric value whatever their
 * encoding (5 == 5.0, and 2^53 + 1 > 2^53 as a float), strings byte by byte,
 * and booleans only equal booleans (true is not 1).  A range never holds for
 * a string or a boolean.
 *
 * FIELDS.  F names a top-level payload key (1..VS_FIELD_NAME_MAX bytes; a
 * dot is part of the name, there is no path syntax).  When the field holds
 * an array, a match or range condition holds when it holds for ANY element
 * (an empty array matches nothing).  A missing field matches nothing, so
 * `must_not` of a condition on a missing field holds.
 *
 * LIMITS.  Filters nest at most VS__FILTER_DEPTH_MAX levels (the top level
 * is level 1), and hold at most VS__FILTER_ITEMS_MAX conditions plus values
 * of `any` and `has_id` lists in total.  Anything else -- an unknown key, a
 * value of the wrong type, an empty key, an empty `any` or `has_id` list, a
 * range without bounds, a NaN or infinite number, a key that appears twice
 * -- is refused with VS_EINVAL and a message naming where, such as
 * "filter: must[2]: range needs at least one of gt, gte, lt, lte".
 *
 * THREADS.  A built filter is immutable: any number of threads may call
 * vs__filter_match() on it at once.  Parsing and freeing are not
 * thread-safe with respect to the same filter.
 */
#ifndef VS_ENGINE_FILTER_H
#define VS_ENGINE_FILTER_H

#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/vsearch.h"

#define VS__FILTER_DEPTH_MAX 16    /* nested filter levels, the top one included */
#define VS__FILTER_ITEMS_MAX 10000 /* conditions + list values in one filter */

typedef struct vs__filter vs__filter;

/* Parse a filter from `len` bytes of JSON text (no NUL terminator needed).
 *
 * On success *out receives a filter to release with vs__filter_free(); on
 * failure *out is NULL.  Returns VS_OK; VS_EINVAL (JSON that does not parse,
 * or a filter breaking the rules above, with err saying why); VS_ENOMEM.
 * Thread-safe (no shared state). */
int vs__filter_parse_json(const char *json, size_t len, vs__filter **out, vs_error *err);

/* Parse a filter from one msgpack map of exactly `len` bytes.  The bytes
 * are untrusted (they come from a client): they are scanned with
 * vs__mp_scan() before anything is allocated, and every declared size is
 * checked against the bytes present.  Same returns as
 * vs__filter_parse_json(); a truncated message, bytes after the map or the
 * reserved byte 0xc1 are VS_EINVAL.  Thread-safe. */
int vs__filter_parse_msgpack(const void *p, size_t len, vs__filter **out, vs_error *err);

/* A 64-bit digest of the msgpack form the filter was parsed from (JSON is
 * re-encoded to msgpack first): the same filter text gives the same digest,
 * so per-filter caches can key on it.  Thread-safe. */
uint64_t vs__filter_digest(const vs__filter *f);

/* Release a filter.  Accepts NULL. */
void vs__filter_free(vs__filter *f);

/* Decide whether one point passes filter `f`.
 *
 * `id` is the point's external id (NULL: no has_id condition holds).
 * `payload` is its msgpack map as stored, already accepted by
 * vs__payload_check(); NULL or len 0 means an empty payload.  The payload is
 * never read outside payload[0..len), even if it were malformed (a malformed
 * part reads as missing fields).
 *
 * Returns 1 when the point passes, 0 when it does not.  Never allocates and
 * never fails; thread-safe. */
int vs__filter_match(const vs__filter *f, const vs_id *id, const uint8_t *payload, size_t len);

/* The planner's fast path for id lists.  When the whole filter is exactly
 * one `has_id` condition -- {"must": [{"has_id": [...]}]} or
 * {"should": [{"has_id": [...]}]} -- set *ids to its ids (sorted integers
 * first, then strings; duplicates removed) and *n to their count, and
 * return 1.  Otherwise return 0 and leave *ids and *n alone.  The ids are
 * owned by `f` and live as long as it does.  Thread-safe. */
int vs__filter_id_list(const vs__filter *f, const vs_id **ids, size_t *n);

/* How many distinct payload fields the filter references, and the i-th of
 * them (sorted bytewise), for the planner and for tests.  *len receives the
 * name's length; the name is not NUL-terminated.  Thread-safe. */
size_t vs__filter_field_count(const vs__filter *f);
const char *vs__filter_field(const vs__filter *f, size_t i, size_t *len);

/* ---------------------------------------------------------------------------
 * Evaluating a filter over sets of points (for the payload index, pindex.c)
 *
 * vs__filter_match() decides one point at a time from its payload bytes.
 * vs__filter_eval() answers the same question for every point at once: it
 * walks the filter tree and combines, with bitmap algebra, the point sets
 * that an index returns for each leaf condition.  The two must agree
 * exactly; what follows is everything an index needs to make them agree:
 * the scalar type and its order, the canonical form under which equal
 * values are identical, and a payload walker that sees exactly the values
 * vs__filter_match() sees.
 * ------------------------------------------------------------------------- */

/* A scalar from a filter or read in place from a payload.  Integers are
 * sign and magnitude, so msgpack's whole range (-2^63 .. 2^64-1) fits. */
enum { VS__SCALAR_BOOL, VS__SCALAR_INT, VS__SCALAR_FLT, VS__SCALAR_STR };
typedef struct vs__scalar {
  uint8_t kind; /* VS__SCALAR_* */
  uint8_t neg;  /* INT: the value is -u.mag (then u.mag is 1..2^63) */
  uint8_t b;    /* BOOL */
  uint32_t len; /* STR: bytes at u.s */
  union {
    uint64_t mag;  /* INT */
    double d;      /* FLT, finite */
    const char *s; /* STR, not NUL-terminated */
  } u;
} vs__scalar;

/* The filter language's total order on scalars: booleans < numbers <
 * strings; numbers by exact value whatever their encoding (5 == 5.0, and
 * 2^53 + 1 > 2^53 as a float), strings bytewise.  Two values are equal
 * under a filter exactly when this returns 0.  Thread-safe. */
int vs__scalar_cmp(const vs__scalar *a, const vs__scalar *b);

/* Rewrite v into its canonical form: a float with an integral value that
 * an integer can hold (|d| < 2^64, -0.0 included) becomes that integer.
 * Afterwards two finite values are equal under vs__scalar_cmp() exactly
 * when their canonical forms have the same kind and the same bits (len
 * and bytes for strings), so canonical values can be hashed. */
void vs__scalar_canon(vs__scalar *v);

/* Walk the top-level fields of a stored payload as vs__filter_match()
 * reads them.  For each key, key_fn(ctx, key, len) returns a slot >= 0 to
 * receive the field's values, or -1 to skip it.  val_fn(ctx, slot, v) is
 * then called with the field's value when it is a scalar, or with each
 * element of an array value in order, stopping at the first element that
 * is not a scalar (such elements end vs__filter_match()'s "any element"
 * loop too).  Bytes that do not decode end the walk, as they end
 * vs__filter_match()'s key scan.  A val_fn status other than VS_OK stops
 * the walk and is returned.  Strings point into `payload`.  Thread-safe. */
typedef int (*vs__payload_key_fn)(void *ctx, const char *key, size_t len);
typedef int (*vs__payload_val_fn)(void *ctx, int slot, const vs__scalar *v);
int vs__payload_walk(const uint8_t *payload, size_t len, vs__payload_key_fn key_fn,
                     vs__payload_val_fn val_fn, void *ctx);

/* A leaf field condition as vs__filter_eval() hands it to an index. */
enum { VS__FCOND_MATCH, VS__FCOND_ANY, VS__FCOND_RANGE };
typedef struct vs__fcond {
  int kind;                 /* VS__FCOND_* */
  uint32_t field;           /* index for vs__filter_field() */
  const char *key;          /* the field name, not NUL-terminated */
  size_t key_len;           /* its length */
  const vs__scalar *values; /* MATCH: values[0]; ANY: values[0..n), sorted, distinct */
  size_t n;
  /* RANGE: the bounds combined into at most one lower and one upper
   * bound (gt 3 with gte 5 is gte 5); a number x holds when it is above
   * `lo` (or equal when lo_incl) and below `hi` (or equal when hi_incl). */
  int has_lo, lo_incl, has_hi, hi_incl;
  vs__scalar lo, hi;
} vs__fcond;

/* What vs__filter_eval() asks of an index.  `all` is the universe: every
 * point that exists.  field() and ids() return in *out the points that
 * satisfy one leaf condition -- a superset is allowed as long as the
 * extra points are outside `all` -- or NULL for none; *owned says whether
 * vs__filter_eval() must free the bitmap (else it is borrowed and only
 * read).  ids() gets the has_id list (INT and STR scalars, sorted and
 * distinct).  Both return VS_OK or a status that ends the evaluation. */
typedef struct vs__set_ops {
  const roaring_bitmap_t *all;
  int (*field)(void *ctx, const vs__fcond *c, const roaring_bitmap_t **out, int *owned);
  int (*ids)(void *ctx, const vs__scalar *ids, size_t n, const roaring_bitmap_t **out, int *owned);
  void *ctx;
} vs__set_ops;

/* The set of points of ops->all that pass f: must = intersection, should =
 * union (neutral when absent or empty), must_not = difference from the
 * universe, nested filters recursively, {} = the universe.  On success
 * *out receives a new bitmap (the caller frees it with
 * roaring_bitmap_free).  Returns VS_OK, VS_ENOMEM, or a status a callback
 * returned.  Thread-safe when the callbacks are. */
int vs__filter_eval(const vs__filter *f, const vs__set_ops *ops, roaring_bitmap_t **out);

#endif /* VS_ENGINE_FILTER_H */
