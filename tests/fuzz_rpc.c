/*
 * fuzz_rpc.c: a fuzz target for the server's request path, and a replayer
 * of its seed corpus for `make test` (test fuzz_rpc).
 *
 * LLVMFuzzerTestOneInput() treats its bytes as what one client sent on a
 * connection and runs them through what server/loop.c does with them, with
 * neither a socket nor a database: vs__mp_scan_budget() frames messages with
 * the server's default limits (64 MiB, depth 32, 10 million objects); each
 * complete message is copied into a buffer of exactly its size (so ASan
 * sees any read past it), decoded by msgpack-c and checked as an envelope
 * (vs__request_parse, vs__request_args); the method then decodes its named
 * arguments through vs__request_run() with a NULL database, which runs the
 * real method function: every argument helper of server/args.c, the filter
 * parser of the engine, and the response packing, until the engine refuses
 * the NULL handle (a search also through vs__request_run_batch(), as a
 * batch of two).  Framing stops at the first incomplete or refused
 * message, as the server's does.  Besides crashes and sanitizer reports it
 * checks a few invariants and aborts when one fails:
 *   - the scanner's answer lies in the bytes it was given;
 *   - a message the scanner accepts under the pre-auth limit (1 KiB) is
 *     accepted, with the same size, under the full limit;
 *   - msgpack-c agrees with the scanner on where an accepted message ends
 *     (it never asks for more bytes, nor stops early);
 *   - every response a method packs is one msgpack array [1, msgid, error,
 *     result] with the request's msgid.
 *
 * Built normally (without VS_LIBFUZZER) the file also has a main():
 *
 *   fuzz_rpc CORPUS_DIR [MUTATIONS]
 *
 * runs every file of CORPUS_DIR through the target, then MUTATIONS (4000 by
 * default) mutants of them made by a fixed-seed PRNG: bytes flipped, set to
 * MessagePack type bytes with large sizes, inserted, deleted, truncated,
 * ranges duplicated (deeper nesting), seeds spliced and concatenated
 * (pipelining).  The same mutants every run, so a failure reproduces.  This
 * is what ctest runs, in the normal and in the ASan + UBSan build.
 *
 * To fuzz for real with libFuzzer (clang 14 here; not needed for the
 * tests), from the repository root once build/ is built: the request path
 * is compiled with coverage, the rest of the engine comes from the library.
 *
 *   F=$(cat build/faiss-prefix)/lib
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -DVS_LIBFUZZER \
 *     -D_XOPEN_SOURCE=700 -I. $(pkg-config --cflags msgpack libuv) tests/fuzz_rpc.c \
 *     server/loop.c server/args.c server/methods.c server/stats.c engine/mpscan.c \
 *     engine/filter.c build/libvsearch.a -o /tmp/fuzz_rpc_lf \
 *     $(pkg-config --libs msgpack libuv) -llmdb -lstemmer -lutf8proc -ljansson \
 *     -lroaring -lopenblas -lstdc++ -lm -lpthread -fopenmp \
 *     $F/libfaiss_c.a $F/lib$(cat $F/flavour).a
 *   rm -rf /tmp/fzc && cp -r tests/fuzz/corpus /tmp/fzc
 *   /tmp/fuzz_rpc_lf /tmp/fzc -max_len=4096 -max_total_time=300
 *
 * New crashes go into tests/fuzz/corpus once fixed, so they stay fixed.
 */
#include <dirent.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mpscan.h"
#include "server/rpc.h"

/* The server's pre-auth message limit (loop.c's PREAUTH_MAX). */
#define PREAUTH_LIMIT 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the inputs reached, for the replayer's summary. */
static size_t n_framed, n_requests, n_methods_ok, n_methods_failed;

static void fail(const char *what, size_t off) {
  fprintf(stderr, "fuzz_rpc: invariant broken at byte %zu: %s\n", off, what);
  abort();
}

/* Does the packed response hold the bytes of `s`? */
static int contains(const msgpack_sbuffer *sb, const char *s) {
  size_t n = strlen(s);

  for (size_t i = 0; i + n <= sb->size; i++)
    if (!memcmp(sb->data + i, s, n))
      return 1;
  return 0;
}

/* The response a method packed must be [1, msgid, error, result]. */
static void check_response(const msgpack_sbuffer *out, uint32_t msgid) {
  msgpack_unpacked r;
  size_t off = 0;
  const msgpack_object *a;

  msgpack_unpacked_init(&r);
  if (msgpack_unpack_next(&r, out->data, out->size, &off) != MSGPACK_UNPACK_SUCCESS ||
      off != out->size)
    fail("a response is not one msgpack object", 0);
  if (r.data.type != MSGPACK_OBJECT_ARRAY || r.data.via.array.size != 4)
    fail("a response is not an array of 4", 0);
  a = r.data.via.array.ptr;
  if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 != 1 ||
      a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 != msgid)
    fail("a response does not start 1, msgid", 0);
  if (a[2].type != MSGPACK_OBJECT_NIL &&
      (a[2].type != MSGPACK_OBJECT_MAP || a[2].via.map.size != 2 ||
       a[3].type != MSGPACK_OBJECT_NIL))
    fail("an error response is not {code, message}, nil", 0);
  msgpack_unpacked_destroy(&r);
}

