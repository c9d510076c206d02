"""Response framing, sans I/O: what goes on the wire for each kind of app result."""
import pytest

from forkwsgi.http.head import Request
from forkwsgi.wsgi.response import Response


def _run(method, result, headers=(), version="HTTP/1.1"):
    sent = []
    request = Request(method, "/", version, [("host", "x")])
    response = Response(lambda data, wait=True: sent.append(data), None, request, True, "")
    response.start_response("200 OK", list(headers))
    response.write_result(result)
    return b"".join(sent), response


def _head(wire):
    head, _, body = wire.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


@pytest.mark.parametrize("result", [(b"chunk%d" % i for i in range(3)), iter([b"a", b"b"]), iter([])],
                         ids=["generator", "iterator", "empty-iterator"])
def test_head_of_a_streamed_response_sends_no_body_bytes(result):
    wire, response = _run("HEAD", result)
    head, body = _head(wire)
    assert body == b"" and "transfer-encoding" not in head and "content-length" not in head
    assert response.keep_alive


def test_get_of_a_streamed_response_is_chunked():
    wire, _ = _run("GET", (b"x" for _ in range(2)))
    head, body = _head(wire)
    assert "transfer-encoding: chunked" in head and body == b"1\r\nx\r\n1\r\nx\r\n0\r\n\r\n"


def test_head_with_an_empty_body_does_not_claim_length_zero():
    wire, _ = _run("HEAD", [b""])
    head, body = _head(wire)
    assert "content-length" not in head and body == b""


def test_head_with_the_full_body_tells_its_length_but_sends_none():
    wire, _ = _run("HEAD", [b"hello"])
    head, body = _head(wire)
    assert "content-length: 5" in head and body == b""


def test_head_keeps_the_apps_own_content_length():
    wire, _ = _run("HEAD", [b""], headers=[("Content-Length", "1234")])
    head, body = _head(wire)
    assert "content-length: 1234" in head and body == b""


def test_validation_caches_never_let_a_bad_status_or_header_through():
    """Statuses and header pairs found valid are remembered; whatever is new, or not exactly a str, is
    checked again, and a cache that fills up starts over."""
    from forkwsgi.http import known, response as framing
    assert framing.check_status("200 OK") == 200
    assert framing.check_status("200 OK") == 200  # from the cache
    headers = [("Content-Type", "text/plain"), ("Content-Length", "5"), ("Connection", "Close"), ("TE", "x")]
    read = ("Content-Type: text/plain\r\nContent-Length: 5\r\n", 5, True)  # hop-by-hop fields left out
    assert framing.response_fields(headers) == read
    assert framing.response_fields(list(headers)) == read  # from the cache

    class Sneaky(str):
        """Hashes and compares like a pair already found valid."""
        def __hash__(self):
            return hash("text/plain")

        def __eq__(self, other):
            return True

    bad = [("200 OK\r\nX: y", "invalid status"), (200, "invalid status")]
    for status, needle in bad:
        with pytest.raises(framing.InvalidResponse, match=needle):
            framing.check_status(status)
    for headers, needle in (([("Content-Type", "text/plain\r\nX: y")], "invalid value"),
                            ([("Content-Type", Sneaky("text/plain\r\nX: y"))], "invalid value"),
                            ([(Sneaky("Content-Type"), "text/plain")], "invalid header name"),
                            ([("Content-Type", b"text/plain")], "invalid value"),
                            ([("Content Type", "text/plain")], "invalid header name"),
                            ([("Content-Type", "text/plain", "x")], "not a \\(name, value\\) tuple"),
                            ([["Content-Type", "text/plain"]], "not a \\(name, value\\) tuple"),
                            ([("Content-Length", "5x")], "invalid Content-Length"),
                            ([("Content-Type", ["text/plain"])], "invalid value"),
                            ((("Content-Type", "text/plain"),), "must be a list")):
        with pytest.raises(framing.InvalidResponse, match=needle):
            framing.response_fields(headers)
    for number in range(known.MAX + 10):  # fills the cache: it starts over, still checking
        assert framing.response_fields([("X-Id", str(number))])[0] == "X-Id: %d\r\n" % number
    assert len(framing._VALID_FIELDS) <= known.MAX
    with pytest.raises(framing.InvalidResponse):
        framing.response_fields([("X-Id", "1\n")])


def test_a_streamed_body_stops_while_the_client_is_behind_and_goes_on_where_it_stopped():
    sent = []
    waits = []

    def send(data, wait=True):
        sent.append(data)
        waits.append(wait)
    request = Request("GET", "/", "HTTP/1.1", [("host", "x")])
    response = Response(send, None, request, True, "")
    response.start_response("200 OK", [("Content-Length", "6")])
    produced = []

    def body():
        for part in (b"ab", b"cd", b"ef"):
            produced.append(part)
            yield part
    room = iter([True, False, True, True])
    assert response.write_result(body(), lambda: next(room)) is True
    assert produced == [b"ab", b"cd"], "nothing is taken from the app past a full buffer"
    assert response.write_more(lambda: next(room)) is False
    assert produced == [b"ab", b"cd", b"ef"]
    assert b"".join(sent).endswith(b"\r\n\r\nabcdef") and response.keep_alive
    assert not any(waits), "a body that can stop never waits for the client"


