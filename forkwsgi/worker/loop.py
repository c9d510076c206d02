"""A worker process: one event loop over its listeners, the hand-off channel and its connections.

The loop reads, parses and drains output for every connection; app calls run
inline or on a thread pool (executor.py). A request that waits because this
worker is busy moves to an idle sibling (handoff.py). Idle keep-alive
connections, slow uploads and slow readers cost a registered fd and a bounded
buffer, not the worker.
"""
import os
import random
import signal
import socket
import ssl
import sys
import threading
import time
import traceback

from forkwsgi.config.appload import AppImportError, load_app
from forkwsgi.shared.board import DRAINING
from forkwsgi.worker.connection import HANDOFF_MAX_BUFFER, ClientGone
from forkwsgi.wsgi.environ import base_environ
from forkwsgi.errors import BOOT_ERROR, ConfigError
from forkwsgi.worker.executor import InlineExecutor, ThreadPoolExecutor
from forkwsgi.wsgi.forwarded import TrustedPeers
from forkwsgi.worker.handler import RequestRun, answer_health
from forkwsgi.http.errors import HTTPError
from forkwsgi.http.body import StreamedBody
from forkwsgi.http.parser import SPOOL_SIZE, Limits
from forkwsgi.http.proxy import parse_proxy
from forkwsgi.http.response import CONTINUE, DateCache, error_response
from forkwsgi.worker.intake import Intake
from forkwsgi.logs import log, reopen_error_log
from forkwsgi.observe.accesslog import AccessLog
from forkwsgi.worker.outbuf import SpillBudget
from forkwsgi.worker.poller import READ, WRITE, Poller
from forkwsgi.process import drop_privileges, flush_std, set_title
from forkwsgi.wsgi.queuetime import RETRY_AFTER, ShedLog, clock_offset, earliest, front_end_start, front_end_start_raw
from forkwsgi.wsgi.devreload import load_app_reloading
from forkwsgi.worker.timers import sweep
from forkwsgi.config.tls import build_context
from forkwsgi.worker.tls import WOULD_BLOCK, RefusalLog, is_plain_http, plain_http_answer, refusal_reason
from forkwsgi.observe import otel
from forkwsgi.shared import stats as _stats

LINGER_SECONDS = 2.0  # after closing our side, read and discard so the client sees a close, not a reset
INPUT_PAUSE = 1 << 20  # unparsed input a connection may hold while it cannot be served (then: no reads)
_monotonic = time.monotonic


