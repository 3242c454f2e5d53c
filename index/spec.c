/*
 * spec.c: validation of index specs through FAISS's own index factory.
 *
 * A spec is accepted exactly when FAISS 1.7.3 can construct it for the
 * collection's dimension, so the check can never drift from what the index
 * layer will later build.  Construction is cheap (nothing is trained or
 * added) once the numbers in the spec are bounded.
 */
#include "index/spec.h"

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <stdio.h>
#include <string.h>

int vs__index_spec_check(const char *spec, uint32_t dim, int ip, char *msg, size_t msgcap) {
  FaissIndex *index = NULL;
  unsigned long num = 0;
  int in_num = 0;

  for (const char *p = spec;; p++) {
    unsigned char c = (unsigned char)*p;

    if (c >= '0' && c <= '9') {
      num = in_num ? num * 10 + (c - '0') : (unsigned long)(c - '0');
      in_num = 1;
      if (num > VS_INDEX_SPEC_NUMBER_MAX) {
        snprintf(msg, msgcap, "index spec '%s' holds a number over %u", spec,
                 VS_INDEX_SPEC_NUMBER_MAX);
        return -1;
      }
    } else {
      in_num = 0;
    }
    if (c == '\0')
      break;
    if (c < 0x20 || c > 0x7e) {
      snprintf(msg, msgcap, "index spec must be printable ASCII");
      return -1;
    }
  }
  if (faiss_index_factory(&index, (int)dim, spec, ip ? METRIC_INNER_PRODUCT : METRIC_L2)) {
    const char *why = faiss_get_last_error();
    const char *line = why ? strstr(why, "Error: '") : NULL;

    /* FAISS messages read "Error in <function> at <file>:<line>: Error: '<what>'
     * failed"; keep the useful part. */
    snprintf(msg, msgcap, "index spec '%s' is not valid for dim %u: %s", spec, dim,
             line ? line + 7 : (why ? why : "rejected by FAISS"));
    return -1;
  }
  faiss_Index_free(index);
  return 0;
}
