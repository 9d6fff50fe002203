"""`ev-charging-malicious`: a car charges and pays, the charger goes offline, and the
car's owner takes the car's key to close the channel on chain with the opening
state, as if it had never paid. The charger's watcher, which its node kept handing
the newest proofs, challenges with the car's own signature; after the challenge
period the channel settles at what was really paid, and the charger, back online,
finds it on chain."""

from __future__ import annotations

from typing import Final

from m2mpay.errors import M2MPayError
from m2mpay.scenarios.adversary import RogueOwner
from m2mpay.scenarios.base import Play, Scenario
from m2mpay.scenarios.ev_charging import TOKEN, charger_outlet
from m2mpay.scenarios.stage import until
from m2mpay.watcher_client.client import WatcherClient

__all__ = ["MaliciousCar"]

WH: Final = 2_000
CHALLENGE_PERIOD_S: Final = 600


class MaliciousCar(Scenario):
    name = "ev-charging-malicious"
    title = "A car closes with an old state; the watcher defends the charger"
    unit = "Wh"

    async def play(self, play: Play) -> None:
        stage = play.stage
        watcher = await stage.watcher()
        watcher_url = str(watcher.ready["url"])
        play.say(f"watcher {str(watcher.ready['address'])[:10]}… serves at {watcher_url}")
        car, charger = await play.cast(
            "car", "charger", extra={"charger": ["--watcher", watcher_url]}
        )
        rogue = await RogueOwner.watching(stage)  # the car's owner, once it goes rogue

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
            await car.stop()
            close_block = await rogue.close_stale(car, opened.channel_id)
            play.say(f"car's owner closes on chain claiming it paid nothing (block {close_block})")
            challenge = await rogue.challenge()
            play.say(
                f"watcher challenges with the car's proof of {challenge.transferred_a / TOKEN:.4f}"
            )
            await stage.pass_chain_time(CHALLENGE_PERIOD_S + 1)
            play.say(f"{CHALLENGE_PERIOD_S} s of chain time pass: the challenge period is over")
            await rogue.until_settled(opened.channel_id)
            disputes = await tower.disputes()
        await charger.restart()

        async def charger_sees_it() -> bool:
            view = await charger.api.channel(opened.channel_id)
            return view.phase in ("settled", "closed")

        await until(charger_sees_it, "the charger, back online, to see the settlement")
        view = await charger.api.channel(opened.channel_id)
        got = int(view.final_balance_mine or 0) / TOKEN
        play.say(f"charger is back: channel {view.phase}, it got {got:.4f} tokens")

        play.report.extra["disputes"] = ", ".join(f"{d['kind']} ({d['status']})" for d in disputes)
        play.equal("stop reason", bought.stop_reason, "target reached")
        play.equal(
            "challenger is the watcher", challenge.challenger.checksum, watcher.ready["address"]
        )
        play.equal("challenge restores what the car paid", challenge.transferred_a, paid)
        await play.check_balances({"charger": paid, "car": -paid})
        play.check("settled on chain", await rogue.settled_on_chain(), "")
