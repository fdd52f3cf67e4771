"""Where webhooks may go (§10): refused before any connection is attempted (these tests
resolve names from /etc/hosts and IP literals only, and connect nowhere)."""

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core.webhook_targets import (
    RefusedTarget,
    allowed_hosts,
    checked_addresses,
    literal_address,
    parse_target,
    refused_address,
)
from api.settings import Settings

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
        "https://192.0.0.8/hook",  # IETF protocol assignments (192.0.0.0/24)
        "https://192.88.99.1/hook",  # the deprecated 6to4 relay anycast
        "https://[3fff::1]/hook",  # IPv6 documentation (RFC 9637)
        "https://[5f00::1]/hook",  # SRv6 SIDs
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 to 169.254.169.254
        "https://[64:ff9b:1::1]/hook",  # NAT64's local-use prefix
        "https://255.255.255.255/hook",
        "https://224.0.0.1/hook",
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
    allowed = allowed_hosts("127.0.0.1:9000, localhost:*, [::1]:9000")
    assert _resolved("http://127.0.0.1:9000/hook", allowed) == [ipaddress.ip_address("127.0.0.1")]
    assert _resolved("http://[::1]:9000/hook", allowed) == [ipaddress.ip_address("::1")]
    assert ipaddress.ip_address("127.0.0.1") in _resolved("http://localhost:9000/hook", allowed)


@pytest.mark.parametrize(
    ("entries", "url", "listed"),
    [
        ("127.0.0.1:9000", "http://127.0.0.1:9000/hook", True),
        ("127.0.0.1:9000", "http://127.0.0.1:8150/hook", False),  # the attack's listener
        ("127.0.0.1:9000", "https://127.0.0.1/hook", False),
        ("127.0.0.1", "http://127.0.0.1/hook", True),  # http's default port, 80
        ("127.0.0.1", "http://127.0.0.1:80/hook", True),
        ("127.0.0.1", "https://127.0.0.1/hook", True),  # https's, 443
        ("127.0.0.1", "http://127.0.0.1:443/hook", False),
        ("127.0.0.1", "http://127.0.0.1:8150/hook", False),
        ("127.0.0.1:*", "http://127.0.0.1:8150/hook", True),
        ("[::1]:9000", "http://[::1]:9000/hook", True),
        ("[0::1]:9000", "http://[0:0::1]:9000/hook", True),  # the addresses, however written
        ("[::1]:9000", "http://[::1]:9001/hook", False),
        ("Hooks.Internal:8443", "https://hooks.internal:8443/x", True),
        ("hooks.internal", "https://hooks.internal:8443/x", False),
        ("127.0.0.1:9000", "http://2130706433:9000/hook", False),  # 127.0.0.1, to resolvers
    ],
)
def test_an_allowed_entry_names_a_port_or_the_schemes_default(entries, url, listed):
    allowed = allowed_hosts(entries)
    if listed or url.startswith("https"):
        assert parse_target(url, allowed).listed is listed
    else:
        with pytest.raises(RefusedTarget, match="http is only allowed"):
            parse_target(url, allowed)


@pytest.mark.parametrize(
    "entry", ["::1", "::1:9000", "[127.0.0.1]", "host:99999", "host:0", "host:x", "a b", "a..b"]
)
def test_an_allowed_entry_of_another_form_stops_the_service_at_start(entry, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/usage")
    monkeypatch.setenv("USAGE_WEBHOOK_ALLOW_HOSTS", f"127.0.0.1:9000,{entry}")
    with pytest.raises(SystemExit, match="USAGE_WEBHOOK_ALLOW_HOSTS"):
        Settings.from_env()


def test_the_allowed_entries_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/usage")
    monkeypatch.setenv("USAGE_WEBHOOK_ALLOW_HOSTS", " 127.0.0.1:9000 ,[::1], hooks.test:* ,")
    assert Settings.from_env().webhook_allow_hosts == {"127.0.0.1:9000", "[::1]", "hooks.test:*"}


def test_public_addresses_pass():
    for text in (
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        "1.1.1.1",
        "64:ff9b::5db8:d70e",  # 93.184.215.14 through NAT64, as an IPv6-only network has it
    ):
        assert refused_address(ipaddress.ip_address(text)) is None
    target = parse_target("https://93.184.215.14/hook", _NONE)
    assert target.port == 443 and not target.listed


@settings(max_examples=2000)
@given(st.ip_addresses())
def test_whatever_this_pythons_ipaddress_calls_not_global_is_refused(address):
    """The refused blocks are a table of their own (3.11's ipaddress takes 192.0.0.8 and
    3fff::1 for public), never less than the running Python knows. (Hypothesis draws the
    registries' special-purpose blocks often.) An IPv4-mapped address is its IPv4 one."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        assert refused_address(address) is not None