def test_a_list_body_is_queued_whole_without_waiting():
    sent = []
    request = Request("GET", "/", "HTTP/1.1", [("host", "x")])
    response = Response(lambda data, wait=True: sent.append((data, wait)), None, request, True, "")
    response.start_response("200 OK", [])
    assert response.write_result([b"x" * 100], lambda: False) is False
    assert len(sent) == 1 and sent[0][1] is False and sent[0][0].endswith(b"x" * 100)


# ----- the compiled response head reader against the Python one

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from forkwsgi.http import response as framing  # noqa: E402

compiled_only = pytest.mark.skipif(framing._fast_read_start is None, reason=(
    "the compiled response head reader is not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS "
    "or FORKWSGI_PURE_PYTHON)"))
STATUSES = st.sampled_from(["200 OK", "404 Not Found", "204 No Content", "099 Low", "200OK", "20 OK", "2000 OK",
                            "500 ", "200 caf\xe9", "200 \u2603", "200 a\tb", "200 a\nb", "200 a\x7f", "x00 OK",
                            b"200 OK", None]) | st.text(max_size=12)
NAMES = st.sampled_from(["Content-Type", "Content-Length", "content-length", "CONTENT-LENGTH", "Connection",
                         "connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade",
                         "Proxy-Connection", "Set-Cookie", "X-Id", "Bad Name", "", "X\xe9", "X:Y", "teA"])
VALUES = st.sampled_from(["", "0", "14", "0014", "1" * 30, "\xb2", "1\xb2", "-1", " 5", "close", "Close, x",
                          "keep-alive", "CLOSE", "a\tb", "a\rb", "a\nb", "a\x00", "\x7f", "caf\xe9", "\u2603",
                          "x" * 300]) | st.text(max_size=8)
ITEMS = st.tuples(NAMES, VALUES) | st.sampled_from([("a",), ("a", "b", "c"), ["X-Id", "1"], (b"X", "1"),
                                                    ("X", 1), "X-Id: 1"])
HEADER_LISTS = st.lists(ITEMS, max_size=6) | st.sampled_from([(("X", "1"),), None, "X: 1"])


def _outcome(read, status, headers):
    try:
        code, fields, length, close = read(status, headers)
    except Exception as exc:  # the same kind of refusal, word for word
        return type(exc), str(exc)
    return code, fields, fields.isascii(), length, close  # (isascii reads the str's own flag: canonical text)


@compiled_only
@settings(max_examples=600, deadline=None)
@given(STATUSES, HEADER_LISTS)
def test_the_compiled_reader_answers_as_the_python_one(status, headers):
    def compiled(status, headers):  # as a Response reads its start: the Python reader where C declines
        return framing.read_start(status, headers) or framing.python_read_start(status, headers)
    assert framing.read_start is framing._fast_read_start
    assert _outcome(compiled, status, headers) == _outcome(framing.python_read_start, status, headers)


@compiled_only
def test_the_compiled_reader_takes_common_responses_itself():
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "1234"),
               ("Set-Cookie", "sid=9b2c7f4e; Path=/; HttpOnly"), ("Connection", "close")]
    assert framing._fast_read_start("200 OK", headers) == (
        200, "Content-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\n"
             "Set-Cookie: sid=9b2c7f4e; Path=/; HttpOnly\r\n", 1234, True)
    assert framing._fast_read_start("304 Not Modified", []) == (304, "", None, False)


def test_the_date_follows_the_wall_clock_each_second_and_when_it_steps_back():
    dates = framing.DateCache()
    first = dates.get(1_700_000_000.2)
    assert first == "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\nServer: forkwsgi\r\n"
    assert dates.get(1_700_000_000.9) is first  # the same second: formatted once
    assert "22:13:21" in dates.get(1_700_000_001.0)
    assert "22:13:19" in dates.get(1_699_999_999.5)  # a clock stepped back is followed, not ignored


# ----- the compiled response writer against the Python one

import tempfile  # noqa: E402

from forkwsgi.wsgi import response as writer  # noqa: E402

compiled_writer_only = pytest.mark.skipif(writer.Response is writer.PythonResponse, reason=(
    "the compiled response writer is not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS or "
    "FORKWSGI_PURE_PYTHON)"))
BODY_ITEMS = st.lists(st.sampled_from([b"", b"a", b"hello", b"x" * 70, "text", None, bytearray(b"ba")]),
                      max_size=4)
