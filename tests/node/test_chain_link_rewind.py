"""`LedgerAccess.follow` turns a retracted hub log into the channel's view before its block,
and waits an outage out rather than lose the rewind (the follower has forgotten the log)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any, cast

from m2mpay.chain import NATIVE_TOKEN, EmbeddedLedger, Ledger, LogEntry, OnchainChannel
from m2mpay.chain.hub import deploy_hub
from m2mpay.channel.inputs import ChainRewound
from m2mpay.errors import LedgerUnavailable
from m2mpay.node import LedgerAccess


class _RetractingLedger:
    """A ledger whose follower retracts `retracted` and whose first log query fails."""

    may_reorganise = True

    def __init__(self, ledger: Ledger, retracted: LogEntry) -> None:
        self._ledger = ledger
        self._retracted = retracted
        self.failures = 1

    async def subscribe(self, **_: Any) -> AsyncIterator[LogEntry]:
        yield replace(self._retracted, removed=True)

    async def get_logs(self, **query: Any) -> Sequence[LogEntry]:
        if self.failures:
            self.failures -= 1
            raise LedgerUnavailable("the node restarts")
        return await self._ledger.get_logs(**query)


async def test_a_retracted_deposit_becomes_the_view_before_it_across_an_outage() -> None:
    async with EmbeddedLedger() as ledger:
        a, b = ledger.dev_accounts()[1:3]
        hub, _ = await deploy_hub(ledger, ledger.dev_accounts()[0])
        channel = OnchainChannel(a.address, b.address, NATIVE_TOKEN, 100, 1, 10, 0)
        await hub.open(a, channel)
        deposit = await hub.deposit(b, channel, b.address, 5)
        # Another channel's events are not part of the view.
        await hub.open(a, replace(channel, nonce=2))
        [retracted] = deposit.logs
        fake = _RetractingLedger(ledger, retracted)
        link = LedgerAccess(cast(Ledger, fake), hub.address, b)

        [rewound] = [inp async for inp in link.follow(0)]
        assert isinstance(rewound, ChainRewound)
        assert fake.failures == 0
        expected = ChainRewound(
            channel.id, deposit.block_number, True, 10, 0, None, False, 0, 0, False, 0
        )
        assert replace(rewound, now_ms=0) == expected
