"""Readiness of file descriptors, through epoll (level-triggered) where there is one.

Listeners are deliberately not EPOLLEXCLUSIVE: a worker blocks while its app
runs, so every idle worker should race for a new connection rather than the
kernel handing it to one that is about to be busy.
"""
import select

READ = select.POLLIN
WRITE = select.POLLOUT


class Poller:
    def __init__(self):
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
            self.poll = self._epoll.poll
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

    def add(self, fd, events=READ):
        self._register(fd, events)

    def modify(self, fd, events):
        self._modify(fd, events)

    def remove(self, fd):
        try:
            self._unregister(fd)
        except (OSError, KeyError, ValueError):
            pass
