"""Configuration, read from the environment once at start-up."""

import ipaddress
import os
from pathlib import Path
from typing import TypeVar

import msgspec

from api.core import destinations
from api.core.destinations import Destination
from api.core.rate_limit import IpNetwork
from api.core.webhook_targets import allowed_hosts

# Where `make` builds the page (frontend/dist).
DEFAULT_PAGE_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"
# Seconds a request waits for a pooled connection while all are busy: past them it is
# answered 503 with Retry-After, and the database is probed (api.storage.availability).
DEFAULT_DB_CHECKOUT_TIMEOUT = 2.0


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    db_pool_size: int = 10
    db_checkout_timeout: float = DEFAULT_DB_CHECKOUT_TIMEOUT
    page_dir: Path = DEFAULT_PAGE_DIR
    # Origins (scheme://host[:port]) whose pages may call the API: a page hosted elsewhere.
    cors_origins: tuple[str, ...] = ()
    # Per API key: requests per second sustained, and at once; a rate of 0 turns it off.
    rate_limit: float = 50.0
    rate_burst: int = 100
    # Per client address: unknown keys per second sustained, and at once.
    auth_failure_rate: float = 1.0
    auth_failure_burst: int = 20
    # Seconds a looked-up key is trusted without asking the database again: the bound on a
    # revocation the server is not told of (revoking with `usage-api keys revoke` tells it).
    key_cache_seconds: float = 5.0
    # Proxies whose X-Forwarded-For names the client (for the limit above).
    trusted_proxies: tuple[IpNetwork, ...] = ()
    log_level: str = "INFO"
    # Seconds a connection may take to send a request's headers (slow clients are closed).
    header_timeout: float = 10.0
    # What one connection may make the server hold (api.web.http_server): the request line
    # and headers in bytes and headers in number (past them: 431), the seconds a request's
    # body may take after its headers (past them: 408), and connections at once per process
    # (past them: 503 before anything is read; lowered to fit the open-files limit).
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    body_timeout: float = 60.0
    max_connections: int = 1000
    # How old an event POST /events accepts; how long raw events are kept (import's limit).
    accept_days: int = 35
    raw_retention_days: int = 400
    # The write path (api.storage.folding): whether this process folds the queue into the
    # rollups (else `usage-api fold` does, apart), how long it waits when the queue was
    # empty, and the queued rows past which POST /events answers 503 with Retry-After.
    fold_in_server: bool = True
    fold_interval: float = 0.2
    pending_limit: int = 500_000
    # Hosts and ports a threshold's webhook may reach over plain http, or at a loopback,
    # private or link-local address (api.core.webhook_targets.allowed_hosts: host:port, host:*
    # or host for the scheme's default port): none unless the operator lists them.
    webhook_allow_hosts: frozenset[str] = frozenset()
    # The thresholds' watcher (api.alerts.watcher): whether this process runs it (else
    # `usage-api watch` does, apart), and the seconds between its passes. On unless
    # USAGE_WATCH_IN_SERVER=0; off in settings made in code (the tests'), which run its
    # passes themselves.
    watch_in_server: bool = False
    watch_interval: float = 5.0
    # Webhook attempts under way at once (api.alerts.delivery.Bounds): in all, of one
    # organization, of one organization to one host and port; a receiver that never
    # answers holds its slot for the attempt's 10 s, and only its own.
    webhook_concurrency: int = 64
    webhook_org_concurrency: int = 8
    webhook_host_concurrency: int = 4
    # Where people open the usage page: the base of the links webhooks carry.
    public_url: str = "http://127.0.0.1:8000"
    # Export to object storage (api.export): where (None: no export); whether this process
    # runs the exporter (else `usage-api export` does, apart; off in settings made in code,
    # like the watcher); the seconds between its passes; how long after a UTC date ends its
    # hourly figures are first written (events still arriving for it).
    export_destination: Destination | None = None
    export_in_server: bool = False
    export_interval: float = 300.0
    export_delay: float = 3600.0

    @classmethod
    def from_env(cls) -> "Settings":
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            raise SystemExit(
                "DATABASE_URL is not set: give a postgresql:// URL, or use `make run`, "
                "which starts an embedded PostgreSQL under .data/"
            )
        return cls(
            database_url=database_url,
            db_pool_size=_number("USAGE_DB_POOL_SIZE", int, 10, least=1),
            db_checkout_timeout=_number(
                "USAGE_DB_CHECKOUT_TIMEOUT", float, DEFAULT_DB_CHECKOUT_TIMEOUT, least=0.1
            ),
            page_dir=Path(os.environ.get("USAGE_PAGE_DIR", DEFAULT_PAGE_DIR)),
            cors_origins=tuple(
                origin.strip()
                for origin in os.environ.get("USAGE_CORS_ORIGINS", "").split(",")
                if origin.strip()
            ),
            rate_limit=_number("USAGE_RATE_LIMIT", float, 50.0, least=0),
            rate_burst=_number("USAGE_RATE_BURST", int, 100, least=1),
            auth_failure_rate=_number("USAGE_AUTH_FAILURE_RATE", float, 1.0, least=0),
            auth_failure_burst=_number("USAGE_AUTH_FAILURE_BURST", int, 20, least=1),
            key_cache_seconds=_number("USAGE_KEY_CACHE_SECONDS", float, 5.0, least=0),
            trusted_proxies=_networks("USAGE_TRUSTED_PROXIES"),
            log_level=_log_level(),
            header_timeout=_number("USAGE_HEADER_TIMEOUT", float, 10.0, least=0.1),
            max_header_bytes=_number("USAGE_MAX_HEADER_BYTES", int, 16 * 1024, least=1024),
            max_headers=_number("USAGE_MAX_HEADERS", int, 100, least=10),
            body_timeout=_number("USAGE_BODY_TIMEOUT", float, 60.0, least=0.1),
            max_connections=_number("USAGE_MAX_CONNECTIONS", int, 1000, least=1),
            fold_in_server=_number("USAGE_FOLD_IN_SERVER", int, 1, least=0) != 0,
            webhook_allow_hosts=_webhook_allow_hosts(),
            fold_interval=_number("USAGE_FOLD_INTERVAL", float, 0.2, least=0.01),
            watch_in_server=_number("USAGE_WATCH_IN_SERVER", int, 1, least=0) != 0,
            watch_interval=_number("USAGE_WATCH_INTERVAL", float, 5.0, least=0.01),
            webhook_concurrency=_number("USAGE_WEBHOOK_CONCURRENCY", int, 64, least=1),
            webhook_org_concurrency=_number("USAGE_WEBHOOK_ORG_CONCURRENCY", int, 8, least=1),
            webhook_host_concurrency=_number("USAGE_WEBHOOK_HOST_CONCURRENCY", int, 4, least=1),
            public_url=os.environ.get("USAGE_PUBLIC_URL", "http://127.0.0.1:8000"),
            pending_limit=_number("USAGE_PENDING_LIMIT", int, 500_000, least=1),
            export_destination=export_destination(),
            export_in_server=_number("USAGE_EXPORT_IN_SERVER", int, 1, least=0) != 0,
            export_interval=_number("USAGE_EXPORT_INTERVAL", float, 300.0, least=0.01),
            export_delay=_number("USAGE_EXPORT_DELAY", float, 3600.0, least=0),
            **ages(),
        )


