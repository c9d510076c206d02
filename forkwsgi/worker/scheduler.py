"""Which request runs when: parsing what was read, pipelining, the queue for a free thread, hand-off.

Requests are served first come, first served. A connection whose request is
ready while no thread is free waits (states.WAITING) in arrival order; a
connection handed over by a sibling carries how long it has waited already
and goes before those that waited less. While every thread here is busy, a
connection that has waited ``--handoff-delay`` moves to a sibling that says it
has a thread to spare (shared/handoff.py). Health probes are answered by the
loop itself, never queued behind the app.
"""
import os
import time
from typing import Final, Optional

from forkwsgi.http.body import StreamedBody
from forkwsgi.http.errors import HTTPError
from forkwsgi.http.parser import RequestReader
from forkwsgi.http.response import CONTINUE
from forkwsgi.logs import log
from forkwsgi.shared import stats as _stats
from forkwsgi.worker.channels import Channels, ConnectionEvents
from forkwsgi.worker.connection import HANDOFF_MAX_BUFFER, ClientGone, Connection
from forkwsgi.worker.executor import Executor
from forkwsgi.worker.poller import READ, Poller
from forkwsgi.worker.handler import SUSPENDED as JOB_SUSPENDED, HealthProbe, Site, answer_health, start_run
from forkwsgi.worker.states import (CLOSED, DISPATCH, LAST_RESPONSE, QUEUE, QUEUED_OUTPUT, READING,
                                    RESPONDED, RESUME, SUSPEND, UNQUEUE, WAITING)
from forkwsgi.worker.stopping import StopState

_monotonic: Final = time.monotonic


