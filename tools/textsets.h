/*
 * textsets.h: readers for the text evaluation sets of `vsearch bench text`
 * (../shared/data/README.md), and the seeded synthetic corpus it also runs.
 *
 * A set is documents, queries and relevance judgments (qrels), held in one
 * ts_set.  Judgments are resolved to document and query indexes as they are
 * read; a judgment naming a document or query the set lacks is counted and
 * skipped.  Gains are the graded relevance nDCG uses; a judgment with gain
 * > 0 makes its document relevant for the binary measures (MAP, recall).
 *
 * FORMATS
 *
 *  BEIR       A directory: corpus.jsonl or corpus.jsonl.gz (one JSON object
 *             a line: "_id", "title", "text"), queries.jsonl(.gz) ("_id",
 *             "text"), qrels/test.tsv ("query-id corpus-id score", tab
 *             separated, a header line).  gain = score.  queries.jsonl may
 *             hold the queries of every split: only those the test qrels
 *             judge are kept.  Ids are strings as written ("_id" may also be
 *             a JSON integer).
 *  SMART      The Glasgow collections, each a tar.gz archive read in-process
 *             with libarchive: a record starts with ".I id", then sections
 *             open with a line holding "." and one capital letter (.T title,
 *             .A author, .B source, .W text, CACM's .K keywords, .X, .N, .C
 *             ...) and run to the next such line.  Carriage returns and
 *             trailing blanks are dropped; a section that appears twice in a
 *             record (Cranfield documents 576 and 578 hold two .W) is
 *             joined with a newline.  Record ids are decimal numbers, kept
 *             without leading zeros ("01" is "1"), as in the qrels.  What is
 *             read from each set:
 *
 *             set        archive      documents: title / text     queries    qrels
 *             cranfield  cran.tar.gz  cran.all.1400: .T / .W      cran.qry   cranqrel
 *             cisi       cisi.tar.gz  CISI.ALL: .T / .W           CISI.QRY   CISI.REL
 *             medline    med.tar.gz   MED.ALL: (none) / .W        MED.QRY    MED.REL
 *             cacm       cacm.tar.gz  cacm.all: .T / .W + .K      query.text qrels.text
 *
 *             Authors, sources and CACM's citation lists (.A .B .N .X .C)
 *             are not indexed: they are metadata, not content.  CACM's .K
 *             (author keywords, 1429 of 3204 documents) is content and goes
 *             into the text after .W; only 1587 CACM documents have an
 *             abstract.  Cranfield's .W repeats the title, as the collection
 *             was distributed.  Query text is .T (CISI's 55 document-like
 *             queries have one) followed by .W; a query record with no text
 *             (CACM's query.text ends with an empty ".I 0") is skipped and
 *             counted in queries_empty.
 *
 *             Qrels: Cranfield's cranqrel lines are "query doc code": the
 *             query is numbered 1..225 by its position in cran.qry (whose own
 *             .I numbers run 001..365 with gaps), so Cranfield query ids are
 *             those positions.  The code is Cleverdon's: 1 = a complete
 *             answer .. 4 = minimum interest, 5 = no interest, -1 = not
 *             relevant (one line per query).  gain = 5 - code for codes 1..4
 *             (1 -> 4, 2 -> 3, 3 -> 2, 4 -> 1) and 0 for -1 and 5: every code
 *             1..4 counts as relevant.  CISI.REL and CACM's qrels.text are
 *             "query doc 0 0": gain 1.  MED.REL is TREC's "query 0 doc rel":
 *             gain = rel.
 *
 * Every call reports failure as a negative TS_E* code and, when msg is not
 * NULL, a sentence in msg (at most msgcap bytes) naming the file and line.
 * File contents are untrusted: lines and archive members are bounded
 * (64 MiB and 256 MiB), buffers grow with the bytes actually read.  Nothing
 * here prints or exits.  A ts_set is used by one thread at a time.
 */
#ifndef VS_TOOLS_TEXTSETS_H
#define VS_TOOLS_TEXTSETS_H

