/*
 * test_textsets.c: the text evaluation set readers of tools/textsets.c.
 *
 * Small hand-written inputs pin down the SMART record parser (sections,
 * repeated sections, CRLF, leading zeros, queries numbered by position,
 * empty query records), every qrels format with its gain mapping, the BEIR
 * reader (gzip'ed and plain JSON lines, integer ids, null titles, unjudged
 * queries dropped) and each malformed-input path.  Then the real sets in
 * ../shared/data (or $VS_TEST_DATA) are read and their documented counts
 * asserted (shared/data/README.md); each is skipped with a message when
 * absent.  Last, the synthetic generator: deterministic, within its bounds.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "tools/textsets.h"

static char msg[1024];

#define EXPECT_TS(call, want)                                                                      \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != (want))                                                                             \
      fail_msg("%s returned %d, expected %d: %s", #call, rc_, (int)(want), msg);                   \
  } while (0)

static const char *data_dir(void) {
  const char *d = getenv("VS_TEST_DATA");
  return d && *d ? d : "../shared/data";
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const char *text) {
  gzFile gz = gzopen(path, "wb");
  assert_non_null(gz);
  assert_int_equal(gzwrite(gz, text, (unsigned)strlen(text)), (int)strlen(text));
  assert_int_equal(gzclose(gz), Z_OK);
}

static size_t relevant(const ts_set *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->nqrels; i++)
    n += s->qrels[i].gain > 0;
  return n;
}

/* Queries with at least one relevant judgment. */
static size_t judged_queries(const ts_set *s) {
  char *seen = calloc(s->nqueries + 1, 1);
  size_t n = 0;

  assert_non_null(seen);
  for (size_t i = 0; i < s->nqrels; i++)
    if (s->qrels[i].gain > 0 && !seen[s->qrels[i].query]) {
      seen[s->qrels[i].query] = 1;
      n++;
    }
  free(seen);
  return n;
}

static const ts_doc *doc(const ts_set *s, const char *id) {
  size_t i = ts_find_doc(s, id, strlen(id));
  if (i == SIZE_MAX)
    fail_msg("no document %s", id);
  return &s->docs[i];
}

static const ts_query *query(const ts_set *s, const char *id) {
  size_t i = ts_find_query(s, id, strlen(id));
  if (i == SIZE_MAX)
    fail_msg("no query %s", id);
  return &s->queries[i];
}

/* ---- SMART records -------------------------------------------------------- */

static void test_smart_docs(void **state) {
  /* CRLF lines, blank lines before the first record, a leading zero, a
   * section that repeats, sections not asked for, a marker with trailing
   * blanks, text on the marker's own line, a record with no sections. */
  static const char text[] = "\r\n"
                             ".I 001\r\n"
                             ".T\r\n"
                             "Flow  past a plate\r\n"
                             ".A\r\n"
                             "someone\r\n"
                             ".W  \r\n"
                             "first part\r\n"
                             "  indented .\r\n"
                             ".X\r\n"
                             "1 5 1\r\n"
                             ".W\r\n"
                             "second part\r\n"
                             ".I 2\n"
                             ".K keywords here\n"
                             "more keywords\n"
                             ".I 3\n";
  ts_set s;

  (void)state;
  ts_set_init(&s);
  EXPECT_TS(ts_parse_smart_docs(&s, "t.all", text, strlen(text), TS_SEC('T'),
                                TS_SEC('W') | TS_SEC('K'), msg, sizeof(msg)),
            TS_OK);
  assert_int_equal(s.ndocs, 3);
  assert_string_equal(s.docs[0].id, "1");
  assert_string_equal(s.docs[0].title, "Flow  past a plate");
  assert_int_equal(s.docs[0].title_len, strlen("Flow  past a plate"));
  assert_string_equal(s.docs[0].text, "first part\n  indented .\nsecond part");
  assert_string_equal(s.docs[1].id, "2");
  assert_string_equal(s.docs[1].title, "");
  assert_string_equal(s.docs[1].text, "keywords here\nmore keywords");
  assert_string_equal(s.docs[2].id, "3");
  assert_int_equal(s.docs[2].text_len, 0);
  assert_int_equal(ts_find_doc(&s, "2", 1), 1);
  assert_int_equal(ts_find_doc(&s, "001", 3), SIZE_MAX); /* ids are canonical */
  assert_int_equal(ts_find_doc(&s, "4", 1), SIZE_MAX);
  ts_set_free(&s);
  ts_set_free(&s); /* twice is harmless: the set is empty again */
}

