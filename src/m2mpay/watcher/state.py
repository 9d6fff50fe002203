"""The watcher's memory: registrations, held proofs, chain views and dispute records.

Every change goes through a `WatcherState` mutator that also returns the durable record
describing it; replaying those records with `apply_record` (or loading `snapshot()`)
rebuilds the same state, so the log is the truth and memory is a cache of it. Records
are small JSON objects: readable when debugging a store, and cheap next to the
signature recovery each update costs anyway.

What is not durable on purpose: which action is in flight and when to retry. After a
restart the watcher plans again from the durable views, which is always safe because
the hub refuses anything that is no longer right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m2mpay.chain.hub import Closing
from m2mpay.crypto import Address, Signature
from m2mpay.watcher.core import ChainView, ChannelParams, HeldProof

__all__ = ["Dispute", "PartyEntry", "Record", "Watched", "WatcherState", "params_json"]

Record = dict[str, Any]


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass(slots=True)
class PartyEntry:
    """A registered party: the hash of its bearer token and its peer's newest proof."""

    token_hash: bytes
    issued_at: int
    proof: HeldProof | None = None


@dataclass(slots=True)
class Dispute:
    """One action the watcher took on chain: a challenge or a settlement."""

    id: int
    kind: str  # "challenge" | "settle"
    channel_id: bytes
    status: str  # "submitted" | "mined" | "failed" | "interrupted"
    submitted_at_ms: int
    participant: Address | None = None  # whose total the challenge raised
    beneficiary: Address | None = None  # the watched party it was raised for
    transferred: int | None = None
    replaced: int | None = None
    close_block: int | None = None
    close_seen_at_ms: int | None = None
    tx_hash: bytes | None = None
    block: int | None = None
    mined_at_ms: int | None = None
    balance_a: int | None = None
    balance_b: int | None = None
    reason: str | None = None

    @property
    def latency_ms(self) -> int | None:
        """From the watcher seeing the close to seeing its own transaction mined."""
        if self.mined_at_ms is None or self.close_seen_at_ms is None:
            return None
        return self.mined_at_ms - self.close_seen_at_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "channel_id": "0x" + self.channel_id.hex(),
            "participant": None if self.participant is None else self.participant.checksum,
            "beneficiary": None if self.beneficiary is None else self.beneficiary.checksum,
            "transferred": _str(self.transferred),
            "replaced": _str(self.replaced),
            "balance_a": _str(self.balance_a),
            "balance_b": _str(self.balance_b),
            "tx_hash": _hex(self.tx_hash),
            "block": self.block,
            "close_block": self.close_block,
            "close_seen_at_ms": self.close_seen_at_ms,
            "submitted_at_ms": self.submitted_at_ms,
            "mined_at_ms": self.mined_at_ms,
            "latency_ms": self.latency_ms,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Dispute:
        def address(key: str) -> Address | None:
            return None if raw[key] is None else Address(raw[key])

        def number(key: str) -> int | None:
            return None if raw[key] is None else int(raw[key])

        return cls(
            id=int(raw["id"]),
            kind=str(raw["kind"]),
            channel_id=bytes.fromhex(raw["channel_id"][2:]),
            status=str(raw["status"]),
            submitted_at_ms=int(raw["submitted_at_ms"]),
            participant=address("participant"),
            beneficiary=address("beneficiary"),
            transferred=number("transferred"),
            replaced=number("replaced"),
            close_block=number("close_block"),
            close_seen_at_ms=number("close_seen_at_ms"),
            tx_hash=None if raw["tx_hash"] is None else bytes.fromhex(raw["tx_hash"][2:]),
            block=number("block"),
            mined_at_ms=number("mined_at_ms"),
            balance_a=number("balance_a"),
            balance_b=number("balance_b"),
            reason=raw["reason"],
        )


