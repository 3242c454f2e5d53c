#!/usr/bin/python3
"""Integration test of `vsearch serve` over loopback (DESIGN.md sections 5, 6).

Usage: test_server.py PATH/TO/vsearch

Starts the server on 127.0.0.1 with an ephemeral port (--listen 127.0.0.1:0
prints the bound port on stdout) and drives it with Debian's python3-msgpack
over a raw socket, an encoder independent of the project's: every method
with its expected result, pipelining with responses matched by msgid,
malformed and invalid requests with their error codes (checking that the
data is unchanged and that other connections keep being served), auth with a
token file and the pre-auth size limit, and a graceful shutdown after which
a restarted server sees every acknowledged write.
"""
import math
import os
import shutil
import signal
import socket
import time
import struct
import sys
import tempfile

import msgpack

from rpctest import Server, check, summary





class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.next_id = 1

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, args=None, msgid=None):
        if msgid is None:
            msgid = self.next_id
            self.next_id += 1
        params = [] if args is None else [args]
        self.send(msgpack.packb([0, msgid, method, params], use_bin_type=True))
        return msgid

    def recv(self):
        """The next message, or None when the server closed the connection."""
        while True:
            for obj in self.unpacker:
                return obj
            data = self.sock.recv(1 << 16)
            if not data:
                return None
            self.unpacker.feed(data)

    def call(self, method, args=None):
        msgid = self.request(method, args)
        resp = self.recv()
        assert resp is not None and resp[0] == 1 and resp[1] == msgid, resp
        return resp[2], resp[3]

    def ok(self, method, args=None):
        err, res = self.call(method, args)
        check(err is None, "%s %r: unexpected error %r" % (method, args, err))
        return res

    def closed(self):
        """Did the server close the connection (after what it sent)?  A reset
        counts: closing with bytes of ours still unread makes one."""
        try:
            self.sock.settimeout(10)
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.unpacker.feed(data)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def code(err):
    return err["code"] if isinstance(err, dict) else err


def f32(xs):
    return struct.pack("<%df" % len(xs), *xs)


def vec(i):
    """Point i's vector: distinct, exactly representable."""
    return [float(i), float(i % 3), 1.0, -float(i % 5)]


def sqdist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


