"""Provenance streams in bytes, format version 1: the root (the announcement) and the
messages, what is hashed and what is signed.

A JavaScript reader must verify these bytes exactly as Python does, so every field has a
fixed place and width (big-endian integers a `DataView` reads) and nothing is ever
re-encoded: hashes and signatures are taken over the bytes as they arrive.

Root, the stream's announcement::

    "M2PR" (4) | version = 1 (1) | author address (20) | access (1: 0 public,
    1 restricted, 2 subscribers) | created_ms (8) | nonce (32) | purpose length (1, 1..64)
    | purpose (printable ASCII) | link count (1, 0..8) | links (32 each: the ids of the
    upstream streams this one resells) | signature (65)

    stream id = keccak256(the root without its signature)

Message::

    "M2PM" (4) | version = 1 (1) | stream id (32) | index (8) | prev (32: the hash of the
    message before, the stream id for index 0) | timestamp_ms (8) | key epoch (4) | kind
    (1: 0 a record, 1 keys for subscribers) | signer address (20) | payload length (4)
    | payload (0..16,512) | signature (65)

    header = its first 114 bytes (the associated data of an encrypted payload)
    message hash = keccak256(the message without its signature)

Signatures are Ethereum's recoverable secp256k1 form, r (32) | s (32, low half) | v (27
or 28), over ``keccak256(b"\\x19m2mpay/provenance/v1" | hash)`` where hash is the stream
id (root) or the message hash; the 0x19 prefix keeps the digest from ever being that of
a transaction or of another m2mpay statement. The signer recovered from a message must
be its `signer` field (else the bytes are not what was signed: `bad_signature`) and the
root's author (else `wrong_author`).

A payload is a record as canonical JSON (`m2mpay.provenance.stream_records`), in the
clear for a public stream, else sealed (`m2mpay.provenance.stream_crypto`). Decoding here
checks only the frame; what the fields mean is checked once the signature holds
(`m2mpay.provenance.stream_verify`), so a flipped byte is named as such.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Final

from m2mpay.crypto import Address, PrivateKey, keccak256
from m2mpay.errors import ProvenanceError

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAX_LINKS",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_PURPOSE",
    "MAX_ROOT_SIZE",
    "SIGNATURE_SIZE",
    "AccessMode",
    "MessageKind",
    "StreamInvalid",
    "StreamMessage",
    "StreamRoot",
    "decode_message",
    "decode_root",
    "make_message",
    "make_root",
    "signing_digest",
]

FORMAT_VERSION: Final = 1
ROOT_MAGIC: Final = b"M2PR"
MESSAGE_MAGIC: Final = b"M2PM"
SIGN_DOMAIN: Final = b"\x19m2mpay/provenance/v1"
SIGNATURE_SIZE: Final = 65
MAX_PURPOSE: Final = 64
MAX_LINKS: Final = 8
MAX_PAYLOAD_SIZE: Final = 16 * 1024 + 128  # a record of 16 KiB, sealed
HEADER_SIZE: Final = 114
MAX_MESSAGE_SIZE: Final = HEADER_SIZE + MAX_PAYLOAD_SIZE + SIGNATURE_SIZE
_ROOT_FIXED: Final = 4 + 1 + 20 + 1 + 8 + 32 + 1  # up to the purpose
MAX_ROOT_SIZE: Final = _ROOT_FIXED + MAX_PURPOSE + 1 + 32 * MAX_LINKS + SIGNATURE_SIZE
_MIN_ROOT_SIZE: Final = _ROOT_FIXED + 1 + 1 + SIGNATURE_SIZE
_HEADER: Final = struct.Struct(">4sB32sQ32sQIB20sI")
_ROOT_HEAD: Final = struct.Struct(">4sB20sBQ32sB")
_UINT64: Final = 1 << 64
_UINT32: Final = 1 << 32


class AccessMode(enum.IntEnum):
    """Who reads a stream's payloads: anyone; whoever holds its key (a QR code); or
    the subscribers its key is wrapped for, epoch by epoch."""

    PUBLIC = 0
    RESTRICTED = 1
    SUBSCRIBERS = 2


class MessageKind(enum.IntEnum):
    RECORD = 0  # a record (`stream_records.StreamRecord`), sealed unless public
    KEYS = 1  # an epoch's key wrapped for subscribers (`KeyGrant`), always in the clear


class StreamInvalid(ProvenanceError):
    """Bytes that are not a stream, or a stream that does not verify; `code` is the
    problem's name (`stream_verify.Problem` lists them)."""


