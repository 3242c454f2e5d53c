/*
 * db.c: opening and closing a database, and the transaction discipline every
 * other engine file uses (see storage.h, TRANSACTIONS).
 *
 * Invariants:
 *  - Every LMDB transaction of this process holds db->txn_lock shared for its
 *    whole life; changing the map size holds it exclusive, because LMDB
 *    requires that no transaction of the process be active then.
 *  - Write transactions also hold db->write_lock, so at most one runs at a
 *    time and a map resize never waits on a writer of our own.
 *  - A directory is open at most once per process (LMDB forbids two
 *    environments on one file in a process: closing one would drop the
 *    other's POSIX locks).  A process-wide registry keyed by the directory's
 *    device and inode enforces that, and reports VS_EBUSY.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "engine/pindex.h"
#include "engine/storage.h"
#include "engine/tindex.h"
#include "engine/vindex.h"

#define DEFAULT_MAP_SIZE ((size_t)256 << 20)
#define DEFAULT_MAX_READERS 256u
#define MAX_DBS 4096u /* 2 global + 4 per collection (6 with text): about 700 collections */

/* ---- the process registry of open directories ---------------------------- */

typedef struct reg_entry {
  dev_t dev;
  ino_t ino;
  struct reg_entry *next;
} reg_entry;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *reg_head;

static int registry_add(const struct stat *st, void **key) {
  reg_entry *e;
  int rc = VS_OK;

  pthread_mutex_lock(&reg_lock);
  for (e = reg_head; e; e = e->next)
    if (e->dev == st->st_dev && e->ino == st->st_ino) {
      rc = VS_EBUSY;
      goto out;
    }
  e = vs__malloc(sizeof(*e));
  if (e == NULL) {
    rc = VS_ENOMEM;
    goto out;
  }
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->next = reg_head;
  reg_head = e;
  *key = e;
out:
  pthread_mutex_unlock(&reg_lock);
  return rc;
}

static void registry_remove(void *key) {
  reg_entry **pp;

  if (key == NULL)
    return;
  pthread_mutex_lock(&reg_lock);
  for (pp = &reg_head; *pp; pp = &(*pp)->next)
    if (*pp == key) {
      *pp = (*pp)->next;
      vs__free(key);
      break;
    }
  pthread_mutex_unlock(&reg_lock);
}

/* ---- transactions ---------------------------------------------------------- */

/* Adopt a map size another process set (MDB_MAP_RESIZED).  Needs txn_lock
 * exclusive; called with it not held. */
static int adopt_map_size(vs_db *db) {
  int mrc;

  pthread_rwlock_wrlock(&db->txn_lock);
  mrc = mdb_env_set_mapsize(db->env, 0);
  pthread_rwlock_unlock(&db->txn_lock);
  return mrc;
}

/* A reset read transaction from the pool, renewed; NULL when none. */
static MDB_txn *renew_idle(vs_db *db) {
  MDB_txn *txn = NULL;

  pthread_mutex_lock(&db->idle_txns_lock);
  if (db->n_idle_txns > 0)
    txn = db->idle_txns[--db->n_idle_txns];
  pthread_mutex_unlock(&db->idle_txns_lock);
  if (txn && mdb_txn_renew(txn) != MDB_SUCCESS) {
    mdb_txn_abort(txn); /* e.g. the map was resized: begin afresh */
    txn = NULL;
  }
  return txn;
}

int vs__read_begin(vs_db *db, MDB_txn **txn, vs_error *err) {
  int mrc;

  for (;;) {
    pthread_rwlock_rdlock(&db->txn_lock);
    if ((*txn = renew_idle(db)) != NULL)
      return VS_OK;
    mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn);
    if (mrc == MDB_SUCCESS)
      return VS_OK;
    pthread_rwlock_unlock(&db->txn_lock);
    if (mrc != MDB_MAP_RESIZED)
      return vs__mdb_err(err, mrc, "begin read transaction");
    mrc = adopt_map_size(db);
    if (mrc)
      return vs__mdb_err(err, mrc, "adopt the new map size");
  }
}

