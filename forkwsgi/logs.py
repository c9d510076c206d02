"""The error log (Python logging, or gunicorn's logger names under a logging config), reopenable
on USR1, and the Throttle for log lines a client could repeat without end. The access log's
lines are written by observe/accesslog.py, through the logger set up here when one is in charge."""
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


def routed_access_logger():
    """gunicorn.access when a logging config or syslog is in charge of the logs (setup_error_log),
    else None: the access log then writes its own stream."""
    return _routed["access"]


def reopen_error_log():
    """USR1: reopen every log file forkwsgi opened (its own, or gunicorn's logger names')."""
    for name in ("forkwsgi", GUNICORN_ERROR, GUNICORN_ACCESS):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, _ReopenableHandler):
                handler.reopen()


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
