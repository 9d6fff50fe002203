"""Mining the next block at a chosen second, for tests of deadlines to the second.

The embedded chain stamps blocks from its own clock and Anvil takes
`evm_setNextBlockTimestamp`; the JSON-RPC view of the embedded chain is the same
chain, so these tests run on the embedded chain and on Anvil only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from web3.types import RPCEndpoint

from m2mpay.chain import EmbeddedLedger, Ledger, RpcLedger

__all__ = ["EXACT_CLOCK_LEDGERS", "next_block_at"]

EXACT_CLOCK_LEDGERS = pytest.mark.parametrize("ledger", ["embedded", "anvil"], indirect=True)


@asynccontextmanager
async def next_block_at(ledger: Ledger, timestamp: int) -> AsyncIterator[None]:
    """The next transaction is mined in a block stamped `timestamp`, to the second."""
    if isinstance(ledger, EmbeddedLedger):
        backend = ledger._require_backend()
        backend.now = lambda: timestamp  # type: ignore[method-assign]
        try:
            yield
        finally:
            del backend.now  # back to the class's wall clock
    else:
        assert isinstance(ledger, RpcLedger)
        response = await ledger.w3.provider.make_request(
            RPCEndpoint("evm_setNextBlockTimestamp"), [timestamp]
        )
        assert "error" not in response, response
        yield
    assert await ledger.block_timestamp() == timestamp  # the pin really took
