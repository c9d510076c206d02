"""Push-style request body receivers.

Each receiver is fed the connection's buffer (a bytearray), consumes what
belongs to the body, writes decoded bytes to a sink and says when the body is
complete. Bytes after the body stay in the buffer: they are the next
pipelined request.

Chunked framing is read in time linear in the bytes received: a line not yet
complete is never searched twice, and chunk lines are checked piece by piece
by expressions that cannot backtrack. Lines end at the first LF, as in the
head: a bare LF is 400, and a line too long is refused as soon as it is
provably so (not counting a last CR that may start the CRLF).

A receiver owns its sink until the body is complete: a body refused on the
way (413, bad framing, a spool write that fails) closes it at once, and so
does ``close()`` for one abandoned, so that no spool file stays open.
"""
import io
import re

from .errors import BadRequest, HeaderFieldsTooLarge, PayloadTooLarge
from .fields import TOKEN_CLASS, parse_trailer
from .pieces import PiecesFile

# Each is one greedy run with nothing after it: a match cannot backtrack.
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]*")
_WS_RUN = re.compile(rb"[ \t]*")
_TOKEN_RUN = re.compile(rb"[" + TOKEN_CLASS.encode() + rb"]*")
# Inside a quoted-string: qdtext, or a quoted-pair (the two start differently).
_QUOTED_RUN = re.compile(rb'(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*')
MAX_CHUNK_LINE = 4096
MAX_CHUNK_SIZE_DIGITS = 16  # more cannot be honest: refused rather than turned into huge ints
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
_BytesIO = io.BytesIO  # (io has a module __getattr__: io.BytesIO is a slow, unspecialized lookup)


class FixedLengthBody:
    """A body framed by Content-Length.

    With no ``sink``, the body stays in memory as the pieces that came, and the app reads them
    as one file (pieces.py) without their being joined. With a ``sink`` (a spool file, for big
    bodies), each piece is written to it as it comes.
    """

    __slots__ = ("length", "remaining", "sink", "pieces")

    def __init__(self, length, sink=None):
        self.length = length
        self.remaining = length
        self.sink = sink
        self.pieces = []

    @property
    def received(self):
        return self.length - self.remaining

    def rescan(self):
        pass

    def close(self):
        """The body will not be read: close its sink (and any spool file)."""
        self.pieces = []
        if self.sink is not None:
            self.sink.close()

    def _keep(self, piece):
        if self.sink is None:
            self.pieces.append(piece)
            return
        try:
            self.sink.write(piece)
        except BaseException:  # the spool cannot take it (disk full): nobody will read the rest
            self.sink.close()
            raise

    def take(self, data):
        """Consume body bytes from the front of ``data`` (bytes just read, not yet in the
        connection's buffer: kept without a copy) for a body kept in memory; return the rest."""
        take = min(self.remaining, len(data))
        self.pieces.append(data if take == len(data) else data[:take])
        self.remaining -= take
        return data[take:] if take < len(data) else b""

    def feed(self, buf):
        """Consume body bytes from ``buf``; return True once complete."""
        if self.remaining:
            take = min(self.remaining, len(buf))
            if take:
                self._keep(bytes(buf[:take]) if take < len(buf) else bytes(buf))
                del buf[:take]
                self.remaining -= take
        return self.remaining == 0

    def result(self):
        """The whole body, as a file at its start (once complete)."""
        if self.sink is None:
            pieces, self.pieces = self.pieces, []
            return _BytesIO(pieces[0]) if len(pieces) == 1 else PiecesFile(pieces)
        self.sink.seek(0)
        return self.sink


def parse_chunk_line(line):
    """The size of a chunk from its line (bytes, no CRLF): chunk-size [ chunk-ext ] (RFC 9112 7.1.1).

    Trailing spaces and tabs are tolerated; extensions are checked and ignored.
    """
    digits = _HEX_RUN.match(line).end()
    if not digits or digits > MAX_CHUNK_SIZE_DIGITS:
        raise BadRequest("invalid chunk size line %r" % line[:40])
    if digits < len(line):
        _check_chunk_extensions(line, digits)
    return int(line[:digits], 16)


