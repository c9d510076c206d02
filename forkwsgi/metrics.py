"""What /metrics answers: the Prometheus text format (version 0.0.4) and our metric families.

Rendering only reads: the observer's totals (retired workers plus the live
workers' shared pages, so counters never go back), its live workers' states and
the kernel's accept queues. It is called by the metrics listener (endpoints.py)
for each scrape, in the master's loop, and never touches the app.
"""
import os
import time
import platform

from . import __version__
from . import stats as _stats
from .backlog import listen_drops, tcp_listen_queue


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


def render(observer):
    """The exposition text of every family, from the observer's totals and live workers."""
    arbiter = observer.arbiter
    total = observer.totals()
    live = observer.live_workers()
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
    states = observer.state_counts(live)
    out.family("forkwsgi_workers", "gauge", "Worker processes by state.",
               [("", {"state": state}, count) for state, count in states.items()])
    out.family("forkwsgi_workers_desired", "gauge", "Workers the master keeps running (-w, TTIN/TTOU).",
               [("", {}, arbiter.cfg.workers)])
    out.family("forkwsgi_worker_restarts_total", "counter",
               "Workers replaced, by reason: crash, timeout, max-requests, memory, reload.",
               [("", {"reason": reason}, count) for reason, count in observer.restarts.items()])
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
    drops = _recent("drops", listen_drops)
    if drops is not None:
        out.family("forkwsgi_tcp_listen_overflows_total", "counter",
                   "TcpExt ListenOverflows from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
                   "namespace), not only this server's.", [("", {}, drops[0])])
        out.family("forkwsgi_tcp_listen_drops_total", "counter",
                   "TcpExt ListenDrops from /proc/net/netstat: MACHINE-WIDE (all listeners of the network "
                   "namespace), not only this server's.", [("", {}, drops[1])])
    master_rss = _recent(0, lambda: _stats.process_rss(os.getpid()))
    out.family("forkwsgi_master_resident_memory_bytes", "gauge", "Resident memory of the master.",
               [("", {}, master_rss or 0)])
    samples = []
    for worker, slot, _, _ in live:
        rss = _recent(worker.pid, lambda: _stats.process_rss(worker.pid))
        if rss is not None:
            samples.append(("", {"worker": slot}, rss))
    out.family("forkwsgi_worker_resident_memory_bytes", "gauge",
               "Resident memory of each worker; the label is a slot number reused by its replacement.", samples)
    out.family("forkwsgi_build_info", "gauge", "forkwsgi and Python versions.",
               [("", {"version": __version__, "python": platform.python_version()}, 1)])
    out.family("forkwsgi_start_time_seconds", "gauge", "When the master started, in Unix time.",
               [("", {}, observer.started)])
    return out.text()
