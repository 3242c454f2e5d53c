/*
 * xapian_peer.h: Xapian (Debian's libxapian-dev 1.4.22, C++) as plain C, for
 * `vsearch bench text` to run beside vsearch's BM25 on the same documents.
 *
 * Xapian is a mature C++ search library whose default ranking is BM25; the
 * benchmark measures it the way its users index and search, configured to be
 * as close to vsearch's analysis and scoring as Xapian allows:
 *
 *  analysis   Xapian::TermGenerator with the collection's Snowball stemmer
 *             (Xapian ships the same Snowball algorithms as libstemmer:
 *             "english" is Porter2, "porter" the original Porter), stemming
 *             strategy STEM_ALL (only stemmed terms, no "Z" prefix), a
 *             SimpleStopper holding Lucene's 33 English stopwords for
 *             "english" and "porter" (no stopwords for other languages) with
 *             stopper strategy STOP_ALL (a stopword is not indexed at all,
 *             so it does not count in the document length either), and no
 *             positions (BM25 does not use them; vsearch stores none).
 *             Xapian's tokenizer is its own (it keeps "C++" and "e.g."
 *             together, splits at different punctuation) and it skips words
 *             over 64 bytes.
 *  scoring    Xapian::BM25Weight(k1, k2 = 0, k3 = 1, b, min_normlen = 0.5):
 *             k1 and b as given; k2 = 0 disables Xapian's extra
 *             query-length correction; k3 and min_normlen are Xapian's
 *             defaults.  Two differences from Lucene's BM25 remain: Xapian's
 *             idf is ln((N - df + 0.5) / (df + 0.5)), raised for terms in
 *             more than a third of the documents (when that ratio is below 2
 *             it becomes ratio / 2 + 1), where Lucene has ln(1 + ratio); and
 *             a document shorter than half the average length is scored as
 *             if it were half the average length.
 *  queries    The query text goes through the same TermGenerator (so the
 *             same tokenizer, stopwords and stemmer as the documents); each
 *             distinct term becomes one leaf with wqf 1, scaled with
 *             OP_SCALE_WEIGHT by the number of times it occurs, and the
 *             leaves are OR'ed: a repeated query term counts linearly, as in
 *             Lucene and vsearch (with wqf 1, k3's saturation factor is 1).
 *             Not QueryParser: it would read AND, OR, NOT, quotes, + and - in
 *             the evaluation queries as operators.
 *  fields     Field 0 is indexed without a prefix, field i > 0 with the
 *             prefix "X" followed by the letter 'A' + i - 1; a query term
 *             searches every field and the scores add up.  Xapian 1.4 keeps
 *             one length per document (the sum over its fields), so the
 *             length normalisation of a multi-field document differs from
 *             vsearch's per-field lengths.
 *  documents  Each document also gets the boolean term "Q" + its external
 *             id and is written with replace_document(), Xapian's idiom for
 *             an upsert by id (as vsearch's upsert replaces a point with the
 *             same id), and stores caller-given data (the benchmark passes
 *             the document's text, as vsearch keeps its payload), so the two
 *             indexes hold the same things.
 *
 * The database is a glass database in a directory of the caller's; commit()
 * makes what was added durable (fsync unless created with sync = 0) and
 * searchable, through a read-only Xapian::Database opened on the directory.
 * Every C++ exception is caught at this boundary and turned into -1 and a
 * message.  A handle is used by one thread at a time.
 */
#ifndef VS_BENCH_XAPIAN_PEER_H
#define VS_BENCH_XAPIAN_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XAPIAN_PEER_FIELDS_MAX 8

typedef struct xapian_peer xapian_peer;

typedef struct xapian_peer_config {
  const char *language; /* a Xapian stemmer name ("english", "porter", ...) or "none" */
  double k1, b;         /* BM25 parameters */
  size_t nfields;       /* text fields per document, 1..XAPIAN_PEER_FIELDS_MAX */
  int sync;             /* nonzero: commit() fsyncs (Xapian's default) */
} xapian_peer_config;

/* Create an empty database in directory `dir` (created if missing; an
 * existing database there is overwritten).  On success *out is released
 * with xapian_peer_free().  Returns 0, or -1 with a message in msg (an
 * unknown stemmer, a directory that cannot be written). */
int xapian_peer_create(const char *dir, const xapian_peer_config *cfg, xapian_peer **out, char *msg,
                       size_t msgcap);

/* Add (or replace) the document with external id `id` (id_len bytes): its
 * cfg->nfields texts (texts[i] is lens[i] bytes of UTF-8; NULL with length
 * 0 for an empty field) and `data` (data_len bytes, stored, not indexed).
 * *docid (may be NULL) receives Xapian's document id: 1, 2, ... in the order
 * of first addition.  Returns 0, or -1 with a message. */
int xapian_peer_add(xapian_peer *p, const char *id, size_t id_len, const char *const *texts,
                    const size_t *lens, const void *data, size_t data_len, uint32_t *docid,
                    char *msg, size_t msgcap);

/* Commit what was added and (re)open the read-only database searches use.
 * Returns 0, or -1 with a message. */
int xapian_peer_commit(xapian_peer *p, char *msg, size_t msgcap);

/* Documents in the committed database. */
uint32_t xapian_peer_count(const xapian_peer *p);

/* The top k (>= 1) documents for the query text (len bytes), best first:
 * their docids and BM25 scores into caller-owned arrays of k; *n receives
 * how many (<= k; 0 when no term of the query is indexed).  Needs a
 * commit() first.  Returns 0, or -1 with a message. */
int xapian_peer_search(xapian_peer *p, const char *query, size_t len, size_t k, uint32_t *docids,
                       double *scores, size_t *n, char *msg, size_t msgcap);

/* Close the database and release the handle.  Accepts NULL. */
void xapian_peer_free(xapian_peer *p);

#ifdef __cplusplus
}
#endif

#endif /* VS_BENCH_XAPIAN_PEER_H */