def test_methods(c):
    check(c.ok("ping") == "pong", "ping")
    d = c.ok("create_collection", {"name": "items", "dim": 4, "metric": "l2", "index": "Flat"})
    check(d and d["name"] == "items" and d["dim"] == 4 and d["metric"] == "l2"
          and d["index"] == "Flat" and d["count"] == 0, "create_collection result %r" % d)
    d = c.ok("create_collection", {"name": "docs", "dim": 4, "metric": "cosine",
                                   "text_fields": ["text"], "bm25": {"k1": 1.2, "b": 0.75}})
    check(d and d["text_fields"] == ["text"] and d["language"] == "english", "create docs %r" % d)
    err, _ = c.call("create_collection", {"name": "items", "dim": 4})
    check(code(err) == "already_exists", "duplicate create: %r" % err)
    names = [x["name"] for x in c.ok("list_collections")]
    check(names == ["docs", "items"], "list_collections %r" % names)

    # 40 points: integer ids with array vectors, string ids with bin vectors.
    points = []
    for i in range(40):
        pid = i if i % 2 == 0 else "p%d" % i
        v = vec(i)
        points.append({"id": pid, "vector": v if i % 2 == 0 else f32(v),
                       "payload": {"n": i, "kind": "even" if i % 2 == 0 else "odd",
                                   "tags": ["t%d" % (i % 4)]}})
    r = c.ok("upsert", {"collection": "items", "points": points})
    check(r == {"upserted": 40}, "upsert result %r" % r)
    check(c.ok("count", {"collection": "items"}) == 40, "count")
    check(c.ok("count", {"collection": "items",
                         "filter": {"must": [{"key": "kind", "match": {"value": "even"}}]}}) == 20,
          "count with filter")
    d = c.ok("describe_collection", {"name": "items"})
    check(d["count"] == 40, "describe count %r" % d)

    got = c.ok("get", {"collection": "items", "ids": [2, "p3", 999, "nope"], "with_vector": True})
    check(len(got) == 4 and got[2] is None and got[3] is None, "get missing -> nil %r" % got)
    check(got[0]["id"] == 2 and got[0]["payload"]["n"] == 2 and got[0]["vector"] == vec(2),
          "get int id %r" % got[0])
    check(got[1]["id"] == "p3" and got[1]["vector"] == vec(3) and got[1]["payload"]["kind"] == "odd",
          "get str id %r" % got[1])
    got = c.ok("get", {"collection": "items", "ids": [2], "with_payload": False})
    check(got == [{"id": 2}], "get without payload %r" % got)

    # Exact search: the scores are squared distances, ascending.
    q = [10.0, 1.0, 1.0, 0.0]
    want = sorted(range(40), key=lambda i: (sqdist(vec(i), q), i))[:5]
    hits = c.ok("search", {"collection": "items", "vector": q, "k": 5, "exact": True})
    ids = [h["id"] for h in hits]
    check(ids == [i if i % 2 == 0 else "p%d" % i for i in want], "search ids %r want %r" % (ids, want))
    check(all(abs(h["score"] - sqdist(vec(i), q)) < 1e-4 for h, i in zip(hits, want)),
          "search scores %r" % hits)
    check(all("payload" not in h for h in hits), "search without payload")
    hits = c.ok("search", {"collection": "items", "vector": f32(q), "k": 3,
                           "with_payload": ["n"], "with_vector": True,
                           "exclude": [want[0] if want[0] % 2 == 0 else "p%d" % want[0]],
                           "filter": {"must": [{"key": "n", "range": {"lt": 100}}]}})
    check(len(hits) == 3 and all(set(h["payload"]) == {"n"} for h in hits)
          and all(len(h["vector"]) == 4 for h in hits), "search projection %r" % hits)
    check(hits[0]["payload"]["n"] == want[1], "search exclude %r" % hits)
    hits = c.ok("search", {"collection": "items", "vector": q, "k": 40,
                           "filter": {"must": [{"key": "kind", "match": {"value": "odd"}}]},
                           "with_payload": True})
    check(len(hits) == 20 and all(h["payload"]["kind"] == "odd" for h in hits), "filtered search")

    batch = c.ok("search_batch", {"collection": "items", "vectors": [q, f32(vec(7))], "k": 2})
    check(len(batch) == 2 and [h["id"] for h in batch[0]] == [h["id"] for h in
                                                            c.ok("search", {"collection": "items",
                                                                            "vector": q, "k": 2})]
          and batch[1][0]["id"] == "p7", "search_batch %r" % batch)

    rec = c.ok("recommend", {"collection": "items", "positive": [4, "p5"], "negative": [vec(30)],
                             "k": 5})
    rids = [h["id"] for h in rec]
    check(len(rec) == 5 and 4 not in rids and "p5" not in rids, "recommend %r" % rec)

    texts = ["the quick brown fox", "a lazy dog sleeps", "quick quick rabbits run",
             "foxes and dogs", "nothing relevant here"]
    c.ok("upsert", {"collection": "docs", "points": [
        {"id": "d%d" % i, "vector": [1.0, float(i), 0.5, 0.0],
         "payload": {"text": t, "doc": "doc%d" % (i // 2)}} for i, t in enumerate(texts)]})
    hits = c.ok("text_search", {"collection": "docs", "query": "quick", "k": 10,
                                "with_payload": True})
    check([h["id"] for h in hits] == ["d2", "d0"] and hits[0]["score"] > hits[1]["score"] > 0
          and hits[0]["payload"]["text"] == texts[2], "text_search %r" % hits)
    hits = c.ok("hybrid_search", {"collection": "docs", "vector": [1.0, 0.0, 0.5, 0.0],
                                  "query": "quick fox", "k": 3, "explain": True})
    check(len(hits) == 3 and hits[0]["id"] == "d0" and "vector_rank" in hits[0]
          and hits[0]["text_rank"] >= 1, "hybrid rrf %r" % hits)
    check(abs(hits[0]["score"] - (1 / (60 + hits[0]["vector_rank"]) + 1 / (60 + hits[0]["text_rank"])))
          < 1e-6, "hybrid rrf arithmetic %r" % hits[0])
    hits = c.ok("hybrid_search", {"collection": "docs", "vector": [1.0, 0.0, 0.5, 0.0],
                                  "query": "quick", "k": 2, "fusion": "weighted",
                                  "weights": {"vector": 1, "text": 2}, "group_by": "doc",
                                  "mmr": {"lambda": 0.7}, "with_payload": ["doc"]})
    check(len(hits) == 2 and hits[0]["payload"]["doc"] != hits[1]["payload"]["doc"]
          and "group" in hits[0], "hybrid weighted group_by mmr %r" % hits)

    r = c.ok("delete", {"collection": "items", "ids": [0, "p1", 12345]})
    check(r == {"deleted": 2}, "delete %r" % r)
    check(c.ok("get", {"collection": "items", "ids": [0]}) == [None], "deleted point is gone")
    r = c.ok("rebuild", {"collection": "items"})
    check(r["count"] == 38 and r["seconds"] >= 0, "rebuild %r" % r)
    hits = c.ok("search", {"collection": "items", "vector": vec(0), "k": 1})
    check(hits[0]["id"] != 0, "deleted point not returned after rebuild")

    # delete by filter: exactly the passing points, in one transaction.
    c.ok("create_collection", {"name": "del", "dim": 0, "text_fields": ["t"]})
    c.ok("upsert", {"collection": "del", "points": [
        {"id": i, "payload": {"n": i, "t": "word%d" % i}} for i in range(10)]})
    r = c.ok("delete", {"collection": "del", "filter": {"must": [{"key": "n", "range": {"lt": 4}}]}})
    check(r == {"deleted": 4}, "delete by filter %r" % r)
    check(c.ok("count", {"collection": "del"}) == 6, "count after delete by filter")
    check(c.ok("text_search", {"collection": "del", "query": "word2", "k": 3}) == [],
          "a point deleted by filter leaves the text index")
    check(c.ok("drop_collection", {"name": "del"}) is True, "drop del")

    c.ok("create_collection", {"name": "tmp", "dim": 0, "text_fields": ["t"]})
    check(c.ok("drop_collection", {"name": "tmp"}) is True, "drop_collection")
    err, _ = c.call("describe_collection", {"name": "tmp"})
    check(code(err) == "not_found", "dropped collection is gone")

    st = c.ok("stats")
    check(st["connections"] >= 1 and st["uptime_s"] > 0 and st["methods"]["search"]["count"] >= 4
          and "p99_ms" in st["methods"]["search"] and st["methods"]["create_collection"]["errors"] == 1,
          "stats %r" % st)


def test_flood(port):
    """20,000 pings sent before any reply is read: framing pauses at the
    unsent-response limit and resumes as replies go; every one arrives."""
    c = Client(port)
    n = 20000
    blob = b"".join(msgpack.packb([0, i + 1, "ping", []]) for i in range(n))
    import threading
    t = threading.Thread(target=c.send, args=(blob,))
    t.start()
    seen = set()
    while len(seen) < n:
        r = c.recv()
        if r is None:
            break
        if r[3] == "pong":
            seen.add(r[1])
    t.join()
    check(len(seen) == n, "flood of %d pings: %d answered" % (n, len(seen)))
    c.close()


def test_pipelining(port):
    c = Client(port)
    wanted = {}
    blob = b""
    for i in range(60):
        msgid = 1000 + i
        if i % 3 == 0:
            blob += msgpack.packb([0, msgid, "ping", []])
            wanted[msgid] = "pong"
        elif i % 3 == 1:
            blob += msgpack.packb([0, msgid, "get", [{"collection": "items", "ids": [i * 0 + 2]}]])
            wanted[msgid] = "get"
        else:
            blob += msgpack.packb([0, msgid, "search", [{"collection": "items", "vector": vec(i % 40),
                                                         "k": 1, "exact": True}]])
            wanted[msgid] = ("search", i % 40)
    c.send(blob)  # every request before any response is read
    seen = {}
    for _ in range(60):
        r = c.recv()
        check(r is not None and r[0] == 1 and r[2] is None, "pipelined response %r" % (r,))
        if r:
            seen[r[1]] = r[3]
    check(set(seen) == set(wanted), "every pipelined msgid answered once")
    for msgid, w in wanted.items():
        r = seen.get(msgid)
        if w == "pong":
            check(r == "pong", "pipelined ping %r" % r)
        elif w == "get":
            check(r and r[0]["id"] == 2, "pipelined get %r" % r)
        else:
            i = w[1]
            if i in (0, 1):
                continue  # deleted
            check(r and r[0]["id"] == (i if i % 2 == 0 else "p%d" % i), "pipelined search %r" % r)
    c.close()


# Messages that are not MessagePack-RPC: one error (msgid when readable),
# then the connection closes.  (bytes, expected code, expected msgid)
MALFORMED = [
    (b"\xdd\xff\x00\x00\x00", "too_large", 0),                       # array of 0xff000000
    (b"\xdf\xff\xff\xff\xff", "too_large", 0),                       # map32 of 4G pairs
    (b"\xdb\xff\xff\xff\xf0", "too_large", 0),                       # str32 of ~4 GB
    (b"\xc6\x7f\xff\xff\xff", "too_large", 0),                       # bin32 of 2 GB
    (b"\xc9\x7f\xff\xff\xff\x01", "too_large", 0),                   # ext32 of 2 GB
    (b"\x94\x00\x01\xa4ping\x91\xdd\x7f\xff\xff\xff", "too_large", 0),  # nested, 2G elements
    (b"\x91" * 40 + b"\xc0", "too_large", 0),                        # 40 levels deep
    # 300,000 one-byte integers: small in bytes, but past --max-objects 200000
    # (msgpack-c would allocate ~24 bytes for each).
    (msgpack.packb([0, 11, "ping", [[0] * 300000]]), "too_large", 0),
    (b"\xc1", "bad_request", 0),                                     # reserved byte
    (b"\x94\x00\x01\xa4ping\xc1", "bad_request", 0),                 # reserved inside
    (msgpack.packb({"a": 1}), "bad_request", 0),                     # not an array
    (msgpack.packb("ping"), "bad_request", 0),                       # a bare string
    (msgpack.packb([1, 5, None, None]), "bad_request", 5),           # a response, not a request
    (msgpack.packb([2, 5, []]), "bad_request", 0),                   # notification, method 5
    (msgpack.packb([2, "ping"]), "bad_request", 0),                  # notification, no params
    (msgpack.packb([0, 6, "ping"]), "bad_request", 6),               # missing params
    (msgpack.packb([0, "x", "ping", []]), "bad_request", 0),         # msgid not an integer
    (msgpack.packb([0, -1, "ping", []]), "bad_request", 0),          # negative msgid
    (msgpack.packb([0, 7, 5, []]), "bad_request", 7),                # method not a string
    (msgpack.packb([0, 8, "ping", {}]), "bad_request", 8),           # params not an array
    (msgpack.packb([0, 9, "ping", [], 1]), "bad_request", 9),        # five elements
    (b"\xc5\x00\x10" + b"\x00" * 8, None, None),                     # truncated: no answer yet
]


def test_malformed(port, keep):
    for i, (data, want, msgid) in enumerate(MALFORMED):
        c = Client(port)
        c.send(data)
        if want is None:
            # An incomplete message is awaited, not answered; the other
            # connections are not held up by it.
            check(keep.ok("ping") == "pong", "server answers while a message is incomplete")
            c.close()
            continue
        r = c.recv()
        check(r is not None and r[0] == 1 and r[1] == msgid and code(r[2]) == want
              and r[3] is None, "malformed #%d %r: got %r, want %s" % (i, data[:16], r, want))
        check(c.closed(), "malformed #%d: connection closed" % i)
        check(keep.ok("ping") == "pong", "other connection served after malformed #%d" % i)
    # A malformed message after valid ones: the valid ones are answered.
    c = Client(port)
    c.send(msgpack.packb([0, 1, "ping", []]) + msgpack.packb([0, 2, "count", [{"collection": "items"}]])
           + b"\xc1")
    got = {}
    for _ in range(3):
        r = c.recv()
        if r:
            got[r[1]] = r
    check(got.get(1, [0, 0, 0, 0])[3] == "pong" and got.get(2, [0, 0, 0, 0])[3] == 38
          and code(got.get(0, [0, 0, {}, 0])[2]) == "bad_request",
          "valid requests before a malformed one are answered %r" % got)
    check(c.closed(), "closed after the malformed tail")


NAN = float("nan")


def invalid_requests():
    """(method, args, expected code): valid MessagePack-RPC, invalid request."""
    good = {"id": 500, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"n": 500}}
    return [
        ("no_such_method", {}, "unknown_method"),
        ("search", {"collection": "ghost", "vector": [1, 2, 3, 4]}, "not_found"),
        ("upsert", {"collection": "ghost", "points": [good]}, "not_found"),
        ("describe_collection", {"name": "ghost"}, "not_found"),
        ("drop_collection", {"name": "ghost"}, "not_found"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "k": 10001}, "too_large"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "k": 0}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "k": "ten"}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3]}, "dim_mismatch"),
        ("search", {"collection": "items", "vector": f32([1, 2, 3, 4, 5])}, "dim_mismatch"),
        ("search", {"collection": "items", "vector": [1, NAN, 3, 4]}, "bad_request"),
        ("search", {"collection": "items", "vector": f32([1, 2, NAN, 4])}, "bad_request"),
        ("search", {"collection": "items", "vector": b"\x00" * 7}, "bad_request"),
        ("search", {"collection": "items", "vector": "1,2,3,4"}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, "2", 3, 4]}, "bad_request"),
        ("search", {"collection": "items"}, "bad_request"),
        ("search", {"vector": [1, 2, 3, 4]}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "kk": 3}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "filter": {"must": 5}},
         "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "filter": [1]}, "bad_request"),
        ("search", {"collection": "items", "vector": [1, 2, 3, 4], "with_payload": 5},
         "bad_request"),
        ("search", {"collection": 7, "vector": [1, 2, 3, 4]}, "bad_request"),
        ("search_batch", {"collection": "items", "vectors": [[1, 2, 3, 4]] * 101}, "too_large"),
        ("search_batch", {"collection": "items", "vectors": [[1, 2, 3, 4], [1, 2]]},
         "dim_mismatch"),
        ("upsert", {"collection": "items", "points": [good, dict(good, id=501, vector=[1, NAN, 0, 0])]},
         "bad_request"),
        ("upsert", {"collection": "items", "points": [good, dict(good, id=502, vector=[1, 2])]},
         "dim_mismatch"),
        ("upsert", {"collection": "items", "points": [dict(good, id=600 + i) for i in range(101)]},
         "too_large"),
        ("upsert", {"collection": "items", "points": [good, dict(good, id=-3)]}, "bad_request"),
        ("upsert", {"collection": "items", "points": [good, dict(good, id="x" * 300)]},
         "bad_request"),
        ("upsert", {"collection": "items", "points": [good, dict(good, payload=[1, 2])]},
         "bad_request"),
        ("upsert", {"collection": "items", "points": [good, dict(good, payload={"a": {"b": 1}})]},
         "bad_request"),
        ("upsert", {"collection": "items", "points": [good, {"vector": [1, 2, 3, 4]}]},
         "bad_request"),
        ("upsert", {"collection": "items", "points": "all"}, "bad_request"),
        ("upsert", {"collection": "items", "points": [good, dict(good, colour="red")]},
         "bad_request"),
        ("delete", {"collection": "items", "filter": {"must": 5}}, "bad_request"),
        ("delete", {"collection": "items", "ids": [1], "filter": {"must": []}}, "bad_request"),
        ("delete", {"collection": "items", "ids": [2, 3.5]}, "bad_request"),
        ("get", {"collection": "items", "ids": 2}, "bad_request"),
        ("create_collection", {"name": "bad name", "dim": 4}, "bad_request"),
        ("create_collection", {"name": "x", "dim": "four"}, "bad_request"),
        ("create_collection", {"name": "x", "dim": 4, "metric": "hamming"}, "bad_request"),
        ("create_collection", {"name": "x", "dim": 4, "index": "NotAnIndex"}, "bad_request"),
        ("create_collection", {"name": "x", "dim": 40000}, "bad_request"),
        ("text_search", {"collection": "docs", "query": 5}, "bad_request"),
        ("hybrid_search", {"collection": "docs", "k": 3}, "bad_request"),
        ("hybrid_search", {"collection": "docs", "query": "fox", "fusion": "max"}, "bad_request"),
        ("hybrid_search", {"collection": "docs", "query": "fox", "candidates": 20000}, "too_large"),
        ("hybrid_search", {"collection": "docs", "query": "fox", "text_weights": [1]},
         "bad_request"),
        ("hybrid_search", {"collection": "docs", "query": "fox", "text_weights": {"text": "x"}},
         "bad_request"),
        ("recommend", {"collection": "items", "positive": [123456]}, "not_found"),
        ("recommend", {"collection": "items", "positive": []}, "bad_request"),
        ("rebuild", {"collection": "items", "index": "Bogus"}, "bad_request"),
    ]


