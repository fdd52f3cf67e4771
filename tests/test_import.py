"""`usage-api import` (§5.1), run as a user runs it: old events load, invalid ones are listed
and skipped, and running it again, or after an interruption, adds nothing twice."""

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from testkit.factories import identity, iso, llm_call, message_sent
from testkit.server import usage_api

NOW = datetime.now(UTC).replace(microsecond=0)


def lines(*events) -> bytes:
    return b"".join(msgspec.json.encode(event) + b"\n" for event in events)


def result_of(run) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def llm_summary(client, read_key, start: datetime, end: datetime) -> dict:
    answer = client.get(
        "/orgs/acme/usage/llm",
        params={"start": iso(start), "end": iso(end)},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["summary"]


@pytest.fixture
def old_calls() -> list[dict]:
    """Calls from 36 days to 300 days ago: older than POST /events takes, kept by import."""
    who = identity("agt-1", "agent", "Archivist")
    return [
        llm_call(time=NOW - timedelta(days=days), who=who, input_tokens=100 * days)
        for days in (36, 37, 90, 300)
    ]


def test_a_file_of_old_events_loads_and_loads_once(db, client, read_key, tmp_path, old_calls):
    invalid_tokens = llm_call(time=NOW - timedelta(days=40), input_tokens=1, cached_tokens=5)
    beyond_retention = llm_call(time=NOW - timedelta(days=401))
    thread = message_sent("t1", time=NOW - timedelta(days=50))
    file = tmp_path / "events.jsonl"
    file.write_bytes(
        lines(old_calls[0], old_calls[1])
        + b"{not json\n"
        + lines(invalid_tokens)
        + b"\n"  # blank lines are skipped
        + msgspec.json.encode([old_calls[2], old_calls[3], beyond_retention])
        + b"\n"
        + lines(thread, old_calls[0])  # the first call again: a duplicate
    )

    first = usage_api(db, "import", str(file))
    assert first.returncode == 1, first.stderr  # some events were invalid
    assert result_of(first) == {"accepted": 5, "duplicates": 1, "invalid": 3}
    report = first.stderr
    assert "line 3: is not JSON" in report
    assert "line 4: data.cached_tokens: must not exceed input_tokens (1)" in report
    assert "line 6, item 3: time: is older than the raw retention of 400 days" in report

    window = (NOW - timedelta(days=365), NOW)
    summary = llm_summary(client, read_key, *window)
    assert summary["input_tokens"] == sum(call["data"]["input_tokens"] for call in old_calls)
    assert summary["successful_requests"] == len(old_calls)

    again = usage_api(db, "import", str(file))
    assert result_of(again) == {"accepted": 0, "duplicates": 6, "invalid": 3}
    assert llm_summary(client, read_key, *window) == summary


def test_an_interrupted_import_run_again_adds_nothing_twice(db, client, read_key, tmp_path):
    day = NOW - timedelta(days=40)
    calls = [
        llm_call(time=day - timedelta(minutes=n), input_tokens=n, cached_tokens=0)
        for n in range(2500)
    ]
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(lines(*calls))
    # Interrupted after two batches and a half: the first 2,500 lines' start.
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(lines(*calls[:1_234]))
    assert result_of(usage_api(db, "import", str(cut)))["accepted"] == 1_234

    resumed = usage_api(db, "import", str(whole))
    assert resumed.returncode == 0, resumed.stderr
    assert result_of(resumed) == {"accepted": 1_266, "duplicates": 1_234, "invalid": 0}
    summary = llm_summary(client, read_key, day - timedelta(days=2), day + timedelta(minutes=1))
    assert summary["input_tokens"] == sum(range(2500))
    assert summary["successful_requests"] == 2500


def test_a_pretty_printed_array_and_stdin(db, client, read_key, tmp_path, old_calls):
    array = tmp_path / "events.json"
    array.write_text(json.dumps(old_calls[:2], indent=2))
    loaded = usage_api(db, "import", str(array))
    assert loaded.returncode == 0, loaded.stderr
    assert result_of(loaded) == {"accepted": 2, "duplicates": 0, "invalid": 0}

    piped = usage_api(db, "import", "-", stdin=lines(*old_calls).decode())
    assert result_of(piped) == {"accepted": 2, "duplicates": 2, "invalid": 0}
    summary = llm_summary(client, read_key, NOW - timedelta(days=365), NOW)
    assert summary["successful_requests"] == len(old_calls)


def test_progress_is_reported_and_a_missing_file_is_named(db, tmp_path):
    missing = usage_api(db, "import", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode != 0
    assert "No such file or directory" in missing.stderr and "nowhere.jsonl" in missing.stderr
    file = tmp_path / "one.jsonl"
    file.write_bytes(lines(llm_call(time=NOW - timedelta(days=1))))
    loaded = usage_api(db, "import", str(file))
    assert "Importing" in loaded.stderr and "1 accepted" in loaded.stderr
