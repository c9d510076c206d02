"""The app every server in the benchmark and the locust scenarios runs."""
import json
import time

HELLO = b"Hello, world!\n"
BLOB_64K = b"x" * 65536


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/64k":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "65536")])
        return [BLOB_64K]
    if path == "/upload":
        stream = environ["wsgi.input"]
        size = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            size += len(block)
        body = b"%d\n" % size
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/sleep":  # /sleep?0.05: a stand-in for a database call, then hello
        time.sleep(min(float(environ.get("QUERY_STRING") or 0), 10.0))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
        return [HELLO]
    if path == "/json":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length) or b"{}")
        body = json.dumps({"received": data, "ok": True}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]
