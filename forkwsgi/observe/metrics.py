"""What /metrics answers: the Prometheus text format (version 0.0.4) and our metric families.

Rendering only reads: the observer's totals (retired workers plus the live
workers' shared pages, so counters never go back), its live workers' states and
the kernel's accept queues. It is called by the metrics listener (endpoints.py)
for each scrape, in the master's loop, and never touches the app.
"""
import os
import time
import platform

from forkwsgi import __version__
from forkwsgi.shared import stats as _stats
from forkwsgi.shared.backlog import listen_drops, tcp_listen_queue


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


def _labels(**labels):
    return "{%s}" % ",".join('%s="%s"' % (key, _escape_label(value)) for key, value in labels.items())


class Family:
    """One metric family with its HELP and TYPE lines and its samples' "name{labels} " prefixes, each
    formatted once: a scrape then only formats numbers (the master renders 100 scrapes a second cheaply)."""

    def __init__(self, name, kind, help_text, label=None, values=()):
        self.head = "# HELP %s %s\n# TYPE %s %s\n" % (name, _escape_help(help_text), name, kind)
        self.name, self.label = name, label
        self.prefixes = {value: "%s%s " % (name, _labels(**{label: value})) for value in values}

    def prefix(self, value):
        """The prefix for a label value; values not known at import (listeners, slots) join, bounded."""
        prefix = self.prefixes.get(value)
        if prefix is None:
            prefix = "%s%s " % (self.name, _labels(**{self.label: value}))
            if len(self.prefixes) < 256:
                self.prefixes[value] = prefix
        return prefix

    def one(self, value):
        return "%s%s %s\n" % (self.head, self.name, _number(value))

    def by(self, pairs):
        """[(label value, sample value)] -> the family's text."""
        return self.head + "".join("%s%s\n" % (self.prefix(label), _number(value)) for label, value in pairs)


_PROC_TTL = 1.0  # /proc figures (RSS, machine-wide drops) are read at most once a second
_proc_cache = {}


def _recent(key, read):
    """A /proc figure at most _PROC_TTL old: a scraper polling fast costs the master little."""
    now = time.monotonic()
    hit = _proc_cache.get(key)
    if hit is None or now - hit[0] > _PROC_TTL:
        if len(_proc_cache) > 1024:
            _proc_cache.clear()  # pids of long-gone workers
        hit = _proc_cache[key] = (now, read())
    return hit[1]


def _per_worker(live, kind, read):
    """[(slot, figure)] of the live workers, each read by ``read(worker)`` at most once a second."""
    samples = []
    for worker, slot, _, _ in live:
        figure = _recent((kind, worker.pid), lambda: read(worker))
        if figure is not None:
            samples.append((slot, figure))
    return samples


_NS = len(_stats.STATUS_CLASSES)
REQUESTS = Family("forkwsgi_requests_total", "counter",
                  "Requests answered by the app, by method class and status class (none: no status was sent).")
# One prefix per (method, status) cell, in the order of the counters; GET and POST 2xx always shown.
_REQUEST_CELLS = [("forkwsgi_requests_total%s " % _labels(method=method, status=status),
                   status == "2xx" and method in ("GET", "POST"))
                  for method in _stats.METHODS for status in _stats.STATUS_CLASSES]
DURATION = Family("forkwsgi_request_duration_seconds", "histogram",
                  "Time from calling the app to its response written (or queued) to the client.")
QUEUE = Family("forkwsgi_request_queue_seconds", "histogram",
               "Time from a request first seen (its first byte reaching the host, or a trusted front end's "
               "X-Request-Start) to the app called.")
SHED = Family("forkwsgi_requests_shed_total", "counter",
              "Requests answered 503 without calling the app: they waited past --max-queue-time.")


def _bucket_prefixes(name):
    return ["%s_bucket%s " % (name, _labels(le=_number(float(bound)))) for bound in _stats.BUCKETS + (float("inf"),)]


_BUCKET_PREFIXES = {family: _bucket_prefixes(family.name) for family in (DURATION, QUEUE)}
BODY_IN = Family("forkwsgi_request_body_bytes_total", "counter", "Request body bytes received.")
BODY_OUT = Family("forkwsgi_response_body_bytes_total", "counter", "Response body bytes sent (heads excluded).")
IN_FLIGHT = Family("forkwsgi_requests_in_flight", "gauge", "Requests in the app now.")
CONNECTIONS = Family("forkwsgi_connections", "gauge",
                     "Open client connections: active (a request in the app) and idle (keep-alive, reading).",
                     "state", ("active", "idle"))
WORKERS = Family("forkwsgi_workers", "gauge", "Worker processes by state.", "state",
                 ("booting", "idle", "busy", "stopping"))
WORKERS_DESIRED = Family("forkwsgi_workers_desired", "gauge",
                         "Workers the master keeps running (-w, TTIN/TTOU, and --max-workers following the load).")
SCALED = Family("forkwsgi_worker_scaling_total", "counter",
                "Workers added (up) and retired (down) by --max-workers following the load.", "direction",
                ("up", "down"))
