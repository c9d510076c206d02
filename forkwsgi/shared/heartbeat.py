"""Worker liveness through a shared anonymous page: the worker writes, the master reads.

No file and no syscall per beat: a store into memory that both processes map
(mmap of -1 is MAP_SHARED|MAP_ANONYMOUS and survives fork).

Each stamp is one aligned 8-byte double, written and read through a memoryview:
a single store, so the master, reading from another core, sees the old stamp or
the new one and nothing between. (struct.pack_into zero-fills its bytes before
writing them: a master reading at that instant saw 0.0 and killed a busy worker
as silent.)

A worker that has booted also writes a byte to the master's wake-up pipe (its
write end made before fork, passed in), so the master sees the new worker at
once rather than at its next look (up to a second later): a reload retires
the old generation as soon as the new one serves.
"""
import mmap
import operator
import os
import time
from functools import partial

# indexes of the doubles, monotonic seconds: last beat, boot time (0 until booted), since when every app
# thread is busy (0 while one is free; written only with --max-workers, for autoscale.py)
_BEAT_AT, _BOOTED_AT, BUSY_SINCE = 0, 1, 2


class Heartbeat:
    __slots__ = ("page", "stamps", "wake_fd", "beat")

    def __init__(self, wake_fd=-1):
        self.page = mmap.mmap(-1, 24)
        self.wake_fd = wake_fd  # the master's wake-up pipe (not ours to close), or -1
        self.stamps = memoryview(self.page).cast("d")
        self.stamps[_BEAT_AT] = time.monotonic()
        # beat(now): the store itself, with no Python frame around it (the loop beats on every request).
        # operator.setitem takes a vector call, as a method-wrapper (stamps.__setitem__) does not: the
        # partial then calls it without building a tuple of arguments.
        self.beat = partial(operator.setitem, self.stamps, _BEAT_AT)

    def mark_booted(self):
        now = time.monotonic()
        self.stamps[_BEAT_AT] = now
        self.stamps[_BOOTED_AT] = now
        if self.wake_fd >= 0:
            try:
                os.write(self.wake_fd, b"\0")
            except OSError:
                pass  # the pipe is full (the master is awake anyway) or the master is gone

    def busy(self, since):
        """Every app thread is busy since ``since`` (0.0: one is free again)."""
        self.stamps[BUSY_SINCE] = since

    @property
    def busy_since(self):
        return self.stamps[BUSY_SINCE]

    @property
    def last_beat(self):
        return self.stamps[_BEAT_AT]

    @property
    def booted_at(self):
        """When the worker finished booting (monotonic); 0.0 until then."""
        return self.stamps[_BOOTED_AT]

    @property
    def booted(self):
        return self.stamps[_BOOTED_AT] > 0

    def close(self):
        self.stamps.release()
        self.page.close()