#include <stddef.h>
#include <stdint.h>

enum {
  TS_OK = 0,
  TS_EINVAL = -1,  /* bad argument: unknown set name */
  TS_EIO = -2,     /* a file cannot be opened or read */
  TS_EFORMAT = -3, /* malformed contents, a missing archive member, a duplicate id */
  TS_ENOMEM = -4,
};

typedef struct ts_doc {
  const char *id;    /* NUL-terminated, unique in the set */
  const char *title; /* NUL-terminated; "" when the document has none */
  const char *text;  /* NUL-terminated; may be "" */
  size_t title_len, text_len;
} ts_doc;

typedef struct ts_query {
  const char *id; /* NUL-terminated, unique in the set; what the qrels name */
  const char *text;
  size_t text_len;
} ts_query;

typedef struct ts_qrel {
  size_t query; /* index into queries */
  size_t doc;   /* index into docs */
  int grade;    /* as written in the file */
  double gain;  /* graded gain (see FORMATS); > 0: relevant */
} ts_qrel;

typedef struct ts_mem ts_mem; /* the set's strings and id indexes */

typedef struct ts_set {
  char name[32];
  char about[512]; /* the files read and the sections indexed, for reports */
  ts_doc *docs;
  size_t ndocs;
  ts_query *queries;
  size_t nqueries;
  ts_qrel *qrels; /* in file order */
  size_t nqrels;
  size_t qrel_lines;    /* judgment lines read (header and blank lines excluded) */
  size_t qrels_unknown; /* of them, naming a query or document the set lacks: skipped */
  size_t queries_empty; /* query records with no text: skipped */
  ts_mem *mem;
} ts_set;

/* Start an empty set (a zeroed struct is one too). */
void ts_set_init(ts_set *s);

/* Release everything a set holds and leave it empty.  Accepts NULL. */
void ts_set_free(ts_set *s);

/* The index of the document / query with this id (len bytes), or SIZE_MAX. */
size_t ts_find_doc(const ts_set *s, const char *id, size_t len);
size_t ts_find_query(const ts_set *s, const char *id, size_t len);

/* Read a BEIR set from directory `dir` into the empty set *s (named after
 * the directory's last component).  Returns TS_OK, TS_EIO (a missing file),
 * TS_EFORMAT, TS_ENOMEM; on failure *s is left empty. */
int ts_read_beir(const char *dir, ts_set *s, char *msg, size_t msgcap);

/* The SMART set names ts_read_smart() knows, NULL-terminated:
 * "cranfield", "cisi", "medline", "cacm". */
extern const char *const ts_smart_names[];

/* Read SMART set `name` from its directory `dir` (DATA/cranfield, ...):
 * the archive, then its three members (see FORMATS).  Returns TS_OK,
 * TS_EINVAL (unknown name), TS_EIO, TS_EFORMAT, TS_ENOMEM; on failure *s is
 * left empty. */
int ts_read_smart(const char *dir, const char *name, ts_set *s, char *msg, size_t msgcap);

/* ---- Building blocks, on bytes in memory (the tests use them directly) --- */

/* A set of SMART section letters: TS_SEC('T') | TS_SEC('W'). */
#define TS_SEC(letter) (1u << ((letter) - 'A'))

/* Append the records of SMART text `buf` (len bytes; `file` names it in
 * messages) to s as documents: title = the sections in title_secs, text =
 * those in text_secs, each joined with newlines in file order.  Returns
 * TS_OK, TS_EFORMAT (text before the first .I, a non-numeric .I, a
 * duplicate id), TS_ENOMEM. */
int ts_parse_smart_docs(ts_set *s, const char *file, const char *buf, size_t len,
                        unsigned title_secs, unsigned text_secs, char *msg, size_t msgcap);

/* The same for queries: text = the sections in text_secs; records without
 * text are skipped (queries_empty).  With by_position nonzero a query's id
 * is its 1-based position among the file's records (Cranfield). */