def test_invalid(port, keep):
    c = Client(port)
    before = c.ok("count", {"collection": "items"})
    for method, args, want in invalid_requests():
        err, res = c.call(method, args)
        check(code(err) == want and res is None and isinstance(err.get("message"), str),
              "%s %r: got %r, want %s" % (method, str(args)[:80], err, want))
    # params that are not [] or [map]
    for params in ([1, 2], ["x"], [[1]]):
        c.send(msgpack.packb([0, 77, "ping", params]))
        r = c.recv()
        check(r is not None and r[1] == 77 and code(r[2]) == "bad_request", "params %r: %r" %
              (params, r))
    check(c.ok("ping") == "pong", "connection stays open after invalid requests")
    check(c.ok("count", {"collection": "items"}) == before, "data unchanged after failed requests")
    check(c.ok("get", {"collection": "items", "ids": [500, 501, 502, 600]}) == [None] * 4,
          "no point of a failed upsert was written")
    check(c.ok("list_collections") and len(c.ok("list_collections")) == 2, "no collection created")
    check(keep.ok("ping") == "pong", "other connection still served")
    c.close()


def test_notifications(port):
    """Notifications [2, method, params] run and are never answered, failed
    ones included; the connection stays open."""
    c = Client(port)
    c.send(msgpack.packb([2, "upsert", [{"collection": "items", "points": [
        {"id": 4242, "vector": vec(42), "payload": {"n": 4242}}]}]], use_bin_type=True))
    c.send(msgpack.packb([2, "no_such_method", []]))
    c.send(msgpack.packb([2, "search", [{"collection": "nope", "vector": vec(1)}]]))
    c.send(msgpack.packb([2, "ping", []]))
    got = None
    for attempt in range(200):
        msgid = c.request("get", {"collection": "items", "ids": [4242]})
        r = c.recv()
        check(r is not None and r[0] == 1 and r[1] == msgid and r[2] is None,
              "only the request is answered: %r" % (r,))
        if r is None or r[1] != msgid:
            break
        got = r[3][0]
        if got is not None:
            break
        time.sleep(0.01)
    check(got is not None and got["payload"] == {"n": 4242}, "a notified upsert lands %r" % got)
    c.ok("delete", {"collection": "items", "ids": [4242]})
    c.close()


