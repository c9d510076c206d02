"""A worker that has booted wakes the master's loop at once, so a reload's old workers are told to stop
as soon as the new ones serve, not at the loop's next look (up to MAX_SLEEP later)."""
import os
import signal
import time

from forkwsgi.master.arbiter import MAX_SLEEP
from forkwsgi.master.generations import Generations
from forkwsgi.master.signals import WakeupPipe
from forkwsgi.master.workers import WorkerProcess, WorkerTable
from forkwsgi.shared.heartbeat import Heartbeat

BOOT_DELAY = 0.3  # the new worker boots this long after its fork: well inside the master's MAX_SLEEP


def test_mark_booted_writes_a_byte_to_the_wake_fd():
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK)
    try:
        heartbeat = Heartbeat(write_fd)
        assert not heartbeat.booted
        heartbeat.mark_booted()
        assert heartbeat.booted and os.read(read_fd, 16) == b"\0"
        heartbeat.close()
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_mark_booted_without_a_master_to_wake_is_quiet():
    heartbeat = Heartbeat()  # no wake fd
    heartbeat.mark_booted()
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK)
    os.close(read_fd)
    try:
        gone = Heartbeat(write_fd)  # the master is gone: EPIPE is swallowed
        gone.mark_booted()
        assert gone.booted
    finally:
        os.close(write_fd)


def _boot_later(worker):
    """The new worker's process: boot after BOOT_DELAY, then wait to be killed."""
    try:
        time.sleep(BOOT_DELAY)
        worker.heartbeat.mark_booted()
        time.sleep(30)
    finally:
        os._exit(0)


def test_a_reloads_new_worker_wakes_the_master_which_stops_the_old_ones_at_once():
    sent = []
    table = WorkerTable(kill=lambda pid, sig: sent.append((pid, sig, time.monotonic())))
    generations = Generations(table, notify=lambda message: None)
    wakeup = WakeupPipe()
    old = WorkerProcess(1, 0)
    old.pid = 2 ** 22 + 1  # never signalled for real: the table's kill only records
    old.heartbeat.mark_booted()
    table.add(old)
    generations.serving = 0
    generations.begin()
    spawned = []

    def spawn():
        worker = WorkerProcess(2, generations.generation, wakeup.write_fd)
        table.spawn(worker, _boot_later, wakeup)
        spawned.append(worker)
    try:
        generations.converge(1, spawn)
        assert len(spawned) == 1 and not sent
        deadline = time.monotonic() + 10
        while not old.told_to_stop and time.monotonic() < deadline:
            wakeup.wait(MAX_SLEEP)  # as the master's loop sleeps: a whole MAX_SLEEP unless woken
            generations.converge(1, spawn)
        booted_at = spawned[0].heartbeat.booted_at
        assert old.told_to_stop and booted_at > 0
        assert sent[0][:2] == (old.pid, signal.SIGTERM)
        assert sent[0][2] - booted_at < 0.2, "the old worker was told to stop %.3fs after the new one booted" % (
            sent[0][2] - booted_at)
    finally:
        for worker in spawned:
            os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)
        os.close(wakeup.read_fd)
        os.close(wakeup.write_fd)
