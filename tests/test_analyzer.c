/*
 * test_analyzer.c: the text analyzer (text/analyzer.h): tokenization,
 * normalisation, possessives, stopwords, stemming, CJK bigrams, the term
 * length limit, UTF-8 validation and early stops, plus properties checked
 * on large seeded random text (no crash, fast path = Unicode path).
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>

#include "text/analyzer.h"
#include "text/stopwords.h"

/* Terms joined with "|", for comparing a whole analysis at once. */
typedef struct collector {
  char *buf;
  size_t len, cap;
  long count;
  long stop_after; /* return stop_rc after this many terms (0: never) */
  int stop_rc;
  int bad; /* a term was empty, too long or not UTF-8 */
} collector;

static int collect(void *ctx, const char *t, size_t n) {
  collector *c = ctx;

  if (n == 0 || n > VS__TERM_MAX)
    c->bad = 1;
  if (c->len + n + 2 > c->cap) {
    c->cap = (c->len + n + 2) * 2;
    c->buf = realloc(c->buf, c->cap);
    assert_non_null(c->buf);
  }
  if (c->count > 0)
    c->buf[c->len++] = '|';
  memcpy(c->buf + c->len, t, n);
  c->len += n;
  c->buf[c->len] = '\0';
  c->count++;
  if (c->stop_after && c->count == c->stop_after)
    return c->stop_rc;
  return 0;
}

static void collector_reset(collector *c) {
  c->len = 0;
  c->count = 0;
  c->bad = 0;
  if (c->buf)
    c->buf[0] = '\0';
}

/* Analyze `text` (len bytes) in `lang`; the terms stay valid until the next call. */
static const char *analyze_n(const char *lang, const char *text, size_t len) {
  static collector c;
  vs__analyzer *a = vs__analyzer_new(lang);
  int rc;

  assert_non_null(a);
  collector_reset(&c);
  if (c.buf == NULL) {
    c.cap = 256;
    c.buf = calloc(1, c.cap);
  }
  rc = vs__analyze(a, text, len, collect, &c);
  assert_int_equal(rc, VS__ANALYZE_OK);
  assert_false(c.bad);
  vs__analyzer_free(a);
  return c.buf;
}

static const char *analyze(const char *lang, const char *text) {
  return analyze_n(lang, text, strlen(text));
}

static void test_ascii(void **state) {
  (void)state;
  assert_string_equal(analyze("none", "Hello, World!  foo-bar\tBAZ\nqux_quux"),
                      "hello|world|foo|bar|baz|qux|quux");
  assert_string_equal(analyze("none", "  ...  "), "");
  assert_string_equal(analyze("none", "x"), "x");
  assert_string_equal(analyze("none", "e-mail U.S.A. C++"), "e|mail|u|s|a|c");
  /* Digits are word characters. */
  assert_string_equal(analyze("none", "covid19 3.5 2020-01-02 x86_64"),
                      "covid19|3|5|2020|01|02|x86|64");
  /* A NUL byte is a separator like any control character. */
  assert_string_equal(analyze_n("none", "ab\0cd", 5), "ab|cd");
}

