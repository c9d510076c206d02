"""--otel: OpenTelemetry tracing, set up in each worker after the fork.

A tracer provider made in the master does not survive a pre-fork server: its
batch exporter's thread is not copied by fork(), so the workers' spans queue
and never leave. Here each worker builds its own provider after the fork,
configured by the standard OTEL_* variables (exporter, endpoint, sampler,
service name, batch sizes), wraps the app with opentelemetry-instrumentation-wsgi's
middleware (one server span per request, the client's W3C traceparent continued),
and flushes its spans before it exits: os._exit() runs no atexit handler.

Nothing here imports OpenTelemetry unless --otel is on: it is an optional extra.
"""
import os
from importlib.util import find_spec

from forkwsgi.errors import ConfigError
from forkwsgi.logs import log

EXTRA = "pip install 'forkwsgi[otel]'"
REQUIRED = ("opentelemetry.sdk", "opentelemetry.instrumentation.wsgi")
EXPORTER_GROUP = "opentelemetry_traces_exporter"
PID_ATTRIBUTE = "process.pid"
from forkwsgi.wsgi.queuetime import QUEUE_TIME_KEY  # seconds the request waited in forkwsgi, when the environ has it


def missing_packages():
    """The modules --otel needs that are not installed (found without importing them)."""
    missing = []
    for name in REQUIRED:
        try:
            found = find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(name)
    return missing


def check(cfg):
    """At start and on reload, in the master: refuse --otel without the extra, before any worker fails."""
    missing = missing_packages() if cfg.otel else []
    if missing:
        raise ConfigError("--otel needs the otel extra: %s (missing: %s)" % (EXTRA, ", ".join(missing)))


def exporter_names(environ):
    """Entry point names of the span exporters OTEL_TRACES_EXPORTER asks for ("otlp" by default).

    "otlp" means OTLP over OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: http/protobuf unless grpc."""
    names = []
    for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(","):
        name = name.strip().lower()
        if name == "otlp":
            protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or \
                environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
            name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
        if name and name != "none":
            names.append(name)
    return names


def _exporter_class(name):
    from importlib.metadata import entry_points
    try:
        found = entry_points(group=EXPORTER_GROUP)
    except TypeError:  # Python 3.9
        found = entry_points().get(EXPORTER_GROUP, ())
    for entry in found:
        if entry.name == name:
            return entry.load()
    raise ConfigError("OTEL_TRACES_EXPORTER: no span exporter %r is installed (%s has otlp and console)"
                      % (name, EXTRA))


def instrument(app, cfg, environ=os.environ):
    """In a worker, after fork: the app wrapped in a server span per request, exporting from this worker."""
    if not getattr(cfg, "otel", False) or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return app
    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create(), shutdown_on_exit=False)  # flush() does it
    for name in exporter_names(environ):
        provider.add_span_processor(BatchSpanProcessor(_exporter_class(name)()))
    trace.set_tracer_provider(provider)  # the app's own spans join the server span
    pid = os.getpid()

    def request_hook(span, request_environ):
        if span.is_recording():
            span.set_attribute(PID_ATTRIBUTE, pid)
            queue_time = request_environ.get(QUEUE_TIME_KEY)
            if queue_time is not None:
                span.set_attribute(QUEUE_TIME_KEY, float(queue_time))

    wrapped = OpenTelemetryMiddleware(app, request_hook=request_hook, tracer_provider=provider)
    wrapped.forkwsgi_provider = provider  # what flush() ends
    return wrapped


def flush(app, graceful=True):
    """As a worker exits gracefully: export the spans still queued, then stop the exporter.

    ``app`` is the worker's app: instrument()'s wrapper, or the plain app when --otel is off.
    Waits at most the exporter's timeout when the collector does not answer; a fast stop
    (QUIT, INT, a timeout's abort) does not wait, and its queued spans are lost."""
    provider = getattr(app, "forkwsgi_provider", None)
    if provider is None or not graceful:
        return
    try:
        provider.force_flush()
        provider.shutdown()
    except Exception:
        log.exception("worker %d: flushing OpenTelemetry spans failed", os.getpid())
