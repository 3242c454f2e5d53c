/*
 * hnswlib_peer.cpp: hnswlib behind a C interface (see hnswlib_peer.h).
 *
 * The handle owns the space (L2Space or InnerProductSpace) and the
 * HierarchicalNSW<float> built over it; the space must outlive the graph,
 * which keeps a pointer to its distance parameters.
 *
 * Parallel insertion: hnswlib's addPoint() is safe to call from several
 * threads at once for distinct labels (its Python binding does exactly
 * that), so hnswlib_peer_add() hands rows out through an atomic counter to
 * `threads` std::threads.  An exception in a worker is caught there, the
 * first message is kept, the other workers stop taking rows, and the call
 * returns -1 once they have all joined: no exception crosses a thread or
 * the extern "C" boundary.
 */
#include "bench/hnswlib_peer.h"

#include <cmath>
#include <fstream>
#include <unordered_map>

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

struct hnswlib_peer {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  size_t dim = 0;
};

namespace {

void say(char *msg, size_t msgcap, const char *what, const char *why) {
  if (msg && msgcap)
    std::snprintf(msg, msgcap, "hnswlib %s: %s", what, why);
}

} // namespace

extern "C" int hnswlib_peer_new(int ip, size_t dim, size_t max_elements, size_t m,
                                size_t ef_construction, hnswlib_peer **out, char *msg,
                                size_t msgcap) {
  *out = nullptr;
  try {
    std::unique_ptr<hnswlib_peer> p(new hnswlib_peer);

    p->dim = dim;
    if (ip)
      p->space.reset(new hnswlib::InnerProductSpace(dim));
    else
      p->space.reset(new hnswlib::L2Space(dim));
    p->graph.reset(
        new hnswlib::HierarchicalNSW<float>(p->space.get(), max_elements, m, ef_construction));
    *out = p.release();
    return 0;
  } catch (const std::exception &e) {
    say(msg, msgcap, "create", e.what());
  } catch (...) {
    say(msg, msgcap, "create", "unknown exception");
  }
  return -1;
}

extern "C" int hnswlib_peer_add(hnswlib_peer *p, const float *x, size_t n, size_t first_label,
                                int threads, char *msg, size_t msgcap) {
  std::atomic<size_t> next(0);
  std::atomic<bool> failed(false);
  std::mutex first_error;
  std::string error;

  auto work = [&]() {
    try {
      for (size_t i = next++; i < n && !failed; i = next++)
        p->graph->addPoint(x + i * p->dim, first_label + i);
    } catch (const std::exception &e) {
      std::lock_guard<std::mutex> g(first_error);
      if (!failed.exchange(true))
        error = e.what();
    } catch (...) {
      std::lock_guard<std::mutex> g(first_error);
      if (!failed.exchange(true))
        error = "unknown exception";
    }
  };

  try {
    std::vector<std::thread> pool;
    size_t nthreads = threads > 1 ? (size_t)threads : 1;

    /* Insert the first point alone: it becomes the entry point, and the
     * other threads then all start from a non-empty graph. */
    if (n > 0) {
      p->graph->addPoint(x, first_label);
      next = 1;
    }
    for (size_t t = 1; t < nthreads; t++)
      pool.emplace_back(work);
    work();
    for (auto &th : pool)
      th.join();
  } catch (const std::exception &e) {
    say(msg, msgcap, "add", e.what());
    return -1;
  } catch (...) {
    say(msg, msgcap, "add", "unknown exception");
    return -1;
  }
  if (failed) {
    say(msg, msgcap, "add", error.c_str());
    return -1;
  }
  return 0;
}

extern "C" void hnswlib_peer_set_ef(hnswlib_peer *p, size_t ef) {
  p->graph->setEf(ef);
}

extern "C" int hnswlib_peer_search(const hnswlib_peer *p, const float *q, size_t k, int64_t *labels,
                                   float *dist, size_t *n, char *msg, size_t msgcap) {
  *n = 0;
  try {
    /* searchKnn returns a max-heap: the worst result on top. */
    auto top = p->graph->searchKnn(q, k);
    size_t got = top.size();

    *n = got;
    while (!top.empty()) {
      got--;
      labels[got] = (int64_t)top.top().second;
      dist[got] = top.top().first;
      top.pop();
    }
    return 0;
  } catch (const std::exception &e) {
    say(msg, msgcap, "search", e.what());
  } catch (...) {
    say(msg, msgcap, "search", "unknown exception");
  }
  *n = 0;
  return -1;
}

extern "C" int hnswlib_peer_save(hnswlib_peer *p, const char *path, char *msg, size_t msgcap) {
  try {
    p->graph->saveIndex(path);
    return 0;
  } catch (const std::exception &e) {
    say(msg, msgcap, "save", e.what());
  } catch (...) {
    say(msg, msgcap, "save", "unknown exception");
  }
  return -1;
}

extern "C" void hnswlib_peer_free(hnswlib_peer *p) {
  delete p;
}
