"""What the master makes before fork and both sides use: shared pages, channels and the worker's setup.

Owns: the heartbeat page (heartbeat.py), the flags page (board.py), the
counters page (stats.py), the hand-off channel between workers (handoff.py),
the kernel's accept-queue readings (backlog.py) and WorkerSetup, all a worker
is given (setup.py).

May import: only the top-level modules errors, logs and process (and http
where needed); never config, wsgi, worker, master or observe, so both sides
can use it.
"""