static void test_unicode_normalisation(void **state) {
  (void)state;
  /* Precomposed and decomposed accents give the same term. */
  assert_string_equal(analyze("none", "Café CAFÉ cafe\xcc\x81"), "café|café|café");
  assert_string_equal(analyze("none", "caféteria naïve"), "caféteria|naïve");
  /* Full-width letters and digits, ligatures, superscripts. */
  assert_string_equal(analyze("none", "ＡＢＣ ｆｕｌｌ１２"), "abc|full12");
  assert_string_equal(analyze("none", "\xef\xac\x81le of\xef\xac\x81"
                                      "ce"),
                      "file|office");
  assert_string_equal(analyze("none", "x² H₂O"), "x2|h2o");
  /* Full case folding. */
  assert_string_equal(analyze("none", "Straße STRASSE"), "strasse|strasse");
  assert_string_equal(analyze("none", "ΣΊΣΥΦΟΣ σίσυφος"), "σίσυφοσ|σίσυφοσ");
  assert_string_equal(analyze("none", "Привет, МИР"), "привет|мир");
  /* Non-ASCII punctuation and spaces split; NBSP and ideographic space too. */
  assert_string_equal(analyze("none", "one\xc2\xa0two\xe3\x80\x80three—four…five"),
                      "one|two|three|four|five");
  assert_string_equal(analyze("none", "«quoted» “curly” ¿qué?"), "quoted|curly|qué");
  /* Format characters are ignored inside words, except a zero-width space. */
  assert_string_equal(analyze("none", "co\xc2\xad"
                                      "operation a\xe2\x80\x8b"
                                      "b"),
                      "cooperation|a|b");
  /* A combining mark that follows no letter splits. */
  assert_string_equal(analyze("none", "a \xcc\x81 b"), "a|b");
}

static void test_possessives(void **state) {
  (void)state;
  assert_string_equal(analyze("none", "John's JOHN'S John’s"), "john|john|john");
  assert_string_equal(analyze("none", "O’Reilly's book"), "o|reilly|book");
  assert_string_equal(analyze("none", "James' car"), "james|car");
  assert_string_equal(analyze("none", "Café's menu, Café’s"), "café|menu|café");
  /* Only a final "'s" is a possessive; other apostrophes split. */
  assert_string_equal(analyze("none", "don't John'sx rock'n'roll"), "don|t|john|sx|rock|n|roll");
  assert_string_equal(analyze("none", "John's"), "john");
  assert_string_equal(analyze("none", "John'"), "john");
  assert_string_equal(analyze("none", "John's, Mary's."), "john|mary");
  /* Non-ASCII after the "s" goes through the Unicode path. */
  assert_string_equal(analyze("none", "John's—Mary's’"), "john|mary");
  assert_string_equal(analyze("none", "John'sé"), "john|sé");
  /* An "'s" after no word is just an "s". */
  assert_string_equal(analyze("none", "'s"), "s");
  assert_string_equal(analyze("english", "it's the author's"), "author");
}

static void test_stopwords(void **state) {
  vs__analyzer *a = vs__analyzer_new("english");

  (void)state;
  assert_non_null(a);
  assert_string_equal(analyze("english", "the The THE"), "");
  assert_string_equal(analyze("english", "The quick fox and THE dog"), "quick|fox|dog");
  assert_string_equal(analyze("english", "to be or not to be"), "");
  /* "none" has no stopwords. */
  assert_string_equal(analyze("none", "the fox"), "the|fox");
  assert_true(vs__analyzer_is_stopword(a, "the", 3));
  assert_true(vs__analyzer_is_stopword(a, "The", 3));
  assert_true(vs__analyzer_is_stopword(a, "ＴＨＥ", strlen("ＴＨＥ")));
  assert_false(vs__analyzer_is_stopword(a, "fox", 3));
  assert_false(vs__analyzer_is_stopword(a, "", 0));
  assert_false(vs__analyzer_is_stopword(a, "\xff", 1));
  vs__analyzer_free(a);

  /* Stopwords are matched before stemming: "thing" is kept, "this" is not. */
  assert_string_equal(analyze("english", "this thing"), "thing");
  /* Other languages. */
  assert_string_equal(analyze("french", "l'homme et la femme"), "homm|femm");
  assert_string_equal(analyze("german", "Der Hund und die Katze, daß"), "hund|katz");
  assert_string_equal(analyze("spanish", "El perro y el gato"), "perr|gat");
}

/* Every list: the words are distinct and each is what the analyzer makes
 * of it (so it can match at all), and each is reported as a stopword. */
