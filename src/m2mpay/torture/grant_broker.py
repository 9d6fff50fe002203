"""The broker phase (`grant.broker`): a feed's seller node runs its own Mosquitto, and
a plug in a process of its own (the real `m2mpay device run plug`) publishes the live
topic from outside the node, as a real device does. A buyer holds a grant and reads
it; the seller is SIGKILLed at a random moment of the grant, early in a long one (its
first 1.5 s after the reader's first message) or late in a short one (from 1.5 s
before its end to 0.3 s after), stays down a random while, and is started again on
its stores and its broker's data dir: back before the grant's end or after it. The
plug is never stopped: it publishes whenever a broker is there.

A node's broker that outlived it would go on serving the grant after its end, the
plug publishing into it, with no one left to revoke it. The facts, and what must hold:

- the broker dies with its node: gone within `BROKER_GONE_S` of the kill (fail
  closed; it is the node's to start again);
- none leaked: no message the plug published after `paid_until` plus the tolerance
  reached the reader, whether the node was back before the end or after it;
- no paid grant lost once the node is back: a grant still paid is readable on the
  restarted broker (and no client reads without a live grant);
- the session, the grant and the channel as in `grant.seller`: every paid second
  delivered and held, receipts both signed, the channel settling at the newest proofs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson

from m2mpay.bench.feed_seller import write_feed_config
from m2mpay.bench.processes import ChildProcess
from m2mpay.torture.grants import PRICE, TOLERANCE_MS, GrantCrash, grant_violation, sleep_until
from m2mpay.torture.pair import Pair
from m2mpay.torture.phase import Facts
from m2mpay.torture.sessions import session_ends
from m2mpay.torture.world import PATIENCE_S, TortureError, World, until

__all__ = ["BACK", "BROKER_GONE_S", "BrokerCrash", "PlugProcess", "broker_violation"]

BROKER_GONE_S: Final = 10.0  # generous: the kernel signals it at once, it exits in ms
BACK: Final = ("before the end", "after the end")  # when the node was back
DOWN_S: Final = 1.5  # the longest the node stays down before its restart begins
DEVICE: Final = "torture-plug"


class PlugProcess(ChildProcess):
    """`m2mpay device run plug --json` on the broker and credentials it was given;
    `online` is set while it says it is connected."""

    def __init__(self, broker: str, username: str, password_file: Path) -> None:
        argv = [
            sys.executable, "-m", "m2mpay", "device", "run", "plug", "--json",
            "--name", DEVICE, "--broker", broker, "--username", username,
            "--password-file", str(password_file),
        ]  # fmt: skip
        super().__init__(argv, kept_lines=40)
        self.online = asyncio.Event()
        self.connections = 0
        self._events: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._spawn(stdin=asyncio.subprocess.DEVNULL)
        self._events = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        # Read to the end, however long the plug runs: a full pipe would stop it.
        assert self._process is not None
        assert self._process.stdout is not None
        while line := await self._process.stdout.readline():
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                event = orjson.loads(line).get("event")
                if event == "connected":
                    self.connections += 1
                    self.online.set()
                elif event == "disconnected":
                    self.online.clear()

    async def publishing(self) -> None:
        """Until it is connected (again, after a restart of the broker)."""
        try:
            async with asyncio.timeout(PATIENCE_S):
                await self.online.wait()
        except TimeoutError:
            raise TortureError(f"the plug did not connect: {self.stderr_tail()}") from None

    async def stop(self) -> None:
        await self.kill()
        if self._events is not None:
            await self._events  # it ends with the plug's output, which the kill ends


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie no one reaped has ended)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].startswith("Z")
    except OSError:
        return False


async def _gone(pid: int, timeout: float) -> bool:
    """Whether `pid` ended within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _running(pid):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class BrokerCrash(GrantCrash):
    """Its own pair (dev accounts of its own) and the plug's process."""

    name = "grant.broker"

    def __init__(self) -> None:
        super().__init__()
        self._plug: PlugProcess | None = None

    async def setup(self, world: World) -> None:
        self._world = world
        files = world.files("broker")
        feeds = files / "seller-feed"
        write_feed_config(
            feeds,
            device=DEVICE,
            asset=world.token.address,
            price_per_hour=3600 * PRICE,
            max_seconds=600,
            publish_hz=0,  # the plug publishes from its own process
        )
        keys = world.keys
        pair = await self._start_own(
            Pair.of(world, "broker", keys.plug_buyer, keys.plug_seller, sessions=True, feeds=feeds)
        )
        self._sold = await pair.payee.call({"cmd": "feed_offer"})
        given = await pair.payee.call({"cmd": "feed_plug"})
        password_file = files / "plug.password"
        password_file.touch(mode=0o600)
        password_file.write_text(given["password"])
        self._plug = PlugProcess(given["broker"], given["username"], password_file)
        await self._plug.start()

    async def teardown(self) -> None:
        if self._plug is not None:
            await self._plug.stop()
        self._plug = None
        await super().teardown()

    def check(self, facts: Facts) -> str | None:
        return broker_violation(facts)

    async def trial(self, rng: random.Random) -> Facts:
        assert self._plug is not None
        pair = self.pair
        buyer, seller = pair.payer, pair.payee
        since = await self.world.ledger.block_number()
        channel = await pair.open()
        await self._plug.publishing()
        # Killed early in a long grant (back before its end, mostly: a restart takes
        # seconds), or in its last 1.5 s (back after the end).
        early = rng.random() < 0.5
        target = rng.randint(9, 12) if early else rng.randint(3, 5)
        buying = {"cmd": "grant_buy", **self._sold, "seconds": [target], "timeout": 90}
        [grant] = (await buyer.call(buying, timeout=120))["grants"]
        paid_until = await self._paid_until(grant["session"])
        await until(self._received, lambda n: n > 0, what="the reader's first live message")
        broker = int((await seller.call({"cmd": "feed_broker_pid"}))["pid"])
        now = time.time() * 1000
        kill_at = now + rng.uniform(0, 1_500) if early else paid_until + rng.uniform(-1_500, 300)
        await sleep_until(round(kill_at))
        killed_at = time.monotonic()
        await seller.kill()
        # Every acknowledgement the buyer holds came from the seller before it died.
        acked = await pair.acked(channel)
        facts: Facts = {"broker_outlived_node": int(not await _gone(broker, BROKER_GONE_S))}
        # Down a while, the plug trying on meanwhile; not long in a long grant, which must
        # be back before its end to be found readable.
        await asyncio.sleep(rng.uniform(0.0, 0.5 if early else DOWN_S))
        await seller.start()
        back = time.time() * 1000 >= paid_until
        down_ms = round((time.monotonic() - killed_at) * 1000)
        audit = await seller.call({"cmd": "feed_audit", "tolerance_ms": TOLERANCE_MS})
        facts |= {
            "moment": int(back),
            "target": target,
            "down_ms": down_ms,
            "acked": acked,
            "restored": await pair.total("payee", channel),
            "readable_after_restart": len(audit["readable_without_grant"]),
            "lost_grants": len(audit["unreadable_with_grant"]),
        }
        facts |= await session_ends(grant["session"], {"bought": buyer, "sold": seller})
        facts |= await self._after_the_end(grant["session"], int(grant["suback_ms"]))
        return facts | await pair.settled_facts(channel, since)

    async def _received(self) -> int:
        readers: list[dict[str, Any]] = (await self.pair.payer.call({"cmd": "grant_readers"}))[
            "readers"
        ]
        return sum(len(reader["received"]) for reader in readers)


def broker_violation(facts: Facts) -> str | None:
    """The broker's invariants (see the module docstring), then `grant.seller`'s."""
    back = BACK[facts["moment"]]
    if facts["broker_outlived_node"]:
        return (
            f"the seller's broker outlived its node by more than {BROKER_GONE_S:g} s (back {back})"
        )
    if facts["lost_grants"]:
        return (
            f"{facts['lost_grants']} grant(s) still paid could not read the live topic once "
            f"the node was back ({back})"
        )
    return grant_violation(facts, BACK)
