/*
 * textsets.c: readers for the BEIR and SMART text evaluation sets, and the
 * synthetic corpus; see textsets.h for the formats and the decisions taken
 * on each set (sections indexed, grade mapping).
 *
 * A ts_set keeps its strings in an arena of 1 MiB blocks (ts_mem), copied
 * once as they are parsed and NUL-terminated, so that documents, queries and
 * the id indexes can point at them for the set's lifetime; the arrays of
 * documents, queries and judgments grow by doubling.  Two open-addressing
 * hash tables (FNV-1a, linear probing, at most half full) map ids to
 * indexes; they are filled as records are added, which is how a duplicate id
 * is caught and how judgments are resolved while they are read.
 * Invariants: every id in a table belongs to the record at its index, and
 * every judgment's query and doc are valid indexes.
 *
 * Untrusted input: lines and archive members are read into buffers that
 * grow with the bytes actually received, up to fixed bounds; numbers are
 * parsed with their digits counted, never trusted to fit.
 */
#include "tools/textsets.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK_BYTES ((size_t)1 << 20)
#define LINE_MAX_BYTES ((size_t)64 << 20)    /* longest JSON or qrels line */
#define MEMBER_MAX_BYTES ((size_t)256 << 20) /* largest archive member read */
#define ID_DIGITS_MAX 18                     /* numeric SMART ids: below 10^18 */

/* ---- Memory: arena, growable buffers, id tables ---------------------------------------------- */

typedef struct block {
  struct block *next;
  size_t used, cap;
  char data[];
} block;

typedef struct slot {
  const char *id; /* NULL: empty */
  size_t len, idx;
} slot;

typedef struct idmap {
  slot *slots;
  size_t cap, n; /* cap is 0 or a power of two; n <= cap / 2 */
} idmap;

struct ts_mem {
  block *blocks;
  idmap docs, queries;
  size_t doc_cap, query_cap, qrel_cap;
};

typedef struct tbuf {
  char *p;
  size_t len, cap;
} tbuf;