def test_auth(tmp):
    tokfile = os.path.join(tmp, "token")
    with open(tokfile, "w") as f:
        f.write("s3cret-token\n")
    srv = Server(os.path.join(tmp, "authdb"), "--token-file", tokfile, "--max-connections", "3")
    try:
        c = Client(srv.port)
        err, _ = c.call("ping")
        check(code(err) == "unauthenticated", "ping before auth: %r" % err)
        err, _ = c.call("create_collection", {"name": "a", "dim": 2})
        check(code(err) == "unauthenticated", "create before auth: %r" % err)
        err, _ = c.call("no_such_method")
        check(code(err) == "unauthenticated", "unknown method before auth: %r" % err)
        # A wrong token: refused, and that connection closes (one guess each).
        w = Client(srv.port)
        err, _ = w.call("auth", {"token": "wrong"})
        check(code(err) == "unauthenticated", "wrong token: %r" % err)
        check(w.closed(), "a wrong token closes the connection")
        check(c.ok("auth", {"token": "s3cret-token"}) is True, "auth")
        check(c.ok("ping") == "pong", "ping after auth")
        d = c.ok("create_collection", {"name": "a", "dim": 2, "index": "Flat"})
        check(d["name"] == "a", "create after auth")
        # After auth, messages over 1 KiB are fine.
        r = c.ok("upsert", {"collection": "a", "points": [
            {"id": i, "vector": [float(i), 0.0], "payload": {"s": "x" * 50}} for i in range(100)]})
        check(r == {"upserted": 100}, "large message after auth")
        # Before auth, a message over 1 KiB is refused and the connection closed.
        d = Client(srv.port)
        d.request("auth", {"token": "x" * 2000}, msgid=3)
        r = d.recv()
        check(r is not None and r[1] == 0 and code(r[2]) == "too_large", "pre-auth 2 KiB: %r" % r)
        check(d.closed(), "pre-auth oversize closes")
        check(c.ok("count", {"collection": "a"}) == 100, "authenticated connection still served")
        # --max-connections 3: a fourth connection gets "overloaded" and is closed.
        e, f = Client(srv.port), Client(srv.port)
        for x in (e, f):
            err, _ = x.call("ping")
            check(code(err) == "unauthenticated", "connection within the limit is served")
        g = Client(srv.port)
        r = g.recv()
        check(r is not None and r[1] == 0 and code(r[2]) == "overloaded", "4th connection: %r" % r)
        check(g.closed(), "4th connection closed")
        e.close()
        f.close()
        check(c.ok("ping") == "pong", "served after the connection limit was hit")
        c.close()
    finally:
        rc, log = srv.stop()
    check(rc == 0, "auth server exit status %d" % rc)
    check("s3cret-token" not in log, "the token is not logged")


