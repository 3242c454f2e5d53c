/*
 * analyzer.c: text to index terms (the pipeline is specified in analyzer.h).
 *
 * The input is scanned once after validation, by two cooperating paths:
 *
 *   - The ASCII fast path handles the common case, a word made only of
 *     ASCII letters and digits bounded by ASCII separators: it lowercases
 *     through a table straight into the token buffer, with no Unicode work
 *     at all (for ASCII, NFKC + case folding is exactly lowercasing).
 *
 *   - The Unicode path handles a "region": from the start of the word in
 *     which the first non-ASCII byte appears up to the next ASCII hard
 *     separator (an ASCII byte that is neither a letter, a digit nor an
 *     apostrophe).  The region is normalised by utf8proc (decompose with
 *     compatibility mappings and case folding, then recompose) into a
 *     code-point buffer kept in the analyzer, and the code points are fed to
 *     a small token state machine (feed()).
 *
 * Why cutting there is exact: normalisation only interacts across adjacent
 * characters when the second one is a non-starter or composes backwards
 * with the first.  No ASCII character does either (all have combining class
 * 0 and none is the second element of a canonical composition), so text can
 * be normalised piecewise with cuts before any ASCII byte.  The same holds
 * before a CJK unified ideograph or a precomposed Hangul syllable, which is
 * how a long region with no ASCII (a page of Chinese) is normalised in
 * chunks of about CHUNK bytes instead of all at once.  The state machine
 * carries tokens across chunks, so chunking never changes the terms.
 *
 * The token state machine (struct fields kind, apos, tok, cjk*) is idle
 * (KIND_NONE, no apostrophe pending) whenever the fast path runs.
 *
 * Emitting a word: drop it when longer than VS__TERM_MAX bytes, then look
 * the folded word up in a direct-mapped cache (1 << CACHE_BITS entries of up
 * to CACHE_KEY bytes) that remembers whether it is a stopword and what it
 * stems to.  Natural-language term frequencies are Zipfian, so most words
 * hit the cache and the Snowball stemmer, by far the most expensive step,
 * runs for a small fraction of them.  On a miss the stopword hash table and
 * then libstemmer decide, and the entry is overwritten.
 *
 * Decisions the header leaves open:
 *   - Possessives are stripped for every language, not only English: a
 *     trailing "'s" can only otherwise become a lone "s" term, which carries
 *     nothing in any language.  The apostrophe may be U+0027 or U+2019
 *     (full-width U+FF07 folds to U+0027); the "s" must be followed by a
 *     non-word character or the end of the text.
 *   - Marks continue any word (letters or digits), are ignored inside a
 *     CJK run, and split elsewhere.  Format characters (Cf: soft hyphen,
 *     zero-width joiners, bidi marks) are ignored without splitting, as
 *     Unicode word segmentation does, except U+200B ZERO WIDTH SPACE, which
 *     marks a word boundary and splits.
 *   - CJK: ideographs (U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF,
 *     U+20000-2FFFF, and the marks 々〆〇), hiragana, katakana (including
 *     U+31F0-31FF; half-width forms become full-width under NFKC) and
 *     Hangul syllables form one kind of run, so "東京タワー" gives "東京",
 *     "京タ", "タワ", "ワー" as Lucene's CJKBigramFilter does.  Only letters
 *     count: punctuation in those blocks ("・") splits.
 *   - Stopwords are matched before stemming; stems longer than
 *     VS__TERM_MAX bytes (libstemmer never produces them) or empty are
 *     dropped too.
 */
#include "text/analyzer.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/stopwords.h"

#define OPTS (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD)

#define CHUNK 4096                  /* region bytes normalised at a time, when cuttable */
#define CPS_INIT 1024               /* initial code-point buffer */
#define CPS_KEEP 65536              /* a larger buffer is freed at the end of a call */
#define CACHE_BITS 14               /* 16384 entries of 64 bytes: 1 MiB */
#define CACHE_KEY 30                /* longest word (and stem) the cache holds */
#define STOP_BITS 8                 /* stopword table: 256 slots for up to ~100 words */
#define TOK_CAP (VS__TERM_MAX + 16) /* a term, then 8 zero bytes for hash() */

enum { KIND_NONE, KIND_WORD, KIND_CJK };
enum { C_SEP, C_WORD, C_MARK, C_CJK, C_APOS, C_IGNORE };

