"""openapi.yaml as tools nobody here wrote read it: the OpenAPI validator, openapi-typescript
(whose types must compile in strict TypeScript), and openapi-python-client (whose generated
client must talk to the real server)."""

import importlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from api.storage import migrations
from api.storage.keys import Scope, create_key
from testkit.database import new_database, with_connection
from testkit.factories import BASE_TIME
from testkit.server import UNLIMITED, live_server

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_YAML = ROOT / "openapi.yaml"
FRONTEND = ROOT / "frontend"
BIN = Path(sys.executable).parent


def test_the_document_is_valid_openapi():
    validate(yaml.safe_load(OPENAPI_YAML.read_text()))


# Reads a usage answer and asks for one as a client would; strict, so `null` where the
# document does not allow it, or a missing figure, does not compile.
_TYPESCRIPT_CLIENT = """
import type { components, paths } from "./usage-api";

type LlmUsage = components["schemas"]["LlmUsage"];
type LlmQuery = NonNullable<paths["/orgs/{org}/usage/llm"]["get"]["parameters"]["query"]>;

export function totalTokens(usage: LlmUsage): number {
  return usage.summary.input_tokens + usage.summary.output_tokens;
}

export const lastWeek: LlmQuery = { range: "7d", bucket: "1d", top: 5 };
export const custom: LlmQuery = { start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z" };
"""


def test_openapi_typescript_types_compile_in_strict_typescript(tmp_path):
    generated = tmp_path / "usage-api.d.ts"
    _run(["npx", "--no-install", "openapi-typescript", str(OPENAPI_YAML), "-o", str(generated)])
    # The page's types are this file, committed: stale, they would let the page drift.
    assert generated.read_text() == (FRONTEND / "src" / "api-types.ts").read_text(), (
        "frontend/src/api-types.ts is stale: run `make openapi`"
    )
    client = tmp_path / "client.ts"
    client.write_text(_TYPESCRIPT_CLIENT)
    _run(["npx", "--no-install", "tsc", "--noEmit", "--strict", "--target", "es2022",
          "--moduleResolution", "bundler", "--module", "esnext", str(client)])  # fmt: skip


def _run(command: list[str], cwd: Path = FRONTEND) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory):
    """The Python client openapi-python-client writes for the document, imported."""
    folder = tmp_path_factory.mktemp("python-client")
    _run([str(BIN / "openapi-python-client"), "generate", "--path", str(OPENAPI_YAML),
          "--meta", "none", "--output-path", str(folder / "usage_client")], cwd=folder)  # fmt: skip
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("usage_client")
    finally:
        sys.path.remove(str(folder))


def test_the_generated_python_client_sends_and_reads(
    generated_client, server_url, db, ingest_key, read_key
):
    models = importlib.import_module("usage_client.models")
    post_events = importlib.import_module("usage_client.api.ingest.events_post_events")
    read_llm = importlib.import_module("usage_client.api.usage.orgs_usage_llm_llm")
    client = generated_client.AuthenticatedClient
    event = models.LlmCallEvent(
        specversion=models.LlmCallEventSpecversion("1.0"),
        id="generated-1",
        source="python-client",
        subject="acme",
        time=BASE_TIME,
        type_=models.LlmCallEventType("llm.call"),
        data=models.LlmCall(
            identity=models.Identity(kind=models.IdentityKind("agent"), id="agt-1"),
            model="gpt-5",
            input_tokens=120,
            cached_tokens=20,
            output_tokens=7,
            succeeded=True,
        ),
    )
    with client(base_url=server_url, token=ingest_key) as ingest:
        result = post_events.sync(client=ingest, body=[event])
    assert isinstance(result, models.IngestResult)
    assert (result.accepted, result.duplicates) == (1, 0)
    with client(base_url=server_url, token=read_key) as reader:
        usage = read_llm.sync(
            "acme", client=reader, start=BASE_TIME, end=BASE_TIME + timedelta(hours=1)
        )
        assert isinstance(usage, models.LlmUsage)
        assert (usage.summary.input_tokens, usage.summary.output_tokens) == (120, 7)
        missing = read_llm.sync("globex", client=reader)
        assert isinstance(missing, models.ProblemDetails)
        assert missing.status == 404


# The admin run leaves out the ingest routes (the ingest run's) and the key routes (run on a
# database of their own, below).
_EXCLUDED_FROM_ADMIN = [
    *("--exclude-path", "/events", "--exclude-path", "/v1/traces"),
    *("--exclude-path-regex", "^/keys"),
]


@pytest.mark.parametrize(
    ("scope", "paths"),
    [
        ("ingest", ["--include-path", "/events", "--include-path", "/v1/traces"]),
        ("admin", _EXCLUDED_FROM_ADMIN),
    ],
)
def test_the_schemathesis_cli_finds_nothing(
    server_url, ingest_key, admin_key, scope, paths, tmp_path
):
    """Every check but one, as a user would run it. Left out: that every request the
    document allows is accepted. It cannot hold: the document cannot say that range excludes
    start, that cached_tokens is at most input_tokens, or that time is not in the future."""
    key = ingest_key if scope == "ingest" else admin_key
    _schemathesis(server_url, key, paths, tmp_path)


def test_the_schemathesis_cli_finds_nothing_in_the_key_routes(postgres, tmp_path):
    """The key routes, on a database of their own: its stateful phase lists the keys and
    revokes them, which on the session's database would revoke the suite's own keys."""
    with new_database(postgres.url, "schemathesis_keys") as url:
        migrations.upgrade(url)
        admin = with_connection(url, lambda conn: create_key(conn, Scope.ADMIN, None)).key
        with live_server(url, **UNLIMITED) as base_url:
            _schemathesis(base_url, admin, ["--include-path-regex", "^/keys"], tmp_path)


def _schemathesis(base_url: str, key: str, paths: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [str(BIN / "schemathesis"), "run", str(OPENAPI_YAML), "--url", base_url,
         "--header", f"Authorization: Bearer {key}", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
         "--generation-deterministic", "--generation-with-security-parameters", "false",
         *paths],
        capture_output=True, text=True, timeout=600, cwd=cwd,  # its cache goes there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:]
