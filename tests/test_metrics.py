#!/usr/bin/python3
"""The Prometheus metrics file of `vsearch serve --metrics-file` (DESIGN.md 6.3).

Usage: test_metrics.py PATH/TO/vsearch

Starts the server on an ephemeral port with --metrics-file, sends pings and
one unknown method with Debian's python3-msgpack over a raw socket, waits for
the once-a-second rewrite, and checks that the file parses as Prometheus text
exposition format (every sample under a TYPE line of its family, families
not interleaved, values numbers) and that it counts what was sent; then
stops the server and checks the final write on shutdown.
"""
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time

import msgpack

from rpctest import FAILURES, Server, check, summary


SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')



def parse(text):
    """{(name, frozenset(labels)): value} and {family: type}; raises on bad text."""
    samples, types, done, current = {}, {}, set(), None
    for n, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            if fam in types:
                raise ValueError("line %d: a second TYPE for %s" % (n, fam))
            if typ not in ("counter", "gauge", "summary", "histogram", "untyped"):
                raise ValueError("line %d: type %r" % (n, typ))
            if current:
                done.add(current)
            types[fam] = typ
            current = fam
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        fam = name
        if current and types.get(current) == "summary" and name in (current + "_sum",
                                                                   current + "_count"):
            fam = current
        if fam != current:
            raise ValueError("line %d: %s outside its family's block" % (n, name))
        if fam in done:
            raise ValueError("line %d: family %s interleaved" % (n, fam))
        v = float(value)  # accepts NaN, +Inf
        key = (name, frozenset(LABEL.findall(labels)))
        if key in samples:
            raise ValueError("line %d: duplicate sample %s" % (n, line))
        samples[key] = v
    return samples, types


def get(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def read_metrics(path):
    with open(path) as f:
        return f.read()


def main():
    tmp = tempfile.mkdtemp(prefix="vs_metrics_")
    db = os.path.join(tmp, "db")
    mfile = os.path.join(tmp, "vsearch.prom")
    srv = Server(db, "--metrics-file", mfile, threads=2)
    try:
        check(os.path.exists(mfile), "the metrics file is written at start")

        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        unpacker = msgpack.Unpacker(raw=False)
        pings = 5
        for i in range(pings):
            sock.sendall(msgpack.packb([0, i + 1, "ping", []]))
        sock.sendall(msgpack.packb([0, 99, "no_such_method", []]))
        got = []
        while len(got) < pings + 1:
            data = sock.recv(65536)
            if not data:
                break
            unpacker.feed(data)
            got.extend(unpacker)
        check(len(got) == pings + 1, "every request answered")
        check(sum(1 for r in got if r[3] == "pong") == pings, "the pings got pong")

        time.sleep(1.5)
        text = read_metrics(mfile)
        try:
            samples, types = parse(text)
        except ValueError as e:
            check(False, "the metrics parse as Prometheus text: %s" % e)
            samples, types = {}, {}
        check(types.get("vsearch_requests_total") == "counter", "requests_total is a counter")
        check(types.get("vsearch_errors_total") == "counter", "errors_total is a counter")
        check(types.get("vsearch_request_latency_ms") == "summary", "latency is a summary")
        check(types.get("vsearch_uptime_seconds") == "gauge", "uptime is a gauge")
        for name in ("vsearch_search_batches_total", "vsearch_batched_searches_total",
                     "vsearch_abandoned_requests_total"):
            check(types.get(name) == "counter" and get(samples, name) == 0,
                  "%s is a counter at 0: %r" % (name, get(samples, name)))
        check(get(samples, "vsearch_requests_total", method="ping") == pings,
              "the pings are counted: %r" % get(samples, "vsearch_requests_total", method="ping"))
        check(get(samples, "vsearch_errors_total", method="ping") == 0, "pings had no errors")
        check(get(samples, "vsearch_requests_total", method="(unknown)") == 1,
              "the unknown method is counted")
        check(get(samples, "vsearch_errors_total", method="(unknown)") == 1,
              "the unknown method is an error")
        check(get(samples, "vsearch_requests_total", method="search") == 0,
              "unused methods are listed with 0")
        check(get(samples, "vsearch_request_latency_ms_count", method="ping") == pings,
              "the summary counts the pings")
        for q in ("0.5", "0.99", "0.999"):
            v = get(samples, "vsearch_request_latency_ms", method="ping", quantile=q)
            check(v is not None and v >= 0 and not math.isnan(v), "ping quantile %s: %r" % (q, v))
        v = get(samples, "vsearch_request_latency_ms", method="search", quantile="0.5")
        check(v is not None and math.isnan(v), "an unused method's quantile is NaN")
        check(get(samples, "vsearch_connections") == 1, "one connection open")
        up = get(samples, "vsearch_uptime_seconds")
        check(up is not None and up >= 1.0, "uptime passed a second: %r" % up)
        check(not os.path.exists(mfile + ".tmp"), "no temporary file left behind")

        sock.close()
        rc, _ = srv.stop()
        check(rc == 0, "the server exits 0 on SIGTERM")
        samples, _ = parse(read_metrics(mfile))
        check(get(samples, "vsearch_connections") == 0, "the final write sees no connection")
        check(get(samples, "vsearch_connections_total") == 1, "one connection in total")
        check(get(samples, "vsearch_requests_total", method="ping") == pings,
              "the final write keeps the counts")
    finally:
        srv.kill()
        if FAILURES:
            sys.stdout.write(srv.log_text())
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
