"""Per-connection output not yet taken by the client.

The app's writes go straight to the socket while it keeps up; what it cannot
take waits here, so the worker moves on and its event loop drains the rest. A
slow reader then costs memory up to ``memory_limit``, then a spill file in the
spool directory, then (past ``max_size``) the writer waits for it, bounded.
Regular files from ``wsgi.file_wrapper`` are queued as (fd, offset, count) and
later sent with sendfile, never copied.
"""
import os
import tempfile
from collections import deque

from .tls import TLS_WRITE, WOULD_BLOCK


class _FileSpan:
    __slots__ = ("fd", "offset", "remaining", "owned")

    def __init__(self, fd, offset, count, owned):
        self.fd, self.offset, self.remaining, self.owned = fd, offset, count, owned


class OutputBuffer:
    __slots__ = ("segments", "memory", "size", "memory_limit", "max_size", "spool_dir", "spill", "spill_end",
                 "tls")

    def __init__(self, memory_limit, max_size, spool_dir=None, tls=False):
        self.segments = deque()
        self.memory = 0  # bytes held in memory
        self.size = 0  # bytes queued in all, memory and spill file (not wsgi.file_wrapper files)
        self.memory_limit = memory_limit
        self.max_size = max_size
        self.spool_dir = spool_dir
        self.spill = None
        self.spill_end = 0
        self.tls = tls  # file bytes must go through the TLS socket, never sendfile past it

    def __bool__(self):
        return bool(self.segments)

    @property
    def full(self):
        return self.size > self.max_size

    def append(self, data):
        """Queue bytes; past the memory limit they go to the spill file (in memory if that fails)."""
        if self.memory + len(data) > self.memory_limit and self._spill(data):
            self.size += len(data)
            return
        self.segments.append(data if type(data) is memoryview else memoryview(data))  # slices copy nothing
        self.memory += len(data)
        self.size += len(data)

    def _spill(self, data):
        try:
            if self.spill is None:
                self.spill = tempfile.TemporaryFile(dir=self.spool_dir)
            if os.pwrite(self.spill.fileno(), data, self.spill_end) != len(data):
                return False  # a short write (the disk is full): the bytes stay in memory
        except OSError:
            return False
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
            if segment.remaining:
                return False
            self._drop(segments.popleft())
        if self.spill is not None:
            self.spill_end = 0  # all sent: the spill file is reused from its start
        return True

    def _drop(self, segment):
        if segment.owned:
            os.close(segment.fd)
        else:
            self.size -= segment.remaining

    def close(self):
        while self.segments:
            segment = self.segments.popleft()
            if type(segment) is _FileSpan and segment.owned:
                os.close(segment.fd)
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        self.memory = self.size = 0
