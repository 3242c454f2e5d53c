/*
 * test_crash.c: durability under SIGKILL.
 *
 * A child process upserts batches in a loop, durably, and after each
 * vs_upsert returns VS_OK writes the batch number to a pipe: that is the
 * acknowledgement a client would get.  The parent kills it with SIGKILL at a
 * random moment, reopens the database and checks:
 *  - every acknowledged batch is there, whole;
 *  - no batch is there in part;
 *  - nothing past the batch in flight at the kill is there (the batch in
 *    flight may be whole: committed, but killed before its ack was sent);
 *  - the count and the change log agree with the points.
 * The next child resumes from what the database holds.  Repeated ROUNDS
 * times with a fixed seed; some batches also replace points of the batch
 * before, so a half-applied replacement would show as a torn batch too.
 */
#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 25
#define BATCH 64
#define DIM 16
#define MAX_BATCHES 100000

/* The vector of point `id` in batch `b`: every component encodes both. */
static void vec_of(uint64_t id, uint32_t b, float *v) {
  for (int j = 0; j < DIM; j++)
    v[j] = (float)(id % 1000) + (float)b * 1000.0f + (float)j / 32.0f;
}

/* Batch b holds ids b*BATCH .. b*BATCH+BATCH-1, and when b is odd it also
 * rewrites the first id of batch b-1 with b's stamp. */
static size_t batch_points(uint32_t b, vs_point *p, float (*v)[DIM]) {
  size_t n = 0;

  for (uint32_t i = 0; i < BATCH; i++, n++) {
    uint64_t id = (uint64_t)b * BATCH + i;
    vec_of(id, b, v[n]);
    p[n] = (vs_point){vs_id_int(id), v[n], DIM, NULL, 0};
  }
  if (b % 2 == 1) {
    uint64_t id = (uint64_t)(b - 1) * BATCH;
    vec_of(id, b, v[n]);
    p[n] = (vs_point){vs_id_int(id), v[n], DIM, NULL, 0};
    n++;
  }
  return n;
}

static void child(const char *dir, uint32_t start, int ack_fd) {
  vs_point p[BATCH + 1];
  float v[BATCH + 1][DIM];
  vs_open_options o = {VS_OPEN_CREATE, 0, 0, 0};
  vs_error err = VS_ERROR_INIT;
  vs_db *db;

  if (vs_db_open(dir, &o, &db, &err))
    _exit(2);
  for (uint32_t b = start; b < MAX_BATCHES; b++) {
    size_t n = batch_points(b, p, v);
    if (vs_upsert(db, "c", p, n, &err))
      _exit(3);
    if (write(ack_fd, &b, sizeof(b)) != sizeof(b))
      _exit(4);
  }
  _exit(0);
}

/* How many batches are in the database, checking that each is whole. */
static uint32_t verify(vs_db *db, long acked) {
  vs_id ids[BATCH];
  vs_error err = VS_ERROR_INIT;
  uint32_t present = 0;
  uint64_t count;

  for (uint32_t b = 0;; b++) {
    vs_record *r;
    size_t found = 0;

    for (uint32_t i = 0; i < BATCH; i++)
      ids[i] = vs_id_int((uint64_t)b * BATCH + i);
    TU_EXPECT(vs_get(db, "c", ids, BATCH, VS_GET_VECTOR, &r, &err), VS_OK, &err);
    for (uint32_t i = 0; i < BATCH; i++)
      found += r[i].found;
    if (found != 0 && found != BATCH)
      fail_msg("batch %u is torn: %zu of %d points", b, found, BATCH);
    if (found == 0) {
      vs_free(r);
      present = b;
      break;
    }
    /* Each point carries its batch's stamp, except a first point that the
     * next batch rewrote (then it carries that batch's stamp). */
    for (uint32_t i = 0; i < BATCH; i++) {
      float want[DIM];
      vec_of(ids[i].num, b, want);
      if (memcmp(r[i].vector, want, sizeof(want)) == 0)
        continue;
      vec_of(ids[i].num, b + 1, want);
      if (i == 0 && b % 2 == 0 && memcmp(r[i].vector, want, sizeof(want)) == 0)
        continue;
      fail_msg("point %llu of batch %u has a vector from no batch", (unsigned long long)ids[i].num,
               b);
    }
    vs_free(r);
  }
  /* A rewrite by batch b (odd) is present exactly when batch b is. */
  for (uint32_t b = 1; b < present + 1; b += 2) {
    vs_id id = vs_id_int((uint64_t)(b - 1) * BATCH);
    vs_record *r;
    float want[DIM];

    if (b - 1 >= present)
      break;
    TU_EXPECT(vs_get(db, "c", &id, 1, VS_GET_VECTOR, &r, &err), VS_OK, &err);
    vec_of(id.num, b < present ? b : b - 1, want);
    if (memcmp(r[0].vector, want, sizeof(want)) != 0)
      fail_msg("the rewrite of batch %u is %s", b, b < present ? "missing" : "present alone");
    vs_free(r);
  }
  if ((long)present < acked + 1)
    fail_msg("acknowledged batch %ld is missing (%u present)", acked, present);
  if ((long)present > acked + 2)
    fail_msg("%u batches present but only %ld acknowledged", present, acked + 1);
  TU_EXPECT(vs_count(db, "c", &count, &err), VS_OK, &err);
  assert_int_equal(count, (uint64_t)present * BATCH);
  return present;
}

/* Replay the change log: the live pids it implies must number `count`. */
static void verify_log(vs_db *db, uint64_t count) {
  vs_change ch[512];
  vs_error err = VS_ERROR_INIT;
  uint64_t after = 0, live = 0;
  size_t n;

  do {
    TU_EXPECT(vs_changes(db, "c", after, ch, 512, &n, &err), VS_OK, &err);
    for (size_t i = 0; i < n; i++) {
      assert_int_equal(ch[i].seq, after + 1 + i);
      live += ch[i].op == VS_CHANGE_UPSERT ? 1 : (uint64_t)-1;
    }
    after += n;
  } while (n > 0);
  assert_int_equal(live, count);
}

static void test_sigkill(void **state) {
  char *dir = tu_mkdtemp();
  uint64_t seed = 20261129;
  long acked = -1;
  uint32_t present = 0;
  int kills = 0;

  (void)state;
  {
    vs_db *db = tu_open(dir, 0);
    tu_create(db, "c", DIM, VS_METRIC_L2, "Flat");
    vs_db_close(db);
  }
  for (int round = 0; round < ROUNDS; round++) {
    int fds[2], status;
    uint32_t b;
    pid_t pid;
    struct timespec ts;
    vs_db *db;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      child(dir, present, fds[1]);
    }
    close(fds[1]);
    /* Let it get going (the first ack), then kill it at a random moment. */
    assert_int_equal(read(fds[0], &b, sizeof(b)), sizeof(b));
    acked = b;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(tu_rand(&seed) % 30000000); /* 0..30 ms */
    nanosleep(&ts, NULL);
    if (kill(pid, SIGKILL) == 0)
      kills++;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(fds[0], &b, sizeof(b)) == sizeof(b))
      acked = b;
    close(fds[0]);

    db = tu_open(dir, 0);
    present = verify(db, acked);
    verify_log(db, (uint64_t)present * BATCH);
    vs_db_close(db);
  }
  assert_true(kills >= 20);
  print_message("%d kills, %u batches survived, last acknowledged %ld\n", kills, present, acked);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
