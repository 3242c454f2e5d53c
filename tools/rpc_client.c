/*
 * rpc_client.c: a blocking MessagePack-RPC client over TCP (DESIGN.md
 * section 5), for `vsearch query --connect`.
 *
 * A client is one connected socket, a packer for the request being built
 * and a receive buffer.  Requests go one at a time: rpc_request() starts
 * [0, msgid, method, [ in the send buffer, the caller packs the argument
 * map, and rpc_call() sends it all and reads messages until the one that
 * carries its msgid.  The server's bytes are not trusted any more than a
 * client's are on the other side: before msgpack-c sees a message,
 * vs__mp_scan() (engine/mpscan.h) finds its end in the buffered bytes and
 * refuses a declared size larger than the bytes that could follow, so a
 * broken or hostile server cannot make the client allocate what it did
 * not send.  The receive buffer grows with the bytes actually received,
 * up to REPLY_MAX.
 *
 * Invariants: buf[done..len) holds received bytes not yet decoded;
 * buf[0..done) is the last response, kept because msgpack-c's objects
 * (`reply`, in its zone) point into it for strings and bins; once
 * `broken` is set (a connection or protocol failure) every call fails with
 * the message saved in `why`, as hiredis keeps a failed context failed.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "engine/mpscan.h"
#include "tools/rpc_client.h"

/* The largest response accepted: k and candidates are at most 10000 hits,
 * each with a payload and a vector; far beyond that is a broken server. */
#define REPLY_MAX ((size_t)1 << 30)
/* msgpack-c spends about 24 bytes per object: bound what a reply may cost
 * (32 million objects holds 10,000 hits of 784-float vectors four times). */
#define REPLY_OBJECTS_MAX ((size_t)32 << 20)

struct rpc_client {
  int fd;
  uint32_t msgid;      /* of the request being built or awaited */
  msgpack_sbuffer out; /* the request being built */
  msgpack_packer pk;
  char *buf; /* received bytes: buf[0..len) of cap */
  size_t len, cap;
  size_t done;            /* buf[0..done) is the last response, which `reply` points into */
  msgpack_unpacked reply; /* the last response */
  int broken;
  char why[512];
};

/* Mark the connection failed with a message; returns -1. */
static int broken(rpc_client *c, rpc_error *e, const char *fmt, const char *detail) {
  if (!c->broken) {
    snprintf(c->why, sizeof c->why, fmt, detail);
    c->broken = 1;
  }
  e->code[0] = '\0';
  snprintf(e->message, sizeof e->message, "%s", c->why);
  return -1;
}

/* Split "HOST:PORT" or "[HOST]:PORT" into its parts (host in a buffer of
 * `cap` bytes).  Nonzero when it is not of that form. */
static int split_hostport(const char *s, char *host, size_t cap, const char **port) {
  const char *colon = strrchr(s, ':'), *h = s;
  size_t hl;

  if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
    return 1;
  hl = (size_t)(colon - s);
  if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
    h = s + 1;
    hl -= 2;
  }
  if (hl == 0 || hl >= cap)
    return 1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = colon + 1;
  return 0;
}