static void test_stopword_lists(void **state) {
  size_t n;
  const char *const *w;

  (void)state;
  w = vs__stopwords("english", &n);
  assert_int_equal(n, 33);
  assert_non_null(w);
  w = vs__stopwords("porter", &n);
  assert_int_equal(n, 33);
  assert_null(vs__stopwords("none", &n));
  assert_int_equal(n, 0);
  assert_null(vs__stopwords("klingon", &n));

  for (const char **l = sb_stemmer_list(); *l; l++) {
    vs__analyzer *a = vs__analyzer_new(*l);

    assert_non_null(a);
    w = vs__stopwords(*l, &n);
    if (strcmp(*l, "english") == 0 || strcmp(*l, "porter") == 0)
      assert_int_equal(n, 33);
    for (size_t i = 0; i < n; i++) {
      const char *t = analyze("none", w[i]);
      if (strcmp(t, w[i]) != 0)
        fail_msg("%s stopword \"%s\" analyzes to \"%s\"", *l, w[i], t);
      if (!vs__analyzer_is_stopword(a, w[i], strlen(w[i])))
        fail_msg("%s stopword \"%s\" not found", *l, w[i]);
      for (size_t j = 0; j < i; j++)
        if (strcmp(w[i], w[j]) == 0)
          fail_msg("%s stopword \"%s\" listed twice", *l, w[i]);
      /* Dropped from analyzed text. */
      t = analyze(*l, w[i]);
      if (strcmp(t, "") != 0)
        fail_msg("%s stopword \"%s\" emitted as \"%s\"", *l, w[i], t);
    }
    vs__analyzer_free(a);
  }
}

static void test_stemming(void **state) {
  (void)state;
  assert_string_equal(analyze("english", "Running runs ran cats"), "run|run|ran|cat");
  assert_string_equal(analyze("porter", "relational running"), "relat|run");
  assert_string_equal(analyze("none", "relational running cats"), "relational|running|cats");
  assert_string_equal(analyze("english", "Café"), "café");
  assert_string_equal(analyze("french", "cafés"), "caf");
  assert_string_equal(analyze("russian", "книги"), "книг");
  /* The cache gives the same stems on a repeat, in one call and across calls. */
  assert_string_equal(analyze("english", "connections connections connection"),
                      "connect|connect|connect");
  {
    vs__analyzer *a = vs__analyzer_new("english");
    collector c = {0};

    assert_non_null(a);
    for (int i = 0; i < 3; i++) {
      collector_reset(&c);
      assert_int_equal(vs__analyze(a, "Generalizations of the theories", 31, collect, &c), 0);
      assert_string_equal(c.buf, "general|theori");
    }
    free(c.buf);
    vs__analyzer_free(a);
  }
  /* A word whose stem is empty (Porter strips "s" to nothing) is dropped,
   * the second time too, when the stem comes from the cache. */
  assert_string_equal(analyze("porter", "s-MSNA s s cats s"), "msna|cat");
  /* CJK bigrams are neither stemmed nor stopped. */
  assert_string_equal(analyze("english", "東京"), "東京");
}

static void test_cjk(void **state) {
  (void)state;
  assert_string_equal(analyze("none", "東京都"), "東京|京都");
  assert_string_equal(analyze("none", "東"), "東");
  assert_string_equal(analyze("none", "東 京"), "東|京");
  assert_string_equal(analyze("none", "abc東京def"), "abc|東京|def");
  assert_string_equal(analyze("none", "東京2020年"), "東京|2020|年");
  assert_string_equal(analyze("none", "東京、大阪。"), "東京|大阪");
  /* Kana join the run; "・" is punctuation and splits. */
  assert_string_equal(analyze("none", "東京タワー"), "東京|京タ|タワ|ワー");
  assert_string_equal(analyze("none", "ひらがな・カナ"), "ひら|らが|がな|カナ");
  /* Half-width katakana become full-width, dakuten composed. */
  assert_string_equal(analyze("none", "ｶﾞｷﾞ"), "ガギ");
  /* Hangul syllables. */
  assert_string_equal(analyze("none", "한국어 한"), "한국|국어|한");
  assert_string_equal(analyze("none", "서울Seoul"), "서울|seoul");
  /* Compatibility ideographs fold to unified ones; extension B works. */
  assert_string_equal(analyze("none", "\xef\xa4\x80"), "\xe8\xb1\x88");
  assert_string_equal(analyze("none", "\xf0\xa0\x80\x80\xe4\xb8\x80"),
                      "\xf0\xa0\x80\x80\xe4\xb8\x80");
}

