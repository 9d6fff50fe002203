"""MQTT link frames from the broker against hostile input: `unpack` gives a header and
payload that `pack` writes back, or None (the payload is ignored); topics name a sender
or nothing; and a link fed any sequence of frames delivers them in order, without gaps
or repeats, holding a bounded number of bytes while it waits for a missing one."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2mpay.crypto import Address
from m2mpay.errors import ConnectionClosed
from m2mpay.wire.mqtt_frames import (
    HEADER,
    MAX_PAYLOAD_SIZE,
    FrameKind,
    gone_sender,
    gone_topic,
    pack,
    sender_of,
    topic_to,
    unpack,
)
from m2mpay.wire.mqtt_link import MAX_EARLY_BYTES, MAX_EARLY_FRAMES, MqttLink
from m2mpay.wire.transport import MAX_FRAME_SIZE
from tests.fuzz.hostile import FUZZ, TEN_MB, peak_memory

pytestmark = pytest.mark.timeout(60)

OWN: Final = Address(b"\x01" * 20)
PEER: Final = Address(b"\x02" * 20)


class _Transport:
    """What a link needs of its transport: who it is, and to be told when a link ends."""

    own_address = OWN
    instance = b"\x07" * 8

    def __init__(self) -> None:
        self.discarded: list[MqttLink] = []

    def _discard(self, link: MqttLink) -> None:
        self.discarded.append(link)

    async def publish(self, topic: str, payload: bytes) -> None:
        pass


@given(data=st.binary(max_size=120))
@FUZZ
def test_any_payload_unpacks_to_what_pack_writes_or_to_nothing(data: bytes) -> None:
    parsed = unpack(data)
    if parsed is not None:
        header, payload = parsed
        assert pack(header.kind, header.instance, header.link, header.seq, payload) == data


@given(
    kind=st.sampled_from(list(FrameKind)),
    instance=st.binary(min_size=8, max_size=8),
    link=st.binary(min_size=8, max_size=8),
    seq=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=50),
)
@FUZZ
def test_every_frame_round_trips(
    kind: FrameKind, instance: bytes, link: bytes, seq: int, payload: bytes
) -> None:
    body = payload if kind is FrameKind.DATA else b""
    parsed = unpack(pack(kind, instance, link, seq, body))
    assert parsed is not None
    header, back = parsed
    assert (header.kind, header.instance, header.link, header.seq, back) == (
        kind,
        instance,
        link,
        seq,
        body,
    )


def test_a_payload_above_the_link_limit_is_dropped_before_it_is_held() -> None:
    # Before, a broker's 10 MB DATA payload was sliced into a 10 MB frame for the link.
    largest = pack(FrameKind.DATA, bytes(8), bytes(8), 0, bytes(MAX_FRAME_SIZE))
    assert len(largest) == MAX_PAYLOAD_SIZE
    assert unpack(largest) is not None
    huge = pack(FrameKind.DATA, bytes(8), bytes(8), 0, bytes(TEN_MB))
    assert unpack(huge) is None
    assert peak_memory(lambda: unpack(huge)) < 16 * 1024
    for kind in (FrameKind.OPEN, FrameKind.ACCEPT, FrameKind.CLOSE):
        assert unpack(pack(kind, bytes(8), bytes(8), 0) + b"x") is None
    assert unpack(b"\x02" + pack(FrameKind.OPEN, bytes(8), bytes(8), 0)[1:]) is None  # version
    assert unpack(pack(FrameKind.OPEN, bytes(8), bytes(8), 0)[: HEADER.size - 1]) is None


@given(topic=st.text(max_size=120) | st.sampled_from(["m2mpay/v1/", "m2mpay/v1/0x/gone"]))
@FUZZ
def test_any_topic_names_a_sender_or_nothing(topic: str) -> None:
    sender = sender_of(topic, OWN)
    if sender is not None:
        assert topic == topic_to(OWN, sender)
    gone = gone_sender(topic)
    if gone is not None:
        assert topic == gone_topic(gone)


def test_well_formed_topics_name_their_sender() -> None:
    assert sender_of(topic_to(OWN, PEER), OWN) == PEER
    assert sender_of(topic_to(PEER, OWN), OWN) is None
    assert gone_sender(gone_topic(PEER)) == PEER
    for spoiled in (
        topic_to(OWN, PEER).upper(),
        topic_to(OWN, PEER) + "/x",
        topic_to(OWN, PEER)[:-1],
    ):
        assert sender_of(spoiled, OWN) is None


frames = st.lists(
    st.tuples(
        st.sampled_from([FrameKind.DATA] * 7 + [FrameKind.CLOSE]),
        st.integers(0, 12) | st.integers(0, 2**64 - 1),
        st.integers(0, 3),
    ),
    max_size=40,
)


async def _feed(sequence: list[tuple[FrameKind, int, int]]) -> list[bytes]:
    link = MqttLink(_Transport(), PEER, b"\x09" * 8, initiator=False)  # type: ignore[arg-type]
    for kind, seq, tag in sequence:
        link.arrived(kind, seq, seq.to_bytes(8, "big") + bytes([tag]))
        assert len(link._early) <= MAX_EARLY_FRAMES
        assert link._early_bytes == sum(len(payload) for _, payload in link._early.values())
    delivered = []
    while not link._inbox.empty():
        item = link._inbox.get_nowait()
        if isinstance(item, bytes):
            delivered.append(item)
    return delivered


@given(sequence=frames)
@FUZZ
def test_a_link_delivers_any_arrival_order_in_sequence(
    sequence: list[tuple[FrameKind, int, int]],
) -> None:
    delivered = asyncio.run(_feed(sequence))
    seqs = [int.from_bytes(payload[:8], "big") for payload in delivered]
    assert seqs == list(range(len(seqs)))  # in order, no gap, no repeat
    first: dict[int, Any] = {}
    for kind, seq, tag in sequence:
        first.setdefault(seq, (kind, tag))
    for seq, payload in zip(seqs, delivered, strict=True):
        assert first[seq] == (FrameKind.DATA, payload[8])  # the first copy of each wins


def test_early_frames_are_bounded_in_bytes_not_only_in_count() -> None:
    # One shared 1 MiB payload stands for 1024 distinct ones: the link counts what it
    # would hold. Before, it held up to 1024 frames of any size (1 GiB).
    payload = bytes(MAX_FRAME_SIZE)

    async def flood() -> MqttLink:
        link = MqttLink(_Transport(), PEER, b"\x09" * 8, initiator=False)  # type: ignore[arg-type]
        for seq in range(1, MAX_EARLY_FRAMES):
            link.arrived(FrameKind.DATA, seq, payload)
            held = sum(len(frame) for _, frame in link._early.values())
            assert held <= MAX_EARLY_BYTES
        return link

    link = asyncio.run(flood())
    assert link.closed

    async def receive() -> None:
        with pytest.raises(ConnectionClosed, match="never arrived"):
            await link.recv()

    asyncio.run(receive())


def test_the_early_byte_bound_lets_a_normal_reordering_through() -> None:
    async def reorder() -> list[bytes]:
        link = MqttLink(_Transport(), PEER, b"\x09" * 8, initiator=False)  # type: ignore[arg-type]
        for seq in [*range(1, 200), 0]:
            link.arrived(FrameKind.DATA, seq, bytes([seq % 256]) * 1000)
        return [link._inbox.get_nowait() for _ in range(200)]  # type: ignore[misc]

    assert [frame[0] for frame in asyncio.run(reorder())] == [seq % 256 for seq in range(200)]
