"""A load client that checks every response, for the fault-injection scenarios and loadtests/multihost.py.

``LoadClient(port, keepalive=K, fresh=M, ...)`` runs K threads that each keep
one persistent connection (reconnecting after the server closes it) and M
threads that open a new connection per request (``Connection: close``), for a
bounded time and/or number of requests. Each request asks ``tests.fault_apps``
for ``/blob?seed=N&size=S`` (a fraction of them for ``/slow?secs=X&...``), whose
body is determined by the request, and the client checks the sha256 of every
body. Raw sockets are used, so nothing is retried behind our back.

Every request ends as exactly one of:

- ``ok``: status 200 and the right digest;
- ``lost``: the request (or part of it) was written, and no complete response
  came back: reset, EOF, or timeout. That includes a request written on a
  keep-alive connection that the server had just closed as idle: from the
  user's point of view it is lost, so it is counted, never retried silently.
  ``lost_no_bytes`` counts the lost requests that got zero response bytes, and
  ``lost_stale`` those of them that were on a reused keep-alive connection;
- ``wrong``: a complete response with an unexpected status or body, or bytes
  that are not HTTP;
- ``refused``: the connection could not be opened, so nothing was sent. This is
  not part of ``sent`` (a closed listener refuses; that is not a lost request).
"""
import hashlib
import random
import socket
import threading
import time
from collections import Counter

from tests.fault_apps import blob

from .http import ProtocolError, ResponseReader

DEFAULT_SIZES = (0, 64, 1000, 4096, 20000, 100000)


class Record:
    """One request and its outcome."""

    __slots__ = ("kind", "thread", "seed", "size", "slow", "port", "reused", "start", "end", "outcome",
                 "error", "received", "status", "pid")

    def __init__(self, kind, thread, seed, size, slow, port, reused):
        self.kind, self.thread, self.seed, self.size, self.slow = kind, thread, seed, size, slow
        self.port, self.reused = port, reused
        self.start = time.monotonic()
        self.end = None
        self.outcome = None
        self.error = ""
        self.received = 0
        self.status = None
        self.pid = None

    @property
    def latency(self):
        return (self.end or time.monotonic()) - self.start

    def describe(self):
        return "%s[%d] %s seed=%d size=%d%s port=%s%s bytes_back=%d after %.2fs: %s" % (
            self.kind, self.thread, self.outcome, self.seed, self.size,
            " slow=%.1fs" % self.slow if self.slow else "", self.port,
            " reused-conn" if self.reused else "", self.received, self.latency, self.error)


