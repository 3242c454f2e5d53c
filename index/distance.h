/*
 * distance.h: the vector distance kernels the engine uses for exact scans
 * and re-scoring, taken from FAISS (compiled for AVX2 where available)
 * through its C API rather than written again.
 */
#ifndef VS_INDEX_DISTANCE_H
#define VS_INDEX_DISTANCE_H

#include <stddef.h>

/* Squared L2 distance / inner product of q with ny vectors stored one after
 * another at y (ny x d), into out[ny]. */
void vs__l2sqr_ny(float *out, const float *q, const float *y, size_t d, size_t ny);
void vs__ip_ny(float *out, const float *q, const float *y, size_t d, size_t ny);
/* Squared L2 norm of x. */
float vs__norm_sqr(const float *x, size_t d);

#endif /* VS_INDEX_DISTANCE_H */
