"""Verifying a provenance stream: every message, in order, up to the first problem.

`verify(root, messages, key)` returns a `Verified`: the messages it verified, from
index 0 on, and the first `Problem` if one stopped it. It never raises over what it was
given (a reader must show why a stream fails, not crash on it); `Verified.ok` is true
only when every message given verified and none is missing, and `raise_if_invalid()`
turns a problem into `StreamInvalid` for callers that want an exception. Nothing after
the first problem is verified, and a reader shows a stream as verified only when `ok`:
`messages` is the part that verified, never more.

The root is checked first (frame, author's signature, access mode, purpose; the stream
id, if the reader knows which stream it asked for). Then each message, in this order, so
that each problem gets its own name:

1. its frame: ``malformed``, ``unknown_version``, ``truncated``;
2. its signature recovers to its signer field (else ``bad_signature``: the bytes are not
   what was signed, whatever byte was flipped), and that signer is the root's author
   (else ``wrong_author``);
3. it names this stream (else ``wrong_stream``: replayed from another stream);
4. its index: the next one continues (a later one is ``reordered`` if the missing index
   comes later in the input, else a ``gap``; an earlier one is a ``duplicate`` when it
   is the message already verified at that index, else ``inserted``: two different
   messages at one index, so that index and all after it are unverified); its prev hash
   is the hash of the message before (else ``broken_chain``); its time does not go back
   (``time_backwards``);
5. its kind and key epoch fit the access mode (``bad_epoch``), and its payload opens:
   ``missing_key`` (no key for it: none given, or a subscriber cut off by a rotation),
   ``wrong_key`` (a key that does not open it), ``bad_payload`` (not a record).

Finally, a reader that knows how many messages exist (`count`: from an export's header,
a node's listing, an anchor) gets ``truncated`` when fewer came.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from m2mpay.crypto import Signature, recover_signer
from m2mpay.errors import CryptoError
from m2mpay.provenance.stream_crypto import open_payload, unwrap_key
from m2mpay.provenance.stream_format import (
    MAX_PURPOSE,
    AccessMode,
    MessageKind,
    StreamInvalid,
    StreamMessage,
    StreamRoot,
    decode_message,
    decode_root,
    signing_digest,
)
from m2mpay.provenance.stream_records import (
    KeyGrant,
    StreamRecord,
    decode_key_grant,
    decode_record,
)

__all__ = [
    "Problem",
    "ProblemCode",
    "ReadKey",
    "Verified",
    "VerifiedMessage",
    "message_place",
    "verify",
]

ReadKey = bytes | Mapping[int, bytes] | X25519PrivateKey
"""What a reader holds: a restricted stream's key; keys by epoch; or a subscriber's
X25519 private key, which opens the keys wrapped for it in the stream itself."""


class ProblemCode(enum.StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_VERSION = "unknown_version"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"
    WRONG_AUTHOR = "wrong_author"
    WRONG_STREAM = "wrong_stream"
    REORDERED = "reordered"
    GAP = "gap"
    DUPLICATE = "duplicate"
    INSERTED = "inserted"
    BROKEN_CHAIN = "broken_chain"
    TIME_BACKWARDS = "time_backwards"
    BAD_EPOCH = "bad_epoch"
    MISSING_KEY = "missing_key"
    WRONG_KEY = "wrong_key"
    BAD_PAYLOAD = "bad_payload"


def message_place(position: int) -> str:
    """A message's place as people read it: they count from 1, the stream indexes from 0
    ("message 3 (index 2)"); the web reader says it the same way."""
    return f"message {position + 1} (index {position})"


@dataclass(frozen=True, slots=True)
class Problem:
    """What stopped verification: `position` in the input (None: the root), the index
    the message claims if it has one, and what is wrong."""

    code: ProblemCode
    position: int | None
    index: int | None
    detail: str

    def __str__(self) -> str:
        where = "the root" if self.position is None else message_place(self.position)
        return f"{self.code.value} at {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """A message that verified; `content` is its record or key grant, None when its
    payload was not opened (`verify(..., payloads=False)`)."""

    message: StreamMessage
    content: StreamRecord | KeyGrant | None


@dataclass(frozen=True, slots=True)
class Verified:
    root: StreamRoot | None  # None when the root itself did not decode
    messages: tuple[VerifiedMessage, ...]
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def records(self) -> list[StreamRecord]:
        """The verified records, keys messages and unopened payloads left out."""
        return [
            m.content
            for m in self.messages
            if m.content is not None and not isinstance(m.content, KeyGrant)
        ]

    def raise_if_invalid(self) -> None:
        if self.problem is not None:
            raise StreamInvalid(self.problem.code.value, str(self.problem))


_ROOT_ONLY: Final = ()


def verify(
    root: StreamRoot | bytes,
    messages: Iterable[StreamMessage | bytes],
    key: ReadKey | None = None,
    *,
    stream_id: bytes | None = None,
    count: int | None = None,
    payloads: bool = True,
) -> Verified:
    """See the module docstring. `payloads=False` checks everything but sealed payloads
    (what a node keeping a stream it cannot read does)."""
    try:
        # Decoded again from its bytes: what verifies is the bytes, never fields a
        # caller may have set apart from them.
        decoded_root = decode_root(root.raw if isinstance(root, StreamRoot) else root)
    except StreamInvalid as exc:
        return Verified(None, _ROOT_ONLY, Problem(ProblemCode(exc.code), None, None, exc.message))
    problem = _check_root(decoded_root, stream_id)
    if problem is not None:
        return Verified(decoded_root, _ROOT_ONLY, problem)
    walk = _Walk(decoded_root, list(messages), key, payloads)
    problem = walk.run()
    verified = tuple(walk.verified)
    if problem is None and count is not None and len(verified) < count:
        problem = Problem(
            ProblemCode.TRUNCATED,
            len(verified),
            len(verified),
            f"{count} messages expected, the stream ends after {len(verified)}",
        )
    return Verified(decoded_root, verified, problem)


def _signer_of(hashed: bytes, signature: bytes) -> bytes | None:
    try:
        return recover_signer(signing_digest(hashed), Signature(signature))
    except CryptoError:
        return None


def _check_root(root: StreamRoot, stream_id: bytes | None) -> Problem | None:
    def problem(code: ProblemCode, detail: str) -> Problem:
        return Problem(code, None, None, detail)

    if _signer_of(root.stream_id, root.signature) != root.author:
        return problem(ProblemCode.BAD_SIGNATURE, "the root is not signed by its author")
    if root.access not in AccessMode.__members__.values():
        return problem(ProblemCode.MALFORMED, f"unknown access mode {root.access}")
    if not all(" " <= ch <= "~" for ch in root.purpose) or len(root.purpose) > MAX_PURPOSE:
        return problem(ProblemCode.MALFORMED, "the purpose is not printable ASCII")
    if stream_id is not None and root.stream_id != stream_id:
        return problem(
            ProblemCode.WRONG_STREAM,
            f"the root is of stream 0x{root.stream_id.hex()}, not 0x{stream_id.hex()}",
        )
    return None


def _claimed_index(item: StreamMessage | bytes, stream_id: bytes) -> int | None:
    """The index a later message claims in this stream, to tell reordered from a gap."""
    try:
        message = decode_message(item.raw if isinstance(item, StreamMessage) else item)
    except StreamInvalid:
        return None
    return message.index if message.stream_id == stream_id else None


class _Walk:
    """One pass over the messages; `verified` grows as each one passes."""

    def __init__(
        self,
        root: StreamRoot,
        items: Sequence[StreamMessage | bytes],
        key: ReadKey | None,
        payloads: bool,
    ) -> None:
        self.root = root
        self.mode = root.mode
        self.items = items
        self.payloads = payloads
        self.subscriber = key if isinstance(key, X25519PrivateKey) else None
        self.keys: dict[int, bytes] = {}
        if isinstance(key, bytes):
            self.keys[0] = key
        elif isinstance(key, Mapping):
            self.keys.update(key)
        self.verified: list[VerifiedMessage] = []
        self.epoch = -1  # no keys message yet (a subscribers stream starts with one)

    def run(self) -> Problem | None:
        for position, item in enumerate(self.items):
            problem = self._step(position, item)
            if problem is not None:
                return problem
        return None

    def _step(self, position: int, item: StreamMessage | bytes) -> Problem | None:
        try:
            message = decode_message(item.raw if isinstance(item, StreamMessage) else item)
        except StreamInvalid as exc:
            return Problem(ProblemCode(exc.code), position, None, exc.message)

        def problem(code: ProblemCode, detail: str) -> Problem:
            return Problem(code, position, message.index, detail)

        signer = _signer_of(message.hash, message.signature)
        if signer is None or signer != message.signer:
            return problem(ProblemCode.BAD_SIGNATURE, "the message is not what its signer signed")
        if signer != self.root.author:
            return problem(
                ProblemCode.WRONG_AUTHOR,
                f"signed by {message.signer}, not by the stream's author {self.root.author}",
            )
        if message.stream_id != self.root.stream_id:
            return problem(
                ProblemCode.WRONG_STREAM, f"the message is of stream 0x{message.stream_id.hex()}"
            )
        found = self._place(position, message)
        if found is not None:
            return problem(*found)
        content = self._content(message)
        if isinstance(content, tuple):
            return problem(*content)
        self.verified.append(VerifiedMessage(message, content))
        return None

    def _place(self, position: int, message: StreamMessage) -> tuple[ProblemCode, str] | None:
        expected = len(self.verified)
        if message.index > expected:
            stream = self.root.stream_id
            later = (_claimed_index(item, stream) for item in self.items[position + 1 :])
            if any(index == expected for index in later):
                return ProblemCode.REORDERED, f"index {message.index} comes before {expected}"
            return ProblemCode.GAP, f"index {expected} is missing (next is {message.index})"
        if message.index < expected:
            if self.verified[message.index].message.hash == message.hash:
                return ProblemCode.DUPLICATE, f"message {message.index} again"
            del self.verified[message.index :]  # two messages claim it: neither is trusted
            return ProblemCode.INSERTED, f"a second, different message at index {message.index}"
        prev = self.verified[-1].message if self.verified else None
        if message.prev != (prev.hash if prev is not None else self.root.stream_id):
            return ProblemCode.BROKEN_CHAIN, "the prev hash is not the message before"
        if prev is not None and message.timestamp_ms < prev.timestamp_ms:
            return ProblemCode.TIME_BACKWARDS, "the timestamp is before the message before"
        return None

    def _content(
        self, message: StreamMessage
    ) -> StreamRecord | KeyGrant | tuple[ProblemCode, str] | None:
        if message.kind == MessageKind.KEYS:
            return self._keys(message)
        if message.kind != MessageKind.RECORD:
            return ProblemCode.MALFORMED, f"unknown message kind {message.kind}"
        if self.mode is AccessMode.PUBLIC:
            if message.epoch != 0:
                return ProblemCode.BAD_EPOCH, "a public stream has no key epochs"
            return self._record(message.payload)
        if self.mode is AccessMode.RESTRICTED and message.epoch != 0:
            return ProblemCode.BAD_EPOCH, "a restricted stream has one key (epoch 0)"
        if self.mode is AccessMode.SUBSCRIBERS and message.epoch != self.epoch:
            return ProblemCode.BAD_EPOCH, f"epoch {message.epoch}, the current is {self.epoch}"
        if not self.payloads:
            return None
        key = self.keys.get(message.epoch)
        if key is None:
            return ProblemCode.MISSING_KEY, f"no key of epoch {message.epoch} to read it with"
        plaintext = open_payload(key, message.header, message.payload)
        if plaintext is None:
            return ProblemCode.WRONG_KEY, f"the key of epoch {message.epoch} does not open it"
        return self._record(plaintext)

    def _record(self, payload: bytes) -> StreamRecord | tuple[ProblemCode, str]:
        try:
            return decode_record(payload)
        except StreamInvalid as exc:
            return ProblemCode.BAD_PAYLOAD, exc.message

    def _keys(self, message: StreamMessage) -> KeyGrant | tuple[ProblemCode, str]:
        if self.mode is not AccessMode.SUBSCRIBERS:
            return ProblemCode.MALFORMED, "keys messages belong to streams of subscribers"
        if message.epoch not in (self.epoch, self.epoch + 1):
            return ProblemCode.BAD_EPOCH, f"keys of epoch {message.epoch} after {self.epoch}"
        try:
            grant = decode_key_grant(message.payload)
        except StreamInvalid as exc:
            return ProblemCode.BAD_PAYLOAD, exc.message
        self.epoch = message.epoch
        if self.subscriber is not None and message.epoch not in self.keys:
            try:
                key = unwrap_key(grant, self.root.stream_id, message.epoch, self.subscriber)
            except ValueError as exc:
                return ProblemCode.WRONG_KEY, str(exc)
            if key is not None:
                self.keys[message.epoch] = key
        return grant
