"""GenAI spans sent through POST /v1/traces, in random batches and encodings, some sent again:
every figure of every usage endpoint equals the oracle's over the llm.call events the spans
are (testkit.spans), and those events sent as CloudEvents are the ones already stored."""

import gzip

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit import oracle
from testkit.answers import check_every_endpoint, windows
from testkit.database import reset
from testkit.engine import examples
from testkit.factories import post_events
from testkit.spans import genai_spans, in_request_order, json_request, llm_event, protobuf_request

_batches = st.lists(st.lists(genai_spans, min_size=1, max_size=6), min_size=1, max_size=4)
_ENCODINGS = ("protobuf", "json, integers as strings", "json, integers as numbers")


def _body(spans, encoding: str) -> tuple[bytes, str]:
    if encoding == "protobuf":
        return protobuf_request(spans), "application/x-protobuf"
    request = json_request(spans, int_as_string=encoding.endswith("strings"))
    return msgspec.json.encode(request), "application/json"


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), batches=_batches, top=st.integers(1, 3))
def test_spans_in_any_encoding_sent_again_count_as_the_oracle_says(
    client, database_url, ingest_key, read_key, admin_key, data, batches, top
):
    reset(database_url)
    again = data.draw(st.lists(st.sampled_from(batches), max_size=2), label="sent again")
    sent = []
    for spans in batches + again:
        body, content_type = _body(spans, data.draw(st.sampled_from(_ENCODINGS)))
        headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": content_type}
        if data.draw(st.booleans(), label="gzip"):
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        response = client.post("/v1/traces", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.content in (b"", b"{}")  # no span refused
        sent += [llm_event(span) for span in in_request_order(spans)]
    stored = oracle.unique_events(sent)
    check_every_endpoint(
        client, (read_key, admin_key), data, stored, data.draw(windows(stored)), top
    )
    # The same calls as CloudEvents: each one already stored.
    response = post_events(client, ingest_key, stored)
    assert response.json() == {"accepted": 0, "duplicates": len(stored)}
