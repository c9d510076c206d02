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

from forkwsgi.logs import log

_monotonic = time.monotonic
QUIET_TICK = 0.025  # the watcher's period while no app call has been slow for a while
QUIET_AFTER = 10.0  # seconds without a slow call before the watcher slows down


class InlineExecutor:
    """Runs each app call in the loop's own thread; the worker lock is free only meanwhile."""

    threads = 1
    free = 1  # the loop runs only when no app call does
    turn_started = 0.0  # set by the loop as each batch of events begins

    def __init__(self, worker):
        self.worker = worker
        self.delay = worker.cfg.handoff_delay
        self.slow_call_at = 0.0  # when an app call last ran past the hand-off delay
        self.current = None
        self.in_flight = 0
        self.watching = False
        self.sheds = bool(worker.max_queue_time)  # the watcher also takes and sheds what waits (--max-queue-time)
        self.heartbeat = worker.heartbeat if worker.cfg.max_workers else None  # busy-ness for the master

    def start(self):
        if (self.worker.handoff_enabled and self.worker.multiprocess) or self.sheds:
            self.watching = True
            threading.Thread(target=self._watch, name="forkwsgi-handoff-watcher", daemon=True).start()

    def submit(self, conn, job):
        """Run ``job`` (handler.RequestRun) for ``conn`` now, in the loop's thread."""
        worker = self.worker
        lock = worker.lock if self.watching else None
        self.current = conn
        self.in_flight = 1
        started = _monotonic()
        heartbeat = self.heartbeat
        if heartbeat is not None:
            heartbeat.busy(started)
        if lock is not None:
            if self.sheds:
                self._in_app(True)
            lock.release()  # the watcher may move other connections meanwhile
        try:
            keep_alive = job.run()
        finally:
            if lock is not None:
                lock.acquire()
                if self.sheds:
                    self._in_app(False)
            self.current = None
            self.in_flight = 0
            if heartbeat is not None:
                heartbeat.busy(0.0)
        ended = _monotonic()
        if ended - self.turn_started > self.delay:  # slow calls, or a burst of fast ones
            self.slow_call_at = ended
            if ended - started > worker.STALL:
                worker.resumed_at = ended  # idle timers do not count the span the loop could not see
        worker.request_done(conn, keep_alive, ended)

    def _in_app(self, inside):
        """With shedding, the watcher queues connections during the call: none may start the app
        (no thread is free), and siblings must not count on this worker (the loop's next turn says
        again whether it has one to spare)."""
        worker = self.worker
        self.free = 0 if inside else 1
        if inside and worker.handoff_enabled:
            worker.handoff.say_spare(False)

    def _watch(self):
        worker = self.worker
        delay = self.delay
        tick = max(delay / 2, 0.001)
        lock = worker.lock
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
                    worker.hand_off_waiting(exclude=self.current)
                    if self.sheds:
                        worker.queue_while_busy()
            except Exception:
                log.exception("hand-off watcher failed")
            finally:
                lock.release()

    def stop(self):
        pass


class ThreadPoolExecutor:
    """N threads take (connection, request) pairs; each finished one goes back to the loop."""

    def __init__(self, worker, threads):
        self.worker = worker
        self.threads = threads
        self.in_flight = 0
        self.free = threads
        self.jobs = queue.SimpleQueue()
        self.done = deque()
        self.done_r, self.done_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.heartbeat = worker.heartbeat if worker.cfg.max_workers else None  # busy-ness for the master

    def start(self):
        for number in range(self.threads):
            threading.Thread(target=self._run, name="forkwsgi-app-%d" % number, daemon=True).start()

    def submit(self, conn, job):
        self.in_flight += 1
        self.free -= 1
        if self.free == 0 and self.heartbeat is not None:
            self.heartbeat.busy(_monotonic())
        self.jobs.put((conn, job))

    def _run(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            conn, run = job
            keep_alive = False
            try:
                keep_alive = run.run()
            except BaseException:  # RequestRun handles app errors; this is the server's own bug
                log.exception("request thread failed")
            self.done.append((conn, keep_alive))
            try:
                os.write(self.done_w, b".")
            except BlockingIOError:
                pass  # the loop has wake-ups pending already

    def collect(self):
        """Finished (connection, keep_alive) pairs, in the loop's thread."""
        try:
            os.read(self.done_r, 4096)
        except BlockingIOError:
            pass
        finished = []
        while self.done:
            finished.append(self.done.popleft())
        self.in_flight -= len(finished)
        if finished and self.free == 0 and self.heartbeat is not None:
            self.heartbeat.busy(0.0)
        self.free += len(finished)
        return finished

    def stop(self):
        for _ in range(self.threads):
            self.jobs.put(None)
