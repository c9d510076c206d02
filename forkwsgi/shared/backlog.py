"""Accept-queue readings from the kernel, shared by /metrics, the status report, statsd, a
stopping worker draining its backlog and a lone worker's bursts of accepts (intake.py).

Both are cheap reads (one getsockopt, one small /proc file) taken when a report is made, while
a worker stops, or once a round of a burst of accepts. Either may be missing: unix sockets have
no TCP_INFO, and /proc/net/netstat may be hidden; callers then leave the value out.
"""
import socket
import struct

_TCP_INFO_QUEUE = struct.Struct("II")  # tcpi_unacked, tcpi_sacked at offset 24: accept queue length and its max


def tcp_listen_queue(sock):
    """(queued, maximum) of a TCP listener's accept queue via TCP_INFO; None for unix sockets."""
    return listen_queue_reader(sock)()


def listen_queue_reader(sock):
    """A function of no arguments that reads ``sock``'s tcp_listen_queue, its kind found once (a
    stopping worker's drain and a lone worker's bursts ask for each connection)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
        return _unknown
    getsockopt = sock.getsockopt

    def read():
        try:
            return _TCP_INFO_QUEUE.unpack_from(getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 24)
        except (OSError, struct.error):
            return None
    return read


def _unknown():
    return None


def listen_drops():
    """Machine-wide TcpExt ListenOverflows and ListenDrops from /proc/net/netstat, or None."""
    try:
        with open("/proc/net/netstat") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            try:
                return int(table["ListenOverflows"]), int(table["ListenDrops"])
            except (KeyError, ValueError):
                return None
    return None