RESTARTS = Family("forkwsgi_worker_restarts_total", "counter",
                  "Workers replaced, by reason: crash, timeout, max-requests, memory, reload.", "reason",
                  ("crash", "timeout", "max-requests", "memory", "reload"))
HANDOFFS = Family("forkwsgi_handoffs_total", "counter",
                  "Connections moved between workers: given to a sibling, taken from one.", "direction",
                  ("given", "taken"))
BACKLOG = Family("forkwsgi_listen_backlog", "gauge",
                 "Connections waiting in a TCP listener's accept queue (TCP_INFO; not known for unix sockets).",
                 "listener")
BACKLOG_MAX = Family("forkwsgi_listen_backlog_max", "gauge", "Accept queue size of a TCP listener.", "listener")
OVERFLOWS = Family("forkwsgi_tcp_listen_overflows_total", "counter",
                   "TcpExt ListenOverflows from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
                   "namespace), not only this server's.")
DROPS = Family("forkwsgi_tcp_listen_drops_total", "counter",
               "TcpExt ListenDrops from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
               "namespace), not only this server's.")
MASTER_RSS = Family("forkwsgi_master_resident_memory_bytes", "gauge", "Resident memory of the master.")
WORKER_RSS = Family("forkwsgi_worker_resident_memory_bytes", "gauge",
                    "Resident memory of each worker; the label is a slot number reused by its replacement.",
                    "worker")
WORKER_USS = Family("forkwsgi_worker_unique_memory_bytes", "gauge",
                    "Memory only this worker holds (USS: its private pages, from /proc/PID/smaps_rollup), what "
                    "--max-worker-memory limits; unlike RSS it leaves out the pages a --preload app shares.",
                    "worker")
BUILD_INFO = Family("forkwsgi_build_info", "gauge", "forkwsgi and Python versions.")
BUILD_INFO.head += "forkwsgi_build_info%s 1\n" % _labels(version=__version__, python=platform.python_version())
STARTED = Family("forkwsgi_start_time_seconds", "gauge", "When the master started, in Unix time.")


def _histogram(out, family, counts, sum_us):
    """Append a histogram family: its buckets' counts (non-cumulative) and their sum in microseconds."""
    out.append(family.head)
    cumulative = 0
    for prefix, count in zip(_BUCKET_PREFIXES[family], counts):
        cumulative += count
        out.append("%s%d\n" % (prefix, cumulative))
    out.append("%s_sum %s\n%s_count %d\n" % (family.name, _number(sum_us / 1e6), family.name, cumulative))


def render(observer):
    """The exposition text of every family, from the observer's totals and live workers."""
    arbiter = observer.arbiter
    total = observer.totals()
    live = observer.live_workers()
    out = [REQUESTS.head]
    for (prefix, always), value in zip(_REQUEST_CELLS, total[_stats.REQUESTS:_stats.DURATION]):
        if value or always:
            out.append("%s%d\n" % (prefix, value))
    _histogram(out, DURATION, total[_stats.DURATION:_stats.DURATION_SUM_US], total[_stats.DURATION_SUM_US])
    _histogram(out, QUEUE, total[_stats.QUEUE:_stats.QUEUE_SUM_US], total[_stats.QUEUE_SUM_US])
    out.append(SHED.one(total[_stats.SHED]))
    out.append(BODY_IN.one(total[_stats.BYTES_IN]))
    out.append(BODY_OUT.one(total[_stats.BYTES_OUT]))
    in_flight = observer.in_flight(live)
    out.append(IN_FLIGHT.one(in_flight))
    idle = max(observer.open_connections(live) - in_flight, 0)
    out.append(CONNECTIONS.by([("active", in_flight), ("idle", idle)]))
    out.append(WORKERS.by(observer.state_counts(live).items()))
    out.append(WORKERS_DESIRED.one(arbiter.wanted()))
    out.append(SCALED.by(arbiter.scaling.scaled.items()))
    out.append(RESTARTS.by(observer.restarts.items()))
    out.append(HANDOFFS.by([("given", total[_stats.HANDOFF_GIVEN]), ("taken", total[_stats.HANDOFF_TAKEN])]))
    queues = [(str(listener), tcp_listen_queue(listener.sock)) for listener in list(arbiter.listeners)]
    queues = [(name, queue) for name, queue in queues if queue is not None]
    out.append(BACKLOG.by([(name, queue[0]) for name, queue in queues]))
    out.append(BACKLOG_MAX.by([(name, queue[1]) for name, queue in queues]))
    drops = _recent("drops", listen_drops)
    if drops is not None:
        out.append(OVERFLOWS.one(drops[0]))
        out.append(DROPS.one(drops[1]))
    out.append(MASTER_RSS.one(_recent(0, lambda: _stats.process_rss(os.getpid())) or 0))
    out.append(WORKER_RSS.by(_per_worker(live, "rss", lambda worker: _stats.process_rss(worker.pid))))
    out.append(WORKER_USS.by(_per_worker(live, "uss", lambda worker: _stats.worker_uss(worker.stats, worker.pid))))
    out.append(BUILD_INFO.head)
    out.append(STARTED.one(observer.started))
    return "".join(out)
