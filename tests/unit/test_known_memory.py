"""The memories of text found valid (forkwsgi/http/known.py) under traffic whose ids change each request."""
import os

from forkwsgi.http import known
from forkwsgi.http.fields import LINE_CACHE
from forkwsgi.http.parser import Limits, RequestReader
from forkwsgi.http.scan import python_scan_head

HEAD = (b"GET / HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n"
        b"X-Request-Id: %s\r\ntraceparent: 00-%s-%s-01\r\n\r\n")


def fresh_head():
    return HEAD % (os.urandom(16).hex().encode(), os.urandom(16).hex().encode(), os.urandom(8).hex().encode())


def test_lines_that_never_repeat_are_not_kept_and_push_nothing_out():
    reader = RequestReader(Limits(), python_scan_head, None)  # (the compiled scanner keeps no memory)
    for _ in range(3 * known.MAX):  # enough unique lines to have emptied a memory that kept them
        reader.feed(fresh_head())
        assert reader.next_request() is not None
    assert "Host: app.example.com" in LINE_CACHE and "Accept: */*" in LINE_CACHE
    assert not [line for line in LINE_CACHE if line.startswith(("X-Request-Id", "traceparent"))]


def test_a_line_is_kept_when_it_comes_again():
    memory = known.Memory()
    known.remember(memory, "Via: 1.1 edge", ("via", "1.1 edge"), 13)
    assert "Via: 1.1 edge" not in memory
    known.remember(memory, "Via: 1.1 edge", ("via", "1.1 edge"), 13)
    assert memory["Via: 1.1 edge"] == ("via", "1.1 edge")


def test_the_texts_seen_once_are_bounded():
    memory = known.Memory()
    for number in range(known.MAX * 3):
        known.remember(memory, "X-Id: %d" % number, None, 10)
    assert len(memory.seen_once) <= known.MAX and not memory