def _check_chunk_extensions(line, pos):
    """*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) BWS, from ``pos``."""
    end = len(line)
    ws = _WS_RUN.match
    token = _TOKEN_RUN.match
    while True:
        pos = ws(line, pos).end()
        if pos == end:
            return
        if line[pos] != 0x3b:  # ;
            break
        pos = ws(line, pos + 1).end()
        name_end = token(line, pos).end()
        if name_end == pos:
            break
        pos = ws(line, name_end).end()
        if pos < end and line[pos] == 0x3d:  # =
            pos = ws(line, pos + 1).end()
            if pos < end and line[pos] == 0x22:  # "
                close = _QUOTED_RUN.match(line, pos + 1).end()
                if close >= end or line[close] != 0x22:
                    break
                pos = close + 1
            else:
                value_end = token(line, pos).end()
                if value_end == pos:
                    break
                pos = value_end
    raise BadRequest("invalid chunk size line %r" % line[:40])


class ChunkedBody:
    """A body framed by ``Transfer-Encoding: chunked`` (RFC 9112 section 7.1)."""

    SIZE, DATA, DATA_END, TRAILER, DONE = _SIZE, _DATA, _DATA_END, _TRAILER, _DONE

    __slots__ = ("sink", "limit", "max_trailers", "max_trailer_size", "state", "remaining",
                 "total", "trailers", "_scan")

    def __init__(self, sink, limit=0, max_trailers=100, max_trailer_size=8190):
        self.sink = sink
        self.limit = limit
        self.max_trailers = max_trailers
        self.max_trailer_size = max_trailer_size
        self.state = _SIZE
        self.remaining = 0
        self.total = 0
        self.trailers = 0
        self._scan = 0  # the line now being read, at the start of buf, holds no LF before _scan

    def rescan(self):
        """The buffer was changed from outside: search the current line from its start again."""
        self._scan = 0

    def result(self):
        """The whole decoded body, as a file at its start (once complete)."""
        self.sink.seek(0)
        return self.sink

    def close(self):
        """The body will not be read: close its sink (and any spool file)."""
        self.sink.close()

    def feed(self, buf):
        """Consume chunked bytes from ``buf``; return True once the last chunk and trailers are in."""
        # Consumed bytes are deleted once, on the way out: pos walks the buffer meanwhile.
        pos = 0
        state = self.state
        size = len(buf)
        try:
            while True:
                if state == _DATA:
                    take = size - pos
                    if take <= 0:
                        return False
                    if take > self.remaining:
                        take = self.remaining
                    self.sink.write(buf[pos:pos + take])
                    pos += take
                    self.remaining -= take
                    if self.remaining:
                        return False
                    state = _DATA_END
                elif state == _SIZE:
                    line = self._line(buf, pos, MAX_CHUNK_LINE, BadRequest, "chunk size line")
                    if line is None:
                        return False
                    pos = self._scan
                    chunk = parse_chunk_line(line)
                    if chunk == 0:
                        state = _TRAILER
                        continue
                    self.total += chunk
                    if self.limit and self.total > self.limit:
                        raise PayloadTooLarge("chunked body larger than %d bytes" % self.limit)
                    self.remaining = chunk
                    state = _DATA
                elif state == _DATA_END:
                    if size - pos < 2:
                        if size > pos and buf[pos] != 13:
                            raise BadRequest("chunk data not followed by CRLF")
                        return False
                    if buf[pos] != 13 or buf[pos + 1] != 10:
                        raise BadRequest("chunk data not followed by CRLF")
                    pos += 2
                    self._scan = pos
                    state = _SIZE
                elif state == _TRAILER:
                    line = self._line(buf, pos, self.max_trailer_size, HeaderFieldsTooLarge, "trailer field")
                    if line is None:
                        return False
                    pos = self._scan
                    if not line:
                        state = _DONE
                        return True
                    self.trailers += 1
                    if self.trailers > self.max_trailers:
                        raise HeaderFieldsTooLarge("more than %d trailer fields" % self.max_trailers)
                    parse_trailer(line.decode("latin-1"))
                else:
                    return True
        except BaseException:  # refused (413, bad framing) or not spooled: nobody will read this body
            self.sink.close()
            raise
        finally:
            self.state = state
            if pos:
                del buf[:pos]
                self._scan -= pos
                if self._scan < 0:
                    self._scan = 0

    def _line(self, buf, pos, limit, too_long, what):
        """The line starting at ``pos`` (bytes, without CRLF), or None if it is not all there yet.

        On a line, ``_scan`` is left just past it.
        """
        scan = self._scan
        lf = buf.find(b"\n", scan if scan > pos else pos)
        if lf < 0:
            size = len(buf) - pos
            if size and buf[-1] == 13:
                size -= 1  # maybe the start of CRLF
            self._scan = len(buf)
            if size > limit:
                raise too_long("%s longer than %d bytes" % (what, limit))
            return None
        cr = lf > pos and buf[lf - 1] == 13
        end = lf - 1 if cr else lf
        if end - pos > limit:
            raise too_long("%s longer than %d bytes" % (what, limit))
        if not cr:
            raise BadRequest("bare LF in chunked framing")
        self._scan = lf + 1
        return bytes(buf[pos:end])


