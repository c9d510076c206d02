"""Moving connections to sibling workers over the hand-off channel (shared/handoff.py).

Only a connection between requests moves, with the raw bytes of its next
request (Connection.can_hand_off); the sibling parses them as if it had read
them. A connection moves while this worker is busy and a sibling says it has a
thread to spare, or when this worker stops while its siblings stay.
"""
import time

from forkwsgi.logs import log
from forkwsgi.shared import stats as _stats
from forkwsgi.worker.states import CLOSE

_monotonic = time.monotonic


class Handover:
    """Given the worker's connections and poller, the stop state (is hand-off open), the channel,
    the counters, and ``forget(conn)`` to take a leaving connection out of the waiting queue."""

    def __init__(self, connections, poller, stop, channel, stats, forget):
        self.connections = connections
        self.poller = poller
        self.stop = stop
        self.channel = channel
        self.stats = stats
        self.forget = forget

    def siblings_busy(self):
        return self.channel.siblings_busy()

    def hand_off(self, conn):
        """Give ``conn`` to a sibling; True if it left this worker."""
        if not (self.stop.handoff_open() and conn.can_hand_off() and self.channel.can_send(_monotonic())):
            return False
        if not self.channel.send(conn.handoff_message(), conn.fd):
            return False
        self.poller.remove(conn.fd)  # before our copy closes: the sibling's copy keeps the socket alive
        del self.connections[conn.fd]
        self.forget(conn)
        conn.move(CLOSE)
        conn.close()
        if self.stats is not None:
            self.stats.add(_stats.HANDOFF_GIVEN)
        log.debug("handed connection %s:%s to a sibling", *conn.peer[:2])
        return True

    def hand_off_ready(self, exclude=None):
        """While this worker is busy: move every connection with request bytes waiting."""
        if not self.stop.handoff_open() or self.channel.siblings_busy():
            return
        connections = self.connections
        for conn in [connections[fd] for fd, _ in self.poller.poll(0) if fd in connections]:
            if conn is exclude or connections.get(conn.fd) is not conn:
                continue
            self.hand_off(conn)
            if self.channel.siblings_busy() or not self.channel.can_send(_monotonic()):
                return  # every sibling is busy too: the rest wait here
