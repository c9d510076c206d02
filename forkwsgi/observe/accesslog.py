"""The access log: one line per response, in gunicorn's atoms (access_log_format) or, with
--log-format json, one JSON object whose client-sent values are escaped so that no byte the
client chose can split or forge a line. Made in each worker, after the fork."""
import base64
import os
import sys
import threading
import time
from json.encoder import encode_basestring_ascii as _json_string

from forkwsgi.logs import Rfc3339Clock, log, routed_access_logger


class _Atoms(dict):
    """Atom values for one access log line; {name}i/{name}o/{name}e computed on demand."""

    def __init__(self, values, environ, response_headers):
        super().__init__(values)
        self.environ = environ
        self.response_headers = response_headers

    def __missing__(self, key):
        if key.startswith("{") and len(key) > 3 and key[-2] == "}":
            name, kind = key[1:-2], key[-1]
            if kind == "i":
                return self.environ.get("HTTP_" + name.upper().replace("-", "_"), "-")
            if kind == "o":
                lower = name.lower()
                for header, value in self.response_headers:
                    if header.lower() == lower:
                        return value
                return "-"
            if kind == "e":
                return self.environ.get(name, "-")
        if key == "Q":  # queue time, microseconds (queuetime.py); computed only for a format that has it
            return int(self.environ.get("forkwsgi.queue_time", 0.0) * 1_000_000)
        return "-"


def _basic_auth_user(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() == "basic ":
        try:
            return base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0] or "-"
        except (ValueError, UnicodeDecodeError):
            return "-"
    return "-"


def _uri(environ):
    """The request target as the client sent it, else as rebuilt from PATH_INFO and QUERY_STRING."""
    query = environ.get("QUERY_STRING", "")
    return environ.get("RAW_URI") or (environ.get("PATH_INFO", "") + ("?" + query if query else ""))


def _client_json(value):
    """A JSON string of a value the client sent: environ holds its bytes as latin-1 (PEP 3333), so
    they are decoded again as the UTF-8 they most likely are, invalid bytes as \\xNN; the JSON
    escapes then keep control characters (CR, LF) from splitting or forging a line."""
    if value is None:
        return "null"
    if type(value) is not str:
        value = str(value)
    elif not value.isascii():
        try:
            value = value.encode("latin-1").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # not from the client (an app rewrote it): it is text already
            pass
    return _json_string(value)


def _json_number(value):
    """A JSON number, or null for a missing or non-numeric value."""
    try:
        return "%.6f" % value
    except TypeError:
        return "null"


def _line_buffered_stdout():
    """fd 1 as a line-buffered stream: each access line leaves in one write, as to a file; Python's
    own stdout, to a pipe or a file, holds lines back in 8 KiB blocks that cut them anywhere, so
    several workers' blocks would splice their lines together."""
    try:
        return open(sys.stdout.fileno(), "w", buffering=1, encoding="utf-8", closefd=False)
    except (AttributeError, ValueError, OSError):  # no real stdout: replaced or captured
        return sys.stdout


# --log-format json: the access line's fields, in order; the pid is the worker's, filled in once.
ACCESS_JSON = ('{"time":"%%s","level":"INFO","message":%%s,"remote_addr":%%s,"method":%%s,"path":%%s,'
               '"query":%%s,"protocol":%%s,"status":%%s,"bytes":%%s,"duration":%%s,"queue_time":%%s,'
               '"user_agent":%%s,"referer":%%s,"request_id":%%s,"pid":%d}')


class AccessLog:
    """Writes one line per response in the configured format (gunicorn's atoms, or JSON)."""

    def __init__(self, path, fmt, log_format="text"):
        self.path = path
        self.fmt = fmt
        self.logger = routed_access_logger()  # gunicorn.access, when a logging config is in charge
        self.stream = self._open()
        self.lock = threading.Lock()  # --threads: one whole line at a time
        if log_format == "json":  # made in the worker, after the fork: its pid is the one to log
            self.line = self._json_line
            self.template = ACCESS_JSON % os.getpid()
            self.clock = Rfc3339Clock()

    def _open(self):
        if self.logger is not None:
            return None  # the logger's handlers write the lines
        if self.path == "-":
            return _line_buffered_stdout()
        return open(self.path, "a", buffering=1, encoding="utf-8")

    def reopen(self):
        """USR1 (log rotation): under the writers' lock, so that no app thread writes to the file
        being closed (which failed as "I/O operation on closed file": a ValueError)."""
        with self.lock:
            if self.stream not in (sys.stdout, None):
                self.stream.close()
            self.stream = self._open()

    def line(self, environ, status, response_headers, length, seconds):
        """The line in access_log_format, from gunicorn's atoms."""
        query = environ.get("QUERY_STRING", "")
        atoms = _Atoms({
            "h": environ.get("REMOTE_ADDR") or "-",
            "l": "-",
            "u": _basic_auth_user(environ),
            "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            "r": "%s %s %s" % (environ["REQUEST_METHOD"], _uri(environ), environ["SERVER_PROTOCOL"]),
            "m": environ["REQUEST_METHOD"],
            "U": environ.get("PATH_INFO", ""),
            "q": query,
            "H": environ["SERVER_PROTOCOL"],
            "s": status.split(" ", 1)[0] if status else "-",
            "B": length,
            "b": "-" if length is None else length,  # 0 for an empty body (HEAD, 204), as gunicorn prints
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": int(seconds),
            "D": int(seconds * 1_000_000),
            "M": int(seconds * 1000),
            "L": "%.6f" % seconds,
            "p": "<%d>" % os.getpid(),
        }, environ, response_headers)
        return self.fmt % atoms

    def _json_line(self, environ, status, response_headers, length, seconds):
        """The --log-format json line: the prebuilt template filled with escaped values."""
        method, protocol = environ.get("REQUEST_METHOD"), environ.get("SERVER_PROTOCOL")
        get = environ.get
        return self.template % (
            self.clock(time.time()),
            _client_json("%s %s %s" % (method or "-", _uri(environ), protocol or "-")),
            _client_json(get("REMOTE_ADDR")),
            _client_json(method),
            _client_json(get("PATH_INFO", "")),
            _client_json(get("QUERY_STRING", "")),
            _client_json(protocol),
            status[:3] if status and status[:3].isdigit() else "null",
            "null" if length is None else "%d" % length,
            _json_number(seconds),
            _json_number(get("forkwsgi.queue_time")),
            _client_json(get("HTTP_USER_AGENT")),
            _client_json(get("HTTP_REFERER")),
            _client_json(get("HTTP_X_REQUEST_ID")),
        )

    def write(self, environ, status, response_headers, length, seconds):
        try:
            line = self.line(environ, status, response_headers, length, seconds)
            if self.logger is not None:
                self.logger.info("%s", line)
                return
            with self.lock:
                self.stream.write(line + "\n")
        except (ValueError, TypeError, KeyError) as exc:
            log.error("bad access log format %r: %s", self.fmt, exc)
        except OSError as exc:
            log.error("cannot write access log: %s", exc)