static int say(char *msg, size_t cap, int rc, const char *fmt, ...) {
  va_list ap;

  if (msg && cap) {
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int buf_add(tbuf *b, const char *p, size_t n) {
  if (n > SIZE_MAX / 2 - b->len - 1)
    return -1;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *q;
    while (cap < b->len + n + 1)
      cap *= 2;
    q = realloc(b->p, cap);
    if (q == NULL)
      return -1;
    b->p = q;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

/* Append a line to a section's text, newline-separated. */
static int buf_join(tbuf *b, const char *p, size_t n) {
  if (b->len && buf_add(b, "\n", 1))
    return -1;
  return buf_add(b, p, n);
}

static const char *buf_str(const tbuf *b) {
  return b->len ? b->p : "";
}

static ts_mem *mem_of(ts_set *s) {
  if (s->mem == NULL)
    s->mem = calloc(1, sizeof(*s->mem));
  return s->mem;
}

/* Copy n bytes into the arena, NUL-terminated. */
static char *keep(ts_set *s, const char *p, size_t n) {
  ts_mem *m = mem_of(s);
  block *b;
  char *out;

  if (m == NULL)
    return NULL;
  b = m->blocks;
  if (b == NULL || b->cap - b->used < n + 1) {
    size_t cap = n + 1 > BLOCK_BYTES ? n + 1 : BLOCK_BYTES;
    b = malloc(sizeof(*b) + cap);
    if (b == NULL)
      return NULL;
    b->used = 0;
    b->cap = cap;
    /* A block made for one large string goes second, so the current block
     * keeps taking small ones. */
    if (m->blocks && cap > BLOCK_BYTES) {
      b->next = m->blocks->next;
      m->blocks->next = b;
    } else {
      b->next = m->blocks;
      m->blocks = b;
    }
  }
  out = b->data + b->used;
  if (n)
    memcpy(out, p, n);
  out[n] = '\0';
  b->used += n + 1;
  return out;
}

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;

  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static size_t idmap_find(const idmap *m, const char *id, size_t len) {
  if (m->cap == 0)
    return SIZE_MAX;
  for (size_t i = (size_t)fnv1a(id, len) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const slot *sl = &m->slots[i];
    if (sl->id == NULL)
      return SIZE_MAX;
    if (sl->len == len && memcmp(sl->id, id, len) == 0)
      return sl->idx;
  }
}

static void idmap_put(idmap *m, const char *id, size_t len, size_t idx) {
  size_t i = (size_t)fnv1a(id, len) & (m->cap - 1);

  while (m->slots[i].id)
    i = (i + 1) & (m->cap - 1);
  m->slots[i] = (slot){id, len, idx};
  m->n++;
}

/* Make room for one more id (keeping the table at most half full). */
static int idmap_reserve(idmap *m) {
  slot *old = m->slots;
  size_t oldcap = m->cap, cap;

  if ((m->n + 1) * 2 <= m->cap)
    return 0;
  cap = m->cap ? m->cap * 2 : 1024;
  m->slots = calloc(cap, sizeof(slot));
  if (m->slots == NULL) {
    m->slots = old;
    return -1;
  }
  m->cap = cap;
  m->n = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].id)
      idmap_put(m, old[i].id, old[i].len, old[i].idx);
  free(old);
  return 0;
}

static void idmap_clear(idmap *m) {
  if (m->slots)
    memset(m->slots, 0, m->cap * sizeof(slot));
  m->n = 0;
}

/* Grow an array of `size`-byte elements to hold one more than *have. */
static int grow(void **arr, size_t *cap, size_t have, size_t size) {
  size_t n;
  void *p;

  if (have < *cap)
    return 0;
  n = *cap ? *cap * 2 : 1024;
  if (n > SIZE_MAX / size)
    return -1;
  p = realloc(*arr, n * size);
  if (p == NULL)
    return -1;
  *arr = p;
  *cap = n;
  return 0;
}

/* ---- The set ------------------------------------------------------------------------------------
 */

void ts_set_init(ts_set *s) {
  memset(s, 0, sizeof(*s));
}

void ts_set_free(ts_set *s) {
  if (s == NULL)
    return;
  if (s->mem) {
    for (block *b = s->mem->blocks, *next; b; b = next) {
      next = b->next;
      free(b);
    }
    free(s->mem->docs.slots);
    free(s->mem->queries.slots);
    free(s->mem);
  }
  free(s->docs);
  free(s->queries);
  free(s->qrels);
  ts_set_init(s);
}

size_t ts_find_doc(const ts_set *s, const char *id, size_t len) {
  return s->mem ? idmap_find(&s->mem->docs, id, len) : SIZE_MAX;
}

size_t ts_find_query(const ts_set *s, const char *id, size_t len) {
  return s->mem ? idmap_find(&s->mem->queries, id, len) : SIZE_MAX;
}

static int add_doc(ts_set *s, const char *id, size_t idlen, const char *title, size_t tlen,
                   const char *text, size_t xlen, const char *where, char *msg, size_t cap) {
  ts_mem *m = mem_of(s);
  ts_doc *d;

  if (m == NULL || idmap_reserve(&m->docs) ||
      grow((void **)&s->docs, &m->doc_cap, s->ndocs, sizeof(ts_doc)))
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", where);
  if (idmap_find(&m->docs, id, idlen) != SIZE_MAX)
    return say(msg, cap, TS_EFORMAT, "%s: duplicate document id \"%.*s\"", where, (int)idlen, id);
  d = &s->docs[s->ndocs];
  d->id = keep(s, id, idlen);
  d->title = keep(s, title, tlen);
  d->text = keep(s, text, xlen);
  if (d->id == NULL || d->title == NULL || d->text == NULL)
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", where);
  d->title_len = tlen;
  d->text_len = xlen;
  idmap_put(&m->docs, d->id, idlen, s->ndocs);
  s->ndocs++;
  return TS_OK;
}

static int add_query(ts_set *s, const char *id, size_t idlen, const char *text, size_t len,
                     const char *where, char *msg, size_t cap) {
  ts_mem *m = mem_of(s);
  ts_query *q;

  if (m == NULL || idmap_reserve(&m->queries) ||
      grow((void **)&s->queries, &m->query_cap, s->nqueries, sizeof(ts_query)))
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", where);
  if (idmap_find(&m->queries, id, idlen) != SIZE_MAX)
    return say(msg, cap, TS_EFORMAT, "%s: duplicate query id \"%.*s\"", where, (int)idlen, id);
  q = &s->queries[s->nqueries];
  q->id = keep(s, id, idlen);
  q->text = keep(s, text, len);
  if (q->id == NULL || q->text == NULL)
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", where);
  q->text_len = len;
  idmap_put(&m->queries, q->id, idlen, s->nqueries);
  s->nqueries++;
  return TS_OK;
}

static int add_qrel(ts_set *s, size_t q, size_t d, int grade, double gain) {
  ts_mem *m = mem_of(s);

  if (m == NULL || grow((void **)&s->qrels, &m->qrel_cap, s->nqrels, sizeof(ts_qrel)))
    return -1;
  s->qrels[s->nqrels++] = (ts_qrel){q, d, grade, gain};
  return 0;
}

/* ---- Small parsers
 * ------------------------------------------------------------------------------- */

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Trim blanks (and newlines) at both ends of [*p, *p + *n). */
static void trim(const char **p, size_t *n) {
  while (*n && (is_blank(**p) || **p == '\n')) {
    (*p)++;
    (*n)--;
  }
  while (*n && (is_blank((*p)[*n - 1]) || (*p)[*n - 1] == '\n'))
    (*n)--;
}

/* A SMART number ("001", " 12 ") as canonical decimal digits (no leading
 * zeros) into out[ID_DIGITS_MAX + 1]; returns its length, or 0 when p is
 * not a number of at most ID_DIGITS_MAX significant digits. */
static size_t canon_number(const char *p, size_t n, char *out) {
  size_t len = 0;

  trim(&p, &n);
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_digit(p[i]))
      return 0;
  while (n > 1 && *p == '0') {
    p++;
    n--;
  }
  if (n > ID_DIGITS_MAX)
    return 0;
  for (; len < n; len++)
    out[len] = p[len];
  out[len] = '\0';
  return len;
}