int rpc_connect(const char *hostport, rpc_client **out, rpc_error *e) {
  struct addrinfo hints, *res = NULL, *ai;
  const char *port;
  char host[256];
  rpc_client *c;
  int rc, fd = -1, saved = 0, one = 1;

  *out = NULL;
  e->code[0] = '\0';
  if (split_hostport(hostport, host, sizeof host, &port)) {
    snprintf(e->message, sizeof e->message, "--connect must be HOST:PORT, not '%s'", hostport);
    return 2;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(host, port, &hints, &res);
  if (rc) {
    snprintf(e->message, sizeof e->message, "cannot resolve %s: %s", host, gai_strerror(rc));
    return 1;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(e->message, sizeof e->message, "cannot connect to %s: %s", hostport,
             strerror(saved ? saved : ECONNREFUSED));
    return 1;
  }
  /* Requests are small and each waits for its answer: send at once. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    snprintf(e->message, sizeof e->message, "out of memory");
    return 1;
  }
  c->fd = fd;
  msgpack_sbuffer_init(&c->out);
  msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
  msgpack_unpacked_init(&c->reply);
  *out = c;
  return 0;
}

void rpc_close(rpc_client *c) {
  if (c == NULL)
    return;
  close(c->fd);
  msgpack_sbuffer_destroy(&c->out);
  msgpack_unpacked_destroy(&c->reply);
  free(c->buf);
  free(c);
}

msgpack_packer *rpc_request(rpc_client *c, const char *method) {
  size_t n = strlen(method);

  msgpack_sbuffer_clear(&c->out);
  c->msgid = c->msgid == UINT32_MAX ? 1 : c->msgid + 1;
  msgpack_pack_array(&c->pk, 4);
  msgpack_pack_int(&c->pk, 0);
  msgpack_pack_uint32(&c->pk, c->msgid);
  msgpack_pack_str(&c->pk, n);
  msgpack_pack_str_body(&c->pk, method, n);
  msgpack_pack_array(&c->pk, 1);
  return &c->pk;
}

static int send_all(rpc_client *c, rpc_error *e) {
  size_t off = 0;

  while (off < c->out.size) {
    ssize_t w = send(c->fd, c->out.data + off, c->out.size - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return broken(c, e, "sending to the server: %s", strerror(errno));
    off += (size_t)w;
  }
  return 0;
}

/* Read until buf holds one whole message; *used is its size. */
static int read_message(rpc_client *c, size_t *used, rpc_error *e) {
  if (c->done) {
    memmove(c->buf, c->buf + c->done, c->len - c->done);
    c->len -= c->done;
    c->done = 0;
  }
  for (;;) {
    int rc = c->len ? vs__mp_scan_budget((const uint8_t *)c->buf, c->len, REPLY_MAX,
                                         VS__MP_DEPTH_CAP, REPLY_OBJECTS_MAX, used)
                    : VS__MP_MORE;
    ssize_t got;

    if (rc == VS_OK)
      return 0;
    if (rc != VS__MP_MORE)
      return broken(c, e, "the server sent %s", "a malformed or oversized message");
    if (c->cap - c->len < 4096) {
      size_t next = c->cap ? c->cap * 2 : 65536;
      char *b = next > REPLY_MAX + 65536 ? NULL : realloc(c->buf, next);
      if (b == NULL)
        return broken(c, e, "reading the server's answer: %s", "out of memory");
      c->buf = b;
      c->cap = next;
    }
    got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return broken(c, e, "reading from the server: %s", strerror(errno));
    if (got == 0)
      return broken(c, e, "the server closed the connection%s", "");
    c->len += (size_t)got;
  }
}

/* Copy the error map {"code": C, "message": M} of a response into e. */
static void server_error(const msgpack_object *o, rpc_error *e) {
  snprintf(e->code, sizeof e->code, "error");
  snprintf(e->message, sizeof e->message, "(no message)");
  if (o->type != MSGPACK_OBJECT_MAP)
    return;
  for (uint32_t i = 0; i < o->via.map.size; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;

    if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
      continue;
    if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "code", 4) == 0)
      snprintf(e->code, sizeof e->code, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    else if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "message", 7) == 0)
      snprintf(e->message, sizeof e->message, "%.*s", (int)v->via.str.size, v->via.str.ptr);
  }
}

int rpc_call(rpc_client *c, const msgpack_object **result, rpc_error *e) {
  *result = NULL;
  if (c->broken)
    return broken(c, e, "%s", c->why);
  if (send_all(c, e))
    return -1;
  for (;;) {
    const msgpack_object *m;
    size_t used, off = 0;
    uint64_t id;

    if (read_message(c, &used, e))
      return -1;
    if (msgpack_unpack_next(&c->reply, c->buf, used, &off) != MSGPACK_UNPACK_SUCCESS)
      return broken(c, e, "the server sent %s", "a message msgpack-c cannot decode");
    c->done = used;
    m = &c->reply.data;
    if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size != 4 ||
        m->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        m->via.array.ptr[0].via.u64 != 1 ||
        m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      return broken(c, e, "the server sent %s", "a message that is not a MessagePack-RPC response");
    id = m->via.array.ptr[1].via.u64;
    if (id == c->msgid) {
      if (m->via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
        server_error(&m->via.array.ptr[2], e);
        return 1;
      }
      *result = &m->via.array.ptr[3];
      return 0;
    }
    /* msgid 0 answers a request the server could not read: it closes the
     * connection after it. */
    if (id == 0 && m->via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
      server_error(&m->via.array.ptr[2], e);
      snprintf(c->why, sizeof c->why, "the server refused the request: %.32s: %.400s", e->code,
               e->message);
      c->broken = 1;
      return broken(c, e, "%s", c->why);
    }
    /* A response to some other request (none is pending): skip it. */
  }
}
