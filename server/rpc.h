/*
 * rpc.h: what the server's modules share (internal to server/).
 *
 * A request's life: the loop thread (loop.c) scans and parses the envelope
 * [0, msgid, method, params] and looks the method up in vs__methods
 * (methods.c).  A worker then runs the method's function on a vs__call:
 * the named arguments (the one map in params), a scratch zone freed with
 * the request, and a packer that receives the result.  A method returns
 * VS_OK with exactly one object packed, or a negative VS_E* status with
 * c->err saying why; then whatever it packed is discarded and the error
 * {"code": vs_err_wire(status), "message": ...} goes on the wire instead.
 * The argument helpers (args.c) turn msgpack objects into engine types and
 * enforce the serve limits; every one of them returns a status the same way.
 */
#ifndef VS_SERVER_RPC_H
#define VS_SERVER_RPC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/vsearch.h"
#include "server/server.h"

typedef struct vs__call {
  vs_db *db;
  const vs_server_config *cfg;
  const char *method;         /* the method's name, for messages */
  const msgpack_object *args; /* the map of named arguments, NULL when none */
  msgpack_zone *zone;         /* scratch memory, freed with the request */
  msgpack_packer *pk;         /* the result is packed here */
  vs_error err;               /* why the call failed */
} vs__call;

typedef int (*vs__method_fn)(vs__call *c);

/* Where a method runs. */
enum {
  VS__ON_WORKER = 0, /* on the thread pool: everything that touches the database */
  VS__ON_LOOP = 1,   /* on the loop thread (ping, auth, stats): cheap, no database */
};

typedef struct vs__method {
  const char *name;
  vs__method_fn fn; /* NULL for the loop-thread methods, which loop.c answers */
  int where;        /* VS__ON_* */
  const char *args; /* the argument names it accepts, space separated */
  /* Only reads: not run at all when its connection has closed before a
   * worker picks it up (nobody would read the answer).  Writes always run. */
  int reads_only;
} vs__method;

/* The method table (methods.c), vs__n_methods entries. */
extern const vs__method vs__methods[];
extern const size_t vs__n_methods;

/* The entry named by `len` bytes at `name`, or NULL. */
const vs__method *vs__method_find(const char *name, size_t len);

/* ---- requests (loop.c) ------------------------------------------------ */

/* One request's envelope [0, msgid, method, params], or a notification's
 * [2, method, params] (run the same way, its answer never sent), pointing
 * into the decoded message (it lives as long as the msgpack_unpacked). */
typedef struct vs__request {
  int notify;                   /* a notification: no response */
  uint32_t msgid;               /* 0 when none could be read (and for notifications) */
  const char *name;             /* the method's name, not NUL-terminated */
  size_t name_len;              /* its length in bytes */
  const vs__method *m;          /* NULL for an unknown method */
  const msgpack_object *params; /* the params array */
  const msgpack_object *args;   /* set by vs__request_args: the map, or NULL */
} vs__request;

/* Decode one message of `n` bytes that vs__mp_scan_budget() framed (so no
 * declared size exceeds the bytes present) into `msg`, which the caller
 * initialised and destroys, and check the envelope.  Returns VS_OK; or
 * VS_EINVAL / VS_ETOOLARGE with err set when the message is not
 * MessagePack-RPC, a protocol error that gets an error response with
 * rq->msgid (0 when none was readable) before the connection drains.
 * No connection or database needed; thread-safe on distinct arguments. */
int vs__request_parse(msgpack_unpacked *msg, const uint8_t *p, size_t n, vs__request *rq,
                      vs_error *err);

/* The second half of the envelope check, answered on an open connection:
 * VS_EMETHOD for an unknown method, VS_EINVAL when params is not [] or
 * [{named arguments}] ([nil] counts as []); on VS_OK rq->args is set. */
int vs__request_args(vs__request *rq, vs_error *err);

/* Run worker method `m` as a worker thread does: check its argument names,
 * call it, and pack the whole response [1, msgid, error, result] into
 * `out`.  `zone` is the request's scratch memory.  Returns the method's
 * status.  With db NULL a method decodes all of its arguments and fails
 * VS_EINVAL at the engine's handle check at the latest: the fuzz target
 * tests/fuzz_rpc.c relies on that to decode requests without a database. */
int vs__request_run(vs_db *db, const vs_server_config *cfg, const vs__method *m, uint32_t msgid,
                    const msgpack_object *args, msgpack_zone *zone, msgpack_sbuffer *out);

/* A `search` request that can join a batch of concurrent searches. */
typedef struct vs__plain_search {
  const char *name;   /* the collection, in the zone */
  vs_search_params p; /* vector in the zone; no filter, exclusions or exact */
} vs__plain_search;

/* Decode the arguments of a `search` call whose names vs__args_check()
 * accepted: 1 when it is a plain search that decodes cleanly (then *ps is
 * set), 0 when it must run alone: a filter, exclusions or an exact scan,
 * or an argument it would refuse (running alone answers that error). */
int vs__search_plain(vs__call *c, vs__plain_search *ps);

/* One request of a batch for vs__request_run_batch(): what
 * vs__request_run() takes, and its status back. */
