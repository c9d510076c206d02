"""An app that takes about half a second to import, like a large project: for reload tests."""
import os
import time

time.sleep(float(os.environ.get("SLOW_BOOT_SECONDS", "0.5")))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
