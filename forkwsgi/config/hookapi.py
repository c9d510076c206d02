"""The objects server hooks receive, shaped as gunicorn documents them.

A config file written for gunicorn calls ``server.log.info(...)``,
``worker.log``, ``worker.age``, ``req.path`` and ``resp.status_code``. The
arbiter and the worker pass their own objects to ``Config.call_hook``; the
adapters built here (once, when the config loads) wrap those objects in thin
views that add gunicorn's names and forward everything else. A hook that
is not set costs nothing: its setting stays None and no adapter is built.
"""
import collections.abc
import inspect
import logging

log = logging.getLogger("forkwsgi")

# The arguments of each hook, by role: "server" (the arbiter), "worker" (the master's
# record of a worker, or the worker itself in its process), or None (passed as is).
HOOK_ROLES = {
    "on_starting": ("server",),
    "on_reload": ("server",),
    "when_ready": ("server",),
    "pre_fork": ("server", "worker"),
    "post_fork": ("server", "worker"),
    "post_worker_init": ("worker",),
    "worker_int": ("worker",),
    "worker_abort": ("worker",),
    "pre_exec": ("server",),
    "child_exit": ("server", "worker"),
    "worker_exit": ("server", "worker"),
    "nworkers_changed": ("server", None, None),
    "on_exit": ("server",),
}


# Hooks called from the master's signal handling, where a failing hook must not stop the server:
# its traceback is logged and the server goes on.
CONTAINED = frozenset(("nworkers_changed",))


class HookLogger:
    """``server.log`` / ``worker.log``: gunicorn's logger methods, writing to forkwsgi's error log."""

    def __init__(self, logger=log):
        self._logger = logger

    def critical(self, msg, *args, **kwargs):
        self._logger.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self._logger.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self._logger.warning(msg, *args, **kwargs)

    warn = warning

    def info(self, msg, *args, **kwargs):
        self._logger.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self._logger.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self._logger.exception(msg, *args, **kwargs)

    def log(self, level, msg, *args, **kwargs):
        if isinstance(level, str):
            level = logging.getLevelName(level.upper())
        self._logger.log(level, msg, *args, **kwargs)


HOOK_LOG = HookLogger()


class _View:
    """Forwards every attribute to the wrapped object; subclasses add gunicorn's names."""

    def __init__(self, target, cfg):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "cfg", cfg)

    log = HOOK_LOG

    def __getattr__(self, name):
        return getattr(self._target, name)

    def __setattr__(self, name, value):
        setattr(self._target, name, value)

    def __repr__(self):
        return repr(self._target)


class ServerView(_View):
    """The arbiter as gunicorn's hooks see it: ``log``, ``cfg``, ``pid``, ``num_workers``."""

    @property
    def num_workers(self):
        return self.cfg.workers


class WorkerView(_View):
    """A worker as gunicorn's hooks see it: ``log``, ``cfg``, ``pid``, ``age``."""

    @property
    def age(self):
        return getattr(self._target, "age", None)  # the master's record and the worker both have it


_VIEWS = {"server": ServerView, "worker": WorkerView}


def adapt_hook(name, function, cfg):
    """The callable Config keeps for hook ``name``: ``function`` called with gunicorn's objects."""
    if function is None:
        return None
    if name == "pre_request":
        return _adapt_pre_request(function, cfg)
    if name == "post_request":
        return _adapt_post_request(function, cfg)
    if name == "ssl_context":
        return _adapt_ssl_context(function)
    roles = HOOK_ROLES.get(name)
    if roles is None:
        return function
    views = [_VIEWS.get(role) for role in roles]

    def call(*args):
        return function(*[view(arg, cfg) if view is not None and arg is not None else arg
                          for view, arg in zip(views, args)])
    if name in CONTAINED:
        contained = call

        def call(*args):
            try:
                return contained(*args)
            except Exception:
                log.exception("%s hook failed", name)
    call.__wrapped__ = function
    return call