typedef struct centry {
  uint8_t klen; /* 0: empty */
  uint8_t slen;
  uint8_t stop;
  uint8_t pad;
  char key[CACHE_KEY];
  char stem[CACHE_KEY];
} centry;

typedef struct stopslot {
  const char *word; /* NULL: empty */
  size_t len;
} stopslot;

struct vs__analyzer {
  struct sb_stemmer *stemmer; /* NULL for "none" */
  centry *cache;              /* NULL without a stemmer */
  size_t nstop, stopmin, stopmax;
  stopslot stop[1u << STOP_BITS];

  utf8proc_int32_t *cps; /* normalised code points of the current chunk */
  size_t cpscap;

  /* Per call. */
  vs__term_fn fn;
  void *ctx;

  /* Token state machine. */
  int kind;
  int apos; /* 1: a word ended at an apostrophe; 2: and an "s" followed */
  size_t toklen;
  int cjkn; /* CJK characters seen in the run, saturating at 2 */
  utf8proc_int32_t cjkprev;
  char tok[TOK_CAP];
};

/* ASCII letters and digits, lowercased; 0 for every other byte. */
static const uint8_t lower_word[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6',
    ['7'] = '7', ['8'] = '8', ['9'] = '9', ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd',
    ['E'] = 'e', ['F'] = 'f', ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k',
    ['L'] = 'l', ['M'] = 'm', ['N'] = 'n', ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r',
    ['S'] = 's', ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x', ['Y'] = 'y',
    ['Z'] = 'z', ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f',
    ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l', ['m'] = 'm',
    ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r', ['s'] = 's', ['t'] = 't',
    ['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y', ['z'] = 'z',
};

/* An ASCII byte that ends a Unicode region: not a letter, digit or "'". */
static int hard_sep(uint8_t c) {
  return c < 0x80 && !lower_word[c] && c != '\'';
}

/* Whether p[0..n) is well-formed UTF-8: shortest forms only, no surrogates,
 * nothing above U+10FFFF (RFC 3629).  Eight ASCII bytes at a time. */
static int utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;

  while (i < n) {
    uint8_t c = p[i];

    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080u) == 0) {
        i += 8;
        continue;
      }
    }
    if (c < 0x80) {
      i++;
    } else if (c < 0xC2) { /* continuation byte, or overlong 2-byte lead */
      return 0;
    } else if (c < 0xE0) {
      if (n - i < 2 || (p[i + 1] & 0xC0) != 0x80)
        return 0;
      i += 2;
    } else if (c < 0xF0) {
      if (n - i < 3 || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80)
        return 0;
      if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0))
        return 0; /* overlong, or a surrogate */
      i += 3;
    } else if (c < 0xF5) {
      if (n - i < 4 || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80 ||
          (p[i + 3] & 0xC0) != 0x80)
        return 0;
      if ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90))
        return 0; /* overlong, or above U+10FFFF */
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

/* A hash of s[0..n); s[n..n+8) must be zero bytes, so whole 8-byte words
 * can be read (the token buffer and stopword copies are padded so). */
static uint32_t hash(const char *s, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15u ^ n;

  for (size_t i = 0; i < n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDu;
    h ^= h >> 32;
  }
  return (uint32_t)h;
}

static int is_stop(const vs__analyzer *a, const char *w, size_t n, uint32_t h) {
  uint32_t mask = (1u << STOP_BITS) - 1;

  if (n < a->stopmin || n > a->stopmax)
    return 0;
  for (uint32_t i = (h >> 16) & mask;; i = (i + 1) & mask) {
    const stopslot *s = &a->stop[i];
    if (s->word == NULL)
      return 0;
    if (s->len == n && memcmp(s->word, w, n) == 0)
      return 1;
  }
}

static int build_stop(vs__analyzer *a, const char *language) {
  const char *const *words = vs__stopwords(language, &a->nstop);
  uint32_t mask = (1u << STOP_BITS) - 1;

  if (a->nstop > (mask + 1) / 2)
    return -1; /* keep probes short; no list is that long */
  a->stopmin = SIZE_MAX;
  for (size_t k = 0; k < a->nstop; k++) {
    char buf[64 + 8] = {0};
    size_t n = strlen(words[k]);
    uint32_t i;

    if (n > 64)
      return -1;
    memcpy(buf, words[k], n);
    for (i = (hash(buf, n) >> 16) & mask; a->stop[i].word; i = (i + 1) & mask)
      ;
    a->stop[i] = (stopslot){words[k], n};
    a->stopmin = n < a->stopmin ? n : a->stopmin;
    a->stopmax = n > a->stopmax ? n : a->stopmax;
  }
  return 0;
}

