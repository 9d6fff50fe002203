"""The market's events decoded into plain records: the TokenFactory's `TokenCreated` and
the Exchange's `PoolCreated`, `Swapped`, `LiquidityAdded` and `LiquidityRemoved`. Pure:
no I/O, no clock.

A log of another kind (or another contract's, when the emitter is named) decodes to
None; a log that claims to be one of these events but does not hold its fields (topics
too short, data cut, padding that is not zero, a name that is not UTF-8) raises
`MalformedEvent`, never a decoder's own error: logs come from the chain, and an
explorer reads whatever a ledger serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eth_abi.exceptions import DecodingError

from m2mpay.chain.artifacts import load_artifact
from m2mpay.chain.ledger import LogEntry
from m2mpay.crypto import Address
from m2mpay.errors import CryptoError, MalformedEvent

__all__ = [
    "NO_MINT_OWNER",
    "CreatedToken",
    "ExchangeEvent",
    "LiquidityAdded",
    "LiquidityRemoved",
    "PoolCreated",
    "Swapped",
    "decode_exchange_event",
    "decode_factory_event",
]

NO_MINT_OWNER: Final = Address(bytes(20))  # the mint owner that disables minting for ever


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A `TokenCreated` event: a token the factory made, and how."""

    token: Address
    creator: Address
    name: str
    symbol: str
    decimals: int
    supply: int
    holder: Address
    mint_owner: Address | None  # None: no one may mint
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True, slots=True)
class ExchangeEvent:
    """Where an Exchange event was logged; `pool` is the pool's id (keccak of its pair)."""

    block_number: int
    tx_hash: bytes
    log_index: int
    pool: bytes


@dataclass(frozen=True, slots=True)
class PoolCreated(ExchangeEvent):
    token0: Address  # the zero address (ETH) or the lower of two tokens
    token1: Address


@dataclass(frozen=True, slots=True)
class Swapped(ExchangeEvent):
    trader: Address
    receiver: Address
    token_in: Address
    amount_in: int
    amount_out: int
    reserve0: int  # the pool's reserves after the swap
    reserve1: int


@dataclass(frozen=True, slots=True)
class LiquidityAdded(ExchangeEvent):
    provider: Address
    amount0: int
    amount1: int
    shares: int  # minted to the provider
    reserve0: int
    reserve1: int


@dataclass(frozen=True, slots=True)
class LiquidityRemoved(ExchangeEvent):
    provider: Address
    amount0: int
    amount1: int
    shares: int  # burned
    reserve0: int
    reserve1: int


_EXCHANGE_EVENTS: Final[dict[str, type[ExchangeEvent]]] = {
    cls.__name__: cls for cls in (PoolCreated, Swapped, LiquidityAdded, LiquidityRemoved)
}
_TEXTS: Final = frozenset({"name", "symbol"})  # strings that are not addresses


def _decoded(artifact: str, log: LogEntry) -> tuple[str, dict[str, Any]] | None:
    try:
        event = load_artifact(artifact).interface.decode_event(log)
    except (DecodingError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise MalformedEvent(f"a log of {artifact}'s event does not decode: {exc}") from None
    if event is None:
        return None
    try:
        args = {
            name: value if name in _TEXTS or not isinstance(value, str) else Address(value)
            for name, value in event.args.items()
        }
    except CryptoError as exc:
        raise MalformedEvent(f"{event.name}: {exc}") from None
    return event.name, args


def _where(log: LogEntry) -> dict[str, Any]:
    return {"block_number": log.block_number, "tx_hash": log.tx_hash, "log_index": log.log_index}


def decode_factory_event(log: LogEntry, factory: Address | None = None) -> CreatedToken | None:
    """The token a `TokenCreated` log announces; None for other logs (and for logs of
    another emitter than `factory`, when given)."""
    if factory is not None and log.address != factory:
        return None
    found = _decoded("TokenFactory", log)
    if found is None or found[0] != "TokenCreated":
        return None
    args = found[1]
    mint_owner = args.pop("mint_owner")
    return CreatedToken(
        **args, mint_owner=None if mint_owner == NO_MINT_OWNER else mint_owner, **_where(log)
    )


def decode_exchange_event(log: LogEntry, exchange: Address | None = None) -> ExchangeEvent | None:
    """The record of an Exchange log; None for other logs (and for logs of another
    emitter than `exchange`, when given)."""
    if exchange is not None and log.address != exchange:
        return None
    found = _decoded("Exchange", log)
    if found is None:
        return None
    name, args = found
    kind = _EXCHANGE_EVENTS.get(name)
    return None if kind is None else kind(**args, **_where(log))
