"""Standard Webhooks signatures (https://www.standardwebhooks.com): a secret per threshold,
and the headers that sign one delivery of a body with it (pure, no I/O)."""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

_PREFIX = "whsec_"
_SECRET_BYTES = 32
# How long after a rotation webhooks are signed with the replaced secret too (DESIGN §10).
ROTATION_GRACE = timedelta(hours=24)


def new_secret() -> str:
    """A new signing secret, as receivers' libraries take it: ``whsec_`` and base64."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signing_secrets(
    secret: str, previous: str | None, rotated_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets a webhook sent at ``now`` is signed with: the current one, and the one a
    rotation replaced until ``ROTATION_GRACE`` after it, so that a receiver still holding it
    verifies every webhook until it switches."""
    if previous is None or rotated_at is None or now >= rotated_at + ROTATION_GRACE:
        return [secret]
    return [secret, previous]


def signed_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (for
    each secret, ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``, space-separated
    as Standard Webhooks specifies: a receiver verifies with whichever it holds)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(_signature(secret, signed) for secret in secrets),
    }


def _signature(secret: str, signed: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(_PREFIX))
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
