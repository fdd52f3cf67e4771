"""The API reference at /schema (and /schema/swagger): Swagger UI on the document this service
serves at /schema/openapi.json, neither needing a key.

Swagger UI is not fetched from a CDN: the page's build vendors it from the pinned
swagger-ui-dist (frontend/src/api-reference.ts starts it) into the page's assets, under
content-hashed names that Vite's manifest gives. Litestar's SwaggerRenderPlugin would inline
a script; this one loads every script from this origin, so the reference keeps the page's
Content-Security-Policy.
"""

import html
import json
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import SwaggerRenderPlugin

from api.web.problems import Problem

MANIFEST = Path(".vite") / "manifest.json"
STARTER = "src/api-reference.ts"  # the manifest's key for the reference's entry
FAVICON = "src/favicon.svg"


class ApiReference(SwaggerRenderPlugin):
    def __init__(self, page_dir: Path, path: str = "/swagger") -> None:
        super().__init__(path=path)
        self.manifest = page_dir / MANIFEST

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        starter, favicon = self._built()
        script, style = "/" + starter["file"], "/" + starter["css"][0]
        title = html.escape(f"{openapi_schema['info']['title']} API reference")
        document_url = html.escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title}</title>
    <link rel="icon" type="image/svg+xml" href="/{html.escape(favicon["file"])}">
    <link rel="stylesheet" href="{html.escape(style)}">
    <script type="module" src="{html.escape(script)}"></script>
  </head>
  <body>
    <main id="swagger-ui" data-url="{document_url}">
      <noscript>The reference needs JavaScript; the document itself is at
        <a href="{document_url}">{document_url}</a>.</noscript>
    </main>
  </body>
</html>
""".encode()

    def _built(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            manifest = json.loads(self.manifest.read_text())
            return manifest[STARTER], manifest[FAVICON]
        except (OSError, ValueError, KeyError):
            raise Problem(
                503,
                f"the API reference is not built ({self.manifest} is missing or without "
                f"{STARTER}): run `make page`, or `npm ci && npm run build` in frontend/; "
                "the document itself is at /schema/openapi.json",
            ) from None

    def receive_router(self, router: Router) -> None:
        """No OAuth2 redirect page: the API's keys are bearer keys, typed into Authorize."""
