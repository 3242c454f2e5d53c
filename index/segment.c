/*
 * segment.c: building, searching, writing and reading sealed segments (see
 * segment.h for the id mapping and the MIPS reduction).
 *
 * File format, version 1 (native byte order, little-endian hosts only):
 *   char[8] magic "VSSEG01\n"
 *   u32 dim, u32 n, u32 flags (1 ip, 2 mips, 4 approximate), u32 spec length
 *   spec bytes
 *   u64 pids[n], ascending
 *   the FAISS index, as faiss_write_index() writes it
 */
#include "index/segment.h"

#include <errno.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char magic[8] = {'V', 'S', 'S', 'E', 'G', '0', '1', '\n'};

enum { F_IP = 1, F_MIPS = 2, F_APPROX = 4 };

/* HNSW construction quality: hnswlib's common setting, and the default
 * search breadth when a query names none. */
#define EF_CONSTRUCTION 200
#define EF_SEARCH 64

void vs__segment_free(vs__segment *s) {
  if (s == NULL)
    return;
  if (s->index)
    faiss_Index_free(s->index);
  free(s->pids);
  free(s->spec);
  free(s);
}

static int is_hnsw(const char *spec) {
  return strncmp(spec, "HNSW", 4) == 0;
}

/* x' = (x, sqrt(M^2 - |x|^2)) for every row. */
static float *mips_lift(const float *x, uint32_t n, uint32_t dim) {
  float *y = malloc(((size_t)n * (dim + 1) + 1) * sizeof(float));
  double maxsq = 0;

  if (y == NULL)
    return NULL;
  for (uint32_t i = 0; i < n; i++) {
    double sq = 0;
    for (uint32_t j = 0; j < dim; j++)
      sq += (double)x[(size_t)i * dim + j] * x[(size_t)i * dim + j];
    if (sq > maxsq)
      maxsq = sq;
  }
  for (uint32_t i = 0; i < n; i++) {
    const float *xi = x + (size_t)i * dim;
    float *yi = y + (size_t)i * (dim + 1);
    double sq = 0;

    for (uint32_t j = 0; j < dim; j++) {
      yi[j] = xi[j];
      sq += (double)xi[j] * xi[j];
    }
    yi[dim] = (float)sqrt(maxsq - sq > 0 ? maxsq - sq : 0);
  }
  return y;
}

static int make_index(const char *spec, uint32_t d, int metric_ip, FaissIndex **out, char *msg,
                      size_t msgcap) {
  if (faiss_index_factory(out, (int)d, spec, metric_ip ? METRIC_INNER_PRODUCT : METRIC_L2)) {
    snprintf(msg, msgcap, "index spec '%s': %s", spec, faiss_get_last_error());
    return -1;
  }
  vs__faiss_tune(*out, EF_CONSTRUCTION, EF_SEARCH, 0);
  return 0;
}

int vs__segment_build(const char *spec, int ip, uint32_t dim, const float *x, const uint64_t *pids,
                      uint32_t n, int threads, vs__segment **out, char *msg, size_t msgcap) {
  vs__segment *s = calloc(1, sizeof(*s));
  float *lifted = NULL;
  const float *data = x;
  uint32_t d = dim;
  int64_t ntrain;

  *out = NULL;
  if (s == NULL)
    goto nomem;
  s->n = n;
  s->dim = dim;
  s->ip = ip;
  s->mips = ip && is_hnsw(spec);
  s->pids = malloc((n ? n : 1) * sizeof(uint64_t));
  s->spec = strdup(spec);
  if (s->pids == NULL || s->spec == NULL)
    goto nomem;
  memcpy(s->pids, pids, (size_t)n * sizeof(uint64_t));
  if (s->mips) {
    lifted = mips_lift(x, n, dim);
    if (lifted == NULL)
      goto nomem;
    data = lifted;
    d = dim + 1;
  }
  if (make_index(spec, d, ip && !s->mips, &s->index, msg, msgcap))
    goto fail;
  /* Train on at most 256 points per list/centroid budget FAISS would use. */
  ntrain = n < 100000 ? n : 100000;
  if (vs__faiss_build(s->index, n, data, ntrain, data, threads, msg, msgcap)) {
    /* Too few points to train this spec: an exact segment instead. */
    faiss_Index_free(s->index);
    s->index = NULL;
    free(s->spec);
    s->spec = strdup("Flat");
    if (s->spec == NULL || make_index("Flat", d, ip && !s->mips, &s->index, msg, msgcap) ||
        vs__faiss_build(s->index, n, data, 0, NULL, threads, msg, msgcap))
      goto fail;
  }
  s->caps = vs__faiss_caps(s->index);
  s->approximate = !(s->caps & VS__FAISS_EXACT);
  free(lifted);
  *out = s;
  return 0;

nomem:
  snprintf(msg, msgcap, "out of memory building a segment of %u points", n);
fail:
  free(lifted);
  vs__segment_free(s);
  return -1;
}

