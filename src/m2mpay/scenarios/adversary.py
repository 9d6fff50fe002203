"""The one place a scenario cheats on chain: an owner gone rogue.

Every other step of every scenario goes through the public interfaces a real
user has (the SDK, HTTP, the device bus). A dispute, though, needs a party that
closes a channel with a state older than what it paid, and no honest interface
does that: a node closes with the newest proofs it holds. So the rogue owner takes
its node's key out of the keystore and sends the stale close to the hub itself,
then reads the hub's events to see how the defence answered. Gathered here so that
the scenarios show at a glance where they leave the public interfaces, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from m2mpay.chain.events import ChannelChallenged, ChannelOpened, ChannelSettled, HubEvent
from m2mpay.chain.hub import ChannelHub, OnchainChannel
from m2mpay.crypto import PrivateKey
from m2mpay.crypto.keystore import find_keystore, load_keystore
from m2mpay.scenarios.stage import PASSPHRASE, Actor, ScenarioFailed, Stage, until

__all__ = ["RogueOwner"]

_Event = TypeVar("_Event", bound=HubEvent)


def _stolen_key(actor: Actor) -> PrivateKey:
    """The node's own key, from its keystore: only an owner gone rogue needs it."""
    path = find_keystore(actor.process.data_dir / "keystore")
    if path is None:
        raise ScenarioFailed(f"{actor.name} has no keystore")
    return load_keystore(path, PASSPHRASE)


@dataclass
class RogueOwner:
    """Watches the hub from `since_block` on (before the channel it will cheat on is
    opened) and, once its node is offline, closes with a stale state."""

    hub: ChannelHub
    since_block: int
    close_block: int = 0

    @classmethod
    async def watching(cls, stage: Stage) -> RogueOwner:
        hub = ChannelHub(stage.ledger, stage.deployment.hub)
        return cls(hub, await stage.ledger.block_number())

    async def close_stale(self, owner: Actor, channel_id: str) -> int:
        """Close the channel on chain with `owner`'s key claiming nobody paid anybody;
        returns the close's block."""
        opened = bytes.fromhex(channel_id.removeprefix("0x"))
        channel = await _onchain_channel(self.hub, self.since_block, opened)
        close = await self.hub.close(_stolen_key(owner), channel, 0, 0, None)
        self.close_block = close.block_number
        return self.close_block

    async def challenge(self) -> ChannelChallenged:
        """The challenge of the stale close, once it is on chain."""

        async def challenged() -> bool:
            return bool(await self._since_close(ChannelChallenged))

        await until(challenged, "the watcher's challenge")
        [challenge] = await self._since_close(ChannelChallenged)
        return challenge

    async def until_settled(self, channel_id: str) -> None:
        channel = bytes.fromhex(channel_id.removeprefix("0x"))

        async def settled() -> bool:
            return await self.hub.is_settled(channel)

        await until(settled, "the settlement after the challenge period")

    async def settled_on_chain(self) -> bool:
        return bool(await self._since_close(ChannelSettled))

    async def _since_close(self, kind: type[_Event]) -> list[_Event]:
        return [e for e in await self.hub.events(self.close_block) if isinstance(e, kind)]


async def _onchain_channel(hub: ChannelHub, from_block: int, channel_id: bytes) -> OnchainChannel:
    """The channel's on-chain parameters, from its ChannelOpened event."""
    for event in await hub.events(from_block):
        if isinstance(event, ChannelOpened) and event.channel_id == channel_id:
            return OnchainChannel(
                event.a, event.b, event.token, event.challenge_period, event.nonce, event.deposit_a
            )
    raise ScenarioFailed(f"no ChannelOpened for 0x{channel_id.hex()}")
