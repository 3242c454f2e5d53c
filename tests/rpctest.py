"""What the server's Python tests share (test_server, test_metrics,
test_remote): the binary under test, check() and its tally, and
`vsearch serve` on an ephemeral loopback port.
"""
import signal
import subprocess
import sys
import tempfile

VSEARCH = sys.argv[1] if len(sys.argv) > 1 else "build/vsearch"
FAILURES = []
_CHECKS = [0]


def check(cond, what):
    _CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)


def summary():
    """Print the tally; the exit status for it."""
    print("%d checks, %d failures" % (_CHECKS[0], len(FAILURES)))
    return 1 if FAILURES else 0


class Server:
    """`vsearch serve DB` on 127.0.0.1:0 (the port is read from its first
    line); its stderr goes to a temporary file, returned by stop()."""

    def __init__(self, db, *extra, threads=4):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [VSEARCH, "serve", db, "--listen", "127.0.0.1:0", "--threads", str(threads),
             "--no-sync"] + list(extra),
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise SystemExit("server did not start: %r" % line)
        self.addr = line.split()[-1]
        self.port = int(self.addr.rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGTERM):
        """Signal it and wait: (exit status, its log)."""
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.log.seek(0)
        return rc, self.log.read().decode(errors="replace")

    def kill(self):
        """Stop it at once if it is still running (after a failure)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")
