"""The timeouts a worker enforces on its connections, once per poll interval.

Every clock here belongs to the client: a connection waiting for a thread,
or for its own request to finish, is never timed out. Idle clocks do not count
a span the loop was blocked in a long app call (Worker.resumed_at), and a
connection whose next request has just arrived is served, not closed.
"""
import time

from forkwsgi.http.errors import RequestTimeout
from forkwsgi.logs import log

STOP_IDLE_GRACE = 0.5  # a stopping worker closes a keep-alive connection once idle this long


def sweep(worker, now):
    """Enforce the keep-alive, header, body and send timeouts; close or move idle connections when stopping."""
    cfg = worker.cfg
    if cfg.timeout and worker.executor.threads > 1:
        check_stuck_threads(worker)
    seen_idle = worker.resumed_at
    # A connection is known to be idle only up to the last poll: after a long turn of the loop
    # (many app calls, none long alone) its next request may be in the socket, unseen.
    now = min(now, worker.polled_at)
    connections = worker.connections
    for conn in list(connections.values()):
        if connections.get(conn.fd) is not conn:
            continue  # closed or handed off while an earlier one ran its request
        if (conn.busy and conn.suspended is None) or conn in worker.waiting or conn.pending is not None:
            continue  # waiting for us, never the client's fault (a suspended body waits for the client)
        reader = conn.reader
        if conn.linger_until:
            if now > conn.linger_until:
                worker.close(conn)
        elif conn.handshaking:
            if cfg.header_timeout and now - conn.started > cfg.header_timeout:
                log.debug("TLS handshake with %s:%s timed out", *conn.peer[:2])
                worker.close(conn)
        elif conn.out:
            if cfg.send_timeout and now - conn.send_progress_at > cfg.send_timeout:
                log.debug("client %s:%s stopped reading its response", *conn.peer[:2])
                worker.close(conn)
        elif reader.request is not None:
            if cfg.body_timeout and now - conn.last_io > cfg.body_timeout:
                worker.refuse(conn, RequestTimeout("request body stalled for %gs" % cfg.body_timeout))
        elif reader.in_progress or conn.proxy_pending:
            if cfg.header_timeout and now - conn.started > cfg.header_timeout:
                worker.refuse(conn, RequestTimeout("no complete request head within %gs" % cfg.header_timeout))
        elif not conn.served:
            if cfg.header_timeout and now - max(conn.started, seen_idle) > cfg.header_timeout:
                worker.close_idle(conn)
        elif worker.stopping:
            if now - max(conn.last_io, seen_idle) > min(cfg.keepalive, STOP_IDLE_GRACE):
                if not (worker.retiring and worker.hand_off(conn)):
                    worker.close_idle(conn)
        elif now - max(conn.last_io, seen_idle) > cfg.keepalive:
            worker.close_idle(conn)


def check_stuck_threads(worker):
    """--threads: the loop beats on while a thread is stuck; past --timeout the worker cuts the
    oldest such request loose itself (Worker.cut_loose) and retires. Its other threads' requests
    are spared: they finish within --graceful-timeout, as on any graceful stop."""
    if worker.stopping or worker.retire_requested:
        return
    timeout = worker.cfg.timeout
    now = time.monotonic()  # not the wall clock: an NTP step must not look like a stuck request
    runs = [run for run in worker.running_requests() if now - run.began > timeout]
    if runs:
        worker.cut_loose(min(runs, key=lambda run: run.began))
