"""`lamp`: a lamp on its owner's device bus sells light by the second; a buyer pays
for a number of seconds through its own node; the lamp lights for exactly that
long, and its switch records are anchored on chain and provable through the API."""

from __future__ import annotations

from typing import Final

from m2mpay.crypto import PrivateKey
from m2mpay.devices.lamp import Lamp
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import until

__all__ = ["PaidLight"]

PRICE_PER_S: Final = 10**15
SECONDS: Final = 30
SPEED: Final = 5.0  # lamp seconds per real second


class PaidLight(Scenario):
    name = "lamp"
    title = "A lamp lights for exactly the seconds paid"
    unit = "s"

    async def play(self, play: Play) -> None:
        stage = play.stage
        buyer, owner = await play.cast("buyer", "lamp-owner")
        lamp = Lamp(
            owner.bus_url,
            PrivateKey.generate(),
            price=PRICE_PER_S,
            asset=stage.token,
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
            window=5,
            leader="payer",  # light only once paid
            device=f"{device_id}/light",
        )
        found = await play.find_offer(owner, offer)
        play.say(f"buyer pays for {SECONDS} s of light")
        session = await buyer.api.start_session(
            found,
            endpoint=owner.endpoint,
            deposit=10**18,
            budget=SECONDS * PRICE_PER_S,
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

        play.report.units = bought.forward.units
        play.report.paid = int(bought.forward.paid)
        play.report.extra["lamp_lit_s"] = round(lit, 3)
        play.equal("stop reason", bought.stop_reason, "budget exhausted")
        play.equal("seconds paid", int(bought.forward.paid), SECONDS * PRICE_PER_S)
        play.check("lamp lit for the seconds paid", abs(lit - SECONDS) < 1e-6, f"{lit:.6f} s")
        play.equal("lamp is off again", lamp.is_on, False)
        # On, then off; a buyer whose payments lag the lamp's fast clock leaves it dark
        # for a moment (it lights only for time paid), which adds an off and an on.
        switches = [r.data.get("on") for r in records]
        alternating = switches == [True, False] * (len(switches) // 2) and len(switches) >= 2
        play.check("switch records: on, then off", alternating, str(switches))
        anchored_at = f"{proof.anchor} in tx {proof.tx_hash}"
        play.check("a record is proved against its anchor", proof.anchor is not None, anchored_at)
        paid = int(bought.forward.paid)
        play.equal("channel closed cooperatively", phase, "closed")
        await play.check_balances({"buyer": -paid, "lamp-owner": paid})
