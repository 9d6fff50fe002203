"""`wind-to-car`: a charger resells a wind turbine's energy with a commission per Wh;
a car buys from the charger until its budget runs out, the energy flowing from the
turbine's meter over the line through the charger's relay meter. The charger's node
reconciles the sale with its purchase, both channels are closed cooperatively, and
each party finds on chain exactly its share: the car paid, the turbine was paid and
the charger kept its margin.

Each seller writes its sale into a provenance stream (the turbine the charger's
purchase, the charger the car's), the charger's linking the turbine's; the car follows
them back to the turbine: both verify, each ends with its countersigned receipt, the
upstream one is paid to the turbine's address, and their Wh are the Wh of the
reconciliation."""

from __future__ import annotations

from typing import Final

from m2mpay.client import ReconciliationView, ResaleView
from m2mpay.devices.metered import MeteredService
from m2mpay.devices.simulated import PowerLine, RelayMeter, wind_power
from m2mpay.provenance.audit_report import DiscrepancyCode, read_signed_report
from m2mpay.provenance.stream_records import MeterRecord
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.stage import Actor, until
from m2mpay.scenarios.streams import follow_streams

__all__ = ["WindToCar"]

TOKEN: Final = 10**18
PRICE_PER_WH: Final = 2 * 10**14  # the turbine's: 0.20 token per kWh
COMMISSION_PER_WH: Final = 10**14  # the charger's: 0.10 token per kWh
WH: Final = 3_000  # what the car's budget buys
BUDGET: Final = WH * (PRICE_PER_WH + COMMISSION_PER_WH)
TURBINE_W: Final = 40_000.0


async def _reconciled(charger: Actor) -> ResaleView:
    """The charger's resale once its sale and the purchase behind it have stopped."""

    async def done() -> bool:
        [resale] = await charger.api.resales()
        phases = [(r.sale_phase, r.purchase_phase) for r in resale.reconciliations]
        return phases == [("stopped", "stopped")]

    await until(done, "the charger's reconciliation of the sale")
    [resale] = await charger.api.resales()
    return resale