/* A decimal integer, optionally signed, within [-1e6, 1e6]. */
static int parse_int(const char *p, size_t n, int *out) {
  int neg = 0;
  long v = 0;

  trim(&p, &n);
  if (n && (*p == '-' || *p == '+')) {
    neg = *p == '-';
    p++;
    n--;
  }
  if (n == 0 || n > 7)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(p[i]))
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  *out = (int)(neg ? -v : v);
  return 0;
}

/* Split a line into at most `max` fields at runs of blanks (or at tabs only,
 * with tabs_only).  Returns the number of fields. */
static size_t split(const char *p, size_t n, int tabs_only, const char **f, size_t *fl,
                    size_t max) {
  size_t nf = 0, i = 0;

  while (i < n && nf < max) {
    size_t b;
    if (!tabs_only)
      while (i < n && is_blank(p[i]))
        i++;
    if (i == n)
      break;
    b = i;
    while (i < n && (tabs_only ? p[i] != '\t' : !is_blank(p[i])))
      i++;
    f[nf] = p + b;
    fl[nf] = i - b;
    nf++;
    if (tabs_only && i < n)
      i++; /* past the tab */
  }
  return nf;
}

/* The next line of [*pos, end): its start and length without "\r\n"; 0 at
 * the end. */
static int next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n) {
  const char *p, *nl;

  if (*pos >= len)
    return 0;
  p = buf + *pos;
  nl = memchr(p, '\n', len - *pos);
  *line = p;
  *n = nl ? (size_t)(nl - p) : len - *pos;
  *pos += *n + (nl != NULL);
  return 1;
}

/* ---- SMART
 * ---------------------------------------------------------------------------------------- */

/* The records of a SMART file, one callback each with its id and the
 * content of the wanted sections. */
typedef struct smart_rec {
  const char *file;
  size_t line;  /* of the record's .I */
  size_t index; /* 0-based position among the file's records */
  char id[ID_DIGITS_MAX + 1];
  size_t idlen;
  tbuf a, b; /* the sections in a_secs and in b_secs */
} smart_rec;

typedef int (*smart_fn)(ts_set *s, smart_rec *r, char *msg, size_t cap);

static int smart_scan(ts_set *s, const char *file, const char *text, size_t len, unsigned a_secs,
                      unsigned b_secs, smart_fn emit, char *msg, size_t cap) {
  smart_rec r;
  size_t pos = 0, lineno = 0, n;
  unsigned sec = 0; /* the current section's bit; 0 before the first marker */
  int open = 0, rc = TS_OK;
  const char *line;

  memset(&r, 0, sizeof(r));
  r.file = file;
  while (rc == TS_OK && next_line(text, len, &pos, &line, &n)) {
    lineno++;
    while (n && is_blank(line[n - 1]))
      n--;
    if (n >= 2 && line[0] == '.' && line[1] >= 'A' && line[1] <= 'Z' &&
        (n == 2 || is_blank(line[2]))) {
      if (line[1] == 'I') {
        if (open && (rc = emit(s, &r, msg, cap)))
          break;
        if (open)
          r.index++;
        r.idlen = canon_number(line + 2, n - 2, r.id);
        if (r.idlen == 0) {
          rc = say(msg, cap, TS_EFORMAT, "%s line %zu: \".I\" needs a record number (got \"%.*s\")",
                   file, lineno, (int)(n > 40 ? 40 : n), line);
          break;
        }
        r.line = lineno;
        r.a.len = r.b.len = 0;
        open = 1;
        sec = 0;
        continue;
      }
      if (!open) {
        rc = say(msg, cap, TS_EFORMAT, "%s line %zu: section \".%c\" before the first \".I\"", file,
                 lineno, line[1]);
        break;
      }
      sec = TS_SEC(line[1]);
      /* Text after the marker on its own line belongs to the section. */
      line += 2;
      n -= 2;
      trim(&line, &n);
      if (n == 0)
        continue;
    } else if (!open) {
      const char *t = line;
      size_t tn = n;
      trim(&t, &tn);
      if (tn == 0)
        continue;
      rc = say(msg, cap, TS_EFORMAT, "%s line %zu: text before the first \".I\"", file, lineno);
      break;
    }
    if (((sec & a_secs) && buf_join(&r.a, line, n)) || ((sec & b_secs) && buf_join(&r.b, line, n)))
      rc = say(msg, cap, TS_ENOMEM, "%s: out of memory", file);
  }
  if (rc == TS_OK && open)
    rc = emit(s, &r, msg, cap);
  free(r.a.p);
  free(r.b.p);
  return rc;
}

static int emit_doc(ts_set *s, smart_rec *r, char *msg, size_t cap) {
  const char *t = buf_str(&r->a), *x = buf_str(&r->b);
  size_t tn = r->a.len, xn = r->b.len;
  char where[300];

  trim(&t, &tn);
  trim(&x, &xn);
  snprintf(where, sizeof(where), "%s line %zu", r->file, r->line);
  return add_doc(s, r->id, r->idlen, t, tn, x, xn, where, msg, cap);
}

