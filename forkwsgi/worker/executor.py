"""Where app calls run: inline in the loop's thread (the default), or on a thread pool.

Inline (--threads 1) keeps the fast path free of thread hops. A small
watcher thread then covers the one thing the blocked loop cannot do: when an
app call has run past the hand-off delay, it moves the worker's other
connections that have a request waiting to an idle sibling. Its wake-ups cost
the loop a GIL hand-over each, so it looks every few milliseconds only while
the app has been making slow calls, and a few times a second otherwise.

With a pool (--threads N), the loop keeps reading, parsing, accepting and
enforcing timeouts while apps run, and itself hands off connections that wait
for a thread.
"""
import os
import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Final

from forkwsgi.logs import log

if TYPE_CHECKING:  # (for mypyc: a native call into the run, no import at run time)
    from forkwsgi.worker.handler import RequestRun

_monotonic: Final = time.monotonic
QUIET_TICK: Final = 0.025  # the watcher's period while no app call has been slow for a while
QUIET_AFTER: Final = 10.0  # seconds without a slow call before the watcher slows down (and responses are held)
HOLD_COUNT: Final = 32  # connections whose responses a turn holds before the next app call sends them


class Executor:
    """What the loop, the scheduler and intake ask of either kind: how many threads there are and are
    free, how many calls are in flight, and ``submit``. (One base class, so that compiled callers
    call either kind directly.)"""

    threads: int
    free: int  # threads free for an app call now
    in_flight: int  # app calls under way (or queued for a thread)
    turn_started: float = 0.0  # set by the loop as each batch of events begins

    def start(self) -> None:
        pass

    def submit(self, conn, job: "RequestRun") -> None:
        raise NotImplementedError

    def collect(self) -> list:
        """Finished (connection, result) pairs of other threads, in the loop's thread."""
        return []

    def stop(self) -> None:
        pass


class InlineExecutor(Executor):
    """Runs each app call in the loop's own thread; the worker lock is free only meanwhile.

    ``finished(conn, result, ended, started)`` is called in the loop's thread after each call.
    ``watch_turn()`` is what the watcher does, holding the lock, while a call has run past
    ``delay``; ``busy`` (or None) tells the master's autoscaler when a call starts and ends.
    ``in_app(inside)`` (or None, without shedding) is told as each call begins and ends, with the
    lock held; with it, no thread counts as free during a call, so that what the watcher takes in
    meanwhile waits (and is shed at its deadline) instead of starting the app. ``held`` is the
    list of connections holding a response to the turn's end (ConnectionKit.held), which
    ``release_held(keep)`` sends."""

    delay: float
    held: list
    slow_call_at: float
    slow_alone_at: float

    def __init__(self, delay, lock, finished, watch_turn=None, busy=None, in_app=None, release_held=None,
                 held=None):
        self.threads = 1
        self.free = 1  # the loop runs only when no app call does
        self.delay = delay
        self.lock = lock
        self.finished = finished
        self.watch_turn = watch_turn  # None: no watcher thread (a single worker, nothing to shed)
        self.busy = busy
        self.in_app = in_app
        self.slow_call_at = 0.0  # when an app call last ran past the hand-off delay
        self.release_held = release_held  # Channels.release_held: held responses must not wait long
        self.held = held if held is not None else []  # the connections holding a response now (ConnectionKit.held)
        self.slow_alone_at = -QUIET_AFTER  # when one app call by itself last took longer than the delay
        self.current = None
        self.in_flight = 0

    def start(self) -> None:
        if self.watch_turn is not None:
            threading.Thread(target=self._watch, name="forkwsgi-handoff-watcher", daemon=True).start()

    def submit(self, conn, job: "RequestRun") -> None:
        """Run ``job`` (handler.RequestRun) for ``conn`` now, in the loop's thread."""
        lock = self.lock if self.watch_turn is not None else None
        self.current = conn
        self.in_flight = 1
        started = _monotonic()
        if self.held:
            # While the app makes slow calls now and then, nothing waits for one: what this turn
            # holds leaves first. Otherwise a turn's responses leave together, HOLD_COUNT at most.
            keep = 0 if started - self.slow_alone_at < QUIET_AFTER else HOLD_COUNT
            if len(self.held) > keep:
                self.release_held(keep)
        busy = self.busy
        if busy is not None:
            busy(started)
        if lock is not None:
            if self.in_app is not None:
                self.free = 0  # none may start the app meanwhile: no thread is free
                self.in_app(True)
            lock.release()  # the watcher may move other connections meanwhile
        try:
            result = job.run(started)
        finally:
            if lock is not None:
                lock.acquire()
                if self.in_app is not None:
                    self.free = 1
                    self.in_app(False)
            self.current = None
            self.in_flight = 0
            if busy is not None:
                busy(0.0)
        ended = _monotonic()
        if ended - self.turn_started > self.delay:  # slow calls, or a burst of fast ones
            self.slow_call_at = ended
            if ended - started > self.delay:
                self.slow_alone_at = ended
        self.finished(conn, result, ended, started)

    def _watch(self):
        delay = self.delay
        tick = max(delay / 2, 0.001)
        lock = self.lock
        while True:
            time.sleep(tick if _monotonic() - self.slow_call_at < QUIET_AFTER else QUIET_TICK)
            if not self.in_flight:
                continue
            now = _monotonic()
            if now - self.turn_started < delay:  # the loop's turn (app calls included) is young yet
                continue
            self.slow_call_at = now
            if not lock.acquire(blocking=False):
                continue
            try:
                if self.in_flight:  # holding the lock, with a call under way: the loop is inside the app
                    self.watch_turn(self.current)
            except Exception:
                log.exception("hand-off watcher failed")
            finally:
                lock.release()



class ThreadPoolExecutor(Executor):
    """N threads take (connection, job) pairs; each finished one goes back to the loop.

    ``busy`` (or None) tells the master's autoscaler when every thread is taken and when one frees."""

    def __init__(self, threads, busy=None):
        self.threads = threads
        self.in_flight = 0
        self.free = threads
        self.jobs = queue.SimpleQueue()
        self.done = deque()
        self.done_r, self.done_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.busy = busy

    def start(self) -> None:
        for number in range(self.threads):
            threading.Thread(target=self._run, name="forkwsgi-app-%d" % number, daemon=True).start()

    def submit(self, conn, job: "RequestRun") -> None:
        self.in_flight += 1
        self.free -= 1
        if self.free == 0 and self.busy is not None:
            self.busy(_monotonic())
        self.jobs.put((conn, job))

    def _run(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            conn, run = job
            result = False
            try:
                result = run.run()
            except BaseException:  # RequestRun handles app errors; this is the server's own bug
                log.exception("request thread failed")
            self.done.append((conn, result))
            try:
                os.write(self.done_w, b".")
            except BlockingIOError:
                pass  # the loop has wake-ups pending already

    def collect(self) -> list:
        """Finished (connection, result) pairs, in the loop's thread."""
        try:
            os.read(self.done_r, 4096)
        except BlockingIOError:
            pass
        finished = []
        while self.done:
            finished.append(self.done.popleft())
        self.in_flight -= len(finished)
        if finished and self.free == 0 and self.busy is not None:
            self.busy(0.0)
        self.free += len(finished)
        return finished

    def stop(self) -> None:
        for _ in range(self.threads):
            self.jobs.put(None)
