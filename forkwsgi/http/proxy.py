"""PROXY protocol version 1 header (HAProxy), sans I/O."""
import ipaddress

from .errors import BadRequest

MAX_LINE = 107  # the protocol's own bound, CRLF included


def parse_proxy_v1(buf):
    """Consume a PROXY v1 line from ``buf``.

    Returns None until the line is complete, then ``(client_ip, client_port)``
    (or None for ``PROXY UNKNOWN``) wrapped in a tuple: ``(address,)``.
    """
    end = buf.find(b"\r\n", 0, MAX_LINE)
    if end < 0:
        if len(buf) >= MAX_LINE or not b"PROXY ".startswith(bytes(buf[:6])):
            raise BadRequest("invalid PROXY protocol header")
        return None
    line = bytes(buf[:end]).decode("latin-1")
    del buf[:end + 2]
    parts = line.split(" ")
    if parts[0] != "PROXY" or len(parts) < 2:
        raise BadRequest("invalid PROXY protocol header")
    if parts[1] == "UNKNOWN":
        return (None,)
    if parts[1] not in ("TCP4", "TCP6") or len(parts) != 6:
        raise BadRequest("invalid PROXY protocol header %r" % line[:60])
    _, family, src, dst, sport, dport = parts
    try:
        for address in (src, dst):
            ip = ipaddress.ip_address(address)
            if ip.version != (4 if family == "TCP4" else 6):
                raise ValueError(address)
        for port in (sport, dport):
            if not port.isdigit() or not 0 <= int(port) <= 65535 or (len(port) > 1 and port[0] == "0"):
                raise ValueError(port)
    except ValueError:
        raise BadRequest("invalid address in PROXY protocol header %r" % line[:60]) from None
    return ((src, int(sport)),)
