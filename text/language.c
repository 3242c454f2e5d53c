/*
 * language.c: which analyzer languages exist.  The list is libstemmer's own
 * (the Snowball stemmers Debian ships), plus "none" for no stemming, so a
 * collection can only name a language the analyzer will be able to load.
 */
#include "text/language.h"

#include <libstemmer.h>
#include <string.h>

int vs__text_language_check(const char *lang) {
  if (strcmp(lang, "none") == 0)
    return 0;
  for (const char **l = sb_stemmer_list(); *l; l++)
    if (strcmp(*l, lang) == 0)
      return 0;
  return -1;
}