static void test_smart_queries(void **state) {
  static const char text[] = ".I 001\n.W\nwhat is flow\n"
                             ".I 004\n.T\nA title\n.W\nand its text\n"
                             ".I 009\n.W\nthird\n"
                             ".I 0\n";
  ts_set s;

  (void)state;
  ts_set_init(&s);
  EXPECT_TS(ts_parse_smart_queries(&s, "t.qry", text, strlen(text), TS_SEC('T') | TS_SEC('W'), 0,
                                   msg, sizeof(msg)),
            TS_OK);
  assert_int_equal(s.nqueries, 3);
  assert_int_equal(s.queries_empty, 1); /* ".I 0" has no text */
  assert_string_equal(query(&s, "4")->text, "A title\nand its text");
  assert_string_equal(query(&s, "9")->text, "third");
  ts_set_free(&s);

  /* Cranfield: ids are positions, whatever .I says. */
  ts_set_init(&s);
  EXPECT_TS(
      ts_parse_smart_queries(&s, "t.qry", text, strlen(text), TS_SEC('W'), 1, msg, sizeof(msg)),
      TS_OK);
  assert_int_equal(s.nqueries, 3);
  assert_string_equal(s.queries[0].id, "1");
  assert_string_equal(s.queries[1].id, "2");
  assert_string_equal(s.queries[1].text, "and its text"); /* .T not asked for */
  assert_string_equal(s.queries[2].id, "3");
  ts_set_free(&s);
}

static void test_smart_errors(void **state) {
  static const struct {
    const char *text, *why;
  } bad[] = {
      {"some text\n.I 1\n.W\nx\n", "text before the first"},
      {".W\nx\n.I 1\n", "before the first"},
      {".I\n.W\nx\n", "record number"},
      {".I 1a\n.W\nx\n", "record number"},
      {".I 1234567890123456789\n", "record number"}, /* over 18 digits */
      {".I 1\n.W\nx\n.I 01\n.W\ny\n", "duplicate document id"},
  };
  ts_set s;

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ts_set_init(&s);
    msg[0] = '\0';
    EXPECT_TS(ts_parse_smart_docs(&s, "bad.all", bad[i].text, strlen(bad[i].text), TS_SEC('T'),
                                  TS_SEC('W'), msg, sizeof(msg)),
              TS_EFORMAT);
    if (strstr(msg, bad[i].why) == NULL || strstr(msg, "bad.all") == NULL)
      fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, bad[i].why);
    ts_set_free(&s);
  }
  /* ".NET" and ".A." are text, not markers. */
  ts_set_init(&s);
  EXPECT_TS(ts_parse_smart_docs(&s, "ok.all", ".I 1\n.W\n.NET and\n.A. Smith\n", 27, 0, TS_SEC('W'),
                                msg, sizeof(msg)),
            TS_OK);
  assert_string_equal(s.docs[0].text, ".NET and\n.A. Smith");
  ts_set_free(&s);
}

/* ---- qrels ---------------------------------------------------------------- */

/* Documents 1..5 and queries 1..3. */
static void small_set(ts_set *s) {
  static const char docs[] = ".I 1\n.W\na\n.I 2\n.W\nb\n.I 3\n.W\nc\n.I 4\n.W\nd\n.I 5\n.W\ne\n";
  static const char qs[] = ".I 1\n.W\nq\n.I 2\n.W\nr\n.I 3\n.W\ns\n";

  ts_set_init(s);
  EXPECT_TS(ts_parse_smart_docs(s, "d", docs, strlen(docs), 0, TS_SEC('W'), msg, sizeof(msg)),
            TS_OK);
  EXPECT_TS(ts_parse_smart_queries(s, "q", qs, strlen(qs), TS_SEC('W'), 0, msg, sizeof(msg)),
            TS_OK);
}

