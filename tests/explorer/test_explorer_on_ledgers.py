"""The same `Explorer` on Anvil as on the embedded chain the API tests use: a channel's
history, its open transaction's hub call and events decoded, a page of blocks, an
address's token transfers, search."""

from __future__ import annotations

import pytest

from m2mpay.chain import Ledger, deploy_contracts
from m2mpay.explorer import Explorer, SearchHit
from tests.conftest import UNIT, World


@pytest.mark.parametrize("ledger", ["anvil"], indirect=True)
async def test_the_explorer_reads_anvil_as_it_reads_the_embedded_chain(ledger: Ledger) -> None:
    owner, alice, bob, carol = ledger.dev_accounts()[:4]
    deployment, hub, token = await deploy_contracts(
        ledger, owner, mint={k.address: 1_000 * UNIT for k in (alice, bob)}
    )
    world = World(ledger, hub, token, owner, alice, bob, carol)
    await world.channel(5 * UNIT)
    explorer = Explorer(ledger, deployment)

    opened_logs = await ledger.get_logs(address=hub.address, from_block=deployment.block_number)
    assert opened_logs
    channel_id = opened_logs[-1].topics[1]
    history = await explorer.channel(channel_id)
    assert history is not None
    assert [step.event.event for step in history.steps] == ["ChannelOpened"]
    assert history.steps[0].timestamp > 0
    open_tx = history.steps[0].event.tx_hash

    view = await explorer.transaction(open_tx)
    assert view is not None
    assert (view.call.contract, view.call.function) == ("ChannelHub", "open")
    struct = view.call.args["ch"]
    assert isinstance(struct, dict)
    assert (struct["a"], struct["b"]) == (alice.address.checksum, bob.address.checksum)
    assert [(e.contract, e.event) for e in view.events] == [
        ("ChannelHub", "ChannelOpened"),
        ("Token", "Transfer"),  # the deposit pulled in after the channel is recorded
    ]

    page = await explorer.blocks(limit=3)
    assert [b.number for b in page.blocks] == [page.head, page.head - 1, page.head - 2]
    assert page.next_before == page.head - 2
    assert page.blocks[0].parent_hash == page.blocks[1].hash

    seen = await explorer.address(alice.address)
    assert seen.contract is None
    assert [(t.symbol, t.balance) for t in seen.tokens] == [("M2M", 995 * UNIT)]
    assert seen.transfers[0].receiver == hub.address
    assert seen.transfers[0].value == 5 * UNIT
    assert seen.transfers[-1].value == 1_000 * UNIT  # the mint, oldest
    assert (await explorer.address(hub.address)).contract == "ChannelHub"

    assert await explorer.search("0x" + open_tx.hex()) == SearchHit(
        "transaction", "0x" + open_tx.hex()
    )
    assert await explorer.search("0x" + channel_id.hex()) == SearchHit(
        "channel", "0x" + channel_id.hex()
    )
    assert await explorer.search(str(page.head)) == SearchHit("block", str(page.head))
    assert await explorer.search(str(page.head + 10)) is None
    with pytest.raises(ValueError, match="block number"):
        await explorer.search("not a hash")
