/*
 * xapian_peer.cpp: Xapian behind a C interface (see xapian_peer.h for what
 * is configured and why).
 *
 * The handle owns the WritableDatabase documents are added to, the stemmer
 * and stopper the TermGenerator points at (they must outlive it), and, once
 * commit() has run, a read-only Database with one Enquire that every search
 * reuses (the BM25Weight is set once; set_query() per search).  Queries are
 * analysed by indexing their text into a scratch Document with the same
 * TermGenerator settings and reading its term list back, so a query term is
 * exactly what the same word became in a document.
 */
#include "bench/xapian_peer.h"

#include <xapian.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

/* Lucene's English stopword set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET),
 * the one vsearch's analyzer uses for "english" and "porter". */
const char *const lucene_english_stopwords[] = {
    "a",   "an",    "and",  "are",   "as",    "at",   "be",   "but", "by",  "for",  "if",
    "in",  "into",  "is",   "it",    "no",    "not",  "of",   "on",  "or",  "such", "that",
    "the", "their", "then", "there", "these", "they", "this", "to",  "was", "will", "with"};

void say(char *msg, size_t msgcap, const char *what, const std::string &why) {
  if (msg && msgcap)
    std::snprintf(msg, msgcap, "xapian %s: %s", what, why.c_str());
}

/* Run f; turn any exception into -1 and a message. */
template <typename F> int guard(const char *what, char *msg, size_t msgcap, F f) {
  try {
    f();
    return 0;
  } catch (const Xapian::Error &e) {
    say(msg, msgcap, what, e.get_description());
  } catch (const std::bad_alloc &) {
    say(msg, msgcap, what, "out of memory");
  } catch (const std::exception &e) {
    say(msg, msgcap, what, e.what());
  } catch (...) {
    say(msg, msgcap, what, "unknown exception");
  }
  return -1;
}

} // namespace

struct xapian_peer {
  std::string dir;
  xapian_peer_config cfg{};
  std::vector<std::string> prefixes; /* one per field */
  Xapian::WritableDatabase wdb;
  Xapian::Stem stem;
  Xapian::SimpleStopper stopper;
  Xapian::TermGenerator tg;
  /* searching, after commit() */
  std::unique_ptr<Xapian::Database> rdb;
  std::unique_ptr<Xapian::Enquire> enquire;
};

extern "C" int xapian_peer_create(const char *dir, const xapian_peer_config *cfg, xapian_peer **out,
                                  char *msg, size_t msgcap) {
  *out = nullptr;
  if (cfg->nfields < 1 || cfg->nfields > XAPIAN_PEER_FIELDS_MAX) {
    say(msg, msgcap, "create", "nfields must be 1.." + std::to_string(XAPIAN_PEER_FIELDS_MAX));
    return -1;
  }
  return guard("create", msg, msgcap, [&]() {
    std::unique_ptr<xapian_peer> p(new xapian_peer);
    std::string lang = cfg->language ? cfg->language : "english";
    int flags = Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS;

    if (!cfg->sync)
      flags |= Xapian::DB_NO_SYNC;
    p->dir = dir;
    p->cfg = *cfg;
    for (size_t f = 0; f < cfg->nfields; f++)
      p->prefixes.push_back(f == 0 ? std::string() : std::string("X") + char('A' + f - 1));
    p->stem = Xapian::Stem(lang); /* "none" is Xapian's no-op stemmer */
    if (lang == "english" || lang == "porter")
      for (const char *w : lucene_english_stopwords)
        p->stopper.add(w);
    p->tg.set_stemmer(p->stem);
    p->tg.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
    p->tg.set_stopper(&p->stopper);
    p->tg.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
    p->wdb = Xapian::WritableDatabase(dir, flags);
    *out = p.release();
  });
}

extern "C" int xapian_peer_add(xapian_peer *p, const char *id, size_t id_len,
                               const char *const *texts, const size_t *lens, const void *data,
                               size_t data_len, uint32_t *docid, char *msg, size_t msgcap) {
  return guard("add", msg, msgcap, [&]() {
    Xapian::Document doc;
    std::string idterm = "Q" + std::string(id, id_len);
    Xapian::docid d;

    p->tg.set_document(doc);
    for (size_t f = 0; f < p->cfg.nfields; f++)
      if (lens[f])
        p->tg.index_text_without_positions(std::string(texts[f], lens[f]), 1, p->prefixes[f]);
    doc.add_boolean_term(idterm);
    if (data_len)
      doc.set_data(std::string(static_cast<const char *>(data), data_len));
    d = p->wdb.replace_document(idterm, doc);
    if (docid)
      *docid = d;
  });
}

extern "C" int xapian_peer_commit(xapian_peer *p, char *msg, size_t msgcap) {
  return guard("commit", msg, msgcap, [&]() {
    const xapian_peer_config &c = p->cfg;

    p->wdb.commit();
    p->enquire.reset();
    p->rdb.reset(new Xapian::Database(p->dir));
    p->enquire.reset(new Xapian::Enquire(*p->rdb));
    p->enquire->set_weighting_scheme(Xapian::BM25Weight(c.k1, 0, 1, c.b, 0.5));
  });
}

extern "C" uint32_t xapian_peer_count(const xapian_peer *p) {
  try {
    return p->rdb ? p->rdb->get_doccount() : 0;
  } catch (...) {
    return 0;
  }
}

extern "C" int xapian_peer_search(xapian_peer *p, const char *query, size_t len, size_t k,
                                  uint32_t *docids, double *scores, size_t *n, char *msg,
                                  size_t msgcap) {
  *n = 0;
  if (!p->enquire) {
    say(msg, msgcap, "search", "no commit yet");
    return -1;
  }
  return guard("search", msg, msgcap, [&]() {
    Xapian::Document scratch;
    std::vector<Xapian::Query> leaves;
    Xapian::MSet mset;
    size_t got = 0;

    p->tg.set_document(scratch);
    p->tg.index_text_without_positions(std::string(query, len));
    for (auto t = scratch.termlist_begin(); t != scratch.termlist_end(); ++t) {
      Xapian::termcount times = t.get_wdf();
      for (const std::string &prefix : p->prefixes) {
        Xapian::Query leaf(prefix + *t);
        if (times > 1)
          leaf = Xapian::Query(Xapian::Query::OP_SCALE_WEIGHT, leaf, double(times));
        leaves.push_back(leaf);
      }
    }
    if (leaves.empty())
      return;
    p->enquire->set_query(Xapian::Query(Xapian::Query::OP_OR, leaves.begin(), leaves.end()));
    mset = p->enquire->get_mset(0, Xapian::doccount(k));
    for (auto it = mset.begin(); it != mset.end() && got < k; ++it, ++got) {
      docids[got] = *it;
      scores[got] = it.get_weight();
    }
    *n = got;
  });
}

extern "C" void xapian_peer_free(xapian_peer *p) {
  if (p == nullptr)
    return;
  try {
    p->enquire.reset();
    p->rdb.reset();
    p->wdb.close();
  } catch (...) {
    /* closing an uncommitted database discards it: nothing to report */
  }
  delete p;
}
