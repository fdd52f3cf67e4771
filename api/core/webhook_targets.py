"""Where a webhook may be sent: the checks against server-side request forgery.

A URL is ``https``, or ``http`` to a host and port the operator lists
(``USAGE_WEBHOOK_ALLOW_HOSTS``: ``host:port``, ``host:*`` for every port, or ``host`` for the
scheme's default port only). Every address its host resolves to must be a public one: the
blocks of IANA's special-purpose registries (loopback, private, link-local with the cloud
metadata services, shared, documentation, relays...) and multicast are refused unless the
host and port are listed. A delivery connects to the addresses it checked, so a name that
resolves elsewhere between the check and the connection (DNS rebinding) gains nothing.
Pure: the caller resolves the host (an IP literal is its own address).
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048
# What resolvers read as an IPv4 address in its old forms (decimal, octal, hex, fewer parts).
_NUMERIC_IPV4 = re.compile(r"[0-9a-fx.]+")
# A host name as DNS carries it (after IDNA): what may go to the resolver and in Host.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
# An entry of USAGE_WEBHOOK_ALLOW_HOSTS: a host (an IPv6 address in brackets), then a port, *
# or nothing.
_ALLOWED_ENTRY = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>\*|[0-9]{1,5}))?")
_DEFAULT_PORT = {"https": 443, "http": 80}


def _blocks(
    *pairs: tuple[str, str],
) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    return [(ipaddress.ip_network(network), name) for network, name in pairs]


# Every block of IANA's IPv4 and IPv6 Special-Purpose Address Registries (as of 2025),
# whatever its "globally reachable" flag (anycast relays and AS112's DNS sinks are nobody's
# webhook receiver), and multicast. Kept here rather than taken from ipaddress, whose view
# depends on the Python release (3.11's is_global takes 192.0.0.8 and 3fff::1 for public).
_REFUSED_V4 = _blocks(
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private use"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local: the cloud metadata services are there"),
    ("172.16.0.0/12", "private use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112 DNS service"),
    ("192.52.193.0/24", "AMT relay anycast"),
    ("192.88.99.0/24", "the deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private use"),
    ("192.175.48.0/24", "AS112 DNS service"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (255.255.255.255 is the limited broadcast)"),
)
_REFUSED_V6 = _blocks(
    # Outside 2000::/3 (refused whatever they are, below), named for a clearer message.
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "unique local: a site's private addresses, cloud metadata services among them"),
    ("fec0::/10", "site-local (deprecated, still routed inside some sites)"),
    ("ff00::/8", "multicast"),
    # Within 2000::/3: each inside a site, tunnelling to any IPv4 address, or not routed.
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID, relays)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4, which tunnels to any IPv4 address"),
    ("2620:4f:8000::/48", "AS112 DNS service"),
    ("3fff::/20", "documentation"),
)
# IANA allocates the Internet's IPv6 unicast addresses from here only: anything else (NAT64's
# local-use prefix, SRv6 SIDs, the discard and dummy prefixes, IPv4-compatible ...) is not one.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
# The NAT64 well-known prefix: its addresses reach the IPv4 address in their last 32 bits
# (through a NAT64 gateway, as on IPv6-only networks), so that one is what is checked.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedTarget(ValueError):
    """Why a webhook URL may not be used."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str  # lowercase, without an IPv6 literal's brackets
    port: int
    listed: bool  # the operator allows this host and port whatever its addresses


def allowed_hosts(text: str) -> frozenset[str]:
    """USAGE_WEBHOOK_ALLOW_HOSTS's comma-separated entries as ``parse_target`` matches them:
    ``host:port``, ``host:*`` (every port) or ``host`` (the scheme's default port only, 443
    for https and 80 for http), an IPv6 address in brackets; ValueError for another form."""
    return frozenset(_allowed_entry(entry.strip()) for entry in text.split(",") if entry.strip())


def _allowed_entry(text: str) -> str:
    found = _ALLOWED_ENTRY.fullmatch(text.lower())
    if found is None:
        raise ValueError(
            f"{text!r} is not host, host:port or host:* (an IPv6 address in brackets: [::1]:9000)"
        )
    host, port = found["host"], found["port"]
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
        except ValueError:
            raise ValueError(f"{text!r}: {host} is not an IPv6 address") from None
    else:
        host = _host_name(host)
    if port is None:
        return host
    if port != "*" and not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: a port is 1 to 65535")
    return f"{host}:{port if port == '*' else int(port)}"


