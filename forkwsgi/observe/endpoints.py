"""The metrics and control listeners, and their connections served from the master's select.

Every socket here is non-blocking and served between two select() calls of
the master: accept, read, answer, flush. Each connection may read a bounded
request (READ_LIMIT) and lives a bounded time (CONN_TIMEOUT), and each listener
has its own MAX_CONNECTIONS slots, so a slow or stuck scraper never holds the
master, and a flood of the metrics port never locks out the control socket.
This module frames the answers (one HTTP/1.1 response, one JSON line) and
closes after each, but for a /metrics answer on HTTP/1.1, whose connection
stays open for the next scrape (as Prometheus reuses it), idle for at most
KEEPALIVE_TIMEOUT. When a listener's slots are all taken, a new connection
gets the slot of the longest-idle kept connection, else of the one that has
waited longest, over EVICT_AFTER, for its request to arrive whole (a client
trickling bytes: a real one sends its request at once). One request is
answered per read: bytes pipelined behind it, or a request body, close the
connection after the answer.
What they say comes from the callables it is given (metrics.py, control.py),
and the listeners are bound by the binder it is given (the master's, in
master/sockets.py: one binder for every listening socket of the server).
Across a USR2 re-exec the listeners pass to the new master as inherited fds
(FORKWSGI_OBSERVE_FDS), so their addresses stay bound throughout.
"""
import json
import os
import socket
import time

from forkwsgi.logs import log
from forkwsgi.config.addresses import parse_address

READ_LIMIT = 8192  # bytes of a request (HTTP head, control line) before it is refused
CONN_TIMEOUT = 5.0  # seconds a metrics or control connection may wait for a request or answer
KEEPALIVE_TIMEOUT = 30.0  # seconds a kept metrics connection waits for the next scrape (Prometheus: every 15 s)
MAX_CONNECTIONS = {"metrics": 64, "control": 16}  # open connections of each listener; more are closed at once
EVICT_AFTER = 1.0  # seconds without a whole request after which a connection's slot may go to a newcomer
INHERIT_ENV = "FORKWSGI_OBSERVE_FDS"


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def inherited_fds():
    """{"metrics"|"control": fd text} passed by the master we replace (USR2); taken out of the environment."""
    return dict(item.split(":", 1) for item in os.environ.pop(INHERIT_ENV, "").split(",") if ":" in item)


def close_unused(inherited):
    """Close the inherited listeners no setting took over (a setting turned off across the upgrade)."""
    for fd in inherited.values():
        try:
            os.close(int(fd))
        except (OSError, ValueError):
            pass


def _adopt(fd):
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    sock.setblocking(False)
    return sock


def _http(code, reason, body, head_only=False, content_type="text/plain; charset=utf-8", keep=False):
    head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
            % (code, reason, content_type, len(body), "" if keep else "Connection: close\r\n")).encode()
    return head if head_only else head + body


