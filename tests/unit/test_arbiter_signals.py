"""The master's signal queue and its dispatch, driven in-process (no server)."""
import os
import signal

from forkwsgi.master.arbiter import HANDLERS, Arbiter
from forkwsgi.master.signals import HANDLED_SIGNALS, MAX_QUEUED, SignalQueue, WakeupPipe

STOPS = (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT)


def test_signals_are_popped_in_the_order_they_were_put():
    queue = SignalQueue()
    for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGWINCH):
        queue.put(sig)
    assert [queue.pop()[0] for _ in range(len(queue))] == [
        signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGWINCH]
    assert not queue


def test_a_signal_like_the_last_one_joins_its_entry_with_the_counts_added():
    queue = SignalQueue()
    queue.put(signal.SIGTTIN, 64)
    queue.put(signal.SIGTTIN, 2)
    assert queue.entries == [[signal.SIGTTIN, 66]]
    queue.put(signal.SIGTTOU)
    queue.put(signal.SIGTTIN)
    assert queue.entries == [[signal.SIGTTIN, 66], [signal.SIGTTOU, 1], [signal.SIGTTIN, 1]]


def test_a_flood_of_other_signals_is_bounded_but_stop_signals_always_get_in():
    queue = SignalQueue()
    for _ in range(20):
        for sig in (signal.SIGUSR1, signal.SIGTTOU, signal.SIGWINCH, signal.SIGHUP):
            queue.handler(sig, None)
    assert len(queue) == MAX_QUEUED
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
        queue.handler(sig, None)
    assert [entry[0] for entry in queue.entries if entry[0] in STOPS] == list(STOPS)  # one of each, in order
    assert len(queue) == MAX_QUEUED + 3


def test_hups_queued_behind_the_one_handled_are_merged_into_it():
    queue = SignalQueue()
    for sig in (signal.SIGHUP, signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGHUP):
        queue.put(sig)
    assert queue.pop()[0] == signal.SIGHUP
    assert queue.take_reloads() == 1  # the HUP behind the CHLD; the TERM ends the run
    assert [entry[0] for entry in queue.entries] == [signal.SIGTERM, signal.SIGHUP]


def test_every_put_wakes_the_loop_through_the_pipe():
    pipe = WakeupPipe()
    try:
        queue = SignalQueue(pipe.wake)
        queue.put(signal.SIGHUP)
        assert os.read(pipe.read_fd, 16) == b"\0"
        for _ in range(100_000):  # a full pipe is not an error: the loop is awake anyway
            pipe.wake()
        pipe.drain()
        pipe.wait(0)  # nothing left to read: returns at once
    finally:
        os.close(pipe.read_fd)
        os.close(pipe.write_fd)


class _Recording(Arbiter):
    """An Arbiter whose handlers only note that they were called."""

    def __init__(self):
        super().__init__(None, None, [])
        self.calls = []
        for name in set(HANDLERS.values()) - {None}:
            setattr(self, name, lambda *args, name=name: self.calls.append((name,) + args))


def test_every_handled_signal_has_a_handler_the_arbiter_defines():
    assert {getattr(signal, "SIG" + name) for name in HANDLED_SIGNALS} == set(HANDLERS)
    for name in set(HANDLERS.values()) - {None}:
        assert callable(getattr(Arbiter, name)), name


def test_dispatch_calls_one_handler_per_entry_and_passes_worker_counts():
    arbiter = _Recording()
    for sig, count in ((signal.SIGTTIN, 3), (signal.SIGCHLD, 1), (signal.SIGUSR1, 1), (signal.SIGTTOU, 2),
                       (signal.SIGHUP, 1), (signal.SIGHUP, 1), (signal.SIGWINCH, 1), (signal.SIGUSR2, 1),
                       (signal.SIGQUIT, 1), (signal.SIGINT, 1), (signal.SIGTERM, 1)):
        arbiter.signals.put(sig, count)
    while arbiter.signals:
        arbiter.handle(*arbiter.signals.pop())
    assert arbiter.calls == [("on_ttin", 3), ("on_usr1",), ("on_ttou", 2), ("reload",), ("on_winch",),
                             ("on_usr2",), ("on_int",), ("on_int",), ("on_term",)]
