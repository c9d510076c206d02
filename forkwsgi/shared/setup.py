"""What the master hands one worker at fork: the only way from master to worker."""
from typing import Any, NamedTuple


class WorkerSetup(NamedTuple):
    """Everything a worker is given; it reads no global and nothing of the master's."""

    server: Any  # passed to the hooks that take gunicorn's arbiter (worker_exit, ...)
    cfg: Any  # the effective configuration
    listeners: list  # the listening sockets (master/sockets.Listener) it accepts from
    heartbeat: Any  # its shared.heartbeat.Heartbeat page
    app: Any = None  # the app imported by the master (--preload), else None: the worker imports it
    multiprocess: bool = True  # wsgi.multiprocess: more than one worker may run
    ids: tuple = (None, None)  # (uid, gid) to switch to after boot
    handoff: Any = None  # the shared.handoff.HandoffChannel between siblings, or None
    board: Any = None  # the shared.board.Board of server-wide flags, or None
    stats: Any = None  # its shared.stats.WorkerStats page, or None when nothing reads counters
    reload_reports: Any = None  # --reload: the directory it lists its imported files in
    age: int = 0  # its place in the order workers were forked (gunicorn's worker.age, for hooks)
