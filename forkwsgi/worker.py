"""A worker process: one event loop over the listening sockets and every open client connection.

Idle keep-alive connections and slow clients cost a registered fd, not the
worker: it blocks only while the application runs (and, bounded, while a
client drains a large response). Request bodies are read in full before the
app is called, so slow uploads cannot pin it either.
"""
import errno
import os
import random
import select
import signal
import socket
import time

from .appload import AppImportError, load_app
from .forwarded import TrustedPeers
from .http.errors import HTTPError, RequestTimeout
from .http.parser import Limits, RequestReader
from .http.proxy import parse_proxy_v1
from .http.response import CONTINUE, DateCache, error_response
from .logs import AccessLog, log, reopen_error_log
from .process import drop_privileges, flush_std, set_title
from .environ import base_environ, build_environ
from .wsgi import Response

BOOT_ERROR = 3  # exit status telling the master the app could not be loaded
LINGER_SECONDS = 2.0  # after an error reply, read and discard so the client sees it, not a reset
ACCEPT_DEFER, ACCEPT_DEFER_MAX = 0.0005, 0.005  # seconds a worker with waiting connections yields to siblings
STOP_IDLE_GRACE = 0.5  # a stopping worker closes a keep-alive connection once idle this long
_monotonic = time.monotonic


class ClientGone(Exception):
    """The client went away or stopped reading; the connection is dropped."""


class Poller:
    """Readability of fds, through epoll where there is one.

    Listeners are deliberately not EPOLLEXCLUSIVE: a worker blocks while its app
    runs, so every idle worker should race for a new connection rather than the
    kernel handing it to one that is about to be busy.
    """

    def __init__(self):
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
            self.poll = self._epoll.poll
        else:  # pragma: no cover - non-Linux development machines
            import selectors
            self._selector = selectors.DefaultSelector()
            self._epoll = None
            self.poll = lambda timeout: [(key.fd, mask) for key, mask in self._selector.select(timeout)]

    def add(self, fd):
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:  # pragma: no cover
            self._selector.register(fd, 1)

    def remove(self, fd):
        try:
            if self._epoll is not None:
                self._epoll.unregister(fd)
            else:  # pragma: no cover
                self._selector.unregister(fd)
        except (OSError, KeyError, ValueError):
            pass


class Connection:
    """One client connection and its parsing state."""

    __slots__ = ("worker", "sock", "fd", "reader", "base", "peer", "started", "last_io",
                 "served", "proxy_pending", "linger_until")

    def __init__(self, worker, sock, peer, base, proxy_pending):
        self.worker = worker
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = RequestReader(worker.limits)
        self.base = base
        self.peer = peer
        self.started = self.last_io = _monotonic()
        self.served = 0
        self.proxy_pending = proxy_pending
        self.linger_until = 0.0

    def send_all(self, data):
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientGone(exc.strerror) from None
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            self._wait_writable()
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ClientGone(exc.strerror) from None

    def send_file(self, in_fd, offset, count):
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(self.fd, in_fd, offset + sent, count - sent)
            except BlockingIOError:
                self._wait_writable()
                continue
            except OSError as exc:
                raise ClientGone(exc.strerror) from None
            if n == 0:  # the file shrank under us
                break
            sent += n
        return sent

    def _wait_writable(self):
        """Wait for the client to take more bytes, beating the heartbeat; give up after body_timeout."""
        worker = self.worker
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        deadline = _monotonic() + (worker.cfg.body_timeout or 3600)
        while not poller.poll(1000):
            now = _monotonic()
            worker.heartbeat.beat(now)
            if now > deadline:
                raise ClientGone("client stopped reading the response")


