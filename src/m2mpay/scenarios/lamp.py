"""`lamp`: a lamp on its owner's device bus sells light by the second in its own token.

The owner's node creates "IoT-Light" (LIGHT) through the token factory and seeds a
LIGHT/ETH pool on the exchange; the buyer's node swaps ETH for LIGHT there and pays for
a number of seconds over a channel in LIGHT; the lamp lights for exactly that long, and
its switch records are anchored on chain and provable through the API. Then a wallet
that knows nothing of channels sends LIGHT straight to the lamp's address: once the
transfer has its confirmations the owner's node counts it and the lamp lights for
amount / price seconds.
"""

from __future__ import annotations

from typing import Final

from m2mpay.chain.token import TokenContract
from m2mpay.client import NATIVE, TransferPurchaseView
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.lamp import Lamp
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor, until

__all__ = ["PaidLight"]

UNIT: Final = 10**18
PRICE_PER_S: Final = UNIT // 1000  # LIGHT a second
SECONDS: Final = 30
SPEED: Final = 5.0  # lamp seconds per real second
POOL: Final = (1_000 * UNIT, UNIT // 10)  # LIGHT and ETH the owner seeds the pool with
SWAP_ETH: Final = UNIT // 100  # what the buyer's node swaps for LIGHT
CHANNEL: Final = SECONDS * PRICE_PER_S * 2  # what the buyer's node deposits, in LIGHT
TRANSFER_S: Final = 6  # seconds bought by a plain transfer
CONFIRMATIONS: Final = 3


class PaidLight(Scenario):
    name = "lamp"
    title = "A lamp lights for exactly the seconds paid, in its own token"
    unit = "s"

    async def play(self, play: Play) -> None:
        stage = play.stage
        buyer, owner = await stage.actor("buyer"), await stage.actor("lamp-owner")
        light = await self._market(play, owner, buyer)
        for actor in (buyer, owner):  # their LIGHT from here on
            await play.party(actor, light.address)
        lamp = Lamp(
            owner.bus_url,
            PrivateKey.generate(),
            price=PRICE_PER_S,
            asset=light.address,
            speed=SPEED,
            server=owner.address,
        )
        device_id = lamp.address.checksum
        await play.plug_in(owner, lamp)
        play.say(f"lamp {device_id[:10]}… logged in to its owner's bus")
        offer = await owner.api.publish_offer(
            kind="actuation",
            unit="s",
            price=PRICE_PER_S,
            asset=light.address,
            window=5,
            leader="payer",  # light only once paid
            device=f"{device_id}/light",
        )
        found = await play.find_offer(owner, offer)
        play.say(f"buyer pays for {SECONDS} s of light over a channel in LIGHT")
        session = await buyer.api.start_session(
            found, endpoint=owner.endpoint, deposit=CHANNEL, budget=SECONDS * PRICE_PER_S
        )
        bought = await play.watch_session(buyer, session.session_id, SECONDS)
        play.say(f"session stopped: {bought.stop_reason}; lamp is {lamp.state()}")
        lit = lamp.session_seconds(session.session_id)

        async def anchored() -> bool:
            found = await owner.api.telemetry(device_id)
            return bool(found) and all(r.batch is not None for r in found)

        await until(anchored, "the lamp's telemetry to be anchored on chain")
        records = await owner.api.telemetry(device_id)
        play.say(
            "telemetry: "
            + ", ".join(f"#{r.seq} on={r.data.get('on')} (batch {r.batch})" for r in records)
        )
        proof = await owner.api.telemetry_proof(device_id, records[0].seq)
        phase = await play.close_channel(buyer, bought.channel_id)

        paid = int(bought.forward.paid)
        play.report.units = bought.forward.units
        play.report.paid = paid
        play.report.extra["lamp_lit_s"] = round(lit, 3)
        play.equal("stop reason", bought.stop_reason, "budget exhausted")
        play.equal("seconds paid", paid, SECONDS * PRICE_PER_S)
        play.check("lamp lit for the seconds paid", abs(lit - SECONDS) < 1e-6, f"{lit:.6f} s")
        # On, then off; a buyer whose payments lag the lamp's fast clock leaves it dark
        # for a moment (it lights only for time paid), which adds an off and an on.
        switches = [r.data.get("on") for r in records]
        alternating = switches == [True, False] * (len(switches) // 2) and len(switches) >= 2
        play.check("switch records: on, then off", alternating, str(switches))
        anchored_at = f"{proof.anchor} in tx {proof.tx_hash}"
        play.check("a record is proved against its anchor", proof.anchor is not None, anchored_at)
        play.equal("channel closed cooperatively", phase, "closed")
        await play.check_balances({"buyer": -paid, "lamp-owner": paid})  # in LIGHT

        by_transfer = await self._plain_transfer(play, owner, buyer, light, offer.offer_id, lamp)
        lit_by_transfer = lamp.session_seconds(by_transfer.purchase_id)
        play.report.extra["lamp_lit_by_transfer_s"] = round(lit_by_transfer, 3)
        play.equal("seconds bought by the transfer", by_transfer.units, TRANSFER_S)
        play.check(
            "lamp lit for the seconds the transfer paid",
            abs(lit_by_transfer - TRANSFER_S) < 1e-6,
            f"{lit_by_transfer:.6f} s",
        )
        play.equal("lamp is off again", lamp.is_on, False)
        play.equal(
            "the lamp's LIGHT", await light.balance_of(lamp.address), TRANSFER_S * PRICE_PER_S
        )

    async def _market(self, play: Play, owner: Actor, buyer: Actor) -> TokenContract:
        """LIGHT created and pooled by the owner's node, bought by the buyer's, all
        through their APIs."""
        made = await owner.api.create_token("IoT-Light", "LIGHT", supply=POOL[0])
        light = made.address
        play.say(f"the lamp's owner created IoT-Light (LIGHT) at {light.checksum[:10]}…")
        await owner.api.add_liquidity(light, NATIVE, *POOL)
        before = await _pool(buyer, light)
        quote = await buyer.api.quote(NATIVE, light, SWAP_ETH)
        swapped = await buyer.api.swap(NATIVE, light, SWAP_ETH, min_out=int(quote.amount_out))
        after = await _pool(buyer, light)
        got = int(swapped.amount_out)
        play.say(f"the buyer's node swapped {SWAP_ETH / UNIT} ETH for {got / UNIT:.4f} LIGHT")
        play.equal("LIGHT bought as quoted", got, int(quote.amount_out))
        moved = (before[1] - after[1], after[0] - before[0])
        play.equal("pool reserves moved as quoted (LIGHT out, ETH in)", moved, (got, SWAP_ETH))
        return TokenContract(play.stage.ledger, light)

    async def _plain_transfer(
        self,
        play: Play,
        owner: Actor,
        buyer: Actor,
        light: TokenContract,
        offer_id: str,
        lamp: Lamp,
    ) -> TransferPurchaseView:
        """A plain transfer of LIGHT to the lamp's address from a wallet of its own (its
        LIGHT from the buyer's node), counted after its confirmations and lit as a
        session of its own."""
        terms = await owner.api.sell_by_transfer(offer_id, confirmations=CONFIRMATIONS)
        play.say(
            f"the owner's node sells the lamp's light to plain transfers of LIGHT "
            f"({terms.confirmations} confirmations)"
        )
        amount = TRANSFER_S * PRICE_PER_S
        wallet = await play.stage.wallet()
        await buyer.api.transfer(wallet.address, amount, asset=light.address)
        receipt = await light.transfer(wallet, lamp.address, amount)
        play.say(f"a wallet sent {amount / UNIT} LIGHT to the lamp in block {receipt.block_number}")
        await play.stage.mine(CONFIRMATIONS - 1)

        async def lit() -> bool:
            found = (await owner.api.transfer_sales()).purchases
            return bool(found) and found[-1].done

        await until(lit, "the lamp to light for the transfer")
        [purchase] = (await owner.api.transfer_sales()).purchases
        play.equal("the transfer counted once", purchase.tx_hash, "0x" + receipt.tx_hash.hex())
        play.say(f"the transfer bought {purchase.units} s; the lamp lit them")
        return purchase


async def _pool(actor: Actor, token: Address) -> tuple[int, int]:
    """The ETH and `token` reserves of their pool (ETH is token0 of every pool it is in)."""
    pool = next(p for p in await actor.api.pools() if p.token1 == token)
    return int(pool.reserve0), int(pool.reserve1)