vs__analyzer *vs__analyzer_new(const char *language) {
  vs__analyzer *a = calloc(1, sizeof(*a));

  if (a == NULL)
    goto fail;
  if (strcmp(language, "none") != 0) {
    a->stemmer = sb_stemmer_new(language, "UTF_8");
    if (a->stemmer == NULL)
      goto fail_a; /* unknown language, or out of memory */
    a->cache = calloc((size_t)1 << CACHE_BITS, sizeof(centry));
    if (a->cache == NULL)
      goto fail_stemmer;
  }
  if (build_stop(a, language))
    goto fail_cache;
  return a;

fail_cache:
  free(a->cache);
fail_stemmer:
  if (a->stemmer)
    sb_stemmer_delete(a->stemmer);
fail_a:
  free(a);
fail:
  return NULL;
}

void vs__analyzer_free(vs__analyzer *a) {
  if (a == NULL)
    return;
  if (a->stemmer)
    sb_stemmer_delete(a->stemmer);
  free(a->cache);
  free(a->cps);
  free(a);
}

/* Emit the word in a->tok[0..n): length limit, stopwords, stemming. */
static int emit_word(vs__analyzer *a, size_t n) {
  const sb_symbol *s;
  centry *e = NULL;
  uint32_t h;
  size_t sn;
  int stop;

  if (n > VS__TERM_MAX)
    return 0;
  if (a->stemmer == NULL && a->nstop == 0)
    return a->fn(a->ctx, a->tok, n);
  memset(a->tok + n, 0, 8);
  h = hash(a->tok, n);
  if (a->cache && n <= CACHE_KEY) {
    e = &a->cache[h & ((1u << CACHE_BITS) - 1)];
    if (e->klen == n && memcmp(e->key, a->tok, n) == 0) /* an empty stem is dropped too */
      return e->stop || e->slen == 0 ? 0 : a->fn(a->ctx, e->stem, e->slen);
  }
  stop = is_stop(a, a->tok, n, h);
  if (stop || a->stemmer == NULL) {
    s = (const sb_symbol *)a->tok;
    sn = n;
  } else {
    s = sb_stemmer_stem(a->stemmer, (const sb_symbol *)a->tok, (int)n);
    if (s == NULL)
      return VS__ANALYZE_ENOMEM;
    sn = (size_t)sb_stemmer_length(a->stemmer);
  }
  if (e && sn <= CACHE_KEY) {
    e->klen = (uint8_t)n;
    memcpy(e->key, a->tok, n);
    e->stop = (uint8_t)stop;
    e->slen = (uint8_t)sn;
    memcpy(e->stem, s, sn);
  }
  if (stop || sn == 0 || sn > VS__TERM_MAX)
    return 0;
  return a->fn(a->ctx, (const char *)s, sn);
}

/* Emit one CJK character (c2 < 0) or the bigram c1 c2. */
static int emit_cjk(vs__analyzer *a, utf8proc_int32_t c1, utf8proc_int32_t c2) {
  utf8proc_uint8_t b[8];
  utf8proc_ssize_t n = utf8proc_encode_char(c1, b);

  if (c2 >= 0)
    n += utf8proc_encode_char(c2, b + n);
  return a->fn(a->ctx, (const char *)b, (size_t)n);
}

/* End the current token, if any. */
static int flush(vs__analyzer *a) {
  int kind = a->kind;

  a->kind = KIND_NONE;
  if (kind == KIND_WORD)
    return emit_word(a, a->toklen);
  if (kind == KIND_CJK && a->cjkn == 1)
    return emit_cjk(a, a->cjkprev, -1);
  return 0;
}

static int is_cjk(utf8proc_int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF) ||
         (c >= 0x20000 && c <= 0x2FFFF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x31F0 && c <= 0x31FF) || (c >= 0x3005 && c <= 0x3007);
}

static int classify(utf8proc_int32_t c) {
  utf8proc_category_t cat;

  if (c < 0x80)
    return lower_word[c] ? C_WORD : c == '\'' ? C_APOS : C_SEP;
  if (c == 0x2019)
    return C_APOS;
  cat = utf8proc_category(c);
  switch (cat) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_NL:
    return is_cjk(c) ? C_CJK : C_WORD;
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NO:
    return C_WORD;
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_ME:
    return C_MARK;
  case UTF8PROC_CATEGORY_CF:
    return c == 0x200B ? C_SEP : C_IGNORE;
  default:
    return C_SEP;
  }
}