static int emit_query(ts_set *s, smart_rec *r, char *msg, size_t cap, int by_position) {
  const char *x = buf_str(&r->b);
  size_t xn = r->b.len;
  char where[300], pos[32];

  trim(&x, &xn);
  if (xn == 0) {
    s->queries_empty++;
    return TS_OK;
  }
  snprintf(where, sizeof(where), "%s line %zu", r->file, r->line);
  if (by_position) {
    int pn = snprintf(pos, sizeof(pos), "%zu", r->index + 1);
    return add_query(s, pos, (size_t)pn, x, xn, where, msg, cap);
  }
  return add_query(s, r->id, r->idlen, x, xn, where, msg, cap);
}

static int emit_query_by_id(ts_set *s, smart_rec *r, char *msg, size_t cap) {
  return emit_query(s, r, msg, cap, 0);
}

static int emit_query_by_position(ts_set *s, smart_rec *r, char *msg, size_t cap) {
  return emit_query(s, r, msg, cap, 1);
}

int ts_parse_smart_docs(ts_set *s, const char *file, const char *buf, size_t len,
                        unsigned title_secs, unsigned text_secs, char *msg, size_t msgcap) {
  return smart_scan(s, file, buf, len, title_secs, text_secs, emit_doc, msg, msgcap);
}

int ts_parse_smart_queries(ts_set *s, const char *file, const char *buf, size_t len,
                           unsigned text_secs, int by_position, char *msg, size_t msgcap) {
  return smart_scan(s, file, buf, len, 0, text_secs,
                    by_position ? emit_query_by_position : emit_query_by_id, msg, msgcap);
}

/* ---- Qrels
 * ---------------------------------------------------------------------------------------- */

/* Resolve one judgment; the SMART formats name records by number. */
static int judge(ts_set *s, int numeric, const char *q, size_t qn, const char *d, size_t dn,
                 int grade, double gain, const char *file, size_t lineno, char *msg, size_t cap) {
  char qid[ID_DIGITS_MAX + 1], did[ID_DIGITS_MAX + 1];
  size_t qi, di;

  if (numeric) {
    if ((qn = canon_number(q, qn, qid)) == 0 || (dn = canon_number(d, dn, did)) == 0)
      return say(msg, cap, TS_EFORMAT, "%s line %zu: query and document must be numbers", file,
                 lineno);
    q = qid;
    d = did;
  }
  s->qrel_lines++;
  qi = ts_find_query(s, q, qn);
  di = ts_find_doc(s, d, dn);
  if (qi == SIZE_MAX || di == SIZE_MAX) {
    s->qrels_unknown++;
    return TS_OK;
  }
  if (add_qrel(s, qi, di, grade, gain))
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", file);
  return TS_OK;
}

int ts_parse_qrels(ts_set *s, ts_qrels_format fmt, const char *file, const char *buf, size_t len,
                   char *msg, size_t msgcap) {
  size_t pos = 0, lineno = 0, n;
  const char *line;
  int rc = TS_OK;

  if (fmt < TS_QRELS_CRANFIELD || fmt > TS_QRELS_BEIR)
    return say(msg, msgcap, TS_EINVAL, "%s: unknown qrels format", file);
  while (rc == TS_OK && next_line(buf, len, &pos, &line, &n)) {
    const char *f[4];
    size_t fl[4], nf, need = fmt == TS_QRELS_PAIRS ? 2 : fmt == TS_QRELS_TREC ? 4 : 3;
    int grade = 1;

    lineno++;
    trim(&line, &n);
    if (n == 0)
      continue;
    nf = split(line, n, fmt == TS_QRELS_BEIR && memchr(line, '\t', n) != NULL, f, fl, 4);
    if (nf < need)
      return say(msg, msgcap, TS_EFORMAT, "%s line %zu: %zu fields, expected at least %zu", file,
                 lineno, nf, need);
    switch (fmt) {
    case TS_QRELS_CRANFIELD:
      if (parse_int(f[2], fl[2], &grade) || grade < -1 || grade == 0 || grade > 5)
        return say(msg, msgcap, TS_EFORMAT,
                   "%s line %zu: relevance code \"%.*s\" is not a Cleverdon code (1..5 or -1)",
                   file, lineno, (int)fl[2], f[2]);
      rc = judge(s, 1, f[0], fl[0], f[1], fl[1], grade,
                 grade >= 1 && grade <= 4 ? 5.0 - grade : 0.0, file, lineno, msg, msgcap);
      break;
    case TS_QRELS_PAIRS:
      rc = judge(s, 1, f[0], fl[0], f[1], fl[1], 1, 1.0, file, lineno, msg, msgcap);
      break;
    case TS_QRELS_TREC:
      if (parse_int(f[3], fl[3], &grade))
        return say(msg, msgcap, TS_EFORMAT, "%s line %zu: relevance \"%.*s\" is not an integer",
                   file, lineno, (int)fl[3], f[3]);
      rc = judge(s, 1, f[0], fl[0], f[2], fl[2], grade, grade > 0 ? grade : 0.0, file, lineno, msg,
                 msgcap);
      break;
    case TS_QRELS_BEIR:
      if (parse_int(f[2], fl[2], &grade)) {
        if (lineno == 1)
          continue; /* the header: "query-id corpus-id score" */
        return say(msg, msgcap, TS_EFORMAT, "%s line %zu: score \"%.*s\" is not an integer", file,
                   lineno, (int)fl[2], f[2]);
      }
      rc = judge(s, 0, f[0], fl[0], f[1], fl[1], grade, grade > 0 ? grade : 0.0, file, lineno, msg,
                 msgcap);
      break;
    }
  }
  return rc;
}

