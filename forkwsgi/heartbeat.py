"""Worker liveness through a shared anonymous page: the worker writes, the master reads.

No file and no syscall per beat: a struct write into memory that both
processes map (mmap of -1 is MAP_SHARED|MAP_ANONYMOUS and survives fork).
"""
import mmap
import struct
import time

_STAMP = struct.Struct("d")
_BEAT_AT, _BOOTED_AT = 0, 8  # offsets: last beat, boot time (0 until booted); monotonic seconds


class Heartbeat:
    __slots__ = ("page",)

    def __init__(self):
        self.page = mmap.mmap(-1, 16)
        _STAMP.pack_into(self.page, _BEAT_AT, time.monotonic())

    def beat(self, now):
        _STAMP.pack_into(self.page, _BEAT_AT, now)

    def mark_booted(self):
        now = time.monotonic()
        _STAMP.pack_into(self.page, _BEAT_AT, now)
        _STAMP.pack_into(self.page, _BOOTED_AT, now)

    @property
    def last_beat(self):
        return _STAMP.unpack_from(self.page, _BEAT_AT)[0]

    @property
    def booted(self):
        return _STAMP.unpack_from(self.page, _BOOTED_AT)[0] > 0

    def close(self):
        self.page.close()
