"""Per-connection output not yet taken by the client.

The app's writes go straight to the socket while it keeps up; what it cannot
take waits here, so the worker moves on and its event loop drains the rest. A
slow reader then costs memory up to ``memory_limit``, then a spill file in the
spool directory, then (past ``max_size``) the writer waits for it, bounded.
Regular files from ``wsgi.file_wrapper`` are queued as (fd, offset, count) and
later sent with sendfile, never copied.

The spill files of one worker's connections share a ``SpillBudget``: without
one, clients that never read could fill the spool directory (RAM, where it is
a tmpfs). Past the budget, output stays in memory up to ``memory_limit`` and
then the buffer is ``full``: the writer waits for its client, as it does past
``max_size``.
"""
import os
import tempfile
import threading
from collections import deque

from forkwsgi.worker.tls import TLS_WRITE, WOULD_BLOCK


class _FileSpan:
    __slots__ = ("fd", "offset", "remaining", "owned")

    def __init__(self, fd, offset, count, owned):
        self.fd, self.offset, self.remaining, self.owned = fd, offset, count, owned


class SpillBudget:
    """The bytes one worker's spill files may hold on disk, all its connections together.

    One plain object shared by the worker's OutputBuffers (app threads append
    while the loop sends: hence the lock, taken once per spill write).
    """

    __slots__ = ("limit", "used", "lock")

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self.lock = threading.Lock()

    def take(self, count):
        """Reserve ``count`` bytes of spool; False (nothing reserved) if that would pass the limit."""
        with self.lock:
            if self.used + count > self.limit:
                return False
            self.used += count
            return True

    def give_back(self, count):
        with self.lock:
            self.used -= count


class OutputBuffer:
    __slots__ = ("segments", "memory", "size", "memory_limit", "max_size", "spool_dir", "spill", "spill_end",
                 "spilled", "tls", "budget")

    def __init__(self, memory_limit, max_size, spool_dir=None, tls=False, budget=None):
        self.segments = deque()
        self.memory = 0  # bytes held in memory
        self.size = 0  # bytes queued in all, memory and spill file (not wsgi.file_wrapper files)
        self.memory_limit = memory_limit
        self.max_size = max_size
        self.spool_dir = spool_dir
        self.spill = None
        self.spill_end = 0  # bytes in the spill file, all charged to the budget
        self.spilled = 0  # of those, bytes not sent yet
        self.tls = tls  # file bytes must go through the TLS socket, never sendfile past it
        self.budget = budget  # a SpillBudget shared with the worker's other buffers; None: no limit

    def __bool__(self) -> bool:
        return bool(self.segments)

    @property
    def full(self) -> bool:
        """True when the writer must wait for the client: past ``max_size``, or past ``memory_limit``
        with nothing more spilled (the budget or the disk is used up)."""
        return self.size > self.max_size or self.memory > self.memory_limit

    def append(self, data):
        """Queue bytes; past the memory limit they go to the spill file (in memory if that fails)."""
        if self.memory + len(data) > self.memory_limit and self._spill(data):
            self.size += len(data)
            return
        self.segments.append(data if type(data) is memoryview else memoryview(data))  # slices copy nothing
        self.memory += len(data)
        self.size += len(data)

    def _spill(self, data):
        budget = self.budget
        if budget is not None and not budget.take(len(data)):
            return False  # the worker's spool budget is used up: the bytes stay in memory
        try:
            if self.spill is None:
                self.spill = tempfile.TemporaryFile(dir=self.spool_dir)
            written = os.pwrite(self.spill.fileno(), data, self.spill_end)
        except OSError:
            written = -1
        if written != len(data):  # a short write (the disk is full): the bytes stay in memory
            if budget is not None:
                budget.give_back(len(data))
            return False
        self.spilled += len(data)
        last = self.segments[-1] if self.segments else None
        if type(last) is _FileSpan and not last.owned and last.fd == self.spill.fileno() \
                and last.offset + last.remaining == self.spill_end:
            last.remaining += len(data)
        else:
            self.segments.append(_FileSpan(self.spill.fileno(), self.spill_end, len(data), False))
        self.spill_end += len(data)
        return True

    def append_file(self, fd, offset, count):
        """Queue part of a regular file; the buffer keeps its own duplicate of ``fd``."""
        if count > 0:
            self.segments.append(_FileSpan(os.dup(fd), offset, count, True))

    def flush(self, sock):
        """Send what the socket takes now; True once empty. Raises OSError if the client is gone."""
        segments = self.segments
        fileno = sock.fileno()
        while segments:
            segment = segments[0]
            try:
                if type(segment) is memoryview:
                    sent = sock.send(segment[:TLS_WRITE] if self.tls else segment)
                    self.memory -= sent
                    self.size -= sent
                    if sent < len(segment):
                        segments[0] = segment = segment[sent:]
                        if not self.tls or sent < TLS_WRITE:
                            return False
                        continue  # one TLS record went: try the next
                    segments.popleft()
                    continue
                if self.tls:
                    chunk = os.pread(segment.fd, min(segment.remaining, TLS_WRITE), segment.offset)
                    sent = sock.send(chunk) if chunk else 0
                else:
                    sent = os.sendfile(fileno, segment.fd, segment.offset, segment.remaining)
            except WOULD_BLOCK:
                return False
            if sent == 0:  # the file shrank under us: what is left will never come
                self._drop(segments.popleft())
                continue
            segment.offset += sent
            segment.remaining -= sent
            if not segment.owned:
                self.size -= sent
                self.spilled -= sent
            if segment.remaining:
                if self.tls and sent == TLS_WRITE:
                    continue  # one TLS record went: try the next, as for output in memory
                return False
            self._drop(segments.popleft())
        return True

    def _drop(self, segment):
        if segment.owned:
            os.close(segment.fd)
            return
        self.size -= segment.remaining
        self.spilled -= segment.remaining
        if not self.spilled:
            self._empty_spill()

    def _empty_spill(self):
        """Every spilled byte is sent: free the disk, return the budget, reuse the file from its start."""
        try:
            os.ftruncate(self.spill.fileno(), 0)
        except OSError:
            pass
        self._give_back_spill()

    def _give_back_spill(self):
        if self.budget is not None:
            self.budget.give_back(self.spill_end)
        self.spill_end = 0

    def close(self):
        while self.segments:
            segment = self.segments.popleft()
            if type(segment) is _FileSpan and segment.owned:
                os.close(segment.fd)
        if self.spill is not None:
            self._give_back_spill()
            self.spill.close()
            self.spill = None
        self.memory = self.size = self.spilled = 0