static void test_qrels_cranfield(void **state) {
  /* Cleverdon codes: gain = 5 - code for 1..4, 0 for -1 and 5; a line for
   * query 9 (absent) and one for document 77 (absent) are counted, skipped;
   * the last line has no newline, as in cranqrel. */
  static const char q[] = "1 1 1\n1 2 2 \n1 3 3\n1 4 4\n2 5 -1\n2 1 5\n9 1 1\n3 77 2\n3 02 1";
  static const double want[] = {4, 3, 2, 1, 0, 0, 4};
  ts_set s;

  (void)state;
  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_CRANFIELD, "cranqrel", q, strlen(q), msg, sizeof(msg)),
            TS_OK);
  assert_int_equal(s.qrel_lines, 9);
  assert_int_equal(s.qrels_unknown, 2);
  assert_int_equal(s.nqrels, 7);
  for (size_t i = 0; i < s.nqrels; i++)
    assert_true(s.qrels[i].gain == want[i]);
  assert_int_equal(s.qrels[4].grade, -1);
  assert_int_equal(s.qrels[6].query, 2);
  assert_int_equal(s.qrels[6].doc, 1); /* "02" is document 2 */
  ts_set_free(&s);

  static const char *const bad[] = {"1 1 0\n", "1 1 6\n", "1 1 x\n", "1 1\n", "1 x 1\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    small_set(&s);
    EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_CRANFIELD, "cranqrel", bad[i], strlen(bad[i]), msg,
                             sizeof(msg)),
              TS_EFORMAT);
    assert_non_null(strstr(msg, "cranqrel line 1"));
    ts_set_free(&s);
  }
}

static void test_qrels_pairs_trec_beir(void **state) {
  static const char pairs[] = "     1     3\t0\t0.000000\r\n\r\n02 4 0 0\r\n";
  static const char trec[] = "1 0 2 1\n1 0 3 0\n3 0 5 2\n";
  static const char beir[] = "query-id\tcorpus-id\tscore\n1\t4\t1\n2\t5\t0\n3\tnope\t1\n";
  ts_set s;

  (void)state;
  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_PAIRS, "p", pairs, strlen(pairs), msg, sizeof(msg)), TS_OK);
  assert_int_equal(s.nqrels, 2);
  assert_int_equal(s.qrels[0].query, 0);
  assert_int_equal(s.qrels[0].doc, 2);
  assert_true(s.qrels[0].gain == 1.0);
  assert_int_equal(s.qrels[1].query, 1);
  assert_int_equal(s.qrels[1].doc, 3);
  ts_set_free(&s);

  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_TREC, "t", trec, strlen(trec), msg, sizeof(msg)), TS_OK);
  assert_int_equal(s.nqrels, 3);
  assert_int_equal(s.qrels[0].doc, 1); /* the third column is the document */
  assert_true(s.qrels[1].gain == 0.0);
  assert_true(s.qrels[2].gain == 2.0);
  assert_int_equal(relevant(&s), 2);
  ts_set_free(&s);

  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_BEIR, "b", beir, strlen(beir), msg, sizeof(msg)), TS_OK);
  assert_int_equal(s.qrel_lines, 3); /* not the header */
  assert_int_equal(s.qrels_unknown, 1);
  assert_int_equal(s.nqrels, 2);
  assert_true(s.qrels[1].gain == 0.0);
  ts_set_free(&s);

  /* A header line is only allowed first. */
  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_BEIR, "b", "1\t1\t1\nq\td\tscore\n", 16, msg, sizeof(msg)),
            TS_EFORMAT);
  ts_set_free(&s);
  small_set(&s);
  EXPECT_TS(ts_parse_qrels(&s, TS_QRELS_TREC, "t", "1 0 2\n", 6, msg, sizeof(msg)), TS_EFORMAT);
  ts_set_free(&s);
}

/* ---- BEIR ----------------------------------------------------------------- */

