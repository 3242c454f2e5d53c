/*
 * benchutil.h: the small helpers that every benchmark program shares --
 * `vsearch bench ann` and `bench text` (tools/cmd_bench*.c) and the
 * stand-alone programs in bench/: a monotonic clock, the one-line progress
 * display on stderr, fatal errors and removing a temporary directory tree.
 *
 * The progress line is drawn only when the caller says so (`on`, which the
 * programs set to isatty(STDERR_FILENO) once): each call starts with a
 * carriage return and "erase to end of line", so the next call overwrites
 * it, and bu_progress_done() leaves the line empty for ordinary output.
 * Everything here writes to stderr only.  These are for tools: bu_die()
 * exits the process, which library code never does.
 */
#ifndef VS_TOOLS_BENCHUTIL_H
#define VS_TOOLS_BENCHUTIL_H

#include <stddef.h>

/* Seconds on CLOCK_MONOTONIC, for measuring intervals: subtract two readings.
 * Thread-safe. */
double bu_now(void);

/* When `on`, replace the progress line on stderr with "PREFIX: " (nothing
 * when prefix is NULL) followed by the printf-style fmt and its arguments, no
 * newline, and flush.  When not `on`, do nothing (the arguments are still
 * evaluated). */
void bu_progress(int on, const char *prefix, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* When `on`, erase the progress line, leaving the cursor at its start, and
 * flush.  Call it before printing anything else. */
void bu_progress_done(int on);

/* Print "PROG: WHAT: MSG" and a newline on stderr, after erasing the
 * progress line when `on`, and exit(1).  All three strings must be non-NULL;
 * they are only read. */
_Noreturn void bu_die(int on, const char *prog, const char *what, const char *msg);

/* Remove dir and everything under it, without following symbolic links
 * (like `rm -rf`).  It goes on past an entry it cannot remove, to remove
 * as much as it can.  Returns 0 when nothing of the tree is left (a dir that
 * does not exist is not an error), else -1 with errno set to the first
 * failure's.  Prints nothing.  Thread-safe (the first failure is kept per
 * thread). */
int bu_rmtree(const char *dir);

/* Parse option `opt`'s value `val` (NULL: missing) as a decimal integer in
 * lo..hi into *out; returns 0, or -1 after printing "vsearch: OPT must be an
 * integer in LO..HI" to stderr. */
int bu_parse_count(const char *opt, const char *val, size_t lo, size_t hi, size_t *out);

/* Sort v[0..n) ascending. */
void bu_sort(double *v, size_t n);
/* The nearest-rank percentile pct (0..100) of sorted v[0..n), n > 0. */
double bu_percentile(const double *v, size_t n, double pct);

/* Make a fresh directory "<parent>/<name>.XXXXXX" in buf (cap bytes), where
 * parent is `dir` (made if missing) or else $TMPDIR or /tmp.  Returns 0, or
 * -1 after printing "vsearch: create PATH: reason" to stderr. */
int bu_mkdtemp(const char *dir, const char *name, char *buf, size_t cap);

#endif /* VS_TOOLS_BENCHUTIL_H */
