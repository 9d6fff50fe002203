"""What a daemon says when it is ready reaches a pipe unwrapped: a token or URL split
over two lines at the console's 80 columns could not be copied whole."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.cli import common
from m2mpay.cli.common import serve_until

TOKEN = "t" * 120


async def test_ready_lines_are_not_wrapped_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common.console, "_width", 80)
    stop = asyncio.Event()
    stop.set()
    await serve_until(stop, {}, [f"API token: {TOKEN}"], as_json=False, what="node")
    out = capsys.readouterr().out
    assert f"API token: {TOKEN}\n" in out
