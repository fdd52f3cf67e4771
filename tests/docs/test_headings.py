"""Nothing of the README was lost when it became docs/ (issue 29): every `##` and `###`
heading of the README as it was before the move (commit 211b8a7, 1,071 lines) is a heading of
the page it moved to, that page is in the site's navigation and the README links to it; and
every piece of inline code of that README (a setting, a metric, a status, a command) is
somewhere in the README or docs/ now."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BEFORE = "211b8a7"

# (the heading as it was, the page it moved to, the heading there)
MOVED = [
    ("## Prerequisites", "quick-start.md", "## Prerequisites"),
    ("## Configuration", "operations.md", "## Configuration"),
    ("## Command line", "operations.md", "## Command line"),
    ("### The write path", "design.md", "### The write path"),
    ("## Sending events", "sending-events.md", "# Sending events"),
    ("## Reading usage", "reading-usage.md", "# Reading usage"),
    ("### Usage by group over time", "reading-usage.md", "## Usage by group over time"),
    ("## Usage thresholds", "thresholds.md", "# Usage thresholds"),
    ("## The Usage page", "usage-page.md", "# The Usage page"),
    ("## Health", "operations.md", "## Health"),
    ("## Performance", "performance.md", "# Performance"),
    ("### Reads", "performance.md", "## Reads"),
    ("### Ingest: the write path", "performance.md", "## Ingest: the write path"),
    ("### Targets not met, and why", "performance.md", "## Targets not met, and why"),
    ("### Earlier rounds", "performance.md", "## Earlier rounds"),
    ("## Running it in production", "operations.md", "## Running it in production"),
    ("## Scaling out", "scaling-out.md", "# Scaling out"),
    ("## Guarantees", "design.md", "## Guarantees"),
    ("## How it works", "design.md", "## How it works"),
]
# Inline code of the old README that the docs no longer show, and why.
REPLACED = {
    # an illustration of `usage-api import`'s last line: the docs show its real output
    '{"accepted": 998, "duplicates": 0, "invalid": 2}',
    # the dedupe key while the receipts were partitioned by time: it is (subject, source, id)
    "(subject, source, id, time)",
}


def _old_readme() -> str:
    shown = subprocess.run(
        ["git", "show", f"{BEFORE}:README.md"], cwd=ROOT, capture_output=True, text=True
    )
    if shown.returncode != 0:
        pytest.skip(f"this checkout does not have commit {BEFORE}: {shown.stderr.strip()}")
    return shown.stdout


def _headings(text: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"^#{1,6} .+$", text, flags=re.MULTILINE)


def test_the_map_lists_every_heading_of_the_old_readme():
    old = [heading for heading in _headings(_old_readme()) if heading.startswith(("## ", "### "))]
    assert [before for before, _, _ in MOVED] == old


@pytest.mark.parametrize(("before", "page", "after"), MOVED, ids=[m[0] for m in MOVED])
def test_each_heading_is_a_heading_of_its_page(before, page, after):
    assert after in _headings((DOCS / page).read_text()), f"{before} is not in docs/{page}"


def test_each_page_is_in_the_site_and_linked_from_the_readme():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    in_nav = {page for entry in config["nav"] for page in entry.values()}
    readme = (ROOT / "README.md").read_text()
    for page in {page for _, page, _ in MOVED}:
        assert page in in_nav, f"docs/{page} is not in mkdocs.yml's nav"
        assert f"(docs/{page})" in readme, f"the README does not link to docs/{page}"


def _inline_code(text: str) -> set[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {" ".join(code.split()) for code in re.findall(r"`([^`]+)`", text)}


def test_every_inline_code_of_the_old_readme_is_in_the_docs():
    now = "".join(path.read_text() for path in [ROOT / "README.md", *DOCS.glob("*.md")])
    lost = _inline_code(_old_readme()) - _inline_code(now) - REPLACED
    assert not lost, f"in the README before the move, not in README.md or docs/: {sorted(lost)}"
