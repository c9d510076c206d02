"""Readiness of file descriptors, through epoll (level-triggered) where there is one.

Listeners are deliberately not EPOLLEXCLUSIVE: a worker blocks while its app
runs, so every idle worker should race for a new connection rather than the
kernel handing it to one that is about to be busy.

The wait is ``_loopio.wait`` where it was built (the same answers as
select.epoll.poll, the reference, for less work on each ready descriptor).
"""
import select
from functools import partial
from typing import Final

from forkwsgi.compiled import compiled

compiled_wait = compiled("forkwsgi.worker._loopio", "wait")

# select.POLLIN and POLLOUT (EPOLLIN and EPOLLOUT are the same bits), as literals: the compiled core
# then reads them as the numbers they are
READ: Final = 0x001
WRITE: Final = 0x004


class Poller:
    """epoll, with what is registered kept here, so that asking again for what is already asked
    for costs no system call, and a socket about to close is not unregistered first (``forget``)."""

    events: dict

    def __init__(self, wait=compiled_wait):
        self.events = {}  # fd -> the events it is registered for
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
            self.poll = self._epoll.poll if wait is None else partial(wait, self._epoll.fileno())
            self._register = self._epoll.register
            self._modify = self._epoll.modify
            self._unregister = self._epoll.unregister
        else:  # pragma: no cover - non-Linux development machines
            self._epoll = None
            self._poll = select.poll()
            self._register = self._poll.register
            self._modify = self._poll.modify
            self._unregister = self._poll.unregister
            self.poll = lambda timeout: self._poll.poll(None if timeout is None else timeout * 1000)

    def add(self, fd: int, events: int = READ) -> None:
        """Poll ``fd`` for ``events`` (registering it, or changing what it is registered for)."""
        registered = self.events.get(fd)
        if registered == events:
            return
        if registered is None:
            self._register(fd, events)
        else:
            self._modify(fd, events)
        self.events[fd] = events

    def modify(self, fd: int, events: int = READ) -> None:
        """The same as ``add``: an fd already polled gets ``events`` instead."""
        self.add(fd, events)

    def remove(self, fd: int) -> None:
        if self.events.pop(fd, None) is None:
            return
        try:
            self._unregister(fd)
        except (OSError, KeyError, ValueError):
            pass

    def forget(self, fd: int) -> None:
        """``fd`` is about to be closed, and no other descriptor refers to its socket: the kernel
        takes it out of the epoll set as it closes, so no unregistering call is made."""
        self.events.pop(fd, None)