class Scheduler(ConnectionEvents):
    """Given the worker's connections and poller, the Channels (I/O and closing), the Site (what
    requests are served with), the stop state, the Handover (or None), and ``retire(reason)`` to
    stop after this turn. ``shedder`` (shedding.py) is set with --max-queue-time; the executor,
    ``accept_waiting`` (intake) and ``beat`` (heartbeat) once those exist."""

    STALL: Final = 0.5  # an app call at least this long restarts the keep-alive clocks of the others

    executor: Executor  # (typed for mypyc: the calls on the way of each request are native)
    poller: Poller
    channels: Channels
    site: Site
    stop: StopState
    waiting: dict
    probe: Optional[HealthProbe]
    threaded: bool
    requests: int
    max_requests: int
    stalled_at: float

    def __init__(self, cfg, connections, poller, channels, site, stop, handover, retire,
                 multiprocess=True, shedder=None, memory_guard=None, max_requests=0):
        self.connections = connections
        self.poller = poller
        self.channels = channels
        self.site = site
        self.stop = stop
        self.handover = handover  # handover.Handover, or None without a hand-off channel
        self.retire = retire
        self.multiprocess = multiprocess
        self.shedder = shedder
        self.memory_guard = memory_guard
        self.accept_waiting = None
        self.beat = None
        self.threaded = cfg.threads > 1
        self.handoff_delay = cfg.handoff_delay
        self.proxy_protocol = cfg.proxy_protocol
        self.casefold_methods = cfg.casefold_http_method
        self.probe = HealthProbe(cfg.health_path) if cfg.health_path else None
        self.max_requests = max_requests  # this worker's --max-requests, its jitter drawn (0: no limit)
        self.pid = os.getpid()
        self.requests = 0
        self.waiting = {}  # connection -> True, in arrival order: ready, but no thread is free
        self.handoff_retry_at = 0.0  # no hand-off of a waiting connection before this: siblings were busy
        self.abandoned = set()  # connections of requests cut loose past --timeout, their threads running on
        self.stalled_at = 0.0  # when the loop last came back from an app call longer than STALL

    def admit(self, conn: Connection) -> None:
        """Serve a new connection: accepted here, or handed over by a sibling with bytes already read.

        It is read at once (the request often arrives with the connection) and polled only if it
        is still open after that: a connection answered and closed in one go is never registered."""
        self.connections[conn.fd] = conn
        if conn.reader.buf:
            self.process(conn)
        if conn.state is not CLOSED and not conn.busy:
            self.channels.readable(conn)
        if conn.state is not CLOSED and not (self.threaded and conn.busy) and conn.fd not in self.poller.events:
            self.poller.add(conn.fd)  # (a connection waiting on output or in the loop's app call is polled already)

    # ----- what was read

    def process(self, conn: Connection) -> None:
        """Serve the complete requests in the buffer, in order (pipelining), as threads allow."""
        reader: RequestReader = conn.reader
        executor = self.executor
        waiting = self.waiting
        probe = self.probe
        while (conn.state is READING or conn.state is WAITING) and not conn.out.segments:
            request = conn.pending
            # First come, first served: while connections wait for a thread, only the first may run,
            # or one that has waited longer still (handed over by a sibling, with its wait).
            queued = executor.free <= 0 or (waiting and not self.first_in_line(conn))
            if not queued and conn.state is WAITING:
                self._unqueue(conn)  # its turn: whatever it meets now, it no longer holds the queue
            if request is None:
                if queued and reader.request is None and len(reader.buf) <= HANDOFF_MAX_BUFFER \
                        and not (probe is not None and probe.may_be(reader.buf)):
                    if reader.in_progress:  # leave it raw: it can still move to a sibling
                        self.wait(conn)
                    elif conn.input_ended:
                        self.channels.close(conn)
                    return
                request = self._parse(conn)
                if request is None:
                    return
            if probe is not None and probe.matches(request):
                self._answer_probe(conn, request)
                continue
            if queued:
                conn.pending = request
                self.wait(conn)
                return
            conn.pending = None
            self.dispatch(conn, request)
            if not reader.buf and not conn.input_ended:
                return  # nothing pipelined behind it: skip a parse that would find nothing

    def _parse(self, conn: Connection):
        """The next whole request of ``conn``, or None (not whole yet, or refused: handled here)."""
        reader: RequestReader = conn.reader
        try:
            if conn.proxy_pending and not conn.take_proxy_header(self.proxy_protocol):
                return None
            request = reader.next_request()
            if request is not None:
                if type(request.body) is StreamedBody:
                    conn.stream_input(request)
                if self.casefold_methods:  # casefold_http_method, as gunicorn users know it
                    request.method = request.method.upper()
                return request
        except HTTPError as exc:
            self.channels.refuse(conn, exc)
            return None
        except OSError as exc:  # spooling the body: disk full, out of file descriptors
            log.error("cannot receive a request body from %s:%s: %s", conn.peer[0], conn.peer[1], exc)
            self.channels.answer_and_close(conn, 503, "Service Unavailable")
            return None
        if conn.state is WAITING:
            self._unqueue(conn)  # not a whole request yet: it reads on, and waits for nobody
        conn.waiting_since = 0.0
        if conn.input_ended:
            self.channels.input_ended(conn)
        elif reader.needs_continue():
            try:
                conn.send(CONTINUE)
            except ClientGone:
                self.channels.close(conn)
        return None

    def _answer_probe(self, conn, request):
        """--health-path: answered here, never queued behind the app, so a probe sees the loop."""
        conn.pending = None
        if conn.state is WAITING:
            self._unqueue(conn)  # (its wait is kept: it takes its place in line again after)
        conn.move(DISPATCH)
        try:
            keep_alive = answer_health(self.site, conn, request, not (self.stop.stopping or self.stop.draining()))
        except ClientGone:
            self.channels.close(conn)
            return
        self.request_done(conn, keep_alive)

    # ----- the queue for a free thread

    def wait(self, conn):
        if conn.state is not WAITING:
            conn.waiting_since = conn.waiting_since or _monotonic()  # a sibling's wait counts too
            self.waiting[conn] = True
            conn.move(QUEUE)
            if self.shedder is not None:
                self.shedder.note_waiting(conn)

    def _unqueue(self, conn):
        self.waiting.pop(conn, None)
        conn.move(UNQUEUE)

    def forget(self, conn):
        """``conn`` is closing or leaving: it waits for nothing any more."""
        self.waiting.pop(conn, None)

    def first_in_line(self, conn):
        """Whether ``conn`` may take the free thread before the connections waiting here."""
        first = next(iter(self.waiting))
        return first is conn or 0.0 < conn.waiting_since < first.waiting_since

    def serve_waiting(self):
        """Connections ready while no thread was free: run them as threads free, else move them."""
        now = _monotonic()
        if self.shedder is not None:
            self.shedder.shed_due(self.waiting, now)
        delay = self.handoff_delay
        may_move = self.multiprocess and self.handover is not None and now >= self.handoff_retry_at
        for conn in list(self.waiting):
            if conn.state is not WAITING:
                self.waiting.pop(conn, None)
                continue
            if self.executor.free > 0:
                self.process(conn)
                self.channels.resume_reading(conn)
            elif not may_move:
                return  # no thread, and no sibling to move to: all of them wait their turn here
            elif now - conn.waiting_since >= delay:
                if self.handover.siblings_busy() or not self.handover.hand_off(conn):
                    self.handoff_retry_at = now + delay  # every sibling is busy too: try again later
                    may_move = False

    # ----- running a request

    def dispatch(self, conn: Connection, request) -> None:
        shedder = self.shedder
        if shedder is not None and _monotonic() >= shedder.deadline(conn, request):
            shedder.shed(conn, request)
            return
        if conn.state is WAITING:
            self._unqueue(conn)
        conn.waiting_since = 0.0
        conn.served += 1
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and not self.stop.stopping \
                and not self.stop.stop_after_turn:
            log.info("worker %d: serving request %d of --max-requests, then restarting", self.pid, self.requests)
            self.retire(_stats.RETIRE_MAX_REQUESTS)
        conn.job = job = start_run(self.site, conn, request)
        conn.move(DISPATCH)
        if self.threaded:
            self.poller.remove(conn.fd)  # its thread owns it until done
        self.executor.submit(conn, job)

    def resume(self, conn):
        """A suspended body goes on: its client has taken enough of what was queued."""
        conn.move(RESUME)
        if self.threaded:
            self.poller.remove(conn.fd)  # its thread owns it until done, or suspended again
        self.executor.submit(conn, conn.job)

    def thread_done(self, conn, result):
        """A pool thread finished with ``conn`` (executor.ThreadPoolExecutor.collect)."""
        if conn in self.abandoned:  # its thread came back after all: only the fd is left to close
            self.abandoned.discard(conn)
            conn.close()
            return
        if conn.state is CLOSED:
            return
        self.poller.add(conn.fd, 0 if conn.input_ended else READ)
        self.request_done(conn, result)
        if conn.state is READING and not conn.out.segments:
            self.process(conn)
            self.channels.resume_reading(conn)

    def request_done(self, conn: Connection, result, now=None, started: float = 0.0) -> None:
        """A response is written (or queued), or its body waits for the client; in the loop's thread.
        ``started``: when an inline app call began (executor.InlineExecutor), else 0.0."""
        now = now or _monotonic()
        if started and now - started > self.STALL:
            self.stalled_at = now  # idle timers do not count the span the loop could not see
        if self.executor.free:  # (not a probe the hand-off watcher answers while an inline call is stuck)
            self.beat(now)  # a pipelined burst of requests is not silence
        if result is JOB_SUSPENDED:  # still the app's: the loop drains, then resumes it (Channels.writable)
            conn.move(SUSPEND)
            conn.send_progress_at = now
            self.channels.watch(conn, write=True)
            return
        conn.job = None
        conn.started = conn.last_io = now
        if not result and conn.held is not None:
            try:
                conn.release()  # a last response leaves before the close is decided
            except ClientGone:
                self.channels.close(conn)
                return
        if self.memory_guard is not None and not self.stop.stop_after_turn and not self.stop.stopping:
            self._check_memory()
        if conn.out.segments:
            conn.move(QUEUED_OUTPUT if result else LAST_RESPONSE)
            self.channels.watch(conn, write=True)  # the loop drains the rest
        elif not result:
            conn.move(LAST_RESPONSE)
            self.channels.finish(conn)
        else:
            conn.move(RESPONDED)
            if self.stop.handing_over:
                self.handover.hand_off(conn)  # raw bytes of a next request travel with it

    def responded(self, conn: Connection) -> None:
        """The last of a response has left a kept connection: move it (handing over), or serve what came next."""
        if not (self.stop.handing_over and self.handover.hand_off(conn)):
            self.process(conn)

    def _check_memory(self):
        """--max-worker-memory: past the limit, retire gracefully as for max-requests (one pread per request)."""
        uss = self.memory_guard.exceeded()
        if uss:
            log.warning("worker %d: USS %.1f MB is past --max-worker-memory %g MB; restarting gracefully",
                        self.pid, uss / 1048576.0, self.memory_guard.limit / 1048576.0)
            self.retire(_stats.RETIRE_MEMORY)

    def running_requests(self):
        """The handler.RequestRun of each request in the app now."""
        return [conn.job for conn in list(self.connections.values())
                if conn.job is not None and conn.job.running]

    def watch_turn(self, current):
        """The inline watcher's turn, holding the lock while the loop is inside an app call: move what
        waits to an idle sibling; with shedding, also take what waits in the accept queue when no
        sibling is idle, and keep the waiting ones' clocks (moved, or shed at their deadline, not
        when the call returns)."""
        if self.handover is not None:
            self.handover.hand_off_ready(exclude=current)
        if self.shedder is None:
            return
        if not self.stop.stopping and (not self.stop.handoff_open() or self.handover.siblings_busy()):
            self.accept_waiting()
        # Requests that came meanwhile on connections here (one accepted before its request, a kept
        # one) are read too: they wait from when they came, not from when the call ends.
        self.channels.read_ready(exclude=current)
        if self.waiting:
            self.serve_waiting()
