"""The committed openapi.yaml is the app's document, and the running service keeps to it."""

import json
from pathlib import Path

import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from litestar.serialization import encode_json
from schemathesis import GenerationMode

from api.settings import Settings
from api.web.app import create_app
from testkit.factories import llm_call, post_events

OPENAPI_YAML = Path(__file__).resolve().parent.parent / "openapi.yaml"

schema = schemathesis.openapi.from_path(OPENAPI_YAML)


def test_openapi_yaml_is_the_apps_document():
    app = create_app(Settings(database_url="postgresql://unused"))
    generated = json.loads(encode_json(app.openapi_schema.to_schema()))
    committed = yaml.safe_load(OPENAPI_YAML.read_text())
    assert committed == generated, "openapi.yaml is stale: run `make openapi`"


def test_the_served_document_is_the_committed_one(client):
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.json() == yaml.safe_load(OPENAPI_YAML.read_text())


_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,  # the same cases every run: CI must not hinge on a lucky draw
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_service_keeps_to_its_document(
    case, client, server_url, ingest_key, admin_key, read_key
):
    """Generated requests against the real server and database: never a 500, and every
    answer (status, media type, headers, body) as the document says."""
    # So that the organization acme has usage.
    assert post_events(client, ingest_key, [llm_call()]).status_code == 200
    key = ingest_key if case.path == "/events" else admin_key
    case.call_and_validate(base_url=server_url, headers=_with_key(case, key), checks=_CHECKS)
    if "org" in (case.path_parameters or {}):
        for key in (admin_key, read_key):
            case.path_parameters["org"] = "acme"
            case.call_and_validate(
                base_url=server_url, headers=_with_key(case, key), checks=_CHECKS
            )


def _with_key(case, key: str) -> dict[str, str]:
    """A real key in place of the one generated for the document's Bearer scheme; none
    where the case leaves the key out on purpose (a negative case: 401 is its refusal)."""
    needs_key = any(True for _ in case.operation.security.iter_parameters())
    if needs_key and "Authorization" not in (case.headers or {}):
        return {}
    return {"Authorization": f"Bearer {key}"}


# The probes take no input, so nothing about them can be made invalid.
negative_schema = schemathesis.openapi.from_path(OPENAPI_YAML).exclude(
    path_regex="^/(healthz|readyz)$"
)
negative_schema.config.generation.update(modes=[GenerationMode.NEGATIVE])
# A request line and headers past their bound are refused by the HTTP server with 431
# (declared on every operation): a rejection like the others.
_rejection = negative_schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "431"]


@negative_schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_requests_outside_the_document_are_refused_cleanly(case, server_url, ingest_key, admin_key):
    """Generated requests that break the document (wrong types, missing or extra parts):
    never a 500, always refused with a 4xx problem the document declares."""
    key = ingest_key if case.path == "/events" else admin_key
    case.call_and_validate(
        base_url=server_url,
        headers=_with_key(case, key),
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.negative_data_rejection,
            schemathesis.checks.content_type_conformance,
        ],
    )
