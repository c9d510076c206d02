"""A worker process: one event loop over its listeners, the hand-off channel and its connections.

The loop owns the turn: it polls, hands each ready connection to Channels
(I/O), and lets Intake take new connections and Scheduler run what is ready.
Timers run once per poll interval. App calls run inline or on a thread pool
(executor.py). Signal handlers only queue; the loop acts on them.

Components (each given what it needs, see their modules):
  boot.py        fork to first accept: signals, TLS, privileges, the app
  intake.py      listeners and the hand-off channel: where connections come from
  channels.py    reading, draining output, the TLS handshake, closing
  scheduler.py   parsing, pipelining, the queue for a thread, hand-off, dispatch
  handler.py     one request through the app (Site: what every request shares)
  timers.py      the client's clocks
  stopping.py    how far the worker is from stopping
  states.py      the life of a connection, as a table
"""
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Dict, Final

from forkwsgi.errors import BOOT_ERROR, ConfigError
from forkwsgi.config.appload import AppImportError
from forkwsgi.logs import log, reopen_error_log
from forkwsgi.observe import otel
from forkwsgi.process import flush_std, set_title
from forkwsgi.shared import stats as _stats
from forkwsgi.worker.boot import boot
from forkwsgi.worker.channels import Channels
from forkwsgi.worker.connection import Connection
from forkwsgi.worker.executor import Executor
from forkwsgi.worker.poller import WRITE
from forkwsgi.worker.scheduler import Scheduler
from forkwsgi.worker.states import BUSY
from forkwsgi.worker.stopping import StopState
from forkwsgi.worker.timers import stuck_request
from forkwsgi.wsgi.queuetime import clock_offset

_monotonic: Final = time.monotonic

try:
    from mypy_extensions import mypyc_attr  # read by mypyc as it compiles this module; never needed to run
except ImportError:
    def mypyc_attr(*attrs, **kwattrs):  # type: ignore[misc]
        return lambda cls: cls


