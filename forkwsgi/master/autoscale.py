"""Workers that follow the load (--max-workers): the master's decision, from what it samples.

Each worker publishes, in its heartbeat page, since when all its app threads
have been busy (0.0 while one is free): a store at each change, and only when
--max-workers is set. The master samples those pages and the listeners' accept
queues (backlog.py) a few times a second. Under pressure (every worker busy, or
connections waiting in an accept queue) for --scale-up-after, it wants one
worker more, up to --max-workers; once a worker has been idle at every sample
for --scale-down-after, one less, down to -w, and another a second later while
one is still idle. A worker more restarts the pressure clock, so the next one is
judged on what the last one did.
"""
import time

from forkwsgi.errors import ConfigError
from forkwsgi.logs import log
from forkwsgi.shared.backlog import tcp_listen_queue

SAMPLE_INTERVAL = 0.1  # seconds between the master's samples
SETTLE = 1.0  # seconds after a retirement before the next: the load spreads over those left


def check_max_workers(cfg):
    """--max-workers below -w (counted, for -w auto) is refused: the least would be above the most."""
    if cfg.max_workers and cfg.max_workers < cfg.workers:
        raise ConfigError("--max-workers %d is below -w %d: set it to -w or more, or leave it unset"
                          % (cfg.max_workers, cfg.workers))


class Autoscaler:
    def __init__(self, up_after, down_after):
        self.up_after = up_after
        self.down_after = down_after
        self.extra = 0  # workers wanted above the minimum (-w)
        self.pressure_since = None  # when the current spell of pressure began
        self.idle_since = {}  # worker pid -> when it was first seen idle, since last seen busy
        self.changed_at = float("-inf")
        self.due = 0.0

    def sample(self, now, busy, backlog, running, room):
        """One sample: ``busy`` {pid: all threads busy}, ``backlog`` connections queued, ``running``
        workers wanted now, ``room`` how many more --max-workers allows. +1, -1 or 0: the change wanted."""
        self.due = now + SAMPLE_INTERVAL
        for pid in list(self.idle_since):
            if pid not in busy:
                del self.idle_since[pid]
        for pid, is_busy in busy.items():
            if is_busy:
                self.idle_since.pop(pid, None)
            else:
                self.idle_since.setdefault(pid, now)
        pressed = backlog > 0 or (bool(busy) and all(busy.values()))
        if not pressed:
            self.pressure_since = None
        elif self.pressure_since is None:
            self.pressure_since = now
        if pressed and room > 0 and now - max(self.pressure_since, self.changed_at) >= self.up_after:
            return self._change(now, 1)
        if not pressed and self.extra > 0 and now - self.changed_at >= SETTLE and running > 0 \
                and any(now - since >= self.down_after for since in self.idle_since.values()):
            return self._change(now, -1)
        return 0

    def _change(self, now, step):
        self.extra += step
        self.changed_at = now
        self.pressure_since = now if step > 0 else None
        return step


class AutoscaleDriver:
    """The master's side: how many workers are wanted now, and when to sample the Autoscaler."""

    def __init__(self):
        self.scaler = None  # an Autoscaler while --max-workers is set
        self.scaled = {"up": 0, "down": 0}  # workers added and retired by the autoscaler

    def configure(self, cfg):
        """At start and at each reload: an autoscaler while --max-workers is set, keeping what it added."""
        if not cfg.max_workers:
            self.scaler = None
        elif self.scaler is None:
            self.scaler = Autoscaler(cfg.scale_up_after, cfg.scale_down_after)
        else:
            self.scaler.up_after, self.scaler.down_after = cfg.scale_up_after, cfg.scale_down_after

    @staticmethod
    def most_workers(cfg):
        """The most workers that may run: --max-workers, or -w (moved by TTIN/TTOU) when above it or unset."""
        return max(cfg.workers, cfg.max_workers or 0)

    def wanted(self, cfg):
        """Workers to run now: -w (the least; 0 after WINCH), plus those the autoscaler added."""
        workers = cfg.workers
        if self.scaler is None or not workers:
            return workers
        return min(workers + self.scaler.extra, self.most_workers(cfg))

    def due(self):
        """When the next sample is due (monotonic), or None without --max-workers."""
        return None if self.scaler is None else self.scaler.due

    def step(self, cfg, current, settled, listeners, now=None):
        """Sample the ``current`` workers' busy-ness (heartbeat pages) and the accept queues of ``listeners``;
        True when a worker is to be added or retired. Only once ``settled`` (no reload under way) and
        every current worker has booted."""
        scaler = self.scaler
        now = time.monotonic() if now is None else now
        if scaler is None or now < scaler.due or not cfg.workers:
            return False
        scaler.extra = self.wanted(cfg) - cfg.workers  # TTIN/TTOU may have moved the bounds
        if not settled or any(not w.heartbeat.booted for w in current):
            scaler.due = now + SAMPLE_INTERVAL  # booting or reloading: judge the workers once they serve
            return False
        busy = {w.pid: w.heartbeat.busy_since > 0.0 for w in current}
        queues = [tcp_listen_queue(listener.sock) for listener in listeners]
        backlog = sum(queue[0] for queue in queues if queue is not None)
        step = scaler.sample(now, busy, backlog, len(current), self.most_workers(cfg) - self.wanted(cfg))
        if not step:
            return False
        self.scaled["up" if step > 0 else "down"] += 1
        log.info("%s: %d worker(s) wanted (-w %d, --max-workers %d)",
                 "load: every worker busy or connections queued, adding a worker" if step > 0
                 else "load: a worker idle for --scale-down-after, retiring one", self.wanted(cfg),
                 cfg.workers, self.most_workers(cfg))
        return True