class Worker:
    STALL = 0.5  # an app call at least this long restarts the keep-alive clocks of the others

    def __init__(self, cfg, listeners, heartbeat, app=None, multiprocess=True, handoff=None, board=None, stats=None,
                 reload_reports=None):
        self.cfg = cfg
        self.intake = Intake(self, listeners)
        self.heartbeat = heartbeat
        self.app = app
        self.multiprocess = multiprocess
        self.handoff = handoff
        self.board = board
        self.board_page = board.page if board is not None else bytearray(2)  # read per request: no calls
        self.health_path = cfg.health_path
        self.ssl_context = None
        self.tls_refusals = RefusalLog()
        # A probe is answered even while every thread is busy: recognised before it is parsed.
        self.health_prefixes = tuple(b"%s %s%s" % (method, cfg.health_path.encode("latin-1"), end)
                                     for method in (b"GET", b"HEAD") for end in (b" ", b"?")) \
            if cfg.health_path else ()
        self.handoff_enabled = handoff is not None and cfg.handoff
        self.pid = os.getpid()
        self.connections = {}
        self.stopping = False
        self.retiring = False  # stopping with hand-off open: connections move to siblings
        self.closing_connections = False  # responses say Connection: close (full stop, max-requests)
        self.closing_check = self.is_closing_connections  # bound once: each Response asks it
        self.retire_requested = False
        self.stop_deadline = 0.0
        self.pending_signals = []
        self.requests = 0
        self.max_requests = cfg.max_requests + random.randint(0, cfg.max_requests_jitter) if cfg.max_requests else 0
        self.limits = Limits(cfg.limit_request_line, cfg.limit_request_fields,
                             cfg.limit_request_field_size, cfg.limit_request_body, cfg.spool_dir,
                             stream_over=SPOOL_SIZE)  # a bigger body streams to the app: never spooled
        self.trusted = TrustedPeers(cfg.forwarded_allow_ips, cfg.secure_scheme_headers, cfg.forwarder_headers)
        self.spill_budget = SpillBudget(cfg.output_spill_budget)  # shared by the connections' output
        self.proxy_peers = TrustedPeers(cfg.proxy_allow_ips) if cfg.proxy_protocol else None
        self.keepalive = cfg.keepalive > 0
        self.casefold_methods = cfg.casefold_http_method
        # With app threads the loop times requests out itself: it looks often enough to cut one
        # within a quarter second of --timeout.
        self.poll_interval = min(1.0 if cfg.threads == 1 else 0.25, cfg.timeout / 4) if cfg.timeout else 1.0
        self.dates = DateCache()
        self.access_log = None
        self.poller = None
        self.executor = None
        self.lock = threading.Lock()  # held by the loop; free only while an inline app call runs
        self.resumed_at = 0.0
        self.polled_at = 0.0  # when the last poll returned: input that came later is not seen yet
        self.cut_loose_conns = set()  # connections of requests past --timeout whose threads run on, abandoned
        self.stats = stats  # shared-memory counters the master reads (None: observability off)
        self.reload_reports = reload_reports
        if self.stats is not None:
            self.stats.setup_threads(cfg.threads)
        self.memory_guard = _stats.MemoryGuard(cfg.max_worker_memory, stats=self.stats) \
            if cfg.max_worker_memory else None
        self.waiting = {}  # connection -> True, in arrival order: ready, but no thread is free
        self.handoff_retry_at = 0.0  # no hand-off of a waiting connection before this: siblings were busy
        self.wake_r = self.wake_w = -1
        self.clock_offset = clock_offset()  # wall minus monotonic, refreshed each sweep (queuetime.py)
        self.max_queue_time = cfg.max_queue_time or 0.0  # 0.0: no request is shed
        self.shed_log = ShedLog(self.max_queue_time) if self.max_queue_time else None
        self.shed_at = float("inf")  # the earliest deadline among the waiting connections

    # ----- boot

    def boot(self, uid=None, gid=None):
        """Everything between fork and the first accept. Raises AppImportError if the app won't load."""
        self.pid = os.getpid()
        self.master_pid = os.getppid()
        set_title("worker", self.cfg)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._queue_signal)
        for sig in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._fast_exit)
        signal.signal(signal.SIGABRT, self._abort)
        for sig in (signal.SIGHUP, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.ssl_context = build_context(self.cfg)  # before dropping privileges: keys are often root's
        drop_privileges(uid, gid)
        if self.cfg.accesslog:
            self.access_log = AccessLog(self.cfg.accesslog, self.cfg.access_log_format, self.cfg.log_format)
        if self.app is None and getattr(self.cfg, "reload", False):
            self.app = load_app_reloading(self.cfg, self.reload_reports)  # an import error becomes a 500 page, not BOOT_ERROR
        elif self.app is None:
            self.app = load_app(self.cfg.wsgi_app, self.cfg.chdir)
        self.app = otel.instrument(self.app, self.cfg)  # --otel: after the fork, so its exporter thread runs here
        self.cfg.call_hook("post_worker_init", self)
        threads = self.cfg.threads
        self.base = base_environ(self.cfg, self.multiprocess)
        self.base["wsgi.multithread"] = threads > 1
        self.poller = Poller()
        self.poller.add(self.wake_r)
        if self.handoff_enabled:
            self.handoff.reserve_fd()
        self.executor = ThreadPoolExecutor(self, threads) if threads > 1 else InlineExecutor(self)
        if threads > 1:
            self.poller.add(self.executor.done_r)
        self.executor.start()
        self.intake.start(self.base, _monotonic())
        self.heartbeat.mark_booted()

    def beat(self, now):
        self.heartbeat.beat(now)

    # ----- signals: handlers only record; the loop acts

    def _queue_signal(self, signum, frame):
        self.pending_signals.append(signum)
        if signum == signal.SIGTERM and not self._handoff_open():
            self.closing_connections = True  # a response under way already says Connection: close

    def _fast_exit(self, signum, frame):
        self.cfg.call_hook("worker_int", self)
        raise SystemExit(0)

    def _abort(self, signum, frame):
        """The master found this worker silent past --timeout (an inline app call that does not
        return): answer 504 where nothing was sent yet, then exit."""
        now = _monotonic()
        runs = self.running_requests()
        running = ", ".join("%s %s (%.1fs)" % (run.request.method, run.request.target[:200], now - run.began)
                            for run in runs)
        log.error("worker %d: aborted by the master (timeout)%s", self.pid,
                  "; running: " + running if running else "")
        for run in runs:
            run.time_out()
        self.cfg.call_hook("worker_abort", self)
        raise SystemExit(1)

    def _reload_tls(self):
        """USR1: re-read the certificate files; connections already open keep their session."""
        if self.ssl_context is None:
            return
        try:
            self.ssl_context = build_context(self.cfg)
            log.info("worker %d: reloaded the TLS certificate", self.pid)
        except Exception as exc:  # a bad file, or the ssl_context hook: keep serving with the old one
            log.error("worker %d: keeping the TLS certificate in use: %s", self.pid, exc)

    def _handle_signals(self):
        while self.pending_signals:
            signum = self.pending_signals.pop(0)
            if signum == signal.SIGTERM:
                self.begin_stop()
            elif signum == signal.SIGUSR1:
                self._reload_tls()
                reopen_error_log()
                if self.access_log is not None:
                    self.access_log.reopen()

    # ----- requests: bookkeeping the handler calls from whichever thread runs it

    def is_closing_connections(self):
        """Responses now say Connection: close: a full stop, a self-retire without hand-off, or
        --shutdown-delay running (the board is read here, not once a turn: the loop may not have woken)."""
        return self.closing_connections or self.board_page[DRAINING] == 1

    def board_draining(self):
        return self.board_page[DRAINING] == 1

    def keeps_alive(self, conn, request):
        """Whether this response may leave the connection open. A retiring worker closes what it
        cannot hand to a sibling (TLS), and every connection on a full stop or a drain."""
        return (request.keep_alive and self.keepalive and not self.closing_connections
                and self.board_page[DRAINING] == 0 and not (self.retiring and conn.tls))

    def running_requests(self):
        """The handler.RequestRun of each request in the app now."""
        return [conn.running for conn in list(self.connections.values()) if conn.running is not None]

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
        if self.connections.get(conn.fd) is conn:
            del self.connections[conn.fd]
            self.waiting.pop(conn, None)
            self.poller.remove(conn.fd)
        self.cut_loose_conns.add(conn)
        self._retire_soon(_stats.RETIRE_TIMEOUT)

    # ----- the loop

    def serve_forever(self):
        self.lock.acquire()
        connections = self.connections
        poll = self.poller.poll
        executor = self.executor
        intake = self.intake
        done_fd = getattr(executor, "done_r", -1)
        handoff_fd = self.handoff.fileno() if self.handoff is not None else -1
        next_sweep = 0.0
        stats_words = self.stats.words if self.stats is not None else None
        while True:
            now = _monotonic()
            self.beat(now)
            if stats_words is not None:
                stats_words[_stats.CONNECTIONS] = len(connections)  # a gauge: one store per loop turn
            if self.pending_signals:
                self._handle_signals()
            if self.retire_requested:
                self.retire_requested = False
                self.begin_stop()
            if now >= next_sweep:
                sweep(self, now)
                self.clock_offset = clock_offset()  # follows a step of the wall clock within a sweep
                next_sweep = now + self.poll_interval
                if os.getppid() != self.master_pid and not self.stopping:
                    log.warning("worker %d: the master is gone; stopping", self.pid)
                    self.handoff_enabled = False  # no sibling can be trusted to stay: close, don't move
                    self.begin_stop()
            if intake.drain_until and intake.drain_done(now):
                intake.close_listeners()
            if self.stopping and not connections and executor.in_flight <= len(self.cut_loose_conns) \
                    and not intake.drain_until:
                if self.retiring or not intake.take_handoff():  # a full stop serves what was handed over
                    break
            if self.stopping and now >= self.stop_deadline:
                log.warning("worker %d: --graceful-timeout reached with %d connection(s) and %d request(s) "
                            "still open; closing them", self.pid, len(connections), executor.in_flight)
                for run in self.running_requests():
                    run.time_out()  # a 504 where nothing was sent yet, rather than a bare close
                break
            intake.refresh(now)
            timeout = intake.poll_timeout(self.poll_interval)
            if self.waiting:
                timeout = min(timeout, self.cfg.handoff_delay)
                if self.max_queue_time:  # wake when the first of them is due to be shed
                    timeout = max(0.0, min(timeout, self.shed_at - now))
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
                        self._on_writable(conn)
                    if events & ~WRITE and not conn.busy and connections.get(fd) is conn:
                        self._on_readable(conn)
                elif fd in intake.by_fd:
                    if not burst:
                        ready_listeners.append(intake.by_fd[fd])
                elif fd == done_fd:
                    for conn, keep_alive in executor.collect():
                        self._thread_done(conn, keep_alive)
                    thread_freed = self.handoff_enabled  # a sibling's waiting connection may take it
                elif fd == handoff_fd:
                    take_handoff = True
                elif fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
            # An idle turn takes one connection, last: a worker that just ran the app
            # may find it already taken by an idle sibling.
            for listener in ready_listeners:
                intake.accept(listener)
            if take_handoff or thread_freed:
                intake.take_handoffs(thread_freed and not take_handoff)
            if self.waiting:
                self._serve_waiting()
        executor.stop()
        for conn in list(connections.values()):
            self.close(conn)

    def register(self, conn):
        """Serve a new connection: accepted here, or handed over by a sibling with bytes already read."""
        self.connections[conn.fd] = conn
        self.poller.add(conn.fd)
        if conn.reader.buf:
            self._process(conn)
        if self.connections.get(conn.fd) is conn and not conn.busy:
            self._on_readable(conn)  # the request often arrives with the connection

    # ----- hand-off

    def hand_off(self, conn):
        """Give ``conn`` to a sibling; True if it left this worker."""
        if not (self.handoff_enabled and self.handoff.open and conn.can_hand_off()
                and self.handoff.can_send(_monotonic())):
            return False
        if not self.handoff.send(conn.handoff_message(), conn.fd):
            return False
        self.poller.remove(conn.fd)  # before our copy closes: the sibling's copy keeps the socket alive
        del self.connections[conn.fd]
        self.waiting.pop(conn, None)
        conn.close()
        if self.stats is not None:
            self.stats.add(_stats.HANDOFF_GIVEN)
        log.debug("handed connection %s:%s to a sibling", *conn.peer[:2])
        return True

    def hand_off_waiting(self, exclude=None):
        """While this worker is busy: move every connection with request bytes waiting."""
        if not self._handoff_open() or self.handoff.siblings_busy():
            return
        connections = self.connections
        for conn in [connections[fd] for fd, _ in self.poller.poll(0) if fd in connections]:
            if conn is exclude or connections.get(conn.fd) is not conn:
                continue
            self.hand_off(conn)
            if self.handoff.siblings_busy() or not self.handoff.can_send(_monotonic()):
                return  # every sibling is busy too: the rest wait here

    def _serve_waiting(self):
        """Connections ready while no thread was free: run them as threads free, else move them."""
        now = _monotonic()
        if self.max_queue_time and now >= self.shed_at:
            self.shed_at = self._shed_waiting(now)
        delay = self.cfg.handoff_delay
        may_move = self.multiprocess and self.handoff is not None and now >= self.handoff_retry_at
        for conn in list(self.waiting):
            if self.connections.get(conn.fd) is not conn or conn.busy:
                self.waiting.pop(conn, None)
                continue
            if self.executor.free > 0:
                self._process(conn)
                self._resume_reading(conn)
            elif not may_move:
                return  # no thread, and no sibling to move to: all of them wait their turn here
            elif now - conn.waiting_since >= delay:
                if self.handoff.siblings_busy() or not self.hand_off(conn):
                    self.handoff_retry_at = now + delay  # every sibling is busy too: try again later
                    may_move = False

    # ----- connection I/O

    def _on_readable(self, conn):
        if conn.handshaking and not self._handshake(conn):
            return
        try:
            data = conn.sock.recv(65536)
            if conn.tls:
                while conn.sock.pending():  # decrypted bytes epoll cannot see
                    data += conn.sock.recv(65536)
        except WOULD_BLOCK:
            return
        except OSError as exc:  # reset, or a TLS error: nobody is left to read an answer
            log.debug("client %s:%s: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        if conn.linger_until:
            if not data:
                self.close(conn)
            return
        reader = conn.reader
        if not data:
            self._on_eof(conn)
            return
        fresh = not reader.buf and reader.request is None
        reader.feed(data)
        # Empty lines before a request extend no timer; the common case (a request's first
        # bytes on an empty buffer) needs no look at the parser's state.
        if fresh:
            if data[0] != 13 or reader.in_progress:
                conn.started = conn.last_io = _monotonic()
        elif reader.in_progress:
            conn.last_io = _monotonic()
        self._process(conn)
        if not conn.busy and len(reader.buf) > INPUT_PAUSE and self.connections.get(conn.fd) is conn \
                and not conn.read_paused:  # (a busy connection is its thread's, and reads its body itself)
            # A client that sends and never reads: take no more than this until it can be served.
            conn.read_paused = True
            self._watch(conn, write=bool(conn.out.segments))

    def _on_eof(self, conn):
        """The client closed its side: serve the whole requests it sent first, then close."""
        conn.client_closed = True
        self._watch(conn, write=bool(conn.out))  # no more read events: the end of input stays readable
        self._process(conn)

    def _after_client_closed(self, conn):
        """Nothing whole is left to serve for a client that closed its side."""
        if conn.reader.in_progress:
            log.debug("client %s:%s closed the connection mid-request", *conn.peer[:2])
            try:
                conn.reader.feed_eof()
            except HTTPError as exc:  # a client that only half-closed still reads our answer
                self.refuse(conn, exc)
                return
        self.close(conn)

    def _watch(self, conn, write=False):
        """Poll ``conn`` for input (until its client closed, or while it is paused) and, while output
        is queued, for room."""
        reading = not (conn.client_closed or conn.read_paused or conn.suspended is not None)
        self.poller.modify(conn.fd, (READ if reading else 0) | (WRITE if write else 0))

    def _resume_reading(self, conn):
        """Input was paused while the connection could not move on; it can again."""
        if conn.read_paused and len(conn.reader.buf) <= INPUT_PAUSE and self.connections.get(conn.fd) is conn:
            conn.read_paused = False
            if not conn.busy:
                self._watch(conn, write=bool(conn.out.segments))

    def _handshake(self, conn):
        """Advance a TLS handshake without blocking; True once done."""
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn)
            return False
        except ssl.SSLWantWriteError:
            self._watch(conn, write=True)
            return False
        except (OSError, ValueError) as exc:
            self._handshake_failed(conn, exc)
            return False
        conn.handshaking = False
        self._watch(conn)
        return True

    def _handshake_failed(self, conn, exc):
        """A refused client gets its TLS alert (or, for plain HTTP, a plain 400) and a gentle close:
        a close with its bytes unread would be a reset, which can overtake the alert."""
        reason = refusal_reason(exc)
        if reason is None:  # the client went away: nobody to tell
            log.debug("TLS handshake with %s:%s failed: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        self.tls_refusals.refused(conn.peer, reason)
        conn.handshaking = False  # over: OpenSSL wrote its alert as the handshake failed; plain bytes now
        if is_plain_http(exc):
            try:
                self.dates.get()
                os.write(conn.fd, plain_http_answer(self.dates.value))  # past TLS: the client speaks none
            except OSError:
                pass
        self._linger(conn)
        if self.connections.get(conn.fd) is conn:
            self._watch(conn)

    def _on_writable(self, conn):
        if conn.handshaking:
            self._on_readable(conn)
            return
        try:
            done = conn.flush()
        except ClientGone as exc:
            log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        if conn.suspended is not None:
            if conn.drained_enough():
                self._resume(conn)
            return
        if done:
            conn.last_io = _monotonic()  # idle from when the response has left, not from when it was queued
            self._watch(conn)
            self._after_response(conn)
            self._resume_reading(conn)

    def _process(self, conn):
        """Serve the complete requests in the buffer, in order (pipelining), as threads allow."""
        reader = conn.reader
        executor = self.executor
        while not conn.busy and not conn.linger_until and not conn.out.segments \
                and self.connections.get(conn.fd) is conn:
            request = conn.pending
            # First come, first served: while connections wait for a thread, only the first may run,
            # or one that has waited longer still (handed over by a sibling, with its wait).
            queued = executor.free <= 0 or (self.waiting and not self._first_in_line(conn))
            if not queued and self.waiting:
                self.waiting.pop(conn, None)  # its turn: whatever it meets now, it no longer holds the queue
            if request is None:
                if queued and reader.request is None and len(reader.buf) <= HANDOFF_MAX_BUFFER \
                        and not reader.buf.startswith(self.health_prefixes):
                    if reader.in_progress:  # leave it raw: it can still move to a sibling
                        self._wait(conn)
                    elif conn.client_closed:
                        self.close(conn)
                    return
                try:
                    if conn.proxy_pending:
                        found = parse_proxy(reader.buf, self.cfg.proxy_protocol)
                        if found is None:
                            return
                        conn.proxy_pending = False
                        if found[0] is not None:
                            conn.peer = found[0]
                            conn.base = dict(conn.base, REMOTE_ADDR=found[0][0], REMOTE_PORT=str(found[0][1]))
                    request = reader.next_request()
                    if request is not None:
                        if type(request.body) is StreamedBody:
                            conn.stream_input(request)
                        if self.casefold_methods:  # casefold_http_method, as gunicorn users know it
                            request.method = request.method.upper()
                except HTTPError as exc:
                    self.refuse(conn, exc)
                    return
                except OSError as exc:  # spooling the body: disk full, out of file descriptors
                    log.error("cannot receive a request body from %s:%s: %s", conn.peer[0], conn.peer[1], exc)
                    self._answer_and_close(conn, 503, "Service Unavailable")
                    return
                if request is None:
                    self.waiting.pop(conn, None)  # not a whole request yet: it reads on, and waits for nobody
                    conn.waiting_since = 0.0
                    if conn.client_closed:
                        self._after_client_closed(conn)
                        return
                    if reader.needs_continue():
                        try:
                            conn.send(CONTINUE)
                        except ClientGone:
                            self.close(conn)
                    return
            if self.health_path is not None and request.target.partition("?")[0] == self.health_path \
                    and request.method in ("GET", "HEAD"):
                conn.pending = None  # answered here, never queued behind the app: a probe sees the loop
                try:
                    keep_alive = answer_health(self, conn, request)
                except ClientGone:
                    self.close(conn)
                    return
                self.request_done(conn, keep_alive)
                continue
            if queued:
                conn.pending = request
                self._wait(conn)
                return
            conn.pending = None
            self._dispatch(conn, request)
            if not reader.buf and not conn.client_closed:
                return  # nothing pipelined behind it: skip a parse that would find nothing

    def _wait(self, conn):
        if conn not in self.waiting:
            conn.waiting_since = conn.waiting_since or _monotonic()  # a sibling's wait counts too
            self.waiting[conn] = True
            if self.max_queue_time:
                self.shed_at = min(self.shed_at, self._deadline(conn, conn.pending))

    def _first_in_line(self, conn):
        """Whether ``conn`` may take the free thread before the connections waiting here."""
        first = next(iter(self.waiting))
        return first is conn or 0.0 < conn.waiting_since < first.waiting_since

    def _dispatch(self, conn, request):
        if self.max_queue_time and _monotonic() >= self._deadline(conn, request):
            self._shed(conn, request)
            return
        if self.waiting:
            self.waiting.pop(conn, None)
        conn.waiting_since = 0.0
        conn.busy = True
        conn.served += 1
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and not self.stopping \
                and not self.retire_requested:
            log.info("worker %d: serving request %d of --max-requests, then restarting", self.pid, self.requests)
            self._retire_soon(_stats.RETIRE_MAX_REQUESTS)
        if self.executor.threads > 1:
            self.poller.remove(conn.fd)  # its thread owns it until done
        self.executor.submit(conn, RequestRun(self, conn, request))

    # ----- shedding (--max-queue-time)

    def _deadline(self, conn, request):
        """Monotonic time past which the request of ``conn`` (parsed, or None while raw) is shed:
        --max-queue-time after it was first seen, or after a trusted front end's earlier stamp."""
        seen = conn.first_seen()
        if self.trusted.trusts(conn.base["REMOTE_ADDR"]):
            front = front_end_start(request.headers) if request is not None else front_end_start_raw(conn.reader.buf)
            offset = self.clock_offset
            seen = earliest(seen + offset, front) - offset
        return seen + self.max_queue_time

    def _shed(self, conn, request):
        """Answer 503 without calling the app, and close: counted, and logged once a second at most."""
        self.shed_log.shed()
        if self.stats is not None:
            self.stats.add(_stats.SHED)
        conn.pending = None
        if request is not None and request.body is not None:
            request.body.close()
        self._answer_and_close(conn, 503, "Service Unavailable", RETRY_AFTER)

    def queue_while_busy(self):
        """Inline, while the loop is in an app call (the hand-off watcher calls this, holding the lock):
        take what waits in the accept queue when no sibling is idle to, and keep the waiting ones'
        clocks: moved to a sibling that frees, or shed at their deadline, not when the call returns."""
        if not self.stopping and (not self._handoff_open() or self.handoff.siblings_busy()):
            self.intake.accept_waiting()
        if self.waiting:
            self._serve_waiting()

    def _shed_waiting(self, now):
        """Shed the waiting connections past their deadline; the earliest deadline left (inf: none)."""
        next_at = float("inf")
        for conn in list(self.waiting):
            if self.connections.get(conn.fd) is not conn or conn.busy:
                continue
            deadline = self._deadline(conn, conn.pending)
            if now >= deadline:
                self._shed(conn, conn.pending)
            elif deadline < next_at:
                next_at = deadline
        return next_at

    def _resume(self, conn):
        """A suspended body goes on: its client has taken enough of what was queued."""
        run, conn.suspended = conn.suspended, None
        if self.executor.threads > 1:
            self.poller.remove(conn.fd)  # its thread owns it until done, or suspended again
        self.executor.submit(conn, run)

    def _check_memory(self):
        """--max-worker-memory: past the limit, retire gracefully as for max-requests (one pread per request)."""
        rss = self.memory_guard.exceeded()
        if rss:
            log.warning("worker %d: USS %.1f MB is past --max-worker-memory %g MB; restarting gracefully",
                        self.pid, rss / 1048576.0, self.cfg.max_worker_memory)
            self._retire_soon(_stats.RETIRE_MEMORY)

    def _retire_soon(self, reason):
        """Stop once this turn of the loop ends, as a retiring worker (max-requests, memory)."""
        self.retire_requested = True
        if self.stats is not None:
            self.stats.set(_stats.RETIRE_REASON, reason)
        if not self._handoff_open():
            self.closing_connections = True  # the response under way already says Connection: close

    def _thread_done(self, conn, keep_alive):
        if conn in self.cut_loose_conns:  # its thread came back after all: only the fd is left to close
            self.cut_loose_conns.discard(conn)
            conn.close()
            return
        self.poller.add(conn.fd, 0 if conn.client_closed else READ)
        self.request_done(conn, keep_alive)
        if not conn.busy and self.connections.get(conn.fd) is conn and not conn.out.segments:
            self._process(conn)
            self._resume_reading(conn)

    def request_done(self, conn, keep_alive, now=None):
        """A response is written (or queued), or its body waits for the client; in the loop's thread."""
        now = now or _monotonic()
        if self.executor.free:  # (not a probe the hand-off watcher answers while an inline call is stuck)
            self.heartbeat.beat(now)  # a pipelined burst of requests is not silence
        if conn.suspended is not None:  # still busy: the loop drains, then resumes it (_on_writable)
            conn.send_progress_at = now
            self._watch(conn, write=True)
            return
        conn.busy = False
        conn.started = conn.last_io = now
        if self.memory_guard is not None and not self.retire_requested and not self.stopping:
            self._check_memory()
        if conn.out.segments:
            if not keep_alive:
                conn.close_after = True
            self._watch(conn, write=True)  # the loop drains the rest
        elif not keep_alive or conn.close_after:
            conn.close_after = True
            self._finish(conn)
        elif self.retiring:
            self.hand_off(conn)  # raw bytes of a next request travel with it

    def _after_response(self, conn):
        """The last of a response has left: close, move (retiring), or serve what came next."""
        if conn.close_after:
            self._finish(conn)
        elif not (self.retiring and self.hand_off(conn)):
            self._process(conn)

    # ----- closing

    def refuse(self, conn, exc):
        """Answer a request we will not serve, then close gently."""
        log.info("refused request from %s:%s: %d %s: %s", conn.peer[0], conn.peer[1],
                 exc.status, exc.reason, exc.detail)
        self._answer_and_close(conn, exc.status, exc.reason)

    def _answer_and_close(self, conn, status, reason, headers=""):
        self.dates.get()
        try:
            conn.send(error_response(status, reason, self.dates.value, headers=headers))
        except ClientGone:
            self.close(conn)
            return
        conn.close_after = True
        if conn.out:
            self._watch(conn, write=True)
        else:
            self._linger(conn)

    def _finish(self, conn):
        """Close after a response; if the client sent (or still sends) more, linger so it is not reset."""
        if conn.reader.buf or conn.unread_input:
            self._linger(conn)
        else:
            self.close(conn)

    def _linger(self, conn):
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.reader.discard()  # closes the file of a body refused mid-way now, not after the linger
        conn.linger_until = _monotonic() + LINGER_SECONDS
        self.waiting.pop(conn, None)

    def close(self, conn):
        if self.connections.get(conn.fd) is not conn:
            return  # closed, or handed off, already
        del self.connections[conn.fd]
        self.waiting.pop(conn, None)
        self.poller.remove(conn.fd)
        if conn.suspended is not None:  # its client stopped reading, or the worker stops
            run, conn.suspended = conn.suspended, None
            run.abandon()
        conn.close()

    def close_idle(self, conn):
        """Close a connection between requests, unless its next request has just arrived.

        What is in the socket is taken first: a request found there is served, and the
        connection it came on is not idle any more, so it stays open for the next one."""
        last_io = conn.last_io
        self._on_readable(conn)
        if self.connections.get(conn.fd) is conn and conn.last_io == last_io \
                and not (conn.busy or conn.linger_until or conn.out or conn.reader.in_progress or conn.pending):
            self._linger(conn)

    # ----- graceful stop

    def begin_stop(self):
        """Stop accepting and finish what is here.

        With hand-off open (a reload, fewer workers, max-requests), idle
        connections move to live siblings and responses keep connections
        alive. On a full stop, responses close their connections, and what the
        kernel had already queued in the backlog is taken (intake.py) and served.
        """
        if self.stopping:
            return
        self.stopping = True
        if self.stats is not None:
            self.stats.set(_stats.STOPPING, 1)
        now = _monotonic()
        self.stop_deadline = now + self.cfg.graceful_timeout
        set_title("worker (stopping)", self.cfg)
        if self._handoff_open():
            self.retiring = True
            self.intake.close_listeners()
            self.intake.refresh(now)
            moved = sum(1 for conn in list(self.connections.values())
                        if not conn.reader.in_progress and self.hand_off(conn))
            if moved:
                log.info("worker %d: stopping, handed %d idle connection(s) to siblings", self.pid, moved)
            return
        self.closing_connections = True
        if self.handoff is not None and self.handoff.open:  # the master still listens: nothing to drain
            self.intake.close_listeners()
        else:
            self.intake.begin_drain(now)
        self.intake.refresh(now)

    def _handoff_open(self):
        return self.handoff_enabled and self.handoff.open


def run_worker(setup):
    """Child-side entry after fork, given a shared.setup.WorkerSetup; never returns."""
    code = 0
    cfg = setup.cfg
    handoff = setup.handoff
    worker = Worker(cfg, setup.listeners, setup.heartbeat, setup.app, setup.multiprocess, handoff, setup.board,
                    setup.stats, setup.reload_reports)
    try:
        worker.boot(*setup.ids)
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
        if handoff is not None:
            handoff.say_spare(False)  # a worker that is gone takes nothing
        otel.flush(worker.app, graceful=worker.stopping and code == 0)  # --otel: queued spans leave before os._exit
        try:
            cfg.call_hook("worker_exit", setup.server, worker)
        except Exception:
            log.exception("worker_exit hook failed")
        flush_std()
        os._exit(code)
