"""The heartbeat page read by the master while a busy worker writes it from another core."""
import os
import time

from forkwsgi.shared.heartbeat import Heartbeat

BEATS = 300_000


def test_master_never_reads_a_stamp_that_was_not_written():
    """A worker beating as fast as it can (tens of thousands of requests a second) and a master reading:
    every value read is one the worker wrote. A torn or zero-filled write read as 0.0 once made the master
    kill a busy worker as silent for over --timeout."""
    heartbeat = Heartbeat()
    first = 1_000_000.0
    heartbeat.beat(first)
    pid = os.fork()
    if pid == 0:  # the worker: increasing stamps, as the loop writes them
        try:
            for n in range(BEATS):
                heartbeat.beat(first + n)
        finally:
            os._exit(0)
    bad, reads = [], 0
    deadline = time.monotonic() + 30
    last = first
    try:
        while time.monotonic() < deadline:
            value = heartbeat.last_beat
            reads += 1
            if value < last or value != int(value):  # stamps only grow, and every one written is whole
                bad.append(value)
            last = max(last, value)
            if reads % 1000 == 0 and os.waitpid(pid, os.WNOHANG)[0]:
                pid = 0
                break
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert not bad, "the master read stamps never written: %r" % bad[:5]
    assert heartbeat.last_beat == first + BEATS - 1
    heartbeat.close()
