"""`ev-charging-malicious`: a car charges and pays, the charger goes offline, and the
car's owner takes the car's key to close the channel on chain with the opening
state, as if it had never paid. The charger's watcher, which its node kept handing
the newest proofs, challenges with the car's own signature; after the challenge
period the channel settles at what was really paid, and the charger, back online,
finds it on chain."""

from __future__ import annotations

from typing import Final

from m2mpay.chain.events import ChannelChallenged, ChannelOpened, ChannelSettled
from m2mpay.chain.hub import ChannelHub, OnchainChannel
from m2mpay.errors import M2MPayError
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.ev_charging import TOKEN, charger_outlet
from m2mpay.scenarios.stage import ScenarioFailed, until
from m2mpay.watcher_client.client import WatcherClient

__all__ = ["MaliciousCar"]

WH: Final = 2_000
CHALLENGE_PERIOD_S: Final = 600


class MaliciousCar(Scenario):
    name = "ev-charging-malicious"
    title = "A car closes with an old state; the watcher defends the charger"
    unit = "Wh"

    async def play(self, play: Play) -> None:  # noqa: PLR0915 (one story, told in order)
        stage = play.stage
        watcher = await stage.watcher()
        watcher_url = str(watcher.ready["url"])
        play.say(f"watcher {str(watcher.ready['address'])[:10]}… serves at {watcher_url}")
        charger = await stage.actor("charger", "--watcher", watcher_url)
        car = await stage.actor("car")
        await play.party(car)
        await play.party(charger)
        hub = ChannelHub(stage.ledger, stage.deployment.hub)
        first_block = await stage.ledger.block_number()

        outlet, offer = await charger_outlet(play, charger)
        opened = await car.api.open_channel(
            charger.address,
            5 * TOKEN,
            endpoint=charger.endpoint,
            challenge_period=CHALLENGE_PERIOD_S,
        )
        play.say(f"car opens channel {opened.channel_id[:10]}… ({CHALLENGE_PERIOD_S} s to dispute)")
        session = await car.api.start_session(offer, channel_id=opened.channel_id, target_units=WH)
        bought = await play.watch_session(car, session.session_id, WH)
        await outlet.stop()  # the charger goes offline with its outlet
        paid = int(bought.forward.paid)
        play.report.units = bought.forward.units
        play.report.paid = paid
        play.say(f"car charged {bought.forward.units} Wh and paid {paid / TOKEN:.4f} tokens")

        async with WatcherClient(watcher_url) as tower:

            async def holds_newest() -> bool:
                try:
                    held = await tower.channel(opened.channel_id)
                except M2MPayError:
                    return False  # not registered yet
                return any(int(p["held_transferred"] or 0) >= paid for p in held["parties"])

            await until(holds_newest, "the watcher to hold the car's newest proof")
            await charger.stop()
            play.say("charger goes offline")
            await play.count_payments(car, opened.channel_id)
            car_key = car.key()
            await car.stop()
            channel = await _onchain_channel(hub, first_block, bytes.fromhex(opened.channel_id[2:]))
            close = await hub.close(car_key, channel, 0, 0, None)
            play.say(
                f"car's owner closes on chain claiming it paid nothing (block {close.block_number})"
            )

            async def challenged() -> bool:
                events = await hub.events(close.block_number)
                return any(isinstance(e, ChannelChallenged) for e in events)

            await until(challenged, "the watcher's challenge")
            [challenge] = [
                e for e in await hub.events(close.block_number) if isinstance(e, ChannelChallenged)
            ]
            play.say(
                f"watcher challenges with the car's proof of {challenge.transferred_a / TOKEN:.4f}"
            )
            await stage.ledger.advance_time(CHALLENGE_PERIOD_S + 1)
            play.say(f"{CHALLENGE_PERIOD_S} s of chain time pass: the challenge period is over")

            async def settled() -> bool:
                return await hub.is_settled(channel.id)

            await until(settled, "the settlement after the challenge period")
            disputes = await tower.disputes()
        await charger.restart()

        async def charger_sees_it() -> bool:
            view = await charger.api.channel(opened.channel_id)
            return view.phase in ("settled", "closed")

        await until(charger_sees_it, "the charger, back online, to see the settlement")
        view = await charger.api.channel(opened.channel_id)
        got = int(view.final_balance_mine or 0) / TOKEN
        play.say(f"charger is back: channel {view.phase}, it got {got:.4f} tokens")

        await play.settle_balances()
        car_row, charger_row = play.report.parties
        play.report.extra["disputes"] = ", ".join(f"{d['kind']} ({d['status']})" for d in disputes)
        play.equal("stop reason", bought.stop_reason, "target reached")
        play.equal(
            "challenger is the watcher", challenge.challenger.checksum, watcher.ready["address"]
        )
        play.equal("challenge restores what the car paid", challenge.transferred_a, paid)
        play.equal("charger's tokens on chain", charger_row.change, paid)
        play.equal("car's tokens on chain", car_row.change, -paid)
        events = await hub.events(close.block_number)
        play.check("settled on chain", any(isinstance(e, ChannelSettled) for e in events), "")


async def _onchain_channel(hub: ChannelHub, from_block: int, channel_id: bytes) -> OnchainChannel:
    """The channel's on-chain parameters, from its ChannelOpened event."""
    for event in await hub.events(from_block):
        if isinstance(event, ChannelOpened) and event.channel_id == channel_id:
            return OnchainChannel(
                event.a, event.b, event.token, event.challenge_period, event.nonce, event.deposit_a
            )
    raise ScenarioFailed(f"no ChannelOpened for 0x{channel_id.hex()}")
