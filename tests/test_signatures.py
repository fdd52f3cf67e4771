"""Webhook signatures (§10) as the Standard Webhooks library (an implementation nobody here
wrote) verifies them: any body, id and time; a changed byte, another secret or another
message id fails."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.core.signatures import new_secret, signed_headers

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
