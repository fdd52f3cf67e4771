"""Events made and sent by the official CloudEvents Python SDK, not by our factories: binary
content mode (its default), one structured event, and a batch of structured events."""

from datetime import timedelta

import httpx
import pytest
from cloudevents.core.bindings import http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from testkit.database import rows
from testkit.factories import BASE_TIME


def _llm_call(id: str, tokens: int, **attributes) -> CloudEvent:
    return CloudEvent(
        {
            "type": "llm.call",
            "source": "llm gateway/eu",  # a space: percent-encoded in a ce- header
            "subject": "acme",
            "id": id,
            "time": BASE_TIME + timedelta(minutes=tokens),
            "datacontenttype": "application/json; charset=utf-8",
            **attributes,
        },
        {
            "identity": {"kind": "agent", "id": "agt-1", "name": "Zoë's triage"},
            "model": "gpt-5",
            "input_tokens": tokens,
            "cached_tokens": 0,
            "output_tokens": 1,
            "succeeded": True,
        },
    )


@pytest.fixture
def send(server_url, db, ingest_key):
    def post(message: http.HTTPMessage) -> httpx.Response:
        headers = {**message.headers, "Authorization": f"Bearer {ingest_key}"}
        return httpx.post(f"{server_url}/events", headers=headers, content=message.body)

    return post


def _stored_input_tokens(db) -> dict[str, int]:
    return {row[2]: row[7] for row in rows(db, "llm_calls")}


def test_binary_content_mode(send, db):
    response = send(http.to_binary_event(_llm_call("b-1", 100)))
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert send(http.to_binary_event(_llm_call("b-1", 100))).json()["duplicates"] == 1
    assert _stored_input_tokens(db) == {"b-1": 100}
    assert rows(db, "event_receipts")[0][1] == "llm gateway/eu"


def test_structured_mode(send, db):
    assert send(http.to_structured_event(_llm_call("s-1", 7))).json()["accepted"] == 1
    assert _stored_input_tokens(db) == {"s-1": 7}


def test_a_batch_of_structured_events(send, db):
    events = [_llm_call(f"a-{n}", n + 1) for n in range(3)]
    body = b"[" + b",".join(JSONFormat().write(event) for event in events) + b"]"
    message = http.HTTPMessage(
        headers={"content-type": "application/cloudevents-batch+json"}, body=body
    )
    assert send(message).json() == {"accepted": 3, "duplicates": 0}
    assert _stored_input_tokens(db) == {"a-0": 1, "a-1": 2, "a-2": 3}


def test_binary_mode_reports_bad_attributes_and_data_by_field(send, db):
    event = _llm_call("b-2", 5, subject="Not A Slug")
    message = http.to_binary_event(event)
    bad_data = message.body.replace(b'"input_tokens": 5', b'"input_tokens": -5')
    response = send(http.HTTPMessage(headers=message.headers, body=bad_data))
    assert response.status_code == 422
    assert sorted(error["field"] for error in response.json()["errors"]) == [
        "data.input_tokens",
        "subject",
    ]
    assert rows(db, "llm_calls") == []
