"""OutputBuffer against a socket pair whose reader stops and starts: memory, spill file, files, TLS-sized sends.

The near end is the worker's (non-blocking, its send buffer shrunk so that a client that
stops reading is felt at once); the test plays the client on the far end.
"""
import os
import random
import socket

import pytest

from forkwsgi.worker.outbuf import OutputBuffer, SpillBudget
from forkwsgi.worker.tls import TLS_WRITE

KIB = 1024
SMALL_BUFFER = 4096  # the kernel's floor is about this; it doubles what it is given


def payload(size, seed):
    """Bytes that differ everywhere, so that a lost, doubled or reordered piece shows."""
    return random.Random(seed).randbytes(size)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def pair():
    near, far = socket.socketpair()
    near.setblocking(False)
    far.setblocking(False)
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    yield near, far
    near.close()
    far.close()


def read_available(far, into):
    """Append to ``into`` what the far end can read without waiting."""
    while True:
        try:
            data = far.recv(1 << 16)
        except BlockingIOError:
            return
        assert data, "the near end closed"
        into += data


def drain(buffer, near, far, sock=None, between=None):
    """Flush until empty, reading as a client would after each try. Returns (bytes read, partial flushes).
    ``between(turn)`` runs after each partial flush: an app appending while the loop sends."""
    received = bytearray()
    partial = 0
    for turn in range(100000):  # bounded: a buffer that never drains fails the test
        if buffer.flush(sock or near):
            read_available(far, received)
            return bytes(received), partial
        partial += 1
        read_available(far, received)
        if between is not None:
            between(turn)
    raise AssertionError("the buffer never drained")


def test_output_within_the_memory_limit_stays_in_memory_and_arrives_whole(pair, tmp_path):
    near, far = pair
    buffer = OutputBuffer(256 * KIB, 1 << 20, str(tmp_path))
    pieces = [payload(size, size) for size in (1, 100, 30 * KIB, 64 * KIB)]
    for piece in pieces:
        buffer.append(piece)
    assert buffer.spill is None and buffer.memory == buffer.size == sum(map(len, pieces))
    assert not buffer.full
    received, partial = drain(buffer, near, far)
    assert received == b"".join(pieces) and partial > 0
    assert not buffer and buffer.memory == buffer.size == 0


def test_output_past_the_memory_limit_is_spilled_and_read_back_in_order(pair, tmp_path):
    near, far = pair
    buffer = OutputBuffer(16 * KIB, 64 << 20, str(tmp_path))
    pieces = [payload(1 + (seed * 7919) % (40 * KIB), seed) for seed in range(60)]
    for piece in pieces:
        buffer.append(piece)
    assert buffer.memory <= 16 * KIB < buffer.size
    assert os.fstat(buffer.spill.fileno()).st_size == buffer.spill_end == buffer.size - buffer.memory
    received, partial = drain(buffer, near, far)
    assert received == b"".join(pieces)
    assert partial > 10, "the client's small window should have made many partial flushes"
    assert buffer.size == buffer.memory == buffer.spilled == 0
    assert os.fstat(buffer.spill.fileno()).st_size == 0  # every spilled byte sent: the disk is freed
    buffer.close()


def test_output_appended_while_earlier_output_drains_keeps_its_place(pair, tmp_path):
    near, far = pair
    buffer = OutputBuffer(8 * KIB, 64 << 20, str(tmp_path))
    pieces = [payload(size, seed) for seed, size in enumerate([5, 3 * KIB, 9 * KIB, 1, 70 * KIB, 2 * KIB] * 8)]
    received = bytearray()
    spilled_meanwhile = False
    for turn, piece in enumerate(pieces):  # the app writes one piece per turn of the loop, which sends what it can
        buffer.append(piece)
        spilled_meanwhile |= buffer.spilled > 0
        buffer.flush(near)
        if turn % 3 == 2:  # a client that reads now and then
            read_available(far, received)
    assert spilled_meanwhile, "some output was spilled while earlier output waited"
    rest, _ = drain(buffer, near, far)
    assert bytes(received) + rest == b"".join(pieces)
    buffer.close()