void vs__read_end(vs_db *db, MDB_txn *txn) {
  int kept = 0;

  /* Reset, not aborted: the handle keeps its reader slot for the next
   * read (MDB_NOTLS lets any thread renew it). */
  mdb_txn_reset(txn);
  pthread_mutex_lock(&db->idle_txns_lock);
  if (db->n_idle_txns < (int)(sizeof(db->idle_txns) / sizeof(db->idle_txns[0]))) {
    db->idle_txns[db->n_idle_txns++] = txn;
    kept = 1;
  }
  pthread_mutex_unlock(&db->idle_txns_lock);
  if (!kept)
    mdb_txn_abort(txn);
  pthread_rwlock_unlock(&db->txn_lock);
}

static void idle_txns_free(vs_db *db) {
  while (db->n_idle_txns > 0)
    mdb_txn_abort(db->idle_txns[--db->n_idle_txns]);
}

/* Double the map (at least +64 MiB).  Called with write_lock held and
 * txn_lock not held. */
static int grow_map(vs_db *db, vs_error *err) {
  MDB_envinfo info;
  size_t size;
  int mrc;

  pthread_rwlock_wrlock(&db->txn_lock);
  mdb_env_info(db->env, &info);
  size = info.me_mapsize;
  size = size < ((size_t)64 << 20) ? size + ((size_t)64 << 20) : size * 2;
  mrc = mdb_env_set_mapsize(db->env, size);
  pthread_rwlock_unlock(&db->txn_lock);
  if (mrc)
    return vs__mdb_err(err, mrc, "grow the map");
  return VS_OK;
}

int vs__write(vs_db *db, vs__write_fn fn, void *ctx, unsigned flags, vs_error *err) {
  MDB_txn *txn;
  int rc, mrc;

  if (db->flags & VS_OPEN_READONLY)
    return vs__err(err, VS_EACCES, "the database is open read-only");
  pthread_mutex_lock(&db->write_lock);
  for (;;) {
    if (flags & VS__WRITE_EXCLUSIVE)
      pthread_rwlock_wrlock(&db->txn_lock);
    else
      pthread_rwlock_rdlock(&db->txn_lock);
    mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc) {
      pthread_rwlock_unlock(&db->txn_lock);
      if (mrc == MDB_MAP_RESIZED && (mrc = adopt_map_size(db)) == 0)
        continue;
      rc = vs__mdb_err(err, mrc, "begin write transaction");
      break;
    }
    rc = fn(db, txn, ctx, err);
    if (rc == VS_OK) {
      mrc = mdb_txn_commit(txn);
      rc = mrc ? vs__mdb_err(err, mrc, "commit") : VS_OK;
    } else {
      mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&db->txn_lock);
    if (rc != VS__EMAPFULL)
      break;
    rc = grow_map(db, err);
    if (rc)
      break;
  }
  pthread_mutex_unlock(&db->write_lock);
  return rc;
}

/* ---- open and close --------------------------------------------------------- */

