"""Provenance streams in a `m2mpay.bench.peer` process (`--streams STORE`, with
`--sessions`): the node's sales written into streams as the daemon writes them
(`daemon.session_streams.StreamKeeper`), their heads anchored when `--anchor` names the
contract, for the torture's provenance phase.

Commands, one JSON line each:
    {"cmd": "streams_check"}        → every stream verified, every anchored head proved on
                                      chain, and per session what its stream recorded
    {"cmd": "streams_export", "session": "0x…", "path": "…"}
                                    → {"messages": n} (the v2 file, anchors included)
    {"cmd": "streams_file", "path": "…"}
                                    → {"exists": 0|1, "ok": 0|1}: the file, if any, verifies
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from m2mpay.chain import Ledger, TelemetryAnchor
from m2mpay.crypto import Address
from m2mpay.daemon.session_streams import StreamKeeper
from m2mpay.errors import M2MPayError
from m2mpay.market.offer_book import save_json
from m2mpay.market.resale import Resale
from m2mpay.provenance import (
    AnchorConfig,
    MeterRecord,
    PaymentRecord,
    ProvenanceStream,
    ReceiptRecord,
    SessionRecord,
    SqliteStreamStore,
    StreamAnchorer,
    export_stream,
    read_stream_file,
    verify,
    verify_anchor,
)
from m2mpay.provenance.session_chain import BoughtStreams
from m2mpay.provenance.session_streams import SessionStreams, SessionStreamsConfig
from m2mpay.provenance.stream_crypto import stream_key
from m2mpay.stream import SessionManager

__all__ = ["StreamsPeer"]

_CONFIG: Final = SessionStreamsConfig(meter_interval_s=0.2, link_wait_s=5.0)
_ANCHOR: Final = AnchorConfig(batch_records=8, batch_interval_s=0.3)


class StreamsPeer:
    def __init__(
        self,
        sessions: SessionManager,
        resales: list[Resale],
        path: Path,
        ledger: Ledger | None,
        anchor: Address | None,
    ) -> None:
        self.key = sessions.node.key
        self.store = SqliteStreamStore(path)
        self.ledger = ledger
        on_chain = TelemetryAnchor(ledger, anchor) if ledger and anchor else None
        self.anchorer = StreamAnchorer(
            self.store, anchor=on_chain, signer=self.key if on_chain else None, config=_ANCHOR
        )
        self.keeper = StreamKeeper(
            sessions,
            SessionStreams(self.store, self.key),
            BoughtStreams(path.with_suffix(".bought.json"), save_json).load(),
            url_of=lambda stream_id: f"http://127.0.0.1/provenance/streams/0x{stream_id.hex()}",
            resold=lambda offer_id: any(
                r.offer is not None and r.offer.offer_id == offer_id for r in resales
            ),
            config=_CONFIG,
        )

    async def start(self) -> None:
        """Before the sessions start: their events find the keeper hooked."""
        await self.store.open()
        await self.anchorer.start()

    def hook(self) -> None:
        """Once the sessions run (the keeper catches up on what they recovered)."""
        self.keeper.start()

    async def stop(self) -> None:
        await self.keeper.stop()
        await self.anchorer.stop()
        await self.store.close()

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        if name == "streams_check":
            return await self._check()
        if name == "streams_export":
            session = bytes.fromhex(str(command["session"])[2:])
            stream_id = self.keeper.streams.stream_of(session)
            if stream_id is None:
                raise ValueError("the session has no stream (yet)")
            proofs = await self.anchorer.head_proofs(stream_id)
            count = await export_stream(
                self.store, stream_id, Path(command["path"]), anchors=proofs
            )
            return {"messages": count}
        if name == "streams_file":
            return self._file(Path(command["path"]))
        raise ValueError(f"unknown command {name!r}")

    def _file(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            return {"exists": 0, "ok": 1}
        with path.open("rb") as source:
            try:
                file = read_stream_file(source)
            except M2MPayError:
                return {"exists": 1, "ok": 0}
        key = stream_key(self.key, file.stream_id, 0)
        return {"exists": 1, "ok": int(verify(file.root, file.messages, key, count=file.count).ok)}

    async def _check(self) -> dict[str, Any]:
        streams = bad = anchored = anchors_bad = 0
        problems: list[str] = []
        sessions: dict[str, dict[str, int]] = {}
        for root in await self.store.roots(self.key.address, limit=10_000):
            streams += 1
            stream = await ProvenanceStream.load(self.store, root.stream_id)
            verified = stream.verify(stream_key(self.key, root.stream_id, 0))
            if not verified.ok:
                bad += 1
                problems.append(f"0x{root.stream_id.hex()[:12]}: {verified.problem}")
                continue
            records = verified.records
            if records and isinstance(records[0], SessionRecord):
                sessions["0x" + records[0].session.hex()] = {
                    "units": max([r.total for r in records if isinstance(r, MeterRecord)] or [0]),
                    "paid": sum(r.amount for r in records if isinstance(r, PaymentRecord)),
                    "receipt": int(isinstance(records[-1], ReceiptRecord)),
                }
            for proof in await self.anchorer.head_proofs(root.stream_id):
                anchored += 1
                if self.ledger is None or not (await verify_anchor(proof, self.ledger)).ok:
                    anchors_bad += 1
        return {
            "streams": streams,
            "bad": bad,
            "problems": problems[:5],
            "anchored": anchored,
            "anchors_bad": anchors_bad,
            "failures": self.keeper.streams.failures,
            "sessions": sessions,
        }
