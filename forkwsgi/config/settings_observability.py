"""Watching a running server: metrics, the control socket, tracing, statsd, the memory guard."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import (boolean, non_negative_float, octal, optional_address,
                                        optional_host_port, optional_string)

ROWS = [
    Setting("metrics_bind", optional_address, None, ("--metrics-bind",),
            "Serve Prometheus metrics at /metrics on this address (HOST:PORT or unix:PATH), from the master, "
            "never on the app's sockets. Off when unset.", "ADDRESS", gunicorn=None),
    Setting("control_socket", optional_string, None, ("--control-socket",),
            "Unix socket of the master that `forkwsgi ctl` talks to (status, reload, add, remove, stop). "
            "Off when unset.", "PATH",
            "same: off unless set (gunicorn's is on), spoken to by forkwsgi ctl"),
    Setting("control_socket_mode", octal, 0o600, ("--control-socket-mode",),
            "File mode of the control socket (octal).", "OCTAL"),
    Setting("max_worker_memory", non_negative_float, 0.0, ("--max-worker-memory",),
            "Restart a worker gracefully once the memory it alone holds (USS, not RSS: pages shared with "
            "the master and siblings are not its own) passes this many MB (checked after each request); "
            "0 disables.", "MB", gunicorn=None),
    Setting("otel", boolean, False, ("--otel",),
            "OpenTelemetry tracing (the otel extra): each worker, after the fork, sets up the SDK from the "
            "OTEL_* variables and traces each request as a server span, continuing the client's traceparent.",
            gunicorn=None),
    Setting("statsd_host", optional_host_port, None, ("--statsd-host",),
            "Send the metrics as statsd lines over UDP to HOST:PORT, from the master once a second. "
            "Off when unset.", "HOST:PORT"),
    Setting("statsd_prefix", optional_string, "forkwsgi", ("--statsd-prefix",),
            "Prefix of the statsd metric names.", "PREFIX",
            "same: default 'forkwsgi' where gunicorn's is empty"),
]
