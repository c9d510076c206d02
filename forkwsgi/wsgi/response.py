"""PEP 3333: start_response, wsgi.file_wrapper, and writing the app's response.

The response writer knows WSGI and HTTP framing but no sockets: it is given
``send(bytes)`` and ``sendfile(fd, offset, count)`` callables by the worker.
"""
import io
import os
import stat

from forkwsgi.compiled import compiled
from forkwsgi.http.response import (LAST_CHUNK, NO_BODY_STATUSES, InvalidResponse, chunk, python_read_start,
                                    read_start)

__all__ = ["FileWrapper", "ReadingFileWrapper", "PythonResponse", "Response"]


class FileWrapper:
    """``wsgi.file_wrapper``: the worker sends regular files with os.sendfile."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendfile_span(self):
        """(fd, offset, size) if the wrapped object is a regular file at a known position, else None."""
        try:
            fd = self.filelike.fileno()
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        return fd, offset, max(info.st_size - offset, 0)


class ReadingFileWrapper(FileWrapper):
    """``wsgi.file_wrapper`` with sendfile off (--no-sendfile): the file is read and written."""

    def sendfile_span(self):
        return None


class PythonResponse:
    """One request's response: start_response, write(), and framing on the wire.

    The reference, and what runs where nothing is compiled. Its C twin (_response.c) takes over
    what every request runs, and runs this class's write_result, write_more and _send_file for
    the rest (``Response``, below)."""

    __slots__ = ("send", "sendfile", "is_head", "version11", "keep_alive", "extra", "closing",
                 "status", "code", "headers", "fields", "app_closes", "head_sent", "chunked", "length", "sent",
                 "rest")

    def __init__(self, send, sendfile, request, keep_alive, extra, closing=None):
        self.send = send
        self.sendfile = sendfile
        self.closing = closing  # asked as the head goes out: has the server begun to stop meanwhile?
        self.is_head = request.method == "HEAD"
        self.version11 = request.version == "HTTP/1.1"
        self.keep_alive = keep_alive
        self.extra = extra  # "Date: ...\r\nServer: ...\r\n"
        self.status = None
        self.code = 0
        self.headers = None
        self.fields = ""
        self.length = None
        self.app_closes = False
        self.head_sent = False
        self.chunked = False
        self.sent = 0
        self.rest = None  # the app's iterator, while its body waits for the client (write_more)

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.code, self.fields, self.length, self.app_closes = (read_start(status, headers)
                                                                or python_read_start(status, headers))
        self.status = status
        self.headers = headers
        return self.write

    def _render_head(self, known_length):
        """Decide framing, then the head's bytes. Called once, just before the first body byte."""
        if self.status is None:
            raise InvalidResponse("the application did not call start_response")
        if self.app_closes or (self.closing is not None and self.closing()):
            self.keep_alive = False
        framing = self.extra
        if self.is_head:
            # A HEAD response never carries body bytes, so it needs no framing of its own. Its
            # length is told only when known: an app that returns an empty body for HEAD
            # (Werkzeug) must not claim Content-Length: 0 for a GET that has a body (RFC 9110 8.6).
            if self.length is None and known_length and self.code not in NO_BODY_STATUSES:
                framing += "Content-Length: %d\r\n" % known_length
        elif self.length is None and self.code not in NO_BODY_STATUSES:
            if known_length is not None:
                self.length = known_length
                framing += "Content-Length: %d\r\n" % known_length
            elif self.version11:
                self.chunked = True
                framing += "Transfer-Encoding: chunked\r\n"
            else:
                self.keep_alive = False  # HTTP/1.0 without a length: the close ends the body
        if not self.keep_alive:
            framing += "Connection: close\r\n"
        elif not self.version11:
            framing += "Connection: keep-alive\r\n"
        self.head_sent = True
        return ("HTTP/1.1 %s\r\n%s%s\r\n" % (self.status, self.fields, framing)).encode("latin-1")

    def _frame(self, data):
        """The wire bytes for body ``data``: truncated to Content-Length, chunked, or nothing for HEAD."""
        if self.is_head or self.code in NO_BODY_STATUSES:
            return b""
        if self.length is not None:
            room = self.length - self.sent
            if len(data) > room:
                data = data[:room]
        self.sent += len(data)
        if self.chunked and data:
            return chunk(data)
        return data

    def write(self, data, wait=True):
        """The ``write()`` callable (which waits while the client is behind: it cannot be left and
        taken up again), and the path for every streamed body chunk (which need not wait)."""
        if type(data) is not bytes:
            raise InvalidResponse("response body must be bytes, got %s" % type(data).__name__)
        if not data:
            return
        if not self.head_sent:
            self.send(self._render_head(None) + self._frame(data), wait)
        else:
            framed = self._frame(data)
            if framed:
                self.send(framed, wait)

    def write_result(self, result, room=None):
        """Send the app's return value, then finish the message.

        With ``room`` (a callable saying whether the client keeps up), an iterable is not written
        past a full output buffer: True then, and write_more goes on once the client has taken
        some. A list is in memory already: it is queued whole."""
        if type(result) is list or type(result) is tuple:
            if not self.head_sent:
                for item in result:
                    if type(item) is not bytes:
                        raise InvalidResponse("response body must be bytes, got %s" % type(item).__name__)
                body = result[0] if len(result) == 1 else b"".join(result)
                self.send(self._render_head(len(body)) + self._frame(body), room is None)
            else:
                for item in result:
                    self.write(item, room is None)
        elif isinstance(result, FileWrapper) and not self.head_sent and result.sendfile_span():
            self._send_file(*result.sendfile_span())
        else:
            self.rest = iter(result)
            return self.write_more(room)
        self.finish()
        return False

    def write_more(self, room=None):
        """Go on with the app's iterable (see write_result); True if the client is behind again."""
        write = self.write
        wait = room is None
        for item in self.rest:
            write(item, wait)
            if not wait and not room():
                return True
        self.rest = None
        self.finish()
        return False

    def _send_file(self, fd, offset, size):
        """Head, then the file straight from the page cache with os.sendfile."""
        self.send(self._render_head(size))
        if self.is_head or self.code in NO_BODY_STATUSES:
            return
        count = size if self.length is None else min(size, self.length)
        self.sent += self.sendfile(fd, offset, count)

    def finish(self):
        """End the message; a body shorter than its Content-Length forces the connection closed."""
        if not self.head_sent:
            self.send(self._render_head(0), False)
        elif self.chunked:
            self.send(LAST_CHUNK, False)
        if (self.length is not None and self.sent < self.length and not self.is_head
                and self.code not in NO_BODY_STATUSES):
            self.keep_alive = False


_bind = compiled("forkwsgi.wsgi._response", "bind")

# What a request's response is: the C twin where it was built, given the reference's start readers,
# its error type, and the functions it runs for a body already begun, an iterable or a file.
Response = PythonResponse if _bind is None else _bind(read_start, python_read_start, InvalidResponse,
                                                      PythonResponse.write_result, PythonResponse.write_more,
                                                      PythonResponse._send_file)
