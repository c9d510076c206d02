"""Bodies kept in memory (Content-Length up to 1 MiB) as the pieces that came, joined once.

The reader hands a body's bytes straight to it when its buffer is empty (the
direct path: no copy through the buffer), and through the buffer otherwise (a
head and body in one read). Either way the app must get the exact bytes, and
whatever follows the body must stay in the buffer as the next request.
"""
import pytest

from forkwsgi.http import parser
from forkwsgi.http.body import FixedLengthBody
from forkwsgi.http.parser import Limits, RequestReader


def head(length, *extra):
    return b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (
        length, b"".join(line + b"\r\n" for line in extra))


def body_of(size, seed=0):
    """Bytes where a piece out of place or lost shows."""
    return bytes((i * 7 + seed) % 251 for i in range(size))


def complete(reader):
    request = reader.next_request()
    assert request is not None
    return request


@pytest.mark.parametrize("sizes", [[1, 1, 1], [10, 990], [4096] * 10, [65536, 65536, 3], [1000, 1]])
def test_body_in_pieces_straight_from_the_reads(sizes):
    """Head first, then the body in reads of these sizes: none goes through the buffer."""
    body = body_of(sum(sizes))
    reader = RequestReader(Limits())
    reader.feed(head(len(body)))
    assert reader.next_request() is None  # the body is coming
    at = 0
    for size in sizes:
        reader.feed(body[at:at + size])
        at += size
        assert not reader.buf  # taken by the body as it came
        if at < len(body):
            assert reader.next_request() is None
    request = complete(reader)
    assert request.content_length == len(body) and request.body.read() == body
    assert not reader.in_progress


@pytest.mark.parametrize("first", [0, 1, 100, 4999, 5000])
def test_body_partly_in_the_read_of_its_head(first):
    """Head and the first ``first`` body bytes in one read (through the buffer), the rest straight."""
    body = body_of(5000, seed=3)
    reader = RequestReader(Limits())
    reader.feed(head(len(body)) + body[:first])
    if first < len(body):
        assert reader.next_request() is None
        for at in range(first, len(body), 1500):
            reader.feed(body[at:at + 1500])
    request = complete(reader)
    assert request.body.read() == body
    assert not reader.buf and not reader.in_progress


@pytest.mark.parametrize("step", [1, 7, 64])
def test_body_through_the_buffer_whatever_the_split(step):
    """Head, body and a pipelined request fed in small pieces: some land in the buffer, some not."""
    body = body_of(300, seed=5)
    data = head(len(body)) + body + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    reader = RequestReader(Limits())
    requests = []
    for at in range(0, len(data), step):
        reader.feed(data[at:at + step])
        while True:
            request = reader.next_request()
            if request is None:
                break
            requests.append((request.target, request.body.read() if request.body else None))
    assert requests == [("/upload", body), ("/next", None)]


@pytest.mark.parametrize("split", ["one read", "body end with the next head", "body end with the next head cut"])
def test_pipelined_request_after_the_body_stays_for_later(split):
    """The bytes after a body, in the same read as its end, are the next request: left in the buffer."""
    body = body_of(2000, seed=1)
    second_body = b"second"
    nxt = head(len(second_body)).replace(b"/upload", b"/second") + second_body
    reader = RequestReader(Limits())
    if split == "one read":
        reader.feed(head(len(body)) + body + nxt)
    else:
        reader.feed(head(len(body)) + body[:500])
        assert reader.next_request() is None
        reader.feed(body[500:1200])  # straight to the body
        assert not reader.buf
        cut = len(nxt) if split == "body end with the next head" else 20
        reader.feed(body[1200:] + nxt[:cut])  # the body's end taken, the rest to the buffer
        assert bytes(reader.buf) == nxt[:cut]
        reader.feed(nxt[cut:])
    first = complete(reader)
    assert first.target == "/upload" and first.body.read() == body
    assert bytes(reader.buf) == nxt
    second = complete(reader)
    assert second.target == "/second" and second.body.read() == second_body
    assert not reader.buf and reader.next_request() is None