static void test_beir_small(void **state) {
  char *dir = tu_mkdtemp(), p[4096];
  ts_set s;

  (void)state;
  snprintf(p, sizeof(p), "%s/corpus.jsonl.gz", dir);
  write_gz(p, "{\"_id\": \"d1\", \"title\": \"T one\", \"text\": \"first text\"}\n"
              "\n"
              "{\"_id\": 42, \"title\": null, \"text\": \"caf\\u00e9\"}\n"
              "{\"_id\": \"d3\", \"text\": \"no title\", \"metadata\": {}}\n");
  snprintf(p, sizeof(p), "%s/queries.jsonl", dir);
  write_file(p, "{\"_id\": \"q1\", \"text\": \"first?\"}\n"
                "{\"_id\": \"q2\", \"text\": \"never judged\"}\n"
                "{\"_id\": \"q3\", \"text\": \"third\"}\n");
  snprintf(p, sizeof(p), "%s/qrels", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  snprintf(p, sizeof(p), "%s/qrels/test.tsv", dir);
  write_file(p, "query-id\tcorpus-id\tscore\nq3\t42\t2\nq1\td1\t1\nq1\tgone\t1\n");

  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_OK);
  assert_int_equal(s.ndocs, 3);
  assert_string_equal(doc(&s, "d1")->title, "T one");
  assert_string_equal(doc(&s, "42")->title, "");
  assert_string_equal(doc(&s, "42")->text, "caf\xc3\xa9");
  assert_int_equal(doc(&s, "42")->text_len, 5);
  assert_string_equal(doc(&s, "d3")->text, "no title");
  /* q2 has no judgment: dropped; the others keep their order. */
  assert_int_equal(s.nqueries, 2);
  assert_string_equal(s.queries[0].id, "q1");
  assert_string_equal(s.queries[1].id, "q3");
  assert_int_equal(ts_find_query(&s, "q2", 2), SIZE_MAX);
  assert_int_equal(ts_find_query(&s, "q3", 2), 1);
  assert_int_equal(s.qrel_lines, 3);
  assert_int_equal(s.qrels_unknown, 1);
  assert_int_equal(s.nqrels, 2);
  assert_int_equal(s.qrels[0].query, 1);
  assert_int_equal(s.qrels[0].doc, 1);
  assert_true(s.qrels[0].gain == 2.0);
  assert_int_equal(s.qrels[1].query, 0);
  assert_string_equal(s.name, strrchr(dir, '/') + 1); /* named after its directory */
  ts_set_free(&s);

  /* Errors: bad JSON (the line is named), a duplicate id, a missing file. */
  snprintf(p, sizeof(p), "%s/corpus.jsonl.gz", dir);
  write_gz(p, "{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d2\", \"text\": \n");
  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_EFORMAT);
  assert_non_null(strstr(msg, "line 2"));
  assert_int_equal(s.ndocs, 0); /* left empty */
  write_gz(p, "{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d1\", \"text\": \"y\"}\n");
  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_EFORMAT);
  assert_non_null(strstr(msg, "duplicate"));
  write_gz(p, "{\"_id\": \"d1\", \"text\": 5}\n");
  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_EFORMAT);
  remove(p);
  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_EIO);
  assert_non_null(strstr(msg, "corpus"));
  tu_rmdir(dir);
  free(dir);
}

/* ---- The real sets -------------------------------------------------------- */

static int read_smart(const char *name, const char *archive, ts_set *s) {
  char dir[4096], path[4200];
  FILE *f;

  snprintf(dir, sizeof(dir), "%s/%s", data_dir(), name);
  snprintf(path, sizeof(path), "%s/%s", dir, archive);
  if ((f = fopen(path, "rb")) == NULL) {
    print_message("skipped: %s is absent\n", path);
    return 0;
  }
  fclose(f);
  EXPECT_TS(ts_read_smart(dir, name, s, msg, sizeof(msg)), TS_OK);
  return 1;
}

static void no_carriage_returns(const ts_set *s) {
  for (size_t i = 0; i < s->ndocs; i++)
    if (strchr(s->docs[i].title, '\r') || strchr(s->docs[i].text, '\r'))
      fail_msg("document %s holds a carriage return", s->docs[i].id);
  for (size_t i = 0; i < s->nqueries; i++)
    if (strchr(s->queries[i].text, '\r'))
      fail_msg("query %s holds a carriage return", s->queries[i].id);
}

static void test_cranfield(void **state) {
  size_t by_gain[5] = {0};
  ts_set s;

  (void)state;
  if (!read_smart("cranfield", "cran.tar.gz", &s))
    skip();
  assert_string_equal(s.name, "cranfield");
  assert_int_equal(s.ndocs, 1400);
  assert_int_equal(s.nqueries, 225);
  assert_int_equal(s.qrel_lines, 1837);
  assert_int_equal(s.qrels_unknown, 0);
  assert_int_equal(s.nqrels, 1837);
  for (size_t i = 0; i < s.nqrels; i++)
    by_gain[(int)s.qrels[i].gain]++;
  /* codes 1, 2, 3, 4 and -1 as counted in cranqrel */
  assert_int_equal(by_gain[4], 128);
  assert_int_equal(by_gain[3], 387);
  assert_int_equal(by_gain[2], 734);
  assert_int_equal(by_gain[1], 363);
  assert_int_equal(by_gain[0], 225);
  assert_int_equal(relevant(&s), 1612);
  assert_int_equal(judged_queries(&s), 225);
  assert_string_equal(
      doc(&s, "1")->title,
      "experimental investigation of the aerodynamics of a\nwing in a slipstream .");
  assert_non_null(strstr(doc(&s, "576")->text, "from stall of adjacent stages")); /* second .W */
  /* query 2 by position is ".I 002"; the 225th is ".I 365" */
  assert_string_equal(query(&s, "2")->text, "what are the structural and aeroelastic problems "
                                            "associated with flight\nof high speed aircraft .");
  assert_non_null(query(&s, "225"));
  assert_int_equal(ts_find_query(&s, "226", 3), SIZE_MAX);
  no_carriage_returns(&s);
  ts_set_free(&s);
}

