"""Push-style request body receivers.

Each receiver is fed the connection's buffer (a bytearray), consumes what
belongs to the body, writes decoded bytes to a sink and says when the body is
complete. Bytes after the body stay in the buffer: they are the next
pipelined request.
"""
import re

from .errors import BadRequest, HeaderFieldsTooLarge, PayloadTooLarge

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# chunk-size [ chunk-ext ] per RFC 9112 section 7.1.1; sizes over 16 hex
# digits cannot be honest and are refused rather than turned into huge ints.
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)[ \t]*"
)
_TRAILER_LINE = re.compile(_TOKEN + rb":[ \t]*[^\x00-\x08\x0a-\x1f\x7f]*")
MAX_CHUNK_LINE = 4096


class FixedLengthBody:
    """A body framed by Content-Length."""

    __slots__ = ("remaining", "sink")

    def __init__(self, length, sink):
        self.remaining = length
        self.sink = sink

    def feed(self, buf):
        """Consume body bytes from ``buf``; return True once complete."""
        if self.remaining:
            take = min(self.remaining, len(buf))
            if take:
                self.sink.write(bytes(buf[:take]) if take < len(buf) else bytes(buf))
                del buf[:take]
                self.remaining -= take
        return self.remaining == 0


class ChunkedBody:
    """A body framed by ``Transfer-Encoding: chunked`` (RFC 9112 section 7.1)."""

    SIZE, DATA, DATA_END, TRAILER, DONE = range(5)

    def __init__(self, sink, limit=0, max_trailers=100, max_trailer_size=8190):
        self.sink = sink
        self.limit = limit
        self.max_trailers = max_trailers
        self.max_trailer_size = max_trailer_size
        self.state = self.SIZE
        self.remaining = 0
        self.total = 0
        self.trailers = 0

    def feed(self, buf):
        """Consume chunked bytes from ``buf``; return True once the last chunk and trailers are in."""
        while True:
            state = self.state
            if state == self.DATA:
                take = min(self.remaining, len(buf))
                if not take:
                    return False
                self.sink.write(bytes(buf[:take]))
                del buf[:take]
                self.remaining -= take
                if self.remaining:
                    return False
                self.state = self.DATA_END
            elif state == self.SIZE:
                line = self._line(buf, MAX_CHUNK_LINE, "chunk size line too long")
                if line is None:
                    return False
                match = _CHUNK_LINE.fullmatch(line)
                if match is None:
                    raise BadRequest("invalid chunk size line %r" % bytes(line[:40]))
                size = int(match.group(1), 16)
                if size == 0:
                    self.state = self.TRAILER
                    continue
                self.total += size
                if self.limit and self.total > self.limit:
                    raise PayloadTooLarge("chunked body larger than %d bytes" % self.limit)
                self.remaining = size
                self.state = self.DATA
            elif state == self.DATA_END:
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise BadRequest("chunk data not followed by CRLF")
                del buf[:2]
                self.state = self.SIZE
            elif state == self.TRAILER:
                line = self._line(buf, self.max_trailer_size, "trailer field too long")
                if line is None:
                    return False
                if not line:
                    self.state = self.DONE
                    return True
                self.trailers += 1
                if self.trailers > self.max_trailers:
                    raise HeaderFieldsTooLarge("too many trailer fields")
                if _TRAILER_LINE.fullmatch(line) is None:
                    raise BadRequest("invalid trailer field")
            else:
                return True

    @staticmethod
    def _line(buf, limit, too_long):
        """Pop one CRLF-terminated line from ``buf``; None if it is not all there yet."""
        end = buf.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if len(buf) > limit + 1:
                raise BadRequest(too_long)
            if b"\n" in buf:
                raise BadRequest("bare LF in chunked framing")
            return None
        line = bytes(buf[:end])
        del buf[:end + 2]
        return line
