"""Forking one worker: what the master does around os.fork, and what the child does until run_worker.

The only place the master reaches into the worker package: a new worker
process runs forkwsgi.worker.loop.run_worker with the WorkerSetup it is given.
"""
import os

from forkwsgi.errors import BOOT_ERROR
from forkwsgi.logs import log
from forkwsgi.master.workers import WorkerProcess
from forkwsgi.process import flush_std
from forkwsgi.worker.loop import run_worker


class Spawner:
    """Makes WorkerProcess records, forks them into the table, and starts each child's worker loop."""

    def __init__(self, table, wakeup, observer, hook):
        self.table = table
        self.wakeup = wakeup  # its write end goes to each worker's heartbeat: booted, it wakes the master
        self.observer = observer  # or None
        self.hook = hook  # hook(name, *args): a server hook, the server passed first
        self.age = 0  # how many workers were ever forked: the next one's age

    def spawn(self, generation, setup):
        """Fork a worker of ``generation``; in the child, run the worker loop with ``setup(worker)``."""
        self.age += 1
        worker = WorkerProcess(self.age, generation, self.wakeup.write_fd)
        if self.observer is not None:
            self.observer.prepare(worker)  # its shared counters page, made before fork
        self.hook("pre_fork", worker)
        self.table.spawn(worker, lambda child: self.run_child(child, setup), self.wakeup)
        if self.observer is not None:
            self.observer.spawned(worker)
        log.info("Booting worker with pid: %d", worker.pid)
        return worker

    def run_child(self, worker, setup):
        """In the new worker process, after the table reset what the master had set up: never returns."""
        if self.observer is not None:
            self.observer.in_child(worker)
        try:
            self.hook("post_fork", worker)
        except Exception:
            log.exception("post_fork hook failed")
            flush_std()
            os._exit(BOOT_ERROR)
        run_worker(setup(worker))
