"""The master's signal queue and the pipe that wakes its loop.

Signal handlers only enqueue (SignalQueue.put); so do the control socket and
the --reload watcher thread. The loop pops one entry at a time and does the
real work there. Every put writes a byte to the wake-up pipe, as does a
booting worker (heartbeat.mark_booted), so the loop's select returns at once.
"""
import os
import select
import signal

HANDLED_SIGNALS = ("HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH", "CHLD")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
MAX_QUEUED = 16  # queue entries of other signals; a flood beyond this is dropped, a stop signal never


class WakeupPipe:
    """A non-blocking pipe: a byte written to ``write_fd`` ends the loop's select on ``read_fd``.

    Made before the first fork: workers keep the write end (close-on-exec) to say they have booted.
    """

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def wake(self):
        try:
            os.write(self.write_fd, b"\0")
        except OSError:
            pass  # the pipe is full: the loop is awake anyway

    def wait(self, timeout, observer=None):
        """Sleep until a byte comes through the pipe (a signal, a put, a booted worker) or ``timeout``;
        the observer's metrics and control sockets are served from this same select, never blocking."""
        try:
            if observer is None:
                select.select([self.read_fd], [], [], timeout)
            else:
                ready, writable, _ = select.select([self.read_fd] + observer.readers(), observer.writers(), [],
                                                   timeout)
                observer.handle(ready, writable)
        except InterruptedError:
            pass
        self.drain()

    def drain(self):
        try:
            while os.read(self.read_fd, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close_read_end(self):
        """In a new worker: only the master reads the pipe."""
        os.close(self.read_fd)


class SignalQueue:
    """Signals waiting for the master's loop, as [signum, count] entries in arrival order."""

    def __init__(self, wake=None):
        self.entries = []
        self.wake = wake  # called after each put, so a put from another thread ends the loop's sleep

    def put(self, signum, count=1):
        """Queue a signal: from a handler, the control socket (``count`` for add/remove N) or the reloader.

        A stop signal is never dropped, so TERM from systemd or kill(1) always stops the master; only
        a copy of it already queued makes it redundant. A signal like the last one queued joins that
        entry (TTIN/TTOU add up their counts, HUPs are one reload). Anything else is dropped once
        MAX_QUEUED entries wait, so a signal flood cannot grow the queue without bound.
        """
        queue = self.entries
        if signum in STOP_SIGNALS:
            if not any(entry[0] == signum for entry in queue):
                queue.append([signum, 1])
        elif queue and queue[-1][0] == signum:
            queue[-1][1] += count
        elif len(queue) < MAX_QUEUED:
            queue.append([signum, count])
        if self.wake is not None:
            self.wake()

    def handler(self, signum, frame):
        """The handler installed for every HANDLED_SIGNALS: it only queues."""
        self.put(signum)

    def pop(self):
        """(signum, count) of the oldest entry; the queue must not be empty."""
        signum, count = self.entries.pop(0)
        return signum, count

    def take_reloads(self):
        """Remove the HUPs (and CHLDs) queued right behind the one being handled: one reload serves them all.
        Returns how many HUPs that merged."""
        merged = 0
        while self.entries and self.entries[0][0] in (signal.SIGHUP, signal.SIGCHLD):
            signum, count = self.pop()
            merged += count if signum == signal.SIGHUP else 0
        return merged

    def __bool__(self):
        return bool(self.entries)

    def __len__(self):
        return len(self.entries)

    def install(self, wakeup):
        """Route HANDLED_SIGNALS to this queue, and any signal at all to ``wakeup`` (the self-pipe),
        which each put also wakes from now on."""
        self.wake = wakeup.wake
        signal.set_wakeup_fd(wakeup.write_fd, warn_on_full_buffer=False)
        for name in HANDLED_SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self.handler)