def positional_arity(function):
    """How many positional arguments ``function`` takes (None: any number, or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(1 for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _adapt_pre_request(function, cfg):
    """pre_request(worker, req): ``req`` is gunicorn's request, and also the environ mapping
    (forkwsgi's earlier form, pre_request(worker, environ), keeps working)."""
    cache = _WorkerViewCache(cfg)

    def call(worker, environ, request):
        function(cache.view(worker), HookRequest(environ, request))
    call.__wrapped__ = function
    return call


def _adapt_post_request(function, cfg):
    """post_request as gunicorn calls it, (worker, req, environ, resp), or with 2 or 3 of those
    arguments as gunicorn also allows; forkwsgi's earlier (worker, environ, status, length) is
    recognised by its third parameter being named ``status``."""
    cache = _WorkerViewCache(cfg)
    arity = positional_arity(function)
    if arity == 4 and _parameter_names(function)[2] == "status":
        def call(worker, environ, request, response):
            function(cache.view(worker), environ, response.status, response.sent)
    elif arity == 2:
        def call(worker, environ, request, response):
            function(cache.view(worker), HookRequest(environ, request))
    elif arity == 3:
        def call(worker, environ, request, response):
            function(cache.view(worker), HookRequest(environ, request), environ)
    else:
        def call(worker, environ, request, response):
            function(cache.view(worker), HookRequest(environ, request), environ, HookResponse(response))
    call.__wrapped__ = function
    return call


def _parameter_names(function):
    try:
        return list(inspect.signature(function).parameters) + [None] * 4
    except (TypeError, ValueError):
        return [None] * 4


class _WorkerViewCache:
    """One WorkerView per worker object: per-request hooks do not build it again."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.worker = self.view_of = None

    def view(self, worker):
        if worker is not self.worker:
            self.view_of = WorkerView(worker, self.cfg)
            self.worker = worker
        return self.view_of


class HookRequest(collections.abc.MutableMapping):
    """gunicorn's ``req`` for pre_request/post_request, built only when a hook asks.

    It is also a mapping over the request's environ, so a hook written as
    ``pre_request(worker, environ)`` reads and sets environ keys through it.
    """

    __slots__ = ("environ", "_request")

    def __init__(self, environ, request):
        self.environ = environ
        self._request = request

    def __getitem__(self, key):
        return self.environ[key]

    def __setitem__(self, key, value):
        self.environ[key] = value

    def __delitem__(self, key):
        del self.environ[key]

    def __iter__(self):
        return iter(self.environ)

    def __len__(self):
        return len(self.environ)

    @property
    def method(self):
        return self._request.method

    @property
    def uri(self):
        return self._request.target

    @property
    def path(self):
        """The path as sent (not decoded); of an absolute-form target, the part after the authority."""
        path = self._request.target.partition("?")[0].partition("#")[0]
        if not path.startswith("/") and "://" in path:
            path = "/" + path.partition("://")[2].partition("/")[2]
        return path

    @property
    def query(self):
        return self._request.target.partition("?")[2].partition("#")[0]

    @property
    def fragment(self):
        return self._request.target.partition("#")[2]

    @property
    def version(self):
        """(major, minor), as gunicorn gives it."""
        major, _, minor = self._request.version[5:].partition(".")
        return int(major), int(minor or 0)

    @property
    def headers(self):
        """(NAME, value) pairs in order, names upper-cased as gunicorn gives them."""
        return [(name.upper(), value) for name, value in self._request.headers]

    @property
    def scheme(self):
        return self.environ.get("wsgi.url_scheme", "http")

    @property
    def remote_addr(self):
        """The peer: (ip, port) over TCP, as gunicorn gives it; the unix socket path's '' otherwise."""
        address = self.environ.get("REMOTE_ADDR", "")
        port = self.environ.get("REMOTE_PORT")
        return (address, int(port)) if port and port.isdigit() else address

    @property
    def body(self):
        return self.environ.get("wsgi.input")

    def should_close(self):
        return not self._request.keep_alive


class HookResponse:
    """gunicorn's ``resp`` for post_request: status, status_code, headers, sent."""

    __slots__ = ("_response",)

    def __init__(self, response):
        self._response = response

    @property
    def status(self):
        return self._response.status

    @property
    def status_code(self):
        status = self._response.status
        return int(status[:3]) if status else None

    @property
    def headers(self):
        return list(self._response.headers or [])

    @property
    def sent(self):
        return self._response.sent

    response_length = sent

    @property
    def headers_sent(self):
        return self._response.head_sent


class ContextFactory:
    """The default SSLContext, as the second argument of ssl_context.

    gunicorn passes a factory (``default_ssl_context_factory()``); forkwsgi
    passed the context itself. This is both: calling it returns the context,
    and its attributes are the context's.
    """

    def __init__(self, context):
        object.__setattr__(self, "_context", context)

    def __call__(self):
        return self._context

    def __getattr__(self, name):
        return getattr(self._context, name)

    def __setattr__(self, name, value):
        setattr(self._context, name, value)


def _adapt_ssl_context(function):
    def call(cfg, context):
        made = function(cfg, ContextFactory(context))
        return made._context if isinstance(made, ContextFactory) else made
    call.__wrapped__ = function
    return call