def _head_end(buf):
    """Where the first HTTP head in buf ends (after its empty line), or -1."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") for i in (buf.find(mark),) if i >= 0]
    return min(ends) if ends else -1


class _Client:
    __slots__ = ("sock", "kind", "inbuf", "out", "deadline", "waiting_since", "linger", "keep", "idle")

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.inbuf = b""
        self.out = b""
        self.waiting_since = time.monotonic()  # since when its request has been awaited
        self.deadline = self.waiting_since + CONN_TIMEOUT
        self.linger = False  # refused for its size: after the answer, read and discard until EOF (no reset)
        self.keep = False  # the answer being sent leaves the connection open for another request
        self.idle = False  # kept open after an answer, and no byte of the next request yet


class Endpoints:
    """The two listeners and their open connections; answers come from ``render_metrics`` and ``control``."""

    def __init__(self, render_metrics, control):
        self.render_metrics = render_metrics  # () -> the exposition text
        self.control = control  # a command line (bytes) -> a JSON-able answer
        self.clients = {}  # fd -> _Client
        self.metrics_sock = self.control_sock = None
        self.control_path = None
        self.owned_paths = []  # unix socket files we bound, removed on exit

    def open(self, cfg, inherited, bind):
        """Bind (or adopt from ``inherited``, popping what is taken) the listeners the settings ask for.
        ``bind(address, what, mode)`` -> (listening socket, unix path or None); raises ConfigError."""
        if cfg.metrics_bind:
            if "metrics" in inherited:
                self.metrics_sock = _adopt(int(inherited.pop("metrics")))  # from the master before USR2
                parsed = parse_address(cfg.metrics_bind)
                if parsed[0] == "unix":
                    self.owned_paths.append(parsed[1])
            else:
                self.metrics_sock, path = bind(cfg.metrics_bind, "metrics address", 0o600)
                if path:
                    self.owned_paths.append(path)
            log.info("Metrics at: http://%s/metrics", cfg.metrics_bind)
        if cfg.control_socket:
            path = os.path.abspath(cfg.control_socket)
            if "control" in inherited:
                self.control_sock = _adopt(int(inherited.pop("control")))
            else:
                self.control_sock, _ = bind("unix://" + path, "control socket", cfg.control_socket_mode)
            self.owned_paths.append(path)  # exit() keeps it while another master of this pair runs
            self.control_path = path
            log.info("Control socket: %s", self.control_path)

    # ----- the select loop

    def readers(self):
        fds = [client.sock for client in self.clients.values() if not client.out]
        for sock in (self.metrics_sock, self.control_sock):
            if sock is not None:
                fds.append(sock)
        return fds

    def writers(self):
        return [client.sock for client in self.clients.values() if client.out]

    def serve(self, readable, writable):
        """Accept, read and flush what select reported; ``readable`` may hold the master's own fds (ints)."""
        for sock in readable:
            if sock is self.metrics_sock:
                self._accept(sock, "metrics")
            elif sock is self.control_sock:
                self._accept(sock, "control")
            elif not isinstance(sock, int):
                client = self.clients.get(sock.fileno())
                if client is not None and client.sock is sock:
                    self._read(client)
        for sock in writable:
            client = self.clients.get(sock.fileno())
            if client is not None and client.sock is sock:
                self._flush(client)

    def expire(self, now):
        for client in list(self.clients.values()):
            if now > client.deadline:
                self._drop(client)

    def _accept(self, listener, kind):
        for _ in range(16):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("observability: accept failed: %s", exc)
                return
            if not self._has_room(kind):
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(sock, kind)
            self.clients[sock.fileno()] = client
            self._read(client)

    def _has_room(self, kind):
        """Whether a new ``kind`` connection may stay, closing another of its kind to make room if one may go:
        the kept connection idle longest, else the one whose request has been arriving for longest, past
        EVICT_AFTER. False when every slot holds a client that is being answered or has just come."""
        mine = [client for client in self.clients.values() if client.kind == kind]
        if len(mine) < MAX_CONNECTIONS[kind]:
            return True
        idle = [client for client in mine if client.idle]
        if idle:
            self._drop(min(idle, key=lambda client: client.deadline))
            return True
        now = time.monotonic()
        slow = [client for client in mine if not client.out and now - client.waiting_since >= EVICT_AFTER]
        if slow:
            self._drop(min(slow, key=lambda client: client.waiting_since))
            return True
        return False

    def _read(self, client):
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        if client.linger:
            return
        if client.idle:  # the next request begins: it has CONN_TIMEOUT to arrive whole
            client.idle = False
            client.waiting_since = time.monotonic()
            client.deadline = client.waiting_since + CONN_TIMEOUT
        client.inbuf += data
        self._answer(client)

    def _answer(self, client):
        """Answer the request inbuf holds, once it is whole (no reads happen while an answer is queued)."""
        if client.kind == "metrics":
            end = _head_end(client.inbuf)
            if end >= 0:
                head, client.inbuf = client.inbuf[:end], client.inbuf[end:]
                self._reply(client, *self._http_answer(head, more=bool(client.inbuf)))
            elif len(client.inbuf) > READ_LIMIT:
                client.linger = True
                self._reply(client, _http(431, "Request Header Fields Too Large", b"request too large\n"))
        elif b"\n" in client.inbuf:
            line = client.inbuf.split(b"\n", 1)[0]
            self._reply(client, (json.dumps(self.control(line)) + "\n").encode())
        elif len(client.inbuf) > READ_LIMIT:
            client.linger = True
            self._reply(client, (json.dumps({"ok": False, "error": "command line too long"}) + "\n").encode())

    def _http_answer(self, raw, more=False):
        """(response bytes, whether the connection stays open) for one metrics request head; ``more``:
        bytes came after it (pipelined, or a body), so it is the last answered on this connection."""
        line = raw.split(b"\n", 1)[0].decode("latin-1").strip().split()
        if len(line) != 3 or not line[2].startswith("HTTP/"):
            return _http(400, "Bad Request", b"bad request\n"), False
        method, target = line[0], line[1]
        if method not in ("GET", "HEAD"):
            return _http(405, "Method Not Allowed", b"only GET and HEAD\n"), False
        if target.split("?", 1)[0] != "/metrics":
            return _http(404, "Not Found", b"metrics are at /metrics\n", method == "HEAD"), False
        lower = raw.lower()
        keep = (line[2] == "HTTP/1.1" and not more and b"close" not in lower  # no Connection: close
                and b"content-length" not in lower and b"transfer-encoding" not in lower)  # nor a body
        body = self.render_metrics().encode()
        return _http(200, "OK", body, method == "HEAD", "text/plain; version=0.0.4; charset=utf-8", keep), keep

    def _reply(self, client, data, keep=False):
        client.out = data
        client.keep = keep
        self._flush(client)

    def _flush(self, client):
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.out = client.out[sent:]
        if client.out:
            return
        if client.linger:
            try:
                client.sock.shutdown(socket.SHUT_WR)
                return  # the loop reads and discards the rest until EOF or the deadline
            except OSError:
                pass
        if client.keep:  # nothing came after the request (no read while answering): idle until the next
            client.keep = False
            client.idle = True
            client.deadline = time.monotonic() + KEEPALIVE_TIMEOUT
            return
        self._drop(client)  # the answer was the last on this connection

    def _drop(self, client):
        self.clients.pop(client.sock.fileno(), None)
        try:
            client.sock.close()
        except OSError:
            pass

    # ----- fork, upgrade and exit

    def close_in_child(self):
        """In a new worker: close our copies of the listeners and connections (the files stay)."""
        for sock in (self.metrics_sock, self.control_sock):
            if sock is not None:
                sock.close()
        for client in self.clients.values():
            client.sock.close()
        self.clients = {}

    def inherit_env(self):
        """For a USR2 re-exec: pass the metrics and control listeners to the new master."""
        items = []
        for name, sock in (("metrics", self.metrics_sock), ("control", self.control_sock)):
            if sock is not None:
                os.set_inheritable(sock.fileno(), True)
                items.append("%s:%d" % (name, sock.fileno()))
        return {INHERIT_ENV: ",".join(items)} if items else {}

    def close(self, unlink=True):
        for client in list(self.clients.values()):
            self._drop(client)
        for sock in (self.metrics_sock, self.control_sock):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.metrics_sock = self.control_sock = None
        if unlink:
            for path in self.owned_paths:
                _unlink_quietly(path)
        self.owned_paths = []
