"""The web reader's anchor checks (web/reader/anchor.js, run in Node as the page bundles
it) agree with Python's: the same stream leaves and Merkle nodes (`records.stream_leaf`,
`crypto.merkle`), and on a file of a stream anchored on an embedded chain and each forgery
of its proofs, the same verdict as `StreamFile.check_anchors` (which proof fails, with
which code, at which message; which messages are anchored in which block). The proofs
that hold also hold on chain (`verify_anchor`); the browser tests show the page."""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from m2mpay.chain import EmbeddedLedger, deploy_anchor
from m2mpay.crypto import merkle_proof, merkle_root
from m2mpay.errors import ProvenanceError
from m2mpay.provenance import AccessMode, MemoryStreamStore, ProvenanceStream, StreamWriter
from m2mpay.provenance.anchor_proof import AnchorProof, verify_anchor
from m2mpay.provenance.anchoring import AnchorConfig
from m2mpay.provenance.reader_app import reader_mount, stream_file_path
from m2mpay.provenance.records import stream_leaf
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_file import read_stream_file, stream_file_lines
from m2mpay.provenance.stream_format import StreamMessage
from tests.provenance.streams_kit import AUTHOR, Clock, forge, in_node, records

DRIVER = Path(__file__).with_name("reader_anchor.mjs")
MANY = AnchorConfig(batch_records=10**6, batch_interval_s=3600.0)


def _in_js(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = in_node([str(DRIVER)], cases, timeout=120)
    return answers


def test_stream_leaves_and_merkle_trees_are_hashed_as_python_hashes_them() -> None:
    rng = random.Random(15)
    cases: list[dict[str, Any]] = []
    expected: list[dict[str, Any]] = []
    for count in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33]:
        leaves = [rng.randbytes(32) for _ in range(count)]
        proofs = [merkle_proof(leaves, i) for i in range(count)]
        # Each proof made wrong in one way: a sibling flipped, or one too few.
        forged = [[bytes([p[0][0] ^ 1]) + p[0][1:], *p[1:]] if p else [bytes(32)] for p in proofs]
        forged[-1] = proofs[-1][:-1] if proofs[-1] else [bytes(32)]
        cases.append(
            {
                "leaves": [x.hex() for x in leaves],
                "proofs": [[s.hex() for s in p] for p in proofs],
                "forged": [[s.hex() for s in p] for p in forged],
            }
        )
        held, refused = [True] * count, [False] * count
        expected.append({"root": merkle_root(leaves).hex(), "held": held, "forgedHeld": refused})
    for index in [0, 1, 255, 256, 2**32 + 5, 2**53 - 1]:
        stream_id, message_hash = rng.randbytes(32), rng.randbytes(32)
        cases.append({"leaf": [stream_id.hex(), index, message_hash.hex()]})
        expected.append({"leaf": stream_leaf(stream_id, index, message_hash).hex()})
    assert _in_js(cases) == expected


@dataclasses.dataclass
class Anchored:
    """A restricted stream of 9 messages, its first 5 anchored in one batch with the head
    of another stream; the file's proof and the other stream's."""

    stream: ProvenanceStream
    key: bytes
    proof: AnchorProof
    other: AnchorProof
    ledger: EmbeddedLedger
    mount: Mount  # the store's streams served with their anchorer's proofs

    def file(
        self, messages: list[StreamMessage] | None = None, anchors: list[AnchorProof] | None = None
    ) -> bytes:
        held = list(self.stream.messages) if messages is None else messages
        proofs = [self.proof] if anchors is None else anchors
        return b"".join(stream_file_lines(self.stream.root, held, proofs))


