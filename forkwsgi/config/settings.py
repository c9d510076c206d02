"""The one table of settings.

Each setting is declared once here: name, validator, default, CLI flags, env
var and help. The CLI parser, the config-file loader, FORKWSGI_* variables,
``--print-config`` and the README's settings list are all generated from it.
"""
import glob
import importlib
import inspect

from forkwsgi.errors import ConfigError
from forkwsgi.config.addresses import parse_address
from forkwsgi.config.tls import cert_reqs


def at_least(convert, minimum):
    """A validator converting with ``convert`` (int, float) and refusing values below ``minimum``."""
    def validate(value):
        number = convert(value)
        if number < minimum:
            raise ValueError("must be at least %s" % minimum)
        return number
    return validate


positive_int = at_least(int, 1)
non_negative_int = at_least(int, 0)
non_negative_float = at_least(float, 0)


def limit(zero_means):
    """A positive size limit, where 0 means what gunicorn makes of it (``zero_means``)."""
    def validate(value):
        number = non_negative_int(value)
        return number or zero_means
    return validate


def positive_seconds(value):
    """Seconds above zero: a delay of zero would make the decision it times on a single sample."""
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError("must be a number of seconds above 0")
    return number


def optional_count(value):
    """A whole number from 1, or None (unset: the feature is off)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    return positive_int(int(value))


def optional_seconds(value):
    """Seconds above zero, or None (unset: the feature is off); a zero or negative value is refused."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a number of seconds above 0 (leave it unset for none)")
    return number


