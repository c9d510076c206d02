"""Error log (Python logging) and access log (gunicorn-style atoms), reopenable on USR1."""
import base64
import copy
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
from json.encoder import encode_basestring_ascii as _json_string

from forkwsgi.errors import ConfigError

ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
log = logging.getLogger("forkwsgi")
# With logconfig, logconfig_dict, logconfig_json or syslog, the logs go through gunicorn's two
# logger names, so that a logging config written for gunicorn shapes them unchanged.
GUNICORN_ERROR, GUNICORN_ACCESS = "gunicorn.error", "gunicorn.access"
_routed = {"access": None}  # the access logger in charge when logging config routes the logs
# The base a logconfig_dict is laid over, key by key, as gunicorn does: its two loggers and the
# root log to the console unless the dict says otherwise.
LOGCONFIG_BASE = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        GUNICORN_ERROR: {"level": "INFO", "handlers": ["error_console"], "propagate": True},
        GUNICORN_ACCESS: {"level": "INFO", "handlers": ["console"], "propagate": True},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]"},
    },
}


class _ReopenableHandler(logging.StreamHandler):
    """A stream handler over '-' (stderr) or a file that can be reopened after rotation."""

    def __init__(self, path, dash=None):
        self.path = path
        self.dash = dash  # what '-' means: stderr for the error log, stdout for the access log
        super().__init__(self._open())

    def _open(self):
        if self.path in (None, "-"):
            return self.dash or sys.stderr
        return open(self.path, "a", buffering=1, encoding="utf-8")

    def reopen(self):
        self.acquire()
        try:
            if self.stream not in (sys.stderr, sys.stdout):
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


class Rfc3339Clock:
    """UTC timestamps in RFC 3339 with milliseconds; the date part is formatted once a second
    (kept as one tuple, so that --threads never pair one second's text with another's)."""

    def __init__(self):
        self.cached = (None, "")

    def __call__(self, now):
        second = int(now)
        cached = self.cached
        if cached[0] != second:
            cached = self.cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return "%s.%03dZ" % (cached[1], int((now - second) * 1000))


class JsonFormatter(logging.Formatter):
    """One JSON object a line (--log-format json): time, level, pid, message, and the traceback
    as one field, so that neither a multi-line message nor a traceback can split the line.
    ``prefix`` goes before it (a syslog program name)."""

    def __init__(self, prefix=""):
        super().__init__()
        self.prefix = prefix
        self.clock = Rfc3339Clock()

    def format(self, record):
        fields = {"time": self.clock(record.created), "level": record.levelname, "pid": record.process,
                  "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text or record.stack_info:
            fields["traceback"] = "\n".join(filter(None, (record.exc_text, record.stack_info and
                                                          self.formatStack(record.stack_info))))
        return self.prefix + json.dumps(fields, separators=(",", ":"))


def _formatter(cfg, text_format, date_format=None, prefix=""):
    """The formatter of one of forkwsgi's own handlers, as --log-format says."""
    if cfg.log_format == "json":
        return JsonFormatter(prefix)
    return logging.Formatter(prefix + text_format, date_format)


def _drop_handlers(logger):
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        if isinstance(handler, _ReopenableHandler) and handler.stream is not sys.stderr:
            handler.stream.close()


def _routes_through_logging(cfg):
    """Whether a logging config or syslog takes the logs (gunicorn's logger names) rather than
    forkwsgi's own two streams."""
    return bool(cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json or cfg.syslog)


def setup_error_log(cfg):
    """Configure the 'forkwsgi' logger from the settings; safe to call again on reload."""
    _drop_handlers(log)
    handler = _ReopenableHandler(cfg.errorlog)
    handler.setFormatter(_formatter(cfg, ERROR_FORMAT, DATE_FORMAT))
    if cfg.capture_output and cfg.errorlog not in (None, "-"):
        _capture_output(handler)
    log.propagate = False
    _routed["access"] = None
    if not _routes_through_logging(cfg):
        log.addHandler(handler)
        log.setLevel(cfg.loglevel.upper())
        return log
    error_logger, access_logger = logging.getLogger(GUNICORN_ERROR), logging.getLogger(GUNICORN_ACCESS)
    for logger in (error_logger, access_logger):
        _drop_handlers(logger)
        logger.propagate = False
    error_logger.addHandler(handler)
    error_logger.setLevel(cfg.loglevel.upper())
    access_logger.setLevel(logging.INFO)
    if cfg.accesslog:
        access_handler = _ReopenableHandler(cfg.accesslog, sys.stdout)
        access_handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(access_handler)
    if cfg.syslog:
        error_logger.addHandler(_syslog_handler(cfg, "error"))
        if not cfg.disable_redirect_access_to_syslog:
            access_logger.addHandler(_syslog_handler(cfg, "access"))
    _apply_logging_config(cfg)
    log.addHandler(_ForwardTo(error_logger))
    log.setLevel(logging.DEBUG)  # gunicorn.error's level (the config may change it) decides
    _routed["access"] = access_logger
    return log


def _apply_logging_config(cfg):
    """logconfig_dict, logconfig_json or logconfig (an ini file), laid over the loggers set up
    from the settings, as gunicorn applies them."""
    try:
        if cfg.logconfig_dict:
            config = copy.deepcopy(LOGCONFIG_BASE)
            config.update(cfg.logconfig_dict)
            logging.config.dictConfig(config)
        elif cfg.logconfig_json:
            with open(cfg.logconfig_json) as handle:
                config = copy.deepcopy(LOGCONFIG_BASE)
                config.update(json.load(handle))
            logging.config.dictConfig(config)
        elif cfg.logconfig:
            if not os.path.exists(cfg.logconfig):
                raise OSError("no such file: %s" % cfg.logconfig)
            logging.config.fileConfig(cfg.logconfig, defaults={"__file__": cfg.logconfig,
                                                               "here": os.path.dirname(cfg.logconfig)},
                                      disable_existing_loggers=False)
    except Exception as exc:  # dictConfig and fileConfig fail in many ways; each is a config error
        raise ConfigError("cannot apply the logging config: %s: %s" % (type(exc).__name__, exc)) from None


class _ForwardTo(logging.Handler):
    """Hands forkwsgi's records to gunicorn's error logger, under its name, when it is in charge."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def emit(self, record):
        if self.target.isEnabledFor(record.levelno):
            record = logging.makeLogRecord(record.__dict__)
            record.name = self.target.name
            self.target.handle(record)


SYSLOG_FACILITIES = logging.handlers.SysLogHandler.facility_names


def parse_syslog_address(address):
    """(address, socket type) of udp://HOST:PORT, tcp://HOST:PORT or unix://PATH[#dgram|#stream]."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "udp", address
    if scheme == "unix":
        path, _, kind = rest.partition("#")
        return path, socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
    if scheme not in ("udp", "tcp"):
        raise ConfigError("syslog_addr %r: expected udp://, tcp:// or unix://" % address)
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "514")
    return (host.strip("[]") or "localhost", int(port or 514)), (
        socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM)