/* ---- BEIR
 * ----------------------------------------------------------------------------------------- */

/* Read one line (without its newline) of a plain or gzip'ed file into b.
 * Returns 1 with a line, 0 at the end, or a TS_E* code. */
static int gz_line(gzFile gz, tbuf *b, const char *path, size_t lineno, char *msg, size_t cap) {
  char chunk[1 << 16];

  b->len = 0;
  for (;;) {
    size_t n;
    int zerr;

    if (gzgets(gz, chunk, sizeof(chunk)) == NULL) {
      const char *zmsg = gzerror(gz, &zerr);
      if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return say(msg, cap, zerr == Z_ERRNO ? TS_EIO : TS_EFORMAT, "%s line %zu: %s", path, lineno,
                   zerr == Z_ERRNO ? strerror(errno) : zmsg);
      return b->len > 0;
    }
    n = strlen(chunk);
    if (b->len + n > LINE_MAX_BYTES)
      return say(msg, cap, TS_EFORMAT, "%s line %zu: longer than %zu bytes", path, lineno,
                 LINE_MAX_BYTES);
    if (buf_add(b, chunk, n))
      return say(msg, cap, TS_ENOMEM, "%s: out of memory", path);
    if (n && chunk[n - 1] == '\n') {
      b->p[--b->len] = '\0';
      return 1;
    }
  }
}

/* The string value of key k, or "" when it is absent or null; -1 when it is
 * something else.  An integer "_id" is spelled in decimal into num. */
