"""The master's observability: Prometheus /metrics, the control socket, statsd.

Everything here runs in the master's loop, between its select() calls: the
metrics listener, the control socket and their connections are non-blocking
and added to the select the master sleeps in. Each connection may read a
bounded request and lives a bounded time, so a slow or stuck scraper never
holds the master. The app is never involved.

Workers publish counters through shared memory (stats.py); the master sums
the live workers' pages and the last values of the dead ones (``retired``),
so every counter only grows across crashes, kill -9, reloads and restarts.
"""
import errno
import json
import os
import platform
import signal
import socket
import stat
import struct
import time

from . import __version__
from . import stats as _stats
from .errors import ConfigError
from .logs import log
from .sockets import parse_address

READ_LIMIT = 8192  # bytes of a request (HTTP head, control line) before it is refused
CONN_TIMEOUT = 5.0  # seconds a metrics or control connection may live
MAX_CONNECTIONS = 64  # open metrics + control connections; more are closed at once
STATSD_INTERVAL = 1.0
STATSD_PACKET = 1400
RESTART_REASONS = ("crash", "timeout", "max-requests", "memory", "reload")
WORKER_STATES = ("booting", "idle", "busy", "stopping")
CONTROL_SIGNALS = {"reload": (signal.SIGHUP, "reloading (HUP)"), "stop": (signal.SIGQUIT, "stopping now (QUIT)"),
                   "graceful-stop": (signal.SIGTERM, "stopping gracefully (TERM)")}
CONTROL_HELP = "status, reload, add N, remove N, stop, graceful-stop"
_TCP_INFO_QUEUE = struct.Struct("II")  # tcpi_unacked, tcpi_sacked at offset 24: accept queue length and its max


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def bind_unix(path, mode, what):
    """A listening unix socket at ``path``. Refuses a path that is not a socket, or one a live server answers."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise ConfigError("%s %s exists and is not a socket; refusing to replace it" % (what, path))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise ConfigError("%s %s: %s" % (what, path, exc.strerror)) from None
            _unlink_quietly(path)  # stale: left by a server that died
        else:
            raise ConfigError("%s %s is in use by another running server (another forkwsgi?); "
                              "refusing to start" % (what, path))
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ConfigError("%s %s: cannot bind: %s" % (what, path, exc.strerror)) from None
    finally:
        os.umask(old_umask)
    os.chmod(path, mode)
    sock.listen(64)
    sock.setblocking(False)
    return sock


def bind_address(address, what):
    """(socket, unix path or None) for a metrics address: HOST:PORT or unix:PATH."""
    parsed = parse_address(address)
    if parsed[0] == "unix":
        return bind_unix(parsed[1], 0o600, what), parsed[1]
    _, host, port = parsed
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError("%s %s: %s" % (what, address, exc)) from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise ConfigError("%s %s: cannot bind: %s" % (what, address, exc.strerror)) from None
    sock.listen(64)
    sock.setblocking(False)
    return sock, None


def tcp_listen_queue(sock):
    """(queued, maximum) of a TCP listener's accept queue via TCP_INFO; None for unix sockets."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return _TCP_INFO_QUEUE.unpack_from(info, 24)
    except (OSError, struct.error):
        return None


def listen_drops():
    """Machine-wide TcpExt ListenOverflows and ListenDrops from /proc/net/netstat, or None."""
    try:
        with open("/proc/net/netstat") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            try:
                return int(table["ListenOverflows"]), int(table["ListenDrops"])
            except (KeyError, ValueError):
                return None
    return None


# ----- the Prometheus text format, version 0.0.4

def _escape_label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value):
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


class Exposition:
    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text, samples):
        """samples: [(suffix, {label: value}, value)]."""
        self.lines.append("# HELP %s %s" % (name, _escape_help(help_text)))
        self.lines.append("# TYPE %s %s" % (name, kind))
        for suffix, labels, value in samples:
            if labels:
                text = ",".join('%s="%s"' % (key, _escape_label(val)) for key, val in labels.items())
                self.lines.append("%s%s{%s} %s" % (name, suffix, text, _number(value)))
            else:
                self.lines.append("%s%s %s" % (name, suffix, _number(value)))

    def text(self):
        return "\n".join(self.lines) + "\n"