/* A long region with no ASCII separator is normalised in chunks; the terms
 * must not depend on where the chunks end. */
static void test_long_regions(void **state) {
  size_t n = 5000, len = 0;
  char *s = malloc(n * 9 + 1);
  const char *t;
  long bigrams = 0;

  (void)state;
  assert_non_null(s);
  for (size_t i = 0; i < n; i++) {
    memcpy(s + len, i % 2 ? "京" : "東", 3);
    len += 3;
  }
  t = analyze_n("none", s, len);
  for (const char *p = t; *p; p++)
    bigrams += *p == '|';
  assert_int_equal(bigrams + 1, (long)n - 1);
  assert_true(strncmp(t, "東京|京東|東京|", strlen("東京|京東|東京|")) == 0);

  /* "abc東京def" repeated without separators: cuts fall before ASCII
   * letters, in the middle of words. */
  len = 0;
  for (size_t i = 0; i < 2000; i++) {
    memcpy(s + len, "abc東京de\xcc\x81", 13); /* decomposed é */
    len += 13;
  }
  t = analyze_n("none", s, len);
  assert_true(strncmp(t, "abc|東京|déabc|東京|déabc|", 20) == 0);
  {
    long count = 1;
    for (const char *p = t; *p; p++)
      count += *p == '|';
    assert_int_equal(count, 2000 * 2 + 1);
  }
  free(s);
}

static void test_term_length(void **state) {
  char s[1024];

  (void)state;
  memset(s, 'a', VS__TERM_MAX);
  s[VS__TERM_MAX] = '\0';
  assert_int_equal(strlen(analyze("none", s)), VS__TERM_MAX);
  memset(s, 'a', VS__TERM_MAX + 1);
  strcpy(s + VS__TERM_MAX + 1, " ok");
  assert_string_equal(analyze("none", s), "ok");
  memset(s, 'b', 600);
  strcpy(s + 600, "'s ok");
  assert_string_equal(analyze("english", s), "ok");
  /* 127 é are 254 bytes; 128 are 256. */
  s[0] = '\0';
  for (int i = 0; i < 127; i++)
    strcat(s, "é");
  assert_int_equal(strlen(analyze("none", s)), 254);
  strcat(s, "é x");
  assert_string_equal(analyze("none", s), "x");
  /* A long ASCII word that goes on in Unicode. */
  memset(s, 'c', 300);
  strcpy(s + 300, "é y");
  assert_string_equal(analyze("none", s), "y");
}

static void test_invalid_utf8(void **state) {
  static const char *bad[] = {
      "\x80",             /* lone continuation byte */
      "\xc0\xaf",         /* overlong "/" */
      "\xe0\x80\xaf",     /* overlong, three bytes */
      "\xe4\xb8",         /* truncated sequence */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xff",             /* never valid */
      "\xc3(",            /* lead byte without continuation */
  };
  vs__analyzer *a = vs__analyzer_new("english");
  collector c = {0};
  char s[64];

  (void)state;
  assert_non_null(a);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    /* Valid words before and after: nothing at all is emitted. */
    snprintf(s, sizeof(s), "hello world %s tail", bad[i]);
    collector_reset(&c);
    assert_int_equal(vs__analyze(a, s, strlen(s), collect, &c), VS__ANALYZE_EUTF8);
    assert_int_equal(c.count, 0);
    collector_reset(&c);
    assert_int_equal(vs__analyze(a, bad[i], strlen(bad[i]), collect, &c), VS__ANALYZE_EUTF8);
    assert_int_equal(c.count, 0);
  }
  /* Truncated at the very end of the input. */
  collector_reset(&c);
  assert_int_equal(vs__analyze(a, "abcdefgh\xe4\xb8\xad", 10, collect, &c), VS__ANALYZE_EUTF8);
  assert_int_equal(c.count, 0);
  /* The analyzer stays usable. */
  collector_reset(&c);
  assert_int_equal(vs__analyze(a, "running", 7, collect, &c), VS__ANALYZE_OK);
  assert_string_equal(c.buf, "run");
  free(c.buf);
  vs__analyzer_free(a);
}