def test_full_only_once_more_than_max_size_waits(pair, tmp_path):
    near, far = pair
    buffer = OutputBuffer(8 * KIB, 64 * KIB, str(tmp_path))
    buffer.append(payload(64 * KIB, 1))
    assert buffer.size == 64 * KIB and not buffer.full
    buffer.append(b"x")
    assert buffer.full
    received = bytearray()
    for _ in range(1000):
        buffer.flush(near)
        read_available(far, received)
        if not buffer.full:
            break
    assert not buffer.full and buffer.size <= 64 * KIB
    buffer.close()


def test_a_spool_directory_that_cannot_be_written_keeps_output_in_memory_and_the_budget_untouched(tmp_path):
    budget = SpillBudget(1 << 20)
    buffer = OutputBuffer(16 * KIB, 64 << 20, str(tmp_path / "missing"), budget=budget)
    buffer.append(payload(20 * KIB, 2))
    assert buffer.spill is None and buffer.memory == 20 * KIB
    assert buffer.full, "past the memory limit with nowhere to spill: the writer must wait"
    assert budget.used == 0, "a failed spill returns what it reserved"
    buffer.close()


def test_files_are_sent_in_order_with_memory_and_spilled_output(pair, tmp_path):
    near, far = pair
    path = tmp_path / "body"
    content = payload(300 * KIB, 3)
    path.write_bytes(content)
    buffer = OutputBuffer(16 * KIB, 64 << 20, str(tmp_path))
    head, middle, tail = payload(200, 4), payload(40 * KIB, 5), payload(10, 6)
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer.append(head)
        buffer.append_file(fd, 1000, 100 * KIB)
        buffer.append(middle)  # past the memory limit: spilled between the two file parts
        buffer.append_file(fd, 0, len(content))
        buffer.append(tail)
    finally:
        os.close(fd)  # the buffer holds its own duplicate
    assert buffer.spill_end > 0
    received, _ = drain(buffer, near, far)
    assert received == head + content[1000:1000 + 100 * KIB] + middle + content + tail
    buffer.close()


def test_an_empty_file_part_queues_nothing(tmp_path):
    path = tmp_path / "body"
    path.write_bytes(b"abc")
    buffer = OutputBuffer(16 * KIB, 64 << 20, str(tmp_path))
    with open(path, "rb") as handle:
        buffer.append_file(handle.fileno(), 0, 0)
    assert not buffer


def test_a_file_that_shrank_sends_what_is_left_and_then_the_rest_of_the_output(pair, tmp_path):
    near, far = pair
    path = tmp_path / "body"
    path.write_bytes(b"a" * 1000)
    buffer = OutputBuffer(16 * KIB, 64 << 20, str(tmp_path))
    with open(path, "rb") as handle:
        buffer.append_file(handle.fileno(), 0, 5000)  # as measured before something truncated it
    buffer.append(b"after")
    received, _ = drain(buffer, near, far)
    assert received == b"a" * 1000 + b"after"
    assert not buffer


def test_close_releases_the_spill_file_the_file_duplicates_and_the_budget(tmp_path):
    path = tmp_path / "body"
    path.write_bytes(b"b" * 100)
    budget = SpillBudget(1 << 20)
    before = open_fds()
    buffer = OutputBuffer(8 * KIB, 64 << 20, str(tmp_path), budget=budget)
    with open(path, "rb") as handle:
        buffer.append_file(handle.fileno(), 0, 100)
        buffer.append_file(handle.fileno(), 0, 50)
    buffer.append(payload(40 * KIB, 7))
    assert budget.used == 40 * KIB and open_fds() == before + 3  # two duplicates, one spill file
    buffer.close()
    assert open_fds() == before
    assert budget.used == 0 and not buffer and buffer.size == buffer.memory == 0
    assert list(tmp_path.iterdir()) == [path], "the spill file is unlinked from the spool directory"


