"""A node's redial loop ends when its node stops, even if a dial lost the cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from m2mpay.crypto import PrivateKey
from m2mpay.errors import TransportError
from m2mpay.node.peers import Peers, PeersConfig
from m2mpay.wire import codec_by_name
from m2mpay.wire.memory import MemoryTransport
from m2mpay.wire.transport import Link


class _DropsTheCancellation(MemoryTransport):
    """A dial whose cancellation meets its answer, as aiomqtt's wait_for can lose it on
    Python 3.11: the first dial goes on and fails as if nobody had asked it to stop."""

    def __init__(self) -> None:
        super().__init__("redial")
        self.dialling = asyncio.Event()
        self.dials = 0

    async def connect(self, endpoint: str) -> Link:
        self.dials += 1
        self.dialling.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.dials > 1:
                raise
        raise TransportError("no answer")


async def test_the_redial_loop_ends_on_the_cancellation_its_dial_dropped() -> None:
    transport = _DropsTheCancellation()
    tasks: list[asyncio.Task[None]] = []

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.ensure_future(work))

    async def after_message() -> None:
        return None

    peers = Peers(
        PrivateKey.generate(),
        transport,
        PeersConfig(codec_by_name("cbor"), reconnect_delay_s=0.01),
        spawn=spawn,
        after_message=after_message,
    )
    peers.keep_connected(PrivateKey.generate().address, "memory://elsewhere")
    await asyncio.wait_for(transport.dialling.wait(), 5)
    (task,) = tasks
    task.cancel()
    done, _ = await asyncio.wait(tasks, timeout=5)
    assert task in done
    assert task.cancelled()
    assert transport.dials == 1
