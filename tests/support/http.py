"""Raw-socket HTTP clients: nothing is retried or reframed behind the test's back.

``ResponseReader`` is the one response reader of the tests, the load client and the
fault scenarios: it reads responses one by one from a socket (Content-Length, chunked or
close-delimited), counts every byte that came back, optionally within a deadline, and
raises ``ProtocolError`` for bytes that are not an HTTP/1.1 response.
"""
import socket
import threading
import time

from .processes import wait_for


class ProtocolError(Exception):
    """The server sent something that is not a valid HTTP/1.1 response."""


def connect(port, timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


class ResponseReader:
    """Reads HTTP/1.1 responses one by one from a socket (Content-Length, chunked or close-delimited)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.received = 0      # every byte that came back on this socket
        self.deadline = None   # time.monotonic() by which the response read now must be complete
        self.closes = False    # whether the last response read ends its connection

    def _fill(self):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete response in time")
            self.sock.settimeout(left)
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("connection closed")
        self.received += len(data)
        self.buf += data

    def _until(self, marker, limit=65536):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes: %r" % (marker, limit, self.buf[:80]))
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _head(self):
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % lines[0][:80])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % line[:80])
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return parts[0], int(parts[1]), headers

    def _chunked_body(self):
        chunks = []
        while True:
            line = self._until(b"\r\n").split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise ProtocolError("bad chunk size %r" % line[:40]) from None
            if size == 0:
                while self._until(b"\r\n"):  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            chunks.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")

    def read(self, head_only=False, deadline=None):
        """(status, headers, body) of the next response, an interim 1xx included.

        ``head_only``: the response has no body (the answer to a HEAD). ``deadline``: a
        time.monotonic() by which it must be complete, else socket.timeout. Afterwards
        ``closes`` says whether the response ends its connection.
        """
        self.deadline = deadline
        version, status, headers = self._head()
        self.closes = "close" in ",".join(headers.get("connection", [])).lower() or version == "HTTP/1.0"
        if head_only or status in (100, 204, 304) or 100 <= status < 200:
            return status, headers, b""
        if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            return status, headers, self._chunked_body()
        if "content-length" in headers:
            try:
                length = int(headers["content-length"][0])
            except ValueError:
                raise ProtocolError("bad Content-Length %r" % headers["content-length"]) from None
            return status, headers, self._exactly(length)
        try:  # delimited by the close
            while True:
                self._fill()
        except EOFError:
            pass
        body, self.buf = self.buf, b""
        self.closes = True
        return status, headers, body

    def read_final(self, deadline=None):
        """(status, headers, body, closes) of the next final response: interim 1xx ones are skipped."""
        while True:
            status, headers, body = self.read(deadline=deadline)
            if not 100 <= status < 200:
                return status, headers, body, self.closes

    def closed(self, timeout=5.0):
        """True if the server closes the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def request(port, raw, timeout=10.0):
    """Send raw bytes on a new connection, return (status, headers, body) of the first response."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return ResponseReader(sock).read()


class Traffic:
    """A steady, bounded stream of requests in a background thread, recording every outcome."""

    def __init__(self, port, keep_alive, path="/", limit=5000, seconds=30.0):
        self.port, self.keep_alive, self.path = port, keep_alive, path
        self.limit, self.seconds = limit, seconds
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import requests
        session = requests.Session() if self.keep_alive else None
        deadline = time.monotonic() + self.seconds
        url = "http://127.0.0.1:%d%s" % (self.port, self.path)
        while not self._stop.is_set() and len(self.results) < self.limit and time.monotonic() < deadline:
            try:
                if session is not None:
                    response = session.get(url, timeout=10)
                else:
                    response = requests.get(url, timeout=10, headers={"Connection": "close"})
                self.results.append(response.status_code)
            except requests.RequestException as exc:
                self.results.append(repr(exc))

    def wait_count(self, count, timeout=10.0):
        assert wait_for(lambda: len(self.results) >= count, timeout), "traffic stalled at %d" % len(self.results)

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        return self.results


def wait_accepting(port, timeout=15.0):
    """True once 127.0.0.1:``port`` accepts a connection (a second listener of a server, such as
    --metrics-bind, may open after the one Server.wait_ready saw); bounded in time."""
    def accepts():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    return wait_for(accepts, timeout)
