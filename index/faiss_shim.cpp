/*
 * faiss_shim.cpp: the one C++ file of vsearch (see faiss_shim.h).
 *
 * FAISS 1.7.3 takes per-query settings through SearchParameters objects
 * whose type must match the index: SearchParametersHNSW for IndexHNSW*,
 * SearchParametersIVF for IndexIVF* (except the fast-scan family, which
 * throws on any parameters), and the base SearchParameters (only an
 * IDSelector) for the flat and scalar-quantizer indexes.  The shim picks the
 * right one by dynamic_cast and passes an IDSelector that calls back into C.
 *
 * OpenMP: FAISS opens a parallel region even for one query.  The caller
 * says how many threads a call may use; omp_set_num_threads() changes only
 * the calling thread's setting, so concurrent callers do not interfere, and
 * the setting is restored when the call returns.
 */
#include "index/faiss_shim.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

#include <cstdio>
#include <exception>
#include <mutex>

namespace {

struct CallbackSelector : faiss::IDSelector {
  vs__faiss_keep_fn keep;
  const void *ctx;
  CallbackSelector(vs__faiss_keep_fn k, const void *c) : keep(k), ctx(c) {}
  bool is_member(faiss::Index::idx_t id) const override {
    return keep(ctx, id) != 0;
  }
};

const faiss::Index *idx(const FaissIndex *p) {
  return reinterpret_cast<const faiss::Index *>(p);
}

faiss::Index *idx(FaissIndex *p) {
  return reinterpret_cast<faiss::Index *>(p);
}

/* Set the calling thread's OpenMP team size for one call and put the old
 * one back after it: omp_set_num_threads() lasts for the thread's life, and
 * the thread is the embedding program's. */
struct ThreadScope {
  int saved;
  explicit ThreadScope(int threads) : saved(omp_get_max_threads()) {
    if (threads > 0)
      omp_set_num_threads(threads);
  }
  ~ThreadScope() {
    omp_set_num_threads(saved);
  }
  ThreadScope(const ThreadScope &) = delete;
  ThreadScope &operator=(const ThreadScope &) = delete;
};

} // namespace

/* Does the index compute its distances on the vectors as added (no codes,
 * no transform)?  Then its distances are exact scores. */
static bool exact_distances(const faiss::Index *i) {
  if (dynamic_cast<const faiss::IndexFlat *>(i) || dynamic_cast<const faiss::IndexIVFFlat *>(i))
    return true;
  auto *h = dynamic_cast<const faiss::IndexHNSW *>(i);
  return h && dynamic_cast<const faiss::IndexFlat *>(h->storage) != nullptr;
}

extern "C" unsigned vs__faiss_caps(const FaissIndex *index) {
  const faiss::Index *i = idx(index);
  unsigned exact = exact_distances(i) ? VS__FAISS_EXACT : 0;

  if (dynamic_cast<const faiss::IndexHNSW *>(i))
    return VS__FAISS_HNSW | VS__FAISS_SELECTOR | VS__FAISS_PARAMS | exact;
  if (dynamic_cast<const faiss::IndexIVFFastScan *>(i))
    return VS__FAISS_IVF; /* nprobe only through the index's own field */
  if (dynamic_cast<const faiss::IndexIVF *>(i))
    return VS__FAISS_IVF | VS__FAISS_SELECTOR | VS__FAISS_PARAMS | exact;
  if (dynamic_cast<const faiss::IndexFlat *>(i) ||
      dynamic_cast<const faiss::IndexScalarQuantizer *>(i))
    return VS__FAISS_SELECTOR | VS__FAISS_PARAMS | exact;
  return 0;
}

extern "C" int vs__faiss_search(const FaissIndex *index, int64_t n, const float *x, int64_t k,
                                const vs__faiss_params *p, float *dist, int64_t *labels, char *msg,
                                size_t msgcap) {
  try {
    const faiss::Index *i = idx(index);
    unsigned caps = p && p->caps ? p->caps : vs__faiss_caps(index); /* dynamic_casts */
    CallbackSelector sel(p && p->keep ? p->keep : nullptr, p ? p->keep_ctx : nullptr);
    faiss::IDSelector *selp = (p && p->keep && (caps & VS__FAISS_SELECTOR)) ? &sel : nullptr;
    faiss::SearchParametersHNSW hp;
    faiss::SearchParametersIVF ip;
    faiss::SearchParameters bp;
    const faiss::SearchParameters *params = nullptr;

    ThreadScope scope(p ? p->threads : 0);
    if ((caps & VS__FAISS_IVF) && !(caps & VS__FAISS_PARAMS)) {
      /* The fast-scan family refuses SearchParameters: set its nprobe field
       * for this call, one call at a time, and put it back. */
      static std::mutex lock;
      std::lock_guard<std::mutex> guard(lock);
      auto *ivf = const_cast<faiss::IndexIVF *>(dynamic_cast<const faiss::IndexIVF *>(i));
      size_t saved = ivf->nprobe;
      if (p && p->nprobe > 0)
        ivf->nprobe = (size_t)p->nprobe;
      try {
        i->search(n, x, k, dist, reinterpret_cast<faiss::Index::idx_t *>(labels), nullptr);
      } catch (...) {
        ivf->nprobe = saved;
        throw;
      }
      ivf->nprobe = saved;
      return 0;
    }
    if (caps & VS__FAISS_HNSW) {
      hp.efSearch =
          p && p->ef > 0 ? p->ef : dynamic_cast<const faiss::IndexHNSW *>(i)->hnsw.efSearch;
      hp.sel = selp;
      params = &hp;
    } else if ((caps & VS__FAISS_IVF) && (caps & VS__FAISS_PARAMS)) {
      ip.nprobe =
          p && p->nprobe > 0 ? (size_t)p->nprobe : dynamic_cast<const faiss::IndexIVF *>(i)->nprobe;
      ip.sel = selp;
      params = &ip;
    } else if ((caps & VS__FAISS_PARAMS) && selp) {
      bp.sel = selp;
      params = &bp;
    }
    i->search(n, x, k, dist, reinterpret_cast<faiss::Index::idx_t *>(labels), params);
    return 0;
  } catch (const std::exception &e) {
    std::snprintf(msg, msgcap, "FAISS search failed: %s", e.what());
  } catch (...) {
    std::snprintf(msg, msgcap, "FAISS search failed");
  }
  return -1;
}

extern "C" void vs__faiss_tune(FaissIndex *index, int ef_construction, int ef_search, int nprobe) {
  faiss::Index *i = idx(index);

  if (auto *h = dynamic_cast<faiss::IndexHNSW *>(i)) {
    if (ef_construction > 0)
      h->hnsw.efConstruction = ef_construction;
    if (ef_search > 0)
      h->hnsw.efSearch = ef_search;
  } else if (auto *v = dynamic_cast<faiss::IndexIVF *>(i)) {
    if (nprobe > 0)
      v->nprobe = (size_t)nprobe;
  }
}

extern "C" int vs__faiss_build(FaissIndex *index, int64_t n, const float *x, int64_t ntrain,
                               const float *xtrain, int threads, char *msg, size_t msgcap) {
  try {
    faiss::Index *i = idx(index);

    ThreadScope scope(threads);
    if (!i->is_trained)
      i->train(ntrain, xtrain);
    if (n > 0)
      i->add(n, x);
    return 0;
  } catch (const std::exception &e) {
    std::snprintf(msg, msgcap, "FAISS build failed: %s", e.what());
  } catch (...) {
    std::snprintf(msg, msgcap, "FAISS build failed");
  }
  return -1;
}
