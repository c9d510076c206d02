"""Generations of workers: each reload (HUP) starts a new one; the master converges on the newest.

The previous generation serves until every worker of the new one has booted,
then is told to stop; so a reload never leaves the server without workers, and
what follows the reload meets the new code. A new generation that keeps failing
to boot is given up and the previous workers kept. systemd hears READY=1 after
a reload only once the newest generation serves (or was given up).
"""
import time

from forkwsgi.logs import log
from forkwsgi.master import systemd

MAX_BOOT_FAILURES = 5


class Generations:
    """Which generation the master converges on, and how its boot is going; acts on a WorkerTable."""

    def __init__(self, table, notify=systemd.notify, clock=time.monotonic):
        self.table = table
        self.notify = notify
        self.clock = clock
        self.generation = 0  # the newest generation: the one converge() works towards
        self.serving = None  # the newest generation that fully booted (None: none yet)
        self.boot_failures = 0
        self.next_spawn_at = 0.0  # no spawn before this (backing off after boot failures)
        self.ever_booted = False
        self.reload_unannounced = False  # systemd was told RELOADING=1 and awaits READY=1

    def converge(self, wanted, spawn):
        """Run ``wanted`` workers of the newest generation (``spawn()`` forks one); once they have all
        booted, tell every older one to stop."""
        table = self.table
        current = table.running(self.generation)
        missing = wanted - len(current)
        # Workers quit before they booted are waited for (they die at once, or are killed within
        # KILL_GRACE), so the abandoned and the new generation never run side by side.
        if missing > 0 and self.clock() >= self.next_spawn_at and not table.any_quitting():
            for _ in range(missing):
                spawn()
        elif missing < 0:
            for worker in sorted(current, key=lambda w: w.age)[:-missing]:
                table.tell_to_stop(worker)
        booted = 0
        for worker in current:
            if worker.heartbeat.booted:
                booted += 1
                if not worker.seen_booted:
                    worker.seen_booted = True
                    log.info("Worker %d booted (generation %d)", worker.pid, worker.generation)
        if booted:
            self.ever_booted = True
            self.boot_failures = 0
        if booted >= wanted:
            self.serving = self.generation
            self.announce_ready()
            for worker in table.others(self.generation):
                table.tell_to_stop(worker)

    def settled(self):
        """Whether no other generation runs beside the newest (the autoscaler judges only then)."""
        return all(w.generation == self.generation for w in self.table)

    def boot_failed(self):
        """A worker of ours exited with BOOT_ERROR. Back off exponentially; give up after repeated
        failures rather than fork-bomb. True: the master must stop (nothing left to serve)."""
        self.boot_failures += 1
        if not self.ever_booted:
            log.error("worker failed to boot; shutting down")
            return True
        if self.boot_failures >= MAX_BOOT_FAILURES:
            previous = self.table.others(self.generation)
            if not previous:
                log.error("workers failed to boot %d times in a row; shutting down", self.boot_failures)
                return True
            log.error("new workers failed to boot %d times; keeping the %d previous workers",
                      self.boot_failures, len(previous))
            for worker in self.table.running(self.generation):
                self.table.tell_to_stop(worker)  # the failing generation's workers still booting
            for worker in previous:  # the previous workers become the generation to keep
                worker.generation = self.generation
            self.serving = self.generation
            self.boot_failures = 0
            self.announce_ready()
            return False
        delay = min(0.1 * 2 ** (self.boot_failures - 1), 5.0)
        log.warning("worker failed to boot; retrying in %.1fs", delay)
        self.next_spawn_at = self.clock() + delay
        return False

    # ----- reloads

    def reload_started(self):
        """notify-reload: RELOADING=1 with the time it began (CLOCK_MONOTONIC, in microseconds)."""
        self.notify("RELOADING=1\nMONOTONIC_USEC=%d" % (time.monotonic_ns() // 1000))
        self.reload_unannounced = True

    def announce_ready(self):
        """After a reload, tell systemd READY=1 once the newest generation serves (or the failed one was given up),
        not before: `systemctl reload` returns then, and what follows it meets the new code."""
        if self.reload_unannounced and self.serving == self.generation:
            self.reload_unannounced = False
            self.notify("READY=1")

    def begin(self):
        """A reload's new generation: the next converge() spawns it."""
        self.generation += 1
        self.boot_failures = 0
        self.next_spawn_at = 0.0
        self.stop_unfinished()

    def stop_unfinished(self):
        """A reload supersedes an earlier reload's generation that has not finished booting.

        Only the serving generation (the newest that fully booted) keeps serving
        until the new one has booted; a generation in between never serves as a
        whole and is told to stop now. Before any generation fully booted, workers
        that did boot are the only ones answering, so they stay until the new ones are up.
        """
        superseded = []
        for worker in self.table.others(self.generation):
            if worker.generation == self.serving:
                continue
            if self.serving is None and worker.heartbeat.booted:
                continue
            superseded.append(worker)
            self.table.tell_to_stop(worker)
        if superseded:
            log.info("reload supersedes %d worker(s) of an earlier reload still booting: %s",
                     len(superseded), " ".join(str(w.pid) for w in superseded))
