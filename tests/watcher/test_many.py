"""One watcher, many channels and parties: both sides of different channels, and both
sides of one channel, each defended with the right proof."""

from __future__ import annotations

from m2mpay.chain import OnchainChannel
from m2mpay.crypto import PrivateKey
from m2mpay.watcher_client import WatcherClient
from tests.conftest import UNIT, World
from tests.watcher.conftest import StartWatcher, wait_for


async def _open(
    world: World, payer: PrivateKey, payee: PrivateKey, nonce: int, *, payee_deposit: int = 0
) -> OnchainChannel:
    channel = OnchainChannel(
        payer.address, payee.address, world.token.address, 3600, nonce, deposit_a=10 * UNIT
    )
    await world.token.approve(payer, world.hub.address, channel.deposit_a)
    await world.hub.open(payer, channel)
    if payee_deposit:
        await world.token.approve(payee, world.hub.address, payee_deposit)
        await world.hub.deposit(payee, channel, payee.address, payee_deposit)
        channel = channel.with_deposit(payee.address, payee_deposit)
    return channel


async def _give(
    client: WatcherClient,
    world: World,
    channel: OnchainChannel,
    party: PrivateKey,
    token: str,
    total: int,
) -> None:
    """Hand the watcher, for `party`, its peer's proof of `total`."""
    peer = channel.b if party.address == channel.a else channel.a
    payer = next(k for k in (world.alice, world.bob, world.carol) if k.address == peer)
    proof = world.hub.sign_balance_proof(payer, channel.id, total)
    await client.update(channel.id, party.address, token, total, proof)


async def test_one_watcher_defends_many_channels_and_both_sides(
    world: World, start_watcher: StartWatcher
) -> None:
    alice, bob, carol = world.alice, world.bob, world.carol
    running = await start_watcher(world)
    client = running.client

    # Ten alice → bob channels, defended for bob; registered after they were opened.
    ab = [await _open(world, alice, bob, 100 + i) for i in range(10)]
    ab_tokens = [await client.register(c, bob) for c in ab]
    # bob → carol, defended for carol; registered before it is opened.
    bc = OnchainChannel(bob.address, carol.address, world.token.address, 3600, 200, 10 * UNIT)
    bc_token = await client.register(bc, carol)
    await _open(world, bob, carol, 200)
    # carol ⇄ alice, both funded, both parties defended by the same watcher.
    ca = await _open(world, carol, alice, 300, payee_deposit=10 * UNIT)
    ca_tokens = {p.address: await client.register(ca, p) for p in (carol, alice)}

    for channel, token in zip(ab, ab_tokens, strict=True):
        await _give(client, world, channel, bob, token, 3 * UNIT)
    await _give(client, world, bc, carol, bc_token, 4 * UNIT)
    await _give(client, world, ca, alice, ca_tokens[alice.address], 5 * UNIT)  # carol paid 5
    await _give(client, world, ca, carol, ca_tokens[carol.address], 2 * UNIT)  # alice paid 2

    info = await client.info()
    assert (info.channels, info.registrations, info.proofs) == (12, 13, 13)

    # Stale closes from every side: alice on half of her channels with bob, bob as
    # party a of his channel with carol, and carol claiming she paid alice 1 while
    # leaving out alice's payments to her.
    for channel in ab[:5]:
        await world.hub.close(alice, channel, UNIT, 0, None)
    await world.hub.close(bob, bc, 0, 0, None)
    await world.hub.close(carol, ca, UNIT, 0, None)

    expected = {channel.id: (3 * UNIT, 0) for channel in ab[:5]}
    expected[bc.id] = (4 * UNIT, 0)
    expected[ca.id] = (5 * UNIT, 2 * UNIT)

    async def all_defended() -> bool:
        for channel_id, (ta, tb) in expected.items():
            closing = (await client.channel(channel_id))["onchain"]["closing"]
            if closing is None or (closing["transferred_a"], closing["transferred_b"]) != (
                str(ta),
                str(tb),
            ):
                return False
        return True

    await wait_for(all_defended, what="every challenge")
    disputes = await client.disputes()
    assert all(d["status"] == "mined" for d in disputes)
    assert len(disputes) == 5 + 1 + 2  # carol ⇄ alice needed one challenge per side
    ca_hex = "0x" + ca.id.hex()
    ca_disputes = {
        (d["participant"], d["beneficiary"]) for d in disputes if d["channel_id"] == ca_hex
    }
    assert ca_disputes == {
        (str(carol.address), str(alice.address)),  # carol's total raised for alice
        (str(alice.address), str(carol.address)),  # and alice's for carol
    }
    for channel in ab[5:]:
        assert (await client.channel(channel.id))["onchain"]["phase"] == "open"
