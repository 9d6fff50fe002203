"""The web app as the node serves it, in-process: /app/ is the built page with its
Content-Security-Policy, the hashed bundle kept for good and the page never cached,
nothing outside the build reachable, and a clear 404 where the app is not built.
(In a browser against a node process: tests/webapp/.)"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.applications import Starlette

from m2mpay.api.webapp import APP_ASSETS, APP_CSP, webapp_routes
from tests.api.conftest import ApiFactory


def _built_bundle() -> str:
    page = (APP_ASSETS / "index.html").read_text()
    found = re.search(r'src="(main-[A-Z0-9]{8}\.js)"', page)
    assert found is not None, "make builds the app into APP_ASSETS"
    return found.group(1)


async def test_the_app_page_and_its_bundle_with_a_strict_policy(make_api: ApiFactory) -> None:
    api = await make_api(1)
    page = await api.anonymous.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert policy == APP_CSP
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    bundle = _built_bundle()
    assert f'src="{bundle}"' in page.text
    script = await api.anonymous.get(f"/app/{bundle}")
    assert script.status_code == 200
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert script.headers["content-security-policy"] == APP_CSP
    assert script.headers["x-content-type-options"] == "nosniff"
    # No part of the app needs the token to be loaded; its data does.
    assert (await api.anonymous.get("/app")).status_code in (307, 200)


async def test_nothing_outside_the_build_is_served(make_api: ApiFactory) -> None:
    api = await make_api(1)
    assert (await api.anonymous.get("/app/../webapp.py")).status_code == 404
    assert (await api.anonymous.get("/app/%2e%2e/webapp.py")).status_code == 404
    assert (await api.anonymous.get("/app/no-such-file.js")).status_code == 404


async def test_an_unbuilt_app_says_how_to_build_it(tmp_path: Path) -> None:
    app = Starlette(routes=webapp_routes(tmp_path / "app_assets"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
        root = await http.get("/")
        assert root.status_code == 307
        assert root.headers["location"] == "/app/"
        page = await http.get("/app/")
    assert page.status_code == 404
    assert "The web app is not built" in page.text
    assert "make demo" in page.text
    assert page.headers["content-security-policy"] == APP_CSP
