"""Server-wide flags the master sets and every worker reads: one shared anonymous page.

Made before the first fork, so every worker maps the same bytes; reading a
flag is a memory load, cheap enough for the worker's loop to look each turn.
"""
import mmap
from typing import Final

# Each flag's byte in the page (Final: the compiled core reads DRAINING as the number it is)
_HANDOFF_OPEN: Final = 0
DRAINING: Final = 1
LONE: Final = 2
PAGE_SIZE = 3


class Board:
    def __init__(self):
        self._page = mmap.mmap(-1, PAGE_SIZE)
        self.handoff_open = True

    @property
    def handoff_open(self):
        """Retiring workers may hand connections to live siblings (not on a full stop, nor with none left)."""
        return self._page[_HANDOFF_OPEN] == 1

    @handoff_open.setter
    def handoff_open(self, value):
        self._page[_HANDOFF_OPEN] = 1 if value else 0

    @property
    def lone(self):
        """One worker is wanted: no sibling takes what waits in the accept queue (worker/intake.py)."""
        return self._page[LONE] == 1

    @lone.setter
    def lone(self, value):
        self._page[LONE] = 1 if value else 0

    def start_draining(self):
        """--shutdown-delay is running: health checks fail and responses close their connections.
        (Workers read the DRAINING byte of ``page`` directly; it is never cleared: the master stops next.)"""
        self._page[DRAINING] = 1

    @property
    def page(self):
        """The raw flags, for a hot path that reads one byte without a property call."""
        return self._page