@mypyc_attr(native_class=False)  # compiled (compiled.py), still an object hooks may keep their own state on
class Worker:
    """The loop, and what gunicorn's hooks receive as ``worker`` (pid, cfg, app, log, age)."""

    def __init__(self, setup):
        cfg = setup.cfg
        self.setup = setup
        self.cfg = cfg
        self.app = setup.app
        self.age = setup.age  # gunicorn's worker.age, for hooks
        self.pid = os.getpid()
        self.master_pid = os.getppid()
        self.pending_signals = []
        self.lock = threading.Lock()  # held by the loop; free only while an inline app call runs
        # With app threads the loop times requests out itself: it looks often enough to cut one
        # within a quarter second of --timeout.
        self.poll_interval = min(1.0 if cfg.threads == 1 else 0.25, cfg.timeout / 4) if cfg.timeout else 1.0
        self.polled_at = 0.0  # when the last poll returned: input that came later is not seen yet
        self.connections = {}
        # boot.py makes the rest: the stop state, TLS, the access log, the components
        self.stop = self.site = self.tls = self.access_log = self.heartbeat = self.stats = None
        self.poller = self.executor = self.intake = self.channels = self.scheduler = self.handover = None
        self.timers = None
        self.wake_r = -1

    # ----- signals: handlers only record; the loop acts

    def queue_signal(self, signum, frame):
        """Record the signal for the loop. TERM also ends the loop's turn early: a burst of
        accepts (each new connection served at once, inline) stops there, so that what is still
        queued is drained as the stop says, not taken as if nothing had happened."""
        self.pending_signals.append(signum)
        if signum == signal.SIGTERM and self.stop is not None:
            self.stop.request_stop()

    def fast_exit(self, signum, frame):
        self.cfg.call_hook("worker_int", self)
        raise SystemExit(0)

    def abort(self, signum, frame):
        """The master found this worker silent past --timeout (an inline app call that does not
        return): answer 504 where nothing was sent yet, then exit."""
        now = _monotonic()
        runs = self.scheduler.running_requests() if self.scheduler is not None else []
        running = ", ".join("%s %s (%.1fs)" % (run.request.method, run.request.target[:200], now - run.began)
                            for run in runs)
        log.error("worker %d: aborted by the master (timeout)%s", self.pid,
                  "; running: " + running if running else "")
        for run in runs:
            run.time_out()
        self.cfg.call_hook("worker_abort", self)
        raise SystemExit(1)

    def _handle_signals(self):
        while self.pending_signals:
            signum = self.pending_signals.pop(0)
            if signum == signal.SIGTERM:
                self.begin_stop()
            elif signum == signal.SIGUSR1:
                self.tls.reload(self.pid)
                reopen_error_log()
                if self.access_log is not None:
                    self.access_log.reopen()

    # ----- the loop

    def serve_forever(self) -> None:
        self.lock.acquire()
        # (typed: compiled, each event is a native call and each read of a connection a load)
        connections: Dict[int, Connection] = self.connections
        executor: Executor = self.executor
        scheduler: Scheduler = self.scheduler
        stop: StopState = self.stop
        channels: Channels = self.channels
        poll, intake = self.poller.poll, self.intake
        done_fd = getattr(executor, "done_r", -1)
        handoff_fd = self.setup.handoff.fileno() if self.setup.handoff is not None else -1
        next_sweep = 0.0
        stats_words = self.stats.words if self.stats is not None else None
        while True:
            now = _monotonic()
            self.heartbeat.beat(now)
            if stats_words is not None:
                stats_words[_stats.CONNECTIONS] = len(connections)  # a gauge: one store per loop turn
            if self.pending_signals:
                self._handle_signals()
            if stop.stop_after_turn:
                stop.stop_after_turn = False
                self.begin_stop()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + self.poll_interval
            if self._done(now):
                break
            intake.refresh(now)
            timeout = intake.poll_timeout(self.poll_interval)
            if scheduler.waiting:
                timeout = min(timeout, self.cfg.handoff_delay)
                if scheduler.shedder is not None:  # wake when the first of them is due to be shed
                    timeout = max(0.0, min(timeout, scheduler.shedder.next_at - now))
            ready_listeners = []
            take_handoff = thread_freed = False
            events_ready = poll(timeout)
            executor.turn_started = self.polled_at = _monotonic()  # the watcher measures waits from here
            # A turn shared with connections here: what queued meanwhile is taken first, so that
            # new connections do not wait a whole turn behind every keep-alive one.
            burst = len(events_ready) > 1 and intake.polling_listeners and intake.accept_queued(events_ready)
            for fd, events in events_ready:
                conn = connections.get(fd)
                if conn is not None:
                    if events & WRITE:
                        channels.writable(conn)
                        if connections.get(fd) is not conn:
                            continue  # closed, or moved to a sibling, as its output drained
                    # (conn.busy, without a property call on each event)
                    if events & ~WRITE and conn.state not in BUSY:
                        channels.readable(conn)
                elif fd in intake.by_fd:
                    if not burst:
                        ready_listeners.append(intake.by_fd[fd])
                elif fd == done_fd:
                    for conn, result in executor.collect():
                        scheduler.thread_done(conn, result)
                    thread_freed = stop.may_hand_off  # a sibling's waiting connection may take it
                elif fd == handoff_fd:
                    take_handoff = True
                elif fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
            # An idle turn's accepts come last: a worker that just ran the app may find the
            # connection already taken by an idle sibling.
            for listener in ready_listeners:
                intake.accept_ready(listener)
            if take_handoff or thread_freed:
                intake.take_handoffs(thread_freed and not take_handoff)
            if scheduler.waiting:
                scheduler.serve_waiting()
            channels.release_held()
        executor.stop()
        for conn in list(connections.values()):
            channels.close(conn)

    def _sweep(self, now):
        """Once a poll interval: the clients' clocks, stuck threads, the wall clock, the master."""
        if self.cfg.timeout and self.executor.threads > 1 and not (self.stop.stopping or self.stop.stop_after_turn):
            run = stuck_request(self.scheduler.running_requests(), self.cfg.timeout)
            if run is not None:
                self.cut_loose(run)
        self.timers.sweep(self.connections, now, self.polled_at, self.scheduler.stalled_at)
        self.site.clock_offset = clock_offset()  # follows a step of the wall clock within a sweep
        if os.getppid() != self.master_pid and not self.stop.stopping:
            log.warning("worker %d: the master is gone; stopping", self.pid)
            self.stop.orphaned()  # no sibling can be trusted to stay: close, don't move
            self.begin_stop()

    def _done(self, now):
        """Whether the loop ends now: stopped with nothing left, or past --graceful-timeout."""
        intake, stop = self.intake, self.stop
        if intake.drain_until and intake.drain_done(now):
            intake.close_listeners()
        if not stop.stopping:
            return False
        if not self.connections and self.executor.in_flight <= len(self.scheduler.abandoned) \
                and not intake.drain_until:
            if stop.handing_over or not intake.take_handoff():  # a full stop serves what was handed over
                return True
        if now >= stop.deadline:
            log.warning("worker %d: --graceful-timeout reached with %d connection(s) and %d request(s) "
                        "still open; closing them", self.pid, len(self.connections), self.executor.in_flight)
            for run in self.scheduler.running_requests():
                run.time_out()  # a 504 where nothing was sent yet, rather than a bare close
            return True
        return False

    def cut_loose(self, run):
        """A thread's request is past --timeout: log where it is stuck, answer its client 504 (if
        nothing was sent yet), let go of its connection, and retire. The other threads finish
        their requests and idle connections move to siblings; only the stuck thread is abandoned."""
        conn = run.conn
        frame = sys._current_frames().get(run.thread)
        log.critical("worker %d: %s %s has run %.1fs, past --timeout %gs; answering 504 and replacing this "
                     "worker once its other requests are done. Stuck at:\n%s", self.pid, run.request.method,
                     run.request.target[:200], _monotonic() - run.began, self.cfg.timeout,
                     "".join(traceback.format_stack(frame)) if frame is not None else "(thread gone)")
        run.time_out()
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)  # the thread's next write fails; the fd stays its own
        except OSError:
            pass
        self.channels.drop(conn)
        self.scheduler.abandoned.add(conn)
        self.retire_soon(_stats.RETIRE_TIMEOUT)

    # ----- stopping

    def retire_soon(self, reason):
        """Stop once this turn of the loop ends, handing over where siblings stay (max-requests, memory, --timeout)."""
        self.stop.request_stop()
        if self.stats is not None:
            self.stats.set(_stats.RETIRE_REASON, reason)

    def begin_stop(self):
        """Stop accepting and finish what is here.

        With hand-off open (a reload, fewer workers, max-requests), idle
        connections move to live siblings and responses keep connections
        alive. On a full stop, responses close their connections, and what the
        kernel had already queued in the backlog is taken (intake.py) and served.
        """
        now = _monotonic()
        if not self.stop.begin(now):
            return
        if self.stats is not None:
            self.stats.set(_stats.STOPPING, 1)
        set_title("worker (stopping)", self.cfg)
        intake = self.intake
        if self.stop.handing_over:
            intake.close_listeners()
            intake.refresh(now)
            moved = sum(1 for conn in list(self.connections.values())
                        if not conn.reader.in_progress and self.handover is not None and self.handover.hand_off(conn))
            if moved:
                log.info("worker %d: stopping, handed %d idle connection(s) to siblings", self.pid, moved)
            return
        if self.setup.handoff is not None and self.setup.handoff.open:  # the master still listens: no drain
            intake.close_listeners()
        else:
            intake.begin_drain(now)
        intake.refresh(now)


def run_worker(setup):
    """Child-side entry after fork, given a shared.setup.WorkerSetup; never returns."""
    code = 0
    cfg = setup.cfg
    worker = Worker(setup)
    try:
        boot(worker, setup)
        log.debug("worker %d booted", worker.pid)
        worker.serve_forever()
    except AppImportError as exc:
        exc.report(log.error)
        code = BOOT_ERROR
    except ConfigError as exc:  # the TLS certificate: the master backs off as for an app that won't load
        log.error("worker %d cannot start: %s", worker.pid, exc)
        code = BOOT_ERROR
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d crashed", worker.pid)
        code = 1
    finally:
        if setup.handoff is not None:
            setup.handoff.say_spare(False)  # a worker that is gone takes nothing
        stopping = worker.stop is not None and worker.stop.stopping
        otel.flush(worker.app, graceful=stopping and code == 0)  # --otel: queued spans leave before os._exit
        try:
            cfg.call_hook("worker_exit", setup.server, worker)
        except Exception:
            log.exception("worker_exit hook failed")
        flush_std()
        os._exit(code)
