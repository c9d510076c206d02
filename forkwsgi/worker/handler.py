"""Running one request: environ, hooks, the app, its response, the access log.

Called by the event loop's thread (one thread per worker) or by a pool
thread (--threads); it touches only its own connection.

A response body the client does not take as fast as the app makes it is not
waited for: once the connection's output buffer is full, the app's iterable
is left where it is (the request is *suspended*) and the thread goes back to
serve others. The loop resumes it when the client has taken enough.
"""
import threading
import time
from typing import Any, Final

from forkwsgi.http.response import DateCache
from forkwsgi.worker.connection import ClientGone, Connection
from forkwsgi.wsgi.environ import build_environ
from forkwsgi.http.body import StreamedBody
from forkwsgi.http.errors import HTTPError
from forkwsgi.http.head import Request
from forkwsgi.http.response import error_response
from forkwsgi.logs import log
from forkwsgi.wsgi.queuetime import REQUEST_START_KEY, fast_stamp, stamp
from forkwsgi.wsgi.response import Response
from forkwsgi.worker.stopping import StopState

_monotonic: Final = time.monotonic
_time: Final = time.time
SUSPENDED: Final = "suspended"  # what RequestRun.run returns while its body waits for the client


class Site:
    """What every request of a worker is served with: the app, the hooks and what they are given,
    the trust in proxies, the counters, the access log, the clocks and the keep-alive policy."""

    # (typed for mypyc: each request reads them)
    stop: StopState
    dates: DateCache
    threaded: bool
    accounts: bool
    clock_offset: float

    def __init__(self, app, cfg, hook_worker, stop, trusted, stats=None, access_log=None):
        self.app = app
        self.cfg = cfg
        self.pre_request = cfg.pre_request
        self.post_request = cfg.post_request
        self.hook_worker = hook_worker  # what pre_request/post_request receive as ``worker``
        self.stop = stop  # stopping.StopState
        self.closing = stop.closing  # bound once: each Response asks it
        self.trusted = trusted  # wsgi.forwarded.TrustedPeers
        self.stats = stats  # shared-memory counters (shared/stats.py); None when nothing reads them
        self.access_log = access_log
        # Whether a finished request is counted, logged or hooked: where none is, no clock is read.
        self.accounts = stats is not None or access_log is not None or self.post_request is not None
        self.log_health = cfg.log_health
        self.threaded = cfg.threads > 1
        self.dates = DateCache()
        self.clock_offset = 0.0  # wall minus monotonic, refreshed by the loop (queuetime.py)

    def keeps_alive(self, conn, request):
        """Whether this response may leave the connection open."""
        return request.keep_alive and self.stop.keeps_alive(conn.tls)