@pytest.fixture(scope="module")
async def anchored() -> AsyncIterator[Anchored]:
    async with EmbeddedLedger() as ledger, MemoryStreamStore() as store:
        deployer, submitter = ledger.dev_accounts()[:2]
        anchor, _ = await deploy_anchor(ledger, deployer)
        anchorer = StreamAnchorer(store, anchor=anchor, signer=submitter, config=MANY)
        clock = Clock()
        writer = await StreamWriter.create(store, AUTHOR, purpose="session", now_ms=clock)
        other = await StreamWriter.create(
            store, AUTHOR, purpose="other", access=AccessMode.PUBLIC, now_ms=clock
        )
        await writer.append_many(records(5))
        await other.append_many(records(2))
        (batch,) = await anchorer.flush()
        assert batch.count == 2
        await writer.append_many(records(4))
        (proof,) = await anchorer.head_proofs(writer.stream_id)
        (other_proof,) = await anchorer.head_proofs(other.stream_id)
        stream = await ProvenanceStream.load(store, writer.stream_id)
        mount = reader_mount(store, anchorer=anchorer)
        yield Anchored(stream, writer.key(), proof, other_proof, ledger, mount)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def _forgeries(a: Anchored) -> dict[str, tuple[bytes, str | None, int | None]]:
    """name: (the file, the problem, the message its head claims)."""
    p = a.proof
    messages = list(a.stream.messages)
    fork = forge(
        AUTHOR,
        a.stream.stream_id,
        4,
        messages[3].hash,
        key=a.key,
        timestamp_ms=messages[3].timestamp_ms,
    )
    no_tx = dataclasses.replace(p, tx_hash=None, block_number=None)
    replace: Callable[..., AnchorProof] = dataclasses.replace
    return {
        "anchored": (a.file(), None, None),
        "no anchors": (a.file(anchors=[]), None, None),
        "no transaction named": (a.file(anchors=[no_tx]), None, None),
        "sibling flipped": (
            a.file(anchors=[replace(p, siblings=(_flip(p.siblings[0], 3),))]),
            "forged_proof",
            4,
        ),
        "sibling dropped": (a.file(anchors=[replace(p, siblings=())]), "forged_proof", 4),
        "position": (a.file(anchors=[replace(p, position=1 - p.position)]), "forged_proof", 4),
        "count": (a.file(anchors=[replace(p, count=3)]), "forged_proof", 4),
        "root": (a.file(anchors=[replace(p, root=_flip(p.root, 0))]), "forged_proof", 4),
        "head of another stream": (a.file(anchors=[a.other]), "forged_proof", 1),
        "head another message at its index": (
            a.file(anchors=[replace(p, message=fork.raw)]),
            "forged_proof",
            4,
        ),
        "head's signature": (
            a.file(anchors=[replace(p, message=_flip(p.message, len(p.message) - 5))]),
            "forged_proof",
            4,
        ),
        "head beyond the verified messages": (
            a.file(messages=messages[:3]),
            "forged_proof",
            4,
        ),
        "a good proof, then a forged one": (
            a.file(anchors=[p, replace(p, root=bytes(32))]),
            "forged_proof",
            4,
        ),
    }


async def test_the_files_anchors_are_checked_as_python_checks_them(anchored: Anchored) -> None:
    forgeries = _forgeries(anchored)
    cases = [{"file": data.hex(), "key": anchored.key.hex()} for data, _, _ in forgeries.values()]
    answers = _in_js(cases)
    for (name, (data, code, index)), answer in zip(forgeries.items(), answers, strict=True):
        read = read_stream_file(io.BytesIO(data))
        verified = read.verify(anchored.key)
        assert verified.ok, name
        checked = read.check_anchors(verified)
        expected = {
            "ok": True,
            "code": None,
            "problem": None
            if checked.problem is None
            else {"code": checked.problem.value, "anchor": checked.anchor, "index": checked.index},
            "heads": [head for head, _ in checked.heads],
            "blocks": [
                None if (found := checked.covering(i)) is None else found.block_number
                for i in range(len(verified.messages))
            ],
        }
        assert answer == expected, name
        assert (checked.problem, checked.index) == (code, index), (name, checked.detail)
        if code is not None:
            assert checked.heads == ()  # nothing shown as anchored
    block = anchored.proof.block_number
    assert block is not None
    assert (
        _in_js([{"file": forgeries["anchored"][0].hex(), "key": anchored.key.hex()}])[0]["blocks"]
        == [block] * 5 + [None] * 4
    )
    # What the reader shows as anchored, the chain confirms; the forged ones it refuses.
    read = read_stream_file(io.BytesIO(forgeries["anchored"][0]))
    for index in range(5):
        proof = read.anchor_proof(index)
        assert proof is not None
        assert (await verify_anchor(proof, anchored.ledger)).ok


async def test_the_mount_serves_a_stream_with_the_proofs_of_its_anchored_heads(
    anchored: Anchored,
) -> None:
    transport = httpx.ASGITransport(app=Starlette(routes=[anchored.mount]))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
        served = await http.get("/provenance" + stream_file_path(anchored.stream.stream_id))
    assert served.status_code == 200
    read = read_stream_file(io.BytesIO(served.content))
    assert read.anchors == (anchored.proof,)
    verified = read.verify(anchored.key)
    checked = read.check_anchors(verified)
    assert checked.ok
    assert checked.heads == ((4, anchored.proof),)
    assert [checked.covering(i) is not None for i in range(9)] == [True] * 5 + [False] * 4
    # Anchors are checked against a stream that verified, never a part of one.
    cut = read_stream_file(io.BytesIO(anchored.file(messages=list(anchored.stream.messages)[1:])))
    with pytest.raises(ProvenanceError) as caught:
        cut.check_anchors(cut.verify(anchored.key))
    assert caught.value.code == "not_verified"
