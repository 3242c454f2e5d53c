/*
 * status.c: the status table (vs_strerror, vs_err_name, vs_err_wire), the
 * caller-owned vs_error reports, and the one place where LMDB and errno codes
 * become vsearch statuses.
 *
 * Every function here returns static strings for any input, so a caller can
 * print whatever code it holds without checking it first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/storage.h"

const char *vs_strerror(int rc) {
  switch (rc) {
#define XX(name, value, wire, msg)                                                                 \
  case VS_##name:                                                                                  \
    return msg;
    VS_STATUS_MAP(XX)
#undef XX
  default:
    return "unknown status";
  }
}

const char *vs_err_name(int rc) {
  switch (rc) {
#define XX(name, value, wire, msg)                                                                 \
  case VS_##name:                                                                                  \
    return "VS_" #name;
    VS_STATUS_MAP(XX)
#undef XX
  default:
    return "VS_UNKNOWN";
  }
}

const char *vs_err_wire(int rc) {
  switch (rc) {
#define XX(name, value, wire, msg)                                                                 \
  case VS_##name:                                                                                  \
    return wire;
    VS_STATUS_MAP(XX)
#undef XX
  default:
    return "internal";
  }
}

void vs_error_clear(vs_error *err) {
  if (err == NULL)
    return;
  err->code = VS_OK;
  err->message[0] = '\0';
}

int vs__err(vs_error *err, int code, const char *fmt, ...) {
  va_list ap;

  /* The first error wins: later failures are usually consequences of it. */
  if (err == NULL || err->code != VS_OK || code == VS_OK)
    return code;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof(err->message), fmt, ap);
  va_end(ap);
  return code;
}

int vs__mdb_status(int mdb_rc) {
  switch (mdb_rc) {
  case MDB_SUCCESS:
    return VS_OK;
  case MDB_MAP_FULL:
    return VS__EMAPFULL;
  case ENOMEM:
    return VS_ENOMEM;
  case ENOSPC:
    return VS_ENOSPC;
  case EACCES:
  case EROFS:
  case EPERM:
    return VS_EACCES;
  case ENOENT:
    return VS_ENOTFOUND;
  case EBUSY:
  case EAGAIN:
    return VS_EBUSY;
  case MDB_VERSION_MISMATCH:
    return VS_EVERSION;
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INVALID:
  case MDB_BAD_TXN:
  case MDB_BAD_VALSIZE:
    return VS_ECORRUPT;
  case MDB_READERS_FULL:
  case MDB_TXN_FULL:
  case MDB_CURSOR_FULL:
  case MDB_DBS_FULL:
    return VS_ETOOLARGE;
  default:
    return VS_EIO;
  }
}

int vs__mdb_err(vs_error *err, int mdb_rc, const char *what) {
  int rc = vs__mdb_status(mdb_rc);

  if (rc == VS__EMAPFULL)
    return rc; /* handled by the write loop, never reported */
  return vs__err(err, rc, "%s: %s", what, mdb_strerror(mdb_rc));
}