/* Open the global DBIs and check or write the format version. */
static int init_env(vs_db *db, vs_error *err) {
  unsigned dflags = (db->flags & VS_OPEN_READONLY) ? 0 : MDB_CREATE;
  MDB_txn *txn;
  MDB_val k = {6, "format"}, v;
  int mrc, rc;

  mrc = mdb_txn_begin(db->env, NULL, (db->flags & VS_OPEN_READONLY) ? MDB_RDONLY : 0, &txn);
  if (mrc)
    return vs__mdb_err(err, mrc, "begin the opening transaction");
  if ((mrc = mdb_dbi_open(txn, "meta", dflags, &db->meta)) ||
      (mrc = mdb_dbi_open(txn, "catalog", dflags, &db->catalog))) {
    rc = mrc == MDB_NOTFOUND ? vs__err(err, VS_ECORRUPT, "not a vsearch database")
                             : vs__mdb_err(err, mrc, "open the catalog");
    goto fail;
  }
  mrc = mdb_get(txn, db->meta, &k, &v);
  if (mrc == MDB_NOTFOUND && !(db->flags & VS_OPEN_READONLY)) {
    uint32_t ver = VS__FORMAT_VERSION, cid = 1;
    MDB_val vv = {sizeof(ver), &ver}, nk = {8, "next_cid"}, nv = {sizeof(cid), &cid};

    if ((mrc = mdb_put(txn, db->meta, &k, &vv, 0)) || (mrc = mdb_put(txn, db->meta, &nk, &nv, 0))) {
      rc = vs__mdb_err(err, mrc, "write the format version");
      goto fail;
    }
  } else if (mrc) {
    rc = mrc == MDB_NOTFOUND ? vs__err(err, VS_ECORRUPT, "not a vsearch database")
                             : vs__mdb_err(err, mrc, "read the format version");
    goto fail;
  } else {
    uint32_t ver;

    if (v.mv_size != sizeof(ver)) {
      rc = vs__err(err, VS_ECORRUPT, "format version record has %zu bytes", v.mv_size);
      goto fail;
    }
    memcpy(&ver, v.mv_data, sizeof(ver));
    if (ver != VS__FORMAT_VERSION) {
      rc = vs__err(err, VS_EVERSION, "database format %u, this build reads format %u", ver,
                   VS__FORMAT_VERSION);
      goto fail;
    }
  }
  mrc = mdb_txn_commit(txn); /* also makes the DBI handles visible to every txn */
  if (mrc)
    return vs__mdb_err(err, mrc, "commit the opening transaction");
  return VS_OK;

fail:
  mdb_txn_abort(txn);
  return rc;
}

