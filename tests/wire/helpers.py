"""Test doubles for the wire tests: a link a test can tamper with, sample messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from m2mpay.channel.messages import PaymentAck, PaymentMessage, PeerError
from m2mpay.crypto import Address, PrivateKey
from m2mpay.wire import FrameData, Link, Transport

GUARD = 30.0
"""Guards against hangs only: every step finishes far sooner when the code is right."""

Tamper = Callable[[int, bytes], list[bytes]]


class TamperLink(Link):
    """Wraps a link; `tamper(index, frame)` decides what is really sent for each frame.

    It plays the network attacker between two honest peers: it may alter, drop,
    duplicate or reorder frames (index counts frames sent through this end).
    """

    def __init__(self, inner: Link) -> None:
        self.inner = inner
        self.tamper: Tamper = lambda _, frame: [frame]
        self.sent = 0
        self.held: list[bytes] = []

    @property
    def remote(self) -> str:
        return self.inner.remote

    @property
    def closed(self) -> bool:
        return self.inner.closed

    async def send(self, frame: FrameData) -> None:
        await self.send_many([frame])

    async def send_many(self, frames: Sequence[FrameData]) -> None:
        out: list[bytes] = []
        for frame in frames:
            out.extend(self.tamper(self.sent, bytes(frame)))
            self.sent += 1
        if out:
            await self.inner.send_many(out)

    async def recv(self) -> bytes:
        return await self.inner.recv()

    async def close(self) -> None:
        await self.inner.close()


def recorder(store: list[bytes]) -> Tamper:
    """A tamper function that only records what passes."""

    def record(_: int, frame: bytes) -> list[bytes]:
        store.append(frame)
        return [frame]

    return record


async def linked(client: Transport, server: Transport) -> tuple[Link, Link]:
    async with asyncio.timeout(GUARD):
        mine = await client.connect(server.endpoint)
        theirs = await server.accept()
    return mine, theirs


def payment(seq: int, signer: PrivateKey | None = None) -> PaymentMessage:
    key = signer or PrivateKey(bytes(31) + b"\x05")
    return PaymentMessage(
        channel_id=bytes([seq % 256]) * 32,
        chain_id=1337,
        hub=Address(bytes(range(20))),
        total=10**18 * (seq + 1),
        amount=10**18,
        seq=seq,
        signature=key.sign_digest(seq.to_bytes(32, "big")),
    )


def sample_messages() -> list[PaymentMessage | PaymentAck | PeerError]:
    return [
        payment(1),
        PaymentAck(bytes(32), 10**18, 1),
        PeerError("bad_seq", "payment 3 arrived after 5", bytes(32)),
        PeerError("plain", "no channel"),
    ]
