"""The shape of a scenario and what it is given to play with."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Final

from m2mpay.client import NodeClient, OfferView, SessionView
from m2mpay.crypto import Address, PrivateKey
from m2mpay.devices.bus_client import BusClient
from m2mpay.devices.metered import MeteredDevice, MeteredService
from m2mpay.devices.simulated import EnergyMeter, PowerCurve, PowerLine
from m2mpay.scenarios.report import Check, PartyBalance, ScenarioReport
from m2mpay.scenarios.stage import Actor, ScenarioFailed, Stage, until

__all__ = ["Play", "Progress", "Scenario"]

# (units delivered, units expected in all, tokens paid): the live progress bar.
Progress = Callable[[int, int, int], None]
# The demo's energy offers: a buyer may be 50 Wh ahead of its payments, paid 10 Wh at a time.
ENERGY_WINDOW_WH: Final = 50
ENERGY_BATCH_WH: Final = 10


class Play:
    """One scenario's run: the stage, its report, and its progress bar."""

    def __init__(self, stage: Stage, report: ScenarioReport, progress: Progress) -> None:
        self.stage = stage
        self.report = report
        self._progress = progress
        self._say: Callable[[str], None] = lambda _line: None
        self._devices: list[BusClient] = []

    async def cast(
        self,
        *names: str,
        extra: Mapping[str, Sequence[str]] | None = None,
        token: Address | None = None,
    ) -> list[Actor]:
        """A node for each of `names` (with `extra` options of its own), its tokens
        (`token`, else the deployment's) followed on chain: the report's balance rows
        are in this order."""
        options = extra or {}
        actors = [await self.stage.actor(name, *options.get(name, ())) for name in names]
        for actor in actors:
            await self.party(actor, token)
        return actors

    async def plug_in(self, actor: Actor, device: BusClient) -> None:
        """Connect a device to the actor's bus and wait until it has registered; the
        runner unplugs it when the scenario ends."""
        self._devices.append(device)
        await device.start()

        async def registered() -> bool:
            return any(d.device_id == device.address.checksum for d in await actor.api.devices())

        await until(registered, f"{device.name} to join {actor.name}'s bus")

    async def metered(self, actor: Actor, name: str, service: MeteredService) -> MeteredDevice:
        """A metered device of its own (a new key) on the actor's bus, pinned to it."""
        device = MeteredDevice(
            actor.bus_url, PrivateKey.generate(), [service], name=name, server=actor.address
        )
        await self.plug_in(actor, device)
        return device

    async def energy_meter(
        self,
        actor: Actor,
        name: str,
        service: str,
        price: int,
        power: PowerCurve,
        line: PowerLine | None = None,
    ) -> MeteredDevice:
        """A device on the actor's bus whose `service` is energy at `price` per Wh, each
        session metered on the stage's clock along the `power` curve (into `line`)."""

        def meter(_session: bytes) -> EnergyMeter:
            return EnergyMeter(self.stage.simulation, power, line=line)

        energy = MeteredService(service, "Wh", price, self.stage.token, meter)
        return await self.metered(actor, name, energy)

    async def offer_energy(
        self, seller: Actor, device: MeteredDevice, service: str, price: int, reverse_price: int = 0
    ) -> OfferView:
        """Publish the device's `service` for sale by the Wh on the seller's node."""
        return await seller.api.publish_offer(
            kind="energy",
            unit="Wh",
            price=price,
            window=ENERGY_WINDOW_WH,
            batch=ENERGY_BATCH_WH,
            reverse_price=reverse_price,
            device=f"{device.address.checksum}/{service}",
        )

    async def find_offer(self, seller: Actor, offer: OfferView) -> OfferView:
        """The offer as a buyer finds it: in the seller's public storefront, no token."""
        async with NodeClient(seller.process.url) as storefront:
            [found] = [o for o in await storefront.offers() if o.offer_id == offer.offer_id]
        return found

    async def unplug_all(self) -> None:
        for device in reversed(self._devices):
            await device.stop()
        self._devices.clear()

    def on_story(self, say: Callable[[str], None]) -> None:
        self._say = say

    def say(self, line: str) -> None:
        """A line of the story, shown live and kept in the report."""
        self.report.story.append(line)
        self._say(line)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.report.checks.append(Check(what, bool(ok), detail))
        return bool(ok)

    def equal(self, what: str, got: object, expected: object) -> bool:
        return self.check(what, got == expected, f"{got} (expected {expected})")

    async def party(self, actor: Actor, token: Address | None = None) -> None:
        """Follow an actor's tokens on chain (`token`, else the deployment's) from now to
        the end of the scenario."""
        before = await self.stage.token_balance(actor.address, token)
        self.report.parties.append(PartyBalance(actor.name, actor.address, before, token=token))

    async def settle_balances(self) -> None:
        """Read every followed party's tokens on chain now."""
        for party in self.report.parties:
            party.after = await self.stage.token_balance(party.address, party.token)

    async def check_balances(self, changes: Mapping[str, int]) -> None:
        """Read the followed parties' tokens on chain now and check that each party
        named in `changes` gained what it says (a loss is negative)."""
        await self.settle_balances()
        rows = {party.name: party for party in self.report.parties}
        for name, change in changes.items():
            self.equal(f"{name.replace('-', ' ')}'s tokens on chain", rows[name].change, change)

    async def count_payments(self, actor: Actor, channel_id: str) -> None:
        """Add the balance proofs that crossed the channel, both ways, to the report."""
        view = await actor.api.channel(channel_id)
        self.report.payments += view.payments_sent + view.payments_received

    async def close_channel(self, actor: Actor, channel_id: str) -> str:
        """Close cooperatively and wait for the chain to settle it; returns the phase.
        The channel's payments are counted in the report."""
        await self.count_payments(actor, channel_id)
        await actor.api.close_channel(channel_id)

        async def closed() -> bool:
            return (await actor.api.channel(channel_id)).phase == "closed"

        await until(closed, f"the close of channel {channel_id[:10]}…")
        self.say(f"{actor.name} closed channel {channel_id[:10]}… cooperatively")
        return (await actor.api.channel(channel_id)).phase

    def show_session(self, view: SessionView, total: int) -> None:
        """Progress of a session in both directions: a reversed session keeps counting."""
        units = view.forward.units + view.backward.units
        self._progress(units, total, int(view.forward.paid) + int(view.backward.paid))

    async def watch_session(
        self, buyer: Actor, session_id: str, total: int, timeout: float = 60
    ) -> SessionView:
        """Show a session's progress until it stops with both receipts signed."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    view = await buyer.api.session(session_id)
                    self.show_session(view, total)
                    if view.stopped and view.countersigned:
                        return view
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise ScenarioFailed(
                f"session {session_id[:10]}… still running after {timeout:.0f} s"
            ) from None


class Scenario(ABC):
    """A story of machines paying each other, that checks its own outcome."""

    name: ClassVar[str]
    title: ClassVar[str]
    unit: ClassVar[str]

    @abstractmethod
    async def play(self, play: Play) -> None:
        """Run the story on `play.stage`, recording checks and numbers in `play.report`."""
