"""Where a webhook may be sent: the checks against server-side request forgery.

A URL is ``https``, or ``http`` to a host the operator lists (``USAGE_WEBHOOK_ALLOW_HOSTS``).
Every address its host resolves to must be a public one: loopback, private, link-local (the
cloud metadata services among them), shared, reserved and multicast addresses are refused
unless the host is listed. A delivery connects to the addresses it checked, so a name that
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


class RefusedTarget(ValueError):
    """Why a webhook URL may not be used."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str  # lowercase, without an IPv6 literal's brackets
    port: int
    listed: bool  # the operator allows this host whatever its addresses


def parse_target(url: str, allowed_hosts: frozenset[str]) -> Target:
    """The URL's host and port if its form is allowed, or ``RefusedTarget``."""
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
    if parts.scheme not in ("https", "http") or not host:
        raise RefusedTarget("the URL must be https://host/...")
    if port == 0:
        raise RefusedTarget("the URL's port must be 1 to 65535")
    if "[" in parts.netloc and not isinstance(_literal(host), ipaddress.IPv6Address):
        raise RefusedTarget(f"[{host}] is not an IPv6 address")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("the URL may not carry credentials: sign with the secret instead")
    if _literal(host) is None:
        host = _host_name(host)
    listed = host in allowed_hosts
    if parts.scheme == "http" and not listed:
        raise RefusedTarget(f"http is only allowed to the operator's listed hosts, not {host}")
    return Target(
        url=url, host=host, port=port or (443 if parts.scheme == "https" else 80), listed=listed
    )


def refused_address(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address``, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services are there)"
    if address.is_private:
        return "a private address"
    if isinstance(address, ipaddress.IPv6Address) and (
        address.is_site_local or address.sixtofour is not None or address.teredo is not None
    ):
        return "an address that tunnels or routes inside a site"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a unicast address"
    if not address.is_global:
        return "not a public address"
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
                raise RefusedTarget(f"{target.host} resolves to {address}: {reason}")
    return addresses