static int json_text(json_t *o, const char *k, const char **s, size_t *n, char *num,
                     size_t numcap) {
  json_t *v = json_object_get(o, k);

  if (v == NULL || json_is_null(v)) {
    *s = "";
    *n = 0;
    return 0;
  }
  if (json_is_string(v)) {
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
  }
  if (num && json_is_integer(v)) {
    int len = snprintf(num, numcap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    *s = num;
    *n = (size_t)len;
    return 0;
  }
  return -1;
}

/* Read a JSON lines file of documents (corpus) or queries. */
static int read_jsonl(ts_set *s, const char *path, int docs, char *msg, size_t cap) {
  gzFile gz;
  tbuf line = {0};
  size_t lineno = 0;
  int rc;

  errno = 0;
  gz = gzopen(path, "rb");
  if (gz == NULL)
    return say(msg, cap, TS_EIO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
  gzbuffer(gz, 1u << 17);
  while ((rc = gz_line(gz, &line, path, lineno + 1, msg, cap)) == 1) {
    const char *id, *title = "", *text, *p = line.p;
    size_t idn, tn = 0, xn, n = line.len;
    char num[32], where[300];
    json_error_t jerr;
    json_t *o;

    lineno++;
    trim(&p, &n);
    if (n == 0)
      continue;
    o = json_loadb(p, n, 0, &jerr);
    if (o == NULL || !json_is_object(o)) {
      json_decref(o);
      rc = say(msg, cap, TS_EFORMAT, "%s line %zu: %s", path, lineno,
               o ? "not a JSON object" : jerr.text);
      break;
    }
    snprintf(where, sizeof(where), "%s line %zu", path, lineno);
    if (json_text(o, "_id", &id, &idn, num, sizeof(num)) || idn == 0 ||
        json_text(o, "text", &text, &xn, NULL, 0) ||
        (docs && json_text(o, "title", &title, &tn, NULL, 0)))
      rc =
          say(msg, cap, TS_EFORMAT, "%s: needs a non-empty \"_id\" and string \"text\"%s (or null)",
              where, docs ? " and \"title\"" : "");
    else if (docs)
      rc = add_doc(s, id, idn, title, tn, text, xn, where, msg, cap);
    else
      rc = add_query(s, id, idn, text, xn, where, msg, cap);
    json_decref(o);
    if (rc)
      break;
  }
  free(line.p);
  gzclose(gz);
  return rc < 0 ? rc : TS_OK;
}

/* Read a whole (small) file into b. */
static int slurp(const char *path, tbuf *b, char *msg, size_t cap) {
  FILE *f = fopen(path, "rb");
  char chunk[1 << 16];
  size_t n;

  if (f == NULL)
    return say(msg, cap, TS_EIO, "%s: %s", path, strerror(errno));
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (b->len + n > MEMBER_MAX_BYTES || buf_add(b, chunk, n)) {
      fclose(f);
      return say(msg, cap, b->len + n > MEMBER_MAX_BYTES ? TS_EFORMAT : TS_ENOMEM,
                 "%s: too large or out of memory", path);
    }
  }
  if (ferror(f)) {
    fclose(f);
    return say(msg, cap, TS_EIO, "%s: %s", path, strerror(errno));
  }
  fclose(f);
  return TS_OK;
}

/* Keep only the queries that the qrels judge, renumbering the judgments. */
static int keep_judged(ts_set *s, char *msg, size_t cap) {
  size_t *to, n = 0;
  idmap *m;

  if (s->mem == NULL)
    return TS_OK;
  m = &s->mem->queries;
  to = malloc((s->nqueries ? s->nqueries : 1) * sizeof(size_t));
  if (to == NULL)
    return say(msg, cap, TS_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->nqueries; i++)
    to[i] = SIZE_MAX;
  for (size_t i = 0; i < s->nqrels; i++)
    to[s->qrels[i].query] = 0;
  idmap_clear(m);
  for (size_t i = 0; i < s->nqueries; i++)
    if (to[i] == 0) {
      to[i] = n;
      s->queries[n] = s->queries[i];
      idmap_put(m, s->queries[n].id, strlen(s->queries[n].id), n);
      n++;
    }
  for (size_t i = 0; i < s->nqrels; i++)
    s->qrels[i].query = to[s->qrels[i].query];
  s->nqueries = n;
  free(to);
  return TS_OK;
}

static const char *first_existing(const char *dir, const char *const *names, char *path,
                                  size_t cap) {
  for (; *names; names++) {
    snprintf(path, cap, "%s/%s", dir, *names);
    if (access(path, R_OK) == 0)
      return path;
  }
  snprintf(path, cap, "%s/%s", dir, names[-1]);
  return NULL;
}

int ts_read_beir(const char *dir, ts_set *s, char *msg, size_t msgcap) {
  static const char *const corpus[] = {"corpus.jsonl.gz", "corpus.jsonl", NULL};
  static const char *const queries[] = {"queries.jsonl", "queries.jsonl.gz", NULL};
  char cpath[4096], qpath[4096], rpath[4096];
  const char *base;
  size_t dl = strlen(dir);
  tbuf qrels = {0};
  int rc;

  ts_set_init(s);
  while (dl > 1 && dir[dl - 1] == '/')
    dl--;
  base = dir + dl;
  while (base > dir && base[-1] != '/')
    base--;
  snprintf(s->name, sizeof(s->name), "%.*s", (int)(dir + dl - base), base);
  if (first_existing(dir, corpus, cpath, sizeof(cpath)) == NULL)
    return say(msg, msgcap, TS_EIO, "%s: no corpus.jsonl.gz or corpus.jsonl", dir);
  if (first_existing(dir, queries, qpath, sizeof(qpath)) == NULL)
    return say(msg, msgcap, TS_EIO, "%s: no queries.jsonl", dir);
  snprintf(rpath, sizeof(rpath), "%s/qrels/test.tsv", dir);
  if ((rc = read_jsonl(s, cpath, 1, msg, msgcap)) || (rc = read_jsonl(s, qpath, 0, msg, msgcap)) ||
      (rc = slurp(rpath, &qrels, msg, msgcap)) ||
      (rc = ts_parse_qrels(s, TS_QRELS_BEIR, rpath, buf_str(&qrels), qrels.len, msg, msgcap)) ||
      (rc = keep_judged(s, msg, msgcap)))
    goto fail;
  free(qrels.p);
  snprintf(s->about, sizeof(s->about),
           "BEIR %s: %s (title / text), %s (test queries), qrels/test.tsv (gain = score)", s->name,
           cpath + strlen(dir) + 1, qpath + strlen(dir) + 1);
  return TS_OK;

fail:
  free(qrels.p);
  ts_set_free(s);
  return rc;
}

/* ---- SMART archives
 * ------------------------------------------------------------------------------ */

typedef struct smart_spec {
  const char *name, *archive;
  const char *docs, *queries, *qrels; /* member names */
  unsigned title_secs, text_secs;
  int by_position; /* Cranfield numbers its queries by position */
  ts_qrels_format qrels_fmt;
  const char *about;
} smart_spec;

static const smart_spec smart_sets[] = {
    {"cranfield", "cran.tar.gz", "cran.all.1400", "cran.qry", "cranqrel", TS_SEC('T'), TS_SEC('W'),
     1, TS_QRELS_CRANFIELD,
     "title .T, text .W; queries .T + .W, numbered by position; gain = 5 - Cleverdon code "
     "(1..4), 0 for -1 and 5"},
    {"cisi", "cisi.tar.gz", "CISI.ALL", "CISI.QRY", "CISI.REL", TS_SEC('T'), TS_SEC('W'), 0,
     TS_QRELS_PAIRS, "title .T, text .W; queries .T + .W; listed pairs gain 1"},
    {"medline", "med.tar.gz", "MED.ALL", "MED.QRY", "MED.REL", 0, TS_SEC('W'), 0, TS_QRELS_TREC,
     "no title, text .W; queries .T + .W; gain = rel"},
    {"cacm", "cacm.tar.gz", "cacm.all", "query.text", "qrels.text", TS_SEC('T'),
     TS_SEC('W') | TS_SEC('K'), 0, TS_QRELS_PAIRS,
     "title .T, text .W + .K; queries .T + .W; listed pairs gain 1"},
};

const char *const ts_smart_names[] = {"cranfield", "cisi", "medline", "cacm", NULL};

/* Read the members named in `want` (n of them) from a tar.gz archive. */
static int read_members(const char *path, const char *const *want, tbuf *out, size_t n, char *msg,
                        size_t cap) {
  struct archive *a = archive_read_new();
  struct archive_entry *e;
  int r, rc = TS_OK;

  if (a == NULL)
    return say(msg, cap, TS_ENOMEM, "%s: out of memory", path);
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
    rc = say(msg, cap, access(path, R_OK) ? TS_EIO : TS_EFORMAT, "%s: %s", path,
             archive_error_string(a));
    goto out;
  }
  while (rc == TS_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e), *base;
    size_t i = n;

    if (name && archive_entry_filetype(e) == AE_IFREG) {
      base = strrchr(name, '/');
      base = base ? base + 1 : name;
      for (i = 0; i < n && strcasecmp(base, want[i]) != 0; i++)
        ;
    }
    if (i == n) {
      archive_read_data_skip(a);
      continue;
    }
    out[i].len = 0;
    for (;;) {
      char chunk[1 << 16];
      la_ssize_t got = archive_read_data(a, chunk, sizeof(chunk));
      if (got == 0)
        break;
      if (got < 0) {
        rc = say(msg, cap, TS_EFORMAT, "%s: %s: %s", path, want[i], archive_error_string(a));
        break;
      }
      if (out[i].len + (size_t)got > MEMBER_MAX_BYTES) {
        rc = say(msg, cap, TS_EFORMAT, "%s: %s is larger than %zu bytes", path, want[i],
                 MEMBER_MAX_BYTES);
        break;
      }
      if (buf_add(&out[i], chunk, (size_t)got)) {
        rc = say(msg, cap, TS_ENOMEM, "%s: out of memory", path);
        break;
      }
    }
    if (rc == TS_OK && out[i].p == NULL && buf_add(&out[i], "", 0))
      rc = say(msg, cap, TS_ENOMEM, "%s: out of memory", path); /* an empty member was found */
  }
  if (rc == TS_OK && r != ARCHIVE_EOF)
    rc = say(msg, cap, TS_EFORMAT, "%s: %s", path, archive_error_string(a));
  for (size_t i = 0; rc == TS_OK && i < n; i++)
    if (out[i].p == NULL)
      rc = say(msg, cap, TS_EFORMAT, "%s: no member named %s", path, want[i]);