int ts_parse_smart_queries(ts_set *s, const char *file, const char *buf, size_t len,
                           unsigned text_secs, int by_position, char *msg, size_t msgcap);

typedef enum ts_qrels_format {
  TS_QRELS_CRANFIELD = 1, /* "query doc code": Cleverdon codes, see FORMATS */
  TS_QRELS_PAIRS,         /* "query doc ...": a listed pair is relevant, grade and gain 1 */
  TS_QRELS_TREC,          /* "query iteration doc rel": gain = rel (MEDLINE) */
  TS_QRELS_BEIR,          /* "query-id<TAB>corpus-id<TAB>score", a header line */
} ts_qrels_format;

/* Append the judgments of `buf` to s, resolving ids against the documents
 * and queries already in s (SMART formats compare ids as numbers).  Returns
 * TS_OK, TS_EFORMAT (a line with too few fields, a non-numeric id or grade,
 * an unknown Cleverdon code), TS_ENOMEM. */
int ts_parse_qrels(ts_set *s, ts_qrels_format fmt, const char *file, const char *buf, size_t len,
                   char *msg, size_t msgcap);

/* ---- Measures -------------------------------------------------------------- */

/* Sums over the evaluated queries (divide by `evaluated` for means). */
typedef struct ts_measures {
  double ndcg10, map, r100, r1000;
  size_t evaluated;
} ts_measures;

/* Add one query's measures to sum, trec_eval's way: ranked[0..n) are the
 * gains of the retrieved documents, best first (0 for unjudged ones);
 * judged[0..nj) the gains of all its judged documents, in any order (> 0
 * is relevant).  nDCG@10 (ndcg_cut.10: graded gains, log2 discount, the
 * ideal from the judged gains), AP over the n retrieved (MAP), recall at
 * 100 and at n (capped at 1000).  Returns 0, and adds nothing, when no
 * judged document is relevant (the query is not evaluated); -1 when out
 * of memory; else 1. */
int ts_measure(const double *ranked, size_t n, const double *judged, size_t nj, ts_measures *sum);

/* ---- The synthetic corpus -------------------------------------------------
 *
 * A seeded corpus for speed alone (no qrels): a vocabulary of
 * TS_SYNTH_VOCAB pseudo-words (word r, 0-based, spells r + 20 in base 20
 * with the syllables ba bo da do ... ra ro, so frequent words are short:
 * "bada", "kolo", "nopaba"), drawn from a Zipf distribution with exponent
 * TS_SYNTH_ZIPF.  Document i has a title of 4..8 words and a text of
 * 50..300 words (uniform), generated from its own stream of the seed, so any
 * document can be regenerated alone and in any order.  Queries have 2..5
 * words drawn from the same Zipf distribution restricted to ranks >= 100
 * (the 100 most frequent words act as stopwords would: every document holds
 * several of them).  Document ids are the decimal numbers "0", "1", ... */

#define TS_SYNTH_VOCAB 100000
#define TS_SYNTH_ZIPF 1.07
#define TS_SYNTH_TEXT_MAX 4096 /* bytes of a generated title or text, with its NUL */

typedef struct ts_synth ts_synth;

/* A generator of n documents.  Returns TS_OK or TS_ENOMEM; release with
 * ts_synth_free(). */
int ts_synth_new(size_t n, uint64_t seed, ts_synth **out);
void ts_synth_free(ts_synth *g); /* accepts NULL */

/* Document i (< n): its title and text, NUL-terminated, into caller buffers
 * of TS_SYNTH_TEXT_MAX bytes; their lengths into *title_len and *text_len. */
void ts_synth_doc(const ts_synth *g, size_t i, char *title, size_t *title_len, char *text,
                  size_t *text_len);

/* Query j (any j): NUL-terminated into a buffer of TS_SYNTH_TEXT_MAX bytes;
 * returns its length. */
size_t ts_synth_query(const ts_synth *g, size_t j, char *buf);

#endif /* VS_TOOLS_TEXTSETS_H */
