"""The API's documentation as the node serves it, with nothing loaded from elsewhere.

    GET /docs              Swagger UI over /openapi.json, its assets served by the node
    GET /docs/assets/…     swagger-ui-dist's bundle, stylesheet and icon
    GET /asyncapi.json     the device bus's WebSocket messages (AsyncAPI 3.0)

A node often runs where there is no internet (a charger's controller, a test rig),
so the docs cannot come from a CDN: `make` copies the few files of the npm package
`swagger-ui-dist` (pinned in package-lock.json) into `DOCS_ASSETS`, inside the
Python package, so an installed node carries them. Without them /docs says how to
get them instead of showing a blank page.

Which operations need the bearer token comes from the routes' own guards (the
`Credentials.reader`/`writer` dependencies declare the `BEARER` scheme), so the schema's
`security` cannot drift from what the node enforces; Swagger UI's Authorize button
comes from it. With public reads, the token is optional for reads, but for those marked
`OWNER_ONLY` (a stream's QR code: it holds the stream's key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from m2mpay.api.asyncapi import bus_asyncapi
from m2mpay.api.auth import OWNER_ONLY

__all__ = ["DOCS_ASSETS", "SWAGGER_UI_FILES", "install_docs"]

DOCS_ASSETS: Final = Path(__file__).parent / "docs_assets"
"""Where `make` puts swagger-ui-dist's files (not in git: the npm package is the source)."""
SWAGGER_UI_FILES: Final = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

_ASSETS_PATH: Final = "/docs/assets"
_MISSING_ASSETS: Final = """<!DOCTYPE html>
<html><head><title>m2mpay node: API docs not installed</title></head>
<body>
<h1>The API docs' files are not installed</h1>
<p>This node serves Swagger UI from its own package, and it is missing: {missing}.
Run <code>make test</code> or <code>make demo</code> in the m2mpay checkout (it installs the
npm package <code>swagger-ui-dist</code> and copies its files to <code>{assets}</code>), then
reload.</p>
<p>The API's schema is served all the same: <a href="/openapi.json">/openapi.json</a>;
the device bus's: <a href="/asyncapi.json">/asyncapi.json</a>.</p>
</body></html>
"""


def _openapi(app: FastAPI, public_reads: bool) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # FastAPI's own, which it keeps in `openapi_schema`
        if public_reads:  # reads need no token, though they take one
            for item in schema["paths"].values():
                read = item.get("get", {})
                if "security" in read and not read.get(OWNER_ONLY):
                    read["security"].append({})
        return schema
    return app.openapi_schema


def install_docs(app: FastAPI, *, public_reads: bool = False, assets: Path = DOCS_ASSETS) -> None:
    """Serve `app`'s docs from `assets` and the node itself; `app` is made with
    `docs_url=None, redoc_url=None` (FastAPI's own pages load from a CDN)."""
    app.openapi = lambda: _openapi(app, public_reads)  # type: ignore[method-assign]
    # check_dir=False: a node without the files still starts; /docs says what is missing.
    app.mount(_ASSETS_PATH, StaticFiles(directory=assets, check_dir=False), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        missing = [name for name in SWAGGER_UI_FILES if not (assets / name).is_file()]
        if missing:
            page = _MISSING_ASSETS.format(missing=", ".join(missing), assets=assets)
            return HTMLResponse(page, status_code=503)
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS_PATH}/favicon-32x32.png",
            # No online validator badge, and the token survives a reload of the page.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi(request: Request) -> dict[str, Any]:
        scheme = "wss" if request.url.scheme == "https" else "ws"
        return bus_asyncapi(host=request.url.netloc, protocol=scheme)