static void test_cisi(void **state) {
  ts_set s;

  (void)state;
  if (!read_smart("cisi", "cisi.tar.gz", &s))
    skip();
  assert_int_equal(s.ndocs, 1460);
  assert_int_equal(s.nqueries, 112);
  assert_int_equal(s.qrel_lines, 3114);
  assert_int_equal(s.qrels_unknown, 0);
  assert_int_equal(relevant(&s), 3114);
  assert_int_equal(judged_queries(&s), 76);
  assert_string_equal(doc(&s, "1")->title, "18 Editions of the Dewey Decimal Classifications");
  assert_true(strncmp(doc(&s, "1")->text, "The present study is a history of the DEWEY", 43) == 0);
  /* a document-like query: its .T, then its .W */
  assert_true(strncmp(query(&s, "60")->text, "The Combined Use of Bibliographic Coupling", 42) ==
              0);
  assert_non_null(strstr(query(&s, "60")->text, "A linkage similarity measure"));
  assert_null(strstr(query(&s, "60")->text, "Bichteler")); /* .A is not text */
  no_carriage_returns(&s);
  ts_set_free(&s);
}

static void test_medline(void **state) {
  ts_set s;

  (void)state;
  if (!read_smart("medline", "med.tar.gz", &s))
    skip();
  assert_int_equal(s.ndocs, 1033);
  assert_int_equal(s.nqueries, 30);
  assert_int_equal(s.qrel_lines, 696);
  assert_int_equal(s.qrels_unknown, 0);
  assert_int_equal(relevant(&s), 696);
  assert_int_equal(judged_queries(&s), 30);
  for (size_t i = 0; i < s.ndocs; i++)
    assert_int_equal(s.docs[i].title_len, 0);
  assert_string_equal(query(&s, "1")->text,
                      "the crystalline lens in vertebrates, including humans.");
  no_carriage_returns(&s);
  ts_set_free(&s);
}

static void test_cacm(void **state) {
  ts_set s;

  (void)state;
  if (!read_smart("cacm", "cacm.tar.gz", &s))
    skip();
  assert_int_equal(s.ndocs, 3204);
  assert_int_equal(s.nqueries, 64);
  assert_int_equal(s.queries_empty, 1); /* the closing ".I 0" */
  assert_int_equal(s.qrel_lines, 796);
  assert_int_equal(s.qrels_unknown, 0);
  assert_int_equal(relevant(&s), 796);
  assert_int_equal(judged_queries(&s), 52);
  assert_string_equal(doc(&s, "1")->title, "Preliminary Report-International Algebraic Language");
  assert_string_equal(doc(&s, "1")->text, ""); /* no abstract, no keywords */
  /* .K goes into the text; .C and .N do not */
  assert_string_equal(doc(&s, "1655")->text,
                      "standard code, code, information interchange, characters,\n"
                      "shift out, shift in, escape, data link\n"
                      "escape, control functions, standard procedures,\n"
                      "code extension, code table, bit pattern");
  assert_string_equal(doc(&s, "1655")->title, "Code Extension Procedures for Information\n"
                                              "Interchange* (Proposed USA Standard)");
  assert_null(strstr(query(&s, "2")->text, "Richard Alexander")); /* .N is not text */
  ts_set_free(&s);
}