def test_timeouts(tmp):
    """Silent connections are closed: idle ones, ones holding half a message,
    and (with a token) ones that do not authenticate."""
    srv = Server(os.path.join(tmp, "tdb"), "--idle-timeout", "1", "--read-timeout", "1")
    try:
        idle = Client(srv.port)
        half = Client(srv.port)
        half.send(msgpack.packb([0, 1, "ping", []])[:3])
        busy = Client(srv.port)
        t0 = time.time()
        while time.time() - t0 < 3.5:
            check(busy.ok("ping") == "pong", "a talking connection stays")
            time.sleep(0.2)
        check(idle.closed(), "an idle connection is closed")
        check(half.closed(), "a connection holding a partial message is closed")
        check(busy.ok("ping") == "pong", "the talking connection still served")
    finally:
        rc, log = srv.stop()
    check(rc == 0 and "idle" in log and "partial message timed out" in log,
          "timeouts logged (%d):\n%s" % (rc, log))


def load_flat64(c, name, per_call):
    """A Flat collection of 20,000 64-d points, upserted per_call at a time."""
    c.ok("create_collection", {"name": name, "dim": 64, "metric": "l2", "index": "Flat"})
    for base in range(0, 20000, per_call):
        c.ok("upsert", {"collection": name, "points": [
            {"id": i, "vector": f32([math.sin(i * 0.01 + j) for j in range(64)])}
            for i in range(base, base + per_call)]})


