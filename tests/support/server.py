"""One forkwsgi master started as a subprocess on 127.0.0.1, its logs, and its cleanup."""
import os
import signal
import socket
import subprocess
import sys
import tempfile

from .ports import free_port
from .processes import children, listens_on, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_UNCLOSED = []  # every Server whose log files still exist; close_forgotten() removes them


def close_forgotten():
    """Close every Server still open (the conftest session fixture calls this at the end)."""
    for server in list(_UNCLOSED):
        server.close()


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
        """Wait until this server listens on its port and accepts there. That the port answers is
        not enough: under parallel tests another test's server may hold it (this one then fails to
        bind), and a connect to a port nobody listens on can meet itself (TCP self-connect)."""
        def accepts():
            if self.proc.poll() is not None:
                raise AssertionError("server exited early:\n" + self.log())
            if not listens_on(self.port, self.pid):
                return False
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