def test_read_size_grows_while_a_big_body_comes():
    """65536 at a time normally; while a body bigger than that is coming, up to what is left of it,
    never more than BODY_READ_SIZE."""
    reader = RequestReader(Limits())
    assert reader.read_size() == 65536 == parser.READ_SIZE
    body = body_of(parser.SPOOL_SIZE)  # the biggest body kept in memory
    reader.feed(head(len(body)))
    assert reader.next_request() is None
    at = 0
    sizes = []
    while at < len(body):
        size = reader.read_size()
        sizes.append(size)
        assert 65536 <= size <= parser.BODY_READ_SIZE
        assert size <= max(len(body) - at, 65536)  # never past the body's end while it is big
        reader.feed(body[at:at + size])
        at += size
    assert max(sizes) == parser.BODY_READ_SIZE > 65536
    request = complete(reader)
    assert request.body.read() == body
    assert reader.read_size() == 65536  # the body is in: back to the usual size


def test_read_size_for_a_body_left_just_above_the_usual_read():
    reader = RequestReader(Limits())
    reader.feed(head(100_000))
    reader.next_request()
    assert reader.read_size() == 100_000  # all that is left, in one read
    reader.feed(b"x" * 40_000)
    assert reader.read_size() == 65536  # 60000 left: the usual size


@pytest.mark.parametrize("framing, expected", [(b"Content-Length: %d" % (10 << 20), parser.BODY_READ_SIZE),
                                               (b"Transfer-Encoding: chunked", 65536)],
                         ids=["spooled 10 MiB", "chunked"])
def test_read_size_never_above_the_cap(framing, expected):
    """A spooled 10 MiB body reads at most BODY_READ_SIZE at a time; a chunked one, the usual size."""
    reader = RequestReader(Limits())
    reader.feed(b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
    assert reader.next_request() is None
    assert reader.read_size() == expected
    reader.discard()


def test_no_continue_once_body_bytes_came_straight():
    """100 Continue is for a client still waiting: not once some of its body came by the direct path."""
    waiting = RequestReader(Limits())
    waiting.feed(head(10, b"Expect: 100-continue"))
    assert waiting.next_request() is None
    assert waiting.needs_continue() is True  # nothing of the body yet

    sending = RequestReader(Limits())
    sending.feed(head(10, b"Expect: 100-continue"))
    assert sending.next_request() is None
    sending.feed(b"abc")
    assert not sending.buf  # taken straight by the body
    assert sending.needs_continue() is False
    sending.feed(b"defghij")
    request = complete(sending)
    assert request.expect_continue and request.body.read() == b"abcdefghij"


def test_no_continue_once_body_bytes_came_with_the_head():
    reader = RequestReader(Limits())
    reader.feed(head(10, b"Expect: 100-continue") + b"abc")
    assert reader.next_request() is None
    assert reader.needs_continue() is False


def test_discard_mid_body_drops_the_pieces():
    reader = RequestReader(Limits())
    reader.feed(head(1000))
    assert reader.next_request() is None
    reader.feed(b"a" * 300)
    reader.feed(b"b" * 300)
    body = reader.body
    assert type(body) is FixedLengthBody and body.received == 600 and body.pieces
    reader.discard()
    assert body.pieces == [] and reader.body is None and reader.request is None
    assert not reader.buf and not reader.in_progress


def test_close_mid_body_drops_the_pieces():
    body = FixedLengthBody(100)
    assert body.take(b"x" * 30) == b""
    buf = bytearray(b"y" * 20)
    assert body.feed(buf) is False and not buf
    assert body.received == 50 and body.pieces
    body.close()
    assert body.pieces == []


def test_take_leaves_what_follows_the_body():
    body = FixedLengthBody(5)
    assert body.take(b"abc") == b""
    assert body.take(b"deGET /") == b"GET /"
    assert body.remaining == 0 and body.result().read() == b"abcde"
