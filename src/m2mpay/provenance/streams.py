"""Provenance streams: an author's signed, hash-chained, optionally encrypted records,
which anyone holding the root (and, unless public, a key) verifies end to end.

`StreamWriter` writes one stream for its author: it numbers and chains each message,
seals its payload under the epoch's key (see `stream_crypto`), signs it, and returns it
only once the `StreamStore` holds it durably (log, then act: nothing is served that a
crash could take back). A writer reopened on the same store after a crash continues from
the last durable message, with no gap and no index written twice; the store refuses any
append that does not continue the stream, so two writers can never fork it.

`ProvenanceStream` is a stream as a reader has it, a root and messages, and
`ProvenanceStream.verify` checks it (`stream_verify.verify`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from m2mpay.crypto import PrivateKey
from m2mpay.errors import ProvenanceError
from m2mpay.provenance.stream_crypto import SEALING_OVERHEAD, seal_payload, stream_key, wrap_key
from m2mpay.provenance.stream_format import (
    AccessMode,
    MessageKind,
    StreamMessage,
    StreamRoot,
    make_message,
    make_root,
    message_header,
)
from m2mpay.provenance.stream_records import (
    MAX_WRAPS,
    KeyGrant,
    StreamRecord,
    encode_payload,
)
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.stream_verify import ReadKey, Verified, verify

__all__ = ["ProvenanceStream", "StreamWriter"]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ProvenanceStream:
    """A stream as a reader holds it: its root and its messages, unverified."""

    root: StreamRoot
    messages: tuple[StreamMessage, ...]

    @property
    def stream_id(self) -> bytes:
        return self.root.stream_id

    def verify(
        self, key: ReadKey | None = None, *, count: int | None = None, payloads: bool = True
    ) -> Verified:
        return verify(self.root, self.messages, key, count=count, payloads=payloads)

    @classmethod
    async def load(cls, store: StreamStore, stream_id: bytes) -> ProvenanceStream:
        """A stream as `store` holds it (every durable message)."""
        root = await store.root(stream_id)
        if root is None:
            raise ProvenanceError("unknown_stream", f"no stream 0x{stream_id.hex()}")
        messages: list[StreamMessage] = []
        while page := await store.messages(stream_id, len(messages)):
            messages.extend(page)
        return cls(root, tuple(messages))


class StreamWriter:
    """Writes one stream for its author; make it with `create` or `reopen`."""

    def __init__(
        self,
        store: StreamStore,
        author: PrivateKey,
        root: StreamRoot,
        head: StreamMessage | None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        if root.author != author.address:
            raise ProvenanceError("not_author", f"the stream is {root.author}'s, not ours")
        self.store = store
        self.author = author
        self.root = root
        self._head = head
        self._head_known = True
        self._now_ms = now_ms
        self._lock = asyncio.Lock()
        self._epoch_keys: dict[int, bytes] = {}

    @classmethod
    async def create(
        cls,
        store: StreamStore,
        author: PrivateKey,
        *,
        purpose: str,
        access: AccessMode = AccessMode.RESTRICTED,
        links: Sequence[bytes] = (),
        subscribers: Sequence[X25519PublicKey] = (),
        now_ms: Callable[[], int] = _wall_ms,
    ) -> StreamWriter:
        """A new stream, its root durable; a stream of subscribers starts with epoch 0's
        key wrapped for `subscribers` (none is fine: `share` or `rotate` later)."""
        root = make_root(author, access, purpose, now_ms(), secrets.token_bytes(32), tuple(links))
        await store.add_root(root)
        writer = cls(store, author, root, None, now_ms)
        if access is AccessMode.SUBSCRIBERS:
            await writer.rotate(subscribers)
        elif subscribers:
            raise ProvenanceError("not_subscribers", "only a stream of subscribers has them")
        return writer

    @classmethod
    async def reopen(
        cls,
        store: StreamStore,
        author: PrivateKey,
        stream_id: bytes,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> StreamWriter:
        """The writer of a stream `store` holds, after its last durable message."""
        root = await store.root(stream_id)
        if root is None:
            raise ProvenanceError("unknown_stream", f"no stream 0x{stream_id.hex()}")
        return cls(store, author, root, await store.head(stream_id), now_ms)

    @property
    def stream_id(self) -> bytes:
        return self.root.stream_id

    @property
    def head(self) -> StreamMessage | None:
        """The last message written (durable), None before the first."""
        return self._head

    @property
    def epoch(self) -> int:
        """The current key epoch (-1: a stream of subscribers before its first keys)."""
        if self._head is not None:
            return self._head.epoch
        return -1 if self.root.mode is AccessMode.SUBSCRIBERS else 0

    def key(self, epoch: int | None = None) -> bytes:
        """The key of `epoch` (the current one by default): what a QR code carries for
        a restricted stream. A public stream has none."""
        if self.root.mode is AccessMode.PUBLIC:
            raise ProvenanceError("public_stream", "a public stream has no key")
        return self._key(self.epoch if epoch is None else epoch)

    def _key(self, epoch: int) -> bytes:
        key = self._epoch_keys.get(epoch)
        if key is None:  # derived once an epoch: HKDF costs as much as sealing a record
            key = self._epoch_keys[epoch] = stream_key(self.author, self.stream_id, epoch)
        return key

    async def append(self, record: StreamRecord) -> StreamMessage:
        """Write one record; returns the message once it is durable."""
        return (await self.append_many([record]))[0]

    async def append_many(self, records: Sequence[StreamRecord]) -> list[StreamMessage]:
        """Write records in order, in one commit."""
        if self.root.mode is AccessMode.SUBSCRIBERS and self.epoch < 0:
            raise ProvenanceError("no_keys", "a stream of subscribers needs its keys first")
        return await self._write(
            [(MessageKind.RECORD, encode_payload(record)) for record in records], None
        )

    async def share(self, subscribers: Sequence[X25519PublicKey]) -> list[StreamMessage]:
        """Wrap the current key for more subscribers (they read the current epoch)."""
        if self.epoch < 0:
            return await self.rotate(subscribers)
        return await self._keys(self.epoch, subscribers)

    async def rotate(self, subscribers: Sequence[X25519PublicKey]) -> list[StreamMessage]:
        """A new epoch from the next message on, its key wrapped for `subscribers` only:
        whoever is left out reads nothing written after this."""
        return await self._keys(self.epoch + 1, subscribers)

    async def _keys(
        self, epoch: int, subscribers: Sequence[X25519PublicKey]
    ) -> list[StreamMessage]:
        if self.root.mode is not AccessMode.SUBSCRIBERS:
            raise ProvenanceError("not_subscribers", "only a stream of subscribers has keys")
        key = self._key(epoch)
        chunks = [subscribers[i : i + MAX_WRAPS] for i in range(0, len(subscribers), MAX_WRAPS)]
        grants: list[KeyGrant] = [
            wrap_key(self.stream_id, epoch, key, chunk) for chunk in chunks or [()]
        ]
        return await self._write([(MessageKind.KEYS, encode_payload(g)) for g in grants], epoch)

    async def _write(
        self, payloads: Sequence[tuple[MessageKind, bytes]], epoch: int | None
    ) -> list[StreamMessage]:
        if not payloads:
            return []
        async with self._lock:
            if not self._head_known:
                # An append failed or was cancelled: whether it became durable is only
                # known to the store.
                self._head = await self.store.head(self.stream_id)
                self._head_known = True
            written = self._build(payloads, epoch)
            self._head_known = False
            await self.store.append(written)
            self._head = written[-1]
            self._head_known = True
            return written

    def _build(
        self, payloads: Sequence[tuple[MessageKind, bytes]], epoch: int | None
    ) -> list[StreamMessage]:
        mode = self.root.mode
        epoch = self.epoch if epoch is None else epoch
        key = self._key(epoch) if mode is not AccessMode.PUBLIC else b""
        head = self._head
        now = self._now_ms()
        built: list[StreamMessage] = []
        for kind, plaintext in payloads:
            index, prev = (0, self.stream_id) if head is None else (head.index + 1, head.hash)
            timestamp = now if head is None else max(now, head.timestamp_ms)
            sealed = kind is MessageKind.RECORD and mode is not AccessMode.PUBLIC
            size = len(plaintext) + (SEALING_OVERHEAD if sealed else 0)
            header = message_header(
                self.stream_id, index, prev, timestamp, epoch, kind, self.author.address, size
            )
            payload = seal_payload(key, header, plaintext) if sealed else plaintext
            head = make_message(self.author, header, payload)
            built.append(head)
        return built
