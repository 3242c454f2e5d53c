/*
 * distance.c: see distance.h.  FAISS's kernels pick their SIMD width at
 * build time; calling them keeps one implementation of each distance.
 */
#include "index/distance.h"

#include <faiss/c_api/utils/distances_c.h>

void vs__l2sqr_ny(float *out, const float *q, const float *y, size_t d, size_t ny) {
  faiss_fvec_L2sqr_ny(out, q, y, d, ny);
}

void vs__ip_ny(float *out, const float *q, const float *y, size_t d, size_t ny) {
  faiss_fvec_inner_products_ny(out, q, y, d, ny);
}

float vs__norm_sqr(const float *x, size_t d) {
  return faiss_fvec_norm_L2sqr(x, d);
}