@dataclass(slots=True, eq=False)
class Watched:
    """One watched channel. The last three fields are runtime only, never logged."""

    params: ChannelParams
    view: ChainView = field(default_factory=ChainView)
    parties: dict[Address, PartyEntry] = field(default_factory=dict)
    backfilled: bool = False
    close_seen_at_ms: int | None = None
    disputes: list[Dispute] = field(default_factory=list)
    in_flight: bool = False
    retry_at: float = 0.0
    failures: int = 0

    def held(self) -> dict[Address, HeldProof]:
        return {p: e.proof for p, e in self.parties.items() if e.proof is not None}


# -- the JSON forms of durable values ---------------------------------------------------


def params_json(params: ChannelParams) -> dict[str, Any]:
    """Channel parameters as the journal keeps them, the API shows them and a registration
    sends them."""
    return {
        "a": params.a.checksum,
        "b": params.b.checksum,
        "token": params.token.checksum,
        "challenge_period": params.challenge_period,
        "nonce": str(params.nonce),
    }


def _params_of(raw: dict[str, Any]) -> ChannelParams:
    return ChannelParams(
        Address(raw["a"]),
        Address(raw["b"]),
        Address(raw["token"]),
        int(raw["challenge_period"]),
        int(raw["nonce"]),
    )


def _view_json(view: ChainView) -> dict[str, Any]:
    closing = view.closing
    return {
        "da": str(view.deposit_a),
        "db": str(view.deposit_b),
        "dat": view.deposits_at,
        "cl": None if closing is None else [closing.deadline, *map(str, closing.as_abi()[1:])],
        "cat": view.closing_at,
        "closer": None if view.closer is None else view.closer.checksum,
        "cb": view.close_block,
        "st": None
        if view.settlement is None
        else [*map(str, view.settlement[:2]), view.settlement[2]],
        "sb": view.settled_block,
    }


def _view_of(raw: dict[str, Any]) -> ChainView:
    cl, st = raw["cl"], raw["st"]
    return ChainView(
        deposit_a=int(raw["da"]),
        deposit_b=int(raw["db"]),
        deposits_at=None if raw["dat"] is None else (raw["dat"][0], raw["dat"][1]),
        closing=None if cl is None else Closing(int(cl[0]), int(cl[1]), int(cl[2])),
        closing_at=None if raw["cat"] is None else (raw["cat"][0], raw["cat"][1]),
        closer=None if raw["closer"] is None else Address(raw["closer"]),
        close_block=raw["cb"],
        settlement=None if st is None else (int(st[0]), int(st[1]), bool(st[2])),
        settled_block=raw["sb"],
    )


