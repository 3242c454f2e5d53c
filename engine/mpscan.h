/*
 * mpscan.h: a non-allocating MessagePack scanner for untrusted bytes.
 *
 * msgpack-c's unpacker believes the sizes a message declares and allocates
 * for them before checking that the bytes exist: the five bytes dd ff 00 00 00
 * (an array of 0xff000000 elements) make it ask for about 96 GB.  Everything
 * that comes from a client or from disk is scanned here first; only a
 * scanned object is handed to msgpack-c.  See DESIGN.md section 6.2.
 */
#ifndef VS_ENGINE_MPSCAN_H
#define VS_ENGINE_MPSCAN_H

#include <stddef.h>
#include <stdint.h>

/* Returned by vs__mp_scan() when the buffered bytes end inside the object:
 * a stream reader waits for more; a complete buffer is malformed. */
#define VS__MP_MORE 1

/* The deepest nesting vs__mp_scan() accepts whatever max_depth says. */
#define VS__MP_DEPTH_CAP 64

/* Find the end of the one MessagePack object at the start of p[0..avail).
 *
 * `limit` bounds the object's total size: a declared length or element count
 * that could not fit in `limit` bytes is rejected at once, before any more
 * bytes are awaited (every element takes at least one byte).  Containers
 * nested deeper than `max_depth` (at most VS__MP_DEPTH_CAP) are rejected.
 *
 * Returns VS_OK with *used set to the object's size; VS__MP_MORE when more
 * bytes are needed; VS_ETOOLARGE (a declared size over `limit`, the object
 * reaching `limit`, or nesting over `max_depth`); VS_EINVAL (the reserved
 * byte 0xc1).  Never allocates; runs in time linear in the bytes scanned. */
int vs__mp_scan(const uint8_t *p, size_t avail, size_t limit, unsigned max_depth, size_t *used);

/* vs__mp_scan() that also refuses (VS_ETOOLARGE) an object made of more
 * than max_objects objects (every scalar, string and container counts
 * one).  msgpack-c allocates about 24 bytes per object however small its
 * encoding: a 64 MiB message of one-byte integers would cost 1.5 GB; a
 * server bounds that here. */
int vs__mp_scan_budget(const uint8_t *p, size_t avail, size_t limit, unsigned max_depth,
                       size_t max_objects, size_t *used);

/* A scan that can wait for more bytes without starting over: a stream
 * reader keeps one per message being received and calls
 * vs__mp_scan_resume() as bytes arrive (the bytes already scanned must stay
 * where they are); after VS__MP_MORE it resumes at the start of the object
 * that was incomplete, so each byte is scanned about once.  Init it for
 * every new message. */
typedef struct vs__mp_scanner {
  uint64_t left[VS__MP_DEPTH_CAP + 1]; /* elements left in each open container */
  unsigned depth;
  size_t pos;     /* bytes of whole objects seen */
  size_t objects; /* objects seen */
} vs__mp_scanner;

void vs__mp_scanner_init(vs__mp_scanner *s);
/* vs__mp_scan_budget() from where `s` stopped; same results. */
int vs__mp_scan_resume(vs__mp_scanner *s, const uint8_t *p, size_t avail, size_t limit,
                       unsigned max_depth, size_t max_objects, size_t *used);

#endif /* VS_ENGINE_MPSCAN_H */