/* One framed message of `n` bytes: decode it and run its method. */
static void one_message(const vs_server_config *cfg, const uint8_t *p, size_t n, size_t at) {
  vs_error err = VS_ERROR_INIT;
  msgpack_unpacked msg, again;
  msgpack_unpack_return ur;
  msgpack_sbuffer out;
  vs__request rq;
  size_t off = 0;
  uint8_t *copy;

  copy = malloc(n);
  if (!copy)
    return;
  memcpy(copy, p, n);

  /* The scanner and msgpack-c must agree on where the message ends. */
  msgpack_unpacked_init(&again);
  ur = msgpack_unpack_next(&again, (const char *)copy, n, &off);
  if (ur == MSGPACK_UNPACK_CONTINUE)
    fail("msgpack-c wants more bytes than the scanner framed", at);
  if (ur == MSGPACK_UNPACK_SUCCESS && off != n)
    fail("msgpack-c ends the message before the scanner does", at);
  msgpack_unpacked_destroy(&again);

  msgpack_unpacked_init(&msg);
  msgpack_sbuffer_init(&out);
  if (vs__request_parse(&msg, copy, n, &rq, &err) == VS_OK &&
      vs__request_args(&rq, &err) == VS_OK) {
    n_requests++;
    if (rq.m->where == VS__ON_WORKER) {
      int rc = vs__request_run(NULL, cfg, rq.m, rq.msgid, rq.args, msg.zone, &out);

      /* With no database only refusals of the NULL handle get past the
       * arguments; anything else is a decoding verdict. */
      if (rc == VS_OK || (rc == VS_EINVAL && contains(&out, "database handle")))
        n_methods_ok++;
      else
        n_methods_failed++;
      check_response(&out, rq.msgid);
      if (!strcmp(rq.m->name, "search")) {
        /* The server's batch path decodes searches its own way first
         * (vs__search_plain): two copies of the request, as one batch. */
        msgpack_sbuffer o2[2];
        vs__batch_item it[2];

        for (int i = 0; i < 2; i++) {
          msgpack_sbuffer_init(&o2[i]);
          it[i] = (vs__batch_item){rq.m, rq.msgid, rq.args, msg.zone, &o2[i], 0};
        }
        (void)vs__request_run_batch(NULL, cfg, it, 2);
        for (int i = 0; i < 2; i++) {
          check_response(&o2[i], rq.msgid);
          msgpack_sbuffer_destroy(&o2[i]);
        }
      }
    } else {
      /* ping, auth and stats: the loop thread checks their argument names
       * and reads auth's token. */
      vs__call call;

      memset(&call, 0, sizeof call);
      call.cfg = cfg;
      call.method = rq.m->name;
      call.args = rq.args;
      call.zone = msg.zone;
      if (vs__args_check(&call, rq.m->args) == VS_OK)
        (void)vs__arg(&call, "token");
    }
  } else if (err.code == VS_OK) {
    fail("a refused request carries no error", at);
  }
  msgpack_sbuffer_destroy(&out);
  msgpack_unpacked_destroy(&msg);
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static vs_server_config cfg;
  static int ready;
  size_t off = 0;

  if (!ready) {
    vs_server_config_init(&cfg);
    ready = 1;
  }
  while (off < size) {
    size_t used = 0, used_small = 0;
    int rc = vs__mp_scan_budget(data + off, size - off, cfg.max_message, cfg.max_depth,
                                cfg.max_objects, &used);
    int rc_small = vs__mp_scan_budget(data + off, size - off, PREAUTH_LIMIT, cfg.max_depth,
                                      cfg.max_objects, &used_small);

    if (rc_small == VS_OK && (rc != VS_OK || used != used_small))
      fail("a message accepted under the pre-auth limit is refused under the full one", off);
    if (rc != VS_OK)
      break; /* more bytes needed, or a protocol error: the server stops here too */
    if (used == 0 || used > size - off)
      fail("the scanner framed a message outside the bytes it was given", off);
    n_framed++;
    one_message(&cfg, data + off, used, off);
    off += used;
  }
  return 0;
}

#ifndef VS_LIBFUZZER

/* ---- the replayer ------------------------------------------------------- */

typedef struct seed {
  uint8_t *p;
  size_t n;
} seed;

/* xorshift64*: small, fast and the same everywhere. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t below(size_t n) {
  return n ? (size_t)(rnd() % n) : 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Read every regular file of `dir`, in name order.  Returns the count, or
 * -1 when the directory cannot be read. */
