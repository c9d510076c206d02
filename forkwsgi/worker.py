"""A worker process: one event loop over its listeners, the hand-off channel and its connections.

The loop reads, parses and drains output for every connection; app calls run
inline or on a thread pool (executor.py). A request that waits because this
worker is busy moves to an idle sibling (handoff.py). Idle keep-alive
connections, slow uploads and slow readers cost a registered fd and a bounded
buffer, not the worker.
"""
import errno
import os
import random
import signal
import socket
import ssl
import struct
import threading
import time

from .appload import AppImportError, load_app
from .connection import HANDOFF_MAX_BUFFER, ClientGone, Connection
from .environ import base_environ
from .errors import ConfigError
from .executor import InlineExecutor, ThreadPoolExecutor
from .handler import answer_health
from .forwarded import TrustedPeers
from .http.errors import HTTPError, RequestTimeout
from .http.parser import Limits
from .http.proxy import parse_proxy_v1
from .http.response import CONTINUE, DateCache, error_response
from .logs import AccessLog, log, reopen_error_log
from .poller import READ, WRITE, Poller
from .process import drop_privileges, flush_std, set_title
from .tls import WOULD_BLOCK, build_context
from .reloader import load_app_reloading
from . import stats as _stats

BOOT_ERROR = 3  # exit status telling the master the app could not be loaded
LINGER_SECONDS = 2.0  # after closing our side, read and discard so the client sees a close, not a reset
BUSY_ACCEPT_DELAY = 0.005  # with every thread busy, seconds before this worker accepts anyway
STOP_IDLE_GRACE = 0.5  # a stopping worker closes a keep-alive connection once idle this long
DRAIN_SECONDS = 1.0  # on a full stop, take connections queued in the backlog for at most this long
_monotonic = time.monotonic
_TCP_INFO_UNACKED = struct.Struct("I")  # tcpi_unacked: a listening socket's accept queue length


def backlog_length(sock):
    """Connections waiting in a TCP listener's accept queue; None where Linux does not say."""
    if sock.family == socket.AF_UNIX or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return _TCP_INFO_UNACKED.unpack_from(info, 24)[0]
    except OSError:
        return None


