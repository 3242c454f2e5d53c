/*
 * server.h: the vsearch MessagePack-RPC server (DESIGN.md sections 5 and 6).
 *
 * One call, vs_server_run(), serves an open database over TCP until SIGINT
 * or SIGTERM.  A libuv loop thread accepts connections, reads bytes, finds
 * each message's end with the non-allocating scanner (engine/mpscan.h),
 * parses the envelope with msgpack-c, answers ping, auth and stats itself,
 * and hands every other request to libuv's thread pool (uv_queue_work).
 * Workers call the engine and encode the response; they never touch a
 * libuv handle.  The loop thread writes the response back.
 */
#ifndef VS_SERVER_SERVER_H
#define VS_SERVER_SERVER_H

#include <stddef.h>

#include "engine/vsearch.h"

/* What `vsearch serve` was asked for.  Strings are caller-owned and must
 * outlive vs_server_run(). */
typedef struct vs_server_config {
  const char *host;          /* IPv4 or IPv6 address to bind, e.g. "127.0.0.1" */
  int port;                  /* 0 = let the kernel pick one (printed on stdout) */
  const char *token;         /* NULL: no authentication; else the shared secret */
  size_t max_message;        /* bytes of one message (64 MiB) */
  size_t max_k;              /* k and candidate depths (10000) */
  size_t max_points;         /* points, ids or vectors per call (10000) */
  unsigned max_depth;        /* msgpack nesting (32) */
  size_t max_objects;        /* msgpack objects in one message (10,000,000: msgpack-c
                                allocates ~24 bytes each; a 10,000 x 768 upsert of
                                float arrays takes 7.7 million) */
  unsigned max_connections;  /* open connections (1024) */
  size_t max_memory;         /* bytes the connections' read buffers and requests in flight
                                may hold together (1 GiB; see server/loop.c) */
  unsigned idle_timeout;     /* seconds a connection may stay silent with nothing pending (300) */
  unsigned read_timeout;     /* seconds a partial message may wait for its next bytes (30) */
  unsigned shutdown_timeout; /* seconds a stopping server waits for clients that do not read
                                their answers before it closes them (10) */
  unsigned threads;          /* workers; only reported (UV_THREADPOOL_SIZE sets them) */
  unsigned max_batch;        /* concurrent plain searches answered together (32); 1: never */
  const char *metrics_file;  /* NULL, or where the Prometheus text metrics are written
                                every second and at shutdown (via PATH.tmp and a rename) */
} vs_server_config;

/* Fill `cfg` with the defaults of DESIGN.md section 5. */
void vs_server_config_init(vs_server_config *cfg);

/* Serve `db` until SIGINT or SIGTERM, then stop accepting, finish the
 * requests in flight, write their responses and return; the caller closes
 * the database.  The bound address is printed on stdout as one line
 * "listening on HOST:PORT" once the socket listens.  Events are logged to
 * stderr, one line each, without payload contents.  Returns VS_OK, or
 * VS_EINVAL / VS_EIO when the address cannot be parsed or bound.  Call it
 * from one thread at a time; UV_THREADPOOL_SIZE must be set before.  It
 * sets OpenBLAS to one thread for the whole process: the pool's workers
 * share the cores (see server/loop.c, "Dynamic batching"). */
int vs_server_run(vs_db *db, const vs_server_config *cfg);

#endif /* VS_SERVER_SERVER_H */
