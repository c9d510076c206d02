"""Queue time: how long a request waited before the app was called.

A request is first seen when its first bytes reach this host. For a new
connection the kernel tells that moment (TCP_INFO: milliseconds since data
last came), so a connection that sat in the accept queue while every worker
was busy counts that wait too; one getsockopt per new connection reads it.
(Kernel timestamps, SO_TIMESTAMPNS, would be finer, but once on they stamp
every packet the host receives, at a cost to every request.) Later requests
on a keep-alive connection count from the read of their first byte
(Connection.started).

Monotonic times become wall-clock ones with one addition: the offset between
the two clocks, read once per worker and refreshed by its sweep.
"""
import socket
import struct
import time
from typing import Final

from forkwsgi.compiled import compiled
from forkwsgi.logs import Throttle, log

QUEUE_TIME_KEY = "forkwsgi.queue_time"
REQUEST_START_KEY: Final = "HTTP_X_REQUEST_START"
REQUEST_START_HEADER = "x-request-start"
RETRY_AFTER = "Retry-After: 1\r\n"  # what a shed request is told (--max-queue-time)
# struct tcp_info (Linux): tcpi_last_data_recv (ms) at byte 52, tcpi_data_segs_in at byte 152.
_TCP_INFO_SIZE: Final = 156
_LAST_DATA_RECV: Final = struct.Struct("I")
_DATA_SEGS_IN: Final = _LAST_DATA_RECV
_TCP_CLOCK_TICK: Final = 0.004  # TCP counts in jiffies (HZ 250 and up): never say it came earlier than it did
_IPPROTO_TCP: Final = socket.IPPROTO_TCP
_TCP_INFO: Final = getattr(socket, "TCP_INFO", -1)  # (-1 where Python knows none: getsockopt then refuses)
_monotonic: Final = time.monotonic


def clock_offset():
    """Wall clock minus monotonic clock: adding it turns a monotonic time into Unix time."""
    return time.time() - time.monotonic()


def arrival(sock) -> float:
    """When the last bytes waiting in a new connection ``sock`` reached this host, monotonic, from
    the kernel's TCP_INFO (milliseconds since data last came); 0.0 when none has come yet (the
    head did not follow the connection at once); -1.0 where the kernel does not say (a unix socket)."""
    try:
        info = sock.getsockopt(_IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return -1.0
    if len(info) < _TCP_INFO_SIZE:
        return -1.0
    if not _DATA_SEGS_IN.unpack_from(info, 152)[0]:
        return 0.0
    waited = _LAST_DATA_RECV.unpack_from(info, 52)[0] / 1000.0 - _TCP_CLOCK_TICK
    return _monotonic() - (waited if waited > 0.0 else 0.0)


def parse_request_start(value):
    """Unix time from an X-Request-Start value, as New Relic reads it: ``t=`` (optional) and
    seconds (with a fraction), milliseconds or microseconds, told apart by their size. None if
    it is none of those."""
    text = value.strip()
    if text.startswith("t="):
        text = text[2:]
    try:
        number = float(text)
    except ValueError:
        return None
    if not 0 < number < 1e17:  # NaN too
        return None
    if number >= 1e14:
        return number / 1e6
    if number >= 1e11:
        return number / 1e3
    return number


def front_end_start(headers):
    """A trusted front end's X-Request-Start from a parsed head's (name, value) pairs: Unix time or None."""
    for name, value in headers:
        if name == REQUEST_START_HEADER:
            return parse_request_start(value)
    return None


def front_end_start_raw(buf):
    """The same from the raw bytes of a head not parsed yet (a request waiting for a thread stays
    raw, to move to a sibling): Unix time or None. Only read while shedding is on."""
    head = bytes(buf[:buf.find(b"\r\n\r\n") if b"\r\n\r\n" in buf else len(buf)]).lower()
    at = head.find(b"\r\nx-request-start:")
    if at < 0:
        return None
    line = head[at + 18:].partition(b"\r\n")[0]
    return parse_request_start(line.decode("latin-1"))


def earliest(seen, front):
    """The front end's stamp when it is earlier than ours (a front end's clock ahead of ours is ignored)."""
    return front if front is not None and front < seen else seen


def stamp(environ, seen, now, trusted):
    """Set X-Request-Start (when the client sent none) and forkwsgi.queue_time in ``environ``.

    ``seen`` and ``now`` are Unix times; a ``trusted`` front end's earlier stamp is kept and
    counted from. Returns the queue time in seconds."""
    sent = environ.get(REQUEST_START_KEY)
    if sent is None:
        environ[REQUEST_START_KEY] = f"t={int(seen * 1e6)}"  # (the cheapest way to format it)
    elif trusted:
        seen = earliest(seen, parse_request_start(sent))
    waited = now - seen
    if waited < 0.0:
        waited = 0.0
    environ[QUEUE_TIME_KEY] = waited
    return waited


# stamp's C twin for a request that brings no X-Request-Start (most): the same two keys and answer,
# None where one was sent, for stamp to weigh. None where nothing is compiled.
fast_stamp: Final = compiled("forkwsgi.wsgi._environ", "fast_stamp")


class ShedLog:
    """Warns of requests shed past --max-queue-time at most once a second per worker: an
    overload sheds many, and the log must not become its next bottleneck. The requests shed
    between two lines are counted, and the next line says how many."""

    def __init__(self, limit, clock=time.monotonic):
        self.limit = limit
        self.throttle = Throttle(clock)

    def shed(self):
        count = self.throttle.tick()
        if count:
            log.warning("overloaded: answered 503 to %d request(s) that waited more than --max-queue-time %gs",
                        count, self.limit)