class RecordingSocket:
    """The near end as the buffer sees it, noting the size of each send (a TLS socket's records)."""

    def __init__(self, sock):
        self.sock = sock
        self.sizes = []

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        sent = self.sock.send(data)
        self.sizes.append(len(data))
        return sent


@pytest.mark.parametrize("tls", [True, False])
def test_tls_output_goes_through_the_socket_in_records_and_plain_files_past_it(pair, tmp_path, tls):
    near, far = pair
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    path = tmp_path / "body"
    content = payload(3 * TLS_WRITE + 5, 8)
    path.write_bytes(content)
    buffer = OutputBuffer(128 * KIB, 64 << 20, str(tmp_path), tls=tls)
    memory = payload(5 * TLS_WRITE + 3, 9)
    buffer.append(memory)
    with open(path, "rb") as handle:
        buffer.append_file(handle.fileno(), 0, len(content))
    recorder = RecordingSocket(near)
    received, _ = drain(buffer, near, far, sock=recorder)
    assert received == memory + content
    if tls:
        assert max(recorder.sizes) == TLS_WRITE, "no send larger than one TLS record"
        assert sum(recorder.sizes) == len(memory) + len(content), "file bytes go through the TLS socket"
    else:
        assert max(recorder.sizes) > TLS_WRITE
        assert sum(recorder.sizes) == len(memory), "file bytes go by sendfile, not through send"
    buffer.close()


def test_tls_spilled_output_is_read_back_through_the_socket(pair, tmp_path):
    near, far = pair
    buffer = OutputBuffer(8 * KIB, 64 << 20, str(tmp_path), tls=True)
    pieces = [payload(30 * KIB, seed) for seed in range(10, 14)]
    for piece in pieces:
        buffer.append(piece)
    assert buffer.spill_end > 0
    recorder = RecordingSocket(near)
    received, _ = drain(buffer, near, far, sock=recorder)
    assert received == b"".join(pieces)
    assert max(recorder.sizes) <= TLS_WRITE and sum(recorder.sizes) >= len(received)
    buffer.close()


@pytest.mark.parametrize("where", ["memory", "spill", "file"])
def test_a_client_that_is_gone_surfaces_as_oserror_from_flush(pair, tmp_path, where):
    near, far = pair
    budget = SpillBudget(1 << 20)
    buffer = OutputBuffer(0 if where == "spill" else 8 * KIB, 64 << 20, str(tmp_path), budget=budget)
    if where in ("memory", "spill"):
        buffer.append(payload(4 * KIB, 15))
        assert (buffer.spill_end > 0) == (where == "spill")
    else:
        path = tmp_path / "body"
        path.write_bytes(payload(4 * KIB, 17))
        with open(path, "rb") as handle:
            buffer.append_file(handle.fileno(), 0, 4 * KIB)
    far.close()
    with pytest.raises(OSError):
        buffer.flush(near)
    buffer.close()
    assert budget.used == 0


def test_one_tls_flush_sends_as_many_file_records_as_the_socket_takes(pair, tmp_path):
    """As it does for output in memory: one record per flush would cost a turn of the loop for each 16 KiB."""
    near, far = pair
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    path = tmp_path / "body"
    content = payload(4 * TLS_WRITE + 1, 18)
    path.write_bytes(content)
    buffer = OutputBuffer(128 * KIB, 64 << 20, str(tmp_path), tls=True)
    with open(path, "rb") as handle:
        buffer.append_file(handle.fileno(), 0, len(content))
    buffer.append(b"tail")
    assert buffer.flush(RecordingSocket(near)), "the socket had room for all of it"
    received = bytearray()
    read_available(far, received)
    assert received == content + b"tail"