static void test_empty_and_stop(void **state) {
  vs__analyzer *a = vs__analyzer_new("english");
  collector c = {0};

  (void)state;
  assert_non_null(a);
  assert_int_equal(vs__analyze(a, "", 0, collect, &c), VS__ANALYZE_OK);
  assert_int_equal(vs__analyze(a, NULL, 0, collect, &c), VS__ANALYZE_OK);
  assert_int_equal(c.count, 0);

  /* A callback's nonzero value ends the analysis and is passed on, from
   * the fast path, the Unicode path and a CJK run. */
  c.stop_after = 2;
  c.stop_rc = 42;
  assert_int_equal(vs__analyze(a, "alpha beta gamma delta", 22, collect, &c), 42);
  assert_int_equal(c.count, 2);
  collector_reset(&c);
  c.stop_rc = VS__ANALYZE_STOP;
  assert_int_equal(vs__analyze(a, "ålpha bétä gämma", strlen("ålpha bétä gämma"), collect, &c),
                   VS__ANALYZE_STOP);
  assert_int_equal(c.count, 2);
  collector_reset(&c);
  c.stop_rc = 7;
  assert_int_equal(vs__analyze(a, "東京都庁", strlen("東京都庁"), collect, &c), 7);
  assert_int_equal(c.count, 2);
  collector_reset(&c);
  c.stop_after = 1;
  assert_int_equal(vs__analyze(a, "東 x", strlen("東 x"), collect, &c), 7);
  assert_int_equal(c.count, 1);
  free(c.buf);
  vs__analyzer_free(a);
}

static void test_languages(void **state) {
  (void)state;
  assert_null(vs__analyzer_new("klingon"));
  assert_null(vs__analyzer_new(""));
  assert_null(vs__analyzer_new("English"));
  vs__analyzer_free(NULL);
  for (const char **l = sb_stemmer_list(); *l; l++) {
    vs__analyzer *a = vs__analyzer_new(*l);
    assert_non_null(a);
    vs__analyzer_free(a);
  }
}

