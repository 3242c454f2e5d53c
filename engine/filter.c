/*
 * filter.c: payload filters -- parsing (JSON or msgpack) into an immutable
 * tree, and evaluation of that tree against one point at a time.  The filter
 * language and its semantics are documented in filter.h.
 *
 * DATA STRUCTURE.  A vs__filter owns an arena (a list of chunks from the
 * project's allocator) that holds everything else: the root `node`, whose
 * three lists (must, should, must_not) are arrays of `cond`; the values of
 * every condition (`val`, a tagged scalar); copies of every string; and the
 * table of distinct field names the filter references.  Freeing the filter
 * frees the chunks and nothing else, so a parse that fails half-way unwinds
 * with one call whatever it had built.
 *
 * INVARIANTS, established at parse time and relied on by vs__filter_match:
 *  - every float in the tree is finite, so numeric comparison is a total
 *    order and never meets NaN;
 *  - `any` and `has_id` lists are non-empty, sorted by val_cmp() and free of
 *    duplicates, so membership is a binary search when they are long;
 *  - a range holds one to four bounds, each an integer or a finite float;
 *  - every field condition's `field` indexes vs__filter.fields, which is
 *    sorted bytewise and free of duplicates;
 *  - nested filters are at most VS__FILTER_DEPTH_MAX deep, which bounds the
 *    recursion of evaluation.
 *
 * PARSING.  Both entry points end in the same walker over msgpack bytes:
 * JSON text is decoded by jansson and re-encoded as msgpack first (numbers
 * keep their integer-or-float kind), so the two formats share every rule and
 * every error message.  The walker reads the bytes with the small
 * bounds-checked reader below, after vs__mp_scan() has checked that the
 * message is complete and that its declared sizes fit in it; the walker
 * itself never recurses deeper than the filter nesting limit.  msgpack-c's
 * unpacker is not used: its fixed stack of 32 containers is shallower than a
 * legal filter can be (16 levels of filters take up to 35 nested containers).
 *
 * EVALUATION must not allocate: it runs once per candidate point in a scan.
 * It reads the stored payload bytes in place with the same reader.  See the
 * essay above vs__filter_match().
 *
 * SET EVALUATION (vs__filter_eval) answers for every point at once, with
 * roaring bitmaps that the payload index (pindex.c) returns per leaf
 * condition.  It must agree exactly with vs__filter_match(), so the value
 * order, the canonical form of values (vs__scalar_canon) and the payload
 * walker the index is built with (vs__payload_walk) live here too.
 */
#include "engine/filter.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mpscan.h"
#include "engine/storage.h"

/* ---------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------- */

/* Kinds in their sort order: booleans, then numbers, then strings.  V_INT
 * and V_FLT are one class ordered by numeric value. */
enum {
  V_BOOL = VS__SCALAR_BOOL,
  V_INT = VS__SCALAR_INT,
  V_FLT = VS__SCALAR_FLT,
  V_STR = VS__SCALAR_STR
};

/* A scalar, from a filter or read in place from a payload (filter.h's
 * vs__scalar, shared with the payload index). */
typedef vs__scalar val;

static int cmp_u64(uint64_t a, uint64_t b) {
  return (a > b) - (a < b);
}

/* The sign of (x - d), exactly, for the integer x = neg ? -mag : mag and a
 * finite double d.  Converting x to double instead would round integers
 * above 2^53 and call 2^53 + 1 equal to 2^53.  floor(d) is an integer
 * within uint64's range once d is in [0, 2^64), so the cast is exact. */
static int cmp_int_dbl(int neg, uint64_t mag, double d) {
  double t;
  uint64_t ti;

  if (neg) /* -mag - d has the opposite sign of mag - (-d) */
    return -cmp_int_dbl(0, mag, -d);
  if (d < 0)
    return 1;
  if (d >= 18446744073709551616.0) /* 2^64 */
    return -1;
  t = floor(d);
  ti = (uint64_t)t;
  if (mag != ti)
    return mag < ti ? -1 : 1;
  return d > t ? -1 : 0;
}

/* Compare two numbers (V_INT or V_FLT) by value. */
static int num_cmp(const val *a, const val *b) {
  if (a->kind == V_INT && b->kind == V_INT) {
    if (a->neg != b->neg)
      return a->neg ? -1 : 1;
    return a->neg ? cmp_u64(b->u.mag, a->u.mag) : cmp_u64(a->u.mag, b->u.mag);
  }
  if (a->kind == V_INT)
    return cmp_int_dbl(a->neg, a->u.mag, b->u.d);
  if (b->kind == V_INT)
    return -cmp_int_dbl(b->neg, b->u.mag, a->u.d);
  return (a->u.d > b->u.d) - (a->u.d < b->u.d);
}

static int str_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);

  return c ? c : (an > bn) - (an < bn);
}

static int val_class(const val *v) {
  return v->kind == V_FLT ? V_INT : v->kind;
}

/* A total order on scalars: by class (boolean < number < string), then by
 * value.  Two values are equal under a filter exactly when this returns 0,
 * so 5 == 5.0, "5" != 5 and true != 1. */
static int val_cmp(const val *a, const val *b) {
  int ca = val_class(a), cb = val_class(b);

  if (ca != cb)
    return ca < cb ? -1 : 1;
  switch (ca) {
  case V_BOOL:
    return (a->b > b->b) - (a->b < b->b);
  case V_INT:
    return num_cmp(a, b);
  default:
    return str_cmp(a->u.s, a->len, b->u.s, b->len);
  }
}

static int val_qsort_cmp(const void *a, const void *b) {
  return val_cmp(a, b);
}

/* Lists up to this long are searched linearly; longer ones by bisection. */
#define LINEAR_MAX 8

