"""Trust in proxies: which peers may rewrite the client address and scheme."""
import functools
import ipaddress

from .errors import ConfigError


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
        """The client behind a chain of trusted proxies, read right to left from X-Forwarded-For."""
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip(" \t")  # OWS only
            if hop:  # empty list elements are ignored
                client = hop
                if not self.trusts(client):
                    break
        return client
