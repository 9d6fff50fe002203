"""What a scenario reports: its story, its own checks, its numbers and the books."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m2mpay.crypto import Address

__all__ = ["Check", "DemoReport", "PartyBalance", "ScenarioReport"]


@dataclass(frozen=True, slots=True)
class Check:
    """One outcome the scenario insists on."""

    what: str
    ok: bool
    detail: str


@dataclass(slots=True)
class PartyBalance:
    """A party's tokens on chain before and after the scenario (smallest unit): the
    deployment's token, or the scenario's own (`token`)."""

    name: str
    address: Address
    before: int
    after: int = 0
    token: Address | None = None

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(slots=True)
class ScenarioReport:
    name: str
    title: str
    unit: str  # what `units` counts: Wh, s
    story: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    parties: list[PartyBalance] = field(default_factory=list)
    payments: int = 0  # balance proofs sent over channels
    units: int = 0  # delivered to the final buyer
    paid: int = 0  # tokens the final buyer paid off chain
    txs: int = 0
    gas: int = 0
    wall_s: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "error": self.error,
            "unit": self.unit,
            "units": self.units,
            "payments": self.payments,
            "paid": str(self.paid),
            "onchain_txs": self.txs,
            "gas": self.gas,
            "wall_s": self.wall_s,
            "story": self.story,
            "checks": [{"what": c.what, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "balances": [
                {
                    "party": p.name,
                    "address": p.address.checksum,
                    "before": str(p.before),
                    "after": str(p.after),
                    "change": str(p.change),
                    **({"token": p.token.checksum} if p.token is not None else {}),
                }
                for p in self.parties
            ],
            **({"details": self.extra} if self.extra else {}),
        }


@dataclass(slots=True)
class DemoReport:
    """A run of scenarios on one chain and one deployment."""

    chain: str  # CAIP-2
    ledger: str  # what serves it: embedded, or the RPC node
    hub: Address
    scenarios: list[ScenarioReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(s.passed for s in self.scenarios)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "chain": self.chain,
            "ledger": self.ledger,
            "channel_hub": self.hub.checksum,
            "scenarios": [s.as_dict() for s in self.scenarios],
        }
