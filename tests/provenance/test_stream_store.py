"""One suite, every `StreamStore` (SQLite, PostgreSQL and in-memory): durable when a call
returns, no gap and no duplicate, group commit, one store object per location, fail closed."""

from __future__ import annotations

import asyncio

import pytest

from m2mpay.crypto import PrivateKey
from m2mpay.errors import ProvenanceError, StoreError
from m2mpay.provenance import AccessMode, StreamMessage, StreamRoot
from m2mpay.provenance.records import StreamHead
from m2mpay.provenance.stream_format import make_root
from m2mpay.provenance.stream_records import encode_payload
from tests.provenance.streams_kit import AUTHOR, OTHER, StoreMaker, forge, records


def _root(n: int, author: PrivateKey = AUTHOR) -> StreamRoot:
    return make_root(author, AccessMode.PUBLIC, "test", n, bytes([n]) * 32)


def _chain(root: StreamRoot, count: int, start: StreamMessage | None = None) -> list[StreamMessage]:
    made: list[StreamMessage] = []
    head = start
    for record in records(count):
        index, prev = (0, root.stream_id) if head is None else (head.index + 1, head.hash)
        head = forge(AUTHOR, root.stream_id, index, prev, payload=encode_payload(record))
        made.append(head)
    return made


async def test_roots_are_kept_once_and_listed_by_author(maker: StoreMaker) -> None:
    mine, theirs = _root(1), _root(2, OTHER)
    async with maker.open() as store:
        assert await store.root(mine.stream_id) is None
        assert await store.add_root(mine) is True
        assert await store.add_root(mine) is False
        assert await store.add_root(theirs) is True
        assert await store.root(mine.stream_id) == mine
        assert await store.roots() == [mine, theirs]
        assert await store.roots(AUTHOR.address) == [mine]
        assert await store.roots(limit=1) == [mine]
        assert await store.head(mine.stream_id) is None
        assert await store.messages(mine.stream_id) == []


async def test_messages_are_kept_in_order_and_read_in_pages(maker: StoreMaker) -> None:
    root = _root(1)
    chain = _chain(root, 12)
    async with maker.open() as store:
        await store.add_root(root)
        await store.append(chain[:5])
        await store.append(chain[5:])
        assert await store.messages(root.stream_id) == chain
        assert await store.messages(root.stream_id, 4, 3) == chain[4:7]
        assert await store.messages(root.stream_id, 12) == []
        assert await store.head(root.stream_id) == chain[-1]


async def test_a_gap_a_duplicate_or_a_wrong_prev_is_refused_and_nothing_of_it_kept(
    maker: StoreMaker,
) -> None:
    root = _root(1)
    chain = _chain(root, 6)
    async with maker.open() as store:
        with pytest.raises(ProvenanceError) as caught:
            await store.append(chain[:1])
        assert caught.value.code == "unknown_stream"
        await store.add_root(root)
        with pytest.raises(ProvenanceError, match="does not continue"):
            await store.append(chain[1:3])  # index 0 is missing
        await store.append(chain[:3])
        for bad in (chain[2:4], chain[4:5], [chain[3], chain[5]]):
            with pytest.raises(ProvenanceError) as caught:
                await store.append(bad)
            assert caught.value.code == "conflict"
        unlinked = forge(AUTHOR, root.stream_id, 3, bytes(32))
        with pytest.raises(ProvenanceError, match="does not continue"):
            await store.append([unlinked])
        assert await store.messages(root.stream_id) == chain[:3]
        await store.append(chain[3:])  # the stream goes on where it was
        assert await store.messages(root.stream_id) == chain


async def test_what_an_append_returned_from_survives_a_restart(maker: StoreMaker) -> None:
    roots = [_root(1), _root(2)]
    chains = [_chain(r, 4) for r in roots]
    async with maker.open() as store:
        for root, chain in zip(roots, chains, strict=True):
            await store.add_root(root)
            await store.append(chain[:3])
    async with maker.open() as store:
        assert await store.roots() == roots
        for root, chain in zip(roots, chains, strict=True):
            assert await store.head(root.stream_id) == chain[2]
            with pytest.raises(ProvenanceError):
                await store.append(chain[2:3])  # a duplicate after the restart too
            await store.append(chain[3:])
            assert await store.messages(root.stream_id) == chain


async def test_concurrent_appends_to_many_streams_share_commits(maker: StoreMaker) -> None:
    roots = [_root(n) for n in range(1, 21)]
    chains = [_chain(r, 5) for r in roots]
    async with maker.open() as store:
        for root in roots:
            await store.add_root(root)
        before = store.commit_count

        async def write(chain: list[StreamMessage]) -> None:
            for message in chain:
                await store.append([message])

        await asyncio.gather(*(write(chain) for chain in chains))
        assert store.commit_count - before < 50  # 100 appends, far fewer commits
        for root, chain in zip(roots, chains, strict=True):
            assert await store.messages(root.stream_id) == chain


async def test_two_appends_racing_for_one_index_keep_one(maker: StoreMaker) -> None:
    root = _root(1)
    chain = _chain(root, 2)
    fork = forge(AUTHOR, root.stream_id, 1, chain[0].hash, payload=b'{"t":"prov.note","text":"x"}')
    async with maker.open() as store:
        await store.add_root(root)
        await store.append(chain[:1])
        outcomes = await asyncio.gather(
            store.append(chain[1:]), store.append([fork]), return_exceptions=True
        )
        assert outcomes[0] is None
        assert isinstance(outcomes[1], ProvenanceError)
        assert await store.messages(root.stream_id) == chain


