"""`NodeClient` against the real API of real nodes on an embedded chain, in process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from m2mpay.client import NATIVE, Event, NodeClient, SessionView
from m2mpay.crypto import Address, PrivateKey
from m2mpay.errors import (
    ApiConflict,
    ApiInvalidInput,
    ApiNotFound,
    ApiRefusal,
    ApiUnauthorized,
    NodeUnreachable,
)
from tests.client.conftest import METER, UNIT, ApiFactory, Chain, eventually

PRICE = 10**15  # per Wh


async def test_info_wallet_faucet_and_transfers(chain: Chain, make_api: ApiFactory) -> None:
    api = await make_api(1)
    me = chain.keys[1].address
    info = await api.client.info()
    assert info.address == me
    assert info.chain == chain.ledger.caip2
    assert info.contracts.token == chain.token.address
    assert info.peer_endpoint == api.party.node.endpoint
    assert info.dev_chain
    assert info.public_reads is False

    before = await api.client.wallet()
    assert before.address == me
    assert before.balance("M2M").on_chain == await chain.token.balance_of(me)
    assert before.balance(NATIVE).on_chain == await chain.ledger.balance(me)

    after = await api.client.faucet(amount=5 * UNIT, native=2 * 10**17)
    assert after.balance(chain.token.address).on_chain == before.balance("M2M").on_chain + 5 * UNIT
    assert after.balance("ETH").on_chain == before.balance("ETH").on_chain + 2 * 10**17

    someone = PrivateKey.generate().address
    sent = await api.client.transfer(someone, 12345)
    assert sent.tx_hash.startswith("0x")
    assert sent.gas_used > 0
    assert await chain.ledger.balance(someone) == 12345
    await api.client.transfer(someone.checksum, 3 * UNIT, asset=chain.token.address)
    assert await chain.token.balance_of(someone) == 3 * UNIT


async def test_a_channel_opened_paid_and_closed_through_the_api(
    chain: Chain, make_api: ApiFactory
) -> None:
    alice, bob = await make_api(1), await make_api(2)
    alice_before = await chain.token.balance_of(chain.keys[1].address)
    bob_before = await chain.token.balance_of(chain.keys[2].address)

    opened = await alice.client.open_channel(
        bob.party.node.address, 10 * UNIT, endpoint=bob.party.node.endpoint
    )
    assert opened.phase == "open"
    assert (opened.deposit_mine, opened.balance_mine, opened.deposit_peer) == (
        10 * UNIT,
        10 * UNIT,
        0,
    )
    assert opened.peer == bob.party.node.address
    assert [c.channel_id for c in await alice.client.channels()] == [opened.channel_id]
    wallet = await alice.client.wallet()
    assert wallet.balance("M2M").in_channels == 10 * UNIT

    made = [await alice.client.pay(opened.channel_id, UNIT // 4) for _ in range(4)]
    assert all(p.acknowledged for p in made)
    assert [p.seq for p in made] == sorted({p.seq for p in made})
    assert made[-1].sent_total == UNIT
    unacknowledged = await alice.client.pay(bytes.fromhex(opened.channel_id[2:]), 1, wait=False)
    assert unacknowledged.sent_total == UNIT + 1

    channel_id = bytes.fromhex(opened.channel_id[2:])
    await eventually(lambda: bob.party.node.channel(channel_id).received_total == UNIT + 1)
    theirs = await bob.client.channel(opened.channel_id)
    assert (theirs.received_total, theirs.balance_mine) == (UNIT + 1, UNIT + 1)

    closed = await alice.client.close_channel(opened.channel_id)
    assert closed.phase == "closed"
    assert closed.final_balance_mine == 9 * UNIT - 1
    assert await chain.token.balance_of(chain.keys[1].address) == alice_before - UNIT - 1
    assert await chain.token.balance_of(chain.keys[2].address) == bob_before + UNIT + 1
    assert (await alice.client.wallet()).balance("M2M").in_channels == 0


async def test_refusals_carry_status_code_message_and_field(make_api: ApiFactory) -> None:
    api = await make_api(1)
    async with api.connect() as anonymous:
        with pytest.raises(ApiUnauthorized) as refused:
            await anonymous.wallet()
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")
        assert (await anonymous.info()).address == api.party.node.address  # public
        assert await anonymous.offers() == []  # public
    async with api.connect("m2m_wrong") as wrong:
        with pytest.raises(ApiUnauthorized, match="not valid"):
            await wrong.channels()

    missing = "0x" + "ab" * 32
    with pytest.raises(ApiNotFound) as unknown:
        await api.client.channel(missing)
    assert unknown.value.code == "unknown_channel"
    with pytest.raises(ApiInvalidInput) as malformed:
        await api.client.pay("0x1234", 1)
    assert (malformed.value.code, malformed.value.field) == ("invalid_input", "channel_id")
    with pytest.raises(ApiInvalidInput) as negative:
        await api.client.pay(missing, -5)
    assert negative.value.field == "amount"
    with pytest.raises(ApiInvalidInput) as bad_address:
        await api.client.transfer("0x12", 1)
    assert bad_address.value.field == "to"
    with pytest.raises(ApiInvalidInput) as batch:
        await api.client.publish_offer(
            kind="energy", unit="Wh", price=1, window=2, batch=3, device=METER
        )
    assert batch.value.field == "batch"
    with pytest.raises(ApiNotFound):
        await api.client.withdraw_offer(missing)
    # An id is one path segment: it never reaches another route (here /v1/wallet).
    with pytest.raises(ApiRefusal) as escaped:
        await api.client.channel("../wallet")
    assert (escaped.value.status, escaped.value.code) == (404, "not_found")


async def test_failures_of_the_peer_and_of_the_node(make_api: ApiFactory) -> None:
    api = await make_api(1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(ApiRefusal) as peer:
        await api.client.open_channel(
            PrivateKey.generate().address, UNIT, endpoint=f"ws://127.0.0.1:{closed_port}"
        )
    # The node answers 409 here (a ChannelError), 502 when a TransportError escapes;
    # the code is the same either way (reported to the gateway's owner).
    assert peer.value.code == "peer_unreachable"
    assert str(closed_port) in peer.value.message
    async with NodeClient(f"http://127.0.0.1:{closed_port}", "t") as nobody:
        with pytest.raises(NodeUnreachable, match=str(closed_port)):
            await nobody.info()


async def test_not_enough_balance_is_a_conflict(chain: Chain, make_api: ApiFactory) -> None:
    alice, bob = await make_api(1), await make_api(2)
    opened = await alice.client.open_channel(
        bob.party.node.address, UNIT, endpoint=bob.party.node.endpoint
    )
    with pytest.raises(ApiConflict) as refused:
        await alice.client.pay(opened.channel_id, 2 * UNIT)
    assert refused.value.status == 409
    assert "balance" in refused.value.code


async def test_offers_and_a_metered_session(chain: Chain, make_api: ApiFactory) -> None:
    seller, buyer = await make_api(1), await make_api(2)
    offer = await seller.client.publish_offer(
        kind="energy", unit="Wh", price=PRICE, window=10, batch=2, device=METER
    )
    assert (offer.seller, offer.price, offer.window, offer.batch) == (
        seller.party.node.address,
        PRICE,
        10,
        2,
    )
    assert offer.asset == chain.token.address
    async with seller.connect() as shop:
        (listed,) = await shop.offers()  # what a buyer sees, without the seller's token
    assert listed == offer

    started = await buyer.client.start_session(
        listed, endpoint=seller.party.node.endpoint, deposit=UNIT, limit_price=PRICE
    )
    assert (started.role, started.offer_id, started.stopped) == ("buyer", offer.offer_id, False)
    with pytest.raises(ApiNotFound):
        await buyer.client.receipt(started.session_id)
    with pytest.raises(ApiConflict):
        await buyer.client.reverse(started.session_id)  # not agreed at the start

    async def until(check: Callable[[SessionView], bool]) -> None:
        # The meter runs on its own clock: look until the buyer's node sees it so.
        while not check(await buyer.client.session(started.session_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(until(lambda s: s.forward.units >= 10), 30)
    sold = await seller.client.set_price(started.session_id, PRICE // 2)
    assert sold.role == "seller"
    await asyncio.wait_for(until(lambda s: s.price == PRICE // 2), 30)  # agreed by the buyer
    assert [s.session_id for s in await seller.client.sessions()] == [started.session_id]

    stopped = await buyer.client.stop_session(started.session_id, reason="full")
    assert stopped.stopped
    assert stopped.stop_reason == "full"
    assert stopped.forward.paid == stopped.forward.value > 0
    receipt = await buyer.client.receipt(started.session_id)
    assert receipt.forward == stopped.forward
    assert receipt.channel_id == stopped.channel_id
    assert stopped.receipt == receipt

    await seller.client.withdraw_offer(offer.offer_id)
    assert await seller.client.offers() == []


async def test_events_stream_over_tcp(chain: Chain, make_api: ApiFactory) -> None:
    alice, bob = await make_api(1), await make_api(2)
    url = await bob.serve()
    async with NodeClient(url, bob.token) as client, client.events() as events:
        # Subscribed once `events` is entered: what follows is in the stream.
        opened = await alice.client.open_channel(
            bob.party.node.address, UNIT, endpoint=bob.party.node.endpoint
        )
        for _ in range(3):
            await alice.client.pay(opened.channel_id, 7)
        seen: list[Event] = []
        async with asyncio.timeout(30):
            async for event in events:
                seen.append(event)
                if sum(e.type == "ev.payment_received" for e in seen) == 3:
                    break
    assert {e.kind for e in seen} == {"channel"}
    assert seen[0].type in ("ev.proposal_received", "ev.opened")
    payments = [e for e in seen if e.type == "ev.payment_received"]
    assert all(e.channel_id == opened.channel_id for e in payments)
    assert [e.data["amount"] for e in payments] == ["7", "7", "7"]


async def test_events_need_the_token(make_api: ApiFactory) -> None:
    api = await make_api(1)
    url = await api.serve()
    async with NodeClient(url) as client:
        with pytest.raises(ApiUnauthorized):
            async with client.events():
                pass
        assert (await client.info()).address == Address(api.party.node.address)