def test_memory(tmp):
    """--max-memory bounds what the connections hold together: a message
    that needs a read buffer past it is refused and its connection closed;
    requests that would take it past the limit while others are in flight
    are answered overloaded on an open connection; the accounting returns
    to the connections' buffers afterwards."""
    db = os.path.join(tmp, "memdb")
    srv = Server(db, "--max-memory", str(1 << 20))
    c = Client(srv.port)
    load_flat64(c, "m", 1000)  # upserts small enough for the budget
    big = Client(srv.port)
    big.send(msgpack.packb([0, 1, "ping", [{"x": b"\0" * (2 << 20)}]], use_bin_type=True))
    r = big.recv()
    check(r is not None and code(r[2]) == "overloaded" and big.closed(),
          "a 2 MiB message over a 1 MiB budget is refused: %r" % (r if r is None else r[:3],))
    check(c.ok("ping") == "pong", "others are served")
    burst = Client(srv.port)
    burst.send(b"".join(msgpack.packb([0, i, "search", [{"collection": "m", "exact": True,
                                                         "vector": f32([0.5] * 64),
                                                         "exclude": list(range(10000))}]])
                        for i in range(8)))
    codes = []
    for _ in range(8):
        r = burst.recv()
        codes.append(None if r is None else code(r[2]))
    check(codes.count("overloaded") >= 1 and codes.count(None) >= 1,
          "a burst over the budget: some run, some overloaded %r" % codes)
    check(c.ok("count", {"collection": "m"}) == 20000, "the connection stays open, data intact")
    burst.close()
    time.sleep(0.2)
    st = c.ok("stats")
    check(st["memory_refusals"] >= 1 + codes.count("overloaded") and
          st["memory_bytes"] <= 4 * 65536,
          "memory accounting: %r" % {k: st[k] for k in ("memory_bytes", "memory_refusals")})
    c.close()
    srv.stop()