static long read_corpus(const char *dir, seed **out) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0, kept = 0;
  seed *s;

  if (!d)
    return -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      char **nn = realloc(names, sizeof *names * (cap = cap ? 2 * cap : 64));

      if (!nn)
        abort();
      names = nn;
    }
    if (!(names[n++] = strdup(e->d_name)))
      abort();
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  s = calloc(n + 1, sizeof *s);
  if (!s)
    abort();
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    FILE *f;
    long len;

    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    f = fopen(path, "rb");
    free(names[i]);
    if (!f)
      continue;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
      s[kept].p = malloc((size_t)len + 1);
      if (!s[kept].p)
        abort();
      s[kept].n = fread(s[kept].p, 1, (size_t)len, f);
      kept++;
    }
    fclose(f);
  }
  free(names);
  *out = s;
  return (long)kept;
}

/* Bytes that start MessagePack objects with sizes worth trying. */
static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                      0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
                                      0xc9, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8,
                                      0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};

/* Apply one to four random edits to buf[0..*n) (capacity cap). */
static void mutate(uint8_t *buf, size_t *n, size_t cap, const seed *seeds, size_t nseeds) {
  int edits = 1 + (int)below(4);

  for (int k = 0; k < edits; k++) {
    size_t len = *n, at = below(len + 1), span;

    switch (below(9)) {
    case 0: /* flip a bit */
      if (len)
        buf[below(len)] ^= (uint8_t)(1u << below(8));
      break;
    case 1: /* a type byte */
      if (len)
        buf[below(len)] = interesting[below(sizeof interesting)];
      break;
    case 2: /* a type byte followed by a large size */
      if (len + 5 <= cap) {
        memmove(buf + at + 5, buf + at, len - at);
        buf[at] = interesting[below(sizeof interesting)];
        for (int i = 1; i < 5; i++)
          buf[at + i] = (uint8_t)(below(2) ? 0xff : rnd());
        *n = len + 5;
      }
      break;
    case 3: /* insert a random byte */
      if (len + 1 <= cap) {
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = (uint8_t)rnd();
        *n = len + 1;
      }
      break;
    case 4: /* delete a range */
      if (at < len) {
        span = 1 + below(len - at < 16 ? len - at : 16);
        memmove(buf + at, buf + at + span, len - at - span);
        *n = len - span;
      }
      break;
    case 5: /* truncate */
      *n = below(len + 1);
      break;
    case 6: /* duplicate a range in place: deeper nesting, repeated keys */
      if (at < len) {
        span = 1 + below(len - at);
        if (len + span <= cap) {
          memmove(buf + at + span, buf + at, len - at);
          *n = len + span;
        }
      }
      break;
    case 7: /* splice: the tail of another seed replaces ours from `at` */
    {
      const seed *o = &seeds[below(nseeds)];
      size_t from = below(o->n + 1);

      span = o->n - from;
      if (at + span <= cap) {
        memcpy(buf + at, o->p + from, span);
        *n = at + span;
      }
    } break;
    default: /* append another seed: pipelined requests */
    {
      const seed *o = &seeds[below(nseeds)];

      if (len + o->n <= cap) {
        memcpy(buf + len, o->p, o->n);
        *n = len + o->n;
      }
    } break;
    }
  }
}

int main(int argc, char **argv) {
  seed *seeds = NULL;
  long nseeds;
  unsigned long mutations = 4000;
  size_t cap = 0, total = 0;
  uint8_t *buf;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: fuzz_rpc CORPUS_DIR [MUTATIONS]\n");
    return 2;
  }
  if (argc == 3)
    mutations = strtoul(argv[2], NULL, 10);
  nseeds = read_corpus(argv[1], &seeds);
  if (nseeds <= 0) {
    fprintf(stderr, "fuzz_rpc: no seed files in %s\n", argv[1]);
    free(seeds);
    return 1;
  }
  for (long i = 0; i < nseeds; i++) {
    LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].n);
    total += seeds[i].n;
    if (seeds[i].n > cap)
      cap = seeds[i].n;
  }
  cap = 4 * cap + 64;
  buf = malloc(cap);
  if (!buf)
    abort();
  for (unsigned long i = 0; i < mutations; i++) {
    const seed *s = &seeds[below((size_t)nseeds)];
    size_t n = s->n;
    uint8_t *exact;

    memcpy(buf, s->p, n);
    mutate(buf, &n, cap, seeds, (size_t)nseeds);
    /* An exact-size copy, so ASan catches a read past the input's end. */
    exact = malloc(n ? n : 1);
    if (!exact)
      abort();
    memcpy(exact, buf, n);
    LLVMFuzzerTestOneInput(exact, n);
    total += n;
    free(exact);
  }
  printf("fuzz_rpc: %ld seeds and %lu mutants (%zu bytes) ran clean: %zu messages framed, "
         "%zu requests, %zu with arguments accepted, %zu refused\n",
         nseeds, mutations, total, n_framed, n_requests, n_methods_ok, n_methods_failed);
  free(buf);
  for (long i = 0; i < nseeds; i++)
    free(seeds[i].p);
  free(seeds);
  return 0;
}

#endif /* VS_LIBFUZZER */
