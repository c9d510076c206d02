"""Trust in proxies: which peers may rewrite the client address and scheme."""
import functools
import ipaddress

from .errors import ConfigError
from .logs import log


def hop_address(hop):
    """The IP address an X-Forwarded-For hop names, as text; None if it names none.

    Proxies write ``IP``, ``IP:port`` or ``[IPv6]:port``: the port is dropped. Anything
    else (a name, ``unknown``, markup) must never become REMOTE_ADDR, which apps log
    and compare as an address.
    """
    text = hop
    if hop.startswith("["):
        text, bracket, port = hop[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit() and port[1:].isascii())):
            return None
    elif hop.count(":") == 1:  # IPv4:port; a bare IPv6 address has at least two colons
        text, _, port = hop.partition(":")
        if not (port.isdigit() and port.isascii()):
            return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class TrustedPeers:
    """A set of IPs/networks (or '*'); membership tests are cached per address."""

    def __init__(self, items):
        self.any = "*" in items
        self.networks = []
        for item in items:
            if item == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError("%r is not an IP address or network" % item) from None
        self.trusts = functools.lru_cache(maxsize=1024)(self._trusts)
        self.hop_address = functools.lru_cache(maxsize=1024)(hop_address)  # proxies repeat few hops

    def _trusts(self, address):
        if self.any:
            return True
        if not address:
            return False  # unix socket peers have no address: trust only via '*'
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def client_address(self, forwarded_for, peer):
        """The client behind a chain of trusted proxies, read right to left from X-Forwarded-For.

        A hop that is no IP address ends the walk at ``peer``: nothing else is known for sure.
        """
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip(" \t")  # OWS only
            if hop:  # empty list elements are ignored
                client = self.hop_address(hop)
                if client is None:
                    log.debug("X-Forwarded-For hop %r from %s is not an IP address; using the peer",
                              hop[:60], peer)
                    return peer
                if not self.trusts(client):
                    break
        return client
