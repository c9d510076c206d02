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


def run_request(worker, conn, request):
    """Run the app for ``request`` and write its response. True if the connection stays open."""
    cfg = worker.cfg
    environ = build_environ(request, conn.base, worker.trusted)
    keep_alive = request.keep_alive and worker.keepalive and not worker.closing_connections
    response = Response(conn.send, conn.send_file, request, keep_alive, worker.dates.get(),
                        worker.is_closing_connections)
    started = time.time()
    worker.note_request_start(conn, request, started)
    result = None
    try:
        if cfg.pre_request is not None:
            cfg.pre_request(worker, environ)
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
        worker.note_request_end(conn)
    if worker.access_log is not None:
        worker.access_log.write(environ, response.status, response.headers or [], response.sent,
                                time.time() - started)
    if cfg.post_request is not None:
        try:
            cfg.post_request(worker, environ, response.status, response.sent)
        except Exception:
            log.exception("post_request hook failed")
    return response.keep_alive
