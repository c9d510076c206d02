"""OutputBuffer in-process: the spill files of a worker's connections stay within one shared budget."""
import os
import socket

import pytest

from forkwsgi.worker.outbuf import OutputBuffer, SpillBudget

KIB = 1024
CHUNK = b"x" * (64 * KIB)


@pytest.fixture
def pair():
    """A connected socket pair; the test reads the far end to let the buffer drain."""
    near, far = socket.socketpair()
    near.setblocking(False)
    yield near, far
    near.close()
    far.close()


def read_available(far):
    """Bytes the far end can read without waiting."""
    got = 0
    while True:
        try:
            data = far.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return got
        assert data, "the near end closed"
        got += len(data)


def spill_size(buffer):
    return os.fstat(buffer.spill.fileno()).st_size if buffer.spill is not None else 0


def test_buffers_sharing_a_budget_spill_no_more_than_it(tmp_path):
    budget = SpillBudget(1024 * KIB)
    first = OutputBuffer(128 * KIB, 64 << 20, str(tmp_path), budget=budget)
    second = OutputBuffer(128 * KIB, 64 << 20, str(tmp_path), budget=budget)
    for _ in range(32):  # 2 MiB each: past its memory, and together past the budget
        first.append(CHUNK)
    assert budget.used == first.spill_end == spill_size(first) == 1024 * KIB
    assert first.full  # the budget is spent: the rest waits in memory, and the writer must wait
    second.append(CHUNK)
    second.append(CHUNK)
    second.append(CHUNK)
    assert second.spill_end == 0 and second.memory == 3 * len(CHUNK) and second.full
    assert budget.used == 1024 * KIB
    first.close()
    second.close()
    assert budget.used == 0


def test_sent_spill_returns_its_budget_and_its_disk(tmp_path, pair):
    near, far = pair
    budget = SpillBudget(4096 * KIB)
    buffer = OutputBuffer(64 * KIB, 64 << 20, str(tmp_path), budget=budget)
    for _ in range(16):
        buffer.append(CHUNK)
    assert budget.used == 15 * len(CHUNK) and not buffer.full
    received = 0
    for _ in range(10000):  # bounded: send what the socket takes, then read what arrived
        if buffer.flush(near):
            break
        received += read_available(far)
    else:
        raise AssertionError("the buffer never drained")
    assert received + read_available(far) == 16 * len(CHUNK)
    assert not buffer and budget.used == 0 and spill_size(buffer) == 0  # the file is emptied, not just reused
    buffer.append(CHUNK)  # and spills again from its start
    buffer.append(CHUNK)
    assert budget.used == buffer.spill_end == len(CHUNK)
    buffer.close()
    assert budget.used == 0


def test_without_a_budget_spilling_is_unbounded_as_before(tmp_path):
    buffer = OutputBuffer(64 * KIB, 64 << 20, str(tmp_path))
    for _ in range(40):
        buffer.append(CHUNK)
    assert buffer.spill_end == 39 * len(CHUNK) and not buffer.full
    buffer.close()


def test_a_budget_of_zero_never_spills(tmp_path):
    buffer = OutputBuffer(64 * KIB, 64 << 20, str(tmp_path), budget=SpillBudget(0))
    buffer.append(CHUNK)
    buffer.append(CHUNK)
    assert buffer.spill is None and buffer.memory == 2 * len(CHUNK) and buffer.full
    buffer.close()
