/*
 * stopwords.h: the stopword list of each analyzer language (see stopwords.c
 * for where each list comes from and which languages have none).
 */
#ifndef VS_TEXT_STOPWORDS_H
#define VS_TEXT_STOPWORDS_H

#include <stddef.h>

/* The stopwords of `language` ("english", "porter", "french", ...): an array
 * of *n NUL-terminated UTF-8 words in static storage, each already in the
 * analyzer's folded form (NFKC + case folding), no duplicates, in no
 * particular order.  "none", a language without a list, or an unknown name
 * give NULL with *n = 0.  Thread-safe. */
const char *const *vs__stopwords(const char *language, size_t *n);

#endif /* VS_TEXT_STOPWORDS_H */
