"""The ServiceRegistry's part of `m2mpay bench gas`: a listing and a rating, read from
their receipts."""

from __future__ import annotations

from typing import Final

from m2mpay.chain.hub import ChannelHub, OnchainChannel
from m2mpay.chain.registry import RatedSession, ServiceKind, ServiceTerms, deploy_registry
from m2mpay.crypto import PrivateKey

__all__ = ["measure_registry_gas"]

# A charger as a node would list it: an endpoint of two URLs, a 9-character geohash
# (about 5 m), a watcher.
_ENDPOINT: Final = "https://charger-17.example.net/v1 wss://charger-17.example.net/peer"
_LOCATION: Final = "u33dc0cpp"


async def measure_registry_gas(
    hub: ChannelHub,
    owner: PrivateKey,
    buyer: PrivateKey,
    seller: PrivateKey,
    channel: OnchainChannel,
) -> dict[str, int]:
    """`registry_list`: the seller's first listing; `rate`: the buyer's first rating of the
    seller, for a session over `channel` (buyer → seller, open on `hub`)."""
    ledger = hub.ledger
    registry, _ = await deploy_registry(ledger, owner, hub.address)
    terms = ServiceTerms(
        ServiceKind.ENERGY, "Wh", 25, channel.token, _ENDPOINT, _LOCATION, owner.address
    )
    _, listed = await registry.list_service(seller, terms)
    session = RatedSession(
        (1).to_bytes(32, "big"), channel.id, (1_000, 25_000, 25_000), (0, 0, 0), 1, 60_001
    )
    digest = session.digest(hub.domain)
    signatures = (buyer.sign_digest(digest), seller.sign_digest(digest))
    if channel.a != buyer.address:
        signatures = signatures[::-1]
    rated = await registry.rate(buyer, session, channel, *signatures, 5)
    return {"registry_list": listed.gas_used, "rate": rated.gas_used}
