"""The picture of the page in the README and the docs (docs/images/usage-page.png): the demo
data in headless Chromium, as `make run` shows it to a new user.

`make screenshot` (USAGE_SCREENSHOT=docs) loads the whole demo, 35 days, and rewrites
docs/images/usage-page.png. In the suite the same steps run over the demo's last two days
and write .data/screenshots/usage-page.png, so the target cannot rot unnoticed."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from api.dev import demo
from api.storage.keys import Scope

from .conftest import ROOT, SCREENSHOTS

FOR_DOCS = os.environ.get("USAGE_SCREENSHOT") == "docs"
DOCS_IMAGE = ROOT / "docs" / "images" / "usage-page.png"
# A laptop's screen; the picture is its top: the header, the range selector and the LLM
# section, down to that section's end.
VIEWPORT = {"width": 1280, "height": 900}


def _load_demo(database_url: str) -> None:
    asyncio.run(demo.load_demo(database_url, now=datetime.now(UTC)))


@pytest.fixture
def demo_data(db) -> str:
    # In a thread of its own: Playwright's loop is running on this one.
    with ThreadPoolExecutor(1) as thread:
        if FOR_DOCS:
            thread.submit(_load_demo, db).result()
        else:
            with mock.patch.object(demo, "DAYS", 2):
                thread.submit(_load_demo, db).result()
    return db


def test_the_page_over_the_demo_data(demo_data, new_key, usage_page):
    key = new_key(Scope.READ, demo.DEMO_ORG).key
    tab = usage_page(viewport=VIEWPORT, color_scheme="light", timezone_id="UTC")
    page = tab.open(demo.DEMO_ORG, key)
    tab.wait_for_sections()
    page.evaluate("document.fonts.ready")
    assert page.locator("#section-llm .card").count() >= 5
    assert page.locator('g[data-mark="tokens over time"] rect').count() > 0

    path: Path = DOCS_IMAGE if FOR_DOCS else SCREENSHOTS / "usage-page.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    llm = page.locator("#section-llm").bounding_box()
    bottom = llm["y"] + llm["height"] + 12
    page.screenshot(
        path=path,
        full_page=True,
        clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom},
    )
    assert path.stat().st_size > 20_000
