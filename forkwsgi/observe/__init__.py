"""What the master shows of itself: Prometheus /metrics, the control socket, statsd, and OpenTelemetry.

Owns: the observer the arbiter talks to (observer.py), the metrics and control
listeners and their connections (endpoints.py), the metrics text (metrics.py),
the control commands and status report (control.py), the statsd sender
(statsd.py) and the workers' OpenTelemetry spans (otel.py).

May import: the top-level modules (errors, logs, process), http, config,
shared and wsgi; never master or worker. What it needs of the master is
passed in: the arbiter's public state, a function that queues a signal, and
the master's socket binder.
"""