RESULTS = st.tuples(st.sampled_from(["list", "tuple", "generator", "closing-iterable", "file"]), BODY_ITEMS)
WRITER_STATUSES = st.sampled_from(["200 OK", "204 No Content", "304 Not Modified", "101 Switching Protocols",
                                   "404 Not Found", "200 caf\xe9", "200 \u2603", "abc", None])
WRITER_HEADERS = st.lists(st.sampled_from([("Content-Type", "text/plain"), ("Content-Length", "5"),
                                           ("Content-Length", "0"), ("Content-Length", "9" * 25),
                                           ("Connection", "close"), ("Connection", "keep-alive"),
                                           ("X-Note", "caf\xe9"), ("X-Snow", "\u2603"), ("Bad Name", "x")]),
                          max_size=3)
SCENARIOS = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "HEAD", "POST"]),
    "version": st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
    "keep_alive": st.booleans(),
    "closing": st.sampled_from([None, True, False]),
    "extra": st.sampled_from(["", "Date: Sun, 06 Dec 2026 22:00:00 GMT\r\nServer: forkwsgi\r\n", "X: \u2603\r\n"]),
    "starts": st.lists(st.tuples(WRITER_STATUSES, WRITER_HEADERS, st.booleans()), max_size=3),
    "writes": BODY_ITEMS,
    "result": RESULTS,
    "room": st.none() | st.lists(st.booleans(), max_size=8),
    "by_keyword": st.booleans(),
})


def _drive(cls, scenario):
    """What a response of ``cls`` does with one app's behaviour: every send, every refusal, and its
    state after, as comparable values."""
    events = []

    def send(data, wait=None):
        events.append(("send", bytes(data), wait))
    closing = None if scenario["closing"] is None else (lambda: scenario["closing"])
    request = Request(scenario["method"], "/", scenario["version"], [("host", "x")])
    made = (send, lambda fd, offset, count: count, request, scenario["keep_alive"], scenario["extra"], closing)
    if scenario["by_keyword"]:  # as a hook or a test might make one
        response = cls(*made[:3], **dict(zip(("keep_alive", "extra", "closing"), made[3:])))
    else:
        response = cls(*made) if closing is not None else cls(*made[:5])

    def step(call, *args):
        try:
            value = call(*args)
            if callable(value):  # start_response's write: this response's own
                value = ("write of the response", value.__self__ is response and value.__name__ == "write")
            events.append(("returned", value))
        except Exception as exc:
            events.append(("raised", type(exc), str(exc)))
    for status, headers, with_exc_info in scenario["starts"]:
        exc_info = (ValueError, ValueError("app failed"), None) if with_exc_info else None
        step(response.start_response, status, headers, exc_info)
    for item in scenario["writes"]:
        step(response.write, item)
    kind, items = scenario["result"]
    result = {"list": lambda: list(items), "tuple": lambda: tuple(items), "generator": lambda: iter(items),
              "closing-iterable": lambda: _ClosingIterable(items),
              "file": lambda: writer.FileWrapper(tempfile.TemporaryFile())}[kind]()
    if kind == "file":  # a regular file at a known position: sent by sendfile, its size in the head
        result.filelike.write(b"".join(item for item in items if type(item) is bytes))
        result.filelike.seek(0)
    room = None
    if scenario["room"] is not None:
        answers = iter(scenario["room"])
        room = lambda: next(answers, True)  # noqa: E731
    step(response.write_result, result, room)
    for _ in range(10):
        if response.rest is None:
            break
        step(response.write_more, room)
    state = {name: getattr(response, name) for name in ("status", "code", "headers", "fields", "length",
                                                        "head_sent", "chunked", "sent", "is_head", "version11",
                                                        "app_closes")}
    state["keep_alive"] = bool(response.keep_alive)
    state["rest"] = response.rest is None
    if kind == "file":
        result.close()
    return events, state


class _ClosingIterable:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def close(self):
        pass


@compiled_writer_only
@settings(max_examples=1500, deadline=None)
@given(SCENARIOS)
def test_the_compiled_writer_sends_what_the_python_one_sends(scenario):
    """Every byte sent (with whether it may wait), every refusal word for word, and the state a
    response is left in (what the handler, the access log and hooks read) are the same."""
    assert _drive(writer.Response, scenario) == _drive(writer.PythonResponse, scenario)


@compiled_writer_only
def test_the_compiled_writer_sends_a_list_body_with_its_head_in_one_call():
    sent = []
    request = Request("GET", "/", "HTTP/1.1", [("host", "x")])
    response = writer.Response(lambda data, wait=True: sent.append((data, wait)), None, request, True,
                               "Server: forkwsgi\r\n")
    response.start_response("200 OK", [("Content-Type", "text/plain")])
    assert response.write_result([b"Hello, ", b"world!\n"]) is False
    assert sent == [(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: forkwsgi\r\nContent-Length: 14\r\n"
                     b"\r\nHello, world!\n", True)]
    assert response.keep_alive and response.sent == 14 and response.length == 14