static int prepare_dir(const char *dir, unsigned flags, struct stat *st, vs_error *err) {
  if (stat(dir, st) == 0) {
    if (!S_ISDIR(st->st_mode))
      return vs__err(err, VS_EINVAL, "%s is not a directory", dir);
    return VS_OK;
  }
  if (errno != ENOENT)
    return vs__err(err, vs__mdb_status(errno), "%s: %s", dir, strerror(errno));
  if (!(flags & VS_OPEN_CREATE))
    return vs__err(err, VS_ENOTFOUND, "%s does not exist", dir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return vs__err(err, vs__mdb_status(errno), "create %s: %s", dir, strerror(errno));
  if (stat(dir, st) != 0)
    return vs__err(err, vs__mdb_status(errno), "%s: %s", dir, strerror(errno));
  return VS_OK;
}

int vs_db_open(const char *dir, const vs_open_options *opts, vs_db **out, vs_error *err) {
  vs_open_options o = {0, 0, 0, 0};
  unsigned eflags = MDB_NOTLS;
  struct stat st;
  vs_db *db;
  int rc, mrc, dead;

  if (out)
    *out = NULL;
  if (dir == NULL || dir[0] == '\0' || out == NULL)
    return vs__err(err, VS_EINVAL, "vs_db_open needs a directory and an output handle");
  if (opts)
    o = *opts;
  if (o.flags & ~(unsigned)(VS_OPEN_CREATE | VS_OPEN_NOSYNC | VS_OPEN_READONLY))
    return vs__err(err, VS_EINVAL, "unknown open flags 0x%x", o.flags);
  if ((o.flags & VS_OPEN_CREATE) && (o.flags & VS_OPEN_READONLY))
    return vs__err(err, VS_EINVAL, "VS_OPEN_CREATE and VS_OPEN_READONLY exclude each other");

  rc = prepare_dir(dir, o.flags, &st, err);
  if (rc)
    goto fail;
  db = vs__calloc(1, sizeof(*db));
  if (db == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto fail;
  }
  db->flags = o.flags;
  db->seal_threshold = o.seal_threshold ? o.seal_threshold : 20000;
  db->dir = vs__strdup(dir);
  if (db->dir == NULL) {
    rc = vs__err(err, VS_ENOMEM, "out of memory");
    goto fail_db;
  }
  rc = registry_add(&st, &db->registry_key);
  if (rc) {
    rc = vs__err(err, rc,
                 rc == VS_EBUSY ? "%s is already open in this process" : "%s: out of memory", dir);
    goto fail_dir;
  }
  if (pthread_rwlock_init(&db->txn_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_registry;
  }
  if (pthread_mutex_init(&db->write_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_rwlock;
  }
  if (pthread_mutex_init(&db->coll_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_wlock;
  }
  if (pthread_mutex_init(&db->vindex_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_clock;
  }
  if (pthread_mutex_init(&db->pindex_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_vlock;
  }
  if (pthread_mutex_init(&db->analyzers_lock, NULL)) {
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_plock;
  }
  if (pthread_mutex_init(&db->idle_txns_lock, NULL)) {
    pthread_mutex_destroy(&db->analyzers_lock);
    rc = vs__err(err, VS_ENOMEM, "cannot create a lock");
    goto fail_plock;
  }

  mrc = mdb_env_create(&db->env);
  if (mrc) {
    rc = vs__mdb_err(err, mrc, "create the LMDB environment");
    goto fail_alock;
  }
  if (o.flags & VS_OPEN_NOSYNC)
    eflags |= MDB_NOSYNC;
  if (o.flags & VS_OPEN_READONLY)
    eflags |= MDB_RDONLY;
  if ((mrc = mdb_env_set_maxdbs(db->env, MAX_DBS)) ||
      (mrc =
           mdb_env_set_maxreaders(db->env, o.max_readers ? o.max_readers : DEFAULT_MAX_READERS)) ||
      (mrc = mdb_env_set_mapsize(db->env, o.map_size ? o.map_size : DEFAULT_MAP_SIZE))) {
    rc = vs__mdb_err(err, mrc, "configure the LMDB environment");
    goto fail_env;
  }
  mrc = mdb_env_open(db->env, dir, eflags, 0644);
  if (mrc) {
    rc = vs__mdb_err(err, mrc, dir);
    goto fail_env;
  }
  /* Free the reader slots of processes that died holding a read transaction,
   * so they pin no old pages. */
  mrc = mdb_reader_check(db->env, &dead);
  if (mrc) {
    rc = vs__mdb_err(err, mrc, "check stale readers");
    goto fail_env;
  }
  rc = init_env(db, err);
  if (rc)
    goto fail_env;
  if (!(db->flags & VS_OPEN_READONLY))
    vs__vindex_sweep(db);
  *out = db;
  return VS_OK;

fail_env:
  idle_txns_free(db);
  mdb_env_close(db->env);
fail_alock:
  pthread_mutex_destroy(&db->idle_txns_lock);
  pthread_mutex_destroy(&db->analyzers_lock);
fail_plock:
  pthread_mutex_destroy(&db->pindex_lock);
fail_vlock:
  pthread_mutex_destroy(&db->vindex_lock);
fail_clock:
  pthread_mutex_destroy(&db->coll_lock);
fail_wlock:
  pthread_mutex_destroy(&db->write_lock);
fail_rwlock:
  pthread_rwlock_destroy(&db->txn_lock);
fail_registry:
  registry_remove(db->registry_key);
fail_dir:
  vs__free(db->dir);
fail_db:
  vs__free(db);
fail:
  return rc;
}

void vs_db_close(vs_db *db) {
  if (db == NULL)
    return;
  vs__vindex_close(db); /* stops the background thread first */
  pthread_mutex_destroy(&db->vindex_lock);
  vs__pindex_close(db);
  pthread_mutex_destroy(&db->pindex_lock);
  vs__tindex_close(db);
  pthread_mutex_destroy(&db->analyzers_lock);
  vs__colls_free(db);
  idle_txns_free(db);
  pthread_mutex_destroy(&db->idle_txns_lock);
  mdb_env_close(db->env);
  pthread_mutex_destroy(&db->coll_lock);
  pthread_mutex_destroy(&db->write_lock);
  pthread_rwlock_destroy(&db->txn_lock);
  registry_remove(db->registry_key);
  vs__free(db->dir);
  vs__free(db);
}
