"""The spool directory: response spill files within the worker's budget, request body files closed
as soon as their request is over (answered, refused or abandoned). Seen from /proc/<worker>/fd."""
import os
import socket
import time

import pytest

from .conftest import ResponseReader, connect, wait_for
from .spool_apps import CHUNK

APP = "tests.spool_apps:app"


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


@pytest.mark.slow
def test_clients_that_never_read_spill_no_more_than_the_budget(server_factory, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    budget = 16 << 20
    server = server_factory(["-w", "1", "--threads", "48", "--spool-dir", str(spool),
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
