"""The worker process: an event loop that takes connections in, reads and parses their requests,
runs the app (inline or on a thread pool) and writes the responses.

Owns: the loop (loop.py) and its components, each given what it needs:
boot, intake, channels, scheduler, handover, shedding, timers, stopping,
executor, handler, connection (with its state table, states.py), output
buffer, poller and TLS handshakes.

May import: http, wsgi, config, shared, observe, and errors, logs, process.
Never imports master: the master reaches a worker only through
``forkwsgi.worker.loop.run_worker``, given a shared.setup.WorkerSetup.
"""