/* Appends the UTF-8 of code point c. */
static size_t put(char *s, uint32_t c) {
  if (c < 0x80) {
    s[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    s[0] = (char)(0xC0 | (c >> 6));
    s[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    s[0] = (char)(0xE0 | (c >> 12));
    s[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    s[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  s[0] = (char)(0xF0 | (c >> 18));
  s[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  s[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  s[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* ~1 MB of seeded random text mixing scripts, marks, ligatures, full-width
 * forms, apostrophes, digits and long runs: every language analyzes it
 * without error and every term is 1..VS__TERM_MAX bytes of valid UTF-8. */
static void test_random_mixed(void **state) {
  static const uint32_t ranges[][2] = {
      {'a', 'z'},          {'A', 'Z'},       {'0', '9'},         {' ', ' '},
      {'\'', '\''},        {'!', '/'},       {0xC0, 0x17F},      {0x300, 0x36F},
      {0x391, 0x3C9},      {0x410, 0x44F},   {0x5D0, 0x5EA},     {0x627, 0x64A},
      {0x900, 0x97F},      {0xE01, 0xE5B},   {0x1100, 0x11FF},   {0x2000, 0x206F},
      {0x2019, 0x2019},    {0x2150, 0x218B}, {0x3000, 0x30FF},   {0x3130, 0x318F},
      {0x4E00, 0x9FFF},    {0xAC00, 0xD7A3}, {0xF900, 0xFAFF},   {0xFB00, 0xFB06},
      {0xFDFA, 0xFDFB},    {0xFF01, 0xFFEE}, {0x1F600, 0x1F64F}, {0x20000, 0x2A6DF},
      {0x10000, 0x10FFFF},
  };
  size_t nr = sizeof(ranges) / sizeof(ranges[0]), cap = 1 << 20, len = 0;
  char *s = malloc(cap + 8);
  uint64_t seed = 20240611;
  collector c = {0};

  (void)state;
  assert_non_null(s);
  while (len < cap) {
    uint64_t r = tu_rand(&seed);
    const uint32_t *rg = ranges[r % nr];
    uint32_t cp = rg[0] + (uint32_t)((r >> 16) % (rg[1] - rg[0] + 1));
    if (cp >= 0xD800 && cp <= 0xDFFF)
      cp = 'x';
    if ((r >> 48) % 500 == 0) { /* now and then a very long word */
      size_t n = 100 + (r >> 32) % 400;
      for (size_t k = 0; k < n && len < cap; k++)
        s[len++] = 'q';
      continue;
    }
    len += put(s + len, cp);
  }
  for (const char *const *l =
           (const char *const[]){"none", "english", "french", "russian", "greek", "turkish", NULL};
       *l; l++) {
    vs__analyzer *a = vs__analyzer_new(*l);
    long first = -1;

    assert_non_null(a);
    for (int round = 0; round < 2; round++) {
      collector_reset(&c);
      assert_int_equal(vs__analyze(a, s, len, collect, &c), VS__ANALYZE_OK);
      assert_false(c.bad);
      assert_true(c.count > 1000);
      /* Deterministic, with a warm cache too. */
      if (first >= 0)
        assert_int_equal(c.count, first);
      first = c.count;
    }
    vs__analyzer_free(a);
  }
  free(c.buf);
  free(s);
}

/* The fast ASCII path and the Unicode path agree: replacing each ASCII
 * space by a character that NFKC maps to a space (NBSP, ideographic space)
 * forces the whole text through utf8proc, and must change no term. */
static void test_fast_equals_slow(void **state) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCSXYZ0123456789'''''ss  ,.-";
  size_t n = 200000;
  char *ascii = malloc(n + 1), *nbsp = malloc(n * 3 + 1), *ideo = malloc(n * 3 + 1);
  char *want;
  uint64_t seed = 7;
  size_t ln = 0, li = 0;

  (void)state;
  assert_non_null(ascii);
  assert_non_null(nbsp);
  assert_non_null(ideo);
  for (size_t i = 0; i < n; i++) {
    char ch = alphabet[tu_rand(&seed) % (sizeof(alphabet) - 1)];
    ascii[i] = ch;
    if (ch == ' ') {
      memcpy(nbsp + ln, "\xc2\xa0", 2);
      ln += 2;
      memcpy(ideo + li, "\xe3\x80\x80", 3);
      li += 3;
    } else {
      nbsp[ln++] = ch;
      ideo[li++] = ch;
    }
  }
  for (const char *const *l = (const char *const[]){"none", "english", NULL}; *l; l++) {
    want = strdup(analyze_n(*l, ascii, n));
    assert_non_null(want);
    assert_true(strlen(want) > 1000);
    assert_string_equal(analyze_n(*l, nbsp, ln), want);
    assert_string_equal(analyze_n(*l, ideo, li), want);
    free(want);
  }
  free(ascii);
  free(nbsp);
  free(ideo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ascii),
      cmocka_unit_test(test_unicode_normalisation),
      cmocka_unit_test(test_possessives),
      cmocka_unit_test(test_stopwords),
      cmocka_unit_test(test_stopword_lists),
      cmocka_unit_test(test_stemming),
      cmocka_unit_test(test_cjk),
      cmocka_unit_test(test_long_regions),
      cmocka_unit_test(test_term_length),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_empty_and_stop),
      cmocka_unit_test(test_languages),
      cmocka_unit_test(test_random_mixed),
      cmocka_unit_test(test_fast_equals_slow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