class StreamedBody:
    """``wsgi.input`` for a body too big to wait for: read as the app asks, from the connection.

    A body past the in-memory size is not spooled to disk before the app runs:
    the app gets this instead, and may refuse the request (413 on its
    CONTENT_LENGTH) before the client has sent much of it. It reads from the
    connection's raw buffer (``buf``, shared with the reader: bytes after the
    body stay there for the next request) and, when that is empty, asks
    ``receive()`` (set by the worker) for more, which waits, bounded, for the
    client. Whatever of the body the app leaves unread is not waited for: the
    response then closes the connection (``complete`` is False).
    """

    __slots__ = ("remaining", "buf", "receive", "send_continue", "_scanned")

    def __init__(self, length, buf):
        self.remaining = length
        self.buf = buf
        self.receive = None  # () -> bytes of the connection, b"" once the client closed
        self.send_continue = None  # () -> None: the 100 Continue a client that asked for it waits for
        self._scanned = 0  # buf[:_scanned] (within the body) holds no LF: readline does not look again

    @property
    def complete(self):
        return self.remaining == 0

    def _available(self):
        """Body bytes in the buffer now, asking the client for more when there are none."""
        buf = self.buf
        if not buf:
            if self.send_continue is not None:
                send, self.send_continue = self.send_continue, None
                send()
            data = self.receive()
            if not data:
                raise BadRequest("connection closed before the request body was complete")
            buf += data
        return min(len(buf), self.remaining)

    def _take(self, count):
        buf = self.buf
        data = bytes(buf[:count])
        del buf[:count]
        self.remaining -= count
        self._scanned = max(0, self._scanned - count)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.remaining
        parts = []
        while size > 0 and self.remaining:
            data = self._take(min(size, self._available()))
            size -= len(data)
            parts.append(data)
        return b"".join(parts)

    def readline(self, size=-1):
        if size is None or size < 0:
            size = self.remaining
        parts = []
        while size > 0 and self.remaining:
            available = min(size, self._available())
            end = self.buf.find(b"\n", self._scanned, available)
            if end >= 0:
                parts.append(self._take(end + 1))
                break
            self._scanned = available
            if available == size or available == self.remaining:
                parts.append(self._take(available))
                break
            if available == len(self.buf):  # the line goes on in bytes not here yet
                data = self.receive()
                if not data:
                    raise BadRequest("connection closed before the request body was complete")
                self.buf += data
        return b"".join(parts)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while self.remaining and (hint is None or hint <= 0 or total < hint):
            line = self.readline()
            lines.append(line)
            total += len(line)
        return lines

    def __iter__(self):
        while self.remaining:
            yield self.readline()

    def rescan(self):
        pass

    def close(self):
        """Nothing to release: unread bytes stay in the connection, which the response closes."""