def worker_count(value):
    """A positive int, or "auto": kept as such, and counted (cpus.py) when the master starts or reloads."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number or 'auto'") from None
    return positive_int(number)


def boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def boolean_on_by_default(value):
    """A switch that None leaves on (gunicorn's sendfile: None means "use it")."""
    return True if value is None else boolean(value)


def string_list(value):
    """A list of strings; a string is split on commas (env vars, CLI)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ValueError("expected a list of strings")


def files_or_patterns(value):
    """File paths; glob patterns (gunicorn's reload_extra_files takes them) become the files they
    match when the config loads, and again on each reload."""
    files = []
    for item in string_list(value):
        if any(char in item for char in "*?["):
            files.extend(sorted(glob.glob(item, recursive=True)))
        else:
            files.append(item)
    return files


def bind_list(value):
    """Bind addresses, each checked for form now rather than at bind time."""
    addresses = string_list(value)
    if not addresses:
        raise ValueError("needs at least one address")
    for address in addresses:
        try:
            parse_address(address)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return addresses


def optional_string(value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def optional_id(value):
    """A user or group: a name, or a number (int or digits), as gunicorn takes them."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected a name or a number")
    return str(value)


def env_list(value):
    """KEY=VALUE strings (raw_env, -e): a string is one item, never split on commas."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError("expected a list of KEY=VALUE strings")
    for item in items:
        if "=" not in item or not item.partition("=")[0]:
            raise ValueError("expected KEY=VALUE, got %r" % item)
    return list(items)


def string_dict(value):
    """{NAME: value} of strings, names upper-cased (secure_scheme_headers)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise ValueError("expected a dict of strings")
    return {key.strip().upper(): item for key, item in value.items()}


def any_dict(value):
    if not isinstance(value, dict):
        raise ValueError("expected a dict")
    return dict(value)


def upper_list(value):
    return [item.upper() for item in string_list(value)]


def anything(value):
    """Ignored settings: any value is taken (and warned about when it differs from the default)."""
    return value


def proxy_protocol_mode(value):
    """None (off), 'v1', 'v2' or 'auto'; true means auto and false off, as in gunicorn."""
    if value is None or value is False:
        return None
    if value is True:
        return "auto"
    modes = {"off": None, "false": None, "0": None, "no": None, "none": None, "": None,
             "true": "auto", "1": "auto", "yes": "auto", "on": "auto", "auto": "auto", "v1": "v1", "v2": "v2"}
    text = str(value).strip().lower()
    if text not in modes:
        raise ValueError("expected off, v1, v2 or auto")
    return modes[text]


SYNC_CLASSES = ("sync", "egg:gunicorn#sync", "gunicorn.workers.sync.SyncWorker")
GTHREAD_CLASSES = ("gthread", "egg:gunicorn#gthread", "gunicorn.workers.gthread.ThreadWorker")


def worker_class(value):
    """gunicorn's sync and gthread map to forkwsgi's workers (threads from --threads); others are refused."""
    name = value if isinstance(value, str) else "%s.%s" % (getattr(value, "__module__", ""),
                                                          getattr(value, "__qualname__", value))
    name = name.strip()
    if name in SYNC_CLASSES:
        return "sync"
    if name in GTHREAD_CLASSES:
        return "gthread"
    lower = name.lower()
    if any(word in lower for word in ("uvicorn", "asgi", "hypercorn", "tornado")):
        raise ValueError("an ASGI or Tornado worker cannot serve here: forkwsgi runs WSGI apps only; "
                         "serve ASGI apps with uvicorn, hypercorn or granian")
    raise ValueError("forkwsgi has no %r worker: use worker_class = 'sync' (or 'gthread') with threads = N "
                     "for apps that wait on I/O; each worker's event loop already multiplexes connections"
                     % name)


def only_default(default, instead):
    """A gunicorn setting forkwsgi cannot honour: its default is taken silently, anything else refused."""
    def validate(value):
        if value != default and not (value in (None, "", [], {}) and default in (None, "", [], {})):
            raise ValueError(instead)
        return value
    validate.refusal = instead
    return validate


def refused_hook(instead):
    """A gunicorn hook forkwsgi never calls: defining it is refused, naming what to use."""
    def validate(value):
        if value is not None:
            raise ValueError(instead)
        return None
    validate.arity = None
    validate.refusal = instead
    return validate


def octal(value):
    if isinstance(value, int):
        return value
    return int(str(value), 8) if not str(value).startswith("0x") else int(str(value), 16)


def log_level(value):
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("expected debug, info, warning, error or critical")
    return level


def log_format(value):
    text = str(value).strip().lower()
    if text not in ("text", "json"):
        raise ValueError("expected text or json")
    return text


def reload_engine(value):
    engine = str(value).strip().lower()
    if engine not in ("auto", "inotify", "poll"):
        raise ValueError("expected auto, inotify or poll")
    return engine


def optional_address(value):
    """None, or one HOST:PORT / [IPV6]:PORT / unix:PATH address (no fd://)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected an address")
    try:
        kind = parse_address(value)[0]
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if kind == "fd":
        raise ValueError("expected HOST:PORT or unix:PATH")
    return value.strip()


def optional_host_port(value):
    """None, or HOST:PORT (statsd)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT")
    return text


def _import_callable(path):
    """A hook named as 'module.function' (gunicorn allows strings)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError("expected a function or 'module.function'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError("cannot import %r: %s" % (path, exc)) from None


def hook(arity, *other_arities):
    def validate(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = _import_callable(value)
        if not callable(value):
            raise ValueError("expected a function")
        for count in (arity,) + other_arities:
            try:
                inspect.signature(value).bind(*range(count))
                return value
            except TypeError:
                continue
            except ValueError:
                return value  # builtins without a signature: trust them
        raise ValueError("must accept %s positional argument(s)"
                         % " or ".join(str(n) for n in (arity,) + other_arities))
    validate.arity = arity
    return validate


class Setting:
    """One setting. ``gunicorn`` says how gunicorn's setting of that name is answered:
    "same" (gunicorn's name, flags and meaning; "same: ..." notes a difference), "ignored: why"
    (taken, with one warning line when set), "refused: what to use instead" (only its default is
    taken), or None for a setting gunicorn does not have."""

    __slots__ = ("name", "validate", "default", "flags", "help", "section", "metavar", "gunicorn")

    def __init__(self, name, validate, default, flags=(), help="", section="Server", metavar=None,
                 gunicorn="same"):
        self.gunicorn = gunicorn
        self.name = name
        self.validate = validate
        self.default = default
        self.flags = flags
        self.help = help
        self.section = section
        self.metavar = metavar

    @property
    def env(self):
        return "FORKWSGI_" + self.name.upper()

    @property
    def is_hook(self):
        return hasattr(self.validate, "arity")


ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

SETTINGS = [
    Setting("config", optional_string, None, ("-c", "--config"),
            "Python config file of module-level settings and hooks.", "Server", "FILE"),
    # Application and sockets
    Setting("wsgi_app", optional_string, None, (), "The application as module:name or module:factory(). "
            "Given as the positional argument on the command line.", "Server"),
    Setting("bind", bind_list, ["127.0.0.1:8000"], ("-b", "--bind"),
            "Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat for several.",
            "Server", "ADDRESS"),
    Setting("backlog", positive_int, 2048, ("--backlog",), "Listen queue length of each socket.", "Server", "INT"),
    Setting("reuse_port", boolean, False, ("--reuse-port",), "Set SO_REUSEPORT on TCP listening sockets.", "Server"),
    Setting("umask", octal, 0, ("-m", "--umask"), "umask applied when creating unix sockets (octal).",
            "Server", "OCTAL",
            "same: a string is read as octal (022), an int as is"),
    Setting("workers", worker_count, 1, ("-w", "--workers"),
            "Number of worker processes, or 'auto': the container's CPU quota (cgroup v2 cpu.max or v1 "
            "cpu.cfs_quota_us, rounded up), else the CPUs this process may run on.", "Server", "INT|auto"),
    Setting("max_workers", optional_count, None, ("--max-workers",),
            "Let the workers follow the load: -w is then the least, and the master starts one more (up to "
            "this many) when every worker has been busy, or connections have waited in the accept queue, for "
            "scale_up_after; and retires one (gracefully: its connections move to siblings) once a worker "
            "has been idle for scale_down_after. Off when unset; not below -w.", "Server", "INT", gunicorn=None),
    Setting("scale_up_after", positive_seconds, 1.0, ("--scale-up-after",),
            "With max_workers: seconds of every worker busy (or a non-empty accept queue) before a worker "
            "is added.", "Server", "SECONDS", gunicorn=None),
    Setting("scale_down_after", positive_seconds, 30.0, ("--scale-down-after",),
            "With max_workers: seconds a worker must stay idle before one is retired (then one a second "
            "while one still is), down to -w.", "Server", "SECONDS", gunicorn=None),
    Setting("worker_connections", positive_int, 1000, ("--worker-connections",),
            "Most open client connections one worker multiplexes.", "Server", "INT",
            "same: every worker class, not only async ones"),
    Setting("threads", positive_int, 1, ("--threads",),
            "App threads per worker. 1 runs the app in the event loop's thread; more run app calls on a "
            "pool while the loop keeps serving I/O (for apps that wait on databases and APIs).", "Server", "INT"),
    Setting("worker_class", worker_class, "sync", ("-k", "--worker-class"),
            "gunicorn's worker class: 'sync' or 'gthread' (with threads = N) map to forkwsgi's workers; "
            "every worker runs an event loop, and threads > 1 adds an app thread pool. ASGI, gevent, "
            "eventlet and tornado workers are refused.", "Server", "CLASS",
            "same: sync and gthread; others refused (ASGI: use uvicorn, hypercorn or granian)"),
    Setting("handoff", boolean, True, ("--handoff",),
            "Move a connection whose request waits behind a busy worker to an idle sibling, and move idle "
            "keep-alive connections off a worker that retires (reload, max-requests, fewer workers).",
            "Server", gunicorn=None),
    Setting("handoff_delay", non_negative_float, 0.003, ("--handoff-delay",),
            "Seconds a request that has arrived may wait for its busy worker before its connection moves "
            "to an idle sibling.", "Server", "SECONDS", gunicorn=None),
    Setting("preload_app", boolean, False, ("--preload",),
            "Import the application in the master before forking workers; its objects are then frozen "
            "(gc.freeze) so the workers share their memory.", "Server"),
    Setting("chdir", optional_string, None, ("--chdir",), "Change to this directory before loading the app.",
            "Server", "DIR"),
    # Timeouts and limits
    Setting("timeout", non_negative_int, 30, ("-t", "--timeout"),
            "Seconds a request may run in the app before it is answered 504 and its worker replaced (with "
            "--threads, after its other threads finish); 0 disables.",
            "Timeouts", "INT"),
    Setting("graceful_timeout", non_negative_int, 30, ("--graceful-timeout",),
            "Seconds workers get to finish in-flight and queued requests on graceful stop.", "Timeouts", "INT"),
    Setting("keepalive", non_negative_float, 5.0, ("--keepalive", "--keep-alive"),
            "Seconds an idle keep-alive connection is kept open; 0 turns keep-alive off.", "Timeouts", "SECONDS",
            "same: default 5 s where gunicorn's is 2 (see Coming from gunicorn)"),
    Setting("header_timeout", non_negative_float, 10.0, ("--header-timeout",),
            "Seconds a client has to send a complete request head once it starts (slowloris guard).",
            "Timeouts", "SECONDS", gunicorn=None),
    Setting("body_timeout", non_negative_float, 30.0, ("--body-timeout",),
            "Seconds a request body may stall without a byte arriving.", "Timeouts", "SECONDS", gunicorn=None),
    Setting("send_timeout", non_negative_float, 30.0, ("--send-timeout",),
            "Seconds a response may wait for the client to take a byte before the connection is dropped "
            "(a body suspended past output_buffer_max too; an app using write() waits at most this long for "
            "the client to take half of it).", "Timeouts", "SECONDS", gunicorn=None),
    Setting("shutdown_delay", non_negative_float, 0.0, ("--shutdown-delay",),
            "On TERM, keep accepting and serving for this many seconds (health checks fail, responses say "
            "Connection: close) before the graceful stop: load balancers stop sending first.",
            "Timeouts", "SECONDS", gunicorn=None),
    Setting("max_requests", non_negative_int, 0, ("--max-requests",),
            "Restart a worker gracefully after this many requests (contains leaks); 0 disables.",
            "Timeouts", "INT"),
    Setting("max_queue_time", optional_seconds, None, ("--max-queue-time",),
            "Answer 503 (with Retry-After and Connection: close), without calling the app, a request that has "
            "waited this many seconds since it was first seen (or since a trusted front end's X-Request-Start) "
            "without reaching the app: at its deadline, not when a worker frees. Health probes are never shed. "
            "Off when unset.", "Timeouts", "SECONDS", gunicorn=None),
    Setting("max_requests_jitter", non_negative_int, 0, ("--max-requests-jitter",),
            "Add a random 0..N to max_requests per worker so they do not all restart at once.",
            "Timeouts", "INT"),
    Setting("limit_request_line", limit(1 << 20), 4094, ("--limit-request-line",),
            "Longest request line in bytes (414 beyond); 0 means 1 MiB.", "Limits", "INT",
            "same: 0 (gunicorn's 'unlimited') is 1 MiB; above 8190 is honoured, not capped"),
    Setting("limit_request_fields", limit(32768), 100, ("--limit-request-fields",),
            "Most header fields in a request (431 beyond); 0 means 32768.", "Limits", "INT"),
    Setting("limit_request_field_size", limit(8190), 8190,
            ("--limit-request-field-size", "--limit-request-field_size"),
            "Longest header field line in bytes (431 beyond); 0 means 8190.", "Limits", "INT"),
    Setting("limit_request_body", non_negative_int, 1 << 30, ("--limit-request-body",),
            "Largest request body in bytes (413 beyond); 0 means no limit. The default, 1 GiB (Apache "
            "httpd's LimitRequestBody default since 2.4.54), lets large uploads through (nginx's 1 MB "
            "is too small for an app server) while one request cannot fill the spool without end.",
            "Limits", "INT", gunicorn=None),
    Setting("output_buffer_memory", non_negative_int, 1 << 20, ("--output-buffer-memory",),
            "Bytes of a response the client has not taken yet that a connection keeps in memory; "
            "beyond this they spill to a file in spool_dir.", "Limits", "BYTES", gunicorn=None),
    Setting("output_buffer_max", positive_int, 64 << 20, ("--output-buffer-max",),
            "Most bytes of unsent response a connection buffers (memory and spill file); beyond this "
            "the app's body is suspended until the client has taken half (write() waits instead).",
            "Limits", "BYTES", gunicorn=None),
    Setting("output_spill_budget", non_negative_int, 256 << 20, ("--output-spill-budget",),
            "Most bytes of response output one worker keeps spilled in spool_dir, all its connections "
            "together; past it, output waits in memory up to output_buffer_memory, then the app's "
            "writes wait for the client. 0 never spills. The default, 256 MiB, is four connections at "
            "output_buffer_max: clients that never read cannot fill the disk (RAM on a tmpfs /tmp); "
            "workers times this must fit in spool_dir.", "Limits", "BYTES", gunicorn=None),
    Setting("spool_dir", optional_string, None, ("--spool-dir",),
            "Directory for chunked request bodies over 1 MiB and spilled response output; default: the "
            "system temp directory.", "Limits", "DIR", gunicorn=None),
    Setting("tmp_upload_dir", optional_string, None, (),
            "gunicorn's name for spool_dir (used when spool_dir is unset).", "Limits", "DIR"),
    # TLS
    Setting("certfile", optional_string, None, ("--certfile",),
            "Serve TLS with this certificate (PEM, with its chain). Off when unset.", "TLS", "FILE"),
    Setting("keyfile", optional_string, None, ("--keyfile",),
            "The certificate's private key (PEM); defaults to certfile.", "TLS", "FILE"),
    Setting("ca_certs", optional_string, None, ("--ca-certs",),
            "CA certificates (PEM) that client certificates are verified against.", "TLS", "FILE"),
    Setting("cert_reqs", cert_reqs, 0, ("--cert-reqs",),
            "Client certificates: none, optional or required (mutual TLS).", "TLS", "MODE"),
    # Proxies
    Setting("forwarded_allow_ips", string_list, ["127.0.0.1", "::1"], ("--forwarded-allow-ips",),
            "Peers (IPs or networks, '*' for any) trusted to set X-Forwarded-For, the secure_scheme_headers "
            "and the forwarder_headers.", "Proxies", "IPS"),
    Setting("secure_scheme_headers", string_dict,
            {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}, (),
            "Headers a trusted proxy sets to say the client used https, with the value that means it "
            "(another value means http; headers that disagree change nothing).", "Proxies"),
    Setting("forwarder_headers", upper_list, ["SCRIPT_NAME", "PATH_INFO"], ("--forwarder-headers",),
            "Header names with '_' a trusted proxy may set (dropped otherwise): SCRIPT_NAME sets the "
            "app's mount point, others become HTTP_<NAME>.", "Proxies", "NAMES"),
    Setting("proxy_protocol", proxy_protocol_mode, None, ("--proxy-protocol",),
            "Expect a PROXY protocol header at the start of each connection from proxy_allow_ips: "
            "v1 (text), v2 (binary), auto (either; also 'true'), or off.", "Proxies", "MODE"),
    Setting("proxy_allow_ips", string_list, ["127.0.0.1", "::1"], ("--proxy-allow-from",),
            "Peers allowed to send a PROXY protocol line.", "Proxies", "IPS"),
    Setting("health_path", optional_string, None, ("--health-path",),
            "A path (e.g. /healthz) the worker answers itself, without the app: 200, or 503 once stopping "
            "(readiness). Off when unset.", "Proxies", "PATH", gunicorn=None),
    # Logging
    Setting("errorlog", optional_string, "-", ("--error-logfile", "--log-file"),
            "Error log file; '-' is stderr.", "Logging", "FILE"),
    Setting("loglevel", log_level, "info", ("--log-level",), "Error log level.", "Logging", "LEVEL"),
    Setting("accesslog", optional_string, None, ("--access-logfile",),
            "Access log file; '-' is stdout. Off when unset.", "Logging", "FILE"),
    Setting("log_health", boolean, False, ("--log-health",),
            "Write health-path requests to the access log too.", "Logging", gunicorn=None),
    Setting("access_log_format", optional_string, ACCESS_LOG_FORMAT, ("--access-logformat",),
            "Access log line format, with gunicorn's atoms (h l u t r m U q H s b B f a T D M L p "
            "{header}i {header}o {var}e) and Q, the queue time in microseconds.", "Logging", "FORMAT"),
    Setting("log_format", log_format, "text", ("--log-format",),
            "text, or json: the error log and the access log are one JSON object a line, with named "
            "fields; what the client sent is escaped (access_log_format is not used then).", "Logging",
            "FORMAT", gunicorn=None),
    # Process
    Setting("proc_name", optional_string, None, ("-n", "--name"),
            "Name shown in process titles; defaults to the app.", "Process", "NAME"),
    Setting("pidfile", optional_string, None, ("-p", "--pid"), "Write the master's pid to this file.",
            "Process", "FILE"),
    Setting("user", optional_id, None, ("-u", "--user"), "Run workers as this user (name or uid).",
            "Process", "USER"),
    Setting("group", optional_id, None, ("-g", "--group"), "Run workers as this group (name or gid).",
            "Process", "GROUP"),
    Setting("daemon", boolean, False, ("-D", "--daemon"), "Detach from the terminal and run in the background.",
            "Process"),
    # Development
    Setting("reload", boolean, False, ("--reload",),
            "Development: restart the workers when a file of the app (any imported module), the config file or "
            "a reload_extra_files entry changes; an app that fails to import serves its traceback to loopback "
            "clients instead of exiting. Not with --preload.", "Development"),
    Setting("reload_extra_files", files_or_patterns, [], ("--reload-extra-file",),
            "With --reload, also watch this file (templates, data), or the files a glob pattern matches "
            "(templates/**/*.html) when the config loads. Repeat for several.", "Development", "FILE",
            "same: a pattern's files are those present at start and at each reload"),
    Setting("reload_engine", reload_engine, "auto", ("--reload-engine",),
            "How --reload watches: 'inotify' (the watchfiles package), 'poll' (stat every second) or 'auto' "
            "(inotify when watchfiles is installed).", "Development", "ENGINE"),
    Setting("check_config", boolean, False, ("--check-config",),
            "Load the config and import the app, then exit (0 if fine). With a config written for "
            "gunicorn, first lists how each of its settings is answered here.", "Development"),
    Setting("print_config", boolean, False, ("--print-config",),
            "Print the effective settings as a config file, each annotated with where it came from, "
            "then exit.", "Development"),
    # Observability
    Setting("metrics_bind", optional_address, None, ("--metrics-bind",),
            "Serve Prometheus metrics at /metrics on this address (HOST:PORT or unix:PATH), from the master, "
            "never on the app's sockets. Off when unset.", "Observability", "ADDRESS", gunicorn=None),
    Setting("control_socket", optional_string, None, ("--control-socket",),
            "Unix socket of the master that `forkwsgi ctl` talks to (status, reload, add, remove, stop). "
            "Off when unset.", "Observability", "PATH",
            "same: off unless set (gunicorn's is on), spoken to by forkwsgi ctl"),
    Setting("control_socket_mode", octal, 0o600, ("--control-socket-mode",),
            "File mode of the control socket (octal).", "Observability", "OCTAL"),
    Setting("max_worker_memory", non_negative_float, 0.0, ("--max-worker-memory",),
            "Restart a worker gracefully once the memory it alone holds (USS, not RSS: pages shared with "
            "the master and siblings are not its own) passes this many MB (checked after each request); "
            "0 disables.", "Observability", "MB", gunicorn=None),
    Setting("otel", boolean, False, ("--otel",),
            "OpenTelemetry tracing (the otel extra): each worker, after the fork, sets up the SDK from the "
            "OTEL_* variables and traces each request as a server span, continuing the client's traceparent.",
            "Observability", gunicorn=None),
    Setting("statsd_host", optional_host_port, None, ("--statsd-host",),
            "Send the metrics as statsd lines over UDP to HOST:PORT, from the master once a second. "
            "Off when unset.", "Observability", "HOST:PORT"),
    Setting("statsd_prefix", optional_string, "forkwsgi", ("--statsd-prefix",),
            "Prefix of the statsd metric names.", "Observability", "PREFIX",
            "same: default 'forkwsgi' where gunicorn's is empty"),
    # Process environment and logging, with gunicorn's names
    Setting("raw_env", env_list, [], ("-e", "--env"),
            "Set an environment variable KEY=VALUE in the master before the app loads. Repeat for several.",
            "Process", "KEY=VALUE"),
    Setting("pythonpath", optional_string, None, ("--pythonpath",),
            "Comma-separated directories put first on sys.path before the app loads.", "Process", "DIRS"),
    Setting("sendfile", boolean_on_by_default, True, ("--sendfile",),
            "Send wsgi.file_wrapper files with os.sendfile; --no-sendfile reads and writes them instead.",
            "Limits"),
    Setting("capture_output", boolean, False, ("--capture-output",),
            "Send the app's stdout and stderr to the error log file.", "Logging"),
    Setting("enable_stdio_inheritance", boolean, False, ("-R", "--enable-stdio-inheritance"),
            "With --daemon, keep stdout and stderr instead of sending them to /dev/null.", "Logging"),
    Setting("logconfig", optional_string, None, ("--log-config",),
            "A logging.config.fileConfig file (ini) applied after the built-in logging; its loggers "
            "'gunicorn.error' and 'gunicorn.access' (or 'forkwsgi') receive the error and access logs.",
            "Logging", "FILE"),
    Setting("logconfig_dict", any_dict, {}, (),
            "A logging.config.dictConfig dict, applied like logconfig.", "Logging"),
    Setting("logconfig_json", optional_string, None, ("--log-config-json",),
            "A JSON file of a dictConfig dict, applied like logconfig.", "Logging", "FILE"),
    Setting("syslog", boolean, False, ("--log-syslog",),
            "Also send the error log (and the access log) to syslog at syslog_addr.", "Logging"),
    Setting("syslog_addr", optional_string, "udp://localhost:514", ("--log-syslog-to",),
            "Syslog address: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH.", "Logging", "ADDRESS"),
    Setting("syslog_prefix", optional_string, None, ("--log-syslog-prefix",),
            "Program name in syslog lines; defaults to the process name.", "Logging", "PREFIX"),
    Setting("syslog_facility", optional_string, "user", ("--log-syslog-facility",),
            "Syslog facility name (user, daemon, local0...).", "Logging", "FACILITY"),
    Setting("disable_redirect_access_to_syslog", boolean, False, ("--disable-redirect-access-to-syslog",),
            "With syslog, keep access lines out of syslog.", "Logging"),
    # gunicorn settings that have no effect here: taken, with one warning line when set
    Setting("worker_tmp_dir", anything, None, ("--worker-tmp-dir",),
            "gunicorn's heartbeat file directory.", "gunicorn", "DIR",
            "ignored: heartbeats are shared memory here, there is no file to place"),
    Setting("spew", boolean, False, ("--spew",), "gunicorn's line tracer.", "gunicorn", None,
            "ignored: use a debugger or sys.settrace in post_worker_init"),
    Setting("initgroups", boolean, False, ("--initgroups",),
            "gunicorn: set the user's supplementary groups.", "gunicorn", None,
            "same: always done when workers change user"),
    Setting("default_proc_name", anything, "gunicorn", (), "gunicorn's internal process name.", "gunicorn",
            None, "ignored: proc_name names the processes"),
    Setting("dogstatsd_tags", anything, "", ("--dogstatsd-tags",), "gunicorn's DogStatsD tags.", "gunicorn",
            "TAGS", "ignored: statsd lines are sent without tags"),
    Setting("enable_backlog_metric", boolean, False, ("--enable-backlog-metric",),
            "gunicorn's backlog gauge.", "gunicorn", None,
            "ignored: --metrics-bind reports the listen backlog"),
    Setting("uwsgi_allow_ips", anything, "127.0.0.1,::1", ("--uwsgi-allow-from",),
            "gunicorn's uwsgi protocol peers.", "gunicorn", "IPS",
            "ignored: forkwsgi speaks HTTP only (see protocol)"),
    Setting("ssl_version", anything, 2, ("--ssl-version",), "gunicorn's TLS version (deprecated there).",
            "gunicorn", "VERSION", "ignored: TLS 1.2 or newer is negotiated; set minimum_version in the "
            "ssl_context hook"),
    Setting("suppress_ragged_eofs", boolean, True, ("--suppress-ragged-eofs",), "gunicorn's TLS EOF option.",
            "gunicorn", None, "ignored: a TLS client that closes without close_notify is an ordinary close"),
    Setting("do_handshake_on_connect", boolean, False, ("--do-handshake-on-connect",),
            "gunicorn's TLS handshake timing.", "gunicorn", None,
            "ignored: handshakes always run in the event loop, never blocking a worker"),
    Setting("ciphers", optional_string, None, ("--ciphers",),
            "TLS 1.2 ciphers, in OpenSSL's cipher list syntax; default: Python's secure list.", "TLS", "CIPHERS"),
    Setting("permit_obsolete_folding", boolean, False, ("--permit-obsolete-folding",),
            "gunicorn's leniency for obs-fold.", "gunicorn", None,
            "ignored: the parser stays strict; folded lines are refused with 400"),
    Setting("permit_unconventional_http_method", boolean, False, ("--permit-unconventional-http-method",),
            "gunicorn's leniency for methods.", "gunicorn", None,
            "ignored: any RFC 9110 token is a method here"),
    Setting("permit_unconventional_http_version", boolean, False, ("--permit-unconventional-http-version",),
            "gunicorn's leniency for versions.", "gunicorn", None,
            "ignored: only HTTP/1.0 and HTTP/1.1 are served (505 otherwise)"),
    Setting("strip_header_spaces", boolean, False, ("--strip-header-spaces",),
            "gunicorn's leniency for 'Name : value'.", "gunicorn", None,
            "ignored: space before the colon is refused with 400 (RFC 9112 5.1)"),
    Setting("casefold_http_method", boolean, False, ("--casefold-http-method",),
            "Upper-case request methods before the app sees them ('get' becomes GET); off, a method "
            "reaches the app as sent (methods are case-sensitive).", "gunicorn", None,
            "same: off, forkwsgi passes a lower-case method on where gunicorn refuses it with 400"),
    Setting("http_parser", anything, "auto", ("--http-parser",), "gunicorn's parser choice.", "gunicorn",
            "PARSER", "ignored: forkwsgi has one parser"),
    Setting("root_path", anything, "", ("--root-path",), "gunicorn's ASGI root_path.", "gunicorn", "PATH",
            "ignored: ASGI only; WSGI apps get SCRIPT_NAME (environment or forwarder_headers)"),
    Setting("asgi_loop", anything, "auto", ("--asgi-loop",), "gunicorn's ASGI event loop.", "gunicorn",
            "LOOP", "ignored: ASGI only"),
    Setting("asgi_lifespan", anything, "auto", ("--asgi-lifespan",), "gunicorn's ASGI lifespan.", "gunicorn",
            "MODE", "ignored: ASGI only"),
    Setting("asgi_disconnect_grace_period", anything, 3, ("--asgi-disconnect-grace-period",),
            "gunicorn's ASGI grace period.", "gunicorn", "INT", "ignored: ASGI only"),
    Setting("websocket_max_message_size", anything, 16777216, ("--websocket-max-message-size",),
            "gunicorn's WebSocket limit.", "gunicorn", "INT", "ignored: ASGI only"),
    Setting("http2_cleartext", anything, "off", ("--http2-cleartext",), "gunicorn's h2c.", "gunicorn",
            "MODE", "ignored: HTTP/2 only (see http_protocols)"),
    Setting("http2_max_concurrent_streams", anything, 100, ("--http2-max-concurrent-streams",),
            "gunicorn's HTTP/2 limit.", "gunicorn", "INT", "ignored: HTTP/2 only (see http_protocols)"),
    Setting("http2_initial_window_size", anything, 65535, ("--http2-initial-window-size",),
            "gunicorn's HTTP/2 limit.", "gunicorn", "INT", "ignored: HTTP/2 only (see http_protocols)"),
    Setting("http2_max_frame_size", anything, 16384, ("--http2-max-frame-size",),
            "gunicorn's HTTP/2 limit.", "gunicorn", "INT", "ignored: HTTP/2 only (see http_protocols)"),
    Setting("http2_max_header_list_size", anything, 65536, ("--http2-max-header-list-size",),
            "gunicorn's HTTP/2 limit.", "gunicorn", "INT", "ignored: HTTP/2 only (see http_protocols)"),
    Setting("dirty_timeout", anything, 300, ("--dirty-timeout",), "gunicorn's dirty arbiter.", "gunicorn",
            "INT", "ignored: only with dirty_apps, which are refused"),
    Setting("dirty_threads", anything, 1, ("--dirty-threads",), "gunicorn's dirty arbiter.", "gunicorn",
            "INT", "ignored: only with dirty_apps, which are refused"),
    Setting("dirty_graceful_timeout", anything, 30, ("--dirty-graceful-timeout",),
            "gunicorn's dirty arbiter.", "gunicorn", "INT", "ignored: only with dirty_apps, which are refused"),
    Setting("control_socket_disable", boolean, False, ("--no-control-socket",),
            "gunicorn's switch to turn its control socket off.", "gunicorn", None,
            "same: the control socket is off unless control_socket is set"),
    # gunicorn settings whose meaning cannot be honoured: their defaults only
    Setting("logger_class", only_default("gunicorn.glogging.Logger",
                                         "use logconfig_dict (or logconfig) to shape the logs"),
            "gunicorn.glogging.Logger", ("--logger-class",), "gunicorn's logger class.", "gunicorn", "CLASS",
            "refused: use logconfig_dict or logconfig"),
    Setting("paste", only_default(None, "PasteDeploy is not supported: build the app in a module "
                                        "(paste.deploy.loadapp('config:...')) and name it as module:app"),
            None, ("--paste", "--paster"), "gunicorn's PasteDeploy file.", "gunicorn", "FILE",
            "refused: name the app as module:app (build it with paste.deploy.loadapp)"),
    Setting("raw_paste_global_conf", only_default([], "PasteDeploy is not supported: build the app in a "
                                                      "module and name it as module:app"),
            [], ("--paste-global",), "gunicorn's PasteDeploy globals.", "gunicorn", "KEY=VALUE",
            "refused: name the app as module:app"),
    Setting("protocol", only_default("http", "forkwsgi speaks HTTP only: use proxy_pass (nginx) instead "
                                             "of uwsgi_pass"),
            "http", ("--protocol",), "gunicorn's wire protocol.", "gunicorn", "PROTOCOL",
            "refused: http only; proxy with HTTP (nginx proxy_pass)"),
    Setting("http_protocols", only_default("h1", "HTTP/2 is not served: terminate it at a proxy in front "
                                                 "(nginx, haproxy, a load balancer) that speaks HTTP/1.1 here"),
            "h1", ("--http-protocols",), "gunicorn's HTTP versions.", "gunicorn", "PROTOCOLS",
            "refused: h1 only; terminate HTTP/2 at a proxy in front"),
    Setting("header_map", only_default("drop", "headers with '_' are dropped (header_map = 'drop'); list "
                                               "the ones a proxy sets in forwarder_headers"),
            "drop", ("--header-map",), "gunicorn's handling of header names with '_'.", "gunicorn", "MODE",
            "refused: drop only; list trusted names in forwarder_headers"),
    Setting("dirty_apps", only_default([], "dirty arbiters are not supported: run that work in a task "
                                           "queue (Celery, RQ) or a separate service"),
            [], ("--dirty-app",), "gunicorn's dirty apps.", "gunicorn", "APP",
            "refused: use a task queue or a separate service"),
    Setting("dirty_workers", only_default(0, "dirty arbiters are not supported: run that work in a task "
                                             "queue (Celery, RQ) or a separate service"),
            0, ("--dirty-workers",), "gunicorn's dirty workers.", "gunicorn", "INT",
            "refused: use a task queue or a separate service"),
    # Server hooks: config file only
    Setting("on_starting", hook(1), None, (), "on_starting(server): before the master binds.", "Hooks"),
    Setting("on_reload", hook(1), None, (), "on_reload(server): on HUP, before new workers.", "Hooks"),
    Setting("when_ready", hook(1), None, (), "when_ready(server): after the first workers are forked.", "Hooks"),
    Setting("pre_fork", hook(2), None, (), "pre_fork(server, worker): in the master, before fork.", "Hooks"),
    Setting("post_fork", hook(2), None, (), "post_fork(server, worker): in the worker, after fork.", "Hooks"),
    Setting("post_worker_init", hook(1), None, (), "post_worker_init(worker): after the app is loaded.", "Hooks"),
    Setting("worker_int", hook(1), None, (), "worker_int(worker): worker got INT or QUIT.", "Hooks"),
    Setting("worker_abort", hook(1), None, (), "worker_abort(worker): worker timed out (SIGABRT).", "Hooks"),
    Setting("ssl_context", hook(2), None, (),
            "ssl_context(config, default_ssl_context_factory): return the SSLContext to serve TLS with; "
            "calling the factory gives the default context (which is also usable as is).", "Hooks"),
    Setting("pre_exec", hook(1), None, (), "pre_exec(server): in the new master before USR2 re-exec.", "Hooks"),
    Setting("pre_request", hook(2), None, (),
            "pre_request(worker, req): before the app is called; req has gunicorn's method, path, query, "
            "uri, version, headers, remote_addr, and is also the request's environ mapping.", "Hooks"),
    Setting("post_request", hook(4, 3, 2), None, (),
            "post_request(worker, req, environ, resp): after the response is sent; resp has status, "
            "status_code, headers, sent. (worker, req) and (worker, req, environ) also do, and forkwsgi's "
            "earlier (worker, environ, status, length), recognised by its parameter named status.", "Hooks"),
    Setting("child_exit", hook(2), None, (), "child_exit(server, worker): in the master, a worker was reaped.",
            "Hooks"),
    Setting("worker_exit", hook(2), None, (), "worker_exit(server, worker): in the worker, as it exits.",
            "Hooks"),
    Setting("nworkers_changed", hook(3), None, (),
            "nworkers_changed(server, new_value, old_value): the number of workers changed (TTIN, TTOU, "
            "WINCH, a reload); also once at start, from None.", "Hooks"),
    Setting("on_exit", hook(1), None, (), "on_exit(server): the master is about to exit.", "Hooks"),
    Setting("on_dirty_starting", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", "Hooks", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_post_fork", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", "Hooks", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_worker_init", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", "Hooks", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_worker_exit", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", "Hooks", None, "refused: no dirty arbiters; use a task queue"),
]

BY_NAME = {setting.name: setting for setting in SETTINGS}
# Variables forkwsgi itself sets for a re-executed master; never settings.
INTERNAL_ENV = frozenset(("FORKWSGI_FDS", "FORKWSGI_CMD_ARGS", "FORKWSGI_PARENT_PID", "FORKWSGI_OBSERVE_FDS"))


def validate(name, value, origin):
    """Validate one setting's value; errors name the setting and where it came from."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise ConfigError("%s: unknown setting %r" % (origin, name))
    try:
        return setting.validate(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError("%s: bad value %r for %s: %s" % (origin, value, name, exc)) from None


def ignored_warning(setting, value):
    """The warning line for a gunicorn setting taken without effect, or None when it has one
    (or is left at its default)."""
    verdict = setting.gunicorn or ""
    if not verdict.startswith("ignored") or value == setting.default:
        return None
    return "setting %s = %r has no effect in forkwsgi: %s" % (setting.name, value, verdict.partition(": ")[2])


def audit(name, value):
    """(verdict, note) for one name of a config file written for gunicorn: 'mapped', 'ignored'
    (no effect here; also a refused setting left at its harmless default), 'refused' (with what
    to use instead), or 'unknown'."""
    setting = BY_NAME.get(name)
    if setting is None:
        return "unknown", "not a gunicorn or forkwsgi setting"
    try:
        setting.validate(value)
    except (TypeError, ValueError) as exc:
        return "refused", str(exc)
    kind, _, note = (setting.gunicorn or "same: forkwsgi only").partition(": ")
    if kind == "refused":
        return "ignored", "its default only; other values are refused (%s)" % note
    return ("ignored" if kind == "ignored" else "mapped"), note


def render_markdown():
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| setting | command line | environment | default | meaning | gunicorn |",
            "|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        flags = ", ".join("`%s`" % flag for flag in setting.flags) or ("config file" if setting.is_hook else
                                                                      "config file, environment")
        if setting.name == "wsgi_app":
            flags = "positional"
        env = "" if setting.is_hook else "`%s`" % setting.env
        default = "" if setting.default is None else "`%r`" % (setting.default,)
        if setting.name in ("umask", "control_socket_mode"):
            default = "`0o%o`" % setting.default
        rows.append("| `%s` | %s | %s | %s | %s | %s |" % (
            setting.name, flags, env, default, setting.help.replace("|", "\\|"),
            (setting.gunicorn or "-").replace("|", "\\|")))
    return "\n".join(rows) + "\n"


def update_readme(path):
    """Rewrite the generated settings table between the README's markers."""
    start, end = "<!-- settings:start -->\n", "<!-- settings:end -->"
    with open(path) as handle:
        text = handle.read()
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as handle:
        handle.write(head + start + render_markdown() + end + tail)


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--update-readme"]:
        update_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(render_markdown(), end="")