/* Append c to the current word; past VS__TERM_MAX bytes only count. */
static void append(vs__analyzer *a, utf8proc_int32_t c) {
  if (a->toklen + 4 <= VS__TERM_MAX) {
    a->toklen += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)a->tok + a->toklen);
  } else {
    utf8proc_uint8_t b[4];
    utf8proc_ssize_t n = utf8proc_encode_char(c, b);
    if (a->toklen + (size_t)n <= VS__TERM_MAX)
      memcpy(a->tok + a->toklen, b, (size_t)n);
    a->toklen += (size_t)n;
  }
}

/* The token state machine: one normalised code point. */
static int feed(vs__analyzer *a, utf8proc_int32_t c) {
  int cls = classify(c), rc;

  if (cls == C_IGNORE)
    return 0;
  if (a->apos == 1) { /* "word'" */
    a->apos = 0;
    if (c == 's') {
      a->apos = 2;
      return 0;
    }
  } else if (a->apos == 2) { /* "word's": the s is a possessive unless a word goes on */
    a->apos = 0;
    if (cls == C_WORD || cls == C_MARK) {
      a->kind = KIND_WORD;
      a->toklen = 0;
      append(a, 's');
    }
  }
  switch (cls) {
  case C_WORD:
    if (a->kind != KIND_WORD) {
      if ((rc = flush(a)) != 0)
        return rc;
      a->kind = KIND_WORD;
      a->toklen = 0;
    }
    append(a, c);
    return 0;
  case C_MARK:
    if (a->kind == KIND_WORD)
      append(a, c);
    return 0; /* ignored in a CJK run, a separator elsewhere (nothing to end) */
  case C_CJK:
    if (a->kind != KIND_CJK) {
      if ((rc = flush(a)) != 0)
        return rc;
      a->kind = KIND_CJK;
      a->cjkn = 0;
    }
    rc = a->cjkn ? emit_cjk(a, a->cjkprev, c) : 0;
    a->cjkprev = c;
    a->cjkn = a->cjkn ? 2 : 1;
    return rc;
  case C_APOS: {
    int word = a->kind == KIND_WORD; /* possibly "word's" */
    rc = flush(a);
    a->apos = word;
    return rc;
  }
  default:
    return flush(a);
  }
}

/* The end of a region: the next byte is a separator, or the text ends. */
static int finish(vs__analyzer *a) {
  a->apos = 0; /* a pending "'s" was a possessive */
  return flush(a);
}

/* Where to end the chunk that starts at s in the region [s, e): e when the
 * rest is short, else the first cut at or after s + CHUNK where
 * normalisation may restart (before an ASCII byte, a CJK unified ideograph
 * or a Hangul syllable: see the file comment), else e. */
static size_t chunk_end(const uint8_t *p, size_t s, size_t e) {
  size_t i = s + CHUNK;

  if (e - s <= CHUNK)
    return e;
  while (i < e && (p[i] & 0xC0) == 0x80)
    i++;
  while (i < e) {
    uint8_t c = p[i];
    if (c < 0x80)
      return i;
    if (c >= 0xE0 && c < 0xF0) {
      uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[i + 1] & 0x3F) << 6) |
                    (uint32_t)(p[i + 2] & 0x3F);
      if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
          (cp >= 0xAC00 && cp <= 0xD7A3))
        return i;
      i += 3;
    } else {
      i += c < 0xE0 ? 2 : 4;
    }
  }
  return e;
}

/* NFKC + case folding of p[0..n) into a->cps; the code-point count, or a
 * negative VS__ANALYZE_* status. */
static utf8proc_ssize_t normalize(vs__analyzer *a, const uint8_t *p, size_t n) {
  utf8proc_ssize_t r;

  for (;;) {
    r = utf8proc_decompose(p, (utf8proc_ssize_t)n, a->cps, (utf8proc_ssize_t)a->cpscap, OPTS);
    if (r < 0)
      return r == UTF8PROC_ERROR_NOMEM ? VS__ANALYZE_ENOMEM : VS__ANALYZE_EUTF8;
    if ((size_t)r <= a->cpscap && a->cps)
      break;
    {
      size_t cap = a->cpscap ? a->cpscap : CPS_INIT;
      utf8proc_int32_t *cps;

      while (cap < (size_t)r)
        cap *= 2;
      cps = realloc(a->cps, cap * sizeof(*cps));
      if (cps == NULL)
        return VS__ANALYZE_ENOMEM;
      a->cps = cps;
      a->cpscap = cap;
    }
  }
  r = utf8proc_normalize_utf32(a->cps, r, OPTS);
  return r < 0 ? VS__ANALYZE_EUTF8 : r;
}

