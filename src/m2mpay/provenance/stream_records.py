"""What a provenance stream's messages say: a small closed set of typed records.

A record travels as canonical JSON: the `m2mpay.plain` text form of the dataclass (its
type in `t`; bytes as 0x-hex; addresses EIP-55; amounts as decimal strings; counts and
milliseconds as JSON numbers below 2**53, which a JavaScript number holds exactly) with
keys sorted and no spaces: the bytes JavaScript's `JSON.stringify` gives for the parsed
record with its keys sorted (tests/provenance/test_stream_webcrypto.py checks it in
Node). A payload that is not the canonical form of a record of this set is refused, so
one record has one encoding, in Python and in a browser alike.

The records: the session a stream belongs to (`SessionRecord`), a price (`PriceRecord`),
a meter reading (`MeterRecord`), a payment received (`PaymentRecord`), the final
countersigned receipt (`ReceiptRecord`), a note (`NoteRecord`); and, for a stream of
subscribers, an epoch's key wrapped for each of them (`KeyGrant`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import orjson

from m2mpay.crypto import (
    Address,
    Signature,
    channel_domain,
    recover_signer,
    session_receipt_digest,
)
from m2mpay.errors import CryptoError, MalformedMessage, ProvenanceError
from m2mpay.plain import Blob, Bytes32, Text, Uint53, Uint256, from_plain, plain_type, to_plain
from m2mpay.provenance.stream_format import MAX_PAYLOAD_SIZE, StreamInvalid

__all__ = [
    "MAX_WRAPS",
    "KeyGrant",
    "KeyWrap",
    "MeterRecord",
    "MeterUnit",
    "NoteRecord",
    "PaymentRecord",
    "PriceRecord",
    "ReceiptRecord",
    "SessionRecord",
    "StreamRecord",
    "Totals",
    "decode_key_grant",
    "decode_record",
    "encode_payload",
]

MAX_WRAPS: Final = 64  # subscribers in one keys message: it stays under the payload bound
WRAPPED_SIZE: Final = 48  # a 32-byte key and its 16-byte tag


class MeterUnit(enum.Enum):
    WH = "Wh"  # energy, as OCPP's Energy.Active.Import.Register counts it
    SECOND = "s"  # a lamp lit, a relay closed
    MESSAGE = "message"  # a data feed


@plain_type("prov.session")
@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The metered session a stream records: its channel, chain and who pays whom."""

    session: Bytes32
    channel: Bytes32
    chain_id: Uint53
    hub: Address
    pay_to: Address
    buyer: Address
    unit: MeterUnit


@plain_type("prov.price")
@dataclass(frozen=True, slots=True)
class PriceRecord:
    """A price from now on: `price` smallest units of `token` per `unit`."""

    unit: MeterUnit
    price: Uint256
    token: Address


@plain_type("prov.meter")
@dataclass(frozen=True, slots=True)
class MeterRecord:
    """A reading: `delta` units over the last `interval_ms`, `total` the register."""

    unit: MeterUnit
    delta: Uint53
    total: Uint53
    interval_ms: Uint53


@plain_type("prov.payment")
@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment received: `amount` now, `transferred` the channel's running total."""

    channel: Bytes32
    payer: Address
    amount: Uint256
    transferred: Uint256


@dataclass(frozen=True, slots=True)
class Totals:
    units: Uint256
    value: Uint256
    paid: Uint256


@plain_type("prov.receipt")
@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """A session's final receipt with the parties' EIP-712 signatures over it."""

    session: Bytes32
    channel: Bytes32
    chain_id: Uint53
    hub: Address
    forward: Totals
    backward: Totals
    started_ms: Uint53
    stopped_ms: Uint53
    signatures: tuple[Signature, ...]

    def signers(self) -> tuple[Address, ...]:
        """Who signed this receipt, recovered from its signatures (as the hub would)."""
        digest = session_receipt_digest(
            channel_domain(self.chain_id, self.hub),
            self.session,
            self.channel,
            (self.forward.units, self.forward.value, self.forward.paid),
            (self.backward.units, self.backward.value, self.backward.paid),
            self.started_ms,
            self.stopped_ms,
        )
        return tuple(recover_signer(digest, s) for s in self.signatures)


@plain_type("prov.note")
@dataclass(frozen=True, slots=True)
class NoteRecord:
    text: Text


StreamRecord = (
    SessionRecord | PriceRecord | MeterRecord | PaymentRecord | ReceiptRecord | NoteRecord
)
_RECORD_TYPES: Final = (
    SessionRecord,
    PriceRecord,
    MeterRecord,
    PaymentRecord,
    ReceiptRecord,
    NoteRecord,
)


@dataclass(frozen=True, slots=True)
class KeyWrap:
    """An epoch's key for one subscriber (its X25519 public key)."""

    subscriber: Bytes32
    wrapped: Blob  # WRAPPED_SIZE bytes


@plain_type("prov.keys")
@dataclass(frozen=True, slots=True)
class KeyGrant:
    """An epoch's key, wrapped for each subscriber against one ephemeral X25519 key."""

    ephemeral: Bytes32
    wraps: tuple[KeyWrap, ...]


def encode_payload(value: StreamRecord | KeyGrant) -> bytes:
    """The canonical JSON of a record or a key grant; `ProvenanceError("bad_record")`
    for text JSON cannot carry (a lone surrogate)."""
    try:
        return orjson.dumps(to_plain(value, binary=False), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ProvenanceError("bad_record", f"the record is not JSON text: {exc}") from None


def _decode(data: bytes, allowed: tuple[type, ...], what: str) -> object:
    if len(data) > MAX_PAYLOAD_SIZE:  # before any parsing: memory stays bounded
        raise StreamInvalid("bad_payload", f"a {what} is at most {MAX_PAYLOAD_SIZE} bytes")
    try:
        value = from_plain(orjson.loads(data))
    except (orjson.JSONDecodeError, MalformedMessage, CryptoError, ValueError, TypeError) as exc:
        raise StreamInvalid("bad_payload", f"not a {what}: {exc}") from None
    if not isinstance(value, allowed):
        raise StreamInvalid("bad_payload", f"a {type(value).__name__} is not a {what}")
    if encode_payload(value) != data:  # type: ignore[arg-type]
        raise StreamInvalid("bad_payload", f"the {what} is not in its canonical JSON form")
    return value


def decode_record(data: bytes) -> StreamRecord:
    """The record a payload holds; `StreamInvalid("bad_payload")` if it holds none."""
    return _decode(data, _RECORD_TYPES, "record")  # type: ignore[return-value]


def decode_key_grant(data: bytes) -> KeyGrant:
    """The key grant a keys message holds; `StreamInvalid("bad_payload")` if none."""
    grant = _decode(data, (KeyGrant,), "key grant")
    assert isinstance(grant, KeyGrant)
    if len(grant.wraps) > MAX_WRAPS or any(len(w.wrapped) != WRAPPED_SIZE for w in grant.wraps):
        raise StreamInvalid(
            "bad_payload", f"a key grant holds at most {MAX_WRAPS} wraps of {WRAPPED_SIZE} bytes"
        )
    return grant
