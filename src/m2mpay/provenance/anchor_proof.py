"""`AnchorProof`: that a stream message was anchored on chain, and at which block.

A batch anchors stream heads; a message that was not itself a head is proved by a later
head of its stream that was, and the messages between them: each names the hash of the
one before (`prev`), so the anchored head's hash commits to every message up to it. A
proof therefore holds:

- `message`: the message proved, as its exact bytes (its signature checked against its
  signer field, since the hash that is anchored leaves the signature out);
- `chain`: the messages after it up to the anchored head, in order (empty when the
  message is the head);
- the head's Merkle path (`position` of `count` leaves, `siblings`) to `root`;
- where the root is: the `anchor` contract on `chain_id`, the `submitter` that anchored
  it as batch `batch`, the `tx_hash` and `block_number`.

`verify_anchor(proof, ledger)` checks it offline first (the chain of hashes, the path:
anything that does not lead to the root is ``forged_proof``), then on chain: the
contract's `Anchored` event for (submitter, `STREAMS_SOURCE`, root, batch, count) in that
transaction of that block. A root the chain holds elsewhere is ``wrong_block``; a block
that anchors other roots of the submitter but not this one, ``wrong_root``; a root
nowhere on chain, ``not_anchored``. The proof says nothing of the message's author:
`verify` checks the stream's signatures, this what the chain saw and when.

As JSON (`to_dict`, `decode_anchor_proof`): version 1, bytes as 0x-hex, read with bounds
on every field, so an export file can carry its stream's anchors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from m2mpay.chain.anchor import TelemetryAnchor
from m2mpay.chain.ledger import Ledger
from m2mpay.crypto import Address, Signature, recover_signer, verify_merkle_proof
from m2mpay.errors import CryptoError
from m2mpay.provenance.anchoring import STREAMS_SOURCE, AnchorProblem, check_anchored
from m2mpay.provenance.records import stream_leaf
from m2mpay.provenance.stream_format import (
    MAX_MESSAGE_SIZE,
    StreamInvalid,
    StreamMessage,
    decode_message,
    signing_digest,
)

__all__ = [
    "PROOF_VERSION",
    "AnchorCheck",
    "AnchorProblem",
    "AnchorProof",
    "decode_anchor_proof",
    "verify_anchor",
]

PROOF_VERSION: Final = 1
MAX_CHAIN: Final = 100_000  # messages between a proved one and its anchored head
MAX_SIBLINGS: Final = 64  # a tree of up to 2**64 leaves
_UINT64: Final = 1 << 64
_KEYS: Final = frozenset(
    (
        "version",
        "message",
        "chain",
        "batch",
        "position",
        "count",
        "siblings",
        "root",
        "anchor",
        "chain_id",
        "submitter",
        "tx_hash",
        "block_number",
    )
)


@dataclass(frozen=True, slots=True)
class AnchorProof:
    """See the module docstring."""

    message: bytes
    chain: tuple[bytes, ...]
    batch: int
    position: int
    count: int
    siblings: tuple[bytes, ...]
    root: bytes
    anchor: Address
    chain_id: int
    submitter: Address
    tx_hash: bytes | None
    block_number: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PROOF_VERSION,
            "message": _hex(self.message),
            "chain": [_hex(m) for m in self.chain],
            "batch": self.batch,
            "position": self.position,
            "count": self.count,
            "siblings": [_hex(s) for s in self.siblings],
            "root": _hex(self.root),
            "anchor": self.anchor.checksum,
            "chain_id": self.chain_id,
            "submitter": self.submitter.checksum,
            "tx_hash": None if self.tx_hash is None else _hex(self.tx_hash),
            "block_number": self.block_number,
        }

    def check_offline(self) -> tuple[StreamMessage | None, str | None]:
        """The message proved, and why the proof does not lead to its root (None: it
        does). No chain is asked."""
        try:
            message = decode_message(self.message)
            chain = [decode_message(m) for m in self.chain]
        except StreamInvalid as exc:
            return None, f"a message of the proof does not decode: {exc}"
        # The hash leaves the signature out: without this check the proved bytes could
        # carry any signature and still lead to the root.
        if not _signed_by_signer(message):
            return message, "the message's signature is not its signer's"
        head = message
        for after in chain:
            if (after.stream_id, after.index, after.prev) != (
                head.stream_id,
                head.index + 1,
                head.hash,
            ):
                return message, f"message {after.index} does not follow {head.index}"
            head = after
        leaf = stream_leaf(head.stream_id, head.index, head.hash)
        if not verify_merkle_proof(leaf, self.position, self.count, self.siblings, self.root):
            return message, f"head {head.index}'s path does not lead to the root"
        return message, None


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """What `verify_anchor` found: `ok` only when no problem was; `message` is the
    message proved (None if it does not decode)."""

    message: StreamMessage | None
    problem: AnchorProblem | None
    detail: str
    block_number: int | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def raise_if_invalid(self) -> None:
        if self.problem is not None:
            raise StreamInvalid(self.problem.value, self.detail)


async def verify_anchor(
    proof: AnchorProof, ledger: Ledger, *, submitters: frozenset[Address] | None = None
) -> AnchorCheck:
    """Check `proof` offline, then against `ledger`'s logs (see the module docstring);
    only `submitters` are trusted when given. Never raises over a proof; a ledger that
    fails raises its `LedgerError`."""
    message, forged = proof.check_offline()

    def fail(problem: AnchorProblem, detail: str) -> AnchorCheck:
        return AnchorCheck(message, problem, detail, None)

    if forged is not None:
        return fail(AnchorProblem.FORGED_PROOF, forged)
    if proof.chain_id != ledger.chain_id:
        return fail(AnchorProblem.WRONG_CHAIN, f"chain {proof.chain_id}, not {ledger.chain_id}")
    if submitters is not None and proof.submitter not in submitters:
        return fail(AnchorProblem.UNTRUSTED_SUBMITTER, f"anchored by {proof.submitter}")
    if proof.block_number is None or proof.tx_hash is None:
        return fail(AnchorProblem.NOT_ANCHORED, "the proof names no transaction")
    if not await ledger.code(proof.anchor):
        return fail(AnchorProblem.WRONG_CHAIN, f"no contract at {proof.anchor} on this chain")
    anchor = TelemetryAnchor(ledger, proof.anchor)
    problem, detail = await check_anchored(
        anchor,
        submitter=proof.submitter,
        source=STREAMS_SOURCE,
        root=proof.root,
        first_seq=proof.batch,
        count=proof.count,
        block_number=proof.block_number,
        tx_hash=proof.tx_hash,
    )
    if problem is not None:
        return fail(problem, detail)
    return AnchorCheck(message, None, detail, proof.block_number)


def _signed_by_signer(message: StreamMessage) -> bool:
    try:
        signer = recover_signer(signing_digest(message.hash), Signature(message.signature))
    except CryptoError:
        return False
    return signer == message.signer


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _bytes(value: object, what: str, least: int, most: int) -> bytes:
    if not isinstance(value, str) or value[:2] != "0x" or len(value) > 2 + 2 * most:
        raise StreamInvalid("malformed", f"{what} is not 0x-hex of at most {most} bytes")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        raise StreamInvalid("malformed", f"{what} is not hexadecimal") from None
    if len(data) < least:
        raise StreamInvalid("malformed", f"{what} is at least {least} bytes")
    return data


def _int(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < _UINT64:
        raise StreamInvalid("malformed", f"{what} is an unsigned 64-bit integer")
    return value


def _address(value: object, what: str) -> Address:
    return Address(_bytes(value, what, 20, 20))


def _list(value: object, what: str, most: int) -> list[object]:
    if not isinstance(value, list) or len(value) > most:
        raise StreamInvalid("malformed", f"{what} is a list of at most {most}")
    return value


def decode_anchor_proof(value: object) -> AnchorProof:
    """The proof a JSON value (as `to_dict` made it) holds; `StreamInvalid` (malformed,
    unknown_version) if it is not one. What it proves is not checked here."""
    if not isinstance(value, dict):
        raise StreamInvalid("malformed", "an anchor proof is a JSON object")
    if "version" in value and value["version"] != PROOF_VERSION:
        raise StreamInvalid("unknown_version", f"anchor proof version {value['version']!r}")
    if set(value) != _KEYS:
        raise StreamInvalid("malformed", "an anchor proof has exactly the fields of version 1")
    tx_hash = value["tx_hash"]
    block_number = value["block_number"]
    return AnchorProof(
        message=_bytes(value["message"], "message", 0, MAX_MESSAGE_SIZE),
        chain=tuple(
            _bytes(m, "a chain message", 0, MAX_MESSAGE_SIZE)
            for m in _list(value["chain"], "chain", MAX_CHAIN)
        ),
        batch=_int(value["batch"], "batch"),
        position=_int(value["position"], "position"),
        count=_int(value["count"], "count"),
        siblings=tuple(
            _bytes(s, "a sibling", 32, 32)
            for s in _list(value["siblings"], "siblings", MAX_SIBLINGS)
        ),
        root=_bytes(value["root"], "root", 32, 32),
        anchor=_address(value["anchor"], "anchor"),
        chain_id=_int(value["chain_id"], "chain_id"),
        submitter=_address(value["submitter"], "submitter"),
        tx_hash=None if tx_hash is None else _bytes(tx_hash, "tx_hash", 32, 32),
        block_number=None if block_number is None else _int(block_number, "block_number"),
    )
