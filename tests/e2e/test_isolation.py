"""No request waits behind another while a worker is free (hand-off between workers)."""
import hashlib
import signal
import socket
import threading
import time

import pytest

from tests.support.http import ResponseReader, connect
from tests.support.processes import wait_for


def _get(sock, reader, path):
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
    return reader.read()


class KeepAliveClient(threading.Thread):
    """One keep-alive connection sending a fast request every ``gap`` seconds, recording latencies."""

    def __init__(self, port, seconds, gap=0.005, path=b"/pid"):
        super().__init__(daemon=True)
        self.port, self.seconds, self.gap, self.path = port, seconds, gap, path
        self.latencies, self.failures, self.pids = [], [], set()

    def run(self):
        deadline = time.monotonic() + self.seconds
        try:
            with connect(self.port) as sock:
                reader = ResponseReader(sock)
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    status, _, body = _get(sock, reader, self.path)
                    self.latencies.append(time.monotonic() - started)
                    if status != 200:
                        self.failures.append(status)
                    self.pids.add(body)
                    time.sleep(self.gap)
        except (OSError, EOFError) as exc:
            self.failures.append(repr(exc))


@pytest.mark.slow  # a timing scenario: its bounds hold on a quiet machine, the serial full run
def test_fast_requests_never_wait_behind_a_slow_one(server_factory):
    """16 keep-alive clients, 5 ms apart, while another client keeps a 1 s request running on -w 4."""
    server = server_factory(["-w", "4"])
    server.wait_workers(4)
    stop = threading.Event()

    def slow_client():
        with connect(server.port, timeout=30) as sock:
            reader = ResponseReader(sock)
            while not stop.is_set():
                assert _get(sock, reader, b"/sleep?1")[0] == 200

    slow = threading.Thread(target=slow_client, daemon=True)
    slow.start()
    clients = [KeepAliveClient(server.port, 4.0) for _ in range(16)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(30)
    stop.set()
    slow.join(5)
    latencies = sorted(x for client in clients for x in client.latencies)
    failures = [f for client in clients for f in client.failures]
    assert not failures
    assert len(latencies) > 1000
    print("fast requests: %d, p50 %.1f ms, p99.9 %.1f ms, max %.1f ms" % (
        len(latencies), 1000 * latencies[len(latencies) // 2], 1000 * latencies[int(len(latencies) * 0.999)],
        1000 * latencies[-1]))
    assert latencies[-1] < 0.1, "a fast request waited %.0f ms" % (1000 * latencies[-1])


@pytest.mark.parametrize("threads", [1, 2])
def test_pipelined_and_unserved_connections_behind_a_slow_request_move_to_a_sibling(server_factory, threads):
    server = server_factory(["-w", "2", "--threads", str(threads)])
    server.wait_workers(2)
    # Find the pid of one worker, then keep it busy with slow requests on every thread.
    busy = []
    for _ in range(threads):
        sock = connect(server.port, timeout=30)
        sock.sendall(b"GET /sleep?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        busy.append(sock)
    time.sleep(0.2)  # the slow requests have reached their workers' apps  # noqa: readiness is not observable here
    # A connection that pipelines three requests, and fresh connections: all answered quickly.
    started = time.monotonic()
    with connect(server.port) as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        reader = ResponseReader(sock)
        answers = [reader.read() for _ in range(3)]
    assert [a[0] for a in answers] == [200] * 3
    assert time.monotonic() - started < 1.0
    for sock in busy:
        assert ResponseReader(sock).read()[0] == 200
        sock.close()


def test_a_connection_waiting_behind_its_own_workers_slow_call_moves_with_its_bytes(server_factory, tmp_path):
    """A keep-alive connection parked on a worker that turns busy: its next requests, partial
    pipelined bytes included, are served by the sibling with every byte intact."""
    server = server_factory(["-w", "2"], env={"TEST_MARKER_DIR": str(tmp_path)})
    server.wait_workers(2)
    with connect(server.port) as parked, connect(server.port, timeout=30) as slow:
        parked_reader = ResponseReader(parked)
        slow_reader = ResponseReader(slow)
        parked_pid = _get(parked, parked_reader, b"/pid")[2]
        # Put a slow request on the parked connection's worker.
        for _ in range(50):
            if _get(slow, slow_reader, b"/pid")[2] == parked_pid:
                break
            slow.close()
            slow = connect(server.port, timeout=30)
            slow_reader = ResponseReader(slow)
        else:
            pytest.skip("could not land a second connection on the same worker")
        slow.sendall(b"GET /sleep?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: (tmp_path / "sleeping").exists(), 5)
        body = bytes(range(256)) * 40
        request = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        started = time.monotonic()
        parked.sendall(request + request[:100])  # one whole request, and the start of the next
        status, headers, echoed = parked_reader.read()
        assert status == 200 and echoed == body
        assert time.monotonic() - started < 1.0
        parked.sendall(request[100:])
        status, headers, echoed = parked_reader.read()
        assert status == 200 and echoed == body
        assert _get(parked, parked_reader, b"/pid")[2] != parked_pid  # it lives on the sibling now
        assert slow_reader.read()[0] == 200


@pytest.mark.slow  # a timing scenario of several seconds: the full run has it
def test_a_thousand_handoffs_lose_and_duplicate_nothing(server_factory):
    CLIENTS, ROUNDS = 16, 280
    """Clients whose connections keep moving between workers (slow calls everywhere) get every
    response once, in order, with the right body."""
    server = server_factory(["-w", "4", "--handoff-delay", "0.001", "--log-level", "debug"])
    server.wait_workers(4)
    failures = []
    counts = []

    def client(number):
        done = 0
        try:
            with connect(server.port, timeout=30) as sock:
                reader = ResponseReader(sock)
                for i in range(ROUNDS):
                    seed = b"%d-%d" % (number, i)
                    if i % 4 == 0:
                        status, _, body = _get(sock, reader, b"/sleep?0.02")
                        assert status == 200
                        continue
                    body = seed * 50
                    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
                    status, _, echoed = reader.read()
                    if status != 200 or hashlib.sha256(echoed).digest() != hashlib.sha256(body).digest():
                        failures.append((number, i, status))
                    done += 1
        except (OSError, EOFError, AssertionError) as exc:
            failures.append((number, repr(exc)))
        counts.append(done)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert sum(counts) == CLIENTS * ROUNDS * 3 // 4
    moved = server.log().count("took over connection")
    print("hand-offs:", moved)
    assert moved >= 1000


def test_hup_keeps_idle_keep_alive_clients_connected(server_factory):
    """A reload moves idle keep-alive connections to new-generation workers: no client reconnects."""
    server = server_factory(["-w", "2"])
    old_pids = set(server.wait_workers(2))
    socks = [connect(server.port) for _ in range(50)]
    readers = [ResponseReader(sock) for sock in socks]
    for sock, reader in zip(socks, readers):
        assert _get(sock, reader, b"/pid")[0] == 200
    server.send(signal.SIGHUP)
    assert wait_for(lambda: not old_pids & set(server.worker_pids()) and len(server.worker_pids()) == 2, 15)
    new_pids = {str(pid).encode() for pid in server.worker_pids()}
    for sock, reader in zip(socks, readers):
        status, _, body = _get(sock, reader, b"/pid")
        assert status == 200 and body in new_pids
        sock.close()
    assert "handed" in server.log()


def test_a_client_that_closes_while_handed_off_costs_nothing(server_factory, tmp_path):
    server = server_factory(["-w", "2", "--log-level", "debug"], env={"TEST_MARKER_DIR": str(tmp_path)})
    server.wait_workers(2)
    with connect(server.port, timeout=30) as slow:
        slow.sendall(b"GET /sleep?1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: (tmp_path / "sleeping").exists(), 5)
        for _ in range(20):  # connections that send a request and vanish at once
            sock = connect(server.port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.close()
        assert ResponseReader(slow).read()[0] == 200
    for _ in range(10):
        with connect(server.port) as sock:
            assert _get(sock, ResponseReader(sock), b"/pid")[0] == 200
    assert "Traceback" not in server.log()