out:
  archive_read_free(a);
  return rc;
}

int ts_read_smart(const char *dir, const char *name, ts_set *s, char *msg, size_t msgcap) {
  const smart_spec *sp = NULL;
  const char *want[3];
  char path[4096], f[3][4400];
  tbuf m[3];
  int rc;

  ts_set_init(s);
  for (size_t i = 0; i < sizeof(smart_sets) / sizeof(smart_sets[0]); i++)
    if (strcmp(smart_sets[i].name, name) == 0)
      sp = &smart_sets[i];
  if (sp == NULL)
    return say(msg, msgcap, TS_EINVAL, "unknown SMART set '%s' (cranfield, cisi, medline, cacm)",
               name);
  snprintf(s->name, sizeof(s->name), "%s", sp->name);
  snprintf(path, sizeof(path), "%s/%s", dir, sp->archive);
  want[0] = sp->docs;
  want[1] = sp->queries;
  want[2] = sp->qrels;
  memset(m, 0, sizeof(m));
  for (int i = 0; i < 3; i++)
    snprintf(f[i], sizeof(f[i]), "%s:%s", path, want[i]);
  if ((rc = read_members(path, want, m, 3, msg, msgcap)) ||
      (rc = ts_parse_smart_docs(s, f[0], m[0].p, m[0].len, sp->title_secs, sp->text_secs, msg,
                                msgcap)) ||
      (rc = ts_parse_smart_queries(s, f[1], m[1].p, m[1].len, TS_SEC('T') | TS_SEC('W'),
                                   sp->by_position, msg, msgcap)) ||
      (rc = ts_parse_qrels(s, sp->qrels_fmt, f[2], m[2].p, m[2].len, msg, msgcap)))
    ts_set_free(s);
  else
    snprintf(s->about, sizeof(s->about), "SMART %s: %s (%s, %s, %s): %s", sp->name, sp->archive,
             sp->docs, sp->queries, sp->qrels, sp->about);
  for (int i = 0; i < 3; i++)
    free(m[i].p);
  return rc;
}

/* ---- Synthetic corpus
 * ------------------------------------------------------------------------------ */

