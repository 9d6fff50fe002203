"""Fixtures of the provenance tests: a stream store of each kind (SQLite, PostgreSQL,
in memory), restartable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.provenance.reader_kit import CHROMIUM, Served, serve_reader
from tests.provenance.streams_kit import StoreMaker, store_makers
from tests.store.conftest import postgres_schema_url, postgres_url  # noqa: F401 (fixtures)


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def maker(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    kind: str = request.param
    # PostgreSQL: a fresh schema for each test, one stream store per schema.
    url = request.getfixturevalue("postgres_schema_url") if kind == "postgres" else ""
    return store_makers(tmp_path, url)(kind)


# The web reader's browser tests: the reader and its streams served once a module, and
# one Chromium a module.
@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    async with serve_reader() as serving:
        yield serving


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
