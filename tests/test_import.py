"""`usage-api import` (§5.1), run as a user runs it: old events load, invalid ones are listed
and skipped, and running it again, or after an interruption, adds nothing twice."""

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.parsing import Accepting
from api.storage import imports
from api.storage.imports import import_events
from testkit.database import with_connection
from testkit.factories import identity, iso, llm_call, message_sent
from testkit.server import USAGE_API, usage_api

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


def mixed(count: int) -> tuple[bytes, list[int]]:
    """JSON lines of ``count`` LLM calls, every tenth from the third one with more cached
    tokens than input tokens and every tenth from the seventh not JSON, and the invalid
    lines' numbers: each batch holds both, an invalid event ahead of a line with none."""
    day = NOW - timedelta(days=40)
    invalid, text = [], b""
    for number in range(1, count + 1):
        if number % 10 == 7:
            text += b"{not json\n"
        else:
            cached = 2 * number if number % 10 == 3 else 0
            call = llm_call(
                time=day - timedelta(seconds=number), input_tokens=number, cached_tokens=cached
            )
            text += lines(call)
        if number % 10 in (3, 7):
            invalid.append(number)
    return text, invalid


def reported_lines(report: str) -> list[int]:
    return [int(where[1]) for where in re.finditer(r"^line (\d+):", report, re.MULTILINE)]


def test_invalid_lines_are_reported_in_the_files_order(db, tmp_path):
    """Across batches, a line with no event after an invalid event of its batch: the
    events' errors came after every such line of their batch."""
    text, invalid = mixed(2_500)
    file = tmp_path / "mixed.jsonl"
    file.write_bytes(text)
    run = usage_api(db, "import", str(file))
    assert run.returncode == 1, run.stderr
    assert result_of(run)["invalid"] == len(invalid)
    assert reported_lines(run.stderr) == invalid


def test_output_to_files_has_no_bar(db, tmp_path):
    """`usage-api import FILE > out 2> err`: plain lines in err, the totals last, with no
    bar drawn (nor carriage returns, nor terminal codes)."""
    text, invalid = mixed(1_500)
    file = tmp_path / "mixed.jsonl"
    file.write_bytes(text)
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        run = subprocess.run(
            [USAGE_API, "import", str(file)],
            stdout=stdout,
            stderr=stderr,
            timeout=120,
            env={**os.environ, "DATABASE_URL": db},
        )
    assert run.returncode == 1, err.read_text()
    said = err.read_text()
    assert "\r" not in said and "\x1b" not in said
    assert not re.search(r"\[[#.]*\]", said), said
    assert reported_lines(said) == invalid
    accepted = 1_500 - len(invalid)
    assert (
        said.splitlines()[-1]
        == f"Importing 100% {accepted:,} accepted, 0 duplicates, {len(invalid)} invalid"
    )
    assert json.loads(out.read_text().splitlines()[-1])["accepted"] == accepted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_leaves_the_reported_lines_whole(db, monkeypatch):
    """The bar is redrawn in place, and an invalid line reported while it is drawn erases it
    (else the line followed the bar on its line): each line the terminal shows is a
    reported line or the bar, and the bar ends at 100 %."""
    monkeypatch.setattr(imports, "BATCH_SIZE", 4)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    text, invalid = mixed(40)
    accepting = Accepting.imported(datetime.now(UTC), 400)

    async def run(conn: psycopg.AsyncConnection) -> None:
        await import_events(conn, io.BytesIO(text), accepting, size=len(text), report=terminal)

    with_connection(db, run)
    # What the terminal shows of each line: what follows its last carriage return.
    shown = [line.split("\r")[-1].replace("\x1b[K", "") for line in terminal.getvalue().split("\n")]
    shown = [line for line in shown if line]
    bar = r"Importing \[[#.]{40}\] \d+% \d+ accepted, \d+ duplicates, \d+ invalid"
    assert all(re.fullmatch(rf"line \d+: .*|{bar}", line) for line in shown), shown
    assert reported_lines("\n".join(shown)) == invalid
    assert shown[-1].startswith("Importing [" + "#" * 40 + "] 100% ")