static void test_scifact(void **state) {
  char dir[4096], path[4200];
  FILE *f;
  ts_set s;

  (void)state;
  snprintf(dir, sizeof(dir), "%s/scifact", data_dir());
  snprintf(path, sizeof(path), "%s/corpus.jsonl.gz", dir);
  if ((f = fopen(path, "rb")) == NULL) {
    print_message("skipped: %s is absent\n", path);
    skip();
  }
  fclose(f);
  EXPECT_TS(ts_read_beir(dir, &s, msg, sizeof(msg)), TS_OK);
  assert_string_equal(s.name, "scifact");
  assert_int_equal(s.ndocs, 5183);
  assert_int_equal(s.nqueries, 300);
  assert_int_equal(s.qrel_lines, 339);
  assert_int_equal(s.qrels_unknown, 0);
  assert_int_equal(s.nqrels, 339);
  assert_int_equal(relevant(&s), 339);
  assert_int_equal(judged_queries(&s), 300);
  assert_string_equal(s.docs[0].id, "4983");
  assert_true(strncmp(s.docs[0].title, "Microstructural development of human newborn", 44) == 0);
  assert_string_equal(query(&s, "1")->text,
                      "0-dimensional biomaterials show inductive properties.");
  assert_int_equal(s.qrels[0].query, ts_find_query(&s, "1", 1));
  assert_int_equal(s.qrels[0].doc, ts_find_doc(&s, "31715818", 8));
  ts_set_free(&s);
}

static void test_unknown_smart(void **state) {
  ts_set s;

  (void)state;
  EXPECT_TS(ts_read_smart("/nonexistent", "trec", &s, msg, sizeof(msg)), TS_EINVAL);
  EXPECT_TS(ts_read_smart("/nonexistent", "cisi", &s, msg, sizeof(msg)), TS_EIO);
  assert_non_null(strstr(msg, "cisi.tar.gz"));
}

/* ---- The synthetic corpus ------------------------------------------------- */

static size_t count_words(const char *s) {
  size_t n = 0;
  for (const char *p = s; *p; p++) {
    if (*p == ' ')
      n++;
    else if (strchr("abdfgklmnopr", *p) == NULL)
      fail_msg("unexpected character '%c' in \"%s\"", *p, s);
  }
  return *s ? n + 1 : 0;
}

static void test_synthetic(void **state) {
  char t1[TS_SYNTH_TEXT_MAX], x1[TS_SYNTH_TEXT_MAX], t2[TS_SYNTH_TEXT_MAX], x2[TS_SYNTH_TEXT_MAX];
  size_t tl1, xl1, tl2, xl2, same = 0;
  ts_synth *g, *h;

  (void)state;
  assert_int_equal(ts_synth_new(1000, 7, &g), TS_OK);
  assert_int_equal(ts_synth_new(1000, 8, &h), TS_OK);
  for (size_t i = 0; i < 1000; i++) {
    size_t nt, nx;
    ts_synth_doc(g, i, t1, &tl1, x1, &xl1);
    assert_int_equal(strlen(t1), tl1);
    assert_int_equal(strlen(x1), xl1);
    nt = count_words(t1);
    nx = count_words(x1);
    assert_true(nt >= 4 && nt <= 8);
    assert_true(nx >= 50 && nx <= 300);
    /* regenerated alone, the same document */
    ts_synth_doc(g, i, t2, &tl2, x2, &xl2);
    assert_string_equal(t1, t2);
    assert_string_equal(x1, x2);
    /* another seed, another document */
    ts_synth_doc(h, i, t2, &tl2, x2, &xl2);
    same += strcmp(x1, x2) == 0;
  }
  assert_int_equal(same, 0);
  for (size_t j = 0; j < 200; j++) {
    char q[TS_SYNTH_TEXT_MAX], r[TS_SYNTH_TEXT_MAX];
    size_t n = ts_synth_query(g, j, q), w = count_words(q);
    assert_int_equal(strlen(q), n);
    assert_true(w >= 2 && w <= 5);
    ts_synth_query(g, j, r);
    assert_string_equal(q, r);
    /* every word is whole syllables, at least two */
    for (char *p = strtok(q, " "); p; p = strtok(NULL, " "))
      assert_true(strlen(p) >= 4 && strlen(p) % 2 == 0);
  }
  ts_synth_free(g);
  ts_synth_free(h);
  ts_synth_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_smart_docs),
      cmocka_unit_test(test_smart_queries),
      cmocka_unit_test(test_smart_errors),
      cmocka_unit_test(test_qrels_cranfield),
      cmocka_unit_test(test_qrels_pairs_trec_beir),
      cmocka_unit_test(test_beir_small),
      cmocka_unit_test(test_unknown_smart),
      cmocka_unit_test(test_cranfield),
      cmocka_unit_test(test_cisi),
      cmocka_unit_test(test_medline),
      cmocka_unit_test(test_cacm),
      cmocka_unit_test(test_scifact),
      cmocka_unit_test(test_synthetic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
