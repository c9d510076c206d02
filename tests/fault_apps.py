"""WSGI app for the fault-injection scenarios (tests/scenarios/test_faults.py) and the load client.

Every response names the worker that produced it in ``X-Pid``, so a client
knows which worker holds each of its keep-alive connections.

- ``/blob?seed=N&size=S``: ``blob(N, S)``, a body fully determined by the request.
- ``/slow?secs=X&seed=N&size=S``: the same after ``time.sleep(X)`` (a long app call).
- ``/pid``: the worker's pid.
- ``/big?size=S``: S bytes streamed in 64 KiB chunks, with a Content-Length.
- ``/upload``: reads the whole request body; answers its length and sha256.
"""
import hashlib
import os
import time
from urllib.parse import parse_qs

_CHUNK = b"x" * 65536


def blob(seed, size):
    """The body for ``seed``: a 32-byte digest of the seed, repeated to ``size`` bytes."""
    block = hashlib.sha256(b"forkwsgi-blob-%d" % seed).digest()
    return (block * (size // len(block) + 1))[:size]


def _arg(query, name, default, cast=int):
    values = query.get(name)
    return cast(values[0]) if values else default


def _stream(size):
    left = size
    while left > 0:
        n = min(left, len(_CHUNK))
        yield _CHUNK if n == len(_CHUNK) else _CHUNK[:n]
        left -= n


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    pid = ("X-Pid", str(os.getpid()))
    if path in ("/blob", "/slow"):
        if path == "/slow":
            time.sleep(_arg(query, "secs", 1.0, float))
        body = blob(_arg(query, "seed", 0), _arg(query, "size", 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body))), pid])
        return [body]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), pid])
        return [body]
    if path == "/big":
        size = _arg(query, "size", 1 << 20)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size)), pid])
        return _stream(size)
    if path == "/upload":
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        length = 0
        while True:
            data = stream.read(65536)
            if not data:
                break
            length += len(data)
            digest.update(data)
        body = b"%d %s" % (length, digest.hexdigest().encode())
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), pid])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9"), pid])
    return [b"not found"]
