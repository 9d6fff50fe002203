"""`SessionStreams`: a sale's stream written once, found again after a restart at any
moment, never failing its caller; and `open_shares`, which a buyer trusts nothing
before."""

from __future__ import annotations

import dataclasses
from typing import Final

import pytest

from m2mpay.crypto import Address
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import (
    MemoryStreamStore,
    MeterRecord,
    MeterUnit,
    PaymentRecord,
    PriceRecord,
    ProvenanceStream,
    ReceiptRecord,
    SessionRecord,
    StreamRecord,
    StreamStore,
    Totals,
)
from m2mpay.provenance.session_streams import (
    KnownStream,
    SessionStreams,
    StreamGiven,
    open_shares,
    reader_key,
)
from m2mpay.provenance.stream_crypto import stream_key, wrap_key
from m2mpay.provenance.stream_format import decode_root
from tests.provenance.streams_kit import AUTHOR, OTHER, TOKEN, StoreMaker

BUYER: Final = OTHER
SESSION: Final = bytes([5]) * 32
CHANNEL: Final = bytes([6]) * 32
HUB: Final = Address(bytes([4]) * 20)
STARTED: Final = 1_790_000_000_000
SALE: Final = SessionRecord(
    SESSION, CHANNEL, 31337, HUB, AUTHOR.address, BUYER.address, MeterUnit.WH
)
PRICE: Final = PriceRecord(MeterUnit.WH, 10**15, TOKEN)
URL: Final = "http://seller.test/provenance/streams/x.jsonl"


def _receipt() -> ReceiptRecord:
    return ReceiptRecord(
        SESSION,
        CHANNEL,
        31337,
        HUB,
        Totals(30, 30 * 10**15, 30 * 10**15),
        Totals(0, 0, 0),
        STARTED,
        STARTED + 9000,
        (),
    )


async def _records(store: StreamStore, stream_id: bytes) -> list[StreamRecord]:
    stream = await ProvenanceStream.load(store, stream_id)
    verified = stream.verify(stream_key(AUTHOR, stream_id, 0))
    assert verified.ok, verified.problem
    return verified.records


class Clock:
    def __init__(self) -> None:
        self.now = STARTED

    def __call__(self) -> int:
        return self.now


async def test_a_sale_is_written_in_order_and_found_again_after_a_restart(
    maker: StoreMaker,
) -> None:
    clock = Clock()
    async with maker.open() as store:
        streams = SessionStreams(store, AUTHOR, clock)
        stream_id = await streams.sold(SALE, PRICE, STARTED)
        assert stream_id is not None
        assert await streams.sold(SALE, PRICE, STARTED) == stream_id  # once
        clock.now += 2000
        await streams.observe(SESSION, 10, 0, 0)
        clock.now += 1000
        await streams.observe(SESSION, 10, 0, 0)  # nothing moved: nothing written
        clock.now += 2000
        await streams.observe(SESSION, 20, 10 * 10**15, 10 * 10**15)
    async with maker.open() as store:  # a restart: the same sale finds the same stream
        streams = SessionStreams(store, AUTHOR, clock)
        assert not await streams.complete(SALE, STARTED, [(), [bytes(32)]])
        assert await streams.sold(SALE, PRICE, STARTED) == stream_id
        clock.now += 3000
        await streams.observe(SESSION, 30, 30 * 10**15, 30 * 10**15)
        await streams.ended(
            SESSION, _receipt(), units=30, paid=30 * 10**15, transferred=30 * 10**15
        )
        await streams.observe(SESSION, 40, 0, 0)
        await streams.wait_ended(SESSION)
        # A buyer asking late still learns it.
        assert streams.share(SESSION, reader_key(BUYER).public_key(), URL) is not None
        # Its head is its receipt: the next restart need not load it (under either links).
        again = SessionStreams(store, AUTHOR, clock)
        assert await again.complete(SALE, STARTED, [[bytes(32)], ()])
        assert again.stream_of(SESSION) == stream_id
        assert not await streams.complete(
            SALE, STARTED + 1, [()]
        )  # another sale: none  # after the end: nothing
        records = await _records(store, stream_id)
        assert [len(await store.roots())] == [1]
    assert records == [
        SALE,
        PRICE,
        MeterRecord(MeterUnit.WH, 10, 10, 2000),
        MeterRecord(MeterUnit.WH, 10, 20, 3000),
        PaymentRecord(CHANNEL, BUYER.address, 10 * 10**15, 10 * 10**15),
        MeterRecord(MeterUnit.WH, 10, 30, 3000),
        PaymentRecord(CHANNEL, BUYER.address, 20 * 10**15, 30 * 10**15),
        _receipt(),
    ]
    assert streams.failures == 0


