"""How the API serves the page: its path, assets, security headers, and CORS for a page
hosted elsewhere (closed unless configured); and the API reference beside it."""

import re

import pytest
from litestar.testing import TestClient

from api.settings import Settings
from api.web.app import create_app

CONSOLE = "https://console.example.com"


def test_the_page_and_its_assets_need_no_key(client):
    page = client.get("/organizations/acme/activity/usage")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)[1]
    asset = client.get(script)
    assert asset.status_code == 200
    assert "max-age=31536000" in asset.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404


def test_the_api_reference_needs_no_key_and_every_file_of_it_is_served_here(client):
    reference = client.get("/schema")
    assert reference.status_code == 200
    assert reference.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in reference.headers["content-security-policy"]
    assert "<script>" not in reference.text  # an inline script: the policy would refuse it
    assert client.get("/schema/swagger").text == reference.text
    urls = re.findall(r' (?:src|href)="([^"]+)"', reference.text)
    assert {"/schema/openapi.json"} < set(urls)
    assert all(re.fullmatch(r"/\w[^:]*", url) for url in urls), urls  # this origin's
    starter = re.search(r'src="(/assets/api-reference-[^"]+\.js)"', reference.text)[1]
    swagger_ui = re.search(r"/assets/swagger-ui-bundle-[\w-]+\.js", client.get(starter).text)[0]
    for url in [*urls, swagger_ui]:
        answer = client.get(url)
        assert answer.status_code == 200, url
        if url.startswith("/assets/"):
            assert "max-age=31536000" in answer.headers["cache-control"], url


def test_without_the_page_built_the_reference_says_so_and_the_document_is_served(tmp_path):
    unbuilt = TestClient(
        app=create_app(Settings(database_url="postgresql://unused", page_dir=tmp_path))
    )
    refusal = unbuilt.get("/schema")
    assert refusal.status_code == 503
    assert refusal.headers["content-type"] == "application/problem+json"
    assert "make page" in refusal.json()["detail"]
    assert unbuilt.get("/schema/openapi.json").status_code == 200


@pytest.fixture(scope="module")
def cors_client(database_url):
    settings = Settings(database_url=database_url, cors_origins=(CONSOLE,))
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


def _preflight(client, origin):
    return client.options(
        "/orgs/acme/usage/llm",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_cors_is_closed_by_default(client):
    response = _preflight(client, CONSOLE)
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(cors_client, read_key):
    allowed = _preflight(cors_client, CONSOLE)
    assert allowed.headers["access-control-allow-origin"] == CONSOLE
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = _preflight(cors_client, "https://evil.example.com")
    assert other.headers.get("access-control-allow-origin") != "https://evil.example.com"
    read = cors_client.get(
        "/orgs/acme/usage/platform",
        headers={"Origin": CONSOLE, "Authorization": f"Bearer {read_key}"},
    )
    assert read.headers["access-control-allow-origin"] == CONSOLE


def test_a_refused_preflight_is_a_problem(cors_client):
    refused = _preflight(cors_client, "https://evil.example.com")
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "Origin" in refused.json()["detail"]


def test_assets_are_revalidated_by_their_tag(client):
    page = client.get("/organizations/acme/activity/usage")
    script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)[1]
    asset = client.get(script)
    etag = asset.headers["etag"]
    again = client.get(script, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get(script, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.head(script).headers["content-length"] == str(len(asset.content))


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/metrics",
        "/schema/openapi.json",
        "/schema",
        "/nowhere",
        "/orgs/acme/usage/llm",
        "/organizations/acme/activity/usage",
        "/organizations/Not%20a%20slug/activity/usage",
    ],
)
def test_every_answer_says_nosniff(client, path):
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert client.head(path).headers["x-content-type-options"] == "nosniff"