async def test_a_second_store_on_one_location_is_refused(maker: StoreMaker) -> None:
    async with maker.open():
        with pytest.raises(StoreError):
            await maker.make().open()


async def test_a_failed_commit_leaves_the_store_unusable_until_reopened(
    maker: StoreMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root(1)
    chain = _chain(root, 3)
    store = maker.make()
    await store.open()
    await store.add_root(root)
    await store.append(chain[:1])

    async def broken(*_: object) -> None:
        raise OSError("the disk is gone")

    monkeypatch.setattr(store, "_write", broken)
    with pytest.raises(StoreError, match="disk is gone"):
        await store.append(chain[1:2])
    for call in (store.head(root.stream_id), store.append(chain[1:2])):
        with pytest.raises(StoreError, match="unusable"):
            await call
    monkeypatch.undo()
    await store.close()
    async with maker.open() as reopened:
        assert await reopened.messages(root.stream_id) == chain[:1]
        await reopened.append(chain[1:])


async def test_heads_held_in_memory_are_bounded_and_checks_stay_exact(maker: StoreMaker) -> None:
    roots = [_root(n) for n in range(1, 13)]
    chains = [_chain(r, 6) for r in roots]
    async with maker.make(cached_heads=3) as store:
        for root in roots:
            await store.add_root(root)

        async def write(chain: list[StreamMessage]) -> None:
            for message in chain:
                await store.append([message])

        await asyncio.gather(*(write(chain[:4]) for chain in chains))
        for chain in chains:
            with pytest.raises(ProvenanceError):
                await store.append(chain[3:4])  # forgotten or not, a duplicate is refused
        await asyncio.gather(*(write(chain[4:]) for chain in chains))
        for root, chain in zip(roots, chains, strict=True):
            assert await store.messages(root.stream_id) == chain
        # What the bound is about: after a commit, at most 3 heads stay in memory.
        assert store._forgotten > 0
        assert len(store._heads) <= 3


# -- anchor batches


def _heads(*messages: StreamMessage) -> list[StreamHead]:
    return [StreamHead(m.stream_id, m.index, m.hash) for m in messages]


async def test_batches_of_heads_are_kept_marked_and_found_after_a_restart(
    maker: StoreMaker,
) -> None:
    roots = [_root(n) for n in range(1, 4)]
    chains = [_chain(r, 5) for r in roots]
    async with maker.open() as store:
        for root, chain in zip(roots, chains, strict=True):
            await store.add_root(root)
            await store.append(chain[:3])
        assert await store.unanchored_heads(10) == _heads(*(c[2] for c in chains))
        assert await store.unanchored_heads(2) == _heads(chains[0][2], chains[1][2])
        heads = _heads(*(c[2] for c in chains))
        first = await store.record_batch(bytes([1]) * 32, heads, 1000, 7)
        assert (first.heads, first.root, first.anchored) == (tuple(heads), bytes([1]) * 32, False)
        assert await store.unanchored_heads(10) == []  # recorded: never batched twice
        assert await store.unanchored_batches() == [first]
        await store.append(chains[1][3:])
        assert await store.unanchored_heads(10) == _heads(chains[1][4])
        second = await store.record_batch(bytes([2]) * 32, _heads(chains[1][4]), 2000, 9)
        await store.mark_batch_sent(first.id, bytes([4]) * 32)
        await store.mark_batch_sent(second.id, bytes([5]) * 32)
        sent = await store.stream_batch(second.id)
        assert sent is not None
        assert (sent.tx_hash, sent.anchored) == (bytes([5]) * 32, False)
        second = sent
        await store.mark_batch_anchored(first.id, bytes([3]) * 32, 11, 50_000)
    async with maker.open() as store:  # a restart keeps all of it
        marked = await store.stream_batch(first.id)
        assert marked is not None
        assert (marked.tx_hash, marked.block_number, marked.gas_used) == (
            bytes([3]) * 32,
            11,
            50_000,
        )
        assert marked.heads == first.heads
        assert await store.unanchored_batches() == [second]
        assert await store.stream_batch(second.id + 1) is None
        middle = roots[1].stream_id
        assert [(b.id, at) for b, at in await store.anchors(middle)] == [
            (first.id, 1),
            (second.id, 0),
        ]
        assert [(b.id, at) for b, at in await store.anchors(middle, 3)] == [(second.id, 0)]
        assert await store.anchors(middle, 5) == []
        assert await store.anchors(roots[0].stream_id, 3) == []


async def test_a_failed_anchor_write_leaves_the_store_unusable_until_reopened(
    maker: StoreMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root(1)
    chain = _chain(root, 2)
    store = maker.make()
    await store.open()
    await store.add_root(root)
    await store.append(chain)

    async def broken(*_: object) -> int:
        raise OSError("the disk is gone")

    monkeypatch.setattr(store, "_write_batch", broken)
    with pytest.raises(StoreError, match="disk is gone"):
        await store.record_batch(bytes([1]) * 32, _heads(chain[1]), 1, 1)
    with pytest.raises(StoreError, match="unusable"):
        await store.unanchored_heads(10)
    monkeypatch.undo()
    await store.close()
    async with maker.open() as reopened:
        assert await reopened.unanchored_heads(10) == _heads(chain[1])
        assert await reopened.unanchored_batches() == []
