/*
 * cmd_serve.c: `vsearch serve DIR [options]`, the MessagePack-RPC server.
 *
 * Parses the flags into a vs_server_config, reads the token file, sizes
 * libuv's thread pool (UV_THREADPOOL_SIZE must be set before the pool
 * starts, that is before the first uv_queue_work), opens the database
 * (creating it when missing) and runs server/loop.c until SIGINT or
 * SIGTERM; then it closes the database, so every acknowledged write is on
 * disk when the process exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/vsearch.h"
#include "server/server.h"
#include "tools/commands.h"

static int serve_usage(void) {
  fprintf(stderr, "usage: vsearch serve DIR [--listen HOST:PORT (127.0.0.1:7700; port 0 = any)]\n"
                  "         [--threads N] [--token-file F] [--no-sync] [--max-message BYTES]\n"
                  "         [--max-k N] [--max-points N] [--max-depth N] [--max-objects N]\n"
                  "         [--max-connections N] [--metrics-file PATH] [--idle-timeout S (300)]\n"
                  "         [--read-timeout S (30)] [--shutdown-timeout S (10)]\n"
                  "         [--max-batch N (32; 1 = no batching)] [--max-memory BYTES (1 GiB)]\n");
  return 2;
}

static int parse_u64(const char *flag, const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out) {
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "vsearch serve: %s wants an integer in %llu..%llu, not '%s'\n", flag, lo, hi,
            s);
    return -1;
  }
  *out = v;
  return 0;
}

/* HOST:PORT, [V6]:PORT.  `host` receives a copy of the address. */
static int parse_listen(const char *s, char *host, size_t cap, int *port) {
  const char *colon = strrchr(s, ':');
  const char *h = s;
  size_t hl;
  unsigned long long p;

  if (!colon)
    return -1;
  hl = (size_t)(colon - s);
  if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']')
    h = s + 1, hl -= 2;
  if (hl == 0 || hl >= cap)
    return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  if (parse_u64("--listen port", colon + 1, 0, 65535, &p))
    return -1;
  *port = (int)p;
  return 0;
}

/* Read the token: the file's first line, without trailing whitespace. */
static char *read_token(const char *path) {
  char buf[4096];
  size_t n;
  FILE *f = fopen(path, "rb");

  if (!f) {
    fprintf(stderr, "vsearch serve: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  buf[strcspn(buf, "\r\n")] = 0;
  n = strlen(buf);
  while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
    buf[--n] = 0;
  if (n == 0) {
    fprintf(stderr, "vsearch serve: %s: the token file is empty\n", path);
    return NULL;
  }
  return strdup(buf);
}

int cmd_serve(int argc, char **argv) {
  vs_open_options o = {VS_OPEN_CREATE, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_server_config cfg;
  char host[128] = "127.0.0.1", tbuf[16];
  char *token = NULL;
  const char *dir = NULL;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned long long v;
  vs_db *db = NULL;
  int rc;

  vs_server_config_init(&cfg);
  cfg.threads = ncpu > 0 ? (unsigned)ncpu : 4;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;

    if (a[0] != '-') {
      if (dir)
        return serve_usage();
      dir = a;
      continue;
    }
    if (!strcmp(a, "--no-sync")) {
      o.flags |= VS_OPEN_NOSYNC;
      continue;
    }
    if (!val)
      return serve_usage();
    i++;
    if (!strcmp(a, "--listen")) {
      if (parse_listen(val, host, sizeof host, &cfg.port)) {
        fprintf(stderr, "vsearch serve: --listen wants HOST:PORT, not '%s'\n", val);
        return 2;
      }
    } else if (!strcmp(a, "--threads")) {
      if (parse_u64(a, val, 1, 1024, &v))
        return 2;
      cfg.threads = (unsigned)v;
    } else if (!strcmp(a, "--token-file")) {
      free(token);
      if (!(token = read_token(val)))
        return 1;
    } else if (!strcmp(a, "--max-message")) {
      if (parse_u64(a, val, 1024, 1ull << 31, &v))
        return 2;
      cfg.max_message = (size_t)v;
    } else if (!strcmp(a, "--max-k")) {
      if (parse_u64(a, val, 1, VS_K_MAX, &v))
        return 2;
      cfg.max_k = (size_t)v;
    } else if (!strcmp(a, "--max-points")) {
      if (parse_u64(a, val, 1, 1000000, &v))
        return 2;
      cfg.max_points = (size_t)v;
    } else if (!strcmp(a, "--max-depth")) {
      /* msgpack-c's own decoder stack holds 32 levels. */
      if (parse_u64(a, val, 4, 32, &v))
        return 2;
      cfg.max_depth = (unsigned)v;
    } else if (!strcmp(a, "--max-objects")) {
      if (parse_u64(a, val, 1000, 1000000000, &v))
        return 2;
      cfg.max_objects = (size_t)v;
    } else if (!strcmp(a, "--metrics-file")) {
      /* Prometheus text, rewritten every second (via PATH.tmp). */
      cfg.metrics_file = val;
    } else if (!strcmp(a, "--idle-timeout")) {
      if (parse_u64(a, val, 1, 86400, &v))
        return 2;
      cfg.idle_timeout = (unsigned)v;
    } else if (!strcmp(a, "--read-timeout")) {
      if (parse_u64(a, val, 1, 3600, &v))
        return 2;
      cfg.read_timeout = (unsigned)v;
    } else if (!strcmp(a, "--shutdown-timeout")) {
      if (parse_u64(a, val, 1, 3600, &v))
        return 2;
      cfg.shutdown_timeout = (unsigned)v;
    } else if (!strcmp(a, "--max-memory")) {
      /* Read buffers and requests in flight, all connections together. */
      if (parse_u64(a, val, 1u << 20, 1ull << 40, &v))
        return 2;
      cfg.max_memory = (size_t)v;
    } else if (!strcmp(a, "--max-batch")) {
      /* Concurrent plain searches answered together (server/loop.c). */
      if (parse_u64(a, val, 1, VS_BATCH_MAX, &v))
        return 2;
      cfg.max_batch = (unsigned)v;
    } else if (!strcmp(a, "--max-connections")) {
      if (parse_u64(a, val, 1, 1000000, &v))
        return 2;
      cfg.max_connections = (unsigned)v;
    } else {
      fprintf(stderr, "vsearch serve: unknown option '%s'\n", a);
      return serve_usage();
    }
  }
  if (!dir) {
    free(token);
    return serve_usage();
  }
  cfg.host = host;
  cfg.token = token;
  /* libuv sizes its pool from the environment when the first work item is
   * queued, which happens inside vs_server_run(). */
  snprintf(tbuf, sizeof tbuf, "%u", cfg.threads);
  setenv("UV_THREADPOOL_SIZE", tbuf, 1);
  /* A client that disconnects mid-write must not kill the server. */
  signal(SIGPIPE, SIG_IGN);

  rc = vs_db_open(dir, &o, &db, &err);
  if (rc) {
    fprintf(stderr, "vsearch serve: %s: %s\n", dir, err.code ? err.message : vs_strerror(rc));
    free(token);
    return 1;
  }
  rc = vs_server_run(db, &cfg);
  vs_db_close(db);
  fprintf(stderr, "vsearch serve: database %s closed\n", dir);
  free(token);
  return rc ? 1 : 0;
}
