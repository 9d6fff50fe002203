"""A malicious peer talking to a real node over a real session: every bad message is
refused with a clear error sent back, and the channel does not change."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest

from m2mpay.channel.inputs import Pay
from m2mpay.channel.messages import ChannelSync, Message, PaymentMessage, PeerError
from m2mpay.crypto import PrivateKey, balance_proof_digest, channel_domain
from m2mpay.node import Node
from m2mpay.plain import to_plain
from m2mpay.wire import JsonCodec, PeerLink, WebSocketTransport, open_peer_link
from tests.node.conftest import UNIT, Chain, NodeFactory


async def _rogue_session(node: Node, key: PrivateKey) -> tuple[WebSocketTransport, PeerLink]:
    transport = WebSocketTransport()
    await transport.start()
    link = await transport.connect(str(node.endpoint))
    session = await open_peer_link(link, key, JsonCodec(), expected_peer=node.address)
    return transport, session


async def _next_error(session: PeerLink) -> PeerError:
    while True:
        message = await asyncio.wait_for(session.recv(), 5)
        if isinstance(message, PeerError):
            return message


@pytest.fixture
async def setup(chain: Chain, make_node: NodeFactory) -> tuple[Chain, Node, bytes, PaymentMessage]:
    """Bob's node holds a channel from alice; alice's key is now in a rogue's hands."""
    alice, bob = await make_node(1), await make_node(2)
    info = await alice.open_channel(
        bob.address, chain.token.address, 10 * UNIT, endpoint=bob.endpoint
    )
    await alice.pay(info.channel_id, UNIT)
    state = alice._channels[info.channel_id]
    last = PaymentMessage(
        info.channel_id,
        chain.ledger.chain_id,
        chain.hub.address,
        state.sent_total,
        UNIT,
        state.sent_seq,
        state.sent_signature,  # type: ignore[arg-type]
    )
    await alice.stop()
    return chain, bob, info.channel_id, last


def _signed(
    chain: Chain, channel: bytes, total: int, *, chain_id: int | None = None
) -> PaymentMessage:
    domain = channel_domain(chain_id or chain.ledger.chain_id, chain.hub.address)
    signature = chain.keys[1].sign_digest(balance_proof_digest(domain, channel, total))
    return PaymentMessage(
        channel,
        chain_id or chain.ledger.chain_id,
        chain.hub.address,
        total,
        total - UNIT,
        2,
        signature,
    )


def _cases(chain: Chain, channel: bytes, last: PaymentMessage) -> list[tuple[str, Message]]:
    stranger = PrivateKey.generate()
    forged = stranger.sign_digest(
        balance_proof_digest(
            channel_domain(chain.ledger.chain_id, chain.hub.address), channel, 2 * UNIT
        )
    )
    other_chain = _signed(chain, channel, 2 * UNIT, chain_id=chain.ledger.chain_id + 1)
    return [
        ("bad_signature", replace(_signed(chain, channel, 2 * UNIT), signature=forged)),
        ("stale_proof", last),
        ("unknown_channel", replace(_signed(chain, channel, 2 * UNIT), channel_id=b"\x05" * 32)),
        ("wrong_chain", other_chain),
        ("bad_signature", replace(other_chain, chain_id=chain.ledger.chain_id)),
        ("overdraft", _signed(chain, channel, 11 * UNIT)),
        ("non_positive_amount", replace(_signed(chain, channel, 2 * UNIT), amount=0)),
        ("amount_mismatch", replace(_signed(chain, channel, 2 * UNIT), amount=5)),
        ("bad_signature", ChannelSync(channel, 3 * UNIT, 3, forged, 0, 0, None)),
    ]


async def test_bad_messages_are_refused_and_change_nothing(
    setup: tuple[Chain, Node, bytes, PaymentMessage],
) -> None:
    chain, bob, channel, last = setup
    before = bob._channels[channel]
    transport, session = await _rogue_session(bob, chain.keys[1])
    try:
        for code, message in _cases(chain, channel, last):
            await session.send(message)
            error = await _next_error(session)
            assert error.code == code, (message, error)
            assert bob._channels[channel] is before
    finally:
        await session.close()
        await transport.stop()
    assert bob.channel(channel).received_total == UNIT


async def test_garbage_and_negative_amounts_are_refused_as_malformed(
    setup: tuple[Chain, Node, bytes, PaymentMessage],
) -> None:
    chain, bob, channel, _ = setup
    before = bob._channels[channel]
    transport, session = await _rogue_session(bob, chain.keys[1])
    try:
        plain = to_plain(_signed(chain, channel, 2 * UNIT), binary=False)
        negative = orjson.dumps({**plain, "v": 1, "amount": "-5"})
        # A registered type of another protocol (a local input) must not reach the machine.
        foreign = orjson.dumps({**to_plain(Pay(channel, 1), binary=False), "v": 1})
        bodies = (b"\x00\xffgarbage", b"{}", negative, orjson.dumps({**plain, "v": 99}), foreign)
        for body in bodies:
            # An authentic frame (the session seals it) whose content is not a message.
            await session.send_encoded(body)
            error = await _next_error(session)
            assert error.code == "malformed", error
        # The session survives malformed content: a good payment still goes through.
        await session.send(_signed(chain, channel, 2 * UNIT))
        for _ in range(50):
            if bob.channel(channel).received_total == 2 * UNIT:
                break
            await asyncio.sleep(0.02)
        assert bob.channel(channel).received_total == 2 * UNIT
    finally:
        await session.close()
        await transport.stop()
    assert bob._channels[channel] is not before


async def test_a_stranger_cannot_pay_into_someone_elses_channel(
    setup: tuple[Chain, Node, bytes, PaymentMessage],
) -> None:
    chain, bob, channel, _ = setup
    transport, session = await _rogue_session(bob, chain.keys[3])
    try:
        await session.send(_signed(chain, channel, 2 * UNIT))
        error = await _next_error(session)
        assert error.code == "not_a_party"
    finally:
        await session.close()
        await transport.stop()
    assert bob.channel(channel).received_total == UNIT
