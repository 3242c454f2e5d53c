/*
 * benchutil.c: the helpers the benchmark programs share (tools/benchutil.h):
 * the monotonic clock, the progress line, fatal errors and `rm -rf`.
 *
 * The progress line is the escape pair "\r\033[K" (carriage return, then
 * ANSI "erase in line" from the cursor to the end) followed by the text, so
 * each call overwrites the last; the callers decide once, with isatty(), if
 * stderr is a terminal that understands it.  bu_rmtree() walks the tree
 * depth first with nftw(), so that a directory is removed after what it
 * holds; nftw() hands its callback no context of its own, so the first
 * failure is kept in a thread-local variable for the duration of the walk.
 */
#include "tools/benchutil.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ERASE_LINE "\r\033[K"

double bu_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bu_progress(int on, const char *prefix, const char *fmt, ...) {
  va_list ap;

  if (!on)
    return;
  fputs(ERASE_LINE, stderr);
  if (prefix)
    fprintf(stderr, "%s: ", prefix);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fflush(stderr);
}

void bu_progress_done(int on) {
  if (on) {
    fputs(ERASE_LINE, stderr);
    fflush(stderr);
  }
}

void bu_die(int on, const char *prog, const char *what, const char *msg) {
  bu_progress_done(on);
  fprintf(stderr, "%s: %s: %s\n", prog, what, msg);
  exit(1);
}

/* errno of the walk's first failed removal, 0 while there is none. */
static _Thread_local int rm_errno;

/* nftw() callback: remove one entry (its contents are gone already, FTW_DEPTH).
 * An entry that has vanished meanwhile is not a failure; any other failure
 * is noted and the walk goes on. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  if (remove(path) != 0 && errno != ENOENT && rm_errno == 0)
    rm_errno = errno;
  return 0;
}

int bu_rmtree(const char *dir) {
  rm_errno = 0;
  /* 16 directories open at once at most; deeper trees are walked all the same. */
  if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT && rm_errno == 0)
    rm_errno = errno;
  if (rm_errno == 0)
    return 0;
  errno = rm_errno;
  return -1;
}

int bu_mkdtemp(const char *dir, const char *name, char *buf, size_t cap) {
  const char *parent = dir ? dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

  if (dir && mkdir(parent, 0755) && errno != EEXIST) {
    fprintf(stderr, "vsearch: create %s: %s\n", parent, strerror(errno));
    return -1;
  }
  snprintf(buf, cap, "%s/%s.XXXXXX", parent, name);
  if (mkdtemp(buf) == NULL) {
    fprintf(stderr, "vsearch: create %s: %s\n", buf, strerror(errno));
    return -1;
  }
  return 0;
}

int bu_parse_count(const char *opt, const char *val, size_t lo, size_t hi, size_t *out) {
  char *end;
  unsigned long long v;

  errno = 0;
  v = val ? strtoull(val, &end, 10) : 0;
  if (val == NULL || errno || end == val || *end || val[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "vsearch: %s must be an integer in %zu..%zu\n", opt, lo, hi);
    return -1;
  }
  *out = (size_t)v;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bu_sort(double *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_double);
}

double bu_percentile(const double *v, size_t n, double pct) {
  size_t r = (size_t)ceil(pct / 100.0 * (double)n);
  return v[r > 0 ? (r <= n ? r - 1 : n - 1) : 0];
}
