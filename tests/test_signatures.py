"""Webhook signatures (§10) as the Standard Webhooks library (an implementation nobody here
wrote) verifies them: any body, id and time; a changed byte, another secret or another
message id fails."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.core.signatures import ROTATION_GRACE, new_secret, signed_headers, signing_secrets

_IDS = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=40)


@given(body=st.binary(max_size=2000), message_id=_IDS)
def test_the_standard_library_verifies_every_signature(body, message_id):
    secret = new_secret()
    headers = signed_headers([secret], message_id, int(time.time()), body)
    Webhook(secret).verify(body, headers, json_parse=False)


@given(body=st.binary(min_size=1, max_size=200), flip=st.integers(0, 199))
def test_a_changed_byte_another_secret_or_another_id_is_refused(body, flip):
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", int(time.time()), body)
    changed = bytearray(body)
    changed[flip % len(body)] ^= 1
    for attempt, with_headers, by in (
        (bytes(changed), headers, secret),
        (body, headers, new_secret()),
        (body, {**headers, "webhook-id": "msg_2"}, secret),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(by).verify(attempt, with_headers, json_parse=False)


def test_secrets_are_new_each_time_and_in_the_receivers_format():
    found = {new_secret() for _ in range(100)}
    assert len(found) == 100
    assert all(secret.startswith("whsec_") and len(secret) == 6 + 44 for secret in found)


@given(body=st.binary(max_size=2000), message_id=_IDS)
def test_two_signatures_verify_with_either_secret_and_no_other(body, message_id):
    new, old = new_secret(), new_secret()
    headers = signed_headers([new, old], message_id, int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers, json_parse=False)


def test_the_replaced_secret_signs_until_the_grace_ends():
    rotated_at = datetime(2026, 12, 7, 12, tzinfo=UTC)
    ended = rotated_at + ROTATION_GRACE
    assert signing_secrets("new", "old", rotated_at, rotated_at) == ["new", "old"]
    assert signing_secrets("new", "old", rotated_at, ended - timedelta(microseconds=1)) == [
        "new",
        "old",
    ]
    assert signing_secrets("new", "old", rotated_at, ended) == ["new"]
    assert signing_secrets("new", None, None, rotated_at) == ["new"]