async def test_a_root_without_its_first_records_is_taken_up_not_doubled(
    maker: StoreMaker,
) -> None:
    """A crash after the root was durable and before the first records were."""
    async with maker.open() as store:
        root = SessionStreams(store, AUTHOR).root_for(SALE, STARTED, ())
        await store.add_root(root)
    async with maker.open() as store:
        streams = SessionStreams(store, AUTHOR)
        assert await streams.sold(SALE, PRICE, STARTED) == root.stream_id
        assert await _records(store, root.stream_id) == [SALE, PRICE]


async def test_a_resale_made_unlinked_is_found_again_once_its_upstream_is_known() -> None:
    store = MemoryStreamStore()
    async with store:
        unlinked = await SessionStreams(store, AUTHOR).sold(SALE, PRICE, STARTED)
        again = await SessionStreams(store, AUTHOR).sold(SALE, PRICE, STARTED, [bytes(32)])
        assert again == unlinked


async def test_a_write_that_fails_is_counted_never_raised() -> None:
    store = MemoryStreamStore()
    async with store:
        streams = SessionStreams(store, AUTHOR)
        assert await streams.sold(SALE, PRICE, STARTED) is not None
    # The store is closed: every write fails, and the caller (a session) never knows.
    await streams.observe(SESSION, 10, 5, 5)
    await streams.ended(SESSION, _receipt(), units=10, paid=5, transferred=5)
    other = dataclasses.replace(SALE, session=bytes([7]) * 32)
    assert await streams.sold(other, PRICE, STARTED) is None
    assert streams.failures == 3


# -- what a buyer is given


async def _given(links: tuple[bytes, ...] = ()) -> tuple[StreamGiven, SessionStreams]:
    store = MemoryStreamStore()
    await store.open()
    streams = SessionStreams(store, AUTHOR)
    await streams.sold(SALE, PRICE, STARTED, links)
    share = streams.share(SESSION, reader_key(BUYER).public_key(), URL)
    assert share is not None
    return StreamGiven(SESSION, (share,)), streams


async def test_a_buyer_opens_the_key_wrapped_for_it_and_reads_the_stream() -> None:
    given, streams = await _given()
    [known] = open_shares(given, AUTHOR.address, reader_key(BUYER))
    assert known == KnownStream(streams._sales[SESSION].writer.root, URL, known.key)
    assert await _records(streams.store, known.stream_id) == [SALE, PRICE]
    stream = await ProvenanceStream.load(streams.store, known.stream_id)
    assert stream.verify(known.key).ok


@pytest.mark.parametrize(
    "what",
    ["another seller", "another reader", "not linked", "a URL", "no stream", "two wraps"],
)
async def test_a_share_is_refused_naming_what_is_wrong(what: str) -> None:
    given, _ = await _given()
    seller, reader = AUTHOR.address, reader_key(BUYER)
    [share] = given.shares
    if what == "another seller":
        seller = OTHER.address
    elif what == "another reader":
        reader = reader_key(AUTHOR)
    elif what == "not linked":  # a second stream the first does not link
        given = StreamGiven(SESSION, (share, share))
    elif what == "a URL":
        given = StreamGiven(SESSION, (dataclasses.replace(share, url="file:///etc/passwd"),))
    elif what == "two wraps":  # a key wrapped for others too is not the session's alone
        readers = [reader.public_key(), reader_key(AUTHOR).public_key()]
        root = decode_root(share.root)
        twice = wrap_key(root.stream_id, 0, stream_key(AUTHOR, root.stream_id, 0), readers)
        given = StreamGiven(SESSION, (dataclasses.replace(share, grant=twice),))
    else:
        given = StreamGiven(SESSION, ())
    with pytest.raises(ProvenanceError) as refused:
        open_shares(given, seller, reader)
    assert refused.value.code == "bad_share"


async def test_a_reseller_passes_the_upstream_key_on_wrapped_for_its_buyer() -> None:
    upstream, _ = await _given()
    [up] = open_shares(upstream, AUTHOR.address, reader_key(BUYER))
    # BUYER resells: its sale's stream links the upstream one.
    store = MemoryStreamStore()
    await store.open()
    reseller = SessionStreams(store, BUYER)
    sale = dataclasses.replace(SALE, pay_to=BUYER.address, buyer=AUTHOR.address)
    await reseller.sold(sale, PRICE, STARTED, [up.stream_id])
    car = reader_key(AUTHOR)
    own = reseller.share(SESSION, car.public_key(), URL)
    assert own is not None
    passed = dataclasses.replace(
        own, root=up.root.raw, grant=wrap_key(up.stream_id, 0, up.key, [car.public_key()])
    )
    down, again = open_shares(StreamGiven(SESSION, (own, passed)), BUYER.address, car)
    assert down.root.links == (again.stream_id,)
    assert again.key == up.key
