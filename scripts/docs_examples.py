"""The examples of the README and docs/, run, and the answers the docs show, from the demo data.

The pages mark the fenced blocks that run, with an HTML comment on the line before (invisible
on the site and on GitHub):

    <!-- example -->               a sh or python block that runs as written against `make run`
    <!-- example status=422 -->    its curls answer these statuses: one for every curl, or one
                                   per curl in order (status=200,304); without it, any 2xx
    <!-- example webhook -->       a python block run with a real webhook delivery's `secret`,
                                   `request_body` and `request_headers` (the tests give them)

and the answers they show:

    <!-- answer -->                the fenced block after it is what the example before it
    <!-- answer items=1 -->        printed, its lists cut after two (here one) items

A page is one shell session, as for a reader going down it: its blocks run in order, and the
variables one sets (KEY, H, ...) are there for the next, exported, so python blocks see them
too. Before a block runs, `http://127.0.0.1:8000` becomes the server's address, `.venv/bin/`
this interpreter's bin directory, an assignment to DATABASE_URL the database's URL, and an id
shown abridged (`thr_5f0c…`) the latest id with that prefix an answer gave.

This script starts a throwaway PostgreSQL, loads the demo data (as `usage-api demo`), serves
it with `usage-api serve`, runs every page's examples and writes what each printed into the
answer blocks (and the abridged ids into the pages). tests/docs/test_examples.py runs the same
examples against the test server and fails when an answer's shape (keys, nesting, types; not
the figures) differs from the one written here.

    .venv/bin/python scripts/docs_examples.py           # rewrite the answers in the pages
    .venv/bin/python scripts/docs_examples.py --check   # run, and only report what differs
"""

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The pages whose examples run: the README, then docs/ (each page is its own session).
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS_URL = "http://127.0.0.1:8000"
WIDTH = 80  # an answer's lines, at most, where a value allows (the site's code blocks show 80)
TIMEOUT = 60  # seconds a block may take

_EXAMPLE = re.compile(r"^<!--\s*example\b(?P<options>.*?)-->\s*$")
_ANSWER = re.compile(r"^<!--\s*answer\b(?P<options>.*?)-->\s*$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
# An id shown abridged in a page, standing for the latest one an answer gave: thr_5f0c…
_PLACEHOLDER = re.compile(r"\b(?P<prefix>[a-z]+_)[0-9a-f]*…")
_ID = re.compile(r"^(?P<prefix>thr_)[0-9a-f]{8,}$")
_SECRET = re.compile(r"^whsec_")
_MORE = re.compile(r"^… \d+ more")


@dataclass(frozen=True)
class Fence:
    lang: str
    code: str
    start: int  # the index of the opening line
    end: int  # the index of the closing line


@dataclass(frozen=True)
class Answer:
    fence: Fence
    items: int  # a list's items shown before "… n more"


@dataclass(frozen=True)
class Example:
    path: Path
    fence: Fence
    statuses: tuple[int, ...]  # expected, one for all or one per curl; () any 2xx
    webhook: bool
    answer: Answer | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.fence.start + 1}"


def fences(lines: list[str]) -> list[Fence]:
    found, start, lang, fence = [], None, "", ""
    for number, line in enumerate(lines):
        if start is None:
            match = _FENCE.match(line)
            if match:
                start, lang, fence = number, match["lang"], match["fence"]
        elif line.strip() == fence:
            found.append(Fence(lang, "".join(lines[start + 1 : number]), start, number))
            start = None
    if start is not None:
        raise ValueError(f"a fence opened on line {start + 1} is never closed")
    return found


def _options(text: str) -> dict[str, str]:
    options = {}
    for word in text.split():
        name, _, value = word.partition("=")
        options[name] = value
    return options


def _marker(lines: list[str], fence: Fence) -> tuple[str, dict[str, str]] | None:
    """The example or answer comment right before a fence (blank lines between refused)."""
    before = lines[fence.start - 1].strip() if fence.start else ""
    for kind, pattern in (("example", _EXAMPLE), ("answer", _ANSWER)):
        match = pattern.match(before)
        if match:
            return kind, _options(match["options"])
    return None