def parse_target(url: str, allowed_hosts: frozenset[str]) -> Target:
    """The URL's host and port if its form is allowed, or ``RefusedTarget``.
    ``allowed_hosts``: entries as ``allowed_hosts()`` reads them."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedTarget(f"the URL may be at most {MAX_URL_LENGTH} characters")
    if not url.isprintable():
        raise RefusedTarget("the URL may not contain control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedTarget(f"not a URL: {error}") from None
    if not parts.netloc.isascii() or " " in parts.netloc:
        # A path's spaces and letters are sent percent-encoded; a host's cannot be.
        raise RefusedTarget(f"{parts.netloc!r} is not a host name: ASCII without spaces")
    host = (parts.hostname or "").lower()
    if parts.scheme not in _DEFAULT_PORT or not host:
        raise RefusedTarget("the URL must be https://host/...")
    if port == 0:
        raise RefusedTarget("the URL's port must be 1 to 65535")
    literal = _literal(host)
    if "[" in parts.netloc and not isinstance(literal, ipaddress.IPv6Address):
        raise RefusedTarget(f"[{host}] is not an IPv6 address")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("the URL may not carry credentials: sign with the secret instead")
    if literal is None:
        host = _host_name(host)
    default = _DEFAULT_PORT[parts.scheme]
    port = port or default
    # As the entries are written: IPv6 in brackets, however abbreviated; other hosts as the
    # URL writes them (2130706433 is 127.0.0.1 to a resolver, not to the list: never listed).
    named = f"[{literal}]" if isinstance(literal, ipaddress.IPv6Address) else host
    listed = (
        f"{named}:{port}" in allowed_hosts
        or f"{named}:*" in allowed_hosts
        or (port == default and named in allowed_hosts)
    )
    if parts.scheme == "http" and not listed:
        raise RefusedTarget(
            f"http is only allowed to the operator's listed hosts and ports, not {named}:{port}"
        )
    return Target(url=url, host=host, port=port, listed=listed)


def refused_address(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address`` (the block it is in), or None if it is
    a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            reason = refused_address(embedded)
            return None if reason is None else f"reaching {embedded}, {reason}"
    for network, name in _REFUSED_V4 if address.version == 4 else _REFUSED_V6:
        if address in network:
            return f"in {network} ({name})"
    if address.version == 6 and address not in _GLOBAL_UNICAST_V6:
        return f"outside {_GLOBAL_UNICAST_V6} (the Internet's IPv6 unicast addresses)"
    return None


def literal_address(target: Target) -> IPAddress | None:
    """The host as an address, when the URL names one rather than a name to resolve."""
    return _literal(target.host)


def _literal(host: str) -> IPAddress | None:
    """``host`` as an address: in the usual forms, and in the ones resolvers also read as
    IPv4 (``2130706433``, ``0x7f.1``, ``127.1`` are all 127.0.0.1). An IPv6 zone
    (``fe80::1%eth0``) is refused: it names an interface of this machine."""
    if "%" in host:
        raise RefusedTarget(f"{host!r} is not a host: % marks an IPv6 zone or an escape")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _host_name(host: str) -> str:
    """The name in the ASCII form DNS and the Host header carry, or ``RefusedTarget``: a URL
    parses with hosts no resolver takes (spaces, empty labels)."""
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    if not _HOST_NAME.fullmatch(name):
        raise RefusedTarget(f"{host!r} is not a host name")
    return name


def checked_addresses(target: Target, addresses: list[IPAddress]) -> list[IPAddress]:
    """``addresses`` (the host's, resolved) if a webhook may connect to every one of them."""
    if not addresses:
        raise RefusedTarget(f"{target.host} does not resolve")
    if not target.listed:
        for address in addresses:
            reason = refused_address(address)
            if reason is not None:
                where = "" if target.host == str(address) else f"{target.host} resolves to "
                raise RefusedTarget(
                    f"{where}{address}, {reason}: webhooks go to public addresses only"
                )
    return addresses
