"""Fixtures of the provenance tests: a stream store of each kind, restartable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.provenance.streams_kit import StoreMaker, store_makers


@pytest.fixture(params=["sqlite", "memory"])
def maker(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    kind: str = request.param
    return store_makers(tmp_path)(kind)