# ----- connections of the metrics and control listeners

class _Client:
    __slots__ = ("sock", "kind", "inbuf", "out", "deadline", "linger")

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.inbuf = b""
        self.out = b""
        self.deadline = time.monotonic() + CONN_TIMEOUT
        self.linger = False  # refused for its size: after the answer, read and discard until EOF (no reset)


class Observer:
    """Owned by the arbiter; None there when no observability setting is on."""

    @classmethod
    def create(cls, arbiter):
        cfg = arbiter.cfg
        if not (cfg.metrics_bind or cfg.control_socket or cfg.statsd_host or cfg.max_worker_memory):
            return None
        return cls(arbiter)

    def __init__(self, arbiter):
        self.arbiter = arbiter
        cfg = arbiter.cfg
        self.started = time.time()
        self.retired = [0] * _stats.COUNTERS
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)
        self.slots = {}  # worker pid -> slot number, the `worker` label of per-worker gauges
        self.clients = {}  # fd -> _Client
        self.metrics_sock = self.control_sock = None
        self.control_path = None
        self.owned_paths = []  # unix socket files we bound, removed on exit
        self.statsd = None
        self.statsd_last = ([0] * _stats.COUNTERS, dict.fromkeys(RESTART_REASONS, 0))  # deltas from the start
        self.statsd_due = 0.0
        inherited = dict(item.split(":", 1) for item in os.environ.pop("FORKWSGI_OBSERVE_FDS", "").split(",")
                         if ":" in item)
        try:
            if cfg.metrics_bind:
                if "metrics" in inherited:
                    self.metrics_sock = self._adopt(int(inherited.pop("metrics")))  # from the master before USR2
                    parsed = parse_address(cfg.metrics_bind)
                    if parsed[0] == "unix":
                        self.owned_paths.append(parsed[1])
                else:
                    self.metrics_sock, path = bind_address(cfg.metrics_bind, "metrics address")
                    if path:
                        self.owned_paths.append(path)
                log.info("Metrics at: http://%s/metrics", cfg.metrics_bind)
            if cfg.control_socket:
                path = os.path.abspath(cfg.control_socket)
                if "control" in inherited:
                    self.control_sock = self._adopt(int(inherited.pop("control")))
                else:
                    self.control_sock = bind_unix(path, cfg.control_socket_mode, "control socket")
                self.owned_paths.append(path)  # exit() keeps it while another master of this pair runs
                self.control_path = path
                log.info("Control socket: %s", self.control_path)
            if cfg.statsd_host:
                self._open_statsd(cfg.statsd_host)
        except BaseException:
            self.close(unlink=True)
            raise
        for fd in inherited.values():  # a setting turned off across the upgrade
            try:
                os.close(int(fd))
            except (OSError, ValueError):
                pass

    @staticmethod
    def _adopt(fd):
        sock = socket.socket(fileno=fd)
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        return sock

    def _open_statsd(self, address):
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise ConfigError("statsd host %s: %s" % (address, exc)) from None
        self.statsd = socket.socket(family, socket.SOCK_DGRAM)
        self.statsd.setblocking(False)
        self.statsd_addr = sockaddr

    # ----- workers (called by the arbiter)

    def prepare(self, worker):
        """Before fork: the worker's shared page and its slot number."""
        worker.stats = _stats.WorkerStats(self.arbiter.cfg.threads)

    def spawned(self, worker):
        used = set(self.slots.values())
        self.slots[worker.pid] = next(number for number in range(len(used) + 1) if number not in used)

    def in_child(self, worker):
        """In the new worker: drop the master's sockets and the other workers' pages; publish our own."""
        for sock in (self.metrics_sock, self.control_sock, self.statsd):
            if sock is not None:
                sock.close()
        for client in self.clients.values():
            client.sock.close()
        self.clients = {}
        for other in self.arbiter.workers.values():
            if other is not worker and getattr(other, "stats", None) is not None:
                other.stats.close()
        _stats.current = getattr(worker, "stats", None)

    def worker_exited(self, worker, code):
        """A worker was reaped: fold its last counters into the retired totals, count why it went."""
        self.slots.pop(worker.pid, None)
        page = getattr(worker, "stats", None)
        if page is None:
            return
        for index, value in enumerate(page.counters()):
            self.retired[index] += value
        reason = self.restart_reason(worker, code, page.gauge(_stats.RETIRE_REASON))
        if reason:
            self.restarts[reason] += 1
        page.close()
        worker.stats = None

    def restart_reason(self, worker, code, retire_reason):
        if worker.aborted_at:
            return "timeout"
        if worker.retiring:
            return "reload" if worker.generation != self.arbiter.generation else None  # else: fewer workers
        if code != 0:
            return "crash"
        return _stats.RETIRE_NAMES.get(retire_reason)  # None: the master is stopping

    # ----- the select loop

    def readers(self):
        fds = [client.sock for client in self.clients.values() if not client.out]
        for sock in (self.metrics_sock, self.control_sock):
            if sock is not None:
                fds.append(sock)
        return fds

    def writers(self):
        return [client.sock for client in self.clients.values() if client.out]

    def handle(self, readable, writable):
        """After the master's select: accept, read, answer, time out, send statsd. Never raises."""
        try:
            self._handle(readable, writable)
        except Exception:
            log.exception("observability: unexpected error (the master carries on)")

    def _handle(self, readable, writable):
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
        now = time.monotonic()
        for client in list(self.clients.values()):
            if now > client.deadline:
                self._drop(client)
        if self.statsd is not None and now >= self.statsd_due:
            self.statsd_due = now + STATSD_INTERVAL
            self.send_statsd()

    def _accept(self, listener, kind):
        for _ in range(16):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("observability: accept failed: %s", exc)
                return
            if len(self.clients) >= MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(sock, kind)
            self.clients[sock.fileno()] = client
            self._read(client)

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
        client.inbuf += data
        if client.kind == "metrics":
            if b"\r\n\r\n" in client.inbuf or b"\n\n" in client.inbuf:
                self._reply(client, self._http_answer(client.inbuf))
            elif len(client.inbuf) > READ_LIMIT:
                client.linger = True
                self._reply(client, self._http(431, "Request Header Fields Too Large", b"request too large\n"))
        else:
            if b"\n" in client.inbuf:
                line = client.inbuf.split(b"\n", 1)[0]
                self._reply(client, (json.dumps(self.control(line)) + "\n").encode())
            elif len(client.inbuf) > READ_LIMIT:
                client.linger = True
                self._reply(client, (json.dumps({"ok": False, "error": "command line too long"}) + "\n").encode())

    def _reply(self, client, data):
        client.out = data
        client.inbuf = b""
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
        if not client.out:
            if client.linger:
                try:
                    client.sock.shutdown(socket.SHUT_WR)
                    return  # the loop reads and discards the rest until EOF or the deadline
                except OSError:
                    pass
            self._drop(client)  # one request per connection

    def _drop(self, client):
        self.clients.pop(client.sock.fileno(), None)
        try:
            client.sock.close()
        except OSError:
            pass

    # ----- /metrics

    @staticmethod
    def _http(code, reason, body, head_only=False, content_type="text/plain; charset=utf-8"):
        head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % (code, reason, content_type, len(body))).encode()
        return head if head_only else head + body

    def _http_answer(self, raw):
        line = raw.split(b"\n", 1)[0].decode("latin-1").strip().split()
        if len(line) != 3 or not line[2].startswith("HTTP/"):
            return self._http(400, "Bad Request", b"bad request\n")
        method, target = line[0], line[1]
        if method not in ("GET", "HEAD"):
            return self._http(405, "Method Not Allowed", b"only GET and HEAD\n")
        if target.split("?", 1)[0] != "/metrics":
            return self._http(404, "Not Found", b"metrics are at /metrics\n", method == "HEAD")
        body = self.render_metrics().encode()
        return self._http(200, "OK", body, method == "HEAD", "text/plain; version=0.0.4; charset=utf-8")

    def totals(self):
        total = list(self.retired)
        for worker in list(self.arbiter.workers.values()):
            page = getattr(worker, "stats", None)
            if page is not None:
                for index, value in enumerate(page.counters()):
                    total[index] += value
        return total

    def worker_state(self, worker, running):
        if not worker.heartbeat.booted:
            return "booting"
        page = worker.stats
        if worker.retiring or worker.aborted_at or worker.quit_at or (page is not None and page.gauge(_stats.STOPPING)):
            return "stopping"
        return "busy" if running else "idle"

    def live_workers(self):
        """[(worker, slot, running requests, state)] of the workers with a page."""
        found = []
        for worker in list(self.arbiter.workers.values()):
            page = getattr(worker, "stats", None)
            if page is None:
                continue
            running = page.running()
            found.append((worker, self.slots.get(worker.pid, -1), running, self.worker_state(worker, running)))
        return sorted(found, key=lambda item: item[1])

    def render_metrics(self):
        arbiter = self.arbiter
        total = self.totals()
        live = self.live_workers()
        out = Exposition()
        samples = []
        for m, method in enumerate(_stats.METHODS):
            for s, status in enumerate(_stats.STATUS_CLASSES):
                value = total[_stats.REQUESTS + m * len(_stats.STATUS_CLASSES) + s]
                if value or status == "2xx" and method in ("GET", "POST"):
                    samples.append(("", {"method": method, "status": status}, value))
        out.family("forkwsgi_requests_total", "counter",
                   "Requests answered by the app, by method class and status class (none: no status was sent).",
                   samples)
        buckets = total[_stats.DURATION:_stats.DURATION_SUM_US]
        cumulative, samples = 0, []
        for bound, count in zip(_stats.BUCKETS + (float("inf"),), buckets):
            cumulative += count
            samples.append(("_bucket", {"le": _number(float(bound))}, cumulative))
        samples.append(("_sum", {}, total[_stats.DURATION_SUM_US] / 1e6))
        samples.append(("_count", {}, cumulative))
        out.family("forkwsgi_request_duration_seconds", "histogram",
                   "Time from calling the app to its response written (or queued) to the client.", samples)
        out.family("forkwsgi_request_body_bytes_total", "counter", "Request body bytes received.",
                   [("", {}, total[_stats.BYTES_IN])])
        out.family("forkwsgi_response_body_bytes_total", "counter", "Response body bytes sent (heads excluded).",
                   [("", {}, total[_stats.BYTES_OUT])])
        in_flight = sum(len(running) for _, _, running, _ in live)
        out.family("forkwsgi_requests_in_flight", "gauge", "Requests in the app now.", [("", {}, in_flight)])
        open_connections = sum(worker.stats.gauge(_stats.CONNECTIONS) for worker, _, _, _ in live)
        out.family("forkwsgi_connections", "gauge",
                   "Open client connections: active (a request in the app) and idle (keep-alive, reading).",
                   [("", {"state": "active"}, in_flight),
                    ("", {"state": "idle"}, max(open_connections - in_flight, 0))])
        states = dict.fromkeys(WORKER_STATES, 0)
        for _, _, _, state in live:
            states[state] += 1
        out.family("forkwsgi_workers", "gauge", "Worker processes by state.",
                   [("", {"state": state}, count) for state, count in states.items()])
        out.family("forkwsgi_workers_desired", "gauge", "Workers the master keeps running (-w, TTIN/TTOU).",
                   [("", {}, arbiter.cfg.workers)])
        out.family("forkwsgi_worker_restarts_total", "counter",
                   "Workers replaced, by reason: crash, timeout, max-requests, memory, reload.",
                   [("", {"reason": reason}, count) for reason, count in self.restarts.items()])
        out.family("forkwsgi_handoffs_total", "counter",
                   "Connections moved between workers: given to a sibling, taken from one.",
                   [("", {"direction": "given"}, total[_stats.HANDOFF_GIVEN]),
                    ("", {"direction": "taken"}, total[_stats.HANDOFF_TAKEN])])
        depth, maximum = [], []
        for listener in list(arbiter.listeners):
            queue = tcp_listen_queue(listener.sock)
            if queue is not None:
                depth.append(("", {"listener": str(listener)}, queue[0]))
                maximum.append(("", {"listener": str(listener)}, queue[1]))
        out.family("forkwsgi_listen_backlog", "gauge",
                   "Connections waiting in a TCP listener's accept queue (TCP_INFO; not known for unix sockets).",
                   depth)
        out.family("forkwsgi_listen_backlog_max", "gauge", "Accept queue size of a TCP listener.", maximum)
        drops = listen_drops()
        if drops is not None:
            out.family("forkwsgi_tcp_listen_overflows_total", "counter",
                       "TcpExt ListenOverflows from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
                       "namespace), not only this server's.", [("", {}, drops[0])])
            out.family("forkwsgi_tcp_listen_drops_total", "counter",
                       "TcpExt ListenDrops from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
                       "namespace), not only this server's.", [("", {}, drops[1])])
        master_rss = _stats.process_rss(os.getpid())
        out.family("forkwsgi_master_resident_memory_bytes", "gauge", "Resident memory of the master.",
                   [("", {}, master_rss or 0)])
        samples = []
        for worker, slot, _, _ in live:
            rss = _stats.process_rss(worker.pid)
            if rss is not None:
                samples.append(("", {"worker": slot}, rss))
        out.family("forkwsgi_worker_resident_memory_bytes", "gauge",
                   "Resident memory of each worker; the label is a slot number reused by its replacement.", samples)
        out.family("forkwsgi_build_info", "gauge", "forkwsgi and Python versions.",
                   [("", {"version": __version__, "python": platform.python_version()}, 1)])
        out.family("forkwsgi_start_time_seconds", "gauge", "When the master started, in Unix time.",
                   [("", {}, self.started)])
        return out.text()

    # ----- the control socket

    def control(self, raw):
        """One command line -> a JSON-able answer. Signals are queued for the master loop, never acted on here."""
        try:
            words = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            return {"ok": False, "error": "command is not UTF-8"}
        if not words:
            return {"ok": False, "error": "empty command (expected %s)" % CONTROL_HELP}
        command, args = words[0].lower(), words[1:]
        if command == "status" and not args:
            return dict(self.status(), ok=True)
        if command in CONTROL_SIGNALS and not args:
            signum, text = CONTROL_SIGNALS[command]
            self._enqueue(signum, 1)
            return {"ok": True, "message": text}
        if command in ("add", "remove"):
            count = args[0] if len(args) == 1 else "1" if not args else ""
            if not count.isdigit() or not 1 <= int(count) <= 64:
                return {"ok": False, "error": "%s takes one count from 1 to 64" % command}
            count = int(count)
            if command == "remove":
                count = min(count, self.arbiter.cfg.workers - 1)
                if count <= 0:
                    return {"ok": False, "error": "cannot remove the last worker (use stop)"}
            self._enqueue(signal.SIGTTIN if command == "add" else signal.SIGTTOU, count)
            return {"ok": True, "message": "%s %d worker(s): %d wanted" % (
                "adding" if command == "add" else "removing", count,
                self.arbiter.cfg.workers + (count if command == "add" else -count))}
        return {"ok": False, "error": "unknown command %r (expected %s)" % (" ".join(words)[:80], CONTROL_HELP)}

    def _enqueue(self, signum, count):
        self.arbiter.signals.extend([signum] * count)

    def status(self):
        arbiter = self.arbiter
        now_wall, now = time.time(), time.monotonic()
        workers = []
        for worker, slot, running, state in self.live_workers():
            booted_at = _stats_booted_at(worker)
            workers.append({
                "pid": worker.pid, "slot": slot, "age": worker.age, "generation": worker.generation,
                "state": state, "uptime": round(now - booted_at, 3) if booted_at else None,
                "requests": worker.stats.requests_served(), "rss": _stats.process_rss(worker.pid),
                "connections": worker.stats.gauge(_stats.CONNECTIONS),
                "current": [{"method": method, "path": path, "seconds": round(max(now_wall - started, 0.0), 3)}
                            for method, path, started in running]})
        listeners = []
        for listener in list(arbiter.listeners):
            queue = tcp_listen_queue(listener.sock)
            listeners.append({"name": str(listener), "backlog": queue[0] if queue else None,
                              "backlog_max": queue[1] if queue else None})
        total = self.totals()
        return {"master": {"pid": arbiter.pid, "rss": _stats.process_rss(os.getpid()),
                           "uptime": round(now_wall - self.started, 3), "workers_wanted": arbiter.cfg.workers,
                           "generation": arbiter.generation, "version": __version__},
                "workers": workers, "listeners": listeners,
                "requests": sum(total[_stats.DURATION:_stats.DURATION_SUM_US]),
                "restarts": dict(self.restarts)}

    # ----- statsd

    def send_statsd(self):
        prefix = self.arbiter.cfg.statsd_prefix or "forkwsgi"
        prefix = prefix.rstrip(".") + "." if prefix else ""
        total = self.totals()
        restarts = dict(self.restarts)
        last = self.statsd_last
        self.statsd_last = (total, restarts)
        lines = []
        if last is not None:
            before, restarts_before = last
            for m, method in enumerate(_stats.METHODS):
                for s, status in enumerate(_stats.STATUS_CLASSES):
                    index = _stats.REQUESTS + m * len(_stats.STATUS_CLASSES) + s
                    if total[index] > before[index]:
                        lines.append("%srequests.%s.%s:%d|c" % (prefix, method, status, total[index] - before[index]))
            for name, index in (("request_body_bytes", _stats.BYTES_IN), ("response_body_bytes", _stats.BYTES_OUT),
                                ("handoffs.given", _stats.HANDOFF_GIVEN), ("handoffs.taken", _stats.HANDOFF_TAKEN)):
                if total[index] > before[index]:
                    lines.append("%s%s:%d|c" % (prefix, name, total[index] - before[index]))
            for reason, count in restarts.items():
                if count > restarts_before[reason]:
                    lines.append("%sworker_restarts.%s:%d|c" % (prefix, reason, count - restarts_before[reason]))
            count = sum(total[_stats.DURATION:_stats.DURATION_SUM_US]) - sum(before[_stats.DURATION:_stats.DURATION_SUM_US])
            if count > 0:  # the interval's mean, with a sample rate that makes statsd count every request
                mean_ms = (total[_stats.DURATION_SUM_US] - before[_stats.DURATION_SUM_US]) / 1000.0 / count
                lines.append("%srequest_duration:%.3f|ms|@%.6g" % (prefix, mean_ms, 1.0 / count))
        live = self.live_workers()
        states = dict.fromkeys(WORKER_STATES, 0)
        for _, _, _, state in live:
            states[state] += 1
        for state, number in states.items():
            lines.append("%sworkers.%s:%d|g" % (prefix, state, number))
        lines.append("%srequests_in_flight:%d|g" % (prefix, sum(len(running) for _, _, running, _ in live)))
        lines.append("%sconnections:%d|g" % (prefix, sum(w.stats.gauge(_stats.CONNECTIONS) for w, _, _, _ in live)))
        for listener in list(self.arbiter.listeners):
            queue = tcp_listen_queue(listener.sock)
            if queue is not None:
                name = str(listener).replace(":", "_").replace(".", "_").replace("/", "_")
                lines.append("%slisten_backlog.%s:%d|g" % (prefix, name, queue[0]))
        packet = ""
        for line in lines:
            if packet and len(packet) + len(line) + 1 > STATSD_PACKET:
                self._statsd_send(packet)
                packet = ""
            packet = packet + "\n" + line if packet else line
        if packet:
            self._statsd_send(packet)

    def _statsd_send(self, packet):
        try:
            self.statsd.sendto(packet.encode(), self.statsd_addr)
        except OSError:
            pass  # full buffer, nobody listening: metrics never hold the master

    # ----- upgrade and exit

    def inherit_env(self):
        """For a USR2 re-exec: pass the metrics and control listeners to the new master."""
        items = []
        for name, sock in (("metrics", self.metrics_sock), ("control", self.control_sock)):
            if sock is not None:
                os.set_inheritable(sock.fileno(), True)
                items.append("%s:%d" % (name, sock.fileno()))
        return {"FORKWSGI_OBSERVE_FDS": ",".join(items)} if items else {}

    def close(self, unlink=True):
        for client in list(self.clients.values()):
            self._drop(client)
        for sock in (self.metrics_sock, self.control_sock, self.statsd):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.metrics_sock = self.control_sock = self.statsd = None
        if unlink:
            for path in self.owned_paths:
                _unlink_quietly(path)
        self.owned_paths = []


def _stats_booted_at(worker):
    try:
        from .heartbeat import _BOOTED_AT, _STAMP
        return _STAMP.unpack_from(worker.heartbeat.page, _BOOTED_AT)[0]
    except (ImportError, ValueError, AttributeError):
        return 0.0