class WindToCar(Scenario):
    name = "wind-to-car"
    title = "A charger resells wind power to a car, with a commission per Wh"
    unit = "Wh"

    async def play(self, play: Play) -> None:
        stage = play.stage
        car, charger, turbine = await play.cast("car", "charger", "turbine")
        line = PowerLine()  # the cable from the turbine's meter to the charger's
        wind = wind_power(TURBINE_W, gust_period_s=30)
        generator = await play.energy_meter(
            turbine, "generator", "energy", PRICE_PER_WH, wind, line
        )

        def relayed(_session: bytes) -> RelayMeter:
            return RelayMeter(line)

        relay = await play.metered(
            charger, "relay", MeteredService("charge", "Wh", PRICE_PER_WH, stage.token, relayed)
        )
        wind_offer = await play.offer_energy(turbine, generator, "energy", PRICE_PER_WH)
        play.say(f"turbine offers wind energy at {PRICE_PER_WH / TOKEN * 1000:.2f} token/kWh")
        source = await play.find_offer(turbine, wind_offer)
        resale = await charger.api.publish_resale(
            source,
            commission=COMMISSION_PER_WH,
            device=f"{relay.address.checksum}/charge",
            endpoint=turbine.endpoint,
            deposit=5 * TOKEN,
        )
        # The audit allows each hop's seller its credit window of units ahead of payment.
        window = max(source.window, resale.offer.window)
        play.say(
            f"charger resells it at {int(resale.offer.price) / TOKEN * 1000:.2f} token/kWh "
            f"(commission {COMMISSION_PER_WH / TOKEN * 1000:.2f})"
        )
        play.say(f"car buys with a budget of {BUDGET / TOKEN:.4f} tokens")
        session = await car.api.start_session(
            resale.offer, endpoint=charger.endpoint, deposit=5 * TOKEN, budget=BUDGET
        )
        bought = await play.watch_session(car, session.session_id, WH)
        play.say(f"session stopped: {bought.stop_reason}")
        resale = await _reconciled(charger)
        [report] = resale.reconciliations
        purchase = await charger.api.session(report.purchase_id)
        sold_upstream = await turbine.api.session(report.purchase_id)
        play.say(
            f"reconciled: bought {report.units_bought} Wh, sold {report.units_sold} Wh, "
            f"margin {int(report.margin) / TOKEN:.4f} tokens"
        )
        car_phase = await play.close_channel(car, bought.channel_id)
        charger_phase = await play.close_channel(charger, purchase.channel_id)

        paid_down = int(report.received_downstream)
        paid_up = int(report.paid_upstream)
        margin = int(report.margin)
        play.report.units = bought.forward.units
        play.report.paid = int(bought.forward.paid)
        play.report.extra["turbine → charger"] = (
            f"{report.units_bought} Wh for {paid_up / TOKEN:.6f} tokens"
        )
        play.report.extra["charger → car"] = (
            f"{report.units_sold} Wh for {paid_down / TOKEN:.6f} tokens"
        )
        play.report.extra["charger's margin"] = f"{margin / TOKEN:.6f} tokens"

        play.equal("car's stop reason", bought.stop_reason, "budget exhausted")
        play.equal("car paid its budget", int(bought.forward.paid), BUDGET)
        play.check("reconciliation balanced", report.balanced, "")
        play.equal("Wh bought = Wh sold", report.units_bought, report.units_sold)
        play.equal("Wh the car got = Wh sold", bought.forward.units, report.units_sold)
        play.equal("margin = commission × Wh", margin, COMMISSION_PER_WH * report.units_sold)
        play.equal("car's payment = received downstream", int(bought.forward.paid), paid_down)
        play.equal("turbine's view of the purchase", int(sold_upstream.forward.paid), paid_up)
        play.check("both sessions countersigned", bought.countersigned, "")
        play.equal("channels closed cooperatively", (car_phase, charger_phase), ("closed",) * 2)
        await play.check_balances({"car": -paid_down, "charger": margin, "turbine": paid_up})
        down = await self._follow_streams(play, car, charger, turbine, bought.session_id, report)
        if down is not None:
            # What the relay's display shows: the QR code of the stream of its sale.
            shown = await charger.api.device_qr_page(relay.address.checksum)
            play.check("the relay's display shows the car's stream", "0x" + down.hex() in shown, "")
            await self._audit(play, car, down, report, window)

    async def _follow_streams(
        self,
        play: Play,
        car: Actor,
        charger: Actor,
        turbine: Actor,
        sale: str,
        report: ReconciliationView,
    ) -> bytes | None:
        """The car follows its purchase's streams back to the turbine; the stream of its
        purchase (None if the chain did not verify)."""
        hops, problem = await follow_streams(car, charger, bytes.fromhex(sale[2:]), 2)
        play.check("the car's streams verify back to the turbine", problem is None, problem or "")
        if problem is not None:
            return None
        down, up = hops
        wh = [sum(r.delta for r in h.verified.records if isinstance(r, MeterRecord)) for h in hops]
        play.say(
            f"car follows stream 0x{down.stream.stream_id.hex()[:12]}… (charger, "
            f"{len(down.verified.messages)} messages) to 0x{up.stream.stream_id.hex()[:12]}… "
            f"(turbine, {len(up.verified.messages)} messages): both verify"
        )
        play.report.extra["streams"] = {
            "charger → car": "0x" + down.stream.stream_id.hex(),
            "turbine → charger": "0x" + up.stream.stream_id.hex(),
            "links": "charger's stream → turbine's",
        }
        play.equal("the upstream stream is paid to the turbine", up.session.pay_to, turbine.address)
        play.equal("the car's stream is the charger's", down.session.pay_to, charger.address)
        play.equal(
            "Wh in the streams = Wh sold, bought", wh, [report.units_sold, report.units_bought]
        )
        return down.stream.stream_id

    async def _audit(
        self, play: Play, car: Actor, stream_id: bytes, report: ReconciliationView, window: int
    ) -> None:
        """The car's node issues the audit report of the chain it bought from (energy
        against money per hop, signed by the car's node): the page saved, its path said."""
        page = play.stage.work_dir / play.stage.scene / "audit-report.html"
        await car.api.save_audit(stream_id, page, credit_window=window)
        signed = read_signed_report(
            await car.api.audit(stream_id, format="json", credit_window=window)
        )
        signed.check(car.address)
        audited = signed.report
        play.say(f"audit report of the value chain, signed by the car's node: {page}")
        play.report.extra["audit report"] = str(page)
        # Upstream first: the turbine's sale, then the charger's.
        play.equal(
            "Wh per hop in the audit = Wh sold, bought",
            [hop.units for hop in reversed(audited.hops)],
            [report.units_sold, report.units_bought],
        )
        problems = [
            d.code.value for d in audited.discrepancies if d.code != DiscrepancyCode.UNANCHORED
        ]
        play.equal("the audit's discrepancies (beyond anchoring still to come)", problems, [])
