"""The timeouts a worker enforces on its connections, once per poll interval.

Every clock here belongs to the client: a connection waiting for a thread
(WAITING), or for its own request to finish (APP), is never timed out. Idle
clocks do not count a span the loop was blocked in a long app call
(``seen_idle``), nor what came after the last poll (``polled_at``): a
connection whose next request has just arrived is served, not closed.
"""
import time

from forkwsgi.http.errors import RequestTimeout
from forkwsgi.logs import log
from forkwsgi.worker.states import APP, HANDSHAKE, LINGER, READING, WAITING

STOP_IDLE_GRACE = 0.5  # a stopping worker closes a keep-alive connection once idle this long


class Timers:
    """Given the timeouts (``cfg``), the stop state, and what to do with a connection past one:
    ``channels`` (close, refuse, close_idle) and ``hand_off`` (a stopping worker's idle connection
    moves to a sibling when it can; True if it left)."""

    def __init__(self, cfg, stop, channels, hand_off):
        self.header_timeout = cfg.header_timeout
        self.body_timeout = cfg.body_timeout
        self.send_timeout = cfg.send_timeout
        self.keepalive = cfg.keepalive
        self.stop = stop
        self.channels = channels
        self.hand_off = hand_off

    def sweep(self, connections, now, polled_at, seen_idle):
        """Enforce the keep-alive, header, body and send timeouts; close or move idle connections
        when stopping. ``polled_at``: when the last poll returned; ``seen_idle``: when the loop last
        came back from a long app call."""
        # A connection is known to be idle only up to the last poll: after a long turn of the loop
        # (many app calls, none long alone) its next request may be in the socket, unseen.
        now = min(now, polled_at)
        for conn in list(connections.values()):
            if connections.get(conn.fd) is not conn:
                continue  # closed or handed off while an earlier one ran its request
            state = conn.state
            if state is APP or state is WAITING:
                continue  # waiting for us, never the client's fault (a suspended body waits for the client)
            if state is LINGER:
                if now > conn.linger_until:
                    self.channels.close(conn)
            elif state is HANDSHAKE:
                if now - conn.started > self._head_limit():
                    log.debug("TLS handshake with %s:%s timed out", *conn.peer[:2])
                    self.channels.close(conn)
            elif conn.out:  # SUSPENDED, SENDING, CLOSING: the client must take what is queued
                if self.send_timeout and now - conn.send_progress_at > self.send_timeout:
                    log.debug("client %s:%s stopped reading its response", *conn.peer[:2])
                    self.channels.close(conn)
            elif state is READING:
                self._reading(conn, now, seen_idle)

    def _head_limit(self):
        """How long a new connection may go without a request (or a TLS client without finishing its
        handshake): --header-timeout, but once the worker stops only as long as an idle keep-alive
        connection (a connection opened ahead of need, and never used, must not hold up a stop)."""
        limit = self.header_timeout or float("inf")
        return min(limit, STOP_IDLE_GRACE) if self.stop.stopping else limit

    def _reading(self, conn, now, seen_idle):
        """A connection between responses: the parser's progress says which clock runs."""
        reader = conn.reader
        if reader.request is not None:
            if self.body_timeout and now - conn.last_io > self.body_timeout:
                self.channels.refuse(conn, RequestTimeout("request body stalled for %gs" % self.body_timeout))
        elif reader.in_progress or conn.proxy_pending:
            if self.header_timeout and now - conn.started > self.header_timeout:
                self.channels.refuse(conn, RequestTimeout("no complete request head within %gs"
                                                          % self.header_timeout))
        elif not conn.served:
            if now - max(conn.started, seen_idle) > self._head_limit():
                self.channels.close_idle(conn)
        elif self.stop.stopping:
            if now - max(conn.last_io, seen_idle) > min(self.keepalive, STOP_IDLE_GRACE):
                if not (self.stop.handing_over and self.hand_off(conn)):
                    self.channels.close_idle(conn)
        elif now - max(conn.last_io, seen_idle) > self.keepalive:
            self.channels.close_idle(conn)


def stuck_request(runs, timeout):
    """--threads: the oldest of ``runs`` (handler.RequestRun in the app) past --timeout, or None.
    The loop beats on while a thread is stuck; the worker cuts that request loose itself and
    retires, sparing its other threads' requests."""
    now = time.monotonic()  # not the wall clock: an NTP step must not look like a stuck request
    late = [run for run in runs if now - run.began > timeout]
    return min(late, key=lambda run: run.began) if late else None
