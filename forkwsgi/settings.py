"""The one table of settings.

Each setting is declared once here: name, validator, default, CLI flags, env
var and help. The CLI parser, the config-file loader, FORKWSGI_* variables,
``--print-config`` and the README's settings list are all generated from it.
"""
import inspect

from .errors import ConfigError
from .sockets import parse_address
from .tls import cert_reqs


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


def string_list(value):
    """A list of strings; a string is split on commas (env vars, CLI)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ValueError("expected a list of strings")


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


def octal(value):
    if isinstance(value, int):
        return value
    return int(str(value), 8) if not str(value).startswith("0x") else int(str(value), 16)


def log_level(value):
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("expected debug, info, warning, error or critical")
    return level


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


def hook(arity):
    def validate(value):
        if value is None:
            return None
        if not callable(value):
            raise ValueError("expected a function")
        try:
            inspect.signature(value).bind(*range(arity))
        except TypeError:
            raise ValueError("must accept %d positional argument(s)" % arity) from None
        except ValueError:
            pass  # builtins without a signature: trust them
        return value
    validate.arity = arity
    return validate


class Setting:
    __slots__ = ("name", "validate", "default", "flags", "help", "section", "metavar")

    def __init__(self, name, validate, default, flags=(), help="", section="Server", metavar=None):
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
    Setting("umask", octal, 0, ("--umask",), "umask applied when creating unix sockets (octal).", "Server", "OCTAL"),
    Setting("workers", worker_count, 1, ("-w", "--workers"),
            "Number of worker processes, or 'auto': the container's CPU quota (cgroup v2 cpu.max or v1 "
            "cpu.cfs_quota_us, rounded up), else the CPUs this process may run on.", "Server", "INT|auto"),
    Setting("worker_connections", positive_int, 1000, ("--worker-connections",),
            "Most open client connections one worker multiplexes.", "Server", "INT"),
    Setting("threads", positive_int, 1, ("--threads",),
            "App threads per worker. 1 runs the app in the event loop's thread; more run app calls on a "
            "pool while the loop keeps serving I/O (for apps that wait on databases and APIs).", "Server", "INT"),
    Setting("handoff", boolean, True, ("--handoff",),
            "Move a connection whose request waits behind a busy worker to an idle sibling, and move idle "
            "keep-alive connections off a worker that retires (reload, max-requests, fewer workers).",
            "Server"),
    Setting("handoff_delay", non_negative_float, 0.003, ("--handoff-delay",),
            "Seconds a request that has arrived may wait for its busy worker before its connection moves "
            "to an idle sibling.", "Server", "SECONDS"),
    Setting("preload_app", boolean, False, ("--preload",),
            "Import the application in the master before forking workers; its objects are then frozen "
            "(gc.freeze) so the workers share their memory.", "Server"),
    Setting("chdir", optional_string, None, ("--chdir",), "Change to this directory before loading the app.",
            "Server", "DIR"),
    # Timeouts and limits
    Setting("timeout", non_negative_int, 30, ("-t", "--timeout"),
            "Seconds a worker may stay silent (stuck in the app) before it is killed and replaced; 0 disables.",
            "Timeouts", "INT"),
    Setting("graceful_timeout", non_negative_int, 30, ("--graceful-timeout",),
            "Seconds workers get to finish in-flight and queued requests on graceful stop.", "Timeouts", "INT"),
    Setting("keepalive", non_negative_float, 5.0, ("--keepalive", "--keep-alive"),
            "Seconds an idle keep-alive connection is kept open; 0 turns keep-alive off.", "Timeouts", "SECONDS"),
    Setting("header_timeout", non_negative_float, 10.0, ("--header-timeout",),
            "Seconds a client has to send a complete request head once it starts (slowloris guard).",
            "Timeouts", "SECONDS"),
    Setting("body_timeout", non_negative_float, 30.0, ("--body-timeout",),
            "Seconds a request body may stall without a byte arriving.", "Timeouts", "SECONDS"),
    Setting("send_timeout", non_negative_float, 30.0, ("--send-timeout",),
            "Seconds a response may wait for the client to take a byte before the connection is dropped. "
            "An app writing more than output_buffer_max waits at most this long for the client to take "
            "half of it.", "Timeouts", "SECONDS"),
    Setting("shutdown_delay", non_negative_float, 0.0, ("--shutdown-delay",),
            "On TERM, keep accepting and serving for this many seconds (health checks fail, responses say "
            "Connection: close) before the graceful stop: load balancers stop sending first.",
            "Timeouts", "SECONDS"),
    Setting("max_requests", non_negative_int, 0, ("--max-requests",),
            "Restart a worker gracefully after this many requests (contains leaks); 0 disables.",
            "Timeouts", "INT"),
    Setting("max_requests_jitter", non_negative_int, 0, ("--max-requests-jitter",),
            "Add a random 0..N to max_requests per worker so they do not all restart at once.",
            "Timeouts", "INT"),
    Setting("limit_request_line", positive_int, 4094, ("--limit-request-line",),
            "Longest request line in bytes (414 beyond).", "Limits", "INT"),
    Setting("limit_request_fields", positive_int, 100, ("--limit-request-fields",),
            "Most header fields in a request (431 beyond).", "Limits", "INT"),
    Setting("limit_request_field_size", positive_int, 8190, ("--limit-request-field-size",),
            "Longest header field line in bytes (431 beyond).", "Limits", "INT"),
    Setting("limit_request_body", non_negative_int, 1 << 30, ("--limit-request-body",),
            "Largest request body in bytes (413 beyond); 0 means no limit. The default, 1 GiB (Apache "
            "httpd's LimitRequestBody default since 2.4.54), lets large uploads through (nginx's 1 MB "
            "is too small for an app server) while one request cannot fill the spool without end.",
            "Limits", "INT"),
    Setting("output_buffer_memory", non_negative_int, 1 << 20, ("--output-buffer-memory",),
            "Bytes of a response the client has not taken yet that a connection keeps in memory; "
            "beyond this they spill to a file in spool_dir.", "Limits", "BYTES"),
    Setting("output_buffer_max", positive_int, 64 << 20, ("--output-buffer-max",),
            "Most bytes of unsent response a connection buffers (memory and spill file); beyond this "
            "the app's writes wait for the client.", "Limits", "BYTES"),
    Setting("output_spill_budget", non_negative_int, 256 << 20, ("--output-spill-budget",),
            "Most bytes of response output one worker keeps spilled in spool_dir, all its connections "
            "together; past it, output waits in memory up to output_buffer_memory, then the app's "
            "writes wait for the client. 0 never spills. The default, 256 MiB, is four connections at "
            "output_buffer_max: clients that never read cannot fill the disk (RAM on a tmpfs /tmp); "
            "workers times this must fit in spool_dir.", "Limits", "BYTES"),
    Setting("spool_dir", optional_string, None, ("--spool-dir",),
            "Directory for request bodies over 1 MiB and spilled response output; default: the "
            "system temp directory.", "Limits", "DIR"),
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
            "Peers (IPs or networks, '*' for any) trusted to set X-Forwarded-For and X-Forwarded-Proto.",
            "Proxies", "IPS"),
    Setting("proxy_protocol", boolean, False, ("--proxy-protocol",),
            "Expect a PROXY protocol v1 line at the start of each connection.", "Proxies"),
    Setting("proxy_allow_ips", string_list, ["127.0.0.1", "::1"], ("--proxy-allow-from",),
            "Peers allowed to send a PROXY protocol line.", "Proxies", "IPS"),
    Setting("health_path", optional_string, None, ("--health-path",),
            "A path (e.g. /healthz) the worker answers itself, without the app: 200, or 503 once stopping "
            "(readiness). Off when unset.", "Proxies", "PATH"),
    # Logging
    Setting("errorlog", optional_string, "-", ("--error-logfile", "--log-file"),
            "Error log file; '-' is stderr.", "Logging", "FILE"),
    Setting("loglevel", log_level, "info", ("--log-level",), "Error log level.", "Logging", "LEVEL"),
    Setting("accesslog", optional_string, None, ("--access-logfile",),
            "Access log file; '-' is stdout. Off when unset.", "Logging", "FILE"),
    Setting("log_health", boolean, False, ("--log-health",),
            "Write health-path requests to the access log too.", "Logging"),
    Setting("access_log_format", optional_string, ACCESS_LOG_FORMAT, ("--access-logformat",),
            "Access log line format, with gunicorn's atoms (h l u t r m U q H s b B f a T D L p "
            "{header}i {header}o {var}e).", "Logging", "FORMAT"),
    # Process
    Setting("proc_name", optional_string, None, ("-n", "--name"),
            "Name shown in process titles; defaults to the app.", "Process", "NAME"),
    Setting("pidfile", optional_string, None, ("-p", "--pid"), "Write the master's pid to this file.",
            "Process", "FILE"),
    Setting("user", optional_string, None, ("-u", "--user"), "Run workers as this user (name or uid).",
            "Process", "USER"),
    Setting("group", optional_string, None, ("-g", "--group"), "Run workers as this group (name or gid).",
            "Process", "GROUP"),
    Setting("daemon", boolean, False, ("-D", "--daemon"), "Detach from the terminal and run in the background.",
            "Process"),
    # Development
    Setting("reload", boolean, False, ("--reload",),
            "Development: restart the workers when a file of the app (any imported module), the config file or "
            "a reload_extra_files entry changes; an app that fails to import serves its traceback to loopback "
            "clients instead of exiting. Not with --preload.", "Development"),
    Setting("reload_extra_files", string_list, [], ("--reload-extra-file",),
            "With --reload, also watch this file (templates, data). Repeat for several.", "Development", "FILE"),
    Setting("reload_engine", reload_engine, "auto", ("--reload-engine",),
            "How --reload watches: 'inotify' (the watchfiles package), 'poll' (stat every second) or 'auto' "
            "(inotify when watchfiles is installed).", "Development", "ENGINE"),
    # Observability
    Setting("metrics_bind", optional_address, None, ("--metrics-bind",),
            "Serve Prometheus metrics at /metrics on this address (HOST:PORT or unix:PATH), from the master, "
            "never on the app's sockets. Off when unset.", "Observability", "ADDRESS"),
    Setting("control_socket", optional_string, None, ("--control-socket",),
            "Unix socket of the master that `forkwsgi ctl` talks to (status, reload, add, remove, stop). "
            "Off when unset.", "Observability", "PATH"),
    Setting("control_socket_mode", octal, 0o600, ("--control-socket-mode",),
            "File mode of the control socket (octal).", "Observability", "OCTAL"),
    Setting("max_worker_memory", non_negative_float, 0.0, ("--max-worker-memory",),
            "Restart a worker gracefully once the memory it alone holds (USS, not RSS: pages shared with "
            "the master and siblings are not its own) passes this many MB (checked after each request); "
            "0 disables.", "Observability", "MB"),
    Setting("otel", boolean, False, ("--otel",),
            "OpenTelemetry tracing (the otel extra): each worker, after the fork, sets up the SDK from the "
            "OTEL_* variables and traces each request as a server span, continuing the client's traceparent.",
            "Observability"),
    Setting("statsd_host", optional_host_port, None, ("--statsd-host",),
            "Send the metrics as statsd lines over UDP to HOST:PORT, from the master once a second. "
            "Off when unset.", "Observability", "HOST:PORT"),
    Setting("statsd_prefix", optional_string, "forkwsgi", ("--statsd-prefix",),
            "Prefix of the statsd metric names.", "Observability", "PREFIX"),
    # Server hooks: config file only
    Setting("on_starting", hook(1), None, (), "on_starting(arbiter): before the master binds.", "Hooks"),
    Setting("on_reload", hook(1), None, (), "on_reload(arbiter): on HUP, before new workers.", "Hooks"),
    Setting("when_ready", hook(1), None, (), "when_ready(arbiter): after the first workers are forked.", "Hooks"),
    Setting("pre_fork", hook(2), None, (), "pre_fork(arbiter, worker): in the master, before fork.", "Hooks"),
    Setting("post_fork", hook(2), None, (), "post_fork(arbiter, worker): in the worker, after fork.", "Hooks"),
    Setting("post_worker_init", hook(1), None, (), "post_worker_init(worker): after the app is loaded.", "Hooks"),
    Setting("worker_int", hook(1), None, (), "worker_int(worker): worker got INT or QUIT.", "Hooks"),
    Setting("worker_abort", hook(1), None, (), "worker_abort(worker): worker timed out (SIGABRT).", "Hooks"),
    Setting("ssl_context", hook(2), None, (),
            "ssl_context(config, default_context): return the SSLContext to serve TLS with.", "Hooks"),
    Setting("pre_exec", hook(1), None, (), "pre_exec(arbiter): in the new master before USR2 re-exec.", "Hooks"),
    Setting("pre_request", hook(2), None, (), "pre_request(worker, environ): before the app is called.",
            "Hooks"),
    Setting("post_request", hook(4), None, (),
            "post_request(worker, environ, status, response_length): after the response is sent.", "Hooks"),
    Setting("child_exit", hook(2), None, (), "child_exit(arbiter, worker): in the master, a worker was reaped.",
            "Hooks"),
    Setting("worker_exit", hook(2), None, (), "worker_exit(arbiter, worker): in the worker, as it exits.",
            "Hooks"),
    Setting("on_exit", hook(1), None, (), "on_exit(arbiter): the master is about to exit.", "Hooks"),
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


def render_markdown():
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| setting | command line | environment | default | meaning |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        flags = ", ".join("`%s`" % flag for flag in setting.flags) or ("config file" if setting.is_hook else "positional")
        env = "" if setting.is_hook else "`%s`" % setting.env
        default = "" if setting.default is None else "`%r`" % (setting.default,)
        if setting.name in ("umask", "control_socket_mode"):
            default = "`0o%o`" % setting.default
        rows.append("| `%s` | %s | %s | %s | %s |" % (setting.name, flags, env, default,
                                                     setting.help.replace("|", "\\|")))
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
