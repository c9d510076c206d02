"""The statsd sender: once a second, the counters' growth and the gauges over UDP.

Counters go out as deltas since the last send (statsd sums them), so the
sender keeps the totals it last sent. Sending never blocks and never fails the
master: the socket is non-blocking, and a full buffer or an absent statsd only
loses that interval's packet.
"""
import socket

from forkwsgi.shared import stats as _stats
from forkwsgi.shared.backlog import tcp_listen_queue
from forkwsgi.errors import ConfigError

STATSD_INTERVAL = 1.0
STATSD_PACKET = 1400


def _mean_timing(name, total, before, first, sum_us):
    """The interval's mean of a histogram as one timing, with a sample rate that makes statsd
    count every request; nothing when the interval had none."""
    count = sum(total[first:sum_us]) - sum(before[first:sum_us])
    if count <= 0:
        return []
    mean_ms = (total[sum_us] - before[sum_us]) / 1000.0 / count
    return ["%s:%.3f|ms|@%.6g" % (name, mean_ms, 1.0 / count)]


class Statsd:
    """Owned by the observer when --statsd-host is set; reads its totals, restarts and live workers."""

    def __init__(self, observer, address):
        self.observer = observer
        self.sock = None
        self.last = ([0] * _stats.COUNTERS, dict.fromkeys(observer.restarts, 0))  # deltas from the start
        self.due = 0.0
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise ConfigError("statsd host %s: %s" % (address, exc)) from None
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.addr = sockaddr

    def tick(self, now):
        """Called after each select of the master: send when the interval is up."""
        if now >= self.due:
            self.due = now + STATSD_INTERVAL
            self.send()

    def send(self):
        observer = self.observer
        arbiter = observer.arbiter
        prefix = arbiter.cfg.statsd_prefix or "forkwsgi"
        prefix = prefix.rstrip(".") + "." if prefix else ""
        total = observer.totals()
        restarts = dict(observer.restarts)
        last = self.last
        self.last = (total, restarts)
        lines = []
        if last is not None:
            before, restarts_before = last
            for m, method in enumerate(_stats.METHODS):
                for s, status in enumerate(_stats.STATUS_CLASSES):
                    index = _stats.REQUESTS + m * len(_stats.STATUS_CLASSES) + s
                    if total[index] > before[index]:
                        lines.append("%srequests.%s.%s:%d|c" % (prefix, method, status, total[index] - before[index]))
            for name, index in (("request_body_bytes", _stats.BYTES_IN), ("response_body_bytes", _stats.BYTES_OUT),
                                ("handoffs.given", _stats.HANDOFF_GIVEN), ("handoffs.taken", _stats.HANDOFF_TAKEN),
                                ("requests_shed", _stats.SHED)):
                if total[index] > before[index]:
                    lines.append("%s%s:%d|c" % (prefix, name, total[index] - before[index]))
            for reason, count in restarts.items():
                if count > restarts_before[reason]:
                    lines.append("%sworker_restarts.%s:%d|c" % (prefix, reason, count - restarts_before[reason]))
            for name, first, sum_us in (("request_duration", _stats.DURATION, _stats.DURATION_SUM_US),
                                        ("request_queue", _stats.QUEUE, _stats.QUEUE_SUM_US)):
                lines.extend(_mean_timing(prefix + name, total, before, first, sum_us))
        live = observer.live_workers()
        for state, number in observer.state_counts(live).items():
            lines.append("%sworkers.%s:%d|g" % (prefix, state, number))
        lines.append("%srequests_in_flight:%d|g" % (prefix, observer.in_flight(live)))
        lines.append("%sconnections:%d|g" % (prefix, observer.open_connections(live)))
        for listener in list(arbiter.listeners):
            queue = tcp_listen_queue(listener.sock)
            if queue is not None:
                name = str(listener).replace(":", "_").replace(".", "_").replace("/", "_")
                lines.append("%slisten_backlog.%s:%d|g" % (prefix, name, queue[0]))
        packet = ""
        for line in lines:
            if packet and len(packet) + len(line) + 1 > STATSD_PACKET:
                self._send(packet)
                packet = ""
            packet = packet + "\n" + line if packet else line
        if packet:
            self._send(packet)

    def _send(self, packet):
        try:
            self.sock.sendto(packet.encode(), self.addr)
        except OSError:
            pass  # full buffer, nobody listening: metrics never hold the master

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