typedef struct vs__batch_item {
  const vs__method *m; /* `search` */
  uint32_t msgid;
  const msgpack_object *args;
  msgpack_zone *zone;
  msgpack_sbuffer *out;
  int rc;
} vs__batch_item;

/* Run n `search` requests as vs__request_run() would, answering the plain
 * ones of one collection and shape together with one vs_search_batch()
 * (on the calling thread's OpenMP setting).  Returns how many were
 * answered that way (0 or at least 2). */
size_t vs__request_run_batch(vs_db *db, const vs_server_config *cfg, vs__batch_item *items,
                             size_t n);

/* ---- argument helpers (args.c) ---------------------------------------- */

/* Record an error (the first one wins) and return `code`. */
int vs__fail(vs__call *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Refuse arguments that `m` does not accept and keys that appear twice. */
int vs__args_check(vs__call *c, const char *accepted);

/* The argument `name`, or NULL when it is absent or nil. */
const msgpack_object *vs__arg(const vs__call *c, const char *name);

/* A string argument copied NUL-terminated into the zone; *out = `def` when
 * absent (VS_EINVAL when required and absent). */
int vs__arg_str(vs__call *c, const char *name, int required, const char *def, const char **out);
/* A string object copied NUL-terminated into the zone. */
int vs__obj_str(vs__call *c, const char *what, const msgpack_object *o, const char **out);
/* An unsigned integer in [lo, hi]; over `toolarge` (when nonzero) gives
 * VS_ETOOLARGE rather than VS_EINVAL. */
int vs__arg_uint(vs__call *c, const char *name, uint64_t def, uint64_t lo, uint64_t hi,
                 int toolarge, uint64_t *out);
int vs__arg_bool(vs__call *c, const char *name, int def, int *out);
/* Any finite number (integer or float). */
int vs__arg_double(vs__call *c, const char *name, double def, double *out);
int vs__obj_double(vs__call *c, const char *what, const msgpack_object *o, double *out);

/* An id: an integer in 0..2^63-1 or a string of 1..VS_ID_MAX bytes (the
 * string points into the message, which outlives the call). */
int vs__obj_id(vs__call *c, const char *what, const msgpack_object *o, vs_id *out);
/* An array of at most `max` ids, in the zone. */
int vs__obj_ids(vs__call *c, const char *what, const msgpack_object *o, size_t max, vs_id **ids,
                size_t *n);
/* A vector: bin of little-endian float32 or an array of numbers, decoded
 * into the zone (aligned).  NaN and infinities pass; the engine refuses
 * them with a message naming the component. */
int vs__obj_vector(vs__call *c, const char *what, const msgpack_object *o, float **v, size_t *dim);
/* Is `o` shaped like a vector (bin, or an array)? */
int vs__obj_is_vector(const msgpack_object *o);

/* Pack object `o` (a map) into fresh bytes in the zone. */
int vs__obj_bytes(vs__call *c, const char *what, const msgpack_object *o, const void **p,
                  size_t *len);

/* The `filter` argument parsed (NULL when absent); free with vs_filter_free. */
int vs__arg_filter(vs__call *c, vs_filter **out);
/* `with_payload` (false, true or [fields]) and `with_vector` into VS_GET_*
 * flags and a field list. */
int vs__arg_with(vs__call *c, int payload_default, unsigned *with, const char *const **fields,
                 size_t *n_fields);

/* ---- result helpers (args.c) ------------------------------------------ */

void vs__pack_cstr(msgpack_packer *pk, const char *s);
void vs__pack_id(msgpack_packer *pk, const vs_id *id);
void vs__pack_vector(msgpack_packer *pk, const float *v, size_t dim);
/* Raw msgpack bytes (a stored payload), or {} when there are none. */
void vs__pack_raw_map(msgpack_packer *pk, const uint8_t *p, size_t len);

/* Flags for vs__pack_hits. */
enum {
  VS__HITS_EXPLAIN = 1u << 0, /* the legs' ranks and scores */
  VS__HITS_GROUP = 1u << 1,   /* the group number */
};
void vs__pack_hits(msgpack_packer *pk, const vs_hit *hits, size_t n, unsigned with, unsigned extra);

/* ---- statistics (stats.c); loop thread only ---------------------------- */

typedef struct vs__stats vs__stats;

vs__stats *vs__stats_new(size_t n_methods);
void vs__stats_free(vs__stats *s);
/* Record one answered request of method `m` (n_methods for requests that
 * named no known method) that took `ns` nanoseconds. */
void vs__stats_record(vs__stats *s, size_t m, uint64_t ns, int failed);
/* Pack {"requests", "errors", "methods": {name: {count, errors, p50_ms,
 * p99_ms, p999_ms}}} fields into an open map: returns how many pairs it
 * will write when pk is NULL. */
size_t vs__stats_pack(const vs__stats *s, msgpack_packer *pk);
/* Write the per-method families in Prometheus text format to `f`:
 * vsearch_requests_total and vsearch_errors_total (counters) and
 * vsearch_request_latency_ms (a summary: quantiles 0.5, 0.99 and 0.999,
 * _sum, _count), each labelled {method="..."}.  Returns 0, or -1 when `f`
 * reports a write error. */
int vs__stats_prometheus(const vs__stats *s, FILE *f);

#endif /* VS_SERVER_RPC_H */
