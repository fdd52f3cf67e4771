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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedTarget(f"not a URL: {error}") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise RefusedTarget("the URL must be https://host/...")
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
    IPv4 (``2130706433``, ``0x7f.1``, ``127.1`` are all 127.0.0.1)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: a NUL in it
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