class Worker:
    STALL = 0.5  # an app call at least this long restarts the keep-alive clocks of the others

    def __init__(self, cfg, listeners, heartbeat, app=None, multiprocess=True, handoff=None, board=None):
        self.cfg = cfg
        self.listeners = list(listeners)
        self.heartbeat = heartbeat
        self.app = app
        self.multiprocess = multiprocess
        self.handoff = handoff
        self.board = board
        self.health_path = cfg.health_path
        self.ssl_context = None
        # A probe is answered even while every thread is busy: recognised before it is parsed.
        self.health_prefixes = tuple(b"%s %s%s" % (method, cfg.health_path.encode("latin-1"), end)
                                     for method in (b"GET", b"HEAD") for end in (b" ", b"?")) \
            if cfg.health_path else ()
        self.handoff_enabled = handoff is not None and cfg.handoff
        self.pid = os.getpid()
        self.connections = {}
        self.listener_by_fd = {}
        self.polling_listeners = False
        self.polling_handoffs = False
        self.all_busy_since = 0.0
        self.accept_paused_until = 0.0
        self.stopping = False
        self.retiring = False  # stopping with hand-off open: connections move to siblings
        self.closing_connections = False  # responses say Connection: close (full stop, max-requests)
        self.retire_requested = False
        self.stop_deadline = 0.0
        self.drain_until = 0.0
        self.drain_quota = 0
        self.drained = 0
        self.pending_signals = []
        self.requests = 0
        self.max_requests = cfg.max_requests + random.randint(0, cfg.max_requests_jitter) if cfg.max_requests else 0
        self.limits = Limits(cfg.limit_request_line, cfg.limit_request_fields,
                             cfg.limit_request_field_size, cfg.limit_request_body, cfg.spool_dir)
        self.trusted = TrustedPeers(cfg.forwarded_allow_ips)
        self.proxy_peers = TrustedPeers(cfg.proxy_allow_ips) if cfg.proxy_protocol else None
        self.keepalive = cfg.keepalive > 0
        self.poll_interval = min(1.0, cfg.timeout / 4) if cfg.timeout else 1.0
        self.dates = DateCache()
        self.access_log = None
        self.poller = None
        self.executor = None
        self.lock = threading.Lock()  # held by the loop; free only while an inline app call runs
        self.resumed_at = 0.0
        self.in_flight = {}  # connection -> (method, target, started), for --timeout reports
        self.hung = False
        self.stats = _stats.current  # shared-memory counters the master reads (None: observability off)
        if self.stats is not None:
            self.stats.setup_threads(cfg.threads)
        self.memory_guard = _stats.MemoryGuard(cfg.max_worker_memory) if cfg.max_worker_memory else None
        self.waiting = {}  # connection -> True, in arrival order: ready, but no thread is free
        self.wake_r = self.wake_w = -1

    # ----- boot

    def boot(self, uid=None, gid=None):
        """Everything between fork and the first accept. Raises AppImportError if the app won't load."""
        self.pid = os.getpid()
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
        drop_privileges(uid, gid)
        if self.cfg.accesslog:
            self.access_log = AccessLog(self.cfg.accesslog, self.cfg.access_log_format)
        self.ssl_context = build_context(self.cfg)
        if self.app is None and getattr(self.cfg, "reload", False):
            self.app = load_app_reloading(self.cfg)  # an import error becomes a 500 page, not BOOT_ERROR
        elif self.app is None:
            self.app = load_app(self.cfg.wsgi_app, self.cfg.chdir)
        self.cfg.call_hook("post_worker_init", self)
        threads = self.cfg.threads
        self.base = base_environ(self.cfg, self.multiprocess)
        self.base["wsgi.multithread"] = threads > 1
        self.listener_base = {listener.fileno(): self._listener_environ(listener) for listener in self.listeners}
        self.poller = Poller()
        self.poller.add(self.wake_r)
        self.executor = ThreadPoolExecutor(self, threads) if threads > 1 else InlineExecutor(self)
        if threads > 1:
            self.poller.add(self.executor.done_r)
        self.executor.start()
        self.listener_by_fd = {listener.fileno(): listener for listener in self.listeners}
        self._refresh_polling(_monotonic())
        self.heartbeat.mark_booted()

    def _listener_environ(self, listener):
        environ = dict(self.base)
        environ["wsgi.url_scheme"] = "http"
        address = listener.sock.getsockname()
        if isinstance(address, tuple):
            environ["SERVER_NAME"], environ["SERVER_PORT"] = address[0], str(address[1])
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "0"
        return environ

    def beat(self, now):
        if not self.hung:
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
        now = time.time()
        running = ", ".join("%s %s (%.1fs)" % (method, target[:200], now - started)
                            for method, target, started in list(self.in_flight.values()))
        log.error("worker %d: aborted by the master (timeout)%s", self.pid,
                  "; running: " + running if running else "")
        self.cfg.call_hook("worker_abort", self)
        raise SystemExit(1)

    def _reload_tls(self):
        """USR1: re-read the certificate files; connections already open keep their session."""
        if self.ssl_context is None:
            return
        try:
            self.ssl_context = build_context(self.cfg)
            log.info("worker %d: reloaded the TLS certificate", self.pid)
        except ConfigError as exc:
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
        return self.closing_connections

    def board_draining(self):
        return self.board is not None and self.board.draining

    def note_request_start(self, conn, request, started):
        self.in_flight[conn] = (request.method, request.target, started)

    def note_request_end(self, conn):
        self.in_flight.pop(conn, None)

    # ----- the loop

    def serve_forever(self):
        self.lock.acquire()
        connections = self.connections
        poll = self.poller.poll
        executor = self.executor
        board = self.board
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
            if board is not None and board.draining and not self.closing_connections:
                self.closing_connections = True  # --shutdown-delay: pooled connections close after each response
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + self.poll_interval
            if self.drain_until and self._drain_done(now):
                self._close_listeners()
            if self.stopping and not connections and not executor.in_flight and not self.drain_until:
                if self.retiring or not self._take_handoff():  # a full stop serves what was handed over
                    break
            if self.stopping and now >= self.stop_deadline:
                log.warning("worker %d: --graceful-timeout reached with %d connection(s) and %d request(s) "
                            "still open; closing them", self.pid, len(connections), executor.in_flight)
                break
            self._refresh_polling(now)
            timeout = self.poll_interval
            if self.waiting:
                timeout = min(timeout, self.cfg.handoff_delay)
            if self.all_busy_since and not self.polling_listeners:
                timeout = min(timeout, BUSY_ACCEPT_DELAY)
            ready_listeners = []
            take_handoff = False
            for fd, events in poll(timeout):
                conn = connections.get(fd)
                if conn is not None:
                    if events & WRITE:
                        self._on_writable(conn)
                    if events & ~WRITE and not conn.busy and fd in connections:
                        self._on_readable(conn)
                elif fd in self.listener_by_fd:
                    ready_listeners.append(self.listener_by_fd[fd])
                elif fd == done_fd:
                    for conn, keep_alive in executor.collect():
                        self._thread_done(conn, keep_alive)
                elif fd == handoff_fd:
                    take_handoff = True
                elif fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
            # Connections first, listeners last: a worker that just ran the app
            # may find the new connection already taken by an idle sibling.
            for listener in ready_listeners:
                if self.polling_listeners:
                    self._accept(listener)
            if take_handoff and self.polling_handoffs:
                self._take_handoff()
            if self.waiting:
                self._serve_waiting()
        executor.stop()
        for conn in list(connections.values()):
            self._close(conn)

    # ----- what the loop polls besides its connections

    def _wants_listeners(self, now):
        if self.stopping and not self.drain_until:
            return False
        if len(self.connections) >= self.cfg.worker_connections or now < self.accept_paused_until:
            return False
        if self.executor.free > 0:
            self.all_busy_since = 0.0
            return True
        # Every thread is busy: idle siblings get new connections first; past a moment this
        # worker takes them too (a health probe, a request it will hand on): its loop never goes deaf.
        if not self.all_busy_since:
            self.all_busy_since = now
        return now - self.all_busy_since >= BUSY_ACCEPT_DELAY

    def _wants_handoffs(self):
        """Siblings with a free thread take waiting connections; a retiring worker gives, never takes."""
        return (self.handoff_enabled and not self.retiring and self.executor.free > 0
                and len(self.connections) < self.cfg.worker_connections)

    def _refresh_polling(self, now):
        want = self._wants_listeners(now)
        if want != self.polling_listeners:
            for fd in self.listener_by_fd:
                if want:
                    self.poller.add(fd)
                else:
                    self.poller.remove(fd)
            self.polling_listeners = want
        want = self._wants_handoffs()
        if want != self.polling_handoffs:
            if want:
                self.poller.add(self.handoff.fileno())
            else:
                self.poller.remove(self.handoff.fileno())
            self.polling_handoffs = want

    def _accept(self, listener):
        """Take one connection, then go back to polling: idle sibling workers get the next ones."""
        while True:
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                if self.drain_until and backlog_length(listener.sock) is None:
                    self.drain_quota = 0  # no queue length to read: an empty accept ends the drain
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                log.error("accept failed on %s: %s; pausing accepts for a second", listener, exc)
                self.accept_paused_until = _monotonic() + 1.0  # no busy loop on EMFILE
                return
            if self.drain_until:
                self.drain_quota -= 1
                self.drained += 1
            self._add_connection(sock, address, listener)
            return

    def _add_connection(self, sock, address, listener):
        sock.setblocking(False)
        base = self.listener_base[listener.fileno()]
        if sock.family == socket.AF_UNIX:
            peer = ("", 0)
        else:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = address[:2]
        environ = base.copy()
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
        proxy = self.proxy_peers is not None and self.proxy_peers.trusts(peer[0])
        tls = self.ssl_context is not None
        if tls:
            environ["wsgi.url_scheme"] = "https"
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self._register(Connection(self, sock, peer, environ, proxy, tls))

    def _register(self, conn):
        self.connections[conn.fd] = conn
        self.poller.add(conn.fd)
        self._on_readable(conn)  # the request often arrives with the connection

    # ----- hand-off

    def _take_handoff(self):
        """Adopt one connection a sibling handed over; True if there was one."""
        if self.handoff is None or self.executor.free <= 0 \
                or len(self.connections) >= self.cfg.worker_connections:
            return False
        received = self.handoff.receive()
        if received is None:
            return False
        sock, message = received
        try:
            sock.setblocking(False)
            conn = Connection.from_handoff(self, sock, message)
        except (ValueError, KeyError, OSError) as exc:
            log.error("dropped a connection handed over with a bad state: %s", exc)
            sock.close()
            return True
        log.debug("took over connection %s:%s from a sibling", *conn.peer[:2])
        if self.stats is not None:
            self.stats.add(_stats.HANDOFF_TAKEN)
        self._register(conn)
        return True

    def _hand_off(self, conn):
        """Give ``conn`` to a sibling; True if it left this worker."""
        if not (self.handoff_enabled and self.handoff.open and conn.can_hand_off()):
            return False
        self.poller.remove(conn.fd)
        if not self.handoff.send(conn):
            self.poller.add(conn.fd)
            return False
        self.connections.pop(conn.fd, None)
        self.waiting.pop(conn, None)
        conn.close()  # our copy; the sibling holds its own
        if self.stats is not None:
            self.stats.add(_stats.HANDOFF_GIVEN)
        log.debug("handed connection %s:%s to a sibling", *conn.peer[:2])
        return True

    def hand_off_waiting(self, exclude=None):
        """While this worker is busy: move every connection with request bytes waiting."""
        if not self._handoff_open():
            return
        ready = {fd for fd, events in self.poller.poll(0)}
        for fd, conn in list(self.connections.items()):
            if conn is not exclude and (fd in ready or conn.reader.in_progress):
                self._hand_off(conn)

    def _serve_waiting(self):
        """Connections ready while no thread was free: run them as threads free, else move them."""
        now = _monotonic()
        delay = self.cfg.handoff_delay
        for conn in list(self.waiting):
            if conn.fd not in self.connections or conn.busy:
                self.waiting.pop(conn, None)
                continue
            if self.executor.free > 0:
                self._process(conn)
            elif now - conn.waiting_since >= delay and self.multiprocess:
                if not self._hand_off(conn):
                    conn.waiting_since = now  # try again after another delay

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
        except OSError:  # reset, or a TLS error
            data = b""
        if conn.linger_until:
            if not data:
                self._close(conn)
            return
        reader = conn.reader
        if not data:
            self._on_eof(conn)
            return
        was_in_progress = reader.in_progress
        reader.feed(data)
        if reader.in_progress:  # empty lines before a request extend no timer
            now = _monotonic()
            if not was_in_progress:
                conn.started = now
            conn.last_io = now
        self._process(conn)

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
                self._refuse(conn, exc)
                return
        self._close(conn)

    def _watch(self, conn, write=False):
        """Poll ``conn`` for input (until its client closed) and, while output is queued, for room."""
        self.poller.modify(conn.fd, (0 if conn.client_closed else READ) | (WRITE if write else 0))

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
            log.debug("TLS handshake with %s:%s failed: %s", conn.peer[0], conn.peer[1], exc)
            self._close(conn)
            return False
        conn.handshaking = False
        self._watch(conn)
        return True

    def _on_writable(self, conn):
        if conn.handshaking:
            self._on_readable(conn)
            return
        try:
            done = conn.flush()
        except ClientGone as exc:
            log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
            self._close(conn)
            return
        if done:
            self._watch(conn)
            self._after_response(conn)

    def _process(self, conn):
        """Serve the complete requests in the buffer, in order (pipelining), as threads allow."""
        reader = conn.reader
        executor = self.executor
        while not conn.busy and not conn.linger_until and not conn.out and conn.fd in self.connections:
            request = conn.pending
            # First come, first served: while connections wait for a thread, only the first may run.
            queued = executor.free <= 0 or (self.waiting and next(iter(self.waiting)) is not conn)
            if request is None:
                if queued and reader.request is None and len(reader.buf) <= HANDOFF_MAX_BUFFER \
                        and not reader.buf.startswith(self.health_prefixes):
                    if reader.in_progress:  # leave it raw: it can still move to a sibling
                        self._wait(conn)
                    elif conn.client_closed:
                        self._close(conn)
                    return
                try:
                    if conn.proxy_pending:
                        found = parse_proxy_v1(reader.buf)
                        if found is None:
                            return
                        conn.proxy_pending = False
                        if found[0] is not None:
                            conn.peer = found[0]
                            conn.base = dict(conn.base, REMOTE_ADDR=found[0][0], REMOTE_PORT=str(found[0][1]))
                    request = reader.next_request()
                except HTTPError as exc:
                    self._refuse(conn, exc)
                    return
                except OSError as exc:  # spooling the body: disk full, out of file descriptors
                    log.error("cannot receive a request body from %s:%s: %s", conn.peer[0], conn.peer[1], exc)
                    self._answer_and_close(conn, 503, "Service Unavailable")
                    return
                if request is None:
                    self.waiting.pop(conn, None)  # not a whole request yet: it reads on, and waits for nobody
                    if conn.client_closed:
                        self._after_client_closed(conn)
                        return
                    if reader.needs_continue():
                        try:
                            conn.send(CONTINUE)
                        except ClientGone:
                            self._close(conn)
                    return
            if self.health_path is not None and request.target.partition("?")[0] == self.health_path:
                conn.pending = None  # answered here, never queued behind the app: a probe sees the loop
                try:
                    keep_alive = answer_health(self, conn, request)
                except ClientGone:
                    self._close(conn)
                    return
                self.request_done(conn, keep_alive)
                continue
            if queued:
                conn.pending = request
                self._wait(conn)
                return
            conn.pending = None
            self._dispatch(conn, request)

    def _wait(self, conn):
        if conn not in self.waiting:
            conn.waiting_since = _monotonic()
            self.waiting[conn] = True

    def _dispatch(self, conn, request):
        if self.waiting:
            self.waiting.pop(conn, None)
        conn.waiting_since = 0.0
        conn.busy = True
        conn.served += 1
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and not self.stopping \
                and not self.retire_requested:
            log.info("worker %d: serving request %d of --max-requests, then restarting", self.pid, self.requests)
            self.retire_requested = True
            if self.stats is not None:
                self.stats.set(_stats.RETIRE_REASON, _stats.RETIRE_MAX_REQUESTS)
            if not self._handoff_open():
                self.closing_connections = True  # this response already says Connection: close
        if self.executor.threads > 1:
            self.poller.remove(conn.fd)  # its thread owns it until done
            self.executor.submit(conn, request)
        else:
            self.executor.submit(conn, request)

    def _check_memory(self):
        """--max-worker-memory: past the limit, retire gracefully as for max-requests (one pread per request)."""
        rss = self.memory_guard.exceeded()
        if rss:
            log.warning("worker %d: RSS %.1f MB is past --max-worker-memory %g MB; restarting gracefully",
                        self.pid, rss / 1048576.0, self.cfg.max_worker_memory)
            self.retire_requested = True
            if self.stats is not None:
                self.stats.set(_stats.RETIRE_REASON, _stats.RETIRE_MEMORY)
            if not self._handoff_open():
                self.closing_connections = True

    def _thread_done(self, conn, keep_alive):
        self.poller.add(conn.fd, 0 if conn.client_closed else READ)
        self.request_done(conn, keep_alive)
        if not conn.busy and conn.fd in self.connections and not conn.out:
            self._process(conn)

    def request_done(self, conn, keep_alive):
        """A response is written (or queued); in the loop's thread."""
        conn.busy = False
        conn.started = conn.last_io = _monotonic()
        if self.memory_guard is not None and not self.retire_requested and not self.stopping:
            self._check_memory()
        if not keep_alive:
            conn.close_after = True
        if conn.out:
            self._watch(conn, write=True)  # the loop drains the rest
            return
        self._after_response(conn, processing=True)

    def _after_response(self, conn, processing=False):
        if conn.close_after:
            self._finish(conn)
        elif self.retiring and not conn.reader.in_progress and self._hand_off(conn):
            return
        elif not processing:
            self._process(conn)

    # ----- closing

    def _refuse(self, conn, exc):
        """Answer a request we will not serve, then close gently."""
        log.info("refused request from %s:%s: %d %s: %s", conn.peer[0], conn.peer[1],
                 exc.status, exc.reason, exc.detail)
        self._answer_and_close(conn, exc.status, exc.reason)

    def _answer_and_close(self, conn, status, reason):
        self.dates.get()
        try:
            conn.send(error_response(status, reason, self.dates.value))
        except ClientGone:
            self._close(conn)
            return
        conn.close_after = True
        if conn.out:
            self._watch(conn, write=True)
        else:
            self._linger(conn)

    def _finish(self, conn):
        """Close after a response; if the client already sent more, linger so it is not reset."""
        if conn.reader.buf:
            self._linger(conn)
        else:
            self._close(conn)

    def _linger(self, conn):
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.reader.buf.clear()
        conn.linger_until = _monotonic() + LINGER_SECONDS
        self.waiting.pop(conn, None)

    def _close(self, conn):
        if self.connections.pop(conn.fd, None) is None:
            return
        self.waiting.pop(conn, None)
        self.poller.remove(conn.fd)
        conn.close()

    def _close_idle(self, conn):
        """Close a connection between requests, unless its next request has just arrived."""
        self._on_readable(conn)  # take what is in the socket first: a request is served, not reset
        if self.connections.get(conn.fd) is conn and not (conn.busy or conn.linger_until or conn.out
                                                           or conn.reader.in_progress or conn.pending):
            self._linger(conn)

    def _sweep(self, now):
        """Enforce the keep-alive, header, body and send timeouts; close idle connections when stopping."""
        cfg = self.cfg
        if cfg.timeout and self.executor.threads > 1:
            self._check_stuck_threads(now)
        seen_idle = max(self.resumed_at, 0.0)
        for conn in list(self.connections.values()):
            if self.connections.get(conn.fd) is not conn:
                continue  # closed or handed off while an earlier one ran its request
            if conn.busy or conn in self.waiting or conn.pending is not None:
                continue  # waiting for us, never the client's fault
            reader = conn.reader
            if conn.linger_until:
                if now > conn.linger_until:
                    self._close(conn)
            elif conn.handshaking:
                if cfg.header_timeout and now - conn.started > cfg.header_timeout:
                    log.debug("TLS handshake with %s:%s timed out", *conn.peer[:2])
                    self._close(conn)
            elif conn.out:
                if cfg.send_timeout and now - conn.send_progress_at > cfg.send_timeout:
                    log.debug("client %s:%s stopped reading its response", *conn.peer[:2])
                    self._close(conn)
            elif reader.request is not None:
                if cfg.body_timeout and now - conn.last_io > cfg.body_timeout:
                    self._refuse(conn, RequestTimeout("request body stalled for %gs" % cfg.body_timeout))
            elif reader.in_progress or conn.proxy_pending:
                if cfg.header_timeout and now - conn.started > cfg.header_timeout:
                    self._refuse(conn, RequestTimeout("no complete request head within %gs" % cfg.header_timeout))
            elif not conn.served:
                if cfg.header_timeout and now - max(conn.started, seen_idle) > cfg.header_timeout:
                    self._close_idle(conn)
            elif self.stopping:
                if now - max(conn.last_io, seen_idle) > min(cfg.keepalive, STOP_IDLE_GRACE):
                    if not (self.retiring and self._hand_off(conn)):
                        self._close_idle(conn)
            elif now - max(conn.last_io, seen_idle) > cfg.keepalive:
                self._close_idle(conn)

    def _check_stuck_threads(self, now):
        wall = time.time()
        for method, target, started in list(self.in_flight.values()):
            if wall - started > self.cfg.timeout and not self.hung:
                log.critical("worker %d: %s %s has run %.1fs, past --timeout %ds; the master will abort "
                             "this worker", self.pid, method, target[:200], wall - started, self.cfg.timeout)
                self.hung = True  # the heartbeat stops; the master aborts us as for any silent worker

    # ----- graceful stop

    def begin_stop(self):
        """Stop accepting and finish what is here.

        With hand-off open (a reload, fewer workers, max-requests), idle
        connections move to live siblings and responses keep connections
        alive. On a full stop, responses close their connections, and what the
        kernel had already queued in the backlog is taken (bounded in count
        and time, one per wake-up so idle siblings share it) and served.
        """
        if self.stopping:
            return
        self.stopping = True
        if self.stats is not None:
            self.stats.set(_stats.STOPPING, 1)
        self.stop_deadline = _monotonic() + self.cfg.graceful_timeout
        set_title("worker (stopping)", self.cfg)
        if self._handoff_open():
            self.retiring = True
            self._close_listeners()
            self._refresh_polling(_monotonic())
            moved = sum(1 for conn in list(self.connections.values())
                        if not conn.reader.in_progress and self._hand_off(conn))
            if moved:
                log.info("worker %d: stopping, handed %d idle connection(s) to siblings", self.pid, moved)
            return
        self.closing_connections = True
        master_listens = self.retire_requested or (self.handoff is not None and self.handoff.open)
        if self.listeners and not master_listens:
            queued = [backlog_length(listener.sock) for listener in self.listeners]
            self.drain_quota = sum(1 << 30 if count is None else count for count in queued)
            self.drain_until = _monotonic() + DRAIN_SECONDS
        else:
            self._close_listeners()
        self._refresh_polling(_monotonic())

    def _drain_done(self, now):
        """The backlog queued at the stop is taken: by count, by an empty queue, or by time."""
        if self.drain_quota <= 0 or now >= self.stop_deadline:
            return True
        queued = [backlog_length(listener.sock) for listener in self.listeners]
        if None in queued:
            return now >= self.drain_until
        return sum(queued) == 0

    def _handoff_open(self):
        return self.handoff_enabled and self.handoff.open

    def _close_listeners(self):
        drained = self.drain_until
        self.drain_until = 0.0
        for fd in self.listener_by_fd:
            self.poller.remove(fd)
        self.listener_by_fd.clear()
        self.polling_listeners = False
        for listener in self.listeners:
            listener.sock.close()
        self.listeners = []
        if drained and self.drained:
            log.info("worker %d: stopping, took %d queued connection(s)", self.pid, self.drained)


def run_worker(arbiter, cfg, listeners, heartbeat, app, multiprocess, ids, handoff=None, board=None):
    """Child-side entry after fork; never returns."""
    code = 0
    worker = Worker(cfg, listeners, heartbeat, app, multiprocess, handoff, board)
    try:
        worker.boot(*ids)
        log.debug("worker %d booted", worker.pid)
        worker.serve_forever()
    except AppImportError as exc:
        log.error("%s", exc)
        if exc.details():
            log.error("%s", exc.details())
        code = BOOT_ERROR
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d crashed", worker.pid)
        code = 1
    finally:
        try:
            cfg.call_hook("worker_exit", arbiter, worker)
        except Exception:
            log.exception("worker_exit hook failed")
        flush_std()
        os._exit(code)
