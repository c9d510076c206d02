"""Trust in proxies: which peers may rewrite the client address and scheme."""
import functools
import ipaddress

from forkwsgi.errors import ConfigError
from forkwsgi.logs import log


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


# gunicorn's default secure_scheme_headers: a trusted proxy says "the client used https" with any of them.
SECURE_SCHEME_HEADERS = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}


class TrustedPeers:
    """A set of IPs/networks (or '*'); membership tests are cached per address.

    Also what such a peer may tell: the scheme, through ``secure_scheme_headers``
    ({header: value meaning https}), and headers whose names hold '_' (dropped
    from anyone else), through ``forwarder_headers``.
    """

    def __init__(self, items, secure_scheme_headers=None, forwarder_headers=("SCRIPT_NAME", "PATH_INFO")):
        headers = SECURE_SCHEME_HEADERS if secure_scheme_headers is None else secure_scheme_headers
        self.scheme_keys = tuple(("HTTP_" + name.upper().replace("-", "_"), value.lower())
                                 for name, value in headers.items())
        self.forwarder_names = frozenset(name.lower() for name in forwarder_headers if "_" in name)
        # The environ keys a trusted proxy rewrites the client's address or scheme with: most
        # requests carry none, and a lookup of each (environ.has_any) tells.
        self.forwarding_keys = tuple(dict.fromkeys(["HTTP_X_FORWARDED_FOR"] + [key for key, _ in self.scheme_keys]))
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

    def scheme(self, environ):
        """'https' or 'http' as the secure scheme headers present say (the last element of each);
        None when none is present, or when they disagree (then the connection's own scheme stands)."""
        found = None
        for key, secure_value in self.scheme_keys:  # a few lookups (set.isdisjoint(environ) walks every key)
            value = environ.get(key)
            if value is not None:
                scheme = "https" if value.rpartition(",")[2].strip(" \t").lower() == secure_value else "http"
                if found is not None and scheme != found:
                    return None
                found = scheme
        return found

    def apply_forwarder_headers(self, environ, fields):
        """A trusted proxy's headers with '_' in their names: SCRIPT_NAME mounts the app, others
        become HTTP_<NAME>."""
        for name, value in fields:
            if name == "script_name":
                path = environ["PATH_INFO"]
                environ["SCRIPT_NAME"] = value
                if path.startswith(value):
                    environ["PATH_INFO"] = path[len(value):]
            else:
                environ["HTTP_" + name.upper()] = value
