"""The web app (web/app, issue 17) as the node serves it: one built page at /app/.

    GET /            → 307 to /app/
    GET /app/        the app's page (`index.html`), never cached: it names the bundle
    GET /app/<file>  its bundle and stylesheet, named by their content's hash, kept for good

`make` bundles web/app with the pinned esbuild into `APP_ASSETS`, inside the Python
package, so an installed node carries the app; nothing comes from anywhere else at run
time, and the Content-Security-Policy on every answer says so to the browser: scripts,
styles and connections only from the node, no inline script, no eval, no frames. Without
the build /app/ answers 404 saying how to make it, as /docs does for its files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

__all__ = ["APP_ASSETS", "APP_CSP", "APP_PATH", "webapp_routes"]

APP_ASSETS: Final = Path(__file__).parent / "app_assets"
"""Where `make` builds the app (not in git: web/app and the npm packages are the source)."""
APP_PATH: Final = "/app"
APP_CSP: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
# esbuild's `[name]-[hash]`: eight base-32 characters; such a file never changes.
_HASHED: Final = re.compile(r"[\w.]+-[A-Z0-9]{8}\.(?:js|css)")
_FOREVER: Final = "public, max-age=31536000, immutable"
_NOT_BUILT: Final = """<!DOCTYPE html>
<html lang="en"><head><title>m2mpay node: the web app is not built</title></head>
<body><main>
<h1>The web app is not built</h1>
<p>This node serves its web app from its own package, and the build is missing from
<code>{assets}</code>. Run <code>make demo</code> or <code>make test</code> in the m2mpay
checkout (it installs the pinned npm packages and bundles <code>web/app</code>), then reload.</p>
<p>The API works all the same: <a href="/docs">/docs</a>.</p>
</main></body></html>
"""


class _AppFiles(StaticFiles):
    """The built files with the app's security headers and cache rule on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = APP_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        hashed = _HASHED.fullmatch(Path(path).name) is not None
        response.headers["Cache-Control"] = _FOREVER if hashed else "no-cache"
        return response


class _App:
    """The mount's app: the files once built, else the page saying how to build them
    (asked at each request, so a node started before `make` serves the app once built)."""

    def __init__(self, assets: Path) -> None:
        self._assets = assets
        self._files = _AppFiles(directory=assets, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self._assets / "index.html").is_file():
            page = _NOT_BUILT.format(assets=self._assets)
            response: Response = HTMLResponse(page, status_code=404)
            response.headers["Content-Security-Policy"] = APP_CSP
            await response(scope, receive, send)
            return
        await self._files(scope, receive, send)


def webapp_routes(assets: Path = APP_ASSETS) -> list[BaseRoute]:
    """`/` leading to the app and the app under `APP_PATH`, for the API's routes."""

    async def root(_: Request) -> Response:
        return RedirectResponse(f"{APP_PATH}/")

    return [
        Route("/", root, methods=["GET"], include_in_schema=False),
        Mount(APP_PATH, app=_App(assets), name="webapp"),
    ]