int vs__segment_search(const vs__segment *s, const float *q, int64_t nq, int64_t k,
                       const vs__faiss_params *p, float *dist, int64_t *labels, char *msg,
                       size_t msgcap) {
  float *lifted;
  int rc;

  if (!s->mips)
    return vs__faiss_search(s->index, nq, q, k, p, dist, labels, msg, msgcap);
  lifted = malloc((size_t)nq * (s->dim + 1) * sizeof(float));
  if (lifted == NULL) {
    snprintf(msg, msgcap, "out of memory");
    return -1;
  }
  for (int64_t i = 0; i < nq; i++) {
    memcpy(lifted + i * (s->dim + 1), q + i * s->dim, s->dim * sizeof(float));
    lifted[i * (s->dim + 1) + s->dim] = 0;
  }
  rc = vs__faiss_search(s->index, nq, lifted, k, p, dist, labels, msg, msgcap);
  free(lifted);
  return rc;
}

int64_t vs__segment_find(const vs__segment *s, uint64_t pid) {
  uint32_t lo = 0, hi = s->n;

  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (s->pids[mid] < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n && s->pids[lo] == pid ? (int64_t)lo : -1;
}

static int fsync_dir_of(const char *path) {
  char *copy = strdup(path);
  int fd, rc = -1;

  if (copy == NULL)
    return -1;
  fd = open(dirname(copy), O_RDONLY);
  if (fd >= 0) {
    rc = fsync(fd);
    close(fd);
  }
  free(copy);
  return rc;
}

int vs__segment_write(const vs__segment *s, const char *path, char *msg, size_t msgcap) {
  char tmp[4096];
  uint32_t head[4];
  FILE *f;

  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (f == NULL) {
    snprintf(msg, msgcap, "create %s: %s", tmp, strerror(errno));
    return -1;
  }
  head[0] = s->dim;
  head[1] = s->n;
  head[2] = (s->ip ? F_IP : 0) | (s->mips ? F_MIPS : 0) | (s->approximate ? F_APPROX : 0);
  head[3] = (uint32_t)strlen(s->spec);
  if (fwrite(magic, 1, sizeof(magic), f) != sizeof(magic) ||
      fwrite(head, sizeof(head), 1, f) != 1 || fwrite(s->spec, 1, head[3], f) != head[3] ||
      fwrite(s->pids, sizeof(uint64_t), s->n, f) != s->n || faiss_write_index(s->index, f) ||
      fflush(f) || fsync(fileno(f))) {
    snprintf(msg, msgcap, "write %s: %s", tmp, strerror(errno));
    fclose(f);
    unlink(tmp);
    return -1;
  }
  if (fclose(f) || rename(tmp, path) || fsync_dir_of(path)) {
    snprintf(msg, msgcap, "install %s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

int vs__segment_read(const char *path, vs__segment **out, char *msg, size_t msgcap) {
  vs__segment *s = calloc(1, sizeof(*s));
  char m[sizeof(magic)];
  uint32_t head[4];
  long size;
  FILE *f;

  *out = NULL;
  f = fopen(path, "rb");
  if (s == NULL || f == NULL) {
    snprintf(msg, msgcap, "open %s: %s", path, s ? strerror(errno) : "out of memory");
    goto fail;
  }
  if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
      fread(m, 1, sizeof(m), f) != sizeof(m) || memcmp(m, magic, sizeof(m)) != 0 ||
      fread(head, sizeof(head), 1, f) != 1) {
    snprintf(msg, msgcap, "%s is not a vsearch segment file", path);
    goto fail;
  }
  /* Sizes come from disk: check them against the file before allocating. */
  if (head[0] == 0 || head[0] > 32768 || head[3] == 0 || head[3] > 127 ||
      (uint64_t)head[1] * 8 + head[3] > (uint64_t)size) {
    snprintf(msg, msgcap, "%s has an invalid header", path);
    goto fail;
  }
  s->dim = head[0];
  s->n = head[1];
  s->ip = !!(head[2] & F_IP);
  s->mips = !!(head[2] & F_MIPS);
  s->approximate = !!(head[2] & F_APPROX);
  s->spec = calloc(1, head[3] + 1);
  s->pids = malloc((s->n ? s->n : 1) * sizeof(uint64_t));
  if (s->spec == NULL || s->pids == NULL) {
    snprintf(msg, msgcap, "out of memory reading %s", path);
    goto fail;
  }
  if (fread(s->spec, 1, head[3], f) != head[3] ||
      fread(s->pids, sizeof(uint64_t), s->n, f) != s->n) {
    snprintf(msg, msgcap, "%s is truncated", path);
    goto fail;
  }
  for (uint32_t i = 1; i < s->n; i++)
    if (s->pids[i] <= s->pids[i - 1]) {
      snprintf(msg, msgcap, "%s: pids are not ascending", path);
      goto fail;
    }
  if (faiss_read_index(f, 0, &s->index)) {
    snprintf(msg, msgcap, "%s: %s", path, faiss_get_last_error());
    goto fail;
  }
  if (faiss_Index_ntotal(s->index) != (int64_t)s->n ||
      faiss_Index_d(s->index) != (int)(s->dim + (s->mips ? 1 : 0))) {
    snprintf(msg, msgcap, "%s: the index does not match its header", path);
    goto fail;
  }
  s->caps = vs__faiss_caps(s->index);
  s->approximate = !(s->caps & VS__FAISS_EXACT); /* from the index itself, not the header */
  fclose(f);
  *out = s;
  return 0;

fail:
  if (f)
    fclose(f);
  vs__segment_free(s);
  return -1;
}