/* Is x in the sorted, duplicate-free list v[0..n)? */
static int list_has(const val *v, size_t n, const val *x) {
  size_t lo = 0, hi = n;

  if (n <= LINEAR_MAX) {
    for (size_t i = 0; i < n; i++)
      if (val_cmp(&v[i], x) == 0)
        return 1;
    return 0;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = val_cmp(&v[mid], x);

    if (c == 0)
      return 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * A bounds-checked msgpack reader
 *
 * It reads one header at a time from p[pos..len) and never looks past len:
 * every read is preceded by a check of the bytes left.  It serves the parser
 * (on scanned, untrusted bytes) and the evaluator (on stored payloads), and
 * never allocates.  Strings are returned as pointers into the buffer.
 * ------------------------------------------------------------------------- */

typedef struct rd {
  const uint8_t *p;
  size_t len;
  size_t pos;
} rd;

/* What rd_head() found. */
enum { T_NIL, T_BOOL, T_INT, T_FLT, T_STR, T_BIN, T_EXT, T_ARR, T_MAP };

typedef struct head {
  int type;
  uint32_t n; /* T_ARR: elements; T_MAP: pairs */
  val v;      /* T_BOOL, T_INT, T_FLT, T_STR */
} head;

static uint64_t be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;

  for (unsigned i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

static int need(const rd *r, uint64_t n) {
  return r->len - r->pos >= n;
}

/* Read an n-byte big-endian field after the tag byte; -1 when short. */
static int rd_be(rd *r, unsigned n, uint64_t *v) {
  if (!need(r, n))
    return -1;
  *v = be(r->p + r->pos, n);
  r->pos += n;
  return 0;
}

/* A two's complement integer of `bits` bits, sign-extended into sign and
 * magnitude without any conversion to a signed type. */
static void set_signed(head *h, uint64_t x, unsigned bits) {
  uint64_t mask = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;

  h->type = T_INT;
  h->v.kind = V_INT;
  h->v.neg = (x >> (bits - 1)) & 1u;
  h->v.u.mag = h->v.neg ? (~x & mask) + 1 : x;
}

static void set_uint(head *h, uint64_t x) {
  h->type = T_INT;
  h->v.kind = V_INT;
  h->v.neg = 0;
  h->v.u.mag = x;
}

/* Read one header.  Strings, binaries and extensions are consumed whole;
 * for arrays and maps only the header is, and h->n says how many elements
 * or pairs follow.  Returns 0, or -1 when the bytes end early or hold the
 * reserved tag 0xc1. */
static int rd_head(rd *r, head *h) {
  uint64_t x = 0, body = 0;
  uint8_t b;

  memset(h, 0, sizeof(*h));
  if (!need(r, 1))
    return -1;
  b = r->p[r->pos++];
  if (b <= 0x7f) {
    set_uint(h, b);
    return 0;
  }
  if (b >= 0xe0) {
    set_signed(h, b, 8);
    return 0;
  }
  if (b <= 0x8f) {
    h->type = T_MAP, h->n = b & 0x0fu;
    return 0;
  }
  if (b <= 0x9f) {
    h->type = T_ARR, h->n = b & 0x0fu;
    return 0;
  }
  if (b <= 0xbf) {
    h->type = T_STR, body = b & 0x1fu;
    goto str;
  }
  switch (b) {
  case 0xc0:
    h->type = T_NIL;
    return 0;
  case 0xc2:
  case 0xc3:
    h->type = T_BOOL, h->v.kind = V_BOOL, h->v.b = b == 0xc3;
    return 0;
  case 0xc4: /* bin 8/16/32 */
  case 0xc5:
  case 0xc6:
    h->type = T_BIN;
    if (rd_be(r, 1u << (b - 0xc4), &body))
      return -1;
    goto skip;
  case 0xc7: /* ext 8/16/32: length, then a type byte */
  case 0xc8:
  case 0xc9:
    h->type = T_EXT;
    if (rd_be(r, 1u << (b - 0xc7), &body))
      return -1;
    body += 1;
    goto skip;
  case 0xca: {
    float f;
    uint32_t bits;

    if (rd_be(r, 4, &x))
      return -1;
    bits = (uint32_t)x;
    memcpy(&f, &bits, sizeof(f));
    h->type = T_FLT, h->v.kind = V_FLT, h->v.u.d = f;
    return 0;
  }
  case 0xcb:
    if (rd_be(r, 8, &x))
      return -1;
    h->type = T_FLT, h->v.kind = V_FLT;
    memcpy(&h->v.u.d, &x, sizeof(double));
    return 0;
  case 0xcc: /* uint 8/16/32/64 */
  case 0xcd:
  case 0xce:
  case 0xcf:
    if (rd_be(r, 1u << (b - 0xcc), &x))
      return -1;
    set_uint(h, x);
    return 0;
  case 0xd0: /* int 8/16/32/64 */
  case 0xd1:
  case 0xd2:
  case 0xd3:
    if (rd_be(r, 1u << (b - 0xd0), &x))
      return -1;
    set_signed(h, x, 8u << (b - 0xd0));
    return 0;
  case 0xd4: /* fixext 1/2/4/8/16: a type byte and the data */
  case 0xd5:
  case 0xd6:
  case 0xd7:
  case 0xd8:
    h->type = T_EXT, body = 1u + (1u << (b - 0xd4));
    goto skip;
  case 0xd9: /* str 8/16/32 */
  case 0xda:
  case 0xdb:
    h->type = T_STR;
    if (rd_be(r, 1u << (b - 0xd9), &body))
      return -1;
    goto str;
  case 0xdc:
  case 0xdd:
    h->type = T_ARR;
    if (rd_be(r, b == 0xdc ? 2 : 4, &x))
      return -1;
    h->n = (uint32_t)x;
    return 0;
  case 0xde:
  case 0xdf:
    h->type = T_MAP;
    if (rd_be(r, b == 0xde ? 2 : 4, &x))
      return -1;
    h->n = (uint32_t)x;
    return 0;
  default: /* 0xc1, reserved */
    return -1;
  }
str:
  if (!need(r, body))
    return -1;
  h->v.kind = V_STR;
  h->v.len = (uint32_t)body; /* str32 lengths fit in 32 bits */
  h->v.u.s = (const char *)r->p + r->pos;
  r->pos += (size_t)body;
  return 0;
skip:
  if (!need(r, body))
    return -1;
  r->pos += (size_t)body;
  return 0;
}

/* Skip one whole object, containers included, without recursion: `left`
 * counts the objects still to read.  Every object takes at least one byte,
 * so a count larger than the bytes left is malformed at once. */
static int rd_skip(rd *r) {
  uint64_t left = 1;
  head h;

  while (left > 0) {
    if (rd_head(r, &h))
      return -1;
    left--;
    if (h.type == T_ARR)
      left += h.n;
    else if (h.type == T_MAP)
      left += 2u * (uint64_t)h.n;
    if (left > r->len - r->pos)
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * The filter tree
 * ------------------------------------------------------------------------- */

/* An arena chunk; the data follows the header, aligned for any type. */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  max_align_t data[];
} chunk;

#define CHUNK_DATA 4096

enum { L_MUST, L_SHOULD, L_MUST_NOT, L_COUNT };
static const char *const list_names[L_COUNT] = {"must", "should", "must_not"};

enum { C_MATCH, C_ANY, C_RANGE, C_HAS_ID, C_FILTER };
enum { B_GT, B_GTE, B_LT, B_LTE, B_COUNT };
static const char *const bound_names[B_COUNT] = {"gt", "gte", "lt", "lte"};

typedef struct node node;

typedef struct cond {
  uint8_t kind;
  uint8_t nbounds;     /* C_RANGE: 1..4 */
  uint8_t op[B_COUNT]; /* C_RANGE: B_* of each bound */
  uint32_t field;      /* C_MATCH, C_ANY, C_RANGE: index in vs__filter.fields */
  const char *key;     /* the field name (in the arena), until fields are resolved */
  uint32_t key_len;
  union {
    val one;            /* C_MATCH */
    val bound[B_COUNT]; /* C_RANGE */
    struct {            /* C_ANY, C_HAS_ID: sorted, no duplicates */
      val *v;
      size_t n;
    } list;
    node *sub; /* C_FILTER */
  } u;
} cond;

/* A filter level: its must, should and must_not lists. */
struct node {
  cond *c[L_COUNT];
  size_t n[L_COUNT];
};

typedef struct field {
  const char *name; /* in the arena, not NUL-terminated */
  uint32_t len;
} field;

struct vs__filter {
  uint64_t digest; /* of the msgpack form it was parsed from (vs__filter_digest) */
  node root;
  field *fields; /* sorted bytewise, distinct */
  size_t n_fields;
  vs_id *ids; /* the has_id fast path (vs__filter_id_list), or NULL */
  size_t n_ids;
  chunk *arena;
};

/* Zeroed memory from the filter's arena; NULL when out of memory. */
static void *arena_alloc(vs__filter *f, size_t size) {
  const size_t align = _Alignof(max_align_t);
  chunk *c = f->arena;
  void *p;

  if (size > SIZE_MAX - align)
    return NULL;
  size = (size + align - 1) / align * align;
  if (c == NULL || c->cap - c->used < size) {
    size_t cap = size > CHUNK_DATA ? size : CHUNK_DATA;

    if (cap > SIZE_MAX - sizeof(chunk))
      return NULL;
    c = vs__malloc(sizeof(chunk) + cap);
    if (c == NULL)
      return NULL;
    c->used = 0;
    c->cap = cap;
    /* A chunk made for one large request goes behind the current one, so
     * the current one's free space stays in use. */
    if (f->arena != NULL && cap > CHUNK_DATA) {
      c->next = f->arena->next;
      f->arena->next = c;
    } else {
      c->next = f->arena;
      f->arena = c;
    }
  }
  p = (char *)c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

void vs__filter_free(vs__filter *f) {
  chunk *c, *next;

  if (f == NULL)
    return;
  for (c = f->arena; c != NULL; c = next) {
    next = c->next;
    vs__free(c);
  }
  vs__free(f);
}

/* ---------------------------------------------------------------------------
 * Parsing
 *
 * The walker goes down the msgpack bytes with one reader, one map or list at
 * a time, and keeps in `path` where it is ("must[2].should[0]"), so every
 * error message says which condition was wrong.
 * ------------------------------------------------------------------------- */

typedef struct ps {
  vs__filter *f;
  vs_error *err;
  size_t items; /* conditions and list values so far */
  cond **keyed; /* the conditions that name a field (vs__malloc'ed) */
  size_t n_keyed, cap_keyed;
  char path[192];
  size_t plen;
} ps;

/* Record an EINVAL error prefixed with "filter: <path>: ". */
static int bad(ps *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int bad(ps *s, const char *fmt, ...) {
  char msg[VS_ERROR_MESSAGE_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return vs__err(s->err, VS_EINVAL, "filter: %s%s%s", s->path, s->plen ? ": " : "", msg);
}

static int oom(ps *s) {
  return vs__err(s->err, VS_ENOMEM, "filter: out of memory");
}

/* Append "name[i]" to the path; returns the length to restore. */
static size_t path_push(ps *s, const char *name, size_t i) {
  size_t old = s->plen;
  int n = snprintf(s->path + s->plen, sizeof(s->path) - s->plen, "%s%s[%zu]", s->plen ? "." : "",
                   name, i);

  if (n > 0)
    s->plen += (size_t)n < sizeof(s->path) - s->plen ? (size_t)n : sizeof(s->path) - s->plen - 1;
  return old;
}

static void path_pop(ps *s, size_t old) {
  s->plen = old;
  s->path[old] = '\0';
}

/* Count n more conditions or values against VS__FILTER_ITEMS_MAX; done
 * before anything is allocated for them. */
static int take(ps *s, size_t n) {
  if (n > VS__FILTER_ITEMS_MAX - s->items)
    return bad(s, "more than %d conditions and values in one filter", VS__FILTER_ITEMS_MAX);
  s->items += n;
  return VS_OK;
}

static int is(const head *k, const char *name) {
  size_t n = strlen(name);

  return k->v.len == n && memcmp(k->v.u.s, name, n) == 0;
}

/* Index of key k in names[0..n), or -1. */
static int which(const head *k, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (is(k, names[i]))
      return i;
  return -1;
}

/* A printable width for a key in a message: at most 64 bytes of it. */
#define KEYW(k) (int)((k)->v.len > 64 ? 64 : (k)->v.len)

/* Read a map key: a string. */
static int read_key(ps *s, rd *r, head *k) {
  if (rd_head(r, k) || k->type != T_STR)
    return bad(s, "object keys must be strings");
  return VS_OK;
}

/* Copy a string into the arena. */
static int copy_str(ps *s, val *v) {
  char *c = arena_alloc(s->f, v->len);

  if (c == NULL)
    return oom(s);
  memcpy(c, v->u.s, v->len);
  v->u.s = c;
  return VS_OK;
}

/* Read a match value: a string, integer, finite float or boolean. */
static int read_scalar(ps *s, rd *r, val *v, const char *what) {
  head h;

  if (rd_head(r, &h))
    return bad(s, "%s is malformed", what);
  switch (h.type) {
  case T_BOOL:
  case T_INT:
    *v = h.v;
    return VS_OK;
  case T_FLT:
    if (!isfinite(h.v.u.d))
      return bad(s, "%s must be finite, not %s", what, isnan(h.v.u.d) ? "NaN" : "infinite");
    *v = h.v;
    return VS_OK;
  case T_STR:
    if (vs__utf8_check(h.v.u.s, h.v.len))
      return bad(s, "%s is not valid UTF-8", what);
    *v = h.v;
    return copy_str(s, v);
  default:
    return bad(s, "%s must be a string, integer, float or boolean", what);
  }
}

/* Sort a list and drop duplicates (equal under val_cmp, such as 5 and 5.0;
 * keeping one of them changes no membership answer). */
static size_t sort_unique(val *v, size_t n) {
  size_t m = 0;

  qsort(v, n, sizeof(*v), val_qsort_cmp);
  for (size_t i = 0; i < n; i++)
    if (m == 0 || val_cmp(&v[m - 1], &v[i]) != 0)
      v[m++] = v[i];
  return m;
}

/* "match": {"value": V} or {"any": [V, ...]}. */
static int parse_match(ps *s, rd *r, cond *c) {
  static const char *const keys[] = {"value", "any"};
  int w;
  head h, k;
  int rc;

  if (rd_head(r, &h) || h.type != T_MAP)
    return bad(s, "match must be an object with \"value\" or \"any\"");
  if (h.n != 1)
    return bad(s, "match needs exactly one of \"value\" or \"any\"");
  if ((rc = read_key(s, r, &k)))
    return rc;
  w = which(&k, keys, 2);
  if (w < 0)
    return bad(s, "unknown key '%.*s' in match (expected value or any)", KEYW(&k), k.v.u.s);
  if (w == 0) {
    c->kind = C_MATCH;
    return read_scalar(s, r, &c->u.one, "match value");
  }

  c->kind = C_ANY;
  if (rd_head(r, &h) || h.type != T_ARR)
    return bad(s, "match any must be a list of values");
  if (h.n == 0)
    return bad(s, "match any must not be empty");
  if ((rc = take(s, h.n)))
    return rc;
  c->u.list.v = arena_alloc(s->f, (size_t)h.n * sizeof(val));
  if (c->u.list.v == NULL)
    return oom(s);
  for (uint32_t i = 0; i < h.n; i++) {
    char what[48];

    snprintf(what, sizeof(what), "match any[%u]", i);
    if ((rc = read_scalar(s, r, &c->u.list.v[i], what)))
      return rc;
  }
  c->u.list.n = sort_unique(c->u.list.v, h.n);
  return VS_OK;
}

/* "range": {"gt"|"gte"|"lt"|"lte": N, ...}. */
static int parse_range(ps *s, rd *r, cond *c) {
  unsigned seen = 0;
  head h, k, v;
  int rc;

  c->kind = C_RANGE;
  if (rd_head(r, &h) || h.type != T_MAP)
    return bad(s, "range must be an object of bounds gt, gte, lt, lte");
  for (uint32_t i = 0; i < h.n; i++) {
    int b;

    if ((rc = read_key(s, r, &k)))
      return rc;
    b = which(&k, bound_names, B_COUNT);
    if (b < 0)
      return bad(s, "unknown range bound '%.*s' (expected gt, gte, lt, lte)", KEYW(&k), k.v.u.s);
    if (seen & (1u << b))
      return bad(s, "range bound %s appears twice", bound_names[b]);
    seen |= 1u << b;
    if (rd_head(r, &v) || (v.type != T_INT && v.type != T_FLT))
      return bad(s, "range %s must be a number", bound_names[b]);
    if (v.type == T_FLT && !isfinite(v.v.u.d))
      return bad(s, "range %s must be finite, not %s", bound_names[b],
                 isnan(v.v.u.d) ? "NaN" : "infinite");
    c->op[c->nbounds] = (uint8_t)b;
    c->u.bound[c->nbounds++] = v.v;
  }
  if (c->nbounds == 0)
    return bad(s, "range needs at least one of gt, gte, lt, lte");
  return VS_OK;
}

/* "has_id": [ID, ...]. */
static int parse_ids(ps *s, rd *r, cond *c) {
  head h, v;
  int rc;

  c->kind = C_HAS_ID;
  if (rd_head(r, &h) || h.type != T_ARR)
    return bad(s, "has_id must be a list of ids");
  if (h.n == 0)
    return bad(s, "has_id must not be empty");
  if ((rc = take(s, h.n)))
    return rc;
  c->u.list.v = arena_alloc(s->f, (size_t)h.n * sizeof(val));
  if (c->u.list.v == NULL)
    return oom(s);
  for (uint32_t i = 0; i < h.n; i++) {
    int ok = 0;

    if (rd_head(r, &v) == 0) {
      if (v.type == T_INT)
        ok = !v.v.neg && v.v.u.mag <= (uint64_t)VS_INT_ID_MAX;
      else if (v.type == T_STR)
        ok = v.v.len >= 1 && v.v.len <= VS_ID_MAX && vs__utf8_check(v.v.u.s, v.v.len) == 0;
    }
    if (!ok)
      return bad(s,
                 "has_id[%u] must be an integer in 0..2^63-1 or a string of 1..%d bytes of UTF-8",
                 i, VS_ID_MAX);
    c->u.list.v[i] = v.v;
    if (v.type == T_STR && (rc = copy_str(s, &c->u.list.v[i])))
      return rc;
  }
  c->u.list.n = sort_unique(c->u.list.v, h.n);
  return VS_OK;
}

/* "key": F.  Remembers the condition for field resolution. */
static int parse_key(ps *s, rd *r, cond *c) {
  head h;
  val v;
  int rc;

  if (rd_head(r, &h) || h.type != T_STR)
    return bad(s, "key must be a string");
  if (h.v.len == 0 || h.v.len > VS_FIELD_NAME_MAX)
    return bad(s, "key must be 1..%d bytes", VS_FIELD_NAME_MAX);
  if (vs__utf8_check(h.v.u.s, h.v.len))
    return bad(s, "key is not valid UTF-8");
  v = h.v;
  if ((rc = copy_str(s, &v)))
    return rc;
  c->key = v.u.s;
  c->key_len = v.len;
  if (s->n_keyed == s->cap_keyed) {
    size_t cap = s->cap_keyed ? 2 * s->cap_keyed : 16;
    cond **k = vs__realloc(s->keyed, cap * sizeof(*k));

    if (k == NULL)
      return oom(s);
    s->keyed = k;
    s->cap_keyed = cap;
  }
  s->keyed[s->n_keyed++] = c;
  return VS_OK;
}

static int parse_filter(ps *s, rd *r, node *n, int level);

/* One condition.  Its keys may come in any order, so the map is read once
 * to find each value's position, then each part is parsed from there. */
enum { K_KEY, K_MATCH, K_RANGE, K_HAS_ID, K_MUST, K_SHOULD, K_MUST_NOT, K_COUNT };
static const char *const cond_keys[K_COUNT] = {"key",  "match",  "range",   "has_id",
                                               "must", "should", "must_not"};

static int parse_cond(ps *s, rd *r, cond *c, int level) {
  size_t at[K_COUNT] = {0};
  unsigned seen = 0;
  size_t start = r->pos;
  head h, k;
  rd sub;
  int rc;

  if (rd_head(r, &h) || h.type != T_MAP)
    return bad(s, "a condition must be an object");
  for (uint32_t i = 0; i < h.n; i++) {
    int w;

    if ((rc = read_key(s, r, &k)))
      return rc;
    w = which(&k, cond_keys, K_COUNT);
    if (w < 0)
      return bad(s,
                 "unknown key '%.*s' in a condition (expected key with match or range, "
                 "has_id, or must/should/must_not)",
                 KEYW(&k), k.v.u.s);
    if (seen & (1u << w))
      return bad(s, "key '%s' appears twice", cond_keys[w]);
    seen |= 1u << w;
    at[w] = r->pos;
    if (rd_skip(r))
      return bad(s, "malformed value");
  }
  sub = *r;

  /* The empty object is the empty nested filter, as at the top level. */
  if (seen == 0 || (seen & ((1u << K_MUST) | (1u << K_SHOULD) | (1u << K_MUST_NOT)))) {
    if (seen & ((1u << K_KEY) | (1u << K_MATCH) | (1u << K_RANGE) | (1u << K_HAS_ID)))
      return bad(s, "a condition is either a nested filter (must, should, must_not) or a field "
                    "or has_id condition, not both");
    if (level >= VS__FILTER_DEPTH_MAX)
      return bad(s, "filters nest deeper than %d levels", VS__FILTER_DEPTH_MAX);
    c->kind = C_FILTER;
    c->u.sub = arena_alloc(s->f, sizeof(node));
    if (c->u.sub == NULL)
      return oom(s);
    sub.pos = start;
    return parse_filter(s, &sub, c->u.sub, level + 1);
  }
  if (seen & (1u << K_HAS_ID)) {
    if (seen != (1u << K_HAS_ID))
      return bad(s, "has_id takes no other keys");
    sub.pos = at[K_HAS_ID];
    return parse_ids(s, &sub, c);
  }
  if (!(seen & (1u << K_KEY)))
    return bad(s, "%s needs a key", seen & (1u << K_MATCH) ? "match" : "range");
  sub.pos = at[K_KEY];
  if ((rc = parse_key(s, &sub, c)))
    return rc;
  if ((seen & (1u << K_MATCH)) && (seen & (1u << K_RANGE)))
    return bad(s, "a condition takes match or range, not both");
  if (seen & (1u << K_MATCH)) {
    sub.pos = at[K_MATCH];
    return parse_match(s, &sub, c);
  }
  if (seen & (1u << K_RANGE)) {
    sub.pos = at[K_RANGE];
    return parse_range(s, &sub, c);
  }
  return bad(s, "a condition on key '%.*s' needs match or range", (int)c->key_len, c->key);
}

/* A filter object at nesting `level` (the top one is 1). */
static int parse_filter(ps *s, rd *r, node *n, int level) {
  unsigned seen = 0;
  head h, k, l;
  int rc;

  if (rd_head(r, &h) || h.type != T_MAP)
    return bad(s, "a filter must be an object");
  for (uint32_t i = 0; i < h.n; i++) {
    int w;

    if ((rc = read_key(s, r, &k)))
      return rc;
    w = which(&k, list_names, L_COUNT);
    if (w < 0)
      return bad(s, "unknown key '%.*s' in a filter (expected must, should, must_not)", KEYW(&k),
                 k.v.u.s);
    if (seen & (1u << w))
      return bad(s, "key '%s' appears twice", list_names[w]);
    seen |= 1u << w;

    if (rd_head(r, &l) || l.type != T_ARR) {
      size_t old = s->plen;

      /* Name the list itself: "filter: must: must be a list". */
      snprintf(s->path + old, sizeof(s->path) - old, "%s%s", old ? "." : "", list_names[w]);
      s->plen = strlen(s->path);
      rc = bad(s, "must be a list of conditions");
      path_pop(s, old);
      return rc;
    }
    if (l.n == 0)
      continue;
    if ((rc = take(s, l.n)))
      return rc;
    n->c[w] = arena_alloc(s->f, (size_t)l.n * sizeof(cond));
    if (n->c[w] == NULL)
      return oom(s);
    n->n[w] = l.n;
    for (uint32_t j = 0; j < l.n; j++) {
      size_t old = path_push(s, list_names[w], j);

      rc = parse_cond(s, r, &n->c[w][j], level);
      path_pop(s, old);
      if (rc)
        return rc;
    }
  }
  return VS_OK;
}

static int keyed_cmp(const void *a, const void *b) {
  const cond *x = *(const cond *const *)a, *y = *(const cond *const *)b;

  return str_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* Build the table of distinct field names and point every field condition
 * at its entry.  Sorting the conditions by name groups equal names. */
static int resolve_fields(ps *s) {
  vs__filter *f = s->f;

  if (s->n_keyed == 0)
    return VS_OK;
  qsort(s->keyed, s->n_keyed, sizeof(*s->keyed), keyed_cmp);
  f->fields = arena_alloc(f, s->n_keyed * sizeof(field));
  if (f->fields == NULL)
    return oom(s);
  for (size_t i = 0; i < s->n_keyed; i++) {
    cond *c = s->keyed[i];

    if (f->n_fields == 0 || str_cmp(f->fields[f->n_fields - 1].name, f->fields[f->n_fields - 1].len,
                                    c->key, c->key_len) != 0) {
      f->fields[f->n_fields].name = c->key;
      f->fields[f->n_fields].len = c->key_len;
      f->n_fields++;
    }
    c->field = (uint32_t)(f->n_fields - 1);
  }
  return VS_OK;
}

/* The fast path of vs__filter_id_list(): the root is one has_id condition
 * in must or in should, and nothing else. */
static int build_id_list(ps *s) {
  vs__filter *f = s->f;
  const node *n = &f->root;
  const cond *c;

  if (n->n[L_MUST_NOT] != 0 || n->n[L_MUST] + n->n[L_SHOULD] != 1)
    return VS_OK;
  c = n->n[L_MUST] ? &n->c[L_MUST][0] : &n->c[L_SHOULD][0];
  if (c->kind != C_HAS_ID)
    return VS_OK;
  f->ids = arena_alloc(f, c->u.list.n * sizeof(vs_id));
  if (f->ids == NULL)
    return oom(s);
  for (size_t i = 0; i < c->u.list.n; i++) {
    const val *v = &c->u.list.v[i];

    if (v->kind == V_INT)
      f->ids[i] = (vs_id){VS_ID_INT, v->u.mag, NULL, 0};
    else
      f->ids[i] = (vs_id){VS_ID_STR, 0, v->u.s, v->len};
  }
  f->n_ids = c->u.list.n;
  return VS_OK;
}

/* Scan, walk and finish a filter from msgpack bytes (a client's, or JSON
 * re-encoded); on success *out receives it. */
static int parse_bytes(const uint8_t *p, size_t len, vs__filter **out, vs_error *err) {
  ps s;
  rd r = {p, len, 0};
  size_t used = 0;
  int rc;

  memset(&s, 0, sizeof(s));
  s.err = err;
  rc = vs__mp_scan(p, len, len, VS__MP_DEPTH_CAP, &used);
  if (rc == VS__MP_MORE || rc == VS_ETOOLARGE)
    return vs__err(err, VS_EINVAL, "filter: message is truncated or nests deeper than %d levels",
                   VS__MP_DEPTH_CAP);
  if (rc)
    return vs__err(err, VS_EINVAL, "filter: not valid msgpack");
  if (used != len)
    return vs__err(err, VS_EINVAL, "filter: trailing bytes after the filter map (%zu)", len - used);

  s.f = vs__calloc(1, sizeof(*s.f));
  if (s.f == NULL)
    return oom(&s);
  rc = parse_filter(&s, &r, &s.f->root, 1);
  if (rc)
    goto fail;
  rc = resolve_fields(&s);
  if (rc)
    goto fail;
  rc = build_id_list(&s);
  if (rc)
    goto fail;
  /* FNV-1a over the bytes: equal filters sent the same way share a digest. */
  s.f->digest = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++)
    s.f->digest = (s.f->digest ^ p[i]) * 0x100000001b3ull;
  vs__free(s.keyed);
  *out = s.f;
  return VS_OK;

fail:
  vs__free(s.keyed);
  vs__filter_free(s.f);
  return rc;
}

int vs__filter_parse_msgpack(const void *p, size_t len, vs__filter **out, vs_error *err) {
  if (out == NULL)
    return vs__err(err, VS_EINVAL, "filter: no place for the result");
  *out = NULL;
  if (len == 0)
    return vs__err(err, VS_EINVAL, "filter: empty message (a filter is a msgpack map)");
  if (p == NULL)
    return vs__err(err, VS_EINVAL, "filter: message pointer is NULL");
  return parse_bytes(p, len, out, err);
}

/* ---------------------------------------------------------------------------
 * JSON, re-encoded as msgpack
 * ------------------------------------------------------------------------- */

/* A growing buffer, written by msgpack-c's packer through buf_write(). */
typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static int buf_write(void *data, const char *s, size_t n) {
  buf *b = data;

  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 256;
    char *q;

    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2)
        return -1;
      cap *= 2;
    }
    q = vs__realloc(b->p, cap);
    if (q == NULL)
      return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 0;
}

/* Encode a decoded JSON value as msgpack: integers stay integers and reals
 * become float64, so the walker sees the kinds the text had.  Returns 0, -1
 * when out of memory, or -2 when nested deeper than the scanner accepts
 * (jansson's own limit is far deeper; this bounds the recursion). */
static int json_to_mp(const json_t *j, msgpack_packer *pk, unsigned depth) {
  const char *key;
  json_t *v;
  size_t i;
  int rc;

  switch (json_typeof(j)) {
  case JSON_OBJECT:
    if (depth >= VS__MP_DEPTH_CAP)
      return -2;
    if (msgpack_pack_map(pk, json_object_size(j)))
      return -1;
    json_object_foreach((json_t *)j, key, v) {
      if (msgpack_pack_str_with_body(pk, key, strlen(key)))
        return -1;
      if ((rc = json_to_mp(v, pk, depth + 1)))
        return rc;
    }
    return 0;
  case JSON_ARRAY:
    if (depth >= VS__MP_DEPTH_CAP)
      return -2;
    if (msgpack_pack_array(pk, json_array_size(j)))
      return -1;
    json_array_foreach(j, i, v) {
      if ((rc = json_to_mp(v, pk, depth + 1)))
        return rc;
    }
    return 0;
  case JSON_STRING:
    return msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j)) ? -1 : 0;
  case JSON_INTEGER:
    return msgpack_pack_int64(pk, (int64_t)json_integer_value(j)) ? -1 : 0;
  case JSON_REAL:
    return msgpack_pack_double(pk, json_real_value(j)) ? -1 : 0;
  case JSON_TRUE:
    return msgpack_pack_true(pk) ? -1 : 0;
  case JSON_FALSE:
    return msgpack_pack_false(pk) ? -1 : 0;
  default:
    return msgpack_pack_nil(pk) ? -1 : 0;
  }
}

int vs__filter_parse_json(const char *json, size_t len, vs__filter **out, vs_error *err) {
  json_error_t jerr;
  msgpack_packer pk;
  buf b = {NULL, 0, 0};
  json_t *root;
  int rc;

  if (out == NULL)
    return vs__err(err, VS_EINVAL, "filter: no place for the result");
  *out = NULL;
  if (json == NULL && len > 0)
    return vs__err(err, VS_EINVAL, "filter: JSON text pointer is NULL");
  root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    rc = vs__err(err, VS_EINVAL, "filter: invalid JSON at line %d, column %d: %s", jerr.line,
                 jerr.column, jerr.text);
    goto fail;
  }
  msgpack_packer_init(&pk, &b, buf_write);
  switch (json_to_mp(root, &pk, 0)) {
  case 0:
    rc = parse_bytes((const uint8_t *)b.p, b.len, out, err);
    break;
  case -2:
    rc = vs__err(err, VS_EINVAL, "filter: JSON nests deeper than %d levels", VS__MP_DEPTH_CAP);
    break;
  default:
    rc = vs__err(err, VS_ENOMEM, "filter: out of memory");
    break;
  }
  json_decref(root);
  vs__free(b.p);
fail:
  return rc;
}

/* ---------------------------------------------------------------------------
 * Evaluation
 *
 * vs__filter_match() walks the tree depth first and stops as soon as the
 * answer is known: a filter level fails at its first failing `must`, at its
 * first holding `must_not`, and otherwise passes at its first holding
 * `should` (or at once when it has no `should` list).
 *
 * A field condition needs the field's value in the payload.  Payload maps
 * are small, and a filter usually names a handful of fields, so the first
 * field lookup makes one pass over the payload's keys and records where the
 * value of every field the filter knows starts (bisecting the filter's
 * sorted field table for each payload key); later lookups are an index.
 * The record lives on the stack, so this only works for filters of at most
 * CACHE_FIELDS distinct fields; larger filters scan the payload's keys once
 * per condition instead.  Payload keys are unique (vs__payload_check), so
 * the first key found is the only one.
 *
 * A condition on a field holds when the field is present and its value, or
 * one element of its array value, satisfies it.  Whatever the payload holds
 * that the checker would have refused (a nested container, bytes cut short)
 * satisfies nothing and never leads the reader outside the buffer.
 * ------------------------------------------------------------------------- */

#define CACHE_FIELDS 32
#define NOPOS SIZE_MAX

typedef struct ev {
  const vs__filter *f;
  const vs_id *id;
  rd payload; /* positioned at the first key of the payload map */
  uint32_t pairs;
  int scanned; /* pos[] is filled in */
  size_t pos[CACHE_FIELDS];
} ev;

static int field_find(const vs__filter *f, const val *key) {
  size_t lo = 0, hi = f->n_fields;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = str_cmp(f->fields[mid].name, f->fields[mid].len, key->u.s, key->len);

    if (c == 0)
      return (int)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* The position of field i's value in the payload, or NOPOS. */
static size_t lookup(ev *e, uint32_t i) {
  const field *want = &e->f->fields[i];
  rd r = e->payload;
  head k;

  if (e->f->n_fields <= CACHE_FIELDS) {
    if (!e->scanned) {
      for (size_t j = 0; j < e->f->n_fields; j++)
        e->pos[j] = NOPOS;
      e->scanned = 1;
      for (uint32_t j = 0; j < e->pairs; j++) {
        int fi;

        if (rd_head(&r, &k) || k.type != T_STR)
          break;
        fi = field_find(e->f, &k.v);
        if (fi >= 0)
          e->pos[fi] = r.pos;
        if (rd_skip(&r))
          break;
      }
    }
    return e->pos[i];
  }
  for (uint32_t j = 0; j < e->pairs; j++) {
    if (rd_head(&r, &k) || k.type != T_STR)
      break;
    if (k.v.len == want->len && memcmp(k.v.u.s, want->name, want->len) == 0)
      return r.pos;
    if (rd_skip(&r))
      break;
  }
  return NOPOS;
}

/* Does scalar v satisfy field condition c? */
static int test_scalar(const cond *c, const val *v) {
  switch (c->kind) {
  case C_MATCH:
    return val_cmp(v, &c->u.one) == 0;
  case C_ANY:
    return list_has(c->u.list.v, c->u.list.n, v);
  default: /* C_RANGE: numbers only; every bound must hold */
    if (v->kind != V_INT && v->kind != V_FLT)
      return 0;
    for (unsigned i = 0; i < c->nbounds; i++) {
      int k = num_cmp(v, &c->u.bound[i]);
      int ok = c->op[i] == B_GT    ? k > 0
               : c->op[i] == B_GTE ? k >= 0
               : c->op[i] == B_LT  ? k < 0
                                   : k <= 0;

      if (!ok)
        return 0;
    }
    return 1;
  }
}

static int is_scalar(int type) {
  return type == T_BOOL || type == T_INT || type == T_FLT || type == T_STR;
}

static int eval_field(ev *e, const cond *c) {
  size_t at = lookup(e, c->field);
  rd r = e->payload;
  head h;

  if (at == NOPOS)
    return 0; /* a missing field matches nothing */
  r.pos = at;
  if (rd_head(&r, &h))
    return 0;
  if (is_scalar(h.type))
    return test_scalar(c, &h.v);
  if (h.type != T_ARR)
    return 0;
  for (uint32_t i = 0; i < h.n; i++) { /* any element */
    head x;

    if (rd_head(&r, &x) || !is_scalar(x.type))
      return 0;
    if (test_scalar(c, &x.v))
      return 1;
  }
  return 0;
}

static int eval_node(ev *e, const node *n);

static int eval_cond(ev *e, const cond *c) {
  val x;

  switch (c->kind) {
  case C_FILTER:
    return eval_node(e, c->u.sub);
  case C_HAS_ID:
    if (e->id == NULL)
      return 0;
    memset(&x, 0, sizeof(x));
    if (e->id->kind == VS_ID_INT) {
      x.kind = V_INT;
      x.u.mag = e->id->num;
    } else {
      if (e->id->kind != VS_ID_STR || e->id->str == NULL || e->id->len > VS_ID_MAX)
        return 0;
      x.kind = V_STR;
      x.u.s = e->id->str;
      x.len = (uint32_t)e->id->len;
    }
    return list_has(c->u.list.v, c->u.list.n, &x);
  default:
    return eval_field(e, c);
  }
}

static int eval_node(ev *e, const node *n) {
  for (size_t i = 0; i < n->n[L_MUST]; i++)
    if (!eval_cond(e, &n->c[L_MUST][i]))
      return 0;
  for (size_t i = 0; i < n->n[L_MUST_NOT]; i++)
    if (eval_cond(e, &n->c[L_MUST_NOT][i]))
      return 0;
  if (n->n[L_SHOULD] == 0)
    return 1;
  for (size_t i = 0; i < n->n[L_SHOULD]; i++)
    if (eval_cond(e, &n->c[L_SHOULD][i]))
      return 1;
  return 0;
}

int vs__filter_match(const vs__filter *f, const vs_id *id, const uint8_t *payload, size_t len) {
  ev e;
  head h;

  e.f = f;
  e.id = id;
  e.payload.p = payload;
  e.payload.len = payload ? len : 0;
  e.payload.pos = 0;
  e.pairs = 0;
  e.scanned = 0;
  /* A payload that is not a map reads as empty. */
  if (rd_head(&e.payload, &h) == 0 && h.type == T_MAP)
    e.pairs = h.n;
  return eval_node(&e, &f->root);
}

int vs__filter_id_list(const vs__filter *f, const vs_id **ids, size_t *n) {
  if (f->ids == NULL)
    return 0;
  *ids = f->ids;
  *n = f->n_ids;
  return 1;
}

size_t vs__filter_field_count(const vs__filter *f) {
  return f->n_fields;
}

const char *vs__filter_field(const vs__filter *f, size_t i, size_t *len) {
  *len = f->fields[i].len;
  return f->fields[i].name;
}

/* ---------------------------------------------------------------------------
 * Set evaluation, for the payload index
 *
 * The payload index (pindex.c) keeps, per field, the points holding each
 * value; vs__filter_eval() turns a filter into bitmap algebra over those
 * sets.  Its equivalence with vs__filter_match() rests on three things
 * kept here, next to the code they must agree with: the value order
 * (val_cmp), the canonical form that makes equal values identical, and a
 * payload walker that sees the same values eval_field() sees.
 * ------------------------------------------------------------------------- */

int vs__scalar_cmp(const vs__scalar *a, const vs__scalar *b) {
  return val_cmp(a, b);
}

/* A float equals an integer exactly when it is integral and the integer
 * type can hold it: [-2^63, 2^64).  Converting such a double to uint64 is
 * exact, and -0.0 becomes the integer 0. */
void vs__scalar_canon(vs__scalar *v) {
  double d = v->u.d;

  if (v->kind != V_FLT || !isfinite(d) || floor(d) != d)
    return;
  if (d >= 0) {
    if (d >= 18446744073709551616.0) /* 2^64 */
      return;
    v->u.mag = (uint64_t)d;
    v->neg = 0;
  } else {
    if (d < -9223372036854775808.0) /* -2^63 */
      return;
    v->u.mag = (uint64_t)-d;
    v->neg = 1;
  }
  v->kind = V_INT;
  v->b = 0;
  v->len = 0;
}

/* Mirrors lookup() and eval_field(): the key scan ends at a key that is
 * not a string or a value that does not decode; an array yields its
 * elements up to the first one that is not a scalar. */
int vs__payload_walk(const uint8_t *payload, size_t len, vs__payload_key_fn key_fn,
                     vs__payload_val_fn val_fn, void *ctx) {
  rd r = {payload, payload ? len : 0, 0};
  head h, k, x;
  int rc;

  if (rd_head(&r, &h) || h.type != T_MAP)
    return VS_OK; /* a payload that is not a map reads as empty */
  for (uint32_t pairs = h.n; pairs > 0; pairs--) {
    int slot;

    if (rd_head(&r, &k) || k.type != T_STR)
      break;
    slot = key_fn(ctx, k.v.u.s, k.v.len);
    if (slot >= 0) {
      rd v = r;

      if (rd_head(&v, &x) == 0) {
        if (is_scalar(x.type)) {
          if ((rc = val_fn(ctx, slot, &x.v)))
            return rc;
        } else if (x.type == T_ARR) {
          for (uint32_t i = 0; i < x.n; i++) {
            head e;

            if (rd_head(&v, &e) || !is_scalar(e.type))
              break;
            if ((rc = val_fn(ctx, slot, &e.v)))
              return rc;
          }
        }
      }
    }
    if (rd_skip(&r))
      break;
  }
  return VS_OK;
}

/* Combine a range's bounds into one lower and one upper bound: of two
 * lower bounds the higher wins, and at equal values the strict one. */
static void range_bounds(const cond *c, vs__fcond *fc) {
  for (unsigned i = 0; i < c->nbounds; i++) {
    const val *b = &c->u.bound[i];
    int lower = c->op[i] == B_GT || c->op[i] == B_GTE;
    int incl = c->op[i] == B_GTE || c->op[i] == B_LTE;

    if (lower) {
      int k = fc->has_lo ? val_cmp(b, &fc->lo) : 1;

      if (k > 0)
        fc->has_lo = 1, fc->lo = *b, fc->lo_incl = incl;
      else if (k == 0 && !incl)
        fc->lo_incl = 0;
    } else {
      int k = fc->has_hi ? val_cmp(b, &fc->hi) : -1;

      if (k < 0)
        fc->has_hi = 1, fc->hi = *b, fc->hi_incl = incl;
      else if (k == 0 && !incl)
        fc->hi_incl = 0;
    }
  }
}

static int set_node(const vs__filter *f, const vs__set_ops *ops, const node *n,
                    roaring_bitmap_t **out);

/* The points satisfying one condition; *owned as in vs__set_ops. */
static int set_cond(const vs__filter *f, const vs__set_ops *ops, const cond *c,
                    const roaring_bitmap_t **out, int *owned) {
  vs__fcond fc;

  *out = NULL;
  *owned = 0;
  if (c->kind == C_FILTER) {
    roaring_bitmap_t *b = NULL;
    int rc = set_node(f, ops, c->u.sub, &b);

    *out = b;
    *owned = 1;
    return rc;
  }
  if (c->kind == C_HAS_ID)
    return ops->ids(ops->ctx, c->u.list.v, c->u.list.n, out, owned);
  memset(&fc, 0, sizeof(fc));
  fc.field = c->field;
  fc.key = f->fields[c->field].name;
  fc.key_len = f->fields[c->field].len;
  switch (c->kind) {
  case C_MATCH:
    fc.kind = VS__FCOND_MATCH;
    fc.values = &c->u.one;
    fc.n = 1;
    break;
  case C_ANY:
    fc.kind = VS__FCOND_ANY;
    fc.values = c->u.list.v;
    fc.n = c->u.list.n;
    break;
  default:
    fc.kind = VS__FCOND_RANGE;
    range_bounds(c, &fc);
    break;
  }
  return ops->field(ops->ctx, &fc, out, owned);
}

static void set_drop(const roaring_bitmap_t *b, int owned) {
  if (owned && b)
    roaring_bitmap_free((roaring_bitmap_t *)(uintptr_t)b);
}

/* One filter level.  `res` stays NULL while the answer is still the whole
 * universe, so a level without `must` never copies it before it must. */
static int set_node(const vs__filter *f, const vs__set_ops *ops, const node *n,
                    roaring_bitmap_t **out) {
  roaring_bitmap_t *res = NULL, *any = NULL;
  const roaring_bitmap_t *s;
  int owned, rc = VS_OK;

  *out = NULL;
  for (size_t i = 0; i < n->n[L_MUST]; i++) {
    if ((rc = set_cond(f, ops, &n->c[L_MUST][i], &s, &owned)))
      goto fail;
    if (res == NULL)
      res = s ? roaring_bitmap_and(ops->all, s) : roaring_bitmap_create();
    else if (s)
      roaring_bitmap_and_inplace(res, s);
    else
      roaring_bitmap_clear(res);
    set_drop(s, owned);
    if (res == NULL)
      goto oom;
    if (roaring_bitmap_is_empty(res))
      goto done; /* nothing more can pass */
  }
  if (n->n[L_SHOULD] > 0) {
    for (size_t i = 0; i < n->n[L_SHOULD]; i++) {
      if ((rc = set_cond(f, ops, &n->c[L_SHOULD][i], &s, &owned)))
        goto fail;
      if (s == NULL)
        continue;
      if (any == NULL) { /* the first set: adopt it, or copy a borrowed one */
        any = owned ? (roaring_bitmap_t *)(uintptr_t)s : roaring_bitmap_copy(s);
        if (any == NULL)
          goto oom;
        continue;
      }
      roaring_bitmap_or_inplace(any, s);
      set_drop(s, owned);
    }
    if (any == NULL) {
      if (res == NULL && (res = roaring_bitmap_create()) == NULL)
        goto oom;
      roaring_bitmap_clear(res);
      goto done;
    }
    if (res == NULL) {
      res = roaring_bitmap_and(ops->all, any);
      if (res == NULL)
        goto oom;
    } else {
      roaring_bitmap_and_inplace(res, any);
    }
    roaring_bitmap_free(any);
    any = NULL;
  }
  for (size_t i = 0; i < n->n[L_MUST_NOT]; i++) {
    if ((rc = set_cond(f, ops, &n->c[L_MUST_NOT][i], &s, &owned)))
      goto fail;
    if (s != NULL) {
      if (res == NULL)
        res = roaring_bitmap_andnot(ops->all, s);
      else
        roaring_bitmap_andnot_inplace(res, s);
    }
    set_drop(s, owned);
    if (res == NULL && s != NULL)
      goto oom;
    if (res != NULL && roaring_bitmap_is_empty(res))
      goto done;
  }
  if (res == NULL && (res = roaring_bitmap_copy(ops->all)) == NULL)
    goto oom;
done:
  *out = res;
  return VS_OK;
oom:
  rc = VS_ENOMEM;
fail:
  if (any)
    roaring_bitmap_free(any);
  if (res)
    roaring_bitmap_free(res);
  return rc;
}

int vs__filter_eval(const vs__filter *f, const vs__set_ops *ops, roaring_bitmap_t **out) {
  return set_node(f, ops, &f->root, out);
}

uint64_t vs__filter_digest(const vs__filter *f) {
  return f->digest;
}
