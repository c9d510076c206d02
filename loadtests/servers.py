"""The benchmark's server launch table: how each server is started, proxied and measured.

A row of a benchmark table is a Server: which server (`kind`), its worker and
thread counts, and whether the load goes through an nginx reverse proxy with
upstream keep-alive. `launch()` starts it pinned to the server cores, waits
until it listens, samples the peak RSS of its whole process tree while the
load runs, and stops it.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from tests.support.nginx import nginx_binary
from tests.support.ports import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP = "loadtests.app:app"
DJANGO_APP = "loadtests.django_app:application"  # a trivial Django view (loadtests/django_app.py)

KINDS = ("forkwsgi", "granian", "uwsgi", "gunicorn sync", "gunicorn gthread", "waitress", "nginx return 200")


@dataclass(frozen=True)
class Server:
    kind: str                      # one of KINDS
    workers: int = 1
    threads: Optional[int] = None  # None: the server's default in this benchmark (see command())
    via_nginx: bool = False        # load goes through an nginx proxy with upstream keepalive
    tls: bool = False              # served over TLS with a self-signed certificate made for the run
    label: str = ""                # the row's name; derived from the rest when empty
    metrics: bool = False          # forkwsgi with --metrics-bind on a port of its own
    scrape_hz: int = 0             # while the load runs, scrape that /metrics this many times a second
    handoff: bool = True           # forkwsgi: False adds --no-handoff
    app: str = APP                 # the WSGI app, module:callable

    @property
    def name(self):
        if self.label:
            return self.label
        return self.kind + (" via nginx" if self.via_nginx else "")


def _importable(module):
    return subprocess.run([sys.executable, "-c", "import " + module], capture_output=True).returncode == 0


def installed_kinds():
    """The server kinds installed here, forkwsgi first."""
    kinds = ["forkwsgi"]
    if _importable("granian"):
        kinds.append("granian")
    if shutil.which("uwsgi", path=os.path.dirname(sys.executable)):  # pyuwsgi's command
        kinds.append("uwsgi")
    if _importable("gunicorn"):
        kinds += ["gunicorn sync", "gunicorn gthread"]
    if _importable("waitress"):
        kinds.append("waitress")
    if nginx_binary():
        kinds.append("nginx return 200")
    return kinds


def forkwsgi_has_threads():
    """Whether this checkout's forkwsgi accepts --threads (being added; older ones refuse it)."""
    out = subprocess.run([sys.executable, "-m", "forkwsgi", "--help"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return "--threads" in out.stdout


def unavailable_reason(server, kinds, forkwsgi_threads):
    """Why this row cannot run here, or None."""
    if server.kind not in kinds:
        return "%s is not installed" % server.kind
    if server.via_nginx and "nginx return 200" not in kinds:
        return "nginx is not installed"
    if server.kind == "forkwsgi" and server.threads and not forkwsgi_threads:
        return "this forkwsgi has no --threads flag yet"
    return None


def test_certificate(workdir):
    """(certificate, key) of a self-signed certificate for 127.0.0.1, made with the openssl command."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return cert, key


def command(server, port, workdir, metrics_port=None):
    py = sys.executable
    bind = "127.0.0.1:%d" % port
    tls = []
    if server.tls:
        cert, key = test_certificate(workdir)
        tls = ["--certfile", cert, "--keyfile", key]
    if server.kind == "forkwsgi":
        argv = [py, "-m", "forkwsgi", "-w", str(server.workers), "-b", bind, "--log-level", "warning"] + tls
        if metrics_port:
            argv += ["--metrics-bind", "127.0.0.1:%d" % metrics_port]
        if not server.handoff:
            argv.append("--no-handoff")
        return argv + (["--threads", str(server.threads)] if server.threads else []) + [server.app]
    if server.kind == "granian":  # Rust I/O and parsing; the app on one blocking thread per worker
        return [py, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(server.workers), "--blocking-threads", str(server.threads or 1), "--http", "1",
                "--log-level", "warning", "--no-ws"] + (["--ssl-certificate", cert, "--ssl-keyfile", key]
                                                       if server.tls else []) + [server.app]
    if server.kind == "uwsgi":  # C, from pyuwsgi; its own HTTP/1.1 parser, no front router
        return [os.path.join(os.path.dirname(py), "uwsgi"), "--http11-socket", bind, "--processes",
                str(server.workers), "--master", "--disable-logging", "--need-app", "--module", server.app] \
            + (["--enable-threads", "--threads", str(server.threads)] if server.threads else [])
    if server.kind == "gunicorn sync":
        return [py, "-m", "gunicorn", "-w", str(server.workers), "-b", bind, "--log-level", "warning"] + tls + [server.app]
    if server.kind == "gunicorn gthread":
        return [py, "-m", "gunicorn", "-w", str(server.workers), "-b", bind, "--log-level", "warning",
                "-k", "gthread", "--threads", str(server.threads or 4)] + tls + [server.app]
    if server.kind == "waitress":  # one process: it gets its concurrency from threads
        return [py, "-m", "waitress", "--listen=" + bind, "--threads=%d" % (server.threads or 4), server.app]
    if server.kind == "nginx return 200":
        ssl = "ssl; ssl_certificate %s; ssl_certificate_key %s" % (cert, key) if server.tls else ""
        return nginx_command(NGINX_STATIC, workdir, port=port, workers=server.workers, ssl=ssl)
    raise ValueError("unknown server kind %r" % server.kind)


NGINX_STATIC = """
worker_processes %(workers)d;
%(common)s
    server {
        listen 127.0.0.1:%(port)d %(ssl)s;
        client_max_body_size 4m;
        location / { return 200 "Hello, world!\n"; }
    }
}
"""

# One nginx worker in front of the app server, reusing up to 32 upstream connections.
NGINX_PROXY = """
worker_processes 1;
%(common)s
    upstream b { server 127.0.0.1:%(upstream)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size 4m;
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }
}
"""

# Everything nginx writes goes under its own work dir: no root paths.
NGINX_COMMON = """
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_requests 1000000;
"""


def nginx_command(template, workdir, **values):
    """nginx with its config, pid, logs and temp dirs all in workdir."""
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as handle:
        handle.write(template % dict(values, common=NGINX_COMMON % {"dir": workdir}))
    return [nginx_binary(), "-c", path, "-p", workdir, "-e", os.path.join(workdir, "error.log")]


def pinned(argv, cpus):
    return (["taskset", "-c", cpus] + argv) if cpus and shutil.which("taskset") else argv


def parse_cpus(spec):
    """'1', '0-3' or '0,2' -> a set of CPU numbers, for os.sched_setaffinity."""
    cpus = set()
    for part in filter(None, spec.split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def wait_listening(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited with status %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("did not start listening on %d" % port)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class TreeRSS:
    """Peak of the summed VmRSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid, interval=0.2):
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_mib(self):
        return self.peak_kib / 1024

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self):
        total = sum(_rss_kib(pid) for pid in _tree(self.pid))
        self.peak_kib = max(self.peak_kib, total)