class RequestRun:
    """One request's way through the app, in one call or in several when its body waits."""

    # Each request makes one (``start_run``): what it starts with is the class's, and an instance
    # keeps only what its request sets (no __slots__, which would have every field assigned here).
    site: "Site"
    conn: Connection
    request: Request
    environ: Any = None
    response: Any = None
    result: Any = None
    started = 0.0  # wall clock, when the app was first called
    slot = -1  # its row in the shared counters (stats.begin)
    began = 0.0  # monotonic, when this turn in the app began (for --timeout)
    thread = 0  # the thread running it now
    timed_out = False  # answered 504 past --timeout: counted and logged then, not again
    running = False  # in the app now (not queued for a thread, not suspended): --timeout watches it

    def run(self, began: float = 0.0):
        """Start the request, or go on with its body; True/False: done, keep the connection open
        or not; SUSPENDED: the client must take some of the body first (Connection.has_room).
        ``began``: the monotonic time the caller read as it called (else read here)."""
        conn = self.conn
        self.began = began or _monotonic()
        if self.site.threaded:  # (for the stack of a request cut loose past --timeout)
            self.thread = threading.get_ident()
        self.running = True
        try:
            behind = self._start() if self.response is None else self.response.write_more(conn.has_room)
            if behind:
                self.running = False  # the loop takes it up again as the client reads
                return SUSPENDED
        except ClientGone as exc:
            log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
            self.response.keep_alive = False
        except HTTPError as exc:  # the body the app was reading: stalled, cut short
            log.info("request from %s:%s: %d %s: %s", conn.peer[0], conn.peer[1], exc.status, exc.reason, exc.detail)
            self._answer_error(exc.status, exc.reason)
        except Exception:
            log.exception("error handling %s %s", self.request.method, self.request.target[:200])
            self._answer_error(500, "Internal Server Error")
        return self.finish()

    def _start(self) -> bool:
        """Call the app and write what its body gives while the client keeps up; True if suspended."""
        site = self.site
        request = self.request
        conn = self.conn
        closing = site.closing
        body = request.body
        if type(body) is StreamedBody:  # a body not all read when the head goes: the connection closes
            closing = lambda: site.closing() or not body.complete  # noqa: E731
        send, send_file, room = conn.writers  # (inline, the send holds the response to the turn's end)
        keep_alive = request.keep_alive and site.stop.keeps_alive(conn.tls)  # (Site.keeps_alive, inlined)
        self.started = started = _time()
        self.response = response = Response(send, send_file, request, keep_alive, site.dates.get(started),
                                            closing)
        self.environ = environ = build_environ(request, conn.base, site.trusted)
        seen = conn.first_seen() + site.clock_offset
        queued = None if fast_stamp is None else fast_stamp(environ, seen, started)
        if queued is None:
            queued = stamp(environ, seen, started,
                           REQUEST_START_KEY in environ and site.trusted.trusts(conn.base["REMOTE_ADDR"]))
        conn.arrived = 0.0  # the next request on this connection counts from its own first byte
        stats = site.stats
        if stats is not None:
            self.slot = stats.begin(request.method, request.target, started, queued)
        if site.pre_request is not None:
            site.pre_request(site.hook_worker, environ, request)
        self.result = site.app(environ, response.start_response)
        return response.write_result(self.result, room)

    def _answer_error(self, status, reason):
        """The app failed: answer ``status`` if nothing was sent yet, and close the connection."""
        response = self.response
        response.keep_alive = False
        if not response.head_sent:
            response.status = "%d %s" % (status, reason)
            try:
                self.conn.send(error_response(status, reason, self.site.dates.value))
            except ClientGone:
                pass

    def abandon(self):
        """The connection closes under a suspended body: finish the request, the rest unsent."""
        self.response.keep_alive = False
        self.finish()

    def finish(self) -> bool:
        """Close the app's iterable and the body, count, log and run post_request: once, whether
        the body was all written or the connection is closed under it. True to keep it open."""
        request = self.request
        response = self.response
        conn = self.conn
        self.running = False
        result, self.result = self.result, None
        if result is not None and type(result) is not list and hasattr(result, "close"):
            try:
                result.close()
            except Exception:
                log.exception("error closing the response of %s %s", request.method, request.target[:200])
                response.keep_alive = False
        body = request.body
        if body is not None:
            if type(body) is StreamedBody and not body.complete:
                response.keep_alive = False  # the rest of it is not waited for: a lingering close drains it
                conn.unread_input = True
            body.close()
        if self.timed_out:  # its 504 was counted and logged when it was cut loose
            return False
        if self.site.accounts:
            self._account(response.code if response.head_sent else int(response.status[:3]) if response.status else 0)
        return response.keep_alive

    def time_out(self):
        """Past --timeout: answer 504 if nothing of the response has gone yet, count and log it now.
        Called from another thread (the loop) or a signal handler while the app call runs on."""
        self.timed_out = True
        response = self.response
        response.keep_alive = False
        if not response.head_sent:
            response.status = "504 Gateway Timeout"
            try:
                self.conn.send(error_response(504, "Gateway Timeout", self.site.dates.value), False)
            except ClientGone:
                pass
        self._account(response.code if response.head_sent else 504)

    def _account(self, code):
        """Counters, access log and post_request hook for the finished request."""
        site = self.site
        request = self.request
        response = self.response
        elapsed = _time() - self.started
        stats = site.stats
        if stats is not None:  # counted before the next request: exact even if the worker is killed then
            stats.end(self.slot, request.method, code, request.content_length or 0, response.sent, elapsed)
        if site.access_log is not None:
            site.access_log.write(self.environ or {}, response.status, response.headers or [],
                                  response.sent, elapsed)
        if site.post_request is not None:
            try:
                site.post_request(site.hook_worker, self.environ, request, response)
            except Exception:
                log.exception("post_request hook failed")


def start_run(site, conn, request) -> RequestRun:
    """The RequestRun of ``request``. Its three fields are set here rather than by an ``__init__``,
    which would cost each request a call through its class and a Python frame more."""
    run = RequestRun()
    run.site = site
    run.conn = conn
    run.request = request
    return run


class HealthProbe:
    """--health-path: which requests are probes. Recognised once parsed (``matches``) and, so that a
    probe is never queued behind busy threads, already from its first raw bytes (``may_be``)."""

    METHODS = ("GET", "HEAD")

    def __init__(self, path):
        self.path = path
        self.prefixes = tuple(b"%s %s%s" % (method.encode(), path.encode("latin-1"), end)
                              for method in self.METHODS for end in (b" ", b"?"))

    def may_be(self, buf):
        return buf.startswith(self.prefixes)

    def matches(self, request):
        return request.target.partition("?")[0] == self.path and request.method in self.METHODS


def answer_health(site, conn, request, ready):
    """The --health-path answer, from the loop itself: 200, or 503 once the server is stopping."""
    if request.body is not None:
        request.body.close()
    status, body = ("200 OK", b"ok\n") if ready else ("503 Service Unavailable", b"stopping\n")
    response = Response(conn.send, conn.send_file, request, site.keeps_alive(conn, request), site.dates.get())
    response.start_response(status, [("Content-Type", "text/plain")])
    response.write_result([body])  # the same framing as any response: HEAD, HTTP/1.0, Connection
    if site.access_log is not None and site.log_health:
        site.access_log.write(build_environ(request, conn.base, site.trusted), status, response.headers,
                              response.sent, 0.0)
    return response.keep_alive
