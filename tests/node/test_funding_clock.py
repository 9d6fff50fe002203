"""Funding right after a dev chain's clock jumps ahead (found by `m2mpay torture crash`,
seed 15: an open a second after a dispute's `advance_time` failed with "permit expired")."""

from __future__ import annotations

from m2mpay.channel.state import Phase
from tests.node.conftest import UNIT, Chain, NodeFactory


async def test_an_open_right_after_the_chain_clock_jumps_signs_a_permit_still_valid(
    chain: Chain, make_node: NodeFactory
) -> None:
    alice, bob = await make_node(1), await make_node(2)
    first = await alice.open_channel(bob.address, chain.token.address, UNIT, endpoint=bob.endpoint)
    assert first.phase is Phase.OPEN  # alice has just read the chain's clock for its permit
    await chain.ledger.advance_time(2 * 3600)  # beyond a permit's validity
    second = await alice.open_channel(bob.address, chain.token.address, UNIT, endpoint=bob.endpoint)
    assert second.phase is Phase.OPEN
    assert await chain.token.balance_of(chain.hub.address) == 2 * UNIT
