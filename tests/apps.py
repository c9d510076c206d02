"""WSGI apps the tests serve, each at its own path of ``app``."""
import json
import os
import sys
import time

MARKER_DIR = os.environ.get("TEST_MARKER_DIR", "")


class Tracked:
    """An iterable whose close() leaves a marker file, to prove the server called it."""

    def __init__(self, chunks, name):
        self.chunks = chunks
        self.name = name

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        if MARKER_DIR:
            with open(os.path.join(MARKER_DIR, self.name), "w") as handle:
                handle.write("closed")


def _environ_json(environ):
    return {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    if path == "/errors":
        environ["wsgi.errors"].write("app wrote to wsgi.errors\n")
        environ["wsgi.errors"].flush()
        start_response("200 OK", [])
        return [b""]
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path.startswith("/environ"):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(_environ_json(environ)).encode()]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Content-Length", environ.get("CONTENT_LENGTH", ""))])
        return [body]
    if path == "/sleep":
        if MARKER_DIR:  # lets a test see that the app is running, instead of guessing with sleeps
            with open(os.path.join(MARKER_DIR, "sleeping"), "a") as handle:
                handle.write("%d\n" % os.getpid())
        time.sleep(float(query or 1))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept %d" % os.getpid()]
    if path == "/queued":  # sleeps, then tells its queue time; each call leaves a line in the marker dir
        if MARKER_DIR:
            with open(os.path.join(MARKER_DIR, "called"), "a") as handle:
                handle.write("%d\n" % os.getpid())
        time.sleep(float(query or 0))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"queue_time": environ.get("forkwsgi.queue_time"),
                            "request_start": environ.get("HTTP_X_REQUEST_START")}).encode()]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk%d;" % i for i in range(int(query or 3)))
    if path == "/big":
        size = int(query or 1 << 20)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * size]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]
    if path == "/file":
        handle = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](handle, 4096)
    if path == "/tracked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Tracked([b"tracked"], query or "tracked")
    if path == "/tracked-big":  # 64 MiB in 64 KiB chunks, closed with a marker
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(64 << 20))])
        return Tracked((b"x" * 65536 for _ in range(1024)), query or "tracked-big")
    if path == "/limited-upload":  # refuses a body over 1 MB on its CONTENT_LENGTH, as Flask's MAX_CONTENT_LENGTH
        if int(environ.get("CONTENT_LENGTH") or 0) > 1000000:
            start_response("413 Request Entity Too Large", [("Content-Type", "text/plain")])
            return [b"too large"]
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % len(body)]
    if path == "/raise":
        raise RuntimeError("boom before start_response")
    if path == "/raise-tracked":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"part one;"
            raise RuntimeError("boom mid-body")
        return Tracked(body(), query or "raise-tracked")
    if path == "/raise-after-headers":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"part one;"
            raise RuntimeError("boom after headers")
        return body()
    if path == "/exc-info":
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("200 OK", [("Content-Type", "text/plain")])
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]
    if path == "/bad-status":
        start_response("OK", [])
        return [b"x"]
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b"x"]
    if path == "/bad-header-name":
        start_response("200 OK", [("Bad Name", "v")])
        return [b"x"]
    if path == "/not-bytes":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["text, not bytes"]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only ten.."]
    if path == "/no-content":
        start_response("204 No Content", [])
        return [b""]
    if path == "/leak":
        _LEAK.append(bytearray(1 << 20))
        start_response("200 OK", [])
        return [b"%d" % len(_LEAK)]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


_LEAK = []


def broken_on_import():
    raise RuntimeError("never")
