"""PROXY protocol v2 (binary) beside v1, and the mode setting that picks between them (sans I/O)."""
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkwsgi.http.errors import HTTPError
from forkwsgi.http.proxy import V2_SIGNATURE, parse_proxy, parse_proxy_v2

from tests.support.proxy_verdict import proxy_outcome


def v2(command=0x21, family=0x11, addresses=b"", tlvs=b"", length=None):
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(body) if length is None else length) + body


def inet(src, dst, sport, dport):
    return (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
            + struct.pack("!HH", sport, dport))


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


IPV4 = v2(addresses=inet("203.0.113.9", "10.0.0.1", 51000, 443))
IPV6 = v2(family=0x21, addresses=inet("2001:db8::7", "2001:db8::1", 40000, 8443))


def test_v2_ipv4_and_ipv6_give_the_client_and_leave_the_request():
    buf = bytearray(IPV4 + b"GET / HTTP/1.1\r\n")
    assert parse_proxy_v2(buf) == (("203.0.113.9", 51000),) and buf == b"GET / HTTP/1.1\r\n"
    assert parse_proxy_v2(bytearray(IPV6)) == (("2001:db8::7", 40000),)


def test_v2_tlvs_are_skipped():
    header = v2(addresses=inet("198.51.100.2", "10.0.0.1", 1, 2), tlvs=tlv(0x01, b"h2") + tlv(0x04, b"") +
                tlv(0x20, b"\x01" + b"\x00" * 4))
    buf = bytearray(header + b"X")
    assert parse_proxy_v2(buf) == (("198.51.100.2", 1),) and buf == b"X"


@pytest.mark.parametrize("header", [
    v2(command=0x20, family=0x11, addresses=inet("203.0.113.9", "10.0.0.1", 1, 2)),  # LOCAL: a health check
    v2(command=0x20, family=0x00),
    v2(family=0x00),  # UNSPEC
    v2(family=0x31, addresses=b"/run/a".ljust(108, b"\0") + b"/run/b".ljust(108, b"\0")),  # unix sockets
])
def test_v2_without_a_client_ip_keeps_the_connections_address(header):
    buf = bytearray(header + b"GET")
    assert parse_proxy_v2(buf) == (None,) and buf == b"GET"


@pytest.mark.parametrize("header", [
    b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x00",  # signature
    v2(command=0x11, addresses=inet("1.2.3.4", "1.2.3.4", 1, 2)),  # version 1 in a v2 header
    v2(command=0x22, addresses=inet("1.2.3.4", "1.2.3.4", 1, 2)),  # unknown command
    v2(family=0x12, addresses=inet("1.2.3.4", "1.2.3.4", 1, 2)),  # UDP
    v2(family=0x41, addresses=b"\0" * 12),  # unknown family
    v2(addresses=b"\0" * 11),  # too short for IPv4
    v2(family=0x21, addresses=b"\0" * 35),  # too short for IPv6
    v2(addresses=inet("1.2.3.4", "1.2.3.4", 1, 2), tlvs=b"\x01\x00"),  # truncated TLV
    v2(addresses=inet("1.2.3.4", "1.2.3.4", 1, 2), tlvs=b"\x01\x00\x05ab"),  # TLV overruns
])
def test_v2_malformed_headers_are_refused(header):
    with pytest.raises(HTTPError) as caught:
        parse_proxy_v2(bytearray(header))
    assert caught.value.status == 400


def test_v2_waits_for_the_whole_header():
    for end in range(len(IPV4)):
        assert parse_proxy_v2(bytearray(IPV4[:end])) is None, end


def test_modes_pick_the_version():
    v1 = b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\n"
    assert parse_proxy(bytearray(v1), "auto") == (("10.1.2.3", 5555),)
    assert parse_proxy(bytearray(IPV4), "auto") == (("203.0.113.9", 51000),)
    assert parse_proxy(bytearray(v1), "v1") == (("10.1.2.3", 5555),)
    assert parse_proxy(bytearray(IPV4), "v2") == (("203.0.113.9", 51000),)
    assert parse_proxy(bytearray(), "auto") is None
    for data, mode in ((IPV4, "v1"), (v1, "v2"), (b"GET / HTTP/1.1\r\n", "auto")):
        with pytest.raises(HTTPError):
            parse_proxy(bytearray(data), mode)


HEADERS = [IPV4, IPV6, v2(command=0x20), v2(addresses=inet("1.2.3.4", "5.6.7.8", 9, 10), tlvs=tlv(3, b"abcd")),
           b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n", b"PROXY UNKNOWN\r\n"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HEADERS), st.binary(max_size=20), st.lists(st.integers(0, 120), max_size=8),
       st.sampled_from(["auto", "v1", "v2"]))
def test_same_verdict_however_the_bytes_are_split(header, rest, cuts, mode):
    data = header + rest
    whole = proxy_outcome(data, (), mode)
    assert proxy_outcome(data, cuts, mode) == whole
    assert proxy_outcome(data, range(1, len(data)), mode) == whole
    if mode == "auto" or (mode == "v2") == header.startswith(V2_SIGNATURE):
        assert whole[1] == rest  # the header is taken, the bytes after it stay


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8), st.sampled_from(["auto", "v1", "v2"]),
       st.sampled_from([b"", V2_SIGNATURE, V2_SIGNATURE + b"\x21\x11", b"PROXY "]))
def test_any_bytes_give_a_verdict_not_a_crash(data, cuts, mode, prefix):
    data = prefix + data
    whole = proxy_outcome(data, (), mode)  # raises if anything but HTTPError comes out
    assert proxy_outcome(data, cuts, mode) == whole