struct ts_synth {
  size_t n;
  uint64_t seed;
  double *cdf; /* TS_SYNTH_VOCAB cumulative Zipf probabilities, cdf[last] = 1 */
};

#define QUERY_MIN_RANK 100

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* splitmix64: one stream per document or query, keyed by (seed, salt, i). */
static uint64_t next64(uint64_t *st) {
  *st += 0x9e3779b97f4a7c15ull;
  return mix64(*st - 0x9e3779b97f4a7c15ull);
}

static double uniform(uint64_t *st) {
  return (double)(next64(st) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t below(uint64_t *st, size_t lo, size_t hi) { /* uniform in [lo, hi] */
  return lo + (size_t)(next64(st) % (uint64_t)(hi - lo + 1));
}

static size_t zipf_rank(const ts_synth *g, double u) {
  size_t lo = 0, hi = TS_SYNTH_VOCAB - 1;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (g->cdf[mid] > u)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/* Word r: r + 20 in base 20, one syllable a digit, most significant first. */
static size_t spell(size_t r, char *out) {
  static const char syl[] = "babodadofafogagokakolalomamonanopaporaro";
  char digits[16];
  size_t nd = 0, len = 0;

  for (size_t v = r + 20; v; v /= 20)
    digits[nd++] = (char)(v % 20);
  while (nd--) {
    out[len++] = syl[2 * (size_t)digits[nd]];
    out[len++] = syl[2 * (size_t)digits[nd] + 1];
  }
  return len;
}

static size_t words(const ts_synth *g, uint64_t *st, size_t count, double lo, char *out) {
  size_t len = 0;

  for (size_t w = 0; w < count; w++) {
    if (w)
      out[len++] = ' ';
    len += spell(zipf_rank(g, lo + uniform(st) * (1.0 - lo)), out + len);
  }
  out[len] = '\0';
  return len;
}

int ts_synth_new(size_t n, uint64_t seed, ts_synth **out) {
  ts_synth *g = calloc(1, sizeof(*g));
  double sum = 0;

  *out = NULL;
  if (g == NULL || (g->cdf = malloc(TS_SYNTH_VOCAB * sizeof(double))) == NULL) {
    free(g);
    return TS_ENOMEM;
  }
  g->n = n;
  g->seed = seed;
  for (size_t r = 0; r < TS_SYNTH_VOCAB; r++) {
    sum += 1.0 / pow((double)(r + 1), TS_SYNTH_ZIPF);
    g->cdf[r] = sum;
  }
  for (size_t r = 0; r < TS_SYNTH_VOCAB; r++)
    g->cdf[r] /= sum;
  g->cdf[TS_SYNTH_VOCAB - 1] = 1.0;
  *out = g;
  return TS_OK;
}

void ts_synth_free(ts_synth *g) {
  if (g == NULL)
    return;
  free(g->cdf);
  free(g);
}

void ts_synth_doc(const ts_synth *g, size_t i, char *title, size_t *title_len, char *text,
                  size_t *text_len) {
  uint64_t st = mix64(g->seed ^ mix64(0x646f63ull)) ^ mix64((uint64_t)i);

  *title_len = words(g, &st, below(&st, 4, 8), 0.0, title);
  *text_len = words(g, &st, below(&st, 50, 300), 0.0, text);
}

size_t ts_synth_query(const ts_synth *g, size_t j, char *buf) {
  uint64_t st = mix64(g->seed ^ mix64(0x717279ull)) ^ mix64((uint64_t)j);

  return words(g, &st, below(&st, 2, 5), g->cdf[QUERY_MIN_RANK - 1], buf);
}

/* ---- Measures ----------------------------------------------------------------------------- */

static int gain_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

int ts_measure(const double *ranked, size_t n, const double *judged, size_t nj, ts_measures *sum) {
  double *ideal, idcg = 0, dcg = 0, ap = 0;
  size_t nrel = 0, found = 0, f100 = 0;

  for (size_t j = 0; j < nj; j++)
    nrel += judged[j] > 0;
  if (nrel == 0)
    return 0;
  if ((ideal = malloc(nj * sizeof(*ideal))) == NULL)
    return -1;
  memcpy(ideal, judged, nj * sizeof(*ideal));
  qsort(ideal, nj, sizeof(*ideal), gain_desc);
  for (size_t r = 0; r < nj && r < 10 && ideal[r] > 0; r++)
    idcg += ideal[r] / log2((double)r + 2.0);
  free(ideal);
  for (size_t r = 0; r < n && r < 1000; r++) {
    if (r < 10)
      dcg += ranked[r] / log2((double)r + 2.0);
    if (ranked[r] > 0) {
      found++;
      ap += (double)found / (double)(r + 1);
      f100 += r < 100;
    }
  }
  sum->ndcg10 += idcg > 0 ? dcg / idcg : 0;
  sum->map += ap / (double)nrel;
  sum->r100 += (double)f100 / (double)nrel;
  sum->r1000 += (double)found / (double)nrel;
  sum->evaluated++;
  return 1;
}