class Worker:
    def __init__(self, cfg, listeners, heartbeat, app=None, multiprocess=True):
        self.cfg = cfg
        self.listeners = list(listeners)
        self.heartbeat = heartbeat
        self.app = app
        self.multiprocess = multiprocess
        self.pid = os.getpid()
        self.connections = {}
        self.listener_by_fd = {}
        self.accepting = False
        self.deferred = False
        self.resume_accept_at = 0.0
        self.stopping = False
        self.retiring = False
        self.stop_requested = False
        self.stop_deadline = 0.0
        self.pending_signals = []
        self.requests = 0
        self.max_requests = cfg.max_requests + random.randint(0, cfg.max_requests_jitter) if cfg.max_requests else 0
        self.limits = Limits(cfg.limit_request_line, cfg.limit_request_fields,
                             cfg.limit_request_field_size, cfg.limit_request_body)
        self.trusted = TrustedPeers(cfg.forwarded_allow_ips)
        self.proxy_peers = TrustedPeers(cfg.proxy_allow_ips) if cfg.proxy_protocol else None
        self.keepalive = cfg.keepalive > 0
        self.poll_interval = min(1.0, cfg.timeout / 4) if cfg.timeout else 1.0
        self.dates = DateCache()
        self.access_log = None
        self.poller = None
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
        if self.app is None:
            self.app = load_app(self.cfg.wsgi_app, self.cfg.chdir)
        self.cfg.call_hook("post_worker_init", self)
        self.base = base_environ(self.cfg, self.multiprocess)
        self.listener_base = {}
        self.poller = Poller()
        self.poller.add(self.wake_r)
        for listener in self.listeners:
            self.listener_base[listener.fileno()] = self._listener_environ(listener)
        self._start_accepting()
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

    # ----- signals: handlers only record; the loop acts

    def _queue_signal(self, signum, frame):
        self.pending_signals.append(signum)
        if signum == signal.SIGTERM:
            self.stop_requested = True

    def _stop_requested(self):
        return self.stop_requested

    def _fast_exit(self, signum, frame):
        self.cfg.call_hook("worker_int", self)
        raise SystemExit(0)

    def _abort(self, signum, frame):
        log.error("worker %d: aborted by the master (timeout)", self.pid)
        self.cfg.call_hook("worker_abort", self)
        raise SystemExit(1)

    def _handle_signals(self):
        while self.pending_signals:
            signum = self.pending_signals.pop(0)
            if signum == signal.SIGTERM:
                self.begin_stop()
            elif signum == signal.SIGUSR1:
                reopen_error_log()
                if self.access_log is not None:
                    self.access_log.reopen()

    # ----- the loop

    def serve_forever(self):
        connections = self.connections
        poll = self.poller.poll
        beat = self.heartbeat.beat
        next_sweep = 0.0
        while True:
            now = _monotonic()
            beat(now)
            if self.pending_signals:
                self._handle_signals()
            if self.retiring:
                self.retiring = False
                self.begin_stop(drain=False)  # the master still listens: the backlog is not ours to take
            if self.resume_accept_at and now >= self.resume_accept_at:
                self.resume_accept_at = 0.0
                self._start_accepting()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + self.poll_interval
            if self.stopping and (not connections or now >= self.stop_deadline):
                break
            timeout = self.poll_interval
            if self.resume_accept_at:
                timeout = max(0.0, min(timeout, self.resume_accept_at - now))
            ready_listeners = []
            for fd, _ in poll(timeout):
                conn = connections.get(fd)
                if conn is not None:
                    self._on_readable(conn)
                elif fd in self.listener_by_fd:
                    ready_listeners.append(self.listener_by_fd[fd])
                elif fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
            # Connections first, listeners last: a worker that just ran the app
            # may find the new connection already taken by an idle sibling.
            for listener in ready_listeners:
                if self.accepting:
                    self._accept(listener)
        for conn in list(connections.values()):
            self._close(conn)

    def _start_accepting(self):
        if not self.accepting and not self.stopping:
            for listener in self.listeners:
                self.listener_by_fd[listener.fileno()] = listener
                self.poller.add(listener.fileno())
            self.accepting = True

    def _pause_accepting(self):
        if self.accepting:
            for fd in self.listener_by_fd:
                self.poller.remove(fd)
            self.listener_by_fd.clear()
            self.accepting = False

    def _accept(self, listener):
        """Take one connection, then go back to polling: idle sibling workers get the next ones.

        A worker already holding connections that await their first request is
        likely to be busy soon: it lets its siblings win the race for a moment
        (as Puma does) instead of queueing a second request behind the first.
        """
        if len(self.connections) >= self.cfg.worker_connections:
            self._pause_accepting()
            return
        if not self.deferred and self.multiprocess:
            waiting = sum(1 for conn in self.connections.values() if not conn.served)
            if waiting:
                self.deferred = True
                self._pause_accepting()
                self.resume_accept_at = _monotonic() + min(ACCEPT_DEFER_MAX, ACCEPT_DEFER * waiting)
                return
        self.deferred = False
        while True:
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                log.error("accept failed on %s: %s; pausing accepts for a second", listener, exc)
                self._pause_accepting()  # the sweep resumes: no busy loop on EMFILE
                return
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
        conn = Connection(self, sock, peer, environ, proxy)
        self.connections[conn.fd] = conn
        self.poller.add(conn.fd)
        self._on_readable(conn)  # the request often arrives with the connection

    def _on_readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if conn.linger_until:
            if not data:
                self._close(conn)
            return
        if not data:
            if conn.reader.in_progress:
                log.debug("client %s:%s closed the connection mid-request", *conn.peer)
            self._close(conn)
            return
        now = _monotonic()
        if not conn.reader.in_progress:
            conn.started = now
        conn.last_io = now
        conn.reader.feed(data)
        self._process(conn)

    def _process(self, conn):
        """Serve every complete request in the buffer, in order (pipelining)."""
        reader = conn.reader
        while True:
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
            if request is None:
                if reader.needs_continue():
                    try:
                        conn.send_all(CONTINUE)
                    except ClientGone:
                        self._close(conn)
                return
            conn.served += 1
            if not self._handle(conn, request):
                self._finish(conn)
                return
            conn.started = conn.last_io = _monotonic()
            if not reader.buf:
                return

    def _handle(self, conn, request):
        """Run the app for one request and write its response. True if the connection stays open."""
        cfg = self.cfg
        self.heartbeat.beat(_monotonic())
        environ = build_environ(request, conn.base, self.trusted)
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests and not self.stop_requested:
            log.info("worker %d: serving request %d of --max-requests, then restarting", self.pid, self.requests)
            self.retiring = self.stop_requested = True  # this response already says Connection: close
        keep_alive = request.keep_alive and self.keepalive and not self.stop_requested
        response = Response(conn.send_all, conn.send_file, request, keep_alive, self.dates.get(),
                            self._stop_requested)
        started = time.time() if self.access_log is not None else 0.0
        result = None
        try:
            if cfg.pre_request is not None:
                cfg.pre_request(self, environ)
            result = self.app(environ, response.start_response)
            response.write_result(result)
        except ClientGone as exc:
            log.debug("client %s:%s went away: %s", *conn.peer, exc)
            response.keep_alive = False
        except Exception:
            log.exception("error handling %s %s", request.method, request.target[:200])
            response.keep_alive = False
            if not response.head_sent:
                response.status = "500 Internal Server Error"
                try:
                    conn.send_all(error_response(500, "Internal Server Error", self.dates.value))
                except ClientGone:
                    pass
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    log.exception("error closing the response of %s %s", request.method, request.target[:200])
                    response.keep_alive = False
            if request.body is not None:
                request.body.close()
        if self.access_log is not None:
            self.access_log.write(environ, response.status, response.headers or [], response.sent,
                                  time.time() - started)
        if cfg.post_request is not None:
            try:
                cfg.post_request(self, environ, response.status, response.sent)
            except Exception:
                log.exception("post_request hook failed")
        return response.keep_alive

    # ----- closing

    def _refuse(self, conn, exc):
        """Answer a request we will not serve, then close gently."""
        log.info("refused request from %s:%s: %d %s: %s", *conn.peer, exc.status, exc.reason, exc.detail)
        self.dates.get()
        try:
            conn.send_all(error_response(exc.status, exc.reason, self.dates.value))
        except ClientGone:
            self._close(conn)
            return
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

    def _close(self, conn):
        if self.connections.pop(conn.fd, None) is None:
            return
        self.poller.remove(conn.fd)
        try:
            conn.sock.close()
        except OSError:
            pass
        if not self.accepting and len(self.connections) < self.cfg.worker_connections:
            self._start_accepting()

    def _sweep(self, now):
        """Enforce the keep-alive, header and body timeouts; close idle connections when stopping."""
        cfg = self.cfg
        if not self.accepting and len(self.connections) < cfg.worker_connections:
            self._start_accepting()
        for conn in list(self.connections.values()):
            reader = conn.reader
            if conn.linger_until:
                if now > conn.linger_until:
                    self._close(conn)
            elif reader.request is not None:
                if cfg.body_timeout and now - conn.last_io > cfg.body_timeout:
                    self._refuse(conn, RequestTimeout("request body stalled for %gs" % cfg.body_timeout))
            elif reader.buf or conn.proxy_pending or not conn.served:
                if cfg.header_timeout and now - conn.started > cfg.header_timeout:
                    if reader.buf:
                        self._refuse(conn, RequestTimeout("no complete request head within %gs"
                                                          % cfg.header_timeout))
                    else:
                        self._close(conn)
            elif now - conn.last_io > (min(cfg.keepalive, STOP_IDLE_GRACE) if self.stopping else cfg.keepalive):
                self._close(conn)  # when stopping, only between requests, never under one in flight

    # ----- graceful stop

    def begin_stop(self, drain=True):
        """Stop accepting; told to stop (TERM), first take every connection already queued.

        The master may be closing the listening sockets too: whatever the kernel
        already accepted into the backlog must be served, not reset.
        """
        if self.stopping:
            return
        self.stopping = self.stop_requested = True
        self.stop_deadline = _monotonic() + self.cfg.graceful_timeout
        set_title("worker (stopping)", self.cfg)
        drained = 0
        for listener in self.listeners if drain else ():
            while True:
                try:
                    sock, address = listener.sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                drained += 1
                self._add_connection(sock, address, listener)
        self._pause_accepting()
        for listener in self.listeners:
            listener.sock.close()
        self.listeners = []
        if drained:
            log.info("worker %d: stopping, took %d queued connection(s)", self.pid, drained)


def run_worker(arbiter, cfg, listeners, heartbeat, app, multiprocess, ids):
    """Child-side entry after fork; never returns."""
    code = 0
    worker = Worker(cfg, listeners, heartbeat, app, multiprocess)
    try:
        worker.boot(*ids)
        log.debug("worker %d booted", worker.pid)
        worker.serve_forever()
    except AppImportError as exc:
        log.error("%s", exc)
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
