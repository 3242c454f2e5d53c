/*
 * stats.c: per-method request counts, errors and latency percentiles.
 *
 * Only the loop thread touches these counters (it records each request as
 * its response is queued, and answers `stats`), so there is no locking.
 * Latencies go into a log-linear histogram of microseconds, as HdrHistogram
 * does: values below 8 us get a bucket each, and every power of two above
 * is split into 8 equal buckets, so a percentile read back from a bucket's
 * middle is within about 6% of the true value whatever the scale, in a
 * fixed 8 + 8 * 40 counters per method (up to about 12 days).  The exact
 * sum of the latencies is kept too, for the Prometheus summary's _sum.
 *
 * vs__stats_prometheus() writes the same numbers in the Prometheus text
 * exposition format (version 0.0.4): one family per metric, each with its
 * HELP and TYPE lines and all of its samples together, every known method
 * listed from the start (zero counts; NaN quantiles, as Prometheus's own
 * client libraries write an empty summary), and requests that named no
 * known method under method="(unknown)" once there are any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/rpc.h"

#define SUB 8 /* buckets per power of two */
#define EXP_MAX 40
#define NBUCKETS (SUB + SUB * EXP_MAX)

typedef struct mstats {
  uint64_t count, errors;
  uint64_t sum_ns; /* wraps after 584 years of latency */
  uint64_t buckets[NBUCKETS];
} mstats;

struct vs__stats {
  size_t n; /* methods, plus one slot for unknown ones */
  mstats *m;
};

vs__stats *vs__stats_new(size_t n_methods) {
  vs__stats *s = calloc(1, sizeof *s);

  if (!s)
    return NULL;
  s->n = n_methods + 1;
  s->m = calloc(s->n, sizeof *s->m);
  if (!s->m) {
    free(s);
    return NULL;
  }
  return s;
}

void vs__stats_free(vs__stats *s) {
  if (!s)
    return;
  free(s->m);
  free(s);
}

static unsigned bucket_of(uint64_t us) {
  unsigned e = 0;

  if (us < SUB)
    return (unsigned)us;
  while ((us >> e) >= 2 * SUB)
    e++;
  /* now us >> e is in [SUB, 2 * SUB) */
  if (e >= EXP_MAX)
    return NBUCKETS - 1;
  return SUB + e * SUB + (unsigned)((us >> e) - SUB);
}

/* The middle of bucket b, in microseconds. */
static double bucket_mid(unsigned b) {
  unsigned e, sub;

  if (b < SUB)
    return b + 0.5;
  e = (b - SUB) / SUB;
  sub = (b - SUB) % SUB;
  return ((double)(SUB + sub) + 0.5) * (double)(1ull << e);
}

void vs__stats_record(vs__stats *s, size_t m, uint64_t ns, int failed) {
  mstats *t;

  if (!s)
    return;
  t = &s->m[m < s->n ? m : s->n - 1];
  t->count++;
  t->errors += failed != 0;
  t->sum_ns += ns;
  t->buckets[bucket_of(ns / 1000)]++;
}

static double quantile_ms(const mstats *t, double q) {
  uint64_t want, seen = 0;

  if (t->count == 0)
    return 0;
  want = (uint64_t)(q * (double)t->count);
  if (want < 1)
    want = 1;
  for (unsigned b = 0; b < NBUCKETS; b++) {
    seen += t->buckets[b];
    if (seen >= want)
      return bucket_mid(b) / 1000.0;
  }
  return bucket_mid(NBUCKETS - 1) / 1000.0;
}

static void pack_key(msgpack_packer *pk, const char *k) {
  vs__pack_cstr(pk, k);
}

size_t vs__stats_pack(const vs__stats *s, msgpack_packer *pk) {
  uint64_t req = 0, err = 0;
  size_t used = 0;

  if (!pk)
    return 3;
  for (size_t i = 0; i < s->n; i++) {
    req += s->m[i].count;
    err += s->m[i].errors;
    used += s->m[i].count > 0;
  }
  pack_key(pk, "requests");
  msgpack_pack_uint64(pk, req);
  pack_key(pk, "errors");
  msgpack_pack_uint64(pk, err);
  pack_key(pk, "methods");
  msgpack_pack_map(pk, used);
  for (size_t i = 0; i < s->n; i++) {
    const mstats *t = &s->m[i];

    if (!t->count)
      continue;
    pack_key(pk, i + 1 < s->n ? vs__methods[i].name : "(unknown)");
    msgpack_pack_map(pk, 5);
    pack_key(pk, "count");
    msgpack_pack_uint64(pk, t->count);
    pack_key(pk, "errors");
    msgpack_pack_uint64(pk, t->errors);
    pack_key(pk, "p50_ms");
    msgpack_pack_double(pk, quantile_ms(t, 0.50));
    pack_key(pk, "p99_ms");
    msgpack_pack_double(pk, quantile_ms(t, 0.99));
    pack_key(pk, "p999_ms");
    msgpack_pack_double(pk, quantile_ms(t, 0.999));
  }
  return 3;
}

/* The name a method's series carry. */
static const char *method_label(const vs__stats *s, size_t i) {
  return i + 1 < s->n ? vs__methods[i].name : "(unknown)";
}

/* Whether method slot i gets series: every known method, and the unknown
 * slot once a request landed there. */
static int listed(const vs__stats *s, size_t i) {
  return i + 1 < s->n || s->m[i].count > 0;
}

int vs__stats_prometheus(const vs__stats *s, FILE *f) {
  static const struct {
    const char *label;
    double q;
  } qs[] = {{"0.5", 0.50}, {"0.99", 0.99}, {"0.999", 0.999}};

  fputs("# HELP vsearch_requests_total Requests answered, by method.\n"
        "# TYPE vsearch_requests_total counter\n",
        f);
  for (size_t i = 0; i < s->n; i++)
    if (listed(s, i))
      fprintf(f, "vsearch_requests_total{method=\"%s\"} %llu\n", method_label(s, i),
              (unsigned long long)s->m[i].count);
  fputs("# HELP vsearch_errors_total Requests answered with an error, by method.\n"
        "# TYPE vsearch_errors_total counter\n",
        f);
  for (size_t i = 0; i < s->n; i++)
    if (listed(s, i))
      fprintf(f, "vsearch_errors_total{method=\"%s\"} %llu\n", method_label(s, i),
              (unsigned long long)s->m[i].errors);
  fputs("# HELP vsearch_request_latency_ms Request latency in milliseconds, from the message "
        "being framed to its response being queued, by method.\n"
        "# TYPE vsearch_request_latency_ms summary\n",
        f);
  for (size_t i = 0; i < s->n; i++) {
    const mstats *t = &s->m[i];
    const char *name = method_label(s, i);

    if (!listed(s, i))
      continue;
    for (size_t j = 0; j < sizeof qs / sizeof qs[0]; j++) {
      if (t->count)
        fprintf(f, "vsearch_request_latency_ms{method=\"%s\",quantile=\"%s\"} %.6g\n", name,
                qs[j].label, quantile_ms(t, qs[j].q));
      else
        fprintf(f, "vsearch_request_latency_ms{method=\"%s\",quantile=\"%s\"} NaN\n", name,
                qs[j].label);
    }
    fprintf(f, "vsearch_request_latency_ms_sum{method=\"%s\"} %.6f\n", name,
            (double)t->sum_ns / 1e6);
    fprintf(f, "vsearch_request_latency_ms_count{method=\"%s\"} %llu\n", name,
            (unsigned long long)t->count);
  }
  return ferror(f) ? -1 : 0;
}