def _tree(pid):
    pids, todo = [], [pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, task)) as handle:
                    todo.extend(int(child) for child in handle.read().split())
        except OSError:  # gone meanwhile
            pass
    return pids


def _rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Running:
    """A launched row: the port the load generator targets, and the RSS samplers."""

    def __init__(self, port, server_rss, proxy_rss=None, workdir=None, metrics_port=None):
        self.port, self.server_rss, self.proxy_rss, self.workdir = port, server_rss, proxy_rss, workdir
        self.metrics_port = metrics_port

    def stderr_tail(self, lines=3):
        """The last lines the server wrote to stderr, for a run that went wrong."""
        return _log_tail(self.workdir, lines)

    @contextmanager
    def measuring(self):
        """Sample peak RSS (of the server; of the proxy apart) while the block runs."""
        with self.server_rss:
            if self.proxy_rss is None:
                yield
            else:
                with self.proxy_rss:
                    yield


@contextmanager
def launch(server, server_cpus):
    """Start the row's server (and its nginx proxy) on fresh ports; yield a Running."""
    workdir = tempfile.mkdtemp(prefix="forkwsgi-bench-")
    procs = []
    try:
        port = free_port()
        metrics_port = free_port() if server.metrics else None
        proc = _start(command(server, port, workdir, metrics_port), server_cpus, workdir)
        procs.append(proc)
        _wait(port, proc, workdir)
        if metrics_port:
            _wait(metrics_port, proc, workdir)
        running = Running(port, TreeRSS(proc.pid), workdir=workdir, metrics_port=metrics_port)
        if server.via_nginx:
            proxy_dir = os.path.join(workdir, "proxy")
            os.mkdir(proxy_dir)
            front = free_port()
            proxy = _start(nginx_command(NGINX_PROXY, proxy_dir, port=front, upstream=port),
                           server_cpus, proxy_dir)
            procs.append(proxy)
            _wait(front, proxy, proxy_dir)
            running = Running(front, running.server_rss, TreeRSS(proxy.pid), workdir)
        yield running
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _start(argv, cpus, workdir):
    with open(os.path.join(workdir, "stderr.log"), "ab") as log:
        return subprocess.Popen(pinned(argv, cpus), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                env=dict(os.environ, PYTHONPATH=ROOT))


def _wait(port, proc, workdir):
    try:
        wait_listening(port, proc)
    except RuntimeError as exc:
        raise RuntimeError("%s%s" % (exc, _log_tail(workdir))) from None


def _log_tail(workdir, lines=3):
    try:
        with open(os.path.join(workdir, "stderr.log"), errors="replace") as log:
            tail = log.read().strip().splitlines()[-lines:]
    except OSError:
        return ""
    return "".join("\n    " + line for line in tail)
