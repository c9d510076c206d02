"""Error log (Python logging) and access log (gunicorn-style atoms), reopenable on USR1."""
import base64
import logging
import os
import sys
import threading
import time

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
log = logging.getLogger("forkwsgi")


class _ReopenableHandler(logging.StreamHandler):
    """A stream handler over '-' (stderr) or a file that can be reopened after rotation."""

    def __init__(self, path):
        self.path = path
        super().__init__(self._open())

    def _open(self):
        if self.path in (None, "-"):
            return sys.stderr
        return open(self.path, "a", buffering=1, encoding="utf-8")

    def reopen(self):
        self.acquire()
        try:
            if self.stream is not sys.stderr:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup_error_log(cfg):
    """Configure the 'forkwsgi' logger from the settings; safe to call again on reload."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
        if isinstance(handler, _ReopenableHandler) and handler.stream is not sys.stderr:
            handler.stream.close()
    handler = _ReopenableHandler(cfg.errorlog)
    handler.setFormatter(logging.Formatter(ERROR_FORMAT, "%Y-%m-%d %H:%M:%S %z"))
    log.addHandler(handler)
    log.setLevel(cfg.loglevel.upper())
    log.propagate = False
    return log


class ErrorStream:
    """``wsgi.errors``: writes to the error log's current stream, so it survives a USR1 reopen."""

    def _stream(self):
        for handler in log.handlers:
            if isinstance(handler, _ReopenableHandler):
                return handler.stream
        return sys.stderr

    def write(self, text):
        self._stream().write(text)

    def writelines(self, lines):
        self._stream().writelines(lines)

    def flush(self):
        self._stream().flush()


def reopen_error_log():
    for handler in log.handlers:
        if isinstance(handler, _ReopenableHandler):
            handler.reopen()


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
        return "-"


def _basic_auth_user(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() == "basic ":
        try:
            return base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0] or "-"
        except (ValueError, UnicodeDecodeError):
            return "-"
    return "-"


class AccessLog:
    """Writes one line per response in the configured format."""

    def __init__(self, path, fmt):
        self.path = path
        self.fmt = fmt
        self.stream = self._open()
        self.lock = threading.Lock()  # --threads: one whole line at a time

    def _open(self):
        if self.path == "-":
            return sys.stdout
        return open(self.path, "a", buffering=1, encoding="utf-8")

    def reopen(self):
        if self.stream is not sys.stdout:
            self.stream.close()
        self.stream = self._open()

    def write(self, environ, status, response_headers, length, seconds):
        query = environ.get("QUERY_STRING", "")
        uri = environ.get("RAW_URI") or (environ.get("PATH_INFO", "") + ("?" + query if query else ""))
        atoms = _Atoms({
            "h": environ.get("REMOTE_ADDR") or "-",
            "l": "-",
            "u": _basic_auth_user(environ),
            "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
            "r": "%s %s %s" % (environ["REQUEST_METHOD"], uri, environ["SERVER_PROTOCOL"]),
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
        try:
            line = self.fmt % atoms + "\n"
            with self.lock:
                self.stream.write(line)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("bad access log format %r: %s", self.fmt, exc)
        except OSError as exc:
            log.error("cannot write access log: %s", exc)
