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

#endif /* VS_ENGINE_FILTER_H */
