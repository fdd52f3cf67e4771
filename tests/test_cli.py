"""The `usage-api` command, run as a user runs it: the installed console script."""

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from testkit.database import rows
from testkit.factories import llm_call, post_events
from testkit.server import USAGE_API, usage_api


def test_migrate_is_idempotent(database_url):
    for _ in range(2):
        result = usage_api(database_url, "migrate")
        assert result.returncode == 0, result.stderr


def test_keys_create_prints_a_working_key_on_its_last_line(client, db):
    result = usage_api(db, "keys", "create", "--scope", "ingest")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("usage_") and " " not in key
    assert post_events(client, key, [llm_call()]).status_code == 200


def test_keys_list_shows_ids_and_scopes_never_keys(db):
    created = usage_api(db, "keys", "create", "--scope", "read", "--org", "listed-org")
    key = created.stdout.strip().splitlines()[-1]
    listing = usage_api(db, "keys", "list")
    assert listing.returncode == 0
    line = next(line for line in listing.stdout.splitlines() if "listed-org" in line)
    assert line.split()[1] == "read"
    assert key not in listing.stdout


def test_revoked_key_fails(client, db):
    created = usage_api(db, "keys", "create", "--scope", "ingest").stdout.strip().splitlines()
    key_id = re.search(r"key ([0-9a-f]+)", created[0]).group(1)
    key = created[-1]
    assert post_events(client, key, [llm_call()]).status_code == 200
    revoked = usage_api(db, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert post_events(client, key, [llm_call()]).status_code == 401
    header, *lines = usage_api(db, "keys", "list").stdout.splitlines()
    listed = next(line for line in lines if key_id in line)
    revoked_at = header.index("REVOKED")
    assert listed[revoked_at : revoked_at + 19].strip() not in ("", "-")
    again = usage_api(db, "keys", "revoke", key_id)
    assert again.returncode != 0
    assert "no live key" in again.stderr


@pytest.mark.parametrize("scope", ["read", "manage"])
def test_a_bound_key_for_a_new_org_creates_the_org(db, scope):
    result = usage_api(db, "keys", "create", "--scope", scope, "--org", "newco")
    assert result.returncode == 0, result.stderr
    assert ("newco",) in rows(db, "orgs")
    listed = usage_api(db, "keys", "list").stdout
    assert any(scope in line and "newco" in line for line in listed.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--scope", "read"],
        ["keys", "create", "--scope", "manage"],
        ["keys", "create", "--scope", "ingest", "--org", "acme"],
        ["keys", "create", "--scope", "admin", "--org", "acme"],
        ["keys", "create", "--scope", "read", "--org", "Not A Slug"],
        ["keys", "create", "--scope", "owner"],
    ],
)
def test_keys_create_refuses_bad_arguments(db, args):
    result = usage_api(db, *args)
    assert result.returncode != 0
    assert result.stderr
    assert rows(db, "orgs") == []


def test_without_database_url_it_says_what_to_do():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run([USAGE_API, "migrate"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USAGE_RATE_LIMIT", "fast"),
        ("USAGE_RATE_LIMIT", "-1"),
        ("USAGE_RATE_BURST", "0"),
        ("USAGE_DB_POOL_SIZE", "many"),
        ("USAGE_DB_CHECKOUT_TIMEOUT", "soon"),
        ("USAGE_EXPORT_INTERVAL", "0"),
        ("USAGE_EXPORT_DELAY", "-1"),
    ],
)
def test_a_bad_setting_stops_serve_saying_which(database_url, variable, value):
    result = usage_api(database_url, "serve", "--port", "1", **{variable: value})
    assert result.returncode != 0
    assert f"{variable} must be a number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "endpoint", "said"),
    [
        ("http://bucket/usage", None, "neither s3://bucket/prefix nor file:///path"),
        ("s3:///usage", None, "names no bucket"),
        ("file://relative/path", None, "names a host"),
        ("s3://bucket/../usage", None, "'..' path segment"),
        ("s3://bucket/usage", "127.0.0.1:8333", "must be http(s)://host[:port]"),
    ],
)
def test_a_bad_export_destination_stops_serve_saying_which(database_url, url, endpoint, said):
    endpoint_env = {"USAGE_EXPORT_ENDPOINT": endpoint} if endpoint else {}
    result = usage_api(database_url, "serve", "--port", "1", USAGE_EXPORT_URL=url, **endpoint_env)
    assert result.returncode != 0
    assert "USAGE_EXPORT_URL" in result.stderr and said in result.stderr
    assert "Traceback" not in result.stderr


def test_export_without_a_destination_says_what_to_set(database_url):
    result = usage_api(database_url, "export", "--once")
    assert result.returncode != 0
    assert "USAGE_EXPORT_URL is not set" in result.stderr


def test_an_unknown_log_level_stops_serve_saying_which(database_url):
    result = usage_api(database_url, "serve", "--port", "1", USAGE_LOG_LEVEL="loud")
    assert result.returncode != 0
    assert "USAGE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_create_takes_a_name_and_an_expiry_that_list_shows(client, db):
    created = usage_api(db, "keys", "create", "--scope", "ingest", "--name", "gateway eu",
                        "--expires", "90d")  # fmt: skip
    assert created.returncode == 0, created.stderr
    key_id = re.search(r"key ([0-9a-f]+)", created.stdout).group(1)
    assert "expiring at " in created.stdout
    header, *lines = usage_api(db, "keys", "list").stdout.splitlines()
    listed = next(line for line in lines if key_id in line)
    assert listed.endswith("gateway eu")
    expires = listed[header.index("EXPIRES") :][:10]
    assert expires == f"{datetime.now(UTC) + timedelta(days=90):%Y-%m-%d}"
    for bad in ("yesterday", "2020-01-01T00:00:00Z", "0d"):
        refused = usage_api(db, "keys", "create", "--scope", "ingest", "--expires", bad)
        assert refused.returncode != 0 and "--expires" in refused.stderr
