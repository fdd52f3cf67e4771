"""The OpenTelemetry SDKs' OTLP/HTTP exporters send the spans of an instrumented LLM
application to the live server (`usage-api serve`): Python's in protobuf (gzip or not), and
JavaScript's, run by Node, in OTLP's JSON. The figures are the oracle's, and the span that
cannot be a call is named in partial_success."""

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from testkit import oracle
from testkit.database import reset
from testkit.factories import identity, iso, llm_call
from testkit.matching import assert_equal, comparable
from testkit.oracle import OracleWindow

# What each call of the application sets, by span name; "usage.org" is the resource's
# ("acme") unless the span sets its own.
CALLS = {
    "agent chat": {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-5",
        "gen_ai.response.model": "gpt-5-2025-08-07",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.cache_read.input_tokens": 400,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.agent.id": "support-bot",
        "gen_ai.agent.name": "Support bot",
    },
    "user chat, older names": {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 500,
        "gen_ai.usage.completion_tokens": 80,
        "enduser.id": "u-17",
    },
    "failed call": {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-5",
        "gen_ai.usage.input_tokens": 50,
        "error.type": "rate_limit_exceeded",
        "user.id": "u-18",
    },
    "another org's embeddings": {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.request.model": "text-embedding-3",
        "gen_ai.usage.input_tokens": 900,
        "usage.org": "globex",
        "gen_ai.agent.id": "indexer",
    },
}
NOT_A_CALL = {"http.request.method": "GET", "url.path": "/health"}
NO_IDENTITY = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-5"}
SERVICE = "support-app"
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def _expected(name: str, trace_id: str, span_id: str, end_nanos: int, failed: bool) -> dict:
    """The llm.call the span ``name`` must count as (DESIGN §12), from what the application
    set and what its SDK made (hex ids, its end in ns, an ERROR status)."""
    attributes = CALLS[name]
    agent = attributes.get("gen_ai.agent.id")
    who = (
        identity(agent, "agent", attributes.get("gen_ai.agent.name"))
        if agent
        else identity(attributes.get("enduser.id") or attributes["user.id"], "user")
    )
    return llm_call(
        id=f"{trace_id}-{span_id}",
        source=SERVICE,
        org=attributes.get("usage.org", "acme"),
        time=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=end_nanos // 1000),
        who=who,
        model=attributes.get("gen_ai.response.model") or attributes["gen_ai.request.model"],
        input_tokens=attributes.get("gen_ai.usage.input_tokens")
        or attributes["gen_ai.usage.prompt_tokens"],
        cached_tokens=attributes.get("gen_ai.usage.cache_read.input_tokens", 0),
        output_tokens=attributes.get("gen_ai.usage.output_tokens")
        or attributes.get("gen_ai.usage.completion_tokens", 0),
        succeeded=not failed and "error.type" not in attributes,
    )


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_the_sdks_genai_spans_count_as_the_oracle_says(
    server_url, database_url, ingest_key, admin_key, compression
):
    reset(database_url)
    answers: list[requests.Response] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *_, **__: answers.append(response))
    exporter = OTLPSpanExporter(
        endpoint=f"{server_url}/v1/traces",
        headers={"Authorization": f"Bearer {ingest_key}"},
        compression=compression,
        session=session,
    )
    sent = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE, "usage.org": "acme"})
    )
    provider.add_span_processor(BatchSpanProcessor(sent))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("an LLM application")
    for name, attributes in CALLS.items():
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            if name == "failed call":
                span.set_status(StatusCode.ERROR, "429 from the provider")
            with tracer.start_as_current_span("GET /health", attributes=NOT_A_CALL):
                pass
    with tracer.start_as_current_span("anonymous chat", attributes=NO_IDENTITY) as refused:
        pass
    assert provider.force_flush(30_000)
    provider.shutdown()

    assert [answer.status_code for answer in answers] == [200]
    partial = ExportTraceServiceResponse.FromString(answers[0].content).partial_success
    assert partial.rejected_spans == 1
    assert f"span {refused.get_span_context().span_id:016x}: it names no identity" in (
        partial.error_message
    )
    events = [
        _expected(
            span.name,
            f"{span.context.trace_id:032x}",
            f"{span.context.span_id:016x}",
            span.end_time,
            span.status.status_code == StatusCode.ERROR,
        )
        for span in sent.get_finished_spans()
        if span.name in CALLS
    ]
    _check_llm_figures(server_url, admin_key, events)


def test_the_javascript_sdks_json_spans_count_as_the_oracle_says(
    server_url, database_url, ingest_key, admin_key
):
    reset(database_url)
    calls = [
        {"name": name, "attributes": attributes, "failed": name == "failed call"}
        for name, attributes in {**CALLS, "anonymous chat": NO_IDENTITY}.items()
    ]
    done = subprocess.run(
        ["node", "--input-type=module"],
        input=(Path(__file__).parent / "send_genai_spans.mjs").read_text(),
        cwd=FRONTEND,  # where Node finds the SDK
        env={
            **os.environ,
            "CALLS": json.dumps(calls),
            "SERVICE": SERVICE,
            "OTLP_URL": f"{server_url}/v1/traces",
            "INGEST_KEY": ingest_key,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    *made, result = [json.loads(line) for line in done.stdout.splitlines()]
    assert result == {"exported": True, "error": ""}
    refused = next(span for span in made if span["name"] == "anonymous chat")
    assert '"rejectedSpans":"1"' in done.stderr
    assert f"span {refused['spanId']}: it names no identity" in done.stderr
    events = [
        _expected(
            span["name"],
            span["traceId"],
            span["spanId"],
            int(span["endNanos"]),
            span["name"] == "failed call",
        )
        for span in made
        if span["name"] in CALLS
    ]
    _check_llm_figures(server_url, admin_key, events)


def _check_llm_figures(server_url: str, admin_key: str, events: list[dict]) -> None:
    """The LLM section across organizations, and its groups by identity, as the oracle
    says, over the hour around the events."""
    # Ends now, after every span: a window past the server's clock would end at it.
    end = datetime.now(UTC)
    start = end - timedelta(hours=1)
    window = OracleWindow.custom(start, end, "5m")
    params = {"start": iso(start), "end": iso(end), "bucket": "5m", "top": 5}
    headers = {"Authorization": f"Bearer {admin_key}"}
    body = httpx.get(f"{server_url}/usage/llm", params=params, headers=headers).json()
    expected = oracle.SECTIONS["llm"](events, window, 5, None, filters={})
    assert_equal(comparable({name: body[name] for name in expected}), expected, "llm")
    grouped = httpx.get(
        f"{server_url}/usage/llm/groups", params={**params, "by": "identity"}, headers=headers
    ).json()
    expected = oracle.groups("llm", events, window, 5, None, {}, "identity")
    assert_equal(comparable({name: grouped[name] for name in expected}), expected, "by identity")


def test_a_refusal_of_the_whole_request_is_the_sdks_failure(server_url, read_key):
    """A key that may not ingest: the exporter reports the export failed (and does not
    retry a 403)."""
    exporter = OTLPSpanExporter(
        endpoint=f"{server_url}/v1/traces", headers={"Authorization": f"Bearer {read_key}"}
    )
    provider = TracerProvider(resource=Resource.create({"usage.org": "acme"}))
    tracer = provider.get_tracer("an LLM application")
    with tracer.start_as_current_span("chat", attributes=CALLS["agent chat"]) as span:
        pass
    assert exporter.export([span]) == SpanExportResult.FAILURE
