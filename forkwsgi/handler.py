"""Running one request: environ, hooks, the app, its response, the access log.

Called by the event loop's thread (one thread per worker) or by a pool
thread (--threads); it touches only its own connection.
"""
import time

from .connection import ClientGone
from .environ import build_environ
from .http.response import error_response
from .logs import log
from .wsgi import Response

_monotonic = time.monotonic


def run_request(worker, conn, request):
    """Run the app for ``request`` and write its response. True if the connection stays open."""
    cfg = worker.cfg
    environ = build_environ(request, conn.base, worker.trusted)
    response = Response(conn.send, conn.send_file, request, worker.keeps_alive(conn, request),
                        worker.dates.get(), worker.closing_check)
    started = time.time()
    conn.running = (request.method, request.target, started, _monotonic())  # for --timeout reports
    stats = worker.stats  # shared-memory counters (stats.py); None when nothing reads them
    slot = stats.begin(request.method, request.target, started) if stats is not None else -1
    result = None
    try:
        if cfg.pre_request is not None:
            cfg.pre_request(worker, environ, request)
        result = worker.app(environ, response.start_response)
        response.write_result(result)
    except ClientGone as exc:
        log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
        response.keep_alive = False
    except Exception:
        log.exception("error handling %s %s", request.method, request.target[:200])
        response.keep_alive = False
        if not response.head_sent:
            response.status = "500 Internal Server Error"
            try:
                conn.send(error_response(500, "Internal Server Error", worker.dates.value))
            except ClientGone:
                pass
    finally:
        if result is not None and hasattr(result, "close"):
            try:
                result.close()
            except Exception:
                log.exception("error closing the response of %s %s", request.method, request.target[:200])
                response.keep_alive = False
        if request.body is not None:
            request.body.close()
        conn.running = None
        if stats is not None:  # counted before the next request: exact even if the worker is killed then
            stats.end(slot, request.method,
                      response.code if response.head_sent else int(response.status[:3]) if response.status else 0,
                      request.content_length or 0, response.sent, time.time() - started)
    if worker.access_log is not None:
        worker.access_log.write(environ, response.status, response.headers or [], response.sent,
                                time.time() - started)
    if cfg.post_request is not None:
        try:
            cfg.post_request(worker, environ, request, response)
        except Exception:
            log.exception("post_request hook failed")
    return response.keep_alive


def answer_health(worker, conn, request):
    """The --health-path answer, from the worker itself: 200, or 503 once the server is stopping."""
    if request.body is not None:
        request.body.close()
    ready = not (worker.stopping or worker.board_draining())
    status, body = ("200 OK", b"ok\n") if ready else ("503 Service Unavailable", b"stopping\n")
    response = Response(conn.send, conn.send_file, request, worker.keeps_alive(conn, request), worker.dates.get())
    response.start_response(status, [("Content-Type", "text/plain")])
    response.write_result([body])  # the same framing as any response: HEAD, HTTP/1.0, Connection
    if worker.access_log is not None and worker.cfg.log_health:
        worker.access_log.write(build_environ(request, conn.base, worker.trusted), status, response.headers,
                                response.sent, 0.0)
    return response.keep_alive
