"""Where webhooks may go (§10): refused before any connection is attempted (these tests
resolve names from /etc/hosts and IP literals only, and connect nowhere)."""

import ipaddress
import socket

import pytest

from api.core.webhook_targets import (
    RefusedTarget,
    checked_addresses,
    literal_address,
    parse_target,
    refused_address,
)

_NONE: frozenset[str] = frozenset()


def _resolved(url: str, allowed: frozenset[str] = _NONE) -> list:
    """The URL's addresses, checked; a name resolved as a delivery will (here only names
    in /etc/hosts: nothing leaves the machine)."""
    target = parse_target(url, allowed)
    literal = literal_address(target)
    if literal is not None:
        return checked_addresses(target, [literal])
    found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
    return checked_addresses(target, addresses)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.10:8443/hook",
        "https://172.16.0.5/hook",
        "https://100.64.0.1/hook",  # shared (carrier-grade NAT) space
        "https://[fd00:ec2::254]/hook",  # a cloud metadata service over IPv6
        "https://[::ffff:127.0.0.1]/hook",  # loopback written as IPv6
        "https://0.0.0.0/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "https://2130706433/hook",  # 127.0.0.1 as resolvers read a number
        "https://0x7f.1/hook",
        "https://[fec0::1]/hook",  # IPv6 site-local (deprecated, still routed in places)
        "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 around 169.254.169.254
    ],
)
def test_an_address_that_is_not_public_is_refused(url):
    with pytest.raises(RefusedTarget):
        _resolved(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "http is only allowed"),
        ("ftp://example.com/hook", "https://"),
        ("https:///hook", "https://"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://example.com:99999/hook", "not a URL"),
        ("not a url", "https://"),
        ("https://[2606:4700:4700::1111%25eth0]/hook", "zone"),  # a public address, a zone
        ("https://1.1.1.1 x/hook", "ASCII without spaces"),  # inet_aton would read 1.1.1.1
        ("https://1.1.1.1\u00e9/hook", "ASCII without spaces"),
        ("https://hooks.example.com/\x00", "control characters"),
        ("https://[v1.hooks.example]/hook", "not an IPv6 address"),  # IPvFuture
        ("https://hooks.example.com:0/hook", "port"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048"),
    ],
)
def test_a_url_of_the_wrong_form_is_refused(url, why):
    with pytest.raises(RefusedTarget, match=why):
        parse_target(url, _NONE)


def test_a_listed_host_may_be_loopback_and_plain_http():
    allowed = frozenset({"127.0.0.1", "localhost", "::1"})
    assert _resolved("http://127.0.0.1:9000/hook", allowed) == [ipaddress.ip_address("127.0.0.1")]
    assert _resolved("http://[::1]:9000/hook", allowed) == [ipaddress.ip_address("::1")]
    assert ipaddress.ip_address("127.0.0.1") in _resolved("http://localhost:9000/hook", allowed)


def test_public_addresses_pass():
    for text in ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"):
        assert refused_address(ipaddress.ip_address(text)) is None
    target = parse_target("https://93.184.215.14/hook", _NONE)
    assert target.port == 443 and not target.listed