def test_batching(tmp):
    """Concurrent searches answered together (--max-batch) get what each
    gets alone: plain searches of two collections and shapes batch, the
    rest (filters, exclusions, exact, bad vectors, unknown collections) run
    alone; stats count the batches."""
    db = os.path.join(tmp, "batchdb")
    srv = Server(db, "--max-batch", "16")
    c = Client(srv.port)
    c.ok("create_collection", {"name": "fb", "dim": 8, "metric": "l2", "index": "Flat"})
    c.ok("create_collection", {"name": "hb", "dim": 8, "metric": "cosine", "index": "HNSW16"})
    for name in ("fb", "hb"):
        pts = [{"id": i if i % 4 else "s%d" % i,
                "vector": f32([math.sin(i * 0.37 + j) * (1 + j % 3) for j in range(8)]),
                "payload": {"g": i % 5}} for i in range(600)]
        c.ok("upsert", {"collection": name, "points": pts})
    c.ok("rebuild", {"collection": "hb"})
    c.ok("delete", {"collection": "fb", "ids": [5, 6, 7]})

    def q(i):
        return [math.cos(i * 0.11 + j) for j in range(8)]

    reqs = []
    for i in range(96):
        a = {"collection": "fb" if i % 2 else "hb", "vector": f32(q(i)), "k": 5 + i % 3 * 5}
        kind = i % 12
        if kind == 3:
            a["filter"] = {"must": [{"key": "g", "match": {"value": 2}}]}
        elif kind == 5:
            a["exclude"] = [1, 2, 3, "s4"]
        elif kind == 7:
            a["exact"] = True
        elif kind == 8:
            a["vector"] = f32(q(i)[:7])  # wrong dimension
        elif kind == 9:
            a["vector"] = f32([float("nan")] + q(i)[1:])
        elif kind == 10:
            a["collection"] = "nope"
        elif kind == 11:
            a["with_payload"] = True
        reqs.append(a)
    alone = [c.call("search", a) for a in reqs]  # one at a time: never batched
    check(sum(1 for e, _ in alone if e is None) >= 70, "most reference searches succeed")

    def pipelined():
        conns = [Client(srv.port) for _ in range(3)]
        for ci, cl in enumerate(conns):
            cl.send(b"".join(msgpack.packb([0, i, "search", [a]], use_bin_type=True)
                             for i, a in enumerate(reqs) if i % 3 == ci))
        got = {}
        for ci, cl in enumerate(conns):
            for _ in range(sum(1 for i in range(len(reqs)) if i % 3 == ci)):
                r = cl.recv()
                if r is not None:
                    got[r[1]] = (r[2], r[3])
            cl.close()
        return got

    batches = 0
    for attempt in range(10):
        got = pipelined()
        check(len(got) == len(reqs), "every pipelined search answered (%d)" % len(got))
        for i, want in enumerate(alone):
            g = got.get(i)
            check(g is not None and code(g[0]) == code(want[0]) and g[1] == want[1],
                  "search %d batched %r, alone %r" % (i, g, want))
        batches = c.ok("stats")["search_batches"]
        if batches > 0:
            break
    st = c.ok("stats")
    print("batching:", attempt, st["search_batches"], st["batched_searches"])
    check(batches > 0 and st["batched_searches"] >= 2 * batches,
          "searches were batched: %r" % {k: st[k] for k in ("search_batches", "batched_searches")})
    # Queries of a connection that is gone are not run: 120 exact scans of
    # 20,000 points sent, then a reset.
    load_flat64(c, "big", 5000)
    gone = Client(srv.port)
    gone.send(b"".join(msgpack.packb([0, i, "search", [{"collection": "big", "exact": True,
                                                        "vector": f32([0.5] * 64)}]])
                       for i in range(120)))
    # The first answer means the server has read and dispatched them (they
    # came in one read); a reset now, while most are queued.
    check(gone.recv() is not None, "the first exact scan is answered")
    gone.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.close()  # a reset: the server's next read or write fails
    abandoned = 0
    for _ in range(100):
        st = c.ok("stats")
        abandoned = st["abandoned_requests"]
        if st["in_flight"] == 0:
            break
        time.sleep(0.05)
    print("abandoned:", abandoned)
    check(abandoned > 0, "queries of a reset connection are not run (%d)" % abandoned)
    check(c.ok("count", {"collection": "big"}) == 20000, "the server serves on after a reset")
    c.close()
    srv.stop()
    # A stopping server waits --shutdown-timeout for a client that does not
    # read its answers (40 of 2.7 MB each), then closes it and exits.
    srv = Server(db, "--shutdown-timeout", "1")
    stuck = Client(srv.port)
    stuck.send(b"".join(msgpack.packb([0, i, "search", [{"collection": "big", "k": 10000,
                                                          "with_vector": True,
                                                          "vector": f32([0.5] * 64)}]])
                        for i in range(40)))
    time.sleep(1.0)
    t0 = time.time()
    rc, log = srv.stop()
    took = time.time() - t0
    check(rc == 0 and 0.9 < took < 8 and "shutdown deadline" in log,
          "shutdown deadline: exit %d after %.1f s\n%s" % (rc, took, log[-400:]))
    stuck.close()
    # --max-batch 1: no batches.
    srv = Server(db, "--max-batch", "1")
    c = Client(srv.port)
    conns = [Client(srv.port) for _ in range(2)]
    for cl in conns:
        cl.send(b"".join(msgpack.packb([0, i, "search", [a]], use_bin_type=True)
                         for i, a in enumerate(reqs)))
    for cl in conns:
        for _ in reqs:
            cl.recv()
        cl.close()
    check(c.ok("stats")["search_batches"] == 0, "--max-batch 1 never batches")
    c.close()
    srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="vs_test_server_")
    db = os.path.join(tmp, "db")
    try:
        srv = Server(db, "--max-points", "100", "--max-objects", "200000")
        keep = Client(srv.port)
        try:
            check(keep.ok("ping") == "pong", "first ping")
            test_methods(Client(srv.port))
            test_pipelining(srv.port)
            test_flood(srv.port)
            test_malformed(srv.port, keep)
            test_invalid(srv.port, keep)
            test_notifications(srv.port)
            # Graceful shutdown with requests in flight: they are answered.
            w = Client(srv.port)
            blob = b"".join(msgpack.packb([0, 9000 + i, "upsert", [{"collection": "items", "points": [
                {"id": 7000 + i, "vector": vec(i), "payload": {"late": i}}]}]]) for i in range(20))
            w.send(blob)
            first = w.recv()
            check(first is not None and first[2] is None, "upsert before shutdown %r" % (first,))
            acked = 1
        finally:
            rc, log = srv.stop(signal.SIGTERM)
        while True:
            r = w.recv()
            if r is None:
                break
            check(r[2] is None, "in-flight upsert answered at shutdown %r" % (r,))
            acked += 1
        check(rc == 0, "server exit status %d" % rc)
        check("SIGTERM: stopping" in log and "stopped after" in log, "shutdown logged:\n" + log)
        check("late" not in log and "p33" not in log, "no payload contents in the log")
        srv = Server(db)
        c = Client(srv.port)
        check(c.ok("count", {"collection": "items"}) >= 38 + acked,
              "acknowledged writes survive a restart (%d acked)" % acked)
        got = c.ok("get", {"collection": "items", "ids": [7000]})
        check(got[0] and got[0]["payload"] == {"late": 0}, "first late upsert persisted %r" % got)
        c.close()
        rc, _ = srv.stop(signal.SIGINT)
        check(rc == 0, "SIGINT exit status %d" % rc)
        test_auth(tmp)
        test_timeouts(tmp)
        test_batching(tmp)
        test_memory(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
