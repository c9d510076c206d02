"""PROXY protocol headers (HAProxy), versions 1 (text) and 2 (binary), sans I/O."""
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


# PROXY protocol version 2: a binary header (haproxy's proxy-protocol.txt, section 2.2).
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, length
_LOCAL, _PROXY = 0x20, 0x21
# family/protocol byte -> (size of its address block, IP version); STREAM over IPv4, IPv6 and unix.
_V2_ADDRESSES = {0x11: (12, 4), 0x21: (36, 6), 0x31: (216, None)}
_UNSPEC = 0x00


def parse_proxy_v2(buf):
    """Consume a PROXY v2 header from ``buf``: the same contract as parse_proxy_v1.

    Returns None until the header is complete, then ``((client_ip, client_port),)``, or
    ``(None,)`` where the connection's own address stands (LOCAL health checks, unspecified
    or unix-socket addresses). TLVs are checked for framing and skipped. Anything else is
    refused: a wrong signature, version or command, a datagram protocol, a length that
    cannot hold its addresses, a TLV that overruns the header.
    """
    have = min(len(buf), len(V2_SIGNATURE))
    if bytes(buf[:have]) != V2_SIGNATURE[:have]:
        raise BadRequest("invalid PROXY protocol v2 signature")
    if len(buf) < V2_FIXED:
        return None
    command, family = buf[12], buf[13]
    length = int.from_bytes(buf[14:16], "big")
    if command not in (_LOCAL, _PROXY):
        raise BadRequest("unsupported PROXY protocol v2 version/command 0x%02x" % command)
    if len(buf) < V2_FIXED + length:
        return None
    body = bytes(buf[V2_FIXED:V2_FIXED + length])
    del buf[:V2_FIXED + length]
    if command == _LOCAL:
        return (None,)  # the proxy's own connection (a health check): its address is the real one
    if family == _UNSPEC:
        return (None,)
    if family not in _V2_ADDRESSES:
        raise BadRequest("unsupported PROXY protocol v2 address family/protocol 0x%02x" % family)
    size, version = _V2_ADDRESSES[family]
    if length < size:
        raise BadRequest("PROXY protocol v2 header too short for its addresses (%d < %d)" % (length, size))
    _check_tlvs(body, size)
    if version is None:
        return (None,)  # unix sockets: no IP to report
    half = (size - 4) // 2
    client = ipaddress.ip_address(body[:half])
    port = int.from_bytes(body[2 * half:2 * half + 2], "big")
    return ((str(client), port),)


def _check_tlvs(body, start):
    """Each TLV (type, 2-byte length, value) must fit exactly in what is left of the header."""
    position = start
    end = len(body)
    while position < end:
        if end - position < 3:
            raise BadRequest("truncated TLV in PROXY protocol v2 header")
        length = int.from_bytes(body[position + 1:position + 3], "big")
        position += 3 + length
        if position > end:
            raise BadRequest("TLV overruns the PROXY protocol v2 header")


def parse_proxy(buf, mode="auto"):
    """Consume a PROXY protocol header of the configured ``mode`` ('v1', 'v2' or 'auto'):
    the contract of parse_proxy_v1. 'auto' tells the versions apart by their first byte."""
    if mode == "v1":
        return parse_proxy_v1(buf)
    if mode == "v2":
        return parse_proxy_v2(buf)
    if not buf:
        return None
    if buf[0] == 0x50:  # "P" of "PROXY "
        return parse_proxy_v1(buf)
    if buf[0] == 0x0D:  # "\r" of the v2 signature
        return parse_proxy_v2(buf)
    raise BadRequest("invalid PROXY protocol header")
