"""The spool directory: response spill files within the worker's budget, request body files closed
as soon as their request is over (answered, refused or abandoned). Seen from /proc/<worker>/fd."""
import os
import socket
import time

import pytest

from forkwsgi.http.errors import PayloadTooLarge
from forkwsgi.http.parser import Limits, RequestReader

from tests.support.http import ResponseReader, connect, request
from tests.support.processes import wait_for
from tests.spool_apps import CHUNK

APP = "tests.spool_apps:app"
MIB = 1 << 20
CHUNKED_HEAD = b"POST /consume HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(size):
    return b"%x\r\n" % size + b"z" * size + b"\r\n"


# ----- in-process: the body reader closes its file as soon as nobody will read it

def test_a_chunked_body_refused_past_the_limit_closes_its_spool_file(tmp_path):
    reader = RequestReader(Limits(body=3 * MIB, spool_dir=str(tmp_path)))
    reader.feed(CHUNKED_HEAD + chunk(2 * MIB))
    assert reader.next_request() is None
    sink = reader.body.sink
    assert sink._rolled  # past 1 MiB: in a file in the spool dir
    reader.feed(chunk(2 * MIB))
    with pytest.raises(PayloadTooLarge):
        reader.next_request()
    assert sink.closed


def test_a_body_the_spool_cannot_take_closes_its_sink(tmp_path):
    reader = RequestReader(Limits(spool_dir=str(tmp_path / "missing")))
    reader.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 * MIB))
    assert reader.next_request() is None
    sink = reader.body.sink
    reader.feed(b"z" * (2 * MIB))
    with pytest.raises(OSError):  # the worker answers 503
        reader.next_request()
    assert sink.closed


def test_discarding_the_input_closes_the_body_being_received(tmp_path):
    reader = RequestReader(Limits(spool_dir=str(tmp_path)))
    reader.feed(CHUNKED_HEAD + chunk(2 * MIB) + b"more")
    assert reader.next_request() is None
    sink = reader.body.sink
    reader.discard()
    assert sink.closed and reader.request is None and reader.body is None and not reader.buf


# ----- end to end


def spool_files(pid, spool):
    """(count, bytes) of the files in ``spool`` that process ``pid`` holds open, deleted ones too."""
    count = size = 0
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        path = os.path.join(fd_dir, name)
        try:
            if os.readlink(path).startswith(str(spool) + os.sep):
                size += os.stat(path).st_size
                count += 1
        except OSError:  # closed meanwhile
            continue
    return count, size


def non_reading_client(port, path):
    """A client that asks for ``path`` and never reads a byte of the answer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return sock


@pytest.mark.parametrize("threads", ["1", "48"])
def test_clients_that_never_read_spill_no_more_than_the_budget(server_factory, tmp_path, threads):
    """Past the budget their bodies wait in memory, then are suspended: inline too, no worker is held."""
    spool = tmp_path / "spool"
    spool.mkdir()
    budget = 16 << 20
    server = server_factory(["-w", "1", "--threads", threads, "--spool-dir", str(spool),
                             "--output-spill-budget", str(budget), "--output-buffer-memory", str(256 << 10),
                             "--send-timeout", "20"], app=APP)
    pid = server.wait_workers(1)[0]
    clients = [non_reading_client(server.port, "/stream?%d" % (8 << 20)) for _ in range(40)]  # 320 MiB asked
    try:
        assert wait_for(lambda: spool_files(pid, spool)[1] >= budget - len(CHUNK), 15), spool_files(pid, spool)
        peak = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the spool stays within the budget while they wait
            peak = max(peak, spool_files(pid, spool)[1])
            time.sleep(0.05)
        assert peak <= budget
        started = time.monotonic()
        with connect(server.port) as sock:  # and the worker still serves at once
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ResponseReader(sock).read()[0] == 200
        assert time.monotonic() - started < 1.0
    finally:
        for sock in clients:
            sock.close()
    assert wait_for(lambda: spool_files(pid, spool) == (0, 0), 15), spool_files(pid, spool)


def test_a_body_refused_mid_way_leaves_no_spool_file_open(server_factory, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = server_factory(["-w", "1", "--spool-dir", str(spool), "--limit-request-body", str(3 * MIB)], app=APP)
    pid = server.wait_workers(1)[0]
    with connect(server.port) as sock:
        sock.sendall(CHUNKED_HEAD + chunk(2 * MIB))
        assert wait_for(lambda: spool_files(pid, spool)[0] == 1, 5)  # spooled past 1 MiB
        sock.sendall(b"%x\r\n" % (2 * MIB))  # a chunk that takes it past the limit
        assert ResponseReader(sock).read()[0] == 413
        assert wait_for(lambda: spool_files(pid, spool) == (0, 0), 1.0), spool_files(pid, spool)  # not after the linger


def test_a_body_cut_off_by_a_reset_leaves_no_spool_file_open(server_factory, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = server_factory(["-w", "1", "--spool-dir", str(spool)], app=APP)
    pid = server.wait_workers(1)[0]
    sock = connect(server.port)
    sock.sendall(CHUNKED_HEAD + chunk(2 * MIB))
    assert wait_for(lambda: spool_files(pid, spool)[0] == 1, 5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset, and no other event follows to wake the worker
    assert wait_for(lambda: spool_files(pid, spool) == (0, 0), 2.0), spool_files(pid, spool)
    status, _, body = request(server.port, b"POST /consume HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345")
    assert (status, body) == (200, b"5")


def test_a_body_over_the_default_limit_of_1_gib_gets_413(server_factory):
    server = server_factory(["-w", "1"], app=APP)
    status, _, _ = request(server.port, b"POST /consume HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                           % ((1 << 30) + 1), timeout=5)
    assert status == 413
    status, _, body = request(server.port, CHUNKED_HEAD + chunk(3 * MIB) + b"0\r\n\r\n")
    assert (status, body) == (200, b"%d" % (3 * MIB))  # big uploads still pass
