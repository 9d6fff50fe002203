"""Binding of the ServiceRegistry contract: services listed by the machines that sell
them, and the value-weighted reputation parties give each other after a session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from fractions import Fraction
from typing import Any, Final

from m2mpay.chain.binding import AbiStruct, ContractBinding, deploy_binding, signature_abi
from m2mpay.chain.hub import Closing, OnchainChannel
from m2mpay.chain.ledger import Ledger, LogEntry, Receipt
from m2mpay.crypto import (
    ZERO_ADDRESS,
    Address,
    Eip712Domain,
    PrivateKey,
    Signature,
    keccak256,
    session_receipt_digest,
)
from m2mpay.errors import ContractError

__all__ = [
    "GEOHASH_ALPHABET",
    "MAX_RATING",
    "REGISTRY_GAS",
    "Listing",
    "RatedSession",
    "RegistryEvent",
    "Score",
    "ServiceKind",
    "ServiceRegistry",
    "ServiceTerms",
    "deploy_registry",
    "listing_of",
]

# About 1.5x what each call measures with the longest strings the contract takes
# (`m2mpay bench gas`), so no transaction pays a round trip for estimation.
REGISTRY_GAS: Final = {
    "deploy": 2_500_000,
    "list_service": 120_000,
    "update_service": 100_000,
    "withdraw_service": 80_000,
    "rate": 240_000,
}
MAX_RATING: Final = 5
MAX_KIND: Final = 15  # the contract's: kinds past those named here are listed as numbers
GEOHASH_ALPHABET: Final = frozenset("0123456789bcdefghjkmnpqrstuvwxyz")
# The contract's string bounds, in bytes: longer strings would not even decode there.
_MAX_UNIT: Final = 16
_MAX_ENDPOINT: Final = 256
_MAX_LOCATION: Final = 12
_LISTING_EVENTS: Final = frozenset({"ServiceListed", "ServiceUpdated", "ServiceWithdrawn"})
_ADDRESS_FIELDS: Final = frozenset({"provider", "asset", "watcher", "rated", "rater"})


class ServiceKind(IntEnum):
    """What a listed service sells (the contract's `kind`, a uint8 up to 15)."""

    ENERGY = 0
    ACTUATION = 1
    DATA = 2
    COMPUTE = 3
    STORAGE = 4
    MOBILITY = 5


@dataclass(frozen=True, slots=True)
class ServiceTerms(AbiStruct):
    """What a listing says: checked here as the contract checks it, so a bad listing is
    refused before it costs a transaction."""

    kind: int
    unit: str
    price: int
    asset: Address  # ZERO_ADDRESS for native ETH
    endpoint: str
    location: str = ""  # a geohash; empty for a service with no place
    watcher: Address = ZERO_ADDRESS  # none

    def __post_init__(self) -> None:
        if not 0 <= self.kind <= MAX_KIND:
            raise ContractError(f"a service kind is 0 to {MAX_KIND}")
        if not 0 < len(self.unit.encode()) <= _MAX_UNIT:
            raise ContractError(f"a unit is 1 to {_MAX_UNIT} bytes")
        if not 0 < len(self.endpoint.encode()) <= _MAX_ENDPOINT:
            raise ContractError(f"an endpoint is 1 to {_MAX_ENDPOINT} bytes")
        if len(self.location) > _MAX_LOCATION or not set(self.location) <= GEOHASH_ALPHABET:
            raise ContractError(f"a location is a geohash of at most {_MAX_LOCATION} characters")
        if not 0 <= self.price < 1 << 256:
            raise ContractError("a price is a uint256")


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing as the registry holds it now."""

    listing_id: int
    provider: Address
    terms: ServiceTerms


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """A `ServiceListed`, `ServiceUpdated`, `ServiceWithdrawn` or `Rated` log, its fields
    by name, for the node to index."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int


@dataclass(frozen=True, slots=True)
class RatedSession(AbiStruct):
    """The fields of a session receipt both parties signed (the stream's `SignedReceipt`
    without its signature): (units, value, paid) each way, and when."""

    session_id: bytes
    channel_id: bytes
    forward: tuple[int, int, int]
    backward: tuple[int, int, int]
    started_ms: int
    stopped_ms: int

    def digest(self, domain: Eip712Domain) -> bytes:
        return session_receipt_digest(domain, *self.as_abi())


@dataclass(frozen=True, slots=True)
class Score:
    """An address's reputation: sum(rating * value paid), sum(value paid), ratings."""

    weighted: int
    value: int
    ratings: int

    @property
    def average(self) -> Fraction | None:
        """The value-weighted average rating, exact; None before any rating."""
        return Fraction(self.weighted, self.value) if self.value else None


class ServiceRegistry(ContractBinding):
    ARTIFACT = "ServiceRegistry"
    GAS = REGISTRY_GAS

    # -- listings

    async def list_service(self, provider: PrivateKey, terms: ServiceTerms) -> tuple[int, Receipt]:
        """List a service sold by `provider`: its listing id and the receipt."""
        receipt = await self._transact(provider, "list_service", *terms.as_abi())
        for event in self.decoded(receipt.logs):
            if event.name == "ServiceListed":
                return int(event.args["listing_id"]), receipt
        raise ContractError("the registry logged no ServiceListed for a listing")

    async def update_service(
        self, provider: PrivateKey, listing_id: int, terms: ServiceTerms
    ) -> Receipt:
        return await self._transact(provider, "update_service", listing_id, *terms.as_abi())

    async def withdraw_service(self, provider: PrivateKey, listing_id: int) -> Receipt:
        return await self._transact(provider, "withdraw_service", listing_id)

    async def provider(self, listing_id: int) -> Address | None:
        """Who listed `listing_id`; None once withdrawn (or never listed)."""
        provider = Address(await self._output("providers", listing_id))
        return None if provider == ZERO_ADDRESS else provider

    async def listing(self, listing_id: int) -> Listing | None:
        """The listing now, as its newest event says; None once withdrawn (or never made)."""
        logs = await self.ledger.get_logs(
            address=self.address, from_block=0, topics=[None, listing_id.to_bytes(32, "big")]
        )
        newest: Listing | None = None
        for event in self.decoded(logs):
            if event.name in _LISTING_EVENTS:
                newest = listing_of(event)
        return newest

    async def listing_count(self) -> int:
        return int(await self._output("listing_count"))

    async def listings(self, kind: int | None = None, *, from_block: int = 0) -> list[Listing]:
        """The listings still standing, of one kind or all, oldest first, as the events
        from `from_block` on say (the contract keeps only who listed what)."""
        standing: dict[int, Listing] = {}
        for event in await self.events(from_block):
            if event.name not in _LISTING_EVENTS:
                continue
            listing_id = event.args["listing_id"]
            listing = listing_of(event)
            if listing is None:
                standing.pop(listing_id, None)
            else:
                standing[listing_id] = listing
        return [x for x in standing.values() if kind is None or x.terms.kind == kind]

    # -- reputation

    async def rate(
        self,
        rater: PrivateKey,
        session: RatedSession,
        channel: OnchainChannel,
        signature_a: Signature,
        signature_b: Signature,
        rating: int,
        *,
        closing: Closing | None = None,
    ) -> Receipt:
        """Rate the other party of `channel` for `session`, 1 to 5, with both parties'
        signatures over the session's receipt; `channel` and `closing` (None while it is
        open) as the hub holds them now."""
        return await self._transact(
            rater,
            "rate",
            session.as_abi(),
            channel.as_abi(),
            (closing or Closing(0, 0, 0)).as_abi(),
            signature_abi(signature_a),
            signature_abi(signature_b),
            rating,
        )

    async def score(self, address: Address, asset: Address) -> Score:
        """`address`'s reputation from sessions over channels in `asset` (ZERO_ADDRESS:
        ETH); kept apart by asset, as a value is only worth its asset."""
        weighted, value, ratings = await self._output("reputation", address, asset)
        return Score(int(weighted), int(value), int(ratings))

    async def has_rated(self, channel_id: bytes, session_id: bytes, party: Address) -> bool:
        key = keccak256(channel_id + session_id)
        return bool(await self._output("rated", key, party))

    async def backed(self, channel_id: bytes, party: Address) -> int:
        """The value `party`'s ratings over the channel weigh in all (at most its deposits)."""
        return int(await self._output("backed", channel_id, party))

    async def receipt_digest(self, session: RatedSession) -> bytes:
        """The digest the contract checks signatures against, for cross-checks."""
        return bytes(await self._output("receipt_digest", session.as_abi()))

    async def hub(self) -> Address:
        return Address(await self._output("HUB"))

    # -- events

    def decoded(self, logs: Sequence[LogEntry]) -> list[RegistryEvent]:
        """The registry's events among `logs` (others' logs left out), in their order."""
        found: list[RegistryEvent] = []
        for log in logs:
            if log.address != self.address:
                continue
            event = self._abi.decode_event(log)
            if event is not None:
                args = {
                    name: Address(value) if name in _ADDRESS_FIELDS else value
                    for name, value in event.args.items()
                }
                found.append(RegistryEvent(event.name, args, log.block_number, log.log_index))
        return found

    async def events(self, from_block: int = 0) -> list[RegistryEvent]:
        """Every listing, update, withdrawal and rating logged from `from_block` on."""
        logs = await self.ledger.get_logs(address=self.address, from_block=from_block)
        return self.decoded(logs)


def listing_of(event: RegistryEvent) -> Listing | None:
    """The listing a `ServiceListed` or `ServiceUpdated` states; None after a withdrawal."""
    args = event.args
    if event.name == "ServiceWithdrawn":
        return None
    # The events name the terms' fields as the contract's arguments do.
    terms = ServiceTerms(*(args[field.name] for field in fields(ServiceTerms)))
    return Listing(args["listing_id"], args["provider"], terms)


async def deploy_registry(
    ledger: Ledger, deployer: PrivateKey, hub: Address
) -> tuple[ServiceRegistry, Receipt]:
    """Deploy a registry whose ratings take receipts of sessions over `hub`'s channels."""
    return await deploy_binding(ServiceRegistry, ledger, deployer, hub, gas=REGISTRY_GAS["deploy"])
