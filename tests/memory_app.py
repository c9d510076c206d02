"""A preloaded app of many small Python objects, for the memory-sharing tests.

At import it builds about APP_MB MB of small lists (objects the collector tracks, so a full
collection in a worker writes into every page of them unless they were frozen). Every
request runs gc.collect(), as a busy app's collector eventually would; /leak keeps 40 MB
more each time.
"""
import gc
import os

APP_MB = 50
_OBJECTS = [[i] for i in range(APP_MB * 1024 * 1024 // 115)]  # a list, its item array and int: about 115 bytes
_LEAKED = []


def app(environ, start_response):
    if environ["PATH_INFO"] == "/leak":
        _LEAKED.append(bytearray(40 << 20))  # zero pages from mmap: written below, so resident
        _LEAKED[-1][::4096] = b"x" * (len(_LEAKED[-1]) // 4096)
    gc.collect()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % os.getpid()]