/* The Unicode path: the region from s to the next hard separator, through
 * normalisation and the state machine.  *next gets the region's end. */
static int slow(vs__analyzer *a, const uint8_t *p, size_t s, size_t len, size_t *next) {
  size_t e = s;
  int rc;

  while (e < len && !hard_sep(p[e]))
    e++;
  *next = e;
  while (s < e) {
    size_t ce = chunk_end(p, s, e);
    utf8proc_ssize_t n = normalize(a, p + s, ce - s);

    if (n < 0)
      return (int)n;
    for (utf8proc_ssize_t k = 0; k < n; k++)
      if ((rc = feed(a, a->cps[k])) != 0)
        return rc;
    s = ce;
  }
  return finish(a);
}

/* The ASCII fast path, with hand-offs to slow() (see the file comment). */
static int scan(vs__analyzer *a, const uint8_t *p, size_t len) {
  size_t i = 0;
  int rc;

  while (i < len) {
    size_t j, n;

    if (p[i] >= 0x80) {
      if ((rc = slow(a, p, i, len, &i)) != 0)
        return rc;
      continue;
    }
    if (!lower_word[p[i]]) {
      i++;
      continue;
    }
    /* An ASCII word: lowercase it into tok as far as a term can go. */
    n = len - i < VS__TERM_MAX + 1 ? len - i : VS__TERM_MAX + 1;
    for (j = 0; j < n && lower_word[p[i + j]]; j++)
      a->tok[j] = (char)lower_word[p[i + j]];
    for (j += i; j < len && lower_word[p[j]]; j++)
      ;
    if (j < len && p[j] >= 0x80) { /* the word goes on in Unicode */
      if ((rc = slow(a, p, i, len, &i)) != 0)
        return rc;
      continue;
    }
    if ((rc = emit_word(a, j - i)) != 0)
      return rc;
    i = j;
    /* "'s": skip it when a separator or the end follows; the "s" of "'sx"
     * starts a word; a non-ASCII byte after it leaves the choice to feed(). */
    if (j + 1 < len && p[j] == '\'' && (p[j + 1] | 0x20) == 's') {
      if (j + 2 == len || (p[j + 2] < 0x80 && !lower_word[p[j + 2]])) {
        i = j + 2;
      } else if (p[j + 2] >= 0x80) {
        a->apos = 1;
        if ((rc = slow(a, p, j + 1, len, &i)) != 0)
          return rc;
      }
    }
  }
  return 0;
}

int vs__analyze(vs__analyzer *a, const char *text, size_t len, vs__term_fn fn, void *ctx) {
  int rc;

  if (len == 0)
    return VS__ANALYZE_OK;
  if (!utf8_valid((const uint8_t *)text, len))
    return VS__ANALYZE_EUTF8;
  a->fn = fn;
  a->ctx = ctx;
  a->kind = KIND_NONE;
  a->apos = 0;
  rc = scan(a, (const uint8_t *)text, len);
  if (a->cpscap > CPS_KEEP) { /* one huge region: do not keep its buffer */
    free(a->cps);
    a->cps = NULL;
    a->cpscap = 0;
  }
  return rc;
}

int vs__analyzer_is_stopword(const vs__analyzer *a, const char *term, size_t len) {
  utf8proc_int32_t cps[64];
  char buf[64 * 4 + 8] = {0};
  utf8proc_ssize_t n;
  size_t blen = 0;

  if (a->nstop == 0 || !utf8_valid((const uint8_t *)term, len))
    return 0;
  n = utf8proc_decompose((const utf8proc_uint8_t *)term, (utf8proc_ssize_t)len, cps, 64, OPTS);
  if (n < 0 || n > 64)
    return 0; /* far longer than any stopword */
  n = utf8proc_normalize_utf32(cps, n, OPTS);
  for (utf8proc_ssize_t k = 0; k < n; k++)
    blen += (size_t)utf8proc_encode_char(cps[k], (utf8proc_uint8_t *)buf + blen);
  return is_stop(a, buf, blen, hash(buf, blen));
}