class WatcherState:
    """Everything the watcher holds, changed only through the mutators below."""

    def __init__(self) -> None:
        self.channels: dict[bytes, Watched] = {}
        self.disputes: dict[int, Dispute] = {}
        self.proofs = 0

    # -- mutators: each returns the record that replays it ------------------------------

    def register(
        self, params: ChannelParams, party: Address, token_hash: bytes, issued_at: int
    ) -> tuple[Watched, Record]:
        watched = self.channels.get(params.id)
        if watched is None:
            watched = self.channels[params.id] = Watched(params)
        entry = watched.parties.get(party)
        if entry is None:
            watched.parties[party] = PartyEntry(token_hash, issued_at)
        else:  # a newer registration by the same party replaces its token, keeps its proof
            entry.token_hash, entry.issued_at = token_hash, issued_at
        record = {
            "t": "reg",
            "ch": params_json(params),
            "party": party.checksum,
            "h": token_hash.hex(),
            "at": issued_at,
        }
        return watched, record

    def set_proof(self, watched: Watched, party: Address, proof: HeldProof) -> Record:
        entry = watched.parties[party]
        if entry.proof is None:
            self.proofs += 1
        entry.proof = proof
        return {
            "t": "proof",
            "c": watched.params.id.hex(),
            "p": 0 if party == watched.params.a else 1,
            "v": str(proof.transferred),
            "s": proof.signature.hex(),
        }

    def set_view(self, watched: Watched, view: ChainView, seen_at_ms: int) -> Record:
        if view.closing is not None and watched.close_seen_at_ms is None:
            watched.close_seen_at_ms = seen_at_ms
        watched.view = view
        return {"t": "view", "c": watched.params.id.hex(), "v": _view_json(view), "ms": seen_at_ms}

    def mark_backfilled(self, channels: list[Watched]) -> Record:
        for watched in channels:
            watched.backfilled = True
        return {"t": "bf", "c": [w.params.id.hex() for w in channels]}

    def put_dispute(self, dispute: Dispute) -> Record:
        """Record a new action, or a later state of one (same id) in its place."""
        listed = self.channels[dispute.channel_id].disputes
        existing = self.disputes.get(dispute.id)
        if existing is None:
            listed.append(dispute)
        elif existing is not dispute:
            listed[listed.index(existing)] = dispute
        self.disputes[dispute.id] = dispute
        return {"t": "dispute", "d": dispute.to_json()}

    @property
    def next_dispute_id(self) -> int:
        return max(self.disputes, default=0) + 1

    # -- replay --------------------------------------------------------------------------

    def apply_record(self, record: Record) -> None:
        """Apply one durable record, as the mutator that produced it did."""
        kind = record["t"]
        if kind == "reg":
            self.register(
                _params_of(record["ch"]),
                Address(record["party"]),
                bytes.fromhex(record["h"]),
                int(record["at"]),
            )
        elif kind == "proof":
            watched = self.channels[bytes.fromhex(record["c"])]
            party = watched.params.a if record["p"] == 0 else watched.params.b
            self.set_proof(
                watched, party, HeldProof(int(record["v"]), Signature(bytes.fromhex(record["s"])))
            )
        elif kind == "view":
            watched = self.channels[bytes.fromhex(record["c"])]
            self.set_view(watched, _view_of(record["v"]), int(record["ms"]))
        elif kind == "bf":
            self.mark_backfilled([self.channels[bytes.fromhex(c)] for c in record["c"]])
        elif kind == "dispute":
            self.put_dispute(Dispute.from_json(record["d"]))
        else:
            raise ValueError(f"unknown watcher record {kind!r}")

    def interrupted(self) -> list[Record]:
        """After a restart, actions logged as submitted never reported back: close them.

        Whether their transaction made it, the chain will tell (the watcher plans again
        from what it reads); the record only says this attempt's outcome is unknown.
        """
        records = []
        for dispute in self.disputes.values():
            if dispute.status == "submitted":
                dispute.status = "interrupted"
                records.append(self.put_dispute(dispute))
        return records

    def snapshot(self) -> Record:
        """The whole durable state as one record; `from_snapshot` reads it back."""
        channels = []
        for watched in self.channels.values():
            parties = []
            for party, entry in watched.parties.items():
                proof = entry.proof
                parties.append(
                    [
                        party.checksum,
                        entry.token_hash.hex(),
                        entry.issued_at,
                        None if proof is None else [str(proof.transferred), proof.signature.hex()],
                    ]
                )
            channels.append(
                {
                    "ch": params_json(watched.params),
                    "v": _view_json(watched.view),
                    "p": parties,
                    "bf": watched.backfilled,
                    "ms": watched.close_seen_at_ms,
                }
            )
        return {"channels": channels, "disputes": [d.to_json() for d in self.disputes.values()]}

    @classmethod
    def from_snapshot(cls, raw: Record) -> WatcherState:
        state = cls()
        for item in raw["channels"]:
            watched = Watched(_params_of(item["ch"]), _view_of(item["v"]))
            watched.backfilled = bool(item["bf"])
            watched.close_seen_at_ms = item["ms"]
            for party, token_hash, issued_at, proof in item["p"]:
                held = None
                if proof is not None:
                    held = HeldProof(int(proof[0]), Signature(bytes.fromhex(proof[1])))
                    state.proofs += 1
                watched.parties[Address(party)] = PartyEntry(
                    bytes.fromhex(token_hash), int(issued_at), held
                )
            state.channels[watched.params.id] = watched
        for item in raw["disputes"]:
            state.put_dispute(Dispute.from_json(item))
        return state