def examples(path: Path, lines: list[str] | None = None) -> list[Example]:
    """A page's examples, each with the answer shown after it, if any."""
    lines = lines if lines is not None else path.read_text().splitlines(keepends=True)
    found: list[Example] = []
    last_fence_was_example = False
    for fence in fences(lines):
        marker = _marker(lines, fence)
        if marker is None:
            last_fence_was_example = False
            continue
        kind, options = marker
        if kind == "example":
            unknown = set(options) - {"status", "webhook"}
            if unknown or fence.lang not in ("sh", "python"):
                raise ValueError(
                    f"{path.name}:{fence.start + 1}: an example is sh or python, "
                    f"with options status= and webhook (not {sorted(unknown)})"
                )
            statuses = tuple(int(s) for s in options.get("status", "").split(",") if s)
            found.append(Example(path, fence, statuses, "webhook" in options, None))
            last_fence_was_example = True
        else:
            if not last_fence_was_example or found[-1].answer is not None:
                raise ValueError(
                    f"{path.name}:{fence.start + 1}: an answer must come right after an example"
                )
            answer = Answer(fence, int(options.get("items") or 2))
            found[-1] = replace(found[-1], answer=answer)
            last_fence_was_example = False
    return found


# Running


@dataclass(frozen=True)
class Delivery:
    """A real webhook delivery: what the python example of its verification is given."""

    secret: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Result:
    example: Example
    code: str  # as run, rewritten
    returncode: int
    stdout: str
    stderr: str
    statuses: tuple[int, ...]  # each curl's, in order

    def failure(self) -> str | None:
        """Why the example failed, or None."""
        if self.returncode != 0:
            return f"it exited with {self.returncode}"
        expected = self.example.statuses
        if len(expected) > 1 and len(expected) != len(self.statuses):
            return f"{len(self.statuses)} curls answered {self.statuses}, {len(expected)} expected"
        for n, status in enumerate(self.statuses):
            wanted = expected[min(n, len(expected) - 1)] if expected else None
            if wanted is None and not 200 <= status < 300:
                return f"curl {n + 1} answered {status}, not 2xx"
            if wanted is not None and status != wanted:
                return f"curl {n + 1} answered {status}, not {wanted}"
        return None

    def report(self) -> str:
        return (
            f"{self.example.where}: {self.failure() or 'ran'}\n--- as run:\n{self.code}"
            f"--- statuses: {list(self.statuses)}\n--- stdout:\n{self.stdout[-3000:]}"
            f"\n--- stderr:\n{self.stderr[-3000:]}"
        )


_PRELUDE = """set -euo pipefail
set -a
[ -f "$__ENV" ] && source "$__ENV"
# Every curl's response headers, numbered in order (subshells included), for its status.
curl() {
    local n=$(( $(cat "$__CALLS/count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$__CALLS/count"
    command curl -D "$__CALLS/$n.head" "$@"
}
"""
_POSTLUDE = '\nexport -p > "$__ENV"\n'


