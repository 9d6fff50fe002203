"""The grant keeper brings the broker in step with its grants from one read of every
client's access, not a round trip a client."""

from __future__ import annotations

from pathlib import Path

from m2mpay.access.broker import MemoryBroker, TopicAccess
from m2mpay.access.keeper import GrantKeeper
from m2mpay.crypto import Address
from m2mpay.store import open_store
from tests.waiting import eventually_async

BUYER = Address(b"\x33" * 20)
TOPIC = "m2m/plug-7/live"


class CountingBroker(MemoryBroker):
    """Counts how the keeper reads what the clients may do."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_of_all = 0
        self.reads_of_one = 0

    async def accesses(self) -> dict[str, frozenset[TopicAccess]]:
        self.reads_of_all += 1
        return await super().accesses()

    async def access_of(self, username: str) -> frozenset[TopicAccess]:
        self.reads_of_one += 1
        return await super().access_of(username)


async def test_reconcile_reads_every_clients_access_once_and_puts_the_broker_in_step(
    tmp_path: Path,
) -> None:
    broker = CountingBroker()
    await broker.prepare()
    keeper = GrantKeeper(broker, open_store(tmp_path / "grants.sqlite3"))
    await keeper.start()
    try:
        names = [f"buyer-{i}" for i in range(5)]
        for i, name in enumerate(names):
            session_id = bytes([i + 1]) * 32
            await keeper.open(session_id, BUYER, name, f"password-of-{name}", TOPIC)
            keeper.permit(session_id, 60)

        async def all_readable() -> bool:
            return all(broker.may_receive(name, TOPIC) for name in names)

        await eventually_async(all_readable, timeout=5)
        # The broker drifts from the grants: one read taken back, one given too many.
        await broker.revoke(names[0], TOPIC)
        await broker.allow(names[1], TopicAccess("m2m/plug-8/live", read=True, write=False))
        broker.reads_of_all = broker.reads_of_one = 0

        await keeper.reconcile()

        assert (broker.reads_of_all, broker.reads_of_one) == (1, 0)
        assert all(broker.may_receive(name, TOPIC) for name in names)
        assert not broker.may_receive(names[1], "m2m/plug-8/live")
    finally:
        await keeper.stop()
