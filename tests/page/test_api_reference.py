"""The API reference at /schema in Chromium, with every host but the test server closed:
Swagger UI from this server's own assets, the document it reads the same as openapi.yaml,
and every path of openapi.yaml on it."""

from urllib.parse import urlsplit

import yaml
from playwright.sync_api import Route, expect

from .conftest import ROOT
from .reading import WIDE

OPENAPI = yaml.safe_load((ROOT / "openapi.yaml").read_text())
OPERATIONS = sorted(
    (method, path)
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
)


def _only_the_server(tab, server_url: str) -> list[str]:
    """Every request to another origin is aborted, and kept: the list the test reads."""
    elsewhere: list[str] = []
    origin = urlsplit(server_url)[:2]

    def route(route: Route) -> None:
        if urlsplit(route.request.url)[:2] == origin:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    tab.page.context.route("**/*", route)
    return elsewhere


def _rendered(page) -> None:
    """Swagger UI has read the document and drawn its operations."""
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(OPENAPI["info"]["title"])
    expect(page.locator(".opblock").first).to_be_visible()


def _shown_text(page) -> str:
    # Swagger UI breaks long paths with zero-width spaces and <wbr>.
    return page.locator("#swagger-ui").inner_text().replace("\u200b", "")


def test_the_reference_shows_every_path_from_this_server_alone(usage_page, server_url):
    tab = usage_page(viewport=WIDE)
    elsewhere = _only_the_server(tab, server_url)
    page = tab.page
    with page.expect_response(f"{server_url}/schema/openapi.json") as document:
        page.goto(f"{server_url}/schema")
    _rendered(page)

    assert document.value.status == 200
    served = document.value.json()
    assert sorted(served["paths"]) == sorted(OPENAPI["paths"])
    assert served == OPENAPI, "the reference reads another document than openapi.yaml"

    text = _shown_text(page)
    missing = [path for path in OPENAPI["paths"] if path not in text]
    assert not missing, f"paths of openapi.yaml not on the reference: {missing}"
    # Each operation its own block, under its method: none lost, none made up.
    shown = sorted(
        (method, block.get_attribute("data-path"))
        for method in {method for method, _ in OPERATIONS}
        for block in page.locator(f".opblock-{method} .opblock-summary-path").all()
    )
    assert shown == OPERATIONS
    assert elsewhere == [], f"the reference asked other hosts: {elsewhere}"


def test_the_pages_footer_links_to_the_reference(seeded, usage_page, read_key, server_url):
    tab = usage_page(viewport=WIDE)
    elsewhere = _only_the_server(tab, server_url)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    page.locator("footer").get_by_role("link", name="API reference").click()
    expect(page).to_have_url(f"{server_url}/schema")
    _rendered(page)
    assert "/orgs/{org}/usage/llm" in _shown_text(page)
    assert elsewhere == [], f"the page or the reference asked other hosts: {elsewhere}"


def test_a_request_sent_from_the_reference_with_a_key(seeded, usage_page, read_key, server_url):
    """Interactive under the page's policy: Authorize takes a key, Try it out sends it here."""
    tab = usage_page(viewport=WIDE)
    elsewhere = _only_the_server(tab, server_url)
    page = tab.page
    page.goto(f"{server_url}/schema")
    _rendered(page)
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").fill(read_key)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()
    operation = page.locator(
        ".opblock-get", has=page.locator('[data-path="/orgs/{org}/usage/llm"]')
    )
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator('tr[data-param-name="org"] input').fill("acme")
    with page.expect_request(f"{server_url}/orgs/acme/usage/llm**") as sent:
        operation.get_by_role("button", name="Execute").click()
    assert sent.value.headers["authorization"] == f"Bearer {read_key}"
    answer = operation.locator(".live-responses-table .response .response-col_status")
    expect(answer).to_have_text("200")
    expect(
        operation.locator(".live-responses-table .response .response-col_description")
    ).to_contain_text('"org": "acme"')
    assert elsewhere == [], f"the reference asked other hosts: {elsewhere}"
