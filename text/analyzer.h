/*
 * analyzer.h: turns text into index terms, the same way for documents and
 * for queries.
 *
 * The pipeline, in order:
 *   1. The input must be valid UTF-8: invalid bytes are an error
 *      (VS__ANALYZE_EUTF8), never replaced, so a document either indexes
 *      exactly as stored or is refused with the rest of its batch.
 *   2. NFKC normalisation and Unicode case folding (utf8proc), so "ﬁ" = "fi",
 *      full-width "Ａ" = "a", "Straße" = "strasse".
 *   3. Tokens are maximal runs of word characters: letters (L*), marks that
 *      follow a letter or digit (M*) and digits (Nd, Nl, No); everything
 *      else splits ("3.5" -> "3", "5"; "covid19" stays one term).  Format
 *      characters (Cf: soft hyphen, zero-width joiners) are ignored without
 *      splitting, except U+200B ZERO WIDTH SPACE, which splits.
 *      CJK ideographs, kana and hangul syllables form runs of their own,
 *      emitted as overlapping character bigrams ("東京都" -> "東京", "京都");
 *      a run of one such character is emitted as a unigram.  A CJK run
 *      next to other letters or digits splits from them ("abc東京" ->
 *      "abc", "東京").
 *   4. Possessives, in every language: a trailing "'s" (also U+2019) is
 *      removed before splitting, so "John's" -> "john".  Other apostrophes
 *      split ("O'Reilly" -> "o", "reilly"; "l'homme" -> "l", "homme").
 *   5. Terms longer than VS__TERM_MAX bytes are dropped (Lucene's limit).
 *   6. Stopwords of the language are dropped (Lucene's English set for
 *      "english" and "porter"; see stopwords.c for the others).
 *   7. Snowball stemming through libstemmer ("none": no stemming).  CJK
 *      bigrams are not stemmed.
 *
 * An analyzer is not thread-safe (libstemmer keeps state): use one per thread.
 */
#ifndef VS_TEXT_ANALYZER_H
#define VS_TEXT_ANALYZER_H

#include <stddef.h>
#include <stdint.h>

#define VS__TERM_MAX 255

enum {
  VS__ANALYZE_OK = 0,
  VS__ANALYZE_EUTF8 = -1, /* the text is not valid UTF-8 */
  VS__ANALYZE_ENOMEM = -2,
  VS__ANALYZE_STOP = -3, /* returned by a callback to end early; passed on */
};

typedef struct vs__analyzer vs__analyzer;

/* A new analyzer for `language` ("none", or a libstemmer name such as
 * "english", "porter", "french").  NULL when the language is unknown or
 * memory runs out.  With a stemmer it holds a 1 MiB cache of stems, so
 * keep analyzers for reuse rather than making one per document. */
vs__analyzer *vs__analyzer_new(const char *language);
void vs__analyzer_free(vs__analyzer *a);

/* Called once per term, in text order; `term` is `len` bytes of UTF-8
 * (not NUL-terminated, valid only during the call).  Return 0 to go on,
 * or any other value to stop: vs__analyze then returns it. */
typedef int (*vs__term_fn)(void *ctx, const char *term, size_t len);

/* Analyze `len` bytes of `text` (NULL allowed when len is 0).  Returns
 * VS__ANALYZE_OK, VS__ANALYZE_EUTF8 (the whole text is checked before any
 * term is emitted: overlong forms, surrogates, code points above U+10FFFF
 * and truncated sequences are all refused), VS__ANALYZE_ENOMEM, or what the
 * callback returned.  The analyzer stays usable after any of them. */
int vs__analyze(vs__analyzer *a, const char *text, size_t len, vs__term_fn fn, void *ctx);

/* Whether `term` (already analyzed form is not required: any UTF-8 word) is a
 * stopword of the analyzer's language, after NFKC and case folding ("The"
 * is; "the," with its comma is not); 0 for invalid UTF-8.  Allocates
 * nothing; used by tests and by explain. */
int vs__analyzer_is_stopword(const vs__analyzer *a, const char *term, size_t len);

#endif /* VS_TEXT_ANALYZER_H */
