"""The master's table of its workers: fork them, signal them, enforce timeouts, reap them.

The table only records and signals. Which workers to run (generations, how
many) is generations.py's; what a worker does after fork is the arbiter's
``run_child`` callback. Clocks and the kill function are passed in, so its
decisions can be driven with plain objects.
"""
import gc
import os
import signal
import time

from forkwsgi.errors import BOOT_ERROR
from forkwsgi.logs import log
from forkwsgi.shared.heartbeat import Heartbeat

KILL_GRACE = 1.0  # seconds a worker told to exit now (SIGABRT on timeout, SIGQUIT before boot) gets before SIGKILL


def fork_with_gc_off():
    """os.fork() with the collector off across it (no collection between the freeze and the fork),
    back on in both processes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return os.fork()
    finally:
        if enabled:
            gc.enable()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def _exit_before_boot(signum, frame):
    """A worker's TERM/INT/QUIT handler between fork and its own: it holds no connection yet, so it just exits."""
    os._exit(0)


class WorkerProcess:
    """The master's record of one worker."""

    def __init__(self, age, generation, wake_fd=-1):
        self.age = age
        self.generation = generation
        self.heartbeat = Heartbeat(wake_fd)
        self.pid = 0
        self.told_to_stop = False  # the master sent it TERM or QUIT because it is no longer wanted
        self.aborted_at = 0.0  # when it got SIGABRT for a timeout
        self.quit_at = 0.0  # when it got SIGQUIT, told to stop before it booted
        self.killed = False
        self.seen_booted = False
        self.stats = None  # its shared.stats.WorkerStats page, when the observer made one

    def __repr__(self):
        return "<worker %d>" % self.pid


def describe_exit(worker, code):
    """(log level, message) for a reaped worker's exit ``code`` (os.waitstatus_to_exitcode)."""
    if code < 0:
        hint = " (out of memory?)" if code == -signal.SIGKILL and not worker.killed else ""
        return "error", "worker %d was killed by %s%s" % (worker.pid, signal.Signals(-code).name, hint)
    if code != 0 and not worker.aborted_at:
        return "error", "worker %d exited with code %d" % (worker.pid, code)
    return "info", "worker %d exited" % worker.pid


def failed_to_boot(worker, code):
    """Whether this exit is a boot failure that counts: a worker told to stop no longer matters."""
    return code == BOOT_ERROR and not worker.told_to_stop


class WorkerTable:
    """pid -> WorkerProcess of the live workers, and what the master does to them."""

    def __init__(self, kill=os.kill, clock=time.monotonic):
        self.by_pid = {}
        self.kill = kill
        self.clock = clock

    def __len__(self):
        return len(self.by_pid)

    def __iter__(self):
        return iter(list(self.by_pid.values()))

    def add(self, worker):
        self.by_pid[worker.pid] = worker

    def pop(self, pid):
        return self.by_pid.pop(pid, None)

    def running(self, generation):
        """The workers of ``generation`` not told to stop."""
        return [w for w in self if w.generation == generation and not w.told_to_stop]

    def others(self, generation):
        """The workers of any other generation not told to stop."""
        return [w for w in self if w.generation != generation and not w.told_to_stop]

    def any_quitting(self):
        """Whether a worker told to stop before it booted is still around."""
        return any(w.quit_at for w in self)

    # ----- signalling

    def send(self, pid, sig):
        try:
            self.kill(pid, sig)
        except ProcessLookupError:
            pass

    def send_all(self, sig):
        for pid in list(self.by_pid):
            self.send(pid, sig)

    def tell_to_stop(self, worker):
        """Stop a worker no longer wanted: gracefully (TERM) once booted, as it may hold connections;
        at once (QUIT) before, as it holds none yet."""
        worker.told_to_stop = True
        if worker.heartbeat.booted:
            self.send(worker.pid, signal.SIGTERM)
        else:
            worker.quit_at = self.clock()
            self.send(worker.pid, signal.SIGQUIT)

    def enforce_timeouts(self, timeout):
        """SIGABRT workers silent for longer than ``timeout`` (0: never); SIGKILL those told to exit now
        that did not within KILL_GRACE."""
        now = self.clock()
        for worker in self:
            if worker.killed:
                continue
            told_at = worker.aborted_at or worker.quit_at
            if told_at:
                if now - told_at >= KILL_GRACE:
                    log.error("worker %d still running %.1fs after SIG%s; sending SIGKILL", worker.pid,
                              now - told_at, "ABRT" if worker.aborted_at else "QUIT")
                    worker.killed = True
                    self.send(worker.pid, signal.SIGKILL)
            elif timeout and now - worker.heartbeat.last_beat > timeout:
                log.critical("WORKER TIMEOUT (pid:%d): silent for over %ds, aborting it", worker.pid, timeout)
                worker.aborted_at = now
                self.send(worker.pid, signal.SIGABRT)
                self.send(worker.pid, signal.SIGCONT)  # a stopped worker must run its abort handler

    def next_due(self, timeout):
        """The earliest heartbeat deadline or SIGKILL grace end (monotonic), or None."""
        due = None
        for worker in self:
            if worker.killed:
                continue
            if worker.aborted_at or worker.quit_at:
                at = (worker.aborted_at or worker.quit_at) + KILL_GRACE
            elif timeout:
                at = worker.heartbeat.last_beat + timeout
            else:
                continue
            due = at if due is None else min(due, at)
        return due

    # ----- fork and reap

    def spawn(self, worker, run_child, wakeup):
        """Fork ``worker``; in the child, reset what the master set up and call ``run_child(worker)``,
        which never returns."""
        # Blocked across the fork: a stop signal that reaches the child before it has replaced the
        # master's handlers (which would only queue it for a master that is not there) waits, and is
        # taken by _exit_before_boot once the mask is restored.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = fork_with_gc_off()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            worker.pid = pid
            self.add(worker)
            return worker
        signal.set_wakeup_fd(-1)
        for sig in _STOP_SIGNALS:  # until the worker installs its own
            signal.signal(sig, _exit_before_boot)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        wakeup.close_read_end()  # the write end stays: its heartbeat wakes the master once it has booted
        for other in self.by_pid.values():
            other.heartbeat.close()
        worker.pid = os.getpid()
        run_child(worker)

    def reap(self, other_child=lambda pid, code: None, waitpid=os.waitpid):
        """[(worker, exit code)] of the workers that have exited, taken out of the table, their exits logged
        (but for a boot failure, which is the caller's to count). Other children go to ``other_child``."""
        found = []
        while True:
            try:
                pid, status = waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if not pid:
                return found
            code = os.waitstatus_to_exitcode(status)
            worker = self.pop(pid)
            if worker is None:
                other_child(pid, code)
                continue
            if not failed_to_boot(worker, code):
                level, message = describe_exit(worker, code)
                getattr(log, level)("%s", message)
            found.append((worker, code))

    def kill_stragglers(self):
        """SIGKILL every worker still here and wait for each (the end of a stop)."""
        self.send_all(signal.SIGKILL)
        for pid in list(self.by_pid):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.by_pid.pop(pid).heartbeat.close()
