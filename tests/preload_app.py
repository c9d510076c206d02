"""Reports the pid that imported it: the master's under --preload."""
import os

IMPORTED_BY = os.getpid()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (IMPORTED_BY, os.getpid())]
