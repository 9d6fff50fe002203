"""The grant keeper removes the clients of ended grants behind its other broker
commands, and a name bought again after its grant ended gets the new buyer's client."""

from __future__ import annotations

import asyncio
from pathlib import Path

from m2mpay.access.broker import MemoryBroker
from m2mpay.access.grant import GrantPhase
from m2mpay.access.keeper import GrantKeeper
from m2mpay.crypto import Address
from m2mpay.errors import AccessError
from m2mpay.store import open_store
from tests.waiting import eventually_async

BUYER = Address(b"\x11" * 20)
TOPIC = "m2m/plug-1/live"


class SlowBroker(MemoryBroker):
    """Removes a client as a busy broker does: a while after being asked."""

    async def remove_client(self, username: str) -> None:
        await asyncio.sleep(0.05)
        await super().remove_client(username)


async def test_an_ended_grants_client_goes_and_its_name_is_made_again_for_a_new_buyer(
    tmp_path: Path,
) -> None:
    broker = SlowBroker()
    await broker.prepare()
    keeper = GrantKeeper(broker, open_store(tmp_path / "grants.sqlite3"))
    await keeper.start()
    try:
        first, second = b"\x01" * 32, b"\x02" * 32
        await keeper.open(first, BUYER, "buyer-1", "first-password-1", TOPIC)
        keeper.permit(first, 5)

        async def readable() -> bool:
            return broker.may_receive("buyer-1", TOPIC)

        await eventually_async(readable, timeout=5)
        keeper.end(first)
        # The same name, bought again at once: the old client must not stand in for it.
        await keeper.open(second, BUYER, "buyer-1", "second-password-2", TOPIC)
        await asyncio.sleep(0.1)  # what the first end queued has run by now
        assert broker.logs_in("buyer-1", "second-password-2")
        assert not broker.logs_in("buyer-1", "first-password-1")
        assert not broker.may_receive("buyer-1", TOPIC)  # nothing paid on the second yet
        ended = keeper.grant(first)
        assert ended is not None
        assert ended.phase is GrantPhase.ENDED

        keeper.end(second)

        async def removed() -> bool:
            return "buyer-1" not in await broker.clients()

        await eventually_async(removed, timeout=5)
    finally:
        await keeper.stop()


class FailingRemovals(MemoryBroker):
    """A broker that fails every removal until told otherwise (a hiccup)."""

    failing = True

    async def remove_client(self, username: str) -> None:
        if self.failing:
            raise AccessError("broker_unreachable", "the broker did not answer")
        await super().remove_client(username)


async def test_a_client_an_ended_grant_left_behind_never_reads_a_new_buyers_grant(
    tmp_path: Path,
) -> None:
    broker = FailingRemovals()
    await broker.prepare()
    keeper = GrantKeeper(broker, open_store(tmp_path / "grants.sqlite3"))
    await keeper.start()
    try:
        first, second = b"\x03" * 32, b"\x04" * 32
        await keeper.open(first, BUYER, "buyer-2", "first-password-1", TOPIC)
        keeper.end(first)
        await asyncio.sleep(0.1)  # its removal failed: the old client stays
        assert broker.logs_in("buyer-2", "first-password-1")
        broker.failing = False
        # Another buyer picks the free name: the old password must not read what it pays.
        await keeper.open(second, Address(b"\x22" * 20), "buyer-2", "second-password-2", TOPIC)
        keeper.permit(second, 5)

        async def readable() -> bool:
            return broker.may_receive("buyer-2", TOPIC)

        await eventually_async(readable, timeout=5)
        assert broker.logs_in("buyer-2", "second-password-2")
        assert not broker.logs_in("buyer-2", "first-password-1")
    finally:
        await keeper.stop()