@dataclass
class Session:
    """One page's examples, run in order against ``base_url``: its shell variables carry from
    block to block, and the ids its answers gave stand in for the page's abridged ones."""

    base_url: str
    database_url: str
    folder: Path  # the examples' working directory (files they write land here)
    webhook: Callable[[], Delivery] | None = None
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._env = self.folder / ".env"
        self._calls = self.folder / ".calls"

    def rewrite(self, code: str) -> str:
        code = code.replace(DOCS_URL, self.base_url)
        code = code.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        code = re.sub(
            r"^(export\s+)?DATABASE_URL=.*$",
            f"export DATABASE_URL={shlex.quote(self.database_url)}",
            code,
            flags=re.MULTILINE,
        )

        def real_id(match: re.Match) -> str:
            if match["prefix"] not in self.ids:
                raise ValueError(f"no answer before gave an id {match['prefix']}…")
            return self.ids[match["prefix"]]

        return _PLACEHOLDER.sub(real_id, code)

    def run(self, example: Example) -> Result:
        try:
            code = self.rewrite(example.fence.code)
        except ValueError as error:
            return Result(example, example.fence.code, 1, "", str(error), ())
        if example.fence.lang == "python":
            if example.webhook:
                code = _webhook_prelude(self.webhook()) + code + _WEBHOOK_CHECK
            script = f"python - <<'__PYTHON__'\n{code}__PYTHON__\n"
        else:
            script = code
        shutil.rmtree(self._calls, ignore_errors=True)
        self._calls.mkdir()
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            # The pages' examples run in a shell where DATABASE_URL names the database.
            "DATABASE_URL": self.database_url,
            "__ENV": str(self._env),
            "__CALLS": str(self._calls),
        }
        done = subprocess.run(
            ["bash", "-c", _PRELUDE + script + _POSTLUDE],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        heads = sorted(self._calls.glob("*.head"), key=lambda head: int(head.stem))
        result = Result(
            example, code, done.returncode, done.stdout, done.stderr,
            tuple(_status(head.read_text(errors="replace")) for head in heads),
        )  # fmt: skip
        self._remember_ids(done.stdout)
        return result

    def _remember_ids(self, stdout: str) -> None:
        try:
            answer = json.loads(stdout)
        except ValueError:
            return
        for text in _strings(answer):
            match = _ID.match(text)
            if match:
                self.ids[match["prefix"]] = text


def _status(head: str) -> int:
    """The last status line's code (a 100 Continue may come first)."""
    codes = re.findall(r"^HTTP/[\d.]+ (\d{3})", head, flags=re.MULTILINE)
    return int(codes[-1]) if codes else 0


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _webhook_prelude(delivery: Delivery) -> str:
    return (
        f"secret = {delivery.secret!r}\n"
        f"request_body = {delivery.body!r}\n"
        f"request_headers = {delivery.headers!r}\n"
    )


# The verification example must give back the payload it verified.
_WEBHOOK_CHECK = """
import json as _json
assert payload == _json.loads(request_body), payload
"""


# Answers: shown abridged, compared by shape


def render(stdout: str, items: int) -> tuple[str, str]:
    """(language, text) of an answer block for what an example printed."""
    value = _json(stdout)
    if value is None:
        lines = stdout.rstrip("\n").split("\n")
        shown = lines[: items + 1]
        more = len(lines) - len(shown)
        if more:
            shown.append(f"… {more} more line{'s' if more > 1 else ''}")
        return "text", "\n".join(shown) + "\n"
    return "json", _format(_abridge(value, items), 0, 0) + "\n"


def _json(text: str) -> dict | list | None:
    """An object or array, or None (a number or a string is shown as text)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _abridge(value: Any, items: int) -> Any:
    if isinstance(value, dict):
        return {key: _abridge(item, items) for key, item in value.items()}
    if isinstance(value, list):
        if len(value) <= items + 1:
            return [_abridge(item, items) for item in value]
        kept = [_abridge(item, items) for item in value[:items]]
        return [*kept, f"… {len(value) - items} more"]
    if isinstance(value, str) and _ID.match(value):
        return abridged_id(value)
    if isinstance(value, str) and _SECRET.match(value):
        return "whsec_…"
    return value


def abridged_id(value: str) -> str:
    match = _ID.match(value)
    return f"{match['prefix']}{value[len(match['prefix']) :][:4]}…"


def _format(value: Any, indent: int, used: int) -> str:
    """JSON on one line where it fits in WIDTH after ``used`` characters; else an object's or
    a list's items filled into lines of WIDTH (at the top, one a line), each item that fits
    on one line kept whole and any other on lines of its own."""
    compact = _compact(value)
    if used + len(compact) <= WIDTH or not isinstance(value, dict | list) or not value:
        return compact
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        heads = [f"{json.dumps(key, ensure_ascii=False)}: " for key in value]
        items = list(value.values())
    else:
        heads, items = [""] * len(value), value
    lines, line = [], ""
    for n, (head, item) in enumerate(zip(heads, items, strict=True)):
        comma = "," if n < len(items) - 1 else ""
        chunk = head + _compact(item) + comma
        if len(inner) + len(chunk) > WIDTH:  # its own lines
            if line:
                lines.append(line)
            lines.append(inner + head + _format(item, indent + 2, len(inner + head)) + comma)
            line = ""
        elif line and indent and len(line) + 1 + len(chunk) <= WIDTH:  # the top: a line each
            line += " " + chunk
        else:
            if line:
                lines.append(line)
            line = inner + chunk
    if line:
        lines.append(line)
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + "\n" + "\n".join(lines) + "\n" + " " * indent + brackets[1]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def shape_differences(shown_text: str, lang: str, stdout: str) -> list[str]:
    """How what an example printed now differs in shape from the answer a page shows: for
    JSON, keys, nesting and types (a null, an empty list, or a list of fewer items stands for
    any); for text, its first line with every number as 0 (a CSV's header, say)."""
    if lang == "json":
        actual = _json(stdout)
        if actual is None:
            return [f"the page shows JSON, the example printed: {stdout[:300]!r}"]
        return _differences(json.loads(shown_text), actual, "$")

    def first_line(text: str) -> str:
        return re.sub(r"\d+", "0", text.strip().split("\n")[0]) if text.strip() else ""

    if first_line(shown_text) != first_line(stdout):
        return [f"first line {first_line(stdout)!r}, the page shows {first_line(shown_text)!r}"]
    return []


def _differences(shown: Any, actual: Any, where: str) -> list[str]:
    if shown is None or actual is None:
        return []
    if isinstance(shown, dict) and isinstance(actual, dict):
        found = []
        missing, extra = shown.keys() - actual.keys(), actual.keys() - shown.keys()
        if missing:
            found.append(f"{where}: shown but no longer answered: {sorted(missing)}")
        if extra:
            found.append(f"{where}: answered but not shown: {sorted(extra)}")
        for key in shown.keys() & actual.keys():
            found += _differences(shown[key], actual[key], f"{where}.{key}")
        return found
    if isinstance(shown, list) and isinstance(actual, list):
        shown = [item for item in shown if not (isinstance(item, str) and _MORE.match(item))]
        found = []
        for n, item in enumerate(shown):
            if actual:
                found += _differences(item, actual[min(n, len(actual) - 1)], f"{where}[{n}]")
        return found
    if _kind(shown) != _kind(actual):
        return [f"{where}: {_kind(actual)} where the page shows {_kind(shown)}"]
    return []


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__.replace("str", "string").replace("dict", "object")


def rewrite_page(path: Path, answers: dict[int, tuple[str, str]], ids: dict[str, str]) -> str:
    """The page with each answer block (by its fence's opening line) replaced, and its
    abridged ids made the ones the examples gave."""
    lines = path.read_text().splitlines(keepends=True)
    for start in sorted(answers, reverse=True):
        lang, text = answers[start]
        end = next(fence.end for fence in fences(lines) if fence.start == start)
        fence = _FENCE.match(lines[start])["fence"]
        lines[start : end + 1] = [f"{fence}{lang}\n", text, f"{fence}\n"]
    page = "".join(lines)
    for prefix, value in ids.items():
        page = re.sub(rf"\b{re.escape(prefix)}[0-9a-f]*…", abridged_id(value), page)
    return page


# The script


def _demo_server() -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of `usage-api serve` over a throwaway PostgreSQL with the
    demo data."""
    sys.path.insert(0, str(ROOT))
    from api.dev.demo import load_demo
    from api.dev.embedded_postgres import EmbeddedPostgres
    from api.storage import migrations
    from testkit.server import running_server

    folder = Path(tempfile.mkdtemp(prefix="usage-docs-"))
    cluster = EmbeddedPostgres(folder, durable=False)
    try:
        cluster.start()
        migrations.upgrade(cluster.url)
        asyncio.run(load_demo(cluster.url))
        with running_server(cluster.url, log=folder / "server.log") as server:
            yield server.url, cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; report changes")
    args = parser.parse_args()
    failed, changed, pages = [], [], {}
    server = _demo_server()
    base_url, database_url = next(server)
    try:
        with tempfile.TemporaryDirectory(prefix="usage-docs-examples-") as work:
            for path in PAGES:
                session = Session(base_url, database_url, Path(work) / path.stem)
                answers = {}
                for example in examples(path):
                    if example.webhook:
                        continue  # needs a delivery: tests/docs gives it one
                    result = session.run(example)
                    print(f"{example.where}: {result.failure() or 'ok'}", file=sys.stderr)
                    if result.failure():
                        failed.append(result.report())
                    elif example.answer:
                        shown = example.answer.fence
                        differences = shape_differences(shown.code, shown.lang, result.stdout)
                        changed += [f"{example.where}: {found}" for found in differences]
                        answers[shown.start] = render(result.stdout, example.answer.items)
                pages[path] = rewrite_page(path, answers, session.ids)
    finally:
        server.close()
    if not args.check and not failed:
        for path, page in pages.items():
            if page != path.read_text():
                path.write_text(page)
                print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    for report in failed:
        print(report, file=sys.stderr)
    if args.check:
        print("\n".join(changed) or "every answer has the shape its page shows", file=sys.stderr)
    sys.exit(1 if failed or (args.check and changed) else 0)


if __name__ == "__main__":
    main()