class LoadClient:
    """K keep-alive threads and M new-connection threads, each request checked; see the module doc."""

    def __init__(self, port, keepalive=6, fresh=4, slow_fraction=0.02, slow_secs=(1.0, 2.0), seconds=10.0,
                 max_requests=None, sizes=DEFAULT_SIZES, timeout=20.0, connect_timeout=5.0,
                 refused_pause=0.02, host="127.0.0.1", seed=1):
        self.address = (host, port)
        self.keepalive, self.fresh = keepalive, fresh
        self.slow_fraction, self.slow_secs = slow_fraction, slow_secs
        self.seconds, self.max_requests = seconds, max_requests
        self.sizes, self.timeout, self.connect_timeout = tuple(sizes), timeout, connect_timeout
        self.refused_pause = refused_pause
        self.seed = seed
        self.records = []
        self.refusals = []  # (monotonic time, error string)
        self._inflight = {}  # thread index -> Record being sent/answered
        self._lock = threading.Lock()
        self._budget = max_requests
        self._stop = threading.Event()
        self._threads = []
        self.started_at = self.stopped_at = None

    # ----- running

    def start(self):
        self.started_at = time.monotonic()
        self._deadline = self.started_at + self.seconds if self.seconds else None
        for index in range(self.keepalive + self.fresh):
            kind = "ka" if index < self.keepalive else "new"
            thread = threading.Thread(target=self._run, args=(index, kind), daemon=True,
                                      name="load-%s-%d" % (kind, index))
            self._threads.append(thread)
            thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self, join_timeout=None):
        """Send no new requests, let the outstanding ones finish (bounded by the request timeout)."""
        self._stop.set()
        limit = time.monotonic() + (join_timeout if join_timeout is not None else self.timeout + 5.0)
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))
        self.stopped_at = self.stopped_at or time.monotonic()
        return self.counts()

    def join(self, timeout):
        """Wait (bounded) for the load to end by itself, its time or request budget spent; True if it did."""
        limit = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))
        if self.running:
            return False
        self.stopped_at = self.stopped_at or time.monotonic()
        return True

    @property
    def running(self):
        return any(thread.is_alive() for thread in self._threads)

    def wait_sent(self, count, timeout=20.0):
        """Block until ``count`` requests have finished (any outcome); bounded. True if reached."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline and self.running:
            time.sleep(0.02)
        return len(self.records) >= count

    def wait_ok(self, count, timeout=20.0):
        """Block until ``count`` more requests than now are ok; bounded. True if reached."""
        target = self.counts()["ok"] + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if self.counts()["ok"] >= target:
                return True
            time.sleep(0.02)
        return self.counts()["ok"] >= target

    def _take_budget(self):
        if self._stop.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline):
            return False
        if self._budget is None:
            return True
        with self._lock:
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def _connect(self):
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        except OSError as exc:
            self.refusals.append((time.monotonic(), repr(exc)))
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _run(self, index, kind):
        rng = random.Random(self.seed * 7919 + index)
        sock = reader = None
        reused = False
        n = 0
        try:
            while self._take_budget():
                if sock is None:
                    sock = self._connect()
                    if sock is None:
                        self._stop.wait(self.refused_pause)
                        continue
                    reader = ResponseReader(sock)
                    reused = False
                n += 1
                seed = (self.seed * 1000 + index) * 1000000 + n
                size = rng.choice(self.sizes)
                slow = rng.uniform(*self.slow_secs) if rng.random() < self.slow_fraction else 0.0
                target = ("/slow?secs=%.3f&seed=%d&size=%d" % (slow, seed, size) if slow
                          else "/blob?seed=%d&size=%d" % (seed, size))
                raw = ("GET %s HTTP/1.1\r\nHost: loadclient\r\n%s\r\n"
                       % (target, "Connection: close\r\n" if kind == "new" else "")).encode()
                record = Record(kind, index, seed, size, slow, sock.getsockname()[1], reused)
                self._inflight[index] = record
                keep = self._exchange(sock, reader, raw, record)
                record.end = time.monotonic()
                del self._inflight[index]
                self.records.append(record)
                if keep and kind == "ka":
                    reused = True
                else:
                    sock.close()
                    sock = reader = None
        finally:
            if sock is not None:
                sock.close()

    def _exchange(self, sock, reader, raw, record):
        """Send one request, read and check its response; fill ``record``. True if the connection stays usable."""
        before = reader.received
        try:
            sock.settimeout(self.timeout)
            sock.sendall(raw)
            status, headers, body, close = reader.read_final(time.monotonic() + self.timeout)
        except ProtocolError as exc:
            record.outcome, record.error = "wrong", "ProtocolError(%s)" % exc
            return False
        except (OSError, EOFError) as exc:  # reset, EOF, timeout, broken pipe
            record.outcome, record.error = "lost", repr(exc)
            return False
        finally:
            record.received = reader.received - before
        record.status = status
        pid = headers.get("x-pid", [""])[0]
        record.pid = int(pid) if pid.isdigit() else None
        if status != 200:
            record.outcome, record.error = "wrong", "status %d, body %r" % (status, body[:100])
            return not close
        expected = hashlib.sha256(blob(record.seed, record.size)).hexdigest()
        got = hashlib.sha256(body).hexdigest()
        if got != expected:
            record.outcome = "wrong"
            record.error = "digest %s != %s (%d bytes, want %d)" % (got[:12], expected[:12], len(body), record.size)
            return False
        record.outcome = "ok"
        return not close

    # ----- results

    def counts(self):
        records = list(self.records)
        outcomes = Counter(r.outcome for r in records)
        lost = [r for r in records if r.outcome == "lost"]
        return {
            "sent": len(records), "ok": outcomes["ok"], "lost": outcomes["lost"], "wrong": outcomes["wrong"],
            "refused": len(self.refusals),
            "lost_no_bytes": sum(1 for r in lost if r.received == 0),
            "lost_stale": sum(1 for r in lost if r.received == 0 and r.reused),
        }

    def failures(self, limit=8):
        """Descriptions of the first failed requests (lost or wrong), then of the first refusals."""
        failed = [r.describe() for r in list(self.records) if r.outcome != "ok"][:limit]
        return failed + ["refused: " + error for _, error in self.refusals[:3]]

    def inflight(self):
        """Records of the requests outstanding right now."""
        return list(self._inflight.values())

    def latencies(self, kind=None):
        return [r.latency for r in list(self.records) if kind is None or r.kind == kind]

    def by_pid(self):
        return Counter(r.pid for r in list(self.records) if r.outcome == "ok")

    def summary(self):
        counts = self.counts()
        latencies = sorted(self.latencies()) or [0.0]
        elapsed = (self.stopped_at or time.monotonic()) - (self.started_at or time.monotonic())
        return "%s in %.1fs; workers seen %d; latency p50 %.3fs max %.3fs" % (
            counts, elapsed, len(self.by_pid()), latencies[len(latencies) // 2], latencies[-1])