def signing_digest(hashed: bytes) -> bytes:
    """What the author signs for a root (its stream id) or a message (its hash)."""
    return keccak256(SIGN_DOMAIN + hashed)


def _printable(text: str) -> bool:
    return 0 < len(text) <= MAX_PURPOSE and all(" " <= ch <= "~" for ch in text)


@dataclass(frozen=True, slots=True)
class StreamRoot:
    """A stream's announcement, as decoded (its meaning checked by `verify`)."""

    author: Address
    access: int  # an `AccessMode` once verified
    created_ms: int
    nonce: bytes
    purpose: str
    links: tuple[bytes, ...]
    signature: bytes
    raw: bytes = field(repr=False)
    stream_id: bytes = field(repr=False)

    @property
    def mode(self) -> AccessMode:
        return AccessMode(self.access)


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message, as decoded (its signature and place checked by `verify`)."""

    stream_id: bytes
    index: int
    prev: bytes
    timestamp_ms: int
    epoch: int
    kind: int  # a `MessageKind` once verified
    signer: Address
    payload: bytes
    signature: bytes
    raw: bytes = field(repr=False)
    hash: bytes = field(repr=False)

    @property
    def header(self) -> bytes:
        return self.raw[:HEADER_SIZE]


def _fail(code: str, detail: str) -> StreamInvalid:
    return StreamInvalid(code, detail)


def _check_frame(data: bytes, magic: bytes, what: str, least: int, most: int) -> None:
    if not isinstance(data, bytes):
        raise _fail("malformed", f"a {what} is bytes, not {type(data).__name__}")
    if len(data) > most:
        raise _fail("malformed", f"a {what} is at most {most} bytes, got {len(data)}")
    if data[:4] != magic[: len(data)]:
        raise _fail("malformed", f"not a provenance stream {what} (magic {data[:4]!r})")
    if len(data) >= 5 and data[4] != FORMAT_VERSION:
        raise _fail("unknown_version", f"{what} format version {data[4]}; this reads 1")
    if len(data) < least:
        raise _fail("truncated", f"a {what} is at least {least} bytes, got {len(data)}")


def decode_root(data: bytes) -> StreamRoot:
    """The root in `data`; `StreamInvalid` (malformed, unknown_version, truncated) if
    its frame is not one."""
    _check_frame(data, ROOT_MAGIC, "root", _MIN_ROOT_SIZE, MAX_ROOT_SIZE)
    _, _, author, access, created_ms, nonce, size = _ROOT_HEAD.unpack_from(data)
    at = _ROOT_FIXED
    if not 0 < size <= MAX_PURPOSE:
        raise _fail("malformed", f"a purpose is 1 to {MAX_PURPOSE} bytes, got {size}")
    purpose_bytes = data[at : at + size]
    at += size
    if at >= len(data):
        raise _fail("truncated", "the root ends inside its purpose")
    links_count = data[at]
    at += 1
    if links_count > MAX_LINKS:
        raise _fail("malformed", f"a root links at most {MAX_LINKS} streams, got {links_count}")
    body_size = at + 32 * links_count
    if len(data) != body_size + SIGNATURE_SIZE:
        code = "truncated" if len(data) < body_size + SIGNATURE_SIZE else "malformed"
        raise _fail(code, f"a root of this purpose and links is {body_size + 65} bytes")
    links = tuple(data[i : i + 32] for i in range(at, body_size, 32))
    return StreamRoot(
        Address(author),
        access,
        created_ms,
        nonce,
        purpose_bytes.decode("latin-1"),  # checked to be printable ASCII by `verify`
        links,
        data[body_size:],
        data,
        keccak256(data[:body_size]),
    )


def make_root(
    author: PrivateKey,
    access: AccessMode,
    purpose: str,
    created_ms: int,
    nonce: bytes,
    links: tuple[bytes, ...] = (),
) -> StreamRoot:
    """A new root, signed by `author`."""
    if not _printable(purpose):
        raise ValueError(f"a purpose is 1 to {MAX_PURPOSE} printable ASCII characters")
    if len(nonce) != 32 or len(links) > MAX_LINKS or any(len(link) != 32 for link in links):
        raise ValueError(f"a nonce is 32 bytes, links at most {MAX_LINKS} ids of 32 bytes")
    if not 0 <= created_ms < _UINT64:
        raise ValueError("created_ms is an unsigned 64-bit integer")
    body = (
        _ROOT_HEAD.pack(
            ROOT_MAGIC,
            FORMAT_VERSION,
            bytes(author.address),
            int(access),
            created_ms,
            nonce,
            len(purpose),
        )
        + purpose.encode("ascii")
        + bytes([len(links)])
        + b"".join(links)
    )
    signature = author.sign_digest(signing_digest(keccak256(body)))
    return decode_root(body + bytes(signature))


def decode_message(data: bytes) -> StreamMessage:
    """The message in `data`; `StreamInvalid` (malformed, unknown_version, truncated) if
    its frame is not one."""
    least = HEADER_SIZE + SIGNATURE_SIZE
    _check_frame(data, MESSAGE_MAGIC, "message", least, MAX_MESSAGE_SIZE)
    *_, size = _HEADER.unpack_from(data)
    if size > MAX_PAYLOAD_SIZE:
        raise _fail("malformed", f"a payload is at most {MAX_PAYLOAD_SIZE} bytes, not {size}")
    expected = HEADER_SIZE + size + SIGNATURE_SIZE
    if len(data) != expected:
        code = "truncated" if len(data) < expected else "malformed"
        raise _fail(code, f"a message with this payload is {expected} bytes, got {len(data)}")
    return _framed(data, keccak256(data[:-SIGNATURE_SIZE]))


def _framed(raw: bytes, hashed: bytes) -> StreamMessage:
    """The message whose whole frame (header, payload, signature) is `raw`; `hashed` is
    the hash of all but its signature, which a decoder and a signer each already have."""
    _, _, stream_id, index, prev, timestamp_ms, epoch, kind, signer, _ = _HEADER.unpack_from(raw)
    return StreamMessage(
        stream_id,
        index,
        prev,
        timestamp_ms,
        epoch,
        kind,
        Address(signer),
        raw[HEADER_SIZE:-SIGNATURE_SIZE],
        raw[-SIGNATURE_SIZE:],
        raw,
        hashed,
    )


def message_header(
    stream_id: bytes,
    index: int,
    prev: bytes,
    timestamp_ms: int,
    epoch: int,
    kind: MessageKind,
    signer: Address,
    payload_size: int,
) -> bytes:
    """The first 114 bytes of a message: what its sealed payload is bound to."""
    if not (0 <= index < _UINT64 and 0 <= timestamp_ms < _UINT64 and 0 <= epoch < _UINT32):
        raise ValueError("index and timestamp are 64-bit, the epoch 32-bit, all unsigned")
    if not 0 <= payload_size <= MAX_PAYLOAD_SIZE:
        raise ProvenanceError("payload_too_large", f"a payload is at most {MAX_PAYLOAD_SIZE} bytes")
    return _HEADER.pack(
        MESSAGE_MAGIC,
        FORMAT_VERSION,
        stream_id,
        index,
        prev,
        timestamp_ms,
        epoch,
        int(kind),
        bytes(signer),
        payload_size,
    )


def make_message(author: PrivateKey, header: bytes, payload: bytes) -> StreamMessage:
    """The message of `header` and `payload` (already sealed if it must be), signed."""
    *_, size = _HEADER.unpack(header)
    if len(payload) != size:
        raise ValueError(f"the header says {size} payload bytes, the payload is {len(payload)}")
    body = header + payload
    hashed = keccak256(body)
    signature = bytes(author.sign_digest(signing_digest(hashed)))
    return _framed(body + signature, hashed)