def ages() -> dict[str, int]:
    """USAGE_ACCEPT_DAYS and USAGE_RAW_RETENTION_DAYS: an event POST /events accepts must
    still be kept, so the first is at most the second."""
    accept_days = _number("USAGE_ACCEPT_DAYS", int, 35, least=1)
    raw_retention_days = _number("USAGE_RAW_RETENTION_DAYS", int, 400, least=1)
    if accept_days > raw_retention_days:
        raise SystemExit(
            f"USAGE_ACCEPT_DAYS ({accept_days}) must not exceed USAGE_RAW_RETENTION_DAYS "
            f"({raw_retention_days}): an accepted event would be past the raw retention"
        )
    return {"accept_days": accept_days, "raw_retention_days": raw_retention_days}


def export_destination() -> Destination | None:
    """USAGE_EXPORT_URL (with USAGE_EXPORT_ENDPOINT), or None when it is not set."""
    url = os.environ.get("USAGE_EXPORT_URL")
    if not url:
        return None
    try:
        return destinations.parse(url, os.environ.get("USAGE_EXPORT_ENDPOINT"))
    except ValueError as error:
        raise SystemExit(f"USAGE_EXPORT_URL: {error}") from None


def _webhook_allow_hosts() -> frozenset[str]:
    try:
        return allowed_hosts(os.environ.get("USAGE_WEBHOOK_ALLOW_HOSTS", ""))
    except ValueError as error:
        raise SystemExit(f"USAGE_WEBHOOK_ALLOW_HOSTS: {error}") from None


def _networks(name: str) -> tuple[IpNetwork, ...]:
    texts = [text.strip() for text in os.environ.get(name, "").split(",") if text.strip()]
    try:
        return tuple(ipaddress.ip_network(text) for text in texts)
    except ValueError as error:
        raise SystemExit(f"{name} must be IP addresses or networks (CIDR): {error}") from None


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level() -> str:
    text = os.environ.get("USAGE_LOG_LEVEL", "INFO")
    if text.upper() not in _LOG_LEVELS:
        raise SystemExit(f"USAGE_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, not {text!r}")
    return text.upper()


_N = TypeVar("_N", int, float)


def _number(name: str, kind: type[_N], default: _N, *, least: _N) -> _N:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise SystemExit(f"{name} must be a number from {least} on, not {text!r}")
    return value