def _syslog_handler(cfg, kind):
    address, socktype = parse_syslog_address(cfg.syslog_addr)
    facility = SYSLOG_FACILITIES.get(str(cfg.syslog_facility).lower(), SYSLOG_FACILITIES["user"])
    handler = logging.handlers.SysLogHandler(address, facility, socktype)
    prefix = cfg.syslog_prefix or "forkwsgi.%s" % cfg.app_name.replace(":", ".")
    if kind == "access" and cfg.log_format == "json":  # the message is the access log's JSON line already
        handler.setFormatter(logging.Formatter("%s.%s: %%(message)s" % (prefix, kind)))
    else:
        handler.setFormatter(_formatter(cfg, "[%(process)d] [%(levelname)s] %(message)s",
                                        prefix="%s.%s: " % (prefix, kind)))
    return handler


def _capture_output(handler):
    """capture_output: what the app prints (fds 1 and 2) goes to the error log file."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for fd in (1, 2):
        os.dup2(handler.stream.fileno(), fd)


class ErrorStream:
    """``wsgi.errors``: writes to the error log's current stream, so it survives a USR1 reopen.
    With --log-format json, each line the app writes becomes one JSON line of the error log."""

    def __init__(self):
        self.partial = ""  # json: the start of a line the app has not ended yet
        self.lock = threading.Lock()  # --threads

    def _handler(self):
        for name in ("forkwsgi", GUNICORN_ERROR):
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, _ReopenableHandler):
                    return handler
        return None

    def _stream(self):
        handler = self._handler()
        return sys.stderr if handler is None else handler.stream

    def write(self, text):
        handler = self._handler()
        if handler is None:
            sys.stderr.write(text)
        elif isinstance(handler.formatter, JsonFormatter):
            with self.lock:
                lines = (self.partial + text).split("\n")
                self.partial = lines.pop()
            self._write_json(handler, lines)
        else:
            handler.stream.write(text)

    def _write_json(self, handler, lines):
        for line in lines:
            record = logging.LogRecord(GUNICORN_ERROR, logging.ERROR, "", 0, "%s", (line,), None)
            handler.stream.write(handler.format(record) + "\n")

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        handler = self._handler()
        if handler is not None and isinstance(handler.formatter, JsonFormatter):
            with self.lock:
                partial, self.partial = self.partial, ""
            self._write_json(handler, [partial] if partial else [])
        self._stream().flush()


def reopen_error_log():
    """USR1: reopen every log file forkwsgi opened (its own, or gunicorn's logger names')."""
    for name in ("forkwsgi", GUNICORN_ERROR, GUNICORN_ACCESS):
        for handler in logging.getLogger(name).handlers:
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
        self.logger = _routed["access"]  # gunicorn.access, when a logging config is in charge
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


class Throttle:
    """One log line a second at most for a kind of event a client or an overload can repeat
    without end; the events in between are counted, and the next line can say how many."""

    INTERVAL = 1.0

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.quiet_until = 0.0
        self.count = 0

    def tick(self):
        """Count an event: how many since the last line (this one included) when a line is due, else 0."""
        self.count += 1
        now = self.clock()
        if now < self.quiet_until:
            return 0
        self.quiet_until = now + self.INTERVAL
        count, self.count = self.count, 0
        return count
