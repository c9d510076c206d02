"""The master process: it binds the listening sockets, forks and supervises the workers, and obeys signals.

Owns: the arbiter and its loop (arbiter.py), the signal queue and wake-up pipe
(signals.py), the worker table (workers.py) and forking (spawn.py),
generations and reloads (generations.py, reconfigure.py), USR2 re-exec
(upgrade.py), listening sockets and the one binder (sockets.py), systemd
(systemd.py), --max-workers (autoscale.py) and the --reload watcher (reloader.py).

May import: the top-level modules (errors, logs, process), http, config,
shared, wsgi, observe; and of worker only forkwsgi.worker.loop.run_worker
(in spawn.py): the single edge from master to worker. Nothing imports master
but the CLI.
"""
