#!/usr/bin/python3
"""Integration test of `vsearch query --connect HOST:PORT` (DESIGN.md section 7).

Usage: test_remote.py PATH/TO/vsearch

Builds a small database with the command line (`vsearch create`, `vsearch
import` of JSON lines with vectors, text and payloads), starts `vsearch
serve` on it with an ephemeral port, and checks that every kind of query
prints, through the server, the same hits as the local `vsearch query DIR`
run while the server holds the database open: vector, text and hybrid
queries with their options (filter, exclude, payload fields, fusion,
explain, grouping, MMR), as JSON lines and as a table.  The local lines carry
the engine's plan, which a server's answer does not: only "query" and
"hits" are compared.  Then the failures: an unknown collection (exit 1 and
"query 0: not_found: ..."), a bad value, a refused connection, a malformed
HOST:PORT (exit 2), and a server with a token: --token-file with the right
token, a wrong one and none.  Only python3's standard library is used.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from rpctest import Server, check, summary, VSEARCH

DIM = 8



def run(*args):
    p = subprocess.run([VSEARCH] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr



WORDS = ("apple banana cherry date elder fig grape honey iris jade kiwi lemon mango "
         "nectar olive pear quince").split()


def make_db(tmp):
    rng = random.Random(20240611)
    path = os.path.join(tmp, "points.jsonl")
    with open(path, "w") as f:
        for i in range(300):
            pid = i if i % 3 else "doc-%d" % i
            f.write(json.dumps({
                "id": pid,
                "vector": [round(rng.uniform(-1, 1), 4) for _ in range(DIM)],
                "payload": {"title": " ".join(rng.sample(WORDS, 3)),
                            "body": " ".join(rng.choices(WORDS, k=10)),
                            "cat": i % 5, "price": i * 0.5}}) + "\n")
    db = os.path.join(tmp, "db")
    rc, out, err = run("create", db, "items", "--dim", DIM, "--text-fields", "title,body")
    check(rc == 0, "create: %s" % err)
    rc, out, err = run("import", db, "items", path, "--format", "jsonl")
    check(rc == 0, "import: %s" % err)
    vecs = os.path.join(tmp, "q.jsonl")
    with open(vecs, "w") as f:
        for _ in range(3):
            f.write(json.dumps([round(rng.uniform(-1, 1), 4) for _ in range(DIM)]) + "\n")
    texts = os.path.join(tmp, "q.txt")
    with open(texts, "w") as f:
        f.write("apple mango\nkiwi lemon pear\nzzz nothing matches\n")
    return db, vecs, texts


def hits_of(stdout):
    """The JSON lines of `query --json`, each reduced to its query and hits."""
    lines = [json.loads(l) for l in stdout.splitlines() if l.strip()]
    return [{"query": o["query"], "hits": o["hits"]} for o in lines]


def cases(vecs, texts):
    flt = json.dumps({"must": [{"key": "cat", "match": {"any": [1, 2, 3]}},
                               {"key": "price", "range": {"gte": 10.5}}]})
    v1 = ",".join(["0.1"] * DIM)
    return [
        ("vector", ["--vector-file", vecs, "--k", "5"]),
        ("vector inline, payload", ["--vector", v1, "--k", "3", "--with-payload"]),
        ("vector exact, filter, exclude",
         ["--vector-file", vecs, "--exact", "--k", "6", "--filter", flt, "--exclude",
          '7,"doc-9"']),
        ("vector ef, fields, vector",
         ["--vector-file", vecs, "--ef", "80", "--k", "4", "--payload-fields", "title,cat",
          "--with-vector"]),
        ("text", ["--text-file", texts, "--k", "5"]),
        ("text weights, filter", ["--text", "apple honey", "--weights", "title=2,body=0.5",
                                  "--filter", flt, "--with-payload"]),
        ("hybrid", ["--vector-file", vecs, "--text-file", texts, "--k", "5"]),
        ("hybrid explain", ["--vector-file", vecs, "--text-file", texts, "--k", "5", "--explain",
                            "--exclude", "4,5", "--payload-fields", "cat"]),
        ("hybrid weighted", ["--vector-file", vecs, "--text", "grape fig", "--fusion", "weighted",
                             "--leg-weights", "1,0.5", "--candidates", "40"]),
        ("hybrid field weights", ["--vector-file", vecs, "--text", "apple honey", "--weights",
                                  "title=3,body=0.2", "--fusion", "weighted"]),
        ("hybrid rrf-k, filter", ["--vector", v1, "--text-file", texts, "--rrf-k", "10",
                                  "--filter", flt]),
        ("hybrid group-by", ["--vector-file", vecs, "--text-file", texts, "--group-by", "cat",
                             "--group-size", "2", "--k", "3"]),
        ("text group-by", ["--text-file", texts, "--group-by", "cat"]),
        ("vector mmr", ["--vector-file", vecs, "--mmr", "0.5", "--mmr-candidates", "30",
                        "--k", "4"]),
    ]


def test_same(addr, db, vecs, texts):
    for what, args in cases(vecs, texts):
        lrc, lout, lerr = run("query", db, "items", *args, "--json")
        rrc, rout, rerr = run("query", "--connect", addr, "items", *args, "--json")
        check(lrc == 0, "%s: local query failed: %s" % (what, lerr))
        check(rrc == 0, "%s: remote query failed: %s" % (what, rerr))
        if lrc or rrc:
            continue
        local, remote = hits_of(lout), hits_of(rout)
        check(len(local) > 0 and any(q["hits"] for q in local), "%s: no hits at all" % what)
        check(local == remote, "%s: remote %r != local %r" % (what, remote, local))
        for line in rout.splitlines():
            check(sorted(json.loads(line)) == ["hits", "query"],
                  "%s: remote line has members beyond query and hits: %s" % (what, line))
    # The table: same rows (the header's plan aside).
    args = ["--vector-file", vecs, "--text-file", texts, "--k", "3", "--explain"]
    lrc, lout, _ = run("query", db, "items", *args)
    rrc, rout, _ = run("query", "--connect", addr, "items", *args)
    body = lambda s: [l for l in s.splitlines() if l.startswith("  ") and "note:" not in l]
    check(lrc == 0 and rrc == 0 and body(lout) == body(rout) and body(rout),
          "table rows differ:\n%s\n---\n%s" % (lout, rout))
    check(rout.startswith("query 0: 3 hits\n"), "remote table header: %r" % rout[:40])


def test_errors(addr, vecs):
    rc, out, err = run("query", "--connect", addr, "nope", "--text", "apple", "--json")
    check(rc == 1, "unknown collection: exit %d" % rc)
    check("query 0: not_found:" in err, "unknown collection: stderr %r" % err)
    check(out == "", "unknown collection: stdout %r" % out)
    rc, out, err = run("query", "--connect", addr, "items", "--vector", "1,2", "--json")
    check(rc == 1 and "query 0: dim_mismatch:" in err, "dim mismatch: %d %r" % (rc, err))
    rc, out, err = run("query", "--connect", addr, "items", "--text", "x", "--k", "0")
    check(rc == 1 and "query 0: bad_request:" in err, "k 0: %d %r" % (rc, err))
    rc, out, err = run("query", "--connect", "localhost", "items", "--text", "x")
    check(rc == 2 and "HOST:PORT" in err, "no port: %d %r" % (rc, err))
    rc, out, err = run("query", "--connect", addr, "items", "--bogus")
    check(rc == 2, "unknown option: exit %d" % rc)
    rc, out, err = run("query", "items", "x", "--text", "x", "--token-file", "/nonexistent")
    check(rc == 2, "--token-file without --connect: exit %d" % rc)


def test_refused():
    # A port nobody listens on: bind one, close it, connect to it.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, out, err = run("query", "--connect", "127.0.0.1:%d" % port, "items", "--text", "x")
    check(rc == 1 and "cannot connect" in err, "refused connection: %d %r" % (rc, err))


def test_auth(tmp, db, vecs):
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cret-token\n")
    wrong = os.path.join(tmp, "wrong")
    with open(wrong, "w") as f:
        f.write("not-it\n")
    srv = Server(db, "--token-file", token, threads=2)
    try:
        args = ["--vector-file", vecs, "--k", "4", "--json"]
        rc, out, err = run("query", "--connect", srv.addr, "items", *args, "--token-file", token)
        lrc, lout, _ = run("query", db, "items", *args)
        check(rc == 0 and hits_of(out) == hits_of(lout), "auth: %d %r %r" % (rc, out, err))
        rc, out, err = run("query", "--connect", srv.addr, "items", *args, "--token-file", wrong)
        check(rc == 1 and "unauthenticated" in err, "wrong token: %d %r" % (rc, err))
        rc, out, err = run("query", "--connect", srv.addr, "items", *args)
        check(rc == 1 and "query 0: unauthenticated:" in err, "no token: %d %r" % (rc, err))
        rc, out, err = run("query", "--connect", srv.addr, "items", *args, "--token-file",
                           os.path.join(tmp, "missing"))
        check(rc == 1, "missing token file: exit %d" % rc)
    finally:
        rc, log = srv.stop()
        check(rc == 0, "token server exit %d: %s" % (rc, log))


def main():
    tmp = tempfile.mkdtemp(prefix="vs_test_remote.")
    try:
        db, vecs, texts = make_db(tmp)
        srv = Server(db, threads=2)
        try:
            test_same(srv.addr, db, vecs, texts)
            test_errors(srv.addr, vecs)
        finally:
            rc, log = srv.stop()
            check(rc == 0, "server exit %d: %s" % (rc, log))
        test_refused()
        test_auth(tmp, db, vecs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
