"""--max-queue-time: a request that waited too long before the app is answered 503, not run.

Its wait counts from the earliest moment known: the kernel's stamp of its
arrival (a connection that waited in the backlog), its first byte read, or a
trusted front end's X-Request-Start. By the time a client has waited that
long it has often given up; answering at once frees the worker for those who
have not.
"""
from forkwsgi.shared import stats as _stats
from forkwsgi.worker.states import WAITING
from forkwsgi.wsgi.queuetime import RETRY_AFTER, ShedLog, earliest, front_end_start, front_end_start_raw


class Shedder:
    """Given --max-queue-time (seconds, above 0), the Site (trust in proxies and the clock offset),
    the counters, and ``answer_and_close`` (channels.Channels) to send the 503 with."""

    def __init__(self, max_queue_time, site, stats, answer_and_close):
        self.max_queue_time = max_queue_time
        self.site = site
        self.stats = stats
        self.answer_and_close = answer_and_close
        self.log = ShedLog(max_queue_time)
        self.next_at = float("inf")  # the earliest deadline among the waiting connections

    def deadline(self, conn, request):
        """Monotonic time past which the request of ``conn`` (parsed, or None while raw) is shed."""
        seen = conn.first_seen()
        if self.site.trusted.trusts(conn.base["REMOTE_ADDR"]):
            front = front_end_start(request.headers) if request is not None else front_end_start_raw(conn.reader.buf)
            offset = self.site.clock_offset
            seen = earliest(seen + offset, front) - offset
        return seen + self.max_queue_time

    def note_waiting(self, conn):
        """``conn`` began to wait: wake the loop in time for its deadline."""
        self.next_at = min(self.next_at, self.deadline(conn, conn.pending))

    def shed(self, conn, request):
        """Answer 503 without calling the app, and close: counted, and logged once a second at most."""
        self.log.shed()
        if self.stats is not None:
            self.stats.add(_stats.SHED)
        conn.pending = None
        if request is not None and request.body is not None:
            request.body.close()
        self.answer_and_close(conn, 503, "Service Unavailable", RETRY_AFTER)

    def shed_due(self, waiting, now):
        """Shed the waiting connections past their deadline (once the earliest is due)."""
        if now < self.next_at:
            return
        next_at = float("inf")
        for conn in list(waiting):
            if conn.state is not WAITING:
                continue
            deadline = self.deadline(conn, conn.pending)
            if now >= deadline:
                self.shed(conn, conn.pending)
            elif deadline < next_at:
                next_at = deadline
        self.next_at = next_at
