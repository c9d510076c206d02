"""--otel: OpenTelemetry set up in each worker after the fork, spans exported over OTLP/HTTP.

A small OTLP/HTTP receiver (http.server on 127.0.0.1, decoded with opentelemetry-proto)
collects what real forkwsgi workers export.
"""
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from forkwsgi.observe import otel
from tests.support.ports import free_port
from tests.support.processes import wait_for
from tests.support.server import ROOT

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed (pip install 'forkwsgi[otel]')")
pytest.importorskip("opentelemetry.instrumentation.wsgi", reason="the otel extra is not installed")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otel extra is not installed")
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                                    reason="opentelemetry-proto (the test extra) decodes what is exported")
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402


def attribute(value):
    """The Python value of an OTLP AnyValue."""
    return getattr(value, value.WhichOneof("value"))


class Receiver:
    """An OTLP/HTTP traces endpoint: keeps every span posted to /v1/traces, with its attributes as a dict."""

    def __init__(self):
        self.spans = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = trace_service.ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans.extend(scope_spans.spans)
                answer = trace_service.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def server_spans(self):
        with self.lock:
            return [span for span in self.spans if span.kind == trace_pb2.Span.SPAN_KIND_SERVER]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


REQUESTS = [("GET", "/pid", 200), ("POST", "/echo", 200), ("GET", "/missing", 404)]


def send_traced(server, number, sent):
    """One request on a new connection with its own traceparent; records what its span must say."""
    method, path, status = REQUESTS[number % len(REQUESTS)]
    trace_id, parent_id = os.urandom(16), os.urandom(8)
    headers = {"traceparent": "00-%s-%s-01" % (trace_id.hex(), parent_id.hex()), "Connection": "close"}
    response = requests.request(method, server.url(path), headers=headers, data=b"x" * number, timeout=10)
    assert response.status_code == status
    sent[trace_id] = (parent_id, method, path, status, int(response.text) if path == "/pid" else None)


def check_spans(spans, sent):
    """Every request has exactly one server span, with its method, path, status, parent and worker pid."""
    assert len(spans) == len(sent), (len(spans), len(sent))
    pids = set()
    for span in spans:
        attrs = {item.key: attribute(item.value) for item in span.attributes}
        parent_id, method, path, status, pid = sent.pop(span.trace_id)  # each trace once
        assert span.parent_span_id == parent_id
        assert span.name == "%s %s" % (method, path)
        assert attrs.get("http.request.method", attrs.get("http.method")) == method
        assert attrs.get("url.path", attrs.get("http.target")) == path
        assert attrs.get("http.response.status_code", attrs.get("http.status_code")) == status
        assert pid is None or attrs[otel.PID_ATTRIBUTE] == pid
        pids.add(attrs[otel.PID_ATTRIBUTE])
    assert not sent
    return pids


@pytest.mark.slow
def test_every_request_one_server_span_across_a_hup_and_a_graceful_stop(server_factory, receiver):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "forkwsgi-test"}
    server = server_factory(["-w", "2", "--otel"], env=env)
    first = set(server.wait_workers(2))
    sent = {}
    for number in range(50):
        send_traced(server, number, sent)
    server.send(signal.SIGHUP)
    assert wait_for(lambda: len(server.worker_pids()) == 2 and not first & set(server.worker_pids()),
                    timeout=20), server.log()
    second = set(server.worker_pids())
    for number in range(50, 100):
        send_traced(server, number, sent)
    assert server.stop(signal.SIGTERM) == 0
    pids = check_spans(receiver.server_spans(), sent)
    assert pids & first and pids & second, (pids, first, second)  # the replaced workers' spans too
    assert pids <= first | second


def test_otel_refused_at_start_without_the_extra(server_factory, tmp_path):
    shadow = tmp_path / "opentelemetry"  # a plain package of that name hides the installed ones
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    server = server_factory(["-w", "1", "--otel"], ready=False,
                            env={"PYTHONPATH": "%s:%s" % (tmp_path, ROOT)})
    assert server.proc.wait(20) != 0
    assert "--otel needs the otel extra: pip install 'forkwsgi[otel]'" in server.log()
    assert "Booting worker" not in server.log()


def test_exporter_names_follow_the_standard_variables():
    assert otel.exporter_names({}) == ["otlp_proto_http"]
    assert otel.exporter_names({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == ["otlp_proto_grpc"]
    assert otel.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert otel.exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp_proto_http", "console"]


def test_instrument_leaves_the_app_alone_without_otel():
    class Cfg:
        otel = False

    def app(environ, start_response):
        return []
    assert otel.instrument(app, Cfg) is app
    otel.flush(app)  # nothing to flush


def test_span_carries_the_worker_pid_and_queue_time_and_continues_traceparent():
    from wsgiref.util import setup_testing_defaults
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Cfg:
        otel = True

    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"made"]

    wrapped = otel.instrument(app, Cfg, environ={"OTEL_TRACES_EXPORTER": "none"})
    memory = InMemorySpanExporter()
    wrapped.forkwsgi_provider.add_span_processor(SimpleSpanProcessor(memory))
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/things/1", "forkwsgi.queue_time": 0.25,
               "HTTP_TRACEPARENT": "00-%s-%s-01" % ("ab" * 16, "cd" * 8)}
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(wrapped(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert body == b"made" and statuses == ["201 Created"]
    [span] = memory.get_finished_spans()
    assert span.attributes[otel.PID_ATTRIBUTE] == os.getpid()
    assert span.attributes[otel.QUEUE_TIME_KEY] == 0.25
    assert span.context.trace_id == int("ab" * 16, 16) and span.parent.span_id == int("cd" * 8, 16)
    otel.flush(wrapped)


def test_fast_stop_does_not_wait_for_an_unreachable_collector(server_factory):
    closed = free_port()  # nothing listens there: each export would retry until its timeout
    server = server_factory(["-w", "1", "--otel"],
                            env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % closed})
    assert requests.get(server.url("/"), timeout=10).status_code == 200
    server.send(signal.SIGQUIT)
    assert server.proc.wait(3) == 0, server.log()
