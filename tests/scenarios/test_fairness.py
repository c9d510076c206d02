"""Fair shares under load: new connections are not starved by busy keep-alive clients.

The clients here are driven from one thread with non-blocking sockets, so the
load they make does not depend on how many client threads the machine can run.
"""
import random
import selectors
import socket
import threading
import time

import pytest

from tests.support.processes import wait_for

HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
SLOW = b"GET /sleep?0.05 HTTP/1.1\r\nHost: x\r\n\r\n"


def complete_responses(buf):
    """(count, bytes consumed) of the whole responses at the start of ``buf`` (Content-Length framed)."""
    count = pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return count, pos
        head = buf[pos:end].lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15:].split(b"\r\n", 1)[0]) if start >= 0 else 0
        if len(buf) < end + 4 + length:
            return count, pos
        count += 1
        pos = end + 4 + length


class PipeliningClients(threading.Thread):
    """``count`` keep-alive connections, each sending ``depth`` pipelined requests, reading the
    answers, and sending the next batch at once, until stopped (bounded by ``seconds``)."""

    def __init__(self, port, count, depth=4, slow_fraction=0.02, seconds=30.0):
        super().__init__(daemon=True)
        self.port, self.count, self.depth, self.slow_fraction = port, count, depth, slow_fraction
        self.seconds = seconds
        self.stopped = threading.Event()
        self.answered = 0
        self.rounds_done = 0

    def _batch(self, rng):
        return b"".join(SLOW if rng.random() < self.slow_fraction else HELLO for _ in range(self.depth))

    def run(self):
        rng = random.Random(7)
        selector = selectors.DefaultSelector()
        state = {}
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.setblocking(False)
            sock.sendall(self._batch(rng))
            state[sock] = [b"", 0]
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + self.seconds
        try:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                for key, _ in selector.select(0.1):
                    sock = key.fileobj
                    data = sock.recv(65536)
                    if not data:
                        raise AssertionError("the server closed a busy keep-alive connection")
                    entry = state[sock]
                    count, used = complete_responses(entry[0] + data)
                    entry[0] = (entry[0] + data)[used:]
                    entry[1] += count
                    self.answered += count
                    if entry[1] == self.depth:
                        entry[1] = 0
                        self.rounds_done += 1
                        sock.setblocking(True)
                        sock.sendall(self._batch(rng))
                        sock.setblocking(False)
        finally:
            for sock in state:
                sock.close()
            selector.close()


def burst_latencies(port, count, timeout):
    """Open ``count`` connections at once, send one request on each; seconds until each answer
    (None for those not answered within ``timeout``)."""
    selector = selectors.DefaultSelector()
    pending = {}
    started = time.monotonic()
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        pending[sock] = b""
    latencies = {}
    deadline = started + timeout
    try:
        while pending and time.monotonic() < deadline:
            for key, events in selector.select(0.1):
                sock = key.fileobj
                if events & selectors.EVENT_WRITE:
                    sock.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    data = b""
                pending[sock] += data
                if complete_responses(pending[sock])[0] or not data:
                    if complete_responses(pending[sock])[0]:
                        latencies[sock] = time.monotonic() - started
                    selector.unregister(sock)
                    del pending[sock]
                    sock.close()
    finally:
        for sock in pending:
            sock.close()
        selector.close()
    return sorted(latencies.values()) + [None] * (count - len(latencies))


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["1", "4"])
def test_new_connections_get_their_share_beside_pipelining_keep_alive_clients(server_factory, threads):
    server = server_factory(["-w", "1", "--threads", threads])
    clients = PipeliningClients(server.port, count=50)
    clients.start()
    try:
        assert wait_for(lambda: clients.rounds_done >= 200, 15.0), "the keep-alive load never got going"
        latencies = burst_latencies(server.port, 150, timeout=15.0)
    finally:
        clients.stopped.set()
        clients.join(10)
    answered = [latency for latency in latencies if latency is not None]
    print("burst of %d: %d answered, p50 %.3fs, max %.3fs; keep-alive answers meanwhile: %d"
          % (len(latencies), len(answered), latencies[len(latencies) // 2] or -1, max(answered or [0]),
             clients.answered))
    assert len(answered) == len(latencies), "connections of the burst got no answer"
    assert latencies[len(latencies) // 2] < 0.5
