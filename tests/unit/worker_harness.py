"""A worker's components assembled in-process, without fork, signals or listeners.

Connections are socketpairs: the test holds the client end and calls the
loop's handlers (Channels.readable/writable, Timers.sweep, ...) itself, as the
loop would on the events the poller reports.
"""
import os
import select
import socket
import sys
import time

from forkwsgi.config.loader import Config
from forkwsgi.config.settings import SETTINGS
from forkwsgi.shared.board import PAGE_SIZE
from forkwsgi.shared.heartbeat import Heartbeat
from forkwsgi.shared.setup import WorkerSetup
from forkwsgi.worker import states
from forkwsgi.worker.boot import assemble
from forkwsgi.worker.loop import Worker
from forkwsgi.worker.stopping import StopState
from forkwsgi.worker.tls import ServerContext


def config(**values):
    merged = {setting.name: setting.default for setting in SETTINGS}
    merged.update(values)
    return Config(merged, {})


def hello(environ, start_response):
    body = b"hello " + environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Harness:
    """One worker, assembled as boot.py does after the app is loaded."""

    def __init__(self, app=hello, handoff=None, board_page=None, tls_context=None, listeners=(), **settings):
        settings.setdefault("wsgi_app", "tests:app")
        self.cfg = cfg = config(**settings)
        self.setup = WorkerSetup(server=None, cfg=cfg, listeners=list(listeners), heartbeat=Heartbeat(), app=app,
                                 multiprocess=handoff is not None, handoff=handoff)
        self.worker = worker = Worker(self.setup)
        enabled = handoff if handoff is not None and cfg.handoff else None
        worker.stop = StopState(cfg.graceful_timeout, board_page if board_page is not None else bytearray(PAGE_SIZE),
                                cfg.keepalive > 0, enabled)
        worker.tls = ServerContext(cfg)
        worker.tls.context = tls_context
        worker.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        assemble(worker, self.setup, cfg, worker.stop, enabled)
        worker.lock.acquire()  # held by the loop, as serve_forever holds it
        self.clients = []

    @property
    def channels(self):
        return self.worker.channels

    @property
    def scheduler(self):
        return self.worker.scheduler

    def connect(self, sndbuf=None, rcvbuf=None, tls=False):
        """A new connection admitted as intake does; (its Connection, the client's socket)."""
        server, client = socket.socketpair()
        for sock, size in ((server, sndbuf), (client, rcvbuf)):
            if size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF if sock is server else socket.SO_RCVBUF, size)
        server.setblocking(False)
        client.settimeout(5)
        self.clients.append(client)
        if tls:
            server = self.worker.tls.context.wrap_socket(server, server_side=True, do_handshake_on_connect=False)
        environ = self.worker.intake.base.copy()  # a copy, as intake makes a connection's keys
        environ.update(REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000", SERVER_NAME="127.0.0.1", SERVER_PORT="8000")
        environ["wsgi.url_scheme"] = "https" if tls else "http"
        conn = self.worker.intake.kit.new(server, ("127.0.0.1", 40000), environ, False, tls)
        self.scheduler.admit(conn)
        self.turn_ends()
        return conn, client

    def turn_ends(self):
        """What the loop does as each turn ends: the responses held this turn leave."""
        self.channels.release_held()

    def send(self, conn, client, data):
        """The client sends ``data``; the loop reads it (and serves what is whole)."""
        client.sendall(data)
        wait_readable(conn.sock)
        self.channels.readable(conn)
        self.turn_ends()

    def collect(self):
        """What the loop does when pool threads finish (--threads)."""
        wait_readable(self.worker.executor.done_r)
        for conn, result in self.worker.executor.collect():
            self.scheduler.thread_done(conn, result)
        self.turn_ends()

    def close(self):
        for conn in list(self.worker.connections.values()):
            self.channels.close(conn)
        for client in self.clients:
            client.close()
        self.worker.executor.stop()
        os.close(self.worker.wake_r)
        os.close(self.wake_w)


def wait_readable(sock_or_fd, timeout=5.0):
    fd = sock_or_fd if isinstance(sock_or_fd, int) else sock_or_fd.fileno()
    readable, _, _ = select.select([fd], [], [], timeout)
    assert readable, "nothing arrived within %gs" % timeout


def read_response(client, timeout=5.0):
    """One whole response (Content-Length framed) from the client's socket, as bytes."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                return data
        assert time.monotonic() < deadline, "no whole response within %gs: %r" % (timeout, data[:200])
        chunk = client.recv(65536)
        assert chunk, "the connection closed after %r" % data[:200]
        data += chunk


class TransitionLog:
    """Records each (state, event) a connection takes, while its rows stand in the table connections
    read. (Replaced in place: the compiled core reads the one table, not a module's name for it.)"""

    def __init__(self):
        self.taken = set()
        self.rows = dict(states.AFTER)

    def __enter__(self):
        for event, row in self.rows.items():
            states.AFTER[event] = _Recording(event, row, self.taken)
        return self

    def __exit__(self, *exc):
        states.AFTER.update(self.rows)


class _Recording(dict):
    """One event's row of states.AFTER, noting each state it is looked up for."""

    def __init__(self, event, table, taken):
        super().__init__(table)
        self.event = event
        self.taken = taken

    def __getitem__(self, state):
        self.taken.add((state, self.event))
        return dict.__getitem__(self, state)


def grows_for_a_request(keys):
    """Whether a copy of a connection's ``keys`` (as each request's environ begins) grows its table
    as it takes a request's own keys: a browser's head, wsgi.input, the queue time."""
    environ = keys.copy()
    size = sys.getsizeof(environ)
    for number in range(24):
        environ["HTTP_X_%d" % number] = "value"
    return sys.getsizeof(environ) != size
