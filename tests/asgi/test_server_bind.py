"""A port already taken is a clear TransportError from `start`, not a SystemExit that
escapes the event loop (as uvicorn's own bind would raise it)."""

from __future__ import annotations

import pytest

from m2mpay.asgi import AsgiServer
from m2mpay.errors import TransportError


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError("no request expected")


async def test_a_port_in_use_is_a_transport_error_and_the_first_server_runs_on() -> None:
    first = AsgiServer(_app, port=0, name="first API")
    url = await first.start()
    port = int(url.rsplit(":", 1)[1])
    second = AsgiServer(_app, port=port, name="second API")
    try:
        with pytest.raises(TransportError, match="second API's HTTP server could not listen"):
            await second.start()
        assert first.url == url
    finally:
        await second.stop()
        await first.stop()
