"""The Usage page (frontend/, built by Vite): its HTML at the Console's path, and its assets.

The page holds no data and needs no key; it asks the API with the key it is given.
"""

from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from api.core.events import is_slug
from api.web.auth import PUBLIC
from api.web.problems import Problem

# Served from here, the page talks to this origin only; Observable Plot sets inline styles.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def page_router(page_dir: Path) -> Router:
    index = page_dir / "index.html"

    @get("/organizations/{org:str}/activity/usage", media_type="text/html")
    async def usage_page(org: FromPath[str]) -> Response[bytes]:
        if not is_slug(org):
            raise Problem(404, f"organization {org!r} not found")
        if not index.is_file():
            raise Problem(
                503,
                f"the page is not built ({index} is missing): run `make run`, or "
                "`npm ci && npm run build` in frontend/",
            )
        return Response(
            index.read_bytes(),
            media_type="text/html",
            headers={"Cache-Control": "no-cache"},
        )

    # Vite names assets by their content: they never change under one name.
    assets = create_static_files_router(
        path="/assets",
        directories=[page_dir / "assets"],
        cache_control=CacheControlHeader(max_age=31_536_000, public=True),
    )
    return Router(
        path="/",
        route_handlers=[usage_page, assets],
        opt=PUBLIC,
        include_in_schema=False,
        response_headers=SECURITY_HEADERS,
    )
