/*
 * mpscan.c: the non-allocating MessagePack scanner (see mpscan.h).
 *
 * The scanner walks the bytes once with an explicit stack of "elements left"
 * counters, one per open container (a map of n pairs counts 2n elements).
 * Each header is checked against two bounds before the scanner moves on:
 * `limit`, the most bytes the object may take, and `avail`, the bytes
 * buffered so far.  A declared size that breaks `limit` is an error at once;
 * one that only breaks `avail` means "wait for more".  Nothing is decoded or
 * allocated, so a hostile header costs at most its own few bytes.
 */
#include "engine/mpscan.h"

#include "engine/vsearch.h"

/* Read a big-endian unsigned integer of n bytes. */
static uint64_t be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;

  for (unsigned i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

int vs__mp_scan(const uint8_t *p, size_t avail, size_t limit, unsigned max_depth, size_t *used) {
  return vs__mp_scan_budget(p, avail, limit, max_depth, SIZE_MAX, used);
}

int vs__mp_scan_budget(const uint8_t *p, size_t avail, size_t limit, unsigned max_depth,
                       size_t max_objects, size_t *used) {
  vs__mp_scanner s;

  vs__mp_scanner_init(&s);
  return vs__mp_scan_resume(&s, p, avail, limit, max_depth, max_objects, used);
}

void vs__mp_scanner_init(vs__mp_scanner *s) {
  s->depth = 0;
  s->pos = 0;
  s->objects = 0;
  s->left[0] = 1; /* the top level holds one object */
}

int vs__mp_scan_resume(vs__mp_scanner *s, const uint8_t *p, size_t avail, size_t limit,
                       unsigned max_depth, size_t max_objects, size_t *used) {
  uint64_t *left = s->left; /* elements left in each open container */

  if (max_depth > VS__MP_DEPTH_CAP)
    max_depth = VS__MP_DEPTH_CAP;
  if (avail > limit)
    avail = limit;

  while (s->depth > 0 || left[0] > 0) {
    size_t pos = s->pos;
    unsigned hdr = 1;      /* bytes of the header itself */
    unsigned lenbytes = 0; /* bytes of a length/count field after the tag */
    uint64_t body = 0;     /* bytes that follow the header (str, bin, ext, numbers) */
    uint64_t count = 0;    /* elements of an array or map */
    int container = 0;
    uint8_t b;

    if (pos >= avail)
      return pos >= limit ? VS_ETOOLARGE : VS__MP_MORE;
    if (s->objects >= max_objects)
      return VS_ETOOLARGE;
    b = p[pos];

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      /* fixint, nil, bool: the tag is the whole object */
    } else if (b <= 0x8f) {
      count = 2u * (b & 0x0fu), container = 1;
    } else if (b <= 0x9f) {
      count = b & 0x0fu, container = 1;
    } else if (b <= 0xbf) {
      body = b & 0x1fu;
    } else {
      switch (b) {
      case 0xc1:
        return VS_EINVAL; /* reserved, never used */
      case 0xc4:
      case 0xd9:
        lenbytes = 1;
        break; /* bin8, str8 */
      case 0xc5:
      case 0xda:
        lenbytes = 2;
        break; /* bin16, str16 */
      case 0xc6:
      case 0xdb:
        lenbytes = 4;
        break; /* bin32, str32 */
      case 0xc7:
        lenbytes = 1, body = 1;
        break; /* ext8: length, then type byte */
      case 0xc8:
        lenbytes = 2, body = 1;
        break;
      case 0xc9:
        lenbytes = 4, body = 1;
        break;
      case 0xca:
        body = 4;
        break; /* float32 */
      case 0xcb:
        body = 8;
        break; /* float64 */
      case 0xcc:
      case 0xd0:
        body = 1;
        break; /* uint8, int8 */
      case 0xcd:
      case 0xd1:
        body = 2;
        break;
      case 0xce:
      case 0xd2:
        body = 4;
        break;
      case 0xcf:
      case 0xd3:
        body = 8;
        break;
      case 0xd4:
        body = 2;
        break; /* fixext1: type + 1 */
      case 0xd5:
        body = 3;
        break;
      case 0xd6:
        body = 5;
        break;
      case 0xd7:
        body = 9;
        break;
      case 0xd8:
        body = 17;
        break;
      case 0xdc:
        lenbytes = 2, container = 1;
        break; /* array16 */
      case 0xdd:
        lenbytes = 4, container = 1;
        break; /* array32 */
      case 0xde:
        lenbytes = 2, container = 2;
        break; /* map16 */
      case 0xdf:
        lenbytes = 4, container = 2;
        break; /* map32 */
      default:
        return VS_EINVAL;
      }
    }

    if (lenbytes) {
      uint64_t n;

      if (limit - pos < 1 + (uint64_t)lenbytes)
        return VS_ETOOLARGE;
      if (avail - pos < 1 + (size_t)lenbytes)
        return VS__MP_MORE;
      n = be(p + pos + 1, lenbytes);
      hdr += lenbytes;
      if (container)
        count = container == 2 ? 2 * n : n;
      else
        body += n;
    }

    /* Every element of a container takes at least one byte. */
    if (limit - pos < hdr + body + count)
      return VS_ETOOLARGE;
    if (avail - pos < hdr + body)
      return VS__MP_MORE;
    if (container && count > 0 && s->depth + 1 > max_depth)
      return VS_ETOOLARGE;
    /* The object is whole: only now does the state move past it, so a
     * scan that ran out of bytes resumes at its start. */
    s->pos = pos + hdr + (size_t)body;
    s->objects++;
    left[s->depth]--;
    if (container && count > 0)
      left[++s->depth] = count;
    /* Close every container whose elements are all seen. */
    while (s->depth > 0 && left[s->depth] == 0)
      s->depth--;
  }
  *used = s->pos;
  return VS_OK;
}
