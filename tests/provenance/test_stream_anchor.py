"""Stream heads anchored on chain in Merkle batches: many streams in one transaction,
every message proved (heads and the messages before them), proofs checked against the
chain's logs, every forged field refused and named, and a crash between submitting and
confirming neither loses nor doubles a batch."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from m2mpay.chain import EmbeddedLedger, Ledger, TelemetryAnchor, deploy_anchor
from m2mpay.crypto import Address, PrivateKey, merkle_proof, merkle_root
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import AccessMode, StreamStore, StreamWriter
from m2mpay.provenance.anchor_proof import AnchorProof, decode_anchor_proof, verify_anchor
from m2mpay.provenance.anchoring import STREAMS_SOURCE, AnchorConfig
from m2mpay.provenance.records import stream_leaf
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_file import export_stream, read_stream_file
from m2mpay.provenance.stream_format import decode_message
from tests.provenance.streams_kit import AUTHOR, Clock, StoreMaker, records
from tests.waiting import eventually_async

MANY = AnchorConfig(batch_records=10**6, batch_interval_s=3600.0)


@pytest.fixture
async def chain() -> AsyncIterator[EmbeddedLedger]:
    async with EmbeddedLedger() as ledger:
        yield ledger


async def _anchor(ledger: Ledger) -> TelemetryAnchor:
    contract, _ = await deploy_anchor(ledger, ledger.dev_accounts()[0])
    return contract


async def _writers(store: StreamStore, streams: int) -> list[StreamWriter]:
    clock = Clock()
    return [
        await StreamWriter.create(
            store, AUTHOR, purpose=f"session {n}", access=AccessMode.PUBLIC, now_ms=clock
        )
        for n in range(streams)
    ]


async def _anchored_events(anchor: TelemetryAnchor, root: bytes | None = None) -> list[Any]:
    return await anchor.batches(0, device=STREAMS_SOURCE, root=root)


async def test_many_streams_share_one_transaction_and_every_message_proves(
    chain: EmbeddedLedger, maker: StoreMaker
) -> None:
    anchor = await _anchor(chain)
    signer = chain.dev_accounts()[1]
    async with maker.open() as store:
        anchorer = StreamAnchorer(store, anchor=anchor, signer=signer, config=MANY)
        await anchorer.start()
        writers = await _writers(store, 40)
        for n, writer in enumerate(writers):
            await writer.append_many(records(1 + n % 5))
        before = await chain.block_number()
        (batch,) = await anchorer.flush()
        assert batch.count == 40
        assert batch.block_number == before + 1
        assert batch.gas_used is not None
        assert batch.gas_used > 0
        assert [h.index for h in batch.heads] == [n % 5 for n in range(40)]
        assert len(await _anchored_events(anchor)) == 1
        for n, writer in enumerate(writers):
            for index in range(1 + n % 5):
                proof = await anchorer.prove(writer.stream_id, index)
                assert len(proof.chain) == n % 5 - index
                check = await verify_anchor(proof, chain)
                assert check.ok, check
                assert check.block_number == batch.block_number
                assert check.message is not None
                assert (check.message.stream_id, check.message.index) == (writer.stream_id, index)
                # The proof travels as JSON and reads back the same.
                assert decode_anchor_proof(proof.to_dict()) == proof
        await anchorer.stop()


async def test_a_batch_holds_only_heads_written_since_the_last_one(
    chain: EmbeddedLedger, maker: StoreMaker
) -> None:
    anchor = await _anchor(chain)
    async with maker.open() as store:
        anchorer = StreamAnchorer(store, anchor=anchor, signer=chain.dev_accounts()[1], config=MANY)
        await anchorer.start()
        quiet, busy = await _writers(store, 2)
        await quiet.append_many(records(3))
        await busy.append_many(records(3))
        (first,) = await anchorer.flush()
        assert await anchorer.flush() == []  # nothing new: no transaction
        await busy.append_many(records(4))
        (second,) = await anchorer.flush()
        assert [(h.stream_id, h.index) for h in second.heads] == [(busy.stream_id, 6)]
        # A message is proved by the earliest anchored head at or after it.
        early = await anchorer.prove(busy.stream_id, 1)
        assert (early.batch, len(early.chain)) == (first.id, 1)
        late = await anchorer.prove(busy.stream_id, 3)
        assert (late.batch, len(late.chain)) == (second.id, 3)
        for proof in (early, late, await anchorer.prove(quiet.stream_id, 0)):
            assert (await verify_anchor(proof, chain)).ok
        await busy.append_many(records(1))
        with pytest.raises(ProvenanceError) as caught:
            await anchorer.prove(busy.stream_id, 7)
        assert caught.value.code == "not_anchored"
        await anchorer.stop()


async def test_anchoring_starts_by_itself_once_enough_messages_wait(
    chain: EmbeddedLedger, maker: StoreMaker
) -> None:
    anchor = await _anchor(chain)
    config = AnchorConfig(batch_records=8, batch_interval_s=3600.0)
    async with maker.open() as store:
        anchorer = StreamAnchorer(
            store, anchor=anchor, signer=chain.dev_accounts()[1], config=config
        )
        await anchorer.start()
        (writer,) = await _writers(store, 1)
        await writer.append_many(records(8))

        async def anchored() -> bool:
            return any(batch.anchored for batch, _ in await store.anchors(writer.stream_id, 7))

        await eventually_async(anchored)
        (found,) = await store.anchors(writer.stream_id, 7)
        await anchorer.stop()
    assert found[0].heads[found[1]].index == 7


# -- forged proofs


async def _one_proof(chain: EmbeddedLedger, store: StreamStore) -> tuple[AnchorProof, Any]:
    anchor = await _anchor(chain)
    anchorer = StreamAnchorer(store, anchor=anchor, signer=chain.dev_accounts()[1], config=MANY)
    await anchorer.start()
    writers = await _writers(store, 5)
    for writer in writers:
        await writer.append_many(records(4))
    await anchorer.flush()
    return await anchorer.prove(writers[2].stream_id, 1), anchorer


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


FORGERIES: dict[str, tuple[Callable[[AnchorProof], AnchorProof], str]] = {
    "message byte": (
        lambda p: dataclasses.replace(p, message=_flip(p.message, 150)),
        "forged_proof",
    ),
    "message signature": (
        lambda p: dataclasses.replace(p, message=_flip(p.message, -3)),
        "forged_proof",
    ),
    "message cut": (lambda p: dataclasses.replace(p, message=p.message[:-1]), "forged_proof"),
    "chain dropped": (lambda p: dataclasses.replace(p, chain=p.chain[1:]), "forged_proof"),
    "chain byte": (
        lambda p: dataclasses.replace(p, chain=(_flip(p.chain[0], 150), *p.chain[1:])),
        "forged_proof",
    ),
    "chain cut short": (lambda p: dataclasses.replace(p, chain=p.chain[:-1]), "forged_proof"),
    "position": (lambda p: dataclasses.replace(p, position=p.position + 1), "forged_proof"),
    "count": (lambda p: dataclasses.replace(p, count=p.count + 1), "forged_proof"),
    "sibling": (
        lambda p: dataclasses.replace(p, siblings=(_flip(p.siblings[0], 0), *p.siblings[1:])),
        "forged_proof",
    ),
    "sibling dropped": (lambda p: dataclasses.replace(p, siblings=p.siblings[1:]), "forged_proof"),
    "root": (lambda p: dataclasses.replace(p, root=_flip(p.root, 31)), "forged_proof"),
    "batch": (lambda p: dataclasses.replace(p, batch=p.batch + 1), "forged_proof"),
    "chain id": (lambda p: dataclasses.replace(p, chain_id=p.chain_id + 1), "wrong_chain"),
    "anchor contract": (
        lambda p: dataclasses.replace(p, anchor=Address(bytes([7]) * 20)),
        "wrong_chain",
    ),
    "submitter": (
        lambda p: dataclasses.replace(p, submitter=Address(bytes([8]) * 20)),
        "not_anchored",
    ),
    "tx hash": (lambda p: dataclasses.replace(p, tx_hash=bytes(32)), "wrong_block"),
    "no tx": (
        lambda p: dataclasses.replace(p, tx_hash=None, block_number=None),
        "not_anchored",
    ),
    "earlier block": (
        lambda p: dataclasses.replace(p, block_number=(p.block_number or 1) - 1),
        "wrong_block",
    ),
    "later block": (
        lambda p: dataclasses.replace(p, block_number=(p.block_number or 0) + 100),
        "wrong_block",
    ),
}


@pytest.mark.parametrize("field", list(FORGERIES))
async def test_a_forged_field_is_refused_and_named(
    chain: EmbeddedLedger, maker: StoreMaker, field: str
) -> None:
    async with maker.open() as store:
        proof, anchorer = await _one_proof(chain, store)
        assert (await verify_anchor(proof, chain)).ok
        forge, code = FORGERIES[field]
        check = await verify_anchor(forge(proof), chain)
        await anchorer.stop()
    assert not check.ok
    assert check.problem == code, check
    assert check.block_number is None


async def test_a_tree_of_ones_own_is_wrong_root_or_not_anchored(
    chain: EmbeddedLedger, maker: StoreMaker
) -> None:
    async with maker.open() as store:
        proof, anchorer = await _one_proof(chain, store)
        await anchorer.stop()
    # A cheat makes a consistent tree around the message: the path holds, the chain
    # does not know its root.
    head = decode_message(proof.chain[-1])
    leaves = [stream_leaf(head.stream_id, head.index, head.hash), bytes([5]) * 32]
    own = dataclasses.replace(
        proof,
        position=0,
        count=2,
        siblings=tuple(merkle_proof(leaves, 0)),
        root=merkle_root(leaves),
    )
    assert own.check_offline()[1] is None
    assert (await verify_anchor(own, chain)).problem == "wrong_root"
    empty_block = dataclasses.replace(own, block_number=(proof.block_number or 1) - 1)
    assert (await verify_anchor(empty_block, chain)).problem == "not_anchored"
    trusted = frozenset({PrivateKey(bytes(31) + b"\x09").address})
    assert (await verify_anchor(proof, chain, submitters=trusted)).problem == "untrusted_submitter"
    assert (await verify_anchor(proof, chain, submitters=frozenset({proof.submitter}))).ok


# -- restarts


class Crash(BaseException):
    """The process dying at this point (not an error anything handles)."""


MOMENTS = ("before the send", "after the send", "before it is marked")


@pytest.mark.parametrize("moment", MOMENTS)
async def test_a_crash_mid_anchoring_neither_loses_nor_doubles_a_batch(
    chain: EmbeddedLedger, maker: StoreMaker, moment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchor = await _anchor(chain)
    signer = chain.dev_accounts()[1]
    async with maker.open() as store:
        writers = await _writers(store, 6)
        for writer in writers:
            await writer.append_many(records(3))
        anchorer = StreamAnchorer(store, anchor=anchor, signer=signer, config=MANY)
        await anchorer.start()
        # Where the process dies: before the transaction is sent; once it is sent (and
        # its hash kept) but before its receipt; once mined but before it is marked.
        target: Any = {MOMENTS[0]: anchor, MOMENTS[1]: chain, MOMENTS[2]: store}[moment]
        name = {
            MOMENTS[0]: "submit",
            MOMENTS[1]: "wait_for_receipt",
            MOMENTS[2]: "mark_batch_anchored",
        }[moment]

        async def crash(*args: object, **kwargs: object) -> None:
            raise Crash

        monkeypatch.setattr(target, name, crash)
        with pytest.raises(Crash):
            await anchorer.flush()
        monkeypatch.undo()
        await anchorer.stop()
        (recorded,) = await store.unanchored_batches()
        assert (recorded.tx_hash is None) == (moment == MOMENTS[0])
    submitted = len(await _anchored_events(anchor, recorded.root))
    assert submitted == (0 if moment == MOMENTS[0] else 1)

    async with maker.open() as store:  # the restart
        (still,) = await store.unanchored_batches()
        assert still == recorded
        anchorer = StreamAnchorer(store, anchor=anchor, signer=signer, config=MANY)
        await anchorer.start()  # resumes: looks for the batch on chain first
        assert await store.unanchored_batches() == []
        assert await anchorer.flush() == []  # no head is batched twice
        proof = await anchorer.prove(writers[3].stream_id, 0)
        assert proof.batch == recorded.id
        assert (await verify_anchor(proof, chain)).ok
        await anchorer.stop()
    assert len(await _anchored_events(anchor, recorded.root)) == 1
    assert len(await _anchored_events(anchor)) == 1


# -- export


async def test_an_export_carries_its_anchors_and_proves_every_message_it_covers(
    chain: EmbeddedLedger, maker: StoreMaker, tmp_path: Path
) -> None:
    anchor = await _anchor(chain)
    async with maker.open() as store:
        anchorer = StreamAnchorer(store, anchor=anchor, signer=chain.dev_accounts()[1], config=MANY)
        await anchorer.start()
        (writer,) = await _writers(store, 1)
        await writer.append_many(records(3))
        await anchorer.flush()
        await writer.append_many(records(3))
        await anchorer.flush()
        await writer.append_many(records(2))  # not anchored yet
        proofs = await anchorer.head_proofs(writer.stream_id)
        assert [decode_message(p.message).index for p in proofs] == [2, 5]
        path = tmp_path / "stream.jsonl"
        assert await export_stream(store, writer.stream_id, path, anchors=proofs) == 8
        await anchorer.stop()
    with path.open("rb") as source:
        read = read_stream_file(source)
    assert read.verify().ok
    assert read.anchors == tuple(proofs)
    for index in range(6):
        proof = read.anchor_proof(index)
        assert proof is not None
        assert (await verify_anchor(proof, chain)).ok
    assert read.anchor_proof(6) is None
    assert read.anchor_proof(7) is None


async def test_stream_heads_are_anchored_and_proved_on_every_ledger(
    ledger: Ledger, tmp_path: Path
) -> None:
    from m2mpay.provenance import SqliteStreamStore

    anchor = await _anchor(ledger)
    async with SqliteStreamStore(tmp_path / "streams.sqlite3") as store:
        anchorer = StreamAnchorer(
            store, anchor=anchor, signer=ledger.dev_accounts()[1], config=MANY
        )
        await anchorer.start()
        writers = await _writers(store, 3)
        for writer in writers:
            await writer.append_many(records(2))
        (batch,) = await anchorer.flush()
        for writer in writers:
            check = await verify_anchor(await anchorer.prove(writer.stream_id, 0), ledger)
            assert check.ok, check
            assert check.block_number == batch.block_number
        forged = dataclasses.replace(
            await anchorer.prove(writers[0].stream_id, 1), tx_hash=bytes(32)
        )
        assert (await verify_anchor(forged, ledger)).problem == "wrong_block"
        await anchorer.stop()
