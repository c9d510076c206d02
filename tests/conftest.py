"""Real servers on 127.0.0.1: start forkwsgi as a subprocess, wait until it accepts, stop it."""
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Poll ``predicate`` until true; bounded in time. Returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def process_gone(pid):
    """True once ``pid`` has exited (or is a zombie waiting for its parent)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def terminate(pid, timeout=20.0):
    """SIGTERM ``pid`` (a master a test started by USR2, outside any Server) and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return wait_for(lambda: process_gone(pid), timeout)


_UNCLOSED = []  # every Server whose log files still exist; the session fixture below removes them


def children(pid):
    """Live (non-zombie) children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


class Server:
    """One forkwsgi master process and its logs.

    ``close()`` (or ``with Server(...) as server:``) stops it, kills workers it
    left behind and removes its log files; the server_factory fixture does that
    for its servers, and a session fixture for any server a test never closed.
    """

    def __init__(self, args, app="tests.apps:app", env=None, port=None, bind=True, cwd=ROOT, command=None):
        self.port = port or free_port()
        self.log_path = tempfile.mktemp(prefix="forkwsgi-test-", suffix=".log")
        self.out_path = self.log_path + ".out"
        argv = list(command or [sys.executable, "-m", "forkwsgi"])
        if bind:
            argv += ["-b", "127.0.0.1:%d" % self.port]
        argv += list(args)
        if app:
            argv.append(app)
        environment = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
        environment.update(env or {})
        self.log_file = open(self.log_path, "wb")
        self.out_file = open(self.out_path, "wb")
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=environment, stdout=self.out_file,
                                         stderr=self.log_file, stdin=subprocess.DEVNULL)
        except BaseException:
            for handle, path in ((self.log_file, self.log_path), (self.out_file, self.out_path)):
                handle.close()
                os.unlink(path)
            raise
        _UNCLOSED.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=10.0):
        return wait_for(lambda: text in self.log(), timeout)

    def wait_ready(self, timeout=15.0):
        def accepts():
            if self.proc.poll() is not None:
                raise AssertionError("server exited early:\n" + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        assert wait_for(accepts, timeout), "server never accepted:\n" + self.log()
        return self

    def worker_pids(self):
        """Live worker pids: children of the master, from /proc."""
        return sorted(children(self.pid))

    def wait_workers(self, count, timeout=15.0):
        assert wait_for(lambda: len(self.worker_pids()) == count, timeout), "expected %d workers, have %r\n%s" % (
            count, self.worker_pids(), self.log())
        return self.worker_pids()

    def send(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log_file.close()
        self.out_file.close()
        return self.proc.returncode

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        """Stop the server, SIGKILL any worker it left behind, remove its log files."""
        leftovers = self.worker_pids()
        self.stop()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in (self.log_path, self.out_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        if self in _UNCLOSED:
            _UNCLOSED.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


@pytest.fixture(scope="session", autouse=True)
def _close_forgotten_servers():
    """Servers made outside server_factory (a module fixture, a test) still lose their log files."""
    yield
    for server in list(_UNCLOSED):
        server.close()


@pytest.fixture
def server_factory():
    servers = []

    def start(args=(), ready=True, **kwargs):
        server = Server(args, **kwargs)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.close()


def make_config(**values):
    """A Config of the defaults plus ``values`` (hooks adapted as at load)."""
    from forkwsgi.config.loader import Config
    from forkwsgi.config.settings import SETTINGS
    merged = {setting.name: setting.default for setting in SETTINGS}
    merged.update(values)
    return Config(merged, {})


@pytest.fixture
def logging_state():
    """setup_error_log changes process-wide loggers: put them back afterwards."""
    from forkwsgi import logs
    names = ("forkwsgi", "gunicorn.error", "gunicorn.access", None)
    saved = [(logging.getLogger(n), list(logging.getLogger(n).handlers), logging.getLogger(n).level,
              logging.getLogger(n).propagate) for n in names]
    routed = dict(logs._routed)
    yield
    for logger, handlers, level, propagate in saved:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    logs._routed.update(routed)


def connect(port, timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


class ResponseReader:
    """Reads HTTP/1.1 responses one by one from a socket (Content-Length, chunked or close-delimited)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, marker):
        while marker not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self, head_only=False):
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        version, status, _ = (lines[0] + " ").split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        status = int(status)
        if head_only or status in (100, 204, 304):
            return status, headers, b""
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"][0]))
        elif headers.get("transfer-encoding") == ["chunked"]:
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")
                    break
                body += self._exactly(size)
                self._exactly(2)
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        return status, headers, body

    def closed(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def request(port, raw, timeout=10.0):
    """Send raw bytes on a new connection, return (status, headers, body) of the first response."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return ResponseReader(sock).read()


class Traffic:
    """A steady, bounded stream of requests in a background thread, recording every outcome."""

    def __init__(self, port, keep_alive, path="/", limit=5000, seconds=30.0):
        import threading
        self.port, self.keep_alive, self.path = port, keep_alive, path
        self.limit, self.seconds = limit, seconds
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import requests
        session = requests.Session() if self.keep_alive else None
        deadline = time.monotonic() + self.seconds
        url = "http://127.0.0.1:%d%s" % (self.port, self.path)
        while not self._stop.is_set() and len(self.results) < self.limit and time.monotonic() < deadline:
            try:
                if session is not None:
                    response = session.get(url, timeout=10)
                else:
                    response = requests.get(url, timeout=10, headers={"Connection": "close"})
                self.results.append(response.status_code)
            except requests.RequestException as exc:
                self.results.append(repr(exc))

    def wait_count(self, count, timeout=10.0):
        assert wait_for(lambda: len(self.results) >= count, timeout), "traffic stalled at %d" % len(self.results)

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        return self.results
