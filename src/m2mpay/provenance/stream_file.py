"""A provenance stream as a file: JSON lines, one stream a file.

The first line describes the stream; every next line holds one message, in order::

    {"count":2,"format":"m2mpay-provenance-stream","root":"0x4d325052…","stream":"0x…","version":1}
    {"message":"0x4d32504d…"}
    {"message":"0x4d32504d…"}

`root` and `message` are the exact bytes of `stream_format` in 0x-hex: a reader
verifies those, never the JSON around them. `count` lets a reader tell a file cut short
(``truncated``); it is not signed, so it guards against accidents, not against whoever
edits the file (an anchored head does that). Files are read with bounds on each line and
on the number of messages, and written to a temporary file renamed into place, so an
export interrupted at any moment leaves no half file under the name asked for.

Version 2 adds an optional section after the messages: the proofs that the stream's
heads were anchored on chain (`anchor_proof.AnchorProof`, without a chain of messages,
since the file holds them), one line each, their number in the header::

    {"anchors":1,"count":2,"format":"m2mpay-provenance-stream","root":"0x…",…,"version":2}
    {"message":"0x4d32504d…"}
    {"message":"0x4d32504d…"}
    {"anchor":{"batch":3,"block_number":17,…,"version":1}}

A file without anchors is written as version 1, which every reader reads. With the
file's messages a head's proof proves every message up to that head
(`StreamFile.anchor_proof`). `StreamFile.check_anchors` checks offline what the proofs
claim of the verified stream (each head one of its messages, each path leading to its
root), as the web reader does (web/reader/anchor.js); that the chain holds each root in
the block named is `verify_anchor`'s part, with a ledger.

`import_stream` verifies a file before it stores anything of it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import orjson

from m2mpay.errors import ProvenanceError
from m2mpay.provenance.anchor_proof import MAX_SIBLINGS, AnchorProof, decode_anchor_proof
from m2mpay.provenance.anchoring import AnchorProblem
from m2mpay.provenance.stream_format import (
    MAX_MESSAGE_SIZE,
    MAX_ROOT_SIZE,
    StreamInvalid,
    StreamMessage,
    StreamRoot,
    decode_message,
)
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.stream_verify import ReadKey, Verified, verify

__all__ = [
    "FILE_FORMAT",
    "MAX_FILE_MESSAGES",
    "FileAnchors",
    "StreamFile",
    "export_stream",
    "import_stream",
    "read_stream_file",
    "stream_file_lines",
]

FILE_FORMAT: Final = "m2mpay-provenance-stream"
FILE_VERSION: Final = 2  # 2: anchors; a file without them is written as 1
_VERSIONS: Final = (1, 2)
MAX_FILE_MESSAGES: Final = 1_000_000
_MAX_LINE: Final = 2 * MAX_MESSAGE_SIZE + 64
_MAX_HEADER_LINE: Final = 2 * MAX_ROOT_SIZE + 400
_MAX_ANCHOR_LINE: Final = 2 * MAX_MESSAGE_SIZE + 70 * MAX_SIBLINGS + 1000
_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class FileAnchors:
    """What a file's anchor proofs prove of its verified stream, offline
    (`StreamFile.check_anchors`): `heads`, the (head index, proof) of each proof that
    holds, in file order; or the first that does not: `problem` (``forged_proof``), its
    place among the file's anchors (`anchor`, from 0), the message index its head claims
    (`index`, None if it does not decode) and `detail`; then `heads` is empty, since a
    file that carries a forged proof shows nothing as anchored."""

    heads: tuple[tuple[int, AnchorProof], ...]
    problem: AnchorProblem | None = None
    anchor: int | None = None
    index: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def covering(self, index: int) -> AnchorProof | None:
        """The proof of the first head (in file order) at or after message `index` if it
        names its transaction; None: not anchored (yet), as far as the file says."""
        for head, proof in self.heads:
            if index <= head:
                return None if proof.tx_hash is None or proof.block_number is None else proof
        return None


@dataclass(frozen=True, slots=True)
class StreamFile:
    """A file as read, before verification: what its header says and the raw bytes."""

    stream_id: bytes
    count: int
    root: bytes
    messages: tuple[bytes, ...]
    anchors: tuple[AnchorProof, ...] = ()

    def anchor_proof(self, index: int) -> AnchorProof | None:
        """The proof that message `index` was anchored, made of the file's first anchor
        of a head at or after it and the messages between; None if no anchor covers it
        (or the anchors' heads do not decode: `verify_anchor` names what is wrong)."""
        if not 0 <= index < len(self.messages):
            return None
        for proof in self.anchors:
            try:
                head = decode_message(proof.message).index
            except StreamInvalid:
                continue
            if index <= head < len(self.messages):
                return dataclasses.replace(
                    proof,
                    message=self.messages[index],
                    chain=self.messages[index + 1 : head + 1],
                )
        return None

    def check_anchors(self, verified: Verified) -> FileAnchors:
        """The file's anchor proofs checked offline against `verified` (this file's stream,
        verified in full): each proof's head must be one of its verified messages (this
        stream's, at a verified index, with the same hash) and its path must lead to its
        root. No chain is asked (see the module docstring)."""
        if verified.root is None or not verified.ok:
            raise ProvenanceError("not_verified", "anchors are checked on a verified stream")
        stream_id = verified.root.stream_id
        heads: list[tuple[int, AnchorProof]] = []
        for at, proof in enumerate(self.anchors):

            def forged(index: int | None, detail: str, at: int = at) -> FileAnchors:
                said = f"anchor {at + 1} of the file: {detail}"
                return FileAnchors((), AnchorProblem.FORGED_PROOF, at, index, said)

            try:
                head = decode_message(proof.message)
            except StreamInvalid as exc:
                return forged(None, f"its head does not decode: {exc.message}")
            if head.stream_id != stream_id:
                return forged(head.index, f"its head is of stream 0x{head.stream_id.hex()}")
            if head.index >= len(verified.messages):
                return forged(
                    head.index,
                    f"its head is message {head.index + 1} (index {head.index}),"
                    f" beyond the {len(verified.messages)} verified",
                )
            if head.hash != verified.messages[head.index].message.hash:
                return forged(
                    head.index,
                    f"its head is not the stream's message {head.index + 1} (index {head.index})",
                )
            _, detail = dataclasses.replace(proof, chain=()).check_offline()
            if detail is not None:
                return forged(head.index, detail)
            heads.append((head.index, proof))
        return FileAnchors(tuple(heads))

    def verify(self, key: ReadKey | None = None, *, payloads: bool = True) -> Verified:
        return verify(
            self.root,
            self.messages,
            key,
            stream_id=self.stream_id,
            count=self.count,
            payloads=payloads,
        )


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def stream_file_lines(
    root: StreamRoot, messages: list[StreamMessage], anchors: Sequence[AnchorProof] = ()
) -> Iterator[bytes]:
    """The lines of the file of `root`, `messages` and the proofs of its anchored heads
    (their chains dropped), each ending in a newline."""
    header: dict[str, object] = {
        "format": FILE_FORMAT,
        "version": 2 if anchors else 1,
        "stream": _hex(root.stream_id),
        "count": len(messages),
        "root": _hex(root.raw),
    }
    if anchors:
        header["anchors"] = len(anchors)
    yield orjson.dumps(header, option=orjson.OPT_SORT_KEYS) + b"\n"
    for message in messages:
        yield orjson.dumps({"message": _hex(message.raw)}) + b"\n"
    for proof in anchors:
        head = (
            dataclasses.replace(proof, message=proof.chain[-1], chain=()) if proof.chain else proof
        )
        yield orjson.dumps({"anchor": head.to_dict()}, option=orjson.OPT_SORT_KEYS) + b"\n"


async def export_stream(
    store: StreamStore, stream_id: bytes, path: Path, *, anchors: Sequence[AnchorProof] = ()
) -> int:
    """Write the stream `store` holds to `path`, with the proofs of its anchored heads
    given (`StreamAnchorer.head_proofs`); returns how many messages it wrote."""
    root = await store.root(stream_id)
    if root is None:
        raise ProvenanceError("unknown_stream", f"no stream 0x{stream_id.hex()}")
    messages: list[StreamMessage] = []
    while page := await store.messages(stream_id, len(messages), _PAGE):
        messages.extend(page)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.writelines(stream_file_lines(root, messages, anchors))
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return len(messages)


def _field_bytes(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or value[:2] != "0x" or len(value) > 2 + 2 * limit:
        raise StreamInvalid("malformed", f"{what} is not 0x-hex of at most {limit} bytes")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise StreamInvalid("malformed", f"{what} is not hexadecimal") from None


def _line(source: BinaryIO, limit: int, number: int) -> object | None:
    line = source.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit:
        raise StreamInvalid("malformed", f"line {number} is longer than {limit} bytes")
    if not line.endswith(b"\n"):
        raise StreamInvalid("truncated", f"line {number} is cut short")
    try:
        value: object = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise StreamInvalid("malformed", f"line {number} is not JSON: {exc}") from None
    return value


def read_stream_file(source: BinaryIO) -> StreamFile:
    """The stream a file holds, unverified; `StreamInvalid` if it is not such a file."""
    header = _line(source, _MAX_HEADER_LINE, 1)
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        raise StreamInvalid("malformed", "not a provenance stream file")
    version = header.get("version")
    if version not in _VERSIONS or type(version) is not int:
        raise StreamInvalid("unknown_version", f"stream file version {version!r}")
    anchor_count = header.get("anchors", 0) if version >= 2 else 0
    if type(anchor_count) is not int or not 0 <= anchor_count <= MAX_FILE_MESSAGES:
        raise StreamInvalid("malformed", f"anchors is 0 to {MAX_FILE_MESSAGES}")
    count = header.get("count")
    if type(count) is not int or not 0 <= count <= MAX_FILE_MESSAGES:
        raise StreamInvalid("malformed", f"count is 0 to {MAX_FILE_MESSAGES}")
    stream_id = _field_bytes(header.get("stream"), "stream", 32)
    root = _field_bytes(header.get("root"), "root", MAX_ROOT_SIZE)
    messages: list[bytes] = []
    anchors: list[AnchorProof] = []
    # An anchor holds a head's message and its path: a line a little longer.
    limit = _MAX_ANCHOR_LINE if anchor_count else _MAX_LINE
    while (line := _line(source, limit, len(messages) + len(anchors) + 2)) is not None:
        number = len(messages) + len(anchors) + 2
        if isinstance(line, dict) and set(line) == {"anchor"} and version >= 2:
            if len(anchors) >= anchor_count:
                raise StreamInvalid("malformed", f"line {number}: more anchors than the header's")
            proof = decode_anchor_proof(line["anchor"])
            if proof.chain:
                raise StreamInvalid("malformed", f"line {number}: an anchor in a file has no chain")
            anchors.append(proof)
            continue
        if anchors or len(messages) >= MAX_FILE_MESSAGES:
            raise StreamInvalid("malformed", f"line {number}: no message after the anchors")
        if not isinstance(line, dict) or set(line) != {"message"}:
            raise StreamInvalid("malformed", f"line {number} is not a message")
        messages.append(_field_bytes(line["message"], "message", MAX_MESSAGE_SIZE))
    if len(anchors) != anchor_count:
        raise StreamInvalid(
            "truncated", f"the header says {anchor_count} anchors, got {len(anchors)}"
        )
    return StreamFile(stream_id, count, root, tuple(messages), tuple(anchors))


async def import_stream(store: StreamStore, path: Path, key: ReadKey | None = None) -> Verified:
    """Verify the file at `path` and keep its stream in `store`; nothing is stored
    unless all of it verifies (`StreamInvalid` names the first problem). Without a key,
    sealed payloads are kept unread. What `store` already holds of the stream must be
    the file's first messages; only the rest is appended."""
    with path.open("rb") as source:
        stream_file = read_stream_file(source)
    verified = stream_file.verify(key, payloads=key is not None)
    verified.raise_if_invalid()
    assert verified.root is not None
    messages = [m.message for m in verified.messages]
    await store.add_root(verified.root)
    head = await store.head(verified.root.stream_id)
    held = 0 if head is None else head.index + 1
    overlap = min(held, len(messages))
    if overlap:
        # Hashes chain: the same message at the last index both hold means the same
        # messages before it.
        stored = await store.messages(verified.root.stream_id, overlap - 1, 1)
        if not stored or stored[0].hash != messages[overlap - 1].hash:
            raise ProvenanceError(
                "conflict", "the store holds other messages of this stream than the file"
            )
    for start in range(held, len(messages), _PAGE):
        await store.append(messages[start : start + _PAGE])
    return verified
