"""The master's observability: Prometheus /metrics, the control socket, statsd.

The Observer is the coordinator the arbiter talks to. It opens what the
settings ask for, serves it from the master's select loop (never blocking:
the app is never involved), and keeps the one piece of state the reports
share: the accounting of worker lifecycles. The jobs live in their own files:

    endpoints.py  the metrics and control listeners and their connections
    metrics.py    the Prometheus text rendered for /metrics
    control.py    the control commands and the status report
    statsd.py     the periodic UDP sender
    backlog.py    the kernel's accept-queue readings they all report

Workers publish counters through shared memory (stats.py); the master sums
the live workers' pages and the last values of the dead ones (``retired``),
so every counter only grows across crashes, kill -9, reloads and restarts.
"""
import time

from forkwsgi.observe import control
from forkwsgi.observe import metrics
from forkwsgi.shared import stats as _stats
from forkwsgi.observe.endpoints import Endpoints, close_unused, inherited_fds
from forkwsgi.logs import log
from forkwsgi.observe.statsd import Statsd

RESTART_REASONS = ("crash", "timeout", "max-requests", "memory", "reload")
WORKER_STATES = ("booting", "idle", "busy", "stopping")


class Observer:
    """Owned by the arbiter; None there when no observability setting is on."""

    @classmethod
    def create(cls, arbiter, put_signal, bind):
        """None when no observability setting is on. ``put_signal(signum, count)`` queues a signal for the
        master's loop (the control commands); ``bind(address, what, mode)`` binds a listener (the master's
        binder, so this package never imports the master)."""
        cfg = arbiter.cfg
        if not (cfg.metrics_bind or cfg.control_socket or cfg.statsd_host or cfg.max_worker_memory):
            return None
        return cls(arbiter, put_signal, bind)

    def __init__(self, arbiter, put_signal, bind):
        self.arbiter = arbiter
        self.put_signal = put_signal
        cfg = arbiter.cfg
        self.started = time.time()
        self.retired = [0] * _stats.COUNTERS
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)
        self.slots = {}  # worker pid -> slot number, the `worker` label of per-worker gauges
        self.endpoints = Endpoints(lambda: metrics.render(self), lambda line: control.answer(self, line))
        self.statsd = None
        inherited = inherited_fds()
        try:
            self.endpoints.open(cfg, inherited, bind)
            if cfg.statsd_host:
                self.statsd = Statsd(self, cfg.statsd_host)
        except BaseException:
            self.close(unlink=True)
            raise
        close_unused(inherited)

    # ----- workers (called by the arbiter)

    def prepare(self, worker):
        """Before fork: the worker's shared page and its slot number."""
        worker.stats = _stats.WorkerStats(self.arbiter.cfg.threads)

    def spawned(self, worker):
        used = set(self.slots.values())
        self.slots[worker.pid] = next(number for number in range(len(used) + 1) if number not in used)

    def in_child(self, worker):
        """In the new worker: drop the master's sockets and the other workers' pages; publish our own."""
        self.endpoints.close_in_child()
        if self.statsd is not None:
            self.statsd.sock.close()
        for other in self.arbiter.workers.values():
            if other is not worker and other.stats is not None:
                other.stats.close()

    def worker_exited(self, worker, code):
        """A worker was reaped: fold its last counters into the retired totals, count why it went."""
        self.slots.pop(worker.pid, None)
        page = worker.stats
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
        if worker.told_to_stop:
            return "reload" if worker.generation != self.arbiter.generation else None  # else: fewer workers
        if code != 0:
            return "crash"
        return _stats.RETIRE_NAMES.get(retire_reason)  # None: the master is stopping

    # ----- what the reports read

    def totals(self):
        """Every counter: the retired workers' last values plus the live workers' pages."""
        total = list(self.retired)
        for worker in list(self.arbiter.workers.values()):
            page = worker.stats
            if page is not None:
                for index, value in enumerate(page.counters()):
                    total[index] += value
        return total

    def worker_state(self, worker, running):
        if not worker.heartbeat.booted:
            return "booting"
        page = worker.stats
        if worker.told_to_stop or worker.aborted_at or worker.quit_at or (page is not None and page.gauge(_stats.STOPPING)):
            return "stopping"
        return "busy" if running else "idle"

    def live_workers(self):
        """[(worker, slot, running requests, state)] of the workers with a page."""
        found = []
        for worker in list(self.arbiter.workers.values()):
            page = worker.stats
            if page is None:
                continue
            running = page.running()
            found.append((worker, self.slots.get(worker.pid, -1), running, self.worker_state(worker, running)))
        return sorted(found, key=lambda item: item[1])

    def state_counts(self, live):
        """{state: workers in it} for every WORKER_STATES, zeros included, from live_workers()."""
        states = dict.fromkeys(WORKER_STATES, 0)
        for _, _, _, state in live:
            states[state] += 1
        return states

    @staticmethod
    def in_flight(live):
        """Requests in the app now, over live_workers()."""
        return sum(len(running) for _, _, running, _ in live)

    @staticmethod
    def open_connections(live):
        """Open client connections (active and idle), over live_workers()."""
        return sum(worker.stats.gauge(_stats.CONNECTIONS) for worker, _, _, _ in live)

    # ----- the select loop

    def readers(self):
        return self.endpoints.readers()

    def writers(self):
        return self.endpoints.writers()

    def handle(self, readable, writable):
        """After the master's select: accept, read, answer, time out, send statsd. Never raises."""
        try:
            self.endpoints.serve(readable, writable)
            now = time.monotonic()
            self.endpoints.expire(now)
            if self.statsd is not None:
                self.statsd.tick(now)
        except Exception:
            log.exception("observability: unexpected error (the master carries on)")

    # ----- upgrade and exit

    def inherit_env(self):
        """For a USR2 re-exec: pass the metrics and control listeners to the new master."""
        return self.endpoints.inherit_env()

    def close(self, unlink=True):
        self.endpoints.close(unlink)
        if self.statsd is not None:
            self.statsd.close()
        self.statsd = None
