/*
 * rpc_client.h: a blocking MessagePack-RPC client for `vsearch serve`, and
 * `vsearch query --connect` built on it.
 *
 * The client (tools/rpc_client.c) speaks the wire protocol of DESIGN.md
 * section 5 over one TCP connection, one request at a time: a request is
 * [0, msgid, method, [args]], its response [1, msgid, error, result].  The
 * remote query functions (tools/cmd_remote.c) have the shape of the
 * engine's vs_search(), vs_text_search() and vs_hybrid_search(), so that
 * tools/cmd_query.c reads the queries, runs them and prints their hits the
 * same way whether they run here or in a server.
 *
 * Not thread-safe: one thread uses a client or a remote at a time.
 */
#ifndef VS_TOOLS_RPC_CLIENT_H
#define VS_TOOLS_RPC_CLIENT_H

#include <msgpack.h>
#include <stddef.h>

#include "engine/vsearch.h"

/* ---- the client (tools/rpc_client.c) ------------------------------------------------ */

typedef struct rpc_client rpc_client;

/* Why a call failed.  `code` is the server's error code ("not_found",
 * "bad_request", ...) when the server answered with an error, or "" when
 * the call never got an answer (the connection failed or the server broke
 * the protocol); `message` says what happened either way. */
typedef struct rpc_error {
  char code[32];
  char message[512];
} rpc_error;

/* Connect to `hostport` ("HOST:PORT", "[V6ADDR]:PORT").  On success
 * *out is a new client, released with rpc_close().  Returns 0; 2 when
 * `hostport` is not HOST:PORT; 1 when the connection failed.  Either
 * failure fills e->message (and leaves e->code ""). */
int rpc_connect(const char *hostport, rpc_client **out, rpc_error *e);

/* Close the connection and free the client (NULL is accepted). */
void rpc_close(rpc_client *c);

/* Start a request for `method`: returns the packer into which the caller
 * packs exactly one object, the map of named arguments, before calling
 * rpc_call().  The packer belongs to the client. */
msgpack_packer *rpc_request(rpc_client *c, const char *method);

/* Send the request that rpc_request() started and wait for its response.
 * Returns 0 with *result the response's result, which lives until the next
 * rpc_request() or rpc_close(); 1 with `e` filled when the server answered
 * with an error; -1 with `e` filled (code "") when the connection failed or
 * the response was not valid MessagePack-RPC, after which every call fails
 * the same way. */
int rpc_call(rpc_client *c, const msgpack_object **result, rpc_error *e);

/* ---- queries through a server (tools/cmd_remote.c) ------------------------------------ */

typedef struct remote remote;

/* Connect to the server at `hostport` and, with a `token_file` (may be
 * NULL), authenticate with the token it holds: its first line, without
 * trailing spaces, as `vsearch serve --token-file` reads it.  `filter_json`
 * (may be NULL) is the --filter every query of this remote sends, as a
 * msgpack map.  Prints why it failed ("vsearch: query: ...") and returns
 * 1 (no connection, refused token, unreadable file) or 2 (a malformed
 * HOST:PORT or filter); 0 with *out set otherwise. */
int remote_open(const char *hostport, const char *token_file, const char *filter_json,
                remote **out);

/* Close the connection and free everything (NULL is accepted). */
void remote_close(remote *r);

/* vs_search(), vs_text_search() and vs_hybrid_search() through the server:
 * methods search, text_search and hybrid_search of collection `name`.
 * Every member of the parameters is sent except `filter`, for which the
 * remote's own (see remote_open()) goes instead; a hybrid search's text
 * field weights have no place in the protocol and must be absent.
 *
 * On success returns 0 with *hits an array of *n hits, best first; the
 * hits and everything they point to belong to the remote and live until
 * its next search or remote_close().  On failure returns 1 with
 * err->message "CODE: MESSAGE" (the server's error) or a description of
 * the connection's failure. */
int remote_search(remote *r, const char *name, const vs_search_params *p, vs_hit **hits, size_t *n,
                  vs_error *err);
int remote_text_search(remote *r, const char *name, const vs_text_params *p, vs_hit **hits,
                       size_t *n, vs_error *err);
int remote_hybrid_search(remote *r, const char *name, const vs_hybrid_params *p, vs_hit **hits,
                         size_t *n, vs_error *err);

#endif /* VS_TOOLS_RPC_CLIENT_H */
