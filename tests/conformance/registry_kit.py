"""What the registry's conformance tests share: a registry on the world's hub, a
session over one of its channels, and the receipt signed by whom a test chooses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m2mpay.chain import OnchainChannel
from m2mpay.chain.registry import RatedSession, ServiceRegistry, deploy_registry
from m2mpay.crypto import Address, PrivateKey, Signature, channel_domain
from tests.conftest import World

_sessions = iter(range(1, 10**9))


@dataclass
class Market:
    world: World
    registry: ServiceRegistry
    channel: OnchainChannel  # alice → bob on the world's hub

    @property
    def token(self) -> Address:
        """The asset of the channel, which scores are kept in."""
        return self.channel.token

    def session(self, paid_forward: int = 300, paid_backward: int = 0) -> RatedSession:
        """A fresh session over the channel, with what each direction paid."""
        number = next(_sessions)
        return RatedSession(
            number.to_bytes(32, "big"),
            self.channel.id,
            (3, paid_forward, paid_forward),
            (0, paid_backward, paid_backward),
            1_000 * number,
            1_000 * number + 500,
        )

    def sign(
        self,
        signer: PrivateKey,
        session: RatedSession,
        *,
        chain_id: int | None = None,
        hub: Any = None,
    ) -> Signature:
        """`signer`'s signature over the receipt, in the hub's domain unless told another."""
        domain = channel_domain(
            self.world.ledger.chain_id if chain_id is None else chain_id,
            self.world.hub.address if hub is None else hub,
        )
        return signer.sign_digest(session.digest(domain))

    def both(self, session: RatedSession) -> tuple[Signature, Signature]:
        return self.sign(self.world.alice, session), self.sign(self.world.bob, session)


async def market_of(world: World) -> Market:
    registry, _ = await deploy_registry(world.ledger, world.owner, world.hub.address)
    return Market(world, registry, await world.channel())