def spoilt(text: bytes) -> bytes:
    """A valid LLM call's line with ``text`` where its model's name was."""
    call = llm_call(time=NOW - timedelta(days=40), model="MODEL", input_tokens=777_777)
    return msgspec.json.encode(call).replace(b"MODEL", text)


def test_a_line_that_is_no_event_costs_that_line_alone(db, client, read_key, tmp_path):
    """Whatever a line holds, the first line included, it is reported and skipped: the
    events around it load and the result is printed. A first line that opens an array the
    file does not close is one such line, not the start of a pretty-printed array."""
    calls = [
        llm_call(time=NOW - timedelta(days=40, minutes=n), input_tokens=n, cached_tokens=0)
        for n in range(1, 7)
    ]
    not_utf8 = spoilt(b"gpt-\xff5")
    broken = [
        b'[{"specversion": "1.0", "type": "llm.call",',
        msgspec.json.encode(calls[0]),
        not_utf8,
        b'{"data": ' * 1_000 + b"1" + b"}" * 1_000,
        spoilt(b"gpt-5").replace(b"777777", b"1e999"),
        spoilt(b"gpt-5").replace(b"777777", b"1" * 5_000),
        b"[" + msgspec.json.encode(calls[1]) + b"," + not_utf8 + b"]",
    ]
    file = tmp_path / "events.jsonl"
    file.write_bytes(b"\n".join(broken) + b"\n" + lines(*calls[2:]))

    run = usage_api(db, "import", str(file))
    assert run.returncode == 1, run.stderr
    assert result_of(run) == {"accepted": 6, "duplicates": 0, "invalid": 6}
    report = run.stderr
    assert "the file: is not one JSON array" in report
    assert "line 1: is not JSON" in report
    offset = not_utf8.index(b"\xff")
    assert f"line 3: is not UTF-8: invalid byte at offset {offset}" in report
    assert "line 4: is nested too deeply to be CloudEvents" in report
    assert "line 5: data.input_tokens: Number out of range" in report
    assert "line 6: data.input_tokens:" in report
    assert f"line 7, item 2: is not UTF-8: invalid byte at offset {offset}" in report
    summary = llm_summary(client, read_key, NOW - timedelta(days=41), NOW - timedelta(days=39))
    assert summary["input_tokens"] == sum(call["data"]["input_tokens"] for call in calls)


class Piped(io.BytesIO):
    """Standard input from a pipe: read once, no going back."""

    def seekable(self) -> bool:
        return False


# Lines no event could be: any bytes, an array's opening, nestings past any parser's depth,
# an event whose model is any bytes (not UTF-8, quotes, newlines) or with a number past
# every range.
junk_lines = st.one_of(
    st.binary(max_size=80),
    st.binary(max_size=40).map(lambda text: b"[" + text),
    st.integers(1, 3_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3_000).map(lambda depth: b'{"data": ' * depth + b"1" + b"}" * depth),
    st.binary(min_size=1, max_size=8).map(spoilt),
    st.sampled_from([b"1e999", b"9" * 5_000, b"-0.0e-99999"]).map(
        lambda number: spoilt(b"gpt-5").replace(b"777777", number)
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(junk_lines, min_size=1, max_size=5), piped=st.booleans())
def test_no_line_stops_an_import(db, junk, piped):
    """Two valid events after any lines at all are stored (or found stored already), and
    only the lines before them are reported; from a file or a pipe."""
    head = b"\n".join(junk) + b"\n"
    first_kept = head.count(b"\n") + 1
    kept = [llm_call(time=NOW - timedelta(days=40), source="kept", id=f"{n}") for n in (1, 2)]
    report = io.StringIO()
    accepting = Accepting.imported(datetime.now(UTC), 400)

    async def run(conn: psycopg.AsyncConnection) -> set[str]:
        source = (Piped if piped else io.BytesIO)(head + lines(*kept))
        await import_events(conn, source, accepting, report=report)
        stored = await conn.execute("SELECT event_id FROM event_receipts WHERE source = 'kept'")
        return {event_id for (event_id,) in await stored.fetchall()}

    assert with_connection(db, run) == {"1", "2"}, report.getvalue()
    for said in report.getvalue().splitlines():
        where = re.match(r"line (\d+)", said)
        assert said.startswith("the file: ") or (where and int(where[1]) < first_kept), said
