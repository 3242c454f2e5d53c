/*
 * language.h: the analyzer languages a collection may name.
 */
#ifndef VS_TEXT_LANGUAGE_H
#define VS_TEXT_LANGUAGE_H

/* 0 when `lang` is "none" or a stemmer libstemmer has ("english", "porter",
 * "french", ...), else -1. */
int vs__text_language_check(const char *lang);

#endif /* VS_TEXT_LANGUAGE_H */
